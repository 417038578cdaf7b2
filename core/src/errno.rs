//! The errno numbers banset's backends tell apart, in one place.
//!
//! An errno comes from the kernel banset runs on, so these are the numbers
//! of the OS this is built for: most agree on Linux and FreeBSD, and the
//! few that differ (the "not supported" family, `ENOPROTOOPT`) are chosen by
//! `target_os`. That is also right for the pf and ipfw backends when they
//! are built on Linux: there they only ever meet the model kernels of their
//! own tests, which answer with these same constants, while on FreeBSD the
//! real kernel's numbers are the FreeBSD ones chosen here.
//!
//! Here rather than from `libc` so that banset-core stays free of it (it
//! makes no OS calls); a test checks every number against `libc`.

/// Operation not permitted.
pub const EPERM: i32 = 1;
/// No such file or directory: the object does not exist.
pub const ENOENT: i32 = 2;
/// No such process: pf and ipfw's "no such table".
pub const ESRCH: i32 = 3;
/// Argument list too long: nf_tables' "the set is full".
pub const E2BIG: i32 = 7;
/// Out of memory: pf's table-entries limit, ipfw's "buffer too small".
pub const ENOMEM: i32 = 12;
/// Permission denied.
pub const EACCES: i32 = 13;
/// Device or resource busy: the object is in use.
pub const EBUSY: i32 = 16;
/// File exists: the object (or an overlapping interval) exists.
pub const EEXIST: i32 = 17;
/// No such device: pf's answer to an element size it does not know.
pub const ENODEV: i32 = 19;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Too many open files in system: how the kernel says a set is full.
pub const ENFILE: i32 = 23;
/// File too large: ipfw's "the table's limit is reached".
pub const EFBIG: i32 = 27;
/// No space left on device.
pub const ENOSPC: i32 = 28;
/// Result too large.
pub const ERANGE: i32 = 34;

/// Operation not supported (`ENOTSUP` is the same number on both).
#[cfg(not(target_os = "freebsd"))]
pub const EOPNOTSUPP: i32 = 95;
/// Operation not supported (`ENOTSUP` is the same number on both).
#[cfg(target_os = "freebsd")]
pub const EOPNOTSUPP: i32 = 45;

/// Address family not supported.
#[cfg(not(target_os = "freebsd"))]
pub const EAFNOSUPPORT: i32 = 97;
/// Address family not supported.
#[cfg(target_os = "freebsd")]
pub const EAFNOSUPPORT: i32 = 47;

/// Protocol not supported.
#[cfg(not(target_os = "freebsd"))]
pub const EPROTONOSUPPORT: i32 = 93;
/// Protocol not supported.
#[cfg(target_os = "freebsd")]
pub const EPROTONOSUPPORT: i32 = 43;

/// Protocol not available: no `IP_FW3` handler, i.e. ipfw is not loaded.
#[cfg(not(target_os = "freebsd"))]
pub const ENOPROTOOPT: i32 = 92;
/// Protocol not available: no `IP_FW3` handler, i.e. ipfw is not loaded.
#[cfg(target_os = "freebsd")]
pub const ENOPROTOOPT: i32 = 42;

#[cfg(all(test, unix))]
mod tests {
    /// Every number is the one the target's libc says.
    #[test]
    fn every_number_is_the_targets() {
        let pairs = [
            (super::EPERM, libc::EPERM),
            (super::ENOENT, libc::ENOENT),
            (super::ESRCH, libc::ESRCH),
            (super::E2BIG, libc::E2BIG),
            (super::ENOMEM, libc::ENOMEM),
            (super::EACCES, libc::EACCES),
            (super::EBUSY, libc::EBUSY),
            (super::EEXIST, libc::EEXIST),
            (super::ENODEV, libc::ENODEV),
            (super::EINVAL, libc::EINVAL),
            (super::ENFILE, libc::ENFILE),
            (super::EFBIG, libc::EFBIG),
            (super::ENOSPC, libc::ENOSPC),
            (super::ERANGE, libc::ERANGE),
            (super::EOPNOTSUPP, libc::EOPNOTSUPP),
            (super::EOPNOTSUPP, libc::ENOTSUP),
            (super::EAFNOSUPPORT, libc::EAFNOSUPPORT),
            (super::EPROTONOSUPPORT, libc::EPROTONOSUPPORT),
            (super::ENOPROTOOPT, libc::ENOPROTOOPT),
        ];
        for (i, (ours, libc)) in pairs.into_iter().enumerate() {
            assert_eq!(ours, libc, "pair {i}");
        }
    }
}
