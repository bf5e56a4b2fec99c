//! The peers: what goes to them (my ops, my cursor, a hello when a channel opens, the sync a
//! hello asks for) and what comes from them (checked by the board, then acted on), and who is
//! here (the people list, their colours and cursors).
//!
//! The mesh belongs to the session (a new sign-in builds a new one); it is lent here for each
//! message, and everything here works without one (offline, or while signing in).

use crate::board::{Board, Received};
use crate::dom::{self, Timeout, now_ms};
use crate::mailbox::Mailbox;
use crate::mesh::{Mesh, Payload, PeerSummary};
use crate::presence::Presence;
use crate::ui::Ui;
use crate::wire;
use shared::PeerId;
use shared::document::{Op, VersionVector};
use shared::signing::Proof;
use shared::sync::{
    ARRIVAL_STALL_MS, Arrival, CURSOR_RATE_HZ, ChannelMessage, MAX_MESSAGE_BYTES, SYNC_REFILL_MS,
    SyncBudget,
};
use shared::view::View;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use wasm_bindgen::JsValue;

/// What the mesh and the peers' timers tell the peers.
pub enum Event {
    /// Data on a peer's channel, as the browser gave it.
    Data(PeerId, JsValue),
    /// The peers present, whenever one comes, opens or goes.
    Present(Vec<PeerSummary>),
    /// A peer's `drawing` channel opened: time to say hello.
    Opened(PeerId),
    /// The cursor's rate limit lets the waiting cursor out.
    CursorDue,
    /// A peer whose hello waited has sync budget again.
    HelloDue(PeerId),
    /// Time to see whether a drawing arriving stalled (see [`Arrival`]).
    ArrivalDue,
}

/// The people here and what is owed to them.
pub struct Peers {
    presence: Presence,
    /// How often each peer may ask for a sync.
    sync_budget: SyncBudget,
    /// The latest hello of a peer past its sync budget (what it has, whether it takes packed
    /// syncs), answered when the timer fires.
    deferred_hellos: HashMap<PeerId, (VersionVector, bool, Timeout)>,
    /// When my cursor last went out (`performance.now()`), for the rate limit.
    last_cursor_ms: f64,
    /// The cursor message waiting for the rate limit, and the timer that lets it out.
    cursor_pending: Option<(ChannelMessage, Timeout)>,
    /// A drawing arriving from the peers, and the timer that notices if it stalls.
    arrival: Arrival,
    arrival_check: Option<Timeout>,
    mailbox: Mailbox<Event>,
}

impl Peers {
    /// Cursors go into `overlay` (see [`Presence`]); timers post to `mailbox`.
    pub fn new(overlay: web_sys::Element, mailbox: Mailbox<Event>) -> Peers {
        Peers {
            presence: Presence::new(overlay),
            sync_budget: SyncBudget::default(),
            deferred_hellos: HashMap::new(),
            last_cursor_ms: f64::NEG_INFINITY,
            cursor_pending: None,
            arrival: Arrival::default(),
            arrival_check: None,
            mailbox,
        }
    }

    /// Takes one event, with the session's mesh if there is one.
    pub fn handle(&mut self, event: Event, mesh: Option<&Mesh>, board: &mut Board, ui: &Ui) {
        match event {
            Event::Data(from, data) => self.receive(&from, &data, mesh, board, ui),
            Event::Present(peers) => self.show_peers(&peers, board, ui),
            Event::Opened(peer) => say_hello(&peer, mesh, board),
            Event::CursorDue => {
                if let Some((message, _fired)) = self.cursor_pending.take() {
                    self.flush_cursor(message, mesh);
                }
            }
            Event::HelloDue(peer) => {
                if let Some((have, packed, _fired)) = self.deferred_hellos.remove(&peer) {
                    self.hello(&peer, have, packed, mesh, board);
                }
            }
            Event::ArrivalDue => self.show_arrival(board, ui),
        }
    }

