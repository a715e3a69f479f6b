//! Geographic routing against gdnsd's `geoip` plugin: one written GeoIP2
//! City database, the same region → datacenter map in both servers, and
//! hundreds of client subnets sent with ECS (RFC 7871) to each.
//!
//! gdnsd is the reference: its `geoip` plugin is the long-standing open
//! implementation of "map places to ordered datacenter lists" with ECS. For
//! every client subnet the test asserts:
//! - both servers answer with the same endpoint;
//! - steerdns's scope is never longer than the client's source prefix and
//!   never longer than the database network holding the client;
//! - steerdns's scope equals gdnsd's (cut to the source prefix, see
//!   below): both merge neighbouring networks that get the same answer into
//!   the widest aligned block. Shorter would let a resolver give this
//!   answer to a neighbour answered differently; longer would fragment its
//!   cache.
//!
//! How the maps are made equivalent. steerdns's `regions` name a
//! continent (`EU`), a country (`GB`) or a subdivision (`DE-BY`), and the
//! most specific region containing the client wins; gdnsd's `map` is a
//! hierarchy continent → country → subdivision where each level may have a
//! `default`, and the most specific entry wins, a level without `default`
//! inheriting the one above. So steerdns's `EU` is gdnsd's `EU => {
//! default => ... }`, `GB` is `EU => { GB => ... }`, `DE-BY` is `EU => { DE
//! => { BY => ... } }`, and `*` is the top-level `default`. With every
//! endpoint up, both answer with the first datacenter of the most specific
//! list. The database is consistent (a country always under its continent),
//! as GeoIP2 data is.
//!
//! Differences by design, left out of the assertions on purpose:
//! 1. Fallback when a list's datacenters are all down: gdnsd fails over
//!    inside the one matched list only; steerdns continues with the lists
//!    of the less specific regions, then `*`. All endpoints are up here.
//!    Hence steerdns merges neighbours whose whole fallback chain is equal
//!    and gdnsd neighbours whose list is: two places with one list but
//!    different fallbacks would merge in gdnsd only. This map has no such
//!    pair (each list belongs to one region).
//! 2. gdnsd's `nets` (explicit networks that override the database) have
//!    no counterpart in a geographic service (subnet routing does that); the
//!    map here has no `nets`.
//! 3. gdnsd looks past the first subdivision (and at cities); steerdns
//!    reads the first subdivision only. The database's records have at most
//!    one subdivision and the map names no city.
//! 4. Scope past the source prefix: gdnsd returns a scope longer than the
//!    source prefix when its block is smaller than the client's subnet
//!    (about a quarter of the clients here); steerdns never does, so there
//!    steerdns's scope must equal the source prefix.
//! 5. IPv4-like IPv6 spaces (6to4, Teredo, NAT64's well-known prefix,
//!    v4-mapped): gdnsd looks them up as the embedded IPv4 address;
//!    steerdns as IPv6. No client here is in them.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use common::geodb::{GeoDb, Place};
use common::{free_port, ServerProcess, TempDir, LOOPBACK};

/// The routed name.
const WWW: &str = "www.example.com.";

/// The zone both servers serve, without the routed name.
const ZONE: &str =
    "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n";

/// The datacenters and their (IPv4) addresses.
const DATACENTERS: [(&str, &str); 8] = [
    ("fra", "192.0.2.1"),
    ("ams", "192.0.2.2"),
    ("lon", "192.0.2.3"),
    ("muc", "192.0.2.4"),
    ("sfo", "192.0.2.5"),
    ("iad", "192.0.2.6"),
    ("sin", "192.0.2.7"),
    ("tyo", "192.0.2.8"),
];

/// The region map, in steerdns's terms (region, datacenters in order).
const REGIONS: [(&str, &[&str]); 8] = [
    ("*", &["iad", "fra"]),
    ("EU", &["fra", "ams"]),
    ("GB", &["lon", "ams"]),
    ("DE-BY", &["muc", "fra"]),
    ("US", &["iad", "sfo"]),
    ("US-CA", &["sfo", "iad"]),
    ("AS", &["sin", "tyo"]),
    ("JP", &["tyo", "sin"]),
];

