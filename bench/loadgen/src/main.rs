//! dnsload: an open-loop UDP DNS load generator for the steerdns benchmarks.
//!
//! Over loopback a generator spends about as much CPU per query as the
//! server it measures (see bench/README.md). dnsload keeps its own work
//! small and visible: every packet is built once up front, sends and
//! receives are batched with sendmmsg/recvmmsg, one thread drives several
//! connected sockets, the offered rate is paced in short bursts with sleeps
//! in between (so its CPU use shows its headroom), and answers carry the
//! kernel's arrival timestamp, so latencies do not include its own
//! scheduling.
//!
//! Queries come from a dnsperf-format file (`name type` per line), sent in
//! order and repeated until the duration ends, at a fixed rate (`-Q QPS`) or
//! with a fixed number outstanding (`-Q 0 -w N`). A query is answered when a
//! response with its ID arrives within the timeout (`-t MS`).
//! Latencies (send time to the kernel's arrival stamp of the answer) go
//! into a 1 µs histogram.
//!
//! Output: `key=value` lines on stdout (see `report`). With `-T FILE`, also
//! a trace for analysis over time (bench/reload): one line per sendmmsg,
//! `s SEND_NS COUNT`, and one per answered query, `a SEND_NS LATENCY_NS`,
//! times in CLOCK_REALTIME nanoseconds (the clock of log timestamps).

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;
use std::time::Duration;

const MAX_PACKET: usize = 512;
const RECV_BUF: usize = 4096;
const HIST_US: usize = 1_000_000; // 1 µs buckets up to 1 s

struct Args {
    server: SocketAddrV4,
    queries: String,
    duration: Duration,
    qps: u64,
    window: usize,
    sockets: usize,
    batch: usize,
    timeout: Duration,
    /// Shortest sleep when idle in paced mode: queries due meanwhile go out
    /// as one burst. Sleeping between single queries costs more than the
    /// queries (a wakeup each, an IPI on a VM).
    quantum_ns: u64,
    edns: bool,
    options: Vec<(u16, Vec<u8>)>,
    /// Where to write the per-query trace, if anywhere.
    trace: Option<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: dnsload -s ADDR:PORT -d QUERYFILE [-l SECONDS] [-Q QPS|0] [-w WINDOW]\n\
         \x20              [-c SOCKETS] [-b BATCH] [-t TIMEOUT_MS] [-i QUANTUM_US] [-e] [-E CODE:HEX]...\n\
         \x20              [-T TRACEFILE]\n\
         -Q 0 keeps WINDOW queries outstanding instead of pacing (closed loop).\n\
         -e adds an OPT record; -E adds an EDNS option (implies -e), as dnsperf.\n\
         -T writes every send batch and answer with its time to TRACEFILE."
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        server: "127.0.0.1:53".parse().unwrap(),
        queries: String::new(),
        duration: Duration::from_secs(10),
        qps: 0,
        window: 200,
        sockets: 4,
        batch: 64,
        timeout: Duration::from_millis(1000),
        quantum_ns: 50_000,
        edns: false,
        options: Vec::new(),
        trace: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "-s" => a.server = val().parse().unwrap_or_else(|_| usage()),
            "-d" => a.queries = val(),
            "-l" => a.duration = Duration::from_secs_f64(val().parse().unwrap_or_else(|_| usage())),
            "-Q" => a.qps = val().parse().unwrap_or_else(|_| usage()),
            "-w" => a.window = val().parse().unwrap_or_else(|_| usage()),
            "-c" => a.sockets = val().parse().unwrap_or_else(|_| usage()),
            "-b" => a.batch = val().parse().unwrap_or_else(|_| usage()),
            "-t" => a.timeout = Duration::from_millis(val().parse().unwrap_or_else(|_| usage())),
            "-i" => a.quantum_ns = val().parse::<u64>().unwrap_or_else(|_| usage()) * 1000,
            "-e" => a.edns = true,
            "-T" => a.trace = Some(val()),
            "-E" => {
                let v = val();
                let (code, hex) = v.split_once(':').unwrap_or_else(|| usage());
                let code: u16 = code.parse().unwrap_or_else(|_| usage());
                a.options
                    .push((code, decode_hex(hex).unwrap_or_else(|| usage())));
                a.edns = true;
            }
            _ => usage(),
        }
    }
    if a.queries.is_empty() || a.sockets == 0 || a.batch == 0 || a.window == 0 {
        usage();
    }
    a.batch = a.batch.min(1024);
    a
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

