//! Set elements: adding, removing and flushing them in batches, and reading
//! them back from dumps.
//!
//! Two kernel limits shape this module (notes §3.2):
//! - the element list is one nested attribute, and a nested attribute's length
//!   is a u16. A list longer than 65,535 bytes wraps the length and the kernel
//!   then applies nothing *and sends no error*. So elements are split into
//!   several messages of at most [`ELEMENTS_BUDGET`] bytes each;
//! - a dump of 100k elements arrives as ~40 messages of ~64 KiB. The parser
//!   walks each once, borrowing from the receive buffer, so listing is linear
//!   (the crate this replaces formatted the whole buffer per element).

use std::ops::Range;

use super::attrs::{attr_size, be_u32, be_u64, AttrIter, Attrs};
use super::batch::{Batch, Op};
use super::objects::dump_request;
use super::{
    msg_type, nft_header, nlm_flags, write_message, DecodeError, EncodeError, NftMessage, NlMsg,
};

/// `NFTA_SET_ELEM_LIST_*`.
mod list_attr {
    pub const TABLE: u16 = 1;
    pub const SET: u16 = 2;
    pub const ELEMENTS: u16 = 3;
}

/// `NFTA_SET_ELEM_*`, inside `NFTA_LIST_ELEM` (1).
mod elem_attr {
    pub const LIST_ELEM: u16 = 1;
    pub const KEY: u16 = 1;
    pub const FLAGS: u16 = 3;
    pub const TIMEOUT: u16 = 4;
    pub const EXPIRATION: u16 = 5;
    pub const USERDATA: u16 = 6;
    /// `NFTA_DATA_VALUE`, inside KEY.
    pub const DATA_VALUE: u16 = 1;
}

/// `NFT_SET_ELEM_INTERVAL_END`: this key is the first address *after* a range.
pub const ELEM_INTERVAL_END: u32 = 1;

/// nft's element user data `NFTNL_UDATA_SET_ELEM_FLAGS` = `INTERVAL_OPEN`:
/// marks a range start without an end element (a range reaching the top of
/// the address space), so `nft list` prints it as a prefix. The value is a
/// host-endian u32, as nft writes it.
const UDATA_SET_ELEM_FLAGS: u8 = 1;
const SET_ELEM_F_INTERVAL_OPEN: u32 = 1;

/// Most element bytes per message: comfortably below the u16 limit of the
/// enclosing attribute, leaving room for the largest single element.
pub const ELEMENTS_BUDGET: usize = 60_000;

/// A set key as the kernel stores it: 4 or 16 address bytes, 2 port bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    bytes: [u8; 16],
    len: u8,
}

impl Key {
    /// `None` when longer than 16 bytes (no banset key is).
    pub fn new(value: &[u8]) -> Option<Key> {
        let mut bytes = [0; 16];
        bytes.get_mut(..value.len())?.copy_from_slice(value);
        Some(Key {
            bytes,
            len: value.len() as u8,
        })
    }

    /// The key bytes, as sent and as dumped.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// One element to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element {
    /// `NFTA_SET_ELEM_KEY`: the address (or port) bytes.
    pub key: Key,
    /// Milliseconds; `Some(0)` is permanent even in a set with a default
    /// timeout, `None` takes the set's default. Only sent when adding.
    pub timeout_ms: Option<u64>,
    /// The end of a range (interval sets).
    pub interval_end: bool,
    /// A range start that has no end element (see `SET_ELEM_F_INTERVAL_OPEN`).
    pub open_interval: bool,
}

impl Element {
    /// An element of `key` with the set's default timeout, not part of a range.
    pub fn new(key: Key) -> Element {
        Element {
            key,
            timeout_ms: None,
            interval_end: false,
            open_interval: false,
        }
    }

