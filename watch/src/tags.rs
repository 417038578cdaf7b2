//! fail2ban's regex tags: `<HOST>`, `<ADDR>`, `<IP4>`, `<IP6>`, `<CIDR>`,
//! `<SUBNET>` and the `<F-NAME>…</F-NAME>` capture markers, expanded into
//! plain regex syntax.
//!
//! fail2ban's own `<HOST>` also matches host names and then resolves them
//! through DNS. banset does not: a host name in a log line comes from the
//! attacker's reverse DNS, so a ban by name would let an attacker choose whom
//! banset bans. Only literal addresses are captured, and every capture is
//! parsed again as an address before it counts (see [`parse_host`]).

use std::net::IpAddr;

use banset_core::Target;

/// The name of the capture group every address tag expands to.
pub const HOST_GROUP: &str = "host";

/// An IPv4 address as it appears in logs: four dotted decimal numbers. Out
/// of range numbers (`999.1.1.1`) match here and are refused by
/// [`parse_host`].
const IPV4: &str = r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}";

/// An IPv6 address in any of its textual forms, `::ffff:1.2.3.4` included.
/// Deliberately loose; [`parse_host`] decides.
const IPV6: &str = r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}";

/// A host name where `<HOST>` stands, as fail2ban's `<DNS>` matches one.
/// Captured only so the line is read where fail2ban reads it; a name is
/// never resolved, so such a line counts against no one.
const DNS: &str = r"[\w\-.^_]*\w";

/// Why a pattern could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    /// A tag banset does not know or does not support.
    #[error("unsupported tag <{0}>")]
    Unsupported(String),
    /// The pattern has no address tag, so a match could not say whom to ban.
    #[error("no <HOST> (or <ADDR>, <IP4>, <IP6>) in the pattern")]
    NoHost,
    /// More than one address tag: which one is the offender would be a guess.
    #[error("more than one address tag in the pattern")]
    ManyHosts,
}

/// Expands the tags of a failregex. Exactly one address tag is required.
pub fn expand_failregex(pattern: &str) -> Result<String, TagError> {
    let (out, hosts) = expand(pattern)?;
    match hosts {
        0 => Err(TagError::NoHost),
        1 => Ok(out),
        _ => Err(TagError::ManyHosts),
    }
}

/// Expands the tags of an ignoreregex (an address tag is allowed, not
/// required).
pub fn expand_ignoreregex(pattern: &str) -> Result<String, TagError> {
    let (out, hosts) = expand(pattern)?;
    if hosts > 1 {
        return Err(TagError::ManyHosts);
    }
    Ok(out)
}

/// Expands the tags of a pattern and counts its address tags.
pub fn expand_counting(pattern: &str) -> Result<(String, usize), TagError> {
    expand(pattern)
}

/// Expands a pattern from a fail2ban filter file, as fail2ban would: tags
/// it does not know stay literal text (`<NOSRV>` in haproxy's log), and
/// address tags may appear in alternatives (`(?:IPv6:<IP6>|<IP4>)`); the
/// second and later are named `host2`, `host3`..., and the first that took
/// part in a match is the offender. Returns the count of address tags.
pub fn expand_fail2ban(pattern: &str) -> Result<(String, usize), TagError> {
    expand_with(pattern, true)
}

/// `<SKIPLINES>` number N expands to group `skiplinesN`, as in fail2ban.
pub(crate) const SKIPLINES_GROUP: &str = "skiplines";

/// Names of the address groups a fail2ban pattern may have, in order.
pub(crate) const HOST_GROUPS: [&str; 4] = [HOST_GROUP, "host2", "host3", "host4"];

fn expand(pattern: &str) -> Result<(String, usize), TagError> {
    expand_with(pattern, false)
}

