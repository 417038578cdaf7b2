//! Netlink attribute TLVs: a writer that appends to a message buffer and a
//! reader that walks a byte slice without copying.
//!
//! One byte-order detail differs between the subsystems: nf_tables takes
//! big-endian integers with no flag ([`Attrs::u32`], [`Attrs::u64`]), while
//! the ipset set types check `NLA_F_NET_BYTEORDER` on u32 values and
//! addresses (`ip_set_attr_netorder()` in the kernel) and refuse the message
//! with `IPSET_ERR_PROTOCOL` when it is missing ([`Attrs::be32`],
//! [`Attrs::net_bytes`]). u8 values and strings carry no flag in either.

use crate::wire::{align4, DecodeError};

/// `NLA_F_NESTED`: set on every attribute that holds attributes, as `nft`
/// and the kernel's own `nla_nest_start()` do; the ipset core refuses its
/// containers (DATA, ADT, IP) without it.
pub const NLA_F_NESTED: u16 = 0x8000;
/// `NLA_F_NET_BYTEORDER`: the value is big-endian; ipset requires it on u32
/// values and addresses.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// The type bits without the two flags.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

const NLA_HDRLEN: usize = 4;

/// Appends attributes to the message being built. Nested attributes patch
/// their length when closed; a length above u16::MAX is remembered and turns
/// the whole message into an error (see [`crate::write_message`]): the
/// kernel would otherwise read a wrapped length and, for element lists,
/// silently apply nothing.
#[derive(Debug)]
pub struct Attrs<'a> {
    buf: &'a mut Vec<u8>,
    overflow: bool,
}

impl<'a> Attrs<'a> {
    /// Appends to `buf`. Only [`crate::write_message`] makes one outside
    /// tests, so that an overflow is never lost.
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Attrs<'a> {
        Attrs {
            buf,
            overflow: false,
        }
    }

    /// Whether an attribute outgrew its u16 length field.
    pub(crate) fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Bytes written so far in the whole buffer; chunking uses it to stay
    /// under its budget.
    pub fn position(&self) -> usize {
        self.buf.len()
    }

    /// An attribute with a raw value (keys, user data).
    pub fn bytes(&mut self, ty: u16, value: &[u8]) {
        let len = NLA_HDRLEN + value.len();
        self.header(ty, len);
        self.buf.extend_from_slice(value);
        self.pad();
    }

    /// A raw value in network byte order (ipset addresses): flagged as such.
    pub fn net_bytes(&mut self, ty: u16, value: &[u8]) {
        self.bytes(ty | NLA_F_NET_BYTEORDER, value);
    }

    /// A NUL-terminated string, as every nf_tables and ipset name is.
    pub fn str(&mut self, ty: u16, value: &str) {
        let len = NLA_HDRLEN + value.len() + 1;
        self.header(ty, len);
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// A one-byte attribute, without the byte-order flag.
    pub fn u8(&mut self, ty: u16, value: u8) {
        self.bytes(ty, &[value]);
    }

    /// Big-endian without a flag, like every nf_tables integer.
    pub fn u32(&mut self, ty: u16, value: u32) {
        self.bytes(ty, &value.to_be_bytes());
    }

    /// Big-endian without a flag, like every nf_tables integer (timeouts in
    /// ms, handles).
    pub fn u64(&mut self, ty: u16, value: u64) {
        self.bytes(ty, &value.to_be_bytes());
    }

    /// A big-endian u32 carrying `NLA_F_NET_BYTEORDER`, as ipset wants every
    /// u32 (timeouts, sizes, line numbers).
    pub fn be32(&mut self, ty: u16, value: u32) {
        self.net_bytes(ty, &value.to_be_bytes());
    }

    /// A nested attribute; `body` writes its members.
    pub fn nest(&mut self, ty: u16, body: impl FnOnce(&mut Self)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        body(self);
        let len = self.buf.len() - start;
        match u16::try_from(len) {
            Ok(len) => self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes()),
            Err(_) => self.overflow = true,
        }
    }

    fn header(&mut self, ty: u16, len: usize) {
        let len = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

/// The encoded size of an attribute with a `value_len`-byte value, padding
/// included. Chunking uses it to predict a message's size before writing.
pub const fn attr_size(value_len: usize) -> usize {
    (NLA_HDRLEN + value_len + 3) & !3
}

/// Walks the attributes of one level. Yields `(type without flags, value)`.
#[derive(Clone, Debug)]
pub struct AttrIter<'a> {
    rest: &'a [u8],
}

impl<'a> AttrIter<'a> {
    /// Walks the attributes in `buf`: a message's payload after its
    /// `nfgenmsg`, or the value of a nested attribute.
    pub fn new(buf: &'a [u8]) -> AttrIter<'a> {
        AttrIter { rest: buf }
    }
}

impl<'a> Iterator for AttrIter<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if rest.len() < NLA_HDRLEN {
            // Trailing bytes shorter than a header are padding at most.
            self.rest = &[];
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > rest.len() {
            self.rest = &[];
            return Some(Err(DecodeError::new(format!(
                "attribute {ty} has length {len} with {} bytes left",
                rest.len()
            ))));
        }
        let value = &rest[NLA_HDRLEN..len];
        self.rest = &rest[align4(len).min(rest.len())..];
        Some(Ok((ty, value)))
    }
}

