//! The wire: SSE payloads parse into events, stroke messages print compactly.

use client::signaling::{ServerEvent, parse_event};
use client::wire;
use shared::color::Color;
use shared::document::{Op, OpKind, Shape, VersionVector};
use shared::protocol::{IceCandidate, SdpType};
use shared::sync::ChannelMessage;
use shared::{PeerId, Point};
use wasm_bindgen_test::wasm_bindgen_test;

const USER: &str = r#"{"id":"6f1c0a52-0000-4000-8000-000000000001","username":"alice"}"#;

#[wasm_bindgen_test]
fn sse_payloads_parse_into_events() {
    let Ok(ServerEvent::AddPeer(add)) = parse_event(
        "add-peer",
        &format!(r#"{{"peer":{USER},"roomId":"k3Jx9_aB-2Qz","offer":true}}"#),
    ) else {
        panic!("add-peer did not parse");
    };
    assert!(add.offer);
    assert_eq!(add.peer.username, "alice");
    assert_eq!(add.room_id.as_str(), "k3Jx9_aB-2Qz");

    let Ok(ServerEvent::SessionDescription(sd)) = parse_event(
        "session-description",
        &format!(r#"{{"peer":{USER},"data":{{"type":"answer","sdp":"v=0\r\n"}}}}"#),
    ) else {
        panic!("session-description did not parse");
    };
    assert_eq!(sd.data.kind, SdpType::Answer);
    assert_eq!(sd.data.sdp, "v=0\r\n");

    let Ok(ServerEvent::IceCandidate(c)) = parse_event(
        "ice-candidate",
        &format!(
            r#"{{"peer":{USER},"data":{{"candidate":"candidate:1 1 udp 1 192.0.2.1 5 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"ab"}}}}"#
        ),
    ) else {
        panic!("ice-candidate did not parse");
    };
    assert_eq!(c.data.sdp_m_line_index, Some(0));
    assert_eq!(c.data.username_fragment.as_deref(), Some("ab"));

    assert!(matches!(
        parse_event("connected", &format!(r#"{{"user":{USER}}}"#)),
        Ok(ServerEvent::Connected(_))
    ));
    assert!(
        parse_event(
            "remove-peer",
            &format!(r#"{{"peer":{USER},"roomId":"bad/room"}}"#)
        )
        .is_err()
    );
    assert!(parse_event("add-peer", "{").is_err());
    assert!(parse_event("explode", "{}").is_err());
}

#[wasm_bindgen_test]
fn channel_messages_round_trip_in_their_wire_shape() {
    let ops = ChannelMessage::Ops {
        ops: vec![Op {
            author: PeerId("a".into()),
            seq: 3,
            lamport: 7,
            op: OpKind::Add {
                shape: Shape::Stroke {
                    points: vec![Point::new(12.3125, 2.5, 0.5)],
                },
                color: Color::rgb(255, 0, 0),
                width: 4.0,
            },
        }],
        proofs: vec![],
        certs: vec![],
    };
    let text = wire::encode(&ops).unwrap();
    assert_eq!(
        text,
        r##"{"ops":{"ops":[{"author":"a","seq":3,"lamport":7,"op":{"add":{"shape":{"stroke":{"points":[{"x":12.3125,"y":2.5,"p":0.5}]}},"color":"#ff0000","width":4}}}]}}"##
    );
    assert_eq!(wire::decode::<ChannelMessage>(&text).unwrap(), ops);
    // Version vectors travel as JSON objects (a JS `Map` would stringify as `{}`).
    let hello = ChannelMessage::Hello {
        have: VersionVector([(PeerId("a".into()), 3)].into()),
        cert: None,
        packed: true,
    };
    let text = wire::encode(&hello).unwrap();
    assert_eq!(text, r#"{"hello":{"have":{"a":3},"packed":true}}"#);
    assert_eq!(wire::decode::<ChannelMessage>(&text).unwrap(), hello);
    let cursor = ChannelMessage::Cursor {
        at: None,
        color: Color::rgb(0, 0, 255),
    };
    let text = wire::encode(&cursor).unwrap();
    assert_eq!(wire::decode::<ChannelMessage>(&text).unwrap(), cursor);
    let candidate = IceCandidate {
        candidate: "c".into(),
        sdp_mid: None,
        sdp_m_line_index: Some(0),
        username_fragment: None,
    };
    assert_eq!(
        wire::encode(&candidate).unwrap(),
        r#"{"candidate":"c","sdpMLineIndex":0}"#
    );
}

#[wasm_bindgen_test]
fn token_lifetime_comes_from_the_tokens_own_times() {
    use client::signaling::token_lifetime_secs;
    // header.claims.signature, base64url without padding; the claims hold `-`/`_`-free JSON here
    // and one that needs padding.
    let claims = r#"{"id":"x","username":"ann","iat":1700000000,"exp":1700003600}"#;
    let b64 = web_sys::window().unwrap().btoa(claims).unwrap();
    let b64url = b64
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_");
    assert_eq!(
        token_lifetime_secs(&format!("eyJh.{b64url}.sig")),
        Some(3600.0)
    );
    assert_eq!(token_lifetime_secs("not-a-jwt"), None);
    assert_eq!(token_lifetime_secs("a.!!!.c"), None);
    let no_times = web_sys::window().unwrap().btoa(r#"{"id":"x"}"#).unwrap();
    assert_eq!(token_lifetime_secs(&format!("a.{no_times}.c")), None);
}
