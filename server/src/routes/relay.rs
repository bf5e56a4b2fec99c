//! `POST /relay/<peerId>/<event>`: one peer's signaling message to another.

use super::body::Body;
use super::path::PathParams;
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::value::RawValue;
use shared::protocol::{
    IceCandidate, MAX_RELAY_BODY_BYTES, PeerId, RelayEvent, SessionDescription, User,
};

pub async fn relay(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    PathParams((peer, event)): PathParams<(String, String)>,
    Body(body): Body<MAX_RELAY_BODY_BYTES>,
) -> Result<StatusCode, ApiError> {
    let outcome = relay_checked(&state, &user, peer, event, &body).await;
    let label = match &outcome {
        Ok(()) => "delivered",
        Err(ApiError::NotInSharedRoom) => "not_in_shared_room",
        Err(ApiError::Unavailable(_)) => "unavailable",
        Err(_) => "bad_request",
    };
    state.metrics.relays.with_label_values(&[label]).inc();
    outcome.map(|()| StatusCode::OK)
}

async fn relay_checked(
    state: &AppState,
    user: &User,
    peer: String,
    event: String,
    body: &[u8],
) -> Result<(), ApiError> {
    let event = RelayEvent::from_name(&event).ok_or(ApiError::UnknownEvent(event))?;
    // The body must be what the event says it is; the receiver's browser hands it straight to
    // RTCPeerConnection. It is forwarded as posted (validated, not re-encoded).
    let bad = |e: serde_json::Error| ApiError::BadBody(format!("{} body: {e}", event.name()));
    match event {
        RelayEvent::SessionDescription => {
            serde_json::from_slice::<SessionDescription>(body).map_err(bad)?;
        }
        RelayEvent::IceCandidate => {
            serde_json::from_slice::<IceCandidate>(body).map_err(bad)?;
        }
    }
    let raw: &RawValue = serde_json::from_slice(body).map_err(bad)?;
    state.hub.relay(user, &PeerId(peer), event, raw).await?;
    Ok(())
}
