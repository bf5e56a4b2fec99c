//! The mesh: one `RTCPeerConnection` per peer in the room, each with an ordered, reliable data
//! channel labelled `drawing` (ops) and an unordered, unreliable one labelled `cursors`.
//!
//! The server decides who offers (`add-peer` with `offer: true` goes to the joiner): the offerer
//! creates the channels and sends the offer, the other side answers and receives the channels
//! (told apart by label).
//!
//! Sending is paced per peer: a sync (a late joiner's whole drawing) is queued in the peer's
//! outbox and fed to the channel while its `bufferedAmount` is below [`HIGH_WATER_BYTES`],
//! resuming on `bufferedamountlow`; live messages to a peer with a backlog queue behind it instead
//! of being dropped (a lost op would leave a gap that stalls its author's later ops). So a channel
//! never gets near the 16 MiB at which Chromium closes it. ICE
//! candidates trickle through the server's relay; those that arrive before the remote description
//! is set are queued and added right after it, because `addIceCandidate` rejects them before
//! (the tutorial lost them, and with them sometimes the connection).
//!
//! Nothing hangs for good: each peer has a [`Link`] (`shared::link`, the policy, tested natively)
//! fed with what the browser reports, and the mesh's clock ticks every [`TICK_MS`] to carry out
//! what the links ask: pings, ICE restarts, fresh negotiations (a new connection, a new offer),
//! and dropping peers gone silent. The offerer drives every retry; the answerer takes an offer
//! from a peer it does not know, or one with a new DTLS fingerprint, as a fresh connection (the
//! other side started over), and one with the same fingerprint as an ICE restart. The people
//! list hears each peer's [`Status`]: connecting, open directly or through a TURN relay (read
//! from the connection's stats), reconnecting, or unreachable and why.
//!
//! Each peer owns the JS callbacks registered on its connection and channel. Dropping the
//! peer unsets them and closes the connection, so a peer that leaves takes its callbacks with it.
//! Callbacks reach the mesh through a `Weak` and check the peer's generation, so a callback of a
//! connection that has since been replaced does nothing.
//!
//! State lives in `RefCell`s on one thread. No borrow is held across an `.await` or while calling
//! out (relay, data and presence hooks), and removals a peer's own callback asks for run later
//! (`spawn_local`), so no callback ever frees itself while running.

use crate::wire;
use js_sys::Reflect;
use shared::link::{Action, Link, Route, Status, Transport, sdp_fingerprint};
use shared::protocol::{ClientConfig, IceCandidate, RelayEvent, SdpType, SessionDescription};
use shared::sync::{CURSOR_CHANNEL, DOC_CHANNEL, PING_TEXT};
use shared::{PeerId, User};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
    RtcDataChannelType, RtcIceCandidateInit, RtcIceServer, RtcIceTransportPolicy, RtcOfferOptions,
    RtcPeerConnection, RtcPeerConnectionIceEvent, RtcPeerConnectionState, RtcSdpType,
    RtcSessionDescriptionInit,
};

/// The label of the data channel ops travel on.
pub const CHANNEL_LABEL: &str = DOC_CHANNEL;
/// Candidates kept per peer while its remote description is pending; a handful is normal, and a
/// peer cannot make us hoard more.
pub const MAX_QUEUED_CANDIDATES: usize = 64;
/// A channel is fed from its outbox while it has less than this waiting to be sent.
pub const HIGH_WATER_BYTES: u32 = 1024 * 1024;
/// `bufferedAmountLowThreshold`: the outbox resumes once the channel drains below this.
pub const LOW_WATER_BYTES: u32 = 256 * 1024;
/// Live messages queued for one peer, at most. A peer that far behind has lost the thread: it is
/// dropped (it reconnects, and syncs afresh, when the server introduces us again).
pub const MAX_QUEUED_MESSAGES: usize = 20_000;
/// A cursor update is skipped for a peer whose cursor channel has this much waiting.
pub const MAX_CURSOR_BUFFERED_BYTES: u32 = 64 * 1024;
/// How often the mesh's clock looks at every link (pings, timeouts, restarts).
pub const TICK_MS: i32 = 500;

/// One message of a sync.
pub enum Payload {
    /// JSON text.
    Text(String),
    /// A packed `ops` message ([`shared::packed`]), for a peer that said it takes them.
    Packed(Vec<u8>),
}

/// Messages produced on demand, one per send, so a large sync is encoded as it goes out rather
/// than all at once.
pub type Outgoing = Box<dyn Iterator<Item = Payload>>;

/// What one peer asks the server to pass on to another.
#[derive(Clone, Debug, PartialEq)]
pub enum Signal {
    /// An offer or an answer.
    SessionDescription(SessionDescription),
    /// A trickled ICE candidate.
    IceCandidate(IceCandidate),
}

