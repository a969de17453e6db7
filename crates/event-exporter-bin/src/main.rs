//! `event-exporter`: export Kubernetes events to webhooks, Slack and Grafana, routed by
//! match/drop rules. This binary wires the libraries from a YAML config. Without a
//! subcommand it watches the cluster (as upstream's binary does); the offline subcommands
//! (`check`, `route`, `render`, `run`) need no cluster.

mod commands;
mod events;
mod load;
mod logging;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Export Kubernetes events to webhooks, Slack and Grafana.
#[derive(Debug, Parser)]
#[command(name = "event-exporter", version, about)]
struct Cli {
    /// The config file (upstream's `-conf`; default `config.yaml`).
    #[arg(
        long = "config",
        visible_alias = "conf",
        global = true,
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Where `/metrics`, `/healthz` and `/readyz` listen when watching (upstream's
    /// `-metrics-address`).
    #[arg(long, value_name = "ADDR", default_value = ":2112")]
    metrics_address: String,

    /// A kubeconfig file (default: in-cluster, else `$KUBECONFIG` or `~/.kube/config`).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,

    /// After SIGTERM, how long deliveries under way may still take when watching (seconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 25)]
    shutdown_grace: u64,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config: exit 0, or non-zero with every error found.
    Check,
    /// Print the receivers each event reaches: one JSON line per input event.
    Route {
        /// Events: JSON lines, or a `kubectl get events -o json` List; `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        events: PathBuf,
    },
    /// Print exactly what each receiver would send for each event, without sending it.
    Render {
        /// Events: JSON lines, or a `kubectl get events -o json` List; `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        events: PathBuf,
        /// Only this receiver.
        #[arg(long, value_name = "NAME")]
        receiver: Option<String>,
        /// Show tokens and Authorization values instead of `***`.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Deliver every event of a file through the real pipeline (whatever the events' age),
    /// then print a summary per receiver. Exits non-zero if any delivery was given up.
    Run {
        /// Events: JSON lines, or a `kubectl get events -o json` List; `-` for stdin.
        #[arg(long, value_name = "FILE|-")]
        events: PathBuf,
        /// After SIGTERM or Ctrl-C, how long queued deliveries may still take (seconds).
        #[arg(long, value_name = "SECONDS", default_value_t = 30)]
        shutdown_timeout: u64,
    },
}

/// Upstream's flags are Go flags, written with one dash (`-conf=/data/config.yaml`): accept
/// those spellings so existing manifests keep working.
fn go_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const GO_FLAGS: &[&str] = &["conf", "config", "metrics-address", "kubeconfig"];
    args.map(|arg| match arg.to_str() {
        Some(s)
            if s.starts_with('-')
                && !s.starts_with("--")
                && GO_FLAGS.contains(&s[1..].split('=').next().unwrap_or_default()) =>
        {
            format!("-{s}").into()
        }
        _ => arg,
    })
    .collect()
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(go_style_args(std::env::args_os()));
    let config = cli.config.unwrap_or_else(|| PathBuf::from("config.yaml"));
    if cli.command.is_none() {
        let loaded = match load::read(&config) {
            Ok(loaded) => loaded,
            Err(problems) => return load::report(&config, &problems),
        };
        load::logging(&loaded).init();
        let opts = watch::WatchOptions {
            metrics_address: cli.metrics_address,
            kubeconfig: cli.kubeconfig,
            shutdown_grace: std::time::Duration::from_secs(cli.shutdown_grace),
        };
        return match watch::watch(&config, loaded, &opts) {
            Ok(code) => code,
            Err(err) => {
                tracing::error!("{err:#}");
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    // `run` logs as its config says (what it delivers goes to its receivers, not to stdout);
    // the other commands log at info (a config that does not load is reported anyway).
    match &cli.command {
        Some(Command::Run { .. }) => load::read(&config)
            .map(|c| load::logging(&c))
            .unwrap_or_default()
            .init(),
        _ => logging::Logging::default().init(),
    }
    let result = match cli.command {
        Some(Command::Check) => commands::check(&config),
        Some(Command::Route { events }) => commands::route(&config, &events),
        Some(Command::Render {
            events,
            receiver,
            show_secrets,
        }) => commands::render(&config, &events, receiver.as_deref(), show_secrets),
        Some(Command::Run {
            events,
            shutdown_timeout,
        }) => commands::run(
            &config,
            &events,
            std::time::Duration::from_secs(shutdown_timeout),
        ),
        None => Ok(ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
