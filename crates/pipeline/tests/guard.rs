//! The trigger claim and the dataset hold of `marquee_pipeline::guard`, over the SQLite store.

use async_trait::async_trait;
use marquee_embedded::SqliteScoreStore;
use marquee_pipeline::guard::{claim_trigger, hold_dataset, Claim, ExecutionStatus, Holder};
use marquee_pipeline::keys::score;
use marquee_pipeline::store::{ScoreStore, StoreResult};
use std::collections::HashSet;
use std::sync::Mutex;

/// The executions still running, as DescribeExecution would report them.
#[derive(Default)]
struct Running(Mutex<HashSet<String>>);

impl Running {
    fn start(&self, execution: &str) {
        self.0.lock().unwrap().insert(execution.into());
    }
    fn end(&self, execution: &str) {
        self.0.lock().unwrap().remove(execution);
    }
}

#[async_trait]
impl ExecutionStatus for Running {
    async fn is_running(&self, execution: &str) -> StoreResult<bool> {
        Ok(self.0.lock().unwrap().contains(execution))
    }
}

#[tokio::test]
async fn a_trigger_runs_once_and_a_retry_of_its_execution_still_runs() {
    let scores = SqliteScoreStore::open_in_memory().unwrap();
    let first = Holder::new("run-1", "arn:exec:1");
    let trigger = "s3://b/raw/demo/pipeline.toml?versionId=v1";
    assert_eq!(claim_trigger(&scores, trigger, &first).await.unwrap(), Claim::Won);
    assert_eq!(claim_trigger(&scores, trigger, &first).await.unwrap(), Claim::Won, "Normalize retried");
    let again = Holder::new("run-1", "arn:exec:2");
    match claim_trigger(&scores, trigger, &again).await.unwrap() {
        Claim::Duplicate(h) => assert_eq!((h.run_id.as_str(), h.execution.as_str()), ("run-1", "arn:exec:1")),
        other => panic!("a second delivery is a duplicate: {other:?}"),
    }
    let other_version = Holder::new("run-2", "arn:exec:3");
    assert_eq!(
        claim_trigger(&scores, "s3://b/raw/demo/pipeline.toml?versionId=v2", &other_version).await.unwrap(),
        Claim::Won,
        "a new upload of the same key is a new trigger"
    );
}

#[tokio::test]
async fn a_dataset_has_one_running_holder_and_passes_on_when_it_ends() {
    let scores = SqliteScoreStore::open_in_memory().unwrap();
    let running = Running::default();
    let (a, b, c) = (Holder::new("a", "arn:a"), Holder::new("b", "arn:b"), Holder::new("c", "arn:c"));
    running.start("arn:a");
    assert_eq!(hold_dataset(&scores, &running, "demo", &a).await.unwrap(), None);
    assert_eq!(hold_dataset(&scores, &running, "demo", &a).await.unwrap(), None, "idempotent for its holder");
    assert_eq!(hold_dataset(&scores, &running, "other", &b).await.unwrap(), None, "datasets are independent");
    let busy = hold_dataset(&scores, &running, "demo", &c).await.unwrap().expect("held by a");
    assert_eq!((busy.run_id.as_str(), busy.execution.as_str()), ("a", "arn:a"));

    // However a's execution ended (succeeded, failed, aborted), its hold passes on.
    running.end("arn:a");
    running.start("arn:c");
    assert_eq!(hold_dataset(&scores, &running, "demo", &c).await.unwrap(), None);
    let item = scores.get_item(&score::dataset("demo"), score::HOLDER).await.unwrap().unwrap();
    assert_eq!(item.attr("execution").and_then(|v| v.as_str()), Some("arn:c"));
    let busy = hold_dataset(&scores, &running, "demo", &a).await.unwrap().expect("now held by c");
    assert_eq!(busy.run_id, "c");
}
