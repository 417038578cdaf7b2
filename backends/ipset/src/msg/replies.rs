//! Decoding the kernel's answers: set headers and entries from LIST dumps,
//! type revisions, and the failing entry of an add or del.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::attrs::{be_u32, c_str, u8_of};
use super::{
    attr, data, ipaddr, AttrIter, DecodeError, IpsetMessage, NlMsg, FLAG_NOMATCH, NFGENMSG_LEN,
    NLMSG_HDRLEN,
};

/// A set's header, from the first part of its LIST dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetHeader {
    /// The set's name.
    pub name: String,
    /// `hash:ip`, `hash:net`, ...
    pub typename: String,
    /// `NFPROTO_IPV4` or `NFPROTO_IPV6`.
    pub family: u8,
    /// The type revision the set was created with.
    pub revision: u8,
    /// The default timeout; `None` when the set has no timeout support.
    pub timeout: Option<u32>,
    /// The most entries the set may hold.
    pub maxelem: Option<u32>,
    /// Entries held now (expired ones included until the kernel collects
    /// them).
    pub elements: Option<u32>,
    /// References from rules (an iptables `-m set` match) and other sets.
    pub references: Option<u32>,
}

/// One entry of a LIST dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListedEntry {
    /// The address, or a prefix's first address.
    pub addr: IpAddr,
    /// The prefix length (`hash:net`); `None` for `hash:ip`.
    pub cidr: Option<u8>,
    /// Seconds left; 0 is permanent. `None` in a set without timeouts.
    pub timeout: Option<u32>,
    /// An exception entry (`ipset add ... nomatch`): it unblocks, so it is
    /// not a ban.
    pub nomatch: bool,
}

/// Parses one part of a LIST dump: the set name every part carries, the
/// header the first part carries (into `header`), and the entries of its
/// `ADT` container (appended to `entries`). Returns the set name. Linear in
/// the part's size; unknown attributes are skipped.
pub fn parse_list_part(
    msg: &NlMsg<'_>,
    header: &mut Option<SetHeader>,
    entries: &mut Vec<ListedEntry>,
) -> Result<String, DecodeError> {
    let mut name = String::new();
    let mut head = SetHeader::default();
    let mut has_header = false;
    for a in msg.ipset_attrs()? {
        let (ty, value) = a?;
        match ty {
            attr::SETNAME => name = c_str(value, "set name")?.to_string(),
            attr::TYPENAME => {
                has_header = true;
                head.typename = c_str(value, "type name")?.to_string();
            }
            attr::FAMILY => head.family = u8_of(value, "family")?,
            attr::REVISION => head.revision = u8_of(value, "revision")?,
            attr::DATA => parse_header_data(value, &mut head)?,
            attr::ADT => {
                for d in AttrIter::new(value) {
                    let (ty, value) = d?;
                    if ty == attr::DATA {
                        entries.push(parse_entry(value)?);
                    }
                }
            }
            _ => {}
        }
    }
    if has_header {
        head.name = name.clone();
        *header = Some(head);
    }
    Ok(name)
}

fn parse_header_data(value: &[u8], head: &mut SetHeader) -> Result<(), DecodeError> {
    for a in AttrIter::new(value) {
        let (ty, value) = a?;
        match ty {
            data::TIMEOUT => head.timeout = Some(be_u32(value, "header timeout")?),
            data::MAXELEM => head.maxelem = Some(be_u32(value, "maxelem")?),
            data::ELEMENTS => head.elements = Some(be_u32(value, "elements")?),
            data::REFERENCES => head.references = Some(be_u32(value, "references")?),
            _ => {}
        }
    }
    Ok(())
}

fn parse_entry(value: &[u8]) -> Result<ListedEntry, DecodeError> {
    let mut addr = None;
    let mut cidr = None;
    let mut timeout = None;
    let mut nomatch = false;
    for a in AttrIter::new(value) {
        let (ty, value) = a?;
        match ty {
            data::IP => addr = Some(parse_ip(value)?),
            data::CIDR => cidr = Some(u8_of(value, "cidr")?),
            data::TIMEOUT => timeout = Some(be_u32(value, "entry timeout")?),
            data::CADT_FLAGS => nomatch = be_u32(value, "entry flags")? & FLAG_NOMATCH != 0,
            _ => {}
        }
    }
    let addr = addr.ok_or_else(|| DecodeError::new("listed entry without an address"))?;
    Ok(ListedEntry {
        addr,
        cidr,
        timeout,
        nomatch,
    })
}

