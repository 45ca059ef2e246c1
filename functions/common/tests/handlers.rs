//! Every Lambda handler, invoked in-process with the files in events/ over the embedded stores
//! (directory + SQLite): the events are real inputs, and each handler's output is what the
//! next state of the state machine reads.
//!
//! `MARQUEE_UPDATE_EVENTS=1 cargo test -p marquee-lambda --test handlers` rewrites the events
//! that hold step outputs (deploy.json, reject.json, summarize.json) from a real run.

use std::path::PathBuf;

use marquee_demo::{self as demo, DemoConfig, DEMO_SPEC};
use marquee_embedded::{DirObjectStore, SqliteScoreStore};
use marquee_lambda::handlers::{self, DeployReply, DeployRequest, NormalizeRequest, PrepareRequest, SummarizeRequest};
use marquee_pipeline::guard::ExecutionStatus;
use marquee_pipeline::keys::{self, score};
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{EvaluateOutput, PromoteLine, PromoteOutcome, RunRequest, Stores, UseCaseTask, Verdict};
use marquee_pipeline::store::{ObjectStore, ScoreStore, StoreResult};
use serde::de::DeserializeOwned;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn event<T: DeserializeOwned>(name: &str) -> T {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} does not fit its handler: {e}", path.display()))
}

fn update_event<T: serde::Serialize>(name: &str, value: &T) {
    if std::env::var_os("MARQUEE_UPDATE_EVENTS").is_some() {
        std::fs::write(events_dir().join(name), serde_json::to_string_pretty(value).unwrap() + "\n").unwrap();
    }
}

struct Local {
    _dir: tempfile::TempDir,
    objects: DirObjectStore,
    scores: SqliteScoreStore,
}

impl Local {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let objects = DirObjectStore::new(dir.path().join("bucket"));
        let scores = SqliteScoreStore::open(dir.path().join("scores.db")).unwrap();
        Self { _dir: dir, objects, scores }
    }
    fn stores(&self) -> Stores<'_> {
        Stores { objects: &self.objects, scores: &self.scores }
    }
    /// The demo spec, with a sentiment bar no model reaches (so the run has a rejection too).
    async fn upload_spec(&self) {
        assert!(DEMO_SPEC.contains("min_accuracy = 0.80"), "demo spec changed: update this test");
        let spec = DEMO_SPEC.replacen("min_accuracy = 0.80", "min_accuracy = 0.995", 1);
        self.objects.put(&keys::raw("demo", "pipeline.toml"), spec.into_bytes()).await.unwrap();
    }
    async fn upload_demo(&self) {
        for (name, bytes) in demo::generate(&DemoConfig { customers: 1500, seed: 7 }) {
            self.objects.put(&keys::raw("demo", &name), bytes).await.unwrap();
        }
        self.upload_spec().await;
    }
}

/// The executions Step Functions would report running (DescribeExecution).
struct Running(&'static [&'static str]);

#[async_trait::async_trait]
impl ExecutionStatus for Running {
    async fn is_running(&self, execution: &str) -> StoreResult<bool> {
        Ok(self.0.contains(&execution))
    }
}

#[tokio::test]
async fn trigger_events_normalize_to_run_requests() {
    let local = Local::new();
    let none = Running(&[]);
    let upload =
        handlers::normalize(local.stores(), &none, event::<NormalizeRequest>("s3-object-created.json")).await.unwrap();
    let wrapped =
        handlers::normalize(local.stores(), &none, event::<NormalizeRequest>("normalize.json")).await.unwrap();
    // Normalize's output is Ingest's input.
    assert_eq!(upload.run, event::<RunRequest>("ingest.json"));
    assert_eq!((upload.dataset.as_str(), upload.duplicate_of.as_deref()), ("demo", None));
    assert_eq!(wrapped, upload);

    let scheduled: NormalizeRequest = serde_json::from_value(serde_json::json!({
        "event": event::<serde_json::Value>("schedule.json"), "execution_name": "5d1f0a", "start_time": "2026-11-09T06:00:00Z"
    }))
    .unwrap();
    let run = handlers::normalize(local.stores(), &none, scheduled).await.unwrap().run;
    assert_eq!((run.spec_key.as_str(), run.trigger.as_deref()), ("raw/demo/pipeline.toml", Some("schedule")));
    assert_eq!(run.run_id, "20261109T060000Z-5d1f0a");
    // A bare schedule input (as `cargo lambda invoke --data-file events/schedule.json` sends it) works too.
    let bare = handlers::normalize(local.stores(), &none, event::<NormalizeRequest>("schedule.json")).await.unwrap();
    assert_eq!(bare.run.spec_key, "raw/demo/pipeline.toml");
}

