//! `marquee datasets list|fetch`: public datasets downloaded from their published address into a
//! cache folder, every file checked against the sha256 the catalog (`datasets/catalog.toml`) gives.
//!
//! The cache is laid out as `<cache>/<dataset>/<file>`, the layout `marquee eval --data-dir` reads,
//! so a fetched cache works as a data folder; `--data-dir` can point at local copies as before.

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;
use tempfile::NamedTempFile;

use crate::hint;

/// The catalog built into the binary; `--catalog FILE` reads another.
const BUILTIN_CATALOG: &str = include_str!("../../../datasets/catalog.toml");

#[derive(Args, Debug)]
pub struct DatasetsArgs {
    #[command(subcommand)]
    pub cmd: DatasetsCmd,
    /// Read the catalog from this TOML file instead of the one built into the binary
    /// (datasets/catalog.toml).
    #[arg(long, global = true)]
    pub catalog: Option<PathBuf>,
    /// Cache folder (default: $XDG_CACHE_HOME/marquee/datasets, else ~/.cache/marquee/datasets).
    #[arg(long, global = true, env = "MARQUEE_CACHE_DIR")]
    pub cache: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum DatasetsCmd {
    /// List the catalog's datasets: description, license, whether the cache holds them verified
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Download a dataset into the cache, checking each file's sha256
    ///
    /// Files already in the cache with the right digest are not downloaded again. Afterwards
    /// `marquee eval --data-dir CACHE` reads them.
    ///
    /// Examples:
    ///   marquee datasets fetch open_bandit_dataset
    ///   marquee datasets fetch cdnow_summary --cache ./data
    #[command(verbatim_doc_comment)]
    Fetch {
        /// Dataset name, as `marquee datasets list` shows it.
        name: String,
        /// Download every file again, even those already verified in the cache.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: DatasetsArgs, quiet: bool) -> Result<()> {
    let catalog = match &args.catalog {
        Some(path) => Catalog::from_file(path)?,
        None => Catalog::builtin()?,
    };
    let cache = match args.cache {
        Some(dir) => dir,
        None => default_cache_dir()?,
    };
    match args.cmd {
        DatasetsCmd::List { json } => list(&catalog, &cache, json),
        DatasetsCmd::Fetch { name, force } => {
            let dataset = catalog.get(&name)?;
            let summary = fetch(dataset, &cache, &Fetcher::new(), FetchOptions { force, quiet })?;
            if !quiet {
                println!(
                    "{name}: {} file(s) verified in {} ({} downloaded, {} already there)",
                    dataset.files.len(),
                    summary.dir.display(),
                    summary.fetched,
                    summary.skipped
                );
                println!("hint: marquee eval --data-dir {} reads the cache as a data folder", cache.display());
            }
            Ok(())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    #[serde(rename = "dataset", default)]
    pub datasets: Vec<Dataset>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Also the dataset's folder in the cache (and under a `--data-dir`).
    pub name: String,
    pub description: String,
    pub license: String,
    pub homepage: String,
    pub citation: Option<String>,
    #[serde(rename = "file")]
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub url: String,
    /// Digest of what `url` serves.
    pub sha256: String,
    pub size: Option<u64>,
    /// A file inside the archive at `url` to extract instead of keeping the archive.
    pub member: Option<String>,
    /// Digest of the extracted `member`.
    pub member_sha256: Option<String>,
    pub save_as: String,
}

impl FileEntry {
    /// The digest of the file as it lies in the cache.
    fn saved_sha256(&self) -> &str {
        self.member_sha256.as_deref().unwrap_or(&self.sha256)
    }
}

impl Catalog {
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN_CATALOG).context("the built-in dataset catalog")
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).with_context(|| format!("reading catalog {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("catalog {}", path.display()))
    }

    /// Parses and checks a catalog: a bad entry is refused here, before anything is downloaded.
    pub fn parse(text: &str) -> Result<Self> {
        let catalog: Catalog = toml::from_str(text)?;
        let mut names = HashSet::new();
        for d in &catalog.datasets {
            ensure!(is_plain_name(&d.name), "dataset name `{}`: use letters, digits, `_`, `-` and `.`", d.name);
            ensure!(names.insert(d.name.as_str()), "dataset `{}` is listed twice", d.name);
            ensure!(!d.files.is_empty(), "dataset `{}` lists no file", d.name);
            let mut targets = HashSet::new();
            for f in &d.files {
                let at = format!("dataset `{}`, file `{}`", d.name, f.save_as);
                ensure!(f.url.starts_with("https://") || f.url.starts_with("http://"), "{at}: url must be http(s)");
                ensure!(is_sha256(&f.sha256), "{at}: sha256 must be 64 lowercase hex digits");
                match (&f.member, &f.member_sha256) {
                    (Some(_), Some(s)) => ensure!(is_sha256(s), "{at}: member_sha256 must be 64 lowercase hex digits"),
                    (None, None) => {}
                    _ => bail!("{at}: member and member_sha256 go together"),
                }
                if f.member.is_some() {
                    ArchiveKind::of(&f.url)?;
                }
                // A catalog read with --catalog must not write outside the dataset's folder.
                let rel = Path::new(&f.save_as);
                ensure!(
                    !f.save_as.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_))),
                    "{at}: save_as must be a relative path without `..`"
                );
                ensure!(targets.insert(rel), "{at}: two files save to the same path");
            }
        }
        Ok(catalog)
    }

