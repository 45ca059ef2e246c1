//! Object-store access shared by the steps: reads and writes that name the object on failure,
//! the run's own copy of the spec, its validated tables and a use case's prepared files.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

use super::{Manifest, Stores};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys;
use crate::spec::{Spec, UseCase};
use crate::usecase::{self, Files, Tables};

pub(super) async fn get(stores: Stores<'_>, key: &str) -> Result<Vec<u8>> {
    stores.objects.get(key).await.map_err(Error::store(format!("reading {}", stores.objects.uri(key))))
}

pub(super) async fn put(stores: Stores<'_>, key: &str, bytes: Vec<u8>) -> Result<()> {
    stores.objects.put(key, bytes).await.map_err(Error::store(format!("writing {}", stores.objects.uri(key))))
}

pub(super) async fn put_file(stores: Stores<'_>, key: &str, path: &Path) -> Result<()> {
    stores.objects.put_file(key, path).await.map_err(Error::store(format!("writing {}", stores.objects.uri(key))))
}

pub(super) async fn get_json<T: for<'de> Deserialize<'de>>(stores: Stores<'_>, key: &str) -> Result<T> {
    let bytes = get(stores, key).await?;
    parse_json(&bytes, key)
}

/// [`get_json`] of an object that may be absent (e.g. written only by newer versions).
pub(super) async fn get_json_opt<T: for<'de> Deserialize<'de>>(stores: Stores<'_>, key: &str) -> Result<Option<T>> {
    let bytes =
        stores.objects.get_opt(key).await.map_err(Error::store(format!("reading {}", stores.objects.uri(key))))?;
    bytes.map(|b| parse_json(&b, key)).transpose()
}

pub(super) fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], key: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Artifact { key: key.into(), message: e.to_string() })
}

pub(super) async fn put_json<T: Serialize>(stores: Stores<'_>, key: &str, value: &T) -> Result<()> {
    put(stores, key, serde_json::to_vec_pretty(value).expect("step records always serialise")).await
}

/// The spec as this run saw it (ingest saved a copy under the run prefix).
pub async fn load_run_spec(stores: Stores<'_>, run_id: &str) -> Result<Spec> {
    let key = keys::run_spec(run_id);
    let text = get(stores, &key).await?;
    Spec::from_toml(&String::from_utf8_lossy(&text), &stores.objects.uri(&key))
}

/// The run's ingest manifest (which validated table is where).
pub(super) async fn load_manifest(stores: Stores<'_>, run_id: &str) -> Result<Manifest> {
    get_json(stores, &keys::ingest_manifest(run_id)).await
}

/// The validated tables `names` of the run whose `manifest` is given.
pub(super) async fn load_tables(stores: Stores<'_>, manifest: &Manifest, names: &[String]) -> Result<Tables> {
    let mut tables = Tables::default();
    for name in names {
        if tables.0.contains_key(name) {
            continue;
        }
        let entry = manifest.tables.get(name).ok_or_else(|| {
            Error::Invalid(format!("table `{name}` is not in the manifest of run {}", manifest.run_id))
        })?;
        let bytes = get(stores, &entry.key).await?;
        tables.0.insert(name.clone(), Frame::from_csv(&bytes, &entry.key)?);
    }
    Ok(tables)
}

/// The files prepare wrote for one use case of a run.
pub(super) async fn load_files(stores: Stores<'_>, run_id: &str, uc: UseCase) -> Result<Files> {
    let prefix = keys::prepared(run_id, uc, "");
    let mut files = Files::new();
    let listed = stores
        .objects
        .list(&prefix)
        .await
        .map_err(Error::store(format!("listing the prepared files under {}", stores.objects.uri(&prefix))))?;
    for key in listed {
        let bytes = get(stores, &key).await?;
        files.insert(key[prefix.len()..].to_string(), bytes);
    }
    Ok(files)
}

/// Same spec section + same input bytes = same fingerprint (the champion check's "unchanged").
pub(super) fn fingerprint(spec: &Spec, uc: UseCase, manifest: &Manifest) -> String {
    let model = usecase::of(uc);
    let mut h = Sha256::new();
    h.update(usecase::spec_section(spec, model).to_string());
    for name in model.needed_tables(spec) {
        if let Some(t) = manifest.tables.get(&name) {
            h.update(name.as_bytes());
            h.update(t.sha256.as_bytes());
        }
    }
    hex::encode(h.finalize())
}
