//! Pure encoding and decoding of the nf_tables netlink messages banset uses.
//! No syscalls here: everything is bytes in, bytes out, so it compiles on
//! every OS and is unit-tested with golden bytes.
//!
//! Wire format in one paragraph (see `include/uapi/linux/netlink.h`,
//! `nfnetlink.h`, `netfilter/nf_tables.h`): every message is a 16-byte
//! `nlmsghdr` (length, type, flags, sequence, port id; host byte order),
//! then a 4-byte `nfgenmsg` (family, version 0, resource id big-endian),
//! then attributes. An attribute is a TLV: u16 length (header included, padding
//! excluded), u16 type, value, padded to 4 bytes. Attributes that contain
//! attributes carry the `NLA_F_NESTED` bit in their type, as `nft` sends them.
//! Every integer *value* inside nf_tables attributes is big-endian.
//!
//! The framing and the attribute TLVs are the same for every nfnetlink
//! subsystem and live in `banset-netlink`; they are re-exported here.
//!
//! - [`attrs`]: the TLV writer and reader (from `banset-netlink`);
//! - [`objects`]: tables, chains, sets, rules (encode) and their dump replies (decode);
//! - [`elements`]: set elements, chunked by byte budget, and the linear dump parser;
//! - [`batch`]: `BATCH_BEGIN` / `BATCH_END` framing and the sequence-number bookkeeping
//!   that lets an error be traced to the message (and elements) that caused it.

pub mod batch;
pub mod elements;
pub mod objects;

pub use banset_netlink::attrs;
pub use banset_netlink::{
    nlm_flags, write_message, AttrIter, Attrs, DecodeError, EncodeError, MsgHeader, MsgIter, NlMsg,
    NETLINK_NETFILTER, NFGENMSG_LEN, NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_UNSPEC,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLMSG_NOOP,
};

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` / `_END`: plain message types, not in a subsystem.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 16;
/// `NFNL_MSG_BATCH_END`: closes a batch; only then does the kernel commit
/// it, all or nothing.
pub const NFNL_MSG_BATCH_END: u16 = 17;

/// `NFT_MSG_*` (`enum nf_tables_msg_types`).
pub mod msg_type {
    /// `NFT_MSG_NEWTABLE`: create a table.
    pub const NEWTABLE: u8 = 0;
    /// `NFT_MSG_GETTABLE`: get or dump tables.
    pub const GETTABLE: u8 = 1;
    /// `NFT_MSG_DELTABLE`: delete a table and everything in it.
    pub const DELTABLE: u8 = 2;
    /// `NFT_MSG_NEWCHAIN`: create a chain.
    pub const NEWCHAIN: u8 = 3;
    /// `NFT_MSG_GETCHAIN`: get or dump chains.
    pub const GETCHAIN: u8 = 4;
    /// `NFT_MSG_DELCHAIN`: delete a chain (and its rules).
    pub const DELCHAIN: u8 = 5;
    /// `NFT_MSG_NEWRULE`: add a rule.
    pub const NEWRULE: u8 = 6;
    /// `NFT_MSG_GETRULE`: get or dump rules.
    pub const GETRULE: u8 = 7;
    /// `NFT_MSG_DELRULE`: delete a rule by handle.
    pub const DELRULE: u8 = 8;
    /// `NFT_MSG_NEWSET`: create a set.
    pub const NEWSET: u8 = 9;
    /// `NFT_MSG_GETSET`: get or dump sets.
    pub const GETSET: u8 = 10;
    /// `NFT_MSG_DELSET`: delete a set.
    pub const DELSET: u8 = 11;
    /// `NFT_MSG_NEWSETELEM`: add set elements (or refresh their timeout).
    pub const NEWSETELEM: u8 = 12;
    /// `NFT_MSG_GETSETELEM`: get one element or dump them all.
    pub const GETSETELEM: u8 = 13;
    /// `NFT_MSG_DELSETELEM`: delete elements; an absent one is `ENOENT`.
    /// Without an element list, it empties the set.
    pub const DELSETELEM: u8 = 14;
    /// Like DELSETELEM, but an absent element is not an error (Linux >= 6.3).
    pub const DESTROYSETELEM: u8 = 30;
}

/// The full `nlmsg_type` of an nf_tables message.
pub fn nft_type(msg: u8) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | u16::from(msg)
}

/// The header of an nf_tables request on banset's `inet` table.
pub fn nft_header(msg: u8, flags: u16, seq: u32) -> MsgHeader {
    MsgHeader {
        ty: nft_type(msg),
        flags,
        seq,
        family: NFPROTO_INET,
        res_id: 0,
    }
}

/// What an nf_tables reply is, on top of the generic [`NlMsg`].
pub trait NftMessage<'a> {
    /// The attributes of an nf_tables message, after its `nfgenmsg`.
    fn nft_attrs(&self) -> Result<AttrIter<'a>, DecodeError>;
    /// The `NFT_MSG_*` number when this is an nf_tables message.
    fn nft_msg(&self) -> Option<u8>;
}

impl<'a> NftMessage<'a> for NlMsg<'a> {
    fn nft_attrs(&self) -> Result<AttrIter<'a>, DecodeError> {
        self.attrs_of("nf_tables message")
    }

    fn nft_msg(&self) -> Option<u8> {
        self.subsys_msg(NFNL_SUBSYS_NFTABLES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_header_and_nfgenmsg() {
        let mut buf = Vec::new();
        write_message(
            &mut buf,
            nft_header(msg_type::NEWTABLE, nlm_flags::REQUEST | nlm_flags::ACK, 7),
            |a| a.str(1, "banset"),
        )
        .unwrap();
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
        assert_eq!(msgs[0].nft_msg(), Some(msg_type::NEWTABLE));
        assert_eq!(msgs[0].seq, 7);
        let attrs: Vec<_> = msgs[0]
            .nft_attrs()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(attrs, vec![(1, &b"banset\0"[..])]);
    }
}
