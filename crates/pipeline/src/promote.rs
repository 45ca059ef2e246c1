//! Segment x content match: per audience segment, the titles to promote at the top of its
//! members' watchlists.
//!
//! A title's score for a segment is its members' recommendation scores aggregated: the sum of
//! the scores it has in their personal top-N lists (which leave out what each member already
//! rated or watched) over the segment's members with a list, so a title matters for a segment
//! when many of its members would be recommended it, and strongly. Each title also carries its
//! reach (share of the members whose list holds it) and its lift (that reach over its reach
//! among all segmented customers with a list): a lift above 1 is the "positive match" between
//! the segment and the content. Titles are ranked by `affinity x lift^a` (`promote.lift_weight`,
//! default 1), so a title every segment would be recommended does not crowd out the ones that
//! set this segment apart. Rising sentiment about the title multiplies that by `1 + w`, falling
//! by `1 - w` (`promote.sentiment_weight`).

use marquee_ml::trend::Direction;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::keys::score;
use crate::store::Item;

/// The champions a promotion crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteVersions {
    pub segment: String,
    pub recommend: String,
    /// None when the spec has no sentiment, no sentiment champion is deployed, or the weight is 0.
    #[serde(default)]
    pub sentiment: Option<String>,
}

/// One title to promote to a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotedTitle {
    pub rank: usize,
    pub title_id: String,
    #[serde(default)]
    pub title: String,
    /// Aggregated recommendation score times the sentiment factor: what the titles are ranked by.
    pub score: f64,
    /// Sum of the title's recommendation scores over the members with a list, per member.
    pub affinity: f64,
    /// Share of the segment's members with a list whose list holds the title.
    pub reach: f64,
    /// `reach` over the title's reach among all segmented customers with a list.
    pub lift: f64,
    /// The title's sentiment trend, when sentiment was crossed and the title has one.
    #[serde(default)]
    pub sentiment: Option<Direction>,
}

/// The `SEGMENT#<s>` / `PROMOTE` item: a segment's titles to promote, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentPromotion {
    pub segment: usize,
    pub label: String,
    /// Customers the segment champion puts in this segment.
    pub members: usize,
    /// Members the recommend champion has a list for (the aggregation's population).
    pub members_with_recommendations: usize,
    pub titles: Vec<PromotedTitle>,
    pub versions: PromoteVersions,
}

impl SegmentPromotion {
    pub fn to_item(&self) -> Item {
        Item::new(
            score::segment(self.segment),
            score::PROMOTE,
            serde_json::to_value(self).expect("a promotion serialises"),
        )
    }

    pub fn from_item(item: &Item) -> Result<Self> {
        serde_json::from_value(serde_json::Value::Object(item.attrs.clone()))
            .map_err(|e| Error::Invalid(format!("score item {} / {}: {e}", item.pk, item.sk)))
    }
}

/// What [`rank`] crosses: the segment champion's assignments, the recommend champion's lists
/// and the sentiment champion's title trends.
pub struct PromoteInputs<'a> {
    /// (customer id, segment) per customer.
    pub assignments: &'a [(String, usize)],
    /// Segment labels, by segment.
    pub labels: &'a [String],
    /// The recommend model's user ids and, in the same order, each one's top list
    /// (item index, score), best first.
    pub user_ids: &'a [String],
    pub lists: &'a [Vec<(u32, f32)>],
    /// Title id and name per item index.
    pub item_ids: &'a [String],
    pub title_names: &'a HashMap<&'a str, &'a str>,
    /// Title id -> its sentiment trend.
    pub trends: &'a HashMap<String, Direction>,
}

/// Ranking parameters (`[promote]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankParams {
    pub top_n: usize,
    pub sentiment_weight: f64,
    /// The exponent on a title's lift: 0 ranks by aggregated score alone (the most popular
    /// titles everywhere), 1 weighs what sets the segment apart as much as how strongly.
    pub lift_weight: f64,
}

