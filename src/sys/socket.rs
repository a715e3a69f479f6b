//! Sockets: setup, and the batched UDP system calls.
//!
//! Two things the standard library cannot do:
//!
//! - Move many datagrams per system call: `recvmmsg(2)` and `sendmmsg(2)`
//!   read and write a whole [`RecvBatch`] / [`SendBatch`] at once.
//! - Tell which local address a datagram was sent to. A server bound to
//!   `0.0.0.0` or `[::]` must answer from that address, or the client,
//!   which matches replies by source address (RFC 5452 §3), drops the reply.
//!   `IP_PKTINFO` (ip(7)) and `IPV6_RECVPKTINFO` (RFC 3542 §6) deliver the
//!   destination address as a control message on receive; the same control
//!   message on send picks the reply's source address (RFC 3542 §6.2).
//!   Sockets bound to one address skip both: they know the answer already.
//!
//! The batches allocate every buffer once, in `new`; receiving and sending
//! allocate nothing.

use std::io;
use std::mem;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpListener, UdpSocket,
};
use std::os::fd::AsRawFd;
use std::ptr;

use libc::{c_int, c_uint, socklen_t};
use socket2::{Domain, Protocol, Socket, Type};

/// Pending connections the kernel queues for `accept` (listen(2) backlog).
const TCP_BACKLOG: c_int = 1024;

/// Receive buffer asked for on each UDP socket: 4 MiB, tens of
/// milliseconds of queries at full speed.
const UDP_RECV_BUFFER: c_int = 4 << 20;

/// Opens a UDP socket bound to `addr`, ready for [`RecvBatch::recv`].
///
/// `SO_REUSEPORT` lets every worker thread bind its own socket to the same
/// address; the kernel spreads datagrams across them by flow hash, so the
/// workers share nothing. IPv6 sockets are `IPV6_V6ONLY` so that `[::]:53`
/// and `0.0.0.0:53` can both be bound, each with its own sockets.
pub(crate) fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // The default receive buffer (about 200 KiB) holds 2-3 ms of queries at
    // 100k/s, so any pause of the worker loses datagrams; NSD asks for more
    // too. Root may exceed net.core.rmem_max (SO_RCVBUFFORCE); otherwise the
    // kernel caps the request, which is no error.
    if set_int_option(
        &socket,
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        UDP_RECV_BUFFER,
    )
    .is_err()
    {
        let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER as usize);
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Path MTU discovery is for streams. A DNS answer that does not fit a
    // link is better fragmented than dropped, and honouring ICMP "too big"
    // reports on UDP lets a forger shrink the MTU to make answers fragment
    // where spoofed fragments can be spliced in (RFC 8900 §3.2; NSD, Knot
    // and gdnsd set the same). OMIT sends without DF and ignores the
    // reports; kernels before 3.15 lack it and get DONT, which still sends
    // without DF.
    let (level, option, omit, dont) = match addr {
        SocketAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_OMIT,
            libc::IP_PMTUDISC_DONT,
        ),
        SocketAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_OMIT,
            libc::IPV6_PMTUDISC_DONT,
        ),
    };
    set_int_option(&socket, level, option, omit)
        .or_else(|_| set_int_option(&socket, level, option, dont))?;
    // Only a wildcard socket needs the packet info: it says which of the
    // host's addresses a query came to, and a reply must leave from it. A
    // socket bound to one address knows that already, and every reply
    // carrying a control message costs the kernel a parse and a copy.
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => set_int_option(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)?,
            SocketAddr::V6(_) => {
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)?;
            }
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Opens a TCP listener on `addr`, non-blocking as tokio requires.
///
/// `SO_REUSEADDR` lets a restarted server bind while connections of the
/// previous one linger in TIME_WAIT; `IPV6_V6ONLY` as for UDP.
pub(crate) fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Sets an integer socket option socket2 has no method for.
fn set_int_option(socket: &Socket, level: c_int, name: c_int, value: c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for as long as `socket` is borrowed,
    // and we pass a pointer to a live `c_int` together with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            ptr::from_ref(&value).cast(),
            mem::size_of::<c_int>() as socklen_t,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The local end of a datagram: the address it was sent to and the
/// interface it arrived on, from its packet-info control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketInfo {
    /// The destination address in the datagram's IP header.
    pub ip: IpAddr,
    /// The receiving interface's index.
    pub ifindex: u32,
}

