//! Helpers shared by the integration tests.
//!
//! * [`TempDir`]: a unique scratch folder, removed on drop.
//! * [`free_port`]: a loopback port free for both UDP and TCP.
//! * [`ServerProcess`]: a DNS server child process (steerdns or NSD) that
//!   is started in a scratch folder, waited for until it answers, and killed
//!   on drop, also when the test panics.
//! * [`query`] and [`exchange`]: one DNS query over UDP or TCP, encoded and
//!   decoded with hickory-proto, an implementation independent of ours.
//! * [`skip`] and [`require_tool`]: a test that cannot run here (not root,
//!   a program such as `nsd` missing) fails, unless `STEERDNS_ALLOW_SKIP=1`
//!   outside CI lets it pass with a visible `SKIPPED` line.
//!
//! All traffic goes to 127.0.0.1 only.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod geodb;

use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RecordType};

/// How long a server may take from spawn to its first answer.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one UDP attempt or one TCP exchange may take.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// UDP attempts per query before giving up.
const UDP_ATTEMPTS: usize = 3;

/// The loopback address every test server listens on.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Set this variable to keep scratch folders (configs, logs) after a run.
const KEEP_ENV: &str = "STEERDNS_TEST_KEEP";

/// A process-wide counter that makes names and message ids unique.
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_counter() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The folder holding the test data (`tests/data`).
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// A zone served by a test server: its apex and its master file.
#[derive(Debug, Clone)]
pub struct ZoneFile {
    /// The apex, with the trailing dot.
    pub origin: String,
    /// The master file, copied into the server's scratch folder.
    pub source: PathBuf,
}

impl ZoneFile {
    /// The file name the zone gets inside a server's `zones/` folder.
    pub fn file_name(&self) -> String {
        format!("{}zone", self.origin)
    }
}

/// The zone set of the differential test (`tests/data/diff/zones`): the
/// parent `example.com.`, its separately served child `sub.example.com.`,
/// and `example.net.`.
pub fn diff_zones() -> Vec<ZoneFile> {
    let dir = data_dir().join("diff").join("zones");
    ["example.com.", "sub.example.com.", "example.net."]
        .iter()
        .map(|origin| ZoneFile {
            origin: origin.to_string(),
            source: dir.join(format!("{origin}zone")),
        })
        .collect()
}

