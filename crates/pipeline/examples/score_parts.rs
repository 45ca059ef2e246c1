//! Batch scoring in parts, measured: what one Distributed Map child costs and holds.
//!
//! `cargo run --release -p marquee-pipeline --example score_parts -- [customers] [rows per part,...]`
//! (default 100000 customers; parts of 1000000, 6250 and 1563 rows: 1, 16 and 64 parts at 100,000)
//! generates the demo data, runs ingest, prepare, train and evaluate for churn in a temp folder
//! (folder object store + SQLite score store), then deploys the churn model once per part size:
//! the plan, every part in a child process of its own (as a Lambda invocation would: it loads the
//! plan, evaluation, artifact and spec, reads its byte range, scores and writes its items), and the
//! finish (the parts' key lists joined, the champion flipped). Prints, per part size, the seconds of
//! each phase and the children's largest peak resident memory (VmHWM), then the seconds of the
//! embedded deployment (`steps::deploy_in_parts`: the same plan, parts and finish in this process,
//! as many parts at once as the machine has cores).

use std::time::Instant;

use marquee_demo::{self as demo, DemoConfig, DEMO_SPEC};
use marquee_embedded::{DirObjectStore, SqliteScoreStore};
use marquee_pipeline::keys;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{self, RunRequest, ScorePartRequest, Stores, Verdict};
use marquee_pipeline::store::ObjectStore;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kb / 1024.0
}

fn stores_in(dir: &std::path::Path) -> (DirObjectStore, SqliteScoreStore) {
    (DirObjectStore::new(dir.join("store")), SqliteScoreStore::open(dir.join("scores.db")).expect("sqlite"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
}

/// A child: `score_parts --part <dir> <request JSON>`; prints `seconds peak_mb written`.
fn child(dir: &str, request: &str) {
    let (objects, scores) = stores_in(std::path::Path::new(dir));
    let req: ScorePartRequest = serde_json::from_str(request).expect("request");
    let t = Instant::now();
    let out =
        runtime().block_on(steps::score_part(Stores { objects: &objects, scores: &scores }, &req)).expect("score part");
    println!("{:.3} {:.1} {}", t.elapsed().as_secs_f64(), peak_rss_mb(), out.scores_written);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--part") {
        return child(&args[1], &args[2]);
    }
    let customers: usize = args.first().map_or(100_000, |a| a.parse().expect("customers"));
    let sizes: Vec<usize> = args
        .get(1)
        .map_or("1000000,6250,1563", String::as_str)
        .split(',')
        .map(|s| s.parse().expect("rows per part"))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let (objects, scores) = stores_in(dir.path());
    let stores = Stores { objects: &objects, scores: &scores };
    let rt = runtime();
    let t = Instant::now();
    let eval = rt.block_on(async {
        for (name, bytes) in demo::generate(&DemoConfig { customers, seed: 7 }) {
            objects.put(&keys::raw("demo", &name), bytes).await.expect("upload");
        }
        let spec_key = keys::raw("demo", "pipeline.toml");
        objects.put(&spec_key, DEMO_SPEC.as_bytes().to_vec()).await.expect("spec");
        let req = RunRequest { run_id: "measure".into(), spec_key, trigger: None, retrain: false };
        let ingest = steps::ingest(stores, &req).await.expect("ingest");
        assert!(ingest.quality_passed, "{:?}", ingest.quality_message);
        let prepared = steps::prepare(stores, "measure").await.expect("prepare");
        let task = prepared.tasks.into_iter().find(|t| t.use_case == UseCase::Churn).expect("churn task");
        steps::train(stores, &task).await.expect("train");
        steps::evaluate(stores, &task).await.expect("evaluate")
    });
    assert_eq!(eval.verdict, Verdict::Deploy, "{:?}", eval.reasons);
    eprintln!("{customers} customers: churn trained and evaluated in {:.1} s", t.elapsed().as_secs_f64());

    let exe = std::env::current_exe().expect("this example's path");
    println!(
        "| rows per part | parts | plan s | parts s (sum) | slowest part s | child peak RSS MB (max) | finish s | items | embedded deploy s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for rows in sizes {
        let t = Instant::now();
        let plan = rt.block_on(steps::plan_deploy(stores, &eval, rows)).expect("plan");
        let plan_s = t.elapsed().as_secs_f64();
        let (mut sum, mut slowest, mut peak, mut written) = (0.0, 0.0f64, 0.0f64, 0usize);
        for &part in &plan.parts {
            let request = serde_json::to_string(&plan.request(part)).unwrap();
            let out = std::process::Command::new(&exe)
                .args(["--part", dir.path().to_str().unwrap(), &request])
                .output()
                .expect("child");
            assert!(out.status.success(), "part {part}: {}", String::from_utf8_lossy(&out.stderr));
            let line = String::from_utf8(out.stdout).unwrap();
            let mut f = line.split_whitespace();
            let (s, mb, n): (f64, f64, usize) = (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap().parse().unwrap(),
            );
            (sum, slowest, peak, written) = (sum + s, slowest.max(s), peak.max(mb), written + n);
        }
        let t = Instant::now();
        let deployed = rt.block_on(steps::finish_deploy(stores, &plan)).expect("finish");
        assert_eq!(deployed.scores_written, written);
        let finish_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let embedded = rt.block_on(steps::deploy_in_parts(stores, &eval, rows)).expect("embedded deploy");
        assert_eq!(embedded.scores_written, written);
        println!(
            "| {rows} | {} | {plan_s:.2} | {sum:.2} | {slowest:.2} | {peak:.0} | {finish_s:.2} | {written} | {:.2} |",
            plan.parts.len(),
            t.elapsed().as_secs_f64()
        );
    }
}
