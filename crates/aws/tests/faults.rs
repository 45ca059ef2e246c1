//! Fault injection: the real S3 and DynamoDB adapters, over a moto server, through an HTTP client
//! that injects faults between the SDK and the wire: 5xx, throttling, hung attempts, dropped
//! connections, and BatchWriteItem calls that process only part of a batch. Everything above the
//! transport (the SDK's retry stack, our UnprocessedItems loop, the pipeline steps) is the code
//! that runs in Lambda.
//!
//! Skipped (with a message) unless MARQUEE_MOTO_ENDPOINT is set; `scripts/test` sets it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use marquee_aws::dynamo::Backoff;
use marquee_aws::{config, DynamoScoreStore, S3ObjectStore};
use marquee_demo::{self as demo, DemoConfig, DEMO_SPEC};
use marquee_pipeline::flow;
use marquee_pipeline::keys;
use marquee_pipeline::steps::{RunRequest, Stores};
use marquee_pipeline::store::{Item, ObjectStore, ScoreStore, StoreError};
use serde_json::{json, Value};

mod common;
use common::endpoint;

// ------------------------------------------------------------------ the fault-injecting client

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Pass,
    /// 500 InternalError / InternalServerError.
    ServerError,
    /// S3: 503 SlowDown; DynamoDB: 400 ThrottlingException.
    Throttle,
    /// The attempt never answers (until the attempt timeout gives up on it).
    Hang,
    /// The connection drops before a response.
    ConnectionReset,
    /// BatchWriteItem: the first half of the batch is written, the rest comes back unprocessed.
    HalfBatch,
    /// BatchWriteItem: nothing is written, everything comes back unprocessed.
    NoneProcessed,
}

/// Which fault the n-th call (0-based) of an operation gets. Operations are named like
/// `S3 PUT`, `S3 GET`, `S3 LIST`, `DynamoDB BatchWriteItem`.
type Plan = dyn Fn(&str, usize) -> Fault + Send + Sync;

#[derive(Clone)]
struct FaultyClient {
    inner: SharedHttpClient,
    plan: Arc<Plan>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
}

impl fmt::Debug for FaultyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyClient").finish_non_exhaustive()
    }
}

impl FaultyClient {
    fn new(plan: impl Fn(&str, usize) -> Fault + Send + Sync + 'static) -> Self {
        // Plain HTTP: moto listens on a loopback port.
        let inner = aws_smithy_http_client::Builder::new().build_http();
        Self { inner, plan: Arc::new(plan), calls: Arc::default() }
    }

    /// Calls seen so far of one operation (retries included).
    fn calls(&self, operation: &str) -> usize {
        self.calls.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    fn total_faults(&self) -> usize {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(op, n)| (0..*n).filter(|i| (self.plan)(op, *i) != Fault::Pass).count()).sum()
    }
}

impl HttpClient for FaultyClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            client: self.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    client: FaultyClient,
}

fn operation(req: &HttpRequest) -> String {
    if let Some(target) = req.headers().get("x-amz-target") {
        return format!("DynamoDB {}", target.rsplit('.').next().unwrap_or(target));
    }
    if req.method() == "GET" && req.uri().contains("list-type=2") {
        return "S3 LIST".into();
    }
    format!("S3 {}", req.method())
}

fn response(status: u16, content_type: &str, body: String, error_type: Option<&str>) -> HttpResponse {
    let mut resp = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body));
    resp.headers_mut().insert("content-type", content_type.to_string());
    if let Some(t) = error_type {
        resp.headers_mut().insert("x-amzn-errortype", t.to_string());
    }
    resp
}

fn injected_error(op: &str, fault: Fault) -> HttpResponse {
    let dynamo = op.starts_with("DynamoDB");
    let (status, code) = match (fault, dynamo) {
        (Fault::Throttle, true) => (400, "ThrottlingException"),
        (Fault::Throttle, false) => (503, "SlowDown"),
        (_, true) => (500, "InternalServerError"),
        (_, false) => (500, "InternalError"),
    };
    if dynamo {
        let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"), "message": "injected fault"});
        response(status, "application/x-amz-json-1.0", body.to_string(), Some(code))
    } else {
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected fault</Message><RequestId>fault</RequestId></Error>");
        response(status, "application/xml", body, None)
    }
}

