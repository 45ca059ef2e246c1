//! What to evaluate: the named public tasks of `specs/eval-tasks.toml` (spec, protocol files,
//! anchors and targets as data) and the jobs `marquee eval --spec` makes of a user's own spec
//! (one per use case, seeded folds, the spec's own criteria as targets).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Anchor, EvalOptions, Target};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::spec::{Spec, UseCase};

pub const CATALOG_FILE: &str = "eval-tasks.toml";
const CATALOG: &str = include_str!("../../../specs/eval-tasks.toml");

/// The specs the catalog names, embedded so the binary runs without the source tree.
const EMBEDDED_SPECS: [(&str, &str); 6] = [
    ("movielens100k.toml", include_str!("../../../specs/movielens100k.toml")),
    ("telco.toml", include_str!("../../../specs/telco.toml")),
    ("rt_polarity.toml", include_str!("../../../specs/rt_polarity.toml")),
    ("imdb.toml", include_str!("../../../specs/imdb.toml")),
    ("cdnow.toml", include_str!("../../../specs/cdnow.toml")),
    ("open_bandit.toml", include_str!("../../../specs/open_bandit.toml")),
];

/// Which use case's protocol a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// ALS RMSE over folds (rank x lambda tuned inside each training fold), ranking on a holdout.
    Recommend,
    /// Logistic regression AUC over folds, class weights, cutoff tables; k-means if the spec has it.
    Churn,
    /// Sentiment accuracy over stratified folds, the neutral band.
    Sentiment,
    /// k-means SSE per k on all rows, silhouette, rule-based baseline.
    Segment,
    /// Trend direction of planted rising / falling / flat entities over held-out texts.
    Trend,
    /// Ad placement: engagement AUC over stratified folds, the learned policy's value by IPS,
    /// SNIPS and doubly robust estimators (cross-fitted) beside the logged policy's.
    Bandit,
}

/// A peer figure and a target for one metric of a task.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRef {
    pub anchor: Option<Anchor>,
    pub target: Option<Target>,
}

/// One entry of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTask {
    pub name: String,
    pub about: String,
    pub runner: Runner,
    pub spec: String,
    pub folds: Option<usize>,
    pub fold_file: Option<String>,
    pub holdout_file: Option<String>,
    /// bandit only: a second impressions table of the spec, logged by another policy, whose
    /// on-policy value the learned policy is set beside and from which the first log's policy
    /// is estimated off-policy (where its own log gives the truth).
    pub other_log: Option<String>,
    #[serde(default)]
    pub showcase: Vec<String>,
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricRef>,
}

/// `specs/eval-tasks.toml`, or the copy in `--specs DIR`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "task")]
    pub tasks: Vec<NamedTask>,
}

impl Catalog {
    /// The catalog in `spec_dir` if it has one, else the embedded copy; checked.
    pub fn load(spec_dir: Option<&Path>) -> Result<Catalog> {
        let (text, origin) = match spec_dir.map(|d| d.join(CATALOG_FILE)).filter(|p| p.is_file()) {
            Some(path) => (read(&path)?, path.display().to_string()),
            None => (CATALOG.to_string(), format!("specs/{CATALOG_FILE}")),
        };
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Catalog> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| Error::Invalid(format!("{origin}: {e}")))?;
        let mut seen = std::collections::HashSet::new();
        for t in &catalog.tasks {
            let bad = |why: String| Error::Invalid(format!("{origin}: task `{}`: {why}", t.name));
            if t.name.is_empty() || t.name == "all" || !seen.insert(t.name.as_str()) {
                return Err(bad("names must be unique, non-empty and not `all`".into()));
            }
            if t.other_log.is_some() && t.runner != Runner::Bandit {
                return Err(bad("other_log is read by the bandit runner only".into()));
            }
            if t.folds.is_some_and(|k| k < 2) {
                return Err(bad("folds must be at least 2".into()));
            }
            for (key, m) in &t.metrics {
                if let Some(target) = &m.target {
                    if target.op != "<=" && target.op != ">=" {
                        return Err(bad(format!(
                            "metrics.{key}.target.op must be \"<=\" or \">=\", not `{}`",
                            target.op
                        )));
                    }
                }
            }
        }
        Ok(catalog)
    }

    pub fn names(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.name.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Result<&NamedTask> {
        self.tasks.iter().find(|t| t.name == name).ok_or_else(|| {
            Error::Invalid(format!("unknown eval task `{name}` (expected one of {} or all)", self.names().join(", ")))
        })
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Invalid(format!("reading {}: {e}", path.display())))
}