    /// Bytes this element adds to an element list.
    fn encoded_size(&self, op: ElemOp) -> usize {
        let mut size = attr_size(0) // LIST_ELEM header
            + attr_size(0) // KEY header
            + attr_size(self.key.as_bytes().len());
        if op == ElemOp::Add && self.timeout_ms.is_some() {
            size += attr_size(8);
        }
        if self.interval_end {
            size += attr_size(4);
        }
        if self.open_interval {
            size += attr_size(6);
        }
        size
    }

    fn write(&self, a: &mut Attrs<'_>, op: ElemOp) {
        a.nest(elem_attr::LIST_ELEM, |a| {
            a.nest(elem_attr::KEY, |a| {
                a.bytes(elem_attr::DATA_VALUE, self.key.as_bytes())
            });
            if op == ElemOp::Add {
                if let Some(ms) = self.timeout_ms {
                    a.u64(elem_attr::TIMEOUT, ms);
                }
            }
            if self.interval_end {
                a.u32(elem_attr::FLAGS, ELEM_INTERVAL_END);
            }
            if self.open_interval {
                let mut udata = vec![UDATA_SET_ELEM_FLAGS, 4];
                udata.extend_from_slice(&SET_ELEM_F_INTERVAL_OPEN.to_ne_bytes());
                a.bytes(elem_attr::USERDATA, &udata);
            }
        });
    }
}

/// What to do with elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemOp {
    /// NEWSETELEM without `NLM_F_EXCL`: inserts, or refreshes the timeout of
    /// an element already present.
    Add,
    /// DELSETELEM: an absent element fails the whole batch with `ENOENT`.
    Delete,
    /// DESTROYSETELEM (Linux >= 6.3): an absent element is fine.
    Destroy,
}

impl ElemOp {
    fn msg_type(self) -> u8 {
        match self {
            ElemOp::Add => msg_type::NEWSETELEM,
            ElemOp::Delete => msg_type::DELSETELEM,
            ElemOp::Destroy => msg_type::DESTROYSETELEM,
        }
    }

    fn flags(self) -> u16 {
        match self {
            ElemOp::Add => nlm_flags::CREATE,
            ElemOp::Delete | ElemOp::Destroy => 0,
        }
    }

    fn batch_op(self) -> Op {
        match self {
            ElemOp::Add => Op::AddElements,
            ElemOp::Delete | ElemOp::Destroy => Op::RemoveElements,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            ElemOp::Add => "add to",
            ElemOp::Delete | ElemOp::Destroy => "remove from",
        }
    }
}

/// Appends `elements` to the batch as as many messages as the byte budget
/// needs. A range's end element always stays in the message of its start.
/// `describe` names the elements of one message (given their index range)
/// for error messages.
pub fn set_elements(
    batch: &mut Batch,
    op: ElemOp,
    table: &str,
    set: &str,
    elements: &[Element],
    describe: &dyn Fn(Range<usize>) -> String,
) {
    let mut start = 0;
    while start < elements.len() {
        let mut end = start;
        let mut size = 0;
        while let Some(e) = elements.get(end) {
            let s = e.encoded_size(op);
            if size + s > ELEMENTS_BUDGET && end > start && !e.interval_end {
                break;
            }
            size += s;
            end += 1;
        }
        let chunk = &elements[start..end];
        batch.push(
            op.msg_type(),
            op.batch_op(),
            op.flags(),
            format!(
                "{} set inet {table} {set} ({})",
                op.verb(),
                describe(start..end)
            ),
            |a| {
                a.str(list_attr::TABLE, table);
                a.str(list_attr::SET, set);
                a.nest(list_attr::ELEMENTS, |a| {
                    for e in chunk {
                        e.write(a, op);
                    }
                });
            },
        );
        start = end;
    }
}

/// DELSETELEM without an element list empties the set.
pub fn flush_set(batch: &mut Batch, table: &str, set: &str) {
    batch.push(
        msg_type::DELSETELEM,
        Op::FlushSet,
        0,
        format!("flush set inet {table} {set}"),
        |a| {
            a.str(list_attr::TABLE, table);
            a.str(list_attr::SET, set);
        },
    );
}

