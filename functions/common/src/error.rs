//! Handler errors and the Lambda error types the state machine's Retry/Catch match on.

use marquee_pipeline::Error as StepError;

/// The step errors' types (statemachines/pipeline.asl.json retries `Marquee.Transient`).
pub use marquee_pipeline::error::{CONDITION_FAILED, STEP_FAILED, TRANSIENT};
/// The event could not be read, or the function is misconfigured.
pub const BAD_REQUEST: &str = "Marquee.BadRequest";

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{step}: bad request: {message}")]
    BadRequest { step: &'static str, message: String },
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("{step}: injected fault (MARQUEE_INJECT_FAULT); a retry succeeds")]
    InjectedFault { step: &'static str },
    #[error("{step}: cannot write the result: {message}")]
    Output { step: &'static str, message: String },
}

impl HandlerError {
    pub fn bad_request(step: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { step, message: message.into() }
    }

    /// The Lambda `errorType` (what Step Functions' ErrorEquals sees).
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } | Self::Output { .. } => BAD_REQUEST,
            Self::InjectedFault { .. } => TRANSIENT,
            Self::Step(e) => e.error_type(),
        }
    }
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.error_type().to_string(), error_message: e.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use marquee_pipeline::store::{Refusal, StoreError};

    #[test]
    fn store_failures_map_to_retryable_or_not() {
        let backend = StepError::Store {
            context: "c".into(),
            source: StoreError::Backend { op: "get", key: "k".into(), message: "timeout".into() },
        };
        assert_eq!(HandlerError::from(backend.in_step("r", "train", Some("churn"))).error_type(), TRANSIENT);
        let race = StepError::Store {
            context: "c".into(),
            source: StoreError::ConditionFailed { pk: "p".into(), sk: "s".into(), reason: "x".into() },
        };
        assert_eq!(HandlerError::from(race).error_type(), CONDITION_FAILED);
        // AccessDenied, a missing bucket or table: a retry gets the same answer.
        let refused = StepError::Store {
            context: "c".into(),
            source: StoreError::Refused(Box::new(Refusal {
                action: "dynamodb:GetItem".into(),
                resource: "table scores".into(),
                code: "AccessDeniedException".into(),
                message: "not authorized".into(),
            })),
        };
        let refused = HandlerError::from(refused.in_step("r", "evaluate", Some("churn")));
        assert_eq!(refused.error_type(), STEP_FAILED);
        assert!(refused.to_string().contains("dynamodb:GetItem on table scores"), "{refused}");
        assert_eq!(HandlerError::from(StepError::Invalid("no".into())).error_type(), STEP_FAILED);
        let d: lambda_runtime::Diagnostic = HandlerError::InjectedFault { step: "train" }.into();
        assert_eq!(d.error_type, TRANSIENT);
        assert!(d.error_message.contains("train"));
    }
}
