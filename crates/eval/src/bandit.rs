//! Ad placement over a logged impressions table (`[ads]` of the spec): the engagement model's
//! AUC and log loss over stratified folds, and the value of the greedy policy it implies,
//! estimated off-policy with IPS, self-normalised IPS and doubly robust estimators, each with a
//! 95% interval, beside the logged policy's own value and the best single ad.
//!
//! Every estimate is **cross-fitted**: each round is scored by the model (and policy) fitted on
//! the other folds, and the per-round terms of all folds are pooled, so every logged round counts
//! once and no round judges a policy learned from it.
//!
//! With a second log of the same widget under another policy (the catalog's `other_log`), the
//! learned policy is set beside that policy's on-policy value, and the estimators are checked
//! where the truth is known: the first log's own policy is estimated from the second log and
//! compared with its on-policy value.

use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

use super::data::{self, Fold};
use super::{secs, EntryBuilder, EvalOptions, Job, TaskReport};
use marquee_ml::bandit::GreedyPolicy;
use marquee_ml::metrics::{log_loss, roc_auc};
use marquee_ml::ope::{self, Estimate};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::frame::Frame;
use marquee_pipeline::spec::{AdsSpec, Spec};
use marquee_pipeline::usecase::ads::{engagement_params, AdCatalog, ImpressionLog, PolicyRounds};

fn ml_err(context: &str) -> impl Fn(marquee_ml::MlError) -> Error + '_ {
    move |e| Error::Invalid(format!("{context}: {e}"))
}

fn fmt_estimate(e: &Estimate) -> String {
    format!(
        "{:.5} [{:.5}, {:.5}] (effective rounds {:.0}, rewarded rounds {})",
        e.value, e.low, e.high, e.effective_rounds, e.rewarded_rounds
    )
}

pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let spec: &Spec = &job.spec;
    let a = spec.ads.as_ref().ok_or_else(|| Error::spec("ads", "the spec has no [ads] section"))?;
    let mut names = vec![a.table.clone()];
    names.extend(a.ad_table.iter().cloned());
    names.extend(job.other_log.iter().cloned());
    let tables = data::load_tables(spec, &job.tables_dir, &names, &a.table, opts.limit)?;
    let main = tables.get(&a.table)?;
    let other = job.other_log.as_ref().map(|t| tables.get(t)).transpose()?;
    let ads = AdCatalog::of(a, &tables, &[Some(main), other].into_iter().flatten().collect::<Vec<_>>())?;
    let log = ImpressionLog::of(a, &a.table, main, &ads)?;
    let k = job.folds(opts);
    let folds: Vec<Fold> = data::stratified_kfold(&log.engaged, k, opts.seed);
    let protocol = format!("cross-fitted stratified {k}-fold (seed {})", opts.seed);
    let policy = GreedyPolicy::new(a.exploration).map_err(ml_err("ads.exploration"))?;
    let params = engagement_params(a);

    let (mut auc, mut loss, mut fit) = (Vec::new(), Vec::new(), Vec::new());
    let (mut learned, mut single) = (PolicyRounds::default(), PolicyRounds::default());
    let mut logged_rewards = Vec::new();
    for (f, fold) in folds.iter().enumerate() {
        let t = Instant::now();
        let model = log.fit(&ads, &params, &fold.train)?;
        fit.push(secs(t));
        let best_ad = log.best_single_ad(ads.len(), &fold.train);
        let mut one_hot = vec![0.0; ads.ids.len()];
        one_hot[best_ad] = 1.0;
        let (mut p_logged, mut y) = (Vec::new(), Vec::new());
        let scores = log.scores(&ads, &model);
        for &i in &fold.test {
            let q = scores.of(i);
            learned.push(&log, i, &policy.probabilities(&q), &q);
            single.push(&log, i, &one_hot, &q);
            p_logged.push(q[log.ad[i]]);
            y.push(log.engaged[i]);
            logged_rewards.push(log.reward(i));
        }
        // A fold without an engaged round has no AUC; the mean is over the folds that have one.
        if let Ok(v) = roc_auc(&p_logged, &y) {
            auc.push(v);
        }
        loss.push(log_loss(&p_logged, &y));
        progress(&format!(
            "{} fold {f}: engagement AUC {}, log loss {:.4}, fit {:.3}s, best single ad {}",
            job.name,
            auc.last().map_or("-".into(), |v| format!("{v:.4}")),
            loss[f],
            fit[f],
            ads.ids[best_ad]
        ));
    }
    let [ips, snips, dr] = learned.terms()?;
    let logged = ope::on_policy(&logged_rewards).map_err(ml_err("logged policy"))?;
    let lift = dr.minus(&logged).map_err(ml_err("lift"))?.estimate();
    let [single_ips, _, single_dr] = single.terms()?;
    let (logged_e, dr_e) = (logged.estimate(), dr.estimate());
    let relative_lift = if logged_e.value > 0.0 { dr_e.value / logged_e.value - 1.0 } else { f64::NAN };
    let mean_auc = auc.iter().sum::<f64>() / auc.len().max(1) as f64;
    let gate = lift.low > 0.0 && relative_lift >= a.criteria.min_lift && mean_auc >= a.criteria.min_auc;

    let dataset = &spec.pipeline.dataset;
    let entry = |metric: &str, values: &[f64], higher: bool| {
        EntryBuilder::named(&job.name, dataset, "ads", metric, &protocol, values, higher)
    };
    let mut entries = vec![
        entry("engagement ROC AUC", &auc, true).fit_seconds(&fit).refs(job.metric("auc")).build(),
        entry("engagement log loss", &loss, false).fit_seconds(&fit).refs(job.metric("log_loss")).build(),
    ];
    let explore = format!("greedy, exploration {}", a.exploration);
    let mut estimates = serde_json::Map::new();
    for (key, name, t) in [
        ("policy_ips", "policy value (IPS)", &ips),
        ("policy_snips", "policy value (SNIPS)", &snips),
        ("policy_dr", "policy value (DR)", &dr),
        ("logged", "logged policy value (on-policy)", &logged),
        ("single_ad_ips", "best single ad value (IPS)", &single_ips),
        ("single_ad_dr", "best single ad value (DR)", &single_dr),
    ] {
        let e = t.estimate();
        let note = format!(
            "95% CI [{:.5}, {:.5}]; effective rounds {:.0}; rewarded rounds {}",
            e.low, e.high, e.effective_rounds, e.rewarded_rounds
        );
        entries.push(entry(name, &[e.value], true).refs(job.metric(key)).note(note).build());
        estimates.insert(key.into(), serde_json::to_value(&e).expect("estimates serialise"));
    }
    entries.push(
        entry("policy lift over logged (DR, paired)", &[lift.value], true)
            .note(format!(
                "95% CI [{:.5}, {:.5}]; relative lift {:+.1}%; deploy gate (interval above 0, lift >= {:.0}%, AUC >= {}): {}",
                lift.low,
                lift.high,
                100.0 * relative_lift,
                100.0 * a.criteria.min_lift,
                a.criteria.min_auc,
                if gate { "pass" } else { "fail" }
            ))
            .build(),
    );
    estimates.insert("lift_dr".into(), serde_json::to_value(&lift).expect("estimates serialise"));

    let mut md = String::new();
    writeln!(
        md,
        "Learned policy ({explore}) on `{}`: {} rounds, {} engaged, {} ads; every round scored by the model of the other folds.\n",
        a.table,
        log.len(),
        logged_e.rewarded_rounds,
        ads.ids.len()
    )
    .ok();
    writeln!(
        md,
        "| policy | estimator | value | 95% CI | effective rounds | rewarded rounds |\n|---|---|---|---|---|---|"
    )
    .ok();
    let row = |md: &mut String, policy: &str, e: &Estimate| {
        writeln!(
            md,
            "| {policy} | {} | {:.5} | [{:.5}, {:.5}] | {:.0} | {} |",
            e.estimator.name(),
            e.value,
            e.low,
            e.high,
            e.effective_rounds,
            e.rewarded_rounds
        )
        .ok();
    };
    for t in [&ips, &snips, &dr] {
        row(&mut md, "learned", &t.estimate());
    }
    row(&mut md, "logged", &logged_e);
    row(&mut md, "best single ad", &single_ips.estimate());
    row(&mut md, "best single ad", &single_dr.estimate());
    row(&mut md, "learned - logged", &lift);
    writeln!(
        md,
        "\nDeploy gate: the paired DR lift's interval must lie above 0, the relative lift reach {:.0}% and the AUC {}: **{}**.",
        100.0 * a.criteria.min_lift,
        a.criteria.min_auc,
        if gate { "pass" } else { "fail" }
    )
    .ok();

    let mut details = json!({ "estimates": estimates, "gate": gate, "relative_lift": relative_lift,
                               "auc_per_fold": auc, "log_loss_per_fold": loss, "ads": ads.ids.len() });
    if let (Some(name), Some(frame)) = (&job.other_log, other) {
        let (other_entries, other_md, other_details) =
            compare_with_other_log(job, a, &ads, &log, name, frame, &folds, opts, &dr_e, &protocol, progress)?;
        entries.extend(other_entries);
        md.push_str(&other_md);
        details["other_log"] = other_details;
    }
    Ok(TaskReport { task: job.name.clone(), entries, details, markdown: md, seconds: 0.0 })
}

