//! The board: the drawing document on its canvas. Local pen input and peer data both become
//! [`PeerMessage`]s applied to the same [`Drawing`]; whatever the document reports as new is
//! painted at once, and the whole document is repainted after a resize.
//!
//! Everything from a peer is untrusted: its size is checked before it is copied or parsed, its
//! fields are bounded by [`PeerMessage::validate`], and its author is the peer whose channel it
//! came in on, never a name inside the message.

use crate::canvas::{Canvas, PenInput};
use crate::wire;
use shared::color::Color;
use shared::drawing::{Applied, Drawing};
use shared::peer_message::{MAX_PEER_MESSAGE_BYTES, MAX_POINTS_PER_MESSAGE, PeerMessageError};
use shared::{PeerId, PeerMessage};
use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// Base width of a pen stroke in CSS pixels (a mouse draws exactly this wide).
pub const PEN_WIDTH: f32 = 4.0;

/// Why a peer's data was dropped.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiveError {
    /// Binary data: the `drawing` channel carries JSON text only.
    NotText,
    /// The message failed a check (size, shape or bounds).
    Rejected(PeerMessageError),
}

impl fmt::Display for ReceiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReceiveError::NotText => f.write_str("binary message on a text channel"),
            ReceiveError::Rejected(why) => why.fmt(f),
        }
    }
}

impl std::error::Error for ReceiveError {}

/// The document, the canvas it is painted on, and the local pen's state.
pub struct Board {
    canvas: Canvas,
    drawing: Drawing,
    me: PeerId,
    color: Color,
    next_seq: u64,
    /// The stroke the local pen is drawing, under the author id it began with (the id may be
    /// learnt from the server mid-stroke).
    drawing_now: Option<(PeerId, u64)>,
}

impl Board {
    /// An empty board on `canvas`, drawing as `me` in `color`.
    pub fn new(canvas: Canvas, me: PeerId, color: Color) -> Board {
        Board {
            canvas,
            drawing: Drawing::new(),
            me,
            color,
            next_seq: 0,
            drawing_now: None,
        }
    }

    /// The canvas.
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// The document.
    pub fn drawing(&self) -> &Drawing {
        &self.drawing
    }

    /// Sets the id local strokes are filed under (the server's id for this user).
    pub fn set_me(&mut self, me: PeerId) {
        self.me = me;
    }

    /// The colour for new strokes.
    pub fn color(&self) -> Color {
        self.color
    }

    /// Picks the colour for new strokes (a stroke being drawn keeps its colour).
    pub fn set_color(&mut self, color: Color) {
        self.color = color;
    }

    /// Refits the canvas to its element's box and repaints the whole document.
    pub fn fit(&mut self) {
        self.canvas.fit();
        self.canvas.repaint(&self.drawing);
    }

    /// Resizes the canvas to a given CSS size and pixel ratio and repaints the whole document.
    pub fn resize(&mut self, css_width: f64, css_height: f64, pixel_ratio: f64) {
        self.canvas.resize(css_width, css_height, pixel_ratio);
        self.canvas.repaint(&self.drawing);
    }

    /// Applies local pen input; returns the messages to broadcast to peers.
    pub fn pen(&mut self, input: PenInput) -> Vec<PeerMessage> {
        let messages = match input {
            PenInput::Down(point) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                self.drawing_now = Some((self.me.clone(), seq));
                vec![PeerMessage::StrokeBegin {
                    seq,
                    color: self.color,
                    width: PEN_WIDTH,
                    point,
                }]
            }
            PenInput::Move(points) => match &self.drawing_now {
                Some((_, seq)) => points
                    .chunks(MAX_POINTS_PER_MESSAGE)
                    .map(|chunk| PeerMessage::StrokePoints {
                        seq: *seq,
                        points: chunk.to_vec(),
                    })
                    .collect(),
                None => Vec::new(),
            },
            PenInput::Up => match self.drawing_now.take() {
                Some((author, seq)) => {
                    let end = PeerMessage::StrokeEnd { seq };
                    self.apply(&author, &end);
                    return vec![end];
                }
                None => Vec::new(),
            },
        };
        let Some((author, _)) = self.drawing_now.clone() else {
            return Vec::new();
        };
        // Only what changed the document goes out: peers would ignore the rest anyway.
        messages
            .into_iter()
            .filter(|message| !matches!(self.apply(&author, message), Applied::Ignored(_)))
            .collect()
    }

    /// Takes data that arrived on `from`'s data channel: checks it, applies it, paints it.
    ///
    /// This is exactly what the channel's `onmessage` does, so tests feed it what a peer could.
    pub fn receive(&mut self, from: &PeerId, data: &JsValue) -> Result<Applied, ReceiveError> {
        let Some(text) = data.dyn_ref::<js_sys::JsString>() else {
            return Err(ReceiveError::NotText);
        };
        // A UTF-8 encoding is never shorter than the UTF-16 one, so a string over the limit in
        // UTF-16 units is over it in bytes too: refuse it before copying it into wasm memory.
        let units = text.length() as usize;
        if units > MAX_PEER_MESSAGE_BYTES {
            return Err(ReceiveError::Rejected(PeerMessageError::TooLarge(units)));
        }
        self.receive_text(from, &String::from(text))
    }

    /// Checks a peer's JSON text, applies it and paints the change.
    pub fn receive_text(&mut self, from: &PeerId, text: &str) -> Result<Applied, ReceiveError> {
        PeerMessage::check_size(text.len()).map_err(ReceiveError::Rejected)?;
        let message: PeerMessage = wire::decode(text)
            .map_err(|why| ReceiveError::Rejected(PeerMessageError::Malformed(why)))?;
        message.validate().map_err(ReceiveError::Rejected)?;
        Ok(self.apply(from, &message))
    }

    /// Applies a checked message from `author` and paints what it added.
    fn apply(&mut self, author: &PeerId, message: &PeerMessage) -> Applied {
        let applied = self.drawing.apply(author, message);
        if let Applied::Drawn { index, from } = applied
            && let Some(stroke) = self.drawing.strokes().get(index)
        {
            self.canvas.paint(stroke, from);
        }
        applied
    }
}
