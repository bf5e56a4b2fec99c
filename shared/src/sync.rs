//! What two replicas say to each other over a data channel.
//!
//! When a channel opens, each side sends [`ChannelMessage::Hello`] with its version vector; each
//! answers with [`ChannelMessage::Ops`] batches holding what the other lacks (cut by
//! [`batches`](crate::document::batches) and paced by the channel's buffered amount). After that,
//! every op a user makes is broadcast as it happens, in the same `ops` message. Cursors travel on
//! a second, unordered and unreliable channel as [`ChannelMessage::Cursor`].
//!
//! Everything from a peer is untrusted: [`ChannelMessage::validate`] bounds it, and
//! [`accept_op`] decides whose ops a peer may hand us.

use crate::color::Color;
use crate::document::{Op, OpError, VersionVector};
use crate::protocol::PeerId;
use crate::signing::{Certificate, Proof};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Largest message accepted, in bytes (Chromium's data channels carry up to 256 KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Budget for one sync batch, by [`Op::estimated_size`]; well under [`MAX_MESSAGE_BYTES`].
pub const SYNC_BATCH_BYTES: usize = 48 * 1024;
/// Most ops in one message.
pub const MAX_OPS_PER_MESSAGE: usize = 4_096;
/// Label of the reliable, ordered channel that carries ops.
pub const DOC_CHANNEL: &str = "drawing";
/// Label of the unordered, unreliable channel that carries cursors.
pub const CURSOR_CHANNEL: &str = "cursors";
/// Cursor updates per second, at most.
pub const CURSOR_RATE_HZ: f64 = 30.0;

/// A message on a data channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelMessage {
    /// "This is what I have": sent once when the channel opens.
    Hello {
        /// The sender's version vector.
        have: VersionVector,
        /// The server's certificate of the sender's key: without it, the sender's ops are refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cert: Option<Certificate>,
        /// The sender takes syncs packed ([`crate::packed`]); absent (false) from clients that
        /// predate it, which are sent JSON.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        packed: bool,
    },
    /// Ops: a sync batch, or ops made just now, with their authors' signatures (see
    /// [`signing`](crate::signing)).
    Ops {
        /// The ops, each author's in seq order.
        ops: Vec<Op>,
        /// For each author, a signature of its chain up to its last op here (or none, for the
        /// sender's own ops not yet sealed).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        proofs: Vec<Proof>,
        /// Certificates of the authors whose ops are here.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        certs: Vec<Certificate>,
    },
    /// Where the sender's pointer is, in drawing coordinates; `None` when it left the canvas.
    Cursor {
        /// The position, or none.
        at: Option<(f32, f32)>,
        /// The sender's current colour.
        color: Color,
    },
    /// "Still here": sent every [`PING_INTERVAL_MS`](crate::link::PING_INTERVAL_MS) on the
    /// reliable channel, so a peer whose tab died is noticed without the server (see
    /// [`link`](crate::link)). Encoded as the JSON string [`PING_TEXT`].
    Ping,
}

/// [`ChannelMessage::Ping`] as it travels: the mesh answers for liveness by comparing texts,
/// without parsing.
pub const PING_TEXT: &str = "\"ping\"";

/// Why a message is dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    TooLarge(usize),
    /// Not one of the message shapes.
    Malformed(String),
    /// More than [`MAX_OPS_PER_MESSAGE`] ops, or more authors than a version vector may name.
    TooMany,
    /// An op failed validation.
    BadOp(OpError),
    /// A cursor position that is not a finite number within the canvas limits.
    BadCursor,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge(n) => {
                write!(f, "message of {n} bytes exceeds {MAX_MESSAGE_BYTES}")
            }
            MessageError::Malformed(why) => write!(f, "malformed message: {why}"),
            MessageError::TooMany => f.write_str("too many ops or authors in one message"),
            MessageError::BadOp(e) => write!(f, "bad op: {e}"),
            MessageError::BadCursor => f.write_str("cursor out of range"),
        }
    }
}

impl std::error::Error for MessageError {}

impl ChannelMessage {
    /// Checks the raw size before parsing, so a huge message costs nothing to refuse.
    pub fn check_size(len: usize) -> Result<(), MessageError> {
        if len > MAX_MESSAGE_BYTES {
            Err(MessageError::TooLarge(len))
        } else {
            Ok(())
        }
    }

