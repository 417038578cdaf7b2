//! fail2ban's stock failregexes with conditionals, rewritten as the plain
//! patterns the backtracking engine would try one after the other.
//!
//! sshd's `Failed ...` failregexes (`cmnfailre`, and
//! `cmnfailre-failed-pub-invalid`) choose their tail by conditionals on
//! which groups took part, and read a user name and the tail as "any text
//! without ` from ` at any of its places" (`(?:(?! from ).)*`). Only the
//! backtracking engine runs them: about 80k instructions a failure line
//! (issue 16), a quarter of sshd.conf's cost on a realistic log.
//!
//! A backtracking search of `^A(?P<i>B)?(?:(?P<u>C)|(?(i)D|E))F(?(u)G|H)`
//! tries, in this order: `i` taken with the `C` branch (so `G`), `i` with
//! `D` (so `H`), `i` skipped with `C` (`G`), `i` skipped with `E` (`H`).
//! Each of those four is a pattern without conditionals, and the first of
//! them that matches is the match the backtracking engine reports, with
//! the same groups: within one case the choices left are those of the
//! original pattern, in the same order, and the `regex` crate reports the
//! match a backtracking engine would (leftmost-first). A choice made
//! before the case split (`(?:publickey|\S+)` before `for`) reads the same
//! text in every case: `\S+` ends at the space before `for` either way.
//!
//! The look-aheads: `(?:(?! from ).)*$` is the rest of the line without
//! ` from ` in it, [`NO_FROM_TAIL`]. `(?:(?! from ).)*?` before ` from
//! <HOST>` is a user name `u` at whose places ` from ` does not start,
//! looking past `u` into the ` from ` that follows: `u` holds no ` from `
//! and does not end in ` from` (the one overlap of ` from ` with itself is
//! its space), [`NO_FROM_USER`]. Both are exact: each is the language of
//! the automaton that looks for ` from `, less its final state. They have
//! one way to match a given text, and the user name is the text up to the
//! first ` from `, so no preference order is left to differ.
//!
//! The cases run on the same text as the backtracking engine (the line as
//! Unicode, invalid bytes replaced: [`crate::compiled::FancyText`]) with the
//! `regex` crate's Unicode classes, which fancy-regex uses too, so `\S`,
//! `\d` and `.` read every character the same. Only these exact texts are
//! rewritten; a filter that changed them runs on the backtracking engine.

/// The rest of a line without ` from ` in it (see the module docs).
const NO_FROM_TAIL: &str = r"(?:[^ \n]| (?:(?:f|fr|fro)? )*(?:[^ f\n]|f[^ r\n]|fr[^ o\n]|fro[^ m\n]|from[^ \n]))*(?: (?:(?:f|fr|fro)? )*(?:f|fr|fro|from)?)?$";

/// A user name that ` from ` follows and that holds no ` from `, nor ends
/// in ` from` (see the module docs).
const NO_FROM_USER: &str = r"(?:[^ \n]| (?:(?:f|fr|fro)? )*(?:[^ f\n]|f[^ r\n]|fr[^ o\n]|fro[^ m\n]|from[^ \n]))*(?: (?:(?:f|fr|fro)? )*(?:f|fr|fro)?)?";

/// A stock failregex (as banset stores it, before its tags are expanded)
/// and its cases, in the order the backtracking engine tries them; `{U}`
/// and `{T}` stand for [`NO_FROM_USER`] and [`NO_FROM_TAIL`].
struct Known {
    stock: &'static str,
    cases: &'static [&'static str],
}

const KNOWN: &[Known] = &[
    // sshd.conf `cmnfailre-failed-pub-invalid`.
    Known {
        stock: r"^Failed publickey for invalid user <F-USER>(?P<cond_user>\S+)|(?:(?! from ).)*?</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(<cond_user>): |(?:(?:(?! from ).)*)$)",
        cases: &[
            r"^Failed publickey for invalid user <F-USER>(?P<cond_user>\S+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?: ",
            r"^Failed publickey for invalid user <F-USER>{U}</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?{T}",
        ],
    },
    // sshd.conf `cmnfailre`'s `Failed <cmnfailed> for ...`, with
    // `publickey = nofail` (the default) and `any`.
    Known {
        stock: r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(<cond_inv>)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(<cond_user>): |(?:(?:(?! from ).)*)$)",
        cases: &[
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )<F-USER>(?P<cond_user>\S+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?: ",
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for (?P<cond_inv>invalid user )<F-USER>{U}</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?{T}",
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for <F-USER>(?P<cond_user>\S+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?: ",
            r"^Failed (?:<F-NOFAIL>publickey</F-NOFAIL>|\S+) for <F-USER>[^:]+</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?{T}",
        ],
    },
    Known {
        stock: r"^Failed \S+ for (?P<cond_inv>invalid user )?<F-USER>(?P<cond_user>\S+)|(?(<cond_inv>)(?:(?! from ).)*?|[^:]+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?(?(<cond_user>): |(?:(?:(?! from ).)*)$)",
        cases: &[
            r"^Failed \S+ for (?P<cond_inv>invalid user )<F-USER>(?P<cond_user>\S+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?: ",
            r"^Failed \S+ for (?P<cond_inv>invalid user )<F-USER>{U}</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?{T}",
            r"^Failed \S+ for <F-USER>(?P<cond_user>\S+)</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?: ",
            r"^Failed \S+ for <F-USER>[^:]+</F-USER> from <HOST>(?: (?:port \d+|on \S+)){0,2}(?: ssh\d*)?{T}",
        ],
    },
];

/// The stock texts banset rewrites (tests compare their cases with them).
#[cfg(test)]
pub(crate) const KNOWN_STOCK: [&str; 3] = [KNOWN[0].stock, KNOWN[1].stock, KNOWN[2].stock];

/// The cases of a stock failregex, in the backtracking engine's order, if
/// `pattern` is one banset knows (see the module docs).
pub(crate) fn cases(pattern: &str) -> Option<Vec<String>> {
    let known = KNOWN.iter().find(|k| k.stock == pattern)?;
    Some(
        known
            .cases
            .iter()
            .map(|c| c.replace("{U}", NO_FROM_USER).replace("{T}", NO_FROM_TAIL))
            .collect(),
    )
}

/// One case, compiled for Unicode text (as the backtracking engine reads
/// a line), with the same limits as the filters' other patterns.
pub(crate) fn compile(case: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(case)
        .size_limit(crate::filter::REGEX_SIZE_LIMIT)
        .dfa_size_limit(crate::filter::REGEX_SIZE_LIMIT)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two look-ahead forms against their definitions, on every text
    /// of up to six characters over the letters that matter.
    #[test]
    fn the_no_from_patterns_are_their_look_ahead_forms() {
        let tail = regex::Regex::new(&format!("^{NO_FROM_TAIL}")).unwrap();
        let user = regex::Regex::new(&format!("^(?:{NO_FROM_USER})$")).unwrap();
        let alphabet = [' ', 'f', 'r', 'o', 'm', 'x', 'é'];
        let mut texts = vec![String::new()];
        let mut all = vec![String::new()];
        for _ in 0..6 {
            texts = texts
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            all.extend(texts.iter().cloned());
        }
        all.push("a from".into());
        all.push("x from from x".into());
        for t in &all {
            assert_eq!(tail.is_match(t), !t.contains(" from "), "tail {t:?}");
            let with_from = format!("{t} from ");
            let u = !t
                .char_indices()
                .any(|(at, _)| with_from[at..].starts_with(" from "));
            assert_eq!(user.is_match(t), u, "user {t:?}");
        }
    }
}
