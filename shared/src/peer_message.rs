//! What browsers send each other over a WebRTC data channel.
//!
//! A stroke streams while it is drawn: `stroke-begin` with its first point, `stroke-points` as the
//! pointer moves, `stroke-end` on pointer-up. Messages carry only the author's own sequence number;
//! the receiver stamps the author from the channel it came in on, so no peer can write strokes in
//! somebody else's name. Everything from a peer is untrusted: [`PeerMessage::validate`] bounds every
//! field before the message touches the drawing.

use crate::color::Color;
use crate::geometry::{Point, is_valid_width};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest data-channel message accepted, in bytes (well under Chromium's limits).
pub const MAX_PEER_MESSAGE_BYTES: usize = 64 * 1024;
/// Most points in one `stroke-points` message.
pub const MAX_POINTS_PER_MESSAGE: usize = 512;

/// A message on the `drawing` data channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum PeerMessage {
    /// A new stroke and its first point.
    StrokeBegin {
        /// The author's sequence number for this stroke.
        seq: u64,
        /// Stroke colour.
        color: Color,
        /// Base width in CSS pixels (scaled by pressure per point).
        width: f32,
        /// First point.
        point: Point,
    },
    /// More points of a stroke being drawn.
    StrokePoints {
        /// Which of the author's strokes.
        seq: u64,
        /// The new points, in order.
        points: Vec<Point>,
    },
    /// The stroke is finished (pointer-up).
    StrokeEnd {
        /// Which of the author's strokes.
        seq: u64,
    },
}

/// Why a peer message is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMessageError {
    /// Larger than [`MAX_PEER_MESSAGE_BYTES`].
    TooLarge(usize),
    /// Not one of the message shapes.
    Malformed(String),
    /// A point outside the canvas limits, or a pressure outside 0 to 1.
    BadPoint,
    /// A width outside the accepted range.
    BadWidth,
    /// No points, or more than [`MAX_POINTS_PER_MESSAGE`].
    BadPointCount(usize),
}

impl fmt::Display for PeerMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerMessageError::TooLarge(n) => {
                write!(f, "message of {n} bytes exceeds {MAX_PEER_MESSAGE_BYTES}")
            }
            PeerMessageError::Malformed(why) => write!(f, "malformed message: {why}"),
            PeerMessageError::BadPoint => f.write_str("point out of range"),
            PeerMessageError::BadWidth => f.write_str("width out of range"),
            PeerMessageError::BadPointCount(n) => {
                write!(
                    f,
                    "{n} points in one message (1 to {MAX_POINTS_PER_MESSAGE} allowed)"
                )
            }
        }
    }
}

impl std::error::Error for PeerMessageError {}

impl PeerMessage {
    /// Checks every field is within bounds. Call on everything that arrives from a peer.
    pub fn validate(&self) -> Result<(), PeerMessageError> {
        match self {
            PeerMessage::StrokeBegin { width, point, .. } => {
                if !is_valid_width(*width) {
                    return Err(PeerMessageError::BadWidth);
                }
                if !point.is_valid() {
                    return Err(PeerMessageError::BadPoint);
                }
            }
            PeerMessage::StrokePoints { points, .. } => {
                if points.is_empty() || points.len() > MAX_POINTS_PER_MESSAGE {
                    return Err(PeerMessageError::BadPointCount(points.len()));
                }
                if !points.iter().all(Point::is_valid) {
                    return Err(PeerMessageError::BadPoint);
                }
            }
            PeerMessage::StrokeEnd { .. } => {}
        }
        Ok(())
    }

    /// Checks the raw size before parsing, so a huge message costs nothing to refuse.
    pub fn check_size(len: usize) -> Result<(), PeerMessageError> {
        if len > MAX_PEER_MESSAGE_BYTES {
            Err(PeerMessageError::TooLarge(len))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(msg: &PeerMessage) -> serde_json::Value {
        let json = serde_json::to_value(msg).unwrap();
        let back: PeerMessage = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(&back, msg);
        json
    }

    #[test]
    fn every_message_round_trips_with_its_golden_shape() {
        let begin = PeerMessage::StrokeBegin {
            seq: 3,
            color: Color::rgb(255, 0, 0),
            width: 4.0,
            point: Point::new(1.0, 2.0, 0.5),
        };
        assert_eq!(
            round_trip(&begin),
            json!({"type": "stroke-begin", "seq": 3, "color": "#ff0000", "width": 4.0,
                   "point": {"x": 1.0, "y": 2.0, "p": 0.5}})
        );
        let points = PeerMessage::StrokePoints {
            seq: 3,
            points: vec![Point::new(5.0, 6.0, 1.0)],
        };
        assert_eq!(
            round_trip(&points),
            json!({"type": "stroke-points", "seq": 3, "points": [{"x": 5.0, "y": 6.0, "p": 1.0}]})
        );
        assert_eq!(
            round_trip(&PeerMessage::StrokeEnd { seq: 3 }),
            json!({"type": "stroke-end", "seq": 3})
        );
    }

    #[test]
    fn malformed_json_does_not_parse() {
        for bad in [
            json!({"type": "stroke-begin", "seq": 1}),
            json!({"type": "explode"}),
            json!({"type": "stroke-end", "seq": -1}),
            json!({"type": "stroke-begin", "seq": 1, "color": "red", "width": 2.0,
                   "point": {"x": 0.0, "y": 0.0, "p": 0.5}}),
            json!("stroke-end"),
        ] {
            assert!(
                serde_json::from_value::<PeerMessage>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_bounds_every_field() {
        let ok = Point::new(0.0, 0.0, 0.5);
        let begin = |width, point| PeerMessage::StrokeBegin {
            seq: 0,
            color: Color::rgb(0, 0, 0),
            width,
            point,
        };
        assert_eq!(begin(4.0, ok).validate(), Ok(()));
        assert_eq!(
            begin(1000.0, ok).validate(),
            Err(PeerMessageError::BadWidth)
        );
        assert_eq!(
            begin(4.0, Point::new(f32::INFINITY, 0.0, 0.5)).validate(),
            Err(PeerMessageError::BadPoint)
        );
        let points = |n| PeerMessage::StrokePoints {
            seq: 0,
            points: vec![ok; n],
        };
        assert_eq!(points(1).validate(), Ok(()));
        assert_eq!(
            points(0).validate(),
            Err(PeerMessageError::BadPointCount(0))
        );
        assert_eq!(
            points(MAX_POINTS_PER_MESSAGE + 1).validate(),
            Err(PeerMessageError::BadPointCount(MAX_POINTS_PER_MESSAGE + 1))
        );
        assert!(PeerMessage::check_size(MAX_PEER_MESSAGE_BYTES).is_ok());
        assert!(PeerMessage::check_size(MAX_PEER_MESSAGE_BYTES + 1).is_err());
    }
}
