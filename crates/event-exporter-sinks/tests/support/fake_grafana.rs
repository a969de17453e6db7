//! A fake Grafana that behaves as ../shared/contracts/grafana.md says the real one does:
//! Bearer or Basic auth (401 `Unauthorized`, 403 RBAC body for a read-only token),
//! `X-Grafana-Org-Id` (400 when not numeric), `POST /api/annotations` (400 on empty text,
//! `time` defaults to now, `timeEnd` to `time`, swapped when reversed, 200 with the new id),
//! `POST /api/annotations/graphite` (`what` required, `tags` an array or a space-separated
//! string, `when` in seconds, text `what\ndata`), and `PATCH /api/annotations/:id` (404
//! unknown, 400 non-numeric id, times replaced only when > 0). Faults can be queued.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Answer, Incoming, json_reply, serve_state, text_reply};

#[derive(Debug, Clone)]
pub enum Fault {
    Pass,
    Status(u16),
    Reset,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub id: u64,
    pub org: u64,
    pub dashboard_uid: Option<String>,
    pub panel_id: Option<u64>,
    pub time: i64,
    pub time_end: i64,
    pub text: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    token: String,
    read_only_token: String,
    basic: String,
    annotations: Vec<Annotation>,
    faults: VecDeque<Fault>,
    requests: Vec<Incoming>,
    now_ms: i64,
}

#[derive(Clone)]
pub struct FakeGrafana {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn message(status: u16, text: &str) -> Answer {
    json_reply(status, &json!({"message": text}), None)
}

impl FakeGrafana {
    /// `token` may create; `read_only_token` is a Viewer's; `basic` is `user:password`.
    pub async fn start(token: &str, read_only_token: &str, basic: &str) -> Self {
        let state = State {
            token: token.into(),
            read_only_token: read_only_token.into(),
            basic: basic.into(),
            now_ms: 1_800_000_000_000,
            ..State::default()
        };
        let (addr, state) = serve_state(state, handle).await;
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    pub fn annotations(&self) -> Vec<Annotation> {
        self.state.lock().unwrap().annotations.clone()
    }

    pub fn requests(&self) -> Vec<Incoming> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn tags_of(value: Option<&Value>, graphite: bool) -> Result<Vec<String>, ()> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| t.as_str().map(str::to_owned).ok_or(()))
            .collect(),
        Some(Value::String(s)) if graphite => Ok(s.split_whitespace().map(str::to_owned).collect()),
        None if !graphite => Ok(Vec::new()),
        _ => Err(()),
    }
}

fn handle(state: &Mutex<State>, req: Incoming) -> Answer {
    use base64::Engine as _;
    let mut st = state.lock().unwrap();
    st.requests.push(req.clone());
    match st.faults.pop_front() {
        Some(Fault::Status(code)) => return message(code, "Internal Server Error"),
        Some(Fault::Reset) => return None,
        Some(Fault::Pass) | None => {}
    }
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&st.basic)
    );
    match req.header("authorization") {
        Some(a) if a == format!("Bearer {}", st.token) || a == basic => {}
        Some(a) if a == format!("Bearer {}", st.read_only_token) => {
            return json_reply(
                403,
                &json!({"title": "Access denied",
                "message": "You'll need additional permissions to perform this action. Permissions needed: annotations:create",
                "accessErrorId": "ACE0000000001"}),
                None,
            );
        }
        _ => {
            return json_reply(
                401,
                &json!({"message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""}),
                None,
            );
        }
    }
    let org = match req.header("x-grafana-org-id") {
        None => 1,
        Some(v) => match v.parse() {
            Ok(n) => n,
            Err(_) => return message(400, "Invalid X-Grafana-Org-Id header"),
        },
    };
    let Ok(body) =
        serde_json::from_str::<Value>(if req.body.is_empty() { "{}" } else { &req.body })
    else {
        return message(400, "bad request data");
    };
    let now = st.now_ms;
    let path = req.path.as_str();
    match (req.method.as_str(), path) {
        ("POST", "/api/annotations") => {
            let text = body["text"].as_str().unwrap_or_default().to_owned();
            if text.is_empty() {
                return message(400, "Failed to save annotation");
            }
            let Ok(tags) = tags_of(body.get("tags"), false) else {
                return message(400, "bad request data");
            };
            let mut time = body["time"].as_i64().filter(|t| *t > 0).unwrap_or(now);
            let mut time_end = body["timeEnd"].as_i64().filter(|t| *t > 0).unwrap_or(time);
            if time_end < time {
                std::mem::swap(&mut time, &mut time_end);
            }
            let id = st.annotations.len() as u64 + 1;
            st.annotations.push(Annotation {
                id,
                org,
                dashboard_uid: body["dashboardUID"].as_str().map(str::to_owned),
                panel_id: body["panelId"].as_u64(),
                time,
                time_end,
                text,
                tags,
            });
            json_reply(200, &json!({"message": "Annotation added", "id": id}), None)
        }
        ("POST", "/api/annotations/graphite") => {
            let what = body["what"].as_str().unwrap_or_default();
            if what.is_empty() {
                return message(400, "Failed to save Graphite annotation");
            }
            let Ok(tags) = tags_of(body.get("tags"), true) else {
                return message(400, "Failed to save Graphite annotation");
            };
            let time = body["when"].as_i64().map_or(now, |s| s * 1000);
            let text = match body["data"].as_str() {
                Some(d) if !d.is_empty() => format!("{what}\n{d}"),
                _ => what.to_owned(),
            };
            let id = st.annotations.len() as u64 + 1;
            st.annotations.push(Annotation {
                id,
                org,
                dashboard_uid: None,
                panel_id: None,
                time,
                time_end: time,
                text,
                tags,
            });
            json_reply(
                200,
                &json!({"message": "Graphite annotation added", "id": id}),
                None,
            )
        }
        ("PATCH", p) if p.starts_with("/api/annotations/") => {
            let Ok(id) = p["/api/annotations/".len()..].parse::<u64>() else {
                return message(400, "annotationId is invalid");
            };
            let Some(a) = st
                .annotations
                .iter_mut()
                .find(|a| a.id == id && a.org == org)
            else {
                return message(404, "Annotation not found");
            };
            if let Some(t) = body["text"].as_str().filter(|t| !t.is_empty()) {
                a.text = t.to_owned();
            }
            if let Ok(tags) = tags_of(body.get("tags"), false)
                && body.get("tags").is_some()
            {
                a.tags = tags;
            }
            if let Some(t) = body["time"].as_i64().filter(|t| *t > 0) {
                a.time = t;
            }
            if let Some(t) = body["timeEnd"].as_i64().filter(|t| *t > 0) {
                a.time_end = t;
            }
            if a.time_end < a.time {
                std::mem::swap(&mut a.time, &mut a.time_end);
            }
            json_reply(200, &json!({"message": "Annotation patched"}), None)
        }
        _ => text_reply(404, "Not found"),
    }
}
