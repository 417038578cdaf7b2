//! The backend against the real kernel, one fresh network namespace per
//! test, checked against `ipset save` and `iptables -S` run in the same
//! namespace.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use banset_core::{
    Backend, BlockType, Changes, ErrorKind, Families, Hook, KernelEntry, PortRange, SetHealth,
    Target, Timeout,
};
use banset_ipset::IpsetBackend;
use common::*;

fn backend() -> IpsetBackend {
    IpsetBackend::open().expect("open backend")
}

#[test]
fn ensure_is_idempotent_with_one_rule_per_set() {
    in_netns("ensure_is_idempotent", || {
        let b = backend();
        let s = spec("f2b");
        assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
        b.ensure_set(&s).unwrap();
        b.ensure_set(&s).unwrap();
        let v4 = oracle("f2b").unwrap();
        assert!(
            v4.create.starts_with(
                "create f2b hash:net family inet hashsize 65536 maxelem 1048576 timeout 86400"
            ),
            "{}",
            v4.create
        );
        let v6 = oracle("f2b6").unwrap();
        assert!(v6.create.contains("hash:net family inet6"), "{}", v6.create);
        assert!(
            v6.create.contains("maxelem 1048576 timeout 86400"),
            "{}",
            v6.create
        );
        assert_eq!(
            input_rules("iptables"),
            ["-A INPUT -m set --match-set f2b src -m comment --comment \"banset f2b\" -j DROP"]
        );
        assert_eq!(
            input_rules("ip6tables"),
            ["-A INPUT -m set --match-set f2b6 src -m comment --comment \"banset f2b6\" -j DROP"]
        );
        assert_eq!(b.health(&s).unwrap(), SetHealth::Present);

        // A rule deleted behind banset's back: Incomplete, and ensure
        // repairs it without duplicating the other.
        run(
            "ip6tables",
            &[
                "-w",
                "-D",
                "INPUT",
                "-m",
                "set",
                "--match-set",
                "f2b6",
                "src",
                "-m",
                "comment",
                "--comment",
                "banset f2b6",
                "-j",
                "DROP",
            ],
        );
        assert_eq!(b.health(&s).unwrap(), SetHealth::Incomplete);
        b.ensure_set(&s).unwrap();
        assert_eq!(input_rules("iptables").len(), 1);
        assert_eq!(input_rules("ip6tables").len(), 1);
        assert_eq!(b.health(&s).unwrap(), SetHealth::Present);

        // hash:ip, one family, permanent by default, no hook.
        let mut hosts = spec("sshd");
        hosts.families = Families::Inet6;
        hosts.prefixes = false;
        hosts.timeout = Timeout::Never;
        hosts.hook = None;
        b.ensure_set(&hosts).unwrap();
        let sshd = oracle("sshd6").unwrap();
        assert!(
            sshd.create.contains("hash:ip family inet6"),
            "{}",
            sshd.create
        );
        assert!(
            sshd.create.contains("timeout 0"),
            "timeout support, no default: {}",
            sshd.create
        );
        assert!(oracle("sshd").is_none());
        assert_eq!(input_rules("ip6tables").len(), 1);
        assert_eq!(b.health(&hosts).unwrap(), SetHealth::Present);
    });
}

#[test]
fn hook_rule_with_ports_protocol_and_reject_goes_first() {
    in_netns("hook_rule_with_ports", || {
        run(
            "iptables",
            &[
                "-w", "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT",
            ],
        );
        let b = backend();
        let mut s = spec("mail");
        s.families = Families::Inet;
        s.hook = Some(Hook {
            ports: PortRange::parse_list("smtp,465,submission").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            permanent: false,
        });
        b.ensure_set(&s).unwrap();
        b.ensure_set(&s).unwrap();
        let rules = input_rules("iptables");
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(
            rules[0],
            "-A INPUT -p tcp -m set --match-set mail src -m multiport --dports 25,465,587 \
             -m comment --comment \"banset mail\" -j REJECT --reject-with icmp-port-unreachable",
            "banset's rule is first"
        );
        assert!(input_rules("ip6tables").is_empty());

        // More ports than multiport takes: Invalid, before anything is made.
        let mut many = spec("many");
        many.hook = Some(Hook {
            ports: PortRange::parse_list("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16").unwrap(),
            ..Hook::default()
        });
        let e = b.ensure_set(&many).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(oracle("many").is_none());
    });
}

