//! The offline subcommands.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use event_exporter_core::redact::Secrets;
use event_exporter_sinks::delivery::Dispatcher;

use crate::events::{self, Record};
use crate::load::{Loaded, load, report};

fn load_or_report(config: &Path, build_sinks: bool) -> Result<Loaded, ExitCode> {
    load(config, build_sinks).map_err(|problems| report(config, &problems))
}

/// `check`.
pub(crate) fn check(config: &Path) -> anyhow::Result<ExitCode> {
    match load_or_report(config, true) {
        Ok(loaded) => {
            println!(
                "{}: ok ({} receiver{})",
                config.display(),
                loaded.receivers.len(),
                if loaded.receivers.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}

fn report_bad_record(
    path: &Path,
    rec: &Record,
    err: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
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
    let records = events::read(events_path, &loaded.cluster_name)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut bad = 0;
    let mut reached = Vec::new();
    for rec in records {
        match &rec.event {
            Ok(ev) => {
                loaded.router.route_into(&ev.view(), &mut reached);
                let names: Vec<&str> = reached
                    .iter()
                    .map(|id| loaded.router.receiver_name(*id))
                    .collect();
                writeln!(out, "{}", json!({"event": rec.index, "receivers": names}))?;
            }
            Err(err) => {
                bad += 1;
                report_bad_record(events_path, &rec, err, &mut out)?;
            }
        }
    }
    out.flush().context("writing output")?;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every string in `value` with `secrets` masked.
fn scrub_json(value: &mut Value, secrets: &Secrets) {
    match value {
        Value::String(s) => {
            if let std::borrow::Cow::Owned(clean) = secrets.scrub(s) {
                *s = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| scrub_json(v, secrets)),
        _ => {}
    }
}

/// A request as `render` shows it: unless `show_secrets`, what the receiver's configuration
/// marks secret (see [`Sink::secrets`]) is `***` wherever it appears, a header that carries a
/// credential is `***` whole, and so are a URL's credentials.
fn request_json(
    req: &event_exporter_core::sink::Request,
    show_secrets: bool,
    secrets: &Secrets,
) -> Value {
    let headers: serde_json::Map<String, Value> = req
        .headers
        .iter()
        .map(|h| {
            let v = if h.sensitive && !show_secrets {
                "***"
            } else {
                h.value.as_str()
            };
            (h.name.clone(), Value::String(v.to_owned()))
        })
        .collect();
    let body = if req.is_json() {
        serde_json::from_str(&req.body).unwrap_or_else(|_| Value::String(req.body.clone()))
    } else {
        Value::String(req.body.clone())
    };
    let masked = (!show_secrets)
        .then(|| event_exporter_sinks::http::masked_url(&req.url))
        .flatten();
    let url = masked.as_deref().unwrap_or(&req.url);
    let mut shown = json!({"method": req.method, "url": url, "headers": headers, "body": body});
    if !show_secrets {
        scrub_json(&mut shown, secrets);
    }
    shown
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
    if let Some(name) = only
        && !loaded.receivers.iter().any(|(s, _)| s.name() == name)
    {
        anyhow::bail!(
            "--receiver {name}: no such receiver (defined: {})",
            loaded
                .receivers
                .iter()
                .map(|(s, _)| s.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let records = events::read(events_path, &loaded.cluster_name)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failures = 0;
    let mut reached = Vec::new();
    for rec in records {
        let ev = match &rec.event {
            Ok(ev) => ev,
            Err(err) => {
                failures += 1;
                report_bad_record(events_path, &rec, err, &mut out)?;
                continue;
            }
        };
        loaded.router.route_into(&ev.view(), &mut reached);
        for id in &reached {
            let Some((sink, _)) = loaded.receivers.get(id.index()) else {
                continue;
            };
            if only.is_some_and(|n| n != sink.name()) {
                continue;
            }
            let line = match sink.render(ev.view()) {
                Ok(requests) => json!({
                    "event": rec.index,
                    "receiver": sink.name(),
                    "requests": requests.iter().map(|r| request_json(r, show_secrets, sink.secrets())).collect::<Vec<_>>(),
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
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT). If a handler cannot be installed, that signal is
/// simply never seen.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// `run --events`.
pub(crate) fn run(config: &Path, events_path: &Path, grace: Duration) -> anyhow::Result<ExitCode> {
    let loaded = match load_or_report(config, true) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut records = events::read(events_path, &loaded.cluster_name)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let dispatcher = Dispatcher::start_each(loaded.router, loaded.receivers);
        let signal = shutdown_signal();
        tokio::pin!(signal);
        let mut bad = 0usize;
        let mut interrupted = false;
        loop {
            // The input is read as it arrives (a pipe, a file larger than memory).
            let rec = tokio::select! {
                biased;
                () = &mut signal => {
                    interrupted = true;
                    break;
                }
                rec = records.next() => match rec {
                    Some(rec) => rec,
                    None => break,
                },
            };
            match rec.event {
                Ok(event) => {
                    tokio::select! {
                        biased;
                        () = &mut signal => {
                            interrupted = true;
                            break;
                        }
                        _ = dispatcher.dispatch_wait(Arc::new(event)) => {}
                    }
                }
                Err(err) => {
                    bad += 1;
                    eprintln!("error: {}: {err}", events_path.display());
                }
            }
        }
        if interrupted {
            tracing::warn!(?grace, "signal received: input stopped, draining queues");
        }
        let deadline = async {
            if !interrupted {
                (&mut signal).await;
                tracing::warn!(?grace, "signal received: draining queues");
            }
            tokio::time::sleep(grace).await;
        };
        let stats = dispatcher.shutdown_when(deadline).await;
        let mut lost = 0;
        for (name, s) in &stats {
            eprintln!(
                "{name}: sent {}, retried {}, failed {}, dropped {}",
                s.sent, s.retried, s.failed, s.dropped
            );
            lost += s.failed + s.dropped;
        }
        Ok(if bad == 0 && lost == 0 && !interrupted {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
