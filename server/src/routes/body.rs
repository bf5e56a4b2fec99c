//! A request body read whole, up to a limit: over it, a clear 413 in our error shape.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::protocol::MAX_RELAY_BODY_BYTES;

/// The body's bytes, at most `LIMIT` of them.
pub struct Body<const LIMIT: usize>(pub Bytes);

impl<S: Send + Sync, const LIMIT: usize> FromRequest<S> for Body<LIMIT> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        axum::body::to_bytes(req.into_body(), LIMIT)
            .await
            .map(Body)
            .map_err(|_| ApiError::BodyTooLarge { limit: LIMIT })
    }
}

/// The most any route reads ([`MAX_RELAY_BODY_BYTES`], a relayed SDP): a request announcing more
/// is refused before any handler runs, whatever the route (those that read no body too).
pub const MAX_BODY_BYTES: usize = MAX_RELAY_BODY_BYTES;

/// Middleware: a `Content-Length` over [`MAX_BODY_BYTES`] is a 413 in our error shape. (A
/// chunked body has no length to judge; the routes that read one stop at their own limit.)
pub async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
        }
        .into_response();
    }
    next.run(req).await
}