/// Every segment's promotion, by segment (segments without members included, with no titles).
pub fn rank(inputs: &PromoteInputs, params: RankParams, versions: &PromoteVersions) -> Vec<SegmentPromotion> {
    let n_items = inputs.item_ids.len();
    let k = inputs.labels.len();
    let list_of: HashMap<&str, &[(u32, f32)]> =
        inputs.user_ids.iter().map(String::as_str).zip(inputs.lists.iter().map(Vec::as_slice)).collect();
    let mut members = vec![0usize; k];
    let mut with_list = vec![0usize; k];
    let mut score_sum = vec![vec![0.0f64; n_items]; k];
    let mut reach = vec![vec![0usize; n_items]; k];
    let (mut all_with_list, mut all_reach) = (0usize, vec![0usize; n_items]);
    for (customer, seg) in inputs.assignments {
        let seg = *seg;
        members[seg] += 1;
        let Some(list) = list_of.get(customer.as_str()) else { continue };
        with_list[seg] += 1;
        all_with_list += 1;
        for &(item, s) in *list {
            score_sum[seg][item as usize] += s as f64;
            reach[seg][item as usize] += 1;
            all_reach[item as usize] += 1;
        }
    }
    let factor = |id: &str| match inputs.trends.get(id) {
        Some(Direction::Rising) => 1.0 + params.sentiment_weight,
        Some(Direction::Falling) => 1.0 - params.sentiment_weight,
        _ => 1.0,
    };
    (0..k)
        .map(|seg| {
            let n = with_list[seg].max(1) as f64;
            let mut titles: Vec<PromotedTitle> = (0..n_items)
                .filter(|&i| reach[seg][i] > 0)
                .map(|i| {
                    let id = &inputs.item_ids[i];
                    let affinity = score_sum[seg][i] / n;
                    let share = reach[seg][i] as f64 / n;
                    let overall = all_reach[i] as f64 / all_with_list.max(1) as f64;
                    let lift = share / overall;
                    PromotedTitle {
                        rank: 0,
                        title_id: id.clone(),
                        title: inputs.title_names.get(id.as_str()).map(|s| s.to_string()).unwrap_or_default(),
                        score: round6(affinity * lift.powf(params.lift_weight) * factor(id)),
                        affinity: round6(affinity),
                        reach: round6(share),
                        lift: round6(lift),
                        sentiment: inputs.trends.get(id).copied(),
                    }
                })
                .collect();
            titles.sort_by(|a, b| {
                b.score.total_cmp(&a.score).then(b.affinity.total_cmp(&a.affinity)).then(a.title_id.cmp(&b.title_id))
            });
            titles.truncate(params.top_n);
            titles.iter_mut().enumerate().for_each(|(r, t)| t.rank = r + 1);
            SegmentPromotion {
                segment: seg,
                label: inputs.labels[seg].clone(),
                members: members[seg],
                members_with_recommendations: with_list[seg],
                titles,
                versions: versions.clone(),
            }
        })
        .collect()
}

