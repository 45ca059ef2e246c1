//! The embedded orchestrator: the Step Functions flow of docs/design.md, in one process.
//!
//! Ingest -> QualityGate -> Prepare -> for each use case { Train -> Evaluate -> Deploy | Reject } -> Summary

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::spec::UseCase;
use crate::steps::{self, RunRequest, RunSummary, Stores, UseCaseResult, Verdict};

/// Progress events, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum Event {
    Started { step: &'static str, use_case: Option<UseCase> },
    Finished { step: &'static str, use_case: Option<UseCase>, elapsed: Duration, note: String },
}

/// Runs the whole flow. The quality gate failing is an error that names the file and line.
pub async fn run(stores: Stores<'_>, req: &RunRequest, on_event: &(dyn Fn(Event) + Sync)) -> Result<RunSummary> {
    let run_id = req.run_id.as_str();
    let timed = |step: &'static str, uc: Option<UseCase>| {
        on_event(Event::Started { step, use_case: uc });
        (Instant::now(), step, uc)
    };
    let done = |(t, step, uc): (Instant, &'static str, Option<UseCase>), note: String| {
        on_event(Event::Finished { step, use_case: uc, elapsed: t.elapsed(), note });
    };

    let t = timed("ingest", None);
    let ingest = steps::ingest(stores, req).await?;
    done(t, format!("{} rows ok, {} quarantined", ingest.rows_ok, ingest.rows_quarantined));
    if !ingest.quality_passed {
        return Err(Error::QualityGate {
            run_id: run_id.into(),
            message: format!(
                "{} (report: {}, quarantined rows: {})",
                ingest.quality_message.clone().unwrap_or_default(),
                stores.objects.uri(&ingest.quality_key),
                stores.objects.uri(&ingest.quarantine_key)
            ),
        });
    }

    let t = timed("prepare", None);
    let prepared = steps::prepare(stores, run_id).await?;
    done(t, format!("{} use cases", prepared.tasks.len()));

    let mut results = Vec::new();
    for task in &prepared.tasks {
        let uc = Some(task.use_case);
        let t = timed("train", uc);
        let trained = steps::train(stores, task).await?;
        done(t, format!("fit {:.2}s", trained.fit_seconds));

        let t = timed("evaluate", uc);
        let eval = steps::evaluate(stores, task).await?;
        done(t, format!("{} = {:.4}, {:?}", eval.metric, eval.value, eval.verdict));

        if eval.verdict == Verdict::Deploy {
            let t = timed("deploy", uc);
            let deployed = steps::deploy(stores, &eval).await?;
            done(t, format!("{} scores", deployed.scores_written));
            results.push(UseCaseResult::from_outputs(&eval, Some(&deployed)));
        } else {
            let t = timed("reject", uc);
            steps::reject(stores, &eval).await?;
            done(t, eval.reasons.join("; "));
            results.push(UseCaseResult::from_outputs(&eval, None));
        }
    }
    steps::summarize(stores, run_id, &ingest, results).await
}