/// Splits a BatchWriteItem request: (request for the items to write, the items to hand back).
fn split_batch(mut req: HttpRequest, keep_half: bool) -> (Option<HttpRequest>, Value) {
    let body: Value = serde_json::from_slice(req.body().bytes().expect("in-memory body")).expect("json body");
    let (table, writes) = body["RequestItems"].as_object().and_then(|m| m.iter().next()).expect("one table");
    let writes = writes.as_array().expect("write requests").clone();
    let keep = if keep_half { writes.len().div_ceil(2) } else { 0 };
    let unprocessed = json!({ table.clone(): writes[keep..].to_vec() });
    if keep == 0 {
        return (None, unprocessed);
    }
    let sent = json!({ "RequestItems": { table.clone(): writes[..keep].to_vec() } }).to_string();
    req.headers_mut().insert("content-length", sent.len().to_string());
    *req.body_mut() = SdkBody::from(sent);
    (Some(req), unprocessed)
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let op = operation(&request);
        let n = {
            let mut calls = self.client.calls.lock().unwrap();
            let n = calls.entry(op.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let fault = (self.client.plan)(&op, n);
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            match fault {
                Fault::Pass => inner.call(request).await,
                Fault::ServerError | Fault::Throttle => Ok(injected_error(&op, fault)),
                Fault::Hang => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    inner.call(request).await
                }
                Fault::ConnectionReset => Err(ConnectorError::io("connection reset by peer (injected fault)".into())),
                Fault::HalfBatch | Fault::NoneProcessed => {
                    assert_eq!(op, "DynamoDB BatchWriteItem", "batch faults only apply to BatchWriteItem");
                    let (sent, unprocessed) = split_batch(request, fault == Fault::HalfBatch);
                    if let Some(req) = sent {
                        let resp = inner.call(req).await?;
                        assert_eq!(resp.status().as_u16(), 200, "moto refused the partial batch");
                    }
                    let body = json!({ "UnprocessedItems": unprocessed }).to_string();
                    Ok(response(200, "application/x-amz-json-1.0", body, None))
                }
            }
        })
    }
}

// ------------------------------------------------------------------ stores over the faulty client

struct Flaky {
    client: FaultyClient,
    sdk: aws_config::SdkConfig,
}

/// A clean SDK config for set-up, and one through the faulty client with `attempts` tries and a
/// short attempt timeout (so a hung call is given up on quickly).
async fn flaky(ep: &str, attempts: u32, plan: impl Fn(&str, usize) -> Fault + Send + Sync + 'static) -> Flaky {
    let client = FaultyClient::new(plan);
    let sdk = config::load(Some(ep))
        .await
        .into_builder()
        .http_client(client.clone())
        .retry_config(
            RetryConfig::standard().with_max_attempts(attempts).with_initial_backoff(Duration::from_millis(20)),
        )
        .timeout_config(TimeoutConfig::builder().operation_attempt_timeout(Duration::from_millis(1500)).build())
        .build();
    Flaky { client, sdk }
}

async fn new_bucket(ep: &str) -> String {
    common::create_bucket(&config::s3_client(&config::load(Some(ep)).await)).await
}

async fn new_table(ep: &str) -> String {
    common::create_table(&config::dynamodb_client(&config::load(Some(ep)).await)).await
}

fn items(n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| Item::new(format!("CUSTOMER#c{i:04}"), "CHURN", json!({"probability": i as f64 / n as f64})))
        .collect()
}

