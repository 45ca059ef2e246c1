//! The deployed pipeline, locally: the SAM template deployed into LocalStack (S3, Step Functions,
//! EventBridge) + moto (DynamoDB), the state machine calling the real Lambda binaries through the
//! Lambda Runtime Interface Emulator (tests/local-aws). Runs inside the stack:
//!
//! ```text
//! tests/local-aws/stack run --parameter-overrides RetrainSchedule="rate(1 minute)" RetrainScheduleState=DISABLED \
//!     -- cargo test -p marquee-e2e --test localstack -- --ignored --test-threads 1
//! ```
//!
//! The tests are `#[ignore]`d: a plain `cargo test` runs none of them; `scripts/localstack-checks`
//! runs them with `--ignored` inside the stack (outside it they fail). The scenarios share one stack
//! and its champions, so they run one at a time (a lock) and each starts from the demo upload of
//! the first one.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use marquee_aws::dynamo::DynamoScoreStore;
use marquee_aws::s3::S3ObjectStore;
use marquee_aws::sfn::{ExecutionOutcome, Executions};
use marquee_demo::{self as demo, DemoConfig, DEMO_SPEC};
use marquee_e2e::{edited_spec, Workspace};
use marquee_pipeline::keys::{self, score};
use marquee_pipeline::promote::SegmentPromotion;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{self, Champion, RunSummary, ScorePlan, Stores, Verdict};
use marquee_pipeline::store::{Item, ObjectStore, ScoreStore};
use serde_json::{json, Value};

const CUSTOMERS: usize = 1000;
const SEED: u64 = 7;
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// Names and endpoints exported by `tests/local-aws/stack`.
#[derive(Clone)]
struct StackEnv {
    localstack: String,
    lambda: String,
    dynamodb: String,
    bucket: String,
    table: String,
    state_machine: String,
    schedule_rule: String,
}

impl StackEnv {
    fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let localstack = var("MARQUEE_LOCALSTACK_ENDPOINT")?;
        let need = |name: &str| var(name).unwrap_or_else(|| panic!("the local stack exports {name}"));
        Some(Self {
            localstack,
            lambda: need("MARQUEE_LAMBDA_ENDPOINT"),
            dynamodb: need("MARQUEE_DYNAMODB_ENDPOINT"),
            bucket: need("MARQUEE_BUCKET"),
            table: need("MARQUEE_TABLE"),
            state_machine: need("MARQUEE_STATE_MACHINE_ARN"),
            schedule_rule: need("MARQUEE_RULE_RETRAIN"),
        })
    }
}

/// Clients for one test's runtime.
struct Stack {
    env: StackEnv,
    objects: S3ObjectStore,
    scores: DynamoScoreStore,
    sfn: aws_sdk_sfn::Client,
    events: aws_sdk_eventbridge::Client,
}

impl Stack {
    async fn connect(env: StackEnv) -> Self {
        let ls = marquee_aws::config::load(Some(&env.localstack)).await;
        let ddb = marquee_aws::config::load(Some(&env.dynamodb)).await;
        Self {
            objects: S3ObjectStore::new(marquee_aws::config::s3_client(&ls), &env.bucket),
            scores: DynamoScoreStore::new(marquee_aws::config::dynamodb_client(&ddb), &env.table),
            sfn: marquee_aws::config::sfn_client(&ls),
            events: aws_sdk_eventbridge::Client::new(&ls),
            env,
        }
    }

    async fn execution_arns(&self) -> BTreeSet<String> {
        let mut arns = BTreeSet::new();
        let mut pages = self.sfn.list_executions().state_machine_arn(&self.env.state_machine).into_paginator().send();
        while let Some(page) = pages.next().await {
            arns.extend(page.expect("ListExecutions").executions().iter().map(|e| e.execution_arn().to_string()));
        }
        arns
    }

    async fn input_of(&self, arn: &str) -> Value {
        let d = self.sfn.describe_execution().execution_arn(arn).send().await.expect("DescribeExecution");
        serde_json::from_str(d.input().unwrap_or("null")).expect("execution input is JSON")
    }

    /// Waits for executions not in `before` whose input satisfies `matches`; returns them once
    /// `settle` has passed with no new one (so a duplicate trigger would be seen).
    async fn new_executions(
        &self,
        before: &BTreeSet<String>,
        matches: impl Fn(&Value) -> bool,
        settle: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(150);
        let mut found: Vec<String> = Vec::new();
        let mut first_at: Option<Instant> = None;
        loop {
            for arn in self.execution_arns().await.difference(before) {
                if !found.contains(arn) && matches(&self.input_of(arn).await) {
                    found.push(arn.clone());
                    first_at.get_or_insert_with(Instant::now);
                }
            }
            if first_at.is_some_and(|t| t.elapsed() >= settle) {
                return found;
            }
            assert!(Instant::now() < deadline, "no execution was started within 150 s (trigger not wired?)");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn follow(&self, arn: &str) -> ExecutionOutcome {
        let executions = Executions::new(self.sfn.clone());
        let outcome = tokio::time::timeout(
            RUN_TIMEOUT,
            executions.follow(arn, Duration::from_millis(500), &mut |p| eprintln!("  {p}")),
        )
        .await
        .unwrap_or_else(|_| panic!("execution {arn} still running after {RUN_TIMEOUT:?}"))
        .expect("follow execution");
        eprintln!("execution {arn}: {}", outcome.status);
        outcome
    }

    /// Uploads `files` under raw/<dataset>/ (the spec last) and follows the one execution the
    /// EventBridge rule starts.
    async fn upload_and_run(&self, dataset: &str, files: &[(String, Vec<u8>)], spec: &str) -> ExecutionOutcome {
        let before = self.execution_arns().await;
        for (name, bytes) in files {
            self.objects.put(&keys::raw(dataset, name), bytes.clone()).await.expect("upload");
        }
        let spec_key = keys::raw(dataset, "pipeline.toml");
        self.objects.put(&spec_key, spec.as_bytes().to_vec()).await.expect("upload spec");
        let started = self
            .new_executions(&before, |input| input.pointer("/detail/object/key").is_some(), Duration::from_secs(3))
            .await;
        assert_eq!(started.len(), 1, "{} uploads must start exactly one execution, got {started:?}", files.len() + 1);
        let input = self.input_of(&started[0]).await;
        assert_eq!(input["source"], "aws.s3", "started by the EventBridge rule: {input}");
        assert_eq!(input["detail"]["object"]["key"], spec_key.as_str());
        self.follow(&started[0]).await
    }

    /// Starts `marquee aws start --retrain` on the demo spec (unchanged data trains again) and
    /// follows it: for the scenarios whose faults are in Train.
    async fn retrain_demo(&self) -> ExecutionOutcome {
        let input = marquee_aws::execution::execution_input(&keys::raw("demo", "pipeline.toml"), None, true);
        let arn = Executions::new(self.sfn.clone()).start(&self.env.state_machine, None, &input).await.expect("start");
        self.follow(&arn).await
    }

    async fn champion(&self, uc: UseCase) -> Option<Champion> {
        let bytes = self.objects.get_opt(&keys::champion(uc)).await.expect("read champion")?;
        Some(serde_json::from_slice(&bytes).expect("champion.json"))
    }

    async fn champions(&self) -> BTreeMap<&'static str, String> {
        let mut out = BTreeMap::new();
        for uc in UseCase::ALL {
            if let Some(c) = self.champion(uc).await {
                out.insert(uc.as_str(), c.version);
            }
        }
        out
    }

    /// Every score item the applications read, keyed by (pk, sk).
    async fn score_items(&self) -> BTreeMap<(String, String), Value> {
        score_items(&self.scores).await
    }

    async fn history_errors(&self, arn: &str) -> Vec<String> {
        let mut errors = Vec::new();
        let mut pages = self.sfn.get_execution_history().execution_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            for ev in page.expect("GetExecutionHistory").events() {
                if *ev.r#type() == HistoryEventType::LambdaFunctionFailed {
                    let d = ev.lambda_function_failed_event_details().expect("details");
                    errors.push(d.error().unwrap_or_default().to_string());
                }
            }
        }
        errors
    }

    /// UpdateFunctionConfiguration on the local Lambda service: new environment, new instances.
    fn set_function_env(&self, function: &str, vars: &Value) {
        let function_env = self.function_configuration(function);
        let mut merged = function_env["Environment"]["Variables"].clone();
        for (k, v) in vars.as_object().expect("object") {
            merged[k] = v.clone();
        }
        let body = json!({ "Environment": { "Variables": merged } }).to_string();
        let reply = http(&self.env.lambda, "PUT", &format!("/2015-03-31/functions/{function}/configuration"), &body);
        assert!(reply.starts_with("HTTP/1.1 200"), "UpdateFunctionConfiguration {function}: {reply}");
    }

    fn function_configuration(&self, function: &str) -> Value {
        let reply = http(&self.env.lambda, "GET", &format!("/2015-03-31/functions/{function}/configuration"), "");
        let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("GetFunctionConfiguration {function}: {e}: {reply}"))
    }
}

