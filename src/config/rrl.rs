//! The `[rrl]` table: response rate limiting of UDP answers, in the style
//! of BIND 9's `rate-limit` (see [`crate::rrl`] for how responses are
//! counted), and the client prefixes it exempts.

use std::net::IpAddr;

use serde::Deserialize;
use toml::Spanned;

use super::value::{duration, within, Invalid};

/// Response rate limiting (the `[rrl]` table), in the style of BIND 9's
/// `rate-limit`: see [`crate::rrl`] for how responses are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlConfig {
    /// Whether UDP responses are limited at all.
    pub enabled: bool,
    /// Limit per second for answers, NODATA and referrals, per client
    /// prefix and name (0: no limit).
    pub responses_per_second: u32,
    /// Limit per second for NXDOMAIN answers, per client prefix and zone
    /// (0: no limit).
    pub nxdomains_per_second: u32,
    /// Limit per second for error responses (REFUSED, FORMERR, NOTIMP,
    /// ...), per client prefix (0: no limit).
    pub errors_per_second: u32,
    /// Every `slip`-th limited response is sent truncated instead of being
    /// dropped (0: never, 1: always).
    pub slip: u8,
    /// Seconds of excess a client must pay back before it is answered
    /// again; also how long an idle account is remembered.
    pub window: u32,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Accounts in the shared table (a power of two).
    pub table_size: usize,
    /// Clients never limited.
    pub exempt_clients: Vec<ClientPrefix>,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            enabled: true,
            responses_per_second: default_rrl_rate(),
            nxdomains_per_second: default_rrl_rate(),
            errors_per_second: default_rrl_rate(),
            slip: default_rrl_slip(),
            window: default_rrl_window(),
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: default_rrl_table_size(),
            exempt_clients: default_rrl_exempt(),
        }
    }
}

/// An address prefix such as `192.0.2.0/24`; the address is stored with
/// its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPrefix {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length: up to 32 for IPv4, 128 for IPv6.
    pub len: u8,
}

impl ClientPrefix {
    /// Parses `addr/len`, or a bare address (a host prefix).
    pub fn parse(text: &str) -> Option<ClientPrefix> {
        let (addr, len) = match text.split_once('/') {
            Some((addr, len)) => (addr.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return None;
        }
        Some(ClientPrefix {
            addr: mask_addr(addr, len),
            len,
        })
    }

    /// Whether `ip` lies inside the prefix. An IPv4-mapped IPv6 address
    /// counts as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip.to_canonical() {
            IpAddr::V4(a) => {
                (self.v4_network()).is_some_and(|(net, mask)| u32::from(a) & mask == net)
            }
            IpAddr::V6(a) => {
                (self.v6_network()).is_some_and(|(net, mask)| u128::from(a) & mask == net)
            }
        }
    }

    /// An IPv4 prefix as its network and netmask, for matching many
    /// addresses with an AND and a compare each; `None` for IPv6.
    pub(crate) fn v4_network(&self) -> Option<(u32, u32)> {
        match self.addr {
            IpAddr::V4(a) => Some((u32::from(a), v4_mask(self.len))),
            IpAddr::V6(_) => None,
        }
    }

    /// An IPv6 prefix as its network and netmask; `None` for IPv4.
    pub(crate) fn v6_network(&self) -> Option<(u128, u128)> {
        match self.addr {
            IpAddr::V6(a) => Some((u128::from(a), v6_mask(self.len))),
            IpAddr::V4(_) => None,
        }
    }
}

/// `addr` with every bit past `len` cleared.
fn mask_addr(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & v4_mask(len)).into()),
        IpAddr::V6(a) => IpAddr::V6((u128::from(a) & v6_mask(len)).into()),
    }
}

