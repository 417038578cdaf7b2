//! banset against fail2ban's own filter collection and sample logs (see
//! `banset_watch::fail2ban::compat`). Skips when fail2ban is not installed;
//! CI installs it (`.ci/run`).
//!
//! Against fail2ban 1.0.2 (Debian 12, what CI installs) every filter loads
//! and every sample line with an address agrees; any difference is a
//! regression. A newer fail2ban may bring filters or samples banset does
//! not yet read: the test then names them.

use std::path::Path;

use banset_watch::fail2ban::compat::{measure, measure_with_names};

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
    // Every filter of fail2ban 1.0.2 loads, in every mode, and every
    // sample line with an address agrees with fail2ban.
    assert!(r.load_errors.is_empty(), "{:?}", r.load_errors);
    assert_eq!(r.failregex_used, r.failregex_total, "failregexes set aside");
    // Where fail2ban expects a host name, banset finds no address at all.
    assert!(
        r.hostname_addresses.is_empty(),
        "{:?}",
        r.hostname_addresses
    );
    assert!(
        r.disagreements.is_empty(),
        "{} of {} sample lines disagree: {:?}",
        r.disagreements.len(),
        r.compared,
        &r.disagreements[..r.disagreements.len().min(20)]
    );
}

/// A line that names a host where the filter's `<HOST>` stands yields no
/// address, never another one further along the line (fail2ban's sshd
/// sample `authentication error for james from example.com via
/// 192.168.1.201` must not ban 192.168.1.201). For every stock filter,
/// every sample line's expected address is replaced by a host name.
#[test]
fn a_host_name_where_host_stands_yields_no_address_in_any_stock_filter() {
    if !Path::new(CONFIG).join("filter.d/sshd.conf").is_file() || !Path::new(LOGS).is_dir() {
        eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
        return;
    }
    let r = measure_with_names(Path::new(CONFIG), Path::new(LOGS));
    eprintln!(
        "{} sample lines with their address replaced by a host name; {} still gave an address",
        r.renamed,
        r.renamed_addresses.len()
    );
    assert!(r.renamed >= 800, "only {} lines renamed", r.renamed);
    assert!(
        r.renamed_addresses.is_empty(),
        "{:#?}",
        &r.renamed_addresses[..r.renamed_addresses.len().min(30)]
    );
}