fn qtype(name: &str) -> Option<u16> {
    Some(match name.to_ascii_uppercase().as_str() {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "NAPTR" => 35,
        "DS" => 43,
        "CAA" => 257,
        "ANY" => 255,
        t => t.strip_prefix("TYPE")?.parse().ok()?,
    })
}

/// One query in wire format, ID zero (set at send time).
fn build_query(name: &str, qtype: u16, a: &Args) -> Option<Vec<u8>> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(a.edns)]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    if a.edns {
        let rdlen: usize = a.options.iter().map(|(_, v)| 4 + v.len()).sum();
        p.push(0);
        p.extend_from_slice(&41u16.to_be_bytes());
        p.extend_from_slice(&1232u16.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 0]);
        p.extend_from_slice(&(rdlen as u16).to_be_bytes());
        for (code, val) in &a.options {
            p.extend_from_slice(&code.to_be_bytes());
            p.extend_from_slice(&(val.len() as u16).to_be_bytes());
            p.extend_from_slice(val);
        }
    }
    (p.len() <= MAX_PACKET).then_some(p)
}

fn load_queries(a: &Args) -> io::Result<Vec<Vec<u8>>> {
    let f = std::fs::File::open(&a.queries)?;
    let mut out = Vec::new();
    for line in io::BufReader::new(f).lines() {
        let line = line?;
        let mut parts = line.split_whitespace();
        let (Some(name), Some(t)) = (parts.next(), parts.next()) else {
            continue;
        };
        if name.starts_with(';') || name.starts_with('#') {
            continue;
        }
        match qtype(t).and_then(|t| build_query(name, t, a)) {
            Some(p) => out.push(p),
            None => eprintln!("dnsload: skipping query line {line:?}"),
        }
    }
    Ok(out)
}

fn check(ret: libc::c_int, what: &str) -> io::Result<libc::c_int> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(ret)
}

/// A non-blocking UDP socket connected to the server, large buffers.
fn open_socket(server: SocketAddrV4) -> io::Result<RawFd> {
    unsafe {
        let fd = check(
            libc::socket(
                libc::AF_INET,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            ),
            "socket",
        )?;
        let size: libc::c_int = 8 << 20;
        for (opt, force) in [
            (libc::SO_RCVBUF, libc::SO_RCVBUFFORCE),
            (libc::SO_SNDBUF, libc::SO_SNDBUFFORCE),
        ] {
            // The FORCE variants pass the sysctl caps when we are root.
            let p = &size as *const _ as *const libc::c_void;
            let l = size_of::<libc::c_int>() as libc::socklen_t;
            if libc::setsockopt(fd, libc::SOL_SOCKET, force, p, l) < 0 {
                libc::setsockopt(fd, libc::SOL_SOCKET, opt, p, l);
            }
        }
        let one: libc::c_int = 1;
        check(
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                &one as *const _ as *const libc::c_void,
                size_of::<libc::c_int>() as libc::socklen_t,
            ),
            "SO_TIMESTAMPNS",
        )?;
        let mut sa: libc::sockaddr_in = zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = server.port().to_be();
        sa.sin_addr.s_addr = u32::from(*server.ip()).to_be();
        check(
            libc::connect(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                size_of::<libc::sockaddr_in>() as u32,
            ),
            "connect",
        )?;
        Ok(fd)
    }
}

