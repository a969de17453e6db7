//! The watch on core/v1 Events: one stream per selector (all events, or one per
//! `watchReasons` entry as a `reason=` field selector), merged.
//!
//! Each stream is a small step machine in the manner of kube-runtime's `watcher()` (list in
//! pages, then watch from the list's resourceVersion; relist after a 410), with what a hostile
//! or hung API server needs and kube-runtime's watcher does not give:
//!
//! - every request has a deadline: a list page (its body included) [`WatchSettings::list_timeout`],
//!   a watch until it is answered [`WatchSettings::request_timeout`], and a watch that stays
//!   silent for its `timeoutSeconds` plus [`WatchSettings::idle_margin`] is taken for dead;
//! - a watch that ends at once without an event (a server answering `200` with an empty
//!   body) is a failure like any other, not a reason to watch again at once;
//! - the backoff after a failure (800 ms doubling to 30 s, with jitter) is reset only by
//!   progress — an update delivered, or a watch that stayed open — never by merely starting
//!   another attempt, completing a list or receiving a bookmark;
//! - every failure is an item ([`WatchError`], its server-supplied text cut to a short,
//!   escaped excerpt), so that it is counted and logged once; the stream never ends.
//!
//! Objects are read leniently ([`WatchedEvent`]): an object that is valid JSON but not a valid
//! Event (a wrong field type, a missing `involvedObject`) arrives as
//! [`WatchedEvent::Malformed`] instead of failing the stream: a typed watcher would re-watch
//! from the same resourceVersion, receive the same object again, and never get past it.
//!
//! No object is cached: the stream hands each update over and forgets it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use event_exporter_core::redact::excerpt;
use event_exporter_sinks::delivery::{RetryPolicy, jitter};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use k8s_openapi::Metadata as _;
use k8s_openapi::api::core::v1::Event as CoreEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::core::ObjectList;
use serde::{Deserialize, Deserializer};
use tokio::time::Instant;
/// One watched object: an Event, or what could be read of one that is not valid.
#[derive(Debug, Clone)]
pub enum WatchedEvent {
    /// A valid Event.
    Event(Box<CoreEvent>),
    /// Valid JSON that is not a valid Event.
    Malformed {
        /// Its metadata, as far as it could be read.
        metadata: Box<ObjectMeta>,
        /// Why it is not an Event.
        error: Arc<str>,
    },
}

impl<'de> Deserialize<'de> for WatchedEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        // What a log line about a malformed object needs, taken before the value is consumed
        // (the whole metadata, managedFields included, would be a copy per event).
        let field = |name: &str| {
            value
                .get("metadata")
                .and_then(|m| m.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let brief = ObjectMeta {
            name: field("name"),
            namespace: field("namespace"),
            uid: field("uid"),
            resource_version: field("resourceVersion"),
            ..ObjectMeta::default()
        };
        match CoreEvent::deserialize(value) {
            Ok(event) => Ok(Self::Event(Box::new(event))),
            Err(error) => Ok(Self::Malformed {
                metadata: Box::new(brief),
                error: error.to_string().into(),
            }),
        }
    }
}

impl k8s_openapi::Resource for WatchedEvent {
    const API_VERSION: &'static str = <CoreEvent as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <CoreEvent as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <CoreEvent as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <CoreEvent as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <CoreEvent as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = <CoreEvent as k8s_openapi::Resource>::Scope;
}

impl k8s_openapi::Metadata for WatchedEvent {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::Event(e) => &e.metadata,
            Self::Malformed { metadata, .. } => metadata,
        }
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Event(e) => &mut e.metadata,
            Self::Malformed { metadata, .. } => metadata,
        }
    }
}

/// What to watch, and how patiently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchSettings {
    /// Only this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Only these reasons, one stream each (`watchReasons`); empty: every event.
    pub reasons: Vec<String>,
    /// The watch request's `timeoutSeconds` (`None`: 290 s, as kube-runtime's watcher).
    pub timeout_seconds: Option<u32>,
    /// How long one page of a list may take, its whole body included (default 60 s, the API
    /// server's own limit for a request).
    pub list_timeout: Duration,
    /// How long a watch request may wait for its answer (default 60 s).
    pub request_timeout: Duration,
    /// How long a watch may stay silent beyond its `timeoutSeconds` before it is taken for
    /// dead (default 15 s): a server that stopped sending, or drips bytes that never make a
    /// line.
    pub idle_margin: Duration,
    /// Events per list page (default 500, as client-go).
    pub page_size: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            namespace: None,
            reasons: Vec::new(),
            timeout_seconds: None,
            list_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            idle_margin: Duration::from_secs(15),
            page_size: 500,
        }
    }
}

