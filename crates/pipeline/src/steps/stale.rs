//! Stale scores: when a new champion takes over (deploy, promote, rollback), the items of the
//! customers, titles and entities the old champion scored and the new one did not (they left the
//! data) are deleted, so no reader sees a score from a model that no longer serves. Deleting,
//! not marking: a DynamoDB reader would have to know the champion to skip a marked item.
//!
//! Each deployed version lists the keys it wrote (`models/<uc>/<v>/score-keys.csv.gz`, see
//! [`super::scoring`]); the stale keys are the old list minus the new. The new list is held as
//! 64-bit hashes (about 16 bytes per item in memory); a hash collision keeps a stale item, never
//! deletes a live one.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::io::get;
use super::scoring::SCORE_KEYS;
use super::Stores;
use crate::error::{Error, Result};
use crate::keys;
use crate::spec::UseCase;

/// Deletes are sent in groups of this many keys.
const DELETE_CHUNK: usize = 1_000;

fn key_hash(pk: &str, sk: &str) -> u64 {
    let mut h = DefaultHasher::new();
    (pk, sk).hash(&mut h);
    h.finish()
}

/// Reads a version's score-keys file; None when the version was deployed before keys were kept.
async fn score_keys(stores: Stores<'_>, uc: UseCase, version: &str) -> Result<Option<Vec<(String, String)>>> {
    let key = keys::deployed(uc, version, SCORE_KEYS);
    let exists =
        stores.objects.size(&key).await.map_err(Error::store(format!("reading {}", stores.objects.uri(&key))))?;
    if exists.is_none() {
        return Ok(None);
    }
    let bytes = get(stores, &key).await?;
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(false).from_reader(flate2::read::MultiGzDecoder::new(&bytes[..]));
    let mut out = Vec::new();
    for (line, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| Error::Invalid(format!("{}, line {}: {e}", stores.objects.uri(&key), line + 1)))?;
        match (rec.get(0), rec.get(1)) {
            (Some(pk), Some(sk)) => out.push((pk.to_string(), sk.to_string())),
            _ => {
                return Err(Error::Invalid(format!(
                    "{}, line {}: expected `pk,sk`",
                    stores.objects.uri(&key),
                    line + 1
                )))
            }
        }
    }
    Ok(Some(out))
}

/// Deletes the score items `previous` wrote that `current` did not; returns how many. Nothing is
/// deleted when either version's key list is missing (deployed before lists were kept): the
/// count is then 0 and a warning is logged.
pub(super) async fn retire_stale(stores: Stores<'_>, uc: UseCase, previous: &str, current: &str) -> Result<usize> {
    if previous == current {
        return Ok(0);
    }
    let (Some(old), Some(new)) = (score_keys(stores, uc, previous).await?, score_keys(stores, uc, current).await?)
    else {
        tracing::warn!(use_case = %uc, previous, current, "a version has no score-keys list: stale scores not removed");
        return Ok(0);
    };
    let live: HashSet<u64> = new.iter().map(|(pk, sk)| key_hash(pk, sk)).collect();
    drop(new);
    let stale: Vec<(String, String)> = old.into_iter().filter(|(pk, sk)| !live.contains(&key_hash(pk, sk))).collect();
    let n = stale.len();
    for chunk in stale.chunks(DELETE_CHUNK) {
        stores
            .scores
            .delete_items(chunk.to_vec())
            .await
            .map_err(Error::store(format!("removing the stale scores of {uc} version {previous}")))?;
    }
    if n > 0 {
        tracing::info!(use_case = %uc, previous, current, removed = n, "stale scores removed");
    }
    Ok(n)
}
