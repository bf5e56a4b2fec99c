//! Bytes → a script of honest actions (three authors on their own replicas) and hostile ops built
//! by hand; the honest log and the hostile ops are delivered to two replicas in two orders, as
//! the client delivers them (validate, `accept_op`, `apply_from`); the replicas then sync with
//! each other. No panic, every clock at or below `MAX_CLOCK`, and the two end with the same
//! drawing. The same hostile ops, unvalidated, go to a third document too (no panic, bounded
//! clocks).
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use shared::PeerId;
use shared::color::Color;
use shared::document::{
    Document, MAX_CLOCK, MAX_CLOCK_STEP, Op, OpId, OpKind, Replica, Seq, Shape, VersionVector,
};
use shared::geometry::Point;
use shared::sync::accept_op;
use std::collections::HashSet;

const AUTHORS: [&str; 7] = [
    "peer-0", "peer-1", "peer-2", "aa-evil", "zz-evil", "gone-0", "\u{0}\u{202e}",
];
const HOSTILE_SENDERS: [&str; 2] = ["aa-evil", "zz-evil"];

fn peer(u: &mut Unstructured) -> Result<PeerId> {
    Ok(PeerId((*u.choose(&AUTHORS)?).to_owned()))
}

fn clock(u: &mut Unstructured) -> Result<u64> {
    Ok(match u.int_in_range(0..=7u8)? {
        0..=4 => u.int_in_range(0..=24)?,
        5 => MAX_CLOCK_STEP + u.int_in_range(0..=8)?,
        6 => *u.choose(&[
            MAX_CLOCK - 1,
            MAX_CLOCK,
            MAX_CLOCK + 1,
            (1 << 53) - 1,
            1 << 53,
            u64::MAX,
        ])?,
        _ => u.arbitrary()?,
    })
}

fn float(u: &mut Unstructured) -> Result<f32> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 | 1 => f32::from(u.arbitrary::<i8>()?),
        2 => *u.choose(&[
            f32::NAN,
            f32::INFINITY,
            -0.0,
            f32::from_bits(1),
            1e38,
            1_000_000.0,
            1_000_000.1,
        ])?,
        _ => u.arbitrary()?,
    })
}

fn point(u: &mut Unstructured) -> Result<Point> {
    if u.ratio(3, 4)? {
        Ok(Point::new(
            f32::from(u.arbitrary::<i8>()?),
            f32::from(u.arbitrary::<i8>()?),
            0.5,
        ))
    } else {
        Ok(Point::new(float(u)?, float(u)?, float(u)?))
    }
}

fn points(u: &mut Unstructured) -> Result<Vec<Point>> {
    let n = u.int_in_range(0..=4)?;
    (0..n).map(|_| point(u)).collect()
}

fn op_kind(u: &mut Unstructured) -> Result<OpKind> {
    Ok(match u.int_in_range(0..=7u8)? {
        0 | 1 => {
            let shape = match u.int_in_range(0..=4u8)? {
                0 => Shape::Stroke { points: points(u)? },
                1 => Shape::Line {
                    from: point(u)?,
                    to: point(u)?,
                },
                2 => Shape::Rect {
                    from: point(u)?,
                    to: point(u)?,
                },
                3 => Shape::Ellipse {
                    from: point(u)?,
                    to: point(u)?,
                },
                _ => Shape::Text {
                    at: point(u)?,
                    text: u.arbitrary()?,
                    size: if u.arbitrary()? { 16.0 } else { float(u)? },
                },
            };
            let (r, g, b) = u.arbitrary()?;
            OpKind::Add {
                shape,
                color: Color::rgb(r, g, b),
                width: if u.arbitrary()? { 2.0 } else { float(u)? },
            }
        }
        2 => OpKind::Extend {
            element: clock(u)?,
            points: points(u)?,
        },
        3 => OpKind::Finish {
            element: clock(u)?,
        },
        4 => {
            let n = u.int_in_range(0..=3)?;
            let targets = (0..n)
                .map(|_| {
                    Ok(OpId {
                        author: peer(u)?,
                        seq: clock(u)?,
                    })
                })
                .collect::<Result<_>>()?;
            OpKind::erase(targets)
        }
        5 => {
            let n = u.int_in_range(0..=3)?;
            let seen = (0..n)
                .map(|_| Ok((peer(u)?, clock(u)?)))
                .collect::<Result<_>>()?;
            OpKind::clear(VersionVector(seen))
        }
        6 => OpKind::Undo { target: clock(u)? },
        _ => OpKind::Redo { target: clock(u)? },
    })
}

/// A hostile op and its sender.
fn hostile(u: &mut Unstructured) -> Result<(Op, PeerId)> {
    let sender = PeerId((*u.choose(&HOSTILE_SENDERS)?).to_owned());
    let author = if u.ratio(3, 4)? {
        sender.clone()
    } else {
        peer(u)?
    };
    let op = Op {
        author,
        seq: clock(u)?,
        lamport: clock(u)?,
        op: op_kind(u)?,
    };
    Ok((op, sender))
}

fn pt(x: f32) -> Point {
    Point::new(x, x, 0.5)
}

