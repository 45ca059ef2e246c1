//! [`ScoreStore`] over one DynamoDB table (string `pk`, string `sk`).
//!
//! - `put_items`: BatchWriteItem in batches of 25 (a few batches in flight), `UnprocessedItems`
//!   retried with full-jitter exponential backoff ([`write_batch_with_retry`], unit-tested with a
//!   fake writer). Duplicate keys are collapsed first (DynamoDB rejects them within a batch).
//! - `put_conditional`: PutItem with a ConditionExpression built from [`Condition`].
//! - Reads are strongly consistent, so a step sees what the previous step wrote.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, PutRequest, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use marquee_pipeline::store::{Condition, Item, ScoreStore, StoreError, StoreResult};
use rand::Rng;
use serde_json::Value;

use crate::attr::{from_attr, item_from_dynamo, item_to_dynamo, to_attr};
use crate::error::store_error;

/// BatchWriteItem's limit.
pub const BATCH_SIZE: usize = 25;
/// Batches in flight at once per `put_items` call.
const CONCURRENT_BATCHES: usize = 4;

fn backend<E: std::error::Error + 'static>(op: &'static str, key: &str, e: E) -> StoreError {
    StoreError::Backend { op, key: key.to_string(), message: DisplayErrorContext(e).to_string() }
}

/// A failed call on `table` (`what` names the item(s) in a transient failure's message).
fn table_error<E, R>(op: &'static str, what: &str, action: &str, table: &str, e: SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    store_error(op, what, action, || format!("table {table}"), e)
}

fn key_of(pk: &str, sk: &str) -> String {
    format!("{pk}/{sk}")
}

/// Exponential backoff with full jitter: attempt n sleeps a uniform random time in
/// `[0, min(cap, base * 2^n)]`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Calls of the writer in all (the first try included).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { base: Duration::from_millis(50), cap: Duration::from_secs(5), max_attempts: 10 }
    }
}

impl Backoff {
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << attempt.min(20)).min(self.cap);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

/// Writes one batch, re-sending whatever `send` reports back as unprocessed until nothing is
/// left or `backoff.max_attempts` calls were made. The error names what is left with `describe`.
pub async fn write_batch_with_retry<T, F, Fut>(
    batch: Vec<T>,
    backoff: Backoff,
    describe: impl Fn(&[T]) -> String,
    mut send: F,
) -> StoreResult<()>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let total = batch.len();
    let mut pending = batch;
    for attempt in 0..backoff.max_attempts {
        if pending.is_empty() {
            return Ok(());
        }
        if attempt > 0 {
            let wait = backoff.delay(attempt);
            tracing::debug!(attempt, unprocessed = pending.len(), ?wait, "retrying unprocessed items");
            tokio::time::sleep(wait).await;
        }
        pending = send(pending).await?;
    }
    if pending.is_empty() {
        return Ok(());
    }
    Err(StoreError::Backend {
        op: "batch write",
        key: format!("{} of {total} items: {}", pending.len(), describe(&pending)),
        message: format!("still unprocessed after {} attempts (table throttled?)", backoff.max_attempts),
    })
}

#[derive(Clone, Debug)]
pub struct DynamoScoreStore {
    client: Client,
    table: String,
    backoff: Backoff,
}

impl DynamoScoreStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), backoff: Backoff::default() }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Sends write requests (puts or deletes) in batches of 25, a few batches at a time, retrying
    /// unprocessed ones with backoff.
    async fn write_requests(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        let mut in_flight = tokio::task::JoinSet::new();
        let mut result = Ok(());
        for chunk in requests.chunks(BATCH_SIZE) {
            if in_flight.len() >= CONCURRENT_BATCHES {
                if let Some(joined) = in_flight.join_next().await {
                    result = result.and(self.joined(joined));
                }
            }
            if result.is_err() {
                break;
            }
            let (client, table, backoff, batch) =
                (self.client.clone(), self.table.clone(), self.backoff, chunk.to_vec());
            in_flight.spawn(async move {
                write_batch_with_retry(batch, backoff, request_keys, |b| Self::send_batch(&client, &table, b)).await
            });
        }
        while let Some(joined) = in_flight.join_next().await {
            result = result.and(self.joined(joined));
        }
        result
    }

    fn joined(&self, joined: Result<StoreResult<()>, tokio::task::JoinError>) -> StoreResult<()> {
        joined.map_err(|e| backend("batch write task", &self.table, e))?
    }

    fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S(pk.into())),
            ("sk".to_string(), AttributeValue::S(sk.into())),
        ])
    }

    /// One BatchWriteItem call; returns the unprocessed requests.
    async fn send_batch(client: &Client, table: &str, batch: Vec<WriteRequest>) -> StoreResult<Vec<WriteRequest>> {
        let n = batch.len();
        let out = client.batch_write_item().request_items(table, batch).send().await.map_err(|e| {
            table_error("batch write", &format!("{n} items in {table}"), "dynamodb:BatchWriteItem", table, e)
        })?;
        Ok(out.unprocessed_items().and_then(|m| m.get(table)).cloned().unwrap_or_default())
    }
}

