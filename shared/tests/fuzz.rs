//! Property-based fuzzing of everything a peer (or the server) hands us, sized to run in CI.
//!
//! Generators make hostile values on purpose: clocks at 0, 1, around 2^24 (the clock step),
//! 2^50 (`MAX_CLOCK`), 2^53 (the JavaScript limit) and `u64::MAX`; floats that are NaN,
//! infinite, negative zero, subnormal or 1e38; empty and huge vectors; strings with unicode and
//! control characters; version vectors naming thousands of authors; ops of every kind from many
//! authors. The properties:
//! - every decoder of peer or server data returns (never panics), on arbitrary text and on
//!   mutated valid messages, and what validates is within bounds and survives a round trip;
//! - a document fed arbitrary ops (validated or not, with or without a sender) never panics and
//!   keeps every clock at or below `MAX_CLOCK`, moving by at most `MAX_CLOCK_STEP` per op;
//! - honest replicas that receive the same honest log in different orders, duplicated and
//!   interleaved with hostile ops from hostile senders, end with the same drawing once they
//!   have synced; and a replica that syncs once from another gets everything the other has.

use proptest::prelude::*;
use shared::PeerId;
use shared::color::Color;
use shared::document::{
    Document, Element, MAX_AUTHORS, MAX_CLOCK, MAX_CLOCK_STEP, MAX_ERASE_TARGETS,
    MAX_POINTS_PER_OP, MAX_TEXT_CHARS, Marks, Op, OpId, OpKind, Replica, Seq, Shape, TEXT_SIZES,
    VersionVector, batches,
};
use shared::geometry::{MAX_COORD, Point, is_valid_width};
use shared::packed;
use shared::protocol::{
    AccessResponse, AddPeer, ClientConfig, Connected, ErrorBody, IceCandidate, JoinResponse,
    Relayed, RemovePeer, SessionDescription,
};
use shared::signing::{Certificate, Mark, Proof, PublicKey, Signature, canonical};
use shared::sync::{ChannelMessage, MAX_OPS_PER_MESSAGE, accept_op};
use std::collections::HashSet;

/// The largest integer a JavaScript number holds exactly, plus one.
const JS_LIMIT: u64 = 1 << 53;
const _: () = assert!(MAX_CLOCK < JS_LIMIT);

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Clocks: mostly small (so ops name each other), often at the edges.
fn clock() -> BoxedStrategy<u64> {
    prop_oneof![
        6 => 0u64..24,
        2 => prop::sample::select(vec![
            0,
            1,
            2,
            MAX_CLOCK_STEP - 1,
            MAX_CLOCK_STEP,
            MAX_CLOCK_STEP + 1,
            MAX_CLOCK_STEP + 2,
            MAX_CLOCK - 1,
            MAX_CLOCK,
            MAX_CLOCK + 1,
            JS_LIMIT - 1,
            JS_LIMIT,
            JS_LIMIT + 1,
            u64::MAX - 1,
            u64::MAX,
        ]),
        1 => (0u64..48).prop_map(|d| MAX_CLOCK_STEP + d),
        1 => any::<u64>(),
    ]
    .boxed()
}

fn float() -> BoxedStrategy<f32> {
    prop_oneof![
        4 => -64.0f32..64.0,
        2 => prop::sample::select(vec![
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            0.0,
            1.0,
            f32::MIN_POSITIVE / 2.0, // subnormal
            f32::from_bits(1),       // the smallest subnormal
            -f32::from_bits(1),
            1e38,
            -1e38,
            f32::MAX,
            f32::MIN,
            MAX_COORD,
            MAX_COORD.next_up(),
            -MAX_COORD.next_up(),
        ]),
        1 => any::<f32>(),
    ]
    .boxed()
}

fn point() -> BoxedStrategy<Point> {
    prop_oneof![
        4 => (-50.0f32..50.0, -50.0f32..50.0, 0.0f32..=1.0)
            .prop_map(|(x, y, p)| Point::new(x, y, p)),
        1 => (float(), float(), float()).prop_map(|(x, y, p)| Point::new(x, y, p)),
    ]
    .boxed()
}

/// Point lists: short ones, or exactly at and past the limits.
fn points() -> BoxedStrategy<Vec<Point>> {
    prop_oneof![
        8 => prop::collection::vec(point(), 0..4),
        1 => (point(), prop::sample::select(vec![0usize, MAX_POINTS_PER_OP, MAX_POINTS_PER_OP + 1, 20_001]))
            .prop_map(|(p, n)| vec![p; n]),
    ]
    .boxed()
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z]{1,6}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{200b}-\\u{200f}\\u{202a}-\\u{202e} a]{0,12}",
        1 => prop::sample::select(vec![
            String::new(),
            " \t\n".to_owned(),
            "\u{0}".to_owned(),
            "e\u{301}\u{1F600}\u{FFFF}".to_owned(),
            "\"\\/\u{8}".to_owned(),
            "x".repeat(MAX_TEXT_CHARS),
            "é".repeat(MAX_TEXT_CHARS + 1),
        ]),
    ]
    .boxed()
}

