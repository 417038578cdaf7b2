//! The `IP_FW3` table messages of FreeBSD 11–14, encoded and decoded over
//! plain byte buffers: no `#[repr(C)]` struct crosses the syscall, so the
//! layout is exactly the offsets written here, tested on every OS against
//! the bytes `ipfw(8)` sends (notes/freebsd-pf-ipfw.md §3).
//!
//! Every request starts with `ip_fw3_opheader` (opcode, version). Table
//! requests then carry `ipfw_obj_header`, which names the table through an
//! embedded name TLV (`ipfw_obj_ntlv`) with index 1; entries travel in an
//! `ipfw_obj_ctlv` followed by `ipfw_obj_tentry`s whose index must repeat
//! that 1. Integers are host order (little-endian on amd64 and arm64),
//! addresses network order.
//!
//! FreeBSD 15 widened the indexes inside these structs (same sizes,
//! different offsets, not yet checked on a real 15 system), so this layout
//! is used only where `kern.osreldate` says 11–14; see [`Abi`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use banset_core::Target;

/// `IP_FW3`: the socket option of every request (level `IPPROTO_IP`).
pub const IP_FW3: i32 = 48;

/// `IP_FW_TABLE_XADD`: add entries (getsockopt, v1; results come back).
pub const XADD: u16 = 86;
/// `IP_FW_TABLE_XDEL`: delete entries (getsockopt, v1).
pub const XDEL: u16 = 87;
/// `IP_FW_TABLE_XLIST`: dump a table (getsockopt, v1).
pub const XLIST: u16 = 89;
/// `IP_FW_TABLE_XDESTROY`: remove a table (setsockopt, v0).
pub const XDESTROY: u16 = 90;
/// `IP_FW_TABLE_XINFO`: a table's `ipfw_xtable_info` (getsockopt, v0).
pub const XINFO: u16 = 93;
/// `IP_FW_TABLE_XFLUSH`: remove every entry (setsockopt, v0).
pub const XFLUSH: u16 = 94;
/// `IP_FW_TABLE_XCREATE`: create a table (setsockopt, v0).
pub const XCREATE: u16 = 95;
/// `IP_FW_TABLE_XSWAP`: exchange the contents of two tables of the same
/// type at once (setsockopt, v0); the rules referring to either keep
/// their table and see the other's entries.
pub const XSWAP: u16 = 109;

/// `IPFW_TLV_TBL_NAME`.
pub const TLV_TBL_NAME: u16 = 1;
/// `IPFW_TABLE_ADDR`: a table of IPv4/IPv6 prefixes (algorithm addr:radix).
pub const TABLE_ADDR: u8 = 1;
/// `IPFW_VTYPE_LEGACY`: the value mask `ipfw(8)` uses when none is given.
pub const VTYPE_LEGACY: u32 = 0xFFFF_FFFF;
/// `IPFW_TF_UPDATE`: an add replaces the value of an existing key instead
/// of failing with `EEXIST`, so a re-ban is not an error.
pub const TF_UPDATE: u16 = 0x01;
/// `IPFW_CTF_ATOMIC`: the kernel rolls a failed multi-entry add back.
pub const CTF_ATOMIC: u8 = 0x01;

/// FreeBSD's `AF_INET`.
pub const AF_INET: u8 = 2;
/// FreeBSD's `AF_INET6` (Linux's is 10: never use `libc::AF_INET6` here).
pub const AF_INET6: u8 = 28;

/// Sizes of the structs, from gcc over FreeBSD 14's `netinet/ip_fw.h`.
pub const OPHEADER_LEN: usize = 8;
/// `sizeof(ipfw_obj_ntlv)`.
pub const NTLV_LEN: usize = 80;
/// `sizeof(ipfw_obj_header)`.
pub const OBJ_HEADER_LEN: usize = 96;
/// `sizeof(ipfw_obj_ctlv)`.
pub const CTLV_LEN: usize = 16;
/// `sizeof(ipfw_obj_tentry)`.
pub const TENTRY_LEN: usize = 120;
/// `sizeof(ipfw_xtable_info)`.
pub const XTABLE_INFO_LEN: usize = 200;
/// The longest table name: 63 bytes and a NUL.
pub const MAX_NAME_LEN: usize = 63;

