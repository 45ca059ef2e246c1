//! One error type for the steps. Every variant carries the context a user needs to act:
//! which field, which file/line/column, which run and key.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid pipeline spec: `{field}`: {message}")]
    Spec { field: String, message: String },
    #[error("{file}:{line}: column `{column}`: {reason}")]
    Input { file: String, line: u64, column: String, reason: String },
    #[error("quality gate failed for run {run_id}: {message}")]
    QualityGate { run_id: String, message: String },
    /// A store operation failed; `context` says what the step was doing ("reading s3://b/k").
    #[error("{context}: {source}")]
    Store { context: String, source: StoreError },
    #[error(transparent)]
    Ml(#[from] marquee_ml::MlError),
    /// Any error, with the run, step and use case it happened in: the one wrapper every step puts
    /// around its errors at its boundary, so the run and step are named once.
    #[error("run {run_id}, step {step}{}: {source}", use_case.as_ref().map(|u| format!(" ({u})")).unwrap_or_default())]
    Step { run_id: String, step: String, use_case: Option<String>, source: Box<Error> },
    #[error("corrupt artifact `{key}`: {message}")]
    Artifact { key: String, message: String },
    /// Another run holds the working folder (embedded mode).
    #[error("{what} is busy: {holder}; {hint}")]
    Busy { what: String, holder: String, hint: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Error type of a failure worth retrying (a backend hiccup that outlived the SDK's own retries,
/// or an injected fault); the state machine retries it.
pub const TRANSIENT: &str = "Marquee.Transient";
/// A step failed for a reason a retry will not fix (bad spec, corrupt artifact, refused access).
pub const STEP_FAILED: &str = "Marquee.StepFailed";
/// A conditional write lost a race (e.g. another deployment flipped the champion first).
pub const CONDITION_FAILED: &str = "Marquee.ConditionFailed";

impl Error {
    pub fn in_step(self, run_id: &str, step: &str, use_case: Option<&str>) -> Self {
        match self {
            e @ Error::Step { .. } => e,
            e => Error::Step {
                run_id: run_id.into(),
                step: step.into(),
                use_case: use_case.map(str::to_string),
                source: Box::new(e),
            },
        }
    }

    /// The error type a failure is reported as (Lambda's `errorType`, what the state machine's
    /// Retry and Catch match on, and a failed use case's `error` in the run summary).
    pub fn error_type(&self) -> &'static str {
        match self {
            Error::Step { source, .. } => source.error_type(),
            Error::Store { source: StoreError::Backend { .. }, .. } => TRANSIENT,
            Error::Store { source: StoreError::ConditionFailed { .. }, .. } => CONDITION_FAILED,
            // Refused (AccessDenied, no such bucket/table, ...) and everything else: a retry cannot help.
            _ => STEP_FAILED,
        }
    }

    pub fn spec(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Spec { field: field.into(), message: message.into() }
    }

    /// Turns a store failure into an error saying what was being done, for `map_err`.
    pub fn store(context: impl Into<String>) -> impl FnOnce(StoreError) -> Self {
        let context = context.into();
        move |source| Error::Store { context, source }
    }
}
