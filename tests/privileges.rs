//! `[server] user`: the binary binds as root, then runs as the configured
//! user. Switching users needs root: without it the drop test fails
//! (see `common::skip` for `STEERDNS_ALLOW_SKIP`); an unknown user is
//! refused either way.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use common::QueryOpts;

/// `nobody`'s uid and gid from the user database.
fn nobody() -> (u32, u32) {
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .expect("a nobody user");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// The pid of the process whose command line mentions `needle`.
fn pid_of(needle: &str) -> u32 {
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            return pid;
        }
    }
    panic!("no process with {needle:?} in its command line");
}

/// The numbers of a `Uid:`/`Gid:`-style line of /proc/PID/status.
fn status_ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} line"))
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn drops_to_the_configured_user_after_binding() {
    if !common::is_root() {
        common::skip("switching users needs root");
        return;
    }
    let (uid, gid) = nobody();
    let server = common::start_steerdns(&common::diff_zones(), "user = \"nobody\"");
    let config = server.dir().join("steerdns.toml");
    let pid = pid_of(&config.display().to_string());
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    // Real, effective, saved and filesystem ids: all nobody's.
    assert_eq!(status_ids(&status, "Uid:"), [uid; 4], "{status}");
    assert_eq!(status_ids(&status, "Gid:"), [gid; 4], "{status}");
    assert_eq!(status_ids(&status, "Groups:"), [gid], "{status}");
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    assert_eq!(
        u64::from_str_radix(caps, 16).unwrap(),
        0,
        "capabilities kept"
    );
    // And it still answers, over UDP and TCP.
    for tcp in [false, true] {
        let opts = QueryOpts {
            tcp,
            ..QueryOpts::default()
        };
        let m = common::query(server.addr(), "www.example.com.", RecordType::A, &opts).unwrap();
        assert_eq!(m.answers().len(), 2);
    }
}

#[test]
fn an_unknown_user_is_refused_clearly() {
    let dir = common::TempDir::new("privileges");
    let port = common::free_port();
    let config = common::write_steerdns_config(
        &dir,
        port,
        &common::diff_zones(),
        "user = \"no-such-user-here\"",
    );
    let mut command = Command::new(common::steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    let output = common::output_within(command, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("unknown user \"no-such-user-here\""),
        "{stderr}"
    );
}