/// One received datagram, borrowed from a [`RecvBatch`].
#[derive(Debug)]
pub(crate) struct Datagram<'a> {
    /// The payload: one DNS message.
    pub data: &'a [u8],
    /// The sender's address and port.
    pub source: SocketAddr,
    /// Where it arrived; `None` only if the kernel sent no packet info.
    pub dest: Option<PacketInfo>,
}

/// Room for one control message: a packet info for either family, which
/// is all we enable. Aligned like `cmsghdr`, as the CMSG_* macros assume.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct ControlBuf([u8; CONTROL_LEN]);

const CONTROL_LEN: usize = 64;

// SAFETY: CMSG_SPACE is plain arithmetic on its argument.
const _: () = assert!(
    unsafe { libc::CMSG_SPACE(mem::size_of::<libc::in6_pktinfo>() as c_uint) } as usize
        <= CONTROL_LEN
        && unsafe { libc::CMSG_SPACE(mem::size_of::<libc::in_pktinfo>() as c_uint) } as usize
            <= CONTROL_LEN
        && mem::align_of::<libc::cmsghdr>() <= mem::align_of::<ControlBuf>()
);

/// A zeroed `msghdr`; the caller fills in the pointers and lengths.
fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is a C struct of pointers and integers (plus padding
    // on some libcs); all zeroes is valid and means "no name, no data, no
    // control".
    unsafe { mem::zeroed() }
}

/// A zeroed `sockaddr_storage`.
fn empty_sockaddr() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain integers; all zeroes is valid
    // (family AF_UNSPEC).
    unsafe { mem::zeroed() }
}

/// The arrays behind a batch of datagrams: payload buffers, addresses,
/// control buffers, iovecs, and the `mmsghdr`s that point at them.
///
/// The pointers are set once, in `new`: the arrays are boxed slices that
/// never move or resize, even when the `Slots` value itself moves.
struct Slots {
    /// Bytes per datagram buffer.
    buf_len: usize,
    /// Distance from one buffer to the next: `buf_len` and a cache line
    /// more, so that the buffers do not all start at the same offset in a
    /// page. At 4,096 bytes apart the first line of every query and reply
    /// would fall into one set of the L1 cache and evict each other.
    stride: usize,
    /// One buffer per datagram, back to back.
    bufs: Box<[u8]>,
    /// The peer address of each datagram.
    names: Box<[libc::sockaddr_storage]>,
    /// Control messages (packet info) of each datagram.
    controls: Box<[ControlBuf]>,
    /// One iovec per datagram, pointing into `bufs`.
    iovecs: Box<[libc::iovec]>,
    /// The array handed to the kernel.
    headers: Box<[libc::mmsghdr]>,
}

