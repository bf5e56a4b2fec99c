//! The real `drawmesh-server` binary: it prints its URL (and, bound beyond loopback, the URLs to
//! share), answers, and never logs a token or the TURN secret.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const TURN_SECRET: &str = "binary-test-turn-secret";

/// Starts the binary as `command` says (stdout piped), and reads the URL it prints first.
fn start(
    command: &mut Command,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .expect("server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("Drawmesh listening on ")
        .expect("the URL line")
        .trim_end_matches('/')
        .to_owned();
    (child, stdout, url)
}

#[tokio::test]
async fn the_binary_serves_and_keeps_tokens_out_of_its_logs() {
    let (mut child, _stdout, url) = start(
        Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
            .args(["--port", "0", "--dist", "no-such-dir"])
            .args(["--turn-urls", "turn:127.0.0.1:3478"])
            .env("RUST_LOG", "trace")
            .env("TOKEN_SECRET", "binary-test-secret")
            .env("TURN_SECRET", TURN_SECRET)
            .env("NO_COLOR", "1")
            .stderr(Stdio::piped()),
    );

    let http = reqwest::Client::new();
    let access: serde_json::Value = http
        .post(format!("{url}/access"))
        .json(&serde_json::json!({"username": "logcheck"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = access["token"].as_str().unwrap().to_owned();
    // The token travels in a query string (EventSource) and in a header (everything else).
    let stream = http
        .get(format!("{url}/connect?token={token}"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let join = http
        .post(format!("{url}/room1/join"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(join.status(), 200);
    let config = http
        .get(format!("{url}/config"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("credential"), "TURN credentials: {config}");
    assert!(
        !config.contains(TURN_SECRET),
        "the TURN secret reached a browser"
    );
    drop(stream);

    child.kill().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    child.wait().unwrap();
    assert!(
        logs.contains("stream opened") && logs.contains("/room1/join"),
        "the requests were logged:\n{logs}"
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !logs.contains(signature),
        "a token reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains(TURN_SECRET),
        "the TURN secret reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains("token="),
        "a query string with a token reached the logs:\n{logs}"
    );
}

#[test]
fn bound_to_every_interface_it_prints_the_urls_to_share() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
        .args(["--port", "0", "--dist", "no-such-dir", "--bind", "0.0.0.0"])
        .env("TOKEN_SECRET", "binary-test-secret")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port: u16 = first
        .trim()
        .strip_prefix("Drawmesh listening on http://localhost:")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("the URL line: {first}"));
    // Every non-loopback IPv4 address of this machine, as the OS lists them.
    let mut expected: Vec<String> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .map(|ip| format!("Share rooms with others at http://{ip}:{port}/"))
        .collect();
    let mut printed = Vec::new();
    for _ in 0..expected.len() {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        printed.push(line.trim().to_owned());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    expected.sort();
    printed.sort();
    assert!(!expected.is_empty(), "this machine has a network interface");
    assert_eq!(printed, expected);
}

#[test]
fn a_half_configured_turn_service_stops_the_server_with_a_reason() {
    let out = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
        .args(["--port", "0", "--turn-urls", "turn:127.0.0.1:3478"])
        .env_remove("TURN_SECRET")
        .output()
        .expect("server binary runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--turn-secret"), "{stderr}");
}

/// SIGTERM: the server stops accepting, ends every stream with the last chunk (browsers see a
/// clean end and reconnect, to another process when there is one) and exits, within 5 s.
#[tokio::test]
async fn sigterm_ends_every_stream_and_exits_within_five_seconds() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let state = std::env::temp_dir().join(format!("drawmesh-sigterm-{}", std::process::id()));
    let (mut child, _stdout, url) = start(
        Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
            .args([
                "--port",
                "0",
                "--dist",
                "no-such-dir",
                "--ice-servers",
                "[]",
            ])
            .env("TOKEN_SECRET", "sigterm-test-secret")
            .env("CERT_KEY_FILE", state.join("cert-key"))
            .stderr(Stdio::null()),
    );
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for name in ["one", "two"] {
        let access: serde_json::Value = http
            .post(format!("{url}/access"))
            .json(&serde_json::json!({ "username": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = access["token"].as_str().unwrap();
        let socket = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        let mut socket = tokio::io::BufReader::new(socket);
        socket
            .get_mut()
            .write_all(format!("GET /connect?token={token} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        // Read up to the `connected` event: the stream is held.
        let mut text = String::new();
        while !text.contains("event: connected") {
            socket.read_line(&mut text).await.unwrap();
        }
        streams.push(socket);
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let (done, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait()));
    let status = exited
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("the server exits within 5 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    for mut stream in streams {
        // Everything left on the stream, to its end: the last chunk of a chunked body.
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut rest)
            .await
            .unwrap();
        assert!(
            rest.ends_with("0\r\n\r\n"),
            "the stream ended cleanly: {rest:?}"
        );
    }
    let refused = http.get(format!("{url}/healthz")).send().await;
    assert!(refused.is_err(), "nothing listens after the exit");
    let _ = std::fs::remove_dir_all(state);
}

/// `DRAWMESH_NO_LIMITS` takes the usual ways of saying yes and no (load tests set `=1`).
#[tokio::test]
async fn no_limits_from_the_environment_takes_1_and_0() {
    for (value, limited) in [("1", false), ("true", false), ("0", true)] {
        let (mut child, _stdout, url) = start(
            Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
                .args([
                    "--port",
                    "0",
                    "--dist",
                    "no-such-dir",
                    "--access-per-minute",
                    "1",
                ])
                .env("TOKEN_SECRET", "no-limits-test-secret")
                .env("DRAWMESH_NO_LIMITS", value)
                .stderr(Stdio::null()),
        );
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for name in ["a", "b"] {
            let res = http
                .post(format!("{url}/access"))
                .json(&serde_json::json!({ "username": name }))
                .send()
                .await
                .unwrap();
            statuses.push(res.status().as_u16());
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let expected = if limited { [200, 429] } else { [200, 200] };
        assert_eq!(statuses, expected, "DRAWMESH_NO_LIMITS={value}");
    }
}
