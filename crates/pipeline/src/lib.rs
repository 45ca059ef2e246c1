//! marquee-pipeline: the CRISP-DM steps of marquee (ingest, prepare, train, evaluate, deploy)
//! as library functions over an [`store::ObjectStore`] and a [`store::ScoreStore`].
//!
//! The same functions run inside the Lambda binaries (S3 + DynamoDB stores), inside the embedded
//! orchestrator (`marquee run`: a directory + SQLite) and inside tests.

pub mod draft;
pub mod drift;
pub mod error;
pub mod flow;
pub mod frame;
pub mod guard;
pub mod ingest;
pub mod keys;
pub mod promote;
pub mod spec;
pub mod steps;
pub mod store;
pub mod usecase;

pub use error::{Error, Result};