/// Per-socket state: the send time of each outstanding ID.
struct Sock {
    fd: RawFd,
    next_id: u16,
    /// Nanoseconds since start + 1 of the query with this ID; 0 = free.
    sent_at: Vec<u64>,
}

struct Stats {
    sent: u64,
    answered: u64,
    late: u64,
    lost_reused: u64,
    unexpected: u64,
    send_errors: u64,
    outstanding: u64,
    rcodes: [u64; 16],
    hist: Vec<u32>,
    over_hist: u64,
    truncated: u64,
    /// Largest latency of an answered query.
    max_ns: u64,
    /// With -T: (send time, count) per sendmmsg and (send time, latency)
    /// per answer.
    sends: Option<Vec<(u64, u32)>>,
    answers: Option<Vec<(u64, u64)>>,
}

impl Stats {
    fn record(&mut self, sent_ns: u64, lat_ns: u64, timeout_ns: u64, rcode: usize, tc: bool) {
        if lat_ns > timeout_ns {
            self.late += 1;
            return;
        }
        self.answered += 1;
        self.max_ns = self.max_ns.max(lat_ns);
        if let Some(answers) = &mut self.answers {
            answers.push((sent_ns, lat_ns));
        }
        self.rcodes[rcode] += 1;
        if tc {
            self.truncated += 1;
        }
        let us = (lat_ns / 1000) as usize;
        if us < HIST_US {
            self.hist[us] += 1;
        } else {
            self.over_hist += 1;
        }
    }

