//! The accept loop: every connection is counted against the descriptor budget, and handed either
//! to [`crate::streams`] (its first request is `GET /connect`) or to hyper's HTTP/1 with the
//! router (everything else), which gives the connection back to [`crate::streams`] should a later
//! request on it be `GET /connect`.
//!
//! Why our own loop and not `axum::serve`:
//! - Streams are most of what the server holds; [`crate::streams`] says why they skip hyper.
//! - The descriptor budget: near the process's open-file limit, a new connection is answered
//!   `503` with `Retry-After` and closed, so the server never reaches `EMFILE`, where `accept`
//!   fails in a loop while the connection waits in the backlog. The budget frees as connections
//!   close. Should `accept` fail anyway (the limit is the process's, not only ours), the loop
//!   waits a moment instead of spinning.
//! - Shutdown: the loop stops accepting, every stream writes its last chunk (browsers reconnect,
//!   to another process if there is one), idle HTTP connections close, and [`serve_until`]
//!   returns once they are gone or after [`DRAIN`].
//! - Hyper gets only HTTP/1 (our clients speak nothing else; the auto-detecting HTTP/1+2
//!   connection costs more per socket).

use crate::AppState;
use crate::error::{ApiError, raw_response};
use crate::streams::{self, ConnectRequest};
use axum::Router;
use axum::extract::ConnectInfo;
use futures_util::future::Either;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::timeout;
use tower::ServiceExt;

/// Descriptors kept back from the budget: the listener, Redis, files served, logs, and the
/// moment it takes to answer a connection over budget.
pub const RESERVED_DESCRIPTORS: usize = 256;
/// How long a client may take to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest request head read for `/connect` (what hyper allows by default is larger, and
/// hyper applies it to every other request).
const MAX_HEAD: usize = 16 * 1024;
/// How long shutdown waits for connections to finish.
pub const DRAIN: Duration = Duration::from_secs(3);

/// How many connections the process may hold at once, and how many it holds.
#[derive(Debug)]
pub struct Budget {
    open: AtomicUsize,
    max: usize,
    closed: Notify,
}

/// One connection's place in the [`Budget`], given back when it drops.
#[derive(Debug)]
pub struct Slot(Arc<Budget>);

impl Budget {
    /// A budget of `max` connections.
    pub fn new(max: usize) -> Arc<Budget> {
        Arc::new(Budget {
            open: AtomicUsize::new(0),
            max,
            closed: Notify::new(),
        })
    }

    /// The budget this process's open-file limit allows: the soft limit less
    /// [`RESERVED_DESCRIPTORS`] (call after raising the soft limit to the hard one).
    pub fn from_open_file_limit() -> Arc<Budget> {
        let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
            .map(|(soft, _)| soft)
            .unwrap_or(1024);
        let soft = usize::try_from(soft).unwrap_or(usize::MAX);
        Budget::new(soft.saturating_sub(RESERVED_DESCRIPTORS).max(1))
    }

