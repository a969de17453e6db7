//! Replays the compatibility corpus (tests/fixtures/compat) through the route engine: every
//! event of events.jsonl through every config must reach exactly the receivers Go's exporter
//! reaches, in the same order and multiplicity.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use event_exporter_core::{Config, EnrichedEvent, Router};

fn compat() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/compat"
    ))
}

fn test_env(name: &str) -> Option<String> {
    match name {
        "WEBHOOK_URL" => Some("http://127.0.0.1:9/hook".into()),
        "GRAFANA_URL" => Some("http://127.0.0.1:9".into()),
        "SLACK_TOKEN" | "GRAFANA_TOKEN" => Some("secret".into()),
        _ => None,
    }
}

fn events() -> Vec<EnrichedEvent> {
    let text = std::fs::read_to_string(compat().join("events.jsonl")).unwrap();
    text.lines()
        .map(|l| EnrichedEvent::from_json_str(l).unwrap())
        .collect()
}

#[test]
fn every_config_routes_every_event_as_go_does() {
    let events = events();
    assert_eq!(events.len(), 2000);
    let mut configs: Vec<_> = std::fs::read_dir(compat().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    configs.sort();
    assert_eq!(configs.len(), 16);
    let mut failures = Vec::new();
    let mut reached = 0usize;
    for path in &configs {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let cfg = Config::load_str(&text, test_env).unwrap();
        let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
        let router = Router::compile(&cfg.route, &names).unwrap();
        let expected =
            std::fs::read_to_string(compat().join("routes").join(format!("{stem}.jsonl"))).unwrap();
        let expected: Vec<serde_json::Value> = expected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(expected.len(), events.len(), "{stem}");
        for (i, (ev, want)) in events.iter().zip(&expected).enumerate() {
            assert_eq!(want["i"], i, "{stem}: routes file out of order");
            let mut want: Vec<&str> = want["receivers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            apply_glob_departure(&stem, ev, &mut want);
            let mut got = Vec::new();
            router.route(&ev.view(), |id| got.push(router.receiver_name(id)));
            reached += got.len();
            if got != want {
                failures.push(format!("{stem} event {i}: want {want:?}, got {got:?}"));
            }
        }
    }
    assert!(
        reached > 1000,
        "the corpus should reach receivers often ({reached})"
    );
    assert!(
        failures.is_empty(),
        "{} routing mismatches:\n{}",
        failures.len(),
        failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The corpus README (and our design) says a pattern that is not a valid regular expression is
/// matched as an anchored glob, "already applied in the expected results". For
/// `upstream-readme.yaml` the recorded routes were nevertheless produced with upstream's
/// behaviour, where `namespace: "*test*"` never matches, so its drop rule never fires. This is
/// the one place the corpus contradicts its own README; apply the documented departure here,
/// narrowly: an event in a namespace the glob matches is dropped from that route, so it does not
/// reach `critical-events-queue` (the route's only receiver). Every other expectation is used as
/// recorded.
fn apply_glob_departure(config: &str, ev: &EnrichedEvent, want: &mut Vec<&str>) {
    if config != "upstream-readme" {
        return;
    }
    let ns = ev.view().namespace();
    let glob_matches = ns.contains("test"); // `*test*`, anchored
    if glob_matches && let Some(pos) = want.iter().position(|r| *r == "critical-events-queue") {
        want.remove(pos);
    }
}

#[test]
fn the_glob_departure_changes_only_test_namespaces_in_upstream_readme() {
    // Guard the correction above: it must affect exactly the Warning events of namespaces
    // containing "test" (the Normal ones are dropped by the route's `type: Normal` rule anyway).
    let events = events();
    let expected = std::fs::read_to_string(compat().join("routes/upstream-readme.jsonl")).unwrap();
    let mut changed = 0;
    for (ev, line) in events.iter().zip(expected.lines()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut want: Vec<&str> = v["receivers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        let before = want.len();
        apply_glob_departure("upstream-readme", ev, &mut want);
        if want.len() != before {
            changed += 1;
            assert!(ev.view().namespace().contains("test"));
            assert_eq!(ev.view().type_(), "Warning");
        }
    }
    assert_eq!(changed, 67);
}
