//! Layouts: a receiver's recursive map/list of Go templates, rendered into a JSON value.
//!
//! As upstream, every string in a layout is a template; maps and lists nest; the rendered value
//! is serialised with Go's `json.Marshal` habits ([`crate::gojson`]), so map keys come out
//! sorted. One deliberate departure: a non-string scalar (`panelId: 3`, `isRegion: true`) stays
//! a JSON number or boolean, where upstream sends `null`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::event::Event;
use crate::template::{Budget, MAX_OUTPUT, RenderError, Template, TemplateError};

/// A compiled layout.
#[derive(Debug, Clone)]
pub enum Layout {
    /// A string: a template.
    Template(Template),
    /// A map of layouts (keys are not templates).
    Map(BTreeMap<String, Layout>),
    /// A list of layouts.
    List(Vec<Layout>),
    /// A number, boolean or null, sent as it is.
    Scalar(serde_json::Value),
}

/// A template in a layout that does not compile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{place}: {source}")]
pub struct LayoutError {
    /// Where in the layout (`layout.tags[2]`), relative to the place given to `compile`.
    pub place: String,
    /// The template error.
    pub source: TemplateError,
}

/// A layout that failed to render for one event.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{place}: {source}")]
pub struct LayoutRenderError {
    /// Where in the layout.
    pub place: String,
    /// The template error.
    pub source: RenderError,
}

fn key_string(key: &serde_yaml_ng::Value) -> String {
    match key {
        serde_yaml_ng::Value::String(s) => s.clone(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Null => "null".to_owned(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim_end()
            .to_owned(),
    }
}

fn scalar(value: &serde_yaml_ng::Value) -> serde_json::Value {
    match value {
        serde_yaml_ng::Value::Bool(b) => serde_json::Value::Bool(*b),
        serde_yaml_ng::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into()
            } else if let Some(u) = n.as_u64() {
                u.into()
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number)
            }
        }
        _ => serde_json::Value::Null,
    }
}

impl Layout {
    /// Compiles every template in `value`; `place` prefixes error places (e.g.
    /// `receivers[0].webhook.layout`). Every broken template is reported.
    pub fn compile(value: &serde_yaml_ng::Value, place: &str) -> Result<Self, Vec<LayoutError>> {
        let mut errors = Vec::new();
        let layout = Self::compile_into(value, place, &mut errors);
        if errors.is_empty() {
            Ok(layout)
        } else {
            Err(errors)
        }
    }

