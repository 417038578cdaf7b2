//! Sizes, offsets, request numbers and bytes, against the values compiled
//! from FreeBSD's headers (notes/freebsd-pf-ipfw.md §2).

use std::mem::{size_of, MaybeUninit};

use super::*;

/// The offset of a field, measured on a real value (no `offset_of!`, which
/// is newer than the workspace's minimum Rust).
macro_rules! offset {
    ($t:ty, $field:ident) => {{
        let v = MaybeUninit::<$t>::uninit();
        let base = v.as_ptr();
        // SAFETY: only the address of the field is taken, nothing is read.
        let field = unsafe { std::ptr::addr_of!((*base).$field) };
        field as usize - base as usize
    }};
}

#[test]
fn pfr_table_layout() {
    assert_eq!(size_of::<PfrTable>(), 1064);
    assert_eq!(offset!(PfrTable, anchor), 0);
    assert_eq!(offset!(PfrTable, name), 1024);
    assert_eq!(offset!(PfrTable, flags), 1056);
    assert_eq!(offset!(PfrTable, fback), 1060);
}

#[test]
fn pfr_addr_layout() {
    assert_eq!(size_of::<PfrAddr>(), 20);
    assert_eq!(offset!(PfrAddr, addr), 0);
    assert_eq!(offset!(PfrAddr, af), 16);
    assert_eq!(offset!(PfrAddr, net), 17);
    assert_eq!(offset!(PfrAddr, not), 18);
    assert_eq!(offset!(PfrAddr, fback), 19);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn pfioc_table_layout() {
    assert_eq!(size_of::<PfiocTable>(), 1104);
    assert_eq!(offset!(PfiocTable, table), 0);
    assert_eq!(offset!(PfiocTable, buffer), 1064);
    assert_eq!(offset!(PfiocTable, esize), 1072);
    assert_eq!(offset!(PfiocTable, size), 1076);
    assert_eq!(offset!(PfiocTable, size2), 1080);
    assert_eq!(offset!(PfiocTable, nadd), 1084);
    assert_eq!(offset!(PfiocTable, ndel), 1088);
    assert_eq!(offset!(PfiocTable, nchange), 1092);
    assert_eq!(offset!(PfiocTable, flags), 1096);
    assert_eq!(offset!(PfiocTable, ticket), 1100);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn request_numbers_are_freebsds() {
    assert_eq!(DIOCRADDTABLES, 0xC450_443D);
    assert_eq!(DIOCRDELTABLES, 0xC450_443E);
    assert_eq!(DIOCRCLRADDRS, 0xC450_4442);
    assert_eq!(DIOCRADDADDRS, 0xC450_4443);
    assert_eq!(DIOCRDELADDRS, 0xC450_4444);
    assert_eq!(DIOCRSETADDRS, 0xC450_4445);
    assert_eq!(DIOCRGETADDRS, 0xC450_4446);
    assert_eq!(DIOCRTSTADDRS, 0xC450_4449);
    // _IO sets IOC_VOID on BSD (Linux's _IO would be 0x4401).
    assert_eq!(ioccom::io(b'D', 1), 0x2000_4401, "DIOCSTART");
    assert_eq!(ioccom::io(b'D', 2), 0x2000_4402, "DIOCSTOP");
}

#[test]
fn addresses_in_golden_bytes() {
    let v4 = PfrAddr::from_target(&"192.0.2.1".parse().unwrap());
    assert_eq!(
        v4.as_bytes(),
        [
            0xc0, 0x00, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, //
            0x02, 0x20, 0x00, 0x00
        ]
    );
    let v6 = PfrAddr::from_target(&"2001:db8::1".parse().unwrap());
    assert_eq!(
        v6.as_bytes(),
        [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, //
            0x1c, 0x80, 0x00, 0x00
        ]
    );
    // The struct in memory is those bytes: nothing else goes to the kernel.
    // SAFETY: PfrAddr is 20 bytes of plain integers without padding.
    let raw: [u8; 20] = unsafe { std::mem::transmute(v6) };
    assert_eq!(raw, v6.as_bytes());
    let net = PfrAddr::from_target(&"198.51.100.0/24".parse().unwrap());
    assert_eq!(&net.as_bytes()[16..], &[2, 24, 0, 0]);
}

#[test]
fn listed_entries_become_targets() {
    for s in [
        "192.0.2.1",
        "198.51.100.0/24",
        "2001:db8::/48",
        "2001:db8::7",
    ] {
        let t: Target = s.parse().unwrap();
        assert_eq!(PfrAddr::from_target(&t).to_target(), Ok(Some(t)));
    }
    let mut negated = PfrAddr::from_target(&"192.0.2.1".parse().unwrap());
    negated.not = 1;
    assert_eq!(negated.to_target(), Ok(None));
    let mut linux_af = negated;
    linux_af.not = 0;
    linux_af.af = 10;
    assert_eq!(linux_af.to_target(), Ok(None), "10 is Linux's AF_INET6");
    let mut bad = PfrAddr::from_target(&"192.0.2.1".parse().unwrap());
    bad.net = 24;
    let e = bad.to_target().unwrap_err();
    assert!(matches!(e, PfListedError::HostBits { len: 24, .. }));
    assert!(e.to_string().contains("192.0.2.1/24"));
}

#[test]
fn table_names_are_checked_and_zero_filled() {
    let t = PfrTable::new("banset/f2b", "f2b", PFR_TFLAG_PERSIST).unwrap();
    assert_eq!(&t.name[..4], b"f2b\0");
    assert!(t.name[3..].iter().all(|&b| b == 0));
    assert_eq!(c_str(&t.anchor), "banset/f2b");
    assert_eq!(t.flags, 1);
    assert!(matches!(
        PfrTable::new("", "", 0),
        Err(PfTableNameError::NameLength { .. })
    ));
    let long = PfrTable::new("", &"x".repeat(32), 0).unwrap_err();
    assert_eq!(
        long.to_string(),
        format!("pf table name {:?} must be 1 to 31 bytes", "x".repeat(32))
    );
    assert!(PfrTable::new("", &"x".repeat(31), 0).is_ok());
    assert!(matches!(
        PfrTable::new(&"a".repeat(1024), "x", 0),
        Err(PfTableNameError::AnchorLength { .. })
    ));
    assert_eq!(
        PfrTable::new("", "a\0b", 0).unwrap_err(),
        PfTableNameError::Nul {
            anchor: String::new(),
            name: "a\0b".into()
        }
    );
}

#[test]
fn requests_point_at_their_elements() {
    let mut addrs = [PfrAddr::default(); 3];
    let io = PfiocTable::new(
        PfrTable::new("", "t", 0).unwrap(),
        &mut addrs,
        PFR_FLAG_FEEDBACK,
    );
    assert_eq!((io.esize, io.size, io.flags), (20, 3, 4));
    assert_eq!(io.buffer as usize, addrs.as_ptr() as usize);
    let io = PfiocTable::new::<PfrAddr>(PfrTable::new("", "t", 0).unwrap(), &mut [], 0);
    assert!(io.buffer.is_null());
    assert_eq!(io.size, 0);
}