fn expand_with(pattern: &str, fail2ban: bool) -> Result<(String, usize), TagError> {
    let mut out = String::with_capacity(pattern.len() + 128);
    let mut hosts = 0;
    let mut skips = 0;
    let mut rest = pattern;
    while let Some(open) = rest.find('<') {
        let (before, tail) = rest.split_at(open);
        out.push_str(before);
        // A tag is `<NAME>` or `</NAME>` with NAME of [A-Z0-9_-]; anything
        // else (`<` in `(?P<name>`, a literal `<user>`) is regex text.
        let Some(close) = tail.find('>') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let inner = &tail[1..close];
        // fail2ban's self-closing forms: `<F-ID/>`, `<F-PORT/>`, `<F-IP4/>`...
        if let Some(selfclosing) = inner.strip_suffix('/').and_then(|n| n.strip_prefix("F-")) {
            let expansion = match selfclosing {
                "ID" => Some(r"(?P<f_id>\S+)".to_string()),
                "PORT" => Some(r"(?P<f_port>\w+)".to_string()),
                "IP4" | "IP6" | "ADDR" | "CIDR" | "SUBNET" => None,
                other => return Err(TagError::Unsupported(format!("F-{other}/"))),
            };
            rest = &tail[close + 1..];
            match expansion {
                Some(e) => out.push_str(&e),
                None => {
                    let (e, n) = expand(&format!("<{selfclosing}>"))?;
                    let e = if fail2ban && hosts > 0 {
                        rename_host(&e, hosts)?
                    } else {
                        e
                    };
                    hosts += n;
                    out.push_str(&e);
                }
            }
            continue;
        }
        let (closing, name) = match inner.strip_prefix('/') {
            Some(n) => (true, n),
            None => (false, inner),
        };
        let is_tag = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            && name.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
            // `(?P<NAME>`, `(?<NAME>` and `(?(<NAME>)` are groups, not tags.
            && !before.ends_with("(?P")
            && !before.ends_with("(?")
            && !before.ends_with("(?(");
        if !is_tag {
            out.push('<');
            rest = &tail[1..];
            continue;
        }
        rest = &tail[close + 1..];
        if let Some(field) = name.strip_prefix("F-") {
            if closing {
                out.push(')');
            } else {
                let field = field.to_ascii_lowercase().replace('-', "_");
                if fail2ban {
                    // fail2ban's own group names, which its regexes may
                    // refer back to (`(?P=user)`).
                    let field = match field.as_str() {
                        "id" => "fid",
                        "port" => "fport",
                        f => f,
                    };
                    out.push_str("(?P<");
                    out.push_str(field);
                } else {
                    out.push_str("(?P<f_");
                    out.push_str(&field);
                }
                out.push('>');
            }
            continue;
        }
        if closing {
            return Err(TagError::Unsupported(inner.to_string()));
        }
        let expansion = match name {
            // fail2ban's <HOST> also matches a host name (its `<DNS>`,
            // tried after the address forms, as fail2ban orders them): where
            // a line names its offender by name the pattern matches there,
            // and the name, which is not an address, gives no failure. Were
            // names not matched, the regex would look further along the
            // line and could take another address than the offender's.
            "HOST" => format!(r"\[?(?P<{HOST_GROUP}>{IPV4}|{IPV6}|{DNS})\]?"),
            "ADDR" => format!(r"\[?(?P<{HOST_GROUP}>{IPV4}|{IPV6})\]?"),
            "IP4" => format!(r"(?P<{HOST_GROUP}>{IPV4})"),
            "IP6" => format!(r"\[?(?P<{HOST_GROUP}>{IPV6})\]?"),
            "CIDR" | "SUBNET" => {
                format!(r"\[?(?P<{HOST_GROUP}>(?:{IPV4}|{IPV6})(?:/[0-9]{{1,3}})?)\]?")
            }
            // fail2ban's multi-line gap: a newline, then any whole lines
            // (as few as possible); the matcher hands the lines it spans
            // back to its buffer. Only fail2ban filters, which set
            // `maxlines`, buffer lines.
            "SKIPLINES" if fail2ban => {
                out.push_str(&format!(r"\n(?P<{SKIPLINES_GROUP}{skips}>(?:(?:.*\n)*?))"));
                skips += 1;
                continue;
            }
            "SKIPLINES" | "DNS" => return Err(TagError::Unsupported(name.to_string())),
            _ if fail2ban => {
                // fail2ban leaves a tag it does not know in the regex.
                out.push('<');
                out.push_str(name);
                out.push('>');
                continue;
            }
            _ => return Err(TagError::Unsupported(name.to_string())),
        };
        let expansion = if fail2ban && hosts > 0 {
            rename_host(&expansion, hosts)?
        } else {
            expansion
        };
        hosts += 1;
        out.push_str(&expansion);
    }
    out.push_str(rest);
    Ok((out, hosts))
}

fn rename_host(expansion: &str, earlier: usize) -> Result<String, TagError> {
    let name = HOST_GROUPS.get(earlier).ok_or(TagError::ManyHosts)?;
    Ok(expansion.replace(&format!("(?P<{HOST_GROUP}>"), &format!("(?P<{name}>")))
}