    pub fn get(&self, name: &str) -> Result<&Dataset> {
        self.datasets.iter().find(|d| d.name == name).ok_or_else(|| {
            let known: Vec<_> = self.datasets.iter().map(|d| d.name.as_str()).collect();
            hint::not_found(format!("no dataset `{name}` in the catalog"), format!("known: {}", known.join(", ")))
        })
    }
}

fn is_plain_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// `$XDG_CACHE_HOME/marquee/datasets`, else `~/.cache/...` (`%LOCALAPPDATA%` on Windows).
fn default_cache_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from));
    match base {
        Some(base) => Ok(base.join("marquee").join("datasets")),
        None => Err(hint::failed("no cache folder: neither XDG_CACHE_HOME nor HOME is set", "pass --cache DIR")),
    }
}

/// How much of a dataset the cache holds with the catalog's digests.
#[derive(Debug, PartialEq, Eq)]
pub struct CacheState {
    pub verified: usize,
    pub total: usize,
}

impl CacheState {
    fn label(&self) -> &'static str {
        match self.verified {
            0 => "not fetched",
            n if n == self.total => "fetched, verified",
            _ => "partial",
        }
    }
}

pub fn cache_state(dataset: &Dataset, cache: &Path) -> Result<CacheState> {
    let dir = cache.join(&dataset.name);
    let mut verified = 0;
    for f in &dataset.files {
        if is_verified(&dir.join(&f.save_as), f.saved_sha256())? {
            verified += 1;
        }
    }
    Ok(CacheState { verified, total: dataset.files.len() })
}

/// Whether `path` exists with digest `sha256` (a missing file is simply not verified).
fn is_verified(path: &Path, sha256: &str) -> Result<bool> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let mut sink = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut sink).with_context(|| format!("reading {}", path.display()))?;
    Ok(sink.hex_digest() == sha256)
}