    fn compile_into(
        value: &serde_yaml_ng::Value,
        place: &str,
        errors: &mut Vec<LayoutError>,
    ) -> Self {
        use serde_yaml_ng::Value as Y;
        match value {
            Y::String(s) => match Template::parse(s) {
                Ok(t) => Layout::Template(t),
                Err(source) => {
                    errors.push(LayoutError {
                        place: place.to_owned(),
                        source,
                    });
                    Layout::Scalar(serde_json::Value::Null)
                }
            },
            Y::Mapping(map) => Layout::Map(
                map.iter()
                    .map(|(k, v)| {
                        let key = key_string(k);
                        let child = Self::compile_into(v, &format!("{place}.{key}"), errors);
                        (key, child)
                    })
                    .collect(),
            ),
            Y::Sequence(items) => Layout::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Self::compile_into(v, &format!("{place}[{i}]"), errors))
                    .collect(),
            ),
            Y::Tagged(tagged) => Self::compile_into(&tagged.value, place, errors),
            other => Layout::Scalar(scalar(other)),
        }
    }

    /// Renders the layout for `event`. Like one template, a whole layout renders at most
    /// [`MAX_OUTPUT`] bytes.
    pub fn render(&self, event: Event<'_>) -> Result<serde_json::Value, LayoutRenderError> {
        self.render_at(event, &mut String::new(), &mut 0, &mut Budget::new())
    }

    /// Renders the layout for `event` straight into JSON text, exactly as
    /// `gojson::write_compact(&self.render(event)?)` would, without building the value.
    /// `scratch` is a reusable buffer for template output.
    pub fn write_json(
        &self,
        event: Event<'_>,
        out: &mut String,
        scratch: &mut String,
    ) -> Result<(), LayoutRenderError> {
        let start = out.len();
        if self
            .write_into(event, out, scratch, &mut Budget::new())
            .is_err()
        {
            // Errors are rare: render again the slow way to say where it failed (or, should
            // that succeed, to write its result instead of the half-written one).
            out.truncate(start);
            let value = self.render(event)?;
            crate::gojson::write_compact(&value, out);
        }
        Ok(())
    }

    /// `budget`: the steps the whole layout may take (its templates share them).
    fn write_into(
        &self,
        event: Event<'_>,
        out: &mut String,
        scratch: &mut String,
        budget: &mut Budget,
    ) -> Result<(), RenderError> {
        match self {
            Layout::Template(t) => {
                scratch.clear();
                t.render_with(event, scratch, budget)?;
                crate::gojson::write_string(scratch, out);
                if out.len() > MAX_OUTPUT {
                    return Err(too_large());
                }
            }
            // A BTreeMap iterates in byte order of its keys: the order Go sorts them in.
            Layout::Map(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    crate::gojson::write_string(k, out);
                    out.push(':');
                    v.write_into(event, out, scratch, budget)?;
                }
                out.push('}');
            }
            Layout::List(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_into(event, out, scratch, budget)?;
                }
                out.push(']');
            }
            Layout::Scalar(v) => crate::gojson::write_compact(v, out),
        }
        Ok(())
    }

    /// `total`: the bytes the layout's templates have rendered so far; `budget`: the steps
    /// they may still take.
    fn render_at(
        &self,
        event: Event<'_>,
        place: &mut String,
        total: &mut usize,
        budget: &mut Budget,
    ) -> Result<serde_json::Value, LayoutRenderError> {
        Ok(match self {
            Layout::Template(t) => {
                let error = |source| LayoutRenderError {
                    place: format!("layout{place}"),
                    source,
                };
                let mut text = String::new();
                t.render_with(event, &mut text, budget).map_err(error)?;
                *total += text.len();
                if *total > MAX_OUTPUT {
                    return Err(error(too_large()));
                }
                serde_json::Value::String(text)
            }
            Layout::Map(map) => {
                let mut out = serde_json::Map::new();
                for (k, v) in map {
                    let len = place.len();
                    place.push('.');
                    place.push_str(k);
                    let rendered = v.render_at(event, place, total, budget);
                    place.truncate(len);
                    out.insert(k.clone(), rendered?);
                }
                serde_json::Value::Object(out)
            }
            Layout::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    let len = place.len();
                    let _ = write!(place, "[{i}]");
                    let rendered = v.render_at(event, place, total, budget);
                    place.truncate(len);
                    out.push(rendered?);
                }
                serde_json::Value::Array(out)
            }
            Layout::Scalar(v) => v.clone(),
        })
    }
}

/// The error of a layout whose templates together render more than [`MAX_OUTPUT`].
fn too_large() -> RenderError {
    RenderError {
        message: format!("the layout renders more than {} MiB", MAX_OUTPUT >> 20),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EnrichedEvent;

    #[test]
    fn a_layout_is_bounded_as_a_whole() {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            r#"{a: '{{ repeat 4000000 "x" }}', b: ['{{ repeat 4000000 "y" }}', '{{ repeat 4000000 "z" }}']}"#,
        )
        .expect("yaml");
        let layout = Layout::compile(&yaml, "layout").expect("compiles");
        let event = EnrichedEvent::default();
        let err = layout.render(event.view()).expect_err("too large");
        assert!(err.to_string().contains("more than 8 MiB"), "{err}");
        let mut out = String::new();
        let err = layout
            .write_json(event.view(), &mut out, &mut String::new())
            .expect_err("too large");
        assert!(err.to_string().contains("more than 8 MiB"), "{err}");
    }

    #[test]
    fn a_layouts_templates_share_one_step_budget() {
        // Each alone takes about half the budget; three together take more than all of it.
        let busy = r#"'{{ range until 100000 }}{{ . }}{{ end }}'"#;
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&format!("{{a: {busy}, b: {busy}, c: {busy}}}")).unwrap();
        let layout = Layout::compile(&yaml, "layout").expect("compiles");
        let event = EnrichedEvent::default();
        let err = layout
            .write_json(event.view(), &mut String::new(), &mut String::new())
            .expect_err("over budget");
        assert!(err.to_string().contains("steps"), "{err}");
        let one: serde_yaml_ng::Value = serde_yaml_ng::from_str(&format!("{{a: {busy}}}")).unwrap();
        let one = Layout::compile(&one, "layout").expect("compiles");
        assert!(one.render(event.view()).is_ok());
    }
}
