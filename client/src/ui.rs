//! The menubar and the stage: logo, tools, line width, colour palette and custom colour, undo,
//! redo, clear, export and zoom; my name, the peers present and the connection status; below
//! them the drawing canvas, the overlay of peers' cursors, the text input and the clear dialog.
//!
//! The elements carry the ids and `data-*` attributes the end-to-end tests read (`#board`,
//! `#status[data-state]`, `#peers[data-count] > li[data-peer-id]`, `#username`,
//! `.swatch[data-color]`, `[data-tool]`, `#width`, `#color-custom`, `#undo`, `#redo`, `#clear`,
//! `#clear-dialog`, `#export-png`, `#export-svg`, `#zoom`, `#cursors`, `#text-input`,
//! `#storage-warning[data-state]`). Names from the network only ever go in through `textContent`.
//!
//! The menubar's groups never break inside; at narrow widths the bar wraps between groups onto
//! a second row rather than cutting names off.

use crate::dom::{self, Listener};
use crate::mesh::PeerSummary;
use crate::tools::{DEFAULT_WIDTH, Tool, WIDTH_RANGE};
use shared::PeerId;
use shared::color::{Color, PALETTE};
use shared::document::MAX_TEXT_CHARS;
use shared::link::{Route, Status as LinkStatus};
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlCanvasElement, HtmlDialogElement, HtmlInputElement};

/// The connection status shown in the menubar, and in `#status[data-state]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Signing in and opening the stream.
    Connecting,
    /// The server stream is open (peers can find us).
    Connected,
    /// The server stream broke (peers already connected keep drawing with us).
    Offline,
    /// Something we cannot recover from without a reload.
    Error,
    /// The room has the most people it takes; we try again now and then.
    Full,
}

impl Status {
    /// The `data-state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Offline => "offline",
            Status::Error => "error",
            Status::Full => "full",
        }
    }
}

/// What the browser storage was doing when it failed, in `#storage-warning[data-task]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageTask {
    /// Reading the saved drawing at start-up.
    Load,
    /// Writing the drawing.
    Save,
}

impl StorageTask {
    /// The `data-task` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageTask::Load => "load",
            StorageTask::Save => "save",
        }
    }
}

const LOGO_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2.5 19.5 9 10.5l4.2 5.2 2.8-3.2 5.5 7z"/><circle cx="16.5" cy="6.5" r="2"/></svg>"#;
const PENCIL_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 20l1.2-4.8L15.6 4.8a2.1 2.1 0 0 1 3 0l.6.6a2.1 2.1 0 0 1 0 3L8.8 18.8z"/><path d="M13.8 6.6l3.6 3.6"/></svg>"#;
const ERASER_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M8.5 20H20"/><path d="M4.6 15.4l9.9-9.9a2 2 0 0 1 2.8 0l2.2 2.2a2 2 0 0 1 0 2.8L11 19H8.2l-3.6-3.6z"/><path d="M9.2 10.8l5 5"/></svg>"#;
const LINE_SVG: &str =
    r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 19L19 5"/></svg>"#;
const RECT_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><rect x="4" y="6" width="16" height="12" rx="1"/></svg>"#;
const ELLIPSE_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><ellipse cx="12" cy="12" rx="8.5" ry="6.5"/></svg>"#;
const TEXT_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M5 6V4.5h14V6"/><path d="M12 4.5v15"/><path d="M9 19.5h6"/></svg>"#;
const UNDO_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M9 14L4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/></svg>"#;
const REDO_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M15 14l5-5-5-5"/><path d="M20 9H9.5a5.5 5.5 0 0 0 0 11H13"/></svg>"#;
const CLEAR_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 7h16"/><path d="M10 11v6M14 11v6"/><path d="M6 7l1 12a2 2 0 0 0 2 2h6a2 2 0 0 0 2-2l1-12"/><path d="M9 7V4h6v3"/></svg>"#;
const DOWNLOAD_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 4v11"/><path d="M7 10.5l5 5 5-5"/><path d="M5 20h14"/></svg>"#;

/// The tool buttons: tool, icon, title.
const TOOL_BUTTONS: [(Tool, &str, &str); 6] = [
    (Tool::Pen, PENCIL_SVG, "Pen"),
    (Tool::Eraser, ERASER_SVG, "Eraser"),
    (Tool::Line, LINE_SVG, "Line"),
    (Tool::Rect, RECT_SVG, "Rectangle"),
    (Tool::Ellipse, ELLIPSE_SVG, "Ellipse"),
    (Tool::Text, TEXT_SVG, "Text"),
];

