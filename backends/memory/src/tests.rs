//! The model kernel's own behaviour, with a manual clock. What every backend
//! must do is checked again, through the trait only, by the conformance
//! suite in `banset-tests`; these tests pin what is specific to the model:
//! expiry against the injected clock and the weaker kernels it can imitate.

use super::*;
use banset_core::{Families, ManualClock};

const T0: i64 = 1_700_000_000;

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn entry(s: &str, secs: Option<u64>) -> KernelEntry {
    KernelEntry {
        target: t(s),
        timeout: secs.map(Duration::from_secs),
    }
}

fn spec(name: &str) -> SetSpec {
    SetSpec::new(SetName::new(name).unwrap(), BackendKind::Memory)
}

fn kernel(caps: Capabilities) -> (Arc<ManualClock>, MemoryBackend) {
    let clock = Arc::new(ManualClock::new(T0));
    let backend = MemoryBackend::with_capabilities(clock.clone(), caps);
    (clock, backend)
}

fn ready(caps: Capabilities) -> (Arc<ManualClock>, MemoryBackend, SetSpec) {
    let (clock, backend) = kernel(caps);
    let s = spec("f2b-test");
    backend.ensure_set(&s).unwrap();
    (clock, backend, s)
}

fn listed(backend: &MemoryBackend, spec: &SetSpec) -> Vec<(String, Option<u64>)> {
    backend
        .list(spec)
        .unwrap()
        .into_iter()
        .map(|e| (e.target.to_string(), e.timeout.map(|d| d.as_secs())))
        .collect()
}

#[test]
fn members_expire_with_the_clock() {
    let (clock, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(
        &s,
        &[entry("192.0.2.1", Some(60)), entry("192.0.2.2", None)],
    )
    .unwrap();
    clock.advance(59);
    assert_eq!(
        listed(&b, &s),
        [("192.0.2.1".into(), Some(1)), ("192.0.2.2".into(), None)]
    );
    assert!(b.contains(&s, &t("192.0.2.1")).unwrap());
    clock.advance(1);
    assert_eq!(listed(&b, &s), [("192.0.2.2".into(), None)]);
    assert!(!b.contains(&s, &t("192.0.2.1")).unwrap());
    clock.advance(100 * 365 * 86_400);
    assert_eq!(listed(&b, &s), [("192.0.2.2".into(), None)]);
}

#[test]
fn sub_second_timeouts_keep_their_milliseconds() {
    let (clock, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(
        &s,
        &[KernelEntry {
            target: t("192.0.2.1"),
            timeout: Some(Duration::from_millis(1500)),
        }],
    )
    .unwrap();
    assert_eq!(
        b.list(&s).unwrap()[0].timeout,
        Some(Duration::from_millis(1500))
    );
    clock.advance(1);
    assert_eq!(
        b.list(&s).unwrap()[0].timeout,
        Some(Duration::from_millis(500))
    );
    clock.advance(1);
    assert!(b.list(&s).unwrap().is_empty());
}

#[test]
fn add_refreshes_to_the_new_timeout_longer_or_shorter() {
    let (clock, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("2001:db8::1", Some(600))]).unwrap();
    clock.advance(100);
    b.add(&s, &[entry("2001:db8::1", Some(3600))]).unwrap();
    assert_eq!(listed(&b, &s), [("2001:db8::1".into(), Some(3600))]);
    b.add(&s, &[entry("2001:db8::1", Some(10))]).unwrap();
    assert_eq!(listed(&b, &s), [("2001:db8::1".into(), Some(10))]);
    b.add(&s, &[entry("2001:db8::1", None)]).unwrap();
    assert_eq!(listed(&b, &s), [("2001:db8::1".into(), None)]);
}

#[test]
fn zero_and_absurd_timeouts_are_refused() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    let zero = KernelEntry {
        target: t("192.0.2.1"),
        timeout: Some(Duration::ZERO),
    };
    let e = b.add(&s, &[zero]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("zero timeout"), "{e}");
    let e = b
        .add(&s, &[entry("192.0.2.1", Some(u64::MAX))])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(b.list(&s).unwrap().is_empty());
}

#[test]
fn overlaps_are_refused_naming_both_and_change_nothing() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("198.51.100.0/24", Some(600))]).unwrap();
    let before = listed(&b, &s);
    for (new, old) in [
        ("198.51.100.0/25", "198.51.100.0/24"),
        ("198.51.0.0/16", "198.51.100.0/24"),
        ("0.0.0.0/0", "198.51.100.0/24"),
    ] {
        let e = b
            .add(&s, &[entry("2001:db8::1", None), entry(new, None)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{new}: {e}");
        let text = e.to_string();
        assert!(text.contains(new) && text.contains(old), "{text}");
        assert!(text.contains("already in the set"), "{text}");
        assert_eq!(listed(&b, &s), before, "{new} changed the set");
    }
    // A host inside a banned prefix is redundant, not a conflict.
    b.add(&s, &[entry("198.51.100.7", None)]).unwrap();
    // Neighbours and the other family do not overlap.
    b.add(
        &s,
        &[
            entry("198.51.101.0/24", None),
            entry("198.51.99.255", None),
            entry("::/0", None),
        ],
    )
    .unwrap();
}

#[test]
fn overlaps_within_one_batch_are_refused() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    let e = b
        .add(
            &s,
            &[
                entry("2001:db8::/48", None),
                entry("2001:db8:0:1::/64", None),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("2001:db8::/48")
            && text.contains("2001:db8:0:1::/64")
            && text.contains("earlier in this batch"),
        "{text}"
    );
    assert!(b.list(&s).unwrap().is_empty());
}

#[test]
fn the_same_target_twice_is_a_refresh_not_an_overlap() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(
        &s,
        &[
            entry("10.0.0.0/8", Some(60)),
            entry("10.0.0.0/8", Some(120)),
        ],
    )
    .unwrap();
    assert_eq!(listed(&b, &s), [("10.0.0.0/8".into(), Some(120))]);
}

