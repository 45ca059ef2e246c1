//! Sentiment: accuracy and the neutral band, the confusion matrix, the classifier choice, and the
//! trending entities from the score store.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::usecase::sentiment::SentimentDetails;

use crate::charts;
use crate::html::{chart, esc, num, pct};
use crate::{direction_arrow, ReportData, UseCaseReport, TREND_ENTITIES};

pub const TITLE: &str = "Sentiment — what do people say, and where is it heading?";

pub fn render(h: &mut String, _u: &UseCaseReport, d: &SentimentDetails, data: &ReportData) {
    let band = d.neutral_band.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join("–");
    let _ = write!(
        h,
        "<div class=\"kpis\"><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">accuracy</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">macro F1</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">neutral share (band {band})</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">accuracy outside the band</div></div><div class=\"kpi\"><div class=\"v\">{}</div><div class=\"l\">classifier, {} test posts</div></div></div>\n",
        pct(d.accuracy),
        num(d.macro_f1),
        pct(d.neutral_share),
        pct(d.accuracy_outside_neutral_band),
        esc(&d.classifier),
        d.test_rows,
    );
    h.push_str("<div class=\"grid\"><div><h3>Confusion matrix (test split)</h3>\n");
    {
        let c = &d.confusion;
        let (rows, cols) = (&c.rows, &c.columns);
        let counts: Vec<Vec<f64>> = c.counts.iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect();
        h.push_str("<table><tr><th>actual \\ predicted</th>");
        for c in cols {
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
    if !d.validation_accuracy.is_empty() {
        h.push_str("<h3>Model choice (validation accuracy)</h3><table><tr><th>classifier</th><th class=\"n\">accuracy</th></tr>");
        for (k, a) in &d.validation_accuracy {
            let _ = write!(h, "<tr><td>{}</td><td class=\"n\">{}</td></tr>", esc(k), pct(*a));
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
