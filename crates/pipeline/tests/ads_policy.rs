//! The ads use case against the demo generator's ground truth ([`marquee_demo::AdsTruth`]): the
//! off-policy estimates of a policy whose true value is known cover it, and the policy the
//! engagement model learns from a logged sample is truly better than the logging policy.

use marquee_demo::{simulate_impressions, AdsTruth, ContextWeight, DEMO_SPEC};
use marquee_ml::bandit::EngagementModel;
use marquee_pipeline::frame::Frame;
use marquee_pipeline::spec::{AdsSpec, Spec};
use marquee_pipeline::usecase::ads::{engagement_params, AdCatalog, Contexts, ImpressionLog, PolicyRounds};
use marquee_pipeline::usecase::Tables;

fn demo_ads_spec() -> AdsSpec {
    Spec::from_toml(DEMO_SPEC, "demo").unwrap().ads.expect("the demo spec has [ads]")
}

/// A simulated log read the way the pipeline reads it: the ads table, the catalog, the log.
fn read(a: &AdsSpec, rounds: usize, seed: u64) -> (AdCatalog, ImpressionLog, Vec<ContextWeight>) {
    let (ads_csv, log_csv, contexts) = simulate_impressions(rounds, seed);
    let tables = Tables([("ads".to_string(), Frame::from_csv(&ads_csv, "ads.csv").unwrap())].into_iter().collect());
    let frame = Frame::from_csv(&log_csv, "impressions.csv").unwrap();
    let catalog = AdCatalog::of(a, &tables, &[&frame]).unwrap();
    let log = ImpressionLog::of(a, "impressions", &frame, &catalog).unwrap();
    (catalog, log, contexts)
}

/// The context tokens the pipeline builds for an impression in context `c` (slot first, then
/// the spec's context columns).
fn tokens(a: &AdsSpec, c: &ContextWeight) -> Vec<String> {
    let mut t = vec![format!("slot={}", c.slot)];
    for column in &a.context {
        let v = match column.as_str() {
            "viewer_segment" => &c.segment,
            "genre" => &c.genre,
            "device" => &c.device,
            other => panic!("the demo's ads context has no column {other}"),
        };
        t.push(format!("{column}={v}"));
    }
    t
}

/// A policy's probabilities: `1 - exploration` on `best`, the rest spread over all ads.
fn greedy(n_ads: usize, best: usize, exploration: f64) -> Vec<f64> {
    let mut p = vec![exploration / n_ads as f64; n_ads];
    p[best] += 1.0 - exploration;
    p
}

/// The round's context as the truth names it, read back from its tokens.
fn context_of(log: &ImpressionLog, row: usize) -> [String; 4] {
    let value = |key: &str| {
        log.contexts
            .tokens(row)
            .iter()
            .find_map(|t| t.strip_prefix(key).and_then(|t| t.strip_prefix('=')))
            .unwrap_or_else(|| panic!("round {row} has no {key}"))
            .to_string()
    };
    [value("viewer_segment"), value("genre"), value("device"), value("slot")]
}

fn model_scores(a: &AdsSpec, catalog: &AdCatalog, model: &EngagementModel, c: &ContextWeight) -> Vec<f64> {
    Contexts::single(tokens(a, c), None).scores(catalog, model, 0)
}

