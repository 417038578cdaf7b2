//! The backend against the real kernel, one fresh network namespace per test,
//! checked against `nft -j` run in the same namespace.

#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use banset_core::{
    Backend, BlockType, Changes, ErrorKind, Families, Hook, KernelEntry, PortRange, SetHealth,
    Target, Timeout,
};
use banset_nftables::NftablesBackend;
use common::*;

/// A target as a kernel may hold it though banset would refuse it (the
/// top of the address space is broadcast or multicast).
fn kernel_held(addr: &str, len: u8) -> Target {
    Target::listed(addr.parse().unwrap(), len).unwrap()
}

fn backend() -> NftablesBackend {
    NftablesBackend::open().expect("open backend")
}

#[test]
fn ensure_is_idempotent_and_creates_what_nft_shows() {
    in_netns("ensure_is_idempotent", || {
        let b = backend();
        let s = spec("f2b");
        assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
        b.ensure_set(&s).unwrap();
        b.ensure_set(&s).unwrap();
        assert_eq!(
            oracle_rule_comments(),
            [
                "banset f2b_v4",
                "banset f2b_v6",
                "banset f2b_v4net",
                "banset f2b_v6net"
            ]
        );
        let listing = nft(&["list", "table", "inet", "banset"]);
        for want in [
            "type filter hook input priority filter - 10; policy accept;",
            "ip saddr @f2b_v4 drop comment \"banset f2b_v4\"",
            "ip6 saddr @f2b_v6 drop comment \"banset f2b_v6\"",
            "ip saddr @f2b_v4net drop comment \"banset f2b_v4net\"",
            // size: the spec's max_elements (twice over for an interval
            // set, which keeps a start and an end element per prefix)
            "set f2b_v4net {\n\t\ttype ipv4_addr\n\t\tsize 2097152\n\t\tflags interval,timeout\n\t\ttimeout 1d",
            "set f2b_v6 {\n\t\ttype ipv6_addr\n\t\tsize 1048576\n\t\ttimeout 1d",
        ] {
            assert!(listing.contains(want), "missing {want:?} in\n{listing}");
        }
        assert_eq!(b.health(&s).unwrap(), SetHealth::Present);

        // A rule deleted behind banset's back: Incomplete, and ensure repairs
        // it without duplicating the others.
        let handle = nft(&["-a", "list", "chain", "inet", "banset", "input"])
            .lines()
            .find(|l| l.contains("banset f2b_v6\""))
            .and_then(|l| l.rsplit("handle ").next())
            .unwrap()
            .trim()
            .to_string();
        nft(&[
            "delete", "rule", "inet", "banset", "input", "handle", &handle,
        ]);
        assert_eq!(b.health(&s).unwrap(), SetHealth::Incomplete);
        b.ensure_set(&s).unwrap();
        assert_eq!(oracle_rule_comments().len(), 4);
        assert_eq!(b.health(&s).unwrap(), SetHealth::Present);

        // A second logical set shares table and chain.
        let mut other = spec("sshd");
        other.families = Families::Inet6;
        other.prefixes = false;
        other.timeout = Timeout::Never;
        b.ensure_set(&other).unwrap();
        assert_eq!(oracle_rule_comments().len(), 5);
        assert!(nft_ok(&["list", "set", "inet", "banset", "sshd_v6"]));
        assert!(!nft_ok(&["list", "set", "inet", "banset", "sshd_v4"]));
        let sshd = nft(&["list", "set", "inet", "banset", "sshd_v6"]);
        assert!(!sshd.contains("timeout 1d"), "no default timeout:\n{sshd}");
    });
}

