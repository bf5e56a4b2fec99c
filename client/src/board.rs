//! The board: my replica of the drawing on its canvas. Local input becomes ops made on the
//! [`Replica`]; peers' ops are checked and integrated into the same document; what the document
//! reports as changed is painted.
//!
//! Painting uses two layers (the seed's two-canvas idea):
//! - the committed layer, a canvas outside the page holding the finished visible elements. A
//!   finished element that lands on top of it is painted onto it alone; it is repainted whole only
//!   when visibility or stacking changed ([`Changes::repaint`]), on resize and on a view change;
//! - the visible canvas (`#board`), composed once per animation frame: the committed layer, then
//!   the strokes still being drawn (mine and peers') and the preview of a shape being dragged.
//!
//! So a pointer event costs a few segments, not a repaint of 20,000 strokes.
//!
//! Everything from a peer is untrusted: its size is checked before it is copied or parsed, its
//! fields are bounded by [`ChannelMessage::validate`], an op is only considered when
//! [`accept_op`] allows its author to reach us through that peer, and only integrated when the
//! [`Ledger`] finds it signed by its author (see [`shared::signing`]). My own ops are chained and
//! signed here too, with a key made for this page load.

use crate::canvas::{Canvas, PenInput, paint_element};
use crate::tools::{DEFAULT_WIDTH, ERASER_RADIUS, Tool, clamp_width, text_size};
use crate::wire;
use shared::PeerId;
use shared::color::Color;
use shared::document::{
    Changes, Document, Element, MAX_POINTS_PER_OP, MAX_TEXT_CHARS, Op, OpId, OpKind, Replica, Seq,
    Shape, VersionVector,
};
use shared::geometry::Point;
use shared::shapes::{Bounds, bounds, hits};
use shared::signing::{
    Certificate, Keypair, Ledger, Proof, PublicKey, SignedBatch, TrustError, local_author,
};
use shared::sync::{ChannelMessage, MAX_MESSAGE_BYTES, MessageError, SYNC_BATCH_BYTES, accept_op};
use shared::view::View;
use std::cell::Cell;
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use wasm_bindgen::{JsCast, JsValue};

/// Why a peer's data was dropped.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiveError {
    /// Binary data: the channels carry JSON text only.
    NotText,
    /// The message failed a check (size, shape or bounds).
    Rejected(MessageError),
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

/// What a checked peer message asks of the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    /// The peer's summary: answer with [`Board::sync_reply`].
    Hello(VersionVector),
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

/// What the local pointer is doing on the canvas.
#[derive(Clone, Debug, PartialEq)]
enum Drag {
    /// Drawing my stroke (the seq of its `add`).
    Stroke(Seq),
    /// Dragging out a line, rectangle or ellipse.
    Shape { tool: Tool, from: Point, to: Point },
    /// Erasing; what this drag already erased.
    Erase(HashSet<OpId>),
    /// Moving the view (space + drag); the last screen position.
    Pan(f32, f32),
}

/// The replica, its canvas and layers, the view, and the local tool's state.
pub struct Board {
    canvas: Canvas,
    committed: Canvas,
    replica: Replica,
    /// Whose key signs for whom, every author's chain, and the proofs to hand on.
    ledger: Ledger,
    /// My signing key: made when the page loads, never stored.
    key: Keypair,
    view: View,
    tool: Tool,
    color: Color,
    width: f32,
    drag: Option<Drag>,
    /// Unfinished elements that grew in this session: painted every frame, not committed.
    live: BTreeSet<OpId>,
    /// The visible element count, while known: counting walks every element, and the app shows
    /// it after each change, so it is kept until a change could alter it (a stroke growing cannot).
    visible: Cell<Option<usize>>,
    /// Stacking key of the topmost element on the committed layer: a finished element above it
    /// can be painted alone; one below needs a full repaint to stack right.
    committed_top: Option<(u64, OpId)>,
    repaint_pending: bool,
    frame_pending: bool,
    /// The document changed since [`Board::take_changed`] last said so.
    changed: bool,
}

