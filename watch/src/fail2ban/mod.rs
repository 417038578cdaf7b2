//! fail2ban's configuration, read as it is: `jail.conf`, `jail.local`,
//! `jail.d/*`, and `filter.d/*` with their `.local` overrides, mapped onto
//! banset's jails, filters and sets.
//!
//! The reader follows fail2ban's own semantics (Python `ConfigParser` plus
//! fail2ban's includes, `known/` values and `<tag>` substitution) so a
//! configuration that works with fail2ban means the same thing here.
//! Whatever banset cannot honour is reported once, with file and line, as
//! a [`Notice`]; nothing is dropped silently.

pub mod compat;
/// fail2ban's date templates and `datepattern`; they live below the
/// matcher, which uses them (the crate-private `datefind`).
pub mod date {
    pub use crate::datefind::*;
}
mod error;
mod filter;
mod ini;
mod jail;
mod merge;
mod options;
mod reader;
mod steer;

pub use crate::pyregex::translate as translate_regex;
pub use error::{notice_lines, Error, Notice, Origin};
pub use filter::MaxlinesError;
pub use filter::{is_filter_file, load_filter, load_filter_adding, load_filter_file, LoadedFilter};
pub use jail::{load, parse_time, Fail2banConfig, Fail2banJail, SetWish, TimeError};
pub use merge::{merge, Merged};
pub use options::{extract_options, substitute_tags, OptionsError, OptionsProblem, TagError};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_in_brackets() {
        assert_eq!(extract_options("sshd").unwrap(), ("sshd".into(), vec![]));
        let (n, o) =
            extract_options(r#"iptables[port="smtp,465", protocol=tcp, name='x y'][chain=INPUT]"#)
                .unwrap();
        assert_eq!(n, "iptables");
        assert_eq!(
            o,
            vec![
                ("port".into(), "smtp,465".into()),
                ("protocol".into(), "tcp".into()),
                ("name".into(), "x y".into()),
                ("chain".into(), "INPUT".into())
            ]
        );
        assert_eq!(
            extract_options("sshd[mode=aggressive]").unwrap().1,
            vec![("mode".into(), "aggressive".into())]
        );
        assert!(extract_options("x[mode").is_err());
        assert!(extract_options("x[=1]").is_err());
        assert!(extract_options("[a=1]").is_err());
    }

    #[test]
    fn notices_many_jails_share_are_one_line() {
        let n = |jail: Option<&str>, message: &str| Notice {
            origin: "jail.conf:263".into(),
            jail: jail.map(str::to_string),
            message: message.into(),
        };
        let mut all = vec![n(None, "general")];
        for j in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            all.push(n(Some(j), "same action"));
        }
        all.push(n(Some("a"), "another"));
        all.push(n(Some("x"), "one jail"));
        all.push(n(Some("y"), "one jail"));
        assert_eq!(
            notice_lines(&all),
            [
                "jail.conf:263: general",
                "jail.conf:263: 8 jails (a, b, c, d, e, f, and 2 more): same action",
                "jail.conf:263: jail a: another",
                "jail.conf:263: jails x, y: one jail",
            ]
        );
    }

    #[test]
    fn tags_substitute_recursively() {
        let mut t = vec![
            (
                "failregex".to_string(),
                "^a <mdre-<mode>> <HOST>".to_string(),
            ),
            ("mode".into(), "aggressive".into()),
            ("mdre-aggressive".into(), "<x>!".into()),
            ("x".into(), "X".into()),
        ];
        substitute_tags(&mut t, &[], &mut |k| (k == "lt/y").then(|| "Y".into())).unwrap();
        assert_eq!(t[0].1, "^a X! <HOST>");
        let mut t = vec![
            ("a".to_string(), "<b>".to_string()),
            ("b".into(), "<a>".into()),
        ];
        assert!(substitute_tags(&mut t, &[], &mut |_| None).is_err());
        let mut t = vec![("a".to_string(), "<lt/y> <F-USER>".to_string())];
        substitute_tags(&mut t, &[], &mut |k| (k == "lt/y").then(|| "Y".into())).unwrap();
        assert_eq!(t[0].1, "Y <F-USER>");
    }
}