/// Six decimals, as the other score items carry.
fn round6(x: f64) -> f64 {
    crate::usecase::churn::round6(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> PromoteVersions {
        PromoteVersions { segment: "s1".into(), recommend: "r1".into(), sentiment: None }
    }

    /// The recommend and segment champions' outputs a ranking crosses.
    struct Crossed {
        assignments: Vec<(String, usize)>,
        labels: Vec<String>,
        user_ids: Vec<String>,
        lists: Vec<Vec<(u32, f32)>>,
        item_ids: Vec<String>,
    }

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    impl Crossed {
        fn new(assigned: &[(&str, usize)], users: &[&str], lists: Vec<Vec<(u32, f32)>>, items: &[&str]) -> Self {
            let k = assigned.iter().map(|a| a.1 + 1).max().unwrap_or(0);
            Self {
                assignments: assigned.iter().map(|(c, s)| (c.to_string(), *s)).collect(),
                labels: (0..k).map(|s| format!("segment {s}")).collect(),
                user_ids: strings(users),
                lists,
                item_ids: strings(items),
            }
        }

        fn rank(
            &self,
            names: &HashMap<&str, &str>,
            trends: &HashMap<String, Direction>,
            params: RankParams,
        ) -> Vec<SegmentPromotion> {
            let inputs = PromoteInputs {
                assignments: &self.assignments,
                labels: &self.labels,
                user_ids: &self.user_ids,
                lists: &self.lists,
                item_ids: &self.item_ids,
                title_names: names,
                trends,
            };
            rank(&inputs, params, &versions())
        }
    }

    /// Two segments of two customers each; a fifth customer has no segment row, one member has
    /// no list.
    fn promote(trends: &HashMap<String, Direction>, weight: f64) -> Vec<SegmentPromotion> {
        let crossed = Crossed::new(
            &[("a", 0), ("b", 0), ("c", 1), ("d", 1)],
            &["a", "b", "c", "e"],
            vec![
                vec![(0, 4.0), (1, 3.0)], // a
                vec![(1, 5.0), (2, 2.0)], // b
                vec![(2, 4.5)],           // c
                vec![(0, 1.0)],           // e: not segmented, so in no reach
            ],
            &["T0", "T1", "T2"],
        );
        let names = HashMap::from([("T0", "Zero"), ("T1", "One")]);
        crossed.rank(&names, trends, RankParams { top_n: 2, sentiment_weight: weight, lift_weight: 0.0 })
    }

    #[test]
    fn scores_are_members_recommendation_scores_per_member_with_reach_and_lift() {
        let p = promote(&HashMap::new(), 0.25);
        assert_eq!(p.len(), 2);
        let s0 = &p[0];
        assert_eq!((s0.members, s0.members_with_recommendations, s0.label.as_str()), (2, 2, "segment 0"));
        // T1: (3 + 5) / 2 = 4.0, reach 2/2; T0: 4 / 2 = 2.0; T2: 2 / 2 = 1.0 (cut by top_n = 2).
        let got: Vec<(&str, f64, f64, usize)> =
            s0.titles.iter().map(|t| (t.title_id.as_str(), t.score, t.reach, t.rank)).collect();
        assert_eq!(got, [("T1", 4.0, 1.0, 1), ("T0", 2.0, 0.5, 2)]);
        assert_eq!(s0.titles[0].title, "One");
        // T1's overall reach: 2 of the 3 segmented customers with a list (a, b, c) -> 1 / (2/3).
        assert_eq!(s0.titles[0].lift, 1.5);
        // T0: reach 0.5 in the segment, 1 of 3 overall (e is not segmented).
        assert_eq!(s0.titles[1].lift, 1.5);
        // Segment 1: d has no list, so the per-member denominator is c alone.
        let s1 = &p[1];
        assert_eq!((s1.members, s1.members_with_recommendations), (2, 1));
        assert_eq!(s1.titles.len(), 1);
        assert_eq!((s1.titles[0].title_id.as_str(), s1.titles[0].score, s1.titles[0].title.as_str()), ("T2", 4.5, ""));
    }

    #[test]
    fn rising_sentiment_boosts_and_falling_sentiment_sinks() {
        let trends = HashMap::from([("T0".to_string(), Direction::Rising), ("T1".to_string(), Direction::Falling)]);
        let p = promote(&trends, 0.25);
        // T1: 4.0 * 0.75 = 3.0, T0: 2.0 * 1.25 = 2.5: the falling title still leads, by less.
        let got: Vec<(&str, f64, f64, Option<Direction>)> =
            p[0].titles.iter().map(|t| (t.title_id.as_str(), t.score, t.affinity, t.sentiment)).collect();
        assert_eq!(got, [("T1", 3.0, 4.0, Some(Direction::Falling)), ("T0", 2.5, 2.0, Some(Direction::Rising))]);
        // A weight of 0.6 flips them: 4.0 * 0.4 = 1.6 < 2.0 * 1.6 = 3.2.
        let p = promote(&trends, 0.6);
        assert_eq!(p[0].titles[0].title_id, "T0");
    }

    #[test]
    fn lift_weight_lets_what_sets_a_segment_apart_outrank_what_everyone_gets() {
        // P is in all four lists at 5; N only in segment 0's, at 3.
        let crossed = Crossed::new(
            &[("a", 0), ("b", 0), ("c", 1), ("d", 1)],
            &["a", "b", "c", "d"],
            vec![vec![(0, 5.0), (1, 3.0)], vec![(0, 5.0), (1, 3.0)], vec![(0, 5.0)], vec![(0, 5.0)]],
            &["P", "N"],
        );
        let ranked = |lift_weight| -> Vec<(String, f64, f64)> {
            let params = RankParams { top_n: 2, sentiment_weight: 0.0, lift_weight };
            crossed.rank(&HashMap::new(), &HashMap::new(), params)[0]
                .titles
                .iter()
                .map(|t| (t.title_id.clone(), t.score, t.lift))
                .collect()
        };
        // Segment 0: P affinity 5, lift 1; N affinity 3, lift 1 / (2/4) = 2.
        assert_eq!(ranked(0.0), [("P".to_string(), 5.0, 1.0), ("N".to_string(), 3.0, 2.0)]);
        assert_eq!(ranked(1.0), [("N".to_string(), 6.0, 2.0), ("P".to_string(), 5.0, 1.0)]);
    }

    #[test]
    fn the_item_round_trips() {
        let p = promote(&HashMap::new(), 0.0);
        let item = p[0].to_item();
        assert_eq!((item.pk.as_str(), item.sk.as_str()), ("SEGMENT#0", "PROMOTE"));
        assert_eq!(SegmentPromotion::from_item(&item).unwrap(), p[0]);
    }
}
