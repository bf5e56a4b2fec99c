//! The Drawmesh signaling protocol as the load generator speaks it (shapes from
//! `shared/src/protocol.rs`): tokens from `POST /access`, streams from `GET /connect`, joins,
//! relays, and the open-streams gauge of `/metrics`.

use crate::http::{Conn, SseConn, Target, error_kind, request};
use crate::sse::SseItem;
use crate::stats::{Tally, bump};
use serde::Deserialize;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A user: the token and the peer id it names.
#[derive(Debug, Clone)]
pub struct Access {
    /// The JWT.
    pub token: String,
    /// The peer id (`user.id`).
    pub id: String,
}

#[derive(Deserialize)]
struct AccessBody {
    token: String,
    user: UserBody,
}

#[derive(Deserialize)]
struct UserBody {
    id: String,
}

/// The `POST /access` request for `username`.
pub fn access_request(target: &Target, username: &str) -> Vec<u8> {
    let body = serde_json::json!({ "username": username }).to_string();
    request(
        "POST",
        "/access",
        target.host(),
        None,
        None,
        Some(body.as_bytes()),
    )
}

/// Reads an `/access` answer.
pub fn parse_access(status: u16, body: &[u8]) -> io::Result<Access> {
    if status != 200 {
        return Err(io::Error::other(format!("http {status}")));
    }
    let parsed: AccessBody =
        serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Access {
        token: parsed.token,
        id: parsed.user.id,
    })
}

/// `n` tokens (users `bench0`…), fetched over `concurrency` keep-alive connections, before
/// `deadline`. Returns those it got and a tally of failures.
pub async fn issue_tokens(
    target: &Arc<Target>,
    n: usize,
    concurrency: usize,
    deadline: Instant,
) -> (Vec<Access>, Tally) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (target, next) = (Arc::clone(target), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut errors = Tally::new();
            let mut conn: Option<Conn> = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || Instant::now() >= deadline {
                    break;
                }
                let result = tokio::time::timeout_at(deadline, async {
                    let c = match conn.as_mut() {
                        Some(c) => c,
                        None => conn.insert(Conn::open(&target).await?),
                    };
                    let res = c
                        .send(&access_request(&target, &format!("bench{i}")))
                        .await?;
                    parse_access(res.status, &res.body)
                })
                .await;
                match result {
                    Ok(Ok(access)) => got.push((i, access)),
                    Ok(Err(e)) => {
                        bump(&mut errors, format!("access: {}", error_kind(&e)));
                        conn = None;
                    }
                    Err(_) => bump(&mut errors, "access: deadline"),
                }
                if conn.as_ref().is_some_and(Conn::is_closed) {
                    conn = None;
                }
            }
            (got, errors)
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut errors = Tally::new();
    for w in workers {
        if let Ok((got, e)) = w.await {
            all.extend(got);
            crate::stats::merge(&mut errors, &e);
        }
    }
    all.sort_by_key(|(i, _)| *i);
    (all.into_iter().map(|(_, a)| a).collect(), errors)
}

/// The `GET /connect` path for a token.
pub fn connect_path(token: &str) -> String {
    // JWTs are base64url and dots: nothing to escape in a query.
    format!("/connect?token={token}")
}

/// Opens the user's stream and reads until its `connected` event, passing every item (the
/// `connected` event included) to `emit`. Errors if the stream ends first.
pub async fn open_stream(
    target: &Target,
    token: &str,
    read_size: usize,
    emit: &mut impl FnMut(SseItem),
) -> io::Result<SseConn> {
    open_stream_on(false, target, token, read_size, emit).await
}

/// [`open_stream`], on a fresh connection (`reused: false`) or on one that served a request
/// first (`reused: true`, [`SseConn::open_reused`]).
pub async fn open_stream_on(
    reused: bool,
    target: &Target,
    token: &str,
    read_size: usize,
    emit: &mut impl FnMut(SseItem),
) -> io::Result<SseConn> {
    let path = connect_path(token);
    let mut sse = if reused {
        SseConn::open_reused(target, &path, read_size).await?
    } else {
        SseConn::open(target, &path, read_size).await?
    };
    let mut connected = false;
    while !connected {
        let open = sse
            .read_some(&mut |item| {
                if matches!(&item, SseItem::Event(e) if e.event == "connected") {
                    connected = true;
                }
                emit(item);
            })
            .await?;
        if !open {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream closed before connected",
            ));
        }
    }
    Ok(sse)
}

/// The `POST /<room>/join` request.
pub fn join_request(target: &Target, room: &str, token: &str) -> Vec<u8> {
    request(
        "POST",
        &format!("/{room}/join"),
        target.host(),
        Some(token),
        None,
        None,
    )
}

/// The `POST /relay/<peer>/session-description` request carrying `sdp` as an offer.
pub fn relay_offer_request(target: &Target, peer: &str, token: &str, sdp: &str) -> Vec<u8> {
    let body = serde_json::json!({ "type": "offer", "sdp": sdp }).to_string();
    request(
        "POST",
        &format!("/relay/{peer}/session-description"),
        target.host(),
        Some(token),
        None,
        Some(body.as_bytes()),
    )
}

/// The value of an unlabelled sample `name` in Prometheus text: `drawmesh_streams_open 42`.
pub fn prometheus_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut words = l.split_whitespace();
        if words.next()? != name {
            return None;
        }
        words.next()?.parse().ok()
    })
}

/// The server's open-streams gauge (`drawmesh_streams_open`), if `/metrics` answers within 5 s.
/// Uses a connection of its own, closed at once: read /proc before calling this.
pub async fn streams_gauge(target: &Target) -> Option<u64> {
    gauge(target, "drawmesh_streams_open")
        .await
        .map(|v| v as u64)
}

/// One gauge of the server's `/metrics`, if it answers within 5 s (a connection of its own,
/// closed at once; the scrape's own connection is counted in the connection and task gauges).
pub async fn gauge(target: &Target, name: &str) -> Option<f64> {
    let fetch = async {
        let mut conn = Conn::open(target).await.ok()?;
        let req = request("GET", "/metrics", target.host(), None, None, None);
        let res = conn.send(&req).await.ok()?;
        if res.status != 200 {
            return None;
        }
        let text = String::from_utf8_lossy(&res.body);
        prometheus_value(&text, name)
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_access_answers() {
        let body = br#"{"token":"a.b.c","user":{"id":"6f1c","username":"bench1"}}"#;
        let access = parse_access(200, body).unwrap();
        assert_eq!(
            (access.token.as_str(), access.id.as_str()),
            ("a.b.c", "6f1c")
        );
        assert!(parse_access(429, body).is_err());
        assert!(parse_access(200, b"{}").is_err());
    }

    #[test]
    fn reads_prometheus_gauges() {
        let text = "# HELP drawmesh_streams_open Open SSE streams\n# TYPE drawmesh_streams_open gauge\ndrawmesh_streams_open 19500\ndrawmesh_streams_open_total 3\ndrawmesh_relays_total{outcome=\"delivered\"} 7\n";
        assert_eq!(
            prometheus_value(text, "drawmesh_streams_open"),
            Some(19500.0)
        );
        assert_eq!(prometheus_value(text, "drawmesh_rooms"), None);
    }
}
