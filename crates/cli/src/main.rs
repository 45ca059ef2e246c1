//! `marquee`: the command line of the embedded pipeline (demo data, runs, queries).

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use marquee_demo::{self as demo, DemoConfig};

/// mimalloc rather than the system allocator: a run's steps allocate on many threads (the async
/// runtime's, the cores' pools), and glibc's per-thread arenas kept up to ~40% more memory
/// resident than the run needed (peak RSS at 100,000 demo customers 2.1 GB against 1.5 GB with
/// one arena; docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use marquee_embedded::{DirObjectStore, SqliteScoreStore, WorkdirLock};
use marquee_pipeline::flow::{self, Event};
use marquee_pipeline::keys;
use marquee_pipeline::spec::{Spec, UseCase};
use marquee_pipeline::steps::{self, PromoteLine, PromoteOutcome, RunRequest, RunSummary, Stores, Verdict};
use marquee_pipeline::store::{ObjectStore, ScoreStore};

mod aws;
mod churn;
mod datasets;
mod eval;
mod hint;
mod models;
mod query;
mod report;
mod show;

/// Exit code when the quality gate stops a run (bad input), as opposed to 1 for other failures.
const EXIT_QUALITY_GATE: i32 = 3;

#[derive(Parser)]
#[command(
    name = "marquee",
    version,
    about = "Predictive analytics for media & entertainment: segments, churn, recommendations, sentiment."
)]
#[command(after_help = "\
Examples:
  marquee run --customers 2000 --workdir /tmp/mq    run the pipeline on demo data
  marquee report --open --workdir /tmp/mq           open the latest run's evaluation report
  marquee show customer C00042 --workdir /tmp/mq    what applications see for a customer
  marquee churn cutoff --min-precision 0.6 --apply  move the churn cutoff without retraining

Every command takes --workdir (or MARQUEE_WORKDIR); query commands take --json.

