//! The menubar: the DOM contract the end-to-end tests rely on.

use crate::support::element;
use client::mesh::PeerSummary;
use client::tools::Tool;
use client::ui::{PEER_GREY, Status, Ui};
use shared::PeerId;
use shared::color::{Color, PALETTE};
use shared::link::{Route, Status as LinkStatus, Unreachable};
use std::cell::Cell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::HtmlElement;

fn attr(root: &web_sys::Element, selector: &str, name: &str) -> Option<String> {
    root.query_selector(selector).unwrap()?.get_attribute(name)
}

#[wasm_bindgen_test]
fn the_menubar_shows_palette_name_status_and_peers() {
    let root = element("div", "width:900px;height:300px");
    let ui = Ui::mount(&root, "<b>eve</b>", PALETTE[2]).unwrap();

    assert_eq!(
        root.query_selector_all(".swatch").unwrap().length(),
        PALETTE.len() as u32
    );
    let active = root.query_selector_all(".swatch.active").unwrap();
    assert_eq!(active.length(), 1);
    assert_eq!(
        attr(&root, ".swatch.active", "data-color").as_deref(),
        Some("#e03131")
    );
    // Names go in as text, never as markup.
    let name = root.query_selector("#username").unwrap().unwrap();
    assert_eq!(name.text_content().as_deref(), Some("<b>eve</b>"));
    assert_eq!(name.children().length(), 0);
    assert_eq!(ui.canvas().id(), "board");
    assert_eq!(
        attr(&root, "#status", "data-state").as_deref(),
        Some("connecting")
    );

    ui.set_status(Status::Offline, "Offline");
    assert_eq!(
        attr(&root, "#status", "data-state").as_deref(),
        Some("offline")
    );

    let peer = |id: &str, name: &str, open| PeerSummary {
        id: PeerId(id.into()),
        username: name.into(),
        open,
        status: if open {
            LinkStatus::Open(Some(Route::Relayed))
        } else {
            LinkStatus::Unreachable(Unreachable::IceFailed)
        },
    };
    let ann_color = Color::rgb(0x2f, 0x9e, 0x44);
    ui.set_peers(
        &[peer("p1", "ann", true), peer("p2", "<i>bo</i>", false)],
        |id| (id.0 == "p1").then_some(ann_color),
    );
    assert_eq!(attr(&root, "#peers", "data-count").as_deref(), Some("1"));
    let items = root.query_selector_all("#peers li").unwrap();
    assert_eq!(items.length(), 2);
    assert_eq!(
        attr(&root, "#peers li[data-peer-id=p1]", "class").as_deref(),
        Some("open")
    );
    let bo = root
        .query_selector("#peers li[data-peer-id=p2]")
        .unwrap()
        .unwrap();
    assert_eq!(
        bo.query_selector(".peer-name")
            .unwrap()
            .unwrap()
            .text_content()
            .as_deref(),
        Some("<i>bo</i>")
    );
    // How each is connected, or why not, for a person to see.
    assert_eq!(
        attr(&root, "#peers li[data-peer-id=p1]", "data-link").as_deref(),
        Some("relayed")
    );
    assert_eq!(
        root.query_selector("#peers li[data-peer-id=p1] .peer-link")
            .unwrap()
            .unwrap()
            .text_content()
            .as_deref(),
        Some("TURN")
    );
    assert_eq!(
        bo.get_attribute("data-link").as_deref(),
        Some("unreachable")
    );
    assert!(
        bo.text_content()
            .unwrap()
            .contains(Unreachable::IceFailed.short())
    );
    assert!(
        bo.get_attribute("title")
            .unwrap()
            .contains(Unreachable::IceFailed.describe())
    );
    assert!(!bo.class_list().contains("open"));
    // Each peer shows its colour; grey until its cursor told us.
    assert_eq!(
        attr(&root, "#peers li[data-peer-id=p1]", "data-color").as_deref(),
        Some("#2f9e44")
    );
    assert_eq!(
        bo.get_attribute("data-color").as_deref(),
        Some(PEER_GREY.to_string().as_str())
    );
    ui.set_peers(&[], |_| None);
    assert_eq!(attr(&root, "#peers", "data-count").as_deref(), Some("0"));
    assert_eq!(root.query_selector_all("#peers li").unwrap().length(), 0);
    root.remove();
}

#[wasm_bindgen_test]
fn clicking_a_swatch_selects_its_colour() {
    let root = element("div", "width:900px;height:300px");
    let ui = Ui::mount(&root, "eve", PALETTE[0]).unwrap();
    let picked = Rc::new(Cell::new(None));
    let _listener = {
        let picked = picked.clone();
        ui.on_pick(move |c| picked.set(Some(c)))
    };
    let blue: HtmlElement = root
        .query_selector(".swatch[data-color='#1971c2']")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    blue.click();
    assert_eq!(picked.get(), Some(Color::rgb(0x19, 0x71, 0xc2)));
    assert_eq!(
        root.query_selector_all(".swatch.active").unwrap().length(),
        1
    );
    assert!(blue.class_list().contains("active"));
    assert_eq!(
        attr(&root, "#current-color", "data-color").as_deref(),
        Some("#1971c2")
    );
    root.remove();
}

#[wasm_bindgen_test]
fn tools_width_history_zoom_and_the_clear_dialog() {
    let root = element("div", "width:900px;height:300px");
    let ui = Ui::mount(&root, "eve", PALETTE[0]).unwrap();
    let tools: Vec<String> = (0..6)
        .map(|i| {
            root.query_selector_all("[data-tool]")
                .unwrap()
                .item(i)
                .unwrap()
                .dyn_into::<web_sys::Element>()
                .unwrap()
                .get_attribute("data-tool")
                .unwrap()
        })
        .collect();
    assert_eq!(tools, ["pen", "eraser", "line", "rect", "ellipse", "text"]);
    assert_eq!(
        attr(&root, "[data-tool].active", "data-tool").as_deref(),
        Some("pen")
    );
    let picked = Rc::new(Cell::new(None));
    let _listener = {
        let picked = picked.clone();
        ui.on_tool(move |t| picked.set(Some(t)))
    };
    let rect: HtmlElement = root
        .query_selector("[data-tool=rect]")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    rect.click();
    assert_eq!(picked.get(), Some(Tool::Rect));
    assert_eq!(
        root.query_selector_all(".active[data-tool]")
            .unwrap()
            .length(),
        1
    );
    assert!(rect.class_list().contains("active"));

    assert_eq!(attr(&root, "#width", "min").as_deref(), Some("1"));
    assert_eq!(attr(&root, "#width", "max").as_deref(), Some("32"));
    assert_eq!(
        attr(&root, "#color-custom", "type").as_deref(),
        Some("color")
    );

    assert!(attr(&root, "#undo", "disabled").is_some());
    ui.set_history(true, false);
    assert!(attr(&root, "#undo", "disabled").is_none());
    assert!(attr(&root, "#redo", "disabled").is_some());

    ui.set_zoom(1.5);
    assert_eq!(
        root.query_selector("#zoom")
            .unwrap()
            .unwrap()
            .text_content()
            .as_deref(),
        Some("150%")
    );
    assert_eq!(attr(&root, "#board", "data-zoom").as_deref(), Some("1.5"));

    ui.open_clear_dialog();
    assert!(attr(&root, "#clear-dialog", "open").is_some());
    ui.close_clear_dialog();
    assert!(attr(&root, "#clear-dialog", "open").is_none());
    root.remove();
}
