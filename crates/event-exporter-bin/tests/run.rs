//! `event-exporter run`: real deliveries to a real loopback HTTP server.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Captured {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
    status: u16,
}

/// A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) answering from a script of
/// statuses, then 200; it records every request.
struct FakeHttp {
    port: u16,
    seen: Arc<Mutex<Vec<Captured>>>,
}

fn serve(stream: TcpStream, script: Arc<Mutex<VecDeque<u16>>>, seen: Arc<Mutex<Vec<Captured>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut status = script.lock().unwrap().pop_front().unwrap_or(200);
        if status == 0 {
            // A server that does not answer in time: the client must time out and retry.
            std::thread::sleep(std::time::Duration::from_secs(2));
            status = 200;
        }
        seen.lock().unwrap().push(Captured {
            method,
            path,
            headers,
            body: String::from_utf8(body).unwrap(),
            status,
        });
        let reason = if status == 200 { "OK" } else { "Error" };
        let reply = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

impl FakeHttp {
    fn start(script: Vec<u16>) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    fn start_on(listener: TcpListener, script: Vec<u16>) -> Self {
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (s, sc) = (Arc::clone(&seen), Arc::clone(&script));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (s, sc) = (Arc::clone(&s), Arc::clone(&sc));
                std::thread::spawn(move || serve(stream, sc, s));
            }
        });
        Self { port, seen }
    }
    fn seen(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }
}

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn config(dir: &std::path::Path, port: u16) -> PathBuf {
    config_with(dir, port, "")
}

