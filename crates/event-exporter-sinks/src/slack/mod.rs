//! The `slack` sink: messages through the Web API (`chat.postMessage` with a bot token) or an
//! incoming webhook (`webhookURL`), with the seed fork's threading.
//!
//! Config, as upstream plus the seed fork: `token`, `channel` (template), `message`, `color`,
//! `title`, `author_name`, `footer`, `fields` (attachment fields, sorted by title),
//! `threadKey`, `completionCondition`, `completionEmoji`, `cache: {name, namespace}`; plus
//! `webhookURL` and `apiURL` (default `https://slack.com/api`).
//!
//! Threading: the first event of a thread key posts the parent and remembers its channel and
//! ts; later events reply with `thread_ts`; the completion event (its `completionCondition`
//! renders non-empty) replies, reacts on the parent with `completionEmoji` and forgets the
//! thread. Deliveries of a receiver are sent one at a time, so a thread's messages stay in
//! order. Posts are paced to Slack's one message per second per channel.

pub mod threads;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use event_exporter_core::event::Event;
use event_exporter_core::gojson;
use event_exporter_core::sink::{Delivery, Header, RenderError, Request, SendError, Sink};
use event_exporter_core::template::Template;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::encode::{compile_template, render_field};
use crate::http::HttpClient;
use crate::secret::SecretsBuilder;
use crate::{BuildContext, SinkConfigError};
use event_exporter_core::redact::Secrets;
pub use threads::{
    FileThreadStore, MemoryThreadStore, ThreadInfo, ThreadStore, ThreadStoreError,
    ThreadStoreProvider,
};

/// Slack's Web API base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// `cache:` — where open threads are remembered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreadCacheConfig {
    /// The seed fork's ConfigMap name (with `namespace`): used by the cluster runtime.
    #[serde(default)]
    pub name: String,
    /// The ConfigMap's namespace.
    #[serde(default)]
    pub namespace: String,
    /// A JSON file instead of a ConfigMap (same format).
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
}

/// `slack:` receiver spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Bot token (`xoxb-…`), for the Web API.
    #[serde(default)]
    pub token: String,
    /// Channel name or ID (template).
    #[serde(default)]
    pub channel: String,
    /// Message text (template).
    #[serde(default)]
    pub message: String,
    /// Attachment color (template).
    #[serde(default)]
    pub color: String,
    /// Attachment title (template).
    #[serde(default)]
    pub title: String,
    /// Attachment author name (template).
    #[serde(default)]
    pub author_name: String,
    /// Attachment footer (template).
    #[serde(default)]
    pub footer: String,
    /// Attachment fields: title → value template.
    #[serde(default)]
    pub fields: Option<BTreeMap<String, String>>,
    /// Events whose thread key renders the same go into one thread (template).
    #[serde(default, rename = "threadKey")]
    pub thread_key: String,
    /// Renders non-empty for the event that completes a thread (template).
    #[serde(default, rename = "completionCondition")]
    pub completion_condition: String,
    /// The reaction added to the parent on completion (default `white_check_mark`).
    #[serde(default, rename = "completionEmoji")]
    pub completion_emoji: String,
    /// Where open threads are kept.
    #[serde(default)]
    pub cache: Option<ThreadCacheConfig>,
    /// An incoming-webhook URL instead of the Web API (no threading).
    #[serde(default, rename = "webhookURL")]
    pub webhook_url: String,
    /// The Web API base URL (a proxy, a Slack-compatible gateway, a test server).
    #[serde(default, rename = "apiURL")]
    pub api_url: String,
}

#[derive(Debug)]
struct Templates {
    channel: Template,
    message: Template,
    color: Option<Template>,
    title: Option<Template>,
    author_name: Option<Template>,
    footer: Option<Template>,
    /// Sorted by title (a BTreeMap's order), as upstream sorts them.
    fields: Option<Vec<(String, Template)>>,
    thread_key: Option<Template>,
    completion: Option<Template>,
}

#[derive(Debug, Clone)]
enum Target {
    WebApi { base: String, token: String },
    Webhook { url: String },
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    channel: String,
    body: Value,
    thread_key: Option<String>,
    completes: bool,
}

/// The Slack sink.
#[derive(Debug)]
pub struct SlackSink {
    name: String,
    templates: Templates,
    target: Target,
    emoji: String,
    store: Arc<dyn ThreadStore>,
    client: HttpClient,
    timeout: Duration,
    pacer: Pacer,
    secrets: Secrets,
    /// The delivery (by its unique `seq`) whose message is posted but whose follow-ups
    /// (reaction, store) are not done yet: a retry must not post it twice. One worker per
    /// receiver means one at a time.
    progress: Mutex<Option<(u64, Posted)>>,
}

