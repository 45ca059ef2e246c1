//! Ad placement: which ad to place in which break slot for which viewer, learned from an
//! impressions log that records the logging policy's propensity of each shown ad.
//!
//! The engagement model ([`marquee_ml::bandit::EngagementModel`]) predicts P(engaged) from hashed
//! context x ad tokens; the policy puts `1 - exploration` on the ad with the highest prediction
//! and spreads the rest uniformly, so its own logs stay usable for off-policy evaluation. On the
//! test split the policy's value is estimated by IPS, self-normalised IPS and doubly robust
//! estimators with 95% intervals ([`marquee_ml::ope`]), beside the logged policy's on-policy
//! value and the best single ad; it deploys only when the paired doubly robust lift over the
//! logged policy has its whole interval above zero.
//!
//! Scores are ad plans: per title, break slot and audience segment, the ads ranked by expected
//! engagement averaged over the impressions logged in that context (so the viewer mix of the
//! context, e.g. its devices, weighs in as it was seen).

use marquee_ml::bandit::{Candidate, EngagementModel, EngagementParams, GreedyPolicy};
use marquee_ml::metrics::{log_loss, roc_auc};
use marquee_ml::ope::{self, Estimate, ModelTerms, Round, Terms};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::common::{
    from_json, stratified_split, to_json, Criterion, CriterionKind, DeployParams, Evaluation, Op, PrimaryMetric,
};
use super::{Details, Files, ItemSink, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys::score;
use crate::spec::{AdsSpec, Spec, UseCaseSection};
use crate::store::Item;

/// An ad plan averages its context's predictions over at most this many logged impressions:
/// enough for a stable mean of the context's viewer mix, bounded cost per plan.
const MAX_ROUNDS_PER_PLAN: usize = 200;

/// The ads that can be placed: ids, the tokens the engagement model sees, numeric attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdCatalog {
    pub ids: Vec<String>,
    pub tokens: Vec<Vec<String>>,
    pub numeric: Vec<Vec<f64>>,
}

