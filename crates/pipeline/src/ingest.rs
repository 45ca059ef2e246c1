//! Data understanding: parse each input table as its spec declares, profile it, and quarantine
//! every row that fails with file, line, column and reason. Good rows are all kept.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::rc::Rc;

use crate::frame::{is_missing, parse_timestamp, Frame};
use crate::spec::{ColumnKind, QualitySection, TableSpec};

/// A rejected input row and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedRow {
    pub table: String,
    pub file: String,
    /// 1-based line of the row's start in the file (the header is line 1).
    pub line: u64,
    pub column: String,
    pub reason: String,
    /// The row as read (lossy UTF-8), so nothing is lost.
    pub raw: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    /// None for columns in the file that the spec does not declare.
    pub kind: Option<ColumnKind>,
    pub missing: usize,
    pub distinct: usize,
    /// Distinct counting stops at this many values (then `distinct` is a lower bound).
    pub distinct_capped: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// Most frequent values (categorical and id columns), for class balance of labels.
    pub top: Vec<(String, usize)>,
    /// The distribution of numeric and categorical columns, for drift between runs
    /// ([`crate::drift`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<crate::drift::Distribution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableProfile {
    pub table: String,
    pub file: String,
    pub rows_read: usize,
    pub rows_ok: usize,
    pub columns: Vec<ColumnProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableQuality {
    pub table: String,
    pub file: String,
    pub rows_read: usize,
    pub rows_ok: usize,
    pub rows_quarantined: usize,
    pub bad_share: f64,
    /// Quarantine counts by reason class (e.g. "not a number").
    pub reasons: BTreeMap<String, usize>,
    /// Gate failures; empty when the table passes.
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub passed: bool,
    pub tables: Vec<TableQuality>,
}

impl QualityReport {
    /// One message naming every failing table and its first problem.
    pub fn failure_message(&self) -> Option<String> {
        let problems: Vec<String> = self.tables.iter().flat_map(|t| t.problems.iter().cloned()).collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

pub struct IngestedTable {
    pub frame: Frame,
    pub profile: TableProfile,
    pub quality: TableQuality,
    pub quarantined: Vec<QuarantinedRow>,
}

const DISTINCT_CAP: usize = 100_000;
const TOP_VALUES: usize = 10;

/// Where ingest puts what it reads, row by row: the validated rows (declared columns, in spec
/// order) and the quarantined ones. [`ingest_table`] collects both in memory; `steps::ingest`
/// streams them to temp files, so no table is ever held whole.
pub trait IngestSink {
    fn row(&mut self, values: Vec<String>) -> std::io::Result<()>;
    fn quarantine(&mut self, row: QuarantinedRow) -> std::io::Result<()>;
}

/// The in-memory sink of [`ingest_table`].
struct MemorySink {
    frame: Frame,
    quarantined: Vec<QuarantinedRow>,
}

impl IngestSink for MemorySink {
    fn row(&mut self, values: Vec<String>) -> std::io::Result<()> {
        self.frame.push_row(values);
        Ok(())
    }
    fn quarantine(&mut self, row: QuarantinedRow) -> std::io::Result<()> {
        self.quarantined.push(row);
        Ok(())
    }
}

/// The largest input ingest accepts, and where that limit comes from (for messages).
///
/// Ingest itself streams, but prepare, train and deploy hold the validated table in memory, so a
/// file far larger than the functions' memory must stop at ingest with a clear message rather than
/// as an out-of-memory kill three steps later.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBudget {
    pub bytes: u64,
    pub source: String,
}

/// Environment variable that sets (or lowers) the input budget for a deployment.
pub const BUDGET_ENV: &str = "MARQUEE_MAX_INPUT_BYTES";
/// Without any other setting, a Lambda function accepts inputs up to its memory size divided by
/// this (a validated table in memory takes several times its CSV size).
pub const LAMBDA_MEMORY_SHARE: u64 = 4;

impl InputBudget {
    /// The smallest of: the spec's `[ingest] max_input_bytes`, `MARQUEE_MAX_INPUT_BYTES`, and
    /// (only when neither is set) the memory of the function running ingest, `function_memory_mb`
    /// (the Lambda entrypoints pass their configured memory), / [`LAMBDA_MEMORY_SHARE`].
    /// None means unlimited (embedded runs without a setting).
    pub fn resolve(spec_limit: Option<u64>, function_memory_mb: Option<u64>) -> Option<InputBudget> {
        let env = std::env::var(BUDGET_ENV).ok().and_then(|v| v.trim().parse::<u64>().ok());
        Self::from_settings(spec_limit, env, function_memory_mb)
    }

    pub fn from_settings(
        spec_limit: Option<u64>,
        env: Option<u64>,
        lambda_memory_mb: Option<u64>,
    ) -> Option<InputBudget> {
        let mut candidates = Vec::new();
        if let Some(b) = spec_limit {
            candidates.push(InputBudget { bytes: b, source: "[ingest] max_input_bytes of the spec".into() });
        }
        if let Some(b) = env {
            candidates.push(InputBudget { bytes: b, source: BUDGET_ENV.to_string() });
        }
        if candidates.is_empty() {
            if let Some(mb) = lambda_memory_mb {
                candidates.push(InputBudget {
                    bytes: mb * 1024 * 1024 / LAMBDA_MEMORY_SHARE,
                    source: format!("1/{LAMBDA_MEMORY_SHARE} of the function's {mb} MB memory; set {BUDGET_ENV} or [ingest] max_input_bytes"),
                });
            }
        }
        candidates.into_iter().min_by_key(|b| b.bytes)
    }