#[test]
fn add_refreshes_timeouts_both_ways() {
    in_netns("add_refreshes", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("192.0.2.1", Some(3600))]).unwrap();
        let m = oracle("f2b").unwrap().members;
        assert_eq!(m[0].0, "192.0.2.1");
        assert!(m[0].1.unwrap() > 3590, "{m:?}");
        b.add(&s, &[entry("192.0.2.1", Some(60))]).unwrap();
        assert!(oracle("f2b").unwrap().members[0].1.unwrap() <= 60);
        // The same host twice in one batch: the last one wins.
        b.add(
            &s,
            &[entry("192.0.2.1", Some(10)), entry("192.0.2.1", Some(7200))],
        )
        .unwrap();
        assert!(oracle("f2b").unwrap().members[0].1.unwrap() > 7100);
        let listed = b.list(&s).unwrap();
        assert_eq!(listed.len(), 1);
        let left = listed[0].timeout.unwrap();
        assert!(left > Duration::from_secs(7100) && left <= Duration::from_secs(7200));
    });
}

#[test]
fn permanent_is_timeout_zero_and_back() {
    in_netns("permanent", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[entry("192.0.2.1", None), entry("192.0.2.2", Some(600))],
        )
        .unwrap();
        let m = oracle("f2b").unwrap().members;
        assert_eq!(
            m[0],
            ("192.0.2.1".to_string(), Some(0)),
            "permanent = timeout 0"
        );
        let mut listed = b.list(&s).unwrap();
        listed.sort_by_key(|e| e.target);
        assert_eq!(listed[0], entry("192.0.2.1", None));
        assert!(listed[1].timeout.is_some());
        b.add(&s, &[entry("192.0.2.1", Some(30))]).unwrap();
        assert!(oracle("f2b").unwrap().members[0].1.unwrap() <= 30);
        b.add(&s, &[entry("192.0.2.1", None)]).unwrap();
        assert_eq!(oracle("f2b").unwrap().members[0].1, Some(0));
    });
}

#[test]
fn ipv6_hosts_and_prefixes() {
    in_netns("ipv6", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("2001:db8::1", Some(100)),
                entry("2001:db8:1::/48", Some(100)),
                entry("fd00::/16", None),
            ],
        )
        .unwrap();
        assert_eq!(
            oracle_targets("f2b6"),
            ["2001:db8:1::/48", "2001:db8::1", "fd00::/16"]
        );
        assert!(oracle_targets("f2b").is_empty());
        assert!(b.contains(&s, &t("2001:db8::1")).unwrap());
        assert!(b.contains(&s, &t("2001:db8:1:2::3")).unwrap());
        assert!(b.contains(&s, &t("fd00:1::/32")).unwrap());
        assert!(!b.contains(&s, &t("2001:db8::2")).unwrap());
        let mut listed: Vec<String> = b
            .list(&s)
            .unwrap()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, ["2001:db8:1::/48", "2001:db8::1", "fd00::/16"]);
    });
}

