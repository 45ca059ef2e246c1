//! `marquee churn cutoff`: the churn cutoff as a business lever. Picks the best cutoff of a run's
//! evaluation cutoff table under the operator's constraints and, with `--apply`, rescores the
//! deployed churn champion at it without retraining.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};

use marquee_pipeline::keys;
use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::{self, EvaluationRecord, Stores};
use marquee_pipeline::usecase::churn::CutoffRow;
use marquee_pipeline::usecase::Details;

use crate::hint;

#[derive(Subcommand)]
pub enum ChurnCmd {
    /// Choose the churn cutoff from the run's cutoff table; --apply redeploys scores at it
    ///
    /// Among the cutoffs meeting every constraint, picks the one with the best recall when
    /// --min-precision or --max-fpr is given, else the best precision (the pipeline's own rule
    /// for --min-recall). Ties go to the higher cutoff (fewer customers to contact).
    /// --cutoff takes one cutoff of the table as it is (the command the report's slider prints).
    ///
    /// Examples:
    ///   marquee churn cutoff --min-precision 0.6
    ///   marquee churn cutoff --run 20240101T000000Z-abc123 --min-recall 0.7 --max-fpr 0.2
    ///   marquee churn cutoff --min-precision 0.6 --apply
    ///   marquee churn cutoff --run 20240101T000000Z-abc123 --cutoff 0.35 --apply
    #[command(verbatim_doc_comment)]
    Cutoff(CutoffArgs),
}

#[derive(Args, Debug, Clone)]
pub struct CutoffArgs {
    /// Run whose evaluation cutoff table to use (default: the deployed churn champion's run).
    #[arg(long)]
    pub run: Option<String>,
    /// Keep only cutoffs whose precision (share of flagged customers who churn) is at least this.
    #[arg(long, value_parser = unit_interval)]
    pub min_precision: Option<f64>,
    /// Keep only cutoffs whose recall (share of churners flagged) is at least this.
    #[arg(long, value_parser = unit_interval)]
    pub min_recall: Option<f64>,
    /// Keep only cutoffs whose false positive rate (share of loyal customers flagged) is at most this.
    #[arg(long, value_parser = unit_interval)]
    pub max_fpr: Option<f64>,
    /// Take exactly this cutoff of the table (e.g. 0.35) instead of choosing under constraints.
    #[arg(long, value_parser = unit_interval, conflicts_with_all = ["min_precision", "min_recall", "max_fpr"])]
    pub cutoff: Option<f64>,
    /// Rescore the deployed churn scores at the chosen cutoff (RUN must be the deployed champion).
    #[arg(long)]
    pub apply: bool,
    /// Print the choice as JSON.
    #[arg(long)]
    pub json: bool,
}

fn unit_interval(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is not between 0 and 1"))
    }
}

/// One row of the evaluation's cutoff table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub cutoff: f64,
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
    pub precision: f64,
    pub recall: f64,
    pub false_positive_rate: f64,
    pub accuracy: f64,
}

impl From<&CutoffRow> for Row {
    fn from(r: &CutoffRow) -> Self {
        Self {
            cutoff: r.cutoff,
            tp: r.tp as u64,
            fp: r.fp as u64,
            tn: r.tn as u64,
            fn_: r.fn_ as u64,
            precision: r.precision,
            recall: r.recall,
            false_positive_rate: r.false_positive_rate,
            accuracy: r.accuracy,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Constraints {
    pub min_precision: Option<f64>,
    pub min_recall: Option<f64>,
    pub max_fpr: Option<f64>,
}

impl Constraints {
    pub fn holds(&self, r: &Row) -> bool {
        self.min_precision.iter().all(|&p| r.precision >= p)
            && self.min_recall.iter().all(|&p| r.recall >= p)
            && self.max_fpr.iter().all(|&p| r.false_positive_rate <= p)
    }

    /// What the pick maximises: recall when a precision or fpr bound is given, else precision.
    pub fn objective(&self) -> &'static str {
        if self.min_precision.is_some() || self.max_fpr.is_some() {
            "recall"
        } else {
            "precision"
        }
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.min_precision {
            parts.push(format!("precision >= {p}"));
        }
        if let Some(p) = self.min_recall {
            parts.push(format!("recall >= {p}"));
        }
        if let Some(p) = self.max_fpr {
            parts.push(format!("false positive rate <= {p}"));
        }
        format!("{}, best {}", parts.join(", "), self.objective())
    }
}

/// The best cutoff meeting `c`; ties go to the higher cutoff.
pub fn choose(rows: &[Row], c: &Constraints) -> Option<Row> {
    let key = |r: &Row| if c.objective() == "recall" { (r.recall, r.precision) } else { (r.precision, r.recall) };
    rows.iter()
        .filter(|r| c.holds(r))
        .max_by(|a, b| {
            let (ka, kb) = (key(a), key(b));
            ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(a.cutoff.total_cmp(&b.cutoff))
        })
        .copied()
}

/// The table's row at `cutoff`. Table cutoffs are computed (`7.0 * 0.05` is not `0.35`), so a
/// typed value matches within a tolerance far below the table's step.
pub fn exact(rows: &[Row], cutoff: f64) -> Option<Row> {
    rows.iter().find(|r| (r.cutoff - cutoff).abs() < 1e-6).copied()
}

/// The table's cutoffs as `0.05, 0.10, ...`, for hints.
fn list_cutoffs(rows: &[Row]) -> String {
    rows.iter().map(|r| format!("{:.2}", r.cutoff)).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Serialize)]
struct Choice<'a> {
    run_id: &'a str,
    rule: String,
    chosen: Row,
    current_cutoff: Option<f64>,
    applied: bool,
    customers_rescored: Option<usize>,
    at_risk: Option<usize>,
}

