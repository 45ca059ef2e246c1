//! Writing the results: `eval.md` (the table a person reads), `eval.json` (one entry per task and
//! metric) and `<task>.json` (details: folds, cutoff tables, sweeps, neighbours).

use std::fmt::Write as _;
use std::path::Path;

use super::{Entry, TaskReport};
use marquee_pipeline::error::{Error, Result};

fn fmt_value(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x.abs() >= 1000.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

fn verdict(e: &Entry) -> String {
    match (&e.target, e.passed) {
        (Some(t), Some(true)) => format!("yes ({} {})", t.op, fmt_value(t.value)),
        (Some(t), Some(false)) => {
            let gap = (e.mean - t.value).abs();
            format!("**no** ({} {}; off by {})", t.op, fmt_value(t.value), fmt_value(gap))
        }
        _ => "-".into(),
    }
}

/// The results table of all entries.
pub fn table(entries: &[Entry]) -> String {
    let mut md = String::new();
    writeln!(
        md,
        "| task | dataset | metric | protocol | mean | ± std | min | max | fit s/fold | anchor | target met |"
    )
    .ok();
    writeln!(md, "|---|---|---|---|---|---|---|---|---|---|---|").ok();
    for e in entries {
        let anchor = e.anchor.as_ref().map_or("-".to_string(), |a| format!("{} ({})", fmt_value(a.value), a.name));
        let fit = if e.fit_seconds > 0.0 { format!("{:.3}", e.fit_seconds) } else { "-".into() };
        let (min, max) =
            if e.per_fold.len() > 1 { (fmt_value(e.min), fmt_value(e.max)) } else { ("-".into(), "-".into()) };
        let std = if e.per_fold.len() > 1 { fmt_value(e.std) } else { "-".into() };
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {std} | {min} | {max} | {fit} | {anchor} | {} |",
            e.task,
            e.dataset,
            e.metric,
            e.protocol,
            fmt_value(e.mean),
            verdict(e)
        )
        .ok();
    }
    md
}

/// The whole markdown report: the table, then each task's own section.
pub fn markdown(reports: &[TaskReport]) -> String {
    let entries: Vec<Entry> = reports.iter().flat_map(|r| r.entries.iter().cloned()).collect();
    let mut md = String::from("# marquee eval\n\n");
    md.push_str(&table(&entries));
    for r in reports {
        writeln!(md, "\n## {} ({:.1} s)\n", r.task, r.seconds).ok();
        for e in &r.entries {
            if !e.note.is_empty() || e.per_fold.len() > 1 {
                writeln!(md, "- {}: {}", e.metric, e.note).ok();
            }
            if e.per_fold.len() > 1 {
                let folds: Vec<String> = e.per_fold.iter().map(|v| fmt_value(*v)).collect();
                writeln!(md, "  - per fold: {}", folds.join(", ")).ok();
            }
        }
        writeln!(md, "\n{}", r.markdown).ok();
    }
    md
}

/// Writes eval.md, eval.json and one details file per task into `out`.
pub fn write(out: &Path, reports: &[TaskReport]) -> Result<()> {
    let io = |e: std::io::Error, what: &Path| Error::Invalid(format!("writing {}: {e}", what.display()));
    std::fs::create_dir_all(out).map_err(|e| io(e, out))?;
    let entries: Vec<&Entry> = reports.iter().flat_map(|r| r.entries.iter()).collect();
    let json_path = out.join("eval.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&entries).expect("entries serialise"))
        .map_err(|e| io(e, &json_path))?;
    let md_path = out.join("eval.md");
    std::fs::write(&md_path, markdown(reports)).map_err(|e| io(e, &md_path))?;
    for r in reports {
        let p = out.join(format!("{}.json", r.task));
        let doc =
            serde_json::json!({ "task": r.task, "seconds": r.seconds, "entries": r.entries, "details": r.details });
        std::fs::write(&p, serde_json::to_vec_pretty(&doc).expect("details serialise")).map_err(|e| io(e, &p))?;
    }
    Ok(())
}