    /// Checks every field is within bounds.
    pub fn validate(&self) -> Result<(), MessageError> {
        match self {
            ChannelMessage::Hello { have, .. } => {
                if have.0.len() > crate::document::MAX_AUTHORS {
                    return Err(MessageError::TooMany);
                }
            }
            ChannelMessage::Ops { ops, proofs, certs } => {
                if ops.len() > MAX_OPS_PER_MESSAGE
                    || proofs.len() > ops.len()
                    || certs.len() > ops.len()
                {
                    return Err(MessageError::TooMany);
                }
                for op in ops {
                    op.validate().map_err(MessageError::BadOp)?;
                }
            }
            ChannelMessage::Cursor { at, .. } => {
                if let Some((x, y)) = at
                    && !crate::geometry::Point::new(*x, *y, 0.5).is_valid()
                {
                    return Err(MessageError::BadCursor);
                }
            }
            ChannelMessage::Ping => {}
        }
        Ok(())
    }
}

/// Hellos a peer may send in a burst before it must wait ([`SyncBudget`]).
pub const SYNC_BURST: u32 = 3;
/// How often a peer earns one more hello, in milliseconds.
pub const SYNC_REFILL_MS: f64 = 10_000.0;

/// Per-sender budget of sync requests. Each hello makes this replica compute and send all the
/// sender lacks, so a peer repeating "I have nothing" could keep it busy for ever; an honest one
/// says hello once per connection. A token bucket per sender: [`SYNC_BURST`] at once, then one
/// per [`SYNC_REFILL_MS`].
#[derive(Clone, Debug, Default)]
pub struct SyncBudget {
    /// Tokens left and when they were last counted, per sender.
    buckets: std::collections::HashMap<PeerId, (f64, f64)>,
}

impl SyncBudget {
    /// May `sender`'s hello, arriving at `now_ms`, be answered? Spends a token if so.
    pub fn allow(&mut self, sender: &PeerId, now_ms: f64) -> bool {
        let burst = f64::from(SYNC_BURST);
        let (tokens, since) = self
            .buckets
            .entry(sender.clone())
            .or_insert((burst, now_ms));
        let earned = ((now_ms - *since).max(0.0) / SYNC_REFILL_MS).min(burst);
        *tokens = (*tokens + earned).min(burst);
        *since = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets senders that are gone (so the map stays as small as the room).
    pub fn retain(&mut self, present: impl Fn(&PeerId) -> bool) {
        self.buckets.retain(|id, _| present(id));
    }
}

/// A drawing this large or larger, arriving, gets a progress indicator (ops).
pub const ARRIVAL_SHOWN_FROM: u64 = 200;
/// An arrival that makes no progress for this long is let go: what is missing is not coming (a
/// peer that claimed more than it sends, or one that left).
pub const ARRIVAL_STALL_MS: f64 = 5_000.0;

/// How much of the drawing the peers said they have has arrived: the "receiving the drawing"
/// indicator. Each hello raises what is expected (per author, the most any peer said it has);
/// progress is what of that the document now holds. It ends when everything expected is here,
/// or when nothing more came for [`ARRIVAL_STALL_MS`], so a peer's inflated claim cannot keep
/// the indicator up.
#[derive(Clone, Debug, Default)]
pub struct Arrival {
    expected: VersionVector,
    /// Ops missing when this arrival began, raised by later hellos.
    total: u64,
    /// What was missing at the last reading, and when that last went down (or began).
    missing: u64,
    moved_at: f64,
}

/// Ops `ours` lacks of what `theirs` has.
pub fn lacking(theirs: &VersionVector, ours: &VersionVector) -> u64 {
    theirs
        .0
        .iter()
        .map(|(author, &n)| n.saturating_sub(ours.get(author)))
        .fold(0u64, u64::saturating_add)
}

impl Arrival {
    /// A peer said it has `theirs`; we have `ours`, at `now_ms`.
    pub fn expect(&mut self, theirs: &VersionVector, ours: &VersionVector, now_ms: f64) {
        for (author, &n) in &theirs.0 {
            let e = self.expected.0.entry(author.clone()).or_default();
            *e = (*e).max(n);
        }
        let missing = lacking(&self.expected, ours);
        if self.total == 0 {
            self.moved_at = now_ms;
        }
        // What arrived so far stays counted; what is newly expected adds to the total.
        let arrived = self.total.saturating_sub(self.missing);
        self.total = self.total.max(arrived.saturating_add(missing));
        if missing > self.missing {
            self.moved_at = now_ms;
        }
        self.missing = missing;
    }