Exit codes: 0 success, 1 failure, 2 usage error, 3 quality gate failed (see the quality report),
4 not found (no such run, customer or title; nothing deployed), 5 request cannot be met
(e.g. no cutoff reaches the asked precision), 6 a use case failed (the others finished),
7 the working folder is busy (another run writes to it; `marquee run --wait` waits).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only errors (and the data a query asked for).
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print debug logs (MARQUEE_LOG=<filter> for finer control).
    #[arg(long, short, global = true)]
    verbose: bool,
    /// Working folder: object store in WORKDIR/store, scores in WORKDIR/scores.db.
    #[arg(long, env = "MARQUEE_WORKDIR", default_value = "marquee-work", global = true)]
    workdir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole pipeline embedded: ingest, prepare, train, evaluate, deploy
    ///
    /// Without --spec, generates the demo dataset and runs on it. Writes the run's HTML report
    /// (runs/<run>/report.html) at the end.
    ///
    /// Examples:
    ///   marquee run
    ///   marquee run --customers 20000 --workdir /tmp/mq
    ///   marquee run --spec my-pipeline.toml --data ./exports
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Draft a pipeline spec from a folder of CSV exports
    ///
    /// Reads each .csv / .csv.gz file's header and first rows, gives every column a role, proposes
    /// the use cases the data supports and writes an annotated spec that `marquee run --spec`
    /// accepts as it is. What the data cannot decide is a `# QUESTION:` line in the file.
    ///
    /// Examples:
    ///   marquee init --data ./exports
    ///   marquee init --data ./exports --out acme.toml
    ///   marquee run --spec ./exports/pipeline.toml
    #[command(verbatim_doc_comment)]
    Init {
        /// Folder holding the CSV exports.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the spec (default: DATA/pipeline.toml).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing spec file.
        #[arg(long)]
        force: bool,
    },
    /// Write the synthetic demo dataset (CSV files) and its pipeline spec to a folder
    ///
    /// Examples:
    ///   marquee demo-data --out demo --customers 5000 --seed 42
    ///   marquee run --spec demo/pipeline.toml
    #[command(verbatim_doc_comment)]
    DemoData {
        /// Folder to write the CSV files and pipeline.toml to (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of customers (other tables scale with it).
        #[arg(long, default_value_t = 5000)]
        customers: usize,
        /// Random seed: same seed, same files.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Write the tables that grow with the customers (customers, ratings, viewing, posts,
        /// impressions) as folders of this many part files each, as a data lake export would.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        parts: u32,
    },
    /// Show what the score store holds for a customer or a title
    ///
    /// Examples:
    ///   marquee show customer C00042
    ///   marquee show title T0007 --json
    #[command(verbatim_doc_comment)]
    Show {
        #[command(subcommand)]
        what: show::ShowWhat,
        /// Print JSON (for scripts) instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// How many recommendations / similar titles to list.
        #[arg(long, global = true, default_value_t = 10)]
        top: usize,
        /// Read the deployed stack's DynamoDB table and S3 bucket instead of the workdir.
        #[arg(long, global = true)]
        aws: bool,
    },
    /// Write a run's evaluation report (HTML with charts) and print its path
    ///
    /// The report holds, per use case, the verdict and why, charts of the evaluation and example
    /// scores, plus the data profile and quality report. `marquee run` writes it too.
    ///
    /// Examples:
    ///   marquee report                      # the latest run
    ///   marquee report 20240101T000000Z-abc123 --open
    #[command(verbatim_doc_comment)]
    Report {
        /// Run id (a folder under WORKDIR/store/runs/); default: the latest finished run.
        run: Option<String>,
        /// Open the report in the browser (xdg-open).
        #[arg(long)]
        open: bool,
    },
    /// Churn business levers: choose and apply the cutoff that flags customers at risk
    ///
    /// Examples:
    ///   marquee churn cutoff --min-precision 0.6
    ///   marquee churn cutoff --min-recall 0.7 --apply
    #[command(verbatim_doc_comment)]
    Churn {
        #[command(subcommand)]
        cmd: churn::ChurnCmd,
    },
    /// List the deployed customer segments: id, label, size and share, and per segment the
    /// titles to promote at the top of its members' watchlists
    ///
    /// Examples:
    ///   marquee segments
    ///   marquee segments --json
    #[command(verbatim_doc_comment)]
    Segments {
        /// Print JSON (with each segment's feature means and promoted titles) instead of a table.
        #[arg(long)]
        json: bool,
        /// Read the deployed stack's DynamoDB table and S3 bucket instead of the workdir.
        #[arg(long)]
        aws: bool,
    },
    /// List the customers with the highest churn probability
    ///
    /// Examples:
    ///   marquee at-risk --top 50
    ///   marquee at-risk --flagged --json > at-risk.json
    #[command(verbatim_doc_comment)]
    AtRisk {
        /// How many customers to list.
        #[arg(long, default_value_t = 50)]
        top: usize,
        /// Only customers flagged at risk at the deployed cutoff.
        #[arg(long)]
        flagged: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Read the deployed stack's DynamoDB table instead of the workdir.
        #[arg(long)]
        aws: bool,
    },
    /// The model registry: list versions, promote a deployed version, roll back a champion
    ///
    /// Examples:
    ///   marquee models list churn
    ///   marquee models rollback churn
    ///   marquee models promote churn 20261201T060000Z-1a2b3c4d --aws
    #[command(verbatim_doc_comment)]
    Models {
        #[command(subcommand)]
        cmd: models::ModelsCmd,
        /// Act on the deployed stack's DynamoDB table and S3 bucket instead of the workdir.
        #[arg(long, global = true)]
        aws: bool,
    },
    /// Drive a pipeline deployed on AWS (see docs/aws.md)
    Aws {
        #[command(subcommand)]
        cmd: aws::AwsCmd,
    },
    /// Cross-validate models: your own spec on your data, or the named public tasks
    ///
    /// With --spec: k-fold cross-validation of every use case the spec enables, through the same
    /// prepare / train / evaluate code as a run, tuning only inside training folds. Without it: the
    /// named public tasks (MovieLens, Telco, rt-polarity, IMDB, CDNOW, trend) on their published
    /// protocol splits, beside peer baselines.
    ///
    /// Examples:
    ///   marquee eval --spec acme.toml --data ./exports --folds 5
    ///   marquee eval --task movielens --data-dir DATA --out eval-out
    ///   marquee eval --list
    #[command(verbatim_doc_comment)]
    Eval(eval::EvalArgs),
    /// Public datasets: list the catalog, download one into the cache with sha256 checks
    ///
    /// Examples:
    ///   marquee datasets list
    ///   marquee datasets fetch open_bandit_dataset
    ///   marquee eval --data-dir ~/.cache/marquee/datasets
    #[command(verbatim_doc_comment)]
    Datasets(datasets::DatasetsArgs),
    /// Print shell completions, e.g. `marquee completions bash > /etc/bash_completion.d/marquee`
    ///
    /// Examples:
    ///   marquee completions bash > /etc/bash_completion.d/marquee
    ///   marquee completions zsh > ~/.zfunc/_marquee
    ///   marquee completions fish > ~/.config/fish/completions/marquee.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Pipeline spec (TOML). Omit to run on generated demo data.
    #[arg(long)]
    spec: Option<PathBuf>,
    /// Folder holding the spec's input files (default: the spec's folder).
    #[arg(long, requires = "spec")]
    data: Option<PathBuf>,
    /// Demo data size (without --spec).
    #[arg(long, default_value_t = 5000, conflicts_with = "spec")]
    customers: usize,
    /// Demo data seed (without --spec).
    #[arg(long, default_value_t = 42, conflicts_with = "spec")]
    seed: u64,
    /// Demo tables that grow with the customers as folders of this many parts (without --spec).
    #[arg(long, default_value_t = 1, conflicts_with = "spec", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    parts: u32,
    /// Run id (default: time-based).
    #[arg(long)]
    run_id: Option<String>,
    /// Do not write the HTML report at the end of the run.
    #[arg(long)]
    no_report: bool,
    /// When another run is writing to the working folder, wait for it to finish (default: stop
    /// with exit code 7, naming the run that holds it).
    #[arg(long)]
    wait: bool,
    /// Train every use case even when its data and spec section are its champion's (by default
    /// such a use case is not retrained and the run records it as unchanged).
    #[arg(long)]
    retrain: bool,
}