impl Signal {
    /// The relay event that carries it.
    pub fn event(&self) -> RelayEvent {
        match self {
            Signal::SessionDescription(_) => RelayEvent::SessionDescription,
            Signal::IceCandidate(_) => RelayEvent::IceCandidate,
        }
    }

    /// Its relay body.
    pub fn to_json(&self) -> Result<String, String> {
        match self {
            Signal::SessionDescription(d) => wire::encode(d),
            Signal::IceCandidate(c) => wire::encode(c),
        }
    }
}

/// A peer as the presence list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSummary {
    /// Its id.
    pub id: PeerId,
    /// Its display name.
    pub username: String,
    /// True once its data channel is open (strokes flow both ways).
    pub open: bool,
    /// How it is connected, or why not.
    pub status: Status,
}

/// How connections are made: the server's ICE servers, and whether only relayed (TURN)
/// candidates may be used (`?ice=relay`, for testing TURN and for people who must not reveal
/// their addresses to peers).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IceSettings {
    /// From the server's `/config` (with this user's TURN credentials).
    pub config: ClientConfig,
    /// `iceTransportPolicy: "relay"`.
    pub relay_only: bool,
}

/// The peer connections of this page. Cheap to clone: clones share the same mesh.
#[derive(Clone)]
pub struct Mesh {
    inner: Rc<Inner>,
}

struct Inner {
    peers: RefCell<BTreeMap<PeerId, Peer>>,
    /// Replaced when the TURN credentials are renewed; new connections take the new one.
    rtc_config: RefCell<RtcConfiguration>,
    next_generation: Cell<u64>,
    relay: Box<RelayHook>,
    on_data: Box<DataHook>,
    on_presence: Box<PresenceHook>,
    on_open: RefCell<Option<Rc<OpenHook>>>,
}

type OpenHook = dyn Fn(&PeerId);
type RelayHook = dyn Fn(&PeerId, Signal);
type DataHook = dyn Fn(&PeerId, JsValue);
type PresenceHook = dyn Fn(&[PeerSummary]);

impl Mesh {
    /// A mesh with no peers yet.
    ///
    /// - `relay(peer, signal)` must get the signal to that peer (through the server).
    /// - `on_data(peer, data)` hears every message on a peer's channel, as the browser gave it.
    /// - `on_presence(peers)` hears the peer list whenever a peer comes, opens or goes.
    pub fn new(
        ice: &IceSettings,
        relay: impl Fn(&PeerId, Signal) + 'static,
        on_data: impl Fn(&PeerId, JsValue) + 'static,
        on_presence: impl Fn(&[PeerSummary]) + 'static,
    ) -> Mesh {
        let mesh = Mesh {
            inner: Rc::new(Inner {
                peers: RefCell::new(BTreeMap::new()),
                rtc_config: RefCell::new(rtc_configuration(ice)),
                next_generation: Cell::new(0),
                relay: Box::new(relay),
                on_data: Box::new(on_data),
                on_presence: Box::new(on_presence),
                on_open: RefCell::new(None),
            }),
        };
        start_clock(Rc::downgrade(&mesh.inner));
        mesh
    }

    /// New ICE settings (renewed TURN credentials): used by every connection made from now on,
    /// and given to the open ones for their next ICE restart.
    pub fn set_ice(&self, ice: &IceSettings) {
        let config = rtc_configuration(ice);
        for peer in self.inner.peers.borrow().values() {
            if let Err(err) = peer.pc.set_configuration_with_configuration(&config) {
                warn("could not update a connection's ICE servers", &err);
            }
        }
        *self.inner.rtc_config.borrow_mut() = config;
    }

    /// `on_open(peer)` hears when a peer's `drawing` channel opens (time to say hello).
    pub fn set_on_open(&self, on_open: impl Fn(&PeerId) + 'static) {
        *self.inner.on_open.borrow_mut() = Some(Rc::new(on_open));
    }

    /// Connects to `user`. With `offer` we create the channel and send the offer; otherwise we
    /// wait for theirs. A peer we already know is replaced: the server introduces two peers
    /// afresh only when one of them lost the other (a dropped stream, say), so the old
    /// connection is dead or about to be, and the other side is starting over too.
    pub fn add_peer(&self, user: User, offer: bool) {
        self.inner.connect(user, offer, Link::new(offer, now_ms()));
    }

    /// Closes the connection to `id` and forgets the peer.
    pub fn remove_peer(&self, id: &PeerId) {
        let removed = self.inner.peers.borrow_mut().remove(id);
        if removed.is_some() {
            drop(removed);
            self.inner.notify_presence();
        }
    }

    /// Closes every connection.
    pub fn clear(&self) {
        let removed = std::mem::take(&mut *self.inner.peers.borrow_mut());
        drop(removed);
        self.inner.notify_presence();
    }

