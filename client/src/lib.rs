//! Drawmesh's browser client: Rust compiled to wasm, thin glue between the browser and `shared`.
//!
//! Data flows one way: local input → an [`Op`](shared::document::Op) made on my
//! [`Replica`](shared::document::Replica) → painted and broadcast; a peer's op → checked →
//! integrated into the same document → painted. When a channel opens, the two sides swap
//! version vectors and each sends what the other lacks, so everybody converges on one drawing.
//!
//! Module map:
//! - [`app`]: one page's parts and the wiring between them: who gets which message.
//! - [`mailbox`]: every callback posts a message; one pump hands them to the app in order.
//! - [`location`]: the room, my name and `?ice=relay`, from the page's address.
//! - [`session`]: signing in, the stream, token renewal, signing in again with back-off.
//! - [`peers`]: my ops and cursor out, peers' messages in, hellos and syncs, who is here.
//! - [`input`]: pen, gestures, shortcuts, tools and the text tool, turned into ops.
//! - [`scheduler`]: one paint per animation frame; saving after changes, loading at start.
//! - [`board`]: my replica (model), its canvas layers (renderer), the tools' state machine.
//! - The browser, wrapped: [`mesh`] (WebRTC), [`signaling`] (the server's API), [`storage`],
//!   [`canvas`], [`gestures`], [`ui`], [`presence`], [`export`], [`tools`], [`dom`], [`wire`].

pub mod app;
pub mod board;
pub mod canvas;
pub mod dom;
pub mod export;
pub mod gestures;
pub mod input;
pub mod location;
pub mod mailbox;
pub mod mesh;
pub mod peers;
pub mod presence;
pub mod scheduler;
pub mod session;
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
