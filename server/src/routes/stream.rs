//! `GET /connect`: the user's Server-Sent Events stream.

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, State};
use axum::http::Extensions;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::convert::Infallible;
use std::net::SocketAddr;

pub async fn connect(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    headers: HeaderMap,
    extensions: Extensions,
) -> Result<Response, ApiError> {
    if !accepts_event_stream(&headers) {
        return Err(ApiError::NotAcceptable);
    }
    // Counted against its client's streams for as long as the response body lives.
    let permit = match extensions.get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => {
            let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
            Some(
                state
                    .limits
                    .open_stream(state.limits.client(peer.ip(), forwarded))?,
            )
        }
        None => None,
    };
    tracing::info!(peer = %user.id, "stream opened");
    let events = state
        .hub
        .connect(user)
        .await?
        .enumerate()
        .map(move |(n, delivery)| {
            let _held = &permit;
            // Ids count up per stream; every event has one, as the protocol asks.
            Ok::<_, Infallible>(
                Event::default()
                    .id((n + 1).to_string())
                    .event(delivery.event)
                    .data(&*delivery.data),
            )
        });
    // First the reconnect hint, as on the dedicated path (`crate::streams`).
    let retry = Event::default().retry(state.pacing.retry);
    let events =
        futures_util::stream::once(async move { Ok::<_, Infallible>(retry) }).chain(events);
    // Keep-alive comments stop proxies from timing the stream out and let the server notice a
    // vanished client within one interval.
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(state.pacing.keep_alive));
    // Reverse proxies (nginx) must not buffer the stream.
    let no_buffering = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((no_buffering, sse).into_response())
}

/// EventSource always sends `Accept: text/event-stream`; tools that send nothing or `*/*` are let
/// through, anything that asks for another type is told no.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.contains("text/event-stream") || accept.contains("*/*")
}
