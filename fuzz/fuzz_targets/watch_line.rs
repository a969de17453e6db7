//! The watch line decoder: a watch body, as the API server (or anything pretending to be one)
//! sends it, decoded line by line and leniently: events, malformed objects, errors — never a
//! panic.
#![no_main]

use event_exporter_kube::watch::{WatchedEvent, watch_lines};
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let body = futures::io::Cursor::new(data.to_vec());
    let items: Vec<_> = futures::executor::block_on(watch_lines(body).collect());
    for item in items {
        if let Ok(
            kube::core::WatchEvent::Added(WatchedEvent::Event(event))
            | kube::core::WatchEvent::Modified(WatchedEvent::Event(event)),
        ) = item
        {
            let _ = event_exporter_kube::occurrence::occurrences(&event);
            let _ = event_exporter_kube::occurrence::resource_version(&event.metadata);
        }
    }
});
