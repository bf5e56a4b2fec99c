//! The drawing tools, as the menubar names them (`[data-tool]`), and the sizes they derive from
//! the width slider.

use shared::document::TEXT_SIZES;
use shared::geometry::{MAX_WIDTH, MIN_WIDTH};

/// What a drag (or a click) on the canvas does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Freehand strokes with pressure.
    Pen,
    /// Hides whatever it touches.
    Eraser,
    /// A straight line from press to release.
    Line,
    /// A rectangle outline between press and release.
    Rect,
    /// An ellipse outline inscribed in the box between press and release.
    Ellipse,
    /// A line of text where the canvas is clicked.
    Text,
}

impl Tool {
    /// Every tool, in menubar order.
    pub const ALL: [Tool; 6] = [
        Tool::Pen,
        Tool::Eraser,
        Tool::Line,
        Tool::Rect,
        Tool::Ellipse,
        Tool::Text,
    ];

    /// Its `data-tool` name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Pen => "pen",
            Tool::Eraser => "eraser",
            Tool::Line => "line",
            Tool::Rect => "rect",
            Tool::Ellipse => "ellipse",
            Tool::Text => "text",
        }
    }

    /// The tool with this `data-tool` name.
    pub fn parse(name: &str) -> Option<Tool> {
        Tool::ALL.into_iter().find(|t| t.name() == name)
    }

    /// True for the tools that drag out a two-corner shape.
    pub fn is_shape(self) -> bool {
        matches!(self, Tool::Line | Tool::Rect | Tool::Ellipse)
    }
}

/// Width slider range (`#width`), in CSS pixels.
pub const WIDTH_RANGE: std::ops::RangeInclusive<f32> = 1.0..=32.0;
/// Width of new strokes until the slider moves (a mouse pen draws exactly this wide).
pub const DEFAULT_WIDTH: f32 = 4.0;
/// Eraser radius in screen pixels (so it feels the same at every zoom).
pub const ERASER_RADIUS: f32 = 8.0;

/// A slider value made a valid line width.
pub fn clamp_width(width: f32) -> f32 {
    if width.is_finite() {
        width.clamp(
            MIN_WIDTH.max(*WIDTH_RANGE.start()),
            MAX_WIDTH.min(*WIDTH_RANGE.end()),
        )
    } else {
        DEFAULT_WIDTH
    }
}

/// The font size text gets at a slider width: 8 + 4 per unit, within the sizes the document
/// accepts.
pub fn text_size(width: f32) -> f32 {
    (8.0 + clamp_width(width) * 4.0).clamp(*TEXT_SIZES.start(), *TEXT_SIZES.end())
}
