//! HTML of the report: one file, inline CSS and SVG, no scripts.
// Each write! emits one line of HTML; the trailing newline keeps the page source readable.
#![allow(clippy::write_with_newline)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

use marquee_pipeline::spec::UseCase;
use marquee_pipeline::steps::Verdict;

use crate::charts;
use crate::{direction_arrow, Ranked, ReportData, UseCaseReport, TREND_ENTITIES};

pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Two decimals (one above 100): for tables of means.
fn num2(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "–".into()
    }
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn verdict_badge(v: Verdict, is_champion: bool) -> String {
    let (class, text) = match v {
        Verdict::Deploy if is_champion => ("deploy", "DEPLOYED"),
        Verdict::Deploy => ("deploy", "PASSED (since replaced)"),
        Verdict::Reject => ("reject", "REJECTED"),
        Verdict::Unchanged => ("unchanged", "UNCHANGED"),
    };
    format!("<span class=\"badge {class}\">{text}</span>")
}

fn title_of(uc: UseCase) -> &'static str {
    match uc {
        UseCase::Segment => "Segmentation — who are my customers?",
        UseCase::Churn => "Churn — who is at risk of cancelling?",
        UseCase::Recommend => "Recommendations — what to put at the top of each watchlist?",
        UseCase::Sentiment => "Sentiment — what do people say, and where is it heading?",
    }
}

