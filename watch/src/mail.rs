//! fail2ban's mail actions (`sendmail-whois-lines`, `mail-whois` and their
//! family) as banset sends them: the same message, to the same people,
//! through the same mail program, run by argv (never a shell).
//!
//! fail2ban builds these mails in shell (`printf ... | sendmail`), running
//! `whois` and `grep` over the jail's logs on the way. banset keeps the
//! message and drops the shell: the daemon runs `whois ADDRESS` by argv with
//! a timeout and a bounded output, and the matched log lines are the ones
//! the jail counted ([`MatchedLines`]), not a re-read of the logs. This
//! module is the pure part: which actions map, with which parameters, and
//! the argv and text of one mail.

use std::collections::{HashMap, VecDeque};

use banset_core::Target;

/// fail2ban's default `sendmail` mail command program.
pub const SENDMAIL: &str = "/usr/sbin/sendmail";
/// The `mail` program fail2ban's `mail-*` actions call by name.
pub const MAIL: &str = "/usr/bin/mail";
/// The longest whois output put in a mail, bytes; more is cut and said so.
pub const MAX_WHOIS: usize = 64 * 1024;
/// The longest log line kept for a mail, bytes; more is cut.
pub const MAX_LINE: usize = 1024;
/// fail2ban's `grepmax` default, and banset's cap on it: the most matched
/// lines one mail lists.
pub const MAX_LINES: usize = 1000;

/// One of fail2ban's mail actions, as a jail asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAction {
    /// The action's name (`sendmail-whois-lines`), for messages.
    pub action: String,
    /// The mail program's argv, with `<sender>` and `<dest>` still to fill.
    pub command: Vec<String>,
    /// `sendmail` style: the message carries its headers and goes to the
    /// program's stdin whole. Otherwise `mail` style: the subject and the
    /// recipients are arguments, the body is stdin.
    pub headers: bool,
    /// Recipients (`dest`).
    pub dest: String,
    /// Envelope and From address (`sender`).
    pub sender: String,
    /// The From name (`sendername`).
    pub sendername: String,
    /// The mail includes `whois ADDRESS`.
    pub whois: bool,
    /// The mail includes the address's matched log lines, at most this
    /// many (`grepmax`); 0 for none.
    pub lines: usize,
}

/// What one ban puts in a mail.
#[derive(Debug, Clone)]
pub struct BanFacts<'a> {
    /// The banned address.
    pub address: Target,
    /// The jail's name.
    pub jail: &'a str,
    /// Failures that made the ban.
    pub failures: u32,
    /// This host's name (fail2ban's `<fq-hostname>`).
    pub hostname: &'a str,
}

/// What `whois ADDRESS` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whois {
    /// Its output (at most [`MAX_WHOIS`] bytes).
    Output(String),
    /// Why there is none: not installed, timed out, failed.
    Missing(String),
}

