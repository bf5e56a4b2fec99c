//! The app: one page's user, room and session, wired together.
//!
//! Start-up order: build the UI and the board (so drawing works at once, even offline), then sign
//! in, fetch the ICE configuration, open the stream, and join the room each time the stream says
//! `connected`. Peers arrive and leave through the stream; strokes never touch the server.
//!
//! A session ends when the browser gives up on its stream (the server refused the token) or just
//! before its token expires (after that, relays and stream reconnects would be refused); the app
//! then signs in again, backing off after failures. Peers already connected keep drawing with us
//! while the server is away.

use crate::board::Board;
use crate::canvas::{Canvas, PenInput, PointerInput};
use crate::dom::{self, Listener};
use crate::mesh::{Mesh, PeerSummary, Signal};
use crate::signaling::{self, EventStream, ServerEvent, Session};
use crate::ui::{Status, Ui};
use crate::wire;
use shared::color::Color;
use shared::protocol::{ClientConfig, validate_username};
use shared::room::{ROOM_ID_RANDOM_BYTES, RoomId};
use shared::{PeerId, User};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;

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
    username: String,
    room: Result<RoomId, String>,
    /// The signed-in session, once there is one.
    live: RefCell<Option<Live>>,
    /// Counts sign-ins; a sign-in (or a timer) that finds a newer one running gives way.
    attempt: Cell<u64>,
    /// Sign-in failures since the stream last said `connected`, for the back-off.
    failures: Cell<u32>,
    me: RefCell<Option<User>>,
    _listeners: Vec<Listener>,
    _input: PointerInput,
}

/// One signed-in session: its token, the mesh built on it, and its stream. Tokens expire and
/// name a fresh peer id each time, so renewing means starting a new session: the server then
/// introduces us to the room again under the new id, and the old connections close.
struct Live {
    session: Session,
    mesh: Mesh,
    _stream: EventStream,
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
        // Until the server names us, local strokes are filed under an id no server issues.
        let board = Rc::new(RefCell::new(Board::new(
            canvas,
            PeerId(String::new()),
            color,
        )));
        let room = room_from(&window);

        let app = Rc::new_cyclic(|me: &Weak<App>| {
            let input = {
                let me = me.clone();
                PointerInput::attach(ui.canvas(), move |input| {
                    if let Some(app) = me.upgrade() {
                        app.pen(input);
                    }
                })
            };
            let on_resize = {
                let board = Rc::downgrade(&board);
                // Browsers fire `resize` at most once a frame, so repainting on each is fine.
                Listener::new(&window, "resize", move |_| {
                    if let Some(Ok(mut board)) =
                        board.upgrade().as_deref().map(RefCell::try_borrow_mut)
                    {
                        board.fit();
                    }
                })
            };
            let on_pick = {
                let board = Rc::downgrade(&board);
                ui.on_pick(move |color| {
                    if let Some(Ok(mut board)) =
                        board.upgrade().as_deref().map(RefCell::try_borrow_mut)
                    {
                        board.set_color(color);
                    }
                })
            };
            App {
                ui,
                board,
                username,
                room,
                live: RefCell::new(None),
                attempt: Cell::new(0),
                failures: Cell::new(0),
                me: RefCell::new(None),
                _listeners: vec![on_resize, on_pick],
                _input: input,
            }
        });
        if let Some(body) = dom::document()?.body() {
            body.set_attribute("data-ready", "true")?;
        }
        APP.with(|slot| *slot.borrow_mut() = Some(app.clone()));
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
        let config = signaling::fetch_config().await.unwrap_or_else(|err| {
            // Host candidates alone still connect peers on one network.
            warn(&format!(
                "no ICE configuration ({err}); using host candidates only"
            ));
            ClientConfig::default()
        });
        let access = signaling::request_access(&self.username).await;
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
        if let Ok(mut board) = self.board.try_borrow_mut() {
            board.set_me(access.user.id.clone());
        }
        self.ui.set_username(&access.user.username);
        *self.me.borrow_mut() = Some(access.user.clone());

