//! The bad-input corpus: every kind of messy export we know of, each with its exact expected
//! outcome (a clear problem naming file, line and column; or quarantined rows with every good
//! row kept). The first test counts them.

use marquee_pipeline::frame::Frame;
use marquee_pipeline::ingest::{apply_gate, ingest_table, IngestedTable};
use marquee_pipeline::spec::{QualitySection, TableSpec};

const NOW: i64 = 1_800_000_000; // 2027-01-15

fn spec() -> TableSpec {
    TableSpec {
        file: "t.csv".into(),
        id: Some("id".into()),
        numeric: vec!["rating".into(), "fee".into()],
        categorical: vec!["plan".into(), "label".into()],
        text: vec!["review".into()],
        timestamp: vec!["at".into()],
        optional: vec!["fee".into()],
        ranges: [("rating".to_string(), [1.0, 5.0])].into_iter().collect(),
        list_separator: "|".into(),
        max_future_days: Some(1.0),
        ..Default::default()
    }
}

const HEADER: &str = "id,rating,fee,plan,label,review,at";
/// Three valid rows (one with a quoted, multi-line review and an empty optional value).
const GOOD: [&str; 3] = [
    "a,4,9.99,basic,yes,great show,2025-01-01",
    "b,2,,premium,no,\"slow, then \"\"meh\"\"\nbut ok\",2025-01-02",
    "c,5,0,basic,no,loved it,1735776000",
];

fn run(bytes: &[u8]) -> IngestedTable {
    ingest_table("t", &spec(), "t.csv", bytes, &["label".to_string()], NOW)
}

/// The header, the good rows, then `extra` rows. The second good row spans two lines, so the
/// first extra row starts on line 6: lines are physical lines, as an editor shows them.
fn with_rows(extra: &[&str]) -> Vec<u8> {
    let mut s = String::from(HEADER);
    for r in GOOD.iter().chain(extra) {
        s.push('\n');
        s.push_str(r);
    }
    s.push('\n');
    s.into_bytes()
}

