//! `churn`: many short-lived streams. Each cycle opens a stream, waits for `connected` and
//! closes it, with a bounded number of cycles in flight. What it shows: whether anything is left
//! behind per cycle (descriptors, memory, threads after vs before), how fast the server notices
//! closed streams (the peak of its descriptors while churning), and the cycle rate.
//!
//! Each in-flight worker has one user and reuses its token cycle after cycle, as a browser
//! reconnecting does. If the server has not yet noticed the previous close when the next connect
//! arrives, that connect replaces the old stream (the hub's reconnect path) rather than opening a
//! fresh one; either way the old stream must be fully released.

use super::{Ctx, Outcome, ServerEnd, secs, settle, spawn_peak_sampler, warm_up};
use crate::api;
use crate::http::error_kind;
use crate::proc::{self, Usage};
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
    /// Cycles in flight at once.
    #[arg(long, default_value_t = 200)]
    pub inflight: usize,
    /// Deadline (s) for all the cycles.
    #[arg(long, default_value_t = 180.0)]
    pub timeout: f64,
    /// Deadline (s) for one cycle.
    #[arg(long, default_value_t = 10.0)]
    pub op_timeout: f64,
    /// Deadline (s) for the server's descriptors to return to the baseline afterwards.
    #[arg(long, default_value_t = 60.0)]
    pub settle_timeout: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Result {
    cycles_target: usize,
    inflight: usize,
    completed: u64,
    failed: u64,
    timed_out: bool,
    secs: f64,
    cycles_per_sec: f64,
    /// Connect → `connected` time per cycle.
    connect_latency: Summary,
    before: Usage,
    peak_during: Usage,
    after: Usage,
    settle_secs: f64,
    settled: bool,
    gauge_after: Option<u64>,
    rss_after_vs_before_kib: i64,
    fds_after_vs_before: i64,
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
    let (tokens, token_errors) = api::issue_tokens(
        &target,
        workers,
        workers.min(32),
        Instant::now() + Duration::from_secs(30),
    )
    .await;
    settle(pid, before_tokens.fds, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = proc::usage(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_peak_sampler(pid, Duration::from_millis(100), Arc::clone(&stop));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + secs(args.timeout);
    let op_timeout = secs(args.op_timeout);
    let total = args.cycles;
    let mut tasks = Vec::new();
    for access in tokens {
        let (target, next) = (Arc::clone(&target), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut errors = Tally::new();
            let mut latencies = Vec::new();
            while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let limit = deadline.min(t0 + op_timeout);
                let opened = tokio::time::timeout_at(
                    limit,
                    api::open_stream(&target, &access.token, 512, &mut |_| {}),
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
    let mut errors = token_errors;
    let mut latencies = Vec::new();
    for t in tasks {
        if let Ok((done, e, l)) = t.await {
            completed += done;
            merge(&mut errors, &e);
            latencies.extend(l);
        }
    }
    let churn_secs = started.elapsed().as_secs_f64();
    let timed_out = Instant::now() >= deadline && (completed as usize) < total;
    let settled = settle(pid, before.fds, secs(args.settle_timeout)).await;
    stop.store(true, Ordering::Relaxed);
    let peak_during = sampler.await.unwrap_or_default();
    let gauge_after = api::streams_gauge(&target).await;
    let failed: u64 = errors
        .iter()
        .filter(|(k, _)| k.starts_with("open"))
        .map(|(_, v)| v)
        .sum();
    let result = Result {
        cycles_target: total,
        inflight: workers,
        completed,
        failed,
        timed_out,
        secs: churn_secs,
        cycles_per_sec: completed as f64 / churn_secs.max(1e-9),
        connect_latency: Summary::of_nanos(&mut latencies),
        before,
        peak_during,
        after: settled.usage,
        settle_secs: settled.secs,
        settled: settled.settled,
        gauge_after,
        rss_after_vs_before_kib: settled.usage.rss_kib as i64 - before.rss_kib as i64,
        fds_after_vs_before: settled.usage.fds as i64 - before.fds as i64,
        errors,
        server: ServerEnd::of(&mut server),
    };

    let mut t = Table::new(
        format!(
            "churn: {} connect/close cycles, {} in flight",
            grouped(total as u64),
            workers
        ),
        &["", "RSS KiB", "fds", "threads", "/metrics streams"],
    );
    let row = |label: &str, u: &Usage, gauge: Option<u64>| {
        vec![
            label.to_owned(),
            u.rss_kib.to_string(),
            u.fds.to_string(),
            u.threads.to_string(),
            gauge.map_or("-".into(), |g| g.to_string()),
        ]
    };
    t.row(row("before", &result.before, None));
    t.row(row("peak while churning", &result.peak_during, None));
    t.row(row(
        &format!(
            "after ({:.1} s to settle{})",
            result.settle_secs,
            mark(!result.settled)
        ),
        &result.after,
        result.gauge_after,
    ));
    let mut summary = Table::new(
        "churn: rate",
        &[
            "completed",
            "failed",
            "secs",
            "cycles/s",
            "connect->connected p50 / p99 / max",
        ],
    );
    summary.row(vec![
        format!("{}{}", grouped(result.completed), mark(result.timed_out)),
        grouped(result.failed),
        format!("{:.1}", result.secs),
        format!("{:.0}", result.cycles_per_sec),
        result.connect_latency.short_ms(),
    ]);
    let json = serde_json::to_value(&result).map_err(|e| e.to_string())?;
    Ok(Outcome {
        json,
        tables: vec![t, summary],
    })
}
