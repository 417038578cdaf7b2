//! banset-netlink: the netfilter netlink plumbing that banset's nftables and
//! ipset backends share.
//!
//! # Why it exists
//!
//! nf_tables and ipset are two subsystems of the same transport,
//! nfnetlink (`NETLINK_NETFILTER`): the same 16-byte `nlmsghdr`, the same
//! 4-byte `nfgenmsg`, the same attribute TLVs, the same `NLMSG_ERROR` /
//! `NLMSG_DONE` replies, the same socket. Only the message types and
//! attribute numbers differ. This crate holds what is the same, once, so a
//! fix to the framing, the u16 overflow guard or the receive loop reaches
//! both backends; each backend keeps its own messages (nf_tables objects,
//! elements and batches; ipset requests and replies).
//!
//! # Layers
//!
//! As every backend crate of banset, two layers:
//!
//! - pure, compiled and unit-tested on every OS, golden bytes in and out:
//!   `wire` (4-byte alignment, [`DecodeError`] and [`EncodeError`]: what
//!   the two others share, so neither imports the other's), [`attrs`] (the
//!   attribute writer with nesting and the u16 overflow guard, and the
//!   reader) and [`message`] (header and `nfgenmsg` encoding, [`NlMsg`] and
//!   [`MsgIter`] over a receive buffer, error and done codes, the shared
//!   constants), which builds on `attrs`;
//! - [`socket`]: the `AF_NETLINK` / `NETLINK_NETFILTER` socket: buffer
//!   sizing, one `sendto` per request or batch, the receive loop that maps
//!   ACKs and errors to sequence numbers, dumps until `NLMSG_DONE`. Its
//!   syscalls are `cfg(target_os = "linux")`; elsewhere [`Socket::open`]
//!   fails with [`SocketError::Unsupported`] so the backends still compile.
//!
//! Wire format in one paragraph (see `include/uapi/linux/netlink.h` and
//! `nfnetlink.h`): every message is a 16-byte `nlmsghdr` (length, type,
//! flags, sequence, port id; host byte order), then a 4-byte `nfgenmsg`
//! (family, version 0, resource id big-endian), then attributes. The
//! message type is `subsystem << 8 | message`. An attribute is a TLV: u16
//! length (header included, padding excluded), u16 type, value, padded to
//! 4 bytes. Attributes that contain attributes carry `NLA_F_NESTED`.

#![warn(missing_docs)]

pub mod attrs;
pub mod message;
pub mod monitor;
pub mod socket;
mod wire;

pub use attrs::{AttrIter, Attrs};
pub use message::{
    nlm_flags, write_message, DecodeError, EncodeError, MsgHeader, MsgIter, NlMsg,
    NETLINK_NETFILTER, NFGENMSG_LEN, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP,
};
pub use socket::{Socket, SocketError, SocketOptions, Until, DUMP_ATTEMPTS};
