//! The real `drawmesh-server` binary: it prints its URL, answers, and never logs a token.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[tokio::test]
async fn the_binary_serves_and_keeps_tokens_out_of_its_logs() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drawmesh-server"))
        .args(["--port", "0", "--dist", "no-such-dir"])
        .env("RUST_LOG", "trace")
        .env("TOKEN_SECRET", "binary-test-secret")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
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
        logs.contains("stream opened") && logs.contains("/connect"),
        "the requests were logged:\n{logs}"
    );
    let signature = token.rsplit('.').next().unwrap();
    assert!(
        !logs.contains(signature),
        "a token reached the logs:\n{logs}"
    );
    assert!(
        !logs.contains("token="),
        "a query string with a token reached the logs:\n{logs}"
    );
}