const CSS: &str = r#"
:root { --fg:#1d2330; --muted:#5b6577; --line:#dde2ea; --bg:#f6f8fb; --ok:#1e7b34; --bad:#b42318; --warn:#9a6700; --accent:#1f77b4; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Helvetica, Arial, sans-serif; color:var(--fg); background:var(--bg); }
header { background:#14213d; color:#fff; padding:18px 32px 12px; }
header h1 { margin:0 0 4px; font-size:22px; }
header .sub { color:#c9d3e6; font-size:13px; }
nav { margin-top:10px; }
nav a { color:#fff; margin-right:16px; text-decoration:none; border-bottom:1px dotted #9fb3d9; font-size:13px; }
main { padding:8px 32px 40px; max-width:1400px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 22px 20px; margin:18px 0; }
h2 { font-size:19px; margin:0 0 8px; }
h3 { font-size:15px; margin:18px 0 6px; color:#24324d; }
p.note, .note { color:var(--muted); font-size:12.5px; margin:4px 0; }
table { border-collapse:collapse; margin:6px 0 10px; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:4px 9px; text-align:left; vertical-align:top; }
th { background:#eef2f8; font-weight:600; }
td.n, th.n { text-align:right; font-variant-numeric: tabular-nums; }
tr.marked td { background:#fff3c4; font-weight:600; }
.badge { display:inline-block; padding:2px 9px; border-radius:10px; font-size:12px; font-weight:700; letter-spacing:.3px; color:#fff; vertical-align:middle; }
.badge.deploy { background:var(--ok); } .badge.reject { background:var(--bad); } .badge.unchanged { background:#6b7280; }
.pass { color:var(--ok); font-weight:700; } .fail { color:var(--bad); font-weight:700; }
.grid { display:flex; flex-wrap:wrap; gap:18px; align-items:flex-start; }
.grid > div { min-width:0; }
.chart svg { display:block; border:1px solid var(--line); border-radius:6px; background:#fff; }
.reasons { margin:6px 0; padding-left:20px; } .reasons li { color:var(--bad); }
.kpis { display:flex; gap:12px; flex-wrap:wrap; margin:8px 0; }
.kpi { border:1px solid var(--line); border-radius:6px; padding:6px 12px; min-width:120px; background:#fbfcfe; }
.kpi .v { font-size:18px; font-weight:700; } .kpi .l { color:var(--muted); font-size:12px; }
.up { color:var(--ok); font-weight:700; } .down { color:var(--bad); font-weight:700; } .flat { color:var(--muted); font-weight:700; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12px; }
td.raw { max-width:420px; overflow-wrap:anywhere; }
ol.recs { margin:0; padding-left:20px; }
"#;

/// The whole report.
pub fn render(d: &ReportData) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>marquee report — run {run}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header><h1>marquee evaluation report</h1><div class=\"sub\">run <b class=\"mono\">{run}</b>{dataset} · generated {at}</div><nav><a href=\"#overview\">Overview</a>",
        run = esc(&d.run_id),
        dataset = d.manifest.as_ref().map(|m| format!(" · dataset <b>{}</b>", esc(&m.dataset))).unwrap_or_default(),
        at = esc(&d.generated_at)
    );
    for u in &d.use_cases {
        let _ = write!(h, "<a href=\"#{0}\">{0}</a>", u.use_case);
    }
    h.push_str("<a href=\"#data\">Data understanding</a></nav></header>\n<main>\n");
    overview(&mut h, d);
    for u in &d.use_cases {
        let _ = write!(
            h,
            "<section id=\"{}\">\n<h2>{} {}</h2>\n",
            u.use_case,
            esc(title_of(u.use_case)),
            verdict_badge(u.record.verdict, u.is_champion())
        );
        decision(&mut h, u);
        match u.use_case {
            UseCase::Churn => churn(&mut h, u),
            UseCase::Segment => segment(&mut h, u),
            UseCase::Recommend => recommend(&mut h, u, d),
            UseCase::Sentiment => sentiment(&mut h, u, d),
        }
        h.push_str("</section>\n");
    }
    data_understanding(&mut h, d);
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

fn overview(h: &mut String, d: &ReportData) {
    h.push_str("<section id=\"overview\">\n<h2>Overview</h2>\n");
    if let Some(s) = &d.summary {
        let _ = write!(h, "<p>{} rows ingested, {} quarantined. A model is deployed only when its technical metric, the business criteria of the spec and the comparison with the current champion all hold.</p>\n", s.rows_ok, s.rows_quarantined);
    } else {
        h.push_str(
            "<p class=\"note\">This run did not finish (no summary.json): only data understanding is shown.</p>\n",
        );
    }
    h.push_str("<table><tr><th>use case</th><th>metric</th><th class=\"n\">value</th><th>champion before</th><th class=\"n\">champion value</th><th>verdict</th><th>champion now</th></tr>\n");
    for u in &d.use_cases {
        let r = &u.record;
        let _ = write!(
            h,
            "<tr><td><a href=\"#{uc}\">{uc}</a></td><td>{m}</td><td class=\"n\">{v}</td><td class=\"mono\">{cv}</td><td class=\"n\">{cval}</td><td>{b}</td><td class=\"mono\">{now}</td></tr>\n",
            uc = u.use_case,
            m = esc(&r.challenger.primary.name),
            v = num(r.challenger.primary.value),
            cv = r.champion.as_ref().map_or("–".into(), |c| esc(&c.version)),
            cval = r.champion.as_ref().and_then(|c| c.value).map_or("–".into(), num),
            b = verdict_badge(r.verdict, u.is_champion()),
            now = u.champion.as_ref().map_or("none".into(), |c| esc(&c.version)),
        );
    }
    h.push_str("</table>\n</section>\n");
}

/// Verdict, why, each criterion, champion vs challenger.
fn decision(h: &mut String, u: &UseCaseReport) {
    let r = &u.record;
    let p = &r.challenger.primary;
    let _ = write!(
        h,
        "<div class=\"kpis\"><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">{} (challenger, {})</div></div>",
        num(p.value),
        esc(&p.name),
        if p.higher_is_better { "higher is better" } else { "lower is better" }
    );
    if let Some(c) = &r.champion {
        let _ = write!(
            h,
            "<div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">{} of champion {}</div></div>",
            c.value.map_or("–".into(), num),
            esc(&p.name),
            esc(&c.version)
        );
    }
    h.push_str("</div>\n");
    match r.verdict {
        Verdict::Deploy => h.push_str("<p><b>Why:</b> every criterion below holds, so the model was deployed and its scores written to the score store.</p>\n"),
        Verdict::Unchanged => h.push_str("<p><b>Why:</b> same data and parameters as the champion: nothing new to deploy.</p>\n"),
        Verdict::Reject => h.push_str("<p><b>Why not deployed:</b></p>\n"),
    }
    if !r.reasons.is_empty() {
        h.push_str("<ul class=\"reasons\">");
        for reason in &r.reasons {
            let _ = write!(h, "<li>{}</li>", esc(reason));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(
        "<table><tr><th>kind</th><th>criterion</th><th class=\"n\">value</th><th>needs</th><th>result</th></tr>\n",
    );
    for c in &r.challenger.criteria {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"mono\">{} {}</td><td>{}</td></tr>\n",
            esc(&c.kind),
            esc(&c.name),
            num(c.value),
            esc(&c.op),
            num(c.threshold),
            if c.passed { "<span class=\"pass\">✓ pass</span>" } else { "<span class=\"fail\">✗ fail</span>" }
        );
    }
    h.push_str("</table>\n");
    match &r.champion {
        Some(c) => {
            let _ = write!(
                h,
                "<p class=\"note\">Champion vs challenger: champion <span class=\"mono\">{}</span> {} = {} ({}); challenger <span class=\"mono\">{}</span> = {}.</p>\n",
                esc(&c.version),
                esc(&p.name),
                c.value.map_or("–".into(), num),
                esc(&c.note),
                esc(&r.version),
                num(p.value)
            );
        }
        None => h.push_str(
            "<p class=\"note\">No champion before this run: the challenger only had to meet the criteria.</p>\n",
        ),
    }
    match &u.champion {
        Some(c) if c.run_id == r.run_id => {}
        Some(c) => {
            let _ = write!(
                h,
                "<p class=\"note\">The deployed champion now is <span class=\"mono\">{}</span> (run {}).</p>\n",
                esc(&c.version),
                esc(&c.run_id)
            );
        }
        None => h.push_str("<p class=\"note\">No model of this use case is deployed.</p>\n"),
    }
}

fn chart(h: &mut String, svg: String) {
    let _ = write!(h, "<div class=\"chart\">{svg}</div>\n");
}

fn churn(h: &mut String, u: &UseCaseReport) {
    let d = &u.record.challenger.details;
    let auc = u.record.challenger.primary.value;
    let rows: Vec<&Value> =
        d.get("cutoff_table").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let chosen = d.get("chosen_cutoff").map(|c| f(c, "cutoff")).filter(|c| c.is_finite());
    let (marked, label) = match (u.deployed_cutoff, chosen) {
        (Some(c), _) => (Some(c), format!("deployed cutoff {c:.2}")),
        (None, Some(c)) => (Some(c), format!("chosen cutoff {c:.2} (not deployed)")),
        _ => (None, String::new()),
    };
    let marked_row = marked.and_then(|c| rows.iter().find(|r| (f(r, "cutoff") - c).abs() < 1e-9));
    let roc: Vec<(f64, f64)> = d
        .get("roc")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| (f(p, "fpr"), f(p, "tpr")))
        .filter(|p| p.0.is_finite() && p.1.is_finite())
        .collect();
    let _ = write!(
        h,
        "<p>Test split: {} customers, {} churned. The cutoff is the business lever: customers with a churn probability at or above it are flagged at risk. Move it with <code>marquee churn cutoff --run {} --min-precision 0.6 --apply</code>.</p>\n",
        f(d, "test_rows"),
        pct(f(d, "positive_rate")),
        esc(&u.record.run_id)
    );
    h.push_str("<div class=\"grid\">");
    chart(h, charts::roc(&roc, auc, marked_row.map(|r| (f(r, "false_positive_rate"), f(r, "recall"), label.clone()))));
    let curve: Vec<_> = rows
        .iter()
        .map(|r| (f(r, "cutoff"), f(r, "precision"), f(r, "recall"), f(r, "false_positive_rate"), f(r, "accuracy")))
        .collect();
    chart(h, charts::cutoff_curves(&curve, marked.map(|c| (c, label.clone()))));
    h.push_str("</div>\n");

    h.push_str("<div class=\"grid\"><div><h3>Cutoff table (test split)</h3>\n<table><tr><th class=\"n\">cutoff</th><th class=\"n\">at risk</th><th class=\"n\">TP</th><th class=\"n\">FP</th><th class=\"n\">TN</th><th class=\"n\">FN</th><th class=\"n\">precision</th><th class=\"n\">recall</th><th class=\"n\">false positive rate</th><th class=\"n\">accuracy</th><th></th></tr>\n");
    for r in &rows {
        let c = f(r, "cutoff");
        let is = marked.is_some_and(|m| (m - c).abs() < 1e-9);
        let g = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
        let _ = write!(
            h,
            "<tr{}><td class=\"n\">{c:.2}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
            if is { " class=\"marked\"" } else { "" },
            g("tp") + g("fp"),
            g("tp"),
            g("fp"),
            g("tn"),
            g("fn_"),
            pct(f(r, "precision")),
            pct(f(r, "recall")),
            pct(f(r, "false_positive_rate")),
            pct(f(r, "accuracy")),
            if !is { "" } else if u.deployed_cutoff.is_some() { "◀ deployed" } else { "◀ chosen" }
        );
    }
    h.push_str("</table></div>\n");
    if let Some(coefs) = d.get("top_coefficients").and_then(Value::as_array) {
        h.push_str("<div><h3>Churn drivers</h3><p class=\"note\">Logistic weights on standardised features.</p><table><tr><th>feature</th><th class=\"n\">weight</th><th>effect</th></tr>\n");
        for c in coefs {
            let name = c.get(0).and_then(Value::as_str).unwrap_or_default();
            let w = c.get(1).and_then(Value::as_f64).unwrap_or(f64::NAN);
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td class=\"n\">{:+.3}</td><td>{}</td></tr>\n",
                esc(name),
                w,
                if w > 0.0 {
                    "<span class=\"down\">raises risk</span>"
                } else {
                    "<span class=\"up\">lowers risk</span>"
                }
            );
        }
        h.push_str("</table></div>");
    }
    h.push_str("</div>\n");
}

/// Diverging background for a value relative to the population: blue above, orange below.
fn heat(ratio: f64) -> String {
    if !ratio.is_finite() {
        return String::new();
    }
    let a = (ratio - 1.0).abs().min(1.0) * 0.75;
    if ratio >= 1.0 {
        format!("background: rgba(31,119,180,{a:.2})")
    } else {
        format!("background: rgba(255,127,14,{a:.2})")
    }
}

fn segment(h: &mut String, u: &UseCaseReport) {
    let d = &u.record.challenger.details;
    let k = f(d, "k");
    let sweep: Vec<(f64, f64, f64)> = d
        .get("sweep")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| (f(p, "k"), f(p, "sse"), f(p, "silhouette")))
        .collect();
    let profiles: Vec<&Value> =
        d.get("profiles").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let test_shares: Vec<f64> = d
        .get("segment_shares")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect();
    let pop: BTreeMap<String, f64> = d
        .get("population_means")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
        .collect();
    let _ = write!(
        h,
        "<p>k-means with k = {k} (the best silhouette in the sweep unless the spec fixes k), {} test customers.</p>\n",
        f(d, "test_rows")
    );
    h.push_str("<div class=\"grid\">");
    chart(h, charts::elbow(&sweep, k));
    let cats: Vec<String> = (0..profiles.len()).map(|i| format!("S{i}")).collect();
    let train_shares: Vec<f64> = profiles.iter().map(|p| f(p, "share")).collect();
    chart(
        h,
        charts::bars(
            "Segment sizes (share of customers)",
            "share",
            &cats,
            &[("train", train_shares), ("test", test_shares.clone())],
            true,
        ),
    );
    h.push_str("</div>\n");

    h.push_str("<div class=\"grid\"><div><h3>Segment profiles: feature means vs population</h3>\n<table><tr><th>segment</th><th>label</th><th class=\"n\">share</th>");
    for c in pop.keys() {
        let _ = write!(h, "<th class=\"n mono\">{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for (i, p) in profiles.iter().enumerate() {
        let means = p.get("means").and_then(Value::as_object);
        let _ = write!(
            h,
            "<tr><td>S{}</td><td>{}</td><td class=\"n\">{}</td>",
            p.get("segment").and_then(Value::as_u64).unwrap_or(i as u64),
            esc(p.get("label").and_then(Value::as_str).unwrap_or_default()),
            pct(f(p, "share"))
        );
        for (c, pm) in &pop {
            let m = means.and_then(|m| m.get(c)).and_then(Value::as_f64).unwrap_or(f64::NAN);
            let ratio = if pm.abs() > 1e-12 { m / pm } else { f64::NAN };
            let _ = write!(
                h,
                "<td class=\"n\" style=\"{}\" title=\"{} x population\">{}</td>",
                heat(ratio),
                if ratio.is_finite() { format!("{ratio:.2}") } else { "–".into() },
                num2(m)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("<tr><td></td><td><b>population</b></td><td class=\"n\">100%</td>");
    for pm in pop.values() {
        let _ = write!(h, "<td class=\"n\"><b>{}</b></td>", num2(*pm));
    }
    h.push_str("</tr></table>\n<p class=\"note\">Cell colour: blue above the population mean, orange below (darker = further, up to 2x).</p></div>\n");

    if let Some(b) = d.get("baseline") {
        let cols: Vec<String> = b
            .get("columns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(esc)
            .collect();
        let (base, km) = (f(b, "test_sse"), f(b, "kmeans_test_sse"));
        let _ = write!(
            h,
            "<div><h3>Rule-based baseline</h3><p class=\"note\">Quantile bins on {} ({} segments) vs k-means with the same number of segments, SSE on the test split (lower is better).</p>\n<table><tr><th>segmentation</th><th class=\"n\">segments</th><th class=\"n\">test SSE</th></tr><tr><td>rule-based</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr><tr><td>k-means</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr><tr><td>k-means (chosen k)</td><td class=\"n\">{k}</td><td class=\"n\">{}</td></tr></table>\n<p>{}</p></div>",
            cols.join(" × "),
            f(b, "k"),
            f(b, "k"),
            num(base),
            f(b, "k"),
            num(km),
            num(f(d, "test_sse")),
            if km.is_finite() && base.is_finite() && base > 0.0 {
                format!("k-means is <b>{:.1}%</b> {} than the rules.", ((base - km) / base).abs() * 100.0, if km < base { "tighter" } else { "looser" })
            } else {
                "No like-for-like comparison (the sweep did not include the baseline's k).".into()
            }
        );
    }
    h.push_str("</div>\n");
}

fn recommend(h: &mut String, u: &UseCaseReport, data: &ReportData) {
    let d = &u.record.challenger.details;
    let _ = write!(
        h,
        "<div class=\"kpis\"><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">RMSE (global mean: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">precision@10 (popularity: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">NDCG@10 (popularity: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">test ratings, {} ranking users</div></div></div>\n",
        num(f(d, "rmse")),
        num(f(d, "rmse_global_mean")),
        num(f(d, "precision_at_10")),
        num(f(d, "popularity_precision_at_10")),
        num(f(d, "ndcg_at_10")),
        num(f(d, "popularity_ndcg_at_10")),
        f(d, "test_ratings"),
        f(d, "ranking_users"),
    );
    h.push_str("<div class=\"grid\">");
    chart(
        h,
        charts::bars(
            "Ranking quality vs popularity baseline",
            "score",
            &["precision@10".into(), "NDCG@10".into()],
            &[
                ("ALS (model)", vec![f(d, "precision_at_10"), f(d, "ndcg_at_10")]),
                ("popularity", vec![f(d, "popularity_precision_at_10"), f(d, "popularity_ndcg_at_10")]),
            ],
            false,
        ),
    );
    chart(
        h,
        charts::bars(
            "Rating error (RMSE, lower is better)",
            "RMSE",
            &["RMSE".into()],
            &[("ALS (model)", vec![f(d, "rmse")]), ("global mean", vec![f(d, "rmse_global_mean")])],
            false,
        ),
    );
    let mut dist: Vec<(f64, String, f64)> = d
        .get("test_rating_distribution")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.parse::<f64>().unwrap_or(f64::NAN), k.clone(), v.as_f64().unwrap_or(0.0)))
        .collect();
    dist.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = dist.iter().map(|x| x.2).sum::<f64>().max(1.0);
    chart(
        h,
        charts::bars(
            "Rating distribution (test split)",
            "share of ratings",
            &dist.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
            &[("ratings", dist.iter().map(|x| x.2 / total).collect())],
            true,
        ),
    );
    h.push_str("</div>\n");

    let ex = &data.examples;
    h.push_str("<div class=\"grid\"><div><h3>Example recommendations (score store)</h3>\n");
    if ex.customers.is_empty() {
        h.push_str("<p class=\"note\">No recommendations in the score store (no recommend model deployed).</p>");
    } else {
        let _ = write!(h, "<p class=\"note\">The customers most at risk of churning, with their deployed recommendations (model {}).</p>\n", esc(&ex.customers[0].model_version));
        h.push_str("<table><tr><th>customer</th><th>segment</th><th class=\"n\">churn p</th><th>top recommendations</th></tr>\n");
        for c in &ex.customers {
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td><ol class=\"recs\">",
                esc(&c.customer_id),
                esc(c.segment.as_deref().unwrap_or("–")),
                c.churn_probability.map_or("–".into(), |p| format!("{p:.3}"))
            );
            ranked_items(h, &c.recs);
            h.push_str("</ol></td></tr>\n");
        }
        h.push_str("</table>");
    }
    h.push_str("</div><div><h3>Most similar titles (content-based)</h3>\n");
    if ex.titles.is_empty() {
        h.push_str("<p class=\"note\">No similar titles in the score store.</p>");
    } else {
        h.push_str("<table><tr><th>title</th><th>most similar</th></tr>\n");
        for t in &ex.titles {
            let _ = write!(
                h,
                "<tr><td>{} <span class=\"note mono\">{}</span></td><td><ol class=\"recs\">",
                esc(&t.title),
                esc(&t.title_id)
            );
            ranked_items(h, &t.similar);
            h.push_str("</ol></td></tr>\n");
        }
        h.push_str("</table>");
    }
    h.push_str("</div></div>\n");
}

/// The first five ranked titles as list items: name, id and score.
fn ranked_items(h: &mut String, items: &[Ranked]) {
    for r in items.iter().take(5) {
        let _ = write!(
            h,
            "<li>{} <span class=\"note mono\">{} · {:.2}</span></li>",
            esc(&r.title),
            esc(&r.title_id),
            r.score
        );
    }
}

fn sentiment(h: &mut String, u: &UseCaseReport, data: &ReportData) {
    let d = &u.record.challenger.details;
    let band = d
        .get("neutral_band")
        .and_then(Value::as_array)
        .map(|b| b.iter().filter_map(Value::as_f64).map(|x| format!("{x:.2}")).collect::<Vec<_>>().join("–"))
        .unwrap_or_default();
    let _ = write!(
        h,
        "<div class=\"kpis\"><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">accuracy</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">macro F1</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">neutral share (band {band})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">accuracy outside the band</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">classifier, {} test posts</div></div></div>\n",
        pct(f(d, "accuracy")),
        num(f(d, "macro_f1")),
        pct(f(d, "neutral_share")),
        pct(f(d, "accuracy_outside_neutral_band")),
        esc(d.get("classifier").and_then(Value::as_str).unwrap_or("–")),
        f(d, "test_rows"),
    );
    h.push_str("<div class=\"grid\"><div><h3>Confusion matrix (test split)</h3>\n");
    if let Some(c) = d.get("confusion") {
        let names = |k: &str| -> Vec<String> {
            c.get(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        };
        let (rows, cols) = (names("rows"), names("columns"));
        let counts: Vec<Vec<f64>> = c
            .get("counts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| r.as_array().into_iter().flatten().map(|v| v.as_f64().unwrap_or(0.0)).collect())
            .collect();
        h.push_str("<table><tr><th>actual \\ predicted</th>");
        for c in &cols {
            let _ = write!(h, "<th class=\"n\">{}</th>", esc(c));
        }
        h.push_str("</tr>\n");
        for (r, name) in rows.iter().enumerate() {
            let row = counts.get(r).cloned().unwrap_or_default();
            let total: f64 = row.iter().sum::<f64>().max(1.0);
            let _ = write!(h, "<tr><th>{}</th>", esc(name));
            for (j, v) in row.iter().enumerate() {
                let good = cols.get(j) == Some(name);
                let a = 0.12 + 0.7 * v / total;
                let color = if good {
                    format!("rgba(44,160,44,{a:.2})")
                } else if cols.get(j).map(String::as_str) == Some("neutral") {
                    format!("rgba(127,127,127,{a:.2})")
                } else {
                    format!("rgba(214,39,40,{a:.2})")
                };
                let _ = write!(
                    h,
                    "<td class=\"n\" style=\"background:{color}\">{v:.0} <span class=\"note\">({:.0}%)</span></td>",
                    v / total * 100.0
                );
            }
            h.push_str("</tr>\n");
        }
        h.push_str(
            "</table><p class=\"note\">Posts whose P(positive) falls inside the neutral band are called neutral.</p>\n",
        );
    }
    if let Some(v) = d.get("validation_accuracy").and_then(Value::as_object).filter(|v| !v.is_empty()) {
        h.push_str("<h3>Model choice (validation accuracy)</h3><table><tr><th>classifier</th><th class=\"n\">accuracy</th></tr>");
        for (k, a) in v {
            let _ =
                write!(h, "<tr><td>{}</td><td class=\"n\">{}</td></tr>", esc(k), pct(a.as_f64().unwrap_or(f64::NAN)));
        }
        h.push_str("</table>");
    }
    h.push_str("</div>\n");

    let top: Vec<_> = data.examples.sentiment.iter().take(TREND_ENTITIES).collect();
    if let Some(first) = top.first() {
        let labels: Vec<String> =
            first.windows.iter().map(|w| w.start.get(5..).unwrap_or(&w.start).to_string()).collect();
        let lines: Vec<(String, Vec<f64>)> = top
            .iter()
            .map(|e| {
                (
                    format!("{} {}", e.arrow(), e.display()),
                    e.windows
                        .iter()
                        .map(|w| if w.positive + w.negative + w.neutral > 0 { w.net } else { f64::NAN })
                        .collect(),
                )
            })
            .collect();
        chart(h, charts::sentiment_trend(&labels, &lines));
    }
    h.push_str("</div>\n");
    if data.examples.sentiment.is_empty() {
        h.push_str("<p class=\"note\">No SENTIMENT items in the score store (no sentiment model deployed).</p>\n");
    } else {
        h.push_str("<h3>Most-mentioned entities (score store)</h3><table><tr><th>kind</th><th>entity</th><th class=\"n\">mentions</th><th class=\"n\">net score</th><th class=\"n\">slope / window</th><th>trend</th><th>net per window (oldest → newest)</th></tr>\n");
        for e in &data.examples.sentiment {
            let class = match e.direction.as_str() {
                "rising" => "up",
                "falling" => "down",
                _ => "flat",
            };
            let series: Vec<String> = e
                .windows
                .iter()
                .map(|w| if w.positive + w.negative + w.neutral > 0 { format!("{:+.2}", w.net) } else { "·".into() })
                .collect();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:+.3}</td><td class=\"n\">{:+.4}</td><td><span class=\"{class}\">{} {}</span></td><td class=\"mono\">{}</td></tr>\n",
                esc(&e.kind),
                esc(&e.display()),
                e.mentions,
                e.net_score,
                e.slope,
                direction_arrow(&e.direction),
                esc(&e.direction),
                series.join(" ")
            );
        }
        h.push_str("</table>\n");
    }
}

fn data_understanding(h: &mut String, d: &ReportData) {
    h.push_str("<section id=\"data\">\n<h2>Data understanding</h2>\n");
    if let Some(q) = &d.quality {
        let _ = write!(
            h,
            "<h3>Quality report {}</h3>\n",
            if q.passed {
                "<span class=\"badge deploy\">GATE PASSED</span>"
            } else {
                "<span class=\"badge reject\">GATE FAILED</span>"
            }
        );
        h.push_str("<table><tr><th>table</th><th>file</th><th class=\"n\">rows read</th><th class=\"n\">ok</th><th class=\"n\">quarantined</th><th class=\"n\">bad share</th><th>reasons</th><th>gate problems</th></tr>\n");
        for t in &q.tables {
            let reasons: Vec<String> = t.reasons.iter().map(|(r, n)| format!("{} × {}", n, esc(r))).collect();
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>\n",
                esc(&t.table),
                esc(t.file.rsplit('/').next().unwrap_or(&t.file)),
                t.rows_read,
                t.rows_ok,
                t.rows_quarantined,
                pct(t.bad_share),
                if reasons.is_empty() { "–".into() } else { reasons.join("<br>") },
                if t.problems.is_empty() { "<span class=\"pass\">none</span>".into() } else { format!("<span class=\"fail\">{}</span>", t.problems.iter().map(|p| esc(p)).collect::<Vec<_>>().join("<br>")) }
            );
        }
        h.push_str("</table>\n");
    }
    let _ = write!(
        h,
        "<h3>Quarantined rows ({} in all{})</h3>\n",
        d.quarantine_total,
        if d.quarantine_total > d.quarantine.len() {
            format!(", first {} shown", d.quarantine.len())
        } else {
            String::new()
        }
    );
    if d.quarantine.is_empty() {
        h.push_str("<p class=\"note\">No row was quarantined.</p>\n");
    } else {
        let _ =
            write!(h, "<p class=\"note\">All of them: <span class=\"mono\">{}</span></p>\n", esc(&d.quarantine_uri));
        h.push_str(
            "<table><tr><th>table</th><th class=\"n\">line</th><th>column</th><th>reason</th><th>raw row</th></tr>\n",
        );
        for r in &d.quarantine {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td><td>{}</td><td class=\"raw mono\">{}</td></tr>\n",
                esc(&r.table),
                if r.line == 0 { "–".into() } else { r.line.to_string() },
                esc(&r.column),
                esc(&r.reason),
                esc(&r.raw)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Data profile</h3>\n");
    for t in &d.profiles {
        let _ = write!(
            h,
            "<p><b>{}</b> <span class=\"mono note\">{}</span> — {} rows read, {} ok</p>\n",
            esc(&t.table),
            esc(&t.file),
            t.rows_read,
            t.rows_ok
        );
        h.push_str("<table><tr><th>column</th><th>role</th><th class=\"n\">missing</th><th class=\"n\">distinct</th><th class=\"n\">min</th><th class=\"n\">max</th><th class=\"n\">mean</th><th class=\"n\">std</th><th>most frequent</th></tr>\n");
        for c in &t.columns {
            let kind = c
                .kind
                .map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
                .unwrap_or_else(|| "(undeclared)".into());
            let o = |v: Option<f64>| v.map_or("".into(), num);
            let top: Vec<String> =
                c.top.iter().take(4).map(|(v, n)| format!("{} ({n})", esc(&truncate(v, 24)))).collect();
            let _ = write!(
                h,
                "<tr><td class=\"mono\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\n",
                esc(&c.name),
                esc(&kind),
                c.missing,
                c.distinct,
                if c.distinct_capped { "+" } else { "" },
                o(c.min),
                o(c.max),
                o(c.mean),
                o(c.std),
                top.join(", ")
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}
