//! marquee-embedded: the storage traits of `marquee-pipeline` implemented for one machine.
//!
//! - [`DirObjectStore`]: objects are files under a root directory (the S3 twin).
//! - [`SqliteScoreStore`]: pk/sk items in one SQLite table (the DynamoDB twin).

mod dir;
mod sqlite;

pub use dir::DirObjectStore;
pub use sqlite::SqliteScoreStore;
