//! The `event-exporter` binary, run as a user runs it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn compat() -> PathBuf {
    root().join("tests/fixtures/compat")
}

fn exporter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_event-exporter"));
    cmd.env("WEBHOOK_URL", "http://127.0.0.1:9/hook")
        .env("GRAFANA_URL", "http://127.0.0.1:9")
        .env("SLACK_TOKEN", "xoxb-secret")
        .env("GRAFANA_TOKEN", "glsa-secret")
        .env("RUST_LOG", "warn");
    cmd
}

fn run(args: &[&str]) -> Output {
    exporter().args(args).output().unwrap()
}

fn run_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = exporter()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ee-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn route_replays_the_corpus_through_the_cli() {
    let events = compat().join("events.jsonl");
    let evs: Vec<serde_json::Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut configs: Vec<_> = std::fs::read_dir(compat().join("configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    configs.sort();
    for cfg in configs {
        let stem = cfg.file_stem().unwrap().to_str().unwrap().to_owned();
        let out = run(&["route", "--config", s(&cfg), "--events", s(&events)]);
        assert!(out.status.success(), "{stem}: {}", text(&out.stderr));
        let got = json_lines(&out);
        let want: Vec<serde_json::Value> =
            std::fs::read_to_string(compat().join("routes").join(format!("{stem}.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        assert_eq!(got.len(), want.len(), "{stem}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g["event"], i);
            let mut w = w["receivers"].as_array().unwrap().clone();
            // The documented glob departure (see core's compat_routes.rs): `*test*` drops.
            let ns = evs[i]["metadata"]["namespace"].as_str().unwrap_or("");
            if stem == "upstream-readme" && ns.contains("test") {
                w.retain(|r| r != "critical-events-queue");
            }
            assert_eq!(g["receivers"].as_array().unwrap(), &w, "{stem} event {i}");
        }
    }
}

#[test]
fn templates_corpus_renders_through_the_cli() {
    let dir = TempDir::new("templates");
    let events: Vec<String> = std::fs::read_to_string(compat().join("events.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let cases: Vec<serde_json::Value> = std::fs::read_to_string(compat().join("templates.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Group cases by template: one stdout receiver whose layout is {v: TEMPLATE}.
    let mut by_template: std::collections::BTreeMap<&str, Vec<&serde_json::Value>> =
        Default::default();
    for c in &cases {
        by_template
            .entry(c["template"].as_str().unwrap())
            .or_default()
            .push(c);
    }
    let (mut total, mut agree) = (0usize, 0usize);
    let mut mismatches = Vec::new();
    for (i, (template, cases)) in by_template.iter().enumerate() {
        let yaml_template = serde_json::to_string(template).unwrap(); // JSON strings are YAML
        let config = dir.file(
            &format!("t{i}.yaml"),
            &format!("route:\n  match:\n  - receiver: t\nreceivers:\n- name: t\n  stdout:\n    layout:\n      v: {yaml_template}\n"),
        );
        let input: String = cases
            .iter()
            .map(|c| format!("{}\n", events[c["event"].as_u64().unwrap() as usize]))
            .collect();
        // `parse` errors must be refused when the config loads; `field` errors may be (better)
        // or may fail at render.
        let kind = cases[0]["error_kind"].as_str().unwrap_or("");
        let check = run(&["check", "--config", s(&config)]);
        if !check.status.success() {
            total += cases.len();
            if matches!(kind, "parse" | "field")
                && text(&check.stderr).contains("layout.v: template")
            {
                agree += cases.len();
            } else {
                mismatches.push(format!(
                    "{}: refused at load: {}",
                    cases[0]["id"],
                    text(&check.stderr)
                ));
            }
            continue;
        }
        if kind == "parse" {
            total += cases.len();
            mismatches.push(format!(
                "{}: parse error not reported by check",
                cases[0]["id"]
            ));
            continue;
        }
        let out = run_stdin(&["render", "--config", s(&config), "--events", "-"], &input);
        let lines = json_lines(&out);
        assert_eq!(
            lines.len(),
            cases.len(),
            "{template}: {}",
            text(&out.stderr)
        );
        for (case, line) in cases.iter().zip(&lines) {
            total += 1;
            let got = line["requests"][0]["body"]["v"].as_str();
            let ok = match (case.get("output"), got) {
                (Some(want), Some(got)) if case["compare"] == "json" => {
                    serde_json::from_str::<serde_json::Value>(want.as_str().unwrap()).ok()
                        == serde_json::from_str::<serde_json::Value>(got).ok()
                }
                (Some(want), Some(got)) => want.as_str() == Some(got),
                (None, None) => line.get("error").is_some(),
                (None, Some(got)) => case.get("alternative").and_then(|a| a.as_str()) == Some(got),
                (Some(_), None) => false,
            };
            if ok {
                agree += 1;
            } else {
                mismatches.push(format!(
                    "{}: want {:?} got {}",
                    case["id"],
                    case.get("output"),
                    line
                ));
            }
        }
    }
    assert_eq!(total, cases.len());
    let seed_bad: Vec<_> = mismatches
        .iter()
        .filter(|m| m.starts_with("\"seed-"))
        .collect();
    assert!(
        seed_bad.is_empty(),
        "seed templates must all agree: {seed_bad:#?}"
    );
    assert!(
        agree * 100 >= total * 99,
        "{agree}/{total} agree; mismatches:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn check_accepts_the_example_and_conf_is_an_alias() {
    let example = root().join("examples/config.yaml");
    let out = run(&["check", "--config", s(&example)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (5 receivers)"));
    // The glob pattern is warned about, with its place.
    assert!(
        text(&out.stderr).contains("route.routes[1].drop[0].namespace"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["--conf", s(&example), "check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn every_example_config_checks_and_renders() {
    for name in ["config.yaml", "slack.yaml", "grafana.yaml"] {
        let cfg = root().join("examples").join(name);
        let out = run(&["check", "--config", s(&cfg)]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let events = root().join("examples/events.jsonl");
        let out = run(&["render", "--config", s(&cfg), "--events", s(&events)]);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let lines = json_lines(&out);
        assert!(!lines.is_empty(), "{name} renders something");
        assert!(
            text(&out.stdout).contains("gs-prod-1"),
            "{name}: clusterName reaches the templates"
        );
    }
}

#[test]
fn check_accepts_every_corpus_config_including_the_seed_chart() {
    for entry in std::fs::read_dir(compat().join("configs")).unwrap() {
        let path = entry.unwrap().path();
        let out = run(&["check", "--config", s(&path)]);
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains('\u{1b}'),
            "no colour codes when not a terminal"
        );
    }
}

#[test]
fn check_reports_every_problem_and_fails() {
    let dir = TempDir::new("check");
    let cfg = dir.file(
        "bad.yaml",
        r#"route:
  routes:
    - match:
        - kind: "[a-"
          receiver: nowhere
    - drop:
        - reason: "Back(Off"
receivers:
  - name: a
    webhook:
      endpoint: "http://127.0.0.1:9"
      layout:
        text: "{{ .Reason "
  - name: a
    stdout: {}
  - name: b
    webhook: {}
  - name: c
    opsgenie: {}
"#,
    );
    let out = run(&["check", "--config", s(&cfg)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for needle in [
        "route.routes[0].match[0].kind: `[a-` is neither a valid regular expression",
        "route.routes[0].match[0].receiver: receiver `nowhere` is not defined",
        "receivers[0] `a` (webhook): layout.text:",
        "receivers[1] `a` (stdout): duplicate receiver name (first defined at receivers[0])",
        "receivers[2] `b` (webhook): endpoint: missing",
        "receivers[3] `c` (opsgenie): the `opsgenie` receiver kind is not implemented yet",
        "6 problems found",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    // `Back(Off` is not a regex, but it is a valid glob: a warning, not an error.
    assert!(err.contains("route.routes[1].drop[0].reason"), "{err}");
}

#[test]
fn check_reports_yaml_errors_with_line_and_column() {
    let dir = TempDir::new("yaml");
    let unknown = dir.file(
        "unknown.yaml",
        "route:\n  routes:\n    - match:\n        - namspace: x\n",
    );
    let out = run(&["check", "--config", s(&unknown)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4, column 11: route.routes[0].match[0].namspace: unknown field"),
        "{err}"
    );

    let malformed = dir.file("malformed.yaml", "route:\n  routes: [\n  - x: 1\n");
    let out = run(&["check", "--config", s(&malformed)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("line "), "{}", text(&out.stderr));

    let env = dir.file(
        "env.yaml",
        "receivers:\n  - name: a\n    webhook:\n      endpoint: ${EE_TEST_UNSET_VARIABLE}\n",
    );
    let out = run(&["check", "--config", s(&env)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 4, column 17: environment variable `EE_TEST_UNSET_VARIABLE` is not set"),
        "{err}"
    );

    let missing = run(&["check", "--config", "/nonexistent/config.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("cannot read /nonexistent/config.yaml"));
}

#[test]
fn render_shows_requests_and_hides_secrets() {
    let example = root().join("examples/config.yaml");
    let events = root().join("examples/events.jsonl");
    let out = run(&[
        "render",
        "--config",
        s(&example),
        "--events",
        s(&events),
        "--receiver",
        "grafana-team",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    assert!(!lines.is_empty());
    for line in &lines {
        assert_eq!(line["receiver"], "grafana-team");
        let req = &line["requests"][0];
        assert_eq!(req["method"], "POST");
        assert_eq!(req["url"], "http://127.0.0.1:9/api/annotations/graphite");
        assert_eq!(req["headers"]["Authorization"], "***");
        assert_eq!(req["headers"]["Content-Type"], "application/json");
        assert_eq!(req["body"]["tags"][0], "event");
        assert!(req["body"]["what"].as_str().unwrap().contains(" - "));
    }
    assert!(!text(&out.stdout).contains("glsa-secret"));
    // The config's clusterName is stamped on every event, as upstream does.
    assert!(
        lines
            .iter()
            .all(|l| l["requests"][0]["body"]["tags"][6] == "gs-prod-1"),
        "{lines:?}"
    );
    let shown = run(&[
        "render",
        "--config",
        s(&example),
        "--events",
        s(&events),
        "--receiver",
        "grafana-team",
        "--show-secrets",
    ]);
    assert!(text(&shown.stdout).contains("Bearer glsa-secret"));

    let unknown = run(&[
        "render",
        "--config",
        s(&example),
        "--events",
        s(&events),
        "--receiver",
        "nope",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("no such receiver"));
}

#[test]
fn webhook_without_layout_sends_the_whole_event() {
    let dir = TempDir::new("whole");
    let cfg = dir.file(
        "c.yaml",
        "route:\n  match: [{receiver: w}]\nreceivers:\n- name: w\n  webhook: {endpoint: 'http://127.0.0.1:9/x'}\n",
    );
    let first = std::fs::read_to_string(compat().join("events.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let out = run_stdin(
        &["render", "--config", s(&cfg), "--events", "-"],
        &format!("{first}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = json_lines(&out);
    let body = &lines[0]["requests"][0]["body"];
    assert_eq!(
        body,
        &serde_json::from_str::<serde_json::Value>(&first).unwrap()
    );
}

#[test]
fn malformed_event_lines_are_reported_and_the_rest_processed() {
    let example = root().join("examples/config.yaml");
    let mut input = std::fs::read_to_string(root().join("examples/events.jsonl")).unwrap();
    let good = input.lines().count();
    input.insert_str(0, "{\"metadata\": broken\n");
    let out = run_stdin(&["route", "--config", s(&example), "--events", "-"], &input);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 1: not a Kubernetes Event"),
        "{}",
        text(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), good + 1);
    assert!(lines[0]["error"].is_string());
    assert!(lines[1..].iter().all(|l| l["receivers"].is_array()));
}

#[test]
fn kubectl_list_input() {
    let example = root().join("examples/config.yaml");
    let items: Vec<serde_json::Value> =
        std::fs::read_to_string(root().join("examples/events.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out = run_stdin(
        &["route", "--config", s(&example), "--events", "-"],
        &list.to_string(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(json_lines(&out).len(), items.len());
}

#[test]
fn watching_without_a_cluster_is_a_clear_error() {
    // No subcommand watches the cluster; here there is none to find.
    let home = std::env::temp_dir().join(format!("ee-cli-home-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let out = exporter()
        .args(["--conf", s(&root().join("examples/config.yaml"))])
        .env("HOME", &home)
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no cluster found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn log_settings_upstream_refuses_are_refused_and_run_logs_as_configured() {
    let dir = TempDir::new("logs");
    let bad = dir.file(
        "bad.yaml",
        "logLevel: verbose\nlogFormat: yaml\nreceivers:\n  - name: out\n    stdout: {}\n",
    );
    for args in [
        &["check", "--config", s(&bad)][..],
        &["--config", s(&bad)][..],
    ] {
        let out = exporter()
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("logLevel: unknown level `verbose`"), "{err}");
        assert!(err.contains("logFormat: unknown format `yaml`"), "{err}");
    }
    // `run` logs in the configured format (here: the summary of a receiver that cannot send).
    let json = dir.file(
        "json.yaml",
        "logLevel: warn\nlogFormat: json\nroute:\n  match:\n    - receiver: hook\nreceivers:\n  - name: hook\n    webhook:\n      endpoint: http://127.0.0.1:9/x\n    delivery: {maxAttempts: 1}\n",
    );
    let events = dir.file(
        "events.jsonl",
        r#"{"metadata":{"name":"a","uid":"u"},"involvedObject":{"kind":"Pod"}}"#,
    );
    let out = exporter()
        .env_remove("RUST_LOG")
        .args(["run", "--config", s(&json), "--events", s(&events)])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    let warn = err
        .lines()
        .find(|l| l.contains("delivery given up"))
        .unwrap_or_else(|| panic!("no warning in {err}"));
    let line: serde_json::Value = serde_json::from_str(warn).expect("a JSON log line");
    assert_eq!(line["level"], "WARN", "{warn}");
}

#[test]
fn endless_or_deeply_nested_configs_are_refused_with_their_place() {
    let out = run(&["check", "--config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("larger than 16 MiB"),
        "{}",
        text(&out.stderr)
    );
    let dir = TempDir::new("deep");
    let deep = dir.file(
        "deep.yaml",
        &format!("route: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let out = run(&["check", "--config", s(&deep)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("line 1, column 136: collections nested deeper than 128 levels"),
        "{err}"
    );
    let nested = dir.file(
        "nested.yaml",
        "clusterName: ${NOPE:-${ALSO_NOPE:-fallback}}\n",
    );
    assert!(run(&["check", "--config", s(&nested)]).status.success());
}

#[test]
fn render_and_check_mask_what_the_config_marks_secret() {
    let dir = TempDir::new("mask");
    let cfg = dir.file(
        "mask.yaml",
        r#"route:
  match:
    - receiver: hook
    - receiver: chat
receivers:
  - name: hook
    webhook:
      endpoint: "https://api.example.com/v1/events?code=${FUNC_CODE}"
      headers:
        Ocp-Apim-Subscription-Key: "${SUB_KEY}"
        X-Team: "${TEAM_KEY}"
        X-Plain: "visible"
      layout:
        text: "{{ .Reason }} for ${TEAM}"
  - name: chat
    slack:
      webhookURL: "https://chat.example.com/hooks/abc-sekret-path"
      message: "{{ .Message }}"
"#,
    );
    let events = dir.file(
        "events.jsonl",
        r#"{"metadata":{"name":"a","uid":"u"},"involvedObject":{"kind":"Pod"},"reason":"BackOff","message":"m"}"#,
    );
    let out = exporter()
        .env("FUNC_CODE", "func-code-secret")
        .env("SUB_KEY", "subscription-key-secret")
        .env("TEAM", "team-a")
        .env("TEAM_KEY", "team-key-1")
        .args(["render", "--config", s(&cfg), "--events", s(&events)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    for secret in [
        "func-code-secret",
        "subscription-key-secret",
        "abc-sekret-path",
    ] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    let lines = json_lines(&out);
    let hook = &lines[0]["requests"][0];
    assert_eq!(hook["url"], "https://api.example.com/v1/events?***");
    assert_eq!(hook["headers"]["Ocp-Apim-Subscription-Key"], "***");
    // A value from the environment in a header is taken for a secret (and masked wherever it
    // shows); in a layout alone it is not.
    assert_eq!(hook["headers"]["X-Team"], "***");
    assert_eq!(hook["headers"]["X-Plain"], "visible");
    assert_eq!(hook["body"]["text"], "BackOff for team-a");
    assert_eq!(
        lines[1]["requests"][0]["url"],
        "https://chat.example.com/***"
    );

    // `check` never repeats a credential of a URL it refuses.
    let bad = dir.file(
        "bad.yaml",
        "receivers:\n  - name: hook\n    webhook:\n      endpoint: \"ftp://user:pa55word@example.com/x\"\n",
    );
    let out = run(&["check", "--config", s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("must be an http:// or https:// URL"), "{err}");
    assert!(!err.contains("pa55word"), "{err}");
}

#[test]
fn errors_quote_a_huge_value_briefly() {
    let dir = TempDir::new("huge");
    let huge = "x".repeat(1 << 20);
    let cfg = dir.file(
        "huge.yaml",
        &format!(
            "route:\n  match:\n    - receiver: \"{huge}\"\n      reason: \"[{huge}\"\nreceivers:\n  - name: \"{huge}\"\n    webhook:\n      endpoint: http://127.0.0.1:9\n      method: \"{huge}\"\n  - name: b\n    webhook:\n      endpoint: {{x: 1}}\n      timeout: \"{huge}\"\n"
        ),
    );
    let out = run(&["check", "--config", s(&cfg)]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.len() < 8 * 1024, "{} bytes of errors", err.len());
    assert!(
        err.contains("4 problems found") || err.contains("problem"),
        "{err}"
    );
}
