//! The streaming layout writer produces exactly the bytes of the value path
//! (`gojson::write_compact(layout.render(..))`), for every layout in the corpus configs and a
//! layout with nested maps, lists and scalars, over every corpus event.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use event_exporter_core::layout::Layout;
use event_exporter_core::{Config, EnrichedEvent, gojson};

fn compat() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/compat"
    ))
}

#[test]
fn streaming_and_value_paths_agree_byte_for_byte() {
    let events: Vec<EnrichedEvent> = std::fs::read_to_string(compat().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| EnrichedEvent::from_json_str(l).unwrap())
        .collect();
    let mut layouts = Vec::new();
    for entry in std::fs::read_dir(compat().join("configs")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let cfg = Config::load_str(&text, |_| Some("http://127.0.0.1:9".into())).unwrap();
        for r in &cfg.receivers {
            if let Some(layout) = r.spec.get("layout") {
                layouts.push(Layout::compile(layout, "layout").unwrap());
            }
        }
    }
    let nested: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        "b: [1, true, null, 2.5, '<{{ .Reason }}>', {z: '{{ .Count }}', a: [x]}]\na: {'k.1': '{{ .Message }} & co'}\n",
    )
    .unwrap();
    layouts.push(Layout::compile(&nested, "layout").unwrap());
    assert!(layouts.len() >= 6, "{}", layouts.len());
    let (mut out, mut scratch) = (String::new(), String::new());
    for layout in &layouts {
        for ev in &events {
            out.clear();
            layout
                .write_json(ev.view(), &mut out, &mut scratch)
                .unwrap();
            let via_value = gojson::to_string(&layout.render(ev.view()).unwrap());
            assert_eq!(out, via_value);
        }
    }
}