/// What Slack answered to a post.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Posted {
    channel: String,
    ts: String,
}

/// Slack's escaping of message text (`&`, `<`, `>`), as upstream's client does.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn optional(
    ctx: &BuildContext<'_>,
    field: &str,
    src: &str,
    errors: &mut Vec<SinkConfigError>,
) -> Option<Template> {
    if src.is_empty() {
        return None;
    }
    compile_template(ctx, field, src)
        .map_err(|e| errors.push(e))
        .ok()
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: SlackConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    let store: Arc<dyn ThreadStore> = match (cfg.cache.as_ref(), ctx.thread_stores) {
        (
            Some(ThreadCacheConfig {
                file: Some(path), ..
            }),
            _,
        ) => Arc::new(FileThreadStore::new(path.clone())),
        (Some(c), Some(provider)) if !c.name.is_empty() && !c.namespace.is_empty() => {
            provider.configmap(&c.namespace, &c.name)
        }
        _ => Arc::new(MemoryThreadStore::default()),
    };
    Ok(Box::new(SlackSink::new(ctx, &cfg, store)?))
}

impl SlackSink {
    /// Validates `cfg` (no I/O) and builds the sink around `store`.
    pub fn new(
        ctx: &BuildContext<'_>,
        cfg: &SlackConfig,
        store: Arc<dyn ThreadStore>,
    ) -> Result<Self, Vec<SinkConfigError>> {
        let mut errors = Vec::new();
        let mut secrets = SecretsBuilder::new(ctx);
        secrets.credential(&cfg.token);
        secrets.credential(&cfg.webhook_url);
        secrets.url(&cfg.api_url);
        let target = if !cfg.webhook_url.is_empty() {
            if let Err(msg) = crate::http::check_url(&cfg.webhook_url) {
                errors.push(ctx.error(format!("webhookURL: {msg}")));
            }
            if !cfg.thread_key.is_empty() {
                errors.push(ctx.error("threadKey: threads need the Web API (`token`); incoming webhooks cannot thread"));
            }
            Target::Webhook {
                url: cfg.webhook_url.clone(),
            }
        } else {
            if cfg.token.trim().is_empty() {
                errors.push(ctx.error(
                    "token: missing (a bot token, or set webhookURL for an incoming webhook)",
                ));
            }
            if cfg.channel.trim().is_empty() {
                errors.push(ctx.error("channel: missing"));
            }
            let base = if cfg.api_url.is_empty() {
                DEFAULT_API_URL
            } else {
                cfg.api_url.trim_end_matches('/')
            };
            if let Err(msg) = crate::http::check_url(base) {
                errors.push(ctx.error(format!("apiURL: {msg}")));
            }
            Target::WebApi {
                base: base.to_owned(),
                token: cfg.token.clone(),
            }
        };
        if cfg.message.is_empty() && cfg.fields.is_none() {
            errors.push(ctx.error("message: missing (Slack refuses a message with no text)"));
        }
        if cfg
            .cache
            .as_ref()
            .is_some_and(|c| c.file.is_none() && (c.name.is_empty() || c.namespace.is_empty()))
        {
            errors.push(ctx.error("cache: needs `name` and `namespace` (a ConfigMap) or `file`"));
        }
        let channel = compile_template(ctx, "channel", &cfg.channel).map_err(|e| errors.push(e));
        let message = compile_template(ctx, "message", &cfg.message).map_err(|e| errors.push(e));
        let color = optional(ctx, "color", &cfg.color, &mut errors);
        let title = optional(ctx, "title", &cfg.title, &mut errors);
        let author_name = optional(ctx, "author_name", &cfg.author_name, &mut errors);
        let footer = optional(ctx, "footer", &cfg.footer, &mut errors);
        let thread_key = optional(ctx, "threadKey", &cfg.thread_key, &mut errors);
        let completion = optional(
            ctx,
            "completionCondition",
            &cfg.completion_condition,
            &mut errors,
        );
        let fields = cfg.fields.as_ref().map(|fields| {
            fields
                .iter()
                .filter_map(|(title, src)| {
                    compile_template(ctx, &format!("fields.{title}"), src)
                        .map_err(|e| errors.push(e))
                        .ok()
                        .map(|t| (title.clone(), t))
                })
                .collect()
        });
        let (Ok(channel), Ok(message), true) = (channel, message, errors.is_empty()) else {
            return Err(errors);
        };
        if ctx.thread_stores.is_none() && cfg.cache.as_ref().is_some_and(|c| c.file.is_none()) {
            tracing::warn!(
                receiver = ctx.name,
                "cache: a ConfigMap thread store comes with the cluster watch (event-exporter-kube); \
                 without it, as in `check` and `run --events`, threads are kept in memory"
            );
        }
        Ok(Self {
            name: ctx.name.to_owned(),
            templates: Templates {
                channel,
                message,
                color,
                title,
                author_name,
                footer,
                fields,
                thread_key,
                completion,
            },
            target,
            emoji: if cfg.completion_emoji.is_empty() {
                "white_check_mark".to_owned()
            } else {
                cfg.completion_emoji.trim_matches(':').to_owned()
            },
            store,
            secrets: secrets.build(),
            client: HttpClient::new(crate::tls::TlsSettings::default(), ctx.proxy.clone()),
            timeout: ctx.timeout,
            pacer: Pacer::new(1.0, 3.0),
            progress: Mutex::new(None),
        })
    }

