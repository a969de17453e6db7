//! # event-exporter-sinks
//!
//! The receivers of event-exporter: [`webhook`], [`slack`], [`grafana`], [`stdout`] and [`file`](mod@file). Each sink kind has a
//! config type that validates its spec without I/O and then builds a [`Sink`]; [`build`] is
//! the one place that maps a receiver's kind (`webhook:`, `stdout:`, ...) to its builder.

pub mod delivery;
pub mod encode;
pub mod file;
pub mod grafana;
pub mod http;
pub mod lines;
pub mod proxy;
mod secret;
pub mod slack;
pub mod state;
pub mod stdout;
pub mod tls;
pub mod webhook;

use delivery::{DeliveryConfig, DeliverySettings, DispatchOptions};
use event_exporter_core::config::{Config, ReceiverConfig};
use event_exporter_core::sink::Sink;
use serde::de::DeserializeOwned;

/// A receiver whose spec is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receivers[{index}] `{receiver}` ({kind}): {message}")]
pub struct SinkConfigError {
    /// The receiver's position in `receivers`.
    pub index: usize,
    /// The receiver's name.
    pub receiver: String,
    /// The sink kind.
    pub kind: String,
    /// What is wrong, with the field (`endpoint: ...`, `layout.text: template:1:3: ...`).
    pub message: String,
}

/// What a sink builder is given.
#[derive(Debug, Clone, Copy)]
pub struct BuildContext<'a> {
    /// The receiver's position in `receivers`.
    pub index: usize,
    /// The receiver's name.
    pub name: &'a str,
    /// The sink kind.
    pub kind: &'a str,
    /// The time one request may take (`delivery.timeout`).
    pub timeout: std::time::Duration,
    /// The proxies receivers are reached through.
    pub proxy: &'a proxy::ProxySettings,
    /// Where stores that live outside this crate come from (the cluster runtime's ConfigMap
    /// thread store); `None` keeps them in memory.
    pub thread_stores: Option<&'a dyn slack::ThreadStoreProvider>,
    /// What the configuration took from the environment ([`Config::from_environment`]): a
    /// secret where it stands in a credential's place.
    pub environment: &'a [String],
}

/// What the environment gives the receivers being built: proxies and, when running in a
/// cluster, the provider of ConfigMap-backed Slack thread stores.
#[derive(Debug, Clone, Copy)]
pub struct BuildEnv<'a> {
    /// The proxies receivers are reached through.
    pub proxy: &'a proxy::ProxySettings,
    /// Makes the Slack thread store for `cache: {name, namespace}`; `None` keeps those threads
    /// in memory (with a warning).
    pub thread_stores: Option<&'a dyn slack::ThreadStoreProvider>,
    /// What the configuration took from the environment ([`Config::from_environment`];
    /// [`build_receivers_in`] takes it from the config it builds).
    pub environment: &'a [String],
}

impl<'a> BuildEnv<'a> {
    /// An environment with `proxy` and no thread store provider.
    pub fn new(proxy: &'a proxy::ProxySettings) -> Self {
        Self {
            proxy,
            thread_stores: None,
            environment: &[],
        }
    }
}

impl BuildContext<'_> {
    /// An error about this receiver. Its message is cut to a few hundred characters: it may
    /// quote a configured value, and a 50 MB one is not repeated in full.
    pub fn error(&self, message: impl Into<String>) -> SinkConfigError {
        SinkConfigError {
            index: self.index,
            receiver: event_exporter_core::redact::excerpt(self.name, 100),
            kind: event_exporter_core::redact::excerpt(self.kind, 100),
            message: event_exporter_core::redact::excerpt(&message.into(), 500),
        }
    }

    /// Deserialises the receiver's spec, with the path of the offending field in the error.
    pub fn parse<T: DeserializeOwned>(
        &self,
        spec: &serde_yaml_ng::Value,
    ) -> Result<T, SinkConfigError> {
        // `stdout:` with nothing after it is an empty spec.
        let spec = match spec {
            serde_yaml_ng::Value::Null => serde_yaml_ng::Value::Mapping(Default::default()),
            other => other.clone(),
        };
        serde_path_to_error::deserialize(spec).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if path == "." {
                self.error(inner)
            } else {
                self.error(format!("{path}: {inner}"))
            }
        })
    }
}

