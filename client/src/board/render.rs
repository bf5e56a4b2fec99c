//! The renderer: the model seen through the view on the page's canvas, in two layers (the
//! seed's two-canvas idea):
//! - the committed layer, a canvas outside the page holding the finished visible elements. A
//!   finished element that lands on top of it is painted onto it alone; it is repainted whole only
//!   when visibility or stacking changed ([`Changes::repaint`]), on resize and on a view change;
//! - the visible canvas (`#board`), composed once per animation frame: the committed layer, then
//!   the strokes still being drawn (mine and peers') and the preview of a shape being dragged.
//!
//! So a pointer event costs a few segments, not a repaint of 20,000 strokes. The renderer reads
//! the document and never changes it.

use crate::canvas::{Canvas, paint_element};
use shared::PeerId;
use shared::document::{Changes, Document, Element, OpId};
use shared::shapes::Bounds;
use shared::view::View;
use std::collections::BTreeSet;

/// The visible canvas, its committed layer, the view, and what is still being drawn.
pub(super) struct Renderer {
    canvas: Canvas,
    committed: Canvas,
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
        let committed = Canvas::detached(w, h, canvas.pixel_ratio())
            .unwrap_or_else(|_| Canvas::detached(0.0, 0.0, 1.0).expect("a document exists"));
        Renderer {
            canvas,
            committed,
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
        self.frame_pending || self.repaint_pending
    }

    /// Composes the visible canvas: the committed layer (repainted first if it must be), then
    /// the elements still being drawn and `preview`.
    pub(super) fn render(&mut self, doc: &Document, preview: Option<&Element>) {
        if self.repaint_pending {
            self.repaint_committed(doc);
        }
        self.frame_pending = false;
        self.canvas.clear();
        self.canvas.draw_layer(&self.committed);
        self.canvas.set_view(&self.view);
        let ctx = self.canvas.context();
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
        if let Some(preview) = preview {
            paint_element(ctx, preview, 0);
        }
    }

    fn repaint_committed(&mut self, doc: &Document) {
        self.repaint_pending = false;
        self.committed.clear();
        self.committed.set_view(&self.view);
        let ctx = self.committed.context();
        // Only what the view shows, found through the document's grid (`shared::spatial`):
        // zoomed in on a large drawing, most elements are off screen and never looked at. Text
        // is always painted: its bounds are an estimate (fonts differ), not a promise.
        let (w, h) = self.committed.css_size();
        let (min_x, min_y) = self.view.to_world(0.0, 0.0);
        let (max_x, max_y) = self.view.to_world(w as f32, h as f32);
        let shown = Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        // The top of what the layer holds: an element finished above it can be painted alone.
        // Elements off screen are not on the layer, so they need not be under it.
        let mut top = None;
        for element in doc.visible_in(&shown) {
            if self.live.contains(&element.id) {
                continue;
            }
            top = Some((element.lamport, element.id.clone()));
            paint_element(ctx, element, 0);
        }
        self.committed_top = top;
    }

    /// Commits the unfinished strokes of authors who are gone (neither `me` nor `in_room`).
    /// Returns how many were committed.
    pub(super) fn settle_live(&mut self, me: &PeerId, in_room: impl Fn(&PeerId) -> bool) -> usize {
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
        for id in changes.finished {
            self.live.remove(&id);
            if self.repaint_pending {
                continue;
            }
            let Some(element) = doc.element(&id) else {
                continue;
            };
            if !doc.is_visible(element) {
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
}