    fn message(&self, event: Event<'_>) -> Result<Message, RenderError> {
        let t = &self.templates;
        let mut body = serde_json::Map::new();
        body.insert(
            "text".into(),
            Value::String(escape(&render_field(&t.message, event, &"message")?)),
        );
        let mut attachment = serde_json::Map::new();
        for (key, field, template) in [
            ("color", "color", &t.color),
            ("title", "title", &t.title),
            ("author_name", "author_name", &t.author_name),
            ("footer", "footer", &t.footer),
        ] {
            if let Some(template) = template {
                attachment.insert(
                    key.into(),
                    Value::String(render_field(template, event, &field)?),
                );
            }
        }
        if let Some(fields) = &t.fields {
            let mut out = Vec::with_capacity(fields.len());
            for (title, template) in fields {
                let value = render_field(template, event, &format_args!("fields.{title}"))?;
                out.push(json!({"title": title, "value": value, "short": false}));
            }
            attachment.insert("fields".into(), Value::Array(out));
        }
        if !attachment.is_empty() {
            body.insert(
                "attachments".into(),
                Value::Array(vec![Value::Object(attachment)]),
            );
        }
        let channel = render_field(&t.channel, event, &"channel")?;
        if let Target::WebApi { .. } = self.target {
            body.insert("channel".into(), Value::String(channel.clone()));
        }
        let thread_key = match &t.thread_key {
            Some(template) => match template.render_to_string(event) {
                Ok(key) if !key.is_empty() => Some(key),
                Ok(_) => None,
                Err(e) => {
                    // As upstream: a broken thread key posts unthreaded rather than not at all.
                    tracing::warn!(receiver = %self.name, error = %e, "threadKey failed to render; posting unthreaded");
                    None
                }
            },
            None => None,
        };
        let completes = match &t.completion {
            Some(template) => match template.render_to_string(event) {
                Ok(s) => !s.is_empty(),
                Err(e) => {
                    tracing::warn!(receiver = %self.name, error = %e, "completionCondition failed to render");
                    false
                }
            },
            None => false,
        };
        Ok(Message {
            channel,
            body: Value::Object(body),
            thread_key,
            completes,
        })
    }

    fn request(&self, method: &str, body: &Value) -> Request {
        let (url, headers) = match &self.target {
            Target::WebApi { base, token } => (
                format!("{base}/{method}"),
                vec![
                    Header::plain("Content-Type", "application/json; charset=utf-8"),
                    Header::secret("Authorization", format!("Bearer {token}")),
                ],
            ),
            Target::Webhook { url } => (
                url.clone(),
                vec![Header::plain("Content-Type", "application/json")],
            ),
        };
        Request {
            method: "POST".into(),
            url,
            headers,
            body: gojson::to_string(body),
        }
    }

