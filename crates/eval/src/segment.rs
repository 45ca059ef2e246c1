//! Segmentation: the SSE of k = k_min..k_max on all rows (in-sample, as scikit-learn reports it),
//! silhouette per k, and the SSE of the rule-based segmentation with the same number of segments.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::{data, secs, Entry, EntryBuilder, EvalOptions, Target, Task, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::spec::{Spec, UseCase};
use marquee_pipeline::usecase::segment::SweepPoint;
use marquee_pipeline::usecase::Details;
use marquee_pipeline::usecase::{self, Tables};

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
    let files = usecase::of(UC).prepare_split(spec, tables, &all, &all)?;
    let model = usecase::of(UC).train(spec, &files, tables, "eval")?;
    let fit = secs(t);
    let e = usecase::of(UC).evaluate(spec, &model, &files)?;
    let Details::Segment(d) = e.details else { unreachable!("a segment evaluation has segment details") };
    let sweep: Vec<SweepPoint> = d.sweep;
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
    let base = &d.baseline;
    let base_k = base.k;
    let base_sse = base.test_sse;
    let km_sse = base.kmeans_test_sse.unwrap_or(f64::NAN);
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
    let details =
        json!({ "sweep": sweep, "baseline": base, "deployed_k": d.k, "profiles": d.profiles, "fit_seconds": fit });
    Ok((entries, md, details))
}

pub fn run_cdnow(opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let task = Task::Cdnow;
    let spec = opts.spec(task)?;
    let s = spec.segment.clone().ok_or_else(|| Error::spec("segment", "the cdnow spec needs a [segment] section"))?;
    let tables = data::load_tables(&spec, &opts.data_dir, &usecase::of(UC).needed_tables(&spec), &s.table, opts.limit)?;
    let anchors = if opts.limit.is_none() { Some(&SKLEARN_CDNOW_SSE[..]) } else { None };
    let (entries, md, details) = sweep_all_rows(task, &spec, &tables, anchors, progress)?;
    Ok(TaskReport { task, entries, details, markdown: md, seconds: 0.0 })
}
