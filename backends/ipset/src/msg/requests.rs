//! Every request banset sends to the ipset subsystem.
//!
//! All are `NLM_F_REQUEST | NLM_F_ACK`, so the kernel answers each with an
//! `NLMSG_ERROR` carrying 0 or the error; dumps end with `NLMSG_DONE`
//! instead. None carries `NLM_F_EXCL`: banset wants ipset's `-exist`
//! semantics everywhere (see [`super::nlm_flags::EXCL`]).

use std::net::IpAddr;

use super::attrs::attr_size;
use super::{
    attr, cmd, data, ipaddr, nlm_flags, write_message, Attrs, EncodeError, MsgHeader,
    FLAG_LIST_HEADER, NFPROTO_IPV4, NFPROTO_IPV6,
};

/// One entry of an add, del or test: an address, its prefix length for a
/// `hash:net` set, and for an add its timeout (0 = permanent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The address (host bits already cleared for a prefix).
    pub addr: IpAddr,
    /// The prefix length, sent for `hash:net` sets only. Without it the
    /// kernel takes a host, and TEST on a `hash:net` set then matches any
    /// member prefix containing the address.
    pub cidr: Option<u8>,
    /// Seconds; 0 is permanent in a set with timeout support. `None` on del
    /// and test.
    pub timeout: Option<u32>,
}

impl Entry {
    /// The encoded size of this entry inside an `ADT` container, line number
    /// included.
    pub fn encoded_len(&self) -> usize {
        let addr = match self.addr {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        };
        4 // DATA header
            + 4 // IP header
            + attr_size(addr)
            + self.cidr.map_or(0, |_| attr_size(1))
            + self.timeout.map_or(0, |_| attr_size(4))
            + attr_size(4) // LINENO
    }

    fn write(&self, a: &mut Attrs<'_>, lineno: Option<u32>) {
        a.nest(attr::DATA, |a| {
            a.nest(data::IP, |a| match self.addr {
                IpAddr::V4(v4) => a.net_bytes(ipaddr::V4, &v4.octets()),
                IpAddr::V6(v6) => a.net_bytes(ipaddr::V6, &v6.octets()),
            });
            if let Some(cidr) = self.cidr {
                a.u8(data::CIDR, cidr);
            }
            if let Some(timeout) = self.timeout {
                a.be32(data::TIMEOUT, timeout);
            }
            if let Some(lineno) = lineno {
                a.be32(data::LINENO, lineno);
            }
        });
    }
}

/// The `NFPROTO_*` of an address.
pub fn family_of(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => NFPROTO_IPV4,
        IpAddr::V6(_) => NFPROTO_IPV6,
    }
}

fn request(
    cmd: u8,
    extra_flags: u16,
    seq: u32,
    family: u8,
    body: impl FnOnce(&mut Attrs<'_>),
) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(64);
    let header = MsgHeader {
        cmd,
        flags: nlm_flags::REQUEST | nlm_flags::ACK | extra_flags,
        seq,
        family,
    };
    write_message(&mut buf, header, body)?;
    Ok(buf)
}

/// What a new set is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateParams<'a> {
    /// The set's name (at most 31 bytes).
    pub name: &'a str,
    /// `hash:ip` or `hash:net`.
    pub typename: &'a str,
    /// The type revision, from [`type_query`]: CREATE needs one the kernel has.
    pub revision: u8,
    /// `NFPROTO_IPV4` or `NFPROTO_IPV6`.
    pub family: u8,
    /// The default timeout in seconds. Always sent, because its presence is
    /// what gives the set timeout support; 0 makes "permanent" the default.
    pub timeout: u32,
    /// The initial number of hash buckets; the kernel grows the table later.
    pub hashsize: u32,
    /// The most entries the set may hold.
    pub maxelem: u32,
}

/// `IPSET_CMD_CREATE` without `NLM_F_EXCL`: creating a set that exists with
/// the same type and parameters succeeds, with other ones fails `EEXIST`.
pub fn create(seq: u32, p: &CreateParams<'_>) -> Result<Vec<u8>, EncodeError> {
    request(cmd::CREATE, nlm_flags::CREATE, seq, p.family, |a| {
        a.str(attr::SETNAME, p.name);
        a.str(attr::TYPENAME, p.typename);
        a.u8(attr::REVISION, p.revision);
        a.u8(attr::FAMILY, p.family);
        a.nest(attr::DATA, |a| {
            a.be32(data::TIMEOUT, p.timeout);
            a.be32(data::HASHSIZE, p.hashsize);
            a.be32(data::MAXELEM, p.maxelem);
        });
    })
}

