//! Small DOM helpers: the window and document, and the browser callbacks the client registers
//! (event listeners, timeouts), each owned by a handle that unregisters it on drop.

use wasm_bindgen::prelude::*;
use web_sys::{Document, Event, EventTarget, Window};

/// The page's window (absent only outside a browser, e.g. in a worker).
pub fn window() -> Result<Window, JsValue> {
    web_sys::window().ok_or_else(|| JsValue::from_str("no window"))
}

/// The page's document.
pub fn document() -> Result<Document, JsValue> {
    window()?
        .document()
        .ok_or_else(|| JsValue::from_str("no document"))
}

/// An event listener that lives as long as this handle: dropping it removes the listener and
/// frees the callback (the `gloo-events` pattern, without the dependency).
pub struct Listener {
    target: EventTarget,
    name: &'static str,
    callback: Closure<dyn FnMut(Event)>,
}

impl Listener {
    /// Calls `callback` for every `name` event on `target`.
    pub fn new(
        target: &EventTarget,
        name: &'static str,
        callback: impl FnMut(Event) + 'static,
    ) -> Self {
        let callback = Closure::<dyn FnMut(Event)>::new(callback);
        if let Err(err) =
            target.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref())
        {
            web_sys::console::warn_2(&format!("could not listen for {name}:").into(), &err);
        }
        Listener {
            target: target.clone(),
            name,
            callback,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.name, self.callback.as_ref().unchecked_ref());
    }
}

/// A `setTimeout` that lives as long as this handle: dropping it before it fires cancels it (the
/// `gloo-timers` pattern, without the dependency). Whatever waits on a timer owns its handle, so
/// a wait that is no longer wanted ends with its owner instead of firing and being ignored.
pub struct Timeout {
    id: Option<i32>,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Calls `callback` once, in `ms` milliseconds.
    pub fn new(ms: i32, callback: impl FnOnce() + 'static) -> Timeout {
        let callback = Closure::<dyn FnMut()>::once(callback);
        let id = window().and_then(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(
                callback.as_ref().unchecked_ref(),
                ms,
            )
        });
        if let Err(err) = &id {
            web_sys::console::warn_2(&"could not set a timer:".into(), err);
        }
        Timeout {
            id: id.ok(),
            _callback: callback,
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        // Clearing one that already fired does nothing. (Dropped from inside its own callback,
        // the closure is freed when the callback returns: wasm-bindgen counts the call.)
        if let (Some(id), Ok(window)) = (self.id, window()) {
            window.clear_timeout_with_handle(id);
        }
    }
}

/// `performance.now()`, in milliseconds.
pub fn now_ms() -> f64 {
    window()
        .ok()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

/// Resolves after `ms` milliseconds (a `setTimeout` as a future).
pub async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Ok(window) = window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A warning on the console: what the client says when it drops something and carries on.
pub fn warn(what: &str) {
    web_sys::console::warn_1(&JsValue::from_str(what));
}