#[test]
fn hook_with_ports_and_reject() {
    in_netns("hook_with_ports_and_reject", || {
        let b = backend();
        let mut s = spec("mail");
        s.prefixes = false;
        s.hook = Some(Hook {
            ports: PortRange::parse_list("smtp,465,submission").unwrap(),
            protocol: None,
            block: BlockType::Reject,
            permanent: false,
        });
        b.ensure_set(&s).unwrap();
        b.ensure_set(&s).unwrap();
        let chain = nft(&["list", "chain", "inet", "banset", "input"]);
        // nft prints `reject` for icmpx port-unreachable, its inet default.
        assert!(
            chain.contains(
                "ip saddr @mail_v4 tcp dport @mail_ports reject comment \"banset mail_v4\""
            ),
            "{chain}"
        );
        assert!(
            chain.contains("ip6 saddr @mail_v6 tcp dport @mail_ports reject"),
            "{chain}"
        );
        let ports: Vec<String> = oracle_set("mail_ports")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(ports, ["25", "465", "587"]);

        // A changed port list replaces the old one on the next ensure.
        s.hook.as_mut().unwrap().ports = PortRange::parse_list("2525").unwrap();
        b.ensure_set(&s).unwrap();
        let ports: Vec<String> = oracle_set("mail_ports")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(ports, ["2525"]);

        // A protocol without ports: `meta l4proto`, no ports set.
        let mut udp = spec("dns");
        udp.families = Families::Inet;
        udp.prefixes = false;
        udp.hook = Some(Hook {
            protocol: Some(banset_core::Protocol::Udp),
            ..Hook::default()
        });
        b.ensure_set(&udp).unwrap();
        let chain = nft(&["list", "chain", "inet", "banset", "input"]);
        assert!(
            chain.contains("ip saddr @dns_v4 meta l4proto udp drop comment \"banset dns_v4\""),
            "{chain}"
        );
        assert!(!nft_ok(&["list", "set", "inet", "banset", "dns_ports"]));

        // No hook: sets only.
        let mut bare = spec("bare");
        bare.hook = None;
        b.ensure_set(&bare).unwrap();
        assert_eq!(oracle_rule_comments().len(), 3);
        assert_eq!(b.health(&bare).unwrap(), SetHealth::Present);
    });
}

#[test]
fn add_refreshes_timeouts_both_ways() {
    in_netns("add_refreshes_timeouts", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("1.2.3.4", Some(3600))]).unwrap();
        let e = &oracle_set("f2b_v4")[0];
        assert_eq!((e.target.as_str(), e.timeout), ("1.2.3.4", Some(3600)));
        assert!(e.expires.unwrap() > 3500);

        b.add(&s, &[entry("1.2.3.4", Some(60))]).unwrap();
        let e = &oracle_set("f2b_v4")[0];
        assert!(e.expires.unwrap() <= 60, "shorter: {e:?}");

        // The same host twice in one batch: the last timeout wins.
        b.add(
            &s,
            &[entry("1.2.3.4", Some(10)), entry("1.2.3.4", Some(7200))],
        )
        .unwrap();
        let e = &oracle_set("f2b_v4")[0];
        assert!(e.expires.unwrap() > 3600, "longer: {e:?}");

        let listed = b.list(&s).unwrap();
        assert_eq!(listed.len(), 1);
        let left = listed[0].timeout.unwrap();
        assert!(left > Duration::from_secs(7100) && left <= Duration::from_secs(7200));
    });
}

