//! TURN credentials: `/config` hands each signed-in user its own, lasting as long as its token;
//! and a real coturn (Debian's `turnserver`, started here on loopback with `use-auth-secret`)
//! accepts exactly the credentials this server makes.

mod common;

use clap::Parser;
use common::TestServer;
use serde_json::{Value, json};
use server::config::Config;
use server::turn::{Turn, TurnSecret};
use shared::PeerId;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "turn-test-secret";

fn config_with_turn(args: &[&str]) -> Config {
    let mut all = vec!["drawmesh-server", "--port", "0", "--ice-servers", "[]"];
    all.extend_from_slice(args);
    let mut config = Config::try_parse_from(all).unwrap();
    config.token_secret = Some("test-secret".into());
    config
}

async fn config_json(server: &TestServer, token: Option<&str>) -> (u16, Value) {
    let mut req = server.http.get(server.url("/api/config"));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn each_signed_in_user_gets_its_own_credentials_for_as_long_as_its_token() {
    let server = TestServer::start_with(config_with_turn(&[
        "--turn-urls",
        "turn:127.0.0.1:3478,turns:turn.example.org:5349",
        "--turn-secret",
        SECRET,
        "--token-ttl",
        "600",
    ]))
    .await;

    // Without a token: no TURN (a credential must name a peer), and never the secret.
    let (status, anonymous) = config_json(&server, None).await;
    assert_eq!(status, 200);
    assert_eq!(anonymous["iceServers"], json!([]));

    let (token, id) = server.access("alice").await;
    let (status, mine) = config_json(&server, Some(&token)).await;
    assert_eq!(status, 200);
    let turn = &mine["iceServers"][0];
    assert_eq!(
        turn["urls"],
        json!(["turn:127.0.0.1:3478", "turns:turn.example.org:5349"])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, peer) = username.split_once(':').unwrap();
    assert_eq!(peer, id);
    let expiry: u64 = expiry.parse().unwrap();
    let session = server.state.tokens.verify_session(&token).unwrap();
    assert_eq!(expiry, session.expires_at, "credentials end with the token");
    assert!(expiry.abs_diff(now() + 600) <= 5);
    assert_eq!(
        turn["credential"].as_str().unwrap(),
        server::turn::credential(&TurnSecret::new(SECRET), username)
    );
    assert!(!mine.to_string().contains(SECRET));

    // Another user: other credentials.
    let (bob_token, _) = server.access("bob").await;
    let (_, bobs) = config_json(&server, Some(&bob_token)).await;
    assert_ne!(bobs["iceServers"][0]["username"], turn["username"]);

    // A renewed token brings renewed credentials, for the same peer, ending with the new token.
    let renewed = server
        .state
        .tokens
        .issue_at("alice", now() + 100, Duration::from_secs(600))
        .map(|(t, _)| t)
        .unwrap();
    let renewed_session = server.state.tokens.verify_session(&renewed).unwrap();
    let (_, later) = config_json(&server, Some(&renewed)).await;
    let later_username = later["iceServers"][0]["username"].as_str().unwrap();
    assert_eq!(
        later_username,
        format!(
            "{}:{}",
            renewed_session.expires_at, renewed_session.user.id.0
        )
    );

    // A bad token is refused rather than silently answered without credentials.
    let (status, _) = config_json(&server, Some("not.a.token")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn half_a_turn_configuration_is_refused_with_a_reason() {
    let no_secret = config_with_turn(&["--turn-urls", "turn:127.0.0.1:3478"]);
    let why = server::AppState::new(&no_secret).await.err().unwrap();
    assert!(why.contains("--turn-secret"), "{why}");
    let no_urls = config_with_turn(&["--turn-secret", SECRET]);
    let why = server::AppState::new(&no_urls).await.err().unwrap();
    assert!(why.contains("--turn-urls"), "{why}");
    let stun = config_with_turn(&["--turn-urls", "stun:x:3478", "--turn-secret", SECRET]);
    let why = server::AppState::new(&stun).await.err().unwrap();
    assert!(why.contains("turn:"), "{why}");
}

#[test]
fn the_default_ice_servers_are_a_public_stun_server() {
    let config = Config::try_parse_from(["drawmesh-server"]).unwrap();
    assert_eq!(config.ice_servers.0.len(), 1);
    assert!(config.ice_servers.0[0].urls[0].starts_with("stun:"));
    assert!(config.ice_servers.0[0].credential.is_none());
}

/// A coturn on a free loopback port, configured as toolchain.md found to work (a config file:
/// with `-n`, coturn ignores it and REST auth fails). Killed on drop.
struct Coturn {
    child: Child,
    port: u16,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    // TURN listens on UDP and TCP at the same port; a UDP port free now is free enough for a
    // test (the start-up check below fails clearly otherwise).
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_coturn(secret: &str) -> Coturn {
    let port = free_udp_port();
    let dir = std::env::temp_dir().join(format!("drawmesh-coturn-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("turnserver.conf");
    std::fs::write(
        &conf,
        format!(
            "listening-ip=127.0.0.1\nrelay-ip=127.0.0.1\nlistening-port={port}\n\
             min-port=49152\nmax-port=65535\nuse-auth-secret\nstatic-auth-secret={secret}\n\
             realm=drawmesh.test\nno-tls\nno-dtls\nno-cli\nallow-loopback-peers\n\
             userdb={db}\npidfile={pid}\nlog-file=stdout\nsimple-log\n",
            db = dir.join("turndb").display(),
            pid = dir.join("turn.pid").display(),
        ),
    )
    .unwrap();
    let child = Command::new("turnserver")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (Debian's coturn) is installed: scripts/install-tools.sh installs it");
    let coturn = Coturn {
        child,
        port,
        _dir: TempDir(dir),
    };
    // Ready once its TCP listener answers (it opens UDP and TCP together).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "coturn did not listen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    coturn
}

/// Does coturn grant an allocation (and relay a few packets) with these credentials?
fn coturn_accepts(coturn: &Coturn, username: &str, credential: &str) -> bool {
    let status = Command::new("turnutils_uclient")
        .args([
            "-y", "-n", "1", "-m", "1", "-l", "100", "-u", username, "-w",
        ])
        .arg(credential)
        .args(["-p", &coturn.port.to_string(), "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("turnutils_uclient (Debian's coturn) is installed");
    status.success()
}

#[test]
fn coturn_accepts_our_credentials_and_nothing_else() {
    let coturn = start_coturn(SECRET);
    let turn = Turn::new(
        vec![format!("turn:127.0.0.1:{}", coturn.port)],
        TurnSecret::new(SECRET),
    );
    let alice = PeerId("alice-peer".into());
    let valid = turn.ice_server_for(&alice, now() + 600);
    let (user, pass) = (valid.username.unwrap(), valid.credential.unwrap());
    assert!(coturn_accepts(&coturn, &user, &pass), "good credentials");

    // Signed with another secret: refused.
    let forged =
        Turn::new(vec![], TurnSecret::new("not-the-secret")).ice_server_for(&alice, now() + 600);
    assert!(!coturn_accepts(
        &coturn,
        &forged.username.unwrap(),
        &forged.credential.unwrap()
    ));
    // Past their expiry (the token's): refused.
    let expired = turn.ice_server_for(&alice, now() - 60);
    assert!(!coturn_accepts(
        &coturn,
        &expired.username.unwrap(),
        &expired.credential.unwrap()
    ));
    // Someone else's username with alice's credential: refused.
    let bob = format!("{}:bob-peer", user.split(':').next().unwrap());
    assert!(!coturn_accepts(&coturn, &bob, &pass));
}
