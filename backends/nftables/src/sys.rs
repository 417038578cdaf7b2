//! The netlink socket: the only place with syscalls.
//!
//! Everything the kernel needs is built by [`crate::msg`]; this layer sends it
//! and collects the answers:
//! - a batch goes out in ONE `sendto` after raising the send buffer with
//!   `SO_SNDBUFFORCE` to the batch size (a 1M-element batch is ~28 MB). Split
//!   sends make the kernel see several partial batches (`EINVAL`/`ENOBUFS`);
//! - nfnetlink processes a batch synchronously inside that `sendto`, so every
//!   ACK and error is queued on the socket when it returns. We read until each
//!   message of the batch is accounted for, then drain whatever else is queued,
//!   so a stale reply can never be taken for the answer to a later request;
//! - dumps are read until `NLMSG_DONE` with a 1 MiB buffer.

use crate::msg::DecodeError;

/// What went wrong below the backend. Off Linux only `Unsupported` is built.
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum SysError {
    /// A syscall failed.
    Os { call: &'static str, errno: i32 },
    /// The kernel answered message `seq` with `-errno`. `others` counts
    /// further failing messages of the same batch.
    Kernel { seq: u32, errno: i32, others: usize },
    /// A reply did not parse.
    Decode(DecodeError),
    /// The kernel did not answer at all.
    NoReply,
    /// Not Linux.
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    Unsupported,
}

impl From<DecodeError> for SysError {
    fn from(e: DecodeError) -> SysError {
        SysError::Decode(e)
    }
}

/// How a request's replies end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Until {
    /// `NLMSG_DONE` (dumps).
    Done,
    /// The `NLMSG_ERROR` acknowledging the request (single gets with `NLM_F_ACK`).
    Ack,
}

#[cfg(target_os = "linux")]
pub(crate) use linux::Socket;