/// The value of an `IP` container: one IPv4 or IPv6 address.
fn parse_ip(value: &[u8]) -> Result<IpAddr, DecodeError> {
    for a in AttrIter::new(value) {
        let (ty, value) = a?;
        match ty {
            ipaddr::V4 => {
                return <[u8; 4]>::try_from(value)
                    .map(|o| IpAddr::V4(Ipv4Addr::from(o)))
                    .map_err(|_| {
                        DecodeError::new(format!("IPv4 address of {} bytes", value.len()))
                    })
            }
            ipaddr::V6 => {
                return <[u8; 16]>::try_from(value)
                    .map(|o| IpAddr::V6(Ipv6Addr::from(o)))
                    .map_err(|_| {
                        DecodeError::new(format!("IPv6 address of {} bytes", value.len()))
                    })
            }
            _ => {}
        }
    }
    Err(DecodeError::new("address container without an address"))
}

/// The `(max, min)` revisions from an `IPSET_CMD_TYPE` reply.
pub fn parse_type(msg: &NlMsg<'_>) -> Result<(u8, u8), DecodeError> {
    let mut max = None;
    let mut min = 0;
    for a in msg.ipset_attrs()? {
        let (ty, value) = a?;
        match ty {
            attr::REVISION => max = Some(u8_of(value, "revision")?),
            attr::REVISION_MIN => min = u8_of(value, "minimal revision")?,
            _ => {}
        }
    }
    max.map(|max| (max, min))
        .ok_or_else(|| DecodeError::new("type reply without a revision"))
}

