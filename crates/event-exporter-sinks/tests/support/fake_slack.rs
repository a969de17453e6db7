//! A fake Slack that behaves as ../shared/contracts/slack.md says the real one does:
//! Bearer auth (`not_authed` / `invalid_auth` with HTTP 200), channel names resolved to IDs,
//! `channel_not_found`, `no_text`, per-channel increasing `ts`, `reactions.add` checking the
//! message exists (`message_not_found`, `already_reacted`), `ok:false` with HTTP 200, 429 with
//! `Retry-After`, and an incoming-webhook route answering plain `ok`. Faults can be queued.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{Answer, Incoming, json_reply, serve_state, text_reply};

/// A fault to answer the next request with.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this request normally.
    Pass,
    /// An HTTP status with a plain body.
    Status(u16),
    /// HTTP 429, `Retry-After: N`, `{"ok":false,"error":"ratelimited"}`.
    RateLimited(u64),
    /// HTTP 200 `{"ok":false,"error":CODE}`.
    SlackError(&'static str),
    /// Close the connection without answering.
    Reset,
}

#[derive(Debug, Clone)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

#[derive(Debug, Default)]
struct State {
    token: String,
    channels: HashMap<String, String>,
    messages: Vec<Posted>,
    reactions: Vec<(String, String, String)>,
    requests: Vec<Recorded>,
    faults: VecDeque<Fault>,
    clock: u64,
}

#[derive(Clone)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

fn ok_false(code: &str) -> Answer {
    json_reply(200, &json!({"ok": false, "error": code}), None)
}

impl FakeSlack {
    /// Starts the server. `channels` maps names (`#upgrades`) to IDs; IDs are accepted too.
    pub async fn start(token: &str, channels: &[(&str, &str)]) -> Self {
        let mut state = State {
            token: token.to_owned(),
            clock: 1_700_000_000,
            ..State::default()
        };
        for (name, id) in channels {
            state.channels.insert((*name).to_owned(), (*id).to_owned());
            state.channels.insert((*id).to_owned(), (*id).to_owned());
        }
        let (addr, state) = serve_state(state, handle).await;
        Self { addr, state }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/services/T000/B000/sekrit", self.addr)
    }

    pub fn fail_next(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().faults.extend(faults);
    }

    pub fn messages(&self) -> Vec<Posted> {
        self.state.lock().unwrap().messages.clone()
    }

    pub fn reactions(&self) -> Vec<(String, String, String)> {
        self.state.lock().unwrap().reactions.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn handle(state: &Mutex<State>, req: Incoming) -> Answer {
    let path = req.path.clone();
    let authorization = req.header("authorization");
    let content_type = req.header("content-type");
    let body = req.body;
    let mut st = state.lock().unwrap();
    st.requests.push(Recorded {
        path: path.clone(),
        authorization: authorization.clone(),
        content_type: content_type.clone(),
        body: body.clone(),
    });
    match st.faults.pop_front() {
        Some(Fault::Status(code)) => return text_reply(code, "fault"),
        Some(Fault::RateLimited(secs)) => {
            return json_reply(
                429,
                &json!({"ok": false, "error": "ratelimited"}),
                Some(secs),
            );
        }
        Some(Fault::SlackError(code)) => return ok_false(code),
        Some(Fault::Reset) => return None,
        Some(Fault::Pass) | None => {}
    }
    if path.starts_with("/services/") {
        let text_ok = serde_json::from_str::<Value>(&body)
            .ok()
            .is_some_and(|v| v.get("text").is_some() || v.get("attachments").is_some());
        if !text_ok {
            return text_reply(400, "invalid_payload");
        }
        st.messages.push(Posted {
            channel: "webhook".into(),
            ts: String::new(),
            body: serde_json::from_str(&body).unwrap(),
        });
        return text_reply(200, "ok");
    }
    match authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        None => return ok_false("not_authed"),
        Some(t) if t != st.token => return ok_false("invalid_auth"),
        Some(_) => {}
    }
    if !content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return ok_false("invalid_post_type");
    }
    let Ok(args) = serde_json::from_str::<Value>(&body) else {
        return ok_false("invalid_json");
    };
    match path.as_str() {
        "/api/chat.postMessage" => {
            let Some(channel) = args["channel"]
                .as_str()
                .and_then(|c| st.channels.get(c))
                .cloned()
            else {
                return ok_false("channel_not_found");
            };
            if args.get("text").is_none() && args.get("attachments").is_none() {
                return ok_false("no_text");
            }
            if let Some(parent) = args.get("thread_ts").and_then(Value::as_str)
                && !st
                    .messages
                    .iter()
                    .any(|m| m.channel == channel && m.ts == parent)
            {
                return ok_false("thread_not_found");
            }
            st.clock += 1;
            let ts = format!("{}.{:06}", st.clock, st.messages.len());
            st.messages.push(Posted {
                channel: channel.clone(),
                ts: ts.clone(),
                body: args.clone(),
            });
            let text = args.get("text").cloned().unwrap_or(Value::Null);
            let out = json!({"ok": true, "channel": channel, "ts": ts,
                    "message": {"type": "message", "text": text, "ts": ts, "bot_id": "B0FAKE"}});
            json_reply(200, &out, None)
        }
        "/api/reactions.add" => {
            let channel = args["channel"].as_str().unwrap_or_default().to_owned();
            let ts = args["timestamp"].as_str().unwrap_or_default().to_owned();
            let name = args["name"].as_str().unwrap_or_default().to_owned();
            if !st
                .messages
                .iter()
                .any(|m| m.channel == channel && m.ts == ts)
            {
                return ok_false("message_not_found");
            }
            if st
                .reactions
                .contains(&(channel.clone(), ts.clone(), name.clone()))
            {
                return ok_false("already_reacted");
            }
            st.reactions.push((channel, ts, name));
            json_reply(200, &json!({"ok": true}), None)
        }
        _ => ok_false("unknown_method"),
    }
}