pub async fn cutoff(stores: Stores<'_>, args: CutoffArgs, quiet: bool) -> Result<()> {
    let c = Constraints { min_precision: args.min_precision, min_recall: args.min_recall, max_fpr: args.max_fpr };
    if c == Constraints::default() && args.cutoff.is_none() {
        return Err(hint::unmet("no constraint given", "pass at least one of --min-precision, --min-recall, --max-fpr (or an exact --cutoff), e.g. `marquee churn cutoff --min-precision 0.6`"));
    }
    let champion = steps::read_champion(stores, "-", UseCase::Churn).await?;
    let run_id =
        match (&args.run, &champion) {
            (Some(r), _) => r.clone(),
            (None, Some(ch)) => ch.run_id.clone(),
            (None, None) => return Err(hint::not_found(
                "no churn model is deployed, and no --run given",
                "pass --run RUN (run ids are folders under WORKDIR/store/runs/), or run the pipeline: `marquee run`",
            )),
        };
    let key = keys::run_model(&run_id, UseCase::Churn, "evaluation.json");
    let bytes = stores.objects.get_opt(&key).await?.ok_or_else(|| {
        hint::not_found(
            format!("run `{run_id}` has no churn evaluation ({})", stores.objects.uri(&key)),
            "check the run id: `ls WORKDIR/store/runs/`, or omit --run to use the deployed champion's run",
        )
    })?;
    let rec: EvaluationRecord =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", stores.objects.uri(&key)))?;
    let Details::Churn(details) = &rec.challenger.details else {
        anyhow::bail!("{} is not a churn evaluation", stores.objects.uri(&key));
    };
    let rows: Vec<Row> = details.cutoff_table.iter().map(Row::from).collect();
    let is_champion = champion.as_ref().is_some_and(|ch| ch.run_id == run_id);
    let current = match (&champion, is_champion) {
        (Some(ch), true) => marquee_report::deployed_churn_cutoff(stores.objects, &ch.version, &rec).await?,
        _ => None,
    };
    let (rule, chosen) = match args.cutoff {
        Some(v) => (format!("cutoff {v} as given"), exact(&rows, v)),
        None => (c.describe(), choose(&rows, &c)),
    };
    if let (Some(v), None) = (args.cutoff, chosen) {
        return Err(hint::unmet(
            format!("run {run_id} has no cutoff {v} in its cutoff table"),
            format!("pass one of the table's cutoffs: {}", list_cutoffs(&rows)),
        ));
    }
    let Some(chosen) = chosen else {
        let best_p = rows.iter().map(|r| r.precision).fold(0.0, f64::max);
        let best_r = rows.iter().map(|r| r.recall).fold(0.0, f64::max);
        return Err(hint::unmet(
            format!("no cutoff of run {run_id} meets {rule}"),
            format!("relax a constraint (the table reaches precision up to {best_p:.3} and recall up to {best_r:.3}); `marquee report {run_id}` shows the whole cutoff table"),
        ));
    };

    let mut choice = Choice {
        run_id: &run_id,
        rule: rule.clone(),
        chosen,
        current_cutoff: current,
        applied: false,
        customers_rescored: None,
        at_risk: None,
    };
    if args.apply {
        if !is_champion {
            return Err(hint::failed(
                format!(
                    "run {run_id} is not the deployed churn champion{}: its scores are not the ones applications read",
                    champion.as_ref().map(|ch| format!(" (the champion is run {})", ch.run_id)).unwrap_or_default()
                ),
                "omit --run to move the champion's cutoff, or deploy this run's model first",
            ));
        }
        let change = steps::redeploy_churn_cutoff(stores, &run_id, chosen.cutoff, &rule).await?;
        choice.applied = true;
        choice.customers_rescored = Some(change.customers_rescored);
        choice.at_risk = Some(change.at_risk);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&choice)?);
        return Ok(());
    }
    if quiet {
        return Ok(());
    }
    let r = chosen;
    println!("run {run_id}: {rule}");
    println!(
        "chosen cutoff {:.2}{}",
        r.cutoff,
        current.map(|c| format!("   (deployed now: {c:.2})")).unwrap_or_default()
    );
    println!(
        "  precision {:.3}   recall {:.3}   false positive rate {:.3}   accuracy {:.3}",
        r.precision, r.recall, r.false_positive_rate, r.accuracy
    );
    println!("  confusion on the test split ({} customers):", r.tp + r.fp + r.tn + r.fn_);
    println!("                     churned   stayed");
    println!("    flagged at risk  {:>7}  {:>7}", r.tp, r.fp);
    println!("    not flagged      {:>7}  {:>7}", r.fn_, r.tn);
    match (args.apply, choice.customers_rescored) {
        (true, Some(n)) => println!(
            "applied: {n} customers rescored at cutoff {:.2}, {} now at risk (no retraining)",
            r.cutoff,
            choice.at_risk.unwrap_or(0)
        ),
        _ if is_champion => println!("dry run: add --apply to redeploy the churn scores at cutoff {:.2}", r.cutoff),
        _ => println!("(run {run_id} is not the deployed churn champion: --apply is not available for it)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cutoff: f64, precision: f64, recall: f64, fpr: f64) -> Row {
        Row { cutoff, tp: 0, fp: 0, tn: 0, fn_: 0, precision, recall, false_positive_rate: fpr, accuracy: 0.0 }
    }

    #[test]
    fn picks_best_recall_under_precision_and_best_precision_under_recall() {
        let t =
            [row(0.1, 0.3, 0.95, 0.6), row(0.3, 0.55, 0.7, 0.3), row(0.5, 0.65, 0.55, 0.15), row(0.7, 0.9, 0.2, 0.02)];
        let p = |min_precision| {
            choose(&t, &Constraints { min_precision: Some(min_precision), ..Default::default() }).map(|r| r.cutoff)
        };
        assert_eq!(p(0.6), Some(0.5));
        assert_eq!(p(0.5), Some(0.3));
        assert_eq!(p(0.95), None);
        let r = choose(&t, &Constraints { min_recall: Some(0.6), ..Default::default() }).unwrap();
        assert_eq!(r.cutoff, 0.3);
        let f = choose(&t, &Constraints { max_fpr: Some(0.2), ..Default::default() }).unwrap();
        assert_eq!(f.cutoff, 0.5);
        let both = choose(&t, &Constraints { min_recall: Some(0.5), max_fpr: Some(0.1), ..Default::default() });
        assert!(both.is_none());
    }

    #[test]
    fn exact_matches_computed_cutoffs_only() {
        let t: Vec<Row> = (1..=19).map(|i| row(i as f64 * 0.05, 0.5, 0.5, 0.1)).collect();
        assert_eq!(exact(&t, 0.35).map(|r| r.cutoff), Some(7.0 * 0.05));
        assert_eq!(exact(&t, 0.95).map(|r| r.cutoff), Some(19.0 * 0.05));
        assert!(exact(&t, 0.33).is_none());
        assert!(exact(&t, 0.0).is_none());
        assert_eq!(list_cutoffs(&t[..3]), "0.05, 0.10, 0.15");
    }

    #[test]
    fn ties_go_to_the_higher_cutoff() {
        let t = [row(0.2, 0.7, 0.6, 0.1), row(0.25, 0.7, 0.6, 0.1)];
        assert_eq!(choose(&t, &Constraints { min_precision: Some(0.6), ..Default::default() }).unwrap().cutoff, 0.25);
    }
}
