//! What signing costs in the browser, printed: a benchmark, not a test (it asserts no time, and is
//! ignored unless asked for). Run it on the shipping build's settings:
//!
//! `cargo test --profile wasm-release -p client --target wasm32-unknown-unknown --test browser -- --include-ignored signing_cost --nocapture`
//!
//! - per stroke, on its author: chaining each op and the signatures of a stroke of 50 points
//!   drawn as 50 pointer events 8 ms apart (what `Board` does), against making the ops alone;
//! - a late join of 10,000 strokes of 50 points (each an `add`, twelve `extend`s of 4 points and a
//!   `finish`): handed over by a third peer, checked and integrated by the newcomer, against
//!   integrating the same ops unchecked.

use shared::PeerId;
use shared::color::Color;
use shared::document::{Document, Op, OpKind, Shape, VersionVector};
use shared::geometry::Point;
use shared::signing::{Certificate, Keypair, Ledger};
use shared::sync::SYNC_BATCH_BYTES;
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

fn now() -> f64 {
    web_sys::window().unwrap().performance().unwrap().now()
}

fn p(i: usize, j: usize) -> Point {
    Point::new((j % 500) as f32, (i % 400) as f32 + 0.5, 0.5)
}

struct Peer {
    me: PeerId,
    key: Keypair,
    doc: Document,
    ledger: Ledger,
}

fn peer(name: &str, seed: u8, server: &Keypair) -> Peer {
    let key = Keypair::from_seed([seed; 32]);
    let me = PeerId(name.into());
    let mut ledger = Ledger::new();
    ledger.trust_server(server.public());
    ledger.remember(Certificate::issue(server, me.clone(), key.public()));
    Peer {
        me,
        key,
        doc: Document::new(),
        ledger,
    }
}

/// One stroke of 50 points as pointer events: an `add` of its first point, 49 `extend`s, a
/// `finish`. With `sign`, each op is chained and each event's ops sealed as a broadcast would be.
fn stroke_by_events(peer: &mut Peer, i: usize, t0: f64, sign: bool) -> usize {
    let color = Color::rgb(0, 0, 0);
    let mut sealed = 0;
    let mut event = |peer: &mut Peer, kind: OpKind, t: f64| {
        let (op, _) = peer.doc.make(&peer.me, kind);
        if sign {
            peer.ledger.record_mine(&op, &peer.key);
            let me = peer.me.clone();
            sealed += usize::from(peer.ledger.seal_live(&peer.key, &me, &[op], t).is_some());
        }
    };
    let add = OpKind::Add {
        shape: Shape::Stroke {
            points: vec![p(i, 0)],
        },
        color,
        width: 2.0,
    };
    let element = peer.doc.next_seq(&peer.me);
    event(peer, add, t0);
    for j in 1..50 {
        let grow = OpKind::Extend {
            element,
            points: vec![p(i, j)],
        };
        event(peer, grow, t0 + 8.0 * j as f64);
    }
    event(peer, OpKind::Finish { element }, t0 + 400.0);
    sealed
}

/// 10,000 strokes of 50 points in 14 ops each, made by `peer` and chained.
fn drawing(peer: &mut Peer, strokes: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut push = |peer: &mut Peer, kind| {
        let (op, _) = peer.doc.make(&peer.me, kind);
        peer.ledger.record_mine(&op, &peer.key);
        ops.push(op);
    };
    for i in 0..strokes {
        let element = peer.doc.next_seq(&peer.me);
        push(
            peer,
            OpKind::Add {
                shape: Shape::Stroke {
                    points: vec![p(i, 0), p(i, 1)],
                },
                color: Color::rgb(0, 0, 0),
                width: 2.0,
            },
        );
        for k in 0..12 {
            let points = (0..4).map(|j| p(i, 2 + 4 * k + j)).collect();
            push(peer, OpKind::Extend { element, points });
        }
        push(peer, OpKind::Finish { element });
    }
    ops
}

#[wasm_bindgen_test]
#[ignore]
fn signing_cost() {
    let server = Keypair::derive(b"drawmesh certificate key", b"bench");

    // Per stroke, on its author.
    let strokes = 200;
    let mut plain = peer("plain", 1, &server);
    let t = now();
    for i in 0..strokes {
        stroke_by_events(&mut plain, i, i as f64 * 1_000.0, false);
    }
    let plain_ms = (now() - t) / strokes as f64;
    let mut author = peer("author", 2, &server);
    let mut signatures = 0;
    let t = now();
    for i in 0..strokes {
        signatures += stroke_by_events(&mut author, i, i as f64 * 1_000.0, true);
    }
    let signed_ms = (now() - t) / strokes as f64;
    let per_stroke = signatures as f64 / strokes as f64;
    console_log!(
        "per stroke (50 pointer events): {signed_ms:.3} ms with signing, {plain_ms:.3} ms without; \
         {per_stroke:.1} signatures sent per stroke"
    );
    let key = Keypair::from_seed([3; 32]);
    let t = now();
    for _ in 0..200 {
        author.ledger.seal(&key, &author.me.clone());
    }
    console_log!("one signature: {:.3} ms", (now() - t) / 200.0);

    // A late join of 10,000 strokes, handed over by a third peer.
    let mut alice = peer("alice", 4, &server);
    let t = now();
    let ops = drawing(&mut alice, 10_000);
    console_log!(
        "made and chained {} ops of 10,000 strokes in {:.0} ms",
        ops.len(),
        now() - t
    );
    let mut bob = peer("bob", 5, &server);
    for batch in alice.ledger.sync_batches(
        &alice.doc,
        &VersionVector::default(),
        &alice.me,
        &alice.key,
        SYNC_BATCH_BYTES,
    ) {
        let a = bob.ledger.admit(
            &mut bob.doc,
            &alice.me,
            batch.ops,
            batch.proofs,
            batch.certs,
        );
        assert!(a.refused.is_empty());
    }
    let t = now();
    let batches = bob.ledger.sync_batches(
        &bob.doc,
        &VersionVector::default(),
        &bob.me,
        &bob.key,
        SYNC_BATCH_BYTES,
    );
    let cut_ms = now() - t;
    let (count, proofs) = (
        batches.len(),
        batches.iter().map(|b| b.proofs.len()).sum::<usize>(),
    );
    let unchecked: Vec<Vec<Op>> = batches.iter().map(|b| b.ops.clone()).collect();
    let mut carol = peer("carol", 6, &server);
    let t = now();
    for batch in batches {
        let a = carol.ledger.admit(
            &mut carol.doc,
            &bob.me,
            batch.ops,
            batch.proofs,
            batch.certs,
        );
        assert!(a.refused.is_empty());
    }
    let checked_ms = now() - t;
    let mut dave = Document::new();
    let t = now();
    for batch in unchecked {
        for op in batch {
            dave.apply_from(op, Some(&bob.me)).unwrap();
        }
    }
    let plain_ms = now() - t;
    assert_eq!(carol.doc.version_vector(), alice.doc.version_vector());
    console_log!(
        "late join of 10,000 strokes ({} ops, {count} messages, {proofs} signatures checked): \
         {checked_ms:.0} ms checked and integrated, {plain_ms:.0} ms integrated unchecked \
         (verification {:.0} ms); cutting and signing the reply {cut_ms:.0} ms",
        alice.doc.op_count(),
        checked_ms - plain_ms
    );
}
