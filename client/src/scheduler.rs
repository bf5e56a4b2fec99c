//! When the board's work runs: painting once per animation frame, whatever number of events
//! changed it, and saving the room's drawing half a second after a change (at most that often,
//! one write at a time), right away as the page goes, and loading it once at the start.

use crate::board::Board;
use crate::dom::{self, Timeout};
use crate::mailbox::Mailbox;
use crate::storage::{self, Loaded, RoomStore, Save, StorageError};
use crate::ui::{StorageTask, Ui};
use shared::room::RoomId;
use wasm_bindgen::prelude::*;

/// Milliseconds between a change and its save.
const SAVE_DELAY_MS: i32 = 500;

/// What the browser and the storage tell the scheduler.
pub enum Event {
    /// An animation frame.
    Frame,
    /// A save is due (its delay has passed, or the page is going away).
    Save,
    /// A save's write ended.
    Written(Save, Result<(), StorageError>),
    /// The saved drawing was read.
    Loaded(Result<Loaded, StorageError>),
}

/// The animation frame and the saves.
pub struct Scheduler {
    /// The animation-frame callback (lives as long as the page).
    frame: Closure<dyn FnMut(f64)>,
    frame_requested: bool,
    /// Where the room's drawing is saved (none without a room).
    store: Option<RoomStore>,
    /// The save waiting for its delay.
    save_timer: Option<Timeout>,
    mailbox: Mailbox<Event>,
}

impl Scheduler {
    /// Saves go to `room`'s store (none without a room); frames and writes post to `mailbox`.
    pub fn new(room: Option<&RoomId>, mailbox: Mailbox<Event>) -> Scheduler {
        let frame = {
            let mailbox = mailbox.clone();
            Closure::<dyn FnMut(f64)>::new(move |_: f64| mailbox.post(Event::Frame))
        };
        Scheduler {
            frame,
            frame_requested: false,
            store: room.map(RoomStore::new),
            save_timer: None,
            mailbox,
        }
    }

    /// Reads the room's saved drawing. It arrives while the page is already usable, and merges
    /// with whatever was drawn or received meanwhile.
    pub fn load(&self, room: RoomId) {
        if self.store.is_some() {
            self.mailbox
                .spawn(async move { Event::Loaded(storage::load(&room).await) });
        }
    }

    /// Asks for an animation frame, once until it comes.
    pub fn request_frame(&mut self) {
        if self.frame_requested {
            return;
        }
        self.frame_requested = dom::window()
            .and_then(|w| w.request_animation_frame(self.frame.as_ref().unchecked_ref()))
            .is_ok();
    }

    /// Takes one event.
    pub fn handle(&mut self, event: Event, board: &mut Board, ui: &Ui) {
        match event {
            Event::Frame => self.frame(board, ui),
            Event::Save => self.save_now(board, ui),
            Event::Written(save, outcome) => {
                show_storage(ui, StorageTask::Save, outcome.as_ref().err());
                let again = self
                    .store
                    .as_mut()
                    .is_some_and(|store| store.end_save(save, &outcome));
                if again {
                    self.save(board, ui);
                }
            }
            Event::Loaded(Ok(loaded)) => {
                board.load(loaded.ops, loaded.proofs, loaded.certs);
                if let Some(store) = &mut self.store {
                    store.loaded_into(loaded.records, board.doc());
                }
                if let Some(err) = loaded.problem {
                    show_storage(ui, StorageTask::Load, Some(&err));
                }
            }
            Event::Loaded(Err(err)) => show_storage(ui, StorageTask::Load, Some(&err)),
        }
    }

    /// One frame: compose the canvas if anything changed; after a document change, update what
    /// shows its state and schedule a save.
    fn frame(&mut self, board: &mut Board, ui: &Ui) {
        self.frame_requested = false;
        if board.needs_frame() {
            board.render();
        }
        if !board.take_changed() {
            return;
        }
        let history = &board.replica().history;
        ui.set_history(history.can_undo(), history.can_redo());
        if let Some(body) = dom::document().ok().and_then(|d| d.body()) {
            let _ = body.set_attribute("data-elements", &board.visible_count().to_string());
            let _ = body.set_attribute("data-ops", &board.doc().op_count().to_string());
        }
        self.schedule_save();
    }

    /// Saves the drawing about half a second after a change (at most that often).
    fn schedule_save(&mut self) {
        if self.store.is_some() && self.save_timer.is_none() {
            self.save_timer = Some(self.mailbox.post_after(SAVE_DELAY_MS, Event::Save));
        }
    }

    /// Saves the drawing now (also as the page goes away: the write starts in a microtask of
    /// `pagehide` itself, and one started there usually completes, see `storage::Save::write`).
    /// A save waiting for its delay is this one.
    fn save_now(&mut self, board: &Board, ui: &Ui) {
        self.save_timer = None;
        self.save(board, ui);
    }

    /// Writes what changed since the last save (see `storage`), one write at a time: asked
    /// while one is in flight, the store leaves a note, and the write's end starts another.
    fn save(&mut self, board: &Board, ui: &Ui) {
        let Some(store) = &mut self.store else {
            return;
        };
        // The ops are picked and encoded now; the write goes on while the board changes.
        match store.begin_save(board.doc(), board.ledger()) {
            Ok(Some(save)) => self.mailbox.spawn(async move {
                let outcome = save.write().await;
                Event::Written(save, outcome)
            }),
            Ok(None) => {}
            Err(err) => show_storage(ui, StorageTask::Save, Some(&err)),
        }
    }
}

/// Shows a storage failure to the person (or clears the warning `task` showed).
fn show_storage(ui: &Ui, task: StorageTask, problem: Option<&StorageError>) {
    let text = problem.map(|err| {
        dom::warn(&format!("storage ({}): {err}", task.as_str()));
        match task {
            StorageTask::Load => format!("Could not load the saved drawing: {err}"),
            StorageTask::Save => format!(
                "Could not save the drawing: {err}. It stays on screen; export it to keep a copy."
            ),
        }
    });
    ui.set_storage_warning(task, text.as_deref());
}