impl Board {
    /// An empty board on `canvas`, signing with `key` and drawing in `color`; until
    /// [`Board::set_me`] names me, my ops are filed under the key's own id ([`local_author`]).
    pub fn new(canvas: Canvas, key: Keypair, color: Color) -> Board {
        let me = local_author(&key.public());
        let (w, h) = canvas.css_size();
        // A detached canvas only fails without a document, and then `canvas` could not exist.
        let committed = Canvas::detached(w, h, canvas.pixel_ratio())
            .unwrap_or_else(|_| Canvas::detached(0.0, 0.0, 1.0).expect("a document exists"));
        Board {
            canvas,
            committed,
            replica: Replica::new(me),
            ledger: Ledger::new(),
            key,
            view: View::default(),
            tool: Tool::Pen,
            color,
            width: DEFAULT_WIDTH,
            drag: None,
            live: BTreeSet::new(),
            visible: Cell::new(None),
            committed_top: None,
            repaint_pending: true,
            frame_pending: true,
            changed: true,
        }
    }

    /// The visible canvas.
    pub fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    /// The replica: document, my id and my history.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The document.
    pub fn doc(&self) -> &Document {
        &self.replica.doc
    }

    /// Who I am.
    pub fn me(&self) -> &PeerId {
        &self.replica.me
    }

