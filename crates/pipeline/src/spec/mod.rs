//! The pipeline spec: CRISP-DM "business understanding" as one TOML document. It says which use
//! cases run, where their data is, the role of every column, model parameters, and the business
//! success criteria a model must meet before it may be deployed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

mod ads;
mod promote;
pub use ads::{AdsCriteria, AdsSpec};
pub use promote::PromoteSection;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub pipeline: PipelineSection,
    #[serde(default)]
    pub quality: QualitySection,
    #[serde(default, skip_serializing_if = "IngestSection::is_unset")]
    pub ingest: IngestSection,
    #[serde(default)]
    pub drift: DriftSection,
    /// Input tables by name. Files are read from `raw/<pipeline.dataset>/<file>`.
    pub tables: BTreeMap<String, TableSpec>,
    pub segment: Option<SegmentSpec>,
    pub churn: Option<ChurnSpec>,
    pub recommend: Option<RecommendSpec>,
    pub sentiment: Option<SentimentSpec>,
    /// Ad placement from logged impressions, evaluated off-policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ads: Option<AdsSpec>,
    /// Per audience segment, the titles to promote (crosses segment, recommend and sentiment).
    #[serde(default, skip_serializing_if = "PromoteSection::is_default")]
    pub promote: PromoteSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    /// Folder under `raw/` holding this pipeline's input files.
    pub dataset: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Share of rows held out for evaluation.
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
}

fn default_seed() -> u64 {
    42
}
fn default_test_fraction() -> f64 {
    0.2
}

/// Quality gate thresholds applied by ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualitySection {
    /// The run stops when a table's share of quarantined rows exceeds this.
    #[serde(default = "default_max_bad_share")]
    pub max_bad_row_share: f64,
    /// The run stops when a table has fewer good rows than this.
    #[serde(default = "default_min_rows")]
    pub min_rows: usize,
}

fn default_max_bad_share() -> f64 {
    0.01
}
fn default_min_rows() -> usize {
    20
}

impl QualitySection {
    /// The thresholds that apply to one table: its own `max_bad_row_share` and `min_rows` where
    /// it sets them.
    pub fn for_table(&self, table: &TableSpec) -> QualitySection {
        QualitySection {
            max_bad_row_share: table.max_bad_row_share.unwrap_or(self.max_bad_row_share),
            min_rows: table.min_rows.unwrap_or(self.min_rows),
        }
    }
}

impl Default for QualitySection {
    fn default() -> Self {
        Self { max_bad_row_share: default_max_bad_share(), min_rows: default_min_rows() }
    }
}

/// Drift thresholds: how far a challenger's data and scores may move from its champion's before
/// the run warns (summary, report) or, where a `*_block` threshold is set, rejects the challenger.
/// Defaults follow the usual PSI reading: below 0.1 stable, 0.1-0.25 a moderate shift, above 0.25
/// a significant one. Nothing blocks unless the spec says so: retraining on moved data is usually
/// the point of a scheduled run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSection {
    /// Population stability index of a feature or of the model's scores that warns.
    #[serde(default = "default_psi_warn")]
    pub psi_warn: f64,
    /// PSI that rejects the challenger (unset: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psi_block: Option<f64>,
    /// Absolute change of a feature's share of missing values that warns.
    #[serde(default = "default_rate_warn")]
    pub missing_warn: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_block: Option<f64>,
    /// Absolute change of a label class's share (e.g. the churn rate) that warns.
    #[serde(default = "default_rate_warn")]
    pub label_warn: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_block: Option<f64>,
}

fn default_psi_warn() -> f64 {
    0.1
}
fn default_rate_warn() -> f64 {
    0.05
}

impl Default for DriftSection {
    fn default() -> Self {
        Self {
            psi_warn: default_psi_warn(),
            psi_block: None,
            missing_warn: default_rate_warn(),
            missing_block: None,
            label_warn: default_rate_warn(),
            label_block: None,
        }
    }
}

/// Resource limits of the ingest step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Largest input file, in bytes (after decompression for a gzip file), that a run accepts.
    /// Ingest streams its input, but prepare, train and deploy hold the validated table in memory:
    /// a larger file fails the quality gate at ingest, before it is read, with a message naming the
    /// file, its size and this budget. `MARQUEE_MAX_INPUT_BYTES` lowers it for a deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_bytes: Option<u64>,
}

impl IngestSection {
    fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// Whether `name` (a key's last segment inside a table's folder) is a part file: a `.csv` or
/// `.csv.gz` that is not hidden or a marker (`_SUCCESS`, `.crc` and the like, which Spark and
/// Hive write beside their parts).
pub fn is_part_file(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && !name.starts_with('_')
        && !name.starts_with('.')
        && (name.ends_with(".csv") || name.ends_with(".csv.gz"))
}

/// The part files directly in a local `folder` (what ingest reads for `file = "<folder>/"` once
/// uploaded), sorted by name.
pub fn part_files_in(folder: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut parts = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if path.is_file() && path.file_name().and_then(|n| n.to_str()).is_some_and(is_part_file) {
            parts.push(path);
        }
    }
    parts.sort();
    Ok(parts)
}

