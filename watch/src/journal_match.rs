//! What a `journalmatch` means, as journalctl reads its match arguments
//! (`man journalctl`, sd_journal_add_match(3)): one shared journal reader
//! asks journalctl for the OR of every jail's matches and decides here,
//! in-process, which jails an entry belongs to. The two must agree.
//!
//! - `FIELD=value` matches an entry that has the field with exactly that
//!   value (a field may appear more than once in an entry: any of its
//!   values will do).
//! - Matches of different fields are ANDed; matches of the same field
//!   are alternatives (ORed) within their term.
//! - A `+` between words ORs the term before it with the term after it.
//!   An empty term (a leading, trailing or doubled `+`) adds nothing, as
//!   sd_journal_add_disjunction ignores it.
//! - No match at all: every entry.
//!
//! fail2ban's `journalmatch` passes the same words to the same library
//! (python-systemd's `add_match` per term, `add_disjunction` at `+`), so
//! this is its meaning too.

use std::collections::{BTreeMap, BTreeSet};

/// One term: for each field, the values it may have (ORed); the fields
/// are ANDed.
pub type Term = BTreeMap<String, BTreeSet<Vec<u8>>>;

/// An entry's fields, as far as matching needs them.
pub trait EntryFields {
    /// The entry has `field` with the value `value` (among its values).
    fn has(&self, field: &str, value: &[u8]) -> bool;
}

/// A parsed `journalmatch`: terms ORed; no term matches every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalQuery {
    terms: Vec<Term>,
}

impl JournalQuery {
    /// Reads journalctl's match words (`FIELD=value` or `+`, already
    /// validated by the configuration readers; a word without `=` is
    /// skipped).
    pub fn parse(words: &[String]) -> JournalQuery {
        let mut terms = Vec::new();
        let mut term = Term::new();
        for w in words {
            if w == "+" {
                if !term.is_empty() {
                    terms.push(std::mem::take(&mut term));
                }
                continue;
            }
            if let Some((field, value)) = w.split_once('=') {
                term.entry(field.to_string())
                    .or_default()
                    .insert(value.as_bytes().to_vec());
            }
        }
        if !term.is_empty() {
            terms.push(term);
        }
        let mut q = JournalQuery { terms };
        q.dedup();
        q
    }

    fn dedup(&mut self) {
        let mut seen = BTreeSet::new();
        self.terms.retain(|t| seen.insert(t.clone()));
    }

    /// Matches every entry (no term).
    pub fn matches_all(&self) -> bool {
        self.terms.is_empty()
    }

    /// The OR of `queries`: what one journalctl reads for all of them.
    /// Any query matching everything makes the union match everything.
    pub fn union<'a>(queries: impl IntoIterator<Item = &'a JournalQuery>) -> JournalQuery {
        let mut terms = Vec::new();
        for q in queries {
            if q.matches_all() {
                return JournalQuery::default();
            }
            terms.extend(q.terms.iter().cloned());
        }
        let mut q = JournalQuery { terms };
        q.dedup();
        q
    }

    /// Does the entry satisfy the query?
    pub fn matches(&self, entry: &dyn EntryFields) -> bool {
        self.matches_all()
            || self.terms.iter().any(|term| {
                term.iter()
                    .all(|(field, values)| values.iter().any(|v| entry.has(field, v)))
            })
    }

    /// journalctl's match arguments for the query: each term's words,
    /// terms separated by `+`.
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                out.push("+".to_string());
            }
            for (field, values) in term {
                for v in values {
                    out.push(format!("{field}={}", String::from_utf8_lossy(v)));
                }
            }
        }
        out
    }

    /// Every field the query looks at.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().flat_map(|t| t.keys().map(String::as_str))
    }
}