    /// The problem of a file of `size` bytes above the budget (checked before reading it).
    pub fn too_large(&self, file: &str, size: u64) -> String {
        format!(
            "{file}: input is {size} bytes ({}), above the ingest memory budget of {} bytes ({}, from {}); \
             it was not read. Split the file or raise the budget",
            human_bytes(size),
            self.bytes,
            human_bytes(self.bytes),
            self.source
        )
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Rows whose `column` value is not in `known` are quarantined as "`column` `v` not found in
/// `in_file`" (ratings or viewing rows naming an unknown title).
pub struct References<'a> {
    pub column: &'a str,
    pub known: &'a HashSet<String>,
    pub in_file: &'a str,
}

/// Options of [`ingest_stream`]; the default is what [`ingest_table`] does.
#[derive(Default)]
pub struct StreamOptions<'a> {
    /// Stop reading with a problem once this many (decompressed) bytes have been read.
    pub budget: Option<&'a InputBudget>,
    pub references: Option<References<'a>>,
    /// Collect the values of this declared column over the good rows (e.g. the title ids).
    pub collect: Option<&'a str>,
}

/// What [`ingest_stream`] returns besides what it gave the sink.
pub struct StreamedTable {
    pub profile: TableProfile,
    pub quality: TableQuality,
    /// The first quarantined row (for the gate's message).
    pub first_quarantined: Option<QuarantinedRow>,
    /// sha256 of the bytes as stored (compressed, for a gzip file). Covers the whole file only
    /// when the table has no problem.
    pub sha256: String,
    /// Bytes read as stored, and after decompression.
    pub bytes_read: u64,
    pub bytes_decoded: u64,
    /// The values of `StreamOptions::collect`.
    pub collected: HashSet<String>,
    /// Each part read, in order: its name in messages, sha256 and bytes as stored (one entry for
    /// a table in one file).
    pub parts: Vec<PartDigest>,
}

/// One part of a table as ingest read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartDigest {
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// Parse one table. `file` is how the file is named in messages; `labels` are columns that must
/// hold at least two classes; `now` (Unix seconds) bounds future timestamps.
pub fn ingest_table(
    table: &str,
    spec: &TableSpec,
    file: &str,
    bytes: &[u8],
    labels: &[String],
    now: i64,
) -> IngestedTable {
    let mut sink =
        MemorySink { frame: Frame::new(spec.columns().into_iter().map(|(c, _)| c).collect()), quarantined: Vec::new() };
    let t = ingest_stream(table, spec, file, bytes, labels, now, &StreamOptions::default(), &mut sink)
        .expect("the in-memory sink never fails");
    IngestedTable { frame: sink.frame, profile: t.profile, quality: t.quality, quarantined: sink.quarantined }
}

/// Reader adapter that hashes and counts what passes through, and fails once `limit` is passed.
struct Tap<R> {
    inner: R,
    hasher: Option<Rc<RefCell<Sha256>>>,
    count: Rc<Cell<u64>>,
    limit: Option<u64>,
}

/// The io error a [`Tap`] returns past its limit.
#[derive(Debug)]
struct OverBudget;
impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("input larger than the ingest memory budget")
    }
}
impl std::error::Error for OverBudget {}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &self.hasher {
            h.borrow_mut().update(&buf[..n]);
        }
        self.count.set(self.count.get() + n as u64);
        if self.limit.is_some_and(|l| self.count.get() > l) {
            return Err(std::io::Error::other(OverBudget));
        }
        Ok(n)
    }
}

