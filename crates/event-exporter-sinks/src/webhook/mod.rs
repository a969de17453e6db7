//! The `webhook` sink, as upstream: an HTTP request to `endpoint` (POST unless `method` says
//! otherwise) whose body is the rendered `layout` as JSON, or the whole enriched event when
//! there is no layout; `headers` values are templates. `Content-Type: application/json` is
//! sent unless `headers` sets its own (upstream sends both).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use event_exporter_core::event::Event;
use event_exporter_core::sink::{Delivery, Header, RenderError, Request, SendError, Sink};
use event_exporter_core::template::Template;
use serde::Deserialize;

use crate::encode::{Encoding, compile_template, render_field};
use crate::http::HttpClient;
use crate::secret::SecretsBuilder;
use crate::tls::TlsSettings;
use crate::{BuildContext, SinkConfigError, is_sensitive_header};
use event_exporter_core::redact::Secrets;

/// `webhook:` receiver spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    /// Where to send (a template).
    #[serde(default)]
    pub endpoint: String,
    /// HTTP method (default POST).
    #[serde(default)]
    pub method: Option<String>,
    /// Extra headers; values are templates.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body layout; without one the whole event is sent.
    #[serde(default)]
    pub layout: Option<serde_yaml_ng::Value>,
    /// TLS options.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
}

#[derive(Debug)]
struct HeaderTemplate {
    name: String,
    value: Template,
    sensitive: bool,
}

/// Builds webhook requests from events: the pure half of the webhook sink.
#[derive(Debug)]
pub struct WebhookRequestBuilder {
    method: String,
    endpoint: Template,
    headers: Vec<HeaderTemplate>,
    encoding: Encoding,
    secrets: Secrets,
}

impl WebhookRequestBuilder {
    /// Validates and compiles `cfg` (no I/O).
    pub fn new(ctx: &BuildContext<'_>, cfg: &WebhookConfig) -> Result<Self, Vec<SinkConfigError>> {
        let mut errors = Vec::new();
        let mut secrets = SecretsBuilder::new(ctx);
        secrets.url(&cfg.endpoint);
        if cfg.endpoint.trim().is_empty() {
            errors.push(ctx.error("endpoint: missing (the URL to send events to)"));
        }
        let endpoint = compile_template(ctx, "endpoint", &cfg.endpoint).map_err(|e| errors.push(e));
        if let Ok(t) = &endpoint
            && let Some(url) = t.as_literal().filter(|u| !u.trim().is_empty())
            && let Err(msg) = crate::http::check_url(url)
        {
            errors.push(ctx.error(format!("endpoint: {msg}")));
        }
        let method = cfg
            .method
            .clone()
            .unwrap_or_else(|| "POST".to_owned())
            .to_ascii_uppercase();
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            errors.push(ctx.error(format!("method: `{method}` is not an HTTP method")));
        }
        let mut headers = Vec::new();
        let has_content_type = cfg
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"));
        if !has_content_type {
            headers.push(HeaderTemplate {
                name: "Content-Type".into(),
                value: compile_template(ctx, "headers.Content-Type", "application/json")
                    .map_err(|e| vec![e])?,
                sensitive: false,
            });
        }
        for (name, value) in &cfg.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(ctx.error(format!("headers: `{name}` is not a valid header name")));
                continue;
            }
            // A header is secret by its name, or because its value came from the environment.
            let from_env = secrets.environment_in(value);
            let sensitive =
                is_sensitive_header(name) || from_env || crate::looks_like_credential(value);
            match compile_template(ctx, &format!("headers.{name}"), value) {
                Ok(template) => {
                    if sensitive && let Some(literal) = template.as_literal() {
                        secrets.credential(literal);
                    }
                    headers.push(HeaderTemplate {
                        name: name.clone(),
                        value: template,
                        sensitive,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        let encoding = Encoding::compile(ctx, cfg.layout.as_ref(), false)
            .map_err(|mut e| errors.append(&mut e));
        match (endpoint, encoding) {
            (Ok(endpoint), Ok(encoding)) if errors.is_empty() => Ok(Self {
                method,
                endpoint,
                headers,
                encoding,
                secrets: secrets.build(),
            }),
            _ => Err(errors),
        }
    }

    /// The request for `event`.
    pub fn build(&self, event: Event<'_>) -> Result<Request, RenderError> {
        let mut headers = Vec::with_capacity(self.headers.len());
        for h in &self.headers {
            headers.push(Header {
                name: h.name.clone(),
                value: render_field(&h.value, event, &format_args!("headers.{}", h.name))?,
                sensitive: h.sensitive,
            });
        }
        Ok(Request {
            method: self.method.clone(),
            url: render_field(&self.endpoint, event, &"endpoint")?,
            headers,
            body: self.encoding.encode(event)?,
        })
    }
}

/// The webhook sink.
#[derive(Debug)]
pub struct WebhookSink {
    name: String,
    builder: WebhookRequestBuilder,
    client: HttpClient,
    timeout: Duration,
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: WebhookConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    let builder = WebhookRequestBuilder::new(ctx, &cfg);
    let tls = TlsSettings::load(&cfg.tls.unwrap_or_default()).map_err(|e| ctx.error(e));
    let (builder, tls) = match (builder, tls) {
        (Ok(b), Ok(t)) => (b, t),
        (b, t) => {
            let mut errors = b.err().unwrap_or_default();
            errors.extend(t.err());
            return Err(errors);
        }
    };
    Ok(Box::new(WebhookSink {
        name: ctx.name.to_owned(),
        builder,
        client: HttpClient::new(tls, ctx.proxy.clone()),
        timeout: ctx.timeout,
    }))
}

#[async_trait]
impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> &Secrets {
        &self.builder.secrets
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        Ok(vec![self.builder.build(event)?])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let request = self.builder.build(delivery.event.view())?;
        self.client.send(request, self.timeout).await.map(|_| ())
    }
}
