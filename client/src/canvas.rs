//! The drawing surface: a `<canvas>` that paints elements sharply on any screen, the painting
//! code itself (one function per element, used for the screen and for the PNG export alike), and
//! the pointer input on a canvas.
//!
//! Elements live in drawing ("world") coordinates; the [`View`] maps them to the canvas's CSS
//! pixels. The backing store has `devicePixelRatio` device pixels per CSS pixel and the context's
//! transform folds ratio, zoom and pan together, so lines are sharp on HiDPI screens at any zoom
//! while every peer still agrees on where a point is.
//!
//! Resizing a canvas's backing store wipes it (the tutorial's drawing vanished on every window
//! resize); [`Canvas::resize`] is therefore always followed by a repaint from the document.

use crate::dom::{self, Listener};
use shared::document::{Element, Shape};
use shared::geometry::{Point, StrokePiece, normalize_pressure, stroke_pieces};
use shared::pointer::{Arbiter, PointerKind, Press};
use shared::shapes::{ellipse_outline, text_height};
use shared::view::View;
use std::cell::Cell;
use std::f64::consts::TAU;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{CanvasRenderingContext2d, Event, HtmlCanvasElement, PointerEvent};

/// Segments an ellipse is drawn with: the same outline as the SVG export and the eraser's hit test.
pub const ELLIPSE_SEGMENTS: usize = 64;

/// A canvas and its 2D context, sized for the screen it is on.
pub struct Canvas {
    element: HtmlCanvasElement,
    context: CanvasRenderingContext2d,
    css_width: f64,
    css_height: f64,
    pixel_ratio: f64,
}

impl Canvas {
    /// Takes over `element` and sizes its backing store to its current CSS box.
    pub fn new(element: HtmlCanvasElement) -> Result<Canvas, JsValue> {
        let mut canvas = Canvas::wrap(element)?;
        canvas.fit();
        Ok(canvas)
    }

    /// A canvas outside the page (a layer, or an export), `css_width` × `css_height` CSS pixels at
    /// `pixel_ratio`.
    pub fn detached(css_width: f64, css_height: f64, pixel_ratio: f64) -> Result<Canvas, JsValue> {
        let element = dom::document()?
            .create_element("canvas")?
            .dyn_into::<HtmlCanvasElement>()?;
        let mut canvas = Canvas::wrap(element)?;
        canvas.resize(css_width, css_height, pixel_ratio);
        Ok(canvas)
    }

    fn wrap(element: HtmlCanvasElement) -> Result<Canvas, JsValue> {
        let context = element
            .get_context("2d")?
            .ok_or_else(|| JsValue::from_str("canvas has no 2d context"))?
            .dyn_into::<CanvasRenderingContext2d>()?;
        Ok(Canvas {
            element,
            context,
            css_width: 0.0,
            css_height: 0.0,
            pixel_ratio: 1.0,
        })
    }

    /// Resizes the backing store to the element's CSS box and the window's `devicePixelRatio`
    /// (which changes with browser zoom and when the window moves to another screen).
    /// Wipes the canvas: repaint afterwards.
    pub fn fit(&mut self) {
        let rect = self.element.get_bounding_client_rect();
        let ratio = web_sys::window().map_or(1.0, |w| w.device_pixel_ratio());
        self.resize(rect.width(), rect.height(), ratio);
    }

    /// Sizes the backing store for a CSS box of `css_width` × `css_height` at `pixel_ratio`
    /// device pixels per CSS pixel. Wipes the canvas: repaint afterwards.
    pub fn resize(&mut self, css_width: f64, css_height: f64, pixel_ratio: f64) {
        let ratio = if pixel_ratio.is_finite() && pixel_ratio > 0.0 {
            pixel_ratio
        } else {
            1.0
        };
        self.css_width = css_width.max(0.0);
        self.css_height = css_height.max(0.0);
        self.pixel_ratio = ratio;
        self.element
            .set_width((self.css_width * ratio).round() as u32);
        self.element
            .set_height((self.css_height * ratio).round() as u32);
        self.set_view(&View::default());
    }

