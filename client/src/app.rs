//! The app: one page's user, room and session, wired together.
//!
//! Start-up order: build the UI and the board (so drawing works at once, even offline), then sign
//! in, fetch the ICE configuration, open the stream, and join the room each time the stream says
//! `connected`. Peers arrive and leave through the stream; strokes never touch the server.
//!
//! Shortly before its token expires, a session trades it for a new one naming the same peer
//! (`POST /refresh`) and reopens its stream with it: the server swaps the stream and keeps us in
//! the room, so peers notice nothing and our id (our strokes, our undo history) lives on. A
//! session ends when the server refuses its token, on the stream (the browser then gives up on
//! it) or on a refresh; the app then signs in again, backing off after failures. A refresh that
//! cannot reach the server is tried again later instead: signing in again would close every peer
//! connection, and peers already connected keep drawing with us while the server is away.

use crate::board::{Board, Received};
use crate::canvas::{Canvas, PenInput, PointerInput};
use crate::dom::{self, Listener};
use crate::export;
use crate::gestures::{Gesture, Gestures};
use crate::location::{relay_only_from, room_from, username_from};
use crate::mesh::{IceSettings, Mesh, PeerSummary, Signal};
use crate::presence::Presence;
use crate::signaling::{self, EventStream, ServerEvent, Session, SignalingError};
use crate::storage::{self, RoomStore, StorageError};
use crate::tools::Tool;
use crate::ui::{Status, StorageTask, Ui};
use crate::wire;
use shared::color::Color;
use shared::document::Op;
use shared::document::VersionVector;
use shared::protocol::ClientConfig;
use shared::room::RoomId;
use shared::signing::{Keypair, Proof, PublicKey};
use shared::sync::{CURSOR_RATE_HZ, ChannelMessage, MAX_MESSAGE_BYTES, SYNC_REFILL_MS, SyncBudget};
use shared::view::View;
use shared::{PeerId, User};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use web_sys::KeyboardEvent;

thread_local! {
    /// The running app. It lives as long as the page, like the listeners it owns.
    static APP: RefCell<Option<Rc<App>>> = const { RefCell::new(None) };
}

/// Longest wait between two attempts to sign in again, in milliseconds.
const MAX_RETRY_MS: i32 = 30_000;
/// How long before its token expires a session is renewed, in seconds.
const RENEW_AHEAD_SECS: f64 = 60.0;

/// Everything one page runs.
pub struct App {
    ui: Ui,
    board: Rc<RefCell<Board>>,
    presence: RefCell<Presence>,
    username: String,
    /// `?ice=relay`: connect to peers through TURN relays only.
    relay_only: bool,
    room: Result<RoomId, String>,
    /// Where the room's drawing is saved (none without a room).
    store: Option<RefCell<RoomStore>>,
    /// The signed-in session, once there is one.
    live: RefCell<Option<Live>>,
    /// Counts sign-ins; a sign-in (or a timer) that finds a newer one running gives way.
    attempt: Cell<u64>,
    /// Sign-in failures since the stream last said `connected`, for the back-off.
    failures: Cell<u32>,
    /// Numbers the streams this page opens (see `Live::stream_no`).
    next_stream: Cell<u64>,
    me: RefCell<Option<User>>,
    /// The key my ops are signed with (the board holds its secret half), certified at sign-in.
    public_key: PublicKey,
    /// The space bar is held: a drag pans instead of drawing.
    space: Cell<bool>,
    /// Where the open text input's text goes (screen point), while it is open.
    text_at: Cell<Option<(f32, f32)>>,
    /// A save is scheduled.
    save_pending: Cell<bool>,
    /// When my cursor last went out (`performance.now()`), for the rate limit.
    last_cursor_ms: Cell<f64>,
    /// The cursor message waiting for the rate limit, if any.
    cursor_pending: RefCell<Option<ChannelMessage>>,
    /// How often each peer may ask for a sync.
    sync_budget: RefCell<SyncBudget>,
    /// The latest hello of each peer over its budget, answered when the budget allows.
    deferred_hellos: RefCell<std::collections::HashMap<PeerId, VersionVector>>,
    /// The animation-frame callback (lives as long as the page).
    frame: Closure<dyn FnMut(f64)>,
    frame_requested: Cell<bool>,
    _listeners: Vec<Listener>,
    _input: PointerInput,
    _gestures: Gestures,
}

/// What a menubar button does.
type Action = fn(&Rc<App>);

