//! The replicated drawing document: every browser holds a replica, and replicas that have seen the
//! same operations show the same drawing, whatever order the operations arrived in.
//!
//! The model, small enough to own (a general CRDT library would cost 200-600 KB of wasm):
//! - Every change is an [`Op`] with a globally unique id: its author and the author's sequence
//!   number (1, 2, 3, ... with no gaps). A replica integrates each author's ops in sequence order,
//!   parking early arrivals until the gap fills, so "what I have" is one number per author: a
//!   [`VersionVector`]. Two replicas sync by swapping version vectors and sending what the other
//!   lacks; duplicates are recognised by id and ignored.
//! - Elements (strokes, lines, shapes, text) are created by `add` ops and only their author may
//!   extend them, so their content never conflicts.
//! - `erase` hides named elements; `clear` hides every element its author had seen (its version
//!   vector at the time), so a stroke drawn concurrently elsewhere survives it.
//! - `undo` and `redo` switch one of the author's own ops off and on; each op's switch is written
//!   only by its author, in sequence order, so the last write wins without any clock. Nobody can
//!   undo anybody else's work.
//! - An element is visible when its `add` is on, no `erase` naming it is on, and no `clear`
//!   covering it is on. Visible elements are stacked by (Lamport time, author, seq): the same
//!   order on every replica, so the same pixels.

use crate::color::Color;
use crate::geometry::{Point, is_valid_width};
use crate::protocol::PeerId;
use crate::shapes::{Bounds, bounds, hits, stroke_bounds};
use crate::spatial::{Grid, Slot};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::fmt;

/// An author's op counter: the first op is 1.
pub type Seq = u64;

/// Chain fingerprints carried by an erase or a clear, by author ([`crate::signing::Mark`]).
pub type Marks = BTreeMap<PeerId, crate::signing::Mark>;

/// Most points an `add` or `extend` op may carry.
pub const MAX_POINTS_PER_OP: usize = 512;
/// Most points one stroke keeps.
pub const MAX_POINTS_PER_STROKE: usize = 20_000;
/// Most characters in a text element.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// Most elements one `erase` may name.
pub const MAX_ERASE_TARGETS: usize = 10_000;
/// Most authors a version vector may name.
pub const MAX_AUTHORS: usize = 10_000;
/// Most ops parked (waiting for an earlier op of their author, or for what a clear or an erase
/// depends on) in one document, all authors together: nobody can grow a replica without bound
/// by sending ops that never fit.
pub const MAX_PARKED: usize = 100_000;
/// Most ops one sender may have parked at once, so one peer cannot fill the pool and make the
/// honest early ops of others be dropped.
pub const MAX_PARKED_PER_SENDER: usize = 20_000;
/// Most authors one sender may introduce (hand over ops of authors this replica did not know).
pub const MAX_NEW_AUTHORS_PER_SENDER: usize = 1_024;
/// Highest seq or Lamport time accepted: far below 2^53, so every clock stays exact as a
/// JavaScript number (JSON, storage), with room for any honest history.
pub const MAX_CLOCK: u64 = 1 << 50;
/// Most a Lamport time may run ahead of the highest this replica holds, and most a seq may run
/// ahead of its author's last integrated op. Honest clocks advance by one per op; a bound this
/// wide still takes any document a fresh replica can be sent, while a hostile peer needs 2^26
/// ops to push the clocks to [`MAX_CLOCK`].
pub const MAX_CLOCK_STEP: u64 = 1 << 24;
/// Text sizes accepted, in CSS pixels.
pub const TEXT_SIZES: std::ops::RangeInclusive<f32> = 6.0..=200.0;

/// A globally unique op id (also an element's id: the id of the op that added it).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OpId {
    /// Who made the op.
    pub author: PeerId,
    /// The author's counter.
    pub seq: Seq,
}

/// What a replica has: for each author, the highest seq it has integrated (with all before it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct VersionVector(pub BTreeMap<PeerId, Seq>);

impl VersionVector {
    /// How many of `author`'s ops this vector has.
    pub fn get(&self, author: &PeerId) -> Seq {
        self.0.get(author).copied().unwrap_or(0)
    }

    /// True when the op with this id is among those the vector has.
    pub fn covers(&self, id: &OpId) -> bool {
        id.seq <= self.get(&id.author)
    }
}

/// The geometry of an element.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// A freehand pen stroke; grows while it is drawn.
    Stroke {
        /// Its points, in drawing order.
        points: Vec<Point>,
    },
    /// A straight line.
    Line {
        /// One end.
        from: Point,
        /// The other end.
        to: Point,
    },
    /// An axis-aligned rectangle between two corners.
    Rect {
        /// One corner.
        from: Point,
        /// The opposite corner.
        to: Point,
    },
    /// The ellipse inscribed in the rectangle between two corners.
    Ellipse {
        /// One corner of the bounding box.
        from: Point,
        /// The opposite corner.
        to: Point,
    },
    /// A line of text.
    Text {
        /// Top-left of the text.
        at: Point,
        /// The text.
        text: String,
        /// Font size in CSS pixels.
        size: f32,
    },
}

impl Shape {
    fn points(&self) -> Vec<Point> {
        match self {
            Shape::Stroke { points } => points.clone(),
            Shape::Line { from, to } | Shape::Rect { from, to } | Shape::Ellipse { from, to } => {
                vec![*from, *to]
            }
            Shape::Text { at, .. } => vec![*at],
        }
    }
}

/// What an op does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// A new element; its id is this op's id. Strokes start with their first points and grow by
    /// `extend`; other shapes are complete.
    Add {
        /// Its geometry.
        shape: Shape,
        /// Its colour.
        color: Color,
        /// Its base line width in CSS pixels.
        width: f32,
    },
    /// More points for one of the author's own strokes.
    Extend {
        /// The seq of the `add` that made the stroke.
        element: Seq,
        /// The new points.
        points: Vec<Point>,
    },
    /// The author's stroke is finished (pointer-up).
    Finish {
        /// The seq of the `add` that made the stroke.
        element: Seq,
    },
    /// Hides the named elements.
    Erase {
        /// Elements to hide.
        targets: Vec<OpId>,
        /// For each other author named, the fingerprint of its chain at the latest op named
        /// ([`crate::signing::Mark`]): proof the eraser had the ops it names.
        #[serde(default, skip_serializing_if = "Marks::is_empty")]
        marks: Marks,
    },
    /// Hides every element the author had seen.
    Clear {
        /// The author's version vector when it cleared.
        seen: VersionVector,
        /// For each other author in `seen`, the fingerprint of its chain there.
        #[serde(default, skip_serializing_if = "Marks::is_empty")]
        marks: Marks,
    },
    /// Switches off one of the author's own `add`, `erase` or `clear` ops.
    Undo {
        /// Its seq.
        target: Seq,
    },
    /// Switches it back on.
    Redo {
        /// Its seq.
        target: Seq,
    },
}

impl OpKind {
    /// An erase of `targets` (without marks: see [`crate::signing::Ledger::mark`]).
    pub fn erase(targets: Vec<OpId>) -> OpKind {
        OpKind::Erase {
            targets,
            marks: Marks::new(),
        }
    }

    /// A clear of what `seen` covers (without marks: see [`crate::signing::Ledger::mark`]).
    pub fn clear(seen: VersionVector) -> OpKind {
        OpKind::Clear {
            seen,
            marks: Marks::new(),
        }
    }

    /// The other authors' ops this op names, as the latest named of each (an erase's targets,
    /// a clear's `seen`): what it depends on beyond `author`'s own earlier ops.
    pub fn names_beyond(&self, author: &PeerId) -> BTreeMap<PeerId, Seq> {
        let mut named = BTreeMap::new();
        match self {
            OpKind::Erase { targets, .. } => {
                for t in targets.iter().filter(|t| t.author != *author) {
                    let seq = named.entry(t.author.clone()).or_insert(0);
                    *seq = t.seq.max(*seq);
                }
            }
            OpKind::Clear { seen, .. } => {
                named.extend(
                    seen.0
                        .iter()
                        .filter(|(a, n)| *a != author && **n > 0)
                        .map(|(a, n)| (a.clone(), *n)),
                );
            }
            _ => {}
        }
        named
    }

    /// True for the ops a user can undo.
    pub fn is_undoable(&self) -> bool {
        matches!(
            self,
            OpKind::Add { .. } | OpKind::Erase { .. } | OpKind::Clear { .. }
        )
    }
}

/// One change to the document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Who made it.
    pub author: PeerId,
    /// The author's counter.
    pub seq: Seq,
    /// Lamport time: above every op the author had seen. Orders elements for stacking.
    pub lamport: u64,
    /// What it does.
    pub op: OpKind,
}

