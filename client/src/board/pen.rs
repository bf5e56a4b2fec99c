//! The pen: the drawing tools as a state machine. A press starts a drag (a stroke, a shape, an
//! erase, a pan), moves extend it, a release ends it; each step makes its ops on the model, hands
//! what they changed to the renderer, and returns them. Points arrive in screen coordinates and
//! become world points through the renderer's view.

use super::model::Model;
use super::render::Renderer;
use crate::canvas::PenInput;
use crate::tools::{DEFAULT_WIDTH, ERASER_RADIUS, Tool, clamp_width, text_size};
use shared::PeerId;
use shared::color::Color;
use shared::document::{Element, MAX_POINTS_PER_OP, MAX_TEXT_CHARS, Op, OpId, OpKind, Seq, Shape};
use shared::geometry::Point;
use std::collections::HashSet;

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

/// The tool, the style of new elements, and the drag under way.
pub(super) struct Pen {
    pub(super) tool: Tool,
    pub(super) color: Color,
    width: f32,
    drag: Option<Drag>,
}

impl Pen {
    pub(super) fn new(color: Color) -> Pen {
        Pen {
            tool: Tool::Pen,
            color,
            width: DEFAULT_WIDTH,
            drag: None,
        }
    }

    pub(super) fn width(&self) -> f32 {
        self.width
    }

    pub(super) fn set_width(&mut self, width: f32) {
        self.width = clamp_width(width);
    }

    /// Ends the stroke being drawn, if any, without an op: the element to finish.
    pub(super) fn take_stroke(&mut self) -> Option<Seq> {
        match self.drag.take() {
            Some(Drag::Stroke(element)) => Some(element),
            _ => None,
        }
    }

    /// The shape being dragged, as the element it would add.
    pub(super) fn preview(&self, me: &PeerId) -> Option<Element> {
        let Some(Drag::Shape { tool, from, to }) = &self.drag else {
            return None;
        };
        Some(Element {
            id: OpId {
                author: me.clone(),
                seq: 0,
            },
            lamport: 0,
            shape: shape_of(*tool, *from, *to)?,
            color: self.color,
            width: self.width,
            finished: false,
        })
    }
}

impl Pen {
    /// Applies local pointer input (screen coordinates) with the current tool; returns the ops
    /// made.
    pub(super) fn pen(
        &mut self,
        input: PenInput,
        model: &mut Model,
        out: &mut Renderer,
    ) -> Vec<Op> {
        match input {
            PenInput::Down(p) => {
                let mut ops = self.pen(PenInput::Up, model, out);
                ops.extend(self.press(p, model, out));
                ops
            }
            PenInput::Move(points) => self.drag_to(&points, model, out),
            PenInput::Up => self.release(model, out),
        }
    }

    /// Starts a pan (space + drag) at a screen point instead of drawing.
    pub(super) fn start_pan(
        &mut self,
        at: Point,
        model: &mut Model,
        out: &mut Renderer,
    ) -> Vec<Op> {
        let ops = self.pen(PenInput::Up, model, out);
        self.drag = Some(Drag::Pan(at.x, at.y));
        ops
    }

    /// Adds a text element with its top-left at a screen point; `None` for blank text.
    pub(super) fn add_text(
        &self,
        at: (f32, f32),
        text: &str,
        model: &mut Model,
        out: &mut Renderer,
    ) -> Option<Op> {
        let text: String = text.trim().chars().take(MAX_TEXT_CHARS).collect();
        if text.is_empty() {
            return None;
        }
        let at = world(out, Point::new(at.0, at.1, 0.5));
        Some(perform(
            OpKind::Add {
                shape: Shape::Text {
                    at,
                    text,
                    size: text_size(self.width),
                },
                color: self.color,
                width: self.width,
            },
            model,
            out,
        ))
    }

    /// The font size text gets now, in screen pixels, at `zoom` (for the text input).
    pub(super) fn text_screen_size(&self, zoom: f32) -> f32 {
        text_size(self.width) * zoom
    }

