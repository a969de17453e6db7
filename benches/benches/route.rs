//! Routing throughput: one iteration routes every event of the corpus through one config.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_exporter_benches::{events, router};

fn route(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("route");
    group.throughput(Throughput::Elements(events.len() as u64));
    for name in ["seed-giantswarm", "upstream-readme", "random-3", "random-7"] {
        let router = router(name);
        let mut reached = Vec::with_capacity(16);
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut total = 0usize;
                for ev in &events {
                    router.route_into(&ev.view(), &mut reached);
                    total += reached.len();
                }
                std::hint::black_box(total)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