/// The IPv4 netmask of a `len`-bit prefix (lengths past 32 count as 32).
pub(crate) fn v4_mask(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

/// The IPv6 netmask of a `len`-bit prefix (lengths past 128 count as 128).
pub(crate) fn v6_mask(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

/// 20 identical responses a second per client prefix. A caching resolver
/// asks for a name once per TTL per cache, so even a /24 of a big public
/// resolver with hundreds of caches stays far below it at our 30-second
/// TTLs, while a reflection attack gets 20 responses a second per victim
/// prefix and name. Between BIND's ARM examples (5-10) and NSD's default
/// (200); limited clients are still served over TCP thanks to `slip`.
fn default_rrl_rate() -> u32 {
    20
}

/// BIND's, NSD's and Knot's default: every other limited response is sent
/// truncated, so a real resolver retries over TCP within a round trip or
/// two, and a spoofed victim gets at most half the (tiny) TC packets.
fn default_rrl_slip() -> u8 {
    2
}

/// BIND's default `window`.
fn default_rrl_window() -> u32 {
    15
}

/// 2^18 accounts (2 MiB): few collisions with tens of thousands of clients
/// active in one window.
fn default_rrl_table_size() -> usize {
    1 << 18
}

/// Loopback is exempt: a packet from 127.0.0.0/8 or ::1 cannot arrive
/// from outside the host (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3; Linux drops
/// such "martians"), so it cannot be a spoofed reflection, and local
/// monitoring must not be throttled.
fn default_rrl_exempt() -> Vec<ClientPrefix> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .filter_map(|p| ClientPrefix::parse(p))
        .collect()
}

/// Largest `*-per-second` value: keeps a full window of debt within the
/// 32-bit balance of an account (see `crate::rrl`).
pub const MAX_RRL_RATE: u32 = 100_000;

/// Largest `window`, as in BIND.
pub const MAX_RRL_WINDOW: u32 = 3600;

/// Largest `slip`, as in BIND.
pub const MAX_RRL_SLIP: u8 = 10;

/// The `[rrl]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RrlSpec {
    enabled: Option<bool>,
    responses_per_second: Option<Spanned<u32>>,
    nxdomains_per_second: Option<Spanned<u32>>,
    errors_per_second: Option<Spanned<u32>>,
    slip: Option<Spanned<u8>>,
    window: Option<Spanned<String>>,
    ipv4_prefix: Option<Spanned<u8>>,
    ipv6_prefix: Option<Spanned<u8>>,
    table_size: Option<Spanned<usize>>,
    exempt_clients: Option<Vec<Spanned<String>>>,
}

