//! Exactly-once runs on AWS: a trigger starts at most one run, and a dataset has at most one run
//! executing at a time. Both are conditional writes to the score store, made by Normalize before
//! any data is read:
//!
//! - **Trigger claim** `TRIGGER#<sha256 of the trigger>` / `CLAIM`: the first execution for an
//!   upload (bucket, key, version id or sequencer) or an event id writes it; a duplicate delivery
//!   finds it held by another execution and ends as a duplicate of that run.
//! - **Dataset hold** `DATASET#<dataset>` / `HOLDER`: the execution running the dataset. Another
//!   run of the dataset finds it held while that execution is still running and waits (the state
//!   machine waits a minute and asks again); once the holder's execution has ended, however it
//!   ended, the next run takes the hold over with a compare-and-swap on the holder. No release
//!   step is needed, so a run that fails, times out or is aborted never leaves its dataset locked.

use async_trait::async_trait;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::keys::score;
use crate::store::{Condition, Item, ScoreStore, StoreError, StoreResult};

/// Whether an execution is still running (Step Functions' DescribeExecution on AWS).
#[async_trait]
pub trait ExecutionStatus: Send + Sync {
    /// False once the execution has ended (succeeded, failed, timed out, aborted) or is unknown.
    async fn is_running(&self, execution: &str) -> StoreResult<bool>;
}

/// Who holds a claim or a dataset: the run and its execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    /// The execution's ARN.
    pub execution: String,
    /// When it took the claim or the hold (RFC 3339).
    pub since: String,
}

impl Holder {
    pub fn new(run_id: impl Into<String>, execution: impl Into<String>) -> Self {
        Self { run_id: run_id.into(), execution: execution.into(), since: chrono::Utc::now().to_rfc3339() }
    }

    fn item(&self, pk: String, sk: &str, extra: serde_json::Value) -> Item {
        let mut item =
            Item::new(pk, sk, json!({ "run_id": self.run_id, "execution": self.execution, "since": self.since }));
        if let serde_json::Value::Object(m) = extra {
            item.attrs.extend(m);
        }
        item
    }

    fn of(item: &Item) -> Self {
        let text = |name: &str| item.attr(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        Self { run_id: text("run_id"), execution: text("execution"), since: text("since") }
    }
}

/// The outcome of claiming a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This execution runs the trigger (first delivery, or a retry of the same execution).
    Won,
    /// Another execution claimed the same trigger first: this one is a duplicate of its run.
    Duplicate(Holder),
}

/// Claims `trigger` (e.g. `s3://bucket/raw/demo/pipeline.toml?versionId=...`) for `me`.
pub async fn claim_trigger(scores: &dyn ScoreStore, trigger: &str, me: &Holder) -> Result<Claim> {
    let pk = score::trigger(&hex::encode(&Sha256::digest(trigger.as_bytes())[..20]));
    let item = me.item(pk.clone(), score::CLAIM, json!({ "trigger": trigger }));
    match scores.put_conditional(item, Condition::NotExists).await {
        Ok(()) => return Ok(Claim::Won),
        Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(Error::store(format!("claiming the trigger {trigger}"))(e)),
    }
    let held = scores
        .get_item(&pk, score::CLAIM)
        .await
        .map_err(Error::store(format!("reading the claim of the trigger {trigger}")))?;
    Ok(match held.map(|i| Holder::of(&i)) {
        Some(h) if h.execution != me.execution => Claim::Duplicate(h),
        _ => Claim::Won,
    })
}

/// Takes the hold on `dataset` for `me`, or returns who holds it while their execution runs.
/// Idempotent for the same execution (a retried Normalize keeps its hold).
pub async fn hold_dataset(
    scores: &dyn ScoreStore,
    executions: &dyn ExecutionStatus,
    dataset: &str,
    me: &Holder,
) -> Result<Option<Holder>> {
    let pk = score::dataset(dataset);
    let context = || format!("taking the hold on dataset {dataset}");
    let current = scores.get_item(&pk, score::HOLDER).await.map_err(Error::store(context()))?.map(|i| Holder::of(&i));
    let condition = match &current {
        None => Condition::NotExists,
        Some(h) if h.execution == me.execution => return Ok(None),
        Some(h) => {
            if executions.is_running(&h.execution).await.map_err(Error::store(context()))? {
                return Ok(Some(h.clone()));
            }
            // Its execution ended: swap the hold over, unless someone else just did.
            Condition::AttrEquals { name: "execution".into(), value: Some(json!(h.execution)) }
        }
    };
    match scores.put_conditional(me.item(pk.clone(), score::HOLDER, json!({})), condition).await {
        Ok(()) => Ok(None),
        Err(StoreError::ConditionFailed { .. }) => {
            // Another waiting run took it between our read and our write.
            let now = scores.get_item(&pk, score::HOLDER).await.map_err(Error::store(context()))?;
            Ok(Some(now.map(|i| Holder::of(&i)).unwrap_or_else(|| Holder::new("(unknown)", "(unknown)"))))
        }
        Err(e) => Err(Error::store(context())(e)),
    }
}
