//! The packed encoding of `ops` messages: what a sync sends a peer that takes it.
//!
//! Why: a late joiner is sent the whole drawing. As JSON, 10,000 strokes of 50 points are about
//! 15 MB; a data channel on loopback carried that in 1.9 s, and the browser then parsed it into
//! objects that `serde-wasm-bindgen` walked field by field (`BENCHMARKS.md`, late join). Packed,
//! the same ops are about a sixth of the size and are decoded straight from one byte slice in
//! wasm. Live messages stay JSON: they are small, and every peer and test harness reads them. A
//! peer is sent packed syncs only when its hello says it takes them
//! ([`ChannelMessage::Hello`]'s `packed`), so a client that predates this keeps getting JSON.
//!
//! The layout, every integer an unsigned LEB128 varint unless said otherwise, a string its
//! length and then its UTF-8 bytes, a float its IEEE bits little-endian:
//! - [`FORMAT`], one byte;
//! - the authors: a count, then each as a string; an op names its author by index here;
//! - the ops: a count, then each: author index, seq, Lamport time, a kind byte and its fields
//!   (the kind bytes and field order of [`crate::signing::canonical`]);
//! - the proofs: a count, then each: author (string), seq, signature (64 bytes);
//! - the certificates: a count, then each: peer (string), key (32 bytes), signature (64 bytes).
//!
//! Points, the bulk of a drawing, are a count and then, per point, a head byte:
//! - bit 7 clear: the position follows as two zigzag varints, the steps in x and y from the
//!   previous point that was written this way (from 0, 0 for the first), in 1/16 px. The
//!   client quantizes positions to 1/16 px (`client::canvas`), so strokes drawn at zoom 1 take
//!   this form: a step of up to 4 px costs one byte per axis;
//! - bit 7 set: x and y follow as floats;
//! - bits 0 to 6: the pressure, `n / 64` for `n` up to 64 (what the client's quantizing leaves),
//!   or 127: a float follows.
//!
//! Either way a value decodes to the very bits that were encoded: a point that the short form
//! cannot carry exactly (negative zero, a fraction finer than 1/16) takes the long one. That
//! matters, because each op is hashed into its author's signed chain ([`crate::signing`]).
//!
//! Nothing here trusts the bytes: every count is checked against what is left before anything
//! is allocated, and any flaw is a [`MessageError::Malformed`]. What decodes is then checked
//! like any JSON message ([`ChannelMessage::validate`]).

use crate::color::Color;
use crate::document::{Marks, Op, OpId, OpKind, Shape, VersionVector};
use crate::geometry::Point;
use crate::protocol::PeerId;
use crate::signing::{Certificate, Mark, Proof, PublicKey, Signature};
use crate::sync::{ChannelMessage, MessageError};
use std::collections::BTreeMap;

/// The first byte of a packed `ops` message (and its version).
pub const FORMAT: u8 = 1;

/// Steps per CSS pixel of the short form of a position.
const STEPS: f32 = 16.0;
/// Steps per unit of pressure of the short form.
const PRESSURE_STEPS: f32 = 64.0;
/// A position whose steps reach this is written long (beyond it an `f32` holds no more steps).
const MAX_STEPS: f32 = 16_777_216.0;
/// Head bit: the position is written as floats.
const LONG_POSITION: u8 = 0x80;
/// Head value of bits 0 to 6: the pressure is written as a float.
const LONG_PRESSURE: u8 = 0x7f;

/// An `ops` message, packed.
pub fn encode(ops: &[Op], proofs: &[Proof], certs: &[Certificate]) -> Vec<u8> {
    // About what a stroke point costs: enough that a sync batch rarely grows the buffer.
    let mut out = Writer(Vec::with_capacity(64 + ops.len() * 32));
    out.0.push(FORMAT);
    let mut authors: Vec<&PeerId> = Vec::new();
    let mut index: BTreeMap<&PeerId, usize> = BTreeMap::new();
    for op in ops {
        index.entry(&op.author).or_insert_with(|| {
            authors.push(&op.author);
            authors.len() - 1
        });
    }
    out.len(authors.len());
    for author in &authors {
        out.str(&author.0);
    }
    out.len(ops.len());
    for op in ops {
        out.uint(index[&op.author] as u64);
        out.uint(op.seq);
        out.uint(op.lamport);
        out.kind(&op.op);
    }
    out.len(proofs.len());
    for proof in proofs {
        out.str(&proof.author.0);
        out.uint(proof.seq);
        out.0.extend_from_slice(&proof.sig.0);
    }
    out.len(certs.len());
    for cert in certs {
        out.str(&cert.peer.0);
        out.0.extend_from_slice(&cert.key.0);
        out.0.extend_from_slice(&cert.sig.0);
    }
    out.0
}

