//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A client sends an 8-byte client cookie in the EDNS COOKIE option; we
//! answer with a 16-byte server cookie bound to that client cookie and the
//! client's address. A client that returns it proves it receives our
//! replies at its address, so its queries are not spoofed: rate limiting
//! lets them through (as BIND and Knot do).
//!
//! The server cookie follows RFC 9018 §4, so that servers of several
//! implementations behind one anycast address, sharing a secret, accept
//! each other's cookies:
//!
//! ```text
//! Version (1) | Reserved (3) | Timestamp (4) | Hash (8)
//! Hash = SipHash-2-4(Client Cookie | Version | Reserved | Timestamp | Client-IP, Secret)
//! ```
//!
//! A cookie is valid for an hour and may come from up to five minutes in
//! the future (clock skew between anycast nodes); one older than half an
//! hour is replaced by a fresh one (RFC 9018 §4.3).
//!
//! Secrets: without a configured one, each server draws a random secret
//! at start and derives a new key from it every day; the previous day's
//! key is still accepted, so a cookie issued before midnight stays valid
//! for its hour (RFC 9018 §5). A configured `cookie-secret` is used as the
//! key itself, unrotated, which is what other implementations sharing it
//! expect (RFC 9018 §6). Nothing here reads a clock: time is passed in.

use std::hash::Hasher;
use std::io::{self, Read};
use std::net::IpAddr;

use siphasher::sip::SipHasher24;
use siphasher::sip128::{Hasher128, SipHasher24 as SipHasher24x128};

/// Length of a client cookie (RFC 7873 §4.1).
pub const CLIENT_LEN: usize = 8;
/// Length of the server cookies we issue (RFC 9018 §4).
pub const SERVER_LEN: usize = 16;
/// Length of the COOKIE option body we send: client then server cookie.
pub const OPTION_LEN: usize = CLIENT_LEN + SERVER_LEN;

/// The server cookie version of RFC 9018 §4.1.
const VERSION: u8 = 1;
/// How long a server cookie is accepted (RFC 9018 §4.3: one hour).
const LIFETIME: u32 = 3600;
/// How far in the future a cookie's timestamp may lie (RFC 9018 §4.3).
const MAX_AHEAD: u32 = 300;
/// Age after which a valid cookie is replaced by a fresh one (RFC 9018 §4.3).
const RENEW_AFTER: u32 = 1800;
/// How often a random secret yields a new key.
const ROTATION: u32 = 86_400;

/// The COOKIE option of a query (RFC 7873 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    /// The client cookie.
    pub client: [u8; CLIENT_LEN],
    /// The server cookie, if any.
    pub server: ServerCookie,
}

/// The server cookie part of a COOKIE option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCookie {
    /// Only a client cookie was sent.
    Absent,
    /// A server cookie of the length we issue, to be checked.
    Present([u8; SERVER_LEN]),
    /// A server cookie of another legal length (8 to 32 bytes): not one
    /// we issued.
    Foreign,
}

impl Cookie {
    /// Reads a COOKIE option body; `None` for a malformed length, which
    /// the caller answers with FORMERR (RFC 7873 §5.2.2): 8 bytes, or 16
    /// to 40.
    pub fn parse(data: &[u8]) -> Option<Cookie> {
        if !(data.len() == CLIENT_LEN || (16..=40).contains(&data.len())) {
            return None;
        }
        let (client, server) = data.split_at(CLIENT_LEN);
        let server = match server.try_into() {
            Ok(ours) => ServerCookie::Present(ours),
            Err(_) if server.is_empty() => ServerCookie::Absent,
            Err(_) => ServerCookie::Foreign,
        };
        Some(Cookie {
            client: client.try_into().ok()?,
            server,
        })
    }
}

/// What the client's cookie proved, for rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieStatus {
    /// No COOKIE option (or no EDNS).
    Absent,
    /// A client cookie alone.
    ClientOnly,
    /// A client cookie and a server cookie we do not accept: not ours,
    /// made for another client, or expired (RFC 7873 §5.2.4).
    Invalid,
    /// A server cookie we issued to this client, within its lifetime.
    Valid,
}

/// The keys server cookies are made and checked with: `current` makes
/// them, both check them (RFC 9018 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieKeys {
    /// The key new cookies are made with.
    pub current: [u8; 16],
    /// The key before the last rotation, still accepted.
    pub previous: [u8; 16],
}

/// The server's cookie secret; see the [module documentation](self).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CookieSecret {
    /// Drawn at start; a key per day is derived from it.
    Random([u8; 16]),
    /// Configured (shared by anycast nodes) and used as it is.
    Shared([u8; 16]),
}

