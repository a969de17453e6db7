//! The template engine: parse, then render against an event. Whatever the template does with
//! the event's data, an output or an error within the render bounds, never a panic, a stack
//! overflow or an allocation failure.
#![no_main]

use std::sync::OnceLock;

use event_exporter_core::EnrichedEvent;
use event_exporter_core::template::Template;
use libfuzzer_sys::fuzz_target;

fn event() -> &'static EnrichedEvent {
    static EVENT: OnceLock<EnrichedEvent> = OnceLock::new();
    EVENT.get_or_init(|| {
        EnrichedEvent::from_json_str(
            r#"{"metadata":{"name":"api.1","namespace":"prod","uid":"u-1","resourceVersion":"7",
                "annotations":{"a/b":"c"}},
              "involvedObject":{"kind":"Pod","namespace":"prod","name":"api-7f","apiVersion":"v1",
                "labels":{"app":"api"},"annotations":{"x/y":"z"},
                "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"r","controller":true}]},
              "reason":"BackOff","message":"Back-off <x> & \"y\"","count":2147483647,"type":"Warning",
              "source":{"component":"kubelet","host":"node-1"},
              "firstTimestamp":"2026-11-23T10:00:01Z","lastTimestamp":"2026-11-23T10:05:00Z",
              "series":{"count":3,"lastObservedTime":"2026-11-23T10:01:02.764451Z"}}"#,
        )
        .expect("the sample event")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Template::parse(source) {
        let mut out = String::new();
        let _ = t.render(event().view(), &mut out);
        assert!(out.len() <= 2 * event_exporter_core::template::MAX_OUTPUT + (16 << 20));
    }
});
