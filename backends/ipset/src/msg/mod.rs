//! Pure encoding and decoding of the ipset netlink messages banset uses.
//! No syscalls here: everything is bytes in, bytes out, so it compiles on
//! every OS and is unit-tested with golden bytes.
//!
//! Wire format in one paragraph (see `include/uapi/linux/netlink.h`,
//! `nfnetlink.h` and `netfilter/ipset/ip_set.h`): every message is a 16-byte
//! `nlmsghdr` (length, type, flags, sequence, port id; host byte order),
//! then a 4-byte `nfgenmsg` (family, version 0, resource id 0), then
//! attributes. The message type is `NFNL_SUBSYS_IPSET << 8 | command`.
//! Every request starts with `IPSET_ATTR_PROTOCOL` (u8 7). An attribute is a
//! TLV: u16 length (header included, padding excluded), u16 type, value,
//! padded to 4 bytes. u32 values and addresses are big-endian and flagged
//! `NLA_F_NET_BYTEORDER`; containers are flagged `NLA_F_NESTED`.
//!
//! Unlike nf_tables, ipset has no transactions: a message that carries many
//! entries (an `ADT` container) is applied entry by entry, and the first
//! failing entry stops the rest of that message. Each entry carries its own
//! line number, which the kernel hands back in its error reply, so a failure
//! names the entry (see [`replies::error_lineno`]).
//!
//! - [`attrs`]: the TLV writer and reader;
//! - [`requests`]: every request banset sends, and the chunking of entries
//!   into `ADT` messages below netlink's 64 KiB attribute limit;
//! - [`replies`]: set headers, listed entries, type revisions and the line
//!   number of a failing entry.

pub mod attrs;
pub mod replies;
pub mod requests;

use std::fmt;

pub use attrs::{AttrIter, Attrs};

/// `NETLINK_NETFILTER`, the netlink protocol of nfnetlink.
pub const NETLINK_NETFILTER: i32 = 12;
/// `NFNL_SUBSYS_IPSET`: the high byte of every ipset message type.
pub const NFNL_SUBSYS_IPSET: u16 = 6;
/// `IPSET_PROTOCOL`: the protocol version in every request. Kernels answer
/// 7 with a minimum of 6; 7 is what `ipset` 7.x speaks.
pub const IPSET_PROTOCOL: u8 = 7;
/// `IPSET_MAXNAMELEN` minus the NUL: the longest set name.
pub const MAX_SET_NAME: usize = 31;
/// `IPSET_MAX_TIMEOUT`: the longest timeout, in seconds, the kernel keeps;
/// larger values are silently clamped to it, so banset refuses them instead.
pub const MAX_TIMEOUT_SECS: u32 = 2_147_483;

/// `enum ipset_cmd`.
pub mod cmd {
    /// `IPSET_CMD_CREATE`: create a set (idempotent without `NLM_F_EXCL`).
    pub const CREATE: u8 = 2;
    /// `IPSET_CMD_DESTROY`: destroy a set; absent is fine without `NLM_F_EXCL`.
    pub const DESTROY: u8 = 3;
    /// `IPSET_CMD_FLUSH`: remove every entry of a set.
    pub const FLUSH: u8 = 4;
    /// `IPSET_CMD_SWAP`: exchange two sets of the same type, atomically; rules
    /// that referenced the first name now see the other content.
    pub const SWAP: u8 = 6;
    /// `IPSET_CMD_LIST`: dump a set's header and entries.
    pub const LIST: u8 = 7;
    /// `IPSET_CMD_ADD`: add entries, refreshing present ones without `NLM_F_EXCL`.
    pub const ADD: u8 = 9;
    /// `IPSET_CMD_DEL`: delete entries; absent is fine without `NLM_F_EXCL`.
    pub const DEL: u8 = 10;
    /// `IPSET_CMD_TEST`: ACK when the entry matches, `IPSET_ERR_EXIST` when not.
    pub const TEST: u8 = 11;
    /// `IPSET_CMD_TYPE`: the revisions of a set type the kernel supports.
    pub const TYPE: u8 = 13;
}