/// The realtime (microseconds) a journal cursor carries in its `t=` part
/// (`s=..;i=..;b=..;m=..;t=HEX;x=..`), to order cursors without a
/// journal; `None` for anything else.
pub fn cursor_realtime(cursor: &str) -> Option<u64> {
    let hex = cursor.split(';').find_map(|p| p.strip_prefix("t="))?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// An entry: field to values.
    struct E(HashMap<&'static str, Vec<&'static str>>);
    impl EntryFields for E {
        fn has(&self, field: &str, value: &[u8]) -> bool {
            self.0
                .get(field)
                .is_some_and(|vs| vs.iter().any(|v| v.as_bytes() == value))
        }
    }
    fn e(pairs: &[(&'static str, &'static str)]) -> E {
        let mut m: HashMap<&str, Vec<&str>> = HashMap::new();
        for (k, v) in pairs {
            m.entry(k).or_default().push(v);
        }
        E(m)
    }
    fn q(words: &str) -> JournalQuery {
        JournalQuery::parse(
            &words
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn different_fields_are_anded() {
        let query = q("_SYSTEMD_UNIT=ssh.service _COMM=sshd");
        assert!(query.matches(&e(&[("_SYSTEMD_UNIT", "ssh.service"), ("_COMM", "sshd")])));
        assert!(!query.matches(&e(&[("_SYSTEMD_UNIT", "ssh.service")])));
        assert!(!query.matches(&e(&[("_COMM", "sshd")])));
        assert!(!query.matches(&e(&[("_SYSTEMD_UNIT", "ssh.service"), ("_COMM", "bash")])));
    }

    #[test]
    fn the_same_field_twice_is_an_alternative() {
        let query = q("_SYSTEMD_UNIT=ssh.service _SYSTEMD_UNIT=sshd.service _COMM=sshd");
        assert!(query.matches(&e(&[("_SYSTEMD_UNIT", "sshd.service"), ("_COMM", "sshd")])));
        assert!(query.matches(&e(&[("_SYSTEMD_UNIT", "ssh.service"), ("_COMM", "sshd")])));
        assert!(!query.matches(&e(&[("_SYSTEMD_UNIT", "sshd.service")])));
        assert!(!query.matches(&e(&[("_SYSTEMD_UNIT", "cron.service"), ("_COMM", "sshd")])));
    }

    #[test]
    fn plus_ors_the_terms_around_it_and_binds_loosest() {
        // (A=1 AND B=2) OR C=3, as journalctl reads `A=1 B=2 + C=3`.
        let query = q("A=1 B=2 + C=3");
        assert!(query.matches(&e(&[("A", "1"), ("B", "2")])));
        assert!(query.matches(&e(&[("C", "3")])));
        assert!(!query.matches(&e(&[("A", "1"), ("C", "4")])));
        assert!(!query.matches(&e(&[("B", "2")])));
        // The same field in two terms is not merged across the `+`.
        let query = q("A=1 B=2 + A=3");
        assert!(query.matches(&e(&[("A", "3"), ("B", "9")])));
        assert!(query.matches(&e(&[("A", "3")])));
        assert!(!query.matches(&e(&[("A", "1")])));
    }

    #[test]
    fn a_field_with_several_values_matches_any_of_them() {
        let entry = e(&[("SYSLOG_IDENTIFIER", "a"), ("SYSLOG_IDENTIFIER", "sshd")]);
        assert!(q("SYSLOG_IDENTIFIER=sshd").matches(&entry));
        assert!(!q("SYSLOG_IDENTIFIER=b").matches(&entry));
    }

    #[test]
    fn values_compare_whole_and_exactly() {
        let entry = e(&[("_COMM", "sshd-session"), ("EMPTY", "")]);
        assert!(!q("_COMM=sshd").matches(&entry));
        assert!(!q("_COMM=SSHD-SESSION").matches(&entry));
        assert!(q("EMPTY=").matches(&entry));
        assert!(!q("EMPTY=").matches(&e(&[("OTHER", "")])));
        // A value may itself hold `=`: only the first one splits.
        assert!(q("K=a=b").matches(&e(&[("K", "a=b")])));
    }

    #[test]
    fn no_match_or_only_plus_matches_everything_and_empty_terms_add_nothing() {
        assert!(q("").matches(&e(&[])));
        assert!(q("+").matches_all());
        assert!(q("+ +").matches(&e(&[("X", "1")])));
        let query = q("+ A=1 + + B=2 +");
        assert_eq!(query.args(), ["A=1", "+", "B=2"]);
        assert!(!query.matches(&e(&[("C", "1")])));
    }

    #[test]
    fn the_union_is_every_term_once_and_everything_if_one_query_is() {
        let a = q("_SYSTEMD_UNIT=ssh.service + _COMM=sshd");
        let b = q("_SYSTEMD_UNIT=postfix@-.service");
        let c = q("_COMM=sshd");
        let u = JournalQuery::union([&a, &b, &c]);
        assert_eq!(
            u.args(),
            [
                "_SYSTEMD_UNIT=ssh.service",
                "+",
                "_COMM=sshd",
                "+",
                "_SYSTEMD_UNIT=postfix@-.service"
            ]
        );
        // Whatever one query matches, the union matches.
        for entry in [
            e(&[("_SYSTEMD_UNIT", "ssh.service")]),
            e(&[("_COMM", "sshd")]),
            e(&[("_SYSTEMD_UNIT", "postfix@-.service")]),
        ] {
            assert!(u.matches(&entry));
            assert!([&a, &b, &c].iter().any(|q| q.matches(&entry)));
        }
        assert!(!u.matches(&e(&[("_SYSTEMD_UNIT", "cron.service")])));
        let all = JournalQuery::union([&a, &q("")]);
        assert!(all.matches_all());
        assert!(all.args().is_empty());
        let fields: BTreeSet<&str> = u.fields().collect();
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            ["_COMM", "_SYSTEMD_UNIT"]
        );
    }

    #[test]
    fn cursor_realtime_reads_the_t_part_only() {
        let c = "s=6d3c;i=1a2;b=0f1e;m=3f1;t=5f3e2d1c0b0a9;x=77";
        assert_eq!(cursor_realtime(c), Some(0x5f3e2d1c0b0a9));
        assert_eq!(cursor_realtime("c12"), None);
        assert_eq!(cursor_realtime("t="), None);
        assert_eq!(cursor_realtime("t=zz"), None);
        assert_eq!(cursor_realtime("t=11111111111111111"), None);
    }
}