/// `IPSET_CMD_DESTROY`, `IPSET_CMD_FLUSH`: a command on one set by name.
pub fn on_set(cmd: u8, seq: u32, family: u8, name: &str) -> Result<Vec<u8>, EncodeError> {
    request(cmd, 0, seq, family, |a| a.str(attr::SETNAME, name))
}

/// `IPSET_CMD_SWAP`: `from` takes `to`'s name and content and vice versa.
pub fn swap(seq: u32, family: u8, from: &str, to: &str) -> Result<Vec<u8>, EncodeError> {
    request(cmd::SWAP, 0, seq, family, |a| {
        a.str(attr::SETNAME, from);
        a.str(attr::SETNAME2, to);
    })
}

/// `IPSET_CMD_LIST` of one set, as a dump. `header_only` sends
/// `IPSET_FLAG_LIST_HEADER` (`ipset list -t`): no entries.
pub fn list(seq: u32, family: u8, name: &str, header_only: bool) -> Result<Vec<u8>, EncodeError> {
    request(cmd::LIST, nlm_flags::DUMP, seq, family, |a| {
        a.str(attr::SETNAME, name);
        if header_only {
            a.be32(attr::FLAGS, FLAG_LIST_HEADER);
        }
    })
}

/// `IPSET_CMD_TYPE`: which revisions of `typename` the kernel has.
pub fn type_query(seq: u32, typename: &str, family: u8) -> Result<Vec<u8>, EncodeError> {
    request(cmd::TYPE, 0, seq, family, |a| {
        a.str(attr::TYPENAME, typename);
        a.u8(attr::FAMILY, family);
    })
}

/// `IPSET_CMD_TEST` of one entry: ACK when it matches, `IPSET_ERR_EXIST`
/// when it does not.
pub fn test(seq: u32, name: &str, entry: &Entry) -> Result<Vec<u8>, EncodeError> {
    request(cmd::TEST, 0, seq, family_of(&entry.addr), |a| {
        a.str(attr::SETNAME, name);
        entry.write(a, None);
    })
}

/// The most bytes of entries one `ADT` container may hold: its length is a
/// u16 that includes its own 4-byte header.
pub const MAX_ADT_BYTES: usize = u16::MAX as usize - 4;

/// How many of `entries` fit in one `ADT` container, starting at the first.
/// At least one, so that progress is always made.
pub fn entries_per_message(entries: &[Entry]) -> usize {
    let mut used = 0;
    for (i, e) in entries.iter().enumerate() {
        used += e.encoded_len();
        if used > MAX_ADT_BYTES {
            return i.max(1);
        }
    }
    entries.len()
}