/// The error and its causes joined by ": ", skipping a cause whose text the message already ends
/// with (a step error's text includes its cause, which is also its source).
fn error_message(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    init_logging(cli.quiet, cli.verbose);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    match rt.block_on(dispatch(cli)) {
        Ok(()) => {}
        Err(e) => {
            let gate = e.chain().find(|c| {
                matches!(c.downcast_ref::<marquee_pipeline::Error>(), Some(marquee_pipeline::Error::QualityGate { .. }))
            });
            eprintln!("error: {}", error_message(&e));
            if let Some(h) = e.chain().find_map(|c| c.downcast_ref::<hint::Hinted>()) {
                eprintln!("hint: {}", h.hint);
                std::process::exit(h.code);
            }
            if gate.is_some() {
                eprintln!("hint: do what each failing table's `next:` says; the quarantine file lists every rejected row (line, column, reason)");
                std::process::exit(EXIT_QUALITY_GATE);
            }
            std::process::exit(1);
        }
    }
}

/// Output piped into a reader that stops early (`marquee at-risk | head`) ends the command quietly,
/// as `cat` does, instead of a panic in `println!`: Rust's runtime ignores SIGPIPE, so writes to
/// the closed pipe fail; the default action ends the process at the first such write.
#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: first thing in main, before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}

