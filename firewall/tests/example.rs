//! The library example's flow, run against the in-process (memory)
//! backend: it needs no privilege and changes no kernel.

#[path = "../examples/ban_list_unban.rs"]
#[allow(dead_code)] // its main() is the example's, not the test's
mod example;

use banset_firewall::{BackendKind, Firewall, StateDir};

#[test]
fn the_example_bans_lists_and_unbans_through_the_memory_backend() {
    let dir = std::env::temp_dir().join(format!("banset-firewall-example-{}", std::process::id()));
    let state = StateDir::new(dir.join("state"));
    let printed = example::run(&state, BackendKind::Memory).unwrap();
    assert_eq!(printed.len(), 2, "{printed:?}");
    assert!(printed[0].starts_with("X: 1.2.3.4 ("), "{printed:?}");
    assert_eq!(printed[1], "1.2.3.4 banned: false");
    // The state directory was made private, and the ledger in it kept.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(state.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(state.ledger_path().is_file());
    let mut fw = Firewall::open(&state).unwrap();
    assert!(fw.engine().status().unwrap().is_empty(), "set X destroyed");
    std::fs::remove_dir_all(&dir).unwrap();
}
