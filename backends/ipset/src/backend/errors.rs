//! Kernel errors to [`BackendError`]s: errnos and ipset's own codes by
//! number, and a failing entry named by the line number the kernel sends
//! back.

use banset_core::errno::{ENOENT, EPERM};
use banset_core::{BackendError, ErrorKind};

use crate::layout::KernelSet;
use crate::msg::replies::SetHeader;
use crate::msg::requests::Entry;
use crate::msg::{errcode, EncodeError};
use crate::sys::SysError;

pub(super) fn full_detail(set: &KernelSet, maxelem: u32, state: &str) -> String {
    format!(
        "ipset {} is full: its maxelem is {maxelem} ({state}). Raise the limit with \
         `banset create --maxelem N` after `banset destroy`, or let bans expire",
        set.name
    )
}

/// An error from an ADT message, naming the failing entry (from the line
/// number the kernel sends back) and what was applied before it.
pub(super) fn entry_error(
    e: SysError,
    set: &KernelSet,
    name: &str,
    verb: &str,
    entries: &[Entry],
    chunk_start: usize,
    h: &SetHeader,
) -> BackendError {
    let (errno, lineno) = match e {
        SysError::Kernel { errno, lineno } => (errno, lineno),
        other => return sys_error(other, &format!("{verb} ipset {name}")),
    };
    let failed = lineno
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| l.checked_sub(1))
        .filter(|&i| i < entries.len());
    let context = match failed {
        Some(i) => {
            let e = &entries[i];
            let shown = match e.cidr {
                Some(len) if len != if e.addr.is_ipv4() { 32 } else { 128 } => {
                    format!("{}/{len}", e.addr)
                }
                _ => e.addr.to_string(),
            };
            format!(
                "{verb} ipset {name}, entry {shown} ({} of {})",
                i + 1,
                entries.len()
            )
        }
        None => format!("{verb} ipset {name}"),
    };
    let applied = failed.unwrap_or(chunk_start);
    let partial = if applied > 0 {
        format!("; the {applied} entries before it were applied")
    } else {
        String::new()
    };
    if errno == errcode::HASH_FULL {
        let maxelem = h.maxelem.unwrap_or(u32::MAX);
        return BackendError::new(
            ErrorKind::SetFull,
            context,
            format!(
                "{}{partial}",
                full_detail(set, maxelem, "the kernel refused more")
            ),
        );
    }
    if errno == ENOENT {
        return BackendError::new(ErrorKind::NotFound, context, "the set does not exist");
    }
    let err = ipset_error(errno, &context);
    BackendError::new(
        err.kind(),
        err.context(),
        format!("{}{partial}", err.detail()),
    )
}

pub(super) fn encode_error(e: EncodeError, what: &str) -> BackendError {
    BackendError::new(ErrorKind::Other, what, e.to_string())
}

/// Maps a kernel error, an errno or an ipset code, by number.
pub(super) fn ipset_error(code: i32, context: &str) -> BackendError {
    let (kind, text) = match code {
        errcode::PROTOCOL => (
            ErrorKind::Invalid,
            "ipset protocol error (IPSET_ERR_PROTOCOL): the kernel refused the request's format \
             (an address of the wrong family, or a kernel older than ipset protocol 7)",
        ),
        errcode::FIND_TYPE => (
            ErrorKind::Unsupported,
            "the kernel lacks this set type or revision (IPSET_ERR_FIND_TYPE); load ip_set_hash_ip / ip_set_hash_net",
        ),
        errcode::MAX_SETS => (ErrorKind::Other, "the kernel's limit on the number of sets is reached (IPSET_ERR_MAX_SETS)"),
        errcode::BUSY => (ErrorKind::Other, "the set is in use by a kernel component such as an iptables rule (IPSET_ERR_BUSY)"),
        errcode::EXIST_SETNAME2 => (ErrorKind::NotFound, "the second set does not exist (IPSET_ERR_EXIST_SETNAME2)"),
        errcode::TYPE_MISMATCH => (ErrorKind::Exists, "the sets are of different types (IPSET_ERR_TYPE_MISMATCH)"),
        errcode::EXIST => (ErrorKind::Exists, "the entry or set exists (IPSET_ERR_EXIST)"),
        errcode::INVALID_CIDR => (ErrorKind::Invalid, "the set type refuses this prefix length (IPSET_ERR_INVALID_CIDR)"),
        errcode::INVALID_NETMASK => (ErrorKind::Invalid, "invalid netmask (IPSET_ERR_INVALID_NETMASK)"),
        errcode::INVALID_FAMILY => (ErrorKind::Invalid, "invalid family (IPSET_ERR_INVALID_FAMILY)"),
        errcode::TIMEOUT => (
            ErrorKind::Exists,
            "the set was created without timeout support (IPSET_ERR_TIMEOUT); destroy and recreate it",
        ),
        errcode::REFERENCED => (ErrorKind::Other, "the set is referenced (IPSET_ERR_REFERENCED)"),
        errcode::IPADDR_IPV4 => (ErrorKind::Invalid, "an IPv4 address was expected (IPSET_ERR_IPADDR_IPV4)"),
        errcode::IPADDR_IPV6 => (ErrorKind::Invalid, "an IPv6 address was expected (IPSET_ERR_IPADDR_IPV6)"),
        errcode::HASH_FULL => (ErrorKind::SetFull, "the set is full: maxelem reached (IPSET_ERR_HASH_FULL)"),
        code if code >= 4096 => {
            return BackendError::new(
                ErrorKind::Other,
                context,
                format!("ipset error {code} (see enum ipset_errno in linux/netfilter/ipset/ip_set.h)"),
            )
        }
        errno => {
            let err = BackendError::from_errno(errno, context);
            return if errno == EPERM || err.kind() == ErrorKind::Permission {
                BackendError::new(
                    ErrorKind::Permission,
                    context,
                    format!("{}; run as root or with CAP_NET_ADMIN", err.detail()),
                )
            } else {
                err
            };
        }
    };
    BackendError::new(kind, context, text)
}

