//! `banset regex-test LOG FILTER`: runs a filter over a log through the
//! daemon's own line pipeline (`banset_watch::pipeline`) and reports what
//! matched, like fail2ban-regex.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{Context as _, Result};
use banset_core::Target;
use banset_core::{Clock, SystemClock};
use banset_watch::pipeline::{LinePipeline, RawEntry};
use banset_watch::{builtin_filter, FilterDef, Pattern, Scan, BUILTIN_FILTERS};
use serde::Serialize;

use crate::args::RegexTestArgs;
use crate::errors::{input_file_error, usage, EXIT_OK};
use crate::output::counted;
use crate::output::stdout;

#[derive(Serialize)]
struct MatchedLine<'a> {
    line: u64,
    filter: &'a str,
    regex: usize,
    address: String,
    ignored: bool,
}

#[derive(Serialize, Default)]
struct Totals {
    lines: u64,
    matched: u64,
    missed: u64,
    ignored: u64,
    too_long: u64,
    /// Hits per failregex, by position (1-based in the text output).
    regex_hits: Vec<u64>,
    addresses: usize,
}

#[derive(Serialize)]
struct TotalsLine<'a> {
    totals: &'a Totals,
}

/// A fail2ban filter file, read with its includes and `.local` as
/// `banset watch --fail2ban` and a banset.toml jail read it.
fn fail2ban_filter(text: &str) -> Result<FilterDef> {
    let (loaded, _) = match banset_watch::fail2ban::load_filter_file(text, false, &[]) {
        Ok(x) => x,
        Err(e) => usage!("{e}"),
    };
    for n in banset_watch::fail2ban::notice_lines(&loaded.notices) {
        eprintln!("banset: regex-test: {n}");
    }
    Ok(loaded.def)
}

fn filter_of(args: &RegexTestArgs) -> Result<FilterDef> {
    let mut filter = match builtin_filter(&args.filter) {
        Some(f) => f,
        None if banset_watch::fail2ban::is_filter_file(&args.filter) => fail2ban_filter(&args.filter)?,
        None if args.filter.contains('<') => {
            FilterDef::new("regex", vec![Pattern::new(args.filter.clone())], Vec::new())
        }
        None => usage!(
            "unknown filter {:?}: give a built-in ({}), a fail2ban filter file (/etc/fail2ban/filter.d/NAME.conf[mode=...]) or a failregex with <HOST>",
            args.filter,
            BUILTIN_FILTERS.join(", ")
        ),
    };
    filter
        .ignoreregex
        .extend(args.ignoreregex.iter().cloned().map(Pattern::new));
    Ok(filter)
}

pub fn run(args: RegexTestArgs) -> Result<i32> {
    // What the filter file's check compiles is kept for the pipeline, as
    // the daemon keeps its checks' for its sources (`load_settings`):
    // sshd.conf compiled three times before its first line.
    let (filter, kept) = banset_watch::keeping(|| filter_of(&args));
    let filter = filter?;
    let pipeline = match LinePipeline::new(std::slice::from_ref(&filter)) {
        Ok(m) => m,
        Err(e) => usage!("{e}"),
    };
    drop(kept);
    let input: Box<dyn Read> = if args.log == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&args.log).map_err(|e| input_file_error("log", &args.log, e))?)
    };
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut out = stdout();
    let mut totals = Totals {
        regex_hits: vec![0; pipeline.failregex_count(0)],
        ..Totals::default()
    };
    let mut addresses: BTreeMap<Target, u64> = BTreeMap::new();
    let mut hits = Vec::with_capacity(2);
    let mut raw = Vec::with_capacity(4096);
    loop {
        raw.clear();
        let n = reader
            .read_until(b'\n', &mut raw)
            .with_context(|| format!("log {}", args.log.display()))?;
        if n == 0 {
            break;
        }
        totals.lines += 1;
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        hits.clear();
        match pipeline.process(RawEntry::Line(line), SystemClock.now(), &mut hits) {
            Scan::TooLong => {
                totals.too_long += 1;
                totals.missed += 1;
                continue;
            }
            Scan::Missed => {
                totals.missed += 1;
                if args.print_missed && !args.json {
                    out.write_all(line)?;
                    out.write_all(b"\n")?;
                }
                continue;
            }
            Scan::Hit => {}
        }
        let hit = &hits[0];
        if hit.ignored {
            totals.ignored += 1;
        } else {
            totals.matched += 1;
            totals.regex_hits[hit.regex] += 1;
            *addresses.entry(hit.target).or_default() += 1;
        }
        if args.json {
            serde_json::to_writer(
                &mut out,
                &MatchedLine {
                    line: totals.lines,
                    filter: &filter.name,
                    regex: hit.regex,
                    address: hit.target.to_string(),
                    ignored: hit.ignored,
                },
            )?;
            out.write_all(b"\n")?;
        } else if args.print_matched && !hit.ignored {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
    }
    totals.addresses = addresses.len();
    if args.json {
        serde_json::to_writer(&mut out, &TotalsLine { totals: &totals })?;
        writeln!(out)?;
        out.flush()?;
        return Ok(EXIT_OK);
    }
    writeln!(
        out,
        "Filter: {} ({} failregex)",
        filter.name,
        totals.regex_hits.len()
    )?;
    writeln!(
        out,
        "Lines: {}, {} matched, {} ignored, {} missed{}",
        counted(totals.lines, "line", "lines"),
        totals.matched,
        totals.ignored,
        totals.missed,
        if totals.too_long > 0 {
            format!(
                " ({} longer than {} bytes, skipped)",
                totals.too_long,
                banset_watch::MAX_LINE_LEN
            )
        } else {
            String::new()
        }
    )?;
    writeln!(out, "Failregex hits:")?;
    for (i, (hits, pattern)) in totals.regex_hits.iter().zip(&filter.failregex).enumerate() {
        writeln!(out, "  {:>2}) [{hits}] {}", i + 1, pattern.regex)?;
    }
    writeln!(out, "Addresses: {} distinct", addresses.len())?;
    let mut by_count: Vec<(&Target, &u64)> = addresses.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (target, n) in by_count.iter().take(20) {
        writeln!(out, "  {target} {n}")?;
    }
    if by_count.len() > 20 {
        writeln!(
            out,
            "  ... and {} more (--json lists every match)",
            by_count.len() - 20
        )?;
    }
    out.flush()?;
    Ok(EXIT_OK)
}
