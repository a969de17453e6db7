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
//! [`Router::compile`] builds the tree once; [`Router::route`] borrows the event and allocates
//! nothing (receivers are reported through a callback, or appended to a reused `Vec`).

use std::collections::HashMap;

use crate::config::{RouteConfig, RuleConfig};
use crate::event::Event;
use crate::pattern::{Pattern, PatternError, Strategy};

/// Something that decides whether an event matches.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    fields: Box<[(Field, Pattern)]>,
    labels: Box<[(Box<str>, Pattern)]>,
    annotations: Box<[(Box<str>, Pattern)]>,
    min_count: i32,
    receiver: Option<ReceiverId>,
}

impl Matcher for Rule {
    #[inline]
    fn matches(&self, event: &Event<'_>) -> bool {
        // All tests are a conjunction, so their order is free: cheapest first.
        self.fields
            .iter()
            .all(|(field, pattern)| pattern.is_match(field.get(event)))
            && self
                .labels
                .iter()
                .all(|(k, p)| event.label(k).is_some_and(|v| p.is_match(v)))
            && self
                .annotations
                .iter()
                .all(|(k, p)| event.annotation(k).is_some_and(|v| p.is_match(v)))
            && event.count() >= self.min_count
    }
}

impl Rule {
    /// The receiver a match rule sends to.
    pub fn receiver(&self) -> Option<ReceiverId> {
        self.receiver
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
    /// Runs `event` through this route, calling `send` for every receiver reached, in order.
    #[inline]
    pub fn process(&self, event: &Event<'_>, send: &mut impl FnMut(ReceiverId)) {
        if self.drop.iter().any(|rule| rule.matches(event)) {
            return;
        }
        let mut all = true;
        for rule in self.matches.iter() {
            if rule.matches(event) {
                if let Some(id) = rule.receiver {
                    send(id);
                }
            } else {
                all = false;
            }
        }
        if all {
            for route in self.routes.iter() {
                route.process(event, send);
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
    #[error("{place}: receiver `{name}` is not defined in `receivers`")]
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
            self.place, self.pattern, self.regex_error
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
    receivers: Box<[Box<str>]>,
    warnings: Vec<GlobWarning>,
}

struct Compiler<'a> {
    ids: HashMap<&'a str, ReceiverId>,
    errors: Vec<RouteError>,
    warnings: Vec<GlobWarning>,
}

impl Compiler<'_> {
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
        let mut fields = Vec::new();
        for (field, src) in candidates {
            if src.is_empty() {
                continue;
            }
            match self.pattern(|| format!("{place}.{}", field.key()), src) {
                // A pattern that matches everything constrains nothing: leave it out.
                Some(p) if p.strategy() == Strategy::Always => {}
                Some(p) => fields.push((field, p)),
                None => {}
            }
        }
        fields.sort_by_key(|(_, p)| p.cost());
        let mut map_patterns = |what: &str, map: &std::collections::BTreeMap<String, String>| {
            let mut out: Vec<(Box<str>, Pattern)> = Vec::new();
            for (k, v) in map {
                if let Some(p) = self.pattern(|| format!("{place}.{what}.{k}"), v) {
                    out.push((k.as_str().into(), p));
                }
            }
            out.sort_by_key(|(_, p)| p.cost());
            out.into_boxed_slice()
        };
        let labels = map_patterns("labels", &cfg.labels);
        let annotations = map_patterns("annotations", &cfg.annotations);
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
            fields: fields.into_boxed_slice(),
            labels,
            annotations,
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
        self.root.process(event, &mut send);
    }

    /// Routes `event`, replacing the contents of `out` with the receivers reached. Reusing `out`
    /// across events keeps routing free of allocation.
    #[inline]
    pub fn route_into(&self, event: &Event<'_>, out: &mut Vec<ReceiverId>) {
        out.clear();
        self.root.process(event, &mut |id| out.push(id));
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
    fn glob_fallback_warns_with_place() {
        let r = router(&format!(
            "route:\n  routes:\n  - drop: [{{namespace: '*test*'}}]\n{RECEIVERS}"
        ));
        assert_eq!(r.warnings().len(), 1);
        assert_eq!(r.warnings()[0].place, "route.routes[0].drop[0].namespace");
        assert!(r.warnings()[0].to_string().contains("anchored glob"));
    }
}
