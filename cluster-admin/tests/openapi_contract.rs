//! The OpenAPI document (`src/openapi.json`) against the running code.
//!
//! A real embedded cluster of `python3 -m http.server` workers; the admin API on an admin
//! listener without a token, on a second one with a token, and (without a token) on the front
//! port. Driven by the document, the test sends the requests that produce every documented
//! answer of every operation (the refusals of what a browser could be made to send by another
//! site, and of POSTs that do not say they are JSON, included), and checks that each answer's
//! status is documented for its operation, that its `Content-Type` and documented headers
//! match, and that its body validates against the documented schema (OpenAPI 3.0 schemas turned
//! into JSON Schema 2020-12). At the end every documented (path, method, status) must have been
//! seen, and every process the cluster started must be gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cluster_admin::{AdminApi, AdminConfig, OPENAPI_DOCUMENT, routes};
use cluster_core::config::ClusterSpec;
use cluster_core::upgrade::SuccessorCommand;
use cluster_core::{
    Cluster, ClusterHandle, ClusterStatus, ProcessSpawner, Rotation, ShutdownMode, WorkerState,
};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Longest any one wait may last.
const WAIT: Duration = Duration::from_secs(60);

/// The token of the guarded listener.
const TOKEN: &str = "openapi-contract-token-0123456789";

/// Each worker: waits half a second before it listens, long enough to be seen starting.
const WORKER: &str = r#"sleep 0.5; exec python3 -m http.server --bind 127.0.0.1 "$PORT""#;

/// The new primary of a hot upgrade: answers `READY=1` on its readiness socket (fd 4, the
/// first the old primary passes) and idles while the file `$1` exists (a good build), else
/// fails (a broken build).
const SUCCESSOR: &str = r#"if [ -e "$1" ]; then printf 'READY=1\n' >&4; exec sleep 120; fi; echo 'broken build' >&2; exit 1"#;

/// The variable that marks every process the test's cluster starts.
const MARKER: &str = "CLUSTER_OPENAPI_CONTRACT";

/// The admin API's request body limit.
const MAX_BODY: usize = 64 * 1024;

/// Every method the test tries on every path.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_every_answer() {
    let python = std::process::Command::new("python3").arg("--version").output();
    assert!(python.is_ok_and(|o| o.status.success()), "this test runs python3 workers");
    let mut h = Harness::start().await;

    h.the_document_names_every_route_of_the_code();
    h.reads_answer_200().await;
    h.the_token_is_required_on_the_guarded_listener().await;
    h.the_front_port_without_a_token_hides_every_route().await;
    h.other_methods_get_405_with_allow().await;
    h.requests_from_other_sites_get_403().await;
    h.posts_must_say_json().await;
    h.scale().await;
    h.restart_one_worker().await;
    h.restart().await;
    h.upgrade_refused_or_failed().await;
    h.shutdown_and_after().await;

    h.contract.every_documented_answer_was_seen();
    every_process_is_gone(&h.marker, &h.pids).await;
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    /// `Basic`, with this password.
    Basic(&'a str),
}

/// An answer, its body read (an events stream: up to its first status snapshot).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }
}

/// The headers a request carries unless told otherwise: `Host`, the address it is sent to (a
/// loopback one: the listener without a token answers to nothing else); the credentials of
/// `auth`; and on a POST `Content-Type: application/json`, which the admin API requires of
/// every POST, one without a body too.
fn usual_headers(at: SocketAddr, method: &str, auth: Auth<'_>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_str(&at.to_string()).unwrap());
    let credentials = match auth {
        Auth::None => None,
        Auth::Bearer(token) => Some(format!("Bearer {token}")),
        Auth::Basic(password) => {
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("ops:{password}"));
            Some(format!("Basic {pair}"))
        }
    };
    if let Some(credentials) = credentials {
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&credentials).unwrap());
    }
    if method == "POST" {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers
}

/// Sends one request on a new connection with the [`usual_headers`], each of `headers`
/// replacing the one of its name.
async fn request(
    at: SocketAddr,
    method: &str,
    path: &str,
    auth: Auth<'_>,
    body: Option<&[u8]>,
    headers: &[(&str, String)],
) -> Answer {
    let mut all = usual_headers(at, method, auth);
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("a header name");
        all.insert(name, HeaderValue::from_str(value).expect("a header value"));
    }
    send(at, method, path, all, body).await
}

/// Sends one request on a new connection, with exactly `headers` (hyper adds none but
/// `Content-Length`).
async fn send(
    at: SocketAddr,
    method: &str,
    path: &str,
    headers: HeaderMap,
    body: Option<&[u8]>,
) -> Answer {
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(at).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.expect("handshake");
        tokio::spawn(conn);
        let body = Full::new(Bytes::copy_from_slice(body.unwrap_or_default()));
        let mut req = http::Request::builder().method(method).uri(path).body(body).unwrap();
        *req.headers_mut() = headers;
        let response = sender.send_request(req).await.expect("response");
        let (parts, mut body) = response.into_parts();
        let stream = essence(&parts.headers) == "text/event-stream";
        let mut read = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.expect("response body").data_ref() {
                read.extend_from_slice(data);
            }
            if stream && has_status_snapshot(&read) {
                break;
            }
        }
        Answer { status: parts.status.as_u16(), headers: parts.headers, body: read.into() }
    };
    tokio::time::timeout(WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within {WAIT:?}"))
}

