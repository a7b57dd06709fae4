//! Wildcard patterns (`*` and `?`) and policy-variable templates (`${aws:username}`).
//!
//! IAM's wildcards are simple: `*` matches any run of characters (including none, and including
//! `/` and `:`), `?` matches exactly one character. We write the matcher ourselves (about forty
//! lines) rather than pull in a glob crate because we need three things glob crates do not give
//! together: optional case folding (action names), literal `*`/`?` produced by the `${*}`/`${?}`
//! variables, and literal text substituted from request values that must never act as a wildcard.

use std::borrow::Cow;

/// One token of a compiled wildcard pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    /// A literal character.
    Lit(char),
    /// `*`: any run of characters, possibly empty.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Compiles a plain wildcard pattern (no variables) into tokens.
pub(crate) fn tokens(pattern: &str) -> Vec<Token> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Token::Star,
            '?' => Token::One,
            c => Token::Lit(c),
        })
        .collect()
}

/// Matches `text` against `pattern`, folding case when `fold` is set.
///
/// The classic linear-time algorithm: on a mismatch, backtrack to the last `*` and let it swallow
/// one more character.
pub(crate) fn matches(pattern: &[Token], text: &str, fold: bool) -> bool {
    // `t` is a byte offset into `text`, always on a character boundary.
    let (mut p, mut t) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(c) = text[t..].chars().next() {
        match pattern.get(p) {
            Some(Token::Star) => {
                backtrack = Some((p, t));
                p += 1;
                continue;
            }
            Some(Token::One) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            Some(Token::Lit(l)) if chars_eq(*l, c, fold) => {
                p += 1;
                t += c.len_utf8();
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((star_p, star_t)) => {
                // The star takes one more character.
                let skipped = text[star_t..].chars().next().map_or(1, char::len_utf8);
                p = star_p + 1;
                t = star_t + skipped;
                backtrack = Some((star_p, t));
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|tok| *tok == Token::Star)
}

fn chars_eq(a: char, b: char, fold: bool) -> bool {
    a == b || (fold && a.to_lowercase().eq(b.to_lowercase()))
}

/// Whether a pattern string contains a wildcard.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    pattern.contains('*') || pattern.contains('?')
}

/// One piece of a template: literal text, a wildcard, or a policy variable.
#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Star,
    One,
    Var { key: String, default: Option<String> },
}

/// A string from a policy (a `Resource` entry or a condition value) that may hold wildcards and
/// policy variables. Variables are only recognised in policies with `Version` `2012-10-17`
/// (IAM user guide, "IAM policy elements: Variables and tags"); in `2008-10-17` policies the text
/// is taken literally.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    raw: String,
    parts: Vec<Part>,
    /// The tokens of a template without variables, made once (most policies have none).
    fixed: Option<Vec<Token>>,
}

impl Template {
    /// Parses `raw`, recognising `${...}` variables when `variables` is set.
    pub(crate) fn parse(raw: &str, variables: bool) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            if variables
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                let inner = &rest[2..end];
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text)));
                }
                parts.push(parse_variable(inner));
                rest = &rest[end + 1..];
                continue;
            }
            match c {
                '*' | '?' => {
                    if !text.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    parts.push(if c == '*' { Part::Star } else { Part::One });
                }
                c => text.push(c),
            }
            rest = &rest[c.len_utf8()..];
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        let mut template = Template {
            raw: raw.to_owned(),
            parts,
            fixed: None,
        };
        if !template.has_variables() {
            template.fixed = template.resolve_parts(&|_| None).map(Cow::into_owned);
        }
        template
    }

    /// The text as written in the policy.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the template uses any policy variable.
    pub fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var { .. }))
    }

    /// Resolves variables through `lookup` and returns wildcard tokens. Substituted values are
    /// literal text. Returns `None` when a variable has no value (and no default) or more than
    /// one value: IAM then treats the entry as not matching.
    pub(crate) fn resolve(&self, lookup: &dyn Fn(&str) -> Option<Vec<String>>) -> Option<Cow<'_, [Token]>> {
        match &self.fixed {
            Some(tokens) => Some(Cow::Borrowed(tokens)),
            None => self.resolve_parts(lookup),
        }
    }

    fn resolve_parts(&self, lookup: &dyn Fn(&str) -> Option<Vec<String>>) -> Option<Cow<'_, [Token]>> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.extend(t.chars().map(Token::Lit)),
                Part::Star => out.push(Token::Star),
                Part::One => out.push(Token::One),
                Part::Var { key, default } => {
                    let value = match lookup(key) {
                        Some(values) if values.len() == 1 => values.into_iter().next(),
                        Some(_) => None,
                        None => default.clone(),
                    }?;
                    out.extend(value.chars().map(Token::Lit));
                }
            }
        }
        Some(Cow::Owned(out))
    }

    /// Resolves variables and returns plain text in which `*` and `?` are literal (for the
    /// equality operators, where wildcards have no meaning).
    pub(crate) fn resolve_literal(&self, lookup: &dyn Fn(&str) -> Option<Vec<String>>) -> Option<String> {
        Some(
            self.resolve(lookup)?
                .iter()
                .map(|t| match t {
                    Token::Lit(c) => *c,
                    Token::Star => '*',
                    Token::One => '?',
                })
                .collect(),
        )
    }
}

/// Parses the inside of `${...}`: the special `*`, `?`, `$` escapes (literal text, never
/// wildcards), or a key with an optional
/// default value `${key, 'default'}`.
fn parse_variable(inner: &str) -> Part {
    match inner.trim() {
        "*" => return Part::Text("*".to_owned()),
        "?" => return Part::Text("?".to_owned()),
        "$" => return Part::Text("$".to_owned()),
        _ => {}
    }
    let (key, default) = match inner.split_once(',') {
        Some((key, default)) => {
            let d = default.trim();
            let d = d.strip_prefix('\'').and_then(|d| d.strip_suffix('\'')).unwrap_or(d);
            (key.trim(), Some(d.to_owned()))
        }
        None => (inner.trim(), None),
    };
    Part::Var {
        key: key.to_ascii_lowercase(),
        default,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn glob_basics() {
        let m = |p: &str, t: &str| matches(&tokens(p), t, false);
        assert!(m("*", ""));
        assert!(m("*", "anything/at:all"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(!m("abc", "abcd"));
        assert!(m("*b*b*", "abababab"));
        assert!(!m("a*b", "aXbX"));
        assert!(!m("ABC", "abc"));
        assert!(matches(&tokens("ABC"), "abc", true));
        assert!(m("", ""));
        assert!(!m("", "x"));
    }

    #[test]
    fn template_variables_are_literal() {
        let lookup = |k: &str| match k {
            "aws:username" => Some(vec!["bo*b".to_owned()]),
            _ => None,
        };
        let t = Template::parse("home/${aws:username}/*", true);
        let toks = t.resolve(&lookup).unwrap_or_default();
        assert!(matches(&toks, "home/bo*b/x", false));
        assert!(!matches(&toks, "home/boXb/x", false));
        let t = Template::parse("${*}${?}${$}", true);
        assert_eq!(t.resolve_literal(&lookup).as_deref(), Some("*?$"));
        assert!(Template::parse("${aws:missing}", true).resolve(&lookup).is_none());
        let t = Template::parse("${aws:missing, 'dflt'}", true);
        assert_eq!(t.resolve_literal(&lookup).as_deref(), Some("dflt"));
        let t = Template::parse("${aws:username}", false);
        assert_eq!(t.resolve_literal(&lookup).as_deref(), Some("${aws:username}"));
    }
}
