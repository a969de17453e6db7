//! The config loader: `${VAR}` expansion, YAML into the model, the route tree and every
//! receiver's validation. Whatever the text, an error or a config, never a panic or a hang.
#![no_main]

use event_exporter_core::{Config, Router};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |name: &str| (name.len() % 3 == 0).then(|| format!("v-{name}"));
    let Ok(config) = Config::load_str(text, lookup) else {
        return;
    };
    let names: Vec<&str> = config.receivers.iter().map(|r| r.name.as_str()).collect();
    let _ = Router::compile(&config.route, &names);
    let _ = event_exporter_sinks::build_receivers_with(
        &config,
        event_exporter_sinks::default_delivery(),
        &event_exporter_sinks::proxy::ProxySettings::default(),
    );
});
