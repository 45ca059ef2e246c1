//! Drafting a pipeline spec from a folder of CSV exports (`marquee init`): each file's header and
//! a sample of its rows give every column a role, and the shapes of the tables say which use
//! cases the data supports. The draft is a spec `marquee run --spec` accepts as it is; what the
//! data cannot decide (which label value means "churned", which columns people talk about) is a
//! commented `QUESTION:` in the file, with the use case left out rather than guessed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::spec::Spec;

/// Rows sampled from each file to decide roles.
pub const SAMPLE_ROWS: usize = 2_000;

/// A drafted spec: its TOML text, the use cases it enables and the questions left in it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub toml: String,
    pub spec: Spec,
    pub questions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Numeric,
    Categorical,
    Timestamp,
    Text,
    List,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    role: Role,
    optional: bool,
    /// Distinct non-empty values (the first [`DISTINCT_CAP`] by name).
    values: BTreeSet<String>,
    /// How many distinct values (`usize::MAX` past the cap).
    distinct: usize,
    non_empty: usize,
    id_like: bool,
    /// An id-like column whose values never repeat.
    unique: bool,
}

#[derive(Debug, Clone)]
struct Table {
    name: String,
    file: String,
    columns: Vec<Column>,
    /// The column unique in the sample whose name says it is an id.
    id: Option<String>,
    /// Data rows read (at most [`SCAN_ROWS`]).
    rows: usize,
}

impl Table {
    fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
    fn ids(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.id_like)
    }
}

/// Drafts a spec for the CSV (and `.csv.gz`) files of `dir`, and for its subfolders of part
/// files (each one table, `file = "<folder>/"`).
pub fn draft_spec(dir: &Path) -> Result<Draft> {
    let mut sources: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut skipped = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))? {
        let path = entry.map_err(|e| Error::Invalid(format!("{}: {e}", dir.display())))?.path();
        let lower = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
        if path.is_dir() {
            let parts = part_files(&path)?;
            if parts.is_empty() {
                continue;
            }
            // Files with different headers are different tables, not the parts of one.
            match parts.iter().map(|p| read_header(p)).collect::<Result<BTreeSet<_>>>()?.len() {
                1 => sources.push((path, parts)),
                _ => skipped.push(format!(
                    "{}/ (its files have different headers: separate tables, not parts of one; run init on that folder)",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or_default()
                )),
            }
        } else if lower.ends_with(".csv") || lower.ends_with(".csv.gz") {
            sources.push((path.clone(), vec![path]));
        }
    }
    sources.sort();
    if sources.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no .csv or .csv.gz files (or folders of parts) to draft a spec from{}",
            dir.display(),
            skipped.iter().map(|s| format!("; skipped {s}")).collect::<String>()
        )));
    }
    let tables = sources.iter().map(|(source, parts)| read_table(source, parts)).collect::<Result<Vec<_>>>()?;
    let dataset = slug(dir.file_name().and_then(|n| n.to_str()).unwrap_or("data"));
    let mut out = Writer::default();
    writeln!(
        out.text,
        "# Drafted by `marquee init` from the files of {} (up to {SCAN_ROWS} rows of each read; roles from {SAMPLE_ROWS} sampled).\n\
         # Check the roles and the use cases, answer the QUESTION lines, then: marquee run --spec <this file> --data <folder>\n\
         # Every field: docs/spec.md.\n",
        dir.display()
    )
    .ok();
    for s in &skipped {
        writeln!(out.text, "# Skipped {s}.").ok();
    }
    writeln!(out.text, "[pipeline]\nname = {}\ndataset = {}\n", quote(&dataset), quote(&dataset)).ok();
    let churn = churn_of(&tables, &mut out);
    let generated: BTreeSet<String> = churn.iter().filter(|c| c.generate_id).map(|c| c.table.clone()).collect();
    for t in &tables {
        write_table(&mut out, t, generated.contains(&t.name));
    }
    segment_section(&tables, churn.as_ref(), &mut out);
    if let Some(c) = &churn {
        out.text.push_str(&c.section);
    }
    recommend_section(&tables, &mut out);
    sentiment_section(&tables, &mut out);
    ads_section(&tables, &mut out);
    let enabled =
        ["\n[segment]", "\n[churn]", "\n[recommend]", "\n[sentiment]", "\n[ads]"].iter().any(|s| out.text.contains(s));
    if !enabled {
        let why = if out.questions.is_empty() {
            "no customers table with continuous columns, no churn label, no ratings, no labelled texts".to_string()
        } else {
            out.questions.join("; ")
        };
        return Err(Error::Invalid(format!("{}: no use case fits these files: {why}", dir.display())));
    }
    let spec = Spec::from_toml(&out.text, "drafted spec").map_err(|e| {
        Error::Invalid(format!("the drafted spec is not valid ({e}); please report this with the file headers"))
    })?;
    Ok(Draft { toml: out.text, spec, questions: out.questions })
}

