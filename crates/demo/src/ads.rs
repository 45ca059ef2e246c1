//! Ad placement demo data: which ad to place in which break slot for which viewer.
//!
//! `ads.csv` is a catalogue of 12 ads (6 categories, each a 15- and a 30-second spot);
//! `impressions.csv` is a log of ads shown, chosen by a logging policy with known exploration
//! ([`AdsTruth::EXPLORATION`] = 50% uniform over the 12 ads, else a fixed "house" ad per slot),
//! with the policy's probability of the logged ad (`propensity`) and whether the viewer engaged.
//!
//! Engagement is drawn from a known probability ([`AdsTruth::engagement`]): a logistic model with
//! planted category x viewer segment, category x genre and length x slot effects (see the
//! constants below), so the best ad ([`AdsTruth::best_ad`]) differs by segment, genre and slot,
//! and the house policy is clearly worse than the best policy. [`simulate_impressions`] writes a
//! standalone log of the same kind over a fixed context distribution ([`ContextWeight`]), on which
//! any policy's exact value can be computed, for checks of off-policy estimators.

use rand::distributions::{Distribution, WeightedIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::words::{GENRES, GENRE_WEIGHTS};
use super::{csv_bytes, dot, rng_for, sigmoid, timestamp, Catalog, Customer, DemoConfig, SEGMENTS, SELECT_TASTE};

/// Random stream of [`generate`] (the other tables use streams 1 to 4).
const STREAM: u64 = 5;
/// Random stream of [`simulate_impressions`].
const SIM_STREAM: u64 = 6;
/// Ad impressions per customer in the demo log.
const IMPRESSIONS_PER_CUSTOMER: usize = 20;
/// Impressions lie within this many days before the dataset's today.
const WINDOW_DAYS: f64 = 90.0;

/// Short names of the customer segments, in the order of the generator's `SEGMENTS`.
const SEGMENT_NAMES: [&str; 5] = ["binge", "casual", "trialist", "lapsed", "family"];
const CATEGORIES: [&str; 6] = ["gaming", "kids", "finance", "travel", "auto", "food"];
const LENGTHS: [u32; 2] = [15, 30];
const DEVICES: [&str; 3] = ["tv", "mobile", "web"];
const SLOTS: [&str; 3] = ["pre", "mid1", "mid2"];
const N_ADS: usize = CATEGORIES.len() * LENGTHS.len();
/// The logging policy's house ad per slot (index into the ads): the food 15s spot before the
/// show, the auto 30s spot in both mid-roll breaks.
const HOUSE_AD: [usize; 3] = [10, 9, 9];

// Planted effects on the log-odds of engagement.

/// Intercept: puts the logged engagement rate near 7%.
const BASE: f64 = -2.8;
/// Per slot (pre, mid1, mid2): viewers are most attentive before the show.
const SLOT_EFFECT: [f64; 3] = [0.3, 0.0, -0.3];
/// Extra effect of a 30-second ad (over a 15-second one) per slot (pre, mid1, mid2): long spots
/// work in the first break and hurt late in the show.
const LONG_AD_EFFECT: [f64; 3] = [-0.2, 0.2, -0.5];
/// Per device (tv, mobile, web): a small nuisance effect, the same for every ad.
const DEVICE_EFFECT: [f64; 3] = [0.1, -0.1, 0.0];
/// Category x viewer segment (all other pairs 0).
const SEGMENT_EFFECTS: [(&str, &str, f64); 8] = [
    ("gaming", "binge", 1.2),
    ("kids", "family", 1.4),
    ("finance", "casual", 0.8),
    ("travel", "lapsed", 0.9),
    ("food", "trialist", 0.7),
    ("auto", "casual", 0.4),
    ("kids", "binge", -0.6),
    ("kids", "lapsed", -0.5),
];
/// Category x the title's first genre (all other pairs 0).
const GENRE_EFFECTS: [(&str, &str, f64); 12] = [
    ("kids", "Animation", 0.8),
    ("kids", "Family", 0.8),
    ("kids", "Horror", -1.0),
    ("gaming", "Sci-Fi", 0.7),
    ("gaming", "Action", 0.7),
    ("travel", "Documentary", 0.6),
    ("travel", "Romance", 0.4),
    ("finance", "Documentary", 0.4),
    ("finance", "Drama", 0.3),
    ("food", "Comedy", 0.4),
    ("auto", "Action", 0.4),
    ("auto", "Thriller", 0.3),
];

const ADS_HEADER: [&str; 3] = ["ad_id", "category", "length_seconds"];
const IMPRESSIONS_HEADER: [&str; 11] = [
    "impression_id",
    "customer_id",
    "title_id",
    "genre",
    "viewer_segment",
    "device",
    "slot",
    "ad_id",
    "engaged",
    "propensity",
    "shown_at",
];

fn ad_id(ad: usize) -> String {
    format!("AD{:02}", ad + 1)
}

fn ad_category(ad: usize) -> usize {
    ad / LENGTHS.len()
}

fn ad_length(ad: usize) -> usize {
    ad % LENGTHS.len()
}

fn index(names: &[&str], name: &str, what: &str) -> usize {
    names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("unknown {what} {name:?}"))
}

