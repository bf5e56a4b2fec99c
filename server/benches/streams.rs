//! Server budgets, measured: memory and descriptors per open SSE stream, the return to baseline
//! when streams close, and relay throughput. Runs the real `drawmesh-server` binary as its own
//! process (so the figures are the server's alone, read from /proc) and prints what it measured.
//!
//! `cargo bench -p server --bench streams`; `BENCH_STREAMS` (default 5000: the bench process
//! holds the client side of every stream, so the box's 20,000 descriptors allow about 9,000) and
//! `BENCH_RELAYS` (default 20000) size it.

use futures_util::future::join_all;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

struct Stream {
    token: String,
    id: String,
    _events: reqwest::Response,
}

async fn open_stream(http: &reqwest::Client, base: &str, n: usize) -> Stream {
    let access: serde_json::Value = http
        .post(format!("{base}/access"))
        .json(&serde_json::json!({"username": format!("bench{n}")}))
        .send()
        .await
        .expect("access")
        .json()
        .await
        .expect("access body");
    let token = access["token"].as_str().expect("token").to_owned();
    let id = access["user"]["id"].as_str().expect("id").to_owned();
    let mut events = http
        .get(format!("{base}/connect?token={token}"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("connect");
    // The first chunk is `connected`: the server holds the stream from here on.
    events.chunk().await.expect("connected event");
    Stream {
        token,
        id,
        _events: events,
    }
}

/// Waits (at most 30 s) until the server's descriptors are back near `baseline`; its usage then.
async fn settle(pid: u32, baseline: usize) -> (u64, usize) {
    let started = Instant::now();
    loop {
        let (rss, fds) = usage(pid);
        if fds <= baseline + 2 || started.elapsed() > Duration::from_secs(30) {
            return (rss, fds);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
    let streams = env_usize("BENCH_STREAMS", 5000);
    let relays = env_usize("BENCH_RELAYS", 20_000);
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let mut server = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
        .args(["--port", "0", "--dist", "no-dist"])
        .env("TOKEN_SECRET", "bench")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let pid = server.id();
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("URL line");
    let base = line
        .trim()
        .trim_start_matches("Drawmesh listening on ")
        .trim_end_matches('/')
        .to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");

    // Warm up (one stream open and closed), then the baseline.
    drop(open_stream(&http, &base, 0).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss0, fds0) = usage(pid);

    let started = Instant::now();
    let mut open = Vec::with_capacity(streams);
    for batch in (0..streams).collect::<Vec<_>>().chunks(250) {
        open.extend(join_all(batch.iter().map(|&n| open_stream(&http, &base, n))).await);
    }
    let open_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (rss1, fds1) = usage(pid);

    // Rooms of four; everyone relays ICE candidates to a roommate.
    for (i, s) in open.iter().enumerate() {
        let res = http
            .post(format!("{base}/room{}/join", i / 4))
            .bearer_auth(&s.token)
            .send()
            .await
            .expect("join");
        assert!(res.status().is_success(), "join: {}", res.status());
    }
    let body = serde_json::json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    let started = Instant::now();
    let mut refused = 0;
    let pairs: Vec<(usize, usize)> = (0..relays)
        .map(|k| {
            let from = k % open.len();
            (from, (from / 4) * 4 + (from % 4 + 1) % 4)
        })
        .filter(|(_, to)| *to < open.len())
        .collect();
    for chunk in pairs.chunks(64) {
        let results = join_all(chunk.iter().map(|&(from, to)| {
            http.post(format!("{base}/relay/{}/ice-candidate", open[to].id))
                .bearer_auth(&open[from].token)
                .json(&body)
                .send()
        }))
        .await;
        refused += results
            .iter()
            .filter(|r| !r.as_ref().is_ok_and(|r| r.status().is_success()))
            .count();
    }
    let relay_secs = started.elapsed().as_secs_f64();
    let (rss2, _) = usage(pid);

    drop(open);
    // The client's idle keep-alive connections (from the POSTs) are descriptors too: close them.
    drop(http);
    let closing = Instant::now();
    let (rss3, fds3) = settle(pid, fds0).await;
    let close_secs = closing.elapsed().as_secs_f64();

    // A second full cycle: if memory is leaked per stream, resident memory grows again by about
    // as much; if the allocator merely keeps freed memory for reuse, it stays level.
    let http = reqwest::Client::new();
    let mut again = Vec::with_capacity(streams);
    for batch in (0..streams).collect::<Vec<_>>().chunks(250) {
        again.extend(join_all(batch.iter().map(|&n| open_stream(&http, &base, n))).await);
    }
    let (rss4, _) = usage(pid);
    drop(again);
    drop(http);
    let (rss5, fds5) = settle(pid, fds0).await;
    let kib = |a: u64, b: u64| a as f64 - b as f64;
    println!("streams opened: {streams} in {open_secs:.1} s");
    println!("server baseline: {rss0} KiB resident, {fds0} descriptors");
    println!(
        "with {streams} open streams: {rss1} KiB, {fds1} descriptors -> {:.2} KiB and {:.2} descriptors per stream",
        kib(rss1, rss0) / streams as f64,
        (fds1 - fds0) as f64 / streams as f64
    );
    println!(
        "relays: {} in {relay_secs:.2} s -> {:.0} per second from one client process (64 in flight); {refused} refused; resident after: {rss2} KiB",
        pairs.len(),
        pairs.len() as f64 / relay_secs
    );
    println!(
        "after every stream closed ({close_secs:.1} s to notice): {rss3} KiB, {fds3} descriptors (baseline {rss0} KiB, {fds0})"
    );
    let _ = server.kill();
    let _ = server.wait();
    println!(
        "second cycle of {streams} streams: {rss4} KiB while open, {rss5} KiB and {fds5} descriptors after closing"
    );
}
