//! The `/dev/pf` table ABI: the structs the `DIOCR*` ioctls carry and the
//! ioctl request numbers, as FreeBSD 13–15 define them on LP64 (amd64,
//! arm64). Pure data; compiled and tested on every OS, so Linux CI checks
//! every size, offset and byte that the FreeBSD kernel will read.
//!
//! An ioctl is a system call that hands a driver a request number and a
//! pointer. The number encodes the direction, the size of the pointed-to
//! struct and a group letter (`'D'` for pf), so a struct of the wrong size
//! is a different request; pf additionally checks `pfrio_esize` against the
//! size of its own element struct and answers `ENODEV` on a mismatch.
//!
//! Two traps this module exists to avoid:
//! - FreeBSD's `AF_INET6` is **28**; Linux's is 10. The values are defined
//!   here, never taken from `libc` (which would give Linux's on Linux).
//! - BSD's `_IO` sets `IOC_VOID`, which Linux's encoding does not; the
//!   numbers are computed by [`ioccom`], the BSD encoding, on every host.
//!
//! Source of the layouts: `sys/net/pfvar.h` (`struct pfr_table`,
//! `pfr_addr`, `pfioc_table`), `sys/sys/ioccom.h`, `sys/netinet/in.h`; see
//! `notes/freebsd-pf-ipfw.md` §2.

use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use banset_core::{InvalidTarget, Target};

pub mod ioccom;

/// FreeBSD's `AF_INET`.
pub const AF_INET: u8 = 2;
/// FreeBSD's `AF_INET6` (Linux's is 10: never use `libc::AF_INET6` here).
pub const AF_INET6: u8 = 28;

/// `MAXPATHLEN`: the size of an anchor path, NUL included.
pub const MAXPATHLEN: usize = 1024;
/// `PF_TABLE_NAME_SIZE`: a table name of at most 31 bytes and its NUL.
pub const PF_TABLE_NAME_SIZE: usize = 32;

/// `PFR_TFLAG_PERSIST`: keep the table when no rule refers to it. Without
/// it pf destroys a table created by ioctl as soon as the call returns.
pub const PFR_TFLAG_PERSIST: u32 = 0x01;
/// `PFR_TFLAG_CONST`: the table refuses changes (`EPERM`).
pub const PFR_TFLAG_CONST: u32 = 0x02;
/// `PFR_TFLAG_ACTIVE`: the table exists in the active ruleset.
pub const PFR_TFLAG_ACTIVE: u32 = 0x04;

/// `PFR_FLAG_DUMMY`: validate only, change nothing.
pub const PFR_FLAG_DUMMY: i32 = 0x02;
/// `PFR_FLAG_FEEDBACK`: write a `PFR_FB_*` result into each address.
pub const PFR_FLAG_FEEDBACK: i32 = 0x04;

/// The group letter of pf's ioctls.
const GROUP: u8 = b'D';

/// The size of the struct every table ioctl carries.
const PFIOC_TABLE_SIZE: usize = std::mem::size_of::<PfiocTable>();

/// `DIOCRADDTABLES`: create tables (buffer: `pfr_table`); existing ones are
/// left alone (`pfrio_nadd` counts the new ones).
pub const DIOCRADDTABLES: u64 = ioccom::iowr(GROUP, 61, PFIOC_TABLE_SIZE);
/// `DIOCRDELTABLES`: delete tables (buffer: `pfr_table`).
pub const DIOCRDELTABLES: u64 = ioccom::iowr(GROUP, 62, PFIOC_TABLE_SIZE);
/// `DIOCRCLRADDRS`: remove every address of `pfrio_table`.
pub const DIOCRCLRADDRS: u64 = ioccom::iowr(GROUP, 66, PFIOC_TABLE_SIZE);
/// `DIOCRADDADDRS`: add addresses (buffer: `pfr_addr`); all or nothing
/// within one call (`pfr_add_addrs` builds the entries before inserting).
pub const DIOCRADDADDRS: u64 = ioccom::iowr(GROUP, 67, PFIOC_TABLE_SIZE);
/// `DIOCRDELADDRS`: delete addresses; absent ones are not an error.
pub const DIOCRDELADDRS: u64 = ioccom::iowr(GROUP, 68, PFIOC_TABLE_SIZE);
/// `DIOCRSETADDRS`: make the table hold exactly the buffer, in one step.
pub const DIOCRSETADDRS: u64 = ioccom::iowr(GROUP, 69, PFIOC_TABLE_SIZE);
/// `DIOCRGETADDRS`: list; with a buffer too small the kernel only writes
/// the count into `pfrio_size`.
pub const DIOCRGETADDRS: u64 = ioccom::iowr(GROUP, 70, PFIOC_TABLE_SIZE);
/// `DIOCRTSTADDRS`: longest-prefix match of host addresses
/// (`pfrio_nmatch`, an alias of `pfrio_nadd`).
pub const DIOCRTSTADDRS: u64 = ioccom::iowr(GROUP, 73, PFIOC_TABLE_SIZE);

