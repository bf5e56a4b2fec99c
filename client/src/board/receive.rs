//! What arrives on a peer's channel, checked before anything of it reaches the model.
//!
//! Text is JSON; an `ArrayBuffer` is a packed `ops` message ([`shared::packed`]), what a sync
//! sends a peer whose hello said it takes them.
//!
//! Everything from a peer is untrusted: its size is checked before it is copied or parsed, its
//! fields are bounded by [`ChannelMessage::validate`], an op is only considered when
//! [`accept_op`] allows its author to reach us through that peer, and only integrated when the
//! ledger finds it signed by its author (see [`shared::signing`]).

use super::model::Model;
use super::render::Renderer;
use crate::wire;
use shared::PeerId;
use shared::color::Color;
use shared::document::{Op, VersionVector};
use shared::packed;
use shared::signing::TrustError;
use shared::sync::{ChannelMessage, MAX_MESSAGE_BYTES, MessageError, accept_op};
use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// Why a peer's data was dropped.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiveError {
    /// Neither text (JSON) nor an `ArrayBuffer` (a packed sync): a `Blob`, say.
    Unreadable,
    /// The message failed a check (size, shape or bounds).
    Rejected(MessageError),
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::Unreadable => f.write_str("neither text nor an ArrayBuffer"),
            ReceiveError::Rejected(why) => why.fmt(f),
        }
    }
}

impl std::error::Error for ReceiveError {}

/// What a checked peer message asks of the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// The peer's summary: answer with [`Board::sync_reply`].
    Hello {
        /// What it has.
        have: VersionVector,
        /// It takes syncs packed ([`shared::packed`]).
        packed: bool,
    },
    /// Ops, integrated (or dropped, when their author may not reach us through this peer, or
    /// their signature does not check, or the document refuses them).
    Ops {
        /// Ops the document integrated (duplicates and parked ops count 0).
        integrated: usize,
        /// Ops refused.
        dropped: usize,
    },
    /// A liveness ping: nothing to do.
    Ping,
    /// Where the peer's pointer is, in world coordinates.
    Cursor {
        /// The position, or none when it left the canvas.
        at: Option<(f32, f32)>,
        /// The peer's colour.
        color: Color,
    },
}

/// Takes data that arrived on `from`'s channel (see [`Board::receive`](super::Board::receive)).
pub(super) fn receive(
    model: &mut Model,
    out: &mut Renderer,
    from: &PeerId,
    data: &JsValue,
    in_room: impl Fn(&PeerId) -> bool,
) -> Result<Received, ReceiveError> {
    if let Some(buffer) = data.dyn_ref::<js_sys::ArrayBuffer>() {
        // Measured before it is copied into wasm memory.
        ChannelMessage::check_size(buffer.byte_length() as usize)
            .map_err(ReceiveError::Rejected)?;
        let bytes = js_sys::Uint8Array::new(buffer).to_vec();
        let message = packed::decode(&bytes).map_err(ReceiveError::Rejected)?;
        return receive_message(model, out, from, message, in_room);
    }
    let Some(text) = data.dyn_ref::<js_sys::JsString>() else {
        return Err(ReceiveError::Unreadable);
    };
    // A UTF-8 encoding is never shorter than the UTF-16 one, so a string over the limit in
    // UTF-16 units is over it in bytes too: refuse it before copying it into wasm memory.
    let units = text.length() as usize;
    if units > MAX_MESSAGE_BYTES {
        return Err(ReceiveError::Rejected(MessageError::TooLarge(units)));
    }
    receive_text(model, out, from, &String::from(text), in_room)
}

/// Checks a peer's JSON text and acts on it.
fn receive_text(
    model: &mut Model,
    out: &mut Renderer,
    from: &PeerId,
    text: &str,
    in_room: impl Fn(&PeerId) -> bool,
) -> Result<Received, ReceiveError> {
    ChannelMessage::check_size(text.len()).map_err(ReceiveError::Rejected)?;
    let message: ChannelMessage =
        wire::decode(text).map_err(|why| ReceiveError::Rejected(MessageError::Malformed(why)))?;
    receive_message(model, out, from, message, in_room)
}

/// Checks a decoded message's bounds and acts on it.
fn receive_message(
    model: &mut Model,
    out: &mut Renderer,
    from: &PeerId,
    message: ChannelMessage,
    in_room: impl Fn(&PeerId) -> bool,
) -> Result<Received, ReceiveError> {
    message.validate().map_err(ReceiveError::Rejected)?;
    Ok(match message {
        ChannelMessage::Hello { have, cert, packed } => {
            match cert {
                Some(cert) if cert.peer == *from => {
                    if let Err(why) = model.learn(&cert) {
                        crate::dom::warn(&format!("{from}'s certificate refused: {why}"));
                    }
                }
                Some(_) => crate::dom::warn(&format!("{from} sent someone else's certificate")),
                None => crate::dom::warn(&format!("{from} sent no certificate")),
            }
            Received::Hello { have, packed }
        }
        ChannelMessage::Cursor { at, color } => Received::Cursor { at, color },
        // The mesh answers pings itself; one that gets here means nothing.
        ChannelMessage::Ping => Received::Ping,
        ChannelMessage::Ops { ops, proofs, certs } => {
            let before = ops.len();
            let me = model.me();
            let ops: Vec<Op> = ops
                .into_iter()
                .filter(|op| accept_op(me, from, &op.author, &in_room))
                .collect();
            let mut dropped = before - ops.len();
            if dropped > 0 {
                crate::dom::warn(&format!(
                    "dropped {dropped} op(s) {from} may not hand over (their authors are \
                         here, or me)"
                ));
            }
            let admission = model.admit(from, ops, proofs, certs);
            // One line per reason, however many authors: a message may name thousands.
            let mut reasons: Vec<(&TrustError, usize, Vec<&PeerId>)> = Vec::new();
            for (author, count, why) in &admission.refused {
                dropped += count;
                match reasons.iter_mut().find(|(w, _, _)| *w == why) {
                    Some((_, n, authors)) => {
                        *n += count;
                        authors.push(author);
                    }
                    None => reasons.push((why, *count, vec![author])),
                }
            }
            for (why, count, authors) in reasons {
                let by = match authors.as_slice() {
                    [one] => one.to_string(),
                    many => format!("{} authors", many.len()),
                };
                crate::dom::warn(&format!("dropped {count} op(s) by {by} from {from}: {why}"));
            }
            let integrated = admission.changes.integrated;
            out.absorb(admission.changes, model.doc());
            // A sync can carry the unfinished stroke of someone who left mid-stroke.
            out.settle_live(model.doc(), model.me(), &in_room);
            Received::Ops {
                integrated,
                dropped,
            }
        }
    })
}
