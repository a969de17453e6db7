//! Reading events: JSON lines, a single event document, or a `kubectl get events -o json`
//! List — streamed, not read whole first.
//!
//! A reader thread parses the input as it arrives and hands each record over a small bounded
//! channel, so memory holds a few records whatever the input's size, and `run` delivers the
//! first event of a stdin pipe while the rest is still coming. A record that is not an event
//! (not JSON, not UTF-8, not an Event, larger than [`MAX_RECORD`]) is reported with its line
//! (or its `items[i]`) and skipped; the others are processed.

use std::cell::Cell;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use anyhow::Context;
use event_exporter_core::EnrichedEvent;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The largest record read: a Kubernetes object is at most 1.5 MiB.
pub(crate) const MAX_RECORD: usize = 8 << 20;

/// Records parsed ahead of the one being processed.
const AHEAD: usize = 64;

/// One input record: its 0-based position, and the event or why not (with its place).
pub(crate) struct Record {
    pub(crate) index: usize,
    pub(crate) event: Result<EnrichedEvent, String>,
}

/// The records of an input, as the reader thread parses them.
pub(crate) struct Records {
    rx: tokio::sync::mpsc::Receiver<Record>,
}

impl Records {
    /// The next record, waiting for it (inside an async runtime).
    pub(crate) async fn next(&mut self) -> Option<Record> {
        self.rx.recv().await
    }
}

/// Outside an async runtime (`route`, `render`).
impl Iterator for Records {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        self.rx.blocking_recv()
    }
}

/// Starts reading `path` (`-` for stdin); a non-empty `cluster_name` (the config's
/// `clusterName`) is set on every event, as the exporter does for the events it watches.
pub(crate) fn read(path: &Path, cluster_name: &str) -> anyhow::Result<Records> {
    let input: Box<dyn Read + Send> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?)
    };
    let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
    let cluster_name: Option<Arc<str>> = (!cluster_name.is_empty()).then(|| cluster_name.into());
    std::thread::Builder::new()
        .name("event-reader".into())
        .spawn(move || {
            let send = |mut record: Record| {
                if let (Some(name), Ok(event)) = (&cluster_name, record.event.as_mut()) {
                    event.cluster_name = Arc::clone(name);
                }
                // The receiver is gone: nobody wants the rest.
                tx.blocking_send(record).is_ok()
            };
            guarded(|send| parse(BufReader::new(input), send), send);
        })
        .context("starting the event reader")?;
    Ok(Records { rx })
}

/// Runs a reader, turning a panic in it into one last bad record: a bug in the reader must
/// not look like the end of the input, so the command exits non-zero.
fn guarded(
    reader: impl FnOnce(&mut dyn FnMut(Record) -> bool),
    mut send: impl FnMut(Record) -> bool,
) {
    let sent = Cell::new(0usize);
    let mut counted = |record: Record| {
        sent.set(record.index + 1);
        send(record)
    };
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| reader(&mut counted)));
    if let Err(panic) = ran {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        let index = sent.get();
        counted(Record {
            index,
            event: Err(format!("reading stopped (internal error: {why})")),
        });
    }
}

/// Hands records on, numbering them.
struct Out<F> {
    send: F,
    index: usize,
}

impl<F: FnMut(Record) -> bool> Out<F> {
    /// Sends the next record; false once nobody wants more.
    fn emit(&mut self, event: Result<EnrichedEvent, String>) -> bool {
        let index = self.index;
        self.index += 1;
        (self.send)(Record { index, event })
    }
}