/// The test config, with `delivery` as the receiver's delivery block (YAML flow map or "").
fn config_with(dir: &std::path::Path, port: u16, delivery: &str) -> PathBuf {
    let path = dir.join("run.yaml");
    let delivery = if delivery.is_empty() {
        String::new()
    } else {
        format!("    delivery: {delivery}\n")
    };
    std::fs::write(
        &path,
        format!(
            r#"route:
  match:
    - receiver: hook
receivers:
  - name: hook
{delivery}    webhook:
      endpoint: http://127.0.0.1:{port}/hook
      headers:
        Authorization: Bearer ${{HOOK_TOKEN}}
      layout:
        uid: "{{{{ .UID }}}}"
        text: "{{{{ .InvolvedObject.Kind }}}} {{{{ .Reason }}}}"
"#
        ),
    )
    .unwrap();
    path
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ee-run-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn exporter(cfg: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--events"])
        .arg(root().join("examples/events.jsonl"))
        .env("HOOK_TOKEN", "s3cr3t-token")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn every_event_is_delivered_once_despite_a_server_error() {
    let server = FakeHttp::start(vec![500]);
    let dir = tempdir("ok");
    let out = exporter(&config(&dir, server.port));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events = std::fs::read_to_string(root().join("examples/events.jsonl")).unwrap();
    let n = events.lines().count();
    assert!(
        stderr.contains(&format!("hook: sent {n}, retried 1, failed 0, dropped 0")),
        "{stderr}"
    );
    let seen = server.seen();
    assert_eq!(seen.len(), n + 1);
    // Exactly once each among the accepted requests, in input order.
    let accepted: Vec<serde_json::Value> = seen
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| serde_json::from_str(&c.body).unwrap())
        .collect();
    let uids: Vec<String> = events
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let got: Vec<&str> = accepted
        .iter()
        .map(|b| b["uid"].as_str().unwrap())
        .collect();
    assert_eq!(got, uids);
    // The failed attempt and its retry carried the same body.
    assert_eq!(seen[0].body, seen[1].body);
    for c in &seen {
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/hook");
        assert!(
            c.headers
                .contains(&("authorization".into(), "Bearer s3cr3t-token".into()))
        );
        assert!(
            c.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_permanent_error_is_given_up_logged_without_secrets_and_fails_the_run() {
    let server = FakeHttp::start(vec![400]);
    let dir = tempdir("bad");
    let out = exporter(&config(&dir, server.port));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let n = std::fs::read_to_string(root().join("examples/events.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        stderr.contains(&format!(
            "hook: sent {}, retried 0, failed 1, dropped 0",
            n - 1
        )),
        "{stderr}"
    );
    assert!(stderr.contains("delivery given up"), "{stderr}");
    assert!(stderr.contains("HTTP 400"), "{stderr}");
    assert!(!stderr.contains("s3cr3t-token"), "{stderr}");
    assert_eq!(server.seen().len(), n);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_request_that_times_out_is_retried() {
    let server = FakeHttp::start(vec![0]);
    let dir = tempdir("timeout");
    let cfg = config_with(
        &dir,
        server.port,
        "{timeout: 300ms, initialBackoff: 50ms, maxBackoff: 100ms}",
    );
    let out = exporter(&cfg);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let n = std::fs::read_to_string(root().join("examples/events.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        stderr.contains(&format!("hook: sent {n}, retried 1, failed 0, dropped 0")),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_receiver_down_for_a_while_gets_everything_once_it_is_back() {
    // Take a free port, close it (connections are refused), and bring the server up there
    // a little later.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempdir("down");
    let cfg = config_with(
        &dir,
        port,
        "{initialBackoff: 200ms, maxBackoff: 400ms, maxAttempts: 30, maxElapsed: 30s}",
    );
    let up = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        FakeHttp::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap(), vec![])
    });
    let out = exporter(&cfg);
    let server = up.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let n = std::fs::read_to_string(root().join("examples/events.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(
        stderr.contains(&format!("hook: sent {n}, retried ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("retried 0,"),
        "the first attempts were refused: {stderr}"
    );
    // Each event arrived exactly once, in order.
    let uids: Vec<String> = server
        .seen()
        .iter()
        .map(|c| {
            serde_json::from_str::<serde_json::Value>(&c.body).unwrap()["uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut unique = uids.clone();
    unique.dedup();
    assert_eq!(uids.len(), n);
    assert_eq!(unique.len(), n);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_delivery_settings_are_refused_by_check() {
    let dir = tempdir("badcfg");
    let cfg = config_with(&dir, 9, "{maxAttempts: 0, timeout: soon}");
    let out = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["check", "--config", cfg.to_str().unwrap()])
        .env("HOOK_TOKEN", "x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("receivers[0] `hook` (webhook): delivery.timeout"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_template_that_cannot_render_an_event_fails_that_delivery_only() {
    // One event makes the template build a dict that contains itself, one has the largest
    // count (a `printf` width from it is refused, as Go refuses it): neither crashes the run.
    let server = FakeHttp::start(vec![]);
    let dir = tempdir("hostile");
    let cfg = dir.join("hostile.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"route:
  match:
    - receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: http://127.0.0.1:{}/hook
      layout:
        text: '{{{{ if eq .Reason "Evil" }}}}{{{{ $d := dict }}}}{{{{ $_ := set $d "a" $d }}}}{{{{ toJson $d }}}}{{{{ end }}}}{{{{ printf "%*d" .Count 1 }}}}'
"#,
            server.port
        ),
    )
    .unwrap();
    let events = dir.join("events.jsonl");
    let event = |uid: &str, reason: &str, count: i64| {
        format!(
            r#"{{"metadata":{{"name":"{uid}","namespace":"ns","uid":"{uid}"}},"involvedObject":{{"kind":"Pod","name":"p"}},"reason":"{reason}","count":{count}}}"#
        )
    };
    std::fs::write(
        &events,
        [
            event("a", "BackOff", 2),
            event("b", "Evil", 3),
            event("c", "BackOff", 2147483647),
        ]
        .join("\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--events"])
        .arg(&events)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hook: sent 2, retried 0, failed 1, dropped 0"),
        "{stderr}"
    );
    assert!(stderr.contains("a dict cannot contain itself"), "{stderr}");
    let bodies: Vec<String> = server.seen().into_iter().map(|c| c.body).collect();
    assert_eq!(
        bodies,
        [r#"{"text":" 1"}"#, r#"{"text":"%!(BADWIDTH)1"}"#],
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A server that answers every request with `status` and the request itself echoed back (as
/// some endpoints and proxies do), plus text that would forge a log line.
fn echo_server(status: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut head = String::new();
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        head.push_str(&line);
                        if line == "\r\n" {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    reader.read_exact(&mut body).unwrap();
                    let echo = format!(
                        "{head}{}\nERROR forged log line \u{1b}[31mred",
                        String::from_utf8_lossy(&body)
                    );
                    let reply = format!(
                        "HTTP/1.1 {status} Echo\r\nContent-Length: {}\r\n\r\n{echo}",
                        echo.len()
                    );
                    if writer.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn one_event(dir: &std::path::Path) -> PathBuf {
    let events = dir.join("one.jsonl");
    std::fs::write(
        &events,
        r#"{"metadata":{"name":"a","namespace":"ns","uid":"u-1"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"BackOff","count":1}"#,
    )
    .unwrap();
    events
}

#[test]
fn a_receiver_that_echoes_the_request_puts_no_secret_and_no_forged_line_in_the_logs() {
    let port = echo_server(500);
    let dir = tempdir("echo");
    let cfg = dir.join("echo.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"route:
  match:
    - receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: "http://127.0.0.1:{port}/hook/${{HOOK_PATH}}?key=${{HOOK_KEY}}"
      headers:
        Authorization: "Bearer ${{HOOK_TOKEN}}"
        Ocp-Apim-Subscription-Key: "${{SUB_KEY}}"
        X-Slack: "xoxb-literal-slack-token"
      layout:
        text: "{{{{ .Reason }}}}"
    delivery: {{maxAttempts: 2, initialBackoff: 10ms, maxBackoff: 20ms}}
"#
        ),
    )
    .unwrap();
    let secrets = [
        "t0ken-from-env",
        "path-from-env",
        "key-from-env",
        "sub-key-from-env",
        "xoxb-literal-slack-token",
    ];
    for level in ["warn", "trace"] {
        let out = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
            .args(["run", "--config", cfg.to_str().unwrap(), "--events"])
            .arg(one_event(&dir))
            .env("HOOK_TOKEN", secrets[0])
            .env("HOOK_PATH", secrets[1])
            .env("HOOK_KEY", secrets[2])
            .env("SUB_KEY", secrets[3])
            .env("RUST_LOG", level)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("hook: sent 0, retried 1, failed 1"),
            "{stderr}"
        );
        assert!(stderr.contains("HTTP 500"), "{stderr}");
        for secret in secrets {
            assert!(
                !stderr.contains(secret),
                "{level}: {secret} leaked:\n{stderr}"
            );
        }
        assert!(
            !stderr.lines().any(|l| l.starts_with("ERROR forged")),
            "{level}: a forged line:\n{stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}'),
            "{level}: an escape sequence:\n{stderr}"
        );
        if level == "warn" {
            assert!(
                !stderr.contains("Echo") && !stderr.contains("POST /hook"),
                "{stderr}"
            );
        } else {
            // At debug, what the receiver answered is there: escaped, cut, masked.
            assert!(stderr.contains(r"authorization: ***\r\n"), "{stderr}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn user_info_in_an_endpoint_is_sent_as_basic_auth_and_never_logged() {
    use base64::Engine as _;
    let server = FakeHttp::start(vec![]);
    let dir = tempdir("userinfo");
    let cfg = dir.join("userinfo.yaml");
    std::fs::write(
        &cfg,
        format!(
            "route:\n  match:\n    - receiver: hook\nreceivers:\n  - name: hook\n    webhook:\n      endpoint: http://bob:p%40ss-w0rd@127.0.0.1:{}/hook\n",
            server.port
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--events"])
        .arg(one_event(&dir))
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let basic = base64::engine::general_purpose::STANDARD.encode("bob:p@ss-w0rd");
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/hook");
    assert!(
        seen[0]
            .headers
            .contains(&("authorization".into(), format!("Basic {basic}"))),
        "{:?}",
        seen[0].headers
    );
    for secret in ["p%40ss-w0rd", "p@ss-w0rd", "bob:", basic.as_str()] {
        assert!(!stderr.contains(secret), "{secret} leaked:\n{stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The peak resident memory of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn input_is_streamed_delivered_as_it_comes_and_held_briefly() {
    use std::process::Stdio;
    let event = |i: usize| {
        format!(
            "{{\"metadata\":{{\"name\":\"e{i}\",\"namespace\":\"ns\",\"uid\":\"u-{i}\"}},\"involvedObject\":{{\"kind\":\"Pod\",\"name\":\"p\"}},\"reason\":\"BackOff\",\"message\":\"{}\"}}\n",
            "m".repeat(200)
        )
    };
    let server = FakeHttp::start(vec![]);
    let dir = tempdir("stream");
    let cfg = config(&dir, server.port);
    let mut child = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--events", "-"])
        .env("HOOK_TOKEN", "t")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The first event is delivered while the input is still open.
    stdin.write_all(event(0).as_bytes()).unwrap();
    let mut delivered = false;
    for _ in 0..500 {
        if !server.seen().is_empty() {
            delivered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(delivered, "nothing was delivered before the input ended");
    stdin
        .write_all(b"{\"metadata\":{\"name\":\"\xff\"}}\n")
        .unwrap();
    stdin.write_all(event(1).as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hook: sent 2, retried 0, failed 0, dropped 0"),
        "{stderr}"
    );
    assert!(stderr.contains("line 2: not UTF-8"), "{stderr}");

    // 100,000 events through `route`: memory holds a few records, not the input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_event-exporter"))
        .args(["route", "--config", cfg.to_str().unwrap(), "--events", "-"])
        .env("HOOK_TOKEN", "t")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut lines = 0usize;
        let mut buf = [0u8; 65536];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|b| **b == b'\n').count();
        }
        lines
    });
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..100_000 {
        stdin.write_all(event(i).as_bytes()).unwrap();
    }
    let rss = peak_rss_kib(child.id());
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(drain.join().unwrap(), 100_000);
    assert!(rss < 60 * 1024, "peak RSS {rss} KiB for 27 MB of input");
    std::fs::remove_dir_all(dir).unwrap();
}
