//! The renderer: the model seen through the view on the page's canvas, in two layers (the
//! seed's two-canvas idea):
//! - the committed layer, a canvas outside the page holding the finished visible elements. A
//!   finished element that lands on top of it is painted onto it alone; it is repainted whole only
//!   when visibility or stacking changed ([`Changes::repaint`]), on resize and on a view change;
//! - the live layer, the strokes still being drawn (mine and peers'): each frame paints only the
//!   segments that came since the last, and it is painted again whole only when a stroke leaves
//!   it (finished) or the view changes. While live, strokes that cross stack in the order their
//!   segments came; they take their place in the stack when finished;
//! - the visible canvas (`#board`), composed once per animation frame: the committed layer, the
//!   live layer, and the preview of a shape being dragged.
//!
//! So a pointer event costs a few segments, not a repaint of 20,000 strokes. And a repaint never
//! holds a frame up: it paints into a spare layer a few milliseconds per frame (a [`Repaint`]),
//! while frames show the committed layer as it was, moved and scaled to the new view
//! (`View::relative_to`); the spare replaces it when done. During a pan or a pinch, whose view
//! changes every frame, no repaint starts until the view holds still for a frame. The renderer
//! reads the document and never changes it.

use crate::canvas::{Canvas, paint_element};
use crate::dom;
use shared::PeerId;
use shared::document::{Changes, Document, Element, OpId, Shape};
use shared::shapes::Bounds;
use shared::spatial::Slot;
use shared::view::View;
use std::collections::{BTreeSet, HashMap};

/// How long a frame may spend recording a repaint's drawing, in milliseconds. The browser's
/// rasterizing of what was recorded (forced in the same frame, see `Canvas::flush_into`) costs
/// about four times as much again (measured in headless Chromium), so the two take about half
/// of a 60 Hz frame.
const REPAINT_BUDGET_MS: f64 = 2.0;

/// A repaint of the committed layer under way, into the spare layer.
struct Repaint {
    /// The view it paints.
    view: View,
    /// What it may paint (grid slots, bottom to top; each checked for visibility as it is
    /// painted, so starting costs no more than a sort), and how far it got.
    slots: Vec<Slot>,
    next: usize,
    /// The stacking key of the last element it painted.
    top: Option<(u64, OpId)>,
    /// The stacking key of the last element it will paint, if one was added at its end.
    last: Option<(u64, OpId)>,
}

/// The visible canvas, its committed layer, the view, and what is still being drawn.
pub(super) struct Renderer {
    canvas: Canvas,
    committed: Canvas,
    /// The view the committed layer was painted at.
    layer_view: View,
    /// Where a repaint paints; it becomes the committed layer when done.
    spare: Canvas,
    /// One pixel, to make the browser rasterize each frame's part of a repaint in that frame.
    scratch: Canvas,
    repaint: Option<Repaint>,
    /// The view of the last frame: a repaint starts once the view holds still for a frame.
    last_frame_view: View,
    /// The strokes being drawn, as far as painted (points, by stroke), at `live_view`.
    live_layer: Canvas,
    live_painted: HashMap<OpId, usize>,
    live_view: View,
    /// The live layer must be painted again whole (a stroke left it, or it was resized).
    live_stale: bool,
    view: View,
    /// Unfinished elements that grew in this session: painted every frame, not committed.
    live: BTreeSet<OpId>,
    /// Stacking key of the topmost element on the committed layer: a finished element above it
    /// can be painted alone; one below needs a full repaint to stack right.
    committed_top: Option<(u64, OpId)>,
    repaint_pending: bool,
    frame_pending: bool,
}

impl Renderer {
    pub(super) fn new(canvas: Canvas) -> Renderer {
        let (w, h) = canvas.css_size();
        // A detached canvas only fails without a document, and then `canvas` could not exist.
        let layer = || {
            Canvas::detached(w, h, canvas.pixel_ratio())
                .unwrap_or_else(|_| Canvas::detached(0.0, 0.0, 1.0).expect("a document exists"))
        };
        let (committed, spare, live_layer) = (layer(), layer(), layer());
        let scratch = Canvas::detached(1.0, 1.0, 1.0).unwrap_or_else(|_| layer());
        Renderer {
            canvas,
            committed,
            layer_view: View::default(),
            spare,
            scratch,
            repaint: None,
            last_frame_view: View::default(),
            live_layer,
            live_painted: HashMap::new(),
            live_view: View::default(),
            live_stale: true,
            view: View::default(),
            live: BTreeSet::new(),
            committed_top: None,
            repaint_pending: true,
            frame_pending: true,
        }
    }