#[test]
fn permanent_members_and_back() {
    in_netns("permanent_members", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("1.2.3.4", None), entry("5.6.7.8", Some(600))])
            .unwrap();
        let oracle = oracle_set("f2b_v4");
        assert_eq!(oracle[0].target, "1.2.3.4");
        assert_eq!(
            oracle[0].expires, None,
            "permanent despite the 1d set default"
        );
        assert!(oracle[1].expires.is_some());
        let mut listed = b.list(&s).unwrap();
        listed.sort_by_key(|e| e.target);
        assert_eq!(listed[0], entry("1.2.3.4", None));
        assert!(listed[1].timeout.is_some());

        // permanent -> timed -> permanent
        b.add(&s, &[entry("1.2.3.4", Some(30))]).unwrap();
        assert!(oracle_set("f2b_v4")[0].expires.unwrap() <= 30);
        b.add(&s, &[entry("1.2.3.4", None)]).unwrap();
        assert_eq!(oracle_set("f2b_v4")[0].expires, None);
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
                // The top of the address space, where an interval's end
                // would wrap: multicast, so banset never bans it, but a
                // kernel may hold it (added by hand) and must list it.
                KernelEntry {
                    target: kernel_held("ffff::", 16),
                    timeout: None,
                },
            ],
        )
        .unwrap();
        assert_eq!(oracle_set("f2b_v6")[0].target, "2001:db8::1");
        let nets: Vec<String> = oracle_set("f2b_v6net")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(nets, ["2001:db8:1::/48", "ffff::/16"]);
        assert!(b.contains(&s, &t("2001:db8::1")).unwrap());
        assert!(b.contains(&s, &t("2001:db8:1:2::3")).unwrap());
        assert!(b.contains(&s, &kernel_held("ffff:1::", 32)).unwrap());
        assert!(!b.contains(&s, &t("2001:db8::2")).unwrap());
        let mut listed: Vec<String> = b
            .list(&s)
            .unwrap()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, ["2001:db8:1::/48", "2001:db8::1", "ffff::/16"]);
    });
}

#[test]
fn prefixes_refresh_and_overlaps_are_refused() {
    in_netns("prefixes_and_overlaps", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("10.0.0.0/8", Some(300)),
                entry("192.168.1.0/24", None),
                entry("255.0.0.0/8", Some(300)),
                entry("1.2.3.4", Some(300)),
            ],
        )
        .unwrap();
        let nets = oracle_set("f2b_v4net");
        let names: Vec<&str> = nets.iter().map(|e| e.target.as_str()).collect();
        assert_eq!(names, ["10.0.0.0/8", "192.168.1.0/24", "255.0.0.0/8"]);
        assert_eq!(nets[1].expires, None);
        assert_eq!(
            oracle_set("f2b_v4")[0].target,
            "1.2.3.4",
            "hosts stay in the hash set"
        );

        // Re-adding the same prefix refreshes it (6.18 accepts identical intervals).
        b.add(&s, &[entry("10.0.0.0/8", Some(30))]).unwrap();
        let nets = oracle_set("f2b_v4net");
        assert!(nets[0].expires.unwrap() <= 30, "{nets:?}");

        // Overlaps: refused before sending, naming both, nothing applied.
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
        assert_eq!(oracle_set("f2b_v4").len(), 1, "9.9.9.9 not added");
        let e = b
            .add(
                &s,
                &[entry("172.16.0.0/12", None), entry("172.16.5.0/24", None)],
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid);
        assert!(e.to_string().contains("added earlier in this batch"), "{e}");

        // Replacing a prefix by a wider one in one batch is fine.
        b.apply(
            &s,
            &Changes {
                flush_first: false,
                remove: vec![t("192.168.1.0/24")],
                add: vec![entry("192.168.0.0/16", Some(60))],
            },
        )
        .unwrap();
        let names: Vec<String> = oracle_set("f2b_v4net")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(names, ["10.0.0.0/8", "192.168.0.0/16", "255.0.0.0/8"]);

        // Listing and containment.
        let mut listed: Vec<String> = b
            .list(&s)
            .unwrap()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            ["1.2.3.4", "10.0.0.0/8", "192.168.0.0/16", "255.0.0.0/8"]
        );
        assert!(b.contains(&s, &t("10.9.9.9")).unwrap());
        assert!(b.contains(&s, &t("10.1.0.0/16")).unwrap());
        // The last address of the space (broadcast: banset never bans it,
        // but it is inside 255.0.0.0/8).
        assert!(b.contains(&s, &kernel_held("255.255.255.255", 32)).unwrap());
        assert!(!b.contains(&s, &t("11.0.0.0")).unwrap());
        assert!(!b.contains(&s, &t("10.0.0.0/7")).unwrap());

        // Prefixes into a set without --prefixes, or the wrong family.
        let mut hosts_only = spec("hosts");
        hosts_only.prefixes = false;
        hosts_only.families = Families::Inet;
        b.ensure_set(&hosts_only).unwrap();
        for bad in ["10.0.0.0/8", "2001:db8::1"] {
            let e = b.add(&hosts_only, &[entry(bad, None)]).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
            assert!(e.to_string().contains(bad), "{e}");
        }

        // Removing prefixes, present or not.
        b.del(&s, &[t("10.0.0.0/8"), t("255.0.0.0/8"), t("20.0.0.0/8")])
            .unwrap();
        let names: Vec<String> = oracle_set("f2b_v4net")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(names, ["192.168.0.0/16"]);
    });
}

