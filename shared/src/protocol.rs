//! The signaling protocol: HTTP requests in, Server-Sent Events out.
//!
//! It is the tutorial's protocol, kept byte-compatible so the tutorial's own JavaScript client works
//! against our server:
//!
//! | request | answer |
//! |---|---|
//! | `POST /access` `{"username"}` | `{"token"}`: a JWT naming a fresh peer id |
//! | `POST /refresh` (Bearer) | `{"token"}`: a new hour for the same peer id (ours, not the tutorial's) |
//! | `GET /connect?token=…` | the user's SSE stream: [`Connected`] first, then [`AddPeer`], [`RemovePeer`] and [`Relayed`] events |
//! | `POST /<roomId>/join` | `add-peer` to every member (`offer: false`) and to the joiner for each member (`offer: true`) |
//! | `POST /relay/<peerId>/<event>` | the body reaches that peer as `event` with `{peer: <sender>, data: <body>}` |
//!
//! Every SSE `data:` line is one of the JSON shapes below. Errors are `{"error": "..."}`
//! ([`ErrorBody`]).

use crate::room::RoomId;
use crate::signing::{Certificate, PublicKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest username accepted by `POST /access`, in characters.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Largest relay body accepted by `POST /relay/...`, in bytes. An SDP offer for data channels is
/// under 1 KiB; the limit leaves room for media sections without letting one peer flood another.
pub const MAX_RELAY_BODY_BYTES: usize = 64 * 1024;

/// SSE event names the server sends.
pub mod event {
    /// First event on every stream: the server is ready to deliver to this user.
    pub const CONNECTED: &str = "connected";
    /// A peer to connect to (or that will connect to us).
    pub const ADD_PEER: &str = "add-peer";
    /// A peer left the room: close its connection.
    pub const REMOVE_PEER: &str = "remove-peer";
}

/// A peer's id: the `id` claim of its token (a uuid), stable for the token's lifetime.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user as peers see it: `{"id", "username"}` (the tutorial's `req.user`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The peer id every relay names.
    pub id: PeerId,
    /// The display name chosen at `/access`.
    pub username: String,
}

/// Body of `POST /access`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRequest {
    /// The display name to put in the token.
    pub username: String,
    /// The public key the browser signs its ops with, to be certified (the tutorial's client
    /// sends none and gets no certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PublicKey>,
}

/// Answer to `POST /access`. The tutorial's client reads only `token`; `user` lets our client
/// know its own peer id (to stamp its strokes) before its stream opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessResponse {
    /// The JWT to send as `Authorization: Bearer` or `?token=`.
    pub token: String,
    /// The user the token names.
    pub user: User,
    /// The server's certificate of the key the request named: the user's peer id signs with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// Why a username is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UsernameError {
    /// Empty, or only white space.
    Empty,
    /// More than [`MAX_USERNAME_CHARS`] characters.
    TooLong,
    /// Holds a control character (newlines would break logs and SSE framing).
    ControlCharacter,
}

impl fmt::Display for UsernameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsernameError::Empty => f.write_str("username must not be empty"),
            UsernameError::TooLong => {
                write!(
                    f,
                    "username must be at most {MAX_USERNAME_CHARS} characters"
                )
            }
            UsernameError::ControlCharacter => {
                f.write_str("username must not contain control characters")
            }
        }
    }
}

impl std::error::Error for UsernameError {}

/// Checks a username and returns it without surrounding white space.
pub fn validate_username(name: &str) -> Result<&str, UsernameError> {
    let name = name.trim();
    if name.is_empty() {
        Err(UsernameError::Empty)
    } else if name.chars().count() > MAX_USERNAME_CHARS {
        Err(UsernameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(UsernameError::ControlCharacter)
    } else {
        Ok(name)
    }
}

/// Answer to `POST /<roomId>/join`: `{"roomId", "peers"}`, where `peers` counts the members the
/// joiner is being introduced to (0 when it was already in the room: nothing is sent again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The room joined.
    #[serde(rename = "roomId")]
    pub room_id: RoomId,
    /// Members introduced by this join.
    pub peers: usize,
}

