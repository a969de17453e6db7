//! The Slack sink against a fake Slack on loopback: the seed app's upgrade thread, retries
//! of transient failures, permanent errors, incoming webhooks, and config validation.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher, RetryPolicy, StatsSnapshot};
use serde_json::json;
use support::fake_slack::{FakeSlack, Fault};

const TOKEN: &str = "xoxb-test-token";

fn compat(path: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/compat/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn fast_retries() -> DispatchOptions {
    DispatchOptions {
        queue_capacity: 64,
        retry: RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(10),
        },
    }
}

/// The seed chart's rendered config, its Slack receiver pointed at the fake, its webhook
/// receivers at the fake's incoming-webhook route (as the seed's WEBHOOK_URL is).
fn seed(fake: &FakeSlack) -> (Router, Config) {
    let text = compat("configs/seed-chart-rendered.yaml");
    let webhook = fake.webhook_url();
    let mut cfg = Config::load_str(&text, |name| match name {
        "WEBHOOK_URL" => Some(webhook.clone()),
        "SLACK_TOKEN" => Some(TOKEN.into()),
        _ => None,
    })
    .unwrap();
    let slack = cfg
        .receivers
        .iter_mut()
        .find(|r| r.name == "slack-upgrade")
        .unwrap();
    slack
        .spec
        .as_mapping_mut()
        .unwrap()
        .insert("apiURL".into(), fake.api_url().into());
    let names: Vec<&str> = cfg.receivers.iter().map(|r| r.name.as_str()).collect();
    (Router::compile(&cfg.route, &names).unwrap(), cfg)
}

fn upgrade_event(uid: &str, reason: &str, message: &str, target: &str) -> Arc<EnrichedEvent> {
    let ev = json!({
        "metadata": {"name": format!("prod1.{uid}"), "namespace": "org-acme", "uid": uid,
                     "annotations": {"giantswarm.io/target-version": target}},
        "involvedObject": {"kind": "Cluster", "namespace": "org-acme", "name": "prod1",
                           "apiVersion": "cluster.x-k8s.io/v1beta2"},
        "reason": reason, "message": message, "type": "Normal", "count": 1,
        "source": {"component": "cluster-api-events-controller"},
        "firstTimestamp": "2026-11-23T10:00:00Z", "lastTimestamp": "2026-11-23T10:00:00Z"
    });
    Arc::new(EnrichedEvent::from_json_value(&ev).unwrap())
}

