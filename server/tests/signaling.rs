//! The signaling protocol end to end: real server on port 0, real HTTP and SSE, several users.

mod common;

use common::{QUIET, TestServer};
use serde_json::json;

fn offer() -> serde_json::Value {
    json!({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"})
}

fn candidate() -> serde_json::Value {
    json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0})
}

#[tokio::test]
async fn two_users_meet_and_signal_each_other() {
    let server = TestServer::start().await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;

    let res = server.join(&alice, "room1").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        json!({"roomId": "room1", "peers": 0})
    );
    assert_eq!(server.join(&bob, "room1").await.status(), 200);

    // The member is told to wait for an offer; the joiner is told to make one.
    let to_alice = alice.events.next().await;
    assert_eq!(to_alice.event, "add-peer");
    assert_eq!(
        to_alice.data,
        json!({"peer": {"id": bob.id, "username": "bob"}, "roomId": "room1", "offer": false})
    );
    let to_bob = bob.events.next().await;
    assert_eq!(
        to_bob.data,
        json!({"peer": {"id": alice.id, "username": "alice"}, "roomId": "room1", "offer": true})
    );

    // Offer, answer and candidates flow, each stamped with its real sender.
    assert_eq!(
        server
            .relay(&bob, &alice.id, "session-description", &offer())
            .await
            .status(),
        200
    );
    let got = alice.events.next().await;
    assert_eq!(got.event, "session-description");
    assert_eq!(
        got.data,
        json!({"peer": {"id": bob.id, "username": "bob"}, "data": offer()})
    );

    let answer = json!({"type": "answer", "sdp": "v=0\r\n"});
    assert_eq!(
        server
            .relay(&alice, &bob.id, "session-description", &answer)
            .await
            .status(),
        200
    );
    assert_eq!(bob.events.next().await.data["data"], answer);

    for _ in 0..3 {
        assert_eq!(
            server
                .relay(&bob, &alice.id, "ice-candidate", &candidate())
                .await
                .status(),
            200
        );
    }
    for _ in 0..3 {
        let got = alice.events.next().await;
        assert_eq!(
            (got.event.as_str(), &got.data["data"]),
            ("ice-candidate", &candidate())
        );
    }
}

#[tokio::test]
async fn every_event_has_an_increasing_id() {
    let server = TestServer::start().await;
    let (token, _) = server.access("ids").await;
    let mut events = server.connect(&token).await;
    let mut other = server.user("other").await;
    let first = events.next().await;
    let me = first.data["user"]["id"].as_str().unwrap().to_owned();
    server.join(&other, "r").await;
    let client = common::Client {
        token,
        id: me.clone(),
        username: "ids".into(),
        events,
    };
    server.join(&client, "r").await;
    let mut events = client.events;
    let second = events.next().await;
    let ids: Vec<u64> = [&first, &second]
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(ids[0] < ids[1], "{ids:?}");
    assert!(other.events.next().await.id.is_some());
}

#[tokio::test]
async fn three_users_form_a_mesh_and_a_leaver_is_removed() {
    let server = TestServer::start().await;
    let mut a = server.user("a").await;
    let mut b = server.user("b").await;
    let mut c = server.user("c").await;
    server.join(&a, "mesh").await;
    server.join(&b, "mesh").await;
    server.join(&c, "mesh").await;

    assert_eq!(a.events.next().await.data["peer"]["id"], b.id.as_str());
    assert_eq!(b.events.next().await.data["peer"]["id"], a.id.as_str());
    // c offers to both members; both are told c is coming.
    let mut c_offers: Vec<String> = Vec::new();
    for _ in 0..2 {
        let e = c.events.next().await;
        assert_eq!(
            (e.event.as_str(), e.data["offer"].as_bool()),
            ("add-peer", Some(true))
        );
        c_offers.push(e.data["peer"]["id"].as_str().unwrap().to_owned());
    }
    c_offers.sort();
    let mut expected = vec![a.id.clone(), b.id.clone()];
    expected.sort();
    assert_eq!(c_offers, expected);
    for member in [&mut a, &mut b] {
        let e = member.events.next().await;
        assert_eq!(
            (e.data["peer"]["id"].as_str(), e.data["offer"].as_bool()),
            (Some(c.id.as_str()), Some(false))
        );
    }
    assert_eq!(server.state.hub.stats().rooms, 1);

    // c's stream closes: a and b are told, and c can no longer be relayed to.
    let c_id = c.id.clone();
    drop(c);
    for member in [&mut a, &mut b] {
        let e = member.events.next().await;
        assert_eq!(e.event, "remove-peer");
        assert_eq!(
            e.data,
            json!({"peer": {"id": c_id, "username": "c"}, "roomId": "mesh"})
        );
    }
    assert_eq!(
        server
            .relay(&a, &c_id, "ice-candidate", &candidate())
            .await
            .status(),
        403
    );
    // a and b still signal each other.
    assert_eq!(
        server
            .relay(&a, &b.id, "ice-candidate", &candidate())
            .await
            .status(),
        200
    );
    assert_eq!(b.events.next().await.event, "ice-candidate");

    drop(a);
    assert_eq!(b.events.next().await.event, "remove-peer");
    drop(b);
    // The last one out drops the room and every stream is gone.
    let stats = wait_for(|| server.state.hub.stats().streams == 0).await;
    assert!(stats, "streams left: {:?}", server.state.hub.stats());
    assert_eq!(server.state.hub.stats().rooms, 0);
}

