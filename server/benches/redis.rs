//! Many processes through Redis, measured: two real `drawmesh-server` processes (A and B) on one
//! real `redis-server` (started here on a free port, killed at the end, also on a panic), driven
//! over real HTTP and SSE from this process. Three figures:
//!
//! 1. Relays that cross Redis: 10 sender/receiver pairs, every relay POSTed to A for a receiver
//!    whose stream is on B. Delivered relays per second, latency from the POST being sent to
//!    the event being read off the SSE stream (the candidate string carries `pair:seq:nanos`),
//!    and lost, duplicated, reordered and misdelivered messages (all should be 0).
//! 2. Join fan-out across processes: 20 rooms of 8, streams and join POSTs spread over both
//!    processes, every join at once; latency from a join's POST to each `add-peer` it causes.
//! 3. Redis connections per process while A holds `BENCH_STREAMS` streams: the hub promises a
//!    constant two (one subscriber, one command connection); see [`redis_connections`] for how
//!    they are counted, and `RedisServer::clients` for how each is told apart.
//!
//! Beside 1 and 2 it prints the servers' mean Redis command round trip (their /metrics) and
//! Redis's own time per script (`INFO commandstats`), to tell queueing from work. Latencies are
//! read on this process's clock, so they include its own scheduling: on a small shared machine
//! the bench, both servers and Redis compete for the same cores.
//!
//! `cargo bench -p server --bench redis`; `BENCH_RELAYS` (default 20000, spread over the 10
//! pairs) and `BENCH_STREAMS` (default 5000: this process holds the client side of every stream,
//! within the box's 20,000 descriptors) size it. Prints a table, then one JSON line.

use futures_util::future::join_all;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "redis-bench-secret";
/// Sender/receiver pairs in the relay figure.
const PAIRS: usize = 10;
/// The join fan-out figure: rooms, and peers per room.
const ROOMS: usize = 20;
const PER_ROOM: usize = 8;
/// Upper bound on the relay sending phase, whatever `BENCH_RELAYS` says.
const RELAY_PHASE_BOUND: Duration = Duration::from_secs(120);
/// A receiver that has read nothing for this long stops waiting (the rest counts as lost).
const QUIET_BOUND: Duration = Duration::from_secs(5);
/// How long every `add-peer` of the join burst may take to arrive.
const FANOUT_BOUND: Duration = Duration::from_secs(30);
/// How long a server may take to notice that streams closed.
const CLOSE_BOUND: Duration = Duration::from_secs(30);
/// One event of the setup (the `connected` event, an `add-peer`) that should come promptly.
const EVENT_BOUND: Duration = Duration::from_secs(10);
/// One HTTP request's answer (its headers; a stream's body is bounded by [`EVENT_BOUND`]).
const REQUEST_BOUND: Duration = Duration::from_secs(10);

/// `request`, or an error if it is not answered within [`REQUEST_BOUND`].
async fn answered(
    what: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, String> {
    match tokio::time::timeout(REQUEST_BOUND, request.send()).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {REQUEST_BOUND:?}")),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Our own `redis-server`, killed when dropped (also when the bench panics).
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server must be installed (apt-get install redis-server): {e}")
            });
        let mut redis = RedisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if redis.connection().is_ok() {
                return redis;
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited at start ({status}): is port {port} taken?");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let conn = redis::Client::open(self.url())?.get_connection_with_timeout(REQUEST_BOUND)?;
        conn.set_read_timeout(Some(REQUEST_BOUND))?;
        Ok(conn)
    }

    /// The clients Redis itself lists, this query's own connection left out: their ports (the
    /// `addr` Redis sees, a server's local port) and whether each is subscribed to a channel.
    /// The check that the per-process counts read from /proc add up to what Redis sees.
    fn clients(&self) -> Result<HashMap<u16, bool>, String> {
        let mut conn = self.connection().map_err(|e| e.to_string())?;
        let me: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        let own = format!("id={me} ");
        let field = |line: &str, name: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .map(str::to_owned)
        };
        let mut clients = HashMap::new();
        for line in list.lines() {
            if line.is_empty() || line.starts_with(&own) {
                continue;
            }
            let port = field(line, "addr=")
                .and_then(|a| a.rsplit(':').next()?.parse::<u16>().ok())
                .ok_or_else(|| format!("CLIENT LIST line without addr: {line}"))?;
            let subscribed = ["sub=", "psub=", "ssub="]
                .iter()
                .any(|f| field(line, f).is_some_and(|n| n != "0"));
            clients.insert(port, subscribed);
        }
        Ok(clients)
    }
}