fn honest(i: usize) -> PeerId {
    PeerId(format!("peer-{i}"))
}

/// Hostile peers in the room. "aa-" sorts before the honest authors, "zz-" after.
fn evil(i: usize) -> PeerId {
    PeerId(if i.is_multiple_of(2) {
        format!("aa-evil-{i}")
    } else {
        format!("zz-evil-{i}")
    })
}

/// Authors who left the room: their ops come from whoever has them.
fn gone(i: usize) -> PeerId {
    PeerId(format!("gone-{i}"))
}

fn peer() -> BoxedStrategy<PeerId> {
    prop_oneof![
        4 => (0usize..3).prop_map(honest),
        3 => (0usize..4).prop_map(evil),
        2 => (0usize..3).prop_map(gone),
        1 => text().prop_map(PeerId),
    ]
    .boxed()
}

/// Version vectors: small ones, or thousands of authors (past `MAX_AUTHORS` too).
fn version_vector() -> BoxedStrategy<VersionVector> {
    prop_oneof![
        8 => prop::collection::btree_map(peer(), clock(), 0..5).prop_map(VersionVector),
        1 => (prop::sample::select(vec![2_000usize, MAX_AUTHORS, MAX_AUTHORS + 1]), clock())
            .prop_map(|(n, c)| {
                VersionVector((0..n).map(|i| (PeerId(format!("a{i}")), c)).collect())
            }),
    ]
    .boxed()
}

/// Chain marks, as an erase or a clear carries them: mostly few, now and then too many.
fn marks() -> BoxedStrategy<Marks> {
    prop_oneof![
        8 => prop::collection::btree_map(peer(), any::<[u8; 16]>().prop_map(Mark), 0..3),
        1 => (prop::sample::select(vec![MAX_AUTHORS, MAX_AUTHORS + 1]), any::<[u8; 16]>())
            .prop_map(|(n, m)| (0..n).map(|i| (PeerId(format!("a{i}")), Mark(m))).collect()),
    ]
    .boxed()
}

fn op_id() -> BoxedStrategy<OpId> {
    (peer(), clock())
        .prop_map(|(author, seq)| OpId { author, seq })
        .boxed()
}

fn shape() -> BoxedStrategy<Shape> {
    prop_oneof![
        3 => points().prop_map(|points| Shape::Stroke { points }),
        1 => (point(), point()).prop_map(|(from, to)| Shape::Line { from, to }),
        1 => (point(), point()).prop_map(|(from, to)| Shape::Rect { from, to }),
        1 => (point(), point()).prop_map(|(from, to)| Shape::Ellipse { from, to }),
        1 => (point(), text(), prop_oneof![TEXT_SIZES, float()])
            .prop_map(|(at, text, size)| Shape::Text { at, text, size }),
    ]
    .boxed()
}

fn op_kind() -> BoxedStrategy<OpKind> {
    prop_oneof![
        3 => (shape(), any::<(u8, u8, u8)>(), prop_oneof![0.5f32..64.0, float()])
            .prop_map(|(shape, (r, g, b), width)| OpKind::Add {
                shape,
                color: Color::rgb(r, g, b),
                width,
            }),
        2 => (clock(), points()).prop_map(|(element, points)| OpKind::Extend { element, points }),
        1 => clock().prop_map(|element| OpKind::Finish { element }),
        2 => prop_oneof![
            8 => prop::collection::vec(op_id(), 0..4),
            1 => (op_id(), prop::sample::select(vec![MAX_ERASE_TARGETS, MAX_ERASE_TARGETS + 1]))
                .prop_map(|(t, n)| vec![t; n]),
        ]
        .prop_flat_map(|targets| marks().prop_map(move |marks| OpKind::Erase { targets: targets.clone(), marks })),
        1 => (version_vector(), marks()).prop_map(|(seen, marks)| OpKind::Clear { seen, marks }),
        1 => clock().prop_map(|target| OpKind::Undo { target }),
        1 => clock().prop_map(|target| OpKind::Redo { target }),
    ]
    .boxed()
}

fn op() -> BoxedStrategy<Op> {
    (peer(), clock(), clock(), op_kind())
        .prop_map(|(author, seq, lamport, op)| Op {
            author,
            seq,
            lamport,
            op,
        })
        .boxed()
}

/// 32 or 64 arbitrary bytes: keys and signatures that mostly do not check.
fn key() -> BoxedStrategy<PublicKey> {
    prop::array::uniform32(any::<u8>())
        .prop_map(PublicKey)
        .boxed()
}

fn signature() -> BoxedStrategy<Signature> {
    (
        prop::array::uniform32(any::<u8>()),
        prop::array::uniform32(any::<u8>()),
    )
        .prop_map(|(a, b)| {
            let mut sig = [0; 64];
            sig[..32].copy_from_slice(&a);
            sig[32..].copy_from_slice(&b);
            Signature(sig)
        })
        .boxed()
}

