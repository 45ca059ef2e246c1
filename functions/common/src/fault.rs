//! Fault injection for the retry tests: with `MARQUEE_INJECT_FAULT=<step>[,<step>...]` (or `*`),
//! the first invocation of a listed step in each Lambda container fails with the retryable
//! error type `Marquee.Transient`; the state machine's Retry then re-invokes it (usually in the
//! same warm container) and it succeeds. Unset in production.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::HandlerError;

pub const ENV: &str = "MARQUEE_INJECT_FAULT";

static FIRED: AtomicBool = AtomicBool::new(false);

/// Whether `setting` (the variable's value) names `step`.
fn names(setting: &str, step: &str) -> bool {
    setting.split(',').map(str::trim).any(|s| s == step || s == "*")
}

fn fail_once(step: &'static str, setting: Option<&str>, fired: &AtomicBool) -> Result<(), HandlerError> {
    match setting {
        Some(s) if names(s, step) && !fired.swap(true, Ordering::SeqCst) => Err(HandlerError::InjectedFault { step }),
        _ => Ok(()),
    }
}

/// Fails the first call in this process when `MARQUEE_INJECT_FAULT` names `step`.
pub fn check(step: &'static str) -> Result<(), HandlerError> {
    fail_once(step, std::env::var(ENV).ok().as_deref(), &FIRED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_only_the_first_invocation_of_a_named_step() {
        let fired = AtomicBool::new(false);
        assert!(fail_once("train", Some("ingest"), &fired).is_ok());
        assert!(fail_once("train", None, &fired).is_ok());
        assert!(matches!(
            fail_once("train", Some("ingest, train"), &fired),
            Err(HandlerError::InjectedFault { step: "train" })
        ));
        assert!(fail_once("train", Some("ingest, train"), &fired).is_ok());
        assert!(fail_once("deploy", Some("*"), &AtomicBool::new(false)).is_err());
    }
}
