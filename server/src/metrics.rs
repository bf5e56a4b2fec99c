//! `GET /metrics`: what an operator graphs, in the Prometheus text format (the `prometheus`
//! crate does the formatting). Counters are counted where things happen (routes, the Redis hub);
//! gauges of open streams and rooms are read from the hub at scrape time.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Every metric this process exports. Cheap to clone (the metrics are shared handles).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Open SSE streams on this process.
    pub streams: IntGauge,
    /// Rooms with a member streaming from this process.
    pub rooms: IntGauge,
    /// Connections held (streams and other HTTP), against the descriptor budget.
    pub connections: IntGauge,
    /// Tasks alive in the runtime (one per connection, plus a few of the server's own): a leak
    /// shows here first.
    pub tasks: IntGauge,
    /// Joins that put a user in a room (re-joins not counted).
    pub joins: IntCounter,
    /// Relays, by outcome: `delivered`, `not_in_shared_room`, `unavailable`, `bad_request`.
    pub relays: IntCounterVec,
    /// Redis commands that failed (connection lost, timeout).
    pub redis_errors: IntCounter,
    /// Round-trip time of Redis commands (scripts), in seconds.
    pub redis_rtt: Histogram,
}

impl Metrics {
    /// A fresh set, registered in a registry of its own (tests build many servers per process).
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("drawmesh".into()), None).unwrap_or_else(|_| Registry::new());
        let streams = IntGauge::new("streams_open", "Open SSE streams on this process")
            .expect("a valid metric");
        let rooms = IntGauge::new("rooms", "Rooms with a member streaming from this process")
            .expect("a valid metric");
        let connections = IntGauge::new("connections_open", "Connections held by this process")
            .expect("a valid metric");
        let tasks = IntGauge::new("tasks_alive", "Tasks alive in this process's runtime")
            .expect("a valid metric");
        let joins = IntCounter::new("joins_total", "Joins that put a user in a room")
            .expect("a valid metric");
        let relays = IntCounterVec::new(
            Opts::new("relays_total", "Relayed signaling messages, by outcome"),
            &["outcome"],
        )
        .expect("a valid metric");
        let redis_errors = IntCounter::new("redis_errors_total", "Redis commands that failed")
            .expect("a valid metric");
        let redis_rtt = Histogram::with_opts(
            HistogramOpts::new("redis_command_seconds", "Round-trip time of Redis commands")
                .buckets(vec![
                    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0,
                ]),
        )
        .expect("a valid metric");
        for metric in [
            Box::new(streams.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rooms.clone()),
            Box::new(connections.clone()),
            Box::new(tasks.clone()),
            Box::new(joins.clone()),
            Box::new(relays.clone()),
            Box::new(redis_errors.clone()),
            Box::new(redis_rtt.clone()),
        ] {
            // Names are fixed and distinct: registering cannot collide.
            let _ = registry.register(metric);
        }
        Metrics {
            registry,
            streams,
            rooms,
            connections,
            tasks,
            joins,
            relays,
            redis_errors,
            redis_rtt,
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
