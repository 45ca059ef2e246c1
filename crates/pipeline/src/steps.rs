//! The pipeline steps as library functions over the two store traits. Each step takes a small
//! serialisable request and returns a small serialisable result holding object-store keys, never
//! data: the same JSON travels between Step Functions states and between steps in embedded mode.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::ingest::{self, QualityReport, QuarantinedRow, TableProfile};
use crate::keys::{self, score};
use crate::spec::{Spec, UseCase};
use crate::store::{Condition, Item, ObjectBody, ObjectStore, ScoreStore, StoreError};
use crate::usecase::common::{Criterion, Evaluation};
use crate::usecase::{self, Files, Tables};

/// The stores a step runs over.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub objects: &'a dyn ObjectStore,
    pub scores: &'a dyn ScoreStore,
}

/// Starts a run: which spec, and the run id every key of the run is written under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: String,
    /// Object-store key of the pipeline spec (TOML).
    pub spec_key: String,
    /// What started the run ("upload", "schedule", "cli"), for the record.
    #[serde(default)]
    pub trigger: Option<String>,
}

/// A new run id: UTC time plus a short random suffix, sortable and unique enough for humans.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_subsec_nanos() as u64 ^ std::process::id() as u64;
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), nanos & 0xff_ffff)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub run_id: String,
    pub quality_passed: bool,
    /// Why the quality gate failed (file, line, column, reason of the first problem).
    pub quality_message: Option<String>,
    pub rows_ok: usize,
    pub rows_quarantined: usize,
    pub manifest_key: String,
    pub profile_key: String,
    pub quality_key: String,
    pub quarantine_key: String,
    pub use_cases: Vec<UseCase>,
}

/// Written last by ingest: the validated tables of a run and their fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub dataset: String,
    pub tables: BTreeMap<String, ManifestTable>,
    pub ingested_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTable {
    pub key: String,
    pub source_key: String,
    pub rows: usize,
    /// sha256 of the uploaded file: same bytes, same fingerprint, same model.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseTask {
    pub run_id: String,
    pub use_case: UseCase,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrepareOutput {
    pub run_id: String,
    pub tasks: Vec<UseCaseTask>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub model_key: String,
    pub fit_seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every criterion holds: deploy.
    Deploy,
    /// A technical or business criterion, or the champion comparison, failed.
    Reject,
    /// Same data and parameters as the champion: nothing to deploy.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub verdict: Verdict,
    pub metric: String,
    pub value: f64,
    pub champion_version: Option<String>,
    pub champion_value: Option<f64>,
    pub reasons: Vec<String>,
    pub evaluation_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub scores_written: usize,
    pub champion_key: String,
}

/// The champion pointer, `models/<use_case>/champion.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Champion {
    pub use_case: UseCase,
    pub version: String,
    pub run_id: String,
    pub model_key: String,
    pub evaluation_key: String,
    pub fingerprint: String,
    pub metric: String,
    pub value: f64,
    pub deployed_at: String,
}

/// The evaluation document of a challenger, `runs/<run>/models/<uc>/evaluation.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    pub run_id: String,
    pub use_case: UseCase,
    pub version: String,
    pub fingerprint: String,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub challenger: Evaluation,
    pub champion: Option<ChampionComparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChampionComparison {
    pub version: String,
    pub value: Option<f64>,
    pub note: String,
}

// ---------------------------------------------------------------- storage helpers

async fn get(stores: Stores<'_>, run_id: &str, key: &str) -> Result<Vec<u8>> {
    stores.objects.get(key).await.map_err(|source| Error::Store {
        run_id: run_id.into(),
        context: format!("reading {}", stores.objects.uri(key)),
        source,
    })
}

async fn put(stores: Stores<'_>, run_id: &str, key: &str, bytes: Vec<u8>) -> Result<()> {
    stores.objects.put(key, bytes).await.map_err(|source| Error::Store {
        run_id: run_id.into(),
        context: format!("writing {}", stores.objects.uri(key)),
        source,
    })
}

async fn put_file(stores: Stores<'_>, run_id: &str, key: &str, path: &Path) -> Result<()> {
    stores.objects.put_file(key, path).await.map_err(|source| Error::Store {
        run_id: run_id.into(),
        context: format!("writing {}", stores.objects.uri(key)),
        source,
    })
}

async fn get_json<T: for<'de> Deserialize<'de>>(stores: Stores<'_>, run_id: &str, key: &str) -> Result<T> {
    let bytes = get(stores, run_id, key).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Artifact {
        run_id: run_id.into(),
        key: key.into(),
        message: e.to_string(),
    })
}

async fn put_json<T: Serialize>(stores: Stores<'_>, run_id: &str, key: &str, value: &T) -> Result<()> {
    put(stores, run_id, key, serde_json::to_vec_pretty(value).expect("serialisable")).await
}

fn scores_err(run_id: &str, context: &str) -> impl FnOnce(StoreError) -> Error {
    let (run_id, context) = (run_id.to_string(), context.to_string());
    move |source| Error::Store { run_id, context, source }
}

/// The spec as this run saw it (ingest saved a copy under the run prefix).
pub async fn load_run_spec(stores: Stores<'_>, run_id: &str) -> Result<Spec> {
    let key = keys::run_spec(run_id);
    let text = get(stores, run_id, &key).await?;
    Spec::from_toml(&String::from_utf8_lossy(&text), &stores.objects.uri(&key))
}