/// Column roles of one input table. Every named column must be in the file's header; columns not
/// named here are carried along unchecked. A value may be empty only in an `optional` column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// The file under the dataset folder (`customers.csv`, `reviews.csv.gz`), or a folder of part
    /// files ending in `/` (`viewing/`: every `.csv` / `.csv.gz` directly in it, read in name
    /// order as one table).
    pub file: String,
    /// Unique row id; duplicates are quarantined.
    pub id: Option<String>,
    /// The file has no id column: generate `id` as the 0-based index of each data record (header
    /// excluded), so ids are stable for the same file (e.g. IBM's Telco export without customerID).
    #[serde(default, skip_serializing_if = "is_false")]
    pub generate_id: bool,
    #[serde(default)]
    pub numeric: Vec<String>,
    #[serde(default)]
    pub categorical: Vec<String>,
    #[serde(default)]
    pub text: Vec<String>,
    /// ISO date (2024-01-31), RFC 3339 date-time, or Unix seconds.
    #[serde(default)]
    pub timestamp: Vec<String>,
    /// Multi-valued columns (e.g. genres "Drama|Comedy"), split on `list_separator`.
    #[serde(default)]
    pub list: Vec<String>,
    #[serde(default = "default_list_separator")]
    pub list_separator: String,
    /// Columns that may be empty (missing numerics are imputed with the training median).
    #[serde(default)]
    pub optional: Vec<String>,
    /// Allowed closed ranges for numeric columns, e.g. `{ rating = [1, 5] }`.
    #[serde(default)]
    pub ranges: BTreeMap<String, [f64; 2]>,
    /// Rows with a timestamp later than ingest time plus this many days are quarantined.
    #[serde(default)]
    pub max_future_days: Option<f64>,
    /// This table's own `[quality] max_bad_row_share` (e.g. a noisy event log beside clean
    /// master data); unset: the `[quality]` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bad_row_share: Option<f64>,
    /// This table's own `[quality] min_rows` (e.g. a small lookup table such as an ad catalog
    /// beside large logs); unset: the `[quality]` one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<usize>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_list_separator() -> String {
    "|".into()
}

/// The type a column is validated and parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Id,
    Numeric,
    Categorical,
    Text,
    Timestamp,
    List,
}

impl TableSpec {
    /// The table is a folder of part files (`file` ends in `/`).
    pub fn is_parts(&self) -> bool {
        self.file.ends_with('/')
    }

    /// Declared columns with their kinds, in declaration order (id first).
    pub fn columns(&self) -> Vec<(String, ColumnKind)> {
        let mut out = Vec::new();
        if let Some(id) = &self.id {
            out.push((id.clone(), ColumnKind::Id));
        }
        let groups: [(&Vec<String>, ColumnKind); 5] = [
            (&self.numeric, ColumnKind::Numeric),
            (&self.categorical, ColumnKind::Categorical),
            (&self.text, ColumnKind::Text),
            (&self.timestamp, ColumnKind::Timestamp),
            (&self.list, ColumnKind::List),
        ];
        for (cols, kind) in groups {
            out.extend(cols.iter().map(|c| (c.clone(), kind)));
        }
        out
    }

    pub fn kind_of(&self, column: &str) -> Option<ColumnKind> {
        self.columns().into_iter().find(|(c, _)| c == column).map(|(_, k)| k)
    }
}

/// Champion comparison shared by every use case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChampionPolicy {
    /// The challenger may be worse than the champion by at most this (in the primary metric).
    #[serde(default)]
    pub tolerance: f64,
}

impl Default for ChampionPolicy {
    fn default() -> Self {
        Self { tolerance: 0.0 }
    }
}

/// What the steps need of any use case's spec section: its champion policy and its JSON (which,
/// with the seed and split, fingerprints the model).
pub trait UseCaseSection {
    fn champion(&self) -> &ChampionPolicy;
    fn to_json(&self) -> serde_json::Value;
}

macro_rules! use_case_section {
    ($($section:ty),*) => {$(
        impl UseCaseSection for $section {
            fn champion(&self) -> &ChampionPolicy {
                &self.champion
            }
            fn to_json(&self) -> serde_json::Value {
                serde_json::to_value(self).expect("spec sections serialise")
            }
        }
    )*};
}

use_case_section!(SegmentSpec, ChurnSpec, RecommendSpec, SentimentSpec, AdsSpec);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSpec {
    pub table: String,
    /// Numeric feature columns (standardised before clustering).
    pub features: Vec<String>,
    /// Range of k to sweep (SSE per k for the elbow, silhouette per k).
    #[serde(default = "default_k_min")]
    pub k_min: usize,
    #[serde(default = "default_k_max")]
    pub k_max: usize,
    /// Fixed k; when absent, the k of the range with the best silhouette is deployed.
    pub k: Option<usize>,
    #[serde(default = "default_n_init")]
    pub n_init: usize,
    #[serde(default = "default_max_iter")]
    pub max_iter: usize,
    /// Lloyd iterations stop when the relative SSE improvement falls below this.
    #[serde(default = "default_kmeans_tol")]
    pub tol: f64,
    /// Two columns for the rule-based baseline: quantile bins on each give `bins^2` segments.
    pub baseline_columns: [String; 2],
    #[serde(default = "default_baseline_bins")]
    pub baseline_bins: usize,
    #[serde(default)]
    pub criteria: SegmentCriteria,
    #[serde(default)]
    pub champion: ChampionPolicy,
}

