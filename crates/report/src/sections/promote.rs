//! Segment x content match: per audience segment, the titles to promote at the top of its
//! members' watchlists (the `SEGMENT#<s>` / `PROMOTE` score items).
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::promote::SegmentPromotion;

use crate::html::{esc, pct};

pub const TITLE: &str = "Segment × content — which titles should each segment see first?";

/// Titles listed per segment (the item holds `promote.top_n`).
const LISTED: usize = 5;

pub fn render(h: &mut String, promotions: &[SegmentPromotion]) {
    let Some(first) = promotions.first() else { return };
    let v = &first.versions;
    let _ = write!(
        h,
        "<section id=\"promote\">\n<h2>{}</h2>\n<p>Per segment, its members' personal recommendations aggregated (score per member with a list), times the title's lift (its reach in the segment over its reach among everyone), boosted by rising sentiment and lowered by falling. From the champions: segment <span class=\"mono\">{}</span>, recommend <span class=\"mono\">{}</span>{}.</p>\n<div class=\"grid\">",
        esc(TITLE),
        esc(&v.segment),
        esc(&v.recommend),
        v.sentiment.as_deref().map_or(String::new(), |s| format!(", sentiment <span class=\"mono\">{}</span>", esc(s)))
    );
    for p in promotions.iter().filter(|p| !p.titles.is_empty()) {
        let _ = write!(
            h,
            "<div><h3>S{} {}</h3><p class=\"note\">{} members, {} with recommendations.</p>\n<table><tr><th class=\"n\">#</th><th>title</th><th class=\"n\">score</th><th class=\"n\">reach</th><th class=\"n\">lift</th><th>sentiment</th></tr>\n",
            p.segment,
            esc(&p.label),
            p.members,
            p.members_with_recommendations
        );
        for t in p.titles.iter().take(LISTED) {
            let _ = write!(
                h,
                "<tr><td class=\"n\">{}</td><td>{} <span class=\"note mono\">{}</span></td><td class=\"n\">{:.3}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}</td><td>{}</td></tr>\n",
                t.rank,
                esc(&t.title),
                esc(&t.title_id),
                t.score,
                pct(t.reach),
                t.lift,
                t.sentiment.map_or("–", |d| d.as_str())
            );
        }
        h.push_str("</table></div>\n");
    }
    h.push_str("</div>\n<p class=\"note\">All of them: <span class=\"mono\">marquee segments</span> (or <span class=\"mono\">--json</span>).</p>\n</section>\n");
}