/// Why an op from a peer is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpError {
    /// seq 0 (the first op is 1).
    ZeroSeq,
    /// A point outside the canvas limits or a pressure outside 0 to 1.
    BadPoint,
    /// No points, or more than allowed.
    BadPointCount,
    /// A width outside the accepted range.
    BadWidth,
    /// Empty or over-long text, or a bad font size.
    BadText,
    /// Too many erase targets or version-vector entries.
    TooMany,
    /// An `extend`, `finish`, `undo` or `redo` naming an op that is not earlier than itself.
    BadTarget,
    /// A seq or Lamport time of 0 or above [`MAX_CLOCK`].
    BadClock,
    /// A seq or Lamport time too far ahead of what this replica holds ([`MAX_CLOCK_STEP`]).
    ClockJump,
    /// The sender has used up its budget of parked ops or of new authors.
    OverBudget,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpError::ZeroSeq => "op seq must start at 1",
            OpError::BadPoint => "point out of range",
            OpError::BadPointCount => "wrong number of points",
            OpError::BadWidth => "width out of range",
            OpError::BadText => "bad text element",
            OpError::TooMany => "too many targets",
            OpError::BadTarget => "op names an op that is not earlier than itself",
            OpError::BadClock => "seq or Lamport time out of range",
            OpError::ClockJump => "seq or Lamport time too far ahead",
            OpError::OverBudget => "the sender's budget of waiting ops or new authors is used up",
        })
    }
}

impl std::error::Error for OpError {}

impl Op {
    /// This op's id.
    pub fn id(&self) -> OpId {
        OpId {
            author: self.author.clone(),
            seq: self.seq,
        }
    }

    /// Checks every field is within bounds. Everything from a peer goes through this first.
    pub fn validate(&self) -> Result<(), OpError> {
        if self.seq == 0 {
            return Err(OpError::ZeroSeq);
        }
        if self.seq > MAX_CLOCK || self.lamport == 0 || self.lamport > MAX_CLOCK {
            return Err(OpError::BadClock);
        }
        let points_ok = |points: &[Point]| {
            if points.is_empty() || points.len() > MAX_POINTS_PER_OP {
                Err(OpError::BadPointCount)
            } else if !points.iter().all(Point::is_valid) {
                Err(OpError::BadPoint)
            } else {
                Ok(())
            }
        };
        match &self.op {
            OpKind::Add { shape, width, .. } => {
                if !is_valid_width(*width) {
                    return Err(OpError::BadWidth);
                }
                points_ok(&shape.points())?;
                if let Shape::Text { text, size, .. } = shape
                    && (text.trim().is_empty()
                        || text.chars().count() > MAX_TEXT_CHARS
                        || !TEXT_SIZES.contains(size))
                {
                    return Err(OpError::BadText);
                }
            }
            OpKind::Extend { element, points } => {
                points_ok(points)?;
                if *element >= self.seq {
                    return Err(OpError::BadTarget);
                }
            }
            OpKind::Finish { element: target }
            | OpKind::Undo { target }
            | OpKind::Redo { target } => {
                if *target >= self.seq || *target == 0 {
                    return Err(OpError::BadTarget);
                }
            }
            OpKind::Erase { targets, marks } => {
                if targets.len() > MAX_ERASE_TARGETS || marks.len() > MAX_AUTHORS {
                    return Err(OpError::TooMany);
                }
                if targets.iter().any(|t| t.seq == 0 || t.seq > MAX_CLOCK) {
                    return Err(OpError::BadClock);
                }
                // Its author's own ops from this one on do not exist yet: naming one would park
                // the author's line for ever.
                if targets
                    .iter()
                    .any(|t| t.author == self.author && t.seq >= self.seq)
                {
                    return Err(OpError::BadTarget);
                }
            }
            OpKind::Clear { seen, marks } => {
                if seen.0.len() > MAX_AUTHORS || marks.len() > MAX_AUTHORS {
                    return Err(OpError::TooMany);
                }
                if seen.0.values().any(|n| *n > MAX_CLOCK) {
                    return Err(OpError::BadClock);
                }
                if seen.get(&self.author) >= self.seq {
                    return Err(OpError::BadTarget);
                }
            }
        }
        Ok(())
    }

    /// A rough size of the op as JSON, for cutting sync batches to a byte budget.
    pub fn estimated_size(&self) -> usize {
        let id = 64 + self.author.0.len();
        id + match &self.op {
            OpKind::Add { shape, .. } => {
                64 + shape.points().len() * 40
                    + match shape {
                        Shape::Text { text, .. } => text.len() * 2,
                        _ => 0,
                    }
            }
            OpKind::Extend { points, .. } => 32 + points.len() * 40,
            OpKind::Erase { targets, marks } => {
                targets.iter().map(|t| 32 + t.author.0.len()).sum::<usize>()
                    + marks.keys().map(|a| 40 + a.0.len()).sum::<usize>()
            }
            OpKind::Clear { seen, marks } => {
                seen.0.keys().map(|a| 24 + a.0.len()).sum::<usize>()
                    + marks.keys().map(|a| 40 + a.0.len()).sum::<usize>()
            }
            _ => 16,
        }
    }
}

/// A materialized element, as the canvas paints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    /// Its id (its `add` op's id).
    pub id: OpId,
    /// The Lamport time of its `add`, for stacking.
    pub lamport: u64,
    /// Its geometry (strokes grow as `extend` ops arrive).
    pub shape: Shape,
    /// Its colour.
    pub color: Color,
    /// Its base width.
    pub width: f32,
    /// True once complete (shapes at once, strokes at `finish`).
    pub finished: bool,
}

#[cfg(test)]
impl Element {
    /// A finished element by author "a" (seq 1), for tests of the modules that read elements.
    pub(crate) fn for_test(shape: Shape, color: Color, width: f32) -> Element {
        Element {
            id: OpId {
                author: PeerId("a".into()),
                seq: 1,
            },
            lamport: 1,
            shape,
            color,
            width,
            finished: true,
        }
    }
}

/// What integrating ops changed, so the canvas repaints no more than it must.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Visibility or stacking changed: repaint everything.
    pub repaint: bool,
    /// Elements that grew: (element, index of its first new point). A new element has index 0.
    pub grown: Vec<(OpId, usize)>,
    /// Strokes that were finished.
    pub finished: Vec<OpId>,
    /// How many ops were integrated (0 for a duplicate or a parked op).
    pub integrated: usize,
}

impl Changes {
    /// Adds what `other` changed.
    pub fn merge(&mut self, other: Changes) {
        self.repaint |= other.repaint;
        self.grown.extend(other.grown);
        self.finished.extend(other.finished);
        self.integrated += other.integrated;
    }
}

#[derive(Clone, Debug, Default)]
struct AuthorLog {
    /// Integrated ops; `ops[i].seq == i + 1`.
    ops: Vec<Op>,
    /// Ops that arrived before an earlier one of the same author, or whose dependencies (a
    /// clear's `seen`, an erase's targets) are not integrated yet; with who handed them over.
    parked: BTreeMap<Seq, (Op, Option<PeerId>)>,
}

/// One replica of the document.
#[derive(Clone, Debug, Default)]
pub struct Document {
    authors: BTreeMap<PeerId, AuthorLog>,
    elements: HashMap<OpId, Element>,
    /// Stacking order of every element, visible or not.
    stack: BTreeSet<(u64, OpId)>,
    /// Element → the erase ops that name it.
    erasures: HashMap<OpId, Vec<OpId>>,
    /// Every clear op and what it saw.
    clears: Vec<(OpId, VersionVector)>,
    /// Where every element is (visible or not), for [`Document::visible_in`].
    grid: Grid,
    /// Each grid slot's element, by its stacking key.
    slots: Vec<(u64, OpId)>,
    /// Each element's grid slot.
    slot_of: HashMap<OpId, Slot>,
    /// What the clears that are on hide: per author, the highest seq any of them saw. Kept up to
    /// date as clears arrive and are undone or redone (few, next to the elements), so telling
    /// whether an element is cleared costs one lookup instead of a scan of every clear, for
    /// every element, on every paint.
    cleared: BTreeMap<PeerId, Seq>,
    /// Op → (seq of the undo/redo that last switched it, on?). Ops not here are on.
    switches: HashMap<OpId, (Seq, bool)>,
    lamport: u64,
    /// Ops parked across all authors (bounded by [`MAX_PARKED`]).
    parked: usize,
    /// Ops parked, by the sender that handed them over ([`MAX_PARKED_PER_SENDER`]).
    parked_by: HashMap<PeerId, usize>,
    /// Authors introduced, by sender ([`MAX_NEW_AUTHORS_PER_SENDER`]).
    introduced_by: HashMap<PeerId, usize>,
    /// Authors whose next op is parked for want of its dependencies: looked at again whenever
    /// an op is integrated.
    waiting: BTreeSet<PeerId>,
}

