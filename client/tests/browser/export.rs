//! Export: the drawing as a PNG (painted by the screen's code) and an SVG.

use crate::support::{board, rgba};
use client::board::Board;
use client::canvas::PenInput;
use client::export;
use client::tools::Tool;
use shared::Point;
use shared::color::Color;
use shared::svg::export_frame;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const RED: Color = Color::rgb(0xe0, 0x31, 0x31);
const BLUE: Color = Color::rgb(0x19, 0x71, 0xc2);

fn p(x: f32, y: f32) -> Point {
    Point::new(x, y, 0.5)
}

fn drawing() -> Board {
    let mut board = board(300, 200, RED);
    board.pen(PenInput::Down(p(50.0, 60.0)));
    board.pen(PenInput::Move(vec![p(150.0, 60.0)]));
    board.pen(PenInput::Up);
    board.set_tool(Tool::Rect);
    board.set_color(BLUE);
    board.pen(PenInput::Down(p(100.0, 100.0)));
    board.pen(PenInput::Move(vec![p(200.0, 150.0)]));
    board.pen(PenInput::Up);
    board
}

#[wasm_bindgen_test]
async fn png_export_is_a_png_of_the_framed_drawing() {
    let board = drawing();
    let frame = export_frame(board.doc().visible());
    let canvas = export::png_canvas(board.doc()).unwrap();
    let (w, h) = (canvas.element().width(), canvas.element().height());
    assert_eq!(
        (w, h),
        (frame.width().ceil() as u32, frame.height().ceil() as u32)
    );
    // The stroke's middle, in frame coordinates; white where nothing is drawn.
    let px = |x: f32, y: f32| {
        let d = canvas
            .context()
            .get_image_data(
                f64::from(x - frame.min_x),
                f64::from(y - frame.min_y),
                1.0,
                1.0,
            )
            .unwrap()
            .data();
        [d[0], d[1], d[2], d[3]]
    };
    assert_eq!(px(100.0, 60.0), rgba(RED));
    assert_eq!(px(150.0, 100.0), rgba(BLUE), "rect top edge");
    assert_eq!(
        px(150.0, 125.0),
        [255, 255, 255, 255],
        "inside the outline: white"
    );

    let blob = export::png_blob(canvas).await.unwrap();
    assert_eq!(blob.type_(), "image/png");
    let bytes = JsFuture::from(blob.array_buffer()).await.unwrap();
    let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    assert_eq!((be(16), be(20)), (w, h), "IHDR size");

    // Decoded by the browser, the stroke's colour is in it.
    let window = web_sys::window().unwrap();
    let bitmap: web_sys::ImageBitmap =
        JsFuture::from(window.create_image_bitmap_with_blob(&blob).unwrap())
            .await
            .unwrap()
            .dyn_into()
            .unwrap();
    let check = client::canvas::Canvas::detached(f64::from(w), f64::from(h), 1.0).unwrap();
    check
        .context()
        .draw_image_with_image_bitmap(&bitmap, 0.0, 0.0)
        .unwrap();
    let d = check
        .context()
        .get_image_data(
            f64::from(100.0 - frame.min_x),
            f64::from(60.0 - frame.min_y),
            1.0,
            1.0,
        )
        .unwrap()
        .data();
    assert_eq!([d[0], d[1], d[2], d[3]], rgba(RED));
}

#[wasm_bindgen_test]
async fn svg_export_holds_the_shapes() {
    let board = drawing();
    let blob = export::svg_blob(board.doc()).unwrap();
    assert_eq!(blob.type_(), "image/svg+xml");
    let text = JsFuture::from(blob.text())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    assert!(text.starts_with("<svg"));
    assert!(
        text.contains("#e03131") && text.contains("<rect x=\"100\""),
        "{text}"
    );
}
