//! Fault injection, for tests only (unset in production): `MARQUEE_INJECT_FAULT` is a
//! comma-separated list of `<step>[:<fault>]` entries, `<step>` being a step name (`train`, ...)
//! or `*` for every step; the first entry naming the step decides:
//!
//! - `train` or `train:transient`: the first invocation of the step in each Lambda container fails
//!   with the retryable error type `Marquee.Transient`; the state machine's Retry re-invokes it
//!   (usually in the same warm container) and it succeeds.
//! - `train:timeout`: every invocation of the step sleeps [`TIMEOUT_SLEEP`] (past Lambda's
//!   900 s maximum) before doing its work, so the function's timeout ends it (`Sandbox.Timedout`).
//! - `train:oom`: every invocation allocates and touches memory, [`OOM_CHUNK`] at a time, until
//!   the function's memory limit gets the process killed (`Runtime.OutOfMemory`); where nothing
//!   limits it, it stops at [`OOM_CAP`], frees it all and does its work.
//!
//! An unknown fault name fails the invocation with `Marquee.BadRequest` rather than being ignored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::HandlerError;

pub const ENV: &str = "MARQUEE_INJECT_FAULT";
/// How long `:timeout` sleeps: longer than any Lambda timeout (900 s at most).
pub const TIMEOUT_SLEEP: Duration = Duration::from_secs(1000);
/// What `:oom` allocates (and writes) per step.
pub const OOM_CHUNK: usize = 64 << 20;
/// Where `:oom` stops when nothing kills the process first: past Lambda's largest memory size
/// (10,240 MB), so any configured limit is hit first.
pub const OOM_CAP: usize = 11 << 30;

static FIRED: AtomicBool = AtomicBool::new(false);

/// A fault `MARQUEE_INJECT_FAULT` can inject into a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The first invocation per container fails with `Marquee.Transient`.
    Transient,
    /// The invocation sleeps past the function's timeout.
    Timeout,
    /// The invocation allocates until the function's memory limit kills the process.
    OutOfMemory,
}

/// The fault `setting` (the variable's value) injects into `step`, if any.
pub fn parse(setting: &str, step: &str) -> Result<Option<Fault>, String> {
    for entry in setting.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, fault) = entry.split_once(':').map_or((entry, ""), |(n, f)| (n.trim(), f.trim()));
        if name != step && name != "*" {
            continue;
        }
        return match fault {
            "" | "transient" => Ok(Some(Fault::Transient)),
            "timeout" => Ok(Some(Fault::Timeout)),
            "oom" => Ok(Some(Fault::OutOfMemory)),
            other => Err(format!("{ENV}: unknown fault {other:?} in {entry:?} (transient, timeout or oom)")),
        };
    }
    Ok(None)
}

fn fail_once(step: &'static str, setting: Option<&str>, fired: &AtomicBool) -> Result<Option<Fault>, HandlerError> {
    match parse(setting.unwrap_or(""), step).map_err(|e| HandlerError::bad_request(step, e))? {
        Some(Fault::Transient) if fired.swap(true, Ordering::SeqCst) => Ok(None),
        Some(Fault::Transient) => Err(HandlerError::InjectedFault { step }),
        other => Ok(other),
    }
}

/// Allocates and touches `chunk` bytes at a time until `cap`.
fn allocate_touched(chunk: usize, cap: usize) -> Vec<Vec<u8>> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    while held.len() * chunk < cap {
        // vec![1; n] writes every byte (a zeroed allocation could stay untouched, uncharged).
        held.push(std::hint::black_box(vec![1u8; chunk]));
    }
    held
}