    /// Takes a peer's offer or answer: sets it as the remote description, adds the candidates
    /// queued meanwhile, and answers an offer. An offer from a peer we do not know (we dropped
    /// it, or it started over) or with a new DTLS fingerprint (a new connection on its side)
    /// gets a fresh connection; the server only relays between members of one room, so the
    /// sender is in ours.
    pub fn session_description(&self, from: &User, description: SessionDescription) {
        let fresh = description.kind == SdpType::Offer
            && self
                .inner
                .needs_fresh_connection(&from.id, &description.sdp);
        if fresh {
            let link = self
                .inner
                .peers
                .borrow()
                .get(&from.id)
                .map(|p| p.link.clone());
            let now = now_ms();
            let link = match link {
                Some(mut link) => {
                    link.renegotiated(now);
                    link
                }
                None => Link::new(false, now),
            };
            self.inner.connect(from.clone(), false, link);
        }
        let Some((pc, generation)) = self.inner.connection_of(&from.id) else {
            crate::dom::warn(&format!(
                "session description from unknown peer {}",
                from.username
            ));
            return;
        };
        let mesh = Rc::downgrade(&self.inner);
        let id = from.id.clone();
        spawn_local(async move {
            let accepted = accept_description(&mesh, &id, generation, &pc, description).await;
            // Failures of a connection that has since been replaced are expected noise.
            if let Err(err) = accepted
                && is_current(&mesh, &id, generation)
            {
                warn("could not accept a session description", &err);
                // A connection made for an offer that turned out unusable is of no use: it
                // must not linger in the people list. (An established one is kept: a bad
                // message does not make a working connection worse.)
                if fresh && let Some(inner) = mesh.upgrade() {
                    inner.remove_if_current(&id, generation);
                }
            }
        });
    }

    /// Takes a peer's ICE candidate: added now if its remote description is set, queued if not.
    pub fn ice_candidate(&self, from: &User, candidate: IceCandidate) {
        let pc = {
            let mut peers = self.inner.peers.borrow_mut();
            let Some(peer) = peers.get_mut(&from.id) else {
                crate::dom::warn(&format!(
                    "ICE candidate from unknown peer {}",
                    from.username
                ));
                return;
            };
            if !peer.remote_description_set {
                if peer.queued_candidates.len() < MAX_QUEUED_CANDIDATES {
                    peer.queued_candidates.push(candidate);
                } else {
                    crate::dom::warn(&format!(
                        "too many early ICE candidates from {}",
                        from.username
                    ));
                }
                return;
            }
            peer.pc.clone()
        };
        spawn_local(async move {
            if let Err(err) = add_candidate(&pc, &candidate).await {
                warn("could not add an ICE candidate", &err);
            }
        });
    }

    /// Sends `text` on every open `drawing` channel (queued behind a backlog, see the module
    /// docs); returns how many peers it went to.
    pub fn broadcast(&self, text: &str) -> usize {
        let ids: Vec<PeerId> = self.inner.peers.borrow().keys().cloned().collect();
        ids.iter().filter(|id| self.send_to(id, text)).count()
    }

    /// Sends `text` to one peer's `drawing` channel, or queues it behind the peer's backlog.
    /// False when the peer has no open channel.
    pub fn send_to(&self, id: &PeerId, text: &str) -> bool {
        self.inner.send_live(id, text)
    }

    /// Sends a peer a stream of messages (a sync), paced by its channel's buffered amount. A
    /// newer sync to the same peer replaces one still going out (the newer answers a newer
    /// hello, so it holds everything needed).
    pub fn send_paced(&self, id: &PeerId, messages: Outgoing) {
        if let Some(peer) = self.inner.peers.borrow_mut().get_mut(id) {
            peer.outbox.sync = Some(messages);
        }
        self.inner.pump(id);
    }

    /// Sends `text` on every open `cursors` channel that is not backed up; a cursor that does
    /// not go out is simply superseded by the next.
    pub fn broadcast_cursor(&self, text: &str) {
        let peers = self.inner.peers.borrow();
        for peer in peers.values() {
            let Some(channel) = peer
                .cursor_channel
                .as_ref()
                .filter(|c| c.ready_state() == RtcDataChannelState::Open)
            else {
                continue;
            };
            if channel.buffered_amount() < MAX_CURSOR_BUFFERED_BYTES {
                let _ = channel.send_with_str(text);
            }
        }
    }

    /// True when `id` is a peer of this mesh (present in the room, as signaling told us).
    pub fn contains(&self, id: &PeerId) -> bool {
        self.inner.peers.borrow().contains_key(id)
    }

    /// Messages waiting in a peer's outbox (live ones, plus one if a sync is under way).
    pub fn queued(&self, id: &PeerId) -> usize {
        self.inner.peers.borrow().get(id).map_or(0, |p| {
            p.outbox.live.len() + usize::from(p.outbox.sync.is_some())
        })
    }

    /// The peers, sorted by name.
    pub fn peers(&self) -> Vec<PeerSummary> {
        self.inner.summaries()
    }
}