    fn percentile_us(&self, q: f64) -> f64 {
        let n = self.answered;
        if n == 0 {
            return f64::NAN;
        }
        let target = ((n as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0u64;
        for (us, &c) in self.hist.iter().enumerate() {
            acc += c as u64;
            if acc >= target {
                // Bucket us holds [us, us+1) µs: report its middle.
                return us as f64 + 0.5;
            }
        }
        HIST_US as f64
    }
}

/// Nanoseconds this thread spent runnable but waiting for a CPU
/// (/proc/thread-self/schedstat, second field): time other tasks took from
/// it. 0 when the kernel does not say.
fn wait_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn cpu_seconds() -> f64 {
    unsafe {
        let mut ru: libc::rusage = zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

struct Bufs {
    send: Vec<[u8; MAX_PACKET]>,
    send_iov: Vec<libc::iovec>,
    send_hdr: Vec<libc::mmsghdr>,
    recv: Vec<[u8; RECV_BUF]>,
    recv_iov: Vec<libc::iovec>,
    recv_ctl: Vec<[u64; CTL_WORDS]>,
    recv_hdr: Vec<libc::mmsghdr>,
}

/// Room for one SCM_TIMESTAMPNS control message (aligned).
const CTL_WORDS: usize = 8;

impl Bufs {
    fn new(batch: usize) -> Box<Bufs> {
        let mut b = Box::new(Bufs {
            send: vec![[0; MAX_PACKET]; batch],
            send_iov: Vec::with_capacity(batch),
            send_hdr: Vec::with_capacity(batch),
            recv: vec![[0; RECV_BUF]; batch],
            recv_iov: Vec::with_capacity(batch),
            recv_ctl: vec![[0; CTL_WORDS]; batch],
            recv_hdr: Vec::with_capacity(batch),
        });
        for i in 0..batch {
            let p = b.send[i].as_mut_ptr();
            b.send_iov.push(libc::iovec {
                iov_base: p as *mut _,
                iov_len: 0,
            });
            let p = b.recv[i].as_mut_ptr();
            b.recv_iov.push(libc::iovec {
                iov_base: p as *mut _,
                iov_len: RECV_BUF,
            });
        }
        for i in 0..batch {
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_iov = &mut b.send_iov[i];
            h.msg_hdr.msg_iovlen = 1;
            b.send_hdr.push(h);
            let mut h: libc::mmsghdr = unsafe { zeroed() };
            h.msg_hdr.msg_iov = &mut b.recv_iov[i];
            h.msg_hdr.msg_iovlen = 1;
            b.recv_hdr.push(h);
        }
        b
    }

    /// Resets the control buffers before a recvmmsg.
    fn arm_recv(&mut self) {
        for i in 0..self.recv_hdr.len() {
            self.recv_hdr[i].msg_hdr.msg_control = self.recv_ctl[i].as_mut_ptr() as *mut _;
            self.recv_hdr[i].msg_hdr.msg_controllen = CTL_WORDS * 8;
            self.recv_hdr[i].msg_hdr.msg_flags = 0;
        }
    }

    /// The kernel's arrival time of received message i (CLOCK_REALTIME ns),
    /// if it came with one.
    fn rx_time(&self, i: usize) -> Option<u64> {
        let h = &self.recv_hdr[i].msg_hdr;
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(h);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                c = libc::CMSG_NXTHDR(h, c);
            }
        }
        None
    }
}

/// CLOCK_REALTIME in nanoseconds: the clock of SO_TIMESTAMPNS.
fn realtime_ns() -> u64 {
    let mut ts: libc::timespec = unsafe { zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sleep_ns(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_nsec: (ns % 1_000_000_000) as i64,
    };
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// Receives everything waiting on the sockets poll marked readable; returns
/// how many datagrams. Latency = kernel arrival time - send time, so a late
/// read does not inflate it.
fn receive(
    socks: &mut [Sock],
    pfds: &[libc::pollfd],
    st: &mut Stats,
    bufs: &mut Bufs,
    timeout_ns: u64,
) -> u64 {
    let mut got = 0u64;
    for (s, pfd) in socks.iter_mut().zip(pfds) {
        if pfd.revents & libc::POLLIN == 0 {
            continue;
        }
        loop {
            bufs.arm_recv();
            let n = unsafe {
                libc::recvmmsg(
                    s.fd,
                    bufs.recv_hdr.as_mut_ptr(),
                    bufs.recv_hdr.len() as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n <= 0 {
                break;
            }
            let mut fallback = 0u64;
            for i in 0..n as usize {
                let len = bufs.recv_hdr[i].msg_len as usize;
                let b = &bufs.recv[i];
                if len < 12 || b[2] & 0x80 == 0 {
                    st.unexpected += 1;
                    continue;
                }
                let id = u16::from_be_bytes([b[0], b[1]]) as usize;
                let at = s.sent_at[id];
                if at == 0 {
                    st.unexpected += 1;
                    continue;
                }
                s.sent_at[id] = 0;
                st.outstanding -= 1;
                let arrived = bufs.rx_time(i).unwrap_or_else(|| {
                    if fallback == 0 {
                        fallback = realtime_ns();
                    }
                    fallback
                });
                st.record(
                    at,
                    arrived.saturating_sub(at),
                    timeout_ns,
                    (b[3] & 0x0f) as usize,
                    b[2] & 0x02 != 0,
                );
            }
            got += n as u64;
            if (n as usize) < bufs.recv_hdr.len() {
                break;
            }
        }
    }
    got
}

/// Marks readable sockets in pfds; waits up to wait_ns (0 = just look).
fn poll(pfds: &mut [libc::pollfd], wait_ns: u64) -> bool {
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: wait_ns as i64,
    };
    let n = unsafe { libc::ppoll(pfds.as_mut_ptr(), pfds.len() as u64, &ts, std::ptr::null()) };
    n > 0
}

fn main() {
    let a = parse_args();
    let queries = match load_queries(&a) {
        Ok(q) if !q.is_empty() => q,
        Ok(_) => {
            eprintln!("dnsload: {}: no queries", a.queries);
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("dnsload: {}: {e}", a.queries);
            std::process::exit(1)
        }
    };
    // Sleep as long as asked, not up to 50 µs more (the default slack).
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000) };
    let mut socks: Vec<Sock> = Vec::new();
    for _ in 0..a.sockets {
        match open_socket(a.server) {
            Ok(fd) => socks.push(Sock {
                fd,
                next_id: 0,
                sent_at: vec![0; 65536],
            }),
            Err(e) => {
                eprintln!("dnsload: {e}");
                std::process::exit(1)
            }
        }
    }
    let mut pfds: Vec<libc::pollfd> = socks
        .iter()
        .map(|s| libc::pollfd {
            fd: s.fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut st = Stats {
        sent: 0,
        answered: 0,
        late: 0,
        lost_reused: 0,
        unexpected: 0,
        send_errors: 0,
        outstanding: 0,
        rcodes: [0; 16],
        hist: vec![0; HIST_US],
        over_hist: 0,
        truncated: 0,
        max_ns: 0,
        sends: a.trace.as_ref().map(|_| Vec::new()),
        answers: a.trace.as_ref().map(|_| Vec::new()),
    };
    let mut bufs = Bufs::new(a.batch);
    let timeout_ns = a.timeout.as_nanos() as u64;
    let duration_ns = a.duration.as_nanos() as u64;
    let cpu0 = cpu_seconds();
    let wait0 = wait_ns();
    let start = realtime_ns();
    let mut qi = 0usize;
    let mut rr = 0usize;
    let mut idle_sleeps = 0u64;
    let mut t = start;
    let mut max_lag = 0u64;

    while t - start < duration_ns {
        let elapsed = t - start;
        // Queries due now: the pacing schedule, or the free window slots.
        let mut due = if a.qps > 0 {
            let target = ((elapsed as u128) * (a.qps as u128) / 1_000_000_000) as u64;
            let d = target.saturating_sub(st.sent + st.send_errors);
            max_lag = max_lag.max(d);
            d
        } else {
            (a.window as u64).saturating_sub(st.outstanding)
        };
        // Send what is due, a batch per socket in turn, at most 4 batches
        // before reading again.
        let mut rounds = 0;
        while due > 0 && rounds < 4 {
            let n = (due as usize).min(a.batch);
            let s = &mut socks[rr];
            rr = (rr + 1) % a.sockets;
            for i in 0..n {
                let q = &queries[qi];
                qi = (qi + 1) % queries.len();
                let id = s.next_id;
                s.next_id = s.next_id.wrapping_add(1);
                if s.sent_at[id as usize] != 0 {
                    // Still unanswered after a whole ID cycle: lost.
                    st.lost_reused += 1;
                    st.outstanding -= 1;
                }
                s.sent_at[id as usize] = t;
                let buf = &mut bufs.send[i];
                buf[..q.len()].copy_from_slice(q);
                buf[..2].copy_from_slice(&id.to_be_bytes());
                bufs.send_iov[i].iov_len = q.len();
            }
            let sent = unsafe { libc::sendmmsg(s.fd, bufs.send_hdr.as_mut_ptr(), n as u32, 0) };
            let sent = if sent < 0 { 0 } else { sent as usize };
            st.sent += sent as u64;
            st.outstanding += sent as u64;
            if let Some(sends) = &mut st.sends {
                sends.push((t, sent as u32));
            }
            // Unsent ones (socket buffer full): free their IDs, count them.
            for i in sent..n {
                let id = u16::from_be_bytes([bufs.send[i][0], bufs.send[i][1]]);
                s.sent_at[id as usize] = 0;
                st.send_errors += 1;
            }
            due -= n as u64;
            rounds += 1;
        }
        let got = if poll(&mut pfds, 0) {
            receive(&mut socks, &pfds, &mut st, &mut bufs, timeout_ns)
        } else {
            0
        };
        t = realtime_ns();
        if due == 0 && got == 0 {
            if a.qps > 0 {
                // Paced: sleep until the next query is due, but at least a
                // quantum; answers wait in the socket with their arrival
                // time stamped by the kernel.
                let next = start
                    + ((st.sent + st.send_errors + 1) as u128 * 1_000_000_000 / a.qps as u128)
                        as u64;
                let wait = next.saturating_sub(t).max(a.quantum_ns).min(1_000_000);
                sleep_ns(wait);
            } else {
                // Closed loop: wake on the first answer.
                poll(&mut pfds, 1_000_000);
            }
            idle_sleeps += 1;
            t = realtime_ns();
        }
    }
    let send_ns = t - start;
    let send_cpu = cpu_seconds() - cpu0;
    let waited = wait_ns().saturating_sub(wait0);
    // Drain: wait up to the timeout for the last answers.
    let drain_deadline = t + timeout_ns;
    while st.outstanding > 0 && t < drain_deadline {
        if poll(&mut pfds, 1_000_000) {
            receive(&mut socks, &pfds, &mut st, &mut bufs, timeout_ns);
        }
        t = realtime_ns();
    }
    report(&a, &st, send_ns, send_cpu, idle_sleeps, max_lag, waited);
    if let Some(path) = &a.trace {
        if let Err(e) = write_trace(path, &st) {
            eprintln!("dnsload: {path}: {e}");
            std::process::exit(1)
        }
    }
}

fn write_trace(path: &str, st: &Stats) -> io::Result<()> {
    use std::io::Write;
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    for (t, n) in st.sends.iter().flatten() {
        writeln!(out, "s {t} {n}")?;
    }
    for (t, lat) in st.answers.iter().flatten() {
        writeln!(out, "a {t} {lat}")?;
    }
    out.flush()
}

fn report(
    a: &Args,
    st: &Stats,
    send_ns: u64,
    send_cpu: f64,
    idle_sleeps: u64,
    max_lag: u64,
    waited: u64,
) {
    let secs = send_ns as f64 / 1e9;
    let lost = st.outstanding + st.lost_reused + st.late;
    let offered = if a.qps > 0 { a.qps as f64 } else { f64::NAN };
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        out.insert(k.to_string(), v);
    };
    put("seconds", format!("{secs:.3}"));
    put("offered_qps", format!("{offered:.0}"));
    put("sent", st.sent.to_string());
    put("sent_qps", format!("{:.0}", st.sent as f64 / secs));
    put("answered", st.answered.to_string());
    put("answered_qps", format!("{:.0}", st.answered as f64 / secs));
    put(
        "answered_pct",
        format!("{:.4}", 100.0 * st.answered as f64 / st.sent.max(1) as f64),
    );
    put("lost", lost.to_string());
    put("late", st.late.to_string());
    put("send_errors", st.send_errors.to_string());
    put("unexpected", st.unexpected.to_string());
    put("truncated", st.truncated.to_string());
    put("noerror", st.rcodes[0].to_string());
    put("nxdomain", st.rcodes[3].to_string());
    put(
        "other_rcode",
        (st.answered - st.rcodes[0] - st.rcodes[3]).to_string(),
    );
    put("p50_us", format!("{:.1}", st.percentile_us(0.50)));
    put("p90_us", format!("{:.1}", st.percentile_us(0.90)));
    put("p99_us", format!("{:.1}", st.percentile_us(0.99)));
    put("p999_us", format!("{:.1}", st.percentile_us(0.999)));
    put("over_1s", st.over_hist.to_string());
    put("max_us", format!("{:.1}", st.max_ns as f64 / 1e3));
    // Fraction of one core the generator used while sending.
    put("loadgen_cpu", format!("{:.3}", send_cpu / secs));
    put("idle_sleeps", idle_sleeps.to_string());
    // Time the generator was runnable but another task had its CPU.
    put("loadgen_wait_ms", format!("{:.3}", waited as f64 / 1e6));
    // Most queries ever behind the pacing schedule: large means the
    // generator could not keep up.
    put("max_lag", max_lag.to_string());
    for (k, v) in out {
        println!("{k}={v}");
    }
}
