//! Loading a config into a router and sinks, with every problem reported.

use std::path::Path;

use event_exporter_core::{Config, Router, Sink};
use event_exporter_sinks::delivery::DispatchOptions;

/// A loaded, compiled configuration.
pub(crate) struct Loaded {
    pub(crate) router: Router,
    /// The receivers' sinks, indexed like the router's receivers (empty when not built).
    pub(crate) sinks: Vec<Box<dyn Sink>>,
    /// Each receiver's queue and retry settings, indexed like `sinks`.
    pub(crate) options: Vec<DispatchOptions>,
    /// `clusterName`: stamped on every event, as upstream does (empty: leave events as read).
    pub(crate) cluster_name: String,
}

/// Loads and compiles `path`. With `build_sinks` false only the route tree is compiled (what
/// `route` needs), so configs with receivers this build cannot send to still route. The error
/// lists every problem found.
pub(crate) fn load(path: &Path, build_sinks: bool) -> Result<Loaded, Vec<String>> {
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let config =
        Config::load_file(path).map_err(|errs| errs.iter().map(|e| at(e)).collect::<Vec<_>>())?;
    let mut problems = Vec::new();
    let names: Vec<&str> = config.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&config.route, &names).map_err(|errs| {
        for w in &errs.warnings {
            tracing::warn!("{}", at(w));
        }
        problems.extend(errs.errors.iter().map(|e| at(e)));
    });
    let receivers = if build_sinks {
        event_exporter_sinks::build_receivers(&config, event_exporter_sinks::default_delivery())
            .map_err(|errs| problems.extend(errs.iter().map(|e| at(e))))
    } else {
        event_exporter_sinks::check_names(&config)
            .map_err(|errs| problems.extend(errs.iter().map(|e| at(e))))
            .map(|()| Vec::new())
    };
    match (router, receivers) {
        (Ok(router), Ok(receivers)) => {
            let (sinks, options) = receivers.into_iter().unzip();
            for w in router.warnings() {
                tracing::warn!("{}", at(w));
            }
            Ok(Loaded {
                router,
                sinks,
                options,
                cluster_name: config.cluster_name.clone(),
            })
        }
        _ => Err(problems),
    }
}