/// Parses `input`, calling `send` with each record until it returns false.
pub(crate) fn parse(mut input: impl BufRead, send: impl FnMut(Record) -> bool) {
    let mut out = Out { send, index: 0 };
    let mut lineno = 0usize;
    // JSON lines until the first non-empty line turns out not to be a whole JSON value: then
    // the input is one document (a pretty-printed event, a List), from that line on.
    loop {
        lineno += 1;
        let line = match read_line(&mut input) {
            Ok(Line::End) => return,
            Ok(Line::Text(line)) => line,
            Ok(Line::TooLong) => {
                let error = format!("line {lineno}: longer than {} MiB", MAX_RECORD >> 20);
                if !out.emit(Err(error)) {
                    return;
                }
                continue;
            }
            Err(e) => {
                out.emit(Err(format!("line {lineno}: reading: {e}")));
                return;
            }
        };
        let text = match std::str::from_utf8(&line) {
            Ok(t) => t,
            Err(e) => {
                let at = e.valid_up_to() + 1;
                if !out.emit(Err(format!(
                    "line {lineno}: not UTF-8 (byte {at} of the line)"
                ))) {
                    return;
                }
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        if out.index == 0 && serde_json::from_str::<IgnoredAny>(text).is_err_and(|e| e.is_eof()) {
            // A value that goes on past its line: a document.
            let rest = std::io::Cursor::new(line).chain(input);
            document(rest, out.send);
            return;
        }
        let value = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => v,
            Err(e) => {
                let e = event_exporter_core::event::EventParseError::from(e);
                if !out.emit(Err(format!("line {lineno}: {}", brief(&e)))) {
                    return;
                }
                continue;
            }
        };
        // A List on one line (`kubectl get events -o json | jq -c`).
        if let Some(items) = value.get("items").and_then(serde_json::Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                let event = EnrichedEvent::from_json_value(item)
                    .map_err(|e| format!("line {lineno}: items[{i}]: {}", brief(&e)));
                if !out.emit(event) {
                    return;
                }
            }
            continue;
        }
        let event = EnrichedEvent::from_json_value(&value)
            .map_err(|e| format!("line {lineno}: {}", brief(&e)));
        if !out.emit(event) {
            return;
        }
    }
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    End,
}

/// One line (without its `\n`), never holding more than [`MAX_RECORD`] bytes of it.
fn read_line(input: &mut impl BufRead) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    let mut any = false;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        any = true;
        let (chunk, done) = match memchr_newline(buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_RECORD {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = done.unwrap_or(buf.len());
        input.consume(used);
        if done.is_some() {
            break;
        }
    }
    Ok(match (any, too_long) {
        (false, _) => Line::End,
        (true, true) => Line::TooLong,
        (true, false) => {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Line::Text(line)
        }
    })
}

fn memchr_newline(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|b| *b == b'\n')
}

fn brief(e: &dyn fmt::Display) -> String {
    event_exporter_core::redact::excerpt(&e.to_string(), 300)
}

/// A reader that fails once more than [`MAX_RECORD`] bytes are read without `mark` being
/// reset (the visitor resets it after each record).
struct Bounded<R> {
    inner: R,
    since_record: Rc<Cell<usize>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let since = self.since_record.get() + n;
        self.since_record.set(since);
        if since > MAX_RECORD {
            return Err(std::io::Error::other(format!(
                "a record larger than {} MiB",
                MAX_RECORD >> 20
            )));
        }
        Ok(n)
    }
}

/// One document: a single event, or a List whose `items` are streamed one by one.
fn document(input: impl Read, mut send: impl FnMut(Record) -> bool) {
    let since_record = Rc::new(Cell::new(0));
    let reader = Bounded {
        inner: input,
        since_record: Rc::clone(&since_record),
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut state = DocState {
        send: &mut send,
        since_record: &since_record,
        items: 0,
        stopped: false,
    };
    let result = (&mut de).deserialize_map(DocVisitor(&mut state));
    let result = result.and_then(|single| de.end().map(|()| single));
    let items = state.items;
    match result {
        Ok(Some(object)) => {
            let event = EnrichedEvent::from_json_value(&serde_json::Value::Object(object))
                .map_err(|e| brief(&e));
            send(Record { index: 0, event });
        }
        Ok(None) => {}
        Err(_) if state.stopped => {}
        Err(e) => {
            let place = if items > 0 {
                format!("items[{items}]")
            } else {
                format!("line {}", e.line())
            };
            send(Record {
                index: items,
                event: Err(format!("{place}: {}; the rest is not read", brief(&e))),
            });
        }
    }
}

struct DocState<'a, F> {
    send: &'a mut F,
    since_record: &'a Rc<Cell<usize>>,
    items: usize,
    /// The receiver stopped listening.
    stopped: bool,
}

/// The top-level object: `items` is streamed; everything else is kept, and is the event when
/// there is no `items`.
struct DocVisitor<'s, 'a, F>(&'s mut DocState<'a, F>);

impl<'de, F: FnMut(Record) -> bool> Visitor<'de> for DocVisitor<'_, '_, F> {
    type Value = Option<serde_json::Map<String, serde_json::Value>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event, or a List of events")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = serde_json::Map::new();
        let mut list = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                list = true;
                map.next_value_seed(Items(&mut *self.0))?;
            } else {
                let value: serde_json::Value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        Ok((!list).then_some(fields))
    }
}

struct Items<'s, 'a, F>(&'s mut DocState<'a, F>);