async fn score_items(store: &dyn ScoreStore) -> BTreeMap<(String, String), Value> {
    let kinds = [
        ("CUSTOMER#", score::SEGMENT),
        ("CUSTOMER#", score::CHURN),
        ("CUSTOMER#", score::RECS),
        ("TITLE#", score::SIMILAR),
        ("TITLE#", score::SENTIMENT),
        ("BRAND#", score::SENTIMENT),
        ("TALENT#", score::SENTIMENT),
        (score::SEGMENT_PREFIX, score::PROMOTE),
    ];
    // One scan of the whole table: moto copies every item for each Scan page whatever its
    // filter, so eight filtered scans cost about eight full ones.
    let items = store.scan_all().await.expect("scan scores");
    let mut out: BTreeMap<(String, String), Value> = BTreeMap::new();
    for Item { pk, sk, attrs } in &items {
        if kinds.iter().any(|(prefix, kind)| pk.starts_with(prefix) && sk == kind) {
            out.insert((pk.clone(), sk.clone()), Value::Object(attrs.clone()));
        }
    }
    // Ad plans sit beside SIMILAR under each title, one sort key per (slot, segment).
    let titles: BTreeSet<String> =
        out.keys().filter(|(pk, _)| pk.starts_with("TITLE#")).map(|(pk, _)| pk.clone()).collect();
    for Item { pk, sk, attrs } in items {
        if sk.starts_with(score::ADS_PREFIX) && titles.contains(&pk) {
            out.insert((pk, sk), Value::Object(attrs));
        }
    }
    out
}

/// One HTTP/1.1 request to the local Lambda service (its own API: no SDK needed, no signing).
fn http(base: &str, method: &str, path: &str, body: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    reply
}

/// The demo dataset, generated once: every scenario and the embedded comparison use the same bytes.
fn demo_files() -> Vec<(String, Vec<u8>)> {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| demo::generate(&DemoConfig { customers: CUSTOMERS, seed: SEED })).clone()
}

fn run_summary(outcome: &ExecutionOutcome) -> RunSummary {
    let output = outcome.output.clone().unwrap_or_else(|| panic!("execution without output: {outcome:?}"));
    serde_json::from_value(output.clone()).unwrap_or_else(|e| panic!("output is a run summary ({e}): {output}"))
}

/// What the first upload deployed; the later scenarios compare against it.
#[derive(Clone, Debug)]
struct Deployed {
    run_id: String,
    execution_arn: String,
    champions: BTreeMap<&'static str, String>,
}

static SERIAL: Mutex<()> = Mutex::new(());
static DEPLOYED: OnceLock<Deployed> = OnceLock::new();

/// The stack's scenarios, one at a time. They are `#[ignore]`d so that `cargo test` without a
/// stack runs none of them; run with `--ignored` outside the stack, they fail.
fn scenario() -> (StackEnv, MutexGuard<'static, ()>, tokio::runtime::Runtime) {
    let env = StackEnv::from_env()
        .expect("no local stack: run inside `tests/local-aws/stack run -- ...` (MARQUEE_LOCALSTACK_ENDPOINT unset)");
    let guard = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    (env, guard, rt)
}

