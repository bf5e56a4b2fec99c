//! Navigation and hover on the canvas: the wheel and trackpad pinch zoom, two-finger touch pinch
//! zooms and pans, the middle mouse button pans, and the pointer's hover position (for the live
//! cursor). Drawing itself is [`PointerInput`](crate::canvas::PointerInput)'s; space + drag is
//! the app's (it turns the pen's drag into a pan).
//!
//! Positions are CSS pixels from the canvas's top-left corner ("screen"); the app turns them into
//! view changes.

use crate::dom::Listener;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{Event, HtmlCanvasElement, PointerEvent, WheelEvent};

/// A navigation or hover gesture, in screen coordinates.
#[derive(Clone, Debug, PartialEq)]
pub enum Gesture {
    /// Zoom by `factor` about a screen point.
    Zoom {
        /// The fixed point.
        at: (f32, f32),
        /// The zoom multiplier.
        factor: f32,
    },
    /// Move the drawing by a screen-pixel drag.
    Pan(f32, f32),
    /// A second finger came down: the one-finger stroke it interrupted should end.
    PinchStart,
    /// The pointer hovers at a point, or left the canvas (`None`).
    Hover(Option<(f32, f32)>),
}

#[derive(Default)]
struct State {
    /// Touch points down, by pointer id; none are taken while a pen is down (a palm).
    touches: BTreeMap<i32, (f32, f32)>,
    /// Pens down, by pointer id: while there is one, touches are a palm, and neither pinch nor
    /// pan (`shared::pointer` keeps them from drawing).
    pens: BTreeSet<i32>,
    /// The middle-button drag: pointer id and last position.
    middle: Option<(i32, (f32, f32))>,
}

/// The gestures on one canvas. Owns its listeners; dropping it stops them.
pub struct Gestures {
    _listeners: Vec<Listener>,
}

impl Gestures {
    /// Starts listening on `element`; `on_gesture` hears every [`Gesture`]. It is an `Fn`, so a
    /// gesture that arrives while it runs (one it caused) reaches it too, rather than being lost.
    pub fn attach(element: &HtmlCanvasElement, on_gesture: impl Fn(Gesture) + 'static) -> Self {
        let emit = Rc::new(on_gesture);
        let state = Rc::new(RefCell::new(State::default()));
        let at = {
            let element = element.clone();
            move |e: &PointerEvent| {
                let rect = element.get_bounding_client_rect();
                let precise = e.unchecked_ref::<crate::canvas::PrecisePointer>();
                (
                    (precise.client_x() - rect.left()) as f32,
                    (precise.client_y() - rect.top()) as f32,
                )
            }
        };
        let at = Rc::new(at);

        let wheel = {
            let (emit, at_element) = (emit.clone(), element.clone());
            Listener::new(element, "wheel", move |e: Event| {
                let Some(e) = e.dyn_ref::<WheelEvent>() else {
                    return;
                };
                // The page itself never scrolls or zooms under the canvas.
                e.prevent_default();
                let rect = at_element.get_bounding_client_rect();
                let x = (f64::from(e.client_x()) - rect.left()) as f32;
                let y = (f64::from(e.client_y()) - rect.top()) as f32;
                // Line and page deltas (some mice) are scaled to pixels. A pinch on a trackpad
                // arrives as a wheel with ctrlKey and small deltas: zoom it faster.
                let unit = match e.delta_mode() {
                    WheelEvent::DOM_DELTA_LINE => 16.0,
                    WheelEvent::DOM_DELTA_PAGE => 400.0,
                    _ => 1.0,
                };
                let pinch = if e.ctrl_key() { 4.0 } else { 1.0 };
                let delta = (e.delta_y() * unit * pinch) as f32;
                emit(Gesture::Zoom {
                    at: (x, y),
                    factor: shared::view::View::wheel_factor(delta),
                });
            })
        };
        let pointer = {
            let (emit, state, at, element) =
                (emit.clone(), state.clone(), at.clone(), element.clone());
            Rc::new(move |e: &Event| {
                let Some(e) = e.dyn_ref::<PointerEvent>() else {
                    return;
                };
                let (id, p) = (e.pointer_id(), at(e));
                // Never borrowed twice: it is released before every `emit`, and nothing done
                // while it is held fires a pointer event.
                let mut state = state.borrow_mut();
                match e.type_().as_str() {
                    "pointerdown" if e.pointer_type() == "pen" => {
                        // A palm that landed first stops counting as fingers.
                        state.pens.insert(id);
                        state.touches.clear();
                    }
                    "pointerdown" if e.pointer_type() == "touch" && state.pens.is_empty() => {
                        state.touches.insert(id, p);
                        if state.touches.len() == 2 {
                            drop(state);
                            emit(Gesture::PinchStart);
                        }
                    }
                    "pointerdown" if e.pointer_type() == "mouse" && e.button() == 1 => {
                        e.prevent_default();
                        let _ = element.set_pointer_capture(id);
                        state.middle = Some((id, p));
                    }
                    "pointermove" => {
                        if let Some((mid, last)) = state.middle
                            && mid == id
                        {
                            state.middle = Some((id, p));
                            drop(state);
                            emit(Gesture::Pan(p.0 - last.0, p.1 - last.1));
                            return;
                        }
                        if let Some(before) = state.touches.get(&id).copied() {
                            let other = state
                                .touches
                                .iter()
                                .find(|(k, _)| **k != id)
                                .map(|(_, v)| *v);
                            state.touches.insert(id, p);
                            let (Some(other), 2) = (other, state.touches.len()) else {
                                return;
                            };
                            drop(state);
                            let (c0, d0) = centre_and_span(before, other);
                            let (c1, d1) = centre_and_span(p, other);
                            if d0 > 1.0 && d1 > 1.0 {
                                emit(Gesture::Zoom {
                                    at: c1,
                                    factor: d1 / d0,
                                });
                            }
                            emit(Gesture::Pan(c1.0 - c0.0, c1.1 - c0.1));
                            return;
                        }
                        if e.pointer_type() != "touch" {
                            drop(state);
                            emit(Gesture::Hover(Some(p)));
                        }
                    }
                    "pointerup" | "pointercancel" => {
                        state.touches.remove(&id);
                        state.pens.remove(&id);
                        if state.middle.is_some_and(|(mid, _)| mid == id) {
                            state.middle = None;
                        }
                    }
                    "pointerleave" if e.pointer_type() != "touch" => {
                        drop(state);
                        emit(Gesture::Hover(None));
                    }
                    _ => {}
                }
            })
        };
        let listen = |name| {
            let pointer = pointer.clone();
            Listener::new(element, name, move |e| pointer(&e))
        };
        Gestures {
            _listeners: vec![
                wheel,
                listen("pointerdown"),
                listen("pointermove"),
                listen("pointerup"),
                listen("pointercancel"),
                listen("pointerleave"),
            ],
        }
    }
}

/// The midpoint of two touches and their distance.
fn centre_and_span(a: (f32, f32), b: (f32, f32)) -> ((f32, f32), f32) {
    (
        ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0),
        ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt(),
    )
}