impl Slots {
    /// Allocates room for `capacity` datagrams of up to `buf_len` bytes and
    /// points each header at its name, iovec and control buffer. Lengths
    /// are left zero for the batch to set.
    fn new(capacity: usize, buf_len: usize) -> Slots {
        assert!(capacity > 0 && capacity <= c_uint::MAX as usize);
        let iovec = libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        };
        let header = libc::mmsghdr {
            msg_hdr: empty_msghdr(),
            msg_len: 0,
        };
        let stride = buf_len.next_multiple_of(64) + 64;
        let mut slots = Slots {
            buf_len,
            stride,
            bufs: vec![0; capacity * stride].into_boxed_slice(),
            names: vec![empty_sockaddr(); capacity].into_boxed_slice(),
            controls: vec![ControlBuf([0; CONTROL_LEN]); capacity].into_boxed_slice(),
            iovecs: vec![iovec; capacity].into_boxed_slice(),
            headers: vec![header; capacity].into_boxed_slice(),
        };
        // Pointers are taken once per array so that none is invalidated by
        // a later borrow of the same array.
        let bufs = slots.bufs.as_mut_ptr();
        let names = slots.names.as_mut_ptr();
        let controls = slots.controls.as_mut_ptr();
        let iovecs = slots.iovecs.as_mut_ptr();
        for (i, header) in slots.headers.iter_mut().enumerate() {
            let iovec = iovecs.wrapping_add(i);
            // SAFETY: i < capacity = iovecs.len(), so `iovec` points to an
            // element of `slots.iovecs`, which nothing else borrows.
            unsafe {
                iovec.write(libc::iovec {
                    iov_base: bufs.wrapping_add(i * stride).cast(),
                    iov_len: buf_len,
                });
            }
            let hdr = &mut header.msg_hdr;
            hdr.msg_name = names.wrapping_add(i).cast();
            hdr.msg_iov = iovec;
            hdr.msg_iovlen = 1;
            hdr.msg_control = controls.wrapping_add(i).cast();
        }
        slots
    }

    /// How many datagrams fit.
    fn capacity(&self) -> usize {
        self.headers.len()
    }
}

/// Preallocated buffers for receiving up to `capacity` datagrams with one
/// `recvmmsg(2)`.
pub(crate) struct RecvBatch {
    slots: Slots,
    /// How many entries the last `recv` filled.
    received: usize,
}

impl RecvBatch {
    /// Allocates room for `capacity` datagrams of up to `buf_len` bytes
    /// (longer ones are dropped), ready to receive.
    pub(crate) fn new(capacity: usize, buf_len: usize) -> RecvBatch {
        let mut slots = Slots::new(capacity, buf_len);
        slots.headers.iter_mut().for_each(RecvBatch::rearm);
        RecvBatch { slots, received: 0 }
    }

    /// Resets the fields the kernel overwrites on receipt.
    fn rearm(header: &mut libc::mmsghdr) {
        let hdr = &mut header.msg_hdr;
        hdr.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as socklen_t;
        hdr.msg_controllen = CONTROL_LEN as _;
        hdr.msg_flags = 0;
        header.msg_len = 0;
    }

    /// Waits for at least one datagram, then takes every one already queued,
    /// up to capacity, and returns how many it took (read them with
    /// [`get`](Self::get)).
    ///
    /// Errors are those of `recvmmsg(2)`; `WouldBlock` means the socket's
    /// read timeout passed with nothing received.
    pub(crate) fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // The kernel wrote lengths into the headers it filled last time,
        // and only into those: at low load that is one header, not all.
        let filled = mem::replace(&mut self.received, 0);
        self.slots.headers[..filled]
            .iter_mut()
            .for_each(RecvBatch::rearm);
        // MSG_WAITFORONE: block (up to SO_RCVTIMEO) for the first datagram
        // only, then take what is queued. The timeout argument stays null;
        // recvmmsg(2) documents it as broken. The system call is made
        // directly: glibc's wrapper makes it a thread cancellation point,
        // two more calls per receive for a feature nothing here uses.
        //
        // SAFETY: `headers` holds `capacity` mmsghdrs, set up in
        // `Slots::new` and rearmed above; each points to one name, one iovec
        // of `buf_len` bytes inside `bufs`, and one CONTROL_LEN-byte control
        // buffer, all heap arrays owned by `self` that never move or shrink,
        // borrowed exclusively through `&mut self` for the duration of the
        // call, and no two headers share a buffer. The kernel writes only
        // within the lengths given.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                socket.as_raw_fd(),
                self.slots.headers.as_mut_ptr(),
                self.slots.capacity() as c_uint,
                libc::MSG_WAITFORONE,
                ptr::null_mut::<libc::timespec>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = rc as usize;
        Ok(self.received)
    }

    /// The `i`th datagram of the last [`recv`](Self::recv), or `None` if
    /// there is none or it must be dropped: longer than the buffer (a DNS
    /// query never is) or from an address family we do not serve.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<Datagram<'_>> {
        let data = self.payload(i)?;
        let slots = &self.slots;
        let hdr = &slots.headers[i].msg_hdr;
        let source = sockaddr_to_std(&slots.names[i], hdr.msg_namelen)?;
        // The cast is needed on musl, where msg_controllen is a socklen_t.
        #[allow(clippy::unnecessary_cast)]
        let controllen = (hdr.msg_controllen as usize).min(CONTROL_LEN);
        let dest = parse_packet_info(&slots.controls[i], controllen);
        Some(Datagram { data, source, dest })
    }

    /// The payload of the `i`th datagram, without reading its addresses
    /// as [`get`](Self::get) does: for looking ahead at a batch's queries.
    /// `None` where `get` drops it for its length; one that `get` drops
    /// for its sender's address family is still given.
    #[inline]
    pub(crate) fn payload(&self, i: usize) -> Option<&[u8]> {
        if i >= self.received {
            return None;
        }
        let slots = &self.slots;
        let header = &slots.headers[i];
        if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return None;
        }
        let len = (header.msg_len as usize).min(slots.buf_len);
        let start = i * slots.stride;
        Some(&slots.bufs[start..start + len])
    }
}