/// `connected`: `{"user": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connected {
    /// The user this stream belongs to.
    pub user: User,
}

/// `add-peer`: `{"peer": {...}, "roomId": "...", "offer": bool}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPeer {
    /// The other peer.
    pub peer: User,
    /// The room both are in.
    #[serde(rename = "roomId")]
    pub room_id: RoomId,
    /// True for the joiner: it creates the data channel and sends the offer.
    pub offer: bool,
}

/// `remove-peer`: `{"peer": {...}, "roomId": "..."}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovePeer {
    /// The peer that left.
    pub peer: User,
    /// The room it left.
    #[serde(rename = "roomId")]
    pub room_id: RoomId,
}

/// A relayed event: `{"peer": <sender>, "data": <body>}`. The server stamps the sender from its
/// token, so nobody can speak for somebody else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relayed<T> {
    /// Who sent it.
    pub peer: User,
    /// The body as posted.
    pub data: T,
}

/// The events a peer may relay to another. Anything else is refused, so the relay cannot be used
/// to inject `add-peer` or `remove-peer` into somebody's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RelayEvent {
    /// An SDP offer or answer ([`SessionDescription`]).
    SessionDescription,
    /// A trickled ICE candidate ([`IceCandidate`]).
    IceCandidate,
}

impl RelayEvent {
    /// Every relay event.
    pub const ALL: [RelayEvent; 2] = [RelayEvent::SessionDescription, RelayEvent::IceCandidate];

    /// The event's name in URLs and on the SSE stream.
    pub fn name(self) -> &'static str {
        match self {
            RelayEvent::SessionDescription => "session-description",
            RelayEvent::IceCandidate => "ice-candidate",
        }
    }

    /// The event with this name, if the protocol defines one.
    pub fn from_name(name: &str) -> Option<RelayEvent> {
        RelayEvent::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// The kind of an SDP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    /// An offer.
    Offer,
    /// An answer.
    Answer,
    /// A provisional answer.
    Pranswer,
    /// Roll back to the last stable state.
    Rollback,
}

/// Body of `session-description`: `RTCSessionDescription.toJSON()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    /// Offer or answer.
    #[serde(rename = "type")]
    pub kind: SdpType,
    /// The SDP text.
    #[serde(default)]
    pub sdp: String,
}

/// Body of `ice-candidate`: `RTCIceCandidate.toJSON()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The candidate line (empty for end-of-candidates).
    pub candidate: String,
    /// Media stream id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// Media line index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    /// ICE username fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// One ICE server as `RTCPeerConnection` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `GET /config`: what the client needs from the server's configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConfig {
    /// ICE servers for every `RTCPeerConnection`; empty means host candidates only (LAN, localhost).
    pub ice_servers: Vec<IceServer>,
    /// The key this service certifies peers' keys with: certificates signed by it are trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_key: Option<PublicKey>,
}

/// Every error answer's body: `{"error": "..."}`, and for the refusals a client acts on, a
/// `code` ([`error_code`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
    /// What went wrong, for a program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The `code`s of [`ErrorBody`].
pub mod error_code {
    /// `POST /<room>/join`: the room has the most people it takes.
    pub const ROOM_FULL: &str = "room-full";
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn alice() -> User {
        User {
            id: PeerId("6f1c0a52-0000-4000-8000-000000000001".into()),
            username: "alice".into(),
        }
    }

    fn room() -> RoomId {
        RoomId::parse("k3Jx9_aB-2Qz").unwrap()
    }

    /// Serializes, checks the exact JSON, and checks it reads back to the same value.
    fn golden<T>(value: &T, expected: Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        let json = serde_json::to_value(value).unwrap();
        assert_eq!(json, expected);
        let back: T = serde_json::from_value(json).unwrap();
        assert_eq!(&back, value);
    }

