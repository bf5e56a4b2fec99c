//! The board: local tools, peer ops, undo and redo, resizes all end up as real pixels; peers'
//! messages are checked before they touch the document.

use crate::support::{
    board, board_of, cert_of, drag, from_peer, from_peer_data, key_of, painted_pixels, pixel,
    pixel_at_css, rgba,
};
use client::board::{Board, ReceiveError, Received};
use client::canvas::PenInput;
use client::tools::Tool;
use client::wire;
use shared::color::Color;
use shared::document::{Op, OpKind, Shape};
use shared::signing::{Ledger, Proof, SignedBatch};
use shared::sync::{ChannelMessage, MAX_MESSAGE_BYTES, MessageError, SYNC_BATCH_BYTES};
use shared::{PeerId, Point};
use wasm_bindgen_test::wasm_bindgen_test;

const RED: Color = Color::rgb(0xe0, 0x31, 0x31);
const BLUE: Color = Color::rgb(0x19, 0x71, 0xc2);
const EMPTY: [u8; 4] = [0, 0, 0, 0];

fn p(x: f32, y: f32) -> Point {
    Point::new(x, y, 0.5)
}

fn id(s: &str) -> PeerId {
    PeerId(s.into())
}

/// Draws a horizontal pen line from (x0, y) to (x1, y).
fn line(board: &mut Board, x0: f32, x1: f32, y: f32) -> Vec<Op> {
    drag(board, (x0, y), (x1, y))
}

/// A blue line across a 200 × 100 board: `author`'s first op.
fn line_by(author: &str) -> Op {
    Op {
        author: id(author),
        seq: 1,
        lamport: 1,
        op: OpKind::Add {
            shape: Shape::Line {
                from: p(10.0, 50.0),
                to: p(190.0, 50.0),
            },
            color: BLUE,
            width: 4.0,
        },
    }
}

/// Ops as their authors would send or hand them on: each author's ops that start at its seq 1
/// signed by that author (see `support::key_of`), with the authors' certificates.
fn ops_text(ops: Vec<Op>) -> String {
    let mut ledger = Ledger::new();
    ops.iter()
        .for_each(|op| ledger.record_mine(op, &key_of(&op.author.0)));
    let mut authors: Vec<PeerId> = ops.iter().map(|op| op.author.clone()).collect();
    authors.sort();
    authors.dedup();
    let proofs: Vec<Proof> = authors
        .iter()
        .filter_map(|a| ledger.seal(&key_of(&a.0), a))
        .collect();
    let certs = authors.iter().map(|a| cert_of(&a.0)).collect();
    wire::encode(&ChannelMessage::Ops { ops, proofs, certs }).unwrap()
}

/// The same ops, signed as [`ops_text`] does, from a message's text.
fn signed(text: &str) -> String {
    let Ok(ChannelMessage::Ops { ops, .. }) = wire::decode(text) else {
        panic!("not an ops message: {text}");
    };
    ops_text(ops)
}

fn batch_text(batch: &SignedBatch) -> String {
    wire::encode(&ChannelMessage::Ops {
        ops: batch.ops.clone(),
        proofs: batch.proofs.clone(),
        certs: batch.certs.clone(),
    })
    .unwrap()
}