/// What must come out of one corpus input.
enum Expect {
    /// Rows quarantined at (line, column, reason fragment); the three good rows kept.
    Quarantined(Vec<(u64, &'static str, &'static str)>),
    /// A table-level problem containing this text.
    Problem(&'static str),
    /// Every row kept.
    Clean,
}

fn corpus() -> Vec<(&'static str, Vec<u8>, Expect)> {
    use Expect::*;
    let crlf: Vec<u8> =
        with_rows(&[]).iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
    vec![
        ("clean file", with_rows(&[]), Clean),
        (
            "extra columns are carried along",
            format!("{HEADER},extra\n{}\n", GOOD.map(|r| format!("{r},x")).join("\n")).into_bytes(),
            Clean,
        ),
        (
            "missing required column",
            b"id,rating,plan,label,review,at\na,4,basic,yes,x,2025-01-01\n".to_vec(),
            Problem("t.csv:1: column `fee`: required column missing"),
        ),
        ("duplicate header column", format!("{HEADER},plan\n").into_bytes(), Problem("column `plan` appears twice")),
        (
            "text in numeric",
            with_rows(&["d,four,1,basic,no,x,2025-01-01"]),
            Quarantined(vec![(6, "rating", "not a number")]),
        ),
        (
            "N/A in a required numeric",
            with_rows(&["d,N/A,1,basic,no,x,2025-01-01"]),
            Quarantined(vec![(6, "rating", "missing value")]),
        ),
        ("N/A in an optional numeric is missing, kept", with_rows(&["d,3,N/A,basic,no,x,2025-01-01"]), Clean),
        (
            "empty required value",
            with_rows(&["d,3,1,,no,x,2025-01-01"]),
            Quarantined(vec![(6, "plan", "missing value")]),
        ),
        ("NaN", with_rows(&["d,NaN,1,basic,no,x,2025-01-01"]), Quarantined(vec![(6, "rating", "not a finite number")])),
        ("inf", with_rows(&["d,3,inf,basic,no,x,2025-01-01"]), Quarantined(vec![(6, "fee", "not a finite number")])),
        (
            "1e400 overflows",
            with_rows(&["d,3,1e400,basic,no,x,2025-01-01"]),
            Quarantined(vec![(6, "fee", "not a finite number")]),
        ),
        ("ragged row (short)", with_rows(&["d,3,1,basic"]), Quarantined(vec![(6, "", "expected 7 fields, found 4")])),
        (
            "ragged row (long)",
            with_rows(&["d,3,1,basic,no,x,2025-01-01,zzz"]),
            Quarantined(vec![(6, "", "expected 7 fields, found 8")]),
        ),
        (
            "quoted newlines and commas",
            with_rows(&["\"d\",\"3\",\"1\",\"pro, annual\",\"no\",\"line1\nline2, more\",\"2025-01-01\""]),
            Clean,
        ),
        ("UTF-8 BOM", [&b"\xEF\xBB\xBF"[..], &with_rows(&[])].concat(), Clean),
        ("CRLF line ends", crlf, Clean),
        (
            "non-UTF-8 bytes",
            [&with_rows(&[])[..], b"d,3,1,basic,no,caf\xE9,2025-01-01\n"].concat(),
            Quarantined(vec![(6, "review", "invalid UTF-8")]),
        ),
        ("empty file", Vec::new(), Problem("t.csv:1: the file is empty")),
        ("header only", format!("{HEADER}\n").into_bytes(), Problem("only 0 good rows")),
        (
            "duplicate id",
            with_rows(&["a,3,1,basic,no,x,2025-01-01"]),
            Quarantined(vec![(6, "id", "duplicate id `a` (first seen on line 2)")]),
        ),
        (
            "ids with odd characters",
            with_rows(&["C#1/ä é 🎬,3,1,basic,no,x,2025-01-01", "\"quo\"\"te,d\",3,1,basic,no,x,2025-01-01"]),
            Clean,
        ),
        (
            "rating out of range",
            with_rows(&["d,6,1,basic,no,x,2025-01-01", "e,0.5,1,basic,no,x,2025-01-01"]),
            Quarantined(vec![(6, "rating", "out of range"), (7, "rating", "out of range")]),
        ),
        (
            "future timestamp",
            with_rows(&["d,3,1,basic,no,x,2031-01-01"]),
            Quarantined(vec![(6, "at", "in the future")]),
        ),
        (
            "unparseable timestamp",
            with_rows(&["d,3,1,basic,no,x,yesterday"]),
            Quarantined(vec![(6, "at", "not a timestamp")]),
        ),
        (
            "label with a single class",
            format!("{HEADER}\na,4,1,basic,yes,x,2025-01-01\nb,4,1,basic,yes,x,2025-01-01\n").into_bytes(),
            Problem("label has 1 class"),
        ),
        (
            "too many bad rows trip the gate",
            with_rows(&["d,x,1,basic,no,x,2025-01-01", "e,y,1,basic,no,x,2025-01-01"]),
            Problem(
                "table `t` (t.csv): 2 of 5 rows (40.00%) rejected, above max_bad_row_share 1.00%; commonest reason: \
                 not a number (2 rows); first: line 6, column `rating`",
            ),
        ),
    ]
}

#[test]
fn every_corpus_input_has_its_exact_outcome_and_loses_no_good_row() {
    let (mut tried, mut clear, mut good_lost) = (0, 0, 0);
    for (name, input, expect) in corpus() {
        tried += 1;
        let mut t = run(&input);
        // Rows are judged alone with a lenient gate; the gate entry uses the default 1%.
        let max_bad_row_share = if name.contains("gate") { 0.01 } else { 0.5 };
        apply_gate(&mut t.quality, &QualitySection { max_bad_row_share, min_rows: 1 }, t.quarantined.first());
        assert_eq!(
            t.frame.n_rows() + t.quarantined.len(),
            t.quality.rows_read,
            "{name}: every row is kept or quarantined"
        );
        match expect {
            Expect::Clean => {
                assert!(t.quarantined.is_empty(), "{name}: {:?}", t.quarantined);
                assert!(t.quality.problems.is_empty(), "{name}: {:?}", t.quality.problems);
            }
            Expect::Quarantined(rows) => {
                let got: Vec<(u64, &str)> = t.quarantined.iter().map(|q| (q.line, q.column.as_str())).collect();
                let want: Vec<(u64, &str)> = rows.iter().map(|r| (r.0, r.1)).collect();
                assert_eq!(got, want, "{name}");
                for (q, (_, _, reason)) in t.quarantined.iter().zip(&rows) {
                    assert!(q.reason.contains(reason), "{name}: {:?} lacks {reason:?}", q.reason);
                    assert_eq!(q.file, "t.csv", "{name}");
                    assert!(!q.raw.is_empty(), "{name}: the raw row is kept");
                }
                good_lost += GOOD.len().saturating_sub(t.frame.n_rows());
                assert!(t.quality.problems.is_empty(), "{name}: {:?}", t.quality.problems);
            }
            Expect::Problem(text) => {
                let all = t.quality.problems.join(" | ");
                assert!(all.contains(text), "{name}: {all}");
            }
        }
        clear += 1;
    }
    println!("bad-input corpus: {tried} inputs tried, {clear} with a clear outcome, {good_lost} good rows lost");
    assert_eq!((clear, good_lost), (tried, 0));
}

#[test]
fn odd_ids_and_quoted_text_survive_the_round_trip_exactly() {
    let t = run(&with_rows(&["\"quo\"\"te,d\",3,1,basic,no,\"a\nb\",2025-01-01"]));
    let back = Frame::from_csv(&t.frame.to_csv(), "round trip").unwrap();
    assert_eq!(&back.col("id").unwrap()[3], "quo\"te,d");
    assert_eq!(&back.col("review").unwrap()[3], "a\nb");
    assert_eq!(&back.col("review").unwrap()[1], "slow, then \"meh\"\nbut ok");
}
