use super::*;
use marquee_pipeline::spec::{ColumnKind, Spec};
use std::collections::{HashMap, HashSet};

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn col(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"))
    }
    fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let c = self.col(name);
        self.rows.iter().map(move |r| r[c].as_str())
    }
    fn nums(&self, name: &str) -> Vec<f64> {
        self.values(name).map(|v| v.parse::<f64>().unwrap()).collect()
    }
}

fn parse(bytes: &[u8]) -> Table {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
    Table { header, rows }
}

fn tables(cfg: &DemoConfig) -> HashMap<String, Table> {
    generate(cfg).into_iter().map(|(name, bytes)| (name.trim_end_matches(".csv").to_string(), parse(&bytes))).collect()
}

fn parse_timestamp(v: &str) -> Option<i64> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(v).ok().map(|d| d.timestamp())
}

#[test]
fn demo_is_deterministic_for_a_seed() {
    let cfg = DemoConfig { customers: 400, seed: 7 };
    let a = generate(&cfg);
    assert_eq!(a, generate(&cfg));
    let b = generate(&DemoConfig { seed: 8, ..cfg.clone() });
    assert_ne!(a, b);
    assert_eq!(planted_trends(&cfg), planted_trends(&cfg));
    let names: Vec<_> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["customers.csv", "titles.csv", "ratings.csv", "viewing.csv", "posts.csv", "ads.csv", "impressions.csv"]
    );
}

#[test]
fn demo_row_counts_are_plausible() {
    let t = tables(&DemoConfig::default());
    assert_eq!(t["customers"].rows.len(), 5000);
    assert_eq!(t["titles"].rows.len(), 333);
    let ratings = t["ratings"].rows.len();
    assert!((80_000..=130_000).contains(&ratings), "{ratings} ratings");
    let viewing = t["viewing"].rows.len();
    assert!(viewing > ratings && viewing < ratings * 3 / 2, "{viewing} viewing rows for {ratings} ratings");
    let posts = t["posts"].rows.len();
    assert_eq!(posts, 7500);
    assert_eq!(t["ads"].rows.len(), 12);
    assert_eq!(t["impressions"].rows.len(), 100_000);
    let small = tables(&DemoConfig { customers: 100, seed: 1 });
    assert_eq!(small["titles"].rows.len(), 60);
    assert_eq!(small["customers"].rows.len(), 100);
    let empty = tables(&DemoConfig { customers: 0, seed: 1 });
    assert_eq!(empty["customers"].rows.len(), 0);
    assert_eq!(empty["titles"].rows.len(), 60);
    assert_eq!(empty["impressions"].rows.len(), 0);
}

