//! The netlink socket, from `banset-netlink`, sized for ipset and
//! reporting the failing entry of a refused `ADT` message.
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

use banset_netlink::{SocketError, SocketOptions, Until};

use crate::msg::replies::error_lineno;
use crate::msg::{DecodeError, NlMsg};

/// ipset's sizes: a datagram buffer for any dump part and for the copy of
/// a failed `ADT` request (both below 64 KiB); the kernel's default receive
/// buffer, since every request is answered before the next one is sent.
const OPTIONS: SocketOptions = SocketOptions {
    datagram_buf: 256 << 10,
    rcvbuf: None,
};

/// What went wrong below the backend. Off Linux only `Unsupported` is built.
#[derive(Debug)]
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
    /// Every dump of `attempts` was flagged `NLM_F_DUMP_INTR`.
    DumpInterrupted { attempts: u32 },
    /// Not Linux.
    Unsupported,
}

impl From<DecodeError> for SysError {
    fn from(e: DecodeError) -> SysError {
        SysError::Decode(e)
    }
}

/// An `AF_NETLINK` / `NETLINK_NETFILTER` socket with a sequence counter.
#[derive(Debug)]
pub(crate) struct Socket(banset_netlink::Socket);

impl Socket {
    pub(crate) fn open() -> Result<Socket, SysError> {
        banset_netlink::Socket::open(OPTIONS)
            .map(Socket)
            .map_err(|e| sys_error(e, None))
    }

    /// A sequence number for the next request.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.0.next_seq()
    }

    /// Sends one request and hands each data message of the reply to
    /// `on_msg`, until the ACK (or error) or, for a dump, `NLMSG_DONE`.
    pub(crate) fn request(
        &mut self,
        req: &[u8],
        seq: u32,
        on_msg: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
    ) -> Result<(), SysError> {
        let mut lineno = None;
        self.0
            .request(req, seq, Until::AckOrDone, on_msg, &mut |err| {
                lineno = error_lineno(err.payload);
            })
            .map_err(|e| sys_error(e, lineno))
    }

    /// A LIST dump, taken again (a bounded number of times) while the
    /// kernel flags it interrupted by a concurrent change (today's ipset
    /// does not, but the shared reader checks every dump); `on_msg` fills
    /// a fresh `T` on each attempt.
    pub(crate) fn dump<T: Default>(
        &mut self,
        req: &[u8],
        seq: u32,
        on_msg: &mut dyn FnMut(&mut T, &NlMsg<'_>) -> Result<(), DecodeError>,
    ) -> Result<T, SysError> {
        let mut lineno = None;
        self.0
            .dump(req, seq, Until::AckOrDone, on_msg, &mut |err| {
                lineno = error_lineno(err.payload);
            })
            .map_err(|e| sys_error(e, lineno))
    }
}

/// `lineno`: read from the refusal, if the kernel refused.
fn sys_error(e: SocketError, lineno: Option<u32>) -> SysError {
    match e {
        SocketError::Os { call, errno } => SysError::Os { call, errno },
        SocketError::Kernel { errno, .. } => SysError::Kernel { errno, lineno },
        SocketError::Decode(d) => SysError::Decode(d),
        SocketError::NoReply => SysError::NoReply,
        SocketError::DumpInterrupted { attempts } => SysError::DumpInterrupted { attempts },
        SocketError::Unsupported => SysError::Unsupported,
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
