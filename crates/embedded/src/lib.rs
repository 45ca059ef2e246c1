//! marquee-embedded: the storage traits of `marquee-pipeline` implemented for one machine.
//!
//! - [`DirObjectStore`]: objects are files under a root directory (the S3 twin).
//! - [`SqliteScoreStore`]: pk/sk items in one SQLite table (the DynamoDB twin).
//! - [`WorkdirLock`]: one writer per working folder.

mod dir;
mod lock;
mod sqlite;

pub use dir::DirObjectStore;
pub use lock::WorkdirLock;
pub use sqlite::SqliteScoreStore;
