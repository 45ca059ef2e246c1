//! Recommendations: collaborative filtering by ALS on explicit ratings (with biases), evaluated
//! by RMSE and by precision@10 / NDCG@10 against a popularity baseline; plus content-based
//! similar titles from title attributes (tags one-hot with idf, descriptions TF-IDF), or from
//! co-ratings when the export has no titles table.

use marquee_ml::als::{AlsModel, AlsParams, Rating};
use marquee_ml::metrics;
use marquee_ml::similarity::top_k_cosine;
use marquee_ml::sparse::CsrMatrix;
use marquee_ml::text::TfidfParams;
use marquee_ml::Predict;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

use super::common::{from_json, to_json, Criterion, CriterionKind, DeployParams, Evaluation, Op, PrimaryMetric};
use super::{Details, Files, ItemSink, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::{Column, Frame};
use crate::keys::score;
use crate::spec::{ColumnKind, RankingKind, RecommendSpec, Spec, UseCaseSection};
use crate::store::Item;

/// Users with fewer ratings than this stay wholly in training (nothing meaningful to hold out).
const MIN_RATINGS_TO_HOLD_OUT: usize = 5;
/// Cut-off of the ranking metrics.
pub const RANK_K: usize = 10;
/// Weight of description words relative to tags in the content vectors.
const TEXT_WEIGHT: f32 = 0.5;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendModel {
    pub user_ids: Vec<String>,
    pub item_ids: Vec<String>,
    pub als: AlsModel,
    /// Item indices by training rating count, most rated first.
    pub popularity: Vec<u32>,
    /// Title id -> most similar titles by content, best first.
    pub similar: BTreeMap<String, Vec<(String, f32)>>,
    pub title_names: BTreeMap<String, String>,
    pub fingerprint: String,
    /// How top-N lists are ranked (see [`RankingKind`]).
    #[serde(default)]
    pub ranking: RankingKind,
    /// For `item_knn` ranking: per item index, the items most often rated by the same users
    /// (cosine over binary user vectors), best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub co_neighbours: Vec<Vec<(u32, f32)>>,
}

/// What recommendation's evaluation reports besides its criteria.
/// Every field but `rmse` may be absent (read as empty), so partial documents stay readable;
/// `rmse` tells the use cases' details apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendDetails {
    #[serde(default)]
    pub test_ratings: usize,
    pub rmse: f64,
    /// RMSE of predicting every rating as the training mean.
    #[serde(default)]
    pub rmse_global_mean: f64,
    /// Test users with at least one relevant rating (the ranking metrics' population).
    #[serde(default)]
    pub ranking_users: usize,
    #[serde(default)]
    pub precision_at_10: f64,
    #[serde(default)]
    pub ndcg_at_10: f64,
    #[serde(default)]
    pub popularity_precision_at_10: f64,
    #[serde(default)]
    pub popularity_ndcg_at_10: f64,
    /// Test ratings per rating value.
    #[serde(default)]
    pub test_rating_distribution: BTreeMap<String, usize>,
}

/// Recommendation: ALS on explicit ratings plus content-based similar titles.
pub struct Recommend;

