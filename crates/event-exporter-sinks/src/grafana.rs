//! The `grafana` sink: Grafana annotations through the HTTP API.
//!
//! - `api: annotations` (default): `POST /api/annotations` with `text`, `tags`, `time` (the
//!   event's occurrence, epoch ms) and, when set, `dashboardUID` and `panelId`.
//! - `api: graphite`: `POST /api/annotations/graphite` with `what`, `tags`, `when` (epoch
//!   seconds) and `data`; Grafana stores the text `what\ndata` as an organisation annotation.
//! - Regions: with `regionKey` (and `endCondition`), the first event of a key creates the
//!   annotation and remembers its id; the event whose `endCondition` renders non-empty PATCHes
//!   `timeEnd`, so an upgrade shows as a span. An end with no known start is a point annotation.
//!
//! Auth: `token` (`Authorization: Bearer`) or `username`/`password` (Basic); `orgId` sends
//! `X-Grafana-Org-Id`. Retries: 5xx, 429 and network errors; 400/401/403/404 are permanent.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use base64::Engine as _;
use event_exporter_core::event::Event;
use event_exporter_core::gojson;
use event_exporter_core::sink::{Delivery, Header, RenderError, Request, SendError, Sink};
use event_exporter_core::template::Template;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::encode::{compile_template, render_field};
use crate::http::HttpClient;
use crate::secret::SecretsBuilder;
use crate::{BuildContext, SinkConfigError};
use event_exporter_core::redact::Secrets;

/// Which annotations API to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrafanaApi {
    /// `POST /api/annotations` (regions possible).
    #[default]
    Annotations,
    /// `POST /api/annotations/graphite`.
    Graphite,
}

/// `grafana:` receiver spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrafanaConfig {
    /// Grafana's base URL.
    #[serde(default)]
    pub url: String,
    /// A service-account token (Bearer).
    #[serde(default)]
    pub token: String,
    /// Basic-auth user (with `password`), instead of a token.
    #[serde(default)]
    pub username: String,
    /// Basic-auth password.
    #[serde(default)]
    pub password: String,
    /// The organisation (`X-Grafana-Org-Id`).
    #[serde(default)]
    pub org_id: Option<u64>,
    /// The dashboard to annotate (annotations API only).
    #[serde(default, rename = "dashboardUID")]
    pub dashboard_uid: String,
    /// The panel to annotate (annotations API only).
    #[serde(default)]
    pub panel_id: Option<u64>,
    /// Tags (each a template).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The annotation text (template; annotations API).
    #[serde(default)]
    pub text: String,
    /// `annotations` or `graphite`.
    #[serde(default)]
    pub api: GrafanaApi,
    /// The graphite `what` (template).
    #[serde(default)]
    pub what: String,
    /// The graphite `data` (template).
    #[serde(default)]
    pub data: String,
    /// Events with the same rendered key form one region (template).
    #[serde(default)]
    pub region_key: String,
    /// Renders non-empty for the event that ends a region (template).
    #[serde(default)]
    pub end_condition: String,
    /// TLS options, as for webhooks.
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
}

#[derive(Debug)]
enum Body {
    Annotation {
        text: Template,
    },
    Graphite {
        what: Template,
        data: Option<Template>,
    },
}

/// Open regions: region key → annotation id. Bounded: the oldest is forgotten past the limit.
#[derive(Debug, Default)]
struct Regions {
    ids: HashMap<String, (u64, u64)>,
    clock: u64,
}

const MAX_OPEN_REGIONS: usize = 10_000;

impl Regions {
    fn get(&self, key: &str) -> Option<u64> {
        self.ids.get(key).map(|(id, _)| *id)
    }
    fn insert(&mut self, key: String, id: u64) {
        self.clock += 1;
        if self.ids.len() >= MAX_OPEN_REGIONS
            && !self.ids.contains_key(&key)
            && let Some(oldest) = self
                .ids
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            self.ids.remove(&oldest);
        }
        self.ids.insert(key, (id, self.clock));
    }
    fn remove(&mut self, key: &str) {
        self.ids.remove(key);
    }
}

/// The Grafana sink.
#[derive(Debug)]
pub struct GrafanaSink {
    name: String,
    base: String,
    auth: Option<String>,
    org_id: Option<u64>,
    dashboard_uid: Option<String>,
    panel_id: Option<u64>,
    tags: Vec<Template>,
    body: Body,
    region_key: Option<Template>,
    end_condition: Option<Template>,
    client: HttpClient,
    timeout: std::time::Duration,
    regions: Mutex<Regions>,
    secrets: Secrets,
}

struct Rendered {
    body: Value,
    region: Option<String>,
    ends: bool,
    time_ms: i64,
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: GrafanaConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    Ok(Box::new(GrafanaSink::new(ctx, &cfg)?))
}

