//! Load time and memory for a GeoLite2-City-sized database.
//!
//! GeoLite2-City holds about 3.5 million networks (IPv4 and IPv6) pointing
//! at about 100,000 distinct records (cities). No third-party database is
//! used: [`generate`] writes one of that shape with tests/common/geodb.rs,
//! with the locality real data has (neighbouring networks are often in the
//! same city or country, sometimes not; gaps between them). Then
//! `steerdns check` loads a config with that database and a geographic and
//! a performance service over it (each compiles a fallback chain for every
//! location), and the test prints how long the load took and the process's
//! peak resident set.
//!
//! It takes minutes in a debug build and writes a ~100 MB file, so it is
//! `#[ignore]`d; measure with an optimised build:
//!
//! ```text
//! cargo test --release --test geo_scale -- --ignored --nocapture
//! ```
//!
//! `GEO_SCALE_V4`, `GEO_SCALE_V6` and `GEO_SCALE_RECORDS` change the sizes
//! (defaults 2,500,000, 1,000,000 and 100,000); `GEO_SCALE_OUT=FILE` keeps
//! a copy of the database (the geographic benchmark scenario uses it). In an optimised build the
//! test fails when the load takes more than [`MAX_LOAD`] of CPU time (user
//! and system: wall time on a busy machine says more about the machine)
//! or the peak resident set passes [`MAX_RSS_MIB`].

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::geodb::{GeoDb, Place};
use common::TempDir;

/// The most CPU time an optimised build may take to load the database.
const MAX_LOAD: Duration = Duration::from_secs(10);

/// The largest peak resident set an optimised build may reach, in MiB.
const MAX_RSS_MIB: u64 = 300;

/// Countries with their continent, for records; enough of them that
/// locations spread over every continent.
const COUNTRIES: [(&str, &str); 40] = [
    ("EU", "GB"),
    ("EU", "DE"),
    ("EU", "FR"),
    ("EU", "NL"),
    ("EU", "IT"),
    ("EU", "ES"),
    ("EU", "PL"),
    ("EU", "SE"),
    ("EU", "RU"),
    ("EU", "UA"),
    ("NA", "US"),
    ("NA", "CA"),
    ("NA", "MX"),
    ("SA", "BR"),
    ("SA", "AR"),
    ("SA", "CL"),
    ("SA", "CO"),
    ("AS", "JP"),
    ("AS", "CN"),
    ("AS", "IN"),
    ("AS", "KR"),
    ("AS", "SG"),
    ("AS", "ID"),
    ("AS", "VN"),
    ("AS", "TR"),
    ("AS", "IL"),
    ("AS", "TH"),
    ("AS", "PH"),
    ("OC", "AU"),
    ("OC", "NZ"),
    ("AF", "ZA"),
    ("AF", "NG"),
    ("AF", "EG"),
    ("AF", "KE"),
    ("AF", "MA"),
    ("NA", "PA"),
    ("EU", "CZ"),
    ("EU", "RO"),
    ("AS", "SA"),
    ("AS", "AE"),
];

