#!/usr/bin/env python3
"""Peer side of bench/run: one (tool, task) per process, printing one JSON line like marquee-bench.

    bench/.venv/bin/python bench/peers.py <sklearn|surprise|spark> <task> [--reps N] [--data DIR] [--work DIR] [--variant V]

The data folder (the data sets and protocol/ folds) is --data DIR, else $MARQUEE_DATA_DIR; there is no default.

Every peer reads the same files and the same protocol folds as marquee-bench (see bench/README.md);
heavy libraries are imported lazily so a process holds only its own tool.
"""
import argparse
import csv
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def timed(reps, fit):
    times, out = [], None
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - t)
    return times, out


def record(task, tool, metric, value, times, **extra):
    return {"task": task, "tool": tool, "metric": metric, "value": float(value),
            "fit_s": times, "median_s": median(times), "extra": extra}


# ---------- data (same files, same folds as marquee-bench) ----------

def movielens_fold(data, fold=0):
    with open(os.path.join(data, "protocol/ml100k_fold_assignments.csv")) as f:
        folds = [int(r["fold"]) for r in csv.DictReader(f)]
    train, test = [], []
    with open(os.path.join(data, "movielens_100k/ratings.csv")) as f:
        for row, r in enumerate(csv.DictReader(f)):
            t = (int(r["user_id"]), int(r["item_id"]), float(r["rating"]))
            (test if folds[row] == fold else train).append(t)
    return train, test


def cdnow_z(data):
    with open(os.path.join(data, "protocol/cdnow_customer_features.csv")) as f:
        rows = list(csv.reader(f))
    cols = [i for i, h in enumerate(rows[0]) if h.startswith("z_")]
    return np.array([[float(r[i]) for i in cols] for r in rows[1:]])


def telco(data):
    with open(os.path.join(data, "telco_churn_ibm/wa_churn.csv")) as f:
        rows = list(csv.reader(f))
    with open(os.path.join(data, "protocol/telco_fold_assignments.csv")) as f:
        folds = [int(r["fold"]) for r in csv.DictReader(f)]
    return rows[0], rows[1:], folds


def telco_split(data):
    header, rows, folds = telco(data)
    label = header.index("churn")
    feats = [c for c in range(len(header)) if c != label]
    tr = [r for r, f in zip(rows, folds) if f != 0]
    te = [r for r, f in zip(rows, folds) if f == 0]

    def isnum(v):
        try:
            float(v)
            return True
        except ValueError:
            return v == ""
    num = [c for c in feats if all(isnum(r[c]) for r in tr)]
    cat = [c for c in feats if c not in num]
    return header, label, num, cat, tr, te