impl GrafanaSink {
    /// Validates `cfg` (no I/O) and builds the sink.
    pub fn new(ctx: &BuildContext<'_>, cfg: &GrafanaConfig) -> Result<Self, Vec<SinkConfigError>> {
        let mut errors = Vec::new();
        let base = cfg.url.trim_end_matches('/').to_owned();
        if base.is_empty() {
            errors.push(ctx.error("url: missing (Grafana's base URL)"));
        } else if let Err(msg) = crate::http::check_url(&base) {
            errors.push(ctx.error(format!("url: {msg}")));
        }
        let mut secrets = SecretsBuilder::new(ctx);
        secrets.url(&cfg.url);
        secrets.credential(&cfg.token);
        secrets.credential(&cfg.password);
        let auth = match (cfg.token.is_empty(), cfg.username.is_empty()) {
            (false, true) => Some(format!("Bearer {}", cfg.token)),
            (true, false) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", cfg.username, cfg.password))
            )),
            (false, false) => {
                errors.push(ctx.error("token, username: use a token or basic auth, not both"));
                None
            }
            (true, true) => {
                errors.push(
                    ctx.error("token: missing (a service-account token, or username and password)"),
                );
                None
            }
        };
        if let Some(auth) = &auth {
            secrets.credential(auth);
        }
        let mut template = |field: &str, src: &str| {
            compile_template(ctx, field, src)
                .map_err(|e| errors.push(e))
                .ok()
        };
        let tags: Vec<Template> = cfg
            .tags
            .iter()
            .enumerate()
            .filter_map(|(i, t)| template(&format!("tags[{i}]"), t))
            .collect();
        let region_key = (!cfg.region_key.is_empty())
            .then(|| template("regionKey", &cfg.region_key))
            .flatten();
        let end_condition = (!cfg.end_condition.is_empty())
            .then(|| template("endCondition", &cfg.end_condition))
            .flatten();
        let body = match cfg.api {
            GrafanaApi::Annotations => {
                if cfg.text.is_empty() {
                    errors.push(
                        ctx.error("text: missing (Grafana refuses an annotation without text)"),
                    );
                }
                if !cfg.what.is_empty() || !cfg.data.is_empty() {
                    errors.push(ctx.error("what, data: only for `api: graphite` (use `text`)"));
                }
                compile_template(ctx, "text", &cfg.text)
                    .map_err(|e| errors.push(e))
                    .ok()
                    .map(|text| Body::Annotation { text })
            }
            GrafanaApi::Graphite => {
                if cfg.what.is_empty() {
                    errors.push(ctx.error("what: missing (required by the graphite API)"));
                }
                if !cfg.text.is_empty() {
                    errors.push(
                        ctx.error("text: not used by `api: graphite` (use `what` and `data`)"),
                    );
                }
                if !cfg.region_key.is_empty()
                    || !cfg.dashboard_uid.is_empty()
                    || cfg.panel_id.is_some()
                {
                    errors.push(ctx.error(
                        "regionKey, dashboardUID, panelId: the graphite API makes organisation point annotations only (use `api: annotations`)",
                    ));
                }
                let data = (!cfg.data.is_empty())
                    .then(|| {
                        compile_template(ctx, "data", &cfg.data)
                            .map_err(|e| errors.push(e))
                            .ok()
                    })
                    .flatten();
                compile_template(ctx, "what", &cfg.what)
                    .map_err(|e| errors.push(e))
                    .ok()
                    .map(|what| Body::Graphite { what, data })
            }
        };
        if cfg.region_key.is_empty() != cfg.end_condition.is_empty() {
            errors.push(ctx.error("regionKey, endCondition: a region needs both"));
        }
        let tls = crate::tls::TlsSettings::load(&cfg.tls.clone().unwrap_or_default())
            .map_err(|e| errors.push(ctx.error(e)))
            .unwrap_or_default();
        let (Some(body), true) = (body, errors.is_empty()) else {
            return Err(errors);
        };
        Ok(Self {
            name: ctx.name.to_owned(),
            base,
            auth,
            org_id: cfg.org_id,
            dashboard_uid: (!cfg.dashboard_uid.is_empty()).then(|| cfg.dashboard_uid.clone()),
            panel_id: cfg.panel_id,
            tags,
            body,
            region_key,
            end_condition,
            client: HttpClient::new(tls, ctx.proxy.clone()),
            timeout: ctx.timeout,
            regions: Mutex::new(Regions::default()),
            secrets: secrets.build(),
        })
    }

    fn render_event(&self, event: Event<'_>) -> Result<Rendered, RenderError> {
        let mut tags = Vec::with_capacity(self.tags.len());
        for (i, t) in self.tags.iter().enumerate() {
            tags.push(Value::String(render_field(
                t,
                event,
                &format_args!("tags[{i}]"),
            )?));
        }
        // An event with no time at all is annotated now (a PATCH with timeEnd 0 would be
        // ignored by Grafana).
        let time_ms = event.occurred_at_ms().unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let body = match &self.body {
            Body::Annotation { text } => {
                let mut body = json!({"text": render_field(text, event, &"text")?, "tags": tags, "time": time_ms});
                if let Value::Object(map) = &mut body {
                    if let Some(uid) = &self.dashboard_uid {
                        map.insert("dashboardUID".into(), Value::String(uid.clone()));
                    }
                    if let Some(panel) = self.panel_id {
                        map.insert("panelId".into(), panel.into());
                    }
                }
                body
            }
            Body::Graphite { what, data } => {
                let mut body = json!({"what": render_field(what, event, &"what")?, "tags": tags, "when": time_ms / 1000});
                if let (Some(data), Value::Object(map)) = (data, &mut body) {
                    map.insert(
                        "data".into(),
                        Value::String(render_field(data, event, &"data")?),
                    );
                }
                body
            }
        };
        let region = match &self.region_key {
            Some(t) => Some(render_field(t, event, &"regionKey")?).filter(|k| !k.is_empty()),
            None => None,
        };
        let ends = match &self.end_condition {
            Some(t) => !render_field(t, event, &"endCondition")?.is_empty(),
            None => false,
        };
        Ok(Rendered {
            body,
            region,
            ends,
            time_ms,
        })
    }

    fn request(&self, method: &str, path: &str, body: &Value) -> Request {
        let mut headers = vec![
            Header::plain("Content-Type", "application/json"),
            Header::plain("Accept", "application/json"),
        ];
        if let Some(auth) = &self.auth {
            headers.push(Header::secret("Authorization", auth.clone()));
        }
        if let Some(org) = self.org_id {
            headers.push(Header::plain("X-Grafana-Org-Id", org.to_string()));
        }
        let url = format!("{}{path}", self.base);
        Request {
            method: method.into(),
            url,
            headers,
            body: gojson::to_string(body),
        }
    }

    fn regions(&self) -> std::sync::MutexGuard<'_, Regions> {
        // Every update is a single map operation: a poisoned lock holds a consistent map.
        self.regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create_path(&self) -> &'static str {
        match self.body {
            Body::Annotation { .. } => "/api/annotations",
            Body::Graphite { .. } => "/api/annotations/graphite",
        }
    }

    async fn create(&self, body: &Value) -> Result<u64, SendError> {
        let reply = self
            .client
            .send(self.request("POST", self.create_path(), body), self.timeout)
            .await?;
        let id = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_u64));
        id.ok_or_else(|| {
            SendError::permanent("grafana: created, but the reply has no annotation id")
                .with_body(crate::http::snippet(reply.body.as_bytes()))
        })
    }
}

