//! The lab's wiring: network namespaces on one Ethernet segment.
//!
//! Each host of the lab (the fake root, each node, the recursors) is a
//! network namespace with one interface, `eth0`, the end of a veth pair
//! whose other end is a port of the bridge `br0`. The bridge lives in a
//! namespace of its own, so nothing of the machine's own network is
//! touched. Hosts sit in different documentation subnets; an on-link
//! default route (IPv4 and IPv6) lets each reach the others straight over
//! the segment, with no router.
//!
//! Namespaces are named `sdl<pid>-<role>`: [`remove_stale`] recognises the
//! ones a killed test run left behind by their dead pid. One process runs
//! one lab at a time.

use std::fs::{self, File};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::common;

/// Prefix of every namespace the lab creates.
const PREFIX: &str = "sdl";

/// How long one `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// Where `ip netns add` mounts the namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Runs `ip` with the whitespace-separated `args`; `Err` holds its stderr.
fn ip(args: &str) -> Result<String, String> {
    let mut command = Command::new(common::find_tool("ip").unwrap_or_else(|| "ip".into()));
    command.args(args.split_whitespace());
    let output = common::output_within(command, IP_TIMEOUT);
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {args}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A network namespace, by name. Cheap to clone; [`Network`] deletes it.
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Runs `f` on a new thread that joined this namespace, and returns its
    /// result. Sockets `f` opens and processes it spawns live in the
    /// namespace; a panic in `f` carries on in the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                self.enter();
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Moves the calling thread (only it: network namespaces are per
    /// thread) into this namespace. Meant for threads of the lab's own.
    pub fn enter(&self) {
        let path = PathBuf::from(NETNS_DIR).join(&self.name);
        let file =
            File::open(&path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        // SAFETY: setns(2) is given a descriptor that stays open for the
        // call; it changes only the calling thread's network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            panic!(
                "setns into {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }

    /// Runs `ip -n <this namespace> args`.
    pub fn try_ip(&self, args: &str) -> Result<String, String> {
        ip(&format!("-n {} {args}", self.name))
    }

    /// Runs `ip -n <this namespace> args` and panics when it fails: the
    /// lab cannot be half built.
    fn ip(&self, args: &str) {
        if let Err(e) = self.try_ip(args) {
            panic!("{e}");
        }
    }
}

/// The segment: the bridge's namespace and every host's, all deleted on
/// drop (stop the processes inside first, or they keep theirs alive).
#[derive(Debug)]
pub struct Network {
    bridge: Netns,
    hosts: Vec<Netns>,
}

impl Network {
    /// Creates the bridge. `Err` says why network namespaces cannot be used
    /// here (no privilege, no bridge support), which skips the lab.
    pub fn new() -> Result<Network, String> {
        let bridge = Netns {
            name: format!("{PREFIX}{}-bridge", std::process::id()),
        };
        ip(&format!("netns add {}", bridge.name))?;
        let network = Network {
            bridge,
            hosts: Vec::new(),
        };
        network.bridge.try_ip("link add br0 type bridge")?;
        network.bridge.ip("link set lo up");
        // No snooping: IPv6 neighbour discovery is multicast, and nobody on
        // this segment sends the queries snooping would learn from.
        network
            .bridge
            .ip("link set br0 type bridge mcast_snooping 0");
        network.bridge.ip("link set br0 up");
        Ok(network)
    }

    /// Adds the host `role` with `addresses` (IPv4 as /24, IPv6 as /64
    /// without duplicate address detection, so they work at once).
    pub fn add_host(&mut self, role: &str, addresses: &[IpAddr]) -> Netns {
        let host = Netns {
            name: format!("{PREFIX}{}-{role}", std::process::id()),
        };
        if let Err(e) = ip(&format!("netns add {}", host.name)) {
            panic!("{e}");
        }
        self.hosts.push(host.clone());
        host.ip("link set lo up");
        let port = format!("v-{role}");
        self.bridge.ip(&format!(
            "link add {port} type veth peer name eth0 netns {}",
            host.name
        ));
        self.bridge.ip(&format!("link set {port} master br0 up"));
        host.ip("link set eth0 up");
        for address in addresses {
            match address {
                IpAddr::V4(a) => host.ip(&format!("addr add {a}/24 dev eth0")),
                IpAddr::V6(a) => host.ip(&format!("addr add {a}/64 dev eth0 nodad")),
            }
        }
        host.ip("-4 route add default dev eth0");
        host.ip("-6 route add default dev eth0");
        host
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.bridge]) {
            if let Err(e) = ip(&format!("netns del {}", ns.name)) {
                eprintln!("lab cleanup: {e}");
            }
        }
    }
}

/// Deletes the namespaces (and kills the processes in them) that earlier
/// runs left behind: those named with the lab's prefix and the pid of a
/// process that no longer exists (or of this one, which has no lab yet: a
/// process runs one lab at a time). Labs of runs still going are kept.
pub fn remove_stale() {
    let Ok(entries) = fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid != std::process::id() && PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        eprintln!("lab: removing namespace {name} left by an earlier run");
        for pid in ip(&format!("netns pids {name}"))
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(pid) = pid.parse::<libc::pid_t>() {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
        if let Err(e) = ip(&format!("netns del {name}")) {
            eprintln!("lab cleanup: {e}");
        }
    }
}

/// The pid in a lab namespace's name `sdl<pid>-<role>`.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, _role) = name.strip_prefix(PREFIX)?.split_once('-')?;
    pid.parse().ok()
}
