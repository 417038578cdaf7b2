//! The table operations banset needs, each one or a few `DIOCR*` ioctls,
//! over any [`Device`]: `/dev/pf` on FreeBSD, a model of pf's table code in
//! the tests. Everything here is how `pfctl_radix.c` and `libpfctl` fill the
//! requests: zeroed struct, table named in `pfrio_table`, element array in
//! `pfrio_buffer`.

use std::fmt;

use crate::msg::{
    PfiocTable, PfrAddr, PfrTable, DIOCRADDADDRS, DIOCRADDTABLES, DIOCRCLRADDRS, DIOCRDELADDRS,
    DIOCRDELTABLES, DIOCRGETADDRS, DIOCRSETADDRS, DIOCRTSTADDRS, PFR_TFLAG_PERSIST,
};

/// pf's default `net.pf.request_maxcount`: the most elements one request
/// may carry, when the sysctl cannot be read.
#[cfg_attr(not(target_os = "freebsd"), allow(dead_code))]
pub const DEFAULT_REQUEST_MAXCOUNT: usize = 65_535;

/// Something that answers pf's table ioctls.
pub trait Device: Send + Sync + fmt::Debug {
    /// `ioctl(fd, request, io)`; `Err(errno)` on failure.
    fn ioctl(&self, request: u64, io: &mut PfiocTable) -> Result<(), i32>;

    /// `net.pf.request_maxcount`: the kernel refuses (`EINVAL`) a request
    /// with more elements, so every batch is cut into chunks of this size.
    fn request_maxcount(&self) -> usize;
}

/// Why a table operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableError {
    /// The kernel's errno.
    Errno(i32),
    /// The table holds more entries than one request may list.
    TooLarge { count: usize, max: usize },
}

impl From<i32> for TableError {
    fn from(errno: i32) -> TableError {
        TableError::Errno(errno)
    }
}

/// Creates the table (persistent) if it does not exist; an existing table
/// is left as it is, members included.
pub fn create(dev: &dyn Device, table: &PfrTable) -> Result<(), i32> {
    let mut t = [PfrTable {
        flags: PFR_TFLAG_PERSIST,
        ..*table
    }];
    let mut io = PfiocTable::new(zero_table(), &mut t, 0);
    dev.ioctl(DIOCRADDTABLES, &mut io)
}

/// Deletes the table; an absent one is fine.
pub fn delete(dev: &dyn Device, table: &PfrTable) -> Result<(), i32> {
    let mut t = [*table];
    let mut io = PfiocTable::new(zero_table(), &mut t, 0);
    dev.ioctl(DIOCRDELTABLES, &mut io)
}

/// The number of entries; `ESRCH` when the table does not exist.
pub fn count(dev: &dyn Device, table: &PfrTable) -> Result<usize, i32> {
    let mut io = PfiocTable::new::<PfrAddr>(*table, &mut [], 0);
    dev.ioctl(DIOCRGETADDRS, &mut io)?;
    Ok(io.size.max(0) as usize)
}

/// Every entry. Two passes, as pf wants: ask for the count, then list into
/// a buffer of that size (with room for a few added meanwhile), again if
/// the table grew past it.
pub fn list(dev: &dyn Device, table: &PfrTable) -> Result<Vec<PfrAddr>, TableError> {
    let max = dev.request_maxcount();
    let mut want = count(dev, table)?;
    for _ in 0..8 {
        if want > max {
            return Err(TableError::TooLarge { count: want, max });
        }
        let capacity = (want + want / 16 + 16).min(max);
        let mut buf = vec![PfrAddr::default(); capacity];
        let mut io = PfiocTable::new(*table, &mut buf, 0);
        dev.ioctl(DIOCRGETADDRS, &mut io)?;
        let got = io.size.max(0) as usize;
        if got <= capacity {
            buf.truncate(got);
            return Ok(buf);
        }
        // The table grew past the buffer: the kernel wrote only the count.
        want = got;
    }
    Err(TableError::Errno(libc_eagain()))
}

/// Adds entries, in chunks of `request_maxcount`. Each chunk is all or
/// nothing (pf builds every entry before inserting any); a failing chunk
/// leaves the earlier ones in.
pub fn add(dev: &dyn Device, table: &PfrTable, addrs: &mut [PfrAddr]) -> Result<(), i32> {
    chunked(dev, table, addrs, DIOCRADDADDRS)
}

/// Deletes entries (exact matches; absent ones are fine), in chunks.
pub fn del(dev: &dyn Device, table: &PfrTable, addrs: &mut [PfrAddr]) -> Result<(), i32> {
    chunked(dev, table, addrs, DIOCRDELADDRS)
}

fn chunked(
    dev: &dyn Device,
    table: &PfrTable,
    addrs: &mut [PfrAddr],
    request: u64,
) -> Result<(), i32> {
    let max = dev.request_maxcount().max(1);
    for chunk in addrs.chunks_mut(max) {
        let mut io = PfiocTable::new(*table, chunk, 0);
        dev.ioctl(request, &mut io)?;
    }
    Ok(())
}

/// Makes the table hold exactly `addrs`, in one step when they fit one
/// request: nobody matching against the table sees it empty halfway.
/// Larger contents are cleared and added in chunks.
pub fn replace(dev: &dyn Device, table: &PfrTable, addrs: &mut [PfrAddr]) -> Result<(), i32> {
    if addrs.len() > dev.request_maxcount() {
        clear(dev, table)?;
        return add(dev, table, addrs);
    }
    let mut io = PfiocTable::new(*table, addrs, 0);
    dev.ioctl(DIOCRSETADDRS, &mut io)
}

/// Removes every entry.
pub fn clear(dev: &dyn Device, table: &PfrTable) -> Result<(), i32> {
    let mut io = PfiocTable::new::<PfrAddr>(*table, &mut [], 0);
    dev.ioctl(DIOCRCLRADDRS, &mut io)
}

/// Whether a host address matches the table (longest-prefix match, so a
/// member prefix around it answers too). pf refuses networks here.
pub fn matches_host(dev: &dyn Device, table: &PfrTable, host: PfrAddr) -> Result<bool, i32> {
    let mut one = [host];
    let mut io = PfiocTable::new(*table, &mut one, 0);
    dev.ioctl(DIOCRTSTADDRS, &mut io)?;
    // pfrio_nmatch is an alias of pfrio_nadd.
    Ok(io.nadd > 0)
}

fn zero_table() -> PfrTable {
    PfrTable::new("", "-", 0)
        .map(|mut t| {
            t.name = [0; crate::msg::PF_TABLE_NAME_SIZE];
            t
        })
        .expect("a constant name is valid")
}

/// `EAGAIN`: the table kept growing while it was listed. 11 on Linux, 35
/// on FreeBSD; only shown in messages.
fn libc_eagain() -> i32 {
    if cfg!(target_os = "freebsd") {
        35
    } else {
        11
    }
}