impl Inner {
    /// A new connection to `user` (replacing any earlier one), with `link` carried over. As the
    /// offerer we create the channels and send the offer; otherwise we wait for theirs. The
    /// server introduces two peers afresh only when one of them lost the other, and a fresh
    /// negotiation means the old connection failed, so replacing is always right.
    fn connect(self: &Rc<Self>, user: User, offer: bool, link: Link) {
        let generation = self.next_generation.get();
        self.next_generation.set(generation + 1);
        let pc = match self.new_connection() {
            Ok(pc) => pc,
            Err(err) => {
                warn(&format!("no connection to {}", user.username), &err);
                return;
            }
        };
        let mut peer = Peer::new(
            Rc::downgrade(self),
            user.clone(),
            generation,
            pc.clone(),
            link,
        );
        if offer {
            peer.attach_channel(pc.create_data_channel(CHANNEL_LABEL));
            // Cursors are stale the moment a newer one exists: never resend, never wait.
            let init = web_sys::RtcDataChannelInit::new();
            init.set_ordered(false);
            init.set_max_retransmits(0);
            peer.attach_cursor_channel(
                pc.create_data_channel_with_data_channel_dict(CURSOR_CHANNEL, &init),
            );
        }
        let replaced = self.peers.borrow_mut().insert(user.id.clone(), peer);
        drop(replaced);
        self.notify_presence();
        if offer {
            spawn_local(send_offer(
                Rc::downgrade(self),
                user.id,
                generation,
                pc,
                false,
            ));
        }
    }

    /// See [`Mesh::send_to`].
    fn send_live(&self, id: &PeerId, text: &str) -> bool {
        let overflow = {
            let mut peers = self.peers.borrow_mut();
            let Some(peer) = peers.get_mut(id) else {
                return false;
            };
            if peer.open_channel().is_none() {
                return false;
            }
            peer.outbox.live.push_back(text.to_owned());
            peer.outbox.live.len() > MAX_QUEUED_MESSAGES
        };
        if overflow {
            crate::dom::warn(&format!("peer {id} is not keeping up; disconnecting"));
            let removed = self.peers.borrow_mut().remove(id);
            drop(removed);
            self.notify_presence();
            return false;
        }
        self.pump(id);
        true
    }

    /// Does an offer from `id` with this SDP need a new connection on our side?
    fn needs_fresh_connection(&self, id: &PeerId, sdp: &str) -> bool {
        let peers = self.peers.borrow();
        let Some(peer) = peers.get(id) else {
            return true;
        };
        match &peer.remote_fingerprint {
            // Our connection has not heard from theirs yet: this offer is its first.
            None => false,
            Some(known) => sdp_fingerprint(sdp) != Some(known.as_str()),
        }
    }

    /// One beat of the mesh's clock: every link says what it needs, and it is done here, with
    /// no borrow held (sending and reconnecting call out).
    fn tick(self: &Rc<Self>) {
        let now = now_ms();
        let mut actions = Vec::new();
        let mut changed = false;
        for (id, peer) in self.peers.borrow_mut().iter_mut() {
            let before = peer.link.status();
            if let Some(action) = peer.link.tick(now) {
                actions.push((id.clone(), peer.generation, action));
            }
            changed |= peer.link.status() != before;
        }
        for (id, generation, action) in actions {
            match action {
                Action::Ping => {
                    self.send_live(&id, PING_TEXT);
                }
                Action::RestartIce => {
                    if let Some((pc, _)) = self.connection_of(&id) {
                        crate::dom::warn(&format!("connection to {id} lost; restarting ICE"));
                        spawn_local(send_offer(Rc::downgrade(self), id, generation, pc, true));
                    }
                }
                Action::Renegotiate => self.renegotiate(&id, generation, now),
                Action::Drop => {
                    crate::dom::warn(&format!("peer {id} went silent; dropping it"));
                    self.remove_if_current(&id, generation);
                }
            }
            // No `changed` here: a ping changes nothing a person sees, and renegotiating or
            // dropping tells the people list itself. Repainting the list on every ping would
            // rebuild it (and settle the board) every two seconds per peer.
        }
        if changed {
            self.notify_presence();
        }
    }

    /// Tears the connection to `id` down and offers a new one, keeping the link's history.
    fn renegotiate(self: &Rc<Self>, id: &PeerId, generation: u64, now: f64) {
        let found = self
            .peers
            .borrow()
            .get(id)
            .filter(|p| p.generation == generation)
            .map(|p| (p.user.clone(), p.link.clone()));
        let Some((user, mut link)) = found else {
            return;
        };
        crate::dom::warn(&format!(
            "no working connection to {} yet; negotiating afresh",
            user.username
        ));
        link.renegotiated(now);
        self.connect(user, true, link);
    }

    fn new_connection(&self) -> Result<RtcPeerConnection, JsValue> {
        RtcPeerConnection::new_with_configuration(&self.rtc_config.borrow()).or_else(|err| {
            // A malformed ICE server URL in the server's config must not cost us the mesh:
            // host candidates still connect peers on the same network.
            warn(
                "ICE configuration refused; using host candidates only",
                &err,
            );
            RtcPeerConnection::new()
        })
    }