impl AdCatalog {
    /// From `ads.ad_table` when the spec has one, else the distinct ads of `logs`.
    pub fn of(a: &AdsSpec, tables: &Tables, logs: &[&Frame]) -> Result<Self> {
        match (&a.ad_table, &a.ad_id) {
            (Some(name), Some(id)) => {
                let f = tables.get(name)?;
                let ids = f.col(id)?.to_vec();
                let mut tokens: Vec<Vec<String>> = ids.iter().map(|i| vec![format!("ad={i}")]).collect();
                for c in &a.ad_features {
                    for (t, v) in tokens.iter_mut().zip(f.col(c)?) {
                        t.push(format!("{c}={v}"));
                    }
                }
                let mut numeric = vec![Vec::new(); ids.len()];
                for c in &a.ad_numeric {
                    for (n, v) in numeric.iter_mut().zip(f.numeric(c)?) {
                        n.push(v);
                    }
                }
                Ok(Self { ids, tokens, numeric })
            }
            _ => {
                let mut ids: Vec<String> =
                    logs.iter().flat_map(|f| f.col(&a.ad).into_iter().flatten().map(str::to_string)).collect();
                ids.sort();
                ids.dedup();
                let tokens = ids.iter().map(|i| vec![format!("ad={i}")]).collect();
                let numeric = vec![Vec::new(); ids.len()];
                Ok(Self { ids, tokens, numeric })
            }
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The contexts of an impressions table: what the model sees of each round besides the ad.
///
/// A log of millions of rounds has few distinct contexts (slot x the context columns' values),
/// so each distinct one is kept once and rounds point to it: the model fits on (context, ad,
/// outcome) counts and scores each context once ([`RoundScores`]).
#[derive(Debug, Clone, Default)]
pub struct Contexts {
    /// The tokens of each distinct context (the slot first), in order of first appearance.
    pub distinct: Vec<Vec<String>>,
    /// Per round, the index of its context in `distinct`.
    pub of_round: Vec<u32>,
    /// Per round, one affinity per ad of the catalog, rounds end to end (empty without
    /// `ads.affinity`).
    affinity: Vec<f64>,
    n_ads: usize,
}

impl Contexts {
    pub fn of(a: &AdsSpec, f: &Frame, ads: &AdCatalog) -> Result<Self> {
        let mut columns = vec![("slot", f.col(&a.slot)?)];
        for c in &a.context {
            columns.push((c.as_str(), f.col(c)?));
        }
        let mut index: HashMap<Vec<&str>, u32> = HashMap::new();
        let (mut distinct, mut of_round) = (Vec::new(), Vec::with_capacity(f.n_rows()));
        let mut key: Vec<&str> = Vec::with_capacity(columns.len());
        for i in 0..f.n_rows() {
            key.clear();
            key.extend(columns.iter().map(|(_, c)| c.get(i)));
            let id = match index.get(key.as_slice()) {
                Some(&id) => id,
                None => {
                    let id = u32::try_from(distinct.len())
                        .map_err(|_| Error::Invalid("ads: more than 2^32 distinct contexts".into()))?;
                    distinct.push(columns.iter().zip(&key).map(|((name, _), v)| format!("{name}={v}")).collect());
                    index.insert(key.clone(), id);
                    id
                }
            };
            of_round.push(id);
        }
        let mut affinity = Vec::new();
        if a.affinity.is_some() {
            let cols: Vec<Vec<f64>> = ads
                .ids
                .iter()
                .map(|id| f.numeric(&a.affinity_column(id).expect("affinity pattern is set")))
                .collect::<Result<_>>()?;
            affinity = (0..f.n_rows()).flat_map(|i| cols.iter().map(move |c| c[i])).collect();
        }
        Ok(Self { distinct, of_round, affinity, n_ads: ads.len() })
    }

    /// One round in context `tokens` (with its per-ad affinities, if the spec has them).
    pub fn single(tokens: Vec<String>, affinity: Option<Vec<f64>>) -> Self {
        let n_ads = affinity.as_ref().map_or(0, Vec::len);
        Self { distinct: vec![tokens], of_round: vec![0], affinity: affinity.unwrap_or_default(), n_ads }
    }

    /// The context tokens of round `row`.
    pub fn tokens(&self, row: usize) -> &[String] {
        &self.distinct[self.of_round[row] as usize]
    }

    /// Whether rounds carry their own numerics (affinities), so two rounds in one context can
    /// score differently.
    fn per_round(&self) -> bool {
        !self.affinity.is_empty()
    }

    fn numeric(&self, ads: &AdCatalog, row: usize, ad: usize) -> Vec<f64> {
        let mut x = ads.numeric[ad].clone();
        if self.per_round() {
            x.push(self.affinity[row * self.n_ads + ad]);
        }
        x
    }

    /// Expected engagement of every ad of the catalog in round `row`.
    pub fn scores(&self, ads: &AdCatalog, model: &EngagementModel, row: usize) -> Vec<f64> {
        (0..ads.len())
            .map(|a| {
                let x = self.numeric(ads, row, a);
                model.predict(&Candidate { context: self.tokens(row), ad: &ads.tokens[a], numeric: &x })
            })
            .collect()
    }
}

/// The engagement model's predictions for every round of a log, computed once per distinct
/// context unless rounds carry their own numerics.
pub struct RoundScores<'a> {
    contexts: &'a Contexts,
    ads: &'a AdCatalog,
    model: &'a EngagementModel,
    /// Per distinct context, every ad's prediction (empty when rounds score on their own).
    per_context: Vec<Vec<f64>>,
}

impl<'a> RoundScores<'a> {
    pub fn new(contexts: &'a Contexts, ads: &'a AdCatalog, model: &'a EngagementModel) -> Self {
        let per_context = if contexts.per_round() {
            Vec::new()
        } else {
            contexts
                .distinct
                .iter()
                .map(|tokens| {
                    (0..ads.len())
                        .map(|a| {
                            let x = &ads.numeric[a];
                            model.predict(&Candidate { context: tokens, ad: &ads.tokens[a], numeric: x })
                        })
                        .collect()
                })
                .collect()
        };
        Self { contexts, ads, model, per_context }
    }

    /// Expected engagement of every ad of the catalog in round `row`.
    pub fn of(&self, row: usize) -> Cow<'_, [f64]> {
        match self.per_context.get(self.contexts.of_round[row] as usize) {
            Some(q) => Cow::Borrowed(q),
            None => Cow::Owned(self.contexts.scores(self.ads, self.model, row)),
        }
    }
}

/// One impressions table, typed: contexts, the logged ad, its outcome and propensity.
#[derive(Debug, Clone)]
pub struct ImpressionLog {
    pub contexts: Contexts,
    /// Index into the [`AdCatalog`] of the logged ad.
    pub ad: Vec<usize>,
    pub engaged: Vec<bool>,
    pub propensity: Vec<f64>,
}

impl ImpressionLog {
    /// Reads `f` (the impressions table `table`); errors name the table, row and column.
    pub fn of(a: &AdsSpec, table: &str, f: &Frame, ads: &AdCatalog) -> Result<Self> {
        let index: HashMap<&str, usize> = ads.ids.iter().enumerate().map(|(k, id)| (id.as_str(), k)).collect();
        let bad = |row: usize, column: &str, why: String| {
            Error::Invalid(format!("table `{table}`, row {} (data record), column `{column}`: {why}", row + 1))
        };
        let ad = f
            .col(&a.ad)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                index.get(v).copied().ok_or_else(|| bad(i, &a.ad, format!("ad `{v}` is not in the ads table")))
            })
            .collect::<Result<Vec<usize>>>()?;
        let engaged = f
            .numeric(&a.engaged)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                0.0 => Ok(false),
                1.0 => Ok(true),
                _ => Err(bad(i, &a.engaged, format!("engagement must be 0 or 1, found {v}"))),
            })
            .collect::<Result<Vec<bool>>>()?;
        let propensity = f.numeric(&a.propensity)?;
        if let Some((i, p)) = propensity.iter().enumerate().find(|(_, p)| !(**p > 0.0 && **p <= 1.0)) {
            return Err(bad(i, &a.propensity, format!("propensity {p} is outside (0, 1]")));
        }
        Ok(Self { contexts: Contexts::of(a, f, ads)?, ad, engaged, propensity })
    }

    pub fn len(&self) -> usize {
        self.ad.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ad.is_empty()
    }

    /// Fits the engagement model on `rows` (each round's logged ad and outcome). Rounds with the
    /// same context, ad and outcome fit as one row counted that many times (the same objective),
    /// unless rounds carry their own numerics.
    pub fn fit(&self, ads: &AdCatalog, params: &EngagementParams, rows: &[usize]) -> Result<EngagementModel> {
        let contexts = &self.contexts;
        // (round standing for the group, count), in order of first appearance.
        let mut groups: Vec<(usize, u32)> = Vec::new();
        if contexts.per_round() {
            groups.extend(rows.iter().map(|&i| (i, 1)));
        } else {
            let mut index: HashMap<(u32, usize, bool), usize> = HashMap::new();
            for &i in rows {
                let key = (contexts.of_round[i], self.ad[i], self.engaged[i]);
                let g = *index.entry(key).or_insert_with(|| {
                    groups.push((i, 0));
                    groups.len() - 1
                });
                groups[g].1 += 1;
            }
        }
        let numeric: Vec<Vec<f64>> = groups.iter().map(|&(i, _)| contexts.numeric(ads, i, self.ad[i])).collect();
        let candidates: Vec<Candidate> = groups
            .iter()
            .zip(&numeric)
            .map(|(&(i, _), x)| Candidate { context: contexts.tokens(i), ad: &ads.tokens[self.ad[i]], numeric: x })
            .collect();
        let engaged: Vec<bool> = groups.iter().map(|&(i, _)| self.engaged[i]).collect();
        let count: Vec<u32> = groups.iter().map(|&(_, n)| n).collect();
        Ok(params.fit_counted(&candidates, &engaged, &count)?)
    }

    /// The model's predictions for this log's rounds.
    pub fn scores<'a>(&'a self, ads: &'a AdCatalog, model: &'a EngagementModel) -> RoundScores<'a> {
        RoundScores::new(&self.contexts, ads, model)
    }

    pub fn reward(&self, i: usize) -> f64 {
        f64::from(u8::from(self.engaged[i]))
    }

    /// The logging policy's value on its own rounds (the mean engagement).
    pub fn on_policy(&self, rows: impl IntoIterator<Item = usize>) -> Result<Terms> {
        Ok(ope::on_policy(&rows.into_iter().map(|i| self.reward(i)).collect::<Vec<_>>())?)
    }

    /// The IPS value of always placing each ad on `rows`; the index of the best.
    pub fn best_single_ad(&self, n_ads: usize, rows: &[usize]) -> usize {
        let mut value = vec![0.0; n_ads];
        for &i in rows {
            value[self.ad[i]] += self.reward(i) / self.propensity[i];
        }
        GreedyPolicy::best(&value).unwrap_or(0)
    }
}

