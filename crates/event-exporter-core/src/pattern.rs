//! Rule patterns, compiled once into the cheapest strategy that gives upstream's answer.
//!
//! A pattern is an unanchored RE2-style regular expression, as upstream's
//! `regexp.MatchString(pattern, value)`. At compile time its syntax tree picks a strategy:
//! a plain literal is a substring search, `^lit$` an equality, `^lit` / `lit$` a prefix or
//! suffix test; anything else runs the regex engine. A pattern that is not a valid regular
//! expression (`*test*`, `*`, as the upstream README and the seed app write) is matched as an
//! anchored glob, and the caller gets a warning saying so; upstream silently never matches it.
//!
//! Matching borrows the input and never allocates.

use std::fmt;

use crate::redact::Brief;

use globset::{GlobBuilder, GlobMatcher};
use memchr::memmem;
use regex::Regex;
use regex_syntax::hir::{Hir, HirKind, Look};

/// The strategy a pattern was compiled to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Matches every value (an empty regular expression).
    Always,
    /// A literal found anywhere in the value.
    Contains,
    /// `^literal$`.
    Equals,
    /// `^literal`.
    Prefix,
    /// `literal$`.
    Suffix,
    /// The regular expression engine.
    Regex,
    /// Not a valid regular expression: an anchored glob (globs made of `*` and literal text
    /// use the literal strategies instead).
    Glob,
}

#[derive(Clone)]
enum Imp {
    Always,
    Contains(memmem::Finder<'static>),
    Equals(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    Regex(Regex),
    Glob(GlobMatcher),
}

/// A compiled pattern.
#[derive(Clone)]
pub struct Pattern {
    source: Box<str>,
    imp: Imp,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("source", &self.source)
            .field("strategy", &self.strategy())
            .finish()
    }
}

/// A pattern that is neither a valid regular expression nor a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{}` is neither a valid regular expression ({}) nor a valid glob ({})",
    Brief(pattern),
    Brief(regex_error),
    Brief(glob_error)
)]
pub struct PatternError {
    /// The pattern as written.
    pub pattern: String,
    /// Why the regex engine refused it.
    pub regex_error: String,
    /// Why the glob compiler refused it.
    pub glob_error: String,
}

/// A pattern compiled as a glob because it is not a valid regular expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobFallback {
    /// Why the regex engine refused it (one line).
    pub regex_error: String,
}