    fn press(&mut self, p: Point, model: &mut Model, out: &mut Renderer) -> Vec<Op> {
        let w = world(out, p);
        match self.tool {
            Tool::Pen => {
                let add = OpKind::Add {
                    shape: Shape::Stroke { points: vec![w] },
                    color: self.color,
                    width: self.width,
                };
                let op = perform(add, model, out);
                self.drag = Some(Drag::Stroke(op.seq));
                vec![op]
            }
            Tool::Eraser => {
                self.drag = Some(Drag::Erase(HashSet::new()));
                self.erase_at(&[p], model, out)
            }
            Tool::Line | Tool::Rect | Tool::Ellipse => {
                self.drag = Some(Drag::Shape {
                    tool: self.tool,
                    from: w,
                    to: w,
                });
                out.redraw();
                Vec::new()
            }
            // Text is typed into an input the app opens; see `add_text`.
            Tool::Text => Vec::new(),
        }
    }

    fn drag_to(&mut self, points: &[Point], model: &mut Model, out: &mut Renderer) -> Vec<Op> {
        let Some(last) = points.last().copied() else {
            return Vec::new();
        };
        match &mut self.drag {
            Some(Drag::Stroke(element)) => {
                let element = *element;
                let world: Vec<Point> = points.iter().map(|p| world(out, *p)).collect();
                world
                    .chunks(MAX_POINTS_PER_OP)
                    .map(|chunk| {
                        let extend = OpKind::Extend {
                            element,
                            points: chunk.to_vec(),
                        };
                        perform(extend, model, out)
                    })
                    .collect()
            }
            Some(Drag::Shape { to, .. }) => {
                *to = world(out, last);
                out.redraw();
                Vec::new()
            }
            Some(Drag::Erase(_)) => self.erase_at(points, model, out),
            Some(Drag::Pan(x, y)) => {
                let (dx, dy) = (last.x - *x, last.y - *y);
                self.drag = Some(Drag::Pan(last.x, last.y));
                let mut view = out.view();
                view.pan_by(dx, dy);
                out.set_view(view);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn release(&mut self, model: &mut Model, out: &mut Renderer) -> Vec<Op> {
        match self.drag.take() {
            Some(Drag::Stroke(element)) => vec![perform(OpKind::Finish { element }, model, out)],
            Some(Drag::Shape { tool, from, to }) => {
                out.redraw();
                match shape_of(tool, from, to) {
                    Some(shape) => {
                        let add = OpKind::Add {
                            shape,
                            color: self.color,
                            width: self.width,
                        };
                        vec![perform(add, model, out)]
                    }
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Erases every visible element the eraser touches at these screen points and did not
    /// already erase in this drag: one `erase` op, or none.
    fn erase_at(&mut self, points: &[Point], model: &mut Model, out: &mut Renderer) -> Vec<Op> {
        let radius = ERASER_RADIUS / out.view().zoom;
        let world: Vec<Point> = points.iter().map(|p| world(out, *p)).collect();
        let Some(Drag::Erase(erased)) = &mut self.drag else {
            return Vec::new();
        };
        // Through the document's grid: only the elements near each point are tested.
        let mut touched: Vec<(u64, &OpId)> = world
            .iter()
            .flat_map(|p| model.doc().hit(p.x, p.y, radius))
            .filter(|e| !erased.contains(&e.id))
            .map(|e| (e.lamport, &e.id))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let targets: Vec<OpId> = touched.into_iter().map(|(_, id)| id.clone()).collect();
        if targets.is_empty() {
            return Vec::new();
        }
        erased.extend(targets.iter().cloned());
        vec![perform(OpKind::erase(targets), model, out)]
    }
}

/// Makes an op of mine and shows it.
pub(super) fn perform(kind: OpKind, model: &mut Model, out: &mut Renderer) -> Op {
    let (op, changes) = model.perform(kind);
    out.absorb(changes, model.doc());
    op
}

/// A screen point (CSS pixels on the canvas) as a world point through the renderer's view,
/// kept to 1/16 of a unit like the pointer input (short on the wire, exact in binary).
fn world(out: &Renderer, p: Point) -> Point {
    let (x, y) = out.view().to_world(p.x, p.y);
    Point::new(quantize(x), quantize(y), p.pressure)
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
