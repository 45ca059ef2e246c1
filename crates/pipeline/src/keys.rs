//! Object-store key layout (docs/design.md). Every run writes under its own prefix; only deploy
//! writes outside it, and it flips `models/<use_case>/champion.json` last.

use crate::spec::UseCase;

/// Where users upload a dataset's files (the S3 trigger watches `raw/`).
pub fn raw(dataset: &str, file: &str) -> String {
    format!("raw/{dataset}/{file}")
}
pub fn run_prefix(run_id: &str) -> String {
    format!("runs/{run_id}/")
}
/// The spec as the run saw it: later steps read this copy, never the live one.
pub fn run_spec(run_id: &str) -> String {
    format!("runs/{run_id}/spec.toml")
}
pub fn ingested(run_id: &str, table: &str) -> String {
    format!("runs/{run_id}/ingested/{table}.csv")
}
/// Where every [`crate::steps::RECORD_INDEX_EVERY`]-th record of an ingested table starts, so
/// that its scoring can be cut into parts without reading it.
pub fn ingested_index(run_id: &str, table: &str) -> String {
    format!("runs/{run_id}/ingested/{table}.index.json")
}
pub fn ingest_manifest(run_id: &str) -> String {
    format!("runs/{run_id}/ingested/manifest.json")
}
pub fn profile(run_id: &str) -> String {
    format!("runs/{run_id}/ingested/profile.json")
}
pub fn quality(run_id: &str) -> String {
    format!("runs/{run_id}/ingested/quality.json")
}
pub fn quarantine(run_id: &str) -> String {
    format!("runs/{run_id}/ingested/quarantine.csv")
}
pub fn prepared(run_id: &str, uc: UseCase, file: &str) -> String {
    format!("runs/{run_id}/prepared/{uc}/{file}")
}
pub fn run_model(run_id: &str, uc: UseCase, file: &str) -> String {
    format!("runs/{run_id}/models/{uc}/{file}")
}
pub fn summary(run_id: &str) -> String {
    format!("runs/{run_id}/summary.json")
}
/// Deployed artifacts, one folder per version.
pub fn deployed(uc: UseCase, version: &str, file: &str) -> String {
    format!("models/{uc}/{version}/{file}")
}
pub fn champion(uc: UseCase) -> String {
    format!("models/{uc}/champion.json")
}
/// The last segment x content promotion: which champions it crossed and the segments it wrote.
pub fn promotion() -> String {
    "models/promote/promotion.json".into()
}

/// Score-store keys (docs/design.md).
pub mod score {
    use crate::spec::UseCase;
    pub fn customer(id: &str) -> String {
        format!("CUSTOMER#{id}")
    }
    pub fn title(id: &str) -> String {
        format!("TITLE#{id}")
    }
    /// `TITLE#x`, `BRAND#x`, `TALENT#x`: entity kind upper-cased.
    pub fn entity(kind: &str, id: &str) -> String {
        format!("{}#{id}", kind.to_ascii_uppercase())
    }
    pub fn model(uc: UseCase) -> String {
        format!("MODEL#{uc}")
    }
    pub fn version(v: &str) -> String {
        format!("VERSION#{v}")
    }
    pub const SEGMENT: &str = "SEGMENT";
    pub const CHURN: &str = "CHURN";
    pub const RECS: &str = "RECS";
    pub const SIMILAR: &str = "SIMILAR";
    pub const SENTIMENT: &str = "SENTIMENT";
    /// `ADS#<slot>#<segment>`: the ranked ads of a title's break slot for an audience segment.
    pub fn ads(slot: &str, segment: &str) -> String {
        format!("ADS#{slot}#{segment}")
    }
    /// Prefix of every ad plan's sort key.
    pub const ADS_PREFIX: &str = "ADS#";
    /// Stands for "any" where the spec has no such column (no title or segment column for ads).
    pub const ANY: &str = "*";
    pub const CHAMPION: &str = "CHAMPION";
    /// `SEGMENT#<s>` / `PROMOTE`: the titles to promote to audience segment `s`.
    pub fn segment(s: usize) -> String {
        format!("SEGMENT#{s}")
    }
    pub const PROMOTE: &str = "PROMOTE";
    /// The partition key prefix of every segment's items.
    pub const SEGMENT_PREFIX: &str = "SEGMENT#";
    /// `TRIGGER#<hash>` / `CLAIM`: the execution that runs an upload or event ([`crate::guard`]).
    pub fn trigger(hash: &str) -> String {
        format!("TRIGGER#{hash}")
    }
    pub const CLAIM: &str = "CLAIM";
    /// `DATASET#<dataset>` / `HOLDER`: the execution running a dataset ([`crate::guard`]).
    pub fn dataset(name: &str) -> String {
        format!("DATASET#{name}")
    }
    pub const HOLDER: &str = "HOLDER";
}
