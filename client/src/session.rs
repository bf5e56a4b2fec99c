//! The session's life: signing in, the live session (its token, the mesh built on it, its
//! stream), renewing the token, and signing in again after failures.
//!
//! A sign-in asks for a token (`/access`), then for the ICE configuration (`/config`), then opens
//! the stream, and joins the room each time the stream says `connected`. Peers arrive and leave
//! through the stream; strokes never touch the server.
//!
//! Shortly before its token expires, a session trades it for a new one naming the same peer
//! (`POST /refresh`) and reopens its stream with it: the server swaps the stream and keeps us in
//! the room, so peers notice nothing and our id (our strokes, our undo history) lives on. A
//! session ends when the server refuses its token, on the stream (the browser then gives up on
//! it) or on a refresh; the app then signs in again, backing off after failures. A refresh that
//! cannot reach the server is tried again later instead: signing in again would close every peer
//! connection, and peers already connected keep drawing with us while the server is away.
//!
//! Every wait and every request belongs to the sign-in that started it: the retries and the
//! sign-in under way here, the renewal and the joins in its [`Live`] session. Signing in again
//! drops them all, so nothing of an earlier sign-in comes back to act on a later one.

use crate::board::Board;
use crate::dom::{self, Timeout};
use crate::mailbox::{Mailbox, Task};
use crate::mesh::{IceSettings, Mesh, PeerSummary, Signal};
use crate::peers;
use crate::signaling::{self, EventStream, ServerEvent, Session, SignalingError};
use crate::ui::{Status, Ui};
use crate::wire;
use shared::document::Op;
use shared::protocol::{AccessResponse, ClientConfig};
use shared::room::RoomId;
use shared::signing::PublicKey;
use shared::{PeerId, User};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

/// Longest wait between two attempts to sign in again, in milliseconds.
const MAX_RETRY_MS: i32 = 30_000;
/// How often a page refused for a full room asks again.
const FULL_ROOM_RETRY_MS: i32 = 10_000;
/// How long before its token expires a session is renewed, in seconds.
const RENEW_AHEAD_SECS: f64 = 60.0;
/// Where the server keys this browser has trusted are remembered (see [`trust_servers`]).
const SERVER_KEYS: &str = "drawmesh:server-keys";

/// What the server, the session's timers and its requests tell the session.
pub enum Event {
    /// A retry's wait is over: sign in again.
    SignIn,
    /// `/access` answered.
    Access(Result<AccessResponse, SignalingError>),
    /// A `/config` answer's certificate key: trusted whatever became of the sign-in that asked.
    ServerKey(Option<PublicKey>),
    /// The ICE settings for the sign-in under way: build the mesh and open the stream.
    Configured(IceSettings),
    /// An event on stream number `.0`.
    Stream(u64, ServerEvent),
    /// A join (asked when a stream said `connected`) answered.
    Joined(Result<(), SignalingError>),
    /// Time to renew the token.
    RenewalDue,
    /// `/refresh` answered.
    Renewed(Result<AccessResponse, SignalingError>),
    /// The ICE settings with TURN credentials for the renewed token.
    IceRenewed(IceSettings),
}

/// One page's sessions, one after another.
pub struct SessionLife {
    username: String,
    room: RoomId,
    relay_only: bool,
    /// The key my ops are signed with, certified at sign-in.
    public_key: PublicKey,
    /// Who the server says I am.
    me: Option<User>,
    phase: Phase,
    /// Sign-in failures since the stream last said `connected`, for the back-off.
    failures: u32,
    /// The sign-ins scheduled after failures; the first to fire signs in, and that drops the
    /// others.
    retries: Vec<Timeout>,
    /// Numbers the streams this page opens (see [`Live::stream_no`]).
    next_stream: u64,
    mailbox: Mailbox<Event>,
    /// Where each mesh reports its peers' data and comings and goings.
    peers: Mailbox<peers::Event>,
}

/// Where the current sign-in is.
enum Phase {
    /// None under way: before the first, or waiting for a retry.
    Idle,
    /// Waiting for `/access`.
    SigningIn { _reply: Task },
    /// Signed in; waiting for the ICE settings to build the mesh with.
    Configuring {
        session: Session,
        token: String,
        _config: Task,
    },
    /// The stream is open and the mesh built on it.
    Live(Live),
}

