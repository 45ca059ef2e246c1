//! The report's charts: plotters drawing into SVG strings that the HTML inlines.
//!
//! Text is left to the browser (SVG `<text>` in a sans-serif family); sizes are fixed so the page
//! lays out the same everywhere. A chart that cannot be drawn becomes a short note, never a panic.

use plotters::coord::Shift;
use plotters::prelude::*;

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

pub const W: u32 = 480;
pub const H: u32 = 340;
const FONT: &str = "sans-serif";

pub const BLUE: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
pub const ORANGE: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
pub const GREEN: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
pub const RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
pub const PURPLE: RGBColor = RGBColor(0x94, 0x67, 0xbd);
pub const GREY: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);
pub const BROWN: RGBColor = RGBColor(0x8c, 0x56, 0x4b);
pub const PINK: RGBColor = RGBColor(0xe3, 0x77, 0xc2);
pub const PALETTE: [RGBColor; 8] = [BLUE, ORANGE, GREEN, RED, PURPLE, BROWN, PINK, GREY];

/// Draws with `f` into a `w` x `h` SVG; a drawing error becomes a note in the page.
fn svg(w: u32, h: u32, f: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult) -> String {
    let mut out = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| f(&root).map_err(|e| e.to_string()))
            .and_then(|_| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => out,
        Err(e) => format!("<p class=\"note\">chart not drawn: {}</p>", crate::html::esc(&e)),
    }
}

fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY.mix(0.5))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}

/// What a legend entry looks like.
#[derive(Clone, Copy)]
pub enum Swatch {
    Line(RGBColor),
    Bar(RGBColor),
}

pub const LEGEND_W: u32 = 165;

/// A legend in its own column right of the plot, so it never hides data.
fn side_legend(area: &DrawingArea<SVGBackend, Shift>, items: &[(String, Swatch)]) -> DrawResult {
    for (i, (label, swatch)) in items.iter().enumerate() {
        let y = 56 + i as i32 * 22;
        match *swatch {
            Swatch::Line(c) => area.draw(&PathElement::new(vec![(4, y), (26, y)], c.stroke_width(2)))?,
            Swatch::Bar(c) => area.draw(&Rectangle::new([(8, y - 6), (21, y + 6)], c.filled()))?,
        }
        let text: String = if label.chars().count() > 22 {
            format!("{}…", label.chars().take(21).collect::<String>())
        } else {
            label.clone()
        };
        area.draw(&Text::new(text, (32, y - 7), (FONT, 16).into_font().color(&BLACK)))?;
    }
    Ok(())
}

type UnitChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart over the unit square with its mesh and the diagonal (labelled `diagonal`): ROC's chance
/// line, calibration's perfect line.
fn unit_square<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    caption: String,
    x_desc: &str,
    y_desc: &str,
    diagonal: &str,
) -> Result<UnitChart<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 14))
        .light_line_style(WHITE)
        .bold_line_style(GREY.mix(0.15))
        .draw()?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], GREY.mix(0.6).stroke_width(1)))?
        .label(diagonal)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREY));
    Ok(chart)
}

/// ROC curve with the chance diagonal and the deployed cutoff's operating point.
pub fn roc(points: &[(f64, f64)], auc: f64, marked: Option<(f64, f64, String)>) -> String {
    svg(W, H, |root| {
        let caption = format!("ROC curve (AUC {auc:.3})");
        let mut chart = unit_square(root, caption, "false positive rate", "true positive rate (recall)", "chance")?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), BLUE.stroke_width(2)))?
            .label("model")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        if let Some((fpr, tpr, label)) = marked {
            chart
                .draw_series([Circle::new((fpr, tpr), 5, RED.filled())])?
                .label(label)
                .legend(|(x, y)| Circle::new((x + 9, y), 4, RED.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    })
}

/// Reliability: mean predicted probability against the observed rate per bin, beside the diagonal
/// a calibrated model follows; `points` are (predicted, observed, rows).
pub fn reliability(points: &[(f64, f64, usize)], calibration_error: f64) -> String {
    svg(W, H, |root| {
        let caption = format!("Calibration (expected error {calibration_error:.3})");
        let mut chart =
            unit_square(root, caption, "predicted churn probability", "observed churn rate", "perfectly calibrated")?;
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), BLUE.stroke_width(2)))?
            .label("model (test split)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        // Larger dots for fuller bins.
        chart.draw_series(
            points.iter().map(|p| Circle::new((p.0, p.1), 3 + (p.2 as f64).log10().max(0.0) as i32, BLUE.filled())),
        )?;
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    })
}

