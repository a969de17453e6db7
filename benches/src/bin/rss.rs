//! Memory of the `event-exporter` process against a cluster holding many events (issue 4): peak
//! RSS ≤ 50 MB with 100,000 live events, and the same steady RSS with 1,000 or 100,000.
//!
//! For each cluster size it starts the `fake-apiserver` binary pre-loaded with that many events,
//! a loopback webhook collector (in this process), and the release `event-exporter` binary
//! watching the fake; waits for `/readyz` (initial list done), then samples the exporter's
//! `/proc/<pid>/status` (`VmRSS`, `VmHWM` = peak) over a steady-state window, and prints a
//! table. Build the two binaries first (they are looked up next to this program):
//!
//! ```sh
//! cargo build --release -p event-exporter-bin -p fake-apiserver
//! cargo run --release -p event-exporter-benches --bin rss -- --events 1000,100000
//! ```
//!
//! Modes (`--mode`, default `both`):
//! - `first-start`: the default `maxEventAgeSeconds` (5). The pre-loaded events are older (the
//!   fake stamps them 2024-05-01), so the initial list reads all of them and exports none —
//!   what a first start (no checkpoint) does in a real cluster. During the steady window,
//!   `--live-rate` new events per second (default 200) are POSTed to the fake and exported.
//! - `export-all`: `maxEventAgeSeconds` of ~30 years: every listed event is exported once, the
//!   worst case (e.g. a restart whose checkpoint is behind all of them). Waits until every
//!   event is delivered or dropped before the steady window. `--queue-size` sets the
//!   receiver's `queueSize` (default: the default 1024; a full queue makes the relist wait).
//!
//! Other flags: `--seconds S` (steady window, default 10), `--kube-qps Q` (sets `kubeQPS` and
//! `kubeBurst`, which limit lookups; the watch is not paced by them), `--bin-dir DIR`
//! (where the binaries are), `--keep` (keep the temp dir with configs and logs).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Result<T> = std::result::Result<T, String>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    FirstStart,
    ExportAll,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::FirstStart => "first-start",
            Mode::ExportAll => "export-all",
        }
    }
}

struct Args {
    events: Vec<usize>,
    modes: Vec<Mode>,
    seconds: u64,
    live_rate: u64,
    queue_size: Option<usize>,
    kube_qps: Option<f64>,
    bin_dir: PathBuf,
    keep: bool,
}

fn parse_args() -> Result<Args> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let mut args = Args {
        events: vec![1_000, 100_000],
        modes: vec![Mode::FirstStart, Mode::ExportAll],
        seconds: 10,
        live_rate: 200,
        queue_size: None,
        kube_qps: None,
        bin_dir: exe.parent().map(Path::to_path_buf).unwrap_or_default(),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => {
                args.events = value()?
                    .split(',')
                    .map(|n| n.trim().replace('_', "").parse::<usize>())
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| format!("--events: {e}"))?;
            }
            "--mode" => {
                args.modes = match value()?.as_str() {
                    "first-start" => vec![Mode::FirstStart],
                    "export-all" => vec![Mode::ExportAll],
                    "both" => vec![Mode::FirstStart, Mode::ExportAll],
                    m => return Err(format!("--mode first-start|export-all|both, not {m}")),
                }
            }
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--live-rate" => {
                args.live_rate = value()?.parse().map_err(|e| format!("--live-rate: {e}"))?;
            }
            "--queue-size" => {
                args.queue_size = Some(value()?.parse().map_err(|e| format!("--queue-size: {e}"))?);
            }
            "--kube-qps" => {
                args.kube_qps = Some(value()?.parse().map_err(|e| format!("--kube-qps: {e}"))?);
            }
            "--bin-dir" => args.bin_dir = PathBuf::from(value()?),
            "--keep" => args.keep = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

// ----- a minimal HTTP/1.1 webhook collector (keep-alive, Content-Length bodies) -----

fn collector(received: Arc<AtomicUsize>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("collector: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("collector: {e}"))?;
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let received = Arc::clone(&received);
            std::thread::spawn(move || serve_connection(stream, &received));
        }
    });
    Ok(addr)
}