#[wasm_bindgen_test]
fn a_pen_stroke_paints_pixels_and_yields_add_extend_finish() {
    let mut board = board(200, 100, RED);
    assert_eq!(painted_pixels(&mut board), 0);
    let ops = line(&mut board, 10.0, 150.0, 50.0);

    assert_eq!(pixel(&mut board, 80.0, 50.0), rgba(RED), "on the line");
    assert_eq!(pixel(&mut board, 149.0, 50.0), rgba(RED), "near its end");
    assert_eq!(pixel(&mut board, 80.0, 60.0), EMPTY, "5 px off a 4 px line");
    assert_eq!(pixel(&mut board, 180.0, 50.0), EMPTY, "past its end");

    let kinds: Vec<&OpKind> = ops.iter().map(|o| &o.op).collect();
    assert_eq!(
        kinds,
        [
            &OpKind::Add {
                shape: Shape::Stroke {
                    points: vec![p(10.0, 50.0)]
                },
                color: RED,
                width: 4.0
            },
            &OpKind::Extend {
                element: 1,
                points: vec![p(80.0, 50.0)]
            },
            &OpKind::Extend {
                element: 1,
                points: vec![p(150.0, 50.0)]
            },
            &OpKind::Finish { element: 1 },
        ]
    );
    assert!(ops.iter().all(|o| o.author == id("me")));
    assert_eq!(ops.iter().map(|o| o.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);

    // The next stroke gets the newly picked colour and width.
    board.set_color(BLUE);
    board.set_width(10.0);
    let second = line(&mut board, 10.0, 150.0, 20.0);
    assert!(matches!(
        &second[0].op,
        OpKind::Add { color: BLUE, width, .. } if *width == 10.0
    ));
    assert_eq!(pixel(&mut board, 80.0, 24.0), rgba(BLUE), "10 px wide");
    assert_eq!(board.visible_count(), 2);
    assert!(board.doc().visible().all(|e| e.finished));
}

#[wasm_bindgen_test]
fn a_click_leaves_a_dot() {
    let mut board = board(100, 100, RED);
    board.pen(PenInput::Down(p(40.0, 40.0)));
    board.pen(PenInput::Up);
    assert_eq!(pixel(&mut board, 40.0, 40.0), rgba(RED));
    assert_eq!(pixel(&mut board, 40.0, 46.0), EMPTY);
}

#[wasm_bindgen_test]
fn moves_without_a_press_make_no_ops() {
    let mut board = board(100, 100, RED);
    assert!(board.pen(PenInput::Move(vec![p(1.0, 1.0)])).is_empty());
    assert!(board.pen(PenInput::Up).is_empty());
    assert_eq!(board.doc().op_count(), 0);
}

#[wasm_bindgen_test]
fn the_stroke_being_drawn_shows_in_the_next_frame() {
    let mut board = board(200, 100, RED);
    board.pen(PenInput::Down(p(10.0, 50.0)));
    board.pen(PenInput::Move(vec![p(100.0, 50.0)]));
    // Not finished: painted on the active layer every frame.
    assert_eq!(pixel(&mut board, 60.0, 50.0), rgba(RED));
    board.pen(PenInput::Move(vec![p(100.0, 90.0)]));
    assert_eq!(pixel(&mut board, 100.0, 70.0), rgba(RED));
    board.pen(PenInput::Up);
    assert_eq!(pixel(&mut board, 60.0, 50.0), rgba(RED), "now committed");
    assert_eq!(pixel(&mut board, 100.0, 70.0), rgba(RED));
}

/// From now on, counts the `lineTo` calls of every 2D canvas (a wrapper on the prototype, put
/// there once); returns a reader of the count since this call.
fn count_line_to() -> impl Fn() -> u32 {
    let install = js_sys::Function::new_no_args(
        "const p = CanvasRenderingContext2D.prototype;
         if (!p.__countedLineTo) {
           const lineTo = p.lineTo;
           p.lineTo = function (...args) { p.__lineTos += 1; return lineTo.apply(this, args); };
           p.__countedLineTo = true;
         }
         p.__lineTos = 0;",
    );
    install.call0(&wasm_bindgen::JsValue::NULL).unwrap();
    let read =
        js_sys::Function::new_no_args("return CanvasRenderingContext2D.prototype.__lineTos;");
    move || {
        read.call0(&wasm_bindgen::JsValue::NULL)
            .unwrap()
            .as_f64()
            .unwrap() as u32
    }
}

#[wasm_bindgen_test]
fn a_growing_stroke_paints_only_its_new_segments_each_frame() {
    let mut board = board(400, 100, RED);
    board.pen(PenInput::Down(p(10.0, 50.0)));
    for x in 1..=100 {
        board.pen(PenInput::Move(vec![p(10.0 + 3.0 * x as f32, 50.0)]));
    }
    board.render();
    let line_tos = count_line_to();
    board.pen(PenInput::Move(vec![p(320.0, 80.0)]));
    board.render();
    // One new segment, not the 101 the stroke has by now.
    assert_eq!(
        line_tos(),
        1,
        "segments painted in the frame after one more point"
    );
    assert_eq!(
        pixel(&mut board, 315.0, 65.0),
        rgba(RED),
        "and that segment shows"
    );
    assert_eq!(
        pixel(&mut board, 160.0, 50.0),
        rgba(RED),
        "the earlier ones still show"
    );
}

#[wasm_bindgen_test]
fn a_departed_authors_unfinished_stroke_in_a_sync_is_painted_once_not_with_a_repaint() {
    // 40 finished strokes of 20 points by someone who left, and the start of a 41st: what a
    // sync batch cut between that stroke's add and its finish carries.
    let mut ops = Vec::new();
    for i in 0..41u64 {
        let y = 2.5 + i as f32 * 2.0;
        let points = (0..20).map(|k| p(5.0 + k as f32 * 9.0, y)).collect();
        ops.push(Op {
            author: id("gone"),
            seq: 2 * i + 1,
            lamport: 2 * i + 1,
            op: OpKind::Add {
                shape: Shape::Stroke { points },
                color: BLUE,
                width: 1.0,
            },
        });
        if i < 40 {
            ops.push(Op {
                author: id("gone"),
                seq: 2 * i + 2,
                lamport: 2 * i + 2,
                op: OpKind::Finish { element: 2 * i + 1 },
            });
        }
    }
    let mut board = board(200, 100, RED);
    board.render();
    let line_tos = count_line_to();
    assert_eq!(
        from_peer(&mut board, "bob", &ops_text(ops), &["bob"]),
        Ok(Received::Ops {
            integrated: 81,
            dropped: 0
        })
    );
    board.render();
    // Each stroke once (19 segments, one path): the unfinished one committed like the others,
    // not by a repaint that paints all 41 again.
    assert_eq!(line_tos(), 41 * 19);
    assert_eq!(
        pixel(&mut board, 100.0, 82.0),
        rgba(BLUE),
        "the unfinished stroke shows"
    );
}

#[wasm_bindgen_test]
fn line_rect_and_ellipse_paint_outlines() {
    let mut board = board(300, 200, BLUE);
    board.set_tool(Tool::Line);
    let ops = drag(&mut board, (10.0, 10.0), (110.0, 10.0));
    assert_eq!(ops.len(), 1, "one add on release");
    assert!(matches!(
        &ops[0].op,
        OpKind::Add {
            shape: Shape::Line { .. },
            ..
        }
    ));
    assert_eq!(pixel(&mut board, 60.0, 10.0), rgba(BLUE));

    board.set_tool(Tool::Rect);
    board.set_color(RED);
    drag(&mut board, (20.0, 40.0), (120.0, 140.0));
    assert_eq!(pixel(&mut board, 70.0, 40.0), rgba(RED), "top edge");
    assert_eq!(pixel(&mut board, 120.0, 90.0), rgba(RED), "right edge");
    assert_eq!(pixel(&mut board, 70.0, 90.0), EMPTY, "not filled");

    board.set_tool(Tool::Ellipse);
    board.set_color(BLUE);
    drag(&mut board, (150.0, 40.0), (250.0, 140.0));
    assert_eq!(
        pixel(&mut board, 250.0, 90.0),
        rgba(BLUE),
        "rightmost point"
    );
    assert_eq!(pixel(&mut board, 200.0, 40.0), rgba(BLUE), "top point");
    assert_eq!(pixel(&mut board, 200.0, 90.0), EMPTY, "not filled");
    assert_eq!(
        pixel(&mut board, 152.0, 42.0),
        EMPTY,
        "box corner: outside it"
    );

    // A zero-size drag adds nothing.
    let before = board.doc().op_count();
    assert!(drag(&mut board, (5.0, 5.0), (5.0, 5.0)).is_empty());
    assert_eq!(board.doc().op_count(), before);
    assert_eq!(board.visible_count(), 3);
}

#[wasm_bindgen_test]
fn a_shape_being_dragged_is_previewed_without_an_op() {
    let mut board = board(200, 200, RED);
    board.set_tool(Tool::Rect);
    board.pen(PenInput::Down(p(20.0, 20.0)));
    board.pen(PenInput::Move(vec![p(100.0, 100.0)]));
    assert_eq!(board.doc().op_count(), 0);
    assert_eq!(pixel(&mut board, 60.0, 20.0), rgba(RED), "preview shown");
    board.pen(PenInput::Move(vec![p(150.0, 150.0)]));
    assert_eq!(pixel(&mut board, 100.0, 60.0), EMPTY, "old preview gone");
    assert_eq!(pixel(&mut board, 150.0, 60.0), rgba(RED));
}

#[wasm_bindgen_test]
fn text_paints_pixels_of_its_colour() {
    let mut board = board(300, 100, RED);
    board.set_tool(Tool::Text);
    assert!(board.pen(PenInput::Down(p(10.0, 10.0))).is_empty());
    assert!(
        board.add_text((10.0, 10.0), "   ").is_none(),
        "blank text adds nothing"
    );
    board.set_width(8.0);
    let op = board.add_text((10.0, 10.0), "Hello").unwrap();
    let OpKind::Add {
        shape: Shape::Text { size, text, at },
        ..
    } = &op.op
    else {
        panic!("not a text add: {op:?}");
    };
    assert_eq!((text.as_str(), *size, *at), ("Hello", 40.0, p(10.0, 10.0)));
    board.render();
    let data = board
        .canvas()
        .context()
        .get_image_data(10.0, 10.0, 150.0, 50.0)
        .unwrap()
        .data();
    let red = data
        .chunks(4)
        .filter(|px| px == &rgba(RED).as_slice())
        .count();
    assert!(red > 50, "{red} pure red pixels in the text's box");
}

#[wasm_bindgen_test]
fn the_eraser_removes_what_it_touches_with_one_op_per_event() {
    let mut board = board(200, 100, RED);
    line(&mut board, 10.0, 190.0, 30.0);
    line(&mut board, 10.0, 190.0, 70.0);
    assert_eq!(pixel(&mut board, 100.0, 30.0), rgba(RED));
    board.set_tool(Tool::Eraser);
    let down = board.pen(PenInput::Down(p(100.0, 50.0)));
    assert!(down.is_empty(), "nothing within reach of the middle");
    let hit = board.pen(PenInput::Move(vec![p(100.0, 34.0)]));
    assert_eq!(hit.len(), 1);
    assert!(matches!(&hit[0].op, OpKind::Erase { targets, .. } if targets.len() == 1));
    // Touching the same stroke again erases nothing new.
    assert!(board.pen(PenInput::Move(vec![p(120.0, 30.0)])).is_empty());
    board.pen(PenInput::Up);
    assert_eq!(pixel(&mut board, 100.0, 30.0), EMPTY, "erased");
    assert_eq!(pixel(&mut board, 100.0, 70.0), rgba(RED), "the other stays");
    assert_eq!(board.visible_count(), 1);
}

#[wasm_bindgen_test]
fn undo_and_redo_repaint_and_only_touch_my_ops() {
    let mut board = board(200, 100, RED);
    line(&mut board, 10.0, 190.0, 30.0);
    // A peer's stroke, which my undo must leave alone.
    let bob = vec![Op {
        author: id("bob"),
        seq: 1,
        lamport: 10,
        op: OpKind::Add {
            shape: Shape::Line {
                from: p(10.0, 70.0),
                to: p(190.0, 70.0),
            },
            color: BLUE,
            width: 4.0,
        },
    }];
    from_peer(&mut board, "bob", &ops_text(bob), &["bob"]).unwrap();
    assert!(board.replica().history.can_undo());
    let undo = board.undo().unwrap();
    assert_eq!(undo.op, OpKind::Undo { target: 1 });
    assert_eq!(pixel(&mut board, 100.0, 30.0), EMPTY, "my stroke undone");
    assert_eq!(pixel(&mut board, 100.0, 70.0), rgba(BLUE), "bob's stays");
    assert!(board.undo().is_none(), "nothing else of mine");
    assert!(board.replica().history.can_redo());
    board.redo().unwrap();
    assert_eq!(pixel(&mut board, 100.0, 30.0), rgba(RED), "redone");

    // Clear hides everything I saw; undoing it brings it back.
    board.clear();
    assert_eq!(painted_pixels(&mut board), 0);
    board.undo().unwrap();
    assert_eq!(pixel(&mut board, 100.0, 30.0), rgba(RED));
    assert_eq!(pixel(&mut board, 100.0, 70.0), rgba(BLUE));
}

#[wasm_bindgen_test]
fn a_peers_ops_draw_through_the_channel_path() {
    let mut board = board(200, 100, RED);
    let text = r##"{"ops":{"ops":[
        {"author":"bob","seq":1,"lamport":1,"op":{"add":{"shape":{"stroke":{"points":[{"x":10,"y":50,"p":0.5}]}},"color":"#1971c2","width":4}}},
        {"author":"bob","seq":2,"lamport":2,"op":{"extend":{"element":1,"points":[{"x":150,"y":50,"p":0.5}]}}}
    ]}}"##;
    let got = from_peer(&mut board, "bob", text, &["bob"]).unwrap();
    assert_eq!(
        got,
        Received::Ops {
            integrated: 2,
            dropped: 0
        }
    );
    assert_eq!(
        pixel(&mut board, 80.0, 50.0),
        rgba(BLUE),
        "unfinished, live"
    );
    let finish =
        r#"{"ops":{"ops":[{"author":"bob","seq":3,"lamport":3,"op":{"finish":{"element":1}}}]}}"#;
    from_peer(&mut board, "bob", finish, &["bob"]).unwrap();
    assert_eq!(
        pixel(&mut board, 80.0, 50.0),
        rgba(BLUE),
        "finished, committed"
    );
    // A duplicate changes nothing.
    assert_eq!(
        from_peer(&mut board, "bob", finish, &["bob"]).unwrap(),
        Received::Ops {
            integrated: 0,
            dropped: 0
        }
    );
}