impl Document {
    /// An empty document.
    pub fn new() -> Document {
        Document::default()
    }

    /// What this replica has, one number per author.
    pub fn version_vector(&self) -> VersionVector {
        VersionVector(
            self.authors
                .iter()
                .filter(|(_, log)| !log.ops.is_empty())
                .map(|(author, log)| (author.clone(), log.ops.len() as Seq))
                .collect(),
        )
    }

    /// The next seq `author` would use here.
    pub fn next_seq(&self, author: &PeerId) -> Seq {
        self.have(author).saturating_add(1)
    }

    /// How many ops of `author` are integrated.
    fn have(&self, author: &PeerId) -> Seq {
        self.authors
            .get(author)
            .map_or(0, |log| log.ops.len() as Seq)
    }

    /// Makes a new op by `author` on this replica and integrates it. Send the returned op to
    /// the other replicas.
    pub fn make(&mut self, author: &PeerId, kind: OpKind) -> (Op, Changes) {
        let op = Op {
            author: author.clone(),
            seq: self.next_seq(author),
            // Saturating: the clocks are bounded (MAX_CLOCK) on the way in, so this never wraps.
            lamport: self.lamport.saturating_add(1),
            op: kind,
        };
        let changes = self.apply(op.clone());
        (op, changes)
    }

    /// Integrates an op of this replica or from storage (validate stored ops first); see
    /// [`Document::apply_from`]. A refused op changes nothing.
    pub fn apply(&mut self, op: Op) -> Changes {
        self.apply_from(op, None).unwrap_or_default()
    }

    /// Integrates an op handed over by `sender` (validated first). Duplicates change nothing.
    /// An op waits, parked, until the ops it depends on are here: the earlier ops of its author,
    /// the ops a clear saw (its `seen` is a causal dependency, not a trusted claim) and the ops
    /// an erase names. Refused: clocks too far ahead of what this replica holds, and ops past
    /// the sender's budgets of parked ops and new authors.
    pub fn apply_from(&mut self, op: Op, sender: Option<&PeerId>) -> Result<Changes, OpError> {
        let have = self.have(&op.author);
        if op.seq <= have
            || self
                .authors
                .get(&op.author)
                .is_some_and(|log| log.parked.contains_key(&op.seq))
        {
            return Ok(Changes::default());
        }
        if op.seq > have.saturating_add(MAX_CLOCK_STEP)
            || op.lamport > self.lamport.saturating_add(MAX_CLOCK_STEP)
            || op.seq > MAX_CLOCK
            || op.lamport > MAX_CLOCK
        {
            return Err(OpError::ClockJump);
        }
        if !self.authors.contains_key(&op.author)
            && let Some(sender) = sender
            && *sender != op.author
        {
            let introduced = self.introduced_by.entry(sender.clone()).or_default();
            if *introduced >= MAX_NEW_AUTHORS_PER_SENDER {
                return Err(OpError::OverBudget);
            }
            *introduced += 1;
        }
        if op.seq > have + 1 || !self.dependencies_met(&op) {
            return self.park(op, sender).map(|()| Changes::default());
        }
        let author = op.author.clone();
        let mut changes = self.integrate(op);
        changes.merge(self.drain(&author));
        // What just landed may be what other authors' parked ops were waiting for.
        loop {
            let ready: Vec<PeerId> = self
                .waiting
                .iter()
                .filter(|a| self.next_parked_ready(a))
                .cloned()
                .collect();
            if ready.is_empty() {
                break;
            }
            for author in ready {
                self.waiting.remove(&author);
                changes.merge(self.drain(&author));
            }
        }
        Ok(changes)
    }

    /// Parks an op that cannot be integrated yet, within the budgets.
    fn park(&mut self, op: Op, sender: Option<&PeerId>) -> Result<(), OpError> {
        if self.parked >= MAX_PARKED {
            return Err(OpError::OverBudget);
        }
        if let Some(sender) = sender {
            let by = self.parked_by.entry(sender.clone()).or_default();
            if *by >= MAX_PARKED_PER_SENDER {
                return Err(OpError::OverBudget);
            }
            *by += 1;
        }
        if op.seq == self.have(&op.author) + 1 {
            self.waiting.insert(op.author.clone());
        }
        self.parked += 1;
        // An op waiting next in its author's line has been seen: what this replica makes from
        // now on is stamped after it, so a clear or an erase stamped far ahead, waiting for ops
        // not yet made, can never cover them (`integrate` hides nothing with a later time than
        // the op that names it). Only that one: it is what `missing_from` hands a newcomer,
        // whose clock must climb as this one's did (an op past a gap moves nothing).
        if op.seq == self.have(&op.author) + 1 {
            self.lamport = self.lamport.max(op.lamport);
        }
        let log = self.authors.entry(op.author.clone()).or_default();
        log.parked.insert(op.seq, (op, sender.cloned()));
        Ok(())
    }

    /// True when `author`'s next op is parked and may now be integrated.
    fn next_parked_ready(&self, author: &PeerId) -> bool {
        let next = self.have(author) + 1;
        self.authors
            .get(author)
            .and_then(|log| log.parked.get(&next))
            .is_some_and(|(op, _)| self.dependencies_met(op))
    }

    /// Integrates `author`'s parked ops for as long as the next one is there and ready.
    fn drain(&mut self, author: &PeerId) -> Changes {
        let mut changes = Changes::default();
        loop {
            let next = self.have(author) + 1;
            let Some(log) = self.authors.get(author) else {
                break;
            };
            let Some((op, _)) = log.parked.get(&next) else {
                self.waiting.remove(author);
                break;
            };
            if !self.dependencies_met(op) {
                self.waiting.insert(author.clone());
                break;
            }
            let Some((op, sender)) = self
                .authors
                .get_mut(author)
                .and_then(|log| log.parked.remove(&next))
            else {
                break;
            };
            self.parked -= 1;
            if let Some(sender) = sender
                && let Some(by) = self.parked_by.get_mut(&sender)
            {
                *by = by.saturating_sub(1);
            }
            changes.merge(self.integrate(op));
        }
        changes
    }

    /// Are the ops this op depends on (beyond its author's earlier ones) integrated here?
    fn dependencies_met(&self, op: &Op) -> bool {
        match &op.op {
            OpKind::Clear { seen, .. } => seen.0.iter().all(|(author, n)| self.have(author) >= *n),
            OpKind::Erase { targets, .. } => targets.iter().all(|t| self.have(&t.author) >= t.seq),
            _ => true,
        }
    }

    fn integrate(&mut self, op: Op) -> Changes {
        self.lamport = self.lamport.max(op.lamport);
        let id = op.id();
        let mut changes = Changes {
            integrated: 1,
            ..Changes::default()
        };
        match &op.op {
            OpKind::Add {
                shape,
                color,
                width,
            } => {
                let finished = !matches!(shape, Shape::Stroke { .. });
                self.stack.insert((op.lamport, id.clone()));
                let element = Element {
                    id: id.clone(),
                    lamport: op.lamport,
                    shape: shape.clone(),
                    color: *color,
                    width: *width,
                    finished,
                };
                // An element that lands under others (a late or concurrent op) needs a full
                // repaint to stack correctly; one on top can be painted alone.
                let on_top = self.stack.last().is_some_and(|(_, top)| *top == id);
                if self.is_visible(&element) {
                    if on_top {
                        changes.grown.push((id.clone(), 0));
                    } else {
                        changes.repaint = true;
                    }
                }
                if finished {
                    changes.finished.push(id.clone());
                }
                let slot = self.grid.insert(
                    bounds(&element),
                    matches!(element.shape, Shape::Text { .. }),
                );
                self.slots.push((op.lamport, id.clone()));
                self.slot_of.insert(id.clone(), slot);
                self.elements.insert(id, element);
            }
            OpKind::Extend { element, points } => {
                let target = OpId {
                    author: op.author.clone(),
                    seq: *element,
                };
                if let Some(e) = self.elements.get_mut(&target)
                    && let Shape::Stroke { points: stroke } = &mut e.shape
                    && !e.finished
                {
                    let from = stroke.len();
                    let room = MAX_POINTS_PER_STROKE.saturating_sub(from);
                    stroke.extend(points.iter().take(room));
                    if stroke.len() > from {
                        if let (Some(&slot), Some(more)) = (
                            self.slot_of.get(&target),
                            stroke_bounds(e.width, &stroke[from..]),
                        ) {
                            self.grid.grow(slot, more);
                        }
                        changes.grown.push((target, from));
                    }
                }
            }
            OpKind::Finish { element } => {
                let target = OpId {
                    author: op.author.clone(),
                    seq: *element,
                };
                if let Some(e) = self.elements.get_mut(&target)
                    && !e.finished
                {
                    e.finished = true;
                    changes.finished.push(target);
                }
            }
            // A clear or an erase can only have seen ops with earlier Lamport times; one that
            // claims later ones (a forgery aimed at work not yet done) stays in its author's log
            // but hides nothing. Every replica decides the same, from the ops' own times.
            OpKind::Erase { targets, .. } => {
                if self.all_earlier(targets.iter().cloned(), op.lamport) {
                    for target in targets {
                        self.erasures
                            .entry(target.clone())
                            .or_default()
                            .push(id.clone());
                    }
                    changes.repaint = true;
                }
            }
            OpKind::Clear { seen, .. } => {
                let saw = seen.0.iter().filter(|(_, n)| **n > 0).map(|(a, n)| OpId {
                    author: a.clone(),
                    seq: *n,
                });
                if self.all_earlier(saw, op.lamport) {
                    self.clears.push((id.clone(), seen.clone()));
                    self.recount_cleared();
                    changes.repaint = true;
                }
            }
            OpKind::Undo { target } | OpKind::Redo { target } => {
                let on = matches!(op.op, OpKind::Redo { .. });
                let target = OpId {
                    author: op.author.clone(),
                    seq: *target,
                };
                let switch = self.switches.entry(target.clone()).or_insert((0, true));
                if op.seq > switch.0 {
                    *switch = (op.seq, on);
                    if self.clears.iter().any(|(c, _)| *c == target) {
                        self.recount_cleared();
                    }
                }
                changes.repaint = true;
            }
        }
        self.authors
            .entry(op.author.clone())
            .or_default()
            .ops
            .push(op);
        changes
    }

