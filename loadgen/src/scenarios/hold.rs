//! `hold`: what an open stream costs the server, and whether closing gives it back.
//!
//! Opens N streams (each its own user, from its own `/access` token) with bounded concurrency,
//! sampling the server at 0, 25, 50, 75 and 100% of N once every stream so far has its
//! `connected`; holds them for one keep-alive interval and counts the streams that got a
//! keep-alive comment meanwhile (a stream the server forgot would get none); closes them all
//! and waits for the server's descriptors to come back to the baseline. Repeated for several
//! cycles on one server process: memory that grows cycle after cycle is a leak, memory that
//! stays high but level is the allocator keeping freed pages.

use super::{Ctx, Outcome, ServerEnd, secs, settle, warm_up};
use crate::api;
use crate::http::{Target, error_kind};
use crate::proc::{self, Usage};
use crate::report::{Table, grouped, mark};
use crate::sse::SseItem;
use crate::stats::{Summary, Tally, bump, merge};
use serde::Serialize;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Options of `hold`.
#[derive(clap::Args, Debug, Clone)]
pub struct HoldArgs {
    /// Streams held open at once.
    #[arg(long, default_value_t = 19_500)]
    pub streams: usize,
    /// Open-hold-close cycles, all on one server process.
    #[arg(long, default_value_t = 3)]
    pub cycles: usize,
    /// Stream opens in flight at once. Kept under the server's listen backlog (128 today:
    /// `ss -ltn`): past it, a burst of connects overflows the accept queue and the kernel drops
    /// SYNs, which clients retry only after 1 s; that stall would then be most of what we time.
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Seconds to hold every stream open: one keep-alive interval (axum's default, 15 s) plus
    /// a margin, so every stream is owed at least one keep-alive comment.
    #[arg(long, default_value_t = 17.0)]
    pub hold_secs: f64,
    /// Deadline (s) for issuing the tokens.
    #[arg(long, default_value_t = 60.0)]
    pub tokens_timeout: f64,
    /// Deadline (s) for opening all streams, per cycle.
    #[arg(long, default_value_t = 120.0)]
    pub open_timeout: f64,
    /// Deadline (s) for one stream to open and get `connected`.
    #[arg(long, default_value_t = 15.0)]
    pub op_timeout: f64,
    /// Deadline (s) for the server's descriptors to return to the baseline after closing.
    #[arg(long, default_value_t = 60.0)]
    pub close_timeout: f64,
    /// Open each stream on a connection that served `GET /healthz` first, so the server's
    /// router serves it (the path of a reused keep-alive connection) instead of its dedicated
    /// stream path.
    #[arg(long)]
    pub via_router: bool,
}

/// Streams are idle after `connected` (a few hundred bytes); keep-alives are 5 bytes.
const READ_SIZE: usize = 512;

const PENDING: u8 = 0;
const CONNECTED: u8 = 1;
const FAILED: u8 = 2;
/// Connected, then closed by the server while we held it.
const ENDED: u8 = 3;

struct Slot {
    state: AtomicU8,
    keepalives: AtomicU32,
}

struct Shared {
    slots: Vec<Slot>,
    resolved: AtomicUsize,
    connected: AtomicUsize,
    errors: Mutex<Tally>,
    /// Connect → `connected`, ns, per stream that connected.
    open_ns: Mutex<Vec<u64>>,
}

impl Shared {
    fn new(n: usize) -> Shared {
        Shared {
            slots: (0..n)
                .map(|_| Slot {
                    state: AtomicU8::new(PENDING),
                    keepalives: AtomicU32::new(0),
                })
                .collect(),
            resolved: AtomicUsize::new(0),
            connected: AtomicUsize::new(0),
            errors: Mutex::new(Tally::new()),
            open_ns: Mutex::new(Vec::with_capacity(n)),
        }
    }

    fn fail(&self, i: usize, kind: String) {
        self.slots[i].state.store(FAILED, Ordering::Relaxed);
        bump(
            &mut self.errors.lock().unwrap_or_else(|p| p.into_inner()),
            kind,
        );
        self.resolved.fetch_add(1, Ordering::Release);
    }
}

/// One reading of the server with `open_streams` streams connected.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The cycle (1-based).
    pub cycle: usize,
    /// Streams connected at the reading.
    pub open_streams: usize,
    /// The server.
    #[serde(flatten)]
    pub usage: Usage,
    /// The server's own count of open streams (`/metrics`), if it answered.
    pub gauge: Option<u64>,
    /// Seconds since the cycle started.
    pub at_secs: f64,
}

