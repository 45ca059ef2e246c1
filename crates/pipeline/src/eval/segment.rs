//! Segmentation: the SSE of k = k_min..k_max on all rows (in-sample, as scikit-learn reports it),
//! silhouette per k, and the SSE of the rule-based segmentation with the same number of segments.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::{data, secs, Entry, EntryBuilder, EvalOptions, Target, Task, TaskReport};
use crate::error::{Error, Result};
use crate::spec::{Spec, UseCase};
use crate::usecase::segment::SweepPoint;
use crate::usecase::{self, Tables};

const UC: UseCase = UseCase::Segment;

/// scikit-learn KMeans (k-means++, n_init 10) SSE on the z_* CDNOW matrix (protocol README).
pub const SKLEARN_CDNOW_SSE: [(usize, f64); 3] = [(5, 50193.5), (8, 34384.9), (10, 28738.0)];

/// Runs prepare (train = test = all rows) -> train (the k sweep) -> evaluate, and reports SSE and
/// silhouette per k plus the rule-based baseline. `anchors` are published SSEs per k.
pub fn sweep_all_rows(
    task: Task,
    spec: &Spec,
    tables: &Tables,
    anchors: Option<&[(usize, f64)]>,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Entry>, String, serde_json::Value)> {
    let s = spec.segment.as_ref().ok_or_else(|| Error::spec("segment", "needs a [segment] section"))?;
    let n = tables.get(&s.table)?.n_rows();
    let all: Vec<usize> = (0..n).collect();
    let t = Instant::now();
    let files = usecase::prepare_split(UC, spec, tables, &all, &all)?;
    let model = usecase::train(UC, spec, &files, tables, "eval")?;
    let fit = secs(t);
    let e = usecase::evaluate(UC, spec, &model, &files)?;
    let sweep: Vec<SweepPoint> = serde_json::from_value(e.details["sweep"].clone()).unwrap_or_default();
    progress(&format!("{task} segment: k {}..{} on {n} rows in {fit:.2}s", s.k_min, s.k_max));
    let dataset = spec.pipeline.dataset.clone();
    let protocol = format!("all {n} rows, n_init {}", s.n_init);
    let mut entries = Vec::new();
    for p in &sweep {
        let anchor = anchors.and_then(|a| a.iter().find(|(k, _)| *k == p.k)).map(|a| a.1);
        let mut b = EntryBuilder::new(task, &dataset, "segment", &format!("SSE k={}", p.k), &protocol, &[p.sse], false)
            .note(format!("silhouette {:.4}", p.silhouette));
        if let Some(a) = anchor {
            // The published SSEs are rounded to 0.1: compare at that precision.
            b = b.anchor("scikit-learn k-means++", a).target(Target::at_most(a + 0.05));
        }
        if p.k == s.k_min {
            b = b.fit_seconds(&[fit]);
        }
        entries.push(b.build());
    }
    let base = &e.details["baseline"];
    let base_k = base["k"].as_u64().unwrap_or(0);
    let base_sse = base["test_sse"].as_f64().unwrap_or(f64::NAN);
    let km_sse = base["kmeans_test_sse"].as_f64().unwrap_or(f64::NAN);
    entries.push(
        EntryBuilder::new(
            task,
            &dataset,
            "segment",
            &format!("SSE rule-based ({base_k} segments)"),
            &protocol,
            &[base_sse],
            false,
        )
        .note(format!("quantile bins on {}; k-means with k={base_k}: {km_sse:.1}", s.baseline_columns.join(" x ")))
        .build(),
    );
    let mut md = String::new();
    writeln!(md, "| k | SSE | silhouette (2,000-row sample) | scikit-learn SSE |\n|---|---|---|---|").ok();
    for p in &sweep {
        let anchor =
            anchors.and_then(|a| a.iter().find(|(k, _)| *k == p.k)).map_or("-".to_string(), |a| format!("{:.1}", a.1));
        writeln!(md, "| {} | {:.1} | {:.4} | {anchor} |", p.k, p.sse, p.silhouette).ok();
    }
    writeln!(
        md,
        "\nRule-based segmentation ({} terciles-style quantile bins on {}): SSE {base_sse:.1} with {base_k} segments vs k-means at k={base_k}: {km_sse:.1}.",
        s.baseline_bins,
        s.baseline_columns.join(" x ")
    )
    .ok();
    let details = json!({ "sweep": sweep, "baseline": base, "deployed_k": e.details["k"], "profiles": e.details["profiles"], "fit_seconds": fit });
    Ok((entries, md, details))
}

pub fn run_cdnow(opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let task = Task::Cdnow;
    let spec = opts.spec(task)?;
    let s = spec.segment.clone().ok_or_else(|| Error::spec("segment", "the cdnow spec needs a [segment] section"))?;
    let tables = data::load_tables(&spec, &opts.data_dir, &usecase::needed_tables(&spec, UC), &s.table, opts.limit)?;
    let anchors = if opts.limit.is_none() { Some(&SKLEARN_CDNOW_SSE[..]) } else { None };
    let (entries, md, details) = sweep_all_rows(task, &spec, &tables, anchors, progress)?;
    Ok(TaskReport { task, entries, details, markdown: md, seconds: 0.0 })
}
