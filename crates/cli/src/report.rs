//! `marquee report [RUN]`: (re)writes a run's HTML evaluation report and prints its path.

use anyhow::Result;
use std::path::{Path, PathBuf};

use marquee_embedded::DirObjectStore;
use marquee_pipeline::steps::Stores;
use marquee_pipeline::store::ObjectStore;

use crate::hint;

/// The run to report on: the given one, or the latest finished run.
pub async fn resolve_run(objects: &dyn ObjectStore, run: Option<String>) -> Result<String> {
    match run {
        Some(r) => Ok(r),
        None => marquee_report::latest_run(objects).await?.ok_or_else(|| {
            hint::not_found(
                format!("no finished run in {}", objects.uri("runs/")),
                "run the pipeline first (`marquee run`), or pass --workdir where it ran",
            )
        }),
    }
}

/// Writes `runs/<run>/report.html`; returns its path on disk.
pub async fn write(stores: Stores<'_>, objects: &DirObjectStore, run_id: &str, workdir: &Path) -> Result<PathBuf> {
    let options = marquee_report::workdir_options(workdir);
    let key =
        marquee_report::write_report(stores, run_id, &options).await.map_err(|e| match e
            .downcast_ref::<marquee_report::RunNotFound>()
        {
            Some(nf) => hint::not_found(
                nf.to_string(),
                "check the run id (`ls WORKDIR/store/runs/`), or omit it to report on the latest run",
            ),
            None => e,
        })?;
    Ok(objects.root().join(key))
}

/// Opens the report in the desktop's browser (xdg-open / open).
pub fn open(path: &std::path::Path) -> Result<()> {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let status = std::process::Command::new(opener).arg(path).status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(hint::failed(
            format!("{opener} {} exited with {s}", path.display()),
            "open the file in a browser yourself",
        )),
        Err(e) => Err(hint::failed(
            format!("cannot run {opener}: {e}"),
            format!("open {} in a browser yourself", path.display()),
        )),
    }
}