/// One open-hold-close cycle.
#[derive(Debug, Clone, Serialize)]
pub struct Cycle {
    /// 1-based.
    pub cycle: usize,
    /// Streams connected (got `connected`).
    pub connected: usize,
    /// Streams that failed to open.
    pub failed: usize,
    /// The open phase ran out of time.
    pub open_timed_out: bool,
    /// Seconds to open them.
    pub open_secs: f64,
    /// Opens per second.
    pub opens_per_sec: f64,
    /// Connect → `connected` per stream (opens over a second are SYNs the kernel dropped and
    /// the client retried: see the TCP counters).
    pub open_latency: Summary,
    /// The readings at 0, 25, 50, 75, 100% (fewer if the open phase stopped early).
    pub samples: Vec<Sample>,
    /// (RSS with every stream open − the scenario's baseline RSS) / streams, KiB.
    pub per_stream_kib: f64,
    /// The same against this cycle's starting RSS.
    pub per_stream_kib_this_cycle: f64,
    /// (descriptors with every stream open − baseline) / streams.
    pub fds_per_stream: f64,
    /// Seconds held.
    pub held_secs: f64,
    /// The server at the end of the hold.
    pub usage_held: Usage,
    /// Held streams that got at least one keep-alive comment during the hold.
    pub keepalive_streams: usize,
    /// Held streams the server closed during the hold.
    pub ended_while_held: usize,
    /// Seconds from closing our sockets until the server's descriptors were back to baseline.
    pub close_secs: f64,
    /// Whether they got back (false: the close deadline ran out).
    pub close_settled: bool,
    /// The server once settled (or at the deadline).
    pub usage_after_close: Usage,
    /// `/metrics` open streams after close.
    pub gauge_after_close: Option<u64>,
    /// RSS after close − baseline RSS, KiB.
    pub rss_after_close_vs_baseline_kib: i64,
    /// RSS after close, once the server has served a few ordinary requests (20 `/metrics`
    /// scrapes, 2 s after close) − baseline RSS, KiB: an allocator that gives memory back on the
    /// next frees (glibc trims the top of a heap in `free`) shows it here.
    pub rss_after_requests_vs_baseline_kib: i64,
}