/// Parses what an address tag captured. `None` for text that only looked
/// like an address (`999.1.1.1`, `1:2`, a zone id), for an address banset
/// never bans (`0.0.0.0`, `::`, broadcast, multicast: the core's
/// constructors refuse them), and for a prefix wider than a log line may
/// name ([`Target::parse_logged`]): such a line does not count against
/// anyone. IPv4-mapped IPv6 addresses fold to IPv4.
pub fn parse_host(text: &[u8]) -> Option<Target> {
    let text = std::str::from_utf8(text).ok()?;
    if text.contains('/') {
        return Target::parse_logged(text).ok();
    }
    let addr: IpAddr = text.parse().ok()?;
    Target::host(addr).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_of(pattern: &str, line: &str) -> Option<String> {
        let re = regex::Regex::new(&expand_failregex(pattern).unwrap()).unwrap();
        let caps = re.captures(line)?;
        parse_host(caps.name(HOST_GROUP)?.as_str().as_bytes()).map(|t| t.to_string())
    }

    #[test]
    fn host_matches_v4_v6_bracketed_and_mapped() {
        let p = r"^from <HOST> port";
        assert_eq!(host_of(p, "from 1.2.3.4 port").as_deref(), Some("1.2.3.4"));
        assert_eq!(
            host_of(p, "from 2001:db8::1 port").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            host_of(p, "from [2001:db8::2] port").as_deref(),
            Some("2001:db8::2")
        );
        assert_eq!(
            host_of(p, "from ::ffff:10.1.2.3 port").as_deref(),
            Some("10.1.2.3")
        );
        assert_eq!(host_of(p, "from ::1 port").as_deref(), Some("::1"));
        assert_eq!(
            host_of(p, "from fe80::1:2:3:4 port").as_deref(),
            Some("fe80::1:2:3:4")
        );
    }

    #[test]
    fn log_line_from_unspecified_address_is_not_banned() {
        // One such line banned 0.0.0.0, and its ledger row then broke every
        // read of the set (issue 13.1).
        let p = r"^from <HOST> port";
        for line in [
            "from 0.0.0.0 port",
            "from :: port",
            "from ::ffff:0.0.0.0 port",
            "from 255.255.255.255 port",
            "from 224.0.0.1 port",
            "from ff02::1 port",
            "from ::0.0.0.0 port",
            "from 64:ff9b::0.0.0.0 port",
            "from 64:ff9b::255.255.255.255 port",
        ] {
            assert_eq!(host_of(p, line), None, "{line}");
        }
    }

    #[test]
    fn log_line_subnet_wider_than_the_logged_limit_is_not_taken() {
        let p = r"^from <SUBNET> port";
        assert_eq!(host_of(p, "from 0.0.0.0/0 port"), None);
        assert_eq!(host_of(p, "from 10.0.0.0/8 port"), None);
        assert_eq!(host_of(p, "from 2001:db8::/31 port"), None);
        assert_eq!(
            host_of(p, "from 10.9.0.0/16 port").as_deref(),
            Some("10.9.0.0/16")
        );
        assert_eq!(
            host_of(p, "from 2001:db8::/48 port").as_deref(),
            Some("2001:db8::/48")
        );
    }

    #[test]
    fn text_that_only_looks_like_an_address_is_refused() {
        let p = r"^from <HOST> port";
        assert_eq!(host_of(p, "from 999.1.1.1 port"), None);
        assert_eq!(host_of(p, "from 1:2 port"), None);
        assert_eq!(host_of(p, "from example.com port"), None);
        assert_eq!(host_of(p, "from 1.2.3 port"), None);
    }

    #[test]
    fn capture_markers_and_named_groups_survive() {
        let e = expand_failregex(r"user=<F-USER>\S+</F-USER> rip=<HOST>").unwrap();
        assert!(e.starts_with(r"user=(?P<f_user>\S+) rip="), "{e}");
        let e = expand_failregex(r"(?P<x>a)<x> <HOST>").unwrap();
        assert!(e.starts_with("(?P<x>a)<x> "), "{e}");
        let e = expand_ignoreregex(r"user=<admin>").unwrap();
        assert_eq!(e, "user=<admin>");
    }

    #[test]
    fn host_tags_are_counted() {
        assert_eq!(expand_failregex("no tag here"), Err(TagError::NoHost));
        assert_eq!(expand_failregex("<HOST> <ADDR>"), Err(TagError::ManyHosts));
        assert_eq!(
            expand_failregex("<SKIPLINES><HOST>"),
            Err(TagError::Unsupported("SKIPLINES".into()))
        );
        assert!(expand_ignoreregex("nothing").is_ok());
    }

    #[test]
    fn skiplines_is_a_gap_of_whole_lines_in_fail2ban_filters() {
        let (e, hosts) = expand_fail2ban("^a <HOST><SKIPLINES>^b$<SKIPLINES>^c$").unwrap();
        assert_eq!(hosts, 1);
        let re = regex::Regex::new(&format!("(?m){e}")).unwrap();
        let c = re.captures("a 192.0.2.1\nx\ny\nb\nc\n").unwrap();
        assert_eq!(&c["skiplines0"], "x\ny\n");
        assert_eq!(&c["skiplines1"], "");
        assert!(!re.is_match("a 192.0.2.1 b c\n"));
    }
}