/// The media type of a `Content-Type`, without parameters.
fn essence(headers: &http::HeaderMap) -> String {
    let value = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    value.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn has_status_snapshot(read: &[u8]) -> bool {
    let text = String::from_utf8_lossy(read);
    text.find("event: status\n").is_some_and(|at| text[at..].contains("\n\n"))
}

/// The document, its schemas as JSON Schema, and the answers seen.
struct Contract {
    doc: Value,
    /// `components.schemas`, converted, as `$defs`.
    defs: Value,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// (path template, method, status) of every checked answer.
    seen: BTreeSet<(String, String, u16)>,
}

impl Contract {
    fn new(text: &str) -> Self {
        let doc: Value = serde_json::from_str(text).expect("the document is JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        every_ref_resolves(&doc, &doc);
        let defs = json_schemas(&doc["components"]["schemas"]);
        let mut contract =
            Contract { doc, defs, validators: BTreeMap::new(), seen: BTreeSet::new() };
        let names: Vec<String> = contract.defs.as_object().unwrap().keys().cloned().collect();
        for name in names {
            contract.validator(&json!({ "$ref": format!("#/components/schemas/{name}") }));
        }
        contract
    }

    /// Every (path template, method) the document has.
    fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method.to_ascii_lowercase()).is_some() {
                    ops.push((path.clone(), method.to_owned()));
                }
            }
        }
        ops
    }

    /// The documented methods of `template`, in upper case.
    fn methods_of(&self, template: &str) -> BTreeSet<String> {
        let item = &self.doc["paths"][template];
        let documented = METHODS.iter().filter(|m| item.get(m.to_ascii_lowercase()).is_some());
        documented.map(|m| (*m).to_owned()).collect()
    }

    /// The documented path that `path` is an instance of.
    fn template_of(&self, path: &str) -> String {
        let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let matches = |template: &str| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(t, s)| {
                    t == s || (t.starts_with('{') && t.ends_with('}') && !s.is_empty())
                })
        };
        let paths = self.doc["paths"].as_object().unwrap();
        let found = paths.keys().find(|t| matches(t));
        found.unwrap_or_else(|| panic!("{path} is not in the document")).clone()
    }

    /// Follows a `$ref` within the document.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target.strip_prefix('#').expect("a local $ref");
            value = self.doc.pointer(pointer).unwrap_or_else(|| panic!("{target} resolves"));
        }
        value
    }

    /// Checks `answer` to `method path` against the document and records it; the JSON body,
    /// if it is one.
    fn check(&mut self, method: &str, path: &str, answer: &Answer) -> Option<Value> {
        let template = self.template_of(path);
        let what = format!("{method} {path} -> {}: {}", answer.status, answer.text());
        let documented = self.methods_of(&template);
        if !documented.contains(method) {
            // A method the path does not take: the 405 every operation of the path documents.
            assert_eq!(answer.status, 405, "{what}");
            let mut json = None;
            for documented_method in &documented {
                json = self.check_operation(&template, documented_method, method, answer, &what);
            }
            return json;
        }
        self.check_operation(&template, method, method, answer, &what)
    }

    /// Checks `answer` to a `sent` request against the operation `method template`.
    fn check_operation(
        &mut self,
        template: &str,
        method: &str,
        sent: &str,
        answer: &Answer,
        what: &str,
    ) -> Option<Value> {
        let key = answer.status.to_string();
        let op = &self.doc["paths"][template][method.to_ascii_lowercase()];
        let response = op["responses"]
            .get(&key)
            .unwrap_or_else(|| panic!("{what}: status not documented for {method} {template}"));
        let response = self.resolve(response).clone();
        for (name, header) in
            response.get("headers").and_then(Value::as_object).into_iter().flatten()
        {
            let header = self.resolve(header).clone();
            match answer.headers.get(name.as_str()) {
                None => assert_ne!(header["required"], true, "{what}: no {name} header"),
                Some(value) => {
                    let value = json!(value.to_str().expect("an ASCII header"));
                    self.validate(&header["schema"], &value, &format!("{what}: header {name}"));
                }
            }
        }
        // HEAD answers as GET would, without the body.
        if sent == "HEAD" {
            assert!(answer.body.is_empty(), "{what}: a body in answer to HEAD");
        }
        let content = if method == "HEAD" {
            let get = &self.doc["paths"][template]["get"]["responses"][&key];
            self.resolve(get).get("content").cloned()
        } else {
            response.get("content").cloned()
        };
        let content = content.unwrap_or_else(|| panic!("{what}: no documented content"));
        let media = essence(&answer.headers);
        let (_, documented) = content
            .as_object()
            .unwrap()
            .iter()
            .find(|(m, _)| m.split(';').next().unwrap().trim() == media)
            .unwrap_or_else(|| panic!("{what}: Content-Type {media:?} is not documented"));
        let schema = documented["schema"].clone();
        self.seen.insert((template.to_owned(), method.to_owned(), answer.status));
        if sent == "HEAD" {
            return None;
        }
        if media == "application/json" {
            let body: Value = serde_json::from_slice(&answer.body)
                .unwrap_or_else(|e| panic!("{what}: the body is not JSON: {e}"));
            self.validate(&schema, &body, what);
            Some(body)
        } else {
            self.validate(&schema, &json!(answer.text()), what);
            None
        }
    }

    /// Whether `body` matches the documented JSON request body of `POST path`; `None` when it
    /// is not JSON or none is documented.
    fn request_body_matches(&mut self, path: &str, body: &str) -> Option<bool> {
        let template = self.template_of(path);
        let documented = &self.doc["paths"][&template]["post"]["requestBody"];
        let schema = documented["content"]["application/json"]["schema"].clone();
        let body: Value = serde_json::from_str(body).ok()?;
        (!schema.is_null()).then(|| self.validator(&schema).is_valid(&body))
    }

    /// Validates `instance` against a schema of the document.
    fn validate(&mut self, schema: &Value, instance: &Value, what: &str) {
        let validator = self.validator(schema);
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect();
        assert!(errors.is_empty(), "{what}: does not match {schema}:\n{}", errors.join("\n"));
    }

    fn validator(&mut self, schema: &Value) -> &jsonschema::Validator {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            let root = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$defs": self.defs,
                "allOf": [json_schema(schema)],
            });
            let validator = jsonschema::draft202012::new(&root)
                .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"));
            self.validators.insert(key.clone(), validator);
        }
        &self.validators[&key]
    }

    fn every_documented_answer_was_seen(&self) {
        let mut missing = Vec::new();
        for (template, method) in self.operations() {
            let op = &self.doc["paths"][&template][method.to_ascii_lowercase()];
            for status in op["responses"].as_object().unwrap().keys() {
                let status: u16 = status.parse().expect("a numeric status");
                if !self.seen.contains(&(template.clone(), method.clone(), status)) {
                    missing.push(format!("{method} {template} {status}"));
                }
            }
        }
        assert!(missing.is_empty(), "documented answers never seen:\n{}", missing.join("\n"));
    }
}