    fn connection_of(&self, id: &PeerId) -> Option<(RtcPeerConnection, u64)> {
        self.peers
            .borrow()
            .get(id)
            .map(|peer| (peer.pc.clone(), peer.generation))
    }

    fn summaries(&self) -> Vec<PeerSummary> {
        // Only ever called once other borrows of the peers have ended (see the module docs). A
        // list made empty by a busy borrow would tell the app that everybody left.
        let peers = self.peers.borrow();
        let mut list: Vec<PeerSummary> = peers
            .values()
            .map(|peer| PeerSummary {
                id: peer.user.id.clone(),
                username: peer.user.username.clone(),
                open: peer.open_channel().is_some(),
                status: peer.link.status(),
            })
            .collect();
        list.sort_by(|a, b| (&a.username, &a.id).cmp(&(&b.username, &b.id)));
        list
    }

    fn notify_presence(&self) {
        let summaries = self.summaries();
        (self.on_presence)(&summaries);
    }

    /// Feeds a peer's channel from its outbox while the channel's buffer is below the high
    /// water mark; the channel's `bufferedamountlow` calls this again.
    fn pump(&self, id: &PeerId) {
        let mut peers = self.peers.borrow_mut();
        let Some(peer) = peers.get_mut(id) else {
            return;
        };
        let Some(channel) = peer.open_channel().cloned() else {
            return;
        };
        while channel.buffered_amount() < HIGH_WATER_BYTES {
            let next = match peer.outbox.live.pop_front() {
                Some(text) => Some(Payload::Text(text)),
                None => match peer.outbox.sync.as_mut().and_then(Iterator::next) {
                    Some(payload) => Some(payload),
                    None => {
                        peer.outbox.sync = None;
                        None
                    }
                },
            };
            let sent = match next {
                None => break,
                Some(Payload::Text(text)) => channel.send_with_str(&text),
                Some(Payload::Packed(bytes)) => channel.send_with_u8_array(&bytes),
            };
            if let Err(err) = sent {
                warn(&format!("could not send to {}", peer.user.username), &err);
                break;
            }
        }
    }

    /// Takes a channel the other side created (we are the answerer), by its label.
    fn adopt_channel(&self, id: &PeerId, generation: u64, channel: RtcDataChannel) {
        {
            let mut peers = self.peers.borrow_mut();
            match peers.get_mut(id) {
                Some(peer)
                    if peer.generation == generation
                        && peer.channel.is_none()
                        && channel.label() == CHANNEL_LABEL =>
                {
                    peer.attach_channel(channel);
                }
                Some(peer)
                    if peer.generation == generation
                        && peer.cursor_channel.is_none()
                        && channel.label() == CURSOR_CHANNEL =>
                {
                    peer.attach_cursor_channel(channel);
                }
                _ => {
                    crate::dom::warn("unexpected data channel closed");
                    channel.close();
                    return;
                }
            }
        }
        self.notify_presence();
    }

    /// Marks the remote description set and hands back the candidates queued until now; `None`
    /// if the peer is gone or was replaced.
    fn remote_description_set(
        &self,
        id: &PeerId,
        generation: u64,
        sdp: &str,
    ) -> Option<Vec<IceCandidate>> {
        let mut peers = self.peers.borrow_mut();
        let peer = peers.get_mut(id).filter(|p| p.generation == generation)?;
        peer.remote_description_set = true;
        peer.remote_fingerprint = sdp_fingerprint(sdp).map(str::to_owned);
        peer.link.described();
        Some(std::mem::take(&mut peer.queued_candidates))
    }

    /// Runs `f` on the link of the current connection to `id`, if `generation` is it.
    fn with_link(&self, id: &PeerId, generation: u64, f: impl FnOnce(&mut Link)) {
        if let Some(peer) = self
            .peers
            .borrow_mut()
            .get_mut(id)
            .filter(|p| p.generation == generation)
        {
            f(&mut peer.link);
        }
    }

    fn remove_if_current(&self, id: &PeerId, generation: u64) {
        let removed = {
            let mut peers = self.peers.borrow_mut();
            match peers.get(id) {
                Some(peer) if peer.generation == generation => peers.remove(id),
                _ => None,
            }
        };
        if removed.is_some() {
            drop(removed);
            self.notify_presence();
        }
    }
}

fn is_current(mesh: &Weak<Inner>, id: &PeerId, generation: u64) -> bool {
    mesh.upgrade()
        .and_then(|inner| {
            inner
                .peers
                .borrow()
                .get(id)
                .map(|p| p.generation == generation)
        })
        .unwrap_or(false)
}

/// Asks for a peer's removal once the current callback has returned (it may be that peer's own).
fn remove_later(mesh: Weak<Inner>, id: PeerId, generation: u64) {
    spawn_local(async move {
        if let Some(inner) = mesh.upgrade() {
            inner.remove_if_current(&id, generation);
        }
    });
}

