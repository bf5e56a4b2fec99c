//! The tiny HTTP/1.1 client: hand-written requests on raw tokio sockets, response heads parsed
//! with `httparse`. A general client (reqwest/hyper) keeps per-connection buffers and pool state
//! that at 19,500 open streams would make the load generator, not the server, the thing
//! measured; here a held stream costs a socket, a small read buffer and two parsers.
//!
//! Every socket binds to its own loopback source address (127.0.0.2, .3, … in turn) before it
//! connects: the kernel allots ephemeral ports per source address (~28k in the default range),
//! so cycling over many lets a run open, close and leave in TIME_WAIT far more connections than
//! one address could.

use crate::chunked::Dechunker;
use crate::sse::{SseItem, SseParser};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpSocket, TcpStream};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Read size for request/response connections.
const CONN_READ: usize = 4096;

/// Where to connect, and from which source addresses.
#[derive(Debug)]
pub struct Target {
    server: SocketAddr,
    host: String,
    sources: Vec<Ipv4Addr>,
    next: AtomicUsize,
}

impl Target {
    /// The server at `server`, reached from 127.0.0.`first` ..= 127.0.0.`last` in turn.
    pub fn new(server: SocketAddr, first: u8, last: u8) -> Target {
        let sources = (first.min(last)..=last.max(first))
            .map(|x| Ipv4Addr::new(127, 0, 0, x))
            .collect();
        Target {
            server,
            host: server.to_string(),
            sources,
            next: AtomicUsize::new(0),
        }
    }

    /// The `Host` header value.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// A new connection from the next source address, with Nagle off (small requests whose
    /// latency we time).
    pub async fn connect(&self) -> io::Result<TcpStream> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let source = self.sources[n % self.sources.len()];
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
        let stream = socket.connect(self.server).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A request, written out. `bearer` adds `Authorization: Bearer`; a body is sent as JSON.
pub fn request(
    method: &str,
    path: &str,
    host: &str,
    bearer: Option<&str>,
    accept: Option<&str>,
    body: Option<&[u8]>,
) -> Vec<u8> {
    let mut req = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
    req.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    if let Some(token) = bearer {
        req.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
    }
    if let Some(accept) = accept {
        req.extend_from_slice(format!("Accept: {accept}\r\n").as_bytes());
    }
    match body {
        Some(body) => {
            req.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            req.extend_from_slice(body);
        }
        None if method == "POST" => req.extend_from_slice(b"Content-Length: 0\r\n\r\n"),
        None => req.extend_from_slice(b"\r\n"),
    }
    req
}

/// What a response head says about the body that follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `Content-Length`, if given.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Connection: close`: the server will close after this response.
    pub close: bool,
}

/// Parses a response head at the start of `buf`: the head and its length, or `None` if more
/// bytes are needed.
pub fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let mut head = Head {
        status: response.code.unwrap_or(0),
        content_length: None,
        chunked: false,
        close: false,
    };
    for h in response.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.trim().parse().ok();
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            head.close = value.to_ascii_lowercase().contains("close");
        }
    }
    Ok(Some((head, len)))
}

/// Reads until `buf` holds a whole head; returns it and leaves what follows it in `buf`.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    scratch: &mut [u8],
) -> io::Result<Head> {
    loop {
        if let Some((head, len)) = parse_head(buf)? {
            buf.drain(..len);
            return Ok(head);
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "response head too large",
            ));
        }
        let n = stream.read(scratch).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the response head",
            ));
        }
        buf.extend_from_slice(&scratch[..n]);
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