#[test]
fn del_of_absent_members_is_fine() {
    in_netns("del_absent", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.del(&s, &[t("9.9.9.9")]).unwrap();
        b.add(
            &s,
            &[entry("1.2.3.4", Some(60)), entry("2001:db8::1", Some(60))],
        )
        .unwrap();
        b.del(
            &s,
            &[
                t("9.9.9.9"),
                t("1.2.3.4"),
                t("2001:db8::1"),
                t("2001:db8::2"),
            ],
        )
        .unwrap();
        assert!(oracle_set("f2b_v4").is_empty());
        assert!(oracle_set("f2b_v6").is_empty());

        // The pre-6.3 path: list, then DELSETELEM of what is present.
        let legacy = backend().with_legacy_removal();
        legacy
            .add(
                &s,
                &[entry("1.2.3.4", Some(60)), entry("10.0.0.0/8", Some(60))],
            )
            .unwrap();
        legacy
            .del(
                &s,
                &[t("9.9.9.9"), t("1.2.3.4"), t("10.0.0.0/8"), t("11.0.0.0/8")],
            )
            .unwrap();
        assert!(oracle_set("f2b_v4").is_empty());
        assert!(oracle_set("f2b_v4net").is_empty());
    });
}

#[test]
fn flush_empties_every_kernel_set_and_keeps_rules() {
    in_netns("flush", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(
            &s,
            &[
                entry("1.2.3.4", None),
                entry("2001:db8::1", None),
                entry("10.0.0.0/8", None),
            ],
        )
        .unwrap();
        b.flush(&s).unwrap();
        assert!(b.list(&s).unwrap().is_empty());
        for set in ["f2b_v4", "f2b_v6", "f2b_v4net", "f2b_v6net"] {
            assert!(oracle_set(set).is_empty(), "{set}");
        }
        assert_eq!(oracle_rule_comments().len(), 4);

        // Flush and refill in one batch: an overlap with the old members is
        // no overlap, because they are gone first.
        b.add(&s, &[entry("10.0.0.0/8", None)]).unwrap();
        b.apply(
            &s,
            &Changes {
                flush_first: true,
                remove: vec![],
                add: vec![entry("10.1.0.0/16", None), entry("1.1.1.1", None)],
            },
        )
        .unwrap();
        let mut listed: Vec<String> = b
            .list(&s)
            .unwrap()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, ["1.1.1.1", "10.1.0.0/16"]);
    });
}

#[test]
fn destroy_removes_only_its_own_objects() {
    in_netns("destroy", || {
        let b = backend();
        let a = spec("a");
        let mut other = spec("b");
        other.hook = Some(Hook {
            ports: PortRange::parse_list("22").unwrap(),
            ..Hook::default()
        });
        b.ensure_set(&a).unwrap();
        b.ensure_set(&other).unwrap();
        b.add(&a, &[entry("1.2.3.4", None)]).unwrap();
        b.destroy(&a).unwrap();
        assert_eq!(b.health(&a).unwrap(), SetHealth::Missing);
        assert_eq!(b.health(&other).unwrap(), SetHealth::Present);
        assert!(!nft_ok(&["list", "set", "inet", "banset", "a_v4"]));
        assert!(oracle_rule_comments()
            .iter()
            .all(|c| c.starts_with("banset b_")));

        b.destroy(&other).unwrap();
        assert!(
            !nft_ok(&["list", "table", "inet", "banset"]),
            "table gone when empty"
        );
        b.destroy(&other).unwrap();

        // The table stays when someone else has put something in it.
        b.ensure_set(&a).unwrap();
        nft(&["add", "chain", "inet", "banset", "mine"]);
        b.destroy(&a).unwrap();
        assert!(nft_ok(&["list", "chain", "inet", "banset", "mine"]));
        assert!(!nft_ok(&["list", "set", "inet", "banset", "a_v4"]));
    });
}