/// Reads a big-endian u32 value; `what` names it in the error.
pub fn be_u32(value: &[u8], what: &str) -> Result<u32, DecodeError> {
    <[u8; 4]>::try_from(value)
        .map(u32::from_be_bytes)
        .map_err(|_| DecodeError::new(format!("{what}: {} bytes, want 4", value.len())))
}

/// Reads a big-endian u64 value; `what` names it in the error.
pub fn be_u64(value: &[u8], what: &str) -> Result<u64, DecodeError> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| DecodeError::new(format!("{what}: {} bytes, want 8", value.len())))
}

/// Reads a one-byte value; `what` names it in the error.
pub fn u8_of(value: &[u8], what: &str) -> Result<u8, DecodeError> {
    match value {
        [b] => Ok(*b),
        _ => Err(DecodeError::new(format!(
            "{what}: {} bytes, want 1",
            value.len()
        ))),
    }
}

/// A NUL-terminated string attribute (the NUL is optional on input).
pub fn c_str<'a>(value: &'a [u8], what: &str) -> Result<&'a str, DecodeError> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    std::str::from_utf8(&value[..end]).map_err(|_| DecodeError::new(format!("{what}: not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nf_tables style: no byte-order flags, u32 and u64 big-endian.
    #[test]
    fn writes_padded_tlvs_and_nests() {
        let mut buf = Vec::new();
        let mut a = Attrs::new(&mut buf);
        a.u8(2, 0x01);
        a.nest(4, |a| {
            a.u32(1, 1);
            a.u64(2, 0x36ee80);
        });
        assert!(!a.overflowed());
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[5, 0, 2, 0][..], &[0x01, 0, 0, 0],     // u8 attr 2, len 5, 3 bytes padding
            &[24, 0, 4, 0x80],                       // nest 4 with NLA_F_NESTED, len 4+8+12
            &[8, 0, 1, 0], &[0, 0, 0, 1],            //   u32 attr 1 big-endian
            &[12, 0, 2, 0], &[0, 0, 0, 0, 0, 0x36, 0xee, 0x80], // u64 attr 2 big-endian
        ].concat();
        assert_eq!(buf, want);
        let top: Vec<_> = AttrIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[1].0, 4, "nested flag is masked off");
        let inner: Vec<_> = AttrIter::new(top[1].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(be_u32(inner[0].1, "x").unwrap(), 1);
        assert_eq!(be_u64(inner[1].1, "x").unwrap(), 3_600_000);
        assert_eq!(attr_size(1), 8);
        assert_eq!(attr_size(8), 12);
    }

    /// ipset style: u32 values and addresses flagged `NLA_F_NET_BYTEORDER`.
    #[test]
    fn writes_flagged_tlvs_and_nests() {
        let mut buf = Vec::new();
        let mut a = Attrs::new(&mut buf);
        a.u8(1, 7);
        a.nest(7, |a| {
            a.be32(6, 3600);
            a.net_bytes(1, &[10, 0, 0, 1]);
        });
        assert!(!a.overflowed());
        #[rustfmt::skip]
        let want: Vec<u8> = [
            &[5, 0, 1, 0][..], &[7, 0, 0, 0],        // u8 attr 1 (PROTOCOL), no flag, padded
            &[20, 0, 7, 0x80],                       // nest 7 (DATA) with NLA_F_NESTED
            &[8, 0, 6, 0x40], &[0, 0, 0x0e, 0x10],   //   u32 attr 6 (TIMEOUT) BE + NET_BYTEORDER
            &[8, 0, 1, 0x40], &[10, 0, 0, 1],        //   address bytes + NET_BYTEORDER
        ].concat();
        assert_eq!(buf, want);
        let top: Vec<_> = AttrIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[1].0, 7, "nested flag is masked off");
        let inner: Vec<_> = AttrIter::new(top[1].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].0, 6, "byte-order flag is masked off");
        assert_eq!(be_u32(inner[0].1, "x").unwrap(), 3600);
        assert_eq!(attr_size(1), 8);
        assert_eq!(attr_size(16), 20);
    }

    #[test]
    fn oversized_nest_is_flagged() {
        let mut buf = Vec::new();
        let mut a = Attrs::new(&mut buf);
        a.nest(3, |a| {
            for _ in 0..20_000 {
                a.u32(1, 0);
            }
        });
        assert!(a.overflowed());
    }

    #[test]
    fn oversized_flagged_nest_is_flagged() {
        let mut buf = Vec::new();
        let mut a = Attrs::new(&mut buf);
        a.nest(8, |a| {
            for _ in 0..20_000 {
                a.be32(9, 0);
            }
        });
        assert!(a.overflowed());
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(AttrIter::new(&[200, 0, 1, 0, 0, 0, 0, 0])
            .next()
            .unwrap()
            .is_err());
        assert!(AttrIter::new(&[2, 0, 1, 0]).next().unwrap().is_err());
        assert!(be_u32(&[1, 2], "x").is_err());
        assert!(be_u64(&[1, 2], "x").is_err());
        assert!(u8_of(&[1, 2], "x").is_err());
        assert_eq!(u8_of(&[9], "x").unwrap(), 9);
        assert!(c_str(&[0xff, 0], "x").is_err());
        assert_eq!(c_str(b"abc\0", "x").unwrap(), "abc");
        assert_eq!(c_str(b"hash:ip\0", "x").unwrap(), "hash:ip");
    }
}