#[test]
fn a_batch_removes_before_it_adds() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("10.0.0.0/8", None), entry("192.0.2.1", None)])
        .unwrap();
    // Narrowing a prefix in one batch: the old one goes first, so the new
    // one does not overlap it.
    b.apply(
        &s,
        &Changes {
            flush_first: false,
            remove: vec![t("10.0.0.0/8")],
            add: vec![entry("10.1.0.0/16", None)],
        },
    )
    .unwrap();
    assert_eq!(
        listed(&b, &s),
        [("10.1.0.0/16".into(), None), ("192.0.2.1".into(), None)]
    );
    b.apply(
        &s,
        &Changes {
            flush_first: true,
            remove: vec![],
            add: vec![entry("10.0.0.0/8", Some(5))],
        },
    )
    .unwrap();
    assert_eq!(listed(&b, &s), [("10.0.0.0/8".into(), Some(5))]);
}

#[test]
fn a_full_set_refuses_new_members_but_not_refreshes() {
    let (_, b) = kernel(MemoryBackend::CAPABILITIES);
    let mut s = spec("small");
    s.max_elements = Some(2);
    b.ensure_set(&s).unwrap();
    b.add(
        &s,
        &[entry("192.0.2.1", Some(60)), entry("192.0.2.2", None)],
    )
    .unwrap();
    let e = b
        .add(
            &s,
            &[entry("192.0.2.1", Some(90)), entry("192.0.2.3", None)],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SetFull, "{e}");
    assert!(
        e.to_string().contains("small") && e.to_string().contains('2'),
        "{e}"
    );
    assert_eq!(
        listed(&b, &s),
        [("192.0.2.1".into(), Some(60)), ("192.0.2.2".into(), None)],
        "a refused batch must not refresh either"
    );
    b.add(&s, &[entry("192.0.2.1", Some(90))]).unwrap();
    b.apply(
        &s,
        &Changes {
            flush_first: false,
            remove: vec![t("192.0.2.2")],
            add: vec![entry("192.0.2.3", None)],
        },
    )
    .unwrap();
    assert_eq!(
        listed(&b, &s),
        [("192.0.2.1".into(), Some(90)), ("192.0.2.3".into(), None)]
    );
}

#[test]
fn contains_means_blocked_by_a_member() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("10.0.0.0/8", None), entry("2001:db8::1", None)])
        .unwrap();
    assert!(b.contains(&s, &t("10.0.0.0/8")).unwrap());
    assert!(b.contains(&s, &t("10.255.0.1")).unwrap());
    assert!(b.contains(&s, &t("10.3.0.0/16")).unwrap());
    assert!(b.contains(&s, &t("2001:db8::1")).unwrap());
    assert!(!b.contains(&s, &t("11.0.0.0")).unwrap());
    // A prefix around a member is not blocked as a whole.
    assert!(!b.contains(&s, &t("2001:db8::/64")).unwrap());
    assert!(!b.contains(&s, &t("0.0.0.0/0")).unwrap());
}

#[test]
fn the_spec_decides_families_and_prefixes() {
    let (_, b) = kernel(MemoryBackend::CAPABILITIES);
    let mut s = spec("v4only");
    s.families = Families::Inet;
    s.prefixes = false;
    b.ensure_set(&s).unwrap();
    for bad in ["2001:db8::1", "192.0.2.0/24"] {
        let e = b
            .add(&s, &[entry("192.0.2.1", None), entry(bad, None)])
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    assert!(b.list(&s).unwrap().is_empty());
    // Removing what the set could never hold is removing something absent.
    b.del(&s, &[t("2001:db8::1")]).unwrap();
}

#[test]
fn a_set_must_exist_except_for_destroy() {
    let (_, b) = kernel(MemoryBackend::CAPABILITIES);
    let s = spec("nothere");
    assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
    for (what, r) in [
        ("list", b.list(&s).map(drop)),
        ("contains", b.contains(&s, &t("192.0.2.1")).map(drop)),
        ("flush", b.flush(&s)),
        ("add", b.add(&s, &[entry("192.0.2.1", None)])),
        ("del", b.del(&s, &[t("192.0.2.1")])),
    ] {
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{what}: {e}");
        assert!(e.to_string().contains("nothere"), "{what}: {e}");
    }
    b.destroy(&s).unwrap();
}

#[test]
fn ensure_set_keeps_members_and_restores_the_rule() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("192.0.2.1", None)]).unwrap();
    assert!(b.remove_hook(&s.name));
    assert_eq!(b.health(&s).unwrap(), SetHealth::Incomplete);
    b.ensure_set(&s).unwrap();
    assert_eq!(b.health(&s).unwrap(), SetHealth::Present);
    assert_eq!(listed(&b, &s), [("192.0.2.1".into(), None)]);

    // A set without a hook has no rule to miss.
    let mut bare = spec("bare");
    bare.hook = None;
    b.ensure_set(&bare).unwrap();
    assert_eq!(b.health(&bare).unwrap(), SetHealth::Present);
    assert!(!b.remove_hook(&SetName::new("nothere").unwrap()));
}