async fn load_tables(stores: Stores<'_>, run_id: &str, manifest: &Manifest, names: &[String]) -> Result<Tables> {
    let mut tables = Tables::default();
    for name in names {
        if tables.0.contains_key(name) {
            continue;
        }
        let entry = manifest
            .tables
            .get(name)
            .ok_or_else(|| Error::Invalid(format!("table `{name}` is not in the run's manifest")))?;
        let bytes = get(stores, run_id, &entry.key).await?;
        tables.0.insert(name.clone(), Frame::from_csv(&bytes, &entry.key)?);
    }
    Ok(tables)
}

async fn load_files(stores: Stores<'_>, run_id: &str, uc: UseCase) -> Result<Files> {
    let prefix = keys::prepared(run_id, uc, "");
    let mut files = Files::new();
    let listed = stores.objects.list(&prefix).await.map_err(scores_err(run_id, "listing prepared files"))?;
    for key in listed {
        let bytes = get(stores, run_id, &key).await?;
        files.insert(key[prefix.len()..].to_string(), bytes);
    }
    Ok(files)
}

/// Same spec section + same input bytes = same fingerprint (the champion check's "unchanged").
fn fingerprint(spec: &Spec, uc: UseCase, manifest: &Manifest) -> String {
    let mut h = Sha256::new();
    h.update(usecase::spec_section(spec, uc).to_string());
    for name in usecase::needed_tables(spec, uc) {
        if let Some(t) = manifest.tables.get(&name) {
            h.update(name.as_bytes());
            h.update(t.sha256.as_bytes());
        }
    }
    hex::encode(h.finalize())
}

// ---------------------------------------------------------------- ingest

/// Data understanding: validate and profile every table of the spec, quarantine bad rows, and
/// apply the quality gate. A failed gate is a normal result (`quality_passed: false`) so the
/// report is still written; the orchestrator turns it into a failed run.
pub async fn ingest(stores: Stores<'_>, req: &RunRequest) -> Result<IngestOutput> {
    let run_id = req.run_id.as_str();
    let wrap = |e: Error| e.in_step(run_id, "ingest", None);
    let spec_bytes = get(stores, run_id, &req.spec_key).await.map_err(wrap)?;
    let spec_text = String::from_utf8(spec_bytes)
        .map_err(|e| wrap(Error::spec(stores.objects.uri(&req.spec_key), format!("not UTF-8: {e}"))))?;
    let spec = Spec::from_toml(&spec_text, &stores.objects.uri(&req.spec_key)).map_err(wrap)?;
    put(stores, run_id, &keys::run_spec(run_id), spec_text.into_bytes()).await.map_err(wrap)?;

    let labels = usecase::label_columns(&spec);
    let now = chrono::Utc::now().timestamp();
    let budget = ingest::InputBudget::resolve(spec.ingest.max_input_bytes);
    // Validated copies and the quarantine are streamed to temp files (Lambda: /tmp) and stored
    // from there: neither the input nor the output is ever held whole in memory.
    sweep_stale_temp_dirs();
    let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempdir().map_err(|e| {
        wrap(Error::Invalid(format!("creating a temp folder in {}: {e}", std::env::temp_dir().display())))
    })?;
    let quarantine_path = tmp.path().join("quarantine.csv");
    let mut quarantine = Some(
        QuarantineFile::create(&quarantine_path)
            .map_err(|e| wrap(Error::Invalid(format!("creating {}: {e}", quarantine_path.display()))))?,
    );
    let mut profiles: Vec<TableProfile> = Vec::new();
    let mut quality = Vec::new();
    let mut first_bad: BTreeMap<String, QuarantinedRow> = BTreeMap::new();
    let mut rows_quarantined = 0usize;
    let mut manifest = Manifest {
        run_id: run_id.into(),
        dataset: spec.pipeline.dataset.clone(),
        tables: BTreeMap::new(),
        ingested_at: chrono::Utc::now().to_rfc3339(),
    };

    // Ratings and viewing rows must name a known title: the titles table goes first, and its ids
    // are checked as the other tables stream by.
    let mut order: Vec<&String> = spec.tables.keys().collect();
    if let Some(r) = &spec.recommend {
        order.sort_by_key(|n| **n != r.titles);
    }
    let mut known_titles: Option<Arc<HashSet<String>>> = None;

    for (index, name) in order.into_iter().enumerate() {
        let tspec = &spec.tables[name];
        let source_key = keys::raw(&spec.pipeline.dataset, &tspec.file);
        let file_label = stores.objects.uri(&source_key);
        let refused = |problem: String| ingest::TableQuality {
            table: name.clone(),
            file: file_label.clone(),
            rows_read: 0,
            rows_ok: 0,
            rows_quarantined: 0,
            bad_share: 0.0,
            reasons: BTreeMap::new(),
            problems: vec![problem],
        };
        let size = stores.objects.size(&source_key).await.map_err(scores_err(run_id, "reading input")).map_err(wrap)?;
        let Some(size) = size else {
            quality.push(refused(format!("{file_label}: input file not found")));
            continue;
        };
        if let Some(b) = budget.as_ref().filter(|b| size > b.bytes) {
            tracing::warn!(run_id, table = %name, size, budget = b.bytes, "input above the ingest memory budget: not read");
            quality.push(refused(b.too_large(&file_label, size)));
            continue;
        }
        let body = stores.objects.open(&source_key).await.map_err(scores_err(run_id, "reading input")).map_err(wrap)?;
        let recommend = spec.recommend.as_ref();
        let references = recommend
            .filter(|r| *name == r.ratings || Some(name) == r.viewing.as_ref())
            .and_then(|r| Some((r.item.clone(), known_titles.clone()?, spec.tables.get(&r.titles)?.file.clone())));
        let job = TableJob {
            table: name.clone(),
            spec: tspec.clone(),
            file: file_label.clone(),
            labels: labels.get(name).cloned().unwrap_or_default(),
            now,
            budget: budget.clone(),
            references,
            collect: recommend.filter(|r| *name == r.titles).map(|r| r.title_id.clone()),
            out: tmp.path().join(format!("table-{index}.csv")),
        };
        let out = job.out.clone();
        let handle = tokio::runtime::Handle::current();
        let q = quarantine.take().expect("the quarantine file is given back after every table");
        let started = Instant::now();
        let (result, q) = tokio::task::spawn_blocking(move || job.run(handle, body, q))
            .await
            .map_err(|e| wrap(Error::Invalid(format!("ingesting {file_label}: the parser thread failed: {e}"))))?;
        quarantine = Some(q);
        let t = result.map_err(|e| {
            wrap(Error::Invalid(format!(
                "ingesting {file_label}: writing the validated copy to {}: {e} (temp space; on Lambda, /tmp is the function's ephemeral storage)",
                tmp.path().display()
            )))
        })?;
        tracing::info!(
            run_id,
            table = %name,
            bytes = t.bytes_read,
            rows_ok = t.quality.rows_ok,
            quarantined = t.quality.rows_quarantined,
            seconds = started.elapsed().as_secs_f64(),
            "table ingested"
        );
        put_file(stores, run_id, &keys::ingested(run_id, name), &out).await.map_err(wrap)?;
        let _ = std::fs::remove_file(&out);
        if recommend.is_some_and(|r| *name == r.titles) {
            known_titles = Some(Arc::new(t.collected));
        }
        manifest.tables.insert(
            name.clone(),
            ManifestTable { key: keys::ingested(run_id, name), source_key, rows: t.quality.rows_ok, sha256: t.sha256 },
        );
        if let Some(f) = t.first_quarantined {
            first_bad.insert(name.clone(), f);
        }
        rows_quarantined += t.quality.rows_quarantined;
        profiles.push(t.profile);
        quality.push(t.quality);
    }
    profiles.sort_by(|a, b| a.table.cmp(&b.table));
    quality.sort_by(|a, b| a.table.cmp(&b.table));

    for q in quality.iter_mut() {
        ingest::apply_gate(q, &spec.quality, first_bad.get(&q.table));
        if let Some(t) = manifest.tables.get_mut(&q.table) {
            t.rows = q.rows_ok;
        }
    }
    let report = QualityReport { passed: quality.iter().all(|q| q.problems.is_empty()), tables: quality };

    quarantine
        .take()
        .expect("quarantine file")
        .finish()
        .map_err(|e| wrap(Error::Invalid(format!("writing {}: {e}", quarantine_path.display()))))?;
    put_json(stores, run_id, &keys::profile(run_id), &profiles).await.map_err(wrap)?;
    put_json(stores, run_id, &keys::quality(run_id), &report).await.map_err(wrap)?;
    put_file(stores, run_id, &keys::quarantine(run_id), &quarantine_path).await.map_err(wrap)?;
    if report.passed {
        put_json(stores, run_id, &keys::ingest_manifest(run_id), &manifest).await.map_err(wrap)?;
    }
    tracing::info!(
        run_id,
        rows_ok = report.tables.iter().map(|t| t.rows_ok).sum::<usize>(),
        quarantined = rows_quarantined,
        passed = report.passed,
        "ingest done"
    );
    Ok(IngestOutput {
        run_id: run_id.into(),
        quality_passed: report.passed,
        quality_message: report.failure_message(),
        rows_ok: report.tables.iter().map(|t| t.rows_ok).sum(),
        rows_quarantined,
        manifest_key: keys::ingest_manifest(run_id),
        profile_key: keys::profile(run_id),
        quality_key: keys::quality(run_id),
        quarantine_key: keys::quarantine(run_id),
        use_cases: spec.use_cases(),
    })
}

