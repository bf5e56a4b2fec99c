//! The HTTP routes. Each is thin: authenticate (the [`AuthUser`](crate::auth::AuthUser)
//! extractor), validate, call the hub, answer.

mod access;
mod body;
mod health;
mod join;
mod pages;
mod path;
mod relay;

use crate::AppState;
use axum::Router;
use axum::routing::{MethodRouter, get, post};

pub use body::refuse_large_bodies;
pub use health::{healthz, metrics};
pub use pages::{new_room, room_page};

/// The signaling API (the tutorial's paths). Mounted at `/` for the tutorial's client and under
/// `/api` for ours, so `trunk serve` can proxy one prefix to the server during development.
pub fn api() -> Router<AppState> {
    Router::new()
        .route("/access", post(access::access))
        .route("/refresh", post(access::refresh))
        // `GET /connect` never reaches the router: the listener serves every stream itself
        // (`crate::listener`, `crate::streams`). The path is here so other methods get 405.
        .route("/connect", MethodRouter::new())
        .route("/config", get(access::client_config))
        .route("/{room}/join", post(join::join))
        .route("/relay/{peer}/{event}", post(relay::relay))
}