/// The line number of the entry that failed, from the payload of the
/// `NLMSG_ERROR` the kernel sends when an entry of an `ADT` message fails.
///
/// The ipset core answers such a failure with a copy of the whole request,
/// its command-level `LINENO` overwritten with the failing entry's line
/// number (`call_ad()` in `ip_set_core.c`); the value goes back in the byte
/// order it came in, big-endian here. `None` when the reply carries no
/// request copy (other errors, or `NETLINK_CAP_ACK` trimming) or no line
/// number, and for line 0, which no entry has.
pub fn error_lineno(error_payload: &[u8]) -> Option<u32> {
    let echoed = error_payload.get(4..)?;
    let len = u32::from_ne_bytes(echoed.get(..4)?.try_into().ok()?) as usize;
    let attrs = echoed.get(NLMSG_HDRLEN + NFGENMSG_LEN..len.min(echoed.len()))?;
    AttrIter::new(attrs)
        .map_while(Result::ok)
        .find(|(ty, _)| *ty == attr::LINENO)
        .and_then(|(_, v)| be_u32(v, "line number").ok())
        .filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::super::{errcode, requests, MsgIter, NLMSG_ERROR};
    use super::*;

    /// A LIST dump part as the kernel builds it (`ip_set_dump_do()`), for
    /// a hash:net inet set with two entries.
    #[rustfmt::skip]
    fn list_part(first: bool) -> Vec<u8> {
        let mut attrs: Vec<u8> = [
            &[5, 0, 1, 0, 7, 0, 0, 0][..],             // PROTOCOL 7
            &[8, 0, 2, 0], b"f2b\0",                   // SETNAME
        ].concat();
        if first {
            attrs.extend_from_slice(&[
                &[13, 0, 3, 0][..], b"hash:net\0\0\0\0", // TYPENAME
                &[5, 0, 5, 0, 2, 0, 0, 0],             // FAMILY inet
                &[5, 0, 4, 0, 7, 0, 0, 0],             // REVISION 7
                &[44, 0, 7, 0x80],                     // DATA: the header
                &[8, 0, 6, 0x40], &0u32.to_be_bytes(), //   TIMEOUT 0 (support, no default)
                &[8, 0, 19, 0x40], &16u32.to_be_bytes(), // MAXELEM 16
                &[8, 0, 18, 0x40], &1024u32.to_be_bytes(), // HASHSIZE
                &[8, 0, 25, 0x40], &1u32.to_be_bytes(),  // REFERENCES 1
                &[8, 0, 24, 0x40], &2u32.to_be_bytes(),  // ELEMENTS 2
            ].concat());
        }
        attrs.extend_from_slice(&[
            &[68, 0, 8, 0x80][..],                     // ADT
            &[32, 0, 7, 0x80],                         //   DATA
            &[12, 0, 1, 0x80], &[8, 0, 1, 0x40], &[10, 0, 0, 0], // IP { IPADDR_IPV4 10.0.0.0 }
            &[5, 0, 3, 0, 8, 0, 0, 0],                 //     CIDR 8
            &[8, 0, 6, 0x40], &99u32.to_be_bytes(),    //     TIMEOUT 99 left
            &[32, 0, 7, 0x80],                         //   DATA
            &[12, 0, 1, 0x80], &[8, 0, 1, 0x40], &[1, 2, 3, 4], // IP { 1.2.3.4 }
            &[5, 0, 3, 0, 32, 0, 0, 0],                //     CIDR 32
            &[8, 0, 6, 0x40], &0u32.to_be_bytes(),     //     TIMEOUT 0 = permanent
        ].concat());
        let mut msg: Vec<u8> = [
            &((16 + 4 + attrs.len()) as u32).to_ne_bytes()[..],
            &0x0607u16.to_ne_bytes(),                  // IPSET_CMD_LIST
            &2u16.to_ne_bytes(),                       // NLM_F_MULTI
            &5u32.to_ne_bytes(),                       // seq
            &1234u32.to_ne_bytes(),                    // our port id
            &[2, 0, 0, 0],                             // nfgenmsg
        ].concat();
        msg.extend_from_slice(&attrs);
        msg
    }

    #[test]
    fn list_parts_give_header_and_entries() {
        let mut buf = list_part(true);
        buf.extend_from_slice(&list_part(false));
        let mut header = None;
        let mut entries = Vec::new();
        for msg in MsgIter::new(&buf) {
            let name = parse_list_part(&msg.unwrap(), &mut header, &mut entries).unwrap();
            assert_eq!(name, "f2b");
        }
        assert_eq!(
            header,
            Some(SetHeader {
                name: "f2b".into(),
                typename: "hash:net".into(),
                family: 2,
                revision: 7,
                timeout: Some(0),
                maxelem: Some(16),
                elements: Some(2),
                references: Some(1),
            })
        );
        assert_eq!(entries.len(), 4);
        assert_eq!(
            entries[0],
            ListedEntry {
                addr: "10.0.0.0".parse().unwrap(),
                cidr: Some(8),
                timeout: Some(99),
                nomatch: false,
            }
        );
        assert_eq!(entries[1].addr, "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(entries[1].timeout, Some(0));
    }

    #[test]
    fn malformed_list_parts_are_errors() {
        let mut part = list_part(false);
        // Cut the last entry's address to 3 bytes: IPv4 of the wrong size.
        let at = part.len() - 32 + 8;
        part[at] = 7;
        let msg = MsgIter::new(&part).next().unwrap().unwrap();
        assert!(parse_list_part(&msg, &mut None, &mut Vec::new()).is_err());
        // An entry without an address.
        let entry = [8u8, 0, 6, 0x40, 0, 0, 0, 1];
        assert!(parse_entry(&entry).is_err());
    }

    #[test]
    fn type_reply_revisions() {
        #[rustfmt::skip]
        let buf: Vec<u8> = [
            &56u32.to_ne_bytes()[..], &0x060du16.to_ne_bytes(), &0u16.to_ne_bytes(),
            &3u32.to_ne_bytes(), &0u32.to_ne_bytes(), &[2, 0, 0, 0],
            &[5, 0, 1, 0, 7, 0, 0, 0],                 // PROTOCOL
            &[12, 0, 3, 0], b"hash:ip\0",              // TYPENAME
            &[5, 0, 4, 0, 6, 0, 0, 0],                 // REVISION (max) 6
            &[5, 0, 10, 0, 0, 0, 0, 0],                // REVISION_MIN 0
        ].concat();
        let msg = MsgIter::new(&buf).next().unwrap().unwrap();
        assert_eq!(parse_type(&msg).unwrap(), (6, 0));
    }

    #[test]
    fn error_reply_names_the_failing_line() {
        let entries: Vec<requests::Entry> = (1..=3u8)
            .map(|i| requests::Entry {
                addr: Ipv4Addr::new(192, 0, 2, i).into(),
                cidr: None,
                timeout: Some(60),
            })
            .collect();
        let mut request = requests::adt(9, 77, 2, "f2b", &entries, 1).unwrap();
        // The kernel's copy: command-level LINENO (after PROTOCOL and
        // SETNAME) overwritten with the failing entry's, 2.
        let lineno_at = 16 + 4 + 8 + 8 + 4;
        request[lineno_at..lineno_at + 4].copy_from_slice(&2u32.to_be_bytes());
        let mut payload = (-errcode::HASH_FULL).to_ne_bytes().to_vec();
        payload.extend_from_slice(&request);
        let mut reply = ((16 + payload.len()) as u32).to_ne_bytes().to_vec();
        reply.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        reply.extend_from_slice(&0u16.to_ne_bytes());
        reply.extend_from_slice(&77u32.to_ne_bytes());
        reply.extend_from_slice(&0u32.to_ne_bytes());
        reply.extend_from_slice(&payload);
        let msg = MsgIter::new(&reply).next().unwrap().unwrap();
        assert_eq!(msg.error_code().unwrap(), errcode::HASH_FULL);
        assert_eq!(error_lineno(msg.payload), Some(2));

        // A trimmed echo (header only), a plain ACK, garbage: no line.
        assert_eq!(error_lineno(&payload[..4 + 16]), None);
        assert_eq!(error_lineno(&0i32.to_ne_bytes()), None);
        assert_eq!(error_lineno(&[0xff; 30]), None);
    }
}
