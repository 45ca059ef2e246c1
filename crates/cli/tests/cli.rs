//! The `marquee` binary end to end on a small demo workdir: the HTML report (every section, every
//! SVG well-formed), the churn cutoff lever, the query commands, exit codes and the help text.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use marquee_embedded::SqliteScoreStore;
use marquee_pipeline::keys::score;
use marquee_pipeline::store::ScoreStore;
use serde_json::Value;

const RUN: &str = "cli-demo";

fn marquee(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(args)
        .env_remove("MARQUEE_WORKDIR")
        .env("NO_COLOR", "1")
        // Help is wrapped to the terminal; pin the width so snapshots do not depend on it.
        .env("COLUMNS", "100")
        .output()
        .expect("runs marquee")
}

fn ok(args: &[&str]) -> String {
    let out = marquee(args);
    assert!(
        out.status.success(),
        "marquee {args:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One small demo run shared by the tests of this file (debug build: keep it small).
fn demo() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("marquee-cli-test").tempdir().expect("tempdir").keep();
        let w = dir.to_str().unwrap();
        ok(&["run", "--customers", "700", "--seed", "7", "--run-id", RUN, "--workdir", w, "--quiet"]);
        dir
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn wd() -> &'static str {
    demo().to_str().unwrap()
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn run_writes_a_report_with_every_section_and_valid_svg() {
    let path = demo().join("store/runs").join(RUN).join("report.html");
    let html = std::fs::read_to_string(&path).expect("marquee run wrote report.html");
    for needle in [
        "id=\"overview\"",
        "id=\"segment\"",
        "id=\"churn\"",
        "id=\"recommend\"",
        "id=\"sentiment\"",
        "id=\"data\"",
        "ROC curve (AUC",
        "Precision / recall vs cutoff",
        "Cutoff table",
        "class=\"marked\"",
        "k sweep: SSE (elbow) and silhouette",
        "Segment profiles",
        "Rule-based baseline",
        "Ranking quality vs popularity baseline",
        "Rating distribution",
        "Example recommendations",
        "Most similar titles",
        "id=\"promote\"",
        "which titles should each segment see first?",
        "Confusion matrix",
        "Trending sentiment",
        "Quality report",
        "Quarantined rows",
        "Data profile",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    // The churn slider's script is inline: the page must fetch nothing (it opens from file://).
    assert!(!html.contains("<script src") && !html.contains("<link"), "the report must be one file");
    assert!(!html.contains("chart not drawn"), "a chart failed to draw");
    let mut svgs = 0;
    let mut rest = html.as_str();
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("closed svg") + start + "</svg>".len();
        let doc = roxmltree::Document::parse(&rest[start..end])
            .unwrap_or_else(|e| panic!("SVG #{svgs} is not well-formed XML: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        assert!(doc.descendants().count() > 10, "SVG #{svgs} is nearly empty");
        svgs += 1;
        rest = &rest[end..];
    }
    assert!(svgs >= 8, "expected at least 8 charts, found {svgs}");
    // The whole page is well-formed as well (void elements are not used).
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn report_command_rewrites_latest_and_reports_unknown_runs() {
    let out = ok(&["report", "--workdir", wd()]);
    assert!(out.trim().ends_with(&format!("runs/{RUN}/report.html")), "{out}");
    assert!(Path::new(out.trim()).exists());
    let missing = marquee(&["report", "no-such-run", "--workdir", wd()]);
    assert_eq!(missing.status.code(), Some(4));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no-such-run") && err.contains("hint:"), "{err}");
}

/// The report's example customers are the most at risk among those with a list, in risk order,
/// read item by item from the score store.
#[test]
fn report_examples_are_the_most_at_risk_customers_with_a_list() {
    let html = std::fs::read_to_string(demo().join("store/runs").join(RUN).join("report.html")).unwrap();
    let top: Value = serde_json::from_str(&ok(&["at-risk", "--top", "50", "--json", "--workdir", wd()])).unwrap();
    let store = SqliteScoreStore::open(demo().join("scores.db")).unwrap();
    let with_list: Vec<String> = top
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["customer_id"].as_str().unwrap().to_string())
        .filter(|id| block_on(store.get_item(&score::customer(id), score::RECS)).unwrap().is_some())
        .take(marquee_report::EXAMPLES)
        .collect();
    assert_eq!(with_list.len(), marquee_report::EXAMPLES);
    let section = &html[html.find("Example recommendations").expect("examples section")..];
    let mut at = 0;
    for id in &with_list {
        let cell = format!("<td class=\"mono\">{id}</td>");
        let found = section[at..].find(&cell).unwrap_or_else(|| panic!("example {id} missing or out of order"));
        at += found + cell.len();
    }
}

#[test]
fn show_customer_prints_the_stored_values() {
    let top: Value = serde_json::from_str(&ok(&["at-risk", "--top", "3", "--json", "--workdir", wd()])).unwrap();
    let rows = top.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[0]["probability"].as_f64() >= rows[1]["probability"].as_f64());
    let id = rows[0]["customer_id"].as_str().unwrap().to_string();

    let store = SqliteScoreStore::open(demo().join("scores.db")).unwrap();
    let churn = block_on(store.get_item(&score::customer(&id), score::CHURN)).unwrap().expect("churn item");
    let segment = block_on(store.get_item(&score::customer(&id), score::SEGMENT)).unwrap().expect("segment item");
    let recs = block_on(store.get_item(&score::customer(&id), score::RECS)).unwrap();

    let v: Value =
        serde_json::from_str(&ok(&["show", "customer", &id, "--json", "--top", "5", "--workdir", wd()])).unwrap();
    assert_eq!(v["churn"]["probability"], churn.attrs["probability"]);
    assert_eq!(v["segment"]["segment"], segment.attrs["segment"]);
    assert_eq!(v["segment"]["label"], segment.attrs["label"]);
    if let Some(recs) = recs {
        let stored = recs.attrs["items"].as_array().unwrap();
        let shown = v["recommendations"].as_array().unwrap();
        assert_eq!(shown.len(), stored.len().min(5));
        assert_eq!(shown[0]["title_id"], stored[0]["title_id"]);
        assert_eq!(shown[0]["title"], stored[0]["title"]);
    }

    let table = ok(&["show", "customer", &id, "--workdir", wd()]);
    let p = churn.attrs["probability"].as_f64().unwrap();
    assert!(table.contains(&format!("probability {p:.3}")), "{table}");
    assert!(table.contains(segment.attrs["label"].as_str().unwrap()), "{table}");

    let missing = marquee(&["show", "customer", "NOPE", "--workdir", wd()]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("hint:"));
}

#[test]
fn show_title_segments_and_at_risk_tables() {
    let store = SqliteScoreStore::open(demo().join("scores.db")).unwrap();
    let similar = block_on(store.scan_sk(&score::title(""), score::SIMILAR)).unwrap();
    let first = similar.first().expect("similar titles deployed");
    let id = first.pk.trim_start_matches("TITLE#");
    let out = ok(&["show", "title", id, "--workdir", wd()]);
    let top = &first.attrs["items"][0];
    assert!(out.contains(top["title_id"].as_str().unwrap()) && out.contains(top["title"].as_str().unwrap()), "{out}");
    // Its mid-roll ad plan: the same plans as the score store's ADS# items, table and JSON.
    let plans: Vec<_> =
        block_on(store.query(&first.pk)).unwrap().into_iter().filter(|i| i.sk.starts_with("ADS#")).collect();
    assert!(!plans.is_empty() && out.contains("mid-roll ads"), "{out}");
    let best = plans[0].attrs["ads"][0]["ad"].as_str().unwrap();
    assert!(out.lines().any(|l| l.contains(plans[0].attrs["slot"].as_str().unwrap()) && l.contains(best)), "{out}");
    let json: Value = serde_json::from_str(&ok(&["show", "title", id, "--json", "--workdir", wd()])).unwrap();
    assert_eq!(json["ad_plan"].as_array().unwrap().len(), plans.len(), "{json}");

    let segs: Value = serde_json::from_str(&ok(&["segments", "--json", "--workdir", wd()])).unwrap();
    let total: u64 = segs.as_array().unwrap().iter().map(|s| s["customers"].as_u64().unwrap()).sum();
    let stored = block_on(store.scan_sk(&score::customer(""), score::SEGMENT)).unwrap().len() as u64;
    assert_eq!(total, stored);
    let table = ok(&["segments", "--workdir", wd()]);
    assert!(table.starts_with("segment"), "{table}");
    // Each segment's promoted titles: the SEGMENT# / PROMOTE items, in the table and the JSON.
    for seg in segs.as_array().unwrap() {
        let n = seg["segment"].as_u64().unwrap();
        let item = block_on(store.get_item(&format!("SEGMENT#{n}"), "PROMOTE")).unwrap().expect("a PROMOTE item");
        assert_eq!(seg["promote"]["titles"], item.attrs["titles"], "segment {n}");
        let first = &item.attrs["titles"][0];
        assert!(table.contains(&format!("promote to segment {n} (")), "{table}");
        assert!(
            table.lines().any(|l| l.contains(first["title_id"].as_str().unwrap()) && l.trim_start().starts_with("1 ")),
            "{table}"
        );
    }

    let table = ok(&["at-risk", "--top", "5", "--workdir", wd()]);
    assert_eq!(table.lines().filter(|l| l.trim_start().starts_with(char::is_numeric)).count(), 5, "{table}");
}

/// A reader that stops early (`marquee at-risk | head`) ends the query quietly: no panic message,
/// no error, the process ended by SIGPIPE as `cat` would be.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_a_query_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["at-risk", "--top", "500", "--workdir", wd()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("error"), "stderr: {stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "status: {:?}", out.status);
}

fn fixture_row(cutoff: f64, tp: u64, fp: u64, tn: u64, fn_: u64) -> Value {
    let (tpf, fpf, tnf, fnf) = (tp as f64, fp as f64, tn as f64, fn_ as f64);
    serde_json::json!({
        "cutoff": cutoff, "tp": tp, "fp": fp, "tn": tn, "fn_": fn_,
        "precision": if tp + fp == 0 { 1.0 } else { tpf / (tpf + fpf) },
        "recall": tpf / (tpf + fnf),
        "false_positive_rate": fpf / (fpf + tnf),
        "accuracy": (tpf + tnf) / (tpf + fpf + tnf + fnf),
    })
}

/// A workdir holding only an evaluation record with a known cutoff table.
fn cutoff_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let table = vec![
        fixture_row(0.2, 90, 160, 640, 10), // precision 0.36, recall 0.90
        fixture_row(0.4, 75, 60, 740, 25),  // precision 0.556, recall 0.75
        fixture_row(0.5, 64, 36, 764, 36),  // precision 0.64, recall 0.64, fpr 0.045
        fixture_row(0.6, 50, 20, 780, 50),  // precision 0.714, recall 0.50
        fixture_row(0.8, 20, 2, 798, 80),   // precision 0.909, recall 0.20
    ];
    let record = serde_json::json!({
        "run_id": "fx", "use_case": "churn", "version": "fx", "fingerprint": "f", "verdict": "deploy", "reasons": [],
        "challenger": {
            "primary": { "name": "auc", "value": 0.85, "higher_is_better": true },
            "criteria": [], "deploy_params": { "cutoff": 0.4 },
            "details": { "cutoff_table": table }
        },
        "champion": null
    });
    let path = dir.path().join("store/runs/fx/models/churn");
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("evaluation.json"), serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    SqliteScoreStore::open(dir.path().join("scores.db")).unwrap();
    dir
}

#[test]
fn churn_cutoff_picks_the_expected_cutoff_on_a_fixture() {
    let dir = cutoff_fixture();
    let w = dir.path().to_str().unwrap();
    let pick = |extra: &[&str]| -> f64 {
        let mut args = vec!["churn", "cutoff", "--run", "fx", "--json", "--workdir", w];
        args.extend_from_slice(extra);
        let v: Value = serde_json::from_str(&ok(&args)).unwrap();
        v["chosen"]["cutoff"].as_f64().unwrap()
    };
    assert_eq!(pick(&["--min-precision", "0.6"]), 0.5);
    assert_eq!(pick(&["--min-precision", "0.7"]), 0.6);
    assert_eq!(pick(&["--min-recall", "0.7"]), 0.4);
    assert_eq!(pick(&["--max-fpr", "0.05"]), 0.5);
    assert_eq!(pick(&["--min-recall", "0.5", "--min-precision", "0.7"]), 0.6);
    assert_eq!(pick(&["--cutoff", "0.2"]), 0.2);
    assert_eq!(pick(&["--cutoff", "0.80"]), 0.8);

    let off_table = marquee(&["churn", "cutoff", "--run", "fx", "--cutoff", "0.55", "--workdir", w]);
    assert_eq!(off_table.status.code(), Some(5));
    let err = String::from_utf8_lossy(&off_table.stderr);
    assert!(err.contains("no cutoff 0.55") && err.contains("0.20, 0.40, 0.50, 0.60, 0.80"), "{err}");
    let both = marquee(&["churn", "cutoff", "--run", "fx", "--cutoff", "0.5", "--min-recall", "0.5", "--workdir", w]);
    assert_eq!(both.status.code(), Some(2), "--cutoff excludes the constraints");

    let text = ok(&["churn", "cutoff", "--run", "fx", "--min-precision", "0.6", "--workdir", w]);
    assert!(text.contains("chosen cutoff 0.50"), "{text}");
    assert!(text.contains("precision 0.640") && text.contains("recall 0.640"), "{text}");
    assert!(text.contains("flagged at risk       64       36"), "{text}");

    for args in [&["--min-precision", "0.95"][..], &["--min-recall", "0.3", "--max-fpr", "0.001"][..]] {
        let mut all = vec!["churn", "cutoff", "--run", "fx", "--workdir", w];
        all.extend_from_slice(args);
        let none = marquee(&all);
        assert_eq!(none.status.code(), Some(5), "{}", String::from_utf8_lossy(&none.stderr));
        assert!(String::from_utf8_lossy(&none.stderr).contains("hint: relax a constraint"));
    }
    let apply = marquee(&["churn", "cutoff", "--run", "fx", "--min-precision", "0.6", "--apply", "--workdir", w]);
    assert_eq!(apply.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&apply.stderr).contains("not the deployed churn champion"));
}