/// Reads up to `n` bytes (fewer only at end of input) and gives back a reader over all of it.
fn peek<R: Read>(mut r: R, n: usize) -> std::io::Result<(Vec<u8>, R)> {
    let mut buf = vec![0; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok((buf, r))
}

/// [`ingest_table`] over a stream: reads `input` once, row by row (a gzip file is inflated on the
/// fly), hands every validated row and every quarantined row to `sink` as it goes, and keeps only
/// bounded state: per-column profile counters (distinct values capped), 128-bit fingerprints of the
/// ids seen (duplicate check), and `collect`ed values. Memory does not grow with the file size
/// beyond the id fingerprints (~40 bytes per row of a table with an id).
///
/// Errors only when the sink fails; input problems are in `quality.problems`.
#[allow(clippy::too_many_arguments)]
pub fn ingest_stream<S: IngestSink + ?Sized>(
    table: &str,
    spec: &TableSpec,
    file: &str,
    input: impl Read,
    labels: &[String],
    now: i64,
    opts: &StreamOptions<'_>,
    sink: &mut S,
) -> std::io::Result<StreamedTable> {
    let mut stream = TableStream::new(table, spec, labels, now);
    stream.part(file, input, opts, sink)?;
    Ok(stream.finish(file))
}

/// One table read from one file or from a folder of part files, part after part: the profile,
/// the quality counts, the duplicate-id fingerprints and generated ids run across the parts, so
/// a table in parts ingests to exactly what the same rows in one file would (rows, profile,
/// quarantine), each quarantined row naming its part and the line in that part.
///
/// Owned and `Send`: it can move to a blocking thread between parts.
pub struct TableStream {
    table: String,
    spec: TableSpec,
    labels: Vec<String>,
    now: i64,
    declared: Vec<(String, ColumnKind)>,
    problems: Vec<String>,
    rows_read: usize,
    rows_ok: usize,
    rows_quarantined: usize,
    reasons: BTreeMap<String, usize>,
    first_quarantined: Option<QuarantinedRow>,
    collected: HashSet<String>,
    /// The header of the first part that has one (the profile's column order).
    header: Vec<String>,
    /// Fingerprints of the ids seen, with the part (index in `parts`) and line each was first
    /// seen on. Generated ids are unique by construction.
    first_seen: HashMap<u128, (usize, u64)>,
    /// The parts read so far: how each is named in messages, and its sha256.
    parts: Vec<(String, String)>,
    /// Bytes read (as stored) of each part, in the order of `parts`.
    part_bytes: Vec<u64>,
    bytes_read: u64,
    bytes_decoded: u64,
    profile: ProfileBuilder,
}

impl TableStream {
    /// `labels` are columns that must hold at least two classes; `now` (Unix seconds) bounds
    /// future timestamps.
    pub fn new(table: &str, spec: &TableSpec, labels: &[String], now: i64) -> Self {
        let declared = spec.columns();
        Self {
            table: table.into(),
            spec: spec.clone(),
            labels: labels.to_vec(),
            now,
            profile: ProfileBuilder::new(&declared),
            declared,
            problems: Vec::new(),
            rows_read: 0,
            rows_ok: 0,
            rows_quarantined: 0,
            reasons: BTreeMap::new(),
            first_quarantined: None,
            collected: HashSet::new(),
            header: Vec::new(),
            first_seen: HashMap::new(),
            parts: Vec::new(),
            part_bytes: Vec::new(),
            bytes_read: 0,
            bytes_decoded: 0,
        }
    }

    pub fn spec(&self) -> &TableSpec {
        &self.spec
    }

    /// Decompressed bytes read so far over all parts (what the input budget counts).
    pub fn bytes_decoded(&self) -> u64 {
        self.bytes_decoded
    }

    /// Reads one part (`file` names it in messages). Each part has its own header row; a part
    /// with a structural problem (missing column, unreadable) is a problem of the table and its
    /// rows are not read. The input budget counts all parts together.
    pub fn part<S: IngestSink + ?Sized>(
        &mut self,
        file: &str,
        input: impl Read,
        opts: &StreamOptions<'_>,
        sink: &mut S,
    ) -> std::io::Result<()> {
        let part_index = self.parts.len();
        let spec = &self.spec;
        let table = self.table.as_str();
        let declared = &self.declared;
        let mut problems = Vec::new();
        let hasher = Rc::new(RefCell::new(Sha256::new()));
        let raw_count = Rc::new(Cell::new(0u64));
        let decoded_count = Rc::new(Cell::new(0u64));
        let raw = Tap { inner: input, hasher: Some(hasher.clone()), count: raw_count.clone(), limit: None };
        let limit = opts.budget.map(|b| b.bytes.saturating_sub(self.bytes_decoded));

        // A gzip-compressed export (e.g. `reviews.csv.gz`) is read as its decompressed CSV.
        let mut gzip = false;
        let mut header: Vec<String> = Vec::new();
        let mut rdr = None;
        // What to add to the csv reader's record line to get the file line: with CRLF line ends the
        // reader ends a record at `\r` and counts its `\n` as part of the next record, one line early.
        let mut line_shift = 0;
        match peek(raw, 2) {
            Err(e) => problems.push(format!("{file}: reading failed: {e}")),
            Ok((magic, raw)) => {
                gzip = magic == [0x1f, 0x8b];
                let joined = std::io::Cursor::new(magic).chain(raw);
                let decoded: Box<dyn Read + '_> = if gzip {
                    Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::with_capacity(256 * 1024, joined)))
                } else {
                    Box::new(joined)
                };
                let limited = Tap { inner: decoded, hasher: None, count: decoded_count.clone(), limit };
                match peek(limited, 3) {
                    Err(e) => problems.push(read_problem(file, 1, gzip, opts.budget, &e)),
                    Ok((bom, rest)) => {
                        let start = if bom == b"\xEF\xBB\xBF" { Vec::new() } else { bom };
                        let reader = std::io::Cursor::new(start).chain(rest);
                        let mut r = csv::ReaderBuilder::new()
                            .flexible(true)
                            .has_headers(false)
                            .buffer_capacity(256 * 1024)
                            .from_reader(reader);
                        let mut first = csv::ByteRecord::new();
                        match r.read_byte_record(&mut first) {
                            Ok(false) => problems.push(format!("{file}:1: the file is empty (expected a header row)")),
                            Err(e) => match e.kind() {
                                csv::ErrorKind::Io(io) => problems.push(read_problem(file, 1, gzip, opts.budget, io)),
                                _ => problems.push(format!("{file}:1: unreadable header: {e}")),
                            },
                            Ok(true) => {
                                header = first.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect();
                                // The first record starts on the line after the header's last one.
                                let header_lines = 1 + first.iter().flatten().filter(|&&b| b == b'\n').count() as u64;
                                line_shift = (header_lines + 1).saturating_sub(r.position().line());
                            }
                        }
                        rdr = Some(r);
                    }
                }
            }
        }
        // A generated id is appended to the header here and to every record below.
        let generated_id = spec.id.as_ref().filter(|_| spec.generate_id && !header.is_empty());
        if let Some(id) = generated_id {
            if header.contains(id) {
                problems.push(format!(
                    "{file}:1: column `{id}` is in the file, but the spec generates it (generate_id = true)"
                ));
            } else {
                header.push(id.clone());
            }
        }

        let position: HashMap<&str, usize> = header.iter().enumerate().map(|(i, h)| (h.as_str(), i)).collect();
        if !header.is_empty() {
            let mut seen = HashSet::new();
            for h in &header {
                if !seen.insert(h) {
                    problems.push(format!("{file}:1: column `{h}` appears twice in the header"));
                }
            }
            for (c, _) in declared {
                if !position.contains_key(c.as_str()) {
                    problems.push(format!(
                        "{file}:1: column `{c}`: required column missing from the header (found: {})",
                        header.join(", ")
                    ));
                }
            }
        }

        let structural_ok = problems.is_empty() && !header.is_empty();
        let optional: HashSet<&str> = spec.optional.iter().map(String::as_str).collect();
        let sep = spec.list_separator.as_str();
        let future_limit = spec.max_future_days.map(|d| self.now + (d * 86_400.0) as i64);
        let check_ids = spec.id.is_some() && !spec.generate_id;
        let declared_index = |name: &str| declared.iter().position(|(c, _)| c == name);
        let reference = opts.references.as_ref().and_then(|r| declared_index(r.column).map(|i| (i, r)));
        let collect_at = opts.collect.and_then(declared_index);
        let parts = &self.parts;
        let first_seen = &mut self.first_seen;
        let profile = &mut self.profile;
        let collected = &mut self.collected;
        let rows_read = &mut self.rows_read;
        let rows_ok = &mut self.rows_ok;
        let rows_quarantined = &mut self.rows_quarantined;
        let reasons = &mut self.reasons;
        let first_quarantined = &mut self.first_quarantined;

        let mut push_quarantine = |row: QuarantinedRow, class: String, sink: &mut S| -> std::io::Result<()> {
            *rows_quarantined += 1;
            *reasons.entry(class).or_insert(0) += 1;
            if first_quarantined.is_none() {
                *first_quarantined = Some(row.clone());
            }
            sink.quarantine(row)
        };

        if let (true, Some(rdr)) = (structural_ok, rdr.as_mut()) {
            let cols: Vec<(usize, &str, ColumnKind)> =
                declared.iter().map(|(c, k)| (position[c.as_str()], c.as_str(), *k)).collect();
            let mut rec = csv::ByteRecord::new();
            loop {
                match rdr.read_byte_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(e) => {
                        let line = e.position().map_or(0, |p| p.line() + line_shift);
                        if let csv::ErrorKind::Io(io) = e.kind() {
                            // The stream itself failed (broken gzip, over budget, network): stop here.
                            problems.push(read_problem(file, line, gzip, opts.budget, io));
                            break;
                        }
                        *rows_read += 1;
                        let reason = format!("unreadable row: {e}");
                        let row = QuarantinedRow {
                            table: table.into(),
                            file: file.into(),
                            line,
                            column: String::new(),
                            reason: reason.clone(),
                            raw: String::new(),
                        };
                        push_quarantine(row, reason_class(&reason), sink)?;
                        continue;
                    }
                }
                *rows_read += 1;
                if generated_id.is_some() {
                    // Numbered over the whole table: parts continue where the previous one ended.
                    rec.push_field((*rows_read - 1).to_string().as_bytes());
                }
                let line = rec.position().map_or(0, |p| p.line() + line_shift);
                let reject = |column: &str, reason: String| QuarantinedRow {
                    table: table.into(),
                    file: file.into(),
                    line,
                    column: column.into(),
                    raw: raw_row(&rec),
                    reason,
                };
                if rec.len() != header.len() {
                    let row = reject("", format!("expected {} fields, found {}", header.len(), rec.len()));
                    let class = reason_class(&row.reason);
                    push_quarantine(row, class, sink)?;
                    continue;
                }
                let values = match check_row(&rec, &cols, &optional, spec, sep, future_limit) {
                    Err((column, reason)) => {
                        let row = reject(column, reason);
                        let class = reason_class(&row.reason);
                        push_quarantine(row, class, sink)?;
                        continue;
                    }
                    Ok(values) => values,
                };
                if check_ids {
                    let id = &values[0];
                    match first_seen.entry(fingerprint(id)) {
                        std::collections::hash_map::Entry::Occupied(first) => {
                            let (part, first_line) = *first.get();
                            let where_ = if part == part_index {
                                format!("line {first_line}")
                            } else {
                                format!("{} line {first_line}", parts[part].0)
                            };
                            let id_col = spec.id.as_deref().unwrap_or_default();
                            let row = reject(id_col, format!("duplicate id `{id}` (first seen on {where_})"));
                            let class = reason_class(&row.reason);
                            push_quarantine(row, class, sink)?;
                            continue;
                        }
                        std::collections::hash_map::Entry::Vacant(slot) => {
                            slot.insert((part_index, line));
                        }
                    }
                }
                if let Some((i, r)) = &reference {
                    if !r.known.contains(&values[*i]) {
                        let row = reject(r.column, format!("{} `{}` not found in {}", r.column, values[*i], r.in_file));
                        push_quarantine(row, format!("{} not found in {}", r.column, r.in_file), sink)?;
                        continue;
                    }
                }
                if let Some(i) = collect_at {
                    collected.insert(values[i].clone());
                }
                profile.observe(&values);
                *rows_ok += 1;
                sink.row(values)?;
            }
        }
        drop(rdr);
        if self.header.is_empty() && structural_ok {
            self.header = header;
        }
        self.problems.extend(problems);
        self.parts.push((file.to_string(), hex::encode(hasher.borrow().clone().finalize())));
        self.part_bytes.push(raw_count.get());
        self.bytes_read += raw_count.get();
        self.bytes_decoded += decoded_count.get();
        Ok(())
    }

    /// The table's profile and quality (`file` names the table: its file or its folder), with the
    /// label check over all parts.
    pub fn finish(self, file: &str) -> StreamedTable {
        let Self { table, spec, labels, rows_read, rows_ok, rows_quarantined, mut problems, .. } = self;
        let profile = self.profile.finish(&table, file, &spec, &self.header, rows_read, rows_ok);
        let bad_share = if rows_read == 0 { 0.0 } else { rows_quarantined as f64 / rows_read as f64 };
        if !self.header.is_empty() {
            for label in &labels {
                if let Some(p) = profile.columns.iter().find(|c| &c.name == label) {
                    // A numeric label (0/1 engagement) has no value counts: its range tells one class from two.
                    let (classes, seen) = match (p.kind, p.min, p.max) {
                        (Some(ColumnKind::Numeric), Some(lo), Some(hi)) => (
                            if lo < hi { 2 } else { 1 },
                            if lo < hi { format!("{lo} to {hi}") } else { format!("{lo}") },
                        ),
                        _ => (
                            p.top.iter().filter(|(v, _)| !is_missing(v)).count(),
                            p.top.iter().map(|(v, n)| format!("{v}: {n}")).collect::<Vec<_>>().join(", "),
                        ),
                    };
                    if classes < 2 && rows_ok > 0 {
                        problems.push(format!(
                            "{file}: column `{label}`: label has {classes} class(es) ({seen}); a model needs at least two"
                        ));
                    }
                }
            }
        }
        // One file: its own sha256. Parts: the sha256 of the parts' digests, in order, one per line.
        let sha256 = match self.parts.as_slice() {
            [(_, one)] => one.clone(),
            parts => hex::encode(Sha256::digest(
                parts.iter().map(|(_, sha)| sha.as_str()).collect::<Vec<_>>().join("\n").as_bytes(),
            )),
        };
        let quality = TableQuality {
            table: table.clone(),
            file: file.into(),
            rows_read,
            rows_ok,
            rows_quarantined,
            bad_share,
            reasons: self.reasons,
            problems,
        };
        StreamedTable {
            profile,
            quality,
            first_quarantined: self.first_quarantined,
            sha256,
            bytes_read: self.bytes_read,
            bytes_decoded: self.bytes_decoded,
            collected: self.collected,
            parts: self
                .parts
                .into_iter()
                .zip(self.part_bytes)
                .map(|((file, sha256), bytes)| PartDigest { file, sha256, bytes })
                .collect(),
        }
    }
}

