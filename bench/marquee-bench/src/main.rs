//! `marquee-bench`: one benchmark task per process (so the driver can read its peak RSS), printing
//! one JSON line: task, tool, metric name and value, fit seconds of every repetition, extras.
//!
//! ```text
//! marquee-bench gen   --data DATA --work bench/results/data     # synthetic .npy inputs
//! marquee-bench task  <name> --reps 5 --data DATA --work bench/results/data
//! marquee-bench flops                                                    # FMA peak of one core
//! ```
//! DATA, the real datasets' folder, is `--data` or `MARQUEE_DATA_DIR`.
//! Tasks: als_r10, als_r10_sqrt, als_r50, als_r50_sqrt, kmeans_cdnow, kmeans_1m, logreg_telco,
//! logreg_1m, gbm_telco, gbm_1m, gbm_1m_budget, tfidf_imdb_nblr, tfidf_imdb_nb, scaling.

mod data;
mod flops;

use data::Res;
use marquee_ml::als::{AlsParams, Rating, RegScaling};
use marquee_ml::gbm::{FeatureKind, GbmData, GbmModel, GbmParams};
use marquee_ml::kmeans::KMeansParams;
use marquee_ml::logistic::LogisticParams;
use marquee_ml::metrics::roc_auc;
use marquee_ml::text::{NaiveBayesParams, NbLogisticParams, TfidfParams};
use marquee_ml::{Fit, Predict};
use ndarray::{Array2, ArrayView2};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Instant;

struct Opts {
    reps: usize,
    data: PathBuf,
    work: PathBuf,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned()).unwrap_or_else(|| default.to_owned())
    };
    let data = args
        .iter()
        .position(|a| a == "--data")
        .and_then(|i| args.get(i + 1).cloned())
        .or_else(|| std::env::var("MARQUEE_DATA_DIR").ok())
        .unwrap_or_else(|| {
            eprintln!("marquee-bench: give the datasets' folder with --data DIR or MARQUEE_DATA_DIR");
            std::process::exit(2);
        });
    let opts = Opts {
        reps: flag("--reps", "3").parse().expect("--reps N"),
        data: data.into(),
        work: flag("--work", "bench/results/data").into(),
    };
    let result = match args.first().map(String::as_str) {
        Some("gen") => gen(&opts, args.iter().any(|a| a == "--quick")).map(|_| json!({"gen": "ok"})),
        Some("flops") => Ok(flops::report()),
        Some("task") => run_task(args.get(1).map(String::as_str).unwrap_or(""), &opts),
        _ => Err("usage: marquee-bench gen|flops|task <name> [--reps N] [--data DIR] [--work DIR]".into()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("marquee-bench: {e}");
            std::process::exit(1);
        }
    }
}

/// Writes the synthetic inputs the peers read too (skipped when present).
fn gen(o: &Opts, quick: bool) -> Res<()> {
    std::fs::create_dir_all(&o.work)?;
    let n = if quick { 100_000 } else { 1_000_000 };
    let km = o.work.join(format!("kmeans_{n}x16.npy"));
    if !km.exists() {
        data::write_npy(&km, &[n, 16], &data::synth_kmeans(n, 16, 7))?;
    }
    let lx = o.work.join(format!("logreg_{n}x20_x.npy"));
    let ly = o.work.join(format!("logreg_{n}x20_y.npy"));
    if !lx.exists() || !ly.exists() {
        // n training rows + n/5 test rows.
        let m = n + n / 5;
        let (x, y) = data::synth_logistic(m, 20, 11);
        data::write_npy(&lx, &[m, 20], &x)?;
        data::write_npy(&ly, &[m], &y)?;
    }
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Runs `fit` `reps` times (after nothing: the first run counts, like the peers'); returns the
/// times and the last result.
fn timed<T>(reps: usize, mut fit: impl FnMut() -> Res<T>) -> Res<(Vec<f64>, T)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let out = fit()?;
        times.push(t.elapsed().as_secs_f64());
        last = Some(out);
    }
    Ok((times, last.expect("reps >= 1")))
}

