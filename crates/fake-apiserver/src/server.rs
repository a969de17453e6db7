//! HTTP handling: auth, failure injection, routing, discovery, REST verbs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::RecordedRequest;
use crate::event;
use crate::selector::{FieldSelector, LabelSelector, Selectors};
use crate::status::Status;
use crate::store::{Cluster, Misbehavior, PatchKind, ResourceType, WatchStart};
use crate::util::parse_query;
use crate::watch::{BoxError, watch_body};

pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

fn full(code: u16, content_type: &str, bytes: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(bytes.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    full(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn status_response(s: &Status) -> Response<Body> {
    let mut resp = json_response(s.code, &s.to_json());
    if let Some(secs) = s.details.as_ref().and_then(|d| d.retry_after_seconds)
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The per-request context.
struct Ctx {
    method: Method,
    query: Vec<(String, String)>,
    content_type: String,
    body: Bytes,
}

impl Ctx {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1" | "True" | "TRUE"))
    }

    fn json_body(&self) -> Result<Value, Status> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Status::bad_request(format!("the request body is not valid JSON: {e}")))
    }
}

/// Handle one request.
pub(crate) async fn handle(
    cluster: Cluster,
    token: Option<Arc<str>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    cluster.record_request(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
    });
    if let Some(token) = token {
        let ok = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t.trim() == &*token);
        if !ok {
            return Ok(status_response(&Status::unauthorized()));
        }
    }
    if let Some(s) = cluster.take_failure(parts.method.as_str(), &path) {
        return Ok(status_response(&s));
    }
    let is_watch = parse_query(&raw_query)
        .iter()
        .any(|(k, v)| k == "watch" && matches!(v.as_str(), "true" | "1" | "True" | "TRUE"));
    let misbehavior = cluster.misbehavior(parts.method.as_str(), &path, is_watch);
    match misbehavior {
        Some(Misbehavior::Hang) => std::future::pending::<()>().await,
        Some(Misbehavior::EmptyWatch) if is_watch => {
            return Ok(full(200, "application/json", Bytes::new()));
        }
        Some(Misbehavior::Garbage { status, bytes }) => {
            let line = "<p>proxy error: the upstream is gone</p>\n";
            let page = line.repeat(bytes / line.len() + 1);
            return Ok(full(status, "text/html", page.into_bytes()));
        }
        Some(Misbehavior::HalfBody | Misbehavior::Drip(_)) if is_watch => {
            return Ok(hostile_body(
                Bytes::from_static(br#"{"type":"ADDED","object":{"metadata""#),
                misbehavior,
                true,
            ));
        }
        _ => {}
    }
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(status_response(&Status::bad_request(e.to_string()))),
    };
    let ctx = Ctx {
        method: parts.method,
        query: parse_query(&raw_query),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        body,
    };
    let resp = match route(&cluster, &ctx, &path) {
        Ok(resp) => resp,
        Err(s) => status_response(&s),
    };
    if matches!(
        misbehavior,
        Some(Misbehavior::HalfBody | Misbehavior::Drip(_))
    ) {
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut hostile = hostile_body(bytes, misbehavior, false);
        *hostile.status_mut() = parts.status;
        *hostile.headers_mut() = parts.headers;
        hostile.headers_mut().remove(header::CONTENT_LENGTH);
        return Ok(hostile);
    }
    Ok(resp)
}

/// A `200` whose body is `bytes` sent as `how` says: half of it, then nothing; or one byte at a
/// time (`endless`: then spaces, forever, that never end a watch line).
fn hostile_body(bytes: Bytes, how: Option<Misbehavior>, endless: bool) -> Response<Body> {
    use futures::StreamExt as _;
    use hyper::body::Frame;
    let stream: futures::stream::BoxStream<'static, Result<Frame<Bytes>, BoxError>> = match how {
        Some(Misbehavior::Drip(every)) => futures::stream::unfold(0usize, move |i| {
            let bytes = bytes.clone();
            async move {
                tokio::time::sleep(every).await;
                let byte = match bytes.get(i) {
                    Some(b) => Bytes::copy_from_slice(&[*b]),
                    None if endless => Bytes::from_static(b" "),
                    None => return None,
                };
                Some((Ok(Frame::data(byte)), i + 1))
            }
        })
        .boxed(),
        _ => {
            let half = bytes.slice(..bytes.len() / 2);
            futures::stream::once(async move { Ok(Frame::data(half)) })
                .chain(futures::stream::pending())
                .boxed()
        }
    };
    let mut resp = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn route(cluster: &Cluster, ctx: &Ctx, path: &str) -> Result<Response<Body>, Status> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["version"] => Ok(json_response(200, &version_json())),
        ["api"] => Ok(json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
        )),
        ["apis"] => Ok(json_response(200, &group_list(cluster))),
        ["api", "v1"] => resource_list(cluster, "", "v1"),
        ["apis", g, v] => resource_list(cluster, g, v),
        ["api", "v1", rest @ ..] => resource(cluster, ctx, "", "v1", rest),
        ["apis", g, v, rest @ ..] => resource(cluster, ctx, g, v, rest),
        _ => Err(Status::path_not_found()),
    }
}

