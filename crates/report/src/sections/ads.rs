//! Ad placement: the learned policy's value by three off-policy estimators beside the logged
//! policy and the best single ad, each with its 95% interval, and the conservative deploy gate.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_ml::ope::Estimate;
use marquee_pipeline::usecase::ads::AdsDetails;

use crate::charts;
use crate::html::{chart, esc, num, pct};
use crate::UseCaseReport;

pub const TITLE: &str = "Ad placement — which ads to place mid-roll for which viewers?";

fn row(h: &mut String, policy: &str, e: &Estimate) {
    let _ = write!(
        h,
        "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">[{}, {}]</td><td class=\"n\">{:.0}</td><td class=\"n\">{}</td></tr>\n",
        esc(policy),
        e.estimator.name(),
        pct(e.value),
        pct(e.low),
        pct(e.high),
        e.effective_rounds,
        e.rewarded_rounds
    );
}

pub fn render(h: &mut String, _u: &UseCaseReport, d: &AdsDetails) {
    let _ = write!(
        h,
        "<p>Engagement model over context × ad features; the policy places the ad with the highest predicted engagement, with {} of placements spread over all {} ads so its own logs stay usable. Judged on {} held-out impressions: engagement AUC {}, log loss {}.</p>\n",
        pct(d.exploration),
        d.ads,
        d.test_rounds,
        d.engagement_auc.map_or("–".into(), num),
        num(d.engagement_log_loss)
    );
    h.push_str("<div class=\"grid\">");
    let names = ["learned (DR)", "logged", "best single ad (DR)"].map(String::from);
    chart(
        h,
        charts::bars(
            "Engagement per impression by policy",
            "engagement",
            &names,
            &[
                (
                    "estimate",
                    vec![d.policy.doubly_robust.value, d.logged.value, d.best_single_ad_value.doubly_robust.value],
                ),
                (
                    "95% lower bound",
                    vec![d.policy.doubly_robust.low, d.logged.low, d.best_single_ad_value.doubly_robust.low],
                ),
            ],
            true,
        ),
    );
    h.push_str("<div><h3>Policy values (off-policy estimates, 95% intervals)</h3>\n<table><tr><th>policy</th><th>estimator</th><th class=\"n\">value</th><th class=\"n\">95% CI</th><th class=\"n\">effective rounds</th><th class=\"n\">engaged rounds</th></tr>\n");
    for e in [&d.policy.ips, &d.policy.snips, &d.policy.doubly_robust] {
        row(h, "learned", e);
    }
    row(h, "logged (on-policy)", &d.logged);
    let single = format!("best single ad ({})", d.best_single_ad);
    for e in [&d.best_single_ad_value.ips, &d.best_single_ad_value.doubly_robust] {
        row(h, &single, e);
    }
    row(h, "learned − logged (paired)", &d.lift);
    let _ = write!(
        h,
        "</table>\n<p class=\"note\">The log only shows the ads the old policy chose, so the learned policy is valued off-policy: IPS reweights the rounds where both policies agree by 1 / the logged propensity; self-normalised IPS divides by the sum of those weights; doubly robust adds the engagement model's prediction and corrects it where the log has an answer. Effective rounds: how many rounds the estimate is worth after weighting.</p>\n<p><b>Conservative gate:</b> the policy deploys only when the whole 95% interval of its paired lift over the logged policy lies above zero (lower bound here {}) and the relative lift ({}) reaches the spec's minimum, so a policy that merely might be better never replaces one that is known.</p></div>",
        pct(d.lift.low),
        pct(d.relative_lift)
    );
    h.push_str("</div>\n");
}