#[wasm_bindgen_test]
fn ops_arriving_out_of_order_wait_for_the_gap() {
    let mut board = board(200, 100, RED);
    let add = Op {
        author: id("bob"),
        seq: 1,
        lamport: 1,
        op: OpKind::Add {
            shape: Shape::Rect {
                from: p(20.0, 20.0),
                to: p(80.0, 80.0),
            },
            color: BLUE,
            width: 4.0,
        },
    };
    let erase = Op {
        author: id("bob"),
        seq: 2,
        lamport: 2,
        op: OpKind::erase(vec![add.id()]),
    };
    from_peer(&mut board, "bob", &ops_text(vec![erase]), &["bob"]).unwrap();
    assert_eq!(board.doc().op_count(), 0, "parked");
    from_peer(&mut board, "bob", &ops_text(vec![add]), &["bob"]).unwrap();
    assert_eq!(board.doc().op_count(), 2);
    assert_eq!(painted_pixels(&mut board), 0, "added, then erased");
}

#[wasm_bindgen_test]
fn forged_ops_are_dropped() {
    let mut board = board(200, 100, RED);
    let stroke = line_by;
    // Bob hands us an op in carol's name while carol is here: she speaks for herself.
    let got = from_peer(
        &mut board,
        "bob",
        &ops_text(vec![stroke("carol")]),
        &["bob", "carol"],
    );
    assert_eq!(
        got,
        Ok(Received::Ops {
            integrated: 0,
            dropped: 1
        })
    );
    // Nor may anybody write in my name.
    let got = from_peer(&mut board, "bob", &ops_text(vec![stroke("me")]), &["bob"]);
    assert_eq!(
        got,
        Ok(Received::Ops {
            integrated: 0,
            dropped: 1
        })
    );
    assert_eq!(board.doc().op_count(), 0);
    assert_eq!(painted_pixels(&mut board), 0);
    // (Ops of somebody who left come from whoever has them, signed by their author: see
    // `a_departed_authors_ops_need_that_authors_signature`.)
}