/// The other log's on-policy value beside the learned policy's, and the truth check: the first
/// log's policy (uniform over ads where it is the uniform-random log) estimated from the other.
#[allow(clippy::too_many_arguments)]
fn compare_with_other_log(
    job: &Job,
    a: &AdsSpec,
    ads: &AdCatalog,
    log: &ImpressionLog,
    name: &str,
    frame: &Frame,
    folds: &[Fold],
    opts: &EvalOptions,
    learned_dr: &Estimate,
    protocol: &str,
    progress: &dyn Fn(&str),
) -> Result<(Vec<super::Entry>, String, serde_json::Value)> {
    let other = ImpressionLog::of(a, name, frame, ads)?;
    let k = folds.len();
    let other_folds = data::stratified_kfold(&other.engaged, k, opts.seed);
    let params = engagement_params(a);
    // The first log's policy as a distribution over ads: uniform when its propensities are all
    // 1 / (number of ads), which is what the truth check needs; any other logging policy would
    // need its propensities per context, which a log only records for the chosen ad.
    let n_ads = ads.ids.len();
    let uniform = log.propensity.iter().all(|p| (p * n_ads as f64 - 1.0).abs() < 1e-6);
    let other_value = other.on_policy(0..other.len())?.estimate();
    let truth = log.on_policy(0..log.len())?.estimate();
    let dataset = &job.spec.pipeline.dataset;
    let mut entries = vec![EntryBuilder::named(
        &job.name,
        dataset,
        "ads",
        &format!("`{name}` policy value (on-policy)"),
        "all rounds",
        &[other_value.value],
        true,
    )
    .note(format!(
        "95% CI [{:.5}, {:.5}]; learned policy (DR) {:.5} [{:.5}, {:.5}]: {}",
        other_value.low,
        other_value.high,
        learned_dr.value,
        learned_dr.low,
        learned_dr.high,
        if learned_dr.low > other_value.high {
            "learned policy higher (intervals apart)"
        } else if learned_dr.high < other_value.low {
            "learned policy lower (intervals apart)"
        } else {
            "intervals overlap: neither can be called better"
        }
    ))
    .build()];
    let mut md = format!(
        "\n`{name}` log ({} rounds): its own policy's on-policy value {:.5} [{:.5}, {:.5}]; the learned policy's DR estimate {:.5} [{:.5}, {:.5}].\n",
        other.len(),
        other_value.value,
        other_value.low,
        other_value.high,
        learned_dr.value,
        learned_dr.low,
        learned_dr.high
    );
    let mut details = json!({ "on_policy": other_value, "first_log_on_policy": truth });
    if !uniform {
        md.push_str("\nThe first log's policy is not uniform over ads, so no truth check is run.\n");
        return Ok((entries, md, details));
    }
    let mut check = PolicyRounds::default();
    let spread = vec![1.0 / n_ads as f64; n_ads];
    for (f, fold) in other_folds.iter().enumerate() {
        let model = other.fit(ads, &params, &fold.train)?;
        let scores = other.scores(ads, &model);
        for &i in &fold.test {
            check.push(&other, i, &spread, &scores.of(i));
        }
        progress(&format!("{} truth check on `{name}`: fold {f} scored", job.name));
    }
    writeln!(
        md,
        "\nTruth check: the uniform-random policy's value estimated from the `{name}` log, against its on-policy value {:.5} [{:.5}, {:.5}] from `{}`:\n",
        truth.value, truth.low, truth.high, a.table
    )
    .ok();
    writeln!(md, "| estimator | estimate | 95% CI | covers the on-policy value |\n|---|---|---|---|").ok();
    for t in check.terms()? {
        let e = t.estimate();
        let covers = e.covers(truth.value);
        writeln!(
            md,
            "| {} | {:.5} | [{:.5}, {:.5}] | {} |",
            e.estimator.name(),
            e.value,
            e.low,
            e.high,
            if covers { "yes" } else { "no" }
        )
        .ok();
        entries.push(
            EntryBuilder::named(
                &job.name,
                dataset,
                "ads",
                &format!("truth check: uniform policy from `{name}` ({})", e.estimator.name()),
                protocol,
                &[e.value],
                true,
            )
            .anchor(&format!("`{}` on-policy", a.table), truth.value)
            .note(format!("{}; covers the on-policy value: {}", fmt_estimate(&e), if covers { "yes" } else { "no" }))
            .build(),
        );
        details[format!("truth_check_{}", e.estimator.name().to_lowercase())] =
            json!({ "estimate": e, "covers": covers });
    }
    Ok((entries, md, details))
}
