//! The Normalize step: turns whatever started the execution into a [`RunRequest`].
//!
//! Accepted execution inputs (the state machine wraps them as
//! `{"event": <input>, "execution_name": $$.Execution.Name, "execution_id": $$.Execution.Id,
//! "start_time": $$.Execution.StartTime}`;
//! a bare input works too, e.g. `cargo lambda invoke --data-file events/s3-object-created.json`):
//! - an EventBridge S3 "Object Created" event: the uploaded spec itself when the key ends in
//!   `/pipeline.toml` (the template's rule fires only for those), else `raw/<dataset>/pipeline.toml`
//!   for a data file under `raw/<dataset>/`; trigger "upload", run id from the event's time and id;
//! - a schedule rule's input `{"spec_key": "raw/demo/pipeline.toml"}` (also under `detail`):
//!   trigger "schedule", run id from the execution's start time and name;
//! - the CLI's input `{"spec_key": ..., "run_id": ..., "trigger": "cli"}`.
//!
//! A schedule or CLI input may add `"retrain": true` to train use cases whose data and spec are
//! unchanged.

use chrono::{DateTime, Utc};
use marquee_pipeline::keys;
use marquee_pipeline::steps::RunRequest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::HandlerError;

const STEP: &str = "normalize";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "Value")]
pub struct NormalizeRequest {
    /// The execution input.
    pub event: Value,
    /// `$$.Execution.Name`.
    pub execution_name: Option<String>,
    /// `$$.Execution.Id`, the execution's ARN: present inside an execution, where the run claims
    /// its trigger and holds its dataset ([`marquee_pipeline::guard`]).
    pub execution_id: Option<String>,
    /// `$$.Execution.StartTime` (RFC 3339).
    pub start_time: Option<String>,
}