/// A keep-alive connection for plain requests, one at a time (no pipelining).
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl Conn {
    /// Connects.
    pub async fn open(target: &Target) -> io::Result<Conn> {
        Ok(Conn {
            stream: target.connect().await?,
            buf: Vec::new(),
            closed: false,
        })
    }

    /// Whether the server said it will close this connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Sends one request (from [`request`]) and reads its whole response.
    pub async fn send(&mut self, req: &[u8]) -> io::Result<Response> {
        self.stream.write_all(req).await?;
        let mut scratch = [0u8; CONN_READ];
        let head = read_head(&mut self.stream, &mut self.buf, &mut scratch).await?;
        self.closed = head.close;
        let body = if head.chunked {
            let mut dechunker = Dechunker::new();
            let mut body = Vec::new();
            let pending = std::mem::take(&mut self.buf);
            dechunker.feed(&pending, &mut body).map_err(invalid)?;
            while !dechunker.is_done() {
                let n = self.stream.read(&mut scratch).await?;
                if n == 0 {
                    return Err(eof("inside a chunked body"));
                }
                dechunker.feed(&scratch[..n], &mut body).map_err(invalid)?;
            }
            body
        } else if let Some(len) = head.content_length {
            while self.buf.len() < len {
                let n = self.stream.read(&mut scratch).await?;
                if n == 0 {
                    return Err(eof("inside a body"));
                }
                self.buf.extend_from_slice(&scratch[..n]);
            }
            self.buf.drain(..len).collect()
        } else {
            // No length: the body runs to the close.
            self.closed = true;
            let mut body = std::mem::take(&mut self.buf);
            self.stream.read_to_end(&mut body).await?;
            body
        };
        Ok(Response {
            status: head.status,
            body,
        })
    }
}

/// An open SSE stream: a socket plus the de-chunker and parser its bytes go through.
pub struct SseConn {
    stream: TcpStream,
    dechunk: Option<Dechunker>,
    parser: SseParser,
    read: Vec<u8>,
    body: Vec<u8>,
    /// Body bytes that came in with the head, not yet parsed.
    pending: Vec<u8>,
}

impl SseConn {
    /// Sends `GET <path>` asking for an event stream and reads the head; anything but 200 is an
    /// error (`http <status>`). `read_size` is the read buffer: small for thousands of idle
    /// streams, large for a few busy ones.
    pub async fn open(target: &Target, path: &str, read_size: usize) -> io::Result<SseConn> {
        Self::open_on(target.connect().await?, Vec::new(), target, path, read_size).await
    }

    /// Like [`SseConn::open`], on a connection that first serves `GET /healthz`. The server
    /// sends `/connect` through its dedicated stream path only when it is a connection's first
    /// request (a fresh connection, as browsers mostly open for an `EventSource`); this reaches
    /// the other path, its router, which a reused keep-alive connection takes.
    pub async fn open_reused(target: &Target, path: &str, read_size: usize) -> io::Result<SseConn> {
        let mut conn = Conn::open(target).await?;
        let health = request("GET", "/healthz", target.host(), None, None, None);
        let res = conn.send(&health).await?;
        if res.status != 200 || conn.closed {
            return Err(io::Error::other(format!("healthz: http {}", res.status)));
        }
        Self::open_on(conn.stream, conn.buf, target, path, read_size).await
    }

    async fn open_on(
        mut stream: TcpStream,
        mut pending: Vec<u8>,
        target: &Target,
        path: &str,
        read_size: usize,
    ) -> io::Result<SseConn> {
        let req = request(
            "GET",
            path,
            target.host(),
            None,
            Some("text/event-stream"),
            None,
        );
        stream.write_all(&req).await?;
        let mut read = vec![0u8; read_size.max(64)];
        let head = read_head(&mut stream, &mut pending, &mut read).await?;
        if head.status != 200 {
            return Err(io::Error::other(format!("http {}", head.status)));
        }
        Ok(SseConn {
            stream,
            dechunk: head.chunked.then(Dechunker::new),
            parser: SseParser::new(),
            read,
            body: Vec::new(),
            pending,
        })
    }

    /// Reads once and parses what came, calling `emit` per comment and event. `Ok(false)` when
    /// the server closed the stream.
    pub async fn read_some(&mut self, emit: &mut impl FnMut(SseItem)) -> io::Result<bool> {
        // Without `stamp_arrivals` the kernel adds no stamp: the same read, the time ignored.
        self.read_some_stamped(&mut |item, _| emit(item)).await
    }

