//! `${VAR}` and `${VAR:-default}` expansion of the configuration text.
//!
//! Upstream expands the environment into the raw file text before parsing it, so values such as
//! `maxEventAgeSeconds: ${AGE}` work; this does the same, with two differences: only the braced
//! forms are expanded (a bare `$name` is a Go-template variable and stays as written), and a
//! variable that is not set (and has no default) is an error naming it and where it is, instead
//! of silently becoming the empty string.

/// A `${VAR}` reference to a variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}, column {column}: environment variable `{name}` is not set (use ${{{name}:-default}} for a default)"
)]
pub struct UndefinedVariable {
    /// The variable's name.
    pub name: String,
    /// 1-based line of the reference in the original text.
    pub line: usize,
    /// 1-based column of the reference in the original text.
    pub column: usize,
}

/// A `${` that does not form a valid reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "line {line}, column {column}: malformed variable reference `{text}` (expected ${{NAME}} or ${{NAME:-default}})"
)]
pub struct MalformedReference {
    /// The start of the reference: `${` and the name-like characters after it (never more,
    /// so a secret on the same line is not repeated).
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Why the environment could not be expanded into the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A variable is not set.
    #[error(transparent)]
    Undefined(#[from] UndefinedVariable),
    /// A `${` is not a valid reference.
    #[error(transparent)]
    Malformed(#[from] MalformedReference),
    /// Defaults nested deeper than [`MAX_NESTING`].
    #[error("line {line}, column {column}: variable defaults nested deeper than {MAX_NESTING}")]
    TooDeep {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
}

/// Lines and columns of offsets that only grow (the scan's order): each call counts on from
/// the previous one, so reporting every one of many problems stays linear in the text.
struct LineIndex<'a> {
    text: &'a str,
    /// The offset reached, and its 1-based line and column there.
    at: usize,
    line: usize,
    column: usize,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
            column: 1,
        }
    }

    /// 1-based line and column of `offset` (not before the last one asked). Columns count
    /// characters, as editors show them.
    fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let offset = offset.max(self.at);
        for c in self.text[self.at..offset].chars() {
            if c == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.at = offset;
        (self.line, self.column)
    }
}

