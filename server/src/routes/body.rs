//! A request body read whole, up to a limit: over it, a clear 413 in our error shape.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

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