fn record(task: &str, tool: &str, metric: &str, value: f64, times: &[f64], extra: Value) -> Value {
    json!({
        "task": task, "tool": tool, "metric": metric, "value": value,
        "fit_s": times, "median_s": median(times), "extra": extra,
    })
}

fn run_task(name: &str, o: &Opts) -> Res<Value> {
    match name {
        "als_r10" => als(o, name, 10, 0.1, RegScaling::Count),
        "als_r10_sqrt" => als(o, name, 10, 1.2, RegScaling::SqrtCount),
        "als_r50" => als(o, name, 50, 0.1, RegScaling::Count),
        "als_r50_sqrt" => als(o, name, 50, 1.2, RegScaling::SqrtCount),
        "kmeans_cdnow" => kmeans_cdnow(o),
        "kmeans_1m" => kmeans_1m(o),
        "logreg_telco" => logreg_telco(o),
        "logreg_1m" => logreg_1m(o),
        "gbm_telco" => gbm_telco(o),
        "gbm_1m" | "gbm_1m_budget" => gbm_1m(o, name),
        "tfidf_imdb_nblr" | "tfidf_imdb_nb" => tfidf_imdb(o, name),
        "scaling" => scaling(o),
        _ => Err(format!("unknown task `{name}`").into()),
    }
}

// ---- ALS ----

fn als_rmse(model: &marquee_ml::als::AlsModel, test: &[Rating]) -> f64 {
    let se: f64 = test.iter().map(|r| f64::from(model.predict((Some(r.user), Some(r.item))) - r.value).powi(2)).sum();
    (se / test.len() as f64).sqrt()
}

/// Floating-point operations of one ALS iteration (both half-iterations) as the kernel does them:
/// per rating and side, the lower triangle of the (k+1)^2 normal matrix (d(d+1)/2 multiply-adds)
/// plus the right-hand side (d multiply-adds); per user / item a Cholesky (d^3/3) and two
/// triangular solves (2 d^2).
pub fn als_flops_per_iter(nnz: usize, rows: usize, rank: usize) -> f64 {
    let d = (rank + 1) as f64;
    2.0 * nnz as f64 * (d * (d + 1.0) + 2.0 * d) + rows as f64 * (d * d * d / 3.0 + 2.0 * d * d)
}

fn als(o: &Opts, task: &str, rank: usize, lambda: f32, scaling: RegScaling) -> Res<Value> {
    let (train, test, nu, ni) = data::movielens_fold(&o.data, 0)?;
    let lambda = std::env::var("BENCH_ALS_LAMBDA").ok().and_then(|v| v.parse().ok()).unwrap_or(lambda);
    let params = AlsParams { rank, iterations: 10, lambda, seed: 42 };
    let (times, model) = timed(o.reps, || Ok(params.fit_with_scaling(&train, nu, ni, scaling)?))?;
    let flops = als_flops_per_iter(train.len(), nu + ni, rank);
    let per_iter = median(&times) / 10.0;
    Ok(record(
        task.trim_end_matches("_sqrt"),
        &format!("marquee ALS ({})", if scaling == RegScaling::Count { "lambda*n" } else { "lambda*sqrt(n)" }),
        "RMSE",
        als_rmse(&model, &test),
        &times,
        json!({
            "rank": rank, "lambda": lambda, "train": train.len(), "test": test.len(),
            "flops_per_iter": flops, "s_per_iter": per_iter, "gflops": flops / per_iter / 1e9,
        }),
    ))
}

// ---- k-means ----

/// 1e-5 relative SSE improvement (the crate default is 1e-4): Lloyd runs a little longer and the
/// SSE then matches or beats scikit-learn's summed over k = 2..10 (see docs/performance.md).
/// BENCH_KMEANS_TOL overrides it.
fn kmeans_tol() -> f64 {
    std::env::var("BENCH_KMEANS_TOL").ok().and_then(|v| v.parse().ok()).unwrap_or(1e-5)
}