#[async_trait]
impl Sink for GrafanaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    fn kind(&self) -> &'static str {
        "grafana"
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        let rendered = self.render_event(event)?;
        Ok(vec![self.request(
            "POST",
            self.create_path(),
            &rendered.body,
        )])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let rendered = self.render_event(delivery.event.view())?;
        let Some(key) = rendered.region else {
            self.create(&rendered.body).await?;
            return Ok(());
        };
        let open = self.regions().get(&key);
        match (open, rendered.ends) {
            (Some(id), true) => {
                let patch = json!({"timeEnd": rendered.time_ms});
                let result = self
                    .client
                    .send(
                        self.request("PATCH", &format!("/api/annotations/{id}"), &patch),
                        self.timeout,
                    )
                    .await;
                match result {
                    Ok(_) => {}
                    // The start annotation is gone (deleted, or another org): mark the end.
                    Err(e) if e.status() == Some(404) => {
                        self.create(&rendered.body).await?;
                    }
                    Err(e) => {
                        if !e.is_retryable() {
                            // It will never close: do not keep it open.
                            self.regions().remove(&key);
                        }
                        return Err(e);
                    }
                }
                self.regions().remove(&key);
            }
            // A region already open: a further event inside it is a point annotation.
            (Some(_), false) | (None, true) => {
                self.create(&rendered.body).await?;
            }
            (None, false) => {
                let id = self.create(&rendered.body).await?;
                self.regions().insert(key, id);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_bounded() {
        let mut r = Regions::default();
        for i in 0..(MAX_OPEN_REGIONS as u64 + 5) {
            r.insert(format!("k{i}"), i);
        }
        assert_eq!(r.ids.len(), MAX_OPEN_REGIONS);
        assert_eq!(r.get("k0"), None, "the oldest is forgotten first");
        assert_eq!(
            r.get(&format!("k{}", MAX_OPEN_REGIONS as u64 + 4)),
            Some(MAX_OPEN_REGIONS as u64 + 4)
        );
        r.remove("k10");
        assert_eq!(r.get("k10"), None);
    }
}
