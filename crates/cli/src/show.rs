//! `marquee show`: what the score store holds for a customer or a title.

use anyhow::Result;
use clap::Subcommand;

use marquee_pipeline::store::{ObjectStore, ScoreStore};

use crate::query;

#[derive(Subcommand)]
pub enum ShowWhat {
    /// Segment (with its profile), churn probability and at-risk flag, top recommendations
    ///
    /// Examples:
    ///   marquee show customer C00042
    ///   marquee show customer C00042 --top 5 --json
    #[command(verbatim_doc_comment)]
    Customer {
        /// Customer id, as in the customers file (e.g. C00042).
        id: String,
    },
    /// Most similar titles and the sentiment trend of a title
    ///
    /// Examples:
    ///   marquee show title T0007
    ///   marquee show title T0007 --json | jq '.sentiment.direction'
    #[command(verbatim_doc_comment)]
    Title {
        /// Title id, as in the titles file (e.g. T0007).
        id: String,
    },
}

/// Prints a customer or a title as a table, or as JSON with `json`.
pub async fn show(
    scores: &dyn ScoreStore,
    objects: &dyn ObjectStore,
    what: ShowWhat,
    top: usize,
    json: bool,
) -> Result<()> {
    match what {
        ShowWhat::Customer { id } => {
            let v = query::customer(scores, objects, &id, top).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                query::print_customer(&v);
            }
        }
        ShowWhat::Title { id } => {
            let v = query::title(scores, &id, top).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                query::print_title(&v);
            }
        }
    }
    Ok(())
}
