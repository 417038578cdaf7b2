//! Bytes against what `ipfw(8)` on FreeBSD 14 sends, and synthetic
//! replies laid out as the kernel writes them.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn t(s: &str) -> Target {
    s.parse().unwrap()
}

/// `ipfw table f2b add 192.0.2.1`, byte for byte (notes §3.3): 232 bytes.
#[test]
fn xadd_golden() {
    let mut want = hex("56000100 00000000 00000000 01000000
         01000000 50000000 01000001 00000000
         66326200");
    want.resize(16 + 80, 0); // the rest of the name
    want.extend(hex("00000000 88000000 01000000 00000000"));
    want.extend(hex("00000000 78000000 02200000 01000000 c0000201"));
    want.resize(96 + 16 + 120, 0); // the rest of the key, and the value
    let got = modify(XADD, "f2b", &[t("192.0.2.1")], false, false);
    assert_eq!(got.len(), 232);
    assert_eq!(got, want);
}

#[test]
fn update_and_atomic_flags_sit_where_the_kernel_reads_them() {
    let got = modify(
        XADD,
        "f2b",
        &[t("192.0.2.1"), t("2001:db8::/64")],
        true,
        true,
    );
    assert_eq!(got.len(), 96 + 16 + 2 * 120);
    assert_eq!(got[96 + 15], CTF_ATOMIC, "ctlv flags");
    assert_eq!(
        &got[96 + 4..96 + 8],
        &(16u32 + 240).to_le_bytes(),
        "ctlv length"
    );
    let second = 96 + 16 + 120;
    assert_eq!(
        &got[second + 2..second + 4],
        &[1, 0],
        "tentry flags: update"
    );
    assert_eq!(got[second + 8], 28, "FreeBSD's AF_INET6, never Linux's 10");
    assert_eq!(got[second + 9], 64);
    assert_eq!(&got[second + 12..second + 14], &[1, 0], "tentry idx");
    assert_eq!(&got[second + 16..second + 20], &[0x20, 0x01, 0x0d, 0xb8]);
    let del = modify(XDEL, "f2b", &[t("192.0.2.1")], false, false);
    assert_eq!(&del[..4], &[87, 0, 1, 0], "XDEL v1");
}

#[test]
fn create_info_and_header_only_requests() {
    let c = create("f2b", 1000);
    assert_eq!(c.len(), 296);
    assert_eq!(&c[..4], &[95, 0, 0, 0], "XCREATE v0");
    assert_eq!(c[16 + 11], 0, "ntlv type is 0 for create");
    assert_eq!(c[96], TABLE_ADDR);
    assert_eq!(&c[96 + 12..96 + 16], &[0xff; 4], "vmask legacy");
    assert_eq!(&c[96 + 36..96 + 40], &1000u32.to_le_bytes(), "limit");
    let i = info("f2b");
    assert_eq!((&i[..4], i.len()), (&[93u8, 0, 0, 0][..], 296));
    let f = header_only(XFLUSH, "f2b");
    assert_eq!((f.len(), &f[..2]), (96, &[94u8, 0][..]));
    assert_eq!(&f[32..35], b"f2b");
    let l = list("f2b", 4096);
    assert_eq!((l.len(), &l[..4]), (4096, &[89u8, 0, 1, 0][..]));
}

/// A reply as `dump_table_v1` writes it: header, info, entries.
fn reply(entries: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut r = info("f2b");
    r[96] = TABLE_ADDR;
    r[96 + 28..96 + 32].copy_from_slice(&(entries.len() as u32).to_le_bytes());
    let size = (96 + 200 + entries.len() * 120) as u32;
    r[96 + 32..96 + 36].copy_from_slice(&size.to_le_bytes());
    for (af, len, key) in entries {
        let mut e = vec![0u8; 120];
        e[4..8].copy_from_slice(&120u32.to_le_bytes());
        e[8] = *af;
        e[9] = *len;
        e[16..16 + key.len()].copy_from_slice(key);
        r.extend(e);
    }
    r
}

#[test]
fn list_replies_decode() {
    let r = reply(&[
        (2, 32, &[192, 0, 2, 1]),
        (2, 24, &[198, 51, 100, 0]),
        (28, 48, &[0x20, 0x01, 0x0d, 0xb8, 0, 7]),
    ]);
    let info = parse_info(&r).unwrap();
    assert_eq!((info.count, info.size as usize), (3, r.len()));
    assert_eq!(
        parse_list(&r).unwrap(),
        [t("192.0.2.1"), t("198.51.100.0/24"), t("2001:db8:7::/48")]
    );
    let linux_af = parse_list(&reply(&[(10, 128, &[0x20])])).unwrap_err();
    assert_eq!(linux_af, ReplyError::Family { af: 10 });
    assert!(linux_af.to_string().contains("family 10"));
    let host_bits = parse_list(&reply(&[(2, 24, &[192, 0, 2, 1])])).unwrap_err();
    assert!(matches!(host_bits, ReplyError::Prefix { len: 24, .. }));
    assert!(host_bits.to_string().contains("192.0.2.1/24"));
    let mut short = reply(&[(2, 32, &[192, 0, 2, 1])]);
    short.truncate(300);
    assert!(matches!(
        parse_list(&short),
        Err(ReplyError::ShortList { len: 300, count: 1 })
    ));
}

#[test]
fn results_come_back_per_entry() {
    let mut r = modify(XDEL, "f2b", &[t("192.0.2.1"), t("192.0.2.2")], false, false);
    r[96 + 16 + 10] = result::DELETED;
    r[96 + 16 + 120 + 10] = result::NOTFOUND;
    assert_eq!(
        parse_results(&r, 2).unwrap(),
        [result::DELETED, result::NOTFOUND]
    );
    assert_eq!(
        parse_results(&r, 3),
        Err(ReplyError::ShortResults {
            len: r.len(),
            count: 3
        })
    );
}

#[test]
fn osreldate_picks_the_abi() {
    assert_eq!(Abi::from_osreldate(1_403_000), Some(Abi::Fbsd11To14));
    assert_eq!(Abi::from_osreldate(1_100_000), Some(Abi::Fbsd11To14));
    assert_eq!(Abi::from_osreldate(1_500_000), Some(Abi::Fbsd15));
    assert_eq!(Abi::from_osreldate(1_099_999), None);
}

#[test]
fn names_as_ipfw_takes_them() {
    assert!(check_name("f2b-postfix.v2_x").is_ok());
    assert!(check_name(&"a".repeat(63)).is_ok());
    for bad in ["", "a b", "a/b", "x;y"] {
        assert_eq!(
            check_name(bad),
            Err(TableNameError::Invalid { name: bad.into() }),
            "{bad}"
        );
    }
    assert_eq!(check_name("all"), Err(TableNameError::Reserved));
    assert!(check_name(&"a".repeat(64)).is_err());
}

/// `ipfw table f2b swap f2b.new`: the header naming f2b (idx 1), then a
/// second `ipfw_obj_ntlv` naming f2b.new, also idx 1: 96 + 80 bytes.
#[test]
fn xswap_layout() {
    let mut want = hex("6d000000 00000000 00000000 01000000
         01000000 50000000 01000000 00000000
         66326200");
    want.resize(16 + 80, 0);
    want.extend(hex("01000000 50000000 01000000 00000000"));
    want.extend(b"f2b.new");
    want.resize(96 + 80, 0);
    let got = swap("f2b", "f2b.new");
    assert_eq!(got.len(), OBJ_HEADER_LEN + NTLV_LEN);
    assert_eq!(got, want);
    assert_eq!(XSWAP, 109, "IP_FW_TABLE_XSWAP in netinet/ip_fw.h");
}
