//! Reading events: JSON lines, a single event document, or a `kubectl get events -o json`
//! List. A record that is not an event is reported with its line and skipped.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use event_exporter_core::EnrichedEvent;

/// One input record: its 0-based position, and the event or why not (with its line).
pub(crate) struct Record {
    pub(crate) index: usize,
    pub(crate) event: Result<EnrichedEvent, String>,
}

/// Reads every record of `path` (`-` for stdin); a non-empty `cluster_name` (the config's
/// `clusterName`) is set on every event, as the exporter does for the events it watches.
pub(crate) fn read(path: &Path, cluster_name: &str) -> anyhow::Result<Vec<Record>> {
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading events from stdin")?;
        s
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let mut records = parse(&text);
    if !cluster_name.is_empty() {
        let cluster_name: std::sync::Arc<str> = cluster_name.into();
        for ev in records.iter_mut().filter_map(|r| r.event.as_mut().ok()) {
            ev.cluster_name = std::sync::Arc::clone(&cluster_name);
        }
    }
    Ok(records)
}

/// Splits `text` into records.
pub(crate) fn parse(text: &str) -> Vec<Record> {
    // A whole-document parse fails fast on JSON lines (at the end of the first line).
    if let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(items) = doc.get("items").and_then(serde_json::Value::as_array) {
            return items
                .iter()
                .enumerate()
                .map(|(index, item)| Record {
                    index,
                    event: EnrichedEvent::from_json_value(item)
                        .map_err(|e| format!("items[{index}]: {e}")),
                })
                .collect();
        }
        if doc.is_object() {
            return vec![Record {
                index: 0,
                event: EnrichedEvent::from_json_value(&doc).map_err(|e| e.to_string()),
            }];
        }
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .enumerate()
        .map(|(index, (lineno, line))| Record {
            index,
            event: EnrichedEvent::from_json_str(line)
                .map_err(|e| format!("line {}: {e}", lineno + 1)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_with_a_bad_line() {
        let recs =
            parse("{\"metadata\":{\"name\":\"a\"}}\n\nnot json\n{\"metadata\":{\"name\":\"b\"}}\n");
        assert_eq!(recs.len(), 3);
        assert!(recs[0].event.is_ok());
        assert_eq!(recs[1].index, 1);
        assert!(recs[1].event.as_ref().err().unwrap().starts_with("line 3:"));
        assert_eq!(recs[2].event.as_ref().unwrap().view().name(), "b");
    }

    #[test]
    fn kubectl_list() {
        let recs = parse(
            r#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].event.as_ref().unwrap().view().name(), "b");
    }

    #[test]
    fn one_pretty_printed_event() {
        let recs = parse("{\n  \"metadata\": {\"name\": \"a\"}\n}\n");
        assert_eq!(recs.len(), 1);
        assert!(recs[0].event.is_ok());
    }
}
