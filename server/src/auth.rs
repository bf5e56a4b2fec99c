//! Access tokens: HS256 JWTs naming a fresh peer id and a username, valid for an hour; and the
//! [`AuthUser`] extractor that every authenticated route takes.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{FromRequestParts, Query};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::protocol::{PeerId, User};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a token is valid by default (the tutorial's `expiresIn: '3600s'`).
pub const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The token's claims: the tutorial's `req.user` plus the standard times.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    id: String,
    username: String,
    iat: u64,
    exp: u64,
}

/// Issues and verifies tokens with one secret.
pub struct Tokens {
    ttl: Duration,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Tokens {
    /// Keys from the server's secret (`TOKEN_SECRET`), issuing tokens valid for [`TOKEN_TTL`].
    pub fn new(secret: &[u8]) -> Tokens {
        Tokens::with_ttl(secret, TOKEN_TTL)
    }

    /// The same, issuing tokens valid for `ttl`.
    pub fn with_ttl(secret: &[u8], ttl: Duration) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        // A few seconds of clock skew between signaling servers sharing one secret.
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp"]);
        // Ours carry no `nbf`, but one that does (a token from a server with another clock, or
        // made by someone holding the secret) must not be used early.
        validation.validate_nbf = true;
        Tokens {
            ttl,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for a new peer with this (already validated) username.
    pub fn issue(&self, username: &str) -> Result<(String, User), ApiError> {
        self.issue_at(username, now_secs(), self.ttl)
    }

    /// A fresh token for an existing user: same peer id, a new hour. Lets a long session keep its
    /// identity (its strokes, its undo history, its peer connections) past the first expiry.
    pub fn renew(&self, user: &User) -> Result<String, ApiError> {
        self.sign(user, now_secs(), self.ttl)
    }

    /// A token for a new peer, issued at `iat` (seconds since the epoch), valid for `ttl`.
    pub fn issue_at(
        &self,
        username: &str,
        iat: u64,
        ttl: Duration,
    ) -> Result<(String, User), ApiError> {
        let user = User {
            id: PeerId(uuid::Uuid::new_v4().to_string()),
            username: username.to_owned(),
        };
        let token = self.sign(&user, iat, ttl)?;
        Ok((token, user))
    }

    fn sign(&self, user: &User, iat: u64, ttl: Duration) -> Result<String, ApiError> {
        let claims = Claims {
            id: user.id.0.clone(),
            username: user.username.clone(),
            iat,
            exp: iat + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            ApiError::Internal
        })
    }

    /// The user a token names, if its signature and expiry are good.
    pub fn verify(&self, token: &str) -> Result<User, ApiError> {
        self.verify_session(token).map(|s| s.user)
    }

    /// The user a token names and when the token expires, if its signature and expiry are good.
    pub fn verify_session(&self, token: &str) -> Result<Session, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| ApiError::InvalidToken)?;
        let Claims {
            id, username, exp, ..
        } = data.claims;
        Ok(Session {
            user: User {
                id: PeerId(id),
                username,
            },
            expires_at: exp,
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A verified token: whom it names and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The user the token names.
    pub user: User,
    /// The token's `exp`, in seconds since the epoch.
    pub expires_at: u64,
}

/// The authenticated user of a request: from `Authorization: Bearer <token>`, or from `?token=`
/// (EventSource cannot set headers). Missing token: 401; bad token: 403, as the tutorial.
pub struct AuthUser(pub User);

/// For routes that answer everybody but tell a signed-in user more (`/config`): `None` without a
/// token; a token that is present but bad is still refused (403), so a client with a stale token
/// learns it rather than silently getting less.
pub struct MaybeSession(pub Option<Session>);

/// The token a request carries, if any (header first, then the query string).
fn token_of(parts: &Parts) -> Option<String> {
    bearer_or_query(
        parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
        &parts.uri,
    )
}

/// The token in an `Authorization: Bearer` header value, else in the URI's `?token=`. Shared by
/// the router's extractors and the dedicated stream path ([`crate::streams`]).
pub fn bearer_or_query(authorization: Option<&str>, uri: &axum::http::Uri) -> Option<String> {
    let from_header = authorization
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_owned());
    from_header
        .or_else(|| {
            Query::<TokenQuery>::try_from_uri(uri)
                .ok()
                .and_then(|q| q.0.token)
        })
        .filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for MaybeSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match token_of(parts) {
            Some(t) => state
                .tokens
                .verify_session(&t)
                .map(|s| MaybeSession(Some(s))),
            None => Ok(MaybeSession(None)),
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match token_of(parts) {
            Some(t) => state.tokens.verify(&t).map(AuthUser),
            None => Err(ApiError::MissingToken),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_user() {
        let tokens = Tokens::new(b"secret");
        let (token, user) = tokens.issue("alice").unwrap();
        assert_eq!(tokens.verify(&token).unwrap(), user);
        assert_eq!(user.username, "alice");
        // Every token names a fresh peer.
        let (_, other) = tokens.issue("alice").unwrap();
        assert_ne!(other.id, user.id);
    }

    #[test]
    fn tokens_live_as_long_as_configured_and_renewal_keeps_the_peer() {
        let tokens = Tokens::with_ttl(b"secret", Duration::from_secs(7));
        let (token, user) = tokens.issue("alice").unwrap();
        let claims = jsonwebtoken::decode::<Claims>(&token, &tokens.decoding, &tokens.validation)
            .unwrap()
            .claims;
        assert_eq!(claims.exp - claims.iat, 7);
        let renewed = tokens.renew(&user).unwrap();
        assert_eq!(tokens.verify(&renewed).unwrap(), user);
    }

    /// A token with `header` and `claims` (JSON), signed HS256 with `secret` whatever the header
    /// says, or unsigned.
    fn forge(header: &str, claims: &str, secret: Option<&[u8]>) -> String {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let message = format!("{}.{}", b64(header), b64(claims));
        let sig = match secret {
            Some(secret) => jsonwebtoken::crypto::sign(
                message.as_bytes(),
                &EncodingKey::from_secret(secret),
                Algorithm::HS256,
            )
            .unwrap(),
            None => String::new(),
        };
        format!("{message}.{sig}")
    }

    #[test]
    fn forged_headers_swapped_algorithms_tampered_claims_and_early_tokens_are_refused() {
        let secret = b"secret";
        let tokens = Tokens::new(secret);
        let now = now_secs();
        let claims = |extra: &str| {
            format!(
                r#"{{"id":"p1","username":"alice","iat":{now},"exp":{}{extra}}}"#,
                now + 600
            )
        };
        let good = forge(r#"{"alg":"HS256","typ":"JWT"}"#, &claims(""), Some(secret));
        assert!(tokens.verify(&good).is_ok(), "the forge makes real tokens");
        let refused = [
            (
                "alg none, unsigned",
                forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(""), None),
            ),
            (
                "alg none, signed",
                forge(r#"{"alg":"none"}"#, &claims(""), Some(secret)),
            ),
            (
                "alg RS256 over an HMAC",
                forge(r#"{"alg":"RS256"}"#, &claims(""), Some(secret)),
            ),
            (
                "alg HS512 header",
                forge(r#"{"alg":"HS512"}"#, &claims(""), Some(secret)),
            ),
            (
                "nbf an hour ahead",
                forge(
                    r#"{"alg":"HS256"}"#,
                    &claims(&format!(r#","nbf":{}"#, now + 3600)),
                    Some(secret),
                ),
            ),
            (
                "another secret",
                forge(r#"{"alg":"HS256"}"#, &claims(""), Some(b"guess")),
            ),
        ];
        for (what, token) in refused {
            assert!(
                matches!(tokens.verify(&token), Err(ApiError::InvalidToken)),
                "{what}"
            );
        }
        // HS512 signed with the right secret: still not the algorithm we issue.
        let swapped = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &Claims {
                id: "p1".into(),
                username: "alice".into(),
                iat: now,
                exp: now + 600,
            },
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert!(matches!(
            tokens.verify(&swapped),
            Err(ApiError::InvalidToken)
        ));
        // The claims changed under a good signature (another username, another peer id).
        let (real, _) = tokens.issue("alice").unwrap();
        let parts: Vec<&str> = real.split('.').collect();
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(parts[1]).unwrap()).unwrap();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            engine.encode(payload.replace("alice", "admin")),
            parts[2]
        );
        assert!(matches!(
            tokens.verify(&tampered),
            Err(ApiError::InvalidToken)
        ));
    }

    #[test]
    fn wrong_secret_expired_or_garbage_is_refused() {
        let tokens = Tokens::new(b"secret");
        let (token, _) = tokens.issue("alice").unwrap();
        assert!(matches!(
            Tokens::new(b"other").verify(&token),
            Err(ApiError::InvalidToken)
        ));
        let (old, _) = tokens
            .issue_at("alice", now_secs() - 7200, TOKEN_TTL)
            .unwrap();
        assert!(matches!(tokens.verify(&old), Err(ApiError::InvalidToken)));
        assert!(matches!(
            tokens.verify("not.a.jwt"),
            Err(ApiError::InvalidToken)
        ));
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'x');
        assert!(matches!(
            tokens.verify(&tampered),
            Err(ApiError::InvalidToken)
        ));
    }
}
