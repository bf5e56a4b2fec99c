//! `relay`: the hot path. Pairs of peers, each pair alone in a room; every sender relays
//! session descriptions to its receiver over a few keep-alive connections (one request in flight
//! on each), and every message carries its number and send time in its SDP text, so the receiver
//! can time it (POST start → SSE event in hand) and count losses, duplicates and reorderings.
//!
//! Numbering is per sender connection: requests on one connection are sequential (the next one
//! starts after the previous one was answered, i.e. after the hub queued it), so the server owes
//! us their order; across connections of the same sender it owes none, and none is checked.
//!
//! First a run as fast as the connections allow, then a sweep of fixed target rates (each
//! connection paced on its own schedule) for a latency-against-rate plot.
//!
//! A receiver that falls `--stream-queue` (256) events behind is closed by the server, which
//! then refuses relays to it (403): the run reports that, counts the messages dropped with the
//! queue as lost, and the stream is reopened and rejoined before the next run, as a browser's
//! EventSource would.

use super::{Ctx, Outcome, ServerEnd, secs, warm_up};
use crate::api::{self, Access};
use crate::http::{Conn, SseConn, Target, error_kind};
use crate::proc::{self, CpuMeter, CpuUse};
use crate::report::{Table, grouped};
use crate::sse::SseItem;
use crate::stats::{SeqTracker, Summary, Tally, bump, merge};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Options of `relay`.
#[derive(clap::Args, Debug, Clone)]
pub struct RelayArgs {
    /// Sender/receiver pairs, each pair in a room of its own.
    #[arg(long, default_value_t = 10)]
    pub pairs: usize,
    /// Requests in flight per sender (one keep-alive connection each).
    #[arg(long, default_value_t = 4)]
    pub inflight: usize,
    /// Seconds of the as-fast-as-allowed run (0: skip it).
    #[arg(long, default_value_t = 10.0)]
    pub secs: f64,
    /// At most this many messages per sender connection in any run (a count bound beside the
    /// time bound).
    #[arg(long, default_value_t = 1_000_000)]
    pub max_per_conn: u64,
    /// Target total rates (messages/s over all senders) of the sweep, comma-separated; `0`
    /// for no sweep. The top steps approach what the unpaced run reaches, where queueing shows.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,4000,8000,16000,24000,32000,40000"
    )]
    pub sweep: Vec<u64>,
    /// Seconds per sweep step.
    #[arg(long, default_value_t = 4.0)]
    pub sweep_secs: f64,
    /// Seconds to wait, after the senders stop, for messages still on their way.
    #[arg(long, default_value_t = 3.0)]
    pub drain_secs: f64,
    /// Deadline (s) for one relay request.
    #[arg(long, default_value_t = 5.0)]
    pub op_timeout: f64,
}

/// What one message carries: which run and sender connection, its number, when it was sent
/// (ns since the load generator's clock base; sender and receiver share the process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// The run (0: as fast as allowed; 1.. the sweep steps).
    pub run: u32,
    /// The sender connection, unique over all pairs.
    pub conn: u32,
    /// Its number on that connection, from 0.
    pub seq: u64,
    /// Send time.
    pub sent_ns: u64,
}

/// The SDP text of a message: a plausible session description whose origin line carries the
/// marker (`o=<username> <sess-id> <sess-version> …`).
pub fn marker_sdp(m: Marker) -> String {
    format!(
        "v=0\r\no=load-{}-{} {} {} IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
        m.run, m.conn, m.seq, m.sent_ns
    )
}

#[derive(Deserialize)]
struct RelayedBody {
    data: SdpBody,
}

#[derive(Deserialize)]
struct SdpBody {
    sdp: String,
}