fn kmeans_cdnow(o: &Opts) -> Res<Value> {
    let x = data::cdnow_z(&o.data)?;
    let (times, sses) = timed(o.reps, || {
        (2..=10)
            .map(|k| Ok(KMeansParams { k, n_init: 10, tol: kmeans_tol(), ..Default::default() }.fit(x.view())?.sse))
            .collect::<Res<Vec<f64>>>()
    })?;
    Ok(record(
        "kmeans_cdnow",
        "marquee k-means++",
        "SSE sum k=2..10",
        sses.iter().sum(),
        &times,
        json!({"sse_by_k": sses, "shape": x.dim()}),
    ))
}

fn load_matrix(path: &Path) -> Res<Array2<f64>> {
    let (shape, v) = data::read_npy(path)?;
    Ok(Array2::from_shape_vec((shape[0], shape[1]), v)?)
}

fn synth_n(o: &Opts) -> usize {
    if o.work.join("kmeans_1000000x16.npy").exists() {
        1_000_000
    } else {
        100_000
    }
}

fn kmeans_1m(o: &Opts) -> Res<Value> {
    let n = synth_n(o);
    let x = load_matrix(&o.work.join(format!("kmeans_{n}x16.npy")))?;
    let params = KMeansParams { k: 8, n_init: 10, tol: kmeans_tol(), ..Default::default() };
    let (times, m) = timed(o.reps, || Ok(params.fit(x.view())?))?;
    Ok(record(
        "kmeans_1m",
        "marquee k-means++",
        "SSE k=8",
        m.sse,
        &times,
        json!({"shape": x.dim(), "iterations": m.iterations}),
    ))
}

// ---- logistic regression ----

/// One-hot (categories seen in training, sorted) + median-impute and standardise (population std)
/// the numeric columns: the same preprocessing as the scikit-learn peer's ColumnTransformer.
/// Works on columns of cells (as a data frame holds them, and as the peer's numpy array is sliced),
/// so each pass reads one contiguous column. Categories are found by a scan of the column's (sorted,
/// few: 2-4 in Telco) categories, which beats hashing every cell.
struct TelcoPrep {
    numeric: Vec<(usize, f64, f64, f64)>, // column, median, mean, std
    onehot: Vec<(usize, Vec<String>)>,
    width: usize,
}

/// A table as columns of cells: `cols[c][i]` is row `i` of column `c`.
type Columns<'a> = Vec<Vec<&'a str>>;