    /// Points the context at `view`: world coordinates in, device pixels out. (A new backing
    /// store resets the context's state, this transform and the line style included.)
    pub fn set_view(&self, view: &View) {
        let (r, z) = (self.pixel_ratio, f64::from(view.zoom));
        let (dx, dy) = (-f64::from(view.x) * z * r, -f64::from(view.y) * z * r);
        if let Err(err) = self.context.set_transform(r * z, 0.0, 0.0, r * z, dx, dy) {
            web_sys::console::warn_2(&"canvas transform refused:".into(), &err);
        }
        self.context.set_line_cap("round");
        self.context.set_line_join("round");
    }

    /// The `<canvas>` element.
    pub fn element(&self) -> &HtmlCanvasElement {
        &self.element
    }

    /// The 2D context (tests read pixels back through it).
    pub fn context(&self) -> &CanvasRenderingContext2d {
        &self.context
    }

    /// The CSS size the backing store was last fitted to.
    pub fn css_size(&self) -> (f64, f64) {
        (self.css_width, self.css_height)
    }

    /// Device pixels per CSS pixel in the backing store.
    pub fn pixel_ratio(&self) -> f64 {
        self.pixel_ratio
    }

    /// Clears every pixel, whatever the view.
    pub fn clear(&self) {
        let ctx = &self.context;
        ctx.save();
        let _ = ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        ctx.clear_rect(
            0.0,
            0.0,
            f64::from(self.element.width()),
            f64::from(self.element.height()),
        );
        ctx.restore();
    }

    /// Copies `layer` (a canvas of the same backing size) over this one, pixel for pixel.
    pub fn draw_layer(&self, layer: &Canvas) {
        let ctx = &self.context;
        ctx.save();
        let _ = ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        if let Err(err) = ctx.draw_image_with_html_canvas_element(&layer.element, 0.0, 0.0) {
            web_sys::console::warn_2(&"layer not drawn:".into(), &err);
        }
        ctx.restore();
    }

    /// Draws `layer` scaled by `scale` and moved by `(dx, dy)` CSS pixels: an older picture
    /// following a pan or zoom until it is repainted (see `View::relative_to`).
    pub fn draw_layer_moved(&self, layer: &Canvas, (scale, dx, dy): (f32, f32, f32)) {
        if (scale, dx, dy) == (1.0, 0.0, 0.0) {
            return self.draw_layer(layer);
        }
        let ctx = &self.context;
        let r = self.pixel_ratio;
        let s = f64::from(scale);
        ctx.save();
        let _ = ctx.set_transform(s, 0.0, 0.0, s, f64::from(dx) * r, f64::from(dy) * r);
        if let Err(err) = ctx.draw_image_with_html_canvas_element(&layer.element, 0.0, 0.0) {
            web_sys::console::warn_2(&"layer not drawn:".into(), &err);
        }
        ctx.restore();
    }

    /// Makes the browser carry out the drawing queued on this canvas now. Browsers record 2D
    /// drawing and rasterize it when the canvas is next read; a layer painted over several
    /// frames would otherwise be rasterized all at once, in the frame that first shows it (a
    /// 100 ms frame for 20,000 strokes, measured). Copying one pixel into `scratch` (1 x 1)
    /// reads it.
    pub fn flush_into(&self, scratch: &Canvas) {
        let _ = scratch
            .context
            .draw_image_with_html_canvas_element_and_dw_and_dh(&self.element, 0.0, 0.0, 1.0, 1.0);
    }

    /// Paints `element` from its point `from` on (see [`paint_element`]).
    pub fn paint(&self, element: &Element, from: usize) {
        paint_element(&self.context, element, from);
    }
}

