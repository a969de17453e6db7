//! What webhook, stdout and file sinks send: the layout rendered for the event, or the whole
//! enriched event in upstream's JSON shape when there is no layout; both written as Go's
//! `encoding/json` writes them.

use std::collections::BTreeMap;

use event_exporter_core::event::{EnrichedEvent, Event};
use event_exporter_core::layout::Layout;
use event_exporter_core::sink::RenderError;
use event_exporter_core::template::Template;
use event_exporter_core::{event_json, gojson};

use crate::{BuildContext, SinkConfigError};

/// Compiles a template field of a receiver; errors name the field.
pub fn compile_template(
    ctx: &BuildContext<'_>,
    field: &str,
    source: &str,
) -> Result<Template, SinkConfigError> {
    Template::parse(source).map_err(|e| ctx.error(format!("{field}: {e}")))
}

/// Renders one template field of a receiver for `event`; the error names the field. The name
/// is only formatted when rendering fails (pass `&format_args!(..)` for composed names).
pub fn render_field(
    template: &Template,
    event: Event<'_>,
    field: &dyn std::fmt::Display,
) -> Result<String, RenderError> {
    template.render_to_string(event).map_err(|e| RenderError {
        message: format!("{field}: {e}"),
    })
}

/// The body encoding shared by the webhook, stdout and file sinks.
#[derive(Debug, Clone)]
pub struct Encoding {
    layout: Option<Layout>,
    de_dot: bool,
}

impl Encoding {
    /// Compiles `layout` (a YAML map, list or string) with every template error reported.
    pub fn compile(
        ctx: &BuildContext<'_>,
        layout: Option<&serde_yaml_ng::Value>,
        de_dot: bool,
    ) -> Result<Self, Vec<SinkConfigError>> {
        let layout = match layout {
            None | Some(serde_yaml_ng::Value::Null) => None,
            Some(value) => Some(Layout::compile(value, "layout").map_err(|errs| {
                errs.into_iter()
                    .map(|e| ctx.error(e.to_string()))
                    .collect::<Vec<_>>()
            })?),
        };
        Ok(Self { layout, de_dot })
    }

    /// The JSON text for `event` (no trailing newline).
    pub fn encode(&self, event: Event<'_>) -> Result<String, RenderError> {
        if self.de_dot {
            let owned = de_dot(event);
            return self.encode_plain(owned.view());
        }
        self.encode_plain(event)
    }

    fn encode_plain(&self, event: Event<'_>) -> Result<String, RenderError> {
        match &self.layout {
            Some(layout) => {
                let mut out = String::with_capacity(256);
                layout
                    .write_json(event, &mut out, &mut String::new())
                    .map_err(|e| RenderError {
                        message: e.to_string(),
                    })?;
                Ok(out)
            }
            None => Ok(gojson::to_string(&event_json::to_go_json(event))),
        }
    }
}

fn de_dot_map(map: &mut Option<BTreeMap<String, String>>) {
    if let Some(m) = map
        && m.keys().any(|k| k.contains('.'))
    {
        *m = std::mem::take(m)
            .into_iter()
            .map(|(k, v)| (k.replace('.', "_"), v))
            .collect();
    }
}

/// Upstream's `DeDot`: dots in label and annotation keys (the event's own and the involved
/// object's) become underscores, for stores that treat dots as nesting.
pub fn de_dot(event: Event<'_>) -> EnrichedEvent {
    let mut owned = EnrichedEvent {
        event: event.raw().clone(),
        enrichment: event.enrichment().clone(),
        cluster_name: event.cluster_name().into(),
    };
    de_dot_map(&mut owned.event.metadata.labels);
    de_dot_map(&mut owned.event.metadata.annotations);
    de_dot_map(&mut owned.enrichment.labels);
    de_dot_map(&mut owned.enrichment.annotations);
    owned
}
