//! `marquee models`: the model registry. List the recorded versions of a use case, and make a
//! deployed version champion again (promote, rollback), embedded or on the deployed stack.

use anyhow::Result;
use clap::Subcommand;

use marquee_pipeline::drift::{DriftReport, Level};
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{
    self, Change, PromoteLine, PromoteOutcome, Promotion, Stores, VersionDiff, VersionRecord,
};

use crate::hint;

#[derive(Subcommand)]
pub enum ModelsCmd {
    /// List the recorded versions (deployed, rejected, unchanged), oldest first; * marks the champion
    ///
    /// Examples:
    ///   marquee models list
    ///   marquee models list churn --json
    #[command(verbatim_doc_comment)]
    List {
        /// Only this use case (segment, churn, recommend, sentiment).
        use_case: Option<UseCase>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One version: status, metric, reasons, and its lineage (input files with sha256 and size,
    /// spec section and its hash, code version, run, the champion it was compared with)
    ///
    /// Example: marquee models show churn 20261201T060000Z-1a2b3c4d
    #[command(verbatim_doc_comment)]
    Show {
        use_case: UseCase,
        version: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// What differs between two versions: metrics, parameters, input files (sha256), code, and
    /// the drift of the second's data and scores against the first's
    ///
    /// Example: marquee models diff churn 20261124T060000Z-1a2b3c 20261201T060000Z-4d5e6f
    #[command(verbatim_doc_comment)]
    Diff {
        use_case: UseCase,
        /// The earlier version (the reference).
        from: String,
        /// The later version.
        to: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Make a version that was deployed once champion again: its scores are re-published from
    /// its artifact and the data it was trained on, then the champion flips
    ///
    /// Example: marquee models promote churn 20261201T060000Z-1a2b3c4d
    #[command(verbatim_doc_comment)]
    Promote { use_case: UseCase, version: String },
    /// Promote the version deployed before the current champion
    ///
    /// Example: marquee models rollback churn
    #[command(verbatim_doc_comment)]
    Rollback { use_case: UseCase },
}

impl ModelsCmd {
    /// Whether the command writes (and so holds the working folder).
    pub fn writes(&self) -> bool {
        !matches!(self, ModelsCmd::List { .. } | ModelsCmd::Show { .. } | ModelsCmd::Diff { .. })
    }
}

pub async fn run(stores: Stores<'_>, cmd: ModelsCmd, quiet: bool) -> Result<()> {
    match cmd {
        ModelsCmd::List { use_case, json } => {
            let mut all = Vec::new();
            for uc in use_case.map_or_else(|| UseCase::ALL.to_vec(), |uc| vec![uc]) {
                all.extend(steps::versions(stores, uc).await?);
            }
            if all.is_empty() {
                return Err(hint::not_found("no model version is recorded", "run the pipeline first: `marquee run`"));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print_versions(&all);
            }
            Ok(())
        }
        ModelsCmd::Show { use_case, version, json } => {
            let all = steps::versions(stores, use_case).await?;
            let Some(v) = all.iter().find(|v| v.version == version) else {
                return Err(hint::not_found(
                    format!("{use_case} has no version {version}"),
                    format!("`marquee models list {use_case}` lists its versions"),
                ));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(v)?);
            } else {
                print_version(v);
            }
            Ok(())
        }
        ModelsCmd::Diff { use_case, from, to, json } => {
            let d = steps::diff(stores, use_case, &from, &to).await.map_err(|e| match e {
                marquee_pipeline::Error::Invalid(message) => hint::not_found(message, "check the version names"),
                e => e.into(),
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                print_diff(&d);
            }
            Ok(())
        }
        ModelsCmd::Promote { use_case, version } => {
            let done = steps::promote(stores, use_case, &version).await.map_err(unmet)?;
            report(&done, quiet);
            Ok(())
        }
        ModelsCmd::Rollback { use_case } => {
            let done = steps::rollback(stores, use_case).await.map_err(unmet)?;
            report(&done, quiet);
            Ok(())
        }
    }
}

/// A promotion the registry refuses (never deployed, nothing earlier, data expired).
fn unmet(e: marquee_pipeline::Error) -> anyhow::Error {
    match e {
        marquee_pipeline::Error::Invalid(message) => {
            hint::unmet(message, "`marquee models list` shows each version's status and the champion")
        }
        e => e.into(),
    }
}

fn report(p: &Promotion, quiet: bool) {
    if quiet {
        return;
    }
    match (&p.previous, p.scores_written) {
        (Some(prev), 0) if *prev == p.version => println!("{} {} already is the champion", p.use_case, p.version),
        (prev, n) => println!(
            "{} champion: {} (was {}); {n} scores re-published, {} stale scores removed",
            p.use_case,
            p.version,
            prev.as_deref().unwrap_or("none"),
            p.stale_removed
        ),
    }
    match &p.segments {
        Some(PromoteLine::Done(out)) if out.outcome == PromoteOutcome::Written => {
            println!("segment promotions ranked again for {} segments (marquee segments)", out.segments)
        }
        Some(PromoteLine::Done(out)) => println!("segment promotions: {:?} ({})", out.outcome, out.note),
        Some(PromoteLine::Failed { error, cause }) => println!("segment promotions NOT ranked again: {error}: {cause}"),
        None => {}
    }
}

fn print_version(v: &VersionRecord) {
    println!("{} {}{}", v.use_case, v.version, if v.champion { "  (champion)" } else { "" });
    println!("status:    {}  ({} = {:.4}), recorded {}", v.status, v.metric, v.value, v.recorded_at);
    for reason in &v.reasons {
        println!("           - {reason}");
    }
    if let Some(d) = &v.drift {
        print_drift(&format!("vs {}: ", d.reference), d);
    }
    let Some(l) = &v.lineage else {
        println!("lineage:   not recorded");
        return;
    };
    println!("run:       {}", l.run_id);
    println!("parent:    {}", l.parent.as_deref().unwrap_or("none (first champion)"));
    println!("code:      {}", l.code_version);
    println!("spec:      section sha256 {}", l.spec_section_sha256);
    println!("inputs:");
    for f in &l.inputs {
        let version = f.object_version.as_deref().map(|v| format!(", {v}")).unwrap_or_default();
        println!("  {:<10} {}  {} bytes, {} rows, sha256 {}{version}", f.table, f.key, f.bytes, f.rows, f.sha256);
    }
}

fn print_versions(rows: &[VersionRecord]) {
    println!(
        "{:<10} {:<2}{:<32} {:<10} {:<11} {:>8}  recorded",
        "use case", "", "version", "status", "metric", "value"
    );
    for v in rows {
        println!(
            "{:<10} {:<2}{:<32} {:<10} {:<11} {:>8.4}  {}",
            v.use_case.as_str(),
            if v.champion { "*" } else { "" },
            v.version,
            v.status,
            v.metric,
            v.value,
            v.recorded_at.get(..19).unwrap_or(&v.recorded_at)
        );
    }
}

fn print_diff(d: &VersionDiff) {
    fn show<T: std::fmt::Display>(v: &Option<T>) -> String {
        v.as_ref().map_or_else(|| "-".to_string(), ToString::to_string)
    }
    println!("{} {} -> {}", d.use_case, d.from, d.to);
    println!("\n{:<50} {:>10} {:>10} {:>9}", "metrics:", "from", "to", "change");
    for Change { name, from, to } in &d.metrics {
        let delta = match (from, to) {
            // Rounded first, so an unchanged value reads +0.0000 rather than -0.0000.
            (Some(a), Some(b)) => format!("{:+.4}", ((b - a) * 1e4).round() / 1e4 + 0.0),
            _ => String::new(),
        };
        let num = |v: &Option<f64>| v.map_or_else(|| "-".to_string(), |x| format!("{x:.4}"));
        println!("  {name:<48} {:>10} {:>10} {delta:>9}", num(from), num(to));
    }
    println!("\nparameters:{}", if d.parameters.is_empty() { " the same" } else { "" });
    for c in &d.parameters {
        println!("  {:<48} {} -> {}", c.name, show(&c.from), show(&c.to));
    }
    println!("\ninputs:");
    for i in &d.inputs {
        let file = |f: &Option<steps::InputFile>| {
            f.as_ref().map_or_else(
                || "-".to_string(),
                |f| format!("{} ({} rows, sha256 {})", f.key, f.rows, &f.sha256[..f.sha256.len().min(12)]),
            )
        };
        let state = if i.same { "same" } else { "changed" };
        println!("  {:<10} {state:<8} {} -> {}", i.table, file(&i.from), file(&i.to));
    }
    println!("\ncode:      {} -> {}", show(&d.code.from), show(&d.code.to));
    match &d.drift {
        None => println!("drift:     not available (a version has no recorded profile)"),
        Some(r) => print_drift("", r),
    }
}

/// The drift line of `models show` and `models diff`: how many measures moved, and which.
fn print_drift(lead: &str, d: &DriftReport) {
    let moved = d.at_least(Level::Warn);
    println!("drift:     {lead}{} of {} measures at or past a threshold", moved.len(), d.shifts.len());
    for s in moved {
        let level = if s.level == Level::Block { "block" } else { "warn" };
        println!("           ! {} {} {} {:.3} ({level})", s.what, s.name, s.measure(), s.value);
    }
}
