//! HTML of the report: one file, inline CSS and SVG; the one script (the churn cutoff slider) is
//! inline too, so the page fetches nothing.
// Each write! emits one line of HTML; the trailing newline keeps the page source readable.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::steps::Verdict;

use crate::sections;
use crate::{ReportData, UseCaseReport};

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

/// `value` as JSON in a `<script type="application/json">` block, for the page's script to read.
///
/// `<` only occurs inside JSON strings, where `\u003c` means the same, so no `</script>` or `<!--`
/// in the data can end the block early.
pub(crate) fn json_script(id: &str, value: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "null".into()).replace('<', "\\u003c");
    format!("<script type=\"application/json\" id=\"{}\">{json}</script>\n", esc(id))
}

pub(crate) fn num(v: f64) -> String {
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
pub(crate) fn num2(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(crate) fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "–".into()
    }
}

fn verdict_badge(v: Verdict, is_champion: bool) -> String {
    let (class, text) = match v {
        Verdict::Deploy if is_champion => ("deploy", "DEPLOYED"),
        Verdict::Deploy => ("deploy", "PASSED (since replaced)"),
        Verdict::Reject => ("reject", "REJECTED"),
        Verdict::Unchanged => ("unchanged", "UNCHANGED"),
        Verdict::Failed => ("reject", "FAILED"),
    };
    format!("<span class=\"badge {class}\">{text}</span>")
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
.slider input[type=range] { width:340px; vertical-align:middle; }
tr.slid td { background:#e3eefb; }
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
    if !d.examples.promotions.is_empty() {
        h.push_str("<a href=\"#promote\">promote</a>");
    }
    h.push_str("<a href=\"#data\">Data understanding</a></nav></header>\n<main>\n");
    overview(&mut h, d);
    for u in &d.use_cases {
        let _ = write!(
            h,
            "<section id=\"{}\">\n<h2>{} {}</h2>\n",
            u.use_case,
            esc(sections::title(&u.record.challenger.details)),
            verdict_badge(u.record.verdict, u.is_champion())
        );
        decision(&mut h, u);
        sections::render(&mut h, u, d);
        crate::provenance::render(&mut h, u);
        h.push_str("</section>\n");
    }
    sections::promote::render(&mut h, &d.examples.promotions);
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
    h.push_str("</table>\n");
    // A use case that failed in a step has no evaluation to show: the summary says where and why.
    for r in d.summary.iter().flat_map(|s| s.failed()) {
        let f = r.failure.as_ref();
        let _ = write!(
            h,
            "<p>{} <b>{}</b> failed in {}: <span class=\"mono\">{}</span> {}</p>\n",
            verdict_badge(Verdict::Failed, false),
            r.use_case,
            esc(f.map_or("?", |f| f.step.as_str())),
            esc(f.map_or("", |f| f.error.as_str())),
            esc(f.map_or("", |f| f.cause.as_str()))
        );
    }
    h.push_str("</section>\n");
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
        Verdict::Reject | Verdict::Failed => h.push_str("<p><b>Why not deployed:</b></p>\n"),
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
            c.kind,
            esc(&c.name),
            num(c.value),
            esc(c.op.as_str()),
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

pub(crate) fn chart(h: &mut String, svg: String) {
    let _ = write!(h, "<div class=\"chart\">{svg}</div>\n");
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
                esc(&short_file(&t.file)),
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

/// A file's name without its folder (`viewing.csv`), or a folder of parts' own name (`viewing/`).
fn short_file(file: &str) -> String {
    let trimmed = file.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    if trimmed.len() < file.len() {
        format!("{name}/")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_parts_is_shown_by_its_own_name() {
        assert_eq!(short_file("s3://b/raw/demo/viewing/"), "viewing/");
        assert_eq!(short_file("/w/store/raw/demo/viewing.csv"), "viewing.csv");
    }

    #[test]
    fn json_script_cannot_be_closed_by_its_data() {
        let block = json_script("x", &vec!["</script><script>alert(1)</script>", "<!--"]);
        assert_eq!(block.matches("</script>").count(), 1, "{block}");
        assert!(!block.contains("<!--"));
        let inner = block.trim_end().trim_start_matches("<script type=\"application/json\" id=\"x\">");
        let back: Vec<String> = serde_json::from_str(inner.trim_end_matches("</script>")).unwrap();
        assert_eq!(back, ["</script><script>alert(1)</script>", "<!--"]);
    }
}