/// An OpenAPI 3.0 schema as JSON Schema 2020-12: `nullable` becomes `null` among the types
/// (or an `anyOf` with `null`), and `#/components/schemas/` references point into `$defs`.
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                let value = match key.as_str() {
                    "nullable" => continue,
                    "$ref" => {
                        json!(value.as_str().unwrap().replace("#/components/schemas/", "#/$defs/"))
                    }
                    // Values, not schemas.
                    "enum" | "default" | "example" => value.clone(),
                    // Names, then schemas.
                    "properties" => json_schemas(value),
                    _ => json_schema(value),
                };
                out.insert(key.clone(), value);
            }
            if map.get("nullable") != Some(&Value::Bool(true)) {
                return Value::Object(out);
            }
            if let Some(Value::Array(values)) = out.get_mut("enum") {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            }
            match out.get("type").cloned() {
                Some(Value::String(t)) => {
                    out.insert("type".into(), json!([t, "null"]));
                    Value::Object(out)
                }
                _ if out.contains_key("enum") => Value::Object(out),
                _ => json!({ "anyOf": [out, { "type": "null" }] }),
            }
        }
        other => other.clone(),
    }
}

/// A map of names to schemas, each converted by [`json_schema`].
fn json_schemas(map: &Value) -> Value {
    let map = map.as_object().expect("a map of schemas");
    Value::Object(map.iter().map(|(name, schema)| (name.clone(), json_schema(schema))).collect())
}

fn every_ref_resolves(doc: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(target) = map.get("$ref").and_then(Value::as_str) {
                let pointer = target.strip_prefix('#').expect("only local references");
                assert!(doc.pointer(pointer).is_some(), "{target} points nowhere");
            }
            map.values().for_each(|v| every_ref_resolves(doc, v));
        }
        Value::Array(items) => items.iter().for_each(|v| every_ref_resolves(doc, v)),
        _ => {}
    }
}

/// The cluster, its three ways in, and the contract.
struct Harness {
    contract: Contract,
    handle: ClusterHandle,
    /// The admin listener without a token.
    open: SocketAddr,
    /// The admin listener with [`TOKEN`].
    guarded: SocketAddr,
    /// The front port, whose admin front door has no token.
    front: SocketAddr,
    run: Option<tokio::task::JoinHandle<()>>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    /// `MARKER=value` in every worker's environment.
    marker: String,
    /// Every worker pid seen.
    pids: BTreeSet<u32>,
    /// Its existence makes the next hot upgrade's new primary a good build.
    good_build: std::path::PathBuf,
    _stop: StopOnDrop,
}

/// Stops the cluster at once if the test fails half-way.
struct StopOnDrop(ClusterHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(ShutdownMode::Immediate);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.listeners.iter().for_each(|l| l.abort());
    }
}

/// A POST body.
type Body<'a> = Option<&'a str>;

impl Harness {
    async fn start() -> Self {
        let mut spec = ClusterSpec::default();
        spec.workers = 2;
        spec.listen = "127.0.0.1:0".parse().unwrap();
        spec.scaling.min_workers = 1;
        spec.scaling.max_workers = 4;
        spec.graceful_shutdown_timeout = Duration::from_secs(10);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let marker_value = format!("{}-{}", std::process::id(), nanos.as_nanos());
        let spawner = ProcessSpawner::new("sh", ["-c", WORKER]).env(MARKER, &marker_value);
        let good_build = std::env::temp_dir().join(format!("cluster-openapi-{marker_value}"));
        let successor =
            SuccessorCommand::new("sh", ["-c", SUCCESSOR, "sh", good_build.to_str().unwrap()])
                .unwrap();
        let cluster = Cluster::builder(spec.clone())
            .spawner(spawner)
            .upgradable(successor)
            .build()
            .await
            .expect("bind");
        let handle = cluster.handle();

        let mut open_cfg = AdminConfig::from_spec(&spec);
        open_cfg.token = None;
        // Any worker short of the desired count makes health 503.
        open_cfg.min_healthy_percent = 100.0;
        let open_api = AdminApi::new(handle.clone(), open_cfg);
        let mut guarded_cfg = AdminConfig::from_spec(&spec);
        guarded_cfg.token = Some(TOKEN.into());
        guarded_cfg.public_health = false;
        let guarded_api = AdminApi::new(handle.clone(), guarded_cfg);

        let cluster = cluster.with_front_door(open_api.front_door());
        let front = cluster.local_addr();
        let run = tokio::spawn(async move { cluster.run().await.expect("cluster run") });
        let mut listeners = Vec::new();
        let mut serve = |api: AdminApi, listener: TcpListener| {
            listeners.push(tokio::spawn(async move { api.serve_listener(listener).await }));
        };
        let open_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = open_listener.local_addr().unwrap();
        serve(open_api, open_listener);
        let guarded_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let guarded = guarded_listener.local_addr().unwrap();
        serve(guarded_api, guarded_listener);

        let mut h = Harness {
            contract: Contract::new(OPENAPI_DOCUMENT),
            handle: handle.clone(),
            open,
            guarded,
            front,
            run: Some(run),
            listeners,
            marker: format!("{MARKER}={marker_value}"),
            pids: BTreeSet::new(),
            good_build,
            _stop: StopOnDrop(handle),
        };
        h.settled(2).await;
        h
    }

