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
//! The framing and the attribute TLVs are the same for every nfnetlink
//! subsystem and live in `banset-netlink`; they are re-exported here.
//!
//! - [`attrs`]: the TLV writer and reader (from `banset-netlink`);
//! - [`requests`]: every request banset sends, and the chunking of entries
//!   into `ADT` messages below netlink's 64 KiB attribute limit;
//! - [`replies`]: set headers, listed entries, type revisions and the line
//!   number of a failing entry.

pub mod replies;
pub mod requests;

pub use banset_netlink::attrs;
pub use banset_netlink::{
    nlm_flags, AttrIter, Attrs, DecodeError, EncodeError, MsgIter, NlMsg, NETLINK_NETFILTER,
    NFGENMSG_LEN, NFPROTO_IPV4, NFPROTO_IPV6, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
};
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
    let header = banset_netlink::MsgHeader {
        ty: ipset_type(header.cmd),
        flags: header.flags,
        seq: header.seq,
        family: header.family,
        res_id: 0,
    };
    banset_netlink::write_message(buf, header, |attrs| {
        attrs.u8(attr::PROTOCOL, IPSET_PROTOCOL);
        body(attrs);
    })
}

/// What an ipset reply is, on top of the generic [`NlMsg`].
pub trait IpsetMessage<'a> {
    /// The ipset command when this is an ipset message.
    fn ipset_cmd(&self) -> Option<u8>;
    /// The attributes of an ipset message, after its `nfgenmsg`.
    fn ipset_attrs(&self) -> Result<AttrIter<'a>, DecodeError>;
}

impl<'a> IpsetMessage<'a> for NlMsg<'a> {
    fn ipset_cmd(&self) -> Option<u8> {
        self.subsys_msg(NFNL_SUBSYS_IPSET)
    }

    fn ipset_attrs(&self) -> Result<AttrIter<'a>, DecodeError> {
        self.attrs_of("ipset message")
    }
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
        let attrs: Vec<_> = msgs[0]
            .ipset_attrs()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
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
}