#[test]
fn hash_net_prefixes_overlaps_and_containment() {
    in_netns("hash_net", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("10.0.0.0/8", Some(300)),
                entry("192.168.1.0/24", None),
                entry("1.2.3.4", Some(300)),
            ],
        )
        .unwrap();
        assert_eq!(
            oracle_targets("f2b"),
            ["1.2.3.4", "10.0.0.0/8", "192.168.1.0/24"]
        );
        // A host inside a banned prefix is fine.
        b.add(&s, &[entry("10.1.2.3", Some(60))]).unwrap();
        // Overlapping prefixes: refused before sending, naming both.
        let e = b
            .add(
                &s,
                &[entry("9.9.9.9", Some(60)), entry("10.1.0.0/16", Some(60))],
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(
            e.to_string().contains("10.1.0.0/16") && e.to_string().contains("10.0.0.0/8"),
            "{e}"
        );
        assert!(
            !oracle_targets("f2b").contains(&"9.9.9.9".to_string()),
            "nothing applied"
        );
        // Replacing a prefix by a wider one in one call is fine.
        b.apply(
            &s,
            &Changes {
                flush_first: false,
                remove: vec![t("192.168.1.0/24")],
                add: vec![entry("192.168.0.0/16", Some(60))],
            },
        )
        .unwrap();
        assert_eq!(
            oracle_targets("f2b"),
            ["1.2.3.4", "10.0.0.0/8", "10.1.2.3", "192.168.0.0/16"]
        );
        assert!(b.contains(&s, &t("10.9.9.9")).unwrap());
        assert!(b.contains(&s, &t("10.1.0.0/16")).unwrap());
        assert!(!b.contains(&s, &t("11.0.0.0")).unwrap());
        assert!(!b.contains(&s, &t("10.0.0.0/7")).unwrap());

        // Prefixes into hash:ip are refused; removing one is a no-op (ipset
        // would delete every host of the range).
        let mut hosts = spec("hosts");
        hosts.prefixes = false;
        hosts.families = Families::Inet;
        b.ensure_set(&hosts).unwrap();
        assert!(oracle("hosts").unwrap().create.contains("hash:ip"));
        b.add(&hosts, &[entry("10.0.0.1", None), entry("10.0.0.2", None)])
            .unwrap();
        let e = b.add(&hosts, &[entry("10.0.0.0/30", None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        let e = b.add(&hosts, &[entry("2001:db8::/32", None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        b.del(&hosts, &[t("10.0.0.0/30")]).unwrap();
        assert_eq!(oracle_targets("hosts"), ["10.0.0.1", "10.0.0.2"]);
        assert!(!b.contains(&hosts, &t("10.0.0.0/30")).unwrap());
    });
}

#[test]
fn timeouts_above_the_cap_are_invalid() {
    in_netns("timeout_cap", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        let cap = b.capabilities().max_timeout.unwrap();
        assert_eq!(cap, Duration::from_secs(2_147_483));
        b.add(
            &s,
            &[KernelEntry {
                target: t("192.0.2.1"),
                timeout: Some(cap),
            }],
        )
        .unwrap();
        let e = b
            .add(
                &s,
                &[
                    entry("192.0.2.2", Some(60)),
                    KernelEntry {
                        target: t("192.0.2.3"),
                        timeout: Some(Duration::from_secs(365 * 86_400)),
                    },
                ],
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(
            e.to_string().contains("192.0.2.3") && e.to_string().contains("2147483"),
            "{e}"
        );
        assert_eq!(
            oracle_targets("f2b"),
            ["192.0.2.1"],
            "nothing of the batch applied"
        );
        // A set default above the cap is capped, not refused.
        let mut long = spec("long");
        long.timeout = Timeout::Secs(365 * 86_400);
        b.ensure_set(&long).unwrap();
        assert!(oracle("long").unwrap().create.contains("timeout 2147483"));
    });
}

#[test]
fn a_full_set_is_set_full_naming_set_and_maxelem() {
    in_netns("set_full", || {
        let b = backend();
        let mut s = spec("small");
        s.families = Families::Inet;
        s.max_elements = Some(4);
        b.ensure_set(&s).unwrap();
        assert!(oracle("small").unwrap().create.contains("maxelem 4"));
        let four: Vec<KernelEntry> = (1..=4)
            .map(|i| entry(&format!("192.0.2.{i}"), Some(600)))
            .collect();
        b.add(&s, &four).unwrap();
        // Refreshing members of a full set is fine.
        b.add(&s, &four[..2]).unwrap();
        let e = b
            .add(
                &s,
                &[entry("192.0.2.1", Some(60)), entry("192.0.2.9", Some(60))],
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SetFull, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("small") && text.contains("maxelem is 4"),
            "{text}"
        );
        assert_eq!(oracle("small").unwrap().members.len(), 4);
        // A single host skips the pre-check; the kernel's refusal says the same.
        let e = b.add(&s, &[entry("192.0.2.10", Some(60))]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SetFull, "{e}");
        assert!(
            e.to_string()
                .contains("ipset small is full: its maxelem is 4"),
            "{e}"
        );
        assert!(e.context().contains("entry 192.0.2.10 (1 of 1)"), "{e}");
        // Making room in the same call works.
        b.apply(
            &s,
            &Changes {
                flush_first: false,
                remove: vec![t("192.0.2.4")],
                add: vec![entry("192.0.2.9", Some(60))],
            },
        )
        .unwrap();
        assert!(oracle_targets("small").contains(&"192.0.2.9".to_string()));
        // A replace larger than maxelem: refused, the live set untouched.
        let five: Vec<KernelEntry> = (10..=14)
            .map(|i| entry(&format!("192.0.2.{i}"), None))
            .collect();
        let e = b
            .apply(
                &s,
                &Changes {
                    flush_first: true,
                    remove: vec![],
                    add: five,
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SetFull, "{e}");
        assert_eq!(oracle("small").unwrap().members.len(), 4);
    });
}

#[test]
fn del_of_absent_members_is_fine() {
    in_netns("del_absent", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.del(&s, &[t("192.0.2.9")]).unwrap();
        b.add(
            &s,
            &[entry("192.0.2.1", Some(60)), entry("2001:db8::1", Some(60))],
        )
        .unwrap();
        b.del(
            &s,
            &[
                t("192.0.2.9"),
                t("192.0.2.1"),
                t("2001:db8::1"),
                t("2001:db8::2"),
                t("10.0.0.0/8"),
            ],
        )
        .unwrap();
        assert!(oracle_targets("f2b").is_empty());
        assert!(oracle_targets("f2b6").is_empty());
    });
}

#[test]
fn flush_keeps_sets_and_rules() {
    in_netns("flush", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("192.0.2.1", None),
                entry("2001:db8::1", None),
                entry("10.0.0.0/8", None),
            ],
        )
        .unwrap();
        b.flush(&s).unwrap();
        assert!(b.list(&s).unwrap().is_empty());
        assert!(oracle_targets("f2b").is_empty() && oracle_targets("f2b6").is_empty());
        assert_eq!(input_rules("iptables").len(), 1);
        assert_eq!(b.health(&s).unwrap(), SetHealth::Present);
    });
}

#[test]
fn replace_swaps_in_a_filled_set_and_leaves_no_temporary() {
    in_netns("replace_swap", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("10.0.0.0/8", None),
                entry("192.0.2.1", None),
                entry("2001:db8::1", None),
            ],
        )
        .unwrap();
        // An overlap with the old content is none: it is replaced.
        b.apply(
            &s,
            &Changes {
                flush_first: true,
                remove: vec![t("192.0.2.50")],
                add: vec![entry("10.1.0.0/16", Some(600)), entry("192.0.2.2", None)],
            },
        )
        .unwrap();
        assert_eq!(oracle_targets("f2b"), ["10.1.0.0/16", "192.0.2.2"]);
        assert!(
            oracle_targets("f2b6").is_empty(),
            "a family without additions is flushed"
        );
        assert_eq!(set_names(), ["f2b", "f2b6"], "the temporary set is gone");
        // The rule still matches the set, which now holds the new content
        // (the swap moved the content, not the rule's reference).
        assert_eq!(input_rules("iptables").len(), 1);
        let xml = run("ipset", &["list", "-o", "xml", "f2b"]);
        assert!(xml.contains("<references>1</references>"), "{xml}");
        assert!(xml.contains("<elem>10.1.0.0/16</elem>"), "{xml}");
        // A replace of a missing set is NotFound, and creates nothing.
        let e = b
            .apply(
                &spec("nope"),
                &Changes {
                    flush_first: true,
                    remove: vec![],
                    add: vec![entry("192.0.2.3", None)],
                },
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(set_names(), ["f2b", "f2b6"]);
    });
}