/// Every file has the spec's columns, and every row would pass the ingest quality gate.
#[test]
fn demo_files_parse_and_match_the_spec() {
    let spec = Spec::from_toml(DEMO_SPEC, "demo_spec.toml").unwrap();
    let t = tables(&DemoConfig::default());
    let now = today().and_utc().timestamp();
    let oldest_event = now - (EVENT_WINDOW_DAYS as i64 + 1) * 86_400;
    for (name, ts) in &spec.tables {
        let table = &t[ts.file.trim_end_matches(".csv")];
        assert_eq!(format!("{name}.csv"), ts.file);
        for (col, kind) in ts.columns() {
            let c = table.col(&col);
            let mut ids = HashSet::new();
            for row in &table.rows {
                assert_eq!(row.len(), table.header.len());
                let v = row[c].as_str();
                if v.is_empty() {
                    assert!(ts.optional.contains(&col), "{name}.{col} is empty");
                    continue;
                }
                assert_eq!(v.trim(), v, "{name}.{col} has padding");
                match kind {
                    ColumnKind::Id => assert!(ids.insert(v.to_string()), "duplicate {name}.{col} {v}"),
                    ColumnKind::Numeric => {
                        let x: f64 = v.parse().unwrap_or_else(|_| panic!("{name}.{col} = {v:?}"));
                        assert!(x.is_finite() && x >= 0.0);
                        if let Some([lo, hi]) = ts.ranges.get(&col) {
                            assert!(x >= *lo && x <= *hi, "{name}.{col} = {x} outside [{lo}, {hi}]");
                        }
                    }
                    ColumnKind::Timestamp => {
                        let s = parse_timestamp(v).unwrap_or_else(|| panic!("{name}.{col} = {v:?}"));
                        assert!(s <= now, "{name}.{col} = {v} is after the dataset's today");
                        if name != "customers" {
                            assert!(s >= oldest_event, "{name}.{col} = {v} is older than 18 months");
                        }
                    }
                    ColumnKind::List => assert!(v.split('|').all(|p| !p.trim().is_empty()), "{name}.{col} = {v:?}"),
                    ColumnKind::Categorical | ColumnKind::Text => {}
                }
            }
        }
    }
    // Exact headers, in order.
    assert_eq!(t["titles"].header, ["title_id", "name", "genres", "talent", "brand", "release_year", "description"]);
    assert_eq!(t["ratings"].header, ["customer_id", "title_id", "rating", "rated_at"]);
    assert_eq!(t["viewing"].header, ["customer_id", "title_id", "minutes", "watched_at"]);
    assert_eq!(t["posts"].header, ["post_id", "posted_at", "title_id", "brand", "talent", "text", "sentiment"]);
    assert_eq!(t["ads"].header, ["ad_id", "category", "length_seconds"]);
    assert_eq!(
        t["impressions"].header,
        [
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
            "shown_at"
        ]
    );
    assert_eq!(t["customers"].header.len(), 15);
    assert_eq!(t["customers"].values("customer_id").next(), Some("C00001"));
    assert_eq!(t["titles"].values("title_id").next(), Some("T0001"));
    assert_eq!(t["posts"].values("post_id").next(), Some("P000001"));
}

#[test]
fn demo_churn_rate_is_realistic() {
    for seed in [42, 1, 2] {
        let t = tables(&DemoConfig { customers: 3000, seed });
        let labels: Vec<&str> = t["customers"].values("churned").collect();
        assert!(labels.iter().all(|l| *l == "yes" || *l == "no"));
        let rate = labels.iter().filter(|l| **l == "yes").count() as f64 / labels.len() as f64;
        assert!((0.15..=0.30).contains(&rate), "seed {seed}: churn rate {rate}");
    }
}

#[test]
fn demo_ratings_are_valid_and_reference_known_titles() {
    let t = tables(&DemoConfig::default());
    let titles: HashSet<&str> = t["titles"].values("title_id").collect();
    let customers: HashSet<&str> = t["customers"].values("customer_id").collect();
    for r in t["ratings"].values("rating") {
        let x: i64 = r.parse().unwrap();
        assert!((1..=5).contains(&x), "rating {r}");
    }
    for table in ["ratings", "viewing", "posts"] {
        for id in t[table].values("title_id") {
            assert!(titles.contains(id), "{table}: unknown title {id}");
        }
    }
    for table in ["ratings", "viewing"] {
        for id in t[table].values("customer_id") {
            assert!(customers.contains(id), "{table}: unknown customer {id}");
        }
    }
    // One rating per (customer, title), and every rated title was watched.
    let pairs = |table: &str| -> HashSet<(String, String)> {
        let (c, ti) = (t[table].col("customer_id"), t[table].col("title_id"));
        t[table].rows.iter().map(|r| (r[c].clone(), r[ti].clone())).collect()
    };
    let rated = pairs("ratings");
    assert_eq!(rated.len(), t["ratings"].rows.len());
    assert!(rated.is_subset(&pairs("viewing")));
    for m in t["viewing"].nums("minutes") {
        assert!((5.0..=180.0).contains(&m));
    }
    // Posts: brand and talent belong to the title.
    let tt = &t["titles"];
    let info: HashMap<&str, (&str, &str)> = tt
        .rows
        .iter()
        .map(|r| (r[tt.col("title_id")].as_str(), (r[tt.col("brand")].as_str(), r[tt.col("talent")].as_str())))
        .collect();
    let p = &t["posts"];
    let mut labelled = 0;
    for r in &p.rows {
        let (brand, talent) = info[r[p.col("title_id")].as_str()];
        assert_eq!(r[p.col("brand")], brand);
        let cast: Vec<&str> = talent.split('|').collect();
        let mentioned: Vec<&str> = r[p.col("talent")].split('|').collect();
        assert!((1..=2).contains(&mentioned.len()) && mentioned.iter().all(|m| cast.contains(m)));
        let s = r[p.col("sentiment")].as_str();
        assert!(["positive", "negative", ""].contains(&s));
        labelled += usize::from(!s.is_empty());
    }
    let share = labelled as f64 / p.rows.len() as f64;
    assert!((0.70..=0.80).contains(&share), "labelled share {share}");
}

