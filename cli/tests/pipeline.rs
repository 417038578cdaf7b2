//! The daemon and `regex-test` run one line pipeline: every sample log of
//! fail2ban's package, re-dated to now, gives the same lines and addresses
//! through `banset regex-test` (the binary) as through the pipeline the
//! daemon's source threads build (`banset_watch::pipeline::source_pipelines`
//! and `process`, as `cli/src/daemon/sources.rs` calls them). Skips when
//! fail2ban is not installed; CI installs it.

#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use banset_core::{Clock, SystemClock};
use banset_watch::fail2ban::compat::filter_modes;
use banset_watch::fail2ban::load_filter;
use banset_watch::pipeline::{Failure, LinePipeline, RawEntry};
use common::{syslog_date, Sandbox};
use serde_json::Value;

const CONFIG: &str = "/etc/fail2ban";
const LOGS: &str = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs";

/// The sample line with its leading syslog date replaced by `date`; other
/// lines as they are (both paths read them alike). Whether it was re-dated.
fn redate(line: &str, date: &str) -> (String, bool) {
    let b = line.as_bytes();
    let syslog = b.len() > 16
        && b[0].is_ascii_uppercase()
        && b[3] == b' '
        && b[6] == b' '
        && b[9] == b':'
        && b[12] == b':'
        && b[15] == b' ';
    if syslog && line.is_char_boundary(15) {
        (format!("{date}{}", &line[15..]), true)
    } else {
        (line.to_string(), false)
    }
}

#[test]
fn daemon_pipeline_matches_what_regex_test_reports_on_every_fail2ban_sample() {
    if !Path::new(CONFIG).join("filter.d/sshd.conf").is_file() || !Path::new(LOGS).is_dir() {
        eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
        return;
    }
    let sb = Sandbox::new("pipeline-agreement");
    let now = SystemClock.now();
    let date = syslog_date(now);
    let mut names: Vec<String> = std::fs::read_dir(Path::new(CONFIG).join("filter.d"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let stem = n.strip_suffix(".conf")?.to_string();
            Path::new(LOGS).join(&stem).is_file().then_some(stem)
        })
        .collect();
    names.sort();
    let (mut variants, mut matched_lines, mut redated_hits) = (0, 0, 0);
    let mut differ = Vec::new();
    for name in &names {
        let text = std::fs::read(Path::new(LOGS).join(name)).unwrap();
        let text = String::from_utf8_lossy(&text);
        let mut lines = Vec::new();
        let mut redated = Vec::new();
        for l in text.split('\n') {
            let l = l.strip_suffix('\r').unwrap_or(l);
            let (l, r) = redate(l, &date);
            lines.push(l);
            redated.push(r);
        }
        if lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        let log = sb.file(&format!("{name}.log"), &lines.join("\n"));
        let mut modes = vec![None];
        modes.extend(filter_modes(Path::new(CONFIG), name).into_iter().map(Some));
        for mode in modes {
            let args: Vec<(String, String)> = mode
                .iter()
                .map(|m| ("mode".to_string(), m.clone()))
                .collect();
            let Ok(filter) = load_filter(Path::new(CONFIG), name, &args, &Default::default(), None)
            else {
                continue;
            };
            variants += 1;
            let label = match &mode {
                Some(m) => format!("{CONFIG}/filter.d/{name}.conf[mode={m}]"),
                None => format!("{CONFIG}/filter.d/{name}.conf"),
            };
            // regex-test, the binary.
            let json = sb.ok(&["regex-test", log.to_str().unwrap(), &label, "--json"]);
            let by_regex_test: BTreeSet<(u64, String, bool)> = json
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v.get("totals").is_none())
                .map(|v| {
                    (
                        v["line"].as_u64().unwrap(),
                        v["address"].as_str().unwrap().to_string(),
                        v["ignored"].as_bool().unwrap(),
                    )
                })
                .collect();
            // The daemon's path: the pipeline its source thread runs, fed
            // entry by entry.
            let pipeline = LinePipeline::new(&[filter.def]).unwrap();
            let mut by_daemon = BTreeSet::new();
            let mut out: Vec<Failure> = Vec::new();
            for (i, line) in lines.iter().enumerate() {
                out.clear();
                let read_at = SystemClock.now();
                pipeline.process(RawEntry::Line(line.as_bytes()), read_at, &mut out);
                if let Some(f) = out.first() {
                    by_daemon.insert((i as u64 + 1, f.target.to_string(), f.ignored));
                    if redated[i] {
                        // A re-dated line counts at its date, not at
                        // the time it was read.
                        assert_eq!(f.at, now, "{label}:{}: {line}", i + 1);
                        redated_hits += 1;
                    }
                }
            }
            matched_lines += by_daemon.len();
            if by_daemon != by_regex_test {
                differ.push(format!(
                    "{label}: regex-test only {:?}; daemon only {:?}",
                    by_regex_test
                        .difference(&by_daemon)
                        .take(5)
                        .collect::<Vec<_>>(),
                    by_daemon
                        .difference(&by_regex_test)
                        .take(5)
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    eprintln!(
        "{} sample files, {variants} filter variants, {matched_lines} matched lines ({redated_hits} re-dated), {} variants differ",
        names.len(),
        differ.len()
    );
    assert!(names.len() >= 80, "only {} sample files", names.len());
    assert!(differ.is_empty(), "{differ:#?}");
}
