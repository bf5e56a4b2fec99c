//! `fanout`: a burst of joins. R rooms of P peers: every stream is opened first, then all R×P
//! join requests are released at once (their connections already open, so "at once" is about
//! the requests, not TCP handshakes).
//!
//! However the server orders the joins within a room, each pair of members is introduced exactly
//! once: the later joiner gets `add-peer` (offer: true) about the earlier, the earlier gets
//! `add-peer` (offer: false) about the later. So every member expects exactly P−1 `add-peer`
//! events, one per roommate, and each was caused by one join request: its own (offer: true) or
//! the roommate's (offer: false). Latency is from that request's start to the event's arrival,
//! twice: to when this process read it, and to when it reached this process's socket (the
//! kernel's `SO_TIMESTAMPNS` stamp, against the wall clock read with the request's start). They
//! differ by the time the event waited for this process, which shares the machine's cores with
//! the server and is busiest exactly during the burst: the first figure holds the load
//! generator's own delay, the second what the server and the network took.

use super::{Ctx, Outcome, ServerEnd, secs, settle, warm_up};
use crate::api;
use crate::http::{Conn, error_kind};
use crate::proc;
use crate::report::{Table, grouped, mark};
use crate::sse::SseItem;
use crate::stats::{Summary, Tally, bump, merge};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::Barrier;
use tokio::time::Instant;

/// Options of `fanout`.
#[derive(clap::Args, Debug, Clone)]
pub struct FanoutArgs {
    /// Rooms.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Peers per room.
    #[arg(long, default_value_t = 8)]
    pub peers: usize,
    /// Rounds, each with fresh users, streams and rooms.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Deadline (s) per round for every expected event to arrive.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Deserialize)]
struct AddPeer {
    peer: PeerRef,
    #[serde(rename = "roomId")]
    room_id: String,
    offer: bool,
}

#[derive(Deserialize)]
struct PeerRef {
    id: String,
}

/// An `add-peer` received by member `member`.
struct Got {
    member: usize,
    peer: String,
    room: String,
    offer: bool,
    at: Instant,
    /// When it reached this machine's socket, as the kernel stamped it.
    arrived: Option<SystemTime>,
}

/// An `add-peer` as read, its JSON parsed only after the round: work this process does while
/// events arrive delays the events it has yet to read (it shares the machine's two cores with
/// the server), so the measured path holds no more than a timestamp and a copy.
struct Raw {
    member: usize,
    data: String,
    at: Instant,
    arrived: Option<SystemTime>,
}

/// One round's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// 1-based.
    pub round: usize,
    /// Members whose stream opened.
    pub streams: usize,
    /// Join requests answered 200.
    pub joins_ok: usize,
    /// Sum of the joins' `peers` (introductions the server says it made).
    pub introductions: usize,
    /// `add-peer` events expected (members × (P−1)).
    pub expected: usize,
    /// Expected events that arrived.
    pub received: usize,
    /// Expected events that did not arrive by the deadline.
    pub missing: usize,
    /// Events not expected: repeats, or about someone outside the member's room.
    pub extra: usize,
    /// Events whose `offer` flag contradicts the join order seen (both or neither side offering).
    pub offer_mismatches: usize,
    /// Seconds from the release of the joins until the last expected event (or the deadline).
    pub secs: f64,
    /// Whether the deadline ran out.
    pub timed_out: bool,
    /// Join request start → expected `add-peer` read by the load generator, this round.
    pub latency: Summary,
    /// Join request start → expected `add-peer` in the load generator's socket (the kernel's
    /// receive stamp): the same without the time the event waited for this process to read it.
    pub latency_in_socket: Summary,
    /// Milliseconds the server's threads spent on a CPU from the release of the joins until the
    /// last expected event (or the deadline): its share of the burst.
    pub server_cpu_ms: f64,
    /// The same for this load generator, which shares the machine's cores with the server.
    pub client_cpu_ms: f64,
}

/// Every round's samples, in nanoseconds.
#[derive(Default)]
struct Samples {
    /// Join request start → `add-peer` read.
    latencies: Vec<u64>,
    /// Join request start → `add-peer` in the socket.
    in_socket: Vec<u64>,
    /// Join request round trips.
    join_latencies: Vec<u64>,
}