    /// Sends a request to `at` and checks the answer against the document.
    async fn ask(
        &mut self,
        at: SocketAddr,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Body<'_>,
    ) -> (u16, Option<Value>) {
        self.ask_with(at, method, path, auth, body, &[]).await
    }

    /// [`ask`](Self::ask), with `headers` replacing the usual ones of their names.
    async fn ask_with(
        &mut self,
        at: SocketAddr,
        method: &str,
        path: &str,
        auth: Auth<'_>,
        body: Body<'_>,
        headers: &[(&str, String)],
    ) -> (u16, Option<Value>) {
        let answer = request(at, method, path, auth, body.map(str::as_bytes), headers).await;
        let json = self.contract.check(method, path, &answer);
        (answer.status, json)
    }

    /// [`ask`](Self::ask), with exactly `headers`.
    async fn ask_exactly(
        &mut self,
        at: SocketAddr,
        method: &str,
        path: &str,
        headers: HeaderMap,
        body: Body<'_>,
    ) -> (u16, Option<Value>) {
        let answer = send(at, method, path, headers, body.map(str::as_bytes)).await;
        let json = self.contract.check(method, path, &answer);
        (answer.status, json)
    }

    /// `POST path` on the open listener.
    /// A body the code accepts matches the documented request body.
    async fn post(&mut self, path: &str, body: Body<'_>) -> (u16, Option<Value>) {
        let (status, json) = self.ask(self.open, "POST", path, Auth::None, body).await;
        if let Some(body) = body.filter(|_| (200..300).contains(&status)) {
            let matches = self.contract.request_body_matches(path, body);
            assert_ne!(matches, Some(false), "POST {path} {body}: accepted, but not documented");
        }
        (status, json)
    }

    /// `POST path` with a malformed `body`: 400, and the document does not allow the body.
    async fn malformed(&mut self, path: &str, body: &str) {
        assert_eq!(self.post(path, Some(body)).await.0, 400, "POST {path} {body}");
        let matches = self.contract.request_body_matches(path, body);
        assert_ne!(matches, Some(true), "POST {path} {body}: refused, but documented");
    }

    /// `GET path` on the open listener.
    async fn get(&mut self, path: &str) -> (u16, Option<Value>) {
        self.ask(self.open, "GET", path, Auth::None, None).await
    }

    async fn status(&mut self) -> ClusterStatus {
        let status = self.handle.status().await.expect("the cluster runs");
        self.pids.extend(status.workers.iter().map(|w| w.pid));
        status
    }

