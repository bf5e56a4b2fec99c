//! The in-process hub: rooms and streams of one server process, in memory.
//!
//! Concurrency: peers and rooms live in two sharded maps (`DashMap`), and each peer's set of rooms
//! sits behind its own std `Mutex`, so relaying (the hot path) touches only the two peers involved
//! and no lock is shared by the whole server. Std mutexes are right because no lock is ever held
//! across an `.await`. To stay deadlock-free the code keeps two rules: never hold two map guards at
//! once, and never take a map guard while holding a peer's mutex (nor two peer mutexes at once).
//!
//! Slow readers: see [`super`]; here a full queue closes the stream at once.

use super::{Delivery, HubError, HubStats, Joined, RoomLimits, lock, queue};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde_json::value::RawValue;
use shared::protocol::{AddPeer, Connected, PeerId, RelayEvent, Relayed, RemovePeer, User, event};
use shared::room::RoomId;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Room membership plus delivery to the streams of this process.
pub struct Local {
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
    tx: super::queue::Sender,
    rooms: Mutex<HashSet<RoomId>>,
}

impl Local {
    /// An in-process hub; each stream queues at most `queue` events.
    pub fn new(queue: usize) -> Local {
        Local {
            peers: DashMap::new(),
            rooms: DashMap::new(),
            next_stream: AtomicU64::new(1),
            queue: queue.max(1),
        }
    }

    /// Opens the user's stream. Its first event is `connected`, queued only after the user is
    /// registered, so a join sent the moment `connected` arrives finds the stream. A second
    /// connect by the same user (EventSource reconnecting) replaces the first: the old stream
    /// ends and the user keeps its rooms, so nobody sees it leave and come back.
    pub fn connect(&self, user: User) -> (super::queue::Receiver, u64) {
        let (tx, rx) = super::queue::bounded(self.queue);
        let stream = self.next_stream.fetch_add(1, Ordering::Relaxed);
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
        match self.peers.entry(id.clone()) {
            Entry::Occupied(mut old) => {
                let rooms = std::mem::take(&mut *lock(&old.get().rooms));
                *lock(&peer.rooms) = rooms;
                old.insert(peer);
            }
            Entry::Vacant(slot) => {
                slot.insert(peer);
            }
        }
        (rx, stream)
    }

    /// Puts the user in the room and introduces it: `add-peer` (offer: false) to every member and
    /// `add-peer` (offer: true) to the user for each member. Joining again sends nothing.
    pub fn join(&self, user: &User, room: &RoomId, limits: RoomLimits) -> Result<Joined, HubError> {
        let joiner = self.peer(&user.id).ok_or(HubError::NotConnected)?;
        {
            let mut rooms = lock(&joiner.rooms);
            if rooms.contains(room) {
                return Ok(Joined::Already);
            }
            if rooms.len() >= limits.rooms_per_peer {
                return Err(HubError::TooManyRooms(limits.rooms_per_peer));
            }
            rooms.insert(room.clone());
        }
        let members: Option<Vec<PeerId>> = {
            let mut set = self.rooms.entry(room.clone()).or_default();
            (set.len() < limits.peers_per_room).then(|| {
                let members = set.iter().filter(|id| **id != user.id).cloned().collect();
                set.insert(user.id.clone());
                members
            })
        };
        let Some(members) = members else {
            lock(&joiner.rooms).remove(room);
            return Err(HubError::RoomFull(limits.peers_per_room));
        };
        // The stream may have closed while we joined; its cleanup could have run before our
        // insert above, which would leave a ghost member. Check, and undo if so.
        if !self.is_current(&joiner) {
            self.remove_from_room(&user.id, room);
            return Err(HubError::NotConnected);
        }
        let mut introduced = 0;
        // The same words to every member: serialized once, shared.
        let to_members = Delivery::json(
            event::ADD_PEER,
            &AddPeer {
                peer: joiner.user.clone(),
                room_id: room.clone(),
                offer: false,
            },
        );
        for member in members.iter().filter_map(|id| self.peer(id)) {
            self.deliver(&member, to_members.clone());
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
    pub fn relay(
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
            streams: self.peers.len(),
            rooms: self.rooms.len(),
        }
    }

    fn peer(&self, id: &PeerId) -> Option<Arc<Peer>> {
        self.peers.get(id).map(|p| Arc::clone(&p))
    }

    fn is_current(&self, peer: &Arc<Peer>) -> bool {
        self.peer(&peer.user.id)
            .is_some_and(|p| Arc::ptr_eq(&p, peer))
    }

    /// Queues an event on a peer's stream; a full queue closes that stream (module docs).
    fn deliver(&self, peer: &Peer, delivery: Delivery) {
        if !queue(&peer.tx, delivery) {
            tracing::warn!(peer = %peer.user.id, "stream queue full: closing the slow stream");
            self.disconnect(&peer.user.id, peer.stream);
        }
    }

    /// The stream `stream` of user `id` closed: if it is still the user's current stream, the
    /// user leaves every room and the remaining members get `remove-peer`.
    pub fn disconnect(&self, id: &PeerId, stream: u64) {
        let Some((_, peer)) = self.peers.remove_if(id, |_, p| p.stream == stream) else {
            return;
        };
        super::shrink_when_sparse(&self.peers);
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
        let remaining: Vec<PeerId> = match self.rooms.get_mut(room) {
            Some(mut set) => {
                set.remove(id);
                set.iter().cloned().collect()
            }
            None => Vec::new(),
        };
        if remaining.is_empty() {
            self.rooms.remove_if(room, |_, set| set.is_empty());
        }
        remaining
    }
}
