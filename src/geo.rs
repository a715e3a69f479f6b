//! Where clients are: a MaxMind DB (`.mmdb`) compiled into a lookup table.
//!
//! GeoLite2/GeoIP2 City and Country databases, and the free compatible ones
//! (DB-IP Lite, the `ip-location-db` builds), map networks to records with
//! a continent, a country, subdivisions and coordinates. The database is
//! read **at load time only**: every network becomes a run of a
//! [`PrefixTable`] whose value is the index of a compact [`Location`]
//! (continent, country, first subdivision, coordinates), and neighbouring
//! networks with the same location merge. A query then costs one binary
//! search; the mmdb decoder never runs on the answer path.
//!
//! A service maps the locations to its answers
//! ([`GeoTable::map_locations`]), which merges neighbours with one answer;
//! the run a client falls in there gives the ECS scope of the answer
//! (RFC 7871 §7.2.1): the widest aligned block around the client that gets
//! the same answer, never longer than the database's own network (merging
//! only widens it). IPv4 clients are looked up in IPv4
//! terms also in IPv6-structured databases, which keep IPv4 under `::/96`;
//! IPv4 written in IPv6 (`::ffff:a.b.c.d`, 6to4 `2002::/16`), which those
//! databases keep only as aliases, is looked up as the IPv4 it carries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Reader, WithinOptions};
use serde::Deserialize;

use crate::prefix::{Prefix, PrefixTable, RunKey, SortedRuns};

/// Index of a [`Location`] in a [`GeoTable`]; [`UNKNOWN`] for addresses the
/// database does not place.
pub type LocationId = u32;

/// The location id of addresses the database has no record for.
pub const UNKNOWN: LocationId = LocationId::MAX;

/// What a database record says about where a network is, reduced to what
/// routing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Location {
    /// Continent code (`EU`), or zeros.
    pub continent: [u8; 2],
    /// ISO 3166-1 alpha-2 country code (`GB`), or zeros.
    pub country: [u8; 2],
    /// ISO 3166-2 code of the first (largest) subdivision, without the
    /// country (`CA` of `US-CA`), zero-padded; zeros when absent.
    pub subdivision: [u8; 3],
    /// Latitude and longitude in millionths of a degree (integers, so that
    /// locations hash and compare exactly), when the record has them.
    pub coordinates: Option<(i32, i32)>,
}

impl Location {
    /// The coordinates in degrees.
    pub fn degrees(&self) -> Option<(f64, f64)> {
        self.coordinates
            .map(|(lat, lon)| (f64::from(lat) / 1e6, f64::from(lon) / 1e6))
    }

    /// The regions this location lies in, most specific first, ending with
    /// [`Region::Any`].
    pub fn regions(&self) -> impl Iterator<Item = Region> {
        let sub = (self.country != [0; 2] && self.subdivision[0] != 0)
            .then_some(Region::Subdivision(self.country, self.subdivision));
        let country = (self.country != [0; 2]).then_some(Region::Country(self.country));
        let continent = (self.continent != [0; 2]).then_some(Region::Continent(self.continent));
        sub.into_iter()
            .chain(country)
            .chain(continent)
            .chain([Region::Any])
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end_matches('\0')
                .to_string()
        };
        write!(f, "continent {}", or_dash(&text(&self.continent)))?;
        write!(f, ", country {}", or_dash(&text(&self.country)))?;
        write!(f, ", subdivision {}", or_dash(&text(&self.subdivision)))?;
        match self.degrees() {
            Some((lat, lon)) => write!(f, ", at {lat:.4}, {lon:.4}"),
            None => write!(f, ", no coordinates"),
        }
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// A region a geographic service maps to endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// ISO 3166-2 subdivision: country and subdivision code (`US-CA`).
    Subdivision([u8; 2], [u8; 3]),
    /// ISO 3166-1 alpha-2 country (`GB`).
    Country([u8; 2]),
    /// Continent (`EU`, `NA`, ...).
    Continent([u8; 2]),
    /// Everywhere else (`*`).
    Any,
}

