//! One journal reader for every journal source: which sources an entry
//! goes to, and where the shared reader resumes.
//!
//! A `journalctl --follow` child and a thread per journal source made
//! threads, processes and memory grow with the jails reading the journal
//! (Debian puts sshd on the systemd backend; admins often move every
//! jail there). The daemon now runs one child for the OR of every
//! source's matches ([`JournalQuery::union`]) and hands each entry to the
//! sources whose own query it satisfies ([`JournalShare::dispatch`]).
//! Pure: the daemon's reader thread runs it, the tests drive it.

use crate::journal_match::{cursor_realtime, EntryFields, JournalQuery};

/// The journal sources read by one reader, by index.
#[derive(Debug, Clone)]
pub struct JournalShare {
    queries: Vec<JournalQuery>,
    union: JournalQuery,
}

impl JournalShare {
    /// The share of sources with these `journalmatch` words, in order.
    pub fn new<'a>(sources: impl IntoIterator<Item = &'a [String]>) -> JournalShare {
        let queries: Vec<JournalQuery> = sources.into_iter().map(JournalQuery::parse).collect();
        let union = JournalQuery::union(&queries);
        JournalShare { queries, union }
    }

    /// journalctl's match arguments: the OR of every source's.
    pub fn args(&self) -> Vec<String> {
        self.union.args()
    }

    /// Appends to `out` the index of every source whose query `entry`
    /// satisfies. With one source, journalctl already chose for it: every
    /// entry it prints is that source's.
    pub fn dispatch(&self, entry: &dyn EntryFields, out: &mut Vec<usize>) {
        if self.queries.len() == 1 {
            out.push(0);
            return;
        }
        out.extend(
            self.queries
                .iter()
                .enumerate()
                .filter(|(_, q)| q.matches(entry))
                .map(|(i, _)| i),
        );
    }
}

/// Where the shared reader starts, and, per source, the realtime
/// (microseconds) up to which it already counted entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// Resume after this cursor (`None`: after the journal's newest entry).
    pub cursor: Option<String>,
    /// Per source: skip entries up to this realtime (its own cursor's),
    /// once, until an entry past it arrives.
    pub floors: Vec<Option<u64>>,
}

/// Where to resume: the shared reader's own cursor when it has one;
/// else (the first start after a banset that ran a reader per source)
/// the oldest of the sources' cursors, each source skipping what its own
/// cursor says it already counted, so no entry is counted twice and none
/// is missed.
pub fn resume(shared: Option<String>, per_source: &[Option<String>]) -> Resume {
    if shared.is_some() {
        return Resume {
            cursor: shared,
            floors: vec![None; per_source.len()],
        };
    }
    let oldest = per_source
        .iter()
        .flatten()
        .min_by_key(|c| cursor_realtime(c).unwrap_or(0))
        .cloned();
    Resume {
        cursor: oldest,
        floors: per_source
            .iter()
            .map(|c| c.as_deref().and_then(cursor_realtime))
            .collect(),
    }
}

/// Does a source with `floor` take the entry with `cursor`? An entry at
/// or before the floor was counted by the source's own reader; the first
/// one after it lifts the floor for good.
pub fn past_floor(floor: &mut Option<u64>, cursor: Option<&str>) -> bool {
    let Some(f) = *floor else {
        return true;
    };
    match cursor.and_then(cursor_realtime) {
        Some(t) if t <= f => false,
        _ => {
            *floor = None;
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(Vec<(&'static str, &'static str)>);
    impl EntryFields for E {
        fn has(&self, field: &str, value: &[u8]) -> bool {
            self.0
                .iter()
                .any(|(k, v)| *k == field && v.as_bytes() == value)
        }
    }
    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn entries_go_to_the_sources_whose_matches_they_satisfy() {
        let sources = [
            words("_SYSTEMD_UNIT=ssh.service + _COMM=sshd"),
            words("_SYSTEMD_UNIT=postfix@-.service"),
            words(""),
        ];
        let share = JournalShare::new(sources.iter().map(Vec::as_slice));
        // One source matches everything: the reader reads everything.
        assert!(share.args().is_empty());
        let mut out = Vec::new();
        share.dispatch(&E(vec![("_COMM", "sshd")]), &mut out);
        assert_eq!(out, [0, 2]);
        out.clear();
        share.dispatch(&E(vec![("_SYSTEMD_UNIT", "postfix@-.service")]), &mut out);
        assert_eq!(out, [1, 2]);
        let share = JournalShare::new(sources[..2].iter().map(Vec::as_slice));
        assert_eq!(
            share.args(),
            [
                "_SYSTEMD_UNIT=ssh.service",
                "+",
                "_COMM=sshd",
                "+",
                "_SYSTEMD_UNIT=postfix@-.service"
            ]
        );
        out.clear();
        share.dispatch(&E(vec![("_COMM", "cron")]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_lone_source_takes_whatever_journalctl_printed() {
        let only = [words("_SYSTEMD_UNIT=ssh.service")];
        let share = JournalShare::new(only.iter().map(Vec::as_slice));
        let mut out = Vec::new();
        share.dispatch(&E(vec![]), &mut out);
        assert_eq!(out, [0]);
    }

    #[test]
    fn resume_prefers_the_shared_cursor_else_the_oldest_with_floors() {
        let a = "s=1;i=5;b=x;m=1;t=100;x=1".to_string();
        let b = "s=1;i=9;b=x;m=1;t=200;x=1".to_string();
        let r = resume(Some("s=1;t=300".into()), &[Some(a.clone()), None]);
        assert_eq!(r.cursor.as_deref(), Some("s=1;t=300"));
        assert_eq!(r.floors, [None, None]);
        let r = resume(None, &[Some(b.clone()), None, Some(a.clone())]);
        assert_eq!(r.cursor, Some(a.clone()));
        assert_eq!(r.floors, [Some(0x200), None, Some(0x100)]);
        assert_eq!(resume(None, &[None]).cursor, None);
        // The source that had read to t=200 skips up to it, then takes all.
        let mut floor = Some(0x200);
        assert!(!past_floor(&mut floor, Some("s=1;t=150")));
        assert!(!past_floor(&mut floor, Some("s=1;t=200")));
        assert!(past_floor(&mut floor, Some("s=1;t=201")));
        assert_eq!(floor, None);
        assert!(past_floor(&mut floor, Some("s=1;t=100")));
        // A cursor that says no time: taken (and the floor lifted).
        let mut floor = Some(0x200);
        assert!(past_floor(&mut floor, Some("c7")));
    }
}
