//! Per-client limits over real HTTP: request rates and open streams per client address (429 with
//! `Retry-After`, in our error shape), X-Forwarded-For from trusted proxies only, and
//! `--no-limits`.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use server::config::Config;

async fn refusal(res: reqwest::Response) -> (u16, Option<String>, String) {
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = res.json().await.expect("a JSON body");
    (status, retry, body["error"].as_str().unwrap().to_owned())
}

async fn access(server: &TestServer, name: &str) -> reqwest::Response {
    server
        .http
        .post(server.url("/access"))
        .json(&json!({ "username": name }))
        .send()
        .await
        .unwrap()
}

async fn stream(server: &TestServer, token: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut request = server
        .http
        .get(server.url(&format!("/connect?token={token}")))
        .header("Accept", "text/event-stream");
    if let Some(ip) = forwarded {
        request = request.header("X-Forwarded-For", ip);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn sign_ins_past_the_rate_get_429_with_retry_after_unless_limits_are_off() {
    let server = TestServer::start_with(Config {
        access_per_minute: 2,
        ..Config::for_tests()
    })
    .await;
    for name in ["a", "b"] {
        assert_eq!(access(&server, name).await.status(), 200);
    }
    let (status, retry, error) = refusal(access(&server, "c").await).await;
    assert_eq!(status, 429);
    let wait: u64 = retry.expect("a Retry-After header").parse().unwrap();
    assert!((1..=31).contains(&wait), "{wait}");
    assert!(error.contains("too many requests"), "{error}");

    let free = TestServer::start_with(Config {
        access_per_minute: 1,
        no_limits: true,
        ..Config::for_tests()
    })
    .await;
    for name in ["a", "b", "c", "d"] {
        assert_eq!(access(&free, name).await.status(), 200, "--no-limits");
    }
}

#[tokio::test]
async fn relays_past_the_rate_are_refused() {
    let server = TestServer::start_with(Config {
        relays_per_second: 2,
        ..Config::for_tests()
    })
    .await;
    let (a, b) = server.pair_in("r").await;
    let candidate = json!({"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0});
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = server.relay(&a, &b.id, "ice-candidate", &candidate).await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn streams_per_address_are_capped_on_both_stream_paths() {
    let server = TestServer::start_with(Config {
        streams_per_ip: 1,
        ..Config::for_tests()
    })
    .await;
    let (first, _) = server.access("first").await;
    let (second, _) = server.access("second").await;
    let held = stream(&server, &first, None).await;
    assert_eq!(held.status(), 200);
    // A fresh connection: the dedicated path.
    let (status, retry, error) = refusal(stream(&server, &second, None).await).await;
    assert_eq!((status, retry.as_deref()), (429, Some("5")));
    assert!(error.contains("too many open streams"), "{error}");
    // A connection used before: the router's path. (Raw, to be sure the connection is reused.)
    let mut socket = tokio::io::BufReader::new(
        tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
            .await
            .unwrap(),
    );
    let status_of = |head: &str| head.split(' ').nth(1).unwrap().to_owned();
    let config = round_trip(&mut socket, "GET /config HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&config), "200");
    let again = round_trip(
        &mut socket,
        &format!(
            "GET /connect?token={second} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status_of(&again), "429", "{again}");
    drop(socket);
    // The stream closes: once the server has let go of it (only the pooled connection stays
    // open), its place is free.
    drop(held);
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        server.state.connections.until_at_most(1),
    )
    .await
    .expect("the server lets go of the closed stream");
    assert_eq!(stream(&server, &second, None).await.status(), 200);
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    let trusted = TestServer::start_with(Config {
        streams_per_ip: 1,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..Config::for_tests()
    })
    .await;
    let mut tokens = Vec::new();
    for name in ["a", "b", "c"] {
        tokens.push(trusted.access(name).await.0);
    }
    // Behind the proxy: two clients, one stream each; the first client's second is refused.
    let _one = stream(&trusted, &tokens[0], Some("203.0.113.1")).await;
    assert_eq!(_one.status(), 200);
    let _two = stream(&trusted, &tokens[1], Some("203.0.113.2")).await;
    assert_eq!(_two.status(), 200);
    let again = stream(&trusted, &tokens[2], Some("6.6.6.6, 203.0.113.1")).await;
    assert_eq!(
        again.status(),
        429,
        "the right-most untrusted hop is the client"
    );

    // Not a trusted proxy: the header is ignored, every stream is 127.0.0.1's.
    let open = TestServer::start_with(Config {
        streams_per_ip: 1,
        ..Config::for_tests()
    })
    .await;
    let (a, _) = open.access("a").await;
    let (b, _) = open.access("b").await;
    let _held = stream(&open, &a, Some("203.0.113.1")).await;
    assert_eq!(stream(&open, &b, Some("203.0.113.2")).await.status(), 429);
}

/// Sends `request` on `socket` and reads the response's head and its `content-length` body.
async fn round_trip(
    socket: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    request: &str,
) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    socket
        .get_mut()
        .write_all(request.as_bytes())
        .await
        .unwrap();
    let mut head = String::new();
    loop {
        let mut line = String::new();
        socket.read_line(&mut line).await.unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    socket.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8_lossy(&body)
}

#[tokio::test]
async fn joins_and_token_renewals_past_their_rates_are_refused() {
    let server = TestServer::start_with(Config {
        joins_per_minute: 2,
        refresh_per_minute: 1,
        ..Config::for_tests()
    })
    .await;
    let user = server.user("joiner").await;
    let mut statuses = Vec::new();
    for room in ["r1", "r2", "r3"] {
        statuses.push(server.join(&user, room).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let refresh = || async {
        server
            .http
            .post(server.url("/refresh"))
            .bearer_auth(&user.token)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(refresh().await.status(), 200);
    let (status, retry, _) = refusal(refresh().await).await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
}
