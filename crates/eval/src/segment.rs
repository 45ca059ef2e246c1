//! Segmentation: the SSE of k = k_min..k_max on all rows (in-sample, as scikit-learn reports it),
//! silhouette per k, and the SSE of the rule-based segmentation with the same number of segments.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::{data, secs, Entry, EntryBuilder, EvalOptions, Job, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::usecase::segment::SweepPoint;
use marquee_pipeline::usecase::Details;
use marquee_pipeline::usecase::{self, Tables};

const UC: UseCase = UseCase::Segment;

/// Runs prepare (train = test = all rows) -> train (the k sweep) -> evaluate, and reports SSE and
/// silhouette per k plus the rule-based baseline, each k beside the job's `sse_k<k>` anchor.
pub fn sweep_all_rows(
    job: &Job,
    tables: &Tables,
    progress: &dyn Fn(&str),
) -> Result<(Vec<Entry>, String, serde_json::Value)> {
    let spec = &job.spec;
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
    progress(&format!("{} segment: k {}..{} on {n} rows in {fit:.2}s", job.name, s.k_min, s.k_max));
    let protocol = format!("all {n} rows, n_init {}", s.n_init);
    let mut entries = Vec::new();
    for p in &sweep {
        let mut b = EntryBuilder::new(job, "segment", &format!("SSE k={}", p.k), &protocol, &[p.sse], false)
            .note(format!("silhouette {:.4}", p.silhouette))
            .refs(job.metric(&format!("sse_k{}", p.k)));
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
            job,
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
        let anchor = job
            .metric(&format!("sse_k{}", p.k))
            .and_then(|m| m.anchor.as_ref())
            .map_or("-".to_string(), |a| format!("{:.1}", a.value));
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

/// The k sweep on all rows of the segment table. A public task's anchors are SSEs of the whole
/// dataset, so a `--limit` slice drops them.
pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let s = job.spec.segment.clone().ok_or_else(|| Error::spec("segment", "the spec has no [segment] section"))?;
    let tables =
        data::load_tables(&job.spec, &job.tables_dir, &usecase::of(UC).needed_tables(&job.spec), &s.table, opts.limit)?;
    let mut job = job.clone();
    if opts.limit.is_some() && job.public {
        job.metrics.clear();
    }
    let (entries, md, details) = sweep_all_rows(&job, &tables, progress)?;
    Ok(TaskReport { task: job.name.clone(), entries, details, markdown: md, seconds: 0.0 })
}
