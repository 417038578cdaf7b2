//! The firewalld backend against a real firewalld (isolated: own network
//! and mount namespaces, private bus; see `banset_tests::firewalld`), under
//! both firewall backends firewalld can drive. Oracles: `firewall-cmd` on
//! the private bus for firewalld's view, `ipset` in the namespace for the
//! kernel's.

// firewalld and network namespaces are Linux.
#![cfg(target_os = "linux")]

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banset_core::{Backend, ErrorKind, KernelEntry, SetHealth, SetName, SetSpec, Target};
use banset_firewalld::{spawn_reload_watcher_on, Bus, FirewalldBackend, ReloadEvent};
use banset_tests::firewalld::{skip_unless_available, FirewallBackend, Firewalld};

fn spec(name: &str) -> SetSpec {
    SetSpec::new(
        SetName::new(name).unwrap(),
        banset_core::BackendKind::Firewalld,
    )
}

fn permanent(name: &str) -> SetSpec {
    let mut s = spec(name);
    s.hook.as_mut().unwrap().permanent = true;
    s
}

fn ban(addr: &str) -> KernelEntry {
    KernelEntry {
        target: Target::parse(addr).unwrap(),
        timeout: Some(Duration::from_secs(600)),
    }
}

fn open(fw: &Firewalld) -> FirewalldBackend {
    fw.enter(|| FirewalldBackend::open_on(Bus::Address(fw.bus_address())).expect("open backend"))
}

/// firewalld's runtime direct rules, as `firewall-cmd` prints them.
fn runtime_rules(fw: &Firewalld) -> String {
    fw.firewall_cmd(&["--direct", "--get-all-rules"]).unwrap()
}

fn permanent_rules(fw: &Firewalld) -> String {
    fw.firewall_cmd(&["--permanent", "--direct", "--get-all-rules"])
        .unwrap()
}

/// Each test runs once per firewall backend, each with its own instance.
fn under_both(test: &str, f: impl Fn(&mut Firewalld)) {
    if skip_unless_available(test) {
        return;
    }
    for backend in FirewallBackend::ALL {
        let mut fw = Firewalld::start(backend).unwrap_or_else(|e| panic!("start firewalld: {e}"));
        eprintln!("{test}: FirewallBackend={}", backend.name());
        f(&mut fw);
    }
}

#[test]
fn reload_drops_the_runtime_rule_keeps_entries_and_ensure_set_restores_it() {
    under_both("reload_drops_the_runtime_rule", |fw| {
        let b = open(fw);
        let s = spec("fw-r");
        fw.enter(|| {
            b.ensure_set(&s).unwrap();
            b.add(&s, &[ban("192.0.2.1"), ban("2001:db8::1")]).unwrap();
        });
        let rules = runtime_rules(fw);
        assert!(
            rules.contains("ipv4 filter INPUT 0 -m set --match-set fw-r src")
                && rules.contains("ipv6 filter INPUT 0 -m set --match-set fw-r6 src"),
            "{rules}"
        );
        assert_eq!(permanent_rules(fw).trim(), "", "not asked to be permanent");
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Present);

        fw.reload().unwrap();
        // The failure banset exists to avoid: entries kept, rule gone.
        assert_eq!(runtime_rules(fw).trim(), "");
        assert!(fw
            .run("ipset", &["list", "fw-r"])
            .unwrap()
            .contains("192.0.2.1"));
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Incomplete);

        fw.enter(|| b.ensure_set(&s)).unwrap();
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Present);
        assert!(runtime_rules(fw).contains("--match-set fw-r src"));
        assert_eq!(fw.enter(|| b.list(&s)).unwrap().len(), 2);

        fw.enter(|| b.destroy(&s)).unwrap();
        assert_eq!(runtime_rules(fw).trim(), "");
        assert!(fw.run("ipset", &["list", "-n"]).unwrap().trim().is_empty());
    });
}

#[test]
fn permanent_rule_survives_reload_and_restart_and_destroy_leaves_nothing() {
    under_both("permanent_rule_survives", |fw| {
        let before = fw.snapshot().unwrap();
        let s = permanent("fw-p");
        {
            let b = open(fw);
            fw.enter(|| {
                b.ensure_set(&s).unwrap();
                b.add(&s, &[ban("192.0.2.2")]).unwrap();
            });
        }
        assert!(permanent_rules(fw).contains("--match-set fw-p src"));
        assert!(permanent_rules(fw).contains("--match-set fw-p6 src"));

        fw.reload().unwrap();
        assert!(runtime_rules(fw).contains("--match-set fw-p src"));
        fw.restart().unwrap();
        assert!(runtime_rules(fw).contains("--match-set fw-p6 src"));
        // A backend made before the restart still works (same bus).
        let b = open(fw);
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Present);
        assert!(fw
            .enter(|| b.contains(&s, &Target::parse("192.0.2.2").unwrap()))
            .unwrap());

        fw.enter(|| b.destroy(&s)).unwrap();
        fw.enter(|| b.destroy(&s)).unwrap();
        assert_eq!(fw.snapshot().unwrap(), before);
    });
}

