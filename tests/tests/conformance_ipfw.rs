//! The conformance suite against FreeBSD's real ipfw. FreeBSD has no network
//! namespaces to hide in, so this changes the machine's live ipfw (tables
//! and rules named `bt-fw-NN`, removed after each check) and runs only
//! when asked: as root with `BANSET_FREEBSD_KERNEL_TESTS=1`, which
//! `vm-tests/run` sets inside the throwaway `freebsd` VM. ipfw must be
//! loaded (after `net.inet.ip.fw.default_to_accept=1`, or it locks the
//! machine out).

#![cfg(target_os = "freebsd")]

use banset_ipfw::IpfwBackend;

fn allowed(check: &str) -> bool {
    if std::env::var_os("BANSET_FREEBSD_KERNEL_TESTS").is_none() {
        eprintln!(
            "{check}: skipped: changes this machine's ipfw; set BANSET_FREEBSD_KERNEL_TESTS=1 \
             (vm-tests/run does, in the VM)"
        );
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{check}: skipped: needs root for ipfw");
        return false;
    }
    true
}

banset_tests::conformance_tests!(|check| {
    if !allowed(check.name) {
        return;
    }
    let backend = IpfwBackend::open().expect("open ipfw (kldload ipfw?)");
    check.run(&backend, "bt-fw-");
});
