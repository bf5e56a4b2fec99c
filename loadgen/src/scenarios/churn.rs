//! `churn`: many short-lived streams. Each cycle opens a stream, waits for `connected` and
//! closes it, with a bounded number of cycles in flight. What it shows: whether anything is left
//! behind per cycle (descriptors, memory, threads after vs before), how fast the server notices
//! closed streams (the peak of its descriptors while churning), and the cycle rate.
//!
//! The cycles run in rounds on one server process, with the server's usage read after each
//! (once its descriptors are back to the baseline): memory that climbs round after round by the
//! same step is left behind per cycle; memory that rises once and stays level is the allocator
//! keeping freed pages.
//!
//! Each in-flight worker has one user and reuses its token cycle after cycle, as a browser
//! reconnecting does. If the server has not yet noticed the previous close when the next connect
//! arrives, that connect replaces the old stream (the hub's reconnect path) rather than opening a
//! fresh one; either way the old stream must be fully released.

use super::{Ctx, Outcome, ServerEnd, secs, settle, spawn_peak_sampler, warm_up};
use crate::api;
use crate::http::{Target, error_kind};
use crate::proc::{self, CpuMeter, CpuUse, Usage};
use crate::report::{Table, grouped, mark};
use crate::stats::{Summary, Tally, bump, merge};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Options of `churn`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Connect/close cycles in total.
    #[arg(long, default_value_t = 100_000)]
    pub cycles: usize,
    /// Rounds the cycles are split into (usage is read after each).
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// Cycles in flight at once. Above the server's listen backlog (128) some connects find
    /// its accept queue full and wait for a SYN retry (see the TCP counters); the brief's 200
    /// is kept as the default, so that shows.
    #[arg(long, default_value_t = 200)]
    pub inflight: usize,
    /// Deadline (s) for all the cycles.
    #[arg(long, default_value_t = 180.0)]
    pub timeout: f64,
    /// Deadline (s) for one cycle.
    #[arg(long, default_value_t = 10.0)]
    pub op_timeout: f64,
    /// Deadline (s) for the server's descriptors to return to the baseline after each round.
    #[arg(long, default_value_t = 30.0)]
    pub settle_timeout: f64,
}

/// One round of cycles.
#[derive(Debug, Clone, Serialize)]
struct Round {
    round: usize,
    cycles_target: usize,
    completed: u64,
    failed: u64,
    secs: f64,
    cycles_per_sec: f64,
    /// CPU use while cycling.
    cpu: CpuUse,
    /// The server once its descriptors were back to the baseline (or at the deadline).
    after: Usage,
    settle_secs: f64,
    settled: bool,
    rss_vs_before_kib: i64,
}

#[derive(Debug, Clone, Serialize)]
struct Result {
    cycles_target: usize,
    inflight: usize,
    completed: u64,
    failed: u64,
    timed_out: bool,
    /// Seconds spent cycling (settling between rounds not counted).
    secs: f64,
    cycles_per_sec: f64,
    /// Connect → `connected` time per cycle.
    connect_latency: Summary,
    before: Usage,
    peak_during: Usage,
    rounds: Vec<Round>,
    after: Usage,
    gauge_after: Option<u64>,
    rss_after_vs_before_kib: i64,
    fds_after_vs_before: i64,
    threads_after_vs_before: i64,
    /// The server's `drawmesh_tasks_alive` before and after (each read by a scrape of its own).
    tasks_before: Option<f64>,
    tasks_after: Option<f64>,
    errors: Tally,
    server: ServerEnd,
}