    /// Shows how much of an arriving drawing is here; while one arrives, looks again a little
    /// after it would count as stalled, so a stalled one is hidden even if nothing more comes.
    fn show_arrival(&mut self, board: &Board, ui: &Ui) {
        // Called for every ops message: nothing to do (no DOM write, no version vector) when
        // nothing is arriving and nothing is shown (the check timer lives while it is).
        if self.arrival.is_idle() && self.arrival_check.is_none() {
            return;
        }
        let progress = self
            .arrival
            .progress(&board.doc().version_vector(), now_ms());
        ui.show_arrival(progress);
        self.arrival_check = progress.map(|_| {
            self.mailbox
                .post_after(ARRIVAL_STALL_MS as i32 + 100, Event::ArrivalDue)
        });
    }

    /// The view changed: the cursors move with the drawing.
    pub fn reposition(&mut self, view: &View) {
        self.presence.reposition(view);
    }

    /// Sends my cursor (a screen point, or none when it left the canvas) to every peer, at most
    /// [`CURSOR_RATE_HZ`] times a second. A position that comes too soon waits for the end of
    /// the interval (the latest wins), so where the pointer stops is always sent.
    pub fn send_cursor(&mut self, at: Option<(f32, f32)>, mesh: Option<&Mesh>, board: &Board) {
        let view = board.view();
        let message = ChannelMessage::Cursor {
            at: at.map(|(x, y)| view.to_world(x, y)),
            color: board.color(),
        };
        let interval = 1000.0 / CURSOR_RATE_HZ;
        let wait = self.last_cursor_ms + interval - now_ms();
        if wait <= 0.0 {
            self.cursor_pending = None;
            return self.flush_cursor(message, mesh);
        }
        match &mut self.cursor_pending {
            // Already waiting: the newer message replaces the older.
            Some((pending, _timer)) => *pending = message,
            None => {
                let timer = self
                    .mailbox
                    .post_after(wait.ceil() as i32, Event::CursorDue);
                self.cursor_pending = Some((message, timer));
            }
        }
    }

    fn flush_cursor(&mut self, message: ChannelMessage, mesh: Option<&Mesh>) {
        self.last_cursor_ms = now_ms();
        if let (Some(mesh), Ok(text)) = (mesh, wire::encode(&message)) {
            mesh.broadcast_cursor(&text);
        }
    }

    /// A peer's data: checked and acted on, or dropped with a warning.
    fn receive(
        &mut self,
        from: &PeerId,
        data: &JsValue,
        mesh: Option<&Mesh>,
        board: &mut Board,
        ui: &Ui,
    ) {
        let Some(mesh) = mesh else {
            return;
        };
        match board.receive(from, data, |p| mesh.contains(p)) {
            Err(err) => dom::warn(&format!("dropped a message from peer {from}: {err}")),
            // Painted in the next frame.
            Ok(Received::Ops { .. }) => self.show_arrival(board, ui),
            Ok(Received::Ping) => {}
            Ok(Received::Hello { have, packed }) => {
                self.arrival
                    .expect(&have, &board.doc().version_vector(), now_ms());
                self.show_arrival(board, ui);
                self.hello(from, have, packed, Some(mesh), board);
            }
            Ok(Received::Cursor { at, color }) => {
                let peers = mesh.peers();
                let Some(peer) = peers.iter().find(|p| &p.id == from) else {
                    return;
                };
                let recolored =
                    self.presence
                        .cursor(from, &peer.username, at, color, &board.view());
                if recolored {
                    self.show_peers(&peers, board, ui);
                }
            }
        }
    }

