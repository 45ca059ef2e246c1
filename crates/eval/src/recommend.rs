//! Recommendations: ALS rating prediction over folds (MovieLens 100K's 5 protocol folds, or seeded
//! per-user k-fold; rank and lambda chosen per fold on an inner validation split of the training
//! fold), ranking quality against popularity on a per-user 20% holdout (the protocol's or a seeded
//! one), and content-based similar titles and recommendations.

use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Instant;

use super::data::{self, Fold};
use super::{secs, EntryBuilder, EvalOptions, Job, Target, TaskReport};
use marquee_pipeline::error::{Error, Result};
use marquee_pipeline::frame::Column;
use marquee_pipeline::spec::{RecommendSpec, Spec, UseCase};
use marquee_pipeline::usecase::common::{from_json, Evaluation};
use marquee_pipeline::usecase::recommend::{RecommendDetails, RecommendModel};
use marquee_pipeline::usecase::Details;
use marquee_pipeline::usecase::{self, Files, Tables};

const UC: UseCase = UseCase::Recommend;
/// Share of a training fold held out to choose rank and lambda.
const INNER_VALIDATION_SHARE: f64 = 0.1;
/// The search grid (rank x lambda). lambda is on the spec's regularisation scale (sqrt_count:
/// lambda * sqrt(n_ratings)); the spec's own values are always candidates too.
pub const RANKS: [usize; 3] = [10, 20, 40];
pub const LAMBDAS: [f32; 4] = [0.8, 1.2, 1.6, 2.0];
/// Candidate neighbour counts for `item_knn` ranking (chosen on an inner per-user split).
pub const KNN_NEIGHBOURS: [usize; 4] = [10, 20, 50, 100];
/// Titles whose neighbours the report shows when the task names none: the most rated.
const SHOWCASE_DEFAULT: usize = 4;
/// Share of each user's ratings held out for ranking when the task has no holdout file.
const HOLDOUT_SHARE: f64 = 0.2;

/// Validation RMSE per (rank, lambda) candidate.
pub type Search = Vec<(usize, f32, f64)>;
/// (title id, title, [(neighbour id, neighbour title, similarity)]).
pub type Showcase = Vec<(String, String, Vec<(String, String, f32)>)>;

fn rec_spec(spec: &Spec) -> Result<&RecommendSpec> {
    spec.recommend.as_ref().ok_or_else(|| Error::spec("recommend", "the spec has no [recommend] section"))
}

/// The spec with other ALS hyper-parameters.
pub fn with_params(spec: &Spec, rank: usize, lambda: f32) -> Spec {
    let mut s = spec.clone();
    if let Some(r) = s.recommend.as_mut() {
        r.rank = rank;
        r.lambda = lambda;
    }
    s
}

/// One prepare -> train -> evaluate pass of the pipeline's recommend use case on a split.
pub struct FoldRun {
    pub files: Files,
    pub model: Vec<u8>,
    pub evaluation: Evaluation,
    pub fit_seconds: f64,
}