#[test]
fn churn_cutoff_apply_rescores_the_champion_without_retraining() {
    let store = SqliteScoreStore::open(demo().join("scores.db")).unwrap();
    let before = block_on(store.scan_sk(&score::customer(""), score::CHURN)).unwrap();
    let v: Value =
        serde_json::from_str(&ok(&["churn", "cutoff", "--min-recall", "0.3", "--apply", "--json", "--workdir", wd()]))
            .unwrap();
    assert_eq!(v["applied"], true);
    let cutoff = v["chosen"]["cutoff"].as_f64().unwrap();
    let after = block_on(store.scan_sk(&score::customer(""), score::CHURN)).unwrap();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.attrs["probability"], a.attrs["probability"], "probabilities must not change");
        assert_eq!(a.attrs["cutoff"].as_f64().unwrap(), cutoff);
        assert_eq!(a.attrs["at_risk"].as_bool().unwrap(), a.attrs["probability"].as_f64().unwrap() >= cutoff);
    }
    assert_eq!(v["at_risk"].as_u64().unwrap() as usize, after.iter().filter(|a| a.attrs["at_risk"] == true).count());
}

#[test]
fn usage_errors_exit_2_and_missing_workdir_hints() {
    assert_eq!(marquee(&["churn", "cutoff", "--min-precision", "1.5"]).status.code(), Some(2));
    // Counts that would give no number or a false pass are refused before anything runs.
    for (flag, value, says) in
        [("--folds", "0", "at least 2"), ("--folds", "1", "at least 2"), ("--limit", "0", "at least 1")]
    {
        let out = marquee(&["eval", "--task", "telco", "--data-dir", "/nonexistent", flag, value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag) && stderr.contains(says), "{flag} {value}: {stderr}");
    }
    let out = marquee(&["segments", "--workdir", "/nonexistent/marquee"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: pass --workdir"));
}

#[test]
fn help_snapshots() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("help_run", vec!["run", "--help"]),
        ("help_report", vec!["report", "--help"]),
        ("help_churn_cutoff", vec!["churn", "cutoff", "--help"]),
        ("help_show_customer", vec!["show", "customer", "--help"]),
        ("help_at_risk", vec!["at-risk", "--help"]),
        ("help_segments", vec!["segments", "--help"]),
    ] {
        insta::assert_snapshot!(name, ok(&args));
    }
}

