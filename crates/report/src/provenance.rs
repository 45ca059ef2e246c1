//! The report's drift and lineage part of a use case: how far this run's data and scores moved
//! from the champion's (PSI per feature with a chart, missing-rate and label-rate changes, score
//! shift), and where the version came from (input files, spec section, code, parent).
// Each write! emits one line of HTML; the trailing newline keeps the page source readable.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::drift::Level;

use crate::html::{chart, esc, num};
use crate::{charts, UseCaseReport};

/// Features in the PSI chart (the most moved).
const CHART_FEATURES: usize = 12;

pub(crate) fn render(h: &mut String, u: &UseCaseReport) {
    drift(h, u);
    lineage(h, u);
}

fn drift(h: &mut String, u: &UseCaseReport) {
    let Some(d) = &u.record.drift else {
        if u.record.champion.is_some() {
            h.push_str("<h3>Drift</h3>\n<p class=\"note\">Not measured: the champion was recorded without a data profile.</p>\n");
        }
        return;
    };
    let moved = d.at_least(Level::Warn);
    let _ = write!(
        h,
        "<h3>Drift against champion <span class=\"mono\">{}</span></h3>\n<p>{} of {} measures at or past a <code>[drift]</code> threshold{}. PSI below 0.1 reads as stable, 0.1–0.25 as a moderate shift, above 0.25 as a significant one; numeric features are binned at the champion's deciles.</p>\n",
        esc(&d.reference),
        moved.len(),
        d.shifts.len(),
        if moved.iter().any(|s| s.level == Level::Block) { ", and a block threshold rejected the challenger" } else { "" }
    );
    let mut psi: Vec<_> = d.shifts.iter().filter(|s| s.what == "feature" || s.what == "score").collect();
    psi.sort_by(|a, b| b.value.total_cmp(&a.value));
    psi.truncate(CHART_FEATURES);
    if !psi.is_empty() {
        let names: Vec<String> = psi.iter().map(|s| s.name.clone()).collect();
        let values: Vec<f64> = psi.iter().map(|s| s.value).collect();
        chart(h, charts::bars("PSI against the champion (most moved)", "PSI", &names, &[("PSI", values)], false));
    }
    h.push_str("<table><tr><th>measure</th><th>of</th><th class=\"n\">value</th><th class=\"n\">champion</th><th class=\"n\">this run</th><th>level</th></tr>\n");
    let mut rows: Vec<_> = d.shifts.iter().collect();
    rows.sort_by(|a, b| b.level.cmp(&a.level).then(b.value.total_cmp(&a.value)));
    for s in rows.iter().filter(|s| s.level > Level::Ok || s.what != "missing") {
        let measure = match s.what.as_str() {
            "missing" => "missing-rate change",
            "label" => "label-rate change",
            "score" => "score PSI",
            _ => "PSI",
        };
        let level = match s.level {
            Level::Ok => "<span class=\"pass\">stable</span>",
            Level::Warn => "<span class=\"fail\">warn</span>",
            Level::Block => "<span class=\"fail\">block</span>",
        };
        let _ = write!(
            h,
            "<tr><td>{measure}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{level}</td></tr>\n",
            esc(&s.name),
            num(s.value),
            s.before.map_or("–".into(), num),
            s.after.map_or("–".into(), num)
        );
    }
    h.push_str("</table>\n");
    if !d.unmatched.is_empty() {
        let _ = write!(h, "<p class=\"note\">On one side only (not compared): {}.</p>\n", esc(&d.unmatched.join(", ")));
    }
}

fn lineage(h: &mut String, u: &UseCaseReport) {
    let Some(l) = &u.lineage else { return };
    let _ = write!(
        h,
        "<h3>Lineage</h3>\n<p class=\"note\">Version <span class=\"mono\">{}</span> · run <span class=\"mono\">{}</span> · compared with <span class=\"mono\">{}</span> · code <span class=\"mono\">{}</span> · spec section sha256 <span class=\"mono\">{}</span></p>\n",
        esc(&u.record.version),
        esc(&l.run_id),
        esc(l.parent.as_deref().unwrap_or("no champion")),
        esc(&l.code_version),
        esc(&l.spec_section_sha256)
    );
    h.push_str("<table><tr><th>table</th><th>file</th><th class=\"n\">bytes</th><th class=\"n\">rows</th><th>sha256</th><th>object version</th></tr>\n");
    for f in &l.inputs {
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td></tr>\n",
            esc(&f.table),
            esc(&f.key),
            f.bytes,
            f.rows,
            esc(&f.sha256),
            esc(f.object_version.as_deref().unwrap_or("–"))
        );
    }
    h.push_str("</table>\n");
}
