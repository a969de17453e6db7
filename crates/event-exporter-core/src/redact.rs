//! What may be logged of text that comes from outside or holds secrets.
//!
//! A receiver's response body, an API server's error message or a proxy's echo of a request
//! can carry anything: the `Authorization` header it was sent, a Slack token, a webhook URL
//! whose path is the credential, a 200 KB HTML page, newlines that forge log lines. Before such
//! text reaches a log line or an error message it goes through [`excerpt`] (control characters
//! escaped, cut to a short prefix) and, where the configuration's secrets are known,
//! [`Secrets::scrub`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// The mask secrets are replaced with.
pub const MASK: &str = "***";

/// `text` fit for one log line: control characters (newlines included) escaped as `\n`,
/// `\u{1b}`…, and at most `max` characters kept (then `…`).
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 8));
    for (n, c) in text.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Displays a value an error quotes from a configuration or an event as its [`excerpt`] of
/// [`BRIEF`] characters: a 50 MB pattern or name is not repeated whole in a message.
#[derive(Debug, Clone, Copy)]
pub struct Brief<'a>(pub &'a str);

/// How much of a value an error quotes.
pub const BRIEF: usize = 100;

impl std::fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&excerpt(self.0, BRIEF))
    }
}

/// The secret values of one receiver (or of a whole configuration): tokens, passwords, secret
/// header values, credential URLs. [`Secrets::scrub`] masks every occurrence of any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<Box<str>>,
}

/// Secrets shorter than this are not looked for: masking every `a` of a text would make it
/// unreadable and protect nothing a guess would not find (a password of three characters is
/// no secret anyway).
const SHORTEST: usize = 4;

impl Secrets {
    /// No secrets.
    pub const fn new() -> Self {
        Self { values: Vec::new() }
    }

    /// Adds `value`; for an `Authorization`-style value (`Bearer xyz`, `Basic …`, `token xyz`)
    /// the credential after the scheme too, since an echo may quote it alone.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        self.insert(value);
        if let Some((scheme, credential)) = value.split_once(' ')
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            self.insert(credential.trim());
        }
    }

    fn insert(&mut self, value: &str) {
        if value.chars().count() < SHORTEST || self.values.iter().any(|v| &**v == value) {
            return;
        }
        let at = self
            .values
            .iter()
            .position(|v| v.len() < value.len())
            .unwrap_or(self.values.len());
        self.values.insert(at, value.into());
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn scrub<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for v in &self.values {
            if out.contains(&**v) {
                out = Cow::Owned(out.replace(&**v, MASK));
            }
        }
        out
    }

    /// [`excerpt`] of [`scrub`](Self::scrub)bed `text`.
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        excerpt(&self.scrub(text), max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(
            excerpt("a\nb\r\tc\u{1b}[31m", 100),
            "a\\nb\\r\\tc\\u{1b}[31m"
        );
        assert_eq!(excerpt("héllo world", 5), "héllo…");
        assert_eq!(excerpt("", 5), "");
    }

    #[test]
    fn secrets_are_masked_whole_and_in_their_parts() {
        let mut s = Secrets::new();
        s.add("Bearer xoxb-123-secret");
        s.add("pw");
        s.add("https://hooks.slack.com/services/T0/B0/XYZ");
        assert!(!s.is_empty());
        let echo = "Authorization: Bearer xoxb-123-secret\n{\"token\":\"xoxb-123-secret\"} \
                    url=https://hooks.slack.com/services/T0/B0/XYZ pw";
        let clean = s.scrub(echo);
        assert_eq!(
            clean, "Authorization: ***\n{\"token\":\"***\"} url=*** pw",
            "a two-letter secret is not looked for"
        );
        assert_eq!(s.excerpt(echo, 20), "Authorization: ***\\n{…");
        assert!(matches!(s.scrub("nothing here"), Cow::Borrowed(_)));
    }
}