/// The demo upload run, once per stack: upload -> EventBridge -> execution -> models and scores.
async fn deployed(stack: &Stack) -> Deployed {
    if let Some(d) = DEPLOYED.get() {
        return d.clone();
    }
    let existing = stack.champions().await;
    assert!(existing.is_empty(), "the stack already has champions {existing:?}: these tests need a fresh stack");
    let outcome = stack.upload_and_run("demo", &demo_files(), DEMO_SPEC).await;
    assert!(outcome.succeeded(), "the demo upload run must succeed: {outcome:?}");
    let calls = stack.lambda_invocations(&outcome.execution_arn).await;
    eprintln!(
        "a run that trains and deploys all five use cases: {} invocations, {:.2} Lambda GB-s",
        calls.len(),
        stack.gb_seconds(&outcome.execution_arn).await
    );
    let summary = run_summary(&outcome);
    for r in &summary.results {
        assert_eq!(r.verdict, Verdict::Deploy, "{}: {:?}", r.use_case, r.reasons);
    }
    let d = Deployed {
        run_id: summary.run_id.clone(),
        execution_arn: outcome.execution_arn.clone(),
        champions: stack.champions().await,
    };
    DEPLOYED.set(d.clone()).expect("set once under the lock");
    d
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn an_upload_starts_one_run_through_eventbridge_that_deploys_all_five_use_cases() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        assert_eq!(d.champions.len(), 5, "a champion per use case: {:?}", d.champions);

        for uc in UseCase::ALL {
            let champ = stack.champion(uc).await.expect("champion pointer");
            assert_eq!(champ.run_id, d.run_id);
            // Object-store keys (docs/design.md): the run's model and evaluation, the deployed copy, the pointer.
            let run_models = stack.objects.list(&keys::run_model(&d.run_id, uc, "")).await.unwrap();
            assert!(run_models.contains(&keys::run_model(&d.run_id, uc, "evaluation.json")), "{run_models:?}");
            assert!(stack.objects.get_opt(&champ.model_key).await.unwrap().is_some(), "{}", champ.model_key);
            let deployed = stack.objects.list(&keys::deployed(uc, &champ.version, "")).await.unwrap();
            assert!(!deployed.is_empty(), "models/{uc}/{}/ holds the deployed artifact", champ.version);
            let record = stack.scores.get_item(&score::model(uc), &score::version(&champ.version)).await.unwrap();
            let record = record.unwrap_or_else(|| panic!("MODEL#{uc} VERSION# record"));
            assert_eq!(record.attr("status"), Some(&json!("deployed")), "{record:?}");
            let pointer = stack.scores.get_item(&score::model(uc), score::CHAMPION).await.unwrap().expect("CHAMPION");
            assert_eq!(pointer.attr("version"), Some(&json!(champ.version)));
        }

        // Batch scoring ran as a Distributed Map per deployed use case, a child per planned part
        // (the stack scores in parts of ScorePartRows rows: churn and segment in several).
        let mut planned = BTreeMap::new();
        for uc in UseCase::ALL {
            let version = &d.champions[uc.as_str()];
            let plan = stack.objects.get(&ScorePlan::key(uc, version)).await.expect("score plan");
            let plan: ScorePlan = serde_json::from_slice(&plan).expect("score plan JSON");
            planned.insert(uc.as_str(), plan.parts());
        }
        assert!(planned["churn"] >= 4 && planned["segment"] >= 4, "scored in parts: {planned:?}");
        let runs = stack.sfn.list_map_runs().execution_arn(&d.execution_arn).send().await.expect("ListMapRuns");
        let mut children = Vec::new();
        for run in runs.map_runs() {
            let described =
                stack.sfn.describe_map_run().map_run_arn(run.map_run_arn()).send().await.expect("DescribeMapRun");
            assert_eq!(described.status().as_str(), "SUCCEEDED", "{described:?}");
            children.push(described.item_counts().map_or(0, |c| c.succeeded()));
        }
        children.sort_unstable();
        let mut expected: Vec<i64> = planned.values().map(|&n| n as i64).collect();
        expected.sort_unstable();
        assert_eq!(children, expected, "one map run per use case, a succeeded child per part: {planned:?}");

        let items = stack.score_items().await;
        let count = |sk: &str, prefix: &str| items.keys().filter(|(p, s)| s == sk && p.starts_with(prefix)).count();
        assert_eq!(count(score::SEGMENT, "CUSTOMER#"), CUSTOMERS, "a segment per customer");
        assert_eq!(count(score::CHURN, "CUSTOMER#"), CUSTOMERS, "a churn score per customer");
        assert!(count(score::RECS, "CUSTOMER#") > CUSTOMERS / 2, "recommendations for the raters");
        assert!(count(score::SIMILAR, "TITLE#") > 0);
        for prefix in ["TITLE#", "BRAND#", "TALENT#"] {
            assert!(count(score::SENTIMENT, prefix) > 0, "SENTIMENT items under {prefix}");
        }
        let plans = items.keys().filter(|(p, s)| p.starts_with("TITLE#") && s.starts_with(score::ADS_PREFIX)).count();
        assert!(plans > count(score::SIMILAR, "TITLE#"), "ad plans per title, slot and segment: {plans}");
        let promotions: Vec<SegmentPromotion> = items
            .iter()
            .filter(|((_, sk), _)| sk == score::PROMOTE)
            .map(|((pk, sk), attrs)| {
                SegmentPromotion::from_item(&Item {
                    pk: pk.clone(),
                    sk: sk.clone(),
                    attrs: attrs.as_object().unwrap().clone(),
                })
                .expect("a PROMOTE item")
            })
            .collect();
        let segments: BTreeSet<u64> = items
            .iter()
            .filter(|((p, s), _)| s == score::SEGMENT && p.starts_with("CUSTOMER#"))
            .map(|(_, attrs)| attrs["segment"].as_u64().expect("segment number"))
            .collect();
        let promoted: BTreeSet<u64> = promotions.iter().map(|p| p.segment as u64).collect();
        assert_eq!(promoted, segments, "the Promote state wrote a SEGMENT# / PROMOTE item per segment");
        for p in &promotions {
            assert!(!p.titles.is_empty(), "segment {} has titles to promote", p.segment);
            assert_eq!(p.versions.segment, d.champions["segment"]);
            assert_eq!(p.versions.recommend, d.champions["recommend"]);
            assert_eq!(p.versions.sentiment.as_ref(), Some(&d.champions["sentiment"]));
        }
        for ((pk, sk), attrs) in items.iter().filter(|((_, sk), _)| sk != score::PROMOTE) {
            let uc = match sk.as_str() {
                "SEGMENT" => "segment",
                "CHURN" => "churn",
                "RECS" | "SIMILAR" => "recommend",
                ads if ads.starts_with(score::ADS_PREFIX) => "ads",
                _ => "sentiment",
            };
            assert_eq!(attrs["model_version"], json!(d.champions[uc]), "{pk} {sk} written by the champion");
        }
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn the_schedule_starts_a_retrain_that_leaves_an_unbeaten_champion_and_its_scores_untouched() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let scores_before = stack.score_items().await;
        let before = stack.execution_arns().await;

        // The rule deployed from the template (RetrainSchedule, here rate(1 minute)); enabled only
        // for this test so that scheduled runs cannot interleave with the other scenarios.
        let rule = stack.env.schedule_rule.clone();
        stack.events.enable_rule().name(&rule).send().await.expect("EnableRule");
        // LocalStack starts a rule's schedule when targets are put on it while enabled (a no-op on AWS).
        let targets = stack.events.list_targets_by_rule().rule(&rule).send().await.expect("ListTargetsByRule");
        stack
            .events
            .put_targets()
            .rule(&rule)
            .set_targets(Some(targets.targets().to_vec()))
            .send()
            .await
            .expect("PutTargets");
        let started = stack.new_executions(&before, |input| input.get("spec_key").is_some(), Duration::ZERO).await;
        stack.events.disable_rule().name(&rule).send().await.expect("DisableRule");
        let input = stack.input_of(&started[0]).await;
        assert_eq!(input, json!({ "spec_key": "raw/demo/pipeline.toml" }), "the template's schedule input");

        let outcome = stack.follow(&started[0]).await;
        assert!(outcome.succeeded(), "{outcome:?}");
        let summary = run_summary(&outcome);
        assert_ne!(summary.run_id, d.run_id);
        assert_eq!(summary.results.len(), 5, "a line per use case: {:?}", summary.results);
        for r in &summary.results {
            assert_eq!(r.verdict, Verdict::Unchanged, "{} on unchanged data: {:?}", r.use_case, r.reasons);
            assert_eq!(r.deployed_version, None);
        }
        // Unchanged data stops after ingest: no Prepare, Train, Evaluate or Reject invocation.
        let calls = stack.lambda_invocations(&started[0]).await;
        let functions: Vec<&str> = calls.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            functions,
            ["marquee-local-normalize", "marquee-local-ingest", "marquee-local-summarize"],
            "{calls:?}"
        );
        eprintln!(
            "a scheduled run on unchanged data: {} invocations, {:.2} Lambda GB-s",
            calls.len(),
            stack.gb_seconds(&started[0]).await
        );
        // The same run trained anyway (as every run did before the unchanged check): what it saves.
        let forced = stack.retrain_demo().await;
        assert!(forced.succeeded(), "{forced:?}");
        assert!(run_summary(&forced).results.iter().all(|r| r.verdict == Verdict::Unchanged));
        let forced_calls = stack.lambda_invocations(&forced.execution_arn).await;
        assert_eq!(
            forced_calls.len(),
            20,
            "normalize, ingest, prepare, 5 x train, evaluate, reject, promote, summarize"
        );
        eprintln!(
            "the same run with retrain: {} invocations, {:.2} Lambda GB-s",
            forced_calls.len(),
            stack.gb_seconds(&forced.execution_arn).await
        );
        assert_eq!(stack.champions().await, d.champions, "champions untouched");
        assert!(stack.score_items().await == scores_before, "scores untouched");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn unmeetable_business_criteria_take_the_reject_path_and_write_no_scores() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let scores_before = stack.score_items().await;
        // Same data (dataset "demo"), a churn criterion no model reaches.
        let spec = edited_spec("min_auc = 0.80", "min_auc = 0.999");
        let outcome = stack.upload_and_run("strict", &[], &spec).await;
        assert!(outcome.succeeded(), "a rejection is a normal outcome: {outcome:?}");
        let summary = run_summary(&outcome);
        let churn = summary.results.iter().find(|r| r.use_case == UseCase::Churn).expect("churn result");
        assert_eq!(churn.verdict, Verdict::Reject);
        assert!(churn.reasons.iter().any(|r| r.contains("0.999")), "reasons name the criterion: {:?}", churn.reasons);
        assert_eq!(churn.scores_written, 0);

        let versions = stack.scores.query(&score::model(UseCase::Churn)).await.unwrap();
        let rejected = versions
            .iter()
            .find(|i| i.attr("run_id") == Some(&json!(summary.run_id)))
            .expect("the rejection is recorded under MODEL#churn");
        assert_eq!(rejected.attr("status"), Some(&json!("rejected")));
        assert!(rejected.attr("reasons").and_then(Value::as_array).is_some_and(|r| !r.is_empty()), "{rejected:?}");
        assert_eq!(stack.champions().await, d.champions, "the champion keeps serving");
        assert!(stack.score_items().await == scores_before, "no scores written by a rejected model");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_malformed_part_of_an_upload_in_16_parts_fails_the_quality_gate_naming_the_part_and_line() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let scores_before = stack.score_items().await;
        let models_before = stack.objects.list("models/").await.unwrap();

        // The large tables as folders of 16 parts each (Ingest lists them under its IAM role).
        let (mut files, spec) = demo::split_into_parts(demo_files(), 16);
        let part = "customers/part-00007.csv";
        let (_, customers) = files.iter_mut().find(|(name, _)| name == part).expect("part 7 of customers");
        let good_rows = customers.iter().filter(|&&b| b == b'\n').count() - 1;
        for i in 0..40 {
            customers
                .extend_from_slice(format!("CB{i},N/A,US,basic,2025-01-01,3,9.99,2,10,1,0,0,3,Drama,no\n").as_bytes());
        }
        let spec = spec.replacen("dataset = \"demo\"", "dataset = \"broken\"", 1);
        assert!(spec.contains("dataset = \"broken\"") && spec.contains("file = \"customers/\""));
        let outcome = stack.upload_and_run("broken", &files, &spec).await;
        assert_eq!(outcome.status, "FAILED", "{outcome:?}");
        assert_eq!(outcome.error.as_deref(), Some("Marquee.QualityGateFailed"));
        let cause = outcome.cause.clone().unwrap_or_default();
        let first_bad_line = good_rows + 2;
        assert!(
            cause.contains(&format!("{part} line {first_bad_line}, column `age`")),
            "the cause names the part and the line: {cause}"
        );
        // The quarantine holds every bad row with its part and line.
        let mut quarantined = String::new();
        for key in stack.objects.list("runs/").await.unwrap() {
            if key.ends_with("/ingested/quarantine.csv") {
                let text = String::from_utf8(stack.objects.get(&key).await.unwrap()).unwrap();
                if text.contains("raw/broken/customers/") {
                    quarantined = text;
                }
            }
        }
        let first = quarantined.lines().nth(1).unwrap_or_default();
        assert!(first.contains(&format!("{part},{first_bad_line},age,")), "names the part and line: {first}");
        assert_eq!(quarantined.lines().count(), 41, "every bad row quarantined: {quarantined}");
        assert_eq!(stack.objects.list("models/").await.unwrap(), models_before, "nothing deployed");
        assert_eq!(stack.champions().await, d.champions, "the previous champion keeps serving");
        assert!(stack.score_items().await == scores_before);
    });
}