const TEMP_PREFIX: &str = "marquee-ingest-"; // also deploy's scoring temp files (swept alike)

/// Removes temp folders of ingests that were killed (a Lambda timeout skips the cleanup, and a
/// warm container keeps its /tmp): any older than an hour, longer than a Lambda can run.
fn sweep_stale_temp_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let stale = e.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_PREFIX))
            && e.metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
        if stale {
            // Folders of ingest, files of deploy's streamed scoring.
            let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
        }
    }
}

/// The quarantine CSV of a run (table, file, line, column, reason, raw), appended table by table.
struct QuarantineFile(csv::Writer<std::io::BufWriter<std::fs::File>>);

impl QuarantineFile {
    fn create(path: &Path) -> std::io::Result<Self> {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(std::fs::File::create(path)?));
        w.write_record(["table", "file", "line", "column", "reason", "raw"])?;
        Ok(Self(w))
    }

    fn finish(mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Validated rows to the table's temp file, quarantined rows to the run's quarantine file.
struct FileSink<'a> {
    rows: csv::Writer<std::io::BufWriter<std::fs::File>>,
    quarantine: &'a mut QuarantineFile,
}

impl ingest::IngestSink for FileSink<'_> {
    fn row(&mut self, values: Vec<String>) -> std::io::Result<()> {
        Ok(self.rows.write_record(&values)?)
    }
    fn quarantine(&mut self, r: QuarantinedRow) -> std::io::Result<()> {
        Ok(self.quarantine.0.write_record([&r.table, &r.file, &r.line.to_string(), &r.column, &r.reason, &r.raw])?)
    }
}

/// One table's ingest, run on a blocking thread (CSV parsing is synchronous; the object body is
/// pulled from the async store through [`BlockingReader`]).
struct TableJob {
    table: String,
    spec: crate::spec::TableSpec,
    file: String,
    labels: Vec<String>,
    now: i64,
    budget: Option<ingest::InputBudget>,
    /// (item column, known title ids, titles file) for ratings and viewing.
    references: Option<(String, Arc<HashSet<String>>, String)>,
    collect: Option<String>,
    out: PathBuf,
}

