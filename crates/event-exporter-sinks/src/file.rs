//! The `file` receiver: one JSON line per event appended to a file (`path`, `layout`, `deDot` as
//! upstream).

use std::path::PathBuf;

use event_exporter_core::sink::Sink;
use serde::Deserialize;

use crate::encode::Encoding;
use crate::lines::{LineSink, Output};
use crate::{BuildContext, SinkConfigError};

/// `file:` receiver spec.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileConfig {
    /// The file to append to (created if missing).
    pub path: PathBuf,
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
    let cfg: FileConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    if cfg.path.as_os_str().is_empty() {
        return Err(vec![ctx.error("path: must not be empty")]);
    }
    let encoding = Encoding::compile(ctx, cfg.layout.as_ref(), cfg.de_dot)?;
    Ok(Box::new(LineSink::new(
        ctx.name,
        "file",
        encoding,
        Output::file(cfg.path),
    )))
}