impl RedisServer {
    /// Scripts Redis ran and the microseconds it spent running them (`INFO commandstats`):
    /// Redis's own share of a command's round trip, without the queue in front of it.
    fn script_time(&self) -> Option<(f64, f64)> {
        let mut conn = self.connection().ok()?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut conn)
            .ok()?;
        let mut total = (0.0, 0.0);
        for line in info.lines() {
            let Some(stats) = line
                .strip_prefix("cmdstat_evalsha:")
                .or_else(|| line.strip_prefix("cmdstat_eval:"))
            else {
                continue;
            };
            for field in stats.split(',') {
                match field.split_once('=') {
                    Some(("calls", v)) => total.0 += v.parse::<f64>().ok()?,
                    Some(("usec", v)) => total.1 += v.parse::<f64>().ok()?,
                    _ => {}
                }
            }
        }
        Some(total)
    }
}

/// Mean milliseconds per script Redis ran between two readings of `script_time`.
fn mean_script_ms(before: Option<(f64, f64)>, after: Option<(f64, f64)>) -> f64 {
    match (before, after) {
        (Some(b), Some(a)) => (a.1 - b.1) / 1e3 / (a.0 - b.0),
        _ => f64::NAN,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `drawmesh-server` process on the Redis hub, killed when dropped.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    /// Kept open: the server may print again, and a closed pipe would make that fail.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    fn start(redis: &RedisServer, name: &str, log: &PathBuf) -> Server {
        let stderr = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
            .args(["--port", "0", "--dist", "no-dist", "--ice-servers", "[]"])
            .args(["--redis-url", &redis.url()])
            .env("TOKEN_SECRET", SECRET)
            // Warnings only: a slow stream being closed, Redis errors, which would explain odd
            // figures; they are counted at the end.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("server {name} does not start: {e}"));
        let pid = child.id();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let Some(base) = line.trim().strip_prefix("Drawmesh listening on ") else {
            let _ = child.kill();
            panic!(
                "server {name}: expected its URL line, got {line:?} (see {})",
                log.display()
            );
        };
        Server {
            pid,
            base: base.trim_end_matches('/').to_owned(),
            child,
            _stdout: stdout,
        }
    }

    /// One unlabelled figure from this process's /metrics.
    async fn metric(&self, http: &reqwest::Client, name: &str) -> Option<f64> {
        let res = answered("GET /metrics", http.get(format!("{}/metrics", self.base)))
            .await
            .ok()?;
        let text = tokio::time::timeout(REQUEST_BOUND, res.text())
            .await
            .ok()?
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Open streams on this process.
    async fn open_streams(&self, http: &reqwest::Client) -> Option<i64> {
        self.metric(http, "drawmesh_streams_open")
            .await
            .map(|v| v as i64)
    }

    /// Waits (at most [`CLOSE_BOUND`]) until this process holds no stream; how long it took.
    async fn wait_no_streams(&self, http: &reqwest::Client) -> f64 {
        let started = Instant::now();
        while started.elapsed() < CLOSE_BOUND {
            if self.open_streams(http).await == Some(0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        started.elapsed().as_secs_f64()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seconds the servers spent waiting on Redis commands, and how many they ran (their /metrics):
/// the difference across a phase tells time in Redis (and the queue to it) from the rest.
async fn redis_commands(servers: [&Server; 2], http: &reqwest::Client) -> (f64, f64) {
    let mut total = (0.0, 0.0);
    for server in servers {
        total.0 += server
            .metric(http, "drawmesh_redis_command_seconds_sum")
            .await
            .unwrap_or(f64::NAN);
        total.1 += server
            .metric(http, "drawmesh_redis_command_seconds_count")
            .await
            .unwrap_or(f64::NAN);
    }
    total
}

/// Mean milliseconds per command between two readings of [`redis_commands`].
fn mean_command_ms(before: (f64, f64), after: (f64, f64)) -> f64 {
    (after.0 - before.0) * 1e3 / (after.1 - before.1)
}

/// Resident memory (KiB) and open descriptors of a process.
fn usage(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// TCP connections from process `pid` to the Redis port: their local ports.
///
/// Why this way: `/proc/<pid>/net/tcp` is the table of the whole network namespace (it lists
/// this bench's sockets and the other server's too), so a socket counts only if its inode is
/// one of the process's own descriptors (`/proc/<pid>/fd/* -> socket:[inode]`). Of those, the
/// ones whose remote end is the Redis port are Redis connections: Redis holds that port, so no
/// HTTP client of the server can have it. Sockets already closed (TIME_WAIT) have no descriptor
/// and are rightly not counted. `CLIENT LIST` alone could not tell the two processes apart
/// without this same mapping from local ports to a process.
fn redis_connections(pid: u32, redis_port: u16) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            let (Some(local), Some(remote), Some(inode)) = (cols.get(1), cols.get(2), cols.get(9))
            else {
                continue;
            };
            let port = |address: &str| {
                address
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let inode = inode.parse::<u64>().ok();
            if port(remote) == Some(redis_port) && inode.is_some_and(|i| inodes.contains(&i)) {
                ports.extend(port(local));
            }
        }
    }
    ports
}

/// A user with a token (tokens are good on every process: same `TOKEN_SECRET`).
struct Peer {
    token: String,
    id: String,
}

async fn access(http: &reqwest::Client, base: &str, name: &str) -> Result<Peer, String> {
    let request = http
        .post(format!("{base}/access"))
        .json(&json!({ "username": name }));
    let res = answered("POST /access", request).await?;
    if !res.status().is_success() {
        return Err(format!("POST /access: {}", res.status()));
    }
    let body: Value = tokio::time::timeout(REQUEST_BOUND, res.json())
        .await
        .map_err(|_| "/access body: not within the bound".to_owned())?
        .map_err(|e| format!("/access body: {e}"))?;
    match (body["token"].as_str(), body["user"]["id"].as_str()) {
        (Some(token), Some(id)) => Ok(Peer {
            token: token.to_owned(),
            id: id.to_owned(),
        }),
        _ => Err(format!("/access body without token or id: {body}")),
    }
}

/// One SSE event: its name, its data, and when this process read it.
struct SseEvent {
    event: String,
    data: String,
    at: Instant,
}

/// A minimal SSE reader (the server's events are one `data:` line each).
struct Sse {
    res: reqwest::Response,
    buf: Vec<u8>,
    ready: std::collections::VecDeque<SseEvent>,
}

impl Sse {
    /// The next event (keep-alive comments skipped), or why there is none before `until`.
    async fn next(&mut self, until: Instant) -> Result<SseEvent, String> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(event);
            }
            let chunk = tokio::time::timeout_at(until.into(), self.res.chunk())
                .await
                .map_err(|_| "no event in time".to_owned())?
                .map_err(|e| format!("stream broke: {e}"))?
                .ok_or_else(|| "stream ended".to_owned())?;
            // Every event in one chunk arrived at the same moment.
            let at = Instant::now();
            self.buf.extend_from_slice(&chunk);
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&block);
                let mut event = None;
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim_start().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if event.is_some() || !data.is_empty() {
                    self.ready.push_back(SseEvent {
                        event: event.unwrap_or_else(|| "message".into()),
                        data: data.join("\n"),
                        at,
                    });
                }
            }
        }
    }

    /// The next event named `name`, others skipped.
    async fn next_named(&mut self, name: &str, until: Instant) -> Result<SseEvent, String> {
        loop {
            let event = self.next(until).await?;
            if event.event == name {
                return Ok(event);
            }
        }
    }
}

