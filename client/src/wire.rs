//! JSON on the wire: every request body, SSE payload and data-channel message is encoded and
//! decoded here, so the choice of encoder is one decision.
//!
//! The browser's own `JSON.parse`/`JSON.stringify` with `serde-wasm-bindgen` between them and our
//! types. Measured on this client's release build (wasm-opt -Oz): 216 KB raw / 92 KB gzip,
//! against 258 KB / 115 KB with `serde_json`, whose parser and float printer would ship inside
//! the wasm. The one thing `serde_json` did better, printing an `f32` in its shortest form, does
//! not matter here: pen positions are quantized to binary fractions (see `canvas`), which print
//! short either way.

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;

/// Parses JSON `text` as a `T`; the error says why, for a log line.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let value = js_sys::JSON::parse(text).map_err(|err| js_error(&err, "not JSON"))?;
    serde_wasm_bindgen::from_value(value).map_err(|err| err.to_string())
}

/// Writes `value` as JSON. Our wire types are plain structs that always serialize; a failure
/// would be a bug, which callers log before dropping the message.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<String, String> {
    // Maps (version vectors) as plain objects: the default, a JS `Map`, stringifies as `{}`.
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let value = value
        .serialize(&serializer)
        .map_err(|err| err.to_string())?;
    js_sys::JSON::stringify(&value)
        .map(String::from)
        .map_err(|err| js_error(&err, "not serializable"))
}

fn js_error(err: &JsValue, fallback: &str) -> String {
    js_sys::Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| fallback.to_owned())
}
