//! The watch response body: newline-delimited single-line JSON watch events.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::Stream;
use http_body_util::StreamBody;
use hyper::body::Frame;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::selector::Selectors;
use crate::store::{ChangeKind, ResourceType, WatchMsg, WatchRegistration};

/// Flush a chunk once it is this large.
const CHUNK: usize = 64 * 1024;

/// A boxed error for bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct WatchState {
    view: ResourceType,
    namespace: Option<String>,
    selectors: Selectors,
    initial: VecDeque<WatchMsg>,
    rx: mpsc::Receiver<WatchMsg>,
    cut: Arc<AtomicBool>,
    deadline: Option<Pin<Box<Sleep>>>,
    done: bool,
}

fn ns_of(obj: &Value) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl WatchState {
    fn in_scope(&self, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|n| n == ns_of(obj))
    }

    fn write_event(&self, buf: &mut Vec<u8>, ty: &str, obj: &Value) {
        buf.extend_from_slice(b"{\"type\":\"");
        buf.extend_from_slice(ty.as_bytes());
        buf.extend_from_slice(b"\",\"object\":");
        self.view.write_json(buf, obj, true);
        buf.extend_from_slice(b"}\n");
    }

    fn write_msg(&mut self, buf: &mut Vec<u8>, msg: &WatchMsg) {
        match msg {
            WatchMsg::Fatal(status) => {
                let ev = serde_json::json!({"type": "ERROR", "object": status.to_json()});
                let _ = serde_json::to_writer(&mut *buf, &ev);
                buf.push(b'\n');
                self.done = true;
            }
            WatchMsg::Raw(b) => buf.extend_from_slice(b),
            WatchMsg::Synthetic(obj) => {
                if self.in_scope(obj) && self.selectors.matches(obj) {
                    self.write_event(buf, "ADDED", obj);
                }
            }
            WatchMsg::Bookmark(rv, initial_end) => {
                let mut meta = serde_json::json!({
                    "resourceVersion": rv.to_string(),
                    "creationTimestamp": null,
                });
                if *initial_end {
                    meta["annotations"] = serde_json::json!({"k8s.io/initial-events-end": "true"});
                }
                let ev = serde_json::json!({
                    "type": "BOOKMARK",
                    "object": {
                        "kind": self.view.kind,
                        "apiVersion": self.view.api_version(),
                        "metadata": meta,
                    }
                });
                let _ = serde_json::to_writer(&mut *buf, &ev);
                buf.push(b'\n');
            }
            WatchMsg::Change(c) => {
                if !self.in_scope(&c.obj) {
                    return;
                }
                let ty = if self.selectors.is_empty() {
                    match c.kind {
                        ChangeKind::Added => Some("ADDED"),
                        ChangeKind::Modified => Some("MODIFIED"),
                        ChangeKind::Deleted => Some("DELETED"),
                    }
                } else {
                    let now = self.selectors.matches(&c.obj);
                    match c.kind {
                        ChangeKind::Added => now.then_some("ADDED"),
                        ChangeKind::Deleted => now.then_some("DELETED"),
                        ChangeKind::Modified => {
                            let before =
                                c.prev.as_deref().is_some_and(|p| self.selectors.matches(p));
                            match (before, now) {
                                (true, true) => Some("MODIFIED"),
                                (false, true) => Some("ADDED"),
                                (true, false) => Some("DELETED"),
                                (false, false) => None,
                            }
                        }
                    }
                };
                if let Some(ty) = ty {
                    self.write_event(buf, ty, &c.obj);
                }
            }
        }
    }
}

type Item = Result<Frame<Bytes>, BoxError>;

async fn next_chunk(mut st: WatchState) -> Option<(Item, WatchState)> {
    if st.done {
        return None;
    }
    let mut buf = Vec::new();
    // 1. The initial (synthetic or replayed) events.
    while let Some(msg) = st.initial.pop_front() {
        st.write_msg(&mut buf, &msg);
        if buf.len() >= CHUNK {
            break;
        }
    }
    if !buf.is_empty() {
        return Some((Ok(Frame::data(Bytes::from(buf))), st));
    }
    // 2. Live events, batched while more are immediately available.
    loop {
        let msg = match st.deadline.as_mut() {
            Some(deadline) => tokio::select! {
                m = st.rx.recv() => m,
                () = deadline.as_mut() => {
                    st.done = true;
                    return None;
                }
            },
            None => st.rx.recv().await,
        };
        let Some(msg) = msg else {
            st.done = true;
            if st.cut.load(Ordering::SeqCst) {
                let err: BoxError = Box::new(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "watch stream cut",
                ));
                return Some((Err(err), st));
            }
            return None;
        };
        st.write_msg(&mut buf, &msg);
        while buf.len() < CHUNK && !st.done {
            match st.rx.try_recv() {
                Ok(m) => st.write_msg(&mut buf, &m),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            return Some((Ok(Frame::data(Bytes::from(buf))), st));
        }
    }
}

/// The streaming body for a registered watch.
pub(crate) fn watch_body(
    view: ResourceType,
    namespace: Option<String>,
    selectors: Selectors,
    reg: WatchRegistration,
    timeout: Option<std::time::Duration>,
) -> StreamBody<impl Stream<Item = Item> + Send + 'static> {
    let st = WatchState {
        view,
        namespace,
        selectors,
        initial: reg.initial,
        rx: reg.rx,
        cut: reg.cut,
        deadline: timeout.map(|t| Box::pin(tokio::time::sleep_until(Instant::now() + t))),
        done: false,
    };
    StreamBody::new(futures::stream::unfold(st, next_chunk))
}
