//! The event reader: any bytes read as an event, then the event written back as upstream's
//! JSON and routed: an event or an error, never a panic.
#![no_main]

use event_exporter_core::EnrichedEvent;
use event_exporter_core::template::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = EnrichedEvent::from_json_str(text) else {
        return;
    };
    let view = event.view();
    let _ = event_exporter_core::event_json::to_go_json(view);
    let whole = Template::parse(
        r#"{{ toJson . }}{{ printf "%v %s %d" . .InvolvedObject .Count }}{{ .GetTimestampMs }}{{ .FirstTimestamp.Format "2006" }}"#,
    )
    .expect("the template");
    let _ = whole.render_to_string(view);
});