/// One signed-in session: its token, the mesh built on it, and its stream. A new session (a new
/// sign-in) names a fresh peer id: the server introduces us to the room again under it, and the
/// old connections close. A refreshed token keeps the session; only its stream is replaced.
struct Live {
    session: Session,
    mesh: Mesh,
    stream: EventStream,
    /// Which stream is current; events of any other but `retiring` are ignored.
    stream_no: u64,
    /// The stream a refresh replaced, and its number, kept open until the new one says
    /// `connected`: closing it first would make the server see us leave; closing it later would
    /// let it reconnect with the old token and take the stream back. Until then the server still
    /// delivers to it (introductions, offers, candidates), so its events count too.
    retiring: Option<(EventStream, u64)>,
    renewal: Renewal,
    /// Fetching the ICE settings again after a renewal (TURN credentials end with the token).
    renewing_ice: Option<Task>,
    /// The joins under way, one per `connected`.
    joins: Vec<Task>,
}

/// The token's renewal: waiting for its time, or asking. `failures` counts the tries that could
/// not reach the server.
enum Renewal {
    /// The token does not say when it expires: never renewed ahead of time.
    Never,
    Waiting {
        _timer: Timeout,
        failures: u32,
    },
    Asking {
        _reply: Task,
        failures: u32,
    },
}

impl Drop for Live {
    fn drop(&mut self) {
        self.mesh.clear();
    }
}

impl SessionLife {
    /// Sessions for `username` in `room`, signing with `public_key`; the meshes they build
    /// report to `peers`.
    pub fn new(
        username: String,
        room: RoomId,
        relay_only: bool,
        public_key: PublicKey,
        mailbox: Mailbox<Event>,
        peers: Mailbox<peers::Event>,
    ) -> SessionLife {
        SessionLife {
            username,
            room,
            relay_only,
            public_key,
            me: None,
            phase: Phase::Idle,
            failures: 0,
            retries: Vec::new(),
            next_stream: 0,
            mailbox,
            peers,
        }
    }

    /// The current session's mesh, if any.
    pub fn mesh(&self) -> Option<&Mesh> {
        match &self.phase {
            Phase::Live(live) => Some(&live.mesh),
            _ => None,
        }
    }

    /// Takes one event; returns ops of mine to broadcast.
    pub fn handle(&mut self, event: Event, board: &mut Board, ui: &Ui) -> Vec<Op> {
        match event {
            Event::SignIn => self.sign_in(ui),
            Event::Access(access) => return self.signed_in(access, board, ui),
            Event::ServerKey(key) => trust_servers(board, key),
            Event::Configured(ice) => self.go_live(ice, ui),
            Event::Stream(no, event) => self.on_stream(no, event, ui),
            Event::Joined(Ok(())) => {}
            Event::Joined(Err(err)) => {
                let (status, why) = match &err {
                    // Somebody may leave: say so plainly, and look again later.
                    SignalingError::RoomFull(why) => (Status::Full, capitalized(why)),
                    _ => (Status::Error, format!("Could not join: {err}")),
                };
                self.retry(ui, status, &why);
            }
            Event::RenewalDue => self.renew(),
            Event::Renewed(access) => self.renewed(access, ui),
            Event::IceRenewed(ice) => {
                if let Some(mesh) = self.mesh() {
                    mesh.set_ice(&ice);
                }
            }
        }
        Vec::new()
    }

    /// Signs in, replacing any earlier session.
    pub fn sign_in(&mut self, ui: &Ui) {
        self.retries.clear();
        // Closing the old stream makes the server drop our old id from the room.
        self.phase = Phase::Idle;
        ui.set_status(Status::Connecting, "Connecting…");
        let (username, key) = (self.username.clone(), self.public_key);
        let reply = Task::spawn(&self.mailbox, async move {
            Event::Access(signaling::request_access(&username, key).await)
        });
        self.phase = Phase::SigningIn { _reply: reply };
    }