fn ad_index(ad: &str) -> usize {
    (0..N_ADS).find(|&a| ad_id(a) == ad).unwrap_or_else(|| panic!("unknown ad {ad:?}"))
}

/// True engagement probability; arguments are indices into the name lists.
fn engagement(segment: usize, genre: usize, device: usize, slot: usize, ad: usize) -> f64 {
    let category = CATEGORIES[ad_category(ad)];
    let mut z = BASE + SLOT_EFFECT[slot] + DEVICE_EFFECT[device];
    if ad_length(ad) == 1 {
        z += LONG_AD_EFFECT[slot];
    }
    for (c, s, effect) in SEGMENT_EFFECTS {
        if c == category && s == SEGMENT_NAMES[segment] {
            z += effect;
        }
    }
    for (c, g, effect) in GENRE_EFFECTS {
        if c == category && g == GENRES[genre] {
            z += effect;
        }
    }
    sigmoid(z)
}

/// The logging policy's probability of `ad` in `slot` (rounded to 12 decimals, so that the log
/// reads 0.041666666667 and 0.541666666667, not 17 digits).
fn logging_probability(slot: usize, ad: usize) -> f64 {
    let explore = AdsTruth::EXPLORATION / N_ADS as f64;
    let p = if ad == HOUSE_AD[slot] { explore + (1.0 - AdsTruth::EXPLORATION) } else { explore };
    (p * 1e12).round() / 1e12
}

/// Draws the logging policy's ad for `slot`: uniform with probability
/// [`AdsTruth::EXPLORATION`], else the slot's house ad.
fn log_ad(rng: &mut impl Rng, slot: usize) -> usize {
    if rng.gen::<f64>() < AdsTruth::EXPLORATION {
        rng.gen_range(0..N_ADS)
    } else {
        HOUSE_AD[slot]
    }
}

/// The ground truth of the ads demo data (constants only): the ads, the true engagement
/// probability of every ad in every context, the best ad, and the logging policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdsTruth {
    _private: (),
}

impl AdsTruth {
    /// Probability that the logging policy shows a uniformly random ad instead of the house ad.
    pub const EXPLORATION: f64 = 0.5;

    pub fn new() -> Self {
        Self::default()
    }

    /// [`AdsTruth::EXPLORATION`].
    pub fn exploration(&self) -> f64 {
        Self::EXPLORATION
    }

    /// The ads as `(ad_id, category, length in seconds)`, AD01 to AD12.
    pub fn ads(&self) -> Vec<(String, String, u32)> {
        (0..N_ADS).map(|a| (ad_id(a), CATEGORIES[ad_category(a)].to_string(), LENGTHS[ad_length(a)])).collect()
    }

    /// Viewer segment names (`viewer_segment`).
    pub fn segments(&self) -> Vec<String> {
        SEGMENT_NAMES.iter().map(|s| s.to_string()).collect()
    }

    /// Genre names (`genre`, a title's first genre).
    pub fn genres(&self) -> Vec<String> {
        GENRES.iter().map(|s| s.to_string()).collect()
    }

    /// Device names (`device`).
    pub fn devices(&self) -> Vec<String> {
        DEVICES.iter().map(|s| s.to_string()).collect()
    }

    /// Break slot names (`slot`).
    pub fn slots(&self) -> Vec<String> {
        SLOTS.iter().map(|s| s.to_string()).collect()
    }

    /// The logging policy's house ad for `slot` (shown unless it explores).
    pub fn house_ad(&self, slot: &str) -> String {
        ad_id(HOUSE_AD[index(&SLOTS, slot, "slot")])
    }

