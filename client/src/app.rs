//! The app: one page's parts, and the wiring between them.
//!
//! Every browser callback posts a [`Msg`] to the app's [`Mailbox`]; the [`Pump`] hands the
//! messages to [`App::handle`] one at a time (see [`crate::mailbox`] for why), which passes each
//! to the part it is for, lending it the others it needs. Data flows one way: input makes ops on
//! the board, which paints them and the peers send them; a peer's ops go into the board, which
//! paints them.
//!
//! Start-up order: build the UI and the board (so drawing works at once, even offline), start
//! loading the saved drawing, then sign in (see [`crate::session`]).

use crate::board::Board;
use crate::canvas::{Canvas, PointerInput};
use crate::dom::{self, Listener};
use crate::export;
use crate::gestures::Gestures;
use crate::input::{self, Input};
use crate::location::Location;
use crate::mailbox::{Mailbox, Pump};
use crate::peers::{self, Peers};
use crate::scheduler::{self, Scheduler};
use crate::session::{self, SessionLife};
use crate::ui::{Status, Ui};
use shared::color::Color;
use shared::signing::Keypair;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

thread_local! {
    /// The running app. It lives as long as the page, like the listeners it owns.
    static APP: RefCell<Option<Rc<Pump<App, Msg>>>> = const { RefCell::new(None) };
}

/// Everything that happens to the app, by the part it is for.
pub enum Msg {
    /// The person's input.
    Input(input::Event),
    /// The peers' data and comings and goings.
    Peers(peers::Event),
    /// The session's life.
    Session(session::Event),
    /// Frames, saves and the load.
    Schedule(scheduler::Event),
    /// An export button.
    Export(export::Format),
    /// The window changed size.
    Resize,
    /// The page is built: load the saved drawing and sign in.
    Start,
}

/// Everything one page runs.
pub struct App {
    ui: Ui,
    board: Board,
    location: Location,
    /// None without a room (a bad link): the page still draws, alone.
    session: Option<SessionLife>,
    peers: Peers,
    input: Input,
    scheduler: Scheduler,
    _listeners: Vec<Listener>,
    _pointer: PointerInput,
    _gestures: Gestures,
}

impl App {
    /// Builds the app inside `mount` and starts connecting.
    pub fn launch(mount: &web_sys::Element) -> Result<(), JsValue> {
        let window = dom::window()?;
        let location = Location::read(&window);
        let color = Color::from_palette((js_sys::Math::random() * f64::from(u32::MAX)) as u32);
        let ui = Ui::mount(mount, &location.username, color)?;
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
        let board = Board::new(canvas, key, color);

        let pump = Pump::new(
            |mailbox: Mailbox<Msg>| {
                let session = location.room.as_ref().ok().map(|room| {
                    SessionLife::new(
                        location.username.clone(),
                        room.clone(),
                        location.relay_only,
                        public_key,
                        mailbox.map(Msg::Session),
                        mailbox.map(Msg::Peers),
                    )
                });
                App {
                    // In this order: the pen hears a canvas's pointer events before the gestures.
                    _pointer: PointerInput::attach(
                        ui.canvas(),
                        mailbox.hook(|pen| Msg::Input(input::Event::Pen(pen))),
                    ),
                    _gestures: Gestures::attach(
                        ui.canvas(),
                        mailbox.hook(|gesture| Msg::Input(input::Event::Gesture(gesture))),
                    ),
                    _listeners: listen(&window, &ui, &mailbox),
                    peers: Peers::new(ui.cursors().clone(), mailbox.map(Msg::Peers)),
                    scheduler: Scheduler::new(
                        location.room.as_ref().ok(),
                        mailbox.map(Msg::Schedule),
                    ),
                    input: Input::default(),
                    session,
                    ui,
                    board,
                    location,
                }
            },
            App::handle,
        );
        APP.with(|slot| *slot.borrow_mut() = Some(pump.clone()));
        pump.post(Msg::Start);
        if let Some(body) = dom::document()?.body() {
            body.set_attribute("data-ready", "true")?;
        }
        Ok(())
    }

