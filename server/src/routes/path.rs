//! Path parameters, refused in our error shape: axum's own `Path` answers a malformed path (bytes
//! that are not UTF-8 once percent-decoded, say) in plain text, which clients cannot show.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The route's path parameters, or a 400 [`ApiError::BadPath`].
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| PathParams(t))
            .map_err(|rejection| ApiError::BadPath(rejection.body_text()))
    }
}