#[wasm_bindgen_test]
fn a_departed_authors_ops_need_that_authors_signature() {
    let mut board = board(200, 100, RED);
    let gone = line_by("gone");
    let dropped = Ok(Received::Ops {
        integrated: 0,
        dropped: 1,
    });
    // Unsigned, from carol: held until a proof comes (none will), never shown.
    let unsigned = wire::encode(&ChannelMessage::Ops {
        ops: vec![gone.clone()],
        proofs: vec![],
        certs: vec![cert_of("gone")],
    })
    .unwrap();
    assert_eq!(
        from_peer(&mut board, "carol", &unsigned, &["bob", "carol"]),
        Ok(Received::Ops {
            integrated: 0,
            dropped: 0
        })
    );
    assert_eq!(painted_pixels(&mut board), 0);
    // Signed by bob, who hands it over, with gone's certificate.
    let mut ledger = Ledger::new();
    ledger.record_mine(&gone, &key_of("bob"));
    let by_bob = wire::encode(&ChannelMessage::Ops {
        ops: vec![gone.clone()],
        proofs: ledger
            .seal(&key_of("bob"), &id("gone"))
            .into_iter()
            .collect(),
        certs: vec![cert_of("gone")],
    })
    .unwrap();
    assert_eq!(from_peer(&mut board, "bob", &by_bob, &["bob"]), dropped);
    // Signed by gone, but changed on the way: another colour.
    let mut recoloured = gone.clone();
    if let OpKind::Add { color, .. } = &mut recoloured.op {
        *color = RED;
    }
    let proof = ledger.seal(&key_of("gone"), &id("gone"));
    let changed = wire::encode(&ChannelMessage::Ops {
        ops: vec![recoloured],
        proofs: proof.into_iter().collect(),
        certs: vec![cert_of("gone")],
    })
    .unwrap();
    assert_eq!(from_peer(&mut board, "bob", &changed, &["bob"]), dropped);
    assert_eq!(painted_pixels(&mut board), 0);
    // Signed by gone, unchanged: taken.
    assert_eq!(
        from_peer(&mut board, "bob", &ops_text(vec![gone]), &["bob"]),
        Ok(Received::Ops {
            integrated: 1,
            dropped: 0
        })
    );
    assert_eq!(pixel(&mut board, 100.0, 50.0), rgba(BLUE));
}

