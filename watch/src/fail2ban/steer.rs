//! fail2ban filters whose address a client can choose, and how banset
//! reads them instead.
//!
//! A failregex is steerable when a field of free text the client writes
//! (an HTTP header, a user name) can hold a second, forged copy of the
//! daemon's text around the address, and the regex then reads the forged
//! copy. fail2ban 1.0.2's own filters have three such cases:
//! - `nginx-http-auth`: the user name is read lazily with an end-anchored
//!   tail whose `referrer: "\S+"` fails on a Referer holding a space, so a
//!   Referer (or Host) that repeats `": password mismatch, client: ADDR,
//!   ...` makes the user name swallow the real client;
//! - `pam-generic`: `ruser=` and `user=` both read `(?:\S*|.*?)`, and an FTP
//!   user name (vsftpd and pure-ftpd pass it as `ruser`) holding ` rhost=ADDR
//!   user=x` is read as ruser, forged rhost, user;
//! - `dovecot`: `passwd-file(USER,ADDR): unknown user` is not anchored at
//!   the end, so with relaxed user-name characters (`auth_username_chars`
//!   empty) a user name `x,ADDR): unknown user` is read up to the forged
//!   address.
//!
//! Anchoring alone cannot fix them: the free text sits on both sides of
//! the address (a user name before, a Referer after; `ruser` before, `user`
//! after), and fail2ban's own sample logs pin which reading wins for
//! injections on either side. banset keeps every such reading fail2ban's
//! samples expect, and adds one rule ([`crate::filter::Pattern::twin`]): the
//! pattern is read once with the free-text field as short as it can be and
//! once as long as it can be, with tails that accept any client text; both
//! must take the address from the same place. A real line has one reading;
//! a line with a forged copy has two, and is not counted (it is the
//! client's own line: it can only keep itself from being counted, which it
//! could also do by not logging in). The patterns are recognised by their
//! exact text after substitution, so a filter that changed them is not
//! rewritten, only warned about.

/// One steerable failregex of fail2ban's, and its two readings.
struct Known {
    /// The filter it belongs to (as named in `filter.d/`).
    filter: &'static str,
    /// Its text after substitution, as fail2ban 1.0.2 ships it.
    stock: &'static str,
    /// The free-text field read as short as possible.
    first: &'static str,
    /// ... and as long as possible.
    last: &'static str,
    /// The free text, for messages.
    field: &'static str,
    /// Text of the steerable failregex that a changed copy of it likely
    /// still has.
    marker: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        filter: "nginx-http-auth",
        stock: r#"^\s*\[error\] \d+#\d+: \*\d+ user "(?:[^"]+|.*?)":? (?:password mismatch|was not found in "[^\"]*"), client: <HOST>, server: \S*, request: "\S+ \S+ HTTP/\d+\.\d+", host: "\S+"(?:, referrer: "\S+")?\s*$"#,
        // The request line and Host cannot hold white space (nginx refuses
        // them since 1.21.1); the Referer can, so it is read as any text.
        first: r#"^\s*\[error\] \d+#\d+: \*\d+ user "(?:.*?)":? (?:password mismatch|was not found in "[^\"]*"), client: <HOST>, server: \S*, request: "\S+ \S+ HTTP/\d+\.\d+", host: "\S+"(?:, referrer: ".*")?\s*$"#,
        last: r#"^\s*\[error\] \d+#\d+: \*\d+ user "(?:.*)":? (?:password mismatch|was not found in "[^\"]*"), client: <HOST>, server: \S*, request: "\S+ \S+ HTTP/\d+\.\d+", host: "\S+"(?:, referrer: ".*")?\s*$"#,
        field: "the user name and the Referer",
        marker: r#"user ""#,
    },
    Known {
        filter: "pam-generic",
        stock: r"^ruser=<F-ALT_USER>(?:\S*|.*?)</F-ALT_USER> rhost=<HOST>(?:\s+user=<F-USER>(?:\S*|.*?)</F-USER>)?\s*$",
        // pam_unix writes `ruser=%s rhost=`: a ruser is empty or starts
        // with a visible character, in every reading. A ruser that starts
        // with a space and repeats ` rhost=ADDR user=` reads as an empty
        // ruser with a forged rhost, the same text as fail2ban's sample
        // "Injecting on username after host", which pins that reading: the
        // one case left (docs/fail2ban-steerable-filters.md).
        first: r"^ruser=<F-ALT_USER>(?:\S.*?)?</F-ALT_USER> rhost=<HOST>(?:\s+user=<F-USER>.*?</F-USER>)?\s*$",
        last: r"^ruser=<F-ALT_USER>(?:\S.*)?</F-ALT_USER> rhost=<HOST>(?:\s+user=<F-USER>.*?</F-USER>)?\s*$",
        field: "ruser and user (user names)",
        marker: "ruser=",
    },
    Known {
        filter: "dovecot",
        stock: r"^[a-z\-]{3,15}\(\S*,<HOST>(?:,\S*)?\): (?:[Uu]nknown user|[Ii]nvalid credentials|[Pp]assword mismatch)",
        first: r"^[a-z\-]{3,15}\((?:.*?),<HOST>(?:,\S*)?\): (?:[Uu]nknown user|[Ii]nvalid credentials|[Pp]assword mismatch)",
        last: r"^[a-z\-]{3,15}\((?:.*),<HOST>(?:,\S*)?\): (?:[Uu]nknown user|[Ii]nvalid credentials|[Pp]assword mismatch)",
        field: "the user name",
        marker: r"^[a-z\-]{3,15}\(",
    },
];

