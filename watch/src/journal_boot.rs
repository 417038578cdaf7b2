//! Which boot a journal follower must name.
//!
//! `journalctl --follow` without `--boot` or `--merge` adds `--boot` by
//! itself (Debian 12's systemd 252 does: "follow implies this boot"), and takes
//! "this boot" from `/proc/sys/kernel/random/boot_id` as the child sees it,
//! not from the journal. systemd-nspawn (and other containers) fake the
//! container's boot ID with a bind mount over that file; a service with
//! `ProtectKernelTunables=`, `ProtectControlGroups=` or
//! `ProtectProc=invisible`, as banset's unit has, gets a fresh procfs
//! without that mount, sees the host's boot ID, and its `journalctl
//! --follow` matches no entry at all: it prints nothing, forever, with no
//! error. The journal itself records the right one: journald, outside the
//! sandbox, stamps every entry with the boot ID the container shows. So the
//! follower asks the journal for the boot of its newest entry and, when
//! that differs from the boot ID this process sees, names it with
//! `--boot=ID` (which still keeps other machines' journals out, unlike
//! `--merge`).

/// The argv of the probe: the newest entry of the local journal, only its
/// boot ID and cursor (json always carries `_BOOT_ID`). Without `--follow`
/// journalctl adds no boot match, so this sees the journal as it is.
pub fn probe_args() -> Vec<String> {
    [
        "--lines=1",
        "--output=json",
        "--output-fields=_BOOT_ID",
        "--no-pager",
        "--quiet",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

/// A boot ID as 32 lower-case hex digits: `/proc`'s dashed form and the
/// journal's plain form both map to it; anything else is `None`.
pub fn normalize(id: &str) -> Option<String> {
    let hex: String = id
        .trim()
        .chars()
        .filter(|&c| c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// The `_BOOT_ID` of the probe's output (the last JSON line that has one).
pub fn newest_entry_boot(probe_output: &[u8]) -> Option<String> {
    probe_output
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).ok()?;
            normalize(v.get("_BOOT_ID")?.as_str()?)
        })
        .next_back()
}

/// The `__CURSOR` of the probe's output (the last JSON line that has one):
/// where a follower without a saved cursor starts, instead of
/// `--lines=0`, after which journalctl 252 never printed the entries of a
/// `_SYSTEMD_UNIT=` match whose unit had not logged yet. A cursor is
/// journald's opaque `key=value;...` text; anything longer than a real one
/// or with control bytes is refused (it goes into an argument).
pub fn newest_entry_cursor(probe_output: &[u8]) -> Option<String> {
    probe_output
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).ok()?;
            let c = v.get("__CURSOR")?.as_str()?;
            (!c.is_empty() && c.len() <= 512 && !c.chars().any(char::is_control))
                .then(|| c.to_string())
        })
        .next_back()
}

/// What the follower does about the boot, given the journal's newest
/// entry's boot and the boot ID this process sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootChoice {
    /// journalctl's own `--follow` boot is right (or nothing better is
    /// known): pass nothing, as before.
    Implicit,
    /// The journal's boot is not the one this process sees: name it.
    Journal {
        /// The journal's boot, passed as `--boot=ID`.
        journal: String,
        /// The boot ID `/proc` shows this process (the host's, in a
        /// sandboxed container service), for the message.
        own: String,
    },
}

impl BootChoice {
    /// Decides from the two IDs (each `None` when unreadable).
    pub fn between(journal: Option<&str>, own: Option<&str>) -> BootChoice {
        match (journal.and_then(normalize), own.and_then(normalize)) {
            (Some(journal), Some(own)) if journal != own => BootChoice::Journal { journal, own },
            // Equal: journalctl's implicit boot is this one. Journal
            // unknown (empty, unreadable): nothing better to name. Own
            // unknown: journalctl could not read it either and would fail
            // loudly itself; naming the journal's boot keeps following.
            (Some(journal), None) => BootChoice::Journal {
                journal,
                own: "unreadable".to_string(),
            },
            _ => BootChoice::Implicit,
        }
    }

    /// The extra argument for `journalctl --follow`.
    pub fn arg(&self) -> Option<String> {
        match self {
            BootChoice::Implicit => None,
            BootChoice::Journal { journal, .. } => Some(format!("--boot={journal}")),
        }
    }

