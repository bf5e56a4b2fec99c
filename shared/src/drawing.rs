//! The drawing document every browser keeps: strokes by id, in the order they began.
//!
//! Local input and peer messages go through the same [`Drawing::apply`]; it answers with what to
//! paint, so the canvas paints increments as they arrive and can replay the whole document (after
//! a resize, say) with [`Drawing::strokes`].

use crate::color::Color;
use crate::geometry::Point;
use crate::peer_message::PeerMessage;
use crate::protocol::PeerId;
use std::collections::HashMap;

/// Most points one stroke keeps; later points are dropped (a runaway peer cannot grow it forever).
pub const MAX_POINTS_PER_STROKE: usize = 20_000;

/// A stroke's globally unique id: its author and the author's sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrokeId {
    /// The peer that drew it (stamped by the receiver, never taken from the message).
    pub author: PeerId,
    /// The author's counter.
    pub seq: u64,
}

/// One stroke: a polyline with a colour, a base width and per-point pressure.
#[derive(Clone, Debug, PartialEq)]
pub struct Stroke {
    /// Its id.
    pub id: StrokeId,
    /// Its colour.
    pub color: Color,
    /// Base width in CSS pixels.
    pub width: f32,
    /// Its points, in drawing order (never empty).
    pub points: Vec<Point>,
    /// True after `stroke-end`.
    pub finished: bool,
}

impl Stroke {
    /// The segments to paint for points `from..`: each point joined to the one before it, and the
    /// first point of a stroke paired with itself (a dot), so a click leaves a mark.
    pub fn segments_from(&self, from: usize) -> impl Iterator<Item = (Point, Point)> + '_ {
        (from..self.points.len()).map(|i| (self.points[i.saturating_sub(1)], self.points[i]))
    }
}

/// What [`Drawing::apply`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Points `from..` of the stroke at `index` are new: paint `strokes()[index].segments_from(from)`.
    Drawn {
        /// Index of the stroke in [`Drawing::strokes`].
        index: usize,
        /// First new point.
        from: usize,
    },
    /// The stroke ended; nothing to paint.
    Finished,
    /// Nothing changed, and why.
    Ignored(Ignored),
}

/// Why a message changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// A `stroke-begin` for a stroke we already have (a duplicate).
    AlreadyBegun,
    /// Points or end for a stroke we never saw begin.
    UnknownStroke,
    /// Points for a stroke that already ended.
    AlreadyFinished,
    /// The stroke holds [`MAX_POINTS_PER_STROKE`] points already.
    StrokeFull,
}

/// The document: every stroke, in the order it began here.
#[derive(Clone, Debug, Default)]
pub struct Drawing {
    strokes: Vec<Stroke>,
    index: HashMap<StrokeId, usize>,
}

impl Drawing {
    /// An empty drawing.
    pub fn new() -> Drawing {
        Drawing::default()
    }

    /// Every stroke, oldest first: the order to repaint in.
    pub fn strokes(&self) -> &[Stroke] {
        &self.strokes
    }

    /// The stroke with this id.
    pub fn get(&self, id: &StrokeId) -> Option<&Stroke> {
        self.index.get(id).map(|&i| &self.strokes[i])
    }

    /// Applies a message from `author` (ourselves or the peer whose channel it came in on). The
    /// message must have passed [`PeerMessage::validate`].
    pub fn apply(&mut self, author: &PeerId, message: &PeerMessage) -> Applied {
        match message {
            PeerMessage::StrokeBegin {
                seq,
                color,
                width,
                point,
            } => {
                let id = StrokeId {
                    author: author.clone(),
                    seq: *seq,
                };
                if self.index.contains_key(&id) {
                    return Applied::Ignored(Ignored::AlreadyBegun);
                }
                let index = self.strokes.len();
                self.index.insert(id.clone(), index);
                self.strokes.push(Stroke {
                    id,
                    color: *color,
                    width: *width,
                    points: vec![*point],
                    finished: false,
                });
                Applied::Drawn { index, from: 0 }
            }
            PeerMessage::StrokePoints { seq, points } => {
                let Some(index) = self.lookup(author, *seq) else {
                    return Applied::Ignored(Ignored::UnknownStroke);
                };
                let stroke = &mut self.strokes[index];
                if stroke.finished {
                    return Applied::Ignored(Ignored::AlreadyFinished);
                }
                let from = stroke.points.len();
                let room = MAX_POINTS_PER_STROKE - from;
                if room == 0 {
                    return Applied::Ignored(Ignored::StrokeFull);
                }
                stroke.points.extend(points.iter().take(room));
                Applied::Drawn { index, from }
            }
            PeerMessage::StrokeEnd { seq } => match self.lookup(author, *seq) {
                Some(index) => {
                    self.strokes[index].finished = true;
                    Applied::Finished
                }
                None => Applied::Ignored(Ignored::UnknownStroke),
            },
        }
    }