impl TelcoPrep {
    /// Fits on the training columns and transforms them in the same pass: each cell is parsed (or
    /// matched to its category) once, as the peer's `fit_transform` does.
    fn fit_transform(cols: &Columns, feature_cols: &[usize]) -> (Self, Array2<f64>) {
        let n_rows = cols.first().map_or(0, Vec::len);
        let mut numeric = Vec::new();
        let mut onehot: Vec<(usize, Vec<String>)> = Vec::new();
        // Per numeric column its parsed cells (NaN where empty); per categorical column its cells'
        // category codes in order of appearance, and those categories.
        let mut numeric_cells: Vec<Vec<f64>> = Vec::new();
        let mut category_codes: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
        let mut vals: Vec<f64> = Vec::with_capacity(n_rows);
        for &c in feature_cols {
            let mut cells = Vec::with_capacity(n_rows);
            let is_num = cols[c].iter().all(|cell| {
                let v = if cell.is_empty() { Some(f64::NAN) } else { parse_number(cell) };
                cells.extend(v);
                v.is_some()
            });
            if is_num {
                vals.clear();
                vals.extend(cells.iter().copied().filter(|v| !v.is_nan()));
                let missing = (n_rows - vals.len()) as f64;
                let sum: f64 = vals.iter().sum();
                let sq: f64 = vals.iter().map(|v| v * v).sum();
                let med = median_in_place(&mut vals);
                let n = n_rows as f64;
                let (sum, sq) = (sum + missing * med, sq + missing * med * med);
                let mean = sum / n;
                let var = (sq / n - mean * mean).max(0.0);
                numeric.push((c, med, mean, if var > 0.0 { var.sqrt() } else { 1.0 }));
                numeric_cells.push(cells);
            } else {
                let mut cats: Vec<&str> = Vec::new();
                let codes: Vec<u32> = cols[c]
                    .iter()
                    .map(|cell| {
                        let at = cats.iter().position(|cat| same_str(cat, cell)).unwrap_or_else(|| {
                            cats.push(cell);
                            cats.len() - 1
                        });
                        at as u32
                    })
                    .collect();
                // Columns in sorted category order, as the peer's encoder makes them.
                let mut order: Vec<usize> = (0..cats.len()).collect();
                order.sort_unstable_by_key(|&i| cats[i]);
                let mut column_of = vec![0; cats.len()];
                order.iter().enumerate().for_each(|(rank, &i)| column_of[i] = rank);
                onehot.push((c, order.iter().map(|&i| cats[i].to_owned()).collect()));
                category_codes.push((codes, column_of));
            }
        }
        let width = numeric.len() + onehot.iter().map(|(_, c)| c.len()).sum::<usize>();
        let mut x = Array2::zeros((n_rows, width));
        for (j, (&(_, med, mean, sd), cells)) in numeric.iter().zip(&numeric_cells).enumerate() {
            for (out, &v) in x.column_mut(j).iter_mut().zip(cells) {
                *out = (if v.is_nan() { med } else { v } - mean) / sd;
            }
        }
        let mut j = numeric.len();
        for ((_, cats), (codes, column_of)) in onehot.iter().zip(&category_codes) {
            for (mut row, &code) in x.rows_mut().into_iter().zip(codes) {
                row[j + column_of[code as usize]] = 1.0;
            }
            j += cats.len();
        }
        (Self { numeric, onehot, width }, x)
    }

    fn transform(&self, cols: &Columns) -> Array2<f64> {
        let n_rows = cols.first().map_or(0, Vec::len);
        let mut x = Array2::zeros((n_rows, self.width));
        let mut j = 0;
        for &(c, med, mean, sd) in &self.numeric {
            for (out, cell) in x.column_mut(j).iter_mut().zip(&cols[c]) {
                *out = (parse_number(cell).unwrap_or(med) - mean) / sd;
            }
            j += 1;
        }
        for (c, cats) in &self.onehot {
            for (i, cell) in cols[*c].iter().enumerate() {
                if let Some(p) = cats.iter().position(|cat| same_str(cat, cell)) {
                    x[[i, j + p]] = 1.0;
                }
            }
            j += cats.len();
        }
        x
    }
}

/// A cell's number: plain digit strings (most Telco cells: 0/1 flags, tenure) are read directly,
/// anything else by `f64::from_str`; the same value either way.
fn parse_number(cell: &str) -> Option<f64> {
    let b = cell.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(b.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')) as f64);
    }
    cell.parse().ok()
}

/// String equality for short strings, inlined, eight bytes at a time (the last word overlapping
/// the one before); `==` calls `memcmp`, which took a tenth of the Telco preprocessing.
#[inline]
fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    (0..n - 8).step_by(8).all(|at| word(a, at) == word(b, at)) && word(a, n - 8) == word(b, n - 8)
}

/// Median by selection (O(n), reorders `v`); the same value as sorting would give.
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (below, &mut upper, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        upper
    } else {
        0.5 * (below.iter().copied().fold(f64::NEG_INFINITY, f64::max) + upper)
    }
}

fn prep_once(cols: &Columns, features: &[usize]) -> Array2<f64> {
    TelcoPrep::fit_transform(cols, features).1
}

