//! The hub: who is in which room, and delivery of events to each user's SSE stream.
//!
//! Routes only ever talk to [`Hub`]. Behind it runs one backend:
//! - [`local`]: one process, everything in memory (the default);
//! - [`redis`]: any number of processes sharing rooms through Redis.
//!
//! The seam is an enum over the backends, not a trait object: the set of backends is closed and
//! known here, `async fn`s in an enum need no boxing (a trait with `async fn` is not object-safe
//! without boxing every future), and a `match` per method keeps each call a plain static call.
//! What every backend must do is written once, as the conformance suite in [`conformance`], which
//! runs against each of them.
//!
//! Slow readers: each stream has a bounded queue. When it is full, that reader is too slow to keep
//! up; the hub closes its stream (it leaves its rooms, the others get `remove-peer`) rather than
//! buffer without bound or stall everybody else. Its EventSource reconnects by itself, gets
//! `connected`, joins again and is introduced afresh.

pub mod conformance;
pub mod local;
pub mod queue;
pub mod redis;

use serde::Serialize;
use serde_json::value::RawValue;
use shared::protocol::{PeerId, RelayEvent, User};
use shared::room::RoomId;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

/// Locks a std mutex (never held across an `.await` in the hub), shrugging off poisoning: a
/// panic elsewhere while holding it leaves a plain set or map behind; keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One event for one stream: its SSE name and its JSON payload, serialized once (a `remove-peer`
/// to ten members shares one string).
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The SSE `event:` name.
    pub event: &'static str,
    /// The SSE `data:` JSON.
    pub data: Arc<str>,
}

impl Delivery {
    pub(crate) fn json(event: &'static str, payload: &impl Serialize) -> Delivery {
        // Our payload types serialize infallibly (strings, bools and already-valid raw JSON).
        let data = serde_json::to_string(payload).unwrap_or_else(|e| {
            tracing::error!(error = %e, event, "event did not serialize");
            "null".to_owned()
        });
        Delivery {
            event,
            data: data.into(),
        }
    }
}

/// Shrinks `map` once it holds under a quarter of what it has room for. A crowd that came and
/// went leaves a table sized for it, allocated while it was here (near the top of the heap, where
/// it keeps the allocator from giving back the memory below it); giving it back lets the process
/// shrink again. Each shrink at least halves the table, so the work is amortised.
fn shrink_when_sparse<K: Eq + std::hash::Hash, V>(map: &dashmap::DashMap<K, V>) {
    let capacity = map.capacity();
    if capacity > 1024 && map.len() * 4 < capacity {
        map.shrink_to_fit();
    }
}

/// Queues `delivery` for a stream. False when its queue is full: that reader is too slow (see
/// the module docs) and the caller closes its stream. A closed queue is a stream already
/// ending, whose guard cleans up.
fn queue(tx: &queue::Sender, delivery: Delivery) -> bool {
    tx.try_send(delivery) != Err(queue::Refused::Full)
}

/// Why the hub refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubError {
    /// The user has no open stream.
    NotConnected,
    /// Sender and receiver share no room (or the receiver is not connected).
    NotInSharedRoom,
    /// The shared backend (Redis) cannot be reached; the request may be retried.
    Unavailable(String),
    /// The room has [`RoomLimits::peers_per_room`] members already.
    RoomFull(usize),
    /// The user is in [`RoomLimits::rooms_per_peer`] rooms already.
    TooManyRooms(usize),
}

/// How big a room and how many rooms: a full mesh of more than a handful of browsers is
/// unusable (each draws to every other), and every relay looks at the sender's rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// Most members of one room.
    pub peers_per_room: usize,
    /// Most rooms one user is in.
    pub rooms_per_peer: usize,
}

impl Default for RoomLimits {
    fn default() -> RoomLimits {
        RoomLimits {
            peers_per_room: 16,
            rooms_per_peer: 8,
        }
    }
}

/// What a join did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The user joined; this many members were introduced to it.
    New {
        /// Members already in the room.
        members: usize,
    },
    /// The user was already in the room: nothing was sent.
    Already,
}

/// Counts for tests, logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Open streams.
    pub streams: usize,
    /// Rooms with at least one member.
    pub rooms: usize,
}

/// Room membership plus delivery to users' streams. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    backend: Backend,
    limits: RoomLimits,
}

#[derive(Clone)]
enum Backend {
    Local(Arc<local::Local>),
    Redis(Arc<redis::RedisHub>),
}

