//! Ingest (CRISP-DM data understanding): validate and profile every table of the spec, stream
//! validated copies and the quarantine to the object store, and apply the quality gate.

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::io::{get, put, put_file, put_json};
use super::unchanged::unchanged_use_cases;
use super::{RunRequest, Stores, UseCaseResult};
use crate::error::{Error, Result};
use crate::ingest::{self, QualityReport, QuarantinedRow, TableProfile};
use crate::keys;
use crate::spec::{Spec, UseCase};
use crate::store::ObjectBody;
use crate::usecase;

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
    /// The use cases whose data and spec section are their champion's: not prepared, trained or
    /// evaluated again (their summary lines, verdict `unchanged`).
    #[serde(default)]
    pub unchanged: Vec<UseCaseResult>,
    /// False when the gate failed or every use case is unchanged: the run goes straight to the
    /// summary.
    #[serde(default)]
    pub train_needed: bool,
}

/// Written last by ingest: the validated tables of a run and their fingerprints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub dataset: String,
    pub tables: BTreeMap<String, ManifestTable>,
    pub ingested_at: String,
    /// Use cases prepare skips: their fingerprint is their champion's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<UseCase>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestTable {
    pub key: String,
    pub source_key: String,
    pub rows: usize,
    /// sha256 of the uploaded file: same bytes, same fingerprint, same model.
    pub sha256: String,
    /// Size of the uploaded file.
    #[serde(default)]
    pub bytes: u64,
    /// Which stored object was read (S3: `version <id>` or `etag <etag>`; None in a folder;
    /// `N parts` for a table in parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<String>,
    /// A table in parts: each part read, in order (empty for a table in one file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ManifestPart>,
}

/// One part of a table in parts, as ingest read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPart {
    pub key: String,
    pub sha256: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<String>,
}

/// Data understanding: validate and profile every table of the spec, quarantine bad rows, and
/// apply the quality gate. A failed gate is a normal result (`quality_passed: false`) so the
/// report is still written; the orchestrator turns it into a failed run.
pub async fn ingest(stores: Stores<'_>, req: &RunRequest) -> Result<IngestOutput> {
    ingest_with_memory(stores, req, None).await
}

/// [`ingest`] in a function with `memory_mb` of memory (a Lambda): without an explicit input
/// budget, inputs above a share of that memory are refused before they are read
/// ([`ingest::InputBudget::resolve`]).
pub async fn ingest_with_memory(stores: Stores<'_>, req: &RunRequest, memory_mb: Option<u64>) -> Result<IngestOutput> {
    run(stores, req, memory_mb).await.map_err(|e| e.in_step(&req.run_id, "ingest", None))
}

