//! Every refusal the protocol defines, with its status code and a JSON error body.

mod common;

use common::TestServer;
use serde_json::{Value, json};
use server::auth::TOKEN_TTL;
use shared::protocol::{MAX_RELAY_BODY_BYTES, MAX_USERNAME_CHARS};

async fn error_of(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    (
        status,
        body["error"].as_str().expect("an error message").to_owned(),
    )
}

#[tokio::test]
async fn access_refuses_bad_usernames_with_a_clear_400() {
    let server = TestServer::start().await;
    let post = |body: String| server.http.post(server.url("/access")).body(body).send();
    for (body, why) in [
        ("{}".to_owned(), "missing field"),
        (r#"{"username": ""}"#.to_owned(), "empty"),
        (r#"{"username": "   "}"#.to_owned(), "empty"),
        (
            json!({"username": "x".repeat(MAX_USERNAME_CHARS + 1)}).to_string(),
            "at most 64",
        ),
        ("username=bob".to_owned(), "bad request body"),
        (r#"{"username": 42}"#.to_owned(), "invalid type"),
        (r#"{"username": "a\nb"}"#.to_owned(), "control"),
    ] {
        let (status, error) = error_of(post(body.clone()).await.unwrap()).await;
        assert_eq!(status, 400, "{body}");
        assert!(error.contains(why), "{body}: {error}");
    }
    // The longest allowed name is fine, counted in characters, not bytes.
    let res = post(json!({"username": "é".repeat(MAX_USERNAME_CHARS)}).to_string())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn no_token_is_401_and_a_bad_or_expired_token_is_403() {
    let server = TestServer::start().await;
    let (expired, _) = server
        .state
        .tokens
        .issue_at("old", 1_000_000, TOKEN_TTL)
        .unwrap();
    let forged = server::auth::Tokens::new(b"someone else's secret")
        .issue("mallory")
        .unwrap()
        .0;
    for path in ["/connect", "/r/join", "/relay/x/ice-candidate"] {
        let req = |token: Option<&str>| {
            let url = server.url(path);
            let builder = if path == "/connect" {
                server.http.get(url)
            } else {
                server.http.post(url)
            };
            let builder = builder.body("{}");
            match token {
                Some(t) => builder.bearer_auth(t),
                None => builder,
            }
        };
        assert_eq!(
            error_of(req(None).send().await.unwrap()).await.0,
            401,
            "{path}"
        );
        for bad in ["garbage", expired.as_str(), forged.as_str()] {
            assert_eq!(
                error_of(req(Some(bad)).send().await.unwrap()).await.0,
                403,
                "{path}"
            );
        }
    }
    // The query-string form is checked the same way.
    let res = server
        .http
        .get(server.url("/connect?token=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn join_without_a_stream_is_409_and_a_bad_room_is_400() {
    let server = TestServer::start().await;
    let (token, _) = server.access("early").await;
    let res = server.join_with_token(&token, "r").await;
    let (status, error) = error_of(res).await;
    assert_eq!(status, 409);
    assert!(error.contains("event stream"), "{error}");

    let user = server.user("u").await;
    let long = "x".repeat(65);
    let res = server.join_with_token(&user.token, &long).await;
    assert_eq!(error_of(res).await.0, 400);
    let res = server.join_with_token(&user.token, "bad%20room").await;
    assert_eq!(error_of(res).await.0, 400);
}

#[tokio::test]
async fn relay_refuses_unknown_events_bad_bodies_and_big_bodies() {
    let server = TestServer::start().await;
    let (a, mut b) = server.pair_in("r").await;

    // Events the protocol does not define cannot be injected into somebody's stream.
    for event in ["add-peer", "remove-peer", "connected", "whatever"] {
        let (status, error) = error_of(server.relay(&a, &b.id, event, &json!({})).await).await;
        assert_eq!(status, 400, "{event}");
        assert!(error.contains("unknown relay event"), "{error}");
    }
    // Bodies must be what their event says.
    for (event, body) in [
        (
            "session-description",
            json!({"type": "nonsense", "sdp": ""}),
        ),
        ("session-description", json!("offer")),
        ("ice-candidate", json!({"sdpMid": "0"})),
    ] {
        assert_eq!(
            error_of(server.relay(&a, &b.id, event, &body).await)
                .await
                .0,
            400,
            "{body}"
        );
    }
    let not_json = server
        .http
        .post(server.url(&format!("/relay/{}/ice-candidate", b.id)))
        .bearer_auth(&a.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(not_json).await.0, 400);

    // Over the size limit: 413.
    let huge = json!({"type": "offer", "sdp": "a".repeat(MAX_RELAY_BODY_BYTES)});
    let (status, error) =
        error_of(server.relay(&a, &b.id, "session-description", &huge).await).await;
    assert_eq!(status, 413);
    assert!(error.contains(&MAX_RELAY_BODY_BYTES.to_string()), "{error}");
    // Just under it is fine.
    let fits = json!({"type": "offer", "sdp": "a".repeat(MAX_RELAY_BODY_BYTES - 64)});
    assert_eq!(
        server
            .relay(&a, &b.id, "session-description", &fits)
            .await
            .status(),
        200
    );

    // None of the refused relays reached b; the accepted one did.
    let got = b.events.next().await;
    assert_eq!(
        got.data["data"]["sdp"].as_str().map(str::len),
        Some(MAX_RELAY_BODY_BYTES - 64)
    );
}

#[tokio::test]
async fn connect_insists_on_an_event_stream() {
    let server = TestServer::start().await;
    let (token, _) = server.access("x").await;
    let res = server
        .http
        .get(server.url(&format!("/connect?token={token}")))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(res).await.0, 406);
}

#[tokio::test]
async fn rooms_get_random_unguessable_ids() {
    let server = TestServer::start().await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let res = server.http.get(server.url("/")).send().await.unwrap();
        assert!(res.status().is_redirection());
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let id = location.strip_prefix('/').unwrap();
        assert_eq!(id.len(), 12, "{id}");
        assert!(shared::RoomId::parse(id).is_ok(), "{id}");
        assert!(seen.insert(id.to_owned()), "repeated room id {id}");
    }
    // The query string (a chosen name) survives the redirect.
    let res = server
        .http
        .get(server.url("/?name=alice"))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap();
    assert!(
        location.ends_with("?name=alice") && location.len() == "/".len() + 12 + "?name=alice".len(),
        "{location}"
    );
}

#[tokio::test]
async fn pages_serve_the_client_for_room_paths_only() {
    let dist = std::env::temp_dir().join(format!("drawmesh-dist-{}", std::process::id()));
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<title>Drawmesh</title>").unwrap();
    std::fs::write(dist.join("client-abc.js"), "export {}").unwrap();
    let mut config = server::config::Config::for_tests();
    config.dist = dist.clone();
    let server = TestServer::start_with(config).await;

    let page = server
        .http
        .get(server.url("/k3Jx9_aB-2Qz"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "<title>Drawmesh</title>");
    let asset = server
        .http
        .get(server.url("/client-abc.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(asset.text().await.unwrap(), "export {}");
    let missing = server
        .http
        .get(server.url("/missing.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(missing).await.0, 404);

    // Without a built client, room pages say how to build it.
    std::fs::remove_file(dist.join("index.html")).unwrap();
    let (status, error) = error_of(
        server
            .http
            .get(server.url("/k3Jx9_aB-2Qz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 503);
    assert!(error.contains("not built"), "{error}");
    std::fs::remove_dir_all(dist).unwrap();
}

#[tokio::test]
async fn malformed_paths_and_oversized_bodies_on_any_route_are_refused_in_json() {
    let server = TestServer::start().await;
    let (a, _b) = server.pair_in("r").await;
    // A peer id that is not UTF-8 once percent-decoded: axum's own answer was plain text.
    let res = server
        .http
        .post(server.url("/relay/%FF%FE/ice-candidate"))
        .bearer_auth(&a.token)
        .json(&json!({"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0}))
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(res).await;
    assert_eq!(status, 400);
    assert!(error.starts_with("bad path"), "{error}");
    // A route that reads no body still refuses one announced over the limit, before its handler.
    for path in ["/r/join", "/api/r/join", "/refresh"] {
        let res = server
            .http
            .post(server.url(path))
            .bearer_auth(&a.token)
            .body(vec![b'x'; MAX_RELAY_BODY_BYTES + 1])
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(res).await;
        assert_eq!(status, 413, "{path}");
        assert!(error.contains("too large"), "{error}");
    }
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_refused_in_json() {
    let server = TestServer::start().await;
    for (method, path, code) in [
        ("GET", "/access", 405),
        ("GET", "/api/refresh", 405),
        ("POST", "/config", 405),
        ("PUT", "/abc/join", 405),
        ("POST", "/connect", 405),
        ("POST", "/relay/only-a-peer", 404),
        ("DELETE", "/abc", 404),
    ] {
        let res = server
            .http
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        let (status, error) = error_of(res).await;
        assert_eq!(status, code, "{method} {path}");
        assert!(!error.is_empty(), "{method} {path}");
    }
}
