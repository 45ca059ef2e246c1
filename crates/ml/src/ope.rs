//! Off-policy evaluation: the value a *target* policy would have earned, estimated from rounds
//! logged under another (*logging*) policy whose probability of the logged action is known.
//!
//! Each estimator turns the log into one term per round whose mean is the estimate; the 95%
//! interval is the mean plus or minus 1.96 standard errors of those terms (for self-normalised
//! IPS the terms are its delta-method linearisation, so the same rule applies). Because every
//! estimator has per-round terms, two policies estimated on the same rounds can be compared by
//! their paired difference ([`Terms::minus`]), which is far tighter than comparing two intervals.
//!
//! - [`ips`]: inverse propensity scoring, `mean(w * r)` with `w = pi_target(a) / pi_log(a)`.
//!   Unbiased when the logging policy gives every action the target can take a positive
//!   probability; high variance when weights are large.
//! - [`snips`]: self-normalised IPS, `sum(w * r) / sum(w)`: slightly biased, bounded by the
//!   reward range, usually much less variable.
//! - [`doubly_robust`]: `mean(q_target + w * (r - q_logged))` with a reward model's predictions
//!   `q`: unbiased if either the propensities or the reward model are right, and as variable as
//!   the model's residuals rather than the rewards.
//! - [`on_policy`]: the plain mean reward of a policy's own log (its value, no weighting).

use crate::{MlError, Result};
use serde::{Deserialize, Serialize};

/// The two-sided 95% normal quantile.
const Z_95: f64 = 1.959_963_984_540_054;

/// One logged round: the reward observed for the logged action, the probability the logging
/// policy chose that action, and the probability the target policy would choose it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    pub reward: f64,
    pub propensity: f64,
    pub target: f64,
}

impl Round {
    /// The importance weight `pi_target(a) / pi_log(a)` of the logged action.
    pub fn weight(&self) -> f64 {
        self.target / self.propensity
    }
}

/// A reward model's predictions for one round: for the logged action, and its expectation under
/// the target policy (`sum_a pi_target(a) * q(a)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelTerms {
    pub logged: f64,
    pub target: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    Ips,
    Snips,
    DoublyRobust,
    OnPolicy,
    /// A paired difference of two estimates on the same rounds.
    Difference,
}

impl Estimator {
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::Ips => "IPS",
            Estimator::Snips => "SNIPS",
            Estimator::DoublyRobust => "DR",
            Estimator::OnPolicy => "on-policy",
            Estimator::Difference => "difference",
        }
    }
}

/// A policy value with its 95% confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub estimator: Estimator,
    pub value: f64,
    pub std_error: f64,
    pub low: f64,
    pub high: f64,
    pub rounds: usize,
    /// Kish's effective sample size of the importance weights, `(sum w)^2 / sum w^2`: how many
    /// rounds the estimate effectively rests on (all of them on-policy).
    pub effective_rounds: f64,
    /// Rounds with a non-zero reward that the target policy could have chosen (w > 0): with few
    /// of them the normal interval is unreliable, however narrow it looks.
    pub rewarded_rounds: usize,
}

impl Estimate {
    /// Whether `x` lies inside the interval.
    pub fn covers(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// Per-round terms of one estimator over a log; their mean is the estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Terms {
    pub estimator: Estimator,
    pub values: Vec<f64>,
    effective_rounds: f64,
    rewarded_rounds: usize,
}

impl Terms {
    /// The mean of the terms with its standard error and 95% interval.
    pub fn estimate(&self) -> Estimate {
        let n = self.values.len();
        let mean = self.values.iter().sum::<f64>() / n as f64;
        let var =
            if n > 1 { self.values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64 } else { 0.0 };
        let se = (var / n as f64).sqrt();
        Estimate {
            estimator: self.estimator,
            value: mean,
            std_error: se,
            low: mean - Z_95 * se,
            high: mean + Z_95 * se,
            rounds: n,
            effective_rounds: self.effective_rounds,
            rewarded_rounds: self.rewarded_rounds,
        }
    }