/// The continent codes GeoIP2 databases use.
const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// ISO 3166-1 alpha-2 codes assigned today, plus `XK` (Kosovo), which
/// GeoIP2 databases use.
const COUNTRIES: &str =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ \
BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ \
DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT \
GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY \
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX \
MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS \
RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN \
TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

impl std::str::FromStr for Region {
    type Err = String;

    /// `*`, a continent (`EU`), a country (`GB`) or a subdivision
    /// (`US-CA`); codes are case-insensitive, unknown ones refused. Three
    /// codes are both a continent and a country (`AS` Asia and American
    /// Samoa, `NA` North America and Namibia, `SA` South America and Saudi
    /// Arabia): bare, they are the continent, as in gdnsd's maps; the
    /// country is written `country:SA` (and either may be written out as
    /// `continent:SA` / `country:SA`).
    fn from_str(s: &str) -> Result<Region, String> {
        let upper = s.to_ascii_uppercase();
        let two = |c: &str| -> [u8; 2] { [c.as_bytes()[0], c.as_bytes()[1]] };
        let is_country = |c: &str| c.len() == 2 && COUNTRIES.split(' ').any(|k| k == c);
        let is_continent = |c: &str| CONTINENTS.contains(&c);
        if upper == "*" {
            return Ok(Region::Any);
        }
        if let Some(c) = upper.strip_prefix("CONTINENT:") {
            return match is_continent(c) {
                true => Ok(Region::Continent(two(c))),
                false => Err(format!(
                    "{s:?}: not a continent ({})",
                    CONTINENTS.join(", ")
                )),
            };
        }
        if let Some(c) = upper.strip_prefix("COUNTRY:") {
            return match is_country(c) {
                true => Ok(Region::Country(two(c))),
                false => Err(format!("{s:?}: not an ISO 3166-1 country code")),
            };
        }
        if let Some((country, sub)) = upper.split_once('-') {
            let valid_sub =
                (1..=3).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric());
            if !is_country(country) || !valid_sub {
                return Err(format!(
                    "{s:?} is not a subdivision code (ISO 3166-2, e.g. \"US-CA\")"
                ));
            }
            let mut code = [0u8; 3];
            code[..sub.len()].copy_from_slice(sub.as_bytes());
            return Ok(Region::Subdivision(two(country), code));
        }
        match (is_continent(&upper), is_country(&upper)) {
            (true, _) => Ok(Region::Continent(two(&upper))),
            (false, true) => Ok(Region::Country(two(&upper))),
            (false, false) => Err(format!(
                "{s:?} is not a region: \"*\", a continent ({}), an ISO 3166-1 country or an ISO 3166-2 subdivision",
                CONTINENTS.join(", ")
            )),
        }
    }
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .trim_end_matches('\0')
                .to_string()
        };
        match self {
            Region::Subdivision(c, s) => write!(f, "{}-{}", text(c), text(s)),
            Region::Country(c) if CONTINENTS.contains(&text(c).as_str()) => {
                write!(f, "country:{}", text(c))
            }
            Region::Country(c) | Region::Continent(c) => write!(f, "{}", text(c)),
            Region::Any => write!(f, "*"),
        }
    }
}

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not a usable MaxMind DB.
    #[error("{}: not a usable MaxMind DB: {message}", path.display())]
    Invalid {
        /// The database file.
        path: PathBuf,
        /// What the reader said.
        message: String,
    },
}

/// A database compiled for answering.
#[derive(Debug)]
pub struct GeoTable {
    /// Client network to location id.
    table: PrefixTable<LocationId>,
    /// The distinct locations.
    locations: Box<[Location]>,
    /// The file it came from.
    pub path: PathBuf,
    /// Networks read from the database.
    pub networks: usize,
    /// The database's `database_type` (e.g. `GeoLite2-City`).
    pub database_type: String,
}

