//! Reading the real datasets as their specs declare (the pipeline's own ingest) and the
//! protocol fold files; seeded stratified k-folds where no protocol exists.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::frame::Frame;
use marquee_pipeline::ingest::ingest_table;
use marquee_pipeline::spec::Spec;
use marquee_pipeline::usecase::{self, Tables};

/// One train/test split as row indices of the main table (both sorted, disjoint).
#[derive(Debug, Clone, PartialEq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// `<tables_dir>/<file>` of a spec table.
pub fn table_path(spec: &Spec, tables_dir: &Path, table: &str) -> Result<PathBuf> {
    Ok(tables_dir.join(&spec.table(table)?.file))
}

/// Ingests the tables a use case needs, exactly as a pipeline run would (same parser, same
/// checks); any quarantined row or gate problem is an error here (benchmark files are clean).
/// `limit` keeps the first rows of `main` only (other tables, e.g. titles, stay whole).
pub fn load_tables(
    spec: &Spec,
    tables_dir: &Path,
    names: &[String],
    main: &str,
    limit: Option<usize>,
) -> Result<Tables> {
    load_tables_with(spec, tables_dir, names, main, limit.map(Limit::First))
}

/// How a slice of the main table is taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// The first rows (protocol files index rows by position).
    First(usize),
    /// A seeded random sample, in file order (for files sorted by label, e.g. the review sets).
    Sample(usize, u64),
}

pub fn load_tables_with(
    spec: &Spec,
    tables_dir: &Path,
    names: &[String],
    main: &str,
    limit: Option<Limit>,
) -> Result<Tables> {
    let labels = usecase::label_columns(spec);
    let mut tables = Tables::default();
    for name in names {
        if tables.0.contains_key(name) {
            continue;
        }
        let path = table_path(spec, tables_dir, name)?;
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::Invalid(format!(
                "reading {} (table `{name}` of the spec; is the data folder right?): {e}",
                path.display()
            ))
        })?;
        let file = path.display().to_string();
        let t = ingest_table(
            name,
            spec.table(name)?,
            &file,
            &bytes,
            labels.get(name).map_or(&[][..], Vec::as_slice),
            i64::MAX / 4,
        );
        if let Some(problem) = t.quality.problems.first() {
            return Err(Error::Invalid(format!("ingesting {file}: {problem}")));
        }
        if let Some(q) = t.quarantined.first() {
            let share = t.quarantined.len() as f64 / t.quality.rows_read.max(1) as f64;
            if share > spec.quality.max_bad_row_share {
                return Err(Error::Invalid(format!(
                    "ingesting {file}: {} rows rejected, first at line {}, column `{}`: {}",
                    t.quarantined.len(),
                    q.line,
                    q.column,
                    q.reason
                )));
            }
        }
        let mut frame = t.frame;
        if name == main {
            match limit {
                Some(Limit::First(n)) if n < frame.n_rows() => frame = frame.select_rows(&(0..n).collect::<Vec<_>>()),
                Some(Limit::Sample(n, seed)) if n < frame.n_rows() => {
                    let mut idx: Vec<usize> = (0..frame.n_rows()).collect();
                    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                    idx.truncate(n);
                    idx.sort_unstable();
                    frame = frame.select_rows(&idx);
                }
                _ => {}
            }
        }
        tables.0.insert(name.clone(), frame);
    }
    Ok(tables)
}

/// A protocol CSV (`<data dir>/protocol/<file>` of a named task).
pub fn protocol_frame(path: &Path) -> Result<Frame> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::Invalid(format!("reading protocol file {}: {e}", path.display())))?;
    Frame::from_csv(&bytes, &path.display().to_string())
}

fn parse_usize(v: &str, what: &str) -> Result<usize> {
    v.trim().parse().map_err(|_| Error::Invalid(format!("{what}: `{v}` is not a non-negative integer")))
}

/// Folds from a fold-assignment column: for each fold id (ascending), test = rows with that id,
/// train = all other rows. `row_of[i]` is the protocol row id of frame row `i`; protocol rows
/// not in the frame (e.g. beyond a `--limit`) are ignored. `max_folds` keeps the first folds.
pub fn folds_from_assignment(
    row_of: &[usize],
    assignment: &HashMap<usize, usize>,
    max_folds: Option<usize>,
) -> Result<Vec<Fold>> {
    let mut fold_ids: Vec<usize> = assignment.values().copied().collect();
    fold_ids.sort_unstable();
    fold_ids.dedup();
    let fold_of: Vec<usize> = row_of
        .iter()
        .map(|r| {
            assignment
                .get(r)
                .copied()
                .ok_or_else(|| Error::Invalid(format!("row {r} has no fold in the protocol file")))
        })
        .collect::<Result<_>>()?;
    let take = max_folds.unwrap_or(fold_ids.len()).min(fold_ids.len());
    Ok(fold_ids[..take]
        .iter()
        .map(|&f| {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..row_of.len()).partition(|&i| fold_of[i] == f);
            Fold { train, test }
        })
        .collect())
}

/// `row -> value` of two columns of a protocol frame.
pub fn assignment(frame: &Frame, key: &str, value: &str) -> Result<HashMap<usize, usize>> {
    frame
        .col(key)?
        .iter()
        .zip(frame.col(value)?)
        .map(|(k, v)| Ok((parse_usize(k, key)?, parse_usize(v, value)?)))
        .collect()
}

/// Seeded stratified k-fold: each class is shuffled and dealt round-robin to the folds, so every
/// fold keeps the class balance. Returns folds in order 0..k.
pub fn stratified_kfold(labels: &[bool], k: usize, seed: u64) -> Vec<Fold> {
    let fold_of = marquee_pipeline::usecase::common::stratified_fold_of(labels, k, seed);
    (0..k)
        .map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|&i| fold_of[i] == f);
            Fold { train, test }
        })
        .collect()
}

/// A seeded random `share` of `rows` as validation, the rest as fit (both sorted): the inner split
/// hyper-parameters are chosen on, never touching the outer test fold.
pub fn inner_split(rows: &[usize], share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx = rows.to_vec();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_val = ((idx.len() as f64) * share).round() as usize;
    let (val, fit) = idx.split_at(n_val.min(idx.len()));
    let (mut fit, mut val) = (fit.to_vec(), val.to_vec());
    fit.sort_unstable();
    val.sort_unstable();
    (fit, val)
}

/// Seeded per-user k-fold for ratings: each user's ratings are shuffled and dealt round-robin to
/// the folds (starting at a random fold per user), so every user with at least k ratings is in
/// every test fold and every rating is tested exactly once.
pub fn per_user_kfold<S: AsRef<str>>(users: &[S], k: usize, seed: u64) -> Vec<Fold> {
    let mut by_user: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in users.iter().enumerate() {
        by_user.entry(u.as_ref()).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold_of = vec![0usize; users.len()];
    for rows in by_user.values_mut() {
        rows.shuffle(&mut rng);
        let start = rand::Rng::gen_range(&mut rng, 0..k);
        for (j, &i) in rows.iter().enumerate() {
            fold_of[i] = (start + j) % k;
        }
    }
    (0..k)
        .map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) = (0..users.len()).partition(|&i| fold_of[i] == f);
            Fold { train, test }
        })
        .collect()
}