/// What waits to go out to one peer: live messages first, then the sync under way.
#[derive(Default)]
struct Outbox {
    live: VecDeque<String>,
    sync: Option<Outgoing>,
}

/// One peer: its connection, its channels once there are some, and the callbacks on them.
struct Peer {
    user: User,
    /// Tells this connection apart from an earlier or later one to the same peer.
    generation: u64,
    pc: RtcPeerConnection,
    channel: Option<RtcDataChannel>,
    cursor_channel: Option<RtcDataChannel>,
    outbox: Outbox,
    remote_description_set: bool,
    /// The DTLS fingerprint of the other side's connection, once its description is set.
    remote_fingerprint: Option<String>,
    queued_candidates: Vec<IceCandidate>,
    /// Its health, and what to do about it (see `shared::link`).
    link: Link,
    // The connection's handlers: only held, so they live exactly as long as the peer.
    _on_ice_candidate: Closure<dyn FnMut(RtcPeerConnectionIceEvent)>,
    _on_data_channel: Closure<dyn FnMut(RtcDataChannelEvent)>,
    _on_state_change: Closure<dyn FnMut(web_sys::Event)>,
    // The channel's handlers, set on whichever channel the peer ends up with.
    on_open: Closure<dyn FnMut(web_sys::Event)>,
    on_message: Closure<dyn FnMut(MessageEvent)>,
    on_close: Closure<dyn FnMut(web_sys::Event)>,
    on_buffered_low: Closure<dyn FnMut(web_sys::Event)>,
}

impl Peer {
    fn new(
        mesh: Weak<Inner>,
        user: User,
        generation: u64,
        pc: RtcPeerConnection,
        link: Link,
    ) -> Peer {
        let id = user.id.clone();
        let on_ice_candidate = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |e: RtcPeerConnectionIceEvent| {
                // No candidate marks the end of gathering: nothing to pass on.
                let (Some(c), Some(inner)) = (e.candidate(), mesh.upgrade()) else {
                    return;
                };
                let username_fragment = Reflect::get(&c, &JsValue::from_str("usernameFragment"))
                    .ok()
                    .and_then(|v| v.as_string());
                let candidate = IceCandidate {
                    candidate: c.candidate(),
                    sdp_mid: c.sdp_mid(),
                    sdp_m_line_index: c.sdp_m_line_index(),
                    username_fragment,
                };
                (inner.relay)(&id, Signal::IceCandidate(candidate));
            })
        };
        let on_data_channel = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |e: RtcDataChannelEvent| match mesh.upgrade() {
                Some(inner) => inner.adopt_channel(&id, generation, e.channel()),
                None => e.channel().close(),
            })
        };
        let on_state_change = {
            let (mesh, id, pc) = (mesh.clone(), id.clone(), pc.clone());
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                // What to do about it is the link's decision, taken on the mesh's next tick.
                let state = match pc.connection_state() {
                    RtcPeerConnectionState::Connected => Transport::Connected,
                    RtcPeerConnectionState::Disconnected => Transport::Disconnected,
                    RtcPeerConnectionState::Failed => Transport::Failed,
                    RtcPeerConnectionState::Closed => Transport::Closed,
                    _ => Transport::Connecting,
                };
                let Some(inner) = mesh.upgrade() else {
                    return;
                };
                inner.with_link(&id, generation, |link| link.transport(state, now_ms()));
                inner.notify_presence();
                if state == Transport::Connected {
                    // The route may have changed (an ICE restart can move to or off a relay).
                    spawn_local(read_route(mesh.clone(), id.clone(), generation, pc.clone()));
                }
            })
        };
        let on_open = {
            let (mesh, id, pc) = (mesh.clone(), id.clone(), pc.clone());
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                if let Some(inner) = mesh.upgrade() {
                    inner.with_link(&id, generation, |link| link.channel_opened(now_ms()));
                    inner.notify_presence();
                    spawn_local(read_route(mesh.clone(), id.clone(), generation, pc.clone()));
                    // Cloned out of the cell, so the hook may set another one.
                    let hook = inner.on_open.borrow().clone();
                    if let Some(hook) = hook {
                        hook(&id);
                    }
                }
            })
        };
        let on_buffered_low = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                if let Some(inner) = mesh.upgrade() {
                    inner.pump(&id);
                }
            })
        };
        let on_message = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |e: MessageEvent| {
                let Some(inner) = mesh.upgrade() else {
                    return;
                };
                // Anything from the peer, on either channel, shows it is alive.
                inner.with_link(&id, generation, |link| link.heard(now_ms()));
                let data = e.data();
                if data.as_string().is_some_and(|text| text == PING_TEXT) {
                    return;
                }
                (inner.on_data)(&id, data);
            })
        };
        let on_close = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                // Without its channel a peer is of no use to a drawing; the server's
                // `remove-peer` usually follows, and a new `add-peer` starts over.
                remove_later(mesh.clone(), id.clone(), generation);
            })
        };
        pc.set_onicecandidate(Some(on_ice_candidate.as_ref().unchecked_ref()));
        pc.set_ondatachannel(Some(on_data_channel.as_ref().unchecked_ref()));
        pc.set_onconnectionstatechange(Some(on_state_change.as_ref().unchecked_ref()));
        Peer {
            user,
            generation,
            pc,
            channel: None,
            cursor_channel: None,
            outbox: Outbox::default(),
            remote_description_set: false,
            remote_fingerprint: None,
            queued_candidates: Vec::new(),
            link,
            _on_ice_candidate: on_ice_candidate,
            _on_data_channel: on_data_channel,
            _on_state_change: on_state_change,
            on_open,
            on_message,
            on_close,
            on_buffered_low,
        }
    }

    fn attach_channel(&mut self, channel: RtcDataChannel) {
        // Packed syncs arrive as ArrayBuffers (a Blob could only be read asynchronously).
        channel.set_binary_type(RtcDataChannelType::Arraybuffer);
        channel.set_onopen(Some(self.on_open.as_ref().unchecked_ref()));
        channel.set_onmessage(Some(self.on_message.as_ref().unchecked_ref()));
        channel.set_onclose(Some(self.on_close.as_ref().unchecked_ref()));
        channel.set_buffered_amount_low_threshold(LOW_WATER_BYTES);
        channel.set_onbufferedamountlow(Some(self.on_buffered_low.as_ref().unchecked_ref()));
        self.channel = Some(channel);
    }

    /// The cursor channel shares the message handler: what arrives is checked the same way.
    /// Its closing costs nothing but cursors, so it has no close handler.
    fn attach_cursor_channel(&mut self, channel: RtcDataChannel) {
        channel.set_onmessage(Some(self.on_message.as_ref().unchecked_ref()));
        self.cursor_channel = Some(channel);
    }

    fn open_channel(&self) -> Option<&RtcDataChannel> {
        self.channel
            .as_ref()
            .filter(|c| c.ready_state() == RtcDataChannelState::Open)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Unset every handler before closing, so no event reaches a freed closure.
        self.pc.set_onicecandidate(None);
        self.pc.set_ondatachannel(None);
        self.pc.set_onconnectionstatechange(None);
        if let Some(channel) = &self.channel {
            channel.set_onopen(None);
            channel.set_onmessage(None);
            channel.set_onclose(None);
            channel.set_onbufferedamountlow(None);
            channel.close();
        }
        if let Some(channel) = &self.cursor_channel {
            channel.set_onmessage(None);
            channel.close();
        }
        self.pc.close();
    }
}

