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
//! - [`peer_message`]: what browsers send each other over WebRTC data channels, and its validation.
//! - [`drawing`]: the drawing document every browser keeps: strokes by id, applied from local input
//!   and from peers, replayable for a full redraw.

pub mod color;
pub mod document;
pub mod drawing;
pub mod geometry;
pub mod peer_message;
pub mod protocol;
pub mod room;
pub mod shapes;
pub mod svg;
pub mod sync;
pub mod view;

pub use color::Color;
pub use drawing::{Drawing, Stroke, StrokeId};
pub use geometry::Point;
pub use peer_message::PeerMessage;
pub use protocol::{PeerId, User};
pub use room::RoomId;