impl From<Value> for NormalizeRequest {
    fn from(v: Value) -> Self {
        let wrapped = v.get("event").is_some_and(Value::is_object)
            && v.get("detail-type").is_none()
            && v.get("spec_key").is_none();
        if !wrapped {
            return Self { event: v, execution_name: None, execution_id: None, start_time: None };
        }
        let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        Self {
            execution_name: text("execution_name"),
            execution_id: text("execution_id"),
            start_time: text("start_time"),
            event: v["event"].clone(),
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `<yyyymmddThhmmssZ>-<first 8 alphanumerics of the id>`: sortable, unique per event/execution,
/// and the same on every retry of Normalize.
pub fn run_id_from(time: Option<&str>, id: Option<&str>) -> String {
    let at = time.and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let suffix: String = id
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    if suffix.is_empty() {
        return marquee_pipeline::steps::new_run_id();
    }
    format!("{}-{suffix}", at.format("%Y%m%dT%H%M%SZ"))
}

fn check_run_id(id: &str) -> Result<String, HandlerError> {
    let ok = !id.is_empty() && id.len() <= 80 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(id.to_string())
    } else {
        Err(HandlerError::bad_request(STEP, format!("run_id `{id}`: use 1-80 letters, digits, '-', '_' or '.'")))
    }
}

pub fn normalize(req: &NormalizeRequest) -> Result<RunRequest, HandlerError> {
    let ev = &req.event;
    let exec_time = req.start_time.as_deref();
    let exec_name = req.execution_name.as_deref();
    if str_at(ev, "/source") == Some("aws.s3") && str_at(ev, "/detail-type") == Some("Object Created") {
        let key = str_at(ev, "/detail/object/key")
            .ok_or_else(|| HandlerError::bad_request(STEP, "S3 event without detail.object.key"))?;
        let dataset = key
            .strip_prefix("raw/")
            .and_then(|rest| rest.split_once('/'))
            .map(|(dataset, _)| dataset)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| {
                HandlerError::bad_request(STEP, format!("uploaded key `{key}` is not under raw/<dataset>/"))
            })?;
        return Ok(RunRequest {
            run_id: run_id_from(str_at(ev, "/time").or(exec_time), str_at(ev, "/id").or(exec_name)),
            spec_key: if key.ends_with("/pipeline.toml") {
                key.to_string()
            } else {
                keys::raw(dataset, "pipeline.toml")
            },
            trigger: Some("upload".into()),
            retrain: false,
        });
    }
    let spec_key = str_at(ev, "/spec_key").or_else(|| str_at(ev, "/detail/spec_key")).ok_or_else(|| {
        HandlerError::bad_request(
            STEP,
            format!(
                "expected an S3 \"Object Created\" event or {{\"spec_key\": ...}}, got {}",
                truncate(&ev.to_string(), 300)
            ),
        )
    })?;
    let run_id = match str_at(ev, "/run_id") {
        Some(id) => check_run_id(id)?,
        None => run_id_from(str_at(ev, "/time").or(exec_time), str_at(ev, "/id").or(exec_name)),
    };
    let trigger = str_at(ev, "/trigger").unwrap_or("schedule").to_string();
    let retrain = ev.pointer("/retrain").or_else(|| ev.pointer("/detail/retrain")).and_then(Value::as_bool) == Some(true);
    Ok(RunRequest { run_id, spec_key: spec_key.to_string(), trigger: Some(trigger), retrain })
}

/// What makes two deliveries the same trigger: an upload's bucket, key and version id (or S3's
/// sequencer where the bucket is not versioned); an explicit run id; an EventBridge event id.
/// None for an input without any (a schedule rule's constant input): such a run is not
/// deduplicated, and a second one waits for the dataset, then finds its data unchanged.
pub fn trigger_of(req: &NormalizeRequest) -> Option<String> {
    let ev = &req.event;
    if str_at(ev, "/source") == Some("aws.s3") {
        let bucket = str_at(ev, "/detail/bucket/name").unwrap_or_default();
        let key = str_at(ev, "/detail/object/key")?;
        if let Some(v) = str_at(ev, "/detail/object/version-id") {
            return Some(format!("s3://{bucket}/{key}?versionId={v}"));
        }
        if let Some(seq) = str_at(ev, "/detail/object/sequencer") {
            return Some(format!("s3://{bucket}/{key}#{seq}"));
        }
    }
    if let Some(run_id) = str_at(ev, "/run_id") {
        return Some(format!("run:{run_id}"));
    }
    str_at(ev, "/id").map(|id| format!("event:{id}"))
}

/// The dataset a spec key belongs to (`raw/<dataset>/...`): what at most one run executes at a
/// time. A spec elsewhere is its own dataset.
pub fn dataset_of(spec_key: &str) -> &str {
    spec_key.strip_prefix("raw/").and_then(|rest| rest.split_once('/')).map_or(spec_key, |(dataset, _)| dataset)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s3_event(key: &str) -> Value {
        json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", "source": "aws.s3",
               "time": "2026-11-03T10:15:00Z", "detail": {"bucket": {"name": "b"}, "object": {"key": key, "size": 10}}})
    }

    #[test]
    fn upload_under_raw_dataset_runs_its_spec() {
        let r = normalize(&NormalizeRequest::from(s3_event("raw/demo/customers.csv"))).unwrap();
        assert_eq!(r.spec_key, "raw/demo/pipeline.toml");
        assert_eq!(r.trigger.as_deref(), Some("upload"));
        assert_eq!(r.run_id, "20261103T101500Z-17793124");
    }

    #[test]
    fn an_uploaded_spec_is_the_spec_that_runs() {
        let r = normalize(&NormalizeRequest::from(s3_event("raw/studio/q4/pipeline.toml"))).unwrap();
        assert_eq!(r.spec_key, "raw/studio/q4/pipeline.toml");
    }

    #[test]
    fn upload_outside_a_dataset_folder_is_refused() {
        let err = normalize(&NormalizeRequest::from(s3_event("raw/loose.csv"))).unwrap_err();
        assert!(err.to_string().contains("raw/loose.csv"), "{err}");
    }

    #[test]
    fn wrapped_schedule_input_uses_the_execution_time_and_name() {
        let req: NormalizeRequest = serde_json::from_value(json!({
            "event": {"spec_key": "raw/demo/pipeline.toml"},
            "execution_name": "c0ffee00-aaaa-bbbb", "start_time": "2026-11-03T06:00:00.123Z"
        }))
        .unwrap();
        let r = normalize(&req).unwrap();
        assert_eq!(
            r,
            RunRequest {
                run_id: "20261103T060000Z-c0ffee00".into(),
                spec_key: "raw/demo/pipeline.toml".into(),
                trigger: Some("schedule".into()),
                retrain: false,
            }
        );
    }

    #[test]
    fn cli_input_keeps_its_run_id_and_bad_ids_are_refused() {
        let r = normalize(&NormalizeRequest::from(
            json!({"spec_key": "raw/x/pipeline.toml", "run_id": "my-run.1", "trigger": "cli"}),
        ))
        .unwrap();
        assert_eq!((r.run_id.as_str(), r.trigger.as_deref()), ("my-run.1", Some("cli")));
        assert!(normalize(&NormalizeRequest::from(json!({"spec_key": "k", "run_id": "../etc"}))).is_err());
    }

    #[test]
    fn a_trigger_is_an_upload_version_a_run_id_or_an_event_id() {
        let mut ev = s3_event("raw/demo/pipeline.toml");
        assert_eq!(trigger_of(&NormalizeRequest::from(ev.clone())), Some("event:17793124-05d4-b198-2fde-7ededc63b103".into()));
        ev["detail"]["object"]["sequencer"] = json!("0062E99A88DC407460");
        assert_eq!(
            trigger_of(&NormalizeRequest::from(ev.clone())),
            Some("s3://b/raw/demo/pipeline.toml#0062E99A88DC407460".into())
        );
        ev["detail"]["object"]["version-id"] = json!("3HL4kqtJlcpXroDTDmJ");
        assert_eq!(
            trigger_of(&NormalizeRequest::from(ev)),
            Some("s3://b/raw/demo/pipeline.toml?versionId=3HL4kqtJlcpXroDTDmJ".into())
        );
        let cli = json!({"spec_key": "raw/x/pipeline.toml", "run_id": "r1", "trigger": "cli"});
        assert_eq!(trigger_of(&NormalizeRequest::from(cli)), Some("run:r1".into()));
        assert_eq!(trigger_of(&NormalizeRequest::from(json!({"spec_key": "raw/x/pipeline.toml"}))), None);
    }

    #[test]
    fn the_dataset_is_the_folder_under_raw() {
        assert_eq!(dataset_of("raw/demo/pipeline.toml"), "demo");
        assert_eq!(dataset_of("raw/studio/q4/pipeline.toml"), "studio");
        assert_eq!(dataset_of("specs/churn.toml"), "specs/churn.toml");
    }

    #[test]
    fn unknown_input_names_what_was_expected() {
        let err = normalize(&NormalizeRequest::from(json!({"hello": 1}))).unwrap_err();
        assert!(err.to_string().contains("spec_key"), "{err}");
    }
}