/// Creates and sends an offer on `pc`; with `ice_restart`, one that gathers new candidates on
/// the same connection (its channels stay open if it heals).
async fn send_offer(
    mesh: Weak<Inner>,
    id: PeerId,
    generation: u64,
    pc: RtcPeerConnection,
    ice_restart: bool,
) {
    let offer = async {
        let options = RtcOfferOptions::new();
        options.set_ice_restart(ice_restart);
        let offer = JsFuture::from(pc.create_offer_with_rtc_offer_options(&options)).await?;
        let sdp = sdp_of(&offer);
        JsFuture::from(pc.set_local_description(&description_init(SdpType::Offer, &sdp))).await?;
        Ok::<_, JsValue>(sdp)
    }
    .await;
    // The peer may have left, or been replaced, while we waited.
    let Some(inner) = mesh
        .upgrade()
        .filter(|_| is_current(&mesh, &id, generation))
    else {
        return;
    };
    match offer {
        Ok(sdp) => (inner.relay)(
            &id,
            Signal::SessionDescription(SessionDescription {
                kind: SdpType::Offer,
                sdp,
            }),
        ),
        Err(err) => warn("could not create an offer", &err),
    }
}

async fn accept_description(
    mesh: &Weak<Inner>,
    id: &PeerId,
    generation: u64,
    pc: &RtcPeerConnection,
    description: SessionDescription,
) -> Result<(), JsValue> {
    let init = description_init(description.kind, &description.sdp);
    JsFuture::from(pc.set_remote_description(&init)).await?;
    let Some(queued) = mesh
        .upgrade()
        .and_then(|m| m.remote_description_set(id, generation, &description.sdp))
    else {
        return Ok(());
    };
    for candidate in &queued {
        if let Err(err) = add_candidate(pc, candidate).await {
            warn("could not add a queued ICE candidate", &err);
        }
    }
    if description.kind != SdpType::Offer {
        return Ok(());
    }
    let answer = JsFuture::from(pc.create_answer()).await?;
    let sdp = sdp_of(&answer);
    JsFuture::from(pc.set_local_description(&description_init(SdpType::Answer, &sdp))).await?;
    if let Some(inner) = mesh.upgrade().filter(|_| is_current(mesh, id, generation)) {
        let answer = SessionDescription {
            kind: SdpType::Answer,
            sdp,
        };
        (inner.relay)(id, Signal::SessionDescription(answer));
    }
    Ok(())
}

