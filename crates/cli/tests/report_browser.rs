//! The HTML report in a real browser: headless Chromium (Debian's `chromium` package) driven over
//! the DevTools protocol by `headless_chrome`. The page of a real demo run loads from file:// with
//! no console error and fetches nothing, draws every chart it declares, and its churn cutoff slider
//! shows the cutoff table's figures, and the command applying them, at whatever cutoff it is moved to.
//!
//! The browser comes from MARQUEE_CHROMIUM or PATH (scripts/with-chromium installs the pinned one).
//! Without one the test fails under CI and is skipped elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::browser::tab::Tab;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions};
use serde_json::Value;

const RUN: &str = "browser-demo";
const BROWSERS: [&str; 4] = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The browser to drive: MARQUEE_CHROMIUM (which must exist), else the first of [`BROWSERS`] on PATH.
fn find_browser() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MARQUEE_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "MARQUEE_CHROMIUM={} is not a file", p.display());
        return Some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| BROWSERS.map(|b| dir.join(b))).find(|p| p.is_file())
}

/// Runs the pipeline on small demo data; returns the report `marquee run` wrote and the workdir.
fn demo_report(workdir: &Path) -> PathBuf {
    let out = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["run", "--customers", "700", "--seed", "7", "--run-id", RUN, "--quiet", "--workdir"])
        .arg(workdir)
        .env_remove("MARQUEE_WORKDIR")
        .output()
        .expect("runs marquee");
    assert!(out.status.success(), "marquee run failed:\n{}", String::from_utf8_lossy(&out.stderr));
    workdir.join("store/runs").join(RUN).join("report.html")
}

/// The run's churn cutoff table, read from its evaluation record (not from the page).
fn cutoff_rows(workdir: &Path) -> Vec<Value> {
    let path = workdir.join("store/runs").join(RUN).join("models/churn/evaluation.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let rec: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    rec["challenger"]["details"]["cutoff_table"].as_array().expect("a churn cutoff table").clone()
}

/// Starts the browser. Root (as in CI) cannot use Chromium's sandbox; the page is our own file.
fn launch(path: PathBuf) -> Browser {
    Browser::new(LaunchOptions {
        path: Some(path),
        headless: true,
        sandbox: false,
        window_size: Some((1400, 1000)),
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    })
    .expect("launches headless Chromium")
}

/// Console errors, failed loads and uncaught exceptions the page reports, as text.
fn record_errors(tab: &Tab) -> Arc<Mutex<Vec<String>>> {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&errors);
    tab.add_event_listener(Arc::new(move |event: &Event| {
        if let Some(e) = page_error(event) {
            sink.lock().unwrap().push(e);
        }
    }))
    .expect("listens to page events");
    tab.enable_log().expect("enables Log events");
    tab.enable_runtime().expect("enables Runtime events");
    errors
}

fn page_error(event: &Event) -> Option<String> {
    use headless_chrome::protocol::cdp::Log::LogEntryLevel;
    use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption as Kind;
    match event {
        Event::RuntimeExceptionThrown(e) => {
            let d = &e.params.exception_details;
            let what = d.exception.as_ref().and_then(|x| x.description.clone()).unwrap_or_default();
            Some(format!("uncaught exception: {} {what}", d.text))
        }
        Event::RuntimeConsoleAPICalled(e) if matches!(e.params.Type, Kind::Error | Kind::Assert) => {
            let args: Vec<String> =
                e.params.args.iter().map(|a| a.value.as_ref().map_or_else(String::new, Value::to_string)).collect();
            Some(format!("console.error: {}", args.join(" ")))
        }
        Event::LogEntryAdded(e) if matches!(e.params.entry.level, LogEntryLevel::Error) => {
            Some(format!("log error: {} ({:?})", e.params.entry.text, e.params.entry.url))
        }
        _ => None,
    }
}

/// Evaluates `js` (an expression returning `JSON.stringify(...)`) in the page.
fn eval_json(tab: &Tab, js: &str) -> Value {
    let out = tab.evaluate(js, false).unwrap_or_else(|e| panic!("evaluating {js}: {e}"));
    let text = out.value.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| panic!("{js} gave no string"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{js} gave {text}: {e}"))
}

/// What the slider shows now.
fn slider_state(tab: &Tab) -> Value {
    eval_json(
        tab,
        r#"JSON.stringify((() => {
            const box = document.getElementById("churn-slider");
            const fig = n => box.querySelector('[data-figure="' + n + '"]').textContent;
            const slid = Array.from(document.querySelectorAll("tr.slid")).map(tr => tr.getAttribute("data-cutoff-row"));
            return { value: Number(document.getElementById("churn-cutoff").value), cutoff: fig("cutoff"),
                     precision: fig("precision"), recall: fig("recall"), fpr: fig("false_positive_rate"),
                     accuracy: fig("accuracy"), flagged: fig("flagged"),
                     command: document.getElementById("churn-cutoff-command").textContent, slid };
        })())"#,
    )
}

/// Moves the slider to `index` the way a drag does: set the value, fire `input`.
fn move_slider(tab: &Tab, index: usize) -> Value {
    tab.evaluate(
        &format!(
            r#"(() => {{ const s = document.getElementById("churn-cutoff");
                s.value = "{index}"; s.dispatchEvent(new Event("input", {{ bubbles: true }})); }})()"#
        ),
        false,
    )
    .expect("moves the slider");
    slider_state(tab)
}

