//! banset against fail2ban's own filter collection and sample logs (see
//! `banset_watch::fail2ban::compat`). Skips when fail2ban is not installed;
//! CI installs it (`.ci/run`).
//!
//! The floors are what was measured when fail2ban support landed (fail2ban
//! 1.0.2, Debian 12): they may rise, never fall.

use std::path::Path;

use banset_watch::fail2ban::compat::measure;

const CONFIG: &str = "/etc/fail2ban";
const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

#[test]
fn fail2ban_filters_load_and_agree_with_fail2ban_on_its_samples() {
    if !Path::new(CONFIG).join("filter.d/sshd.conf").is_file() || !Path::new(LOGS).is_dir() {
        eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
        return;
    }
    let r = measure(Path::new(CONFIG), Path::new(LOGS));
    eprintln!(
        "loaded {}/{} filters ({} of {} variants); {} of {} sample lines agree ({:.2}%); {} host-name lines, {} non-address ids, {} skipped",
        r.filters_loaded,
        r.filters,
        r.variants_loaded,
        r.variants,
        r.agreed,
        r.compared,
        r.agreement_percent(),
        r.hostnames,
        r.non_addresses,
        r.skipped
    );
    for (f, e) in &r.load_errors {
        eprintln!("load error: {f}: {e}");
    }
    assert!(r.filters >= 80, "only {} filters found", r.filters);
    assert!(
        r.compared >= 1000,
        "only {} sample lines compared",
        r.compared
    );
    // Every filter loads except the two built on <SKIPLINES> (multi-line).
    let unloadable: Vec<&str> = r.load_errors.iter().map(|(f, _)| f.as_str()).collect();
    assert!(
        unloadable
            .iter()
            .all(|f| ["mongodb-auth", "slapd"].contains(f)),
        "{unloadable:?}"
    );
    assert!(
        r.agreement_percent() >= 98.5,
        "agreement fell to {:.2}%: {:?}",
        r.agreement_percent(),
        &r.disagreements[..r.disagreements.len().min(20)]
    );
}
