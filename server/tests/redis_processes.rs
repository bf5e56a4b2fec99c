//! Many processes, one service: real `drawmesh-server` binaries sharing a real `redis-server`.
//! Users land on any process for any request (no stickiness); a process killed with SIGKILL has
//! its users removed from their rooms by the survivors; Redis stopping and coming back empty
//! takes no process down, and everything works again without anyone reconnecting.

mod common;

use common::redis::{RedisCluster, RedisServer};
use common::{Events, SseEvent};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "redis-processes-test-secret";
/// shared to every process: HEARTBEAT (2 s) + PRESENCE_TTL (8 s) = 10 s, plus slack.
const DEAD_PROCESS_BOUND: Duration = Duration::from_secs(13);
const QUIET: Duration = Duration::from_millis(500);

/// One server process (the real binary), killed on drop.
struct Process {
    child: Child,
    base: String,
}

impl Process {
    fn start(redis: &RedisServer) -> Process {
        Process::start_with(&["--redis-url", &redis.url()])
    }

    /// On a Redis Cluster: events by sharded pub/sub.
    fn on_cluster(cluster: &RedisCluster) -> Process {
        Process::start_with(&["--redis-url", &cluster.urls(), "--redis-cluster"])
    }

    fn start_with(args: &[&str]) -> Process {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
            .args([
                "--port",
                "0",
                "--dist",
                "no-such-dir",
                "--ice-servers",
                "[]",
            ])
            .args(args)
            .env("TOKEN_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("server binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let base = line
            .trim()
            .strip_prefix("Drawmesh listening on ")
            .unwrap_or_else(|| panic!("the URL line, got {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Process { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no goodbye
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

struct User {
    token: String,
    id: String,
    events: Events,
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn user(on: &Process, name: &str) -> User {
    let access: Value = http()
        .post(format!("{}/access", on.base))
        .json(&json!({"username": name}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = access["token"].as_str().unwrap().to_owned();
    let res = http()
        .get(format!("{}/connect?token={token}", on.base))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut events = Events::new(res);
    assert_eq!(events.next().await.event, "connected");
    User {
        token,
        id: access["user"]["id"].as_str().unwrap().to_owned(),
        events,
    }
}

async fn join(on: &Process, who: &User, room: &str) -> reqwest::Response {
    http()
        .post(format!("{}/{room}/join", on.base))
        .bearer_auth(&who.token)
        .send()
        .await
        .unwrap()
}

async fn relay(on: &Process, from: &User, to: &User, n: usize) -> reqwest::Response {
    http()
        .post(format!("{}/relay/{}/ice-candidate", on.base, to.id))
        .bearer_auth(&from.token)
        .json(&json!({"candidate": n.to_string()}))
        .send()
        .await
        .unwrap()
}

async fn health(on: &Process) -> u16 {
    match http().get(format!("{}/healthz", on.base)).send().await {
        Ok(res) => res.status().as_u16(),
        Err(_) => 0,
    }
}

/// `GET /metrics`, and one sample's value from it (`name` with its labels, as printed).
async fn metric(on: &Process, sample: &str) -> f64 {
    let text = http()
        .get(format!("{}/metrics", on.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
}

async fn expect(events: &mut Events, event: &str, peer: &str) -> SseEvent {
    let e = events.next().await;
    assert_eq!(
        (e.event.as_str(), e.data["peer"]["id"].as_str()),
        (event, Some(peer)),
        "{e:?}"
    );
    e
}

async fn quiet(events: &mut Events, who: &str) {
    if let Some(e) = events.next_within(QUIET).await {
        panic!("{who}: unexpected {e:?}");
    }
}

/// Polls `/healthz` until it answers `status` (bounded).
async fn wait_health(on: &Process, status: u16, within: Duration) {
    let deadline = Instant::now() + within;
    while health(on).await != status {
        assert!(
            Instant::now() < deadline,
            "/healthz never answered {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn users_on_different_processes_meet_relay_and_leave_exactly_once() {
    let redis = RedisServer::start();
    meet_relay_and_leave(Process::start(&redis), Process::start(&redis)).await;
}

#[tokio::test]
async fn on_a_redis_cluster_users_on_different_processes_meet_relay_and_leave() {
    let cluster = tokio::task::spawn_blocking(RedisCluster::start)
        .await
        .unwrap();
    meet_relay_and_leave(Process::on_cluster(&cluster), Process::on_cluster(&cluster)).await;
}

/// Users streaming from, joining through and relaying through both processes.
async fn meet_relay_and_leave(p1: Process, p2: Process) {
    // alice streams from p1, bob from p2; each joins and relays through the other process.
    let mut alice = user(&p1, "alice").await;
    let mut bob = user(&p2, "bob").await;
    assert_eq!(join(&p2, &alice, "room1").await.status(), 200);
    assert_eq!(join(&p1, &bob, "room1").await.status(), 200);
    let offer = expect(&mut bob.events, "add-peer", &alice.id).await;
    assert_eq!(offer.data["offer"], true);
    let told = expect(&mut alice.events, "add-peer", &bob.id).await;
    assert_eq!(told.data["offer"], false);
    for n in 0..20 {
        let via = if n % 2 == 0 { &p1 } else { &p2 };
        assert_eq!(relay(via, &bob, &alice, n).await.status(), 200);
    }
    for n in 0..20 {
        let e = expect(&mut alice.events, "ice-candidate", &bob.id).await;
        assert_eq!(e.data["data"]["candidate"], n.to_string());
    }
    quiet(&mut alice.events, "alice").await;
    quiet(&mut bob.events, "bob").await;
    // A stranger in another room may not relay to alice, through either process.
    let carol = user(&p2, "carol").await;
    assert_eq!(join(&p1, &carol, "room2").await.status(), 200);
    assert_eq!(relay(&p1, &carol, &alice, 0).await.status(), 403);
    // What p1 counted: its own stream, its share of the relays, the refusal, Redis round trips.
    assert_eq!(metric(&p1, "drawmesh_streams_open").await, 1.0);
    assert_eq!(
        metric(&p1, r#"drawmesh_relays_total{outcome="delivered"}"#).await,
        10.0
    );
    assert_eq!(
        metric(
            &p1,
            r#"drawmesh_relays_total{outcome="not_in_shared_room"}"#
        )
        .await,
        1.0
    );
    assert_eq!(metric(&p1, "drawmesh_joins_total").await, 2.0);
    assert!(metric(&p1, "drawmesh_redis_command_seconds_count").await >= 13.0);
    assert_eq!(metric(&p1, "drawmesh_redis_errors_total").await, 0.0);
    // bob's stream closes: alice hears it once.
    drop(bob);
    let bye = alice.events.next().await;
    assert_eq!(bye.event, "remove-peer");
    quiet(&mut alice.events, "alice after bob left").await;
    assert_eq!(health(&p1).await, 200);
}

#[tokio::test]
async fn a_killed_process_loses_its_users_within_the_bound() {
    let redis = RedisServer::start();
    let (p1, mut p2) = (Process::start(&redis), Process::start(&redis));
    let mut alice = user(&p1, "alice").await;
    let bob = user(&p2, "bob").await;
    assert_eq!(join(&p1, &alice, "room1").await.status(), 200);
    assert_eq!(join(&p1, &bob, "room1").await.status(), 200);
    expect(&mut alice.events, "add-peer", &bob.id).await;
    let killed = Instant::now();
    p2.kill();
    let bye = alice
        .events
        .next_within(DEAD_PROCESS_BOUND)
        .await
        .expect("alice was told bob left");
    assert_eq!(
        (bye.event.as_str(), bye.data["peer"]["id"].as_str()),
        ("remove-peer", Some(bob.id.as_str()))
    );
    eprintln!(
        "remove-peer {} ms after the kill",
        killed.elapsed().as_millis()
    );
    quiet(&mut alice.events, "alice: exactly one remove-peer").await;
    drop(bob);
}

#[tokio::test]
async fn redis_going_away_and_coming_back_empty_takes_nothing_down() {
    let mut redis = RedisServer::start();
    let (p1, p2) = (Process::start(&redis), Process::start(&redis));
    let mut alice = user(&p1, "alice").await;
    let mut bob = user(&p2, "bob").await;
    assert_eq!(join(&p2, &alice, "room1").await.status(), 200);
    assert_eq!(join(&p1, &bob, "room1").await.status(), 200);
    expect(&mut alice.events, "add-peer", &bob.id).await;
    expect(&mut bob.events, "add-peer", &alice.id).await;

    redis.kill();
    // Requests that need Redis get a clear 503; health says so; streams stay open.
    let res = join(&p1, &alice, "room2").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("unavailable"),
        "{body}"
    );
    wait_health(&p1, 503, Duration::from_secs(5)).await;
    assert!(metric(&p1, "drawmesh_redis_errors_total").await >= 1.0);
    assert!(
        !alice.events.ends_within(Duration::from_secs(1)).await,
        "alice's stream stays open"
    );

    // Back, empty: each process registers its users and rooms again.
    redis.restart();
    wait_health(&p1, 200, Duration::from_secs(10)).await;
    wait_health(&p2, 200, Duration::from_secs(10)).await;
    let mut carol = user(&p2, "carol").await;
    assert_eq!(join(&p1, &carol, "room1").await.status(), 200);
    // The old members are introduced to the newcomer, and told about it.
    let mut introduced = vec![
        carol.events.next().await.data["peer"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        carol.events.next().await.data["peer"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    introduced.sort();
    let mut old = vec![alice.id.clone(), bob.id.clone()];
    old.sort();
    assert_eq!(introduced, old);
    expect(&mut alice.events, "add-peer", &carol.id).await;
    expect(&mut bob.events, "add-peer", &carol.id).await;
    // Relays work again, both ways across processes.
    assert_eq!(relay(&p1, &alice, &bob, 7).await.status(), 200);
    expect(&mut bob.events, "ice-candidate", &alice.id).await;
    assert_eq!(relay(&p2, &carol, &alice, 8).await.status(), 200);
    expect(&mut alice.events, "ice-candidate", &carol.id).await;
}

#[test]
fn redis_without_a_token_secret_is_refused_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
        .args(["--port", "0", "--redis-url", "redis://127.0.0.1:1/"])
        .env_remove("TOKEN_SECRET")
        .output()
        .expect("server binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TOKEN_SECRET"), "{stderr}");
}
