//! The `file` receiver: real lines in a real file, `deDot`, and the whole event without a layout.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::config::Config;
use event_exporter_core::{EnrichedEvent, Router};
use event_exporter_sinks::delivery::{DispatchOptions, Dispatcher};

#[tokio::test]
async fn file_receivers_append_one_json_line_per_event() {
    let dir = std::env::temp_dir().join(format!("ee-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (laid_out, whole) = (dir.join("laid-out.jsonl"), dir.join("whole.jsonl"));
    let yaml = format!(
        "route:\n  match: [{{receiver: a}}, {{receiver: b}}]\nreceivers:\n- name: a\n  file:\n    path: {}\n    deDot: true\n    layout: {{labels: '{{{{ toJson .InvolvedObject.Labels }}}}', reason: '{{{{ .Reason }}}} <x>'}}\n- name: b\n  file: {{path: {}}}\n",
        laid_out.display(),
        whole.display()
    );
    let cfg = Config::from_yaml(&yaml).unwrap();
    let router = Router::compile(&cfg.route, &["a", "b"]).unwrap();
    let d = Dispatcher::start(
        router,
        event_exporter_sinks::build_all(&cfg).unwrap(),
        DispatchOptions::default(),
    );
    let lines: Vec<String> = (0..3)
        .map(|i| {
            format!(
                r#"{{"metadata":{{"name":"e{i}","uid":"u{i}"}},"involvedObject":{{"kind":"Pod","labels":{{"app.kubernetes.io/name":"web"}},"deleted":false}},"reason":"R{i}","reportingComponent":"","reportingInstance":"","source":{{}},"firstTimestamp":null,"lastTimestamp":null,"eventTime":null,"clusterName":""}}"#
            )
        })
        .collect();
    for l in &lines {
        d.dispatch_wait(Arc::new(EnrichedEvent::from_json_str(l).unwrap()))
            .await;
    }
    let stats = d.shutdown(Duration::from_secs(10)).await;
    assert!(
        stats.iter().all(|(_, s)| s.sent == 3 && s.failed == 0),
        "{stats:?}"
    );
    let got = std::fs::read_to_string(&laid_out).unwrap();
    assert_eq!(
        got.lines().next().unwrap(),
        r#"{"labels":"{\"app_kubernetes_io/name\":\"web\"}","reason":"R0 \u003cx\u003e"}"#
    );
    assert_eq!(got.lines().count(), 3);
    // Without a layout: the whole event, in upstream's JSON shape.
    let whole_lines: Vec<serde_json::Value> = std::fs::read_to_string(&whole)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(whole_lines.len(), 3);
    assert_eq!(
        whole_lines[0]["involvedObject"]["labels"],
        want[0]["involvedObject"]["labels"]
    );
    assert_eq!(whole_lines[2]["reason"], "R2");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_file_path_that_cannot_be_written_is_refused_then_not_retried() {
    let dir = std::env::temp_dir().join(format!("ee-lines-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let build = |path: &std::path::Path| {
        let yaml = format!(
            "receivers:\n- name: a\n  file: {{path: '{}'}}\n",
            path.display()
        );
        event_exporter_sinks::build_all(&Config::from_yaml(&yaml).unwrap())
    };
    let err = build(&dir).unwrap_err();
    assert!(err[0].to_string().contains("is a directory"), "{err:?}");
    let err = build(&dir.join("missing/events.jsonl")).unwrap_err();
    assert!(err[0].to_string().contains("does not exist"), "{err:?}");
    // A path that stops being writable after the start: given up at once, not retried.
    let gone = dir.join("gone");
    std::fs::create_dir_all(&gone).unwrap();
    let sinks = build(&gone.join("events.jsonl")).unwrap();
    std::fs::remove_dir_all(&gone).unwrap();
    let cfg = Config::from_yaml("route:\n  match: [{receiver: a}]\n").unwrap();
    let d = Dispatcher::start(
        Router::compile(&cfg.route, &["a"]).unwrap(),
        sinks,
        DispatchOptions::default(),
    );
    d.dispatch_wait(Arc::new(
        EnrichedEvent::from_json_str(r#"{"metadata":{"uid":"u"},"involvedObject":{}}"#).unwrap(),
    ))
    .await;
    let stats = d.shutdown(Duration::from_secs(10)).await;
    assert_eq!((stats[0].1.failed, stats[0].1.retried), (1, 0), "{stats:?}");
    std::fs::remove_dir_all(dir).unwrap();
}