/// `struct pfr_table`: names a table (anchor path and name).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PfrTable {
    /// `pfrt_anchor`: NUL-terminated anchor path; empty for the main ruleset.
    pub anchor: [u8; MAXPATHLEN],
    /// `pfrt_name`: NUL-terminated and zero-filled after the NUL; the
    /// kernel refuses a name with bytes after its NUL (`EINVAL`).
    pub name: [u8; PF_TABLE_NAME_SIZE],
    /// `pfrt_flags`: `PFR_TFLAG_*`.
    pub flags: u32,
    /// `pfrt_fback`: per-table feedback.
    pub fback: u8,
    /// The three bytes the C compiler puts after `pfrt_fback`.
    pub pad: [u8; 3],
}

impl std::fmt::Debug for PfrTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PfrTable")
            .field("anchor", &c_str(&self.anchor))
            .field("name", &c_str(&self.name))
            .field("flags", &self.flags)
            .finish()
    }
}

/// The text of a NUL-terminated byte array, lossily.
pub fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

impl PfrTable {
    /// The table `name` in anchor `anchor`, with `flags`. Refuses what the
    /// kernel would refuse: an empty name, a name of 32 bytes or more, an
    /// anchor path of 1024 bytes or more, NUL bytes inside.
    pub fn new(anchor: &str, name: &str, flags: u32) -> Result<PfrTable, PfTableNameError> {
        if name.is_empty() || name.len() >= PF_TABLE_NAME_SIZE {
            return Err(PfTableNameError::NameLength { name: name.into() });
        }
        if anchor.len() >= MAXPATHLEN {
            return Err(PfTableNameError::AnchorLength {
                anchor: anchor.into(),
            });
        }
        if name.contains('\0') || anchor.contains('\0') {
            return Err(PfTableNameError::Nul {
                anchor: anchor.into(),
                name: name.into(),
            });
        }
        let mut t = PfrTable {
            anchor: [0; MAXPATHLEN],
            name: [0; PF_TABLE_NAME_SIZE],
            flags,
            fback: 0,
            pad: [0; 3],
        };
        t.anchor[..anchor.len()].copy_from_slice(anchor.as_bytes());
        t.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(t)
    }
}

/// A table name or anchor path the kernel would refuse, as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PfTableNameError {
    /// Empty, or too long for `pfrt_name`.
    #[error("pf table name {name:?} must be 1 to {} bytes", PF_TABLE_NAME_SIZE - 1)]
    NameLength {
        /// The name.
        name: String,
    },
    /// Too long for `pfrt_anchor`.
    #[error("pf anchor path {anchor:?} is longer than {} bytes", MAXPATHLEN - 1)]
    AnchorLength {
        /// The anchor path.
        anchor: String,
    },
    /// A NUL byte, which would cut the C string short.
    #[error("pf table {anchor}/{name} contains a NUL byte")]
    Nul {
        /// The anchor path.
        anchor: String,
        /// The name.
        name: String,
    },
}

/// A listed entry that is not a banset target: its address and prefix
/// length as listed, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PfListedError {
    /// Host bits set past the prefix: the entry was read with the wrong
    /// layout.
    #[error("pf listed {addr}/{len}, which has bits set past its prefix length")]
    HostBits {
        /// The address listed.
        addr: IpAddr,
        /// Its prefix length.
        len: u8,
    },
    /// Not a target at all (`0.0.0.0`, a length past the family's).
    #[error("pf listed {addr}/{len}: {why}")]
    Invalid {
        /// The address listed.
        addr: IpAddr,
        /// Its prefix length.
        len: u8,
        /// What is wrong with it.
        why: InvalidTarget,
    },
}

/// The `pfra_u` union: an `in_addr` or `in6_addr`, network byte order,
/// aligned like the `u_int32_t`s inside them.
#[repr(C, align(4))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PfrAddrUnion(pub [u8; 16]);

/// `struct pfr_addr`: one table entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PfrAddr {
    /// `pfra_u`: IPv4 in the first 4 bytes, the rest zero.
    pub addr: PfrAddrUnion,
    /// `pfra_af`: [`AF_INET`] or [`AF_INET6`].
    pub af: u8,
    /// `pfra_net`: the prefix length (32 or 128 for a host).
    pub net: u8,
    /// `pfra_not`: a negated entry (`!addr`), which banset never makes.
    pub not: u8,
    /// `pfra_fback`: `PFR_FB_*`; must be 0 going in, or `EINVAL`.
    pub fback: u8,
}