/// A packed `ops` message, read back; not yet validated (see [`ChannelMessage::validate`]).
pub fn decode(bytes: &[u8]) -> Result<ChannelMessage, MessageError> {
    let mut r = Reader { bytes, at: 0 };
    match r.byte()? {
        FORMAT => {}
        other => return Err(malformed(&format!("unknown packed format {other}"))),
    }
    let authors = r.many(1, |r| r.str().map(PeerId))?;
    let ops = r.many(4, |r| {
        let author = authors
            .get(r.len()?)
            .ok_or_else(|| malformed("an op names an author not listed"))?
            .clone();
        Ok(Op {
            author,
            seq: r.uint()?,
            lamport: r.uint()?,
            op: r.kind()?,
        })
    })?;
    let proofs = r.many(66, |r| {
        Ok(Proof {
            author: PeerId(r.str()?),
            seq: r.uint()?,
            sig: Signature(r.array()?),
        })
    })?;
    let certs = r.many(97, |r| {
        Ok(Certificate {
            peer: PeerId(r.str()?),
            key: PublicKey(r.array()?),
            sig: Signature(r.array()?),
        })
    })?;
    if r.at != bytes.len() {
        return Err(malformed("bytes after the message"));
    }
    Ok(ChannelMessage::Ops { ops, proofs, certs })
}

fn malformed(why: &str) -> MessageError {
    MessageError::Malformed(format!("packed: {why}"))
}

struct Writer(Vec<u8>);

impl Writer {
    fn uint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn len(&mut self, n: usize) {
        self.uint(n as u64);
    }

