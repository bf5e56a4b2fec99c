//! Geometry of whole elements: their bounds (for export and culling), what the eraser hits, and
//! the ellipse outline both the canvas and the hit test use.

use crate::document::{Element, Shape};
use crate::geometry::{Point, pressure_width};

/// An axis-aligned box in drawing coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Left.
    pub min_x: f32,
    /// Top.
    pub min_y: f32,
    /// Right.
    pub max_x: f32,
    /// Bottom.
    pub max_y: f32,
}

impl Bounds {
    fn around(points: impl IntoIterator<Item = (f32, f32)>, pad: f32) -> Option<Bounds> {
        points
            .into_iter()
            .fold(None, |b: Option<Bounds>, (x, y)| {
                Some(match b {
                    None => Bounds {
                        min_x: x,
                        min_y: y,
                        max_x: x,
                        max_y: y,
                    },
                    Some(b) => Bounds {
                        min_x: b.min_x.min(x),
                        min_y: b.min_y.min(y),
                        max_x: b.max_x.max(x),
                        max_y: b.max_y.max(y),
                    },
                })
            })
            .map(|b| b.pad(pad))
    }

    /// The box grown by `pad` on every side.
    pub fn pad(self, pad: f32) -> Bounds {
        Bounds {
            min_x: self.min_x - pad,
            min_y: self.min_y - pad,
            max_x: self.max_x + pad,
            max_y: self.max_y + pad,
        }
    }

    /// The smallest box holding both.
    pub fn union(self, other: Bounds) -> Bounds {
        Bounds {
            min_x: self.min_x.min(other.min_x),
            min_y: self.min_y.min(other.min_y),
            max_x: self.max_x.max(other.max_x),
            max_y: self.max_y.max(other.max_y),
        }
    }

    /// Width.
    pub fn width(&self) -> f32 {
        self.max_x - self.min_x
    }

    /// Height.
    pub fn height(&self) -> f32 {
        self.max_y - self.min_y
    }

    /// True when the two boxes overlap (touching edges count).
    pub fn intersects(&self, other: &Bounds) -> bool {
        self.min_x <= other.max_x
            && other.min_x <= self.max_x
            && self.min_y <= other.max_y
            && other.min_y <= self.max_y
    }

    /// True when the point is inside (edges included).
    pub fn contains(&self, x: f32, y: f32) -> bool {
        (self.min_x..=self.max_x).contains(&x) && (self.min_y..=self.max_y).contains(&y)
    }
}

/// Width of a text element, estimated (the canvas measures exactly; this is for bounds and hits,
/// which must not depend on fonts so every replica agrees).
pub fn text_width(text: &str, size: f32) -> f32 {
    text.chars().count() as f32 * size * 0.6
}

/// Line height of a text element.
pub fn text_height(size: f32) -> f32 {
    size * 1.25
}

/// Points along the ellipse inscribed in the box `from`–`to`, closed (first point repeated).
pub fn ellipse_outline(from: Point, to: Point, segments: usize) -> Vec<(f32, f32)> {
    let (cx, cy) = ((from.x + to.x) / 2.0, (from.y + to.y) / 2.0);
    let (rx, ry) = ((to.x - from.x).abs() / 2.0, (to.y - from.y).abs() / 2.0);
    (0..=segments)
        .map(|i| {
            let t = i as f32 / segments as f32 * std::f32::consts::TAU;
            (cx + rx * t.cos(), cy + ry * t.sin())
        })
        .collect()
}

/// The element's bounding box, including half its line width.
pub fn bounds(element: &Element) -> Bounds {
    let pad = element.width;
    let b = match &element.shape {
        Shape::Stroke { points } => stroke_bounds(element.width, points),
        Shape::Line { from, to } | Shape::Rect { from, to } | Shape::Ellipse { from, to } => {
            Bounds::around([(from.x, from.y), (to.x, to.y)], pad / 2.0)
        }
        Shape::Text { at, text, size } => Bounds::around(
            [
                (at.x, at.y),
                (at.x + text_width(text, *size), at.y + text_height(*size)),
            ],
            0.0,
        ),
    };
    b.unwrap_or(Bounds {
        min_x: 0.0,
        min_y: 0.0,
        max_x: 0.0,
        max_y: 0.0,
    })
}

/// The box of a stroke's `points` drawn at base `width`: each point's ink reaches half its
/// pressure's width, so the widest of them pads the whole box. `None` without points.
pub fn stroke_bounds(width: f32, points: &[Point]) -> Option<Bounds> {
    let widest = points
        .iter()
        .map(|p| pressure_width(width, p.pressure))
        .fold(0.0, f32::max);
    Bounds::around(points.iter().map(|p| (p.x, p.y)), widest / 2.0)
}

/// The bounds of all the elements, if any.
pub fn bounds_of<'a>(elements: impl IntoIterator<Item = &'a Element>) -> Option<Bounds> {
    elements.into_iter().map(bounds).reduce(Bounds::union)
}

fn distance_to_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 {
        0.0
    } else {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    };
    let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - cx).powi(2) + (p.1 - cy).powi(2)).sqrt()
}

fn near_polyline(p: (f32, f32), points: &[(f32, f32)], reach: f32) -> bool {
    match points {
        [] => false,
        [only] => distance_to_segment(p, *only, *only) <= reach,
        _ => points
            .windows(2)
            .any(|w| distance_to_segment(p, w[0], w[1]) <= reach),
    }
}

