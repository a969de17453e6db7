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

/// What upstream finds out when it opens the file at start-up: the path is a file to append
/// to, in a directory that exists.
fn check_path(path: &std::path::Path) -> Result<(), String> {
    let shown = || event_exporter_core::redact::excerpt(&path.display().to_string(), 200);
    if path.is_dir() {
        return Err(format!("`{}` is a directory", shown()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "`{}`: the directory `{}` does not exist",
            shown(),
            event_exporter_core::redact::excerpt(&dir.display().to_string(), 200)
        ));
    }
    Ok(())
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: FileConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    if cfg.path.as_os_str().is_empty() {
        return Err(vec![ctx.error("path: must not be empty")]);
    }
    if let Err(msg) = check_path(&cfg.path) {
        return Err(vec![ctx.error(format!("path: {msg}"))]);
    }
    let encoding = Encoding::compile(ctx, cfg.layout.as_ref(), cfg.de_dot)?;
    Ok(Box::new(LineSink::new(
        ctx.name,
        "file",
        encoding,
        Output::file(cfg.path),
    )))
}