impl TableJob {
    fn run(
        self,
        handle: tokio::runtime::Handle,
        body: ObjectBody,
        mut quarantine: QuarantineFile,
    ) -> (std::io::Result<ingest::StreamedTable>, QuarantineFile) {
        let result = (|| {
            let mut rows = csv::Writer::from_writer(std::io::BufWriter::with_capacity(
                256 * 1024,
                std::fs::File::create(&self.out)?,
            ));
            rows.write_record(self.spec.columns().iter().map(|(c, _)| c.as_str()))?;
            let opts = ingest::StreamOptions {
                budget: self.budget.as_ref(),
                references: self.references.as_ref().map(|(column, known, in_file)| ingest::References {
                    column,
                    known,
                    in_file,
                }),
                collect: self.collect.as_deref(),
            };
            let input = std::io::BufReader::with_capacity(1024 * 1024, BlockingReader { handle, body });
            let mut sink = FileSink { rows, quarantine: &mut quarantine };
            let t = ingest::ingest_stream(
                &self.table,
                &self.spec,
                &self.file,
                input,
                &self.labels,
                self.now,
                &opts,
                &mut sink,
            )?;
            sink.rows.flush()?;
            Ok(t)
        })();
        (result, quarantine)
    }
}

/// A synchronous reader over an async object body, for a blocking thread: each read waits on
/// the runtime (the S3 response body arrives chunk by chunk; nothing is buffered beyond a read).
struct BlockingReader {
    handle: tokio::runtime::Handle,
    body: ObjectBody,
}

impl std::io::Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let body = &mut self.body;
        self.handle.block_on(std::future::poll_fn(|cx| {
            let mut rb = tokio::io::ReadBuf::new(buf);
            match body.as_mut().poll_read(cx, &mut rb) {
                std::task::Poll::Ready(Ok(())) => std::task::Poll::Ready(Ok(rb.filled().len())),
                std::task::Poll::Ready(Err(e)) => std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => std::task::Poll::Pending,
            }
        }))
    }
}

// ---------------------------------------------------------------- prepare

/// Data preparation for every use case of the spec: seeded splits and fitted encoders.
pub async fn prepare(stores: Stores<'_>, run_id: &str) -> Result<PrepareOutput> {
    let wrap = |e: Error| e.in_step(run_id, "prepare", None);
    let spec = load_run_spec(stores, run_id).await.map_err(wrap)?;
    let manifest: Manifest = get_json(stores, run_id, &keys::ingest_manifest(run_id)).await.map_err(wrap)?;
    let mut names: Vec<String> =
        spec.use_cases().into_iter().flat_map(|uc| usecase::needed_tables(&spec, uc)).collect();
    names.sort();
    names.dedup();
    let tables = load_tables(stores, run_id, &manifest, &names).await.map_err(wrap)?;
    let mut tasks = Vec::new();
    for uc in spec.use_cases() {
        let wrap = |e: Error| e.in_step(run_id, "prepare", Some(uc.as_str()));
        let files = usecase::prepare(uc, &spec, &tables).map_err(wrap)?;
        for (name, bytes) in files.0 {
            put(stores, run_id, &keys::prepared(run_id, uc, &name), bytes).await.map_err(wrap)?;
        }
        tasks.push(UseCaseTask { run_id: run_id.into(), use_case: uc });
    }
    Ok(PrepareOutput { run_id: run_id.into(), tasks })
}

// ---------------------------------------------------------------- train

pub async fn train(stores: Stores<'_>, task: &UseCaseTask) -> Result<TrainOutput> {
    let (run_id, uc) = (task.run_id.as_str(), task.use_case);
    let wrap = |e: Error| e.in_step(run_id, "train", Some(uc.as_str()));
    let spec = load_run_spec(stores, run_id).await.map_err(wrap)?;
    let manifest: Manifest = get_json(stores, run_id, &keys::ingest_manifest(run_id)).await.map_err(wrap)?;
    let files = load_files(stores, run_id, uc).await.map_err(wrap)?;
    let tables = if uc == UseCase::Recommend {
        let titles = spec.recommend.as_ref().map(|r| vec![r.titles.clone()]).unwrap_or_default();
        load_tables(stores, run_id, &manifest, &titles).await.map_err(wrap)?
    } else {
        Tables::default()
    };
    let started = Instant::now();
    let model = usecase::train(uc, &spec, &files, &tables, &fingerprint(&spec, uc, &manifest)).map_err(wrap)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let model_key = keys::run_model(run_id, uc, "model.json");
    put(stores, run_id, &model_key, model).await.map_err(wrap)?;
    tracing::info!(run_id, use_case = %uc, fit_seconds, "trained");
    Ok(TrainOutput { run_id: run_id.into(), use_case: uc, model_key, fit_seconds })
}

// ---------------------------------------------------------------- evaluate

fn model_fingerprint(model: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Fp {
        #[serde(default)]
        fingerprint: String,
    }
    serde_json::from_slice::<Fp>(model).map(|f| f.fingerprint).unwrap_or_default()
}