/// Runs `hold`.
pub async fn run(ctx: &Ctx, args: &HoldArgs) -> Result<Outcome, String> {
    let (mut server, target) = ctx.start()?;
    let pid = server.pid;
    warm_up(&target).await;
    let before_tokens = proc::usage(pid);

    let n = args.streams;
    let started = Instant::now();
    let (tokens, token_errors) = api::issue_tokens(
        &target,
        n,
        args.concurrency.min(64),
        started + secs(args.tokens_timeout),
    )
    .await;
    let token_secs = started.elapsed().as_secs_f64();
    // The token connections are closed: wait for the server to see it before the baseline.
    settle(pid, before_tokens.fds, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = proc::usage(pid);
    let baseline_gauge = api::streams_gauge(&target).await;
    let tokens: Arc<Vec<api::Access>> = Arc::new(tokens);

    let mut cycles = Vec::new();
    let mut errors = token_errors.clone();
    for c in 1..=args.cycles {
        let cycle = run_cycle(c, &target, pid, &tokens, baseline, args, &mut errors).await;
        let stop = cycle.connected == 0;
        cycles.push(cycle);
        if stop || !server.is_running() {
            break;
        }
    }

    let server_end = ServerEnd::of(&mut server);
    let path = if args.via_router {
        "the router's /connect (connections that served /healthz first)"
    } else {
        "the dedicated /connect path (fresh connections)"
    };
    let tables = tables(n, path, baseline, &cycles, &server_end);
    let json = serde_json::json!({
        "streams_target": n,
        "via_router": args.via_router,
        "cycles_target": args.cycles,
        "concurrency": args.concurrency,
        "hold_secs": args.hold_secs,
        "tokens": {
            "issued": tokens.len(),
            "secs": token_secs,
            "per_sec": tokens.len() as f64 / token_secs.max(1e-9),
        },
        "baseline_before_tokens": before_tokens,
        "baseline": baseline,
        "baseline_gauge": baseline_gauge,
        "cycles": cycles,
        "errors": errors,
        "server": server_end,
    });
    Ok(Outcome { json, tables })
}

async fn run_cycle(
    c: usize,
    target: &Arc<Target>,
    pid: u32,
    tokens: &Arc<Vec<api::Access>>,
    baseline: Usage,
    args: &HoldArgs,
    errors: &mut Tally,
) -> Cycle {
    let n = tokens.len();
    let shared = Arc::new(Shared::new(n));
    let started = Instant::now();
    let sample = |open: usize| {
        let (target, started) = (Arc::clone(target), started);
        async move {
            // /proc first: the /metrics request is a connection of its own.
            let usage = proc::usage(pid);
            Sample {
                cycle: c,
                open_streams: open,
                usage,
                gauge: api::streams_gauge(&target).await,
                at_secs: started.elapsed().as_secs_f64(),
            }
        }
    };
    let via_router = args.via_router;
    eprintln!("drawmesh-load: hold cycle {c}: opening {n} streams");
    let start_usage = proc::usage(pid);
    let mut samples = vec![sample(0).await];

    // Open, with at most `concurrency` opens in flight; a permit is held until `connected`.
    let semaphore = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let deadline = Instant::now() + secs(args.open_timeout);
    let checkpoints: Vec<usize> = [n / 4, n / 2, 3 * n / 4, n]
        .into_iter()
        .filter(|&k| k > 0)
        .collect();
    let mut handles = Vec::with_capacity(n);
    let mut open_timed_out = false;
    let op_timeout = secs(args.op_timeout);
    for i in 0..n {
        let permit =
            match tokio::time::timeout_at(deadline, Arc::clone(&semaphore).acquire_owned()).await {
                Ok(Ok(p)) => p,
                _ => {
                    open_timed_out = true;
                    break;
                }
            };
        let (target, tokens, mine) = (Arc::clone(target), Arc::clone(tokens), Arc::clone(&shared));
        handles.push(tokio::spawn(async move {
            let shared = mine;
            let slot = &shared.slots[i];
            let mut count = |item: SseItem| {
                if item == SseItem::Comment {
                    slot.keepalives.fetch_add(1, Ordering::Relaxed);
                }
            };
            let t0 = Instant::now();
            let opened = tokio::time::timeout(
                op_timeout,
                api::open_stream_on(via_router, &target, &tokens[i].token, READ_SIZE, &mut count),
            )
            .await;
            let mut sse = match opened {
                Ok(Ok(sse)) => sse,
                Ok(Err(e)) => return shared.fail(i, format!("open: {}", error_kind(&e))),
                Err(_) => return shared.fail(i, "open: timeout".into()),
            };
            let took = t0.elapsed().as_nanos() as u64;
            shared
                .open_ns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(took);
            slot.state.store(CONNECTED, Ordering::Relaxed);
            shared.connected.fetch_add(1, Ordering::Relaxed);
            shared.resolved.fetch_add(1, Ordering::Release);
            drop(permit);
            // Held until aborted; reading keeps the socket drained and counts keep-alives.
            while let Ok(true) = sse.read_some(&mut count).await {}
            slot.state.store(ENDED, Ordering::Relaxed);
        }));
        if checkpoints.contains(&(i + 1)) {
            let reached = wait_resolved(&shared, i + 1, deadline).await;
            samples.push(sample(shared.connected.load(Ordering::Relaxed)).await);
            if !reached {
                open_timed_out = true;
                break;
            }
        }
    }
    if open_timed_out && samples.len() < checkpoints.len() + 1 {
        // Stopped between checkpoints: record where it got to.
        samples.push(sample(shared.connected.load(Ordering::Relaxed)).await);
    }
    let open_secs = started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    let at_n = samples.last().map(|s| s.usage).unwrap_or_default();

    // Hold for one keep-alive interval; count the streams that hear from the server meanwhile.
    let keepalives_before: Vec<u32> = shared
        .slots
        .iter()
        .map(|s| s.keepalives.load(Ordering::Relaxed))
        .collect();
    eprintln!(
        "drawmesh-load: hold cycle {c}: {connected} connected in {open_secs:.1} s; holding {} s",
        args.hold_secs
    );
    let hold_started = Instant::now();
    tokio::time::sleep(secs(args.hold_secs)).await;
    let held_secs = hold_started.elapsed().as_secs_f64();
    let usage_held = proc::usage(pid);
    let mut keepalive_streams = 0;
    let mut ended_while_held = 0;
    for (slot, before) in shared.slots.iter().zip(&keepalives_before) {
        match slot.state.load(Ordering::Relaxed) {
            CONNECTED if slot.keepalives.load(Ordering::Relaxed) > *before => {
                keepalive_streams += 1;
            }
            ENDED => ended_while_held += 1,
            _ => {}
        }
    }

    // Close every stream (aborting a task drops its socket), then wait for the server.
    let closing = Instant::now();
    for h in &handles {
        h.abort();
    }
    let close_deadline = closing + secs(args.close_timeout);
    for h in handles {
        if tokio::time::timeout_at(close_deadline, h).await.is_err() {
            break;
        }
    }
    let left = close_deadline.saturating_duration_since(Instant::now());
    let settled = settle(pid, baseline.fds, left).await;
    let close_secs = closing.elapsed().as_secs_f64();
    let gauge_after_close = api::streams_gauge(target).await;
    // Idle a moment, then a few ordinary requests: what the allocator gives back on its next frees.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..20 {
        let _ = api::streams_gauge(target).await;
    }
    let after_requests = proc::usage(pid);
    merge(
        errors,
        &shared.errors.lock().unwrap_or_else(|p| p.into_inner()),
    );

    let per = |now: u64, base: u64| {
        if connected == 0 {
            0.0
        } else {
            (now as f64 - base as f64) / connected as f64
        }
    };
    Cycle {
        cycle: c,
        connected,
        failed: shared.resolved.load(Ordering::Relaxed) - connected,
        open_timed_out,
        open_secs,
        opens_per_sec: connected as f64 / open_secs.max(1e-9),
        open_latency: Summary::of_nanos(
            &mut shared.open_ns.lock().unwrap_or_else(|p| p.into_inner()),
        ),
        samples,
        per_stream_kib: per(at_n.rss_kib, baseline.rss_kib),
        per_stream_kib_this_cycle: per(at_n.rss_kib, start_usage.rss_kib),
        fds_per_stream: per(at_n.fds, baseline.fds),
        held_secs,
        usage_held,
        keepalive_streams,
        ended_while_held,
        close_secs,
        close_settled: settled.settled,
        usage_after_close: settled.usage,
        gauge_after_close,
        rss_after_close_vs_baseline_kib: settled.usage.rss_kib as i64 - baseline.rss_kib as i64,
        rss_after_requests_vs_baseline_kib: after_requests.rss_kib as i64 - baseline.rss_kib as i64,
    }
}

