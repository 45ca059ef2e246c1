//! marquee-ml: the models and metrics behind marquee's four use cases.
//!
//! Pure computation over `ndarray` and plain slices: no I/O, no storage, no AWS. Every model
//! follows the linfa pattern: a `*Params` struct (hyper-parameters, validated) whose `fit`
//! returns a fitted, serialisable model with `predict*` methods.

pub mod als;
pub mod char_ngram;
mod dense;
pub mod error;
pub mod kmeans;
pub mod logistic;
pub mod metrics;
mod parallel;
mod simd;
pub mod similarity;
pub mod sparse;
pub mod svm;
pub mod text;
pub mod trend;

pub use error::{MlError, Result};
