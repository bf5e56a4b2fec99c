//! The hub: who is in which room, and delivery of events to each user's SSE stream.
//!
//! Routes only ever talk to [`Hub`]; it runs in-process today, and a Redis-backed hub (many
//! server processes sharing rooms) will plug in behind the same methods, which are `async` for
//! that reason.
//!
//! Concurrency: peers and rooms live in two sharded maps (`DashMap`), and each peer's set of rooms
//! sits behind its own std `Mutex`, so relaying (the hot path) touches only the two peers involved
//! and no lock is shared by the whole server. Std mutexes are right because no lock is ever held
//! across an `.await`. To stay deadlock-free the code keeps two rules: never hold two map guards at
//! once, and never take a map guard while holding a peer's mutex (nor two peer mutexes at once).
//!
//! Slow readers: each stream has a bounded queue. When it is full, that reader is too slow to keep
//! up; the hub closes its stream (it leaves its rooms, the others get `remove-peer`) rather than
//! buffer without bound or stall everybody else. Its EventSource reconnects by itself, gets
//! `connected`, joins again and is introduced afresh.

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde::Serialize;
use serde_json::value::RawValue;
use shared::protocol::{AddPeer, Connected, PeerId, RelayEvent, Relayed, RemovePeer, User, event};
use shared::room::RoomId;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

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
    fn json(event: &'static str, payload: &impl Serialize) -> Delivery {
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

/// Why the hub refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubError {
    /// The user has no open stream.
    NotConnected,
    /// Sender and receiver share no room (or the receiver is not connected).
    NotInSharedRoom,
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
    inner: Arc<Local>,
}

struct Local {
    peers: DashMap<PeerId, Arc<Peer>>,
    rooms: DashMap<RoomId, HashSet<PeerId>>,
    next_stream: AtomicU64,
    queue: usize,
}

/// A connected user: its open stream and the rooms it is in.
struct Peer {
    user: User,
    /// Which stream this is: a reconnect makes a new one, and only the current stream's close
    /// makes the user leave.
    stream: u64,
    tx: mpsc::Sender<Delivery>,
    rooms: Mutex<HashSet<RoomId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a plain set behind; keep serving.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// An in-process hub; each stream queues at most `queue` events.
    pub fn local(queue: usize) -> Hub {
        Hub {
            inner: Arc::new(Local {
                peers: DashMap::new(),
                rooms: DashMap::new(),
                next_stream: AtomicU64::new(1),
                queue: queue.max(1),
            }),
        }
    }

    /// Opens the user's stream. Its first event is `connected`, queued only after the user is
    /// registered, so a join sent the moment `connected` arrives finds the stream. A second
    /// connect by the same user (EventSource reconnecting) replaces the first: the old stream
    /// ends and the user keeps its rooms, so nobody sees it leave and come back.
    pub async fn connect(&self, user: User) -> Subscription {
        let (tx, rx) = mpsc::channel(self.inner.queue);
        let stream = self.inner.next_stream.fetch_add(1, Ordering::Relaxed);
        let connected = Delivery::json(event::CONNECTED, &Connected { user: user.clone() });
        // The queue is new and holds at least one event.
        let _ = tx.try_send(connected);
        let id = user.id.clone();
        let peer = Arc::new(Peer {
            user,
            stream,
            tx,
            rooms: Mutex::new(HashSet::new()),
        });
        match self.inner.peers.entry(id.clone()) {
            Entry::Occupied(mut old) => {
                let rooms = std::mem::take(&mut *lock(&old.get().rooms));
                *lock(&peer.rooms) = rooms;
                old.insert(peer);
            }
            Entry::Vacant(slot) => {
                slot.insert(peer);
            }
        }
        Subscription {
            rx,
            _guard: StreamGuard {
                hub: self.clone(),
                peer: id,
                stream,
            },
        }
    }

    /// Puts the user in the room and introduces it: `add-peer` (offer: false) to every member and
    /// `add-peer` (offer: true) to the user for each member. Joining again sends nothing.
    pub async fn join(&self, user: &User, room: &RoomId) -> Result<Joined, HubError> {
        let joiner = self.peer(&user.id).ok_or(HubError::NotConnected)?;
        if !lock(&joiner.rooms).insert(room.clone()) {
            return Ok(Joined::Already);
        }
        let members: Vec<PeerId> = {
            let mut set = self.inner.rooms.entry(room.clone()).or_default();
            let members = set.iter().filter(|id| **id != user.id).cloned().collect();
            set.insert(user.id.clone());
            members
        };
        // The stream may have closed while we joined; its cleanup could have run before our
        // insert above, which would leave a ghost member. Check, and undo if so.
        if !self.is_current(&joiner) {
            self.remove_from_room(&user.id, room);
            return Err(HubError::NotConnected);
        }
        let mut introduced = 0;
        for member in members.iter().filter_map(|id| self.peer(id)) {
            let to_member = AddPeer {
                peer: joiner.user.clone(),
                room_id: room.clone(),
                offer: false,
            };
            self.deliver(&member, Delivery::json(event::ADD_PEER, &to_member));
            let to_joiner = AddPeer {
                peer: member.user.clone(),
                room_id: room.clone(),
                offer: true,
            };
            self.deliver(&joiner, Delivery::json(event::ADD_PEER, &to_joiner));
            introduced += 1;
        }
        Ok(Joined::New {
            members: introduced,
        })
    }