/// The fields of a GeoIP2 City (or Country) record that routing reads.
#[derive(Deserialize, Default)]
struct Record<'a> {
    #[serde(borrow, default)]
    continent: Code<'a>,
    #[serde(borrow, default)]
    country: Iso<'a>,
    #[serde(borrow, default)]
    subdivisions: Vec<Iso<'a>>,
    #[serde(default)]
    location: Coordinates,
}

#[derive(Deserialize, Default)]
struct Code<'a> {
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize, Default)]
struct Coordinates {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
}

impl Record<'_> {
    fn location(&self) -> Location {
        let fixed = |s: Option<&str>, out: &mut [u8]| {
            if let Some(s) = s.filter(|s| s.len() <= out.len() && s.is_ascii()) {
                out[..s.len()].copy_from_slice(s.to_ascii_uppercase().as_bytes());
            }
        };
        let mut l = Location::default();
        fixed(self.continent.code, &mut l.continent);
        fixed(self.country.iso_code, &mut l.country);
        // GeoIP2 subdivision codes omit the country; some free databases
        // write the full ISO 3166-2 form.
        let sub = self
            .subdivisions
            .first()
            .and_then(|s| s.iso_code)
            .map(|s| s.rsplit('-').next().unwrap_or(s));
        fixed(sub, &mut l.subdivision);
        l.coordinates = match (self.location.latitude, self.location.longitude) {
            (Some(lat), Some(lon))
                if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) =>
            {
                Some(((lat * 1e6).round() as i32, (lon * 1e6).round() as i32))
            }
            _ => None,
        };
        l
    }
}

/// The distinct locations met while walking a database, and which record
/// (by its offset in the file) is which location.
#[derive(Default)]
struct Places {
    locations: Vec<Location>,
    by_location: HashMap<Location, LocationId>,
    by_offset: HashMap<usize, LocationId>,
}

/// Walks one family of the database's tree (`cidr`: `0.0.0.0/0` or
/// `::/0`) into runs of location ids keyed by `K`; returns them and the
/// number of networks read.
///
/// The walk is in order (left before right child), so networks come in
/// address order and go straight into the runs: a GeoLite2-City database
/// has millions, too many to collect and sort first. A tree's leaves cannot
/// overlap; a database whose walk still goes backwards is refused.
fn walk<K: RunKey, S: AsRef<[u8]>>(
    reader: &Reader<S>,
    cidr: &str,
    places: &mut Places,
) -> Result<(SortedRuns<K, LocationId>, usize), String> {
    let within = reader
        .within(
            cidr.parse().expect("a valid CIDR"),
            WithinOptions::default(),
        )
        .map_err(|e| e.to_string())?;
    let mut runs = SortedRuns::new(UNKNOWN);
    let mut networks = 0;
    for item in within {
        let item = item.map_err(|e| e.to_string())?;
        let network = item.network().map_err(|e| e.to_string())?;
        let prefix = Prefix {
            network: network.network(),
            len: network.prefix(),
        };
        // IPv4 lives under ::/96 of an IPv6 database, where the IPv4 walk
        // already found it (the IPv6 walk yields it again, in IPv4 form or
        // as ::a.b.c.d).
        if K::BITS == 128
            && (prefix.network.is_ipv4()
                || (prefix.len >= 96 && crate::prefix::to_key(prefix.network) >> 32 == 0))
        {
            continue;
        }
        let Some(offset) = item.offset() else {
            continue;
        };
        let id = match places.by_offset.get(&offset) {
            Some(&id) => id,
            None => {
                let record: Record = item
                    .decode()
                    .map_err(|e| format!("record of {prefix}: {e}"))?
                    .unwrap_or_default();
                let location = record.location();
                let locations = &mut places.locations;
                let id = *places.by_location.entry(location).or_insert_with(|| {
                    locations.push(location);
                    (locations.len() - 1) as LocationId
                });
                places.by_offset.insert(offset, id);
                id
            }
        };
        runs.push(prefix, id)
            .map_err(|e| format!("networks out of order: {e}"))?;
        networks += 1;
    }
    Ok((runs, networks))
}

