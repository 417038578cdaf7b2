//! Netlink message framing for nfnetlink: the `nlmsghdr` + `nfgenmsg`
//! header of outgoing messages, and the walk over a received datagram with
//! the `NLMSG_ERROR` / `NLMSG_DONE` codes. Subsystem-specific message types
//! and attributes (nf_tables, ipset) stay in their backends.

use crate::attrs::{AttrIter, Attrs};
use crate::wire::align4;
pub use crate::wire::{DecodeError, EncodeError};

/// `NETLINK_NETFILTER`, the netlink protocol of nfnetlink.
pub const NETLINK_NETFILTER: i32 = 12;

/// `nlmsghdr.nlmsg_flags` bits.
pub mod nlm_flags {
    /// `NLM_F_REQUEST`: set on every message to the kernel.
    pub const REQUEST: u16 = 0x1;
    /// `NLM_F_MULTI`: a reply that is one part of a multipart answer (dumps).
    pub const MULTI: u16 = 0x2;
    /// `NLM_F_ACK`: ask for an `NLMSG_ERROR` carrying 0 on success, so every
    /// message of a batch is answered.
    pub const ACK: u16 = 0x4;
    /// `NLM_F_ROOT | NLM_F_MATCH`.
    pub const DUMP: u16 = 0x300;
    /// `NLM_F_EXCL`: on a NEW request, fail with `EEXIST` if the object
    /// exists. (The same bit is `NLM_F_MATCH` on a GET request.) ipset reads
    /// it as "strict": without it an existing entry is refreshed and an
    /// absent one deleted without error (`ipset -exist`).
    pub const EXCL: u16 = 0x200;
    /// `NLM_F_CREATE`: on a NEW request, create the object if it is missing.
    pub const CREATE: u16 = 0x400;
    /// `NLM_F_APPEND`: add a rule at the end of its chain.
    pub const APPEND: u16 = 0x800;
    /// `NLM_F_DUMP_INTR`: set by the kernel on a dump part (or its
    /// `NLMSG_DONE`) when what it dumps changed since the previous part
    /// (`nl_dump_check_consistent()`): the dump as a whole may miss or
    /// repeat objects.
    pub const DUMP_INTR: u16 = 0x10;
}

/// `NLMSG_NOOP`: a control message type shared by every netlink family.
pub const NLMSG_NOOP: u16 = 1;
/// `NLMSG_ERROR`: an error, or with code 0 an ACK; see
/// [`NlMsg::error_code`].
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump; see [`NlMsg::done_code`].
pub const NLMSG_DONE: u16 = 3;

/// `NLMSG_HDRLEN`: the size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// The size of `struct nfgenmsg`, which follows the header of every
/// nfnetlink message.
pub const NFGENMSG_LEN: usize = 4;

/// `NFPROTO_UNSPEC`: the family of nfnetlink batch frames.
pub const NFPROTO_UNSPEC: u8 = 0;
/// `NFPROTO_INET`: nf_tables' `inet` family, which sees IPv4 and IPv6
/// packets alike.
pub const NFPROTO_INET: u8 = 1;
/// `NFPROTO_IPV4`: IPv4 (ipset's `family inet`, nf_tables' `meta nfproto`).
pub const NFPROTO_IPV4: u8 = 2;
/// `NFPROTO_IPV6`: IPv6 (ipset's `family inet6`, nf_tables' `meta nfproto`).
pub const NFPROTO_IPV6: u8 = 10;

/// The header fields of one outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgHeader {
    /// `nlmsg_type`: `subsystem << 8 | message` (see [`MsgHeader::subsys_type`]),
    /// or a plain type for batch frames.
    pub ty: u16,
    /// `nlmsg_flags`: [`nlm_flags`] bits.
    pub flags: u16,
    /// `nlmsg_seq`: echoed in the kernel's reply, which is how a reply is
    /// matched to its request.
    pub seq: u32,
    /// `nfgenmsg.nfgen_family`: an `NFPROTO_*` value.
    pub family: u8,
    /// `nfgenmsg.res_id`: 0, except the subsystem id on batch frames.
    pub res_id: u16,
}

impl MsgHeader {
    /// The full `nlmsg_type` of message `msg` of nfnetlink subsystem
    /// `subsys` (`NFNL_SUBSYS_*`).
    pub fn subsys_type(subsys: u16, msg: u8) -> u16 {
        (subsys << 8) | u16::from(msg)
    }
}

