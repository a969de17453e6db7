//! The `stdout` sink: one JSON line per event on standard output, as upstream
//! (`layout` and `deDot` as upstream).

use async_trait::async_trait;
use event_exporter_core::event::Event;
use event_exporter_core::sink::{Delivery, RenderError, Request, SendError, Sink};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::encode::Encoding;
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

/// Writes JSON lines to standard output.
#[derive(Debug)]
pub struct StdoutSink {
    name: String,
    encoding: Encoding,
    // Lines from concurrent deliveries must not interleave.
    out: Mutex<tokio::io::Stdout>,
}

pub(crate) fn build(
    ctx: &BuildContext<'_>,
    spec: &serde_yaml_ng::Value,
) -> Result<Box<dyn Sink>, Vec<SinkConfigError>> {
    let cfg: StdoutConfig = ctx.parse(spec).map_err(|e| vec![e])?;
    Ok(Box::new(StdoutSink {
        name: ctx.name.to_owned(),
        encoding: Encoding::compile(ctx, cfg.layout.as_ref(), cfg.de_dot)?,
        out: Mutex::new(tokio::io::stdout()),
    }))
}

#[async_trait]
impl Sink for StdoutSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "stdout"
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        Ok(vec![Request {
            method: "WRITE".into(),
            url: "stdout:".into(),
            redacted_url: None,
            headers: Vec::new(),
            body: self.encoding.encode(event)?,
        }])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let mut line = self.encoding.encode(delivery.event.view())?;
        line.push('\n');
        let mut out = self.out.lock().await;
        let io = |e: std::io::Error| SendError::permanent(format!("writing to stdout: {e}"));
        out.write_all(line.as_bytes()).await.map_err(io)?;
        out.flush().await.map_err(io)
    }
}