    /// Delivers `body` to `to` as `event`, stamped with the sender, if the two share a room.
    pub async fn relay(
        &self,
        from: &User,
        to: &PeerId,
        event: RelayEvent,
        body: &RawValue,
    ) -> Result<(), HubError> {
        let sender = self.peer(&from.id).ok_or(HubError::NotInSharedRoom)?;
        let receiver = self.peer(to).ok_or(HubError::NotInSharedRoom)?;
        // One peer mutex at a time (see the module docs): copy the sender's few rooms out first.
        let sender_rooms: Vec<RoomId> = lock(&sender.rooms).iter().cloned().collect();
        let shared = {
            let receiver_rooms = lock(&receiver.rooms);
            sender_rooms.iter().any(|r| receiver_rooms.contains(r))
        };
        if !shared {
            return Err(HubError::NotInSharedRoom);
        }
        let relayed = Relayed {
            peer: sender.user.clone(),
            data: body,
        };
        self.deliver(&receiver, Delivery::json(event.name(), &relayed));
        Ok(())
    }

    /// Current counts.
    pub fn stats(&self) -> HubStats {
        HubStats {
            streams: self.inner.peers.len(),
            rooms: self.inner.rooms.len(),
        }
    }

    fn peer(&self, id: &PeerId) -> Option<Arc<Peer>> {
        self.inner.peers.get(id).map(|p| Arc::clone(&p))
    }

    fn is_current(&self, peer: &Arc<Peer>) -> bool {
        self.peer(&peer.user.id)
            .is_some_and(|p| Arc::ptr_eq(&p, peer))
    }

    /// Queues an event on a peer's stream; a full queue closes that stream (module docs).
    fn deliver(&self, peer: &Peer, delivery: Delivery) {
        match peer.tx.try_send(delivery) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(peer = %peer.user.id, "stream queue full: closing the slow stream");
                self.disconnect(&peer.user.id, peer.stream);
            }
            // The stream is closing; its guard is about to clean up.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// The stream `stream` of user `id` closed: if it is still the user's current stream, the
    /// user leaves every room and the remaining members get `remove-peer`.
    fn disconnect(&self, id: &PeerId, stream: u64) {
        let Some((_, peer)) = self.inner.peers.remove_if(id, |_, p| p.stream == stream) else {
            return;
        };
        let rooms = std::mem::take(&mut *lock(&peer.rooms));
        for room in rooms {
            let remaining = self.remove_from_room(id, &room);
            if remaining.is_empty() {
                continue;
            }
            let bye = Delivery::json(
                event::REMOVE_PEER,
                &RemovePeer {
                    peer: peer.user.clone(),
                    room_id: room,
                },
            );
            for member in remaining.iter().filter_map(|m| self.peer(m)) {
                self.deliver(&member, bye.clone());
            }
        }
    }

    /// Takes `id` out of the room's member set, drops the room when empty, returns who is left.
    fn remove_from_room(&self, id: &PeerId, room: &RoomId) -> Vec<PeerId> {
        let remaining: Vec<PeerId> = match self.inner.rooms.get_mut(room) {
            Some(mut set) => {
                set.remove(id);
                set.iter().cloned().collect()
            }
            None => Vec::new(),
        };
        if remaining.is_empty() {
            self.inner.rooms.remove_if(room, |_, set| set.is_empty());
        }
        remaining
    }
}