/// Runs `churn`.
pub async fn run(ctx: &Ctx, args: &ChurnArgs) -> std::result::Result<Outcome, String> {
    let (mut server, target) = ctx.start()?;
    let pid = server.pid;
    warm_up(&target).await;
    let before_tokens = proc::usage(pid);
    let workers = args.inflight.clamp(1, args.cycles.max(1));
    let (tokens, mut errors) = api::issue_tokens(
        &target,
        workers,
        workers.min(32),
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    settle(pid, before_tokens.fds, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proc::usage(pid);
    let tasks_before = api::gauge(&target, "drawmesh_tasks_alive").await;
    let tokens = Arc::new(tokens);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_peak_sampler(pid, Duration::from_millis(100), Arc::clone(&stop));
    let deadline = Instant::now() + secs(args.timeout);
    let rounds_n = args.rounds.clamp(1, args.cycles.max(1));
    let mut rounds = Vec::new();
    let mut latencies = Vec::new();
    let mut cycling_secs = 0.0;
    for r in 0..rounds_n {
        // Split as evenly as possible; the first rounds take the remainder.
        let target_cycles = args.cycles / rounds_n + usize::from(r < args.cycles % rounds_n);
        eprintln!(
            "drawmesh-load: churn round {}: {target_cycles} cycles",
            r + 1
        );
        let cpu = CpuMeter::start(pid);
        let started = Instant::now();
        let (completed, round_errors) = run_round(
            &target,
            &tokens,
            target_cycles,
            deadline,
            secs(args.op_timeout),
            &mut latencies,
        )
        .await;
        let round_secs = started.elapsed().as_secs_f64();
        let cpu = cpu.read();
        cycling_secs += round_secs;
        let settled = settle(pid, before.fds, secs(args.settle_timeout)).await;
        rounds.push(Round {
            round: r + 1,
            cycles_target: target_cycles,
            completed,
            failed: round_errors.values().sum(),
            secs: round_secs,
            cycles_per_sec: completed as f64 / round_secs.max(1e-9),
            cpu,
            after: settled.usage,
            settle_secs: settled.secs,
            settled: settled.settled,
            rss_vs_before_kib: settled.usage.rss_kib as i64 - before.rss_kib as i64,
        });
        merge(&mut errors, &round_errors);
        if Instant::now() >= deadline {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let peak_during = sampler.await.unwrap_or_default();
    let after = proc::usage(pid);
    let gauge_after = api::streams_gauge(&target).await;
    let tasks_after = api::gauge(&target, "drawmesh_tasks_alive").await;
    let completed: u64 = rounds.iter().map(|r| r.completed).sum();
    let result = Result {
        cycles_target: args.cycles,
        inflight: workers,
        completed,
        failed: rounds.iter().map(|r| r.failed).sum(),
        timed_out: (completed as usize) < args.cycles && Instant::now() >= deadline,
        secs: cycling_secs,
        cycles_per_sec: completed as f64 / f64::max(cycling_secs, 1e-9),
        connect_latency: Summary::of_nanos(&mut latencies),
        before,
        peak_during,
        rounds,
        after,
        gauge_after,
        rss_after_vs_before_kib: after.rss_kib as i64 - before.rss_kib as i64,
        fds_after_vs_before: after.fds as i64 - before.fds as i64,
        threads_after_vs_before: after.threads as i64 - before.threads as i64,
        tasks_before,
        tasks_after,
        errors,
        server: ServerEnd::of(&mut server),
    };
    let tables = tables(&result);
    let json = serde_json::to_value(&result).map_err(|e| e.to_string())?;
    Ok(Outcome { json, tables })
}

/// `n` cycles over the workers (one per token); returns those completed and the failures.
async fn run_round(
    target: &Arc<Target>,
    tokens: &Arc<Vec<api::Access>>,
    n: usize,
    deadline: Instant,
    op_timeout: Duration,
    latencies: &mut Vec<u64>,
) -> (u64, Tally) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..tokens.len() {
        let (target, tokens, next) = (Arc::clone(target), Arc::clone(tokens), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let token = &tokens[w].token;
            let mut done = 0u64;
            let mut errors = Tally::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < n {
                let t0 = Instant::now();
                let opened = tokio::time::timeout_at(
                    deadline.min(t0 + op_timeout),
                    api::open_stream(&target, token, 512, &mut |_| {}),
                )
                .await;
                match opened {
                    // Dropping the stream closes it.
                    Ok(Ok(_stream)) => {
                        done += 1;
                        latencies.push(t0.elapsed().as_nanos() as u64);
                    }
                    Ok(Err(e)) => bump(&mut errors, format!("open: {}", error_kind(&e))),
                    Err(_) => bump(&mut errors, "open: timeout"),
                }
            }
            (done, errors, latencies)
        }));
    }
    let mut completed = 0;
    let mut errors = Tally::new();
    for t in tasks {
        if let Ok((done, e, l)) = t.await {
            completed += done;
            merge(&mut errors, &e);
            latencies.extend(l);
        }
    }
    (completed, errors)
}

fn tables(r: &Result) -> Vec<Table> {
    let mut usage = Table::new(
        format!(
            "churn: {} connect/close cycles in {} rounds, {} in flight",
            grouped(r.cycles_target as u64),
            r.rounds.len(),
            r.inflight
        ),
        &[
            "",
            "cycles done",
            "cycles/s",
            "CPU server / client",
            "RSS KiB",
            "+KiB vs before",
            "fds",
            "threads",
            "settle s",
        ],
    );
    usage.row(vec![
        "before".into(),
        String::new(),
        String::new(),
        String::new(),
        r.before.rss_kib.to_string(),
        "0".into(),
        r.before.fds.to_string(),
        r.before.threads.to_string(),
        String::new(),
    ]);
    let mut done = 0;
    for round in &r.rounds {
        done += round.completed;
        usage.row(vec![
            format!("after round {}", round.round),
            grouped(done),
            format!("{:.0}", round.cycles_per_sec),
            format!(
                "{:.2} / {:.2}",
                round.cpu.server_cores, round.cpu.client_cores
            ),
            round.after.rss_kib.to_string(),
            round.rss_vs_before_kib.to_string(),
            round.after.fds.to_string(),
            round.after.threads.to_string(),
            format!("{:.1}{}", round.settle_secs, mark(!round.settled)),
        ]);
    }
    usage.row(vec![
        "peak while churning".into(),
        String::new(),
        String::new(),
        String::new(),
        r.peak_during.rss_kib.to_string(),
        String::new(),
        r.peak_during.fds.to_string(),
        r.peak_during.threads.to_string(),
        String::new(),
    ]);
    let mut summary = Table::new(
        "churn: rate",
        &[
            "completed",
            "failed",
            "secs",
            "cycles/s",
            "connect->connected p50 / p99 / max",
            "/metrics streams after",
            "tasks before / after",
        ],
    );
    let tasks = |t: Option<f64>| t.map_or("-".into(), |t| format!("{t:.0}"));
    summary.row(vec![
        format!("{}{}", grouped(r.completed), mark(r.timed_out)),
        grouped(r.failed),
        format!("{:.1}", r.secs),
        format!("{:.0}", r.cycles_per_sec),
        r.connect_latency.short_ms(),
        r.gauge_after.map_or("-".into(), |g| g.to_string()),
        format!("{} / {}", tasks(r.tasks_before), tasks(r.tasks_after)),
    ]);
    vec![usage, summary]
}