#[tokio::test]
async fn the_seed_upgrade_thread_start_progress_completion_and_reaction() {
    let fake = FakeSlack::start(TOKEN, &[("#upgrades", "C0UPGRADES")]).await;
    let (router, cfg) = seed(&fake);
    let sinks = event_exporter_sinks::build_all(&cfg).unwrap();
    let d = Dispatcher::start(router, sinks, fast_retries());
    d.dispatch_wait(upgrade_event(
        "u1",
        "UpgradingWithNodeRoll",
        "from 24.0.0 to 25.0.0",
        "25.0.0",
    ))
    .await;
    d.dispatch_wait(upgrade_event(
        "u2",
        "UpgradedControlPlane",
        "control plane at 25.0.0",
        "25.0.0",
    ))
    .await;
    d.dispatch_wait(upgrade_event("u3", "Upgraded", "to 25.0.0", "25.0.0"))
        .await;
    // The next upgrade of the same cluster opens a new thread.
    d.dispatch_wait(upgrade_event(
        "u4",
        "UpgradingWithoutNodeRoll",
        "from 25.0.0 to 25.0.1",
        "25.0.1",
    ))
    .await;
    let stats = d.shutdown(Duration::from_secs(30)).await;
    for (name, s) in &stats {
        assert_eq!(s.failed + s.dropped, 0, "{name}: {s:?}");
    }
    let slack = stats.iter().find(|(n, _)| n == "slack-upgrade").unwrap().1;
    assert_eq!(
        slack,
        StatsSnapshot {
            sent: 4,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );

    let posts: Vec<_> = fake
        .messages()
        .into_iter()
        .filter(|m| m.channel == "C0UPGRADES")
        .collect();
    assert_eq!(posts.len(), 4);
    let parent = &posts[0];
    assert_eq!(
        parent.body["text"],
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` from 24.0.0 to 25.0.0 has begun. This upgrade will replace nodes.\n"
    );
    assert_eq!(parent.body["channel"], "#upgrades");
    assert!(parent.body.get("thread_ts").is_none());
    assert_eq!(posts[1].body["thread_ts"], parent.ts.as_str());
    assert_eq!(
        posts[1].body["text"],
        ":white_check_mark: Control plane upgrade completed for `org-acme/prod1` on `gs-prod-1`.\n"
    );
    assert_eq!(posts[2].body["thread_ts"], parent.ts.as_str());
    assert_eq!(
        posts[2].body["text"],
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` has completed to 25.0.0.\n"
    );
    assert!(
        posts[3].body.get("thread_ts").is_none(),
        "a new upgrade is a new thread"
    );
    assert_eq!(
        fake.reactions(),
        vec![(
            "C0UPGRADES".to_owned(),
            parent.ts.clone(),
            "white_check_mark".to_owned()
        )]
    );
    // Every Web API call carried the bot token; the webhook receivers posted to the webhook.
    for r in fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/"))
    {
        assert_eq!(r.authorization.as_deref(), Some("Bearer xoxb-test-token"));
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json; charset=utf-8")
        );
    }
    // The seed's webhook receivers. Its patterns are unanchored, so `reason: Upgraded` also
    // matches `UpgradedControlPlane`: that event reaches two receivers, as in Go. Receivers
    // deliver independently, so only each one's own order is defined: compare as a set.
    let mut hooks: Vec<String> = fake
        .messages()
        .into_iter()
        .filter(|m| m.channel == "webhook")
        .map(|m| m.body["text"].as_str().unwrap().to_owned())
        .collect();
    hooks.sort();
    let mut want = [
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` from 24.0.0 to 25.0.0 has begun. This upgrade will replace nodes.",
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` has completed control plane at 25.0.0.",
        "Control plane upgrade completed for `org-acme/prod1` on `gs-prod-1`",
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` has completed to 25.0.0.",
        "The cluster upgrade of `org-acme/prod1` on `gs-prod-1` from 25.0.0 to 25.0.1 has begun. This upgrade will not replace nodes.",
    ];
    want.sort();
    assert_eq!(hooks, want);
}

fn plain_sink(fake: &FakeSlack, extra: &str) -> (Router, Vec<Box<dyn event_exporter_core::Sink>>) {
    let yaml = format!(
        "route:\n  match:\n  - receiver: s\nreceivers:\n- name: s\n  slack:\n    token: {TOKEN}\n    channel: '#alerts'\n    apiURL: {}\n    message: '{{{{ .Reason }}}} <{{{{ .InvolvedObject.Name }}}}> & co'\n{extra}",
        fake.api_url()
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    let router = Router::compile(&cfg.route, &["s"]).unwrap();
    (router, event_exporter_sinks::build_all(&cfg).unwrap())
}

#[tokio::test]
async fn transient_failures_are_retried_and_each_message_posted_once() {
    let fake = FakeSlack::start(TOKEN, &[("#alerts", "C0ALERTS")]).await;
    fake.fail_next([
        Fault::Status(500),
        Fault::SlackError("internal_error"),
        Fault::RateLimited(1),
        Fault::Reset,
    ]);
    let (router, sinks) = plain_sink(&fake, "");
    let d = Dispatcher::start(router, sinks, fast_retries());
    d.dispatch_wait(upgrade_event("a", "BackOff", "m", "1"))
        .await;
    d.dispatch_wait(upgrade_event("b", "Pulled", "m", "1"))
        .await;
    let stats = d.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 2,
            retried: 4,
            failed: 0,
            dropped: 0
        }
    );
    let posts = fake.messages();
    assert_eq!(posts.len(), 2);
    // Slack's escaping of &, <, >.
    assert_eq!(posts[0].body["text"], "BackOff &lt;prod1&gt; &amp; co");
    assert_eq!(posts[1].body["text"], "Pulled &lt;prod1&gt; &amp; co");
}

#[tokio::test]
async fn permanent_errors_are_given_up_without_retrying() {
    let fake = FakeSlack::start(TOKEN, &[("#other", "C0OTHER")]).await;
    let (router, sinks) = plain_sink(&fake, "");
    let d = Dispatcher::start(router, sinks, fast_retries());
    d.dispatch_wait(upgrade_event("a", "BackOff", "m", "1"))
        .await;
    let stats = d.shutdown(Duration::from_secs(30)).await;
    assert_eq!(
        stats[0].1,
        StatsSnapshot {
            sent: 0,
            retried: 0,
            failed: 1,
            dropped: 0
        }
    );
    assert_eq!(fake.requests().len(), 1, "channel_not_found is not retried");
}

/// A thread opened by event `a`, then its completion `b` whose reaction Slack first answers
/// with `reaction_error`; then event `c` of the same key. Returns the fake and the counters.
async fn thread_whose_reaction_first_fails(
    reaction_error: &'static str,
) -> (FakeSlack, StatsSnapshot) {
    let fake = FakeSlack::start(TOKEN, &[("#alerts", "C0ALERTS")]).await;
    let extra = "    threadKey: '{{ .InvolvedObject.Name }}'\n    completionCondition: '{{ if eq .Reason \"Upgraded\" }}done{{ end }}'\n    completionEmoji: ':tada:'\n";
    let (router, sinks) = plain_sink(&fake, extra);
    let d = Dispatcher::start(router, sinks, fast_retries());
    d.dispatch_wait(upgrade_event("a", "Upgrading", "m", "1"))
        .await;
    // Wait until the parent is posted, so the faults below meet the completion's requests.
    for _ in 0..500 {
        if d.stats()[0].1.sent == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(d.stats()[0].1.sent, 1, "the parent was posted");
    // The completion's post passes; its reaction gets the error.
    fake.fail_next([Fault::Pass, Fault::SlackError(reaction_error)]);
    d.dispatch_wait(upgrade_event("b", "Upgraded", "m", "1"))
        .await;
    d.dispatch_wait(upgrade_event("c", "Upgrading", "m", "1"))
        .await;
    let stats = d.shutdown(Duration::from_secs(30)).await[0].1;
    (fake, stats)
}

#[tokio::test]
async fn a_failed_reaction_is_retried_without_posting_twice() {
    let (fake, stats) = thread_whose_reaction_first_fails("internal_error").await;
    assert_eq!(
        stats,
        StatsSnapshot {
            sent: 3,
            retried: 1,
            failed: 0,
            dropped: 0
        }
    );
    let posts = fake.messages();
    assert_eq!(posts.len(), 3, "the completion message is posted once");
    assert_eq!(posts[1].body["thread_ts"], posts[0].ts.as_str());
    assert_eq!(
        fake.reactions(),
        vec![("C0ALERTS".into(), posts[0].ts.clone(), "tada".into())]
    );
    assert!(
        posts[2].body.get("thread_ts").is_none(),
        "the thread was closed"
    );
}

#[tokio::test]
async fn already_reacted_counts_as_success() {
    let (fake, stats) = thread_whose_reaction_first_fails("already_reacted").await;
    assert_eq!(
        stats,
        StatsSnapshot {
            sent: 3,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );
    assert!(fake.reactions().is_empty());
    assert!(
        fake.messages()[2].body.get("thread_ts").is_none(),
        "the thread was closed"
    );
}

#[tokio::test]
async fn a_reaction_slack_refuses_for_good_still_closes_the_thread() {
    let (fake, stats) = thread_whose_reaction_first_fails("missing_scope").await;
    assert_eq!(
        stats,
        StatsSnapshot {
            sent: 3,
            retried: 0,
            failed: 0,
            dropped: 0
        }
    );
    assert!(
        fake.messages()[2].body.get("thread_ts").is_none(),
        "the thread was closed"
    );
}

#[tokio::test]
async fn incoming_webhooks_post_text_and_attachments_without_a_token() {
    let fake = FakeSlack::start(TOKEN, &[]).await;
    let yaml = format!(
        "route:\n  match:\n  - receiver: s\nreceivers:\n- name: s\n  slack:\n    webhookURL: {}\n    message: '{{{{ .Reason }}}}'\n    title: 'T {{{{ .InvolvedObject.Name }}}}'\n    color: good\n    fields:\n      zeta: z\n      alpha: '{{{{ .Type }}}}'\n",
        fake.webhook_url()
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    let router = Router::compile(&cfg.route, &["s"]).unwrap();
    let d = Dispatcher::start(
        router,
        event_exporter_sinks::build_all(&cfg).unwrap(),
        fast_retries(),
    );
    d.dispatch_wait(upgrade_event("a", "BackOff", "m", "1"))
        .await;
    let stats = d.shutdown(Duration::from_secs(30)).await;
    assert_eq!(stats[0].1.sent, 1);
    let posted = &fake.messages()[0];
    assert_eq!(
        posted.body,
        json!({"text": "BackOff", "attachments": [{"color": "good", "title": "T prod1",
            "fields": [{"title": "alpha", "value": "Normal", "short": false},
                       {"title": "zeta", "value": "z", "short": false}]}]})
    );
    assert!(fake.requests()[0].authorization.is_none());
}

#[test]
fn bad_slack_config_is_refused_with_the_receiver_name() {
    let cfg = Config::from_yaml(
        "receivers:\n- name: a\n  slack: {message: x}\n- name: b\n  slack: {webhookURL: 'http://127.0.0.1:9/x', threadKey: k, message: x}\n- name: c\n  slack: {token: t, channel: c, message: '{{ .Nope }}'}\n",
    )
    .unwrap();
    let errors = event_exporter_sinks::build_all(&cfg).unwrap_err();
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.starts_with("receivers[0] `a` (slack): token: missing")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("receivers[0] `a` (slack): channel: missing")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("receivers[1] `b` (slack): threadKey:")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("receivers[2] `c` (slack): message:")),
        "{text:#?}"
    );
}

/// A provider that hands out one shared in-memory store and records what it was asked for.
#[derive(Debug, Default)]
struct RecordingProvider {
    store: Arc<event_exporter_sinks::slack::MemoryThreadStore>,
    asked: std::sync::Mutex<Vec<(String, String)>>,
}

impl event_exporter_sinks::slack::ThreadStoreProvider for RecordingProvider {
    fn configmap(
        &self,
        namespace: &str,
        name: &str,
    ) -> Arc<dyn event_exporter_sinks::slack::ThreadStore> {
        self.asked
            .lock()
            .unwrap()
            .push((namespace.to_owned(), name.to_owned()));
        self.store.clone()
    }
}

#[tokio::test]
async fn a_configmap_cache_uses_the_provided_thread_store() {
    use event_exporter_sinks::slack::ThreadStore as _;
    let fake = FakeSlack::start(TOKEN, &[("#upgrades", "C0UPGRADES")]).await;
    let (router, cfg) = seed(&fake);
    let provider = RecordingProvider::default();
    let proxy = event_exporter_sinks::proxy::ProxySettings::default();
    let env = event_exporter_sinks::BuildEnv {
        thread_stores: Some(&provider),
        ..event_exporter_sinks::BuildEnv::new(&proxy)
    };
    let built = event_exporter_sinks::build_receivers_in(
        &cfg,
        event_exporter_sinks::default_delivery(),
        &env,
    )
    .unwrap();
    assert_eq!(
        *provider.asked.lock().unwrap(),
        vec![(
            "monitoring".to_owned(),
            "release-name-thread-cache".to_owned()
        )]
    );
    let sinks = built.into_iter().map(|(s, _)| s).collect();
    let d = Dispatcher::start(router, sinks, fast_retries());
    d.dispatch_wait(upgrade_event(
        "u1",
        "UpgradingWithNodeRoll",
        "from 24.0.0 to 25.0.0",
        "25.0.0",
    ))
    .await;
    d.shutdown(Duration::from_secs(30)).await;
    let thread = provider
        .store
        .get("org-acme/prod1/25.0.0")
        .await
        .unwrap()
        .expect("the parent is remembered in the provided store");
    assert_eq!(thread.channel_id, "C0UPGRADES");
}
