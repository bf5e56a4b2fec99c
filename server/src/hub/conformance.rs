//! The hub's behaviour, written once: every backend runs these scenarios
//! ([`hub_conformance_suite!`](crate::hub_conformance_suite) makes them tests).
//!
//! Each scenario takes two hubs, `a` and `b`, and puts users on both: for the in-process backend
//! they are one hub twice; for a shared backend they are two server processes, so every scenario
//! also checks that the processes act as one.

use super::{Hub, HubError, Joined, Subscription};
use futures_util::StreamExt;
use serde_json::Value;
use serde_json::value::RawValue;
use shared::protocol::{PeerId, RelayEvent, User};
use shared::room::RoomId;
use std::time::Duration;

/// How long an event that should come may take.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to listen before concluding that an event did not come (absence has no event).
pub const QUIET: Duration = Duration::from_millis(300);

fn user(name: &str) -> User {
    // Unique per run, so scenarios sharing a backend (one Redis) never meet.
    User {
        id: PeerId(format!("{name}-{}", uuid::Uuid::new_v4())),
        username: name.into(),
    }
}

fn room(name: &str) -> RoomId {
    RoomId::parse(&format!(
        "{name}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ))
    .expect("a valid room id")
}

fn body(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

/// The next event, or a panic naming what was awaited.
async fn next(sub: &mut Subscription, what: &str) -> (&'static str, Value) {
    let delivery = tokio::time::timeout(EVENT_TIMEOUT, sub.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {EVENT_TIMEOUT:?}: {what}"))
        .unwrap_or_else(|| panic!("stream ended: {what}"));
    let data = serde_json::from_str(&delivery.data).expect("events are JSON");
    (delivery.event, data)
}

/// Asserts nothing more arrives within [`QUIET`].
async fn quiet(sub: &mut Subscription, what: &str) {
    if let Ok(Some(d)) = tokio::time::timeout(QUIET, sub.next()).await {
        panic!("{what}: unexpected {} {}", d.event, d.data);
    }
}

async fn connected(hub: &Hub, user: &User) -> Subscription {
    let mut sub = hub.connect(user.clone()).await.expect("connect");
    let (event, data) = next(&mut sub, "connected").await;
    assert_eq!(event, "connected");
    assert_eq!(data["user"]["id"], user.id.0.as_str());
    sub
}

/// A join introduces both ways (the joiner offers), and joining again sends nothing.
pub async fn join_introduces_both_ways_and_rejoin_is_silent(a: Hub, b: Hub) {
    let (alice, bob) = (user("a"), user("b"));
    let r = room("r");
    let mut sa = connected(&a, &alice).await;
    let mut sb = connected(&b, &bob).await;
    assert_eq!(a.join(&alice, &r).await, Ok(Joined::New { members: 0 }));
    assert_eq!(b.join(&bob, &r).await, Ok(Joined::New { members: 1 }));
    let (event, data) = next(&mut sa, "add-peer for the member").await;
    assert_eq!(event, "add-peer");
    assert_eq!(data["offer"], false);
    assert_eq!(data["peer"]["id"], bob.id.0.as_str());
    assert_eq!(data["roomId"], r.to_string());
    let (event, data) = next(&mut sb, "add-peer for the joiner").await;
    assert_eq!(event, "add-peer");
    assert_eq!(data["offer"], true);
    assert_eq!(data["peer"]["id"], alice.id.0.as_str());
    assert_eq!(b.join(&bob, &r).await, Ok(Joined::Already));
    assert_eq!(a.join(&alice, &r).await, Ok(Joined::Already));
    quiet(&mut sa, "a after the re-joins").await;
    quiet(&mut sb, "b after the re-joins").await;
}

/// A room takes so many members, a user so many rooms; the refused join changes nothing, and a
/// place frees when a member leaves.
pub async fn rooms_and_members_are_capped(a: Hub, b: Hub) {
    let limits = super::RoomLimits {
        peers_per_room: 2,
        rooms_per_peer: 2,
    };
    let (a, b) = (a.with_room_limits(limits), b.with_room_limits(limits));
    let (alice, bob, carol) = (user("a"), user("b"), user("c"));
    let (r, s, t) = (room("r"), room("s"), room("t"));
    let mut sa = connected(&a, &alice).await;
    let mut sb = connected(&b, &bob).await;
    let sc = connected(&a, &carol).await;
    assert_eq!(a.join(&alice, &r).await, Ok(Joined::New { members: 0 }));
    assert_eq!(b.join(&bob, &r).await, Ok(Joined::New { members: 1 }));
    next(&mut sa, "add-peer for bob").await;
    next(&mut sb, "add-peer for alice").await;
    assert_eq!(a.join(&carol, &r).await, Err(HubError::RoomFull(2)));
    quiet(&mut sa, "alice after carol's refused join").await;
    quiet(&mut sb, "bob after carol's refused join").await;
    // Carol is in no room: she cannot reach the members.
    assert_eq!(
        a.relay(&carol, &alice.id, RelayEvent::IceCandidate, &body("{}"))
            .await,
        Err(HubError::NotInSharedRoom)
    );
    // Alice's rooms: r, s, and no third.
    assert_eq!(a.join(&alice, &s).await, Ok(Joined::New { members: 0 }));
    assert_eq!(a.join(&alice, &t).await, Err(HubError::TooManyRooms(2)));
    assert_eq!(
        a.join(&alice, &r).await,
        Ok(Joined::Already),
        "rejoining is no new room"
    );
    // Bob leaves: carol fits.
    drop(sb);
    next(&mut sa, "remove-peer for bob").await;
    assert_eq!(a.join(&carol, &r).await, Ok(Joined::New { members: 1 }));
    drop(sc);
}

/// Joining needs an open stream.
pub async fn join_without_a_stream_is_refused(a: Hub, _b: Hub) {
    assert_eq!(
        a.join(&user("nobody"), &room("r")).await,
        Err(HubError::NotConnected)
    );
}

/// Relays go only between members of a shared room, stamped with the sender.
pub async fn relay_needs_a_shared_room(a: Hub, b: Hub) {
    let (alice, bob, carol) = (user("a"), user("b"), user("c"));
    let (r, other) = (room("r"), room("o"));
    let _sa = connected(&a, &alice).await;
    let mut sb = connected(&b, &bob).await;
    let _sc = connected(&a, &carol).await;
    a.join(&alice, &r).await.unwrap();
    b.join(&bob, &r).await.unwrap();
    a.join(&carol, &other).await.unwrap();
    next(&mut sb, "add-peer a").await;
    let candidate = body(r#"{"candidate":""}"#);
    assert_eq!(
        a.relay(&carol, &bob.id, RelayEvent::IceCandidate, &candidate)
            .await,
        Err(HubError::NotInSharedRoom)
    );
    assert_eq!(
        a.relay(
            &alice,
            &PeerId("nobody".into()),
            RelayEvent::IceCandidate,
            &candidate
        )
        .await,
        Err(HubError::NotInSharedRoom)
    );
    a.relay(&alice, &bob.id, RelayEvent::IceCandidate, &candidate)
        .await
        .unwrap();
    let (event, data) = next(&mut sb, "the relayed candidate").await;
    assert_eq!(event, "ice-candidate");
    assert_eq!(
        data,
        serde_json::json!({"peer": {"id": alice.id.0, "username": "a"}, "data": {"candidate": ""}})
    );
    quiet(&mut sb, "b after one relay").await;
}

/// Relays from one sender to one receiver arrive in order, each exactly once.
pub async fn relays_arrive_in_order_exactly_once(a: Hub, b: Hub) {
    let (alice, bob) = (user("a"), user("b"));
    let r = room("r");
    let _sa = connected(&a, &alice).await;
    let mut sb = connected(&b, &bob).await;
    a.join(&alice, &r).await.unwrap();
    b.join(&bob, &r).await.unwrap();
    next(&mut sb, "add-peer a").await;
    const N: usize = 100;
    for n in 0..N {
        let candidate = body(&format!(r#"{{"candidate":"{n}"}}"#));
        a.relay(&alice, &bob.id, RelayEvent::IceCandidate, &candidate)
            .await
            .unwrap();
    }
    for n in 0..N {
        let (_, data) = next(&mut sb, "the next relay").await;
        assert_eq!(
            data["data"]["candidate"],
            n.to_string(),
            "relay {n} in order"
        );
    }
    quiet(&mut sb, "b after all relays (no duplicates)").await;
}

/// Closing a stream leaves its rooms: the others get `remove-peer`.
pub async fn closing_a_stream_leaves_its_rooms(a: Hub, b: Hub) {
    let (alice, bob) = (user("a"), user("b"));
    let r = room("r");
    let mut sa = connected(&a, &alice).await;
    let sb = connected(&b, &bob).await;
    a.join(&alice, &r).await.unwrap();
    b.join(&bob, &r).await.unwrap();
    next(&mut sa, "add-peer b").await;
    drop(sb);
    let (event, data) = next(&mut sa, "remove-peer b").await;
    assert_eq!(event, "remove-peer");
    assert_eq!(data["peer"]["id"], bob.id.0.as_str());
    assert_eq!(data["roomId"], r.to_string());
    quiet(&mut sa, "a after b left").await;
    // b is gone: relays to it are refused.
    assert_eq!(
        a.relay(&alice, &bob.id, RelayEvent::IceCandidate, &body("{}"))
            .await,
        Err(HubError::NotInSharedRoom)
    );
}

/// A reconnect (possibly to another process) replaces the stream; the old stream's close makes
/// no leave, so nobody sees a ghost, a `remove-peer` or a second `add-peer`.
pub async fn a_reconnect_replaces_the_stream_without_a_ghost(a: Hub, b: Hub) {
    let (alice, bob) = (user("a"), user("b"));
    let r = room("r");
    let first = connected(&a, &alice).await;
    let mut sb = connected(&a, &bob).await;
    a.join(&alice, &r).await.unwrap();
    a.join(&bob, &r).await.unwrap();
    next(&mut sb, "add-peer a").await;
    let mut second = connected(&b, &alice).await;
    drop(first);
    assert_eq!(b.join(&alice, &r).await, Ok(Joined::Already));
    quiet(&mut sb, "b: no remove-peer, no second add-peer").await;
    // The new stream is the one delivered to.
    a.relay(
        &bob,
        &alice.id,
        RelayEvent::IceCandidate,
        &body(r#"{"candidate":"x"}"#),
    )
    .await
    .unwrap();
    let (event, data) = next(&mut second, "the relay on the new stream").await;
    assert_eq!(event, "ice-candidate");
    assert_eq!(data["peer"]["id"], bob.id.0.as_str());
}

/// A reader too slow to keep up loses its stream; nobody else is held up, and the others are
/// told it left. The hubs must have been made with a queue of 4 events.
pub async fn a_full_queue_closes_only_the_slow_stream(a: Hub, b: Hub) {
    let (slow, fast) = (user("slow"), user("fast"));
    let r = room("r");
    let mut s_slow = a.connect(slow.clone()).await.unwrap();
    let mut s_fast = connected(&b, &fast).await;
    a.join(&slow, &r).await.unwrap();
    b.join(&fast, &r).await.unwrap();
    next(&mut s_fast, "add-peer slow").await;
    // slow has connected + add-peer queued; more relays fill its queue and overflow it.
    for n in 0..8 {
        let _ = b
            .relay(
                &fast,
                &slow.id,
                RelayEvent::IceCandidate,
                &body(&format!(r#"{{"candidate":"{n}"}}"#)),
            )
            .await;
    }
    // The slow stream ends after what it had queued.
    let drained = tokio::time::timeout(EVENT_TIMEOUT, async {
        let mut n = 0;
        while s_slow.next().await.is_some() {
            n += 1;
        }
        n
    })
    .await
    .expect("the slow stream ended");
    assert!((2..=4).contains(&drained), "drained {drained}");
    let (event, data) = next(&mut s_fast, "remove-peer slow").await;
    assert_eq!(event, "remove-peer");
    assert_eq!(data["peer"]["id"], slow.id.0.as_str());
}

/// Turns the scenarios of [`conformance`](crate::hub::conformance) into `#[tokio::test]`s for one
/// backend. `$make` is an async closure taking the per-stream queue length and returning the two
/// hubs `(a, b)` each scenario puts its users on.
#[macro_export]
macro_rules! hub_conformance_suite {
    ($make:expr) => {
        $crate::hub_conformance_suite!(@tests $make;
            join_introduces_both_ways_and_rejoin_is_silent: 16,
            join_without_a_stream_is_refused: 16,
            rooms_and_members_are_capped: 16,
            relay_needs_a_shared_room: 16,
            relays_arrive_in_order_exactly_once: 256,
            closing_a_stream_leaves_its_rooms: 16,
            a_reconnect_replaces_the_stream_without_a_ghost: 16,
            a_full_queue_closes_only_the_slow_stream: 4,
        );
    };
    (@tests $make:expr; $($name:ident: $queue:expr),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (a, b) = ($make)($queue).await;
                $crate::hub::conformance::$name(a, b).await;
            }
        )*
    };
}