/// GETSETELEM dump of every element of `set`.
pub fn get_elements(seq: u32, table: &str, set: &str) -> Result<Vec<u8>, EncodeError> {
    dump_request(msg_type::GETSETELEM, seq, |a| {
        a.str(list_attr::TABLE, table);
        a.str(list_attr::SET, set);
    })
}

/// GETSETELEM of one key: the kernel answers with the element and an ACK, or
/// with `ENOENT`.
pub fn get_element(seq: u32, table: &str, set: &str, key: Key) -> Result<Vec<u8>, EncodeError> {
    let mut buf = Vec::with_capacity(96);
    write_message(
        &mut buf,
        nft_header(
            msg_type::GETSETELEM,
            nlm_flags::REQUEST | nlm_flags::ACK,
            seq,
        ),
        |a| {
            a.str(list_attr::TABLE, table);
            a.str(list_attr::SET, set);
            a.nest(list_attr::ELEMENTS, |a| {
                Element::new(key).write(a, ElemOp::Delete)
            });
        },
    )?;
    Ok(buf)
}

/// One element from a dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElementInfo {
    /// `NFTA_SET_ELEM_KEY`.
    pub key: Key,
    /// `NFT_SET_ELEM_*` flags (`INTERVAL_END`).
    pub flags: u32,
    /// The element's own timeout, when it was given one.
    pub timeout_ms: Option<u64>,
    /// Time left; absent for an element that never expires.
    pub expiration_ms: Option<u64>,
}

impl ElementInfo {
    /// Whether this element marks the end of a range rather than a member
    /// (`NFT_SET_ELEM_INTERVAL_END`).
    pub fn is_interval_end(&self) -> bool {
        self.flags & ELEM_INTERVAL_END != 0
    }
}

/// Appends the elements of one NEWSETELEM dump message to `out`.
pub fn parse_elements(msg: &NlMsg<'_>, out: &mut Vec<ElementInfo>) -> Result<(), DecodeError> {
    for attr in msg.nft_attrs()? {
        let (ty, value) = attr?;
        if ty != list_attr::ELEMENTS {
            continue;
        }
        for elem in AttrIter::new(value) {
            let (ty, value) = elem?;
            if ty == elem_attr::LIST_ELEM {
                out.push(parse_element(value)?);
            }
        }
    }
    Ok(())
}