#[test]
fn a_failed_use_case_exits_6_after_the_others_deploy_and_the_table_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, work) = (dir.path().join("data"), dir.path().join("work"));
    ok(&["demo-data", "--out", data.to_str().unwrap(), "--customers", "500", "--seed", "3"]);
    // More segments than training rows: segmentation's Train fails for good.
    let spec_path = data.join("pipeline.toml");
    let spec = std::fs::read_to_string(&spec_path).unwrap();
    assert!(spec.contains("k_max = 8\n") && spec.contains("min_segment_share = 0.02"));
    let spec = spec.replacen("k_max = 8\n", "k_max = 8\nk = 5000\n", 1).replacen(
        "min_segment_share = 0.02",
        "min_segment_share = 0.0",
        1,
    );
    std::fs::write(&spec_path, spec).unwrap();
    let out = marquee(&[
        "run",
        "--spec",
        spec_path.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(6), "{stdout}\n{stderr}");
    assert!(stderr.contains("segment failed in train (Marquee.StepFailed"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    let row = |uc: &str| stdout.lines().find(|l| l.starts_with(uc)).unwrap_or_else(|| panic!("no {uc} row: {stdout}"));
    assert!(row("segment").contains("FAILED"), "{stdout}");
    for uc in ["churn", "recommend", "sentiment"] {
        assert!(row(uc).contains("deployed"), "{stdout}");
    }
    assert!(work.join("store/models/churn/champion.json").exists());
    assert!(!work.join("store/models/segment/champion.json").exists());
}

#[test]
fn a_busy_working_folder_stops_a_second_run_with_exit_7_or_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = dir.path().to_str().unwrap();
    let holder = marquee_embedded::WorkdirLock::try_acquire(dir.path(), "run first").unwrap();
    let out = marquee(&["run", "--customers", "300", "--workdir", w, "--quiet", "--no-report"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(stderr.contains(&format!("working folder {w} is busy: run first (pid {}", std::process::id())), "{stderr}");
    assert!(stderr.contains("hint:") && stderr.contains("--wait"), "{stderr}");
    assert!(!dir.path().join("scores.db").exists(), "nothing was written while the folder was busy");

    // --wait: the second run starts once the first lets go.
    let waiting = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["run", "--customers", "300", "--workdir", w, "--no-report", "--wait", "--run-id", "second"])
        .env_remove("MARQUEE_WORKDIR")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(holder);
    let out = waiting.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("waiting for run first"), "{stderr}");
    assert!(dir.path().join("store/runs/second/summary.json").exists());
}

#[test]
fn models_lists_versions_with_the_champion_and_refuses_a_rollback_with_nothing_before() {
    // Global options go before or after the command.
    let out = ok(&["--workdir", wd(), "-q", "models", "list", "churn"]);
    let row = out.lines().find(|l| l.starts_with("churn")).unwrap_or_else(|| panic!("no churn row: {out}"));
    assert!(row.contains(&format!("* {RUN}")) && row.contains("deployed"), "{out}");
    let json: Value = serde_json::from_str(&ok(&["models", "list", "--json", "--workdir", wd()])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 5, "one version per use case: {json}");
    let shown = ok(&["models", "show", "churn", RUN, "--workdir", wd()]);
    assert!(shown.contains("(champion)") && shown.contains("parent:    none"), "{shown}");
    let customers = std::fs::read(demo().join("demo-data/customers.csv")).unwrap();
    let digest = sha256_hex(&customers);
    assert!(
        shown.lines().any(|l| l.contains("customers")
            && l.contains(&digest)
            && l.contains(&format!("{} bytes", customers.len()))),
        "lineage names the input file's sha256 and size: {shown}"
    );
    assert!(shown.contains(&format!("code:      marquee {}", env!("CARGO_PKG_VERSION"))), "{shown}");
    let same = ok(&["models", "diff", "churn", RUN, RUN, "--workdir", wd()]);
    assert!(same.contains("parameters: the same") && same.contains("0 of "), "{same}");
    assert!(same.lines().any(|l| l.contains("customers") && l.contains(" same ")), "{same}");
    let out = marquee(&["models", "diff", "churn", RUN, "v-none", "--workdir", wd()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("no version v-none") && stderr.contains("marquee models list churn"), "{stderr}");
    let out = marquee(&["models", "rollback", "churn", "--workdir", wd()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("first deployed version") && stderr.contains("hint:"), "{stderr}");
}

#[test]
fn init_drafts_a_spec_the_demo_data_runs_on_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let (data, work) = (dir.path().join("data"), dir.path().join("work"));
    ok(&["demo-data", "--out", data.to_str().unwrap(), "--customers", "800", "--seed", "5"]);
    // demo-data wrote its own pipeline.toml: init does not overwrite it unasked.
    let out = marquee(&["init", "--data", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let drafted = dir.path().join("drafted.toml");
    let said = ok(&["init", "--data", data.to_str().unwrap(), "--out", drafted.to_str().unwrap()]);
    assert!(said.contains("use cases segment, churn, recommend, sentiment, ads"), "{said}");
    assert!(said.contains(&format!("next:      marquee run --spec {}", drafted.display())), "{said}");
    let run = ok(&[
        "run",
        "--spec",
        drafted.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--workdir",
        work.to_str().unwrap(),
    ]);
    for uc in ["segment", "churn", "recommend", "sentiment"] {
        let row = run.lines().find(|l| l.starts_with(uc)).unwrap_or_else(|| panic!("no {uc} row: {run}"));
        assert!(row.contains("deployed"), "{run}");
    }
    // The drafted [ads] trains and is judged; on 800 customers' impressions the conservative gate
    // (the paired lift's interval above 0) may not pass yet, but the step does not fail.
    let ads = run.lines().find(|l| l.starts_with("ads ")).unwrap_or_else(|| panic!("no ads row: {run}"));
    assert!(ads.contains("policy value (DR)") && !ads.contains("FAILED"), "{run}");
}

/// `marquee eval --spec`: the demo export cross-validated through the CLI, every use case with
/// its folds and the spec's criteria as targets; the named tasks listed; bad combinations refused.
#[test]
fn eval_cross_validates_your_own_spec_and_lists_the_named_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&["demo-data", "--out", d, "--customers", "400", "--seed", "3", "--quiet"]);
    let out = dir.path().join("cv");
    let spec = dir.path().join("pipeline.toml");
    ok(&["eval", "--spec", spec.to_str().unwrap(), "--folds", "2", "--no-tune", "--out", out.to_str().unwrap(), "-q"]);
    let entries: Vec<Value> = serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    for (use_case, metric) in [("recommend", "RMSE (ALS)"), ("churn", "ROC AUC"), ("sentiment", "accuracy")] {
        let e = entries
            .iter()
            .find(|e| e["use_case"] == use_case && e["metric"].as_str().unwrap().starts_with(metric))
            .unwrap_or_else(|| panic!("no {use_case} {metric} in {entries:#?}"));
        assert_eq!(e["per_fold"].as_array().unwrap().len(), 2, "{e}");
        assert!(e["target"].is_object() && e["anchor"].is_null(), "the spec's criterion is the target: {e}");
    }
    let md = std::fs::read_to_string(out.join("eval.md")).unwrap();
    for job in ["demo-recommend", "demo-churn", "demo-sentiment"] {
        assert!(md.contains(&format!("## {job} (")), "a section per use case: {md}");
    }

    let listed = ok(&["eval", "--list"]);
    assert_eq!(listed.lines().count(), 7, "{listed}");
    assert!(listed.starts_with("movielens"), "{listed}");
    let unknown = marquee(&["eval", "--task", "nope", "--data-dir", d]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown eval task `nope` (expected one of movielens"));
    let both = marquee(&["eval", "--task", "telco", "--spec", spec.to_str().unwrap()]);
    assert_eq!(both.status.code(), Some(2), "--task and --spec exclude each other");
    let no_data = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["eval", "--task", "telco"])
        .env_remove("MARQUEE_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(no_data.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&no_data.stderr);
    assert!(stderr.contains("--data-dir") && stderr.contains("MARQUEE_DATA_DIR"), "{stderr}");
}

#[test]
fn demo_data_in_parts_runs_and_a_smaller_split_replaces_the_stored_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (data, work) = (dir.path().join("data"), dir.path().join("work"));
    let (d, w) = (data.to_str().unwrap(), work.to_str().unwrap());
    let spec = data.join("pipeline.toml");
    let stored = |table: &str| {
        let mut names: Vec<String> = std::fs::read_dir(work.join("store/raw/demo").join(table))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    for parts in ["3", "2"] {
        ok(&["demo-data", "--out", d, "--customers", "400", "--seed", "3", "--parts", parts, "--quiet"]);
        assert!(std::fs::read_to_string(&spec).unwrap().contains("file = \"viewing/\""));
        ok(&["run", "--spec", spec.to_str().unwrap(), "--workdir", w, "--no-report", "--quiet", "--retrain"]);
    }
    assert_eq!(stored("viewing"), ["part-00000.csv", "part-00001.csv"], "no part of the 3-way split is left");
    assert_eq!(std::fs::read_dir(data.join("viewing")).unwrap().count(), 2);
    let usage = marquee(&["demo-data", "--out", d, "--parts", "0"]);
    assert_eq!(usage.status.code(), Some(2));
}
