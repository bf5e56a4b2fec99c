//! Signaling: everything the client says to and hears from the server.
//!
//! `POST /api/access` for a token, `GET /api/config` for ICE servers (and TURN credentials), the SSE stream at
//! `GET /api/connect`, `POST /api/<room>/join`, and `POST /api/relay/<peer>/<event>` to pass a
//! session description or an ICE candidate to one peer. The server only introduces peers and
//! relays their handshakes; drawings never pass through it.

use crate::wire;
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use shared::protocol::{
    AccessRequest, AccessResponse, AddPeer, ClientConfig, Connected, ErrorBody, IceCandidate,
    RelayEvent, Relayed, RemovePeer, SessionDescription, error_code, event,
};
use shared::signing::PublicKey;
use shared::{PeerId, RoomId};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{EventSource, MessageEvent};

/// Where the API lives, on the page's own origin (`trunk serve` proxies it to the server).
pub const API: &str = "/api";

/// Why a signaling request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignalingError {
    /// The request never got an answer (server down, network gone).
    Network(String),
    /// The server answered with an error status and, usually, why.
    Status(u16, String),
    /// The room has the most people it takes (the server's words).
    RoomFull(String),
    /// The answer was not what the protocol says.
    Body(String),
}

impl fmt::Display for SignalingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalingError::Network(why) => write!(f, "server unreachable: {why}"),
            SignalingError::Status(code, why) if why.is_empty() => write!(f, "server said {code}"),
            SignalingError::Status(code, why) => write!(f, "server said {code}: {why}"),
            SignalingError::Body(why) => write!(f, "unexpected answer: {why}"),
            SignalingError::RoomFull(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SignalingError {}

/// Asks for a token for `username`; the answer also names the user (our peer id) and
/// certifies `key`, the key our ops are signed with.
pub async fn request_access(
    username: &str,
    key: PublicKey,
) -> Result<AccessResponse, SignalingError> {
    let body = encode(&AccessRequest {
        username: username.to_owned(),
        key: Some(key),
    })?;
    let response = send(Request::post(&format!("{API}/access")), Some(body)).await?;
    read_json(response).await
}

/// How long a token from [`request_access`] stays valid, in seconds: its `exp` minus its `iat`,
/// both stamped by the server, so the client's clock does not matter. `None` if the token does
/// not say (the client then never renews it ahead of time).
pub fn token_lifetime_secs(token: &str) -> Option<f64> {
    #[derive(serde::Deserialize)]
    struct Times {
        iat: f64,
        exp: f64,
    }
    let claims = token.split('.').nth(1)?;
    // base64url without padding, to the plain base64 `atob` reads.
    let mut b64: String = claims
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !b64.len().is_multiple_of(4) {
        b64.push('=');
    }
    let json = web_sys::window()?.atob(&b64).ok()?;
    let times: Times = wire::decode(&json).ok()?;
    Some(times.exp - times.iat).filter(|secs| secs.is_finite() && *secs > 0.0)
}

/// A signed-in session: the token every other call carries. Cheap to clone; clones share the
/// token, so a [`Session::refresh`] reaches every holder (the relay, the next stream).
#[derive(Clone, Debug)]
pub struct Session {
    token: Rc<RefCell<String>>,
}

impl Session {
    /// A session for a token from [`request_access`].
    pub fn new(token: &str) -> Session {
        Session {
            token: Rc::new(RefCell::new(token.to_owned())),
        }
    }

    /// Joins `room`: the server introduces us to everybody there with `add-peer` events. Only
    /// valid once our stream is open (after [`ServerEvent::Connected`]).
    pub async fn join(&self, room: &RoomId) -> Result<(), SignalingError> {
        // Room ids are URL-safe by construction.
        let url = format!("{API}/{room}/join");
        self.authorized(Request::post(&url), None).await.map(drop)
    }

    /// Passes `body` (JSON) to peer `to` as `event`.
    pub async fn relay(
        &self,
        to: &PeerId,
        event: RelayEvent,
        body: String,
    ) -> Result<(), SignalingError> {
        // Peer ids come from the network: keep them to one path segment.
        let peer = String::from(js_sys::encode_uri_component(&to.0));
        let url = format!("{API}/relay/{peer}/{}", event.name());
        self.authorized(Request::post(&url), Some(body))
            .await
            .map(drop)
    }

    /// Opens our SSE stream; `on_event` hears every event until the [`EventStream`] is dropped.
    ///
    /// The browser's `EventSource` reconnects by itself after a network error; each reconnect
    /// starts with a fresh [`ServerEvent::Connected`].
    pub fn connect(
        &self,
        on_event: impl Fn(ServerEvent) + 'static,
    ) -> Result<EventStream, SignalingError> {
        let token = String::from(js_sys::encode_uri_component(&self.token.borrow()));
        let url = format!("{API}/connect?token={token}");
        let source = EventSource::new(&url).map_err(|e| SignalingError::Network(describe(&e)))?;
        Ok(EventStream::listen(source, Rc::new(on_event)))
    }

    /// Fetches the client configuration: the ICE servers, with this user's own TURN
    /// credentials when the server has a TURN service. They last as long as the token, so a
    /// refreshed session fetches them again.
    pub async fn config(&self) -> Result<ClientConfig, SignalingError> {
        let response = self
            .authorized(Request::get(&format!("{API}/config")), None)
            .await?;
        read_json(response).await
    }

    async fn authorized(
        &self,
        request: RequestBuilder,
        body: Option<String>,
    ) -> Result<Response, SignalingError> {
        let bearer = format!("Bearer {}", self.token.borrow());
        send(request.header("Authorization", &bearer), body).await
    }

    /// Trades the token for a fresh one naming the same peer (`POST /refresh`), so the session
    /// keeps its id, its strokes' authorship and its undo history past the token's hour.
    pub async fn refresh(&self) -> Result<AccessResponse, SignalingError> {
        let response = self
            .authorized(Request::post(&format!("{API}/refresh")), None)
            .await?;
        let access: AccessResponse = read_json(response).await?;
        *self.token.borrow_mut() = access.token.clone();
        Ok(access)
    }
}

/// An event on our SSE stream, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerEvent {
    /// The stream is (again) open: join the room now.
    Connected(Connected),
    /// A peer to connect to.
    AddPeer(AddPeer),
    /// A peer left.
    RemovePeer(RemovePeer),
    /// A peer's offer or answer.
    SessionDescription(Relayed<SessionDescription>),
    /// A peer's ICE candidate.
    IceCandidate(Relayed<IceCandidate>),
    /// The stream broke. `reconnecting` is true while the browser keeps retrying, false once it
    /// has given up (the server refused the stream).
    Lost {
        /// Whether the browser is still retrying.
        reconnecting: bool,
    },
}