def imdb(data):
    with gzip.open(os.path.join(data, "imdb_reviews_25k/imdb_train_25k.csv.gz"), "rt", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    docs = [r[0] for r in rows]
    y = np.array([r[1] == "1" for r in rows])
    te = np.arange(len(docs)) % 5 == 0
    return docs, y, te


def synth_n(work):
    return 1_000_000 if os.path.exists(os.path.join(work, "kmeans_1000000x16.npy")) else 100_000


def auc(scores, labels):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(labels, scores)


# ---------- scikit-learn ----------

def sk_kmeans_cdnow(a):
    from sklearn.cluster import KMeans
    x = cdnow_z(a.data)
    times, sses = timed(a.reps, lambda: [KMeans(n_clusters=k, n_init=10, random_state=42).fit(x).inertia_
                                         for k in range(2, 11)])
    return record("kmeans_cdnow", "scikit-learn KMeans", "SSE sum k=2..10", sum(sses), times, sse_by_k=sses)


def sk_kmeans_1m(a):
    from sklearn.cluster import KMeans
    n = synth_n(a.work)
    x = np.load(os.path.join(a.work, f"kmeans_{n}x16.npy"))
    times, m = timed(a.reps, lambda: KMeans(n_clusters=8, n_init=10, random_state=42).fit(x))
    return record("kmeans_1m", "scikit-learn KMeans", "SSE k=8", m.inertia_, times, shape=list(x.shape))


def sk_telco_pipeline(num, cat):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    to_float = FunctionTransformer(lambda a: np.where(a == "", np.nan, a).astype(float))
    numeric = Pipeline([("float", to_float), ("impute", SimpleImputer(strategy="median")),
                        ("scale", StandardScaler())])
    pre = ColumnTransformer([("num", numeric, num), ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
    return Pipeline([("pre", pre), ("lr", LogisticRegression(C=1.0, max_iter=1000))])


def sk_logreg_telco(a):
    header, label, num, cat, tr, te = telco_split(a.data)
    xtr = np.array(tr, dtype=object)
    xte = np.array(te, dtype=object)
    ytr = np.array([r[label] == "Yes" for r in tr])
    yte = np.array([r[label] == "Yes" for r in te])
    times, m = timed(max(a.reps * 4, 10), lambda: sk_telco_pipeline(num, cat).fit(xtr, ytr))
    return record("logreg_telco", "scikit-learn LogisticRegression (lbfgs)", "ROC AUC",
                  auc(m.predict_proba(xte)[:, 1], yte), times)


def sk_logreg_1m(a):
    from sklearn.linear_model import LogisticRegression
    n = synth_n(a.work)
    x = np.load(os.path.join(a.work, f"logreg_{n}x20_x.npy"))
    y = np.load(os.path.join(a.work, f"logreg_{n}x20_y.npy")) > 0.5
    times, m = timed(a.reps, lambda: LogisticRegression(C=1.0, max_iter=1000).fit(x[:n], y[:n]))
    return record("logreg_1m", "scikit-learn LogisticRegression (lbfgs)", "ROC AUC",
                  auc(m.predict_proba(x[n:])[:, 1], y[n:]), times)


def sk_hgb(x_cat_mask=None):
    from sklearn.ensemble import HistGradientBoostingClassifier
    # Defaults (learning_rate 0.1, 31 leaves, 100 iterations, early stopping on 10% when n > 10k):
    # the untuned model a data team starts from; categorical columns native.
    return HistGradientBoostingClassifier(categorical_features=x_cat_mask, random_state=0)


def telco_codes(header, label, num, cat, rows, cats):
    """Numeric columns as floats (NaN when empty), categorical ones as codes of the training categories."""
    out = np.full((len(rows), len(num) + len(cat)), np.nan)
    for i, r in enumerate(rows):
        for j, c in enumerate(num):
            out[i, j] = float(r[c]) if r[c] != "" else np.nan
        for j, c in enumerate(cat):
            out[i, len(num) + j] = cats[j].get(r[c], np.nan)
    return out


def sk_gbm_telco(a):
    header, rows, folds = telco(a.data)
    label = header.index("churn")
    _, _, num, cat, tr, te = telco_split(a.data)
    mask = np.array([False] * len(num) + [True] * len(cat))

    def split(test_fold):
        tr = [r for r, f in zip(rows, folds) if f != test_fold]
        te = [r for r, f in zip(rows, folds) if f == test_fold]
        cats = [{v: k for k, v in enumerate(sorted({r[c] for r in tr}))} for c in cat]
        return (telco_codes(header, label, num, cat, tr, cats), np.array([r[label] == "Yes" for r in tr]),
                telco_codes(header, label, num, cat, te, cats), np.array([r[label] == "Yes" for r in te]))
    xtr, ytr, xte, yte = split(0)
    times, m = timed(max(a.reps * 4, 10), lambda: sk_hgb(mask).fit(xtr, ytr))
    # The 5 protocol folds' AUCs (outside the timing): the anchor marquee eval stands beside.
    per_fold = []
    for f in range(5):
        a_tr, a_ytr, a_te, a_yte = split(f)
        per_fold.append(auc(sk_hgb(mask).fit(a_tr, a_ytr).predict_proba(a_te)[:, 1], a_yte))
    return record("gbm_telco", "scikit-learn HistGradientBoosting", "ROC AUC",
                  auc(m.predict_proba(xte)[:, 1], yte), times, protocol_folds_auc=per_fold,
                  protocol_mean_auc=float(np.mean(per_fold)))


def sk_gbm_1m(a):
    n = synth_n(a.work)
    x = np.load(os.path.join(a.work, f"logreg_{n}x20_x.npy")).astype(np.float32)
    y = np.load(os.path.join(a.work, f"logreg_{n}x20_y.npy")) > 0.5
    times, m = timed(a.reps, lambda: sk_hgb().fit(x[:n], y[:n]))
    return record("gbm_1m", "scikit-learn HistGradientBoosting", "ROC AUC",
                  auc(m.predict_proba(x[n:])[:, 1], y[n:]), times, iterations=int(m.n_iter_))


def sk_tfidf_imdb(a):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC
    docs, y, te = imdb(a.data)
    tr_docs = [d for d, t in zip(docs, te) if not t]
    te_docs = [d for d, t in zip(docs, te) if t]
    clf = {"svc": (LinearSVC, "LinearSVC"), "nb": (MultinomialNB, "MultinomialNB"),
           "lr": (lambda: LogisticRegression(max_iter=1000), "LogisticRegression")}[a.variant or "svc"]

    def fit():
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        return make_pipeline(vec, clf[0]()).fit(tr_docs, y[~te])
    times, m = timed(a.reps, fit)
    acc = float((m.predict(te_docs) == y[te]).mean())
    return record("tfidf_imdb", f"scikit-learn TF-IDF + {clf[1]}", "accuracy", acc, times)


# ---------- product path: the whole pipeline per protocol fold (marquee's side: bench/product.py) ----------

def telco_folds(data):
    """The 5 protocol folds of wa_churn.csv as (train rows, test rows), and the column split."""
    header, rows, folds = telco(data)
    _, label, num, cat, _, _ = telco_split(data)
    return header, label, num, cat, [([r for r, f in zip(rows, folds) if f != k],
                                      [r for r, f in zip(rows, folds) if f == k]) for k in range(5)]


def per_fold(reps, folds, fit_score):
    """fit_score(train, test) -> (fit seconds, metric) on every fold, `reps` times: the fit seconds per
    fold (mean over the folds) of each repetition, and the metric's mean over the folds."""
    times, metric = [], []
    for _ in range(max(1, reps)):
        runs = [fit_score(tr, te) for tr, te in folds]
        times.append(sum(t for t, _ in runs) / len(runs))
        metric = [m for _, m in runs]
    return times, float(np.mean(metric)), metric


def sk_product_telco(a):
    """One-hot + scaler + LR fitted on each protocol fold from the raw string rows; with --variant
    calibrated, wrapped in CalibratedClassifierCV(sigmoid, 5 folds, ensemble=False): Platt scaling on
    out-of-fold scores and the pipeline refitted on every training row, which is what marquee's churn
    model does."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    header, label, num, cat, folds = telco_folds(a.data)

    def fit_score(tr, te):
        x, y = np.array(tr, dtype=object), np.array([r[label] == "Yes" for r in tr])
        t = time.perf_counter()
        m = sk_telco_pipeline(num, cat)
        if a.variant == "calibrated":
            m = CalibratedClassifierCV(m, method="sigmoid", ensemble=False,
                                       cv=StratifiedKFold(5, shuffle=True, random_state=0))
        m.fit(x, y)
        t = time.perf_counter() - t
        return t, auc(m.predict_proba(np.array(te, dtype=object))[:, 1], [r[label] == "Yes" for r in te])
    times, mean, folds_auc = per_fold(a.reps, folds, fit_score)
    tool = "scikit-learn one-hot + scaler + LR" + (" in CalibratedClassifierCV(sigmoid, cv=5)"
                                                   if a.variant == "calibrated" else "")
    return record("product_telco", tool, "ROC AUC (mean of folds)", mean, times, per_fold_auc=folds_auc)


def sk_product_telco_gbm(a):
    """HistGradientBoosting (categoricals native) per protocol fold, the category codes built from the
    training fold inside the timing; --variant calibrated as for sk_product_telco."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    header, label, num, cat, folds = telco_folds(a.data)
    mask = np.array([False] * len(num) + [True] * len(cat))

    def fit_score(tr, te):
        y = np.array([r[label] == "Yes" for r in tr])
        t = time.perf_counter()
        cats = [{v: k for k, v in enumerate(sorted({r[c] for r in tr}))} for c in cat]
        x = telco_codes(header, label, num, cat, tr, cats)
        m = sk_hgb(mask)
        if a.variant == "calibrated":
            m = CalibratedClassifierCV(m, method="sigmoid", ensemble=False,
                                       cv=StratifiedKFold(5, shuffle=True, random_state=0))
        m.fit(x, y)
        t = time.perf_counter() - t
        xte = telco_codes(header, label, num, cat, te, cats)
        return t, auc(m.predict_proba(xte)[:, 1], [r[label] == "Yes" for r in te])
    times, mean, folds_auc = per_fold(a.reps, folds, fit_score)
    tool = "scikit-learn HistGradientBoosting" + (" in CalibratedClassifierCV(sigmoid, cv=5)"
                                                  if a.variant == "calibrated" else "")
    return record("product_telco_gbm", tool, "ROC AUC (mean of folds)", mean, times, per_fold_auc=folds_auc)


def surprise_product_movielens(a):
    """Surprise SVD (defaults) on each of the 5 ML-100K protocol folds: building the trainset from the
    ratings in memory and fitting are timed; RMSE on the held-out fold."""
    import tempfile
    from surprise import SVD, Dataset, Reader
    folds = []
    for k in range(5):
        train, test = movielens_fold(a.data, k)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            for u, i, r in train:
                f.write(f"{u},{i},{r}\n")
            path = f.name
        ds = Dataset.load_from_file(path, Reader(line_format="user item rating", sep=",", rating_scale=(1, 5)))
        os.unlink(path)
        folds.append((ds, test))

    def fit_score(ds, test):
        t = time.perf_counter()
        algo = SVD(random_state=0).fit(ds.build_full_trainset())
        t = time.perf_counter() - t
        se = sum((algo.predict(str(u), str(i)).est - r) ** 2 for u, i, r in test)
        return t, (se / len(test)) ** 0.5
    times, mean, folds_rmse = per_fold(a.reps, folds, fit_score)
    return record("product_movielens", "Surprise SVD (100 factors, 20 epochs)", "RMSE (mean of folds)", mean,
                  times, per_fold_rmse=folds_rmse)


# ---------- Surprise ----------

def surprise_als_r10(a):
    import tempfile
    from surprise import SVD, Dataset, Reader
    train, test = movielens_fold(a.data)
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        for u, i, r in train:
            f.write(f"{u},{i},{r}\n")
        path = f.name
    trainset = Dataset.load_from_file(path, Reader(line_format="user item rating", sep=",",
                                                   rating_scale=(1, 5))).build_full_trainset()
    os.unlink(path)
    times, algo = timed(a.reps, lambda: SVD(random_state=0).fit(trainset))
    se = sum((algo.predict(str(u), str(i)).est - r) ** 2 for u, i, r in test)
    return record("als_r10", "Surprise SVD (100 factors, 20 epochs)", "RMSE", (se / len(test)) ** 0.5, times)


# ---------- Spark MLlib ----------

def spark_session():
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[2]").appName("marquee-bench")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "6g")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_als(a, rank):
    from pyspark.ml.recommendation import ALS
    spark = spark_session()
    train, test = movielens_fold(a.data)
    cols = ["user", "item", "rating"]
    tr = spark.createDataFrame(train, cols).repartition(2).cache()
    te = spark.createDataFrame(test, cols).cache()
    tr.count(), te.count()
    als = ALS(rank=rank, maxIter=10, regParam=0.1, userCol="user", itemCol="item", ratingCol="rating",
              coldStartStrategy="drop", seed=42)
    times, m = timed(a.reps, lambda: als.fit(tr))
    pred = m.transform(te).select("rating", "prediction").collect()
    rmse = (sum((r - p) ** 2 for r, p in pred) / len(pred)) ** 0.5
    spark.stop()
    return record(f"als_r{rank}", "Spark MLlib ALS", "RMSE", rmse, times, scored=len(pred), test=len(test))


def spark_kmeans_cdnow(a):
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.linalg import Vectors
    spark = spark_session()
    x = cdnow_z(a.data)
    df = spark.createDataFrame([(Vectors.dense(r),) for r in x.tolist()], ["features"]).repartition(2).cache()
    df.count()
    n_init = 10

    def fit():
        out = []
        for k in range(2, 11):
            best = min(KMeans(k=k, seed=s, maxIter=300, tol=1e-4).fit(df).summary.trainingCost
                       for s in range(n_init))
            out.append(best)
        return out
    times, sses = timed(a.reps, fit)
    spark.stop()
    return record("kmeans_cdnow", "Spark MLlib KMeans (k-means||)", "SSE sum k=2..10", sum(sses), times,
                  sse_by_k=sses, n_init=n_init)


def spark_frame_from_npy(spark, x, y=None):
    """A cached DataFrame of `features` (and `label`) built from numpy through a CSV cache file."""
    from pyspark.ml.feature import VectorAssembler
    d = x.shape[1]
    rows = np.column_stack([x, y]) if y is not None else x
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"marquee-bench-{os.getpid()}.csv")
    np.savetxt(path, rows, delimiter=",", fmt="%.17g")
    names = [f"c{j}" for j in range(d)] + (["label"] if y is not None else [])
    schema = ", ".join(f"{c} DOUBLE" for c in names)
    raw = spark.read.csv(path, schema=schema)
    df = VectorAssembler(inputCols=names[:d], outputCol="features").transform(raw)
    df = df.select("features", *(["label"] if y is not None else [])).repartition(2).cache()
    df.count()
    os.unlink(path)
    return df


def spark_kmeans_1m(a):
    from pyspark.ml.clustering import KMeans
    spark = spark_session()
    n = synth_n(a.work)
    df = spark_frame_from_npy(spark, np.load(os.path.join(a.work, f"kmeans_{n}x16.npy")))
    times, best = timed(a.reps, lambda: min(KMeans(k=8, seed=s, maxIter=300, tol=1e-4).fit(df).summary.trainingCost
                                            for s in range(10)))
    spark.stop()
    return record("kmeans_1m", "Spark MLlib KMeans (k-means||)", "SSE k=8", best, times, n_init=10)


def spark_logreg_telco(a):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import Imputer, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType
    spark = spark_session()
    header, label, num, cat, tr, te = telco_split(a.data)
    fields = [StructField(f"c{c}", DoubleType() if c in num else StringType()) for c in num + cat]
    schema = StructType(fields + [StructField("label", DoubleType())])

    def rows(rs):
        return [tuple([float(r[c]) if r[c] != "" else None for c in num] + [r[c] for c in cat]
                      + [1.0 if r[label] == "Yes" else 0.0]) for r in rs]
    dtr = spark.createDataFrame(rows(tr), schema).cache()
    dte = spark.createDataFrame(rows(te), schema).cache()
    dtr.count(), dte.count()
    numc = [f"c{c}" for c in num]
    catc = [f"c{c}" for c in cat]
    stages = [Imputer(inputCols=numc, outputCols=[f"{c}_i" for c in numc], strategy="median"),
              StringIndexer(inputCols=catc, outputCols=[f"{c}_ix" for c in catc], handleInvalid="keep"),
              OneHotEncoder(inputCols=[f"{c}_ix" for c in catc], outputCols=[f"{c}_oh" for c in catc],
                            dropLast=False),
              VectorAssembler(inputCols=[f"{c}_i" for c in numc], outputCol="num"),
              StandardScaler(inputCol="num", outputCol="num_s", withMean=True, withStd=True),
              VectorAssembler(inputCols=["num_s"] + [f"{c}_oh" for c in catc], outputCol="features"),
              # regParam is on the mean loss: 1 / (C * n) matches scikit-learn's C = 1.
              LogisticRegression(regParam=1.0 / len(tr), elasticNetParam=0.0, standardization=False,
                                 maxIter=100)]
    times, m = timed(a.reps, lambda: Pipeline(stages=stages).fit(dtr))
    pred = m.transform(dte).select("probability", "label").collect()
    value = auc([p[1] for p, _ in pred], [l > 0.5 for _, l in pred])
    spark.stop()
    return record("logreg_telco", "Spark MLlib LogisticRegression", "ROC AUC", value, times)


def spark_logreg_1m(a):
    from pyspark.ml.classification import LogisticRegression
    spark = spark_session()
    n = synth_n(a.work)
    x = np.load(os.path.join(a.work, f"logreg_{n}x20_x.npy"))
    y = np.load(os.path.join(a.work, f"logreg_{n}x20_y.npy"))
    dtr = spark_frame_from_npy(spark, x[:n], y[:n])
    lr = LogisticRegression(regParam=1.0 / n, standardization=False, maxIter=100)
    times, m = timed(a.reps, lambda: lr.fit(dtr))
    coef = m.coefficients.toArray()
    value = auc(x[n:] @ coef + m.intercept, y[n:] > 0.5)
    spark.stop()
    return record("logreg_1m", "Spark MLlib LogisticRegression", "ROC AUC", value, times)


TASKS = {
    ("sklearn", "kmeans_cdnow"): sk_kmeans_cdnow,
    ("sklearn", "kmeans_1m"): sk_kmeans_1m,
    ("sklearn", "logreg_telco"): sk_logreg_telco,
    ("sklearn", "gbm_telco"): sk_gbm_telco,
    ("sklearn", "gbm_1m"): sk_gbm_1m,
    ("sklearn", "logreg_1m"): sk_logreg_1m,
    ("sklearn", "tfidf_imdb"): sk_tfidf_imdb,
    ("surprise", "als_r10"): surprise_als_r10,
    ("sklearn", "product_telco"): sk_product_telco,
    ("sklearn", "product_telco_gbm"): sk_product_telco_gbm,
    ("surprise", "product_movielens"): surprise_product_movielens,
    ("spark", "als_r10"): lambda a: spark_als(a, 10),
    ("spark", "als_r50"): lambda a: spark_als(a, 50),
    ("spark", "kmeans_cdnow"): spark_kmeans_cdnow,
    ("spark", "kmeans_1m"): spark_kmeans_1m,
    ("spark", "logreg_telco"): spark_logreg_telco,
    ("spark", "logreg_1m"): spark_logreg_1m,
}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("tool")
    p.add_argument("task")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--data", default=os.environ.get("MARQUEE_DATA_DIR") or None,
                   help="data folder (data sets + protocol/); default $MARQUEE_DATA_DIR")
    p.add_argument("--work", default="bench/results/data")
    p.add_argument("--variant", default=None)
    a = p.parse_args()
    if not a.data:
        p.error("no data folder: pass --data DIR or set MARQUEE_DATA_DIR")
    if not os.path.isdir(a.data):
        p.error(f"data folder {a.data} (from --data or MARQUEE_DATA_DIR) is not a folder")
    fn = TASKS.get((a.tool, a.task))
    if fn is None:
        sys.exit(f"peers.py: no task {a.task} for {a.tool}")
    print(json.dumps(fn(a)), flush=True)


if __name__ == "__main__":
    main()
