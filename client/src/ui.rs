//! The menubar and the stage: logo, pencil tool, colour palette, current colour, my name, the
//! peers present and the connection status, above the drawing canvas.
//!
//! The elements carry the ids and `data-*` attributes the end-to-end tests read (`#board`,
//! `#status[data-state]`, `#peers[data-count] > li[data-peer-id]`, `#username`,
//! `.swatch[data-color]`). Names from the network only ever go in through `textContent`.

use crate::dom::{self, Listener};
use crate::mesh::PeerSummary;
use shared::color::{Color, PALETTE};
use wasm_bindgen::prelude::*;
use web_sys::{Element, HtmlCanvasElement};

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
}

impl Status {
    /// The `data-state` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connecting => "connecting",
            Status::Connected => "connected",
            Status::Offline => "offline",
            Status::Error => "error",
        }
    }
}

const LOGO_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M2.5 19.5 9 10.5l4.2 5.2 2.8-3.2 5.5 7z"/><circle cx="16.5" cy="6.5" r="2"/></svg>"#;
const PENCIL_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 20l1.2-4.8L15.6 4.8a2.1 2.1 0 0 1 3 0l.6.6a2.1 2.1 0 0 1 0 3L8.8 18.8z"/><path d="M13.8 6.6l3.6 3.6"/></svg>"#;
const PALETTE_SVG: &str = r#"<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 3a9 9 0 1 0 0 18c1 0 1.7-.7 1.7-1.6 0-.5-.2-.8-.5-1.2-.3-.3-.5-.7-.5-1.1 0-.9.8-1.7 1.7-1.7h2a4.7 4.7 0 0 0 4.6-4.7C21 6.5 17 3 12 3z"/><circle cx="7.5" cy="11.5" r="1.2"/><circle cx="10.5" cy="7.5" r="1.2"/><circle cx="15" cy="7.8" r="1.2"/></svg>"#;

/// The page's interface: the menubar elements the app updates, and the canvas.
pub struct Ui {
    status: Element,
    peers: Element,
    username: Element,
    current_color: Element,
    palette: Element,
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
        root.set_inner_html(&format!(
            r#"<div class="shell">
<header class="menubar">
  <a class="icon-link logo" href="/" title="Drawmesh: new room">{LOGO_SVG}<span class="brand">Drawmesh</span></a>
  <span class="spacer"></span>
  <button type="button" class="icon-link tool active" title="Pencil" aria-pressed="true">{PENCIL_SVG}</button>
  <span class="divider"></span>
  <span class="icon-link palette-icon" title="Colours">{PALETTE_SVG}</span>
  <div class="palette" role="group" aria-label="Colours">{swatches}</div>
  <span id="current-color" class="current-color" title="Current colour"></span>
  <span class="spacer"></span>
  <ul id="peers" class="peers" data-count="0" aria-label="Peers in this room"></ul>
  <span id="username" class="username" title="You"></span>
  <span id="status" class="status" data-state="connecting" role="status">Connecting…</span>
</header>
<main class="stage"><canvas id="board"></canvas></main>
</div>"#
        ));
        let find = |selector: &str| {
            root.query_selector(selector)?
                .ok_or_else(|| JsValue::from_str(&format!("{selector} missing")))
        };
        let ui = Ui {
            status: find("#status")?,
            peers: find("#peers")?,
            username: find("#username")?,
            current_color: find("#current-color")?,
            palette: find(".palette")?,
            canvas: find("#board")?.dyn_into()?,
        };
        ui.set_username(username);
        ui.select_color(color);
        Ok(ui)
    }

    /// The drawing canvas.
    pub fn canvas(&self) -> &HtmlCanvasElement {
        &self.canvas
    }

    /// Listens for swatch clicks: the swatch becomes the selected one and `on_pick` hears its
    /// colour. The listener lives as long as the returned handle.
    pub fn on_pick(&self, on_pick: impl Fn(Color) + 'static) -> Listener {
        let palette = self.palette.clone();
        let current_color = self.current_color.clone();
        // One listener on the palette rather than one per swatch.
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
            show_color(&palette, &current_color, color);
            on_pick(color);
        })
    }

    /// Shows `color` as the selected swatch and the current colour.
    pub fn select_color(&self, color: Color) {
        show_color(&self.palette, &self.current_color, color);
    }

    /// Shows my name.
    pub fn set_username(&self, name: &str) {
        self.username.set_text_content(Some(name));
    }

    /// Shows the connection status.
    pub fn set_status(&self, status: Status, text: &str) {
        let _ = self.status.set_attribute("data-state", status.as_str());
        self.status.set_text_content(Some(text));
    }

    /// Shows the peers present; open ones (channel open) are marked and counted.
    pub fn set_peers(&self, peers: &[PeerSummary]) {
        let Ok(document) = dom::document() else {
            return;
        };
        self.peers.set_text_content(None);
        for peer in peers {
            let Ok(item) = document.create_element("li") else {
                continue;
            };
            let _ = item.set_attribute("data-peer-id", &peer.id.0);
            let _ = item.set_attribute(
                "title",
                if peer.open {
                    "connected"
                } else {
                    "connecting…"
                },
            );
            if peer.open {
                item.set_class_name("open");
            }
            item.set_text_content(Some(&peer.username));
            let _ = self.peers.append_child(&item);
        }
        let open = peers.iter().filter(|p| p.open).count();
        let _ = self.peers.set_attribute("data-count", &open.to_string());
    }
}

fn show_color(palette: &Element, current_color: &Element, color: Color) {
    let hex = color.to_string();
    let swatches = palette.children();
    for i in 0..swatches.length() {
        let Some(swatch) = swatches.item(i) else {
            continue;
        };
        let active = swatch.get_attribute("data-color").as_deref() == Some(hex.as_str());
        let _ = swatch.class_list().toggle_with_force("active", active);
        let _ = swatch.set_attribute("aria-pressed", if active { "true" } else { "false" });
    }
    let _ = current_color.set_attribute("style", &format!("--swatch:{hex}"));
    let _ = current_color.set_attribute("data-color", &hex);
}
