//! Prepare (CRISP-DM data preparation): seeded splits and fitted encoders for every use case of
//! the spec, written under the run's `prepared/<use_case>/`.

use serde::{Deserialize, Serialize};

use super::io::{load_manifest, load_run_spec, load_tables, put};
use super::Stores;
use crate::error::Result;
use crate::keys;
use crate::spec::{Spec, UseCase};
use crate::usecase::{self, Tables};

/// One use case of one run: the input of train and evaluate (one Map iteration on AWS).
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

pub async fn prepare(stores: Stores<'_>, run_id: &str) -> Result<PrepareOutput> {
    run(stores, run_id).await.map_err(|e| e.in_step(run_id, "prepare", None))
}

async fn run(stores: Stores<'_>, run_id: &str) -> Result<PrepareOutput> {
    let spec = load_run_spec(stores, run_id).await?;
    let manifest = load_manifest(stores, run_id).await?;
    // Use cases ingest found unchanged are not prepared (nor trained: they get no task).
    let models: Vec<_> = usecase::enabled(&spec).filter(|model| !manifest.unchanged.contains(&model.id())).collect();
    // Tables are loaded when a use case first needs them and dropped after the last one that
    // does, so the step holds the largest use case's tables rather than all of them.
    let needs: Vec<Vec<String>> = models.iter().map(|model| model.needed_tables(&spec)).collect();
    let mut tables = Tables::default();
    let mut tasks = Vec::new();
    for (i, model) in models.iter().enumerate() {
        let uc = model.id();
        let missing: Vec<String> = needs[i].iter().filter(|t| !tables.0.contains_key(*t)).cloned().collect();
        tables.0.extend(load_tables(stores, &manifest, &missing).await?.0);
        // A use case's own failure names it (the wrapper above leaves a wrapped error as it is).
        prepare_one(stores, run_id, &spec, &tables, *model)
            .await
            .map_err(|e| e.in_step(run_id, "prepare", Some(uc.as_str())))?;
        tables.0.retain(|name, _| needs[i + 1..].iter().any(|later| later.contains(name)));
        tasks.push(UseCaseTask { run_id: run_id.into(), use_case: uc });
    }
    Ok(PrepareOutput { run_id: run_id.into(), tasks })
}

async fn prepare_one(
    stores: Stores<'_>,
    run_id: &str,
    spec: &Spec,
    tables: &Tables,
    model: &dyn usecase::UseCase,
) -> Result<()> {
    for (name, bytes) in model.prepare(spec, tables)?.0 {
        put(stores, &keys::prepared(run_id, model.id(), &name), bytes).await?;
    }
    Ok(())
}
