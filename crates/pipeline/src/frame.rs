//! A validated table in memory: columns of strings with typed accessors. Ingest has already
//! checked every declared value, so the accessors only convert.

use std::collections::HashMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Frame {
    pub headers: Vec<String>,
    pub columns: Vec<Vec<String>>,
    index: HashMap<String, usize>,
}

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
        let columns = vec![Vec::new(); headers.len()];
        Self { headers, columns, index }
    }

    pub fn push_row(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.headers.len());
        for (c, v) in self.columns.iter_mut().zip(row) {
            c.push(v);
        }
    }

    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
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
                c.push(fields.next().unwrap_or_default().to_string());
            }
            rows += 1;
        }
        Ok(frame)
    }

    pub fn to_csv(&self) -> Vec<u8> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&self.headers).expect("writing to memory");
        for r in 0..self.n_rows() {
            w.write_record(self.columns.iter().map(|c| c[r].as_str())).expect("writing to memory");
        }
        w.into_inner().expect("writing to memory")
    }

    pub fn col(&self, name: &str) -> Result<&[String]> {
        self.index
            .get(name)
            .map(|&i| self.columns[i].as_slice())
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
            dst.extend(rows.iter().map(|&r| src[r].clone()));
        }
        Ok(out)
    }

    /// The CSV of columns `cols` of rows `rows`, written straight from this frame: the same bytes
    /// as `select(cols, rows)?.to_csv()` without copying the values first.
    pub fn csv_of(&self, cols: &[String], rows: &[usize]) -> Result<Vec<u8>> {
        let src: Vec<&[String]> = cols.iter().map(|c| self.col(c)).collect::<Result<_>>()?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(cols).expect("writing to memory");
        for &r in rows {
            w.write_record(src.iter().map(|c| c[r].as_str())).expect("writing to memory");
        }
        Ok(w.into_inner().expect("writing to memory"))
    }

    pub fn select_rows(&self, rows: &[usize]) -> Frame {
        let mut out = Frame::new(self.headers.clone());
        for (dst, src) in out.columns.iter_mut().zip(&self.columns) {
            dst.extend(rows.iter().map(|&r| src[r].clone()));
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
        f.push_row(vec!["1".into(), "hello, \"world\"\nbye".into()]);
        let back = Frame::from_csv(&f.to_csv(), "t").unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn select_and_csv_of_pick_columns_and_rows_in_the_order_given() {
        let mut f = Frame::new(vec!["a".into(), "b".into(), "c".into()]);
        for i in 0..4 {
            f.push_row(vec![format!("a{i}"), format!("b,{i}"), format!("c{i}")]);
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
        f.push_row(vec!["1.5".into()]);
        f.push_row(vec!["".into()]);
        let v = f.numeric("x").unwrap();
        assert_eq!(v[0], 1.5);
        assert!(v[1].is_nan());
        assert!(f.numeric("y").unwrap_err().to_string().contains("column `y` not found"));
    }
}