#[test]
fn destroy_removes_rules_then_sets() {
    in_netns("destroy", || {
        let b = backend();
        let s = spec("f2b");
        let other = spec("other");
        b.ensure_set(&s).unwrap();
        b.ensure_set(&other).unwrap();
        b.add(&s, &[entry("192.0.2.1", None)]).unwrap();
        b.destroy(&s).unwrap();
        assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
        assert_eq!(set_names(), ["other", "other6"]);
        assert_eq!(input_rules("iptables").len(), 1);
        assert!(input_rules("iptables")[0].contains("banset other"));
        b.destroy(&s).unwrap();
        b.destroy(&other).unwrap();
        assert!(set_names().is_empty());
        assert!(input_rules("iptables").is_empty() && input_rules("ip6tables").is_empty());
    });
}

#[test]
fn destroy_of_a_set_someone_else_uses_names_that() {
    in_netns("destroy_busy", || {
        let b = backend();
        let mut s = spec("f2b");
        s.families = Families::Inet;
        b.ensure_set(&s).unwrap();
        run(
            "iptables",
            &[
                "-w",
                "-A",
                "FORWARD",
                "-m",
                "set",
                "--match-set",
                "f2b",
                "src",
                "-j",
                "DROP",
            ],
        );
        let e = b.destroy(&s).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("in use by a rule banset did not create") && text.contains("f2b"),
            "{text}"
        );
        assert!(oracle("f2b").is_some(), "the set stays");
        assert!(
            input_rules("iptables").is_empty(),
            "banset's own rule is gone"
        );
        run(
            "iptables",
            &[
                "-w",
                "-D",
                "FORWARD",
                "-m",
                "set",
                "--match-set",
                "f2b",
                "src",
                "-j",
                "DROP",
            ],
        );
        b.destroy(&s).unwrap();
        assert!(set_names().is_empty());
    });
}

