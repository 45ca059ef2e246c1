//! Churn: the model family and its validation, ROC, the cutoff curves, slider and table (the
//! business lever), the churn drivers, calibration.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::usecase::churn::{ChurnDetails, CutoffRow, Family};

use super::cutoff_slider;
use crate::charts;
use crate::html::{chart, esc, pct};
use crate::UseCaseReport;

pub const TITLE: &str = "Churn — who is at risk of cancelling?";

pub fn render(h: &mut String, u: &UseCaseReport, d: &ChurnDetails, cli_options: &str) {
    let auc = u.record.challenger.primary.value;
    let rows = &d.cutoff_table;
    let chosen = d.chosen_cutoff.map(|c| c.cutoff).filter(|c| c.is_finite());
    let (marked, label) = match (u.deployed_cutoff, chosen) {
        (Some(c), _) => (Some(c), format!("deployed cutoff {c:.2}")),
        (None, Some(c)) => (Some(c), format!("chosen cutoff {c:.2} (not deployed)")),
        _ => (None, String::new()),
    };
    let marked_row = marked.and_then(|c| rows.iter().find(|r| (r.cutoff - c).abs() < 1e-9));
    let roc: Vec<(f64, f64)> =
        d.roc.iter().map(|p| (p.fpr, p.tpr)).filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
    let _ = write!(
        h,
        "<p>Test split: {} customers, {} churned. The cutoff is the business lever: customers with a churn probability at or above it are flagged at risk. Move it with <code>marquee churn cutoff --run {} --min-precision 0.6 --apply</code>.</p>\n",
        d.test_rows,
        pct(d.positive_rate),
        esc(&u.record.run_id)
    );
    model_choice(h, d);
    h.push_str("<div class=\"grid\">");
    chart(h, charts::roc(&roc, auc, marked_row.map(|r| (r.false_positive_rate, r.recall, label.clone()))));
    let curve: Vec<_> =
        rows.iter().map(|r| (r.cutoff, r.precision, r.recall, r.false_positive_rate, r.accuracy)).collect();
    chart(h, charts::cutoff_curves(&curve, marked.map(|c| (c, label.clone()))));
    h.push_str("</div>\n");
    // The script prints cutoffs with toFixed, which a null (non-finite) cutoff would break.
    if rows.iter().all(|r| r.cutoff.is_finite()) {
        let command = cutoff_slider::Command { run_id: &u.record.run_id, cli_options, apply: u.is_champion() };
        cutoff_slider::render(h, &command, rows, slider_start(rows, marked));
    }

    h.push_str("<div class=\"grid\"><div><h3>Cutoff table (test split)</h3>\n<table><tr><th class=\"n\">cutoff</th><th class=\"n\">at risk</th><th class=\"n\">TP</th><th class=\"n\">FP</th><th class=\"n\">TN</th><th class=\"n\">FN</th><th class=\"n\">precision</th><th class=\"n\">recall</th><th class=\"n\">false positive rate</th><th class=\"n\">accuracy</th><th></th></tr>\n");
    for (i, r) in rows.iter().enumerate() {
        let c = r.cutoff;
        let is = marked.is_some_and(|m| (m - c).abs() < 1e-9);
        let _ = write!(
            h,
            "<tr data-cutoff-row=\"{i}\"{}><td class=\"n\">{c:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
            if is { " class=\"marked\"" } else { "" },
            r.tp + r.fp,
            r.tp,
            r.fp,
            r.tn,
            r.fn_,
            pct(r.precision),
            pct(r.recall),
            pct(r.false_positive_rate),
            pct(r.accuracy),
            if !is { "" } else if u.deployed_cutoff.is_some() { "◀ deployed" } else { "◀ chosen" }
        );
    }
    h.push_str("</table></div>\n");
    if d.drivers.is_empty() {
        coefficients(h, d);
    } else {
        drivers(h, d);
    }
    h.push_str("</div>\n");
    if let (false, Some(ece)) = (d.reliability.is_empty(), d.calibration_error) {
        let points: Vec<(f64, f64, usize)> = d.reliability.iter().map(|b| (b.predicted, b.observed, b.rows)).collect();
        h.push_str("<div class=\"grid\">");
        chart(h, charts::reliability(&points, ece));
        h.push_str("<div><h3>Calibration</h3><p class=\"note\">Probabilities are Platt-scaled on out-of-fold margins of the training rows, so a cutoff of 0.30 flags customers with about a 30% chance of churning. Each point is a tenth of the probability range on the test split (its size grows with the customers in it).</p></div></div>\n");
    }
}

/// Which family scores, and every family's out-of-fold AUC on the training rows.
fn model_choice(h: &mut String, d: &ChurnDetails) {
    let Some(family) = d.model else { return };
    let _ = write!(h, "<p>Model: <b>{}</b>", family_label(family));
    if d.candidates.len() > 1 {
        h.push_str(", chosen by out-of-fold AUC on 5 inner folds of the training rows (never the test split):</p>\n<table><tr><th>family</th><th class=\"n\">out-of-fold AUC</th><th></th></tr>\n");
        for k in &d.candidates {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{:.4}</td><td>{}</td></tr>\n",
                family_label(k.family),
                k.validation_auc,
                if k.family == family { "◀ chosen" } else { "" }
            );
        }
        h.push_str("</table>\n");
    } else {
        h.push_str(" (set by <code>churn.model</code>).</p>\n");
    }
}

fn family_label(f: Family) -> &'static str {
    match f {
        Family::Logistic => "logistic regression",
        Family::Gbm => "gradient-boosted trees",
        Family::Blend => "blend of logistic regression and trees",
    }
}

/// Mean absolute contribution to the log-odds per input column on the test split.
fn drivers(h: &mut String, d: &ChurnDetails) {
    h.push_str("<div><h3>Churn drivers</h3><p class=\"note\">Mean absolute contribution to each test customer's churn log-odds, measured from the average customer (exact: SHAP values for the trees, weight × deviation from the training mean for logistic regression). <code>marquee show customer ID</code> lists one customer's own top drivers.</p><table><tr><th>input</th><th class=\"n\">mean |contribution|</th></tr>\n");
    for v in &d.drivers {
        let _ =
            write!(h, "<tr><td class=\"mono\">{}</td><td class=\"n\">{:.3}</td></tr>\n", esc(&v.feature), v.mean_abs);
    }
    h.push_str("</table></div>");
}

/// Evaluations written before contributions: the logistic weights.
fn coefficients(h: &mut String, d: &ChurnDetails) {
    h.push_str("<div><h3>Churn drivers</h3><p class=\"note\">Logistic weights on standardised features.</p><table><tr><th>feature</th><th class=\"n\">weight</th><th>effect</th></tr>\n");
    for (name, w) in &d.top_coefficients {
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{:+.3}</td><td>{}</td></tr>\n",
            esc(name),
            w,
            if *w > 0.0 { "<span class=\"down\">raises risk</span>" } else { "<span class=\"up\">lowers risk</span>" }
        );
    }
    h.push_str("</table></div>");
}

/// Where the slider starts: the deployed (or chosen) cutoff, else the cutoff nearest 0.5.
fn slider_start(rows: &[CutoffRow], marked: Option<f64>) -> usize {
    let target = marked.unwrap_or(0.5);
    rows.iter()
        .enumerate()
        .min_by(|a, b| (a.1.cutoff - target).abs().total_cmp(&(b.1.cutoff - target).abs()))
        .map_or(0, |(i, _)| i)
}
