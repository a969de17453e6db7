//! Compiled match/drop rules and the route tree, with upstream's semantics exactly:
//!
//! - a rule matches when every non-empty field's pattern matches, every listed label and
//!   annotation exists on the involved object and matches, and `count >= minCount`;
//! - a route first applies its `drop` rules: any match drops the event from the route (and its
//!   sub-routes);
//! - then every `match` rule is tried independently, and each that matches sends the event to
//!   its receiver (if it names one);
//! - sub-routes run only when every `match` rule matched (vacuously so when there are none);
//! - a receiver reached twice is sent to twice.
//!
//! [`Router::compile`] builds the tree once. Identical tests (same field, same pattern) written
//! in several rules compile to one [`Predicate`]; [`Router::route`] evaluates each predicate at
//! most once per event (a bitset on the stack), borrows the event and allocates nothing
//! (receivers are reported through a callback, or appended to a reused `Vec`).

use std::collections::HashMap;

use crate::config::{RouteConfig, RuleConfig};
use crate::event::Event;
use crate::pattern::{Pattern, PatternError, Strategy};

/// Something that decides whether an event matches (a [`Predicate`]).
pub trait Matcher {
    /// Whether `event` matches.
    fn matches(&self, event: &Event<'_>) -> bool;
}

/// Index of a receiver in the [`Router`]'s receiver list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverId(pub u32);

impl ReceiverId {
    /// As a `usize` index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// An event field a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `message`.
    Message,
    /// `involvedObject.apiVersion` (rule key `apiVersion`).
    ApiVersion,
    /// `involvedObject.kind`.
    Kind,
    /// The event's `metadata.namespace`.
    Namespace,
    /// `reason`.
    Reason,
    /// `type`.
    Type,
    /// `source.component`.
    Component,
    /// `source.host`.
    Host,
}

impl Field {
    /// The rule key, as written in the config.
    pub fn key(self) -> &'static str {
        match self {
            Field::Message => "message",
            Field::ApiVersion => "apiVersion",
            Field::Kind => "kind",
            Field::Namespace => "namespace",
            Field::Reason => "reason",
            Field::Type => "type",
            Field::Component => "component",
            Field::Host => "host",
        }
    }

    #[inline]
    fn get<'a>(self, event: &Event<'a>) -> &'a str {
        match self {
            Field::Message => event.message(),
            Field::ApiVersion => event.api_version(),
            Field::Kind => event.kind(),
            Field::Namespace => event.namespace(),
            Field::Reason => event.reason(),
            Field::Type => event.type_(),
            Field::Component => event.component(),
            Field::Host => event.host(),
        }
    }
}

/// What a predicate tests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Field(Field),
    Label(Box<str>),
    Annotation(Box<str>),
}

/// One compiled test of one event field, label or annotation. Identical tests written in
/// several rules compile to one predicate, evaluated at most once per event.
#[derive(Debug, Clone)]
pub struct Predicate {
    subject: Subject,
    pattern: Pattern,
}

impl Matcher for Predicate {
    #[inline]
    fn matches(&self, event: &Event<'_>) -> bool {
        match &self.subject {
            Subject::Field(field) => self.pattern.is_match(field.get(event)),
            // Labels and annotations must exist, then match.
            Subject::Label(key) => event.label(key).is_some_and(|v| self.pattern.is_match(v)),
            Subject::Annotation(key) => event
                .annotation(key)
                .is_some_and(|v| self.pattern.is_match(v)),
        }
    }
}

impl Predicate {
    fn cost(&self) -> u8 {
        let lookup = u8::from(!matches!(self.subject, Subject::Field(_)));
        self.pattern.cost() + lookup
    }
}

/// Index of a predicate in the router's table.
type PredId = u32;

/// How many predicates a per-event memo covers (64 per word); predicates beyond it are simply
/// evaluated each time they are reached.
const MEMO_WORDS: usize = 4;

/// Per-event evaluation state: each predicate's result, computed at most once. Lives on the
/// stack: routing allocates nothing.
struct Eval<'r, 'e, 'a> {
    predicates: &'r [Predicate],
    event: &'e Event<'a>,
    known: [u64; MEMO_WORDS],
    value: [u64; MEMO_WORDS],
}