/// A small deterministic generator (xorshift64): every run writes the same
/// database.
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

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A GeoLite2-City-shaped database: `records` cities in [`COUNTRIES`]
/// (subdivisions and coordinates varying), `v4` IPv4 networks (mostly /24
/// and smaller, some up to /19) and `v6` IPv6 networks (/29 to /56) in
/// address order with gaps. Of two neighbouring networks, four in ten share
/// the city, four in ten the country, the rest are anywhere.
fn generate(v4: usize, v6: usize, records: usize) -> GeoDb {
    let mut rng = Rng(0x0c17_5eed);
    let mut db = GeoDb::default();
    // Per country, its cities' record indexes.
    let mut by_country: Vec<Vec<u32>> = vec![Vec::new(); COUNTRIES.len()];
    let mut country_of: Vec<usize> = Vec::with_capacity(records);
    for i in 0..records {
        let c = rng.below(COUNTRIES.len() as u64) as usize;
        let (continent, country) = COUNTRIES[c];
        let sub = format!("S{}", rng.below(30));
        let lat = (rng.below(170_000) as f64) / 1000.0 - 85.0;
        let lon = (rng.below(360_000) as f64) / 1000.0 - 180.0;
        let id = u32::try_from(i).expect("records fit u32");
        let place = Place::new(continent, country, Some(&sub), Some((lat, lon)))
            .in_city(1_000_000 + id, &format!("City {i}"));
        let index = db.place(place);
        assert_eq!(index, id, "every generated record is distinct");
        by_country[c].push(index);
        country_of.push(c);
    }
    let pick = |rng: &mut Rng, previous: Option<u32>| -> u32 {
        match (previous, rng.below(10)) {
            (Some(p), 0..=3) => p,
            (Some(p), 4..=7) => {
                let cities = &by_country[country_of[p as usize]];
                cities[rng.below(cities.len() as u64) as usize]
            }
            _ => rng.below(records as u64) as u32,
        }
    };
    // IPv4 from 1.0.0.0 up: the lengths average about 500 addresses with
    // the gaps, so 2.5 million networks end below 224.0.0.0.
    let v4_len = |rng: &mut Rng| match rng.below(100) {
        0..=34 => 24,
        35..=49 => 23,
        50..=57 => 22,
        58..=60 => 21,
        61..=62 => 19 + rng.below(2) as u8,
        _ => 25 + rng.below(4) as u8,
    };
    let family = Family {
        bits: 32,
        first: 1 << 24,
        end: 224 << 24,
    };
    lay_out(&mut db, &mut rng, &family, v4, v4_len, &pick);
    // IPv6 from 2001:200:: up, inside 2000::/3.
    let v6_len = |rng: &mut Rng| match rng.below(100) {
        0..=29 => 32,
        30..=54 => 48,
        55..=69 => 44,
        70..=79 => 40,
        80..=89 => 36,
        90..=94 => 29 + rng.below(3) as u8,
        _ => 49 + rng.below(8) as u8,
    };
    let family = Family {
        bits: 128,
        first: 0x2001_0200 << 96,
        end: 0x4 << 124,
    };
    lay_out(&mut db, &mut rng, &family, v6, v6_len, &pick);
    db
}

/// Where a family's networks go: from `first` up to before `end`.
struct Family {
    bits: u8,
    first: u128,
    end: u128,
}

/// Adds `count` networks of lengths from `len_of` in address order, each
/// with a record from `pick` (given the one before).
fn lay_out(
    db: &mut GeoDb,
    rng: &mut Rng,
    family: &Family,
    count: usize,
    len_of: impl Fn(&mut Rng) -> u8,
    pick: &impl Fn(&mut Rng, Option<u32>) -> u32,
) {
    let mut cursor = family.first;
    let mut previous = None;
    for _ in 0..count {
        let len = len_of(rng);
        let (start, next) = place_block(rng, cursor, family.bits, len);
        assert!(next <= family.end, "networks run past the family's range");
        let place = pick(rng, previous);
        let address = match family.bits {
            32 => IpAddr::V4(Ipv4Addr::from(start as u32)),
            _ => IpAddr::V6(Ipv6Addr::from(start)),
        };
        db.add_network(address, len, place);
        previous = Some(place);
        cursor = next;
    }
}

/// Aligns a block of `len` bits at or after `cursor`; returns its start and
/// the next free address (after a gap, one time in five).
fn place_block(rng: &mut Rng, cursor: u128, bits: u8, len: u8) -> (u128, u128) {
    let size = 1u128 << (bits - len);
    let start = cursor.div_ceil(size) * size;
    let mut next = start + size;
    if rng.below(5) == 0 {
        next += size * u128::from(rng.below(3) + 1);
    }
    (start, next)
}

/// What [`run_measured`] saw.
struct Measured {
    status: ExitStatus,
    /// User and system CPU time.
    cpu: Duration,
    /// Peak resident set, KiB.
    peak_kib: u64,
}

