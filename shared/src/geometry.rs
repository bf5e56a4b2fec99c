//! Geometry: points in drawing coordinates with pen pressure, and stroke widths.
//!
//! Coordinates are CSS pixels from the canvas's top-left corner, the same on every screen, so a
//! stroke lands in the same place for everyone whatever their device pixel ratio.

use serde::{Deserialize, Serialize};

/// Largest absolute coordinate accepted from a peer; anything beyond is garbage or an attack.
pub const MAX_COORD: f32 = 1_000_000.0;
/// Thinnest base width a stroke may have, in CSS pixels.
pub const MIN_WIDTH: f32 = 0.5;
/// Thickest base width a stroke may have, in CSS pixels.
pub const MAX_WIDTH: f32 = 64.0;
/// The pressure a mouse reports while a button is down (Pointer Events spec).
pub const MOUSE_PRESSURE: f32 = 0.5;

/// A point of a stroke: position and pen pressure (0 to 1; a mouse reports 0.5).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal position in CSS pixels.
    pub x: f32,
    /// Vertical position in CSS pixels.
    pub y: f32,
    /// Pen pressure, 0 to 1.
    #[serde(rename = "p")]
    pub pressure: f32,
}

impl Point {
    /// A point with the given pressure.
    pub fn new(x: f32, y: f32, pressure: f32) -> Point {
        Point { x, y, pressure }
    }

    /// True when the point is finite, within [`MAX_COORD`] and its pressure within 0 to 1.
    pub fn is_valid(&self) -> bool {
        self.x.is_finite()
            && self.y.is_finite()
            && self.x.abs() <= MAX_COORD
            && self.y.abs() <= MAX_COORD
            && (0.0..=1.0).contains(&self.pressure)
    }
}

/// True when `width` is a base stroke width we accept.
pub fn is_valid_width(width: f32) -> bool {
    (MIN_WIDTH..=MAX_WIDTH).contains(&width)
}

/// The width to draw a segment at: the stroke's base width scaled by pressure, so a mouse (0.5)
/// draws exactly the base width and a pen ranges from a quarter of it to one and three quarters.
pub fn pressure_width(base: f32, pressure: f32) -> f32 {
    let p = if pressure.is_finite() {
        pressure.clamp(0.0, 1.0)
    } else {
        MOUSE_PRESSURE
    };
    base * (0.25 + 1.5 * p)
}

/// Pointer Events report pressure 0 for hardware without pressure even while a button is down;
/// treat that as a mouse so such strokes do not vanish.
pub fn normalize_pressure(pressure: f32) -> f32 {
    if pressure.is_finite() && pressure > 0.0 {
        pressure.min(1.0)
    } else {
        MOUSE_PRESSURE
    }
}

/// A piece of a stroke as it is painted: segment `i` goes from point `i - 1` to point `i` (the
/// first from point 0 to itself) and is as wide as the pressure at point `i` makes it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StrokePiece {
    /// Segments `start..end`, all of one width: one path through points `start - 1 ..= end - 1`.
    Run {
        /// The first segment (at least 1).
        start: usize,
        /// Past the last segment.
        end: usize,
        /// Their width.
        width: f32,
    },
    /// A segment from a point to itself (a click, a stroke's first point): a dot, since a
    /// zero-length line may paint nothing.
    Dot {
        /// The point.
        at: usize,
        /// Its diameter.
        width: f32,
    },
}

/// The pieces that paint a stroke of base width `base` from its segment `from` on, in order:
/// consecutive segments of one width make one run, so a stroke drawn at one pressure (a mouse,
/// a finger) is one path rather than a path per segment. What a late joiner paints is mostly
/// this: 10,000 strokes of 50 points are 500,000 segments.
pub fn stroke_pieces(base: f32, points: &[Point], from: usize) -> Vec<StrokePiece> {
    let mut pieces: Vec<StrokePiece> = Vec::new();
    for i in from..points.len() {
        let (a, b) = (points[i.saturating_sub(1)], points[i]);
        let width = pressure_width(base, b.pressure);
        if a.x == b.x && a.y == b.y {
            pieces.push(StrokePiece::Dot { at: i, width });
            continue;
        }
        match pieces.last_mut() {
            Some(StrokePiece::Run { end, width: w, .. }) if *end == i && *w == width => *end += 1,
            _ => pieces.push(StrokePiece::Run {
                start: i,
                end: i + 1,
                width,
            }),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: usize, end: usize, width: f32) -> StrokePiece {
        StrokePiece::Run { start, end, width }
    }

    #[test]
    fn a_stroke_at_one_pressure_is_a_dot_and_one_run() {
        let points: Vec<Point> = (0..50).map(|i| Point::new(i as f32, 2.0, 0.5)).collect();
        let w = pressure_width(4.0, 0.5);
        assert_eq!(
            stroke_pieces(4.0, &points, 0),
            [StrokePiece::Dot { at: 0, width: w }, run(1, 50, w)]
        );
        // Painting on from point 30 (the live layer's increment): the rest only.
        assert_eq!(stroke_pieces(4.0, &points, 30), [run(30, 50, w)]);
        assert_eq!(stroke_pieces(4.0, &points, 50), []);
    }

    #[test]
    fn a_width_change_or_a_repeated_point_starts_a_new_piece() {
        let p = |x: f32, pressure: f32| Point::new(x, 0.0, pressure);
        let points = [
            p(0.0, 0.5),
            p(1.0, 0.5),
            p(2.0, 0.5),
            p(3.0, 1.0),
            p(3.0, 1.0),
            p(4.0, 1.0),
            p(5.0, 1.0),
        ];
        let (half, full) = (pressure_width(2.0, 0.5), pressure_width(2.0, 1.0));
        assert_eq!(
            stroke_pieces(2.0, &points, 0),
            [
                StrokePiece::Dot { at: 0, width: half },
                run(1, 3, half),
                run(3, 4, full),
                StrokePiece::Dot { at: 4, width: full },
                run(5, 7, full),
            ]
        );
    }

    #[test]
    fn mouse_pressure_draws_the_base_width() {
        assert_eq!(pressure_width(4.0, MOUSE_PRESSURE), 4.0);
        assert_eq!(pressure_width(4.0, 0.0), 1.0);
        assert_eq!(pressure_width(4.0, 1.0), 7.0);
        assert_eq!(pressure_width(4.0, f32::NAN), 4.0);
    }

    #[test]
    fn zero_pressure_counts_as_a_mouse() {
        assert_eq!(normalize_pressure(0.0), MOUSE_PRESSURE);
        assert_eq!(normalize_pressure(0.8), 0.8);
        assert_eq!(normalize_pressure(f32::INFINITY), MOUSE_PRESSURE);
    }

    #[test]
    fn validity() {
        assert!(Point::new(10.0, -5.0, 0.5).is_valid());
        assert!(!Point::new(f32::NAN, 0.0, 0.5).is_valid());
        assert!(!Point::new(2e6, 0.0, 0.5).is_valid());
        assert!(!Point::new(0.0, 0.0, 1.5).is_valid());
        assert!(is_valid_width(4.0));
        assert!(!is_valid_width(0.0));
        assert!(!is_valid_width(f32::NAN));
    }
}