#[test]
fn demo_planted_trends_name_real_entities() {
    let cfg = DemoConfig::default();
    let planted = planted_trends(&cfg);
    let t = tables(&cfg);
    let count = |kind: &str, dir: &str| planted.iter().filter(|p| p.0 == kind && p.2 == dir).count();
    for dir in ["rising", "falling"] {
        assert_eq!(count("brand", dir), 1);
        assert_eq!(count("title", dir), 2);
        assert_eq!(count("talent", dir), 4);
    }
    let titles: HashSet<&str> = t["titles"].values("title_id").collect();
    let brands: HashSet<&str> = t["titles"].values("brand").collect();
    let talent: HashSet<&str> = t["titles"].values("talent").flat_map(|v| v.split('|')).collect();
    for (kind, entity, _) in &planted {
        let known = match kind.as_str() {
            "title" => titles.contains(entity.as_str()),
            "brand" => brands.contains(entity.as_str()),
            "talent" => talent.contains(entity.as_str()),
            _ => false,
        };
        assert!(known, "{kind} {entity}");
    }
}

#[test]
fn demo_default_config_is_5000_customers_seed_42() {
    assert_eq!(DemoConfig::default(), DemoConfig { customers: 5000, seed: 42 });
    assert!(DEMO_SPEC.contains("[tables.customers]"));
}

#[test]
fn demo_ads_catalogue_has_six_categories_in_two_lengths() {
    let t = tables(&DemoConfig::default());
    let truth = AdsTruth::new();
    let a = &t["ads"];
    let rows: Vec<(String, String, u32)> =
        a.rows.iter().map(|r| (r[0].clone(), r[1].clone(), r[2].parse().unwrap())).collect();
    assert_eq!(rows, truth.ads());
    let ids: Vec<String> = (1..=12).map(|i| format!("AD{i:02}")).collect();
    assert_eq!(a.values("ad_id").collect::<Vec<_>>(), ids);
    let categories: HashSet<&str> = a.values("category").collect();
    assert_eq!(categories.len(), 6);
    for c in categories {
        let mut lengths: Vec<u32> = rows.iter().filter(|r| r.1 == c).map(|r| r.2).collect();
        lengths.sort();
        assert_eq!(lengths, [15, 30], "{c}");
    }
}

