//! The default command: watch the cluster and export (what upstream's binary does).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use event_exporter_core::Config;
use event_exporter_kube::checkpoint::{
    CheckpointStore, ConfigMapCheckpointStore, FileCheckpointStore,
};
use event_exporter_kube::enrich::{EnrichSettings, Enricher, KindFilter, rate_limited_client};
use event_exporter_kube::exporter::{Exporter, ExporterSettings};
use event_exporter_kube::leader::{LeaderElector, LeaseSettings, default_identity};
use event_exporter_kube::metrics::Metrics;
use event_exporter_kube::server::{self, Health};
use event_exporter_kube::threads::ConfigMapThreadStores;
use event_exporter_kube::watch::WatchSettings;
use event_exporter_sinks::BuildEnv;
use event_exporter_sinks::proxy::ProxySettings;

use crate::load::{self, Receivers};

/// The watch command's flags.
#[derive(Debug, Clone)]
pub(crate) struct WatchOptions {
    /// Where `/metrics`, `/healthz` and `/readyz` listen (`:2112`).
    pub(crate) metrics_address: String,
    /// A kubeconfig file (else in-cluster, `$KUBECONFIG` or `~/.kube/config`).
    pub(crate) kubeconfig: Option<std::path::PathBuf>,
    /// After SIGTERM, how long deliveries under way may still take.
    pub(crate) shutdown_grace: Duration,
}

/// The namespace the exporter runs in: the service account's, `$POD_NAMESPACE`, or the
/// kubeconfig context's.
fn own_namespace(kube_config: &kube::Config) -> String {
    const SA_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    if let Ok(ns) = std::env::var("POD_NAMESPACE")
        && !ns.trim().is_empty()
    {
        return ns.trim().to_owned();
    }
    if let Ok(ns) = std::fs::read_to_string(SA_NAMESPACE)
        && !ns.trim().is_empty()
    {
        return ns.trim().to_owned();
    }
    kube_config.default_namespace.clone()
}

async fn kube_config(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Config> {
    match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &Default::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))
        }
        None => kube::Config::infer().await.context(
            "no cluster found: not running in a pod, and no kubeconfig ($KUBECONFIG, ~/.kube/config or --kubeconfig)",
        ),
    }
}

/// Runs the exporter until SIGTERM or Ctrl-C.
pub(crate) fn watch(path: &Path, config: Config, opts: &WatchOptions) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(path, config, opts))
}