fn list(catalog: &Catalog, cache: &Path, json: bool) -> Result<()> {
    let mut rows = Vec::new();
    for d in &catalog.datasets {
        rows.push((d, cache_state(d, cache)?, cache.join(&d.name)));
    }
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|(d, state, path)| {
                serde_json::json!({
                    "name": d.name,
                    "description": d.description,
                    "license": d.license,
                    "homepage": d.homepage,
                    "citation": d.citation,
                    "files": state.total,
                    "verified_files": state.verified,
                    "fetched": state.verified == state.total,
                    "path": path,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("cache: {}", cache.display());
    for (d, state, path) in rows {
        println!("\n{}  [{}, {}/{} files]", d.name, state.label(), state.verified, state.total);
        println!("  {}", d.description);
        println!("  license:  {}", d.license);
        println!("  homepage: {}", d.homepage);
        println!("  path:     {}", path.display());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Default)]
pub struct FetchOptions {
    pub force: bool,
    pub quiet: bool,
}

#[derive(Debug)]
pub struct FetchSummary {
    pub dir: PathBuf,
    pub fetched: usize,
    pub skipped: usize,
}

/// Blocking HTTP(S) client for the downloads.
pub struct Fetcher {
    agent: ureq::Agent,
}

impl Fetcher {
    pub fn new() -> Self {
        Self::build(true)
    }

    /// `proxy_from_env`: honour ALL_PROXY / HTTPS_PROXY / HTTP_PROXY and NO_PROXY (tests that
    /// serve on 127.0.0.1 turn it off so a proxy in the environment is not asked).
    fn build(proxy_from_env: bool) -> Self {
        let proxy = if proxy_from_env { ureq::Proxy::try_from_env() } else { None };
        let tls = ureq::tls::TlsConfig::builder().root_certs(root_certs()).build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(proxy)
            .user_agent(concat!("marquee/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A stalled transfer fails; a slow but moving one of a large file does not.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build();
        Self { agent: config.into() }
    }

    /// Streams `url` into `out` while hashing it; refuses a digest other than `sha256`.
    fn download(&self, url: &str, sha256: &str, size: Option<u64>, out: &mut File, quiet: bool) -> Result<()> {
        let response = self.agent.get(url).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => anyhow::anyhow!("GET {url}: HTTP status {code}"),
            other => anyhow::Error::new(other).context(format!("GET {url}")),
        })?;
        let body = response.into_body();
        let bar = progress_bar(body.content_length().or(size), url, quiet);
        let mut sink = HashingWriter::new(&mut *out);
        io::copy(&mut bar.wrap_read(body.into_reader()), &mut sink).with_context(|| format!("GET {url}: reading"))?;
        bar.finish_and_clear();
        check_digest(url, sha256, &sink.hex_digest())
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

/// The system's root certificates when it has some (so a company proxy's CA is trusted as curl
/// and pip trust it), else the Mozilla roots built into ureq.
fn root_certs() -> ureq::tls::RootCerts {
    let native = rustls_native_certs::load_native_certs().certs;
    if native.is_empty() {
        return ureq::tls::RootCerts::WebPki;
    }
    native.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect::<Vec<_>>().into()
}

fn progress_bar(len: Option<u64>, url: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let file = url.rsplit('/').next().unwrap_or(url).to_string();
    match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .expect("static template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner()
            .with_style(ProgressStyle::with_template("{msg} {spinner} {bytes}").expect("static template")),
    }
    .with_message(file)
}

fn check_digest(what: &str, expected: &str, actual: &str) -> Result<()> {
    ensure!(
        actual == expected,
        "sha256 mismatch for {what}: expected {expected}, got {actual} (the file was not kept; if the \
         publisher changed it, the catalog entry needs checking)"
    );
    Ok(())
}

/// Downloads what of `dataset` the cache lacks into `<cache>/<name>/`, each file through a
/// temporary file in its destination folder that is renamed into place only once verified, so
/// an interrupted or refused download never leaves a file that looks fetched.
pub fn fetch(dataset: &Dataset, cache: &Path, fetcher: &Fetcher, opts: FetchOptions) -> Result<FetchSummary> {
    let dir = cache.join(&dataset.name);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // Several files may come out of one archive: download it once per fetch.
    let mut archives: HashMap<&str, NamedTempFile> = HashMap::new();
    let (mut fetched, mut skipped) = (0, 0);
    for f in &dataset.files {
        let dest = dir.join(&f.save_as);
        if !opts.force && is_verified(&dest, f.saved_sha256())? {
            skipped += 1;
            if !opts.quiet {
                eprintln!("✓ {} already in the cache, verified", f.save_as);
            }
            continue;
        }
        let parent = dest.parent().expect("save_as is a relative file path");
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let mut tmp = temp_in(parent)?;
        match &f.member {
            None => fetcher.download(&f.url, &f.sha256, f.size, tmp.as_file_mut(), opts.quiet)?,
            Some(member) => {
                let archive = match archives.entry(f.url.as_str()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        let mut a = temp_in(&dir)?;
                        fetcher.download(&f.url, &f.sha256, f.size, a.as_file_mut(), opts.quiet)?;
                        e.insert(a)
                    }
                };
                let digest =
                    extract(archive.as_file_mut(), ArchiveKind::of(&f.url)?, member, &f.url, tmp.as_file_mut())?;
                check_digest(&format!("{member} in {}", f.url), f.saved_sha256(), &digest)?;
            }
        }
        tmp.as_file().sync_all().with_context(|| format!("writing {}", dest.display()))?;
        tmp.persist(&dest).with_context(|| format!("moving the download to {}", dest.display()))?;
        fetched += 1;
        if !opts.quiet {
            eprintln!("✓ {} downloaded, sha256 verified", f.save_as);
        }
    }
    Ok(FetchSummary { dir, fetched, skipped })
}

/// A hidden temporary file in `dir` (same file system as the destination: the rename is atomic);
/// removed when dropped unless persisted.
fn temp_in(dir: &Path) -> Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(".marquee-download-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveKind {
    Zip,
    TarGz,
}

impl ArchiveKind {
    /// From the URL's file name (a wheel is a zip).
    fn of(url: &str) -> Result<Self> {
        let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
        if path.ends_with(".zip") || path.ends_with(".whl") {
            Ok(Self::Zip)
        } else if path.ends_with(".tar.gz") || path.ends_with(".tgz") {
            Ok(Self::TarGz)
        } else {
            bail!("{url}: a member can only be extracted from a .zip, .whl, .tar.gz or .tgz archive")
        }
    }
}

/// Copies `member` of the archive in `archive` into `out`; returns the member's sha256.
fn extract(archive: &mut File, kind: ArchiveKind, member: &str, url: &str, out: &mut File) -> Result<String> {
    archive.rewind()?;
    let missing = || anyhow::anyhow!("no member `{member}` in the archive at {url}");
    let mut sink = HashingWriter::new(out);
    match kind {
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(archive).with_context(|| format!("reading the zip archive at {url}"))?;
            let mut entry = match zip.by_name(member) {
                Ok(entry) => entry,
                Err(zip::result::ZipError::FileNotFound) => return Err(missing()),
                Err(e) => return Err(e).with_context(|| format!("reading `{member}` in {url}")),
            };
            io::copy(&mut entry, &mut sink).with_context(|| format!("extracting `{member}` from {url}"))?;
        }
        ArchiveKind::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
            let entries = tar.entries().with_context(|| format!("reading the tar.gz archive at {url}"))?;
            let mut found = false;
            for entry in entries {
                let mut entry = entry.with_context(|| format!("reading the tar.gz archive at {url}"))?;
                if entry.path()?.as_ref() == Path::new(member) {
                    io::copy(&mut entry, &mut sink).with_context(|| format!("extracting `{member}` from {url}"))?;
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(missing());
            }
        }
    }
    Ok(sink.hex_digest())
}

/// A writer that hashes what passes through it, so a file is checked while it is written.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new() }
    }

    fn hex_digest(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