    pub(super) fn canvas(&self) -> &Canvas {
        &self.canvas
    }

    pub(super) fn view(&self) -> View {
        self.view
    }

    /// Changes the view; the committed layer is repainted in the next frame.
    pub(super) fn set_view(&mut self, view: View) {
        if view != self.view {
            self.view = view;
            self.repaint_pending = true;
            self.frame_pending = true;
        }
    }

    pub(super) fn fit(&mut self) {
        self.canvas.fit();
        self.fit_layer();
    }

    pub(super) fn resize(&mut self, css_width: f64, css_height: f64, pixel_ratio: f64) {
        self.canvas.resize(css_width, css_height, pixel_ratio);
        self.fit_layer();
    }

    fn fit_layer(&mut self) {
        let (w, h) = self.canvas.css_size();
        self.committed.resize(w, h, self.canvas.pixel_ratio());
        self.spare.resize(w, h, self.canvas.pixel_ratio());
        self.live_layer.resize(w, h, self.canvas.pixel_ratio());
        self.live_stale = true;
        // Both layers are blank now: nothing of the old picture to show, no repaint to go on.
        self.layer_view = self.view;
        self.committed_top = None;
        self.repaint = None;
        self.repaint_pending = true;
        self.frame_pending = true;
    }

    /// Something not in the document changed what the next frame shows (a shape's preview).
    pub(super) fn redraw(&mut self) {
        self.frame_pending = true;
    }

    /// Repaints the committed layer whole at the next frame rather than piece by piece.
    pub(super) fn repaint_later(&mut self) {
        self.repaint_pending = true;
    }

    pub(super) fn needs_frame(&self) -> bool {
        self.frame_pending || self.repaint_pending || self.repaint.is_some()
    }

    /// Composes the visible canvas: the committed layer (as painted, moved to the view while a
    /// repaint is under way), then the elements still being drawn and `preview`.
    pub(super) fn render(&mut self, doc: &Document, preview: Option<&Element>) {
        let still = self.view == self.last_frame_view;
        self.last_frame_view = self.view;
        if self.repaint_pending && still {
            self.start_repaint(doc);
        }
        self.go_on_repainting(doc);
        self.frame_pending = false;
        self.paint_live(doc);
        self.canvas.clear();
        self.canvas
            .draw_layer_moved(&self.committed, self.view.relative_to(&self.layer_view));
        self.canvas.draw_layer(&self.live_layer);
        self.canvas.set_view(&self.view);
        let ctx = self.canvas.context();
        if let Some(preview) = preview {
            paint_element(ctx, preview, 0);
        }
    }

    /// Paints on the live layer what the strokes being drawn gained since the last frame (all of
    /// them, from their first points, when the layer is stale or the view moved).
    fn paint_live(&mut self, doc: &Document) {
        if self.live_stale || self.live_view != self.view {
            self.live_layer.clear();
            self.live_layer.set_view(&self.view);
            self.live_painted.clear();
            self.live_view = self.view;
            self.live_stale = false;
        }
        let mut live: Vec<&Element> = self
            .live
            .iter()
            .filter_map(|id| doc.element(id))
            .filter(|e| doc.is_visible(e))
            .collect();
        live.sort_by(|a, b| (a.lamport, &a.id).cmp(&(b.lamport, &b.id)));
        let ctx = self.live_layer.context();
        for element in live {
            let length = match &element.shape {
                Shape::Stroke { points } => points.len(),
                _ => 1,
            };
            let painted = self.live_painted.get(&element.id).copied().unwrap_or(0);
            if length > painted {
                paint_element(ctx, element, painted);
                self.live_painted.insert(element.id.clone(), length);
            }
        }
    }

    /// Starts repainting the committed layer for the current view (what was under way stops).
    fn start_repaint(&mut self, doc: &Document) {
        self.repaint_pending = false;
        // Only what the view shows, found through the document's grid (`shared::spatial`):
        // zoomed in on a large drawing, most elements are off screen and never looked at. Text
        // is always painted: its bounds are an estimate (fonts differ), not a promise.
        let (w, h) = self.canvas.css_size();
        let (min_x, min_y) = self.view.to_world(0.0, 0.0);
        let (max_x, max_y) = self.view.to_world(w as f32, h as f32);
        let shown = Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        let slots = doc.slots_in(&shown);
        let last = slots
            .last()
            .and_then(|&s| doc.element_in(s))
            .map(|e| (e.lamport, e.id.clone()));
        self.spare.clear();
        self.spare.set_view(&self.view);
        self.repaint = Some(Repaint {
            view: self.view,
            slots,
            next: 0,
            top: None,
            last,
        });
    }

