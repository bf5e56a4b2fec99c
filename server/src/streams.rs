//! The dedicated path for `GET /connect`: an SSE stream held outside the general HTTP stack.
//!
//! Why: an open stream is the one thing this server holds many of, for hours, so its size is the
//! server's size. Under hyper every connection keeps an 8 KiB read buffer and an 8 KiB header
//! buffer for its whole life (neither can be set smaller), plus the connection's dispatcher and
//! the response body's boxed stream (measured with `drawmesh-load`: 39 KiB a held stream under
//! `axum::serve`; 3.2 KiB on this path, `BENCHMARKS.md`). A stream needs none of that once its
//! request is read. So when the first
//! request on a connection is `GET /connect` ([`crate::listener`] peeks at it), the request head
//! is parsed here with `httparse`, the buffer is dropped, and one small task writes the events
//! (chunked HTTP/1.1) straight to the socket: it holds the socket, the user's hub subscription,
//! a timer for keep-alives and a shutdown watch. An event is formatted into a buffer that lives
//! only while it is written, so an idle stream holds no buffer at all.
//!
//! Every stream is served here: on a connection whose first request is `/connect`, and on one
//! that served other requests through hyper first ([`crate::listener`] takes the socket back).
//! The protocol is the tutorial's: bearer or query-string token, refusals as JSON [`ApiError`]s
//! like the router's, ids counting up from 1, keep-alive comments, and a `retry:` hint.

use crate::AppState;
use crate::error::ApiError;
use crate::hub::Delivery;
use axum::http::Uri;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};

/// How long a refusal may take to write.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Events already queued are written together up to about this many bytes.
const COALESCE_BYTES: usize = 16 * 1024;