#[derive(Default)]
struct Writer {
    text: String,
    questions: Vec<String>,
}

impl Writer {
    fn question(&mut self, q: String) {
        writeln!(self.text, "# QUESTION: {q}").ok();
        self.questions.push(q);
    }
}

/// The part files of a subfolder, by name ([`crate::spec::part_files_in`]).
fn part_files(folder: &Path) -> Result<Vec<PathBuf>> {
    crate::spec::part_files_in(folder).map_err(|e| Error::Invalid(format!("{}: {e}", folder.display())))
}

/// A flexible CSV reader over a file, inflating a `.gz` one.
fn csv_reader(path: &Path) -> Result<csv::Reader<Box<dyn Read>>> {
    let open = std::fs::File::open(path).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let reader: Box<dyn Read> = if gz { Box::new(flate2::read::MultiGzDecoder::new(open)) } else { Box::new(open) };
    Ok(csv::ReaderBuilder::new().flexible(true).from_reader(reader))
}

fn header_of(rdr: &mut csv::Reader<Box<dyn Read>>, path: &Path) -> Result<Vec<String>> {
    Ok(rdr
        .headers()
        .map_err(|e| Error::Invalid(format!("{}:1: unreadable header: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_string())
        .collect())
}

fn read_header(path: &Path) -> Result<Vec<String>> {
    header_of(&mut csv_reader(path)?, path)
}

/// One table from `source`: a file (`parts` is that file) or a folder of parts, read in order up
/// to [`SCAN_ROWS`] rows in all.
fn read_table(source: &Path, parts: &[PathBuf]) -> Result<Table> {
    let name_of = |p: &Path| p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let folder = source.is_dir();
    let file = if folder { format!("{}/", name_of(source)) } else { name_of(source) };
    let mut header: Vec<String> = Vec::new();
    let mut stats: Vec<Stats> = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut rows = 0;
    for path in parts {
        if rows >= SCAN_ROWS {
            break;
        }
        let mut rdr = csv_reader(path)?;
        let part_header = header_of(&mut rdr, path)?;
        if header.is_empty() {
            stats = part_header.iter().map(|h| Stats::new(id_like(h))).collect();
            header = part_header;
        } else if part_header != header {
            return Err(Error::Invalid(format!(
                "{}:1: the header differs from the first part's ({}): the parts of a folder are one table",
                path.display(),
                header.join(", ")
            )));
        }
        for (i, rec) in rdr.records().take(SCAN_ROWS - rows).enumerate() {
            let rec = rec.map_err(|e| Error::Invalid(format!("{}: record {}: {e}", path.display(), i + 1)))?;
            // One reservoir slot per row for every column, so the sampled values stay whole rows.
            let slot = if rows < SAMPLE_ROWS {
                Some(rows)
            } else {
                Some(rng.gen_range(0..=rows)).filter(|&j| j < SAMPLE_ROWS)
            };
            rows += 1;
            for (j, st) in stats.iter_mut().enumerate() {
                st.push(rec.get(j).unwrap_or_default().trim(), slot);
            }
        }
    }
    let columns: Vec<Column> = header.iter().zip(stats).map(|(name, st)| column_of(name, st)).collect();
    let id = columns.iter().find(|c| c.id_like && !c.optional && c.unique && c.non_empty > 0).map(|c| c.name.clone());
    let stem = file.trim_end_matches('/').trim_end_matches(".gz").trim_end_matches(".GZ");
    let stem = if folder { stem } else { stem.rsplit_once('.').map_or(stem, |(s, _)| s) };
    Ok(Table { name: slug(stem), file, columns, id, rows })
}

/// Rows read from each file: all of a file this size, so a file sorted by its label still shows
/// every label value; the roles come from a seeded sample of [`SAMPLE_ROWS`] of them.
pub const SCAN_ROWS: usize = 200_000;
/// Distinct values kept by name per column (label values, categories).
const DISTINCT_CAP: usize = 200;

/// What one column's values look like over the rows read.
struct Stats {
    sample: Vec<String>,
    distinct: BTreeSet<String>,
    capped: bool,
    non_empty: usize,
    empty: usize,
    /// Hashes of the values, for a column that may be an id (its uniqueness).
    hashes: Option<std::collections::HashSet<u64>>,
    unique: bool,
}

impl Stats {
    fn new(id_like: bool) -> Self {
        Self {
            sample: Vec::new(),
            distinct: BTreeSet::new(),
            capped: false,
            non_empty: 0,
            empty: 0,
            hashes: id_like.then(Default::default),
            unique: true,
        }
    }

    fn push(&mut self, v: &str, slot: Option<usize>) {
        match slot {
            Some(i) if i == self.sample.len() => self.sample.push(v.to_string()),
            Some(i) if i < self.sample.len() => self.sample[i] = v.to_string(),
            _ => {}
        }
        if v.is_empty() {
            self.empty += 1;
            return;
        }
        self.non_empty += 1;
        if !self.capped && !self.distinct.contains(v) {
            if self.distinct.len() == DISTINCT_CAP {
                self.capped = true;
            } else {
                self.distinct.insert(v.to_string());
            }
        }
        if let Some(h) = self.hashes.as_mut() {
            use std::hash::{Hash, Hasher};
            let mut s = std::collections::hash_map::DefaultHasher::new();
            v.hash(&mut s);
            self.unique &= h.insert(s.finish());
        }
    }
}

fn id_like(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "id" || lower.ends_with("_id") || name.ends_with("ID") || name.ends_with("Id")
}

fn is_timestamp(v: &str) -> bool {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok() || chrono::DateTime::parse_from_rfc3339(v).is_ok()
}

fn column_of(name: &str, st: Stats) -> Column {
    let non_empty: Vec<&str> = st.sample.iter().map(String::as_str).filter(|v| !v.is_empty()).collect();
    let lower = name.to_ascii_lowercase();
    let numeric: Vec<f64> = non_empty.iter().filter_map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite())).collect();
    let all_numeric = !non_empty.is_empty() && numeric.len() == non_empty.len();
    let unix_seconds = all_numeric
        && (lower.contains("time") || lower.contains("date") || lower.ends_with("_at"))
        && numeric.iter().all(|&x| (1e8..4e9).contains(&x) && x.fract() == 0.0);
    let mean_len = non_empty.iter().map(|v| v.len()).sum::<usize>() as f64 / non_empty.len().max(1) as f64;
    let mean_words =
        non_empty.iter().map(|v| v.split_whitespace().count()).sum::<usize>() as f64 / non_empty.len().max(1) as f64;
    let piped = non_empty.iter().filter(|v| v.contains('|')).count();
    let role = if id_like(name) {
        Role::Categorical
    } else if !non_empty.is_empty() && non_empty.iter().all(|v| is_timestamp(v)) || unix_seconds {
        Role::Timestamp
    } else if all_numeric && !is_label_name(&lower) {
        Role::Numeric
    } else if piped * 5 >= non_empty.len() && piped > 0 && mean_words < 8.0 {
        Role::List
    } else if mean_words >= 5.0 || mean_len > 60.0 {
        Role::Text
    } else {
        Role::Categorical
    };
    let distinct = if st.capped { usize::MAX } else { st.distinct.len() };
    Column {
        name: name.to_string(),
        role,
        optional: st.empty > 0,
        values: st.distinct,
        distinct,
        non_empty: st.non_empty,
        id_like: id_like(name),
        unique: st.hashes.is_some() && st.unique,
    }
}

fn is_label_name(lower: &str) -> bool {
    [
        "churn",
        "churned",
        "label",
        "exited",
        "attrition",
        "cancelled",
        "canceled",
        "target",
        "sentiment",
        "polarity",
        "class",
    ]
    .contains(&lower)
}

fn write_table(out: &mut Writer, t: &Table, generate_id: bool) {
    writeln!(out.text, "[tables.{}]\nfile = {}", t.name, quote(&t.file)).ok();
    match (&t.id, generate_id) {
        (_, true) => {
            writeln!(
                out.text,
                "id = \"row\"\ngenerate_id = true   # no id column: rows are numbered (0-based, header excluded)"
            )
            .ok();
        }
        (Some(id), false) => {
            writeln!(out.text, "id = {}   # never repeats in the rows read", quote(id)).ok();
        }
        (None, false) => {}
    }
    for (key, role) in [
        ("numeric", Role::Numeric),
        ("categorical", Role::Categorical),
        ("timestamp", Role::Timestamp),
        ("text", Role::Text),
        ("list", Role::List),
    ] {
        let names: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.role == role && Some(&c.name) != t.id.as_ref())
            .map(|c| c.name.as_str())
            .collect();
        if !names.is_empty() {
            writeln!(out.text, "{key} = {}", list(&names)).ok();
        }
    }
    let optional: Vec<&str> = t.columns.iter().filter(|c| c.optional).map(|c| c.name.as_str()).collect();
    if !optional.is_empty() {
        writeln!(out.text, "optional = {}   # empty in some sampled rows", list(&optional)).ok();
    }
    // A small table (an ad catalog, a plan list) is whole as it is: the [quality] minimum is for
    // logs and customer tables, where few rows mean a truncated export.
    let min_rows = crate::spec::QualitySection::default().min_rows;
    if (1..min_rows).contains(&t.rows) {
        writeln!(out.text, "min_rows = {}   # a small lookup table: its own minimum of good rows", t.rows).ok();
    }
    out.text.push('\n');
}

