//! Synthetic media & entertainment demo dataset with planted structure, so that every use case
//! of the default spec ([`DEMO_SPEC`]) has something real to find:
//!
//! - **segments**: five latent customer groups (binge watchers, casual weekenders, new trialists,
//!   lapsed viewers, family multi-device households) with clearly different engagement and value;
//! - **churn**: a logistic ground truth over recency, payment failures, support tickets, tenure,
//!   watch time, plan and country, plus noise (a linear model can reach an AUC near 0.87, not 1);
//! - **tastes**: four latent taste factors tied to genres; customers rate titles they are likely
//!   to pick (popularity x taste match) and rate them by bias + taste match + noise;
//! - **sentiment**: templated posts with negations ("not great", "never boring"), label noise,
//!   unlabelled posts, and a few titles/brands/talent whose sentiment rises or falls over the last
//!   eight weeks (see [`planted_trends`]);
//! - **ads**: an ad catalogue and a log of ad impressions in pre-roll and mid-roll break slots with
//!   planted category x segment, category x genre and length x slot engagement effects, logged by a
//!   policy with 50% uniform exploration (recorded propensities), and a known best policy (see
//!   [`AdsTruth`]).
//!
//! Generation is deterministic for a seed (ChaCha8, no wall clock): the dataset's "today" is
//! [`TODAY`] and every event lies in the 18 months before it. Signup dates go back further (they
//! follow tenure).

mod ads;
mod words;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Poisson, StandardNormal};
use std::collections::HashSet;

use words::*;

pub use ads::{simulate_impressions, AdsTruth, ContextWeight};

pub const DEMO_SPEC: &str = include_str!("demo_spec.toml");

/// The dataset's fixed "today" (year, month, day).
pub const TODAY: (i32, u32, u32) = (2026, 10, 31);
/// Events (ratings, viewing, posts) lie within this many days before [`TODAY`].
const EVENT_WINDOW_DAYS: f64 = 548.0;
/// Sentiment of planted entities moves over this many days before [`TODAY`].
const TREND_DAYS: f64 = 56.0;
const N_FACTORS: usize = 4;
/// Scale of title factors (taste . factors has sd ~0.5 * this).
const TASTE_SCALE: f64 = 1.7;
/// How strongly taste match drives which titles a customer watches (log-weight per unit match).
const SELECT_TASTE: f64 = 1.5;
/// Average taste match of the titles a customer picks (selection favours matches): ratings are
/// centred on it so that the mean rating stays near 3.5 rather than piling up at 5.
const MATCH_CENTRE: f64 = 0.7;
const N_TALENT: usize = 80;
/// Talent reserved for the planted trending titles (two per title).
const N_PLANTED_TITLES_PER_DIRECTION: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    pub customers: usize,
    pub seed: u64,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { customers: 5000, seed: 42 }
    }
}

/// The most titles the demo catalogue holds: a large streaming service's catalogue (one
/// country's Netflix lists 6,000-7,000), reached at 150,000 customers. Past it the catalogue
/// stops growing with the customers, as a real one does, so recommendation's users x titles
/// grows linearly.
pub const MAX_TITLES: usize = 10_000;

impl DemoConfig {
    pub fn n_titles(&self) -> usize {
        (self.customers / 15).clamp(60, MAX_TITLES)
    }
}

/// The demo tables as `(file name, CSV bytes)`: customers.csv, titles.csv, ratings.csv,
/// viewing.csv, posts.csv, ads.csv, impressions.csv (header row + RFC 4180 CSV).
pub fn generate(cfg: &DemoConfig) -> Vec<(String, Vec<u8>)> {
    let catalog = Catalog::generate(cfg);
    let customers = generate_customers(cfg);
    let (ratings, viewing) = generate_activity(cfg, &customers, &catalog);
    let posts = generate_posts(cfg, &catalog);
    let [ads, impressions] = ads::generate(cfg, &customers, &catalog);
    vec![
        ("customers.csv".into(), customers_csv(&customers)),
        ("titles.csv".into(), catalog.csv()),
        ("ratings.csv".into(), ratings),
        ("viewing.csv".into(), viewing),
        ("posts.csv".into(), posts),
        ads,
        impressions,
    ]
}

/// The demo tables that [`split_into_parts`] writes as folders of parts: the ones that grow with
/// the customers (the catalogs of titles and ads stay one file each, as exports usually do).
pub const PARTED_TABLES: [&str; 5] = ["customers", "ratings", "viewing", "posts", "impressions"];

