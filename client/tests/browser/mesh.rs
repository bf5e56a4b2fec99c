//! The mesh: two meshes on one page, signalling through an in-memory relay, open real WebRTC
//! data channels (host candidates only, as the server's default config gives).

use crate::support::{sleep, wait_for};
use client::mesh::{IceSettings, Mesh, PeerSummary, Signal};
use client::wire;
use shared::link::{OPEN_TIMEOUT_MS, Status};
use shared::protocol::{IceCandidate, SdpType, SessionDescription};
use shared::{PeerId, User};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen_futures::spawn_local;
use wasm_bindgen_test::wasm_bindgen_test;

/// One browser's side: its mesh and what it saw.
struct Side {
    user: User,
    mesh: Mesh,
    /// Data received, with the peer it was stamped with.
    received: Rc<RefCell<Vec<(PeerId, String)>>>,
    /// The signals delivered to this side, in order: "sd" or "ice".
    signals: Rc<RefCell<Vec<&'static str>>>,
}

impl Side {
    fn open_peers(&self) -> usize {
        self.mesh.peers().iter().filter(|p| p.open).count()
    }
}

fn user(id: &str, name: &str) -> User {
    User {
        id: PeerId(id.into()),
        username: name.into(),
    }
}

/// Two sides whose relays deliver to each other; session descriptions are held back for
/// `hold_ms`, so ICE candidates overtake them (as they can through a real server).
fn pair(hold_ms: i32) -> (Rc<Side>, Rc<Side>) {
    pair_dropping(hold_ms, |_, _| false)
}

/// The same, with a faulty relay: `drop(from, n)` is true for the `n`th session description
/// (counting from 0) sent by `from` that must be lost on the way.
fn pair_dropping(hold_ms: i32, drop: fn(&str, usize) -> bool) -> (Rc<Side>, Rc<Side>) {
    let slots: [Rc<RefCell<Option<Rc<Side>>>>; 2] = Default::default();
    let make = |me: User, other: usize| {
        let target = slots[other].clone();
        let from = me.clone();
        let descriptions_sent = Rc::new(std::cell::Cell::new(0usize));
        let relay = move |_to: &PeerId, signal: Signal| {
            if matches!(signal, Signal::SessionDescription(_)) {
                let n = descriptions_sent.get();
                descriptions_sent.set(n + 1);
                if drop(&from.id.0, n) {
                    return;
                }
            }
            // Through JSON, exactly as the relay POST body would travel.
            let body = signal.to_json().unwrap();
            let (target, from) = (target.clone(), from.clone());
            spawn_local(async move {
                let is_description = matches!(signal, Signal::SessionDescription(_));
                if is_description {
                    sleep(hold_ms).await;
                }
                let Some(side) = target.borrow().clone() else {
                    return;
                };
                if is_description {
                    side.signals.borrow_mut().push("sd");
                    side.mesh.session_description(
                        &from,
                        wire::decode::<SessionDescription>(&body).unwrap(),
                    );
                } else {
                    side.signals.borrow_mut().push("ice");
                    side.mesh
                        .ice_candidate(&from, wire::decode::<IceCandidate>(&body).unwrap());
                }
            });
        };
        let received = Rc::new(RefCell::new(Vec::new()));
        let on_data = {
            let received = received.clone();
            move |from: &PeerId, data: wasm_bindgen::JsValue| {
                received
                    .borrow_mut()
                    .push((from.clone(), data.as_string().unwrap_or_default()));
            }
        };
        let mesh = Mesh::new(
            &IceSettings::default(),
            relay,
            on_data,
            |_: &[PeerSummary]| {},
        );
        Rc::new(Side {
            user: me,
            mesh,
            received,
            signals: Rc::default(),
        })
    };
    let a = make(user("a", "alice"), 1);
    let b = make(user("b", "bob"), 0);
    *slots[0].borrow_mut() = Some(a.clone());
    *slots[1].borrow_mut() = Some(b.clone());
    (a, b)
}

/// What the server does on a join: the joiner offers.
fn introduce(joiner: &Side, member: &Side) {
    member.mesh.add_peer(joiner.user.clone(), false);
    joiner.mesh.add_peer(member.user.clone(), true);
}

#[wasm_bindgen_test]
async fn peers_connect_even_when_candidates_overtake_the_descriptions() {
    let (a, b) = pair(400);
    introduce(&a, &b);
    assert_eq!(a.mesh.peers().len(), 1);
    assert_eq!(a.open_peers(), 0);
    assert!(
        wait_for(10_000, || a.open_peers() == 1 && b.open_peers() == 1).await,
        "channels open"
    );
    // Both sides got candidates before the description they belong to: they were queued.
    assert_eq!(
        a.signals.borrow().first(),
        Some(&"ice"),
        "a: {:?}",
        a.signals.borrow()
    );
    assert_eq!(
        b.signals.borrow().first(),
        Some(&"ice"),
        "b: {:?}",
        b.signals.borrow()
    );

    assert_eq!(a.mesh.broadcast("hello from a"), 1);
    assert_eq!(b.mesh.broadcast("hello from b"), 1);
    assert!(
        wait_for(5_000, || !a.received.borrow().is_empty()
            && !b.received.borrow().is_empty())
        .await
    );
    assert_eq!(
        b.received.borrow()[0],
        (PeerId("a".into()), "hello from a".into())
    );
    assert_eq!(
        a.received.borrow()[0],
        (PeerId("b".into()), "hello from b".into())
    );

    // a drops b: b notices its channel close and forgets a.
    a.mesh.remove_peer(&b.user.id);
    assert!(a.mesh.peers().is_empty());
    assert_eq!(a.mesh.broadcast("anyone?"), 0);
    assert!(
        wait_for(10_000, || b.mesh.peers().is_empty()).await,
        "b forgot a"
    );
    a.mesh.clear();
    b.mesh.clear();
}