type Builder =
    fn(&BuildContext<'_>, &serde_yaml_ng::Value) -> Result<Box<dyn Sink>, Vec<SinkConfigError>>;

/// The sink kinds this build implements.
const KINDS: &[(&str, Builder)] = &[
    ("webhook", webhook::build),
    ("slack", slack::build),
    ("grafana", grafana::build),
    ("stdout", stdout::build),
    ("file", file::build),
];

/// Receiver kinds upstream knows that this exporter does not implement (yet).
const UPSTREAM_ONLY: &[&str] = &[
    "elasticsearch",
    "opensearch",
    "kinesis",
    "firehose",
    "opsgenie",
    "sqs",
    "sns",
    "teams",
    "kafka",
    "pubsub",
    "syslog",
    "bigquery",
    "eventbridge",
    "loki",
    "pipe",
    "inMemory",
];

/// The sink kinds that can be built.
pub fn kinds() -> impl Iterator<Item = &'static str> {
    KINDS.iter().map(|(k, _)| *k)
}

/// The delivery settings used where a receiver's `delivery:` block says nothing.
pub fn default_delivery() -> DeliverySettings {
    DeliverySettings {
        dispatch: DispatchOptions::default(),
        timeout: http::DEFAULT_TIMEOUT,
    }
}

/// Builds one receiver: its sink and its delivery settings.
pub fn build(
    index: usize,
    receiver: &ReceiverConfig,
    defaults: DeliverySettings,
    proxy: &proxy::ProxySettings,
) -> Result<(Box<dyn Sink>, DeliverySettings), Vec<SinkConfigError>> {
    build_in(index, receiver, defaults, &BuildEnv::new(proxy))
}

/// [`build`] in an explicit environment (proxies and thread store provider).
pub fn build_in(
    index: usize,
    receiver: &ReceiverConfig,
    defaults: DeliverySettings,
    env: &BuildEnv<'_>,
) -> Result<(Box<dyn Sink>, DeliverySettings), Vec<SinkConfigError>> {
    let mut ctx = BuildContext {
        index,
        name: &receiver.name,
        kind: &receiver.kind,
        timeout: defaults.timeout,
        proxy: env.proxy,
        thread_stores: env.thread_stores,
        environment: env.environment,
    };
    let settings = match &receiver.delivery {
        None => defaults,
        Some(spec) => {
            let cfg: DeliveryConfig = ctx.parse(spec).map_err(|mut e| {
                e.message = format!("delivery.{}", e.message);
                vec![e]
            })?;
            cfg.apply(defaults).map_err(|msg| vec![ctx.error(msg)])?
        }
    };
    ctx.timeout = settings.timeout;
    let Some((_, builder)) = KINDS.iter().find(|(k, _)| *k == receiver.kind) else {
        let what = if UPSTREAM_ONLY.contains(&receiver.kind.as_str()) {
            format!(
                "the `{}` receiver kind is not implemented yet",
                receiver.kind
            )
        } else {
            format!("unknown receiver kind `{}`", receiver.kind)
        };
        let available = kinds().collect::<Vec<_>>().join(", ");
        return Err(vec![ctx.error(format!("{what} (available: {available})"))]);
    };
    let sink = builder(&ctx, &receiver.spec)?;
    Ok((sink, settings))
}

/// A built receiver: its sink and its queue and retry settings.
pub type BuiltReceiver = (Box<dyn Sink>, DispatchOptions);

/// Builds every receiver of `config` with its delivery options, in order, reporting every
/// problem: invalid specs, unimplemented kinds and duplicate names. Receivers are reached
/// through the proxies the environment names (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
pub fn build_receivers(
    config: &Config,
    defaults: DeliverySettings,
) -> Result<Vec<BuiltReceiver>, Vec<SinkConfigError>> {
    build_receivers_with(config, defaults, &proxy::ProxySettings::from_env())
}

