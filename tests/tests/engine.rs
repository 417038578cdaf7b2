//! The core's operations (`banset_core::Engine`) against the in-process
//! kernel, with an injected clock: ledger/kernel agreement, all-or-nothing
//! failures, restore after a wipe, expiry and timeout caps, without sleeping.

use std::sync::Arc;

use banset_core::{
    AddOptions, Allowlist, Backend, BackendError, BackendKind, BackendProvider, BanRequest,
    Capabilities, Engine, ErrorKind, Families, KernelEntry, Ledger, ManualClock, SetName, SetSpec,
    Target, Timeout,
};
use banset_memory::{MemoryBackend, IPSET_MAX_TIMEOUT};

const T0: i64 = 1_700_000_000;

struct World {
    ledger: Ledger,
    clock: Arc<ManualClock>,
    kernel: MemoryBackend,
    allowlist: Allowlist,
}

/// Splits the borrow: the engine needs the ledger mutably and the rest shared.
struct Parts<'a> {
    kernel: &'a MemoryBackend,
}

impl BackendProvider for Parts<'_> {
    /// The in-process kernel for memory sets; any other kind is a backend
    /// this host lacks, for the tests of one set failing among others.
    fn backend(&self, kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        match kind {
            BackendKind::Memory => Ok(self.kernel),
            other => Err(BackendError::new(
                ErrorKind::Unsupported,
                format!("backend {other}"),
                "not on this host",
            )),
        }
    }
}

impl World {
    fn new() -> World {
        World::with_caps(MemoryBackend::CAPABILITIES)
    }

    /// A world whose ledger is a file at `path`, so a test can write rows
    /// into it with SQL behind banset's back.
    fn on_file(path: &std::path::Path) -> World {
        World {
            ledger: Ledger::open(path).unwrap(),
            ..World::new()
        }
    }

    fn with_caps(caps: Capabilities) -> World {
        let clock = Arc::new(ManualClock::new(T0));
        World {
            ledger: Ledger::open_in_memory().unwrap(),
            kernel: MemoryBackend::with_capabilities(clock.clone(), caps),
            clock,
            allowlist: Allowlist::new().with_host_addresses([t("192.0.2.10")]),
        }
    }