/// The page's interface: the elements the app updates or listens to.
pub struct Ui {
    root: Element,
    status: Element,
    storage_warning: Element,
    arrival: Element,
    peers: Element,
    username: Element,
    current_color: Element,
    palette: Element,
    custom_color: HtmlInputElement,
    width: HtmlInputElement,
    tools: Element,
    undo: Element,
    redo: Element,
    zoom: Element,
    clear_dialog: Element,
    cursors: Element,
    text_input: HtmlInputElement,
    canvas: HtmlCanvasElement,
}

impl Ui {
    /// Builds the menubar and the stage inside `root`, showing `username` and `color`.
    pub fn mount(root: &Element, username: &str, color: Color) -> Result<Ui, JsValue> {
        let swatches: String = PALETTE
            .iter()
            .map(|c| {
                format!(
                    r#"<button type="button" class="swatch" data-color="{c}" style="--swatch:{c}" title="{c}" aria-label="colour {c}"></button>"#
                )
            })
            .collect();
        let tools: String = TOOL_BUTTONS
            .iter()
            .map(|(tool, icon, title)| {
                format!(
                    r#"<button type="button" class="icon-link tool" data-tool="{name}" title="{title}" aria-label="{title}" aria-pressed="false">{icon}</button>"#,
                    name = tool.name()
                )
            })
            .collect();
        let (min, max) = (WIDTH_RANGE.start(), WIDTH_RANGE.end());
        root.set_inner_html(&format!(
            r#"<div class="shell">
<header class="menubar">
  <div class="group">
    <a class="icon-link logo" href="/" title="Drawmesh: new room">{LOGO_SVG}<span class="brand">Drawmesh</span></a>
  </div>
  <div class="group tools" role="toolbar" aria-label="Tools">{tools}</div>
  <div class="group style">
    <input type="range" id="width" min="{min}" max="{max}" step="1" value="{DEFAULT_WIDTH}" title="Line width" aria-label="Line width">
    <div class="palette" role="group" aria-label="Colours">{swatches}</div>
    <label class="custom-color" title="Custom colour"><input type="color" id="color-custom" aria-label="Custom colour"></label>
    <span id="current-color" class="current-color" title="Current colour"></span>
  </div>
  <div class="group actions">
    <button type="button" id="undo" class="icon-link" title="Undo (Ctrl+Z)" aria-label="Undo" disabled>{UNDO_SVG}</button>
    <button type="button" id="redo" class="icon-link" title="Redo (Ctrl+Shift+Z)" aria-label="Redo" disabled>{REDO_SVG}</button>
    <button type="button" id="clear" class="icon-link" title="Clear the drawing" aria-label="Clear">{CLEAR_SVG}</button>
    <span class="divider"></span>
    <button type="button" id="export-png" class="icon-link export" title="Download as PNG">{DOWNLOAD_SVG}<span>PNG</span></button>
    <button type="button" id="export-svg" class="icon-link export" title="Download as SVG">{DOWNLOAD_SVG}<span>SVG</span></button>
    <span class="divider"></span>
    <button type="button" id="zoom" class="icon-link zoom" title="Zoom (click: reset to 100%)">100%</button>
  </div>
  <span class="spacer"></span>
  <div class="group presence">
    <ul id="peers" class="peers" data-count="0" aria-label="Peers in this room"></ul>
    <span id="username" class="username" title="You"></span>
    <span id="status" class="status" data-state="connecting" role="status">Connecting…</span>
  </div>
</header>
<main class="stage">
  <canvas id="board" data-zoom="1"></canvas>
  <div id="cursors" class="cursors" aria-hidden="true"></div>
  <input id="text-input" class="text-input" type="text" maxlength="{MAX_TEXT_CHARS}" autocomplete="off" spellcheck="false" hidden>
  <p id="storage-warning" class="storage-warning" data-state="ok" role="alert" hidden></p>
  <p id="arrival" class="arrival" role="status" hidden></p>
</main>
<dialog id="clear-dialog" class="dialog">
  <p><strong>Clear the drawing?</strong></p>
  <p>Everything you can see is removed for everyone in the room. You can undo it.</p>
  <div class="dialog-buttons">
    <button type="button" id="clear-cancel">Cancel</button>
    <button type="button" id="clear-confirm" class="danger">Clear</button>
  </div>
</dialog>
</div>"#
        ));
        let find = |selector: &str| {
            root.query_selector(selector)?
                .ok_or_else(|| JsValue::from_str(&format!("{selector} missing")))
        };
        let ui = Ui {
            root: root.clone(),
            status: find("#status")?,
            storage_warning: find("#storage-warning")?,
            arrival: find("#arrival")?,
            peers: find("#peers")?,
            username: find("#username")?,
            current_color: find("#current-color")?,
            palette: find(".palette")?,
            custom_color: find("#color-custom")?.dyn_into()?,
            width: find("#width")?.dyn_into()?,
            tools: find(".tools")?,
            undo: find("#undo")?,
            redo: find("#redo")?,
            zoom: find("#zoom")?,
            clear_dialog: find("#clear-dialog")?,
            cursors: find("#cursors")?,
            text_input: find("#text-input")?.dyn_into()?,
            canvas: find("#board")?.dyn_into()?,
        };
        ui.set_username(username);
        ui.select_color(color);
        ui.select_tool(Tool::Pen);
        Ok(ui)
    }