impl GeoTable {
    /// Reads and compiles the database at `path`.
    pub fn load(path: &Path) -> Result<GeoTable, GeoError> {
        let bytes = std::fs::read(path).map_err(|error| GeoError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let invalid = |message: String| GeoError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let reader = Reader::from_source(bytes).map_err(|e| invalid(e.to_string()))?;
        let mut places = Places::default();
        let (v4, v4_networks) = walk(&reader, "0.0.0.0/0", &mut places).map_err(invalid)?;
        let (v6, v6_networks) = match reader.metadata().ip_version {
            6 => walk(&reader, "::/0", &mut places).map_err(invalid)?,
            _ => (SortedRuns::new(UNKNOWN), 0),
        };
        Ok(GeoTable {
            table: PrefixTable::from_sorted(v4, v6),
            locations: places.locations.into(),
            path: path.to_path_buf(),
            networks: v4_networks + v6_networks,
            database_type: reader.metadata().database_type.clone(),
        })
    }

    /// Where `address` is, and how many leading bits decided it (at most
    /// `source_prefix`).
    #[inline]
    pub fn lookup(&self, address: IpAddr, source_prefix: u8) -> (LocationId, u8) {
        let (&id, scope) = self.table.lookup_embedded(address, source_prefix);
        (id, scope)
    }

    /// The table with each location id (and [`UNKNOWN`]) replaced by what
    /// `f` makes of it, neighbours with equal results merged: a service's
    /// answers by client network, with scopes as wide as those answers
    /// allow.
    pub fn map_locations<W: PartialEq>(&self, f: impl Fn(LocationId) -> W) -> PrefixTable<W> {
        self.table.map(|&id| f(id))
    }

    /// A location by id; `None` for [`UNKNOWN`].
    pub fn location(&self, id: LocationId) -> Option<&Location> {
        self.locations.get(id as usize)
    }

    /// Every distinct location, indexed by id.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// Runs in the compiled table (load statistics).
    pub fn runs(&self) -> usize {
        self.table.runs()
    }
}

/// The database's own record for `address`, read from the file (not the
/// compiled table): its network and location, for `steerdns explain`.
pub fn record_of(path: &Path, address: IpAddr) -> Result<(Prefix, Location), GeoError> {
    let invalid = |message: String| GeoError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|error| GeoError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let reader = Reader::from_source(bytes).map_err(|e| invalid(e.to_string()))?;
    let found = reader.lookup(address).map_err(|e| invalid(e.to_string()))?;
    let network = found.network().map_err(|e| invalid(e.to_string()))?;
    let record: Option<Record> = found.decode().map_err(|e| invalid(e.to_string()))?;
    Ok((
        Prefix {
            network: network.network(),
            len: network.prefix(),
        },
        record.map(|r| r.location()).unwrap_or_default(),
    ))
}

/// Great-circle distance in kilometres (haversine; the Earth as a sphere of
/// 6371 km, which orders endpoints as well as an ellipsoid would).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_strictly() {
        assert_eq!("eu".parse::<Region>(), Ok(Region::Continent(*b"EU")));
        assert_eq!("GB".parse::<Region>(), Ok(Region::Country(*b"GB")));
        assert_eq!(
            "us-ca".parse::<Region>(),
            Ok(Region::Subdivision(*b"US", *b"CA\0"))
        );
        assert_eq!("*".parse::<Region>(), Ok(Region::Any));
        assert!("XX".parse::<Region>().is_err());
        assert!("UK".parse::<Region>().is_err(), "GB is the code");
        assert!("US-TOOLONG".parse::<Region>().is_err());
        assert!("QQ-CA".parse::<Region>().is_err());
        assert_eq!("SA".parse::<Region>(), Ok(Region::Continent(*b"SA")));
        assert_eq!("country:sa".parse::<Region>(), Ok(Region::Country(*b"SA")));
        assert!("country:XX".parse::<Region>().is_err());
        assert_eq!(
            "continent:NA".parse::<Region>(),
            Ok(Region::Continent(*b"NA"))
        );
        assert_eq!(Region::Subdivision(*b"US", *b"CA\0").to_string(), "US-CA");
    }

    #[test]
    fn a_location_lists_its_regions_most_specific_first() {
        let l = Location {
            continent: *b"NA",
            country: *b"US",
            subdivision: *b"CA\0",
            coordinates: None,
        };
        let regions: Vec<String> = l.regions().map(|r| r.to_string()).collect();
        assert_eq!(regions, ["US-CA", "US", "NA", "*"]);
        let unknown: Vec<Region> = Location::default().regions().collect();
        assert_eq!(unknown, [Region::Any]);
    }

    #[test]
    fn distances_are_great_circle() {
        let london = (51.5074, -0.1278);
        let frankfurt = (50.1109, 8.6821);
        let new_york = (40.7128, -74.0060);
        let lf = distance_km(london, frankfurt);
        assert!((lf - 638.0).abs() < 10.0, "{lf}");
        let ln = distance_km(london, new_york);
        assert!((ln - 5570.0).abs() < 30.0, "{ln}");
    }
}

