//! `[ads]`: which ad to place in which break slot for which viewer, learned from an impressions
//! log that records the logging policy's propensity of each shown ad (see docs/spec.md).

use serde::{Deserialize, Serialize};

use super::{check, check_range, ChampionPolicy, ColumnKind, Spec};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsSpec {
    /// The impressions log: one row per ad shown.
    pub table: String,
    /// The ad shown (its id).
    pub ad: String,
    /// The break slot it was shown in (mid-roll position).
    pub slot: String,
    /// 1 when the viewer engaged (clicked, watched to the end), else 0.
    pub engaged: String,
    /// Probability with which the logging policy chose this ad for this slot and viewer.
    pub propensity: String,
    /// Categorical columns of the impression describing the viewer and the content (segment,
    /// device, genre); crossed with the ad's attributes in the engagement model.
    #[serde(default)]
    pub context: Vec<String>,
    /// The title the break belongs to: ad plans are scored per title (`TITLE#<id>` items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The viewer's audience segment: ad plans are scored per slot and segment
    /// (`ADS#<slot>#<segment>` items); one of `context` or another column of the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Ads listed per scored plan, best first.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// Optional table of ad attributes, one row per ad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_table: Option<String>,
    /// The ad id column of `ad_table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_id: Option<String>,
    /// Categorical attributes of the ad in `ad_table` (category, advertiser, length band).
    #[serde(default)]
    pub ad_features: Vec<String>,
    /// Numeric attributes of the ad in `ad_table`.
    #[serde(default)]
    pub ad_numeric: Vec<String>,
    /// A numeric column of the impression per candidate ad, named by this pattern with `{ad}`
    /// replaced by the ad id (e.g. `affinity_{ad}`: an upstream viewer-ad affinity score).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<String>,
    /// Share of the policy's choices spread uniformly over all ads, so its own logs stay usable
    /// for off-policy evaluation.
    #[serde(default = "default_exploration")]
    pub exploration: f64,
    /// L2 penalty of the engagement model.
    #[serde(default = "default_l2")]
    pub l2: f64,
    /// The engagement model hashes context x ad features into 2^hash_bits columns.
    #[serde(default = "default_hash_bits")]
    pub hash_bits: u32,
    #[serde(default)]
    pub criteria: AdsCriteria,
    #[serde(default)]
    pub champion: ChampionPolicy,
}