/// Command-level attributes (`IPSET_ATTR_*`, first enum of `ip_set.h`).
pub mod attr {
    /// u8: protocol version.
    pub const PROTOCOL: u16 = 1;
    /// string: set name.
    pub const SETNAME: u16 = 2;
    /// string: set type name (`hash:ip`); the second set name for SWAP.
    pub const TYPENAME: u16 = 3;
    /// string: `IPSET_ATTR_SETNAME2`, the same id as TYPENAME.
    pub const SETNAME2: u16 = 3;
    /// u8: set type revision.
    pub const REVISION: u16 = 4;
    /// u8: set family (`NFPROTO_IPV4`/`_IPV6`).
    pub const FAMILY: u16 = 5;
    /// u32: command flags (`IPSET_FLAG_LIST_HEADER`).
    pub const FLAGS: u16 = 6;
    /// nested: one entry, the create parameters, or a listed header.
    pub const DATA: u16 = 7;
    /// nested: a list of DATA (batched add/del, listed entries).
    pub const ADT: u16 = 8;
    /// u32: line number; mandatory at command level when ADT is present.
    pub const LINENO: u16 = 9;
    /// u8: lowest supported revision (TYPE reply).
    pub const REVISION_MIN: u16 = 10;
}

/// Attributes inside DATA (`IPSET_ATTR_*`, the "CADT" and create enums).
pub mod data {
    /// nested: the address, holding [`super::ipaddr::V4`] or [`super::ipaddr::V6`].
    pub const IP: u16 = 1;
    /// u8: prefix length (hash:net).
    pub const CIDR: u16 = 3;
    /// u32: seconds (create: the default; add: the entry's; list: left).
    pub const TIMEOUT: u16 = 6;
    /// u32: entry flags (`IPSET_FLAG_NOMATCH`).
    pub const CADT_FLAGS: u16 = 8;
    /// u32: the entry's line number, echoed in the error reply.
    pub const LINENO: u16 = 9;
    /// u32: initial hash size (create).
    pub const HASHSIZE: u16 = 18;
    /// u32: maximal number of entries (create).
    pub const MAXELEM: u16 = 19;
    /// u32: current number of entries (list header).
    pub const ELEMENTS: u16 = 24;
    /// u32: references from rules and other sets (list header).
    pub const REFERENCES: u16 = 25;
}

/// Inside [`data::IP`].
pub mod ipaddr {
    /// 4 bytes, network order.
    pub const V4: u16 = 1;
    /// 16 bytes, network order.
    pub const V6: u16 = 2;
}

/// `IPSET_FLAG_LIST_HEADER`: a LIST that stops after each set's header.
pub const FLAG_LIST_HEADER: u32 = 1 << 2;
/// `IPSET_FLAG_NOMATCH`: an entry that excludes rather than matches (only an
/// admin's `ipset add ... nomatch` makes one; it is no ban).
pub const FLAG_NOMATCH: u32 = 1 << 2;

/// The ipset error codes (`enum ipset_errno`); the kernel returns `-code` in
/// `NLMSG_ERROR`, next to plain errnos.
pub mod errcode {
    /// A malformed request, or one for another family.
    pub const PROTOCOL: i32 = 4097;
    /// No such set type or revision in the kernel.
    pub const FIND_TYPE: i32 = 4098;
    /// The kernel's limit on the number of sets.
    pub const MAX_SETS: i32 = 4099;
    /// The set is referenced (by an iptables rule) and cannot be destroyed.
    pub const BUSY: i32 = 4100;
    /// SWAP: the second set does not exist.
    pub const EXIST_SETNAME2: i32 = 4101;
    /// SWAP or RENAME between sets of different types.
    pub const TYPE_MISMATCH: i32 = 4102;
    /// The entry exists (with `NLM_F_EXCL`), or TEST found no match.
    pub const EXIST: i32 = 4103;
    /// A prefix length the set type refuses (0, or too long).
    pub const INVALID_CIDR: i32 = 4104;
    /// Refused netmask.
    pub const INVALID_NETMASK: i32 = 4105;
    /// Refused family.
    pub const INVALID_FAMILY: i32 = 4106;
    /// A timeout given to a set created without timeout support.
    pub const TIMEOUT: i32 = 4107;
    /// The set is referenced and cannot be renamed or swapped.
    pub const REFERENCED: i32 = 4108;
    /// An IPv4 address was expected.
    pub const IPADDR_IPV4: i32 = 4109;
    /// An IPv6 address was expected.
    pub const IPADDR_IPV6: i32 = 4110;
    /// The hash set holds `maxelem` entries (first type-specific code).
    pub const HASH_FULL: i32 = 4352;
}