/// The same map in gdnsd's hierarchy.
const GDNSD_MAP: &str = "
        default => [iad, fra]
        EU => {
          default => [fra, ams]
          GB => [lon, ams]
          DE => { BY => [muc, fra] }
        }
        NA => { US => { default => [iad, sfo], CA => [sfo, iad] } }
        AS => { default => [sin, tyo], JP => [tyo, sin] }
";

/// The places networks are in: continent, country, subdivision. Some share
/// an answer (every EU place but GB and DE-BY answers `fra`, and their
/// networks merge across places), some are outside every region but `*`
/// (AU, BR, ZA), one is a country without subdivision.
const PLACES: [(&str, &str, Option<&str>); 16] = [
    ("EU", "GB", Some("ENG")),
    ("EU", "GB", Some("SCT")),
    ("EU", "DE", Some("BY")),
    ("EU", "DE", Some("BE")),
    ("EU", "FR", Some("IDF")),
    ("EU", "NL", Some("NH")),
    ("EU", "IE", None),
    ("NA", "US", Some("CA")),
    ("NA", "US", Some("NY")),
    ("NA", "US", Some("TX")),
    ("NA", "CA", Some("ON")),
    ("AS", "JP", Some("13")),
    ("AS", "SG", None),
    ("OC", "AU", Some("NSW")),
    ("SA", "BR", Some("SP")),
    ("AF", "ZA", Some("GP")),
];

/// A small deterministic generator (xorshift64), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One network of the written database.
#[derive(Debug, Clone, Copy)]
struct Network {
    /// First address, as an integer of the family's width.
    start: u128,
    /// Prefix length.
    len: u8,
    /// Address width: 32 or 128.
    bits: u8,
    /// Index into [`PLACES`].
    place: usize,
}

impl Network {
    fn end(&self) -> u128 {
        self.start + block(self.bits, self.len) - 1
    }

    fn contains(&self, bits: u8, key: u128) -> bool {
        self.bits == bits && (self.start..=self.end()).contains(&key)
    }
}

/// The number of addresses in a prefix of `len` bits.
fn block(bits: u8, len: u8) -> u128 {
    1u128 << (bits - len)
}

fn address(bits: u8, key: u128) -> IpAddr {
    if bits == 32 {
        IpAddr::V4(Ipv4Addr::from(key as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(key))
    }
}

fn key(address: IpAddr) -> (u8, u128) {
    match address {
        IpAddr::V4(a) => (32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, u128::from(a)),
    }
}

/// Lays out `count` disjoint networks of `len_range` lengths from `base`
/// upwards, in address order: mostly touching their neighbour (so that
/// blocks merge, or do not, by place), sometimes with a gap; one in three
/// in the same place as the one before.
fn lay_out(rng: &mut Rng, bits: u8, base: u128, count: usize, len_range: (u8, u8)) -> Vec<Network> {
    let mut out: Vec<Network> = Vec::new();
    let mut cursor = base;
    for _ in 0..count {
        let len = len_range.0 + rng.below(u64::from(len_range.1 - len_range.0 + 1)) as u8;
        let size = block(bits, len);
        cursor = cursor.div_ceil(size) * size;
        let place = match out.last() {
            Some(last) if rng.below(3) == 0 => last.place,
            _ => rng.below(PLACES.len() as u64) as usize,
        };
        out.push(Network {
            start: cursor,
            len,
            bits,
            place,
        });
        cursor += size;
        if rng.below(5) == 0 {
            cursor += size * u128::from(rng.below(4) + 1);
        }
    }
    out
}

/// The database's networks: IPv4 from 20.0.0.0 (lengths /12 to /28) and
/// IPv6 inside 2a00::/12 (lengths /24 to /56).
fn networks() -> Vec<Network> {
    let mut rng = Rng(0x0005_eed0_f9e0);
    let mut all = lay_out(&mut rng, 32, 20 << 24, 220, (12, 28));
    all.extend(lay_out(&mut rng, 128, 0x2a00 << 112, 160, (24, 56)));
    all
}

/// The endpoint steerdns and gdnsd should both pick for a place (`None`:
/// outside the database): the first datacenter of the most specific region.
fn expected_datacenter(place: Option<usize>) -> &'static str {
    let regions: Vec<String> = match place {
        None => vec!["*".into()],
        Some(i) => {
            let (continent, country, sub) = PLACES[i];
            let mut r = Vec::new();
            if let Some(sub) = sub {
                r.push(format!("{country}-{sub}"));
            }
            r.extend([country.to_string(), continent.to_string(), "*".into()]);
            r
        }
    };
    regions
        .iter()
        .find_map(|r| REGIONS.iter().find(|(name, _)| name == r))
        .map(|(_, list)| list[0])
        .expect("`*` is mapped")
}