/// The churn section, and whether its table needs generated ids.
struct ChurnDraft {
    table: String,
    label: String,
    generate_id: bool,
    section: String,
}

/// Words that mean "this customer left" / "this one is positive", in label values.
const YES: [&str; 7] = ["yes", "y", "1", "true", "churned", "left", "cancelled"];

fn churn_of(tables: &[Table], out: &mut Writer) -> Option<ChurnDraft> {
    let (t, label) = tables.iter().find_map(|t| {
        t.columns
            .iter()
            .find(|c| {
                let l = c.name.to_ascii_lowercase();
                ["churn", "churned", "exited", "attrition", "cancelled", "canceled", "is_churn"].contains(&l.as_str())
                    && c.distinct == 2
            })
            .map(|c| (t, c))
    })?;
    let values: Vec<&String> = label.values.iter().collect();
    let positives: Vec<&&String> = values.iter().filter(|v| YES.contains(&v.to_ascii_lowercase().as_str())).collect();
    let mut section = String::new();
    if positives.len() != 1 {
        out.question(format!(
            "which value of `{}.{}` means the customer churned ({})? Add a [churn] section with `positive = \"...\"` (see docs/spec.md).",
            t.name,
            label.name,
            values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" or ")
        ));
        return None;
    }
    let numeric: Vec<&str> =
        t.columns.iter().filter(|c| c.role == Role::Numeric && c.name != label.name).map(|c| c.name.as_str()).collect();
    let categorical: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.role == Role::Categorical && !c.id_like && c.name != label.name && (2..=50).contains(&c.distinct))
        .map(|c| c.name.as_str())
        .collect();
    if numeric.is_empty() && categorical.is_empty() {
        return None;
    }
    writeln!(
        section,
        "# Who is about to cancel? Logistic regression on the {} table; `{}` = {} is churned.\n[churn]\ntable = {}\nlabel = {}\npositive = {}",
        t.name,
        label.name,
        positives[0],
        quote(&t.name),
        quote(&label.name),
        quote(positives[0])
    )
    .ok();
    if !numeric.is_empty() {
        writeln!(section, "numeric = {}", list(&numeric)).ok();
    }
    if !categorical.is_empty() {
        writeln!(section, "categorical = {}", list(&categorical)).ok();
    }
    section.push_str(
        "[churn.criteria]   # defaults shown; business targets: set them to what the campaign needs\nmin_auc = 0.80\nmin_recall = 0.60\nmin_precision = 0.50\n\n",
    );
    Some(ChurnDraft { table: t.name.clone(), label: label.name.clone(), generate_id: t.id.is_none(), section })
}