/// The rounds of a log as seen by one target policy: IPS inputs and doubly robust model terms.
#[derive(Debug, Default)]
pub struct PolicyRounds {
    rounds: Vec<Round>,
    model: Vec<ModelTerms>,
}

impl PolicyRounds {
    /// Adds round `i` of `log` where the target policy's probabilities are `target` and the
    /// engagement model predicts `q` per ad.
    pub fn push(&mut self, log: &ImpressionLog, i: usize, target: &[f64], q: &[f64]) {
        let a = log.ad[i];
        self.rounds.push(Round { reward: log.reward(i), propensity: log.propensity[i], target: target[a] });
        self.model.push(ModelTerms { logged: q[a], target: target.iter().zip(q).map(|(p, q)| p * q).sum() });
    }

    /// Per-round terms of IPS, SNIPS and doubly robust, in that order.
    pub fn terms(&self) -> Result<[Terms; 3]> {
        Ok([ope::ips(&self.rounds)?, ope::snips(&self.rounds)?, ope::doubly_robust(&self.rounds, &self.model)?])
    }
}

/// The engagement model's parameters from the spec.
pub fn engagement_params(a: &AdsSpec) -> EngagementParams {
    EngagementParams { hash_bits: a.hash_bits, l2: a.l2 as f32, ..EngagementParams::default() }
}