    /// The paired difference `self - other` on the same rounds (e.g. a new policy against the
    /// logging policy's own rewards): its interval accounts for the two being correlated.
    pub fn minus(&self, other: &Terms) -> Result<Terms> {
        if self.values.len() != other.values.len() {
            return Err(MlError::InvalidInput(format!(
                "paired difference of estimates over {} and {} rounds",
                self.values.len(),
                other.values.len()
            )));
        }
        Ok(Terms {
            estimator: Estimator::Difference,
            values: self.values.iter().zip(&other.values).map(|(a, b)| a - b).collect(),
            effective_rounds: self.effective_rounds.min(other.effective_rounds),
            rewarded_rounds: self.rewarded_rounds.min(other.rewarded_rounds),
        })
    }
}

/// Checks a log: non-empty, finite rewards, propensities in (0, 1], target probabilities in [0, 1].
fn check(rounds: &[Round]) -> Result<()> {
    if rounds.is_empty() {
        return Err(MlError::InvalidInput("off-policy evaluation of an empty log".into()));
    }
    for (i, r) in rounds.iter().enumerate() {
        if !r.reward.is_finite() {
            return Err(MlError::InvalidInput(format!("round {i}: reward {} is not finite", r.reward)));
        }
        if !(r.propensity > 0.0 && r.propensity <= 1.0) {
            return Err(MlError::InvalidInput(format!(
                "round {i}: logging propensity {} is outside (0, 1]: a logged action must have had a positive probability",
                r.propensity
            )));
        }
        if !(0.0..=1.0).contains(&r.target) {
            return Err(MlError::InvalidInput(format!(
                "round {i}: target policy probability {} is outside [0, 1]",
                r.target
            )));
        }
    }
    Ok(())
}

fn weight_stats(rounds: &[Round]) -> (f64, usize) {
    let (s, s2) = rounds.iter().map(Round::weight).fold((0.0, 0.0), |(s, s2), w| (s + w, s2 + w * w));
    let ess = if s2 > 0.0 { s * s / s2 } else { 0.0 };
    let rewarded = rounds.iter().filter(|r| r.target > 0.0 && r.reward != 0.0).count();
    (ess, rewarded)
}

/// Inverse propensity scoring.
pub fn ips(rounds: &[Round]) -> Result<Terms> {
    check(rounds)?;
    let (effective_rounds, rewarded_rounds) = weight_stats(rounds);
    Ok(Terms {
        estimator: Estimator::Ips,
        values: rounds.iter().map(|r| r.weight() * r.reward).collect(),
        effective_rounds,
        rewarded_rounds,
    })
}

/// Self-normalised IPS; its terms are the delta-method linearisation `V + w (r - V) / mean(w)`,
/// whose mean is `V` and whose spread gives the standard error. Errors when no round has a
/// positive weight (the target policy never agrees with the log).
pub fn snips(rounds: &[Round]) -> Result<Terms> {
    check(rounds)?;
    let (effective_rounds, rewarded_rounds) = weight_stats(rounds);
    let n = rounds.len() as f64;
    let sum_w: f64 = rounds.iter().map(Round::weight).sum();
    if sum_w <= 0.0 {
        return Err(MlError::InvalidInput(
            "SNIPS: the target policy gives every logged action probability 0, so the log says nothing about it".into(),
        ));
    }
    let value = rounds.iter().map(|r| r.weight() * r.reward).sum::<f64>() / sum_w;
    let mean_w = sum_w / n;
    Ok(Terms {
        estimator: Estimator::Snips,
        values: rounds.iter().map(|r| value + r.weight() * (r.reward - value) / mean_w).collect(),
        effective_rounds,
        rewarded_rounds,
    })
}

/// Doubly robust: the reward model's expected reward under the target policy, corrected by the
/// importance-weighted residual of the logged action.
pub fn doubly_robust(rounds: &[Round], model: &[ModelTerms]) -> Result<Terms> {
    check(rounds)?;
    if model.len() != rounds.len() {
        return Err(MlError::InvalidInput(format!(
            "doubly robust: {} rounds but {} reward-model predictions",
            rounds.len(),
            model.len()
        )));
    }
    if let Some((i, m)) = model.iter().enumerate().find(|(_, m)| !(m.logged.is_finite() && m.target.is_finite())) {
        return Err(MlError::InvalidInput(format!("round {i}: reward-model prediction {m:?} is not finite")));
    }
    let (effective_rounds, rewarded_rounds) = weight_stats(rounds);
    Ok(Terms {
        estimator: Estimator::DoublyRobust,
        values: rounds.iter().zip(model).map(|(r, m)| m.target + r.weight() * (r.reward - m.logged)).collect(),
        effective_rounds,
        rewarded_rounds,
    })
}

/// A policy's value from its own log: the mean reward.
pub fn on_policy(rewards: &[f64]) -> Result<Terms> {
    if rewards.is_empty() {
        return Err(MlError::InvalidInput("on-policy value of an empty log".into()));
    }
    if let Some((i, r)) = rewards.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(MlError::InvalidInput(format!("round {i}: reward {r} is not finite")));
    }
    Ok(Terms {
        estimator: Estimator::OnPolicy,
        values: rewards.to_vec(),
        effective_rounds: rewards.len() as f64,
        rewarded_rounds: rewards.iter().filter(|&&r| r != 0.0).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Four rounds worked by hand: weights 2, 0, 2, 2.
    fn tiny() -> (Vec<Round>, Vec<ModelTerms>) {
        let r = |reward, propensity, target| Round { reward, propensity, target };
        let m = |logged, target| ModelTerms { logged, target };
        (
            vec![r(1.0, 0.5, 1.0), r(0.0, 0.25, 0.0), r(1.0, 0.25, 0.5), r(0.0, 0.5, 1.0)],
            vec![m(0.5, 0.6), m(0.2, 0.3), m(0.4, 0.5), m(0.1, 0.2)],
        )
    }

    #[test]
    fn ips_snips_and_dr_match_hand_computed_values() {
        let (log, model) = tiny();
        // IPS terms w*r = 2, 0, 2, 0: mean 1, sample variance 4/3, standard error sqrt(4/3/4).
        let e = ips(&log).unwrap().estimate();
        assert_abs_diff_eq!(e.value, 1.0, epsilon = 1e-12);
        assert_abs_diff_eq!(e.std_error, (1.0f64 / 3.0).sqrt(), epsilon = 1e-12);
        assert_abs_diff_eq!(e.low, 1.0 - Z_95 * (1.0f64 / 3.0).sqrt(), epsilon = 1e-12);
        // Kish: (2+0+2+2)^2 / (4+0+4+4) = 3; rewarded rounds the target can take: 2.
        assert_abs_diff_eq!(e.effective_rounds, 3.0, epsilon = 1e-12);
        assert_eq!(e.rewarded_rounds, 2);

        // SNIPS: 4 / 6; terms V + w (r - V) / 1.5 = 10/9, 2/3, 10/9, -2/9.
        let t = snips(&log).unwrap();
        let expected = [10.0 / 9.0, 2.0 / 3.0, 10.0 / 9.0, -2.0 / 9.0];
        for (a, b) in t.values.iter().zip(expected) {
            assert_abs_diff_eq!(*a, b, epsilon = 1e-12);
        }
        assert_abs_diff_eq!(t.estimate().value, 2.0 / 3.0, epsilon = 1e-12);

        // DR terms q_target + w (r - q_logged) = 1.6, 0.3, 1.7, 0.0.
        let t = doubly_robust(&log, &model).unwrap();
        for (a, b) in t.values.iter().zip([1.6, 0.3, 1.7, 0.0]) {
            assert_abs_diff_eq!(*a, b, epsilon = 1e-12);
        }
        assert_abs_diff_eq!(t.estimate().value, 0.9, epsilon = 1e-12);

        // Paired difference against the logging policy's rewards (mean 0.5): 1.0 - 0.5.
        let d = ips(&log).unwrap().minus(&on_policy(&[1.0, 0.0, 1.0, 0.0]).unwrap()).unwrap().estimate();
        assert_abs_diff_eq!(d.value, 0.5, epsilon = 1e-12);
        assert_eq!(d.estimator, Estimator::Difference);
    }

    #[test]
    fn on_policy_weights_reduce_every_estimator_to_the_mean_reward() {
        // The target is the logging policy itself: w = 1 everywhere.
        let rewards = [1.0, 0.0, 0.0, 1.0, 1.0];
        let log: Vec<Round> = rewards.iter().map(|&reward| Round { reward, propensity: 0.3, target: 0.3 }).collect();
        let mean = 0.6;
        assert_abs_diff_eq!(ips(&log).unwrap().estimate().value, mean, epsilon = 1e-12);
        assert_abs_diff_eq!(snips(&log).unwrap().estimate().value, mean, epsilon = 1e-12);
        let any_model = vec![ModelTerms { logged: 0.2, target: 0.2 }; 5];
        assert_abs_diff_eq!(doubly_robust(&log, &any_model).unwrap().estimate().value, mean, epsilon = 1e-12);
        let e = on_policy(&rewards).unwrap().estimate();
        assert_abs_diff_eq!(e.value, mean, epsilon = 1e-12);
        assert_abs_diff_eq!(e.effective_rounds, 5.0, epsilon = 1e-12);
    }

    #[test]
    fn bad_logs_are_named() {
        let bad = |rounds: &[Round]| ips(rounds).unwrap_err().to_string();
        assert!(bad(&[]).contains("empty log"));
        assert!(bad(&[Round { reward: 1.0, propensity: 0.0, target: 1.0 }]).contains("round 0: logging propensity 0"));
        assert!(bad(&[Round { reward: f64::NAN, propensity: 0.5, target: 1.0 }]).contains("not finite"));
        assert!(bad(&[Round { reward: 1.0, propensity: 0.5, target: 1.5 }]).contains("target policy probability 1.5"));
        let never = [Round { reward: 1.0, propensity: 0.5, target: 0.0 }];
        assert!(snips(&never).unwrap_err().to_string().contains("probability 0"));
        assert!(doubly_robust(&never, &[]).unwrap_err().to_string().contains("1 rounds but 0"));
        let (log, _) = tiny();
        assert!(ips(&log).unwrap().minus(&on_policy(&[1.0]).unwrap()).is_err());
    }

    /// A simulated bandit whose true policy values are known: 4 contexts, 5 actions, Bernoulli
    /// rewards; the logging policy explores with context-dependent propensities, the target is
    /// greedy on a different preference, and the reward model is deliberately biased.
    struct World {
        reward_prob: [[f64; 5]; 4],
        logging: [[f64; 5]; 4],
        target: [[f64; 5]; 4],
    }

    impl World {
        fn new() -> Self {
            let reward_prob = [
                [0.10, 0.30, 0.20, 0.05, 0.15],
                [0.25, 0.05, 0.10, 0.40, 0.20],
                [0.05, 0.10, 0.35, 0.15, 0.10],
                [0.20, 0.20, 0.05, 0.10, 0.45],
            ];
            let logging = [
                [0.40, 0.10, 0.20, 0.20, 0.10],
                [0.10, 0.40, 0.20, 0.15, 0.15],
                [0.20, 0.20, 0.20, 0.20, 0.20],
                [0.30, 0.30, 0.20, 0.10, 0.10],
            ];
            // Mostly the best action, 10% spread uniformly (an exploration share).
            let best = [1, 3, 2, 4];
            let mut target = [[0.02; 5]; 4];
            for (x, &b) in best.iter().enumerate() {
                target[x][b] = 0.92;
            }
            World { reward_prob, logging, target }
        }

        fn true_value(&self) -> f64 {
            (0..4).map(|x| (0..5).map(|a| self.target[x][a] * self.reward_prob[x][a]).sum::<f64>()).sum::<f64>() / 4.0
        }

        fn log(&self, n: usize, seed: u64) -> (Vec<Round>, Vec<ModelTerms>) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (mut rounds, mut model) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for _ in 0..n {
                let x = rng.gen_range(0..4);
                let u: f64 = rng.gen();
                let mut acc = 0.0;
                let a = (0..5).find(|&a| {
                    acc += self.logging[x][a];
                    u < acc
                });
                let a = a.unwrap_or(4);
                let reward = f64::from(u8::from(rng.gen::<f64>() < self.reward_prob[x][a]));
                rounds.push(Round { reward, propensity: self.logging[x][a], target: self.target[x][a] });
                // A reward model off by +0.05 everywhere: DR must stay unbiased through the weights.
                let q = |a: usize| self.reward_prob[x][a] + 0.05;
                let q_target = (0..5).map(|b| self.target[x][b] * q(b)).sum();
                model.push(ModelTerms { logged: q(a), target: q_target });
            }
            (rounds, model)
        }
    }

    #[test]
    fn intervals_cover_the_true_value_in_at_least_90_of_100_simulated_logs() {
        let world = World::new();
        let truth = world.true_value();
        let mut covered = [0usize; 3];
        let mut widths = [0.0f64; 3];
        for seed in 0..100 {
            let (log, model) = world.log(2000, seed);
            let estimates = [
                ips(&log).unwrap().estimate(),
                snips(&log).unwrap().estimate(),
                doubly_robust(&log, &model).unwrap().estimate(),
            ];
            for (k, e) in estimates.iter().enumerate() {
                covered[k] += usize::from(e.covers(truth));
                widths[k] += e.high - e.low;
            }
        }
        for (k, name) in ["IPS", "SNIPS", "DR"].into_iter().enumerate() {
            assert!(covered[k] >= 90, "{name} covered the true value {truth:.4} in {} of 100 logs", covered[k]);
        }
        // The reward model's residuals vary less than the rewards: DR's intervals are the tightest.
        assert!(widths[2] < widths[0], "DR width {} vs IPS {}", widths[2] / 100.0, widths[0] / 100.0);
    }
}