fn default_k_min() -> usize {
    2
}
fn default_k_max() -> usize {
    8
}
fn default_n_init() -> usize {
    10
}
fn default_max_iter() -> usize {
    300
}
fn default_kmeans_tol() -> f64 {
    1e-4
}
fn default_baseline_bins() -> usize {
    2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentCriteria {
    /// Every segment must hold at least this share of customers (a segment too small to mail is useless).
    #[serde(default = "default_min_segment_share")]
    pub min_segment_share: f64,
    /// k-means SSE must beat the rule-based segmentation with the same number of segments.
    #[serde(default = "default_true")]
    pub beat_baseline: bool,
    /// Minimum silhouette on the test split.
    #[serde(default)]
    pub min_silhouette: f64,
}

fn default_min_segment_share() -> f64 {
    0.02
}
fn default_true() -> bool {
    true
}

impl Default for SegmentCriteria {
    fn default() -> Self {
        Self { min_segment_share: default_min_segment_share(), beat_baseline: true, min_silhouette: 0.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    pub table: String,
    pub label: String,
    /// The label value meaning "churned".
    pub positive: String,
    #[serde(default)]
    pub numeric: Vec<String>,
    #[serde(default)]
    pub categorical: Vec<String>,
    #[serde(default)]
    pub class_weight: marquee_ml::logistic::ClassWeight,
    #[serde(default = "default_l2")]
    pub l2: f64,
    /// Extra features `ln(1 + x)` of these numeric columns (tenure, amounts: churn risk falls off
    /// with the log of tenure, not linearly).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log1p: Vec<String>,
    /// Extra product features of two terms; a term is a numeric column or `column=value` (the
    /// indicator of a categorical value), e.g. `["contract=Month-to-month", "tenure"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interactions: Vec<[String; 2]>,
    /// The model family: logistic regression, gradient-boosted trees, their blend, or `auto`
    /// (whichever of the three has the best out-of-fold AUC on 5 inner folds of the training rows).
    #[serde(default)]
    pub model: ChurnModelKind,
    /// The gradient-boosted trees' hyper-parameters (`[churn.gbm]`).
    #[serde(default, skip_serializing_if = "GbmSpec::is_default")]
    pub gbm: GbmSpec,
    #[serde(default)]
    pub criteria: ChurnCriteria,
    #[serde(default)]
    pub champion: ChampionPolicy,
}

/// Churn's model family (`churn.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ChurnModelKind {
    /// Logistic regression on standardised numerics and one-hot categoricals.
    Logistic,
    /// Gradient-boosted trees on raw numerics and native categoricals.
    Gbm,
    /// The mean of the two models' log-odds.
    Blend,
    /// The best of the three by out-of-fold AUC over 5 inner folds of the training rows.
    #[default]
    Auto,
}

/// `[churn.gbm]`: the trees' hyper-parameters; class weights come from `churn.class_weight` and
/// the seed from `pipeline.seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbmSpec {
    pub max_depth: usize,
    pub learning_rate: f64,
    pub l2: f64,
    pub min_child_weight: f64,
    pub max_rounds: usize,
    pub early_stopping_rounds: usize,
}

impl Default for GbmSpec {
    fn default() -> Self {
        let p = marquee_ml::gbm::GbmParams::default();
        Self {
            max_depth: p.max_depth,
            learning_rate: p.learning_rate,
            l2: p.l2,
            min_child_weight: p.min_child_weight,
            max_rounds: p.max_rounds,
            early_stopping_rounds: p.early_stopping_rounds,
        }
    }
}

impl GbmSpec {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub fn params(&self, class_weight: marquee_ml::logistic::ClassWeight, seed: u64) -> marquee_ml::gbm::GbmParams {
        marquee_ml::gbm::GbmParams {
            max_depth: self.max_depth,
            learning_rate: self.learning_rate,
            l2: self.l2,
            min_child_weight: self.min_child_weight,
            max_rounds: self.max_rounds,
            early_stopping_rounds: self.early_stopping_rounds,
            class_weight,
            seed,
            ..Default::default()
        }
    }
}

fn default_l2() -> f64 {
    1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnCriteria {
    #[serde(default = "default_min_auc")]
    pub min_auc: f64,
    /// The deployed cutoff is the one with the best precision among those reaching this recall.
    #[serde(default = "default_min_recall")]
    pub min_recall: f64,
    /// ...and it must also reach this precision.
    #[serde(default = "default_min_precision")]
    pub min_precision: f64,
}

fn default_min_auc() -> f64 {
    0.80
}
fn default_min_recall() -> f64 {
    0.60
}
fn default_min_precision() -> f64 {
    0.50
}

impl Default for ChurnCriteria {
    fn default() -> Self {
        Self { min_auc: default_min_auc(), min_recall: default_min_recall(), min_precision: default_min_precision() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendSpec {
    /// Ratings table and its columns.
    pub ratings: String,
    pub user: String,
    pub item: String,
    pub rating: String,
    /// Titles table (content-based similarity) and its columns. Absent (a ratings-only export):
    /// titles are the rated items, and similar titles come from co-ratings instead of content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titles: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_id: Option<String>,
    pub title_name: Option<String>,
    /// Title attribute columns (list or categorical: one-hot tokens; text: TF-IDF words).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub title_features: Vec<String>,
    /// Optional viewing history (user, item columns as in `user`/`item`): watched titles are not recommended.
    pub viewing: Option<String>,
    #[serde(default = "default_rank")]
    pub rank: usize,
    #[serde(default = "default_iterations")]
    pub iterations: usize,
    #[serde(default = "default_lambda")]
    pub lambda: f32,
    /// How `lambda` grows with a user's / item's rating count: `count` (ALS-WR, the default) or
    /// `sqrt_count` (shrinks rarely rated titles more; better RMSE on MovieLens-100K).
    #[serde(default)]
    pub regularisation: AlsRegularisation,
    /// Ratings at or above this count as "relevant" for precision@k / NDCG@k.
    #[serde(default = "default_relevant_rating")]
    pub relevant_rating: f64,
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    #[serde(default = "default_top_n")]
    pub similar_n: usize,
    /// How the top-N list is ranked: `als` (highest predicted rating) or `item_knn` (titles most
    /// co-watched with the user's history: what they will watch next, which predicted ratings
    /// rank poorly). RMSE always comes from ALS.
    #[serde(default)]
    pub ranking: RankingKind,
    /// Neighbours kept per title for `item_knn` ranking.
    #[serde(default = "default_knn_neighbours")]
    pub knn_neighbours: usize,
    #[serde(default)]
    pub criteria: RecommendCriteria,
    #[serde(default)]
    pub champion: ChampionPolicy,
}

fn default_rank() -> usize {
    10
}
fn default_iterations() -> usize {
    10
}
fn default_lambda() -> f32 {
    0.1
}
fn default_relevant_rating() -> f64 {
    4.0
}
fn default_top_n() -> usize {
    10
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RankingKind {
    #[default]
    Als,
    ItemKnn,
}

fn default_knn_neighbours() -> usize {
    50
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlsRegularisation {
    #[default]
    Count,
    SqrtCount,
}

impl From<AlsRegularisation> for marquee_ml::als::RegScaling {
    fn from(r: AlsRegularisation) -> Self {
        match r {
            AlsRegularisation::Count => marquee_ml::als::RegScaling::Count,
            AlsRegularisation::SqrtCount => marquee_ml::als::RegScaling::SqrtCount,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecommendCriteria {
    #[serde(default = "default_max_rmse")]
    pub max_rmse: f64,
    /// precision@10 must beat the popularity baseline's.
    #[serde(default = "default_true")]
    pub beat_popularity: bool,
}

fn default_max_rmse() -> f64 {
    0.95
}

impl Default for RecommendCriteria {
    fn default() -> Self {
        Self { max_rmse: default_max_rmse(), beat_popularity: true }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SentimentModelKind {
    NaiveBayes,
    NbLogistic,
    /// NBSVM (Wang & Manning 2012) on binarised uni+bigrams with negation marking; probabilities
    /// by Platt scaling on cross-fitted margins of the training data.
    NbSvm,
    /// `nb_svm` plus a linear SVM on character 2..5-gram TF-IDF, margins summed: the most
    /// accurate on short texts (rt-polarity 10-fold 0.802); the char features make the fit several
    /// times slower on long reviews.
    NbSvmChar,
    /// Train naive Bayes and NB-logistic, keep the better on a validation split of the training data.
    #[default]
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentSpec {
    pub table: String,
    pub text: String,
    /// Label column; rows with an empty label are scored but not used for training.
    pub label: String,
    pub positive: String,
    pub negative: String,
    /// Post time; empty (or absent) when the export has none: posts are classified but carry no trend.
    #[serde(default)]
    pub timestamp: String,
    /// Entity kind (title, brand, talent, ...) -> column. List columns give one mention per value.
    /// Empty (or absent): classification only, no SENTIMENT items.
    #[serde(default)]
    pub entities: BTreeMap<String, String>,
    #[serde(default)]
    pub model: SentimentModelKind,
    /// P(positive) inside [lo, hi] is reported as neutral.
    #[serde(default = "default_neutral_band")]
    pub neutral_band: [f64; 2],
    #[serde(default = "default_window_days")]
    pub window_days: u32,
    /// Number of most recent windows the trend slope is fitted over.
    #[serde(default = "default_trend_windows")]
    pub trend_windows: usize,
    /// |slope| of net score per window below this is "flat".
    #[serde(default = "default_flat_band")]
    pub flat_band: f64,
    /// Entities with fewer mentions than this get no SENTIMENT item.
    #[serde(default = "default_min_mentions")]
    pub min_mentions: usize,
    #[serde(default)]
    pub criteria: SentimentCriteria,
    #[serde(default)]
    pub champion: ChampionPolicy,
}

fn default_neutral_band() -> [f64; 2] {
    [0.4, 0.6]
}
fn default_window_days() -> u32 {
    7
}
fn default_trend_windows() -> usize {
    6
}
fn default_flat_band() -> f64 {
    0.02
}
fn default_min_mentions() -> usize {
    5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentimentCriteria {
    #[serde(default = "default_min_accuracy")]
    pub min_accuracy: f64,
}

fn default_min_accuracy() -> f64 {
    0.80
}

impl Default for SentimentCriteria {
    fn default() -> Self {
        Self { min_accuracy: default_min_accuracy() }
    }
}

/// The names of the use cases, in the order the pipeline runs them (each is implemented by a
/// [`crate::usecase::UseCase`] registered in [`crate::usecase::REGISTERED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    Segment,
    Churn,
    Recommend,
    Sentiment,
    Ads,
}

impl UseCase {
    pub const ALL: [UseCase; 5] =
        [UseCase::Segment, UseCase::Churn, UseCase::Recommend, UseCase::Sentiment, UseCase::Ads];

    pub fn as_str(&self) -> &'static str {
        match self {
            UseCase::Segment => "segment",
            UseCase::Churn => "churn",
            UseCase::Recommend => "recommend",
            UseCase::Sentiment => "sentiment",
            UseCase::Ads => "ads",
        }
    }
}

impl std::fmt::Display for UseCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for UseCase {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        UseCase::ALL.into_iter().find(|u| u.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = UseCase::ALL.iter().map(UseCase::as_str).collect();
            Error::spec("use_case", format!("unknown use case `{s}` (expected one of {})", names.join(", ")))
        })
    }
}

impl Spec {
    /// Parse and validate. `origin` names the document in error messages.
    pub fn from_toml(text: &str, origin: &str) -> Result<Spec> {
        let spec: Spec = toml::from_str(text)
            .map_err(|e| Error::Spec { field: origin.to_string(), message: e.to_string().trim_end().to_string() })?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a spec always serialises")
    }

    /// Use cases present in the spec, in pipeline order.
    pub fn use_cases(&self) -> Vec<UseCase> {
        crate::usecase::enabled(self).map(|u| u.id()).collect()
    }

    pub fn table(&self, name: &str) -> Result<&TableSpec> {
        self.tables.get(name).ok_or_else(|| Error::spec("tables", format!("no table named `{name}`")))
    }

    /// Cross-field checks serde cannot express. Errors name the offending field by its TOML path.
    pub fn validate(&self) -> Result<()> {
        let p = &self.pipeline;
        check(!p.name.trim().is_empty(), "pipeline.name", "must not be empty")?;
        check(
            !p.dataset.is_empty() && !p.dataset.contains(['/', '\\']) && p.dataset != "..",
            "pipeline.dataset",
            "must be a folder name under raw/ (no slashes)",
        )?;
        check(p.test_fraction > 0.0 && p.test_fraction < 1.0, "pipeline.test_fraction", "must be in (0, 1)")?;
        let q = &self.quality;
        check((0.0..=1.0).contains(&q.max_bad_row_share), "quality.max_bad_row_share", "must be in [0, 1]")?;
        check(self.ingest.max_input_bytes != Some(0), "ingest.max_input_bytes", "must be positive")?;
        let d = &self.drift;
        for (field, warn, block) in [
            ("psi", d.psi_warn, d.psi_block),
            ("missing", d.missing_warn, d.missing_block),
            ("label", d.label_warn, d.label_block),
        ] {
            check(warn > 0.0, &format!("drift.{field}_warn"), "must be positive")?;
            check(
                block.is_none_or(|b| b >= warn),
                &format!("drift.{field}_block"),
                &format!("must be at least drift.{field}_warn ({warn})"),
            )?;
        }
        check(!self.tables.is_empty(), "tables", "at least one table is required")?;
        let sections: Vec<&str> = UseCase::ALL.iter().map(UseCase::as_str).collect();
        check(!self.use_cases().is_empty(), &sections.join("/"), "the spec enables no use case")?;

        for (name, t) in &self.tables {
            let f = |field: &str| format!("tables.{name}.{field}");
            check(
                !t.file.is_empty()
                    && !t.file.contains("..")
                    && !t.file.starts_with('/')
                    && t.file.trim_end_matches('/') != "pipeline.toml",
                &f("file"),
                "must be a file name under the dataset folder, or a folder of part files ending in `/`",
            )?;
            check(t.list_separator.chars().count() == 1, &f("list_separator"), "must be one character")?;
            check(
                t.max_bad_row_share.is_none_or(|s| (0.0..=1.0).contains(&s)),
                &f("max_bad_row_share"),
                "must be in [0, 1]",
            )?;
            let cols = t.columns();
            let mut seen = std::collections::HashSet::new();
            for (c, _) in &cols {
                check(!c.is_empty(), &f("columns"), "column names must not be empty")?;
                check(seen.insert(c.as_str()), &f("columns"), &format!("column `{c}` is declared twice"))?;
            }
            for c in &t.optional {
                check(seen.contains(c.as_str()), &f("optional"), &format!("`{c}` is not a declared column"))?;
                check(Some(c) != t.id.as_ref(), &f("optional"), "the id column cannot be optional")?;
            }
            check(
                !t.generate_id || t.id.is_some(),
                &f("generate_id"),
                "needs `id` (the name of the generated column)",
            )?;
            for (c, [lo, hi]) in &t.ranges {
                check(t.numeric.contains(c), &f("ranges"), &format!("`{c}` is not a numeric column"))?;
                check(lo <= hi, &f("ranges"), &format!("range of `{c}` has min > max"))?;
            }
        }

        if let Some(s) = &self.segment {
            let t = self.table_for("segment.table", &s.table)?;
            check(!s.features.is_empty(), "segment.features", "at least one feature is required")?;
            for c in s.features.iter().chain(s.baseline_columns.iter()) {
                self.expect_kind(t, "segment.features", &s.table, c, &[ColumnKind::Numeric])?;
            }
            // A sweep runs n_init restarts per k: kept to a range a campaign can use. A fixed k
            // only has to stay below the rows, which train checks.
            check_range(s.k_min, 2, 100, "segment.k_min")?;
            check_range(s.k_max, 2, 100, "segment.k_max")?;
            check(s.k_max >= s.k_min, "segment.k_max", "must be >= k_min")?;
            if let Some(k) = s.k {
                check_range(k, 2, 10_000, "segment.k")?;
            }
            check_range(s.n_init, 1, 1000, "segment.n_init")?;
            check_range(s.max_iter, 1, 100_000, "segment.max_iter")?;
            check(s.tol.is_finite() && s.tol >= 0.0, "segment.tol", "must be a finite number >= 0")?;
            check_range(s.baseline_bins, 2, 10, "segment.baseline_bins")?;
            let baseline_k = s.baseline_bins.saturating_mul(s.baseline_bins);
            check(
                !s.criteria.beat_baseline || (s.k_min..=s.k_max).contains(&baseline_k),
                "segment.baseline_bins",
                &format!("baseline has {baseline_k} segments, outside k_min..k_max, so SSE cannot be compared"),
            )?;
            let share = s.criteria.min_segment_share;
            check((0.0..1.0).contains(&share), "segment.criteria.min_segment_share", "must be in [0, 1)")?;
            let k_used = s.k.unwrap_or(s.k_min);
            check(
                share * (k_used as f64) <= 1.0,
                "segment.criteria.min_segment_share",
                &format!("cannot be met: {k_used} segments of at least {share} each exceed 100%"),
            )?;
            check(
                (-1.0..=1.0).contains(&s.criteria.min_silhouette),
                "segment.criteria.min_silhouette",
                "must be in [-1, 1]",
            )?;
            check_tolerance("segment.champion.tolerance", s.champion.tolerance)?;
        }
        if let Some(c) = &self.churn {
            let t = self.table_for("churn.table", &c.table)?;
            self.expect_kind(t, "churn.label", &c.table, &c.label, &[ColumnKind::Categorical])?;
            check(!c.positive.is_empty(), "churn.positive", "must name the label value meaning churned")?;
            check(
                !c.numeric.is_empty() || !c.categorical.is_empty(),
                "churn.numeric",
                "at least one feature is required",
            )?;
            for n in &c.numeric {
                self.expect_kind(t, "churn.numeric", &c.table, n, &[ColumnKind::Numeric])?;
            }
            for n in &c.categorical {
                self.expect_kind(t, "churn.categorical", &c.table, n, &[ColumnKind::Categorical, ColumnKind::Id])?;
                check(n != &c.label, "churn.categorical", "the label cannot be a feature")?;
            }
            check(c.l2 >= 0.0, "churn.l2", "must be >= 0")?;
            let g = &c.gbm;
            check((1..=7).contains(&g.max_depth), "churn.gbm.max_depth", "must be 1..=7 (exact contributions)")?;
            check(g.learning_rate > 0.0 && g.learning_rate <= 1.0, "churn.gbm.learning_rate", "must be in (0, 1]")?;
            check(g.l2 >= 0.0, "churn.gbm.l2", "must be >= 0")?;
            check(g.min_child_weight >= 0.0, "churn.gbm.min_child_weight", "must be >= 0")?;
            check(g.max_rounds >= 1, "churn.gbm.max_rounds", "must be >= 1")?;
            check(g.early_stopping_rounds >= 1, "churn.gbm.early_stopping_rounds", "must be >= 1")?;
            for n in &c.log1p {
                self.expect_kind(t, "churn.log1p", &c.table, n, &[ColumnKind::Numeric])?;
            }
            for term in c.interactions.iter().flatten() {
                match term.split_once('=') {
                    Some((col, _)) => self.expect_kind(
                        t,
                        "churn.interactions",
                        &c.table,
                        col,
                        &[ColumnKind::Categorical, ColumnKind::Id],
                    )?,
                    None => self.expect_kind(t, "churn.interactions", &c.table, term, &[ColumnKind::Numeric])?,
                }
            }
            let k = &c.criteria;
            check((0.0..=1.0).contains(&k.min_auc), "churn.criteria.min_auc", "must be in [0, 1]")?;
            check((0.0..=1.0).contains(&k.min_recall), "churn.criteria.min_recall", "must be in [0, 1]")?;
            check((0.0..=1.0).contains(&k.min_precision), "churn.criteria.min_precision", "must be in [0, 1]")?;
            check_tolerance("churn.champion.tolerance", c.champion.tolerance)?;
        }
        if let Some(r) = &self.recommend {
            let t = self.table_for("recommend.ratings", &r.ratings)?;
            self.expect_kind(t, "recommend.user", &r.ratings, &r.user, &[ColumnKind::Id, ColumnKind::Categorical])?;
            self.expect_kind(t, "recommend.item", &r.ratings, &r.item, &[ColumnKind::Id, ColumnKind::Categorical])?;
            self.expect_kind(t, "recommend.rating", &r.ratings, &r.rating, &[ColumnKind::Numeric])?;
            match (&r.titles, &r.title_id) {
                (Some(titles_name), Some(title_id)) => {
                    let titles = self.table_for("recommend.titles", titles_name)?;
                    self.expect_kind(
                        titles,
                        "recommend.title_id",
                        titles_name,
                        title_id,
                        &[ColumnKind::Id, ColumnKind::Categorical],
                    )?;
                    if let Some(n) = &r.title_name {
                        self.expect_kind(
                            titles,
                            "recommend.title_name",
                            titles_name,
                            n,
                            &[ColumnKind::Text, ColumnKind::Categorical],
                        )?;
                    }
                    check(
                        !r.title_features.is_empty(),
                        "recommend.title_features",
                        "at least one title attribute is required with a titles table",
                    )?;
                    for c in &r.title_features {
                        self.expect_kind(
                            titles,
                            "recommend.title_features",
                            titles_name,
                            c,
                            &[ColumnKind::List, ColumnKind::Categorical, ColumnKind::Text],
                        )?;
                    }
                }
                (Some(_), None) => check(false, "recommend.title_id", "is required with recommend.titles")?,
                (None, Some(_)) => check(false, "recommend.titles", "is required with recommend.title_id")?,
                (None, None) => {
                    // Ratings only: collaborative filtering; nothing describes a title.
                    for (field, set) in [
                        ("recommend.title_name", r.title_name.is_some()),
                        ("recommend.title_features", !r.title_features.is_empty()),
                    ] {
                        check(!set, field, "needs a titles table (recommend.titles and recommend.title_id)")?;
                    }
                }
            }
            if let Some(v) = &r.viewing {
                let vt = self.table_for("recommend.viewing", v)?;
                self.expect_kind(vt, "recommend.viewing", v, &r.user, &[ColumnKind::Id, ColumnKind::Categorical])?;
                self.expect_kind(vt, "recommend.viewing", v, &r.item, &[ColumnKind::Id, ColumnKind::Categorical])?;
            }
            check_range(r.rank, 1, 1000, "recommend.rank")?;
            check_range(r.iterations, 1, 1000, "recommend.iterations")?;
            check(r.lambda.is_finite() && r.lambda >= 0.0, "recommend.lambda", "must be a finite number >= 0")?;
            // Items of `top_n` titles (about 100 bytes each) stay far below DynamoDB's 400 KB.
            check_range(r.top_n, 1, 500, "recommend.top_n")?;
            check_range(r.similar_n, 1, 500, "recommend.similar_n")?;
            check_range(r.knn_neighbours, 1, 10_000, "recommend.knn_neighbours")?;
            check(r.criteria.max_rmse > 0.0, "recommend.criteria.max_rmse", "must be > 0")?;
            check_tolerance("recommend.champion.tolerance", r.champion.tolerance)?;
        }
        if let Some(s) = &self.sentiment {
            let t = self.table_for("sentiment.table", &s.table)?;
            self.expect_kind(t, "sentiment.text", &s.table, &s.text, &[ColumnKind::Text])?;
            self.expect_kind(t, "sentiment.label", &s.table, &s.label, &[ColumnKind::Categorical])?;
            if !s.timestamp.is_empty() {
                self.expect_kind(t, "sentiment.timestamp", &s.table, &s.timestamp, &[ColumnKind::Timestamp])?;
            }
            check(s.positive != s.negative, "sentiment.positive", "positive and negative labels must differ")?;
            for (kind, col) in &s.entities {
                check(
                    !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "sentiment.entities",
                    &format!("entity kind `{kind}` must be alphanumeric"),
                )?;
                self.expect_kind(
                    t,
                    "sentiment.entities",
                    &s.table,
                    col,
                    &[ColumnKind::Id, ColumnKind::Categorical, ColumnKind::List],
                )?;
            }
            let [lo, hi] = s.neutral_band;
            check(
                0.0 <= lo && lo <= hi && hi <= 1.0,
                "sentiment.neutral_band",
                "must be [lo, hi] with 0 <= lo <= hi <= 1",
            )?;
            check(s.window_days >= 1, "sentiment.window_days", "must be at least 1")?;
            check_range(s.trend_windows, 2, 520, "sentiment.trend_windows")?;
            check(
                (0.0..=1.0).contains(&s.criteria.min_accuracy),
                "sentiment.criteria.min_accuracy",
                "must be in [0, 1]",
            )?;
            check_tolerance("sentiment.champion.tolerance", s.champion.tolerance)?;
        }
        if let Some(a) = &self.ads {
            ads::validate(self, a)?;
        }
        promote::validate(self, &self.promote)?;
        Ok(())
    }

    fn table_for(&self, field: &str, name: &str) -> Result<&TableSpec> {
        self.tables.get(name).ok_or_else(|| {
            Error::spec(
                field,
                format!("names table `{name}`, which is not under [tables] (have: {})", self.table_names()),
            )
        })
    }

    fn table_names(&self) -> String {
        self.tables.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    fn expect_kind(&self, t: &TableSpec, field: &str, table: &str, column: &str, kinds: &[ColumnKind]) -> Result<()> {
        match t.kind_of(column) {
            Some(k) if kinds.contains(&k) => Ok(()),
            Some(k) => Err(Error::spec(
                field,
                format!("column `{column}` of table `{table}` is declared {k:?}, expected one of {kinds:?}"),
            )),
            None => Err(Error::spec(field, format!("column `{column}` is not declared in table `{table}`"))),
        }
    }
}

/// `value` within `lo..=hi`. The upper bounds keep a typo (an extra zero) from becoming an hour of
/// training or an item over DynamoDB's 400 KB: far above any sensible value, far below harm.
fn check_range(value: usize, lo: usize, hi: usize, field: &str) -> Result<()> {
    check((lo..=hi).contains(&value), field, &format!("must be in {lo}..={hi} (got {value})"))
}

fn check(ok: bool, field: &str, message: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::spec(field, message))
    }
}

fn check_tolerance(field: &str, t: f64) -> Result<()> {
    check(t.is_finite() && t >= 0.0, field, "must be a finite number >= 0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use marquee_demo::DEMO_SPEC;

    fn err(text: &str) -> String {
        Spec::from_toml(text, "pipeline.toml").unwrap_err().to_string()
    }

    #[test]
    fn demo_spec_is_valid_and_runs_all_use_cases() {
        let spec = Spec::from_toml(DEMO_SPEC, "demo").unwrap();
        assert_eq!(spec.use_cases(), UseCase::ALL.to_vec());
        assert_eq!(spec.table("customers").unwrap().kind_of("age"), Some(ColumnKind::Numeric));
        let round_trip = Spec::from_toml(&spec.to_toml(), "again").unwrap();
        assert_eq!(round_trip, spec);
    }

    #[test]
    fn typo_in_a_field_is_named_with_its_line() {
        let e = err(&DEMO_SPEC.replace("min_auc = 0.80", "min_aux = 0.80"));
        assert!(e.contains("unknown field `min_aux`") && e.contains("pipeline.toml") && e.contains("line"), "{e}");
    }

    #[test]
    fn a_table_may_be_a_folder_of_parts_but_not_the_spec_or_outside_the_dataset() {
        let spec = Spec::from_toml(&DEMO_SPEC.replace("file = \"viewing.csv\"", "file = \"viewing/\""), "p.toml");
        assert!(spec.unwrap().tables["viewing"].is_parts());
        for bad in ["/etc/", "../x.csv", "pipeline.toml"] {
            let e = err(&DEMO_SPEC.replace("file = \"viewing.csv\"", &format!("file = \"{bad}\"")));
            assert!(e.contains("`tables.viewing.file`"), "{bad}: {e}");
        }
        assert!(is_part_file("part-00000.csv") && is_part_file("p.csv.gz"));
        for not_a_part in ["_SUCCESS", ".part-0.csv.crc", "_part.csv", "sub/p.csv", "p.parquet", ""] {
            assert!(!is_part_file(not_a_part), "{not_a_part}");
        }
    }

    #[test]
    fn impossible_criterion_names_the_field() {
        let e = err(&DEMO_SPEC.replace("min_auc = 0.80", "min_auc = 1.5"));
        assert!(e.contains("`churn.criteria.min_auc`: must be in [0, 1]"), "{e}");
        let e = err(&DEMO_SPEC.replace("min_segment_share = 0.02", "min_segment_share = 0.6"));
        assert!(e.contains("`segment.criteria.min_segment_share`: cannot be met"), "{e}");
    }

    #[test]
    fn references_to_unknown_tables_and_columns_are_named() {
        let e = err(&DEMO_SPEC.replace("label = \"churned\"", "label = \"cancelled\""));
        assert!(e.contains("`churn.label`: column `cancelled` is not declared in table `customers`"), "{e}");
        let e = err(&DEMO_SPEC.replace("ratings = \"ratings\"", "ratings = \"scores\""));
        assert!(e.contains("`recommend.ratings`: names table `scores`"), "{e}");
        let e = err(&DEMO_SPEC.replace("label = \"churned\"", "label = \"age\""));
        assert!(e.contains("declared Numeric"), "{e}");
    }

    #[test]
    fn counts_out_of_bounds_name_the_field_and_the_bounds() {
        for (from, to, message) in [
            ("k_max = 8", "k_max = 800", "`segment.k_max`: must be in 2..=100 (got 800)"),
            ("n_init = 10", "n_init = 0", "`segment.n_init`: must be in 1..=1000 (got 0)"),
            ("n_init = 10", "n_init = 100000", "`segment.n_init`: must be in 1..=1000 (got 100000)"),
            ("k_min = 2", "k_min = 1", "`segment.k_min`: must be in 2..=100 (got 1)"),
        ] {
            let e = err(&DEMO_SPEC.replacen(from, to, 1));
            assert!(e.contains(message), "{to}: {e}");
        }
        let e = err(&DEMO_SPEC.replacen("top_n = 10", "top_n = 100000", 1));
        assert!(e.contains("`recommend.top_n`: must be in 1..=500"), "{e}");
        let e = err(&DEMO_SPEC.replacen("[tables.ratings]\n", "[tables.ratings]\nmax_bad_row_share = 2.0\n", 1));
        assert!(e.contains("`tables.ratings.max_bad_row_share`: must be in [0, 1]"), "{e}");
    }

    /// Every field the spec types serialise (the demo spec and the eval specs, defaults filled in)
    /// is documented in docs/spec.md as `` `section.field` ``, so the reference cannot fall behind
    /// the types. Table names read `tables.<name>.field`.
    #[test]
    fn every_spec_field_is_documented_in_docs_spec_md() {
        fn keys(prefix: &str, v: &toml::Value, out: &mut std::collections::BTreeSet<String>) {
            let toml::Value::Table(t) = v else {
                out.insert(prefix.to_string());
                return;
            };
            for (k, x) in t {
                let k = if prefix == "tables" { "<name>" } else { k.as_str() };
                let path = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                // Maps keyed by the user's column names end at the map.
                if path.ends_with(".ranges") || path == "sentiment.entities" {
                    out.insert(path);
                } else {
                    keys(&path, x, out);
                }
            }
        }
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/spec.md")).unwrap();
        let mut all = std::collections::BTreeSet::new();
        // specs/ also holds marquee eval's task catalog, which is no pipeline spec.
        let specs = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../specs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().is_some_and(|n| n != "eval-tasks.toml"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .chain([DEMO_SPEC.to_string()]);
        for text in specs {
            let spec = Spec::from_toml(&text, "spec").unwrap();
            keys("", &toml::Value::try_from(&spec).unwrap(), &mut all);
        }
        let missing: Vec<&String> = all.iter().filter(|k| !docs.contains(&format!("`{k}`"))).collect();
        assert!(missing.is_empty(), "fields missing from docs/spec.md: {missing:#?}");
    }

    #[test]
    fn dataset_must_be_a_plain_folder_name() {
        let e = err(&DEMO_SPEC.replace("dataset = \"demo\"", "dataset = \"../etc\""));
        assert!(e.contains("`pipeline.dataset`"), "{e}");
    }
}