/// Per-entry results (`IPFW_TR_*`) written back into each `tentry`.
pub mod result {
    /// Not processed (a batch stopped before it).
    pub const IGNORED: u8 = 0;
    /// Added.
    pub const ADDED: u8 = 1;
    /// Existed; value replaced.
    pub const UPDATED: u8 = 2;
    /// Deleted.
    pub const DELETED: u8 = 3;
    /// The table's limit was reached.
    pub const LIMIT: u8 = 4;
    /// Not in the table (delete).
    pub const NOTFOUND: u8 = 5;
    /// Already in the table (add without update).
    pub const EXISTS: u8 = 6;
    /// Any other failure.
    pub const ERROR: u8 = 7;
}

/// Which layout of the table structs the running kernel uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// FreeBSD 11.0 to 14.x: the layout of this module.
    Fbsd11To14,
    /// FreeBSD 15 and later: 32-bit indexes inside the structs
    /// (commit 4a77657cbc01). Not verified on a 15 system, so banset
    /// drives these tables with the `ipfw` command instead.
    Fbsd15,
}

impl Abi {
    /// The ABI for a `kern.osreldate` value (`1403000` is 14.3).
    pub fn from_osreldate(osreldate: u32) -> Option<Abi> {
        match osreldate {
            1_100_000..=1_499_999 => Some(Abi::Fbsd11To14),
            1_500_000.. => Some(Abi::Fbsd15),
            _ => None,
        }
    }
}

/// Whether `name` is a table name ipfw accepts: 1 to 63 bytes of
/// `[A-Za-z0-9_.-]`, and not `all`, which `ipfw(8)` reserves.
pub fn check_name(name: &str) -> Result<(), TableNameError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars {
        return Err(TableNameError::Invalid { name: name.into() });
    }
    if name == "all" {
        return Err(TableNameError::Reserved);
    }
    Ok(())
}

/// A table name ipfw refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableNameError {
    /// Empty, too long, or holding a character ipfw refuses.
    #[error(
        "ipfw table name {name:?} must be 1 to {MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -"
    )]
    Invalid {
        /// The name.
        name: String,
    },
    /// `all`, which `ipfw(8)` reserves.
    #[error("ipfw reserves the table name \"all\"")]
    Reserved,
}

/// A kernel reply that does not parse, which means the layout banset
/// assumed is not the kernel's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// Shorter than a table header (`XINFO`, `XLIST`).
    #[error("ipfw replied with {len} bytes, less than a table header")]
    NoHeader {
        /// The reply's length.
        len: usize,
    },
    /// Too short for the per-entry results asked for (`XADD`, `XDEL`).
    #[error("ipfw replied with {len} bytes for {count} entries")]
    ShortResults {
        /// The reply's length.
        len: usize,
        /// The entries sent.
        count: usize,
    },
    /// Too short for the entries its header counts (`XLIST`).
    #[error("ipfw listed {count} entries in {len} bytes")]
    ShortList {
        /// The reply's length.
        len: usize,
        /// The entries its header counts.
        count: usize,
    },
    /// An entry whose length is not `ipfw_obj_tentry`'s.
    #[error("ipfw listed an entry of {len} bytes, not {TENTRY_LEN}")]
    EntryLength {
        /// The entry's length.
        len: usize,
    },
    /// An entry of a family other than [`AF_INET`] and [`AF_INET6`].
    #[error("ipfw listed an entry of address family {af}")]
    Family {
        /// The entry's family.
        af: u8,
    },
    /// An entry that is not a valid prefix (host bits set, or not a target).
    #[error("ipfw listed {addr}/{len}, not a valid prefix")]
    Prefix {
        /// The address listed.
        addr: IpAddr,
        /// Its prefix length.
        len: u8,
    },
}

