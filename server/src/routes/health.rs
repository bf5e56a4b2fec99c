//! `GET /healthz`: whether this process can serve (for load balancers and orchestrators), and
//! `GET /metrics`: its figures for Prometheus.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// 200 `{"status": "ok", "backend": ...}` when the hub works; 503 with the reason otherwise
/// (Redis unreachable: streams stay open, but joins and relays would fail).
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.hub.health().map_err(ApiError::Unavailable)?;
    Ok(Json(
        json!({"status": "ok", "backend": state.hub.backend_name()}),
    ))
}

/// The Prometheus text exposition; the gauges are read from the hub now.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.hub.stats();
    state.metrics.streams.set(gauge(stats.streams));
    state.metrics.rooms.set(gauge(stats.rooms));
    state
        .metrics
        .connections
        .set(gauge(state.connections.open()));
    let runtime = tokio::runtime::Handle::current().metrics();
    state.metrics.tasks.set(gauge(runtime.num_alive_tasks()));
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