/// The upload event as the state machine passes it, inside execution `arn`.
fn in_execution(arn: &str) -> NormalizeRequest {
    let mut v: serde_json::Value = event("normalize.json");
    v["execution_id"] = serde_json::json!(arn);
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn a_duplicate_delivery_is_not_run_and_a_busy_dataset_makes_a_run_wait() {
    let local = Local::new();
    let running = Running(&["arn:exec:first"]);
    let first = handlers::normalize(local.stores(), &running, in_execution("arn:exec:first")).await.unwrap();
    assert_eq!(first.duplicate_of, None);
    // The same event delivered again starts a second execution: it ends as a duplicate.
    let again = handlers::normalize(local.stores(), &running, in_execution("arn:exec:again")).await.unwrap();
    assert_eq!(again.duplicate_of.as_deref(), Some(first.run.run_id.as_str()));

    // Another upload of the dataset while the first execution runs: busy, naming the holder.
    let mut other: serde_json::Value = event("normalize.json");
    other["event"]["id"] = serde_json::json!("5b0e1c2d-7e1f-4a2b-9c3d-4e5f6a7b8c9d");
    other["event"]["detail"]["object"]["sequencer"] = serde_json::json!("00617F0829932FFFFF");
    other["execution_id"] = serde_json::json!("arn:exec:second");
    let second: NormalizeRequest = serde_json::from_value(other).unwrap();
    let busy = handlers::normalize(local.stores(), &running, second.clone()).await.unwrap();
    let waiting_for = busy.waiting_for.expect("waits for the first run");
    assert!(waiting_for.starts_with(&format!("run {} (execution arn:exec:first", first.run.run_id)), "{waiting_for}");
    // Once the first execution has ended, the waiting run takes the dataset.
    let out = handlers::normalize(local.stores(), &Running(&[]), second).await.unwrap();
    assert_eq!((out.duplicate_of, out.waiting_for), (None, None));
}

#[tokio::test]
async fn failed_quality_gate_is_a_result_whose_message_names_the_reports() {
    let local = Local::new();
    local.upload_spec().await; // the spec, but none of its data files
    let out = handlers::ingest(local.stores(), event::<RunRequest>("ingest.json")).await.unwrap();
    assert!(!out.quality_passed);
    let message = out.quality_message.expect("a message for the Fail state's Cause");
    assert!(message.contains("quality gate failed for run 20261103T101500Z-17793124"), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert!(message.contains(&local.objects.uri(&out.quality_key)), "{message}");
}

#[tokio::test]
async fn handler_errors_carry_run_and_key() {
    let local = Local::new();
    let err = handlers::prepare(local.stores(), PrepareRequest { run_id: "no-such-run".into() }).await.unwrap_err();
    assert_eq!(err.error_type(), "Marquee.StepFailed");
    let text = err.to_string();
    assert!(text.contains("no-such-run") && text.contains("spec.toml"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_drive_every_step_over_embedded_stores() {
    let local = Local::new();
    local.upload_demo().await;
    let stores = local.stores();

    let run: RunRequest = event("ingest.json");
    let ingest = handlers::ingest(stores, run.clone()).await.expect("ingest");
    assert!(ingest.quality_passed, "{:?}", ingest.quality_message);

    let prepared = handlers::prepare(stores, event::<PrepareRequest>("prepare.json")).await.expect("prepare");
    let train_task: UseCaseTask = event("train.json");
    assert!(prepared.tasks.contains(&train_task), "train.json is one of prepare's tasks");
    assert_eq!(event::<UseCaseTask>("evaluate.json"), train_task);

    let trained = handlers::train(stores, train_task.clone()).await.expect("train");
    assert_eq!(trained.model_key, keys::run_model(&run.run_id, train_task.use_case, "model.json"));
    let churn = handlers::evaluate(stores, event::<UseCaseTask>("evaluate.json")).await.expect("evaluate");
    assert_eq!(churn.verdict, Verdict::Deploy, "{:?}", churn.reasons);

    let sentiment_task = UseCaseTask { run_id: run.run_id.clone(), use_case: UseCase::Sentiment };
    handlers::train(stores, sentiment_task.clone()).await.expect("train sentiment");
    let sentiment = handlers::evaluate(stores, sentiment_task).await.expect("evaluate sentiment");
    assert_eq!(sentiment.verdict, Verdict::Reject, "the spec's sentiment bar is out of reach");

    update_event("deploy.json", &churn);
    update_event("reject.json", &sentiment);
    let deploy_event: EvaluateOutput = event("deploy.json");
    assert_eq!(
        (deploy_event.use_case, deploy_event.verdict, &deploy_event.evaluation_key),
        (UseCase::Churn, Verdict::Deploy, &churn.evaluation_key)
    );
    // The state machine's three Deploy states: plan, one child per part, finish.
    let plan_event = serde_json::json!({ "plan": deploy_event });
    update_event("deploy-plan.json", &plan_event);
    let request: DeployRequest = event("deploy-plan.json");
    assert!(
        matches!(&request, DeployRequest::Plan { plan } if plan.evaluation_key == churn.evaluation_key),
        "deploy-plan.json plans churn"
    );
    let DeployReply::Planned(plan) = handlers::deploy_function(stores, request).await.expect("plan") else {
        panic!("a Plan request answers the plan")
    };
    assert_eq!(plan.parts, vec![0], "the demo's customers fit one part of the default size");
    update_event("score-part.json", &serde_json::json!({ "score": plan.request(0) }));
    let request: DeployRequest = event("score-part.json");
    let DeployReply::Scored(scored) = handlers::deploy_function(stores, request).await.expect("score part 0") else {
        panic!("a Score request answers what the part wrote")
    };
    update_event("deploy-finish.json", &serde_json::json!({ "finish": plan }));
    let request: DeployRequest = event("deploy-finish.json");
    let DeployReply::Deployed(deployed) = handlers::deploy_function(stores, request).await.expect("finish") else {
        panic!("a Finish request answers the deployment")
    };
    assert_eq!(deployed.deployed.scores_written, scored.scores_written);
    // deploy.json is the whole deployment in one invocation (the same evaluation).
    assert!(
        matches!(event::<DeployRequest>("deploy.json"), DeployRequest::Deploy(e) if e.evaluation_key == churn.evaluation_key)
    );
    assert_eq!(deployed.result.deployed_version.as_deref(), Some(run.run_id.as_str()));
    assert_eq!(deployed.result.scores_written, deployed.deployed.scores_written);
    assert!(deployed.deployed.scores_written >= 1500);
    let champion =
        local.scores.get_item(&score::model(UseCase::Churn), score::CHAMPION).await.unwrap().expect("champion item");
    assert_eq!(champion.attr("version").and_then(|v| v.as_str()), Some(run.run_id.as_str()));

    let reject_event: EvaluateOutput = event("reject.json");
    assert_eq!((reject_event.use_case, reject_event.verdict), (UseCase::Sentiment, Verdict::Reject));
    let rejected = handlers::reject(stores, reject_event).await.expect("reject");
    assert_eq!((rejected.result.deployed_version.as_ref(), rejected.result.scores_written), (None, 0));
    let version = local
        .scores
        .get_item(&score::model(UseCase::Sentiment), &score::version(&run.run_id))
        .await
        .unwrap()
        .expect("version item");
    assert_eq!(version.attr("status").and_then(|v| v.as_str()), Some("rejected"));

    // Promote runs on the Deploy function; this run has no segment or recommend champion.
    let promote_event: DeployRequest = event("promote.json");
    assert!(matches!(&promote_event, DeployRequest::Promote { promote } if promote.run_id == run.run_id));
    let DeployReply::Promoted(promoted) = handlers::deploy_function(stores, promote_event).await.expect("promote")
    else {
        panic!("promote.json is a Promote request")
    };
    assert_eq!(promoted.outcome, PromoteOutcome::Skipped, "{promoted:?}");
    assert!(promoted.note.contains("champion"), "{}", promoted.note);

    update_event(
        "summarize.json",
        &SummarizeRequest {
            run_id: run.run_id.clone(),
            ingest: ingest.clone(),
            results: vec![deployed.result.clone(), rejected.result.clone()],
            promote: Some(PromoteLine::Done(promoted)),
        },
    );
    let summary = handlers::summarize(stores, event::<SummarizeRequest>("summarize.json")).await.expect("summarize");
    assert_eq!(summary.summary_key, keys::summary(&run.run_id));
    assert_eq!(summary.results.len(), 2);
    assert!(local.objects.get_opt(&summary.summary_key).await.unwrap().is_some());
}
