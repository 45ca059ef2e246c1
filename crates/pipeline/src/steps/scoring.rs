//! Batch scoring of a deployed version, in parts: its artifact over the validated tables of the
//! run that trained it, written to the score store.
//!
//! [`plan_scores`] cuts the table a per-row use case (churn, segment) scores into byte ranges of
//! whole records, `MARQUEE_SCORE_PART_ROWS` rows each, and stores the plan beside the version's
//! artifact; [`score_part`] scores one range (on AWS one Distributed Map child: a ranged GET, the
//! rows scored in chunks, the items written, the part's item keys stored); [`merge_score_keys`]
//! checks that every part was scored and joins their key lists. Use cases that need whole-table
//! views (recommend, sentiment) have one part, their whole tables. A part is idempotent: scoring
//! it again writes the same items (upserts) and the same key list.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::ingest::TEMP_PREFIX;
use super::io::{get, get_json, get_json_opt, load_manifest, load_run_spec, load_tables, put, put_file, put_json};
use super::{EvaluationRecord, RecordIndex, RecordMark, Stores};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys;
use crate::spec::{Spec, UseCase};
use crate::store::Item;
use crate::usecase::{self, Tables};

/// Rows per scoring chunk inside a part; `MARQUEE_SCORE_CHUNK_ROWS` overrides it.
const SCORE_CHUNK_ROWS: usize = 10_000;

/// Rows per scoring part; `MARQUEE_SCORE_PART_ROWS` overrides it. 200,000 churn rows score and
/// write in well under a minute in a 1 GB function, and 10M customers make 50 parts.
const SCORE_PART_ROWS: usize = 200_000;

/// The file of a deployed version listing its score items' keys.
pub(super) const SCORE_KEYS: &str = "score-keys.csv.gz";
/// The version's scoring plan ([`ScorePlan`]).
const SCORE_PLAN: &str = "score-plan.json";

fn env_rows(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.trim().parse().ok()).filter(|&n| n > 0).unwrap_or(default)
}

/// Rows per scoring part: `MARQUEE_SCORE_PART_ROWS`, else 200,000.
pub fn score_part_rows() -> usize {
    env_rows("MARQUEE_SCORE_PART_ROWS", SCORE_PART_ROWS)
}

/// How a version's batch scoring is cut into parts, stored at `models/<uc>/<version>/score-plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorePlan {
    pub use_case: UseCase,
    pub version: String,
    /// The run whose validated tables are scored (the run that trained the version).
    pub data_run: String,
    /// The table scored row by row, cut into ranges; None: one part scores the use case's whole tables.
    pub table: Option<PartedTable>,
}

/// A validated table cut into byte ranges of whole records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartedTable {
    pub name: String,
    pub key: String,
    pub headers: Vec<String>,
    /// One range per part, in order, together covering every record once (at least one range).
    pub ranges: Vec<PartRange>,
}

/// Bytes `start..end` of a table: `rows` whole records, the first on line `first_line` (1-based,
/// the header is line 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRange {
    pub start: u64,
    pub end: u64,
    pub first_line: u64,
    pub rows: u64,
}

impl ScorePlan {
    pub fn parts(&self) -> usize {
        self.table.as_ref().map_or(1, |t| t.ranges.len())
    }

    pub fn key(uc: UseCase, version: &str) -> String {
        keys::deployed(uc, version, SCORE_PLAN)
    }
}

/// The key list of one part: `models/<uc>/<version>/score-keys/part-00003.csv.gz`.
fn part_keys_key(uc: UseCase, version: &str, part: usize) -> String {
    keys::deployed(uc, version, &format!("score-keys/part-{part:05}.csv.gz"))
}