    /// The drawing canvas.
    pub fn canvas(&self) -> &HtmlCanvasElement {
        &self.canvas
    }

    /// The overlay the peers' cursors live in.
    pub fn cursors(&self) -> &Element {
        &self.cursors
    }

    /// The text tool's input.
    pub fn text_input(&self) -> &HtmlInputElement {
        &self.text_input
    }

    /// Listens for colour picks (a swatch, or the custom colour input): the pick becomes the
    /// selected colour and `on_pick` hears it. The listeners live as long as the returned handles.
    pub fn on_pick(&self, on_pick: impl Fn(Color) + 'static) -> Vec<Listener> {
        let on_pick = std::rc::Rc::new(on_pick);
        let (palette, current_color, custom) = (
            self.palette.clone(),
            self.current_color.clone(),
            self.custom_color.clone(),
        );
        // One listener on the palette rather than one per swatch.
        let swatches = {
            let on_pick = on_pick.clone();
            let (palette, current_color, custom) =
                (palette.clone(), current_color.clone(), custom.clone());
            Listener::new(&self.palette, "click", move |e| {
                let swatch = e
                    .target()
                    .and_then(|t| t.dyn_into::<Element>().ok())
                    .and_then(|t| t.closest(".swatch").ok().flatten());
                let Some(color) = swatch
                    .and_then(|s| s.get_attribute("data-color"))
                    .and_then(|c| Color::parse(&c).ok())
                else {
                    return;
                };
                show_color(&palette, &current_color, &custom, color);
                on_pick(color);
            })
        };
        let custom_input = {
            let custom_el = custom.clone();
            Listener::new(&self.custom_color, "input", move |_| {
                let Ok(color) = Color::parse(&custom_el.value()) else {
                    return;
                };
                show_color(&palette, &current_color, &custom, color);
                on_pick(color);
            })
        };
        vec![swatches, custom_input]
    }

    /// Shows `color` as the selected colour (its swatch, if it has one).
    pub fn select_color(&self, color: Color) {
        show_color(
            &self.palette,
            &self.current_color,
            &self.custom_color,
            color,
        );
    }

    /// Listens for tool picks; the picked tool is shown as active.
    pub fn on_tool(&self, on_tool: impl Fn(Tool) + 'static) -> Listener {
        let tools = self.tools.clone();
        Listener::new(&self.tools, "click", move |e| {
            let tool = e
                .target()
                .and_then(|t| t.dyn_into::<Element>().ok())
                .and_then(|t| t.closest("[data-tool]").ok().flatten())
                .and_then(|b| b.get_attribute("data-tool"))
                .and_then(|name| Tool::parse(&name));
            if let Some(tool) = tool {
                show_tool(&tools, tool);
                on_tool(tool);
            }
        })
    }

    /// Shows `tool` as the active one.
    pub fn select_tool(&self, tool: Tool) {
        show_tool(&self.tools, tool);
    }

    /// Listens for line width changes.
    pub fn on_width(&self, on_width: impl Fn(f32) + 'static) -> Listener {
        let input = self.width.clone();
        Listener::new(&self.width, "input", move |_| {
            if let Ok(width) = input.value().parse::<f32>() {
                on_width(width);
            }
        })
    }

