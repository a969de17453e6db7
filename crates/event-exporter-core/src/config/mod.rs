//! The configuration model: upstream `kubernetes-event-exporter`'s `config.yaml`, typed.
//!
//! Loading goes text → `${VAR}` expansion ([`env`](mod@env)) → YAML into [`Config`]. The model accepts
//! every top-level key upstream and the seed app write, and refuses unknown keys with their
//! place (`route.routes[2].match[0].namspace: unknown field`) and the line and column, where
//! upstream ignores them silently. Receiver specs stay generic YAML here ([`ReceiverConfig`]):
//! each sink kind validates its own spec when it is built.

pub mod env;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

pub use env::{ExpandError, MalformedReference, UndefinedVariable};

/// The whole exporter configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// `logLevel`: `trace`, `debug`, `info`, `warn`, `error` (upstream also `fatal`, `panic`).
    #[serde(default, deserialize_with = "nullable")]
    pub log_level: String,
    /// `logFormat`: `json` or `pretty`.
    #[serde(default, deserialize_with = "nullable")]
    pub log_format: String,
    /// `throttlePeriod` (seconds; upstream's older name for the event age limit).
    #[serde(default, deserialize_with = "nullable")]
    pub throttle_period: i64,
    /// `maxEventAgeSeconds`: events older than this at the first start are not exported.
    #[serde(default, deserialize_with = "nullable")]
    pub max_event_age_seconds: i64,
    /// `clusterName`: added to every event (`.ClusterName`, `clusterName` in JSON).
    #[serde(default, deserialize_with = "nullable")]
    pub cluster_name: String,
    /// `namespace`: watch only this namespace (empty: all).
    #[serde(default, deserialize_with = "nullable")]
    pub namespace: String,
    /// `leaderElection`.
    #[serde(default, deserialize_with = "nullable")]
    pub leader_election: LeaderElectionConfig,
    /// `watchReasons` (the seed app's fork): watch only events with these reasons.
    #[serde(default, deserialize_with = "nullable_strings")]
    pub watch_reasons: Vec<String>,
    /// `kubeQPS`: client-side rate limit of API requests.
    #[serde(default, rename = "kubeQPS", deserialize_with = "nullable")]
    pub kube_qps: f32,
    /// `kubeBurst`: burst of the client-side rate limit.
    #[serde(default, deserialize_with = "nullable")]
    pub kube_burst: u32,
    /// `metricsNamePrefix`: prefix of every metric name.
    #[serde(default, deserialize_with = "nullable")]
    pub metrics_name_prefix: String,
    /// `omitLookup`: do not look up involved objects (no labels/annotations enrichment).
    #[serde(default, deserialize_with = "nullable")]
    pub omit_lookup: bool,
    /// `cacheSize`: entries of the involved-object lookup cache.
    #[serde(default, deserialize_with = "nullable")]
    pub cache_size: usize,
    /// `checkpoint` (an extension): where the exporter remembers how far delivery has got.
    #[serde(default, deserialize_with = "nullable")]
    pub checkpoint: CheckpointConfig,
    /// `route`: the root of the route tree.
    #[serde(default, deserialize_with = "nullable")]
    pub route: RouteConfig,
    /// `receivers`.
    #[serde(default, deserialize_with = "nullable")]
    pub receivers: Vec<ReceiverConfig>,
    /// The values `${VAR}` references took from the environment (not their defaults): what an
    /// operator kept out of the file. A receiver treats one as a secret where it stands in a
    /// credential's place (a header value, a URL's credentials or query).
    #[serde(skip)]
    pub from_environment: Vec<String>,
}

/// `leaderElection`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    /// Whether to run leader election.
    #[serde(default, deserialize_with = "nullable")]
    pub enabled: bool,
    /// The Lease's name.
    #[serde(default, rename = "leaderElectionID", deserialize_with = "nullable")]
    pub leader_election_id: String,
}

/// `checkpoint` (an extension): how far delivery has got is saved here, so that a restart, a
/// 410 or the next leader neither loses nor repeats events. On by default: in a ConfigMap
/// named `event-exporter-checkpoint` (or `<leaderElectionID>-checkpoint`) in the exporter's
/// own namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckpointConfig {
    /// `enabled` (default `true`); `false` restarts as a first start every time.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `configMap: {name, namespace}`: the ConfigMap (either may be left out for the default).
    #[serde(default)]
    pub config_map: Option<ConfigMapRef>,
    /// `file`: a file instead of a ConfigMap.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `intervalSeconds`: how often it is saved while running (default 5; always at shutdown).
    #[serde(default)]
    pub interval_seconds: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            config_map: None,
            file: None,
            interval_seconds: None,
        }
    }
}

