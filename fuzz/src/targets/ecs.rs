//! Bytes as the body of an EDNS Client Subnet option through
//! `wire::parse_client_subnet`. What it accepts must round-trip: encoded
//! again, by hand and by the response writer, it gives back the same bytes,
//! and those parse to the same value (RFC 7871 §6 allows one encoding only).

use std::net::IpAddr;

use steerdns::wire::{parse_client_subnet, ClientSubnet, Writer, OPTION_ECS};

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(subnet) = parse_client_subnet(data) else {
        return;
    };
    assert_eq!(encode(&subnet), data, "hand encoding of {subnet:?}");
    let written = write_with_writer(&subnet);
    assert_eq!(written, data, "response writer's encoding of {subnet:?}");
    assert_eq!(parse_client_subnet(&written), Ok(subnet), "re-parse");
}

/// The option body of RFC 7871 §6 for a query: family, source prefix,
/// scope 0, and the address cut to whole octets of the prefix.
fn encode(subnet: &ClientSubnet) -> Vec<u8> {
    let (family, address) = match subnet.address {
        IpAddr::V4(a) => (1u8, a.octets().to_vec()),
        IpAddr::V6(a) => (2u8, a.octets().to_vec()),
    };
    let octets = usize::from(subnet.source_prefix).div_ceil(8);
    let mut out = vec![0, family, subnet.source_prefix, 0];
    out.extend_from_slice(&address[..octets]);
    out
}

/// The ECS option body as `Writer::opt` writes it with scope 0, checking
/// the OPT framing and `Writer::opt_len` on the way.
fn write_with_writer(subnet: &ClientSubnet) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut w = Writer::new(&mut buf, 128);
    w.start(0, 0x8000, None).expect("a header fits");
    w.opt(1232, 0, false, Some((*subnet, 0)), None, None)
        .expect("an OPT with ECS fits in 128 octets");
    let len = w.finish();
    assert_eq!(
        len - 12,
        Writer::opt_len(Some(subnet), false, None),
        "Writer::opt_len"
    );
    // Root owner, type, class, TTL, RDLENGTH; then one option.
    let rdata = &buf[12 + 11..len];
    let rdlen = usize::from(u16::from_be_bytes([buf[12 + 9], buf[12 + 10]]));
    assert_eq!(rdlen, rdata.len(), "OPT RDLENGTH");
    assert_eq!(u16::from_be_bytes([rdata[0], rdata[1]]), OPTION_ECS);
    let option_len = usize::from(u16::from_be_bytes([rdata[2], rdata[3]]));
    assert_eq!(option_len, rdata.len() - 4, "ECS option length");
    rdata[4..].to_vec()
}