type MessageListener = Closure<dyn FnMut(MessageEvent)>;

/// Our open SSE stream. Owns the `EventSource` and its listeners; dropping it closes the stream.
pub struct EventStream {
    source: EventSource,
    listeners: Vec<(&'static str, MessageListener)>,
    /// Kept alive for the `onerror` handler; unset before it is freed.
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl EventStream {
    fn listen(source: EventSource, on_event: Rc<dyn Fn(ServerEvent)>) -> EventStream {
        let names = [
            event::CONNECTED,
            event::ADD_PEER,
            event::REMOVE_PEER,
            RelayEvent::SessionDescription.name(),
            RelayEvent::IceCandidate.name(),
        ];
        let listeners: Vec<_> = names
            .into_iter()
            .map(|name| {
                let on_event = on_event.clone();
                let listener = MessageListener::new(move |message: MessageEvent| {
                    let Some(data) = message.data().as_string() else {
                        return;
                    };
                    match parse_event(name, &data) {
                        Ok(parsed) => on_event(parsed),
                        Err(why) => web_sys::console::warn_1(
                            &format!("dropped a bad `{name}` event: {why}").into(),
                        ),
                    }
                });
                if let Err(err) =
                    source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref())
                {
                    web_sys::console::warn_2(&"could not listen to the stream:".into(), &err);
                }
                (name, listener)
            })
            .collect();
        let on_error = {
            let source = source.clone();
            Closure::<dyn FnMut(web_sys::Event)>::new(move |_: web_sys::Event| {
                on_event(ServerEvent::Lost {
                    reconnecting: source.ready_state() != EventSource::CLOSED,
                });
            })
        };
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        EventStream {
            source,
            listeners,
            _on_error: on_error,
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        for (name, listener) in &self.listeners {
            let _ = self
                .source
                .remove_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
        }
        self.source.set_onerror(None);
        self.source.close();
    }
}

/// Parses the `data:` of an SSE event named `name`.
pub fn parse_event(name: &str, data: &str) -> Result<ServerEvent, String> {
    Ok(match name {
        event::CONNECTED => ServerEvent::Connected(wire::decode(data)?),
        event::ADD_PEER => ServerEvent::AddPeer(wire::decode(data)?),
        event::REMOVE_PEER => ServerEvent::RemovePeer(wire::decode(data)?),
        _ => match RelayEvent::from_name(name) {
            Some(RelayEvent::SessionDescription) => {
                ServerEvent::SessionDescription(wire::decode(data)?)
            }
            Some(RelayEvent::IceCandidate) => ServerEvent::IceCandidate(wire::decode(data)?),
            None => return Err(format!("unknown event `{name}`")),
        },
    })
}

async fn send(request: RequestBuilder, body: Option<String>) -> Result<Response, SignalingError> {
    let request = match body {
        Some(body) => request
            .header("Content-Type", "application/json")
            .body(body),
        None => request.build(),
    }
    .map_err(|e| SignalingError::Network(e.to_string()))?;
    let response = request
        .send()
        .await
        .map_err(|e| SignalingError::Network(e.to_string()))?;
    if response.ok() {
        return Ok(response);
    }
    // Error bodies are `{"error": "..."}`; anything else still leaves the status to report.
    let status = response.status();
    let (why, code) = match response.text().await {
        Ok(text) => {
            let (why, code) = match wire::decode::<ErrorBody>(&text) {
                Ok(body) => (body.error, body.code),
                Err(_) => (text, None),
            };
            // Whatever a proxy sent back (an HTML page, say) should not flood the status line.
            (why.chars().take(200).collect(), code)
        }
        Err(_) => (String::new(), None),
    };
    if code.as_deref() == Some(error_code::ROOM_FULL) {
        return Err(SignalingError::RoomFull(why));
    }
    Err(SignalingError::Status(status, why))
}

async fn read_json<T: DeserializeOwned>(response: Response) -> Result<T, SignalingError> {
    let text = response
        .text()
        .await
        .map_err(|e| SignalingError::Network(e.to_string()))?;
    wire::decode(&text).map_err(SignalingError::Body)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, SignalingError> {
    wire::encode(value).map_err(SignalingError::Body)
}

/// A JS error as text, for a status line or a log.
pub fn describe(err: &JsValue) -> String {
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}