fn segment_section(tables: &[Table], churn: Option<&ChurnDraft>, out: &mut Writer) {
    // A table of customers: one row per id (or the churn table), with continuous numeric columns.
    let label = churn.map(|c| c.label.as_str()).unwrap_or_default();
    let candidate = tables.iter().find_map(|t| {
        let keyed = t.id.is_some() || churn.is_some_and(|c| c.table == t.name);
        let features: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| c.role == Role::Numeric && c.name != label && c.distinct > 10)
            .map(|c| c.name.as_str())
            .take(8)
            .collect();
        (keyed && features.len() >= 2 && !is_event_table(t)).then_some((t, features))
    });
    let Some((t, features)) = candidate else { return };
    writeln!(
        out.text,
        "# How do customers group? k-means on the {} table's continuous columns, k swept 2..8.\n[segment]\ntable = {}\nfeatures = {}\nbaseline_columns = {}   # the rule-based segments k-means must beat\n",
        t.name,
        quote(&t.name),
        list(&features),
        list(&features[..2])
    )
    .ok();
}

/// A table of events: two id columns (who, what) and no id of its own.
fn is_event_table(t: &Table) -> bool {
    t.id.is_none() && t.ids().count() >= 2
}

fn recommend_section(tables: &[Table], out: &mut Writer) {
    let Some((ratings, rating)) = tables.iter().filter(|t| is_event_table(t)).find_map(|t| {
        t.columns
            .iter()
            .find(|c| {
                let l = c.name.to_ascii_lowercase();
                c.role == Role::Numeric && (l.contains("rating") || l == "score" || l == "stars")
            })
            .map(|c| (t, c))
    }) else {
        return;
    };
    let ids: Vec<&Column> = ratings.ids().collect();
    let who = |c: &&&Column| {
        ["user", "customer", "member", "viewer", "account", "subscriber"]
            .iter()
            .any(|w| c.name.to_ascii_lowercase().contains(w))
    };
    let user = ids.iter().find(who).unwrap_or(&ids[0]);
    // Two id columns of one name (a repeated header) leave no item column to draft.
    let Some(item) = ids.iter().find(|c| c.name != user.name) else { return };
    writeln!(
        out.text,
        "# What should each viewer watch next? ALS on {}, ranked by co-ratings (item-kNN).\n[recommend]\nratings = {}\nuser = {}\nitem = {}\nrating = {}\nranking = \"item_knn\"",
        ratings.name,
        quote(&ratings.name),
        quote(&user.name),
        quote(&item.name),
        quote(&rating.name)
    )
    .ok();
    // A titles table: one row per item id, with attributes for content-based similar titles.
    let titles = tables.iter().find(|t| t.id.as_deref() == Some(item.name.as_str()));
    // Viewing history: another event table of the same user and item ids, without ratings.
    if let Some(v) = tables.iter().find(|t| {
        t.name != ratings.name && is_event_table(t) && t.column(&user.name).is_some() && t.column(&item.name).is_some()
    }) {
        writeln!(out.text, "viewing = {}   # watched titles are not recommended again", quote(&v.name)).ok();
    }
    match titles {
        Some(t) => {
            let name = t
                .columns
                .iter()
                .find(|c| {
                    let l = c.name.to_ascii_lowercase();
                    matches!(c.role, Role::Text | Role::Categorical)
                        && (l.contains("title") || l.contains("name"))
                        && !c.id_like
                })
                .map(|c| c.name.clone());
            let features: Vec<&str> = t
                .columns
                .iter()
                .filter(|c| {
                    Some(&c.name) != name.as_ref()
                        && !c.id_like
                        && (matches!(c.role, Role::List | Role::Text)
                            || (c.role == Role::Categorical && c.distinct < c.non_empty))
                })
                .map(|c| c.name.as_str())
                .collect();
            if features.is_empty() {
                writeln!(out.text, "# {} has no attribute columns: similar titles come from co-ratings", t.name).ok();
            } else {
                writeln!(out.text, "titles = {}\ntitle_id = {}", quote(&t.name), quote(&item.name)).ok();
                if let Some(n) = &name {
                    writeln!(out.text, "title_name = {}", quote(n)).ok();
                }
                writeln!(out.text, "title_features = {}", list(&features)).ok();
            }
        }
        None => {
            writeln!(out.text, "# no titles table (one row per `{}`): similar titles come from co-ratings", item.name)
                .ok();
        }
    }
    out.text.push('\n');
}

