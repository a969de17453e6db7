//! The offline subcommands.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use crate::events::{self, Record};
use crate::load::{Loaded, load};

fn load_or_report(config: &Path, build_sinks: bool) -> Result<Loaded, ExitCode> {
    load(config, build_sinks).map_err(|problems| {
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "{}: {} problem{} found",
            config.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        ExitCode::FAILURE
    })
}

/// `check`.
pub(crate) fn check(config: &Path) -> anyhow::Result<ExitCode> {
    match load_or_report(config, true) {
        Ok(loaded) => {
            println!(
                "{}: ok ({} receiver{})",
                config.display(),
                loaded.sinks.len(),
                if loaded.sinks.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

fn report_bad_record(path: &Path, rec: &Record, err: &str, out: &mut impl Write) -> anyhow::Result<()> {
    eprintln!("error: {}: {err}", path.display());
    writeln!(out, "{}", json!({"event": rec.index, "error": err}))?;
    Ok(())
}

/// `route`.
pub(crate) fn route(config: &Path, events_path: &Path) -> anyhow::Result<ExitCode> {
    let loaded = match load_or_report(config, false) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let records = events::read(events_path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad = 0;
    let mut reached = Vec::new();
    for rec in &records {
        match &rec.event {
            Ok(ev) => {
                loaded.router.route_into(&ev.view(), &mut reached);
                let names: Vec<&str> = reached.iter().map(|id| loaded.router.receiver_name(*id)).collect();
                writeln!(out, "{}", json!({"event": rec.index, "receivers": names}))?;
            }
            Err(err) => {
                bad += 1;
                report_bad_record(events_path, rec, err, &mut out)?;
            }
        }
    }
    out.flush().context("writing output")?;
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn request_json(req: &event_exporter_core::sink::Request, show_secrets: bool) -> Value {
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .map(|h| {
            let v = if h.sensitive && !show_secrets { "***" } else { h.value.as_str() };
            (h.name.clone(), Value::String(v.to_owned()))
        })
        .collect();
    let body = if req.is_json() {
        serde_json::from_str(&req.body).unwrap_or_else(|_| Value::String(req.body.clone()))
    } else {
        Value::String(req.body.clone())
    };
    json!({"method": req.method, "url": req.url, "headers": headers, "body": body})
}

/// `render`.
pub(crate) fn render(
    config: &Path,
    events_path: &Path,
    only: Option<&str>,
    show_secrets: bool,
) -> anyhow::Result<ExitCode> {
    let loaded = match load_or_report(config, true) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if let Some(name) = only {
        if !loaded.sinks.iter().any(|s| s.name() == name) {
            anyhow::bail!(
                "--receiver {name}: no such receiver (defined: {})",
                loaded.sinks.iter().map(|s| s.name()).collect::<Vec<_>>().join(", ")
            );
        }
    }
    let records = events::read(events_path)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0;
    let mut reached = Vec::new();
    for rec in &records {
        let ev = match &rec.event {
            Ok(ev) => ev,
            Err(err) => {
                failures += 1;
                report_bad_record(events_path, rec, err, &mut out)?;
                continue;
            }
        };
        loaded.router.route_into(&ev.view(), &mut reached);
        for id in &reached {
            let Some(sink) = loaded.sinks.get(id.index()) else { continue };
            if only.is_some_and(|n| n != sink.name()) {
                continue;
            }
            let line = match sink.render(ev.view()) {
                Ok(requests) => json!({
                    "event": rec.index,
                    "receiver": sink.name(),
                    "requests": requests.iter().map(|r| request_json(r, show_secrets)).collect::<Vec<_>>(),
                }),
                Err(err) => {
                    failures += 1;
                    json!({"event": rec.index, "receiver": sink.name(), "error": err.to_string()})
                }
            };
            writeln!(out, "{line}")?;
        }
    }
    out.flush().context("writing output")?;
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
