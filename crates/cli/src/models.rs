//! `marquee models`: the model registry. List the recorded versions of a use case, and make a
//! deployed version champion again (promote, rollback), embedded or on the deployed stack.

use anyhow::Result;
use clap::Subcommand;

use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{self, Promotion, Stores, VersionRecord};

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
    /// Make a version that was deployed once champion again: its scores are re-published from
    /// its artifact and the data it was trained on, then the champion flips
    ///
    /// Example: marquee models promote churn 20261201T060000Z-1a2b3c4d
    #[command(verbatim_doc_comment)]
    Promote {
        use_case: UseCase,
        version: String,
    },
    /// Promote the version deployed before the current champion
    ///
    /// Example: marquee models rollback churn
    #[command(verbatim_doc_comment)]
    Rollback { use_case: UseCase },
}

impl ModelsCmd {
    /// Whether the command writes (and so holds the working folder).
    pub fn writes(&self) -> bool {
        !matches!(self, ModelsCmd::List { .. })
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
            "{} champion: {} (was {}); {n} scores re-published",
            p.use_case,
            p.version,
            prev.as_deref().unwrap_or("none")
        ),
    }
}

fn print_version(v: &VersionRecord) {
    println!("{} {}{}", v.use_case, v.version, if v.champion { "  (champion)" } else { "" });
    println!("status:    {}  ({} = {:.4}), recorded {}", v.status, v.metric, v.value, v.recorded_at);
    for reason in &v.reasons {
        println!("           - {reason}");
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
        println!("  {:<10} {}  {} bytes, {} rows, sha256 {}", f.table, f.key, f.bytes, f.rows, f.sha256);
    }
}

fn print_versions(rows: &[VersionRecord]) {
    println!("{:<10} {:<2}{:<32} {:<10} {:<11} {:>8}  recorded", "use case", "", "version", "status", "metric", "value");
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