/// Runs `fanout`.
pub async fn run(ctx: &Ctx, args: &FanoutArgs) -> Result<Outcome, String> {
    let (mut server, target) = ctx.start()?;
    warm_up(&target).await;
    let before = proc::usage(server.pid);
    let mut rounds = Vec::new();
    let mut all = Samples::default();
    let mut errors = Tally::new();
    for r in 1..=args.rounds {
        let round = run_round(server.pid, &target, args, r, &mut all, &mut errors).await;
        rounds.push(round);
        // The round's streams and connections are closed: let the server see it.
        settle(server.pid, before.fds, Duration::from_secs(10)).await;
    }
    let after = proc::usage(server.pid);
    let latency = Summary::of_nanos(&mut all.latencies);
    let latency_in_socket = Summary::of_nanos(&mut all.in_socket);
    let join_latency = Summary::of_nanos(&mut all.join_latencies);
    let server_end = ServerEnd::of(&mut server);

    let mut t = Table::new(
        format!(
            "fanout: {} rooms x {} peers, all joining at once (latency: join POST start -> add-peer received; join POST rtt p50 / p99 / max {})",
            args.rooms,
            args.peers,
            join_latency.short_ms()
        ),
        &[
            "round",
            "streams",
            "joins ok",
            "introduced",
            "expected",
            "received",
            "missing",
            "extra",
            "offer mismatches",
            "last event s",
            "cpu ms server / client",
            "latency p50 / p99 / max",
            "in socket p50 / p99 / max",
        ],
    );
    for r in &rounds {
        t.row(vec![
            r.round.to_string(),
            r.streams.to_string(),
            r.joins_ok.to_string(),
            r.introductions.to_string(),
            grouped(r.expected as u64),
            grouped(r.received as u64),
            r.missing.to_string(),
            r.extra.to_string(),
            r.offer_mismatches.to_string(),
            format!("{:.3}{}", r.secs, mark(r.timed_out)),
            format!("{:.1} / {:.1}", r.server_cpu_ms, r.client_cpu_ms),
            r.latency.short_ms(),
            r.latency_in_socket.short_ms(),
        ]);
    }
    t.row(vec![
        "all".into(),
        String::new(),
        String::new(),
        String::new(),
        grouped(rounds.iter().map(|r| r.expected as u64).sum()),
        grouped(rounds.iter().map(|r| r.received as u64).sum()),
        rounds.iter().map(|r| r.missing).sum::<usize>().to_string(),
        rounds.iter().map(|r| r.extra).sum::<usize>().to_string(),
        rounds
            .iter()
            .map(|r| r.offer_mismatches)
            .sum::<usize>()
            .to_string(),
        String::new(),
        String::new(),
        latency.short_ms(),
        latency_in_socket.short_ms(),
    ]);
    let json = serde_json::json!({
        "rooms": args.rooms,
        "peers_per_room": args.peers,
        "latency": latency,
        "latency_in_socket": latency_in_socket,
        "join_latency": join_latency,
        "missing": rounds.iter().map(|r| r.missing).sum::<usize>(),
        "extra": rounds.iter().map(|r| r.extra).sum::<usize>(),
        "rounds": rounds,
        "errors": errors,
        "before": before,
        "after": after,
        "server": server_end,
    });
    Ok(Outcome {
        json,
        tables: vec![t],
    })
}