/// Precision, recall, false positive rate and accuracy against the cutoff, with the deployed cutoff.
pub fn cutoff_curves(rows: &[(f64, f64, f64, f64, f64)], deployed: Option<(f64, String)>) -> String {
    svg(W + LEGEND_W, H, |root| {
        let (plot, side) = root.split_horizontally(W);
        let mut chart = ChartBuilder::on(&plot)
            .caption("Precision / recall vs cutoff", (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)?;
        chart
            .configure_mesh()
            .x_desc("cutoff (churn probability)")
            .y_desc("rate")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(GREY.mix(0.15))
            .draw()?;
        type Pick = fn(&(f64, f64, f64, f64, f64)) -> f64;
        let series: [(&str, RGBColor, Pick); 4] = [
            ("precision", BLUE, |r| r.1),
            ("recall", ORANGE, |r| r.2),
            ("false positive rate", RED, |r| r.3),
            ("accuracy", GREEN, |r| r.4),
        ];
        let mut items = Vec::new();
        for (name, color, f) in series {
            chart.draw_series(LineSeries::new(rows.iter().map(|r| (r.0, f(r))), color.stroke_width(2)))?;
            chart.draw_series(rows.iter().map(|r| Circle::new((r.0, f(r)), 2, color.filled())))?;
            items.push((name.to_string(), Swatch::Line(color)));
        }
        if let Some((c, label)) = deployed {
            chart.draw_series(LineSeries::new([(c, 0.0), (c, 1.02)], BLACK.mix(0.7).stroke_width(1)))?;
            items.push((label, Swatch::Line(BLACK)));
        }
        side_legend(&side, &items)
    })
}

/// The k sweep: SSE (left axis, the elbow) and silhouette (right axis), the chosen k marked.
pub fn elbow(sweep: &[(f64, f64, f64)], chosen_k: f64) -> String {
    svg(W + LEGEND_W, H, |root| {
        let (plot, side) = root.split_horizontally(W);
        let (kmin, kmax) = sweep.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (kmin, kmax) = if kmin.is_finite() { (kmin - 0.5, kmax + 0.5) } else { (0.0, 1.0) };
        let smax = sweep.iter().map(|p| p.1).fold(0.0, f64::max) * 1.08 + 1e-9;
        let (silmin, silmax) = sweep.iter().fold((0.0f64, 0.0f64), |(a, b), p| (a.min(p.2), b.max(p.2)));
        let mut chart = ChartBuilder::on(&plot)
            .caption("k sweep: SSE (elbow) and silhouette", (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(62)
            .right_y_label_area_size(48)
            .build_cartesian_2d(kmin..kmax, 0f64..smax)?
            .set_secondary_coord(kmin..kmax, silmin.min(0.0)..(silmax * 1.15 + 1e-9));
        chart
            .configure_mesh()
            .x_desc("k (segments)")
            .y_desc("SSE (train)")
            .x_labels(((kmax - kmin) as usize + 1).min(12))
            .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-6 { format!("{}", x.round()) } else { String::new() })
            .y_label_formatter(&|y| human(*y))
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(GREY.mix(0.15))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("silhouette")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 14))
            .draw()?;
        chart.draw_series(LineSeries::new(sweep.iter().map(|p| (p.0, p.1)), BLUE.stroke_width(2)))?;
        chart.draw_series(sweep.iter().map(|p| Circle::new((p.0, p.1), 3, BLUE.filled())))?;
        chart.draw_secondary_series(LineSeries::new(sweep.iter().map(|p| (p.0, p.2)), ORANGE.stroke_width(2)))?;
        chart.draw_secondary_series(sweep.iter().map(|p| Circle::new((p.0, p.2), 3, ORANGE.filled())))?;
        chart.draw_series(LineSeries::new([(chosen_k, 0.0), (chosen_k, smax)], BLACK.mix(0.6)))?;
        side_legend(
            &side,
            &[
                ("SSE (left)".into(), Swatch::Line(BLUE)),
                ("silhouette (right)".into(), Swatch::Line(ORANGE)),
                (format!("chosen k = {chosen_k}"), Swatch::Line(BLACK)),
            ],
        )
    })
}

