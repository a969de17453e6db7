//! Fixtures for the criterion benchmarks: the compatibility corpus under `tests/fixtures/compat`.

use std::path::PathBuf;

use event_exporter_core::{Config, EnrichedEvent, Router};

/// The corpus directory.
pub fn compat_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/compat"
    ))
}

/// Values for the `${VAR}` references of the corpus configs.
pub fn corpus_env(name: &str) -> Option<String> {
    match name {
        "WEBHOOK_URL" => Some("http://127.0.0.1:9/hook".into()),
        "GRAFANA_URL" => Some("http://127.0.0.1:9".into()),
        "SLACK_TOKEN" | "GRAFANA_TOKEN" => Some("bench-token".into()),
        _ => None,
    }
}

/// Every event of `events.jsonl`.
///
/// # Panics
/// When the corpus is missing or malformed (a benchmark cannot run without it).
pub fn events() -> Vec<EnrichedEvent> {
    let text = std::fs::read_to_string(compat_dir().join("events.jsonl")).expect("events.jsonl");
    text.lines()
        .map(|l| EnrichedEvent::from_json_str(l).expect("corpus event"))
        .collect()
}

/// A corpus config by name (`seed-giantswarm`).
///
/// # Panics
/// When the config is missing or invalid.
pub fn config(name: &str) -> Config {
    let path = compat_dir().join("configs").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("corpus config");
    Config::load_str(&text, corpus_env).expect("valid corpus config")
}

/// The compiled route tree of a corpus config.
///
/// # Panics
/// When the config does not compile.
pub fn router(name: &str) -> Router {
    let cfg = config(name);
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    Router::compile(&cfg.route, &names).expect("route tree compiles")
}