#[wasm_bindgen_test]
fn a_peer_without_a_certificate_draws_nothing_here() {
    let mut board = board(200, 100, RED);
    let stroke = ops_text(vec![line_by("stranger")]);
    // Its hello names no certificate, and its message carries one by another server.
    let hello = r#"{"hello":{"have":{}}}"#;
    board
        .receive(&id("stranger"), &hello.into(), |_| true)
        .unwrap();
    let rogue = shared::signing::Certificate::issue(
        &shared::signing::Keypair::derive(b"rogue", b"server"),
        id("stranger"),
        key_of("stranger").public(),
    );
    let text = stroke.replace(
        &serde_json_cert(&cert_of("stranger")),
        &serde_json_cert(&rogue),
    );
    assert_ne!(text, stroke);
    assert_eq!(
        board.receive(&id("stranger"), &text.as_str().into(), |_| true),
        Ok(Received::Ops {
            integrated: 0,
            dropped: 1
        })
    );
    assert_eq!(painted_pixels(&mut board), 0);
}

fn serde_json_cert(cert: &shared::signing::Certificate) -> String {
    wire::encode(cert).unwrap()
}

#[wasm_bindgen_test]
fn bad_peer_messages_are_dropped_without_painting() {
    let mut board = board(100, 100, RED);
    let blob = web_sys::Blob::new().unwrap();
    assert_eq!(
        board.receive(&id("bob"), &blob.into(), |_| true),
        Err(ReceiveError::Unreadable)
    );
    // An ArrayBuffer is read as a packed message: these bytes are none.
    let binary = js_sys::Uint8Array::from(&[7u8, 1, 2, 3][..]).buffer();
    assert!(matches!(
        board.receive(&id("bob"), &binary.into(), |_| true),
        Err(ReceiveError::Rejected(MessageError::Malformed(why))) if why.contains("unknown packed format 7")
    ));
    let too_big = js_sys::ArrayBuffer::new((MAX_MESSAGE_BYTES + 1) as u32);
    assert!(matches!(
        board.receive(&id("bob"), &too_big.into(), |_| true),
        Err(ReceiveError::Rejected(MessageError::TooLarge(_)))
    ));
    let huge = "x".repeat(MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        from_peer(&mut board, "bob", &huge, &["bob"]),
        Err(ReceiveError::Rejected(MessageError::TooLarge(_)))
    ));
    for text in [
        "not json",
        r#"{"explode":{}}"#,
        r#"{"ops":{"ops":[{"author":"bob","seq":1}]}}"#,
    ] {
        assert!(
            matches!(
                from_peer(&mut board, "bob", text, &["bob"]),
                Err(ReceiveError::Rejected(MessageError::Malformed(_)))
            ),
            "{text}"
        );
    }
    // Well formed, out of bounds: a width of 999 and a cursor a billion pixels away.
    let wide = r##"{"ops":{"ops":[{"author":"bob","seq":1,"lamport":1,"op":{"add":{"shape":{"line":{"from":{"x":1,"y":1,"p":0.5},"to":{"x":90,"y":90,"p":0.5}}},"color":"#1971c2","width":999}}}]}}"##;
    assert!(matches!(
        from_peer(&mut board, "bob", wide, &["bob"]),
        Err(ReceiveError::Rejected(MessageError::BadOp(_)))
    ));
    let far = r##"{"cursor":{"at":[1e9,0],"color":"#1971c2"}}"##;
    assert_eq!(
        from_peer(&mut board, "bob", far, &["bob"]),
        Err(ReceiveError::Rejected(MessageError::BadCursor))
    );
    assert_eq!(board.doc().op_count(), 0);
    assert_eq!(painted_pixels(&mut board), 0);
}