/// The marker in a relayed `session-description` event's data
/// (`{"peer": {...}, "data": {"type": "offer", "sdp": "..."}}`).
pub fn parse_marker(event_data: &str) -> Option<Marker> {
    let body: RelayedBody = serde_json::from_str(event_data).ok()?;
    let origin = body.data.sdp.split("o=load-").nth(1)?;
    let mut words = origin.split_whitespace();
    let (run, conn) = words.next()?.split_once('-')?;
    Some(Marker {
        run: run.parse().ok()?,
        conn: conn.parse().ok()?,
        seq: words.next()?.parse().ok()?,
        sent_ns: words.next()?.parse().ok()?,
    })
}

/// What a receiver has seen of one run.
#[derive(Default)]
struct RunRecv {
    latencies: Vec<u64>,
    conns: HashMap<u32, SeqTracker>,
}

#[derive(Default)]
struct Recv {
    runs: HashMap<u32, RunRecv>,
    unparsed: u64,
    other_events: Tally,
}

struct Pair {
    room: String,
    sender: Access,
    receiver: Access,
    recv: Arc<Mutex<Recv>>,
    /// Set by the receiver's reader when its stream ends (the server closes a reader that falls
    /// 256 events behind, `--stream-queue`).
    receiver_ended: Arc<AtomicBool>,
    sender_ended: Arc<AtomicBool>,
    /// The two stream readers, aborted when the scenario ends.
    readers: Vec<tokio::task::JoinHandle<()>>,
}

/// Clock base shared by senders and receivers.
#[derive(Clone, Copy)]
struct Clock(std::time::Instant);

