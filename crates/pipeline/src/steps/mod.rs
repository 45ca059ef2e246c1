//! The pipeline steps as library functions over the two store traits, one file per step. Each
//! step takes a small serialisable request and returns a small serialisable result holding
//! object-store keys, never data: the same JSON travels between Step Functions states and between
//! steps in embedded mode. Every step wraps its errors once, at its boundary, with the run, the
//! step and the use case ([`crate::Error::Step`]).

mod champion;
mod cutoff;
mod deploy;
mod evaluate;
mod ingest;
mod io;
mod prepare;
mod registry;
mod reject;
mod scoring;
mod stale;
mod summary;
mod to_segments;
mod train;
mod unchanged;

use serde::{Deserialize, Serialize};

pub use crate::store::Stores;
pub use champion::{read_champion, Champion};
pub use cutoff::{churn_cutoff_key, redeploy_churn_cutoff, CutoffChange};
pub use deploy::{
    deploy, deploy_in_parts, finish_deploy, plan_deploy, score_part, DeployOutput, DeployPlan, ScorePartOutput,
    ScorePartRequest,
};
pub use evaluate::{evaluate, ChampionComparison, EvaluateOutput, EvaluationRecord, Verdict};
pub use ingest::{
    ingest, ingest_with_memory, IngestOutput, Manifest, ManifestPart, ManifestTable, RecordIndex, RecordMark,
    RECORD_INDEX_EVERY,
};
pub use io::load_run_spec;
pub use prepare::{prepare, PrepareOutput, UseCaseTask};
pub use registry::{
    code_version, diff, promote, rollback, versions, Change, InputChange, InputFile, Lineage, Promotion, VersionDiff,
    VersionRecord,
};
pub use reject::reject;
pub use scoring::{publish_scores, score_part_rows, PartRange, PartedTable, ScorePlan};
pub use summary::{summarize, PromoteLine, RunSummary, UseCaseFailure, UseCaseResult};
pub use to_segments::{promote_to_segments, PromoteOutcome, PromoteOutput, PromoteRequest};
pub use train::{train, TrainOutput};

/// Starts a run: which spec, and the run id every key of the run is written under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRequest {
    pub run_id: String,
    /// Object-store key of the pipeline spec (TOML).
    pub spec_key: String,
    /// What started the run ("upload", "schedule", "cli"), for the record.
    #[serde(default)]
    pub trigger: Option<String>,
    /// Train every use case, even one whose data and spec section are its champion's (after a
    /// marquee upgrade, say). Such a use case still ends `unchanged` unless its model differs.
    #[serde(default)]
    pub retrain: bool,
}

/// A new run id: UTC time plus a short random suffix, sortable and unique enough for humans.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_subsec_nanos() as u64 ^ std::process::id() as u64;
    format!("{}-{:06x}", now.format("%Y%m%dT%H%M%SZ"), nanos & 0xff_ffff)
}
