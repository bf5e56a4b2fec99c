//! Drawmesh's browser client: Rust compiled to wasm, thin glue between the browser and `shared`.
//!
//! Data flows one way: pointer input → [`PeerMessage`](shared::PeerMessage) → local
//! [`Drawing`](shared::Drawing) → paint and broadcast; a peer's message → the same drawing →
//! paint.
//!
//! Module map:
//! - [`app`]: wires the pieces together for one page: who I am, which room, the session's life.
//! - [`ui`]: the menubar (tool, palette, current colour, my name, peers present, status).
//! - [`canvas`]: the HiDPI `<canvas>` that paints strokes, and the pointer input on it.
//! - [`board`]: the drawing document glue: local input and peer data in, strokes painted and
//!   messages out, every peer message checked before it touches the drawing.
//! - [`signaling`]: the server side of the conversation: access token, config, the SSE stream,
//!   join, relay POSTs.
//! - [`mesh`]: one `RTCPeerConnection` and `drawing` data channel per peer, ICE queueing,
//!   broadcast. Each peer owns its callbacks and drops them when it leaves.
//! - [`dom`]: window and document access, event listeners owned by a handle.
//! - [`wire`]: JSON encoding and decoding, in one place.

pub mod app;
pub mod board;
pub mod canvas;
pub mod dom;
pub mod mesh;
pub mod signaling;
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
