//! `marquee show`: what the score store holds for a customer or a title.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::Value;

use marquee_pipeline::keys::score;
use marquee_pipeline::store::{Item, ScoreStore};

#[derive(Subcommand)]
pub enum ShowWhat {
    /// Segment, churn risk and recommendations of a customer.
    Customer { id: String },
    /// Similar titles and sentiment trend of a title.
    Title { id: String },
}

pub async fn show(store: &dyn ScoreStore, what: ShowWhat, json: bool) -> Result<()> {
    let (pk, kind) = match &what {
        ShowWhat::Customer { id } => (score::customer(id), "customer"),
        ShowWhat::Title { id } => (score::title(id), "title"),
    };
    let items = store.query(&pk).await?;
    if items.is_empty() {
        bail!("no scores for {kind} `{}` ({pk}); has a pipeline run deployed models? try `marquee run`", &pk[pk.find('#').map_or(0, |i| i + 1)..]);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!("{pk}");
    for item in &items {
        print_item(item);
    }
    Ok(())
}

fn s(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
        None => "-".into(),
    }
}

fn f(v: Option<&Value>) -> f64 {
    v.and_then(Value::as_f64).unwrap_or(f64::NAN)
}

fn print_item(item: &Item) {
    let a = |k: &str| item.attr(k);
    match item.sk.as_str() {
        score::SEGMENT => println!("  segment      {} ({})   model {}", s(a("segment")), s(a("label")), s(a("model_version"))),
        score::CHURN => println!(
            "  churn        probability {:.3}, at risk: {} (cutoff {:.2})   model {}",
            f(a("probability")),
            if a("at_risk").and_then(Value::as_bool).unwrap_or(false) { "YES" } else { "no" },
            f(a("cutoff")),
            s(a("model_version"))
        ),
        score::RECS | score::SIMILAR => {
            let (title, field) = if item.sk == score::RECS { ("recommended", "score") } else { ("similar", "similarity") };
            println!("  {title:<12} model {}", s(a("model_version")));
            for (rank, rec) in a("items").and_then(Value::as_array).into_iter().flatten().enumerate() {
                println!("    {:>2}. {:<8} {:<40} {:.3}", rank + 1, s(rec.get("title_id")), s(rec.get("title")), f(rec.get(field)));
            }
        }
        score::SENTIMENT => {
            println!(
                "  sentiment    net {:+.3} ({} mentions: {} positive, {} negative, {} neutral), trend {} (slope {:+.4} per {} days)",
                f(a("net_score")),
                s(a("mentions")),
                s(a("positive")),
                s(a("negative")),
                s(a("neutral")),
                s(a("direction")),
                f(a("trend_slope")),
                s(a("window_days"))
            );
            for w in a("windows").and_then(Value::as_array).into_iter().flatten() {
                println!("    week of {}  net {:+.2}  (+{} -{} ~{})", s(w.get("start")), f(w.get("net")), s(w.get("positive")), s(w.get("negative")), s(w.get("neutral")));
            }
        }
        other => println!("  {other:<12} {}", Value::Object(item.attrs.clone())),
    }
}