impl MailAction {
    /// The mail action `act` with its parameters `opts` (`[dest=..., ...]`),
    /// `Ok(None)` when `act` is not a mail action. `Err` says why a mail
    /// action is not sent (a `mailcmd` banset cannot run without a shell,
    /// a header that would break the message).
    pub fn from_fail2ban(
        act: &str,
        opts: &[(String, String)],
    ) -> Result<Option<Self>, MailActionError> {
        let (headers, whois, lines) = match act {
            "sendmail" => (true, false, false),
            "sendmail-whois" => (true, true, false),
            "sendmail-whois-lines" | "sendmail-whois-matches" | "sendmail-whois-ipmatches" => {
                (true, true, true)
            }
            "mail" => (false, false, false),
            "mail-whois" => (false, true, false),
            "mail-whois-lines" => (false, true, true),
            a if a.starts_with("sendmail") || a.starts_with("mail-") => {
                return Err(MailActionError::NotSent(a.to_string()))
            }
            _ => return Ok(None),
        };
        // The later of repeated parameters wins, as in fail2ban.
        let opt = |k: &str| {
            opts.iter()
                .rev()
                .find(|(ok, _)| ok == k)
                .map(|(_, v)| v.trim().to_string())
        };
        let dest = opt("dest").unwrap_or_else(|| "root".into());
        let sender = opt("sender").unwrap_or_else(|| "fail2ban".into());
        let sendername = opt("sendername").unwrap_or_else(|| "Fail2Ban".into());
        for (key, value) in [
            ("dest", &dest),
            ("sender", &sender),
            ("sendername", &sendername),
        ] {
            // A line break would start a header (or the body) of its own.
            if value.is_empty() || value.chars().any(char::is_control) {
                return Err(MailActionError::NotOneLine {
                    act: act.to_string(),
                    key,
                    value: value.clone(),
                });
            }
        }
        let lines = if lines {
            match opt("grepmax") {
                None => MAX_LINES,
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| MailActionError::Grepmax {
                        act: act.to_string(),
                        value: n.clone(),
                    })?
                    .clamp(1, MAX_LINES),
            }
        } else {
            0
        };
        let command = match opt("mailcmd") {
            Some(text) => mail_command(&text).map_err(|problem| MailActionError::Mailcmd {
                act: act.to_string(),
                problem,
            })?,
            None if headers => vec![
                SENDMAIL.into(),
                "-f".into(),
                "<sender>".into(),
                "<dest>".into(),
            ],
            None => vec![MAIL.into(), "-s".into()],
        };
        Ok(Some(MailAction {
            action: act.to_string(),
            command,
            headers,
            dest,
            sender,
            sendername,
            whois,
            lines,
        }))
    }

    /// The argv to run and the text for its stdin, for one ban.
    pub fn render(
        &self,
        ban: &BanFacts<'_>,
        whois: Option<&Whois>,
        lines: &[String],
    ) -> (Vec<String>, String) {
        let host = |s: &str| {
            s.replace("<fq-hostname>", ban.hostname)
                .replace("<hostname>", ban.hostname)
        };
        let (dest, sender) = (host(&self.dest), host(&self.sender));
        let subject = format!(
            "[Fail2Ban] {}: banned {} from {}",
            ban.jail, ban.address, ban.hostname
        );
        let mut argv: Vec<String> = self
            .command
            .iter()
            .map(|w| w.replace("<sender>", &sender).replace("<dest>", &dest))
            .collect();
        let mut text = String::new();
        if self.headers {
            text.push_str(&format!(
                "Subject: {subject}\nFrom: {} <{sender}>\nTo: {dest}\n\n",
                self.sendername
            ));
        } else {
            argv.push(subject);
            argv.push(dest);
        }
        text.push_str(&format!(
            "Hi,\n\nThe IP {} has just been banned by Fail2Ban after\n{} attempts against {}.\n\n",
            ban.address, ban.failures, ban.jail
        ));
        if self.whois {
            text.push_str(&format!(
                "Here is more information about {} :\n\n",
                ban.address
            ));
            match whois {
                Some(Whois::Output(out)) => {
                    text.push_str(out);
                    if !out.ends_with('\n') {
                        text.push('\n');
                    }
                }
                Some(Whois::Missing(why)) => text.push_str(&format!("({why})\n")),
                None => text.push_str("(no whois output)\n"),
            }
        }
        if self.lines > 0 {
            text.push_str(&format!(
                "\nLines containing failures of {} (max {})\n",
                ban.address, self.lines
            ));
            let skip = lines.len().saturating_sub(self.lines);
            for line in &lines[skip..] {
                // Indented: no log line, whatever an attacker wrote into
                // it, can be a lone "." that ends sendmail's input early.
                text.push_str("  ");
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str("\nRegards,\n\nFail2Ban\n");
        (argv, text)
    }
}

/// Why a fail2ban mail action is not sent; each carries the action and
/// the value at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailActionError {
    /// A mail action banset does not send (`sendmail-buffered`).
    #[error("action {0} is not sent: banset sends sendmail, sendmail-whois, sendmail-whois-lines, mail, mail-whois and mail-whois-lines")]
    NotSent(String),
    /// `dest`, `sender` or `sendername` empty or with a line break, which
    /// would start a header of its own.
    #[error("action {act}: {key} = {value:?} must be one non-empty line; not sent")]
    NotOneLine {
        /// The action.
        act: String,
        /// The parameter.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// `grepmax` is not a number.
    #[error("action {act}: grepmax = {value:?} is not a number")]
    Grepmax {
        /// The action.
        act: String,
        /// The value as written.
        value: String,
    },
    /// A `mailcmd` banset cannot run.
    #[error("action {act}: {problem}")]
    Mailcmd {
        /// The action.
        act: String,
        /// What is wrong with the command.
        problem: MailcmdError,
    },
}

/// A `mailcmd` banset cannot run without a shell; each carries the
/// command as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MailcmdError {
    /// It holds the control characters banset uses to mark tags.
    #[error("mailcmd = {0:?}: control characters")]
    ControlCharacters(String),
    /// Pipes, `$`, backquotes, redirections, globs.
    #[error("mailcmd = {0:?} needs a shell, and banset runs commands without one; not sent")]
    NeedsShell(String),
    /// A quote left open.
    #[error("mailcmd = {0:?}: an unclosed quote")]
    UnclosedQuote(String),
    /// No words.
    #[error("mailcmd is empty")]
    Empty,
    /// A program by name, other than `sendmail` and `mail`.
    #[error("mailcmd = {0:?}: give the program's absolute path (banset searches no PATH)")]
    NotAbsolute(String),
}