fn version_json() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64"
    })
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn group_list(cluster: &Cluster) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in cluster.registry() {
        if t.group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) => {
                if !vs.contains(&t.version) {
                    vs.push(t.version.clone());
                }
            }
            None => groups.push((t.group.clone(), vec![t.version.clone()])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({"name": g, "versions": versions, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(cluster: &Cluster, group: &str, version: &str) -> Result<Response<Body>, Status> {
    let resources: Vec<Value> = cluster
        .registry()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .map(|t| {
            let mut r = json!({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "verbs": VERBS,
            });
            if !t.short_names.is_empty() {
                r["shortNames"] = json!(t.short_names);
            }
            r
        })
        .collect();
    if resources.is_empty() {
        return Err(Status::path_not_found());
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    ))
}

fn resource(
    cluster: &Cluster,
    ctx: &Ctx,
    group: &str,
    version: &str,
    rest: &[&str],
) -> Result<Response<Body>, Status> {
    let (legacy_watch, rest) = match rest {
        ["watch", r @ ..] => (true, r),
        r => (false, r),
    };
    let (ns, plural, name) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if cluster.lookup(group, version, plural).is_some() =>
        {
            match tail {
                [] => (Some(*ns), *plural, None),
                [name] => (Some(*ns), *plural, Some(*name)),
                _ => return Err(Status::path_not_found()),
            }
        }
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        _ => return Err(Status::path_not_found()),
    };
    let rt = cluster
        .lookup(group, version, plural)
        .ok_or_else(Status::path_not_found)?;
    if ns.is_some() && !rt.namespaced {
        return Err(Status::path_not_found());
    }
    if rt.namespaced && ns.is_none() && name.is_some() {
        return Err(Status::path_not_found());
    }
    let is_watch = legacy_watch || ctx.flag("watch");
    let verb = match (&ctx.method, name, is_watch) {
        (&Method::GET, Some(_), false) => "get",
        (&Method::GET, None, true) => "watch",
        (&Method::GET, Some(_), true) => "watch",
        (&Method::GET, None, false) => "list",
        (&Method::POST, None, _) if ns.is_some() || !rt.namespaced => "create",
        (&Method::PUT, Some(_), _) => "update",
        (&Method::PATCH, Some(_), _) => "patch",
        (&Method::DELETE, Some(_), _) => "delete",
        _ => {
            return Err(Status::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    if cluster.is_forbidden(verb, &rt.plural) {
        return Err(Status::forbidden(rt.res_ref(), verb, ns));
    }
    match verb {
        "get" => {
            let obj = cluster.get(&rt, ns, name.unwrap_or(""))?;
            Ok(json_response(200, &rt.render(&obj, true)))
        }
        "list" => list(cluster, ctx, &rt, ns),
        "watch" => watch(cluster, ctx, &rt, ns, name),
        "create" => {
            let body = ctx.json_body()?;
            let obj = if rt.is_events_v1() {
                let core = event::from_v1(body.clone());
                cluster.create(&rt, ns, core, Some(&body))?
            } else {
                cluster.create(&rt, ns, body, None)?
            };
            Ok(json_response(201, &rt.render(&obj, true)))
        }
        "update" => {
            let mut body = ctx.json_body()?;
            if rt.is_events_v1() {
                body = event::from_v1(body);
            }
            let (obj, created) = cluster.update(&rt, ns, name.unwrap_or(""), body)?;
            Ok(json_response(
                if created { 201 } else { 200 },
                &rt.render(&obj, true),
            ))
        }
        "patch" => {
            let ct = ctx
                .content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let kind = match ct.as_str() {
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    PatchKind::Merge
                }
                "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
                other => {
                    return Err(Status::new(
                        415,
                        "UnsupportedMediaType",
                        format!(
                            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {other:?})"
                        ),
                    ));
                }
            };
            let patch = ctx.json_body()?;
            let obj = cluster.patch(&rt, ns, name.unwrap_or(""), &patch, kind)?;
            Ok(json_response(200, &rt.render(&obj, true)))
        }
        "delete" => {
            let obj = cluster.delete(&rt, ns, name.unwrap_or(""))?;
            Ok(json_response(200, &rt.render(&obj, true)))
        }
        _ => Err(Status::path_not_found()),
    }
}

fn selectors(ctx: &Ctx, rt: &ResourceType) -> Result<Selectors, Status> {
    Ok(Selectors {
        field: FieldSelector::parse(ctx.param("fieldSelector").unwrap_or(""), rt.field_vocab())?,
        label: LabelSelector::parse(ctx.param("labelSelector").unwrap_or(""))?,
    })
}

fn parse_rv(s: &str) -> Result<u64, Status> {
    s.parse()
        .map_err(|_| Status::bad_request(format!("invalid resource version: {s:?}")))
}

fn list(
    cluster: &Cluster,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
) -> Result<Response<Body>, Status> {
    if ctx.param("sendInitialEvents").is_some() {
        return Err(Status::invalid_params(
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list",
        ));
    }
    let rv = ctx.param("resourceVersion").filter(|s| !s.is_empty());
    let rvm = ctx.param("resourceVersionMatch").filter(|s| !s.is_empty());
    let cont = ctx.param("continue").filter(|s| !s.is_empty());
    if let Some(m) = rvm {
        if rv.is_none() {
            return Err(Status::invalid_params(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if cont.is_some() {
            return Err(Status::invalid_params(
                "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m == "Exact" && rv == Some("0") {
            return Err(Status::invalid_params(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            return Err(Status::invalid_params(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    }
    if let Some(rv) = rv {
        parse_rv(rv)?;
    }
    let sel = selectors(ctx, rt)?;
    let limit = match ctx.param("limit").filter(|s| !s.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| Status::bad_request(format!("invalid limit: {l:?}")))?,
        ),
        None => None,
    };
    let page = cluster.list(rt, ns, &sel, limit, cont)?;
    let mut buf = Vec::with_capacity(page.items.len() * 512 + 256);
    buf.extend_from_slice(b"{\"kind\":");
    let _ = serde_json::to_writer(&mut buf, &format!("{}List", rt.kind));
    buf.extend_from_slice(b",\"apiVersion\":");
    let _ = serde_json::to_writer(&mut buf, &rt.api_version());
    buf.extend_from_slice(b",\"metadata\":{\"resourceVersion\":\"");
    buf.extend_from_slice(page.rv.to_string().as_bytes());
    buf.push(b'"');
    if let Some(c) = &page.continue_token {
        buf.extend_from_slice(b",\"continue\":");
        let _ = serde_json::to_writer(&mut buf, c);
    }
    buf.extend_from_slice(b"},\"items\":[");
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        rt.write_json(&mut buf, item, false);
    }
    buf.extend_from_slice(b"]}");
    Ok(full(200, "application/json", buf))
}

fn watch(
    cluster: &Cluster,
    ctx: &Ctx,
    rt: &ResourceType,
    ns: Option<&str>,
    name: Option<&str>,
) -> Result<Response<Body>, Status> {
    let sie = ctx.param("sendInitialEvents");
    let rvm = ctx.param("resourceVersionMatch").filter(|s| !s.is_empty());
    if sie.is_some() && !cluster.options().watch_list {
        return Err(Status::invalid_params(
            "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
        ));
    }
    let initial_events = matches!(sie, Some("true" | "1"));
    match (sie.is_some(), rvm) {
        (false, Some(_)) => {
            return Err(Status::invalid_params(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        (true, m) if m != Some("NotOlderThan") => {
            return Err(Status::invalid_params(format!(
                "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"{}\": supported values: \"NotOlderThan\"",
                m.unwrap_or("")
            )));
        }
        _ => {}
    }
    let mut sel = selectors(ctx, rt)?;
    if let Some(name) = name {
        // Watching a single object = a metadata.name field selector.
        let extra = FieldSelector::parse(&format!("metadata.name={name}"), rt.field_vocab())?;
        sel.field = if sel.field.is_empty() {
            extra
        } else {
            FieldSelector::parse(
                &format!(
                    "{},metadata.name={name}",
                    ctx.param("fieldSelector").unwrap_or("")
                ),
                rt.field_vocab(),
            )?
        };
    }
    let rv = ctx.param("resourceVersion").filter(|s| !s.is_empty());
    let start = if initial_events {
        if let Some(rv) = rv {
            parse_rv(rv)?;
        }
        WatchStart::InitialEvents
    } else {
        match rv {
            None | Some("0") => WatchStart::Current,
            Some(rv) => WatchStart::From(parse_rv(rv)?),
        }
    };
    let timeout = match ctx.param("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(t) => Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
            Status::bad_request(format!("invalid timeoutSeconds: {t:?}"))
        })?)),
        None => None,
    };
    let bookmarks = ctx.flag("allowWatchBookmarks");
    match cluster.watch(rt, ns, start, bookmarks) {
        Ok(reg) => {
            let body = watch_body(rt.clone(), ns.map(str::to_string), sel, reg, timeout);
            let mut resp = Response::new(BodyExt::boxed_unsync(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(resp)
        }
        Err(status) => {
            let mut line =
                serde_json::to_vec(&json!({"type": "ERROR", "object": status.to_json()}))
                    .unwrap_or_default();
            line.push(b'\n');
            Ok(full(200, "application/json", line))
        }
    }
}