/// Cuts the batch scoring of `rec`'s version into parts of `part_rows` rows and stores the plan.
/// Where every `part_rows`-th record of a per-row use case's table starts comes from the record
/// index ingest wrote beside the table when `part_rows` is a multiple of its spacing (the default
/// part size is); otherwise the table is read once, to a temp file, to find them.
pub(super) async fn plan_scores(stores: Stores<'_>, rec: &EvaluationRecord, part_rows: usize) -> Result<ScorePlan> {
    let (uc, data_run) = (rec.use_case, rec.run_id.as_str());
    let spec = load_run_spec(stores, data_run).await?;
    let table = match usecase::of(uc).row_scored_table(&spec) {
        None => None,
        Some(name) => {
            let manifest = load_manifest(stores, data_run).await?;
            let key = manifest
                .tables
                .get(&name)
                .ok_or_else(|| Error::Invalid(format!("table `{name}` is not in the manifest of run {data_run}")))?
                .key
                .clone();
            let part_rows = part_rows.max(1);
            let index: Option<RecordIndex> = get_json_opt(stores, &keys::ingested_index(data_run, &name)).await?;
            let (headers, ranges) = match index.filter(|i| i.every > 0 && part_rows as u64 % i.every == 0) {
                Some(index) => (index.headers.clone(), cut_by_index(&index, part_rows as u64)),
                None => {
                    let tmp = download(stores, &key).await?;
                    cut_records(tmp.path(), &key, part_rows)?
                }
            };
            Some(PartedTable { name, key, headers, ranges })
        }
    };
    let plan = ScorePlan { use_case: uc, version: rec.version.clone(), data_run: data_run.into(), table };
    put_json(stores, &ScorePlan::key(uc, &rec.version), &plan).await?;
    Ok(plan)
}

async fn download(stores: Stores<'_>, key: &str) -> Result<tempfile::NamedTempFile> {
    let io = |what: &str, e: std::io::Error| Error::Invalid(format!("{what} for scoring `{key}`: {e}"));
    let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile().map_err(|e| io("creating a temp file", e))?;
    let mut body =
        stores.objects.open(key).await.map_err(Error::store(format!("reading {}", stores.objects.uri(key))))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(|e| io("opening the temp file", e))?);
    tokio::io::copy(&mut body, &mut file).await.map_err(|e| io("downloading", e))?;
    Ok(tmp)
}

/// The byte ranges of `part_rows` records each from a record index (`part_rows` a multiple of its
/// spacing): the ranges [`cut_records`] finds by reading the table.
pub(super) fn cut_by_index(index: &RecordIndex, part_rows: u64) -> Vec<PartRange> {
    let step = (part_rows / index.every.max(1)).max(1) as usize;
    let starts: Vec<&RecordMark> = index.marks.iter().step_by(step).collect();
    if starts.is_empty() {
        // No records: one empty range at the end of the header.
        return vec![PartRange { start: index.bytes, end: index.bytes, first_line: 2, rows: 0 }];
    }
    starts
        .iter()
        .enumerate()
        .map(|(p, mark)| {
            let end = starts.get(p + 1).map_or(index.bytes, |next| next.byte);
            let rows = part_rows.min(index.rows - p as u64 * part_rows);
            PartRange { start: mark.byte, end, first_line: mark.line, rows }
        })
        .collect()
}

/// The header and the byte ranges of `part_rows` records each (the last may hold fewer; an empty
/// table has one empty range).
pub(super) fn cut_records(
    path: &std::path::Path,
    key: &str,
    part_rows: usize,
) -> Result<(Vec<String>, Vec<PartRange>)> {
    let err = |e: csv::Error| Error::Invalid(format!("reading `{key}` to cut it into scoring parts: {e}"));
    let mut rdr = csv::Reader::from_path(path).map_err(err)?;
    let headers = Frame::csv_headers(&mut rdr, key)?;
    let mut rec = csv::ByteRecord::new();
    let mut ranges = Vec::new();
    let mut open = (rdr.position().byte(), rdr.position().line(), 0u64);
    loop {
        let before = rdr.position().clone();
        if !rdr.read_byte_record(&mut rec).map_err(err)? {
            break;
        }
        if open.2 == part_rows as u64 {
            ranges.push(PartRange { start: open.0, end: before.byte(), first_line: open.1, rows: open.2 });
            open = (before.byte(), before.line(), 0);
        }
        open.2 += 1;
    }
    ranges.push(PartRange { start: open.0, end: rdr.position().byte(), first_line: open.1, rows: open.2 });
    Ok((headers, ranges))
}

/// Scores part `part` of the version's plan, writes its items and stores their keys; returns how
/// many items it wrote.
pub(super) async fn score_part(stores: Stores<'_>, uc: UseCase, version: &str, part: usize) -> Result<usize> {
    let (plan, scorer) = load_plan(stores, uc, version).await?;
    score_loaded(stores, &plan, &scorer, part).await
}

