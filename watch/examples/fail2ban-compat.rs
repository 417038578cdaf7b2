//! Prints how much of fail2ban's filter collection banset runs; see
//! `banset_watch::fail2ban::compat`. Used by `bench/fail2ban-compat`.
//!
//!     cargo run --release -p banset-watch --example fail2ban-compat -- \
//!         [/etc/fail2ban] [/usr/lib/python3/dist-packages/fail2ban/tests/files/logs] [-v]

use std::path::PathBuf;

use banset_watch::fail2ban::compat::measure;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let paths: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let config = PathBuf::from(paths.first().map_or("/etc/fail2ban", |s| s.as_str()));
    let logs = PathBuf::from(paths.get(1).map_or(
        "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs",
        |s| s.as_str(),
    ));
    if !config.join("filter.d").is_dir() || !logs.is_dir() {
        eprintln!(
            "fail2ban-compat: {} or {} missing: install fail2ban (apt-get install fail2ban)",
            config.join("filter.d").display(),
            logs.display()
        );
        std::process::exit(77);
    }
    let r = measure(&config, &logs);
    println!(
        "filters loaded: {}/{} ({:.1}%); filter/mode variants: {}/{}; failregexes run: {}/{}",
        r.filters_loaded,
        r.filters,
        r.load_percent(),
        r.variants_loaded,
        r.variants,
        r.failregex_used,
        r.failregex_total
    );
    println!(
        "sample lines: {} compared, {} agree ({:.2}%), {} disagree; {} host-name lines (banset never bans by name), {} non-address ids, {} skipped (Python conditions); {} sample files",
        r.compared,
        r.agreed,
        r.agreement_percent(),
        r.disagreements.len(),
        r.hostnames,
        r.non_addresses,
        r.skipped,
        r.sample_files
    );
    for (f, e) in &r.load_errors {
        println!("load error: {f}: {e}");
    }
    if verbose {
        for (at, want, got) in &r.disagreements {
            println!("disagree: {at}: fail2ban {want}, banset {got}");
        }
    }
}