impl UseCase for Recommend {
    fn id(&self) -> crate::spec::UseCase {
        crate::spec::UseCase::Recommend
    }
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection> {
        spec.recommend.as_ref().map(|s| s as &dyn UseCaseSection)
    }
    fn needed_tables(&self, spec: &Spec) -> Vec<String> {
        spec.recommend
            .iter()
            .flat_map(|r| [Some(r.ratings.clone()), r.titles.clone(), r.viewing.clone()])
            .flatten()
            .collect()
    }
    /// The titles: content-based similarity is fitted on their attributes.
    fn training_tables(&self, spec: &Spec) -> Vec<String> {
        spec.recommend.iter().filter_map(|r| r.titles.clone()).collect()
    }
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files> {
        let r = spec_of(spec)?;
        let ratings = tables.get(&r.ratings)?;
        let (train, test) =
            per_user_split(&ratings.col(&r.user)?.to_strs(), spec.pipeline.test_fraction, spec.pipeline.seed);
        split_files(r, ratings, &train, &test)
    }
    /// [`UseCase::prepare`] on a given split: `train` / `test` are row indices of the ratings table (e.g. the
    /// folds of a published evaluation protocol).
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
        let r = spec_of(spec)?;
        split_files(r, tables.get(&r.ratings)?, train, test)
    }
    fn train(&self, spec: &Spec, files: &Files, tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let r = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        // With a titles table, every title is an item (unrated ones get content neighbours).
        let titles = match (&r.titles, &r.title_id) {
            (Some(t), Some(id)) => Some((tables.get(t)?, id)),
            _ => None,
        };
        let empty = Column::new();
        let title_ids: &Column = match &titles {
            Some((frame, id)) => frame.col(id)?,
            None => &empty,
        };
        let user_ids = sorted_unique(train.col(&r.user)?.iter());
        let item_ids = sorted_unique(train.col(&r.item)?.iter().chain(title_ids.iter()));
        let (ui, ii) = (index_of(&user_ids), index_of(&item_ids));
        let values = train.numeric(&r.rating)?;
        let ratings: Vec<Rating> = train
            .col(&r.user)?
            .iter()
            .zip(train.col(&r.item)?)
            .zip(&values)
            .map(|((u, i), &v)| Rating { user: ui[u], item: ii[i], value: v as f32 })
            .collect();
        let als = AlsParams { rank: r.rank, iterations: r.iterations, lambda: r.lambda, seed: spec.pipeline.seed }
            .fit_with_scaling(&ratings, user_ids.len(), item_ids.len(), r.regularisation.into())?;

        let mut counts = vec![0u32; item_ids.len()];
        ratings.iter().for_each(|x| counts[x.item as usize] += 1);
        let mut popularity: Vec<u32> = (0..item_ids.len() as u32).collect();
        popularity.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));

        let similar = match &titles {
            // Content-based: titles alike in their attributes.
            Some((frame, _)) => {
                let neighbours = top_k_cosine(&content_matrix(r, spec, frame)?, r.similar_n);
                title_ids
                    .iter()
                    .zip(neighbours)
                    .map(|(id, nb)| {
                        (id.to_string(), nb.into_iter().map(|(j, s)| (title_ids[j as usize].to_string(), s)).collect())
                    })
                    .collect()
            }
            // Ratings only: titles rated by the same users (cosine of their rater sets).
            None => co_rating_neighbours(&ratings, item_ids.len(), r.similar_n)
                .into_iter()
                .enumerate()
                .filter(|(_, nb)| !nb.is_empty())
                .map(|(i, nb)| {
                    (item_ids[i].clone(), nb.into_iter().map(|(j, s)| (item_ids[j as usize].clone(), s)).collect())
                })
                .collect(),
        };
        let title_names = match (&titles, &r.title_name) {
            (Some((frame, _)), Some(col)) => {
                title_ids.iter().map(str::to_string).zip(frame.col(col)?.iter().map(str::to_string)).collect()
            }
            _ => BTreeMap::new(),
        };
        let co_neighbours = match r.ranking {
            RankingKind::Als => Vec::new(),
            RankingKind::ItemKnn => co_rating_neighbours(&ratings, item_ids.len(), r.knn_neighbours),
        };
        let model = RecommendModel {
            user_ids,
            item_ids,
            als,
            popularity,
            similar,
            title_names,
            fingerprint: fingerprint.to_string(),
            ranking: r.ranking,
            co_neighbours,
        };
        Ok(to_json(&model))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let r = spec_of(spec)?;
        let model: RecommendModel = from_json(model_bytes, "recommend model")?;
        let train = files.frame("train.csv")?;
        let test = files.frame("test.csv")?;
        let (ui, ii) = (index_of(&model.user_ids), index_of(&model.item_ids));

        let actual = test.numeric(&r.rating)?;
        let (tu, ti) = (test.col(&r.user)?, test.col(&r.item)?);
        let predicted: Vec<f64> = tu
            .iter()
            .zip(ti)
            .map(|(u, i)| model.als.predict((ui.get(u).copied(), ii.get(i).copied())) as f64)
            .collect();
        let rmse = metrics::rmse(&predicted, &actual)?;
        let mean_only = vec![model.als.global_mean as f64; actual.len()];
        let rmse_global_mean = metrics::rmse(&mean_only, &actual)?;

        let seen = seen_by_user(&model, &[(&train, &r.user, &r.item)])?;
        let mut relevant: BTreeMap<u32, HashSet<u32>> = BTreeMap::new();
        for ((u, i), &v) in tu.iter().zip(ti).zip(&actual) {
            if v >= r.relevant_rating {
                if let (Some(&u), Some(&i)) = (ui.get(u), ii.get(i)) {
                    relevant.entry(u).or_default().insert(i);
                }
            }
        }
        let empty = HashSet::new();
        let users: Vec<u32> = relevant.keys().copied().collect();
        let histories: Vec<&HashSet<u32>> = users.iter().map(|u| seen.get(u).unwrap_or(&empty)).collect();
        let ranked = model.top_n_many(&users, RANK_K, &histories);
        let (mut p_als, mut n_als, mut p_pop, mut n_pop) = (0.0, 0.0, 0.0, 0.0);
        for ((rel, exclude), recs) in relevant.values().zip(histories).zip(ranked) {
            let recs: Vec<u32> = recs.into_iter().map(|x| x.0).collect();
            let pop = model.popular(RANK_K, exclude);
            p_als += metrics::precision_at_k(&recs, rel, RANK_K);
            n_als += metrics::ndcg_at_k(&recs, rel, RANK_K);
            p_pop += metrics::precision_at_k(&pop, rel, RANK_K);
            n_pop += metrics::ndcg_at_k(&pop, rel, RANK_K);
        }
        let users = relevant.len().max(1) as f64;
        let (p_als, n_als, p_pop, n_pop) = (p_als / users, n_als / users, p_pop / users, n_pop / users);

        let mut criteria = vec![
            Criterion::check(CriterionKind::Technical, "RMSE vs global-mean baseline", rmse, Op::Lt, rmse_global_mean),
            Criterion::check(CriterionKind::Business, "RMSE", rmse, Op::Le, r.criteria.max_rmse)
                .relax("recommend.criteria.max_rmse"),
        ];
        if r.criteria.beat_popularity {
            criteria.push(Criterion::check(
                CriterionKind::Business,
                "precision@10 vs popularity",
                p_als,
                Op::Gt,
                p_pop,
            )
            .next("the most popular titles rank as well: try recommend.ranking = \"item_knn\", or set recommend.criteria.beat_popularity = false"));
        }
        let mut counts = BTreeMap::new();
        for v in &actual {
            *counts.entry(format!("{v}")).or_insert(0usize) += 1;
        }
        Ok(Evaluation {
            primary: PrimaryMetric { name: "rmse".into(), value: rmse, higher_is_better: false },
            criteria,
            details: Details::Recommend(RecommendDetails {
                test_ratings: actual.len(),
                rmse,
                rmse_global_mean,
                ranking_users: relevant.len(),
                precision_at_10: p_als,
                ndcg_at_10: n_als,
                popularity_precision_at_10: p_pop,
                popularity_ndcg_at_10: n_pop,
                test_rating_distribution: counts,
            }),
            deploy_params: BTreeMap::new(),
            scores: crate::drift::Distribution::numeric(&predicted),
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
        let model: RecommendModel = from_json(model_bytes, "recommend model")?;
        let name = |id: &str| model.title_names.get(id).cloned().unwrap_or_default();
        let seen = Histories::of(spec, &model, tables)?;
        let users: Vec<u32> = (0..model.user_ids.len() as u32).collect();
        // A block of users' lists at a time: the items of every user at once would be the
        // deployment's largest allocation (~20 KB of JSON values a user).
        for block in users.chunks(SCORE_BLOCK) {
            let items = block
                .iter()
                .zip(seen.top_lists(&model, block))
                .map(|(&u, recs)| {
                    let list: Vec<_> = recs
                        .iter()
                        .map(|&(i, s)| {
                            let id = &model.item_ids[i as usize];
                            json!({ "title_id": id, "title": name(id), "score": super::churn::round6(s as f64) })
                        })
                        .collect();
                    Item::new(
                        score::customer(&model.user_ids[u as usize]),
                        score::RECS,
                        json!({ "items": list, "model_version": version }),
                    )
                })
                .collect();
            out(items)?;
        }
        let similar: Vec<_> = model.similar.iter().collect();
        for block in similar.chunks(SCORE_BLOCK) {
            let items = block
                .iter()
                .map(|(tid, nb)| {
                    let list: Vec<_> = nb
                        .iter()
                        .map(|(id, s)| {
                            json!({ "title_id": id, "title": name(id), "similarity": super::churn::round6(*s as f64) })
                        })
                        .collect();
                    Item::new(
                        score::title(tid),
                        score::SIMILAR,
                        json!({ "title": name(tid), "items": list, "model_version": version }),
                    )
                })
                .collect();
            out(items)?;
        }
        Ok(())
    }
}