/// A version's scoring plan and its scorer (spec, artifact, deployment parameters): what every
/// part reads first. A Lambda child loads them itself; the embedded deployment once for all parts.
async fn load_plan(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<(ScorePlan, Arc<Scorer>)> {
    let plan: ScorePlan = get_json(stores, &ScorePlan::key(uc, version)).await?;
    let rec: EvaluationRecord = get_json(stores, &keys::deployed(uc, version, "evaluation.json")).await?;
    let scorer = Arc::new(Scorer {
        model: usecase::of(uc),
        spec: load_run_spec(stores, &plan.data_run).await?,
        artifact: get(stores, &keys::deployed(uc, version, "model.json")).await?,
        params: rec.challenger.deploy_params,
        version: version.into(),
    });
    Ok((plan, scorer))
}

/// Part `part` of a loaded plan: scores its rows chunk by chunk, upserts the items, then stores
/// the part's key list.
async fn score_loaded(stores: Stores<'_>, plan: &ScorePlan, scorer: &Arc<Scorer>, part: usize) -> Result<usize> {
    let (uc, version) = (plan.use_case, plan.version.as_str());
    if part >= plan.parts() {
        return Err(Error::Invalid(format!(
            "{uc} version {version} is scored in {} parts, not part {part}",
            plan.parts()
        )));
    }
    let (model, spec) = (scorer.model, &scorer.spec);
    let mut keys = KeyList::new();
    let mut write = |items: Vec<Item>| {
        let listed = keys.add(&items);
        async move {
            listed?;
            stores.scores.put_items(items).await.map_err(Error::store("writing scores"))
        }
    };
    let written = match &plan.table {
        None => {
            let manifest = load_manifest(stores, &plan.data_run).await?;
            let tables = load_tables(stores, &manifest, &model.needed_tables(spec)).await?;
            scorer.score_off_thread(tables, &mut write).await?
        }
        Some(t) => {
            let range = t.ranges[part];
            let what = format!("{} (part {part}: lines {}..)", t.key, range.first_line);
            let bytes = stores
                .objects
                .get_range(&t.key, range.start, range.end)
                .await
                .map_err(Error::store(format!("reading {}", stores.objects.uri(&t.key))))?;
            let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
            let (mut written, chunk_rows) = (0, env_rows("MARQUEE_SCORE_CHUNK_ROWS", SCORE_CHUNK_ROWS));
            loop {
                let chunk = Frame::read_chunk(&mut rdr, &t.headers, chunk_rows, &what)?;
                if chunk.n_rows() == 0 {
                    break;
                }
                written +=
                    scorer.score_off_thread(Tables(BTreeMap::from([(t.name.clone(), chunk)])), &mut write).await?;
            }
            written
        }
    };
    // After the items: a part's key list present means its items are written.
    put(stores, &part_keys_key(uc, version, part), keys.finish()?).await?;
    Ok(written)
}

/// Batches of score items a scoring thread may have waiting for the writer.
const BATCHES_IN_FLIGHT: usize = 2;

/// What scores a deployed version, shared with the blocking threads that run it.
struct Scorer {
    model: &'static dyn usecase::UseCase,
    spec: Spec,
    artifact: Vec<u8>,
    /// The deployment parameters its evaluation decided (e.g. the churn cutoff).
    params: BTreeMap<String, f64>,
    version: String,
}

impl Scorer {
    /// Scores `tables` on a blocking thread, so that the parts a deployment scores at once
    /// ([`super::deploy`]) use the machine's cores while their reads and writes wait, and hands
    /// each batch of items to `write` as it comes: at most [`BATCHES_IN_FLIGHT`] batches wait,
    /// so a deployment's memory is a few batches, not all its items. Returns the items written;
    /// the first error (scoring's or writing's) stops both.
    async fn score_off_thread<W, F>(self: &Arc<Self>, tables: Tables, write: &mut W) -> Result<usize>
    where
        W: FnMut(Vec<Item>) -> F,
        F: std::future::Future<Output = Result<()>>,
    {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(BATCHES_IN_FLIGHT);
        let me = Arc::clone(self);
        let scoring = tokio::task::spawn_blocking(move || {
            me.model.score_into(&me.spec, &me.artifact, &me.params, &tables, &me.version, &mut |items| {
                // Fails only when the writer below stopped on an error, which is the one returned.
                tx.blocking_send(items).map_err(|_| Error::Invalid("the score writer stopped".into()))
            })
        });
        let mut written = 0;
        let mut write_error = None;
        while let Some(items) = rx.recv().await {
            written += items.len();
            if let Err(e) = write(items).await {
                write_error = Some(e);
                break;
            }
        }
        drop(rx);
        let scored = scoring.await.map_err(|e| {
            Error::Invalid(format!(
                "scoring {} version {}: the scoring thread failed: {e}",
                self.model.id(),
                self.version
            ))
        })?;
        match write_error {
            Some(e) => Err(e),
            None => scored.map(|()| written),
        }
    }
}

/// Checks that every part of the plan stored its key list and joins them into the version's
/// `score-keys.csv.gz` (gzip members concatenate into one valid file); returns the items written.
pub(super) async fn merge_score_keys(stores: Stores<'_>, plan: &ScorePlan) -> Result<usize> {
    let (uc, version) = (plan.use_case, plan.version.as_str());
    let io = |e: std::io::Error| Error::Invalid(format!("joining the score keys of {uc} version {version}: {e}"));
    let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile().map_err(io)?;
    let mut out = std::io::BufWriter::new(tmp.reopen().map_err(io)?);
    let mut items = 0;
    for part in 0..plan.parts() {
        let key = part_keys_key(uc, version, part);
        let Some(gz) = stores
            .objects
            .get_opt(&key)
            .await
            .map_err(Error::store(format!("reading {}", stores.objects.uri(&key))))?
        else {
            return Err(Error::Invalid(format!(
                "part {part} of {} of {uc} version {version} was not scored ({} is missing): the champion is not \
                 flipped; run the deployment again",
                plan.parts(),
                stores.objects.uri(&key)
            )));
        };
        items += count_keys(&gz, &stores.objects.uri(&key))?;
        out.write_all(&gz).map_err(io)?;
    }
    out.flush().map_err(io)?;
    drop(out);
    put_file(stores, &keys::deployed(uc, version, SCORE_KEYS), tmp.path()).await?;
    Ok(items)
}

fn count_keys(gz: &[u8], uri: &str) -> Result<usize> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(flate2::read::MultiGzDecoder::new(gz));
    let mut rec = csv::ByteRecord::new();
    let mut n = 0;
    while rdr.read_byte_record(&mut rec).map_err(|e| Error::Invalid(format!("{uri}, line {}: {e}", n + 1)))? {
        n += 1;
    }
    Ok(n)
}