impl Clock {
    fn ns(self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

#[derive(Default)]
struct SendStats {
    sent: u64,
    ok: u64,
    failed_seqs: Vec<u64>,
    statuses: Tally,
    errors: Tally,
    post_latencies: Vec<u64>,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// Run number.
    pub run: u32,
    /// Target total rate (msgs/s), or none for as fast as allowed.
    pub target_rate: Option<u64>,
    /// Seconds the senders sent.
    pub send_secs: f64,
    /// Requests made.
    pub posts: u64,
    /// Requests answered 200.
    pub ok: u64,
    /// Requests answered otherwise, by status.
    pub refused: Tally,
    /// Requests that failed (connection errors, timeouts).
    pub errors: Tally,
    /// Requests per second.
    pub posts_per_sec: f64,
    /// Distinct messages delivered.
    pub delivered: u64,
    /// Delivered per second of sending.
    pub delivered_per_sec: f64,
    /// POST start → SSE event received.
    pub latency: Summary,
    /// POST start → response (the request's round trip).
    pub post_latency: Summary,
    /// Answered 200 and never delivered.
    pub lost: u64,
    /// Delivered more than once.
    pub duplicated: u64,
    /// Delivered after a message sent later on the same connection.
    pub reordered: u64,
    /// Whether every expected message arrived before the drain deadline.
    pub drained: bool,
    /// CPU use while sending (who is the bottleneck: the server or this load generator).
    pub cpu: CpuUse,
    /// Receivers' streams the server closed during this run (too slow a reader: its queue of
    /// `--stream-queue` events filled); relays to them are refused (403) until reopened.
    pub receivers_closed_by_server: usize,
    /// Senders' streams closed likewise.
    pub senders_closed_by_server: usize,
    /// Streams reopened (and rejoined) before this run, after closes in earlier runs.
    pub streams_reopened_before: usize,
}

/// Runs `relay`.
pub async fn run(ctx: &Ctx, args: &RelayArgs) -> Result<Outcome, String> {
    let (mut server, target) = ctx.start()?;
    let pid = server.pid;
    warm_up(&target).await;
    let before = proc::usage(pid);
    let clock = Clock(std::time::Instant::now());
    let mut pairs = setup(&target, args.pairs, clock).await?;

    let mut plan: Vec<(u32, Option<u64>, f64)> = Vec::new();
    if args.secs > 0.0 {
        plan.push((0, None, args.secs));
    }
    for (i, &rate) in args.sweep.iter().enumerate() {
        if rate > 0 {
            plan.push((
                u32::try_from(i + 1).unwrap_or(u32::MAX),
                Some(rate),
                args.sweep_secs,
            ));
        }
    }
    let mut phases = Vec::new();
    for (run, rate, duration) in plan {
        // Streams the server closed in an earlier run are reopened (and rejoined) first.
        let mut reopened = 0;
        for pair in &mut pairs {
            reopened += connect(&target, pair, clock).await?;
        }
        let mut phase = run_phase(pid, &target, &pairs, run, rate, duration, args, clock).await;
        phase.streams_reopened_before = reopened;
        phase.receivers_closed_by_server = pairs
            .iter()
            .filter(|p| p.receiver_ended.load(Ordering::Relaxed))
            .count();
        phase.senders_closed_by_server = pairs
            .iter()
            .filter(|p| p.sender_ended.load(Ordering::Relaxed))
            .count();
        phases.push(phase);
    }
    let after = proc::usage(pid);
    let receivers_ended: usize = phases.iter().map(|p| p.receivers_closed_by_server).sum();
    let senders_ended: usize = phases.iter().map(|p| p.senders_closed_by_server).sum();
    let mut unparsed = 0;
    let mut other_events = Tally::new();
    for p in &pairs {
        let r = p.recv.lock().unwrap_or_else(|e| e.into_inner());
        unparsed += r.unparsed;
        merge(&mut other_events, &r.other_events);
    }
    let server_end = ServerEnd::of(&mut server);
    for p in &pairs {
        p.readers.iter().for_each(tokio::task::JoinHandle::abort);
    }

    let mut t = Table::new(
        format!(
            "relay: {} pairs, {} requests in flight per sender (streams the server closed as too slow, over all runs: {} receivers, {} senders; reopened before the next run)",
            args.pairs, args.inflight, receivers_ended, senders_ended
        ),
        &[
            "run",
            "target/s",
            "posts/s",
            "delivered/s",
            "latency p50 / p99 / max",
            "POST rtt p50 / p99",
            "CPU server / client",
            "lost",
            "dup",
            "reord",
            "refused",
            "errors",
            "closed by server",
        ],
    );
    for p in &phases {
        t.row(vec![
            p.run.to_string(),
            p.target_rate.map_or("max".into(), |r| r.to_string()),
            format!("{:.0}", p.posts_per_sec),
            format!("{:.0}", p.delivered_per_sec),
            p.latency.short_ms(),
            format!(
                "{:.2} / {:.2} ms",
                p.post_latency.p50_us / 1000.0,
                p.post_latency.p99_us / 1000.0
            ),
            format!("{:.2} / {:.2}", p.cpu.server_cores, p.cpu.client_cores),
            format!(
                "{}{}",
                grouped(p.lost),
                if p.drained { "" } else { " (drain timed out)" }
            ),
            p.duplicated.to_string(),
            p.reordered.to_string(),
            p.refused.values().sum::<u64>().to_string(),
            p.errors.values().sum::<u64>().to_string(),
            (p.receivers_closed_by_server + p.senders_closed_by_server).to_string(),
        ]);
    }
    let sweep: Vec<_> = phases
        .iter()
        .filter(|p| p.target_rate.is_some())
        .map(|p| {
            serde_json::json!({
                "target_rate": p.target_rate,
                "delivered_per_sec": p.delivered_per_sec,
                "p50_us": p.latency.p50_us,
                "p99_us": p.latency.p99_us,
                "max_us": p.latency.max_us,
            })
        })
        .collect();
    let json = serde_json::json!({
        "pairs": args.pairs,
        "inflight_per_sender": args.inflight,
        "max": phases.iter().find(|p| p.target_rate.is_none()),
        "sweep": sweep,
        "phases": phases,
        "receivers_closed_by_server": receivers_ended,
        "senders_closed_by_server": senders_ended,
        "unparsed_events": unparsed,
        "other_events": other_events,
        "before": before,
        "after": after,
        "server": server_end,
    });
    Ok(Outcome {
        json,
        tables: vec![t],
    })
}

/// Tokens, streams and joins for every pair; spawns the stream readers.
async fn setup(target: &Arc<Target>, n: usize, clock: Clock) -> Result<Vec<Pair>, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (tokens, errors) = api::issue_tokens(target, 2 * n, 8, deadline).await;
    if tokens.len() < 2 * n {
        return Err(format!(
            "relay: only {} of {} tokens: {errors:?}",
            tokens.len(),
            2 * n
        ));
    }
    let mut pairs = Vec::new();
    for (i, two) in tokens.chunks(2).enumerate() {
        let mut pair = Pair {
            room: format!("relay-{i}"),
            sender: two[0].clone(),
            receiver: two[1].clone(),
            recv: Arc::default(),
            // Not open yet: `connect` opens what has ended.
            receiver_ended: Arc::new(AtomicBool::new(true)),
            sender_ended: Arc::new(AtomicBool::new(true)),
            readers: Vec::new(),
        };
        connect(target, &mut pair, clock).await?;
        pairs.push(pair);
    }
    Ok(pairs)
}

/// Opens whichever of the pair's streams is not open (at the start, or after the server closed
/// it as too slow: a browser would reconnect too), then joins both to their room (a join of a
/// member already in it changes nothing). Returns how many streams it opened.
async fn connect(target: &Arc<Target>, pair: &mut Pair, clock: Clock) -> Result<usize, String> {
    let open = |token: String| {
        let target = Arc::clone(target);
        async move {
            // Busy streams: a large read buffer.
            tokio::time::timeout(
                Duration::from_secs(10),
                api::open_stream(&target, &token, 64 * 1024, &mut |_| {}),
            )
            .await
            .map_err(|_| "relay: stream open timed out".to_owned())?
            .map_err(|e| format!("relay: stream: {}", error_kind(&e)))
        }
    };
    let mut opened = 0;
    if pair.receiver_ended.swap(false, Ordering::Relaxed) {
        let sse = open(pair.receiver.token.clone()).await?;
        pair.readers.push(tokio::spawn(receive(
            sse,
            Arc::clone(&pair.recv),
            Arc::clone(&pair.receiver_ended),
            clock,
        )));
        opened += 1;
    }
    if pair.sender_ended.swap(false, Ordering::Relaxed) {
        let sse = open(pair.sender.token.clone()).await?;
        pair.readers
            .push(tokio::spawn(discard(sse, Arc::clone(&pair.sender_ended))));
        opened += 1;
    }
    if opened == 0 {
        return Ok(0);
    }
    let joins = async {
        let mut conn = Conn::open(target)
            .await
            .map_err(|e| format!("relay: join connect: {}", error_kind(&e)))?;
        for who in [&pair.receiver, &pair.sender] {
            let res = conn
                .send(&api::join_request(target, &pair.room, &who.token))
                .await
                .map_err(|e| format!("relay: join: {}", error_kind(&e)))?;
            if res.status != 200 {
                return Err(format!("relay: join answered {}", res.status));
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), joins)
        .await
        .map_err(|_| "relay: joins timed out".to_owned())??;
    Ok(opened)
}

/// A receiver's reader: times and numbers every relayed message.
async fn receive(mut sse: SseConn, recv: Arc<Mutex<Recv>>, ended: Arc<AtomicBool>, clock: Clock) {
    let mut on_item = |item: SseItem| {
        let SseItem::Event(e) = item else { return };
        let now = clock.ns();
        let mut r = recv.lock().unwrap_or_else(|p| p.into_inner());
        if e.event != "session-description" {
            bump(&mut r.other_events, e.event);
            return;
        }
        match parse_marker(&e.data) {
            Some(m) => {
                let run = r.runs.entry(m.run).or_default();
                run.latencies.push(now.saturating_sub(m.sent_ns));
                run.conns.entry(m.conn).or_default().record(m.seq);
            }
            None => r.unparsed += 1,
        }
    };
    while let Ok(true) = sse.read_some(&mut on_item).await {}
    ended.store(true, Ordering::Relaxed);
}

/// A sender's own stream: read (so it stays open and drained) and ignored.
async fn discard(mut sse: SseConn, ended: Arc<AtomicBool>) {
    while let Ok(true) = sse.read_some(&mut |_| {}).await {}
    ended.store(true, Ordering::Relaxed);
}

#[allow(clippy::too_many_arguments)]
async fn run_phase(
    pid: u32,
    target: &Arc<Target>,
    pairs: &[Pair],
    run: u32,
    rate: Option<u64>,
    duration: f64,
    args: &RelayArgs,
    clock: Clock,
) -> Phase {
    let conns_total = (pairs.len() * args.inflight.max(1)) as f64;
    // Each connection's share of the target rate, as a fixed schedule.
    let period = rate.map(|r| Duration::from_secs_f64(conns_total / r as f64));
    eprintln!(
        "drawmesh-load: relay run {run}: {} for {duration} s",
        rate.map_or("as fast as allowed".to_owned(), |r| format!("{r} msgs/s"))
    );
    let cpu = CpuMeter::start(pid);
    let started = Instant::now();
    let deadline = started + secs(duration);
    let mut tasks = Vec::new();
    for (p, pair) in pairs.iter().enumerate() {
        for k in 0..args.inflight.max(1) {
            let conn_id = u32::try_from(p * args.inflight.max(1) + k).unwrap_or(u32::MAX);
            // Stagger the schedules so the connections do not fire in step.
            let offset = period.map_or(Duration::ZERO, |per| {
                per.mul_f64(f64::from(conn_id) / conns_total)
            });
            let target = Arc::clone(target);
            let (token, to) = (pair.sender.token.clone(), pair.receiver.id.clone());
            let (max, op_timeout) = (args.max_per_conn, secs(args.op_timeout));
            tasks.push((
                conn_id,
                p,
                tokio::spawn(async move {
                    send_loop(
                        &target,
                        &token,
                        &to,
                        run,
                        conn_id,
                        period,
                        started + offset,
                        deadline,
                        max,
                        op_timeout,
                        clock,
                    )
                    .await
                }),
            ));
        }
    }
    let mut per_conn: Vec<(u32, usize, SendStats)> = Vec::new();
    for (conn_id, p, t) in tasks {
        per_conn.push((conn_id, p, t.await.unwrap_or_default()));
    }
    let send_secs = started.elapsed().as_secs_f64();
    let cpu = cpu.read();

    // Drain: until every pair has everything its sender had acknowledged, or the deadline.
    let expected: Vec<u64> = (0..pairs.len())
        .map(|p| per_conn.iter().filter(|c| c.1 == p).map(|c| c.2.ok).sum())
        .collect();
    let drain_deadline = Instant::now() + secs(args.drain_secs);
    let drained = loop {
        let all_in = pairs.iter().zip(&expected).all(|(pair, &want)| {
            let r = pair.recv.lock().unwrap_or_else(|p| p.into_inner());
            let got: u64 = r
                .runs
                .get(&run)
                .map_or(0, |rr| rr.conns.values().map(|t| t.unique).sum());
            got >= want
        });
        if all_in {
            break true;
        }
        if Instant::now() >= drain_deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let mut phase = Phase {
        run,
        target_rate: rate,
        send_secs,
        posts: 0,
        ok: 0,
        refused: Tally::new(),
        errors: Tally::new(),
        posts_per_sec: 0.0,
        delivered: 0,
        delivered_per_sec: 0.0,
        latency: Summary::default(),
        post_latency: Summary::default(),
        lost: 0,
        duplicated: 0,
        reordered: 0,
        drained,
        cpu,
        receivers_closed_by_server: 0,
        senders_closed_by_server: 0,
        streams_reopened_before: 0,
    };
    let mut latencies = Vec::new();
    let mut post_latencies = Vec::new();
    let mut runs: Vec<RunRecv> = pairs
        .iter()
        .map(|pair| {
            let mut r = pair.recv.lock().unwrap_or_else(|p| p.into_inner());
            r.runs.remove(&run).unwrap_or_default()
        })
        .collect();
    for (conn_id, p, stats) in &mut per_conn {
        phase.posts += stats.sent;
        phase.ok += stats.ok;
        merge(&mut phase.refused, &stats.statuses);
        merge(&mut phase.errors, &stats.errors);
        post_latencies.append(&mut stats.post_latencies);
        let tracker = runs[*p].conns.remove(conn_id).unwrap_or_default();
        phase.delivered += tracker.unique;
        phase.duplicated += tracker.duplicates;
        phase.reordered += tracker.reordered;
        phase.lost += tracker.lost(stats.sent, &stats.failed_seqs);
    }
    for r in &mut runs {
        latencies.append(&mut r.latencies);
        // Messages from connections we do not know of (cannot happen unless ids collide).
        for t in r.conns.values() {
            phase.delivered += t.unique;
        }
    }
    phase.posts_per_sec = phase.posts as f64 / send_secs.max(1e-9);
    phase.delivered_per_sec = phase.delivered as f64 / send_secs.max(1e-9);
    phase.latency = Summary::of_nanos(&mut latencies);
    phase.post_latency = Summary::of_nanos(&mut post_latencies);
    phase
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    target: &Target,
    token: &str,
    to: &str,
    run: u32,
    conn_id: u32,
    period: Option<Duration>,
    start: Instant,
    deadline: Instant,
    max: u64,
    op_timeout: Duration,
    clock: Clock,
) -> SendStats {
    let mut stats = SendStats::default();
    let mut conn: Option<Conn> = None;
    for seq in 0..max {
        if let Some(period) = period {
            // A fixed schedule: late requests go at once (the rate is kept on average).
            let at = start + period.mul_f64(seq as f64);
            if at >= deadline {
                break;
            }
            tokio::time::sleep_until(at).await;
        }
        if Instant::now() >= deadline {
            break;
        }
        let t0 = Instant::now();
        let sent_ns = clock.ns();
        let req = api::relay_offer_request(
            target,
            to,
            token,
            &marker_sdp(Marker {
                run,
                conn: conn_id,
                seq,
                sent_ns,
            }),
        );
        stats.sent = seq + 1;
        let result = tokio::time::timeout(op_timeout, async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(Conn::open(target).await?),
            };
            c.send(&req).await
        })
        .await;
        match result {
            Ok(Ok(res)) if res.status == 200 => {
                stats.ok += 1;
                stats.post_latencies.push(t0.elapsed().as_nanos() as u64);
            }
            Ok(Ok(res)) => {
                stats.failed_seqs.push(seq);
                bump(&mut stats.statuses, res.status.to_string());
            }
            Ok(Err(e)) => {
                stats.failed_seqs.push(seq);
                bump(&mut stats.errors, error_kind(&e));
                conn = None;
            }
            Err(_) => {
                stats.failed_seqs.push(seq);
                bump(&mut stats.errors, "timeout");
                conn = None;
            }
        }
        if conn.as_ref().is_some_and(Conn::is_closed) {
            conn = None;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_survive_the_relay() {
        let m = Marker {
            run: 3,
            conn: 17,
            seq: 123_456,
            sent_ns: 9_876_543_210,
        };
        // What the receiver gets: the body as posted, wrapped with the sender.
        let data = serde_json::json!({
            "peer": {"id": "p", "username": "bench1"},
            "data": {"type": "offer", "sdp": marker_sdp(m)},
        })
        .to_string();
        assert_eq!(parse_marker(&data), Some(m));
        assert_eq!(
            parse_marker(r#"{"peer":{},"data":{"type":"offer","sdp":"v=0"}}"#),
            None
        );
        assert_eq!(parse_marker("not json"), None);
    }
}