/// The deployed artifact: the engagement model with the ad catalog it scores and the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdsModel {
    pub ads: AdCatalog,
    pub engagement: EngagementModel,
    pub policy: GreedyPolicy,
    /// The ad with the best IPS value on the training rounds (the "one ad everywhere" baseline).
    pub best_single_ad: usize,
    pub train_rounds: usize,
    pub fingerprint: String,
}

/// One policy's value by the three off-policy estimators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyValue {
    pub ips: Estimate,
    pub snips: Estimate,
    pub doubly_robust: Estimate,
}

/// What the ads evaluation reports besides its criteria (all on the test split).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsDetails {
    pub test_rounds: usize,
    pub ads: usize,
    pub exploration: f64,
    pub engagement_auc: Option<f64>,
    pub engagement_log_loss: f64,
    /// The learned policy (greedy with exploration).
    pub policy: PolicyValue,
    /// The logging policy's on-policy value: the mean engagement of the test rounds.
    pub logged: Estimate,
    pub best_single_ad: String,
    pub best_single_ad_value: PolicyValue,
    /// Learned minus logged, doubly robust, paired round by round.
    pub lift: Estimate,
    /// The doubly robust value over the logged value, minus 1.
    pub relative_lift: f64,
}

/// Ad placement: engagement model + greedy policy, gated on off-policy lift.
pub struct Ads;