impl Eval<'_, '_, '_> {
    #[inline]
    fn test(&mut self, id: PredId) -> bool {
        let Some(pred) = self.predicates.get(id as usize) else {
            return false;
        };
        let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
        if word >= MEMO_WORDS {
            return pred.matches(self.event);
        }
        if self.known[word] & bit != 0 {
            return self.value[word] & bit != 0;
        }
        let result = pred.matches(self.event);
        self.known[word] |= bit;
        if result {
            self.value[word] |= bit;
        }
        result
    }
}

/// A compiled rule: a conjunction of predicates (cheapest first) and `minCount`.
#[derive(Debug, Clone)]
pub struct Rule {
    predicates: Box<[PredId]>,
    min_count: i32,
    receiver: Option<ReceiverId>,
}

impl Rule {
    /// The receiver a match rule sends to.
    pub fn receiver(&self) -> Option<ReceiverId> {
        self.receiver
    }

    #[inline]
    fn matches(&self, eval: &mut Eval<'_, '_, '_>) -> bool {
        // All tests are a conjunction, so their order is free: cheapest first. A `minCount`
        // above 0 is a cheap, selective filter; the default 0 almost always passes, so it is
        // checked last (often never: a failing predicate decides first).
        if self.min_count > 0 {
            eval.event.count() >= self.min_count && self.predicates.iter().all(|&id| eval.test(id))
        } else {
            self.predicates.iter().all(|&id| eval.test(id)) && eval.event.count() >= self.min_count
        }
    }
}

/// A compiled route.
#[derive(Debug, Clone, Default)]
pub struct Route {
    drop: Box<[Rule]>,
    matches: Box<[Rule]>,
    routes: Box<[Route]>,
}

impl Route {
    /// Runs the event through this route, calling `send` for every receiver reached, in order.
    #[inline]
    fn process(&self, eval: &mut Eval<'_, '_, '_>, send: &mut impl FnMut(ReceiverId)) {
        if self.drop.iter().any(|rule| rule.matches(eval)) {
            return;
        }
        let mut all = true;
        for rule in self.matches.iter() {
            if rule.matches(eval) {
                if let Some(id) = rule.receiver {
                    send(id);
                }
            } else {
                all = false;
            }
        }
        if all {
            for route in self.routes.iter() {
                route.process(eval, send);
            }
        }
    }
}

/// Where in the config something is (`route.routes[1].match[0].kind`).
pub type Place = String;

/// A route tree that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A pattern is neither a regular expression nor a glob.
    #[error("{place}: {source}")]
    Pattern {
        /// Where the pattern is.
        place: Place,
        /// Why it does not compile.
        source: PatternError,
    },
    /// A match rule names a receiver that is not defined.
    #[error(
        "{place}: receiver `{}` is not defined in `receivers`",
        crate::redact::Brief(name)
    )]
    UnknownReceiver {
        /// Where the reference is.
        place: Place,
        /// The name used.
        name: String,
    },
}

/// A pattern compiled as a glob, to be logged at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobWarning {
    /// Where the pattern is.
    pub place: Place,
    /// The pattern.
    pub pattern: String,
    /// Why it is not a regular expression.
    pub regex_error: String,
}