/// A shown percentage ("54.3%") against the row's rate, within the one decimal shown.
fn assert_pct(shown: &Value, rate: &Value, what: &str) {
    let shown = shown.as_str().unwrap();
    let v: f64 = shown.trim_end_matches('%').parse().unwrap_or_else(|_| panic!("{what} shows {shown}"));
    let want = rate.as_f64().unwrap() * 100.0;
    assert!((v - want).abs() <= 0.05 + 1e-9, "{what} shows {shown}, the table says {want}");
}

/// The slider shows row `i` of the table: its figures, its command (for `workdir`), its table row
/// outlined.
fn assert_shows(state: &Value, rows: &[Value], i: usize, workdir: &Path) {
    let r = &rows[i];
    let cutoff = format!("{:.2}", r["cutoff"].as_f64().unwrap());
    assert_eq!(state["value"], i, "{state}");
    assert_eq!(state["cutoff"], cutoff.as_str(), "{state}");
    assert_pct(&state["precision"], &r["precision"], "precision");
    assert_pct(&state["recall"], &r["recall"], "recall");
    assert_pct(&state["fpr"], &r["false_positive_rate"], "false positive rate");
    assert_pct(&state["accuracy"], &r["accuracy"], "accuracy");
    let flagged = r["tp"].as_u64().unwrap() + r["fp"].as_u64().unwrap();
    assert_eq!(state["flagged"], flagged.to_string().as_str(), "{state}");
    let dir = workdir.canonicalize().unwrap();
    let command = format!("marquee churn cutoff --run {RUN} --cutoff {cutoff} --apply --workdir {}", dir.display());
    assert_eq!(state["command"], command.as_str());
    assert_eq!(state["slid"], serde_json::json!([i.to_string()]), "{state}");
}

#[test]
fn report_loads_draws_every_chart_and_the_cutoff_slider_moves_the_figures() {
    let Some(browser_path) = find_browser() else {
        assert!(!in_ci(), "no Chromium under CI: set MARQUEE_CHROMIUM or run through scripts/with-chromium");
        eprintln!("skipped: no Chromium (set MARQUEE_CHROMIUM or install Debian's `chromium`)");
        return;
    };
    let workdir = tempfile::Builder::new().prefix("marquee-browser-test").tempdir().expect("tempdir");
    let report = demo_report(workdir.path());
    let rows = cutoff_rows(workdir.path());
    let html = std::fs::read_to_string(&report).expect("marquee run wrote report.html");
    let declared = html.matches("<div class=\"chart\">").count();
    assert!(declared >= 8, "expected at least 8 charts, the page declares {declared}");

    let browser = launch(browser_path);
    let tab = browser.new_tab().expect("opens a tab");
    tab.set_default_timeout(Duration::from_secs(30));
    let errors = record_errors(&tab);
    let url = format!("file://{}", report.canonicalize().unwrap().display());
    tab.navigate_to(&url).and_then(|t| t.wait_until_navigated()).expect("loads the report");

    // Every declared chart holds an SVG the browser laid out with a size.
    let areas = eval_json(
        &tab,
        r#"JSON.stringify(Array.from(document.querySelectorAll("div.chart")).map(d => {
            const s = d.querySelector(":scope > svg"); if (!s) return 0;
            const b = s.getBoundingClientRect(); return b.width * b.height; }))"#,
    );
    let areas = areas.as_array().unwrap();
    assert_eq!(areas.len(), declared, "charts in the DOM vs in the page source");
    assert!(areas.iter().all(|a| a.as_f64().unwrap() > 1000.0), "a chart has no size: {areas:?}");
    // Self-contained: nothing but the page itself was loaded.
    let fetched = eval_json(&tab, r#"JSON.stringify(performance.getEntriesByType("resource").map(e => e.name))"#);
    assert_eq!(fetched, serde_json::json!([]), "the report fetched other files");

    // The slider starts at the deployed cutoff (the marked table row).
    let start = slider_state(&tab);
    let start_i = start["value"].as_u64().unwrap() as usize;
    assert!(html.contains(&format!("<tr data-cutoff-row=\"{start_i}\" class=\"marked\">")), "{start}");
    assert_shows(&start, &rows, start_i, workdir.path());

    // Moved to a cutoff flagging a different number of customers, every figure and the command change.
    let far = (0..rows.len()).max_by_key(|&i| i.abs_diff(start_i)).unwrap();
    let moved = move_slider(&tab, far);
    for key in ["cutoff", "precision", "recall", "flagged", "command"] {
        assert_ne!(moved[key], start[key], "{key} did not change: {moved}");
    }
    for i in 0..rows.len() {
        assert_shows(&move_slider(&tab, i), &rows, i, workdir.path());
    }
    // A key press on the focused slider is a real input event.
    move_slider(&tab, 0);
    tab.find_element("#churn-cutoff").and_then(|e| e.focus().map(|_| ())).expect("focuses the slider");
    tab.press_key("ArrowRight").expect("presses ArrowRight");
    assert_shows(&slider_state(&tab), &rows, 1, workdir.path());

    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "the page reported errors:\n{}", errors.join("\n"));

    // The command the page shows, pasted as it is (the tempdir needs no quoting), applies it.
    let command = slider_state(&tab)["command"].as_str().unwrap().to_string();
    let words: Vec<&str> = command.split_whitespace().collect();
    let out = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(&words[1..])
        .arg("--json")
        .env_remove("MARQUEE_WORKDIR")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runs marquee");
    assert!(out.status.success(), "`{command}` failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let applied: Value = serde_json::from_slice(&out.stdout).expect("--json output");
    assert_eq!(
        (applied["applied"].as_bool(), applied["chosen"]["cutoff"].as_f64()),
        (Some(true), rows[1]["cutoff"].as_f64())
    );
}