    /// The token is here: the board files my ops under my id, and the ICE settings are next.
    fn signed_in(
        &mut self,
        access: Result<AccessResponse, SignalingError>,
        board: &mut Board,
        ui: &Ui,
    ) -> Vec<Op> {
        let access = match access {
            Ok(access) => access,
            Err(err) => {
                self.phase = Phase::Idle;
                self.retry(ui, Status::Error, &format!("Could not sign in: {err}"));
                return Vec::new();
            }
        };
        let finished = board.set_me(access.user.id.clone());
        match access.certificate {
            Some(cert) if cert.peer == access.user.id && cert.key == board.public_key() => {
                board.certify(cert)
            }
            _ => dom::warn("the server did not certify our key: peers will drop our ops"),
        }
        ui.set_username(&access.user.username);
        self.me = Some(access.user);
        let session = Session::new(&access.token);
        let config = fetch_ice(&self.mailbox, &session, self.relay_only, Event::Configured);
        self.phase = Phase::Configuring {
            session,
            token: access.token,
            _config: config,
        };
        finished
    }

    /// Builds the mesh and opens the stream.
    fn go_live(&mut self, ice: IceSettings, ui: &Ui) {
        let (session, token) = match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Configuring { session, token, .. } => (session, token),
            other => {
                self.phase = other;
                return;
            }
        };
        let mesh = self.new_mesh(&ice, &session);
        match open_stream(&mut self.next_stream, &self.mailbox, &session) {
            Ok((stream, stream_no)) => {
                let mut live = Live {
                    session,
                    mesh,
                    stream,
                    stream_no,
                    retiring: None,
                    renewal: Renewal::Never,
                    renewing_ice: None,
                    joins: Vec::new(),
                };
                live.schedule_renewal(&token, &self.mailbox);
                self.phase = Phase::Live(live);
            }
            Err(err) => self.retry(ui, Status::Error, &format!("No server stream: {err}")),
        }
    }

    /// A mesh whose signals go through `session`'s relay and whose peers report to the peers.
    fn new_mesh(&self, ice: &IceSettings, session: &Session) -> Mesh {
        let (data, present, opened) = (self.peers.clone(), self.peers.clone(), self.peers.clone());
        let mesh = Mesh::new(
            ice,
            relay_through(session.clone()),
            move |from: &PeerId, message: JsValue| {
                data.post(peers::Event::Data(from.clone(), message));
            },
            move |list: &[PeerSummary]| present.post(peers::Event::Present(list.to_vec())),
        );
        mesh.set_on_open(move |peer: &PeerId| opened.post(peers::Event::Opened(peer.clone())));
        mesh
    }

    fn on_stream(&mut self, stream_no: u64, event: ServerEvent, ui: &Ui) {
        let Phase::Live(live) = &mut self.phase else {
            return;
        };
        let retired = if live.stream_no == stream_no {
            // Once the server delivers to this stream, the one it replaced can go.
            match event {
                ServerEvent::Connected(_) => live.retiring.take(),
                _ => None,
            }
        } else if live
            .retiring
            .as_ref()
            .is_some_and(|(_, no)| *no == stream_no)
            && !matches!(event, ServerEvent::Connected(_) | ServerEvent::Lost { .. })
        {
            // The stream being replaced: what the server sent it before the new one reached the
            // server counts (dropping it lost a newcomer's introduction and offer). Its own
            // connecting and breaking are no longer the session's business.
            None
        } else {
            return;
        };
        drop(retired);
        let room = &self.room;
        match event {
            ServerEvent::Connected(_) => {
                // Also after the browser reconnected the stream: joining again is harmless, and
                // peers we still have stay as they are.
                self.failures = 0;
                ui.set_status(Status::Connected, &format!("Connected · room {room}"));
                let (session, room) = (live.session.clone(), room.clone());
                live.joins.retain(Task::is_running);
                live.joins.push(Task::spawn(&self.mailbox, async move {
                    Event::Joined(session.join(&room).await)
                }));
            }
            ServerEvent::AddPeer(add) => {
                let is_me = self.me.as_ref().is_some_and(|me| me.id == add.peer.id);
                if &add.room_id == room && !is_me {
                    live.mesh.add_peer(add.peer, add.offer);
                }
            }
            ServerEvent::RemovePeer(remove) => {
                if &remove.room_id == room {
                    live.mesh.remove_peer(&remove.peer.id);
                }
            }
            ServerEvent::SessionDescription(relayed) => {
                live.mesh.session_description(&relayed.peer, relayed.data);
            }
            ServerEvent::IceCandidate(relayed) => {
                live.mesh.ice_candidate(&relayed.peer, relayed.data)
            }
            ServerEvent::Lost { reconnecting: true } => ui.set_status(
                Status::Offline,
                "Offline · reconnecting (peers stay connected)",
            ),
            ServerEvent::Lost {
                reconnecting: false,
            } => {
                // The browser gave up on the stream (the server refused our token, say): sign in
                // afresh. Until then, peers already connected keep drawing with us.
                self.retry(ui, Status::Offline, "Disconnected from the server");
            }
        }
    }

    /// Shows why the session ended and signs in again later, waiting longer after each failure.
    fn retry(&mut self, ui: &Ui, status: Status, why: &str) {
        let failures = self.failures;
        self.failures += 1;
        // A full room frees only when someone leaves: look again now and then, not at once.
        let wait_ms = match status {
            Status::Full => FULL_ROOM_RETRY_MS,
            _ => backoff_ms(failures),
        };
        ui.set_status(status, &format!("{why} · retrying in {}s", wait_ms / 1000));
        self.retries
            .push(self.mailbox.post_after(wait_ms, Event::SignIn));
    }

    /// Trades the token for a new one naming the same peer.
    fn renew(&mut self) {
        let Phase::Live(live) = &mut self.phase else {
            return;
        };
        let Renewal::Waiting { failures, .. } = live.renewal else {
            return;
        };
        let session = live.session.clone();
        live.renewal = Renewal::Asking {
            _reply: Task::spawn(&self.mailbox, async move {
                Event::Renewed(session.refresh().await)
            }),
            failures,
        };
    }

    /// Only the server's refusal of the token (401, 403) signs in anew. Any other failure (no
    /// server, a proxy with no server behind it) keeps the session, its mesh and its stream
    /// (which the browser keeps reconnecting), and tries again later: signing in anew would
    /// close every peer connection while the server is away, the moment they matter most. If
    /// the server stays away until the token has expired, it refuses the token on its return,
    /// here or on the stream, and that signs in anew.
    fn renewed(&mut self, access: Result<AccessResponse, SignalingError>, ui: &Ui) {
        let Phase::Live(live) = &mut self.phase else {
            return;
        };
        let Renewal::Asking { failures, .. } = live.renewal else {
            return;
        };
        let access = match access {
            Ok(access) => access,
            // The server refused the token: expired, or signed with a secret it no longer has
            // (a restart without TOKEN_SECRET).
            Err(err @ SignalingError::Status(401 | 403, _)) => {
                dom::warn(&format!("token refresh failed ({err}); signing in again"));
                return self.sign_in(ui);
            }
            // No server (or a proxy's 502 in front of none): the session goes on as it is.
            Err(err) => {
                let wait_ms = backoff_ms(failures);
                dom::warn(&format!(
                    "token refresh failed ({err}); keeping the session, trying again in {}s",
                    wait_ms / 1000
                ));
                live.renew_after(wait_ms, failures + 1, &self.mailbox);
                return;
            }
        };
        match open_stream(&mut self.next_stream, &self.mailbox, &live.session) {
            Ok((stream, stream_no)) => {
                let old = std::mem::replace(&mut live.stream, stream);
                live.retiring = Some((old, live.stream_no));
                live.stream_no = stream_no;
                live.schedule_renewal(&access.token, &self.mailbox);
                // TURN credentials end with the token they came with: renew them too.
                live.renewing_ice = Some(fetch_ice(
                    &self.mailbox,
                    &live.session,
                    self.relay_only,
                    Event::IceRenewed,
                ));
            }
            Err(err) => {
                dom::warn(&format!(
                    "no stream after the token refresh ({err}); signing in again"
                ));
                self.sign_in(ui);
            }
        }
    }
}