/// True when an eraser of `radius` at `(x, y)` touches the element's ink. Shapes are outlines,
/// so the inside of a rectangle or an ellipse is not a hit.
pub fn hits(element: &Element, x: f32, y: f32, radius: f32) -> bool {
    let p = (x, y);
    if !bounds(element).pad(radius).contains(x, y) {
        return false;
    }
    let reach = radius + element.width / 2.0;
    match &element.shape {
        Shape::Stroke { points } => {
            let widest = points
                .iter()
                .map(|q| pressure_width(element.width, q.pressure))
                .fold(0.0, f32::max);
            let pts: Vec<(f32, f32)> = points.iter().map(|q| (q.x, q.y)).collect();
            near_polyline(p, &pts, radius + widest / 2.0)
        }
        Shape::Line { from, to } => distance_to_segment(p, (from.x, from.y), (to.x, to.y)) <= reach,
        Shape::Rect { from, to } => {
            let corners = [
                (from.x, from.y),
                (to.x, from.y),
                (to.x, to.y),
                (from.x, to.y),
                (from.x, from.y),
            ];
            near_polyline(p, &corners, reach)
        }
        Shape::Ellipse { from, to } => near_polyline(p, &ellipse_outline(*from, *to, 64), reach),
        Shape::Text { .. } => bounds(element).pad(radius).contains(x, y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::Color;

    fn element(shape: Shape) -> Element {
        Element::for_test(shape, Color::rgb(0, 0, 0), 4.0)
    }

    fn pt(x: f32, y: f32) -> Point {
        Point::new(x, y, 0.5)
    }

    #[test]
    fn strokes_are_hit_near_their_ink_only() {
        let e = element(Shape::Stroke {
            points: vec![pt(0.0, 0.0), pt(100.0, 0.0)],
        });
        assert!(hits(&e, 50.0, 3.0, 2.0));
        assert!(!hits(&e, 50.0, 10.0, 2.0));
        assert!(!hits(&e, 120.0, 0.0, 2.0));
        let dot = element(Shape::Stroke {
            points: vec![pt(5.0, 5.0)],
        });
        assert!(hits(&dot, 6.0, 6.0, 1.0));
    }

    #[test]
    fn shapes_are_outlines() {
        let rect = element(Shape::Rect {
            from: pt(0.0, 0.0),
            to: pt(100.0, 50.0),
        });
        assert!(hits(&rect, 100.0, 25.0, 1.0), "on the right edge");
        assert!(!hits(&rect, 50.0, 25.0, 1.0), "inside is empty");
        let ellipse = element(Shape::Ellipse {
            from: pt(0.0, 0.0),
            to: pt(100.0, 50.0),
        });
        assert!(hits(&ellipse, 50.0, 0.0, 1.0), "top of the outline");
        assert!(hits(&ellipse, 100.0, 25.0, 1.0), "right of the outline");
        assert!(!hits(&ellipse, 50.0, 25.0, 1.0), "centre");
        let line = element(Shape::Line {
            from: pt(0.0, 0.0),
            to: pt(10.0, 10.0),
        });
        assert!(hits(&line, 5.0, 5.0, 0.5));
        assert!(!hits(&line, 10.0, 0.0, 0.5));
    }

    #[test]
    fn text_is_hit_inside_its_box() {
        let text = element(Shape::Text {
            at: pt(10.0, 10.0),
            text: "hello".into(),
            size: 20.0,
        });
        let b = bounds(&text);
        assert_eq!(
            (b.min_x, b.min_y, b.max_x, b.max_y),
            (10.0, 10.0, 70.0, 35.0)
        );
        assert!(hits(&text, 30.0, 20.0, 0.0));
        assert!(!hits(&text, 80.0, 20.0, 0.0));
    }

    #[test]
    fn boxes_intersect_when_they_overlap_or_touch() {
        let b = |min_x, min_y, max_x, max_y| Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        };
        let view = b(0.0, 0.0, 100.0, 100.0);
        assert!(view.intersects(&b(50.0, 50.0, 150.0, 150.0)));
        assert!(view.intersects(&b(-10.0, -10.0, 200.0, 200.0)), "covering");
        assert!(view.intersects(&b(10.0, 10.0, 20.0, 20.0)), "inside");
        assert!(view.intersects(&b(100.0, 0.0, 120.0, 10.0)), "touching");
        assert!(!view.intersects(&b(101.0, 0.0, 120.0, 10.0)));
        assert!(!view.intersects(&b(0.0, -30.0, 10.0, -1.0)));
    }

    #[test]
    fn bounds_cover_the_line_width() {
        let e = element(Shape::Line {
            from: pt(10.0, 10.0),
            to: pt(20.0, 30.0),
        });
        assert_eq!(
            bounds(&e),
            Bounds {
                min_x: 8.0,
                min_y: 8.0,
                max_x: 22.0,
                max_y: 32.0
            }
        );
        let all = bounds_of([
            &e,
            &element(Shape::Stroke {
                points: vec![pt(-5.0, 0.0)],
            }),
        ])
        .unwrap();
        assert_eq!((all.min_x, all.max_y), (-7.0, 32.0));
        assert!(bounds_of(std::iter::empty()).is_none());
    }
}
