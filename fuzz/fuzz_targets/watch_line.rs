//! The watch line decoder: one line of a watch stream, as the API server (or anything
//! pretending to be one) sends it, decoded leniently: an event, a malformed object, or an
//! error — never a panic.
#![no_main]

use event_exporter_kube::watch::WatchedEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(
        kube::core::WatchEvent::Added(WatchedEvent::Event(event))
        | kube::core::WatchEvent::Modified(WatchedEvent::Event(event)),
    ) = serde_json::from_str::<kube::core::WatchEvent<WatchedEvent>>(line)
    {
        let _ = event_exporter_kube::occurrence::occurrences(&event);
        let _ = event_exporter_kube::occurrence::resource_version(&event.metadata);
    }
});