/// Three honest authors working concurrently; every op they made.
fn honest_log(u: &mut Unstructured) -> Result<Vec<Op>> {
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| Replica::new(PeerId(format!("peer-{i}"))))
        .collect();
    let mut open: Vec<Option<Seq>> = vec![None; 3];
    let mut log = Vec::new();
    let steps = u.int_in_range(0..=24)?;
    for n in 0..steps {
        let who = u.int_in_range(0..=2usize)?;
        let f = n as f32;
        let r = &mut replicas[who];
        let me = r.me.clone();
        let made = match u.int_in_range(0..=8u8)? {
            0 | 1 => {
                let kind = OpKind::Add {
                    shape: Shape::Stroke {
                        points: vec![pt(f)],
                    },
                    color: Color::rgb(1, 2, 3),
                    width: 2.0,
                };
                let (op, _) = r.perform(kind);
                open[who] = Some(op.seq);
                Some(op)
            }
            2 => open[who].map(|element| {
                let points = vec![pt(f + 0.5)];
                r.doc.make(&me, OpKind::Extend { element, points }).0
            }),
            3 => open[who]
                .take()
                .map(|element| r.doc.make(&me, OpKind::Finish { element }).0),
            4 => {
                let ids: Vec<OpId> = r.doc.visible().map(|e| e.id.clone()).collect();
                if ids.is_empty() {
                    None
                } else {
                    let target = ids[u.choose_index(ids.len())?].clone();
                    Some(
                        r.perform(OpKind::erase(vec![target])).0,
                    )
                }
            }
            5 => Some(r.clear().0),
            6 => r.undo().map(|(op, _)| op),
            7 => r.redo().map(|(op, _)| op),
            _ => {
                let from = u.int_in_range(0..=2usize)?;
                let theirs: Vec<Op> = replicas[from].doc.ops().cloned().collect();
                for op in theirs {
                    replicas[who].doc.apply(op);
                }
                None
            }
        };
        log.extend(made);
    }
    Ok(log)
}

fn in_room(p: &PeerId) -> bool {
    p.0.starts_with("peer-") || HOSTILE_SENDERS.contains(&p.0.as_str())
}

fn receivers_only(p: &PeerId) -> bool {
    p.0.starts_with("receiver-")
}

fn deliver(doc: &mut Document, me: &PeerId, sender: &PeerId, op: Op, room: fn(&PeerId) -> bool) {
    if op.validate().is_ok() && accept_op(me, sender, &op.author, room) {
        let _ = doc.apply_from(op, Some(sender));
    }
}

fn check_clocks(doc: &Document) {
    for n in doc.version_vector().0.values() {
        assert!(*n <= MAX_CLOCK);
    }
    assert!(doc.ops().all(|op| op.lamport <= MAX_CLOCK && op.seq <= MAX_CLOCK));
}

fn run(u: &mut Unstructured) -> Result<()> {
    let log = honest_log(u)?;
    let mut ids: HashSet<OpId> = log.iter().map(Op::id).collect();
    let count = u.int_in_range(0..=16)?;
    let mut hostile_ops = Vec::new();
    for _ in 0..count {
        let (op, sender) = hostile(u)?;
        // One op per id (equivocation is out of scope).
        if ids.insert(op.id()) {
            hostile_ops.push((op, sender));
        }
    }
    // Unvalidated, with and without a sender: no panic, clocks bounded.
    let mut raw = Document::new();
    for op in &log {
        raw.apply(op.clone());
    }
    for (op, sender) in &hostile_ops {
        let before = raw.lamport();
        if u.arbitrary()? {
            raw.apply(op.clone());
        } else {
            let _ = raw.apply_from(op.clone(), Some(sender));
        }
        check_clocks(&raw);
        let after = raw.lamport();
        assert!(after <= before + MAX_CLOCK_STEP);
    }
    // Two replicas, two orders: honest ops interleaved with hostile ones at chosen places;
    // the second replica gets everything reversed (each author's honest ops then park).
    let mut delivery: Vec<(Op, PeerId)> = log
        .iter()
        .map(|op| (op.clone(), op.author.clone()))
        .collect();
    for (op, sender) in hostile_ops {
        let at = u.choose_index(delivery.len() + 1).unwrap_or(0);
        delivery.insert(at, (op, sender));
    }
    let mut replicas = [
        (PeerId("receiver-0".into()), Document::new()),
        (PeerId("receiver-1".into()), Document::new()),
    ];
    for (op, sender) in delivery.iter().cloned() {
        let (me, doc) = &mut replicas[0];
        deliver(doc, me, &sender, op, in_room);
    }
    for (op, sender) in delivery.into_iter().rev() {
        let (me, doc) = &mut replicas[1];
        deliver(doc, me, &sender, op, in_room);
    }
    // The others leave; the two sync until nothing moves.
    for _ in 0..16 {
        let before: usize = replicas.iter().map(|(_, d)| d.op_count()).sum();
        for (from, to) in [(0, 1), (1, 0)] {
            let theirs = replicas[to].1.version_vector();
            let sent: Vec<Op> = replicas[from]
                .1
                .missing_from(&theirs)
                .into_iter()
                .cloned()
                .collect();
            let sender = replicas[from].0.clone();
            let (me, doc) = &mut replicas[to];
            for op in sent {
                deliver(doc, me, &sender, op, receivers_only);
            }
        }
        let after: usize = replicas.iter().map(|(_, d)| d.op_count()).sum();
        if after == before {
            break;
        }
    }
    for (_, doc) in &replicas {
        check_clocks(doc);
    }
    let (a, b) = (&replicas[0].1, &replicas[1].1);
    assert_eq!(a.version_vector(), b.version_vector());
    assert_eq!(
        a.visible().collect::<Vec<_>>(),
        b.visible().collect::<Vec<_>>()
    );
    for i in 0..3 {
        let author = PeerId(format!("peer-{i}"));
        let made = log.iter().filter(|op| op.author == author).count() as u64;
        assert_eq!(a.version_vector().get(&author), made, "every honest op is in");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