pub async fn read_champion(stores: Stores<'_>, run_id: &str, uc: UseCase) -> Result<Option<Champion>> {
    let key = keys::champion(uc);
    let pointer: Option<Champion> =
        match stores.objects.get_opt(&key).await.map_err(scores_err(run_id, "reading champion"))? {
            None => None,
            Some(b) => Some(serde_json::from_slice(&b).map_err(|e| Error::Artifact {
                run_id: run_id.into(),
                key: key.clone(),
                message: e.to_string(),
            })?),
        };
    // The score store's CHAMPION item is the authority (it is the conditional write). When it
    // names another version than the pointer, that deployment stopped between flipping the item
    // and writing the pointer: roll the pointer forward from the version's deployed evaluation.
    let Some(version) = champion_item_version(stores, run_id, uc).await? else { return Ok(pointer) };
    if pointer.as_ref().is_some_and(|p| p.version == version) {
        return Ok(pointer);
    }
    let evaluation_key = keys::deployed(uc, &version, "evaluation.json");
    let rec: EvaluationRecord = get_json(stores, run_id, &evaluation_key).await?;
    let champion = champion_record(&rec, keys::deployed(uc, &version, "model.json"), evaluation_key);
    put_json(stores, run_id, &key, &champion).await?;
    tracing::warn!(run_id, use_case = %uc, version, "champion pointer lagged the champion item: rolled forward");
    Ok(Some(champion))
}

/// Evaluation: technical metrics, business criteria, and the comparison with the current
/// champion on this run's test split. Writes the evaluation document and a readable summary.
pub async fn evaluate(stores: Stores<'_>, task: &UseCaseTask) -> Result<EvaluateOutput> {
    let (run_id, uc) = (task.run_id.as_str(), task.use_case);
    let wrap = |e: Error| e.in_step(run_id, "evaluate", Some(uc.as_str()));
    let spec = load_run_spec(stores, run_id).await.map_err(wrap)?;
    let files = load_files(stores, run_id, uc).await.map_err(wrap)?;
    let model = get(stores, run_id, &keys::run_model(run_id, uc, "model.json")).await.map_err(wrap)?;
    let fp = model_fingerprint(&model);
    let mut challenger = usecase::evaluate(uc, &spec, &model, &files).map_err(wrap)?;
    let primary = challenger.primary.clone();

    let champion = read_champion(stores, run_id, uc).await.map_err(wrap)?;
    let mut verdict = None;
    let comparison = match &champion {
        None => None,
        Some(ch) if ch.fingerprint == fp && !fp.is_empty() => {
            verdict = Some(Verdict::Unchanged);
            Some(ChampionComparison {
                version: ch.version.clone(),
                value: Some(ch.value),
                note: "same data and parameters as the champion".into(),
            })
        }
        Some(ch) => {
            let champ_model = get(stores, run_id, &ch.model_key).await.map_err(wrap)?;
            // Compare on this run's test split; a champion that cannot score it (e.g. the schema
            // changed) is compared by the metric it recorded on its own test split instead.
            let (value, note) = match usecase::evaluate(uc, &spec, &champ_model, &files) {
                Ok(e) => (e.primary.value, "evaluated on this run's test split".to_string()),
                Err(e) => {
                    (ch.value, format!("recorded metric of the champion (it cannot score this run's test split: {e})"))
                }
            };
            let tol = champion_tolerance(&spec, uc);
            let (op, threshold) = if primary.higher_is_better { (">=", value - tol) } else { ("<=", value + tol) };
            challenger.criteria.push(Criterion::check(
                "champion",
                &format!("{} vs champion {} ({value:.4}, tolerance {tol})", primary.name, ch.version),
                primary.value,
                op,
                threshold,
            ));
            Some(ChampionComparison { version: ch.version.clone(), value: Some(value), note })
        }
    };
    let reasons: Vec<String> = match verdict {
        Some(Verdict::Unchanged) => vec![format!(
            "unchanged: same data and parameters as champion {}",
            champion.as_ref().map_or("", |c| c.version.as_str())
        )],
        _ => challenger
            .criteria
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} criterion failed: {}", c.kind, c.describe()))
            .collect(),
    };
    let verdict = verdict.unwrap_or(if reasons.is_empty() { Verdict::Deploy } else { Verdict::Reject });
    let record = EvaluationRecord {
        run_id: run_id.into(),
        use_case: uc,
        version: run_id.into(),
        fingerprint: fp,
        verdict,
        reasons: reasons.clone(),
        challenger,
        champion: comparison.clone(),
    };
    let evaluation_key = keys::run_model(run_id, uc, "evaluation.json");
    put_json(stores, run_id, &evaluation_key, &record).await.map_err(wrap)?;
    put(stores, run_id, &keys::run_model(run_id, uc, "summary.md"), summary_markdown(&record).into_bytes())
        .await
        .map_err(wrap)?;
    put_json(stores, run_id, &keys::run_model(run_id, uc, "metrics.json"), &json!({ "primary": record.challenger.primary, "criteria": record.challenger.criteria, "details": record.challenger.details })).await.map_err(wrap)?;
    tracing::info!(run_id, use_case = %uc, metric = %primary.name, value = primary.value, ?verdict, "evaluated");
    Ok(EvaluateOutput {
        run_id: run_id.into(),
        use_case: uc,
        verdict,
        metric: primary.name,
        value: primary.value,
        champion_version: comparison.as_ref().map(|c| c.version.clone()),
        champion_value: comparison.and_then(|c| c.value),
        reasons,
        evaluation_key,
    })
}

fn champion_tolerance(spec: &Spec, uc: UseCase) -> f64 {
    match uc {
        UseCase::Segment => spec.segment.as_ref().map(|s| s.champion.tolerance),
        UseCase::Churn => spec.churn.as_ref().map(|s| s.champion.tolerance),
        UseCase::Recommend => spec.recommend.as_ref().map(|s| s.champion.tolerance),
        UseCase::Sentiment => spec.sentiment.as_ref().map(|s| s.champion.tolerance),
    }
    .unwrap_or(0.0)
}