/// `n` finished strokes of `points` points each, drawn by `board`.
fn scribble(board: &mut Board, n: usize, points: usize) {
    for i in 0..n {
        let y = (i % 90) as f32 + 5.0;
        board.pen(PenInput::Down(p(5.0, y)));
        let pts: Vec<Point> = (0..points).map(|k| p(5.0 + k as f32, y)).collect();
        board.pen(PenInput::Move(pts));
        board.pen(PenInput::Up);
    }
}

#[wasm_bindgen_test]
fn a_hello_is_answered_with_exactly_the_missing_ops_in_batches_under_the_budget() {
    let mut alice = board_of("alice", 200, 100, RED);
    let mut bob = board_of("bob", 200, 100, BLUE);
    scribble(&mut alice, 120, 150);
    let total = alice.doc().op_count();
    assert_eq!(total, 360);

    // Bob knows nothing: he gets everything, in several batches, each under the budget.
    let ChannelMessage::Hello { have, .. } = bob.hello() else {
        panic!("not a hello");
    };
    let reply = alice.sync_reply(&have, |_| false);
    assert!(reply.len() > 1, "{} batch(es)", reply.len());
    let mut sent = 0;
    for batch in &reply {
        let estimate: usize = batch.ops.iter().map(Op::estimated_size).sum();
        assert!(estimate <= SYNC_BATCH_BYTES || batch.ops.len() == 1);
        let text = batch_text(batch);
        assert!(text.len() <= MAX_MESSAGE_BYTES, "{} bytes", text.len());
        sent += batch.ops.len();
        let got = from_peer(&mut bob, "alice", &text, &["alice"]).unwrap();
        assert_eq!(
            got,
            Received::Ops {
                integrated: batch.ops.len(),
                dropped: 0
            }
        );
    }
    assert_eq!(sent, total);
    assert_eq!(bob.doc().version_vector(), alice.doc().version_vector());
    assert_eq!(bob.visible_count(), 120);
    // The same picture, pixel for pixel (overlapping anti-aliased edges included).
    for (x, y) in [(50.0, 50.0), (100.0, 5.0), (20.0, 93.0)] {
        let theirs = pixel(&mut alice, x, y);
        assert_eq!(theirs[3], 255, "alice has ink at ({x}, {y})");
        assert_eq!(pixel(&mut bob, x, y), theirs, "at ({x}, {y})");
    }

    // Alice draws more, Bob draws too; Alice's answer to Bob's new hello is only what is new.
    scribble(&mut alice, 2, 10);
    scribble(&mut bob, 1, 10);
    let ChannelMessage::Hello { have, .. } = bob.hello() else {
        panic!("not a hello");
    };
    let reply: Vec<Op> = alice
        .sync_reply(&have, |_| false)
        .into_iter()
        .flat_map(|b| b.ops)
        .collect();
    assert_eq!(reply.len(), 6);
    assert!(
        reply
            .iter()
            .all(|op| op.author == id("alice") && op.seq > 360)
    );
    // And Bob's answer to Alice's hello: Bob's stroke alone.
    let ChannelMessage::Hello { have, .. } = alice.hello() else {
        panic!("not a hello");
    };
    let back: Vec<Op> = bob
        .sync_reply(&have, |_| false)
        .into_iter()
        .flat_map(|b| b.ops)
        .collect();
    assert_eq!(back.len(), 3);
    assert!(back.iter().all(|op| op.author == id("bob")));
}