    /// Listens for clicks on the element with this id (`undo`, `redo`, `clear`, ...).
    pub fn on_click(&self, id: &str, on_click: impl Fn() + 'static) -> Result<Listener, JsValue> {
        let button = self
            .root
            .query_selector(&format!("#{id}"))?
            .ok_or_else(|| JsValue::from_str(&format!("#{id} missing")))?;
        Ok(Listener::new(&button, "click", move |_| on_click()))
    }

    /// Enables or disables the undo and redo buttons.
    pub fn set_history(&self, can_undo: bool, can_redo: bool) {
        for (button, enabled) in [(&self.undo, can_undo), (&self.redo, can_redo)] {
            let _ = button.toggle_attribute_with_force("disabled", !enabled);
        }
    }

    /// Shows the zoom, as a percentage and in `#board[data-zoom]`.
    pub fn set_zoom(&self, zoom: f32) {
        self.zoom
            .set_text_content(Some(&format!("{}%", (zoom * 100.0).round())));
        let _ = self.canvas.set_attribute("data-zoom", &zoom.to_string());
    }

    /// Opens the clear confirmation.
    pub fn open_clear_dialog(&self) {
        if let Some(dialog) = self.clear_dialog.dyn_ref::<HtmlDialogElement>()
            && !dialog.open()
            && dialog.show_modal().is_err()
        {
            // Not connected to a document, say: show it without the modality.
            dialog.set_open(true);
        }
    }

    /// Closes the clear confirmation.
    pub fn close_clear_dialog(&self) {
        if let Some(dialog) = self.clear_dialog.dyn_ref::<HtmlDialogElement>() {
            dialog.close();
        }
    }

    /// Shows the text input with its top-left at a screen point of the canvas, in `color` at
    /// `size` screen pixels, focused and empty.
    pub fn open_text(&self, at: (f32, f32), size: f32, color: Color) {
        let input = &self.text_input;
        input.set_value("");
        let _ = input.set_attribute(
            "style",
            &format!(
                "left:{}px;top:{}px;font-size:{size}px;height:{}px;color:{color}",
                at.0,
                at.1,
                size * 1.25
            ),
        );
        input.set_hidden(false);
        let _ = input.focus();
    }

    /// Hides the text input; returns what was typed.
    pub fn close_text(&self) -> String {
        let text = self.text_input.value();
        self.text_input.set_value("");
        self.text_input.set_hidden(true);
        text
    }

    /// True while the text input is shown.
    pub fn text_open(&self) -> bool {
        !self.text_input.hidden()
    }

    /// Shows my name.
    pub fn set_username(&self, name: &str) {
        self.username.set_text_content(Some(name));
    }

    /// Shows the connection status.
    pub fn set_status(&self, status: Status, text: &str) {
        let _ = self.status.set_attribute("data-state", status.as_str());
        self.status.set_text_content(Some(text));
        // The line is cut to the menubar's width; the whole text shows on hover.
        let _ = self.status.set_attribute("title", text);
    }

    /// Shows, over the top of the canvas, why the drawing could not be saved or loaded
    /// (`#storage-warning[data-state="error"][data-task=<task>]`), or hides what `task` showed
    /// (`data-state="ok"`): a save that works clears a failed save's warning, not a failed load's.
    pub fn set_storage_warning(&self, task: StorageTask, problem: Option<&str>) {
        let (el, task) = (&self.storage_warning, task.as_str());
        match problem {
            Some(text) => {
                let _ = el.set_attribute("data-state", "error");
                let _ = el.set_attribute("data-task", task);
                el.set_text_content(Some(text));
                let _ = el.remove_attribute("hidden");
            }
            None if el.get_attribute("data-task").as_deref() == Some(task) => {
                let _ = el.set_attribute("data-state", "ok");
                let _ = el.remove_attribute("data-task");
                el.set_text_content(None);
                let _ = el.set_attribute("hidden", "");
            }
            None => {}
        }
    }