/// The boot order of a permanent set: with firewalld down, ensure_set makes
/// the kernel sets and then says firewalld is not running; firewalld then
/// starts cleanly with the permanent rule naming them.
#[test]
fn without_firewalld_the_error_says_so_and_the_sets_are_prepared() {
    under_both("without_firewalld", |fw| {
        let s = permanent("fw-boot");
        let b = open(fw);
        fw.enter(|| b.ensure_set(&s)).unwrap();
        fw.stop_firewalld();
        // A reboot: the kernel sets are gone.
        fw.run("ipset", &["destroy", "fw-boot"]).unwrap();
        fw.run("ipset", &["destroy", "fw-boot6"]).unwrap();
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Missing);
        let e = fw.enter(|| b.ensure_set(&s)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        let text = e.to_string();
        assert!(
            text.contains("fw-boot") && text.contains("firewalld is not running"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(fw
            .run("ipset", &["list", "-n"])
            .unwrap()
            .contains("fw-boot6"));

        fw.start_firewalld().unwrap();
        assert_eq!(fw.firewall_cmd(&["--state"]).unwrap().trim(), "running");
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Present);
        fw.enter(|| b.destroy(&s)).unwrap();
    });
}

/// A refusal names the set and firewalld's code: here firewalld is in its
/// FAILED state (a permanent rule names a set that does not exist, the
/// boot-order trap), which refuses permanent changes.
#[test]
fn refusals_name_the_set_and_firewalld_code() {
    under_both("refusals_name_the_set_and_firewalld_code", |fw| {
        fw.firewall_cmd(&[
            "--permanent",
            "--direct",
            "--add-rule",
            "ipv4",
            "filter",
            "INPUT",
            "0",
            "-m",
            "set",
            "--match-set",
            "no-such-set",
            "src",
            "-j",
            "DROP",
        ])
        .unwrap();
        assert!(fw.reload().is_err(), "firewalld must fail this reload");
        let b = open(fw);
        let s = permanent("fw-e");
        let e = fw.enter(|| b.ensure_set(&s)).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("RUNNING_BUT_FAILED") && text.contains("set fw-e"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        // The rule could not go in; destroying the set cleans the rest.
        fw.enter(|| b.destroy(&spec("fw-e"))).unwrap();
        assert!(fw.run("ipset", &["list", "-n"]).unwrap().trim().is_empty());
    });
}

#[test]
fn no_bus_is_unavailable() {
    let b = FirewalldBackend::open_on(Bus::Address(
        "unix:path=/nonexistent/banset-test-bus".into(),
    ))
    .unwrap();
    let s = spec("fw-nobus");
    // Without a hook, firewalld is not needed; with one, it is.
    let e = b.destroy(&s).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        e.to_string().contains("/nonexistent/banset-test-bus"),
        "{e}"
    );
    assert!(!banset_firewalld::firewalld_running_on(&Bus::Address(
        "unix:path=/nonexistent/banset-test-bus".into()
    )));
}

/// The keeper's building block: the watcher reports a reload and a
/// restart, and a callback that re-applies the rule puts it back.
#[test]
fn reload_watcher_reports_reload_and_restart_and_its_callback_restores_the_rule() {
    under_both("reload_watcher", |fw| {
        assert!(banset_firewalld::firewalld_running_on(&Bus::Address(
            fw.bus_address()
        )));
        let b = Arc::new(open(fw));
        let s = spec("fw-w");
        fw.enter(|| b.ensure_set(&s)).unwrap();
        let (tx, rx) = mpsc::channel();
        let (keeper, set) = (Arc::clone(&b), s.clone());
        spawn_reload_watcher_on(Bus::Address(fw.bus_address()), move |event| {
            let reapplied = event.needs_reapply().then(|| keeper.ensure_set(&set));
            let _ = tx.send((event, reapplied, Instant::now()));
        })
        .unwrap();

        let asked = Instant::now();
        fw.reload().unwrap();
        let (event, reapplied, at) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(event, ReloadEvent::Reloaded);
        reapplied.unwrap().unwrap();
        eprintln!(
            "rule re-applied {:?} after `firewall-cmd --reload` was started",
            at - asked
        );
        assert!(runtime_rules(fw).contains("--match-set fw-w src"));

        fw.restart().unwrap();
        let mut seen = Vec::new();
        while !seen.contains(&ReloadEvent::Started) {
            let (event, reapplied, _) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
            if let Some(r) = reapplied {
                r.unwrap();
            }
            seen.push(event);
        }
        assert_eq!(seen[0], ReloadEvent::Stopped, "{seen:?}");
        assert!(runtime_rules(fw).contains("--match-set fw-w6 src"));
        fw.enter(|| b.destroy(&s)).unwrap();
    });
}

#[test]
fn changed_ports_and_maxelem_swap_the_direct_rules_and_keep_every_ban() {
    under_both("changed_ports_swap_direct_rules", |fw| {
        let b = open(fw);
        let mut old = permanent("fw-c");
        old.hook.as_mut().unwrap().ports = banset_core::PortRange::parse_list("25").unwrap();
        old.hook.as_mut().unwrap().protocol = Some(banset_core::Protocol::Tcp);
        let mut new = old.clone();
        new.hook.as_mut().unwrap().ports = banset_core::PortRange::parse_list("22,2222").unwrap();
        new.hook.as_mut().unwrap().block = banset_core::BlockType::Reject;
        new.max_elements = Some(5000);
        let before = fw.enter(|| {
            b.ensure_set(&old).unwrap();
            b.add(&old, &[ban("192.0.2.1"), ban("2001:db8::1")])
                .unwrap();
            b.list(&old).unwrap()
        });
        fw.enter(|| b.change_set(&old, &new))
            .expect("change in place");
        for rules in [runtime_rules(fw), permanent_rules(fw)] {
            assert!(
                rules.contains("--dports 22,2222") && rules.contains("REJECT"),
                "{rules}"
            );
            assert!(!rules.contains("--dports 25 "), "old rule gone: {rules}");
            assert_eq!(rules.lines().count(), 2, "one rule per family: {rules}");
        }
        let saved = fw.run("ipset", &["save", "fw-c"]).unwrap();
        assert!(saved.contains("maxelem 5000"), "{saved}");
        let after = fw.enter(|| {
            assert_eq!(b.health(&new).unwrap(), SetHealth::Present);
            b.list(&new).unwrap()
        });
        assert_eq!(after.len(), before.len(), "every ban kept: {after:?}");
        for (a, was) in after.iter().zip(&before) {
            assert_eq!(a.target, was.target);
            let (a, was) = (a.timeout.unwrap(), was.timeout.unwrap());
            assert!(
                a <= was && was - a < Duration::from_secs(30),
                "{a:?} {was:?}"
            );
        }
        fw.enter(|| b.destroy(&new)).unwrap();
        assert_eq!(runtime_rules(fw).trim(), "");
        assert_eq!(permanent_rules(fw).trim(), "");
    });
}

#[test]
fn an_allow_only_set_is_its_own_direct_rule_and_comes_back_after_a_reload() {
    under_both("allow_only_direct_rule", |fw| {
        let b = open(fw);
        // The suite's shape check against the real firewalld: health tells
        // the shapes apart, ensure_set swaps them, destroy leaves nothing.
        fw.enter(|| {
            banset_tests::conformance::check("allow_only_rule_has_its_own_shape").run(&b, "fw-a")
        });
        assert_eq!(runtime_rules(fw).trim(), "");
        let mut s = spec("fw-home");
        s.policy = banset_core::SetPolicy::AllowOnly;
        s.hook.as_mut().unwrap().ports = banset_core::PortRange::parse_list("22").unwrap();
        fw.enter(|| {
            b.ensure_set(&s).unwrap();
            b.add(&s, &[ban("192.0.2.1")]).unwrap();
        });
        let rules = runtime_rules(fw);
        assert!(
            // firewall-cmd quotes the `!`.
            rules.contains(
                "ipv4 filter INPUT 0 '!' -i lo -p tcp -m set '!' --match-set fw-home src"
            ) && rules.contains("'banset fw-home6 allow-only' -j DROP"),
            "{rules}"
        );
        fw.reload().unwrap();
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Incomplete);
        fw.enter(|| b.ensure_set(&s)).unwrap();
        assert_eq!(fw.enter(|| b.health(&s)).unwrap(), SetHealth::Present);
        assert!(runtime_rules(fw).contains("'!' --match-set fw-home src"));
        fw.enter(|| b.destroy(&s)).unwrap();
        assert_eq!(runtime_rules(fw).trim(), "");
    });
}
