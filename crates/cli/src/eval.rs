//! `marquee eval`: model quality on real public datasets, through the pipeline's own
//! prepare / train / evaluate code, on the published protocol splits.

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

use marquee_eval::{self as eval, report, EvalOptions, Task};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TaskArg {
    /// MovieLens 100K: ALS RMSE (5 protocol folds), precision/NDCG@10 vs popularity, content-based recs.
    Movielens,
    /// IBM Telco: churn ROC AUC (5 protocol folds), cutoff tables, class weights; k-means on numerics.
    Telco,
    /// Rotten Tomatoes polarity: sentiment accuracy (stratified 10-fold).
    Rt,
    /// IMDB 25k train reviews: sentiment accuracy (stratified 5-fold).
    Imdb,
    /// CDNOW customers: k-means SSE per k vs scikit-learn, silhouette, rule-based baseline.
    Cdnow,
    /// Trending sentiment: planted rising / falling / flat entities over real review texts.
    Trend,
    /// Every task above.
    All,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Which evaluation to run.
    #[arg(long, value_enum, default_value = "all")]
    pub task: TaskArg,
    /// Folder with the datasets (one sub-folder per dataset, plus protocol/). Required: this flag
    /// or the MARQUEE_DATA_DIR environment variable.
    #[arg(long, env = "MARQUEE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Where eval.md, eval.json and <task>.json are written.
    #[arg(long, default_value = "eval-out")]
    pub out: PathBuf,
    /// Folds: the first N protocol folds (movielens, telco), or k of the stratified k-fold (rt, imdb).
    #[arg(long, value_parser = at_least::<2>)]
    pub folds: Option<usize>,
    /// Use only ROWS rows of each task's main table (quick slices): the first ROWS, or a seeded
    /// random ROWS for the review sets (their files are sorted by label).
    #[arg(long, value_name = "ROWS", value_parser = at_least::<1>)]
    pub limit: Option<usize>,
    /// Read the specs from this folder instead of the copies built into the binary (see specs/).
    #[arg(long)]
    pub specs: Option<PathBuf>,
    /// Seed for k-fold assignment, inner validation splits and models.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Skip the ALS rank x lambda search and use the spec's values (faster).
    #[arg(long)]
    pub no_tune: bool,
}

pub fn run(args: EvalArgs, quiet: bool) -> Result<()> {
    let tasks: Vec<Task> = match args.task {
        TaskArg::Movielens => vec![Task::Movielens],
        TaskArg::Telco => vec![Task::Telco],
        TaskArg::Rt => vec![Task::Rt],
        TaskArg::Imdb => vec![Task::Imdb],
        TaskArg::Cdnow => vec![Task::Cdnow],
        TaskArg::Trend => vec![Task::Trend],
        TaskArg::All => Task::ALL.to_vec(),
    };
    let opts = EvalOptions {
        data_dir: args.data_dir.clone(),
        spec_dir: args.specs.clone(),
        folds: args.folds,
        limit: args.limit,
        seed: args.seed,
        tune: !args.no_tune,
    };
    let progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let mut reports = Vec::new();
    for task in tasks {
        let r = eval::run(task, &opts, &progress)
            .with_context(|| format!("eval task `{task}` (data dir {})", args.data_dir.display()))?;
        if !quiet {
            eprintln!("✓ {task} in {:.1}s", r.seconds);
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
