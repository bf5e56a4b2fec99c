//! Helpers: canvases on the test page, pixels read back, waiting.

use client::board::Board;
use client::canvas::Canvas;
use shared::PeerId;
use shared::color::Color;
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
    let mut board = Board::new(canvas, PeerId(me.into()), color);
    board.resize(f64::from(width), f64::from(height), 1.0);
    board
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
