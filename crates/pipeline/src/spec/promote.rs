//! `[promote]`: the segment x content match, per audience segment the titles to promote at the
//! top of its members' watchlists. It crosses three champions (segment, recommend and, when the
//! spec has it, sentiment), so it is not a use case of its own: it runs after them whenever the
//! spec enables segment and recommend (see docs/spec.md).

use serde::{Deserialize, Serialize};

use super::{check, check_range, Spec};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteSection {
    /// Write the promotions (when segment and recommend are enabled).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Titles per segment.
    #[serde(default = "default_top_n")]
    pub top_n: usize,
    /// A title whose sentiment is rising scores `1 + sentiment_weight` times its members'
    /// aggregated recommendation score; a falling one `1 - sentiment_weight` times. 0 ignores
    /// sentiment.
    #[serde(default = "default_sentiment_weight")]
    pub sentiment_weight: f64,
    /// Titles rank by `affinity x lift^lift_weight`: 0 ranks by the members' aggregated
    /// recommendation score alone (the titles popular everywhere), 1 (default, chosen on the demo
    /// data) also weighs how much more the segment's members are recommended a title than
    /// everyone is.
    #[serde(default = "default_lift_weight")]
    pub lift_weight: f64,
    /// The `sentiment.entities` kind whose ids are the recommended titles' ids (when the spec has
    /// no `title` kind and names none, sentiment does not weigh in).
    #[serde(default = "default_sentiment_entity")]
    pub sentiment_entity: String,
}

fn default_enabled() -> bool {
    true
}
fn default_top_n() -> usize {
    10
}
fn default_sentiment_weight() -> f64 {
    0.25
}
fn default_lift_weight() -> f64 {
    1.0
}
fn default_sentiment_entity() -> String {
    "title".into()
}

impl Default for PromoteSection {
    fn default() -> Self {
        Self {
            enabled: default_enabled(),
            top_n: default_top_n(),
            sentiment_weight: default_sentiment_weight(),
            lift_weight: default_lift_weight(),
            sentiment_entity: default_sentiment_entity(),
        }
    }
}

impl PromoteSection {
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// Whether a run of `spec` writes promotions: enabled, with segment and recommend.
    pub fn active(spec: &Spec) -> bool {
        spec.promote.enabled && spec.segment.is_some() && spec.recommend.is_some()
    }

    /// The sentiment entity kind to boost by, when the spec has sentiment and a weight.
    pub fn sentiment_kind<'a>(&'a self, spec: &Spec) -> Option<&'a str> {
        let s = spec.sentiment.as_ref()?;
        (self.sentiment_weight > 0.0 && s.entities.contains_key(&self.sentiment_entity))
            .then_some(self.sentiment_entity.as_str())
    }
}

pub(super) fn validate(spec: &Spec, p: &PromoteSection) -> Result<()> {
    check_range(p.top_n, 1, 1000, "promote.top_n")?;
    check((0.0..1.0).contains(&p.sentiment_weight), "promote.sentiment_weight", "must be in [0, 1)")?;
    check((0.0..=4.0).contains(&p.lift_weight), "promote.lift_weight", "must be in [0, 4]")?;
    // The default kind may be absent (sentiment then does not weigh in); a kind named is checked.
    if let (Some(s), true) =
        (&spec.sentiment, p.sentiment_weight > 0.0 && p.sentiment_entity != default_sentiment_entity())
    {
        let kinds: Vec<&str> = s.entities.keys().map(String::as_str).collect();
        check(
            s.entities.contains_key(&p.sentiment_entity),
            "promote.sentiment_entity",
            &format!("must be one of sentiment.entities ({})", kinds.join(", ")),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo() -> Spec {
        toml::from_str(marquee_demo_spec()).unwrap()
    }

    fn marquee_demo_spec() -> &'static str {
        include_str!("../../../demo/src/demo_spec.toml")
    }

    #[test]
    fn defaults_apply_without_a_section_and_are_not_serialised() {
        let spec = demo();
        assert!(PromoteSection::active(&spec));
        assert_eq!(spec.promote.sentiment_kind(&spec), Some("title"));
        let text = toml::to_string(&spec).unwrap();
        assert!(!text.contains("[promote]"), "{text}");
    }

    #[test]
    fn an_unknown_sentiment_entity_names_the_field_and_the_choices() {
        let mut spec = demo();
        spec.promote.sentiment_entity = "show".into();
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("promote.sentiment_entity") && err.contains("brand, talent, title"), "{err}");
        spec.promote.sentiment_weight = 0.0;
        spec.validate().unwrap();
        assert_eq!(spec.promote.sentiment_kind(&spec), None);
    }

    #[test]
    fn disabled_or_without_recommend_it_does_not_run() {
        let mut spec = demo();
        spec.promote.enabled = false;
        assert!(!PromoteSection::active(&spec));
        let mut spec = demo();
        spec.recommend = None;
        assert!(!PromoteSection::active(&spec));
    }
}