/// Opens the user's stream on `base` and reads its `connected` event.
async fn connect(http: &reqwest::Client, base: &str, token: &str) -> Result<Sse, String> {
    let request = http
        .get(format!("{base}/connect?token={token}"))
        .header("Accept", "text/event-stream");
    let res = answered("GET /connect", request).await?;
    if !res.status().is_success() {
        return Err(format!("GET /connect: {}", res.status()));
    }
    let mut sse = Sse {
        res,
        buf: Vec::new(),
        ready: Default::default(),
    };
    sse.next_named("connected", Instant::now() + EVENT_BOUND)
        .await
        .map_err(|e| format!("connected event: {e}"))?;
    Ok(sse)
}

async fn join(http: &reqwest::Client, base: &str, peer: &Peer, room: &str) -> Result<(), String> {
    let request = http
        .post(format!("{base}/{room}/join"))
        .bearer_auth(&peer.token);
    let res = answered(&format!("POST /{room}/join"), request).await?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST /{room}/join: {}", res.status()))
    }
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

fn nanos_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What one receiver saw of its sender's relays.
#[derive(Default)]
struct Tally {
    latencies: Vec<u64>,
    duplicated: usize,
    reordered: usize,
    misdelivered: usize,
    last: Option<Instant>,
    /// Why it stopped before reading everything, if it did.
    stopped: Option<String>,
}