impl Hub {
    /// An in-process hub; each stream queues at most `queue` events.
    pub fn local(queue: usize) -> Hub {
        Hub {
            backend: Backend::Local(Arc::new(local::Local::new(queue))),
            limits: RoomLimits::default(),
        }
    }

    /// A hub shared through the Redis at `url` with every other process pointed at it; with
    /// `cluster`, `url` lists Redis Cluster nodes (comma-separated). Its Redis errors and round
    /// trips are counted in `metrics`.
    pub async fn redis(
        url: &str,
        cluster: bool,
        queue: usize,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Hub, String> {
        Ok(Hub {
            backend: Backend::Redis(redis::RedisHub::connect(url, cluster, queue, metrics).await?),
            limits: RoomLimits::default(),
        })
    }

    /// The same hub with other room limits (every process sharing a Redis should have the same).
    pub fn with_room_limits(mut self, limits: RoomLimits) -> Hub {
        self.limits = limits;
        self
    }

    /// Which backend runs, for logs and health.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Local(_) => "in-process",
            Backend::Redis(_) => "redis",
        }
    }

    /// Whether the hub can serve requests now; why not if it cannot.
    pub fn health(&self) -> Result<(), String> {
        match &self.backend {
            Backend::Local(_) => Ok(()),
            Backend::Redis(hub) if hub.is_available() => Ok(()),
            Backend::Redis(_) => Err("Redis is unreachable".into()),
        }
    }

    /// Opens the user's stream. Its first event is `connected`, queued only after the user is
    /// registered, so a join sent the moment `connected` arrives finds the stream. A second
    /// connect by the same user (EventSource reconnecting) replaces the first: the old stream
    /// ends and the user keeps its rooms, so nobody sees it leave and come back.
    pub async fn connect(&self, user: User) -> Result<Subscription, HubError> {
        let peer = user.id.clone();
        let (rx, stream) = match &self.backend {
            Backend::Local(local) => local.connect(user),
            Backend::Redis(hub) => hub.connect_user(user).await?,
        };
        Ok(Subscription {
            rx,
            _guard: StreamGuard {
                hub: self.clone(),
                peer,
                stream,
            },
        })
    }

    /// Puts the user in the room and introduces it: `add-peer` (offer: false) to every member and
    /// `add-peer` (offer: true) to the user for each member. Joining again sends nothing. A full
    /// room, or a user in too many rooms, is refused ([`RoomLimits`]).
    pub async fn join(&self, user: &User, room: &RoomId) -> Result<Joined, HubError> {
        match &self.backend {
            Backend::Local(local) => local.join(user, room, self.limits),
            Backend::Redis(hub) => hub.join(user, room, self.limits).await,
        }
    }

    /// Delivers `body` to `to` as `event`, stamped with the sender, if the two share a room.
    pub async fn relay(
        &self,
        from: &User,
        to: &PeerId,
        event: RelayEvent,
        body: &RawValue,
    ) -> Result<(), HubError> {
        match &self.backend {
            Backend::Local(local) => local.relay(from, to, event, body),
            Backend::Redis(hub) => hub.relay(from, to, event, body).await,
        }
    }

    /// Current counts, as this process sees them.
    pub fn stats(&self) -> HubStats {
        match &self.backend {
            Backend::Local(local) => local.stats(),
            Backend::Redis(hub) => hub.stats(),
        }
    }

    /// A stream ended (its response was dropped). Runs from `Drop`, so it must not block nor do
    /// I/O itself: a backend that needs I/O hands the leave to a task.
    fn stream_closed(&self, peer: &PeerId, stream: u64) {
        match &self.backend {
            Backend::Local(local) => local.disconnect(peer, stream),
            Backend::Redis(hub) => hub.stream_closed(peer, stream),
        }
    }
}

/// A user's open stream of events. Dropping it (the HTTP response ends) runs the user's leave.
pub struct Subscription {
    rx: queue::Receiver,
    _guard: StreamGuard,
}

impl Subscription {
    /// The next event if one is already queued (`Ready(None)`: the stream has ended), without
    /// arranging a wake-up: to write a burst together.
    pub fn try_next(&mut self) -> Poll<Option<Delivery>> {
        self.rx.try_recv()
    }
}

impl futures_util::Stream for Subscription {
    type Item = Delivery;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

struct StreamGuard {
    hub: Hub,
    peer: PeerId,
    stream: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.hub.stream_closed(&self.peer, self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The behaviour every backend owes, against the in-process one (one process: `a` and `b`
    // are the same hub).
    crate::hub_conformance_suite!(|queue| async move {
        let hub = Hub::local(queue);
        (hub.clone(), hub)
    });
}