#[wasm_bindgen_test]
fn a_packed_sync_draws_what_a_json_one_does_in_a_fraction_of_the_bytes() {
    let mut alice = board_of("alice", 200, 100, RED);
    scribble(&mut alice, 60, 50);
    let mut by_json = board_of("bob", 200, 100, BLUE);
    let mut by_packed = board_of("carol", 200, 100, BLUE);
    let ChannelMessage::Hello { have, packed, .. } = by_packed.hello() else {
        panic!("not a hello");
    };
    assert!(packed, "the client says it takes packed syncs");
    let (mut json_bytes, mut packed_bytes) = (0, 0);
    for batch in alice.sync_reply(&have, |_| false) {
        let text = batch_text(&batch);
        from_peer(&mut by_json, "alice", &text, &["alice"]).unwrap();
        let bytes = shared::packed::encode(&batch.ops, &batch.proofs, &batch.certs);
        let buffer = js_sys::Uint8Array::from(&bytes[..]).buffer();
        assert_eq!(
            from_peer_data(&mut by_packed, "alice", &buffer.into(), &["alice"]),
            Ok(Received::Ops {
                integrated: batch.ops.len(),
                dropped: 0
            })
        );
        (json_bytes, packed_bytes) = (json_bytes + text.len(), packed_bytes + bytes.len());
    }
    assert!(
        packed_bytes * 4 < json_bytes,
        "{packed_bytes} bytes packed, {json_bytes} as JSON"
    );
    assert_eq!(
        by_packed.doc().version_vector(),
        alice.doc().version_vector()
    );
    for (x, y) in [(30.0, 20.0), (50.0, 60.0), (10.0, 40.0)] {
        let theirs = pixel(&mut by_json, x, y);
        assert_eq!(theirs[3], 255, "ink at ({x}, {y})");
        assert_eq!(pixel(&mut by_packed, x, y), theirs, "at ({x}, {y})");
    }
}

#[wasm_bindgen_test]
fn resizing_repaints_the_drawing_at_the_same_css_position() {
    let mut board = board(200, 100, RED);
    line(&mut board, 20.0, 120.0, 40.0);
    assert_eq!(pixel_at_css(&mut board, 70.0, 40.0), rgba(RED));

    // Bigger, and on a HiDPI screen: the backing store doubles, the drawing stays put.
    board.resize(300.0, 150.0, 2.0);
    assert_eq!(board.canvas().element().width(), 600);
    assert_eq!(board.canvas().element().height(), 300);
    assert_eq!(
        pixel(&mut board, 140.0, 80.0),
        rgba(RED),
        "device pixel of CSS (70, 40)"
    );
    assert_eq!(pixel_at_css(&mut board, 119.0, 40.0), rgba(RED));
    assert_eq!(pixel_at_css(&mut board, 70.0, 60.0), EMPTY);

    // Smaller than the drawing: what still fits is still there.
    board.resize(100.0, 50.0, 1.0);
    assert_eq!(pixel_at_css(&mut board, 70.0, 40.0), rgba(RED));
}

#[wasm_bindgen_test]
fn the_view_pans_and_zooms_the_drawing_and_the_input() {
    let mut board = board(200, 200, RED);
    line(&mut board, 10.0, 50.0, 20.0);
    let mut view = board.view();
    view.zoom_at(0.0, 0.0, 2.0);
    board.set_view(view);
    assert_eq!(
        pixel(&mut board, 60.0, 40.0),
        rgba(RED),
        "world (30, 20) at 2x"
    );
    assert_eq!(pixel(&mut board, 30.0, 60.0), EMPTY);
    // Input goes through the view: a press at screen (100, 100) is world (50, 50).
    let ops = line(&mut board, 100.0, 140.0, 100.0);
    assert!(matches!(
        &ops[0].op,
        OpKind::Add { shape: Shape::Stroke { points }, .. } if points[0] == p(50.0, 50.0)
    ));
    view.pan_by(-20.0, 0.0);
    board.set_view(view);
    assert_eq!(
        pixel(&mut board, 80.0, 40.0),
        rgba(RED),
        "moved right by 20 px"
    );
}

#[wasm_bindgen_test]
fn a_new_id_finishes_the_open_stroke_and_starts_a_fresh_history() {
    let mut board = board(100, 100, RED);
    board.pen(PenInput::Down(p(10.0, 10.0)));
    let ops = board.set_me(id("server-id"));
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].author, id("me"));
    assert_eq!(ops[0].op, OpKind::Finish { element: 1 });
    assert!(!board.replica().history.can_undo());
    let next = line(&mut board, 10.0, 90.0, 50.0);
    assert_eq!((next[0].author.clone(), next[0].seq), (id("server-id"), 1));
}