/// The demo tables of [`generate`] with each of [`PARTED_TABLES`] split into `parts` part files
/// (`viewing/part-00000.csv`, ...; each with the header row, records split evenly and never
/// inside a quoted field), and the demo spec naming those folders (`file = "viewing/"`). Same
/// rows in the same order: a run on the parts gives the run on the whole files.
pub fn split_into_parts(files: Vec<(String, Vec<u8>)>, parts: usize) -> (Vec<(String, Vec<u8>)>, String) {
    let parts = parts.max(1);
    let mut spec = DEMO_SPEC.to_string();
    let mut out = Vec::new();
    for (name, bytes) in files {
        let table = name.trim_end_matches(".csv");
        if !PARTED_TABLES.contains(&table) {
            out.push((name, bytes));
            continue;
        }
        spec = spec.replace(&format!("file = \"{name}\""), &format!("file = \"{table}/\""));
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
        let header = reader.byte_headers().expect("generated CSV has a header").clone();
        let records: Vec<csv::ByteRecord> =
            reader.byte_records().map(|r| r.expect("generated CSV is well formed")).collect();
        for p in 0..parts {
            let (from, to) = (p * records.len() / parts, (p + 1) * records.len() / parts);
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_byte_record(&header).expect("writing to memory");
            for r in &records[from..to] {
                w.write_byte_record(r).expect("writing to memory");
            }
            out.push((format!("{table}/part-{p:05}.csv"), w.into_inner().expect("writing to memory")));
        }
    }
    (out, spec)
}

