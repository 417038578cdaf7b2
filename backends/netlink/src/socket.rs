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

use crate::message::DecodeError;

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

#[cfg(target_os = "linux")]
pub(crate) use linux::open_bound;
#[cfg(target_os = "linux")]
pub use linux::Socket;

#[cfg(not(target_os = "linux"))]
pub use other::Socket;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::{SocketError, SocketOptions, Until};
    use crate::message::{
        nlm_flags, DecodeError, MsgIter, NlMsg, NETLINK_NETFILTER, NLMSG_DONE, NLMSG_ERROR,
    };

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

    fn os(call: &'static str) -> SocketError {
        SocketError::Os {
            call,
            errno: errno(),
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
            let mut result = Ok(());
            'read: loop {
                let Some(len) = self.recv(true)? else {
                    return Err(SocketError::NoReply);
                };
                for msg in MsgIter::new(&self.buf[..len]) {
                    let msg = msg?;
                    if msg.seq != seq {
                        continue; // a stale reply to an earlier request
                    }
                    match msg.ty {
                        NLMSG_ERROR => {
                            let errno = msg.error_code()?;
                            if errno != 0 {
                                on_error(&msg);
                                result = Err(SocketError::Kernel {
                                    seq,
                                    errno,
                                    others: 0,
                                });
                                break 'read;
                            }
                            let ends = match until {
                                Until::Done => false,
                                Until::Ack => true,
                                Until::AckOrDone => msg.flags & nlm_flags::MULTI == 0,
                            };
                            if ends {
                                break 'read;
                            }
                        }
                        NLMSG_DONE => {
                            let errno = msg.done_code();
                            if errno != 0 {
                                result = Err(SocketError::Kernel {
                                    seq,
                                    errno,
                                    others: 0,
                                });
                            }
                            break 'read;
                        }
                        _ => {
                            if let Err(e) = on_msg(&msg) {
                                // Keep reading to the end of the reply, so the
                                // next request does not see its tail; the
                                // first error is the one that explains.
                                if result.is_ok() {
                                    result = Err(SocketError::Decode(e));
                                }
                            }
                        }
                    }
                }
            }
            self.drain()?;
            result
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
            // SAFETY: `value` is a valid int of the given length.
            let rc = unsafe {
                libc::setsockopt(
                    self.fd.as_raw_fd(),
                    level,
                    name,
                    (&value as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc < 0 {
                Err(os("setsockopt"))
            } else {
                Ok(())
            }
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
