//! The conformance suite against FreeBSD's real pf. FreeBSD has no network
//! namespaces to hide in, so this changes the machine's live pf (tables
//! and anchors named `bt-pf-NN`, removed after each check) and runs only
//! when asked: as root with `BANSET_FREEBSD_KERNEL_TESTS=1`, which
//! `vm-tests/run` sets inside the throwaway `freebsd` VM. pf must be
//! loaded and its main ruleset must hold `anchor "banset/*"`.

#![cfg(target_os = "freebsd")]

use banset_pf::PfBackend;

fn allowed(check: &str) -> bool {
    if std::env::var_os("BANSET_FREEBSD_KERNEL_TESTS").is_none() {
        eprintln!(
            "{check}: skipped: changes this machine's pf; set BANSET_FREEBSD_KERNEL_TESTS=1 \
             (vm-tests/run does, in the VM)"
        );
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{check}: skipped: needs root for /dev/pf");
        return false;
    }
    true
}

banset_tests::conformance_tests!(|check| {
    if !allowed(check.name) {
        return;
    }
    let backend = PfBackend::open().expect("open /dev/pf (kldload pf?)");
    check.run(&backend, "bt-pf-");
});