    /// Shows how much of a drawing that is arriving from the peers is here (`#arrival`, with
    /// `data-arrived` and `data-of`), or hides it (`None`).
    pub fn show_arrival(&self, progress: Option<(u64, u64)>) {
        let el = &self.arrival;
        match progress {
            Some((arrived, of)) => {
                let percent = arrived.saturating_mul(100) / of.max(1);
                el.set_text_content(Some(&format!(
                    "Receiving the drawing… {percent}% ({arrived} of {of})"
                )));
                let _ = el.set_attribute("data-arrived", &arrived.to_string());
                let _ = el.set_attribute("data-of", &of.to_string());
                let _ = el.remove_attribute("hidden");
            }
            None => {
                let _ = el.set_attribute("hidden", "");
                let _ = el.remove_attribute("data-arrived");
                let _ = el.remove_attribute("data-of");
            }
        }
    }

    /// Shows the peers present, each with its colour (`color_of`, grey until known); open ones
    /// (channel open) are marked and counted.
    pub fn set_peers(&self, peers: &[PeerSummary], color_of: impl Fn(&PeerId) -> Option<Color>) {
        let Ok(document) = dom::document() else {
            return;
        };
        self.peers.set_text_content(None);
        for peer in peers {
            let Ok(item) = document.create_element("li") else {
                continue;
            };
            let (link, badge, title) = describe_link(peer.status);
            let _ = item.set_attribute("data-peer-id", &peer.id.0);
            let _ = item.set_attribute("data-link", link);
            let _ = item.set_attribute("title", &title);
            let color = color_of(&peer.id).unwrap_or(PEER_GREY);
            let _ = item.set_attribute("style", &format!("--peer:{color}"));
            let _ = item.set_attribute("data-color", &color.to_string());
            if peer.open {
                item.set_class_name("open");
            }
            if let Ok(name) = document.create_element("span") {
                name.set_class_name("peer-name");
                name.set_text_content(Some(&peer.username));
                let _ = item.append_child(&name);
            }
            if let (Some(badge), Ok(span)) = (badge, document.create_element("span")) {
                span.set_class_name("peer-link");
                span.set_text_content(Some(&badge));
                let _ = item.append_child(&span);
            }
            let _ = self.peers.append_child(&item);
        }
        let open = peers.iter().filter(|p| p.open).count();
        let _ = self.peers.set_attribute("data-count", &open.to_string());
    }
}

/// How a peer's link shows: its `data-link` value, a short badge (none while connecting), and
/// the tooltip that says it in full.
pub fn describe_link(status: LinkStatus) -> (&'static str, Option<String>, String) {
    match status {
        LinkStatus::Connecting => ("connecting", None, "connecting…".into()),
        LinkStatus::Open(None) => ("open", None, "connected".into()),
        LinkStatus::Open(Some(Route::Direct)) => (
            "direct",
            Some("P2P".into()),
            "connected directly, browser to browser".into(),
        ),
        LinkStatus::Open(Some(Route::Relayed)) => (
            "relayed",
            Some("TURN".into()),
            "connected through a TURN relay".into(),
        ),
        LinkStatus::Reconnecting => (
            "reconnecting",
            Some("…".into()),
            "connection lost; reconnecting".into(),
        ),
        LinkStatus::Unreachable(why) => (
            "unreachable",
            Some(format!("unreachable: {}", why.short())),
            format!(
                "cannot reach this person: {}; their strokes will arrive once a connection works",
                why.describe()
            ),
        ),
    }
}

/// A peer's colour until its first cursor message tells us.
pub const PEER_GREY: Color = Color::rgb(0x86, 0x8e, 0x96);

/// Marks the child of `parent` whose `attribute` equals `value` as the active one (class and
/// `aria-pressed`), and every other child as not.
fn mark_active(parent: &Element, attribute: &str, value: &str) {
    let children = parent.children();
    for i in 0..children.length() {
        let Some(child) = children.item(i) else {
            continue;
        };
        let active = child.get_attribute(attribute).as_deref() == Some(value);
        let _ = child.class_list().toggle_with_force("active", active);
        let _ = child.set_attribute("aria-pressed", if active { "true" } else { "false" });
    }
}

fn show_tool(tools: &Element, tool: Tool) {
    mark_active(tools, "data-tool", tool.name());
}

fn show_color(palette: &Element, current_color: &Element, custom: &HtmlInputElement, color: Color) {
    let hex = color.to_string();
    custom.set_value(&hex);
    mark_active(palette, "data-color", &hex);
    let _ = current_color.set_attribute("style", &format!("--swatch:{hex}"));
    let _ = current_color.set_attribute("data-color", &hex);
}
