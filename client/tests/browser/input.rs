//! Pointer input: synthetic Pointer Events on a canvas become pen input in canvas coordinates.

use crate::support::element;
use client::canvas::{PenInput, PointerInput, quantize};
use shared::Point;
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::wasm_bindgen_test;
use web_sys::{HtmlCanvasElement, PointerEvent, PointerEventInit};

fn pointer(kind: &str, id: i32, x: i32, y: i32, pressure: f32, button: i16) -> PointerEvent {
    let init = PointerEventInit::new();
    init.set_bubbles(true);
    init.set_cancelable(true);
    init.set_pointer_id(id);
    init.set_pointer_type("pen");
    init.set_is_primary(true);
    init.set_client_x(x);
    init.set_client_y(y);
    init.set_pressure(pressure);
    init.set_button(button);
    PointerEvent::new_with_event_init_dict(kind, &init).unwrap()
}

#[wasm_bindgen_test]
fn pointer_events_become_pen_input_relative_to_the_canvas() {
    // The canvas sits 30 px right and 20 px down of the viewport's corner.
    let canvas: HtmlCanvasElement = element("canvas", "width:100px;height:100px")
        .dyn_into()
        .unwrap();
    canvas.style().set_property("left", "30px").unwrap();
    canvas.style().set_property("top", "20px").unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let input = {
        let seen = seen.clone();
        PointerInput::attach(&canvas, move |i| seen.borrow_mut().push(i))
    };
    let fire = |e: PointerEvent| {
        canvas.dispatch_event(&e).unwrap();
    };
    fire(pointer("pointermove", 1, 40, 40, 0.0, -1)); // hovering: no stroke yet
    fire(pointer("pointerdown", 1, 40, 30, 0.0, 0)); // pressure 0 counts as a mouse's 0.5
    fire(pointer("pointerdown", 2, 90, 90, 0.5, 0)); // a second pointer is ignored
    fire(pointer("pointermove", 2, 91, 91, 0.5, -1));
    fire(pointer("pointermove", 1, 60, 50, 0.8, -1));
    fire(pointer("pointerup", 2, 91, 91, 0.0, 0));
    fire(pointer("pointercancel", 1, 60, 50, 0.0, 0));
    fire(pointer("pointermove", 1, 70, 50, 0.8, -1)); // after the end: nothing

    assert_eq!(
        *seen.borrow(),
        vec![
            PenInput::Down(Point::new(10.0, 10.0, 0.5)),
            PenInput::Move(vec![Point::new(
                30.0,
                30.0,
                quantize(f64::from(0.8f32), 64.0)
            )]),
            PenInput::Up,
        ]
    );

    // Dropping the handle removes the listeners.
    drop(input);
    fire(pointer("pointerdown", 3, 40, 30, 0.5, 0));
    assert_eq!(seen.borrow().len(), 3);
}

#[wasm_bindgen_test]
fn a_missing_lift_never_leaves_the_pen_stuck() {
    let canvas: HtmlCanvasElement = element("canvas", "width:100px;height:100px")
        .dyn_into()
        .unwrap();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let _input = {
        let seen = seen.clone();
        PointerInput::attach(&canvas, move |i| seen.borrow_mut().push(i))
    };
    let fire = |e: PointerEvent| {
        canvas.dispatch_event(&e).unwrap();
    };
    fire(pointer("pointerdown", 1, 10, 10, 0.5, 0));
    // Its pointerup landed elsewhere; the next press of the same pointer ends the old stroke.
    fire(pointer("pointerdown", 1, 20, 20, 0.5, 0));
    // Losing the capture ends a stroke as well.
    fire(pointer("lostpointercapture", 1, 20, 20, 0.5, 0));
    fire(pointer("pointerup", 1, 20, 20, 0.5, 0));
    let down = |x| PenInput::Down(Point::new(x, x, 0.5));
    assert_eq!(
        *seen.borrow(),
        vec![down(10.0), PenInput::Up, down(20.0), PenInput::Up]
    );
    canvas.remove();
}

#[wasm_bindgen_test]
fn quantized_positions_print_short() {
    assert_eq!(quantize(12.312999, 16.0), 12.3125);
    assert_eq!(quantize(-0.03, 16.0), 0.0);
    assert_eq!(quantize(0.8, 64.0), 0.796875);
}