/// Paints an element in world coordinates on `ctx`: the one painting code for the screen, its
/// layers and the PNG export, so they cannot disagree.
///
/// A stroke is painted from its point `from` on (the increment the document reported), in the
/// pieces [`stroke_pieces`] cuts it into: a path per run of segments of one width (the width
/// follows the pressure), round joins and caps joining them seamlessly, and a dot for a segment
/// from a point to itself. Other shapes are outlines, painted whole.
pub fn paint_element(ctx: &CanvasRenderingContext2d, element: &Element, from: usize) {
    let color = element.color.to_string();
    ctx.set_stroke_style_str(&color);
    ctx.set_fill_style_str(&color);
    let width = f64::from(element.width);
    match &element.shape {
        Shape::Stroke { points } => {
            for piece in stroke_pieces(element.width, points, from) {
                ctx.begin_path();
                match piece {
                    StrokePiece::Dot { at, width } => {
                        let p = points[at];
                        // Cannot fail: the radius is never negative.
                        let _ = ctx.arc(
                            f64::from(p.x),
                            f64::from(p.y),
                            f64::from(width) / 2.0,
                            0.0,
                            TAU,
                        );
                        ctx.fill();
                    }
                    StrokePiece::Run { start, end, width } => {
                        ctx.set_line_width(f64::from(width));
                        let first = points[start - 1];
                        ctx.move_to(f64::from(first.x), f64::from(first.y));
                        for p in &points[start..end] {
                            ctx.line_to(f64::from(p.x), f64::from(p.y));
                        }
                        ctx.stroke();
                    }
                }
            }
        }
        Shape::Line { from, to } => {
            ctx.set_line_width(width);
            ctx.begin_path();
            ctx.move_to(f64::from(from.x), f64::from(from.y));
            ctx.line_to(f64::from(to.x), f64::from(to.y));
            ctx.stroke();
        }
        Shape::Rect { from, to } => {
            ctx.set_line_width(width);
            ctx.stroke_rect(
                f64::from(from.x.min(to.x)),
                f64::from(from.y.min(to.y)),
                f64::from((to.x - from.x).abs()),
                f64::from((to.y - from.y).abs()),
            );
        }
        Shape::Ellipse { from, to } => {
            ctx.set_line_width(width);
            ctx.begin_path();
            for (i, (x, y)) in ellipse_outline(*from, *to, ELLIPSE_SEGMENTS)
                .into_iter()
                .enumerate()
            {
                if i == 0 {
                    ctx.move_to(f64::from(x), f64::from(y));
                } else {
                    ctx.line_to(f64::from(x), f64::from(y));
                }
            }
            ctx.close_path();
            ctx.stroke();
        }
        Shape::Text { at, text, size } => {
            // The same baseline as the SVG export: 80% down the line box.
            ctx.set_font(&format!("{size}px sans-serif"));
            ctx.set_text_baseline("alphabetic");
            let _ = ctx.fill_text(
                text,
                f64::from(at.x),
                f64::from(at.y + text_height(*size) * 0.8),
            );
        }
    }
}

/// What the pen (mouse, finger or stylus) did on the canvas, in drawing coordinates.
#[derive(Clone, Debug, PartialEq)]
pub enum PenInput {
    /// Pressed: a stroke begins at this point.
    Down(Point),
    /// Moved while pressed: the points since the last report, in order.
    Move(Vec<Point>),
    /// Lifted, or the browser took the pointer away (`pointercancel`): the stroke ends.
    Up,
}

#[wasm_bindgen]
extern "C" {
    /// A pointer event read at full precision. web-sys declares `clientX`/`clientY` as integers
    /// (an older IDL); browsers give them in fractions of a pixel, which HiDPI screens and pens
    /// make visible.
    pub(crate) type PrecisePointer;
    #[wasm_bindgen(method, getter, js_name = clientX)]
    pub(crate) fn client_x(this: &PrecisePointer) -> f64;
    #[wasm_bindgen(method, getter, js_name = clientY)]
    pub(crate) fn client_y(this: &PrecisePointer) -> f64;
}

/// Pointer Events on the canvas turned into [`PenInput`]. Owns its listeners; dropping it stops
/// the input.
///
/// One pointer draws at a time, and a pen before any finger ([`Arbiter`]): a second finger is
/// ignored until the first lifts, a palm is ignored while the pen is down, and a pen takes over
/// from a palm that landed first. The pointer is captured on press, so a stroke continues (and
/// ends) even when it leaves the canvas.
pub struct PointerInput {
    _listeners: [Listener; 5],
}

