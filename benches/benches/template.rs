//! Single templates: one iteration renders one template for every corpus event.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_exporter_benches::events;
use event_exporter_core::template::Template;

const TEMPLATES: &[(&str, &str)] = &[
    ("literal", "event"),
    ("field", "{{ .Reason }}"),
    ("nested-field", "{{ .InvolvedObject.Name }}"),
    (
        "annotation-index",
        r#"{{ index .Annotations "giantswarm.io/target-version" }}"#,
    ),
    (
        "seed-message",
        "The cluster upgrade of `{{ .InvolvedObject.Namespace }}/{{ .InvolvedObject.Name }}` on `gs-prod-1` {{ .Message }} has begun.",
    ),
    (
        "if-eq-trunc",
        r#"{{ if eq .Type "Warning" }}:warning:{{ else }}:information_source:{{ end }} {{ .InvolvedObject.Namespace }}/{{ .InvolvedObject.Name }}: {{ .Message | trunc 100 }}"#,
    ),
];

fn template(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("template");
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut out = String::with_capacity(1024);
    for (id, src) in TEMPLATES {
        let t = Template::parse(src).expect("template parses");
        group.bench_function(*id, |b| {
            b.iter(|| {
                let mut bytes = 0;
                for ev in &events {
                    out.clear();
                    t.render(ev.view(), &mut out).expect("renders");
                    bytes += out.len();
                }
                std::hint::black_box(bytes)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, template);
criterion_main!(benches);