fn logreg_telco(o: &Opts) -> Res<Value> {
    let data::TelcoRows { header, rows, fold } = data::telco(&o.data)?;
    let label = header.iter().position(|h| h == "churn").ok_or("no churn column")?;
    let features: Vec<usize> = (0..header.len()).filter(|&c| c != label).collect();
    let (tr, te): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| fold[i] != 0);
    let tr_rows: Vec<&Vec<String>> = tr.iter().map(|&i| &rows[i]).collect();
    let te_rows: Vec<&Vec<String>> = te.iter().map(|&i| &rows[i]).collect();
    let y_tr: Vec<bool> = tr_rows.iter().map(|r| r[label] == "Yes").collect();
    let y_te: Vec<bool> = te_rows.iter().map(|r| r[label] == "Yes").collect();
    // Columns of cells, made outside the timing (as the peer's rows become a numpy array outside it).
    fn columns<'a>(rows: &[&'a Vec<String>], n_cols: usize) -> Columns<'a> {
        (0..n_cols).map(|c| rows.iter().map(|r| r[c].as_str()).collect()).collect()
    }
    let (tr_cols, te_cols) = (columns(&tr_rows, header.len()), columns(&te_rows, header.len()));
    let params = LogisticParams { l2: 1.0, ..Default::default() };
    // Many repetitions: one fit is a few milliseconds.
    let reps = (o.reps * 20).max(20);
    let (times, (prep, model)) = timed(reps, || {
        let (prep, x) = TelcoPrep::fit_transform(&tr_cols, &features);
        let model = params.fit((x.view(), &y_tr))?;
        Ok((prep, model))
    })?;
    let p = model.predict(prep.transform(&te_cols).view());
    let auc = roc_auc(p.as_slice().expect("contiguous"), &y_te)?;
    // Split of one fit: preprocessing vs the Newton solve (CPU-noise aside, for the docs).
    let (t_prep, x) = timed(reps, || Ok(prep_once(&tr_cols, &features)))?;
    let (t_fit, _) = timed(reps, || Ok(params.fit((x.view(), &y_tr))?))?;
    Ok(record(
        "logreg_telco",
        "marquee logistic (Newton)",
        "ROC AUC",
        auc,
        &times,
        json!({"train": tr.len(), "test": te.len(), "features": prep.width,
               "prep_median_s": median(&t_prep), "newton_median_s": median(&t_fit)}),
    ))
}

fn logreg_1m(o: &Opts) -> Res<Value> {
    let n = synth_n(o);
    let x = load_matrix(&o.work.join(format!("logreg_{n}x20_x.npy")))?;
    let (_, yv) = data::read_npy(&o.work.join(format!("logreg_{n}x20_y.npy")))?;
    let y: Vec<bool> = yv.iter().map(|&v| v > 0.5).collect();
    let (xtr, xte) = (x.slice(ndarray::s![..n, ..]), x.slice(ndarray::s![n.., ..]));
    let params = LogisticParams { l2: 1.0, ..Default::default() };
    let (times, model) = timed(o.reps, || Ok(params.fit((xtr, &y[..n]))?))?;
    let p = model.predict(xte);
    let auc = roc_auc(p.as_slice().expect("contiguous"), &y[n..])?;
    Ok(record(
        "logreg_1m",
        "marquee logistic (Newton)",
        "ROC AUC",
        auc,
        &times,
        json!({"train": n, "test": y.len() - n}),
    ))
}

// ---- gradient-boosted trees ----