fn put_u16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// `ipfw_obj_header` naming table `name`: opcode, version, index 1, and
/// the name TLV with table type `ntlv_type` (`TABLE_ADDR` for entry
/// changes, 0 for the rest, as `ipfw(8)` sends them).
fn obj_header(out: &mut Vec<u8>, opcode: u16, version: u16, name: &str, ntlv_type: u8) {
    let start = out.len();
    out.resize(start + OBJ_HEADER_LEN, 0);
    let h = &mut out[start..];
    put_u16(h, 0, opcode);
    put_u16(h, 2, version);
    put_u16(h, 12, 1); // idx
    put_ntlv(&mut h[16..16 + NTLV_LEN], name, ntlv_type);
}

/// `ipfw_obj_ntlv` naming table `name` with index 1 and set 0.
fn put_ntlv(n: &mut [u8], name: &str, ntlv_type: u8) {
    put_u16(n, 0, TLV_TBL_NAME);
    put_u32(n, 4, NTLV_LEN as u32);
    put_u16(n, 8, 1); // idx, equal to the header's
    n[11] = ntlv_type;
    n[16..16 + name.len()].copy_from_slice(name.as_bytes());
}

/// A request that is only the header: `XFLUSH`, `XDESTROY` (v0).
pub fn header_only(opcode: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJ_HEADER_LEN);
    obj_header(&mut out, opcode, 0, name, 0);
    out
}

/// `XSWAP` (v0) of tables `a` and `b`: the header naming `a`, then a
/// second name TLV naming `b`, 176 bytes; the kernel refuses any other
/// length (`swap_table()` in `ip_fw_table.c`), as `ipfw table A swap B`
/// builds it.
pub fn swap(a: &str, b: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJ_HEADER_LEN + NTLV_LEN);
    obj_header(&mut out, XSWAP, 0, a, 0);
    out.resize(OBJ_HEADER_LEN + NTLV_LEN, 0);
    put_ntlv(&mut out[OBJ_HEADER_LEN..], b, 0);
    out
}

/// `XINFO` (v0): the header and room for the `xtable_info` the kernel fills.
pub fn info(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(OBJ_HEADER_LEN + XTABLE_INFO_LEN);
    obj_header(&mut out, XINFO, 0, name, 0);
    out.resize(OBJ_HEADER_LEN + XTABLE_INFO_LEN, 0);
    out
}

/// `XCREATE` (v0): an address table holding legacy values, with at most
/// `limit` entries (0: no limit), on the kernel's default algorithm.
pub fn create(name: &str, limit: u32) -> Vec<u8> {
    let mut out = info(name);
    put_u16(&mut out, 0, XCREATE);
    let i = &mut out[OBJ_HEADER_LEN..];
    i[0] = TABLE_ADDR;
    put_u32(i, 12, VTYPE_LEGACY);
    put_u32(i, 36, limit);
    out
}

/// `XLIST` (v1) into a buffer of `size` bytes (at least the header and
/// the info); the kernel answers `ENOMEM` when the table does not fit.
pub fn list(name: &str, size: usize) -> Vec<u8> {
    let mut out = info(name);
    put_u16(&mut out, 0, XLIST);
    put_u16(&mut out, 2, 1);
    out.resize(size.max(OBJ_HEADER_LEN + XTABLE_INFO_LEN), 0);
    out
}

/// The parts of `ipfw_xtable_info` banset reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableInfo {
    /// `type`: [`TABLE_ADDR`] for banset's tables.
    pub kind: u8,
    /// `count`: entries.
    pub count: u32,
    /// `size`: the bytes an `XLIST` reply needs, header included.
    pub size: u32,
    /// `limit`: the most entries the table takes (0: none).
    pub limit: u32,
}