/// Waits until `k` opens have resolved (connected or failed); false if the deadline came first.
async fn wait_resolved(shared: &Shared, k: usize, deadline: Instant) -> bool {
    while shared.resolved.load(Ordering::Acquire) < k {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

fn tables(
    n: usize,
    path: &str,
    baseline: Usage,
    cycles: &[Cycle],
    server: &ServerEnd,
) -> Vec<Table> {
    let mut memory = Table::new(
        format!(
            "hold: server memory against open streams on {path} (baseline {} KiB RSS, {} fds, {} threads)",
            baseline.rss_kib, baseline.fds, baseline.threads
        ),
        &[
            "cycle",
            "open streams",
            "RSS KiB",
            "+KiB vs base",
            "fds",
            "threads",
            "/metrics streams",
            "at s",
        ],
    );
    for c in cycles {
        for s in &c.samples {
            memory.row(vec![
                c.cycle.to_string(),
                grouped(s.open_streams as u64),
                s.usage.rss_kib.to_string(),
                (s.usage.rss_kib as i64 - baseline.rss_kib as i64).to_string(),
                s.usage.fds.to_string(),
                s.usage.threads.to_string(),
                s.gauge.map_or("-".into(), |g| g.to_string()),
                format!("{:.1}", s.at_secs),
            ]);
        }
    }
    let status = if server.running { "running" } else { "DIED" };
    let mut opening = Table::new(
        format!(
            "hold: opening {} streams (server {status})",
            grouped(n as u64)
        ),
        &[
            "cycle",
            "connected",
            "failed",
            "open s",
            "opens/s",
            "open p50 / p99 / max",
            "KiB/stream",
            "KiB/stream this cycle",
            "fds/stream",
        ],
    );
    let mut closing = Table::new(
        "hold: holding (one keep-alive interval) and closing",
        &[
            "cycle",
            "held s",
            "keep-alive seen",
            "ended by server",
            "close s",
            "fds after",
            "RSS after KiB",
            "+KiB vs base",
            "/metrics streams after",
            "+KiB after requests",
        ],
    );
    for c in cycles {
        opening.row(vec![
            c.cycle.to_string(),
            format!("{}{}", grouped(c.connected as u64), mark(c.open_timed_out)),
            c.failed.to_string(),
            format!("{:.1}", c.open_secs),
            format!("{:.0}", c.opens_per_sec),
            c.open_latency.short_ms(),
            format!("{:.2}", c.per_stream_kib),
            format!("{:.2}", c.per_stream_kib_this_cycle),
            format!("{:.3}", c.fds_per_stream),
        ]);
        closing.row(vec![
            c.cycle.to_string(),
            format!("{:.1}", c.held_secs),
            format!(
                "{}/{}",
                grouped(c.keepalive_streams as u64),
                grouped(c.connected as u64)
            ),
            c.ended_while_held.to_string(),
            format!("{:.1}{}", c.close_secs, mark(!c.close_settled)),
            c.usage_after_close.fds.to_string(),
            c.usage_after_close.rss_kib.to_string(),
            c.rss_after_close_vs_baseline_kib.to_string(),
            c.gauge_after_close.map_or("-".into(), |g| g.to_string()),
            c.rss_after_requests_vs_baseline_kib.to_string(),
        ]);
    }
    vec![memory, opening, closing]
}