/// One AWS query-protocol call (SQS, SNS) to LocalStack, as the stack's administrator. LocalStack
/// reads service and region from the credential scope and does not verify the signature.
fn aws_query(endpoint: &str, service: &str, params: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body = params.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect::<Vec<_>>().join("&");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let addr = endpoint.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{service} {params:?}: {reply}");
    reply
}

fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    Some(&xml[start..start + xml[start..].find(&format!("</{tag}>"))?])
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_failed_run_sends_a_readable_message_to_the_alert_topic() {
    let (env, _serial, rt) = scenario();
    let topic = std::env::var("MARQUEE_TOPIC_ALERTTOPIC").expect("the local stack exports MARQUEE_TOPIC_ALERTTOPIC");
    rt.block_on(async {
        let stack = Stack::connect(env.clone()).await;
        deployed(&stack).await;
        // A queue subscribed to the alert topic stands in for the e-mail subscription.
        let name = format!("alerts-probe-{}", std::process::id());
        let created = aws_query(&env.localstack, "sqs", &[("Action", "CreateQueue"), ("QueueName", &name)]);
        let queue_url = xml_text(&created, "QueueUrl").expect("QueueUrl").to_string();
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        let queue_arn = format!("arn:aws:sqs:{region}:000000000000:{name}");
        aws_query(
            &env.localstack,
            "sns",
            &[
                ("Action", "Subscribe"),
                ("TopicArn", &topic),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
                ("Attributes.entry.1.key", "RawMessageDelivery"),
                ("Attributes.entry.1.value", "true"),
            ],
        );

        let mut files = demo_files();
        let (_, customers) = files.iter_mut().find(|(name, _)| name == "customers.csv").expect("customers.csv");
        for i in 0..40 {
            customers
                .extend_from_slice(format!("CB{i},N/A,US,basic,2025-01-01,3,9.99,2,10,1,0,0,3,Drama,no\n").as_bytes());
        }
        let spec = edited_spec("dataset = \"demo\"", "dataset = \"alerted\"");
        let outcome = stack.upload_and_run("alerted", &files, &spec).await;
        assert_eq!(outcome.status, "FAILED", "{outcome:?}");
        let execution = outcome.execution_arn.rsplit(':').next().unwrap().to_string();

        // The run-failed rule (Step Functions status change -> input transformer -> topic).
        let deadline = Instant::now() + Duration::from_secs(60);
        let message = loop {
            let reply = aws_query(
                &env.localstack,
                "sqs",
                &[("Action", "ReceiveMessage"), ("QueueUrl", &queue_url), ("WaitTimeSeconds", "2")],
            );
            if let Some(body) = xml_text(&reply, "Body").filter(|b| b.contains(&execution)) {
                break body.replace("&quot;", "\"").replace("&amp;", "&");
            }
            assert!(Instant::now() < deadline, "no message about {execution} on the alert topic within 60 s");
        };
        for part in [
            format!("marquee pipeline execution {execution} ended FAILED"),
            "Error: Marquee.QualityGateFailed".to_string(),
            "customers.csv".to_string(),
            format!("#/v2/executions/details/{}", outcome.execution_arn),
        ] {
            assert!(message.contains(&part), "the message lacks `{part}`: {message}");
        }
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn an_upload_missing_a_file_fails_the_quality_gate_naming_the_file_not_access_denied() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        // Everything but titles.csv: Ingest looks for it and must learn it is absent (S3 answers 404
        // only to a role allowed s3:ListBucket, AccessDenied to any other).
        let files: Vec<_> = demo_files().into_iter().filter(|(name, _)| name != "titles.csv").collect();
        let spec = edited_spec("dataset = \"demo\"", "dataset = \"incomplete\"");
        let outcome = stack.upload_and_run("incomplete", &files, &spec).await;
        assert_eq!(outcome.status, "FAILED", "{outcome:?}");
        assert_eq!(outcome.error.as_deref(), Some("Marquee.QualityGateFailed"), "{outcome:?}");
        let cause = outcome.cause.clone().unwrap_or_default();
        assert!(cause.contains("titles.csv") && cause.contains("not found"), "names the missing file: {cause}");
        assert_eq!(stack.champions().await, d.champions, "the previous champion keeps serving");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_transient_lambda_failure_is_retried_by_the_state_machine() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let train = "marquee-local-train";
        // The template's InjectFault switch, set the way `sam deploy --parameter-overrides
        // InjectFault=train` would: the first invocation in each new Train instance fails.
        stack.set_function_env(train, &json!({ "MARQUEE_INJECT_FAULT": "train" }));
        let outcome = stack.retrain_demo().await;
        stack.set_function_env(train, &json!({ "MARQUEE_INJECT_FAULT": "" }));

        let errors = stack.history_errors(&outcome.execution_arn).await;
        assert!(errors.iter().any(|e| e == "Marquee.Transient"), "the injected failure happened: {errors:?}");
        assert!(outcome.succeeded(), "and the retry recovered: {outcome:?}");
        let summary = run_summary(&outcome);
        assert_eq!(summary.results.len(), 5);
        assert_eq!(stack.champions().await, d.champions);
    });
}

