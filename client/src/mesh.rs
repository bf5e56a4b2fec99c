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
use shared::protocol::{ClientConfig, IceCandidate, RelayEvent, SdpType, SessionDescription};
use shared::sync::{CURSOR_CHANNEL, DOC_CHANNEL};
use shared::{PeerId, User};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelState,
    RtcIceCandidateInit, RtcIceServer, RtcPeerConnection, RtcPeerConnectionIceEvent,
    RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
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

/// Messages produced on demand, one per send, so a large sync is encoded as it goes out rather
/// than all at once.
pub type Outgoing = Box<dyn Iterator<Item = String>>;

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
}

/// The peer connections of this page. Cheap to clone: clones share the same mesh.
#[derive(Clone)]
pub struct Mesh {
    inner: Rc<Inner>,
}

struct Inner {
    peers: RefCell<BTreeMap<PeerId, Peer>>,
    rtc_config: RtcConfiguration,
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
        config: &ClientConfig,
        relay: impl Fn(&PeerId, Signal) + 'static,
        on_data: impl Fn(&PeerId, JsValue) + 'static,
        on_presence: impl Fn(&[PeerSummary]) + 'static,
    ) -> Mesh {
        Mesh {
            inner: Rc::new(Inner {
                peers: RefCell::new(BTreeMap::new()),
                rtc_config: rtc_configuration(config),
                next_generation: Cell::new(0),
                relay: Box::new(relay),
                on_data: Box::new(on_data),
                on_presence: Box::new(on_presence),
                on_open: RefCell::new(None),
            }),
        }
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
        let generation = self.inner.next_generation.get();
        self.inner.next_generation.set(generation + 1);
        let pc = match self.inner.new_connection() {
            Ok(pc) => pc,
            Err(err) => {
                warn(&format!("no connection to {}", user.username), &err);
                return;
            }
        };
        let mut peer = Peer::new(
            Rc::downgrade(&self.inner),
            user.clone(),
            generation,
            pc.clone(),
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
        let replaced = self.inner.peers.borrow_mut().insert(user.id.clone(), peer);
        drop(replaced);
        self.inner.notify_presence();
        if offer {
            spawn_local(send_offer(
                Rc::downgrade(&self.inner),
                user.id,
                generation,
                pc,
            ));
        }
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
    /// queued meanwhile, and answers an offer.
    pub fn session_description(&self, from: &User, description: SessionDescription) {
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
        let overflow = {
            let mut peers = self.inner.peers.borrow_mut();
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
            self.remove_peer(id);
            return false;
        }
        self.inner.pump(id);
        true
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
        self.inner
            .peers
            .try_borrow()
            .map(|peers| peers.contains_key(id))
            .unwrap_or(false)
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
    fn new_connection(&self) -> Result<RtcPeerConnection, JsValue> {
        RtcPeerConnection::new_with_configuration(&self.rtc_config).or_else(|err| {
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
        let Ok(peers) = self.peers.try_borrow() else {
            return Vec::new();
        };
        let mut list: Vec<PeerSummary> = peers
            .values()
            .map(|peer| PeerSummary {
                id: peer.user.id.clone(),
                username: peer.user.username.clone(),
                open: peer.open_channel().is_some(),
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
                Some(text) => Some(text),
                None => match peer.outbox.sync.as_mut().and_then(Iterator::next) {
                    Some(text) => Some(text),
                    None => {
                        peer.outbox.sync = None;
                        None
                    }
                },
            };
            let Some(text) = next else {
                break;
            };
            if let Err(err) = channel.send_with_str(&text) {
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
    fn remote_description_set(&self, id: &PeerId, generation: u64) -> Option<Vec<IceCandidate>> {
        let mut peers = self.peers.borrow_mut();
        let peer = peers.get_mut(id).filter(|p| p.generation == generation)?;
        peer.remote_description_set = true;
        Some(std::mem::take(&mut peer.queued_candidates))
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
    queued_candidates: Vec<IceCandidate>,
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
    fn new(mesh: Weak<Inner>, user: User, generation: u64, pc: RtcPeerConnection) -> Peer {
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
                // `disconnected` may heal by itself; `failed` and `closed` do not.
                if matches!(
                    pc.connection_state(),
                    RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
                ) {
                    remove_later(mesh.clone(), id.clone(), generation);
                }
            })
        };
        let on_open = {
            let (mesh, id) = (mesh.clone(), id.clone());
            Closure::<dyn FnMut(_)>::new(move |_: web_sys::Event| {
                if let Some(inner) = mesh.upgrade() {
                    inner.notify_presence();
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
                if let Some(inner) = mesh.upgrade() {
                    (inner.on_data)(&id, e.data());
                }
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
            queued_candidates: Vec::new(),
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

async fn send_offer(mesh: Weak<Inner>, id: PeerId, generation: u64, pc: RtcPeerConnection) {
    let offer = async {
        let offer = JsFuture::from(pc.create_offer()).await?;
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
        .and_then(|m| m.remote_description_set(id, generation))
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

/// The `RTCConfiguration` for every connection: the server's ICE servers (none by default, which
/// means host candidates only: enough on one network, and nothing leaves it).
fn rtc_configuration(config: &ClientConfig) -> RtcConfiguration {
    let servers = js_sys::Array::new();
    for server in &config.ice_servers {
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
    rtc
}

fn warn(what: &str, err: &JsValue) {
    web_sys::console::warn_2(&JsValue::from_str(what), err);
}
