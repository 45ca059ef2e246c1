//! A validated table in memory: columns of strings with typed accessors. Ingest has already
//! checked every declared value, so the accessors only convert.

use std::collections::HashMap;
use std::fmt;
use std::ops::Index;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub headers: Vec<String>,
    pub columns: Vec<Column>,
    index: HashMap<String, usize>,
}

/// One column's values stored end to end in one buffer, with where each ends. A table of
/// millions of short values then costs its bytes plus 8 bytes a value, where a `String` per
/// value cost 24 bytes and a heap allocation each (about 56 bytes for an id or a date), and
/// freeing it returns a few large blocks instead of fragmenting the heap.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Column {
    text: String,
    ends: Vec<usize>,
}

impl Column {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, value: &str) {
        self.text.push_str(value);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`-th value; panics past the end, as slice indexing does.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub fn iter(&self) -> ColumnIter<'_> {
        ColumnIter { column: self, front: 0, back: self.len() }
    }

    /// The values as owned strings (for the few places that keep them past the frame).
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_string).collect()
    }

    /// The values as borrowed slices, for APIs that take `&[impl AsRef<str>]`.
    pub fn to_strs(&self) -> Vec<&str> {
        self.iter().collect()
    }
}

impl Index<usize> for Column {
    type Output = str;
    fn index(&self, i: usize) -> &str {
        self.get(i)
    }
}

impl fmt::Debug for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<S> for Column {
    fn from_iter<I: IntoIterator<Item = S>>(values: I) -> Self {
        let mut column = Column::new();
        values.into_iter().for_each(|v| column.push(v.as_ref()));
        column
    }
}

impl<S: AsRef<str>> Extend<S> for Column {
    fn extend<I: IntoIterator<Item = S>>(&mut self, values: I) {
        values.into_iter().for_each(|v| self.push(v.as_ref()));
    }
}

impl<S: AsRef<str>> PartialEq<[S]> for Column {
    fn eq(&self, other: &[S]) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b.as_ref())
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for Column {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for Column {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<str>, const N: usize> PartialEq<[S; N]> for &Column {
    fn eq(&self, other: &[S; N]) -> bool {
        **self == other[..]
    }
}

impl<S: AsRef<str>> PartialEq<Vec<S>> for &Column {
    fn eq(&self, other: &Vec<S>) -> bool {
        **self == other[..]
    }
}

impl<'a> IntoIterator for &'a Column {
    type Item = &'a str;
    type IntoIter = ColumnIter<'a>;
    fn into_iter(self) -> ColumnIter<'a> {
        self.iter()
    }
}

/// The values of a [`Column`] in order.
#[derive(Clone)]
pub struct ColumnIter<'a> {
    column: &'a Column,
    front: usize,
    back: usize,
}

impl<'a> Iterator for ColumnIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.column.get(self.front - 1)
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
    fn nth(&mut self, n: usize) -> Option<&'a str> {
        self.front = self.front.saturating_add(n).min(self.back);
        self.next()
    }
}

impl DoubleEndedIterator for ColumnIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.column.get(self.back)
        })
    }
}

impl ExactSizeIterator for ColumnIter<'_> {}

/// Tokens read as "missing" in any column.
pub fn is_missing(v: &str) -> bool {
    matches!(v.trim(), "" | "NA" | "N/A" | "n/a" | "null" | "NULL" | "None")
}

/// ISO date, RFC 3339 date-time, `YYYY-MM-DD HH:MM:SS`, or Unix seconds -> Unix seconds.
pub fn parse_timestamp(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S") {
        return Some(t.and_utc().timestamp());
    }
    None
}

fn csv_error(key: &str, e: csv::Error) -> Error {
    Error::Invalid(format!("reading `{key}`: {e}"))
}

impl Frame {
    pub fn new(headers: Vec<String>) -> Self {
        let index = headers.iter().enumerate().map(|(i, h)| (h.clone(), i)).collect();
        let columns = vec![Column::new(); headers.len()];
        Self { headers, columns, index }
    }

    pub fn push_row<S: AsRef<str>>(&mut self, row: impl IntoIterator<Item = S>) {
        let mut n = 0;
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.push(v.as_ref());
            n += 1;
        }
        debug_assert_eq!(n, self.headers.len());
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// Reads a CSV written by ingest or prepare. `key` names the object in errors.
    pub fn from_csv(bytes: &[u8], key: &str) -> Result<Frame> {
        let mut rdr = csv::ReaderBuilder::new().from_reader(bytes);
        let headers = Self::csv_headers(&mut rdr, key)?;
        Self::read_chunk(&mut rdr, &headers, usize::MAX, key)
    }

    /// The header row of a CSV reader (see [`Frame::read_chunk`]).
    pub fn csv_headers<R: std::io::Read>(rdr: &mut csv::Reader<R>, key: &str) -> Result<Vec<String>> {
        Ok(rdr.headers().map_err(|e| csv_error(key, e))?.iter().map(str::to_string).collect())
    }

    /// The next `max_rows` rows (fewer at the end, none past it) of a CSV written by ingest, so a
    /// table can be processed chunk by chunk without holding it whole.
    pub fn read_chunk<R: std::io::Read>(
        rdr: &mut csv::Reader<R>,
        headers: &[String],
        max_rows: usize,
        key: &str,
    ) -> Result<Frame> {
        let mut frame = Frame::new(headers.to_vec());
        let mut rec = csv::StringRecord::new();
        let mut rows = 0;
        while rows < max_rows && rdr.read_record(&mut rec).map_err(|e| csv_error(key, e))? {
            // Straight into the columns: no row vector per record. A short record (the writer
            // never makes one) pads with empty values so the columns stay equally long.
            let mut fields = rec.iter();
            for c in frame.columns.iter_mut() {
                c.push(fields.next().unwrap_or_default());
            }
            rows += 1;
        }
        Ok(frame)
    }

    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers).expect("writing to memory");
        for r in 0..self.n_rows() {
            w.write_record(self.columns.iter().map(|c| &c[r])).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }

    pub fn col(&self, name: &str) -> Result<&Column> {
        self.index
            .get(name)
            .map(|&i| &self.columns[i])
            .ok_or_else(|| Error::Invalid(format!("column `{name}` not found (have: {})", self.headers.join(", "))))
    }

    /// Numbers; missing values are NaN.
    pub fn numeric(&self, name: &str) -> Result<Vec<f64>> {
        Ok(self
            .col(name)?
            .iter()
            .map(|v| if is_missing(v) { f64::NAN } else { v.trim().parse().unwrap_or(f64::NAN) })
            .collect())
    }

    pub fn timestamps(&self, name: &str) -> Result<Vec<Option<i64>>> {
        Ok(self.col(name)?.iter().map(|v| parse_timestamp(v)).collect())
    }

    /// Multi-valued column split on `sep`, values trimmed, empties dropped.
    pub fn list(&self, name: &str, sep: &str) -> Result<Vec<Vec<String>>> {
        Ok(self
            .col(name)?
            .iter()
            .map(|v| v.split(sep).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
            .collect())
    }

    /// Columns `cols` (in that order) of rows `rows` (in that order), copied once.
    pub fn select(&self, cols: &[String], rows: &[usize]) -> Result<Frame> {
        let mut out = Frame::new(cols.to_vec());
        for (dst, name) in out.columns.iter_mut().zip(cols) {
            let src = self.col(name)?;
            dst.extend(rows.iter().map(|&r| &src[r]));
        }
        Ok(out)
    }

    /// The CSV of columns `cols` of rows `rows`, written straight from this frame: the same bytes
    /// as `select(cols, rows)?.to_csv()` without copying the values first.
    pub fn csv_of(&self, cols: &[String], rows: &[usize]) -> Result<Vec<u8>> {
        let src: Vec<&Column> = cols.iter().map(|c| self.col(c)).collect::<Result<_>>()?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(cols).expect("writing to memory");
        for &r in rows {
            w.write_record(src.iter().map(|c| &c[r])).expect("writing to memory");
        }
        Ok(w.into_inner().expect("writing to memory"))
    }

    pub fn select_rows(&self, rows: &[usize]) -> Frame {
        let mut out = Frame::new(self.headers.clone());
        for (dst, src) in out.columns.iter_mut().zip(&self.columns) {
            dst.extend(rows.iter().map(|&r| &src[r]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_keeps_quotes_and_newlines() {
        let mut f = Frame::new(vec!["id".into(), "text".into()]);
        f.push_row(["1", "hello, \"world\"\nbye"]);
        let back = Frame::from_csv(&f.to_csv(), "t").unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn select_and_csv_of_pick_columns_and_rows_in_the_order_given() {
        let mut f = Frame::new(vec!["a".into(), "b".into(), "c".into()]);
        for i in 0..4 {
            f.push_row([format!("a{i}"), format!("b,{i}"), format!("c{i}")]);
        }
        let cols = vec!["c".to_string(), "a".to_string()];
        let picked = f.select(&cols, &[3, 1]).unwrap();
        assert_eq!(picked.headers, cols);
        assert_eq!(picked.col("c").unwrap(), ["c3", "c1"]);
        assert_eq!(picked.col("a").unwrap(), ["a3", "a1"]);
        assert_eq!(f.csv_of(&cols, &[3, 1]).unwrap(), picked.to_csv());
        let quoted = f.csv_of(&["b".to_string()], &[2]).unwrap();
        assert_eq!(Frame::from_csv(&quoted, "t").unwrap().col("b").unwrap(), ["b,2"]);
        assert!(f.csv_of(&["zz".to_string()], &[0]).unwrap_err().to_string().contains("column `zz` not found"));
    }

    #[test]
    fn a_column_gives_back_every_value_in_order_empty_ones_too() {
        let values = ["C001", "", "pro, annual", "é✓", ""];
        let column: Column = values.iter().collect();
        assert_eq!(column.len(), 5);
        assert_eq!(column, values);
        assert_eq!(&column[2], "pro, annual");
        assert_eq!(column.iter().rev().collect::<Vec<_>>(), ["", "é✓", "pro, annual", "", "C001"]);
        assert_eq!(column.iter().nth(3), Some("é✓"));
        assert_eq!(column.iter().len(), 5);
        assert_eq!(column.to_vec(), values.map(String::from));
        assert_eq!(format!("{column:?}"), format!("{values:?}"));
        assert!(Column::new().is_empty() && Column::new().iter().next().is_none());
        assert_ne!(column, ["C001"]);
    }

    #[test]
    fn timestamps_in_every_supported_form() {
        assert_eq!(parse_timestamp("1970-01-02"), Some(86_400));
        assert_eq!(parse_timestamp("86400"), Some(86_400));
        assert_eq!(parse_timestamp("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(parse_timestamp("1970-01-02 00:00:01"), Some(86_401));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn numeric_missing_is_nan() {
        let mut f = Frame::new(vec!["x".into()]);
        f.push_row(["1.5"]);
        f.push_row([""]);
        let v = f.numeric("x").unwrap();
        assert_eq!(v[0], 1.5);
        assert!(v[1].is_nan());
        assert!(f.numeric("y").unwrap_err().to_string().contains("column `y` not found"));
    }
}