/// Reads relays `<pair>:<seq>:<nanos sent>` until `expected` distinct ones came, the stream was
/// quiet for [`QUIET_BOUND`], or `deadline`.
async fn receive_relays(
    mut sse: Sse,
    pair: usize,
    expected: usize,
    origin: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut seen = vec![false; expected];
    let mut highest: Option<usize> = None;
    let mut distinct = 0;
    while distinct < expected {
        let until = deadline.min(Instant::now() + QUIET_BOUND);
        let event = match sse.next(until).await {
            Ok(event) => event,
            Err(why) => {
                tally.stopped = Some(why);
                break;
            }
        };
        if event.event != "ice-candidate" {
            continue;
        }
        let received = u64::try_from((event.at - origin).as_nanos()).unwrap_or(u64::MAX);
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        let candidate = data["data"]["candidate"].as_str().unwrap_or("");
        let mut parts = candidate.split(':').map(|p| p.parse::<u64>().ok());
        let (Some(Some(from)), Some(Some(seq)), Some(Some(sent))) =
            (parts.next(), parts.next(), parts.next())
        else {
            tally.misdelivered += 1;
            continue;
        };
        let seq = usize::try_from(seq).unwrap_or(usize::MAX);
        if from as usize != pair || seq >= expected {
            tally.misdelivered += 1;
            continue;
        }
        tally.last = Some(event.at);
        if seen[seq] {
            tally.duplicated += 1;
            continue;
        }
        seen[seq] = true;
        distinct += 1;
        if highest.is_some_and(|h| seq < h) {
            tally.reordered += 1;
        }
        highest = highest.max(Some(seq));
        tally.latencies.push(received.saturating_sub(sent));
    }
    tally
}

/// What one sender did.
#[derive(Default)]
struct Sent {
    ok: usize,
    refused: usize,
    failed: usize,
}

/// POSTs relays one after the other (one in flight per pair, so that their order is the order
/// they were sent in and any reordering is the server's), until `count` or `deadline`.
async fn send_relays(
    http: reqwest::Client,
    url: String,
    token: String,
    pair: usize,
    count: usize,
    origin: Instant,
    deadline: Instant,
) -> Sent {
    let mut sent = Sent::default();
    for seq in 0..count {
        if Instant::now() > deadline {
            break;
        }
        let body = json!({ "candidate": format!("{pair}:{seq}:{}", nanos_since(origin)) });
        match answered("relay", http.post(&url).bearer_auth(&token).json(&body)).await {
            Ok(res) if res.status().is_success() => sent.ok += 1,
            Ok(_) => sent.refused += 1,
            Err(_) => sent.failed += 1,
        }
    }
    sent
}

/// One `add-peer` a peer read: the other peer, whether it is to offer, and when it came.
struct Introduction {
    other: String,
    offer: bool,
    at: u64,
}

/// Reads `add-peer` events until `expected` came or `deadline`.
async fn receive_introductions(
    mut sse: Sse,
    expected: usize,
    origin: Instant,
    deadline: Instant,
) -> (Vec<Introduction>, Sse) {
    let mut got = Vec::with_capacity(expected);
    while got.len() < expected {
        let Ok(event) = sse.next_named("add-peer", deadline).await else {
            break;
        };
        let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
        got.push(Introduction {
            other: data["peer"]["id"].as_str().unwrap_or("").to_owned(),
            offer: data["offer"].as_bool().unwrap_or(false),
            at: u64::try_from((event.at - origin).as_nanos()).unwrap_or(u64::MAX),
        });
    }
    (got, sse)
}

/// Redis connections of A and B, and the clients Redis counts, at one moment.
struct Connections {
    moment: &'static str,
    a: ProcessConnections,
    b: ProcessConnections,
    redis: Option<usize>,
    a_streams: Option<i64>,
    a_fds: usize,
}

/// One process's connections to Redis, and of what kind Redis says they are.
struct ProcessConnections {
    total: usize,
    subscribers: Option<usize>,
    commands: Option<usize>,
}

impl ProcessConnections {
    fn shown(&self) -> String {
        let kind = |n: Option<usize>| n.map_or("?".into(), |n| n.to_string());
        format!(
            "{} ({} sub, {} cmd)",
            self.total,
            kind(self.subscribers),
            kind(self.commands)
        )
    }