/// The last write of a key wins, as it would with sequential puts.
fn dedupe_last_wins(items: Vec<Item>) -> Vec<Item> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<Item> = items.into_iter().rev().filter(|i| seen.insert((i.pk.clone(), i.sk.clone()))).collect();
    out.reverse();
    out
}

fn put_request(item: &Item) -> StoreResult<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item_to_dynamo(item)))
        .build()
        .map_err(|e| backend("build put request", &key_of(&item.pk, &item.sk), e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn condition_failed_reason(
    name: Option<&str>,
    expected: Option<&Value>,
    old: Option<&HashMap<String, AttributeValue>>,
) -> String {
    let show = |v: Option<Value>| v.map_or_else(|| "absent".to_string(), |v| v.to_string());
    match (name, old) {
        (None, _) => "item already exists".to_string(),
        (Some(name), Some(old)) => {
            let stored = old.get(name).and_then(|a| from_attr(a).ok());
            format!("attribute `{name}` is {}, expected {}", show(stored), show(expected.cloned()))
        }
        (Some(name), None) => format!("attribute `{name}` does not hold the expected {}", show(expected.cloned())),
    }
}

/// `pk/sk` of the first few requests, for error messages.
fn request_keys(requests: &[WriteRequest]) -> String {
    let key = |r: &WriteRequest| {
        let item = r.put_request().map(|p| p.item()).or_else(|| r.delete_request().map(|d| d.key()));
        let part = |name: &str| item.and_then(|i| i.get(name)).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        format!("{}/{}", part("pk"), part("sk"))
    };
    let mut shown: Vec<String> = requests.iter().take(3).map(key).collect();
    if requests.len() > 3 {
        shown.push("…".into());
    }
    shown.join(", ")
}

#[async_trait]
impl ScoreStore for DynamoScoreStore {
    async fn put_items(&self, items: Vec<Item>) -> StoreResult<()> {
        let requests = dedupe_last_wins(items).iter().map(put_request).collect::<StoreResult<Vec<_>>>()?;
        self.write_requests(requests).await
    }

    async fn delete_items(&self, keys: Vec<(String, String)>) -> StoreResult<()> {
        let mut seen = std::collections::HashSet::new();
        let requests = keys
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .map(|(pk, sk)| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(Self::key(&pk, &sk)))
                    .build()
                    .map_err(|e| backend("build delete request", &key_of(&pk, &sk), e))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write_requests(requests).await
    }

    async fn put_conditional(&self, item: Item, condition: Condition) -> StoreResult<()> {
        let key = key_of(&item.pk, &item.sk);
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_dynamo(&item)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let (name, expected) = match &condition {
            Condition::NotExists => {
                req = req.condition_expression("attribute_not_exists(#pk)").expression_attribute_names("#pk", "pk");
                (None, None)
            }
            Condition::AttrEquals { name, value: Some(value) } => {
                req = req
                    .condition_expression("#a = :v")
                    .expression_attribute_names("#a", name)
                    .expression_attribute_values(":v", to_attr(value));
                (Some(name.as_str()), Some(value))
            }
            Condition::AttrEquals { name, value: None } => {
                req = req.condition_expression("attribute_not_exists(#a)").expression_attribute_names("#a", name);
                (Some(name.as_str()), None)
            }
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se)) if matches!(se.err(), PutItemError::ConditionalCheckFailedException(_)) => {
                let old = match se.err() {
                    PutItemError::ConditionalCheckFailedException(ex) => ex.item(),
                    _ => None,
                };
                Err(StoreError::ConditionFailed {
                    pk: item.pk.clone(),
                    sk: item.sk.clone(),
                    reason: condition_failed_reason(name, expected, old),
                })
            }
            Err(e) => Err(table_error("conditional put", &key, "dynamodb:PutItem", &self.table, e)),
        }
    }

    async fn get_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error("get item", &key_of(pk, sk), "dynamodb:GetItem", &self.table, e))?;
        out.item.map(item_from_dynamo).transpose()
    }

    async fn query(&self, pk: &str) -> StoreResult<Vec<Item>> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| table_error("query", pk, "dynamodb:Query", &self.table, e))?;
            for raw in page.items.unwrap_or_default() {
                items.push(item_from_dynamo(raw)?);
            }
        }
        items.sort_by(|a, b| a.sk.cmp(&b.sk));
        Ok(items)
    }

    async fn scan_sk(&self, pk_prefix: &str, sk: &str) -> StoreResult<Vec<Item>> {
        let what = format!("{pk_prefix}*/{sk}");
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#sk = :sk AND begins_with(#pk, :prefix)")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":sk", AttributeValue::S(sk.into()))
            .expression_attribute_values(":prefix", AttributeValue::S(pk_prefix.into()))
            .consistent_read(true)
            .into_paginator()
            .send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| table_error("scan", &what, "dynamodb:Scan", &self.table, e))?;
            for raw in page.items.unwrap_or_default() {
                items.push(item_from_dynamo(raw)?);
            }
        }
        items.sort_by(|a, b| a.pk.cmp(&b.pk));
        Ok(items)
    }

    async fn scan_all(&self) -> StoreResult<Vec<Item>> {
        let mut pages = self.client.scan().table_name(&self.table).consistent_read(true).into_paginator().send();
        let mut items = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| table_error("scan", "*", "dynamodb:Scan", &self.table, e))?;
            for raw in page.items.unwrap_or_default() {
                items.push(item_from_dynamo(raw)?);
            }
        }
        items.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        Ok(items)
    }

    async fn delete_item(&self, pk: &str, sk: &str) -> StoreResult<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .send()
            .await
            .map_err(|e| table_error("delete item", &key_of(pk, sk), "dynamodb:DeleteItem", &self.table, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const FAST: Backoff = Backoff { base: Duration::from_millis(1), cap: Duration::from_millis(4), max_attempts: 5 };

    #[tokio::test]
    async fn unprocessed_items_are_resent_until_written() {
        let calls = Mutex::new(Vec::new());
        let stored = Mutex::new(Vec::new());
        // The fake writer leaves the last two items unprocessed on its first call.
        write_batch_with_retry(
            (0..25).collect::<Vec<u32>>(),
            FAST,
            |b| format!("{b:?}"),
            |batch| {
                let first = calls.lock().unwrap().is_empty();
                calls.lock().unwrap().push(batch.len());
                let (done, left) = if first { batch.split_at(batch.len() - 2) } else { (&batch[..], &[][..]) };
                stored.lock().unwrap().extend_from_slice(done);
                let left = left.to_vec();
                async move { Ok(left) }
            },
        )
        .await
        .expect("written after one retry");
        assert_eq!(*calls.lock().unwrap(), vec![25, 2]);
        let mut all = stored.into_inner().unwrap();
        all.sort();
        assert_eq!(all, (0..25).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts_naming_what_is_left() {
        let calls = AtomicUsize::new(0);
        let err = write_batch_with_retry(
            vec![1, 2, 3],
            FAST,
            |b| format!("{b:?}"),
            |batch| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { Ok(batch) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert!(err.to_string().contains("3 of 3 items: [1, 2, 3]"), "{err}");
    }

    #[tokio::test]
    async fn writer_errors_propagate_without_retry() {
        let calls = AtomicUsize::new(0);
        let err = write_batch_with_retry(
            vec![1],
            FAST,
            |b| format!("{b:?}"),
            |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err::<Vec<i32>, _>(StoreError::Backend {
                        op: "batch write",
                        key: "t".into(),
                        message: "AccessDenied".into(),
                    })
                }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(err.to_string().contains("AccessDenied"));
    }

    #[test]
    fn backoff_is_bounded_by_the_cap() {
        let b = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1), max_attempts: 3 };
        for attempt in 0..40 {
            assert!(b.delay(attempt) <= Duration::from_secs(1));
        }
        assert!(b.delay(0) <= Duration::from_millis(100));
    }

    #[test]
    fn duplicate_keys_collapse_to_the_last_write() {
        let items = vec![
            Item::new("a", "1", json!({"v": 1})),
            Item::new("b", "1", json!({"v": 2})),
            Item::new("a", "1", json!({"v": 3})),
        ];
        let out = dedupe_last_wins(items);
        assert_eq!(out.len(), 2);
        assert_eq!(out.iter().find(|i| i.pk == "a").unwrap().attr("v"), Some(&json!(3)));
    }

    #[test]
    fn condition_failure_reasons_name_the_attribute() {
        let old = HashMap::from([("version".to_string(), AttributeValue::S("v2".into()))]);
        let r = condition_failed_reason(Some("version"), Some(&json!("v1")), Some(&old));
        assert_eq!(r, "attribute `version` is \"v2\", expected \"v1\"");
        assert_eq!(condition_failed_reason(None, None, None), "item already exists");
    }
}