/// A callback that reaches the app through a `Weak`, doing nothing once the app is gone.
fn hook<A>(me: &Weak<App>, f: impl Fn(&Rc<App>, A) + 'static) -> impl Fn(A) + 'static {
    let me = me.clone();
    move |a| {
        if let Some(app) = me.upgrade() {
            f(&app, a);
        }
    }
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
}

impl Drop for Live {
    fn drop(&mut self) {
        self.mesh.clear();
    }
}

impl App {
    /// Builds the app inside `mount` and starts connecting.
    pub fn launch(mount: &web_sys::Element) -> Result<(), JsValue> {
        let window = dom::window()?;
        let username = username_from(&window);
        let color = Color::from_palette((js_sys::Math::random() * f64::from(u32::MAX)) as u32);
        let ui = Ui::mount(mount, &username, color)?;
        let canvas = Canvas::new(ui.canvas().clone())?;
        // The key my ops are signed with, for this page load. `getRandomValues` exists in every
        // context (`crypto.subtle` only in secure ones), so plain-HTTP LANs sign too. Until the
        // server names us, ops are filed under the key's own id.
        let mut seed = [0u8; 32];
        window
            .crypto()?
            .get_random_values_with_u8_array(&mut seed)?;
        let key = Keypair::from_seed(seed);
        let public_key = key.public();
        let board = Rc::new(RefCell::new(Board::new(canvas, key, color)));
        let room = room_from(&window);
        let store = room.as_ref().ok().map(RoomStore::new);
        let presence = RefCell::new(Presence::new(ui.cursors().clone()));

        let app = Rc::new_cyclic(|me: &Weak<App>| {
            let input = PointerInput::attach(ui.canvas(), hook(me, |app, input| app.pen(input)));
            let gestures = Gestures::attach(ui.canvas(), hook(me, |app, g| app.gesture(g)));
            let mut listeners = vec![
                // Browsers fire `resize` at most once a frame; the repaint waits for the frame.
                Listener::new(&window, "resize", hook(me, |app, _| app.update(Board::fit))),
                Listener::new(&window, "keydown", hook(me, |app, e| app.key(&e, true))),
                Listener::new(&window, "keyup", hook(me, |app, e| app.key(&e, false))),
                Listener::new(&window, "blur", hook(me, |app, _| app.space.set(false))),
                Listener::new(&window, "pagehide", hook(me, |app, _| app.save_now())),
                ui.on_tool(hook(me, |app, tool| app.set_tool(tool))),
                ui.on_width(hook(me, |app, width| app.update(|b| b.set_width(width)))),
                Listener::new(
                    ui.text_input(),
                    "keydown",
                    hook(me, |app, e: web_sys::Event| app.text_key(&e)),
                ),
                Listener::new(
                    ui.text_input(),
                    "blur",
                    hook(me, |app, _| app.commit_text()),
                ),
            ];
            listeners.extend(ui.on_pick(hook(me, |app, color| {
                app.update(|b| b.set_color(color));
            })));
            let buttons: [(&str, Action); 8] = [
                ("undo", |app| app.undo()),
                ("redo", |app| app.redo()),
                ("clear", |app| app.ui.open_clear_dialog()),
                ("clear-cancel", |app| app.ui.close_clear_dialog()),
                ("clear-confirm", |app| app.clear()),
                ("export-png", |app| app.export(export::Format::Png)),
                ("export-svg", |app| app.export(export::Format::Svg)),
                ("zoom", |app| app.set_view(View::default())),
            ];
            for (id, action) in buttons {
                let on_click = hook(me, move |app, ()| action(app));
                match ui.on_click(id, move || on_click(())) {
                    Ok(listener) => listeners.push(listener),
                    Err(err) => web_sys::console::warn_2(&"button missing:".into(), &err),
                }
            }
            let frame = {
                let me = me.clone();
                Closure::<dyn FnMut(f64)>::new(move |_: f64| {
                    if let Some(app) = me.upgrade() {
                        app.frame();
                    }
                })
            };
            App {
                ui,
                board,
                presence,
                username,
                relay_only: relay_only_from(&window),
                room,
                store: store.map(RefCell::new),
                live: RefCell::new(None),
                attempt: Cell::new(0),
                failures: Cell::new(0),
                next_stream: Cell::new(0),
                me: RefCell::new(None),
                space: Cell::new(false),
                text_at: Cell::new(None),
                save_pending: Cell::new(false),
                last_cursor_ms: Cell::new(f64::NEG_INFINITY),
                cursor_pending: RefCell::new(None),
                public_key,
                sync_budget: RefCell::new(SyncBudget::default()),
                deferred_hellos: RefCell::default(),
                frame,
                frame_requested: Cell::new(false),
                _listeners: listeners,
                _input: input,
                _gestures: gestures,
            }
        });
        APP.with(|slot| *slot.borrow_mut() = Some(app.clone()));
        app.request_frame();
        // The saved drawing arrives while the page is already usable, and merges with whatever
        // was drawn or received meanwhile.
        if let Ok(room) = app.room.clone() {
            spawn_local(app.clone().load_saved(room));
        }
        if let Some(body) = dom::document()?.body() {
            body.set_attribute("data-ready", "true")?;
        }
        match app.room.clone() {
            Ok(room) => spawn_local(app.connect(room)),
            Err(why) => app.ui.set_status(Status::Error, &why),
        }
        Ok(())
    }

    /// Signs in, builds the mesh and opens the stream, replacing any earlier session.
    async fn connect(self: Rc<Self>, room: RoomId) {
        let attempt = self.attempt.get() + 1;
        self.attempt.set(attempt);
        // Closing the old stream makes the server drop our old id from the room. (Dropped
        // outside the borrow: closing the mesh updates the presence list.)
        let old = self.live.borrow_mut().take();
        drop(old);
        self.ui.set_status(Status::Connecting, "Connecting…");
        let access = signaling::request_access(&self.username, self.public_key).await;
        if self.attempt.get() != attempt {
            return;
        }
        let access = match access {
            Ok(access) => access,
            Err(err) => {
                let why = format!("Could not sign in: {err}");
                return self.retry(room, attempt, Status::Error, &why);
            }
        };
        let certificate = access.certificate.clone();
        let finished = self.update(|board| {
            let finished = board.set_me(access.user.id.clone());
            match certificate {
                Some(cert) if cert.peer == access.user.id && cert.key == board.public_key() => {
                    board.certify(cert)
                }
                _ => {
                    crate::dom::warn("the server did not certify our key: peers will drop our ops")
                }
            }
            finished
        });
        self.broadcast_ops(finished);
        self.ui.set_username(&access.user.username);
        *self.me.borrow_mut() = Some(access.user.clone());

        let session = Session::new(&access.token);
        let ice = self.ice_settings(&session).await;
        if self.attempt.get() != attempt {
            return;
        }
        let me = Rc::downgrade(&self);
        let mesh = Mesh::new(
            &ice,
            relay_through(session.clone()),
            {
                let me = me.clone();
                move |from: &PeerId, data: JsValue| {
                    if let Some(app) = me.upgrade() {
                        app.receive(from, &data);
                    }
                }
            },
            {
                let me = me.clone();
                move |peers: &[PeerSummary]| {
                    if let Some(app) = me.upgrade() {
                        app.show_peers(peers);
                    }
                }
            },
        );
        mesh.set_on_open({
            let me = me.clone();
            move |peer: &PeerId| {
                if let Some(app) = me.upgrade() {
                    app.say_hello(peer);
                }
            }
        });
        match self.open_stream(&session, &room, attempt) {
            Ok((stream, stream_no)) => {
                let old = self.live.borrow_mut().replace(Live {
                    session,
                    mesh,
                    stream,
                    stream_no,
                    retiring: None,
                });
                drop(old);
            }
            Err(err) => {
                let why = format!("No server stream: {err}");
                return self.retry(room, attempt, Status::Error, &why);
            }
        }
        self.schedule_refresh(room, attempt, &access.token);
    }

    /// The ICE settings for this session's connections: the server's ICE servers with our TURN
    /// credentials, and `?ice=relay` if the page asked for relayed candidates only.
    async fn ice_settings(&self, session: &Session) -> IceSettings {
        let config = session.config().await.unwrap_or_else(|err| {
            // Host candidates alone still connect peers on one network.
            crate::dom::warn(&format!(
                "no ICE configuration ({err}); using host candidates only"
            ));
            ClientConfig::default()
        });
        self.trust_servers(config.cert_key);
        IceSettings {
            config,
            relay_only: self.relay_only,
        }
    }

    /// Trusts certificates by our server's key, and by the keys it had before (remembered in
    /// `localStorage`): a server restarted without `TOKEN_SECRET` certifies with a new key, and the
    /// work of people certified by the old one must still check here.
    fn trust_servers(&self, current: Option<PublicKey>) {
        let storage = dom::window()
            .ok()
            .and_then(|w| w.local_storage().ok().flatten());
        let remembered: Vec<PublicKey> = storage
            .as_ref()
            .and_then(|s| s.get_item(SERVER_KEYS).ok().flatten())
            .and_then(|text| wire::decode(&text).ok())
            .unwrap_or_default();
        let keys = self.update(|board| {
            remembered
                .into_iter()
                .chain(current)
                .for_each(|key| board.trust_server(key));
            board.trusted_servers().to_vec()
        });
        if let (Some(storage), Ok(text)) = (storage, wire::encode(&keys)) {
            let _ = storage.set_item(SERVER_KEYS, &text);
        }
    }

    /// Opens a stream for `session`, numbered; its events reach `on_server_event`.
    fn open_stream(
        self: &Rc<Self>,
        session: &Session,
        room: &RoomId,
        attempt: u64,
    ) -> Result<(EventStream, u64), signaling::SignalingError> {
        let stream_no = self.next_stream.get() + 1;
        self.next_stream.set(stream_no);
        let (me, room) = (Rc::downgrade(self), room.clone());
        let stream = session.connect(move |event| {
            if let Some(app) = me.upgrade() {
                app.on_server_event(event, attempt, stream_no, &room);
            }
        })?;
        Ok((stream, stream_no))
    }

    /// Shortly before `token` expires, trades it for a new one naming the same peer and moves
    /// the session to a new stream with it (see the module docs).
    fn schedule_refresh(self: &Rc<Self>, room: RoomId, attempt: u64, token: &str) {
        let Some(lifetime) = signaling::token_lifetime_secs(token) else {
            return;
        };
        // A minute ahead, or a fifth of the lifetime if that is shorter (short-lived tokens).
        let wait_ms = ((lifetime - RENEW_AHEAD_SECS.min(lifetime / 5.0)) * 1000.0) as i32;
        self.refresh_after(room, attempt, wait_ms, 0);
    }

    /// Refreshes the session's token in `wait_ms`; `failures` counts the tries before that
    /// failed. Only the server's refusal of the token (401, 403) signs in anew. Any other failure
    /// (no server, a proxy with no server behind it) keeps the session, its mesh and its stream
    /// (which the browser keeps reconnecting), and tries again later: signing in anew would
    /// close every peer connection while the server is away, the moment they matter most. If
    /// the server stays away until the token has expired, it refuses the token on its return,
    /// here or on the stream, and that signs in anew.
    fn refresh_after(self: &Rc<Self>, room: RoomId, attempt: u64, wait_ms: i32, failures: u32) {
        let me = Rc::downgrade(self);
        spawn_local(async move {
            dom::sleep(wait_ms).await;
            let Some(app) = me.upgrade().filter(|app| app.attempt.get() == attempt) else {
                return;
            };
            let Some(session) = app.live.borrow().as_ref().map(|l| l.session.clone()) else {
                return;
            };
            let refreshed = session.refresh().await;
            if app.attempt.get() != attempt {
                return;
            }
            let access = match refreshed {
                Ok(access) => access,
                // The server refused the token: expired, or signed with a secret it no longer
                // has (a restart without TOKEN_SECRET).
                Err(err @ SignalingError::Status(401 | 403, _)) => {
                    crate::dom::warn(&format!("token refresh failed ({err}); signing in again"));
                    return app.connect(room).await;
                }
                // No server (or a proxy's 502 in front of none): the session goes on as it is.
                Err(err) => {
                    let wait_ms = backoff_ms(failures);
                    crate::dom::warn(&format!(
                        "token refresh failed ({err}); keeping the session, trying again in {}s",
                        wait_ms / 1000
                    ));
                    return app.refresh_after(room, attempt, wait_ms, failures + 1);
                }
            };
            match app.open_stream(&session, &room, attempt) {
                Ok((stream, stream_no)) => {
                    let mesh = app.live.borrow_mut().as_mut().map(|live| {
                        let old = std::mem::replace(&mut live.stream, stream);
                        live.retiring = Some((old, live.stream_no));
                        live.stream_no = stream_no;
                        live.mesh.clone()
                    });
                    app.schedule_refresh(room, attempt, &access.token);
                    // TURN credentials end with the token they came with: renew them too.
                    let ice = app.ice_settings(&session).await;
                    if let Some(mesh) = mesh
                        && app.attempt.get() == attempt
                    {
                        mesh.set_ice(&ice);
                    }
                }
                Err(err) => {
                    crate::dom::warn(&format!(
                        "no stream after the token refresh ({err}); signing in again"
                    ));
                    app.connect(room).await;
                }
            }
        });
    }

    /// Shows why the session ended and signs in again later, waiting longer after each failure.
    fn retry(self: &Rc<Self>, room: RoomId, attempt: u64, status: Status, why: &str) {
        let failures = self.failures.get();
        self.failures.set(failures + 1);
        // A full room frees only when someone leaves: look again now and then, not at once.
        let wait_ms = match status {
            Status::Full => FULL_ROOM_RETRY_MS,
            _ => backoff_ms(failures),
        };
        self.ui
            .set_status(status, &format!("{why} · retrying in {}s", wait_ms / 1000));
        let me = Rc::downgrade(self);
        spawn_local(async move {
            dom::sleep(wait_ms).await;
            if let Some(app) = me.upgrade()
                && app.attempt.get() == attempt
            {
                app.connect(room).await;
            }
        });
    }

    fn on_server_event(
        self: &Rc<Self>,
        event: ServerEvent,
        attempt: u64,
        stream_no: u64,
        room: &RoomId,
    ) {
        let (session, mesh, retired) = match &mut *self.live.borrow_mut() {
            Some(live) if self.attempt.get() == attempt && live.stream_no == stream_no => {
                // Once the server delivers to this stream, the one it replaced can go.
                let retired = if matches!(event, ServerEvent::Connected(_)) {
                    live.retiring.take()
                } else {
                    None
                };
                (live.session.clone(), live.mesh.clone(), retired)
            }
            // The stream being replaced: what the server sent it before the new one reached the
            // server counts (dropping it lost a newcomer's introduction and offer). Its own
            // connecting and breaking are no longer the session's business.
            Some(live)
                if self.attempt.get() == attempt
                    && live
                        .retiring
                        .as_ref()
                        .is_some_and(|(_, no)| *no == stream_no)
                    && !matches!(event, ServerEvent::Connected(_) | ServerEvent::Lost { .. }) =>
            {
                (live.session.clone(), live.mesh.clone(), None)
            }
            _ => return,
        };
        // Closed outside the borrow: tearing a stream down must not find `live` borrowed.
        drop(retired);
        match event {
            ServerEvent::Connected(_) => {
                // Also after the browser reconnected the stream: joining again is harmless, and
                // peers we still have stay as they are.
                self.failures.set(0);
                self.ui
                    .set_status(Status::Connected, &format!("Connected · room {room}"));
                let (room, app) = (room.clone(), Rc::downgrade(self));
                spawn_local(async move {
                    if let Err(err) = session.join(&room).await
                        && let Some(app) = app.upgrade()
                        && app.attempt.get() == attempt
                    {
                        let (status, why) = match &err {
                            // Somebody may leave: say so plainly, and look again later.
                            SignalingError::RoomFull(why) => (Status::Full, capitalized(why)),
                            _ => (Status::Error, format!("Could not join: {err}")),
                        };
                        app.retry(room, attempt, status, &why);
                    }
                });
            }
            ServerEvent::AddPeer(add) => {
                if &add.room_id != room || self.is_me(&add.peer.id) {
                    return;
                }
                mesh.add_peer(add.peer, add.offer);
            }
            ServerEvent::RemovePeer(remove) => {
                if &remove.room_id == room {
                    mesh.remove_peer(&remove.peer.id);
                }
            }
            ServerEvent::SessionDescription(relayed) => {
                mesh.session_description(&relayed.peer, relayed.data);
            }
            ServerEvent::IceCandidate(relayed) => mesh.ice_candidate(&relayed.peer, relayed.data),
            ServerEvent::Lost { reconnecting: true } => self.ui.set_status(
                Status::Offline,
                "Offline · reconnecting (peers stay connected)",
            ),
            ServerEvent::Lost {
                reconnecting: false,
            } => {
                // The browser gave up on the stream (the server refused our token, say): sign in
                // afresh. Until then, peers already connected keep drawing with us.
                self.retry(
                    room.clone(),
                    attempt,
                    Status::Offline,
                    "Disconnected from the server",
                );
            }
        }
    }

    fn is_me(&self, id: &PeerId) -> bool {
        self.me.borrow().as_ref().is_some_and(|me| &me.id == id)
    }

    /// The current session's mesh, if any.
    fn mesh(&self) -> Option<Mesh> {
        self.live.borrow().as_ref().map(|live| live.mesh.clone())
    }

    /// Runs `f` on the board (unless it is busy: a re-entered callback), then asks for a frame.
    fn update<R: Default>(&self, f: impl FnOnce(&mut Board) -> R) -> R {
        let out = match self.board.try_borrow_mut() {
            Ok(mut board) => f(&mut board),
            Err(_) => {
                crate::dom::warn("board busy; input dropped");
                R::default()
            }
        };
        self.request_frame();
        out
    }

    /// Sends my new ops to every peer: one `ops` message, or several if one would be too large
    /// for a peer to accept.
    fn broadcast_ops(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let Some(mesh) = self.mesh() else {
            return;
        };
        let proof = self.update(|b| b.seal(&ops, now_ms()));
        let texts = match encode_ops(ops, proof) {
            Ok(texts) => texts,
            Err(err) => return crate::dom::warn(&format!("could not encode ops: {err}")),
        };
        for text in texts {
            mesh.broadcast(&text);
        }
    }

    /// Local pointer input: the current tool on the board, the ops out to every peer. With the
    /// space bar held a drag pans; with the text tool a press opens the text input.
    fn pen(&self, input: PenInput) {
        if let PenInput::Down(p) = &input {
            if self.text_at.get().is_some() {
                self.commit_text();
            }
            if self.space.get() {
                let ops = self.update(|b| b.start_pan(*p));
                return self.broadcast_ops(ops);
            }
            let (tool, size, color) = match self.board.try_borrow() {
                Ok(b) => (b.tool(), b.text_screen_size(), b.color()),
                Err(_) => return,
            };
            if tool == Tool::Text {
                self.text_at.set(Some((p.x, p.y)));
                self.ui.open_text((p.x, p.y), size, color);
                return;
            }
        }
        let ops = self.update(|b| b.pen(input));
        self.broadcast_ops(ops);
    }

    /// Navigation and hover on the canvas.
    fn gesture(&self, gesture: Gesture) {
        let Ok(mut view) = self.board.try_borrow().map(|b| b.view()) else {
            return;
        };
        match gesture {
            Gesture::Zoom { at, factor } => view.zoom_at(at.0, at.1, factor),
            Gesture::Pan(dx, dy) => view.pan_by(dx, dy),
            Gesture::PinchStart => {
                // The first finger's stroke was the start of a pinch, not a drawing: end it.
                let ops = self.update(|b| b.pen(PenInput::Up));
                return self.broadcast_ops(ops);
            }
            Gesture::Hover(at) => return self.send_cursor(at),
        }
        self.set_view(view);
    }

    fn set_view(&self, view: View) {
        self.update(|b| b.set_view(view));
        self.ui.set_zoom(view.zoom);
        if let Ok(mut presence) = self.presence.try_borrow_mut() {
            presence.reposition(&view);
        }
    }

    /// Sends my cursor (a screen point, or none when it left the canvas) to every peer, at most
    /// [`CURSOR_RATE_HZ`] times a second. A position that comes too soon waits for the end of
    /// the interval (the latest wins), so where the pointer stops is always sent.
    fn send_cursor(&self, at: Option<(f32, f32)>) {
        let Ok((view, color)) = self.board.try_borrow().map(|b| (b.view(), b.color())) else {
            return;
        };
        let message = ChannelMessage::Cursor {
            at: at.map(|(x, y)| view.to_world(x, y)),
            color,
        };
        let interval = 1000.0 / CURSOR_RATE_HZ;
        let wait = self.last_cursor_ms.get() + interval - now_ms();
        if wait <= 0.0 {
            self.cursor_pending.replace(None);
            return self.flush_cursor(message);
        }
        // Already waiting: the newer message replaces the older.
        if self.cursor_pending.replace(Some(message)).is_some() {
            return;
        }
        let me = APP.with(|slot| slot.borrow().as_ref().map(Rc::downgrade));
        spawn_local(async move {
            dom::sleep(wait.ceil() as i32).await;
            if let Some(app) = me.and_then(|me| me.upgrade())
                && let Some(message) = app.cursor_pending.take()
            {
                app.flush_cursor(message);
            }
        });
    }

    fn flush_cursor(&self, message: ChannelMessage) {
        self.last_cursor_ms.set(now_ms());
        if let (Some(mesh), Ok(text)) = (self.mesh(), wire::encode(&message)) {
            mesh.broadcast_cursor(&text);
        }
    }

    fn set_tool(&self, tool: Tool) {
        if self.text_at.get().is_some() {
            self.commit_text();
        }
        let ops = self.update(|b| b.set_tool(tool));
        self.broadcast_ops(ops);
    }

    /// Keyboard shortcuts: undo and redo, and the space bar for panning. Keys typed into an
    /// input (the text tool's, the name) are theirs.
    fn key(&self, e: &web_sys::Event, down: bool) {
        let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        let typing = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|t| matches!(t.tag_name().as_str(), "INPUT" | "TEXTAREA"));
        if typing {
            return;
        }
        if e.code() == "Space" {
            // Held keys repeat their keydown; the page must not scroll either way.
            e.prevent_default();
            self.space.set(down);
            return;
        }
        if !down || !(e.ctrl_key() || e.meta_key()) {
            return;
        }
        match (e.key().to_lowercase().as_str(), e.shift_key()) {
            ("z", false) => self.undo(),
            ("z", true) | ("y", false) => self.redo(),
            _ => return,
        }
        e.prevent_default();
    }

    fn undo(&self) {
        let op = self.update(|b| b.undo());
        self.broadcast_ops(op.into_iter().collect());
    }

    fn redo(&self) {
        let op = self.update(|b| b.redo());
        self.broadcast_ops(op.into_iter().collect());
    }

    fn clear(&self) {
        self.ui.close_clear_dialog();
        let op = self.update(|b| Some(b.clear()));
        self.broadcast_ops(op.into_iter().collect());
    }

    /// The text input's keys: Enter adds the text, Escape drops it.
    fn text_key(&self, e: &web_sys::Event) {
        let Some(e) = e.dyn_ref::<KeyboardEvent>() else {
            return;
        };
        match e.key().as_str() {
            "Enter" => {
                e.prevent_default();
                self.commit_text();
            }
            "Escape" => {
                e.prevent_default();
                self.text_at.set(None);
                self.ui.close_text();
            }
            _ => {}
        }
    }

    /// Adds what the text input holds (nothing if it is blank) and closes it.
    fn commit_text(&self) {
        // Taken first: closing the input blurs it, which comes back here.
        let Some(at) = self.text_at.take() else {
            return;
        };
        let text = self.ui.close_text();
        let op = self.update(|b| b.add_text(at, &text));
        self.broadcast_ops(op.into_iter().collect());
    }

    fn export(&self, format: export::Format) {
        if let Ok(board) = self.board.try_borrow() {
            export::download_drawing(board.doc(), format, &self.room_name());
        }
    }

    fn room_name(&self) -> String {
        self.room
            .as_ref()
            .map_or_else(|_| "drawing".to_owned(), ToString::to_string)
    }

    /// A peer's channel opened: tell it what I have, so it sends what I lack.
    fn say_hello(&self, peer: &PeerId) {
        let Ok(hello) = self.board.try_borrow().map(|b| b.hello()) else {
            return;
        };
        match (self.mesh(), wire::encode(&hello)) {
            (Some(mesh), Ok(text)) => {
                mesh.send_to(peer, &text);
            }
            (_, Err(err)) => crate::dom::warn(&format!("could not encode a hello: {err}")),
            _ => {}
        }
    }

    /// A peer's data: checked and acted on, or dropped with a warning.
    fn receive(&self, from: &PeerId, data: &JsValue) {
        let Some(mesh) = self.mesh() else {
            return;
        };
        let received = match self.board.try_borrow_mut() {
            Ok(mut board) => board.receive(from, data, |p| mesh.contains(p)),
            Err(_) => return crate::dom::warn("board busy; peer message dropped"),
        };
        match received {
            Err(err) => crate::dom::warn(&format!("dropped a message from peer {from}: {err}")),
            Ok(Received::Ops { .. }) => self.request_frame(),
            Ok(Received::Ping) => {}
            Ok(Received::Hello(have)) => self.hello(from, have),
            Ok(Received::Cursor { at, color }) => {
                let peers = mesh.peers();
                let Some(peer) = peers.iter().find(|p| &p.id == from) else {
                    return;
                };
                let Ok(view) = self.board.try_borrow().map(|b| b.view()) else {
                    return;
                };
                let recolored = match self.presence.try_borrow_mut() {
                    Ok(mut presence) => presence.cursor(from, &peer.username, at, color, &view),
                    Err(_) => false,
                };
                if recolored {
                    self.show_peers(&peers);
                }
            }
        }
    }

    /// A peer says what it has: send it what it lacks, paced by its channel. Within its sync
    /// budget at once; past it, one deferred answer (to its latest hello) when the budget allows,
    /// so a peer repeating hellos costs one sync per interval and an honest one still gets its
    /// sync after a burst of reconnects.
    fn hello(&self, from: &PeerId, have: VersionVector) {
        if !self.sync_budget.borrow_mut().allow(from, now_ms()) {
            let first = self
                .deferred_hellos
                .borrow_mut()
                .insert(from.clone(), have)
                .is_none();
            if first {
                let (me, from) = (
                    APP.with(|slot| slot.borrow().as_ref().map(Rc::downgrade)),
                    from.clone(),
                );
                spawn_local(async move {
                    dom::sleep(SYNC_REFILL_MS as i32).await;
                    if let Some(app) = me.and_then(|me| me.upgrade()) {
                        let have = app.deferred_hellos.borrow_mut().remove(&from);
                        if let Some(have) = have {
                            app.hello(&from, have);
                        }
                    }
                });
            }
            return;
        }
        let Some(mesh) = self.mesh() else {
            return;
        };
        let batches = self.update(|b| b.sync_reply(&have, |a| a != from && mesh.contains(a)));
        // Encoded one batch at a time, as the channel drains.
        let messages = batches.into_iter().filter_map(|batch| {
            wire::encode(&ChannelMessage::Ops {
                ops: batch.ops,
                proofs: batch.proofs,
                certs: batch.certs,
            })
            .map_err(|err| crate::dom::warn(&format!("could not encode a sync batch: {err}")))
            .ok()
        });
        mesh.send_paced(from, Box::new(messages));
    }

    /// The peers list, with the colours their cursors told us; cursors of peers gone go too.
    fn show_peers(&self, peers: &[PeerSummary]) {
        let Ok(mut presence) = self.presence.try_borrow_mut() else {
            return;
        };
        presence.retain(|id| peers.iter().any(|p| &p.id == id));
        self.sync_budget
            .borrow_mut()
            .retain(|id| peers.iter().any(|p| &p.id == id));
        self.ui.set_peers(peers, |id| presence.color(id));
        drop(presence);
        // A peer who left mid-stroke will not finish it: commit what it drew (and forget what it
        // had waiting).
        let settled = match self.board.try_borrow_mut() {
            Ok(mut board) => board.keep_peers(|id| peers.iter().any(|p| &p.id == id)),
            Err(_) => 0,
        };
        if settled > 0 {
            self.request_frame();
        }
    }

    /// Asks for an animation frame, once until it comes.
    fn request_frame(&self) {
        if self.frame_requested.replace(true) {
            return;
        }
        let requested = dom::window()
            .and_then(|w| w.request_animation_frame(self.frame.as_ref().unchecked_ref()));
        if requested.is_err() {
            self.frame_requested.set(false);
        }
    }

    /// One frame: compose the canvas if anything changed; after a document change, update what
    /// shows its state and schedule a save.
    fn frame(&self) {
        self.frame_requested.set(false);
        let Ok(mut board) = self.board.try_borrow_mut() else {
            // Busy in a callback that will ask again.
            return self.request_frame();
        };
        if board.needs_frame() {
            board.render();
        }
        if !board.take_changed() {
            return;
        }
        let (elements, ops) = (board.visible_count(), board.doc().op_count());
        let history = &board.replica().history;
        self.ui.set_history(history.can_undo(), history.can_redo());
        drop(board);
        if let Some(body) = dom::document().ok().and_then(|d| d.body()) {
            let _ = body.set_attribute("data-elements", &elements.to_string());
            let _ = body.set_attribute("data-ops", &ops.to_string());
        }
        self.schedule_save();
    }

    /// Saves the drawing about half a second after a change (at most that often).
    fn schedule_save(&self) {
        if self.store.is_none() || self.save_pending.replace(true) {
            return;
        }
        let me = APP.with(|slot| slot.borrow().as_ref().map(Rc::downgrade));
        spawn_local(async move {
            dom::sleep(SAVE_DELAY_MS).await;
            if let Some(app) = me.and_then(|me| me.upgrade()) {
                app.save_now();
            }
        });
    }

    /// Saves the drawing now (also as the page goes away: the write starts in a microtask of
    /// `pagehide` itself, and one started there usually completes, see `storage::Save::write`).
    fn save_now(self: &Rc<Self>) {
        self.save_pending.set(false);
        spawn_local(self.clone().save());
    }

    /// Writes what changed since the last save (see `storage`), one write at a time: asked
    /// while one is in flight, it leaves a note, and the running one goes round again when done.
    async fn save(self: Rc<Self>) {
        let Some(store) = &self.store else {
            return;
        };
        loop {
            // The ops are picked and encoded now; the board is free again before the write.
            let begun = match self.board.try_borrow() {
                Ok(board) => store.borrow_mut().begin_save(board.doc(), board.ledger()),
                Err(_) => return self.schedule_save(),
            };
            let save = match begun {
                Ok(Some(save)) => save,
                Ok(None) => return,
                Err(err) => return self.show_storage(StorageTask::Save, Some(&err)),
            };
            let outcome = save.write().await;
            self.show_storage(StorageTask::Save, outcome.as_ref().err());
            if !store.borrow_mut().end_save(save, &outcome) {
                return;
            }
        }
    }

    /// Merges the room's saved drawing into the board (the board takes ops in any order).
    async fn load_saved(self: Rc<Self>, room: RoomId) {
        let Some(store) = &self.store else {
            return;
        };
        match storage::load(&room).await {
            Ok(loaded) => {
                self.update(|board| {
                    board.load(loaded.ops, loaded.proofs, loaded.certs);
                    store.borrow_mut().loaded_into(loaded.records, board.doc());
                });
                if let Some(err) = loaded.problem {
                    self.show_storage(StorageTask::Load, Some(&err));
                }
            }
            Err(err) => self.show_storage(StorageTask::Load, Some(&err)),
        }
    }

    /// Shows a storage failure to the person (or clears the warning `task` showed).
    fn show_storage(&self, task: StorageTask, problem: Option<&StorageError>) {
        let text = problem.map(|err| {
            crate::dom::warn(&format!("storage ({}): {err}", task.as_str()));
            match task {
                StorageTask::Load => format!("Could not load the saved drawing: {err}"),
                StorageTask::Save => format!(
                    "Could not save the drawing: {err}. It stays on screen; export it to keep a copy."
                ),
            }
        });
        self.ui.set_storage_warning(task, text.as_deref());
    }
}

