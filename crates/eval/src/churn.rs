//! Churn over the protocol's folds (IBM Telco's stratified 5) or seeded stratified k-fold: the
//! spec's model (by default `auto`: logistic, trees or their blend, chosen per fold on a validation
//! split of the training rows) beside logistic regression and the trees alone, the other class
//! weight, the cutoff table per fold; plus k-means on the same table when the spec segments it.

use marquee_ml::logistic::ClassWeight;
use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::data::{self, Fold};
use super::{secs, segment, EntryBuilder, EvalOptions, Job, MetricRef, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::spec::{ChurnModelKind, Spec, UseCase};
use marquee_pipeline::usecase::common::Evaluation;
use marquee_pipeline::usecase::Details;
use marquee_pipeline::usecase::{self, Files, Tables};

const UC: UseCase = UseCase::Churn;
/// Cutoffs shown in the markdown table (the JSON has all of 0.05..0.95).
const SHOWN_CUTOFFS: [f64; 9] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

pub struct FoldRun {
    pub files: Files,
    pub evaluation: Evaluation,
    pub fit_seconds: f64,
}

pub fn run_split(spec: &Spec, tables: &Tables, fold: &Fold) -> Result<FoldRun> {
    let t = Instant::now();
    let files = usecase::of(UC).prepare_split(spec, tables, &fold.train, &fold.test)?;
    let model = usecase::of(UC).train(spec, &files, tables, "eval")?;
    let fit_seconds = secs(t);
    let evaluation = usecase::of(UC).evaluate(spec, &model, &files)?;
    Ok(FoldRun { files, evaluation, fit_seconds })
}

/// The job's folds: its fold file's (matched through the table's generated row id, else the row
/// position), or seeded stratified k-fold on the label.
pub fn folds(job: &Job, opts: &EvalOptions, tables: &Tables) -> Result<Vec<Fold>> {
    let spec = &job.spec;
    let c = spec.churn.as_ref().ok_or_else(|| Error::spec("churn", "the spec has no [churn] section"))?;
    let frame = tables.get(&c.table)?;
    match &job.fold_file {
        Some(path) => {
            let t = spec.table(&c.table)?;
            let row_of: Vec<usize> = match t.id.as_ref().filter(|_| t.generate_id) {
                Some(id) => frame
                    .col(id)?
                    .iter()
                    .map(|v| v.parse().map_err(|_| Error::Invalid(format!("row id `{v}` is not a number"))))
                    .collect::<Result<_>>()?,
                None => (0..frame.n_rows()).collect(),
            };
            let pf = data::protocol_frame(path)?;
            data::folds_from_assignment(&row_of, &data::assignment(&pf, "row", "fold")?, opts.folds)
        }
        None => {
            let labels: Vec<bool> = frame.col(&c.label)?.iter().map(|v| *v == c.positive).collect();
            Ok(data::stratified_kfold(&labels, job.folds(opts), opts.seed))
        }
    }
}
fn variant(spec: &Spec, w: ClassWeight, model: ChurnModelKind) -> Spec {
    let mut s = spec.clone();
    if let Some(c) = s.churn.as_mut() {
        c.class_weight = w;
        c.model = model;
    }
    s
}

fn weight_name(w: ClassWeight) -> &'static str {
    match w {
        ClassWeight::None => "none",
        ClassWeight::Balanced => "balanced",
    }
}

fn model_name(m: ChurnModelKind) -> &'static str {
    match m {
        ChurnModelKind::Logistic => "logistic",
        ChurnModelKind::Gbm => "gbm",
        ChurnModelKind::Blend => "blend",
        ChurnModelKind::Auto => "auto",
    }
}

/// The metric key of a variant's AUC in the task catalog: `auc` for the spec's own model and class
/// weight (where the target stands), `auc_<model>` for the other families (their anchors).
fn metric_key(first: bool, m: ChurnModelKind) -> String {
    if first {
        "auc".into()
    } else {
        format!("auc_{}", model_name(m))
    }
}

pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let spec = job.spec.clone();
    let c = spec.churn.clone().ok_or_else(|| Error::spec("churn", "the spec has no [churn] section"))?;
    let mut names = usecase::of(UC).needed_tables(&spec);
    names.extend(usecase::of(UseCase::Segment).needed_tables(&spec));
    let tables = data::load_tables(&spec, &job.tables_dir, &names, &c.table, opts.limit)?;
    let folds = folds(job, opts, &tables)?;
    let k = folds.len();
    let protocol = match job.fold_file {
        Some(_) => format!("stratified {k}-fold (protocol)"),
        None => format!("stratified {k}-fold (seed {})", opts.seed),
    };

    let mut entries = Vec::new();
    let mut md = String::new();
    let mut details = serde_json::Map::new();
    // The spec's own model and class weight first (the target stands there), then each single
    // family at that weight, then the spec's model at the other weight.
    let mut variants = vec![(c.class_weight, c.model)];
    for m in [ChurnModelKind::Logistic, ChurnModelKind::Gbm] {
        if m != c.model {
            variants.push((c.class_weight, m));
        }
    }
    variants.extend(
        [ClassWeight::None, ClassWeight::Balanced].into_iter().filter(|w| *w != c.class_weight).map(|w| (w, c.model)),
    );
    for (wi, &(w, m)) in variants.iter().enumerate() {
        let wspec = variant(&spec, w, m);
        let (mut auc, mut fit, mut tables_per_fold, mut chosen) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut picked, mut ece) = (Vec::new(), Vec::new());
        for (f, fold) in folds.iter().enumerate() {
            let run = run_split(&wspec, &tables, fold)?;
            let e = &run.evaluation;
            let Details::Churn(d) = &e.details else { unreachable!("a churn evaluation has churn details") };
            let family = d.model.map_or("logistic", |f| f.name());
            progress(&format!(
                "{} {} class_weight {}: fold {f}: AUC {:.4} ({family}), fit {:.3}s",
                job.name,
                model_name(m),
                weight_name(w),
                e.primary.value,
                run.fit_seconds
            ));
            auc.push(e.primary.value);
            fit.push(run.fit_seconds);
            picked.push(family);
            ece.push(d.calibration_error.unwrap_or(f64::NAN));
            tables_per_fold.push(d.cutoff_table.clone());
            chosen.push(serde_json::to_value(d.chosen_cutoff).expect("a cutoff row serialises"));
        }
        // The other class weight shows the anchor of its family without the target.
        let key = metric_key(wi == 0, m);
        let refs = match job.metric(&key) {
            Some(r) => Some(r.clone()),
            None if w != c.class_weight => job.metric("auc").map(|r| MetricRef { target: None, ..r.clone() }),
            None => None,
        };
        let mean_ece = ece.iter().sum::<f64>() / ece.len().max(1) as f64;
        let b = EntryBuilder::new(
            job,
            "churn",
            &format!("ROC AUC ({}, class_weight {})", model_name(m), weight_name(w)),
            &protocol,
            &auc,
            true,
        )
        .fit_seconds(&fit)
        .refs(refs.as_ref())
        .note(format!(
            "chosen per fold: {}; calibration error {mean_ece:.3}; l2 {}, {} numeric + {} categorical columns",
            picked.join(" "),
            c.l2,
            c.numeric.len(),
            c.categorical.len()
        ));
        entries.push(b.build());
        if wi == 0 {
            writeln!(
                md,
                "Cutoff table per fold ({}, class_weight {}): precision / recall of \"at risk\" = P(churn) >= cutoff.\n",
                model_name(m),
                weight_name(w)
            )
            .ok();
            write!(md, "| cutoff |").ok();
            for f in 0..k {
                write!(md, " fold {f} P / R |").ok();
            }
            writeln!(md, " mean P / R |\n|---|{}---|", "---|".repeat(k)).ok();
            for &cut in &SHOWN_CUTOFFS {
                write!(md, "| {cut:.2} |").ok();
                let (mut sp, mut sr) = (0.0, 0.0);
                for t in &tables_per_fold {
                    let row = t.iter().find(|r| (r.cutoff - cut).abs() < 1e-9);
                    let (p, r) = row.map_or((f64::NAN, f64::NAN), |r| (r.precision, r.recall));
                    sp += p;
                    sr += r;
                    write!(md, " {p:.3} / {r:.3} |").ok();
                }
                writeln!(md, " {:.3} / {:.3} |", sp / k as f64, sr / k as f64).ok();
            }
            writeln!(md, "\nDeployed cutoff per fold (best precision with recall >= {}):\n", c.criteria.min_recall)
                .ok();
            for (f, ch) in chosen.iter().enumerate() {
                let g = |key: &str| ch.get(key).and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
                writeln!(
                    md,
                    "- fold {f}: cutoff {:.2}, precision {:.3}, recall {:.3}",
                    g("cutoff"),
                    g("precision"),
                    g("recall")
                )
                .ok();
            }
        }
        details.insert(
            format!("{}_class_weight_{}", model_name(m), weight_name(w)),
            json!({ "auc": auc, "fit_seconds": fit, "model_per_fold": picked, "calibration_error": ece,
                    "cutoff_tables": tables_per_fold, "chosen_cutoffs": chosen }),
        );
    }

    if spec.segment.is_some() {
        let (seg_entries, seg_md, seg_details) = segment::sweep_all_rows(job, &tables, progress)?;
        entries.extend(seg_entries);
        writeln!(md, "\nk-means on the segment table's numerics (all rows, standardised):\n\n{seg_md}").ok();
        details.insert("segment".into(), seg_details);
    }
    Ok(TaskReport {
        task: job.name.clone(),
        entries,
        details: serde_json::Value::Object(details),
        markdown: md,
        seconds: 0.0,
    })
}
