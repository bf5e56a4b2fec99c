//! The board: local strokes, peer messages and resizes all end up as real pixels.

use crate::support::{board, painted_pixels, pixel, pixel_at_css, rgba};
use client::board::{Board, ReceiveError};
use client::canvas::PenInput;
use shared::color::Color;
use shared::drawing::{Applied, Ignored};
use shared::peer_message::{MAX_PEER_MESSAGE_BYTES, PeerMessageError};
use shared::{PeerId, PeerMessage, Point};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

const RED: Color = Color::rgb(0xe0, 0x31, 0x31);
const BLUE: Color = Color::rgb(0x19, 0x71, 0xc2);
const EMPTY: [u8; 4] = [0, 0, 0, 0];

fn p(x: f32, y: f32) -> Point {
    Point::new(x, y, 0.5)
}

/// Draws a horizontal line from (x0, y) to (x1, y) with the local pen.
fn line(board: &mut Board, x0: f32, x1: f32, y: f32) -> Vec<PeerMessage> {
    let mut out = board.pen(PenInput::Down(p(x0, y)));
    out.extend(board.pen(PenInput::Move(vec![p((x0 + x1) / 2.0, y), p(x1, y)])));
    out.extend(board.pen(PenInput::Up));
    out
}

fn peer_text(board: &mut Board, from: &str, text: &str) -> Result<Applied, ReceiveError> {
    board.receive(&PeerId(from.into()), &JsValue::from_str(text))
}

#[wasm_bindgen_test]
fn a_local_stroke_paints_pixels_and_yields_the_messages_to_broadcast() {
    let mut board = board(200, 100, RED);
    assert_eq!(painted_pixels(&board), 0);
    let messages = line(&mut board, 10.0, 150.0, 50.0);

    assert_eq!(pixel(&board, 80.0, 50.0), rgba(RED), "on the line");
    assert_eq!(pixel(&board, 149.0, 50.0), rgba(RED), "near its end");
    assert_eq!(pixel(&board, 80.0, 60.0), EMPTY, "5 px off a 4 px line");
    assert_eq!(pixel(&board, 180.0, 50.0), EMPTY, "past its end");

    assert_eq!(
        messages,
        vec![
            PeerMessage::StrokeBegin {
                seq: 0,
                color: RED,
                width: 4.0,
                point: p(10.0, 50.0)
            },
            PeerMessage::StrokePoints {
                seq: 0,
                points: vec![p(80.0, 50.0), p(150.0, 50.0)]
            },
            PeerMessage::StrokeEnd { seq: 0 },
        ]
    );
    // The next stroke gets the next sequence number and the newly picked colour.
    board.set_color(BLUE);
    let second = line(&mut board, 10.0, 150.0, 20.0);
    assert!(matches!(
        second[0],
        PeerMessage::StrokeBegin {
            seq: 1,
            color: BLUE,
            ..
        }
    ));
    assert_eq!(pixel(&board, 80.0, 20.0), rgba(BLUE));
    assert_eq!(board.drawing().strokes().len(), 2);
    assert!(board.drawing().strokes().iter().all(|s| s.finished));
}

#[wasm_bindgen_test]
fn a_click_leaves_a_dot() {
    let mut board = board(100, 100, RED);
    board.pen(PenInput::Down(p(40.0, 40.0)));
    board.pen(PenInput::Up);
    assert_eq!(pixel(&board, 40.0, 40.0), rgba(RED));
    assert_eq!(pixel(&board, 46.0, 40.0), EMPTY);
}

#[wasm_bindgen_test]
fn moves_without_a_stroke_send_nothing() {
    let mut board = board(100, 100, RED);
    assert!(board.pen(PenInput::Move(vec![p(1.0, 1.0)])).is_empty());
    assert!(board.pen(PenInput::Up).is_empty());
    assert_eq!(painted_pixels(&board), 0);
}

