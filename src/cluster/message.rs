//! The push: what one node tells the others, and its signature.
//!
//! A push is a JSON body (`POST /api/v1/cluster/push`) carrying the
//! sender's node name, its wall-clock time, a sequence number that only
//! grows, the digest of its loaded configuration and its own probe
//! verdicts, keyed `service/endpoint/address:port`, and what it has
//! drained with when that is safe to stop there. The header
//! `x-steerdns-signature` holds the lowercase hex HMAC-SHA256 (RFC 2104)
//! of the exact body bytes under the cluster's shared secret.
//!
//! The signature is checked on the bytes before they are parsed, and with
//! [`Mac::verify_slice`], which compares in constant time, so a forger
//! learns nothing from how fast a guess is refused.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::digest::hex;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-steerdns-signature";

/// The path pushes are posted to on every node's admin listener.
pub const PUSH_PATH: &str = "/api/v1/cluster/push";

/// Largest push body a node takes, whatever `[admin] max-body` says: a
/// push carries every shared verdict of the sender (about 60 bytes each),
/// so this fits over 15,000 of them.
pub const MAX_PUSH: usize = 1024 * 1024;

/// Shortest shared secret accepted (bytes): 128 bits.
pub const MIN_SECRET: usize = 16;

/// One node's report to the others. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Push {
    /// The sender, as `[cluster] nodes` names it.
    pub node: String,
    /// The sender's wall clock when it sent this, milliseconds since the
    /// Unix epoch.
    pub time_ms: u64,
    /// Larger than that of every earlier push of the sender.
    pub seq: u64,
    /// SHA-256 over the sender's config and zone files (see
    /// [`crate::digest`]); `None` while it is being computed.
    pub digest: Option<String>,
    /// The sender's own probe verdicts, `true` for up.
    pub verdicts: BTreeMap<String, bool>,
    /// What the sender has drained and no longer answers with (service
    /// and endpoint targets, as `steerdns drain` writes them), each with
    /// the Unix second from which it is safe to stop on the sender: the
    /// cluster-wide time is the latest over every node.
    #[serde(default)]
    pub drained: BTreeMap<String, u64>,
}

/// The shared secret, as read from `secret-file`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

// Never printed, so the secret stays out of logs.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The secret `bytes` (the config checks its length).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length (RFC 2104 §2): this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length")
    }

    /// The signature of `body`, as the header carries it.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(body);
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `signature` (the header's value) is this secret's
    /// signature of `body`. Constant time in the signature's content.
    pub fn verify(&self, body: &[u8], signature: &[u8]) -> bool {
        let Some(given) = unhex(signature) else {
            return false;
        };
        let mut mac = self.mac();
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    }
}

/// The bytes of lowercase or uppercase hex text, `None` if it is not hex.
fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_the_same_body_and_secret() {
        let secret = Secret::new(*b"0123456789abcdef");
        let body = br#"{"node":"a"}"#;
        let sig = secret.sign(body);
        assert_eq!(sig.len(), 64);
        assert!(secret.verify(body, sig.as_bytes()));
        assert!(secret.verify(body, sig.to_uppercase().as_bytes()));
        assert!(!secret.verify(br#"{"node":"b"}"#, sig.as_bytes()));
        assert!(!Secret::new(*b"0123456789abcdeX").verify(body, sig.as_bytes()));
        assert!(!secret.verify(body, &sig.as_bytes()[..62]));
        assert!(!secret.verify(body, b"zz"));
        assert!(!secret.verify(body, b""));
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 §4.3, test case 2.
        let secret = Secret::new(*b"Jefe");
        assert_eq!(
            secret.sign(b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
