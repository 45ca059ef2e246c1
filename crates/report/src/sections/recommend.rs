//! Recommendations: RMSE and ranking quality against their baselines, the rating distribution,
//! and example recommendations and similar titles from the score store.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::usecase::recommend::RecommendDetails;

use crate::charts;
use crate::html::{chart, esc, num};
use crate::{Ranked, ReportData, UseCaseReport};

pub const TITLE: &str = "Recommendations — what to put at the top of each watchlist?";

pub fn render(h: &mut String, _u: &UseCaseReport, d: &RecommendDetails, data: &ReportData) {
    let _ = write!(
        h,
        "<div class=\"kpis\"><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">RMSE (global mean: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">precision@10 (popularity: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">NDCG@10 (popularity: {})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">test ratings, {} ranking users</div></div></div>\n",
        num(d.rmse),
        num(d.rmse_global_mean),
        num(d.precision_at_10),
        num(d.popularity_precision_at_10),
        num(d.ndcg_at_10),
        num(d.popularity_ndcg_at_10),
        d.test_ratings,
        d.ranking_users,
    );
    h.push_str("<div class=\"grid\">");
    chart(
        h,
        charts::bars(
            "Ranking quality vs popularity baseline",
            "score",
            &["precision@10".into(), "NDCG@10".into()],
            &[
                ("ALS (model)", vec![d.precision_at_10, d.ndcg_at_10]),
                ("popularity", vec![d.popularity_precision_at_10, d.popularity_ndcg_at_10]),
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
            &[("ALS (model)", vec![d.rmse]), ("global mean", vec![d.rmse_global_mean])],
            false,
        ),
    );
    let mut dist: Vec<(f64, String, f64)> = d
        .test_rating_distribution
        .iter()
        .map(|(k, v)| (k.parse::<f64>().unwrap_or(f64::NAN), k.clone(), *v as f64))
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