/// The IAM gateway's decisions so far (tests/local-aws/iam_gateway.py writes one JSON line each).
fn iam_decisions() -> Vec<Value> {
    let path = std::env::var("MARQUEE_IAM_DECISIONS").expect("the local stack exports MARQUEE_IAM_DECISIONS");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("decision line")).collect()
}

/// Invokes a function through the local Lambda Invoke API as the account's administrator (the
/// stack's `test` key; the local services do not verify signatures, they identify the caller).
fn invoke_function(lambda: &str, function: &str, payload: &Value) -> (String, Value) {
    let addr = lambda.trim_start_matches("http://");
    let body = payload.to_string();
    let mut conn = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(RUN_TIMEOUT)).unwrap();
    write!(
        conn,
        "POST /2015-03-31/functions/{function}/invocations HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    let (head, payload) = reply.split_once("\r\n\r\n").unwrap_or((reply.as_str(), ""));
    (head.to_string(), serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string())))
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn ingest_rolls_a_lagging_champion_pointer_forward_from_the_champion_item() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let uc = UseCase::Segment;
        let current = stack.champion(uc).await.expect("segment has a champion");
        // A deployment that stopped between flipping the champion item and writing the pointer
        // leaves the pointer naming the previous champion.
        let mut lagging = current.clone();
        lagging.version = "20000101T000000Z-lagging".into();
        stack.objects.put(&keys::champion(uc), serde_json::to_vec(&lagging).unwrap()).await.expect("put pointer");

        let outcome = stack.upload_and_run("demo", &[], DEMO_SPEC).await;
        assert!(outcome.succeeded(), "{outcome:?}");
        let summary = run_summary(&outcome);
        let segment = summary.results.iter().find(|r| r.use_case == uc).expect("segment result");
        assert_eq!(
            segment.verdict,
            Verdict::Unchanged,
            "compared against the champion the item names: {:?}",
            segment.reasons
        );
        assert_eq!(stack.champion(uc).await.expect("pointer").version, current.version, "pointer rolled forward");
        assert_eq!(stack.champions().await, d.champions);
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_deploy_that_loses_the_champion_race_republishes_the_winners_scores() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env.clone()).await;
        let d = deployed(&stack).await;
        let uc = UseCase::Segment;
        let (pk, sk) = (score::model(uc), score::CHAMPION);
        let champion_item = stack.scores.get_item(&pk, sk).await.expect("get").expect("champion item");
        let scores_before = stack.score_items().await;
        // Deploy a copy of the first run (run and version `<run>-race`: a deployment of the
        // champion's own version would find the champion already flipped to it and succeed, as a
        // retried Publish does) as if it had been evaluated with no champion, and let another
        // deployment (the current champion, put back) win while it writes scores.
        let race = format!("{}-race", d.run_id);
        let (from, to) = (keys::run_prefix(&d.run_id), keys::run_prefix(&race));
        for key in stack.objects.list(&from).await.expect("list the run") {
            let mut bytes = stack.objects.get(&key).await.expect("get");
            if key == keys::run_model(&d.run_id, uc, "evaluation.json") {
                let mut rec: Value = serde_json::from_slice(&bytes).expect("evaluation JSON");
                (rec["run_id"], rec["version"]) = (json!(race), json!(race));
                bytes = serde_json::to_vec(&rec).expect("JSON");
            }
            stack.objects.put(&key.replacen(&from, &to, 1), bytes).await.expect("put");
        }
        stack.scores.delete_item(&pk, sk).await.expect("delete champion item");
        let seen = iam_decisions().len();
        let input = json!({
            "run_id": race, "use_case": "segment", "verdict": "deploy", "metric": "silhouette", "value": 0.5,
            "champion_version": null, "champion_value": null, "reasons": [],
            "evaluation_key": keys::run_model(&race, uc, "evaluation.json"),
        });
        let lambda = env.lambda.clone();
        let deploy = std::thread::spawn(move || invoke_function(&lambda, "marquee-local-deploy", &input));
        // Deploy's first champion read is its pre-check; the winner's flip lands right after it.
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            let checked = iam_decisions()[seen..].iter().any(|r| {
                r["role"].as_str().is_some_and(|r| r.contains("DeployFunctionRole"))
                    && r["action"] == "dynamodb:GetItem"
            });
            if checked {
                break;
            }
            assert!(Instant::now() < deadline && !deploy.is_finished(), "Deploy never read the champion item");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stack.scores.put_items(vec![champion_item.clone()]).await.expect("the winner flips the champion");
        let (head, reply) = deploy.join().expect("invoke thread");

        assert!(head.contains("X-Amz-Function-Error"), "the losing deployment fails: {head} {reply}");
        assert_eq!(reply["errorType"], "Marquee.ConditionFailed", "{reply}");
        let message = reply["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("another deployment won the race"), "{message}");
        assert!(message.contains(&d.champions["segment"]), "names the winner: {message}");
        assert_eq!(
            stack.scores.get_item(&pk, sk).await.expect("get"),
            Some(champion_item),
            "the winner stays champion"
        );
        let loser = stack.scores.get_item(&pk, &score::version(&race)).await.expect("get").expect("loser on record");
        assert_eq!(loser.attr("status"), Some(&json!("lost-race")), "not recorded as deployed: {loser:?}");
        assert!(stack.score_items().await == scores_before, "the winner's scores are what applications read");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn scores_written_through_aws_equal_the_embedded_modes_for_the_same_data_and_seed() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        deployed(&stack).await;
        let ws = Workspace::new();
        for (name, bytes) in demo_files() {
            ws.objects.put(&keys::raw("demo", &name), bytes).await.expect("embedded upload");
        }
        let spec_key = ws.put_spec(DEMO_SPEC).await;
        ws.run("embedded", &spec_key).await.expect("embedded run");

        let strip = |items: BTreeMap<(String, String), Value>| {
            items
                .into_iter()
                .map(|(k, mut v)| {
                    let attrs = v.as_object_mut().expect("attrs");
                    attrs.remove("model_version");
                    attrs.remove("versions"); // PROMOTE items name the champions' run ids

                    (k, v)
                })
                .collect::<BTreeMap<_, _>>()
        };
        let aws = strip(stack.score_items().await);
        let embedded = strip(score_items(&ws.scores).await);
        assert_eq!(aws.len(), embedded.len(), "same number of score items");
        for (key, value) in &embedded {
            assert_eq!(aws.get(key), Some(value), "{key:?}: AWS and embedded scores differ");
        }
    });
}

