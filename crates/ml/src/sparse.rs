//! Compressed sparse row matrix used for text features (TF-IDF) and content similarity.

use serde::{Deserialize, Serialize};

/// CSR matrix of f32 values. Row `i` holds `indices[indptr[i]..indptr[i+1]]` (sorted, unique
/// column ids) with the matching `data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CsrMatrix {
    pub n_cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub data: Vec<f32>,
}

impl CsrMatrix {
    pub fn new(n_cols: usize) -> Self {
        Self { n_cols, indptr: vec![0], indices: Vec::new(), data: Vec::new() }
    }
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }
    /// Append a row; `entries` need not be sorted but column ids must be unique and < n_cols.
    #[allow(clippy::ptr_arg)] // public signature shared with other crates; a slice would do.
    pub fn push_row(&mut self, entries: &mut Vec<(u32, f32)>) {
        entries.sort_unstable_by_key(|e| e.0);
        for &(c, v) in entries.iter() {
            debug_assert!((c as usize) < self.n_cols);
            self.indices.push(c);
            self.data.push(v);
        }
        self.indptr.push(self.indices.len());
    }
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.data[a..b])
    }
    /// Rows selected by index, in the given order.
    pub fn select_rows(&self, rows: &[usize]) -> CsrMatrix {
        let mut out = CsrMatrix::new(self.n_cols);
        for &r in rows {
            let (idx, val) = self.row(r);
            out.indices.extend_from_slice(idx);
            out.data.extend_from_slice(val);
            out.indptr.push(out.indices.len());
        }
        out
    }
    /// Dot product of row `i` with a dense vector.
    pub fn row_dot(&self, i: usize, w: &[f32]) -> f32 {
        let (idx, val) = self.row(i);
        idx.iter().zip(val).map(|(&c, &v)| v * w[c as usize]).sum()
    }
}

impl CsrMatrix {
    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    /// Scales every row to unit L2 norm in place (all-zero rows stay zero), so that dot products
    /// become cosine similarities.
    pub fn l2_normalize_rows(&mut self) {
        for i in 0..self.n_rows() {
            let (a, b) = (self.indptr[i], self.indptr[i + 1]);
            let row = &mut self.data[a..b];
            let norm = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>().sqrt();
            if norm > 0.0 {
                let inv = (1.0 / norm) as f32;
                row.iter_mut().for_each(|v| *v *= inv);
            }
        }
    }

    /// The transpose (equivalently, this matrix in CSC form): row `j` of the result lists the
    /// rows of `self` that have column `j`, in increasing order. Used for inverted indexes.
    pub fn transpose(&self) -> CsrMatrix {
        let n_rows = self.n_rows();
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for j in 0..self.n_cols {
            counts[j + 1] += counts[j];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.nnz()];
        let mut data = vec![0f32; self.nnz()];
        for i in 0..n_rows {
            let (idx, val) = self.row(i);
            for (&c, &v) in idx.iter().zip(val) {
                let pos = &mut next[c as usize];
                indices[*pos] = i as u32;
                data[*pos] = v;
                *pos += 1;
            }
        }
        CsrMatrix { n_cols: n_rows, indptr, indices, data }
    }

    /// Checks the structural invariants (monotone `indptr`, sorted unique in-range columns,
    /// finite values); useful before trusting a matrix that came from outside.
    pub fn validate(&self) -> crate::Result<()> {
        let bad = |m: String| Err(crate::MlError::InvalidInput(m));
        if self.indptr.first() != Some(&0) {
            return bad("CSR indptr must start with 0".into());
        }
        if self.indptr.last() != Some(&self.indices.len()) || self.indices.len() != self.data.len() {
            return bad("CSR indptr, indices and data lengths disagree".into());
        }
        for i in 0..self.n_rows() {
            if self.indptr[i] > self.indptr[i + 1] {
                return bad(format!("CSR indptr decreases at row {i}"));
            }
            let (idx, val) = self.row(i);
            if idx.windows(2).any(|w| w[0] >= w[1]) {
                return bad(format!("CSR row {i} has unsorted or duplicate columns"));
            }
            if idx.last().is_some_and(|&c| c as usize >= self.n_cols) {
                return bad(format!("CSR row {i} has a column >= n_cols ({})", self.n_cols));
            }
            if val.iter().any(|v| !v.is_finite()) {
                return bad(format!("CSR row {i} has a non-finite value"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> CsrMatrix {
        // [[0, 2, 0, 1],
        //  [0, 0, 0, 0],
        //  [3, 0, 4, 0]]
        let mut m = CsrMatrix::new(4);
        m.push_row(&mut vec![(3, 1.0), (1, 2.0)]);
        m.push_row(&mut vec![]);
        m.push_row(&mut vec![(2, 4.0), (0, 3.0)]);
        m
    }

    #[test]
    fn sparse_push_row_sorts_and_rows_read_back() {
        let m = example();
        assert_eq!(m.n_rows(), 3);
        assert_eq!(m.nnz(), 4);
        assert_eq!(m.row(0), (&[1u32, 3][..], &[2.0f32, 1.0][..]));
        assert_eq!(m.row(1), (&[][..], &[][..]));
        assert_eq!(m.row(2), (&[0u32, 2][..], &[3.0f32, 4.0][..]));
        assert!(m.validate().is_ok());
    }

    #[test]
    fn sparse_select_rows_and_row_dot() {
        let m = example();
        let s = m.select_rows(&[2, 0, 2]);
        assert_eq!(s.n_rows(), 3);
        assert_eq!(s.row(0), m.row(2));
        assert_eq!(s.row(1), m.row(0));
        assert_eq!(s.row(2), m.row(2));
        let w = [1.0, 10.0, 100.0, 1000.0];
        assert_eq!(m.row_dot(0, &w), 1020.0);
        assert_eq!(m.row_dot(1, &w), 0.0);
        assert_eq!(m.row_dot(2, &w), 403.0);
    }

    #[test]
    fn sparse_l2_normalize_rows_keeps_zero_rows() {
        let mut m = example();
        m.l2_normalize_rows();
        assert_eq!(m.row(2).1, &[0.6, 0.8]);
        assert!(m.row(1).1.is_empty());
        let n0: f32 = m.row(0).1.iter().map(|v| v * v).sum();
        assert!((n0 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn sparse_transpose_round_trips() {
        let m = example();
        let t = m.transpose();
        assert_eq!(t.n_rows(), 4);
        assert_eq!(t.n_cols, 3);
        assert_eq!(t.row(0), (&[2u32][..], &[3.0f32][..]));
        assert_eq!(t.row(1), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(t.row(3), (&[0u32][..], &[1.0f32][..]));
        assert!(t.validate().is_ok());
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn sparse_validate_rejects_bad_structure() {
        let mut m = example();
        m.indices[0] = 9;
        assert!(m.validate().is_err());
        let mut m = example();
        m.indices.swap(0, 1);
        m.data.swap(0, 1);
        assert!(m.validate().is_err());
        let mut m = example();
        m.data[0] = f32::NAN;
        assert!(m.validate().is_err());
    }
}