async fn add_candidate(pc: &RtcPeerConnection, candidate: &IceCandidate) -> Result<(), JsValue> {
    let init = RtcIceCandidateInit::new(&candidate.candidate);
    init.set_sdp_mid(candidate.sdp_mid.as_deref());
    init.set_sdp_m_line_index(candidate.sdp_m_line_index);
    if let Some(ufrag) = &candidate.username_fragment {
        Reflect::set(
            &init,
            &JsValue::from_str("usernameFragment"),
            &JsValue::from_str(ufrag),
        )?;
    }
    JsFuture::from(pc.add_ice_candidate_with_opt_rtc_ice_candidate_init(Some(&init))).await?;
    Ok(())
}

fn description_init(kind: SdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let kind = match kind {
        SdpType::Offer => RtcSdpType::Offer,
        SdpType::Answer => RtcSdpType::Answer,
        SdpType::Pranswer => RtcSdpType::Pranswer,
        SdpType::Rollback => RtcSdpType::Rollback,
    };
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

/// The `sdp` of what `createOffer`/`createAnswer` resolved to.
fn sdp_of(description: &JsValue) -> String {
    Reflect::get(description, &JsValue::from_str("sdp"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// The `RTCConfiguration` for every connection: the server's ICE servers (with none, host
/// candidates only: enough on one network, and nothing leaves it), relayed candidates only if
/// asked.
fn rtc_configuration(ice: &IceSettings) -> RtcConfiguration {
    let servers = js_sys::Array::new();
    for server in &ice.config.ice_servers {
        let ice = RtcIceServer::new();
        let urls: js_sys::Array = server.urls.iter().map(|u| JsValue::from_str(u)).collect();
        ice.set_urls(&urls);
        if let Some(username) = &server.username {
            ice.set_username(username);
        }
        if let Some(credential) = &server.credential {
            ice.set_credential(credential);
        }
        servers.push(&ice);
    }
    let rtc = RtcConfiguration::new();
    rtc.set_ice_servers(&servers);
    if ice.relay_only {
        rtc.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
    }
    rtc
}

/// `performance.now()`: the links' clock (monotonic, unlike the wall clock).
fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Ticks the mesh every [`TICK_MS`] for as long as it lives: the loop ends at the first tick
/// after the mesh is dropped, so it needs no handle of its own.
fn start_clock(mesh: Weak<Inner>) {
    spawn_local(async move {
        loop {
            crate::dom::sleep(TICK_MS).await;
            let Some(inner) = mesh.upgrade() else {
                break;
            };
            inner.tick();
        }
    });
}

/// Reads from the connection's stats whether its selected candidate pair goes through a TURN
/// relay, and tells the link (and so the people list).
async fn read_route(mesh: Weak<Inner>, id: PeerId, generation: u64, pc: RtcPeerConnection) {
    let Ok(report) = JsFuture::from(pc.get_stats()).await else {
        return;
    };
    let Some(route) = selected_route(&report) else {
        return;
    };
    if let Some(inner) = mesh.upgrade() {
        inner.with_link(&id, generation, |link| link.set_route(route));
        inner.notify_presence();
    }
}

/// The route of the selected candidate pair in an `RTCStatsReport`: the transport names it
/// (`selectedCandidatePairId`); its local and remote candidates say whether either is a relay.
fn selected_route(report: &JsValue) -> Option<Route> {
    let get = |obj: &JsValue, key: &str| Reflect::get(obj, &JsValue::from_str(key)).ok();
    let text = |obj: &JsValue, key: &str| get(obj, key).and_then(|v| v.as_string());
    let mut stats = BTreeMap::new();
    let mut selected = None;
    let entries = js_sys::try_iter(&Reflect::get(report, &"values".into()).ok().and_then(|f| {
        f.dyn_into::<js_sys::Function>()
            .ok()
            .and_then(|f| f.call0(report).ok())
    })?)
    .ok()??;
    for entry in entries.flatten() {
        let (Some(id), Some(kind)) = (text(&entry, "id"), text(&entry, "type")) else {
            continue;
        };
        if kind == "transport" {
            selected = selected.or_else(|| text(&entry, "selectedCandidatePairId"));
        }
        stats.insert(id, entry);
    }
    let pair = stats.get(&selected?)?;
    let local = stats.get(&text(pair, "localCandidateId")?)?;
    let remote = stats.get(&text(pair, "remoteCandidateId")?)?;
    Some(Route::of_candidates(
        &text(local, "candidateType")?,
        &text(remote, "candidateType")?,
    ))
}

fn warn(what: &str, err: &JsValue) {
    web_sys::console::warn_2(&JsValue::from_str(what), err);
}
