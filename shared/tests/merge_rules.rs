//! The document's merge rules and bounds at their edges, through the public API only. Each test
//! here was written for a mutant `cargo mutants` left alive in `document.rs` (named in the
//! test's doc comment): a change to the code that no other test noticed.

use shared::PeerId;
use shared::color::Color;
use shared::document::{
    MAX_AUTHORS, MAX_CLOCK, MAX_POINTS_PER_OP, MAX_TEXT_CHARS, Op, OpError, OpId, OpKind, Replica,
    Shape, VersionVector,
};
use shared::geometry::Point;

fn peer(i: usize) -> PeerId {
    PeerId(format!("peer-{i}"))
}

fn pt(x: f32) -> Point {
    Point::new(x, x, 0.5)
}

fn stroke(points: Vec<Point>) -> OpKind {
    OpKind::Add {
        shape: Shape::Stroke { points },
        color: Color::rgb(0, 0, 0),
        width: 2.0,
    }
}

fn op(seq: u64, lamport: u64, kind: OpKind) -> Op {
    Op {
        author: peer(0),
        seq,
        lamport,
        op: kind,
    }
}

/// Mutant: `OpKind::is_undoable` always true. Only adds, erases and clears are undoable; an
/// extend or finish made through `perform` must not become the target of the next undo.
#[test]
fn only_adds_erases_and_clears_are_undoable() {
    let undoable = |kind: &OpKind| kind.is_undoable();
    assert!(undoable(&stroke(vec![pt(0.0)])));
    assert!(undoable(&OpKind::Erase {
        targets: vec![],
        marks: Default::default()
    }));
    assert!(undoable(&OpKind::Clear {
        marks: Default::default(),
        seen: VersionVector::default()
    }));
    for kind in [
        OpKind::Extend {
            element: 1,
            points: vec![pt(1.0)],
        },
        OpKind::Finish { element: 1 },
        OpKind::Undo { target: 1 },
        OpKind::Redo { target: 1 },
    ] {
        assert!(!undoable(&kind), "{kind:?}");
    }
    let mut me = Replica::new(peer(0));
    let (add, _) = me.perform(stroke(vec![pt(0.0)]));
    me.perform(OpKind::Extend {
        element: add.seq,
        points: vec![pt(1.0)],
    });
    me.perform(OpKind::Finish { element: add.seq });
    let (undo, _) = me.undo().expect("the stroke can be undone");
    assert_eq!(undo.op, OpKind::Undo { target: add.seq });
    assert!(me.doc.visible().next().is_none(), "the stroke is gone");
    assert!(!me.history.can_undo());
}

/// Mutant: `Display for OpError` writing nothing. Each refusal is logged with its reason.
#[test]
fn every_refusal_says_why() {
    let all = [
        OpError::ZeroSeq,
        OpError::BadPoint,
        OpError::BadPointCount,
        OpError::BadWidth,
        OpError::BadText,
        OpError::TooMany,
        OpError::BadTarget,
        OpError::BadClock,
        OpError::ClockJump,
        OpError::OverBudget,
    ];
    let texts: std::collections::HashSet<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(texts.len(), all.len(), "one distinct message each");
    assert!(texts.iter().all(|t| !t.is_empty()));
    assert_eq!(
        OpError::ClockJump.to_string(),
        "seq or Lamport time too far ahead"
    );
}

/// Mutants: `>` → `>=` in `Op::validate` for the seq and Lamport bounds. `MAX_CLOCK` itself is
/// accepted; one above is not.
#[test]
fn clocks_up_to_max_clock_are_valid() {
    let finish = OpKind::Finish { element: 1 };
    assert_eq!(op(MAX_CLOCK, MAX_CLOCK, finish.clone()).validate(), Ok(()));
    assert_eq!(op(2, MAX_CLOCK, finish.clone()).validate(), Ok(()));
    assert_eq!(op(MAX_CLOCK, 1, finish.clone()).validate(), Ok(()));
    assert_eq!(
        op(MAX_CLOCK + 1, 1, finish.clone()).validate(),
        Err(OpError::BadClock)
    );
    assert_eq!(
        op(2, MAX_CLOCK + 1, finish).validate(),
        Err(OpError::BadClock)
    );
}

/// Mutant: `>` → `>=` on the point count in `Op::validate`. `MAX_POINTS_PER_OP` points are
/// accepted, one more is not.
#[test]
fn an_op_may_carry_exactly_the_most_points() {
    let at_limit = vec![pt(1.0); MAX_POINTS_PER_OP];
    assert_eq!(op(1, 1, stroke(at_limit.clone())).validate(), Ok(()));
    let extend = OpKind::Extend {
        element: 1,
        points: at_limit,
    };
    assert_eq!(op(2, 2, extend).validate(), Ok(()));
    assert_eq!(
        op(1, 1, stroke(vec![pt(1.0); MAX_POINTS_PER_OP + 1])).validate(),
        Err(OpError::BadPointCount)
    );
}