pub fn run_split(spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<FoldRun> {
    let t = Instant::now();
    let files = usecase::of(UC).prepare_split(spec, tables, train, test)?;
    let model = usecase::of(UC).train(spec, &files, tables, "eval")?;
    let fit_seconds = secs(t);
    let evaluation = usecase::of(UC).evaluate(spec, &model, &files)?;
    Ok(FoldRun { files, model, evaluation, fit_seconds })
}

/// Rank and lambda with the lowest RMSE on an inner validation split of `train` (never the test
/// fold). Returns (rank, lambda, validation RMSE per candidate).
pub fn choose_params(spec: &Spec, tables: &Tables, train: &[usize], seed: u64) -> Result<(usize, f32, Search)> {
    let r = rec_spec(spec)?;
    let (fit, val) = data::inner_split(train, INNER_VALIDATION_SHARE, seed);
    let mut candidates: Vec<(usize, f32)> = RANKS.iter().flat_map(|&k| LAMBDAS.iter().map(move |&l| (k, l))).collect();
    if !candidates.contains(&(r.rank, r.lambda)) {
        candidates.push((r.rank, r.lambda));
    }
    let mut scores = Vec::new();
    for (rank, lambda) in candidates {
        let s = with_params(spec, rank, lambda);
        let run = run_split(&s, tables, &fit, &val)?;
        scores.push((rank, lambda, run.evaluation.primary.value));
    }
    let best = scores.iter().min_by(|a, b| a.2.total_cmp(&b.2)).expect("at least one candidate");
    Ok((best.0, best.1, scores))
}

/// For `item_knn` ranking: the neighbour count with the best precision@10 on an inner per-user
/// holdout of `train` (never the test split). Returns (k, precision per candidate).
pub fn choose_knn(spec: &Spec, tables: &Tables, train: &[usize], seed: u64) -> Result<(usize, Vec<(usize, f64)>)> {
    let r = rec_spec(spec)?;
    let users: Vec<String> = {
        let col = tables.get(&r.ratings)?.col(&r.user)?;
        train.iter().map(|&i| col[i].to_string()).collect()
    };
    let (fit, val) = usecase::recommend::per_user_split(&users, 0.2, seed);
    let (fit, val): (Vec<usize>, Vec<usize>) =
        (fit.iter().map(|&i| train[i]).collect(), val.iter().map(|&i| train[i]).collect());
    let mut scores = Vec::new();
    for k in KNN_NEIGHBOURS {
        let mut s = spec.clone();
        s.recommend.as_mut().expect("recommend").knn_neighbours = k;
        let run = run_split(&s, tables, &fit, &val)?;
        scores.push((k, detail(&run.evaluation).precision_at_10));
    }
    let best = scores.iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0))).expect("candidates");
    Ok((best.0, scores))
}

/// The job's folds: its fold file's (checked row by row against the ratings table), or seeded
/// per-user k-fold.
pub fn folds(job: &Job, opts: &EvalOptions, tables: &Tables) -> Result<Vec<Fold>> {
    let r = rec_spec(&job.spec)?;
    let ratings = tables.get(&r.ratings)?;
    match &job.fold_file {
        Some(path) => {
            let pf = data::protocol_frame(path)?;
            check_rows(&pf, path, ratings.col(&r.user)?, ratings.col(&r.item)?)?;
            let assign = data::assignment(&pf, "row", "fold")?;
            data::folds_from_assignment(&(0..ratings.n_rows()).collect::<Vec<_>>(), &assign, opts.folds)
        }
        None => Ok(data::per_user_kfold(&ratings.col(&r.user)?.to_strs(), job.folds(opts), opts.seed)),
    }
}

/// The per-user holdout for ranking: the job's holdout file (`row`, `is_test`), or a seeded 20%
/// of each user's ratings.
pub fn holdout_split(job: &Job, opts: &EvalOptions, tables: &Tables) -> Result<Fold> {
    let r = rec_spec(&job.spec)?;
    let ratings = tables.get(&r.ratings)?;
    let Some(path) = &job.holdout_file else {
        let (train, test) = usecase::recommend::per_user_split(
            &ratings.col(&r.user)?.to_strs(),
            HOLDOUT_SHARE,
            opts.seed.wrapping_add(100),
        );
        return Ok(Fold { train, test });
    };
    let hf = data::protocol_frame(path)?;
    let is_test = data::assignment(&hf, "row", "is_test")?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for i in 0..ratings.n_rows() {
        match is_test.get(&i) {
            Some(1) => test.push(i),
            Some(_) => train.push(i),
            None => return Err(Error::Invalid(format!("ratings row {i} is not in {}", path.display()))),
        }
    }
    Ok(Fold { train, test })
}

/// The protocol file must describe the same ratings (same order), or its folds mean nothing.
fn check_rows(
    pf: &marquee_pipeline::frame::Frame,
    path: &std::path::Path,
    users: &Column,
    items: &Column,
) -> Result<()> {
    let (pu, pi, prow) = (pf.col("user_id")?, pf.col("item_id")?, pf.col("row")?);
    let by_row: HashMap<&str, usize> = prow.iter().enumerate().map(|(j, r)| (r, j)).collect();
    for i in 0..users.len() {
        let j = by_row.get(i.to_string().as_str()).copied();
        match j {
            Some(j) if pu[j] == users[i] && pi[j] == items[i] => {}
            _ => {
                return Err(Error::Invalid(format!(
                    "{} does not match the ratings table at row {i} (user {}, item {})",
                    path.display(),
                    &users[i],
                    &items[i]
                )))
            }
        }
    }
    Ok(())
}