    /// A peer says what it has: send it what it lacks, paced by its channel. Within its sync
    /// budget at once; past it, one deferred answer (to its latest hello) when the budget allows,
    /// so a peer repeating hellos costs one sync per interval and an honest one still gets its
    /// sync after a burst of reconnects. Packed ([`shared::packed`]) when its hello says it
    /// takes that: a sync is the whole drawing for a late joiner, a sixth of the JSON's size.
    fn hello(
        &mut self,
        from: &PeerId,
        have: VersionVector,
        packed: bool,
        mesh: Option<&Mesh>,
        board: &mut Board,
    ) {
        if !self.sync_budget.allow(from, now_ms()) {
            match self.deferred_hellos.entry(from.clone()) {
                Entry::Occupied(mut waiting) => {
                    let waiting = waiting.get_mut();
                    (waiting.0, waiting.1) = (have, packed);
                }
                Entry::Vacant(slot) => {
                    let due = Event::HelloDue(from.clone());
                    let timer = self.mailbox.post_after(SYNC_REFILL_MS as i32, due);
                    slot.insert((have, packed, timer));
                }
            }
            return;
        }
        let Some(mesh) = mesh else {
            return;
        };
        let batches = board.sync_reply(&have, |a| a != from && mesh.contains(a));
        // Encoded one batch at a time, as the channel drains.
        let messages = batches.into_iter().filter_map(move |batch| {
            if packed {
                return Some(Payload::Packed(shared::packed::encode(
                    &batch.ops,
                    &batch.proofs,
                    &batch.certs,
                )));
            }
            wire::encode(&ChannelMessage::Ops {
                ops: batch.ops,
                proofs: batch.proofs,
                certs: batch.certs,
            })
            .map(Payload::Text)
            .map_err(|err| dom::warn(&format!("could not encode a sync batch: {err}")))
            .ok()
        });
        mesh.send_paced(from, Box::new(messages));
    }

    /// The peers list, with the colours their cursors told us; cursors of peers gone go too.
    fn show_peers(&mut self, peers: &[PeerSummary], board: &mut Board, ui: &Ui) {
        let present = |id: &PeerId| peers.iter().any(|p| &p.id == id);
        self.presence.retain(present);
        self.sync_budget.retain(present);
        ui.set_peers(peers, |id| self.presence.color(id));
        // A peer who left mid-stroke will not finish it: commit what it drew (and forget what it
        // had waiting).
        board.keep_peers(present);
    }
}

/// A peer's channel opened: tell it what I have, so it sends what I lack.
fn say_hello(peer: &PeerId, mesh: Option<&Mesh>, board: &Board) {
    match (mesh, wire::encode(&board.hello())) {
        (Some(mesh), Ok(text)) => {
            mesh.send_to(peer, &text);
        }
        (_, Err(err)) => dom::warn(&format!("could not encode a hello: {err}")),
        _ => {}
    }
}

/// Sends my new ops to every peer: one `ops` message, or several if one would be too large
/// for a peer to accept. Without a mesh nobody hears them now; peers get them in the sync
/// their hello asks for.
pub fn broadcast_ops(ops: Vec<Op>, mesh: Option<&Mesh>, board: &mut Board) {
    if ops.is_empty() {
        return;
    }
    let Some(mesh) = mesh else {
        return;
    };
    let proof = board.seal(&ops, now_ms());
    let texts = match encode_ops(ops, proof) {
        Ok(texts) => texts,
        Err(err) => return dom::warn(&format!("could not encode ops: {err}")),
    };
    for text in texts {
        mesh.broadcast(&text);
    }
}

/// Ops as `ops` messages, with `proof` (of the last op): all in one, or cut so each fits
/// [`MAX_MESSAGE_BYTES`], the proof in the last (an op too large even alone is dropped with a
/// warning: no peer would accept it).
pub fn encode_ops(ops: Vec<Op>, proof: Option<Proof>) -> Result<Vec<String>, String> {
    // Every pointer event comes through here: encode the ops in place, no copy.
    let message = ChannelMessage::Ops {
        ops,
        proofs: proof.into_iter().collect(),
        certs: vec![],
    };
    let all = wire::encode(&message)?;
    if all.len() <= MAX_MESSAGE_BYTES {
        return Ok(vec![all]);
    }
    let ChannelMessage::Ops {
        ops, mut proofs, ..
    } = message
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let last = ops.len().saturating_sub(1);
    for (i, op) in ops.into_iter().enumerate() {
        let proofs = if i == last {
            std::mem::take(&mut proofs)
        } else {
            Vec::new()
        };
        let text = wire::encode(&ChannelMessage::Ops {
            ops: vec![op],
            proofs,
            certs: vec![],
        })?;
        if text.len() <= MAX_MESSAGE_BYTES {
            out.push(text);
        } else {
            dom::warn("an op too large to send was dropped");
        }
    }
    Ok(out)
}