/// Mutant: `>` → `>=` on the text length in `Op::validate`. `MAX_TEXT_CHARS` characters (not
/// bytes) are accepted, one more is not.
#[test]
fn a_text_may_hold_exactly_the_most_characters() {
    let text = |text: String| OpKind::Add {
        shape: Shape::Text {
            at: pt(0.0),
            text,
            size: 16.0,
        },
        color: Color::rgb(0, 0, 0),
        width: 1.0,
    };
    assert_eq!(
        op(1, 1, text("é".repeat(MAX_TEXT_CHARS))).validate(),
        Ok(())
    );
    assert_eq!(
        op(1, 1, text("é".repeat(MAX_TEXT_CHARS + 1))).validate(),
        Err(OpError::BadText)
    );
}

/// Mutant: `>` → `>=` on a clear's author count in `Op::validate`. A clear may name
/// `MAX_AUTHORS` authors (what a hello may carry), not one more.
#[test]
fn a_clear_may_name_exactly_the_most_authors() {
    let seen = |n: usize| OpKind::Clear {
        marks: Default::default(),
        seen: VersionVector((0..n).map(|i| (peer(i), 1)).collect()),
    };
    assert_eq!(op(2, 1, seen(MAX_AUTHORS)).validate(), Ok(()));
    assert_eq!(
        op(2, 1, seen(MAX_AUTHORS + 1)).validate(),
        Err(OpError::TooMany)
    );
}

/// An erase or a clear naming its author's own ops from itself on (which do not exist yet) is
/// refused: it would wait for them, and the author's later ops behind it, for ever.
#[test]
fn an_erase_or_clear_may_name_only_its_authors_earlier_ops() {
    fn mine(seq: u64) -> OpId {
        OpId {
            author: peer(0),
            seq,
        }
    }
    let erase = |seq| OpKind::erase(vec![mine(1), mine(seq)]);
    let clear = |seq| OpKind::clear(VersionVector([(peer(0), seq), (peer(1), 9)].into()));
    let kinds: [fn(u64) -> OpKind; 2] = [erase, clear];
    for named in kinds {
        assert_eq!(op(5, 5, named(4)).validate(), Ok(()));
        assert_eq!(op(5, 5, named(5)).validate(), Err(OpError::BadTarget));
        assert_eq!(op(5, 5, named(6)).validate(), Err(OpError::BadTarget));
    }
    // Another author's ops at any seq are for the ledger's marks to vouch for.
    let theirs = OpKind::erase(vec![OpId {
        author: peer(1),
        seq: 9,
    }]);
    assert_eq!(op(5, 5, theirs).validate(), Ok(()));
}

/// Mutants: `Op::estimated_size` returning 1, `+` → `-` or `*` in it, and each of its match
/// arms deleted. Sync batches are cut by this estimate, so it must follow the JSON size of every
/// kind of op (within a factor of three here), and a batch cut to `SYNC_BATCH_BYTES` must fit
/// in one data-channel message.
#[test]
fn size_estimates_follow_the_json_and_batches_fit_a_message() {
    use shared::document::{MAX_ERASE_TARGETS, OpId, batches};
    use shared::sync::{ChannelMessage, MAX_MESSAGE_BYTES, SYNC_BATCH_BYTES};
    let long_name = PeerId("n".repeat(1_000));
    let kinds = [
        stroke(vec![pt(1.0); MAX_POINTS_PER_OP]),
        OpKind::Extend {
            element: 1,
            points: vec![pt(1.0); MAX_POINTS_PER_OP],
        },
        OpKind::Add {
            shape: Shape::Text {
                at: pt(0.0),
                text: "é".repeat(MAX_TEXT_CHARS),
                size: 16.0,
            },
            color: Color::rgb(0, 0, 0),
            width: 1.0,
        },
        // Control characters: six bytes of JSON each (`\u0001`), the worst case for text.
        OpKind::Add {
            shape: Shape::Text {
                at: pt(0.0),
                text: "\u{1}".repeat(MAX_TEXT_CHARS),
                size: 16.0,
            },
            color: Color::rgb(0, 0, 0),
            width: 1.0,
        },
        OpKind::Erase {
            marks: Default::default(),
            targets: (1..=MAX_ERASE_TARGETS as u64)
                .map(|seq| OpId {
                    author: peer(1),
                    seq,
                })
                .collect(),
        },
        OpKind::Clear {
            marks: Default::default(),
            seen: VersionVector((0..MAX_AUTHORS).map(|i| (peer(i), 1)).collect()),
        },
        // Long author names in the targets and the seen vector count too.
        OpKind::Erase {
            marks: Default::default(),
            targets: (1..=100)
                .map(|seq| OpId {
                    author: long_name.clone(),
                    seq,
                })
                .collect(),
        },
        OpKind::Clear {
            marks: Default::default(),
            seen: VersionVector(
                (0..100)
                    .map(|i| (PeerId(format!("{}{i}", long_name.0)), 1))
                    .collect(),
            ),
        },
        OpKind::Finish { element: 1 },
    ];
    for kind in kinds {
        for author in [peer(0), long_name.clone()] {
            let op = Op {
                author,
                seq: 2,
                lamport: 2,
                op: kind.clone(),
            };
            let json = serde_json::to_string(&op).unwrap().len();
            let estimate = op.estimated_size();
            assert!(
                estimate * 3 >= json && estimate <= json * 3,
                "estimate {estimate} for {json} bytes of JSON ({:?})",
                op.op
            );
        }
    }
    let strokes: Vec<Op> = (1..=100)
        .map(|seq| op(seq, seq, stroke(vec![pt(1.0); MAX_POINTS_PER_OP])))
        .collect();
    let refs: Vec<&Op> = strokes.iter().collect();
    let cut = batches(&refs, SYNC_BATCH_BYTES);
    assert!(cut.len() > 1);
    for batch in cut {
        let message = ChannelMessage::Ops {
            ops: batch.into_iter().cloned().collect(),
            proofs: vec![],
            certs: vec![],
        };
        let len = serde_json::to_string(&message).unwrap().len();
        assert!(len <= MAX_MESSAGE_BYTES, "a batch of {len} bytes");
    }
}

