//! The template engine and the event JSON shape against the Go reference corpus
//! (`tests/fixtures/compat/templates.jsonl`, `events.jsonl`).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use event_exporter_core::event::EnrichedEvent;
use event_exporter_core::event_json::to_go_json;
use event_exporter_core::template::Template;
use serde_json::Value;

const EVENTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/compat/events.jsonl"
);
const TEMPLATES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/compat/templates.jsonl"
);

fn load_events() -> Vec<(Value, EnrichedEvent)> {
    let text = std::fs::read_to_string(EVENTS).expect("events.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("event line is JSON");
            let e = EnrichedEvent::from_json_value(&v).expect("event line is an event");
            (v, e)
        })
        .collect()
}

#[test]
fn to_go_json_matches_every_event_line() {
    let events = load_events();
    assert_eq!(events.len(), 2000);
    let mut bad = Vec::new();
    for (i, (want, ev)) in events.iter().enumerate() {
        let got = to_go_json(ev.view());
        if &got != want {
            bad.push(i);
            if bad.len() <= 3 {
                eprintln!("event {i}:\n want {want}\n  got {got}");
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} events differ: {:?}",
        bad.len(),
        &bad[..bad.len().min(20)]
    );
}

#[test]
fn to_json_of_dot_agrees_with_to_go_json() {
    let events = load_events();
    let t = Template::parse("{{ toJson . }}").expect("parses");
    for (want, ev) in events.iter().take(200) {
        let out = t.render_to_string(ev.view()).expect("renders");
        let got: Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(&got, want);
        let mut compact = String::new();
        event_exporter_core::gojson::write_compact(&to_go_json(ev.view()), &mut compact);
        assert_eq!(out, compact);
    }
}

enum Outcome {
    Ok(String),
    ParseErr(String),
    RenderErr(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok(s) => write!(f, "output {s:?}"),
            Outcome::ParseErr(e) => write!(f, "parse error: {e}"),
            Outcome::RenderErr(e) => write!(f, "render error: {e}"),
        }
    }
}

#[test]
fn templates_match_go() {
    let events = load_events();
    let text = std::fs::read_to_string(TEMPLATES).expect("templates.jsonl");
    let mut total = 0usize;
    let mut pass = 0usize;
    let mut seed_total = 0usize;
    let mut seed_pass = 0usize;
    let mut mismatches = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).expect("case is JSON");
        let id = case["id"].as_str().unwrap_or_default().to_owned();
        let template = case["template"].as_str().unwrap_or_default();
        let idx = case["event"].as_u64().expect("event index") as usize;
        let compare = case["compare"].as_str().unwrap_or("exact");
        let ev = &events[idx].1;
        let outcome = match Template::parse(template) {
            Err(e) => Outcome::ParseErr(e.to_string()),
            Ok(t) => match t.render_to_string(ev.view()) {
                Ok(s) => Outcome::Ok(s),
                Err(e) => Outcome::RenderErr(e.to_string()),
            },
        };
        let ok = if let Some(expected) = case.get("output").and_then(Value::as_str) {
            match &outcome {
                Outcome::Ok(got) if compare == "json" => {
                    match (
                        serde_json::from_str::<Value>(expected),
                        serde_json::from_str::<Value>(got),
                    ) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => expected == got,
                    }
                }
                Outcome::Ok(got) => expected == got,
                _ => false,
            }
        } else {
            match case["error_kind"].as_str().unwrap_or_default() {
                "parse" => matches!(outcome, Outcome::ParseErr(_)),
                "field" => matches!(outcome, Outcome::ParseErr(_) | Outcome::RenderErr(_)),
                "go-type-quirk" => match &outcome {
                    Outcome::Ok(got) => {
                        case.get("alternative").and_then(Value::as_str) == Some(got)
                    }
                    _ => true,
                },
                other => panic!("unknown error_kind {other}"),
            }
        };
        total += 1;
        if id.starts_with("seed-") {
            seed_total += 1;
        }
        if ok {
            pass += 1;
            if id.starts_with("seed-") {
                seed_pass += 1;
            }
        } else {
            let expected = case
                .get("output")
                .or_else(|| case.get("error"))
                .cloned()
                .unwrap_or(Value::Null);
            mismatches.push(format!(
                "{id} (event {idx}) template={template:?}\n    expected: {expected}\n    got:      {outcome}"
            ));
        }
    }
    for m in &mismatches {
        eprintln!("MISMATCH {m}");
    }
    eprintln!(
        "templates: {pass}/{total} agree ({:.2}%), seed: {seed_pass}/{seed_total}",
        100.0 * pass as f64 / total as f64
    );
    assert!(total >= 1312, "corpus has {total} cases");
    assert_eq!(seed_pass, seed_total, "every seed- case must agree");
    assert!(pass * 100 >= total * 99, "only {pass}/{total} cases agree");
}