/// Hit-rate@10 and precision@10 of three recommenders on a holdout, each from the same trained
/// model: content-based (sum of content similarity to the user's liked training titles), ALS and
/// popularity. A hit is a held-out title rated >= `relevant` in the user's top 10.
pub fn holdout_hit_rates(
    r: &RecommendSpec,
    model: &RecommendModel,
    files: &Files,
    k: usize,
) -> Result<serde_json::Value> {
    let train = files.frame("train.csv")?;
    let test = files.frame("test.csv")?;
    let mut seen: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut liked: HashMap<&str, Vec<&str>> = HashMap::new();
    let tv = train.numeric(&r.rating)?;
    for ((u, i), &v) in train.col(&r.user)?.iter().zip(train.col(&r.item)?).zip(&tv) {
        seen.entry(u).or_default().insert(i);
        if v >= r.relevant_rating {
            liked.entry(u).or_default().push(i);
        }
    }
    let mut relevant: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    let sv = test.numeric(&r.rating)?;
    for ((u, i), &v) in test.col(&r.user)?.iter().zip(test.col(&r.item)?).zip(&sv) {
        if v >= r.relevant_rating {
            relevant.entry(u).or_default().insert(i);
        }
    }
    let user_index: HashMap<&str, u32> =
        model.user_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
    let item_index: HashMap<&str, u32> =
        model.item_ids.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
    let empty = HashSet::new();
    let mut tally: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for (u, rel) in &relevant {
        let seen_u = seen.get(u).unwrap_or(&empty);
        // Content-based: accumulate similarity from each liked title's neighbour list.
        let mut score: HashMap<&str, f64> = HashMap::new();
        for liked_item in liked.get(u).map(Vec::as_slice).unwrap_or(&[]) {
            for (j, s) in model.similar.get(*liked_item).map(Vec::as_slice).unwrap_or(&[]) {
                if !seen_u.contains(j.as_str()) {
                    *score.entry(j.as_str()).or_insert(0.0) += f64::from(*s);
                }
            }
        }
        let mut content: Vec<(&str, f64)> = score.into_iter().collect();
        content.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let content: Vec<&str> = content.into_iter().take(k).map(|x| x.0).collect();
        let exclude: HashSet<u32> = seen_u.iter().filter_map(|i| item_index.get(i).copied()).collect();
        let als: Vec<&str> = match user_index.get(u) {
            Some(&ui) => model
                .als
                .recommend(ui, k, &exclude)
                .into_iter()
                .map(|(i, _)| model.item_ids[i as usize].as_str())
                .collect(),
            None => Vec::new(),
        };
        let pop: Vec<&str> = model
            .popularity
            .iter()
            .filter(|i| !exclude.contains(i))
            .take(k)
            .map(|&i| model.item_ids[i as usize].as_str())
            .collect();
        let ranked: Vec<&str> = match user_index.get(u) {
            Some(&ui) => {
                model.top_n(ui, k, &exclude).into_iter().map(|(i, _)| model.item_ids[i as usize].as_str()).collect()
            }
            None => Vec::new(),
        };
        for (name, list) in [("content_based", content), ("als", als), ("popularity", pop), ("model_top_n", ranked)] {
            let hits = list.iter().filter(|i| rel.contains(*i)).count();
            let e = tally.entry(name).or_insert((0.0, 0.0));
            e.0 += f64::from(u8::from(hits > 0));
            e.1 += hits as f64 / k as f64;
        }
    }
    let n = relevant.len().max(1) as f64;
    Ok(json!({
        "users": relevant.len(),
        "k": k,
        "hit_rate": tally.iter().map(|(k, v)| (k.to_string(), v.0 / n)).collect::<BTreeMap<_, _>>(),
        "precision": tally.iter().map(|(k, v)| (k.to_string(), v.1 / n)).collect::<BTreeMap<_, _>>(),
    }))
}

