//! Runs the fake API server on a loopback port.
//!
//! `fake-apiserver [--port N] [--kubeconfig PATH] [--events N] [--token T]`: serves until Ctrl-C,
//! optionally writing a kubeconfig and pre-loading N synthetic events. Prints the URL on stdout
//! once listening.

use std::path::PathBuf;
use std::process::ExitCode;

use fake_apiserver::{FakeApiServer, Options};

struct Args {
    port: u16,
    kubeconfig: Option<PathBuf>,
    events: usize,
    token: Option<String>,
}

const USAGE: &str =
    "usage: fake-apiserver [--port N] [--kubeconfig PATH] [--events N] [--token TOKEN]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 0,
        kubeconfig: None,
        events: 0,
        token: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--port" => {
                args.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?;
            }
            "--kubeconfig" => args.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--events" => {
                args.events = value("--events")?
                    .parse()
                    .map_err(|e| format!("--events: {e}"))?;
            }
            "--token" => args.token = Some(value("--token")?),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// A synthetic legacy event number `i`.
fn synthetic_event(i: usize) -> serde_json::Value {
    let ns = format!("ns-{}", i % 10);
    serde_json::json!({
        "metadata": {"name": format!("pod-{i}.{i:016x}"), "namespace": ns},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": format!("pod-{i}"), "namespace": ns},
        "reason": if i.is_multiple_of(3) { "BackOff" } else { "Started" },
        "message": format!("synthetic event {i}"),
        "type": if i.is_multiple_of(3) { "Warning" } else { "Normal" },
        "source": {"component": "kubelet", "host": "node-1"},
        "count": 1,
        "firstTimestamp": "2024-05-01T12:00:00Z",
        "lastTimestamp": "2024-05-01T12:00:00Z",
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        token: args.token,
        ..Options::default()
    };
    let server = match FakeApiServer::start_on(options, args.port).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fake-apiserver: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig
        && let Err(e) = server.write_kubeconfig(path)
    {
        eprintln!("fake-apiserver: cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    let cluster = server.cluster();
    for i in 0..args.events {
        let ev = synthetic_event(i);
        let ns = ev["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if let Err(e) = cluster.create_event(&ns, ev) {
            eprintln!("fake-apiserver: cannot create event {i}: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("{}", server.url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("fake-apiserver: cannot wait for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    drop(server);
    ExitCode::SUCCESS
}