/// A unique scratch folder under the system's temporary folder, removed
/// with its contents on drop (unless `STEERDNS_TEST_KEEP` is set).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/steerdns-<tag>-<pid>-<n>-<nanos>`.
    pub fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "steerdns-{tag}-{}-{}-{nanos}",
            std::process::id(),
            next_counter()
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` inside the folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent folder");
        }
        fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }

    /// Copies each zone's master file to `zones/<origin>zone` in the folder.
    pub fn copy_zones(&self, zones: &[ZoneFile]) {
        for zone in zones {
            let text = fs::read_to_string(&zone.source)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", zone.source.display()));
            self.write(&format!("zones/{}", zone.file_name()), &text);
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os(KEEP_ENV).is_none() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A loopback port that was free for both UDP and TCP a moment ago.
///
/// The port is found by binding port 0 and released before returning, so
/// another process could take it in between; the window is small.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((LOOPBACK, 0)).expect("bind a UDP socket on 127.0.0.1");
        let port = udp.local_addr().expect("local address").port();
        if TcpListener::bind((LOOPBACK, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// Polls `check` every 20 ms until it holds, failing the test with `what`
/// if it does not within `within`: for state that changes in the
/// background (probes, reloads, the drain file).
pub fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Finds an external program in `PATH` or the sbin folders (NSD lives in
/// `/usr/sbin`, which a non-root `PATH` may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Set to `1` to let a test that cannot run on this machine (not root, no
/// network namespaces, a program missing) pass with a `SKIPPED` line
/// instead of failing. Ignored under CI, where nothing may be skipped.
pub const ALLOW_SKIP_ENV: &str = "STEERDNS_ALLOW_SKIP";

/// Whether the tests run under CI: `CI` is set to anything but empty, `0`
/// or `false` (`.ci/run` exports `CI=1`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Handles a test that cannot run here because of `why`. It fails the test
/// under CI, and elsewhere too unless `STEERDNS_ALLOW_SKIP=1`: a test that
/// shows `ok` without having run would hide exactly the machine it was
/// meant for. When skipping is allowed it prints `SKIPPED: why` and
/// returns, and the caller returns early.
pub fn skip(why: &str) {
    if under_ci() {
        panic!("{why}; nothing may be skipped under CI");
    }
    if std::env::var(ALLOW_SKIP_ENV).as_deref() != Ok("1") {
        panic!("{why}; set {ALLOW_SKIP_ENV}=1 to skip this test instead");
    }
    // Straight to the process's stderr: the test harness captures (and
    // hides, for a passing test) what eprintln! prints.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Whether the test process runs as root (the failover lab and the user
/// switch need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Returns the path of `name`, or handles its absence with [`skip`]: a
/// failure unless skipping is allowed, and then `None`, on which the
/// caller returns early.
pub fn require_tool(name: &str, package: &str) -> Option<PathBuf> {
    if let Some(path) = find_tool(name) {
        return Some(path);
    }
    skip(&format!(
        "`{name}` is not installed (Debian package `{package}`); \
         scripts/test.sh installs it"
    ));
    None
}

/// Runs `command` to completion and returns its output, killing it (and
/// panicking) if it takes longer than `timeout`.
pub fn output_within(mut command: Command, timeout: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Readers on their own threads, so a full pipe cannot stall the child.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The path of the steerdns binary Cargo built for this test run.
pub fn steerdns_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_steerdns"))
}

/// Writes a steerdns config for `zones` listening on `port` into `dir`
/// (zone files copied to `dir/zones`) and returns the config's path.
/// `extra_server` is appended to the `[server]` table verbatim and may
/// start further tables.
pub fn write_steerdns_config(
    dir: &TempDir,
    port: u16,
    zones: &[ZoneFile],
    extra_server: &str,
) -> PathBuf {
    dir.copy_zones(zones);
    // One worker unless the extra lines choose; they may also open further
    // tables (`[rrl]`, `[tcp]`), which end the `[server]` table.
    let workers = if extra_server.contains("workers") {
        ""
    } else {
        "workers = 1\n"
    };
    let mut config =
        format!("[server]\nlisten = [\"{LOOPBACK}:{port}\"]\n{workers}{extra_server}\n");
    for zone in zones {
        let _ = write!(
            config,
            "\n[[zone]]\norigin = \"{}\"\nfile = \"zones/{}\"\n",
            zone.origin,
            zone.file_name()
        );
    }
    dir.write("steerdns.toml", &config)
}

/// Starts `steerdns serve` for `zones` on a free loopback port and waits
/// until it answers. `extra_server` lines go into the `[server]` table
/// (e.g. `max-udp-payload = 4096`).
pub fn start_steerdns(zones: &[ZoneFile], extra_server: &str) -> ServerProcess {
    let dir = TempDir::new("serve");
    let port = free_port();
    let config = write_steerdns_config(&dir, port, zones, extra_server);
    let mut command = Command::new(steerdns_bin());
    command.arg("serve").arg("--config").arg(&config);
    ServerProcess::start("steerdns", command, dir, port, &zones[0].origin)
}

/// Starts NSD (`nsd -d`) for `zones` on a free loopback port, everything
/// it writes kept in a scratch folder, and waits until it answers.
///
/// Response shaping stays at NSD's defaults (`minimal-responses`,
/// `refuse-any`, `round-robin`), except for two settings that would make a
/// test flaky or unequal: response rate limiting is switched off (a test
/// sends hundreds of queries per second from one address) and the largest
/// UDP response is `max_udp_payload`, to match the steerdns side.
pub fn start_nsd(nsd: &Path, zones: &[ZoneFile], max_udp_payload: u16) -> ServerProcess {
    let dir = TempDir::new("nsd");
    let port = free_port();
    dir.copy_zones(zones);
    let root = dir.path().display().to_string();
    let mut conf = format!(
        "server:\n\
         \x20   ip-address: {LOOPBACK}@{port}\n\
         \x20   port: {port}\n\
         \x20   username: \"\"\n\
         \x20   chroot: \"\"\n\
         \x20   zonesdir: \"{root}\"\n\
         \x20   database: \"\"\n\
         \x20   pidfile: \"{root}/nsd.pid\"\n\
         \x20   xfrdfile: \"{root}/xfrd.state\"\n\
         \x20   xfrdir: \"{root}\"\n\
         \x20   zonelistfile: \"{root}/zone.list\"\n\
         \x20   verbosity: 1\n\
         \x20   server-count: 1\n\
         \x20   ipv4-edns-size: {max_udp_payload}\n\
         \x20   rrl-ratelimit: 0\n\
         \x20   rrl-whitelist-ratelimit: 0\n\
         remote-control:\n\
         \x20   control-enable: no\n"
    );
    for zone in zones {
        let _ = write!(
            conf,
            "zone:\n    name: \"{}\"\n    zonefile: \"zones/{}\"\n",
            zone.origin,
            zone.file_name()
        );
    }
    let conf_path = dir.write("nsd.conf", &conf);
    let mut command = Command::new(nsd);
    command.arg("-d").arg("-c").arg(&conf_path);
    ServerProcess::start("nsd", command, dir, port, &zones[0].origin)
}

/// A DNS server running as a child process in its own process group.
///
/// Dropping it stops the whole group (NSD forks helpers): SIGTERM, up to
/// three seconds' grace, then SIGKILL.
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl ServerProcess {
    /// Spawns `command` with its output in `dir`, then waits until it
    /// answers a SOA query for `probe_zone` on `port` over UDP and TCP.
    /// Panics with the server's output when it exits or stays silent.
    pub fn start(
        name: &'static str,
        command: Command,
        dir: TempDir,
        port: u16,
        probe_zone: &str,
    ) -> ServerProcess {
        let mut server =
            ServerProcess::spawn(name, command, dir, SocketAddr::from((LOOPBACK, port)));
        if let Err(why) = server.wait_until_answers(probe_zone) {
            panic!("{name} did not start: {why}\n{}", server.logs());
        }
        server
    }

    /// Spawns `command` in its own process group, in `dir` with its output
    /// in `dir`, and returns at once: for a process that is not a DNS server
    /// on the loopback (an HTTP payload, a server in another network
    /// namespace), whose readiness the caller checks. `addr` is what
    /// [`ServerProcess::addr`] reports.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        dir: TempDir,
        addr: SocketAddr,
    ) -> ServerProcess {
        let stdout = fs::File::create(dir.path().join("stdout.log")).expect("create stdout.log");
        let stderr = fs::File::create(dir.path().join("stderr.log")).expect("create stderr.log");
        command
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        ServerProcess {
            name,
            child,
            addr,
            dir,
        }
    }

    /// The process id of the server (its group's leader).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address the server answers on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the server answers on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The server's scratch folder (config, zones, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's standard output and error so far, for failure reports.
    pub fn logs(&self) -> String {
        let read = |file: &str| fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            read("stdout.log"),
            self.name,
            read("stderr.log")
        )
    }

    /// Polls until a SOA query for `zone` is answered over both UDP and
    /// TCP, for at most [`STARTUP_TIMEOUT`].
    pub fn wait_until_answers(&mut self, zone: &str) -> Result<(), String> {
        self.wait_until_answers_within(zone, STARTUP_TIMEOUT)
    }

    /// Like [`ServerProcess::wait_until_answers`], for at most `within`:
    /// for a server that loads a large zone first.
    pub fn wait_until_answers_within(
        &mut self,
        zone: &str,
        within: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let probe = |tcp: bool| {
            let opts = QueryOpts {
                tcp,
                ..QueryOpts::default()
            };
            query_with_timeout(
                self.addr,
                zone,
                RecordType::SOA,
                &opts,
                Duration::from_millis(200),
                1,
            )
        };
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!("it exited with {status}"));
            }
            let last = match probe(false).and_then(|_| probe(true)) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("no answer within {within:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's exit status once it has exited, waiting at most
    /// `within`; `None` if it is still running then.
    pub fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to the server's process group (e.g. `SIGSTOP` to
    /// freeze it); errors (the group is already gone) are ignored.
    pub fn signal_group(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) has no memory-safety preconditions; the group id
            // is the pid of a child we spawned as its group's leader.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

impl ServerProcess {
    /// Whether the leader has exited, without reaping it: while it is an
    /// unreaped zombie its pid, and so the group id, cannot be reused, and
    /// signalling the group still reaches only this server's processes.
    fn has_exited(&self) -> bool {
        let pid: libc::id_t = self.child.id();
        // SAFETY: an all-zero siginfo_t is a valid value to be overwritten.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) writes only into `info`, which outlives the
        // call; WNOWAIT leaves the child waitable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid for an exited child and zero when
        // WNOHANG found none.
        rc != 0 || unsafe { info.si_pid() } != 0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && !self.has_exited() {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Also ends helpers that outlived the leader. The leader is not
        // reaped before this, so the group id cannot have been reused by
        // another process of the machine (pids wrap around quickly on a
        // busy one).
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// How to send one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOpts {
    /// TCP instead of UDP.
    pub tcp: bool,
    /// EDNS UDP payload size to advertise, or `None` for no OPT record.
    pub edns: Option<u16>,
    /// The DNSSEC OK bit (needs `edns`).
    pub dnssec_ok: bool,
    /// The RD (recursion desired) header bit.
    pub rd: bool,
    /// The CD (checking disabled) header bit.
    pub cd: bool,
}

impl Default for QueryOpts {
    /// UDP, EDNS with 1232 bytes, no flags: what a resolver sends.
    fn default() -> Self {
        QueryOpts {
            tcp: false,
            edns: Some(1232),
            dnssec_ok: false,
            rd: false,
            cd: false,
        }
    }
}

/// A fresh message id.
fn next_id() -> u16 {
    // Truncation intended: mixes the pid into the low 16 bits.
    (next_counter().wrapping_mul(40503) ^ std::process::id()) as u16
}

/// Builds a query message for `name`/`rtype` with `opts`.
pub fn build_query(name: &Name, rtype: RecordType, opts: &QueryOpts) -> Message {
    let mut message = Message::new();
    message
        .set_id(next_id())
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(opts.rd)
        .set_checking_disabled(opts.cd)
        .add_query(Query::query(name.clone(), rtype));
    if let Some(size) = opts.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(size)
            .set_version(0)
            .set_dnssec_ok(opts.dnssec_ok);
        message.set_edns(edns);
    }
    message
}

/// `query` (in wire format, its OPT record last and without options) with
/// a COOKIE option (RFC 7873 §4) of `cookie` added to that OPT record.
pub fn with_cookie(mut query: Vec<u8>, cookie: &[u8]) -> Vec<u8> {
    let rdlen = query.len() - 2;
    query[rdlen..].copy_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
    query.extend_from_slice(&10u16.to_be_bytes());
    query.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    query.extend_from_slice(cookie);
    query
}

/// Parses a name keeping its case (`Name::from_str` would lowercase it).
pub fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap_or_else(|e| panic!("bad name {text:?}: {e}"))
}

/// Sends one query for `qname`/`rtype` to `addr` and decodes the answer.
pub fn query(
    addr: SocketAddr,
    qname: &str,
    rtype: RecordType,
    opts: &QueryOpts,
) -> Result<Message, String> {
    query_with_timeout(addr, qname, rtype, opts, QUERY_TIMEOUT, UDP_ATTEMPTS)
}

fn query_with_timeout(
    addr: SocketAddr,
    qname: &str,
    rtype: RecordType,
    opts: &QueryOpts,
    timeout: Duration,
    attempts: usize,
) -> Result<Message, String> {
    let message = build_query(&name(qname), rtype, opts);
    exchange_with_timeout(addr, &message, opts.tcp, timeout, attempts)
}

/// Sends one UDP query for `qname`/`rtype` to `addr` carrying an ECS
/// option for `subnet` (address and source prefix), as a resolver does, and
/// returns the response and the ECS option it carried back.
pub fn query_with_subnet(
    addr: SocketAddr,
    qname: &str,
    rtype: RecordType,
    subnet: (std::net::IpAddr, u8),
) -> Result<(Message, Option<ClientSubnet>), String> {
    let mut message = build_query(&name(qname), rtype, &QueryOpts::default());
    if let Some(edns) = message.extensions_mut().as_mut() {
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(subnet.0, subnet.1, 0)));
    }
    let response = exchange(addr, &message, false)?;
    let ecs = client_subnet(&response);
    Ok((response, ecs))
}

/// The ECS option of a message, if any.
pub fn client_subnet(message: &Message) -> Option<ClientSubnet> {
    match message.extensions().as_ref()?.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(subnet) => Some(*subnet),
        _ => None,
    }
}

/// Sends one UDP query for `qname`/`rtype` to `addr`, with an EDNS Client
/// Subnet option for `subnet` (address, source prefix) when given; returns
/// the response and the scope of the ECS option it carried back.
pub fn query_ecs(
    addr: SocketAddr,
    qname: &str,
    rtype: RecordType,
    subnet: Option<(&str, u8)>,
) -> (Message, Option<u8>) {
    let (m, ecs) = match subnet {
        Some((client, len)) => {
            let client = client.parse().expect("an address");
            query_with_subnet(addr, qname, rtype, (client, len))
        }
        None => query(addr, qname, rtype, &QueryOpts::default()).map(|m| {
            let ecs = client_subnet(&m);
            (m, ecs)
        }),
    }
    .unwrap_or_else(|e| panic!("{qname}: {e}"));
    (m, ecs.map(|s| s.scope_prefix()))
}

/// The A and AAAA addresses of an answer section, as text, sorted.
pub fn addresses(m: &Message) -> Vec<String> {
    use hickory_proto::rr::RData;
    let mut v: Vec<String> = m
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.to_string()),
            RData::AAAA(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// Sends `message` over UDP or TCP and decodes the response, which must
/// carry the same id.
pub fn exchange(addr: SocketAddr, message: &Message, tcp: bool) -> Result<Message, String> {
    exchange_with_timeout(addr, message, tcp, QUERY_TIMEOUT, UDP_ATTEMPTS)
}

fn exchange_with_timeout(
    addr: SocketAddr,
    message: &Message,
    tcp: bool,
    timeout: Duration,
    attempts: usize,
) -> Result<Message, String> {
    let wire = message
        .to_vec()
        .map_err(|e| format!("cannot encode query: {e}"))?;
    let bytes = if tcp {
        exchange_tcp(addr, &wire, timeout)?
    } else {
        exchange_udp(addr, &wire, timeout, attempts)?
    };
    decode_response(&bytes)
}

/// Decodes a response with hickory-proto.
pub fn decode_response(bytes: &[u8]) -> Result<Message, String> {
    Message::from_vec(bytes)
        .map_err(|e| format!("undecodable response ({} bytes): {e}", bytes.len()))
}

/// Reads the id of a raw message, if it has a header.
fn raw_id(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

/// Sends `wire` in one datagram and returns the first datagram that comes
/// back with the same id; retries `attempts` times.
pub fn exchange_udp(
    addr: SocketAddr,
    wire: &[u8],
    timeout: Duration,
    attempts: usize,
) -> Result<Vec<u8>, String> {
    // From the loopback of the server's family.
    let local: std::net::IpAddr = if addr.is_ipv6() {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        LOOPBACK.into()
    };
    exchange_udp_from(local, addr, wire, timeout, attempts)
}

/// [`exchange_udp`] from the source address `local` (any port): a client
/// elsewhere in 127.0.0.0/8, which on Linux is all loopback, so a test can
/// stand for clients of several networks without adding addresses.
pub fn exchange_udp_from(
    local: std::net::IpAddr,
    addr: SocketAddr,
    wire: &[u8],
    timeout: Duration,
    attempts: usize,
) -> Result<Vec<u8>, String> {
    // connect() drops replies from any other source address, as resolvers
    // do.
    let socket = UdpSocket::bind((local, 0)).map_err(|e| format!("bind {local}: {e}"))?;
    socket.connect(addr).map_err(|e| format!("connect: {e}"))?;
    let mut buf = vec![0u8; 65535];
    for _ in 0..attempts.max(1) {
        socket.send(wire).map_err(|e| format!("send: {e}"))?;
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            socket
                .set_read_timeout(Some(left))
                .map_err(|e| e.to_string())?;
            match socket.recv(&mut buf) {
                Ok(n) if raw_id(&buf[..n]) == raw_id(wire) => return Ok(buf[..n].to_vec()),
                Ok(_) => continue, // a late answer to an earlier attempt
                Err(e) if is_timeout(&e) => break,
                // ICMP port unreachable: nobody listens (yet).
                Err(e) => return Err(format!("UDP receive: {e}")),
            }
        }
    }
    Err(format!(
        "no UDP answer from {addr} after {attempts} attempt(s) of {timeout:?}"
    ))
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Sends `wire` on a new TCP connection with the two-byte length prefix
/// (RFC 1035 §4.2.2) and reads one response.
pub fn exchange_tcp(addr: SocketAddr, wire: &[u8], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("TCP connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let len = u16::try_from(wire.len()).map_err(|_| "query too long for TCP".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(wire);
    stream
        .write_all(&framed)
        .map_err(|e| format!("TCP send: {e}"))?;
    read_tcp_message(&mut stream)
}

/// Reads one length-prefixed message from a TCP stream.
pub fn read_tcp_message(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .map_err(|e| format!("TCP receive length: {e}"))?;
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream
        .read_exact(&mut bytes)
        .map_err(|e| format!("TCP receive message: {e}"))?;
    Ok(bytes)
}

/// A tiny HTTP payload on `addr`: 200 while healthy, 503 otherwise; it stops
/// accepting when dropped. What a health probe of a `self` service checks.
pub struct HttpPayload {
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HttpPayload {
    /// Listens on `addr` and answers every request on a thread of its own.
    pub fn start(addr: SocketAddr) -> HttpPayload {
        use std::sync::atomic::AtomicBool;
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("payload on {addr}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let healthy = std::sync::Arc::new(AtomicBool::new(true));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (h, s) = (healthy.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 1024];
                        let _ = stream.read(&mut buf);
                        let status = if h.load(Ordering::Relaxed) {
                            "200 OK"
                        } else {
                            "503 Unavailable"
                        };
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpPayload { healthy, stop }
    }

    /// Makes the payload answer 200 (`true`) or 503.
    pub fn set_healthy(&self, up: bool) {
        self.healthy.store(up, Ordering::Relaxed);
    }
}

impl Drop for HttpPayload {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