    fn lookup(&self, author: &PeerId, seq: u64) -> Option<usize> {
        // Building a StrokeId clones the author; strokes are few compared to points, and this
        // keeps one map keyed the way ids are defined.
        self.index
            .get(&StrokeId {
                author: author.clone(),
                seq,
            })
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str) -> PeerId {
        PeerId(name.into())
    }

    fn begin(seq: u64, x: f32) -> PeerMessage {
        PeerMessage::StrokeBegin {
            seq,
            color: Color::rgb(1, 2, 3),
            width: 3.0,
            point: Point::new(x, 0.0, 0.5),
        }
    }

    fn points(seq: u64, xs: &[f32]) -> PeerMessage {
        PeerMessage::StrokePoints {
            seq,
            points: xs.iter().map(|&x| Point::new(x, 0.0, 0.5)).collect(),
        }
    }

    #[test]
    fn a_stroke_streams_in_and_paints_increments() {
        let mut d = Drawing::new();
        let a = peer("a");
        assert_eq!(
            d.apply(&a, &begin(0, 1.0)),
            Applied::Drawn { index: 0, from: 0 }
        );
        assert_eq!(
            d.apply(&a, &points(0, &[2.0, 3.0])),
            Applied::Drawn { index: 0, from: 1 }
        );
        assert_eq!(
            d.apply(&a, &PeerMessage::StrokeEnd { seq: 0 }),
            Applied::Finished
        );
        let s = &d.strokes()[0];
        assert!(s.finished);
        let xs: Vec<_> = s.segments_from(0).map(|(p, q)| (p.x, q.x)).collect();
        assert_eq!(xs, vec![(1.0, 1.0), (1.0, 2.0), (2.0, 3.0)]);
        let tail: Vec<_> = s.segments_from(2).map(|(p, q)| (p.x, q.x)).collect();
        assert_eq!(tail, vec![(2.0, 3.0)]);
    }

    #[test]
    fn authors_have_separate_sequence_spaces() {
        let mut d = Drawing::new();
        d.apply(&peer("a"), &begin(0, 1.0));
        assert_eq!(
            d.apply(&peer("b"), &begin(0, 9.0)),
            Applied::Drawn { index: 1, from: 0 }
        );
        // b cannot extend a's stroke by naming a's sequence number.
        d.apply(&peer("b"), &points(0, &[10.0]));
        assert_eq!(
            d.get(&StrokeId {
                author: peer("a"),
                seq: 0
            })
            .unwrap()
            .points
            .len(),
            1
        );
        assert_eq!(
            d.get(&StrokeId {
                author: peer("b"),
                seq: 0
            })
            .unwrap()
            .points
            .len(),
            2
        );
    }

    #[test]
    fn duplicates_and_strays_are_ignored() {
        let mut d = Drawing::new();
        let a = peer("a");
        d.apply(&a, &begin(0, 1.0));
        assert_eq!(
            d.apply(&a, &begin(0, 5.0)),
            Applied::Ignored(Ignored::AlreadyBegun)
        );
        assert_eq!(
            d.apply(&a, &points(7, &[1.0])),
            Applied::Ignored(Ignored::UnknownStroke)
        );
        assert_eq!(
            d.apply(&a, &PeerMessage::StrokeEnd { seq: 7 }),
            Applied::Ignored(Ignored::UnknownStroke)
        );
        d.apply(&a, &PeerMessage::StrokeEnd { seq: 0 });
        assert_eq!(
            d.apply(&a, &points(0, &[2.0])),
            Applied::Ignored(Ignored::AlreadyFinished)
        );
        assert_eq!(d.strokes().len(), 1);
        assert_eq!(d.strokes()[0].points.len(), 1);
    }

    #[test]
    fn a_stroke_stops_growing_at_its_cap() {
        let mut d = Drawing::new();
        let a = peer("a");
        d.apply(&a, &begin(0, 0.0));
        let batch: Vec<f32> = (0..500).map(|i| i as f32).collect();
        while d.apply(&a, &points(0, &batch)) != Applied::Ignored(Ignored::StrokeFull) {}
        assert_eq!(d.strokes()[0].points.len(), MAX_POINTS_PER_STROKE);
    }
}
