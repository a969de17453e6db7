//! `event-exporter`: export Kubernetes events to webhooks, Slack and Grafana, routed by
//! match/drop rules. This binary wires the libraries from a YAML config; the offline
//! subcommands (`check`, `route`, `render`) need no cluster.

mod commands;
mod events;
mod load;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Export Kubernetes events to webhooks, Slack and Grafana.
#[derive(Debug, Parser)]
#[command(name = "event-exporter", version, about)]
struct Cli {
    /// The config file (as upstream; the watch itself is not available in this build).
    #[arg(
        long = "config",
        visible_alias = "conf",
        global = true,
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let Some(config) = cli.config else {
        eprintln!("error: --config FILE is required (see --help)");
        return ExitCode::from(2);
    };
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
        None => Err(anyhow::anyhow!(
            "watching a cluster is not available in this build yet; use `check`, `route`, `render` or `run` (see --help)"
        )),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
