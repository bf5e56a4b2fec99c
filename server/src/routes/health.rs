//! `GET /healthz`: whether this process can serve (for load balancers and orchestrators).

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// 200 `{"status": "ok", "backend": ...}` when the hub works; 503 with the reason otherwise
/// (Redis unreachable: streams stay open, but joins and relays would fail).
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.hub.health().map_err(ApiError::Unavailable)?;
    Ok(Json(
        json!({"status": "ok", "backend": state.hub.backend_name()}),
    ))
}
