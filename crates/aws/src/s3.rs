//! [`ObjectStore`] over one S3 bucket. Objects above [`MULTIPART_THRESHOLD`] are uploaded in
//! parts (aborted on failure, so no half object is ever visible); listing is paginated.

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::store_error;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use marquee_pipeline::store::{ObjectBody, ObjectMeta, ObjectStore, StoreError, StoreResult};
use std::path::Path;

/// Objects larger than this go up as a multipart upload.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// Part size of multipart uploads (S3's minimum is 5 MiB for every part but the last).
pub const PART_SIZE: usize = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct S3ObjectStore {
    client: Client,
    bucket: String,
    multipart_threshold: usize,
}

fn backend<E: std::error::Error + 'static>(op: &'static str, key: &str, e: E) -> StoreError {
    StoreError::Backend { op, key: key.to_string(), message: DisplayErrorContext(e).to_string() }
}

impl S3ObjectStore {
    /// A failed call on object `key` (`what` names it in a transient failure's message).
    fn object_error<E, R>(&self, op: &'static str, what: &str, action: &str, key: &str, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        store_error(op, what, action, || format!("arn:aws:s3:::{}/{key}", self.bucket), e)
    }

    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into(), multipart_threshold: MULTIPART_THRESHOLD }
    }

    /// Use multipart uploads from this size on (tests; never below [`PART_SIZE`]).
    pub fn with_multipart_threshold(mut self, bytes: usize) -> Self {
        self.multipart_threshold = bytes.max(PART_SIZE);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_multipart(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.object_error("create multipart upload", key, "s3:PutObject", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Backend {
                op: "create multipart upload",
                key: key.into(),
                message: "no upload id".into(),
            })?
            .to_string();
        match self.upload_parts(key, &upload_id, &bytes).await {
            Ok(parts) => {
                let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
                let completed = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(done)
                    .send()
                    .await;
                if let Err(e) = completed {
                    self.abort(key, &upload_id).await;
                    return Err(self.object_error("complete multipart upload", key, "s3:PutObject", key, e));
                }
                Ok(())
            }
            Err(e) => {
                self.abort(key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Multipart upload of a local file, one part read from disk at a time.
    async fn put_multipart_file(&self, key: &str, path: &Path, len: u64) -> StoreResult<()> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.object_error("create multipart upload", key, "s3:PutObject", key, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| StoreError::Backend {
                op: "create multipart upload",
                key: key.into(),
                message: "no upload id".into(),
            })?
            .to_string();
        let result = async {
            let mut parts = Vec::new();
            let mut offset = 0u64;
            while offset < len {
                let n = (PART_SIZE as u64).min(len - offset);
                let number = parts.len() as i32 + 1;
                let body = ByteStream::read_from()
                    .path(path)
                    .offset(offset)
                    .length(Length::Exact(n))
                    .build()
                    .await
                    .map_err(|e| backend("read part of", &format!("{key} ({})", path.display()), e))?;
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        self.object_error("upload part", &format!("{key} (part {number})"), "s3:PutObject", key, e)
                    })?;
                parts.push(
                    CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build(),
                );
                offset += n;
            }
            let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .multipart_upload(done)
                .send()
                .await
                .map_err(|e| self.object_error("complete multipart upload", key, "s3:PutObject", key, e))?;
            Ok(())
        }
        .await;
        if result.is_err() {
            self.abort(key, &upload_id).await;
        }
        result
    }

    async fn upload_parts(&self, key: &str, upload_id: &str, bytes: &[u8]) -> StoreResult<Vec<CompletedPart>> {
        let mut parts = Vec::new();
        for (i, chunk) in bytes.chunks(PART_SIZE).enumerate() {
            let number = i as i32 + 1;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    self.object_error("upload part", &format!("{key} (part {number})"), "s3:PutObject", key, e)
                })?;
            parts.push(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build());
        }
        Ok(parts)
    }

    async fn abort(&self, key: &str, upload_id: &str) {
        if let Err(e) =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await
        {
            tracing::warn!(key, upload_id, error = %DisplayErrorContext(e), "aborting multipart upload failed (a lifecycle rule cleans it up)");
        }
    }
}

fn is_not_found<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool
where
    R: std::fmt::Debug,
{
    match e {
        SdkError::ServiceError(se) => matches!(se.err().code(), Some("NoSuchKey" | "NotFound")),
        _ => false,
    }
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> StoreResult<()> {
        if bytes.len() > self.multipart_threshold {
            return self.put_multipart(key, bytes).await;
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.object_error("put", key, "s3:PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Vec<u8>> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(StoreError::NotFound { key: self.uri(key) }),
            Err(e) => return Err(self.object_error("get", key, "s3:GetObject", key, e)),
        };
        let body = out.body.collect().await.map_err(|e| backend("read body of", key, e))?;
        Ok(body.into_bytes().to_vec())
    }

    /// HeadObject: the size without the body.
    async fn size(&self, key: &str) -> StoreResult<Option<u64>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.object_error("head", key, "s3:GetObject", key, e)),
        }
    }

    async fn head(&self, key: &str) -> StoreResult<Option<ObjectMeta>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(ObjectMeta {
                bytes: out.content_length().unwrap_or(0).max(0) as u64,
                version: match (out.version_id(), out.e_tag()) {
                    (Some(v), _) if v != "null" => Some(format!("version {v}")),
                    (_, Some(etag)) => Some(format!("etag {}", etag.trim_matches('"'))),
                    _ => None,
                },
            })),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.object_error("head", key, "s3:GetObject", key, e)),
        }
    }

    /// The GetObject body as it arrives from S3 (never collected in memory).
    async fn open(&self, key: &str) -> StoreResult<ObjectBody> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(StoreError::NotFound { key: self.uri(key) }),
            Err(e) => return Err(self.object_error("get", key, "s3:GetObject", key, e)),
        };
        Ok(Box::pin(out.body.into_async_read()))
    }

    /// A ranged GetObject (`Range: bytes=start-(end-1)`).
    async fn get_range(&self, key: &str, start: u64, end: u64) -> StoreResult<Vec<u8>> {
        if end <= start {
            return Ok(Vec::new());
        }
        let range = format!("bytes={start}-{}", end - 1);
        let out = match self.client.get_object().bucket(&self.bucket).key(key).range(range).send().await {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(StoreError::NotFound { key: self.uri(key) }),
            Err(e) => return Err(self.object_error("get", key, "s3:GetObject", key, e)),
        };
        let body = out.body.collect().await.map_err(|e| backend("read body of", key, e))?;
        Ok(body.into_bytes().to_vec())
    }

    /// Streams the file from disk: one PutObject, or a multipart upload above the threshold.
    async fn put_file(&self, key: &str, path: &Path) -> StoreResult<()> {
        let len = std::fs::metadata(path).map_err(|e| backend("put", &format!("{key} ({})", path.display()), e))?.len();
        if len > self.multipart_threshold as u64 {
            return self.put_multipart_file(key, path, len).await;
        }
        let body =
            ByteStream::from_path(path).await.map_err(|e| backend("put", &format!("{key} ({})", path.display()), e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body)
            .send()
            .await
            .map_err(|e| self.object_error("put", key, "s3:PutObject", key, e))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                store_error("list", prefix, "s3:ListBucket", || format!("arn:aws:s3:::{}", self.bucket), e)
            })?;
            keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
        }
        keys.sort();
        Ok(keys)
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.object_error("delete", key, "s3:DeleteObject", key, e))?;
        Ok(())
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }
}
