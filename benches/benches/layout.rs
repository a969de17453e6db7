//! Layout rendering: one iteration renders the seed README's Grafana layout (receiver
//! `grafana-TEAM` of seed-readme.yaml) into the JSON body for every corpus event.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_exporter_benches::{config, events};
use event_exporter_core::gojson;
use event_exporter_core::layout::Layout;

fn layout(c: &mut Criterion) {
    let events = events();
    let cfg = config("seed-readme");
    let receiver = cfg
        .receivers
        .iter()
        .find(|r| r.name == "grafana-TEAM")
        .expect("grafana-TEAM receiver");
    let spec = receiver.spec.get("layout").expect("layout");
    let layout = Layout::compile(spec, "layout").expect("layout compiles");
    let mut group = c.benchmark_group("layout");
    group.throughput(Throughput::Elements(events.len() as u64));
    // What a sink does per event: a fresh body (it is sent and dropped), one scratch buffer.
    let mut scratch = String::new();
    group.bench_function("seed-readme-grafana", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for ev in &events {
                let mut body = String::with_capacity(256);
                layout
                    .write_json(ev.view(), &mut body, &mut scratch)
                    .expect("renders");
                bytes += body.len();
            }
            std::hint::black_box(bytes)
        })
    });
    // The same through a JSON value first (the general path, for comparison).
    group.bench_function("seed-readme-grafana-via-value", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for ev in &events {
                let value = layout.render(ev.view()).expect("renders");
                bytes += gojson::to_string(&value).len();
            }
            std::hint::black_box(bytes)
        })
    });
    group.finish();
}

criterion_group!(benches, layout);
criterion_main!(benches);
