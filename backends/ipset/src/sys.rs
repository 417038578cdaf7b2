//! The netlink socket: the only place with syscalls.
//!
//! ipset has no batches: every request is answered on its own, with an ACK
//! (or error) or, for a dump, parts ending in `NLMSG_DONE`. So one
//! primitive does it all: send one request, read its answer, hand data
//! messages to a callback, and drain whatever is left so that a stale reply
//! can never be taken for the answer to a later request.
//!
//! An `ADT` message that fails is answered by the ipset core with a copy of
//! the whole request (up to 64 KiB), carrying the failing entry's line
//! number; the receive buffer is sized for it, and the line number is
//! returned with the error.

use crate::msg::DecodeError;

/// What went wrong below the backend. Off Linux only `Unsupported` is built.
#[derive(Debug)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum SysError {
    /// A syscall failed.
    Os { call: &'static str, errno: i32 },
    /// The kernel answered with an error: an errno or an ipset code
    /// ([`crate::msg::errcode`]), and for an `ADT` message the line number
    /// of the entry that failed.
    Kernel { errno: i32, lineno: Option<u32> },
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

#[cfg(target_os = "linux")]
pub(crate) use linux::Socket;

#[cfg(not(target_os = "linux"))]
pub(crate) use other::Socket;

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::SysError;
    use crate::msg::replies::error_lineno;
    use crate::msg::{DecodeError, MsgIter, NlMsg, NETLINK_NETFILTER, NLMSG_DONE, NLMSG_ERROR};

    /// Big enough for any datagram the kernel sends: dump parts stay below
    /// 64 KiB, and so does the copy of a failed `ADT` request.
    const RECV_BUF: usize = 256 << 10;
    /// Dumps are produced as we read and everything else is answered inside
    /// `sendto`, so waiting this long means something is wrong.
    const REPLY_TIMEOUT_SECS: libc::time_t = 30;
    const SOL_NETLINK: libc::c_int = 270;
    /// Plain errors echo only the request's header, not its entries.
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
            let one: libc::c_int = 1;
            // SAFETY: `one` is a valid int of the given length. Best effort:
            // without it errors are only longer.
            unsafe {
                libc::setsockopt(
                    sock.fd.as_raw_fd(),
                    SOL_NETLINK,
                    NETLINK_CAP_ACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
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

        /// A sequence number for the next request.
        pub(crate) fn next_seq(&mut self) -> u32 {
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            seq
        }

        /// Sends one request and hands each data message of the reply to
        /// `on_msg`, until the ACK (or error) or, for a dump, `NLMSG_DONE`.
        pub(crate) fn request(
            &mut self,
            req: &[u8],
            seq: u32,
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
                        continue; // a stale reply to an earlier request
                    }
                    match msg.ty {
                        NLMSG_ERROR => {
                            let errno = msg.error_code()?;
                            if errno != 0 {
                                result = Err(SysError::Kernel {
                                    errno,
                                    lineno: error_lineno(msg.payload),
                                });
                            }
                            // A dump acknowledged with 0 still ends in DONE.
                            if errno != 0 || msg.flags & crate::msg::nlm_flags::MULTI == 0 {
                                break 'read;
                            }
                        }
                        NLMSG_DONE => {
                            let errno = msg.done_code();
                            if errno != 0 {
                                result = Err(SysError::Kernel {
                                    errno,
                                    lineno: None,
                                });
                            }
                            break 'read;
                        }
                        _ => {
                            if let Err(e) = on_msg(&msg) {
                                // Keep reading to the end of the reply, so the
                                // next request does not see its tail.
                                if result.is_ok() {
                                    result = Err(SysError::Decode(e));
                                }
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
                    _ => return Err(os("recv")),
                }
            }
        }

        /// Discards replies still queued (e.g. after a decode error).
        fn drain(&mut self) -> Result<(), SysError> {
            while self.recv(false)?.is_some() {}
            Ok(())
        }
    }
}

/// Off Linux there is no ipset: the type exists so the backend compiles,
/// but it cannot be constructed.
#[cfg(not(target_os = "linux"))]
mod other {
    use super::SysError;
    use crate::msg::{DecodeError, NlMsg};

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

        pub(crate) fn request(
            &mut self,
            _: &[u8],
            _: u32,
            _: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
        ) -> Result<(), SysError> {
            match self.never {}
        }
    }
}

/// The socket against the real kernel, as root in a fresh network
/// namespace: pins the reply behaviour the backend relies on.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::net::Ipv4Addr;

    use banset_tests::netns;

    use super::*;
    use crate::msg::requests::{self, CreateParams, Entry};
    use crate::msg::{cmd, errcode, NFPROTO_IPV4};

    fn entries(n: u8) -> Vec<Entry> {
        (1..=n)
            .map(|i| Entry {
                addr: Ipv4Addr::new(192, 0, 2, i).into(),
                cidr: None,
                timeout: Some(60),
            })
            .collect()
    }

    /// A batch into a set with room for 2: the kernel applies entries 1 and
    /// 2, refuses 3 with `IPSET_ERR_HASH_FULL` and hands back line 3.
    #[test]
    fn a_failing_entry_comes_back_with_its_line_number() {
        if netns::skip_unless_root("a_failing_entry_comes_back_with_its_line_number") {
            return;
        }
        netns::in_new_netns(|| {
            let mut sock = Socket::open().unwrap();
            let seq = sock.next_seq();
            let create = requests::create(
                seq,
                &CreateParams {
                    name: "lineno",
                    typename: "hash:ip",
                    revision: 0,
                    family: NFPROTO_IPV4,
                    timeout: 0,
                    hashsize: 64,
                    maxelem: 2,
                },
            )
            .unwrap();
            sock.request(&create, seq, &mut |_| Ok(())).unwrap();
            let seq = sock.next_seq();
            let add = requests::adt(cmd::ADD, seq, NFPROTO_IPV4, "lineno", &entries(4), 1).unwrap();
            match sock.request(&add, seq, &mut |_| Ok(())) {
                Err(SysError::Kernel { errno, lineno }) => {
                    assert_eq!((errno, lineno), (errcode::HASH_FULL, Some(3)));
                }
                other => panic!("expected HASH_FULL at line 3, got {other:?}"),
            }
            // The socket is clean for the next request: DEL of present and
            // absent entries without NLM_F_EXCL succeeds.
            let seq = sock.next_seq();
            let del = requests::adt(cmd::DEL, seq, NFPROTO_IPV4, "lineno", &entries(4), 1).unwrap();
            sock.request(&del, seq, &mut |_| Ok(())).unwrap();
        });
    }
}