    fn int(&mut self, v: i64) {
        self.uint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn float(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn op_id(&mut self, id: &OpId) {
        self.str(&id.author.0);
        self.uint(id.seq);
    }

    fn marks(&mut self, marks: &Marks) {
        self.len(marks.len());
        for (author, mark) in marks {
            self.str(&author.0);
            self.0.extend_from_slice(&mark.0);
        }
    }

    fn points(&mut self, points: &[Point]) {
        self.len(points.len());
        let mut last = (0i64, 0i64);
        for p in points {
            let short = (steps(p.x), steps(p.y));
            let pressure = pressure_steps(p.pressure);
            let head = match short {
                (Some(_), Some(_)) => 0,
                _ => LONG_POSITION,
            } | pressure.unwrap_or(LONG_PRESSURE);
            self.0.push(head);
            match short {
                (Some(x), Some(y)) => {
                    self.int(x - last.0);
                    self.int(y - last.1);
                    last = (x, y);
                }
                _ => {
                    self.float(p.x);
                    self.float(p.y);
                }
            }
            if pressure.is_none() {
                self.float(p.pressure);
            }
        }
    }

    fn point(&mut self, p: &Point) {
        self.points(std::slice::from_ref(p));
    }

    fn shape(&mut self, shape: &Shape) {
        match shape {
            Shape::Stroke { points } => {
                self.0.push(1);
                self.points(points);
            }
            Shape::Line { from, to } | Shape::Rect { from, to } | Shape::Ellipse { from, to } => {
                self.0.push(match shape {
                    Shape::Line { .. } => 2,
                    Shape::Rect { .. } => 3,
                    _ => 4,
                });
                self.point(from);
                self.point(to);
            }
            Shape::Text { at, text, size } => {
                self.0.push(5);
                self.point(at);
                self.str(text);
                self.float(*size);
            }
        }
    }

    fn kind(&mut self, kind: &OpKind) {
        match kind {
            OpKind::Add {
                shape,
                color,
                width,
            } => {
                self.0.push(1);
                self.shape(shape);
                self.0.extend_from_slice(&[color.r, color.g, color.b]);
                self.float(*width);
            }
            OpKind::Extend { element, points } => {
                self.0.push(2);
                self.uint(*element);
                self.points(points);
            }
            OpKind::Finish { element } => {
                self.0.push(3);
                self.uint(*element);
            }
            OpKind::Erase { targets, marks } => {
                self.0.push(4);
                self.len(targets.len());
                targets.iter().for_each(|t| self.op_id(t));
                self.marks(marks);
            }
            OpKind::Clear { seen, marks } => {
                self.0.push(5);
                self.len(seen.0.len());
                for (author, seq) in &seen.0 {
                    self.str(&author.0);
                    self.uint(*seq);
                }
                self.marks(marks);
            }
            OpKind::Undo { target } => {
                self.0.push(6);
                self.uint(*target);
            }
            OpKind::Redo { target } => {
                self.0.push(7);
                self.uint(*target);
            }
        }
    }
}

/// `v` in 1/16 px steps, when that gives back exactly `v`.
fn steps(v: f32) -> Option<i64> {
    let s = v * STEPS;
    (s.fract() == 0.0
        && s.abs() < MAX_STEPS
        && ((s as i64) as f32 / STEPS).to_bits() == v.to_bits())
    .then_some(s as i64)
}

/// Pressure `p` as n/64, when that gives back exactly `p`.
fn pressure_steps(p: f32) -> Option<u8> {
    let n = p * PRESSURE_STEPS;
    (n.fract() == 0.0
        && (0.0..=PRESSURE_STEPS).contains(&n)
        && (n as u8 as f32 / PRESSURE_STEPS).to_bits() == p.to_bits())
    .then_some(n as u8)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        if n > self.left() {
            return Err(malformed("cut short"));
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, MessageError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn uint(&mut self) -> Result<u64, MessageError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may hold one bit; more would not fit a u64.
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(malformed("a number too large"))
    }

    fn len(&mut self) -> Result<usize, MessageError> {
        usize::try_from(self.uint()?).map_err(|_| malformed("a length too large"))
    }

    fn int(&mut self) -> Result<i64, MessageError> {
        let v = self.uint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn float(&mut self) -> Result<f32, MessageError> {
        Ok(f32::from_bits(u32::from_le_bytes(self.array()?)))
    }

    fn str(&mut self) -> Result<String, MessageError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string not UTF-8"))
    }

    /// A count and that many items, each at least `min_bytes` long: a count the bytes left
    /// cannot hold is refused before anything is allocated for it.
    fn many<T>(
        &mut self,
        min_bytes: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, MessageError>,
    ) -> Result<Vec<T>, MessageError> {
        let n = self.len()?;
        if n > self.left() / min_bytes {
            return Err(malformed("a count larger than the message"));
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    fn op_id(&mut self) -> Result<OpId, MessageError> {
        Ok(OpId {
            author: PeerId(self.str()?),
            seq: self.uint()?,
        })
    }

    fn marks(&mut self) -> Result<Marks, MessageError> {
        let pairs = self.many(17, |r| Ok((PeerId(r.str()?), Mark(r.array()?))))?;
        Ok(pairs.into_iter().collect())
    }

    fn points(&mut self) -> Result<Vec<Point>, MessageError> {
        let mut last = (0i64, 0i64);
        self.many(3, |r| {
            let head = r.byte()?;
            let (x, y) = if head & LONG_POSITION == 0 {
                let x = last.0.checked_add(r.int()?);
                let y = last.1.checked_add(r.int()?);
                let (Some(x), Some(y)) = (x, y) else {
                    return Err(malformed("a position out of range"));
                };
                if x.unsigned_abs() >= MAX_STEPS as u64 || y.unsigned_abs() >= MAX_STEPS as u64 {
                    return Err(malformed("a position out of range"));
                }
                last = (x, y);
                (x as f32 / STEPS, y as f32 / STEPS)
            } else {
                (r.float()?, r.float()?)
            };
            let pressure = match head & !LONG_POSITION {
                LONG_PRESSURE => r.float()?,
                n if f32::from(n) <= PRESSURE_STEPS => f32::from(n) / PRESSURE_STEPS,
                _ => return Err(malformed("a pressure out of range")),
            };
            Ok(Point::new(x, y, pressure))
        })
    }

    fn point(&mut self) -> Result<Point, MessageError> {
        match self.points()?.as_slice() {
            [p] => Ok(*p),
            _ => Err(malformed("a shape's corner is not one point")),
        }
    }

    fn shape(&mut self) -> Result<Shape, MessageError> {
        Ok(match self.byte()? {
            1 => Shape::Stroke {
                points: self.points()?,
            },
            kind @ 2..=4 => {
                let (from, to) = (self.point()?, self.point()?);
                match kind {
                    2 => Shape::Line { from, to },
                    3 => Shape::Rect { from, to },
                    _ => Shape::Ellipse { from, to },
                }
            }
            5 => Shape::Text {
                at: self.point()?,
                text: self.str()?,
                size: self.float()?,
            },
            other => return Err(malformed(&format!("unknown shape {other}"))),
        })
    }

    fn kind(&mut self) -> Result<OpKind, MessageError> {
        Ok(match self.byte()? {
            1 => {
                let shape = self.shape()?;
                let [r, g, b] = self.array()?;
                OpKind::Add {
                    shape,
                    color: Color::rgb(r, g, b),
                    width: self.float()?,
                }
            }
            2 => OpKind::Extend {
                element: self.uint()?,
                points: self.points()?,
            },
            3 => OpKind::Finish {
                element: self.uint()?,
            },
            4 => OpKind::Erase {
                targets: self.many(2, Self::op_id)?,
                marks: self.marks()?,
            },
            5 => {
                let seen = self.many(2, |r| Ok((PeerId(r.str()?), r.uint()?)))?;
                OpKind::Clear {
                    seen: VersionVector(seen.into_iter().collect()),
                    marks: self.marks()?,
                }
            }
            6 => OpKind::Undo {
                target: self.uint()?,
            },
            7 => OpKind::Redo {
                target: self.uint()?,
            },
            other => return Err(malformed(&format!("unknown op kind {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(points: Vec<Point>) -> Op {
        Op {
            author: PeerId("local-ab".into()),
            seq: 1,
            lamport: 300,
            op: OpKind::Add {
                shape: Shape::Stroke { points },
                color: Color::rgb(1, 2, 3),
                width: 2.5,
            },
        }
    }

    fn roundtrip(ops: &[Op]) -> Vec<u8> {
        let bytes = encode(ops, &[], &[]);
        match decode(&bytes) {
            Ok(ChannelMessage::Ops { ops: back, .. }) => assert_eq!(back, ops),
            other => panic!("{other:?}"),
        }
        bytes
    }

    #[test]
    fn a_stroke_drawn_at_zoom_1_takes_about_three_bytes_a_point() {
        // A random walk of 1/16 px positions with steps under 4 px, mouse pressure.
        let points: Vec<Point> = (0..50)
            .map(|i| {
                let i = i as f32;
                Point::new(100.0 + i * 3.25, 200.0 - i * 1.5625, 0.5)
            })
            .collect();
        let bytes = roundtrip(&[stroke(points)]);
        assert!(bytes.len() < 50 * 3 + 40, "{} bytes", bytes.len());
    }

    #[test]
    fn values_the_short_form_cannot_hold_come_back_bit_for_bit() {
        let odd = [
            Point::new(-0.0, 0.0, -0.0),
            Point::new(0.03, 1e30, 0.3),
            Point::new(f32::MIN_POSITIVE, -1.0e7, 1.0),
            Point::new(2.0e6, -2.0e6, 0.015625),
            Point::new(f32::NAN, f32::INFINITY, f32::NAN),
        ];
        let bytes = encode(&[stroke(odd.to_vec())], &[], &[]);
        let Ok(ChannelMessage::Ops { ops, .. }) = decode(&bytes) else {
            panic!("does not decode");
        };
        let OpKind::Add {
            shape: Shape::Stroke { points },
            ..
        } = &ops[0].op
        else {
            panic!("{ops:?}");
        };
        let bits = |p: &Point| [p.x.to_bits(), p.y.to_bits(), p.pressure.to_bits()];
        let back: Vec<_> = points.iter().map(bits).collect();
        let sent: Vec<_> = odd.iter().map(bits).collect();
        assert_eq!(back, sent);
    }

    #[test]
    fn counts_beyond_the_bytes_and_flaws_are_errors() {
        let bytes = encode(&[stroke(vec![Point::new(1.0, 2.0, 0.5)])], &[], &[]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut more = bytes.clone();
        more.push(0);
        assert!(decode(&more).is_err(), "a byte too many");
        // A million ops claimed in a few bytes: refused before any allocation.
        let claim = [FORMAT, 1, 1, b'a', 0xc0, 0x84, 0x3d];
        assert!(
            matches!(decode(&claim), Err(MessageError::Malformed(why)) if why.contains("count"))
        );
        assert!(decode(&[2]).is_err(), "another format");
        // A varint of eleven bytes.
        let mut long = vec![FORMAT];
        long.extend([0xff; 10]);
        long.push(1);
        assert!(decode(&long).is_err());
    }
}