impl WatchSettings {
    /// The field selector of each stream, in stream order: `[""]` for one stream of every
    /// event, else `reason=<r>` per reason (duplicates removed). These are also the streams'
    /// keys in the checkpoint.
    pub fn selectors(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for reason in &self.reasons {
            let sel = format!("reason={}", escape_selector_value(reason.trim()));
            if !reason.trim().is_empty() && !out.contains(&sel) {
                out.push(sel);
            }
        }
        if out.is_empty() {
            out.push(String::new());
        }
        out
    }

    /// The watch's `timeoutSeconds` (0 reads as the default: the API server would take it
    /// for "its own default", up to an hour, and the idle bound could not follow).
    fn watch_timeout(&self) -> u32 {
        self.timeout_seconds
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT)
    }
}

/// kube-runtime's default `timeoutSeconds` of a watch request.
const DEFAULT_WATCH_TIMEOUT: u32 = 290;

/// A watch that has stayed open this long (or half its timeout, if that is shorter) after a
/// failure counts as recovered.
const RECOVERED_AFTER: Duration = Duration::from_secs(10);

/// Pages of one list at most (500 each: 50 million events), and empty pages in a row at most
/// (a field selector can make the server answer some empty pages; a thousand is not listing).
const MAX_LIST_PAGES: usize = 100_000;
const MAX_EMPTY_PAGES: usize = 1_000;

/// How much of a server's text an error quotes.
const EXCERPT: usize = 300;

/// A field selector value with `\`, `,` and `=` escaped (as apimachinery's
/// `fields.EscapeValue`), so a reason cannot change the selector's meaning.
fn escape_selector_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What one stream reports.
#[derive(Debug)]
pub enum WatchStep {
    /// A (re)list starts: what follows until [`WatchStep::ListDone`] is the whole current
    /// state (after a 410, a failed page, or at the start).
    Relist,
    /// An object of the list.
    Listed(WatchedEvent),
    /// The list is complete; the watch from its resourceVersion follows.
    ListDone,
    /// An object was added or changed.
    Applied(WatchedEvent),
    /// An object was deleted.
    Deleted(WatchedEvent),
    /// After a failure, the stream works again without having had anything to deliver: its
    /// watch has stayed open for a while. (An update arriving says so too; a list completing
    /// does not.)
    Recovered,
}

/// Why a stream failed; it retries on its own after a backoff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// A list request failed (its text is an excerpt of what the server said).
    #[error("listing events: {0}")]
    List(String),
    /// A list page was not answered in time.
    #[error("listing events: no complete answer within {0:?}")]
    ListTimeout(Duration),
    /// A list answer that is not an event list.
    #[error("listing events: the answer is not an event list: {0}")]
    Decode(String),
    /// A list answer, or a watched object, without a resourceVersion.
    #[error("the API server's answer has no resourceVersion")]
    NoResourceVersion,
    /// A list that went on for too many pages (or empty pages).
    #[error("listing events: {0} pages and still not done; starting over")]
    EndlessList(usize),
    /// A watch request failed.
    #[error("starting the watch: {0}")]
    WatchStart(String),
    /// A watch request was not answered in time.
    #[error("starting the watch: no answer within {0:?}")]
    WatchStartTimeout(Duration),
    /// Reading the watch failed: it is over (the stream reconnects).
    #[error("watching: {0}")]
    Watch(String),
    /// One line of the watch is not a watch event (the watch goes on).
    #[error("watching: {0}")]
    Line(String),
    /// The watch was silent for longer than its `timeoutSeconds` and the margin.
    #[error("watching: nothing received for {0:?}; reconnecting")]
    Idle(Duration),
    /// The watch ended at once, without an event.
    #[error("the watch ended at once, without an event")]
    EndedAtOnce,
    /// The resourceVersion is too old (410 Gone): the stream relists.
    #[error("watch resourceVersion expired (410): relisting")]
    Expired,
    /// The server sent an ERROR event other than 410.
    #[error("watch error {code}: {message}")]
    Status {
        /// Its code.
        code: u16,
        /// Its message (an excerpt).
        message: String,
    },
}

impl WatchError {
    /// Whether this is the routine 410 relist (logged at info, not warn).
    pub fn is_expired(&self) -> bool {
        matches!(self, WatchError::Expired)
    }
}

fn kube_error(e: &kube::Error) -> String {
    excerpt(&e.to_string(), EXCERPT)
}

fn is_gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 410)
}

/// One item of the merged watch: which stream, and what it said.
pub type WatchItem = (usize, Result<WatchStep, WatchError>);

/// What a watch delivers: its decoded lines.
pub(crate) type Events = BoxStream<'static, Result<WatchEvent<WatchedEvent>, WatchError>>;

/// What a stream asks of the API server. [`Target`] asks the real one; the tests script one.
pub(crate) trait Source: Send + Sync {
    /// How patiently.
    fn settings(&self) -> &WatchSettings;
    /// One page of the list (`None`: the first).
    fn list_page(
        &self,
        continue_token: Option<String>,
    ) -> impl Future<Output = Result<ObjectList<WatchedEvent>, WatchError>> + Send;
    /// A watch from `resource_version`, once the server has answered it.
    fn start_watch(
        &self,
        resource_version: &str,
    ) -> impl Future<Output = Result<Events, WatchError>> + Send;
}

