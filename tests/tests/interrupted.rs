//! Commands that remove members (`del`, `flush`, `replace`) killed between
//! their kernel call and their commit: the kernel has lost bans the ledger
//! still holds. The engine promises only extra kernel members after a
//! crash, so the next writer of the set (here the keeper's `expire`) must
//! put the bans back. The kill is real: a child process whose backend
//! aborts right after the kernel call, on the real nftables kernel, in a
//! network namespace of the test's own.

#![cfg(target_os = "linux")]

use std::path::Path;

use banset_core::{
    AddOptions, Allowlist, Backend, BackendError, BackendKind, BanRequest, Engine, Ledger, SetName,
    SetSpec, SystemClock, Target, Timeout,
};
use banset_nftables::NftablesBackend;
use banset_tests::dying::{Call, DiesAfter};
use banset_tests::netns;

/// Set in the child: `VERB|LEDGER`.
const CHILD_ENV: &str = "BANSET_INTERRUPTED_CHILD";

/// nftables, but the process dies right after a kernel call that removes
/// members, before the engine can commit: `kill -9` at the worst moment.
fn dies_after_removing(backend: NftablesBackend) -> DiesAfter<NftablesBackend> {
    DiesAfter {
        inner: backend,
        dies_after: |call| match call {
            Call::Apply(changes) => changes.flush_first || !changes.remove.is_empty(),
            Call::Del | Call::Flush => true,
        },
    }
}

fn t(s: &str) -> Target {
    Target::parse(s).unwrap()
}

fn set() -> SetName {
    SetName::new("intr").unwrap()
}

fn engine_run<R>(ledger: &Path, backend: &dyn Backend, f: impl FnOnce(&mut Engine<'_>) -> R) -> R {
    let mut ledger = Ledger::open(ledger).unwrap();
    let allowlist = Allowlist::new();
    let provider = Provider(backend);
    let mut engine = Engine {
        ledger: &mut ledger,
        backends: &provider,
        clock: &SystemClock,
        allowlist: &allowlist,
        dry_run: false,
    };
    f(&mut engine)
}

struct Provider<'a>(&'a dyn Backend);

impl banset_core::BackendProvider for Provider<'_> {
    fn backend(&self, _kind: BackendKind) -> Result<&dyn Backend, BackendError> {
        Ok(self.0)
    }
}

fn kernel(backend: &dyn Backend) -> Vec<String> {
    let spec = SetSpec::new(set(), BackendKind::Nftables);
    let mut members: Vec<String> = backend
        .list(&spec)
        .unwrap()
        .into_iter()
        .map(|e| e.target.to_string())
        .collect();
    members.sort();
    members
}

fn ledger_targets(path: &Path) -> Vec<String> {
    let mut ledger = Ledger::open(path).unwrap();
    let tx = ledger.read().unwrap();
    tx.bans(&set())
        .unwrap()
        .into_iter()
        .map(|b| b.target.to_string())
        .collect()
}

/// Not a test of its own: the body of the child the test below kills.
#[test]
fn interrupted_child() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (verb, path) = arg.split_once('|').unwrap();
    let backend = dies_after_removing(NftablesBackend::open().unwrap());
    engine_run(Path::new(path), &backend, |e| match verb {
        "del" => e.del(&set(), &[t("192.0.2.1")]).map(drop),
        "flush" => e.flush(&set()).map(drop),
        "replace" => e
            .replace(
                &set(),
                &[BanRequest::new(t("198.51.100.7"))],
                &AddOptions::default(),
            )
            .map(drop),
        other => panic!("unknown verb {other}"),
    })
    .unwrap();
}

#[test]
fn a_removal_killed_between_kernel_and_commit_is_healed_by_the_next_writer() {
    if netns::skip_unless_root("a_removal_killed_between_kernel_and_commit") {
        return;
    }
    netns::in_new_netns(|| {
        let me = std::env::current_exe().unwrap();
        let backend = NftablesBackend::open().unwrap();
        for verb in ["del", "flush", "replace"] {
            let dir = std::env::temp_dir()
                .join(format!("banset-interrupted-{verb}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("ledger.db");
            let mut spec = SetSpec::new(set(), BackendKind::Nftables);
            spec.timeout = Timeout::Secs(3600);
            engine_run(&path, &backend, |e| {
                e.create(&spec).unwrap();
                e.add(
                    &set(),
                    &[
                        BanRequest::new(t("192.0.2.1")),
                        BanRequest::new(t("192.0.2.2")),
                    ],
                    &AddOptions::default(),
                )
                .unwrap();
            });
            let banned = vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()];
            assert_eq!(kernel(&backend), banned);

            let out = std::process::Command::new(&me)
                .args(["--exact", "interrupted_child", "--nocapture"])
                .env(CHILD_ENV, format!("{verb}|{}", path.display()))
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "{verb}: the child must die after its kernel call: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(ledger_targets(&path), banned, "{verb}: nothing committed");
            assert_ne!(kernel(&backend), banned, "{verb}: the kernel call happened");

            // What the daemon's keeper runs every few seconds.
            engine_run(&path, &backend, |e| e.expire().unwrap());
            assert_eq!(
                kernel(&backend),
                banned,
                "{verb}: the kernel must get the ledger's bans back"
            );
            // Healed once: the next writer does not need to.
            engine_run(&path, &backend, |e| e.destroy(&set()).unwrap());
            std::fs::remove_dir_all(&dir).unwrap();
        }
    });
}