/// [`build_receivers`] with explicit proxy settings.
pub fn build_receivers_with(
    config: &Config,
    defaults: DeliverySettings,
    proxy: &proxy::ProxySettings,
) -> Result<Vec<BuiltReceiver>, Vec<SinkConfigError>> {
    build_receivers_in(config, defaults, &BuildEnv::new(proxy))
}

/// [`build_receivers`] in an explicit environment: proxies and, in a cluster, the provider of
/// ConfigMap-backed Slack thread stores.
pub fn build_receivers_in(
    config: &Config,
    defaults: DeliverySettings,
    env: &BuildEnv<'_>,
) -> Result<Vec<BuiltReceiver>, Vec<SinkConfigError>> {
    let env = BuildEnv {
        environment: &config.from_environment,
        ..*env
    };
    let env = &env;
    let mut built = Vec::with_capacity(config.receivers.len());
    let mut errors = check_names(config).err().unwrap_or_default();
    for (index, receiver) in config.receivers.iter().enumerate() {
        if errors.iter().any(|e| e.index == index) {
            continue;
        }
        match build_in(index, receiver, defaults, env) {
            Ok((sink, settings)) => built.push((sink, settings.dispatch)),
            Err(mut errs) => errors.append(&mut errs),
        }
    }
    if errors.is_empty() {
        Ok(built)
    } else {
        Err(errors)
    }
}

/// Builds every receiver's sink (with the default delivery settings where none are given),
/// reporting every problem.
pub fn build_all(config: &Config) -> Result<Vec<Box<dyn Sink>>, Vec<SinkConfigError>> {
    build_receivers(config, default_delivery()).map(|b| b.into_iter().map(|(s, _)| s).collect())
}

/// Checks that receiver names are unique (and not empty), reporting every duplicate.
pub fn check_names(config: &Config) -> Result<(), Vec<SinkConfigError>> {
    let mut errors = Vec::new();
    for (index, receiver) in config.receivers.iter().enumerate() {
        let error = |message: String| SinkConfigError {
            index,
            receiver: event_exporter_core::redact::excerpt(&receiver.name, 100),
            kind: event_exporter_core::redact::excerpt(&receiver.kind, 100),
            message,
        };
        if receiver.name.trim().is_empty() {
            errors.push(error("name: must not be empty".into()));
        } else if let Some(first) = config.receivers[..index]
            .iter()
            .position(|r| r.name == receiver.name)
        {
            errors.push(error(format!(
                "duplicate receiver name (first defined at receivers[{first}])"
            )));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Whether a header value looks like a credential whatever its header's name: an
/// `Authorization`-style value (`Bearer …`, `Basic …`, `token …`) or a token of a well-known
/// shape (Slack `xox?-`, Grafana `glsa_`, GitHub `ghp_`/`github_pat_`).
pub fn looks_like_credential(value: &str) -> bool {
    let lower = value.trim_start().to_ascii_lowercase();
    [
        "bearer ",
        "basic ",
        "token ",
        "apikey ",
        "sharedaccesssignature ",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || [
            "xoxb-",
            "xoxp-",
            "xoxa-",
            "xoxr-",
            "xoxs-",
            "xoxe-",
            "glsa_",
            "ghp_",
            "github_pat_",
        ]
        .iter()
        .any(|t| lower.contains(t))
}

/// Whether a header carries a secret, judged by its name (`Authorization`, `X-Api-Key`,
/// `Ocp-Apim-Subscription-Key`, `X-Auth-Token`, `Cookie`, …). A header whose value comes from
/// the environment, or looks like a credential ([`looks_like_credential`]), is secret whatever
/// its name.
pub fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "auth",
        "token",
        "secret",
        "password",
        "key",
        "cookie",
        "signature",
        "credential",
        "session",
    ]
    .iter()
    .any(|needle| lower.contains(needle))
}
