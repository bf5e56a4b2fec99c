//! `POST /access` (a token for a new peer, and a certificate of its signing key), `POST /refresh`, and `GET /config` (what the browser
//! needs to know: ICE servers, and its own TURN credentials).

use super::body::Body;
use crate::AppState;
use crate::auth::{AuthUser, MaybeSession};
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use shared::protocol::{AccessRequest, AccessResponse, ClientConfig, validate_username};
use shared::signing::Certificate;

/// Usernames are short; a few KiB is plenty for the JSON around one.
const MAX_ACCESS_BODY_BYTES: usize = 4 * 1024;

pub async fn access(
    State(state): State<AppState>,
    Body(body): Body<MAX_ACCESS_BODY_BYTES>,
) -> Result<Json<AccessResponse>, ApiError> {
    // Parsed by hand rather than with `Json` so every mistake (no content type, not JSON, no
    // username) gets the same clear 400 in our error shape.
    let request: AccessRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadBody(e.to_string()))?;
    let username = validate_username(&request.username)?;
    let (token, user) = state.tokens.issue(username)?;
    let certificate = request
        .key
        .map(|key| Certificate::issue(&state.certifier, user.id.clone(), key));
    Ok(Json(AccessResponse {
        token,
        user,
        certificate,
    }))
}

/// `POST /refresh` (Bearer, a still-valid token): a new token for the same user, so a session
/// that outlives its first hour keeps its peer id.
pub async fn refresh(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> Result<Json<AccessResponse>, ApiError> {
    let token = state.tokens.renew(&user)?;
    // The certificate from `/access` never expires: nothing to renew.
    Ok(Json(AccessResponse {
        token,
        user,
        certificate: None,
    }))
}

/// `GET /config`: the ICE servers. Asked with a token, the answer also holds that user's own TURN
/// credentials (when a TURN service is configured), valid exactly as long as the token.
pub async fn client_config(
    State(state): State<AppState>,
    MaybeSession(session): MaybeSession,
) -> Json<ClientConfig> {
    let mut config = ClientConfig::clone(&state.client_config);
    if let (Some(turn), Some(session)) = (&state.turn, session) {
        config
            .ice_servers
            .push(turn.ice_server_for(&session.user.id, session.expires_at));
    }
    Json(config)
}