fn sentiment_section(tables: &[Table], out: &mut Writer) {
    let Some((t, text, label)) = tables.iter().find_map(|t| {
        let text = t.columns.iter().find(|c| c.role == Role::Text)?;
        let label = t.columns.iter().find(|c| {
            let l = c.name.to_ascii_lowercase();
            ["label", "sentiment", "polarity", "class"].contains(&l.as_str()) && (2..=3).contains(&c.distinct)
        })?;
        Some((t, text, label))
    }) else {
        return;
    };
    let pick = |words: &[&str]| label.values.iter().find(|v| words.contains(&v.to_ascii_lowercase().as_str())).cloned();
    let (Some(pos), Some(neg)) =
        (pick(&["positive", "pos", "1", "true", "good"]), pick(&["negative", "neg", "0", "false", "bad"]))
    else {
        out.question(format!(
            "which values of `{}.{}` are positive and negative ({})? Add a [sentiment] section (see docs/spec.md).",
            t.name,
            label.name,
            label.values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
        ));
        return;
    };
    writeln!(
        out.text,
        "# What do people say, and where is it headed? Sentiment of {}.{}.\n[sentiment]\ntable = {}\ntext = {}\nlabel = {}\npositive = {}\nnegative = {}",
        t.name,
        text.name,
        quote(&t.name),
        quote(&text.name),
        quote(&label.name),
        quote(&pos),
        quote(&neg)
    )
    .ok();
    if let Some(ts) = t.columns.iter().find(|c| c.role == Role::Timestamp) {
        writeln!(out.text, "timestamp = {}", quote(&ts.name)).ok();
        // Foreign ids name what people talk about (title_id -> title).
        let entities: Vec<String> = t
            .ids()
            .filter(|c| Some(&c.name) != t.id.as_ref() && c.role == Role::Categorical)
            .map(|c| {
                let kind = slug(c.name.trim_end_matches("_id").trim_end_matches("ID").trim_end_matches("Id"));
                format!("{kind} = {}", quote(&c.name))
            })
            .collect();
        if entities.is_empty() {
            out.question(format!(
                "which columns of {} name what the posts are about (titles, brands, talent)? Set sentiment.entities for trending per entity.",
                t.name
            ));
        } else {
            writeln!(
                out.text,
                "entities = {{ {} }}   # trending per entity; add brands or talent columns",
                entities.join(", ")
            )
            .ok();
        }
    }
    out.text.push('\n');
}