    /// Takes one message: the part it is for handles it, lent the others it needs. Afterwards,
    /// if the board has something to show or report, a frame is asked for.
    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Input(event) => {
                let mesh = self.session.as_ref().and_then(SessionLife::mesh);
                let (board, peers) = (&mut self.board, &mut self.peers);
                self.input.handle(event, board, &self.ui, peers, mesh);
            }
            Msg::Peers(event) => {
                let mesh = self.session.as_ref().and_then(SessionLife::mesh);
                self.peers.handle(event, mesh, &mut self.board, &self.ui);
            }
            Msg::Session(event) => {
                if let Some(session) = &mut self.session {
                    let ops = session.handle(event, &mut self.board, &self.ui);
                    peers::broadcast_ops(ops, session.mesh(), &mut self.board);
                }
            }
            Msg::Schedule(event) => self.scheduler.handle(event, &mut self.board, &self.ui),
            Msg::Export(format) => {
                export::download_drawing(self.board.doc(), format, &self.location.room_name());
            }
            Msg::Resize => self.board.fit(),
            Msg::Start => self.start(),
        }
        if self.board.wants_frame() {
            self.scheduler.request_frame();
        }
    }

    fn start(&mut self) {
        match (&self.location.room, &mut self.session) {
            (Ok(room), Some(session)) => {
                // The saved drawing arrives while the page is already usable, and merges with
                // whatever was drawn or received meanwhile.
                self.scheduler.load(room.clone());
                session.sign_in(&self.ui);
            }
            (Err(why), _) => self.ui.set_status(Status::Error, why),
            (Ok(_), None) => {}
        }
    }
}

/// A menubar button's id, and the message it posts.
type Button = (&'static str, fn() -> Msg);

/// The page's listeners: window, menubar, text input. They post and return; the pump does the
/// rest.
fn listen(window: &web_sys::Window, ui: &Ui, mailbox: &Mailbox<Msg>) -> Vec<Listener> {
    let input = mailbox.map(Msg::Input);
    let key = |down: bool| {
        let input = input.clone();
        move |e: web_sys::Event| {
            if let Some(event) = input::shortcut(&e, down) {
                input.post(event);
            }
        }
    };
    let text_key = {
        let input = input.clone();
        move |e: web_sys::Event| {
            if let Some(event) = input::text_key(&e) {
                input.post(event);
            }
        }
    };
    let mut listeners = vec![
        // Browsers fire `resize` at most once a frame; the repaint waits for the frame.
        Listener::new(window, "resize", mailbox.hook(|_| Msg::Resize)),
        Listener::new(window, "keydown", key(true)),
        Listener::new(window, "keyup", key(false)),
        Listener::new(window, "blur", input.hook(|_| input::Event::Space(false))),
        Listener::new(
            window,
            "pagehide",
            mailbox.hook(|_| Msg::Schedule(scheduler::Event::Save)),
        ),
        ui.on_tool(input.hook(input::Event::Tool)),
        ui.on_width(input.hook(input::Event::Width)),
        Listener::new(ui.text_input(), "keydown", text_key),
        Listener::new(
            ui.text_input(),
            "blur",
            input.hook(|_| input::Event::CommitText),
        ),
    ];
    listeners.extend(ui.on_pick(input.hook(input::Event::Color)));
    let buttons: [Button; 8] = [
        ("undo", || Msg::Input(input::Event::Undo)),
        ("redo", || Msg::Input(input::Event::Redo)),
        ("clear", || Msg::Input(input::Event::AskClear)),
        ("clear-cancel", || Msg::Input(input::Event::KeepDrawing)),
        ("clear-confirm", || Msg::Input(input::Event::Clear)),
        ("export-png", || Msg::Export(export::Format::Png)),
        ("export-svg", || Msg::Export(export::Format::Svg)),
        ("zoom", || Msg::Input(input::Event::ResetZoom)),
    ];
    for (id, msg) in buttons {
        let mailbox = mailbox.clone();
        match ui.on_click(id, move || mailbox.post(msg())) {
            Ok(listener) => listeners.push(listener),
            Err(err) => web_sys::console::warn_2(&"button missing:".into(), &err),
        }
    }
    listeners
}