/// Trees fitted on `train` rows, stopping early on a seeded 10% of them (as the pipeline does).
fn fit_trees(x: ArrayView2<f32>, y: &[bool], kinds: &[FeatureKind], params: &GbmParams) -> Res<GbmModel> {
    let stop: Vec<bool> = (0..y.len()).map(|i| i % 10 == 9).collect();
    let pick = |keep: bool| -> (Array2<f32>, Vec<bool>) {
        let rows: Vec<usize> = (0..y.len()).filter(|&i| stop[i] == keep).collect();
        (x.select(ndarray::Axis(0), &rows), rows.iter().map(|&i| y[i]).collect())
    };
    let ((xf, yf), (xs, ys)) = (pick(false), pick(true));
    let data = GbmData { train: xf.view(), train_labels: &yf, valid: xs.view(), valid_labels: &ys, kinds };
    Ok(params.fit(data)?)
}

/// Telco rows as tree inputs: numeric cells as values (NaN when empty), the others as codes of the
/// training rows' categories (NaN when unseen).
fn telco_tree_rows(rows: &[&Vec<String>], numeric: &[usize], categorical: &[(usize, Vec<String>)]) -> Array2<f32> {
    let mut x = Array2::from_elem((rows.len(), numeric.len() + categorical.len()), f32::NAN);
    for (r, row) in rows.iter().enumerate() {
        for (j, &c) in numeric.iter().enumerate() {
            x[[r, j]] = row[c].parse::<f32>().unwrap_or(f32::NAN);
        }
        for (j, (c, cats)) in categorical.iter().enumerate() {
            if let Ok(code) = cats.binary_search(&row[*c]) {
                x[[r, numeric.len() + j]] = code as f32;
            }
        }
    }
    x
}

fn gbm_telco(o: &Opts) -> Res<Value> {
    let data::TelcoRows { header, rows, fold } = data::telco(&o.data)?;
    let label = header.iter().position(|h| h == "churn").ok_or("no churn column")?;
    let (tr, te): (Vec<usize>, Vec<usize>) = (0..rows.len()).partition(|&i| fold[i] != 0);
    let tr_rows: Vec<&Vec<String>> = tr.iter().map(|&i| &rows[i]).collect();
    let te_rows: Vec<&Vec<String>> = te.iter().map(|&i| &rows[i]).collect();
    let y_tr: Vec<bool> = tr_rows.iter().map(|r| r[label] == "Yes").collect();
    let y_te: Vec<bool> = te_rows.iter().map(|r| r[label] == "Yes").collect();
    let features: Vec<usize> = (0..header.len()).filter(|&c| c != label).collect();
    let is_numeric = |c: usize| tr_rows.iter().all(|r| r[c].is_empty() || r[c].parse::<f64>().is_ok());
    let numeric: Vec<usize> = features.iter().copied().filter(|&c| is_numeric(c)).collect();
    let (times, (model, categorical)) = timed((o.reps * 4).max(10), || {
        let categorical: Vec<(usize, Vec<String>)> = features
            .iter()
            .copied()
            .filter(|c| !numeric.contains(c))
            .map(|c| {
                let mut cats: Vec<String> = tr_rows.iter().map(|r| r[c].clone()).collect();
                cats.sort();
                cats.dedup();
                (c, cats)
            })
            .collect();
        let mut kinds = vec![FeatureKind::Numeric; numeric.len()];
        kinds.extend(std::iter::repeat_n(FeatureKind::Categorical, categorical.len()));
        let x = telco_tree_rows(&tr_rows, &numeric, &categorical);
        Ok((fit_trees(x.view(), &y_tr, &kinds, &GbmParams::default())?, categorical))
    })?;
    let p = model.predict(telco_tree_rows(&te_rows, &numeric, &categorical).view());
    Ok(record(
        "gbm_telco",
        "marquee gbm (hessboost)",
        "ROC AUC",
        roc_auc(&p, &y_te)?,
        &times,
        json!({"train": tr.len(), "test": te.len(), "trees": model.rounds}),
    ))
}