    /// True when every op named (all integrated) has a Lamport time below `lamport`.
    fn all_earlier(&self, ops: impl Iterator<Item = OpId>, lamport: u64) -> bool {
        let mut ops = ops;
        ops.all(|id| {
            self.authors
                .get(&id.author)
                .and_then(|log| log.ops.get((id.seq as usize).wrapping_sub(1)))
                .is_none_or(|named| named.lamport < lamport)
        })
    }

    fn is_on(&self, op: &OpId) -> bool {
        self.switches.get(op).is_none_or(|(_, on)| *on)
    }

    /// Recomputes [`Document::cleared`] from the clears that are on.
    fn recount_cleared(&mut self) {
        let mut cleared: BTreeMap<PeerId, Seq> = BTreeMap::new();
        for (clear, seen) in &self.clears {
            if !self.is_on(clear) {
                continue;
            }
            for (author, &seq) in &seen.0 {
                let highest = cleared.entry(author.clone()).or_default();
                *highest = (*highest).max(seq);
            }
        }
        self.cleared = cleared;
    }

    /// True when the element shows: its add is on, and no erase or clear that hides it is on.
    pub fn is_visible(&self, element: &Element) -> bool {
        self.is_on(&element.id)
            && !self
                .erasures
                .get(&element.id)
                .is_some_and(|ops| ops.iter().any(|e| self.is_on(e)))
            && self
                .cleared
                .get(&element.id.author)
                .is_none_or(|&seen| element.id.seq > seen)
    }

    /// The visible elements, bottom to top: the order to paint in.
    pub fn visible(&self) -> impl Iterator<Item = &Element> + '_ {
        self.stack
            .iter()
            .filter_map(|(_, id)| self.elements.get(id))
            .filter(|e| self.is_visible(e))
    }

    /// The visible elements whose box meets `area`, bottom to top: what a view of `area` paints,
    /// found through the grid ([`crate::spatial`]) among the elements near it, so its cost
    /// follows what is shown, not the whole drawing. Text is always included (its box is an
    /// estimate).
    pub fn visible_in(&self, area: &Bounds) -> Vec<&Element> {
        self.slots_in(area)
            .into_iter()
            .filter_map(|slot| self.element_in(slot))
            .filter(|e| self.is_visible(e))
            .collect()
    }

    /// The grid slots ([`crate::spatial::Slot`]) of the elements whose box meets `area`, bottom
    /// to top, visible or not: for work spread over time (a repaint over several frames), which
    /// cannot hold references into the document and checks visibility as it goes. A slot names
    /// the same element for the document's life.
    pub fn slots_in(&self, area: &Bounds) -> Vec<Slot> {
        let mut slots = self.grid.query(area);
        slots.retain(|&s| (s as usize) < self.slots.len());
        slots.sort_unstable_by(|a, b| self.slots[*a as usize].cmp(&self.slots[*b as usize]));
        slots
    }

    /// The element in grid slot `slot` (see [`Document::slots_in`]).
    pub fn element_in(&self, slot: Slot) -> Option<&Element> {
        self.slots
            .get(slot as usize)
            .and_then(|(_, id)| self.elements.get(id))
    }

    /// The grid slot of element `id`.
    pub fn slot_of(&self, id: &OpId) -> Option<Slot> {
        self.slot_of.get(id).copied()
    }

    /// The visible elements an eraser of `radius` at `(x, y)` touches, bottom to top.
    pub fn hit(&self, x: f32, y: f32, radius: f32) -> Vec<&Element> {
        let near = Bounds {
            min_x: x,
            min_y: y,
            max_x: x,
            max_y: y,
        }
        .pad(radius);
        self.visible_in(&near)
            .into_iter()
            .filter(|e| hits(e, x, y, radius))
            .collect()
    }

    /// The element with this id, visible or not.
    pub fn element(&self, id: &OpId) -> Option<&Element> {
        self.elements.get(id)
    }

    /// Every op the holder of `theirs` lacks, each author's in seq order (so the receiver
    /// integrates them without parking), the authors merged by Lamport time: the receiver's clock
    /// then climbs as this replica's did, so no op is refused as too far ahead
    /// ([`MAX_CLOCK_STEP`]) because a later one (by an author whose name sorts first) came first.
    /// Ops waiting here for what they depend on go too, when they follow their author's last
    /// integrated op: their times moved this replica's clock (see `park`), and so the times of
    /// ops it took after them; a receiver without them would refuse those.
    pub fn missing_from(&self, theirs: &VersionVector) -> Vec<&Op> {
        let mut queues: Vec<VecDeque<&Op>> = self
            .authors
            .iter()
            .map(|(author, log)| {
                let have = theirs.get(author);
                let mut queue: VecDeque<&Op> =
                    log.ops.get(have as usize..).unwrap_or(&[]).iter().collect();
                let mut next = log.ops.len() as Seq + 1;
                while let Some((op, _)) = log.parked.get(&next) {
                    if next > have {
                        queue.push_back(op);
                    }
                    next += 1;
                }
                queue
            })
            .collect();
        let mut heads: BinaryHeap<Reverse<(u64, usize)>> = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|op| Reverse((op.lamport, i))))
            .collect();
        let mut out = Vec::with_capacity(queues.iter().map(VecDeque::len).sum());
        while let Some(Reverse((_, i))) = heads.pop() {
            if let Some(op) = queues[i].pop_front() {
                out.push(op);
                if let Some(next) = queues[i].front() {
                    heads.push(Reverse((next.lamport, i)));
                }
            }
        }
        out
    }

    /// The highest Lamport time this replica has seen (integrated or waiting): its next op is
    /// stamped one above.
    pub fn lamport(&self) -> u64 {
        self.lamport
    }

    /// Every integrated op (for saving the document).
    pub fn ops(&self) -> impl Iterator<Item = &Op> + '_ {
        self.authors.values().flat_map(|log| log.ops.iter())
    }

    /// `author`'s op `seq`, integrated or waiting.
    pub fn op(&self, author: &PeerId, seq: Seq) -> Option<&Op> {
        let log = self.authors.get(author)?;
        match usize::try_from(seq).ok()?.checked_sub(1) {
            Some(i) if i < log.ops.len() => log.ops.get(i),
            _ => log.parked.get(&seq).map(|(op, _)| op),
        }
    }

    /// Number of integrated ops.
    pub fn op_count(&self) -> usize {
        self.authors.values().map(|log| log.ops.len()).sum()
    }
}

/// Cuts ops into batches of at most `max_bytes` (by [`Op::estimated_size`]), keeping order; an op
/// larger than the budget travels alone.
pub fn batches<'a>(ops: &[&'a Op], max_bytes: usize) -> Vec<Vec<&'a Op>> {
    let mut out: Vec<Vec<&Op>> = Vec::new();
    let mut size = 0;
    for op in ops {
        let s = op.estimated_size();
        match out.last_mut() {
            Some(batch) if size + s <= max_bytes => {
                batch.push(op);
                size += s;
            }
            _ => {
                out.push(vec![op]);
                size = s;
            }
        }
    }
    out
}

/// One user's undo and redo stacks: seqs of the user's own undoable ops.
#[derive(Clone, Debug, Default)]
pub struct History {
    undo: Vec<Seq>,
    redo: Vec<Seq>,
}

