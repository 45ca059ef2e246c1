use thiserror::Error;

/// Errors from fitting or applying a model. Messages name the parameter or input at fault.
#[derive(Debug, Error)]
pub enum MlError {
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

pub type Result<T> = std::result::Result<T, MlError>;

/// Lets our params implement linfa's `Fit`, whose error type must absorb linfa's own errors.
impl From<linfa::Error> for MlError {
    fn from(err: linfa::Error) -> Self {
        match err {
            linfa::Error::Parameters(reason) => MlError::InvalidParam { name: "linfa", reason },
            other => MlError::InvalidInput(other.to_string()),
        }
    }
}