fn certificate() -> BoxedStrategy<Certificate> {
    (peer(), key(), signature())
        .prop_map(|(peer, key, sig)| Certificate { peer, key, sig })
        .boxed()
}

fn proof() -> BoxedStrategy<Proof> {
    (peer(), clock(), signature())
        .prop_map(|(author, seq, sig)| Proof { author, seq, sig })
        .boxed()
}

fn message() -> BoxedStrategy<ChannelMessage> {
    prop_oneof![
        1 => (version_vector(), prop::option::of(certificate()))
            .prop_map(|(have, cert)| ChannelMessage::Hello { have, cert, packed: false }),
        4 => prop_oneof![
            8 => prop::collection::vec(op(), 0..6),
            // Many small ops (many huge ones would be gigabytes, far past any channel's limit).
            1 => (
                (peer(), clock(), clock(), clock()),
                prop::sample::select(vec![MAX_OPS_PER_MESSAGE, MAX_OPS_PER_MESSAGE + 1]),
            )
                .prop_map(|((author, seq, lamport, element), n)| {
                    vec![Op { author, seq, lamport, op: OpKind::Finish { element } }; n]
                }),
        ]
        .prop_flat_map(|ops| {
            let n = ops.len().min(3);
            (
                Just(ops),
                prop::collection::vec(proof(), 0..=n),
                prop::collection::vec(certificate(), 0..=n),
            )
        })
        .prop_map(|(ops, proofs, certs)| ChannelMessage::Ops { ops, proofs, certs }),
        1 => (prop::option::of((float(), float())), any::<(u8, u8, u8)>())
            .prop_map(|(at, (r, g, b))| ChannelMessage::Cursor { at, color: Color::rgb(r, g, b) }),
        1 => Just(ChannelMessage::Ping),
    ]
    .boxed()
}

/// An op from hostile sender `evil(i)`: mostly in its own name (which the receivers take from
/// it), with seqs that fit and Lamport times near the step limit, so many get through.
fn hostile_op() -> BoxedStrategy<(Op, usize)> {
    let plain = (
        op(),
        0usize..4,
        prop::bool::weighted(0.75),
        prop_oneof![2 => 1u64..4, 1 => clock()],
        prop_oneof![2 => 1u64..40, 2 => (0u64..8).prop_map(|d| MAX_CLOCK_STEP + d), 1 => clock()],
    )
        .prop_map(|(mut op, i, own, seq, lamport)| {
            if own {
                op.author = evil(i);
            }
            op.seq = seq;
            op.lamport = lamport;
            (op, i)
        })
        .boxed();
    let eraser =
            // An erase of honest work, stamped before (or at) the work it names: it must hide
            // nothing, on every replica, whenever it arrives.
            (
                0usize..4,
                prop::collection::vec((0usize..3, 1u64..12), 1..4),
                1u64..8,
            )
                .prop_map(|(i, targets, lamport)| {
                    let targets = targets
                        .into_iter()
                        .map(|(a, seq)| OpId {
                            author: honest(a),
                            seq,
                        })
                        .collect();
                    let op = OpKind::erase(targets);
                    (
                        Op {
                            author: evil(i),
                            seq: 1,
                            lamport,
                            op,
                        },
                        i,
                    )
                })
                .boxed();
    prop_oneof![3 => plain, 1 => eraser].boxed()
}

/// Text for the SSE and HTTP decoders: valid shapes with hostile strings and room ids.
fn server_json() -> BoxedStrategy<String> {
    let user = || {
        (text(), text())
            .prop_map(|(id, username)| serde_json::json!({"id": id, "username": username}))
    };
    let room = || prop_oneof!["[A-Za-z0-9_-]{1,64}", text()];
    prop_oneof![
        (user(), room(), any::<bool>()).prop_map(|(u, r, o)| serde_json::json!({"peer": u, "roomId": r, "offer": o}).to_string()),
        (user(), room()).prop_map(|(u, r)| serde_json::json!({"peer": u, "roomId": r}).to_string()),
        user().prop_map(|u| serde_json::json!({"user": u}).to_string()),
        (user(), text(), text()).prop_map(|(u, t, s)| serde_json::json!({"peer": u, "data": {"type": t, "sdp": s}}).to_string()),
        (user(), text(), any::<Option<u32>>()).prop_map(|(u, c, i)| serde_json::json!({"peer": u, "data": {"candidate": c, "sdpMid": "0", "sdpMLineIndex": i}}).to_string()),
        (user(), text()).prop_map(|(u, t)| serde_json::json!({"token": t, "user": u}).to_string()),
        prop::collection::vec((prop::collection::vec(text(), 0..3), prop::option::of(text())), 0..3)
            .prop_map(|s| serde_json::json!({"iceServers": s.into_iter().map(|(urls, u)| serde_json::json!({"urls": urls, "username": u})).collect::<Vec<_>>()}).to_string()),
    ]
    .boxed()
}