/// The test-database writer the integration tests use, shared so that unit
/// tests read the same files.
#[cfg(test)]
#[path = "../tests/common/geodb.rs"]
pub(crate) mod geodb;

#[cfg(test)]
mod table_tests {
    use super::geodb::{GeoDb, Place};
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_written_database_compiles_with_ipv4_in_ipv4_terms() {
        let dir = std::env::temp_dir().join(format!("steerdns-geo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("test.mmdb");
        let gb = Place::new("EU", "GB", Some("ENG"), Some((51.5, -0.12)));
        let us = Place::new("NA", "US", Some("CA"), Some((37.77, -122.42)));
        GeoDb::default()
            .add("81.2.69.0/24", gb.clone())
            .add("81.2.68.0/24", gb)
            .add("2.125.160.0/19", Place::new("EU", "DE", None, None))
            .add("216.160.83.0/24", us.clone())
            .add("2001:db8:aa::/48", us)
            .write(&path);
        let t = GeoTable::load(&path).unwrap();
        assert_eq!(t.networks, 5);
        // Two neighbouring /24s with one record merge into a /23 block.
        let (id, scope) = t.lookup(ip("81.2.69.7"), 32);
        assert_eq!(scope, 23);
        let l = t.location(id).unwrap();
        assert_eq!(
            (l.continent, l.country, l.subdivision),
            (*b"EU", *b"GB", *b"ENG")
        );
        assert_eq!(l.degrees(), Some((51.5, -0.12)));
        // Never longer than the client's source prefix.
        assert_eq!(t.lookup(ip("81.2.69.0"), 20).1, 20);
        let (id, scope) = t.lookup(ip("2.125.170.1"), 24);
        assert_eq!((t.location(id).unwrap().country, scope), (*b"DE", 19));
        let (id, scope) = t.lookup(ip("2001:db8:aa:1::"), 56);
        assert_eq!((t.location(id).unwrap().subdivision, scope), (*b"CA\0", 48));
        // Outside every network: unknown, with the widest block that
        // reaches no known network.
        let (id, scope) = t.lookup(ip("192.0.2.1"), 24);
        assert_eq!((id, scope), (UNKNOWN, 4), "192/4 leaves out 216.160.83/24");
        // A broken file is refused with its path.
        std::fs::write(&path, b"not a database").unwrap();
        let e = GeoTable::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("test.mmdb") && e.contains("not a usable MaxMind DB"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