/// Grouped vertical bars: one group per category, one bar per series.
pub fn bars(title: &str, y_desc: &str, categories: &[String], series: &[(&str, Vec<f64>)], percent: bool) -> String {
    let plot_w = (W as usize).max(120 + categories.len() * 36 * series.len().max(1)).min(900) as u32;
    let legend_w = if series.len() > 1 { LEGEND_W - 30 } else { 0 };
    svg(plot_w + legend_w, H, |root| {
        let (plot, side) = root.split_horizontally(plot_w);
        let n = categories.len().max(1) as f64;
        let ymax =
            series.iter().flat_map(|s| s.1.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max) * 1.15 + 1e-9;
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..ymax)?;
        let cats = categories.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(categories.len() + 1)
            .x_label_formatter(&move |x| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < cats.len() {
                    cats[r as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| if percent { format!("{:.0}%", y * 100.0) } else { human(*y) })
            .y_desc(y_desc)
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(GREY.mix(0.15))
            .draw()?;
        let k = series.len().max(1) as f64;
        let bw = 0.8 / k;
        for (s, (_, values)) in series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let x0 = -0.4 + s as f64 * bw;
            chart.draw_series(values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| {
                Rectangle::new([(i as f64 + x0 + 0.02, 0.0), (i as f64 + x0 + bw - 0.02, v)], color.filled())
            }))?;
            chart.draw_series(values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| {
                let label = match (percent, series.len() > 1) {
                    (true, true) => format!("{:.0}%", v * 100.0),
                    (true, false) => format!("{:.1}%", v * 100.0),
                    _ => short(v),
                };
                Text::new(
                    label,
                    (i as f64 + x0 + bw / 2.0, v),
                    (FONT, 14).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                )
            }))?;
        }
        if series.len() > 1 {
            let items: Vec<(String, Swatch)> = series
                .iter()
                .enumerate()
                .map(|(s, (name, _))| (name.to_string(), Swatch::Bar(PALETTE[s % PALETTE.len()])))
                .collect();
            side_legend(&side, &items)?;
        }
        Ok(())
    })
}

/// Net sentiment per time window for a few entities, oldest window on the left.
pub fn sentiment_trend(labels: &[String], entities: &[(String, Vec<f64>)]) -> String {
    svg(W + 60 + LEGEND_W + 40, H + 20, |root| {
        let (plot, side) = root.split_horizontally(W + 60);
        let n = labels.len().max(2) as f64;
        let mut chart = ChartBuilder::on(&plot)
            .caption("Trending sentiment (net score per window)", (FONT, 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.2f64..(n - 0.8), -1.05f64..1.05f64)?;
        let l = labels.to_vec();
        chart
            .configure_mesh()
            .x_labels(labels.len() + 1)
            .x_label_formatter(&move |x| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && r >= 0.0 && (r as usize) < l.len() {
                    l[r as usize].clone()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| if y.abs() < 1e-9 { "0".into() } else { format!("{y:+.1}") })
            .x_desc("window start")
            .y_desc("net sentiment (pos - neg) / mentions")
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .bold_line_style(GREY.mix(0.15))
            .draw()?;
        chart.draw_series(LineSeries::new([(-0.2, 0.0), (n - 0.8, 0.0)], BLACK.mix(0.4)))?;
        let mut items = Vec::new();
        for (s, (name, values)) in entities.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let pts: Vec<(f64, f64)> =
                values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, &v)| (i as f64, v)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
            items.push((name.clone(), Swatch::Line(color)));
        }
        side_legend(&side, &items)
    })
}

/// 12345 -> "12.3k", 0.1234 -> "0.123".
pub fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 {
        human(v)
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(svg: &str) {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }

    #[test]
    fn charts_are_well_formed_svg_even_on_empty_or_odd_input() {
        well_formed(&roc(&[(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)], 0.8, Some((0.2, 0.7, "cutoff <0.5> & co".into()))));
        well_formed(&roc(&[], f64::NAN, None));
        well_formed(&cutoff_curves(&[(0.5, 0.6, 0.7, 0.1, 0.8)], Some((0.5, "deployed".into()))));
        well_formed(&cutoff_curves(&[], None));
        well_formed(&elbow(&[(2.0, 100.0, 0.3), (3.0, 60.0, 0.4)], 3.0));
        well_formed(&elbow(&[], 0.0));
        well_formed(&bars(
            "t",
            "y",
            &["a<b".into(), "c".into()],
            &[("s1", vec![0.1, f64::NAN]), ("s2", vec![0.2, 0.3])],
            true,
        ));
        well_formed(&bars("t", "y", &[], &[], false));
        well_formed(&sentiment_trend(
            &["09-01".into(), "09-08".into()],
            &[("↑ T1 \"Quotes\" & <tags>".into(), vec![0.2, f64::NAN])],
        ));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human(12345.0), "12k");
        assert_eq!(human(1234.0), "1.2k");
        assert_eq!(human(0.0), "0");
        assert_eq!(human(0.25), "0.25");
    }
}