/// Top `n` neighbours of the showcase titles (by name; without names, the most rated titles),
/// with names and cosine similarity.
pub fn showcase_neighbours(model: &RecommendModel, titles: &[String], n: usize) -> Showcase {
    let most_rated: Vec<(String, String)>;
    let chosen: Vec<(&String, &String)> = if titles.is_empty() {
        most_rated = model
            .popularity
            .iter()
            .take(SHOWCASE_DEFAULT)
            .map(|&i| {
                let id = model.item_ids[i as usize].clone();
                let name = model.title_names.get(&id).cloned().unwrap_or_else(|| id.clone());
                (id, name)
            })
            .collect();
        most_rated.iter().map(|(i, n)| (i, n)).collect()
    } else {
        titles.iter().filter_map(|wanted| model.title_names.iter().find(|(_, name)| *name == wanted)).collect()
    };
    let mut out = Vec::new();
    for (id, name) in chosen {
        let nb = model.similar.get(id).map(Vec::as_slice).unwrap_or(&[]);
        let list = nb
            .iter()
            .take(n)
            .map(|(j, s)| (j.clone(), model.title_names.get(j).cloned().unwrap_or_default(), *s))
            .collect();
        out.push((id.clone(), name.clone(), list));
    }
    out
}

/// f32 hyper-parameters print as 1.2, not 1.2000000476837158.
fn round4(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

/// The recommend details of an evaluation this module ran.
fn detail(e: &Evaluation) -> &RecommendDetails {
    match &e.details {
        Details::Recommend(d) => d,
        other => unreachable!("a recommend evaluation has recommend details, not {other:?}"),
    }
}

pub fn run(job: &Job, opts: &EvalOptions, progress: &dyn Fn(&str)) -> Result<TaskReport> {
    let spec = job.spec.clone();
    let task = &job.name;
    let r = rec_spec(&spec)?.clone();
    let tables =
        data::load_tables(&spec, &job.tables_dir, &usecase::of(UC).needed_tables(&spec), &r.ratings, opts.limit)?;
    let folds = folds(job, opts, &tables)?;

    let pick = |train: &[usize], seed: u64| -> Result<(usize, f32, Search)> {
        if opts.tune {
            choose_params(&spec, &tables, train, seed)
        } else {
            Ok((r.rank, r.lambda, Vec::new()))
        }
    };

    let (mut rmse, mut rmse_mean, mut fit, mut chosen) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (f, fold) in folds.iter().enumerate() {
        let (rank, lambda, search) = pick(&fold.train, opts.seed.wrapping_add(f as u64))?;
        let run = run_split(&with_params(&spec, rank, lambda), &tables, &fold.train, &fold.test)?;
        let e = &run.evaluation;
        progress(&format!(
            "{task} fold {f}: rank {rank}, lambda {lambda}: RMSE {:.4} (global mean {:.4}), fit {:.2}s",
            e.primary.value,
            detail(e).rmse_global_mean,
            run.fit_seconds
        ));
        rmse.push(e.primary.value);
        rmse_mean.push(detail(e).rmse_global_mean);
        fit.push(run.fit_seconds);
        chosen.push(json!({ "fold": f, "rank": rank, "lambda": round4(lambda), "test_rmse": e.primary.value,
            "validation_rmse": search.iter().map(|(k, l, v)| json!({ "rank": k, "lambda": round4(*l), "rmse": v })).collect::<Vec<_>>() }));
    }
    let k = folds.len();
    let protocol = match job.fold_file {
        Some(_) => format!("{k}-fold (protocol)"),
        None => format!("per-user {k}-fold (seed {})", opts.seed),
    };
    let mut entries = vec![
        EntryBuilder::new(job, "recommend", "RMSE (ALS)", &protocol, &rmse, false)
            .fit_seconds(&fit)
            .refs(job.metric("rmse"))
            .note(format!(
                "regularisation {:?}, rank/lambda per fold on a {:.0}% inner split",
                r.regularisation,
                100.0 * INNER_VALIDATION_SHARE
            ))
            .build(),
        EntryBuilder::new(job, "recommend", "RMSE (global mean)", &protocol, &rmse_mean, false)
            .refs(job.metric("rmse_global_mean"))
            .note("baseline: predict the training mean")
            .build(),
    ];

    // Per-user holdout: ranking quality against popularity, content-based recommendations.
    let hold = holdout_split(job, opts, &tables)?;
    let (rank, lambda, _) = pick(&hold.train, opts.seed.wrapping_add(100))?;
    let mut hspec = with_params(&spec, rank, lambda);
    let ranking = format!("{:?}", r.ranking).to_lowercase().replace("itemknn", "item_knn");
    let mut knn_search = Vec::new();
    if r.ranking == marquee_pipeline::spec::RankingKind::ItemKnn && opts.tune {
        let (k, search) = choose_knn(&hspec, &tables, &hold.train, opts.seed.wrapping_add(200))?;
        hspec.recommend.as_mut().expect("recommend").knn_neighbours = k;
        knn_search = search;
        progress(&format!("{task} holdout: item_knn neighbours {k} (inner per-user split)"));
    }
    let knn_k = hspec.recommend.as_ref().expect("recommend").knn_neighbours;
    let run = run_split(&hspec, &tables, &hold.train, &hold.test)?;
    let e = &run.evaluation;
    progress(&format!(
        "{task} holdout: precision@10 {:.4} (popularity {:.4}), NDCG@10 {:.4} (popularity {:.4})",
        detail(e).precision_at_10,
        detail(e).popularity_precision_at_10,
        detail(e).ndcg_at_10,
        detail(e).popularity_ndcg_at_10
    ));
    // The same model scored with every held-out title counted relevant (the peers' definition).
    let mut all_rel = hspec.clone();
    all_rel.recommend.as_mut().expect("recommend").relevant_rating = 0.0;
    let e_all = usecase::of(UC).evaluate(&all_rel, &run.model, &run.files)?;
    let model: RecommendModel = from_json(&run.model, "recommend model")?;
    let hits = holdout_hit_rates(&r, &model, &run.files, 10)?;
    let hits_all = holdout_hit_rates(all_rel.recommend.as_ref().expect("recommend"), &model, &run.files, 10)?;
    let hp =
        if job.holdout_file.is_some() { "per-user holdout 20% (protocol)" } else { "per-user holdout 20% (seeded)" };
    let one = |v: f64| vec![v];
    entries.push(
        EntryBuilder::new(
            job,
            "recommend",
            &format!("precision@10 ({ranking}, relevant = rating >= 4)"),
            hp,
            &one(detail(e).precision_at_10),
            true,
        )
        .fit_seconds(&[run.fit_seconds])
        .target(Target::at_least(detail(e).popularity_precision_at_10))
        .note(format!(
            "target: popularity on the same split and definition, {:.4}",
            detail(e).popularity_precision_at_10
        ))
        .build(),
    );
    entries.push(
        EntryBuilder::new(
            job,
            "recommend",
            &format!("NDCG@10 ({ranking}, relevant = rating >= 4)"),
            hp,
            &one(detail(e).ndcg_at_10),
            true,
        )
        .target(Target::at_least(detail(e).popularity_ndcg_at_10))
        .note(format!("target: popularity {:.4}", detail(e).popularity_ndcg_at_10))
        .build(),
    );
    entries.push(
        EntryBuilder::new(
            job,
            "recommend",
            &format!("precision@10 ({ranking}, every held-out title relevant)"),
            hp,
            &one(detail(&e_all).precision_at_10),
            true,
        )
        .refs(job.metric("precision_at_10_all_relevant"))
        .note(format!(
            "our popularity on this definition: {:.4}; NDCG@10 {:.4} vs popularity {:.4}",
            detail(&e_all).popularity_precision_at_10,
            detail(&e_all).ndcg_at_10,
            detail(&e_all).popularity_ndcg_at_10
        ))
        .build(),
    );
    entries.push(
        EntryBuilder::new(
            job,
            "recommend",
            "popularity precision@10 (every held-out title relevant)",
            hp,
            &one(detail(&e_all).popularity_precision_at_10),
            true,
        )
        .refs(job.metric("popularity_precision_at_10_all_relevant"))
        .note("our popularity baseline, to check the definition matches the peers'")
        .build(),
    );
    let hr = |v: &serde_json::Value, m: &str| v["hit_rate"][m].as_f64().unwrap_or(f64::NAN);
    entries.push(
        EntryBuilder::new(job, "recommend", "hit-rate@10 (content-based)", hp, &one(hr(&hits, "content_based")), true)
            .note(format!(
                "users with a held-out title rated >= 4 that is in their top 10; {ranking} {:.4}, ALS by predicted rating {:.4}, popularity {:.4}",
                hr(&hits, "model_top_n"),
                hr(&hits, "als"),
                hr(&hits, "popularity")
            ))
            .build(),
    );

    let neighbours = showcase_neighbours(&model, &job.showcase, 5);
    let mut md = String::new();
    writeln!(md, "Chosen ALS hyper-parameters per fold (inner validation split of the training fold):\n").ok();
    writeln!(md, "| fold | rank | lambda | test RMSE |\n|---|---|---|---|").ok();
    for c in &chosen {
        writeln!(
            md,
            "| {} | {} | {} | {:.4} |",
            c["fold"],
            c["rank"],
            c["lambda"],
            c["test_rmse"].as_f64().unwrap_or(f64::NAN)
        )
        .ok();
    }
    writeln!(
        md,
        "\nPer-user holdout (ALS rank {rank}, lambda {lambda}; ranking {ranking}, {knn_k} neighbours), top 10, relevant = held-out rating >= {}:\n",
        r.relevant_rating
    )
    .ok();
    writeln!(md, "| recommender | precision@10 | NDCG@10 | hit-rate@10 | precision@10 (all held-out relevant) | hit-rate@10 (all relevant) |\n|---|---|---|---|---|---|").ok();
    for (name, key, p, nd, pa) in [
        (
            ranking.as_str(),
            "model_top_n",
            detail(e).precision_at_10,
            detail(e).ndcg_at_10,
            detail(&e_all).precision_at_10,
        ),
        (
            "ALS by predicted rating",
            "als",
            hits["precision"]["als"].as_f64().unwrap_or(f64::NAN),
            f64::NAN,
            hits_all["precision"]["als"].as_f64().unwrap_or(f64::NAN),
        ),
        (
            "popularity",
            "popularity",
            detail(e).popularity_precision_at_10,
            detail(e).popularity_ndcg_at_10,
            detail(&e_all).popularity_precision_at_10,
        ),
        (
            "content-based",
            "content_based",
            hits["precision"]["content_based"].as_f64().unwrap_or(f64::NAN),
            f64::NAN,
            hits_all["precision"]["content_based"].as_f64().unwrap_or(f64::NAN),
        ),
    ] {
        writeln!(
            md,
            "| {name} | {p:.4} | {} | {:.4} | {pa:.4} | {:.4} |",
            if nd.is_nan() { "-".into() } else { format!("{nd:.4}") },
            hr(&hits, key),
            hr(&hits_all, key)
        )
        .ok();
    }
    writeln!(
        md,
        "\nSimilar titles (the model's SIMILAR lists: cosine over the spec's title features where it has some, else over co-ratings):\n"
    )
    .ok();
    for (id, name, list) in &neighbours {
        let items: Vec<String> = list.iter().map(|(j, n, s)| format!("{n} ({j}) {s:.3}")).collect();
        writeln!(md, "- **{name}** ({id}): {}", items.join("; ")).ok();
    }

    Ok(TaskReport {
        task: task.clone(),
        entries,
        details: json!({
            "folds": chosen,
            "holdout": { "rank": rank, "lambda": round4(lambda), "ranking": ranking, "knn_neighbours": knn_k,
                         "knn_validation_precision_at_10": knn_search, "evaluation": e.details, "evaluation_all_relevant": e_all.details,
                         "hit_rates": hits, "hit_rates_all_relevant": hits_all },
            "neighbours": neighbours.iter().map(|(id, name, list)| json!({ "title_id": id, "title": name,
                "neighbours": list.iter().map(|(j, n, s)| json!({ "title_id": j, "title": n, "similarity": s })).collect::<Vec<_>>() })).collect::<Vec<_>>(),
        }),
        markdown: md,
        seconds: 0.0,
    })
}
