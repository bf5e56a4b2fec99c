//! Export and persistence: the drawing as a PNG (painted by the screen's code) and an SVG, and
//! saved to and loaded from localStorage.

use crate::support::{board, pixel, rgba};
use client::board::Board;
use client::canvas::PenInput;
use client::export;
use client::storage::{COMPACT_AFTER_CHUNKS, RoomStore};
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

fn local_storage() -> web_sys::Storage {
    web_sys::window().unwrap().local_storage().unwrap().unwrap()
}

/// The stored entries of a test room: (key, number of ops in it).
fn stored(base: &str) -> Vec<(String, usize)> {
    let storage = local_storage();
    let mut entries: Vec<(String, usize)> = (0..storage.length().unwrap())
        .filter_map(|i| storage.key(i).unwrap())
        .filter(|k| k == base || k.starts_with(&format!("{base}~")))
        .map(|k| {
            let text = storage.get_item(&k).unwrap().unwrap();
            let ops: Vec<shared::document::Op> = client::wire::decode(&text).unwrap();
            (k, ops.len())
        })
        .collect();
    entries.sort();
    entries
}

#[wasm_bindgen_test]
fn the_drawing_survives_a_save_and_load() {
    let base = "drawmesh:test:round-trip";
    let mut board = drawing();
    let mut store = RoomStore::new(base.to_owned());
    store.remove_all().unwrap();
    assert_eq!(store.save(board.doc()).unwrap(), board.doc().op_count());

    let mut restored = crate::support::board(300, 200, RED);
    let ops = RoomStore::new(base.to_owned()).load().unwrap();
    assert_eq!(restored.load(ops), board.doc().op_count());
    assert_eq!(
        restored.doc().version_vector(),
        board.doc().version_vector()
    );
    assert_eq!(restored.visible_count(), 2);
    assert_eq!(pixel(&mut restored, 100.0, 60.0), rgba(RED));
    assert_eq!(pixel(&mut restored, 150.0, 100.0), rgba(BLUE));
    assert_eq!(pixel(&mut board, 100.0, 60.0), rgba(RED));

    // A tampered op is skipped, the rest still load.
    let (key, _) = stored(base).pop().unwrap();
    let text = local_storage().get_item(&key).unwrap().unwrap();
    // The rectangle's add is the last op: only it goes (an author's later ops would wait for
    // an earlier one that never comes).
    let at = text.rfind("\"width\":4").unwrap();
    let tampered = format!("{}\"width\":999{}", &text[..at], &text[at + 9..]);
    assert_ne!(tampered, text);
    local_storage().set_item(&key, &tampered).unwrap();
    let mut partial = crate::support::board(300, 200, RED);
    partial.load(RoomStore::new(base.to_owned()).load().unwrap());
    assert_eq!(
        partial.visible_count(),
        1,
        "the rectangle's add was skipped"
    );
    assert_eq!(pixel(&mut partial, 100.0, 60.0), rgba(RED));
    assert_eq!(pixel(&mut partial, 150.0, 100.0), [0, 0, 0, 0]);

    store.remove_all().unwrap();
    assert!(
        RoomStore::new(base.to_owned()).load().unwrap().is_empty(),
        "nothing stored: nothing loaded"
    );
}

#[wasm_bindgen_test]
fn a_save_writes_only_what_changed_and_tabs_do_not_collide() {
    let base = "drawmesh:test:append";
    let mut board = drawing();
    let mut tab_a = RoomStore::new(base.to_owned());
    tab_a.remove_all().unwrap();
    let first = board.doc().op_count();
    assert_eq!(tab_a.save(board.doc()).unwrap(), first);
    assert_eq!(
        tab_a.save(board.doc()).unwrap(),
        0,
        "nothing new: nothing written"
    );
    assert_eq!(stored(base).len(), 1);

    // One more stroke: the next save writes its ops alone, in a new chunk.
    crate::support::drag(&mut board, (10.0, 10.0), (20.0, 10.0));
    let added = board.doc().op_count() - first;
    assert!(added > 0);
    assert_eq!(tab_a.save(board.doc()).unwrap(), added);
    let counts: Vec<usize> = stored(base).iter().map(|(_, n)| *n).collect();
    assert_eq!(counts, vec![first, added]);

    // A second tab of the same room saving its own drawing adds chunks, never overwrites.
    let mut other = crate::support::board_of("other-tab", 300, 200, BLUE);
    crate::support::drag(&mut other, (50.0, 50.0), (60.0, 50.0));
    let mut tab_b = RoomStore::new(base.to_owned());
    tab_b.save(other.doc()).unwrap();
    assert_eq!(stored(base).len(), 3);
    let mut everyone = crate::support::board(300, 200, RED);
    everyone.load(RoomStore::new(base.to_owned()).load().unwrap());
    assert_eq!(
        everyone.doc().op_count(),
        board.doc().op_count() + other.doc().op_count()
    );
    tab_a.remove_all().unwrap();
}

#[wasm_bindgen_test]
fn many_chunks_are_compacted_into_the_base_on_load() {
    let base = "drawmesh:test:compact";
    let mut board = crate::support::board(300, 200, RED);
    let mut store = RoomStore::new(base.to_owned());
    store.remove_all().unwrap();
    for i in 0..(COMPACT_AFTER_CHUNKS + 2) {
        let x = 10.0 + i as f32 * 5.0;
        crate::support::drag(&mut board, (x, 10.0), (x, 30.0));
        store.save(board.doc()).unwrap();
    }
    assert_eq!(stored(base).len(), COMPACT_AFTER_CHUNKS + 2);

    let mut reader = RoomStore::new(base.to_owned());
    let mut restored = crate::support::board(300, 200, RED);
    restored.load(reader.load().unwrap());
    reader.loaded_into(restored.doc()).unwrap();
    let after = stored(base);
    assert_eq!(
        after,
        vec![(base.to_owned(), board.doc().op_count())],
        "one base with every op"
    );
    assert_eq!(
        reader.save(restored.doc()).unwrap(),
        0,
        "what was loaded counts as saved"
    );
    reader.remove_all().unwrap();
}
