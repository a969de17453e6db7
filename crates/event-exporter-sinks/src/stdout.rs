//! The `stdout` receiver: one JSON line per event on standard output, as upstream (`layout` and
//! `deDot` as upstream).

use event_exporter_core::sink::Sink;
use serde::Deserialize;

use crate::encode::Encoding;
use crate::lines::{LineSink, Output};
use crate::{BuildContext, SinkConfigError};

/// `stdout:` receiver spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StdoutConfig {
    /// Rewrite dots in label and annotation keys to underscores.
    #[serde(default)]
    pub de_dot: bool,
    /// The layout; without one the whole event is written.
    #[serde(default)]
    pub layout: Option<serde_yaml_ng::Value>,
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: StdoutConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    let encoding = Encoding::compile(ctx, cfg.layout.as_ref(), cfg.de_dot)?;
    Ok(Box::new(LineSink::new(
        ctx.name,
        "stdout",
        encoding,
        Output::stdout(),
    )))
}
