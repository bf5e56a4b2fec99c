//! Who else is here and where they point: each peer's colour (learnt from their cursor messages)
//! and their live cursors, drawn as small DOM elements over the canvas.
//!
//! A cursor is `<div class="cursor" data-peer-id="…">` with an arrow in the peer's colour and
//! `<span class="cursor-name">` holding the name (as text, never markup). Positions arrive in
//! world coordinates and are placed through the view, so cursors stay on the drawing while it is
//! panned and zoomed.

use crate::dom;
use shared::PeerId;
use shared::color::Color;
use shared::view::View;
use std::collections::BTreeMap;
use web_sys::Element;

const ARROW_SVG: &str =
    r#"<svg viewBox="0 0 16 16" aria-hidden="true"><path d="M1.5 1.5l4.2 12 1.9-5 5-1.9z"/></svg>"#;

struct Cursor {
    element: Element,
    at: Option<(f32, f32)>,
    color: Color,
}

/// The peers' colours and the cursor overlay.
pub struct Presence {
    overlay: Element,
    colors: BTreeMap<PeerId, Color>,
    cursors: BTreeMap<PeerId, Cursor>,
}

impl Presence {
    /// Cursors go into `overlay` (a box the size of the canvas, on top of it).
    pub fn new(overlay: Element) -> Presence {
        Presence {
            overlay,
            colors: BTreeMap::new(),
            cursors: BTreeMap::new(),
        }
    }

    /// A peer's colour, once it told us.
    pub fn color(&self, peer: &PeerId) -> Option<Color> {
        self.colors.get(peer).copied()
    }

    /// Takes a peer's cursor message; shows, moves or hides its cursor. Returns true when the
    /// peer's colour changed (the peers list then shows the new one).
    pub fn cursor(
        &mut self,
        peer: &PeerId,
        username: &str,
        at: Option<(f32, f32)>,
        color: Color,
        view: &View,
    ) -> bool {
        let recolored = self.colors.insert(peer.clone(), color) != Some(color);
        if !self.cursors.contains_key(peer) {
            let Some(element) = new_cursor(peer) else {
                return recolored;
            };
            let _ = self.overlay.append_child(&element);
            self.cursors.insert(
                peer.clone(),
                Cursor {
                    element,
                    at: None,
                    color,
                },
            );
        }
        if let Some(cursor) = self.cursors.get_mut(peer) {
            cursor.at = at;
            cursor.color = color;
            if let Ok(Some(name)) = cursor.element.query_selector(".cursor-name")
                && name.text_content().as_deref() != Some(username)
            {
                name.set_text_content(Some(username));
            }
            place(cursor, view);
        }
        recolored
    }

    /// Places every cursor again (the view changed).
    pub fn reposition(&mut self, view: &View) {
        for cursor in self.cursors.values_mut() {
            place(cursor, view);
        }
    }

    /// Forgets the peers not in `present`: their cursors go, and their colours.
    pub fn retain(&mut self, present: impl Fn(&PeerId) -> bool) {
        self.cursors.retain(|id, cursor| {
            let keep = present(id);
            if !keep {
                cursor.element.remove();
            }
            keep
        });
        self.colors.retain(|id, _| present(id));
    }
}

fn new_cursor(peer: &PeerId) -> Option<Element> {
    let document = dom::document().ok()?;
    let element = document.create_element("div").ok()?;
    element.set_class_name("cursor");
    element.set_attribute("data-peer-id", &peer.0).ok()?;
    element.set_inner_html(&format!(r#"{ARROW_SVG}<span class="cursor-name"></span>"#));
    Some(element)
}

fn place(cursor: &Cursor, view: &View) {
    let element = &cursor.element;
    match cursor.at {
        Some((x, y)) => {
            let (sx, sy) = view.to_screen(x, y);
            let _ = element.toggle_attribute_with_force("hidden", false);
            let _ = element.set_attribute(
                "style",
                &format!("--peer:{};transform:translate({sx}px,{sy}px)", cursor.color),
            );
        }
        None => {
            let _ = element.toggle_attribute_with_force("hidden", true);
        }
    }
}
