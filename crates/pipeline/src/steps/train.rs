//! Train (CRISP-DM modelling): fit one use case's model on its prepared training split and write
//! the artifact (which embeds its encoders, so it can score alone) under the run's `models/`.

use serde::{Deserialize, Serialize};
use std::time::Instant;

use super::io::{fingerprint, load_files, load_manifest, load_run_spec, load_tables, put};
use super::{Stores, UseCaseTask};
use crate::error::Result;
use crate::keys;
use crate::spec::UseCase;
use crate::usecase;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutput {
    pub run_id: String,
    pub use_case: UseCase,
    pub model_key: String,
    pub fit_seconds: f64,
}

pub async fn train(stores: Stores<'_>, task: &UseCaseTask) -> Result<TrainOutput> {
    run(stores, task).await.map_err(|e| e.in_step(&task.run_id, "train", Some(task.use_case.as_str())))
}

async fn run(stores: Stores<'_>, task: &UseCaseTask) -> Result<TrainOutput> {
    let (run_id, uc) = (task.run_id.as_str(), task.use_case);
    let model = usecase::of(uc);
    let spec = load_run_spec(stores, run_id).await?;
    let manifest = load_manifest(stores, run_id).await?;
    let files = load_files(stores, run_id, uc).await?;
    let tables = load_tables(stores, &manifest, &model.training_tables(&spec)).await?;
    let started = Instant::now();
    let artifact = model.train(&spec, &files, &tables, &fingerprint(&spec, uc, &manifest))?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let model_key = keys::run_model(run_id, uc, "model.json");
    put(stores, &model_key, artifact).await?;
    tracing::info!(run_id, use_case = %uc, fit_seconds, "trained");
    Ok(TrainOutput { run_id: run_id.into(), use_case: uc, model_key, fit_seconds })
}