    /// Calls a Web API method (or posts to the webhook) and checks Slack's answer.
    async fn call(
        &self,
        method: &str,
        body: &Value,
        ok_errors: &[&str],
    ) -> Result<Value, SendError> {
        let response = self
            .client
            .send(self.request(method, body), self.timeout)
            .await?;
        if let Target::Webhook { .. } = self.target {
            // Incoming webhooks answer plain `ok`; failures come as non-2xx statuses.
            return Ok(Value::Null);
        }
        let reply: Value = serde_json::from_str(&response.body).map_err(|_| {
            SendError::retryable(format!("slack {method}: reply is not JSON"))
                .with_body(crate::http::snippet(response.body.as_bytes()))
        })?;
        if reply.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(reply);
        }
        let code = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error");
        if ok_errors.contains(&code) {
            return Ok(reply);
        }
        Err(SendError::Transport {
            message: format!(
                "slack {method}: {}",
                event_exporter_core::redact::Brief(code)
            ),
            retryable: is_retryable_error(code),
            retry_after: None,
            status: None,
            body: None,
        })
    }

    async fn post(&self, message: &Message, thread_ts: Option<&str>) -> Result<Posted, SendError> {
        self.pacer.wait(&message.channel).await;
        let mut body = message.body.clone();
        if let (Some(ts), Value::Object(map)) = (thread_ts, &mut body) {
            map.insert("thread_ts".into(), Value::String(ts.to_owned()));
        }
        let reply = self.call("chat.postMessage", &body, &[]).await?;
        Ok(Posted {
            channel: reply
                .get("channel")
                .and_then(Value::as_str)
                .unwrap_or(&message.channel)
                .to_owned(),
            ts: reply
                .get("ts")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, Option<(u64, Posted)>> {
        // Every update is a single assignment: a poisoned lock holds a consistent value.
        self.progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn store_error(&self, e: &ThreadStoreError) -> SendError {
        SendError::retryable(format!("slack thread store: {e}"))
    }
}

/// Web API error codes a retry may fix.
pub fn is_retryable_error(code: &str) -> bool {
    matches!(
        code,
        "ratelimited"
            | "rate_limited"
            | "fatal_error"
            | "internal_error"
            | "service_unavailable"
            | "team_added_to_org"
            | "org_login_required"
    )
}

#[async_trait]
impl Sink for SlackSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    fn kind(&self) -> &'static str {
        "slack"
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        let message = self.message(event)?;
        let method = "chat.postMessage";
        Ok(vec![self.request(method, &message.body)])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let message = self.message(delivery.event.view())?;
        let Some(key) = message.thread_key.as_deref() else {
            self.post(&message, None).await?;
            return Ok(());
        };
        let parent = self
            .store
            .get(key)
            .await
            .map_err(|e| self.store_error(&e))?;
        // A retry after a successful post resumes after it.
        let done = self
            .progress()
            .clone()
            .filter(|(seq, _)| *seq == delivery.seq)
            .map(|(_, posted)| posted);
        let posted = match done {
            Some(posted) => posted,
            None => {
                let posted = self
                    .post(&message, parent.as_ref().map(|p| p.ts.as_str()))
                    .await?;
                *self.progress() = Some((delivery.seq, posted.clone()));
                posted
            }
        };
        let finish = async {
            match (&parent, message.completes) {
                (Some(parent), true) => {
                    let reaction = json!({"channel": parent.channel_id, "timestamp": parent.ts, "name": self.emoji});
                    match self
                        .call("reactions.add", &reaction, &["already_reacted"])
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_retryable() => return Err(e),
                        // The reply is posted; a reaction Slack will never accept (a missing
                        // scope, a deleted parent) must not keep the thread open for good.
                        Err(e) => {
                            tracing::warn!(receiver = %self.name, error = %e, "completion reaction refused; closing the thread without it")
                        }
                    }
                    self.store
                        .remove(key)
                        .await
                        .map_err(|e| self.store_error(&e))
                }
                (None, false) => self
                    .store
                    .set(
                        key,
                        ThreadInfo {
                            ts: posted.ts.clone(),
                            channel_id: posted.channel.clone(),
                        },
                    )
                    .await
                    .map_err(|e| self.store_error(&e)),
                // A reply in an open thread, or a completion with no thread to close.
                _ => Ok(()),
            }
        };
        let result = finish.await;
        let mut progress = self.progress();
        if result.is_ok() || !result.as_ref().is_err_and(SendError::is_retryable) {
            *progress = None;
        }
        result
    }
}

/// Paces posts per channel: a token bucket of `burst` messages refilled at `rate` per second
/// (Slack allows about one message per second per channel).
#[derive(Debug)]
struct Pacer {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Pacer {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a message may be posted to `channel`, and takes its token.
    async fn wait(&self, channel: &str) {
        let wait = {
            let mut buckets = self
                .buckets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let (tokens, last) = buckets
                .entry(channel.to_owned())
                .or_insert((self.burst, now));
            *tokens =
                (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
            *last = now;
            *tokens -= 1.0;
            if *tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-*tokens / self.rate)
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_allows_a_burst_then_one_per_second() {
        let pacer = Pacer::new(1.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            pacer.wait("#a").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.wait("#a").await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        pacer.wait("#b").await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(1),
            "channels are paced apart"
        );
        pacer.wait("#a").await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn escapes_like_slack_clients() {
        assert_eq!(escape("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
    }

    #[test]
    fn retryable_codes() {
        assert!(is_retryable_error("ratelimited"));
        assert!(is_retryable_error("internal_error"));
        assert!(!is_retryable_error("channel_not_found"));
        assert!(!is_retryable_error("invalid_auth"));
    }
}