/// Mutant: `>` → `>=` on the seq step in `Document::apply_from`. A seq exactly
/// `MAX_CLOCK_STEP` ahead of its author's last op may wait (parked); one further is refused.
/// Likewise a Lamport time exactly `MAX_CLOCK_STEP` ahead is integrated.
#[test]
fn clock_steps_up_to_the_limit_are_taken() {
    use shared::document::{Document, MAX_CLOCK_STEP};
    let sender = peer(0);
    let finish = |seq, lamport| op(seq, lamport, OpKind::Finish { element: 1 });
    let mut doc = Document::new();
    let parked = doc.apply_from(finish(MAX_CLOCK_STEP, 1), Some(&sender));
    assert_eq!(parked.map(|c| c.integrated), Ok(0), "it waits for its gap");
    assert_eq!(
        doc.apply_from(finish(MAX_CLOCK_STEP + 1, 1), Some(&sender)),
        Err(OpError::ClockJump)
    );
    let first = op(1, MAX_CLOCK_STEP, stroke(vec![pt(0.0)]));
    assert_eq!(
        doc.apply_from(first, Some(&sender)).map(|c| c.integrated),
        Ok(1)
    );
    assert_eq!(doc.ops().map(|o| o.lamport).max(), Some(MAX_CLOCK_STEP));
    let mut fresh = Document::new();
    let too_far = op(1, MAX_CLOCK_STEP + 1, stroke(vec![pt(0.0)]));
    assert_eq!(
        fresh.apply_from(too_far, Some(&sender)),
        Err(OpError::ClockJump)
    );
}

/// Mutant: `>` → `>=` in `Document::integrate` for extend. A stroke at
/// `MAX_POINTS_PER_STROKE` takes no more points, and an extend that adds none reports no growth.
#[test]
fn a_full_stroke_stops_growing_and_says_so() {
    use shared::document::MAX_POINTS_PER_STROKE;
    let mut me = Replica::new(peer(0));
    let (add, _) = me.perform(stroke(vec![pt(0.0); MAX_POINTS_PER_OP]));
    let extend = || OpKind::Extend {
        element: add.seq,
        points: vec![pt(1.0); MAX_POINTS_PER_OP],
    };
    let mut grown = MAX_POINTS_PER_OP;
    while grown < MAX_POINTS_PER_STROKE {
        let (_, changes) = me.doc.make(&peer(0), extend());
        assert_eq!(changes.grown, vec![(add.id(), grown)]);
        grown = (grown + MAX_POINTS_PER_OP).min(MAX_POINTS_PER_STROKE);
    }
    let (_, changes) = me.doc.make(&peer(0), extend());
    assert!(changes.grown.is_empty(), "{:?}", changes.grown);
    assert_eq!(changes.integrated, 1);
    match &me.doc.element(&add.id()).expect("the stroke").shape {
        Shape::Stroke { points } => assert_eq!(points.len(), MAX_POINTS_PER_STROKE),
        other => panic!("{other:?}"),
    }
}

