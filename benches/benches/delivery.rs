//! Delivery throughput: the corpus events through upstream-readme.yaml's route tree, with every
//! receiver a webhook to a loopback HTTP server (keep-alive), through the real dispatcher
//! (per-receiver queues and workers). One iteration dispatches all 2000 events and waits until
//! every delivery is acknowledged; throughput counts deliveries.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use event_exporter_benches::{config, events};
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

async fn loopback_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn delivery(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = runtime.block_on(loopback_server());
    // upstream-readme's routes; every receiver a webhook to the loopback server.
    let mut cfg = config("upstream-readme");
    for r in &mut cfg.receivers {
        r.kind = "webhook".into();
        r.spec =
            serde_yaml_ng::from_str(&format!("endpoint: http://{addr}/{}", r.name)).expect("spec");
    }
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    let router = Router::compile(&cfg.route, &names).expect("routes");
    let events: Vec<Arc<EnrichedEvent>> = events().into_iter().map(Arc::new).collect();
    let deliveries: usize = events
        .iter()
        .map(|ev| {
            let mut n = 0;
            router.route(&ev.view(), |_| n += 1);
            n
        })
        .sum();
    let mut group = c.benchmark_group("delivery");
    group.throughput(Throughput::Elements(deliveries as u64));
    group.sample_size(10);
    group.bench_function("upstream-readme-webhooks", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let sinks = event_exporter_sinks::build_all(&cfg).expect("sinks");
                let d = Dispatcher::start(router.clone(), sinks, DispatchOptions::default());
                for ev in &events {
                    d.dispatch_wait(Arc::clone(ev)).await;
                }
                let stats = d.shutdown(Duration::from_secs(60)).await;
                let sent: u64 = stats.iter().map(|(_, s)| s.sent).sum();
                assert_eq!(sent as usize, deliveries, "every delivery acknowledged");
            })
        })
    });
    group.finish();
}

criterion_group!(benches, delivery);
criterion_main!(benches);