/// Finds the packet info among the first `len` bytes of `control`.
fn parse_packet_info(control: &ControlBuf, len: usize) -> Option<PacketInfo> {
    // The CMSG_* macros walk a msghdr, so describe the buffer with one.
    let mut msg = empty_msghdr();
    msg.msg_control = control.0.as_ptr().cast_mut().cast();
    msg.msg_controllen = len as _;
    // SAFETY: `msg` describes `len` <= CONTROL_LEN bytes of `control`,
    // aligned for cmsghdr, which the kernel filled with well-formed control
    // messages. CMSG_FIRSTHDR/CMSG_NXTHDR return only headers that lie
    // within those bytes (or null), and each payload is read only if its
    // cmsg_len covers the struct read, with read_unaligned since CMSG_DATA
    // promises no alignment for the payload type. We only read.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let level = (*cmsg).cmsg_level;
            let kind = (*cmsg).cmsg_type;
            let data_len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            let data = libc::CMSG_DATA(cmsg);
            if level == libc::IPPROTO_IP
                && kind == libc::IP_PKTINFO
                && data_len >= mem::size_of::<libc::in_pktinfo>()
            {
                let info = data.cast::<libc::in_pktinfo>().read_unaligned();
                return Some(PacketInfo {
                    ip: IpAddr::V4(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr))),
                    ifindex: info.ipi_ifindex as u32,
                });
            }
            if level == libc::IPPROTO_IPV6
                && kind == libc::IPV6_PKTINFO
                && data_len >= mem::size_of::<libc::in6_pktinfo>()
            {
                let info = data.cast::<libc::in6_pktinfo>().read_unaligned();
                return Some(PacketInfo {
                    ip: IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)),
                    ifindex: info.ipi6_ifindex,
                });
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    None
}

/// Decodes a socket address the kernel wrote into `storage`.
fn sockaddr_to_std(storage: &libc::sockaddr_storage, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match c_int::from(storage.ss_family) {
        libc::AF_INET if len >= mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in, the
            // kernel wrote at least that many bytes, and sockaddr_storage
            // is large and aligned enough for every sockaddr type.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Encodes `addr` into `storage`, returning the length to pass the kernel.
fn std_to_sockaddr(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> socklen_t {
    // Only the returned length is read, so the rest of the storage is left
    // as it was rather than zeroed for every reply.
    match addr {
        SocketAddr::V4(addr) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: addr.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*addr.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for
            // every sockaddr type, and we hold it exclusively.
            unsafe {
                ptr::from_mut(storage)
                    .cast::<libc::sockaddr_in>()
                    .write(sin)
            };
            mem::size_of::<libc::sockaddr_in>() as socklen_t
        }
        SocketAddr::V6(addr) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: addr.port().to_be(),
                sin6_flowinfo: addr.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: addr.ip().octets(),
                },
                sin6_scope_id: addr.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe {
                ptr::from_mut(storage)
                    .cast::<libc::sockaddr_in6>()
                    .write(sin6)
            };
            mem::size_of::<libc::sockaddr_in6>() as socklen_t
        }
    }
}