/// fail2ban's `mailcmd`, split as a shell would split a plain command:
/// words, single or double quotes. Anything that needs a shell (pipes,
/// `$`, backquotes, redirections) is refused. `sendmail` and `mail` by
/// name are their usual absolute paths; another program must be absolute.
fn mail_command(text: &str) -> Result<Vec<String>, MailcmdError> {
    // The tags fail2ban fills stand out of the way of the metacharacters
    // while splitting, and come back in each word.
    const SENDER: char = '\u{1}';
    const DEST: char = '\u{2}';
    if text.contains([SENDER, DEST]) {
        return Err(MailcmdError::ControlCharacters(text.to_string()));
    }
    let marked = text.replace("<sender>", "\u{1}").replace("<dest>", "\u{2}");
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in marked.chars() {
        match (c, quote) {
            (q, Some(open)) if q == open => quote = None,
            (c, Some(_)) => cur.push(c),
            ('\'' | '"', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            ('|' | ';' | '&' | '$' | '`' | '<' | '>' | '(' | ')' | '\\' | '*' | '?', None) => {
                return Err(MailcmdError::NeedsShell(text.to_string()));
            }
            (c, None) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(MailcmdError::UnclosedQuote(text.to_string()));
    }
    if in_word {
        words.push(cur);
    }
    // `$` and backquotes expand inside double quotes too.
    if words.iter().any(|w| w.contains(['$', '`'])) {
        return Err(MailcmdError::NeedsShell(text.to_string()));
    }
    let mut words: Vec<String> = words
        .into_iter()
        .map(|w| w.replace(SENDER, "<sender>").replace(DEST, "<dest>"))
        .collect();
    match words.first().map(String::as_str) {
        None => return Err(MailcmdError::Empty),
        Some("sendmail") => words[0] = SENDMAIL.into(),
        Some("mail") => words[0] = MAIL.into(),
        Some(p) if !p.starts_with('/') => return Err(MailcmdError::NotAbsolute(text.to_string())),
        Some(_) => {}
    }
    Ok(words)
}

/// The last matched log lines of each address, for the `-lines` mails,
/// bounded in lines per address and in addresses: a jail keeps what its
/// mails could list, never what an attacker would like it to.
#[derive(Debug)]
pub struct MatchedLines {
    per_address: usize,
    max_addresses: usize,
    lines: HashMap<Target, VecDeque<(i64, String)>>,
}

impl MatchedLines {
    /// Keeps at most `per_address` lines of at most `max_addresses`.
    pub fn new(per_address: usize, max_addresses: usize) -> Self {
        MatchedLines {
            per_address: per_address.max(1),
            max_addresses: max_addresses.max(1),
            lines: HashMap::new(),
        }
    }

    /// Keeps `line`, seen at `at`, for `target` (cut to [`MAX_LINE`] bytes,
    /// control characters replaced).
    pub fn push(&mut self, target: Target, at: i64, line: &[u8]) {
        if !self.lines.contains_key(&target) && self.lines.len() >= self.max_addresses {
            // Full: the address whose newest line is oldest makes room.
            if let Some(oldest) = self
                .lines
                .iter()
                .min_by_key(|(_, v)| v.back().map_or(i64::MIN, |l| l.0))
                .map(|(t, _)| *t)
            {
                self.lines.remove(&oldest);
            }
        }
        let cut = &line[..line.len().min(MAX_LINE)];
        let text: String = String::from_utf8_lossy(cut)
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let v = self.lines.entry(target).or_default();
        if v.len() >= self.per_address {
            v.pop_front();
        }
        v.push_back((at, text));
    }

    /// Hands over (and forgets) the lines of `target`.
    pub fn take(&mut self, target: &Target) -> Vec<String> {
        self.lines
            .remove(target)
            .map(|v| v.into_iter().map(|(_, l)| l).collect())
            .unwrap_or_default()
    }

    /// Forgets lines older than `before`.
    pub fn prune(&mut self, before: i64) {
        self.lines.retain(|_, v| {
            v.retain(|(at, _)| *at >= before);
            !v.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sendmail_whois_lines_renders_fail2bans_mail() {
        let a = MailAction::from_fail2ban(
            "sendmail-whois-lines",
            &opts(&[
                ("sender", "root@<fq-hostname>"),
                ("dest", "admin@example.org"),
                ("grepmax", "2"),
            ]),
        )
        .unwrap()
        .unwrap();
        let ban = BanFacts {
            address: Target::parse("192.0.2.7").unwrap(),
            jail: "sshd",
            failures: 3,
            hostname: "mx.example.org",
        };
        let lines = ["a".to_string(), "b".into(), ".".into()];
        let (argv, text) = a.render(
            &ban,
            Some(&Whois::Missing("whois is not installed".into())),
            &lines,
        );
        assert_eq!(
            argv,
            [
                "/usr/sbin/sendmail",
                "-f",
                "root@mx.example.org",
                "admin@example.org"
            ]
        );
        assert!(text.starts_with("Subject: [Fail2Ban] sshd: banned 192.0.2.7 from mx.example.org\nFrom: Fail2Ban <root@mx.example.org>\nTo: admin@example.org\n\n"), "{text}");
        assert!(text.contains("(whois is not installed)\n"), "{text}");
        // The last two lines, indented: a lone "." cannot end the message.
        assert!(text.contains("(max 2)\n  b\n  .\n\nRegards"), "{text}");
    }

    #[test]
    fn mail_whois_puts_subject_and_dest_in_argv() {
        let a = MailAction::from_fail2ban("mail-whois", &opts(&[("dest", "a@x, b@y")]))
            .unwrap()
            .unwrap();
        let ban = BanFacts {
            address: Target::parse("2001:db8::1").unwrap(),
            jail: "j",
            failures: 1,
            hostname: "h",
        };
        let (argv, text) = a.render(&ban, Some(&Whois::Output("netname: X".into())), &[]);
        assert_eq!(
            argv,
            [
                "/usr/bin/mail",
                "-s",
                "[Fail2Ban] j: banned 2001:db8::1 from h",
                "a@x, b@y"
            ]
        );
        assert!(text.starts_with("Hi,"));
        assert!(text.contains("netname: X\n"));
        assert!(!text.contains("Lines containing"));
    }

    #[test]
    fn a_mailcmd_that_needs_a_shell_or_a_header_with_a_break_is_refused() {
        for (k, v) in [
            (
                "mailcmd",
                "/usr/sbin/sendmail -f <sender> <dest> | tee /tmp/x",
            ),
            ("mailcmd", "sendmail $(id)"),
            ("mailcmd", "msmtp -t"),
            ("dest", "root\nBcc: x@y"),
        ] {
            assert!(
                MailAction::from_fail2ban("sendmail", &opts(&[(k, v)])).is_err(),
                "{k}={v}"
            );
        }
        let a = MailAction::from_fail2ban(
            "sendmail",
            &opts(&[("mailcmd", "/opt/fake sendmail -f \"<sender>\" '<dest>'")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            a.command,
            ["/opt/fake", "sendmail", "-f", "<sender>", "<dest>"]
        );
        assert_eq!(MailAction::from_fail2ban("nftables", &[]), Ok(None));
        assert!(MailAction::from_fail2ban("sendmail-buffered", &[]).is_err());
    }

    #[test]
    fn matched_lines_are_bounded() {
        let mut m = MatchedLines::new(2, 2);
        let t = |s: &str| Target::parse(s).unwrap();
        for i in 0..5 {
            m.push(t("192.0.2.1"), i, format!("line {i}\x1b").as_bytes());
        }
        m.push(t("192.0.2.2"), 10, b"x");
        m.push(t("192.0.2.3"), 11, b"y");
        assert_eq!(
            m.take(&t("192.0.2.1")),
            Vec::<String>::new(),
            "the oldest address made room"
        );
        assert_eq!(m.take(&t("192.0.2.3")), ["y"]);
        m.prune(11);
        assert!(m.take(&t("192.0.2.2")).is_empty());
        let mut m = MatchedLines::new(2, 2);
        for i in 0..5 {
            m.push(t("192.0.2.1"), i, format!("line {i}\x1b").as_bytes());
        }
        assert_eq!(m.take(&t("192.0.2.1")), ["line 3?", "line 4?"]);
    }
}
