//! Routing allocates nothing: every corpus event through every corpus config, counted by an
//! instrumented global allocator. (This file holds one test so no other thread allocates
//! while it measures.)
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::alloc::System;
use std::path::PathBuf;

use event_exporter_core::{Config, EnrichedEvent, ReceiverId, Router};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn compat() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/compat"
    ))
}

#[test]
fn routing_does_not_allocate() {
    let events: Vec<EnrichedEvent> = std::fs::read_to_string(compat().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| EnrichedEvent::from_json_str(l).unwrap())
        .collect();
    let mut configs: Vec<_> = std::fs::read_dir(compat().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    configs.sort();
    let env = |_: &str| Some("http://127.0.0.1:9".to_owned());
    let mut reached: Vec<ReceiverId> = Vec::with_capacity(64);
    for path in configs {
        let cfg = Config::load_str(&std::fs::read_to_string(&path).unwrap(), env).unwrap();
        let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
        let router = Router::compile(&cfg.route, &names).unwrap();
        // Warm up: the regex engine fills its per-thread caches on first use.
        for ev in &events {
            router.route_into(&ev.view(), &mut reached);
        }
        let region = Region::new(GLOBAL);
        let mut total = 0usize;
        for ev in &events {
            router.route_into(&ev.view(), &mut reached);
            total += reached.len();
        }
        let change = region.change();
        assert_eq!(
            (change.allocations, change.reallocations),
            (0, 0),
            "{}: routing {} events allocated",
            path.display(),
            events.len()
        );
        std::hint::black_box(total);
    }
}
