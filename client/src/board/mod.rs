//! The board: my replica of the drawing on its canvas, in parts that data crosses one way.
//!
//! - `model`: the replica and the ledger. My ops are made, chained and signed there (with a key
//!   made for this page load) and peers' ops integrated; each change comes back as the
//!   [`Changes`] it made.
//! - `receive`: what a peer sends, checked before any of it reaches the model.
//! - `pen`: the tools' state machine, turning presses, drags and releases into ops.
//! - `render`: the canvas and its layers, painting what the model reports as changed, seen
//!   through the view. It reads the model and never changes it.
//!
//! Every change the model makes goes straight on to the renderer, so the two cannot disagree
//! about what is on screen.

mod model;
mod pen;
mod receive;
mod render;

pub use receive::{ReceiveError, Received};

use crate::canvas::{Canvas, PenInput};
use crate::tools::Tool;
use model::Model;
use pen::Pen;
use render::Renderer;
use shared::PeerId;
use shared::color::Color;
use shared::document::{Changes, Document, Op, OpKind, Replica, VersionVector};
use shared::geometry::Point;
use shared::signing::{Certificate, Keypair, Ledger, Proof, PublicKey, SignedBatch};
use shared::sync::ChannelMessage;
use shared::view::View;
use wasm_bindgen::JsValue;

/// The model, its renderer and the pen.
pub struct Board {
    model: Model,
    renderer: Renderer,
    pen: Pen,
}

impl Board {
    /// An empty board on `canvas`, signing with `key` and drawing in `color`; until
    /// [`Board::set_me`] names me, my ops are filed under the key's own id
    /// ([`local_author`](shared::signing::local_author)).
    pub fn new(canvas: Canvas, key: Keypair, color: Color) -> Board {
        Board {
            model: Model::new(key),
            renderer: Renderer::new(canvas),
            pen: Pen::new(color),
        }
    }

    /// Makes an op of mine and shows it.
    fn perform(&mut self, kind: OpKind) -> Op {
        pen::perform(kind, &mut self.model, &mut self.renderer)
    }

    /// Shows what integrating ops changed.
    fn absorb(&mut self, changes: Changes) {
        self.renderer.absorb(changes, self.model.doc());
    }

    /// The visible canvas.
    pub fn canvas(&self) -> &Canvas {
        self.renderer.canvas()
    }

    /// The replica: document, my id and my history.
    pub fn replica(&self) -> &Replica {
        self.model.replica()
    }

    /// The document.
    pub fn doc(&self) -> &Document {
        self.model.doc()
    }

    /// Who I am.
    pub fn me(&self) -> &PeerId {
        self.model.me()
    }

    /// Sets the id my next ops are filed under (the server's id for this session). A stroke
    /// being drawn is finished under the old id first; the undo history starts afresh, since it
    /// names the old id's ops. Returns the ops to broadcast.
    pub fn set_me(&mut self, me: PeerId) -> Vec<Op> {
        if *self.model.me() == me {
            return Vec::new();
        }
        let out = self
            .pen
            .take_stroke()
            .map(|element| self.perform(OpKind::Finish { element }))
            .into_iter()
            .collect();
        self.model.rename(me);
        out
    }

    /// My public key (for the server to certify).
    pub fn public_key(&self) -> PublicKey {
        self.model.public_key()
    }

    /// Trusts certificates signed by this server key (from `/config`).
    pub fn trust_server(&mut self, key: PublicKey) {
        self.model.trust_server(key);
    }

    /// The server keys trusted (to remember them across reloads).
    pub fn trusted_servers(&self) -> &[PublicKey] {
        self.model.ledger().servers()
    }

    /// Takes my own certificate, straight from my server.
    pub fn certify(&mut self, cert: Certificate) {
        self.model.certify(cert);
    }

    /// The ledger (for saving proofs and certificates with the ops).
    pub fn ledger(&self) -> &Ledger {
        self.model.ledger()
    }

    /// A proof to send with `ops` I am broadcasting at `now_ms`, when one is due.
    pub fn seal(&mut self, ops: &[Op], now_ms: f64) -> Option<Proof> {
        self.model.seal(ops, now_ms)
    }

    /// The current tool.
    pub fn tool(&self) -> Tool {
        self.pen.tool
    }

    /// Picks the tool (a drag in progress ends first; returns its ops).
    pub fn set_tool(&mut self, tool: Tool) -> Vec<Op> {
        let ops = self.pen(PenInput::Up);
        self.pen.tool = tool;
        ops
    }

    /// Applies local pointer input (screen coordinates) with the current tool; returns the ops
    /// to broadcast.
    pub fn pen(&mut self, input: PenInput) -> Vec<Op> {
        self.pen.pen(input, &mut self.model, &mut self.renderer)
    }

    /// Starts a pan (space + drag) at a screen point instead of drawing.
    pub fn start_pan(&mut self, at: Point) -> Vec<Op> {
        self.pen.start_pan(at, &mut self.model, &mut self.renderer)
    }

    /// Adds a text element with its top-left at a screen point; `None` for blank text.
    pub fn add_text(&mut self, at: (f32, f32), text: &str) -> Option<Op> {
        self.pen
            .add_text(at, text, &mut self.model, &mut self.renderer)
    }

    /// The font size text gets now, in screen pixels (for the text input).
    pub fn text_screen_size(&self) -> f32 {
        self.pen.text_screen_size(self.renderer.view().zoom)
    }

    /// The colour for new elements.
    pub fn color(&self) -> Color {
        self.pen.color
    }

    /// Picks the colour for new elements (a stroke being drawn keeps its colour).
    pub fn set_color(&mut self, color: Color) {
        self.pen.color = color;
    }

