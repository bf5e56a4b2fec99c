//! TURN credentials in the scheme coturn calls "TURN REST API" (`use-auth-secret`): the server and
//! the TURN server share a secret; each signed-in user gets a username `<unix expiry>:<peerId>`
//! and a credential base64(HMAC-SHA1(secret, username)). The TURN server recomputes the
//! credential from the username and refuses it once the expiry has passed, so nothing has to be
//! stored anywhere and a leaked credential dies by itself.
//!
//! A credential lasts exactly as long as the access token it was issued with (its `exp`): a
//! browser that renews its token fetches `/config` again and gets a new one. The secret itself
//! never leaves this process: it is not in `/config`, and [`TurnSecret`]'s `Debug` hides it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use shared::protocol::{IceServer, PeerId};
use std::fmt;

/// The secret shared with the TURN server. `Debug` prints no part of it, so a config dumped into
/// a log does not leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(String);

impl TurnSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> TurnSecret {
        TurnSecret(secret.into())
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(<hidden>)")
    }
}

impl std::str::FromStr for TurnSecret {
    type Err = String;
    fn from_str(s: &str) -> Result<TurnSecret, String> {
        if s.is_empty() {
            return Err("the TURN secret must not be empty".into());
        }
        Ok(TurnSecret::new(s))
    }
}

/// A TURN service: its URLs and the secret it shares with us.
#[derive(Clone, Debug)]
pub struct Turn {
    urls: Vec<String>,
    secret: TurnSecret,
}

impl Turn {
    /// A TURN service reached at `urls` (`turn:host:port`, `turns:...`), sharing `secret`.
    pub fn new(urls: Vec<String>, secret: TurnSecret) -> Turn {
        Turn { urls, secret }
    }

    /// The ICE server entry for `peer`, valid until `expires_at` (seconds since the epoch).
    pub fn ice_server_for(&self, peer: &PeerId, expires_at: u64) -> IceServer {
        let username = format!("{expires_at}:{}", peer.0);
        let credential = credential(&self.secret, &username);
        IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// base64(HMAC-SHA1(secret, username)), as coturn computes it for `use-auth-secret`.
pub fn credential(secret: &TurnSecret, username: &str) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.0.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks that each URL is a TURN URL a browser will take.
pub fn validate_urls(urls: &[String]) -> Result<(), String> {
    if urls.is_empty() {
        return Err("--turn-urls lists no URL".into());
    }
    for url in urls {
        if !(url.starts_with("turn:") || url.starts_with("turns:")) {
            return Err(format!(
                "TURN URL '{url}' must start with turn: or turns: (e.g. turn:turn.example.org:3478)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_matches_an_independent_hmac_sha1() {
        // Computed with Python's hmac + hashlib.sha1 + base64, not with this code.
        let secret = TurnSecret::new("north-secret");
        assert_eq!(
            credential(&secret, "1700000000:alice-peer"),
            "/AIfqlApathhiVMLXs4jADP1V04="
        );
    }

    #[test]
    fn each_peer_gets_its_own_username_until_its_expiry() {
        let turn = Turn::new(
            vec!["turn:127.0.0.1:3478".into()],
            TurnSecret::new("north-secret"),
        );
        let server = turn.ice_server_for(&PeerId("alice-peer".into()), 1_700_000_000);
        assert_eq!(server.urls, ["turn:127.0.0.1:3478"]);
        assert_eq!(server.username.as_deref(), Some("1700000000:alice-peer"));
        assert_eq!(
            server.credential.as_deref(),
            Some("/AIfqlApathhiVMLXs4jADP1V04=")
        );
        let bob = turn.ice_server_for(&PeerId("bob-peer".into()), 1_700_000_000);
        assert_ne!(bob.credential, server.credential);
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let turn = Turn::new(vec!["turn:x".into()], TurnSecret::new("very-secret-value"));
        assert!(!format!("{turn:?}").contains("very-secret-value"));
    }

    #[test]
    fn only_turn_urls_are_taken() {
        assert!(validate_urls(&["turn:a:3478".into(), "turns:b:5349".into()]).is_ok());
        assert!(validate_urls(&["stun:a:3478".into()]).is_err());
        assert!(validate_urls(&[]).is_err());
    }
}