/// The first column of `t` whose name contains one of `words`.
fn named<'a>(t: &'a Table, words: &[&str]) -> Option<&'a Column> {
    t.columns.iter().find(|c| {
        let l = c.name.to_ascii_lowercase();
        words.iter().any(|w| l.contains(w))
    })
}

/// `[ads]` from an impressions log: a table with the logging policy's propensity, found by its
/// name (`propensity`, `pscore`), a 0/1 engagement column, the ad shown and the break slot.
fn ads_section(tables: &[Table], out: &mut Writer) {
    let Some((t, propensity)) = tables.iter().find_map(|t| {
        let p = named(t, &["propensity", "pscore"]).filter(|c| c.role == Role::Numeric)?;
        Some((t, p))
    }) else {
        return;
    };
    let engaged = t.columns.iter().find(|c| {
        c.name != propensity.name
            && c.role == Role::Numeric
            && c.distinct == 2
            && c.values.iter().all(|v| v == "0" || v == "1")
    });
    let ad = t.columns.iter().find(|c| {
        ["ad", "ad_id", "adid", "creative", "creative_id", "item_id"].contains(&c.name.to_ascii_lowercase().as_str())
    });
    let slot = named(t, &["slot", "position", "break"]);
    let (Some(engaged), Some(ad), Some(slot)) = (engaged, ad, slot) else {
        out.question(format!(
            "{} looks like an impressions log (its `{}` is a logged propensity): which columns are the ad shown, \
             the break slot and the 0/1 engagement? Add an [ads] section (see docs/spec.md).",
            t.name, propensity.name
        ));
        return;
    };
    let roles = [&propensity.name, &engaged.name, &ad.name, &slot.name];
    // Context: the viewer and content attributes (not ids, not the roles above).
    let context: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.role == Role::Categorical && !c.id_like && !roles.contains(&&c.name) && c.distinct <= 1000)
        .map(|c| c.name.as_str())
        .collect();
    writeln!(
        out.text,
        "# Which ads should play mid-roll, for which viewers? Learned from the impressions log {}.\n[ads]\ntable = {}\nad = {}\nslot = {}\nengaged = {}\npropensity = {}\ncontext = {}",
        t.name,
        quote(&t.name),
        quote(&ad.name),
        quote(&slot.name),
        quote(&engaged.name),
        quote(&propensity.name),
        list(&context)
    )
    .ok();
    if let Some(title) =
        t.ids().find(|c| ["title", "content", "video"].iter().any(|w| c.name.to_ascii_lowercase().contains(w)))
    {
        writeln!(out.text, "title = {}", quote(&title.name)).ok();
    }
    if let Some(segment) = named(t, &["segment"]).filter(|c| c.role == Role::Categorical) {
        writeln!(out.text, "segment = {}", quote(&segment.name)).ok();
    }
    // An ad catalog: another table whose id is the ad column.
    if let Some(catalog) = tables.iter().find(|o| o.name != t.name && o.id.as_deref() == Some(ad.name.as_str())) {
        let of = |role: Role| -> Vec<&str> {
            catalog.columns.iter().filter(|c| c.role == role && !c.id_like).map(|c| c.name.as_str()).collect()
        };
        writeln!(
            out.text,
            "ad_table = {}\nad_id = {}\nad_features = {}\nad_numeric = {}",
            quote(&catalog.name),
            quote(&ad.name),
            list(&of(Role::Categorical)),
            list(&of(Role::Numeric))
        )
        .ok();
    }
    out.text.push('\n');
}