fn parse_element(buf: &[u8]) -> Result<ElementInfo, DecodeError> {
    let mut key = None;
    let mut flags = 0;
    let mut timeout_ms = None;
    let mut expiration_ms = None;
    for attr in AttrIter::new(buf) {
        let (ty, value) = attr?;
        match ty {
            elem_attr::KEY => {
                for data in AttrIter::new(value) {
                    let (ty, value) = data?;
                    if ty == elem_attr::DATA_VALUE {
                        key = Some(Key::new(value).ok_or_else(|| {
                            DecodeError::new(format!("element key of {} bytes", value.len()))
                        })?);
                    }
                }
            }
            elem_attr::FLAGS => flags = be_u32(value, "element flags")?,
            elem_attr::TIMEOUT => timeout_ms = Some(be_u64(value, "element timeout")?),
            elem_attr::EXPIRATION => expiration_ms = Some(be_u64(value, "element expiration")?),
            _ => {}
        }
    }
    Ok(ElementInfo {
        key: key.ok_or_else(|| DecodeError::new("element without a key"))?,
        flags,
        timeout_ms,
        expiration_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::super::MsgIter;
    use super::*;

    fn v4(a: [u8; 4]) -> Key {
        Key::new(&a).unwrap()
    }

    /// `add element inet banset f_v4net { 255.0.0.0/8 timeout 1m }` as nft
    /// sends it (minus its NFTA_SET_ELEM_LIST_SET_ID): a range reaching the
    /// top of the address space is a start element without an end, flagged
    /// open in nft's user data.
    #[test]
    fn open_interval_element_matches_nft() {
        let mut batch = Batch::new(1);
        let e = Element {
            key: v4([255, 0, 0, 0]),
            timeout_ms: Some(60_000),
            interval_end: false,
            open_interval: true,
        };
        set_elements(&mut batch, ElemOp::Add, "banset", "f_v4net", &[e], &|_| {
            "255.0.0.0/8".into()
        });
        let sealed = batch.finish().unwrap();
        let msgs: Vec<_> = MsgIter::new(sealed.bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs[1].ty, 0x0a0c);
        assert_eq!(msgs[1].flags, 0x405, "REQUEST | ACK | CREATE, no EXCL");
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[1u8, 0, 0, 0][..],                        // nfgenmsg: inet
            &[11, 0, 1, 0], b"banset\0\0",              // LIST_TABLE
            &[12, 0, 2, 0], b"f_v4net\0",               // LIST_SET
            &[44, 0, 3, 0x80],                          // LIST_ELEMENTS
            &[40, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80],                          //   KEY
            &[8, 0, 1, 0], &[255, 0, 0, 0],             //    DATA_VALUE 255.0.0.0
            &[12, 0, 4, 0], &[0, 0, 0, 0, 0, 0, 0xea, 0x60], // TIMEOUT 60,000 ms
            &[10, 0, 6, 0], &[1, 4], &SET_ELEM_F_INTERVAL_OPEN.to_ne_bytes(), &[0, 0], // USERDATA
        ].concat();
        assert_eq!(msgs[1].payload, &want[..]);
        assert_eq!(
            sealed.context(2),
            Some("add to set inet banset f_v4net (255.0.0.0/8)")
        );
    }

    #[test]
    fn interval_end_and_destroy_omit_timeouts() {
        let mut batch = Batch::new(1);
        let start = Element {
            timeout_ms: Some(5),
            ..Element::new(v4([10, 0, 0, 0]))
        };
        let end = Element {
            interval_end: true,
            ..Element::new(v4([11, 0, 0, 0]))
        };
        set_elements(
            &mut batch,
            ElemOp::Destroy,
            "t",
            "s",
            &[start, end],
            &|_| String::new(),
        );
        let sealed = batch.finish().unwrap();
        let msgs: Vec<_> = MsgIter::new(sealed.bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(msgs[1].ty, 0x0a00 | 30);
        #[rustfmt::skip]
        let want_elements: Vec<u8> = [
            &[44u8, 0, 3, 0x80][..],                    // LIST_ELEMENTS
            &[16, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[10, 0, 0, 0], // KEY 10.0.0.0, no TIMEOUT
            &[24, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[11, 0, 0, 0], // KEY 11.0.0.0
            &[8, 0, 3, 0], &[0, 0, 0, 1],               //   FLAGS = INTERVAL_END
        ].concat();
        assert!(msgs[1].payload.ends_with(&want_elements));
    }

    #[test]
    fn chunks_stay_under_the_u16_limit_and_keep_ranges_whole() {
        let mut elements = Vec::new();
        for i in 0..30_000u32 {
            let start = Element {
                timeout_ms: Some(1000),
                ..Element::new(Key::new(&(i * 2).to_be_bytes()).unwrap())
            };
            let end = Element {
                interval_end: true,
                ..Element::new(Key::new(&(i * 2 + 1).to_be_bytes()).unwrap())
            };
            elements.push(start);
            elements.push(end);
        }
        let mut batch = Batch::new(1);
        set_elements(&mut batch, ElemOp::Add, "banset", "s", &elements, &|r| {
            format!("{}..{}", r.start, r.end)
        });
        let chunks = batch.len();
        let sealed = batch.finish().unwrap();
        let mut seen = Vec::new();
        for msg in MsgIter::new(sealed.bytes()).skip(1).take(chunks) {
            let msg = msg.unwrap();
            assert!(msg.payload.len() < 65_000, "{}", msg.payload.len());
            let mut out = Vec::new();
            parse_elements(&msg, &mut out).unwrap();
            assert!(
                !out[0].is_interval_end(),
                "a chunk never starts with an end"
            );
            assert!(out.last().unwrap().is_interval_end());
            seen.extend(out);
        }
        assert_eq!(seen.len(), elements.len());
        assert!(chunks > 1);
        assert_eq!(
            sealed.context(2).unwrap(),
            format!("add to set inet banset s (0..{})", {
                let first = MsgIter::new(sealed.bytes()).nth(1).unwrap().unwrap();
                let mut out = Vec::new();
                parse_elements(&first, &mut out).unwrap();
                out.len()
            })
        );
    }

    #[test]
    fn flush_and_single_get_requests() {
        let mut batch = Batch::new(1);
        flush_set(&mut batch, "banset", "s_v4");
        let sealed = batch.finish().unwrap();
        let msg = MsgIter::new(sealed.bytes()).nth(1).unwrap().unwrap();
        assert_eq!(msg.ty, 0x0a0e);
        assert_eq!(
            msg.nft_attrs().unwrap().count(),
            2,
            "table and set, no elements"
        );

        let req = get_element(9, "banset", "s_v4", v4([1, 2, 3, 4])).unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!((msg.ty, msg.flags), (0x0a0d, 0x5));
        let req = get_elements(9, "banset", "s_v4").unwrap();
        let msg = MsgIter::new(&req).next().unwrap().unwrap();
        assert_eq!((msg.ty, msg.flags), (0x0a0d, 0x301));
    }

    /// A dump reply as 6.18 sends it for `10.0.0.0/8 timeout 5m` in an
    /// interval set: the end element first (flag 1), then the start with
    /// TIMEOUT and EXPIRATION.
    #[test]
    fn parses_dump_replies() {
        #[rustfmt::skip]
        let payload: Vec<u8> = [
            &[1u8, 0, 0, 0][..],                        // nfgenmsg
            &[11, 0, 1, 0], b"banset\0\0",              // LIST_TABLE
            &[12, 0, 2, 0], b"f_v4net\0",               // LIST_SET
            &[68, 0, 3, 0x80],                          // LIST_ELEMENTS
            &[24, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[11, 0, 0, 0], // KEY 11.0.0.0
            &[8, 0, 3, 0], &[0, 0, 0, 1],               //   FLAGS = INTERVAL_END
            &[40, 0, 1, 0x80],                          //  LIST_ELEM
            &[12, 0, 1, 0x80], &[8, 0, 1, 0], &[10, 0, 0, 0], // KEY 10.0.0.0
            &[12, 0, 4, 0], &300_000u64.to_be_bytes(),  //   TIMEOUT
            &[12, 0, 5, 0], &299_996u64.to_be_bytes(),  //   EXPIRATION
        ].concat();
        let msg = NlMsg {
            ty: 0x0a0c,
            flags: 2,
            seq: 1,
            payload: &payload,
        };
        let mut out = Vec::new();
        parse_elements(&msg, &mut out).unwrap();
        assert_eq!(
            out,
            vec![
                ElementInfo {
                    key: v4([11, 0, 0, 0]),
                    flags: 1,
                    timeout_ms: None,
                    expiration_ms: None
                },
                ElementInfo {
                    key: v4([10, 0, 0, 0]),
                    flags: 0,
                    timeout_ms: Some(300_000),
                    expiration_ms: Some(299_996)
                },
            ]
        );
        // Every truncation of the reply is an error or a shorter list, never a panic.
        for cut in 0..payload.len() {
            let msg = NlMsg {
                payload: &payload[..cut],
                ..msg
            };
            let mut out = Vec::new();
            let _ = parse_elements(&msg, &mut out);
            assert!(out.len() <= 2);
        }
        // A key longer than any address.
        let long = [
            &[24u8, 0, 1, 0x80][..],
            &[20, 0, 1, 0x80],
            &[20, 0, 1, 0],
            &[0; 16],
        ]
        .concat();
        assert!(parse_element(&long).is_err());
        assert!(parse_element(&[8, 0, 3, 0, 0, 0, 0, 1]).is_err(), "no key");
    }
}