    fn run<R>(&mut self, dry_run: bool, f: impl FnOnce(&mut Engine<'_>) -> R) -> R {
        let parts = Parts {
            kernel: &self.kernel,
        };
        let mut engine = Engine {
            ledger: &mut self.ledger,
            backends: &parts,
            clock: &*self.clock,
            allowlist: &self.allowlist,
            dry_run,
        };
        f(&mut engine)
    }

    fn add(
        &mut self,
        set: &str,
        reqs: &[BanRequest],
    ) -> Result<banset_core::AddReport, banset_core::Error> {
        let spec = spec(set);
        self.run(false, |e| {
            e.add(
                &spec.name,
                reqs,
                &AddOptions {
                    force: false,
                    create_with: Some(spec.clone()),
                    ..AddOptions::default()
                },
            )
        })
    }

    /// (target, kernel seconds left) sorted, from the kernel.
    fn kernel(&self, set: &str) -> Vec<(String, Option<u64>)> {
        let mut v: Vec<_> = self
            .kernel
            .list(&spec(set))
            .unwrap()
            .into_iter()
            .map(|e| (e.target.to_string(), e.timeout.map(|d| d.as_secs())))
            .collect();
        v.sort();
        v
    }

    /// (target, deadline) sorted, from the ledger.
    fn ledger(&mut self, set: &str) -> Vec<(String, Option<i64>)> {
        let mut v: Vec<_> = self
            .ledger
            .read()
            .unwrap()
            .bans(&name(set))
            .unwrap()
            .into_iter()
            .map(|b| (b.target.to_string(), b.deadline))
            .collect();
        v.sort();
        v
    }
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn name(s: &str) -> SetName {
    SetName::new(s).unwrap()
}

fn spec(s: &str) -> SetSpec {
    SetSpec::new(name(s), BackendKind::Memory)
}

fn ban(target: &str, secs: Option<u64>) -> BanRequest {
    BanRequest {
        timeout: Some(secs.map_or(Timeout::Never, Timeout::Secs)),
        ..BanRequest::new(t(target))
    }
}

#[test]
fn add_creates_the_set_and_both_sides_agree() {
    let mut w = World::new();
    let r = w
        .add(
            "f2b-postfix",
            &[ban("1.2.3.4", Some(604_800)), ban("2001:db8::/64", None)],
        )
        .unwrap();
    assert!(r.created_set && r.applied == 2);
    assert_eq!(
        w.kernel("f2b-postfix"),
        [
            ("1.2.3.4".into(), Some(604_800)),
            ("2001:db8::/64".into(), None)
        ]
    );
    assert_eq!(
        w.ledger("f2b-postfix"),
        [
            ("1.2.3.4".into(), Some(T0 + 604_800)),
            ("2001:db8::/64".into(), None)
        ]
    );
}

#[test]
fn re_ban_keeps_the_longest_ban_in_ledger_and_kernel() {
    let mut w = World::new();
    w.add("s", &[ban("1.2.3.4", Some(3_600))]).unwrap();
    w.clock.advance(600);
    w.add("s", &[ban("1.2.3.4", Some(60))]).unwrap();
    assert_eq!(w.kernel("s"), [("1.2.3.4".into(), Some(3_000))]);
    w.add("s", &[ban("1.2.3.4", Some(86_400))]).unwrap();
    assert_eq!(w.kernel("s"), [("1.2.3.4".into(), Some(86_400))]);
    assert_eq!(w.ledger("s"), [("1.2.3.4".into(), Some(T0 + 600 + 86_400))]);
}

#[test]
fn since_keeps_the_original_end_and_old_bans_are_no_ops() {
    let mut w = World::new();
    let mut req = ban("1.2.3.4", Some(600));
    req.since = Some(T0 - 100);
    let mut over = ban("5.6.7.8", Some(600));
    over.since = Some(T0 - 601);
    let r = w.add("s", &[req, over]).unwrap();
    assert_eq!(r.already_over, [t("5.6.7.8")]);
    assert_eq!(w.kernel("s"), [("1.2.3.4".into(), Some(500))]);
    let mut future = ban("1.2.3.4", Some(600));
    future.since = Some(T0 + 3_600);
    let e = w.add("s", &[future]).unwrap_err();
    assert!(
        e.to_string().contains("in the future") && users_to_fix(&e),
        "{e}"
    );
}

#[test]
fn bad_input_changes_nothing() {
    let mut w = World::new();
    w.add("s", &[ban("1.2.3.4", Some(600))]).unwrap();
    let before = (w.kernel("s"), w.ledger("s"));
    for bad in ["127.0.0.1", "192.0.2.10", "0.0.0.0/0", "10.0.0.0/4"] {
        let e = w
            .add("s", &[ban("5.5.5.5", Some(600)), ban(bad, Some(600))])
            .unwrap_err();
        assert!(users_to_fix(&e), "{bad}: {e}");
        assert!(e.to_string().contains(&t(bad).to_string()), "{e}");
        assert_eq!((w.kernel("s"), w.ledger("s")), before, "{bad}");
    }
    // an IPv6 address into an IPv4-only set
    let mut v4 = spec("v4only");
    v4.families = Families::Inet;
    w.run(false, |e| e.create(&v4)).unwrap();
    let e = w
        .run(false, |e| {
            e.add(
                &v4.name,
                &[ban("2001:db8::1", None)],
                &AddOptions::default(),
            )
        })
        .unwrap_err();
    assert!(
        e.to_string().contains("only IPv4") && users_to_fix(&e),
        "{e}"
    );
}

#[test]
fn a_kernel_refusal_leaves_no_ledger_row() {
    let mut w = World::new();
    let mut small = spec("small");
    small.max_elements = Some(2);
    w.run(false, |e| e.create(&small)).unwrap();
    let reqs = [
        ban("1.1.1.1", None),
        ban("2.2.2.2", None),
        ban("3.3.3.3", None),
    ];
    let e = w
        .run(false, |e| e.add(&small.name, &reqs, &AddOptions::default()))
        .unwrap_err();
    match &e {
        banset_core::Error::Backend(b) => assert_eq!(b.kind(), ErrorKind::SetFull),
        other => panic!("expected a backend error, got {other}"),
    }
    assert!(kernel_or_storage(&e));
    assert!(w.ledger("small").is_empty());
    assert!(w.kernel("small").is_empty());
}

/// A bulk add is committed in chunks so other writers get the ledger's
/// lock between them; a chunk that fails must still undo the chunks before
/// it: nothing new stays, and rows it merged into get their values back.
#[test]
fn a_bulk_add_failing_in_a_later_chunk_leaves_ledger_and_kernel_as_they_were() {
    let mut w = World::new();
    let mut big = spec("big");
    big.max_elements = Some(40_000);
    w.run(false, |e| e.create(&big)).unwrap();
    // Already banned, for longer than the bulk add asks: the first chunk
    // merges into this row, which must come back as it was.
    w.run(false, |e| {
        e.add(
            &big.name,
            &[ban("10.0.0.1", Some(100_000))],
            &AddOptions::default(),
        )
    })
    .unwrap();
    let ledger_before = w.ledger("big");
    let kernel_before = w.kernel("big");
    let reqs: Vec<BanRequest> = (1..=50_000u32)
        .map(|i| {
            ban(
                &std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string(),
                Some(600),
            )
        })
        .collect();
    let e = w
        .run(false, |e| e.add(&big.name, &reqs, &AddOptions::default()))
        .unwrap_err();
    match &e {
        banset_core::Error::Backend(b) => assert_eq!(b.kind(), ErrorKind::SetFull, "{e}"),
        other => panic!("expected a full set, got {other}"),
    }
    assert_eq!(w.ledger("big"), ledger_before);
    assert_eq!(w.kernel("big"), kernel_before);
    let row = w
        .ledger
        .read()
        .unwrap()
        .ban(&big.name, &t("10.0.0.1"))
        .unwrap()
        .unwrap();
    assert_eq!(
        row.ban_count, 1,
        "the merged row is put back, count included"
    );
    // Within the limit it all lands.
    w.run(false, |e| {
        e.add(&big.name, &reqs[..39_000], &AddOptions::default())
    })
    .unwrap();
    assert_eq!(w.ledger("big").len(), 39_000);
    assert_eq!(w.kernel("big").len(), 39_000);
}

#[test]
fn add_after_a_wipe_restores_every_ban() {
    let mut w = World::new();
    w.add("s", &[ban("1.1.1.1", Some(1_000)), ban("2.2.2.2", None)])
        .unwrap();
    w.kernel.wipe();
    w.clock.advance(100);
    let r = w.add("s", &[ban("3.3.3.3", Some(50))]).unwrap();
    assert!(r.repaired);
    assert_eq!(
        w.kernel("s"),
        [
            ("1.1.1.1".into(), Some(900)),
            ("2.2.2.2".into(), None),
            ("3.3.3.3".into(), Some(50))
        ]
    );
}

#[test]
fn sync_restores_remaining_times_and_removes_strangers() {
    let mut w = World::new();
    w.add(
        "s",
        &[ban("1.1.1.1", Some(1_000)), ban("2.2.2.2", Some(10))],
    )
    .unwrap();
    w.clock.advance(400);
    w.kernel.wipe();
    let reports = w.run(false, |e| e.sync(None)).unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].repaired_objects);
    assert_eq!((reports[0].added, reports[0].expired), (1, 1));
    assert_eq!(w.kernel("s"), [("1.1.1.1".into(), Some(600))]);
    assert_eq!(w.ledger("s"), [("1.1.1.1".into(), Some(T0 + 1_000))]);
    // a member put in behind banset's back is removed
    w.kernel
        .add(
            &spec("s"),
            &[KernelEntry {
                target: t("9.9.9.9"),
                timeout: None,
            }],
        )
        .unwrap();
    let reports = w.run(false, |e| e.sync(Some(&name("s")))).unwrap();
    assert_eq!(reports[0].removed, 1);
    assert_eq!(w.kernel("s"), [("1.1.1.1".into(), Some(600))]);
}