        let session = Session::new(&access.token);
        let me = Rc::downgrade(&self);
        let mesh = Mesh::new(
            &config,
            relay_through(session.clone()),
            {
                let board = Rc::downgrade(&self.board);
                move |from: &PeerId, data: JsValue| receive(&board, from, &data)
            },
            {
                let me = me.clone();
                move |peers: &[PeerSummary]| {
                    if let Some(app) = me.upgrade() {
                        app.ui.set_peers(peers);
                    }
                }
            },
        );
        let stream = session.connect({
            let room = room.clone();
            move |event| {
                if let Some(app) = me.upgrade() {
                    app.on_server_event(event, attempt, &room);
                }
            }
        });
        match stream {
            Ok(stream) => {
                let old = self.live.borrow_mut().replace(Live {
                    session,
                    mesh,
                    _stream: stream,
                });
                drop(old);
            }
            Err(err) => {
                let why = format!("No server stream: {err}");
                return self.retry(room, attempt, Status::Error, &why);
            }
        }
        // Renew a little before the token expires, while relays and reconnects still work.
        if let Some(lifetime) = signaling::token_lifetime_secs(&access.token) {
            let wait_ms = ((lifetime - RENEW_AHEAD_SECS).max(RENEW_AHEAD_SECS) * 1000.0) as i32;
            let me = Rc::downgrade(&self);
            spawn_local(async move {
                dom::sleep(wait_ms).await;
                if let Some(app) = me.upgrade()
                    && app.attempt.get() == attempt
                {
                    app.connect(room).await;
                }
            });
        }
    }

    /// Shows why the session ended and signs in again later, waiting longer after each failure.
    fn retry(self: &Rc<Self>, room: RoomId, attempt: u64, status: Status, why: &str) {
        let failures = self.failures.get();
        self.failures.set(failures + 1);
        let wait_ms = (1000 << failures.min(5)).min(MAX_RETRY_MS);
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

    fn on_server_event(self: &Rc<Self>, event: ServerEvent, attempt: u64, room: &RoomId) {
        let (session, mesh) = match &*self.live.borrow() {
            Some(live) if self.attempt.get() == attempt => {
                (live.session.clone(), live.mesh.clone())
            }
            _ => return,
        };
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
                        app.retry(
                            room,
                            attempt,
                            Status::Error,
                            &format!("Could not join: {err}"),
                        );
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

    /// Local pen input: into the document, onto the canvas, out to every peer.
    fn pen(&self, input: PenInput) {
        let messages = match self.board.try_borrow_mut() {
            Ok(mut board) => board.pen(input),
            Err(_) => return,
        };
        let Some(mesh) = self.live.borrow().as_ref().map(|live| live.mesh.clone()) else {
            return;
        };
        for message in &messages {
            match wire::encode(message) {
                Ok(text) => {
                    mesh.broadcast(&text);
                }
                Err(err) => warn(&format!("could not encode a stroke message: {err}")),
            }
        }
    }
}

/// A peer's data: checked and drawn, or dropped with a warning.
fn receive(board: &Weak<RefCell<Board>>, from: &PeerId, data: &JsValue) {
    let Some(board) = board.upgrade() else {
        return;
    };
    let Ok(mut board) = board.try_borrow_mut() else {
        warn("board busy; peer message dropped");
        return;
    };
    if let Err(err) = board.receive(from, data) {
        warn(&format!("dropped a message from peer {from}: {err}"));
    }
}

/// The mesh's relay: each signal becomes a POST to the server, sent in the background.
fn relay_through(session: Session) -> impl Fn(&PeerId, Signal) + 'static {
    move |to: &PeerId, signal: Signal| {
        let body = match signal.to_json() {
            Ok(body) => body,
            Err(err) => return warn(&format!("could not encode a signal: {err}")),
        };
        let (session, to, event) = (session.clone(), to.clone(), signal.event());
        spawn_local(async move {
            if let Err(err) = session.relay(&to, event, body).await {
                warn(&format!("relay of {} to {to} failed: {err}", event.name()));
            }
        });
    }
}

/// The name to use: `?name=` if it is a valid username, otherwise `user` and five random digits
/// (the tutorial's default).
pub fn username_from(window: &web_sys::Window) -> String {
    let asked = window
        .location()
        .search()
        .ok()
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("name"));
    if let Some(asked) = asked {
        match validate_username(&asked) {
            Ok(name) => return name.to_owned(),
            Err(why) => warn(&format!("ignoring ?name=: {why}")),
        }
    }
    format!(
        "user{:05}",
        (js_sys::Math::random() * 100_000.0) as u32 % 100_000
    )
}

/// The room named by the page's path. A bare `/` (which the server redirects, but `trunk serve`
/// does not) gets a fresh random room, written into the address bar so it can be shared.
pub fn room_from(window: &web_sys::Window) -> Result<RoomId, String> {
    let location = window.location();
    let path = location.pathname().unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(&path);
    if !path.is_empty() {
        return RoomId::parse(path).map_err(|why| format!("Bad room link: {why}"));
    }
    let mut bytes = [0u8; ROOM_ID_RANDOM_BYTES];
    window
        .crypto()
        .and_then(|crypto| crypto.get_random_values_with_u8_array(&mut bytes))
        .map_err(|_| "No room in the link, and no randomness to make one".to_owned())?;
    let room = RoomId::from_random_bytes(bytes);
    if let Ok(history) = window.history() {
        let search = location.search().unwrap_or_default();
        let _ =
            history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("/{room}{search}")));
    }
    Ok(room)
}

fn warn(what: &str) {
    web_sys::console::warn_1(&JsValue::from_str(what));
}