impl History {
    /// Notes an op the user just made. A new undoable op clears the redo stack.
    pub fn record(&mut self, op: &Op) {
        if op.op.is_undoable() {
            self.undo.push(op.seq);
            self.redo.clear();
        }
    }

    /// The op that undoes the user's latest op, if any.
    pub fn undo(&mut self) -> Option<OpKind> {
        let target = self.undo.pop()?;
        self.redo.push(target);
        Some(OpKind::Undo { target })
    }

    /// The op that redoes the latest undo, if any.
    pub fn redo(&mut self) -> Option<OpKind> {
        let target = self.redo.pop()?;
        self.undo.push(target);
        Some(OpKind::Redo { target })
    }

    /// True when there is something to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// True when there is something to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }
}

/// A user's replica: the document plus the user's identity and history. The client's whole
/// drawing state, tested here natively.
#[derive(Clone, Debug)]
pub struct Replica {
    /// Whose replica.
    pub me: PeerId,
    /// The document.
    pub doc: Document,
    /// My undo and redo stacks.
    pub history: History,
}

impl Replica {
    /// An empty replica for `me`.
    pub fn new(me: PeerId) -> Replica {
        Replica {
            me,
            doc: Document::new(),
            history: History::default(),
        }
    }

    /// Makes an op of mine, integrates it and records it for undo. Broadcast the returned op.
    pub fn perform(&mut self, kind: OpKind) -> (Op, Changes) {
        let (op, changes) = self.doc.make(&self.me, kind);
        self.history.record(&op);
        (op, changes)
    }

    /// Undoes my latest op (if any).
    pub fn undo(&mut self) -> Option<(Op, Changes)> {
        let kind = self.history.undo()?;
        Some(self.doc.make(&self.me, kind))
    }

    /// Redoes my latest undo (if any).
    pub fn redo(&mut self) -> Option<(Op, Changes)> {
        let kind = self.history.redo()?;
        Some(self.doc.make(&self.me, kind))
    }

    /// Clears what I can see.
    pub fn clear(&mut self) -> (Op, Changes) {
        let seen = self.doc.version_vector();
        self.perform(OpKind::clear(seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(i: usize) -> PeerId {
        PeerId(format!("peer-{i}"))
    }

    fn pt(x: f32, y: f32) -> Point {
        Point::new(x, y, 0.5)
    }

    fn stroke(points: &[(f32, f32)]) -> OpKind {
        OpKind::Add {
            shape: Shape::Stroke {
                points: points.iter().map(|&(x, y)| pt(x, y)).collect(),
            },
            color: Color::rgb(0, 0, 0),
            width: 2.0,
        }
    }

    fn visible_ids(doc: &Document) -> Vec<OpId> {
        doc.visible().map(|e| e.id.clone()).collect()
    }

    /// A tiny deterministic generator for delivery orders (proptest picks and shrinks the seed).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                v.swap(i, self.below(i + 1));
            }
        }
    }