/// A fresh directory for one test's ledger file.
fn temp_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("banset-engine-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes ban rows with SQL, as an older banset (or a hand) did: rows
/// banset's own constructors can no longer produce.
fn plant_rows(ledger: &std::path::Path, set: &str, texts: &[&str]) {
    let db = rusqlite::Connection::open(ledger).unwrap();
    for text in texts {
        db.execute(
            "INSERT INTO bans (set_name, target, start) VALUES (?1, ?2, ?3)",
            rusqlite::params![set, text, T0],
        )
        .unwrap();
    }
}

#[test]
fn unreadable_row_does_not_stop_sync_of_its_set_or_others() {
    let dir = temp_dir("unreadable-sync");
    let file = dir.join("ledger.db");
    let mut w = World::on_file(&file);
    for set in ["a", "b", "c"] {
        w.add(set, &[ban("1.1.1.1", None), ban("2.2.2.2", Some(1_000))])
            .unwrap();
    }
    // What `from 0.0.0.0` in a log line left behind, in the ledger and
    // the kernel, plus a row that is no address at all.
    plant_rows(&file, "b", &["0.0.0.0", "garbage"]);
    let zero = Target::listed("0.0.0.0".parse().unwrap(), 32).unwrap();
    w.kernel
        .add(
            &spec("b"),
            &[KernelEntry {
                target: zero,
                timeout: None,
            }],
        )
        .unwrap();
    // `nft flush ruleset` or a reboot: everything must come back.
    w.kernel.wipe();
    let reports = w.run(false, |e| e.sync(None)).unwrap();
    assert_eq!(reports.len(), 3);
    for set in ["a", "b", "c"] {
        assert_eq!(
            w.kernel(set),
            [("1.1.1.1".into(), None), ("2.2.2.2".into(), Some(1_000))],
            "{set}"
        );
    }
    let b = reports.iter().find(|r| r.set.as_str() == "b").unwrap();
    let texts: Vec<&str> = b.unreadable_rows.iter().map(|r| r.text.as_str()).collect();
    assert_eq!(texts, ["0.0.0.0", "garbage"]);
    assert!(reports
        .iter()
        .filter(|r| r.set.as_str() != "b")
        .all(|r| r.unreadable_rows.is_empty()));

    // A 0.0.0.0 still in the kernel is a stranger that sync removes.
    w.kernel
        .add(
            &spec("b"),
            &[KernelEntry {
                target: zero,
                timeout: None,
            }],
        )
        .unwrap();
    let reports = w.run(false, |e| e.sync(Some(&name("b")))).unwrap();
    assert_eq!(reports[0].removed, 1);
    assert_eq!(w.kernel("b").len(), 2);

    // list reads the set and reports the rows.
    let listing = w.run(false, |e| e.list(None)).unwrap();
    assert_eq!(listing.len(), 3);
    let b = listing
        .iter()
        .find(|l| l.spec.name.as_str() == "b")
        .unwrap();
    assert_eq!(b.members.len(), 2);
    assert_eq!(b.unreadable_rows.len(), 2);

    // del removes a row by its text, from the ledger and the kernel.
    w.kernel
        .add(
            &spec("b"),
            &[KernelEntry {
                target: zero,
                timeout: None,
            }],
        )
        .unwrap();
    let gone = w
        .run(false, |e| {
            e.del_with_unreadable(&name("b"), &[], &["0.0.0.0"])
        })
        .unwrap();
    assert_eq!(gone, 1);
    assert_eq!(w.kernel("b").len(), 2);
    let listing = w.run(false, |e| e.list(Some(&name("b")))).unwrap();
    assert_eq!(listing[0].unreadable_rows.len(), 1);
    // flush removes what del cannot name.
    assert_eq!(w.run(false, |e| e.flush(&name("b"))).unwrap(), 3);
    let listing = w.run(false, |e| e.list(Some(&name("b")))).unwrap();
    assert!(listing[0].unreadable_rows.is_empty() && listing[0].members.is_empty());
    drop(w);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failing_set_does_not_stop_sync_of_the_others() {
    let mut w = World::new();
    w.add("a", &[ban("1.1.1.1", None)]).unwrap();
    w.add("c", &[ban("3.3.3.3", None)]).unwrap();
    // A set whose backend this host lacks (a ledger moved between hosts),
    // sorted between the two.
    let tx = w.ledger.begin().unwrap();
    tx.put_set(&SetSpec::new(name("b"), BackendKind::Nftables), T0)
        .unwrap();
    tx.commit().unwrap();
    w.kernel.wipe();
    let outcomes = w.run(false, |e| e.sync_each(None)).unwrap();
    let shown: Vec<(&str, bool)> = outcomes
        .iter()
        .map(|(set, r)| (set.as_str(), r.is_ok()))
        .collect();
    assert_eq!(shown, [("a", true), ("b", false), ("c", true)]);
    assert_eq!(w.kernel("a"), [("1.1.1.1".into(), None)]);
    assert_eq!(w.kernel("c"), [("3.3.3.3".into(), None)]);
    // `sync` restores the others too, and still fails for b.
    w.kernel.wipe();
    let e = w.run(false, |e| e.sync(None)).unwrap_err();
    assert!(e.to_string().contains("nftables"), "{e}");
    assert_eq!(w.kernel("c"), [("3.3.3.3".into(), None)]);
}

#[test]
fn unreadable_set_spec_does_not_stop_sync_list_or_expire_of_the_others() {
    let dir = temp_dir("unreadable-spec");
    let file = dir.join("ledger.db");
    let mut w = World::on_file(&file);
    for set in ["a", "b", "c"] {
        w.add(set, &[ban("1.1.1.1", None), ban("2.2.2.2", Some(60))])
            .unwrap();
    }
    // A hand edit (or a newer banset) left set b's spec unreadable.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute(
            "UPDATE sets SET spec = '{\"broken\": 1}' WHERE name = 'b'",
            [],
        )
        .unwrap();
    w.kernel.wipe();
    let outcomes = w.run(false, |e| e.sync_each(None)).unwrap();
    let shown: Vec<(&str, bool)> = outcomes
        .iter()
        .map(|(set, r)| (set.as_str(), r.is_ok()))
        .collect();
    assert_eq!(shown, [("a", true), ("b", false), ("c", true)]);
    let why = outcomes[1].1.as_ref().unwrap_err().to_string();
    assert!(why.contains("set b: unreadable spec"), "{why}");
    assert_eq!(w.kernel("a").len(), 2);
    assert_eq!(w.kernel("c").len(), 2);
    // Listing and expiry go on with the sets that read.
    let listed: Vec<String> = w
        .run(false, |e| e.list(None))
        .unwrap()
        .iter()
        .map(|l| l.spec.name.to_string())
        .collect();
    assert_eq!(listed, ["a", "c"]);
    w.clock.advance(60);
    let expired = w.run(false, |e| e.expire()).unwrap();
    assert_eq!(
        expired,
        [
            (name("a"), vec![t("2.2.2.2")]),
            (name("c"), vec![t("2.2.2.2")])
        ]
    );
}

#[test]
fn expire_drives_kernels_without_timeouts_never_early_never_late() {
    let caps = Capabilities {
        timeouts: false,
        ..MemoryBackend::CAPABILITIES
    };
    let mut w = World::with_caps(caps);
    w.add("pf", &[ban("1.1.1.1", Some(60)), ban("2.2.2.2", Some(120))])
        .unwrap();
    w.clock.advance(59);
    assert!(w.run(false, |e| e.expire()).unwrap().is_empty());
    assert_eq!(w.kernel("pf").len(), 2);
    w.clock.advance(1);
    let expired = w.run(false, |e| e.expire()).unwrap();
    assert_eq!(expired, [(name("pf"), vec![t("1.1.1.1")])]);
    assert_eq!(w.kernel("pf"), [("2.2.2.2".into(), None)]);
    assert_eq!(w.ledger("pf"), [("2.2.2.2".into(), Some(T0 + 120))]);
}

#[test]
fn bans_longer_than_a_kernel_cap_are_capped_then_re_armed_by_sync() {
    let caps = Capabilities {
        max_timeout: Some(IPSET_MAX_TIMEOUT),
        ..MemoryBackend::CAPABILITIES
    };
    let cap = IPSET_MAX_TIMEOUT.as_secs();
    let mut w = World::with_caps(caps);
    let year = 365 * 86_400;
    w.add("long", &[ban("1.1.1.1", Some(year)), ban("2.2.2.2", None)])
        .unwrap();
    assert_eq!(
        w.kernel("long"),
        [("1.1.1.1".into(), Some(cap)), ("2.2.2.2".into(), None)]
    );
    // most of the cap later, sync re-arms it; the ledger still says a year
    w.clock.advance(cap as i64 - 1_000);
    w.run(false, |e| e.sync(None)).unwrap();
    assert_eq!(w.kernel("long")[0], ("1.1.1.1".into(), Some(cap)));
    w.clock.advance(2_000);
    assert_eq!(
        w.kernel("long")[0].0,
        "1.1.1.1",
        "still banned past the cap"
    );
    assert_eq!(
        w.ledger("long")[0],
        ("1.1.1.1".into(), Some(T0 + year as i64))
    );
}

#[test]
fn replace_swaps_the_whole_content() {
    let mut w = World::new();
    w.add("s", &[ban("1.1.1.1", None), ban("2.2.2.2", None)])
        .unwrap();
    let reqs = [ban("2.2.2.2", Some(60)), ban("3.3.3.3", Some(60))];
    w.run(false, |e| {
        e.replace(&name("s"), &reqs, &AddOptions::default())
    })
    .unwrap();
    assert_eq!(
        w.kernel("s"),
        [("2.2.2.2".into(), Some(60)), ("3.3.3.3".into(), Some(60))]
    );
    assert_eq!(w.ledger("s").len(), 2);
    // a bad entry in a replace changes nothing at all
    let bad = [ban("4.4.4.4", None), ban("127.0.0.2", None)];
    assert!(w
        .run(false, |e| e.replace(
            &name("s"),
            &bad,
            &AddOptions::default()
        ))
        .is_err());
    assert_eq!(w.kernel("s").len(), 2);
    assert_eq!(w.ledger("s").len(), 2);
}

#[test]
fn replace_past_max_shrink_is_refused_and_changes_nothing() {
    let mut w = World::new();
    let four = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"].map(|a| ban(a, Some(600)));
    w.add("s", &four).unwrap();
    let guarded = |max| AddOptions {
        max_shrink: Some(max),
        ..AddOptions::default()
    };
    let one = [ban("1.1.1.1", None)];
    let e = w
        .run(false, |e| e.replace(&name("s"), &one, &guarded(50)))
        .unwrap_err();
    assert!(users_to_fix(&e));
    assert!(
        e.to_string()
            .contains("holds 4 entries and the new list 1, 75% fewer"),
        "{e}"
    );
    assert_eq!((w.kernel("s").len(), w.ledger("s").len()), (4, 4));
    // The interrupted-removal journal was taken back: nothing to heal.
    assert!(w.run(false, |e| e.test(&name("s"), &t("4.4.4.4"))).unwrap());
    w.run(false, |e| e.replace(&name("s"), &one, &guarded(75)))
        .unwrap();
    assert_eq!(w.kernel("s"), [("1.1.1.1".into(), None)]);
    // Expired bans are not the set's size: once the four have run out,
    // any list is a growth.
    w.add("t", &four).unwrap();
    w.clock.advance(601);
    w.run(false, |e| e.replace(&name("t"), &one, &guarded(0)))
        .unwrap();
    assert_eq!(w.ledger("t").len(), 1);
}

#[test]
fn del_flush_destroy_and_unknown_sets() {
    let mut w = World::new();
    w.add("s", &[ban("1.1.1.1", None), ban("2.2.2.2", None)])
        .unwrap();
    let known = w
        .run(false, |e| e.del(&name("s"), &[t("1.1.1.1"), t("8.8.8.8")]))
        .unwrap();
    assert_eq!(known, 1);
    assert_eq!(w.kernel("s"), [("2.2.2.2".into(), None)]);
    assert!(w.run(false, |e| e.test(&name("s"), &t("2.2.2.2"))).unwrap());
    assert!(!w.run(false, |e| e.test(&name("s"), &t("1.1.1.1"))).unwrap());
    assert_eq!(w.run(false, |e| e.flush(&name("s"))).unwrap(), 1);
    assert!(w.kernel("s").is_empty() && w.ledger("s").is_empty());
    w.run(false, |e| e.destroy(&name("s"))).unwrap();
    let e = w.run(false, |e| e.destroy(&name("s"))).unwrap_err();
    assert!(users_to_fix(&e));
    let e = w
        .run(false, |e| e.del(&name("nope"), &[t("1.1.1.1")]))
        .unwrap_err();
    assert!(e.to_string().contains("no set named nope"), "{e}");
}

#[test]
fn dry_run_leaves_the_ledger_alone() {
    let mut w = World::new();
    let s = spec("s");
    let r = w
        .run(true, |e| {
            e.add(
                &s.name,
                &[ban("1.1.1.1", None)],
                &AddOptions {
                    force: false,
                    create_with: Some(s.clone()),
                    ..AddOptions::default()
                },
            )
        })
        .unwrap();
    assert!(r.created_set);
    assert!(w
        .ledger
        .read()
        .unwrap()
        .set_spec(&s.name)
        .unwrap()
        .is_none());
}

#[test]
fn status_counts_bans() {
    let mut w = World::new();
    w.add("s", &[ban("1.1.1.1", None), ban("2.2.2.2", Some(10))])
        .unwrap();
    w.run(false, |e| e.sync(None)).unwrap();
    let st = w.run(false, |e| e.status()).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!((st[0].active_bans, st[0].permanent_bans), (2, 1));
    assert_eq!(st[0].kernel_members, Some(2));
    assert_eq!(st[0].last_sync, Some(T0));
}

#[test]
fn a_failed_batch_on_a_kernel_without_atomic_batches_is_undone() {
    let caps = Capabilities {
        atomic_batches: false,
        ..MemoryBackend::CAPABILITIES
    };
    let mut w = World::with_caps(caps);
    let mut small = spec("small");
    small.max_elements = Some(3);
    w.run(false, |e| e.create(&small)).unwrap();
    w.add("small", &[ban("1.1.1.1", Some(600))]).unwrap();
    // the kernel takes 2.2.2.2 and 3.3.3.3, then refuses 4.4.4.4
    let reqs = [
        ban("2.2.2.2", None),
        ban("3.3.3.3", None),
        ban("4.4.4.4", None),
    ];
    let e = w
        .run(false, |e| e.add(&small.name, &reqs, &AddOptions::default()))
        .unwrap_err();
    assert!(kernel_or_storage(&e));
    assert!(e.to_string().contains("maxelem 3"), "{e}");
    assert_eq!(w.kernel("small"), [("1.1.1.1".into(), Some(600))]);
    assert_eq!(w.ledger("small").len(), 1);
}

#[test]
fn a_failed_first_ban_leaves_no_empty_set_behind() {
    let mut w = World::new();
    let mut tiny = spec("tiny");
    tiny.max_elements = Some(1);
    let reqs = [ban("1.1.1.1", None), ban("2.2.2.2", None)];
    let e = w
        .run(false, |e| {
            e.add(
                &tiny.name,
                &reqs,
                &AddOptions {
                    force: false,
                    create_with: Some(tiny.clone()),
                    ..AddOptions::default()
                },
            )
        })
        .unwrap_err();
    assert!(kernel_or_storage(&e), "{e}");
    assert!(w
        .ledger
        .read()
        .unwrap()
        .set_spec(&tiny.name)
        .unwrap()
        .is_none());
    assert_eq!(
        w.kernel.list(&tiny).unwrap_err().kind(),
        ErrorKind::NotFound,
        "the set this call created is gone again"
    );
}

/// The daemon's ban history row and source position used to be written in
/// a transaction after the ban's: a crash in between kept a ban whose
/// offence escalation and recidive never saw. Now they commit with the ban
/// or not at all.
#[test]
fn a_bans_history_and_position_commit_with_the_ban_or_not_at_all() {
    use banset_core::AddRecord;
    let mut w = World::new();
    let mut small = spec("small");
    small.max_elements = Some(1);
    w.run(false, |e| e.create(&small)).unwrap();
    let record = |target: &str, position: &str| AddRecord {
        ban_events: vec![(t(target), "sshd".to_string())],
        meta: vec![("watch.position:/var/log/auth.log".into(), position.into())],
        fleet: None,
    };
    w.run(false, |e| {
        e.add_recorded(
            &small.name,
            &[ban("1.1.1.1", Some(600))],
            &AddOptions::default(),
            &record("1.1.1.1", "100"),
        )
    })
    .unwrap();
    // The set is full: the kernel refuses the second ban, and neither its
    // history row nor its position is kept.
    w.run(false, |e| {
        e.add_recorded(
            &small.name,
            &[ban("2.2.2.2", Some(600))],
            &AddOptions::default(),
            &record("2.2.2.2", "200"),
        )
    })
    .unwrap_err();
    // A dry run keeps nothing either.
    w.run(true, |e| {
        e.add_recorded(
            &small.name,
            &[ban("1.1.1.1", Some(600))],
            &AddOptions::default(),
            &record("1.1.1.1", "300"),
        )
    })
    .unwrap();
    let tx = w.ledger.read().unwrap();
    assert_eq!(
        tx.ban_events_since(&t("1.1.1.1"), 0).unwrap(),
        [("sshd".to_string(), T0)]
    );
    assert!(tx.ban_events_since(&t("2.2.2.2"), 0).unwrap().is_empty());
    assert_eq!(
        tx.meta("watch.position:/var/log/auth.log")
            .unwrap()
            .as_deref(),
        Some("100")
    );
}

/// An error the user can fix (the CLI's exit code 2); nothing was changed.
fn users_to_fix(e: &banset_core::Error) -> bool {
    use banset_core::Error;
    matches!(
        e,
        Error::Input(_) | Error::Refused(_) | Error::UnknownSet(_)
    )
}

/// A kernel or storage failure (the CLI's exit code 3).
fn kernel_or_storage(e: &banset_core::Error) -> bool {
    use banset_core::Error;
    matches!(e, Error::Backend(_) | Error::Ledger(_))
}

#[test]
fn change_set_swaps_the_rule_keeps_every_ban_and_stores_the_new_spec() {
    let mut w = World::new();
    w.add(
        "web",
        &[ban("192.0.2.1", Some(3600)), ban("192.0.2.2", None)],
    )
    .unwrap();
    w.clock.advance(100);
    let (kernel, ledger) = (w.kernel("web"), w.ledger("web"));
    let mut new = spec("web");
    new.hook = Some(banset_core::Hook {
        ports: banset_core::PortRange::parse_list("22").unwrap(),
        protocol: Some(banset_core::Protocol::Tcp),
        ..Default::default()
    });
    new.max_elements = Some(10);
    let change = w.run(false, |e| e.change_set(&new)).unwrap();
    assert_eq!(
        change.describe_in_place(),
        "maxelem 1048576 -> 10, ports all -> 22, protocol all -> tcp"
    );
    assert_eq!(w.kernel("web"), kernel, "every ban, same time left");
    assert_eq!(w.ledger("web"), ledger, "same deadlines");
    assert_eq!(w.kernel.rule_of(&name("web")), Some(new.hook.clone()));
    assert_eq!(
        w.ledger.read().unwrap().set_spec(&name("web")).unwrap(),
        Some(new.clone())
    );
    // Again: nothing to do.
    assert!(w.run(false, |e| e.change_set(&new)).unwrap().is_empty());
}

#[test]
fn change_set_refuses_what_cannot_change_and_changes_nothing() {
    let mut w = World::new();
    w.add(
        "web",
        &[ban("192.0.2.1", Some(3600)), ban("192.0.2.2", None)],
    )
    .unwrap();
    let stored = w.ledger.read().unwrap().set_spec(&name("web")).unwrap();
    let mut other = spec("web");
    other.timeout = Timeout::Secs(60);
    other.hook = None;
    let e = w.run(false, |e| e.change_set(&other)).unwrap_err();
    assert!(
        matches!(&e, banset_core::Error::Input(banset_core::InputError::CannotChange { why, .. }) if why.contains("timeout") && why.contains("fixed")),
        "{e}"
    );
    let mut small = spec("web");
    small.max_elements = Some(1);
    let e = w.run(false, |e| e.change_set(&small)).unwrap_err();
    assert!(e.to_string().contains("holds 2 bans"), "{e}");
    assert_eq!(
        w.ledger.read().unwrap().set_spec(&name("web")).unwrap(),
        stored
    );
    assert_eq!(
        w.kernel.rule_of(&name("web")),
        Some(Some(Default::default()))
    );
    assert_eq!(w.kernel("web").len(), 2);
    // A dry run stores nothing (the CLI's DryRunBackend keeps the kernel).
    let mut new = spec("web");
    new.hook = None;
    w.run(true, |e| e.change_set(&new)).unwrap();
    assert_eq!(
        w.ledger.read().unwrap().set_spec(&name("web")).unwrap(),
        stored
    );
}

#[test]
fn change_set_rebuilds_a_set_the_kernel_lost_under_the_new_spec() {
    let mut w = World::new();
    w.add("web", &[ban("192.0.2.1", Some(3600))]).unwrap();
    w.kernel.wipe();
    let mut new = spec("web");
    new.hook = None;
    w.run(false, |e| e.change_set(&new)).unwrap();
    assert_eq!(w.kernel("web").len(), 1);
    assert_eq!(w.kernel.rule_of(&name("web")), Some(None));
}
