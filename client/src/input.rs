//! Local input: the pen on the canvas, navigation gestures, keyboard shortcuts, the menubar's
//! tools, colours, width and actions, and the text tool. Each becomes ops on the board, sent out
//! at once (so each batch goes out with the proof due at that moment), or a view change.
//!
//! Raw DOM events are read in their listeners (see [`shortcut`], [`text_key`]): whether to
//! `preventDefault` must be decided before the listener returns. What they ask for arrives here
//! as an [`Event`].

use crate::board::Board;
use crate::canvas::PenInput;
use crate::gestures::Gesture;
use crate::mesh::Mesh;
use crate::peers::{Peers, broadcast_ops};
use crate::tools::Tool;
use crate::ui::Ui;
use shared::color::Color;
use shared::view::View;
use wasm_bindgen::JsCast;
use web_sys::KeyboardEvent;

/// What the person did.
pub enum Event {
    /// The pen on the canvas.
    Pen(PenInput),
    /// Zoom, pan, pinch or hover on the canvas.
    Gesture(Gesture),
    /// The space bar went down or up (or the window lost the keyboard: up).
    Space(bool),
    /// Ctrl+Z or the undo button.
    Undo,
    /// Ctrl+Shift+Z, Ctrl+Y or the redo button.
    Redo,
    /// A tool was picked.
    Tool(Tool),
    /// The width slider moved.
    Width(f32),
    /// A colour was picked.
    Color(Color),
    /// Enter in the text input, or it lost the focus: add the text.
    CommitText,
    /// Escape in the text input: drop the text.
    CancelText,
    /// The clear button: ask first.
    AskClear,
    /// The clear dialog's cancel.
    KeepDrawing,
    /// The clear dialog's confirm.
    Clear,
    /// The zoom button: back to 100%.
    ResetZoom,
}

/// Input state that outlives one event.
#[derive(Default)]
pub struct Input {
    /// The space bar is held: a drag pans instead of drawing.
    space: bool,
    /// Where the open text input's text goes (screen point), while it is open.
    text_at: Option<(f32, f32)>,
}

impl Input {
    /// Takes one event: the board changes, my ops go out on `mesh` (if there is one yet).
    pub fn handle(
        &mut self,
        event: Event,
        board: &mut Board,
        ui: &Ui,
        peers: &mut Peers,
        mesh: Option<&Mesh>,
    ) {
        match event {
            Event::Pen(input) => self.pen(input, board, ui, mesh),
            Event::Gesture(gesture) => self.gesture(gesture, board, ui, peers, mesh),
            Event::Space(down) => self.space = down,
            Event::Undo => {
                let op = board.undo();
                broadcast_ops(op.into_iter().collect(), mesh, board);
            }
            Event::Redo => {
                let op = board.redo();
                broadcast_ops(op.into_iter().collect(), mesh, board);
            }
            Event::Tool(tool) => {
                if self.text_at.is_some() {
                    self.commit_text(board, ui, mesh);
                }
                let ops = board.set_tool(tool);
                broadcast_ops(ops, mesh, board);
            }
            Event::Width(width) => board.set_width(width),
            Event::Color(color) => board.set_color(color),
            Event::CommitText => self.commit_text(board, ui, mesh),
            Event::CancelText => {
                self.text_at = None;
                ui.close_text();
            }
            Event::AskClear => ui.open_clear_dialog(),
            Event::KeepDrawing => ui.close_clear_dialog(),
            Event::Clear => {
                ui.close_clear_dialog();
                let op = board.clear();
                broadcast_ops(vec![op], mesh, board);
            }
            Event::ResetZoom => set_view(View::default(), board, ui, peers),
        }
    }

    /// The pen: the current tool on the board. With the space bar held a drag pans; with the
    /// text tool a press opens the text input.
    fn pen(&mut self, input: PenInput, board: &mut Board, ui: &Ui, mesh: Option<&Mesh>) {
        if let PenInput::Down(p) = &input {
            if self.text_at.is_some() {
                self.commit_text(board, ui, mesh);
            }
            if self.space {
                let ops = board.start_pan(*p);
                return broadcast_ops(ops, mesh, board);
            }
            if board.tool() == Tool::Text {
                self.text_at = Some((p.x, p.y));
                ui.open_text((p.x, p.y), board.text_screen_size(), board.color());
                return;
            }
        }
        let ops = board.pen(input);
        broadcast_ops(ops, mesh, board);
    }

    /// Navigation and hover on the canvas.
    fn gesture(
        &mut self,
        gesture: Gesture,
        board: &mut Board,
        ui: &Ui,
        peers: &mut Peers,
        mesh: Option<&Mesh>,
    ) {
        let mut view = board.view();
        match gesture {
            Gesture::Zoom { at, factor } => view.zoom_at(at.0, at.1, factor),
            Gesture::Pan(dx, dy) => view.pan_by(dx, dy),
            Gesture::PinchStart => {
                // The first finger's stroke was the start of a pinch, not a drawing: end it.
                let ops = board.pen(PenInput::Up);
                return broadcast_ops(ops, mesh, board);
            }
            Gesture::Hover(at) => return peers.send_cursor(at, mesh, board),
        }
        set_view(view, board, ui, peers);
    }

    /// Adds what the text input holds (nothing if it is blank) and closes it.
    fn commit_text(&mut self, board: &mut Board, ui: &Ui, mesh: Option<&Mesh>) {
        // Taken first: closing the input blurs it, which asks for this again.
        let Some(at) = self.text_at.take() else {
            return;
        };
        let text = ui.close_text();
        let op = board.add_text(at, &text);
        broadcast_ops(op.into_iter().collect(), mesh, board);
    }
}

fn set_view(view: View, board: &mut Board, ui: &Ui, peers: &mut Peers) {
    board.set_view(view);
    ui.set_zoom(view.zoom);
    peers.reposition(&view);
}

/// The window's keys: the space bar (held: a drag pans), undo and redo. Keys typed into an input
/// (the text tool's, the name) are theirs.
pub fn shortcut(e: &web_sys::Event, down: bool) -> Option<Event> {
    let e = e.dyn_ref::<KeyboardEvent>()?;
    let typing = e
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        .is_some_and(|t| matches!(t.tag_name().as_str(), "INPUT" | "TEXTAREA"));
    if typing {
        return None;
    }
    if e.code() == "Space" {
        // Held keys repeat their keydown; the page must not scroll either way.
        e.prevent_default();
        return Some(Event::Space(down));
    }
    if !down || !(e.ctrl_key() || e.meta_key()) {
        return None;
    }
    let event = match (e.key().to_lowercase().as_str(), e.shift_key()) {
        ("z", false) => Event::Undo,
        ("z", true) | ("y", false) => Event::Redo,
        _ => return None,
    };
    e.prevent_default();
    Some(event)
}

/// The text input's keys: Enter adds the text, Escape drops it.
pub fn text_key(e: &web_sys::Event) -> Option<Event> {
    let e = e.dyn_ref::<KeyboardEvent>()?;
    let event = match e.key().as_str() {
        "Enter" => Event::CommitText,
        "Escape" => Event::CancelText,
        _ => return None,
    };
    e.prevent_default();
    Some(event)
}