#[test]
fn wipe_is_a_reboot() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    b.add(&s, &[entry("192.0.2.1", None)]).unwrap();
    b.wipe();
    assert_eq!(b.health(&s).unwrap(), SetHealth::Missing);
    assert_eq!(b.list(&s).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn without_timeouts_members_stay_until_deleted() {
    let caps = Capabilities {
        timeouts: false,
        ..MemoryBackend::CAPABILITIES
    };
    let (clock, b, s) = ready(caps);
    assert!(!b.capabilities().timeouts);
    b.add(&s, &[entry("192.0.2.1", Some(60))]).unwrap();
    clock.advance(3600);
    assert_eq!(listed(&b, &s), [("192.0.2.1".into(), None)]);
    b.del(&s, &[t("192.0.2.1")]).unwrap();
    assert!(b.list(&s).unwrap().is_empty());
}

#[test]
fn a_timeout_cap_refuses_longer_bans_like_ipset() {
    let caps = Capabilities {
        max_timeout: Some(IPSET_MAX_TIMEOUT),
        ..MemoryBackend::CAPABILITIES
    };
    let (_, b, s) = ready(caps);
    b.add(&s, &[entry("192.0.2.1", Some(2_147_483))]).unwrap();
    let e = b
        .add(
            &s,
            &[
                entry("192.0.2.2", None),
                entry("192.0.2.3", Some(2_147_484)),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert!(e.to_string().contains("2147483"), "{e}");
    assert_eq!(listed(&b, &s), [("192.0.2.1".into(), Some(2_147_483))]);
    // Permanent bans have no timeout to cap.
    b.add(&s, &[entry("192.0.2.2", None)]).unwrap();
}

#[test]
fn a_kernel_without_prefixes_says_unsupported() {
    let caps = Capabilities {
        prefixes: false,
        ..MemoryBackend::CAPABILITIES
    };
    let (_, b, s) = ready(caps);
    let e = b.add(&s, &[entry("192.0.2.0/24", None)]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

#[test]
fn without_atomic_batches_a_failure_keeps_the_entries_before_it() {
    let caps = Capabilities {
        atomic_batches: false,
        ..MemoryBackend::CAPABILITIES
    };
    let (_, b, s) = ready(caps);
    let e = b
        .add(
            &s,
            &[
                entry("192.0.2.0/24", None),
                entry("192.0.2.0/25", None),
                entry("192.0.2.9", None),
            ],
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid, "{e}");
    assert_eq!(listed(&b, &s), [("192.0.2.0/24".into(), None)]);
}

#[test]
fn a_large_batch_into_a_large_set() {
    let (_, b, s) = ready(MemoryBackend::CAPABILITIES);
    let batch = |base: u32| -> Vec<KernelEntry> {
        (0..20_000u32)
            .map(|i| KernelEntry {
                target: Target::host(IpAddr::V4(Ipv4Addr::from(base + i))).unwrap(),
                timeout: Some(Duration::from_secs(600)),
            })
            .collect()
    };
    b.add(&s, &batch(0x0a00_0000)).unwrap();
    b.add(&s, &batch(0x0b00_0000)).unwrap();
    assert_eq!(b.list(&s).unwrap().len(), 40_000);
    // Hosts inside a new prefix are fine; a prefix overlapping that prefix
    // is found past the 20,000 hosts that share its range.
    b.add(&s, &[entry("10.0.0.0/17", None)]).unwrap();
    let e = b.add(&s, &[entry("10.0.0.0/16", None)]).unwrap_err();
    assert!(e.to_string().contains("overlaps 10.0.0.0/17"), "{e}");
}

#[test]
fn shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryBackend>();
    let b = MemoryBackend::default();
    let s = spec("threads");
    b.ensure_set(&s).unwrap();
    std::thread::scope(|scope| {
        for i in 0..4u8 {
            let (b, s) = (&b, &s);
            scope.spawn(move || {
                let target = Target::host(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i + 1))).unwrap();
                b.add(
                    s,
                    &[KernelEntry {
                        target,
                        timeout: Some(Duration::from_secs(600)),
                    }],
                )
                .unwrap();
            });
        }
    });
    assert_eq!(b.list(&s).unwrap().len(), 4);
    assert!(format!("{b:?}").contains("sets: 1"));
}
