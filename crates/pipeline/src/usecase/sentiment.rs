//! Sentiment: tokenise social posts / reviews, uni+bigram features, naive Bayes and an
//! NB-weighted logistic regression; positive / negative / neutral (a confidence band), then
//! trending sentiment per title, brand and talent over time windows with slope and direction.

use marquee_ml::char_ngram::{CharNgramParams, CharNgramVectorizer};
use marquee_ml::metrics;
use marquee_ml::svm::{LinearSvmModel, LinearSvmParams, NbSvmModel, NbSvmParams, Platt};
use marquee_ml::text::{
    NaiveBayesModel, NaiveBayesParams, NbLogisticModel, NbLogisticParams, TfidfParams, TfidfVectorizer,
};
use marquee_ml::trend::{self, Direction};
use marquee_ml::{Fit, Predict};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

use super::common::{
    from_json, stratified_split, to_json, Criterion, CriterionKind, DeployParams, Evaluation, Op, PrimaryMetric,
};
use super::{Details, Files, ItemSink, Tables, UseCase};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::keys::score;
use crate::spec::{ColumnKind, SentimentModelKind, SentimentSpec, Spec, UseCaseSection};
use crate::store::Item;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Classifier {
    NaiveBayes(NaiveBayesModel),
    NbLogistic(NbLogisticModel),
    /// P(positive) = Platt-scaled margin (see `calibrate`).
    NbSvm {
        words: NbSvmModel,
        platt: Platt,
    },
    /// NBSVM on the word n-grams plus a linear SVM on character n-grams (its own vectorizer,
    /// fitted on the training texts in `train`); the margin is the sum of the two, Platt-scaled.
    NbSvmChar {
        words: NbSvmModel,
        chars: CharNgramVectorizer,
        char_svm: LinearSvmModel,
        platt: Platt,
    },
}

impl Classifier {
    fn name(&self) -> &'static str {
        match self {
            Classifier::NaiveBayes(_) => "naive_bayes",
            Classifier::NbLogistic(_) => "nb_logistic",
            Classifier::NbSvm { .. } => "nb_svm",
            Classifier::NbSvmChar { .. } => "nb_svm_char",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentModel {
    pub vectorizer: TfidfVectorizer,
    pub classifier: Classifier,
    /// Validation accuracy of each candidate when `model = "auto"` chose between them.
    pub validation: BTreeMap<String, f64>,
    pub fingerprint: String,
}

/// Three-way call from P(positive) and the neutral band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Polarity {
    Positive,
    Negative,
    Neutral,
}

pub fn polarity(p: f64, band: [f64; 2]) -> Polarity {
    if p > band[1] {
        Polarity::Positive
    } else if p < band[0] {
        Polarity::Negative
    } else {
        Polarity::Neutral
    }
}

impl SentimentModel {
    pub fn predict_proba<S: AsRef<str>>(&self, texts: &[S]) -> Vec<f64> {
        match &self.classifier {
            Classifier::NaiveBayes(m) => m.predict(&self.vectorizer.transform_counts(texts)),
            Classifier::NbLogistic(m) => m.predict(&self.vectorizer.transform(texts)),
            Classifier::NbSvm { platt, .. } | Classifier::NbSvmChar { platt, .. } => {
                let margins = svm_margins(&self.classifier, &self.vectorizer, texts);
                margins.into_iter().map(|m| platt.predict(m)).collect()
            }
        }
    }
}

/// Uncalibrated margins of the SVM classifiers (empty for the others).
fn svm_margins<S: AsRef<str>>(c: &Classifier, v: &TfidfVectorizer, texts: &[S]) -> Vec<f64> {
    match c {
        Classifier::NbSvm { words, .. } => words.predict(&v.transform_counts(texts)),
        Classifier::NbSvmChar { words, chars, char_svm, .. } => {
            let w = words.predict(&v.transform_counts(texts));
            let c = char_svm.predict(&chars.transform(texts));
            w.iter().zip(&c).map(|(w, c)| w + c).collect()
        }
        _ => Vec::new(),
    }
}

/// What sentiment's evaluation reports besides its criteria.
/// Every field but `confusion` may be absent (read as empty), so partial documents stay readable;
/// `confusion` tells the use cases' details apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentDetails {
    /// The classifier deployed (`naive_bayes`, `nb_logistic`, `nb_svm`, `nb_svm_char`).
    #[serde(default)]
    pub classifier: String,
    /// Validation accuracy of each candidate when `model = "auto"` chose between them.
    #[serde(default)]
    pub validation_accuracy: BTreeMap<String, f64>,
    #[serde(default)]
    pub test_rows: usize,
    #[serde(default)]
    pub accuracy: f64,
    #[serde(default)]
    pub macro_f1: f64,
    pub confusion: Confusion,
    #[serde(default)]
    pub neutral_band: [f64; 2],
    /// Share of test posts whose P(positive) falls in the neutral band.
    #[serde(default)]
    pub neutral_share: f64,
    #[serde(default)]
    pub accuracy_outside_neutral_band: f64,
    #[serde(default)]
    pub vocabulary: usize,
}

