//! The page's address: the room is its path, my name `?name=`, and `?ice=relay` asks for relayed
//! connections only. Read once, when the page starts.

use shared::protocol::validate_username;
use shared::room::{ROOM_ID_RANDOM_BYTES, RoomId};
use wasm_bindgen::JsValue;

/// What the address asks for.
pub struct Location {
    /// The name to sign in with.
    pub username: String,
    /// The room, or why the link names none.
    pub room: Result<RoomId, String>,
    /// `?ice=relay`: connect to peers through TURN relays only.
    pub relay_only: bool,
}

impl Location {
    /// Reads the window's address (giving a bare `/` a fresh room, see [`room_from`]).
    pub fn read(window: &web_sys::Window) -> Location {
        Location {
            username: username_from(window),
            room: room_from(window),
            relay_only: relay_only_from(window),
        }
    }

    /// The room's name in file names: its id, or `drawing` without one.
    pub fn room_name(&self) -> String {
        self.room
            .as_ref()
            .map_or_else(|_| "drawing".to_owned(), ToString::to_string)
    }
}

/// `?ice=relay` in the page's address: only relayed (TURN) candidates. For testing a TURN
/// deployment, and for people who must not show their address to the other peers.
pub fn relay_only_from(window: &web_sys::Window) -> bool {
    query_param(window, "ice").is_some_and(|ice| ice == "relay")
}

/// The page address's `?name=value` parameter, if present.
fn query_param(window: &web_sys::Window, name: &str) -> Option<String> {
    let search = window.location().search().ok()?;
    web_sys::UrlSearchParams::new_with_str(&search)
        .ok()?
        .get(name)
}

/// The name to use: `?name=` if it is a valid username, otherwise `user` and five random digits
/// (the tutorial's default).
pub fn username_from(window: &web_sys::Window) -> String {
    if let Some(asked) = query_param(window, "name") {
        match validate_username(&asked) {
            Ok(name) => return name.to_owned(),
            Err(why) => crate::dom::warn(&format!("ignoring ?name=: {why}")),
        }
    }
    format!(
        "user{:05}",
        (js_sys::Math::random() * 100_000.0) as u32 % 100_000
    )
}

/// The room named by the page's path. A bare `/` (which the server redirects, but `trunk serve`
/// does not) gets a fresh random room, written into the address bar so it can be shared.
pub fn room_from(window: &web_sys::Window) -> Result<RoomId, String> {
    let location = window.location();
    let path = location.pathname().unwrap_or_default();
    let path = path.strip_prefix('/').unwrap_or(&path);
    if !path.is_empty() {
        return RoomId::parse(path).map_err(|why| format!("Bad room link: {why}"));
    }
    let mut bytes = [0u8; ROOM_ID_RANDOM_BYTES];
    window
        .crypto()
        .and_then(|crypto| crypto.get_random_values_with_u8_array(&mut bytes))
        .map_err(|_| "No room in the link, and no randomness to make one".to_owned())?;
    let room = RoomId::from_random_bytes(bytes);
    if let Ok(history) = window.history() {
        let search = location.search().unwrap_or_default();
        let _ =
            history.replace_state_with_url(&JsValue::NULL, "", Some(&format!("/{room}{search}")));
    }
    Ok(room)
}