    #[test]
    fn sse_payloads_have_the_tutorials_shapes() {
        let user = json!({"id": "6f1c0a52-0000-4000-8000-000000000001", "username": "alice"});
        golden(&Connected { user: alice() }, json!({"user": user}));
        golden(
            &AddPeer {
                peer: alice(),
                room_id: room(),
                offer: true,
            },
            json!({"peer": user, "roomId": "k3Jx9_aB-2Qz", "offer": true}),
        );
        golden(
            &RemovePeer {
                peer: alice(),
                room_id: room(),
            },
            json!({"peer": user, "roomId": "k3Jx9_aB-2Qz"}),
        );
        golden(
            &Relayed {
                peer: alice(),
                data: SessionDescription {
                    kind: SdpType::Offer,
                    sdp: "v=0\r\n".into(),
                },
            },
            json!({"peer": user, "data": {"type": "offer", "sdp": "v=0\r\n"}}),
        );
    }

    #[test]
    fn http_bodies_have_the_tutorials_shapes() {
        golden(
            &AccessRequest {
                username: "bob".into(),
                key: None,
            },
            json!({"username": "bob"}),
        );
        let key = crate::signing::Keypair::from_seed([1; 32]).public();
        golden(
            &AccessRequest {
                username: "bob".into(),
                key: Some(key),
            },
            json!({"username": "bob", "key": key.to_string()}),
        );
        golden(
            &AccessResponse {
                token: "a.b.c".into(),
                user: alice(),
                certificate: None,
            },
            json!({"token": "a.b.c", "user": {"id": alice().id.0, "username": "alice"}}),
        );
        golden(
            &JoinResponse {
                room_id: room(),
                peers: 2,
            },
            json!({"roomId": "k3Jx9_aB-2Qz", "peers": 2}),
        );
        golden(
            &ErrorBody {
                error: "nope".into(),
                code: None,
            },
            json!({"error": "nope"}),
        );
        golden(
            &ErrorBody {
                error: "full".into(),
                code: Some(error_code::ROOM_FULL.into()),
            },
            json!({"error": "full", "code": "room-full"}),
        );
        golden(
            &ClientConfig {
                ice_servers: vec![IceServer {
                    urls: vec!["turn:turn.example:3478".into()],
                    username: Some("u".into()),
                    credential: Some("c".into()),
                }],
                cert_key: None,
            },
            json!({"iceServers": [{"urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"}]}),
        );
        golden(&ClientConfig::default(), json!({"iceServers": []}));
    }

    #[test]
    fn ice_candidates_read_what_browsers_write() {
        // Chromium's RTCIceCandidate.toJSON().
        let browser = json!({
            "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0",
            "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": "abcd"
        });
        let c: IceCandidate = serde_json::from_value(browser.clone()).unwrap();
        assert_eq!(c.sdp_m_line_index, Some(0));
        golden(&c, browser);
        let bare: IceCandidate = serde_json::from_value(json!({"candidate": ""})).unwrap();
        golden(&bare, json!({"candidate": ""}));
    }

    #[test]
    fn relay_bodies_reject_wrong_shapes() {
        assert!(serde_json::from_value::<SessionDescription>(json!({"type": "bogus"})).is_err());
        assert!(serde_json::from_value::<SessionDescription>(json!({"sdp": "x"})).is_err());
        assert!(serde_json::from_value::<IceCandidate>(json!({"sdpMid": "0"})).is_err());
        assert!(serde_json::from_value::<IceCandidate>(json!([1, 2])).is_err());
    }

    #[test]
    fn relay_event_names_round_trip() {
        for e in RelayEvent::ALL {
            assert_eq!(RelayEvent::from_name(e.name()), Some(e));
        }
        assert_eq!(RelayEvent::from_name("add-peer"), None);
        assert_eq!(RelayEvent::from_name(""), None);
    }

    #[test]
    fn usernames() {
        assert_eq!(validate_username("  bob "), Ok("bob"));
        assert_eq!(validate_username(""), Err(UsernameError::Empty));
        assert_eq!(validate_username(" \t "), Err(UsernameError::Empty));
        assert_eq!(
            validate_username(&"é".repeat(64)),
            Ok("é".repeat(64).as_str())
        );
        assert_eq!(
            validate_username(&"é".repeat(65)),
            Err(UsernameError::TooLong)
        );
        assert_eq!(
            validate_username("a\nb"),
            Err(UsernameError::ControlCharacter)
        );
    }
}