    /// Asks the kernel to stamp what arrives on this stream with the time it reached the socket
    /// (`SO_TIMESTAMPNS`), for [`SseConn::read_some_stamped`].
    pub fn stamp_arrivals(&self) -> io::Result<()> {
        setsockopt(&self.stream, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
    }

    /// [`SseConn::read_some`], with each item's arrival in this machine's socket as the kernel
    /// stamped it (the latest segment's, when a read takes several; `None` for bytes that came
    /// with the response head, or when the kernel gave no stamp). The load generator shares the
    /// cores with the server, so in a burst this can be well before the read.
    pub async fn read_some_stamped(
        &mut self,
        emit: &mut impl FnMut(SseItem, Option<SystemTime>),
    ) -> io::Result<bool> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.process(&pending, &mut |item| emit(item, None))?;
            return Ok(true);
        }
        let (n, at) = loop {
            self.stream.readable().await?;
            let (stream, read) = (&self.stream, &mut self.read);
            match stream.try_io(Interest::READABLE, || {
                recv_stamped(stream.as_raw_fd(), read)
            }) {
                Ok(got) => break got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        let read = std::mem::take(&mut self.read);
        let result = self.process(&read[..n], &mut |item| emit(item, at));
        self.read = read;
        result.map(|()| true)
    }

    fn process(&mut self, bytes: &[u8], emit: &mut impl FnMut(SseItem)) -> io::Result<()> {
        match &mut self.dechunk {
            Some(d) => {
                self.body.clear();
                d.feed(bytes, &mut self.body).map_err(invalid)?;
                self.parser.feed(&self.body, emit).map_err(invalid)
            }
            None => self.parser.feed(bytes, emit).map_err(invalid),
        }
    }
}

/// One `recvmsg` into `buf`: the bytes read and the kernel's receive stamp, if any.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<SystemTime>)> {
    let mut cmsg = nix::cmsg_space!(TimeSpec);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())?;
    let at = msg.cmsgs().ok().and_then(|mut all| {
        all.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                Some(UNIX_EPOCH + Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
            }
            _ => None,
        })
    });
    Ok((msg.bytes, at))
}

fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn eof(where_: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, format!("closed {where_}"))
}

/// A short name for an error, to tally failures by kind.
pub fn error_kind(e: &io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        let name = match code {
            24 => "EMFILE (too many open files)",
            98 => "EADDRINUSE",
            99 => "EADDRNOTAVAIL (no free source port)",
            104 => "ECONNRESET",
            110 => "ETIMEDOUT",
            111 => "ECONNREFUSED",
            32 => "EPIPE",
            _ => return format!("os error {code}"),
        };
        return name.to_owned();
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => "closed by server".into(),
        io::ErrorKind::TimedOut => "timeout".into(),
        io::ErrorKind::InvalidData => format!("bad response: {e}"),
        _ => e.to_string().chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_requests() {
        let req = request("POST", "/a/join", "127.0.0.1:9", Some("t0k"), None, None);
        assert_eq!(
            String::from_utf8(req).unwrap(),
            "POST /a/join HTTP/1.1\r\nHost: 127.0.0.1:9\r\nAuthorization: Bearer t0k\r\nContent-Length: 0\r\n\r\n"
        );
        let req = request("POST", "/access", "h", None, None, Some(b"{}"));
        assert!(req.ends_with(b"Content-Length: 2\r\n\r\n{}"));
        let req = request(
            "GET",
            "/connect?token=x",
            "h",
            None,
            Some("text/event-stream"),
            None,
        );
        assert!(req.ends_with(b"Accept: text/event-stream\r\n\r\n"));
    }

    #[test]
    fn parses_heads() {
        let sse = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\n";
        let (head, len) = parse_head(sse).unwrap().unwrap();
        assert_eq!(
            head,
            Head {
                status: 200,
                content_length: None,
                chunked: true,
                close: false
            }
        );
        assert_eq!(&sse[len..], b"1a\r\n");
        let json = b"HTTP/1.1 403 Forbidden\r\ncontent-length: 12\r\nconnection: close\r\n\r\n";
        let (head, _) = parse_head(json).unwrap().unwrap();
        assert_eq!(
            (head.status, head.content_length, head.close),
            (403, Some(12), true)
        );
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn names_errors() {
        assert_eq!(
            error_kind(&io::Error::from_raw_os_error(24)),
            "EMFILE (too many open files)"
        );
        assert_eq!(error_kind(&io::Error::other("http 401")), "http 401");
    }
}