#[test]
fn estimates_of_the_true_best_policy_cover_its_value_in_at_least_90_of_100_logs() {
    let a = demo_ads_spec();
    let truth = AdsTruth::new();
    let exploration = 0.1;
    // The reward model of doubly robust, fitted once on an independent log: the estimation logs
    // below are fresh draws, so coverage is judged with the model held fixed.
    let (catalog, model_log, contexts) = read(&a, 20_000, 1_000);
    let all: Vec<usize> = (0..model_log.len()).collect();
    let model = model_log.fit(&catalog, &engagement_params(&a), &all).unwrap();
    let best_of = |c: [&str; 4]| {
        let id = truth.best_ad(c[0], c[1], c[2], c[3]);
        catalog.ids.iter().position(|x| *x == id).unwrap()
    };
    let true_value = truth.policy_value(&contexts, |c| {
        greedy(catalog.len(), best_of([&c.segment, &c.genre, &c.device, &c.slot]), exploration)
    });
    let logging_value = truth.policy_value(&contexts, |c| truth.logging_probabilities(&c.slot));
    assert!(true_value > 1.5 * logging_value, "the target policy {true_value} vs logging {logging_value}");

    let mut covered = [0usize; 3];
    for seed in 0..100 {
        let (_, log, _) = read(&a, 4_000, seed);
        let mut rounds = PolicyRounds::default();
        let scores = log.scores(&catalog, &model);
        for i in 0..log.len() {
            let [s, g, d, sl] = context_of(&log, i);
            let target = greedy(catalog.len(), best_of([&s, &g, &d, &sl]), exploration);
            rounds.push(&log, i, &target, &scores.of(i));
        }
        for (k, terms) in rounds.terms().unwrap().iter().enumerate() {
            covered[k] += usize::from(terms.estimate().covers(true_value));
        }
    }
    eprintln!(
        "true value {true_value:.4} (logging {logging_value:.4}); covered in 100 logs: IPS {}, SNIPS {}, DR {}",
        covered[0], covered[1], covered[2]
    );
    for (k, name) in ["IPS", "SNIPS", "DR"].into_iter().enumerate() {
        assert!(covered[k] >= 90, "{name} covered the true value {true_value:.4} in {} of 100 logs", covered[k]);
    }
}

#[test]
fn the_learned_policy_is_truly_better_than_the_logging_policy_and_any_single_ad() {
    let a = demo_ads_spec();
    let truth = AdsTruth::new();
    let (catalog, log, contexts) = read(&a, 64_000, 7);
    // Each distinct context is kept once: 5 segments x 12 genres x 3 devices x 3 slots at most.
    assert!(log.contexts.distinct.len() <= 540, "{} distinct contexts", log.contexts.distinct.len());
    assert_eq!(log.contexts.of_round.len(), 64_000);
    let all: Vec<usize> = (0..log.len()).collect();
    let model = log.fit(&catalog, &engagement_params(&a), &all).unwrap();
    let learned = |exploration: f64| {
        truth.policy_value(&contexts, |c| {
            let q = model_scores(&a, &catalog, &model, c);
            let best = (0..q.len()).max_by(|&x, &y| q[x].total_cmp(&q[y])).unwrap();
            greedy(catalog.len(), best, exploration)
        })
    };
    let (deployed, pure) = (learned(a.exploration), learned(0.0));
    let logging = truth.policy_value(&contexts, |c| truth.logging_probabilities(&c.slot));
    let oracle = truth.policy_value(&contexts, |c| {
        let id = truth.best_ad(&c.segment, &c.genre, &c.device, &c.slot);
        greedy(catalog.len(), catalog.ids.iter().position(|x| *x == id).unwrap(), 0.0)
    });
    let single = (0..catalog.len())
        .map(|k| truth.policy_value(&contexts, |_| greedy(catalog.len(), k, 0.0)))
        .fold(0.0, f64::max);
    eprintln!("true values: learned {deployed:.4} (greedy {pure:.4}), logging {logging:.4}, best single ad {single:.4}, best ad in every context {oracle:.4}");
    // Planted: logging ~0.072, the best single ad ~0.099, the best ad in every context ~0.169.
    assert!(deployed > 1.5 * logging, "learned policy {deployed:.4} vs logging {logging:.4}");
    assert!(deployed > single, "learned policy {deployed:.4} vs the best single ad {single:.4}");
    assert!(pure > 0.85 * oracle, "learned greedy choice {pure:.4} vs the best ad in every context {oracle:.4}");
}
