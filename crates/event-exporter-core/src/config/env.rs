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
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    // Columns count characters, as editors show them.
    (line, before[line_start..].chars().count() + 1)
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
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("${") {
        let start = rest + found;
        out.push_str(&text[rest..start]);
        let body_start = start + 2;
        let close = text[body_start..]
            .find(['}', '\n'])
            .map(|i| body_start + i)
            .filter(|&i| text.as_bytes()[i] == b'}');
        let Some(close) = close else {
            let (line, column) = line_col(text, start);
            errors.push(
                MalformedReference {
                    text: quote_reference(&text[start..]),
                    line,
                    column,
                }
                .into(),
            );
            out.push_str("${");
            rest = body_start;
            continue;
        };
        let body = &text[body_start..close];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if !valid_name(name) {
            let (line, column) = line_col(text, start);
            errors.push(
                MalformedReference {
                    text: quote_reference(&text[start..=close]),
                    line,
                    column,
                }
                .into(),
            );
        } else {
            match (lookup(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    let (line, column) = line_col(text, start);
                    errors.push(
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
        rest = close + 1;
    }
    out.push_str(&text[rest..]);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
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
