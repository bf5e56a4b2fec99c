//! The pen: the drawing tools as a state machine. A press starts a drag (a stroke, a shape, an
//! erase, a pan), moves extend it, a release ends it; each step says which ops it made. Points
//! arrive in screen coordinates and become world points through the renderer's view.

use super::Board;
use crate::canvas::PenInput;
use crate::tools::{DEFAULT_WIDTH, ERASER_RADIUS, Tool, clamp_width, text_size};
use shared::PeerId;
use shared::color::Color;
use shared::document::{Element, MAX_POINTS_PER_OP, MAX_TEXT_CHARS, Op, OpId, OpKind, Seq, Shape};
use shared::geometry::Point;
use shared::shapes::hits;
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

    /// True while a shape is dragged out: its preview is on screen.
    fn drags_shape(&self) -> bool {
        matches!(self.drag, Some(Drag::Shape { .. }))
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

impl Board {
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
        self.pen.drag = Some(Drag::Pan(at.x, at.y));
        out
    }

    /// Adds a text element with its top-left at a screen point; `None` for blank text.
    pub fn add_text(&mut self, at: (f32, f32), text: &str) -> Option<Op> {
        let text: String = text.trim().chars().take(MAX_TEXT_CHARS).collect();
        if text.is_empty() {
            return None;
        }
        let at = self.world(Point::new(at.0, at.1, 0.5));
        let (color, width) = (self.pen.color, self.pen.width);
        Some(self.perform(OpKind::Add {
            shape: Shape::Text {
                at,
                text,
                size: text_size(width),
            },
            color,
            width,
        }))
    }

    /// The font size text gets now, in screen pixels (for the text input).
    pub fn text_screen_size(&self) -> f32 {
        text_size(self.pen.width) * self.renderer.view().zoom
    }

    fn press(&mut self, p: Point) -> Vec<Op> {
        let w = self.world(p);
        let (color, width) = (self.pen.color, self.pen.width);
        match self.pen.tool {
            Tool::Pen => {
                let op = self.perform(OpKind::Add {
                    shape: Shape::Stroke { points: vec![w] },
                    color,
                    width,
                });
                self.pen.drag = Some(Drag::Stroke(op.seq));
                vec![op]
            }
            Tool::Eraser => {
                self.pen.drag = Some(Drag::Erase(HashSet::new()));
                self.erase_at(&[p])
            }
            Tool::Line | Tool::Rect | Tool::Ellipse => {
                self.pen.drag = Some(Drag::Shape {
                    tool: self.pen.tool,
                    from: w,
                    to: w,
                });
                self.renderer.redraw();
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
        match &mut self.pen.drag {
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
                if let Some(Drag::Shape { to, .. }) = &mut self.pen.drag {
                    *to = w;
                }
                self.renderer.redraw();
                Vec::new()
            }
            Some(Drag::Erase(_)) => self.erase_at(points),
            Some(Drag::Pan(x, y)) => {
                let (dx, dy) = (last.x - *x, last.y - *y);
                self.pen.drag = Some(Drag::Pan(last.x, last.y));
                let mut view = self.renderer.view();
                view.pan_by(dx, dy);
                self.renderer.set_view(view);
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    fn release(&mut self) -> Vec<Op> {
        if self.pen.drags_shape() {
            self.renderer.redraw();
        }
        match self.pen.drag.take() {
            Some(Drag::Stroke(element)) => vec![self.perform(OpKind::Finish { element })],
            Some(Drag::Shape { tool, from, to }) => match shape_of(tool, from, to) {
                Some(shape) => vec![self.perform(OpKind::Add {
                    shape,
                    color: self.pen.color,
                    width: self.pen.width,
                })],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// Erases every visible element the eraser touches at these screen points and did not
    /// already erase in this drag: one `erase` op, or none.
    fn erase_at(&mut self, points: &[Point]) -> Vec<Op> {
        let radius = ERASER_RADIUS / self.renderer.view().zoom;
        let world: Vec<Point> = points.iter().map(|p| self.world(*p)).collect();
        let Some(Drag::Erase(erased)) = &mut self.pen.drag else {
            return Vec::new();
        };
        let mut targets = Vec::new();
        for element in self.model.doc().visible() {
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

    /// A screen point (CSS pixels on the canvas) as a world point, kept to 1/16 of a unit like
    /// the pointer input (short on the wire, exact in binary).
    fn world(&self, p: Point) -> Point {
        let (x, y) = self.renderer.view().to_world(p.x, p.y);
        Point::new(quantize(x), quantize(y), p.pressure)
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