impl Live {
    /// Shortly before `token` expires, trades it for a new one naming the same peer and moves
    /// the session to a new stream with it (see the module docs).
    fn schedule_renewal(&mut self, token: &str, mailbox: &Mailbox<Event>) {
        let Some(lifetime) = signaling::token_lifetime_secs(token) else {
            self.renewal = Renewal::Never;
            return;
        };
        // A minute ahead, or a fifth of the lifetime if that is shorter (short-lived tokens).
        let wait_ms = ((lifetime - RENEW_AHEAD_SECS.min(lifetime / 5.0)) * 1000.0) as i32;
        self.renew_after(wait_ms, 0, mailbox);
    }

    /// Renews the token in `wait_ms`; `failures` counts the tries before that failed.
    fn renew_after(&mut self, wait_ms: i32, failures: u32, mailbox: &Mailbox<Event>) {
        self.renewal = Renewal::Waiting {
            _timer: mailbox.post_after(wait_ms, Event::RenewalDue),
            failures,
        };
    }
}

/// Fetches the ICE settings for `session`'s connections: the server's ICE servers with our TURN
/// credentials, and `?ice=relay` if the page asked for relayed candidates only. Posted as `then`
/// while the returned task lives.
fn fetch_ice(
    mailbox: &Mailbox<Event>,
    session: &Session,
    relay_only: bool,
    then: fn(IceSettings) -> Event,
) -> Task {
    let (session, to) = (session.clone(), mailbox.clone());
    Task::spawn(mailbox, async move {
        let config = session.config().await.unwrap_or_else(|err| {
            // Host candidates alone still connect peers on one network.
            dom::warn(&format!(
                "no ICE configuration ({err}); using host candidates only"
            ));
            ClientConfig::default()
        });
        to.post(Event::ServerKey(config.cert_key));
        then(IceSettings { config, relay_only })
    })
}

