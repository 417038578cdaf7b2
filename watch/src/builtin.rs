//! The built-in filters: sshd, sshd-aggressive, postfix, postfix-sasl,
//! dovecot, qpopper.
//!
//! Each line a daemon writes mixes its own text with text an attacker
//! chose (a user name, a HELO, a password). Every pattern here is built so
//! that the address it captures is one the daemon wrote:
//! - either the pattern is anchored at the start and the address comes
//!   before any attacker text (postfix: `RCPT from name[ADDR]: ...`), with
//!   character classes that cannot run into that text;
//! - or the attacker text comes first and the pattern reads it with a
//!   greedy `.*`, followed by the address and a fixed tail up to the end of
//!   the line (sshd: `for USER from ADDR port N ssh2$`). Greedy means the
//!   *last* place where address and tail fit, and the daemon's own part is
//!   always last, so a forged `from 6.6.6.6 port 22` inside a user name loses.
//!   The tails admit no free text for the same reason;
//! - qpopper writes the user name twice, before and after the address; the
//!   pattern requires both copies to be equal (a back-reference), which
//!   leaves only one way to read the line.
//!
//! The tests below hold a corpus of real-format lines and an injection
//! attempt for every filter.

use crate::filter::{FilterDef, Pattern};

/// Names of the built-in filters.
pub const BUILTIN_FILTERS: &[&str] = &[
    "sshd",
    "sshd-aggressive",
    "postfix",
    "postfix-sasl",
    "dovecot",
    "qpopper",
];

/// The syslog part before the message, after the date: an optional host
/// name, the program (`prog`, a regex) and an optional `[pid]`.
fn prefix(prog: &str) -> String {
    format!(r"^{HOST_FIELD}(?:{prog})(?:\[\d+\])?: ")
}

/// The optional host-name field of a syslog line. A host name (or an
/// address written in its place) never holds a bracket and never ends in a
/// colon, while a program's tag (`cron[12]:`, `cron:`) always does one or
/// the other. Without that rule, a line with no host field, such as
/// `cron[12]: sshd[1]: Failed password ... from 6.6.6.6 ...`, would read as
/// host `cron[12]:` and program `sshd`: another program's message, written
/// by whoever can write to syslog, would pass for sshd's.
const HOST_FIELD: &str = r"(?:[^\s\[\]]*[^\s\[\]:] )?";

const SSHD: &str = r"sshd(?:-session)?";
const POSTFIX_SMTPD: &str = r"postfix(?:-[\w.-]+)?/(?:[\w-]+/)?smtpd";
/// `name[ADDR]` as postfix writes a client: the name is a validated host
/// name or `unknown`, and cannot hold brackets or spaces.
const POSTFIX_CLIENT: &str = r"[^\[\]\s]*\[<HOST>\](?::\d+)?";

fn sshd_normal() -> Vec<String> {
    let p = prefix(SSHD);
    vec![
        format!(
            r"{p}(?:error: )?Failed (?:password|keyboard-interactive/pam|hostbased|gssapi-with-mic) for (?:invalid user )?.* from <HOST> port \d+(?: ssh\d)?(?:: [A-Z0-9-]+ [A-Za-z0-9+/=:]+)?$"
        ),
        format!(r"{p}Invalid user .* from <HOST>(?: port \d+)?$"),
        format!(
            r"{p}(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?.* from <HOST> port \d+(?: ssh\d)? \[preauth\]$"
        ),
        format!(
            r"{p}User .* from <HOST> not allowed because (?:not listed in|listed in|none of user's groups are listed in|a group is listed in|not in any group|shell does not exist|shell is not executable)(?: [A-Za-z]+)?$"
        ),
        format!(
            r"{p}(?:error: )?PAM: (?:User not known to the underlying authentication module|Authentication failure) for (?:illegal user )?.* from <HOST>$"
        ),
    ]
}

fn sshd_aggressive_extra() -> Vec<String> {
    let p = prefix(SSHD);
    vec![
        format!(
            r"{p}Connection (?:closed|reset) by authenticating user .* <HOST> port \d+ \[preauth\]$"
        ),
        format!(r"{p}Did not receive identification string from <HOST>(?: port \d+)?$"),
        format!(r"{p}Unable to negotiate with <HOST> port \d+: no matching [\w ]+ found\. .*$"),
        format!(
            r"{p}banner exchange: Connection from <HOST> port \d+: (?:invalid format|could not read protocol version)$"
        ),
    ]
}