/// Actual classes (rows) by predicted polarity (columns), with their names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confusion {
    pub rows: [String; 2],
    pub columns: [String; 3],
    pub counts: [[usize; 3]; 2],
}

/// Sentiment: a text classifier, then trending net sentiment per entity.
pub struct Sentiment;

impl UseCase for Sentiment {
    fn id(&self) -> crate::spec::UseCase {
        crate::spec::UseCase::Sentiment
    }
    fn section<'a>(&self, spec: &'a Spec) -> Option<&'a dyn UseCaseSection> {
        spec.sentiment.as_ref().map(|s| s as &dyn UseCaseSection)
    }
    fn needed_tables(&self, spec: &Spec) -> Vec<String> {
        spec.sentiment.iter().map(|s| s.table.clone()).collect()
    }
    fn label_columns(&self, spec: &Spec) -> Vec<(String, String)> {
        spec.sentiment.iter().map(|s| (s.table.clone(), s.label.clone())).collect()
    }
    fn prepare(&self, spec: &Spec, tables: &Tables) -> Result<Files> {
        let s = spec_of(spec)?;
        let frame = tables.get(&s.table)?;
        let (rows, y) = labelled(frame, s)?;
        if y.iter().all(|&v| v) || y.iter().all(|&v| !v) {
            return Err(Error::Input {
                file: spec.table(&s.table)?.file.clone(),
                line: 1,
                column: s.label.clone(),
                reason: format!("need labelled rows of both `{}` and `{}`", s.positive, s.negative),
            });
        }
        let (train, test) = stratified_split(&y, spec.pipeline.test_fraction, spec.pipeline.seed);
        let to_rows = |idx: &[usize]| idx.iter().map(|&i| rows[i]).collect::<Vec<_>>();
        self.prepare_split(spec, tables, &to_rows(&train), &to_rows(&test))
    }
    /// [`UseCase::prepare`] on a given split (row indices of the posts table; rows should be labelled). The
    /// TF-IDF vocabulary and idf are fitted on the `train` texts only.
    fn prepare_split(&self, spec: &Spec, tables: &Tables, train: &[usize], test: &[usize]) -> Result<Files> {
        let s = spec_of(spec)?;
        let frame = tables.get(&s.table)?;
        let cols = [s.text.clone(), s.label.clone()];
        let train_frame = frame.select(&cols, train)?;
        let vectorizer = tfidf_params(s).fit(&train_frame.col(&s.text)?.to_strs())?;
        let mut files = Files::new();
        files.insert("train.csv".into(), train_frame.to_csv());
        files.insert("test.csv".into(), frame.csv_of(&cols, test)?);
        files.insert("encoder.json".into(), to_json(&vectorizer));
        Ok(files)
    }
    fn train(&self, spec: &Spec, files: &Files, _tables: &Tables, fingerprint: &str) -> Result<Vec<u8>> {
        let s = spec_of(spec)?;
        let train = files.frame("train.csv")?;
        let vectorizer: TfidfVectorizer = from_json(files.get("encoder.json")?, "sentiment vectorizer")?;
        let texts = train.col(&s.text)?.to_strs();
        let y: Vec<bool> = train.col(&s.label)?.iter().map(|v| v == &s.positive).collect();
        let seed = spec.pipeline.seed;
        let mut validation = BTreeMap::new();
        let kind = match s.model {
            SentimentModelKind::Auto => {
                // Choose on a validation split of the training data, never on the test split.
                let (fit_idx, val_idx) = stratified_split(&y, 0.2, seed.wrapping_add(1));
                let pick_t = |idx: &[usize]| idx.iter().map(|&i| texts[i]).collect::<Vec<_>>();
                let pick_y = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<_>>();
                let (vt, vy) = (pick_t(&val_idx), pick_y(&val_idx));
                let mut best = (SentimentModelKind::NbLogistic, f64::NEG_INFINITY);
                for kind in [SentimentModelKind::NaiveBayes, SentimentModelKind::NbLogistic] {
                    let c = fit_classifier(kind, &vectorizer, &pick_t(&fit_idx), &pick_y(&fit_idx), seed)?;
                    let m = SentimentModel {
                        vectorizer: vectorizer.clone(),
                        classifier: c,
                        validation: BTreeMap::new(),
                        fingerprint: String::new(),
                    };
                    let acc = binary_accuracy(&m.predict_proba(&vt), &vy);
                    validation.insert(kind_name(kind).to_string(), acc);
                    if acc > best.1 {
                        best = (kind, acc);
                    }
                }
                best.0
            }
            k => k,
        };
        let classifier = fit_classifier(kind, &vectorizer, &texts, &y, seed)?;
        Ok(to_json(&SentimentModel { vectorizer, classifier, validation, fingerprint: fingerprint.to_string() }))
    }
    fn evaluate(&self, spec: &Spec, model_bytes: &[u8], files: &Files) -> Result<Evaluation> {
        let s = spec_of(spec)?;
        let model: SentimentModel = from_json(model_bytes, "sentiment model")?;
        let test = files.frame("test.csv")?;
        let y: Vec<bool> = test.col(&s.label)?.iter().map(|v| v == &s.positive).collect();
        let p = model.predict_proba(&test.col(&s.text)?.to_strs());
        let accuracy = binary_accuracy(&p, &y);
        let actual: Vec<usize> = y.iter().map(|&v| usize::from(!v)).collect(); // 0 = positive, 1 = negative
        let predicted: Vec<usize> = p.iter().map(|&p| usize::from(p < 0.5)).collect();
        let macro_f1 = metrics::macro_f1(&actual, &predicted, 2);
        // Actual (positive, negative) x predicted (positive, negative, neutral).
        let mut confusion = [[0usize; 3]; 2];
        let mut confident = (0usize, 0usize);
        for (&a, &pp) in actual.iter().zip(&p) {
            let col = match polarity(pp, s.neutral_band) {
                Polarity::Positive => 0,
                Polarity::Negative => 1,
                Polarity::Neutral => 2,
            };
            confusion[a][col] += 1;
            if col != 2 {
                confident.0 += 1;
                confident.1 += usize::from(col == a);
            }
        }
        let majority =
            y.iter().filter(|&&v| v).count().max(y.iter().filter(|&&v| !v).count()) as f64 / y.len().max(1) as f64;
        let kind = model.classifier.name();
        Ok(Evaluation {
            primary: PrimaryMetric { name: "accuracy".into(), value: accuracy, higher_is_better: true },
            criteria: vec![
                Criterion::check(CriterionKind::Technical, "accuracy vs majority class", accuracy, Op::Gt, majority),
                Criterion::check(CriterionKind::Business, "accuracy", accuracy, Op::Ge, s.criteria.min_accuracy)
                    .relax("sentiment.criteria.min_accuracy"),
            ],
            details: Details::Sentiment(SentimentDetails {
                classifier: kind.into(),
                validation_accuracy: model.validation,
                test_rows: y.len(),
                accuracy,
                macro_f1,
                confusion: Confusion {
                    rows: ["positive".into(), "negative".into()],
                    columns: ["positive".into(), "negative".into(), "neutral".into()],
                    counts: confusion,
                },
                neutral_band: s.neutral_band,
                neutral_share: confusion.iter().map(|r| r[2]).sum::<usize>() as f64 / y.len().max(1) as f64,
                accuracy_outside_neutral_band: confident.1 as f64 / confident.0.max(1) as f64,
                vocabulary: model.vectorizer.n_features(),
            }),
            deploy_params: BTreeMap::new(),
            scores: crate::drift::Distribution::numeric(&p),
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
        let window_days = spec_of(spec)?.window_days;
        out(trends(spec, model_bytes, tables)?
            .into_iter()
            .map(|t| {
                Item::new(
                    score::entity(&t.kind, &t.entity),
                    score::SENTIMENT,
                    json!({
                        "entity_kind": t.kind,
                        "positive": t.positive,
                        "negative": t.negative,
                        "neutral": t.neutral,
                        "mentions": t.positive + t.negative + t.neutral,
                        "net_score": super::churn::round6(net(t.positive, t.negative, t.neutral)),
                        "trend_slope": super::churn::round6(t.slope),
                        "direction": t.direction,
                        "window_days": window_days,
                        "windows": t.windows,
                        "as_of": t.as_of,
                        "model_version": version,
                    }),
                )
            })
            .collect())
    }
}

/// Trending sentiment of one entity (a title, brand or talent) over the spec's time windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityTrend {
    /// The entity kind (a key of `sentiment.entities`, e.g. `title`).
    pub kind: String,
    pub entity: String,
    pub positive: usize,
    pub negative: usize,
    pub neutral: usize,
    /// Least-squares slope of the net score per window, oldest window first.
    pub slope: f64,
    pub direction: Direction,
    /// Per window, oldest first.
    pub windows: Vec<WindowCounts>,
    /// The newest post's time (RFC 3339): the end of the last window.
    pub as_of: String,
}

