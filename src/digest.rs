//! Digests of the files a configuration was loaded from: the config file
//! and every zone file, SHA-256 each, and one digest over all of them.
//!
//! Nodes meant to run one configuration show the same combined digest;
//! the per-file digests tell which file differs. They are taken right
//! after the files are loaded (at start and on each reload), so they
//! describe what is served, not what is on disk now.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Config;

/// The digest of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileDigest {
    /// The file, as the config names it (resolved).
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of its bytes, or `None` when it could not be
    /// read a moment after loading (deleted since).
    pub sha256: Option<String>,
}

/// The digests of a loaded configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDigest {
    /// SHA-256 over the digests below, in order: equal on two nodes when
    /// every file is.
    pub sha256: String,
    /// The config file.
    pub config: FileDigest,
    /// Each zone file, in configuration order, with its origin.
    pub zones: Vec<(String, FileDigest)>,
}

impl ConfigDigest {
    /// Reads and digests the config file and every zone file of `config`
    /// (blocking file I/O).
    pub fn of(config: &Config) -> ConfigDigest {
        let file = digest_file(&config.file);
        let zones: Vec<(String, FileDigest)> = config
            .zones
            .iter()
            .map(|z| (z.origin.to_string(), digest_file(&z.file)))
            .collect();
        // Names and digests, so that a renamed zone changes it too.
        let mut all = Sha256::new();
        for (name, d) in std::iter::once(("config", &file))
            .chain(zones.iter().map(|(origin, d)| (origin.as_str(), d)))
        {
            all.update(name.as_bytes());
            all.update([0]);
            all.update(d.sha256.as_deref().unwrap_or("unreadable").as_bytes());
            all.update([0]);
        }
        ConfigDigest {
            sha256: hex(&all.finalize()),
            config: file,
            zones,
        }
    }
}

fn digest_file(path: &Path) -> FileDigest {
    FileDigest {
        path: path.to_path_buf(),
        sha256: std::fs::read(path).ok().map(|b| hex(&Sha256::digest(b))),
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_the_bytes() {
        let dir = std::env::temp_dir().join(format!("steerdns-digest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let zone = "$TTL 300\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n";
        std::fs::write(dir.join("z.zone"), zone).unwrap();
        let text = "[server]\nlisten = [\"127.0.0.1:5353\"]\n\
                    [[zone]]\norigin = \"z.test.\"\nfile = \"z.zone\"\n";
        let path = dir.join("steerdns.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::from_file(&path).unwrap();
        let a = ConfigDigest::of(&config);
        // `printf %s "$text" | sha256sum`
        assert_eq!(
            a.config.sha256.as_deref(),
            Some(hex(&Sha256::digest(text)).as_str())
        );
        assert_eq!(a.zones[0].0, "z.test.");
        assert_eq!(a.sha256.len(), 64);
        assert_eq!(ConfigDigest::of(&config), a);

        std::fs::write(dir.join("z.zone"), format!("{zone}www A 192.0.2.2\n")).unwrap();
        let b = ConfigDigest::of(&config);
        assert_eq!(a.config, b.config);
        assert_ne!(a.zones[0].1, b.zones[0].1);
        assert_ne!(a.sha256, b.sha256);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 10, 255]), "000aff");
        // The SHA-256 of nothing, as every implementation gives it.
        assert_eq!(
            hex(&Sha256::digest(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