impl std::fmt::Debug for CookieSecret {
    // Secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CookieSecret::Random(_) => "CookieSecret::Random(..)",
            CookieSecret::Shared(_) => "CookieSecret::Shared(..)",
        })
    }
}

impl CookieSecret {
    /// A random secret from the kernel's generator.
    pub fn random() -> io::Result<CookieSecret> {
        let mut secret = [0; 16];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
        Ok(CookieSecret::Random(secret))
    }

    /// A shared secret from 32 hexadecimal digits, as BIND's and Knot's
    /// `cookie-secret` take it; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<CookieSecret> {
        let text = text.as_bytes();
        // from_str_radix alone would take a sign ("+5").
        if text.len() != 32 || !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut secret = [0; 16];
        for (byte, pair) in secret.iter_mut().zip(text.chunks_exact(2)) {
            let digits = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(digits, 16).ok()?;
        }
        Some(CookieSecret::Shared(secret))
    }

    /// The keys in force at `now` (Unix seconds).
    pub fn keys(&self, now: u32) -> CookieKeys {
        match self {
            CookieSecret::Shared(key) => CookieKeys {
                current: *key,
                previous: *key,
            },
            CookieSecret::Random(secret) => {
                let period = now / ROTATION;
                CookieKeys {
                    current: derive(secret, period),
                    previous: derive(secret, period.wrapping_sub(1)),
                }
            }
        }
    }
}

/// A worker's copy of the keys in force, derived again only when the
/// rotation period changes: deriving costs two SipHash runs, and a worker
/// at low load asks for the keys for every query it receives.
#[derive(Debug, Clone, Copy)]
pub struct KeyCache {
    secret: CookieSecret,
    period: Option<u32>,
    keys: CookieKeys,
}

impl KeyCache {
    /// A cache of `secret`'s keys, empty.
    pub fn new(secret: CookieSecret) -> KeyCache {
        KeyCache {
            secret,
            period: None,
            keys: CookieKeys {
                current: [0; 16],
                previous: [0; 16],
            },
        }
    }

    /// The keys in force at `now` (Unix seconds), as
    /// [`CookieSecret::keys`] gives them.
    #[inline]
    pub fn keys(&mut self, now: u32) -> CookieKeys {
        let period = now / ROTATION;
        if self.period != Some(period) {
            self.keys = self.secret.keys(now);
            self.period = Some(period);
        }
        self.keys
    }
}

/// The key of one rotation period: SipHash-2-4 with 128-bit output, a PRF,
/// so one period's key tells nothing of another's or of the secret.
fn derive(secret: &[u8; 16], period: u32) -> [u8; 16] {
    let mut h = SipHasher24x128::new_with_key(secret);
    h.write(&period.to_be_bytes());
    h.finish128().as_bytes()
}

/// Checks the cookie of a query from `client` at `now` (Unix seconds) and
/// returns what it proved and the COOKIE option body to answer with: the
/// client cookie and either the server cookie it presented, if valid and
/// fresh, or a new one (RFC 7873 §5.2.3 to §5.2.5).
pub fn answer(
    cookie: &Cookie,
    keys: &CookieKeys,
    client: IpAddr,
    now: u32,
) -> (CookieStatus, [u8; OPTION_LEN]) {
    let mut option = [0; OPTION_LEN];
    option[..CLIENT_LEN].copy_from_slice(&cookie.client);
    let status = match cookie.server {
        ServerCookie::Absent => CookieStatus::ClientOnly,
        ServerCookie::Foreign => CookieStatus::Invalid,
        ServerCookie::Present(server) => match verify(&cookie.client, &server, keys, client, now) {
            None => CookieStatus::Invalid,
            Some(made_with) => {
                let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
                // Serial arithmetic (RFC 1982): a stamp ahead of `now` is
                // young. A cookie made with the previous key is replaced
                // at once (RFC 9018 §5).
                let young = now.wrapping_sub(stamp) as i32 <= RENEW_AFTER as i32;
                if young && made_with == Key::Current {
                    option[CLIENT_LEN..].copy_from_slice(&server);
                    return (CookieStatus::Valid, option);
                }
                CookieStatus::Valid
            }
        },
    };
    let fresh = server_cookie(&keys.current, &cookie.client, [0; 3], now, client);
    option[CLIENT_LEN..].copy_from_slice(&fresh);
    (status, option)
}

/// Which of the keys made a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Current,
    Previous,
}