fn postfix() -> Vec<String> {
    let p = prefix(POSTFIX_SMTPD);
    let c = POSTFIX_CLIENT;
    vec![
        format!(r"{p}NOQUEUE: reject: RCPT from {c}: 5\d\d 5\.\d\.\d{{1,3}} "),
        format!(
            r"{p}disconnect from {c}(?: [a-z]+=\d+(?:/\d+)?)* auth=0/\d+(?: [a-z]+=\d+(?:/\d+)?)*$"
        ),
        format!(r"{p}warning: non-SMTP command from {c}: "),
        format!(r"{p}(?:lost connection|timeout) after AUTH (?:\(\d+ bytes\) )?from {c}$"),
        format!(r"{p}improper command pipelining after \S+ from {c}: "),
    ]
}

fn postfix_sasl() -> Vec<String> {
    let p = prefix(POSTFIX_SMTPD);
    let c = POSTFIX_CLIENT;
    vec![format!(
        r"{p}warning: {c}: SASL (?:LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5|NTLM|XOAUTH2|OAUTHBEARER|SCRAM-SHA-\d+(?:-PLUS)?) authentication failed"
    )]
}

fn dovecot() -> Vec<String> {
    let p = prefix("dovecot");
    vec![
        // `user=<...>` comes before `rip=`; the greedy `.*` takes the last
        // `rip=..., lip=`, which is dovecot's.
        format!(
            r"{p}(?:pop3|imap|managesieve|submission)-login: (?:Disconnected|Aborted login|Login aborted)\b.*\(auth failed, \d+ attempts?(?: in \d+ secs?)?\): .*rip=<HOST>, lip=[0-9A-Fa-f:.]+(?:, (?:mpid=\d+|TLS|secured|session=<[\w+/]*>|TLS handshaking[\w :]*|TLS: [\w :]*))*$"
        ),
        format!(
            r"{p}auth(?:-worker)?(?:\(\d+\))?: (?:pam|passwd-file|passwd|shadow|sql|ldap|checkpassword|bsdauth)\(.*,<HOST>(?:,<[\w+/]*>)?\): (?:unknown user|Password mismatch|pam_authenticate\(\) failed: [A-Za-z ]+(?: \([a-z ?]+\))?)(?: \(SHA1 of given password: [0-9a-f]+\))?$"
        ),
    ]
}

fn qpopper() -> Vec<Pattern> {
    let p = prefix(r"q?popper");
    vec![
        Pattern {
            regex: format!(
                r#"{p}(?P<user>.*) at \S+ \(<HOST>\): -ERR \[AUTH\] (?:Password supplied for "(?P=user)" is incorrect\.|PAM authentication failed for user "(?P=user)")$"#
            ),
            gate: Some(format!(r"{p}.* at \S+ \(\S+\): -ERR \[AUTH\] ")),
            twin: None,
        },
        Pattern::new(format!(
            r"^{HOST_FIELD}[\w.-]+(?:\[\d+\])?: refused connect(?:ion)? from <HOST>, service qpopper \(tcp\)$"
        )),
    ]
}