// ------------------------------------------------------------------ Lambda limits (tests/local-aws/lambda_service.py)

/// UpdateFunctionConfiguration through the local Lambda endpoint; the configuration it answers.
fn update_function_configuration(lambda: &str, function: &str, body: &Value) -> Value {
    let reply = http(lambda, "PUT", &format!("/2015-03-31/functions/{function}/configuration"), &body.to_string());
    assert!(reply.starts_with("HTTP/1.1 200"), "UpdateFunctionConfiguration {function} {body}: {reply}");
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("UpdateFunctionConfiguration {function}: {e}: {reply}"))
}

/// Puts a function's environment, timeout, memory and /tmp size back when dropped, also when the
/// test panics (the scenarios after it share the stack).
struct RestoreConfiguration {
    lambda: String,
    function: String,
    saved: Value,
}

impl RestoreConfiguration {
    fn new(stack: &Stack, function: &str) -> Self {
        let saved = stack.function_configuration(function);
        assert!(saved["Timeout"].is_u64() && saved["MemorySize"].is_u64(), "GetFunctionConfiguration: {saved}");
        Self { lambda: stack.env.lambda.clone(), function: function.to_string(), saved }
    }

    /// The saved configuration with `changes` (Timeout, MemorySize, extra environment variables).
    fn with(&self, changes: &Value, extra_env: &Value) -> Value {
        let mut vars = self.saved["Environment"]["Variables"].clone();
        for (k, v) in extra_env.as_object().expect("object") {
            vars[k] = v.clone();
        }
        let mut body = json!({ "Environment": { "Variables": vars } });
        for (k, v) in changes.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    }

    fn body(&self) -> Value {
        let mut body = json!({
            "Environment": self.saved["Environment"],
            "Timeout": self.saved["Timeout"],
            "MemorySize": self.saved["MemorySize"],
        });
        if self.saved["EphemeralStorage"].is_object() {
            body["EphemeralStorage"] = self.saved["EphemeralStorage"].clone();
        }
        body
    }
}

impl Drop for RestoreConfiguration {
    fn drop(&mut self) {
        let body = self.body();
        let reply = http(
            &self.lambda,
            "PUT",
            &format!("/2015-03-31/functions/{}/configuration", self.function),
            &body.to_string(),
        );
        if !reply.starts_with("HTTP/1.1 200") {
            eprintln!("could not restore {}'s configuration {body}: {reply}", self.function);
            if !std::thread::panicking() {
                panic!("could not restore {}'s configuration", self.function);
            }
        }
    }
}