/// Writes into `control` the packet info that makes a reply leave from
/// `from.ip`, and returns the control length to pass the kernel.
fn write_packet_info(control: &mut ControlBuf, from: PacketInfo) -> usize {
    control.0 = [0; CONTROL_LEN];
    let (level, kind, payload_len) = match from.ip {
        IpAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            mem::size_of::<libc::in_pktinfo>(),
        ),
        IpAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            mem::size_of::<libc::in6_pktinfo>(),
        ),
    };
    // SAFETY: CMSG_SPACE is plain arithmetic; the const assertion above
    // checks the result fits in CONTROL_LEN.
    let space = unsafe { libc::CMSG_SPACE(payload_len as c_uint) } as usize;
    let mut msg = empty_msghdr();
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `space` <= CONTROL_LEN bytes of `control`,
    // which is aligned for cmsghdr and borrowed exclusively, so
    // CMSG_FIRSTHDR returns its start (non-null, as space >= the header)
    // and the header plus `payload_len` bytes at CMSG_DATA fit in it. The
    // payload is written unaligned since CMSG_DATA promises no alignment.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = level;
        (*cmsg).cmsg_type = kind;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload_len as c_uint) as _;
        let data = libc::CMSG_DATA(cmsg);
        match from.ip {
            IpAddr::V4(ip) => {
                // ipi_spec_dst picks the source address. The interface is
                // left to routing (0): forcing the arrival interface would
                // break replies on hosts with asymmetric routes.
                let addr = libc::in_addr {
                    s_addr: u32::from(ip).to_be(),
                };
                data.cast::<libc::in_pktinfo>()
                    .write_unaligned(libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: addr,
                        ipi_addr: addr,
                    });
            }
            IpAddr::V6(ip) => {
                // Same reasoning, except that a link-local address only
                // means something together with its interface.
                let ifindex = if ip.is_unicast_link_local() {
                    from.ifindex
                } else {
                    0
                };
                data.cast::<libc::in6_pktinfo>()
                    .write_unaligned(libc::in6_pktinfo {
                        ipi6_addr: libc::in6_addr {
                            s6_addr: ip.octets(),
                        },
                        ipi6_ifindex: ifindex,
                    });
            }
        }
    }
    space
}

/// What [`SendBatch::send`] could not deliver.
#[derive(Debug, Default)]
pub(crate) struct SendOutcome {
    /// Datagrams dropped because the kernel refused them.
    pub dropped: usize,
    /// The last refusal's error, for the log.
    pub last_error: Option<io::Error>,
}

/// Preallocated buffers for sending up to `capacity` datagrams with one
/// `sendmmsg(2)`.
///
/// Fill it with [`buffer`](Self::buffer) and [`push`](Self::push), then
/// [`send`](Self::send) it.
pub(crate) struct SendBatch {
    slots: Slots,
    /// How many datagrams are queued.
    queued: usize,
}

impl SendBatch {
    /// Allocates room for `capacity` datagrams of up to `buf_len` bytes.
    pub(crate) fn new(capacity: usize, buf_len: usize) -> SendBatch {
        SendBatch {
            slots: Slots::new(capacity, buf_len),
            queued: 0,
        }
    }