fn slug(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 't');
    }
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(names: &[&str]) -> String {
    format!("[{}]", names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::UseCase;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }

    #[test]
    fn roles_come_from_values_and_names() {
        let col = |name: &str, v: &[&str]| {
            let mut st = Stats::new(id_like(name));
            for (i, x) in v.iter().enumerate() {
                st.push(x, Some(i));
            }
            column_of(name, st)
        };
        assert_eq!(col("age", &["31", "40", ""]).role, Role::Numeric);
        assert!(col("age", &["31", "40", ""]).optional);
        assert_eq!(col("customer_id", &["1", "2"]).role, Role::Categorical);
        assert!(col("customer_id", &["1", "2"]).unique && !col("customer_id", &["1", "1"]).unique);
        assert_eq!(col("signup", &["2024-01-02", "2023-12-31"]).role, Role::Timestamp);
        assert_eq!(col("timestamp", &["881250949", "891717742"]).role, Role::Timestamp);
        assert_eq!(col("genres", &["Drama|Comedy", "Drama"]).role, Role::List);
        assert_eq!(col("review", &["a film that never finds its feet at all"]).role, Role::Text);
        assert_eq!(col("churn", &["0", "1"]).role, Role::Categorical, "a label is categorical");
    }

    #[test]
    fn an_ambiguous_label_is_a_question_not_a_guess() {
        let dir = tempfile::tempdir().unwrap();
        let rows: String =
            (0..60).map(|i| format!("c{i},{},{}\n", i * 3 % 17, if i % 3 == 0 { "A" } else { "B" })).collect();
        write(dir.path(), &[("customers.csv", &format!("customer_id,visits,churn\n{rows}"))]);
        let err = draft_spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("which value of `customers.churn` means the customer churned"), "{err}");
        // With a yes/no label the same table drafts churn.
        let rows: String =
            (0..60).map(|i| format!("c{i},{},{}\n", i * 3 % 17, if i % 3 == 0 { "yes" } else { "no" })).collect();
        write(dir.path(), &[("customers.csv", &format!("customer_id,visits,churn\n{rows}"))]);
        let d = draft_spec(dir.path()).unwrap();
        assert_eq!(d.spec.use_cases(), [UseCase::Churn]);
        assert_eq!(d.spec.churn.as_ref().unwrap().positive, "yes");
        assert!(d.questions.is_empty());
    }

    #[test]
    fn ratings_only_files_draft_recommend_without_titles() {
        let dir = tempfile::tempdir().unwrap();
        let rows: String =
            (0..300).map(|i| format!("{},{},{},{}\n", i % 30, i % 17, 1 + i % 5, 881250949 + i)).collect();
        write(dir.path(), &[("ratings.csv", &format!("user_id,item_id,rating,timestamp\n{rows}"))]);
        let d = draft_spec(dir.path()).unwrap();
        let r = d.spec.recommend.as_ref().unwrap();
        assert_eq!((r.user.as_str(), r.item.as_str(), r.rating.as_str()), ("user_id", "item_id", "rating"));
        assert_eq!(r.titles, None);
    }

    #[test]
    fn a_folder_of_parts_is_one_table_read_across_its_parts() {
        let dir = tempfile::tempdir().unwrap();
        let parts = dir.path().join("ratings");
        std::fs::create_dir(&parts).unwrap();
        let header = "user_id,item_id,rating,timestamp\n";
        let rows = |from: usize| -> String {
            (from..from + 150).map(|i| format!("{},{},{},{}\n", i % 30, i % 17, 1 + i % 5, 881250949 + i)).collect()
        };
        write(
            &parts,
            &[("part-0.csv", &format!("{header}{}", rows(0))), ("part-1.csv", &format!("{header}{}", rows(150)))],
        );
        write(&parts, &[("_SUCCESS", "")]);
        let d = draft_spec(dir.path()).unwrap();
        assert_eq!(d.spec.tables["ratings"].file, "ratings/");
        assert!(d.spec.recommend.is_some(), "{}", d.toml);
        let table = read_table(&parts, &part_files(&parts).unwrap()).unwrap();
        assert_eq!(table.rows, 300, "both parts read, the marker not");

        // A folder of different tables is skipped, and said so.
        write(&parts, &[("part-2.csv", "user,item,rating,timestamp\n1,2,3,4\n")]);
        let e = draft_spec(dir.path()).unwrap_err().to_string();
        assert!(e.contains("skipped ratings/ (its files have different headers"), "{e}");
        let e = read_table(&parts, &part_files(&parts).unwrap()).err().unwrap().to_string();
        assert!(e.contains("part-2.csv:1: the header differs"), "{e}");
    }
}