#[wasm_bindgen_test]
fn with_20000_strokes_a_pointer_event_costs_a_frame_not_a_repaint() {
    let mut big = board(400, 300, RED);
    let ops: Vec<Op> = (0..20_000u64)
        .map(|i| Op {
            author: id("old"),
            seq: i + 1,
            lamport: i + 1,
            op: OpKind::Add {
                shape: Shape::Line {
                    from: p((i % 400) as f32, 0.0),
                    to: p((i % 400) as f32, 300.0),
                },
                color: BLUE,
                width: 1.0,
            },
        })
        .collect();
    assert_eq!(big.load(ops, vec![], vec![]), 20_000);
    let now = || web_sys::window().unwrap().performance().unwrap().now();
    let t0 = now();
    big.render();
    let full = now() - t0;
    big.pen(PenInput::Down(p(10.0, 150.0)));
    big.render();
    let t1 = now();
    for i in 0..30 {
        big.pen(PenInput::Move(vec![p(10.0 + i as f32 * 10.0, 150.0)]));
        big.render();
    }
    let per_event = (now() - t1) / 30.0;
    big.pen(PenInput::Up);
    web_sys::console::log_1(
        &format!("full repaint {full:.1} ms, per event {per_event:.2} ms").into(),
    );
    assert!(
        per_event < 16.0 && per_event < full / 3.0,
        "{per_event:.2} ms per event against {full:.1} ms for a full repaint"
    );
    assert_eq!(pixel(&mut big, 200.0, 150.0), rgba(RED));
}

#[wasm_bindgen_test]
fn a_peers_clear_over_the_wire_hides_what_it_saw_and_no_more() {
    let mut alice = board_of("alice", 200, 100, RED);
    let mut bob = board_of("bob", 200, 100, BLUE);
    let drawn = line(&mut alice, 10.0, 190.0, 30.0);
    from_peer(&mut bob, "alice", &ops_text(drawn), &["alice"]).unwrap();
    // Bob draws concurrently: alice has not seen it when she clears.
    let concurrent = line(&mut bob, 10.0, 190.0, 70.0);
    let clear = alice.clear();
    from_peer(&mut bob, "alice", &ops_text(vec![clear]), &["alice"]).unwrap();
    assert_eq!(
        pixel(&mut bob, 100.0, 30.0),
        EMPTY,
        "alice's stroke cleared"
    );
    assert_eq!(pixel(&mut bob, 100.0, 70.0), rgba(BLUE), "bob's survives");
    from_peer(&mut alice, "bob", &ops_text(concurrent), &["bob"]).unwrap();
    assert_eq!(alice.visible_count(), 1);
    assert_eq!(bob.visible_count(), 1);
}

#[wasm_bindgen_test]
fn strokes_of_peers_who_left_mid_stroke_are_committed() {
    let mut board = board(200, 100, RED);
    let unfinished = |author: &str| {
        format!(
            r##"{{"ops":{{"ops":[
            {{"author":"{author}","seq":1,"lamport":1,"op":{{"add":{{"shape":{{"stroke":{{"points":[{{"x":10,"y":50,"p":0.5}}]}}}},"color":"#1971c2","width":4}}}}}},
            {{"author":"{author}","seq":2,"lamport":2,"op":{{"extend":{{"element":1,"points":[{{"x":150,"y":50,"p":0.5}}]}}}}}}
        ]}}}}"##
        )
    };
    // Bob is drawing: his stroke is live.
    from_peer(&mut board, "bob", &signed(&unfinished("bob")), &["bob"]).unwrap();
    assert_eq!(board.live_count(), 1);
    assert_eq!(pixel(&mut board, 80.0, 50.0), rgba(BLUE));
    // Bob leaves mid-stroke: the stroke is committed, and still painted.
    assert_eq!(board.settle_live(|_| false), 1);
    assert_eq!(board.live_count(), 0);
    assert_eq!(pixel(&mut board, 80.0, 50.0), rgba(BLUE));
    // A sync hands over the unfinished stroke of carol, who is gone: committed at once.
    from_peer(&mut board, "bob", &signed(&unfinished("carol")), &["bob"]).unwrap();
    assert_eq!(board.live_count(), 0);
    assert_eq!(board.visible_count(), 2);
}

#[wasm_bindgen_test]
fn a_sync_reply_leaves_out_the_ops_of_peers_the_newcomer_gets_them_from() {
    let mut alice = board_of("alice", 200, 100, RED);
    let mut bob = board_of("bob", 200, 100, BLUE);
    let bobs = line(&mut bob, 10.0, 190.0, 30.0);
    from_peer(&mut alice, "bob", &ops_text(bobs), &["bob"]).unwrap();
    line(&mut alice, 10.0, 190.0, 70.0);
    let nothing = shared::document::VersionVector::default();
    let authors = |batches: Vec<SignedBatch>| {
        let mut authors: Vec<PeerId> = batches
            .into_iter()
            .flat_map(|b| {
                b.ops
                    .into_iter()
                    .map(|op| op.author)
                    .chain(b.proofs.into_iter().map(|p| p.author))
            })
            .collect();
        authors.sort();
        authors.dedup();
        authors
    };
    // Bob gone: his ops go with alice's. Bob here: the newcomer takes his from him alone.
    assert_eq!(
        authors(alice.sync_reply(&nothing, |_| false)),
        vec![id("alice"), id("bob")]
    );
    assert_eq!(
        authors(alice.sync_reply(&nothing, |p| *p == id("bob"))),
        vec![id("alice")]
    );
}