fn write_database(path: &std::path::Path, nets: &[Network]) {
    let mut db = GeoDb::default();
    for n in nets {
        let (continent, country, sub) = PLACES[n.place];
        let network = format!("{}/{}", address(n.bits, n.start), n.len);
        db.add(&network, Place::new(continent, country, sub, None));
    }
    db.write(path);
}

fn start_steerdns(database: &std::path::Path) -> ServerProcess {
    let dir = TempDir::new("geo-gdnsd-steerdns");
    let port = free_port();
    std::fs::copy(database, dir.path().join("geo.mmdb")).expect("copy the database");
    let endpoints: Vec<String> = DATACENTERS
        .iter()
        .map(|(name, addr)| format!("  {{ name = \"{name}\", addresses = [\"{addr}\"] }},\n"))
        .collect();
    let regions: Vec<String> = REGIONS
        .iter()
        .map(|(region, list)| format!("\"{region}\" = {list:?}"))
        .collect();
    let config = format!(
        "[server]\nlisten = [\"{LOOPBACK}:{port}\"]\nworkers = 1\n\n\
         [geoip]\ndatabase = \"geo.mmdb\"\n\n\
         [[zone]]\norigin = \"example.com.\"\nfile = \"example.com.zone\"\n\n\
         [[service]]\nname = \"{WWW}\"\nrouting = \"geographic\"\nttl = 300\n\
         endpoints = [\n{}]\nregions = {{ {} }}\n",
        endpoints.concat(),
        regions.join(", ")
    );
    dir.write("example.com.zone", ZONE);
    let config = dir.write("steerdns.toml", &config);
    let mut command = Command::new(common::steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    ServerProcess::start("steerdns", command, dir, port, "example.com.")
}

fn start_gdnsd(gdnsd: &std::path::Path, database: &std::path::Path) -> ServerProcess {
    let dir = TempDir::new("geo-gdnsd");
    let port = free_port();
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(dir.path().join("geoip")).expect("geoip folder");
    std::fs::copy(database, dir.path().join("geoip/geo.mmdb")).expect("copy the database");
    let names: Vec<&str> = DATACENTERS.iter().map(|(n, _)| *n).collect();
    let dcmap: Vec<String> = DATACENTERS
        .iter()
        .map(|(name, addr)| format!("{name} => {addr}"))
        .collect();
    let config = format!(
        "options => {{\n\
         \x20 listen => [ {LOOPBACK}:{port} ]\n\
         \x20 run_dir => {root}/run\n\
         \x20 state_dir => {root}/state\n\
         \x20 edns_client_subnet => true\n\
         \x20 udp_threads => 1\n\
         \x20 tcp_threads => 1\n\
         }}\n\
         plugins => {{ geoip => {{\n\
         \x20 maps => {{ world => {{\n\
         \x20   geoip2_db => geo.mmdb\n\
         \x20   datacenters => [ {} ]\n\
         \x20   map => {{ {GDNSD_MAP} }}\n\
         \x20 }} }}\n\
         \x20 resources => {{ www => {{ map => world, dcmap => {{ {} }} }} }}\n\
         }} }}\n",
        names.join(", "),
        dcmap.join(", ")
    );
    dir.write("config", &config);
    dir.write(
        "zones/example.com",
        &format!("{ZONE}www 300 DYNA geoip!www\n"),
    );
    let mut command = Command::new(gdnsd);
    command.arg("-c").arg(dir.path()).arg("start");
    ServerProcess::start("gdnsd", command, dir, port, "example.com.")
}

/// Asks `server` for [`WWW`] A with the ECS option `subnet`: the answer's
/// address and the scope echoed.
fn ask(server: &ServerProcess, subnet: (IpAddr, u8)) -> (Ipv4Addr, u8) {
    let (response, ecs) = common::query_with_subnet(server.addr(), WWW, RecordType::A, subnet)
        .unwrap_or_else(|e| panic!("{subnet:?}: {e}\n{}", server.logs()));
    assert_eq!(
        response.response_code(),
        ResponseCode::NoError,
        "{subnet:?}"
    );
    let addresses: Vec<Ipv4Addr> = response
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(addresses.len(), 1, "{subnet:?}: {response:?}");
    let ecs = ecs.unwrap_or_else(|| panic!("{subnet:?}: no ECS option in {response:?}"));
    (addresses[0], ecs.scope_prefix())
}

/// The client subnets: for every network an address inside with a source
/// prefix shorter, equal and longer than the network, plus addresses in the
/// gaps, all masked to their source prefix.
fn clients(nets: &[Network]) -> Vec<(IpAddr, u8)> {
    let mut rng = Rng(0x00c1_1e47);
    let mut out = Vec::new();
    for n in nets {
        let size = block(n.bits, n.len);
        let inside = n.start + (u128::from(rng.next()) << 64 | u128::from(rng.next())) % size;
        let max_source = if n.bits == 32 { 32 } else { 64 };
        let sources = [
            n.len.saturating_sub(1 + rng.below(4) as u8),
            n.len,
            (n.len + 1 + rng.below(8) as u8).min(max_source),
        ];
        for source in sources {
            let masked = inside & !(block(n.bits, source) - 1);
            out.push((address(n.bits, masked), source));
        }
        // Just past the network: a neighbour, a gap or the next network.
        let after = n.end() + 1;
        let source = if n.bits == 32 { 24 } else { 56 };
        out.push((
            address(n.bits, after & !(block(n.bits, source) - 1)),
            source,
        ));
    }
    out
}

#[test]
fn geographic_answers_and_scopes_match_gdnsd() {
    let Some(gdnsd) = common::require_tool("gdnsd", "gdnsd") else {
        return;
    };
    let scratch = TempDir::new("geo-gdnsd-db");
    let database = scratch.path().join("geo.mmdb");
    let nets = networks();
    write_database(&database, &nets);
    let steerdns = start_steerdns(&database);
    let gdnsd = start_gdnsd(&gdnsd, &database);
    let address_of = |dc: &str| -> Ipv4Addr {
        let (_, a) = DATACENTERS
            .iter()
            .find(|(n, _)| *n == dc)
            .expect("datacenter");
        a.parse().expect("address")
    };

    let clients = clients(&nets);
    assert!(clients.len() > 1000, "{} clients", clients.len());
    let mut merged = 0;
    for &(client, source) in &clients {
        let (ours, our_scope) = ask(&steerdns, (client, source));
        let (theirs, their_scope) = ask(&gdnsd, (client, source));
        let what = format!(
            "{client}/{source}: steerdns {ours} scope {our_scope}, gdnsd {theirs} scope {their_scope}"
        );
        assert_eq!(ours, theirs, "{what}");
        let (bits, k) = key(client);
        // The answer both should give, from the map and the place of the
        // network the (masked) client address is in.
        let network = nets.iter().find(|n| n.contains(bits, k));
        let place = network.map(|n| n.place);
        assert_eq!(ours, address_of(expected_datacenter(place)), "{what}");
        assert!(our_scope <= source, "{what}: longer than the source prefix");
        if let Some(n) = network {
            assert!(
                our_scope <= n.len,
                "{what}: longer than the database network {n:?}"
            );
            merged += usize::from(our_scope < n.len.min(source));
        }
        assert_eq!(our_scope, their_scope.min(source), "{what}: scopes differ");
    }
    // The database is laid out so that networks merge: the scope is then
    // shorter than the network.
    assert!(
        merged > clients.len() / 20,
        "{merged} scopes of merged networks"
    );
}