    /// True probability that a viewer engages with `ad_id` in this context. Panics on unknown
    /// names.
    pub fn engagement(&self, segment: &str, genre: &str, device: &str, slot: &str, ad_id: &str) -> f64 {
        engagement(
            index(&SEGMENT_NAMES, segment, "segment"),
            index(&GENRES, genre, "genre"),
            index(&DEVICES, device, "device"),
            index(&SLOTS, slot, "slot"),
            ad_index(ad_id),
        )
    }

    /// The ad with the highest true engagement probability in this context (the first in
    /// [`AdsTruth::ads`] order on a tie).
    pub fn best_ad(&self, segment: &str, genre: &str, device: &str, slot: &str) -> String {
        let (s, g, d, sl) = (
            index(&SEGMENT_NAMES, segment, "segment"),
            index(&GENRES, genre, "genre"),
            index(&DEVICES, device, "device"),
            index(&SLOTS, slot, "slot"),
        );
        let mut best = 0;
        for a in 1..N_ADS {
            if engagement(s, g, d, sl, a) > engagement(s, g, d, sl, best) {
                best = a;
            }
        }
        ad_id(best)
    }

    /// The logging policy's probability of each ad (in [`AdsTruth::ads`] order) in `slot`.
    pub fn logging_probabilities(&self, slot: &str) -> Vec<f64> {
        let slot = index(&SLOTS, slot, "slot");
        (0..N_ADS).map(|a| logging_probability(slot, a)).collect()
    }

    /// The fixed context distribution of [`simulate_impressions`]: every (segment, genre,
    /// device, slot), segments by the demo's segment shares, genres by the demo's primary-genre
    /// weights, devices and slots uniform; probabilities sum to 1.
    pub fn contexts(&self) -> Vec<ContextWeight> {
        let seg_total: f64 = SEGMENTS.iter().map(|s| s.share).sum();
        let genre_total: f64 = GENRE_WEIGHTS.iter().sum();
        let mut out = Vec::with_capacity(SEGMENT_NAMES.len() * GENRES.len() * DEVICES.len() * SLOTS.len());
        for (s, segment) in SEGMENT_NAMES.iter().enumerate() {
            for (g, genre) in GENRES.iter().enumerate() {
                for device in DEVICES {
                    for slot in SLOTS {
                        out.push(ContextWeight {
                            segment: segment.to_string(),
                            genre: genre.to_string(),
                            device: device.to_string(),
                            slot: slot.to_string(),
                            probability: SEGMENTS[s].share / seg_total * GENRE_WEIGHTS[g]
                                / genre_total
                                / (DEVICES.len() * SLOTS.len()) as f64,
                        });
                    }
                }
            }
        }
        out
    }

    /// Exact true value (expected engagement per impression) of a policy on `contexts`:
    /// `policy(context)` gives its probability of each ad, in [`AdsTruth::ads`] order.
    pub fn policy_value(&self, contexts: &[ContextWeight], policy: impl Fn(&ContextWeight) -> Vec<f64>) -> f64 {
        let ads = self.ads();
        contexts
            .iter()
            .map(|c| {
                let pi = policy(c);
                assert_eq!(pi.len(), ads.len(), "one probability per ad");
                let v: f64 = ads
                    .iter()
                    .zip(&pi)
                    .filter(|(_, p)| **p != 0.0)
                    .map(|((id, _, _), p)| p * self.engagement(&c.segment, &c.genre, &c.device, &c.slot, id))
                    .sum();
                c.probability * v
            })
            .sum()
    }
}

/// One context of [`simulate_impressions`]' fixed distribution and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextWeight {
    pub segment: String,
    pub genre: String,
    pub device: String,
    pub slot: String,
    pub probability: f64,
}

fn ads_csv() -> Vec<u8> {
    csv_bytes(&ADS_HEADER, |w| {
        for a in 0..N_ADS {
            w.write_record([ad_id(a), CATEGORIES[ad_category(a)].to_string(), LENGTHS[ad_length(a)].to_string()])?;
        }
        Ok(())
    })
}

/// One logged impression (indices into the name lists).
struct Impression {
    age: f64,
    customer: String,
    title: String,
    genre: usize,
    segment: usize,
    device: usize,
    slot: usize,
}