    /// True when nothing is arriving: [`Arrival::progress`] would say `None` whatever we have.
    pub fn is_idle(&self) -> bool {
        self.total == 0
    }

    /// `(arrived, of)` while a drawing of [`ARRIVAL_SHOWN_FROM`] ops or more is arriving, given
    /// what we have now; `None` when nothing (or little) is, or when it stalled.
    pub fn progress(&mut self, ours: &VersionVector, now_ms: f64) -> Option<(u64, u64)> {
        if self.total == 0 {
            return None;
        }
        let missing = lacking(&self.expected, ours);
        if missing < self.missing {
            self.moved_at = now_ms;
        }
        self.missing = missing;
        if missing == 0 || now_ms - self.moved_at > ARRIVAL_STALL_MS {
            *self = Arrival::default();
            return None;
        }
        (self.total >= ARRIVAL_SHOWN_FROM).then(|| (self.total - missing, self.total))
    }
}

/// May an op by `author`, handed to us by `sender`, be integrated?
///
/// A peer's own ops: yes. Ops of mine: never (I have all of them; a "future" one would be a
/// forgery that collides with my next op). Ops of a third author: only when that author is not
/// in the room with us (`in_room`): a present author's ops reach us from the author itself, so
/// nobody can write in a present peer's name; the ops of peers who left (or of earlier sessions)
/// come from whoever has them, which is what lets a late joiner see the whole drawing.
pub fn accept_op(
    me: &PeerId,
    sender: &PeerId,
    author: &PeerId,
    in_room: impl Fn(&PeerId) -> bool,
) -> bool {
    if author == sender {
        author != me
    } else {
        author != me && !in_room(author)
    }
}

#[cfg(test)]
mod tests {
    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        VersionVector(
            pairs
                .iter()
                .map(|(a, n)| (PeerId((*a).into()), *n))
                .collect(),
        )
    }

    #[test]
    fn an_arrival_counts_up_to_what_the_peers_said_and_ends() {
        let mut a = Arrival::default();
        assert_eq!(a.progress(&vv(&[]), 0.0), None);
        assert!(a.is_idle());
        a.expect(&vv(&[("b", 300), ("c", 100)]), &vv(&[("c", 50)]), 0.0);
        assert_eq!(a.progress(&vv(&[("c", 50)]), 10.0), Some((0, 350)));
        assert_eq!(
            a.progress(&vv(&[("b", 100), ("c", 100)]), 20.0),
            Some((150, 350))
        );
        // Another peer has more of b: the total grows.
        a.expect(&vv(&[("b", 400)]), &vv(&[("b", 100), ("c", 100)]), 30.0);
        assert_eq!(
            a.progress(&vv(&[("b", 100), ("c", 100)]), 40.0),
            Some((150, 450))
        );
        assert_eq!(
            a.progress(&vv(&[("b", 400), ("c", 100)]), 50.0),
            None,
            "all here"
        );
        // And a new arrival starts from scratch.
        a.expect(&vv(&[("b", 401)]), &vv(&[("b", 400), ("c", 100)]), 60.0);
        assert_eq!(
            a.progress(&vv(&[("b", 400), ("c", 100)]), 70.0),
            None,
            "one op: no indicator"
        );
    }

    #[test]
    fn an_arrival_that_stops_coming_is_let_go() {
        let mut a = Arrival::default();
        // A peer claims a billion ops; a thousand come, then nothing.
        a.expect(&vv(&[("liar", 1_000_000_000)]), &vv(&[]), 0.0);
        assert_eq!(
            a.progress(&vv(&[("liar", 1_000)]), 1_000.0),
            Some((1_000, 1_000_000_000))
        );
        assert!(
            a.progress(&vv(&[("liar", 1_000)]), 1_000.0 + ARRIVAL_STALL_MS - 1.0)
                .is_some()
        );
        assert_eq!(
            a.progress(&vv(&[("liar", 1_000)]), 1_000.0 + ARRIVAL_STALL_MS + 1.0),
            None
        );
        assert_eq!(
            lacking(&vv(&[("x", u64::MAX), ("y", u64::MAX)]), &vv(&[])),
            u64::MAX
        );
    }

    use super::*;
    use crate::document::{OpKind, Shape};
    use crate::geometry::Point;
    use serde_json::json;

    fn id(s: &str) -> PeerId {
        PeerId(s.into())
    }

