//! Loading a config into a router and receivers, with every problem reported.

use std::path::Path;
use std::process::ExitCode;

use event_exporter_core::{Config, Router};

use crate::logging::Logging;
use event_exporter_sinks::proxy::ProxySettings;
use event_exporter_sinks::{BuildEnv, BuiltReceiver};

/// A loaded, compiled configuration.
pub(crate) struct Loaded {
    pub(crate) router: Router,
    /// The receivers (sink and delivery settings), indexed like the router's receivers (empty
    /// when not built).
    pub(crate) receivers: Vec<BuiltReceiver>,
    /// `clusterName`: stamped on every event, as upstream does (empty: leave events as read).
    pub(crate) cluster_name: String,
}

/// What to do with the receivers.
pub(crate) enum Receivers<'a> {
    /// Only check their names (what `route` needs: configs with receivers this build cannot
    /// send to still route).
    NamesOnly,
    /// Build them in `env`.
    Build(&'a BuildEnv<'a>),
}

fn at(path: &Path, e: &dyn std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Reads `path` (YAML, `${VAR}` expansion, keys, `logLevel`/`logFormat`); the error lists
/// every problem found.
pub(crate) fn read(path: &Path) -> Result<Config, Vec<String>> {
    let config = Config::load_file(path)
        .map_err(|errs| errs.iter().map(|e| at(path, e)).collect::<Vec<_>>())?;
    Logging::parse(&config.log_level, &config.log_format)
        .map_err(|errs| errs.iter().map(|e| at(path, e)).collect::<Vec<_>>())?;
    Ok(config)
}

/// How `config` (already [`read`]) says to log.
pub(crate) fn logging(config: &Config) -> Logging {
    Logging::parse(&config.log_level, &config.log_format).unwrap_or_default()
}

/// The route tree of `config` (read from `path`); warnings are logged.
pub(crate) fn routes(path: &Path, config: &Config) -> Result<Router, Vec<String>> {
    let names: Vec<&str> = config.receivers.iter().map(|r| r.name.as_str()).collect();
    match Router::compile(&config.route, &names) {
        Ok(router) => {
            for w in router.warnings() {
                tracing::warn!("{}", at(path, w));
            }
            Ok(router)
        }
        Err(errs) => {
            for w in &errs.warnings {
                tracing::warn!("{}", at(path, w));
            }
            Err(errs.errors.iter().map(|e| at(path, e)).collect())
        }
    }
}

/// The receivers of `config` (read from `path`), as asked.
pub(crate) fn receivers(
    path: &Path,
    config: &Config,
    receivers: Receivers<'_>,
) -> Result<Vec<BuiltReceiver>, Vec<String>> {
    let problems = |errs: Vec<event_exporter_sinks::SinkConfigError>| {
        errs.iter().map(|e| at(path, e)).collect::<Vec<_>>()
    };
    match receivers {
        Receivers::Build(env) => event_exporter_sinks::build_receivers_in(
            config,
            event_exporter_sinks::default_delivery(),
            env,
        )
        .map_err(problems),
        Receivers::NamesOnly => event_exporter_sinks::check_names(config)
            .map(|()| Vec::new())
            .map_err(problems),
    }
}

/// Compiles `config` (read from `path`): the route tree and, as asked, the receivers. The
/// error lists every problem found.
pub(crate) fn compile(
    path: &Path,
    config: &Config,
    which: Receivers<'_>,
) -> Result<Loaded, Vec<String>> {
    match (routes(path, config), receivers(path, config, which)) {
        (Ok(router), Ok(receivers)) => Ok(Loaded {
            router,
            receivers,
            cluster_name: config.cluster_name.clone(),
        }),
        (router, receivers) => Err(router
            .err()
            .into_iter()
            .chain(receivers.err())
            .flatten()
            .collect()),
    }
}

/// Reads and compiles `path` for the offline commands (receivers reach out through the
/// proxies in the environment; `build_sinks` false: names only).
pub(crate) fn load(path: &Path, build_sinks: bool) -> Result<Loaded, Vec<String>> {
    let config = read(path)?;
    let proxy = ProxySettings::from_env();
    let env = BuildEnv::new(&proxy);
    let receivers = if build_sinks {
        Receivers::Build(&env)
    } else {
        Receivers::NamesOnly
    };
    compile(path, &config, receivers)
}

/// Prints every problem and their count; the exit code to leave with.
pub(crate) fn report(path: &Path, problems: &[String]) -> ExitCode {
    for p in problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "{}: {} problem{} found",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    ExitCode::FAILURE
}