/// Injects the fault `MARQUEE_INJECT_FAULT` names for `step`, if any.
pub async fn check(step: &'static str) -> Result<(), HandlerError> {
    match fail_once(step, std::env::var(ENV).ok().as_deref(), &FIRED)? {
        None | Some(Fault::Transient) => {}
        Some(Fault::Timeout) => {
            tracing::warn!(sleep_s = TIMEOUT_SLEEP.as_secs(), "{ENV}: sleeping past the function's timeout");
            tokio::time::sleep(TIMEOUT_SLEEP).await;
        }
        Some(Fault::OutOfMemory) => {
            tracing::warn!(chunk_mib = OOM_CHUNK >> 20, "{ENV}: allocating until the memory limit kills the process");
            let held = allocate_touched(OOM_CHUNK, OOM_CAP);
            tracing::warn!(
                held_mib = held.len() * (OOM_CHUNK >> 20),
                "{ENV}: nothing stopped the allocation; going on"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_only_the_first_invocation_of_a_named_step() {
        let fired = AtomicBool::new(false);
        assert!(fail_once("train", Some("ingest"), &fired).unwrap().is_none());
        assert!(fail_once("train", None, &fired).unwrap().is_none());
        assert!(matches!(
            fail_once("train", Some("ingest, train"), &fired),
            Err(HandlerError::InjectedFault { step: "train" })
        ));
        assert!(fail_once("train", Some("ingest, train"), &fired).unwrap().is_none());
        assert!(fail_once("deploy", Some("*"), &AtomicBool::new(false)).is_err());
        assert!(fail_once("deploy", Some("deploy:transient"), &AtomicBool::new(false)).is_err());
    }

    #[test]
    fn parses_steps_and_faults() {
        assert_eq!(parse("", "train"), Ok(None));
        assert_eq!(parse(" , ", "train"), Ok(None));
        assert_eq!(parse("train", "train"), Ok(Some(Fault::Transient)));
        assert_eq!(parse("train", "evaluate"), Ok(None));
        assert_eq!(parse("ingest,train:timeout", "train"), Ok(Some(Fault::Timeout)));
        assert_eq!(parse("ingest,train:timeout", "ingest"), Ok(Some(Fault::Transient)));
        assert_eq!(parse("ingest , train : oom", "train"), Ok(Some(Fault::OutOfMemory)));
        assert_eq!(parse("*:oom", "deploy"), Ok(Some(Fault::OutOfMemory)));
        assert_eq!(parse("train:timeout,*", "train"), Ok(Some(Fault::Timeout)), "the first entry naming the step");
        assert_eq!(parse("train:timeout,*", "prepare"), Ok(Some(Fault::Transient)));
        // A typo is an error, not a silently missing fault; entries for other steps are not read.
        let err = parse("train:tiemout", "train").unwrap_err();
        assert!(err.contains("tiemout") && err.contains(ENV), "{err}");
        assert_eq!(parse("train:tiemout", "ingest"), Ok(None));
        assert!(matches!(
            fail_once("train", Some("train:bogus"), &AtomicBool::new(false)),
            Err(HandlerError::BadRequest { step: "train", .. })
        ));
    }

    #[test]
    fn timeout_and_oom_fire_on_every_invocation() {
        let fired = AtomicBool::new(false);
        for _ in 0..3 {
            assert_eq!(fail_once("train", Some("train:timeout"), &fired).unwrap(), Some(Fault::Timeout));
            assert_eq!(fail_once("train", Some("train:oom"), &fired).unwrap(), Some(Fault::OutOfMemory));
        }
        assert!(!fired.load(Ordering::SeqCst), "the transient fault's once-per-container flag is untouched");
    }

    /// Resident KiB of the mapping that holds `addr` (/proc/self/smaps): unlike the process's
    /// RSS, no other test running beside this one moves it.
    fn resident_kib_at(addr: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_once(' ').and_then(|(r, _)| r.split_once('-'));
            if let Some((lo, hi)) = range
                .and_then(|(lo, hi)| Some((usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?)))
            {
                inside = lo <= addr && addr < hi;
            } else if let Some(kib) = line.strip_prefix("Rss:").filter(|_| inside) {
                return kib.trim().trim_end_matches("kB").trim().parse().ok();
            }
        }
        None
    }

    #[test]
    fn the_oom_fault_touches_what_it_allocates_and_stops_at_the_cap() {
        let chunk = 16 << 20;
        let held = allocate_touched(chunk, 64 << 20);
        assert_eq!(held.len(), 4);
        for block in &held {
            let kib = resident_kib_at(block.as_ptr() as usize).expect("the block's mapping in /proc/self/smaps");
            assert!(kib >= (chunk >> 10) as u64, "written, not just reserved: {kib} KiB resident");
        }
    }
}