/// The summary a failed run wrote (the UseCaseFailed cause names its key).
async fn written_summary(stack: &Stack, outcome: &ExecutionOutcome) -> RunSummary {
    let cause = outcome.cause.clone().unwrap_or_default();
    let key = cause
        .split("summary: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("the cause names the summary: {cause}"));
    let bytes = stack.objects.get(key).await.unwrap_or_else(|e| panic!("{key}: {e}"));
    serde_json::from_slice(&bytes).expect("a run summary")
}

/// The function's log (stdout/stderr of all its instances) as written by the local Lambda service.
fn function_log(function: &str) -> String {
    let dir = std::env::var("MARQUEE_LOCAL_AWS_LOGS").expect("the local stack exports MARQUEE_LOCAL_AWS_LOGS");
    std::fs::read_to_string(format!("{dir}/functions/{function}.log")).unwrap_or_default()
}

impl Stack {
    async fn history(&self, arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        let mut events = Vec::new();
        let mut pages = self.sfn.get_execution_history().execution_arn(arn).into_paginator().send();
        while let Some(page) = pages.next().await {
            events.extend(page.expect("GetExecutionHistory").events().iter().cloned());
        }
        events
    }

    /// (function ARN, error, cause) of every failed Lambda invocation of an execution.
    async fn lambda_failures(&self, arn: &str) -> Vec<(String, String, String)> {
        let events = self.history(arn).await;
        let by_id: BTreeMap<i64, &HistoryEvent> = events.iter().map(|e| (e.id(), e)).collect();
        let mut out = Vec::new();
        for ev in &events {
            let Some(d) = ev.lambda_function_failed_event_details() else { continue };
            let resource = scheduled_function(&by_id, ev);
            out.push((resource, d.error().unwrap_or_default().to_string(), d.cause().unwrap_or_default().to_string()));
        }
        out
    }

    /// (function name, seconds from start to end) of every Lambda invocation of an execution.
    async fn lambda_invocations(&self, arn: &str) -> Vec<(String, f64)> {
        let events = self.history(arn).await;
        let by_id: BTreeMap<i64, &HistoryEvent> = events.iter().map(|e| (e.id(), e)).collect();
        let mut out = Vec::new();
        for ev in &events {
            let ended = matches!(
                ev.r#type(),
                HistoryEventType::LambdaFunctionSucceeded
                    | HistoryEventType::LambdaFunctionFailed
                    | HistoryEventType::LambdaFunctionTimedOut
            );
            let started =
                by_id.get(&ev.previous_event_id()).filter(|p| *p.r#type() == HistoryEventType::LambdaFunctionStarted);
            if let (true, Some(started)) = (ended, started) {
                let seconds = (ev.timestamp().as_secs_f64() - started.timestamp().as_secs_f64()).max(0.0);
                let arn = scheduled_function(&by_id, ev);
                out.push((arn.rsplit(':').next().unwrap_or_default().to_string(), seconds));
            }
        }
        out
    }

    /// Lambda GB-seconds of an execution: each invocation's duration times its function's memory.
    async fn gb_seconds(&self, arn: &str) -> f64 {
        let mut total = 0.0;
        for (function, seconds) in self.lambda_invocations(arn).await {
            let memory_mb = self.function_configuration(&function)["MemorySize"].as_f64().expect("MemorySize");
            total += seconds * memory_mb / 1024.0;
        }
        total
    }
}

/// The function ARN of the LambdaFunctionScheduled event an invocation event traces back to.
fn scheduled_function(by_id: &BTreeMap<i64, &HistoryEvent>, ev: &HistoryEvent) -> String {
    let mut cursor = by_id.get(&ev.previous_event_id()).copied();
    while let Some(prev) = cursor {
        if let Some(s) = prev.lambda_function_scheduled_event_details() {
            return s.resource().to_string();
        }
        cursor = by_id.get(&prev.previous_event_id()).copied();
    }
    String::new()
}

/// Runs the demo spec with Train reconfigured (`changes`, and MARQUEE_INJECT_FAULT = `fault`), puts
/// Train's configuration back, and checks what a limit hit must look like: every use case's Train
/// failed with `error`, each caught in its Map iteration, the summary was written naming them,
/// the run FAILED through UseCaseFailed, the fault really ran (its marker in Train's log) and
/// nothing was deployed.
async fn run_train_over_a_limit(
    stack: &Stack,
    changes: Value,
    fault: &str,
    marker: &str,
    error: &str,
) -> ExecutionOutcome {
    let d = deployed(stack).await;
    let train = "marquee-local-train";
    let models_before = stack.objects.list("models/").await.unwrap();
    let marks_before = function_log(train).matches(marker).count();
    let outcome = {
        let restore = RestoreConfiguration::new(stack, train);
        let conf = update_function_configuration(
            &stack.env.lambda,
            train,
            &restore.with(&changes, &json!({ "MARQUEE_INJECT_FAULT": fault })),
        );
        for (k, v) in changes.as_object().unwrap() {
            assert_eq!(&conf[k], v, "UpdateFunctionConfiguration applied {k}: {conf}");
        }
        assert_eq!(conf["Environment"]["Variables"]["MARQUEE_INJECT_FAULT"], fault, "{conf}");
        stack.retrain_demo().await
    };
    let restored = stack.function_configuration(train);
    assert!(
        restored["Environment"]["Variables"]["MARQUEE_INJECT_FAULT"].as_str().unwrap_or_default().is_empty(),
        "Train's configuration is back: {restored}"
    );

    assert_eq!(outcome.status, "FAILED", "{outcome:?}");
    assert_eq!(outcome.error.as_deref(), Some("Marquee.UseCaseFailed"), "{outcome:?}");
    let summary = written_summary(stack, &outcome).await;
    assert_eq!(summary.results.len(), 5, "{summary:?}");
    for r in &summary.results {
        let f = r.failure.as_ref().unwrap_or_else(|| panic!("{} failed: {summary:?}", r.use_case));
        assert_eq!((r.verdict, f.step.as_str(), f.error.as_str()), (Verdict::Failed, "train", error), "{r:?}");
    }
    let failures = stack.lambda_failures(&outcome.execution_arn).await;
    let train_failures: Vec<_> = failures
        .iter()
        .filter(|(fn_arn, e, _)| fn_arn.ends_with(":function:marquee-local-train") && e == error)
        .collect();
    assert!(!train_failures.is_empty(), "Train's invocation failed with {error}: {failures:?}");
    assert!(
        failures.iter().all(|(_, e, _)| e == error),
        "no other failure (a retry, another step) hides behind the limit: {failures:?}"
    );
    let marks = function_log(train).matches(marker).count();
    assert!(marks > marks_before, "the injected {fault} ran in Train (\"{marker}\" in its log)");
    assert_eq!(stack.objects.list("models/").await.unwrap(), models_before, "nothing deployed");
    assert_eq!(stack.champions().await, d.champions, "the champions keep serving");
    outcome
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_use_case_failing_for_good_is_caught_in_its_iteration_and_the_others_finish() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        // More segments than training rows: segmentation's Train fails with Marquee.StepFailed,
        // which no retry fixes. The other use cases see the data of their champions: unchanged.
        let spec = edited_spec("k_max = 8\n", "k_max = 8\nk = 5000\n").replacen(
            "min_segment_share = 0.02",
            "min_segment_share = 0.0",
            1,
        );
        let outcome = stack.upload_and_run("demo", &[], &spec).await;
        assert_eq!(outcome.status, "FAILED", "{outcome:?}");
        assert_eq!(outcome.error.as_deref(), Some("Marquee.UseCaseFailed"), "{outcome:?}");
        let cause = outcome.cause.clone().unwrap_or_default();
        assert!(cause.contains("segment failed in train (Marquee.StepFailed"), "{cause}");

        let summary = written_summary(&stack, &outcome).await;
        let failed: Vec<_> = summary.failed().collect();
        assert_eq!(failed.len(), 1, "{summary:?}");
        let f = failed[0].failure.as_ref().expect("failure recorded");
        assert_eq!(
            (failed[0].use_case, f.step.as_str(), f.error.as_str()),
            (UseCase::Segment, "train", "Marquee.StepFailed")
        );
        assert!(f.cause.contains("exceeds the number of rows"), "the cause is the step's message: {f:?}");
        for uc in [UseCase::Churn, UseCase::Recommend, UseCase::Sentiment] {
            let r = summary.results.iter().find(|r| r.use_case == uc).expect("a line per use case");
            assert_eq!(r.verdict, Verdict::Unchanged, "{uc} finished: {r:?}");
            let record = stack.scores.get_item(&score::model(uc), &score::version(&summary.run_id)).await.unwrap();
            assert_eq!(record, None, "{uc} was not trained again: no new version");
        }
        assert_eq!(stack.champions().await, d.champions, "the champions keep serving");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_step_past_its_timeout_is_killed_and_fails_the_run_with_sandbox_timedout() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let timeout = 4;
        let started = Instant::now();
        let outcome = run_train_over_a_limit(
            &stack,
            json!({ "Timeout": timeout }),
            "train:timeout",
            "sleeping past the function's timeout",
            "Sandbox.Timedout",
        )
        .await;
        let cause = outcome.cause.clone().unwrap_or_default();
        assert!(cause.contains(&format!("Task timed out after {timeout}.00 seconds")), "{cause}");
        // The fault sleeps 1,000 s: only the timeout can have ended the run this soon.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_secs(timeout) && elapsed < Duration::from_secs(300), "{elapsed:?}");
        eprintln!("timeout scenario: {elapsed:?}");
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_step_over_its_memory_is_killed_and_fails_the_run_with_runtime_out_of_memory() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let started = Instant::now();
        let outcome = run_train_over_a_limit(
            &stack,
            json!({ "MemorySize": 256 }),
            "train:oom",
            "allocating until the memory limit kills the process",
            "Runtime.OutOfMemory",
        )
        .await;
        let cause = outcome.cause.clone().unwrap_or_default();
        assert!(cause.contains("Runtime exited with error: signal: killed"), "{cause}");
        eprintln!("out-of-memory scenario: {:?}", started.elapsed());
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn a_duplicate_delivery_of_an_upload_event_starts_no_second_run() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let outcome = stack.upload_and_run("demo", &[], DEMO_SPEC).await;
        assert!(outcome.succeeded(), "{outcome:?}");
        let first = run_summary(&outcome);
        let runs_before = stack.objects.list("runs/").await.unwrap();

        // EventBridge delivers at least once: the same event again, twice, as new executions.
        let event = stack.input_of(&outcome.execution_arn).await;
        assert!(event.pointer("/detail/object/key").is_some(), "an S3 event: {event}");
        let executions = Executions::new(stack.sfn.clone());
        for _ in 0..2 {
            let arn = executions.start(&stack.env.state_machine, None, &event).await.expect("StartExecution");
            let again = stack.follow(&arn).await;
            assert!(again.succeeded(), "{again:?}");
            let output = again.output.clone().expect("output");
            assert_eq!(output["duplicate_of"], json!(first.run_id), "names the run the event started: {output}");
            let calls = stack.lambda_invocations(&arn).await;
            assert_eq!(calls.len(), 1, "only Normalize ran: {calls:?}");
        }
        assert_eq!(stack.objects.list("runs/").await.unwrap(), runs_before, "no second run wrote anything");
        assert_eq!(stack.champions().await, d.champions);
    });
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn two_uploads_of_one_dataset_back_to_back_run_one_after_the_other() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let before = stack.execution_arns().await;
        // Two versions of the spec (the second only adds a comment), uploaded back to back.
        let spec_key = keys::raw("demo", "pipeline.toml");
        stack.objects.put(&spec_key, DEMO_SPEC.as_bytes().to_vec()).await.expect("upload spec");
        let second_spec = format!("{DEMO_SPEC}\n# uploaded again\n");
        stack.objects.put(&spec_key, second_spec.into_bytes()).await.expect("upload spec again");
        let started = stack
            .new_executions(&before, |input| input.pointer("/detail/object/key").is_some(), Duration::from_secs(3))
            .await;
        assert_eq!(started.len(), 2, "two uploads, two executions: {started:?}");

        let mut windows = Vec::new();
        for arn in &started {
            let outcome = stack.follow(arn).await;
            assert!(outcome.succeeded(), "{outcome:?}");
            let history = stack.history(arn).await;
            let entered = |state: &str| {
                history
                    .iter()
                    .filter(|e| e.state_entered_event_details().is_some_and(|s| s.name() == state))
                    .map(|e| e.timestamp().as_secs_f64())
                    .collect::<Vec<_>>()
            };
            let ingest = *entered("Ingest").first().expect("the run ingested");
            let end = history.last().expect("history").timestamp().as_secs_f64();
            windows.push((ingest, end, !entered("WaitForDataset").is_empty()));
        }
        windows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (first, second) = (windows[0], windows[1]);
        assert!(second.0 >= first.1, "the second run ingested only after the first had ended: {windows:?}");
        assert!(second.2, "the second run waited for the dataset: {windows:?}");
        assert_eq!(stack.champions().await, d.champions, "same data: the champions stay");
    });
}