/// Opens a stream for `session`, numbered; its events are posted as [`Event::Stream`].
fn open_stream(
    next_stream: &mut u64,
    mailbox: &Mailbox<Event>,
    session: &Session,
) -> Result<(EventStream, u64), SignalingError> {
    *next_stream += 1;
    let stream_no = *next_stream;
    let stream = session.connect(mailbox.hook(move |event| Event::Stream(stream_no, event)))?;
    Ok((stream, stream_no))
}

/// The mesh's relay: each signal becomes a POST to the server, sent in the background.
fn relay_through(session: Session) -> impl Fn(&PeerId, Signal) + 'static {
    move |to: &PeerId, signal: Signal| {
        let body = match signal.to_json() {
            Ok(body) => body,
            Err(err) => return dom::warn(&format!("could not encode a signal: {err}")),
        };
        let (session, to, event) = (session.clone(), to.clone(), signal.event());
        spawn_local(async move {
            if let Err(err) = session.relay(&to, event, body).await {
                dom::warn(&format!("relay of {} to {to} failed: {err}", event.name()));
            }
        });
    }
}

/// Trusts certificates by our server's key, and by the keys it had before (remembered in
/// `localStorage`): a server restarted without `TOKEN_SECRET` certifies with a new key, and the
/// work of people certified by the old one must still check here.
fn trust_servers(board: &mut Board, current: Option<PublicKey>) {
    let storage = dom::window()
        .ok()
        .and_then(|w| w.local_storage().ok().flatten());
    let remembered: Vec<PublicKey> = storage
        .as_ref()
        .and_then(|s| s.get_item(SERVER_KEYS).ok().flatten())
        .and_then(|text| wire::decode(&text).ok())
        .unwrap_or_default();
    remembered
        .into_iter()
        .chain(current)
        .for_each(|key| board.trust_server(key));
    if let (Some(storage), Ok(text)) = (storage, wire::encode(&board.trusted_servers())) {
        let _ = storage.set_item(SERVER_KEYS, &text);
    }
}

/// How long to wait before the next try after `failures` failed ones: 1 s, doubling, at most
/// [`MAX_RETRY_MS`].
fn backoff_ms(failures: u32) -> i32 {
    (1000 << failures.min(5)).min(MAX_RETRY_MS)
}

/// `text` with its first letter in capitals (the server's messages start in lower case, to follow
/// a prefix; alone on the status line they start a sentence).
fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
