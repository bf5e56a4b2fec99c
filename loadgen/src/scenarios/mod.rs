//! The scenarios, one per module, and what they share: a fresh server per scenario, the warm-up
//! before a baseline, and the bounded wait for the server's descriptors to come back down.
//!
//! Every loop here is bounded twice: by a count and by a deadline per phase. A phase that runs
//! out of time stops, and its result says how far it got and that it timed out.

pub mod churn;
pub mod fanout;
pub mod hold;
pub mod relay;

use crate::api;
use crate::http::Target;
use crate::proc::{self, Usage};
use crate::report::Table;
use crate::server::{LogSummary, Server, ServerOpts};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What every scenario needs to start its server and reach it.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// How to start the server.
    pub server: ServerOpts,
    /// Client source addresses 127.0.0.`first` ..= 127.0.0.`last`.
    pub source_first: u8,
    /// See `source_first`.
    pub source_last: u8,
}

impl Ctx {
    /// A fresh server and the target to reach it.
    pub fn start(&self) -> Result<(Server, Arc<Target>), String> {
        let server = Server::start(&self.server)?;
        let target = Arc::new(Target::new(
            server.addr,
            self.source_first,
            self.source_last,
        ));
        Ok((server, target))
    }
}

/// A scenario's figures (JSON) and its tables.
pub struct Outcome {
    /// Everything measured.
    pub json: Value,
    /// The reading for a person.
    pub tables: Vec<Table>,
}

/// Seconds as a `Duration` (negative or NaN: zero).
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// Opens one stream and closes it, then lets the server settle: the first connection pays for
/// lazily built things (allocator arenas, the hub's maps) that belong in the baseline.
pub async fn warm_up(target: &Arc<Target>) {
    let warm = async {
        let deadline = Instant::now() + Duration::from_secs(5);
        let (tokens, _) = api::issue_tokens(target, 1, 1, deadline).await;
        if let Some(a) = tokens.first() {
            let _ = api::open_stream(target, &a.token, 512, &mut |_| {}).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), warm).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The end of a wait for the server's descriptors to return to a baseline.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Settle {
    /// The server's usage when the wait ended.
    pub usage: Usage,
    /// Whether the descriptors got back to the baseline (false: the deadline ran out).
    pub settled: bool,
    /// How long it took.
    pub secs: f64,
}

/// Polls `pid` every 50 ms until it has at most `baseline_fds` descriptors, for at most
/// `timeout`.
pub async fn settle(pid: u32, baseline_fds: u64, timeout: Duration) -> Settle {
    let started = Instant::now();
    loop {
        let usage = proc::usage(pid);
        let settled = usage.fds <= baseline_fds;
        if settled || started.elapsed() >= timeout {
            return Settle {
                usage,
                settled,
                secs: started.elapsed().as_secs_f64(),
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Samples `pid` every `every` until `stop` flips; returns the peaks seen.
pub fn spawn_peak_sampler(
    pid: u32,
    every: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Usage> {
    tokio::spawn(async move {
        let mut peak = Usage::default();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let u = proc::usage(pid);
            peak.rss_kib = peak.rss_kib.max(u.rss_kib);
            peak.fds = peak.fds.max(u.fds);
            peak.threads = peak.threads.max(u.threads);
            tokio::time::sleep(every).await;
        }
        peak
    })
}

/// The server's log summary, plus whether it is still running.
#[derive(Debug, Clone, Serialize)]
pub struct ServerEnd {
    /// Still running at the end of the scenario (false: it died).
    pub running: bool,
    /// What it logged.
    pub log: LogSummary,
}

impl ServerEnd {
    /// Reads both from `server`.
    pub fn of(server: &mut Server) -> ServerEnd {
        ServerEnd {
            running: server.is_running(),
            log: server.log_summary(),
        }
    }
}