fn summary_markdown(r: &EvaluationRecord) -> String {
    let mut s = format!(
        "# {} — run {}\n\nVerdict: **{:?}**\n\nPrimary metric: {} = {:.4}\n\n| kind | criterion | value | needs | passed |\n|---|---|---|---|---|\n",
        r.use_case, r.run_id, r.verdict, r.challenger.primary.name, r.challenger.primary.value
    );
    for c in &r.challenger.criteria {
        s += &format!(
            "| {} | {} | {:.4} | {} {:.4} | {} |\n",
            c.kind,
            c.name,
            c.value,
            c.op,
            c.threshold,
            if c.passed { "yes" } else { "NO" }
        );
    }
    if let Some(ch) = &r.champion {
        s += &format!("\nChampion {}: {}\n", ch.version, ch.note);
    }
    for reason in &r.reasons {
        s += &format!("\n- {reason}");
    }
    s.push('\n');
    s
}

// ---------------------------------------------------------------- deploy / reject

fn version_item(rec: &EvaluationRecord, status: &str, artifact_uri: &str) -> Item {
    Item::new(
        score::model(rec.use_case),
        score::version(&rec.version),
        json!({
            "use_case": rec.use_case,
            "version": rec.version,
            "run_id": rec.run_id,
            "status": status,
            "metric": rec.challenger.primary.name,
            "value": rec.challenger.primary.value,
            "criteria": rec.challenger.criteria,
            "reasons": rec.reasons,
            "artifact_uri": artifact_uri,
            "data_fingerprint": rec.fingerprint,
            "recorded_at": chrono::Utc::now().to_rfc3339(),
        }),
    )
}