    fn json(&self) -> Value {
        json!({"total": self.total, "subscriber": self.subscribers, "command": self.commands})
    }
}

async fn connections(
    moment: &'static str,
    redis: &RedisServer,
    a: &Server,
    b: &Server,
    http: &reqwest::Client,
) -> Connections {
    let clients = redis.clients().ok();
    let of = |pid| {
        let ports = redis_connections(pid, redis.port);
        ProcessConnections {
            total: ports.len(),
            // A connection Redis does not list (yet, or any more) counts in neither kind.
            subscribers: clients
                .as_ref()
                .map(|c| ports.iter().filter(|p| c.get(p) == Some(&true)).count()),
            commands: clients
                .as_ref()
                .map(|c| ports.iter().filter(|p| c.get(p) == Some(&false)).count()),
        }
    };
    Connections {
        moment,
        a: of(a.pid),
        b: of(b.pid),
        redis: clients.as_ref().map(HashMap::len),
        a_streams: a.open_streams(http).await,
        a_fds: usage(a.pid).1,
    }
}

#[tokio::main]
async fn main() {
    let relays = env_usize("BENCH_RELAYS", 20_000).max(PAIRS);
    let streams = env_usize("BENCH_STREAMS", 5000);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let load_start = loadavg();

    let logs = std::env::temp_dir().join(format!("drawmesh-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&logs)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", logs.display()));
    let redis = RedisServer::start();
    let a = Server::start(&redis, "A", &logs.join("a.log"));
    let b = Server::start(&redis, "B", &logs.join("b.log"));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap_or_else(|e| panic!("HTTP client: {e}"));
    let mut moments = vec![connections("at start", &redis, &a, &b, &http).await];

    // 1. Relays through Redis: senders' streams and relays on A, receivers' streams on B.
    let per_pair = relays / PAIRS;
    let mut pairs = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        let room = format!("relay{i}");
        let sender = access(&http, &a.base, &format!("sender{i}"))
            .await
            .unwrap_or_else(|e| panic!("sender {i}: {e}"));
        let sender_stream = connect(&http, &a.base, &sender.token)
            .await
            .unwrap_or_else(|e| panic!("sender {i}'s stream on A: {e}"));
        let receiver = access(&http, &b.base, &format!("receiver{i}"))
            .await
            .unwrap_or_else(|e| panic!("receiver {i}: {e}"));
        let mut receiver_stream = connect(&http, &b.base, &receiver.token)
            .await
            .unwrap_or_else(|e| panic!("receiver {i}'s stream on B: {e}"));
        join(&http, &a.base, &sender, &room)
            .await
            .unwrap_or_else(|e| panic!("sender {i}: {e}"));
        join(&http, &b.base, &receiver, &room)
            .await
            .unwrap_or_else(|e| panic!("receiver {i}: {e}"));
        receiver_stream
            .next_named("add-peer", Instant::now() + EVENT_BOUND)
            .await
            .unwrap_or_else(|e| panic!("receiver {i} introduced to its sender: {e}"));
        pairs.push((sender, sender_stream, receiver, receiver_stream));
    }
    let relay_commands = redis_commands([&a, &b], &http).await;
    let relay_scripts = redis.script_time();
    let origin = Instant::now();
    let send_deadline = origin + RELAY_PHASE_BOUND;
    let mut receivers = Vec::with_capacity(PAIRS);
    let mut senders = Vec::with_capacity(PAIRS);
    // Sender streams stay open (a relay needs its sender connected) but are not read: each
    // gets one `add-peer`, nothing more.
    let mut sender_streams = Vec::with_capacity(PAIRS);
    for (i, (sender, sender_stream, receiver, receiver_stream)) in pairs.into_iter().enumerate() {
        sender_streams.push(sender_stream);
        receivers.push(tokio::spawn(receive_relays(
            receiver_stream,
            i,
            per_pair,
            origin,
            send_deadline + QUIET_BOUND,
        )));
        senders.push(tokio::spawn(send_relays(
            http.clone(),
            format!("{}/relay/{}/ice-candidate", a.base, receiver.id),
            sender.token,
            i,
            per_pair,
            origin,
            send_deadline,
        )));
    }
    let mut sent = Sent::default();
    for s in join_all(senders).await {
        let s = s.unwrap_or_else(|e| panic!("a sender task failed: {e}"));
        sent.ok += s.ok;
        sent.refused += s.refused;
        sent.failed += s.failed;
    }
    let sending_secs = origin.elapsed().as_secs_f64();
    let mut relay_latencies = Vec::with_capacity(relays);
    let (mut duplicated, mut reordered, mut misdelivered) = (0, 0, 0);
    let mut last = origin;
    let mut stops = Vec::new();
    for (i, t) in join_all(receivers).await.into_iter().enumerate() {
        let t = t.unwrap_or_else(|e| panic!("a receiver task failed: {e}"));
        relay_latencies.extend(t.latencies);
        duplicated += t.duplicated;
        reordered += t.reordered;
        misdelivered += t.misdelivered;
        last = last.max(t.last.unwrap_or(origin));
        if let Some(why) = t.stopped {
            stops.push(format!("receiver {i}: {why}"));
        }
    }
    drop(sender_streams);
    let delivered = relay_latencies.len();
    let lost = sent.ok.saturating_sub(delivered);
    let relay_secs = (last - origin).as_secs_f64();
    let relay_rate = delivered as f64 / relay_secs.max(f64::EPSILON);
    relay_latencies.sort_unstable();
    let relay_command_ms = mean_command_ms(relay_commands, redis_commands([&a, &b], &http).await);
    let relay_script_ms = mean_script_ms(relay_scripts, redis.script_time());
    moments.push(connections("after the relays", &redis, &a, &b, &http).await);

    // 2. Join fan-out: peer k streams on (k / 2) % 2 and posts its join to k % 2, so the four
    // combinations (stream and join on A or B) are equally common and most introductions
    // cross Redis between the processes.
    let servers = [&a, &b];
    let total = ROOMS * PER_ROOM;
    let peers = join_all((0..total).map(|k| {
        let http = &http;
        let on = servers[(k / 2) % 2];
        async move {
            let peer = access(http, &on.base, &format!("fan{k}")).await?;
            let sse = connect(http, &on.base, &peer.token).await?;
            Ok::<_, String>((peer, sse))
        }
    }))
    .await
    .into_iter()
    .enumerate()
    .map(|(k, r)| r.unwrap_or_else(|e| panic!("fan-out peer {k}: {e}")))
    .collect::<Vec<_>>();
    // Idle connections to both processes first, so the burst measures joins, not TCP handshakes.
    join_all((0..total).map(|k| {
        answered(
            "warm-up",
            http.get(format!("{}/healthz", servers[k % 2].base)),
        )
    }))
    .await;
    let index: HashMap<String, usize> = peers
        .iter()
        .enumerate()
        .map(|(k, (p, _))| (p.id.clone(), k))
        .collect();
    let join_commands = redis_commands([&a, &b], &http).await;
    let join_scripts = redis.script_time();
    let fan_origin = Instant::now();
    let fan_deadline = fan_origin + FANOUT_BOUND;
    let mut readers = Vec::with_capacity(total);
    let mut tokens = Vec::with_capacity(total);
    for (peer, sse) in peers {
        readers.push(tokio::spawn(receive_introductions(
            sse,
            PER_ROOM - 1,
            fan_origin,
            fan_deadline,
        )));
        tokens.push(peer);
    }
    let join_sent: Arc<Vec<AtomicU64>> = Arc::new((0..total).map(|_| AtomicU64::new(0)).collect());
    let joins = tokens.into_iter().enumerate().map(|(k, peer)| {
        let http = http.clone();
        let base = servers[k % 2].base.clone();
        let join_sent = join_sent.clone();
        tokio::spawn(async move {
            let room = format!("fanout{}", k / PER_ROOM);
            let sent = nanos_since(fan_origin);
            join_sent[k].store(sent, Ordering::Relaxed);
            let joined = join(&http, &base, &peer, &room).await;
            (joined, nanos_since(fan_origin).saturating_sub(sent))
        })
    });
    // The POSTs' own round trips, to tell the server's handling of a join from the delivery
    // of what it publishes.
    let mut join_round_trips = Vec::with_capacity(total);
    let mut joins_failed = 0;
    for outcome in join_all(joins.collect::<Vec<_>>()).await {
        match outcome {
            Ok((Ok(()), took)) => join_round_trips.push(took),
            _ => joins_failed += 1,
        }
    }
    join_round_trips.sort_unstable();
    let join_command_ms = mean_command_ms(join_commands, redis_commands([&a, &b], &http).await);
    let join_script_ms = mean_script_ms(join_scripts, redis.script_time());
    // How long this process took to send every join: the burst is only "at once" up to this.
    let sent_at = join_sent.iter().map(|t| t.load(Ordering::Relaxed));
    let join_spread_ms =
        (sent_at.clone().max().unwrap_or(0) - sent_at.min().unwrap_or(0)) as f64 / 1e6;
    let mut fan_latencies = Vec::with_capacity(total * (PER_ROOM - 1));
    let mut fan_streams = Vec::with_capacity(total);
    let mut unattributed = 0;
    for (k, r) in join_all(readers).await.into_iter().enumerate() {
        let (got, sse) = r.unwrap_or_else(|e| panic!("a fan-out reader failed: {e}"));
        fan_streams.push(sse);
        for intro in got {
            // The joiner is told to offer to each member already there; a member already
            // there is told (offer: false) about the joiner. Either way, the cause is the
            // joiner's POST.
            let joiner = if intro.offer {
                Some(k)
            } else {
                index.get(&intro.other).copied()
            };
            match joiner {
                Some(j) => fan_latencies.push(
                    intro
                        .at
                        .saturating_sub(join_sent[j].load(Ordering::Relaxed)),
                ),
                None => unattributed += 1,
            }
        }
    }
    let expected_intros = ROOMS * PER_ROOM * (PER_ROOM - 1);
    fan_latencies.sort_unstable();
    drop(fan_streams);
    moments.push(connections("after the join burst", &redis, &a, &b, &http).await);

    // 3. Redis connections while A holds `streams` streams. Tokens come from B: access needs
    // no Redis, and it keeps A's own traffic to the streams.
    a.wait_no_streams(&http).await;
    b.wait_no_streams(&http).await;
    moments.push(connections("A holds no stream", &redis, &a, &b, &http).await);
    let bulk = reqwest::Client::new();
    let opening = Instant::now();
    let mut open = Vec::with_capacity(streams);
    for batch in (0..streams).collect::<Vec<_>>().chunks(250) {
        let opened = join_all(batch.iter().map(|&n| {
            let bulk = &bulk;
            let (a, b) = (&a, &b);
            async move {
                let peer = access(bulk, &b.base, &format!("held{n}")).await?;
                connect(bulk, &a.base, &peer.token).await
            }
        }))
        .await;
        for (n, r) in batch.iter().zip(opened) {
            open.push(r.unwrap_or_else(|e| panic!("held stream {n} on A: {e}")));
        }
    }
    let open_secs = opening.elapsed().as_secs_f64();
    let held = connections("A holds the streams", &redis, &a, &b, &http).await;
    let (held_rss, _) = usage(a.pid);
    moments.push(held);
    drop(open);
    drop(bulk);
    let close_secs = a.wait_no_streams(&http).await;
    moments.push(connections("after they closed", &redis, &a, &b, &http).await);
    let load_end = loadavg();

    let warnings = ["a.log", "b.log"].map(|f| {
        std::fs::read_to_string(logs.join(f))
            // The missing web client (`--dist no-dist`) is expected, and not counted.
            .map(|t| {
                t.lines()
                    .filter(|l| l.contains("WARN") && !l.contains("no index.html"))
                    .count()
            })
            .unwrap_or(0)
    });
    drop(a);
    drop(b);
    drop(redis);
    if warnings == [0, 0] {
        let _ = std::fs::remove_dir_all(&logs);
    }

    let ms = |v: &[u64]| {
        (
            percentile_ms(v, 50.0),
            percentile_ms(v, 99.0),
            v.last().map_or(f64::NAN, |m| *m as f64 / 1e6),
        )
    };
    let (r50, r99, rmax) = ms(&relay_latencies);
    let (j50, j99, jmax) = ms(&fan_latencies);
    let (t50, t99, tmax) = ms(&join_round_trips);
    let tmin = join_round_trips
        .first()
        .map_or(f64::NAN, |m| *m as f64 / 1e6);

    println!(
        "Drawmesh through Redis: 2 server processes (A, B) on one redis-server, driven from this process"
    );
    println!(
        "machine: nproc {nproc}, memory {memory}, load {load_start} at start, {load_end} at the end"
    );
    println!();
    println!("1. relays A -> Redis -> B ({PAIRS} pairs, one relay in flight per pair)");
    println!(
        "   sent {} of {} ({} refused, {} failed) in {sending_secs:.2} s",
        sent.ok,
        per_pair * PAIRS,
        sent.refused,
        sent.failed
    );
    println!("   delivered {delivered} in {relay_secs:.2} s -> {relay_rate:.0} relays/s");
    println!(
        "   latency POST sent -> SSE read: p50 {r50:.2} ms, p99 {r99:.2} ms, max {rmax:.2} ms"
    );
    println!(
        "   lost {lost}, duplicated {duplicated}, reordered {reordered}, misdelivered {misdelivered}"
    );
    println!(
        "   meanwhile, mean Redis command: {relay_command_ms:.3} ms round trip seen by the servers, {relay_script_ms:.3} ms running in Redis"
    );
    for stop in &stops {
        println!("   stopped early: {stop}");
    }
    println!();
    println!(
        "2. join fan-out ({ROOMS} rooms x {PER_ROOM} peers, every join at once, streams and joins over A and B)"
    );
    println!(
        "   joins failed {joins_failed}; add-peer read {} of {expected_intros} ({unattributed} unattributed)",
        fan_latencies.len() + unattributed
    );
    println!(
        "   latency join POST -> add-peer read: p50 {j50:.2} ms, p99 {j99:.2} ms, max {jmax:.2} ms"
    );
    println!(
        "   join POST round trip, for comparison: min {tmin:.2} ms, p50 {t50:.2} ms, p99 {t99:.2} ms, max {tmax:.2} ms"
    );
    println!("   the {total} joins left this process within {join_spread_ms:.2} ms");
    println!(
        "   meanwhile, mean Redis command: {join_command_ms:.3} ms round trip seen by the servers, {join_script_ms:.3} ms running in Redis"
    );
    println!();
    println!(
        "3. Redis connections per process ({streams} streams opened on A in {open_secs:.1} s, A resident {held_rss} KiB while holding them, all closed {close_secs:.1} s after the client dropped them)"
    );
    println!(
        "   {:<22} {:>18} {:>18} {:>14} {:>12} {:>8}",
        "moment", "A to Redis", "B to Redis", "Redis clients", "A streams", "A fds"
    );
    for m in &moments {
        println!(
            "   {:<22} {:>18} {:>18} {:>14} {:>12} {:>8}",
            m.moment,
            m.a.shown(),
            m.b.shown(),
            m.redis.map_or("?".into(), |n| n.to_string()),
            m.a_streams.map_or("?".into(), |n| n.to_string()),
            m.a_fds
        );
    }
    println!();
    if warnings == [0, 0] {
        println!("server warnings logged: none");
    } else {
        println!(
            "server warnings logged: A {}, B {} (kept in {})",
            warnings[0],
            warnings[1],
            logs.display()
        );
    }
    let summary = json!({
        "bench": "redis",
        "nproc": nproc,
        "memory": memory,
        "load_start": load_start,
        "load_end": load_end,
        "relays": {
            "pairs": PAIRS,
            "sent": sent.ok,
            "refused": sent.refused,
            "failed": sent.failed,
            "delivered": delivered,
            "seconds": relay_secs,
            "per_second": relay_rate,
            "p50_ms": r50,
            "p99_ms": r99,
            "max_ms": rmax,
            "lost": lost,
            "duplicated": duplicated,
            "reordered": reordered,
            "misdelivered": misdelivered,
            "redis_command_mean_ms": relay_command_ms,
            "redis_script_mean_ms": relay_script_ms,
        },
        "join_fanout": {
            "rooms": ROOMS,
            "peers_per_room": PER_ROOM,
            "joins_failed": joins_failed,
            "add_peer_expected": expected_intros,
            "add_peer_read": fan_latencies.len() + unattributed,
            "p50_ms": j50,
            "p99_ms": j99,
            "max_ms": jmax,
            "post_p50_ms": t50,
            "post_p99_ms": t99,
            "post_max_ms": tmax,
            "sent_within_ms": join_spread_ms,
            "redis_command_mean_ms": join_command_ms,
            "redis_script_mean_ms": join_script_ms,
        },
        "redis_connections": moments.iter().map(|m| json!({
            "moment": m.moment,
            "a": m.a.json(),
            "b": m.b.json(),
            "redis_clients": m.redis,
            "a_streams": m.a_streams,
            "a_fds": m.a_fds,
        })).collect::<Vec<_>>(),
        "streams_held": streams,
        "streams_open_seconds": open_secs,
        "server_warnings": warnings,
    });
    println!("{summary}");
}
