//! `marquee init`'s drafting on the real public exports in `MARQUEE_DATA_DIR` (scripts/test sets
//! it): each draft is a valid spec with the use cases the files support and the roles they need.
//! Under CI (`CI` set) a missing data folder fails the test rather than skipping it.

use marquee_pipeline::draft::draft_spec;
use marquee_pipeline::spec::UseCase;
use std::path::PathBuf;

fn data_dir() -> Option<PathBuf> {
    let Some(d) = std::env::var_os("MARQUEE_DATA_DIR").map(PathBuf::from) else {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        assert!(!ci, "MARQUEE_DATA_DIR is not set, and CI requires the tests on the real datasets to run");
        eprintln!("skipping: MARQUEE_DATA_DIR is not set");
        return None;
    };
    Some(d)
}

#[test]
fn drafts_of_the_public_exports_enable_what_their_files_support() {
    let Some(dir) = data_dir() else { return };

    // Ratings + movies: recommend with content features from the movies file.
    let ml = draft_spec(&dir.join("movielens_100k")).unwrap();
    assert_eq!(ml.spec.use_cases(), [UseCase::Recommend]);
    let r = ml.spec.recommend.as_ref().unwrap();
    assert_eq!((r.user.as_str(), r.item.as_str(), r.rating.as_str()), ("user_id", "item_id", "rating"));
    assert_eq!(r.titles.as_deref(), Some("movies"));
    assert_eq!(r.title_name.as_deref(), Some("movie_title"));
    assert!(r.title_features.contains(&"genres".to_string()), "{:?}", r.title_features);
    assert_eq!(ml.spec.table("movies").unwrap().list, ["genres"]);
    assert_eq!(ml.spec.table("ratings").unwrap().timestamp, ["timestamp"], "Unix seconds");

    // Telco: a churn label Yes/No and no customer id (rows numbered), segments on its continuous columns.
    let telco = draft_spec(&dir.join("telco_churn_ibm")).unwrap();
    assert_eq!(telco.spec.use_cases(), [UseCase::Segment, UseCase::Churn]);
    let c = telco.spec.churn.as_ref().unwrap();
    assert_eq!((c.label.as_str(), c.positive.as_str()), ("churn", "Yes"));
    let t = telco.spec.table("wa_churn").unwrap();
    assert!(t.generate_id && t.optional.contains(&"total_charges".to_string()), "{t:?}");
    assert!(c.categorical.contains(&"contract".to_string()) && c.numeric.contains(&"tenure".to_string()), "{c:?}");

    // Review sets sorted by label (rt) and gzip-compressed (IMDB): sentiment with 1 positive.
    for folder in ["rt_polarity_8530", "imdb_reviews_25k"] {
        let d = draft_spec(&dir.join(folder)).unwrap();
        assert_eq!(d.spec.use_cases(), [UseCase::Sentiment], "{folder}");
        let s = d.spec.sentiment.as_ref().unwrap();
        assert_eq!((s.text.as_str(), s.positive.as_str(), s.negative.as_str()), ("text", "1", "0"), "{folder}");
    }

    // A folder with nothing to model says so.
    let err = draft_spec(&dir.join("vega_movies_boxoffice")).unwrap_err().to_string();
    assert!(err.contains("no use case fits these files"), "{err}");
}