fn init_logging(quiet: bool, verbose: bool) {
    let level = if verbose {
        "debug"
    } else if quiet {
        "error"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MARQUEE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run(args, &cli.workdir, cli.quiet).await,
        Command::Init { data, out, force } => init(&data, out, force, cli.quiet),
        Command::DemoData { out, customers, seed, parts } => {
            write_demo(&out, customers, seed, parts)?;
            if !cli.quiet {
                println!("wrote demo data ({customers} customers, seed {seed}) and pipeline.toml to {}", out.display());
            }
            Ok(())
        }
        Command::Show { what, json, top, aws } => {
            let (objects, scores) = open_query_stores(&cli.workdir, aws).await?;
            show::show(&*scores, &*objects, what, top, json).await
        }
        Command::Report { run, open } => {
            let (objects, scores) = open_existing(&cli.workdir)?;
            let run_id = report::resolve_run(&objects, run).await?;
            let path =
                report::write(Stores { objects: &objects, scores: &scores }, &objects, &run_id, &cli.workdir).await?;
            if !cli.quiet {
                println!("{}", path.display());
            }
            if open {
                report::open(&path)?;
            }
            Ok(())
        }
        Command::Churn { cmd: churn::ChurnCmd::Cutoff(args) } => {
            let _lock = match args.apply {
                true => Some(lock_workdir(&cli.workdir, "churn cutoff --apply", false, cli.quiet)?),
                false => None,
            };
            let (objects, scores) = open_existing(&cli.workdir)?;
            churn::cutoff(Stores { objects: &objects, scores: &scores }, args, cli.quiet).await
        }
        Command::Segments { json, aws } => {
            let (objects, scores) = open_query_stores(&cli.workdir, aws).await?;
            let rows = query::segments(&*scores, &*objects).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                query::print_segments(&rows);
            }
            Ok(())
        }
        Command::AtRisk { top, flagged, json, aws } => {
            let (_, scores) = open_query_stores(&cli.workdir, aws).await?;
            let rows = query::at_risk(&*scores, top, flagged).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                query::print_at_risk(&rows);
            }
            Ok(())
        }
        Command::Models { cmd, aws } => {
            let _lock = match cmd.writes() && !aws {
                true => Some(lock_workdir(&cli.workdir, "models", false, cli.quiet)?),
                false => None,
            };
            let (objects, scores) = open_query_stores(&cli.workdir, aws).await?;
            models::run(Stores { objects: &*objects, scores: &*scores }, cmd, cli.quiet).await
        }
        Command::Aws { cmd } => aws::run(cmd, cli.quiet).await,
        Command::Eval(args) => eval::run(args, cli.quiet),
        Command::Datasets(args) => datasets::run(args, cli.quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "marquee", &mut std::io::stdout());
            Ok(())
        }
    }
}

fn write_demo(out: &Path, customers: usize, seed: u64, parts: u32) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let files = demo::generate(&DemoConfig { customers, seed });
    let (files, spec) =
        if parts > 1 { demo::split_into_parts(files, parts as usize) } else { (files, demo::DEMO_SPEC.to_string()) };
    // Parts of an earlier, differently split write would be read as part of the tables.
    for table in demo::PARTED_TABLES {
        let folder = out.join(table);
        if folder.is_dir() {
            std::fs::remove_dir_all(&folder).with_context(|| format!("removing {}", folder.display()))?;
        }
    }
    for (name, bytes) in files {
        let path = out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    std::fs::write(out.join("pipeline.toml"), spec)?;
    Ok(())
}

/// The stores of a workdir a pipeline already ran in (queries never create an empty one).
/// The AWS stores will plug in here: everything downstream takes the store traits.
fn open_existing(workdir: &Path) -> Result<(DirObjectStore, SqliteScoreStore)> {
    let db = workdir.join("scores.db");
    if !db.exists() {
        return Err(hint::not_found(
            format!("no score store at {}", db.display()),
            "pass --workdir (or set MARQUEE_WORKDIR) to the folder `marquee run` used, or run the pipeline first: `marquee run`",
        ));
    }
    Ok((DirObjectStore::new(workdir.join("store")), open_scores(workdir)?))
}

/// The stores queries read: the deployed stack's with `--aws`, else the workdir's.
async fn open_query_stores(workdir: &Path, aws: bool) -> Result<(Box<dyn ObjectStore>, Box<dyn ScoreStore>)> {
    if aws {
        return aws::stores().await;
    }
    let (objects, scores) = open_existing(workdir)?;
    Ok((Box::new(objects), Box::new(scores)))
}

