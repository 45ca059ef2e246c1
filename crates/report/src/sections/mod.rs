//! The report section of each use case, from its typed evaluation details.

mod ads;
mod churn;
pub(crate) mod cutoff_slider;
pub(crate) mod promote;
mod recommend;
mod segment;
mod sentiment;

use marquee_pipeline::usecase::Details;

use crate::{ReportData, UseCaseReport};

/// The section's heading: the question the use case answers.
pub fn title(details: &Details) -> &'static str {
    match details {
        Details::Segment(_) => segment::TITLE,
        Details::Churn(_) => churn::TITLE,
        Details::Recommend(_) => recommend::TITLE,
        Details::Sentiment(_) => sentiment::TITLE,
        Details::Ads(_) => ads::TITLE,
    }
}

/// The use case's own part of its section (after the decision and criteria every section shows).
pub fn render(h: &mut String, u: &UseCaseReport, data: &ReportData) {
    match &u.record.challenger.details {
        Details::Segment(d) => segment::render(h, u, d),
        Details::Churn(d) => churn::render(h, u, d, &data.cli_options),
        Details::Recommend(d) => recommend::render(h, u, d, data),
        Details::Sentiment(d) => sentiment::render(h, u, d, data),
        Details::Ads(d) => ads::render(h, u, d),
    }
}
