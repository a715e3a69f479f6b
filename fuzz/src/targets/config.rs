//! Bytes as config TOML through `Config::from_str`: no panic, errors name
//! a line of the text, and an accepted config holds what its docs promise.

use std::path::Path;

use steerdns::config::{Config, ConfigError, MAX_UDP_PAYLOAD_LIMIT};

/// Runs one input; panics on a finding.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz").join("steerdns.toml");
    match Config::from_str(text, &path) {
        Ok(config) => {
            assert!(
                !config.listen.is_empty(),
                "accepted with nothing to listen on"
            );
            assert!(!config.zones.is_empty(), "accepted with no zone");
            assert!(config.workers >= 1, "accepted with no worker");
            assert!(
                (512..=MAX_UDP_PAYLOAD_LIMIT).contains(&config.max_udp_payload),
                "max-udp-payload {} accepted",
                config.max_udp_payload
            );
            assert!(config.tcp.max_connections >= 1);
            assert!(config.tcp.max_queries_per_connection >= 1);
            assert!(!config.tcp.idle_timeout.is_zero());
            for service in &config.services {
                assert!(
                    config
                        .monitors
                        .keys()
                        .any(|m| Some(m) == service.monitor.as_ref())
                        || service.monitor.is_none(),
                    "service {} uses an undefined monitor",
                    service.name
                );
            }
        }
        Err(ConfigError::Invalid { line, .. }) => {
            let lines = text.matches('\n').count() + 1;
            assert!(
                (1..=lines).contains(&line),
                "error on line {line} of {lines}"
            );
        }
        Err(e @ ConfigError::Read { .. }) => panic!("from_str read a file: {e}"),
    }
}
