//! Drawmesh's shared crate: the wire types both sides speak and the pure logic both sides run.
//!
//! It knows neither side (no axum, no web-sys) and depends on serde alone, so everything here is
//! tested natively with `cargo test -p shared`.
//!
//! Module map:
//! - [`protocol`]: the signaling protocol over HTTP + Server-Sent Events (the tutorial's wire
//!   format): access tokens, SSE events (`connected`, `add-peer`, `remove-peer`, relayed events),
//!   relay bodies (session descriptions, ICE candidates), the client config, error bodies.
//! - [`room`]: room ids (random, URL-safe, validated on the way in).
//! - [`color`]: `#rrggbb` colours and the swatch palette.
//! - [`geometry`]: points with pressure, stroke widths, bounds checks.
//! - [`document`]: the replicated drawing document every browser keeps: ops with unique ids,
//!   version vectors, erase, clear, per-user undo and redo; replicas converge whatever the order.
//! - [`sync`]: what browsers send each other over WebRTC data channels (hello, ops, cursors, pings), its
//!   validation, and whose ops a peer may hand us.
//! - [`packed`]: the compact binary encoding of `ops` messages, for syncs to peers that take it.
//! - [`link`]: the health of the link to one peer: timeouts, ICE restarts, renegotiation, pings,
//!   and what the people list shows (direct, relayed, unreachable and why).
//! - [`signing`]: who wrote an op: Ed25519 keys, server certificates, hash-chained proofs, and
//!   the ledger that admits a peer's ops only when their author's signature covers them.
//! - [`shapes`]: element bounds, the eraser's hit test, the ellipse outline and text metrics.
//! - [`spatial`]: a grid over the drawing: what a view shows and what an eraser touches, found
//!   near them.
//! - [`view`]: pan and zoom, mapping drawing coordinates to the canvas's CSS pixels.
//! - [`pointer`]: which pointer draws: one at a time, a pen before any finger (palm rejection).
//! - [`svg`]: export of the visible elements as SVG, and the export frame.

pub mod color;
pub mod document;
pub mod geometry;
pub mod link;
pub mod packed;
pub mod pointer;
pub mod protocol;
pub mod room;
pub mod shapes;
pub mod signing;
pub mod spatial;
pub mod svg;
pub mod sync;
pub mod view;

pub use color::Color;
pub use geometry::Point;
pub use protocol::{PeerId, User};
pub use room::RoomId;
