//! marquee-ml: the models and metrics behind marquee's use cases.
//!
//! Pure computation over `ndarray` and plain slices: no I/O, no storage, no AWS.
//!
//! Every model follows linfa's pattern through this crate's own two traits: a `*Params` struct
//! (hyper-parameters, validated on fit) implements [`Fit`], whose `fit` returns a fitted,
//! serialisable model that implements [`Predict`]. linfa's traits take a `DatasetBase` of dense
//! records and targets, which fits neither sparse TF-IDF rows nor ALS's rating triples, so each
//! model here names the data it trains on ([`Fit::Data`]) and predicts from ([`Predict::Input`]).
//! The models on dense records ([`kmeans::KMeansParams`], [`logistic::LogisticParams`]) also
//! implement linfa's `Fit`, to run inside linfa pipelines.
//!
//! Prediction has one name, `predict`, and returns the model's own output per row:
//! P(positive) for the probabilistic classifiers (logistic regression, naive Bayes, NB-LR), the
//! signed margin for the SVMs, a cluster index for k-means, a rating for ALS; [`svm::Platt`]
//! predicts P(positive) from a margin. `predict_proba` exists only where a probability is a
//! different thing from `predict`'s output: the SVMs' `sigmoid(margin)`. Vectorisers
//! ([`text::TfidfVectorizer`], [`char_ngram::CharNgramVectorizer`]) are fitted by their params'
//! `fit` and applied with `transform`.

pub mod als;
pub mod bandit;
pub mod calibration;
pub mod char_ngram;
mod dense;
pub mod error;
pub mod gbm;
pub mod kmeans;
pub mod logistic;
pub mod metrics;
pub mod ope;
pub mod parallel;
mod partitions;
mod simd;
pub mod similarity;
pub mod sparse;
pub mod svm;
pub mod text;
pub mod trend;

pub use error::{MlError, Result};

/// Hyper-parameters that fit a model.
pub trait Fit {
    /// What the model trains on, e.g. `(&CsrMatrix, &[bool])` for rows and labels.
    type Data<'a>;
    type Model;
    /// Errors when a parameter or the data is invalid (see each implementation).
    fn fit(&self, data: Self::Data<'_>) -> Result<Self::Model>;
}

/// A fitted model.
pub trait Predict {
    /// What the model predicts from, e.g. `&CsrMatrix` for a batch of rows.
    type Input<'a>;
    type Output;
    fn predict(&self, input: Self::Input<'_>) -> Self::Output;
}
