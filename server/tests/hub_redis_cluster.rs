//! The hub's conformance suite on a Redis Cluster of three masters: two hubs (two server
//! processes) whose events travel by sharded pub/sub.

mod common;

use common::redis::RedisCluster;
use server::hub::Hub;
use std::sync::Arc;

/// Two processes on a fresh three-master cluster, which lives until the runtime shuts down.
async fn two_processes(queue: usize) -> (Hub, Hub) {
    let cluster = Arc::new(
        tokio::task::spawn_blocking(RedisCluster::start)
            .await
            .unwrap(),
    );
    let metrics = server::metrics::Metrics::new();
    let a = Hub::redis(&cluster.urls(), true, queue, &metrics)
        .await
        .expect("process a");
    let b = Hub::redis(&cluster.urls(), true, queue, &metrics)
        .await
        .expect("process b");
    tokio::spawn(async move {
        let _cluster = cluster;
        std::future::pending::<()>().await;
    });
    (a, b)
}

server::hub_conformance_suite!(two_processes);
