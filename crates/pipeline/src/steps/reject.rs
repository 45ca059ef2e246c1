//! Reject: the other branch of the deploy gate. Records the rejected (or unchanged) version and
//! its reasons; writes no scores and leaves the champion as it is.

use super::deploy::version_item;
use super::io::get_json;
use super::registry::lineage;
use super::{EvaluateOutput, EvaluationRecord, Stores, Verdict};
use crate::error::{Error, Result};
use crate::keys;

pub async fn reject(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<EvaluateOutput> {
    run(stores, eval).await.map_err(|e| e.in_step(&eval.run_id, "reject", Some(eval.use_case.as_str())))
}

async fn run(stores: Stores<'_>, eval: &EvaluateOutput) -> Result<EvaluateOutput> {
    let (run_id, uc) = (eval.run_id.as_str(), eval.use_case);
    let rec: EvaluationRecord = get_json(stores, &eval.evaluation_key).await?;
    let status = match rec.verdict {
        Verdict::Unchanged => "unchanged",
        _ => "rejected",
    };
    let uri = stores.objects.uri(&keys::run_model(run_id, uc, "model.json"));
    stores
        .scores
        .put_items(vec![version_item(&rec, status, &uri, &lineage(stores, &rec).await?)])
        .await
        .map_err(Error::store("recording the rejection"))?;
    tracing::info!(run_id, use_case = %uc, status, reasons = ?rec.reasons, "not deployed");
    Ok(eval.clone())
}