impl<'de, F: FnMut(Record) -> bool> DeserializeSeed<'de> for Items<'_, '_, F> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Record) -> bool> Visitor<'de> for Items<'_, '_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.0;
        while let Some(item) = seq.next_element::<serde_json::Value>()? {
            state.since_record.set(0);
            let index = state.items;
            let event = EnrichedEvent::from_json_value(&item)
                .map_err(|e| format!("items[{index}]: {}", brief(&e)));
            state.items += 1;
            if !(state.send)(Record { index, event }) {
                state.stopped = true;
                return Err(de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<Record> {
        let mut out = Vec::new();
        parse(text, |r| {
            out.push(r);
            true
        });
        out
    }

    #[test]
    fn a_panicking_reader_ends_with_a_bad_record_not_silence() {
        let mut out = Vec::new();
        guarded(
            |send| {
                parse(&b"{\"metadata\":{\"name\":\"a\"}}\n"[..], &mut *send);
                panic!("bug at byte 7");
            },
            |r| {
                out.push(r);
                true
            },
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].event.is_ok());
        assert_eq!(out[1].index, 1);
        let err = out[1].event.as_ref().err().unwrap();
        assert!(err.contains("internal error: bug at byte 7"), "{err}");
    }

    #[test]
    fn json_lines_with_a_bad_line() {
        let recs =
            all(b"{\"metadata\":{\"name\":\"a\"}}\n\nnot json\n{\"metadata\":{\"name\":\"b\"}}\n");
        assert_eq!(recs.len(), 3);
        assert!(recs[0].event.is_ok());
        assert_eq!(recs[1].index, 1);
        assert!(recs[1].event.as_ref().err().unwrap().starts_with("line 3:"));
        assert_eq!(recs[2].event.as_ref().unwrap().view().name(), "b");
    }

    #[test]
    fn one_bad_byte_costs_one_line() {
        let recs = all(b"{\"metadata\":{\"name\":\"a\"}}\n{\"metadata\":{\"name\":\"\xff\"}}\n{\"metadata\":{\"name\":\"c\"}}\r\n");
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[1].event.as_ref().err().unwrap(),
            "line 2: not UTF-8 (byte 22 of the line)"
        );
        assert_eq!(recs[2].event.as_ref().unwrap().view().name(), "c");
    }

    #[test]
    fn a_line_too_long_is_skipped_without_being_held() {
        let mut input = b"{\"metadata\":{\"name\":\"a\"}}\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_RECORD + 10));
        input.extend_from_slice(b"\n{\"metadata\":{\"name\":\"c\"}}\n");
        let recs = all(&input);
        assert_eq!(recs.len(), 3);
        assert!(
            recs[1]
                .event
                .as_ref()
                .err()
                .unwrap()
                .contains("longer than 8 MiB")
        );
        assert!(recs[2].event.is_ok());
    }

    #[test]
    fn kubectl_list_streamed_item_by_item() {
        let recs = all(
            br#"{"apiVersion":"v1","kind":"List","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}},{"count":"x"}],"metadata":{}}"#,
        );
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].event.as_ref().unwrap().view().name(), "b");
        assert!(recs[2].event.as_ref().err().unwrap().contains("items[2]:"));
        // A pretty-printed List, and a consumer that stops listening.
        let pretty = b"{\n  \"kind\": \"List\",\n  \"items\": [\n    {\"metadata\": {\"name\": \"a\"}},\n    {\"metadata\": {\"name\": \"b\"}}\n  ]\n}\n";
        let mut seen = 0;
        parse(&pretty[..], |_| {
            seen += 1;
            false
        });
        assert_eq!(seen, 1);
    }

    #[test]
    fn a_bad_first_line_is_one_bad_line_and_a_list_may_be_one_line() {
        let recs = all(b"not json\n{\"metadata\":{\"name\":\"b\"}}\n");
        assert_eq!(recs.len(), 2);
        assert!(recs[0].event.as_ref().err().unwrap().starts_with("line 1:"));
        let recs = all(
            br#"{"kind":"List","items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
        );
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].event.as_ref().unwrap().view().name(), "b");
    }

    #[test]
    fn one_pretty_printed_event() {
        let recs = all(b"{\n  \"metadata\": {\"name\": \"a\"}\n}\n");
        assert_eq!(recs.len(), 1);
        assert!(recs[0].event.is_ok());
        let broken = all(b"{\n  \"metadata\": {\"name\": \n");
        assert_eq!(broken.len(), 1);
        assert!(
            broken[0]
                .event
                .as_ref()
                .err()
                .unwrap()
                .contains("the rest is not read")
        );
    }
}
