//! marquee-lambda: what every marquee Lambda shares. A function's `main` is one call:
//!
//! ```no_run
//! fn main() -> Result<(), marquee_lambda::Error> {
//!     marquee_lambda::serve("train", marquee_lambda::handlers::train)
//! }
//! ```
//!
//! - [`handlers`]: one `async fn(stores, request) -> Result<response>` per step, callable
//!   in-process (tests run them over embedded stores with the files in `events/`).
//! - [`serve`]: JSON logs with step/run_id/use_case fields, S3 + DynamoDB clients created once
//!   per container (from `MARQUEE_BUCKET` / `MARQUEE_TABLE` and aws-config's default chain),
//!   error types for the state machine's Retry/Catch ([`error`]), and fault injection ([`fault`]).

pub mod error;
pub mod fault;
pub mod handlers;
pub mod normalize;
mod runtime;

pub use error::HandlerError;
pub use runtime::{execution_status, function_memory_mb, serve, Error};
