//! `marquee eval`: model quality on real public datasets, through the pipeline's own
//! prepare / train / evaluate code, on the published protocol splits.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use marquee_eval::{self as eval, report, Catalog, EvalOptions, Job};
use marquee_pipeline::spec::Spec;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A named task of specs/eval-tasks.toml (movielens, telco, rt, imdb, cdnow, trend, obd; see
    /// --list) or `all`.
    #[arg(long, default_value = "all", conflicts_with = "spec")]
    pub task: String,
    /// Cross-validate your own spec instead: every use case it enables, seeded k-fold on its data
    /// (stratified by label; per user for ratings), its criteria as the targets.
    #[arg(long, value_name = "SPEC")]
    pub spec: Option<PathBuf>,
    /// Folder with the spec's files (with --spec; default: the spec's folder).
    #[arg(long, value_name = "DIR", requires = "spec")]
    pub data: Option<PathBuf>,
    /// Folder with the public datasets (one sub-folder per dataset, plus protocol/), for the named
    /// tasks: this flag or the MARQUEE_DATA_DIR environment variable.
    #[arg(long, env = "MARQUEE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where eval.md, eval.json and <task>.json are written.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Folds: the first N protocol folds (movielens, telco), else k of the seeded k-fold
    /// (default 5; rt 10).
    #[arg(long, value_parser = at_least::<2>)]
    pub folds: Option<usize>,
    /// Use only ROWS rows of each task's main table (quick slices): the first ROWS, or a seeded
    /// random ROWS for the review sets (their files are sorted by label).
    #[arg(long, value_name = "ROWS", value_parser = at_least::<1>)]
    pub limit: Option<usize>,
    /// Read the specs and eval-tasks.toml from this folder instead of the copies built into the
    /// binary (see specs/): an entry added there is a new named task.
    #[arg(long)]
    pub specs: Option<PathBuf>,
    /// Seed for k-fold assignment, inner validation splits and models.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Skip the ALS rank x lambda search and use the spec's values (faster).
    #[arg(long)]
    pub no_tune: bool,
    /// List the named tasks and exit.
    #[arg(long)]
    pub list: bool,
}

pub fn run(args: EvalArgs, quiet: bool) -> Result<()> {
    let catalog = Catalog::load(args.specs.as_deref())?;
    if args.list {
        for t in &catalog.tasks {
            println!("{:<10} {}", t.name, t.about);
        }
        return Ok(());
    }
    let mut opts = EvalOptions {
        data_dir: PathBuf::new(),
        spec_dir: args.specs.clone(),
        folds: args.folds,
        limit: args.limit,
        seed: args.seed,
        tune: !args.no_tune,
    };
    let (jobs, source) = match &args.spec {
        Some(spec_path) => {
            let data =
                args.data.clone().unwrap_or_else(|| spec_path.parent().map(Path::to_path_buf).unwrap_or_default());
            let text =
                std::fs::read_to_string(spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
            let spec = Spec::from_toml(&text, &spec_path.display().to_string())?;
            let jobs = Job::from_spec(&spec, &data);
            if jobs.is_empty() {
                bail!("{} enables no use case to cross-validate", spec_path.display());
            }
            opts.data_dir = data.clone();
            (jobs, format!("data {}", data.display()))
        }
        None => {
            let Some(dir) = args.data_dir.clone() else {
                bail!("the named tasks read the public datasets: pass --data-dir DIR or set MARQUEE_DATA_DIR (or cross-validate your own spec with --spec)");
            };
            opts.data_dir = dir.clone();
            // The catalog is read once, above; each job is built from its entry.
            let tasks: Vec<&eval::NamedTask> =
                if args.task == "all" { catalog.tasks.iter().collect() } else { vec![catalog.get(&args.task)?] };
            let jobs = tasks
                .into_iter()
                .map(|t| Job::of_task(t, &opts))
                .collect::<marquee_pipeline::error::Result<Vec<_>>>()?;
            (jobs, format!("data dir {}", dir.display()))
        }
    };
    let progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let mut reports = Vec::new();
    for job in &jobs {
        let r = eval::run(job, &opts, &progress).with_context(|| format!("eval task `{}` ({source})", job.name))?;
        if !quiet {
            eprintln!("✓ {} in {:.1}s", job.name, r.seconds);
        }
        reports.push(r);
    }
    report::write(&args.out, &reports).with_context(|| format!("writing results to {}", args.out.display()))?;
    if !quiet {
        let entries: Vec<_> = reports.iter().flat_map(|r| r.entries.iter().cloned()).collect();
        println!("{}", report::table(&entries));
        println!("wrote {0}/eval.md, {0}/eval.json and one <task>.json per task", args.out.display());
    }
    Ok(())
}

/// A count of at least `MIN` (clap names the flag and the value on failure).
fn at_least<const MIN: usize>(s: &str) -> std::result::Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n < MIN {
        return Err(format!("must be at least {MIN}"));
    }
    Ok(n)
}
