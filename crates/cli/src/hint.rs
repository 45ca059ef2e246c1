//! Errors a user can act on: a message, a hint of what to do next, and the exit code.

use std::fmt;

/// Exit code when the thing asked for is not there (no such run, no scores for a customer).
pub const EXIT_NOT_FOUND: i32 = 4;
/// Exit code when a request cannot be met (e.g. no cutoff reaches the asked precision).
pub const EXIT_UNMET: i32 = 5;
/// Exit code when a use case failed in a step while the others finished (`marquee run`).
pub const EXIT_USE_CASE_FAILED: i32 = 6;
/// Exit code when another process is writing to the working folder.
pub const EXIT_BUSY: i32 = 7;

#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
    pub code: i32,
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

pub fn not_found(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted { message: message.into(), hint: hint.into(), code: EXIT_NOT_FOUND }.into()
}

pub fn unmet(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted { message: message.into(), hint: hint.into(), code: EXIT_UNMET }.into()
}

pub fn use_case_failed(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted { message: message.into(), hint: hint.into(), code: EXIT_USE_CASE_FAILED }.into()
}

pub fn busy(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted { message: message.into(), hint: hint.into(), code: EXIT_BUSY }.into()
}

/// Failure (any code other than success and usage) with a hint.
pub fn failed(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted { message: message.into(), hint: hint.into(), code: 1 }.into()
}
