//! The `NETLINK_NETFILTER` socket: the only place with syscalls.
//!
//! Everything the kernel needs is built by the backends' message modules;
//! this layer sends it and collects the answers:
//! - one request goes out in one `sendto` and its answer is read until the
//!   ACK (or error) or, for a dump, `NLMSG_DONE` ([`Socket::request`]);
//! - an nfnetlink batch goes out in ONE `sendto` after raising the send
//!   buffer with `SO_SNDBUFFORCE` to the batch size (a 1M-element nf_tables
//!   batch is ~28 MB). Split sends make the kernel see several partial
//!   batches (`EINVAL`/`ENOBUFS`). nfnetlink processes a batch synchronously
//!   inside that `sendto`, so every ACK and error is queued on the socket
//!   when it returns; [`Socket::commit_batch`] reads until each message of
//!   the batch is accounted for;
//! - after either, whatever else is queued is drained, so a stale reply can
//!   never be taken for the answer to a later request.
//!
//! Off Linux the type exists, so the backends compile everywhere, but
//! [`Socket::open`] fails with [`SocketError::Unsupported`].

use std::fmt;

use crate::message::{nlm_flags, DecodeError, MsgIter, NlMsg, NLMSG_DONE, NLMSG_ERROR};

/// What went wrong below a backend. Off Linux only `Unsupported` is built.
#[derive(Debug)]
pub enum SocketError {
    /// A syscall failed.
    Os {
        /// The call, as the error should name it.
        call: &'static str,
        /// Its errno.
        errno: i32,
    },
    /// The kernel answered message `seq` with an error.
    Kernel {
        /// The sequence number of the message the kernel refused.
        seq: u32,
        /// The positive errno, or a subsystem's own code (ipset's).
        errno: i32,
        /// How many further messages of the same batch failed (0 outside
        /// batches).
        others: usize,
    },
    /// A reply did not parse.
    Decode(DecodeError),
    /// The kernel did not answer at all.
    NoReply,
    /// Every one of `attempts` dumps came back flagged `NLM_F_DUMP_INTR`:
    /// what was dumped kept changing while it was read, so no complete
    /// listing could be taken.
    DumpInterrupted {
        /// How many dumps were taken.
        attempts: u32,
    },
    /// Not Linux: there is no nfnetlink.
    Unsupported,
}

impl From<DecodeError> for SocketError {
    fn from(e: DecodeError) -> SocketError {
        SocketError::Decode(e)
    }
}

impl fmt::Display for SocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketError::Os { call, errno } => {
                write!(f, "{call}: {}", std::io::Error::from_raw_os_error(*errno))
            }
            SocketError::Kernel { seq, errno, .. } => {
                write!(f, "the kernel refused message {seq} with code {errno}")
            }
            SocketError::Decode(e) => e.fmt(f),
            SocketError::NoReply => f.write_str("no reply from the kernel"),
            SocketError::DumpInterrupted { attempts } => write!(
                f,
                "the kernel's listing was interrupted by concurrent changes \
                 {attempts} time{} in a row; try again",
                if *attempts == 1 { "" } else { "s" }
            ),
            SocketError::Unsupported => f.write_str("netfilter netlink needs Linux"),
        }
    }
}

impl std::error::Error for SocketError {}

/// How a request's replies end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// `NLMSG_DONE` (dumps); an ACK of 0 on the way does not end it.
    Done,
    /// The `NLMSG_ERROR` acknowledging the request (single gets with
    /// `NLM_F_ACK`), or `NLMSG_DONE`.
    Ack,
    /// Whichever comes first: an ACK of 0 not flagged `NLM_F_MULTI`, or
    /// `NLMSG_DONE`. For a protocol (ipset) where the same call sends
    /// commands and dumps: a dump acknowledged with 0 still ends in DONE.
    AckOrDone,
}

/// The sizes a backend chooses for its socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// The buffer one datagram is read into. It must hold the largest
    /// datagram the kernel builds (dump parts stay below 64 KiB; so does
    /// ipset's copy of a failed request): netlink truncates what does not
    /// fit, which is then reported as a decode error.
    pub datagram_buf: usize,
    /// `SO_RCVBUFFORCE` (falling back to `SO_RCVBUF`): room for a burst of
    /// replies, such as one ACK per message of a large batch. `None` keeps
    /// the kernel's default.
    pub rcvbuf: Option<usize>,
}