/// `gbm_1m`: the product's defaults (learning rate 0.05, depth 4, early stopping 50 rounds);
/// `gbm_1m_budget`: scikit-learn HistGradientBoosting's budget (100 trees, learning rate 0.1,
/// 32 leaves as depth 5, no L2), so time per tree compares at equal work.
fn gbm_1m(o: &Opts, task: &str) -> Res<Value> {
    let n = synth_n(o);
    let x = load_matrix(&o.work.join(format!("logreg_{n}x20_x.npy")))?.mapv(|v| v as f32);
    let (_, yv) = data::read_npy(&o.work.join(format!("logreg_{n}x20_y.npy")))?;
    let y: Vec<bool> = yv.iter().map(|&v| v > 0.5).collect();
    let kinds = vec![FeatureKind::Numeric; x.ncols()];
    let (xtr, xte) = (x.slice(ndarray::s![..n, ..]), x.slice(ndarray::s![n.., ..]));
    let (params, tool) = match task {
        "gbm_1m_budget" => (
            GbmParams { learning_rate: 0.1, max_rounds: 100, max_depth: 5, l2: 0.0, ..GbmParams::default() },
            "marquee gbm (100 trees, lr 0.1, depth 5)",
        ),
        _ => (GbmParams::default(), "marquee gbm (defaults, early stopping)"),
    };
    let (times, model) = timed(o.reps, || fit_trees(xtr, &y[..n], &kinds, &params))?;
    let p = model.predict(xte);
    Ok(record(
        "gbm_1m",
        tool,
        "ROC AUC",
        roc_auc(&p, &y[n..])?,
        &times,
        json!({"train": n, "test": y.len() - n, "trees": model.rounds}),
    ))
}

// ---- sentiment ----

fn tfidf_imdb(o: &Opts, task: &str) -> Res<Value> {
    let (docs, y) = data::imdb(&o.data)?;
    // Fold 0 of 5 by row index modulo 5 (the same split the peers use).
    let (tr, te): (Vec<usize>, Vec<usize>) = (0..docs.len()).partition(|i| i % 5 != 0);
    let tr_docs: Vec<&str> = tr.iter().map(|&i| docs[i].as_str()).collect();
    let te_docs: Vec<&str> = te.iter().map(|&i| docs[i].as_str()).collect();
    let tr_y: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
    let te_y: Vec<bool> = te.iter().map(|&i| y[i]).collect();
    let tfidf = TfidfParams::default();
    let acc = |p: &[f64]| p.iter().zip(&te_y).filter(|(p, &t)| (**p >= 0.5) == t).count() as f64 / te_y.len() as f64;
    let (tool, times, accuracy) = if task == "tfidf_imdb_nblr" {
        let (times, (v, m)) = timed(o.reps, || {
            let (v, x) = tfidf.fit_transform(&tr_docs)?;
            let m = NbLogisticParams::default().fit((&x, &tr_y))?;
            Ok((v, m))
        })?;
        ("marquee TF-IDF + NB-LR", times, acc(&m.predict(&v.transform(&te_docs))))
    } else {
        let (times, (v, m)) = timed(o.reps, || {
            let v = tfidf.fit(&tr_docs)?;
            let m = NaiveBayesParams::default().fit((&v.transform_counts(&tr_docs), &tr_y))?;
            Ok((v, m))
        })?;
        ("marquee TF-IDF + NB", times, acc(&m.predict(&v.transform_counts(&te_docs))))
    };
    Ok(record("tfidf_imdb", tool, "accuracy", accuracy, &times, json!({"train": tr.len(), "test": te.len()})))
}

// ---- scaling ----