    #[derive(Clone, Debug)]
    enum Action {
        Stroke(u8),
        Extend,
        Finish,
        Shape(u8),
        Erase(usize),
        Clear,
        Undo,
        Redo,
        /// The actor receives everything replica `from` has.
        Sync(usize),
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (1u8..4).prop_map(Action::Stroke),
            3 => Just(Action::Extend),
            2 => Just(Action::Finish),
            2 => (0u8..4).prop_map(Action::Shape),
            2 => any::<usize>().prop_map(Action::Erase),
            1 => Just(Action::Clear),
            3 => Just(Action::Undo),
            2 => Just(Action::Redo),
            3 => (0usize..3).prop_map(Action::Sync),
        ]
    }

    /// Runs a script of actions by three authors, each on its own replica (so they work
    /// concurrently and see each other only at `Sync`). Returns the replicas and every op made.
    /// Checks on the way that no undo ever hides another author's element.
    fn run(script: &[(usize, Action)]) -> (Vec<Replica>, Vec<Op>) {
        let mut replicas: Vec<Replica> = (0..3).map(|i| Replica::new(peer(i))).collect();
        let mut all = Vec::new();
        let mut open: Vec<Option<Seq>> = vec![None; 3];
        for (n, (who, act)) in script.iter().enumerate() {
            let who = *who;
            let f = n as f32;
            let made: Option<Op> = match act {
                Action::Stroke(k) => {
                    let pts: Vec<(f32, f32)> = (0..*k).map(|i| (f + i as f32, f)).collect();
                    let (op, _) = replicas[who].perform(stroke(&pts));
                    open[who] = Some(op.seq);
                    Some(op)
                }
                Action::Extend => open[who].map(|element| {
                    replicas[who]
                        .doc
                        .make(
                            &peer(who),
                            OpKind::Extend {
                                element,
                                points: vec![pt(f, f)],
                            },
                        )
                        .0
                }),
                Action::Finish => open[who].take().map(|element| {
                    replicas[who]
                        .doc
                        .make(&peer(who), OpKind::Finish { element })
                        .0
                }),
                Action::Shape(k) => {
                    let (from, to) = (pt(f, 0.0), pt(f + 5.0, 9.0));
                    let shape = match k {
                        0 => Shape::Line { from, to },
                        1 => Shape::Rect { from, to },
                        2 => Shape::Ellipse { from, to },
                        _ => Shape::Text {
                            at: from,
                            text: format!("t{n}"),
                            size: 16.0,
                        },
                    };
                    let kind = OpKind::Add {
                        shape,
                        color: Color::rgb(9, 9, 9),
                        width: 3.0,
                    };
                    Some(replicas[who].perform(kind).0)
                }
                Action::Erase(i) => {
                    let ids = visible_ids(&replicas[who].doc);
                    (!ids.is_empty()).then(|| {
                        let targets = vec![ids[i % ids.len()].clone()];
                        replicas[who]
                            .perform(OpKind::Erase {
                                targets,
                                marks: Marks::new(),
                            })
                            .0
                    })
                }
                Action::Clear => Some(replicas[who].clear().0),
                Action::Undo => {
                    let before: Vec<OpId> = visible_ids(&replicas[who].doc)
                        .into_iter()
                        .filter(|id| id.author != peer(who))
                        .collect();
                    let op = replicas[who].undo().map(|(op, _)| op);
                    let after = visible_ids(&replicas[who].doc);
                    for id in &before {
                        assert!(
                            after.contains(id),
                            "undo by {who} hid {id:?}, another author's work"
                        );
                    }
                    op
                }
                Action::Redo => replicas[who].redo().map(|(op, _)| op),
                Action::Sync(from) => {
                    let theirs: Vec<Op> = replicas[*from].doc.ops().cloned().collect();
                    for op in theirs {
                        replicas[who].doc.apply(op);
                    }
                    None
                }
            };
            all.extend(made);
        }
        (replicas, all)
    }

    fn script() -> impl Strategy<Value = Vec<(usize, Action)>> {
        prop::collection::vec((0usize..3, action()), 0..60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// The same ops in any order, with duplicates, give the same document.
        #[test]
        fn replicas_converge_whatever_the_delivery_order(script in script(), seed in 1u64..) {
            let (replicas, all) = run(&script);
            let mut rng = Rng(seed);
            let mut reference: Option<(Vec<Element>, VersionVector)> = None;
            // Three fresh replicas fed shuffled copies with duplicates, plus the originals.
            let mut finals: Vec<Document> = Vec::new();
            for _ in 0..3 {
                let mut delivery = all.clone();
                for _ in 0..all.len() / 3 {
                    delivery.push(all[rng.below(all.len())].clone());
                }
                rng.shuffle(&mut delivery);
                let mut doc = Document::new();
                for op in delivery {
                    doc.apply(op);
                }
                finals.push(doc);
            }
            for r in replicas {
                let mut doc = r.doc;
                for op in &all {
                    doc.apply(op.clone());
                }
                finals.push(doc);
            }
            for doc in &finals {
                let state = (doc.visible().cloned().collect::<Vec<_>>(), doc.version_vector());
                prop_assert_eq!(doc.op_count(), all.len());
                match &reference {
                    None => reference = Some(state),
                    Some(r) => prop_assert_eq!(r, &state),
                }
            }
        }

        /// Two replicas that diverged become equal by swapping version vectors and sending each
        /// other only what the other lacks, in the batches the data channel carries.
        #[test]
        fn divergent_replicas_sync_by_version_vectors(script in script()) {
            let (mut replicas, all) = run(&script);
            let (a, b) = (replicas.remove(0).doc, replicas.remove(0).doc);
            let (mut a2, mut b2) = (a.clone(), b.clone());
            let to_a = b.missing_from(&a.version_vector());
            let to_b = a.missing_from(&b.version_vector());
            // Nothing is sent twice, nor anything the other side has: exactly what it lacks
            // (`apply` would drop duplicates silently, so count what is sent, not what lands).
            let lacked = |have: &Document, other: &Document| {
                other.ops().filter(|op| !have.version_vector().covers(&op.id())).count()
            };
            prop_assert_eq!(to_a.len(), lacked(&a, &b));
            prop_assert_eq!(to_b.len(), lacked(&b, &a));
            let sent: std::collections::HashSet<OpId> = to_a.iter().map(|op| op.id()).collect();
            prop_assert_eq!(sent.len(), to_a.len());
            prop_assert!(to_a.iter().all(|op| !a.version_vector().covers(&op.id())));
            // Every op sent is integrated, once (some wait for others of the same sync first).
            let (mut into_a, mut into_b) = (0, 0);
            for batch in batches(&to_a, 2_000) {
                for op in batch {
                    into_a += a2.apply(op.clone()).integrated;
                }
            }
            for batch in batches(&to_b, 2_000) {
                for op in batch {
                    into_b += b2.apply(op.clone()).integrated;
                }
            }
            prop_assert_eq!((into_a, into_b), (to_a.len(), to_b.len()));
            prop_assert_eq!(a2.version_vector(), b2.version_vector());
            prop_assert_eq!(a2.visible().collect::<Vec<_>>(), b2.visible().collect::<Vec<_>>());
            prop_assert!(a2.op_count() <= all.len() && b2.op_count() <= all.len());
        }

        /// Oracles, computed from the op log alone (not the document's own indexes): what is
        /// visible, in what stacking order, and how Lamport times advance.
        #[test]
        fn the_document_agrees_with_oracles_over_its_op_log(script in script()) {
            let (_, all) = run(&script);
            let mut doc = Document::new();
            for op in &all {
                doc.apply(op.clone());
            }
            let by_id: HashMap<OpId, &Op> = all.iter().map(|op| (op.id(), op)).collect();
            // Lamport advance: above every op its author had seen, so strictly increasing per
            // author, and never more than one per op made anywhere.
            for op in &all {
                prop_assert!(op.lamport >= 1 && op.lamport <= all.len() as u64);
                if op.seq > 1 {
                    let prev = &by_id[&OpId { author: op.author.clone(), seq: op.seq - 1 }];
                    prop_assert!(op.lamport > prev.lamport, "lamport advances per author");
                }
            }
            // An op is on unless its author's latest undo/redo of it (by seq) is an undo.
            let on = |id: &OpId| {
                all.iter()
                    .filter(|op| op.author == id.author)
                    .filter_map(|op| match op.op {
                        OpKind::Undo { target } if target == id.seq => Some((op.seq, false)),
                        OpKind::Redo { target } if target == id.seq => Some((op.seq, true)),
                        _ => None,
                    })
                    .max()
                    .is_none_or(|(_, on)| on)
            };
            let lamport_of = |id: &OpId| by_id.get(id).map_or(0, |op| op.lamport);
            let expected: BTreeSet<OpId> = all
                .iter()
                .filter(|e| matches!(e.op, OpKind::Add { .. }) && on(&e.id()))
                .filter(|e| {
                    let id = e.id();
                    let erased = all.iter().any(|x| match &x.op {
                        OpKind::Erase { targets, .. } => {
                            targets.contains(&id)
                                && targets.iter().all(|t| lamport_of(t) < x.lamport)
                                && on(&x.id())
                        }
                        _ => false,
                    });
                    let cleared = all.iter().any(|c| match &c.op {
                        OpKind::Clear { seen, .. } => {
                            seen.covers(&id)
                                && seen.0.iter().filter(|(_, n)| **n > 0).all(|(a, n)| {
                                    lamport_of(&OpId { author: a.clone(), seq: *n }) < c.lamport
                                })
                                && on(&c.id())
                        }
                        _ => false,
                    });
                    !erased && !cleared
                })
                .map(Op::id)
                .collect();
            let shown: Vec<OpId> = visible_ids(&doc);
            prop_assert_eq!(shown.iter().cloned().collect::<BTreeSet<_>>(), expected);
            // Stacking: bottom to top by Lamport time, ties by id.
            let mut stacked = shown.clone();
            stacked.sort_by_key(|id| (lamport_of(id), id.clone()));
            prop_assert_eq!(shown, stacked);
        }

        /// What a view or an eraser finds through the grid is what a scan of every visible
        /// element finds, in the same order, wherever strokes start and grow to, and whatever
        /// was erased, cleared or undone.
        #[test]
        fn visible_in_and_hit_agree_with_a_scan(
            strokes in prop::collection::vec((-5000.0f32..5000.0, -5000.0f32..5000.0, prop::collection::vec((-3000.0f32..3000.0, -3000.0f32..3000.0), 1..4)), 1..40),
            texts in prop::collection::vec((-5000.0f32..5000.0, -5000.0f32..5000.0), 0..4),
            hide in prop::collection::vec((0usize..100, 0u8..3), 0..10),
            areas in prop::collection::vec((-6000.0f32..6000.0, -6000.0f32..6000.0, 0.0f32..4000.0), 1..6),
        ) {
            let a = peer(0);
            let b = peer(1);
            let mut doc = Document::new();
            for (n, (x, y, moves)) in strokes.iter().enumerate() {
                let author = if n % 2 == 0 { &a } else { &b };
                let (add, _) = doc.make(author, stroke(&[(*x, *y)]));
                for (dx, dy) in moves {
                    doc.make(author, OpKind::Extend { element: add.seq, points: vec![pt(x + dx, y + dy)] });
                }
                doc.make(author, OpKind::Finish { element: add.seq });
            }
            for (x, y) in &texts {
                let kind = OpKind::Add {
                    shape: Shape::Text { at: pt(*x, *y), text: "hi".into(), size: 16.0 },
                    color: Color::rgb(1, 2, 3),
                    width: 2.0,
                };
                doc.make(&a, kind);
            }
            for (i, how) in hide {
                let ids = visible_ids(&doc);
                if ids.is_empty() {
                    break;
                }
                match how {
                    0 => {
                        doc.make(&a, OpKind::erase(vec![ids[i % ids.len()].clone()]));
                    }
                    1 => {
                        doc.make(&b, OpKind::clear(doc.version_vector()));
                    }
                    _ => {
                        let target = doc.next_seq(&b).saturating_sub(1).max(1);
                        doc.make(&b, OpKind::Undo { target });
                    }
                }
            }
            // A late joiner that took b's ops before a's: its grid holds the elements in another
            // order than the stack.
            let mut joiner = Document::new();
            let (bs, as_): (Vec<Op>, Vec<Op>) = doc.ops().cloned().partition(|op| op.author == b);
            for op in bs.into_iter().chain(as_) {
                joiner.apply(op);
            }
            for ((x, y, size), doc) in areas.iter().flat_map(|a| [(*a, &doc), (*a, &joiner)]) {
                let area = Bounds { min_x: x, min_y: y, max_x: x + size, max_y: y + size };
                let scanned: Vec<OpId> = doc
                    .visible()
                    .filter(|e| matches!(e.shape, Shape::Text { .. }) || bounds(e).intersects(&area))
                    .map(|e| e.id.clone())
                    .collect();
                let found: Vec<OpId> = doc.visible_in(&area).iter().map(|e| e.id.clone()).collect();
                prop_assert_eq!(&found, &scanned);
                let by_slot: Vec<OpId> = doc
                    .slots_in(&area)
                    .into_iter()
                    .filter_map(|s| doc.element_in(s))
                    .filter(|e| doc.is_visible(e))
                    .map(|e| e.id.clone())
                    .collect();
                prop_assert_eq!(by_slot, scanned);
                let hit: Vec<OpId> = doc.hit(x, y, 12.0).iter().map(|e| e.id.clone()).collect();
                let scanned: Vec<OpId> = doc
                    .visible()
                    .filter(|e| hits(e, x, y, 12.0))
                    .map(|e| e.id.clone())
                    .collect();
                prop_assert_eq!(hit, scanned);
            }
        }

        /// Undo then redo of my latest op restores exactly the drawing I had.
        #[test]
        fn undo_then_redo_is_a_no_op(script in script()) {
            let (mut replicas, _) = run(&script);
            let r = &mut replicas[0];
            let before = visible_ids(&r.doc);
            if r.undo().is_some() {
                r.redo().expect("what was undone can be redone");
                prop_assert_eq!(visible_ids(&r.doc), before);
            }
        }
    }

    #[test]
    fn clear_removes_what_its_author_saw_and_spares_concurrent_work() {
        let (mut a, mut b) = (Replica::new(peer(0)), Replica::new(peer(1)));
        let (seen_by_both, _) = b.perform(stroke(&[(1.0, 1.0)]));
        a.doc.apply(seen_by_both.clone());
        let (concurrent, _) = b.perform(stroke(&[(2.0, 2.0)])); // a has not seen this one
        let (clear, _) = a.clear();
        b.doc.apply(clear);
        a.doc.apply(concurrent.clone());
        for doc in [&a.doc, &b.doc] {
            assert_eq!(visible_ids(doc), vec![concurrent.id()]);
        }
        // Undoing the clear brings back what it hid, everywhere.
        let (undo, _) = a.undo().unwrap();
        b.doc.apply(undo);
        for doc in [&a.doc, &b.doc] {
            assert_eq!(visible_ids(doc), vec![seen_by_both.id(), concurrent.id()]);
        }
    }

    #[test]
    fn undo_and_redo_touch_only_my_own_ops() {
        let (mut a, mut b) = (Replica::new(peer(0)), Replica::new(peer(1)));
        let (mine, _) = a.perform(stroke(&[(1.0, 1.0)]));
        let (theirs, _) = b.perform(stroke(&[(2.0, 2.0)]));
        a.doc.apply(theirs.clone());
        b.doc.apply(mine.clone());
        // b erases a's stroke: it is gone everywhere.
        let (erase, _) = b.perform(OpKind::Erase {
            marks: Marks::new(),
            targets: vec![mine.id()],
        });
        a.doc.apply(erase);
        assert_eq!(visible_ids(&a.doc), vec![theirs.id()]);
        assert_eq!(visible_ids(&b.doc), vec![theirs.id()]);
        // a's undo names a's own stroke, never b's erase (which a cannot take back).
        let (undo, _) = a.undo().unwrap();
        assert_eq!(undo.op, OpKind::Undo { target: mine.seq });
        b.doc.apply(undo);
        assert!(!a.history.can_undo());
        // a redoes its stroke: still hidden, because b's erase still stands.
        let (redo, _) = a.redo().unwrap();
        b.doc.apply(redo);
        assert_eq!(visible_ids(&a.doc), vec![theirs.id()]);
        assert_eq!(visible_ids(&b.doc), vec![theirs.id()]);
        // Only b's undo of its erase brings a's stroke back.
        let (b_undo, _) = b.undo().unwrap();
        assert_eq!(b_undo.op, OpKind::Undo { target: 2 });
        a.doc.apply(b_undo);
        assert_eq!(visible_ids(&a.doc), vec![mine.id(), theirs.id()]);
        assert_eq!(visible_ids(&b.doc), vec![mine.id(), theirs.id()]);
    }

    /// A hostile peer's op, handed over by that peer.
    fn hostile(doc: &mut Document, op: Op) -> Result<Changes, OpError> {
        op.validate()?;
        let sender = op.author.clone();
        doc.apply_from(op, Some(&sender))
    }

    #[test]
    fn clocks_near_the_javascript_limit_are_refused_and_steps_are_bounded() {
        let mut a = Replica::new(peer(0));
        a.perform(stroke(&[(1.0, 1.0)]));
        let huge = Op {
            author: peer(9),
            seq: 1,
            lamport: (1 << 53) - 1,
            op: stroke(&[(0.0, 0.0)]),
        };
        assert_eq!(hostile(&mut a.doc, huge.clone()), Err(OpError::BadClock));
        let jump = Op {
            lamport: a.doc.lamport + MAX_CLOCK_STEP + 1,
            ..huge.clone()
        };
        assert_eq!(hostile(&mut a.doc, jump), Err(OpError::ClockJump));
        let far_seq = Op {
            seq: MAX_CLOCK_STEP + 2,
            lamport: 3,
            ..huge
        };
        assert_eq!(hostile(&mut a.doc, far_seq), Err(OpError::ClockJump));
        // The replica's own clock is untouched and keeps counting in small steps.
        let (next, _) = a.perform(stroke(&[(2.0, 2.0)]));
        assert_eq!(next.lamport, 2);
        // u64::MAX anywhere: refused, never wrapped or panicked on.
        let mut max = next.clone();
        max.lamport = u64::MAX;
        max.seq = u64::MAX;
        assert!(max.validate().is_err());
        assert_eq!(a.doc.apply(max).integrated, 0);
    }

    #[test]
    fn a_clear_claiming_ops_not_yet_made_waits_and_never_hides_them() {
        let (mut a, mut b) = (Replica::new(peer(0)), Replica::new(peer(1)));
        let (first, _) = b.perform(stroke(&[(1.0, 1.0)]));
        a.doc.apply(first.clone());
        // peer 9 "saw" b's 1,000,000th op: the clear waits for it, hiding nothing.
        let forged = Op {
            author: peer(9),
            seq: 1,
            lamport: 5,
            op: OpKind::Clear {
                marks: Marks::new(),
                seen: VersionVector([(peer(1), 1_000_000)].into()),
            },
        };
        assert_eq!(hostile(&mut a.doc, forged.clone()).unwrap().integrated, 0);
        let (later, _) = b.perform(stroke(&[(2.0, 2.0)]));
        a.doc.apply(later.clone());
        assert_eq!(visible_ids(&a.doc), vec![first.id(), later.id()]);
        // At u64::MAX it is refused outright.
        let mut worse = forged;
        worse.op = OpKind::Clear {
            marks: Marks::new(),
            seen: VersionVector([(peer(1), u64::MAX)].into()),
        };
        assert_eq!(hostile(&mut a.doc, worse), Err(OpError::BadClock));
        // A clear that names b's next op with a Lamport time below it hides nothing when that
        // op arrives: it cannot have seen it.
        let sly = Op {
            author: peer(8),
            seq: 1,
            lamport: 3,
            op: OpKind::Clear {
                marks: Marks::new(),
                seen: VersionVector([(peer(1), 3)].into()),
            },
        };
        hostile(&mut a.doc, sly).unwrap();
        let (third, _) = b.perform(stroke(&[(3.0, 3.0)]));
        assert!(third.lamport >= 3);
        a.doc.apply(third.clone());
        assert_eq!(
            visible_ids(&a.doc),
            vec![first.id(), later.id(), third.id()]
        );
    }

    #[test]
    fn an_erase_naming_future_ops_waits_and_hides_nothing() {
        let (mut a, mut b) = (Replica::new(peer(0)), Replica::new(peer(1)));
        let targets = (1..=10_000)
            .map(|seq| OpId {
                author: peer(1),
                seq,
            })
            .collect();
        let forged = Op {
            author: peer(9),
            seq: 1,
            lamport: 2,
            op: OpKind::Erase {
                targets,
                marks: Marks::new(),
            },
        };
        hostile(&mut a.doc, forged).unwrap();
        for n in 0..5 {
            let (op, _) = b.perform(stroke(&[(n as f32, 1.0)]));
            a.doc.apply(op);
        }
        assert_eq!(visible_ids(&a.doc).len(), 5);
        // An honest erase of an element that arrives after it waits for it, then hides it.
        let mut c = Document::new();
        let (gone, _) = b.perform(stroke(&[(9.0, 9.0)]));
        let mut eraser = Replica::new(peer(2));
        for op in b.doc.ops().cloned().collect::<Vec<_>>() {
            eraser.doc.apply(op);
        }
        let (erase, _) = eraser.perform(OpKind::Erase {
            marks: Marks::new(),
            targets: vec![gone.id()],
        });
        c.apply(erase);
        assert!(visible_ids(&c).is_empty());
        for op in b.doc.ops().cloned().collect::<Vec<_>>() {
            c.apply(op);
        }
        assert!(!visible_ids(&c).contains(&gone.id()));
        assert_eq!(visible_ids(&c).len(), 5);
    }

    #[test]
    fn a_forgery_stamped_far_ahead_hides_nothing_drawn_after_it_arrived() {
        // Mallory stamps an erase of bob's next ops and a clear of them with a Lamport time as
        // far ahead as allowed, so that bob's coming ops would look earlier. Bob gets them first:
        // they wait for what they name, but his clock moves past them, so his new work is stamped
        // later and neither hides it, on his replica or anyone's.
        let mut b = Replica::new(peer(1));
        let far = MAX_CLOCK_STEP;
        let erase = Op {
            author: peer(9),
            seq: 1,
            lamport: far,
            op: OpKind::Erase {
                marks: Marks::new(),
                targets: (1..=10)
                    .map(|seq| OpId {
                        author: peer(1),
                        seq,
                    })
                    .collect(),
            },
        };
        let clear = Op {
            author: peer(9),
            seq: 2,
            lamport: far,
            op: OpKind::Clear {
                marks: Marks::new(),
                seen: VersionVector([(peer(1), 10)].into()),
            },
        };
        hostile(&mut b.doc, erase.clone()).unwrap();
        hostile(&mut b.doc, clear.clone()).unwrap();
        let mine: Vec<Op> = (0..10)
            .map(|n| b.perform(stroke(&[(n as f32, 1.0)])).0)
            .collect();
        assert!(mine.iter().all(|op| op.lamport > far));
        assert_eq!(visible_ids(&b.doc).len(), 10, "bob's work stays");
        // A late joiner gets them in Lamport order (see `missing_from`): the forgeries first.
        let mut c = Document::new();
        for op in [erase, clear].into_iter().chain(mine) {
            c.apply(op);
        }
        assert_eq!(c.op_count(), 12);
        assert_eq!(visible_ids(&c).len(), 10, "and stays everywhere");
    }

    #[test]
    fn one_sender_cannot_fill_the_parked_pool_nor_invent_endless_authors() {
        let mut a = Replica::new(peer(0));
        let early = |author: usize, seq: Seq| Op {
            author: peer(author),
            seq,
            lamport: 1,
            op: stroke(&[(0.0, 0.0)]),
        };
        // 120,000 early ops from one sender: its budget stops it.
        let mut refused = 0;
        for seq in 2..120_002 {
            if hostile(&mut a.doc, early(7, seq)).is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 120_000 - MAX_PARKED_PER_SENDER);
        // An honest peer's early op still parks, and lands when its gap fills.
        let honest = peer(3);
        assert!(a.doc.apply_from(early(3, 2), Some(&honest)).is_ok());
        a.doc.apply_from(early(3, 1), Some(&honest)).unwrap();
        assert_eq!(a.doc.next_seq(&honest), 3);
        // Ops of invented "departed" authors, all handed over by one sender: a bounded number.
        let sender = peer(7);
        let mut accepted = 0;
        for n in 0..5_000 {
            let op = early(100_000 + n, 1);
            if a.doc.apply_from(op, Some(&sender)).is_ok() {
                accepted += 1;
            }
        }
        assert_eq!(accepted, MAX_NEW_AUTHORS_PER_SENDER);
    }

    #[test]
    fn a_new_op_clears_redo() {
        let mut a = Replica::new(peer(0));
        a.perform(stroke(&[(1.0, 1.0)]));
        a.undo().unwrap();
        assert!(a.history.can_redo());
        a.perform(stroke(&[(2.0, 2.0)]));
        assert!(!a.history.can_redo());
    }

    #[test]
    fn early_ops_wait_for_the_gap_and_duplicates_are_ignored() {
        let mut a = Replica::new(peer(0));
        let (add, _) = a.perform(stroke(&[(0.0, 0.0)]));
        let (ext, _) = a.doc.make(
            &peer(0),
            OpKind::Extend {
                element: add.seq,
                points: vec![pt(1.0, 1.0)],
            },
        );
        let mut b = Document::new();
        assert_eq!(
            b.apply(ext.clone()).integrated,
            0,
            "parked until the add arrives"
        );
        assert!(b.visible().next().is_none());
        let changes = b.apply(add.clone());
        assert_eq!(changes.integrated, 2);
        assert_eq!(changes.grown, vec![(add.id(), 0), (add.id(), 1)]);
        assert_eq!(b.apply(add).integrated, 0);
        assert_eq!(b.apply(ext).integrated, 0);
        match &b.visible().next().unwrap().shape {
            Shape::Stroke { points } => assert_eq!(points.len(), 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parking_is_bounded_across_all_authors() {
        let mut doc = Document::new();
        // Ops that can never integrate (their seq 1 never comes), spread over many authors.
        for i in 0..MAX_PARKED + 10 {
            let author = PeerId(format!("ghost-{}", i % 1000));
            doc.apply(Op {
                author,
                seq: 2 + (i / 1000) as Seq,
                lamport: 1,
                op: OpKind::Finish { element: 1 },
            });
        }
        assert_eq!(doc.parked, MAX_PARKED);
        // Parked ops that do fit are released, and free their places.
        let a = peer(0);
        doc.apply(Op {
            author: a.clone(),
            seq: 1,
            lamport: 1,
            op: stroke(&[(0.0, 0.0)]),
        });
        assert_eq!(doc.op_count(), 1);
        let ghost = PeerId("ghost-0".into());
        doc.apply(Op {
            author: ghost,
            seq: 1,
            lamport: 1,
            op: stroke(&[(0.0, 0.0)]),
        });
        assert!(
            doc.op_count() > 2,
            "ghost-0's parked ops followed its first one"
        );
        assert!(doc.parked < MAX_PARKED);
    }

    #[test]
    fn stacking_is_by_lamport_time_not_arrival() {
        // The later stroke's author sorts first by id, so neither arrival order nor op ids
        // give the Lamport order this test expects.
        let (mut a, mut b) = (Replica::new(peer(1)), Replica::new(peer(0)));
        let (first, _) = a.perform(stroke(&[(0.0, 0.0)]));
        b.doc.apply(first.clone());
        let (second, _) = b.perform(stroke(&[(1.0, 1.0)]));
        // A third replica hears the later stroke first; it still stacks it on top.
        let mut c = Document::new();
        c.apply(second.clone());
        let changes = c.apply(first.clone());
        assert!(
            changes.repaint,
            "an element landing under another needs a full repaint"
        );
        assert_eq!(visible_ids(&c), vec![first.id(), second.id()]);
    }

    #[test]
    fn validation_bounds_untrusted_ops() {
        let ok = Op {
            author: peer(0),
            seq: 2,
            lamport: 1,
            op: stroke(&[(0.0, 0.0)]),
        };
        assert_eq!(ok.validate(), Ok(()));
        let with = |seq, op| Op {
            author: peer(0),
            seq,
            lamport: 1,
            op,
        };
        assert_eq!(
            with(0, stroke(&[(0.0, 0.0)])).validate(),
            Err(OpError::ZeroSeq)
        );
        assert_eq!(with(1, stroke(&[])).validate(), Err(OpError::BadPointCount));
        assert_eq!(
            with(1, stroke(&[(f32::NAN, 0.0)])).validate(),
            Err(OpError::BadPoint)
        );
        assert_eq!(
            with(2, OpKind::Undo { target: 2 }).validate(),
            Err(OpError::BadTarget)
        );
        assert_eq!(
            with(
                2,
                OpKind::Extend {
                    element: 5,
                    points: vec![pt(0.0, 0.0)]
                }
            )
            .validate(),
            Err(OpError::BadTarget)
        );
        let text = |text: &str, size| OpKind::Add {
            shape: Shape::Text {
                at: pt(0.0, 0.0),
                text: text.into(),
                size,
            },
            color: Color::rgb(0, 0, 0),
            width: 1.0,
        };
        assert_eq!(with(1, text("hi", 16.0)).validate(), Ok(()));
        assert_eq!(with(1, text(" ", 16.0)).validate(), Err(OpError::BadText));
        assert_eq!(with(1, text("hi", 1e9)).validate(), Err(OpError::BadText));
        assert_eq!(
            with(1, text(&"x".repeat(MAX_TEXT_CHARS + 1), 16.0)).validate(),
            Err(OpError::BadText)
        );
        let wide = OpKind::Add {
            shape: Shape::Line {
                from: pt(0.0, 0.0),
                to: pt(1.0, 1.0),
            },
            color: Color::rgb(0, 0, 0),
            width: 500.0,
        };
        assert_eq!(with(1, wide).validate(), Err(OpError::BadWidth));
    }

    #[test]
    fn ops_have_a_stable_json_shape() {
        let op = Op {
            author: peer(0),
            seq: 1,
            lamport: 3,
            op: stroke(&[(1.0, 2.0)]),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            serde_json::json!({"author": "peer-0", "seq": 1, "lamport": 3, "op": {
                "add": {"shape": {"stroke": {"points": [{"x": 1.0, "y": 2.0, "p": 0.5}]}},
                "color": "#000000", "width": 2.0}}})
        );
        let clear = Op {
            author: peer(0),
            seq: 2,
            lamport: 4,
            op: OpKind::Clear {
                marks: Marks::new(),
                seen: VersionVector([(peer(1), 7)].into()),
            },
        };
        let json = serde_json::to_value(&clear).unwrap();
        assert_eq!(
            json["op"],
            serde_json::json!({"clear": {"seen": {"peer-1": 7}}})
        );
        assert_eq!(serde_json::from_value::<Op>(json).unwrap(), clear);
    }

    #[test]
    fn batches_respect_the_budget_and_keep_order() {
        let ops: Vec<Op> = (1..=50)
            .map(|seq| Op {
                author: peer(0),
                seq,
                lamport: seq,
                op: stroke(&[(0.0, 0.0); 20]),
            })
            .collect();
        let refs: Vec<&Op> = ops.iter().collect();
        let size = ops[0].estimated_size();
        let cut = batches(&refs, size * 4);
        assert!(cut.iter().all(|b| b.len() <= 4 && !b.is_empty()));
        let flat: Vec<Seq> = cut.iter().flatten().map(|op| op.seq).collect();
        assert_eq!(flat, (1..=50).collect::<Vec<_>>());
        // An op over the budget still travels, alone.
        assert_eq!(batches(&refs[..2], 1).len(), 2);
    }
}