impl PointerInput {
    /// Starts listening on `element`; `on_input` hears every [`PenInput`]. It is an `Fn`, so an
    /// event that arrives while it runs (one it caused) reaches it too, rather than being lost.
    pub fn attach(element: &HtmlCanvasElement, on_input: impl Fn(PenInput) + 'static) -> Self {
        let arbiter = Cell::new(Arbiter::default());
        let element_at = element.clone();
        let emit = on_input;
        let handle = Rc::new(move |e: &Event| {
            let Some(e) = e.dyn_ref::<PointerEvent>() else {
                return;
            };
            let id = e.pointer_id();
            match e.type_().as_str() {
                "pointerdown" => {
                    // Only the primary button of a mouse draws; pens and touches always do.
                    if e.pointer_type() == "mouse" && e.button() != 0 {
                        return;
                    }
                    let mut a = arbiter.get();
                    let press = a.press(id, PointerKind::parse(&e.pointer_type()));
                    arbiter.set(a);
                    match press {
                        Press::Ignore => return,
                        Press::EndThenStart => emit(PenInput::Up),
                        Press::Start => {}
                    }
                    e.prevent_default();
                    // Fails only for a pointer that is already gone; the stroke still works.
                    let _ = element_at.set_pointer_capture(id);
                    emit(PenInput::Down(point_of(&element_at, e)));
                }
                "pointermove" if arbiter.get().draws(id) => {
                    emit(PenInput::Move(points_of(&element_at, e)));
                }
                // Losing the capture without a pointerup (the element was hidden, say) ends the
                // stroke too; after a pointerup it finds no active pointer and does nothing.
                "pointerup" | "pointercancel" | "lostpointercapture" => {
                    let mut a = arbiter.get();
                    let ends = a.lift(id);
                    arbiter.set(a);
                    if ends {
                        emit(PenInput::Up);
                    }
                }
                _ => {}
            }
        });
        let listen = |name| {
            let handle = handle.clone();
            Listener::new(element, name, move |e| handle(&e))
        };
        PointerInput {
            _listeners: [
                listen("pointerdown"),
                listen("pointermove"),
                listen("pointerup"),
                listen("pointercancel"),
                listen("lostpointercapture"),
            ],
        }
    }
}

/// The event's position in drawing coordinates, with its pen pressure.
fn point_of(element: &HtmlCanvasElement, e: &PointerEvent) -> Point {
    let rect = element.get_bounding_client_rect();
    point_in(&rect, e)
}

/// Positions are kept to 1/16 of a CSS pixel and pressure to 1/64: finer than any screen or pen
/// shows, and binary fractions print exactly, so `12.3125` travels instead of
/// `12.312999725341797` (an `f32` printed as the `f64` JavaScript numbers are).
fn point_in(rect: &web_sys::DomRect, e: &PointerEvent) -> Point {
    let precise = e.unchecked_ref::<PrecisePointer>();
    Point::new(
        quantize(precise.client_x() - rect.left(), 16.0),
        quantize(precise.client_y() - rect.top(), 16.0),
        quantize(f64::from(normalize_pressure(e.pressure())), 64.0),
    )
}

/// `value` rounded to the nearest multiple of `1 / steps`.
pub fn quantize(value: f64, steps: f64) -> f32 {
    ((value * steps).round() / steps) as f32
}

/// Every position the pointer passed through since the last event. Browsers fire `pointermove`
/// at most once a frame and fold the rest into `getCoalescedEvents()`; using them keeps fast
/// curves smooth. Browsers without it get the event's own position.
fn points_of(element: &HtmlCanvasElement, e: &PointerEvent) -> Vec<Point> {
    let rect = element.get_bounding_client_rect();
    let has_coalesced =
        js_sys::Reflect::has(e, &JsValue::from_str("getCoalescedEvents")).unwrap_or(false);
    if has_coalesced {
        let events = e.get_coalesced_events();
        if events.length() > 0 {
            return events
                .iter()
                .filter_map(|ev| ev.dyn_into::<PointerEvent>().ok())
                .map(|ev| point_in(&rect, &ev))
                .collect();
        }
    }
    vec![point_in(&rect, e)]
}