#[test]
fn demo_impressions_reference_known_customers_and_titles() {
    let t = tables(&DemoConfig::default());
    let truth = AdsTruth::new();
    let customers: HashSet<&str> = t["customers"].values("customer_id").collect();
    let tt = &t["titles"];
    let first_genre: HashMap<&str, &str> = tt
        .rows
        .iter()
        .map(|r| (r[tt.col("title_id")].as_str(), r[tt.col("genres")].split('|').next().unwrap()))
        .collect();
    let ads: HashSet<String> = truth.ads().into_iter().map(|a| a.0).collect();
    let (segments, devices, slots) = (truth.segments(), truth.devices(), truth.slots());
    let im = &t["impressions"];
    let mut segment_of: HashMap<&str, &str> = HashMap::new();
    let now = today().and_utc().timestamp();
    let mut last = i64::MIN;
    for r in &im.rows {
        let customer = r[im.col("customer_id")].as_str();
        let title = r[im.col("title_id")].as_str();
        assert!(customers.contains(customer), "unknown customer {customer}");
        assert_eq!(r[im.col("genre")], *first_genre.get(title).unwrap_or_else(|| panic!("unknown title {title}")));
        let segment = r[im.col("viewer_segment")].as_str();
        assert!(segments.iter().any(|s| s == segment), "segment {segment}");
        assert_eq!(*segment_of.entry(customer).or_insert(segment), segment, "{customer} changes segment");
        assert!(devices.contains(&r[im.col("device")]) && slots.contains(&r[im.col("slot")]));
        assert!(ads.contains(&r[im.col("ad_id")]));
        let shown = parse_timestamp(&r[im.col("shown_at")]).unwrap();
        assert!(shown <= now && shown >= now - 90 * 86_400, "{}", r[im.col("shown_at")]);
        assert!(shown >= last, "impressions are in time order");
        last = shown;
    }
    // About twenty impressions per customer; every segment, device and slot is seen.
    assert!(segment_of.len() > 4950, "{} customers with impressions", segment_of.len());
    for (col, names) in [("viewer_segment", &segments), ("device", &devices), ("slot", &slots)] {
        let seen: HashSet<&str> = im.values(col).collect();
        assert_eq!(seen.len(), names.len(), "{col}");
    }
    // The segments follow the latent groups: family viewers are mostly on family plans.
    let cu = &t["customers"];
    let plan: HashMap<&str, &str> =
        cu.rows.iter().map(|r| (r[cu.col("customer_id")].as_str(), r[cu.col("plan")].as_str())).collect();
    assert!(segment_of.iter().filter(|(_, s)| **s == "family").all(|(c, _)| ["premium", "family"].contains(&plan[c])));
}

/// The logged propensities are the logging policy's, the policy explores as stated, and the
/// engagement rate is realistic.
#[test]
fn demo_impressions_follow_the_logging_policy() {
    let truth = AdsTruth::new();
    let ids: Vec<String> = truth.ads().into_iter().map(|a| a.0).collect();
    for slot in truth.slots() {
        let p = truth.logging_probabilities(&slot);
        assert!(p.iter().all(|&x| x > 0.0 && x <= 1.0));
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9, "rounded to 12 decimals");
        let house = ids.iter().position(|a| *a == truth.house_ad(&slot)).unwrap();
        for (a, &x) in p.iter().enumerate() {
            let expected = if a == house { 0.5 + 0.5 / 12.0 } else { 0.5 / 12.0 };
            assert!((x - expected).abs() < 1e-12, "{slot}: {x} for {}", ids[a]);
        }
    }
    assert_eq!(truth.exploration(), 0.5);
    assert_eq!(AdsTruth::EXPLORATION, 0.5);
    for seed in [42, 3] {
        let t = tables(&DemoConfig { customers: 5000, seed });
        let im = &t["impressions"];
        let (slot, ad, prop) = (im.col("slot"), im.col("ad_id"), im.col("propensity"));
        let mut non_house = 0;
        for r in &im.rows {
            let a = ids.iter().position(|x| *x == r[ad]).unwrap();
            let p: f64 = r[prop].parse().unwrap();
            assert_eq!(p, truth.logging_probabilities(&r[slot])[a], "{r:?}");
            non_house += usize::from(r[ad] != truth.house_ad(&r[slot]));
        }
        let written: HashSet<&str> = im.values("propensity").collect();
        assert_eq!(written, HashSet::from(["0.041666666667", "0.541666666667"]));
        let share = non_house as f64 / im.rows.len() as f64;
        assert!((share - 0.5 * 11.0 / 12.0).abs() < 0.02, "seed {seed}: non-house share {share}");
        let engaged = im.nums("engaged");
        assert!(engaged.iter().all(|&e| e == 0.0 || e == 1.0));
        let rate = engaged.iter().sum::<f64>() / engaged.len() as f64;
        eprintln!("seed {seed}: engagement rate {rate:.4}, non-house share {share:.4}");
        assert!((0.04..=0.14).contains(&rate), "seed {seed}: engagement rate {rate}");
    }
}

