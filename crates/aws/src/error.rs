//! SDK errors -> [`StoreError`]: a failure a retry may fix stays `Backend` (the Lambda reports it
//! as `Marquee.Transient` and the state machine retries it); one no retry fixes (AccessDenied, a
//! missing bucket or table, a request the service rejects) becomes `Refused`, naming the IAM
//! action and the resource, so the run fails at once with `Marquee.StepFailed`.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use marquee_pipeline::store::{Refusal, StoreError};

/// Service error codes that the same request will get again, however often it is retried.
/// Throttling, 5xx and expired credentials (Lambda hands out fresh ones) are not here.
const PERMANENT_CODES: &[&str] = &[
    // IAM: the caller's policies do not allow the action on the resource.
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    // The bucket or table does not exist (wrong MARQUEE_BUCKET / MARQUEE_TABLE, deleted stack).
    "NoSuchBucket",
    "InvalidBucketName",
    "ResourceNotFoundException",
    // The request itself is malformed for this service.
    "ValidationException",
    "SerializationException",
];

/// Whether a service error code is one a retry cannot fix.
pub fn is_permanent_code(code: &str) -> bool {
    PERMANENT_CODES.contains(&code)
}

/// One SDK call's failure. `op` and `key` describe the call in marquee's terms (what a transient
/// failure reports); `action` and `resource` in IAM's (what a refusal reports).
pub(crate) fn store_error<E, R>(
    op: &'static str,
    key: &str,
    action: &str,
    resource: impl FnOnce() -> String,
    e: SdkError<E, R>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let SdkError::ServiceError(se) = &e {
        if let Some(code) = se.err().code().filter(|c| is_permanent_code(c)) {
            return StoreError::Refused(Box::new(Refusal {
                action: action.to_string(),
                resource: resource(),
                code: code.to_string(),
                message: se.err().message().unwrap_or("no message").to_string(),
            }));
        }
    }
    StoreError::Backend { op, key: key.to_string(), message: DisplayErrorContext(e).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_and_missing_resources_are_permanent_throttling_is_not() {
        for code in ["AccessDenied", "AccessDeniedException", "NoSuchBucket", "ResourceNotFoundException"] {
            assert!(is_permanent_code(code), "{code}");
        }
        for code in [
            "SlowDown",
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
            "InternalError",
            "ExpiredToken",
        ] {
            assert!(!is_permanent_code(code), "{code}");
        }
    }
}
