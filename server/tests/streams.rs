//! Event streams as the wire sees them, on raw sockets: the dedicated `/connect` path (chunked
//! SSE, the `retry:` hint, keep-alives, JSON refusals), `/connect` on a connection used before
//! (taken back from hyper onto the same path), and the connection budget.

mod common;

use common::{EVENT_TIMEOUT, TestServer};
use serde_json::json;
use server::config::Config;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// One HTTP/1.1 connection, read as the wire carries it.
struct Raw {
    io: BufReader<TcpStream>,
}

impl Raw {
    async fn open(server: &TestServer) -> Raw {
        let addr = server.base.trim_start_matches("http://");
        Raw {
            io: BufReader::new(TcpStream::connect(addr).await.unwrap()),
        }
    }

    async fn send(&mut self, request: &str) {
        self.io
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
    }

    async fn get_connect(&mut self, target: &str, accept: &str) {
        self.send(&format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n\r\n"
        ))
        .await;
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        timeout(EVENT_TIMEOUT, self.io.read_line(&mut line))
            .await
            .expect("a line in time")
            .unwrap();
        line
    }

    /// The status code and the headers (names lowercased).
    async fn head(&mut self) -> (u16, Vec<(String, String)>) {
        let status = self.line().await;
        let code = status.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            let line = line.trim_end();
            if line.is_empty() {
                return (code, headers);
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }

    /// A body of `content-length` bytes.
    async fn body(&mut self, headers: &[(String, String)]) -> String {
        let len: usize = header(headers, "content-length").parse().unwrap();
        let mut body = vec![0; len];
        self.io.read_exact(&mut body).await.unwrap();
        String::from_utf8(body).unwrap()
    }

    /// The next chunk of a chunked body ("" for the last).
    async fn chunk(&mut self) -> String {
        let size = usize::from_str_radix(self.line().await.trim_end(), 16).unwrap();
        let mut data = vec![0; size + 2];
        timeout(EVENT_TIMEOUT, self.io.read_exact(&mut data))
            .await
            .expect("a chunk in time")
            .unwrap();
        assert_eq!(&data[size..], b"\r\n");
        data.truncate(size);
        String::from_utf8(data).unwrap()
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

#[tokio::test]
async fn a_stream_is_chunked_sse_with_a_retry_hint_and_counted_ids() {
    let server = TestServer::start().await;
    let (token, id) = server.access("raw").await;
    let mut raw = Raw::open(&server).await;
    raw.get_connect(&format!("/connect?token={token}"), "text/event-stream")
        .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    assert_eq!(header(&headers, "transfer-encoding"), "chunked");
    assert_eq!(header(&headers, "x-accel-buffering"), "no");
    assert_eq!(raw.chunk().await, "retry: 2000\n\n");
    let connected = raw.chunk().await;
    assert!(
        connected.starts_with("id: 1\nevent: connected\ndata: {")
            && connected.contains(&id)
            && connected.ends_with("}\n\n"),
        "{connected:?}"
    );
    // Another user joins after us (id 2: add-peer), then relays a body with line breaks: it
    // arrives as one data line per line (id 3).
    let other = server.user("other").await;
    let join = server.join_with_token(&token, "r").await;
    assert_eq!(join.status(), 200);
    assert_eq!(server.join(&other, "r").await.status(), 200);
    assert!(raw.chunk().await.starts_with("id: 2\nevent: add-peer\n"));
    let res = server
        .http
        .post(server.url(&format!("/relay/{id}/ice-candidate")))
        .bearer_auth(&other.token)
        .header("content-type", "application/json")
        .body("{\"candidate\":\n\"c\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let relayed = raw.chunk().await;
    assert!(
        relayed.starts_with("id: 3\nevent: ice-candidate\ndata: ")
            && relayed.contains("\ndata: \"c\""),
        "{relayed:?}"
    );
}

#[tokio::test]
async fn connect_on_a_connection_used_before_still_streams() {
    let server = TestServer::start().await;
    let mut raw = Raw::open(&server).await;
    let body = r#"{"username":"reuse"}"#;
    raw.send(&format!(
        "POST /access HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
    .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    let access: serde_json::Value = serde_json::from_str(&raw.body(&headers).await).unwrap();
    let token = access["token"].as_str().unwrap();
    raw.get_connect(&format!("/connect?token={token}"), "text/event-stream")
        .await;
    let (status, headers) = raw.head().await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), "text/event-stream");
    // Served as a first request would be: the same framing, chunk for chunk.
    assert_eq!(header(&headers, "transfer-encoding"), "chunked");
    assert_eq!(header(&headers, "x-accel-buffering"), "no");
    assert_eq!(raw.chunk().await, "retry: 2000\n\n");
    assert!(
        raw.chunk()
            .await
            .starts_with("id: 1\nevent: connected\ndata: {")
    );
    // And it stays a stream: a relay to it arrives.
    let id = access["user"]["id"].as_str().unwrap();
    let other = server.user("other").await;
    assert_eq!(server.join(&other, "r").await.status(), 200);
    let join = server.join_with_token(token, "r").await;
    assert_eq!(join.status(), 200);
    assert!(raw.chunk().await.starts_with("id: 2\nevent: add-peer\n"));
    let relayed = server
        .http
        .post(server.url(&format!("/relay/{id}/ice-candidate")))
        .bearer_auth(&other.token)
        .header("content-type", "application/json")
        .body(r#"{"candidate":"c","sdpMid":"0","sdpMLineIndex":0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(relayed.status(), 200);
    assert!(
        raw.chunk()
            .await
            .starts_with("id: 3\nevent: ice-candidate\n")
    );
}

#[tokio::test]
async fn refusals_on_the_stream_path_are_json_with_the_protocols_codes() {
    let server = TestServer::start().await;
    let (token, _) = server.access("refused").await;
    for (target, accept, code, says) in [
        ("/connect", "text/event-stream", 401, "missing token"),
        ("/connect?token=nope", "text/event-stream", 403, "invalid"),
        (
            &*format!("/api/connect?token={token}"),
            "text/html",
            406,
            "text/event-stream",
        ),
    ] {
        let mut raw = Raw::open(&server).await;
        raw.get_connect(target, accept).await;
        let (status, headers) = raw.head().await;
        assert_eq!(status, code, "{target}");
        assert_eq!(header(&headers, "content-type"), "application/json");
        let body: serde_json::Value = serde_json::from_str(&raw.body(&headers).await).unwrap();
        assert!(body["error"].as_str().unwrap().contains(says), "{body}");
    }
}

#[tokio::test]
async fn an_idle_stream_gets_keep_alives_at_the_configured_interval() {
    let server = TestServer::start_with(Config {
        keep_alive_secs: 1,
        sse_retry_ms: 750,
        ..Config::for_tests()
    })
    .await;
    let (token, _) = server.access("idle").await;
    let mut raw = Raw::open(&server).await;
    raw.get_connect(&format!("/connect?token={token}"), "*/*")
        .await;
    assert_eq!(raw.head().await.0, 200);
    assert_eq!(raw.chunk().await, "retry: 750\n\n");
    assert!(raw.chunk().await.contains("event: connected"));
    for _ in 0..2 {
        assert_eq!(raw.chunk().await, ":\n\n");
    }
}

#[tokio::test]
async fn past_the_connection_budget_new_connections_get_503_until_one_closes() {
    let server = TestServer::start_with(Config {
        max_connections: Some(2),
        ..Config::for_tests()
    })
    .await;
    // Tokens first: each request takes a connection of the budget while it runs.
    let (a, _) = server.access("a").await;
    let (b, _) = server.access("b").await;
    let (c, _) = server.access("c").await;
    let mut held = Vec::new();
    for token in [&a, &b] {
        let mut raw = Raw::open(&server).await;
        raw.get_connect(&format!("/connect?token={token}"), "text/event-stream")
            .await;
        assert_eq!(raw.head().await.0, 200);
        held.push(raw);
    }
    let mut refused = Raw::open(&server).await;
    let (status, headers) = refused.head().await;
    assert_eq!(status, 503);
    assert_eq!(header(&headers, "retry-after"), "5");
    let body: serde_json::Value = serde_json::from_str(&refused.body(&headers).await).unwrap();
    assert!(body["error"].as_str().unwrap().contains("full"), "{body}");
    // One stream closes: its place is free again.
    drop(held.pop());
    timeout(
        Duration::from_secs(5),
        server.state.connections.until_at_most(1),
    )
    .await
    .expect("the closed stream leaves the budget");
    let mut raw = Raw::open(&server).await;
    raw.get_connect(&format!("/connect?token={c}"), "text/event-stream")
        .await;
    assert_eq!(raw.head().await.0, 200);
}

#[tokio::test]
async fn metrics_count_connections_held_and_tasks_alive() {
    let server = TestServer::start().await;
    let gauge = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let scrape = || async {
        let res = server
            .http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap();
        res.text().await.unwrap()
    };
    let (token, _) = server.access("counted").await;
    let mut raw = Raw::open(&server).await;
    raw.get_connect(&format!("/connect?token={token}"), "text/event-stream")
        .await;
    assert_eq!(raw.head().await.0, 200);
    let text = scrape().await;
    // The stream and the scrape itself.
    assert_eq!(gauge(&text, "drawmesh_connections_open"), 2.0);
    let tasks = gauge(&text, "drawmesh_tasks_alive");
    assert!(tasks >= 2.0, "{tasks}");
    drop(raw);
    timeout(
        Duration::from_secs(5),
        server.state.connections.until_at_most(0),
    )
    .await
    .expect("the stream's connection is let go");
    let text = scrape().await;
    assert_eq!(gauge(&text, "drawmesh_connections_open"), 1.0);
    assert!(
        gauge(&text, "drawmesh_tasks_alive") < tasks,
        "the stream's task is gone"
    );
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_ended_holding_no_more_than_its_queue() {
    stalled_reader_is_ended(false).await;
}

/// The same on a connection that served a request first: hyper gives the socket back, so the
/// stream gets the same write timeout (under hyper the connection was held for ever, its last
/// chunk unwritable).
#[tokio::test]
async fn a_stalled_reader_on_a_connection_used_before_is_let_go_too() {
    stalled_reader_is_ended(true).await;
}

async fn stalled_reader_is_ended(reused: bool) {
    let server = TestServer::start_with(Config {
        stream_queue: 8,
        stream_write_timeout_secs: 1,
        ..Config::for_tests()
    })
    .await;
    let (token, id) = server.access("stalled").await;
    let mut raw = Raw::open(&server).await;
    if reused {
        raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let (status, headers) = raw.head().await;
        assert_eq!(status, 200);
        raw.body(&headers).await;
    }
    raw.get_connect(&format!("/connect?token={token}"), "text/event-stream")
        .await;
    assert_eq!(raw.head().await.0, 200);
    raw.chunk().await; // retry
    assert!(raw.chunk().await.contains("event: connected"));
    let join = server.join_with_token(&token, "r").await;
    assert_eq!(join.status(), 200);
    let sender = server.user("sender").await;
    assert_eq!(server.join(&sender, "r").await.status(), 200);
    // From here on the stalled reader reads nothing. Big relays fill the socket's buffers, then
    // its queue of 8; the next is the end of it: it leaves the room, and relays to it are refused.
    let body = json!({"type": "offer", "sdp": "a".repeat(60_000)});
    let mut delivered = 0;
    loop {
        let res = server
            .relay(&sender, &id, "session-description", &body)
            .await;
        match res.status().as_u16() {
            200 => delivered += 1,
            403 => break,
            other => panic!("relay answered {other}"),
        }
        assert!(delivered < 2_000, "the stalled stream is never ended");
    }
    // At most what the kernel's buffers took (a few MB on loopback) plus the queue was accepted
    // for it; and its connection is let go once its write has made no progress for 1 s.
    assert!(delivered * 60_000 < 64 << 20, "{delivered} relays accepted");
    timeout(
        Duration::from_secs(10),
        server.state.connections.until_at_most(1),
    )
    .await
    .expect("the stalled stream's connection is let go; only the sender's stays");
    drop(raw);
}