pub(super) fn sys_error(e: SysError, what: &str) -> BackendError {
    match e {
        SysError::Os { call, errno } => ipset_error(errno, &format!("{what}: {call}")),
        SysError::Kernel { errno, .. } => ipset_error(errno, what),
        SysError::Decode(d) => BackendError::new(ErrorKind::Other, what, d.to_string()),
        SysError::NoReply => BackendError::new(ErrorKind::Other, what, "no reply from the kernel"),
        SysError::DumpInterrupted { attempts } => BackendError::new(
            ErrorKind::Other,
            what,
            format!(
                "the kernel's listing was interrupted by concurrent changes {attempts} times in a row; try again"
            ),
        ),
        SysError::Unsupported => {
            BackendError::new(ErrorKind::Unsupported, what, "ipset exists only on Linux")
        }
    }
}

#[cfg(test)]
mod tests {
    use banset_core::Family;

    use super::*;
    use crate::backend::entries::to_entry;
    use crate::layout;

    #[test]
    fn kernel_codes_map_by_number() {
        let e = ipset_error(errcode::HASH_FULL, "add");
        assert_eq!(e.kind(), ErrorKind::SetFull);
        assert_eq!(ipset_error(ENOENT, "x").kind(), ErrorKind::NotFound);
        let e = ipset_error(EPERM, "x");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e.detail().contains("CAP_NET_ADMIN"));
        assert_eq!(ipset_error(errcode::TIMEOUT, "x").kind(), ErrorKind::Exists);
        assert!(ipset_error(4200, "x").detail().contains("ipset error 4200"));
    }

    #[test]
    fn failing_entries_are_named_by_line_number() {
        let set = KernelSet {
            name: "f2b".into(),
            family: Family::V4,
            typename: layout::HASH_NET,
        };
        let entries: Vec<Entry> = ["192.0.2.1", "192.0.2.2", "198.51.100.0/24"]
            .iter()
            .map(|s| to_entry(&set, &s.parse().unwrap(), Some(60)))
            .collect();
        let h = SetHeader {
            maxelem: Some(2),
            ..SetHeader::default()
        };
        let full = SysError::Kernel {
            errno: errcode::HASH_FULL,
            lineno: Some(3),
        };
        let e = entry_error(full, &set, "f2b", "add to", &entries, 0, &h);
        assert_eq!(e.kind(), ErrorKind::SetFull);
        assert_eq!(
            e.context(),
            "add to ipset f2b, entry 198.51.100.0/24 (3 of 3)"
        );
        assert!(e.detail().contains("maxelem is 2"), "{e}");
        assert!(
            e.detail().contains("the 2 entries before it were applied"),
            "{e}"
        );
        let e = entry_error(
            SysError::Kernel {
                errno: ENOENT,
                lineno: None,
            },
            &set,
            "f2b",
            "add to",
            &entries,
            0,
            &h,
        );
        assert_eq!(
            (e.kind(), e.context(), e.detail()),
            (
                ErrorKind::NotFound,
                "add to ipset f2b",
                "the set does not exist"
            )
        );
        // A line number out of range is ignored rather than trusted.
        let e = entry_error(
            SysError::Kernel {
                errno: errcode::PROTOCOL,
                lineno: Some(99),
            },
            &set,
            "f2b",
            "delete from",
            &entries,
            0,
            &h,
        );
        assert_eq!(e.context(), "delete from ipset f2b");
    }
}