#[wasm_bindgen_test]
fn a_peer_message_draws_through_the_channel_path() {
    let mut board = board(200, 100, RED);
    let begin = r##"{"type":"stroke-begin","seq":7,"color":"#1971c2","width":6,"point":{"x":20,"y":30,"p":0.5}}"##;
    assert_eq!(
        peer_text(&mut board, "bob", begin),
        Ok(Applied::Drawn { index: 0, from: 0 })
    );
    let points = r#"{"type":"stroke-points","seq":7,"points":[{"x":100,"y":30,"p":0.5},{"x":180,"y":30,"p":1}]}"#;
    assert_eq!(
        peer_text(&mut board, "bob", points),
        Ok(Applied::Drawn { index: 0, from: 1 })
    );
    assert_eq!(
        peer_text(&mut board, "bob", r#"{"type":"stroke-end","seq":7}"#),
        Ok(Applied::Finished)
    );

    assert_eq!(pixel(&board, 60.0, 30.0), rgba(BLUE));
    assert_eq!(pixel(&board, 140.0, 30.0), rgba(BLUE));
    assert_eq!(pixel(&board, 60.0, 40.0), EMPTY);
    let stroke = &board.drawing().strokes()[0];
    assert_eq!(
        stroke.id.author,
        PeerId("bob".into()),
        "the author is the channel's peer"
    );
}

#[wasm_bindgen_test]
fn bad_peer_messages_are_dropped_without_painting() {
    let mut board = board(200, 100, RED);
    let huge = format!(
        r##"{{"type":"stroke-begin","seq":1,"color":"#e03131","width":4,"point":{{"x":50,"y":50,"p":0.5}}}}{}"##,
        " ".repeat(MAX_PEER_MESSAGE_BYTES)
    );
    let bad = [
        "not json",
        "",
        "null",
        "[1,2,3]",
        r#"{"type":"explode"}"#,
        r#"{"type":"stroke-begin","seq":1}"#,
        r##"{"type":"stroke-begin","seq":-1,"color":"#e03131","width":4,"point":{"x":50,"y":50,"p":0.5}}"##,
        r##"{"type":"stroke-begin","seq":1,"color":"red","width":4,"point":{"x":50,"y":50,"p":0.5}}"##,
        r##"{"type":"stroke-begin","seq":1,"color":"#e03131","width":1000,"point":{"x":50,"y":50,"p":0.5}}"##,
        r##"{"type":"stroke-begin","seq":1,"color":"#e03131","width":4,"point":{"x":5e9,"y":50,"p":0.5}}"##,
        r##"{"type":"stroke-begin","seq":1,"color":"#e03131","width":4,"point":{"x":50,"y":50,"p":2}}"##,
        huge.as_str(),
    ];
    for text in bad {
        let result = peer_text(&mut board, "mallory", text);
        assert!(result.is_err(), "accepted {:.80}: {result:?}", text);
    }
    assert_eq!(
        peer_text(&mut board, "mallory", &huge),
        Err(ReceiveError::Rejected(PeerMessageError::TooLarge(
            huge.len()
        )))
    );
    let binary = js_sys::Uint8Array::from(&b"{}"[..]);
    assert_eq!(
        board.receive(&PeerId("mallory".into()), &binary.into()),
        Err(ReceiveError::NotText)
    );
    // Well-formed but pointless: points and ends for strokes never begun.
    let stray = r#"{"type":"stroke-points","seq":99,"points":[{"x":10,"y":10,"p":0.5}]}"#;
    assert_eq!(
        peer_text(&mut board, "mallory", stray),
        Ok(Applied::Ignored(Ignored::UnknownStroke))
    );
    let empty = r#"{"type":"stroke-points","seq":99,"points":[]}"#;
    assert!(peer_text(&mut board, "mallory", empty).is_err());

    assert_eq!(painted_pixels(&board), 0, "nothing painted");
    assert!(board.drawing().strokes().is_empty());
}

#[wasm_bindgen_test]
fn a_peer_cannot_extend_somebody_elses_stroke() {
    let mut board = board(200, 100, RED);
    line(&mut board, 10.0, 20.0, 50.0);
    board.pen(PenInput::Down(p(10.0, 80.0))); // my stroke 1, still open
    // Mallory names my sequence number; it files under her own id and finds nothing.
    let hijack = r#"{"type":"stroke-points","seq":1,"points":[{"x":190,"y":80,"p":0.5}]}"#;
    assert_eq!(
        peer_text(&mut board, "mallory", hijack),
        Ok(Applied::Ignored(Ignored::UnknownStroke))
    );
    assert_eq!(pixel(&board, 150.0, 80.0), EMPTY);
}

#[wasm_bindgen_test]
fn resizing_repaints_the_drawing_at_the_same_css_position() {
    let mut board = board(200, 100, RED);
    line(&mut board, 20.0, 120.0, 40.0);
    peer_text(
        &mut board,
        "bob",
        r##"{"type":"stroke-begin","seq":0,"color":"#1971c2","width":4,"point":{"x":150,"y":80,"p":0.5}}"##,
    )
    .unwrap();
    assert_eq!(pixel_at_css(&board, 70.0, 40.0), rgba(RED));

    // Bigger, and on a HiDPI screen: the backing store doubles, the drawing stays put.
    board.resize(300.0, 150.0, 2.0);
    assert_eq!(board.canvas().element().width(), 600);
    assert_eq!(board.canvas().element().height(), 300);
    assert_eq!(
        pixel(&board, 140.0, 80.0),
        rgba(RED),
        "device pixel of CSS (70, 40)"
    );
    assert_eq!(pixel_at_css(&board, 119.0, 40.0), rgba(RED));
    assert_eq!(
        pixel_at_css(&board, 150.0, 80.0),
        rgba(BLUE),
        "the peer's dot too"
    );
    assert_eq!(pixel_at_css(&board, 70.0, 60.0), EMPTY);

    // Smaller than the drawing: what still fits is still there.
    board.resize(100.0, 50.0, 1.0);
    assert_eq!(pixel_at_css(&board, 70.0, 40.0), rgba(RED));
}

#[wasm_bindgen_test]
fn fit_follows_the_elements_css_box() {
    let mut board = board(200, 100, RED);
    line(&mut board, 20.0, 120.0, 40.0);
    board
        .canvas()
        .element()
        .style()
        .set_property("width", "320px")
        .unwrap();
    board.fit();
    let ratio = web_sys::window().unwrap().device_pixel_ratio();
    assert_eq!(board.canvas().css_size(), (320.0, 100.0));
    assert_eq!(
        board.canvas().element().width(),
        (320.0 * ratio).round() as u32
    );
    assert_eq!(pixel_at_css(&board, 70.0, 40.0), rgba(RED));
}
