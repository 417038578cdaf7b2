//! The one path from a raw log entry to failures.
//!
//! A file line and a journal entry differ in one thing only: where the
//! failure's time comes from. A file line carries its date as text, which
//! is cut off before the filters run (as fail2ban cuts it) and read in the
//! local zone at that date; a journal entry has its own timestamp
//! (`__REALTIME_TIMESTAMP`) and no date is cut out of its message.
//! Everything else (the combined scan, ignoreregex, the address) is the
//! same [`Matcher`] call. `banset regex-test`, `banset watch --check` and
//! the daemon's source threads all go through [`LinePipeline`], so what
//! regex-test reports is what the daemon counts.

use std::collections::BTreeMap;

use banset_core::Target;

use crate::logtime::{parse_date, split_date, DateContext, Zone};
use crate::settings::{JailSettings, SourceKey};
use crate::{FilterDef, FilterError, Hit, Matcher, Scan};

/// A log entry as a source reads it.
#[derive(Debug, Clone, Copy)]
pub enum RawEntry<'a> {
    /// A line of a log file, without its line end.
    Line(&'a [u8]),
    /// A journal entry: `HOST IDENT[PID]: MESSAGE`, the syslog shape the
    /// filters expect, built from its fields
    /// ([`crate::follow::parse_journal_json`]), and its own time, Unix
    /// seconds (`None`: the entry had none; it counts at the time read).
    Journal {
        /// The entry's text.
        line: &'a [u8],
        /// `__REALTIME_TIMESTAMP`.
        at: Option<i64>,
    },
}

impl<'a> RawEntry<'a> {
    /// The entry's text as read.
    pub fn text(&self) -> &'a [u8] {
        match self {
            RawEntry::Line(l) => l,
            RawEntry::Journal { line, .. } => line,
        }
    }
}

/// One failure a filter found in an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// When it happened, Unix seconds: the entry's date; the time it was
    /// read when it has none, or one from the future (a wrong clock or a
    /// forged line must not outlive the present).
    pub at: i64,
    /// Index of the filter in the list the pipeline was built from.
    pub filter: usize,
    /// Index of the failregex in that filter (0-based).
    pub regex: usize,
    /// The offender.
    pub target: Target,
    /// An ignoreregex of the filter matched the line too: not a failure
    /// to count, reported so a test command can say so.
    pub ignored: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct LinePipeline {
    matcher: Matcher,
    zone: Zone,
}

impl LinePipeline {
    /// The pipeline of `filters` (every filter that reads one source),
    /// reading zone-less dates in the local zone.
    pub fn new(filters: &[FilterDef]) -> Result<LinePipeline, FilterError> {
        Ok(LinePipeline {
            matcher: Matcher::new(filters)?,
            zone: Zone::Local,
        })
    }

    /// Reads zone-less dates in `zone` instead (tests).
    pub fn with_zone(mut self, zone: Zone) -> LinePipeline {
        self.zone = zone;
        self
    }

    /// The filters' names, by index.
    pub fn filter_names(&self) -> &[String] {
        self.matcher.filter_names()
    }

    /// Number of failregexes of filter `filter`.
    pub fn failregex_count(&self, filter: usize) -> usize {
        self.matcher.failregex_count(filter)
    }

    /// Runs every filter over one entry, appending at most one failure per
    /// filter to `out`. `now` is the time the entry is read.
    pub fn process(&self, entry: RawEntry<'_>, now: i64, out: &mut Vec<Failure>) -> Scan {
        // Most lines match nothing: an empty Vec costs no allocation.
        let mut hits: Vec<Hit> = Vec::new();
        let (scan, date) = match entry {
            RawEntry::Line(line) => {
                let (date, rest) = split_date(line);
                (self.matcher.scan_line(line, rest, &mut hits), Err(date))
            }
            RawEntry::Journal { line, at } => (self.matcher.scan_undated(line, &mut hits), Ok(at)),
        };
        if scan != Scan::Hit {
            return scan;
        }
        // The date is read only for lines that something matched.
        let at = match date {
            Ok(at) => at,
            Err(date) => parse_date(
                date,
                &DateContext {
                    now,
                    zone: self.zone,
                },
            ),
        }
        .filter(|t| *t <= now)
        .unwrap_or(now);
        out.extend(hits.into_iter().map(|h| Failure {
            at,
            filter: h.filter,
            regex: h.regex,
            target: h.target,
            ignored: h.ignored,
        }));
        scan
    }
}