/// The planted effects make the best ad depend on the context, and the best policy is far better
/// than the house policy on the simulator's context distribution.
#[test]
fn ads_best_policy_beats_the_house_policy() {
    let truth = AdsTruth::new();
    let (_, _, contexts) = simulate_impressions(10, 1);
    assert_eq!(contexts, truth.contexts());
    assert_eq!(contexts.len(), 5 * 12 * 3 * 3);
    assert!((contexts.iter().map(|c| c.probability).sum::<f64>() - 1.0).abs() < 1e-12);
    let ids: Vec<String> = truth.ads().into_iter().map(|a| a.0).collect();
    let one_hot = |ad: &str| -> Vec<f64> { ids.iter().map(|a| if a == ad { 1.0 } else { 0.0 }).collect() };
    let house = truth.policy_value(&contexts, |c| one_hot(&truth.house_ad(&c.slot)));
    let uniform = truth.policy_value(&contexts, |_| vec![1.0 / 12.0; 12]);
    let logging = truth.policy_value(&contexts, |c| truth.logging_probabilities(&c.slot));
    let best = truth.policy_value(&contexts, |c| one_hot(&truth.best_ad(&c.segment, &c.genre, &c.device, &c.slot)));
    eprintln!("true values: house {house:.4}, uniform {uniform:.4}, logging {logging:.4}, best {best:.4}");
    assert!(best >= 1.5 * house, "best {best} vs house {house}");
    assert!((logging - (0.5 * house + 0.5 * uniform)).abs() < 1e-12);
    // The best ad is the argmax of the true engagement.
    let mut best_ads = HashSet::new();
    for c in &contexts {
        let b = truth.best_ad(&c.segment, &c.genre, &c.device, &c.slot);
        let eb = truth.engagement(&c.segment, &c.genre, &c.device, &c.slot, &b);
        assert!(ids.iter().all(|a| truth.engagement(&c.segment, &c.genre, &c.device, &c.slot, a) <= eb));
        best_ads.insert(b);
    }
    assert!(best_ads.len() >= 6, "best ads {best_ads:?}");
    // The best ad differs by segment, genre and slot.
    let best = |s: &str, g: &str, sl: &str| truth.best_ad(s, g, "tv", sl);
    assert_eq!(best("binge", "Drama", "pre"), "AD01");
    assert_eq!(best("family", "Drama", "mid1"), "AD04");
    assert_eq!(best("family", "Drama", "mid2"), "AD03");
    assert_eq!(best("casual", "Drama", "pre"), "AD05");
    assert_eq!(best("trialist", "Comedy", "pre"), "AD11");
    assert_eq!(best("trialist", "Animation", "pre"), "AD03");
    assert_eq!(best("lapsed", "Documentary", "pre"), "AD07");
    // The nuisance device shifts every ad alike.
    assert_eq!(best("binge", "Sci-Fi", "mid2"), truth.best_ad("binge", "Sci-Fi", "mobile", "mid2"));
    assert!(
        truth.engagement("binge", "Sci-Fi", "tv", "pre", "AD01")
            > truth.engagement("binge", "Sci-Fi", "mobile", "pre", "AD01")
    );
}

