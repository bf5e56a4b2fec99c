//! Drawmesh's browser client: Rust compiled to wasm, thin glue between the browser and `shared`.
//!
//! Data flows one way: local input → an [`Op`](shared::document::Op) made on my
//! [`Replica`](shared::document::Replica) → painted and broadcast; a peer's op → checked →
//! integrated into the same document → painted. When a channel opens, the two sides swap
//! version vectors and each sends what the other lacks, so everybody converges on one drawing.
//!
//! Module map:
//! - [`app`]: wires the pieces together for one page: who I am, which room, the session's life,
//!   keyboard shortcuts, the animation frame, saving.
//! - [`ui`]: the menubar (tools, width, palette and custom colour, undo/redo, clear, export,
//!   zoom, my name, peers present, status), the text input and the clear dialog.
//! - [`tools`]: the drawing tools and the sizes they derive from the width slider.
//! - [`canvas`]: the HiDPI `<canvas>`, the one painting code for screen and export, and the pen
//!   input on a canvas.
//! - [`gestures`]: wheel and pinch zoom, middle-button and two-finger pan, hover.
//! - [`board`]: my replica on its canvas: tools make ops, peers' ops are checked and integrated,
//!   a committed layer plus a per-frame active layer paint them, sync replies are cut.
//! - [`presence`]: peers' colours and their live cursors over the canvas.
//! - [`storage`]: the room's drawing saved in IndexedDB: append-only records, compaction, the
//!   move out of the old `localStorage` copy, persistence requested.
//! - [`export`]: PNG and SVG downloads of the drawing.
//! - [`location`]: the room, my name and `?ice=relay`, from the page's address.
//! - [`signaling`]: the server side of the conversation: access token, config, the SSE stream,
//!   join, relay POSTs.
//! - [`mesh`]: one `RTCPeerConnection` per peer with a reliable `drawing` channel and an
//!   unreliable `cursors` channel, ICE queueing, paced sending. Each peer owns its callbacks and
//!   drops them when it leaves.
//! - [`mailbox`]: callbacks post messages; one pump hands them to the app, in order.
//! - [`dom`]: window and document access; event listeners and timeouts owned by a handle.
//! - [`wire`]: JSON encoding and decoding, in one place.

pub mod app;
pub mod board;
pub mod canvas;
pub mod dom;
pub mod export;
pub mod gestures;
pub mod location;
pub mod mailbox;
pub mod mesh;
pub mod presence;
pub mod signaling;
pub mod storage;
pub mod tools;
pub mod ui;
pub mod wire;

use wasm_bindgen::prelude::*;

/// The id of the element the app mounts into. Pages without it (the wasm test runner's, say) get
/// no app, so linking this crate into tests starts nothing.
pub const MOUNT_ID: &str = "app";

/// Runs once when the wasm module loads.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let mount = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(MOUNT_ID));
    if let Some(mount) = mount
        && let Err(err) = app::App::launch(&mount)
    {
        web_sys::console::error_2(&"Drawmesh failed to start:".into(), &err);
    }
}