/// The demo spec with only `keep` of the five use case sections, reading dataset `dataset`.
fn spec_with_only(keep: &str, dataset: &str) -> String {
    let mut out = String::new();
    let mut dropping = false;
    for line in DEMO_SPEC.lines() {
        if let Some(header) = line.strip_prefix('[') {
            let section = header.split(['.', ']']).next().unwrap_or_default();
            dropping = ["segment", "churn", "recommend", "sentiment", "ads"].contains(&section) && section != keep;
        }
        if !dropping {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(out.contains("dataset = \"demo\""), "demo spec changed: update this test");
    out.replacen("dataset = \"demo\"", &format!("dataset = \"{dataset}\""), 1)
}

#[test]
#[ignore = "needs the local AWS stack: scripts/localstack-checks runs it with --ignored"]
fn models_rollback_on_aws_restores_the_previous_champions_scores() {
    let (env, _serial, rt) = scenario();
    rt.block_on(async {
        let stack = Stack::connect(env).await;
        let d = deployed(&stack).await;
        let uc = UseCase::Churn;
        let churn_scores = || async { stack.scores.scan_sk("CUSTOMER#", score::CHURN).await.unwrap() };
        let before = churn_scores().await;
        // Other data, churn only, and a tolerance that lets its model replace the champion.
        let spec = spec_with_only("churn", "registry").replacen("tolerance = 0.005", "tolerance = 1.0", 1);
        // Other data without the last 100 customers: their scores are stale once it deploys.
        let other = demo::generate(&DemoConfig { customers: CUSTOMERS - 100, seed: SEED + 1 });
        let outcome = stack.upload_and_run("registry", &other, &spec).await;
        assert!(outcome.succeeded(), "{outcome:?}");
        let summary = run_summary(&outcome);
        assert_eq!(summary.results.len(), 1, "{summary:?}");
        assert_eq!(summary.results[0].verdict, Verdict::Deploy, "{:?}", summary.results[0].reasons);
        let after = churn_scores().await;
        assert_ne!(after, before, "the new champion's scores");
        assert_eq!(after.len(), CUSTOMERS - 100, "deploy removed the previous champion's stale scores");

        let stores = Stores { objects: &stack.objects, scores: &stack.scores };
        let listed = steps::versions(stores, uc).await.unwrap();
        assert!(listed.iter().any(|v| v.champion && v.version == summary.run_id), "{listed:?}");
        let back = steps::rollback(stores, uc).await.expect("rollback");
        assert_eq!(
            (back.version.as_str(), back.previous.as_deref()),
            (d.champions["churn"].as_str(), Some(summary.run_id.as_str()))
        );
        assert_eq!(churn_scores().await, before, "the previous champion's scores, item by item");
        assert_eq!(stack.champions().await, d.champions, "the previous champion serves again");
    });
}
