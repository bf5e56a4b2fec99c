//! The hub's conformance suite against the Redis backend: every scenario runs with its users on
//! two hubs (two server processes) sharing one real `redis-server`.

mod common;

use common::redis::RedisServer;
use server::hub::Hub;
use std::sync::Arc;

/// Two processes on a fresh Redis, which lives until the test's runtime shuts down.
async fn two_processes(queue: usize) -> (Hub, Hub) {
    let redis = Arc::new(RedisServer::start());
    let metrics = server::metrics::Metrics::new();
    let a = Hub::redis(&redis.url(), false, queue, &metrics)
        .await
        .expect("process a");
    let b = Hub::redis(&redis.url(), false, queue, &metrics)
        .await
        .expect("process b");
    // The server must outlive the test body: park it until the runtime shuts down.
    tokio::spawn(async move {
        let _redis = redis;
        std::future::pending::<()>().await;
    });
    (a, b)
}

server::hub_conformance_suite!(two_processes);