/// `nlmsghdr.nlmsg_flags` bits.
pub mod nlm_flags {
    /// `NLM_F_REQUEST`: set on every message to the kernel.
    pub const REQUEST: u16 = 0x1;
    /// `NLM_F_MULTI`: one part of a multipart answer (dumps).
    pub const MULTI: u16 = 0x2;
    /// `NLM_F_ACK`: ask for an `NLMSG_ERROR` carrying 0 on success.
    pub const ACK: u16 = 0x4;
    /// `NLM_F_ROOT | NLM_F_MATCH`.
    pub const DUMP: u16 = 0x300;
    /// `NLM_F_EXCL`: strict semantics. Never sent by banset: without it an
    /// existing entry is refreshed and an absent one deleted without error
    /// (`ipset -exist`), and CREATE of an identical set succeeds.
    pub const EXCL: u16 = 0x200;
    /// `NLM_F_CREATE`: on CREATE, as `ipset` sends it.
    pub const CREATE: u16 = 0x400;
}

/// `NLMSG_ERROR`: an error, or with code 0 an ACK; see [`NlMsg::error_code`].
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump; see [`NlMsg::done_code`].
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_HDRLEN`: the size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// The size of `struct nfgenmsg`.
pub const NFGENMSG_LEN: usize = 4;
/// `NFPROTO_IPV4`: ipset's `family inet`.
pub const NFPROTO_IPV4: u8 = 2;
/// `NFPROTO_IPV6`: ipset's `family inet6`.
pub const NFPROTO_IPV6: u8 = 10;

/// The full `nlmsg_type` of an ipset command.
pub fn ipset_type(cmd: u8) -> u16 {
    (NFNL_SUBSYS_IPSET << 8) | u16::from(cmd)
}

/// The header fields of one outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHeader {
    /// The ipset command ([`cmd`]).
    pub cmd: u8,
    /// `nlmsg_flags`: [`nlm_flags`] bits.
    pub flags: u16,
    /// `nlmsg_seq`: echoed in the kernel's reply, which is how a reply is
    /// matched to its request.
    pub seq: u32,
    /// `nfgenmsg.nfgen_family`: the set's `NFPROTO_*`.
    pub family: u8,
}

/// Writes one complete request (header, `nfgenmsg`, `PROTOCOL`, then what
/// `body` adds) at the end of `buf` and patches its length. Fails, leaving
/// `buf` as it was, when an attribute outgrew its u16 length field.
pub fn write_message(
    buf: &mut Vec<u8>,
    header: MsgHeader,
    body: impl FnOnce(&mut Attrs<'_>),
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    buf.extend_from_slice(&ipset_type(header.cmd).to_ne_bytes());
    buf.extend_from_slice(&header.flags.to_ne_bytes());
    buf.extend_from_slice(&header.seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: 0 = the kernel
    buf.push(header.family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&0u16.to_be_bytes()); // res_id
    let mut attrs = Attrs::new(buf);
    attrs.u8(attr::PROTOCOL, IPSET_PROTOCOL);
    body(&mut attrs);
    let overflow = attrs.overflowed();
    let len = buf.len() - start;
    match u32::try_from(len) {
        Ok(len) if !overflow => {
            buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
            Ok(())
        }
        _ => {
            buf.truncate(start);
            Err(EncodeError(
                "an attribute is longer than netlink's 65,535-byte limit",
            ))
        }
    }
}

/// Building a message failed: a bug in banset's chunking or a name that
/// slipped past validation, never a kernel answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError(pub &'static str);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for EncodeError {}

/// A reply from the kernel did not parse. Replies are untrusted input as far
/// as this crate is concerned: a malformed one is an error, never a panic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl DecodeError {
    pub(crate) fn new(what: impl Into<String>) -> DecodeError {
        DecodeError(what.into())
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed netlink reply: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// One received netlink message, borrowed from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: [`NLMSG_ERROR`], [`NLMSG_DONE`], or an ipset type.
    pub ty: u16,
    /// `nlmsg_flags` ([`nlm_flags`]); `MULTI` marks a dump part.
    pub flags: u16,
    /// `nlmsg_seq`: the sequence number of the request this answers.
    pub seq: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// For `NLMSG_ERROR`: the error (positive: an errno or an ipset code),
    /// 0 for an ACK.
    pub fn error_code(&self) -> Result<i32, DecodeError> {
        let raw = self
            .payload
            .get(..4)
            .ok_or_else(|| DecodeError::new("NLMSG_ERROR shorter than its error code"))?;
        let code = i32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
        Ok(code.checked_neg().unwrap_or(i32::MAX))
    }

    /// For `NLMSG_DONE`: a dump may end with a negative errno instead of 0.
    pub fn done_code(&self) -> i32 {
        match self.payload.get(..4) {
            Some(raw) => i32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]])
                .checked_neg()
                .unwrap_or(i32::MAX),
            None => 0,
        }
    }

    /// The ipset command when this is an ipset message.
    pub fn ipset_cmd(&self) -> Option<u8> {
        (self.ty >> 8 == NFNL_SUBSYS_IPSET).then_some((self.ty & 0xff) as u8)
    }

    /// The attributes of an ipset message, after its `nfgenmsg`.
    pub fn attrs(&self) -> Result<AttrIter<'a>, DecodeError> {
        self.payload
            .get(NFGENMSG_LEN..)
            .map(AttrIter::new)
            .ok_or_else(|| DecodeError::new("ipset message shorter than nfgenmsg"))
    }
}

/// Walks the messages of one received datagram.
#[derive(Clone, Debug)]
pub struct MsgIter<'a> {
    rest: &'a [u8],
}

impl<'a> MsgIter<'a> {
    /// Iterates over the messages in `buf`, as received from the socket.
    /// A malformed message yields an error and ends the iteration.
    pub fn new(buf: &'a [u8]) -> MsgIter<'a> {
        MsgIter { rest: buf }
    }
}

impl<'a> Iterator for MsgIter<'a> {
    type Item = Result<NlMsg<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let fail = |what: &str| {
            Some(Err(DecodeError::new(format!(
                "{what} ({} bytes left)",
                rest.len()
            ))))
        };
        if rest.len() < NLMSG_HDRLEN {
            self.rest = &[];
            return fail("truncated message header");
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            self.rest = &[];
            return fail("message length out of bounds");
        }
        let msg = NlMsg {
            ty: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            payload: &rest[NLMSG_HDRLEN..len],
        };
        let advance = align4(len).min(rest.len());
        self.rest = &rest[advance..];
        Some(Ok(msg))
    }
}

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_header_nfgenmsg_and_protocol() {
        let mut buf = Vec::new();
        let header = MsgHeader {
            cmd: cmd::DESTROY,
            flags: nlm_flags::REQUEST | nlm_flags::ACK,
            seq: 7,
            family: NFPROTO_IPV4,
        };
        write_message(&mut buf, header, |a| a.str(attr::SETNAME, "f2b")).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &36u32.to_ne_bytes()[..],          // nlmsg_len
            &0x0603u16.to_ne_bytes(),          // IPSET_CMD_DESTROY in subsys 6
            &5u16.to_ne_bytes(),               // REQUEST | ACK
            &7u32.to_ne_bytes(),               // seq
            &0u32.to_ne_bytes(),               // port id
            &[2, 0, 0, 0],                     // nfgenmsg: NFPROTO_IPV4, v0, res_id 0
            &[5, 0, 1, 0], &[7, 0, 0, 0],      // PROTOCOL = 7
            &[8, 0, 2, 0], b"f2b\0",           // SETNAME "f2b"
        ].concat();
        assert_eq!(buf, want);

        let msgs: Vec<_> = MsgIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].ipset_cmd(), Some(cmd::DESTROY));
        assert_eq!(msgs[0].seq, 7);
        let attrs: Vec<_> = msgs[0].attrs().unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs, vec![(1, &[7u8][..]), (2, &b"f2b\0"[..])]);
    }

    #[test]
    fn oversized_messages_are_refused_and_leave_the_buffer_alone() {
        let mut buf = vec![1, 2, 3];
        let header = MsgHeader {
            cmd: cmd::ADD,
            flags: nlm_flags::REQUEST,
            seq: 1,
            family: NFPROTO_IPV4,
        };
        let e = write_message(&mut buf, header, |a| {
            a.nest(attr::ADT, |a| {
                for _ in 0..20_000 {
                    a.be32(data::LINENO, 1);
                }
            })
        });
        assert!(e.is_err());
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        let mut bad = 100u32.to_ne_bytes().to_vec();
        bad.extend_from_slice(&[0; 12]);
        assert!(MsgIter::new(&bad).next().unwrap().is_err());
        assert!(MsgIter::new(&[1, 2, 3]).next().unwrap().is_err());
        let mut tiny = 4u32.to_ne_bytes().to_vec();
        tiny.extend_from_slice(&[0; 12]);
        let mut it = MsgIter::new(&tiny);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        let msg = NlMsg {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            payload: &[1],
        };
        assert!(msg.error_code().is_err());
        assert!(msg.attrs().is_err());
    }

    #[test]
    fn error_codes_are_positive() {
        let payload = (-errcode::HASH_FULL).to_ne_bytes();
        let msg = NlMsg {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            payload: &payload,
        };
        assert_eq!(msg.error_code().unwrap(), errcode::HASH_FULL);
        let min = i32::MIN.to_ne_bytes();
        let msg = NlMsg {
            payload: &min,
            ..msg
        };
        assert_eq!(msg.error_code().unwrap(), i32::MAX);
    }
}
