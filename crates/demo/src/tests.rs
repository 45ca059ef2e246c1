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
    assert_eq!(names, ["customers.csv", "titles.csv", "ratings.csv", "viewing.csv", "posts.csv"]);
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
    let small = tables(&DemoConfig { customers: 100, seed: 1 });
    assert_eq!(small["titles"].rows.len(), 60);
    assert_eq!(small["customers"].rows.len(), 100);
    let empty = tables(&DemoConfig { customers: 0, seed: 1 });
    assert_eq!(empty["customers"].rows.len(), 0);
    assert_eq!(empty["titles"].rows.len(), 60);
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

mod structure;