impl RrlConfig {
    /// Validates the `[rrl]` table and applies defaults.
    pub(super) fn from_spec(spec: &RrlSpec) -> Result<RrlConfig, Invalid> {
        let defaults = RrlConfig::default();
        let responses = within(
            &spec.responses_per_second,
            "rrl.responses-per-second",
            0..=MAX_RRL_RATE,
            defaults.responses_per_second,
        )?;
        let window = match &spec.window {
            Some(w) => {
                let d = duration(w, "rrl.window", "5s")?;
                let secs = d.as_secs();
                if d.subsec_nanos() != 0 || !(1..=u64::from(MAX_RRL_WINDOW)).contains(&secs) {
                    return Err(Invalid::at(
                        w,
                        format!("rrl.window: whole seconds from 1s to {MAX_RRL_WINDOW}s"),
                    ));
                }
                secs as u32
            }
            None => defaults.window,
        };
        let table_size = within(
            &spec.table_size,
            "rrl.table-size",
            1024..=1 << 26,
            defaults.table_size,
        )?;
        let mut exempt_clients = Vec::new();
        match &spec.exempt_clients {
            None => exempt_clients = defaults.exempt_clients,
            Some(list) => {
                for item in list {
                    let prefix = ClientPrefix::parse(item.get_ref()).ok_or_else(|| {
                        Invalid::at(
                            item,
                            format!(
                                "rrl.exempt-clients: bad prefix {:?} (e.g. \"192.0.2.0/24\")",
                                item.get_ref()
                            ),
                        )
                    })?;
                    exempt_clients.push(prefix);
                }
            }
        }
        Ok(RrlConfig {
            enabled: spec.enabled.unwrap_or(defaults.enabled),
            responses_per_second: responses,
            // As in BIND, the other rates default to responses-per-second.
            nxdomains_per_second: within(
                &spec.nxdomains_per_second,
                "rrl.nxdomains-per-second",
                0..=MAX_RRL_RATE,
                responses,
            )?,
            errors_per_second: within(
                &spec.errors_per_second,
                "rrl.errors-per-second",
                0..=MAX_RRL_RATE,
                responses,
            )?,
            slip: within(&spec.slip, "rrl.slip", 0..=MAX_RRL_SLIP, defaults.slip)?,
            window,
            ipv4_prefix: within(&spec.ipv4_prefix, "rrl.ipv4-prefix", 1..=32, 24)?,
            ipv6_prefix: within(&spec.ipv6_prefix, "rrl.ipv6-prefix", 1..=128, 56)?,
            table_size: table_size.next_power_of_two(),
            exempt_clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse_with;

    #[test]
    fn defaults() {
        let c = parse_with("").unwrap();
        assert_eq!(c.rrl, RrlConfig::default());
        assert!(c.rrl.enabled);
        assert_eq!(
            (c.rrl.responses_per_second, c.rrl.slip, c.rrl.window),
            (20, 2, 15)
        );
        assert_eq!((c.rrl.ipv4_prefix, c.rrl.ipv6_prefix), (24, 56));
        assert!(c.rrl.exempt_clients[0].contains("127.1.2.3".parse().unwrap()));
        assert!(c.rrl.exempt_clients[1].contains("::1".parse().unwrap()));
    }

    #[test]
    fn every_key() {
        let c = parse_with(
            "[rrl]\nenabled = false\nresponses-per-second = 50\nslip = 1\nwindow = \"5s\"\n\
             ipv4-prefix = 32\nipv6-prefix = 64\ntable-size = 5000\n\
             exempt-clients = [\"192.0.2.0/24\", \"2001:db8::1\"]\n",
        )
        .unwrap();
        let rrl = &c.rrl;
        assert!(!rrl.enabled);
        // The other rates follow responses-per-second, as in BIND.
        assert_eq!(
            (
                rrl.responses_per_second,
                rrl.nxdomains_per_second,
                rrl.errors_per_second
            ),
            (50, 50, 50)
        );
        assert_eq!((rrl.slip, rrl.window, rrl.table_size), (1, 5, 8192));
        assert_eq!((rrl.ipv4_prefix, rrl.ipv6_prefix), (32, 64));
        assert_eq!(
            rrl.exempt_clients,
            [
                ClientPrefix::parse("192.0.2.0/24").unwrap(),
                ClientPrefix::parse("2001:db8::1/128").unwrap()
            ]
        );

        let c = parse_with("[rrl]\nerrors-per-second = 0\nnxdomains-per-second = 7\n").unwrap();
        assert_eq!(
            (c.rrl.errors_per_second, c.rrl.nxdomains_per_second),
            (0, 7)
        );
    }

    #[test]
    fn bad_values_name_line_and_key() {
        for (extra, want) in [
            (
                "[rrl]\nslip = 11\n",
                ":7: rrl.slip: must be between 0 and 10",
            ),
            (
                "[rrl]\nwindow = \"1500ms\"\n",
                ":7: rrl.window: whole seconds",
            ),
            ("[rrl]\nwindow = \"2h\"\n", ":7: rrl.window: whole seconds"),
            (
                "[rrl]\nresponses-per-second = 100001\n",
                ":7: rrl.responses-per-second",
            ),
            ("[rrl]\nipv4-prefix = 33\n", ":7: rrl.ipv4-prefix"),
            ("[rrl]\nipv6-prefix = 0\n", ":7: rrl.ipv6-prefix"),
            ("[rrl]\ntable-size = 10\n", ":7: rrl.table-size"),
            (
                "[rrl]\nexempt-clients = [\"10.0.0.0/33\"]\n",
                ":7: rrl.exempt-clients: bad prefix",
            ),
            ("[rrl]\nrate = 5\n", ":7:"),
        ] {
            let e = parse_with(extra).unwrap_err();
            assert!(e.contains(want), "{extra:?}: {e}");
        }
    }

    #[test]
    fn prefixes() {
        let p = ClientPrefix::parse("192.0.2.77/24").unwrap();
        assert_eq!(p.addr.to_string(), "192.0.2.0");
        assert!(p.contains("192.0.2.1".parse().unwrap()));
        assert!(p.contains("::ffff:192.0.2.1".parse().unwrap()));
        assert!(!p.contains("192.0.3.1".parse().unwrap()));
        assert!(!p.contains("2001:db8::".parse().unwrap()));
        let all = ClientPrefix::parse("::/0").unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
        assert!(!all.contains("192.0.2.1".parse().unwrap()));
        for bad in ["", "192.0.2.1/", "192.0.2.1/x", "::/129", "host/8"] {
            assert_eq!(ClientPrefix::parse(bad), None, "{bad}");
        }
    }
}