/// The wait after a failure: 800 ms doubling to 30 s, half of it random (the curve of
/// [`RetryPolicy::backoff`]). Only progress resets it: starting another attempt does not.
pub(crate) struct Backoff {
    curve: RetryPolicy,
    failures: u32,
    jitter: fn() -> f64,
}

impl Backoff {
    pub(crate) fn new(jitter: fn() -> f64) -> Self {
        Self {
            curve: RetryPolicy {
                initial_backoff: Duration::from_millis(800),
                max_backoff: Duration::from_secs(30),
                ..RetryPolicy::default()
            },
            failures: 0,
            jitter,
        }
    }

    fn next(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.curve.backoff(self.failures, (self.jitter)())
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

enum State {
    /// Nothing listed: the next step starts a list.
    Empty,
    Listing {
        continue_token: Option<String>,
        page: VecDeque<WatchedEvent>,
        resource_version: Option<String>,
        /// Pages fetched, and how many of the last ones in a row were empty.
        pages: (usize, usize),
    },
    /// Listed up to `resource_version`: the next step starts a watch from there.
    Listed { resource_version: String },
    Watching {
        resource_version: String,
        stream: Events,
        since: Instant,
        /// Whether it has delivered an update (bookmarks do not count).
        delivered: bool,
    },
}

/// What one stream asks the API server for.
struct Target {
    client: Client,
    /// `/api/v1/events` or `/api/v1/namespaces/NS/events`.
    path: String,
    selector: String,
    settings: WatchSettings,
}

/// One stream's step machine.
pub(crate) struct Watcher<S> {
    source: S,
    state: State,
    backoff: Backoff,
    /// The wait before the next request, after a failure.
    wait: Option<Duration>,
    /// A failure happened and nothing has shown the stream works again yet.
    failing: bool,
}

impl<S: Source> Watcher<S> {
    pub(crate) fn new(source: S, backoff: Backoff) -> Self {
        Self {
            source,
            state: State::Empty,
            backoff,
            wait: None,
            failing: false,
        }
    }

    fn fail(&mut self, error: WatchError) -> Result<WatchStep, WatchError> {
        self.failing = true;
        self.wait = Some(self.backoff.next());
        Err(error)
    }

    /// The stream works: the next failure waits the shortest backoff again.
    fn progress(&mut self) {
        if self.failing {
            self.failing = false;
            self.backoff.reset();
        }
    }
}

impl Target {
    fn request(&self) -> kube::core::Request {
        kube::core::Request::new(self.path.clone())
    }

    fn selector(&self) -> Option<String> {
        (!self.selector.is_empty()).then(|| self.selector.clone())
    }
}

impl Source for Target {
    fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    async fn list_page(
        &self,
        continue_token: Option<String>,
    ) -> Result<ObjectList<WatchedEvent>, WatchError> {
        let params = ListParams {
            field_selector: self.selector(),
            limit: Some(self.settings.page_size.max(1)),
            continue_token,
            ..ListParams::default()
        };
        let request = self
            .request()
            .list(&params)
            .map_err(|e| WatchError::List(e.to_string()))?;
        let text = tokio::time::timeout(
            self.settings.list_timeout,
            self.client.request_text(request),
        )
        .await
        .map_err(|_| WatchError::ListTimeout(self.settings.list_timeout))?
        .map_err(|e| WatchError::List(kube_error(&e)))?;
        serde_json::from_str(&text)
            .map_err(|e| WatchError::Decode(format!("{e} (it starts: {})", excerpt(&text, 120))))
    }

    async fn start_watch(&self, resource_version: &str) -> Result<Events, WatchError> {
        let params = WatchParams {
            field_selector: self.selector(),
            timeout: Some(self.settings.watch_timeout()),
            bookmarks: true,
            ..WatchParams::default()
        };
        let request = self
            .request()
            .watch(&params, resource_version)
            .map_err(|e| WatchError::WatchStart(e.to_string()))?;
        let answered = tokio::time::timeout(
            self.settings.request_timeout,
            self.client.request_stream(request),
        )
        .await
        .map_err(|_| WatchError::WatchStartTimeout(self.settings.request_timeout))?;
        match answered {
            Ok(body) => Ok(watch_lines(body).boxed()),
            Err(e) if is_gone(&e) => Err(WatchError::Expired),
            Err(e) => Err(WatchError::WatchStart(kube_error(&e))),
        }
    }
}

/// The longest watch line read: a Kubernetes object is at most 1.5 MiB.
pub const MAX_WATCH_LINE: usize = 16 << 20;

/// A watch line decoded: a watch event, or why it is not one.
fn decode_line(line: &[u8]) -> Option<Result<WatchEvent<WatchedEvent>, WatchError>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(
        serde_json::from_slice::<WatchEvent<WatchedEvent>>(line).map_err(|e| {
            match serde_json::from_slice::<kube::core::Status>(line) {
                Ok(status) => WatchError::Status {
                    code: status.code,
                    message: excerpt(&status.message, EXCERPT),
                },
                Err(_) => WatchError::Line(format!(
                    "a line that is not a watch event: {}",
                    excerpt(&e.to_string(), EXCERPT)
                )),
            }
        }),
    )
}

/// The next item of a watch body: its next non-blank line decoded, where the line is read in
/// place when the body's buffer holds it whole (the usual case) and never holds more than
/// [`MAX_WATCH_LINE`] bytes of one. `None` at the end.
async fn next_line(
    body: &mut (impl futures::AsyncBufRead + Unpin),
) -> Option<Result<WatchEvent<WatchedEvent>, WatchError>> {
    use futures::AsyncBufReadExt as _;
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match body.fill_buf().await {
            Ok(buf) => buf,
            // The end of a watch that resumes (a chunked body cut short) ends it.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) => return Some(Err(WatchError::Watch(excerpt(&e.to_string(), EXCERPT)))),
        };
        if buf.is_empty() {
            // A last line without its newline is dropped, as kube's decoder drops it.
            return None;
        }
        let Some(newline) = buf.iter().position(|b| *b == b'\n') else {
            if !too_long && line.len() + buf.len() > MAX_WATCH_LINE {
                too_long = true;
                line = Vec::new();
            } else if !too_long {
                line.extend_from_slice(buf);
            }
            let n = buf.len();
            body.consume_unpin(n);
            continue;
        };
        let item = if too_long || line.len() + newline > MAX_WATCH_LINE {
            Some(Err(WatchError::Line(format!(
                "a line longer than {} MiB; skipped",
                MAX_WATCH_LINE >> 20
            ))))
        } else if line.is_empty() {
            decode_line(&buf[..newline])
        } else {
            line.extend_from_slice(&buf[..newline]);
            decode_line(&line)
        };
        body.consume_unpin(newline + 1);
        if item.is_some() {
            return item;
        }
        line.clear();
        too_long = false;
    }
}