/// Draws the logging policy's ad and the engagement for each context, and writes the log
/// (impression ids in the given order).
fn impressions_csv(rng: &mut impl Rng, impressions: &[Impression]) -> Vec<u8> {
    csv_bytes(&IMPRESSIONS_HEADER, |w| {
        for (i, imp) in impressions.iter().enumerate() {
            let ad = log_ad(rng, imp.slot);
            let p = engagement(imp.segment, imp.genre, imp.device, imp.slot, ad);
            let engaged = rng.gen::<f64>() < p;
            w.write_record([
                format!("I{:06}", i + 1).as_str(),
                &imp.customer,
                &imp.title,
                GENRES[imp.genre],
                SEGMENT_NAMES[imp.segment],
                DEVICES[imp.device],
                SLOTS[imp.slot],
                &ad_id(ad),
                if engaged { "1" } else { "0" },
                &format!("{}", logging_probability(imp.slot, ad)),
                &timestamp(imp.age),
            ])?;
        }
        Ok(())
    })
}

/// `(ads.csv, impressions.csv)` for the demo: twenty impressions per customer on average (each
/// for a uniformly random customer), in a title drawn as the customer picks titles to watch (popularity x taste
/// match), after the customer's last watch and signup and within the last 90 days.
pub(crate) fn generate(cfg: &DemoConfig, customers: &[Customer], catalog: &Catalog) -> [(String, Vec<u8>); 2] {
    let mut rng = rng_for(cfg, STREAM);
    let titles = &catalog.titles;
    let n = IMPRESSIONS_PER_CUSTOMER * customers.len();
    let mut counts = vec![0usize; customers.len()];
    for _ in 0..n {
        counts[rng.gen_range(0..customers.len())] += 1;
    }
    let mut impressions = Vec::with_capacity(n);
    let mut cumulative = Vec::with_capacity(titles.len());
    for (c, &k) in customers.iter().zip(&counts).filter(|(_, &k)| k > 0) {
        cumulative.clear();
        let mut total = 0.0;
        for t in titles {
            total += t.popularity * (SELECT_TASTE * dot(&c.taste, &t.factors)).exp();
            cumulative.push(total);
        }
        let newest = (c.days_since_last_watch as f64).min(WINDOW_DAYS);
        // Between the sign-up day (as in viewing.csv) and the last watch, at most 90 days ago.
        let oldest = (c.signup_days_ago as f64 + 0.999).clamp(newest, WINDOW_DAYS);
        for _ in 0..k {
            let u = rng.gen::<f64>() * total;
            let t = &titles[cumulative.partition_point(|&x| x <= u).min(titles.len() - 1)];
            impressions.push(Impression {
                age: newest + (oldest - newest) * rng.gen::<f64>(),
                customer: c.id.clone(),
                title: t.id.clone(),
                genre: t.genres[0],
                segment: c.segment,
                device: rng.gen_range(0..DEVICES.len()),
                slot: rng.gen_range(0..SLOTS.len()),
            });
        }
    }
    // Oldest first, so impression ids follow time.
    impressions.sort_by(|a, b| b.age.total_cmp(&a.age));
    let log = impressions_csv(&mut rng, &impressions);
    [("ads.csv".to_string(), ads_csv()), ("impressions.csv".to_string(), log)]
}

/// A standalone ad log of `rounds` impressions with the demo's columns and logging policy:
/// contexts drawn independently from the fixed distribution [`AdsTruth::contexts`] (also
/// returned), synthetic customer ids (`S000001`, ...) and title id `T-sim`, timestamps spread
/// over the last 90 days in order. Returns `(ads.csv, impressions.csv, context distribution)`;
/// deterministic for the seed.
pub fn simulate_impressions(rounds: usize, seed: u64) -> (Vec<u8>, Vec<u8>, Vec<ContextWeight>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(SIM_STREAM);
    let segment_pick = WeightedIndex::new(SEGMENTS.iter().map(|s| s.share)).expect("positive weights");
    let genre_pick = WeightedIndex::new(GENRE_WEIGHTS).expect("positive weights");
    let impressions: Vec<Impression> = (0..rounds)
        .map(|i| Impression {
            age: WINDOW_DAYS * (1.0 - (i as f64 + rng.gen::<f64>()) / rounds as f64),
            customer: format!("S{:06}", i + 1),
            title: "T-sim".to_string(),
            segment: segment_pick.sample(&mut rng),
            genre: genre_pick.sample(&mut rng),
            device: rng.gen_range(0..DEVICES.len()),
            slot: rng.gen_range(0..SLOTS.len()),
        })
        .collect();
    let log = impressions_csv(&mut rng, &impressions);
    (ads_csv(), log, AdsTruth::new().contexts())
}