impl PfrAddr {
    /// The entry for a banset target.
    pub fn from_target(target: &Target) -> PfrAddr {
        let mut bytes = [0u8; 16];
        let af = match target.addr() {
            IpAddr::V4(a) => {
                bytes[..4].copy_from_slice(&a.octets());
                AF_INET
            }
            IpAddr::V6(a) => {
                bytes.copy_from_slice(&a.octets());
                AF_INET6
            }
        };
        PfrAddr {
            addr: PfrAddrUnion(bytes),
            af,
            net: target.prefix_len(),
            not: 0,
            fback: 0,
        }
    }

    /// The banset target of a listed entry. Negated entries (`!addr`, which
    /// an admin may add by hand) block nothing and are `None`, like an
    /// unknown family; a malformed prefix is an error naming it.
    pub fn to_target(&self) -> Result<Option<Target>, PfListedError> {
        if self.not != 0 {
            return Ok(None);
        }
        let addr = match self.af {
            AF_INET => {
                let mut v4 = [0u8; 4];
                v4.copy_from_slice(&self.addr.0[..4]);
                IpAddr::V4(Ipv4Addr::from(v4))
            }
            AF_INET6 => IpAddr::V6(Ipv6Addr::from(self.addr.0)),
            _ => return Ok(None),
        };
        // pf never holds host bits past the prefix; if they show up, the
        // entry was read with the wrong layout, which must not pass silently.
        let len = self.net;
        match Target::listed(addr, len) {
            Ok(t) if t.addr() == addr => Ok(Some(t)),
            Ok(_) => Err(PfListedError::HostBits { addr, len }),
            Err(why) => Err(PfListedError::Invalid { addr, len, why }),
        }
    }

    /// The 20 bytes the kernel reads.
    pub fn as_bytes(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..16].copy_from_slice(&self.addr.0);
        out[16] = self.af;
        out[17] = self.net;
        out[18] = self.not;
        out[19] = self.fback;
        out
    }
}

/// `struct pfioc_table`: the argument of every table ioctl. `buffer`
/// points at `size` elements of `esize` bytes each (`pfr_addr` or
/// `pfr_table`), owned by the caller for the duration of the call.
#[repr(C)]
#[derive(Debug)]
pub struct PfiocTable {
    /// `pfrio_table`: the table the call is about.
    pub table: PfrTable,
    /// `pfrio_buffer`.
    pub buffer: *mut c_void,
    /// `pfrio_esize`: the element size; checked by the kernel (`ENODEV`).
    pub esize: i32,
    /// `pfrio_size`: elements in; for a listing, the count needed out.
    pub size: i32,
    /// `pfrio_size2` (also `pfrio_naddr`, `pfrio_setflag`).
    pub size2: i32,
    /// `pfrio_nadd` (also `pfrio_nmatch`, `pfrio_exists`, `pfrio_nzero`).
    pub nadd: i32,
    /// `pfrio_ndel`.
    pub ndel: i32,
    /// `pfrio_nchange`.
    pub nchange: i32,
    /// `pfrio_flags`: `PFR_FLAG_*`.
    pub flags: i32,
    /// `pfrio_ticket`: for transactions, unused here.
    pub ticket: u32,
}

impl PfiocTable {
    /// A request about `table` over `elements` (which must outlive the
    /// ioctl); the counts out are zero.
    pub fn new<T>(table: PfrTable, elements: &mut [T], flags: i32) -> PfiocTable {
        PfiocTable {
            table,
            buffer: if elements.is_empty() {
                std::ptr::null_mut()
            } else {
                elements.as_mut_ptr().cast()
            },
            esize: std::mem::size_of::<T>() as i32,
            size: elements.len() as i32,
            size2: 0,
            nadd: 0,
            ndel: 0,
            nchange: 0,
            flags,
            ticket: 0,
        }
    }
}

// The sizes the FreeBSD kernel checks (`pfrio_esize`, and the size encoded
// in every request number). LP64 only: pf's pointer member makes
// `pfioc_table` 4 bytes smaller on 32-bit platforms, which banset does not
// target.
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<PfrTable>() == 1064);
    assert!(std::mem::align_of::<PfrTable>() == 4);
    assert!(std::mem::size_of::<PfrAddr>() == 20);
    assert!(std::mem::align_of::<PfrAddr>() == 4);
    assert!(std::mem::size_of::<PfiocTable>() == 1104);
    assert!(std::mem::align_of::<PfiocTable>() == 8);
};

#[cfg(test)]
mod tests;