impl UseCase for Ads {
    fn id(&self) -> crate::spec::UseCase {
        crate::spec::UseCase::Ads
    }
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection> {
        spec.ads.as_ref().map(|s| s as &dyn UseCaseSection)
    }
    fn needed_tables(&self, spec: &Spec) -> Vec<String> {
        spec.ads.iter().flat_map(|a| std::iter::once(a.table.clone()).chain(a.ad_table.clone())).collect()
    }
    fn training_tables(&self, spec: &Spec) -> Vec<String> {
        spec.ads.iter().flat_map(|a| a.ad_table.clone()).collect()
    }
    fn label_columns(&self, spec: &Spec) -> Vec<(String, String)> {
        spec.ads.iter().map(|a| (a.table.clone(), a.engaged.clone())).collect()
    }
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files> {
        let a = spec_of(spec)?;
        let frame = tables.get(&a.table)?;
        let engaged: Vec<bool> = frame.numeric(&a.engaged)?.iter().map(|&v| v == 1.0).collect();
        let (train, test) = stratified_split(&engaged, spec.pipeline.test_fraction, spec.pipeline.seed);
        self.prepare_split(spec, tables, &train, &test)
    }
    /// Impression rows as they are: the engagement model's encoding is hashing, fitted on nothing.
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
        let a = spec_of(spec)?;
        let frame = tables.get(&a.table)?;
        let mut files = Files::new();
        files.insert("train.csv".into(), frame.select_rows(train).to_csv());
        files.insert("test.csv".into(), frame.select_rows(test).to_csv());
        Ok(files)
    }
    fn train(&self, spec: &Spec, files: &Files, tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let a = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        // Without an ads table the catalog is the ads of the log; the test split's ids join it
        // (ids only, no outcome) so every logged ad can be scored.
        let test = if a.ad_table.is_none() { Some(files.frame("test.csv")?) } else { None };
        let ads = AdCatalog::of(a, tables, &[Some(&train), test.as_ref()].into_iter().flatten().collect::<Vec<_>>())?;
        drop(test);
        let log = ImpressionLog::of(a, "train.csv", &train, &ads)?;
        let rows: Vec<usize> = (0..log.len()).collect();
        let engagement = log.fit(&ads, &engagement_params(a), &rows)?;
        let model = AdsModel {
            best_single_ad: log.best_single_ad(ads.len(), &rows),
            ads,
            engagement,
            policy: GreedyPolicy::new(a.exploration)?,
            train_rounds: log.len(),
            fingerprint: fingerprint.to_string(),
        };
        Ok(to_json(&model))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let a = spec_of(spec)?;
        let model: AdsModel = from_json(model_bytes, "ads model")?;
        let test = files.frame("test.csv")?;
        let log = ImpressionLog::of(a, "test.csv", &test, &model.ads)?;
        if log.is_empty() {
            return Err(Error::Invalid("ads: the test split has no impressions".into()));
        }
        let n_ads = model.ads.len();
        let mut single = vec![0.0; n_ads];
        single[model.best_single_ad] = 1.0;
        let (mut learned, mut one_ad) = (PolicyRounds::default(), PolicyRounds::default());
        let (mut p_logged, mut predicted_best) = (Vec::with_capacity(log.len()), Vec::with_capacity(log.len()));
        let scores = log.scores(&model.ads, &model.engagement);
        for i in 0..log.len() {
            let q = scores.of(i);
            learned.push(&log, i, &model.policy.probabilities(&q), &q);
            one_ad.push(&log, i, &single, &q);
            p_logged.push(q[log.ad[i]]);
            predicted_best.push(q.iter().copied().fold(0.0, f64::max));
        }
        let auc = roc_auc(&p_logged, &log.engaged).ok();
        let loss = log_loss(&p_logged, &log.engaged);
        let [ips, snips, dr] = learned.terms()?;
        let logged = log.on_policy(0..log.len())?;
        let lift = dr.minus(&logged)?.estimate();
        let policy = PolicyValue { ips: ips.estimate(), snips: snips.estimate(), doubly_robust: dr.estimate() };
        let [s_ips, s_snips, s_dr] = one_ad.terms()?;
        let logged = logged.estimate();
        let relative_lift = if logged.value > 0.0 { policy.doubly_robust.value / logged.value - 1.0 } else { f64::NAN };

        let criteria = vec![
            Criterion::check(
                CriterionKind::Technical,
                "engagement AUC (test)",
                auc.unwrap_or(f64::NAN),
                Op::Ge,
                a.criteria.min_auc,
            )
            .relax("ads.criteria.min_auc"),
            Criterion::check(
                CriterionKind::Business,
                "lift over the logged policy, 95% lower bound (DR, paired)",
                lift.low,
                Op::Gt,
                0.0,
            )
            .next("the log cannot tell the policy from the logged one yet: log more impressions (with exploration) or add context features"),
            Criterion::check(
                CriterionKind::Business,
                "relative lift over the logged policy (DR)",
                relative_lift,
                Op::Ge,
                a.criteria.min_lift,
            )
            .relax("ads.criteria.min_lift"),
        ];
        Ok(Evaluation {
            primary: PrimaryMetric {
                name: "policy value (DR)".into(),
                value: policy.doubly_robust.value,
                higher_is_better: true,
            },
            criteria,
            details: Details::Ads(Box::new(AdsDetails {
                test_rounds: log.len(),
                ads: n_ads,
                exploration: model.policy.exploration,
                engagement_auc: auc,
                engagement_log_loss: loss,
                policy,
                logged,
                best_single_ad: model.ads.ids[model.best_single_ad].clone(),
                best_single_ad_value: PolicyValue {
                    ips: s_ips.estimate(),
                    snips: s_snips.estimate(),
                    doubly_robust: s_dr.estimate(),
                },
                lift,
                relative_lift,
            })),
            deploy_params: BTreeMap::new(),
            scores: crate::drift::Distribution::numeric(&predicted_best),
        })
    }
    fn score_into(
        &self,
        spec: &Spec,
        model_bytes: &[u8],
        _deploy: &DeployParams,
        tables: &Tables,
        version: &str,
        out: &mut ItemSink<'_>,
    ) -> Result<()> {
        let a = spec_of(spec)?;
        let model: AdsModel = from_json(model_bytes, "ads model")?;
        let frame = tables.get(&a.table)?;
        let contexts = Contexts::of(a, frame, &model.ads)?;
        let items = plans(a, frame, &model, &contexts)?
            .into_iter()
            .map(|p| {
                let pk = p.title.as_deref().map_or_else(|| score::title(score::ANY), score::title);
                let sk = score::ads(&p.slot, p.segment.as_deref().unwrap_or(score::ANY));
                let value = AdPlanScore {
                    slot: p.slot,
                    segment: p.segment,
                    ads: p.ads,
                    impressions: p.impressions,
                    model_version: version.to_string(),
                };
                let value =
                    serde_json::to_value(value).map_err(|e| Error::Invalid(format!("ad plan {pk} / {sk}: {e}")))?;
                Ok(Item::new(pk, sk, value))
            })
            .collect::<Result<Vec<_>>>()?;
        out(items)
    }
}

