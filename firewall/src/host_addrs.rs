//! This host's own addresses, for the allowlist: banning them would cut the
//! host off from itself. Read with getifaddrs(3), the one OS call of the
//! allowlist, kept here so the core stays free of OS calls.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use banset_core::Target;

/// Every address configured on an interface of this host (in this network
/// namespace). Errors yield an empty list: the allowlist still holds
/// loopback and the configured prefixes.
pub fn host_addresses() -> Vec<Target> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we own until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if let Some(addr) = unsafe { sockaddr_ip(ifa.ifa_addr) } {
            // An address banset would never ban (an unconfigured 0.0.0.0)
            // needs no protection from a ban either.
            out.extend(Target::host(addr).ok());
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

/// # Safety
/// `sa` is null or points to a sockaddr of the size its family implies.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    match i32::from(unsafe { (*sa).sa_family }) {
        libc::AF_INET => {
            let sin = unsafe { &*(sa as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let sin6 = unsafe { &*(sa as *const libc::sockaddr_in6) };
            let addr = IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr));
            // Unspecified or not, a zone-scoped address is still ours.
            Some(addr)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_loopback() {
        let addrs = host_addresses();
        assert!(
            addrs.iter().any(|t| t.addr().is_loopback()),
            "lo should be up on any test machine: {addrs:?}"
        );
    }
}