#[cfg(not(target_os = "linux"))]
pub(crate) use other::Socket;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::{SysError, Until};
    use crate::msg::{
        Batch, DecodeError, MsgIter, NlMsg, SealedBatch, NETLINK_NETFILTER, NLMSG_DONE, NLMSG_ERROR,
    };

    /// Big enough for any datagram the kernel builds for a dump (they stay
    /// below 64 KiB); netlink truncates datagrams that do not fit.
    const RECV_BUF: usize = 1 << 20;
    /// Room for a burst of replies: one ACK per message of a large batch.
    const RCVBUF_BYTES: libc::c_int = 8 << 20;
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
    pub(crate) struct Socket {
        fd: OwnedFd,
        seq: u32,
        buf: Vec<u8>,
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    }

    fn os(call: &'static str) -> SysError {
        SysError::Os {
            call,
            errno: errno(),
        }
    }

    impl Socket {
        pub(crate) fn open() -> Result<Socket, SysError> {
            // SAFETY: plain socket(2); the result is checked before use.
            let raw = unsafe {
                libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    NETLINK_NETFILTER,
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
            let sock = Socket {
                fd,
                seq: 1,
                buf: vec![0; RECV_BUF],
            };
            // Best effort: without CAP_NET_ADMIN the FORCE variant fails and
            // the plain one is capped by rmem_max; the first request will then
            // fail with EPERM anyway, with a clearer message.
            if sock
                .setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF_BYTES)
                .is_err()
            {
                let _ = sock.setsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF_BYTES);
            }
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

        /// A sequence number for a dump or get.
        pub(crate) fn next_seq(&mut self) -> u32 {
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            seq
        }

        /// A batch numbered after everything sent so far.
        pub(crate) fn batch(&self) -> Batch {
            Batch::new(self.seq)
        }

        /// Sends the batch in one syscall and collects one reply per message.
        /// On failure returns the first failing message (in batch order); the
        /// kernel has then applied nothing.
        pub(crate) fn commit(&mut self, batch: &SealedBatch) -> Result<(), SysError> {
            self.seq = batch.next_seq();
            let bytes = batch.bytes();
            let sndbuf = libc::c_int::try_from(bytes.len().saturating_add(4096)).map_err(|_| {
                SysError::Os {
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

            let mut answered = vec![false; batch.ack_count()];
            let mut remaining = answered.len();
            let mut failures: Vec<(u32, i32)> = Vec::new();
            // An error on the BATCH_BEGIN header (EPERM, commit failure) may be
            // all the kernel says; after it, only drain.
            let mut batch_refused = false;
            loop {
                let wait = remaining > 0 && !batch_refused;
                let Some(len) = self.recv(wait)? else {
                    if wait {
                        return Err(SysError::NoReply);
                    }
                    break;
                };
                for msg in MsgIter::new(&self.buf[..len]) {
                    let msg = msg?;
                    if msg.ty != NLMSG_ERROR {
                        continue;
                    }
                    let errno = msg.error_code()?;
                    let index = msg.seq.wrapping_sub(batch.begin_seq()).wrapping_sub(1) as usize;
                    if let Some(seen) = answered.get_mut(index) {
                        if !*seen {
                            *seen = true;
                            remaining -= 1;
                        }
                        if errno != 0 {
                            failures.push((msg.seq, errno));
                        }
                    } else if errno != 0
                        && (msg.seq == batch.begin_seq() || msg.seq == batch.end_seq())
                    {
                        failures.push((msg.seq, errno));
                        batch_refused = true;
                    }
                    // Anything else is a stale reply to an earlier request.
                }
            }
            // Report the message that failed first: later ones often fail only
            // as a consequence (a rule referring to a set that was refused).
            let offset = |seq: u32| seq.wrapping_sub(batch.begin_seq());
            match failures.iter().min_by_key(|(seq, _)| offset(*seq)) {
                None => Ok(()),
                Some(&(seq, errno)) => Err(SysError::Kernel {
                    seq,
                    errno,
                    others: failures.len() - 1,
                }),
            }
        }

        /// Sends one request and hands each data message of the reply to
        /// `on_msg`, until `NLMSG_DONE` or the ACK.
        pub(crate) fn request(
            &mut self,
            req: &[u8],
            seq: u32,
            until: Until,
            on_msg: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
        ) -> Result<(), SysError> {
            self.send(req)?;
            let mut result = Ok(());
            'read: loop {
                let Some(len) = self.recv(true)? else {
                    return Err(SysError::NoReply);
                };
                for msg in MsgIter::new(&self.buf[..len]) {
                    let msg = msg?;
                    if msg.seq != seq {
                        continue;
                    }
                    match msg.ty {
                        NLMSG_ERROR => {
                            let errno = msg.error_code()?;
                            if errno != 0 {
                                result = Err(SysError::Kernel {
                                    seq,
                                    errno,
                                    others: 0,
                                });
                                break 'read;
                            }
                            if until == Until::Ack {
                                break 'read;
                            }
                        }
                        NLMSG_DONE => {
                            let errno = msg.done_code();
                            if errno != 0 {
                                result = Err(SysError::Kernel {
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
                                // next request does not see its tail.
                                result = Err(SysError::Decode(e));
                            }
                        }
                    }
                }
            }
            self.drain()?;
            result
        }

        fn send(&self, bytes: &[u8]) -> Result<(), SysError> {
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
                    return Err(SysError::Os {
                        call: "sendto (short write)",
                        errno: libc::EMSGSIZE,
                    });
                }
                return Ok(());
            }
        }

        /// One datagram into `self.buf`; `None` when nothing is queued
        /// (`wait == false`) or the receive timeout passed.
        fn recv(&mut self, wait: bool) -> Result<Option<usize>, SysError> {
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
                        return Err(SysError::Decode(DecodeError(format!(
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
        fn drain(&mut self) -> Result<(), SysError> {
            while self.recv(false)?.is_some() {}
            Ok(())
        }

        fn setsockopt(
            &self,
            level: libc::c_int,
            name: libc::c_int,
            value: libc::c_int,
        ) -> Result<(), SysError> {
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

/// Off Linux there is no nf_tables: the type exists so the backend compiles,
/// but it cannot be constructed.
#[cfg(not(target_os = "linux"))]
mod other {
    use super::{SysError, Until};
    use crate::msg::{Batch, DecodeError, NlMsg, SealedBatch};

    #[derive(Debug)]
    pub(crate) struct Socket {
        never: std::convert::Infallible,
    }

    impl Socket {
        pub(crate) fn open() -> Result<Socket, SysError> {
            Err(SysError::Unsupported)
        }

        pub(crate) fn next_seq(&mut self) -> u32 {
            match self.never {}
        }

        pub(crate) fn batch(&self) -> Batch {
            match self.never {}
        }

        pub(crate) fn commit(&mut self, _: &SealedBatch) -> Result<(), SysError> {
            match self.never {}
        }

        pub(crate) fn request(
            &mut self,
            _: &[u8],
            _: u32,
            _: Until,
            _: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
        ) -> Result<(), SysError> {
            match self.never {}
        }
    }
}