    /// Paints what the repaint under way has left, for at most [`REPAINT_BUDGET_MS`]; when it is
    /// done, its layer becomes the committed one.
    fn go_on_repainting(&mut self, doc: &Document) {
        let Some(job) = &mut self.repaint else {
            return;
        };
        let deadline = dom::now_ms() + REPAINT_BUDGET_MS;
        let ctx = self.spare.context();
        while let Some(&slot) = job.slots.get(job.next) {
            job.next += 1;
            if let Some(element) = doc.element_in(slot)
                && !self.live.contains(&element.id)
                && doc.is_visible(element)
            {
                paint_element(ctx, element, 0);
                job.top = Some((element.lamport, element.id.clone()));
            }
            if job.next % 32 == 0 && dom::now_ms() > deadline {
                self.spare.flush_into(&self.scratch);
                return;
            }
        }
        // Rasterized here too, not in the composing that first shows it.
        self.spare.flush_into(&self.scratch);
        let Some(done) = self.repaint.take() else {
            return;
        };
        std::mem::swap(&mut self.committed, &mut self.spare);
        self.layer_view = done.view;
        // The top of what the layer holds: an element finished above it can be painted alone.
        // Elements off screen are not on the layer, so they need not be under it.
        self.committed_top = done.top;
    }

    /// Commits the unfinished strokes of authors who are gone (neither `me` nor `in_room`), as
    /// a finished one is: onto the committed layer at once. (A sync cut between a departed
    /// author's `add` and its `finish` leaves one such stroke at the end of nearly every batch:
    /// a repaint for each would start over on the whole drawing every batch of a late join.)
    /// Returns how many were committed.
    pub(super) fn settle_live(
        &mut self,
        doc: &Document,
        me: &PeerId,
        in_room: impl Fn(&PeerId) -> bool,
    ) -> usize {
        let gone: Vec<OpId> = self
            .live
            .iter()
            .filter(|id| id.author != *me && !in_room(&id.author))
            .cloned()
            .collect();
        for id in &gone {
            self.live.remove(id);
            self.commit(id, doc);
        }
        if !gone.is_empty() {
            self.live_stale = true;
            self.frame_pending = true;
        }
        gone.len()
    }

    pub(super) fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Takes what integrating ops changed in `doc`: marks the layers to repaint, or paints a
    /// finished element that lands on top straight onto the committed layer.
    pub(super) fn absorb(&mut self, changes: Changes, doc: &Document) {
        if changes.repaint {
            self.repaint_pending = true;
        }
        if changes.repaint || !changes.grown.is_empty() || !changes.finished.is_empty() {
            self.frame_pending = true;
        }
        for (id, _) in changes.grown {
            self.live.insert(id);
        }
        if changes.repaint {
            // A live stroke may have been hidden (undone, erased, cleared).
            self.live_stale = true;
        }
        for id in changes.finished {
            if self.live.remove(&id) {
                self.live_stale = true;
            }
            self.commit(&id, doc);
        }
    }

    /// Paints finished element `id` onto the committed layer at once, in the view it was
    /// painted at, so it never vanishes while a repaint waits for the view to hold still. Below
    /// the layer's top it stacks wrong there until the repaint this asks for.
    fn commit(&mut self, id: &OpId, doc: &Document) {
        let Some(element) = doc.element(id) else {
            return;
        };
        if !doc.is_visible(element) {
            return;
        }
        self.committed.set_view(&self.layer_view);
        paint_element(self.committed.context(), element, 0);
        let key = (element.lamport, element.id.clone());
        if self.committed_top.as_ref().is_some_and(|top| key < *top) {
            self.repaint_pending = true;
            return;
        }
        self.committed_top = Some(key.clone());
        // A repaint under way takes it at its end if it lands above all it paints.
        if let Some(job) = &mut self.repaint {
            match doc.slot_of(id) {
                Some(slot) if job.last.as_ref().is_none_or(|last| key > *last) => {
                    job.slots.push(slot);
                    job.last = Some(key);
                }
                _ => self.repaint_pending = true,
            }
        }
    }
}