/// The watch events of a watch body, one per line (what kube's `request_events` does, with a
/// bound on a line: a server sending bytes without a newline does not fill the memory). A line
/// that is not a watch event is an error item; the stream goes on after it.
pub fn watch_lines(
    body: impl futures::AsyncBufRead + Unpin + Send + 'static,
) -> impl Stream<Item = Result<WatchEvent<WatchedEvent>, WatchError>> + Send {
    futures::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        let item = next_line(&mut body).await?;
        // After a read error the body is done.
        let keep = !matches!(&item, Err(WatchError::Watch(_)));
        Some((item, keep.then_some(body)))
    })
}

impl<S: Source> Watcher<S> {
    /// The next item of the stream.
    pub(crate) async fn step(&mut self) -> Result<WatchStep, WatchError> {
        if let Some(wait) = self.wait.take() {
            tokio::time::sleep(wait).await;
        }
        loop {
            match std::mem::replace(&mut self.state, State::Empty) {
                State::Empty => {
                    self.state = State::Listing {
                        continue_token: None,
                        page: VecDeque::new(),
                        resource_version: None,
                        pages: (0, 0),
                    };
                    return Ok(WatchStep::Relist);
                }
                State::Listing {
                    continue_token,
                    mut page,
                    resource_version,
                    pages,
                } => {
                    if let Some(object) = page.pop_front() {
                        self.state = State::Listing {
                            continue_token,
                            page,
                            resource_version,
                            pages,
                        };
                        return Ok(WatchStep::Listed(object));
                    }
                    if continue_token.is_none()
                        && let Some(resource_version) = resource_version
                    {
                        self.state = State::Listed { resource_version };
                        return Ok(WatchStep::ListDone);
                    }
                    // A failed page restarts the list (its continue token may have expired).
                    let list = match self.source.list_page(continue_token).await {
                        Ok(list) => list,
                        Err(e) => return self.fail(e),
                    };
                    let resource_version = list.metadata.resource_version.filter(|s| !s.is_empty());
                    let continue_token = list.metadata.continue_.filter(|s| !s.is_empty());
                    if resource_version.is_none() && continue_token.is_none() {
                        return self.fail(WatchError::NoResourceVersion);
                    }
                    // A server that pages forever (or answers with empty pages that go on) is
                    // not listing: stop asking.
                    let empty_run = if list.items.is_empty() {
                        pages.1 + 1
                    } else {
                        0
                    };
                    let pages = (pages.0 + 1, empty_run);
                    if continue_token.is_some()
                        && (pages.0 >= MAX_LIST_PAGES || pages.1 >= MAX_EMPTY_PAGES)
                    {
                        return self.fail(WatchError::EndlessList(pages.0));
                    }
                    self.state = State::Listing {
                        continue_token,
                        page: list.items.into(),
                        resource_version,
                        pages,
                    };
                }
                State::Listed { resource_version } => {
                    match self.source.start_watch(&resource_version).await {
                        Ok(stream) => {
                            self.state = State::Watching {
                                resource_version,
                                stream,
                                since: Instant::now(),
                                delivered: false,
                            };
                        }
                        Err(WatchError::Expired) => return self.fail(WatchError::Expired),
                        Err(e) => {
                            self.state = State::Listed { resource_version };
                            return self.fail(e);
                        }
                    }
                }
                State::Watching {
                    resource_version,
                    mut stream,
                    since,
                    delivered,
                } => {
                    let settings = self.source.settings();
                    let timeout = Duration::from_secs(u64::from(settings.watch_timeout()));
                    let idle = timeout + settings.idle_margin;
                    // A failure is over once a watch has stayed open a while, even on a quiet
                    // cluster with nothing to deliver.
                    let recovered_at = (self.failing && !delivered).then(|| {
                        since + RECOVERED_AFTER.min(timeout / 2).max(Duration::from_secs(1))
                    });
                    let next = tokio::select! {
                        biased;
                        next = tokio::time::timeout(idle, stream.next()) => next,
                        () = sleep_until_opt(recovered_at) => {
                            self.progress();
                            self.state = State::Watching { resource_version, stream, since, delivered };
                            return Ok(WatchStep::Recovered);
                        }
                    };
                    let event = match next {
                        Err(_) => {
                            self.state = State::Listed { resource_version };
                            return self.fail(WatchError::Idle(idle));
                        }
                        Ok(None) => {
                            // A watch that ends having delivered something, or after a good
                            // part of its timeout, ends as watches do; one that ends at once
                            // with nothing is a server that does not watch.
                            let long_enough = since.elapsed() * 2 >= timeout;
                            self.state = State::Listed { resource_version };
                            if delivered {
                                continue;
                            }
                            if long_enough {
                                // A quiet watch that lasted: the stream works.
                                if self.failing {
                                    self.progress();
                                    return Ok(WatchStep::Recovered);
                                }
                                continue;
                            }
                            return self.fail(WatchError::EndedAtOnce);
                        }
                        // The body could not be read: the watch is over, reconnect.
                        Ok(Some(Err(e @ WatchError::Watch(_)))) => {
                            self.state = State::Listed { resource_version };
                            return self.fail(e);
                        }
                        // One bad line: the watch goes on.
                        Ok(Some(Err(e))) => {
                            self.state = State::Watching {
                                resource_version,
                                stream,
                                since,
                                delivered,
                            };
                            return self.fail(e);
                        }
                        Ok(Some(Ok(event))) => event,
                    };
                    let (object, step): (WatchedEvent, fn(WatchedEvent) -> WatchStep) = match event
                    {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) => (o, WatchStep::Applied),
                        WatchEvent::Deleted(o) => (o, WatchStep::Deleted),
                        // A bookmark moves the resourceVersion on; it is not progress (a
                        // server could send one per watch and close it, forever).
                        WatchEvent::Bookmark(bookmark) => {
                            // One without a resourceVersion says nothing (watching from "" would
                            // replay every object).
                            let moved = bookmark.metadata.resource_version;
                            self.state = State::Watching {
                                resource_version: if moved.is_empty() {
                                    resource_version
                                } else {
                                    moved
                                },
                                stream,
                                since,
                                delivered,
                            };
                            continue;
                        }
                        WatchEvent::Error(status) if status.code == 410 => {
                            return self.fail(WatchError::Expired);
                        }
                        WatchEvent::Error(status) => {
                            self.state = State::Watching {
                                resource_version,
                                stream,
                                since,
                                delivered,
                            };
                            return self.fail(WatchError::Status {
                                code: status.code,
                                message: excerpt(&status.message, EXCERPT),
                            });
                        }
                    };
                    let rv = object
                        .metadata()
                        .resource_version
                        .clone()
                        .unwrap_or_default();
                    if rv.is_empty() {
                        // Skipped; the watch goes on from where it was.
                        self.state = State::Watching {
                            resource_version,
                            stream,
                            since,
                            delivered,
                        };
                        return self.fail(WatchError::NoResourceVersion);
                    }
                    self.progress();
                    self.state = State::Watching {
                        resource_version: rv,
                        stream,
                        since,
                        delivered: true,
                    };
                    return Ok(step(object));
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One stream: list, then watch, forever; failures are items (see the module docs).
pub fn watch_stream(
    client: Client,
    settings: &WatchSettings,
    selector: String,
) -> impl Stream<Item = Result<WatchStep, WatchError>> + Send + use<> {
    use kube::Resource as _;
    let path = CoreEvent::url_path(&(), settings.namespace.as_deref());
    let source = Target {
        client,
        path,
        selector,
        settings: settings.clone(),
    };
    let watcher = Watcher::new(source, Backoff::new(jitter));
    futures::stream::unfold(watcher, |mut w| async move {
        let item = w.step().await;
        Some((item, w))
    })
}

/// The merged watch streams (see [`WatchSettings::selectors`] for their order).
pub fn event_stream(
    client: Client,
    settings: &WatchSettings,
) -> impl Stream<Item = WatchItem> + Send + use<> {
    let streams = settings
        .selectors()
        .into_iter()
        .enumerate()
        .map(|(index, selector)| {
            watch_stream(client.clone(), settings, selector)
                .map(move |item| (index, item))
                .boxed()
        });
    futures::stream::select_all(streams)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    /// What the scripted API server answers to one list page.
    enum ListAnswer {
        Page(Vec<WatchedEvent>, &'static str),
        /// An empty page that says there is more.
        EmptyMore,
        Fail,
    }

    /// What it answers to one watch request.
    enum WatchAnswer {
        /// These events, then the watch ends (`then_silent`: it stays open and quiet).
        Events(Vec<WatchEvent<WatchedEvent>>, bool),
        Fail,
    }

    /// An API server that answers from a script and records when it was asked.
    struct Scripted {
        settings: WatchSettings,
        lists: Mutex<VecDeque<ListAnswer>>,
        watches: Mutex<VecDeque<WatchAnswer>>,
        calls: Mutex<Vec<(&'static str, Duration)>>,
        start: Instant,
    }

    impl Scripted {
        fn new(lists: Vec<ListAnswer>, watches: Vec<WatchAnswer>) -> Self {
            Self {
                settings: WatchSettings {
                    timeout_seconds: Some(60),
                    ..WatchSettings::default()
                },
                lists: Mutex::new(lists.into()),
                watches: Mutex::new(watches.into()),
                calls: Mutex::default(),
                start: Instant::now(),
            }
        }

        fn called(&self, what: &'static str) {
            self.calls
                .lock()
                .unwrap()
                .push((what, self.start.elapsed()));
        }
    }

    impl Source for &Scripted {
        fn settings(&self) -> &WatchSettings {
            &self.settings
        }

        async fn list_page(
            &self,
            _: Option<String>,
        ) -> Result<ObjectList<WatchedEvent>, WatchError> {
            self.called("list");
            match self.lists.lock().unwrap().pop_front() {
                Some(ListAnswer::Page(items, rv)) => Ok(ObjectList {
                    types: Default::default(),
                    metadata: kube::core::ListMeta {
                        resource_version: Some(rv.to_owned()),
                        ..Default::default()
                    },
                    items,
                }),
                Some(ListAnswer::EmptyMore) => Ok(ObjectList {
                    types: Default::default(),
                    metadata: kube::core::ListMeta {
                        resource_version: Some("7".into()),
                        continue_: Some("more".into()),
                        ..Default::default()
                    },
                    items: Vec::new(),
                }),
                Some(ListAnswer::Fail) | None => Err(WatchError::List("refused".into())),
            }
        }

        async fn start_watch(&self, _: &str) -> Result<Events, WatchError> {
            self.called("watch");
            match self.watches.lock().unwrap().pop_front() {
                Some(WatchAnswer::Events(events, silent)) => {
                    let events = futures::stream::iter(events.into_iter().map(Ok));
                    Ok(if silent {
                        events.chain(futures::stream::pending()).boxed()
                    } else {
                        events.boxed()
                    })
                }
                Some(WatchAnswer::Fail) | None => Err(WatchError::WatchStart("refused".into())),
            }
        }
    }

    fn object(rv: &str) -> WatchedEvent {
        WatchedEvent::Event(Box::new(CoreEvent {
            metadata: ObjectMeta {
                name: Some(format!("e{rv}")),
                resource_version: Some(rv.to_owned()),
                ..ObjectMeta::default()
            },
            ..CoreEvent::default()
        }))
    }

    /// A watcher whose jitter is always the top of its range: the waits are 0.8 s, 1.6 s, ...
    fn watcher(source: &Scripted) -> Watcher<&Scripted> {
        Watcher::new(source, Backoff::new(|| 1.0))
    }

    fn kind(item: &Result<WatchStep, WatchError>) -> String {
        match item {
            Ok(WatchStep::Relist) => "relist".into(),
            Ok(WatchStep::Listed(_)) => "listed".into(),
            Ok(WatchStep::ListDone) => "done".into(),
            Ok(WatchStep::Applied(_)) => "applied".into(),
            Ok(WatchStep::Deleted(_)) => "deleted".into(),
            Ok(WatchStep::Recovered) => "recovered".into(),
            Err(e) => format!("err: {e}"),
        }
    }

    async fn steps(w: &mut Watcher<&Scripted>, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(kind(&w.step().await));
        }
        out
    }

    fn secs(calls: &[(&'static str, Duration)], what: &str) -> Vec<f64> {
        calls
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, at)| (at.as_secs_f64() * 10.0).round() / 10.0)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn failed_lists_back_off_longer_and_longer_although_each_starts_a_relist() {
        let source = Scripted::new(
            vec![
                ListAnswer::Fail,
                ListAnswer::Fail,
                ListAnswer::Fail,
                ListAnswer::Fail,
                ListAnswer::Page(vec![object("5")], "7"),
            ],
            vec![WatchAnswer::Events(
                vec![WatchEvent::Added(object("8"))],
                true,
            )],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 12).await;
        let err = "err: listing events: refused";
        assert_eq!(
            got,
            [
                "relist", err, "relist", err, "relist", err, "relist", err, "relist", "listed",
                "done", "applied"
            ]
        );
        // kube-runtime's watcher resets its backoff on the Init of each attempt: 0.8 s forever.
        let calls = source.calls.lock().unwrap().clone();
        assert_eq!(secs(&calls, "list"), [0.0, 0.8, 2.4, 5.6, 12.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_ends_at_once_is_a_failure_that_backs_off() {
        let empty = || WatchAnswer::Events(Vec::new(), false);
        let source = Scripted::new(
            vec![ListAnswer::Page(Vec::new(), "7")],
            vec![
                empty(),
                empty(),
                empty(),
                WatchAnswer::Events(vec![WatchEvent::Added(object("8"))], true),
            ],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 6).await;
        let err = "err: the watch ended at once, without an event";
        assert_eq!(got, ["relist", "done", err, err, err, "applied"]);
        let calls = source.calls.lock().unwrap().clone();
        assert_eq!(secs(&calls, "watch"), [0.0, 0.8, 2.4, 5.6]);
    }

    #[tokio::test(start_paused = true)]
    async fn progress_and_only_progress_resets_the_backoff() {
        let source = Scripted::new(
            vec![
                ListAnswer::Fail,
                ListAnswer::Fail,
                ListAnswer::Page(Vec::new(), "7"),
            ],
            vec![
                // An event: the stream works, so the next failure waits 0.8 s again.
                WatchAnswer::Events(vec![WatchEvent::Added(object("8"))], false),
                WatchAnswer::Fail,
                WatchAnswer::Events(
                    vec![WatchEvent::Bookmark(kube::core::watch::Bookmark {
                        types: Default::default(),
                        metadata: kube::core::watch::BookmarkMeta {
                            resource_version: "9".into(),
                            annotations: Default::default(),
                        },
                    })],
                    false,
                ),
                WatchAnswer::Fail,
                WatchAnswer::Events(vec![WatchEvent::Added(object("10"))], true),
            ],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 11).await;
        let list_err = "err: listing events: refused";
        let watch_err = "err: starting the watch: refused";
        let at_once = "err: the watch ended at once, without an event";
        assert_eq!(
            got,
            [
                "relist", list_err, "relist", list_err, "relist", "done", "applied", watch_err,
                at_once, watch_err, "applied"
            ]
        );
        let calls = source.calls.lock().unwrap().clone();
        // A completed list is not progress: the watch's first failure waits 0.8 s because the
        // event the first watch delivered reset the backoff. A bookmark followed by the end of
        // the watch is no progress either: the waits go on growing.
        assert_eq!(secs(&calls, "list"), [0.0, 0.8, 2.4]);
        assert_eq!(secs(&calls, "watch"), [2.4, 2.4, 3.2, 4.8, 8.0]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_watch_is_taken_for_dead_and_a_410_relists() {
        let source = Scripted::new(
            vec![
                ListAnswer::Page(Vec::new(), "7"),
                ListAnswer::Page(Vec::new(), "20"),
            ],
            vec![
                WatchAnswer::Events(Vec::new(), true),
                WatchAnswer::Events(
                    vec![WatchEvent::Error(
                        kube::core::Status::failure("too old resource version", "Expired")
                            .with_code(410)
                            .boxed(),
                    )],
                    true,
                ),
                WatchAnswer::Events(vec![WatchEvent::Added(object("21"))], true),
            ],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 7).await;
        assert_eq!(
            got,
            [
                "relist",
                "done",
                "err: watching: nothing received for 75s; reconnecting",
                "err: watch resourceVersion expired (410): relisting",
                "relist",
                "done",
                "applied"
            ]
        );
        let calls = source.calls.lock().unwrap().clone();
        // 60 s timeoutSeconds + 15 s margin of silence, then 0.8 s.
        assert_eq!(secs(&calls, "watch"), [0.0, 75.8, 77.4]);
        assert_eq!(secs(&calls, "list"), [0.0, 77.4]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_stays_open_after_a_failure_has_recovered() {
        let source = Scripted::new(
            vec![ListAnswer::Page(Vec::new(), "7")],
            vec![WatchAnswer::Fail, WatchAnswer::Events(Vec::new(), true)],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 4).await;
        assert_eq!(
            got,
            [
                "relist",
                "done",
                "err: starting the watch: refused",
                "recovered"
            ]
        );
        assert_eq!(
            w.source.start.elapsed(),
            Duration::from_millis(800) + RECOVERED_AFTER
        );
    }

    fn bookmark(rv: &str) -> WatchEvent<WatchedEvent> {
        WatchEvent::Bookmark(kube::core::watch::Bookmark {
            types: Default::default(),
            metadata: kube::core::watch::BookmarkMeta {
                resource_version: rv.into(),
                annotations: Default::default(),
            },
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_answers_only_bookmarks_or_empty_pages_is_not_watched_in_a_hot_loop() {
        // Watches that each bring one bookmark and end: a failure every time, waits growing.
        let bookmark_then_end = |rv| WatchAnswer::Events(vec![bookmark(rv)], false);
        let source = Scripted::new(
            vec![ListAnswer::Page(Vec::new(), "7")],
            vec![
                bookmark_then_end("8"),
                bookmark_then_end("9"),
                bookmark_then_end("10"),
                WatchAnswer::Events(vec![WatchEvent::Added(object("11"))], true),
            ],
        );
        let mut w = watcher(&source);
        let got = steps(&mut w, 6).await;
        let at_once = "err: the watch ended at once, without an event";
        assert_eq!(
            got,
            ["relist", "done", at_once, at_once, at_once, "applied"]
        );
        let calls = source.calls.lock().unwrap().clone();
        assert_eq!(secs(&calls, "watch"), [0.0, 0.8, 2.4, 5.6]);

        // Empty pages that always say there is more: the list is given up, and started over
        // after a backoff.
        let mut pages: Vec<ListAnswer> = (0..MAX_EMPTY_PAGES)
            .map(|_| ListAnswer::EmptyMore)
            .collect();
        pages.push(ListAnswer::Page(Vec::new(), "7"));
        let source = Scripted::new(pages, vec![WatchAnswer::Events(Vec::new(), true)]);
        let mut w = watcher(&source);
        let got = steps(&mut w, 4).await;
        assert_eq!(
            got,
            [
                "relist",
                "err: listing events: 1000 pages and still not done; starting over",
                "relist",
                "done"
            ]
        );
    }

    #[tokio::test]
    async fn a_watch_line_without_end_is_cut_not_held() {
        let mut body = vec![b' '; MAX_WATCH_LINE + 1024];
        body.extend_from_slice(b"\n");
        body.extend_from_slice(
            br#"{"type":"ADDED","object":{"metadata":{"name":"e","resourceVersion":"3"},"involvedObject":{}}}"#,
        );
        body.extend_from_slice(b"\nnot json\n");
        let items: Vec<_> = watch_lines(futures::io::Cursor::new(body)).collect().await;
        assert_eq!(items.len(), 3);
        assert!(
            matches!(&items[0], Err(WatchError::Line(m)) if m.contains("longer than 16 MiB")),
            "{:?}",
            items[0]
        );
        assert!(matches!(
            &items[1],
            Ok(WatchEvent::Added(WatchedEvent::Event(_)))
        ));
        assert!(matches!(&items[2], Err(WatchError::Line(m)) if m.contains("not a watch event")));
    }

    #[test]
    fn selectors_per_reason() {
        let s = WatchSettings::default();
        assert_eq!(s.selectors(), vec![String::new()]);
        let s = WatchSettings {
            reasons: vec![
                "Upgrading".into(),
                " ".into(),
                "Upgrading".into(),
                "X".into(),
            ],
            ..Default::default()
        };
        assert_eq!(s.selectors(), vec!["reason=Upgrading", "reason=X"]);
        let s = WatchSettings {
            reasons: vec![r"a,b=c\d".into()],
            ..Default::default()
        };
        assert_eq!(s.selectors(), vec![r"reason=a\,b\=c\\d"]);
    }

    #[test]
    fn malformed_objects_are_items_not_errors() {
        let ok: WatchedEvent = serde_json::from_str(
            r#"{"metadata":{"name":"a","uid":"u1","resourceVersion":"5"},"involvedObject":{},"count":2}"#,
        )
        .unwrap();
        assert!(matches!(ok, WatchedEvent::Event(e) if e.count == Some(2)));
        let bad: WatchedEvent = serde_json::from_str(
            r#"{"metadata":{"name":"b","resourceVersion":"6"},"involvedObject":{},"count":"many"}"#,
        )
        .unwrap();
        match bad {
            WatchedEvent::Malformed { metadata, error } => {
                assert_eq!(metadata.resource_version.as_deref(), Some("6"));
                assert!(error.contains("invalid type"), "{error}");
            }
            WatchedEvent::Event(_) => panic!("accepted a string count"),
        }
    }
}