    /// The buffer for the next datagram. Write the payload there, then
    /// [`push`](Self::push) it; a buffer not pushed is reused.
    ///
    /// Panics if the batch is full.
    #[inline]
    pub(crate) fn buffer(&mut self) -> &mut [u8] {
        assert!(self.queued < self.slots.capacity(), "send batch full");
        let start = self.queued * self.slots.stride;
        &mut self.slots.bufs[start..start + self.slots.buf_len]
    }

    /// Queues the first `len` bytes of [`buffer`](Self::buffer) for `to`,
    /// sent from `from.ip` (or wherever routing picks, if `None`).
    ///
    /// Panics if the batch is full or `len` exceeds the buffer.
    #[inline]
    pub(crate) fn push(&mut self, len: usize, to: SocketAddr, from: Option<PacketInfo>) {
        let i = self.queued;
        let slots = &mut self.slots;
        assert!(i < slots.capacity(), "send batch full");
        assert!(len <= slots.buf_len, "datagram longer than its buffer");
        let namelen = std_to_sockaddr(to, &mut slots.names[i]);
        let controllen = match from {
            Some(from) => write_packet_info(&mut slots.controls[i], from),
            None => 0,
        };
        // The kernel reads no control buffer when its length is zero.
        let hdr = &mut slots.headers[i].msg_hdr;
        hdr.msg_namelen = namelen;
        hdr.msg_controllen = controllen as _;
        hdr.msg_flags = 0;
        slots.iovecs[i].iov_len = len;
        self.queued += 1;
    }

    /// How many datagrams are queued.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    /// Sends every queued datagram and empties the batch.
    ///
    /// A datagram the kernel refuses (unroutable, buffer full, ...) is
    /// dropped and the rest still sent: UDP promises nothing more, and the
    /// client will retry.
    pub(crate) fn send(&mut self, socket: &UdpSocket) -> SendOutcome {
        let mut outcome = SendOutcome::default();
        let queued = mem::replace(&mut self.queued, 0);
        let mut start = 0;
        while start < queued {
            // SAFETY: headers[start..queued] point to their own name,
            // iovec and control buffer (set up in `Slots::new`), with
            // lengths written by `push` within those buffers (the iovec
            // covers `len` <= buf_len bytes of its buffer in `bufs`), all
            // live and exclusively borrowed through `&mut self`. The kernel
            // only reads them, apart from msg_len. Called directly, as in
            // RecvBatch::recv.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_sendmmsg,
                    socket.as_raw_fd(),
                    self.slots.headers.as_mut_ptr().add(start),
                    (queued - start) as c_uint,
                    0,
                )
            };
            if rc > 0 {
                // A short count: the datagram after the last one sent hit
                // an error the kernel did not report; the next call
                // resends from there and reports it.
                start += rc as usize;
                continue;
            }
            let error = io::Error::last_os_error();
            if rc < 0 && error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // sendmmsg fails only when the first datagram fails: drop it.
            outcome.dropped += 1;
            outcome.last_error = Some(error);
            start += 1;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TIMEOUT: Duration = Duration::from_secs(5);

    /// A client socket on `ip`, with a read timeout so a failing test
    /// cannot hang.
    fn client(ip: IpAddr) -> UdpSocket {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket
    }

    /// A server socket on `addr` with a read timeout.
    fn server(addr: SocketAddr) -> UdpSocket {
        let socket = bind_udp(addr).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        socket
    }

    /// Receives until `want` datagrams are in hand (the kernel may hand
    /// them over in several batches); returns (payload, source, dest).
    fn recv_all(
        batch: &mut RecvBatch,
        socket: &UdpSocket,
        want: usize,
    ) -> Vec<(Vec<u8>, SocketAddr, Option<PacketInfo>)> {
        let mut got = Vec::new();
        while got.len() < want {
            let n = batch.recv(socket).unwrap();
            assert!(n >= 1);
            for i in 0..n {
                let d = batch.get(i).unwrap();
                assert_eq!(batch.payload(i), Some(d.data));
                got.push((d.data.to_vec(), d.source, d.dest));
            }
            assert!(batch.get(n).is_none());
            assert!(batch.payload(n).is_none());
        }
        got
    }