/// One evaluation to run: a spec, where its table files are, how to split, what to compare with.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub runner: Runner,
    pub spec: Spec,
    /// Folder holding the spec's table files.
    pub tables_dir: PathBuf,
    pub fold_file: Option<PathBuf>,
    pub holdout_file: Option<PathBuf>,
    /// A second impressions table (bandit; see [`NamedTask::other_log`]).
    pub other_log: Option<String>,
    /// k of the seeded k-fold when there is no fold file.
    pub default_folds: usize,
    pub showcase: Vec<String>,
    pub metrics: BTreeMap<String, MetricRef>,
    /// A named public task (its anchors need the whole dataset) rather than the user's own spec.
    pub public: bool,
}

impl Job {
    /// The named task `name` of the catalog over the datasets in `opts.data_dir`.
    pub fn named(name: &str, opts: &EvalOptions) -> Result<Job> {
        Self::of_task(Catalog::load(opts.spec_dir.as_deref())?.get(name)?, opts)
    }

    /// A catalog entry over the datasets in `opts.data_dir` (the catalog read once by the caller).
    pub fn of_task(t: &NamedTask, opts: &EvalOptions) -> Result<Job> {
        let spec = named_spec(&t.spec, opts.spec_dir.as_deref())?;
        let protocol = |f: &Option<String>| f.as_ref().map(|f| opts.data_dir.join("protocol").join(f));
        Ok(Job {
            name: t.name.clone(),
            runner: t.runner,
            tables_dir: opts.data_dir.join(&spec.pipeline.dataset),
            spec,
            fold_file: protocol(&t.fold_file),
            holdout_file: protocol(&t.holdout_file),
            other_log: t.other_log.clone(),
            default_folds: t.folds.unwrap_or(5),
            showcase: t.showcase.clone(),
            metrics: t.metrics.clone(),
            public: true,
        })
    }

    /// One job per use case of a user's spec, reading its tables from `data_dir` (as `marquee
    /// run --spec S --data DIR` does), seeded k-fold, the spec's technical criteria as targets.
    pub fn from_spec(spec: &Spec, data_dir: &Path) -> Vec<Job> {
        let name = |uc: &str| format!("{}-{uc}", spec.pipeline.dataset);
        let mut jobs = Vec::new();
        let mut push = |uc: &str, runner: Runner, metrics: Vec<(&str, Option<Target>)>| {
            jobs.push(Job {
                name: name(uc),
                runner,
                spec: spec.clone(),
                tables_dir: data_dir.to_path_buf(),
                fold_file: None,
                holdout_file: None,
                other_log: None,
                default_folds: 5,
                showcase: Vec::new(),
                metrics: metrics
                    .into_iter()
                    .map(|(k, target)| (k.to_string(), MetricRef { anchor: None, target }))
                    .collect(),
                public: false,
            })
        };
        if let Some(r) = &spec.recommend {
            push(UseCase::Recommend.as_str(), Runner::Recommend, vec![("rmse", Target::at_most(r.criteria.max_rmse))]);
        }
        if let Some(c) = &spec.churn {
            push(UseCase::Churn.as_str(), Runner::Churn, vec![("auc", Target::at_least(c.criteria.min_auc))]);
        }
        if let Some(s) = &spec.sentiment {
            push(
                UseCase::Sentiment.as_str(),
                Runner::Sentiment,
                vec![("accuracy", Target::at_least(s.criteria.min_accuracy))],
            );
        }
        if let Some(a) = &spec.ads {
            push("ads", Runner::Bandit, vec![("auc", Target::at_least(a.criteria.min_auc))]);
        }
        // Under a churn job the segment sweep runs already (the churn runner adds it).
        if spec.segment.is_some() && spec.churn.is_none() {
            push(UseCase::Segment.as_str(), Runner::Segment, Vec::new());
        }
        jobs
    }

    pub fn metric(&self, key: &str) -> Option<&MetricRef> {
        self.metrics.get(key)
    }

    /// Folds to run: `--folds` or the job's default.
    pub fn folds(&self, opts: &EvalOptions) -> usize {
        opts.folds.unwrap_or(self.default_folds)
    }
}

/// A catalog spec: from `spec_dir` when given, else the copy built into the binary.
pub fn named_spec(file: &str, spec_dir: Option<&Path>) -> Result<Spec> {
    match spec_dir {
        Some(dir) => {
            let path = dir.join(file);
            Spec::from_toml(&read(&path)?, &path.display().to_string())
        }
        None => {
            let text = EMBEDDED_SPECS.iter().find(|(f, _)| *f == file).map(|(_, t)| *t).ok_or_else(|| {
                Error::Invalid(format!(
                    "spec `{file}` is not built into this binary; pass --specs DIR with the folder that holds it"
                ))
            })?;
            Spec::from_toml(text, &format!("specs/{file}"))
        }
    }
}