/// Mutants: `delete !` in `Document::integrate` for finish, and `Document::element` returning
/// `None`. A finish marks the stroke finished once; the element is there, visible or not.
#[test]
fn a_finish_finishes_a_stroke_once_and_elements_are_found_when_hidden() {
    let mut me = Replica::new(peer(0));
    let (add, changes) = me.perform(stroke(vec![pt(0.0)]));
    assert!(changes.finished.is_empty(), "a stroke starts unfinished");
    assert!(!me.doc.element(&add.id()).expect("the stroke").finished);
    let (_, changes) = me.doc.make(&peer(0), OpKind::Finish { element: add.seq });
    assert_eq!(changes.finished, vec![add.id()]);
    assert!(me.doc.element(&add.id()).expect("the stroke").finished);
    let (_, again) = me.doc.make(&peer(0), OpKind::Finish { element: add.seq });
    assert!(again.finished.is_empty(), "finished once");
    me.perform(OpKind::Erase {
        marks: Default::default(),
        targets: vec![add.id()],
    });
    assert!(me.doc.visible().next().is_none());
    assert_eq!(
        me.doc.element(&add.id()).map(|e| e.id.clone()),
        Some(add.id())
    );
}

/// Mutants in `batches`: the guard always false, `+` → `*` in it, `+=` → `*=`. Ops are packed
/// in order into as few batches as the budget allows.
#[test]
fn batches_are_filled_up_to_the_budget() {
    use shared::document::batches;
    let ops: Vec<Op> = (1..=10)
        .map(|seq| op(seq, seq, stroke(vec![pt(1.0); 20])))
        .collect();
    let refs: Vec<&Op> = ops.iter().collect();
    let size = ops[0].estimated_size();
    assert!(ops.iter().all(|op| op.estimated_size() == size));
    let sizes = |budget| {
        batches(&refs, budget)
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>()
    };
    assert_eq!(sizes(size * 4), vec![4, 4, 2]);
    assert_eq!(sizes(size * 4 + size / 2), vec![4, 4, 2]);
    assert_eq!(sizes(size * 10), vec![10]);
    assert_eq!(sizes(size), vec![1; 10]);
}

/// Mutant: `History::can_undo` always false.
#[test]
fn there_is_something_to_undo_after_an_undoable_op() {
    let mut me = Replica::new(peer(0));
    assert!(!me.history.can_undo());
    me.perform(stroke(vec![pt(0.0)]));
    assert!(me.history.can_undo());
    me.undo();
    assert!(!me.history.can_undo());
    assert!(me.history.can_redo());
}

/// Mutants in `OpKind::names_beyond` and `Document::op` (cargo-mutants, on the marks): an author
/// a clear saw none of is not named (it needs no mark), and an op the document holds waiting is
/// found as well as one it has integrated.
#[test]
fn a_clear_names_only_authors_it_saw_and_waiting_ops_are_found() {
    let clear = OpKind::clear(VersionVector(
        [(peer(0), 3), (peer(1), 0), (peer(2), 2)].into(),
    ));
    assert_eq!(
        clear.names_beyond(&peer(0)),
        [(peer(2), 2)].into(),
        "not its author, not an author seen at 0"
    );
    let erase = OpKind::erase(vec![
        OpId {
            author: peer(1),
            seq: 4,
        },
        OpId {
            author: peer(1),
            seq: 9,
        },
        OpId {
            author: peer(0),
            seq: 1,
        },
    ]);
    assert_eq!(erase.names_beyond(&peer(0)), [(peer(1), 9)].into());
    let mut doc = shared::document::Document::new();
    let (first, second) = (
        op(1, 1, stroke(vec![pt(1.0)])),
        op(2, 2, stroke(vec![pt(2.0)])),
    );
    doc.apply(second.clone());
    assert_eq!(doc.op(&peer(0), 2), Some(&second), "waiting");
    assert_eq!(doc.op(&peer(0), 1), None);
    doc.apply(first.clone());
    assert_eq!(doc.op(&peer(0), 1), Some(&first));
    assert_eq!(doc.op(&peer(0), 2), Some(&second), "integrated");
    assert_eq!(doc.op(&peer(0), 3), None);
    assert_eq!(doc.op(&peer(1), 1), None);
    // Next in line but waiting for what it names.
    let third = op(
        3,
        3,
        OpKind::erase(vec![OpId {
            author: peer(1),
            seq: 1,
        }]),
    );
    doc.apply(third.clone());
    assert_eq!(doc.version_vector().get(&peer(0)), 2);
    assert_eq!(doc.op(&peer(0), 3), Some(&third), "waiting, next in line");
}