/// The built-in filter `name`, if there is one.
pub fn builtin_filter(name: &str) -> Option<FilterDef> {
    let plain = |v: Vec<String>| v.into_iter().map(Pattern::new).collect::<Vec<_>>();
    let failregex = match name {
        "sshd" => plain(sshd_normal()),
        "sshd-aggressive" => {
            let mut v = sshd_normal();
            v.extend(sshd_aggressive_extra());
            plain(v)
        }
        "postfix" => plain(postfix()),
        "postfix-sasl" => plain(postfix_sasl()),
        "dovecot" => plain(dovecot()),
        "qpopper" => qpopper(),
        _ => return None,
    };
    Some(FilterDef::new(name, failregex, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::{Matcher, Scan};

    fn found(filter: &str, line: &str) -> Option<String> {
        let m = Matcher::new(&[builtin_filter(filter).unwrap()]).unwrap();
        let mut hits = Vec::new();
        match m.scan(line.as_bytes(), &mut hits) {
            Scan::Hit => Some(hits[0].target.to_string()),
            _ => None,
        }
    }

    fn must_match(filter: &str, cases: &[(&str, &str)]) {
        for (line, want) in cases {
            assert_eq!(
                found(filter, line).as_deref(),
                Some(*want),
                "{filter} must find {want} in: {line}"
            );
        }
    }

    fn must_not_match(filter: &str, lines: &[&str]) {
        for line in lines {
            assert_eq!(found(filter, line), None, "{filter} must not match: {line}");
        }
    }

    #[test]
    fn every_builtin_compiles() {
        for name in BUILTIN_FILTERS {
            let f = builtin_filter(name).unwrap();
            Matcher::new(&[f]).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(builtin_filter("nope").is_none());
        let all: Vec<_> = BUILTIN_FILTERS
            .iter()
            .map(|n| builtin_filter(n).unwrap())
            .collect();
        Matcher::new(&all).unwrap();
    }

    #[test]
    fn sshd_corpus() {
        must_match(
            "sshd",
            &[
                ("host sshd[1234]: Failed password for root from 203.0.113.5 port 52311 ssh2", "203.0.113.5"),
                ("sshd[1234]: Failed password for invalid user admin from 203.0.113.6 port 4242 ssh2", "203.0.113.6"),
                ("mx1 sshd-session[99]: Failed password for invalid user oracle from 2001:db8::7 port 4242 ssh2", "2001:db8::7"),
                ("h sshd[1]: Failed keyboard-interactive/pam for invalid user x from 198.51.100.1 port 22 ssh2", "198.51.100.1"),
                ("h sshd[1]: Invalid user support from 198.51.100.2 port 50000", "198.51.100.2"),
                ("h sshd[1]: Invalid user  from 198.51.100.3 port 50000", "198.51.100.3"),
                ("h sshd[1]: error: maximum authentication attempts exceeded for root from 198.51.100.4 port 2222 ssh2 [preauth]", "198.51.100.4"),
                ("h sshd[1]: User root from 198.51.100.5 not allowed because not listed in AllowUsers", "198.51.100.5"),
                ("h sshd[1]: User bob from 198.51.100.9 not allowed because none of user's groups are listed in AllowGroups", "198.51.100.9"),
                ("h sshd[1]: Failed password for root from ::ffff:198.51.100.6 port 22 ssh2", "198.51.100.6"),
                ("h sshd[1]: error: PAM: Authentication failure for root from 198.51.100.7", "198.51.100.7"),
            ],
        );
        must_not_match(
            "sshd",
            &[
                "h sshd[1]: Accepted publickey for root from 203.0.113.5 port 22 ssh2: ED25519 SHA256:abc",
                "h sshd[1]: Accepted password for root from 203.0.113.5 port 22 ssh2",
                "h sshd[1]: Failed publickey for root from 203.0.113.5 port 22 ssh2: RSA SHA256:abc",
                "h sshd[1]: Received disconnect from 203.0.113.5 port 22:11: Bye Bye [preauth]",
                "h sshd[1]: pam_unix(sshd:session): session opened for user root(uid=0) by (uid=0)",
                "h sshd[1]: Connection closed by authenticating user root 203.0.113.5 port 22 [preauth]",
                "h cron[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
                "h sshd[1]: Failed password for root from 999.0.113.5 port 22 ssh2",
                "h sshd[1]: Failed password for root from example.com port 22 ssh2",
            ],
        );
    }

    #[test]
    fn sshd_aggressive_adds_probes() {
        must_match(
            "sshd-aggressive",
            &[
                ("h sshd[1]: Connection closed by authenticating user root 203.0.113.5 port 22 [preauth]", "203.0.113.5"),
                ("h sshd[1]: Did not receive identification string from 203.0.113.8 port 61000", "203.0.113.8"),
                ("h sshd[1]: Unable to negotiate with 203.0.113.9 port 22: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1", "203.0.113.9"),
                ("h sshd[1]: Failed password for root from 203.0.113.1 port 22 ssh2", "203.0.113.1"),
            ],
        );
    }

    #[test]
    fn sshd_user_names_cannot_frame_another_address() {
        let forged = [
            ("h sshd[1]: Failed password for invalid user 6.6.6.6 from 1.2.3.4 port 22 ssh2", "1.2.3.4"),
            ("h sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2 from 1.2.3.4 port 22 ssh2", "1.2.3.4"),
            ("h sshd[1]: Failed password for invalid user x from 6.6.6.6 port 22 ssh2: RSA abc from 1.2.3.4 port 22 ssh2", "1.2.3.4"),
            ("h sshd[1]: Invalid user a from 6.6.6.6 port 1 from 1.2.3.4 port 22", "1.2.3.4"),
            ("h sshd[1]: User x from 6.6.6.6 not allowed because not listed in AllowUsers from 1.2.3.4 not allowed because not listed in AllowUsers", "1.2.3.4"),
            ("h sshd[1]: error: maximum authentication attempts exceeded for x from 6.6.6.6 port 22 ssh2 [preauth] from 1.2.3.4 port 22 ssh2 [preauth]", "1.2.3.4"),
        ];
        must_match("sshd", &forged);
        must_match("sshd-aggressive", &forged);
        must_match(
            "sshd-aggressive",
            &[("h sshd[1]: Connection closed by authenticating user x 6.6.6.6 port 22 [preauth] 1.2.3.4 port 22 [preauth]", "1.2.3.4")],
        );
    }

    #[test]
    fn postfix_corpus() {
        must_match(
            "postfix",
            &[
                ("mx postfix/smtpd[2020]: NOQUEUE: reject: RCPT from unknown[192.0.2.10]: 554 5.7.1 <a@b.example>: Relay access denied; from=<x@y> to=<a@b.example> proto=ESMTP helo=<z>", "192.0.2.10"),
                ("mx postfix/smtpd[2020]: NOQUEUE: reject: RCPT from mail.example.net[2001:db8::25]: 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown in local recipient table; from=<> to=<nobody@example.org> proto=ESMTP helo=<x>", "2001:db8::25"),
                ("mx postfix/smtpd[2020]: disconnect from unknown[192.0.2.11] ehlo=1 auth=0/1 quit=1 commands=2/3", "192.0.2.11"),
                ("mx postfix/submission/smtpd[2020]: disconnect from unknown[192.0.2.12] ehlo=2 starttls=1 auth=0/1 rset=1 commands=4/5", "192.0.2.12"),
                ("mx postfix/smtpd[2020]: warning: non-SMTP command from unknown[192.0.2.13]: GET / HTTP/1.1", "192.0.2.13"),
                ("mx postfix/smtpd[2020]: lost connection after AUTH from unknown[192.0.2.14]", "192.0.2.14"),
                ("mx postfix/smtpd[2020]: improper command pipelining after CONNECT from unknown[192.0.2.15]: QUIT\\r\\n", "192.0.2.15"),
                ("mx postfix-out/smtps/smtpd[2020]: disconnect from unknown[192.0.2.16]:465 ehlo=1 auth=0/1 commands=1/2", "192.0.2.16"),
            ],
        );
        must_not_match(
            "postfix",
            &[
                "mx postfix/smtpd[2020]: disconnect from mail.example.com[192.0.2.20] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6",
                "mx postfix/smtpd[2020]: connect from unknown[192.0.2.21]",
                "mx postfix/smtpd[2020]: NOQUEUE: reject: RCPT from unknown[192.0.2.22]: 450 4.7.1 <x>: Helo command rejected: Host not found",
                "mx postfix/smtp[2020]: NOQUEUE: reject: RCPT from unknown[192.0.2.23]: 554 5.7.1 <a@b>: Relay access denied",
                "mx postfix/qmgr[2020]: 4AB12: from=<a@b>, size=100, nrcpt=1 (queue active)",
            ],
        );
    }

    #[test]
    fn postfix_sasl_corpus() {
        must_match(
            "postfix-sasl",
            &[
                ("mx postfix/smtpd[3030]: warning: unknown[192.0.2.30]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", "192.0.2.30"),
                ("mx postfix/submission/smtpd[3030]: warning: unknown[2001:db8::30]: SASL PLAIN authentication failed: authentication failure", "2001:db8::30"),
                ("mx postfix/smtpd[3030]: warning: host.example[192.0.2.31]: SASL CRAM-MD5 authentication failed: authentication failure, sasl_username=bob", "192.0.2.31"),
            ],
        );
        must_not_match(
            "postfix-sasl",
            &[
                "mx postfix/smtpd[3030]: warning: unknown[192.0.2.32]: SASL LOGIN authentication aborted",
                "mx postfix/smtpd[3030]: warning: hostname x.example does not resolve to address 192.0.2.33",
            ],
        );
    }

    #[test]
    fn postfix_helo_and_sender_cannot_frame_another_address() {
        must_match(
            "postfix",
            &[
                ("mx postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 <a@b>: Relay access denied; from=<x@[6.6.6.6]> to=<a@b> proto=ESMTP helo=<unknown[6.6.6.6]: 554 5.7.1 >", "1.2.3.4"),
                ("mx postfix/smtpd[1]: warning: non-SMTP command from unknown[1.2.3.4]: from unknown[6.6.6.6]: GET", "1.2.3.4"),
            ],
        );
        must_match(
            "postfix-sasl",
            &[("mx postfix/smtpd[1]: warning: unknown[1.2.3.4]: SASL LOGIN authentication failed: warning: unknown[6.6.6.6]: SASL LOGIN authentication failed", "1.2.3.4")],
        );
    }

    #[test]
    fn dovecot_corpus() {
        must_match(
            "dovecot",
            &[
                ("mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<admin>, method=PLAIN, rip=192.0.2.40, lip=192.0.2.1, TLS, session=<AbCd+/12>", "192.0.2.40"),
                ("mail dovecot[77]: pop3-login: Aborted login (auth failed, 3 attempts in 15 secs): user=<bob>, method=LOGIN, rip=2001:db8::40, lip=2001:db8::1, session=<x>", "2001:db8::40"),
                ("mail dovecot: imap-login: Disconnected: Connection closed (auth failed, 1 attempts in 4 secs): user=<a>, method=PLAIN, rip=192.0.2.41, lip=192.0.2.1, TLS: Connection closed, session=<q>", "192.0.2.41"),
                ("mail dovecot: auth: pam(someone,192.0.2.42): unknown user", "192.0.2.42"),
                ("mail dovecot: auth-worker(1234): pam(bob,192.0.2.43,<sess1>): pam_authenticate() failed: Authentication failure (password mismatch?)", "192.0.2.43"),
                ("mail dovecot: auth: passwd-file(carol,192.0.2.44): unknown user (SHA1 of given password: 0123abcd)", "192.0.2.44"),
                ("mail dovecot: auth: sql(dave,192.0.2.45,<x>): Password mismatch", "192.0.2.45"),
            ],
        );
        must_not_match(
            "dovecot",
            &[
                "mail dovecot: imap-login: Login: user=<bob>, method=PLAIN, rip=192.0.2.50, lip=192.0.2.1, mpid=1, TLS, session=<x>",
                "mail dovecot: imap-login: Disconnected (no auth attempts in 0 secs): user=<>, rip=192.0.2.51, lip=192.0.2.1, session=<x>",
                "mail dovecot: auth: pam(bob,192.0.2.52): pam_authenticate() failed: 6.6.6.6",
            ],
        );
    }

    #[test]
    fn dovecot_user_names_cannot_frame_another_address() {
        must_match(
            "dovecot",
            &[
                ("mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<x>, method=PLAIN, rip=6.6.6.6, lip=192.0.2.1, TLS, session=<y>, method=PLAIN, rip=1.2.3.4, lip=192.0.2.1, TLS, session=<z>", "1.2.3.4"),
                ("mail dovecot: auth: pam(6.6.6.6,1.2.3.4): unknown user", "1.2.3.4"),
                ("mail dovecot: auth: pam(x,6.6.6.6): unknown user,1.2.3.4): unknown user", "1.2.3.4"),
                ("mail dovecot: auth: pam(x,6.6.6.6): Password mismatch,1.2.3.4,<s>): pam_authenticate() failed: Authentication failure (password mismatch?)", "1.2.3.4"),
            ],
        );
    }

    #[test]
    fn qpopper_corpus() {
        must_match(
            "qpopper",
            &[
                (
                    r#"pop qpopper[4321]: alice at client.example (192.0.2.60): -ERR [AUTH] Password supplied for "alice" is incorrect."#,
                    "192.0.2.60",
                ),
                (
                    r#"pop qpopper[4321]: bob smith at unknown (2001:db8::60): -ERR [AUTH] Password supplied for "bob smith" is incorrect."#,
                    "2001:db8::60",
                ),
                (
                    "pop inetd[12]: refused connection from 192.0.2.61, service qpopper (tcp)",
                    "192.0.2.61",
                ),
                (
                    "pop qpopper[12]: refused connection from 192.0.2.62, service qpopper (tcp)",
                    "192.0.2.62",
                ),
            ],
        );
        must_not_match(
            "qpopper",
            &[
                "pop qpopper[4321]: Stats: alice 0 0 0 0 client.example 192.0.2.63",
                r#"pop qpopper[4321]: alice at client.example (192.0.2.64): -ERR [AUTH] Password supplied for "bob" is incorrect."#,
            ],
        );
    }

    #[test]
    fn qpopper_user_names_cannot_frame_another_address() {
        // The user name appears twice; a name carrying a whole forged line
        // still leaves the daemon's address as the only consistent reading.
        let user = r#"x at h (6.6.6.6): -ERR [AUTH] Password supplied for "y" is incorrect."#;
        let line = format!(
            r#"pop qpopper[1]: {user} at client (1.2.3.4): -ERR [AUTH] Password supplied for "{user}" is incorrect."#
        );
        assert_eq!(found("qpopper", &line).as_deref(), Some("1.2.3.4"));
        let user = "6.6.6.6";
        let line = format!(
            r#"pop qpopper[1]: {user} at client (1.2.3.4): -ERR [AUTH] Password supplied for "{user}" is incorrect."#
        );
        assert_eq!(found("qpopper", &line).as_deref(), Some("1.2.3.4"));
    }

    /// Lines where another program (no host field before it) wrote the
    /// built-in's message, with and without a pid. Each must be refused,
    /// and the same message under the real program's tag must still match.
    fn another_program_cannot_pass_for(filter: &str, own: &str, message: &str, want: &str) {
        for other in ["cron[12]: ", "cron: ", "h cron[12]: ", "h cron: "] {
            let forged = format!("{other}{own}{message}");
            assert_eq!(
                found(filter, &forged),
                None,
                "{filter} took another program's message: {forged}"
            );
        }
        for real in [format!("h {own}{message}"), format!("{own}{message}")] {
            assert_eq!(found(filter, &real).as_deref(), Some(want), "{real}");
        }
    }

    #[test]
    fn sshd_message_inside_another_programs_line_is_not_sshds() {
        another_program_cannot_pass_for(
            "sshd",
            "sshd[1]: ",
            "Failed password for root from 6.6.6.6 port 22 ssh2",
            "6.6.6.6",
        );
    }

    #[test]
    fn sshd_aggressive_message_inside_another_programs_line_is_not_sshds() {
        another_program_cannot_pass_for(
            "sshd-aggressive",
            "sshd-session[1]: ",
            "Did not receive identification string from 6.6.6.6 port 61000",
            "6.6.6.6",
        );
    }

    #[test]
    fn postfix_message_inside_another_programs_line_is_not_postfixs() {
        another_program_cannot_pass_for(
            "postfix",
            "postfix/smtpd[1]: ",
            "warning: non-SMTP command from unknown[6.6.6.6]: GET / HTTP/1.1",
            "6.6.6.6",
        );
    }

    #[test]
    fn postfix_sasl_message_inside_another_programs_line_is_not_postfixs() {
        another_program_cannot_pass_for(
            "postfix-sasl",
            "postfix/submission/smtpd[1]: ",
            "warning: unknown[6.6.6.6]: SASL LOGIN authentication failed: UGFzc3dvcmQ6",
            "6.6.6.6",
        );
    }

    #[test]
    fn dovecot_message_inside_another_programs_line_is_not_dovecots() {
        another_program_cannot_pass_for(
            "dovecot",
            "dovecot: ",
            "auth: pam(x,6.6.6.6): unknown user",
            "6.6.6.6",
        );
    }

    #[test]
    fn qpopper_message_inside_another_programs_line_is_not_qpoppers() {
        another_program_cannot_pass_for(
            "qpopper",
            "qpopper[1]: ",
            r#"x at h (6.6.6.6): -ERR [AUTH] Password supplied for "x" is incorrect."#,
            "6.6.6.6",
        );
        another_program_cannot_pass_for(
            "qpopper",
            "inetd[1]: ",
            "refused connection from 6.6.6.6, service qpopper (tcp)",
            "6.6.6.6",
        );
    }

    #[test]
    fn an_address_in_the_host_field_is_still_a_host_field() {
        must_match(
            "sshd",
            &[
                (
                    "192.0.2.1 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
                    "203.0.113.5",
                ),
                (
                    "2001:db8::1 sshd[1]: Failed password for root from 203.0.113.5 port 22 ssh2",
                    "203.0.113.5",
                ),
            ],
        );
    }

    #[test]
    fn overlong_lines_are_skipped_not_cut() {
        let user = "u".repeat(crate::filter::MAX_LINE_LEN);
        let line =
            format!("h sshd[1]: Failed password for invalid user {user} from 1.2.3.4 port 22 ssh2");
        let m = Matcher::new(&[builtin_filter("sshd").unwrap()]).unwrap();
        assert_eq!(m.scan(line.as_bytes(), &mut Vec::new()), Scan::TooLong);
    }
}
