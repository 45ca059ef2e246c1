//! The unchanged check, at the end of ingest: a use case whose data and spec section have the
//! fingerprint of its champion's would train the same model again, so it is not prepared,
//! trained or evaluated; the run summary records it as `unchanged`. A scheduled run on unchanged
//! data then stops after ingest.

use super::champion::read_champion;
use super::io::fingerprint;
use super::{Manifest, Stores, UseCaseResult};
use crate::error::Result;
use crate::spec::Spec;
use crate::usecase;

/// The results of the enabled use cases whose fingerprint equals their champion's.
pub(super) async fn unchanged_use_cases(
    stores: Stores<'_>,
    spec: &Spec,
    manifest: &Manifest,
) -> Result<Vec<UseCaseResult>> {
    let mut out = Vec::new();
    for model in usecase::enabled(spec) {
        let uc = model.id();
        let fp = fingerprint(spec, uc, manifest);
        if let Some(champion) = read_champion(stores, &manifest.run_id, uc).await?.filter(|c| c.fingerprint == fp) {
            out.push(UseCaseResult::unchanged(&champion));
        }
    }
    Ok(out)
}