/// How many times a dump flagged `NLM_F_DUMP_INTR` is taken in all
/// ([`Socket::dump`]). A change between two parts of a dump is common (the
/// daemon bans while `list` runs); one in each of four dumps in a row,
/// with pauses between them, means a change storm that a caller should
/// hear about rather than wait out.
pub const DUMP_ATTEMPTS: u32 = 4;

/// Reads the answer to one request, message by message: which messages
/// belong to it, which end it, which are data for the caller. No syscalls,
/// so the decisions are tested with crafted datagrams.
#[derive(Debug)]
pub(crate) struct Reply {
    seq: u32,
    until: Until,
    result: Result<(), SocketError>,
    /// A message of this reply carried `NLM_F_DUMP_INTR`.
    interrupted: bool,
}

impl Reply {
    pub(crate) fn new(seq: u32, until: Until) -> Reply {
        Reply {
            seq,
            until,
            result: Ok(()),
            interrupted: false,
        }
    }

    /// Takes one received datagram; `Ok(true)` once the reply has ended.
    /// A datagram that does not parse is an error at once (what follows
    /// it cannot be trusted to be framed right).
    pub(crate) fn feed(
        &mut self,
        datagram: &[u8],
        on_msg: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
        on_error: &mut dyn FnMut(&NlMsg<'_>),
    ) -> Result<bool, SocketError> {
        for msg in MsgIter::new(datagram) {
            let msg = msg?;
            if msg.seq != self.seq {
                continue; // a stale reply to an earlier request
            }
            // Checked on every message of the reply, DONE included: the
            // kernel flags the first one it builds after the change.
            if msg.flags & nlm_flags::DUMP_INTR != 0 {
                self.interrupted = true;
            }
            match msg.ty {
                NLMSG_ERROR => {
                    let errno = msg.error_code()?;
                    if errno != 0 {
                        on_error(&msg);
                        self.result = Err(SocketError::Kernel {
                            seq: self.seq,
                            errno,
                            others: 0,
                        });
                        return Ok(true);
                    }
                    let ends = match self.until {
                        Until::Done => false,
                        Until::Ack => true,
                        Until::AckOrDone => msg.flags & nlm_flags::MULTI == 0,
                    };
                    if ends {
                        return Ok(true);
                    }
                }
                NLMSG_DONE => {
                    let errno = msg.done_code();
                    if errno != 0 {
                        self.result = Err(SocketError::Kernel {
                            seq: self.seq,
                            errno,
                            others: 0,
                        });
                    }
                    return Ok(true);
                }
                _ => {
                    if let Err(e) = on_msg(&msg) {
                        // Keep reading to the end of the reply, so the
                        // next request does not see its tail; the first
                        // error is the one that explains.
                        if self.result.is_ok() {
                            self.result = Err(SocketError::Decode(e));
                        }
                    }
                }
            }
        }
        Ok(false)
    }

    /// The outcome once the reply has ended. An interrupted dump is
    /// [`SocketError::DumpInterrupted`] even when every part parsed: it
    /// may miss members that were there all along.
    pub(crate) fn finish(self) -> Result<(), SocketError> {
        match self.result {
            Ok(()) if self.interrupted => Err(SocketError::DumpInterrupted { attempts: 1 }),
            other => other,
        }
    }
}

/// Runs `attempt` with a fresh `T` until it does not end in
/// [`SocketError::DumpInterrupted`], at most [`DUMP_ATTEMPTS`] times,
/// calling `pause` with the number of the failed attempt between tries.
/// The partial result of an interrupted attempt is dropped, never merged.
pub(crate) fn retry_interrupted<T: Default>(
    mut attempt: impl FnMut(&mut T) -> Result<(), SocketError>,
    mut pause: impl FnMut(u32),
) -> Result<T, SocketError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut acc = T::default();
        match attempt(&mut acc) {
            Ok(()) => return Ok(acc),
            Err(SocketError::DumpInterrupted { .. }) if tries < DUMP_ATTEMPTS => pause(tries),
            Err(SocketError::DumpInterrupted { .. }) => {
                return Err(SocketError::DumpInterrupted { attempts: tries })
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(target_os = "linux")]
pub use linux::Socket;
#[cfg(target_os = "linux")]
pub(crate) use linux::{open_bound, os, set_int_option};

#[cfg(not(target_os = "linux"))]
pub use other::Socket;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::{retry_interrupted, Reply, SocketError, SocketOptions, Until};
    use crate::message::{DecodeError, MsgIter, NlMsg, NETLINK_NETFILTER, NLMSG_ERROR};

    /// Replies to a batch are queued before `sendto` returns and dumps are
    /// produced as we read, so waiting this long means something is wrong.
    const REPLY_TIMEOUT_SECS: libc::time_t = 30;
    const SOL_NETLINK: libc::c_int = 270;
    /// Errors echo only the failing message's header, not its body (which is
    /// up to 60 KB of elements for a chunk).
    const NETLINK_CAP_ACK: libc::c_int = 10;

    /// An `AF_NETLINK` / `NETLINK_NETFILTER` socket bound to a kernel-chosen
    /// port, with a sequence counter.
    #[derive(Debug)]
    pub struct Socket {
        fd: OwnedFd,
        seq: u32,
        buf: Vec<u8>,
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    /// The error of a failed syscall `call`, with its errno.
    pub(crate) fn os(call: &'static str) -> SocketError {
        SocketError::Os {
            call,
            errno: errno(),
        }
    }

    /// Sets an int socket option; `call` names it in the error.
    pub(crate) fn set_int_option(
        fd: &OwnedFd,
        level: libc::c_int,
        name: libc::c_int,
        value: libc::c_int,
        call: &'static str,
    ) -> Result<(), SocketError> {
        // SAFETY: `value` is a valid int of the given length, `fd` is open.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            Err(os(call))
        } else {
            Ok(())
        }
    }

    /// An `AF_NETLINK` socket of `protocol`, close-on-exec, bound to a
    /// kernel-chosen port in the calling thread's network namespace.
    pub(crate) fn open_bound(protocol: libc::c_int) -> Result<OwnedFd, SocketError> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if raw < 0 {
            return Err(os("socket"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_nl is valid; nl_pid 0 lets the
        // kernel choose our port id.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl of the given length.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(os("bind"));
        }
        Ok(fd)
    }

    impl Socket {
        /// Opens and binds the socket in the calling thread's network
        /// namespace, sized as `options` says.
        pub fn open(options: SocketOptions) -> Result<Socket, SocketError> {
            let fd = open_bound(NETLINK_NETFILTER)?;
            let sock = Socket {
                fd,
                seq: 1,
                buf: vec![0; options.datagram_buf],
            };
            if let Some(bytes) = options.rcvbuf {
                let bytes = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
                // Best effort: without CAP_NET_ADMIN the FORCE variant fails
                // and the plain one is capped by rmem_max; the first request
                // will then fail with EPERM anyway, with a clearer message.
                if sock
                    .setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes)
                    .is_err()
                {
                    let _ = sock.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, bytes);
                }
            }
            // Best effort: without it errors are only longer.
            let _ = sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1);
            let timeout = libc::timeval {
                tv_sec: REPLY_TIMEOUT_SECS,
                tv_usec: 0,
            };
            // SAFETY: `timeout` is a valid timeval of the given length.
            let rc = unsafe {
                libc::setsockopt(
                    sock.fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVTIMEO,
                    (&timeout as *const libc::timeval).cast(),
                    std::mem::size_of::<libc::timeval>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                return Err(os("setsockopt(SO_RCVTIMEO)"));
            }
            Ok(sock)
        }

        /// Takes a sequence number for the next request.
        pub fn next_seq(&mut self) -> u32 {
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            seq
        }

        /// The next sequence number, without taking it: a batch numbers its
        /// messages from here, and [`Socket::commit_batch`] moves past them.
        pub fn peek_seq(&self) -> u32 {
            self.seq
        }

        /// Sends an nfnetlink batch (`BATCH_BEGIN` with `begin_seq`, messages
        /// numbered consecutively after it and each asking for an ACK,
        /// `BATCH_END` with `end_seq`) in one syscall, and collects one reply
        /// per message. On failure returns the first failing message (in
        /// batch order; later ones often fail only as a consequence) and how
        /// many others failed; the kernel has then applied nothing.
        pub fn commit_batch(
            &mut self,
            bytes: &[u8],
            begin_seq: u32,
            end_seq: u32,
        ) -> Result<(), SocketError> {
            self.seq = end_seq.wrapping_add(1);
            let sndbuf = libc::c_int::try_from(bytes.len().saturating_add(4096)).map_err(|_| {
                SocketError::Os {
                    call: "sendto (batch larger than 2 GiB)",
                    errno: libc::EMSGSIZE,
                }
            })?;
            if self
                .setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, sndbuf)
                .is_err()
            {
                // Without CAP_NET_ADMIN; the batch will be refused with EPERM.
                let _ = self.setsockopt(libc::SOL_SOCKET, libc::SO_SNDBUF, sndbuf);
            }
            self.send(bytes)?;

            let ack_count = end_seq.wrapping_sub(begin_seq).wrapping_sub(1) as usize;
            let mut answered = vec![false; ack_count];
            let mut remaining = answered.len();
            let mut failures: Vec<(u32, i32)> = Vec::new();
            // An error on the BATCH_BEGIN header (EPERM, commit failure) may be
            // all the kernel says; after it, only drain.
            let mut batch_refused = false;
            loop {
                let wait = remaining > 0 && !batch_refused;
                let Some(len) = self.recv(wait)? else {
                    if wait {
                        return Err(SocketError::NoReply);
                    }
                    break;
                };
                for msg in MsgIter::new(&self.buf[..len]) {
                    let msg = msg?;
                    if msg.ty != NLMSG_ERROR {
                        continue;
                    }
                    let errno = msg.error_code()?;
                    let index = msg.seq.wrapping_sub(begin_seq).wrapping_sub(1) as usize;
                    if let Some(seen) = answered.get_mut(index) {
                        if !*seen {
                            *seen = true;
                            remaining -= 1;
                        }
                        if errno != 0 {
                            failures.push((msg.seq, errno));
                        }
                    } else if errno != 0 && (msg.seq == begin_seq || msg.seq == end_seq) {
                        failures.push((msg.seq, errno));
                        batch_refused = true;
                    }
                    // Anything else is a stale reply to an earlier request.
                }
            }
            let offset = |seq: u32| seq.wrapping_sub(begin_seq);
            match failures.iter().min_by_key(|(seq, _)| offset(*seq)) {
                None => Ok(()),
                Some(&(seq, errno)) => Err(SocketError::Kernel {
                    seq,
                    errno,
                    others: failures.len() - 1,
                }),
            }
        }

