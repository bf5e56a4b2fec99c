//! The pages: `GET /` makes a room, `GET /<roomId>` serves the app (the built client's
//! index.html); the client's other files are served from dist by the router's fallback.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{Html, Redirect};
use shared::room::{ROOM_ID_RANDOM_BYTES, RoomId};

/// A new room with an unguessable id: 72 bits from the thread's CSPRNG (ChaCha, OS-seeded).
/// The query string (`?name=alice`) carries over to the room.
pub async fn new_room(uri: Uri) -> Redirect {
    let room = RoomId::from_random_bytes(rand::random::<[u8; ROOM_ID_RANDOM_BYTES]>());
    match uri.query() {
        Some(query) => Redirect::to(&format!("/{room}?{query}")),
        None => Redirect::to(&format!("/{room}")),
    }
}

/// Any path that is a room id serves the app; everything else is a 404.
pub async fn room_page(State(state): State<AppState>, uri: Uri) -> Result<Html<String>, ApiError> {
    RoomId::parse(uri.path().trim_start_matches('/')).map_err(|_| ApiError::NotFound)?;
    // Read per request: a page load is rare next to signaling, and `trunk watch` can rebuild
    // dist under a running server.
    tokio::fs::read_to_string(state.dist.join("index.html"))
        .await
        .map(Html)
        .map_err(|_| ApiError::ClientNotBuilt)
}