/// The parts of a `/connect` request head this path uses.
#[derive(Debug, Default, PartialEq)]
pub struct ConnectRequest {
    /// The request target (path and query).
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Accept` header, if any.
    pub accept: Option<String>,
    /// The `X-Forwarded-For` header, if any (believed only from trusted proxies).
    pub forwarded_for: Option<String>,
}

/// True for the paths this module serves (the API is mounted at `/` and at `/api`).
pub fn is_connect(method: &str, target: &str) -> bool {
    let path = target.split('?').next().unwrap_or("");
    method == "GET" && (path == "/connect" || path == "/api/connect")
}

impl ConnectRequest {
    /// Reads what this path needs from a request hyper parsed (a `/connect` on a connection that
    /// served other requests first, [`crate::listener`]).
    pub fn from_request<B>(req: &axum::http::Request<B>) -> ConnectRequest {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        ConnectRequest {
            target: req
                .uri()
                .path_and_query()
                .map_or_else(String::new, |t| t.as_str().to_owned()),
            authorization: header("authorization"),
            accept: header("accept"),
            forwarded_for: header("x-forwarded-for"),
        }
    }

    /// Reads what this path needs from a parsed request head.
    pub fn from_head(req: &httparse::Request<'_, '_>) -> ConnectRequest {
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::to_owned)
        };
        ConnectRequest {
            target: req.path.unwrap_or("").to_owned(),
            authorization: header("authorization"),
            accept: header("accept"),
            forwarded_for: header("x-forwarded-for"),
        }
    }
}

/// How a stream is paced.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// Between keep-alive comments.
    pub keep_alive: Duration,
    /// The `retry:` hint: how long a browser waits before reconnecting.
    pub retry: Duration,
    /// A write that makes no progress for this long is a reader that stopped reading: its
    /// stream ends (its queue, bounded, would overflow soon anyway, and the hub end it).
    pub write_timeout: Duration,
}

/// Serves one `/connect` request on `socket`: a refusal (JSON, then the connection closes), or
/// the user's events until the client goes, the hub ends the stream, or the server shuts down.
pub async fn serve(
    mut socket: TcpStream,
    peer: SocketAddr,
    request: ConnectRequest,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) {
    let user = match authenticate(&request, &state) {
        Ok(user) => user,
        Err(err) => return Box::pin(refuse(&mut socket, &err)).await,
    };
    let client = state
        .limits
        .client(peer.ip(), request.forwarded_for.as_deref());
    // Held for the stream's whole life from here on, so nothing is kept that is not needed.
    drop(request);
    let _permit = match state.limits.open_stream(client) {
        Ok(permit) => permit,
        Err(err) => return Box::pin(refuse(&mut socket, &err)).await,
    };
    // Operators (and the multi-process e2e test) count these.
    tracing::info!(peer = %user.id, "stream opened");
    // Boxed, like the refusals: what they hold while they run is not kept in the stream's task.
    let mut events = match Box::pin(state.hub.connect(user)).await {
        Ok(events) => events,
        Err(err) => return Box::pin(refuse(&mut socket, &ApiError::from(err))).await,
    };
    {
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
             x-accel-buffering: no\r\ntransfer-encoding: chunked\r\n\r\n{}",
            chunk(&format!("retry: {}\n\n", state.pacing.retry.as_millis()))
        );
        if write(&mut socket, head.as_bytes(), state.pacing.write_timeout)
            .await
            .is_err()
        {
            return;
        }
    }
    let (mut reader, mut writer) = socket.split();
    let mut next_id: u64 = 1;
    let mut keep_alive_at = Instant::now() + state.pacing.keep_alive;
    let mut scratch = [0u8; 64];
    let mut ended = false;
    while !ended {
        let bytes = tokio::select! {
            delivery = events.next() => match delivery {
                Some(delivery) => {
                    let mut text = chunk(&event_text(next_id, &delivery));
                    next_id += 1;
                    // What else is queued goes in the same write: a burst (a join introducing
                    // seven peers) costs one write and one wake-up of the reader, not seven.
                    while text.len() < COALESCE_BYTES {
                        match events.try_next() {
                            Poll::Ready(Some(more)) => {
                                text.push_str(&chunk(&event_text(next_id, &more)));
                                next_id += 1;
                            }
                            Poll::Ready(None) => {
                                ended = true;
                                break;
                            }
                            Poll::Pending => break,
                        }
                    }
                    text
                }
                // The hub ended the stream (replaced by a reconnect, or too slow a reader).
                None => break,
            },
            () = sleep_until(keep_alive_at) => chunk(":\n\n"),
            // The client closed (0), or sent something a stream does not take: either way, done.
            _ = reader.read(&mut scratch) => return,
            _ = shutdown.changed() => break,
        };
        keep_alive_at = Instant::now() + state.pacing.keep_alive;
        if write(&mut writer, bytes.as_bytes(), state.pacing.write_timeout)
            .await
            .is_err()
        {
            return;
        }
    }
    // The last chunk: the browser sees a clean end and reconnects.
    let _ = write(&mut writer, b"0\r\n\r\n", state.pacing.write_timeout).await;
}

/// The user a `/connect` request is for, or why not.
fn authenticate(
    request: &ConnectRequest,
    state: &AppState,
) -> Result<shared::protocol::User, ApiError> {
    let accepts = request
        .accept
        .as_deref()
        .is_none_or(|a| a.contains("text/event-stream") || a.contains("*/*"));
    if !accepts {
        return Err(ApiError::NotAcceptable);
    }
    let uri: Uri = request.target.parse().map_err(|_| ApiError::NotFound)?;
    let token = crate::auth::bearer_or_query(request.authorization.as_deref(), &uri)
        .ok_or(ApiError::MissingToken)?;
    state.tokens.verify(&token)
}

/// One SSE event: `id`, `event` and the data, a `data:` line per line of it (a relayed JSON body
/// is forwarded as posted and may hold line breaks).
pub fn event_text(id: u64, delivery: &Delivery) -> String {
    let mut text = format!("id: {id}\nevent: {}\n", delivery.event);
    for line in delivery.data.split(['\n', '\r']) {
        text.push_str("data: ");
        text.push_str(line);
        text.push('\n');
    }
    text.push('\n');
    text
}

/// `text` as one chunk of a chunked HTTP/1.1 body.
fn chunk(text: &str) -> String {
    format!("{:x}\r\n{text}\r\n", text.len())
}

/// Writes all of `bytes`, or fails if the reader takes longer than `limit`.
async fn write(
    out: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    match timeout(limit, out.write_all(bytes)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// Answers `err` as the router would (status, JSON body) and closes the connection.
pub async fn refuse(socket: &mut TcpStream, err: &ApiError) {
    let _ = write(socket, &crate::error::raw_response(err), REFUSAL_TIMEOUT).await;
    let _ = socket.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn only_get_connect_takes_this_path() {
        assert!(is_connect("GET", "/connect?token=x"));
        assert!(is_connect("GET", "/api/connect"));
        assert!(!is_connect("POST", "/connect"));
        assert!(!is_connect("GET", "/connect/x"));
        assert!(!is_connect("GET", "/connected"));
        assert!(!is_connect("GET", "/abc/connect"));
    }

    #[test]
    fn events_put_each_line_of_their_data_on_a_data_line() {
        let delivery = Delivery {
            event: "session-description",
            data: Arc::from("{\"a\":\n1,\r\n\"b\":2}"),
        };
        assert_eq!(
            event_text(7, &delivery),
            "id: 7\nevent: session-description\ndata: {\"a\":\ndata: 1,\ndata: \ndata: \"b\":2}\n\n"
        );
        assert_eq!(chunk("ab\n"), "3\r\nab\n\r\n");
    }

    #[test]
    fn the_head_gives_the_target_and_the_headers_in_any_case() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut headers);
        let raw = b"GET /connect?token=t HTTP/1.1\r\nHost: x\r\nACCEPT: text/event-stream\r\nauthorization: Bearer k\r\n\r\n";
        assert!(req.parse(raw).unwrap().is_complete());
        assert_eq!(
            ConnectRequest::from_head(&req),
            ConnectRequest {
                target: "/connect?token=t".into(),
                authorization: Some("Bearer k".into()),
                accept: Some("text/event-stream".into()),
                forwarded_for: None,
            }
        );
    }
}