async fn run_round(
    server_pid: u32,
    target: &Arc<crate::http::Target>,
    args: &FanoutArgs,
    round: usize,
    all: &mut Samples,
    errors: &mut Tally,
) -> Round {
    let n = args.rooms * args.peers;
    let room_of = |i: usize| format!("fan-{round}-{}", i / args.peers.max(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    let (tokens, token_errors) = api::issue_tokens(target, n, 16, deadline).await;
    merge(errors, &token_errors);
    let index: HashMap<String, usize> = tokens
        .iter()
        .enumerate()
        .map(|(i, a)| (a.id.clone(), i))
        .collect();

    // Streams first, each collecting its add-peer events.
    let got: Arc<Mutex<Vec<Raw>>> = Arc::default();
    let mut readers = Vec::new();
    for (i, access) in tokens.iter().enumerate() {
        let opened = tokio::time::timeout(
            Duration::from_secs(10),
            api::open_stream(target, &access.token, 4096, &mut |_| {}),
        )
        .await;
        let mut sse = match opened {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                bump(errors, format!("open: {}", error_kind(&e)));
                continue;
            }
            Err(_) => {
                bump(errors, "open: timeout");
                continue;
            }
        };
        if let Err(e) = sse.stamp_arrivals() {
            bump(errors, format!("timestamps: {}", error_kind(&e)));
        }
        let got = Arc::clone(&got);
        readers.push(tokio::spawn(async move {
            let mut on_item = |item: SseItem, arrived: Option<SystemTime>| {
                let SseItem::Event(e) = item else { return };
                if e.event != "add-peer" {
                    return;
                }
                let at = Instant::now();
                got.lock().unwrap_or_else(|p| p.into_inner()).push(Raw {
                    member: i,
                    data: e.data,
                    at,
                    arrived,
                });
            };
            while let Ok(true) = sse.read_some_stamped(&mut on_item).await {}
        }));
    }
    let streams = readers.len();

    // One open connection per join, then all released together.
    let mut conns = Vec::new();
    for _ in 0..tokens.len() {
        match tokio::time::timeout(Duration::from_secs(10), Conn::open(target)).await {
            Ok(Ok(c)) => conns.push(Some(c)),
            Err(_) => {
                bump(errors, "join connect: timeout");
                conns.push(None);
            }
            Ok(Err(e)) => {
                bump(errors, format!("join connect: {}", error_kind(&e)));
                conns.push(None);
            }
        }
    }
    let barrier = Arc::new(Barrier::new(tokens.len() + 1));
    let mut joins = Vec::new();
    for (i, (access, conn)) in tokens.iter().zip(conns).enumerate() {
        let req = api::join_request(target, &room_of(i), &access.token);
        let barrier = Arc::clone(&barrier);
        joins.push(tokio::spawn(async move {
            barrier.wait().await;
            let t0 = (Instant::now(), SystemTime::now());
            let mut conn = conn?;
            let res = tokio::time::timeout(Duration::from_secs(10), conn.send(&req)).await;
            let rtt = t0.0.elapsed();
            match res {
                // The body is read after the round, like the events.
                Ok(Ok(r)) if r.status == 200 => Some((t0, rtt, r.body)),
                _ => None,
            }
        }));
    }
    let cpu_before = (proc::on_cpu_ns(Some(server_pid)), proc::on_cpu_ns(None));
    barrier.wait().await;
    let released = Instant::now();
    let mut join_start: Vec<Option<(Instant, SystemTime)>> = Vec::with_capacity(tokens.len());
    let mut introductions = 0;
    for j in joins {
        match j.await.ok().flatten() {
            Some((t0, rtt, body)) => {
                join_start.push(Some(t0));
                all.join_latencies.push(rtt.as_nanos() as u64);
                introductions += serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["peers"].as_u64())
                    .unwrap_or(0) as usize;
            }
            None => {
                join_start.push(None);
                bump(errors, "join failed");
            }
        }
    }
    let joins_ok = join_start.iter().filter(|t| t.is_some()).count();

    // Wait for the events, bounded.
    let expected = n * args.peers.saturating_sub(1);
    let wait_deadline = released + secs(args.timeout);
    let timed_out = loop {
        if got.lock().unwrap_or_else(|p| p.into_inner()).len() >= expected {
            break false;
        }
        if Instant::now() >= wait_deadline {
            break true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let cpu_ms = |after: u64, before: u64| after.saturating_sub(before) as f64 / 1e6;
    let server_cpu_ms = cpu_ms(proc::on_cpu_ns(Some(server_pid)), cpu_before.0);
    let client_cpu_ms = cpu_ms(proc::on_cpu_ns(None), cpu_before.1);
    // A little longer, to catch extras that would arrive right after the last expected one.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for r in &readers {
        r.abort();
    }
    let raw = std::mem::take(&mut *got.lock().unwrap_or_else(|p| p.into_inner()));
    let mut unreadable = 0;
    let got: Vec<Got> = raw
        .into_iter()
        .filter_map(|r| match serde_json::from_str::<AddPeer>(&r.data) {
            Ok(a) => Some(Got {
                member: r.member,
                peer: a.peer.id,
                room: a.room_id,
                offer: a.offer,
                at: r.at,
                arrived: r.arrived,
            }),
            Err(_) => {
                unreadable += 1;
                None
            }
        })
        .collect();

    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut extra = unreadable;
    let mut offer_mismatches = 0;
    let mut last = released;
    let mut round_latencies = Vec::new();
    let mut in_socket = Vec::new();
    let mut offers: HashMap<(usize, usize), bool> = HashMap::new();
    for g in &got {
        let Some(&peer) = index.get(&g.peer) else {
            extra += 1;
            continue;
        };
        let room = room_of(g.member);
        if peer == g.member
            || room_of(peer) != room
            || g.room != room
            || !seen.insert((g.member, peer))
        {
            extra += 1;
            continue;
        }
        offers.insert((g.member, peer), g.offer);
        // offer: true goes to the later joiner (this member); false: the roommate joined later.
        let cause = if g.offer { g.member } else { peer };
        if let Some((t0, t0_wall)) = join_start[cause] {
            round_latencies.push(g.at.saturating_duration_since(t0).as_nanos() as u64);
            if let Some(arrived) = g.arrived {
                let d = arrived.duration_since(t0_wall).unwrap_or_default();
                in_socket.push(d.as_nanos() as u64);
            }
        }
        last = last.max(g.at);
    }
    // Exactly one side of each introduced pair is told to offer.
    for (&(m, p), &offer) in &offers {
        if m < p
            && let Some(&other) = offers.get(&(p, m))
            && other == offer
        {
            offer_mismatches += 1;
        }
    }
    all.latencies.extend_from_slice(&round_latencies);
    all.in_socket.extend_from_slice(&in_socket);
    Round {
        latency: Summary::of_nanos(&mut round_latencies),
        latency_in_socket: Summary::of_nanos(&mut in_socket),
        round,
        streams,
        joins_ok,
        introductions,
        expected,
        received: seen.len(),
        missing: expected.saturating_sub(seen.len()),
        extra,
        offer_mismatches,
        secs: last.saturating_duration_since(released).as_secs_f64(),
        timed_out,
        server_cpu_ms,
        client_cpu_ms,
    }
}
