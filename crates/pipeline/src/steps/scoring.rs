//! Batch scoring of a deployed version: its artifact over the validated tables of the run that
//! trained it, written to the score store. Per-row use cases stream their table in chunks.

use std::collections::BTreeMap;

use super::ingest::TEMP_PREFIX;
use super::io::{get, get_json, load_manifest, load_run_spec, load_tables, put_file};
use super::{EvaluationRecord, Stores};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys;
use crate::spec::{Spec, UseCase};
use crate::store::Item;
use crate::usecase::{self, Tables};

/// Rows per scoring chunk of the per-row use cases; `MARQUEE_SCORE_CHUNK_ROWS` overrides it.
const SCORE_CHUNK_ROWS: usize = 10_000;

fn score_chunk_rows() -> usize {
    std::env::var("MARQUEE_SCORE_CHUNK_ROWS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(SCORE_CHUNK_ROWS)
}

/// Writes the batch scores of a deployed version again, from its artifact under
/// `models/<uc>/<version>/` and the validated tables of the run that trained it. Used when a
/// deployment lost the champion race (to undo its own score writes) and for rollbacks.
/// Returns the number of items written.
pub async fn publish_scores(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<usize> {
    let rec: EvaluationRecord = get_json(stores, &keys::deployed(uc, version, "evaluation.json")).await?;
    let model = get(stores, &keys::deployed(uc, version, "model.json")).await?;
    let spec = load_run_spec(stores, &rec.run_id).await?;
    score_and_write(stores, &spec, uc, &model, &rec).await
}

/// Scores the model of `rec` (its version) over the validated tables of the run that trained it
/// and writes the items; returns how many. The key of every item written goes to
/// `models/<uc>/<version>/score-keys.csv.gz`, so a later champion can remove the items of
/// customers and titles its data no longer has ([`super::stale`]). Per-row use cases (churn, segment) stream: their table
/// goes from the object store to a temp file and is scored [`SCORE_CHUNK_ROWS`] rows at a time
/// (`MARQUEE_SCORE_CHUNK_ROWS`), so memory holds one chunk of rows and items, not the table.
/// Recommend and sentiment need whole-table views and load their tables, which the ingest memory
/// budget bounds.
pub(super) async fn score_and_write(
    stores: Stores<'_>,
    spec: &Spec,
    uc: UseCase,
    artifact: &[u8],
    rec: &EvaluationRecord,
) -> Result<usize> {
    let model = usecase::of(uc);
    let (data_run, version) = (rec.run_id.as_str(), rec.version.as_str());
    let manifest = load_manifest(stores, data_run).await?;
    let mut written_keys = ScoreKeys::create()?;
    let write =
        |items: Vec<Item>| async move { stores.scores.put_items(items).await.map_err(Error::store("writing scores")) };
    let Some(table) = model.row_scored_table(spec) else {
        let tables = load_tables(stores, &manifest, &model.needed_tables(spec)).await?;
        let items = model.score(spec, artifact, &rec.challenger.deploy_params, &tables, version)?;
        let n = items.len();
        written_keys.add(&items)?;
        write(items).await?;
        written_keys.store(stores, uc, version).await?;
        return Ok(n);
    };
    let key = &manifest
        .tables
        .get(&table)
        .ok_or_else(|| Error::Invalid(format!("table `{table}` is not in the manifest of run {data_run}")))?
        .key;
    let io = |what: &str, e: std::io::Error| Error::Invalid(format!("{what} for scoring `{key}`: {e}"));
    let tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile().map_err(|e| io("creating a temp file", e))?;
    let mut body =
        stores.objects.open(key).await.map_err(Error::store(format!("reading {}", stores.objects.uri(key))))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(|e| io("opening the temp file", e))?);
    tokio::io::copy(&mut body, &mut file).await.map_err(|e| io("downloading", e))?;
    drop(file);
    let mut rdr = csv::Reader::from_path(tmp.path()).map_err(|e| Error::Invalid(format!("reading `{key}`: {e}")))?;
    let headers = Frame::csv_headers(&mut rdr, key)?;
    let (mut written, chunk_rows) = (0, score_chunk_rows());
    loop {
        let chunk = Frame::read_chunk(&mut rdr, &headers, chunk_rows, key)?;
        if chunk.n_rows() == 0 {
            written_keys.store(stores, uc, version).await?;
            return Ok(written);
        }
        let tables = Tables(BTreeMap::from([(table.clone(), chunk)]));
        let items = model.score(spec, artifact, &rec.challenger.deploy_params, &tables, version)?;
        written += items.len();
        written_keys.add(&items)?;
        write(items).await?;
    }
}

/// The keys of the score items a version wrote, streamed to a gzip CSV (`pk,sk` per line) in a
/// temp file while scoring, stored beside the version's artifact at the end.
struct ScoreKeys {
    file: tempfile::NamedTempFile,
    writer: csv::Writer<flate2::write::GzEncoder<std::fs::File>>,
}

impl ScoreKeys {
    fn create() -> Result<Self> {
        let io = |e: std::io::Error| Error::Invalid(format!("creating the score-keys temp file: {e}"));
        let file = tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile().map_err(io)?;
        let gz = flate2::write::GzEncoder::new(file.reopen().map_err(io)?, flate2::Compression::fast());
        Ok(Self { file, writer: csv::WriterBuilder::new().has_headers(false).from_writer(gz) })
    }

    fn add(&mut self, items: &[Item]) -> Result<()> {
        for item in items {
            self.writer
                .write_record([&item.pk, &item.sk])
                .map_err(|e| Error::Invalid(format!("writing the score keys: {e}")))?;
        }
        Ok(())
    }

    async fn store(self, stores: Stores<'_>, uc: UseCase, version: &str) -> Result<()> {
        let gz =
            self.writer.into_inner().map_err(|e| Error::Invalid(format!("writing the score keys: {}", e.error())))?;
        gz.finish().map_err(|e| Error::Invalid(format!("writing the score keys: {e}")))?;
        let key = keys::deployed(uc, version, SCORE_KEYS);
        put_file(stores, &key, self.file.path()).await
    }
}

/// The file of a deployed version listing its score items' keys.
pub(super) const SCORE_KEYS: &str = "score-keys.csv.gz";