fn scaling(o: &Opts) -> Res<Value> {
    let big = synth_n(o);
    let km = load_matrix(&o.work.join(format!("kmeans_{big}x16.npy")))?;
    let lx = load_matrix(&o.work.join(format!("logreg_{big}x20_x.npy")))?;
    let (_, ly) = data::read_npy(&o.work.join(format!("logreg_{big}x20_y.npy")))?;
    let ly: Vec<bool> = ly.iter().map(|&v| v > 0.5).collect();
    let mut rows = Vec::new();
    for n in [10_000usize, 100_000, 1_000_000] {
        if n > big {
            continue;
        }
        let reps = if n >= 1_000_000 { o.reps.min(3) } else { o.reps };
        let kx: ArrayView2<f64> = km.slice(ndarray::s![..n, ..]);
        let (t_km, _) = timed(reps, || Ok(KMeansParams { k: 8, n_init: 10, ..Default::default() }.fit(kx)?))?;
        let xx = lx.slice(ndarray::s![..n, ..]);
        let (t_lr, _) = timed(reps, || Ok(LogisticParams::default().fit((xx, &ly[..n]))?))?;
        let (ratings, nu, ni) = data::synth_ratings(n, 5);
        let (t_als, _) =
            timed(reps, || Ok(AlsParams { rank: 10, iterations: 10, lambda: 0.1, seed: 42 }.fit((&ratings, nu, ni))?))?;
        rows.push(json!({
            "rows": n,
            "kmeans_k8_x10_s": median(&t_km),
            "logreg_20col_s": median(&t_lr),
            "als_r10_s": median(&t_als),
            "als_users": nu, "als_items": ni,
        }));
    }
    Ok(json!({"task": "scaling", "tool": "marquee", "rows": rows}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_transform_equals_transform_with_the_fitted_prep() {
        let cells = [
            ["1", "Yes", "", "DSL"],
            ["5", "No", "2.5", "Fiber optic"],
            ["", "Yes", "7", "No"],
            ["12", "No", "1.25", "DSL"],
        ];
        let cols: Columns = (0..4).map(|c| cells.iter().map(|r| r[c]).collect()).collect();
        let (prep, x) = TelcoPrep::fit_transform(&cols, &[0, 1, 2, 3]);
        assert_eq!(prep.width, 2 + 2 + 3, "two numeric columns, then 2 and 3 categories");
        assert_eq!(x, prep.transform(&cols));
        // Sorted categories: "DSL", "Fiber optic", "No"; row 2 is "No".
        assert_eq!(x.row(2).to_vec()[4..], [0.0, 0.0, 1.0]);
        // Column 0: the empty cell takes the median of 1, 5, 12 (5), then standardised.
        let (mean, sd) = (23.0 / 4.0, ((1.0f64 + 25.0 + 25.0 + 144.0) / 4.0 - (23.0f64 / 4.0).powi(2)).sqrt());
        assert!((x[[2, 0]] - (5.0 - mean) / sd).abs() < 1e-12);
    }

    #[test]
    fn a_column_with_one_cell_that_is_not_a_number_is_categorical() {
        let cells = [["1", "a"], ["2", "b"], ["x", "a"], ["2", "b"]];
        let cols: Columns = (0..2).map(|c| cells.iter().map(|r| r[c]).collect()).collect();
        let (prep, x) = TelcoPrep::fit_transform(&cols, &[0, 1]);
        assert!(prep.numeric.is_empty());
        assert_eq!(
            prep.onehot,
            vec![(0, vec!["1".to_owned(), "2".into(), "x".into()]), (1, vec!["a".into(), "b".into()])]
        );
        assert_eq!(x.row(2).to_vec(), [0.0, 0.0, 1.0, 1.0, 0.0]);
        assert_eq!(x, prep.transform(&cols));
    }

    #[test]
    fn same_str_compares_every_byte() {
        let words = ["", "No", "Yes", "No internet service", "No internet servicf", "Month-to-month", "Month-to-montx"];
        for a in words {
            for b in words {
                assert_eq!(same_str(a, b), a == b, "{a:?} vs {b:?}");
            }
        }
        for n in 1..40 {
            let a = "x".repeat(n);
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'y';
                assert!(!same_str(&a, std::str::from_utf8(&b).unwrap()), "length {n}, byte {at}");
            }
            assert!(same_str(&a, &a.clone()));
        }
    }
}
