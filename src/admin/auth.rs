//! Bearer tokens (RFC 6750 §2.1): `Authorization: Bearer <token>`.
//!
//! The token is compared in constant time: both sides are hashed with
//! SHA-256 and the digests compared with an XOR fold that looks at every
//! byte, so neither the position of the first wrong character nor the
//! token's length shows in the time an answer takes.

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};

/// The token requests must carry.
pub struct Token {
    /// SHA-256 of the token: the token itself is not kept.
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// The token `text` (as read from the token file).
    pub fn new(text: &str) -> Token {
        Token {
            digest: Sha256::digest(text.as_bytes()).into(),
        }
    }

    /// Whether `headers` carry this token as a bearer token.
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
        else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given).into();
        constant_time_eq(&self.digest, &given)
    }
}

/// The token of an `Authorization` value: the scheme `Bearer` (any case,
/// RFC 9110 §11.1) and one space.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

/// Equality of two digests that reads every byte whatever differs.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn only_the_bearer_token_admits() {
        let t = Token::new("s3cret");
        assert!(t.admits(&headers("Bearer s3cret")));
        assert!(t.admits(&headers("bearer s3cret")));
        assert!(!t.admits(&headers("Bearer s3cre")));
        assert!(!t.admits(&headers("Bearer s3cret2")));
        assert!(!t.admits(&headers("Basic s3cret")));
        assert!(!t.admits(&headers("Bearer")));
        assert!(!t.admits(&HeaderMap::new()));
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
    }
}
