//! Test GeoIP databases, written by the tests themselves in the MaxMind DB
//! format with the fields GeoIP2 City records use (continent, country,
//! subdivisions, location). No third-party database is used or committed.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use maxminddb_writer::Database;
use serde::Serialize;

/// One record: where a network is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    continent: Code,
    country: Iso,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subdivisions: Vec<Iso>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Coordinates>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<City>,
}

/// A city as GeoIP2 City records carry it: an id and names in the
/// database's languages (routing reads neither; they give a record its
/// real size and fields for the reader to skip).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct City {
    geoname_id: u32,
    names: BTreeMap<&'static str, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Code {
    code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Iso {
    iso_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Coordinates {
    latitude: f64,
    longitude: f64,
}

impl Place {
    /// A place in `continent`/`country`, optionally a subdivision (`CA` of
    /// `US-CA`) and coordinates.
    pub fn new(
        continent: &str,
        country: &str,
        subdivision: Option<&str>,
        at: Option<(f64, f64)>,
    ) -> Place {
        Place {
            continent: Code {
                code: continent.into(),
            },
            country: Iso {
                iso_code: country.into(),
            },
            subdivisions: subdivision
                .map(|s| Iso { iso_code: s.into() })
                .into_iter()
                .collect(),
            location: at.map(|(latitude, longitude)| Coordinates {
                latitude,
                longitude,
            }),
            city: None,
        }
    }

    /// The same place in a city called `name` (in every language of
    /// GeoLite2-City), with the geoname id `id`.
    pub fn in_city(mut self, id: u32, name: &str) -> Place {
        let names = ["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"]
            .into_iter()
            .map(|language| (language, name.to_string()))
            .collect();
        self.city = Some(City {
            geoname_id: id,
            names,
        });
        self
    }
}

/// A database under construction: distinct records, and networks that
/// point at them (millions of them for the scale test, so a network holds
/// a record's index, not a copy).
#[derive(Debug, Default)]
pub struct GeoDb {
    places: Vec<Place>,
    /// Each distinct record's index in `places`, by its debug text.
    index: HashMap<String, u32>,
    networks: Vec<(IpAddr, u8, u32)>,
}

impl GeoDb {
    /// Adds a network (`"192.0.2.0/24"`, `"2001:db8::/32"`).
    pub fn add(&mut self, network: &str, place: Place) -> &mut GeoDb {
        let (addr, len) = network.split_once('/').expect("ADDRESS/LEN");
        let place = self.place(place);
        self.add_network(
            addr.parse().expect("address"),
            len.parse().expect("length"),
            place,
        )
    }

    /// The index of `place` among the records, added when new.
    pub fn place(&mut self, place: Place) -> u32 {
        let key = format!("{place:?}");
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.places.push(place);
        let i = u32::try_from(self.places.len() - 1).expect("fewer than 2^32 records");
        self.index.insert(key, i);
        i
    }

    /// Adds the network `addr`/`len` with the record `place` (an index from
    /// [`GeoDb::place`]).
    pub fn add_network(&mut self, addr: IpAddr, len: u8, place: u32) -> &mut GeoDb {
        self.networks.push((addr, len, place));
        self
    }

    /// How many networks were added.
    pub fn networks(&self) -> usize {
        self.networks.len()
    }

    /// Writes an IPv6-structured database (IPv4 under `::/96`, as GeoLite2
    /// does) to `path`.
    pub fn write(&self, path: &Path) {
        let mut db = Database::default();
        db.metadata.ip_version = IpVersion::V6;
        db.metadata.database_type = "GeoIP2-City".into();
        db.metadata.languages = vec!["en".into()];
        db.metadata.binary_format_major_version = 2;
        db.metadata.build_epoch = 1_764_547_200;
        let refs: Vec<_> = self
            .places
            .iter()
            .map(|place| db.insert_value(place).expect("record"))
            .collect();
        for &(addr, len, place) in &self.networks {
            let data = refs[place as usize];
            let (addr, len) = match addr {
                IpAddr::V4(v4) => (IpAddr::V6(v4.to_ipv6_compatible()), len + 96),
                IpAddr::V6(_) => (addr, len),
            };
            db.insert_node(IpAddrWithMask::new(addr, len), data);
        }
        let file = std::fs::File::create(path).expect("create the database file");
        db.write_to(std::io::BufWriter::new(file))
            .expect("write the database");
    }
}

/// A small world: London (EU/GB/ENG, with `gb_country` standing in for GB
/// so a test can move it), Frankfurt (EU/DE/HE), San Francisco (NA/US/CA),
/// New York (NA/US/NY), Sydney (OC/AU, no subdivision), and
/// 2001:db8:aa::/48 in California.
pub fn world(gb_country: &str) -> GeoDb {
    let mut db = GeoDb::default();
    db.add(
        "81.2.69.0/24",
        Place::new("EU", gb_country, Some("ENG"), Some((51.51, -0.13))),
    )
    .add(
        "2.125.160.0/19",
        Place::new("EU", "DE", Some("HE"), Some((50.11, 8.68))),
    )
    .add(
        "216.160.83.0/24",
        Place::new("NA", "US", Some("CA"), Some((37.77, -122.42))),
    )
    .add(
        "216.160.84.0/24",
        Place::new("NA", "US", Some("NY"), Some((40.71, -74.0))),
    )
    .add(
        "1.128.0.0/11",
        Place::new("OC", "AU", None, Some((-33.87, 151.21))),
    )
    .add(
        "2001:db8:aa::/48",
        Place::new("NA", "US", Some("CA"), Some((37.77, -122.42))),
    );
    db
}