/// The `xtable_info` of an `XINFO` or `XLIST` reply.
pub fn parse_info(reply: &[u8]) -> Result<TableInfo, ReplyError> {
    if reply.len() < OBJ_HEADER_LEN + XTABLE_INFO_LEN {
        return Err(ReplyError::NoHeader { len: reply.len() });
    }
    let i = &reply[OBJ_HEADER_LEN..];
    Ok(TableInfo {
        kind: i[0],
        count: get_u32(i, 28),
        size: get_u32(i, 32),
        limit: get_u32(i, 36),
    })
}

/// `XADD` or `XDEL` (v1) of `targets`, as `table_do_modify_record()` in
/// `ipfw(8)` builds it. `update` sets `IPFW_TF_UPDATE` on each entry,
/// `atomic` sets `IPFW_CTF_ATOMIC` on the list.
pub fn modify(opcode: u16, name: &str, targets: &[Target], update: bool, atomic: bool) -> Vec<u8> {
    let n = targets.len();
    let mut out = Vec::with_capacity(OBJ_HEADER_LEN + CTLV_LEN + n * TENTRY_LEN);
    obj_header(&mut out, opcode, 1, name, TABLE_ADDR);
    let c = out.len();
    out.resize(c + CTLV_LEN, 0);
    put_u32(&mut out, c + 4, (CTLV_LEN + n * TENTRY_LEN) as u32);
    put_u32(&mut out, c + 8, n as u32);
    if atomic {
        out[c + 15] = CTF_ATOMIC;
    }
    for t in targets {
        let e = out.len();
        out.resize(e + TENTRY_LEN, 0);
        let te = &mut out[e..];
        if update {
            put_u16(te, 2, TF_UPDATE);
        }
        put_u32(te, 4, TENTRY_LEN as u32);
        te[9] = t.prefix_len();
        put_u16(te, 12, 1); // idx, equal to the header's
        match t.addr() {
            IpAddr::V4(a) => {
                te[8] = AF_INET;
                te[16..20].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                te[8] = AF_INET6;
                te[16..32].copy_from_slice(&a.octets());
            }
        }
    }
    out
}

/// The per-entry results of an `XADD`/`XDEL` reply, in request order.
pub fn parse_results(reply: &[u8], count: usize) -> Result<Vec<u8>, ReplyError> {
    let first = OBJ_HEADER_LEN + CTLV_LEN;
    if reply.len() < first + count * TENTRY_LEN {
        return Err(ReplyError::ShortResults {
            len: reply.len(),
            count,
        });
    }
    Ok((0..count)
        .map(|i| reply[first + i * TENTRY_LEN + 10])
        .collect())
}

/// The entries of an `XLIST` reply: `[header][xtable_info][tentry x count]`.
/// Entries of other families or malformed ones are errors naming them: a
/// reply that does not parse means the layout is not the kernel's.
pub fn parse_list(reply: &[u8]) -> Result<Vec<Target>, ReplyError> {
    let info = parse_info(reply)?;
    let first = OBJ_HEADER_LEN + XTABLE_INFO_LEN;
    let count = info.count as usize;
    if reply.len() < first + count * TENTRY_LEN {
        return Err(ReplyError::ShortList {
            len: reply.len(),
            count,
        });
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let te = &reply[first + i * TENTRY_LEN..first + (i + 1) * TENTRY_LEN];
        let len = get_u32(te, 4) as usize;
        if len != TENTRY_LEN {
            return Err(ReplyError::EntryLength { len });
        }
        let (af, masklen) = (te[8], te[9]);
        let addr = match af {
            AF_INET => {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(&te[16..20]);
                IpAddr::V4(Ipv4Addr::from(v4))
            }
            AF_INET6 => {
                let mut v6 = [0u8; 16];
                v6.copy_from_slice(&te[16..32]);
                IpAddr::V6(Ipv6Addr::from(v6))
            }
            af => return Err(ReplyError::Family { af }),
        };
        match Target::listed(addr, masklen) {
            Ok(t) if t.addr() == addr => out.push(t),
            _ => return Err(ReplyError::Prefix { addr, len: masklen }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