/// What an error quotes of a malformed reference: `${` and the name-like characters after it,
/// never the rest of the line (it may be a secret).
fn quote_reference(text: &str) -> String {
    let name: String = text[2..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect();
    format!("${{{name}")
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Expands `${VAR}` / `${VAR:-default}` in `text`, looking names up with `lookup`.
///
/// Every problem is reported, not only the first. `${VAR:-default}` uses the default when the
/// variable is unset or empty (as POSIX shells do).
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<ExpandError>> {
    expand_recording(text, lookup).map(|(text, _)| text)
}

/// [`expand`], and the values taken from the environment (defaults are not among them): what
/// the configuration holds that an operator chose to keep out of it — tokens, passwords,
/// keys. Receivers treat these as secrets where they appear in a credential's place.
///
/// A default may itself hold references (`${A:-${B:-x}}`, as shells allow), up to
/// [`MAX_NESTING`] deep; it is expanded only when it is used.
pub fn expand_recording(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), Vec<ExpandError>> {
    let mut scan = Scan {
        text,
        lookup: &lookup,
        out: String::with_capacity(text.len()),
        from_env: Vec::new(),
        lines: LineIndex::new(text),
        errors: Vec::new(),
        closing: match_braces(text),
    };
    scan.expand(0, text.len(), 0);
    if scan.errors.is_empty() {
        Ok((scan.out, scan.from_env))
    } else {
        Err(scan.errors)
    }
}

/// How deeply defaults may nest references.
pub const MAX_NESTING: usize = 8;

struct Scan<'t, 'l> {
    text: &'t str,
    lookup: &'l dyn Fn(&str) -> Option<String>,
    out: String,
    from_env: Vec<String>,
    lines: LineIndex<'t>,
    errors: Vec<ExpandError>,
    /// The `}` that closes the reference starting at each `${`, where one does on its line.
    closing: std::collections::HashMap<usize, usize>,
}

/// For each `${` of `text`, the `}` that closes it (nested references included), if one does
/// on the same line: one pass, with a stack of the references open on the line.
fn match_braces(text: &str) -> std::collections::HashMap<usize, usize> {
    let bytes = text.as_bytes();
    let mut closing = std::collections::HashMap::new();
    let mut open: Vec<usize> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => open.clear(),
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                open.push(i);
                i += 1;
            }
            b'}' => {
                if let Some(start) = open.pop() {
                    closing.insert(start, i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    closing
}

impl Scan<'_, '_> {
    fn malformed(&mut self, start: usize, quoted_end: usize) {
        let (line, column) = self.lines.line_col(start);
        self.errors.push(
            MalformedReference {
                text: quote_reference(&self.text[start..quoted_end]),
                line,
                column,
            }
            .into(),
        );
    }

    /// The `}` closing the reference whose body starts at `body_start`, if it closes on its
    /// line.
    fn closing_brace(&self, body_start: usize) -> Option<usize> {
        self.closing.get(&(body_start - 2)).copied()
    }

    /// Expands `text[from..to]` into `out`.
    fn expand(&mut self, from: usize, to: usize, depth: usize) {
        let mut rest = from;
        while let Some(found) = self.text[rest..to].find("${") {
            let start = rest + found;
            self.out.push_str(&self.text[rest..start]);
            let body_start = start + 2;
            let Some(close) = self.closing_brace(body_start).filter(|&c| c < to) else {
                self.malformed(start, to);
                self.out.push_str("${");
                rest = body_start;
                continue;
            };
            rest = close + 1;
            let body = &self.text[body_start..close];
            let (name, default) = match body.split_once(":-") {
                Some((n, _)) => (n, Some(body_start + n.len() + 2)),
                None => (body, None),
            };
            if !valid_name(name) {
                self.malformed(start, close + 1);
                continue;
            }
            let value = (self.lookup)(name);
            match (value, default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => {
                    self.out.push_str(&v);
                    if !v.is_empty() && !self.from_env.contains(&v) {
                        self.from_env.push(v);
                    }
                }
                (_, Some(default_start)) => {
                    if depth + 1 >= MAX_NESTING && self.text[default_start..close].contains("${") {
                        let (line, column) = self.lines.line_col(start);
                        self.errors.push(ExpandError::TooDeep { line, column });
                        continue;
                    }
                    self.expand(default_start, close, depth + 1);
                }
                // (Set but empty without a default was taken by the first arm.)
                (_, None) => {
                    let (line, column) = self.lines.line_col(start);
                    self.errors.push(
                        UndefinedVariable {
                            name: name.to_owned(),
                            line,
                            column,
                        }
                        .into(),
                    );
                }
            }
        }
        self.out.push_str(&self.text[rest..to]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "URL" => Some("http://x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_braced_forms_only() {
        let out = expand("a: ${URL}/p\nb: '{{ $n := 1 }}$n $URL'", env).unwrap();
        assert_eq!(out, "a: http://x/p\nb: '{{ $n := 1 }}$n $URL'");
    }

    #[test]
    fn defaults() {
        assert_eq!(
            expand("${NOPE:-d} ${EMPTY:-e} ${URL:-f}", env).unwrap(),
            "d e http://x"
        );
        assert_eq!(expand("${NOPE:-}", env).unwrap(), "");
    }

    #[test]
    fn reports_every_undefined_variable_with_position() {
        let errs = expand("a: 1\nb: ${ONE}\n  c: x ${TWO}", env).unwrap_err();
        assert_eq!(
            errs,
            vec![
                ExpandError::Undefined(UndefinedVariable {
                    name: "ONE".into(),
                    line: 2,
                    column: 4
                }),
                ExpandError::Undefined(UndefinedVariable {
                    name: "TWO".into(),
                    line: 3,
                    column: 8
                }),
            ]
        );
        assert!(errs[0].to_string().contains("`ONE` is not set"));
    }

    #[test]
    fn unclosed_references_on_one_long_line_are_reported_in_linear_time() {
        let text = "${".repeat(200_000);
        let started = std::time::Instant::now();
        let errs = expand(&text, env).unwrap_err();
        assert_eq!(errs.len(), 200_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn defaults_may_hold_references() {
        assert_eq!(expand("${NOPE:-${URL:-y}}/p", env).unwrap(), "http://x/p");
        assert_eq!(expand("${NOPE:-${NOPE2:-y}}", env).unwrap(), "y");
        assert_eq!(
            expand("${URL:-${UNSET}}", env).unwrap(),
            "http://x",
            "unused: not expanded"
        );
        assert_eq!(expand("${NOPE:-a}b}", env).unwrap(), "ab}");
        let errs = expand("${NOPE:-${UNSET}}", env).unwrap_err();
        assert!(
            matches!(&errs[0], ExpandError::Undefined(u) if u.name == "UNSET" && u.column == 9)
        );
        let deep = format!("{}x{}", "${NOPE:-".repeat(20), "}".repeat(20));
        let errs = expand(&deep, env).unwrap_err();
        assert!(
            matches!(errs[0], ExpandError::TooDeep { line: 1, .. }),
            "{errs:?}"
        );
        assert!(expand("${NOPE:-${A", env).is_err());
    }

    #[test]
    fn values_from_the_environment_are_recorded_defaults_are_not() {
        let (text, from_env) =
            expand_recording("a: ${URL}\nb: ${NOPE:-dflt}\nc: ${URL}${EMPTY:-}", env).unwrap();
        assert_eq!(text, "a: http://x\nb: dflt\nc: http://x");
        assert_eq!(from_env, ["http://x"]);
    }

    #[test]
    fn many_problems_are_reported_in_linear_time() {
        // 100,000 malformed references, on many lines and on one: each reported with its
        // place, without recounting the text from its start each time.
        for sep in ["\n", " "] {
            let text = vec!["${1BAD}"; 100_000].join(sep);
            let started = std::time::Instant::now();
            let errs = expand(&text, env).unwrap_err();
            assert_eq!(errs.len(), 100_000);
            let ExpandError::Malformed(last) = &errs[99_999] else {
                panic!("{:?}", errs[99_999]);
            };
            if sep == "\n" {
                assert_eq!((last.line, last.column), (100_000, 1));
            } else {
                assert_eq!((last.line, last.column), (1, 99_999 * 8 + 1));
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
    }

    #[test]
    fn malformed_references() {
        let errs = expand("a: ${unclosed\nb: ${1BAD}", env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            matches!(&errs[0], ExpandError::Malformed(m) if m.line == 1 && m.text == "${unclosed")
        );
        assert!(matches!(&errs[1], ExpandError::Malformed(m) if m.line == 2 && m.text == "${1BAD"));
        // The error never repeats the rest of the line: it may be a secret.
        let secret = expand("password: ab${c!d}s3cr3t-rest", env).unwrap_err();
        assert!(!secret[0].to_string().contains("s3cr3t"), "{}", secret[0]);
        assert!(!secret[0].to_string().contains("!d"), "{}", secret[0]);
        // Columns count characters.
        let wide = expand("é: ${NOPE}", env).unwrap_err();
        assert!(matches!(&wide[0], ExpandError::Undefined(u) if u.column == 4));
    }
}
