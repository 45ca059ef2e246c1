//! The two storage contracts every step runs over: an object store (S3 in AWS, a directory in
//! embedded mode) and a score store (DynamoDB in AWS, SQLite in embedded mode).
//!
//! Both are async because their AWS implementations are, and Lambda runs on tokio.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::pin::Pin;

/// An object's content as a stream (S3: the GetObject body as it arrives; a directory: the open
/// file), so large inputs are read without being held whole in memory.
pub type ObjectBody = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Storage failures. `NotFound` is separate so callers can treat a missing key as "absent".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object `{key}` not found")]
    NotFound { key: String },
    #[error("condition failed writing {pk}/{sk}: {reason}")]
    ConditionFailed { pk: String, sk: String, reason: String },
    /// A failure a retry may fix (throttling, a timeout, a 5xx, a dropped connection).
    #[error("{op} `{key}`: {message}")]
    Backend { op: &'static str, key: String, message: String },
    /// The service refused the request for a reason no retry fixes: permissions (AccessDenied),
    /// a missing bucket or table, a request it cannot accept.
    #[error(transparent)]
    Refused(Box<Refusal>),
}

/// A request refused for good (boxed in [`StoreError`], which every step result carries).
#[derive(Debug, thiserror::Error)]
#[error("{action} on {resource} refused: {code}: {message}")]
pub struct Refusal {
    /// The IAM action, e.g. `s3:GetObject`.
    pub action: String,
    /// What it was refused on, e.g. `arn:aws:s3:::bucket/key`.
    pub resource: String,
    /// The service's error code, e.g. `AccessDenied`.
    pub code: String,
    pub message: String,
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// The stores a step runs over.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub objects: &'a dyn ObjectStore,
    pub scores: &'a dyn ScoreStore,
}

/// What [`ObjectStore::head`] tells of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub bytes: u64,
    /// `version <id>` or `etag <etag>`: which stored object this was.
    pub version: Option<String>,
}

/// Keys -> bytes. Writes are all-or-nothing per key (no reader ever sees half an object).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()>;
    async fn get(&self, key: &str) -> StoreResult<Vec<u8>>;
    /// All keys starting with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>>;
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// A human-readable location for messages, e.g. `s3://bucket/key` or a file path.
    fn uri(&self, key: &str) -> String;

    async fn get_opt(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The object's size in bytes without reading it (S3: HeadObject), or None when absent.
    /// The default reads the object: stores that can, answer from metadata.
    async fn size(&self, key: &str) -> StoreResult<Option<u64>> {
        Ok(self.get_opt(key).await?.map(|b| b.len() as u64))
    }

    /// The object's size and, where the store keeps them, its version (S3: the version id of a
    /// versioned bucket, else the ETag), or None when absent. The default has no version.
    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        Ok(self.size(key).await?.map(|bytes| ObjectMeta { bytes, version: None }))
    }

    /// The object as a stream (`NotFound` when absent). The default reads it whole first: stores
    /// that hold large objects (S3, a directory) stream it instead.
    async fn open(&self, key: &str) -> StoreResult<ObjectBody> {
        let bytes = self.get(key).await?;
        Ok(Box::pin(std::io::Cursor::new(bytes)))
    }

    /// Bytes `start..end` of the object (`end` past its size reads to the end): one part of a
    /// large object for one worker. The default reads the object whole: S3 (a ranged GetObject)
    /// and the directory store read only the range.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> StoreResult<Vec<u8>> {
        let bytes = self.get(key).await?;
        let end = (end as usize).min(bytes.len());
        Ok(bytes.get(start as usize..end).unwrap_or_default().to_vec())
    }

    /// Stores the content of the local file `path` under `key`, all-or-nothing like [`put`](Self::put).
    /// Large outputs are written to a temp file and stored from there, so they are never held whole
    /// in memory. The default reads the file: S3 and the directory store copy it in chunks.
    async fn put_file(&self, key: &str, path: &Path) -> StoreResult<()> {
        let bytes = std::fs::read(path).map_err(|e| StoreError::Backend {
            op: "put",
            key: key.to_string(),
            message: format!("reading {}: {e}", path.display()),
        })?;
        self.put(key, bytes).await
    }
}

/// One score-store item: string partition key `pk`, string sort key `sk`, and attributes
/// (a JSON object mapped to DynamoDB attribute values by the AWS adapter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, attrs: Value) -> Self {
        let attrs = match attrs {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("value".into(), other);
                m
            }
        };
        Self { pk: pk.into(), sk: sk.into(), attrs }
    }
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.attrs.get(name)
    }
}

/// A condition for a single-item write, used where a lost update must be prevented
/// (e.g. two deployments racing to flip the champion pointer).
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Write only if no item with this pk/sk exists.
    NotExists,
    /// Write only if the stored item's attribute `name` equals `value` (or the item is absent
    /// and `value` is None).
    AttrEquals { name: String, value: Option<Value> },
}

/// pk/sk items with batched, idempotent writes (same item written twice = one item).
#[async_trait]
pub trait ScoreStore: Send + Sync {
    /// Upsert many items. Implementations batch (DynamoDB: 25 per BatchWriteItem, unprocessed
    /// items retried with backoff); the call returns only when every item is stored.
    async fn put_items(&self, items: Vec<Item>) -> StoreResult<()>;
    /// Upsert one item only if `condition` holds; `StoreError::ConditionFailed` otherwise.
    async fn put_conditional(&self, item: Item, condition: Condition) -> StoreResult<()>;
    async fn get_item(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>>;
    /// Every item of a partition, sorted by sk.
    async fn query(&self, pk: &str) -> StoreResult<Vec<Item>>;
    /// Items whose pk starts with `pk_prefix` and whose sk equals `sk` (e.g. all CUSTOMER# CHURN rows).
    /// A scan in DynamoDB: for CLI queries and tests, never on a hot path.
    async fn scan_sk(&self, pk_prefix: &str, sk: &str) -> StoreResult<Vec<Item>>;
    /// Every item, sorted by (pk, sk). A full-table scan: for exports and tests reading a whole
    /// table back, never on a hot path.
    async fn scan_all(&self) -> StoreResult<Vec<Item>>;
    async fn delete_item(&self, pk: &str, sk: &str) -> StoreResult<()>;
    /// Deletes many items (absent ones are no error). The default deletes one by one; stores
    /// batch (DynamoDB: 25 per BatchWriteItem, SQLite: one transaction).
    async fn delete_items(&self, keys: Vec<(String, String)>) -> StoreResult<()> {
        for (pk, sk) in keys {
            self.delete_item(&pk, &sk).await?;
        }
        Ok(())
    }
}