fn serve_connection(stream: TcpStream, received: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    let Ok(mut out) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        // Request line and headers.
        let mut length = 0usize;
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        received.fetch_add(1, Ordering::Relaxed);
        if out
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

// ----- tiny HTTP client (one request per connection) -----

fn http(addr: &str, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write {addr}: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("read {addr}: {e}"))?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad response from {addr}"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The sum of every sample of `metric` (a name suffix) whose labels contain `label`.
fn metric(text: &str, metric: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(name, _)| {
            let base = name.split('{').next().unwrap_or(name);
            base.ends_with(metric) && name.contains(label)
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

// ----- /proc -----

/// `(VmRSS, VmHWM)` in KiB.
fn rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Kills the child when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Row {
    events: usize,
    mode: Mode,
    load: Duration,
    ready: Duration,
    exported: u64,
    sent: u64,
    dropped: u64,
    live_sent: u64,
    hwm_ready: u64,
    hwm: u64,
    steady: (u64, u64, u64),
    fake_rss: u64,
}

fn run(args: &Args, events: usize, mode: Mode, dir: &Path) -> Result<Row> {
    let fake_bin = args.bin_dir.join("fake-apiserver");
    let exporter_bin = args.bin_dir.join("event-exporter");
    for b in [&fake_bin, &exporter_bin] {
        if !b.exists() {
            return Err(format!(
                "{} not found: build it first with `cargo build --release -p event-exporter-bin -p fake-apiserver` (or pass --bin-dir)",
                b.display()
            ));
        }
    }
    let kubeconfig = dir.join(format!("kubeconfig-{events}-{}", mode.name()));
    let t = Instant::now();
    let mut fake = Killed(
        Command::new(&fake_bin)
            .args(["--events", &events.to_string(), "--kubeconfig"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{}: {e}", fake_bin.display()))?,
    );
    let mut url = String::new();
    BufReader::new(fake.0.stdout.take().ok_or("fake stdout")?)
        .read_line(&mut url)
        .map_err(|e| format!("fake-apiserver output: {e}"))?;
    let fake_addr = url
        .trim()
        .strip_prefix("http://")
        .ok_or_else(|| format!("fake-apiserver printed {url:?}"))?
        .to_owned();
    let load = t.elapsed();

    let received = Arc::new(AtomicUsize::new(0));
    let hook = collector(Arc::clone(&received))?;
    let max_age = match mode {
        Mode::FirstStart => 5,
        Mode::ExportAll => 1_000_000_000,
    };
    let queue = args
        .queue_size
        .map(|q| format!("\n    delivery:\n      queueSize: {q}"))
        .unwrap_or_default();
    let qps = args
        .kube_qps
        .map(|q| format!("kubeQPS: {q}\nkubeBurst: {}\n", (q as u64).max(1)))
        .unwrap_or_default();
    let config = format!(
        r#"{qps}maxEventAgeSeconds: {max_age}
omitLookup: true
route:
  routes:
    - match:
        - receiver: hook
receivers:
  - name: hook
    webhook:
      endpoint: "http://{hook}/events"
      layout:
        id: "{{{{ .GetDeliveryID }}}}"
        reason: "{{{{ .Reason }}}}"
        object: "{{{{ .InvolvedObject.Namespace }}}}/{{{{ .InvolvedObject.Name }}}}"
        message: "{{{{ .Message }}}}"{queue}
"#
    );
    let config_path = dir.join(format!("config-{events}-{}.yaml", mode.name()));
    std::fs::write(&config_path, config).map_err(|e| format!("config: {e}"))?;
    let log_path = dir.join(format!("exporter-{events}-{}.log", mode.name()));

    let t = Instant::now();
    let mut exporter = Killed(
        Command::new(&exporter_bin)
            .arg(format!("-conf={}", config_path.display()))
            .arg(format!("-kubeconfig={}", kubeconfig.display()))
            .arg("-metrics-address=127.0.0.1:0")
            .env("RUST_LOG", "warn,event_exporter=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", exporter_bin.display()))?,
    );
    let pid = exporter.0.id();
    let (addr_tx, addr_rx) = mpsc::channel::<String>();
    let stderr = exporter.0.stderr.take().ok_or("exporter stderr")?;
    let log_file = log_path.clone();
    std::thread::spawn(move || {
        let mut log = std::fs::File::create(&log_file).ok();
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let line = strip_ansi(&line);
            if let Some(f) = log.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if line.contains("serving /metrics")
                && let Some((_, rest)) = line.split_once("address=")
            {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                let _ = addr_tx.send(addr);
            }
        }
    });
    let metrics_addr = addr_rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
        format!(
            "the exporter did not report its metrics address; see {}",
            log_path.display()
        )
    })?;
    loop {
        if let Ok((200, _)) = http(&metrics_addr, "GET", "/readyz", "") {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err(format!("not ready after 300 s; see {}", log_path.display()));
        }
        if let Ok(Some(status)) = exporter.0.try_wait() {
            return Err(format!(
                "the exporter exited: {status}; see {}",
                log_path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = t.elapsed();
    let hwm_ready = rss(pid).map_or(0, |(_, h)| h);

    let scrape = || http(&metrics_addr, "GET", "/metrics", "").map(|(_, b)| b);
    if mode == Mode::ExportAll {
        // Wait until every listed event is delivered or dropped (or nothing moves for 10 s).
        let mut last = (0, Instant::now());
        loop {
            let text = scrape()?;
            let done = metric(&text, "deliveries_total", "outcome=\"sent\"")
                + metric(&text, "deliveries_total", "outcome=\"dropped\"")
                + metric(&text, "deliveries_total", "outcome=\"failed\"");
            if done >= events as u64 {
                break;
            }
            if done != last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > Duration::from_secs(10) {
                eprintln!("  export stalled at {done} of {events}");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let before = scrape()?;
    let sent_before = metric(&before, "deliveries_total", "outcome=\"sent\"");

    // Steady state: sample every 100 ms, while POSTing live events at `live_rate`.
    let mut samples = Vec::new();
    let start = Instant::now();
    let window = Duration::from_secs(args.seconds);
    let mut posted = 0u64;
    let stamp = || {
        // RFC 3339 UTC, seconds, from the system clock (no date crate here).
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        civil(secs)
    };
    while start.elapsed() < window {
        if let Some((r, _)) = rss(pid) {
            samples.push(r);
        }
        let due = (start.elapsed().as_secs_f64() * args.live_rate as f64) as u64;
        while posted < due {
            let ts = stamp();
            let ns = format!("ns-{}", posted % 10);
            let body = format!(
                r#"{{"metadata":{{"name":"live-{posted}","namespace":"{ns}"}},"involvedObject":{{"apiVersion":"v1","kind":"Pod","name":"pod-{posted}","namespace":"{ns}"}},"reason":"BackOff","message":"live event {posted}","type":"Warning","source":{{"component":"kubelet"}},"count":1,"firstTimestamp":"{ts}","lastTimestamp":"{ts}"}}"#
            );
            let (status, resp) = http(
                &fake_addr,
                "POST",
                &format!("/api/v1/namespaces/{ns}/events"),
                &body,
            )?;
            if status != 201 {
                return Err(format!("POST event: {status} {resp}"));
            }
            posted += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = scrape()?;
    let (_, hwm) = rss(pid).ok_or("the exporter is gone")?;
    let fake_rss = rss(fake.0.id()).map_or(0, |(r, _)| r);
    samples.sort_unstable();
    let steady = (
        samples.first().copied().unwrap_or(0),
        samples.get(samples.len() / 2).copied().unwrap_or(0),
        samples.last().copied().unwrap_or(0),
    );
    drop(exporter);
    drop(fake);
    Ok(Row {
        events,
        mode,
        load,
        ready,
        exported: metric(&before, "events_exported_total", ""),
        sent: sent_before,
        dropped: metric(&before, "deliveries_total", "outcome=\"dropped\""),
        live_sent: metric(&after, "deliveries_total", "outcome=\"sent\"") - sent_before,
        hwm_ready,
        hwm,
        steady,
        fake_rss,
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (Howard Hinnant's days-from-civil, inverted).
fn civil(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn mb(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rss: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("ee-rss-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("rss: {}: {e}", dir.display());
        return std::process::ExitCode::FAILURE;
    }
    let mut rows = Vec::new();
    for &mode in &args.modes {
        for &events in &args.events {
            eprintln!("rss: {events} events, {} ...", mode.name());
            match run(&args, events, mode, &dir) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    eprintln!("rss: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            }
        }
    }
    println!(
        "\n| events in cluster | mode | fake load s | exporter ready s | exported at start (sent / dropped) | live events sent in window | peak RSS at ready (MB) | peak RSS (VmHWM, MB) | steady RSS min / median / max (MB) | fake-apiserver RSS (MB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.2} | {} ({} / {}) | {} | {} | {} | {} / {} / {} | {} |",
            r.events,
            r.mode.name(),
            r.load.as_secs_f64(),
            r.ready.as_secs_f64(),
            r.exported,
            r.sent,
            r.dropped,
            r.live_sent,
            mb(r.hwm_ready),
            mb(r.hwm),
            mb(r.steady.0),
            mb(r.steady.1),
            mb(r.steady.2),
            mb(r.fake_rss),
        );
    }
    if args.keep {
        eprintln!("rss: configs and logs kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::process::ExitCode::SUCCESS
}