/// Deployment: copy the artifact to `models/<uc>/<version>/`, write batch scores, record the
/// version, then flip the champion (score-store item with a conditional write, pointer object last).
pub async fn deploy(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<DeployOutput> {
    let (run_id, uc) = (eval.run_id.as_str(), eval.use_case);
    let wrap = |e: Error| e.in_step(run_id, "deploy", Some(uc.as_str()));
    let rec: EvaluationRecord = get_json(stores, run_id, &eval.evaluation_key).await.map_err(wrap)?;
    if rec.verdict != Verdict::Deploy {
        return Err(wrap(Error::Invalid(format!(
            "verdict is {:?}, not deploy: {}",
            rec.verdict,
            rec.reasons.join("; ")
        ))));
    }
    let version = rec.version.clone();
    let spec = load_run_spec(stores, run_id).await.map_err(wrap)?;
    let model = get(stores, run_id, &keys::run_model(run_id, uc, "model.json")).await.map_err(wrap)?;
    let model_key = keys::deployed(uc, &version, "model.json");
    let evaluation_key = keys::deployed(uc, &version, "evaluation.json");
    put(stores, run_id, &model_key, model.clone()).await.map_err(wrap)?;
    put_json(stores, run_id, &evaluation_key, &rec).await.map_err(wrap)?;

    // Another deployment may have become champion since this run evaluated against the old one:
    // stop before a single score is written (the conditional flip below closes the last window).
    let expected = eval.champion_version.clone();
    let current = champion_item_version(stores, run_id, uc).await.map_err(wrap)?;
    if current.is_some() && current != expected && current.as_deref() != Some(version.as_str()) {
        // The same condition the flip would fail, checked before anything is written (so the Lambda
        // reports it as Marquee.ConditionFailed, which is not retried).
        return Err(wrap(Error::Store {
            run_id: run_id.into(),
            context: "the champion changed since this run was evaluated; no score was written: run the \
                      pipeline again to evaluate against the new champion"
                .into(),
            source: StoreError::ConditionFailed {
                pk: score::model(uc),
                sk: score::CHAMPION.into(),
                reason: format!(
                    "evaluated against {}, now {}",
                    expected.as_deref().unwrap_or("no champion"),
                    current.as_deref().unwrap_or("none")
                ),
            },
        }));
    }

    let scores_written = score_and_write(stores, run_id, &spec, uc, &model, &rec).await.map_err(wrap)?;
    let artifact_uri = stores.objects.uri(&model_key);
    stores
        .scores
        .put_items(vec![version_item(&rec, "deployed", &artifact_uri)])
        .await
        .map_err(scores_err(run_id, "recording version"))
        .map_err(wrap)?;

    // The champion flips last. The condition stops two deployments racing from both winning.
    if current.as_deref() != Some(version.as_str()) {
        let item = Item::new(
            score::model(uc),
            score::CHAMPION,
            json!({ "version": version, "run_id": run_id, "artifact_uri": artifact_uri, "metric": rec.challenger.primary.name, "value": rec.challenger.primary.value }),
        );
        let flip = stores
            .scores
            .put_conditional(
                item,
                Condition::AttrEquals { name: "version".into(), value: expected.map(serde_json::Value::String) },
            )
            .await;
        if let Err(lost) = flip {
            // Lost the race (or the write failed): this run's scores overwrote the champion's.
            // Put the champion's back; a failed write is then retried as a whole by the caller.
            let why = match lost {
                StoreError::ConditionFailed { .. } => "another deployment won the race",
                _ => "the conditional write failed",
            };
            let winner = champion_item_version(stores, run_id, uc).await.map_err(wrap)?;
            let restored = match &winner {
                Some(w) => publish_scores(stores, run_id, uc, w).await.map_err(wrap)?,
                None => 0,
            };
            tracing::warn!(run_id, use_case = %uc, winner = ?winner, restored, "lost the champion race");
            return Err(wrap(Error::Store {
                run_id: run_id.into(),
                context: format!(
                    "flipping the champion: {why} (champion is now {}; its {restored} scores were re-published)",
                    winner.as_deref().unwrap_or("none")
                ),
                source: lost,
            }));
        }
    }
    let champion = champion_record(&rec, model_key, evaluation_key);
    put_json(stores, run_id, &keys::champion(uc), &champion).await.map_err(wrap)?;
    tracing::info!(run_id, use_case = %uc, version, scores_written, "deployed");
    Ok(DeployOutput { run_id: run_id.into(), use_case: uc, version, scores_written, champion_key: keys::champion(uc) })
}

fn champion_record(rec: &EvaluationRecord, model_key: String, evaluation_key: String) -> Champion {
    Champion {
        use_case: rec.use_case,
        version: rec.version.clone(),
        run_id: rec.run_id.clone(),
        model_key,
        evaluation_key,
        fingerprint: rec.fingerprint.clone(),
        metric: rec.challenger.primary.name.clone(),
        value: rec.challenger.primary.value,
        deployed_at: chrono::Utc::now().to_rfc3339(),
    }
}

/// The version named by the `MODEL#<uc> / CHAMPION` item (the authority on who is champion).
async fn champion_item_version(stores: Stores<'_>, run_id: &str, uc: UseCase) -> Result<Option<String>> {
    let item = stores
        .scores
        .get_item(&score::model(uc), score::CHAMPION)
        .await
        .map_err(scores_err(run_id, "reading the champion item"))?;
    Ok(item.as_ref().and_then(|i| i.attr("version")).and_then(|v| v.as_str()).map(str::to_string))
}

/// Writes the batch scores of a deployed version again, from its artifact under
/// `models/<uc>/<version>/` and the validated tables of the run that trained it. Used when a
/// deployment lost the champion race (to undo its own score writes) and for rollbacks.
/// Returns the number of items written.
pub async fn publish_scores(stores: Stores<'_>, run_id: &str, uc: UseCase, version: &str) -> Result<usize> {
    let rec: EvaluationRecord = get_json(stores, run_id, &keys::deployed(uc, version, "evaluation.json")).await?;
    let model = get(stores, run_id, &keys::deployed(uc, version, "model.json")).await?;
    let spec = load_run_spec(stores, &rec.run_id).await?;
    score_and_write(stores, run_id, &spec, uc, &model, &rec).await
}

/// Rows per scoring chunk of the per-row use cases; `MARQUEE_SCORE_CHUNK_ROWS` overrides it.
const SCORE_CHUNK_ROWS: usize = 10_000;

fn score_chunk_rows() -> usize {
    std::env::var("MARQUEE_SCORE_CHUNK_ROWS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SCORE_CHUNK_ROWS)
}

/// Scores the model of `rec` (its version) over the validated tables of the run that trained it
/// and writes the items; returns how many. Per-row use cases (churn, segment) stream: their table
/// goes from the object store to a temp file (Lambda: /tmp) and is scored [`SCORE_CHUNK_ROWS`] rows
/// at a time (`MARQUEE_SCORE_CHUNK_ROWS`), so memory holds one chunk of rows and items, not the table. Recommend and sentiment
/// need whole-table views and load their tables, which the ingest memory budget bounds.
async fn score_and_write(
    stores: Stores<'_>,
    run_id: &str,
    spec: &Spec,
    uc: UseCase,
    model: &[u8],
    rec: &EvaluationRecord,
) -> Result<usize> {
    let (data_run, version) = (rec.run_id.as_str(), rec.version.as_str());
    let manifest: Manifest = get_json(stores, run_id, &keys::ingest_manifest(data_run)).await?;
    let write = |items: Vec<Item>| async move {
        stores.scores.put_items(items).await.map_err(scores_err(run_id, "writing scores"))
    };
    let Some(table) = usecase::row_scored_table(spec, uc) else {
        let tables = load_tables(stores, data_run, &manifest, &usecase::needed_tables(spec, uc)).await?;
        let items = usecase::score(uc, spec, model, &rec.challenger, &tables, version)?;
        let n = items.len();
        write(items).await?;
        return Ok(n);
    };
    let key = &manifest
        .tables
        .get(&table)
        .ok_or_else(|| Error::Invalid(format!("table `{table}` is not in the manifest of run {data_run}")))?
        .key;
    let io = |what: &str, e: std::io::Error| Error::Invalid(format!("{what} for scoring `{key}`: {e}"));
    let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile().map_err(|e| io("creating a temp file", e))?;
    let mut body = stores.objects.open(key).await.map_err(scores_err(run_id, "reading a validated table"))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(|e| io("opening the temp file", e))?);
    tokio::io::copy(&mut body, &mut file).await.map_err(|e| io("downloading", e))?;
    drop(file);
    let mut rdr = csv::Reader::from_path(tmp.path()).map_err(|e| Error::Invalid(format!("reading `{key}`: {e}")))?;
    let headers = Frame::csv_headers(&mut rdr, key)?;
    let (mut written, chunk_rows) = (0, score_chunk_rows());
    loop {
        let chunk = Frame::read_chunk(&mut rdr, &headers, chunk_rows, key)?;
        if chunk.n_rows() == 0 {
            return Ok(written);
        }
        let tables = Tables(BTreeMap::from([(table.clone(), chunk)]));
        let items = usecase::score(uc, spec, model, &rec.challenger, &tables, version)?;
        written += items.len();
        write(items).await?;
    }
}

/// The other branch of the gate: record the rejected (or unchanged) model and its reasons.
/// Writes no scores and leaves the champion as it is.
pub async fn reject(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<EvaluateOutput> {
    let (run_id, uc) = (eval.run_id.as_str(), eval.use_case);
    let wrap = |e: Error| e.in_step(run_id, "reject", Some(uc.as_str()));
    let rec: EvaluationRecord = get_json(stores, run_id, &eval.evaluation_key).await.map_err(wrap)?;
    let status = match rec.verdict {
        Verdict::Unchanged => "unchanged",
        _ => "rejected",
    };
    let uri = stores.objects.uri(&keys::run_model(run_id, uc, "model.json"));
    stores
        .scores
        .put_items(vec![version_item(&rec, status, &uri)])
        .await
        .map_err(scores_err(run_id, "recording rejection"))
        .map_err(wrap)?;
    tracing::info!(run_id, use_case = %uc, status, reasons = ?rec.reasons, "not deployed");
    Ok(eval.clone())
}

// ---------------------------------------------------------------- summary

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseResult {
    pub use_case: UseCase,
    pub verdict: Verdict,
    pub metric: String,
    pub value: f64,
    pub champion_version: Option<String>,
    pub deployed_version: Option<String>,
    pub scores_written: usize,
    pub reasons: Vec<String>,
}

impl UseCaseResult {
    pub fn from_outputs(eval: &EvaluateOutput, deployed: Option<&DeployOutput>) -> Self {
        Self {
            use_case: eval.use_case,
            verdict: eval.verdict,
            metric: eval.metric.clone(),
            value: eval.value,
            champion_version: eval.champion_version.clone(),
            deployed_version: deployed.map(|d| d.version.clone()),
            scores_written: deployed.map_or(0, |d| d.scores_written),
            reasons: eval.reasons.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub results: Vec<UseCaseResult>,
    pub rows_ok: usize,
    pub rows_quarantined: usize,
    pub summary_key: String,
}

pub async fn summarize(
    stores: Stores<'_>,
    run_id: &str,
    ingest: &IngestOutput,
    results: Vec<UseCaseResult>,
) -> Result<RunSummary> {
    let summary = RunSummary {
        run_id: run_id.into(),
        results,
        rows_ok: ingest.rows_ok,
        rows_quarantined: ingest.rows_quarantined,
        summary_key: keys::summary(run_id),
    };
    put_json(stores, run_id, &summary.summary_key, &summary).await.map_err(|e| e.in_step(run_id, "summary", None))?;
    Ok(summary)
}

// ---------------------------------------------------------------- churn cutoff (business lever)

/// Where a cutoff moved after deployment is recorded: `models/churn/<version>/cutoff.json`.
pub fn churn_cutoff_key(version: &str) -> String {
    keys::deployed(UseCase::Churn, version, "cutoff.json")
}

/// The cutoff record written by [`redeploy_churn_cutoff`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoffChange {
    pub version: String,
    pub run_id: String,
    pub cutoff: f64,
    pub previous: f64,
    pub customers_rescored: usize,
    pub at_risk: usize,
    pub applied_at: String,
    /// Why, in the operator's words (e.g. "min precision 0.6").
    pub rule: String,
}

/// The churn cutoff as a business lever: rescores the deployed churn champion of `run_id` at a new
/// `cutoff` without retraining (same model, same ingested table), upserting every customer's CHURN
/// item (probability unchanged; at_risk and cutoff updated), and records the change. Refuses when
/// `run_id` is not the deployed churn champion, so scores never mix versions.
pub async fn redeploy_churn_cutoff(stores: Stores<'_>, run_id: &str, cutoff: f64, rule: &str) -> Result<CutoffChange> {
    let uc = UseCase::Churn;
    let wrap = |e: Error| e.in_step(run_id, "redeploy-cutoff", Some(uc.as_str()));
    if !(0.0..=1.0).contains(&cutoff) {
        return Err(wrap(Error::Invalid(format!("cutoff {cutoff} is not a probability in [0, 1]"))));
    }
    let champion = read_champion(stores, run_id, uc)
        .await
        .map_err(wrap)?
        .ok_or_else(|| wrap(Error::Invalid("no churn model is deployed".into())))?;
    if champion.run_id != run_id {
        return Err(wrap(Error::Invalid(format!(
            "run {run_id} is not the deployed churn champion (the champion is version {} from run {})",
            champion.version, champion.run_id
        ))));
    }
    let rec: EvaluationRecord = get_json(stores, run_id, &champion.evaluation_key).await.map_err(wrap)?;
    let previous = match stores
        .objects
        .get_opt(&churn_cutoff_key(&champion.version))
        .await
        .map_err(scores_err(run_id, "reading cutoff"))
        .map_err(wrap)?
    {
        Some(bytes) => serde_json::from_slice::<CutoffChange>(&bytes).map(|c| c.cutoff).ok(),
        None => None,
    }
    .or_else(|| rec.challenger.deploy_params.get("cutoff").copied())
    .unwrap_or(0.5);
    let spec = load_run_spec(stores, run_id).await.map_err(wrap)?;
    let manifest: Manifest = get_json(stores, run_id, &keys::ingest_manifest(run_id)).await.map_err(wrap)?;
    let model = get(stores, run_id, &champion.model_key).await.map_err(wrap)?;
    let tables = load_tables(stores, run_id, &manifest, &usecase::needed_tables(&spec, uc)).await.map_err(wrap)?;
    let items = usecase::churn::score(&spec, &model, &tables, &champion.version, cutoff).map_err(wrap)?;
    let at_risk = items.iter().filter(|i| i.attr("at_risk").and_then(|v| v.as_bool()).unwrap_or(false)).count();
    let customers_rescored = items.len();
    stores.scores.put_items(items).await.map_err(scores_err(run_id, "writing churn scores")).map_err(wrap)?;
    let change = CutoffChange {
        version: champion.version.clone(),
        run_id: run_id.into(),
        cutoff,
        previous,
        customers_rescored,
        at_risk,
        applied_at: chrono::Utc::now().to_rfc3339(),
        rule: rule.into(),
    };
    put_json(stores, run_id, &churn_cutoff_key(&champion.version), &change).await.map_err(wrap)?;
    tracing::info!(run_id, version = %champion.version, cutoff, previous, at_risk, "churn cutoff redeployed");
    Ok(change)
}