async fn all_churn_items(ep: &str, table: &str) -> Vec<Item> {
    let clean = DynamoScoreStore::new(config::dynamodb_client(&config::load(Some(ep)).await), table);
    clean.scan_sk("CUSTOMER#", "CHURN").await.expect("scan")
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn s3_5xx_throttling_and_dropped_connections_are_retried() {
    let Some(ep) = endpoint() else { return };
    let f = flaky(&ep, 5, |op, n| match (op, n) {
        ("S3 PUT", 0) => Fault::ServerError,
        ("S3 PUT", 1) => Fault::Throttle,
        ("S3 GET", 0) => Fault::ConnectionReset,
        ("S3 GET", 1) => Fault::ServerError,
        ("S3 LIST", 0) => Fault::Throttle,
        _ => Fault::Pass,
    })
    .await;
    let store = S3ObjectStore::new(config::s3_client(&f.sdk), new_bucket(&ep).await);
    let body = b"customer_id,plan\nc1,premium\n".to_vec();
    store.put("raw/demo/customers.csv", body.clone()).await.expect("put survives two faults");
    assert_eq!(store.get("raw/demo/customers.csv").await.expect("get survives two faults"), body);
    assert_eq!(store.list("raw/").await.expect("list survives throttling"), vec!["raw/demo/customers.csv"]);
    assert_eq!((f.client.calls("S3 PUT"), f.client.calls("S3 GET"), f.client.calls("S3 LIST")), (3, 3, 2));
}

#[tokio::test]
async fn a_persistent_s3_fault_fails_clearly_after_the_bounded_attempts() {
    let Some(ep) = endpoint() else { return };
    let f = flaky(&ep, 3, |op, _| if op == "S3 PUT" { Fault::ServerError } else { Fault::Pass }).await;
    let store = S3ObjectStore::new(config::s3_client(&f.sdk), new_bucket(&ep).await);
    let t = Instant::now();
    let err = store.put("runs/r1/models/churn/model.json", b"{}".to_vec()).await.expect_err("always 500");
    match &err {
        StoreError::Backend { key, message, .. } => {
            assert!(key.contains("runs/r1/models/churn/model.json"), "{err}");
            assert!(message.contains("InternalError"), "the service's error code is in the message: {err}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert_eq!(f.client.calls("S3 PUT"), 3, "exactly max_attempts calls, then it gives up");
    assert!(t.elapsed() < Duration::from_secs(10), "the retry budget is bounded: {:?}", t.elapsed());
}

#[tokio::test]
async fn a_hung_attempt_is_cut_off_and_retried() {
    let Some(ep) = endpoint() else { return };
    let f = flaky(&ep, 3, |op, n| if op == "S3 GET" && n == 0 { Fault::Hang } else { Fault::Pass }).await;
    let store = S3ObjectStore::new(config::s3_client(&f.sdk), new_bucket(&ep).await);
    store.put("models/churn/champion.json", b"{\"version\":\"r1\"}".to_vec()).await.unwrap();
    let t = Instant::now();
    assert_eq!(store.get("models/churn/champion.json").await.expect("second attempt answers"), b"{\"version\":\"r1\"}");
    assert!(t.elapsed() < Duration::from_secs(10), "the hung attempt was abandoned: {:?}", t.elapsed());
    assert_eq!(f.client.calls("S3 GET"), 2);
}

#[tokio::test]
async fn dynamodb_throttling_and_5xx_are_retried() {
    let Some(ep) = endpoint() else { return };
    let f = flaky(&ep, 5, |op, n| match (op, n) {
        ("DynamoDB BatchWriteItem", 0) => Fault::Throttle,
        ("DynamoDB BatchWriteItem", 1) => Fault::ServerError,
        ("DynamoDB PutItem", 0) => Fault::Throttle,
        ("DynamoDB GetItem", 0) => Fault::ConnectionReset,
        _ => Fault::Pass,
    })
    .await;
    let table = new_table(&ep).await;
    let db = DynamoScoreStore::new(config::dynamodb_client(&f.sdk), &table);
    db.put_items(items(60)).await.expect("batches survive throttling");
    assert_eq!(all_churn_items(&ep, &table).await, items(60));
    let champion = Item::new("MODEL#churn", "CHAMPION", json!({"version": "r1"}));
    db.put_conditional(champion.clone(), marquee_pipeline::store::Condition::NotExists).await.expect("conditional put");
    assert_eq!(db.get_item("MODEL#churn", "CHAMPION").await.expect("get survives a reset"), Some(champion));
    // 60 items = 3 batches, +2 retried batch calls.
    assert_eq!(f.client.calls("DynamoDB BatchWriteItem"), 5);
    assert_eq!((f.client.calls("DynamoDB PutItem"), f.client.calls("DynamoDB GetItem")), (2, 2));
}

#[tokio::test]
async fn partially_processed_batches_are_resent_until_every_item_lands() {
    let Some(ep) = endpoint() else { return };
    let f = flaky(&ep, 3, |op, _| if op == "DynamoDB BatchWriteItem" { Fault::HalfBatch } else { Fault::Pass }).await;
    let table = new_table(&ep).await;
    let db = DynamoScoreStore::new(config::dynamodb_client(&f.sdk), &table).with_backoff(Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(50),
        max_attempts: 10,
    });
    db.put_items(items(100)).await.expect("every item lands eventually");
    assert_eq!(all_churn_items(&ep, &table).await, items(100), "no item lost, none duplicated");
    // Each batch of 25 takes 25 -> 12 -> 6 -> 3 -> 1 -> 0 left: 5 calls.
    assert_eq!(f.client.calls("DynamoDB BatchWriteItem"), 4 * 5);
}

#[tokio::test]
async fn items_that_never_get_processed_fail_clearly_after_the_bounded_attempts() {
    let Some(ep) = endpoint() else { return };
    let f =
        flaky(&ep, 3, |op, _| if op == "DynamoDB BatchWriteItem" { Fault::NoneProcessed } else { Fault::Pass }).await;
    let table = new_table(&ep).await;
    let db = DynamoScoreStore::new(config::dynamodb_client(&f.sdk), &table).with_backoff(Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
        max_attempts: 4,
    });
    let err = db.put_items(items(10)).await.expect_err("never processed");
    let text = err.to_string();
    assert!(text.contains("still unprocessed after 4 attempts"), "{text}");
    assert!(text.contains("CUSTOMER#c0000"), "names an item that was not written: {text}");
    assert_eq!(f.client.calls("DynamoDB BatchWriteItem"), 4);
}

/// The whole flow on S3 + DynamoDB with faults on about one call in five of every operation:
/// every step completes, and the score table equals that of a run without faults.
#[tokio::test]
async fn the_pipeline_survives_a_flaky_network_with_the_same_scores() {
    let Some(ep) = endpoint() else { return };
    let rotate = [Fault::ServerError, Fault::Throttle, Fault::ConnectionReset];
    let f = flaky(&ep, 6, move |op, n| match (op, n % 5) {
        ("DynamoDB BatchWriteItem", 2) => Fault::HalfBatch,
        (_, 1) => rotate[(n / 5) % 3],
        _ => Fault::Pass,
    })
    .await;
    let clean = flaky(&ep, 6, |_, _| Fault::Pass).await;

    let mut tables = Vec::new();
    for sdk in [&clean.sdk, &f.sdk] {
        let objects = S3ObjectStore::new(config::s3_client(sdk), new_bucket(&ep).await);
        let table = new_table(&ep).await;
        let scores = DynamoScoreStore::new(config::dynamodb_client(sdk), &table);
        for (name, bytes) in demo::generate(&DemoConfig { customers: 600, seed: 11 }) {
            objects.put(&keys::raw("demo", &name), bytes).await.expect("upload");
        }
        let spec_key = keys::raw("demo", "pipeline.toml");
        objects.put(&spec_key, DEMO_SPEC.as_bytes().to_vec()).await.expect("upload spec");
        let req = RunRequest { run_id: "r1".into(), spec_key, trigger: Some("test".into()), retrain: false };
        let summary =
            flow::run(Stores { objects: &objects, scores: &scores }, &req, &|_| {}).await.expect("run completes");
        assert!(summary.results.iter().any(|r| r.deployed_version.is_some()), "{summary:?}");
        tables.push(table);
    }
    let read = |table: String| {
        let ep = ep.clone();
        async move {
            let db = DynamoScoreStore::new(config::dynamodb_client(&config::load(Some(&ep)).await), table);
            let mut all = Vec::new();
            for (prefix, sk) in
                [("CUSTOMER#", "SEGMENT"), ("CUSTOMER#", "CHURN"), ("CUSTOMER#", "RECS"), ("TITLE#", "SIMILAR")]
            {
                all.extend(db.scan_sk(prefix, sk).await.expect("scan"));
            }
            all.extend(db.query("MODEL#churn").await.expect("query"));
            all.into_iter()
                .map(|mut i| {
                    // When the record was written and the bucket differ between the runs, nothing else.
                    i.attrs.remove("recorded_at");
                    i.attrs.remove("artifact_uri");
                    i
                })
                .collect::<Vec<_>>()
        }
    };
    let (without, with) = (read(tables[0].clone()).await, read(tables[1].clone()).await);
    assert!(without.len() > 1000, "scores were written: {}", without.len());
    assert_eq!(with.len(), without.len());
    assert!(with == without, "a run through faults wrote different scores");
    let faults = f.client.total_faults();
    assert!(faults >= 20, "faults were injected: {faults}");
    eprintln!("flaky run: {faults} injected faults survived");
}