#[test]
fn missing_objects_are_not_found_and_never_created_by_apply() {
    in_netns("missing_objects", || {
        let b = backend();
        let s = spec("f2b");
        let e = b.add(&s, &[entry("1.2.3.4", None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("f2b_v4"), "{e}");
        assert_eq!(b.list(&s).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(b.flush(&s).unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(
            b.contains(&s, &t("1.2.3.4")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            b.add(&s, &[entry("10.0.0.0/8", None)]).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(!nft_ok(&["list", "table", "inet", "banset"]));
        b.destroy(&s).unwrap();
    });
}

#[test]
fn a_foreign_set_with_other_flags_is_exists() {
    in_netns("foreign_set", || {
        nft(&["add", "table", "inet", "banset"]);
        nft(&[
            "add",
            "set",
            "inet",
            "banset",
            "f2b_v4",
            "{ type ipv4_addr; flags interval; }",
        ]);
        let b = backend();
        let e = b.ensure_set(&spec("f2b")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Exists, "{e}");
        assert!(e.to_string().contains("banset destroy f2b"), "{e}");
        assert!(e.to_string().contains("f2b_v4"), "{e}");
        assert_eq!(b.health(&spec("f2b")).unwrap(), SetHealth::Incomplete);
    });
}

#[test]
fn element_errors_name_set_and_elements() {
    in_netns("element_errors", || {
        // A set without the timeout flag refuses element timeouts (EINVAL).
        nft(&["add", "table", "inet", "banset"]);
        nft(&[
            "add",
            "set",
            "inet",
            "banset",
            "x_v4",
            "{ type ipv4_addr; }",
        ]);
        let b = backend();
        let mut s = spec("x");
        s.families = Families::Inet;
        s.prefixes = false;
        let e = b
            .add(&s, &[entry("1.2.3.4", Some(5)), entry("5.6.7.8", Some(5))])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert_eq!(
            e.context(),
            "add to set inet banset x_v4 (elements 1.2.3.4 .. 5.6.7.8)"
        );
        assert!(oracle_set("x_v4").is_empty(), "atomic: nothing applied");
    });
}

fn many_v4(n: u32, base: u32) -> Vec<KernelEntry> {
    (0..n)
        .map(|i| KernelEntry {
            target: banset_core::Target::host(std::net::Ipv4Addr::from(base + i).into()).unwrap(),
            timeout: Some(Duration::from_secs(604_800)),
        })
        .collect()
}

#[test]
fn batch_of_100k_and_listing() {
    in_netns("batch_100k", || {
        let b = backend();
        let s = spec("big");
        b.ensure_set(&s).unwrap();
        let entries = many_v4(100_000, 0x0b00_0000);
        let start = Instant::now();
        b.add(&s, &entries).unwrap();
        let added = start.elapsed();
        let start = Instant::now();
        let listed = b.list(&s).unwrap();
        let listing = start.elapsed();
        eprintln!("100k IPv4 adds: {added:?}; list 100k: {listing:?}");
        assert_eq!(listed.len(), 100_000);
        assert_eq!(oracle_set("big_v4").len(), 100_000);
        // Re-adding all of them refreshes, never fails.
        b.add(&s, &entries).unwrap();
        // Remove half in one batch.
        let half: Vec<_> = entries.iter().step_by(2).map(|e| e.target).collect();
        b.del(&s, &half).unwrap();
        assert_eq!(b.list(&s).unwrap().len(), 50_000);
    });
}

/// A million members in one batch (~28 MB, ~500 NEWSETELEM messages, one
/// sendto). Checked by sampling: listing a million-element hash set is slow
/// in the kernel itself (its set walk restarts from the beginning for every
/// ~32 KiB dump message, so a dump is quadratic: ~35 s for 1M; `nft get
/// element` dumps the whole set too, ~40 s).
#[test]
fn batch_of_one_million() {
    in_netns("batch_1m", || {
        let b = backend();
        let mut s = spec("huge");
        s.prefixes = false;
        b.ensure_set(&s).unwrap();
        let entries = many_v4(1_000_000, 0x0c00_0000);
        let start = Instant::now();
        b.add(&s, &entries).unwrap();
        eprintln!("1M IPv4 adds: {:?}", start.elapsed());
        for e in entries.iter().step_by(9_973).chain(entries.last()) {
            assert!(b.contains(&s, &e.target).unwrap(), "{}", e.target);
        }
        for absent in ["11.255.255.255", "12.15.66.64"] {
            assert!(!b.contains(&s, &t(absent)).unwrap(), "{absent}");
        }
        // Flushing a million members is one message.
        b.flush(&s).unwrap();
        assert!(oracle_set("huge_v4").is_empty());
    });
}

#[test]
fn without_cap_net_admin_is_permission_with_a_hint() {
    in_netns("permission", || {
        // The raw syscall changes only this thread's credentials (glibc's
        // setresuid would change every thread of the test process).
        // SAFETY: setresuid has no memory-safety preconditions.
        let rc = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) };
        assert_eq!(rc, 0, "setresuid: {}", std::io::Error::last_os_error());
        let b = backend();
        for e in [
            b.ensure_set(&spec("f2b")).unwrap_err(),
            b.add(&spec("f2b"), &[entry("1.2.3.4", None)]).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Permission, "{e}");
            assert!(e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        }
    });
}

#[test]
fn removing_a_prefix_that_shares_a_start_leaves_others_whole() {
    in_netns("prefix_shared_start", || {
        let b = backend();
        let s = spec("f2b");
        b.ensure_set(&s).unwrap();
        b.add(&s, &[entry("10.0.0.0/8", None), entry("20.0.0.0/16", None)])
            .unwrap();
        // 10.0.0.0/16 is absent but starts where 10.0.0.0/8 starts;
        // 20.0.0.0/8 ends where nothing ends but starts like 20.0.0.0/16.
        b.del(&s, &[t("10.0.0.0/16"), t("20.0.0.0/8"), t("10.255.0.0/16")])
            .unwrap();
        let names: Vec<String> = oracle_set("f2b_v4net")
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(names, ["10.0.0.0/8", "20.0.0.0/16"]);
        let mut listed: Vec<String> = b
            .list(&s)
            .unwrap()
            .iter()
            .map(|e| e.target.to_string())
            .collect();
        listed.sort();
        assert_eq!(listed, ["10.0.0.0/8", "20.0.0.0/16"]);
    });
}

/// Regression: a listing taken while the kernel resizes the hash table
/// (right after a large insert) used to repeat some members and miss as
/// many others (10,000 members listed as 8,844 distinct ones).
#[test]
fn listing_right_after_large_inserts_is_complete() {
    in_netns("listing_right_after_large_inserts", || {
        let b = backend();
        let s = spec("resize");
        b.ensure_set(&s).unwrap();
        let mut want = 0usize;
        for round in 0..8u32 {
            let batch: Vec<KernelEntry> = (0..5_000u32)
                .map(|i| KernelEntry {
                    target: Target::host(std::net::IpAddr::V4(std::net::Ipv4Addr::from(
                        (11 << 24) + round * 5_000 + i,
                    )))
                    .unwrap(),
                    timeout: Some(Duration::from_secs(600)),
                })
                .collect();
            b.add(&s, &batch).unwrap();
            want += batch.len();
            let listed = b.list(&s).unwrap();
            let distinct: std::collections::HashSet<_> = listed.iter().map(|e| e.target).collect();
            assert_eq!(
                (listed.len(), distinct.len()),
                (want, want),
                "round {round}: listing right after an insert"
            );
        }
    });
}
