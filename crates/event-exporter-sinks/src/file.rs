//! The `file` sink: one JSON line per event appended to a file (`path`, `layout`, `deDot` as
//! upstream).

use std::path::PathBuf;

use async_trait::async_trait;
use event_exporter_core::event::Event;
use event_exporter_core::sink::{Delivery, RenderError, Request, SendError, Sink};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::encode::Encoding;
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

/// Appends JSON lines to a file. The file is opened on the first delivery, so building the
/// sink (and `check`) does no I/O.
#[derive(Debug)]
pub struct FileSink {
    name: String,
    path: PathBuf,
    encoding: Encoding,
    file: Mutex<Option<tokio::fs::File>>,
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: FileConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    if cfg.path.as_os_str().is_empty() {
        return Err(vec![ctx.error("path: must not be empty")]);
    }
    Ok(Box::new(FileSink {
        name: ctx.name.to_owned(),
        encoding: Encoding::compile(ctx, cfg.layout.as_ref(), cfg.de_dot)?,
        path: cfg.path,
        file: Mutex::new(None),
    }))
}

#[async_trait]
impl Sink for FileSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "file"
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        Ok(vec![Request {
            method: "WRITE".into(),
            url: format!("file://{}", self.path.display()),
            redacted_url: None,
            headers: Vec::new(),
            body: self.encoding.encode(event)?,
        }])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let mut line = self.encoding.encode(delivery.event.view())?;
        line.push('\n');
        let io = |e: std::io::Error| {
            SendError::retryable(format!("writing {}: {e}", self.path.display()))
        };
        let mut guard = self.file.lock().await;
        if guard.is_none() {
            let file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .await
                .map_err(io)?;
            *guard = Some(file);
        }
        if let Some(file) = guard.as_mut() {
            file.write_all(line.as_bytes()).await.map_err(io)?;
            file.flush().await.map_err(io)?;
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), SendError> {
        if let Some(file) = self.file.lock().await.as_mut() {
            file.sync_all().await.map_err(|e| {
                SendError::permanent(format!("syncing {}: {e}", self.path.display()))
            })?;
        }
        Ok(())
    }
}