    /// Sets the id my next ops are filed under (the server's id for this session). A stroke
    /// being drawn is finished under the old id first; the undo history starts afresh, since it
    /// names the old id's ops. Returns the ops to broadcast.
    pub fn set_me(&mut self, me: PeerId) -> Vec<Op> {
        if self.replica.me == me {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(Drag::Stroke(element)) = self.drag.take() {
            out.push(self.perform(OpKind::Finish { element }));
        }
        // Whatever the old id made is signed as it stands, so it can be handed on for ever.
        self.ledger.seal(&self.key, &self.replica.me);
        self.replica.me = me;
        self.replica.history = Default::default();
        self.changed = true;
        out
    }

    /// My public key (for the server to certify).
    pub fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    /// Trusts certificates signed by this server key (from `/config`).
    pub fn trust_server(&mut self, key: PublicKey) {
        self.ledger.trust_server(key);
    }

    /// The server keys trusted (to remember them across reloads).
    pub fn trusted_servers(&self) -> &[PublicKey] {
        self.ledger.servers()
    }

    /// Takes my own certificate, straight from my server.
    pub fn certify(&mut self, cert: Certificate) {
        self.ledger.remember(cert);
    }

    /// The ledger (for saving proofs and certificates with the ops).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// A proof to send with `ops` I am broadcasting at `now_ms`, when one is due.
    pub fn seal(&mut self, ops: &[Op], now_ms: f64) -> Option<Proof> {
        let me = self.replica.me.clone();
        self.ledger.seal_live(&self.key, &me, ops, now_ms)
    }

    /// The current tool.
    pub fn tool(&self) -> Tool {
        self.tool
    }

    /// Picks the tool (a drag in progress ends first; returns its ops).
    pub fn set_tool(&mut self, tool: Tool) -> Vec<Op> {
        let out = self.pen(PenInput::Up);
        self.tool = tool;
        out
    }

    /// The colour for new elements.
    pub fn color(&self) -> Color {
        self.color
    }

    /// Picks the colour for new elements (a stroke being drawn keeps its colour).
    pub fn set_color(&mut self, color: Color) {
        self.color = color;
    }

    /// The line width for new elements.
    pub fn width(&self) -> f32 {
        self.width
    }

    /// Sets the line width for new elements (clamped to the slider's range).
    pub fn set_width(&mut self, width: f32) {
        self.width = clamp_width(width);
    }

    /// The view (pan and zoom).
    pub fn view(&self) -> View {
        self.view
    }

    /// Changes the view; the committed layer is repainted in the next frame.
    pub fn set_view(&mut self, view: View) {
        if view != self.view {
            self.view = view;
            self.repaint_pending = true;
            self.frame_pending = true;
        }
    }

    /// Refits the canvas to its element's box; the drawing is repainted in the next frame.
    pub fn fit(&mut self) {
        self.canvas.fit();
        self.fit_layer();
    }

    /// Resizes the canvas to a given CSS size and pixel ratio; repainted in the next frame.
    pub fn resize(&mut self, css_width: f64, css_height: f64, pixel_ratio: f64) {
        self.canvas.resize(css_width, css_height, pixel_ratio);
        self.fit_layer();
    }

    fn fit_layer(&mut self) {
        let (w, h) = self.canvas.css_size();
        self.committed.resize(w, h, self.canvas.pixel_ratio());
        self.repaint_pending = true;
        self.frame_pending = true;
    }

    /// True when the next animation frame has something to show.
    pub fn needs_frame(&self) -> bool {
        self.frame_pending || self.repaint_pending
    }

    /// True (once) when the document changed since the last call: time to save it and to update
    /// what shows its state (counts, undo and redo buttons).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Composes the visible canvas: the committed layer (repainted first if it must be), then
    /// the elements still being drawn and the shape being dragged. Called once per animation
    /// frame by the app, and directly by tests.
    pub fn render(&mut self) {
        if self.repaint_pending {
            self.repaint_committed();
        }
        self.frame_pending = false;
        self.canvas.clear();
        self.canvas.draw_layer(&self.committed);
        self.canvas.set_view(&self.view);
        let ctx = self.canvas.context();
        let doc = &self.replica.doc;
        let mut live: Vec<&Element> = self
            .live
            .iter()
            .filter_map(|id| doc.element(id))
            .filter(|e| doc.is_visible(e))
            .collect();
        live.sort_by(|a, b| (a.lamport, &a.id).cmp(&(b.lamport, &b.id)));
        for element in live {
            paint_element(ctx, element, 0);
        }
        if let Some(preview) = self.preview() {
            paint_element(ctx, &preview, 0);
        }
    }

    fn repaint_committed(&mut self) {
        self.repaint_pending = false;
        self.committed.clear();
        self.committed.set_view(&self.view);
        let ctx = self.committed.context();
        // Only what the view shows: zoomed in on a large drawing, most elements are off screen.
        // Text is always painted: its bounds are an estimate (fonts differ), not a promise.
        let (w, h) = self.committed.css_size();
        let (min_x, min_y) = self.view.to_world(0.0, 0.0);
        let (max_x, max_y) = self.view.to_world(w as f32, h as f32);
        let shown = Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        let mut top = None;
        for element in self.replica.doc.visible() {
            if self.live.contains(&element.id) {
                continue;
            }
            top = Some((element.lamport, element.id.clone()));
            if matches!(element.shape, Shape::Text { .. }) || bounds(element).intersects(&shown) {
                paint_element(ctx, element, 0);
            }
        }
        self.committed_top = top;
    }

    /// The shape being dragged, as the element it would add.
    fn preview(&self) -> Option<Element> {
        let Some(Drag::Shape { tool, from, to }) = &self.drag else {
            return None;
        };
        Some(Element {
            id: OpId {
                author: self.replica.me.clone(),
                seq: 0,
            },
            lamport: 0,
            shape: shape_of(*tool, *from, *to)?,
            color: self.color,
            width: self.width,
            finished: false,
        })
    }

    /// Commits the unfinished strokes of authors who are gone (neither me nor `in_room`): they
    /// will never finish, and painting them every frame on the live layer would cost a frame's
    /// time for nothing. Returns how many were committed.
    pub fn settle_live(&mut self, in_room: impl Fn(&PeerId) -> bool) -> usize {
        let me = &self.replica.me;
        let before = self.live.len();
        self.live
            .retain(|id| id.author == *me || in_room(&id.author));
        let settled = before - self.live.len();
        if settled > 0 {
            self.repaint_pending = true;
            self.frame_pending = true;
        }
        settled
    }

    /// The room's members changed to `in_room`: what peers who left had waiting (for a gap to
    /// fill, a proof, the ops an erase names) is forgotten, since only they would have completed
    /// it, and their unfinished strokes are committed. Returns how many strokes were.
    pub fn keep_peers(&mut self, in_room: impl Fn(&PeerId) -> bool) -> usize {
        self.ledger.retain_senders(&in_room);
        self.settle_live(in_room)
    }

    /// Takes what integrating ops changed: marks the layers to repaint, or paints a finished
    /// element that lands on top straight onto the committed layer.
    fn absorb(&mut self, changes: Changes) {
        if changes.integrated > 0 {
            self.changed = true;
        }
        if changes.repaint || changes.grown.iter().any(|(_, from)| *from == 0) {
            self.visible.set(None);
        }
        if changes.repaint {
            self.repaint_pending = true;
        }
        if changes.repaint || !changes.grown.is_empty() || !changes.finished.is_empty() {
            self.frame_pending = true;
        }
        for (id, _) in changes.grown {
            self.live.insert(id);
        }
        for id in changes.finished {
            self.live.remove(&id);
            if self.repaint_pending {
                continue;
            }
            let Some(element) = self.replica.doc.element(&id) else {
                continue;
            };
            if !self.replica.doc.is_visible(element) {
                continue;
            }
            let key = (element.lamport, element.id.clone());
            if self.committed_top.as_ref().is_none_or(|top| key > *top) {
                self.committed.set_view(&self.view);
                paint_element(self.committed.context(), element, 0);
                self.committed_top = Some(key);
            } else {
                self.repaint_pending = true;
            }
        }
    }

    fn perform(&mut self, kind: OpKind) -> Op {
        // An erase or a clear carries the marks that show it had the ops it names.
        let kind = self.ledger.mark(&self.replica.doc, &self.replica.me, kind);
        let (op, changes) = self.replica.perform(kind);
        self.ledger.record_mine(&op, &self.key);
        self.absorb(changes);
        op
    }

    /// A screen point (CSS pixels on the canvas) as a world point, kept to 1/16 of a unit like
    /// the pointer input (short on the wire, exact in binary).
    fn world(&self, p: Point) -> Point {
        let (x, y) = self.view.to_world(p.x, p.y);
        Point::new(quantize(x), quantize(y), p.pressure)
    }

    /// Applies local pointer input (screen coordinates) with the current tool; returns the ops
    /// to broadcast.
    pub fn pen(&mut self, input: PenInput) -> Vec<Op> {
        match input {
            PenInput::Down(p) => {
                let mut out = self.pen(PenInput::Up);
                out.extend(self.press(p));
                out
            }
            PenInput::Move(points) => self.drag_to(&points),
            PenInput::Up => self.release(),
        }
    }

    /// Starts a pan (space + drag) at a screen point instead of drawing.
    pub fn start_pan(&mut self, at: Point) -> Vec<Op> {
        let out = self.pen(PenInput::Up);
        self.drag = Some(Drag::Pan(at.x, at.y));
        out
    }

    fn press(&mut self, p: Point) -> Vec<Op> {
        let w = self.world(p);
        match self.tool {
            Tool::Pen => {
                let op = self.perform(OpKind::Add {
                    shape: Shape::Stroke { points: vec![w] },
                    color: self.color,
                    width: self.width,
                });
                self.drag = Some(Drag::Stroke(op.seq));
                vec![op]
            }
            Tool::Eraser => {
                self.drag = Some(Drag::Erase(HashSet::new()));
                self.erase_at(&[p])
            }
            Tool::Line | Tool::Rect | Tool::Ellipse => {
                self.drag = Some(Drag::Shape {
                    tool: self.tool,
                    from: w,
                    to: w,
                });
                self.frame_pending = true;
                Vec::new()
            }
            // Text is typed into an input the app opens; see `add_text`.
            Tool::Text => Vec::new(),
        }
    }

    fn drag_to(&mut self, points: &[Point]) -> Vec<Op> {
        let Some(last) = points.last().copied() else {
            return Vec::new();
        };
        match &mut self.drag {
            Some(Drag::Stroke(element)) => {
                let element = *element;
                let world: Vec<Point> = points.iter().map(|p| self.world(*p)).collect();
                world
                    .chunks(MAX_POINTS_PER_OP)
                    .map(|chunk| {
                        self.perform(OpKind::Extend {
                            element,
                            points: chunk.to_vec(),
                        })
                    })
                    .collect()
            }
            Some(Drag::Shape { .. }) => {
                let w = self.world(last);
                if let Some(Drag::Shape { to, .. }) = &mut self.drag {
                    *to = w;
                }
                self.frame_pending = true;
                Vec::new()
            }
            Some(Drag::Erase(_)) => self.erase_at(points),
            Some(Drag::Pan(x, y)) => {
                let (dx, dy) = (last.x - *x, last.y - *y);
                self.drag = Some(Drag::Pan(last.x, last.y));
                let mut view = self.view;
                view.pan_by(dx, dy);
                self.set_view(view);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn release(&mut self) -> Vec<Op> {
        match self.drag.take() {
            Some(Drag::Stroke(element)) => vec![self.perform(OpKind::Finish { element })],
            Some(Drag::Shape { tool, from, to }) => {
                self.frame_pending = true;
                match shape_of(tool, from, to) {
                    Some(shape) => vec![self.perform(OpKind::Add {
                        shape,
                        color: self.color,
                        width: self.width,
                    })],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Erases every visible element the eraser touches at these screen points and did not
    /// already erase in this drag: one `erase` op, or none.
    fn erase_at(&mut self, points: &[Point]) -> Vec<Op> {
        let radius = ERASER_RADIUS / self.view.zoom;
        let world: Vec<Point> = points.iter().map(|p| self.world(*p)).collect();
        let Some(Drag::Erase(erased)) = &mut self.drag else {
            return Vec::new();
        };
        let mut targets = Vec::new();
        for element in self.replica.doc.visible() {
            if !erased.contains(&element.id)
                && world.iter().any(|p| hits(element, p.x, p.y, radius))
            {
                targets.push(element.id.clone());
            }
        }
        if targets.is_empty() {
            return Vec::new();
        }
        erased.extend(targets.iter().cloned());
        vec![self.perform(OpKind::erase(targets))]
    }

    /// Adds a text element with its top-left at a screen point; `None` for blank text.
    pub fn add_text(&mut self, at: (f32, f32), text: &str) -> Option<Op> {
        let text: String = text.trim().chars().take(MAX_TEXT_CHARS).collect();
        if text.is_empty() {
            return None;
        }
        let at = self.world(Point::new(at.0, at.1, 0.5));
        Some(self.perform(OpKind::Add {
            shape: Shape::Text {
                at,
                text,
                size: text_size(self.width),
            },
            color: self.color,
            width: self.width,
        }))
    }

    /// The font size text gets now, in screen pixels (for the text input).
    pub fn text_screen_size(&self) -> f32 {
        text_size(self.width) * self.view.zoom
    }

    /// Undoes my latest op, if any; returns the op to broadcast.
    pub fn undo(&mut self) -> Option<Op> {
        let (op, changes) = self.replica.undo()?;
        self.ledger.record_mine(&op, &self.key);
        self.absorb(changes);
        Some(op)
    }

    /// Redoes my latest undo, if any; returns the op to broadcast.
    pub fn redo(&mut self) -> Option<Op> {
        let (op, changes) = self.replica.redo()?;
        self.ledger.record_mine(&op, &self.key);
        self.absorb(changes);
        Some(op)
    }

    /// Clears what I can see; returns the op to broadcast.
    pub fn clear(&mut self) -> Op {
        self.perform(OpKind::clear(self.replica.doc.version_vector()))
    }

    /// The number of strokes still being drawn (painted each frame on the live layer).
    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// The number of visible elements.
    pub fn visible_count(&self) -> usize {
        if let Some(count) = self.visible.get() {
            return count;
        }
        let count = self.replica.doc.visible().count();
        self.visible.set(Some(count));
        count
    }

    /// My summary for a peer whose channel just opened.
    pub fn hello(&self) -> ChannelMessage {
        ChannelMessage::Hello {
            have: self.replica.doc.version_vector(),
            cert: self.ledger.certificate(&self.replica.me).cloned(),
        }
    }

    /// What a peer that has `have` lacks, signed, in batches of at most [`SYNC_BATCH_BYTES`] (by
    /// estimate), each author's ops in order (see [`Ledger::sync_batches`]), but for the ops of
    /// authors `elsewhere` says it gets from them (peers in the room: it takes their ops from them
    /// alone, see [`accept_op`]).
    pub fn sync_reply(
        &mut self,
        have: &VersionVector,
        elsewhere: impl Fn(&PeerId) -> bool,
    ) -> Vec<SignedBatch> {
        let me = self.replica.me.clone();
        let mut batches =
            self.ledger
                .sync_batches(&self.replica.doc, have, &me, &self.key, SYNC_BATCH_BYTES);
        for batch in &mut batches {
            batch
                .ops
                .retain(|op| op.author == me || !elsewhere(&op.author));
            batch
                .proofs
                .retain(|p| p.author == me || !elsewhere(&p.author));
            batch.certs.retain(|c| c.peer == me || !elsewhere(&c.peer));
        }
        batches.retain(|b| !b.ops.is_empty());
        batches
    }

    /// Integrates ops from storage, with the proofs and certificates saved beside them: each op
    /// validated (the bad ones skipped) and chained, so the ops can be handed on with their
    /// proofs. Returns how many were integrated.
    pub fn load(&mut self, ops: Vec<Op>, proofs: Vec<Proof>, certs: Vec<Certificate>) -> usize {
        // One repaint of the committed layer at the next frame, rather than each finished stroke
        // painted onto it as it comes and then the repaint (20,000 strokes of 100 points: 5 s
        // in all instead of 15 s).
        self.repaint_pending = true;
        let mut ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| match op.validate() {
                Ok(()) => true,
                Err(err) => {
                    crate::dom::warn(&format!("stored op skipped: {err}"));
                    false
                }
            })
            .collect();
        // Records hold ops in no particular order. Chains run in each author's seq order, and
        // the document takes clocks that climb (`MAX_CLOCK_STEP`): Lamport order gives both,
        // since an author's Lamport times rise with its seqs.
        ops.sort_by(|a, b| (a.lamport, a.seq, &a.author).cmp(&(b.lamport, b.seq, &b.author)));
        for cert in certs {
            self.ledger.remember(cert);
        }
        let changes = self.ledger.load(&mut self.replica.doc, ops, proofs);
        let integrated = changes.integrated;
        self.absorb(changes);
        // Loaded strokes are as drawn as they will get: commit them all. The load arrives while
        // the page is in use, so a stroke I am drawing stays live.
        self.settle_live(|_| false);
        integrated
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
        let Some(text) = data.dyn_ref::<js_sys::JsString>() else {
            return Err(ReceiveError::NotText);
        };
        // A UTF-8 encoding is never shorter than the UTF-16 one, so a string over the limit in
        // UTF-16 units is over it in bytes too: refuse it before copying it into wasm memory.
        let units = text.length() as usize;
        if units > MAX_MESSAGE_BYTES {
            return Err(ReceiveError::Rejected(MessageError::TooLarge(units)));
        }
        self.receive_text(from, &String::from(text), in_room)
    }

    /// Checks a peer's JSON text and acts on it (see [`Board::receive`]).
    pub fn receive_text(
        &mut self,
        from: &PeerId,
        text: &str,
        in_room: impl Fn(&PeerId) -> bool,
    ) -> Result<Received, ReceiveError> {
        ChannelMessage::check_size(text.len()).map_err(ReceiveError::Rejected)?;
        let message: ChannelMessage = wire::decode(text)
            .map_err(|why| ReceiveError::Rejected(MessageError::Malformed(why)))?;
        message.validate().map_err(ReceiveError::Rejected)?;
        Ok(match message {
            ChannelMessage::Hello { have, cert } => {
                match cert {
                    Some(cert) if cert.peer == *from => {
                        if let Err(why) = self.ledger.learn(&cert) {
                            crate::dom::warn(&format!("{from}'s certificate refused: {why}"));
                        }
                    }
                    Some(_) => crate::dom::warn(&format!("{from} sent someone else's certificate")),
                    None => crate::dom::warn(&format!("{from} sent no certificate")),
                }
                Received::Hello(have)
            }
            ChannelMessage::Cursor { at, color } => Received::Cursor { at, color },
            // The mesh answers pings itself; one that gets here means nothing.
            ChannelMessage::Ping => Received::Ping,
            ChannelMessage::Ops { ops, proofs, certs } => {
                let before = ops.len();
                let ops: Vec<Op> = ops
                    .into_iter()
                    .filter(|op| accept_op(&self.replica.me, from, &op.author, &in_room))
                    .collect();
                let mut dropped = before - ops.len();
                if dropped > 0 {
                    crate::dom::warn(&format!(
                        "dropped {dropped} op(s) {from} may not hand over (their authors are \
                         here, or me)"
                    ));
                }
                // The ledger checks signatures and chains; the document bounds clocks and the
                // sender's budgets and holds back ops whose dependencies are not here yet.
                let admission = self
                    .ledger
                    .admit(&mut self.replica.doc, from, ops, proofs, certs);
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
                self.absorb(admission.changes);
                // A sync can carry the unfinished stroke of someone who left mid-stroke.
                self.settle_live(&in_room);
                Received::Ops {
                    integrated,
                    dropped,
                }
            }
        })
    }
}

/// The shape a two-corner tool makes between two world points; `None` for a zero-size drag.
fn shape_of(tool: Tool, from: Point, to: Point) -> Option<Shape> {
    if from.x == to.x && from.y == to.y {
        return None;
    }
    match tool {
        Tool::Line => Some(Shape::Line { from, to }),
        Tool::Rect => Some(Shape::Rect { from, to }),
        Tool::Ellipse => Some(Shape::Ellipse { from, to }),
        _ => None,
    }
}

/// `value` rounded to the nearest 1/16.
fn quantize(value: f32) -> f32 {
    (value * 16.0).round() / 16.0
}