/// For a failregex (after substitution) that is one of fail2ban's known
/// steerable ones: its two readings, and a one-line notice.
pub(crate) fn harden(filter: &str, regex: &str) -> Option<(&'static str, &'static str, String)> {
    let k = KNOWN.iter().find(|k| k.stock == regex)?;
    Some((
        k.first,
        k.last,
        format!(
            "filter {filter}: failregex reads {} on both sides of the address; a line where {} could hold a forged address is not counted (fail2ban 1.0.2 bans the forged one)",
            k.field, k.field
        ),
    ))
}

/// A warning for a filter named like one with a known steerable failregex
/// when one of `failregexes` looks like that failregex but is not its
/// stock text (so banset did not harden it): the filter was changed, and
/// may still be steerable.
pub(crate) fn unhardened(filter: &str, failregexes: &[String]) -> Option<String> {
    let base = filter.split('[').next().unwrap_or(filter).trim();
    let k = KNOWN.iter().find(|k| {
        k.filter == base
            && failregexes
                .iter()
                .any(|f| f.contains(k.marker) && f != k.stock)
    })?;
    Some(format!(
        "filter {filter}: fail2ban's {} has a failregex a client can steer through {}, and this one differs from the text banset knows how to read safely; check that its failregexes anchor the address (see docs/fail2ban-steerable-filters.md)",
        k.filter, k.field
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::fail2ban::load_filter;
    use crate::matcher::{Matcher, Scan};

    const STOCK: &str = "/etc/fail2ban";

    /// The stock filter `name` of the installed fail2ban, `None` (with a
    /// note) when fail2ban is not installed.
    fn stock(name: &str, mode: &str) -> Option<crate::fail2ban::LoadedFilter> {
        if !Path::new(STOCK)
            .join("filter.d")
            .join(format!("{name}.conf"))
            .is_file()
        {
            eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
            return None;
        }
        let args = [("mode".to_string(), mode.to_string())];
        Some(load_filter(Path::new(STOCK), name, &args, &Default::default(), None).unwrap())
    }

    fn found(f: &crate::fail2ban::LoadedFilter, line: &str) -> Option<String> {
        let m = Matcher::new(std::slice::from_ref(&f.def)).unwrap();
        let mut hits = Vec::new();
        let (_, rest) = crate::logtime::split_date(line.as_bytes());
        match m.scan_line(line.as_bytes(), rest, &mut hits) {
            Scan::Hit => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    fn hardened_with_a_notice(f: &crate::fail2ban::LoadedFilter) {
        assert!(
            f.notices
                .iter()
                .any(|n| n.message.contains("forged address is not counted")),
            "{:?}",
            f.notices
        );
        assert!(
            !f.notices
                .iter()
                .any(|n| n.message.contains("a client can steer")),
            "{:?}",
            f.notices
        );
    }

    #[test]
    fn nginx_http_auth_cannot_be_steered_through_the_referer() {
        for mode in ["normal", "aggressive"] {
            let Some(f) = stock("nginx-http-auth", mode) else {
                return;
            };
            let real = r#"2024/01/01 00:00:00 [error] 1#0: *1 user "bob": password mismatch, client: 192.0.2.10, server: s, request: "GET / HTTP/1.1", host: "h""#;
            // The Referer repeats nginx's text with another client.
            let forged = format!(
                r#"{real}, referrer: "x": password mismatch, client: 6.6.6.6, server: s, request: "GET / HTTP/1.1", host: "h""#
            );
            assert_eq!(found(&f, &forged), None, "{forged}");
            // The user name too (fail2ban's own sample pins this one).
            let forged = r#"2024/01/01 00:00:00 [error] 1#0: *1 user "x": password mismatch, client: 6.6.6.6, server: s, request: "GET / HTTP/1.1", host: "h", referrer: "": password mismatch, client: 192.0.2.10, server: s, request: "GET / HTTP/1.1", host: "h""#;
            assert_eq!(found(&f, forged), None, "{forged}");
            // Honest lines, a Referer with a space included.
            assert_eq!(found(&f, real).as_deref(), Some("192.0.2.10"));
            let spaced = format!(r#"{real}, referrer: "http://a/b c""#);
            assert_eq!(found(&f, &spaced).as_deref(), Some("192.0.2.10"));
            hardened_with_a_notice(&f);
        }
    }

    #[test]
    fn pam_generic_cannot_be_steered_through_an_ftp_user_name() {
        let Some(f) = stock("pam-generic", "normal") else {
            return;
        };
        let pre = "Jul 19 18:11:50 srv2 vsftpd: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp";
        // vsftpd passes the FTP user name as ruser (and, with a current
        // pam_unix, as user too).
        for forged in [
            format!("{pre} ruser=x rhost=6.6.6.6 user=y rhost=192.0.2.20 "),
            format!("{pre} ruser=x rhost=6.6.6.6 rhost=192.0.2.20  user=x rhost=6.6.6.6"),
        ] {
            assert_eq!(found(&f, &forged), None, "{forged}");
        }
        assert_eq!(
            found(&f, &format!("{pre} ruser=bob rhost=192.0.2.20  user=bob")).as_deref(),
            Some("192.0.2.20")
        );
        assert_eq!(
            found(&f, &format!("{pre} ruser=bob rhost=192.0.2.20 ")).as_deref(),
            Some("192.0.2.20")
        );
        hardened_with_a_notice(&f);
    }

    #[test]
    fn dovecot_cannot_be_steered_through_a_relaxed_user_name() {
        let Some(f) = stock("dovecot", "normal") else {
            return;
        };
        let forged = "Jan 29 05:13:50 mail dovecot: auth: passwd-file(x,6.6.6.6): unknown user,192.0.2.30): unknown user";
        assert_eq!(found(&f, forged), None);
        let forged = "Jan 29 05:13:50 mail dovecot: auth: sql(a b,6.6.6.6,<s>): Password mismatch x,192.0.2.30,<t>): Password mismatch";
        assert_eq!(found(&f, forged), None);
        let honest =
            "Jan 29 05:13:50 mail dovecot: auth: passwd-file(john smith,192.0.2.30): unknown user";
        assert_eq!(found(&f, honest).as_deref(), Some("192.0.2.30"));
        hardened_with_a_notice(&f);
    }

    #[test]
    fn a_changed_copy_of_a_steerable_filter_is_warned_about() {
        let dir = std::env::temp_dir().join(format!("banset-f2b-steer-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("filter.d")).unwrap();
        std::fs::write(
            dir.join("filter.d/nginx-http-auth.conf"),
            "[Definition]\nfailregex = ^\\s*\\[error\\] \\d+#\\d+: \\*\\d+ user \"(?:[^\"]+|.*?)\":? password mismatch, client: <HOST>, .*$\n",
        )
        .unwrap();
        let f = load_filter(&dir, "nginx-http-auth", &[], &Default::default(), None).unwrap();
        assert!(
            f.notices
                .iter()
                .any(|n| n.message.contains("a client can steer")),
            "{:?}",
            f.notices
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The warning is for changed copies only: no stock filter, in any
    /// mode, raises it.
    #[test]
    fn stock_filters_raise_no_steering_warning() {
        let Ok(dir) = std::fs::read_dir(Path::new(STOCK).join("filter.d")) else {
            eprintln!("skipped: fail2ban is not installed (apt-get install fail2ban)");
            return;
        };
        for e in dir.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".conf") else {
                continue;
            };
            for mode in ["normal", "aggressive", "extra", "ddos", "fallback"] {
                let args = [("mode".to_string(), mode.to_string())];
                let Ok(f) = load_filter(Path::new(STOCK), name, &args, &Default::default(), None)
                else {
                    continue;
                };
                assert!(
                    !f.notices
                        .iter()
                        .any(|n| n.message.contains("a client can steer")),
                    "{name}[mode={mode}]: {:?}",
                    f.notices
                );
            }
        }
    }
}