/// Runs `command` to its end, the only child this test starts. The peak
/// resident set is the last `VmHWM` read from /proc before it exited (it
/// only grows; it is read every few milliseconds), and the CPU time is
/// getrusage(2)'s for children.
///
/// Not getrusage(2)'s `ru_maxrss`: Linux carries the high-water mark of
/// the memory a process replaced at exec(2) into it, and the child starts
/// out sharing this test's (vfork), whose generator is the bigger one.
fn run_measured(mut command: Command) -> Measured {
    let mut child = command
        .stdin(Stdio::null())
        .spawn()
        .expect("start steerdns check");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for steerdns check") {
            break status;
        }
        let hwm = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        assert!(
            Instant::now() < deadline,
            "steerdns check ran for 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    // SAFETY: an all-zero rusage is a valid value for getrusage to
    // overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local.
    let done = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    assert_eq!(done, 0, "getrusage: {}", std::io::Error::last_os_error());
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.unsigned_abs())
            + Duration::from_micros(t.tv_usec.unsigned_abs())
    };
    Measured {
        status,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        peak_kib,
    }
}

#[test]
#[ignore = "writes a ~100 MB database and takes minutes unoptimised; run with --release"]
fn a_geolite2_city_sized_database_loads_in_seconds() {
    let (v4, v6) = (
        env_or("GEO_SCALE_V4", 2_500_000),
        env_or("GEO_SCALE_V6", 1_000_000),
    );
    let records = env_or("GEO_SCALE_RECORDS", 100_000);
    let dir = TempDir::new("geo-scale");
    let t = Instant::now();
    let db = generate(v4, v6, records);
    let networks = db.networks();
    db.write(&dir.path().join("geo.mmdb"));
    drop(db);
    let size = std::fs::metadata(dir.path().join("geo.mmdb"))
        .expect("the database")
        .len();
    eprintln!(
        "generated {networks} networks ({v4} IPv4, {v6} IPv6), {records} records, \
         {:.1} MiB, in {:.1?}",
        size as f64 / 1048576.0,
        t.elapsed()
    );
    // bench/scenarios/40-geo.sh keeps the database for its servers.
    if let Ok(out) = std::env::var("GEO_SCALE_OUT") {
        std::fs::copy(dir.path().join("geo.mmdb"), &out).expect("copy the database out");
    }

    dir.write(
        "example.com.zone",
        "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n",
    );
    let config = dir.write(
        "steerdns.toml",
        r#"[server]
listen = ["127.0.0.1:53"]

[geoip]
database = "geo.mmdb"

[[zone]]
origin = "example.com."
file = "example.com.zone"

[[service]]
name = "geo.example.com."
routing = "geographic"
endpoints = [
  { name = "fra", addresses = ["192.0.2.1"] },
  { name = "lon", addresses = ["192.0.2.2"] },
  { name = "iad", addresses = ["192.0.2.3"] },
  { name = "sin", addresses = ["192.0.2.4"] },
]
regions = { "EU" = ["fra", "lon"], "GB" = ["lon"], "AS" = ["sin"], "*" = ["iad"] }

[[service]]
name = "near.example.com."
routing = "performance"
endpoints = [
  { name = "fra", addresses = ["192.0.2.1"], location = [50.11, 8.68] },
  { name = "lon", addresses = ["192.0.2.2"], location = [51.51, -0.13] },
  { name = "iad", addresses = ["192.0.2.3"], location = [38.95, -77.45] },
  { name = "sin", addresses = ["192.0.2.4"], location = [1.35, 103.99] },
]
default = "iad"
"#,
    );
    let mut command = Command::new(common::steerdns_bin());
    command.arg("check").arg("--config").arg(&config);
    let t = Instant::now();
    let measured = run_measured(command);
    let wall = t.elapsed();
    let (cpu, status) = (measured.cpu, measured.status);
    assert!(status.success(), "steerdns check failed: {status}");
    let rss_mib = measured.peak_kib / 1024;
    eprintln!(
        "steerdns check: {networks} networks loaded in {wall:.2?} ({cpu:.2?} CPU), \
         peak RSS {rss_mib} MiB (database file {:.1} MiB)",
        size as f64 / 1048576.0
    );
    if cfg!(debug_assertions) {
        eprintln!("(unoptimised build: the limits are checked with --release only)");
        return;
    }
    assert!(
        cpu <= MAX_LOAD,
        "load took {cpu:?} of CPU, more than {MAX_LOAD:?}"
    );
    assert!(
        rss_mib <= MAX_RSS_MIB,
        "peak RSS {rss_mib} MiB, more than {MAX_RSS_MIB} MiB"
    );
}