        /// Sends one request and hands each data message of the reply to
        /// `on_msg`, until the end `until` names. A refusal is handed to
        /// `on_error` (the `NLMSG_ERROR` itself, whose payload echoes the
        /// request: ipset reads the failing entry's line number there)
        /// before it is returned as [`SocketError::Kernel`].
        pub fn request(
            &mut self,
            req: &[u8],
            seq: u32,
            until: Until,
            on_msg: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
            on_error: &mut dyn FnMut(&NlMsg<'_>),
        ) -> Result<(), SocketError> {
            self.send(req)?;
            let mut reply = Reply::new(seq, until);
            loop {
                let Some(len) = self.recv(true)? else {
                    return Err(SocketError::NoReply);
                };
                if reply.feed(&self.buf[..len], on_msg, on_error)? {
                    break;
                }
            }
            self.drain()?;
            reply.finish()
        }

        /// [`Socket::request`] for a dump, taken again while the kernel
        /// flags it `NLM_F_DUMP_INTR` (at most [`DUMP_ATTEMPTS`] times in
        /// all, with growing pauses): `on_msg` fills a fresh `T` on each
        /// attempt, and only a complete, uninterrupted dump is returned.
        /// The same bytes and sequence number are sent again: the previous
        /// attempt was read to its end and drained, so no reply of it can
        /// be mistaken for one of the next.
        ///
        /// [`DUMP_ATTEMPTS`]: super::DUMP_ATTEMPTS
        pub fn dump<T: Default>(
            &mut self,
            req: &[u8],
            seq: u32,
            until: Until,
            on_msg: &mut dyn FnMut(&mut T, &NlMsg<'_>) -> Result<(), DecodeError>,
            on_error: &mut dyn FnMut(&NlMsg<'_>),
        ) -> Result<T, SocketError> {
            retry_interrupted(
                |acc: &mut T| self.request(req, seq, until, &mut |m| on_msg(acc, m), on_error),
                |failed| std::thread::sleep(std::time::Duration::from_millis(10 << failed)),
            )
        }

        fn send(&self, bytes: &[u8]) -> Result<(), SocketError> {
            // SAFETY: zeroed sockaddr_nl = the kernel (port 0, no groups).
            let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
            kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            loop {
                // SAFETY: `bytes` and `kernel` are valid for the given lengths.
                let n = unsafe {
                    libc::sendto(
                        self.fd.as_raw_fd(),
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        0,
                        (&kernel as *const libc::sockaddr_nl).cast(),
                        std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                    )
                };
                if n < 0 {
                    if errno() == libc::EINTR {
                        continue;
                    }
                    return Err(os("sendto"));
                }
                if n as usize != bytes.len() {
                    return Err(SocketError::Os {
                        call: "sendto (short write)",
                        errno: libc::EMSGSIZE,
                    });
                }
                return Ok(());
            }
        }

        /// One datagram into `self.buf`; `None` when nothing is queued
        /// (`wait == false`) or the receive timeout passed.
        fn recv(&mut self, wait: bool) -> Result<Option<usize>, SocketError> {
            let flags = libc::MSG_TRUNC | if wait { 0 } else { libc::MSG_DONTWAIT };
            loop {
                // SAFETY: `self.buf` is valid for writes of its length.
                let n = unsafe {
                    libc::recv(
                        self.fd.as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.buf.len(),
                        flags,
                    )
                };
                if n >= 0 {
                    let n = n as usize;
                    if n > self.buf.len() {
                        return Err(SocketError::Decode(DecodeError(format!(
                            "netlink datagram of {n} bytes exceeds the {} byte buffer",
                            self.buf.len()
                        ))));
                    }
                    return Ok(Some(n));
                }
                match errno() {
                    libc::EINTR => continue,
                    libc::EAGAIN => return Ok(None),
                    // ENOBUFS: replies were dropped because the receive buffer
                    // overflowed; the caller cannot know the outcome.
                    _ => return Err(os("recv")),
                }
            }
        }

        /// Discards replies still queued (e.g. after a decode error).
        fn drain(&mut self) -> Result<(), SocketError> {
            while self.recv(false)?.is_some() {}
            Ok(())
        }

        fn setsockopt(
            &self,
            level: libc::c_int,
            name: libc::c_int,
            value: libc::c_int,
        ) -> Result<(), SocketError> {
            set_int_option(&self.fd, level, name, value, "setsockopt")
        }
    }
}

/// Off Linux there is no nfnetlink: the type exists so the backends
/// compile, but it cannot be constructed.
#[cfg(not(target_os = "linux"))]
mod other {
    use super::{SocketError, SocketOptions, Until};
    use crate::message::{DecodeError, NlMsg};

    /// Uninhabited off Linux.
    #[derive(Debug)]
    pub struct Socket {
        never: std::convert::Infallible,
    }

    impl Socket {
        /// Always [`SocketError::Unsupported`].
        pub fn open(_: SocketOptions) -> Result<Socket, SocketError> {
            Err(SocketError::Unsupported)
        }

        /// Unreachable: no socket exists.
        pub fn next_seq(&mut self) -> u32 {
            match self.never {}
        }

        /// Unreachable: no socket exists.
        pub fn peek_seq(&self) -> u32 {
            match self.never {}
        }

        /// Unreachable: no socket exists.
        pub fn commit_batch(&mut self, _: &[u8], _: u32, _: u32) -> Result<(), SocketError> {
            match self.never {}
        }

        /// Unreachable: no socket exists.
        pub fn dump<T: Default>(
            &mut self,
            _: &[u8],
            _: u32,
            _: Until,
            _: &mut dyn FnMut(&mut T, &NlMsg<'_>) -> Result<(), DecodeError>,
            _: &mut dyn FnMut(&NlMsg<'_>),
        ) -> Result<T, SocketError> {
            match self.never {}
        }

        /// Unreachable: no socket exists.
        pub fn request(
            &mut self,
            _: &[u8],
            _: u32,
            _: Until,
            _: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
            _: &mut dyn FnMut(&NlMsg<'_>),
        ) -> Result<(), SocketError> {
            match self.never {}
        }
    }
}

/// The reply reader and the retry, with crafted datagrams: no kernel needed.
#[cfg(test)]
mod reply_tests {
    use super::*;
    use crate::message::{write_message, MsgHeader, NFPROTO_UNSPEC};

    /// One message of type `ty` with `flags` and sequence 5, as the kernel
    /// frames it (header and a zeroed 4-byte body: `nfgenmsg`, or a DONE
    /// code of 0).
    fn msg(buf: &mut Vec<u8>, ty: u16, flags: u16) {
        let header = MsgHeader {
            ty,
            flags,
            seq: 5,
            family: NFPROTO_UNSPEC,
            res_id: 0,
        };
        write_message(buf, header, |_| {}).unwrap();
    }

    const NEWTABLE: u16 = 10 << 8;

    /// Feeds `datagrams` to a dump reader; the outcome and the number of
    /// data messages handed on.
    fn read(datagrams: &[Vec<u8>]) -> (Result<(), SocketError>, usize) {
        let mut reply = Reply::new(5, Until::Done);
        let mut parts = 0;
        for d in datagrams {
            let ended = reply
                .feed(
                    d,
                    &mut |_| {
                        parts += 1;
                        Ok(())
                    },
                    &mut |_| {},
                )
                .unwrap();
            if ended {
                break;
            }
        }
        (reply.finish(), parts)
    }

    /// Issue 13 item 18: a dump part flagged `NLM_F_DUMP_INTR` (the ruleset
    /// changed between two parts) was taken as a complete listing, which
    /// may miss members that were there all along.
    #[test]
    fn a_dump_flagged_interrupted_is_not_taken_as_complete() {
        let mut first = Vec::new();
        msg(&mut first, NEWTABLE, nlm_flags::MULTI);
        msg(&mut first, NEWTABLE, nlm_flags::MULTI);
        let mut second = Vec::new();
        msg(
            &mut second,
            NEWTABLE,
            nlm_flags::MULTI | nlm_flags::DUMP_INTR,
        );
        msg(&mut second, NLMSG_DONE, nlm_flags::MULTI);
        let (result, parts) = read(&[first.clone(), second]);
        assert!(
            matches!(result, Err(SocketError::DumpInterrupted { attempts: 1 })),
            "{result:?}"
        );
        assert_eq!(parts, 3, "read to its end all the same");

        // The flag on DONE alone (the change came after the last part).
        let mut done = Vec::new();
        msg(
            &mut done,
            NLMSG_DONE,
            nlm_flags::MULTI | nlm_flags::DUMP_INTR,
        );
        let (result, _) = read(&[first.clone(), done]);
        assert!(matches!(result, Err(SocketError::DumpInterrupted { .. })));

        // Unflagged: complete.
        let mut done = Vec::new();
        msg(&mut done, NLMSG_DONE, nlm_flags::MULTI);
        let (result, parts) = read(&[first, done]);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(parts, 2);

        // A stale part of an earlier dump, flagged, is not this dump's.
        let mut stale = Vec::new();
        let header = MsgHeader {
            ty: NEWTABLE,
            flags: nlm_flags::MULTI | nlm_flags::DUMP_INTR,
            seq: 4,
            family: NFPROTO_UNSPEC,
            res_id: 0,
        };
        write_message(&mut stale, header, |_| {}).unwrap();
        msg(&mut stale, NLMSG_DONE, nlm_flags::MULTI);
        let (result, parts) = read(&[stale]);
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(parts, 0);
    }

    #[test]
    fn interrupted_dumps_are_retaken_a_bounded_number_of_times() {
        // Always interrupted: DUMP_ATTEMPTS tries, a pause between each two,
        // then the typed error.
        let mut tries = 0;
        let mut pauses = Vec::new();
        let result: Result<Vec<u32>, _> = retry_interrupted(
            |_| {
                tries += 1;
                Err(SocketError::DumpInterrupted { attempts: 1 })
            },
            |n| pauses.push(n),
        );
        assert!(matches!(
            result,
            Err(SocketError::DumpInterrupted { attempts }) if attempts == DUMP_ATTEMPTS
        ));
        assert_eq!(tries, DUMP_ATTEMPTS);
        assert_eq!(pauses, (1..DUMP_ATTEMPTS).collect::<Vec<_>>());
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("interrupted by concurrent changes 4 times in a row"));

        // Interrupted twice, then complete: only the last attempt's content.
        let mut tries = 0;
        let got: Vec<u32> = retry_interrupted(
            |acc: &mut Vec<u32>| {
                tries += 1;
                acc.push(tries);
                if tries < 3 {
                    Err(SocketError::DumpInterrupted { attempts: 1 })
                } else {
                    Ok(())
                }
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(got, [3]);

        // Other errors are not retried.
        let mut tries = 0;
        let result: Result<Vec<u8>, _> = retry_interrupted(
            |_| {
                tries += 1;
                Err(SocketError::NoReply)
            },
            |_| {},
        );
        assert!(matches!(result, Err(SocketError::NoReply)));
        assert_eq!(tries, 1);
    }
}

/// The socket against the real kernel, as root in a fresh network
/// namespace, with nf_tables messages built by hand (the simplest
/// subsystem to ask something of): pins how replies end and how a
/// refusal is traced to its sequence number.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use banset_tests::netns;

    use super::*;
    use crate::message::{nlm_flags, write_message, MsgHeader, NFPROTO_INET, NFPROTO_UNSPEC};

    const NFTABLES: u16 = 10;
    const NEWTABLE: u8 = 0;
    const GETTABLE: u8 = 1;
    const DELTABLE: u8 = 2;
    const TABLE_NAME: u16 = 1;

    fn options() -> SocketOptions {
        SocketOptions {
            datagram_buf: 64 << 10,
            rcvbuf: Some(1 << 20),
        }
    }

    /// One message; `table`: the `NFTA_TABLE_NAME` it is about.
    fn message(buf: &mut Vec<u8>, header: MsgHeader, table: Option<&str>) {
        write_message(buf, header, |a| {
            if let Some(name) = table {
                a.str(TABLE_NAME, name);
            }
        })
        .unwrap();
    }

    fn nft(msg: u8, flags: u16, seq: u32) -> MsgHeader {
        MsgHeader {
            ty: MsgHeader::subsys_type(NFTABLES, msg),
            flags,
            seq,
            family: NFPROTO_INET,
            res_id: 0,
        }
    }

    /// `NFNL_MSG_BATCH_BEGIN` (16) or `_END` (17).
    fn frame(ty: u16, seq: u32) -> MsgHeader {
        MsgHeader {
            ty,
            flags: nlm_flags::REQUEST,
            seq,
            family: NFPROTO_UNSPEC,
            res_id: NFTABLES,
        }
    }

    #[test]
    fn dumps_end_at_done_and_refusals_carry_their_errno() {
        if netns::skip_unless_root("dumps_end_at_done_and_refusals_carry_their_errno") {
            return;
        }
        netns::in_new_netns(|| {
            let mut sock = Socket::open(options()).unwrap();
            // An empty namespace has no tables: the dump is DONE at once.
            let seq = sock.next_seq();
            let mut req = Vec::new();
            let flags = nlm_flags::REQUEST | nlm_flags::DUMP;
            message(&mut req, nft(GETTABLE, flags, seq), None);
            let mut parts = 0;
            sock.request(
                &req,
                seq,
                Until::Done,
                &mut |_| {
                    parts += 1;
                    Ok(())
                },
                &mut |_| panic!("no refusal expected"),
            )
            .unwrap();
            assert_eq!(parts, 0);

            // Getting a table that does not exist: ENOENT, handed to on_error.
            let seq = sock.next_seq();
            let mut req = Vec::new();
            let flags = nlm_flags::REQUEST | nlm_flags::ACK;
            message(&mut req, nft(GETTABLE, flags, seq), Some("banset-absent"));
            let mut refused = None;
            let e = sock.request(&req, seq, Until::Ack, &mut |_| Ok(()), &mut |msg| {
                refused = Some(msg.seq);
            });
            assert!(
                matches!(e, Err(SocketError::Kernel { seq: s, errno: libc::ENOENT, others: 0 }) if s == seq),
                "{e:?}"
            );
            assert_eq!(refused, Some(seq));
        });
    }

    /// A change committed (from another socket) while a dump is being read
    /// makes the kernel flag the later parts `NLM_F_DUMP_INTR`: the dump
    /// is taken again, and a dump interrupted every time is an error.
    #[test]
    fn a_dump_interrupted_by_a_change_is_taken_again() {
        if netns::skip_unless_root("a_dump_interrupted_by_a_change_is_taken_again") {
            return;
        }
        netns::in_new_netns(|| {
            // Room for the 3,000 ACKs of the batch below.
            let big = SocketOptions {
                rcvbuf: Some(16 << 20),
                ..options()
            };
            let mut sock = Socket::open(big).unwrap();
            // Enough tables for a dump of several ~32 KiB parts: the change
            // must fall between two of them.
            const TABLES: u32 = 3000;
            let begin = sock.peek_seq();
            let mut batch = Vec::new();
            message(&mut batch, frame(16, begin), None);
            let flags = nlm_flags::REQUEST | nlm_flags::ACK | nlm_flags::CREATE;
            for i in 0..TABLES {
                let name = format!("t{i}");
                message(&mut batch, nft(NEWTABLE, flags, begin + 1 + i), Some(&name));
            }
            message(&mut batch, frame(17, begin + 1 + TABLES), None);
            sock.commit_batch(&batch, begin, begin + 1 + TABLES)
                .unwrap();

            let mut other = Socket::open(options()).unwrap();
            let mut added = 0;
            // Adds one table from the other socket.
            let mut change = |other: &mut Socket| {
                added += 1;
                let begin = other.peek_seq();
                let mut batch = Vec::new();
                message(&mut batch, frame(16, begin), None);
                let name = format!("x{added}");
                message(&mut batch, nft(NEWTABLE, flags, begin + 1), Some(&name));
                message(&mut batch, frame(17, begin + 2), None);
                other.commit_batch(&batch, begin, begin + 2).unwrap();
            };
            let mut dump = |sock: &mut Socket, interrupt_every_time: bool| {
                let seq = sock.next_seq();
                let mut req = Vec::new();
                let dump_flags = nlm_flags::REQUEST | nlm_flags::DUMP;
                message(&mut req, nft(GETTABLE, dump_flags, seq), None);
                let mut attempts = 0;
                let result = sock.dump(
                    &req,
                    seq,
                    Until::Done,
                    &mut |count: &mut u32, _| {
                        *count += 1;
                        if *count == 1 {
                            attempts += 1;
                            if attempts == 1 || interrupt_every_time {
                                change(&mut other);
                            }
                        }
                        Ok(())
                    },
                    &mut |_| {},
                );
                (result, attempts)
            };
            let (result, attempts) = dump(&mut sock, false);
            assert_eq!(attempts, 2, "{result:?}");
            assert_eq!(result.unwrap(), TABLES + 1, "the second dump is whole");
            let (result, attempts) = dump(&mut sock, true);
            assert_eq!(attempts, DUMP_ATTEMPTS);
            assert!(
                matches!(result, Err(SocketError::DumpInterrupted { attempts }) if attempts == DUMP_ATTEMPTS),
                "{result:?}"
            );
        });
    }

    #[test]
    fn a_batch_error_names_the_failing_message() {
        if netns::skip_unless_root("a_batch_error_names_the_failing_message") {
            return;
        }
        netns::in_new_netns(|| {
            let mut sock = Socket::open(options()).unwrap();
            // BATCH_BEGIN, one DELTABLE of an absent table, BATCH_END.
            let begin = sock.peek_seq();
            let mut batch = Vec::new();
            message(&mut batch, frame(16, begin), None);
            let flags = nlm_flags::REQUEST | nlm_flags::ACK;
            message(
                &mut batch,
                nft(DELTABLE, flags, begin + 1),
                Some("banset-absent"),
            );
            message(&mut batch, frame(17, begin + 2), None);
            let e = sock.commit_batch(&batch, begin, begin + 2);
            assert!(
                matches!(e, Err(SocketError::Kernel { seq, errno: libc::ENOENT, others: 0 }) if seq == begin + 1),
                "{e:?}"
            );
            assert_eq!(sock.peek_seq(), begin + 3);

            // An empty batch needs no answer and gets none.
            let begin = sock.peek_seq();
            let mut batch = Vec::new();
            message(&mut batch, frame(16, begin), None);
            message(&mut batch, frame(17, begin + 1), None);
            sock.commit_batch(&batch, begin, begin + 1).unwrap();
        });
    }
}