/// Writes one complete message (header, `nfgenmsg`, attributes) at the end of
/// `buf` and patches its length. Fails, leaving `buf` as it was, when an
/// attribute outgrew its u16 length field: the kernel would otherwise read a
/// wrapped length and, for element lists, silently apply nothing.
pub fn write_message(
    buf: &mut Vec<u8>,
    header: MsgHeader,
    body: impl FnOnce(&mut Attrs<'_>),
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    buf.extend_from_slice(&header.ty.to_ne_bytes());
    buf.extend_from_slice(&header.flags.to_ne_bytes());
    buf.extend_from_slice(&header.seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: 0 = the kernel
    buf.push(header.family);
    buf.push(0); // NFNETLINK_V0
    buf.extend_from_slice(&header.res_id.to_be_bytes());
    let mut attrs = Attrs::new(buf);
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

/// One received netlink message, borrowed from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: [`NLMSG_ERROR`], [`NLMSG_DONE`], or a subsystem's type
    /// (see [`NlMsg::subsys_msg`]).
    pub ty: u16,
    /// `nlmsg_flags` ([`nlm_flags`]); `MULTI` marks a dump part.
    pub flags: u16,
    /// `nlmsg_seq`: the sequence number of the request this answers.
    pub seq: u32,
    /// Everything after the 16-byte header.
    pub payload: &'a [u8],
}

impl<'a> NlMsg<'a> {
    /// For `NLMSG_ERROR`: the error (positive: an errno, or a subsystem's
    /// own code such as ipset's), 0 for an ACK.
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

    /// The message number when this message belongs to nfnetlink subsystem
    /// `subsys`.
    pub fn subsys_msg(&self, subsys: u16) -> Option<u8> {
        (self.ty >> 8 == subsys).then_some((self.ty & 0xff) as u8)
    }

    /// The attributes of an nfnetlink message, after its `nfgenmsg`;
    /// `what` names the message in the error ("nf_tables message").
    pub fn attrs_of(&self, what: &str) -> Result<AttrIter<'a>, DecodeError> {
        self.payload
            .get(NFGENMSG_LEN..)
            .map(AttrIter::new)
            .ok_or_else(|| DecodeError::new(format!("{what} shorter than nfgenmsg")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_header_and_nfgenmsg() {
        let mut buf = Vec::new();
        let header = MsgHeader {
            ty: MsgHeader::subsys_type(10, 0), // NFT_MSG_NEWTABLE
            flags: nlm_flags::REQUEST | nlm_flags::ACK,
            seq: 7,
            family: NFPROTO_INET,
            res_id: 0,
        };
        write_message(&mut buf, header, |a| a.str(1, "banset")).unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
        want.extend_from_slice(&0x0a00u16.to_ne_bytes()); // NFT_MSG_NEWTABLE in subsys 10
        want.extend_from_slice(&5u16.to_ne_bytes()); // REQUEST | ACK
        want.extend_from_slice(&7u32.to_ne_bytes()); // seq
        want.extend_from_slice(&0u32.to_ne_bytes()); // port id
        want.extend_from_slice(&[1, 0, 0, 0]); // nfgenmsg: NFPROTO_INET, v0, res_id 0
        want.extend_from_slice(&[11, 0, 1, 0]); // NFTA_TABLE_NAME, len 4+7
        want.extend_from_slice(b"banset\0\0"); // NUL-terminated, padded
        assert_eq!(buf, want);

        let msgs: Vec<_> = MsgIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].subsys_msg(10), Some(0));
        assert_eq!(msgs[0].subsys_msg(6), None);
        assert_eq!(msgs[0].seq, 7);
        let attrs: Vec<_> = msgs[0]
            .attrs_of("test message")
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attrs, vec![(1, &b"banset\0"[..])]);
    }

    #[test]
    fn res_id_is_big_endian() {
        let mut buf = Vec::new();
        let header = MsgHeader {
            ty: 16, // NFNL_MSG_BATCH_BEGIN
            flags: nlm_flags::REQUEST,
            seq: 1,
            family: NFPROTO_UNSPEC,
            res_id: 10,
        };
        write_message(&mut buf, header, |_| {}).unwrap();
        assert_eq!(buf.len(), NLMSG_HDRLEN + NFGENMSG_LEN);
        assert_eq!(&buf[16..], &[0, 0, 0, 10]);
    }

    #[test]
    fn oversized_messages_are_refused_and_leave_the_buffer_alone() {
        let mut buf = vec![1, 2, 3];
        let header = MsgHeader {
            ty: MsgHeader::subsys_type(6, 9), // IPSET_CMD_ADD
            flags: nlm_flags::REQUEST,
            seq: 1,
            family: NFPROTO_IPV4,
            res_id: 0,
        };
        let e = write_message(&mut buf, header, |a| {
            a.nest(8, |a| {
                for _ in 0..20_000 {
                    a.be32(9, 1);
                }
            })
        });
        assert!(e.is_err());
        assert_eq!(buf, [1, 2, 3]);
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        // Length field larger than the datagram.
        let mut bad = 100u32.to_ne_bytes().to_vec();
        bad.extend_from_slice(&[0; 12]);
        assert!(MsgIter::new(&bad).next().unwrap().is_err());
        // Shorter than a header.
        assert!(MsgIter::new(&[1, 2, 3]).next().unwrap().is_err());
        // Length smaller than a header would loop forever if accepted.
        let mut tiny = 4u32.to_ne_bytes().to_vec();
        tiny.extend_from_slice(&[0; 12]);
        let mut it = MsgIter::new(&tiny);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
        // An error message without its code, and without room for nfgenmsg.
        let msg = NlMsg {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            payload: &[1],
        };
        assert!(msg.error_code().is_err());
        assert!(msg.attrs_of("x").is_err());
    }

    #[test]
    fn error_codes_are_positive_errnos() {
        let payload = (-2i32).to_ne_bytes();
        let msg = NlMsg {
            ty: NLMSG_ERROR,
            flags: 0,
            seq: 1,
            payload: &payload,
        };
        assert_eq!(msg.error_code().unwrap(), 2);
        // ipset's own codes come back the same way (IPSET_ERR_HASH_FULL).
        let full = (-4352i32).to_ne_bytes();
        let msg = NlMsg {
            payload: &full,
            ..msg
        };
        assert_eq!(msg.error_code().unwrap(), 4352);
        let min = i32::MIN.to_ne_bytes();
        let msg = NlMsg {
            payload: &min,
            ..msg
        };
        assert_eq!(msg.error_code().unwrap(), i32::MAX);
    }

    #[test]
    fn done_codes() {
        let msg = NlMsg {
            ty: NLMSG_DONE,
            flags: nlm_flags::MULTI,
            seq: 1,
            payload: &[],
        };
        assert_eq!(msg.done_code(), 0);
        let enoent = (-2i32).to_ne_bytes();
        let msg = NlMsg {
            payload: &enoent,
            ..msg
        };
        assert_eq!(msg.done_code(), 2);
    }
}