#[test]
fn a_foreign_set_of_another_type_is_exists() {
    in_netns("foreign_set", || {
        run("ipset", &["create", "f2b", "hash:ip", "timeout", "0"]);
        run("ipset", &["create", "old6", "hash:net", "family", "inet6"]);
        let b = backend();
        let e = b.ensure_set(&spec("f2b")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exists, "{e}");
        assert!(
            e.to_string().contains("banset destroy f2b") && e.to_string().contains("hash:ip"),
            "{e}"
        );
        let mut old = spec("old");
        old.families = Families::Inet6;
        let e = b.ensure_set(&old).unwrap_err();
        assert!(e.to_string().contains("without timeout support"), "{e}");
        // The other type never gets CIDR entries: add refuses up front.
        let e = b
            .add(&spec("f2b"), &[entry("10.0.0.0/8", None)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exists, "{e}");
        assert!(oracle_targets("f2b").is_empty());
    });
}

/// Set `x` needs ipsets `x` and `x6`; `x6` is the IPv4 ipset of set `x6`.
/// Creating `x` made ipset `x` before finding the clash (an orphan), and
/// the hint said to `banset destroy x`, which removes `x6` as well.
#[test]
fn a_name_clash_with_another_sets_ipset_creates_nothing_and_destroys_nothing() {
    in_netns("name_clash", || {
        let b = backend();
        b.ensure_set(&spec("x6")).unwrap();
        let before = set_names();
        let e = b.ensure_set(&spec("x")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exists, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("x6") && text.contains("another name") && !text.contains("destroy"),
            "{text}"
        );
        assert_eq!(set_names(), before, "nothing created");
        assert_eq!(b.health(&spec("x6")).unwrap(), SetHealth::Present);
    });
}

#[test]
fn missing_sets_are_not_found_and_apply_creates_nothing() {
    in_netns("missing", || {
        let b = backend();
        let s = spec("f2b");
        let e = b.add(&s, &[entry("192.0.2.1", None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("f2b"), "{e}");
        assert_eq!(b.list(&s).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(b.flush(&s).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            b.contains(&s, &t("192.0.2.1")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            b.contains(&s, &t("10.0.0.0/8")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(set_names().is_empty());
        b.destroy(&s).unwrap();
    });
}

#[test]
fn without_cap_net_admin_is_permission_with_a_hint() {
    in_netns("permission", || {
        // The raw syscall changes only this thread's credentials.
        // SAFETY: setresuid has no memory-safety preconditions.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let b = backend();
        let mut s = spec("f2b");
        s.hook = None;
        for e in [
            b.ensure_set(&s).unwrap_err(),
            b.add(&s, &[entry("192.0.2.1", None)]).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
            assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        }
    });
}

fn many_v4(n: u32, base: u32) -> Vec<KernelEntry> {
    (0..n)
        .map(|i| KernelEntry {
            target: Target::host(std::net::Ipv4Addr::from(base + i).into()).unwrap(),
            timeout: Some(Duration::from_secs(604_800)),
        })
        .collect()
}

#[test]
fn batch_of_100k_and_listing() {
    in_netns("batch_100k", || {
        let b = backend();
        let mut s = spec("big");
        s.prefixes = false;
        b.ensure_set(&s).unwrap();
        let entries = many_v4(100_000, 0x0b00_0000);
        let start = Instant::now();
        b.add(&s, &entries).unwrap();
        let added = start.elapsed();
        let start = Instant::now();
        let listed = b.list(&s).unwrap();
        let listing = start.elapsed();
        let start = Instant::now();
        b.add(&s, &entries[..1]).unwrap();
        let one = start.elapsed();
        eprintln!("100k IPv4 adds: {added:?}; list 100k: {listing:?}; one add: {one:?}");
        assert_eq!(listed.len(), 100_000);
        let distinct: std::collections::HashSet<_> = listed.iter().map(|e| e.target).collect();
        assert_eq!(distinct.len(), 100_000);
        assert_eq!(oracle("big").unwrap().members.len(), 100_000);
        // Re-adding all refreshes, never fails; removing half is one call.
        b.add(&s, &entries).unwrap();
        let half: Vec<_> = entries.iter().step_by(2).map(|e| e.target).collect();
        b.del(&s, &half).unwrap();
        assert_eq!(b.list(&s).unwrap().len(), 50_000);
    });
}

#[test]
fn batch_of_one_million() {
    in_netns("batch_1m", || {
        let b = backend();
        let mut s = spec("huge");
        s.prefixes = false;
        s.families = Families::Inet;
        b.ensure_set(&s).unwrap();
        let entries = many_v4(1_000_000, 0x0c00_0000);
        let start = Instant::now();
        b.add(&s, &entries).unwrap();
        let added = start.elapsed();
        let start = Instant::now();
        let listed = b.list(&s).unwrap();
        eprintln!("1M IPv4 adds: {added:?}; list 1M: {:?}", start.elapsed());
        assert_eq!(listed.len(), 1_000_000);
        for e in entries.iter().step_by(99_991).chain(entries.last()) {
            assert!(b.contains(&s, &e.target).unwrap(), "{}", e.target);
        }
        b.flush(&s).unwrap();
        assert!(oracle("huge").unwrap().members.is_empty());
    });
}
