//! Facts about the host and the process that std does not offer: the
//! coarse monotonic clock, the SIGHUP disposition, the interfaces'
//! addresses.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ptr;

use libc::c_int;

/// Whole seconds of the monotonic clock, read from its coarse variant: the
/// vDSO returns the last tick's time without reading the TSC, and the rate
/// limiter needs nothing finer than seconds.
pub(crate) fn coarse_seconds() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_MONOTONIC_COARSE
    // exists on every Linux since 2.6.32, and a failure leaves `ts` zero.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64
}

/// Whole seconds of the wall clock (Unix time), from its coarse variant
/// as [`coarse_seconds`]: server cookies carry whole seconds, and this is
/// read for every UDP batch.
pub(crate) fn coarse_unix_seconds() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as in `coarse_seconds`, with CLOCK_REALTIME_COARSE (also
    // Linux 2.6.32); a failure leaves `ts` zero, and so does a time
    // before 1970, which the cast would otherwise wrap.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    ts.tv_sec.max(0) as u64
}

/// Ignores SIGHUP. A server asked to reload while it starts, before its
/// reload handler is in place, would otherwise die of the signal's default
/// action; the handler, once installed, replaces this.
pub(crate) fn ignore_hangup() -> io::Result<()> {
    // SAFETY: SIG_IGN is a valid disposition for SIGHUP, and changing it
    // touches no memory of ours.
    if unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The addresses of this machine's interfaces (getifaddrs(3)), so a node can
/// tell which of the configured peers is itself.
pub(crate) fn local_addresses() -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `head`, freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut at = head;
    while !at.is_null() {
        // SAFETY: `at` is a node of the list getifaddrs returned, alive
        // until freeifaddrs; ifa_addr is null or points at a sockaddr whose
        // family says which sockaddr_* it is.
        unsafe {
            let addr = (*at).ifa_addr;
            if !addr.is_null() {
                match c_int::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            at = (*at).ifa_next;
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

/// This machine's host name (gethostname(2)), what NSD and Knot report as
/// their identity by default; `None` when it cannot be read or is not
/// UTF-8.
pub(crate) fn host_name() -> Option<String> {
    // HOST_NAME_MAX is 64 on Linux; a larger buffer leaves room for a NUL.
    let mut buf = [0u8; 256];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8(buf[..len].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_include_loopback() {
        let addrs = local_addresses().unwrap();
        assert!(
            addrs.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }

    #[test]
    fn coarse_unix_seconds_is_the_wall_clock() {
        let before = crate::last_sent::unix_now();
        let coarse = coarse_unix_seconds();
        let after = crate::last_sent::unix_now();
        // The coarse clock trails by at most a tick, which can cross into
        // the second before.
        assert!(
            (before.saturating_sub(1)..=after).contains(&coarse),
            "{before} {coarse} {after}"
        );
    }

    #[test]
    fn host_name_is_the_kernels() {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name().as_deref(), Some(kernel.trim_end()));
    }
}