/// The trend of every entity with at least `sentiment.min_mentions` mentions, scored by the
/// sentiment model `model_bytes` over the posts table of `tables`.
pub fn trends(spec: &Spec, model_bytes: &[u8], tables: &Tables) -> Result<Vec<EntityTrend>> {
    let s = spec_of(spec)?;
    let model: SentimentModel = from_json(model_bytes, "sentiment model")?;
    let frame = tables.get(&s.table)?;
    let p = model.predict_proba(&frame.col(&s.text)?.to_strs());
    let times = if s.timestamp.is_empty() { vec![None; frame.n_rows()] } else { frame.timestamps(&s.timestamp)? };
    let as_of = times.iter().flatten().copied().max().unwrap_or(0);
    let window = s.window_days as i64 * 86_400;
    let n_windows = s.trend_windows;
    let mentions = mentions(frame, s, spec)?;

    // (kind, entity) -> per-window (newest first) [pos, neg, neu], plus totals.
    type Counts = [usize; 3];
    let mut agg: BTreeMap<(String, String), (Vec<Counts>, Counts)> = BTreeMap::new();
    for (i, ents) in mentions.iter().enumerate() {
        let cls = match polarity(p[i], s.neutral_band) {
            Polarity::Positive => 0,
            Polarity::Negative => 1,
            Polarity::Neutral => 2,
        };
        let w = times[i].map(|t| ((as_of - t) / window) as usize);
        for e in ents {
            let entry = agg.entry(e.clone()).or_insert_with(|| (vec![[0; 3]; n_windows], [0; 3]));
            entry.1[cls] += 1;
            if let Some(w) = w.filter(|&w| w < n_windows) {
                entry.0[w][cls] += 1;
            }
        }
    }
    let as_of_text = chrono::DateTime::from_timestamp(as_of, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
    let mut trends = Vec::new();
    for ((kind, entity), (windows, total)) in agg {
        if total.iter().sum::<usize>() < s.min_mentions {
            continue;
        }
        // Oldest window first, so a positive slope means sentiment is improving.
        let (mut xs, mut ys, mut series) = (Vec::new(), Vec::new(), Vec::new());
        for w in (0..n_windows).rev() {
            let [pos, neg, neu] = windows[w];
            let start = chrono::DateTime::from_timestamp(as_of - (w as i64 + 1) * window, 0)
                .map(|t| t.format("%Y-%m-%d").to_string())
                .unwrap_or_default();
            series.push(WindowCounts { start, positive: pos, negative: neg, neutral: neu, net: net(pos, neg, neu) });
            if pos + neg + neu > 0 {
                xs.push((n_windows - 1 - w) as f64);
                ys.push(net(pos, neg, neu));
            }
        }
        let slope = trend::slope(&xs, &ys);
        let direction = trend::direction(slope, s.flat_band);
        trends.push(EntityTrend {
            kind,
            entity,
            positive: total[0],
            negative: total[1],
            neutral: total[2],
            slope,
            direction,
            windows: series,
            as_of: as_of_text.clone(),
        });
    }
    Ok(trends)
}

fn spec_of(spec: &Spec) -> Result<&SentimentSpec> {
    spec.sentiment.as_ref().ok_or_else(|| Error::spec("sentiment", "the spec has no [sentiment] section"))
}

/// Rows with a positive or negative label, and their labels (true = positive).
pub fn labelled(frame: &Frame, s: &SentimentSpec) -> Result<(Vec<usize>, Vec<bool>)> {
    let mut rows = Vec::new();
    let mut y = Vec::new();
    for (i, v) in frame.col(&s.label)?.iter().enumerate() {
        if v == &s.positive || v == &s.negative {
            rows.push(i);
            y.push(v == &s.positive);
        }
    }
    Ok((rows, y))
}

/// Word n-gram features of the use case. The NBSVM models mark negation scopes ("not ... funny"
/// becomes `neg_funny`): +0.3 points on rt-polarity; the other models keep the plain tokens.
pub fn tfidf_params(s: &SentimentSpec) -> TfidfParams {
    let mark_negation = matches!(s.model, SentimentModelKind::NbSvm | SentimentModelKind::NbSvmChar);
    TfidfParams { mark_negation, ..TfidfParams::default() }
}

fn fit_classifier(
    kind: SentimentModelKind,
    v: &TfidfVectorizer,
    texts: &[&str],
    y: &[bool],
    seed: u64,
) -> Result<Classifier> {
    Ok(match kind {
        SentimentModelKind::NaiveBayes => {
            Classifier::NaiveBayes(NaiveBayesParams::default().fit((&v.transform_counts(texts), y))?)
        }
        SentimentModelKind::NbSvm | SentimentModelKind::NbSvmChar => {
            let mut c = fit_svm(kind, v, texts, y, seed)?;
            let fitted = calibrate(kind, v, texts, y, seed)?;
            match &mut c {
                Classifier::NbSvm { platt, .. } | Classifier::NbSvmChar { platt, .. } => *platt = fitted,
                _ => {}
            }
            c
        }
        SentimentModelKind::NbLogistic | SentimentModelKind::Auto => {
            Classifier::NbLogistic(NbLogisticParams { seed, ..Default::default() }.fit((&v.transform(texts), y))?)
        }
    })
}

/// The SVM classifiers, uncalibrated (identity Platt).
fn fit_svm(kind: SentimentModelKind, v: &TfidfVectorizer, texts: &[&str], y: &[bool], seed: u64) -> Result<Classifier> {
    let words = nb_svm(seed).fit((&v.transform_counts(texts), y))?;
    if kind == SentimentModelKind::NbSvm {
        return Ok(Classifier::NbSvm { words, platt: Platt::default() });
    }
    let chars = CharNgramParams::default().fit(texts)?;
    let char_svm = LinearSvmParams { seed, ..Default::default() }.fit((&chars.transform(texts), y))?;
    Ok(Classifier::NbSvmChar { words, chars, char_svm, platt: Platt::default() })
}

/// Platt scaling on cross-fitted margins: the model is fitted on each half of the training rows
/// and scores the other half, so the calibration never sees a margin of a row it was trained on
/// (training margins of an SVM are overconfident). Costs two half-size fits.
fn calibrate(kind: SentimentModelKind, v: &TfidfVectorizer, texts: &[&str], y: &[bool], seed: u64) -> Result<Platt> {
    let (a, b) = stratified_split(y, 0.5, seed.wrapping_add(2));
    let (mut margins, mut labels) = (Vec::with_capacity(y.len()), Vec::with_capacity(y.len()));
    for (fit_idx, score_idx) in [(&a, &b), (&b, &a)] {
        let pick_t = |idx: &[usize]| idx.iter().map(|&i| texts[i]).collect::<Vec<_>>();
        let pick_y = |idx: &[usize]| idx.iter().map(|&i| y[i]).collect::<Vec<_>>();
        let c = fit_svm(kind, v, &pick_t(fit_idx), &pick_y(fit_idx), seed)?;
        margins.extend(svm_margins(&c, v, &pick_t(score_idx)));
        labels.extend(pick_y(score_idx));
    }
    Ok(Platt::fit(&margins, &labels)?)
}

fn nb_svm(seed: u64) -> NbSvmParams {
    NbSvmParams { svm: LinearSvmParams { seed, ..Default::default() }, ..Default::default() }
}

fn binary_accuracy(p: &[f64], y: &[bool]) -> f64 {
    p.iter().zip(y).filter(|(&p, &y)| (p >= 0.5) == y).count() as f64 / y.len().max(1) as f64
}

fn kind_name(k: SentimentModelKind) -> &'static str {
    match k {
        SentimentModelKind::NaiveBayes => "naive_bayes",
        SentimentModelKind::NbLogistic => "nb_logistic",
        SentimentModelKind::NbSvm => "nb_svm",
        SentimentModelKind::NbSvmChar => "nb_svm_char",
        SentimentModelKind::Auto => "auto",
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    pub start: String,
    pub positive: usize,
    pub negative: usize,
    pub neutral: usize,
    pub net: f64,
}

fn net(pos: usize, neg: usize, neu: usize) -> f64 {
    let total = pos + neg + neu;
    if total == 0 {
        0.0
    } else {
        (pos as f64 - neg as f64) / total as f64
    }
}

/// Entity mentions of one post: `(kind, value)` for every entity column (lists give several).
fn mentions(frame: &Frame, s: &SentimentSpec, spec: &Spec) -> Result<Vec<Vec<(String, String)>>> {
    let tspec = spec.table(&s.table)?;
    let mut out = vec![Vec::new(); frame.n_rows()];
    for (kind, col) in &s.entities {
        let values: Vec<Vec<String>> = if tspec.kind_of(col) == Some(ColumnKind::List) {
            frame.list(col, &tspec.list_separator)?
        } else {
            frame.col(col)?.iter().map(|v| if v.is_empty() { vec![] } else { vec![v.to_string()] }).collect()
        };
        for (i, vals) in values.into_iter().enumerate() {
            out[i].extend(vals.into_iter().map(|v| (kind.clone(), v)));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutral_band_splits_three_ways() {
        assert_eq!(polarity(0.9, [0.4, 0.6]), Polarity::Positive);
        assert_eq!(polarity(0.5, [0.4, 0.6]), Polarity::Neutral);
        assert_eq!(polarity(0.6, [0.4, 0.6]), Polarity::Neutral);
        assert_eq!(polarity(0.1, [0.4, 0.6]), Polarity::Negative);
    }

    #[test]
    fn net_score_is_share_difference() {
        assert_eq!(net(3, 1, 0), 0.5);
        assert_eq!(net(0, 0, 0), 0.0);
        assert_eq!(net(1, 1, 2), 0.0);
    }
}
