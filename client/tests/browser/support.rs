//! Helpers: canvases on the test page, pixels read back, waiting.

use client::board::Board;
use client::board::{ReceiveError, Received};
use client::canvas::Canvas;
use client::wire;
use shared::PeerId;
use shared::color::Color;
use shared::signing::{Certificate, Keypair};
use shared::sync::ChannelMessage;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Element, HtmlCanvasElement};

pub fn document() -> web_sys::Document {
    web_sys::window().unwrap().document().unwrap()
}

/// A fresh element of `tag` in the body, placed at the page's top-left corner with a fixed CSS
/// size, so test positions are predictable.
pub fn element(tag: &str, css: &str) -> Element {
    let el = document().create_element(tag).unwrap();
    el.set_attribute("style", &format!("position:fixed;left:0;top:0;{css}"))
        .unwrap();
    document().body().unwrap().append_child(&el).unwrap();
    el
}

/// A board on a new `width` × `height` CSS-pixel canvas with one device pixel per CSS pixel.
pub fn board(width: u32, height: u32, color: Color) -> Board {
    board_of("me", width, height, color)
}

/// The same, drawing as `me`.
pub fn board_of(me: &str, width: u32, height: u32, color: Color) -> Board {
    let el: HtmlCanvasElement = element("canvas", &format!("width:{width}px;height:{height}px"))
        .dyn_into()
        .unwrap();
    let canvas = Canvas::new(el).unwrap();
    let mut board = Board::new(canvas, key_of(me), color);
    board.trust_server(test_server().public());
    board.set_me(PeerId(me.into()));
    board.certify(cert_of(me));
    board.resize(f64::from(width), f64::from(height), 1.0);
    board
}

/// The signaling server the test boards trust.
pub fn test_server() -> Keypair {
    Keypair::derive(b"drawmesh certificate key", b"test server")
}

/// The signing key of the test user `name` (the same for every board of that name).
pub fn key_of(name: &str) -> Keypair {
    let mut seed = [0u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    seed[31] ^= name.len() as u8;
    Keypair::from_seed(seed)
}

/// The test server's certificate of `name`'s key.
pub fn cert_of(name: &str) -> Certificate {
    Certificate::issue(&test_server(), PeerId(name.into()), key_of(name).public())
}

/// The RGBA of the device pixel at (`x`, `y`) of what the next frame shows.
pub fn pixel(board: &mut Board, x: f64, y: f64) -> [u8; 4] {
    board.render();
    let data = board
        .canvas()
        .context()
        .get_image_data(x, y, 1.0, 1.0)
        .unwrap()
        .data();
    [data[0], data[1], data[2], data[3]]
}

/// The RGBA at CSS position (`x`, `y`), whatever the pixel ratio.
pub fn pixel_at_css(board: &mut Board, x: f64, y: f64) -> [u8; 4] {
    let ratio = board.canvas().pixel_ratio();
    pixel(board, (x * ratio).floor(), (y * ratio).floor())
}

/// How many pixels of the next frame are not fully transparent.
pub fn painted_pixels(board: &mut Board) -> usize {
    board.render();
    let el = board.canvas().element();
    let (w, h) = (f64::from(el.width()), f64::from(el.height()));
    let data = board
        .canvas()
        .context()
        .get_image_data(0.0, 0.0, w, h)
        .unwrap()
        .data();
    data.chunks(4).filter(|px| px[3] != 0).count()
}

pub fn rgba(c: Color) -> [u8; 4] {
    [c.r, c.g, c.b, 255]
}

pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        web_sys::window()
            .unwrap()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms)
            .unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

/// Waits up to `ms` for `done` to hold; returns whether it did.
pub async fn wait_for(ms: i32, mut done: impl FnMut() -> bool) -> bool {
    let mut waited = 0;
    while !done() {
        if waited >= ms {
            return false;
        }
        sleep(20).await;
        waited += 20;
    }
    true
}

/// Drags from (x0, y0) to (x1, y1) through their midpoint with the board's current tool.
pub fn drag(
    board: &mut client::board::Board,
    (x0, y0): (f32, f32),
    (x1, y1): (f32, f32),
) -> Vec<shared::document::Op> {
    use client::canvas::PenInput;
    let p = |x, y| shared::Point::new(x, y, 0.5);
    let mut out = board.pen(PenInput::Down(p(x0, y0)));
    out.extend(board.pen(PenInput::Move(vec![p((x0 + x1) / 2.0, (y0 + y1) / 2.0)])));
    out.extend(board.pen(PenInput::Move(vec![p(x1, y1)])));
    out.extend(board.pen(PenInput::Up));
    out
}

/// A peer's text on its channel, with `present` the peers signaling knows. The peer has said
/// hello with its certificate first, as every peer does when its channel opens.
pub fn from_peer(
    board: &mut Board,
    from: &str,
    text: &str,
    present: &[&str],
) -> Result<Received, ReceiveError> {
    from_peer_data(board, from, &JsValue::from_str(text), present)
}

/// [`from_peer`] for any data a channel can deliver (an `ArrayBuffer`: a packed sync).
pub fn from_peer_data(
    board: &mut Board,
    from: &str,
    data: &JsValue,
    present: &[&str],
) -> Result<Received, ReceiveError> {
    let present: Vec<PeerId> = present.iter().map(|s| PeerId((*s).into())).collect();
    let hello = wire::encode(&ChannelMessage::Hello {
        have: Default::default(),
        cert: Some(cert_of(from)),
        packed: false,
    })
    .unwrap();
    board
        .receive(&PeerId(from.into()), &JsValue::from_str(&hello), |p| {
            present.contains(p)
        })
        .unwrap();
    board.receive(&PeerId(from.into()), data, |p| present.contains(p))
}
