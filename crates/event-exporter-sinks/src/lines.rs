//! The sink behind `stdout` and `file`: one JSON line per event (the layout, or the whole
//! event), written whole so concurrent deliveries never interleave.

use std::path::PathBuf;

use async_trait::async_trait;
use event_exporter_core::event::Event;
use event_exporter_core::sink::{Delivery, RenderError, Request, SendError, Sink};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::encode::Encoding;

/// Where the lines go.
#[derive(Debug)]
pub(crate) enum Output {
    /// Standard output.
    Stdout(Mutex<tokio::io::Stdout>),
    /// A file, appended to; opened on the first delivery so building does no I/O.
    File {
        path: PathBuf,
        file: Mutex<Option<tokio::fs::File>>,
    },
}

impl Output {
    pub(crate) fn stdout() -> Self {
        Self::Stdout(Mutex::new(tokio::io::stdout()))
    }

    pub(crate) fn file(path: PathBuf) -> Self {
        Self::File {
            path,
            file: Mutex::new(None),
        }
    }

    fn url(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout:".to_owned(),
            Self::File { path, .. } => format!("file://{}", path.display()),
        }
    }

    async fn write_line(&self, line: &str) -> Result<(), SendError> {
        match self {
            Self::Stdout(out) => {
                let io =
                    |e: std::io::Error| SendError::permanent(format!("writing to stdout: {e}"));
                let mut out = out.lock().await;
                out.write_all(line.as_bytes()).await.map_err(io)?;
                out.flush().await.map_err(io)
            }
            Self::File { path, file } => {
                let io = |e: std::io::Error| {
                    let message = format!("writing {}: {e}", path.display());
                    if event_exporter_core::sink::out_of_descriptors(&e) {
                        SendError::Local(message)
                    } else if is_permanent(&e) {
                        // A directory, a missing directory, no permission: trying again
                        // changes none of them.
                        SendError::permanent(message)
                    } else {
                        SendError::retryable(message)
                    }
                };
                let mut guard = file.lock().await;
                if guard.is_none() {
                    let opened = tokio::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .await
                        .map_err(io)?;
                    *guard = Some(opened);
                }
                if let Some(f) = guard.as_mut() {
                    f.write_all(line.as_bytes()).await.map_err(io)?;
                    f.flush().await.map_err(io)?;
                }
                Ok(())
            }
        }
    }

    async fn close(&self) -> Result<(), SendError> {
        if let Self::File { path, file } = self
            && let Some(f) = file.lock().await.as_mut()
        {
            f.sync_all()
                .await
                .map_err(|e| SendError::permanent(format!("syncing {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// Whether a file error stays whatever is tried again (a disk full, an I/O error may pass).
fn is_permanent(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        NotFound
            | PermissionDenied
            | IsADirectory
            | NotADirectory
            | ReadOnlyFilesystem
            | InvalidInput
    )
}

/// Writes one JSON line per event to an output (standard output, or a file).
#[derive(Debug)]
pub struct LineSink {
    name: String,
    kind: &'static str,
    encoding: Encoding,
    output: Output,
}

impl LineSink {
    pub(crate) fn new(name: &str, kind: &'static str, encoding: Encoding, output: Output) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            encoding,
            output,
        }
    }
}

#[async_trait]
impl Sink for LineSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn render(&self, event: Event<'_>) -> Result<Vec<Request>, RenderError> {
        Ok(vec![Request {
            method: "WRITE".into(),
            url: self.output.url(),
            headers: Vec::new(),
            body: self.encoding.encode(event)?,
        }])
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), SendError> {
        let mut line = self.encoding.encode(delivery.event.view())?;
        line.push('\n');
        self.output.write_line(&line).await
    }

    async fn close(&self) -> Result<(), SendError> {
        self.output.close().await
    }
}