/// A ConfigMap by name and namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMapRef {
    /// The name (empty: the default).
    #[serde(default)]
    pub name: String,
    /// The namespace (empty: the exporter's own).
    #[serde(default)]
    pub namespace: String,
}

/// A node of the route tree.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Rules that, when any matches, drop the event from this route and its sub-routes.
    #[serde(default, deserialize_with = "nullable")]
    pub drop: Vec<RuleConfig>,
    /// Rules that each send a matching event to their receiver.
    #[serde(default, rename = "match", deserialize_with = "nullable")]
    pub match_: Vec<RuleConfig>,
    /// Sub-routes, visited only when every match rule matched.
    #[serde(default, deserialize_with = "nullable")]
    pub routes: Vec<RouteConfig>,
}

/// A match or drop rule. Every non-empty field is an unanchored regular expression (or, when it
/// is not a valid one, an anchored glob); all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Involved object's labels: each must exist and its value match.
    #[serde(default, deserialize_with = "nullable_string_map")]
    pub labels: BTreeMap<String, String>,
    /// Involved object's annotations: each must exist and its value match.
    #[serde(default, deserialize_with = "nullable_string_map")]
    pub annotations: BTreeMap<String, String>,
    /// The event's message.
    #[serde(default, deserialize_with = "nullable_string")]
    pub message: String,
    /// The involved object's apiVersion (`apiversion` is accepted too).
    #[serde(
        default,
        rename = "apiVersion",
        alias = "apiversion",
        deserialize_with = "nullable_string"
    )]
    pub api_version: String,
    /// The involved object's kind.
    #[serde(default, deserialize_with = "nullable_string")]
    pub kind: String,
    /// The event's own namespace.
    #[serde(default, deserialize_with = "nullable_string")]
    pub namespace: String,
    /// The event's reason.
    #[serde(default, deserialize_with = "nullable_string")]
    pub reason: String,
    /// The event's type (`Normal`, `Warning`).
    #[serde(default, rename = "type", deserialize_with = "nullable_string")]
    pub type_: String,
    /// The least `count` the event must have (`mincount` is accepted too).
    #[serde(
        default,
        rename = "minCount",
        alias = "mincount",
        deserialize_with = "nullable"
    )]
    pub min_count: i32,
    /// `source.component`.
    #[serde(default, deserialize_with = "nullable_string")]
    pub component: String,
    /// `source.host`.
    #[serde(default, deserialize_with = "nullable_string")]
    pub host: String,
    /// The receiver a match rule sends to (ignored on drop rules, as upstream).
    #[serde(default, deserialize_with = "nullable_string")]
    pub receiver: String,
}

/// A receiver: a name and one sink spec, kept as YAML until the sink kind validates it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverConfig {
    /// The receiver's name, as routes refer to it.
    pub name: String,
    /// The sink kind: the key next to `name` (`webhook`, `slack`, `stdout`, ...).
    pub kind: String,
    /// The sink's spec (the value under the kind key).
    pub spec: serde_yaml_ng::Value,
    /// `delivery:` — this receiver's queue, retry and timeout settings (an extension; the
    /// sinks crate reads it).
    pub delivery: Option<serde_yaml_ng::Value>,
}

impl<'de> Deserialize<'de> for ReceiverConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReceiverVisitor;
        impl<'de> Visitor<'de> for ReceiverVisitor {
            type Value = ReceiverConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a receiver: `name` and one sink, e.g. `webhook: {endpoint: ...}`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut name: Option<String> = None;
                let mut delivery: Option<serde_yaml_ng::Value> = None;
                let mut sink: Option<(String, serde_yaml_ng::Value)> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "name" {
                        if name.is_some() {
                            return Err(de::Error::duplicate_field("name"));
                        }
                        name = Some(map.next_value()?);
                        continue;
                    }
                    if key == "delivery" {
                        if delivery.is_some() {
                            return Err(de::Error::duplicate_field("delivery"));
                        }
                        delivery = Some(map.next_value()?);
                        continue;
                    }
                    let spec: serde_yaml_ng::Value = map.next_value()?;
                    if let Some((first, _)) = &sink {
                        return Err(de::Error::custom(format!(
                            "a receiver has one sink, found both `{first}` and `{key}`"
                        )));
                    }
                    sink = Some((key, spec));
                }
                let name = name.ok_or_else(|| de::Error::missing_field("name"))?;
                let (kind, spec) = sink.ok_or_else(|| {
                    de::Error::custom(format!(
                        "receiver `{name}` has no sink (add one of: webhook, slack, grafana, stdout, file)"
                    ))
                })?;
                Ok(ReceiverConfig {
                    name,
                    kind,
                    spec,
                    delivery,
                })
            }
        }
        deserializer.deserialize_map(ReceiverVisitor)
    }
}