/// The pipeline of one source and the jail each of its filters feeds.
#[derive(Debug)]
pub struct SourcePipeline {
    /// Every filter of every jail that reads the source, in one scan.
    pub pipeline: LinePipeline,
    /// Jail index (into the jails it was built from) of each filter.
    pub jail_of_filter: Vec<usize>,
}

/// Groups jails by the sources they read and builds each source's
/// pipeline: what the daemon runs, and what `--check` compiles so a
/// combination that does not build is a configuration error.
pub fn source_pipelines(
    jails: &[JailSettings],
) -> BTreeMap<SourceKey, Result<SourcePipeline, FilterError>> {
    let mut by_source: BTreeMap<SourceKey, (Vec<FilterDef>, Vec<usize>)> = BTreeMap::new();
    for (i, jail) in jails.iter().enumerate() {
        for key in &jail.sources {
            let entry = by_source.entry(key.clone()).or_default();
            entry.0.push(jail.filter.clone());
            entry.1.push(i);
        }
    }
    by_source
        .into_iter()
        .map(|(key, (filters, jail_of_filter))| {
            let built = LinePipeline::new(&filters).map(|pipeline| SourcePipeline {
                pipeline,
                jail_of_filter,
            });
            (key, built)
        })
        .collect()
}

/// The pipeline of one source, `key`, for the jails that read it (a file
/// a `logpath` glob matched after start); `None` when no jail reads it.
pub fn source_pipeline(
    jails: &[JailSettings],
    key: &SourceKey,
) -> Option<Result<SourcePipeline, FilterError>> {
    let (filters, jail_of_filter): (Vec<FilterDef>, Vec<usize>) = jails
        .iter()
        .enumerate()
        .filter(|(_, j)| j.sources.contains(key))
        .map(|(i, j)| (j.filter.clone(), i))
        .unzip();
    if filters.is_empty() {
        return None;
    }
    Some(LinePipeline::new(&filters).map(|pipeline| SourcePipeline {
        pipeline,
        jail_of_filter,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fail2ban::load_filter;
    use crate::Pattern;

    // 2026-11-21T12:00:00Z
    const NOW: i64 = 1_795_262_400;

    fn failures(p: &LinePipeline, entry: RawEntry<'_>) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        p.process(entry, NOW, &mut out);
        out.into_iter()
            .map(|f| (f.at, f.target.to_string()))
            .collect()
    }

    #[test]
    fn a_file_line_counts_at_its_own_date_and_a_future_one_at_now() {
        let p = LinePipeline::new(&[FilterDef::new(
            "t",
            vec![Pattern::new(r"^h x: fail from <HOST>$")],
            Vec::new(),
        )])
        .unwrap()
        .with_zone(Zone::Fixed(0));
        assert_eq!(
            failures(
                &p,
                RawEntry::Line(b"Nov 21 11:00:00 h x: fail from 192.0.2.1")
            ),
            vec![(NOW - 3600, "192.0.2.1".into())]
        );
        assert_eq!(
            failures(
                &p,
                RawEntry::Line(b"Nov 21 13:00:00 h x: fail from 192.0.2.1")
            ),
            vec![(NOW, "192.0.2.1".into())]
        );
        assert_eq!(
            failures(&p, RawEntry::Line(b"h x: fail from 192.0.2.1")),
            vec![(NOW, "192.0.2.1".into())]
        );
    }

    #[test]
    fn a_host_name_where_host_stands_gives_no_address_never_a_later_one() {
        // pam-generic's shape: the first rhost= is the offender's; a name
        // there must not let the regex slide on to an address the client
        // wrote further along (a user name, a second field).
        let p = LinePipeline::new(&[
            FilterDef::new(
                "pam",
                vec![Pattern::new(r"^\S+ \S+: .*? rhost=<HOST>(?: |$)")],
                Vec::new(),
            ),
            FilterDef::new(
                "two",
                vec![
                    Pattern::new(r"^\S+ \S+: login failed from <HOST>"),
                    Pattern::new(r"^\S+ \S+: login failed .* for <HOST>"),
                ],
                Vec::new(),
            ),
        ])
        .unwrap();
        let none = |line: &str| failures(&p, RawEntry::Line(line.as_bytes()));
        assert_eq!(
            none("h pam: auth failure; rhost=evil.example user=x rhost=192.0.2.152"),
            vec![]
        );
        // The first failregex matched a name: the filter is done with the
        // line, a later failregex does not get to pick another address.
        assert_eq!(
            none("h pam: login failed from evil.example for 192.0.2.7"),
            vec![]
        );
        assert_eq!(
            none("h pam: auth failure; rhost=192.0.2.9 user=x"),
            vec![(NOW, "192.0.2.9".into())]
        );
    }

    fn filter_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "banset-pipeline-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        for (name, text) in files {
            let p = d.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    /// Issue 16: `regex-test` with sshd.conf spent 555M instructions
    /// before its first line, compiling the filter three times: twice in
    /// the loader's check (alone, then as a matcher it dropped) and once
    /// more for the pipeline, the shared cache's weak entry having died
    /// with the check's. The daemon compiled each jail's filter in the
    /// loader, in the jail's check, for `--check`'s pipelines and for its
    /// sources. Run here as `regex-test` (`cli/src/cmd/regex_test.rs`) and
    /// `banset watch --fail2ban` (`cli/src/daemon/settings.rs`, then
    /// `sources.rs`) run it, each thing compiles once: the filter's
    /// patterns, the source's combined scan, its date finder. The filter
    /// and its datepattern are this test's own, so no other test holds
    /// them compiled.
    #[test]
    fn a_fail2ban_filter_is_compiled_once_at_start_up() {
        use crate::compiled::FILTER_COMPILES;
        use crate::shared::{keeping, BUILDS};
        let d = filter_dir(&[
            (
                "filter.d/once.conf",
                "[Definition]\nprefregex = ^\\s*\\S+ once\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$\n\
                 failregex = ^compiled once for <HOST>$\n            ^and only once for <HOST>$\n\
                 ignoreregex = ^compiled once for 192\\.0\\.2\\.1$\n\
                 datepattern = ^%%Y-%%m-%%d %%H:%%M:%%S once\n",
            ),
            (
                "jail.local",
                "[once]\nenabled = true\nfilter = once\nlogpath = /dev/null\nbackend = auto\n",
            ),
        ]);
        let counts = || {
            (
                FILTER_COMPILES.with(std::cell::Cell::get),
                BUILDS.with(std::cell::Cell::get),
            )
        };
        let line =
            RawEntry::Line(b"2026-11-21 12:00:00 once h once[7]: compiled once for 192.0.2.9");

        // regex-test: the filter file loaded and checked, then its pipeline.
        let before = counts();
        let (loaded, kept) = keeping(|| {
            crate::fail2ban::load_filter_file(
                d.join("filter.d/once.conf").to_str().unwrap(),
                false,
                &[],
            )
        });
        let (loaded, _) = loaded.unwrap();
        let p = LinePipeline::new(&[loaded.def]).unwrap();
        drop(kept);
        let after = counts();
        // One filter compile; three shared builds: the patterns, the scan,
        // the date finder.
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 3));
        assert_eq!(failures(&p, line).len(), 1);
        drop(p);

        // The daemon: fail2ban's jails loaded and checked, every source's
        // pipeline built for the check, then again for the sources.
        let before = counts();
        let (jails, kept) = keeping(|| {
            let jails: Vec<_> = crate::fail2ban::load(&d)
                .unwrap()
                .jails
                .into_iter()
                .map(|j| j.settings)
                .collect();
            for (_, built) in source_pipelines(&jails) {
                built.unwrap();
            }
            jails
        });
        let sources = source_pipelines(&jails);
        drop(kept);
        let after = counts();
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 3));
        let source = sources.into_values().next().unwrap().unwrap();
        assert_eq!(failures(&source.pipeline, line).len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_journal_entry_counts_at_its_timestamp_and_keeps_the_date_in_its_message() {
        // exim writes its own date at the start of each message; on the
        // journal that date is message text, and the entry's timestamp is
        // the time.
        let d = filter_dir(&[(
            "filter.d/eximlike.conf",
            "[Definition]\nfailregex = ^\\S+ exim\\[\\d+\\]: \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d login authenticator failed for \\S+ \\[<HOST>\\]\n",
        )]);
        let f = load_filter(&d, "eximlike", &[], &Default::default(), None).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
        let p = LinePipeline::new(&[f.def])
            .unwrap()
            .with_zone(Zone::Fixed(0));
        let line =
            b"mx exim[7]: 2026-11-20 09:00:00 login authenticator failed for (x) [192.0.2.7]: 535";
        assert_eq!(
            failures(
                &p,
                RawEntry::Journal {
                    line,
                    at: Some(NOW - 60)
                }
            ),
            vec![(NOW - 60, "192.0.2.7".into())]
        );
    }
}