/// Ways to damage a valid message.
#[derive(Clone, Debug)]
enum Mutation {
    Truncate(prop::sample::Index),
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    /// Wraps the text in this many arrays (or objects).
    Nest(usize, bool),
    /// Replaces a number-looking run with a hostile number.
    Number(prop::sample::Index, String),
}

fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>()).prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..8)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (
            prop::sample::select(vec![1usize, 127, 128, 129, 10_000]),
            any::<bool>()
        )
            .prop_map(|(n, o)| Mutation::Nest(n, o)),
        (
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "-1",
                "1e999",
                "-0",
                "18446744073709551616",
                "9007199254740993",
                "NaN",
                "1.5",
                "0.0000000000000000000000000000000000000000000001",
                "null",
                "\"7\"",
            ])
            .prop_map(str::to_owned),
        )
            .prop_map(|(i, n)| Mutation::Number(i, n)),
    ]
    .boxed()
}

fn mutate(text: &str, m: &Mutation) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    match m {
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
        Mutation::Flip(i, b) => {
            if !bytes.is_empty() {
                let i = i.index(bytes.len());
                bytes[i] ^= b;
            }
        }
        Mutation::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::Nest(n, object) => {
            let (open, close) = if *object {
                ("{\"ops\":", "}")
            } else {
                ("[", "]")
            };
            bytes = [
                open.repeat(*n).as_bytes(),
                &bytes,
                close.repeat(*n).as_bytes(),
            ]
            .concat();
        }
        Mutation::Number(i, n) => {
            // The digits run that contains (or follows) the chosen byte.
            let start = i.index(bytes.len() + 1);
            if let Some(from) = (start..bytes.len()).find(|&j| bytes[j].is_ascii_digit()) {
                let to = (from..bytes.len())
                    .find(|&j| !bytes[j].is_ascii_digit())
                    .unwrap_or(bytes.len());
                bytes.splice(from..to, n.bytes());
            }
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------
// Oracles
// ---------------------------------------------------------------------------------------------

/// What `Op::validate` promises, restated from the constants (not from its code).
fn within_bounds(op: &Op) -> bool {
    let clock_ok = |c: u64| (1..=MAX_CLOCK).contains(&c);
    let points_ok =
        |p: &[Point]| !p.is_empty() && p.len() <= MAX_POINTS_PER_OP && p.iter().all(point_ok);
    clock_ok(op.seq)
        && clock_ok(op.lamport)
        && match &op.op {
            OpKind::Add { shape, width, .. } => {
                is_valid_width(*width)
                    && match shape {
                        Shape::Stroke { points } => points_ok(points),
                        Shape::Line { from, to }
                        | Shape::Rect { from, to }
                        | Shape::Ellipse { from, to } => point_ok(from) && point_ok(to),
                        Shape::Text { at, text, size } => {
                            point_ok(at)
                                && !text.trim().is_empty()
                                && text.chars().count() <= MAX_TEXT_CHARS
                                && TEXT_SIZES.contains(size)
                        }
                    }
            }
            OpKind::Extend { element, points } => *element < op.seq && points_ok(points),
            OpKind::Finish { element: t }
            | OpKind::Undo { target: t }
            | OpKind::Redo { target: t } => (1..op.seq).contains(t),
            OpKind::Erase { targets, marks } => {
                targets.len() <= MAX_ERASE_TARGETS
                    && marks.len() <= MAX_AUTHORS
                    && targets.iter().all(|t| clock_ok(t.seq))
                    && !targets
                        .iter()
                        .any(|t| t.author == op.author && t.seq >= op.seq)
            }
            OpKind::Clear { seen, marks } => {
                seen.0.len() <= MAX_AUTHORS
                    && marks.len() <= MAX_AUTHORS
                    && seen.0.values().all(|n| *n <= MAX_CLOCK)
                    && seen.get(&op.author) < op.seq
            }
        }
}

fn point_ok(p: &Point) -> bool {
    p.x.is_finite()
        && p.y.is_finite()
        && p.x.abs() <= MAX_COORD
        && p.y.abs() <= MAX_COORD
        && (0.0..=1.0).contains(&p.pressure)
}

/// Feeds text to every decoder the client runs on peer or server data. Must return.
fn decode_everything(text: &str) {
    if let Ok(m) = serde_json::from_str::<ChannelMessage>(text)
        && ChannelMessage::check_size(text.len()).is_ok()
        && m.validate().is_ok()
    {
        message_is_bounded(&m);
    }
    let _ = serde_json::from_str::<Connected>(text);
    let _ = serde_json::from_str::<AddPeer>(text);
    let _ = serde_json::from_str::<RemovePeer>(text);
    let _ = serde_json::from_str::<Relayed<SessionDescription>>(text);
    let _ = serde_json::from_str::<Relayed<IceCandidate>>(text);
    let _ = serde_json::from_str::<ClientConfig>(text);
    let _ = serde_json::from_str::<AccessResponse>(text);
    let _ = serde_json::from_str::<ErrorBody>(text);
    let _ = serde_json::from_str::<JoinResponse>(text);
    // Stored records (IndexedDB) are op lists, validated one by one.
    if let Ok(ops) = serde_json::from_str::<Vec<Op>>(text) {
        for op in ops {
            if op.validate().is_ok() {
                assert!(within_bounds(&op), "validated but out of bounds: {op:?}");
            }
        }
    }
}

/// A message that passed `validate` is within every bound, and survives a round trip (a
/// replica forwards what it integrated).
fn message_is_bounded(m: &ChannelMessage) {
    match m {
        ChannelMessage::Hello { have, .. } => assert!(have.0.len() <= MAX_AUTHORS),
        ChannelMessage::Ops { ops, proofs, certs } => {
            assert!(ops.len() <= MAX_OPS_PER_MESSAGE);
            assert!(proofs.len() <= ops.len() && certs.len() <= ops.len());
            for op in ops {
                assert!(within_bounds(op), "validated but out of bounds: {op:?}");
                assert!(op.seq < JS_LIMIT && op.lamport < JS_LIMIT);
            }
        }
        ChannelMessage::Cursor { at, .. } => {
            if let Some((x, y)) = at {
                assert!(point_ok(&Point::new(*x, *y, 0.5)));
            }
        }
        ChannelMessage::Ping => {}
    }
    let text = serde_json::to_string(m).expect("a valid message encodes");
    let back: ChannelMessage = serde_json::from_str(&text).expect("and decodes");
    assert_eq!(&back, m);
}

/// The largest Lamport time the document holds (it stamps its next op one above).
/// The replica's clock: the highest Lamport time it has seen, integrated or waiting.
fn lamport(doc: &Document) -> u64 {
    doc.lamport()
}

/// Every clock the document exposes is at most `MAX_CLOCK`, far below 2^53.
fn clocks_bounded(doc: &Document) -> Result<(), TestCaseError> {
    for (author, n) in &doc.version_vector().0 {
        // MAX_CLOCK is below 2^53: every clock checked here is exact in JavaScript.
        prop_assert!(*n <= MAX_CLOCK, "{author}: {n}");
        prop_assert!(doc.next_seq(author) <= MAX_CLOCK + 1);
    }
    prop_assert!(lamport(doc) <= MAX_CLOCK);
    for e in doc.visible() {
        prop_assert!(e.lamport <= MAX_CLOCK && e.id.seq <= MAX_CLOCK);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Honest histories
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Action {
    Stroke(u8),
    Extend,
    Finish,
    Shape(u8),
    Erase(usize),
    Clear,
    Undo,
    Redo,
    /// The actor receives everything replica `from` has.
    Sync(usize),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => (1u8..4).prop_map(Action::Stroke),
        2 => Just(Action::Extend),
        2 => Just(Action::Finish),
        2 => (0u8..4).prop_map(Action::Shape),
        2 => any::<usize>().prop_map(Action::Erase),
        1 => Just(Action::Clear),
        2 => Just(Action::Undo),
        1 => Just(Action::Redo),
        3 => (0usize..3).prop_map(Action::Sync),
    ]
}

fn script() -> impl Strategy<Value = Vec<(usize, Action)>> {
    prop::collection::vec((0usize..3, action()), 0..40)
}

fn pt(x: f32, y: f32) -> Point {
    Point::new(x, y, 0.5)
}

/// Three honest authors working concurrently, each on its own replica; every op they made.
fn honest_log(script: &[(usize, Action)]) -> Vec<Op> {
    let mut replicas: Vec<Replica> = (0..3).map(|i| Replica::new(honest(i))).collect();
    let mut open: Vec<Option<Seq>> = vec![None; 3];
    let mut all = Vec::new();
    for (n, (who, act)) in script.iter().enumerate() {
        let (who, f) = (*who, n as f32);
        let r = &mut replicas[who];
        let made = match act {
            Action::Stroke(k) => {
                let points = (0..*k).map(|i| pt(f + f32::from(i), f)).collect();
                let kind = OpKind::Add {
                    shape: Shape::Stroke { points },
                    color: Color::rgb(1, 2, 3),
                    width: 2.0,
                };
                let (op, _) = r.perform(kind);
                open[who] = Some(op.seq);
                Some(op)
            }
            Action::Extend => open[who].map(|element| {
                let points = vec![pt(f, f)];
                r.doc
                    .make(&r.me.clone(), OpKind::Extend { element, points })
                    .0
            }),
            Action::Finish => open[who]
                .take()
                .map(|element| r.doc.make(&r.me.clone(), OpKind::Finish { element }).0),
            Action::Shape(k) => {
                let (from, to) = (pt(f, 0.0), pt(f + 5.0, 9.0));
                let shape = match k {
                    0 => Shape::Line { from, to },
                    1 => Shape::Rect { from, to },
                    2 => Shape::Ellipse { from, to },
                    _ => Shape::Text {
                        at: from,
                        text: format!("t{n} é\u{1F600}"),
                        size: 16.0,
                    },
                };
                let kind = OpKind::Add {
                    shape,
                    color: Color::rgb(9, 9, 9),
                    width: 3.0,
                };
                Some(r.perform(kind).0)
            }
            Action::Erase(i) => {
                let ids: Vec<OpId> = r.doc.visible().map(|e| e.id.clone()).collect();
                (!ids.is_empty()).then(|| {
                    let targets = vec![ids[i % ids.len()].clone()];
                    r.perform(OpKind::erase(targets)).0
                })
            }
            Action::Clear => Some(r.clear().0),
            Action::Undo => r.undo().map(|(op, _)| op),
            Action::Redo => r.redo().map(|(op, _)| op),
            Action::Sync(from) => {
                let theirs: Vec<Op> = replicas[*from].doc.ops().cloned().collect();
                for op in theirs {
                    replicas[who].doc.apply(op);
                }
                None
            }
        };
        all.extend(made);
    }
    all
}

/// A tiny deterministic generator for delivery orders (proptest picks and shrinks the seed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Who is in the room: the honest authors and the hostile senders (not the departed).
fn in_room(p: &PeerId) -> bool {
    (0..3).any(|i| *p == honest(i)) || (0..4).any(|i| *p == evil(i))
}

/// After the live phase everybody but the receivers has left: their ops come from anyone.
fn receivers_only(p: &PeerId) -> bool {
    p.0.starts_with("receiver-")
}

/// One delivery: `op` handed to replica `me` by `sender`, as the client does it (validate,
/// `accept_op` with who is in the room, `apply_from`). Returns the ops integrated.
fn deliver(
    doc: &mut Document,
    me: &PeerId,
    sender: &PeerId,
    op: Op,
    room: fn(&PeerId) -> bool,
) -> usize {
    if op.validate().is_err() || !accept_op(me, sender, &op.author, room) {
        return 0;
    }
    doc.apply_from(op, Some(sender))
        .map_or(0, |changes| changes.integrated)
}

/// The state two replicas must agree on: what is drawn, in what order, and what they have.
fn state(doc: &Document) -> (Vec<Element>, VersionVector) {
    (doc.visible().cloned().collect(), doc.version_vector())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Arbitrary text, valid or not: every decoder returns.
    #[test]
    fn decoders_never_panic_on_arbitrary_text(text in prop_oneof![
        any::<String>(),
        "[\\[\\]{}\":,0-9a-z.eE+-]{0,64}",
        server_json(),
    ]) {
        decode_everything(&text);
    }

    /// Valid messages, damaged: every decoder returns, and what still validates is bounded.
    #[test]
    fn decoders_never_panic_on_damaged_messages(
        m in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let text = serde_json::to_string(&m).unwrap();
        decode_everything(&text);
        let mut bytes = text.into_bytes();
        for mutation in &mutations {
            let damaged = mutate(&String::from_utf8_lossy(&bytes), mutation);
            bytes = damaged;
        }
        let _ = serde_json::from_slice::<ChannelMessage>(&bytes);
        decode_everything(&String::from_utf8_lossy(&bytes));
    }

    /// An `ops` message comes back from its packed form exactly: every op's canonical bytes
    /// (the ones hashed into its author's chain: floats bit for bit), the proofs, the
    /// certificates.
    #[test]
    fn packed_ops_messages_come_back_bit_for_bit(m in message()) {
        let ChannelMessage::Ops { ops, proofs, certs } = &m else {
            return Ok(());
        };
        let back = packed::decode(&packed::encode(ops, proofs, certs));
        let Ok(ChannelMessage::Ops { ops: back_ops, proofs: back_proofs, certs: back_certs }) = back
        else {
            return Err(TestCaseError::fail(format!("does not decode: {back:?}")));
        };
        let bytes = |ops: &[Op]| -> Vec<Vec<u8>> {
            ops.iter()
                .map(|op| {
                    let mut out = Vec::new();
                    canonical(op, &mut out);
                    out
                })
                .collect()
        };
        prop_assert_eq!(bytes(&back_ops), bytes(ops));
        prop_assert_eq!(&back_proofs, proofs);
        prop_assert_eq!(&back_certs, certs);
    }

    /// Packed messages damaged, and arbitrary bytes: decoding returns, and what still decodes
    /// and validates is bounded.
    #[test]
    fn packed_decoding_never_panics(
        m in message(),
        mutations in prop::collection::vec(mutation(), 1..4),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = match &m {
            ChannelMessage::Ops { ops, proofs, certs } => packed::encode(ops, proofs, certs),
            _ => [&[packed::FORMAT][..], &noise].concat(),
        };
        for mutation in &mutations {
            match mutation {
                Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
                Mutation::Flip(i, b) if !bytes.is_empty() => {
                    let i = i.index(bytes.len());
                    bytes[i] ^= b;
                }
                Mutation::Insert(i, b) => {
                    let i = i.index(bytes.len() + 1);
                    bytes.splice(i..i, b.iter().copied());
                }
                _ => {}
            }
        }
        for input in [&bytes, &noise] {
            if let Ok(m) = packed::decode(input)
                && m.validate().is_ok()
            {
                message_is_bounded(&m);
            }
        }
    }

    /// Damaged server events decode or fail, never panic.
    #[test]
    fn server_events_never_panic_when_damaged(
        text in server_json(),
        mutations in prop::collection::vec(mutation(), 1..3),
    ) {
        let mut bytes = text.into_bytes();
        for mutation in &mutations {
            bytes = mutate(&String::from_utf8_lossy(&bytes), mutation);
        }
        decode_everything(&String::from_utf8_lossy(&bytes));
    }

    /// `validate` lets through only what the bounds allow, whatever the values.
    #[test]
    fn validation_keeps_every_op_within_bounds(op in op()) {
        prop_assert_eq!(op.validate().is_ok(), within_bounds(&op), "{:?}", op);
        let m = ChannelMessage::Ops { ops: vec![op.clone()], proofs: vec![], certs: vec![] };
        prop_assert_eq!(m.validate().is_ok(), within_bounds(&op));
    }

    /// A document fed arbitrary ops, validated or not, from anyone: no panic, and its clocks
    /// stay at or below `MAX_CLOCK`, each op moving the Lamport time by at most the step.
    #[test]
    fn documents_survive_arbitrary_ops(
        script in script(),
        hostile in prop::collection::vec((op(), peer(), 0u8..3), 0..40),
    ) {
        let mut doc = Document::new();
        for op in honest_log(&script) {
            doc.apply(op);
        }
        clocks_bounded(&doc)?;
        for (op, sender, how) in hostile {
            let before = lamport(&doc);
            let count = doc.op_count();
            let integrated = match how {
                0 => doc.apply(op).integrated,
                1 => doc.apply_from(op, Some(&sender)).map_or(0, |c| c.integrated),
                _ => {
                    if op.validate().is_ok() {
                        doc.apply_from(op, Some(&sender)).map_or(0, |c| c.integrated)
                    } else {
                        0
                    }
                }
            };
            prop_assert_eq!(doc.op_count(), count + integrated);
            clocks_bounded(&doc)?;
            prop_assert!(
                lamport(&doc) <= before + MAX_CLOCK_STEP,
                "the Lamport time jumped from {} to {}", before, lamport(&doc)
            );
        }
        // The next op this replica stamps is still an exact JavaScript number.
        let (next, _) = doc.clone().make(&honest(0), OpKind::Finish { element: 1 });
        prop_assert!(next.lamport < JS_LIMIT && next.seq < JS_LIMIT);
        // A sync from nothing holds every integrated op (and the ops waiting after them).
        let all: HashSet<OpId> = doc
            .missing_from(&VersionVector::default())
            .into_iter()
            .map(Op::id)
            .collect();
        prop_assert!(doc.ops().all(|op| all.contains(&op.id())));
    }

    /// Honest replicas that receive the same honest ops in different orders, duplicated, among
    /// hostile ops from hostile senders (validated and filtered as the client does), show the
    /// same drawing once they have synced with each other.
    #[test]
    fn honest_replicas_converge_among_hostile_peers(
        script in script(),
        hostile in prop::collection::vec(hostile_op(), 0..24),
        seed in 1u64..,
    ) {
        let log = honest_log(&script);
        // One op per id: a peer that sends two different ops under one id to two replicas
        // (equivocation) is out of scope here.
        let mut ids: HashSet<OpId> = log.iter().map(Op::id).collect();
        let hostile: Vec<(Op, PeerId)> = hostile
            .into_iter()
            .filter(|(op, _)| ids.insert(op.id()))
            .map(|(op, i)| (op, evil(i)))
            .collect();
        let mut rng = Rng(seed);
        let mut replicas: Vec<(PeerId, Document)> = Vec::new();
        for r in 0..3 {
            let me = PeerId(format!("receiver-{r}"));
            let mut delivery: Vec<(Op, PeerId)> =
                log.iter().map(|op| (op.clone(), op.author.clone())).collect();
            for _ in 0..log.len() / 3 {
                let op = log[rng.below(log.len())].clone();
                let sender = op.author.clone();
                delivery.push((op, sender));
            }
            delivery.extend(hostile.iter().cloned());
            rng.shuffle(&mut delivery);
            let mut doc = Document::new();
            for (op, sender) in delivery {
                deliver(&mut doc, &me, &sender, op, in_room);
            }
            replicas.push((me, doc));
        }
        // The others leave; the receivers sync, each pair swapping what the other lacks, until
        // nothing moves.
        for _ in 0..32 {
            let mut moved = 0;
            for (from, to) in [(0, 1), (1, 0), (1, 2), (2, 1), (0, 2), (2, 0)] {
                let theirs = replicas[to].1.version_vector();
                let sent: Vec<Op> =
                    replicas[from].1.missing_from(&theirs).into_iter().cloned().collect();
                let sender = replicas[from].0.clone();
                let (me, doc) = &mut replicas[to];
                for op in sent {
                    moved += deliver(doc, me, &sender, op, receivers_only);
                }
            }
            if moved == 0 {
                break;
            }
        }
        let reference = state(&replicas[0].1);
        // Every honest op is in.
        for i in 0..3 {
            let made = log.iter().filter(|op| op.author == honest(i)).count() as u64;
            prop_assert_eq!(reference.1.get(&honest(i)), made);
        }
        for (_, doc) in &replicas[1..] {
            prop_assert_eq!(&state(doc), &reference);
        }
    }

    /// A replica that syncs once from another (one hello, one answer in batches) has everything
    /// the other has, whatever hostile ops the other had accepted: a late joiner sees the whole
    /// drawing, and can take the next live op.
    #[test]
    fn one_sync_brings_everything(
        script in script(),
        hostile in prop::collection::vec(hostile_op(), 0..24),
        seed in 1u64..,
    ) {
        let log = honest_log(&script);
        let source_id = PeerId("source".into());
        let mut ids: HashSet<OpId> = log.iter().map(Op::id).collect();
        // Honest ops keep their order (each author's in seq order, as a live peer sends them);
        // hostile ones land anywhere among them.
        let mut rng = Rng(seed);
        let mut delivery: Vec<(usize, Op, PeerId)> = hostile
            .into_iter()
            .filter(|(op, _)| ids.insert(op.id()))
            .map(|(op, i)| (rng.below(log.len() + 1), op, evil(i)))
            .collect();
        delivery.extend(log.into_iter().enumerate().map(|(n, op)| {
            let author = op.author.clone();
            (n, op, author)
        }));
        delivery.sort_by_key(|(at, _, sender)| (*at, in_room(sender) && sender.0.starts_with("peer-")));
        let mut source = Document::new();
        for (_, op, sender) in delivery {
            deliver(&mut source, &source_id, &sender, op, in_room);
        }
        let joiner_id = PeerId("joiner".into());
        let mut joiner = Document::new();
        let sent = source.missing_from(&joiner.version_vector());
        for batch in batches(&sent, 4_096) {
            for op in batch {
                deliver(&mut joiner, &joiner_id, &source_id, op.clone(), |p| p.0 == "source");
            }
        }
        prop_assert_eq!(state(&joiner), state(&source));
    }
}

fn dot(x: f32) -> OpKind {
    OpKind::Add {
        shape: Shape::Stroke {
            points: vec![pt(x, x)],
        },
        color: Color::rgb(0, 0, 0),
        width: 2.0,
    }
}

/// Found by `one_sync_brings_everything`: a hostile peer whose name sorts before an honest
/// author's sends one op exactly `MAX_CLOCK_STEP` ahead; an honest replica takes it, and its
/// next op is stamped above it. A late joiner used to be sent the hostile op first (sync went
/// author by author) and refuse it, then refuse the honest op as too far ahead: that author's
/// later ops waited for it for ever, on every sync (the order never changed), and a reload from
/// storage (the same order) lost them too.
#[test]
fn a_late_joiner_takes_honest_ops_stamped_after_a_hostile_clock_jump() {
    let (honest_id, evil_id) = (honest(1), evil(0));
    assert!(evil_id < honest_id, "the hostile name sorts first");
    let mut a = Replica::new(honest_id.clone());
    a.perform(dot(1.0));
    let jump = Op {
        author: evil_id.clone(),
        seq: 1,
        lamport: 1 + MAX_CLOCK_STEP,
        op: dot(2.0),
    };
    assert_eq!(
        deliver(&mut a.doc, &a.me.clone(), &evil_id, jump, in_room),
        1
    );
    let (after, _) = a.perform(dot(3.0));
    assert_eq!(after.lamport, 2 + MAX_CLOCK_STEP);
    // One sync from the honest replica.
    let joiner_id = PeerId("receiver-0".into());
    let mut joiner = Document::new();
    for op in a.doc.missing_from(&joiner.version_vector()) {
        deliver(
            &mut joiner,
            &joiner_id,
            &honest_id,
            op.clone(),
            receivers_only,
        );
    }
    assert_eq!(state(&joiner), state(&a.doc));
    // A reload from storage: the saved ops applied in the order they were saved.
    let mut reloaded = Document::new();
    for op in a.doc.missing_from(&VersionVector::default()) {
        reloaded.apply(op.clone());
    }
    assert_eq!(state(&reloaded), state(&a.doc));
    // And the joiner takes the author's next live op.
    let (next, _) = a.perform(dot(4.0));
    assert_eq!(
        deliver(&mut joiner, &joiner_id, &honest_id, next, receivers_only),
        1
    );
}