#[tokio::test]
async fn joining_twice_is_harmless_and_says_nothing_about_yourself() {
    let server = TestServer::start().await;
    let (mut a, mut b) = server.pair_in("r").await;
    let again = server.join(&b, "r").await;
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["peers"], 0);
    assert!(a.events.next_within(QUIET).await.is_none());
    assert!(b.events.next_within(QUIET).await.is_none());
}

#[tokio::test]
async fn a_reconnect_replaces_the_stream_without_ghosts() {
    let server = TestServer::start().await;
    let (mut a, mut b) = server.pair_in("r").await;

    // b's EventSource reconnects with the same token: the old stream ends, the new one works.
    let mut fresh = server.connect(&b.token).await;
    assert_eq!(fresh.next().await.event, "connected");
    assert!(
        b.events.ends_within(common::EVENT_TIMEOUT).await,
        "old stream should end"
    );
    assert_eq!(
        server
            .join(&b, "r")
            .await
            .json::<serde_json::Value>()
            .await
            .unwrap()["peers"],
        0
    );
    assert!(
        a.events.next_within(QUIET).await.is_none(),
        "a must see no leave and no duplicate join"
    );
    assert_eq!(server.state.hub.stats().streams, 2);

    assert_eq!(
        server
            .relay(&a, &b.id, "ice-candidate", &candidate())
            .await
            .status(),
        200
    );
    assert_eq!(fresh.next().await.event, "ice-candidate");
}

#[tokio::test]
async fn relays_across_rooms_are_refused_and_deliver_nothing() {
    let server = TestServer::start().await;
    let a = server.user("a").await;
    let mut b = server.user("b").await;
    let mut c = server.user("c").await;
    server.join(&a, "one").await;
    server.join(&b, "one").await;
    server.join(&c, "two").await;
    b.events.next().await; // add-peer a

    let res = server
        .relay(&c, &b.id, "session-description", &offer())
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.json::<serde_json::Value>().await.unwrap()["error"].is_string());
    // A peer in no room at all is refused too.
    let lonely = server.user("lonely").await;
    assert_eq!(
        server
            .relay(&lonely, &b.id, "ice-candidate", &candidate())
            .await
            .status(),
        403
    );
    assert!(
        b.events.next_within(QUIET).await.is_none(),
        "nothing delivered"
    );
    assert!(c.events.next_within(QUIET).await.is_none());
}

#[tokio::test]
async fn the_api_is_also_served_under_api() {
    let server = TestServer::start().await;
    let res = server
        .http
        .post(server.url("/api/access"))
        .json(&json!({"username": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = server
        .http
        .get(server.url(&format!("/api/connect?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let config = server
        .http
        .get(server.url("/api/config"))
        .send()
        .await
        .unwrap();
    let config = config.json::<serde_json::Value>().await.unwrap();
    assert_eq!(config["iceServers"], json!([]));
    assert!(config["certKey"].is_string());
}

async fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    condition()
}

#[tokio::test]
async fn configured_ice_servers_reach_the_client() {
    use clap::Parser;
    let config = server::config::Config::try_parse_from([
        "drawmesh-server",
        "--port",
        "0",
        "--ice-servers",
        r#"[{"urls":["turn:turn.example.org:3478"],"username":"u","credential":"c"}]"#,
    ])
    .unwrap();
    let server = TestServer::start_with(config).await;
    let res = server.http.get(server.url("/config")).send().await.unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["iceServers"],
        json!([{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "c"}])
    );
    // A malformed list is refused at start with a message that says what is expected.
    let err =
        server::config::Config::try_parse_from(["drawmesh-server", "--ice-servers", "stun:x"])
            .unwrap_err();
    assert!(err.to_string().contains("JSON array"), "{err}");
}

#[tokio::test]
async fn refresh_keeps_the_peer_id_and_refuses_bad_tokens() {
    let server = TestServer::start().await;
    let mut a = server.user("a").await;
    let res = server
        .http
        .post(server.url("/api/refresh"))
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["user"], json!({"id": a.id, "username": "a"}));
    let renewed = body["token"].as_str().unwrap().to_owned();
    // The renewed token is the same peer: joining with it reaches a's open stream.
    let mut b = server.user("b").await;
    server.join(&b, "r").await;
    let res = server.join_with_token(&renewed, "r").await;
    assert_eq!(res.status(), 200);
    assert_eq!(a.events.next().await.data["peer"]["id"], b.id.as_str());
    assert_eq!(b.events.next().await.data["peer"]["id"], a.id.as_str());

    let (expired, _) = server
        .state
        .tokens
        .issue_at("old", 1_000_000, server::auth::TOKEN_TTL)
        .unwrap();
    let res = server
        .http
        .post(server.url("/refresh"))
        .bearer_auth(expired)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = server
        .http
        .post(server.url("/refresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
