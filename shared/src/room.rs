//! Room ids: the path segment of a room's link (`/<roomId>`).
//!
//! The tutorial counts rooms up from a fixed number, so anyone can guess the next link. Here a new
//! id is 72 random bits (the caller supplies them from a CSPRNG) written as 12 URL-safe base64
//! characters. Ids that arrive from outside are only accepted if they are short and URL-safe, so
//! they are safe to put in paths, logs and SSE payloads.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Bytes of randomness in a generated room id (72 bits, above the 64 the product asks for).
pub const ROOM_ID_RANDOM_BYTES: usize = 9;
/// Longest room id accepted from a URL.
pub const MAX_ROOM_ID_LEN: usize = 64;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A validated room id: 1 to 64 characters from `[A-Za-z0-9_-]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomId(String);

/// Why a string is not a room id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomIdError {
    /// The string is empty or longer than [`MAX_ROOM_ID_LEN`].
    Length,
    /// The string holds a character outside `[A-Za-z0-9_-]`.
    Character,
}

impl fmt::Display for RoomIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomIdError::Length => write!(f, "room id must be 1 to {MAX_ROOM_ID_LEN} characters"),
            RoomIdError::Character => write!(f, "room id may only use A-Z, a-z, 0-9, '-' and '_'"),
        }
    }
}

impl std::error::Error for RoomIdError {}

impl RoomId {
    /// Encodes random bytes (from a CSPRNG) as a new room id: 12 URL-safe base64 characters.
    pub fn from_random_bytes(bytes: [u8; ROOM_ID_RANDOM_BYTES]) -> RoomId {
        let mut id = String::with_capacity(12);
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
            for shift in [18, 12, 6, 0] {
                id.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            }
        }
        RoomId(id)
    }

    /// Validates a room id that came from outside (a URL path, a JSON payload).
    pub fn parse(s: &str) -> Result<RoomId, RoomIdError> {
        if s.is_empty() || s.len() > MAX_ROOM_ID_LEN {
            return Err(RoomIdError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RoomIdError::Character);
        }
        Ok(RoomId(s.to_owned()))
    }

    /// The id as it appears in a URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoomId {
    type Error = RoomIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RoomId::parse(&s)
    }
}

impl From<RoomId> for String {
    fn from(id: RoomId) -> String {
        id.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_short_url_safe_and_distinct_per_input() {
        let a = RoomId::from_random_bytes([0; 9]);
        let b = RoomId::from_random_bytes([255, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(a.as_str(), "AAAAAAAAAAAA");
        assert_eq!(b.as_str().len(), 12);
        assert_ne!(a, b);
        assert_eq!(RoomId::parse(b.as_str()), Ok(b));
    }

    #[test]
    fn every_bit_of_input_reaches_the_id() {
        // 72 bits in, 72 bits out: flipping any one input bit changes the id.
        let base = RoomId::from_random_bytes([0; 9]);
        for byte in 0..9 {
            for bit in 0..8 {
                let mut bytes = [0; 9];
                bytes[byte] = 1 << bit;
                assert_ne!(
                    RoomId::from_random_bytes(bytes),
                    base,
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn outside_ids_are_validated() {
        assert_eq!(RoomId::parse(""), Err(RoomIdError::Length));
        assert_eq!(RoomId::parse(&"a".repeat(65)), Err(RoomIdError::Length));
        assert!(RoomId::parse(&"a".repeat(64)).is_ok());
        assert_eq!(RoomId::parse("a/b"), Err(RoomIdError::Character));
        assert_eq!(RoomId::parse("a.js"), Err(RoomIdError::Character));
        assert_eq!(RoomId::parse("é"), Err(RoomIdError::Character));
        assert!(RoomId::parse("1fuv3nl2y").is_ok()); // the tutorial's counter ids still work
    }
}