/// The problem of a stream that failed mid-read.
fn read_problem(file: &str, line: u64, gzip: bool, budget: Option<&InputBudget>, e: &std::io::Error) -> String {
    if let (Some(b), Some(_)) = (budget, e.get_ref().and_then(|i| i.downcast_ref::<OverBudget>())) {
        return format!(
            "{file}: larger than the ingest memory budget of {} bytes ({}, from {}){}; reading stopped at line {line}. \
             Split the file or raise the budget",
            b.bytes,
            human_bytes(b.bytes),
            b.source,
            if gzip { " once decompressed" } else { "" }
        );
    }
    if gzip {
        format!("{file}: not a readable gzip file: {e} (reading stopped at line {line})")
    } else {
        format!("{file}:{line}: reading the file failed: {e}")
    }
}

/// 128 bits of sha256: ids are compared by fingerprint so the duplicate check holds 24 bytes per
/// id instead of the id itself (a false duplicate needs a sha256 prefix collision).
fn fingerprint(id: &str) -> u128 {
    let d = Sha256::digest(id.as_bytes());
    u128::from_le_bytes(d[..16].try_into().expect("16 bytes"))
}

/// Applies the table's thresholds (`[quality]`, or the table's own `max_bad_row_share` / `min_rows`) to its
/// quality record (adds problems; never removes). A problem names the table and its file, the
/// commonest reason, the first bad row, and the next step that would pass.
pub fn apply_gate(q: &mut TableQuality, gate: &QualitySection, first_bad: Option<&QuarantinedRow>) {
    if q.bad_share > gate.max_bad_row_share {
        // In a table of parts the line alone is ambiguous: name the part too.
        let first = first_bad
            .map(|r| {
                let part = if r.file != q.file { format!("{} ", r.file) } else { String::new() };
                format!("; first: {part}line {}, column `{}`: {}", r.line, r.column, r.reason)
            })
            .unwrap_or_default();
        let commonest = q.reasons.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
        let most = commonest.map(|(r, n)| format!("; commonest reason: {r} ({n} rows)")).unwrap_or_default();
        let next = match commonest {
            // Most rows share an id with an earlier row: the table holds events, not one row per id.
            Some((r, &n)) if r == "duplicate id" && 2 * n > q.rows_quarantined => format!(
                "next: the id column is not unique in this file: if it holds several rows per id (events, ratings), \
                 remove `id` from [tables.{}]; else fix the duplicates listed in the quarantine file",
                q.table
            ),
            _ => format!(
                "next: fix the rows listed in the quarantine file, or accept losing them for this table only with \
                 `max_bad_row_share = {}` under [tables.{}]",
                share_that_passes(q.bad_share),
                q.table
            ),
        };
        q.problems.push(format!(
            "table `{}` ({}): {} of {} rows ({:.2}%) rejected, above max_bad_row_share {:.2}%{most}{first}; {next}",
            q.table,
            q.file,
            q.rows_quarantined,
            q.rows_read,
            100.0 * q.bad_share,
            100.0 * gate.max_bad_row_share
        ));
    }
    if q.problems.is_empty() && q.rows_ok < gate.min_rows {
        q.problems.push(format!(
            "table `{}` ({}): only {} good rows, below min_rows = {}; next: supply at least {} valid rows, or lower \
             min_rows for this table only with `min_rows = {}` under [tables.{}]",
            q.table,
            q.file,
            q.rows_ok,
            gate.min_rows,
            gate.min_rows,
            q.rows_ok.max(1),
            q.table
        ));
    }
}