impl std::fmt::Display for GlobWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` is not a valid regular expression ({}); matching it as an anchored glob",
            self.place,
            crate::redact::Brief(&self.pattern),
            crate::redact::Brief(&self.regex_error)
        )
    }
}

/// Why a route tree did not compile: every error, and the warnings found on the way (so a
/// user fixing the errors sees those too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct RouteErrors {
    /// The errors, in config order.
    pub errors: Vec<RouteError>,
    /// Patterns compiled as globs.
    pub warnings: Vec<GlobWarning>,
}

/// The compiled route tree and the receiver names it refers to.
#[derive(Debug, Clone, Default)]
pub struct Router {
    root: Route,
    predicates: Box<[Predicate]>,
    receivers: Box<[Box<str>]>,
    warnings: Vec<GlobWarning>,
}

struct Compiler<'a> {
    ids: HashMap<&'a str, ReceiverId>,
    predicates: Vec<Predicate>,
    interned: HashMap<(Subject, String), PredId>,
    errors: Vec<RouteError>,
    warnings: Vec<GlobWarning>,
}

impl Compiler<'_> {
    /// The predicate testing `subject` against `source`, compiled once per distinct pair.
    /// `None` when the pattern does not compile (reported) or matches everything (no test).
    fn predicate(
        &mut self,
        place: impl FnOnce() -> Place,
        subject: Subject,
        source: &str,
    ) -> Option<PredId> {
        let key = (subject, source.to_owned());
        if let Some(id) = self.interned.get(&key) {
            return Some(*id);
        }
        let pattern = self.pattern(place, source)?;
        // A field pattern that matches everything constrains nothing; a label's still
        // requires the label to exist.
        if pattern.strategy() == Strategy::Always && matches!(key.0, Subject::Field(_)) {
            return None;
        }
        let id = PredId::try_from(self.predicates.len()).unwrap_or(PredId::MAX);
        self.predicates.push(Predicate {
            subject: key.0.clone(),
            pattern,
        });
        self.interned.insert(key, id);
        Some(id)
    }

    fn pattern(&mut self, place: impl FnOnce() -> Place, source: &str) -> Option<Pattern> {
        match Pattern::compile(source) {
            Ok((pattern, fallback)) => {
                if let Some(fb) = fallback {
                    self.warnings.push(GlobWarning {
                        place: place(),
                        pattern: source.to_owned(),
                        regex_error: fb.regex_error,
                    });
                }
                Some(pattern)
            }
            Err(source) => {
                self.errors.push(RouteError::Pattern {
                    place: place(),
                    source,
                });
                None
            }
        }
    }

    fn rule(&mut self, place: &str, cfg: &RuleConfig, is_match: bool) -> Rule {
        let candidates = [
            (Field::Message, &cfg.message),
            (Field::ApiVersion, &cfg.api_version),
            (Field::Kind, &cfg.kind),
            (Field::Namespace, &cfg.namespace),
            (Field::Reason, &cfg.reason),
            (Field::Type, &cfg.type_),
            (Field::Component, &cfg.component),
            (Field::Host, &cfg.host),
        ];
        let mut predicates = Vec::new();
        for (field, src) in candidates {
            if src.is_empty() {
                continue;
            }
            let place = || format!("{place}.{}", field.key());
            predicates.extend(self.predicate(place, Subject::Field(field), src));
        }
        for (k, v) in &cfg.labels {
            let place = || format!("{place}.labels.{k}");
            predicates.extend(self.predicate(place, Subject::Label(k.as_str().into()), v));
        }
        for (k, v) in &cfg.annotations {
            let place = || format!("{place}.annotations.{k}");
            predicates.extend(self.predicate(place, Subject::Annotation(k.as_str().into()), v));
        }
        predicates.sort_by_key(|id| {
            self.predicates
                .get(*id as usize)
                .map_or(u8::MAX, Predicate::cost)
        });
        predicates.dedup();
        let receiver = if is_match && !cfg.receiver.is_empty() {
            match self.ids.get(cfg.receiver.as_str()) {
                Some(id) => Some(*id),
                None => {
                    self.errors.push(RouteError::UnknownReceiver {
                        place: format!("{place}.receiver"),
                        name: cfg.receiver.clone(),
                    });
                    None
                }
            }
        } else {
            None
        };
        Rule {
            predicates: predicates.into_boxed_slice(),
            min_count: cfg.min_count,
            receiver,
        }
    }

    fn route(&mut self, place: &str, cfg: &RouteConfig) -> Route {
        let drop = cfg
            .drop
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(&format!("{place}.drop[{i}]"), r, false))
            .collect();
        let matches = cfg
            .match_
            .iter()
            .enumerate()
            .map(|(i, r)| self.rule(&format!("{place}.match[{i}]"), r, true))
            .collect();
        let routes = cfg
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| self.route(&format!("{place}.routes[{i}]"), r))
            .collect();
        Route {
            drop,
            matches,
            routes,
        }
    }
}

impl Router {
    /// Compiles the route tree rooted at `root` (the config's `route`), resolving receiver names
    /// against `receivers`. Every problem is reported, not only the first.
    pub fn compile<S: AsRef<str>>(
        root: &RouteConfig,
        receivers: &[S],
    ) -> Result<Self, RouteErrors> {
        let mut compiler = Compiler {
            ids: HashMap::new(),
            predicates: Vec::new(),
            interned: HashMap::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        for (i, name) in receivers.iter().enumerate() {
            let id = ReceiverId(u32::try_from(i).unwrap_or(u32::MAX));
            // The first definition wins; duplicates are the config validator's to report.
            compiler.ids.entry(name.as_ref()).or_insert(id);
        }
        let root = compiler.route("route", root);
        if !compiler.errors.is_empty() {
            return Err(RouteErrors {
                errors: compiler.errors,
                warnings: compiler.warnings,
            });
        }
        Ok(Self {
            root,
            predicates: compiler.predicates.into_boxed_slice(),
            receivers: receivers.iter().map(|s| s.as_ref().into()).collect(),
            warnings: compiler.warnings,
        })
    }

    /// Patterns that were compiled as globs: log them at startup.
    pub fn warnings(&self) -> &[GlobWarning] {
        &self.warnings
    }

    /// The receiver names, indexed by [`ReceiverId`].
    pub fn receiver_names(&self) -> impl ExactSizeIterator<Item = &str> {
        self.receivers.iter().map(|s| &**s)
    }

    /// The name of a receiver.
    pub fn receiver_name(&self, id: ReceiverId) -> &str {
        self.receivers.get(id.index()).map_or("", |s| s)
    }

    /// Routes `event`, calling `send` for every receiver it reaches, in route-tree order and as
    /// often as it is reached. Allocates nothing.
    #[inline]
    pub fn route(&self, event: &Event<'_>, mut send: impl FnMut(ReceiverId)) {
        let mut eval = self.eval(event);
        self.root.process(&mut eval, &mut send);
    }

    fn eval<'r, 'e, 'a>(&'r self, event: &'e Event<'a>) -> Eval<'r, 'e, 'a> {
        Eval {
            predicates: &self.predicates,
            event,
            known: [0; MEMO_WORDS],
            value: [0; MEMO_WORDS],
        }
    }

    /// The distinct predicates the route tree tests (identical tests are shared).
    pub fn predicates(&self) -> &[Predicate] {
        &self.predicates
    }

    /// Routes `event`, replacing the contents of `out` with the receivers reached. Reusing `out`
    /// across events keeps routing free of allocation.
    #[inline]
    pub fn route_into(&self, event: &Event<'_>, out: &mut Vec<ReceiverId>) {
        out.clear();
        let mut eval = self.eval(event);
        self.root.process(&mut eval, &mut |id| out.push(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::EnrichedEvent;

    fn router(yaml: &str) -> Router {
        let cfg = Config::from_yaml(yaml).unwrap();
        let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
        Router::compile(&cfg.route, &names).unwrap()
    }

    fn names(r: &Router, ev: &EnrichedEvent) -> Vec<String> {
        let mut out = Vec::new();
        r.route(&ev.view(), |id| out.push(r.receiver_name(id).to_owned()));
        out
    }

    fn ev(json: &str) -> EnrichedEvent {
        EnrichedEvent::from_json_str(json).unwrap()
    }

    const RECEIVERS: &str = "receivers:\n- {name: a, stdout: {}}\n- {name: b, stdout: {}}\n";

    #[test]
    fn drop_then_independent_matches_then_subroutes() {
        let r = router(&format!(
            "route:\n  routes:\n  - drop: [{{namespace: '^kube-'}}]\n    match:\n    - {{kind: Pod, receiver: a}}\n    - {{type: Warning, receiver: b}}\n    routes:\n    - match: [{{receiver: a}}]\n{RECEIVERS}"
        ));
        let pod_warn = ev(
            r#"{"metadata":{"namespace":"default"},"involvedObject":{"kind":"Pod"},"type":"Warning"}"#,
        );
        assert_eq!(names(&r, &pod_warn), ["a", "b", "a"]);
        let pod_normal = ev(
            r#"{"metadata":{"namespace":"default"},"involvedObject":{"kind":"Pod"},"type":"Normal"}"#,
        );
        assert_eq!(names(&r, &pod_normal), ["a"]);
        let dropped = ev(
            r#"{"metadata":{"namespace":"kube-system"},"involvedObject":{"kind":"Pod"},"type":"Warning"}"#,
        );
        assert!(names(&r, &dropped).is_empty());
    }

    #[test]
    fn labels_must_exist_and_min_count_applies() {
        let r = router(&format!(
            "route:\n  match:\n  - {{labels: {{version: dev}}, receiver: a}}\n  - {{minCount: 3, receiver: b}}\n{RECEIVERS}"
        ));
        assert_eq!(
            names(
                &r,
                &ev(r#"{"metadata":{},"involvedObject":{"labels":{"version":"dev-2"}},"count":3}"#)
            ),
            ["a", "b"]
        );
        assert!(names(&r, &ev(r#"{"metadata":{},"involvedObject":{},"count":2}"#)).is_empty());
    }

    #[test]
    fn unknown_receivers_and_bad_patterns_are_all_reported() {
        let cfg = Config::from_yaml(
            "route:\n  routes:\n  - match: [{receiver: nope}]\n  - drop: [{reason: '[a-'}]\n",
        )
        .unwrap();
        let errs = Router::compile(&cfg.route, &[] as &[&str])
            .unwrap_err()
            .errors;
        assert_eq!(errs.len(), 2);
        assert_eq!(
            errs[0].to_string(),
            "route.routes[0].match[0].receiver: receiver `nope` is not defined in `receivers`"
        );
        assert!(
            errs[1]
                .to_string()
                .starts_with("route.routes[1].drop[0].reason: `[a-`")
        );
    }

    #[test]
    fn identical_tests_compile_to_one_predicate() {
        let r = router(&format!(
            "route:\n  routes:\n  - match: [{{kind: Cluster, reason: A, receiver: a}}]\n  - match: [{{kind: Cluster, reason: B, receiver: b}}]\n  - match: [{{labels: {{kind: Cluster}}, receiver: a}}]\n{RECEIVERS}"
        ));
        // kind=Cluster (shared), reason=A, reason=B, and the label test (a different subject).
        assert_eq!(r.predicates().len(), 4);
        let cluster_b = ev(r#"{"metadata":{},"involvedObject":{"kind":"Cluster"},"reason":"B"}"#);
        assert_eq!(names(&r, &cluster_b), ["b"]);
    }

    #[test]
    fn more_predicates_than_the_memo_holds_still_route_right() {
        // 300 distinct reasons: predicates past the memo's 256 are evaluated directly.
        let mut yaml = String::from("route:\n  routes:\n");
        for i in 0..300 {
            yaml.push_str(&format!("  - match: [{{reason: '^R{i}$', receiver: a}}]\n"));
        }
        yaml.push_str(RECEIVERS);
        let r = router(&yaml);
        assert_eq!(r.predicates().len(), 300);
        for i in [0, 255, 256, 299] {
            let e = ev(&format!(
                r#"{{"metadata":{{}},"involvedObject":{{}},"reason":"R{i}"}}"#
            ));
            assert_eq!(names(&r, &e), ["a"], "R{i}");
        }
    }

    #[test]
    fn glob_fallback_warns_with_place() {
        let r = router(&format!(
            "route:\n  routes:\n  - drop: [{{namespace: '*test*'}}]\n{RECEIVERS}"
        ));
        assert_eq!(r.warnings().len(), 1);
        assert_eq!(r.warnings()[0].place, "route.routes[0].drop[0].namespace");
        assert!(r.warnings()[0].to_string().contains("anchored glob"));
    }
}