/// The standalone log: same columns and logging policy, deterministic, fast, and coherent (the
/// inverse-propensity estimate of the uniform policy lands on its true value).
#[test]
fn ads_simulated_log_is_deterministic_and_coherent() {
    let truth = AdsTruth::new();
    let start = std::time::Instant::now();
    let (ads, log, contexts) = simulate_impressions(5000, 7);
    eprintln!("simulate_impressions(5000): {:?}", start.elapsed());
    assert_eq!((ads.clone(), log.clone(), contexts.clone()), simulate_impressions(5000, 7));
    assert_ne!(log, simulate_impressions(5000, 8).1);
    assert_eq!(ads, generate(&DemoConfig { customers: 10, seed: 1 })[5].1);
    let im = parse(&log);
    assert_eq!(im.header, parse(&generate(&DemoConfig { customers: 10, seed: 1 })[6].1).header);
    assert_eq!(im.rows.len(), 5000);
    assert_eq!(im.values("customer_id").next(), Some("S000001"));
    let ids: Vec<String> = truth.ads().into_iter().map(|a| a.0).collect();
    let (slot, ad, prop) = (im.col("slot"), im.col("ad_id"), im.col("propensity"));
    for r in &im.rows {
        let a = ids.iter().position(|x| *x == r[ad]).unwrap();
        assert_eq!(r[prop].parse::<f64>().unwrap(), truth.logging_probabilities(&r[slot])[a]);
        assert!(parse_timestamp(&r[im.col("shown_at")]).is_some());
    }
    let uniform = truth.policy_value(&contexts, |_| vec![1.0 / 12.0; 12]);
    let logging = truth.policy_value(&contexts, |c| truth.logging_probabilities(&c.slot));
    let (_, big, _) = simulate_impressions(40_000, 11);
    let big = parse(&big);
    let engaged = big.nums("engaged");
    let props = big.nums("propensity");
    let n = engaged.len() as f64;
    let rate = engaged.iter().sum::<f64>() / n;
    let ips = engaged.iter().zip(&props).map(|(r, p)| r * (1.0 / 12.0) / p).sum::<f64>() / n;
    eprintln!("logged rate {rate:.4} (true {logging:.4}); IPS of uniform {ips:.4} (true {uniform:.4})");
    assert!((rate - logging).abs() < 0.01, "{rate} vs {logging}");
    assert!((ips - uniform).abs() < 0.01, "{ips} vs {uniform}");
}

mod structure;

/// Parts hold the whole file's records in order, each part with the header, and the spec names
/// the folders.
#[test]
fn split_into_parts_keeps_every_record_in_order() {
    let files = generate(&DemoConfig { customers: 300, seed: 7 });
    let (parted, spec_text) = split_into_parts(files.clone(), 4);
    let spec = Spec::from_toml(&spec_text, "parts.toml").unwrap();
    for (name, bytes) in &files {
        let table = name.trim_end_matches(".csv");
        let records = |b: &[u8]| {
            let mut r = csv::Reader::from_reader(b);
            let header = r.headers().unwrap().clone();
            (header, r.records().map(Result::unwrap).collect::<Vec<_>>())
        };
        let (header, whole) = records(bytes);
        if !PARTED_TABLES.contains(&table) {
            assert_eq!(spec.tables[table].file, *name);
            continue;
        }
        assert_eq!(spec.tables[table].file, format!("{table}/"));
        let mut joined = Vec::new();
        let pieces: Vec<_> = parted.iter().filter(|(n, _)| n.starts_with(&format!("{table}/part-"))).collect();
        assert_eq!(pieces.len(), 4, "{table}");
        for (_, b) in pieces {
            let (h, rows) = records(b);
            assert_eq!(h, header);
            joined.extend(rows);
        }
        assert_eq!(joined, whole, "{table}");
    }
}

#[test]
fn catalogue_grows_with_the_customers_up_to_a_real_services_size() {
    let titles = |customers| DemoConfig { customers, seed: 1 }.n_titles();
    assert_eq!(titles(100), 60);
    assert_eq!(titles(100_000), 6_666);
    assert_eq!(titles(150_000), MAX_TITLES);
    assert_eq!(titles(10_000_000), MAX_TITLES);
}