/// The smallest three-decimal share at or above `share` (a threshold the same data passes).
fn share_that_passes(share: f64) -> String {
    format!("{:.3}", ((share * 1000.0) - 1e-9).ceil().max(0.0) / 1000.0)
}

fn check_row<'a>(
    rec: &csv::ByteRecord,
    cols: &[(usize, &'a str, ColumnKind)],
    optional: &HashSet<&str>,
    spec: &TableSpec,
    sep: &str,
    future_limit: Option<i64>,
) -> std::result::Result<Vec<String>, (&'a str, String)> {
    let mut values = Vec::with_capacity(cols.len());
    for &(pos, name, kind) in cols {
        let raw = std::str::from_utf8(&rec[pos]).map_err(|e| (name, format!("invalid UTF-8 ({e})")))?;
        let v = if kind == ColumnKind::Text { raw } else { raw.trim() };
        if is_missing(v) {
            if optional.contains(name) {
                values.push(String::new());
                continue;
            }
            return Err((name, format!("missing value in required column (got {:?})", raw)));
        }
        match kind {
            ColumnKind::Numeric => {
                let x: f64 = v.parse().map_err(|_| (name, format!("not a number: {v:?}")))?;
                if !x.is_finite() {
                    return Err((name, format!("not a finite number: {v:?}")));
                }
                if let Some([lo, hi]) = spec.ranges.get(name) {
                    if x < *lo || x > *hi {
                        return Err((name, format!("out of range: {v} not in [{lo}, {hi}]")));
                    }
                }
            }
            ColumnKind::Timestamp => {
                let t = parse_timestamp(v).ok_or_else(|| {
                    (name, format!("not a timestamp (want YYYY-MM-DD, RFC 3339 or Unix seconds): {v:?}"))
                })?;
                if let Some(limit) = future_limit {
                    if t > limit {
                        return Err((name, format!("timestamp {v} is in the future")));
                    }
                }
            }
            ColumnKind::List => {
                if v.split(sep).all(|s| s.trim().is_empty()) {
                    return Err((name, "list has no values".into()));
                }
            }
            ColumnKind::Id | ColumnKind::Categorical | ColumnKind::Text => {}
        }
        values.push(v.to_string());
    }
    Ok(values)
}

fn raw_row(rec: &csv::ByteRecord) -> String {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    let _ = w.write_byte_record(rec);
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end_matches('\n').to_string()
}

/// "not a number: \"abc\"" -> "not a number": groups quarantine reasons for the report.
fn reason_class(reason: &str) -> String {
    let cut = reason.find([':', '(', '`']).unwrap_or(reason.len());
    reason[..cut].trim().to_string()
}

/// Per-column profile counters, fed one good row at a time (bounded memory: distinct values are
/// counted up to [`DISTINCT_CAP`], by value for categorical and id columns, whose most frequent
/// values are reported, and by 64-bit hash for the others).
struct ProfileBuilder {
    columns: Vec<ColumnStats>,
}

struct ColumnStats {
    name: String,
    kind: ColumnKind,
    missing: usize,
    counts: HashMap<String, usize>,
    hashes: HashSet<u64>,
    capped: bool,
    n: usize,
    sum: f64,
    mean: f64,
    m2: f64,
    min: Option<f64>,
    max: Option<f64>,
    reservoir: Option<crate::drift::Reservoir>,
}

impl ProfileBuilder {
    fn new(declared: &[(String, ColumnKind)]) -> Self {
        let columns = declared
            .iter()
            .map(|(name, kind)| ColumnStats {
                name: name.clone(),
                kind: *kind,
                missing: 0,
                counts: HashMap::new(),
                hashes: HashSet::new(),
                capped: false,
                n: 0,
                sum: 0.0,
                mean: 0.0,
                m2: 0.0,
                min: None,
                max: None,
                reservoir: (*kind == ColumnKind::Numeric).then(|| crate::drift::Reservoir::new(name)),
            })
            .collect();
        Self { columns }
    }

    fn observe(&mut self, values: &[String]) {
        for (c, v) in self.columns.iter_mut().zip(values) {
            if is_missing(v) {
                c.missing += 1;
                continue;
            }
            if matches!(c.kind, ColumnKind::Categorical | ColumnKind::Id) {
                if let Some(n) = c.counts.get_mut(v.as_str()) {
                    *n += 1;
                } else if c.counts.len() < DISTINCT_CAP {
                    c.counts.insert(v.clone(), 1);
                } else {
                    c.capped = true;
                }
            } else {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(v.as_str(), &mut h);
                let h = std::hash::Hasher::finish(&h);
                if c.hashes.len() < DISTINCT_CAP || c.hashes.contains(&h) {
                    c.hashes.insert(h);
                } else {
                    c.capped = true;
                }
            }
            if c.kind == ColumnKind::Numeric {
                if let Ok(x) = v.parse::<f64>() {
                    // Welford's update: one pass, no stored values.
                    c.n += 1;
                    c.sum += x;
                    let delta = x - c.mean;
                    c.mean += delta / c.n as f64;
                    c.m2 += delta * (x - c.mean);
                    c.min = Some(c.min.map_or(x, |m| m.min(x)));
                    c.max = Some(c.max.map_or(x, |m| m.max(x)));
                    if let Some(r) = c.reservoir.as_mut() {
                        r.push(x);
                    }
                }
            }
        }
    }

    fn finish(
        self,
        table: &str,
        file: &str,
        spec: &TableSpec,
        header: &[String],
        rows_read: usize,
        rows_ok: usize,
    ) -> TableProfile {
        let mut by_name: HashMap<String, ColumnStats> = self.columns.into_iter().map(|c| (c.name.clone(), c)).collect();
        let mut columns = Vec::new();
        for name in header {
            let Some(c) = by_name.remove(name) else {
                columns.push(ColumnProfile {
                    name: name.clone(),
                    kind: None,
                    missing: 0,
                    distinct: 0,
                    distinct_capped: false,
                    min: None,
                    max: None,
                    mean: None,
                    std: None,
                    top: Vec::new(),
                    distribution: None,
                });
                continue;
            };
            let kind = spec.kind_of(name);
            let (mean, std) = if c.n > 0 {
                (Some(c.sum / c.n as f64), Some((c.m2 / c.n as f64).max(0.0).sqrt()))
            } else {
                (None, None)
            };
            let top = if matches!(kind, Some(ColumnKind::Categorical) | Some(ColumnKind::Id)) {
                let mut top: Vec<(String, usize)> = c.counts.iter().map(|(k, v)| (k.clone(), *v)).collect();
                top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                top.truncate(TOP_VALUES);
                top
            } else {
                Vec::new()
            };
            let distribution = match kind {
                Some(ColumnKind::Numeric) => c.reservoir.as_ref().and_then(crate::drift::Reservoir::summary),
                Some(ColumnKind::Categorical) => {
                    crate::drift::Distribution::categorical(c.counts.iter().map(|(k, v)| (k.as_str(), *v)))
                }
                _ => None,
            };
            columns.push(ColumnProfile {
                name: name.clone(),
                kind,
                missing: c.missing,
                distinct: c.counts.len() + c.hashes.len(),
                distinct_capped: c.capped,
                min: c.min,
                max: c.max,
                mean,
                std,
                top,
                distribution,
            });
        }
        TableProfile { table: table.into(), file: file.into(), rows_read, rows_ok, columns }
    }
}

/// Quarantine rows as CSV: table, file, line, column, reason, raw.
pub fn quarantine_csv(rows: &[QuarantinedRow]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["table", "file", "line", "column", "reason", "raw"]).expect("memory");
    for r in rows {
        w.write_record([&r.table, &r.file, &r.line.to_string(), &r.column, &r.reason, &r.raw]).expect("memory");
    }
    w.into_inner().expect("memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TableSpec {
        TableSpec {
            file: "c.csv".into(),
            id: Some("id".into()),
            numeric: vec!["age".into()],
            categorical: vec!["plan".into()],
            timestamp: vec!["at".into()],
            optional: vec!["plan".into()],
            ranges: [("age".to_string(), [0.0, 120.0])].into_iter().collect(),
            list_separator: "|".into(),
            max_future_days: Some(1.0),
            ..Default::default()
        }
    }

    #[test]
    fn malformed_rows_are_quarantined_with_line_and_column_and_good_rows_kept() {
        let data = "id,age,plan,at,extra\n\
                    a,30,basic,2024-01-01,x\n\
                    b,abc,basic,2024-01-01,x\n\
                    c,40,,2024-01-02,x\n\
                    d,500,basic,2024-01-01,x\n\
                    a,31,basic,2024-01-01,x\n\
                    e,20,basic\n\
                    f,NaN,basic,2024-01-01,x\n\
                    g,22,basic,2999-01-01,x\n\
                    \"h\",\"23\",\"pro, annual\",\"2024-01-03\",\"multi\nline\"\n";
        let t = ingest_table("customers", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        let ids: Vec<&str> = t.frame.col("id").unwrap().iter().collect();
        assert_eq!(ids, ["a", "c", "h"]);
        assert_eq!(&t.frame.col("plan").unwrap()[2], "pro, annual");
        let got: Vec<(u64, &str)> = t.quarantined.iter().map(|q| (q.line, q.column.as_str())).collect();
        assert_eq!(got, [(3, "age"), (5, "age"), (6, "id"), (7, ""), (8, "age"), (9, "at")]);
        assert!(t.quarantined[0].reason.contains("not a number"));
        assert!(t.quarantined[2].reason.contains("first seen on line 2"));
        assert_eq!(t.quarantined[0].raw, "b,abc,basic,2024-01-01,x");
        assert_eq!(t.quality.rows_read, 9);
        assert_eq!(t.quality.rows_ok + t.quality.rows_quarantined, t.quality.rows_read);
    }

    #[test]
    fn missing_column_is_a_problem_naming_file_line_and_column() {
        let t = ingest_table("customers", &spec(), "c.csv", b"id,plan,at\na,b,2024-01-01\n", &[], 0);
        assert_eq!(t.frame.n_rows(), 0);
        assert!(t.quality.problems[0].contains("c.csv:1: column `age`"), "{:?}", t.quality.problems);
    }

    #[test]
    fn generated_id_is_the_record_index_and_gzip_is_read() {
        let spec = TableSpec {
            file: "t.csv".into(),
            id: Some("row".into()),
            generate_id: true,
            numeric: vec!["x".into()],
            ..Default::default()
        };
        let data = "x\n1\nbad\n3\n";
        let t = ingest_table("t", &spec, "t.csv", data.as_bytes(), &[], 0);
        assert_eq!(t.frame.col("row").unwrap(), ["0", "2"]);
        assert_eq!(t.frame.col("x").unwrap(), ["1", "3"]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, data.as_bytes()).unwrap();
        let t2 = ingest_table("t", &spec, "t.csv.gz", &gz.finish().unwrap(), &[], 0);
        assert_eq!(t2.frame, t.frame);
        let clash = ingest_table("t", &spec, "t.csv", b"row,x\n0,1\n", &[], 0);
        assert!(clash.quality.problems[0].contains("generate_id"), "{:?}", clash.quality.problems);
    }

    #[test]
    fn bom_and_crlf_are_accepted() {
        let t = ingest_table(
            "c",
            &spec(),
            "c.csv",
            b"\xEF\xBB\xBFid,age,plan,at\r\na,1,x,2024-01-01\r\n",
            &[],
            1_800_000_000,
        );
        assert_eq!(t.frame.n_rows(), 1, "{:?}", t.quarantined);
    }

    #[test]
    fn single_class_label_fails_the_table() {
        let data = "id,age,plan,at\na,1,x,2024-01-01\nb,2,x,2024-01-01\n";
        let t = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &["plan".into()], 1_800_000_000);
        assert!(t.quality.problems[0].contains("label has 1 class"), "{:?}", t.quality.problems);
    }

    #[test]
    fn gate_reports_share_and_first_bad_row() {
        let data = "id,age,plan,at\na,1,x,2024-01-01\nb,zz,x,2024-01-01\n";
        let mut t = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        apply_gate(&mut t.quality, &QualitySection { max_bad_row_share: 0.01, min_rows: 1 }, t.quarantined.first());
        let p = &t.quality.problems[0];
        assert!(p.contains("1 of 2 rows") && p.contains("line 3, column `age`"), "{p}");
        assert!(p.starts_with("table `c` (c.csv)") && p.contains("commonest reason: not a number (1 rows)"), "{p}");
        assert!(p.contains("`max_bad_row_share = 0.500` under [tables.c]"), "{p}");
        // The suggested share passes the same data.
        let mut again = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        apply_gate(&mut again.quality, &QualitySection { max_bad_row_share: 0.5, min_rows: 1 }, None);
        assert!(again.quality.problems.is_empty(), "{:?}", again.quality.problems);
    }

    #[test]
    fn quarantine_lines_are_file_lines_from_the_first_record_on() {
        let data = "id,age,plan,at\nb,zz,x,2024-01-01\nc,zz,x,2024-01-01\nd,1,x,2024-01-01\ne,zz,x,2024-01-01\n";
        let t = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        let lines: Vec<u64> = t.quarantined.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 5]);
        // Windows line ends (CRLF, as Excel and Python's csv module write): the same lines.
        let crlf = data.replace('\n', "\r\n");
        let t = ingest_table("c", &spec(), "c.csv", crlf.as_bytes(), &[], 1_800_000_000);
        let lines: Vec<u64> = t.quarantined.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 5], "CRLF");
    }

    #[test]
    fn a_table_of_events_declared_with_an_id_is_told_to_drop_the_id() {
        let data = "id,age,plan,at\na,1,x,2024-01-01\na,2,x,2024-01-01\na,3,y,2024-01-01\n";
        let mut t = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        apply_gate(&mut t.quality, &QualitySection { max_bad_row_share: 0.01, min_rows: 1 }, t.quarantined.first());
        let p = &t.quality.problems[0];
        assert!(
            p.contains("commonest reason: duplicate id (2 rows)") && p.contains("remove `id` from [tables.c]"),
            "{p}"
        );
    }

    /// Reads `parts` (file name, content) as one table into memory.
    fn ingest_parts(spec: &TableSpec, parts: &[(&str, &str)]) -> (StreamedTable, MemorySink) {
        let mut sink = MemorySink {
            frame: Frame::new(spec.columns().into_iter().map(|(c, _)| c).collect()),
            quarantined: Vec::new(),
        };
        let mut stream = TableStream::new("c", spec, &[], 1_800_000_000);
        for (file, data) in parts {
            stream.part(file, data.as_bytes(), &StreamOptions::default(), &mut sink).unwrap();
        }
        (stream.finish("c/"), sink)
    }

    #[test]
    fn a_table_in_parts_ingests_to_the_same_rows_and_profile_as_one_file() {
        let header = "id,age,plan,at\n";
        let rows = ["a,1,x,2024-01-01\n", "b,zz,x,2024-01-01\n", "c,3,,2024-01-01\n", "d,5,y,2024-01-02\n"];
        let whole = format!("{header}{}", rows.concat());
        let one = ingest_table("c", &spec(), "c/", whole.as_bytes(), &[], 1_800_000_000);
        let first = format!("{header}{}{}", rows[0], rows[1]);
        let second = format!("{header}{}{}", rows[2], rows[3]);
        let (t, sink) = ingest_parts(&spec(), &[("c/part-0.csv", &first), ("c/part-1.csv", &second)]);
        assert_eq!(sink.frame, one.frame);
        assert_eq!(t.profile, one.profile);
        assert_eq!((t.quality.rows_read, t.quality.rows_ok, t.quality.rows_quarantined), (4, 3, 1));
        let bad = &sink.quarantined[0];
        assert_eq!((bad.file.as_str(), bad.line, bad.column.as_str()), ("c/part-0.csv", 3, "age"));
        let digest = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        let listed = format!("{}\n{}", digest(&first), digest(&second));
        assert_eq!(t.sha256, digest(&listed), "parts hash as the list of their digests");
    }

    #[test]
    fn a_duplicate_id_in_another_part_names_the_part_and_line_it_was_first_seen_on() {
        let (t, sink) = ingest_parts(
            &spec(),
            &[
                ("c/part-0.csv", "id,age,plan,at\na,1,x,2024-01-01\nb,2,x,2024-01-01\n"),
                ("c/part-1.csv", "id,age,plan,at\nc,1,x,2024-01-01\nb,2,x,2024-01-01\n"),
            ],
        );
        assert_eq!(t.quality.rows_ok, 3);
        let dup = &sink.quarantined[0];
        assert_eq!((dup.file.as_str(), dup.line), ("c/part-1.csv", 3));
        assert!(dup.reason.contains("duplicate id `b` (first seen on c/part-0.csv line 3)"), "{}", dup.reason);
        let mut quality = t.quality;
        apply_gate(&mut quality, &QualitySection { max_bad_row_share: 0.0, min_rows: 1 }, Some(dup));
        assert!(quality.problems[0].contains("first: c/part-1.csv line 3, column `id`"), "{:?}", quality.problems);
    }

    #[test]
    fn a_broken_part_is_a_problem_naming_the_part_and_generated_ids_continue_across_parts() {
        let (t, _) = ingest_parts(
            &spec(),
            &[("c/part-0.csv", "id,age,plan,at\na,1,x,2024-01-01\n"), ("c/part-1.csv", "id,plan,at\nb,x,2024-01-01\n")],
        );
        assert!(t.quality.problems[0].starts_with("c/part-1.csv:1: column `age`"), "{:?}", t.quality.problems);
        let spec = TableSpec {
            file: "t/".into(),
            id: Some("row".into()),
            generate_id: true,
            numeric: vec!["x".into()],
            ..Default::default()
        };
        let (_, sink) = ingest_parts(&spec, &[("t/a.csv", "x\n1\n2\n"), ("t/b.csv", "x\n3\n")]);
        assert_eq!(sink.frame.col("row").unwrap(), ["0", "1", "2"]);
    }

    #[test]
    fn profile_counts_missing_distinct_and_moments() {
        let data = "id,age,plan,at\na,1,x,2024-01-01\nb,3,,2024-01-01\nc,5,y,2024-01-01\n";
        let t = ingest_table("c", &spec(), "c.csv", data.as_bytes(), &[], 1_800_000_000);
        let age = t.profile.columns.iter().find(|c| c.name == "age").unwrap();
        assert_eq!((age.min, age.max, age.mean), (Some(1.0), Some(5.0), Some(3.0)));
        let plan = t.profile.columns.iter().find(|c| c.name == "plan").unwrap();
        assert_eq!((plan.missing, plan.distinct), (1, 2));
    }
}