/// One `IPSET_CMD_ADD` or `IPSET_CMD_DEL` carrying `entries` in an `ADT`
/// container, as `ipset restore` sends them. Entry `i` carries line number
/// `first_lineno + i`; the kernel names the failing entry by it. The
/// command-level `LINENO` is mandatory whenever `ADT` is present (without it
/// the kernel answers `IPSET_ERR_PROTOCOL`).
///
/// Use [`entries_per_message`] to size `entries`; too many fail with an
/// [`EncodeError`] rather than a truncated message.
pub fn adt(
    cmd: u8,
    seq: u32,
    family: u8,
    name: &str,
    entries: &[Entry],
    first_lineno: u32,
) -> Result<Vec<u8>, EncodeError> {
    let size: usize = entries.iter().map(Entry::encoded_len).sum();
    let mut buf = Vec::with_capacity(size + 64);
    let header = MsgHeader {
        cmd,
        flags: nlm_flags::REQUEST | nlm_flags::ACK,
        seq,
        family,
    };
    write_message(&mut buf, header, |a| {
        a.str(attr::SETNAME, name);
        a.be32(attr::LINENO, 0);
        a.nest(attr::ADT, |a| {
            for (i, e) in entries.iter().enumerate() {
                e.write(a, Some(first_lineno.wrapping_add(i as u32)));
            }
        });
    })?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::super::{MsgIter, NLMSG_HDRLEN};
    use super::*;

    /// The header every request starts with, for golden comparisons.
    fn head(len: u32, cmd: u8, flags: u16, seq: u32, family: u8) -> Vec<u8> {
        [
            &len.to_ne_bytes()[..],
            &(0x0600u16 | u16::from(cmd)).to_ne_bytes(),
            &flags.to_ne_bytes(),
            &seq.to_ne_bytes(),
            &0u32.to_ne_bytes(),
            &[family, 0, 0, 0],        // nfgenmsg
            &[5, 0, 1, 0, 7, 0, 0, 0], // PROTOCOL = 7
        ]
        .concat()
    }

    #[test]
    fn create_hash_net_with_timeout_and_sizes() {
        let got = create(
            3,
            &CreateParams {
                name: "f2b",
                typename: "hash:net",
                revision: 7,
                family: NFPROTO_IPV4,
                timeout: 3600,
                hashsize: 1024,
                maxelem: 1 << 20,
            },
        )
        .unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(96, cmd::CREATE, 0x405, 3, 2)[..], // REQUEST|ACK|CREATE
            &[8, 0, 2, 0], b"f2b\0",                 // SETNAME
            &[13, 0, 3, 0], b"hash:net\0\0\0\0",     // TYPENAME, padded
            &[5, 0, 4, 0, 7, 0, 0, 0],               // REVISION 7
            &[5, 0, 5, 0, 2, 0, 0, 0],               // FAMILY inet
            &[28, 0, 7, 0x80],                       // DATA (nested)
            &[8, 0, 6, 0x40], &3600u32.to_be_bytes(),   // TIMEOUT, NET_BYTEORDER
            &[8, 0, 18, 0x40], &1024u32.to_be_bytes(),  // HASHSIZE
            &[8, 0, 19, 0x40], &(1u32 << 20).to_be_bytes(), // MAXELEM
        ].concat();
        assert_eq!(got, want);
    }

    #[test]
    fn add_batch_with_per_entry_line_numbers() {
        let entries = [
            Entry {
                addr: Ipv4Addr::new(192, 0, 2, 1).into(),
                cidr: None,
                timeout: Some(600),
            },
            Entry {
                addr: Ipv4Addr::new(198, 51, 100, 0).into(),
                cidr: Some(24),
                timeout: Some(0),
            },
        ];
        let got = adt(cmd::ADD, 9, NFPROTO_IPV4, "f2b", &entries, 1).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(120, cmd::ADD, 0x5, 9, 2)[..],      // REQUEST|ACK, no EXCL (-exist)
            &[8, 0, 2, 0], b"f2b\0",                  // SETNAME
            &[8, 0, 9, 0x40], &0u32.to_be_bytes(),    // command-level LINENO (mandatory)
            &[76, 0, 8, 0x80],                        // ADT (nested)
            &[32, 0, 7, 0x80],                        //   DATA
            &[12, 0, 1, 0x80],                        //     IP (nested)
            &[8, 0, 1, 0x40], &[192, 0, 2, 1],        //       IPADDR_IPV4, NET_BYTEORDER
            &[8, 0, 6, 0x40], &600u32.to_be_bytes(),  //     TIMEOUT 600
            &[8, 0, 9, 0x40], &1u32.to_be_bytes(),    //     LINENO 1
            &[40, 0, 7, 0x80],                        //   DATA
            &[12, 0, 1, 0x80],                        //     IP
            &[8, 0, 1, 0x40], &[198, 51, 100, 0],     //       IPADDR_IPV4
            &[5, 0, 3, 0, 24, 0, 0, 0],               //     CIDR 24
            &[8, 0, 6, 0x40], &0u32.to_be_bytes(),    //     TIMEOUT 0 = permanent
            &[8, 0, 9, 0x40], &2u32.to_be_bytes(),    //     LINENO 2
        ].concat();
        assert_eq!(got, want);
        assert_eq!(entries[0].encoded_len() + entries[1].encoded_len(), 72);
    }

    #[test]
    fn del_and_test_of_an_ipv6_host() {
        let v6 = Entry {
            addr: "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
            cidr: None,
            timeout: None,
        };
        let del = adt(cmd::DEL, 4, NFPROTO_IPV6, "f2b6", &[v6], 5).unwrap();
        let mut addr = vec![20, 0, 2, 0x40]; // IPADDR_IPV6, NET_BYTEORDER
        addr.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(88, cmd::DEL, 0x5, 4, 10)[..],      // family inet6
            &[9, 0, 2, 0], b"f2b6\0\0\0\0",           // SETNAME
            &[8, 0, 9, 0x40], &0u32.to_be_bytes(),    // LINENO
            &[40, 0, 8, 0x80],                        // ADT
            &[36, 0, 7, 0x80],                        //   DATA
            &[24, 0, 1, 0x80], &addr,                 //     IP { IPADDR_IPV6 }
            &[8, 0, 9, 0x40], &5u32.to_be_bytes(),    //     LINENO 5
        ].concat();
        assert_eq!(del, want);

        let got = test(8, "f2b6", &v6).unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(68, cmd::TEST, 0x5, 8, 10)[..],
            &[9, 0, 2, 0], b"f2b6\0\0\0\0",           // SETNAME
            &[28, 0, 7, 0x80],                        // DATA, no LINENO
            &[24, 0, 1, 0x80], &addr,                 //   IP { IPADDR_IPV6 }
        ].concat();
        assert_eq!(got, want);
    }

    #[test]
    fn swap_list_and_type() {
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(44, cmd::SWAP, 0x5, 1, 2)[..],
            &[8, 0, 2, 0], b"tmp\0",                  // SETNAME
            &[8, 0, 3, 0], b"f2b\0",                  // SETNAME2 (the TYPENAME id)
        ].concat();
        assert_eq!(swap(1, NFPROTO_IPV4, "tmp", "f2b").unwrap(), want);

        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(44, cmd::LIST, 0x305, 2, 2)[..],    // REQUEST|ACK|DUMP
            &[8, 0, 2, 0], b"f2b\0",                  // SETNAME
            &[8, 0, 6, 0x40], &4u32.to_be_bytes(),    // FLAGS = IPSET_FLAG_LIST_HEADER
        ].concat();
        assert_eq!(list(2, NFPROTO_IPV4, "f2b", true).unwrap(), want);
        assert_eq!(list(2, NFPROTO_IPV4, "f2b", false).unwrap().len(), 36);

        #[rustfmt::skip]
        let want: Vec<u8> = [
            &head(48, cmd::TYPE, 0x5, 3, 10)[..],
            &[12, 0, 3, 0], b"hash:ip\0",             // TYPENAME
            &[5, 0, 5, 0, 10, 0, 0, 0],               // FAMILY inet6
        ].concat();
        assert_eq!(type_query(3, "hash:ip", NFPROTO_IPV6).unwrap(), want);

        let destroy = on_set(cmd::DESTROY, 5, NFPROTO_IPV4, "f2b").unwrap();
        assert_eq!(&destroy[4..6], &0x0603u16.to_ne_bytes());
    }

    #[test]
    fn chunks_stay_below_the_attribute_limit() {
        let entries: Vec<Entry> = (0..10_000u32)
            .map(|i| Entry {
                addr: Ipv6Addr::from(u128::from(i)).into(),
                cidr: Some(128),
                timeout: Some(i),
            })
            .collect();
        let mut start = 0;
        let mut messages = 0;
        while start < entries.len() {
            let n = entries_per_message(&entries[start..]);
            let msg = adt(
                cmd::ADD,
                1,
                NFPROTO_IPV6,
                "x",
                &entries[start..start + n],
                start as u32 + 1,
            )
            .unwrap();
            assert_eq!(MsgIter::new(&msg).count(), 1);
            assert!(msg.len() - NLMSG_HDRLEN < 65_535 + 64);
            start += n;
            messages += 1;
        }
        // 52 bytes per entry: 1,260 per message.
        assert_eq!(messages, 8);
        assert!(adt(cmd::ADD, 1, NFPROTO_IPV6, "x", &entries[..2_000], 1).is_err());
        assert_eq!(entries_per_message(&[]), 0);
    }
}
