//! Data understanding: parse each input table as its spec declares, profile it, and quarantine
//! every row that fails with file, line, column and reason. Good rows are all kept.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

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
    let declared = spec.columns();
    let mut quarantined = Vec::new();
    let mut problems = Vec::new();
    let mut rows_read = 0usize;

    // A gzip-compressed export (e.g. `reviews.csv.gz`) is read as its decompressed CSV.
    let inflated;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        if let Err(e) = std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out) {
            problems.push(format!("{file}: not a readable gzip file: {e}"));
            out.clear();
        }
        inflated = out;
        inflated.as_slice()
    } else {
        bytes
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut rdr = csv::ReaderBuilder::new().flexible(true).has_headers(false).from_reader(bytes);
    let mut records = rdr.byte_records();

    let header: Vec<String> = match records.next() {
        None => {
            problems.push(format!("{file}:1: the file is empty (expected a header row)"));
            Vec::new()
        }
        Some(Err(e)) => {
            problems.push(format!("{file}:1: unreadable header: {e}"));
            Vec::new()
        }
        Some(Ok(h)) => h.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect(),
    };
    // A generated id is appended to the header here and to every record below.
    let generated_id = spec.id.as_ref().filter(|_| spec.generate_id && !header.is_empty());
    let mut header = header;
    if let Some(id) = generated_id {
        if header.contains(id) {
            problems.push(format!("{file}:1: column `{id}` is in the file, but the spec generates it (generate_id = true)"));
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
        for (c, _) in &declared {
            if !position.contains_key(c.as_str()) {
                problems.push(format!(
                    "{file}:1: column `{c}`: required column missing from the header (found: {})",
                    header.join(", ")
                ));
            }
        }
    }

    let out_headers: Vec<String> = declared.iter().map(|(c, _)| c.clone()).collect();
    let mut frame = Frame::new(out_headers);
    let structural_ok = problems.is_empty() && !header.is_empty();
    let optional: HashSet<&str> = spec.optional.iter().map(String::as_str).collect();
    let sep = spec.list_separator.as_str();
    let future_limit = spec.max_future_days.map(|d| now + (d * 86_400.0) as i64);
    let mut first_line_of_id: HashMap<String, u64> = HashMap::new();

    if structural_ok {
        let cols: Vec<(usize, &str, ColumnKind)> =
            declared.iter().map(|(c, k)| (position[c.as_str()], c.as_str(), *k)).collect();
        for rec in records {
            rows_read += 1;
            let mut rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    quarantined.push(QuarantinedRow {
                        table: table.into(),
                        file: file.into(),
                        line,
                        column: String::new(),
                        reason: format!("unreadable row: {e}"),
                        raw: String::new(),
                    });
                    continue;
                }
            };
            if generated_id.is_some() {
                rec.push_field((rows_read - 1).to_string().as_bytes());
            }
            let line = rec.position().map_or(0, |p| p.line());
            let reject = |column: &str, reason: String| QuarantinedRow {
                table: table.into(),
                file: file.into(),
                line,
                column: column.into(),
                reason,
                raw: raw_row(&rec),
            };
            if rec.len() != header.len() {
                quarantined.push(reject("", format!("expected {} fields, found {}", header.len(), rec.len())));
                continue;
            }
            match check_row(&rec, &cols, &optional, spec, sep, future_limit) {
                Err((column, reason)) => quarantined.push(reject(column, reason)),
                Ok(values) => {
                    if let Some(id_col) = &spec.id {
                        let id = &values[0];
                        if let Some(first) = first_line_of_id.get(id) {
                            quarantined.push(reject(id_col, format!("duplicate id `{id}` (first seen on line {first})")));
                            continue;
                        }
                        first_line_of_id.insert(id.clone(), line);
                    }
                    frame.push_row(values);
                }
            }
        }
    }

    let profile = profile_table(table, file, spec, &frame, &header, rows_read);
    let rows_ok = frame.n_rows();
    let bad_share = if rows_read == 0 { 0.0 } else { quarantined.len() as f64 / rows_read as f64 };
    let mut reasons = BTreeMap::new();
    for q in &quarantined {
        *reasons.entry(reason_class(&q.reason)).or_insert(0) += 1;
    }
    if structural_ok {
        for label in labels {
            if let Some(p) = profile.columns.iter().find(|c| &c.name == label) {
                let classes = p.top.iter().filter(|(v, _)| !is_missing(v)).count();
                if classes < 2 && rows_ok > 0 {
                    problems.push(format!(
                        "{file}: column `{label}`: label has {classes} class(es) ({}); a model needs at least two",
                        p.top.iter().map(|(v, n)| format!("{v}: {n}")).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    let quality = TableQuality {
        table: table.into(),
        file: file.into(),
        rows_read,
        rows_ok,
        rows_quarantined: quarantined.len(),
        bad_share,
        reasons,
        problems,
    };
    IngestedTable { frame, profile, quality, quarantined }
}

/// Applies the spec's thresholds to a table's quality record (adds problems; never removes).
pub fn apply_gate(q: &mut TableQuality, gate: &QualitySection, first_bad: Option<&QuarantinedRow>) {
    if q.bad_share > gate.max_bad_row_share {
        let first = first_bad
            .map(|r| format!("; first: line {}, column `{}`: {}", r.line, r.column, r.reason))
            .unwrap_or_default();
        q.problems.push(format!(
            "{}: {} of {} rows ({:.2}%) rejected, above max_bad_row_share {:.2}%{first}",
            q.file,
            q.rows_quarantined,
            q.rows_read,
            100.0 * q.bad_share,
            100.0 * gate.max_bad_row_share
        ));
    }
    if q.problems.is_empty() && q.rows_ok < gate.min_rows {
        q.problems.push(format!("{}: only {} good rows, below quality.min_rows = {}", q.file, q.rows_ok, gate.min_rows));
    }
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
                let t = parse_timestamp(v)
                    .ok_or_else(|| (name, format!("not a timestamp (want YYYY-MM-DD, RFC 3339 or Unix seconds): {v:?}")))?;
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

fn profile_table(table: &str, file: &str, spec: &TableSpec, frame: &Frame, header: &[String], rows_read: usize) -> TableProfile {
    let mut columns = Vec::new();
    for name in header {
        let kind = spec.kind_of(name);
        let Ok(values) = frame.col(name) else {
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
            });
            continue;
        };
        let missing = values.iter().filter(|v| is_missing(v)).count();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut capped = false;
        for v in values.iter().filter(|v| !is_missing(v)) {
            if counts.len() < DISTINCT_CAP || counts.contains_key(v.as_str()) {
                *counts.entry(v.as_str()).or_insert(0) += 1;
            } else {
                capped = true;
            }
        }
        let (mut min, mut max, mut mean, mut std) = (None, None, None, None);
        if kind == Some(ColumnKind::Numeric) {
            let xs: Vec<f64> = values.iter().filter_map(|v| v.parse::<f64>().ok()).collect();
            if !xs.is_empty() {
                let n = xs.len() as f64;
                let m = xs.iter().sum::<f64>() / n;
                let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
                min = xs.iter().cloned().reduce(f64::min);
                max = xs.iter().cloned().reduce(f64::max);
                mean = Some(m);
                std = Some(var.sqrt());
            }
        }
        let top = if matches!(kind, Some(ColumnKind::Categorical) | Some(ColumnKind::Id)) {
            let mut top: Vec<(String, usize)> = counts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            top.truncate(TOP_VALUES);
            top
        } else {
            Vec::new()
        };
        columns.push(ColumnProfile {
            name: name.clone(),
            kind,
            missing,
            distinct: counts.len(),
            distinct_capped: capped,
            min,
            max,
            mean,
            std,
            top,
        });
    }
    TableProfile { table: table.into(), file: file.into(), rows_read, rows_ok: frame.n_rows(), columns }
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
        let ids: Vec<&str> = t.frame.col("id").unwrap().iter().map(String::as_str).collect();
        assert_eq!(ids, ["a", "c", "h"]);
        assert_eq!(t.frame.col("plan").unwrap()[2], "pro, annual");
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
        let spec = TableSpec { file: "t.csv".into(), id: Some("row".into()), generate_id: true, numeric: vec!["x".into()], ..Default::default() };
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
        let t = ingest_table("c", &spec(), "c.csv", b"\xEF\xBB\xBFid,age,plan,at\r\na,1,x,2024-01-01\r\n", &[], 1_800_000_000);
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