    /// The one-line notice the daemon logs when it names the boot.
    pub fn notice(&self) -> Option<String> {
        match self {
            BootChoice::Implicit => None,
            BootChoice::Journal { journal, own } => Some(format!(
                "the journal's current boot is {journal} but this process sees boot ID {own} \
                 (a container faking /proc/sys/kernel/random/boot_id, hidden by the unit's \
                 sandbox); following boot {journal} explicitly"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "5b0a3c5e-93b5-4c1e-a5a0-2f4c1d0e9a77";
    const JOURNAL: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

    #[test]
    fn normalize_accepts_both_forms_and_nothing_else() {
        assert_eq!(
            normalize(&format!("{PROC}\n")).as_deref(),
            Some("5b0a3c5e93b54c1ea5a02f4c1d0e9a77")
        );
        assert_eq!(normalize(&JOURNAL.to_uppercase()).as_deref(), Some(JOURNAL));
        assert_eq!(normalize("0f1e"), None);
        assert_eq!(normalize(&format!("{JOURNAL}0")), None);
        assert_eq!(normalize("zz1e2d3c4b5a69788796a5b4c3d2e1f0"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn newest_entry_boot_reads_the_last_entry() {
        let out = format!(
            "{{\"__CURSOR\":\"c1\",\"_BOOT_ID\":\"{}\"}}\n{{\"__CURSOR\":\"c2\",\"_BOOT_ID\":\"{JOURNAL}\"}}\n",
            "11111111111111111111111111111111"
        );
        assert_eq!(newest_entry_boot(out.as_bytes()).as_deref(), Some(JOURNAL));
        assert_eq!(newest_entry_boot(b""), None);
        assert_eq!(newest_entry_boot(b"-- No entries --\n"), None);
        assert_eq!(newest_entry_boot(b"{\"_BOOT_ID\":\"x; rm -rf /\"}\n"), None);
    }

    #[test]
    fn newest_entry_cursor_reads_the_last_entry_and_refuses_junk() {
        let out = b"{\"__CURSOR\":\"s=1;i=1\"}\n{\"__CURSOR\":\"s=1;i=2\",\"_BOOT_ID\":\"x\"}\n";
        assert_eq!(newest_entry_cursor(out).as_deref(), Some("s=1;i=2"));
        assert_eq!(newest_entry_cursor(b"-- No entries --\n"), None);
        assert_eq!(newest_entry_cursor(b"{\"__CURSOR\":\"\"}\n"), None);
        assert_eq!(newest_entry_cursor(b"{\"__CURSOR\":\"a\\nb\"}\n"), None);
        let long = format!("{{\"__CURSOR\":\"{}\"}}\n", "x".repeat(513));
        assert_eq!(newest_entry_cursor(long.as_bytes()), None);
    }

    #[test]
    fn journal_follow_reads_nothing_in_a_container_that_fakes_the_boot_id() {
        // nspawn: journald stamps the container's boot ID, the sandboxed
        // service sees the host's. The follower must name the journal's.
        let c = BootChoice::between(Some(JOURNAL), Some(PROC));
        assert_eq!(c.arg(), Some(format!("--boot={JOURNAL}")));
        let notice = c.notice().unwrap();
        assert!(
            notice.contains(JOURNAL) && notice.contains("5b0a3c5e93b5"),
            "{notice}"
        );
    }

    #[test]
    fn same_boot_or_unknown_journal_keeps_journalctls_own_choice() {
        let same = PROC.replace('-', "");
        assert_eq!(
            BootChoice::between(Some(&same), Some(PROC)),
            BootChoice::Implicit
        );
        assert_eq!(BootChoice::between(None, Some(PROC)), BootChoice::Implicit);
        assert_eq!(
            BootChoice::between(Some("junk"), Some(PROC)),
            BootChoice::Implicit
        );
        assert_eq!(BootChoice::Implicit.arg(), None);
        assert_eq!(BootChoice::Implicit.notice(), None);
        assert_eq!(
            BootChoice::between(Some(JOURNAL), None).arg(),
            Some(format!("--boot={JOURNAL}"))
        );
    }
}