fn first_line(s: &str) -> String {
    // regex errors are multi-line with a caret diagram; keep the last line, which says what.
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

fn literal_str(hir: &Hir) -> Option<&str> {
    match hir.kind() {
        HirKind::Literal(lit) => std::str::from_utf8(&lit.0).ok(),
        HirKind::Empty => Some(""),
        _ => None,
    }
}

/// What the syntax tree says about a pattern: anchors around one literal, or something else.
fn classify(hir: &Hir) -> Option<(bool, &str, bool)> {
    if let Some(lit) = literal_str(hir) {
        return Some((false, lit, false));
    }
    let HirKind::Concat(items) = hir.kind() else {
        return None;
    };
    let mut items: &[Hir] = items;
    let start = matches!(
        items.first().map(Hir::kind),
        Some(HirKind::Look(Look::Start))
    );
    if start {
        items = &items[1..];
    }
    let end = matches!(items.last().map(Hir::kind), Some(HirKind::Look(Look::End)));
    if end {
        items = &items[..items.len() - 1];
    }
    match items {
        [] => Some((start, "", end)),
        [one] => literal_str(one).map(|lit| (start, lit, end)),
        _ => None,
    }
}

/// Go's RE2 syntax in the regex crate's dialect: the pattern to compile, or the reason Go
/// would refuse it.
///
/// The two dialects mostly agree; where they differ, Go's meaning is kept:
/// - `\Q…\E` quotes literally (the regex crate has no such syntax);
/// - `\<` and `\>` are the literal `<` and `>` (not word-boundary assertions);
/// - `\d`, `\w`, `\s` and `\b` (and their negations) are ASCII-only;
/// - `&&` and `~~` inside a class are literal characters (not set operations);
/// - what Go refuses stays refused, so it falls back to a glob as any invalid pattern does:
///   nested repetition (`a**`), repeat counts over 1000, the flags `x`, `u` and `R`, `--`
///   inside a class, and the regex crate's own assertions (`\b{start}`, …).
fn go_to_rust(source: &str) -> Result<String, regex::Error> {
    use regex_syntax::ast::{
        Assertion, AssertionKind, Ast, ClassPerl, ClassPerlKind, ClassSetBinaryOp,
        ClassSetBinaryOpKind, ClassSetItem, Flag, Flags, FlagsItemKind, GroupKind, RepetitionKind,
        RepetitionRange, Span, Visitor, visit,
    };

    #[derive(Default)]
    struct Edits {
        edits: Vec<(usize, usize, String)>,
        refused: Option<&'static str>,
    }

    fn perl(class: &ClassPerl) -> &'static str {
        match (&class.kind, class.negated) {
            (ClassPerlKind::Digit, false) => "[0-9]",
            (ClassPerlKind::Digit, true) => "[^0-9]",
            (ClassPerlKind::Word, false) => "[0-9A-Za-z_]",
            (ClassPerlKind::Word, true) => "[^0-9A-Za-z_]",
            (ClassPerlKind::Space, false) => r"[\t\n\f\r ]",
            (ClassPerlKind::Space, true) => r"[^\t\n\f\r ]",
        }
    }

    impl Edits {
        fn replace(&mut self, span: &Span, with: &str) {
            self.edits
                .push((span.start.offset, span.end.offset, with.to_owned()));
        }
        fn assertion(&mut self, a: &Assertion) {
            match a.kind {
                AssertionKind::WordBoundaryStartAngle => self.replace(&a.span, "<"),
                AssertionKind::WordBoundaryEndAngle => self.replace(&a.span, ">"),
                AssertionKind::WordBoundary => self.replace(&a.span, r"(?-u:\b)"),
                AssertionKind::NotWordBoundary => self.replace(&a.span, r"(?-u:\B)"),
                AssertionKind::StartLine
                | AssertionKind::EndLine
                | AssertionKind::StartText
                | AssertionKind::EndText => {}
                _ => self.refused = Some("invalid escape sequence"),
            }
        }
        fn flags(&mut self, flags: &Flags) {
            for item in &flags.items {
                if let FlagsItemKind::Flag(Flag::IgnoreWhitespace | Flag::Unicode | Flag::CRLF) =
                    item.kind
                {
                    self.refused = Some("invalid or unsupported Perl syntax");
                }
            }
        }
        fn repetition_range(&mut self, range: &RepetitionRange) {
            let max = match *range {
                RepetitionRange::Exactly(n) | RepetitionRange::AtLeast(n) => n,
                RepetitionRange::Bounded(a, b) => a.max(b),
            };
            if max > 1000 {
                self.refused = Some("invalid repeat count");
            }
        }
    }

    impl Visitor for &mut Edits {
        type Output = ();
        type Err = ();
        fn finish(self) -> Result<(), ()> {
            Ok(())
        }
        fn visit_pre(&mut self, ast: &Ast) -> Result<(), ()> {
            match ast {
                Ast::Repetition(rep) => {
                    if matches!(*rep.ast, Ast::Repetition(_)) {
                        self.refused = Some("invalid nested repetition operator");
                    }
                    if let RepetitionKind::Range(range) = &rep.op.kind {
                        self.repetition_range(range);
                    }
                }
                Ast::Flags(set) => self.flags(&set.flags),
                Ast::Group(group) => {
                    if let GroupKind::NonCapturing(flags) = &group.kind {
                        self.flags(flags);
                    }
                }
                Ast::Assertion(a) => self.assertion(a),
                Ast::ClassPerl(class) => self.replace(&class.span, perl(class)),
                _ => {}
            }
            Ok(())
        }
        fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), ()> {
            if let ClassSetItem::Perl(class) = item {
                self.replace(&class.span, perl(class));
            }
            Ok(())
        }
        fn visit_class_set_binary_op_pre(&mut self, op: &ClassSetBinaryOp) -> Result<(), ()> {
            let (start, end) = (op.lhs.span().end.offset, op.rhs.span().start.offset);
            match op.kind {
                ClassSetBinaryOpKind::Intersection => self.edits.push((start, end, r"\&\&".into())),
                ClassSetBinaryOpKind::SymmetricDifference => {
                    self.edits.push((start, end, r"\~\~".into()));
                }
                ClassSetBinaryOpKind::Difference => {
                    self.refused = Some("invalid character class range");
                }
            }
            Ok(())
        }
    }

    let expanded = expand_quotes(source);
    let Ok(ast) = regex_syntax::ast::parse::Parser::new().parse(&expanded) else {
        // Invalid in the regex crate's dialect too: let it say why.
        return Ok(expanded);
    };
    let mut edits = Edits::default();
    // The visitor never fails: it records what it finds.
    let _ = visit(&ast, &mut edits);
    if let Some(why) = edits.refused {
        return Err(regex::Error::Syntax(format!(
            "{why} (as Go's regexp reports)"
        )));
    }
    edits.edits.sort_by_key(|e| e.0);
    let mut out = String::with_capacity(expanded.len() + 16);
    let mut at = 0;
    for (start, end, with) in edits.edits {
        if start < at {
            continue; // inside an edit already made
        }
        out.push_str(&expanded[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&expanded[at..]);
    Ok(out)
}

/// Go's `\Q…\E` (outside classes): the text between is literal. An unterminated `\Q` quotes
/// to the end, as in Go.
fn expand_quotes(source: &str) -> String {
    if !source.contains(r"\Q") {
        return source.to_owned();
    }
    let mut out = String::with_capacity(source.len() + 8);
    let mut rest = source;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(r"\Q").filter(|_| !in_class) {
            let (quoted, next) = match after.find(r"\E") {
                Some(end) => (&after[..end], &after[end + 2..]),
                None => (after, ""),
            };
            out.push_str(&regex_syntax::escape(quoted));
            rest = next;
            continue;
        }
        let len = if c == '\\' {
            // An escape: copy it whole.
            1 + rest[1..].chars().next().map_or(0, char::len_utf8)
        } else if c == '[' && !in_class {
            in_class = true;
            // `]` right after `[` or `[^` is a literal.
            let mut n = 1;
            if rest[n..].starts_with('^') {
                n += 1;
            }
            if rest[n..].starts_with(']') {
                n += 1;
            }
            n
        } else {
            if c == ']' && in_class {
                in_class = false;
            }
            c.len_utf8()
        };
        out.push_str(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

/// The literal strategies for globs made only of `*` and literal text: `*` (everything),
/// `lit` (equals), `lit*`, `*lit`, `*lit*`. Anything else (`?`, classes, alternations, escapes,
/// inner stars) stays with the glob engine.
fn simple_glob(glob: &str) -> Option<Imp> {
    if glob.contains(['?', '[', ']', '{', '}', '\\']) {
        return None;
    }
    let lead = glob.starts_with('*');
    let body = glob.trim_start_matches('*');
    let trail = body.ends_with('*');
    let lit = body.trim_end_matches('*');
    if lit.contains('*') {
        return None;
    }
    Some(match (lead, lit.is_empty(), trail) {
        (_, true, _) if lead || trail => Imp::Always,
        (false, _, false) => Imp::Equals(lit.into()),
        (false, _, true) => Imp::Prefix(lit.into()),
        (true, _, false) => Imp::Suffix(lit.into()),
        (true, _, true) => Imp::Contains(memmem::Finder::new(lit.as_bytes()).into_owned()),
    })
}

impl Pattern {
    /// Compiles `source`. `Ok((pattern, Some(fallback)))` means it was compiled as a glob.
    pub fn compile(source: &str) -> Result<(Self, Option<GlobFallback>), PatternError> {
        let translated = go_to_rust(source);
        let regex = match translated.clone().and_then(|dialect| Regex::new(&dialect)) {
            Ok(re) => re,
            Err(regex_err) => {
                let regex_error = first_line(&regex_err.to_string());
                let glob = GlobBuilder::new(source)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| PatternError {
                        pattern: source.to_owned(),
                        regex_error: regex_error.clone(),
                        glob_error: e.kind().to_string(),
                    })?;
                let imp = simple_glob(source).unwrap_or_else(|| Imp::Glob(glob.compile_matcher()));
                let pattern = Self {
                    source: source.into(),
                    imp,
                };
                return Ok((pattern, Some(GlobFallback { regex_error })));
            }
        };
        // The regex crate accepted it, so its syntax parses; pick a cheaper strategy if the
        // tree allows. Should the parse disagree, the regex engine is always right.
        let dialect = translated.as_deref().unwrap_or(source);
        let imp = match regex_syntax::Parser::new()
            .parse(dialect)
            .ok()
            .as_ref()
            .and_then(classify)
        {
            Some((false, "", false)) | Some((true, "", false)) | Some((false, "", true)) => {
                Imp::Always
            }
            Some((false, lit, false)) => {
                Imp::Contains(memmem::Finder::new(lit.as_bytes()).into_owned())
            }
            Some((true, lit, true)) => Imp::Equals(lit.into()),
            Some((true, lit, false)) => Imp::Prefix(lit.into()),
            Some((false, lit, true)) => Imp::Suffix(lit.into()),
            None => Imp::Regex(regex),
        };
        Ok((
            Self {
                source: source.into(),
                imp,
            },
            None,
        ))
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The strategy chosen at compile time.
    pub fn strategy(&self) -> Strategy {
        match self.imp {
            Imp::Always => Strategy::Always,
            Imp::Contains(_) => Strategy::Contains,
            Imp::Equals(_) => Strategy::Equals,
            Imp::Prefix(_) => Strategy::Prefix,
            Imp::Suffix(_) => Strategy::Suffix,
            Imp::Regex(_) => Strategy::Regex,
            Imp::Glob(_) => Strategy::Glob,
        }
    }

    /// Whether `value` matches.
    #[inline]
    pub fn is_match(&self, value: &str) -> bool {
        match &self.imp {
            Imp::Always => true,
            Imp::Contains(f) => f.find(value.as_bytes()).is_some(),
            Imp::Equals(s) => value == &**s,
            Imp::Prefix(s) => value.starts_with(&**s),
            Imp::Suffix(s) => value.ends_with(&**s),
            Imp::Regex(re) => re.is_match(value),
            Imp::Glob(g) => g.is_match(value),
        }
    }

    /// A rough relative cost, used to test cheap patterns of a rule first.
    pub(crate) fn cost(&self) -> u8 {
        match self.strategy() {
            Strategy::Always => 0,
            Strategy::Equals | Strategy::Prefix | Strategy::Suffix => 1,
            Strategy::Contains => 2,
            Strategy::Glob => 3,
            Strategy::Regex => 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::compile(s).unwrap().0
    }

    #[test]
    fn picks_strategies() {
        assert_eq!(p("Pod").strategy(), Strategy::Contains);
        assert_eq!(p("^Pod$").strategy(), Strategy::Equals);
        assert_eq!(p("^kube-").strategy(), Strategy::Prefix);
        assert_eq!(p("internal$").strategy(), Strategy::Suffix);
        assert_eq!(p("").strategy(), Strategy::Always);
        assert_eq!(
            p("cluster\\.x-k8s\\.io/v1beta2").strategy(),
            Strategy::Contains
        );
        assert_eq!(p("Pod|Node").strategy(), Strategy::Regex);
        assert_eq!(p("(?i)warning").strategy(), Strategy::Regex);
        assert_eq!(p("^$").strategy(), Strategy::Equals);
        assert_eq!(p("*test*").strategy(), Strategy::Contains);
        assert_eq!(p("*").strategy(), Strategy::Always);
        assert_eq!(p("**").strategy(), Strategy::Always);
        assert_eq!(p("*-prod").strategy(), Strategy::Suffix);
        assert_eq!(p("*a*b*").strategy(), Strategy::Glob);
        assert_eq!(p("*a?").strategy(), Strategy::Glob);
    }

    #[test]
    fn matches_like_go_regexp() {
        assert!(p("Pod").is_match("PodDisruptionBudget"));
        assert!(!p("^Pod$").is_match("PodDisruptionBudget"));
        assert!(p("cluster.x-k8s.io").is_match("clusterAx-k8s.io/v1"));
        assert!(!p("cluster\\.x").is_match("clusterAx"));
        assert!(p("^ip-10-0-1[0-9]{2}-").is_match("ip-10-0-165-243.eu-west-1.compute.internal"));
        assert!(p("(?i)warning").is_match("WARNING"));
        assert!(p("").is_match(""));
        assert!(p("^$").is_match(""));
        assert!(!p("^$").is_match("x"));
    }

    #[test]
    fn invalid_regex_is_an_anchored_glob() {
        let (pat, fallback) = Pattern::compile("*test*").unwrap();
        assert!(fallback.unwrap().regex_error.contains("repetition"));
        assert!(pat.is_match("my-test-ns"));
        assert!(pat.is_match("test"));
        assert!(!pat.is_match("prod"));
        let (star, _) = Pattern::compile("*").unwrap();
        assert!(star.is_match("a/b"));
        assert!(star.is_match(""));
        let (anchored, _) = Pattern::compile("*-prod").unwrap();
        assert!(anchored.is_match("team-a-prod"));
        assert!(!anchored.is_match("team-a-prod-2"));
        let (engine, _) = Pattern::compile("*a?c*").unwrap();
        assert_eq!(engine.strategy(), Strategy::Glob);
        assert!(engine.is_match("xxabcxx"));
        assert!(!engine.is_match("xxacxx"));
        let (plain, fb) = Pattern::compile("+a*").unwrap();
        assert!(fb.is_some());
        assert_eq!(plain.strategy(), Strategy::Prefix);
        assert!(plain.is_match("+abc") && !plain.is_match("x+a"));
    }

    #[test]
    fn nested_repetition_is_not_a_regex_as_in_go() {
        for src in ["a**", "a+*", "x{2}*"] {
            let (pat, fallback) = Pattern::compile(src).unwrap();
            assert!(
                fallback.unwrap().regex_error.contains("nested repetition"),
                "{src}"
            );
            assert_ne!(pat.strategy(), Strategy::Regex, "{src}");
        }
        assert!(Pattern::compile("a+*").unwrap().0.is_match("a+b"));
        assert!(Pattern::compile("a*?").unwrap().1.is_none());
        assert!(Pattern::compile("(a*)*").unwrap().1.is_none());
    }

    #[test]
    fn go_dialect_where_the_engines_differ() {
        // `\<`, `\>` are literal angle brackets in Go.
        let angle = p(r"\<none\>");
        assert!(angle.is_match("image <none> pulled"));
        assert!(!angle.is_match("there are none here"));
        // `\Q…\E` quotes.
        let quoted = p(r"\Qa.b\E$");
        assert!(quoted.is_match("xa.b") && !quoted.is_match("xaxb"));
        assert_eq!(quoted.strategy(), Strategy::Suffix);
        assert!(p(r"^\Q[x]*").is_match("[x]*y"));
        // `&&` and `~~` inside a class are characters.
        let set = p("^[a&&b]$");
        assert!(set.is_match("a") && set.is_match("&") && set.is_match("b"));
        // ASCII classes and boundaries.
        assert!(!p(r"^\d$").is_match("\u{0663}"));
        assert!(p(r"^\d+$").is_match("42"));
        assert!(!p(r"\w").is_match("é"));
        assert!(p(r"^[\d-]+$").is_match("10-4"));
        assert!(p(r"\bpod\b").is_match("a pod restarted"));
        // Go's `\b` is ASCII: `é` is not a word character, so `pod` in `épodé` is a word.
        assert!(p(r"\bpod\b").is_match("épodé"));
        // What Go refuses falls back to a glob.
        for src in ["(?x)a b", "a{1001}", "a{2,1001}", r"\b{start}x", "(?u:a)"] {
            let (_, fallback) = Pattern::compile(src).unwrap();
            assert!(fallback.is_some(), "{src} must not be a regular expression");
        }
        assert!(Pattern::compile("a{1000}").unwrap().1.is_none());
        // Neither Go syntax nor a glob: an error.
        assert!(Pattern::compile("[a--b]").is_err());
        assert!(Pattern::compile("(?i)(?s:a.)(?U)b*").unwrap().1.is_none());
    }

    #[test]
    fn neither_regex_nor_glob_is_an_error() {
        let err = Pattern::compile("[a-").unwrap_err();
        assert_eq!(err.pattern, "[a-");
        assert!(
            err.to_string()
                .contains("neither a valid regular expression")
        );
    }
}
