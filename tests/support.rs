//! Helpers for the end-to-end tests: a fresh embedded workspace with demo data uploaded.

use marquee_demo::{self as demo, DemoConfig};
use marquee_embedded::{DirObjectStore, SqliteScoreStore};
use marquee_pipeline::flow;
use marquee_pipeline::keys;
use marquee_pipeline::steps::{RunRequest, RunSummary, Stores};
use marquee_pipeline::store::ObjectStore;

/// An embedded object store + score store in a temporary folder.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub objects: DirObjectStore,
    pub scores: SqliteScoreStore,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = DirObjectStore::new(dir.path().join("store"));
        let scores = SqliteScoreStore::open(dir.path().join("scores.db")).expect("sqlite");
        Self { dir, objects, scores }
    }

    pub fn stores(&self) -> Stores<'_> {
        Stores { objects: &self.objects, scores: &self.scores }
    }

    /// Uploads the demo dataset under raw/demo/ and a spec (the demo one, or an edited copy).
    pub async fn upload_demo(&self, customers: usize, seed: u64, spec: &str) -> String {
        for (name, bytes) in demo::generate(&DemoConfig { customers, seed }) {
            self.objects.put(&keys::raw("demo", &name), bytes).await.expect("upload");
        }
        self.put_spec(spec).await
    }

    pub async fn put_spec(&self, spec: &str) -> String {
        let key = keys::raw("demo", "pipeline.toml");
        self.objects.put(&key, spec.as_bytes().to_vec()).await.expect("upload spec");
        key
    }

    pub async fn run(&self, run_id: &str, spec_key: &str) -> marquee_pipeline::Result<RunSummary> {
        self.run_with(run_id, spec_key, false).await
    }

    /// A run; with `retrain`, use cases whose data and spec are unchanged train too.
    pub async fn run_with(&self, run_id: &str, spec_key: &str, retrain: bool) -> marquee_pipeline::Result<RunSummary> {
        let req =
            RunRequest { run_id: run_id.into(), spec_key: spec_key.into(), trigger: Some("test".into()), retrain };
        flow::run(self.stores(), &req, &|_| {}).await
    }
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

/// The demo spec with `from` replaced by `to` (panics if `from` is absent, so edits never silently miss).
pub fn edited_spec(from: &str, to: &str) -> String {
    assert!(demo::DEMO_SPEC.contains(from), "demo spec has no `{from}`");
    demo::DEMO_SPEC.replacen(from, to, 1)
}
