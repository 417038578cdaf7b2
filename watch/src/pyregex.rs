//! Python's regex dialect, as fail2ban's filters are written in it,
//! rewritten into the syntax of the `regex` and `fancy-regex` crates.
//!
//! The two dialects agree on almost everything a filter uses; the
//! differences that occur in practice:
//! - `\Z` (end of text) is `\z`;
//! - a `{` that does not start a repetition is a literal in Python and an
//!   error here; `{,n}` means `{0,n}`;
//! - inside a class, `[` and the pairs `&&`, `--`, `~~` are literals in
//!   Python and set operations here;
//! - `\<`, `\>` are literals in Python and word boundaries here; other
//!   escaped punctuation is a literal in both, but not every escape is
//!   accepted here, so non-meta punctuation loses its backslash;
//! - a conditional on a named group, `(?(name)yes|no)`, is written
//!   `(?(<name>)yes|no)` in fancy-regex.

/// Rewrites `py` (a Python regex) for the `regex`/`fancy-regex` crates.
pub fn translate(py: &str) -> String {
    let chars: Vec<char> = py.chars().collect();
    let mut out = String::with_capacity(py.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Position just after a class's `[` or `[^`: a `]` there is a literal.
    let mut class_start = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                out.push_str("\\\\");
                i += 1;
                continue;
            };
            i += 2;
            class_start = false;
            match n {
                'Z' if !in_class => out.push_str(r"\z"),
                '<' | '>' | '\'' | '"' | '/' | '%' | '!' | '@' | ',' | ';' | ':' | '=' | '_'
                | '`' => out.push(n),
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        if in_class {
            if c == ']' && !class_start {
                in_class = false;
                out.push(']');
            } else if c == ']' || c == '[' {
                out.push('\\');
                out.push(c);
            } else if matches!(c, '&' | '-' | '~') && chars.get(i + 1) == Some(&c) {
                out.push(c);
                out.push('\\');
                out.push(c);
                i += 1;
            } else {
                out.push(c);
            }
            class_start = false;
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                i += 1;
                continue;
            }
            '{' => {
                let rest: String = chars[i + 1..].iter().take(24).collect();
                match repetition(&rest) {
                    Some((text, used)) => {
                        out.push('{');
                        out.push_str(&text);
                        out.push('}');
                        i += 1 + used;
                    }
                    None => {
                        out.push_str(r"\{");
                        i += 1;
                    }
                }
                continue;
            }
            '}' => {
                out.push_str(r"\}");
                i += 1;
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'?') && chars.get(i + 2) == Some(&'(') => {
                // A conditional: `(?(name)` → `(?(<name>)`; `(?(1)` stays.
                let name: String = chars[i + 3..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '_')
                    .collect();
                let close = i + 3 + name.chars().count();
                if !name.is_empty()
                    && !name.chars().all(|c| c.is_ascii_digit())
                    && chars.get(close) == Some(&')')
                {
                    out.push_str("(?(<");
                    out.push_str(&name);
                    out.push_str(">)");
                    i = close + 1;
                    continue;
                }
                out.push('(');
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// A repetition's body (after `{`): `n}`, `n,}`, `n,m}`, `,m}`; returns the
/// body to write and the characters used (closing brace included).
fn repetition(rest: &str) -> Option<(String, usize)> {
    let end = rest.find('}')?;
    let body = &rest[..end];
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let text = match body.split_once(',') {
        None if digits(body) => body.to_string(),
        Some((a, b)) if digits(a) && (b.is_empty() || digits(b)) => body.to_string(),
        Some(("", b)) if digits(b) => format!("0,{b}"),
        _ => return None,
    };
    Some((text, end + 1))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn rewrites_what_differs() {
        assert_eq!(translate(r"a\Z"), r"a\z");
        assert_eq!(translate(r"x{2}y{1,}z{,3}"), r"x{2}y{1,}z{0,3}");
        assert_eq!(translate(r"\{a{b}"), r"\{a\{b\}");
        assert_eq!(translate(r"[[a-z]"), r"[\[a-z]");
        assert_eq!(translate(r"[]a]"), r"[\]a]");
        assert_eq!(translate(r"[^]a]"), r"[^\]a]");
        assert_eq!(translate(r"[a--b]"), r"[a-\-b]");
        assert_eq!(translate(r"\<x\> \' \/"), r"<x> ' /");
        assert_eq!(translate(r"\[\d+\]\."), r"\[\d+\]\.");
        assert_eq!(
            translate(r"(?P<c>a)?(?(c)b|d)(?(1)e)"),
            r"(?P<c>a)?(?(<c>)b|d)(?(1)e)"
        );
    }

    #[test]
    fn translated_regexes_compile() {
        for py in [r"a{", r"[[]", r"x\Z", r"[&&]", r"\<"] {
            let t = translate(py);
            assert!(regex::Regex::new(&t).is_ok(), "{py} -> {t}");
        }
        let t = translate(r"^(?P<u>\S+)?(?(u) x| y)$");
        let re = fancy_regex::Regex::new(&t).unwrap();
        assert!(re.is_match("abc x").unwrap());
        assert!(re.is_match(" y").unwrap());
        assert!(!re.is_match("abc y").unwrap());
    }
}
