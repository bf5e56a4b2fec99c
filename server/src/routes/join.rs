//! `POST /<roomId>/join`.

use super::path::PathParams;
use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::hub::Joined;
use axum::Json;
use axum::extract::State;
use shared::protocol::JoinResponse;
use shared::room::RoomId;

pub async fn join(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    PathParams(room): PathParams<String>,
) -> Result<Json<JoinResponse>, ApiError> {
    let room = RoomId::parse(&room)?;
    let peers = match state.hub.join(&user, &room).await? {
        Joined::New { members } => {
            state.metrics.joins.inc();
            members
        }
        Joined::Already => 0,
    };
    tracing::info!(peer = %user.id, %room, peers, "joined");
    Ok(Json(JoinResponse {
        room_id: room,
        peers,
    }))
}