/// Users scored per batch of score items.
const SCORE_BLOCK: usize = 10_000;

/// Every user's top-`recommend.top_n` list (item index, score), best first, without the titles
/// the user rated or watched in `tables`; in the order of `model.user_ids`.
pub fn top_lists(spec: &Spec, model: &RecommendModel, tables: &Tables) -> Result<Vec<Vec<(u32, f32)>>> {
    let users: Vec<u32> = (0..model.user_ids.len() as u32).collect();
    Ok(Histories::of(spec, model, tables)?.top_lists(model, &users))
}

/// The titles each user rated or watched (never recommended back), and the list length.
struct Histories {
    seen: HashMap<u32, HashSet<u32>>,
    top_n: usize,
}

impl Histories {
    fn of(spec: &Spec, model: &RecommendModel, tables: &Tables) -> Result<Self> {
        let r = spec_of(spec)?;
        let mut sources = vec![(tables.get(&r.ratings)?, r.user.as_str(), r.item.as_str())];
        if let Some(v) = &r.viewing {
            sources.push((tables.get(v)?, r.user.as_str(), r.item.as_str()));
        }
        Ok(Self { seen: seen_by_user(model, &sources)?, top_n: r.top_n })
    }

    /// The top lists of `users` (indices into `model.user_ids`), in their order.
    fn top_lists(&self, model: &RecommendModel, users: &[u32]) -> Vec<Vec<(u32, f32)>> {
        let empty = HashSet::new();
        let histories: Vec<&HashSet<u32>> = users.iter().map(|u| self.seen.get(u).unwrap_or(&empty)).collect();
        model.top_n_many(users, self.top_n, &histories)
    }
}