fn default_exploration() -> f64 {
    0.1
}
fn default_l2() -> f64 {
    1.0
}
fn default_hash_bits() -> u32 {
    18
}
fn default_top_n() -> usize {
    3
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdsCriteria {
    /// Minimum ROC AUC of the engagement model on the test split.
    #[serde(default = "default_min_auc")]
    pub min_auc: f64,
    /// Minimum relative lift of the policy's doubly robust value over the logged policy's.
    #[serde(default = "default_min_lift")]
    pub min_lift: f64,
}

fn default_min_auc() -> f64 {
    0.55
}
fn default_min_lift() -> f64 {
    0.05
}

impl Default for AdsCriteria {
    fn default() -> Self {
        Self { min_auc: default_min_auc(), min_lift: default_min_lift() }
    }
}

impl AdsSpec {
    /// The affinity column of ad `id`, if the spec has an affinity pattern.
    pub fn affinity_column(&self, id: &str) -> Option<String> {
        self.affinity.as_ref().map(|p| p.replace("{ad}", id))
    }
}

/// Cross-field checks of `[ads]` against the tables.
pub(super) fn validate(spec: &Spec, a: &AdsSpec) -> Result<()> {
    let t = spec.table_for("ads.table", &a.table)?;
    let ids = [ColumnKind::Id, ColumnKind::Categorical];
    spec.expect_kind(t, "ads.ad", &a.table, &a.ad, &ids)?;
    spec.expect_kind(
        t,
        "ads.slot",
        &a.table,
        &a.slot,
        &[ColumnKind::Id, ColumnKind::Categorical, ColumnKind::Numeric],
    )?;
    spec.expect_kind(t, "ads.engaged", &a.table, &a.engaged, &[ColumnKind::Numeric])?;
    spec.expect_kind(t, "ads.propensity", &a.table, &a.propensity, &[ColumnKind::Numeric])?;
    for c in &a.context {
        spec.expect_kind(t, "ads.context", &a.table, c, &ids)?;
    }
    match (&a.ad_table, &a.ad_id) {
        (Some(name), Some(id)) => {
            let at = spec.table_for("ads.ad_table", name)?;
            spec.expect_kind(at, "ads.ad_id", name, id, &ids)?;
            for c in &a.ad_features {
                spec.expect_kind(at, "ads.ad_features", name, c, &ids)?;
            }
            for c in &a.ad_numeric {
                spec.expect_kind(at, "ads.ad_numeric", name, c, &[ColumnKind::Numeric])?;
            }
        }
        (None, None) => {
            check(a.ad_features.is_empty(), "ads.ad_features", "needs ads.ad_table and ads.ad_id")?;
            check(a.ad_numeric.is_empty(), "ads.ad_numeric", "needs ads.ad_table and ads.ad_id")?;
        }
        (Some(_), None) => check(false, "ads.ad_id", "is required with ads.ad_table")?,
        (None, Some(_)) => check(false, "ads.ad_table", "is required with ads.ad_id")?,
    }
    for (field, column) in [("ads.title", &a.title), ("ads.segment", &a.segment)] {
        if let Some(c) = column {
            spec.expect_kind(t, field, &a.table, c, &[ColumnKind::Id, ColumnKind::Categorical, ColumnKind::Numeric])?;
        }
    }
    check_range(a.top_n, 1, 100, "ads.top_n")?;
    if let Some(p) = &a.affinity {
        check(p.contains("{ad}"), "ads.affinity", "must contain `{ad}` (replaced by each ad's id)")?;
    }
    check((0.0..=1.0).contains(&a.exploration), "ads.exploration", "must be in [0, 1]")?;
    check(a.l2.is_finite() && a.l2 > 0.0, "ads.l2", "must be a finite number > 0")?;
    check_range(a.hash_bits as usize, 4, 24, "ads.hash_bits")?;
    check((0.0..=1.0).contains(&a.criteria.min_auc), "ads.criteria.min_auc", "must be in [0, 1]")?;
    check(a.criteria.min_lift.is_finite(), "ads.criteria.min_lift", "must be a finite number")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::spec::{Spec, UseCase};

    const OBD: &str = include_str!("../../../../specs/open_bandit.toml");

    fn err(text: &str) -> String {
        Spec::from_toml(text, "pipeline.toml").unwrap_err().to_string()
    }

    #[test]
    fn an_ads_only_spec_is_valid_and_runs_the_ads_use_case() {
        let spec = Spec::from_toml(OBD, "obd").unwrap();
        let a = spec.ads.as_ref().unwrap();
        assert_eq!(a.affinity_column("7").as_deref(), Some("user-item_affinity_7"));
        assert_eq!(spec.use_cases(), vec![UseCase::Ads]);
        assert_eq!(Spec::from_toml(&spec.to_toml(), "again").unwrap(), spec);
    }

    #[test]
    fn bad_ads_fields_are_named() {
        let e = err(&OBD.replace("propensity = \"propensity_score\"", "propensity = \"user_feature_0\""));
        assert!(e.contains("`ads.propensity`") && e.contains("declared Categorical"), "{e}");
        let e = err(&OBD.replace("affinity = \"user-item_affinity_{ad}\"", "affinity = \"affinity\""));
        assert!(e.contains("`ads.affinity`") && e.contains("{ad}"), "{e}");
        let e = err(&OBD.replace("exploration = 0.0", "exploration = 1.5"));
        assert!(e.contains("`ads.exploration`"), "{e}");
        let e = err(&OBD.replace("ad_id = \"item_id\"\n", ""));
        assert!(e.contains("`ads.ad_id`") && e.contains("required with ads.ad_table"), "{e}");
        let e = err(&OBD.replace("table = \"random\"", "table = \"nope\""));
        assert!(e.contains("`ads.table`") && e.contains("not under [tables]"), "{e}");
    }
}