    /// A place for one more connection, if there is one.
    pub fn take(self: &Arc<Budget>) -> Option<Slot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// The most connections at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Waits until at most `n` connections are open.
    pub async fn until_at_most(&self, n: usize) {
        loop {
            let closed = self.closed.notified();
            if self.open() <= n {
                return;
            }
            closed.await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.closed.notify_waiters();
    }
}

/// Serves `state`'s app on `listener` until `stop` completes, then drains (see the module docs).
pub async fn serve_until(
    listener: TcpListener,
    state: AppState,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let (shutdown, watching) = watch::channel(false);
    let router = crate::app(state.clone());
    let giving_back = tokio::spawn(crate::memory::give_back_after_crowds(Arc::downgrade(
        &state.connections,
    )));
    let mut stop = std::pin::pin!(stop);
    loop {
        let (socket, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors (another part of the process took them), or a client
                    // gone before it was accepted: wait a moment rather than spin on it.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Signaling events are small and latency matters more than packet count: no Nagle.
        let _ = socket.set_nodelay(true);
        let slot = state.connections.take();
        tokio::spawn(connection(
            socket,
            addr,
            slot,
            state.clone(),
            router.clone(),
            watching.clone(),
        ));
    }
    drop(listener);
    giving_back.abort();
    tracing::info!(
        open = state.connections.open(),
        "shutting down: ending every stream"
    );
    let _ = shutdown.send(true);
    if timeout(DRAIN, state.connections.until_at_most(0))
        .await
        .is_err()
    {
        tracing::warn!(
            open = state.connections.open(),
            "connections still open after the drain"
        );
    }
    Ok(())
}

/// What the first request on a connection is.
enum First {
    /// `GET /connect`: served by [`streams`].
    Connect(ConnectRequest),
    /// Anything else: hyper reads it again from the bytes read so far.
    Other,
    /// The client closed before a request, or sent a head we refuse.
    Done,
}

async fn connection(
    mut socket: TcpStream,
    addr: SocketAddr,
    slot: Option<Slot>,
    state: AppState,
    router: Router,
    shutdown: watch::Receiver<bool>,
) {
    let Some(_slot) = slot else {
        let busy = raw_response(&ApiError::Busy);
        let _ = timeout(HEAD_TIMEOUT, socket.write_all(&busy)).await;
        return;
    };
    let mut head = Vec::with_capacity(1024);
    let first = match timeout(HEAD_TIMEOUT, read_first(&mut socket, &mut head)).await {
        Ok(first) => first,
        Err(_) => First::Done,
    };
    let (socket, request) = match first {
        First::Connect(request) => {
            drop(head);
            (socket, request)
        }
        // Boxed: hyper's connection is a large future, and inline it would make every stream's
        // task as large (a task is as big as the largest state of its future).
        First::Other => {
            let served = http(Prefixed::new(head, socket), addr, router, shutdown.clone());
            match Box::pin(served).await {
                Some(handed_over) => handed_over,
                None => return,
            }
        }
        First::Done => return,
    };
    streams::serve(socket, addr, request, state, shutdown).await;
}

/// Reads until the first request's line shows where it goes (and, for `/connect`, until its head
/// is complete), keeping every byte read in `head`.
async fn read_first(socket: &mut TcpStream, head: &mut Vec<u8>) -> First {
    loop {
        // Straight into `head`: a buffer on the stack would sit in every stream's task.
        head.reserve(1024);
        match socket.read_buf(head).await {
            Ok(0) | Err(_) => return First::Done,
            Ok(_) => {}
        }
        let Some(line_end) = head.windows(2).position(|w| w == b"\r\n") else {
            if head.len() > MAX_HEAD {
                return First::Other; // hyper refuses it properly
            }
            continue;
        };
        let line = String::from_utf8_lossy(&head[..line_end]);
        let mut parts = line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !streams::is_connect(method, target) {
            return First::Other;
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(head) {
            Ok(httparse::Status::Complete(_)) => {
                return First::Connect(ConnectRequest::from_head(&request));
            }
            Ok(httparse::Status::Partial) if head.len() <= MAX_HEAD => continue,
            // Too long, too many headers, or not HTTP: hyper answers it as it answers any such.
            _ => return First::Other,
        }
    }
}

/// Serves HTTP/1 requests on `io` with the router, each request told its client's address, until
/// the connection ends (`None`) or a request is `GET /connect`: then the socket is taken back from
/// hyper and returned with the request, to be served by [`streams`] like a first request.
///
/// Why: a browser may send its `EventSource` request on a keep-alive connection that already
/// served `/access` or `/config`. Under hyper that stream would keep hyper's buffers for its
/// whole life (measured: 15 KiB a stream, against 3.2 KiB on the stream path; `BENCHMARKS.md`).
/// Hyper hands a connection's socket back (`into_parts`) once we stop polling it; the request is
/// never answered by hyper, so nothing of its own is written. Bytes a client sent after the
/// `/connect` head (a pipelined request) are dropped with hyper's buffer: `EventSource` sends
/// none, and the stream reads its socket only to notice the close.
async fn http(
    io: Prefixed,
    addr: SocketAddr,
    router: Router,
    mut shutdown: watch::Receiver<bool>,
) -> Option<(TcpStream, ConnectRequest)> {
    let (hand_over, mut handed) = oneshot::channel();
    let hand_over = std::sync::Mutex::new(Some(hand_over));
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let target = request.uri().path_and_query().map_or("", |t| t.as_str());
        if streams::is_connect(request.method().as_str(), target) {
            let sender = hand_over.lock().ok().and_then(|mut s| s.take());
            if let Some(sender) = sender {
                let _ = sender.send(ConnectRequest::from_request(&request));
            }
            // Never answered: the connection stops being polled as soon as the request is out.
            return Either::Left(std::future::pending());
        }
        request.extensions_mut().insert(ConnectInfo(addr));
        // Boxed so the connection is `Unpin`, which `into_parts` needs to move it.
        Either::Right(Box::pin(router.clone().oneshot(request)))
    });
    let mut connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        _ = &mut connection => None,
        Ok(request) = &mut handed => {
            Some((connection.into_parts().io.into_inner().socket, request))
        }
        _ = shutdown.changed() => {
            Pin::new(&mut connection).graceful_shutdown();
            // A `/connect` that came meanwhile is never answered: stop at it too.
            tokio::select! {
                _ = &mut connection => {}
                _ = &mut handed => {}
            }
            None
        }
    }
}

/// A socket whose first bytes were already read: they are read again first.
struct Prefixed {
    prefix: Vec<u8>,
    at: usize,
    socket: TcpStream,
}

impl Prefixed {
    fn new(prefix: Vec<u8>, socket: TcpStream) -> Prefixed {
        Prefixed {
            prefix,
            at: 0,
            socket,
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_max_and_frees_as_slots_drop() {
        let budget = Budget::new(2);
        let a = budget.take().unwrap();
        let b = budget.take().unwrap();
        assert!(budget.take().is_none());
        assert_eq!(budget.open(), 2);
        drop(a);
        let c = budget.take().unwrap();
        drop((b, c));
        assert_eq!(budget.open(), 0);
    }

    #[tokio::test]
    async fn prefixed_bytes_are_read_before_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b" world").await.unwrap();
        });
        let (socket, _) = listener.accept().await.unwrap();
        client.await.unwrap();
        let mut io = Prefixed::new(b"hello".to_vec(), socket);
        let mut all = String::new();
        io.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}