    /// Polls the status until `done` holds (at most [`WAIT`]).
    async fn wait_until(
        &mut self,
        what: &str,
        done: impl Fn(&ClusterStatus) -> bool,
    ) -> ClusterStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.status().await;
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}: {status:#?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `n` workers run, all ready and in rotation, and no operation is under way.
    async fn settled(&mut self, n: usize) -> ClusterStatus {
        self.wait_until(&format!("{n} workers serving"), |s| {
            s.operation.is_none()
                && s.ready_workers == n
                && s.workers.len() == n
                && s.workers
                    .iter()
                    .all(|w| w.status == WorkerState::Ready && w.rotation == Rotation::In)
        })
        .await
    }

    /// The path of an operation, `{id}` filled with `id`.
    fn concrete(template: &str, id: u64) -> String {
        template.replace("{id}", &id.to_string())
    }

    fn the_document_names_every_route_of_the_code(&self) {
        let code: BTreeSet<String> = [
            routes::STATUS,
            routes::HEALTH,
            routes::SCALE,
            routes::RESTART,
            "/api/admin/cluster/workers/{id}/restart",
            routes::SHUTDOWN,
            routes::UPGRADE,
            routes::EVENTS,
            routes::METRICS_FRONT,
            routes::OPENAPI,
            routes::METRICS,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let documented: BTreeSet<String> =
            self.contract.doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(documented, code);
        // The methods are compared with the code's `Allow` headers in `other_methods_get_405_with_allow`.
    }

    /// Every GET and HEAD answers 200 on the open listener; the document served is this one.
    async fn reads_answer_200(&mut self) {
        for (template, method) in self.contract.operations() {
            if method != "POST" {
                let (status, _) = self.ask(self.open, &method, &template, Auth::None, None).await;
                assert_eq!(status, 200, "{method} {template}");
            }
        }
        // Every path answers with a trailing slash too.
        let (status, _) = self.get(&format!("{}/", routes::STATUS)).await;
        assert_eq!(status, 200, "a trailing slash");
        let served = request(self.open, "GET", routes::OPENAPI, Auth::None, None, &[]).await;
        assert_eq!(served.text(), OPENAPI_DOCUMENT);
        // `Last-Event-ID: 0`: every event since the start, then a status snapshot.
        let since = [("last-event-id", "0".to_owned())];
        let events = request(self.open, "GET", routes::EVENTS, Auth::None, None, &since).await;
        self.contract.check("GET", routes::EVENTS, &events);
        let names = self.events(&events.text(), true);
        assert!(names.iter().any(|n| n == "workerStarted"), "{names:?}");
    }

    /// The records of an events stream, checked: each lifecycle event's `data` is a JSON object
    /// whose `type` is its `event`, each snapshot's a `ClusterStatus`. Their names.
    fn events(&mut self, stream: &str, with_snapshot: bool) -> Vec<String> {
        let mut records = stream.split("\n\n").filter(|r| !r.is_empty());
        assert_eq!(records.next(), Some("retry: 2000"), "{stream}");
        let mut names = Vec::new();
        for record in records.filter(|r| !r.starts_with(':')) {
            let field = |name: &str| {
                let prefix = format!("{name}: ");
                let line = record.lines().find(|l| l.starts_with(&prefix));
                line.unwrap_or_else(|| panic!("no {name} in {record:?}"))[prefix.len()..].to_owned()
            };
            field("id").parse::<u64>().expect("a numeric id");
            let (name, data) = (field("event"), field("data"));
            let data: Value = serde_json::from_str(&data).expect("JSON data");
            if name == "status" {
                let schema = json!({ "$ref": "#/components/schemas/ClusterStatus" });
                self.contract.validate(&schema, &data, "a status snapshot");
            } else {
                assert_eq!(data["type"], json!(name), "{record}");
            }
            names.push(name);
        }
        assert!(!with_snapshot || names.iter().any(|n| n == "status"), "{stream}");
        names
    }

    /// 401 without the token or with a wrong one, on every operation; 200 with it.
    async fn the_token_is_required_on_the_guarded_listener(&mut self) {
        let id = self.status().await.workers[0].worker_id;
        for (template, method) in self.contract.operations() {
            let path = Self::concrete(&template, id);
            for auth in [Auth::None, Auth::Bearer("not-the-token"), Auth::Basic("not-the-token")] {
                let (status, _) = self.ask(self.guarded, &method, &path, auth, None).await;
                assert_eq!(status, 401, "{method} {path} with {auth:?}");
            }
            if method != "POST" {
                for auth in [Auth::Bearer(TOKEN), Auth::Basic(TOKEN)] {
                    let (status, _) = self.ask(self.guarded, &method, &path, auth, None).await;
                    assert_eq!(status, 200, "{method} {path} with {auth:?}");
                }
            }
        }
    }

    /// Without a token the front port answers 404 to every admin route (`/metrics` there is
    /// the application's).
    async fn the_front_port_without_a_token_hides_every_route(&mut self) {
        let id = self.status().await.workers[0].worker_id;
        for (template, method) in self.contract.operations() {
            if template != routes::METRICS {
                let path = Self::concrete(&template, id);
                let (status, _) = self.ask(self.front, &method, &path, Auth::None, None).await;
                assert_eq!(status, 404, "{method} {path} on the front port");
            }
        }
    }

    /// Every method a path does not take gets 405, and `Allow` names exactly the documented
    /// ones. Paths that are not routes get 404.
    async fn other_methods_get_405_with_allow(&mut self) {
        let id = self.status().await.workers[0].worker_id;
        let templates: Vec<String> =
            self.contract.doc["paths"].as_object().unwrap().keys().cloned().collect();
        for template in templates {
            let documented = self.contract.methods_of(&template);
            let path = Self::concrete(&template, id);
            for method in METHODS.iter().filter(|m| !documented.contains(**m)) {
                let answer = request(self.open, method, &path, Auth::None, None, &[]).await;
                self.contract.check(method, &path, &answer);
                let allow = answer.headers["allow"].to_str().unwrap();
                let allowed: BTreeSet<String> = allow.split(", ").map(str::to_owned).collect();
                assert_eq!(allowed, documented, "{method} {path}: the code takes {allow}");
            }
        }
        // The dashboard page (`/admin/cluster`) is HTML for people, not part of the API: its
        // own tests are in cluster-cli/tests/integration/dashboard.rs.
        for path in [routes::PREFIX, "/admin/cluster/nope", "/api/admin/cluster/nope"] {
            let answer = request(self.open, "GET", path, Auth::None, None, &[]).await;
            assert_eq!(answer.status, 404, "{path} is served: document it");
        }
    }

    /// 403 on every operation for what a browser could be made to send by another site: on
    /// both listeners a `Sec-Fetch-Site` from another site or an `Origin` that is not the
    /// `Host`; on the listener without a token, also a `Host` that is not a loopback name (DNS
    /// rebinding). The token is checked first. Same-origin requests, and with the token any
    /// `Host`, pass.
    async fn requests_from_other_sites_get_403(&mut self) {
        let id = self.status().await.workers[0].worker_id;
        let (open, guarded) = (self.open, self.guarded);
        let other_sites = |at: SocketAddr| -> Vec<Vec<(&'static str, String)>> {
            vec![
                vec![("sec-fetch-site", "cross-site".into())],
                vec![("sec-fetch-site", "same-site".into())],
                vec![("origin", "https://evil.example".into())],
                vec![("origin", "null".into())],
                // Another port of the same host is another origin.
                vec![("origin", format!("http://{}:1", at.ip()))],
                vec![
                    ("sec-fetch-site", "same-origin".into()),
                    ("origin", "https://evil.example".into()),
                ],
            ]
        };
        let rebinding: Vec<Vec<(&str, String)>> = vec![
            vec![("host", format!("evil.example:{}", open.port()))],
            vec![("host", "localhost.evil.example".into())],
            vec![("host", "10.0.0.1".into())],
            // The name the page was loaded from, with a matching Origin.
            vec![
                ("host", "evil.example".into()),
                ("origin", "http://evil.example".into()),
                ("sec-fetch-site", "same-origin".into()),
            ],
        ];
        let same_origin = |at: SocketAddr, host: String| -> Vec<Vec<(&'static str, String)>> {
            vec![
                vec![("host", host.clone())],
                vec![
                    ("host", host.clone()),
                    ("sec-fetch-site", "same-origin".into()),
                    ("origin", format!("http://{host}")),
                ],
                vec![("host", host), ("sec-fetch-site", "none".into())],
                vec![("origin", format!("http://{at}"))],
            ]
        };
        for (template, method) in self.contract.operations() {
            let path = Self::concrete(&template, id);
            for headers in other_sites(open).iter().chain(&rebinding) {
                let (status, _) =
                    self.ask_with(open, &method, &path, Auth::None, None, headers).await;
                assert_eq!(status, 403, "{method} {path} with {headers:?}");
            }
            for headers in &other_sites(guarded) {
                let (status, _) =
                    self.ask_with(guarded, &method, &path, Auth::None, None, headers).await;
                assert_eq!(status, 401, "{method} {path} with {headers:?}: the token first");
                let token = Auth::Bearer(TOKEN);
                let (status, _) =
                    self.ask_with(guarded, &method, &path, token, None, headers).await;
                assert_eq!(status, 403, "{method} {path} with {headers:?} and the token");
            }
            if method == "POST" {
                continue;
            }
            let loopback = [
                format!("localhost:{}", open.port()),
                format!("[::1]:{}", open.port()),
                "127.0.0.1".to_owned(),
            ];
            for host in loopback {
                for headers in &same_origin(open, host) {
                    let (status, _) =
                        self.ask_with(open, &method, &path, Auth::None, None, headers).await;
                    assert_eq!(status, 200, "{method} {path} with {headers:?}");
                }
            }
            // With the token, the Host is free.
            for headers in &same_origin(guarded, "cluster.internal:9090".into()) {
                let token = Auth::Bearer(TOKEN);
                let (status, _) =
                    self.ask_with(guarded, &method, &path, token, None, headers).await;
                assert_eq!(status, 200, "{method} {path} with {headers:?} and the token");
            }
        }
        // No Host at all is no loopback name.
        let (status, _) =
            self.ask_exactly(open, "GET", routes::STATUS, HeaderMap::new(), None).await;
        assert_eq!(status, 403, "no Host");
        // A same-origin POST passes these checks and is judged by its body.
        for headers in &same_origin(open, open.to_string()) {
            let (status, _) =
                self.ask_with(open, "POST", routes::SCALE, Auth::None, Some("{}"), headers).await;
            assert_eq!(status, 400, "POST {} with {headers:?}", routes::SCALE);
        }
    }

    /// 415 on every POST that does not say `Content-Type: application/json`, with a body the
    /// operation would act on or none, before anything is done; the type's case and
    /// parameters do not matter. The token is checked first, the origin after.
    async fn posts_must_say_json(&mut self) {
        let before = self.status().await;
        let id = before.workers[0].worker_id;
        let (open, guarded) = (self.open, self.guarded);
        let not_json = [
            None,
            Some(""),
            Some("text/plain"),
            Some("text/plain; charset=utf-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonp"),
            Some("application/json-patch+json"),
            Some("json"),
        ];
        let with_type = |at: SocketAddr, auth: Auth<'_>, content_type: Option<&str>| {
            // The usual headers of a GET: those of a POST without its `Content-Type`.
            let mut headers = usual_headers(at, "GET", auth);
            if let Some(value) = content_type {
                headers.insert(CONTENT_TYPE, HeaderValue::from_str(value).unwrap());
            }
            headers
        };
        for (template, method) in self.contract.operations() {
            if method != "POST" {
                continue;
            }
            let path = Self::concrete(&template, id);
            let acted_on = match template.as_str() {
                routes::SCALE => r#"{"by": 1}"#,
                routes::RESTART => r#"{"mode": "all"}"#,
                routes::SHUTDOWN => r#"{"mode": "immediate"}"#,
                _ => "{}",
            };
            for content_type in not_json {
                for body in [None, Some(acted_on)] {
                    let headers = with_type(open, Auth::None, content_type);
                    let (status, _) = self.ask_exactly(open, "POST", &path, headers, body).await;
                    assert_eq!(status, 415, "POST {path} {body:?} as {content_type:?}");
                }
            }
            let headers = with_type(guarded, Auth::None, None);
            let (status, _) = self.ask_exactly(guarded, "POST", &path, headers, None).await;
            assert_eq!(status, 401, "POST {path} without the token: the token first");
            let headers = with_type(guarded, Auth::Bearer(TOKEN), None);
            let (status, _) = self.ask_exactly(guarded, "POST", &path, headers, None).await;
            assert_eq!(status, 415, "POST {path} with the token");
            // Before the origin.
            let mut headers = with_type(open, Auth::None, Some("text/plain"));
            headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
            let (status, _) = self.ask_exactly(open, "POST", &path, headers, None).await;
            assert_eq!(status, 415, "POST {path} cross-site as text/plain");
        }
        let after = self.status().await;
        assert_eq!(after.desired_workers, before.desired_workers, "not scaled");
        assert!(after.operation.is_none() && !after.shutting_down, "{after:#?}");
        let ids = |s: &ClusterStatus| s.workers.iter().map(|w| w.worker_id).collect::<Vec<_>>();
        assert_eq!(ids(&after), ids(&before), "no worker replaced");
        // The media type is what counts.
        for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
            let headers = with_type(open, Auth::None, Some(content_type));
            let (status, _) =
                self.ask_exactly(open, "POST", routes::SCALE, headers, Some("{}")).await;
            assert_eq!(status, 400, "POST {} as {content_type}", routes::SCALE);
        }
    }

    async fn scale(&mut self) {
        // Outside scaling.minWorkers..=scaling.maxWorkers (1..=4), which the schema leaves to
        // the description.
        for body in [r#"{"workers": 0}"#, r#"{"workers": 5}"#, r#"{"by": -2}"#, r#"{"by": 3}"#] {
            assert_eq!(self.post(routes::SCALE, Some(body)).await.0, 400, "{body}");
        }
        let malformed = [
            r#"{"workers": -1}"#,
            r#"{"workers": "3"}"#,
            r#"{"workers": 2.5}"#,
            r#"{"by": "1"}"#,
            r#"{"by": 0.5}"#,
            r#"{"workers": 3, "by": 1}"#,
            "{}",
            "[3]",
            "null",
            "",
            "workers=3",
        ];
        for body in malformed {
            self.malformed(routes::SCALE, body).await;
        }
        self.too_large(routes::SCALE).await;
        assert_eq!(self.status().await.desired_workers, 2, "nothing changed");

        // A new worker starts: health is degraded (min_healthy_percent = 100) and the new
        // worker, not serving yet, cannot be restarted.
        let (mut degraded, mut not_serving) = (false, false);
        for _ in 0..5 {
            let (status, scaled) = self.post(routes::SCALE, Some(r#"{"by": 1}"#)).await;
            assert_eq!((status, scaled), (200, Some(json!({ "from": 2, "to": 3 }))));
            let (status, health) = self.get(routes::HEALTH).await;
            degraded |= status == 503 && health.is_some_and(|h| h["status"] == "degraded");
            // Found through the API, so that a starting worker's status is checked too.
            let (_, status) = self.get(routes::STATUS).await;
            let workers = status.expect("a status")["workers"].as_array().unwrap().clone();
            let starting = workers.iter().find(|w| w["status"] == "starting");
            if let Some(id) = starting.and_then(|w| w["workerId"].as_u64()) {
                let path = format!("/api/admin/cluster/workers/{id}/restart");
                not_serving |= self.post(&path, None).await.0 == 409;
            }
            self.settled(3).await;
            let (status, scaled) = self.post(routes::SCALE, Some(r#"{"workers": 2}"#)).await;
            assert_eq!((status, scaled), (200, Some(json!({ "from": 3, "to": 2 }))));
            self.settled(2).await;
            if degraded && not_serving {
                break;
            }
        }
        assert!(degraded && not_serving, "a starting worker was never caught");
    }

    async fn restart_one_worker(&mut self) {
        let id = self.settled(2).await.workers[0].worker_id;
        let path = format!("/api/admin/cluster/workers/{id}/restart");
        let (status, accepted) = self.post(&path, None).await;
        assert_eq!((status, accepted), (202, Some(json!({ "workerId": id, "accepted": true }))));
        self.wait_until("the worker replaced", |s| s.workers.iter().all(|w| w.worker_id != id))
            .await;
        let other = self.settled(2).await.workers[0].worker_id;

        assert_eq!(self.post("/api/admin/cluster/workers/999999/restart", None).await.0, 404);
        assert_eq!(self.post("/api/admin/cluster/workers/abc/restart", None).await.0, 404);
        let path = format!("/api/admin/cluster/workers/{other}/restart");
        assert_eq!(self.post(&path, Some("not json")).await.0, 400);
        self.too_large(&path).await;
        assert!(self.status().await.workers.iter().any(|w| w.worker_id == other), "not replaced");
    }

    async fn restart(&mut self) {
        for body in [r#"{"mode": "sideways"}"#, r#"{"mode": 1}"#, r#"{"mode": null}"#, "not json"] {
            self.malformed(routes::RESTART, body).await;
        }
        self.too_large(routes::RESTART).await;

        for (body, kind) in [
            (Some(r#"{"mode": "rolling"}"#), "rolling-restart"),
            (Some(r#"{"mode": "all"}"#), "restart"),
            (None, "rolling-restart"),
        ] {
            let (status, started) = self.post(routes::RESTART, body).await;
            assert_eq!(status, 202, "{body:?}");
            let started = started.unwrap();
            assert_eq!(
                (started["kind"].as_str(), started["workers"].as_u64()),
                (Some(kind), Some(2))
            );
            // Operations never interleave.
            for busy in [Some(r#"{"mode": "all"}"#), None] {
                assert_eq!(self.post(routes::RESTART, busy).await.0, 409, "{busy:?}");
            }
            assert_eq!(self.post(routes::UPGRADE, None).await.0, 409, "an upgrade while busy");
            self.settled(2).await;
            // The events after `lastEventId` hold the whole operation (the events hub may
            // take a moment to receive the last one).
            let since = [("last-event-id", started["lastEventId"].to_string())];
            let deadline = Instant::now() + WAIT;
            loop {
                let events =
                    request(self.open, "GET", routes::EVENTS, Auth::None, None, &since).await;
                self.contract.check("GET", routes::EVENTS, &events);
                let names = self.events(&events.text(), true);
                assert!(names.iter().any(|n| n == "operationStarted"), "{names:?}");
                if names.iter().any(|n| n == "operationFinished") {
                    break;
                }
                assert!(Instant::now() < deadline, "no operationFinished: {names:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// A hot upgrade refused (a malformed body, `binary` anywhere but the control socket) or
    /// failed (the new primary exits 1): the cluster serves on, unchanged.
    async fn upgrade_refused_or_failed(&mut self) {
        let before = self.settled(2).await;
        for body in
            [r#"{"binary": 1}"#, r#"{"timeoutMs": 0}"#, r#"{"binry": "x"}"#, "[1]", "not json"]
        {
            self.malformed(routes::UPGRADE, body).await;
        }
        self.too_large(routes::UPGRADE).await;
        let (status, _) = self.post(routes::UPGRADE, Some(r#"{"binary": "/bin/true"}"#)).await;
        assert_eq!(status, 403, "`binary` on a TCP listener");
        let (status, failed) = self.post(routes::UPGRADE, Some(r#"{"timeoutMs": 30000}"#)).await;
        assert_eq!(status, 500);
        let reason = failed.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(reason.contains("exit status: 1"), "{reason}");
        let after = self.settled(2).await;
        let ids = |s: &ClusterStatus| s.workers.iter().map(|w| w.worker_id).collect::<Vec<_>>();
        assert_eq!(ids(&after), ids(&before), "the same workers serve");
    }

    async fn shutdown_and_after(&mut self) {
        let id = self.settled(2).await.workers[0].worker_id;
        // A hot upgrade that succeeds: the cluster hands over and shuts down. An idle client
        // connection keeps it draining for a while (the handover waits a few seconds for idle
        // keep-alive clients), long enough for the requests below.
        let idle = tokio::net::TcpStream::connect(self.front).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(&self.good_build, b"").unwrap();
        let (status, upgraded) = self.post(routes::UPGRADE, None).await;
        let _ = std::fs::remove_file(&self.good_build);
        assert_eq!(status, 200);
        let upgraded = upgraded.unwrap();
        assert_eq!(upgraded["oldPid"].as_u64(), Some(u64::from(std::process::id())));
        let new_pid = upgraded["newPid"].as_u64().unwrap() as i32;
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(new_pid).unwrap(),
            rustix::process::Signal::KILL,
        );
        let worker_restart = format!("/api/admin/cluster/workers/{id}/restart");
        for body in [r#"{"mode": "later"}"#, r#"{"mode": true}"#, "not json"] {
            self.malformed(routes::SHUTDOWN, body).await;
        }
        self.too_large(routes::SHUTDOWN).await;

        let (status, accepted) = self.post(routes::SHUTDOWN, Some(r#"{"mode": "graceful"}"#)).await;
        assert_eq!((status, accepted), (202, Some(json!({ "shutdown": "graceful" }))));
        // Handed over: healthy as far as a probe can tell (the new primary serves), while it
        // drains. Shutting down (or already stopped): nothing more is accepted.
        let (status, health) = self.get(routes::HEALTH).await;
        if status == 200 {
            let health = health.unwrap();
            assert!(health["reason"].as_str().unwrap().contains("handed over"), "{health}");
        } else {
            assert_eq!(status, 503, "stopped already");
        }
        assert_eq!(self.post(routes::SCALE, Some(r#"{"by": 1}"#)).await.0, 503);
        assert_eq!(self.post(routes::RESTART, None).await.0, 503);
        assert_eq!(self.post(&worker_restart, None).await.0, 503);
        drop(idle);
        let run = self.run.take().unwrap();
        tokio::time::timeout(WAIT, run).await.expect("stopped in time").expect("cluster run");

        // The API outlives the cluster.
        for (template, method) in self.contract.operations() {
            let path = Self::concrete(&template, id);
            let (status, _) = self.ask(self.open, &method, &path, Auth::None, None).await;
            let expected = match template.as_str() {
                routes::EVENTS | routes::OPENAPI => 200,
                _ => 503,
            };
            assert_eq!(status, expected, "{method} {path} once the cluster has stopped");
        }
        // The stream ends at once, with no snapshot (and at most the last event).
        let events = request(self.open, "GET", routes::EVENTS, Auth::None, None, &[]).await;
        let names = self.events(&events.text(), false);
        assert!(names.iter().all(|n| n == "stopped"), "{names:?}");
    }

    /// A body one byte over the limit gets 413.
    async fn too_large(&mut self, path: &str) {
        let body = format!(r#"{{"pad": "{}"}}"#, "x".repeat(MAX_BODY - 10));
        assert_eq!(body.len(), MAX_BODY + 1);
        assert_eq!(self.post(path, Some(&body)).await.0, 413, "{path}");
    }
}

/// No process carries the test's marker any longer, and no worker seen is a live child of
/// ours (a zombie included).
async fn every_process_is_gone(marker: &str, pids: &BTreeSet<u32>) {
    assert!(!pids.is_empty(), "no worker was seen");
    let deadline = Instant::now() + WAIT;
    loop {
        let left = marked_processes(marker);
        let children: Vec<u32> =
            pids.iter().copied().filter(|&p| parent_of(p) == Some(std::process::id())).collect();
        if left.is_empty() && children.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "still running: {left:?}, children {children:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The processes whose environment holds `marker`, with their command lines.
fn marked_processes(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|var| var == marker.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// The parent of `pid`, if it exists.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}
