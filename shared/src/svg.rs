//! Export as SVG: the visible elements as vector shapes, framed by their bounds.

use crate::document::{Element, Shape};
use crate::geometry::pressure_width;
use crate::shapes::{Bounds, bounds_of, ellipse_outline, text_height};
use std::fmt::Write;

/// Margin around the drawing in an export, in drawing units.
pub const EXPORT_MARGIN: f32 = 16.0;

/// The export frame for these elements: their bounds plus a margin (an empty drawing gets a
/// small blank frame).
pub fn export_frame<'a>(elements: impl IntoIterator<Item = &'a Element>) -> Bounds {
    bounds_of(elements)
        .unwrap_or(Bounds {
            min_x: 0.0,
            min_y: 0.0,
            max_x: 0.0,
            max_y: 0.0,
        })
        .pad(EXPORT_MARGIN)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG document of the elements, bottom to top, on a white background.
pub fn to_svg<'a>(elements: impl IntoIterator<Item = &'a Element> + Clone) -> String {
    let frame = export_frame(elements.clone());
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="{x} {y} {w} {h}">"#,
        x = frame.min_x,
        y = frame.min_y,
        w = frame.width(),
        h = frame.height()
    );
    let _ = write!(
        out,
        r##"<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff"/>"##,
        frame.min_x,
        frame.min_y,
        frame.width(),
        frame.height()
    );
    for e in elements {
        let color = e.color;
        let stroke = format!(
            r#"fill="none" stroke="{color}" stroke-width="{}" stroke-linecap="round" stroke-linejoin="round""#,
            e.width
        );
        match &e.shape {
            Shape::Stroke { points } => {
                // One segment per pair of points, each at its own pressure width, as on canvas.
                for (i, q) in points.iter().enumerate() {
                    let p = points[i.saturating_sub(1)];
                    let _ = write!(
                        out,
                        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="{}" stroke-linecap="round"/>"#,
                        p.x,
                        p.y,
                        q.x,
                        q.y,
                        pressure_width(e.width, q.pressure)
                    );
                }
            }
            Shape::Line { from, to } => {
                let _ = write!(
                    out,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}" {stroke}/>"#,
                    from.x, from.y, to.x, to.y
                );
            }
            Shape::Rect { from, to } => {
                let _ = write!(
                    out,
                    r#"<rect x="{}" y="{}" width="{}" height="{}" {stroke}/>"#,
                    from.x.min(to.x),
                    from.y.min(to.y),
                    (to.x - from.x).abs(),
                    (to.y - from.y).abs()
                );
            }
            Shape::Ellipse { from, to } => {
                let pts: Vec<String> = ellipse_outline(*from, *to, 64)
                    .iter()
                    .map(|(x, y)| format!("{x},{y}"))
                    .collect();
                let _ = write!(out, r#"<polygon points="{}" {stroke}/>"#, pts.join(" "));
            }
            Shape::Text { at, text, size } => {
                let _ = write!(
                    out,
                    r#"<text x="{}" y="{}" font-size="{size}" font-family="sans-serif" fill="{color}">{}</text>"#,
                    at.x,
                    at.y + text_height(*size) * 0.8,
                    escape(text)
                );
            }
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::color::Color;
    use crate::geometry::Point;

    fn element(shape: Shape) -> Element {
        Element::for_test(shape, Color::rgb(255, 0, 0), 2.0)
    }

    #[test]
    fn every_shape_becomes_svg_inside_the_frame() {
        let p = |x, y| Point::new(x, y, 0.5);
        let elements = [
            element(Shape::Stroke {
                points: vec![p(0.0, 0.0), p(10.0, 0.0)],
            }),
            element(Shape::Line {
                from: p(0.0, 0.0),
                to: p(5.0, 5.0),
            }),
            element(Shape::Rect {
                from: p(20.0, 20.0),
                to: p(10.0, 10.0),
            }),
            element(Shape::Ellipse {
                from: p(0.0, 0.0),
                to: p(4.0, 2.0),
            }),
            element(Shape::Text {
                at: p(0.0, 30.0),
                text: "a<b & \"c\"".into(),
                size: 10.0,
            }),
        ];
        let svg = to_svg(elements.iter());
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(
            svg.matches("<line").count(),
            3,
            "two stroke segments and a line"
        );
        assert!(
            svg.contains(r#"<rect x="10" y="10" width="10" height="10""#),
            "{svg}"
        );
        assert!(svg.contains("<polygon"));
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
        assert!(svg.contains(r##"stroke="#ff0000""##));
        // The frame is the union of bounds plus the margin: left at 0 - 1 (half the stroke's
        // width) - 16; right at the text's estimated end, 9 chars * 6 = 54, + 16.
        assert!(svg.contains(r#"viewBox="-17 -17 87 75.5""#), "{svg}");
    }

    #[test]
    fn an_empty_drawing_exports_a_blank_frame() {
        let svg = to_svg(std::iter::empty());
        assert!(svg.contains(r#"width="32" height="32""#), "{svg}");
    }
}
