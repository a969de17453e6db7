//! Using event-exporter as a library: load a config, compile the route tree and the sinks once,
//! then route and render events.
//!
//! ```sh
//! cargo run --example library -- examples/config.yaml examples/events.jsonl
//! ```

use std::process::ExitCode;

use event_exporter_core::{Config, EnrichedEvent, Router};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(config), Some(events)) = (args.next(), args.next()) else {
        eprintln!("usage: library CONFIG EVENTS.jsonl");
        return ExitCode::from(2);
    };
    // Load and validate everything once.
    let cfg = match Config::load_file(config.as_ref()) {
        Ok(cfg) => cfg,
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{config}: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = match Router::compile(&cfg.route, &names) {
        Ok(router) => router,
        Err(errors) => {
            errors
                .errors
                .iter()
                .for_each(|e| eprintln!("{config}: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let sinks = match event_exporter_sinks::build_all(&cfg) {
        Ok(sinks) => sinks,
        Err(errors) => {
            errors.iter().for_each(|e| eprintln!("{config}: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read_to_string(&events) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{events}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Route each event (no allocation) and render what each receiver would send.
    for (n, line) in text.lines().enumerate() {
        let event = match EnrichedEvent::from_json_str(line) {
            Ok(event) => event,
            Err(e) => {
                eprintln!("{events}:{}: {e}", n + 1);
                continue;
            }
        };
        router.route(&event.view(), |id| {
            let sink = &sinks[id.index()];
            match sink.render(event.view()) {
                Ok(requests) => {
                    for r in requests {
                        println!(
                            "event {n} -> {}: {} {} {}",
                            sink.name(),
                            r.method,
                            r.url,
                            r.body
                        );
                    }
                }
                Err(e) => eprintln!("event {n} -> {}: {e}", sink.name()),
            }
        });
    }
    ExitCode::SUCCESS
}