/// How long to wait before the next try after `failures` failed ones: 1 s, doubling, at most
/// [`MAX_RETRY_MS`].
/// How often a page refused for a full room asks again.
const FULL_ROOM_RETRY_MS: i32 = 10_000;

fn backoff_ms(failures: u32) -> i32 {
    (1000 << failures.min(5)).min(MAX_RETRY_MS)
}

/// `performance.now()`, in milliseconds.
fn now_ms() -> f64 {
    dom::window()
        .ok()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Milliseconds between a change and its save.
const SAVE_DELAY_MS: i32 = 500;

/// Where the server keys this browser has trusted are remembered (see `App::trust_servers`).
const SERVER_KEYS: &str = "drawmesh:server-keys";

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
            crate::dom::warn("an op too large to send was dropped");
        }
    }
    Ok(out)
}

/// The mesh's relay: each signal becomes a POST to the server, sent in the background.
fn relay_through(session: Session) -> impl Fn(&PeerId, Signal) + 'static {
    move |to: &PeerId, signal: Signal| {
        let body = match signal.to_json() {
            Ok(body) => body,
            Err(err) => return crate::dom::warn(&format!("could not encode a signal: {err}")),
        };
        let (session, to, event) = (session.clone(), to.clone(), signal.event());
        spawn_local(async move {
            if let Err(err) = session.relay(&to, event, body).await {
                crate::dom::warn(&format!("relay of {} to {to} failed: {err}", event.name()));
            }
        });
    }
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