/// Scores every part of a planned version as many at once as the machine has cores (each
/// part's scoring on a blocking thread, its reads and writes on this task): the embedded form of
/// the Distributed Map. The first part to fail stops it. Returns the items written.
pub(super) async fn score_parts(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<usize> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // One process: the plan, spec and artifact are read once and shared by the parts.
    let (plan, scorer) = load_plan(stores, uc, version).await?;
    let (parts, plan, scorer) = (plan.parts(), &plan, &scorer);
    // Boxed and collected first: a stream over a closure's futures is not provably Send to the
    // Lambda runtime (a higher-ranked lifetime the compiler cannot see through).
    let parts: Vec<BoxFuture<'_, Result<usize>>> =
        (0..parts).map(|part| score_loaded(stores, plan, scorer, part).boxed()).collect();
    stream::iter(parts).buffer_unordered(cores).try_fold(0, |sum, written| async move { Ok(sum + written) }).await
}

/// Scores every part of the plan and joins their key lists; returns the items written.
pub(super) async fn score_all(stores: Stores<'_>, plan: &ScorePlan) -> Result<usize> {
    score_parts(stores, plan.use_case, &plan.version).await?;
    merge_score_keys(stores, plan).await
}

/// Writes the batch scores of a deployed version again, from its artifact under
/// `models/<uc>/<version>/` and the validated tables of the run that trained it. Used when a
/// deployment lost the champion race (to undo its own score writes) and for rollbacks.
/// Returns the number of items written.
pub async fn publish_scores(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<usize> {
    let rec: EvaluationRecord = get_json(stores, &keys::deployed(uc, version, "evaluation.json")).await?;
    let plan = plan_scores(stores, &rec, score_part_rows()).await?;
    score_all(stores, &plan).await
}

/// The keys of a part's score items as a gzip CSV (`pk,sk` per line), built in memory (a part
/// holds at most its rows' keys).
struct KeyList(csv::Writer<flate2::write::GzEncoder<Vec<u8>>>);

impl KeyList {
    fn new() -> Self {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        Self(csv::WriterBuilder::new().has_headers(false).from_writer(gz))
    }

    fn add(&mut self, items: &[Item]) -> Result<()> {
        for item in items {
            self.0
                .write_record([&item.pk, &item.sk])
                .map_err(|e| Error::Invalid(format!("writing the score keys: {e}")))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>> {
        let gz = self.0.into_inner().map_err(|e| Error::Invalid(format!("writing the score keys: {}", e.error())))?;
        gz.finish().map_err(|e| Error::Invalid(format!("writing the score keys: {e}")))
    }
}
