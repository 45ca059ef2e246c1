//! The churn cutoff slider: the control Amazon ML's evaluation page has. It shows precision,
//! recall, false positive rate, accuracy and the number flagged at any cutoff of the table, and the
//! `marquee churn cutoff` command that applies that cutoff.
//!
//! The page renders the starting cutoff's figures itself (they read without JavaScript); the inline
//! script only swaps figures when the slider moves, from the rows embedded as JSON.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use marquee_pipeline::usecase::churn::CutoffRow;

use crate::html::{esc, json_script, pct};

const SCRIPT: &str = include_str!("cutoff_slider.js");

/// The figures the slider shows, as (`data-figure` name, label).
const FIGURES: [(&str, &str); 5] = [
    ("precision", "precision (flagged who churn)"),
    ("recall", "recall (churners flagged)"),
    ("false_positive_rate", "false positive rate (loyal flagged)"),
    ("accuracy", "accuracy"),
    ("flagged", "flagged at risk"),
];

/// What the printed `marquee churn cutoff` command needs besides the cutoff.
pub struct Command<'a> {
    pub run_id: &'a str,
    /// Global options that reach the run's stores (e.g. `--workdir /tmp/mq`); empty: unknown.
    pub cli_options: &'a str,
    /// The run is the deployed champion, so `--apply` works for it; otherwise the printed command
    /// is the dry run (the CLI refuses `--apply` on any other run).
    pub apply: bool,
}

/// The slider over `rows` (each a cutoff of the table), starting at `rows[start]`.
pub fn render(h: &mut String, command: &Command, rows: &[CutoffRow], start: usize) {
    let Command { run_id, cli_options, apply } = *command;
    let Some(first) = rows.get(start) else { return };
    let test_rows = first.tp + first.fp + first.tn + first.fn_;
    let cutoff = format!("{:.2}", first.cutoff);
    let _ = write!(
        h,
        "<div class=\"slider\" id=\"churn-slider\"><h3>Try a cutoff</h3>\n<p><label for=\"churn-cutoff\">cutoff <b class=\"mono\" data-figure=\"cutoff\">{cutoff}</b></label> <input type=\"range\" id=\"churn-cutoff\" min=\"0\" max=\"{}\" step=\"1\" value=\"{start}\" aria-valuetext=\"{cutoff}\"> <span class=\"note\">{:.2} … {:.2}, the cutoffs of the table below</span></p>\n<div class=\"kpis\">",
        rows.len() - 1,
        rows[0].cutoff,
        rows[rows.len() - 1].cutoff,
    );
    for (name, label) in FIGURES {
        let _ = write!(
            h,
            "<div class=\"kpi\"><div class=\"v\" data-figure=\"{name}\">{}</div><div class=\"l\">{label}</div></div>",
            figure(first, name)
        );
    }
    let _ = write!(
        h,
        "</div>\n<p class=\"note\">On the test split of {test_rows} customers.</p>\n<p>{}: <code id=\"churn-cutoff-command\">marquee churn cutoff --run {} --cutoff <span data-figure=\"cutoff\">{cutoff}</span>{}{}</code></p>\n",
        if apply { "Apply it" } else { "Check it" },
        esc(&shell_word(run_id)),
        if apply { " --apply" } else { "" },
        if cli_options.is_empty() { String::new() } else { format!(" {}", esc(cli_options)) }
    );
    h.push_str(if !apply {
        "<p class=\"note\">This run is not the deployed churn champion, so the command only shows the cutoff's figures; <code>--apply</code> works on the champion's run.</p>\n"
    } else if cli_options.is_empty() {
        "<p class=\"note\">Run it with the run's <code>--workdir</code> (or <code>MARQUEE_WORKDIR</code>): it rescores the deployed churn scores at that cutoff, without retraining.</p>\n"
    } else {
        "<p class=\"note\">It rescores the deployed churn scores at that cutoff, without retraining.</p>\n"
    });
    h.push_str("</div>\n");
    h.push_str(&json_script("churn-cutoff-rows", &rows));
    let _ = write!(h, "<script>\n{SCRIPT}</script>\n");
}

/// One figure of a row, as the page prints it (the script formats the same way).
fn figure(r: &CutoffRow, name: &str) -> String {
    match name {
        "precision" => pct(r.precision),
        "recall" => pct(r.recall),
        "false_positive_rate" => pct(r.false_positive_rate),
        "accuracy" => pct(r.accuracy),
        _ => (r.tp + r.fp).to_string(),
    }
}

/// `s` as one shell word: quoted only when it holds something a shell would act on.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/+=@,".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cutoff: f64, tp: usize, fp: usize) -> CutoffRow {
        CutoffRow {
            cutoff,
            tp,
            fp,
            tn: 50 - fp,
            fn_: 50 - tp,
            precision: tp as f64 / (tp + fp).max(1) as f64,
            recall: tp as f64 / 50.0,
            false_positive_rate: fp as f64 / 50.0,
            accuracy: (tp + 50 - fp) as f64 / 100.0,
        }
    }

    #[test]
    fn renders_the_starting_row_and_the_command() {
        let rows = [row(0.25, 40, 20), row(7.0 * 0.05, 30, 10), row(0.45, 20, 5)];
        let champion = Command { run_id: "r1", cli_options: "", apply: true };
        let mut h = String::new();
        render(&mut h, &champion, &rows, 1);
        assert!(h.contains("max=\"2\" step=\"1\" value=\"1\""), "{h}");
        assert!(h.contains("data-figure=\"precision\">75.0%"), "{h}");
        assert!(h.contains("data-figure=\"flagged\">40<"), "{h}");
        assert!(h.contains(
            "marquee churn cutoff --run r1 --cutoff <span data-figure=\"cutoff\">0.35</span> --apply</code>"
        ));
        assert!(h.contains("<script type=\"application/json\" id=\"churn-cutoff-rows\">"));

        let mut dry = String::new();
        render(&mut dry, &Command { apply: false, ..champion }, &rows, 0);
        assert!(!dry.contains("</span> --apply") && dry.contains("not the deployed churn champion"));
        let mut none = String::new();
        render(&mut none, &champion, &[], 0);
        assert!(none.is_empty());
        // With the workdir known, the command pastes as it is.
        let mut exact = String::new();
        render(&mut exact, &Command { cli_options: "--workdir '/tmp/my mq'", ..champion }, &rows, 1);
        assert!(exact.contains("</span> --apply --workdir &#39;/tmp/my mq&#39;</code>"), "{exact}");
        assert!(!exact.contains("Run it with the run's"));
    }

    #[test]
    fn quotes_run_ids_a_shell_would_split() {
        assert_eq!(shell_word("20240101T000000Z-abc123"), "20240101T000000Z-abc123");
        assert_eq!(shell_word("my run"), "'my run'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