/// Entities whose post sentiment was planted to rise or fall over the last eight weeks, as
/// `(kind, entity, "rising" | "falling")` with kind `title` (a title id), `brand` or `talent`.
/// Each trending brand trends through its two listed titles (about half of its recent posts);
/// the brand's other titles, and every other entity, are stable. The listed talent appear only
/// in the listed titles.
pub fn planted_trends(cfg: &DemoConfig) -> Vec<(String, String, &'static str)> {
    let catalog = Catalog::generate(cfg);
    let mut out = Vec::new();
    for (dir, name) in [(Trend::Rising, "rising"), (Trend::Falling, "falling")] {
        let brand = catalog.planted_brand(dir);
        out.push(("brand".to_string(), BRANDS[brand].to_string(), name));
        for t in catalog.titles.iter().filter(|t| t.trend == dir) {
            out.push(("title".to_string(), t.id.clone(), name));
        }
        for t in catalog.titles.iter().filter(|t| t.trend == dir) {
            for &p in &t.talent {
                out.push(("talent".to_string(), catalog.talent[p].clone(), name));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn rng_for(cfg: &DemoConfig, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    rng.set_stream(stream);
    rng
}

fn normal(rng: &mut impl Rng, mean: f64, sd: f64) -> f64 {
    let z: f64 = StandardNormal.sample(rng);
    mean + sd * z
}

fn poisson(rng: &mut impl Rng, lambda: f64) -> u32 {
    Poisson::new(lambda.max(1e-6)).map(|p| p.sample(rng) as u32).unwrap_or(0)
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn today() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(TODAY.0, TODAY.1, TODAY.2).expect("valid date").and_hms_opt(0, 0, 0).expect("midnight")
}

/// RFC 3339 timestamp `age_days` before [`TODAY`] (midnight), to the second.
fn timestamp(age_days: f64) -> String {
    let secs = (age_days.max(0.0) * 86_400.0).round() as i64;
    let t = today() - Duration::seconds(secs);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second())
}

fn date(age_days: i64) -> String {
    (today() - Duration::days(age_days)).format("%Y-%m-%d").to_string()
}

fn dot(a: &[f64; N_FACTORS], b: &[f64; N_FACTORS]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Genre loadings centred on the average genre, so taste . factors averages ~0.
fn centred_loadings() -> [[f64; N_FACTORS]; 12] {
    let mut mean = [0.0; N_FACTORS];
    for g in GENRE_FACTORS.iter() {
        for f in 0..N_FACTORS {
            mean[f] += g[f] / GENRE_FACTORS.len() as f64;
        }
    }
    let mut out = GENRE_FACTORS;
    for g in out.iter_mut() {
        for f in 0..N_FACTORS {
            g[f] -= mean[f];
        }
    }
    out
}

fn pick<T: Copy>(rng: &mut impl Rng, items: &[T]) -> T {
    items[rng.gen_range(0..items.len())]
}

fn csv_bytes(header: &[&str], rows: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(1 << 20));
    w.write_record(header).expect("writing to memory");
    rows(&mut w).expect("writing to memory");
    w.into_inner().expect("flushing to memory")
}

// ---------------------------------------------------------------------------------------------
// Titles

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trend {
    Stable,
    Rising,
    Falling,
}

struct Title {
    id: String,
    name: String,
    genres: Vec<usize>,
    talent: Vec<usize>,
    brand: usize,
    release_year: i32,
    description: String,
    popularity: f64,
    bias: f64,
    factors: [f64; N_FACTORS],
    /// Log-odds of a positive post about this title (before any planted trend).
    post_logit: f64,
    trend: Trend,
}

struct Catalog {
    titles: Vec<Title>,
    talent: Vec<String>,
    /// (rising brand, falling brand)
    planted_brands: (usize, usize),
}

impl Catalog {
    fn planted_brand(&self, dir: Trend) -> usize {
        if dir == Trend::Rising {
            self.planted_brands.0
        } else {
            self.planted_brands.1
        }
    }

    fn generate(cfg: &DemoConfig) -> Catalog {
        let mut rng = rng_for(cfg, 1);
        let n = cfg.n_titles();
        let loadings = centred_loadings();

        // Talent: unique invented names; the first 4 * N_PLANTED are reserved for planted titles.
        let mut talent = Vec::with_capacity(N_TALENT);
        let mut seen = HashSet::new();
        while talent.len() < N_TALENT {
            let name = format!("{} {}", pick(&mut rng, &FIRST_NAMES), pick(&mut rng, &LAST_NAMES));
            if seen.insert(name.clone()) {
                talent.push(name);
            }
        }
        let n_reserved = 4 * N_PLANTED_TITLES_PER_DIRECTION;
        // Star power: a few talent appear in many titles. Each studio has a roster it prefers.
        let talent_weight: Vec<f64> = (0..N_TALENT)
            .map(|i| if i < n_reserved { 0.0 } else { 1.0 / (1.0 + (i - n_reserved) as f64 / 12.0) })
            .collect();
        let mut roster: Vec<Vec<usize>> = vec![Vec::new(); BRANDS.len()];
        for i in n_reserved..N_TALENT {
            roster[rng.gen_range(0..BRANDS.len())].push(i);
        }

        let genre_pick = WeightedIndex::new(GENRE_WEIGHTS).expect("positive weights");
        let brand_weights = [1.4, 1.2, 1.2, 0.8, 1.0, 1.0, 0.8, 0.6];
        let brand_pick = WeightedIndex::new(brand_weights).expect("positive weights");
        let talent_pick = WeightedIndex::new(&talent_weight).expect("positive weights");
        let mut names = HashSet::new();
        let mut titles = Vec::with_capacity(n);
        for i in 0..n {
            let primary = genre_pick.sample(&mut rng);
            let mut genres = vec![primary];
            let extra = [0, 1, 1, 2][rng.gen_range(0..4)];
            while genres.len() < 1 + extra {
                // Secondary genres lean towards ones sharing a taste factor with the primary.
                let g = genre_pick.sample(&mut rng);
                let affinity = dot(&GENRE_FACTORS[primary], &GENRE_FACTORS[g]);
                if !genres.contains(&g) && rng.gen::<f64>() < 0.15 + affinity {
                    genres.push(g);
                }
            }
            let brand = if genres.contains(&9) && rng.gen::<f64>() < 0.7 { 3 } else { brand_pick.sample(&mut rng) };
            let mut cast = Vec::new();
            let n_cast = rng.gen_range(2..=4);
            while cast.len() < n_cast {
                let p = if rng.gen::<f64>() < 0.6 && !roster[brand].is_empty() {
                    pick(&mut rng, &roster[brand])
                } else {
                    talent_pick.sample(&mut rng)
                };
                if !cast.contains(&p) {
                    cast.push(p);
                }
            }
            let age = (-(1.0 - rng.gen::<f64>()).ln() * 7.0).floor() as i32;
            let release_year = TODAY.0 - age.min(45);
            let name = title_name(&mut rng, &mut names);
            let description = description(&mut rng, &genres);
            let popularity = normal(&mut rng, 0.0, 0.6).exp();
            let bias = normal(&mut rng, 0.0, 0.15) + 0.25 * popularity.ln();
            let mut factors = [0.0; N_FACTORS];
            for &g in &genres {
                for f in 0..N_FACTORS {
                    factors[f] += loadings[g][f] / genres.len() as f64;
                }
            }
            for f in factors.iter_mut() {
                *f = TASTE_SCALE * *f + normal(&mut rng, 0.0, 0.2);
            }
            let post_logit = 0.5 + 2.5 * bias + normal(&mut rng, 0.0, 0.3);
            titles.push(Title {
                id: format!("T{:04}", i + 1),
                name,
                genres,
                talent: cast,
                brand,
                release_year,
                description,
                popularity,
                bias,
                factors,
                post_logit,
                trend: Trend::Stable,
            });
        }

        // Planted trends: one rising and one falling studio, each with two trending new releases
        // carrying their own (exclusive) stars. Mid-sized studios, so that the two trending titles
        // carry about half of the studio's recent buzz.
        let mut brands = [4, 5, 6, 7];
        brands.shuffle(&mut rng);
        let planted_brands = (brands[0], brands[1]);
        let mut reserved = 0..n_reserved;
        for (dir, brand) in [(Trend::Rising, planted_brands.0), (Trend::Falling, planted_brands.1)] {
            let mut candidates: Vec<usize> = (0..n).filter(|&i| titles[i].brand == brand).collect();
            candidates.shuffle(&mut rng);
            // Small catalogs may lack titles of the brand: re-brand random stable titles.
            while candidates.len() < N_PLANTED_TITLES_PER_DIRECTION {
                let i = rng.gen_range(0..n);
                if titles[i].trend == Trend::Stable && !candidates.contains(&i) {
                    titles[i].brand = brand;
                    candidates.push(i);
                }
            }
            for &i in candidates.iter().take(N_PLANTED_TITLES_PER_DIRECTION) {
                let t = &mut titles[i];
                t.trend = dir;
                t.release_year = TODAY.0 - 1;
                t.post_logit = 0.3;
                t.popularity = t.popularity.max(2.0);
                t.talent = vec![reserved.next().expect("reserved"), reserved.next().expect("reserved")];
            }
        }
        Catalog { titles, talent, planted_brands }
    }

    fn csv(&self) -> Vec<u8> {
        let header = ["title_id", "name", "genres", "talent", "brand", "release_year", "description"];
        csv_bytes(&header, |w| {
            for t in &self.titles {
                let genres: Vec<&str> = t.genres.iter().map(|&g| GENRES[g]).collect();
                let talent: Vec<&str> = t.talent.iter().map(|&p| self.talent[p].as_str()).collect();
                w.write_record([
                    t.id.as_str(),
                    &t.name,
                    &genres.join("|"),
                    &talent.join("|"),
                    BRANDS[t.brand],
                    &t.release_year.to_string(),
                    &t.description,
                ])?;
            }
            Ok(())
        })
    }
}

fn title_name(rng: &mut impl Rng, used: &mut HashSet<String>) -> String {
    loop {
        let adj = pick(rng, &TITLE_ADJ);
        let noun = pick(rng, &TITLE_NOUN);
        let other = pick(rng, &TITLE_NOUN);
        let name = match rng.gen_range(0..5) {
            0 => format!("The {adj} {noun}"),
            1 => format!("{adj} {noun}"),
            2 if noun != other => format!("{noun} of the {other}"),
            3 => format!("The {noun}: {adj} {other}"),
            _ => format!("{adj} {noun} {}", ["II", "Returns", "Rising", "Chronicles"][rng.gen_range(0..4)]),
        };
        if used.insert(name.clone()) {
            return name;
        }
    }
}

fn description(rng: &mut impl Rng, genres: &[usize]) -> String {
    let v = &GENRE_VOCAB[genres[0]];
    let w = &GENRE_VOCAB[pick(rng, genres)];
    let mut s = format!(
        "A {} story about a {} who {} in {}.",
        pick(rng, v.adjectives),
        pick(rng, v.nouns),
        pick(rng, v.plots),
        pick(rng, w.settings),
    );
    if rng.gen::<f64>() < 0.7 {
        s.push_str(&format!(
            " {} {}, {} and {}.",
            capitalise(pick(rng, w.adjectives)),
            pick(rng, w.nouns),
            pick(rng, v.nouns),
            pick(rng, w.nouns)
        ));
    }
    s
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Customers

const COUNTRIES: [&str; 6] = ["US", "GB", "CA", "DE", "BR", "IN"];
const COUNTRY_WEIGHTS: [f64; 6] = [0.35, 0.15, 0.10, 0.12, 0.14, 0.14];
const COUNTRY_PRICE: [f64; 6] = [1.0, 0.95, 0.98, 0.92, 0.8, 0.75];
const COUNTRY_CHURN: [f64; 6] = [0.0, 0.0, -0.1, -0.3, 0.4, 0.5];
const PLANS: [&str; 4] = ["basic", "standard", "premium", "family"];
const PLAN_PRICE: [f64; 4] = [7.99, 13.99, 19.99, 24.99];
const PLAN_CHURN: [f64; 4] = [0.5, 0.0, -0.2, -0.4];

/// A latent customer group and its feature distributions.
struct Segment {
    share: f64,
    watch_hours: (f64, f64),
    sessions: (f64, f64),
    /// Tenure in months: (mean, sd, min, max).
    tenure: (f64, f64, i64, i64),
    plan_weights: [f64; 4],
    devices: (u32, u32),
    /// Days since last watch: (mean, sd, min, max).
    recency: (f64, f64, i64, i64),
    /// Genres (indices) this group favours.
    favourite_genres: &'static [usize],
    ratings: (usize, usize),
    age: (f64, f64),
}

const SEGMENTS: [Segment; 5] = [
    // Binge watchers
    Segment {
        share: 0.24,
        watch_hours: (62.0, 8.0),
        sessions: (13.0, 2.5),
        tenure: (22.0, 6.0, 4, 72),
        plan_weights: [0.0, 0.25, 0.75, 0.0],
        devices: (2, 3),
        recency: (1.0, 1.0, 0, 3),
        favourite_genres: &[2, 3, 4, 5, 8, 10],
        ratings: (25, 40),
        age: (31.0, 9.0),
    },
    // Casual weekenders
    Segment {
        share: 0.30,
        watch_hours: (12.0, 4.0),
        sessions: (2.5, 0.8),
        tenure: (28.0, 6.0, 6, 72),
        plan_weights: [0.65, 0.35, 0.0, 0.0],
        devices: (1, 2),
        recency: (9.0, 3.0, 3, 16),
        favourite_genres: &[0, 1, 7, 6, 10],
        ratings: (10, 20),
        age: (42.0, 13.0),
    },
    // New trialists
    Segment {
        share: 0.16,
        watch_hours: (22.0, 7.0),
        sessions: (6.0, 1.5),
        tenure: (1.0, 1.0, 0, 2),
        plan_weights: [0.85, 0.15, 0.0, 0.0],
        devices: (1, 2),
        recency: (2.0, 2.0, 0, 7),
        favourite_genres: &[1, 2, 4, 8, 0],
        ratings: (10, 15),
        age: (29.0, 9.0),
    },
    // Lapsed
    Segment {
        share: 0.12,
        watch_hours: (2.5, 1.5),
        sessions: (0.3, 0.3),
        tenure: (26.0, 8.0, 4, 72),
        plan_weights: [0.5, 0.5, 0.0, 0.0],
        devices: (1, 2),
        recency: (45.0, 12.0, 21, 90),
        favourite_genres: &[0, 6, 3, 7, 10],
        ratings: (10, 18),
        age: (45.0, 14.0),
    },
    // Family multi-device households
    Segment {
        share: 0.18,
        watch_hours: (40.0, 6.0),
        sessions: (9.0, 2.0),
        tenure: (42.0, 8.0, 6, 72),
        plan_weights: [0.0, 0.0, 0.2, 0.8],
        devices: (4, 6),
        recency: (1.0, 1.0, 0, 3),
        favourite_genres: &[9, 11, 1, 5, 7],
        ratings: (20, 35),
        age: (40.0, 8.0),
    },
];

struct Customer {
    id: String,
    segment: usize,
    age: i64,
    country: usize,
    plan: usize,
    signup_days_ago: i64,
    tenure_months: i64,
    monthly_fee: f64,
    sessions_per_week: f64,
    watch_hours_month: f64,
    devices: u32,
    support_tickets: u32,
    payment_failures: u32,
    days_since_last_watch: i64,
    favorite_genre: usize,
    churned: bool,
    taste: [f64; N_FACTORS],
    bias: f64,
    n_ratings: usize,
}

fn generate_customers(cfg: &DemoConfig) -> Vec<Customer> {
    let mut rng = rng_for(cfg, 2);
    let loadings = centred_loadings();
    let segment_pick = WeightedIndex::new(SEGMENTS.iter().map(|s| s.share)).expect("positive weights");
    let country_pick = WeightedIndex::new(COUNTRY_WEIGHTS).expect("positive weights");
    let genre_pick = WeightedIndex::new(GENRE_WEIGHTS).expect("positive weights");
    let mut customers = Vec::with_capacity(cfg.customers);
    let mut churn_logit = Vec::with_capacity(cfg.customers);
    for i in 0..cfg.customers {
        let segment = segment_pick.sample(&mut rng);
        let s = &SEGMENTS[segment];
        let clamp_i = |x: f64, lo: i64, hi: i64| (x.round() as i64).clamp(lo, hi);
        let country = country_pick.sample(&mut rng);
        let plan = WeightedIndex::new(s.plan_weights).expect("positive weights").sample(&mut rng);
        let tenure_months = clamp_i(normal(&mut rng, s.tenure.0, s.tenure.1), s.tenure.2, s.tenure.3);
        let signup_days_ago = tenure_months * 30 + rng.gen_range(0..30);
        let recency =
            clamp_i(normal(&mut rng, s.recency.0, s.recency.1), s.recency.2, s.recency.3).min(signup_days_ago);
        let watch_hours_month = (normal(&mut rng, s.watch_hours.0, s.watch_hours.1).max(0.0) * 10.0).round() / 10.0;
        let sessions_per_week = (normal(&mut rng, s.sessions.0, s.sessions.1).max(0.0) * 10.0).round() / 10.0;
        let devices = rng.gen_range(s.devices.0..=s.devices.1);
        let monthly_fee = (PLAN_PRICE[plan] * COUNTRY_PRICE[country] * 100.0).round() / 100.0;
        let payment_failures = poisson(&mut rng, if country >= 4 { 0.45 } else { 0.25 });
        let support_tickets = poisson(&mut rng, 0.5 + 0.15 * devices as f64);
        let age = clamp_i(normal(&mut rng, s.age.0, s.age.1), 16, 85);
        let favorite_genre =
            if rng.gen::<f64>() < 0.7 { pick(&mut rng, s.favourite_genres) } else { genre_pick.sample(&mut rng) };
        let second = genre_pick.sample(&mut rng);
        let mut taste = [0.0; N_FACTORS];
        for f in 0..N_FACTORS {
            taste[f] = 1.3 * loadings[favorite_genre][f] + 0.5 * loadings[second][f] + normal(&mut rng, 0.0, 0.35);
        }
        let bias = normal(&mut rng, 0.0, 0.35);
        let n_ratings = rng.gen_range(s.ratings.0..=s.ratings.1);

        // Churn ground truth (the intercept is set below to hit the target rate).
        let z = 0.055 * recency as f64 + 0.9 * payment_failures as f64 + 0.5 * support_tickets as f64
            - 0.055 * tenure_months as f64
            - 0.045 * watch_hours_month
            + PLAN_CHURN[plan]
            + COUNTRY_CHURN[country]
            + normal(&mut rng, 0.0, 0.4);
        churn_logit.push(z);
        customers.push(Customer {
            id: format!("C{:05}", i + 1),
            segment,
            age,
            country,
            plan,
            signup_days_ago,
            tenure_months,
            monthly_fee,
            sessions_per_week,
            watch_hours_month,
            devices,
            support_tickets,
            payment_failures,
            days_since_last_watch: recency,
            favorite_genre,
            churned: false,
            taste,
            bias,
            n_ratings,
        });
    }
    // Intercept by bisection so the expected churn rate is 22% whatever the seed and size.
    let (mut lo, mut hi) = (-20.0, 20.0);
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        let rate = churn_logit.iter().map(|z| sigmoid(z + mid)).sum::<f64>() / churn_logit.len().max(1) as f64;
        if rate < 0.22 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    for (c, z) in customers.iter_mut().zip(&churn_logit) {
        c.churned = rng.gen::<f64>() < sigmoid(z + lo);
    }
    customers
}

fn customers_csv(customers: &[Customer]) -> Vec<u8> {
    let header = [
        "customer_id",
        "age",
        "country",
        "plan",
        "signup_date",
        "tenure_months",
        "monthly_fee",
        "sessions_per_week",
        "watch_hours_month",
        "devices",
        "support_tickets",
        "payment_failures",
        "days_since_last_watch",
        "favorite_genre",
        "churned",
    ];
    csv_bytes(&header, |w| {
        for c in customers {
            w.write_record([
                c.id.as_str(),
                &c.age.to_string(),
                COUNTRIES[c.country],
                PLANS[c.plan],
                &date(c.signup_days_ago),
                &c.tenure_months.to_string(),
                &format!("{:.2}", c.monthly_fee),
                &format!("{:.1}", c.sessions_per_week),
                &format!("{:.1}", c.watch_hours_month),
                &c.devices.to_string(),
                &c.support_tickets.to_string(),
                &c.payment_failures.to_string(),
                &c.days_since_last_watch.to_string(),
                GENRES[c.favorite_genre],
                if c.churned { "yes" } else { "no" },
            ])?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Ratings and viewing

/// Returns (ratings.csv, viewing.csv).
fn generate_activity(cfg: &DemoConfig, customers: &[Customer], catalog: &Catalog) -> (Vec<u8>, Vec<u8>) {
    let mut rng = rng_for(cfg, 3);
    let titles = &catalog.titles;
    let n_titles = titles.len();
    let mut ratings = csv::Writer::from_writer(Vec::with_capacity(4 << 20));
    let mut viewing = csv::Writer::from_writer(Vec::with_capacity(4 << 20));
    ratings.write_record(["customer_id", "title_id", "rating", "rated_at"]).expect("memory");
    viewing.write_record(["customer_id", "title_id", "minutes", "watched_at"]).expect("memory");
    let mut keys: Vec<(f64, usize)> = Vec::with_capacity(n_titles);
    for c in customers {
        // Weighted sampling without replacement (Efraimidis-Spirakis): smallest -ln(u)/w.
        keys.clear();
        let matches: Vec<f64> = titles.iter().map(|t| dot(&c.taste, &t.factors)).collect();
        for (i, t) in titles.iter().enumerate() {
            let w = t.popularity * (SELECT_TASTE * matches[i]).exp();
            let u: f64 = rng.gen::<f64>().max(1e-300);
            keys.push((-u.ln() / w, i));
        }
        let n_rated = c.n_ratings.min(n_titles);
        let n_extra = (n_rated as f64 * rng.gen_range(0.1..0.5)).round() as usize;
        let n_watched = (n_rated + n_extra).min(n_titles);
        if n_watched < n_titles {
            keys.select_nth_unstable_by(n_watched, |a, b| a.0.total_cmp(&b.0));
        }
        let chosen = &mut keys[..n_watched];
        chosen.sort_by(|a, b| a.0.total_cmp(&b.0));

        // Activity window: from signup (or the start of the event window) to the last watch.
        let newest = c.days_since_last_watch as f64;
        let oldest = (c.signup_days_ago as f64).min(EVENT_WINDOW_DAYS).max(newest);
        let mut ages: Vec<f64> = (0..n_watched).map(|_| rng.gen_range(newest..=oldest + 0.999)).collect();
        if let Some(latest) = ages.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *latest = newest + rng.gen_range(0.0..0.999);
        }
        for (k, &(_, ti)) in chosen.iter().enumerate() {
            let t = &titles[ti];
            let age = ages[k].min(EVENT_WINDOW_DAYS);
            if k < n_rated {
                let raw = 3.4 + c.bias + t.bias + (matches[ti] - MATCH_CENTRE) + normal(&mut rng, 0.0, 0.6);
                let rating = (raw.round() as i64).clamp(1, 5);
                let minutes =
                    (20.0 + 28.0 * (rating - 1) as f64 + normal(&mut rng, 0.0, 20.0)).round().clamp(5.0, 180.0);
                let rated_age = (age - rng.gen_range(0.01..2.0)).max(0.0);
                ratings
                    .write_record([c.id.as_str(), t.id.as_str(), &rating.to_string(), &timestamp(rated_age)])
                    .expect("memory");
                viewing
                    .write_record([c.id.as_str(), t.id.as_str(), &format!("{minutes}"), &timestamp(age)])
                    .expect("memory");
            } else {
                let minutes = (rng.gen::<f64>().powi(2) * 90.0 + 5.0).round();
                viewing
                    .write_record([c.id.as_str(), t.id.as_str(), &format!("{minutes}"), &timestamp(age)])
                    .expect("memory");
            }
        }
    }
    (ratings.into_inner().expect("memory"), viewing.into_inner().expect("memory"))
}

// ---------------------------------------------------------------------------------------------
// Posts

fn generate_posts(cfg: &DemoConfig, catalog: &Catalog) -> Vec<u8> {
    let mut rng = rng_for(cfg, 4);
    let titles = &catalog.titles;
    let n_posts = (cfg.customers as f64 * 1.5).round() as usize;
    let popularity = WeightedIndex::new(titles.iter().map(|t| t.popularity)).expect("positive weights");
    let planted: Vec<usize> = (0..titles.len()).filter(|&i| titles[i].trend != Trend::Stable).collect();

    struct Post {
        age: f64,
        title: usize,
        talent: Vec<usize>,
        text: String,
        label: &'static str,
    }
    let mut posts = Vec::with_capacity(n_posts);
    for _ in 0..n_posts {
        // Buzz is recent: over half of all posts fall in the trend window.
        let recent = rng.gen::<f64>() < 0.55;
        let age = if recent { rng.gen_range(0.0..TREND_DAYS) } else { rng.gen_range(TREND_DAYS..EVENT_WINDOW_DAYS) };
        let ti = if recent && !planted.is_empty() && rng.gen::<f64>() < 0.28 {
            pick(&mut rng, &planted)
        } else {
            popularity.sample(&mut rng)
        };
        let t = &titles[ti];
        let mut talent = t.talent.clone();
        talent.shuffle(&mut rng);
        talent.truncate(if rng.gen::<bool>() { 1 } else { 2 });

        let progress = (1.0 - age / TREND_DAYS).clamp(0.0, 1.0);
        let shift = match t.trend {
            Trend::Stable => 0.0,
            Trend::Rising => -2.2 + 4.4 * progress,
            Trend::Falling => 2.2 - 4.4 * progress,
        };
        let positive = rng.gen::<f64>() < sigmoid(t.post_logit + shift);
        let text = post_text(&mut rng, positive, t, &catalog.talent[talent[0]]);
        let label = if rng.gen::<f64>() < 0.25 {
            ""
        } else if (rng.gen::<f64>() < 0.05) != positive {
            "positive"
        } else {
            "negative"
        };
        posts.push(Post { age, title: ti, talent, text, label });
    }
    // Oldest first, so post ids follow time.
    posts.sort_by(|a, b| b.age.total_cmp(&a.age));
    let header = ["post_id", "posted_at", "title_id", "brand", "talent", "text", "sentiment"];
    csv_bytes(&header, |w| {
        for (i, p) in posts.iter().enumerate() {
            let t = &titles[p.title];
            let talent: Vec<&str> = p.talent.iter().map(|&x| catalog.talent[x].as_str()).collect();
            w.write_record([
                format!("P{:06}", i + 1).as_str(),
                &timestamp(p.age),
                &t.id,
                BRANDS[t.brand],
                &talent.join("|"),
                &p.text,
                p.label,
            ])?;
        }
        Ok(())
    })
}

fn clause(rng: &mut impl Rng, positive: bool) -> &'static str {
    let negated = rng.gen::<f64>() < 0.35;
    match (positive, negated) {
        (true, false) => pick(rng, &POSITIVE),
        (true, true) => pick(rng, &POSITIVE_NEGATED),
        (false, false) => pick(rng, &NEGATIVE),
        (false, true) => pick(rng, &NEGATIVE_NEGATED),
    }
}

/// A post: opener with the title, one or two clauses of the post's polarity (about a third of
/// them negated forms), sometimes a milder clause of the other polarity, a talent remark, filler.
fn post_text(rng: &mut impl Rng, positive: bool, title: &Title, talent: &str) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(5);
    match rng.gen_range(0..3) {
        0 => parts.push(format!("{} {}.", pick(rng, &OPENERS), title.name)),
        1 => parts.push(format!("{}:", title.name)),
        _ => {}
    }
    let first = clause(rng, positive);
    parts.push(format!("{}{}", capitalise(first), if rng.gen::<f64>() < 0.3 { "!" } else { "." }));
    if rng.gen::<f64>() < 0.5 {
        parts.push(format!("{}.", clause(rng, positive)));
    }
    if rng.gen::<f64>() < 0.15 {
        parts.push(format!("Though {}.", clause(rng, !positive)));
    }
    if rng.gen::<f64>() < 0.4 {
        let remark = if positive { pick(rng, &TALENT_POSITIVE) } else { pick(rng, &TALENT_NEGATIVE) };
        parts.push(format!("{talent} {remark}."));
    }
    if rng.gen::<f64>() < 0.6 {
        parts.push(capitalise(pick(rng, &FILLER)));
    }
    if rng.gen::<f64>() < 0.3 {
        let tag: String = title.name.chars().filter(|c| c.is_alphanumeric()).collect();
        parts.push(format!("#{tag}"));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests;