fn spec_of(spec: &Spec) -> Result<&RecommendSpec> {
    spec.recommend.as_ref().ok_or_else(|| Error::spec("recommend", "the spec has no [recommend] section"))
}

/// Per-user holdout: each user with enough ratings gives `test_fraction` of them (seeded) to test.
pub fn per_user_split<S: AsRef<str>>(users: &[S], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut by_user: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, u) in users.iter().enumerate() {
        by_user.entry(u.as_ref()).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for rows in by_user.values_mut() {
        if rows.len() < MIN_RATINGS_TO_HOLD_OUT {
            train.extend_from_slice(rows);
            continue;
        }
        rows.shuffle(&mut rng);
        let n_test = ((rows.len() as f64) * test_fraction).round().max(1.0) as usize;
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

/// train.csv and test.csv: the user, item and rating columns of the ratings rows of each side.
fn split_files(r: &RecommendSpec, ratings: &Frame, train: &[usize], test: &[usize]) -> Result<Files> {
    let cols = [r.user.clone(), r.item.clone(), r.rating.clone()];
    let mut files = Files::new();
    files.insert("train.csv".into(), ratings.csv_of(&cols, train)?);
    files.insert("test.csv".into(), ratings.csv_of(&cols, test)?);
    Ok(files)
}

/// The distinct values, sorted. Deduplicated by hash first: ids repeat once per rating, and
/// sorting only the few distinct ones is what keeps this linear in the ratings.
fn sorted_unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let distinct: HashSet<&str> = values.collect();
    let mut v: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    v.sort_unstable();
    v
}

fn index_of(ids: &[String]) -> HashMap<&str, u32> {
    ids.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect()
}

/// Content vectors of titles: one-hot tags (list / categorical columns) weighted by idf, plus
/// TF-IDF of text columns; each part L2-normalised so neither dominates by length.
fn content_matrix(r: &RecommendSpec, spec: &Spec, titles: &Frame) -> Result<CsrMatrix> {
    let tspec = spec.table(r.titles.as_deref().unwrap_or_default())?;
    let n = titles.n_rows();
    let mut tag_rows: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut texts: Vec<String> = vec![String::new(); n];
    for col in &r.title_features {
        match tspec.kind_of(col) {
            Some(ColumnKind::List) => {
                for (i, vals) in titles.list(col, &tspec.list_separator)?.into_iter().enumerate() {
                    tag_rows[i].extend(vals.into_iter().map(|v| format!("{col}={v}")));
                }
            }
            Some(ColumnKind::Text) => {
                for (i, v) in titles.col(col)?.iter().enumerate() {
                    texts[i].push(' ');
                    texts[i].push_str(v);
                }
            }
            _ => {
                for (i, v) in titles.col(col)?.iter().enumerate() {
                    if !v.is_empty() {
                        tag_rows[i].push(format!("{col}={v}"));
                    }
                }
            }
        }
    }
    // Tag vocabulary in sorted order (deterministic column ids) with document frequencies.
    let mut df: BTreeMap<String, usize> = BTreeMap::new();
    for row in tag_rows.iter_mut() {
        row.sort();
        row.dedup();
        for t in row.iter() {
            *df.entry(t.clone()).or_insert(0) += 1;
        }
    }
    let tag_index: HashMap<&str, (u32, f32)> = df
        .iter()
        .enumerate()
        .map(|(i, (t, &d))| (t.as_str(), (i as u32, ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0)))
        .collect();
    let has_text = texts.iter().any(|t| !t.trim().is_empty());
    let vectorizer = if has_text {
        Some(
            TfidfParams { max_ngram: 1, min_df: 2, max_features: 20_000, sublinear_tf: true, mark_negation: false }
                .fit(&texts)?,
        )
    } else {
        None
    };
    let text_rows = vectorizer.as_ref().map(|v| v.transform(&texts));
    let n_text = vectorizer.as_ref().map_or(0, |v| v.n_features());
    let n_tags = df.len();
    let mut m = CsrMatrix::new(n_tags + n_text);
    for (i, tags) in tag_rows.iter().enumerate() {
        let mut entries: Vec<(u32, f32)> = Vec::new();
        entries.extend(tags.iter().map(|t| tag_index[t.as_str()]));
        let norm = entries.iter().map(|e| e.1 * e.1).sum::<f32>().sqrt().max(1e-12);
        entries.iter_mut().for_each(|e| e.1 /= norm);
        if let Some(rows) = &text_rows {
            let (idx, val) = rows.row(i);
            entries.extend(idx.iter().zip(val).map(|(&c, &v)| (n_tags as u32 + c, v * TEXT_WEIGHT)));
        }
        m.push_row(&mut entries);
    }
    Ok(m)
}

/// Item-item neighbours by co-rating: cosine between items' binary user vectors.
fn co_rating_neighbours(ratings: &[Rating], n_items: usize, k: usize) -> Vec<Vec<(u32, f32)>> {
    let mut by_item: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
    for r in ratings {
        by_item[r.item as usize].push((r.user, 1.0));
    }
    let n_users = ratings.iter().map(|r| r.user as usize + 1).max().unwrap_or(0);
    let mut m = CsrMatrix::new(n_users);
    for mut row in by_item {
        row.sort_unstable_by_key(|e| e.0);
        row.dedup_by_key(|e| e.0);
        m.push_row(&mut row);
    }
    top_k_cosine(&m, k)
}

impl RecommendModel {
    /// Top `n` items for a user, skipping `exclude` (the user's history: what they rated or watched).
    pub fn top_n(&self, user: u32, n: usize, exclude: &HashSet<u32>) -> Vec<(u32, f32)> {
        self.top_n_many(&[user], n, &[exclude]).pop().unwrap_or_default()
    }

    /// [`top_n`](Self::top_n) for many users at once (`exclude[k]` is `users[k]`'s history): ALS
    /// scores the users in blocks over the cores.
    pub fn top_n_many(&self, users: &[u32], n: usize, exclude: &[&HashSet<u32>]) -> Vec<Vec<(u32, f32)>> {
        match self.ranking {
            RankingKind::ItemKnn if !self.co_neighbours.is_empty() => {
                exclude.iter().map(|history| self.top_n_knn(n, history)).collect()
            }
            _ => self.als.recommend_many(users, n, exclude),
        }
    }

    /// Sum of co-rating similarity to the history; topped up by popularity when the history is
    /// too thin to fill the list.
    fn top_n_knn(&self, n: usize, history: &HashSet<u32>) -> Vec<(u32, f32)> {
        let mut score: HashMap<u32, f32> = HashMap::new();
        for &i in history {
            for &(j, s) in self.co_neighbours.get(i as usize).map(Vec::as_slice).unwrap_or(&[]) {
                if !history.contains(&j) {
                    *score.entry(j).or_insert(0.0) += s;
                }
            }
        }
        let mut ranked: Vec<(u32, f32)> = score.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(n);
        if ranked.len() < n {
            let have: HashSet<u32> = ranked.iter().map(|x| x.0).collect();
            let fill: Vec<(u32, f32)> = self
                .popularity
                .iter()
                .filter(|i| !history.contains(i) && !have.contains(i))
                .take(n - ranked.len())
                .map(|&i| (i, 0.0))
                .collect();
            ranked.extend(fill);
        }
        ranked
    }

    fn popular(&self, n: usize, exclude: &HashSet<u32>) -> Vec<u32> {
        self.popularity.iter().copied().filter(|i| !exclude.contains(i)).take(n).collect()
    }
}

/// Items each user has already interacted with, by model index.
fn seen_by_user(model: &RecommendModel, frames: &[(&Frame, &str, &str)]) -> Result<HashMap<u32, HashSet<u32>>> {
    let (ui, ii) = (index_of(&model.user_ids), index_of(&model.item_ids));
    let mut seen: HashMap<u32, HashSet<u32>> = HashMap::new();
    for (frame, ucol, icol) in frames {
        for (u, i) in frame.col(ucol)?.iter().zip(frame.col(icol)?) {
            if let (Some(&u), Some(&i)) = (ui.get(u), ii.get(i)) {
                seen.entry(u).or_default().insert(i);
            }
        }
    }
    Ok(seen)
}