/// One ranked ad of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAd {
    pub ad: String,
    /// Mean predicted engagement over the context's logged impressions.
    pub expected_engagement: f64,
    /// The policy's probability of placing it (exploration included).
    pub probability: f64,
}

/// The score item of one ad plan (`TITLE#<id>` / `ADS#<slot>#<segment>`), as applications read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdPlanScore {
    pub slot: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Best first, `ads.top_n` of them.
    pub ads: Vec<PlannedAd>,
    /// Logged impressions of this context.
    pub impressions: usize,
    pub model_version: String,
}

impl AdPlanScore {
    pub fn from_item(item: &Item) -> Result<Self> {
        serde_json::from_value(serde_json::Value::Object(item.attrs.clone()))
            .map_err(|e| Error::Invalid(format!("score item {} / {}: not an ad plan: {e}", item.pk, item.sk)))
    }
}

/// The ads to place in one (title, slot, segment) context, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct AdPlan {
    pub title: Option<String>,
    pub slot: String,
    pub segment: Option<String>,
    pub ads: Vec<PlannedAd>,
    /// Logged impressions of this context.
    pub impressions: usize,
}

/// Ad plans for every (title, slot, segment) context logged in `frame`.
pub fn plans(a: &AdsSpec, frame: &Frame, model: &AdsModel, contexts: &Contexts) -> Result<Vec<AdPlan>> {
    let optional = |c: &Option<String>| c.as_ref().map(|c| frame.col(c)).transpose();
    let (titles, slots, segments) = (optional(&a.title)?, frame.col(&a.slot)?, optional(&a.segment)?);
    // (title, slot, segment) -> the rows logged in that context.
    type Context<'a> = (Option<&'a str>, &'a str, Option<&'a str>);
    let mut groups: BTreeMap<Context, Vec<usize>> = BTreeMap::new();
    for i in 0..frame.n_rows() {
        let key = (titles.map(|t| &t[i]), &slots[i], segments.map(|s| &s[i]));
        groups.entry(key).or_default().push(i);
    }
    let n_ads = model.ads.len();
    let scores = RoundScores::new(contexts, &model.ads, &model.engagement);
    Ok(groups
        .into_iter()
        .map(|((title, slot, segment), rows)| {
            let used = &rows[..rows.len().min(MAX_ROUNDS_PER_PLAN)];
            let mut mean = vec![0.0; n_ads];
            for &i in used {
                for (m, q) in mean.iter_mut().zip(scores.of(i).iter()) {
                    *m += q / used.len() as f64;
                }
            }
            let probability = model.policy.probabilities(&mean);
            let mut order: Vec<usize> = (0..n_ads).collect();
            order.sort_by(|&x, &y| mean[y].total_cmp(&mean[x]).then(x.cmp(&y)));
            let ads = order
                .into_iter()
                .take(a.top_n)
                .map(|k| PlannedAd {
                    ad: model.ads.ids[k].clone(),
                    expected_engagement: mean[k],
                    probability: probability[k],
                })
                .collect();
            AdPlan {
                title: title.map(str::to_string),
                slot: slot.to_string(),
                segment: segment.map(str::to_string),
                ads,
                impressions: rows.len(),
            }
        })
        .collect())
}

fn spec_of(spec: &Spec) -> Result<&AdsSpec> {
    spec.ads.as_ref().ok_or_else(|| Error::spec("ads", "the spec has no [ads] section"))
}