    #[test]
    fn hellos_are_budgeted_per_sender() {
        let mut budget = SyncBudget::default();
        let (spammer, honest) = (id("spam"), id("honest"));
        let answered = (0..100)
            .filter(|n| budget.allow(&spammer, f64::from(*n)))
            .count();
        assert_eq!(answered, SYNC_BURST as usize, "a burst, then nothing");
        assert!(budget.allow(&honest, 100.0), "others are not held up");
        assert!(!budget.allow(&spammer, 100.0 + SYNC_REFILL_MS / 2.0));
        assert!(
            budget.allow(&spammer, 100.0 + SYNC_REFILL_MS * 1.1),
            "one more per interval"
        );
        budget.retain(|p| *p == honest);
        assert!(
            budget.allow(&spammer, 100.0 + SYNC_REFILL_MS * 1.2),
            "a fresh start after leaving"
        );
    }

    #[test]
    fn messages_round_trip_with_their_golden_shapes() {
        let hello = ChannelMessage::Hello {
            have: VersionVector([(id("a"), 3)].into()),
            cert: None,
            packed: false,
        };
        assert_eq!(
            serde_json::to_value(&hello).unwrap(),
            json!({"hello": {"have": {"a": 3}}})
        );
        let packed = ChannelMessage::Hello {
            have: VersionVector::default(),
            cert: None,
            packed: true,
        };
        assert_eq!(
            serde_json::to_value(&packed).unwrap(),
            json!({"hello": {"have": {}, "packed": true}})
        );
        let cursor = ChannelMessage::Cursor {
            at: Some((1.5, 2.0)),
            color: Color::rgb(255, 0, 0),
        };
        assert_eq!(
            serde_json::to_value(&cursor).unwrap(),
            json!({"cursor": {"at": [1.5, 2.0], "color": "#ff0000"}})
        );
        let gone = ChannelMessage::Cursor {
            at: None,
            color: Color::rgb(0, 0, 0),
        };
        let ops = ChannelMessage::Ops {
            ops: vec![Op {
                author: id("a"),
                seq: 1,
                lamport: 1,
                op: OpKind::Finish { element: 1 },
            }],
            proofs: vec![],
            certs: vec![],
        };
        assert_eq!(
            serde_json::to_string(&ChannelMessage::Ping).unwrap(),
            PING_TEXT
        );
        for m in [hello, cursor, gone, ops, ChannelMessage::Ping] {
            let back: ChannelMessage =
                serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn validation_bounds_messages() {
        let bad_op = Op {
            author: id("a"),
            seq: 1,
            lamport: 1,
            op: OpKind::Add {
                shape: Shape::Stroke {
                    points: vec![Point::new(f32::NAN, 0.0, 0.5)],
                },
                color: Color::rgb(0, 0, 0),
                width: 2.0,
            },
        };
        assert!(matches!(
            ChannelMessage::Ops {
                ops: vec![bad_op],
                proofs: vec![],
                certs: vec![]
            }
            .validate(),
            Err(MessageError::BadOp(_))
        ));
        let many = Op {
            author: id("a"),
            seq: 2,
            lamport: 1,
            op: OpKind::Finish { element: 1 },
        };
        let too_many = ChannelMessage::Ops {
            ops: vec![many; MAX_OPS_PER_MESSAGE + 1],
            proofs: vec![],
            certs: vec![],
        };
        assert_eq!(too_many.validate(), Err(MessageError::TooMany));
        let far = ChannelMessage::Cursor {
            at: Some((1e9, 0.0)),
            color: Color::rgb(0, 0, 0),
        };
        assert_eq!(far.validate(), Err(MessageError::BadCursor));
        assert!(ChannelMessage::check_size(MAX_MESSAGE_BYTES + 1).is_err());
        assert!(serde_json::from_value::<ChannelMessage>(json!({"hello": {}})).is_err());
    }

    #[test]
    fn nobody_writes_in_a_present_peers_name_or_mine() {
        let (me, bob, carol, gone) = (id("me"), id("bob"), id("carol"), id("gone"));
        let in_room = |p: &PeerId| *p == bob || *p == carol;
        assert!(accept_op(&me, &bob, &bob, in_room), "bob's own ops");
        assert!(
            !accept_op(&me, &bob, &carol, in_room),
            "carol is here: her ops come from her"
        );
        assert!(
            accept_op(&me, &bob, &gone, in_room),
            "a departed author's ops come from anyone"
        );
        assert!(
            !accept_op(&me, &bob, &me, in_room),
            "nobody hands me ops in my name"
        );
    }
}
