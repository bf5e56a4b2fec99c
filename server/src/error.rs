//! Every way a request can fail, as one enum with one `IntoResponse`: the status codes are the
//! protocol's, and every body is `{"error": "..."}` so clients can show it.

use crate::hub::HubError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shared::protocol::{ErrorBody, UsernameError};
use shared::room::RoomIdError;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token in `Authorization: Bearer` nor `?token=` (the tutorial answers 401).
    #[error("missing token: send Authorization: Bearer <token> or ?token=<token>")]
    MissingToken,
    /// The token's signature, shape or expiry is wrong (the tutorial answers 403).
    #[error("invalid or expired token")]
    InvalidToken,
    /// The request body is not the JSON this route takes.
    #[error("bad request body: {0}")]
    BadBody(String),
    /// `POST /access` with an unusable username.
    #[error("{0}")]
    BadUsername(#[from] UsernameError),
    /// A path whose parameters cannot be read (not UTF-8 once percent-decoded, say).
    #[error("bad path: {0}")]
    BadPath(String),
    /// A room id in a path that is not a room id.
    #[error("{0}")]
    BadRoomId(#[from] RoomIdError),
    /// `POST /relay/<peer>/<event>` with an event the protocol does not define.
    #[error("unknown relay event '{0}': use session-description or ice-candidate")]
    UnknownEvent(String),
    /// A body over the route's size limit.
    #[error("request body too large (limit {limit} bytes)")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A relay to a peer that shares no room with the sender (or does not exist).
    #[error("you share no room with that peer")]
    NotInSharedRoom,
    /// A join before the user's event stream is open: events would have nowhere to go.
    #[error("open your event stream (GET /connect) before joining a room")]
    NotConnected,
    /// `GET /connect` from something that does not accept an event stream.
    #[error("this endpoint only serves text/event-stream")]
    NotAcceptable,
    /// Nothing here.
    #[error("not found")]
    NotFound,
    /// A path that exists, with a method it does not take.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// The client bundle is missing from the dist directory.
    #[error("the web client is not built: run `scripts/run.sh` (or `trunk build`) first")]
    ClientNotBuilt,
    /// The shared hub (Redis) cannot be reached just now; retry later.
    #[error("signaling is temporarily unavailable ({0}); try again shortly")]
    Unavailable(String),
    /// `POST /<room>/join` to a room with the most members already.
    #[error("this room is full ({0} people)")]
    RoomFull(usize),
    /// `POST /<room>/join` by a user in the most rooms already.
    #[error("you are in {0} rooms already: leave one first")]
    TooManyRooms(usize),
    /// Past a per-client request rate ([`crate::limits`]).
    #[error("too many requests: wait {retry_after} s")]
    TooManyRequests {
        /// Seconds until the next request is let through.
        retry_after: u64,
    },
    /// A client address with its most open event streams already ([`crate::limits`]).
    #[error("too many open streams from your address ({0})")]
    TooManyStreams(usize),
    /// The server is holding as many connections as its descriptors allow; retry later.
    #[error("the server is full just now; try again shortly")]
    Busy,
    /// A failure on our side; details go to the log, not to the client.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The status code the protocol gives this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken => StatusCode::UNAUTHORIZED,
            ApiError::InvalidToken | ApiError::NotInSharedRoom => StatusCode::FORBIDDEN,
            ApiError::BadBody(_)
            | ApiError::BadUsername(_)
            | ApiError::BadPath(_)
            | ApiError::BadRoomId(_)
            | ApiError::UnknownEvent(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } | ApiError::TooManyStreams(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::NotConnected | ApiError::RoomFull(_) | ApiError::TooManyRooms(_) => {
                StatusCode::CONFLICT
            }
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::ClientNotBuilt | ApiError::Unavailable(_) | ApiError::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// Seconds the client should wait before trying again, for the refusals that say so.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::TooManyRequests { retry_after } => Some(*retry_after),
            ApiError::TooManyStreams(_) | ApiError::Busy => Some(5),
            _ => None,
        }
    }

    /// The JSON body this error answers with.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            code: match self {
                ApiError::RoomFull(_) => Some(shared::protocol::error_code::ROOM_FULL.into()),
                _ => None,
            },
        }
    }
}

/// What the hub refused, as the protocol answers it.
impl From<HubError> for ApiError {
    fn from(err: HubError) -> ApiError {
        match err {
            HubError::NotConnected => ApiError::NotConnected,
            HubError::NotInSharedRoom => ApiError::NotInSharedRoom,
            HubError::Unavailable(why) => ApiError::Unavailable(why),
            HubError::RoomFull(max) => ApiError::RoomFull(max),
            HubError::TooManyRooms(max) => ApiError::TooManyRooms(max),
        }
    }
}

/// The bytes of a whole HTTP/1.1 response refusing with `err` (status, JSON body, and
/// `Retry-After` where it applies), for the paths that write to the socket themselves ([`crate::listener`],
/// [`crate::streams`]). The connection closes after it.
pub fn raw_response(err: &ApiError) -> Vec<u8> {
    let body = serde_json::to_string(&err.body()).unwrap_or_else(|_| "{}".into());
    let status = err.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(secs) = err.retry_after() {
        head.push_str(&format!("retry-after: {secs}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
