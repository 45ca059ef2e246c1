//! Crash safety of the embedded pipeline: the `marquee` binary is killed at every step boundary
//! (abort, no cleanup) and at arbitrary moments mid-write (SIGKILL), then simply run again. The
//! score store must end up exactly as after an uninterrupted run, every champion pointer must
//! name a complete artifact, and no half-written object may ever be visible.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use marquee_embedded::{DirObjectStore, SqliteScoreStore};
use marquee_pipeline::keys;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::Champion;
use marquee_pipeline::store::{ObjectStore, ScoreStore};

const CUSTOMERS: &str = "800";
/// Steps of a demo run that deploys all five use cases: ingest, prepare, 5 x (train, evaluate, deploy).
const STEPS: usize = 17;

fn marquee(workdir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marquee"));
    cmd.args(["--quiet", "run", "--customers", CUSTOMERS, "--workdir"]).arg(workdir);
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).env_remove("MARQUEE_ABORT_AFTER_STEPS");
    cmd
}

/// Every score item, keyed by pk/sk, without the fields that name the run (model_version, as_of
/// stays: it is derived from the data).
fn scores(workdir: &Path) -> BTreeMap<(String, String), serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let store = SqliteScoreStore::open(workdir.join("scores.db")).unwrap();
    let mut out = BTreeMap::new();
    for (prefix, sks) in [
        ("CUSTOMER#", &["SEGMENT", "CHURN", "RECS"][..]),
        ("TITLE#", &["SIMILAR", "SENTIMENT"][..]),
        ("BRAND#", &["SENTIMENT"][..]),
        ("TALENT#", &["SENTIMENT"][..]),
    ] {
        for sk in sks {
            for mut item in rt.block_on(store.scan_sk(prefix, sk)).unwrap() {
                item.attrs.remove("model_version");
                out.insert((item.pk, item.sk), serde_json::Value::Object(item.attrs));
            }
        }
    }
    // Ad plans sit beside SIMILAR under each title, one sort key per (slot, segment).
    let titles: Vec<String> = out.keys().filter(|(pk, _)| pk.starts_with("TITLE#")).map(|(pk, _)| pk.clone()).collect();
    for pk in titles {
        for mut item in rt.block_on(store.query(&pk)).unwrap().into_iter().filter(|i| i.sk.starts_with("ADS#")) {
            item.attrs.remove("model_version");
            out.insert((item.pk, item.sk), serde_json::Value::Object(item.attrs));
        }
    }
    out
}

/// Champion pointers name complete artifacts; no temp file is visible as an object.
fn assert_consistent(workdir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let objects = DirObjectStore::new(workdir.join("store"));
    for uc in UseCase::ALL {
        let bytes = rt.block_on(objects.get(&keys::champion(uc))).expect("every use case has a champion");
        let champion: Champion = serde_json::from_slice(&bytes).expect("champion pointer is whole JSON");
        let model = rt.block_on(objects.get(&champion.model_key)).expect("champion artifact exists");
        serde_json::from_slice::<serde_json::Value>(&model).expect("champion artifact is whole JSON");
    }
    let all = rt.block_on(objects.list("")).unwrap();
    assert!(all.iter().all(|k| !k.rsplit('/').next().unwrap().starts_with(".tmp-")), "temp files are never listed");
}

#[test]
fn killed_runs_resume_to_the_same_result_as_an_uninterrupted_run() {
    let reference = tempfile::tempdir().unwrap();
    assert!(marquee(reference.path()).status().unwrap().success());
    let expected = scores(reference.path());
    assert!(expected.len() > 600, "reference run wrote {} items", expected.len());

    // Abort right after each step boundary, then run again.
    let mut killed = 0;
    for after in 1..=STEPS {
        let dir = tempfile::tempdir().unwrap();
        let status = marquee(dir.path()).env("MARQUEE_ABORT_AFTER_STEPS", after.to_string()).status().unwrap();
        assert!(!status.success(), "abort after step {after} must kill the run");
        killed += 1;
        assert!(marquee(dir.path()).status().unwrap().success(), "re-run after abort at step {after}");
        assert_consistent(dir.path());
        assert_eq!(scores(dir.path()), expected, "abort after step {after}: scores differ from the uninterrupted run");
    }

    // SIGKILL at arbitrary moments (mid-write included), then run again.
    for delay_ms in [40, 120, 250, 400, 700, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = marquee(dir.path()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL; the run may already be done, which is fine
        let _ = child.wait();
        killed += 1;
        assert!(marquee(dir.path()).status().unwrap().success(), "re-run after kill at {delay_ms} ms");
        assert_consistent(dir.path());
        assert_eq!(scores(dir.path()), expected, "kill at {delay_ms} ms: scores differ from the uninterrupted run");
    }
    println!("crash safety: {killed} runs killed, every re-run equal to the uninterrupted run, nothing lost");
}