#[cfg(test)]
mod sorted_tests {
    use super::*;

    #[test]
    fn a_file_sorted_by_its_label_still_shows_both_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("text,label\n");
        for i in 0..6_000 {
            let label = u8::from(i < 3_000);
            text.push_str(&format!("\"a review number {i} that says something about the film\",{label}\n"));
        }
        std::fs::write(dir.path().join("reviews.csv"), text).unwrap();
        let d = draft_spec(dir.path()).unwrap();
        let s = d.spec.sentiment.as_ref().expect("sentiment");
        assert_eq!((s.positive.as_str(), s.negative.as_str()), ("1", "0"));
    }

    #[test]
    fn an_impressions_log_with_propensities_drafts_ads_with_its_ad_catalog() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in marquee_demo::generate(&marquee_demo::DemoConfig { customers: 400, seed: 3 }) {
            if name.ends_with(".csv") {
                std::fs::write(dir.path().join(name), bytes).unwrap();
            }
        }
        let d = draft_spec(dir.path()).unwrap();
        let ads = d.spec.ads.as_ref().unwrap_or_else(|| panic!("no [ads]: {}", d.toml));
        let got =
            (ads.table.as_str(), ads.ad.as_str(), ads.slot.as_str(), ads.engaged.as_str(), ads.propensity.as_str());
        assert_eq!(got, ("impressions", "ad_id", "slot", "engaged", "propensity"), "{}", d.toml);
        assert_eq!((ads.title.as_deref(), ads.segment.as_deref()), (Some("title_id"), Some("viewer_segment")));
        let mut context = ads.context.clone();
        context.sort();
        assert_eq!(context, ["device", "genre", "viewer_segment"], "{}", d.toml);
        assert_eq!((ads.ad_table.as_deref(), ads.ad_id.as_deref()), (Some("ads"), Some("ad_id")));
        assert_eq!(
            (ads.ad_features.as_slice(), ads.ad_numeric.as_slice()),
            (&["category".to_string()][..], &["length_seconds".to_string()][..])
        );
    }

    #[test]
    fn a_log_with_a_propensity_but_no_ad_column_is_a_question() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = String::from("impression_id,viewer,shown,clicked,propensity\n");
        for i in 0..300 {
            log.push_str(&format!("i{i},v{},x{},{},0.{}\n", i % 40, i % 3, i % 2, 1 + i % 8));
        }
        std::fs::write(dir.path().join("log.csv"), &log).unwrap();
        let err = draft_spec(dir.path()).unwrap_err().to_string();
        assert!(err.contains("log looks like an impressions log") && err.contains("`propensity`"), "{err}");
    }
}