/// `null` (an empty YAML key) reads as the default, as Go's zero values.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A scalar read as a string: YAML `2`, `true` or `1.5` where a string is expected reads as its
/// text, as Go's YAML decoder does for string fields.
struct StringLike(String);

impl<'de> Deserialize<'de> for StringLike {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringLike;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringLike, E> {
                Ok(StringLike(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<StringLike, E> {
                Ok(StringLike(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<StringLike, E> {
                Ok(StringLike(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringLike, E> {
                Ok(StringLike(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringLike, E> {
                Ok(StringLike(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<StringLike, E> {
                Ok(StringLike(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn nullable_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<StringLike>::deserialize(d)?
        .map(|s| s.0)
        .unwrap_or_default())
}

fn nullable_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<StringLike>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.0)
        .collect())
}

fn nullable_string_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, StringLike>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// A YAML document that is not a valid configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{path}{sep}{message}", location(*line, *column), sep = if path.is_empty() { "" } else { ": " })]
pub struct YamlError {
    /// Where in the document (`route.routes[2].match[0].namspace`); empty for syntax errors.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
}

fn location(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!("line {line}, column {column}: ")
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `${VAR}` expansion failed.
    #[error("{0}")]
    Env(#[from] ExpandError),
    /// The YAML is malformed or does not fit the model.
    #[error("{0}")]
    Yaml(#[from] YamlError),
}

/// The largest configuration file read (a ConfigMap holds at most 1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The deepest nesting of flow collections (`[`, `{`) a configuration may have. The YAML parser
/// takes time quadratic in it (100,000 levels: most of a minute); no configuration needs more
/// than a few.
pub const MAX_FLOW_NESTING: usize = 128;

/// Where the flow nesting of `text` first goes deeper than [`MAX_FLOW_NESTING`], if it does. A
/// bracket counts when it can open a flow collection: at the start of a line or a value, or
/// inside another collection, and not within quotes or a comment; a template's `{{`…`}}` at a
/// line's start counts too, and closes what it opens.
fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut prev = b'\n'; // the last byte that is not a space
    let (mut line, mut line_start) = (1usize, 0usize);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' && q == b'"' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' if matches!(prev, b'\n' | b':' | b'-' | b'[' | b'{' | b',') => {
                    quote = Some(b);
                }
                b'#' if matches!(
                    bytes.get(i.wrapping_sub(1)),
                    None | Some(b' ' | b'\t' | b'\n')
                ) =>
                {
                    while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                        i += 1;
                    }
                }
                // In block context a bracket opens a collection only where a value starts.
                b'[' | b'{' if depth > 0 || matches!(prev, b'\n' | b':' | b'-') => {
                    depth += 1;
                    if depth > MAX_FLOW_NESTING {
                        return Some((line, text[line_start..i].chars().count() + 1));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
        if !matches!(b, b' ' | b'\t' | b'\r') {
            prev = b;
        }
        i += 1;
    }
    None
}

impl Config {
    /// Parses configuration text that has already been expanded.
    pub fn from_yaml(text: &str) -> Result<Self, YamlError> {
        // An empty document is an empty configuration, as upstream.
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        if let Some((line, column)) = too_deep(text) {
            return Err(YamlError {
                path: String::new(),
                message: format!("collections nested deeper than {MAX_FLOW_NESTING} levels"),
                line,
                column,
            });
        }
        let de = serde_yaml_ng::Deserializer::from_str(text);
        serde_path_to_error::deserialize::<_, Self>(de).map_err(|err| {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let (line, column) = inner.location().map_or((0, 0), |l| (l.line(), l.column()));
            let mut message = inner.to_string();
            // serde_yaml appends " at line L column C"; we report the location ourselves.
            if let Some(at) = message.rfind(" at line ") {
                message.truncate(at);
            }
            // ... and prefixes nested errors with its own path; we report ours.
            if let Some((prefix, rest)) = message.split_once(": ")
                && !prefix.contains(' ')
                && !prefix.contains('`')
            {
                message = rest.to_owned();
            }
            // `unknown field `x`, expected ...` → `x: unknown field (expected ...)`
            let (path, message) = match message.strip_prefix("unknown field `") {
                Some(rest) => match rest.split_once('`') {
                    Some((field, expected)) => {
                        // The path may or may not already end with the offending key.
                        let path = if path == "." || path.is_empty() {
                            field.to_owned()
                        } else if path == field || path.ends_with(&format!(".{field}")) {
                            path
                        } else {
                            format!("{path}.{field}")
                        };
                        let expected = expected.trim_start_matches(", ");
                        (path, format!("unknown field ({expected})"))
                    }
                    None => (path, message),
                },
                None => (if path == "." { String::new() } else { path }, message),
            };
            // serde quotes the value it refused: not a 50 MB one whole.
            YamlError {
                path: crate::redact::excerpt(&path, 200),
                message: crate::redact::excerpt(&message, 300),
                line,
                column,
            }
        })
    }

    /// Expands `${VAR}` references with `lookup`, then parses.
    pub fn load_str(
        text: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<LoadError>> {
        let (expanded, from_environment) = env::expand_recording(text, lookup)
            .map_err(|errs| errs.into_iter().map(LoadError::from).collect::<Vec<_>>())?;
        let mut config = Self::from_yaml(&expanded).map_err(|e| vec![e.into()])?;
        config.from_environment = from_environment;
        Ok(config)
    }

    /// Reads `path` (at most [`MAX_CONFIG_BYTES`]), expands `${VAR}` from the process
    /// environment and parses.
    pub fn load_file(path: &Path) -> Result<Self, Vec<LoadError>> {
        use std::io::Read as _;
        let io = |source| {
            vec![LoadError::Io {
                path: path.to_owned(),
                source,
            }]
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
            .map_err(io)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(io(std::io::Error::other(format!(
                "larger than {} MiB",
                MAX_CONFIG_BYTES >> 20
            ))));
        }
        Self::load_str(&text, |name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, YamlError> {
        Config::from_yaml(text)
    }

    #[test]
    fn reads_upstream_keys_and_aliases() {
        let cfg = parse(
            r#"
logLevel: debug
logFormat: json
maxEventAgeSeconds: 60
kubeQPS: 50
kubeBurst: 100
clusterName: prod
leaderElection: {enabled: true, leaderElectionID: ee}
watchReasons: [A, B]
route:
  routes:
    - match:
        - apiversion: v1
          mincount: 3
          labels: {version: 2}
          receiver: r
receivers:
  - name: r
    webhook: {endpoint: "http://x"}
"#,
        )
        .unwrap();
        assert_eq!(cfg.kube_qps, 50.0);
        assert!(cfg.leader_election.enabled);
        let rule = &cfg.route.routes[0].match_[0];
        assert_eq!(rule.api_version, "v1");
        assert_eq!(rule.min_count, 3);
        assert_eq!(rule.labels["version"], "2");
        assert_eq!(cfg.receivers[0].kind, "webhook");
    }

    #[test]
    fn unknown_rule_key_names_its_place_and_line() {
        let err = parse(
            "route:\n  routes:\n    - match:\n        - kind: Pod\n    - match:\n        - namspace: x\n",
        )
        .unwrap_err();
        assert_eq!(err.path, "route.routes[1].match[0].namspace");
        assert!(err.message.starts_with("unknown field"), "{err}");
        assert_eq!(err.line, 6);
        assert!(err.to_string().starts_with("line 6, column"), "{err}");
    }

    #[test]
    fn unknown_top_level_key() {
        let err = parse("recievers: []\n").unwrap_err();
        assert_eq!(err.path, "recievers");
    }

    #[test]
    fn empty_values_are_zero_values() {
        let cfg = parse("route:\n  drop:\n  match:\nreceivers:\n").unwrap();
        assert!(cfg.route.match_.is_empty());
        assert!(parse("").unwrap().receivers.is_empty());
    }

    #[test]
    fn receiver_shape_errors() {
        let err = parse("receivers:\n  - name: a\n").unwrap_err();
        assert!(err.message.contains("has no sink"), "{err}");
        let err = parse("receivers:\n  - name: a\n    stdout: {}\n    webhook: {}\n").unwrap_err();
        assert!(err.message.contains("both `stdout` and `webhook`"), "{err}");
        let err = parse("receivers:\n  - stdout: {}\n").unwrap_err();
        assert!(err.message.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn malformed_yaml_has_a_location() {
        let err = parse("route:\n  routes: [\n").unwrap_err();
        assert!(err.line > 0, "{err}");
    }

    #[test]
    fn deep_flow_nesting_is_refused_quickly() {
        let deep = format!("route: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse(&deep).unwrap_err();
        assert_eq!((err.line, err.column), (1, 8 + MAX_FLOW_NESTING));
        assert!(err.message.contains("nested deeper than 128"), "{err}");
        // Templates in block scalars, quotes and comments are not flow collections.
        let fine = format!(
            "# {open}\nreceivers:\n  - name: a\n    stdout:\n      layout:\n        t: |\n          {{{{ if .Reason }}}}{{{{ end }}}}\n        q: \"{open}\"\n        r: '{open}'\n        s: x{open}\n",
            open = "{[".repeat(200)
        );
        assert_eq!(parse(&fine).unwrap().receivers.len(), 1);
    }

    #[test]
    fn load_str_reports_env_errors() {
        let errs = Config::load_str("a: ${NOPE}\nb: ${NOPE2}", |_| None).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].to_string().contains("NOPE2"));
    }
}