#[wasm_bindgen_test]
async fn a_second_introduction_replaces_the_connection() {
    let (a, b) = pair(0);
    introduce(&a, &b);
    assert!(wait_for(10_000, || a.open_peers() == 1 && b.open_peers() == 1).await);
    // The server introduces them again (one of them lost its stream): start over, no duplicate.
    introduce(&a, &b);
    assert_eq!(a.mesh.peers().len(), 1);
    assert!(wait_for(10_000, || a.open_peers() == 1 && b.open_peers() == 1).await);
    // Give the old connections' close events time to (not) remove the new peers.
    sleep(500).await;
    assert_eq!((a.open_peers(), b.open_peers()), (1, 1));
    assert_eq!(a.mesh.broadcast("again"), 1);
    assert!(
        wait_for(5_000, || b
            .received
            .borrow()
            .iter()
            .any(|(_, t)| t == "again"))
        .await
    );
    a.mesh.clear();
    b.mesh.clear();
}

/// Waits up to one open timeout, plus slack, for both sides to be open.
async fn both_open_after_a_retry(a: &Side, b: &Side) -> bool {
    let bound = (OPEN_TIMEOUT_MS as i32) + 8_000;
    wait_for(bound, || a.open_peers() == 1 && b.open_peers() == 1).await
}

#[wasm_bindgen_test]
async fn a_lost_offer_is_negotiated_again() {
    // a's first offer never arrives: without a retry, b waits for it forever.
    let (a, b) = pair_dropping(0, |from, n| from == "a" && n == 0);
    introduce(&a, &b);
    sleep(2_000).await;
    assert_eq!(
        (a.open_peers(), b.open_peers()),
        (0, 0),
        "nothing opens without the offer"
    );
    assert!(
        both_open_after_a_retry(&a, &b).await,
        "the retry connected them"
    );
    assert_eq!(a.mesh.broadcast("after the retry"), 1);
    assert!(
        wait_for(5_000, || b
            .received
            .borrow()
            .iter()
            .any(|(_, t)| t == "after the retry"))
        .await
    );
    a.mesh.clear();
    b.mesh.clear();
}

#[wasm_bindgen_test]
async fn a_lost_answer_is_negotiated_again() {
    // b answers the first offer, but the answer is lost; the retry's offer comes from a new
    // connection (new fingerprint), so b starts over too.
    let (a, b) = pair_dropping(0, |from, n| from == "b" && n == 0);
    introduce(&a, &b);
    assert!(
        both_open_after_a_retry(&a, &b).await,
        "the retry connected them"
    );
    assert_eq!(b.mesh.peers().len(), 1, "no second entry for a at b");
    a.mesh.clear();
    b.mesh.clear();
}

#[wasm_bindgen_test]
async fn pings_keep_the_link_and_never_reach_the_document() {
    let (a, b) = pair(0);
    introduce(&a, &b);
    assert!(wait_for(10_000, || a.open_peers() == 1 && b.open_peers() == 1).await);
    // Direct on one machine: the route is read from the connection's stats.
    assert!(
        wait_for(5_000, || a.mesh.peers()[0].status
            == Status::Open(Some(shared::link::Route::Direct)))
        .await,
        "{:?}",
        a.mesh.peers()
    );
    // A few ping intervals pass: nothing reaches the data hooks, and nobody is dropped.
    sleep(5_000).await;
    assert!(a.received.borrow().is_empty(), "{:?}", a.received.borrow());
    assert!(b.received.borrow().is_empty(), "{:?}", b.received.borrow());
    assert_eq!((a.open_peers(), b.open_peers()), (1, 1));
    a.mesh.clear();
    b.mesh.clear();
}

#[wasm_bindgen_test]
async fn signals_from_strangers_leave_nothing_behind() {
    let (a, _b) = pair(0);
    let stranger = user("x", "stranger");
    a.mesh.ice_candidate(
        &stranger,
        IceCandidate {
            candidate: String::new(),
            sdp_mid: None,
            sdp_m_line_index: None,
            username_fragment: None,
        },
    );
    a.mesh.session_description(
        &stranger,
        SessionDescription {
            kind: SdpType::Offer,
            sdp: "v=0".into(),
        },
    );
    // The unusable offer's connection goes again by itself.
    assert!(wait_for(2_000, || a.mesh.peers().is_empty()).await);
    assert_eq!(a.mesh.broadcast("nobody"), 0);
}