    /// Sends three datagrams to `server_ip` on a socket bound to
    /// `bind_ip`, checks what the batch reports, answers them all with one
    /// send, and checks the answers come from `server_ip`.
    fn round_trip(bind_ip: IpAddr, server_ip: IpAddr, client_ip: IpAddr) {
        let socket = server(SocketAddr::new(bind_ip, 0));
        let server_addr = SocketAddr::new(server_ip, socket.local_addr().unwrap().port());
        let client = client(client_ip);
        let client_addr = client.local_addr().unwrap();
        for payload in [&b"one"[..], b"two", b"three"] {
            client.send_to(payload, server_addr).unwrap();
        }

        let mut recv = RecvBatch::new(8, 512);
        let got = recv_all(&mut recv, &socket, 3);
        let payloads: Vec<&[u8]> = got.iter().map(|(p, _, _)| &p[..]).collect();
        assert_eq!(payloads, [&b"one"[..], b"two", b"three"]);
        for (_, source, dest) in &got {
            assert_eq!(*source, client_addr);
            // Packet info comes only on wildcard sockets, which need it.
            assert_eq!(dest.is_some(), bind_ip.is_unspecified());
            assert_eq!(dest.map_or(bind_ip, |d| d.ip), server_ip);
        }

        let mut send = SendBatch::new(8, 512);
        for (payload, source, dest) in &got {
            let buf = send.buffer();
            buf[..payload.len()].copy_from_slice(payload);
            buf[payload.len()] = b'!';
            send.push(payload.len() + 1, *source, *dest);
        }
        assert_eq!(send.len(), 3);
        let outcome = send.send(&socket);
        assert_eq!(outcome.dropped, 0, "{:?}", outcome.last_error);
        assert_eq!(send.len(), 0);

        let mut buf = [0; 512];
        for want in [&b"one!"[..], b"two!", b"three!"] {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], want);
            assert_eq!(from, server_addr);
        }
    }

    /// An integer socket option, read back.
    fn get_int_option(socket: &UdpSocket, level: c_int, name: c_int) -> c_int {
        let mut value: c_int = -1;
        let mut len = mem::size_of::<c_int>() as socklen_t;
        // SAFETY: the descriptor is open while `socket` is borrowed; we pass
        // a live c_int and its size, which the kernel writes at most.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                level,
                name,
                ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn udp_sockets_ignore_path_mtu() {
        let v4 = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let v6 = bind_udp("[::1]:0".parse().unwrap()).unwrap();
        let v4_mode = get_int_option(&v4, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER);
        let v6_mode = get_int_option(&v6, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER);
        assert!(
            [libc::IP_PMTUDISC_OMIT, libc::IP_PMTUDISC_DONT].contains(&v4_mode),
            "{v4_mode}"
        );
        assert!(
            [libc::IPV6_PMTUDISC_OMIT, libc::IPV6_PMTUDISC_DONT].contains(&v6_mode),
            "{v6_mode}"
        );
    }

    #[test]
    fn v4_specific_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        round_trip(lo, lo, lo);
    }

    #[test]
    fn v4_wildcard_replies_from_the_queried_address() {
        // Routing alone would answer a 127.0.0.1 client from 127.0.0.1;
        // only the packet info makes the reply leave from 127.0.0.2.
        round_trip(
            "0.0.0.0".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        );
    }

    #[test]
    fn v6_specific_address() {
        let lo: IpAddr = "::1".parse().unwrap();
        round_trip(lo, lo, lo);
    }

    #[test]
    fn v6_wildcard() {
        let lo: IpAddr = "::1".parse().unwrap();
        round_trip("::".parse().unwrap(), lo, lo);
    }

    /// A datagram the kernel refuses is dropped and counted; those around
    /// it still go. A source address that is not ours is refused, which
    /// also shows the kernel honours the packet info we set.
    fn refused_send_is_skipped(lo: IpAddr, foreign: IpAddr) {
        let socket = server(SocketAddr::new(lo, 0));
        let client = client(lo);
        let to = client.local_addr().unwrap();
        let good = PacketInfo { ip: lo, ifindex: 0 };
        let bad = PacketInfo {
            ip: foreign,
            ifindex: 0,
        };
        let mut send = SendBatch::new(4, 64);
        for (byte, from) in [(1, good), (2, bad), (3, good), (4, bad)] {
            send.buffer()[0] = byte;
            send.push(1, to, Some(from));
        }
        let outcome = send.send(&socket);
        assert_eq!(outcome.dropped, 2);
        assert!(outcome.last_error.is_some());
        let mut buf = [0; 8];
        for want in [1, 3] {
            let (n, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], [want]);
        }
    }

    #[test]
    fn v4_refused_send_is_skipped() {
        refused_send_is_skipped("127.0.0.1".parse().unwrap(), "203.0.113.7".parse().unwrap());
    }

    #[test]
    fn v6_refused_send_is_skipped() {
        refused_send_is_skipped("::1".parse().unwrap(), "2001:db8::7".parse().unwrap());
    }

    #[test]
    fn oversized_datagram_is_dropped() {
        let socket = server("127.0.0.1:0".parse().unwrap());
        let client = client("127.0.0.1".parse().unwrap());
        let to = socket.local_addr().unwrap();
        client.send_to(&[0; 100], to).unwrap();
        client.send_to(&[7; 64], to).unwrap();
        let mut recv = RecvBatch::new(4, 64);
        let mut kept = Vec::new();
        let mut seen = 0;
        while seen < 2 {
            let n = recv.recv(&socket).unwrap();
            seen += n;
            kept.extend((0..n).filter_map(|i| recv.get(i)).map(|d| d.data.to_vec()));
        }
        assert_eq!(kept, [vec![7; 64]]);
    }

    #[test]
    fn recv_times_out_with_would_block() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let err = RecvBatch::new(2, 64).recv(&socket).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn reuse_port_and_v6only_share_a_port() {
        let first = bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let port = first.local_addr().unwrap().port();
        let _second = bind_udp(SocketAddr::new("127.0.0.1".parse().unwrap(), port)).unwrap();
        // Without IPV6_V6ONLY, [::] would claim the IPv4 port too.
        let any4 = bind_udp("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = any4.local_addr().unwrap().port();
        bind_udp(SocketAddr::new("::".parse().unwrap(), port)).unwrap();
        let tcp4 = bind_tcp("0.0.0.0:0".parse().unwrap()).unwrap();
        let port = tcp4.local_addr().unwrap().port();
        bind_tcp(SocketAddr::new("::".parse().unwrap(), port)).unwrap();
    }

    #[test]
    fn tcp_port_in_use_is_an_error() {
        let first = bind_tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = bind_tcp(first.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn sockaddr_round_trip() {
        for text in ["192.0.2.1:53", "[2001:db8::1]:5353", "[fe80::1%2]:53"] {
            let addr: SocketAddr = text.parse().unwrap();
            let mut storage = empty_sockaddr();
            let len = std_to_sockaddr(addr, &mut storage);
            assert_eq!(sockaddr_to_std(&storage, len), Some(addr));
        }
        assert_eq!(sockaddr_to_std(&empty_sockaddr(), 128), None);
    }

    #[test]
    fn packet_info_round_trip() {
        for (ip, ifindex) in [("192.0.2.1", 0), ("2001:db8::1", 0), ("fe80::1", 3)] {
            let info = PacketInfo {
                ip: ip.parse().unwrap(),
                ifindex,
            };
            let mut control = ControlBuf([0; CONTROL_LEN]);
            let len = write_packet_info(&mut control, info);
            assert_eq!(parse_packet_info(&control, len), Some(info));
        }
    }
}