    /// The line width for new elements.
    pub fn width(&self) -> f32 {
        self.pen.width()
    }

    /// Sets the line width for new elements (clamped to the slider's range).
    pub fn set_width(&mut self, width: f32) {
        self.pen.set_width(width);
    }

    /// The view (pan and zoom).
    pub fn view(&self) -> View {
        self.renderer.view()
    }

    /// Changes the view; the committed layer is repainted in the next frame.
    pub fn set_view(&mut self, view: View) {
        self.renderer.set_view(view);
    }

    /// Refits the canvas to its element's box; the drawing is repainted in the next frame.
    pub fn fit(&mut self) {
        self.renderer.fit();
    }

    /// Resizes the canvas to a given CSS size and pixel ratio; repainted in the next frame.
    pub fn resize(&mut self, css_width: f64, css_height: f64, pixel_ratio: f64) {
        self.renderer.resize(css_width, css_height, pixel_ratio);
    }

    /// True when the next animation frame has something to show.
    pub fn needs_frame(&self) -> bool {
        self.renderer.needs_frame()
    }

    /// True (once) when the document changed since the last call: time to save it and to update
    /// what shows its state (counts, undo and redo buttons).
    pub fn take_changed(&mut self) -> bool {
        self.model.take_changed()
    }

    /// True when the next animation frame has work: something to show, or a change to report
    /// ([`Board::take_changed`]).
    pub fn wants_frame(&self) -> bool {
        self.renderer.needs_frame() || self.model.changed()
    }

    /// Composes the visible canvas: the committed layer (repainted first if it must be), then
    /// the elements still being drawn and the shape being dragged. Called once per animation
    /// frame by the app, and directly by tests.
    pub fn render(&mut self) {
        let preview = self.pen.preview(self.model.me());
        self.renderer.render(self.model.doc(), preview.as_ref());
    }

    /// Commits the unfinished strokes of authors who are gone (neither me nor `in_room`): they
    /// will never finish, and painting them every frame on the live layer would cost a frame's
    /// time for nothing. Returns how many were committed.
    pub fn settle_live(&mut self, in_room: impl Fn(&PeerId) -> bool) -> usize {
        self.renderer
            .settle_live(self.model.doc(), self.model.me(), in_room)
    }

    /// The room's members changed to `in_room`: what peers who left had waiting (for a gap to
    /// fill, a proof, the ops an erase names) is forgotten, since only they would have completed
    /// it, and their unfinished strokes are committed. Returns how many strokes were.
    pub fn keep_peers(&mut self, in_room: impl Fn(&PeerId) -> bool) -> usize {
        self.model.retain_senders(&in_room);
        self.settle_live(in_room)
    }

    /// Undoes my latest op, if any; returns the op to broadcast.
    pub fn undo(&mut self) -> Option<Op> {
        let (op, changes) = self.model.undo()?;
        self.absorb(changes);
        Some(op)
    }

    /// Redoes my latest undo, if any; returns the op to broadcast.
    pub fn redo(&mut self) -> Option<Op> {
        let (op, changes) = self.model.redo()?;
        self.absorb(changes);
        Some(op)
    }

    /// Clears what I can see; returns the op to broadcast.
    pub fn clear(&mut self) -> Op {
        self.perform(OpKind::clear(self.model.doc().version_vector()))
    }

    /// The number of strokes still being drawn (painted each frame on the live layer).
    pub fn live_count(&self) -> usize {
        self.renderer.live_count()
    }

    /// The number of visible elements.
    pub fn visible_count(&self) -> usize {
        self.model.visible_count()
    }

    /// My summary for a peer whose channel just opened.
    pub fn hello(&self) -> ChannelMessage {
        self.model.hello()
    }

    /// What a peer that has `have` lacks, signed, in batches of at most
    /// [`SYNC_BATCH_BYTES`](shared::sync::SYNC_BATCH_BYTES) (by estimate), each author's ops in
    /// order (see [`Ledger::sync_batches`]), but for the ops of authors `elsewhere` says it gets
    /// from them (peers in the room: it takes their ops from them alone, see
    /// [`accept_op`](shared::sync::accept_op)).
    pub fn sync_reply(
        &mut self,
        have: &VersionVector,
        elsewhere: impl Fn(&PeerId) -> bool,
    ) -> Vec<SignedBatch> {
        self.model.sync_reply(have, elsewhere)
    }

    /// Takes data that arrived on `from`'s channel: checks it, integrates what it may, and
    /// says what else it asks for. `in_room` tells the peers present (from signaling).
    ///
    /// This is exactly what the channels' `onmessage` does, so tests feed it what a peer could.
    pub fn receive(
        &mut self,
        from: &PeerId,
        data: &JsValue,
        in_room: impl Fn(&PeerId) -> bool,
    ) -> Result<Received, ReceiveError> {
        receive::receive(&mut self.model, &mut self.renderer, from, data, in_room)
    }

    /// Integrates ops from storage, with the proofs and certificates saved beside them: each op
    /// validated (the bad ones skipped) and chained, so the ops can be handed on with their
    /// proofs. Returns how many were integrated.
    pub fn load(&mut self, ops: Vec<Op>, proofs: Vec<Proof>, certs: Vec<Certificate>) -> usize {
        // One repaint of the committed layer at the next frame, rather than each finished stroke
        // painted onto it as it comes and then the repaint (20,000 strokes of 100 points: 5 s
        // in all instead of 15 s).
        self.renderer.repaint_later();
        let changes = self.model.load(ops, proofs, certs);
        let integrated = changes.integrated;
        self.absorb(changes);
        // Loaded strokes are as drawn as they will get: commit them all. The load arrives while
        // the page is in use, so a stroke I am drawing stays live.
        self.settle_live(|_| false);
        integrated
    }
}
