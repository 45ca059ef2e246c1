//! The embedded orchestrator: the Step Functions flow of docs/design.md, in one process.
//!
//! Ingest -> QualityGate -> Prepare -> for each changed use case { Train -> Evaluate -> Deploy | Reject }
//! -> Promote (segment x content) -> Summary
//!
//! Use cases whose data and spec section are their champion's are not prepared or trained; when
//! none changed, the run goes from ingest to the summary.
//!
//! As in the state machine, a use case whose step fails is recorded as failed in the summary
//! (step, error type, message) and the others go on; so is a failed promotion. The summary is
//! always written.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::spec::UseCase;
use crate::steps::{self, PromoteLine, PromoteOutput, RunRequest, RunSummary, Stores, UseCaseResult, Verdict};

/// Progress events, for progress bars and logs.
#[derive(Debug, Clone)]
pub enum Event {
    Started {
        step: &'static str,
        use_case: Option<UseCase>,
    },
    Finished {
        step: &'static str,
        use_case: Option<UseCase>,
        elapsed: Duration,
        note: String,
    },
    /// A use case not retrained: its data and spec section are its champion's.
    Skipped {
        use_case: UseCase,
        note: String,
    },
    /// A use case's step failed; the run goes on with the other use cases.
    Failed {
        step: &'static str,
        use_case: Option<UseCase>,
        elapsed: Duration,
        error: String,
    },
}

/// Runs the whole flow. The quality gate failing is an error that names the file and line; a
/// failed use case is in the summary's `failure_message` (the caller decides the exit status).
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

    for r in &ingest.unchanged {
        on_event(Event::Skipped { use_case: r.use_case, note: r.reasons.join("; ") });
    }
    let mut results = Vec::new();
    let tasks = if ingest.train_needed {
        let t = timed("prepare", None);
        let prepared = steps::prepare(stores, run_id).await?;
        done(t, format!("{} use cases", prepared.tasks.len()));
        prepared.tasks
    } else {
        Vec::new()
    };
    for task in &tasks {
        let uc = Some(task.use_case);
        let result = async {
            let t = timed("train", uc);
            let trained = steps::train(stores, task).await.map_err(|e| (t, e))?;
            done(t, format!("fit {:.2}s", trained.fit_seconds));

            let t = timed("evaluate", uc);
            let eval = steps::evaluate(stores, task).await.map_err(|e| (t, e))?;
            done(t, format!("{} = {:.4}, {:?}", eval.metric, eval.value, eval.verdict));

            if eval.verdict == Verdict::Deploy {
                let t = timed("deploy", uc);
                let deployed = steps::deploy(stores, &eval).await.map_err(|e| (t, e))?;
                done(t, format!("{} scores", deployed.scores_written));
                Ok(UseCaseResult::from_outputs(&eval, Some(&deployed)))
            } else {
                let t = timed("reject", uc);
                steps::reject(stores, &eval).await.map_err(|e| (t, e))?;
                done(t, eval.reasons.join("; "));
                Ok(UseCaseResult::from_outputs(&eval, None))
            }
        };
        results.push(match result.await {
            Ok(r) => r,
            Err(((started, step, uc), e)) => {
                let error = e.to_string();
                on_event(Event::Failed { step, use_case: uc, elapsed: started.elapsed(), error: error.clone() });
                tracing::error!(run_id, use_case = %task.use_case, step, error = %error, "use case failed");
                UseCaseResult::failed(task.use_case, step, e.error_type(), &error)
            }
        });
    }
    let promote = if ingest.train_needed {
        let t = timed("promote", None);
        match steps::promote_to_segments(stores, run_id).await {
            Ok(out) => {
                done(t, format!("{:?}: {} segments {}", out.outcome, out.segments, out.note).to_lowercase());
                PromoteLine::Done(out)
            }
            Err(e) => {
                let (started, step, _) = t;
                let cause = e.to_string();
                on_event(Event::Failed { step, use_case: None, elapsed: started.elapsed(), error: cause.clone() });
                tracing::error!(run_id, error = %cause, "segment promotion failed");
                PromoteLine::Failed { error: e.error_type().to_string(), cause }
            }
        }
    } else {
        PromoteLine::Done(PromoteOutput::skipped(run_id, "nothing was trained"))
    };
    steps::summarize(stores, run_id, &ingest, results, Some(promote)).await
}
