//! The room's drawing saved in the browser (`localStorage`), so a reload, or everyone leaving and
//! coming back, finds it again; it then merges with the peers' through the normal sync.
//!
//! Stored as the JSON array of every integrated op, under `drawmesh:room:<roomId>`. Storage is a
//! convenience, never a failure: a full quota or a blocked storage is a warning, and a stored op
//! that fails validation is skipped (the board validates each one as it loads them).

use crate::wire;
use shared::RoomId;
use shared::document::Op;
use wasm_bindgen::JsValue;

/// The key a room's drawing is stored under.
pub fn room_key(room: &RoomId) -> String {
    format!("drawmesh:room:{room}")
}

fn storage() -> Result<web_sys::Storage, String> {
    crate::dom::window()
        .map_err(|_| "no window".to_owned())?
        .local_storage()
        .map_err(|err| describe(&err))?
        .ok_or_else(|| "no localStorage".to_owned())
}

/// Saves `ops` under `key`.
pub fn save<'a>(key: &str, ops: impl Iterator<Item = &'a Op>) -> Result<(), String> {
    let ops: Vec<&Op> = ops.collect();
    let text = wire::encode(&ops)?;
    storage()?
        .set_item(key, &text)
        .map_err(|err| format!("could not save the drawing: {}", describe(&err)))
}

/// The ops stored under `key` (none if nothing is stored or it is unreadable).
pub fn load(key: &str) -> Result<Vec<Op>, String> {
    let Some(text) = storage()?.get_item(key).map_err(|err| describe(&err))? else {
        return Ok(Vec::new());
    };
    wire::decode(&text).map_err(|why| format!("stored drawing unreadable: {why}"))
}

/// Forgets what is stored under `key`.
pub fn remove(key: &str) -> Result<(), String> {
    storage()?.remove_item(key).map_err(|err| describe(&err))
}

fn describe(err: &JsValue) -> String {
    js_sys::Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}
