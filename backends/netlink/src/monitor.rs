//! Listening to the kernel's netlink multicast groups, to notice changes
//! made by others: nf_tables objects deleted (`nft flush ruleset`, a
//! firewall reload) and the host's addresses changing.
//!
//! The daemon only needs to know *that* something of a kind happened, then
//! checks the kernel itself; so a [`Monitor`] reports message types, and an
//! overrun (the kernel dropped notifications because we were slow) as
//! [`Notice::Overrun`], which a caller treats as "anything may have changed".

/// `NETLINK_ROUTE`: interfaces, addresses, routes.
pub const NETLINK_ROUTE: i32 = 0;
/// `RTNLGRP_IPV4_IFADDR`.
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV6_IFADDR`.
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
/// `NFNLGRP_NFTABLES`: every nf_tables change (`include/uapi/linux/netfilter/nfnetlink.h`).
pub const NFNLGRP_NFTABLES: u32 = 7;

/// What a wait returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Messages arrived; their `nlmsg_type`s, in order.
    Messages(Vec<u16>),
    /// The kernel dropped notifications (`ENOBUFS`): assume anything changed.
    Overrun,
    /// Nothing within the timeout.
    Timeout,
}

#[cfg(target_os = "linux")]
pub use linux::Monitor;
#[cfg(not(target_os = "linux"))]
pub use other::Monitor;

/// Off Linux there is no netlink to listen to: the type exists so the
/// daemon compiles (on FreeBSD it falls back to checking periodically),
/// but it cannot be constructed.
#[cfg(not(target_os = "linux"))]
mod other {
    use super::Notice;
    use crate::socket::SocketError;

    /// Uninhabited off Linux.
    #[derive(Debug)]
    pub struct Monitor {
        never: std::convert::Infallible,
    }

    impl Monitor {
        /// Always [`SocketError::Unsupported`].
        pub fn open(_protocol: i32, _groups: &[u32]) -> Result<Monitor, SocketError> {
            Err(SocketError::Unsupported)
        }

        /// Unreachable: no monitor exists.
        pub fn wait(&mut self, _timeout_ms: i32) -> Result<Notice, SocketError> {
            match self.never {}
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::Notice;
    use crate::message::MsgIter;
    use crate::socket::{os, set_int_option, SocketError};

    /// A netlink socket subscribed to multicast groups.
    #[derive(Debug)]
    pub struct Monitor {
        fd: OwnedFd,
        buf: Vec<u8>,
    }

    impl Monitor {
        /// Opens a `protocol` socket in the calling thread's network
        /// namespace, joined to `groups` (group numbers, not masks).
        pub fn open(protocol: i32, groups: &[u32]) -> Result<Monitor, SocketError> {
            let fd = crate::socket::open_bound(protocol)?;
            for &group in groups {
                set_int_option(
                    &fd,
                    libc::SOL_NETLINK,
                    libc::NETLINK_ADD_MEMBERSHIP,
                    group as libc::c_int,
                    "setsockopt(NETLINK_ADD_MEMBERSHIP)",
                )?;
            }
            Ok(Monitor {
                fd,
                buf: vec![0; 64 * 1024],
            })
        }

        /// Waits up to `timeout_ms` for notifications and returns what came
        /// (everything already queued, not just one datagram).
        pub fn wait(&mut self, timeout_ms: i32) -> Result<Notice, SocketError> {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
            if rc < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    return Ok(Notice::Timeout);
                }
                return Err(os("poll"));
            }
            if rc == 0 {
                return Ok(Notice::Timeout);
            }
            let mut types = Vec::new();
            loop {
                // SAFETY: `buf` is writable for its length.
                let n = unsafe {
                    libc::recv(
                        self.fd.as_raw_fd(),
                        self.buf.as_mut_ptr().cast(),
                        self.buf.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if n < 0 {
                    let err = std::io::Error::last_os_error();
                    match err.raw_os_error() {
                        Some(libc::EAGAIN) => break,
                        Some(libc::ENOBUFS) => return Ok(Notice::Overrun),
                        Some(libc::EINTR) => continue,
                        _ => return Err(os("recv")),
                    }
                }
                for msg in MsgIter::new(&self.buf[..n as usize]) {
                    match msg {
                        Ok(m) => types.push(m.ty),
                        // Unreadable: treat as "something changed".
                        Err(_) => return Ok(Notice::Overrun),
                    }
                }
            }
            Ok(if types.is_empty() {
                Notice::Timeout
            } else {
                Notice::Messages(types)
            })
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use banset_tests::netns;

    const NFT_MSG_DELTABLE: u16 = (10 << 8) | 2;
    const NFT_MSG_NEWTABLE: u16 = 10 << 8;

    fn nft(args: &[&str]) {
        let st = std::process::Command::new("nft")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "nft {args:?}");
    }

    #[test]
    fn sees_a_table_deleted_by_another_program() {
        netns::kernel_test("sees_a_table_deleted_by_another_program", || {
            let mut m = Monitor::open(crate::NETLINK_NETFILTER, &[NFNLGRP_NFTABLES]).unwrap();
            assert_eq!(m.wait(0).unwrap(), Notice::Timeout);
            nft(&["add", "table", "inet", "someone"]);
            nft(&["delete", "table", "inet", "someone"]);
            let mut seen = Vec::new();
            while let Notice::Messages(types) = m.wait(1000).unwrap() {
                seen.extend(types);
                if seen.contains(&NFT_MSG_DELTABLE) {
                    break;
                }
            }
            assert!(seen.contains(&NFT_MSG_NEWTABLE), "{seen:x?}");
            assert!(seen.contains(&NFT_MSG_DELTABLE), "{seen:x?}");
        });
    }

    #[test]
    fn sees_addresses_come_and_go() {
        netns::kernel_test("sees_addresses_come_and_go", || {
            let mut m =
                Monitor::open(NETLINK_ROUTE, &[RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]).unwrap();
            let st = std::process::Command::new("ip")
                .args(["addr", "add", "192.0.2.99/32", "dev", "lo"])
                .status()
                .unwrap();
            assert!(st.success());
            // RTM_NEWADDR = 20
            assert!(matches!(m.wait(1000).unwrap(), Notice::Messages(t) if t.contains(&20)));
        });
    }
}