/// Which key made `server`, if it is a cookie we made for this client
/// cookie and address, within its lifetime.
fn verify(
    client_cookie: &[u8; CLIENT_LEN],
    server: &[u8; SERVER_LEN],
    keys: &CookieKeys,
    client: IpAddr,
    now: u32,
) -> Option<Key> {
    if server[0] != VERSION {
        return None;
    }
    let stamp = u32::from_be_bytes([server[4], server[5], server[6], server[7]]);
    // Serial arithmetic: the age may be negative, down to -MAX_AHEAD.
    let age = now.wrapping_sub(stamp) as i32;
    if age > LIFETIME as i32 || age < -(MAX_AHEAD as i32) {
        return None;
    }
    // The reserved bytes are hashed as received (RFC 9018 §4.2).
    let reserved = [server[1], server[2], server[3]];
    let matches = |key| server_cookie(key, client_cookie, reserved, stamp, client) == *server;
    if matches(&keys.current) {
        Some(Key::Current)
    } else if keys.previous != keys.current && matches(&keys.previous) {
        Some(Key::Previous)
    } else {
        None
    }
}

/// Makes the server cookie of RFC 9018 §4.
fn server_cookie(
    key: &[u8; 16],
    client_cookie: &[u8; CLIENT_LEN],
    reserved: [u8; 3],
    stamp: u32,
    client: IpAddr,
) -> [u8; SERVER_LEN] {
    let mut head = [0u8; 8];
    head[0] = VERSION;
    head[1..4].copy_from_slice(&reserved);
    head[4..].copy_from_slice(&stamp.to_be_bytes());
    let mut h = SipHasher24::new_with_key(key);
    h.write(client_cookie);
    h.write(&head);
    // An IPv4 client on a dual-stack socket is hashed as IPv4, so its
    // cookie does not depend on which socket it reached.
    match client.to_canonical() {
        IpAddr::V4(a) => h.write(&a.octets()),
        IpAddr::V6(a) => h.write(&a.octets()),
    }
    let mut cookie = [0; SERVER_LEN];
    cookie[..8].copy_from_slice(&head);
    cookie[8..].copy_from_slice(&h.finish().to_le_bytes());
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn shared(text: &str) -> CookieKeys {
        CookieSecret::from_hex(text).unwrap().keys(0)
    }

    /// Sends the COOKIE option `query` from `client` at `now` and returns
    /// the status and the option answered, in hex.
    fn exchange(keys: &CookieKeys, client: &str, query: &str, now: u32) -> (CookieStatus, String) {
        let cookie = Cookie::parse(&hex(query)).unwrap();
        let (status, option) = answer(&cookie, keys, client.parse().unwrap(), now);
        let text = option.iter().map(|b| format!("{b:02x}")).collect();
        (status, text)
    }

    const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";

    #[test]
    fn rfc9018_appendix_a_vectors() {
        let keys = shared(SECRET);
        // A.1: a client cookie alone gets a new server cookie.
        assert_eq!(
            exchange(&keys, "198.51.100.100", "2464c4abcf10c957", 1559731985),
            (
                CookieStatus::ClientOnly,
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480".into()
            )
        );
        // A.2: forty minutes later that cookie is valid but worn: renewed.
        assert_eq!(
            exchange(
                &keys,
                "198.51.100.100",
                "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
                1559734385
            ),
            (
                CookieStatus::Valid,
                "2464c4abcf10c957010000005cf7a871d4a564a1442aca77".into()
            )
        );
        // A.3: the reserved bytes the client's cookie carries are hashed;
        // the example's cookie is older than the hour we accept, so it
        // only earns a fresh one, the one the RFC shows.
        let a3 = "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5";
        let cookie = Cookie::parse(&hex(a3)).unwrap();
        let ServerCookie::Present(server) = cookie.server else {
            panic!("a 16-byte server cookie")
        };
        let stamp = 0x5cf78f71;
        let client = "203.0.113.203".parse().unwrap();
        assert!(verify(&cookie.client, &server, &keys, client, stamp).is_some());
        assert!(verify(
            &cookie.client,
            &server,
            &keys,
            "203.0.113.204".parse().unwrap(),
            stamp
        )
        .is_none());
        assert_eq!(
            exchange(&keys, "203.0.113.203", a3, 1559734700),
            (
                CookieStatus::Invalid,
                "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e".into()
            )
        );
        // A.4: after a rollover the old key still validates, and the
        // answer is made with the new one; an IPv6 client.
        let rolled = CookieKeys {
            current: hex("445536bcd2513298075a5d379663c962").try_into().unwrap(),
            previous: hex("dd3bdf9344b678b185a6f5cb60fca715").try_into().unwrap(),
        };
        let query = "22681ab97d52c298010000005cf7c57926556bd0934c72f8";
        assert_eq!(
            exchange(
                &rolled,
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                query,
                1559741961
            )
            .1,
            "22681ab97d52c298010000005cf7c609a6bb79d16625507a"
        );
        // With the new key alone it is not ours.
        let new_only = shared("445536bcd2513298075a5d379663c962");
        assert_eq!(
            exchange(
                &new_only,
                "2001:db8:220:1:59de:d0f4:8769:82b8",
                query,
                1559741961
            )
            .0,
            CookieStatus::Invalid
        );
    }

    #[test]
    fn lifetime_and_renewal_follow_rfc9018() {
        let keys = shared(SECRET);
        let now = 1_700_000_000;
        let (_, issued) = exchange(&keys, "192.0.2.1", "0102030405060708", now);
        // Echoed unchanged while young, renewed after half an hour,
        // refused after an hour or from more than five minutes ahead.
        for (at, status, same) in [
            (now, CookieStatus::Valid, true),
            (now + 1800, CookieStatus::Valid, true),
            (now + 1801, CookieStatus::Valid, false),
            (now + 3600, CookieStatus::Valid, false),
            (now + 3601, CookieStatus::Invalid, false),
            (now - 300, CookieStatus::Valid, true),
            (now - 301, CookieStatus::Invalid, false),
        ] {
            let (got, option) = exchange(&keys, "192.0.2.1", &issued, at);
            assert_eq!(
                (got, option == issued),
                (status, same),
                "at now{:+}",
                at as i64 - now as i64
            );
        }
        // Another address, or another client cookie: not valid.
        assert_eq!(
            exchange(&keys, "192.0.2.2", &issued, now).0,
            CookieStatus::Invalid
        );
        let other_client = format!("ff{}", &issued[2..]);
        assert_eq!(
            exchange(&keys, "192.0.2.1", &other_client, now).0,
            CookieStatus::Invalid
        );
        // A server cookie of another length is not ours either.
        assert_eq!(
            exchange(&keys, "192.0.2.1", &issued[..32], now).0,
            CookieStatus::Invalid
        );
        // An IPv4-mapped address is the IPv4 client.
        assert_eq!(
            exchange(&keys, "::ffff:192.0.2.1", &issued, now).0,
            CookieStatus::Valid
        );
    }

    #[test]
    fn random_secrets_rotate_daily_and_accept_yesterday() {
        let secret = CookieSecret::random().unwrap();
        let day = 20_000 * ROTATION;
        let keys = secret.keys(day + 100);
        assert_eq!(keys, secret.keys(day + ROTATION - 1));
        assert_ne!(keys.current, keys.previous);
        assert_eq!(secret.keys(day + ROTATION).previous, keys.current);
        // Issued a minute before midnight, still valid after it.
        let (_, issued) = exchange(&keys, "192.0.2.1", "0102030405060708", day + ROTATION - 60);
        let tomorrow = secret.keys(day + ROTATION + 60);
        assert_eq!(
            exchange(&tomorrow, "192.0.2.1", &issued, day + ROTATION + 60).0,
            CookieStatus::Valid
        );
        assert_ne!(CookieSecret::random().unwrap(), secret);
    }

    #[test]
    fn a_key_cache_follows_the_rotation() {
        let secret = CookieSecret::random().unwrap();
        let mut cache = KeyCache::new(secret);
        let day = 20_000 * ROTATION;
        for now in [
            day + 5,
            day + ROTATION - 1,
            day + ROTATION,
            day + 3 * ROTATION,
            day,
        ] {
            assert_eq!(cache.keys(now), secret.keys(now), "at {now}");
        }
    }

    #[test]
    fn shared_secrets_are_32_hex_digits() {
        assert_eq!(
            CookieSecret::from_hex("E5E973E5A6B2A43F48E7DC849E37BFCF"),
            Some(CookieSecret::Shared(hex(SECRET).try_into().unwrap()))
        );
        for bad in [
            "",
            "e5e9",
            &format!("{SECRET}00"),
            "+5e973e5a6b2a43f48e7dc849e37bfcf",
        ] {
            assert_eq!(CookieSecret::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(
            CookieSecret::from_hex("é5e973e5a6b2a43f48e7dc849e37bfc"),
            None
        );
    }

    #[test]
    fn option_lengths_follow_rfc7873() {
        for len in [0, 7, 9, 15, 41] {
            assert_eq!(Cookie::parse(&vec![1; len]), None, "{len} bytes");
        }
        assert_eq!(Cookie::parse(&[1; 8]).unwrap().server, ServerCookie::Absent);
        for len in [16, 24, 32, 40] {
            let c = Cookie::parse(&vec![1; len]).unwrap();
            let ours = matches!(c.server, ServerCookie::Present(_));
            assert_eq!(ours, len == 24, "{len} bytes");
            assert_ne!(c.server, ServerCookie::Absent);
        }
    }
}