/// A user's open stream of events. Dropping it (the HTTP response ends) runs the user's leave.
pub struct Subscription {
    rx: mpsc::Receiver<Delivery>,
    _guard: StreamGuard,
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
        self.hub.disconnect(&self.peer, self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn user(name: &str) -> User {
        User {
            id: PeerId(format!("id-{name}")),
            username: name.into(),
        }
    }

    fn room(name: &str) -> RoomId {
        RoomId::parse(name).unwrap()
    }

    async fn next(sub: &mut Subscription) -> (&'static str, serde_json::Value) {
        let d = sub.next().await.expect("stream open");
        (d.event, serde_json::from_str(&d.data).unwrap())
    }

    fn pending(sub: &mut Subscription) -> usize {
        sub.rx.len()
    }

    #[tokio::test]
    async fn join_introduces_both_ways_and_rejoin_is_silent() {
        let hub = Hub::local(16);
        let (a, b) = (user("a"), user("b"));
        let mut sa = hub.connect(a.clone()).await;
        let mut sb = hub.connect(b.clone()).await;
        assert_eq!(next(&mut sa).await.0, "connected");
        assert_eq!(next(&mut sb).await.0, "connected");
        assert_eq!(
            hub.join(&a, &room("r")).await,
            Ok(Joined::New { members: 0 })
        );
        assert_eq!(
            hub.join(&b, &room("r")).await,
            Ok(Joined::New { members: 1 })
        );
        let (ev, data) = next(&mut sa).await;
        assert_eq!(
            (ev, data["offer"].as_bool(), data["peer"]["id"].as_str()),
            ("add-peer", Some(false), Some("id-b"))
        );
        let (ev, data) = next(&mut sb).await;
        assert_eq!(
            (ev, data["offer"].as_bool(), data["peer"]["id"].as_str()),
            ("add-peer", Some(true), Some("id-a"))
        );
        assert_eq!(hub.join(&b, &room("r")).await, Ok(Joined::Already));
        assert_eq!((pending(&mut sa), pending(&mut sb)), (0, 0));
    }

    #[tokio::test]
    async fn relay_needs_a_shared_room() {
        let hub = Hub::local(16);
        let (a, b, c) = (user("a"), user("b"), user("c"));
        let _sa = hub.connect(a.clone()).await;
        let mut sb = hub.connect(b.clone()).await;
        let _sc = hub.connect(c.clone()).await;
        hub.join(&a, &room("r")).await.unwrap();
        hub.join(&b, &room("r")).await.unwrap();
        hub.join(&c, &room("other")).await.unwrap();
        let body = RawValue::from_string(r#"{"candidate":""}"#.into()).unwrap();
        assert_eq!(
            hub.relay(&c, &b.id, RelayEvent::IceCandidate, &body).await,
            Err(HubError::NotInSharedRoom)
        );
        assert_eq!(
            hub.relay(
                &a,
                &PeerId("nobody".into()),
                RelayEvent::IceCandidate,
                &body
            )
            .await,
            Err(HubError::NotInSharedRoom)
        );
        hub.relay(&a, &b.id, RelayEvent::IceCandidate, &body)
            .await
            .unwrap();
        next(&mut sb).await; // connected
        let (ev, data) = next(&mut sb).await;
        assert_eq!(ev, "add-peer");
        assert_eq!(data["peer"]["id"], "id-a");
        let (ev, data) = next(&mut sb).await;
        assert_eq!(ev, "ice-candidate");
        assert_eq!(
            data,
            serde_json::json!({"peer": {"id": "id-a", "username": "a"}, "data": {"candidate": ""}})
        );
    }

    #[tokio::test]
    async fn closing_a_stream_leaves_rooms_and_drops_empty_ones() {
        let hub = Hub::local(16);
        let (a, b) = (user("a"), user("b"));
        let mut sa = hub.connect(a.clone()).await;
        let sb = hub.connect(b.clone()).await;
        hub.join(&a, &room("r")).await.unwrap();
        hub.join(&b, &room("r")).await.unwrap();
        drop(sb);
        next(&mut sa).await; // connected
        next(&mut sa).await; // add-peer b
        let (ev, data) = next(&mut sa).await;
        assert_eq!(
            (ev, data["peer"]["id"].as_str()),
            ("remove-peer", Some("id-b"))
        );
        assert_eq!(
            hub.stats(),
            HubStats {
                streams: 1,
                rooms: 1
            }
        );
        drop(sa);
        assert_eq!(
            hub.stats(),
            HubStats {
                streams: 0,
                rooms: 0
            }
        );
    }

    #[tokio::test]
    async fn a_reconnect_replaces_the_stream_without_a_ghost() {
        let hub = Hub::local(16);
        let (a, b) = (user("a"), user("b"));
        let first = hub.connect(a.clone()).await;
        let mut sb = hub.connect(b.clone()).await;
        hub.join(&a, &room("r")).await.unwrap();
        hub.join(&b, &room("r")).await.unwrap();
        let mut second = hub.connect(a.clone()).await;
        drop(first); // the old stream's close must not make a leave
        assert_eq!(hub.stats().streams, 2);
        assert_eq!(hub.join(&a, &room("r")).await, Ok(Joined::Already));
        next(&mut sb).await; // connected
        next(&mut sb).await; // add-peer a
        assert_eq!(
            pending(&mut sb),
            0,
            "b saw no remove-peer and no duplicate add-peer"
        );
        assert_eq!(next(&mut second).await.0, "connected");
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_the_slow_stream() {
        let hub = Hub::local(4);
        let (slow, fast) = (user("slow"), user("fast"));
        let mut s_slow = hub.connect(slow.clone()).await;
        let mut s_fast = hub.connect(fast.clone()).await;
        hub.join(&slow, &room("r")).await.unwrap();
        hub.join(&fast, &room("r")).await.unwrap();
        let body = RawValue::from_string("{\"candidate\":\"\"}".into()).unwrap();
        // slow has connected + add-peer queued; two more fill it, the third overflows.
        for _ in 0..3 {
            let _ = hub
                .relay(&fast, &slow.id, RelayEvent::IceCandidate, &body)
                .await;
        }
        assert_eq!(hub.stats().streams, 1);
        // The slow stream drains what it had, then ends.
        let mut drained = 0;
        while s_slow.next().await.is_some() {
            drained += 1;
        }
        assert_eq!(drained, 4);
        // The fast one was told, and keeps working.
        next(&mut s_fast).await; // connected
        next(&mut s_fast).await; // add-peer slow
        assert_eq!(next(&mut s_fast).await.0, "remove-peer");
    }
}
