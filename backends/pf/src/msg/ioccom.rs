//! BSD's ioctl request encoding (`sys/sys/ioccom.h`), computed the same on
//! every host so the FreeBSD numbers are tested on Linux:
//!
//! ```text
//! bits 31..29  direction: IOC_VOID 0x20000000, IOC_OUT 0x40000000, IOC_IN 0x80000000
//! bits 28..16  parameter length (13 bits, at most 8191 bytes)
//! bits 15..8   group letter
//! bits  7..0   number
//! ```

/// No parameter (`_IO`).
pub const IOC_VOID: u32 = 0x2000_0000;
/// The kernel copies the parameter out to user space.
pub const IOC_OUT: u32 = 0x4000_0000;
/// The kernel copies the parameter in from user space.
pub const IOC_IN: u32 = 0x8000_0000;
/// Both directions (`_IOWR`).
pub const IOC_INOUT: u32 = IOC_IN | IOC_OUT;
/// The mask of the length field.
pub const IOCPARM_MASK: u32 = 0x1fff;

/// `_IOC(inout, group, num, len)`. A length that does not fit the 13 bits
/// fails to compile when used in a constant.
pub const fn ioc(inout: u32, group: u8, num: u8, len: usize) -> u64 {
    assert!(len <= IOCPARM_MASK as usize, "ioctl parameter too large");
    (inout | ((len as u32 & IOCPARM_MASK) << 16) | ((group as u32) << 8) | num as u32) as u64
}

/// `_IO(group, num)`.
pub const fn io(group: u8, num: u8) -> u64 {
    ioc(IOC_VOID, group, num, 0)
}

/// `_IOWR(group, num, type)` for a type of `len` bytes.
pub const fn iowr(group: u8, num: u8, len: usize) -> u64 {
    ioc(IOC_INOUT, group, num, len)
}