fn open_scores(workdir: &Path) -> Result<SqliteScoreStore> {
    std::fs::create_dir_all(workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let path = workdir.join("scores.db");
    SqliteScoreStore::open(&path).with_context(|| format!("opening score store {}", path.display()))
}

/// Holds the working folder for a command that writes to it (one writer at a time).
fn lock_workdir(workdir: &Path, holder: &str, wait: bool, quiet: bool) -> Result<WorkdirLock> {
    let taken = if wait {
        WorkdirLock::acquire_waiting(workdir, holder, |other| {
            if !quiet {
                eprintln!("waiting for {other} to finish with {}", workdir.display());
            }
        })
    } else {
        WorkdirLock::try_acquire(workdir, holder)
    };
    taken.map_err(|e| match e {
        marquee_pipeline::Error::Busy { what, holder, hint } => hint::busy(format!("{what} is busy: {holder}"), hint),
        e => e.into(),
    })
}

/// Puts the spec and its input files under raw/<dataset>/ of the object store, as an S3 upload would.
async fn upload_inputs(objects: &DirObjectStore, spec_path: &Path, data_dir: &Path) -> Result<String> {
    let text = std::fs::read_to_string(spec_path).with_context(|| format!("reading spec {}", spec_path.display()))?;
    let spec = Spec::from_toml(&text, &spec_path.display().to_string())?;
    for t in spec.tables.values() {
        let src = data_dir.join(&t.file);
        if !t.is_parts() {
            let bytes = std::fs::read(&src)
                .with_context(|| format!("reading input file {} (named by the spec)", src.display()))?;
            objects.put(&keys::raw(&spec.pipeline.dataset, &t.file), bytes).await?;
            continue;
        }
        // A folder of parts replaces the stored one whole: no part of an earlier upload stays.
        let folder = keys::raw(&spec.pipeline.dataset, &t.file);
        for stale in objects.list(&folder).await? {
            objects.delete(&stale).await?;
        }
        let parts = marquee_pipeline::spec::part_files_in(&src)
            .with_context(|| format!("reading input folder {} (named by the spec)", src.display()))?;
        for part in parts {
            let name = part.file_name().expect("a listed file has a name").to_string_lossy();
            let bytes = std::fs::read(&part).with_context(|| format!("reading input part {}", part.display()))?;
            objects.put(&format!("{folder}{name}"), bytes).await?;
        }
    }
    let spec_key = keys::raw(&spec.pipeline.dataset, "pipeline.toml");
    objects.put(&spec_key, text.into_bytes()).await?;
    Ok(spec_key)
}

async fn run(args: RunArgs, workdir: &Path, quiet: bool) -> Result<()> {
    let run_id = args.run_id.clone().unwrap_or_else(steps::new_run_id);
    let _lock = lock_workdir(workdir, &format!("run {run_id}"), args.wait, quiet)?;
    let objects = DirObjectStore::new(workdir.join("store"));
    let scores = open_scores(workdir)?;
    let spec_key = match &args.spec {
        Some(spec) => {
            let data = args.data.clone().unwrap_or_else(|| spec.parent().map(Path::to_path_buf).unwrap_or_default());
            upload_inputs(&objects, spec, &data).await?
        }
        None => {
            let demo_dir = workdir.join("demo-data");
            write_demo(&demo_dir, args.customers, args.seed, args.parts)?;
            if !quiet {
                let parts =
                    if args.parts > 1 { format!(", {} parts per large table", args.parts) } else { String::new() };
                eprintln!(
                    "demo data: {} customers (seed {}{parts}) in {}",
                    args.customers,
                    args.seed,
                    demo_dir.display()
                );
            }
            upload_inputs(&objects, &demo_dir.join("pipeline.toml"), &demo_dir).await?
        }
    };
    let req = RunRequest { run_id, spec_key, trigger: Some("cli".into()), retrain: args.retrain };
    let stores = Stores { objects: &objects, scores: &scores };
    let progress = Progress::new(quiet);
    let started = std::time::Instant::now();
    let crash = CrashSwitch::from_env();
    let summary = flow::run(stores, &req, &|e| {
        crash.on_event(&e);
        progress.on_event(e)
    })
    .await?;
    progress.finish();
    let report = if args.no_report {
        None
    } else {
        let key = marquee_report::write_report(stores, &summary.run_id, &marquee_report::workdir_options(workdir))
            .await
            .context("writing the HTML report (the run itself succeeded)")?;
        Some(objects.root().join(key))
    };
    if !quiet {
        print_summary(&summary, &objects, started.elapsed());
        if let Some(path) = report {
            println!("report:    {}   (open it: marquee report --open)", path.display());
        }
    }
    match &summary.failure_message {
        None => Ok(()),
        Some(message) => Err(hint::use_case_failed(
            message.clone(),
            "fix the cause and run again: the use cases that finished stay deployed, and an unchanged one is not retrained",
        )),
    }
}

/// Fault injection for the crash-safety tests: `MARQUEE_ABORT_AFTER_STEPS=N` aborts the process
/// (no unwinding, no cleanup, like a kill) right after the N-th finished step.
struct CrashSwitch {
    after: Option<usize>,
    finished: std::sync::atomic::AtomicUsize,
}

impl CrashSwitch {
    fn from_env() -> Self {
        let after = std::env::var("MARQUEE_ABORT_AFTER_STEPS").ok().and_then(|v| v.parse().ok());
        Self { after, finished: Default::default() }
    }

    fn on_event(&self, e: &Event) {
        if let (Some(after), Event::Finished { .. }) = (self.after, e) {
            if self.finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == after {
                std::process::abort();
            }
        }
    }
}

/// One spinner per step on a terminal; plain lines otherwise (CI logs, pipes).
struct Progress {
    quiet: bool,
    tty: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        Self { quiet, tty: std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }

    fn label(step: &str, uc: Option<marquee_pipeline::spec::UseCase>) -> String {
        match uc {
            Some(uc) => format!("{step:<9} {uc}"),
            None => step.to_string(),
        }
    }

    fn on_event(&self, e: Event) {
        if self.quiet {
            return;
        }
        match e {
            Event::Started { step, use_case } if self.tty => {
                let bar = ProgressBar::new_spinner()
                    .with_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("template"));
                bar.set_message(Self::label(step, use_case));
                bar.enable_steady_tick(Duration::from_millis(100));
                *self.bar.lock().expect("progress lock") = Some(bar);
            }
            Event::Started { .. } => {}
            Event::Finished { step, use_case, elapsed, note } => {
                self.line(format!("✓ {:<20} {:>7.2}s  {note}", Self::label(step, use_case), elapsed.as_secs_f64()));
            }
            Event::Skipped { use_case, note } => {
                self.line(format!("- {:<20} {:>8}  {note}", Self::label("skip", Some(use_case)), ""));
            }
            Event::Failed { step, use_case, elapsed, error } => {
                self.line(format!("✗ {:<20} {:>7.2}s  {error}", Self::label(step, use_case), elapsed.as_secs_f64()));
            }
        }
    }

    /// Ends the step's spinner with `line` (or prints it where there is no spinner).
    fn line(&self, line: String) {
        match self.bar.lock().expect("progress lock").take() {
            Some(bar) => bar.finish_with_message(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

/// `marquee init`: drafts the spec and says what it found and what it could not decide.
fn init(data: &Path, out: Option<PathBuf>, force: bool, quiet: bool) -> Result<()> {
    let out = out.unwrap_or_else(|| data.join("pipeline.toml"));
    if out.exists() && !force {
        return Err(hint::unmet(
            format!("{} exists", out.display()),
            "pass --force to replace it, or --out to write the draft elsewhere",
        ));
    }
    let draft = marquee_pipeline::draft::draft_spec(data)?;
    std::fs::write(&out, &draft.toml).with_context(|| format!("writing {}", out.display()))?;
    if !quiet {
        let tables: Vec<&str> = draft.spec.tables.keys().map(String::as_str).collect();
        let use_cases: Vec<&str> = draft.spec.use_cases().iter().map(|u| u.as_str()).collect();
        println!("wrote {}: tables {}; use cases {}", out.display(), tables.join(", "), use_cases.join(", "));
        for q in &draft.questions {
            println!("  QUESTION: {q}");
        }
        let data_arg = if out.parent() == Some(data) { String::new() } else { format!(" --data {}", data.display()) };
        println!("next:      marquee run --spec {}{data_arg}", out.display());
    }
    Ok(())
}

fn print_summary(summary: &RunSummary, objects: &DirObjectStore, elapsed: Duration) {
    println!(
        "\nrun {}  ({} rows ingested, {} quarantined, {:.1}s)\n",
        summary.run_id,
        summary.rows_ok,
        summary.rows_quarantined,
        elapsed.as_secs_f64()
    );
    let w = summary.results.iter().map(|r| r.metric.len()).chain([10]).max().unwrap_or(10);
    println!(
        "{:<10} {:<w$} {:>8} {:>10}  {:<10} {:<26} {:>7}",
        "use case", "metric", "value", "champion", "verdict", "deployed version", "scores"
    );
    for r in &summary.results {
        let verdict = match r.verdict {
            Verdict::Deploy => "deployed",
            Verdict::Reject => "rejected",
            Verdict::Unchanged => "unchanged",
            Verdict::Failed => "FAILED",
        };
        println!(
            "{:<10} {:<w$} {:>8.4} {:>10}  {:<10} {:<26} {:>7}",
            r.use_case.as_str(),
            r.metric,
            r.value,
            r.champion_value.map_or("-".to_string(), |v| format!("{v:.4}")),
            verdict,
            r.deployed_version.as_deref().unwrap_or("-"),
            r.scores_written
        );
        for reason in &r.reasons {
            println!("           - {reason}");
        }
        for shift in &r.drift {
            println!("           ! drift: {shift}");
        }
    }
    match &summary.promote {
        Some(PromoteLine::Done(p)) => {
            let what = match p.outcome {
                PromoteOutcome::Written => format!("titles to promote written for {} segments", p.segments),
                PromoteOutcome::Unchanged => format!("unchanged ({})", p.note),
                PromoteOutcome::Skipped => format!("skipped ({})", p.note),
            };
            println!("{:<10} {what}", "promote");
        }
        Some(PromoteLine::Failed { error, cause }) => println!("{:<10} FAILED: {error}: {cause}", "promote"),
        None => {}
    }
    println!("\nartifacts: {}", objects.uri(&keys::run_prefix(&summary.run_id)));
    let tries = suggestions(&summary.results);
    if !tries.is_empty() {
        println!("try:       {}", tries.join("  |  "));
    }
}

/// Query commands worth trying after a run: those with something to show, from the use cases
/// that have a champion now (deployed by this run or an earlier one).
fn suggestions(results: &[steps::UseCaseResult]) -> Vec<&'static str> {
    let serving = |uc: UseCase| {
        results.iter().any(|r| r.use_case == uc && (r.deployed_version.is_some() || r.champion_version.is_some()))
    };
    let mut out = Vec::new();
    if serving(UseCase::Segment) || serving(UseCase::Churn) || serving(UseCase::Recommend) {
        out.push("marquee show customer <id>");
    }
    if serving(UseCase::Recommend) || serving(UseCase::Sentiment) || serving(UseCase::Ads) {
        out.push("marquee show title <id>");
    }
    if serving(UseCase::Segment) {
        out.push("marquee segments");
    }
    if serving(UseCase::Churn) {
        out.push("marquee at-risk --top 20");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_error_names_its_cause_once_and_outer_context_is_kept() {
        let step = marquee_pipeline::Error::spec("ads", "nothing to run").in_step("r1", "ingest", None);
        let e = anyhow::Error::new(step).context("running the pipeline");
        assert_eq!(
            error_message(&e),
            "running the pipeline: run r1, step ingest: invalid pipeline spec: `ads`: nothing to run"
        );
    }

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn suggestions_follow_what_serves() {
        let line = |uc, deployed: Option<&str>| steps::UseCaseResult {
            deployed_version: deployed.map(str::to_string),
            ..steps::UseCaseResult::failed(uc, "train", "Marquee.StepFailed", "x")
        };
        assert_eq!(suggestions(&[line(UseCase::Sentiment, Some("r"))]), ["marquee show title <id>"]);
        assert_eq!(
            suggestions(&[line(UseCase::Churn, Some("r"))]),
            ["marquee show customer <id>", "marquee at-risk --top 20"]
        );
        assert!(suggestions(&[line(UseCase::Segment, None)]).is_empty(), "a failed use case with no champion");
    }
}
