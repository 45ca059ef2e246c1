//! Segmentation: the k sweep (elbow), segment sizes, profiles against the population, and the
//! rule-based baseline.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::usecase::segment::SegmentDetails;

use crate::charts;
use crate::html::{chart, esc, num, num2, pct};
use crate::UseCaseReport;

pub const TITLE: &str = "Segmentation — who are my customers?";

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

pub fn render(h: &mut String, _u: &UseCaseReport, d: &SegmentDetails) {
    let k = d.k;
    let sweep: Vec<(f64, f64, f64)> = d.sweep.iter().map(|p| (p.k as f64, p.sse, p.silhouette)).collect();
    let profiles = &d.profiles;
    let pop = &d.population_means;
    let _ = write!(
        h,
        "<p>k-means with k = {k} (the best silhouette in the sweep unless the spec fixes k), {} test customers.</p>\n",
        d.test_rows
    );
    h.push_str("<div class=\"grid\">");
    chart(h, charts::elbow(&sweep, k as f64));
    let cats: Vec<String> = (0..profiles.len()).map(|i| format!("S{i}")).collect();
    let train_shares: Vec<f64> = profiles.iter().map(|p| p.share).collect();
    chart(
        h,
        charts::bars(
            "Segment sizes (share of customers)",
            "share",
            &cats,
            &[("train", train_shares), ("test", d.segment_shares.clone())],
            true,
        ),
    );
    h.push_str("</div>\n");

    h.push_str("<div class=\"grid\"><div><h3>Segment profiles: feature means vs population</h3>\n<table><tr><th>segment</th><th>label</th><th class=\"n\">share</th>");
    for c in pop.keys() {
        let _ = write!(h, "<th class=\"n mono\">{}</th>", esc(c));
    }
    h.push_str("</tr>\n");
    for p in profiles {
        let _ = write!(h, "<tr><td>S{}</td><td>{}</td><td class=\"n\">{}</td>", p.segment, esc(&p.label), pct(p.share));
        for (c, pm) in pop {
            let m = p.means.get(c).copied().unwrap_or(f64::NAN);
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

    let b = &d.baseline;
    let cols: Vec<String> = b.columns.iter().map(|c| esc(c)).collect();
    let (base, km) = (b.test_sse, b.kmeans_test_sse.unwrap_or(f64::NAN));
    let _ = write!(
        h,
        "<div><h3>Rule-based baseline</h3><p class=\"note\">Quantile bins on {} ({} segments) vs k-means with the same number of segments, SSE on the test split (lower is better).</p>\n<table><tr><th>segmentation</th><th class=\"n\">segments</th><th class=\"n\">test SSE</th></tr><tr><td>rule-based</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr><tr><td>k-means</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr><tr><td>k-means (chosen k)</td><td class=\"n\">{k}</td><td class=\"n\">{}</td></tr></table>\n<p>{}</p></div>",
        cols.join(" × "),
        b.k,
        b.k,
        num(base),
        b.k,
        num(km),
        num(d.test_sse),
        if km.is_finite() && base.is_finite() && base > 0.0 {
            format!(
                "k-means is <b>{:.1}%</b> {} than the rules.",
                ((base - km) / base).abs() * 100.0,
                if km < base { "tighter" } else { "looser" }
            )
        } else {
            "No like-for-like comparison (the sweep did not include the baseline's k).".into()
        }
    );
    h.push_str("</div>\n");
}