async fn run(path: &Path, config: Config, opts: &WatchOptions) -> anyhow::Result<ExitCode> {
    // The routes first: a broken config is refused before any connection is made.
    let router = match load::routes(path, &config) {
        Ok(router) => router,
        Err(problems) => return Ok(load::report(path, &problems)),
    };
    let listen = server::parse_listen_address(&opts.metrics_address)
        .with_context(|| format!("--metrics-address {}", opts.metrics_address))?;

    let kube_config = kube_config(opts.kubeconfig.as_deref()).await?;
    let namespace = own_namespace(&kube_config);
    // The watch, the Lease and the checkpoint use a client of their own: `kubeQPS` limits
    // lookups, and must neither make a relist of 100k events take minutes (200 pages) nor
    // hold Lease renewals behind a burst of lookups (leadership would flap).
    let coordination = event_exporter_kube::client::with_deadline(
        kube_config.clone(),
        event_exporter_kube::client::DEFAULT_DEADLINE,
    )
    .context("building the API client")?;
    // (0, unset, means upstream's defaults: 5 and 10.)
    let client = rate_limited_client(kube_config, config.kube_qps, config.kube_burst)
        .context("building the API client")?;

    let thread_stores = ConfigMapThreadStores::new(client.clone());
    let proxy = ProxySettings::from_env();
    let env = BuildEnv {
        thread_stores: Some(&thread_stores),
        ..BuildEnv::new(&proxy)
    };
    let receivers = match load::receivers(path, &config, Receivers::Build(&env)) {
        Ok(receivers) => receivers,
        Err(problems) => return Ok(load::report(path, &problems)),
    };

    let metrics = Arc::new(Metrics::new(&config.metrics_name_prefix));
    let health = Arc::new(Health::new(Duration::from_secs(300)));
    let identity = default_identity();
    let lease_name = if config.leader_election.leader_election_id.is_empty() {
        "event-exporter".to_owned()
    } else {
        config.leader_election.leader_election_id.clone()
    };

    let max_age = if config.max_event_age_seconds > 0 {
        config.max_event_age_seconds
    } else if config.throttle_period > 0 {
        config.throttle_period
    } else {
        5
    };
    let settings = ExporterSettings {
        watch: WatchSettings {
            namespace: (!config.namespace.is_empty()).then(|| config.namespace.clone()),
            reasons: config.watch_reasons.clone(),
            ..WatchSettings::default()
        },
        max_event_age: Duration::from_secs(max_age.unsigned_abs()),
        cluster_name: config.cluster_name.as_str().into(),
        checkpoint_interval: Duration::from_secs(
            config.checkpoint.interval_seconds.unwrap_or(5).max(1),
        ),
        shutdown_grace: opts.shutdown_grace,
        identity: identity.clone(),
        ..ExporterSettings::default()
    };
    let mut exporter = Exporter::new(
        coordination.clone(),
        router,
        receivers,
        Arc::clone(&metrics),
        Arc::clone(&health),
        settings,
    );
    if !config.omit_lookup {
        let enrich = EnrichSettings {
            cache_size: if config.cache_size > 0 {
                config.cache_size
            } else {
                1024
            },
            ..EnrichSettings::default()
        };
        exporter = exporter.with_enricher(Enricher::new(
            client.clone(),
            enrich,
            KindFilter::from_route(&config.route),
            Arc::clone(&metrics),
        ));
    }
    if config.checkpoint.enabled {
        let store: Arc<dyn CheckpointStore> = match &config.checkpoint.file {
            Some(file) => Arc::new(FileCheckpointStore::new(file)),
            None => {
                let cm = config.checkpoint.config_map.clone().unwrap_or_default();
                let name = if cm.name.is_empty() {
                    format!("{lease_name}-checkpoint")
                } else {
                    cm.name
                };
                let ns = if cm.namespace.is_empty() {
                    namespace.clone()
                } else {
                    cm.namespace
                };
                Arc::new(ConfigMapCheckpointStore::new(
                    coordination.clone(),
                    &ns,
                    &name,
                ))
            }
        };
        tracing::info!(store = %store.describe(), "checkpoint");
        exporter = exporter.with_checkpoint(store);
    } else {
        tracing::warn!("checkpoint disabled: every start is a first start");
    }
    if config.leader_election.enabled {
        let lease = LeaseSettings::new(&namespace, &lease_name, &identity);
        lease.validate().context("leaderElection")?;
        tracing::info!(lease = %format!("{namespace}/{lease_name}"), %identity, "leader election on");
        exporter = exporter.with_leader_election(LeaderElector::new(coordination.clone(), lease));
    }

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (--metrics-address)"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(listen), "serving /metrics, /healthz, /readyz");
    let (server_stop, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(server::serve(
        listener,
        Arc::new(exporter.metrics_source()),
        Arc::clone(&health),
        async move {
            let _ = server_stopped.await;
        },
    ));

    tracing::info!(
        config = %path.display(),
        namespace = if config.namespace.is_empty() { "(all)" } else { config.namespace.as_str() },
        "event-exporter {} watching events", env!("CARGO_PKG_VERSION")
    );
    let summary = exporter
        .run(async {
            crate::commands::shutdown_signal().await;
            tracing::info!("signal received: stopping the watch, draining deliveries");
        })
        .await?;
    let _ = server_stop.send(());
    let _ = server.await;
    for (name, s) in &summary.receivers {
        tracing::info!(
            receiver = %name,
            sent = s.sent,
            retried = s.retried,
            failed = s.failed,
            dropped = s.dropped,
            "receiver summary"
        );
    }
    Ok(ExitCode::SUCCESS)
}