async fn run(stores: Stores<'_>, req: &RunRequest, memory_mb: Option<u64>) -> Result<IngestOutput> {
    let run_id = req.run_id.as_str();
    let spec_bytes = get(stores, &req.spec_key).await?;
    let spec_text = String::from_utf8(spec_bytes)
        .map_err(|e| Error::spec(stores.objects.uri(&req.spec_key), format!("not UTF-8: {e}")))?;
    let spec = Spec::from_toml(&spec_text, &stores.objects.uri(&req.spec_key))?;
    put(stores, &keys::run_spec(run_id), spec_text.into_bytes()).await?;

    let labels = usecase::label_columns(&spec);
    let now = chrono::Utc::now().timestamp();
    let budget = ingest::InputBudget::resolve(spec.ingest.max_input_bytes, memory_mb);
    // Validated copies and the quarantine are streamed to temp files and stored
    // from there: neither the input nor the output is ever held whole in memory.
    sweep_stale_temp_dirs();
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempdir()
        .map_err(|e| Error::Invalid(format!("creating a temp folder in {}: {e}", std::env::temp_dir().display())))?;
    let quarantine_path = tmp.path().join("quarantine.csv");
    let mut quarantine = Some(
        QuarantineFile::create(&quarantine_path)
            .map_err(|e| Error::Invalid(format!("creating {}: {e}", quarantine_path.display())))?,
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
        unchanged: Vec::new(),
    };

    // Ratings and viewing rows must name a known title: the titles table goes first, and its ids
    // are checked as the other tables stream by.
    let mut order: Vec<&String> = spec.tables.keys().collect();
    if let Some(titles) = spec.recommend.as_ref().and_then(|r| r.titles.as_ref()) {
        order.sort_by_key(|n| *n != titles);
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
        let sources = match table_sources(stores, &source_key, tspec).await? {
            Ok(sources) => sources,
            Err(problem) => {
                quality.push(refused(problem));
                continue;
            }
        };
        let size: u64 = sources.iter().map(|s| s.bytes).sum();
        if let Some(b) = budget.as_ref().filter(|b| size > b.bytes) {
            tracing::warn!(run_id, table = %name, size, budget = b.bytes, "input above the ingest memory budget: not read");
            quality.push(refused(b.too_large(&file_label, size)));
            continue;
        }
        let object_version = match sources.as_slice() {
            [one] if !tspec.is_parts() => one.version.clone(),
            parts => Some(format!("{} parts", parts.len())),
        };
        let recommend = spec.recommend.as_ref();
        let references = recommend.filter(|r| *name == r.ratings || Some(name) == r.viewing.as_ref()).and_then(|r| {
            Some((r.item.clone(), known_titles.clone()?, spec.tables.get(r.titles.as_ref()?)?.file.clone()))
        });
        let out = tmp.path().join(format!("table-{index}.csv"));
        let mut job = TableJob::create(
            ingest::TableStream::new(name, tspec, &labels.get(name).cloned().unwrap_or_default(), now),
            budget.clone(),
            references,
            recommend.filter(|r| r.titles.as_ref() == Some(name)).and_then(|r| r.title_id.clone()),
            &out,
        )
        .map_err(|e| Error::Invalid(format!("creating {}: {e} (the temp folder's space)", out.display())))?;
        let started = Instant::now();
        for source in &sources {
            if job.over_budget() {
                break;
            }
            let part_label = stores.objects.uri(&source.key);
            let body = stores.objects.open(&source.key).await.map_err(Error::store(format!("reading {part_label}")))?;
            let handle = tokio::runtime::Handle::current();
            let q = quarantine.take().expect("the quarantine file is given back after every part");
            let label = part_label.clone();
            let (result, back, q) = tokio::task::spawn_blocking(move || {
                let mut q = q;
                let result = job.part(handle, &label, body, &mut q);
                (result, job, q)
            })
            .await
            .map_err(|e| Error::Invalid(format!("ingesting {part_label}: the parser thread failed: {e}")))?;
            quarantine = Some(q);
            job = back;
            result.map_err(|e| {
                Error::Invalid(format!(
                    "ingesting {part_label}: writing the validated copy to {}: {e} (the temp folder's space)",
                    tmp.path().display()
                ))
            })?;
        }
        let (t, index) = job.finish(&file_label).map_err(|e| {
            Error::Invalid(format!("ingesting {file_label}: writing {}: {e} (the temp folder's space)", out.display()))
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
        put_file(stores, &keys::ingested(run_id, name), &out).await?;
        let _ = std::fs::remove_file(&out);
        // Compact: a plan reads it whole, and it grows with the table (a mark per 1,000 rows).
        put(stores, &keys::ingested_index(run_id, name), usecase::common::to_json(&index)).await?;
        if recommend.is_some_and(|r| r.titles.as_ref() == Some(name)) {
            known_titles = Some(Arc::new(t.collected));
        }
        manifest.tables.insert(
            name.clone(),
            ManifestTable {
                key: keys::ingested(run_id, name),
                source_key,
                rows: t.quality.rows_ok,
                sha256: t.sha256,
                bytes: t.bytes_read,
                object_version,
                parts: if tspec.is_parts() {
                    sources
                        .into_iter()
                        .zip(&t.parts)
                        .map(|(source, p)| ManifestPart {
                            key: source.key,
                            sha256: p.sha256.clone(),
                            bytes: p.bytes,
                            object_version: source.version,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            },
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
        let gate = spec.tables.get(&q.table).map_or_else(|| spec.quality.clone(), |t| spec.quality.for_table(t));
        ingest::apply_gate(q, &gate, first_bad.get(&q.table));
        if let Some(t) = manifest.tables.get_mut(&q.table) {
            t.rows = q.rows_ok;
        }
    }
    let report = QualityReport { passed: quality.iter().all(|q| q.problems.is_empty()), tables: quality };

    quarantine
        .take()
        .expect("quarantine file")
        .finish()
        .map_err(|e| Error::Invalid(format!("writing {}: {e}", quarantine_path.display())))?;
    put_json(stores, &keys::profile(run_id), &profiles).await?;
    put_json(stores, &keys::quality(run_id), &report).await?;
    put_file(stores, &keys::quarantine(run_id), &quarantine_path).await?;
    let unchanged =
        if report.passed && !req.retrain { unchanged_use_cases(stores, &spec, &manifest).await? } else { Vec::new() };
    manifest.unchanged = unchanged.iter().map(|r| r.use_case).collect();
    if report.passed {
        put_json(stores, &keys::ingest_manifest(run_id), &manifest).await?;
    }
    tracing::info!(
        run_id,
        rows_ok = report.tables.iter().map(|t| t.rows_ok).sum::<usize>(),
        quarantined = rows_quarantined,
        passed = report.passed,
        unchanged = ?manifest.unchanged,
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
        train_needed: report.passed && unchanged.len() < spec.use_cases().len(),
        use_cases: spec.use_cases(),
        unchanged,
    })
}

/// Prefix of ingest's temp folders and of deploy's scoring temp files (swept alike).
pub(super) const TEMP_PREFIX: &str = "marquee-ingest-";

/// Removes temp folders of ingests that were killed (a timeout skips the cleanup, and a reused
/// host keeps its temp folder): any older than an hour, longer than a step may run.
pub(super) fn sweep_stale_temp_dirs() {
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

/// The validated copy being written: a CSV writer over a byte and line counter.
type RowsWriter = csv::Writer<Counting<std::io::BufWriter<std::fs::File>>>;

/// Validated rows to the table's temp file, quarantined rows to the run's quarantine file.
struct FileSink<'a> {
    rows: &'a mut RowsWriter,
    index: &'a mut RecordIndex,
    quarantine: &'a mut QuarantineFile,
}

impl ingest::IngestSink for FileSink<'_> {
    fn row(&mut self, values: Vec<String>) -> std::io::Result<()> {
        if self.index.rows % RECORD_INDEX_EVERY as u64 == 0 {
            // Flushed so that the counter has seen every byte before this record.
            self.rows.flush()?;
            let c = self.rows.get_ref();
            self.index.marks.push(RecordMark { byte: c.bytes, line: c.lines + 1 });
        }
        self.index.rows += 1;
        Ok(self.rows.write_record(&values)?)
    }
    fn quarantine(&mut self, r: QuarantinedRow) -> std::io::Result<()> {
        Ok(self.quarantine.0.write_record([&r.table, &r.file, &r.line.to_string(), &r.column, &r.reason, &r.raw])?)
    }
}

/// HEAD requests ingest keeps in flight while it sizes a table's parts.
const HEAD_CONCURRENCY: usize = 32;

/// A writer that counts the bytes and line ends that pass through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
    lines: u64,
}

impl<W: std::io::Write> std::io::Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        self.lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A validated copy's writer with its header row written, and its empty record index.
fn open_rows(
    file: std::io::BufWriter<std::fs::File>,
    headers: Vec<String>,
) -> std::io::Result<(RowsWriter, RecordIndex)> {
    let mut rows = csv::Writer::from_writer(Counting { inner: file, bytes: 0, lines: 0 });
    rows.write_record(&headers)?;
    Ok((rows, RecordIndex { headers, every: RECORD_INDEX_EVERY as u64, ..RecordIndex::default() }))
}

/// Flushes the validated copy and records its size in the index.
fn close_rows(rows: &mut RowsWriter, index: &mut RecordIndex) -> std::io::Result<()> {
    rows.flush()?;
    index.bytes = rows.get_ref().bytes;
    Ok(())
}

/// Validated records between index marks ([`RecordIndex`]).
pub const RECORD_INDEX_EVERY: usize = 1_000;

/// Where every [`RECORD_INDEX_EVERY`]-th record of an ingested table starts (`marks[k]`: record
/// `k * RECORD_INDEX_EVERY`), its record count and its size: what cutting the table into parts of
/// whole records needs, recorded while ingest writes the table
/// ([`crate::keys::ingested_index`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordIndex {
    /// The table's header row.
    pub headers: Vec<String>,
    pub every: u64,
    pub rows: u64,
    /// Size of the table in bytes (the end of its last record).
    pub bytes: u64,
    pub marks: Vec<RecordMark>,
}

/// The first byte of a record and its line (1-based; the header is line 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMark {
    pub byte: u64,
    pub line: u64,
}

/// One input object of a table: its file, or one of its parts.
struct Source {
    key: String,
    bytes: u64,
    version: Option<String>,
}

/// What ingest reads for a table: its one file, or every part file directly in its folder (name
/// order). `Ok(Err(problem))` when there is nothing to read.
async fn table_sources(
    stores: Stores<'_>,
    source_key: &str,
    tspec: &crate::spec::TableSpec,
) -> Result<std::result::Result<Vec<Source>, String>> {
    let label = stores.objects.uri(source_key);
    let keys = if tspec.is_parts() {
        let listed = stores.objects.list(source_key).await.map_err(Error::store(format!("listing {label}")))?;
        let parts: Vec<String> =
            listed.into_iter().filter(|k| k.strip_prefix(source_key).is_some_and(crate::spec::is_part_file)).collect();
        if parts.is_empty() {
            return Ok(Err(format!(
                "{label}: no part files (.csv or .csv.gz) in this folder (the spec's `file` ends in `/`)"
            )));
        }
        parts
    } else {
        vec![source_key.to_string()]
    };
    // Sizes and versions of the parts, HEAD_CONCURRENCY requests in flight (a table of thousands
    // of parts would otherwise wait on each round trip in turn); results stay in name order.
    let heads: Vec<_> = stream::iter(keys)
        .map(move |key| async move {
            let uri = stores.objects.uri(&key);
            let meta = stores.objects.head(&key).await.map_err(Error::store(format!("reading {uri}")))?;
            Ok::<_, Error>((key, uri, meta))
        })
        .buffered(HEAD_CONCURRENCY)
        .try_collect()
        .await?;
    let mut sources = Vec::with_capacity(heads.len());
    for (key, uri, meta) in heads {
        match meta {
            Some(meta) => sources.push(Source { key, bytes: meta.bytes, version: meta.version }),
            None => return Ok(Err(format!("{uri}: input file not found"))),
        }
    }
    Ok(Ok(sources))
}

/// One table's ingest, part by part, each part parsed on a blocking thread (CSV parsing is
/// synchronous; the object body is pulled from the async store through [`BlockingReader`]).
struct TableJob {
    stream: ingest::TableStream,
    budget: Option<ingest::InputBudget>,
    /// (item column, known title ids, titles file) for ratings and viewing.
    references: Option<(String, Arc<HashSet<String>>, String)>,
    collect: Option<String>,
    rows: RowsWriter,
    index: RecordIndex,
}

impl TableJob {
    fn create(
        stream: ingest::TableStream,
        budget: Option<ingest::InputBudget>,
        references: Option<(String, Arc<HashSet<String>>, String)>,
        collect: Option<String>,
        out: &Path,
    ) -> std::io::Result<Self> {
        let file = std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(out)?);
        let (rows, index) = open_rows(file, stream.spec().columns().into_iter().map(|(c, _)| c).collect())?;
        Ok(Self { stream, budget, references, collect, rows, index })
    }

    /// The parts read so far went past the input budget (a problem already says so): the rest
    /// are not read.
    fn over_budget(&self) -> bool {
        self.budget.as_ref().is_some_and(|b| self.stream.bytes_decoded() > b.bytes)
    }

    fn part(
        &mut self,
        handle: tokio::runtime::Handle,
        file: &str,
        body: ObjectBody,
        quarantine: &mut QuarantineFile,
    ) -> std::io::Result<()> {
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
        let mut sink = FileSink { rows: &mut self.rows, index: &mut self.index, quarantine };
        self.stream.part(file, input, &opts, &mut sink)
    }

    fn finish(mut self, file: &str) -> std::io::Result<(ingest::StreamedTable, RecordIndex)> {
        close_rows(&mut self.rows, &mut self.index)?;
        Ok((self.stream.finish(file), self.index))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::IngestSink;

    /// The record index written beside a validated table cuts it exactly where reading the table
    /// does, quoted line breaks included (a record then spans several lines).
    #[test]
    fn the_record_index_cuts_the_table_where_reading_it_does() {
        let dir = tempfile::tempdir().unwrap();
        let (table, quarantine) = (dir.path().join("t.csv"), dir.path().join("q.csv"));
        let headers = vec!["id".to_string(), "note".to_string()];
        let file = std::io::BufWriter::new(std::fs::File::create(&table).unwrap());
        let (mut rows, mut index) = open_rows(file, headers.clone()).unwrap();
        let mut q = QuarantineFile::create(&quarantine).unwrap();
        let n = 3 * RECORD_INDEX_EVERY + 17;
        {
            let mut sink = FileSink { rows: &mut rows, index: &mut index, quarantine: &mut q };
            for i in 0..n {
                let note = if i % 7 == 3 { format!("line one\nline \"two\", {i}") } else { format!("n{i}") };
                sink.row(vec![format!("c{i}"), note]).unwrap();
            }
        }
        close_rows(&mut rows, &mut index).unwrap();
        drop(rows);
        assert_eq!((index.rows, index.marks.len()), (n as u64, 4));
        assert_eq!(index.bytes, std::fs::metadata(&table).unwrap().len());
        for parts_of in [1, 2, 3, 5] {
            let part_rows = parts_of * RECORD_INDEX_EVERY;
            let (read_headers, read) = super::super::scoring::cut_records(&table, "t.csv", part_rows).unwrap();
            assert_eq!(read_headers, headers);
            assert_eq!(super::super::scoring::cut_by_index(&index, part_rows as u64), read, "parts of {part_rows}");
        }
        // An empty table: one empty range after the header, as reading it gives.
        let empty = dir.path().join("e.csv");
        let file = std::io::BufWriter::new(std::fs::File::create(&empty).unwrap());
        let (mut rows, mut index) = open_rows(file, headers.clone()).unwrap();
        close_rows(&mut rows, &mut index).unwrap();
        drop(rows);
        let (_, read) = super::super::scoring::cut_records(&empty, "e.csv", RECORD_INDEX_EVERY).unwrap();
        assert_eq!(super::super::scoring::cut_by_index(&index, RECORD_INDEX_EVERY as u64), read);
    }
}
