//! Character n-gram TF-IDF features ("char_wb" in scikit-learn terms): n-grams of each
//! whitespace-separated word padded with one space on both sides, so they never span two words
//! and still mark word starts and ends. They catch what word n-grams miss on short texts:
//! inflections and compounds ("unfunny", "laughably"), misspellings, punctuation ("!!", "?").

use crate::sparse::CsrMatrix;
use crate::text::{normalize, FxMap};
use crate::{MlError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharNgramParams {
    /// Shortest n-gram, in characters (the padding spaces count).
    pub min_n: usize,
    /// Longest n-gram.
    pub max_n: usize,
    /// Minimum number of documents an n-gram must occur in.
    pub min_df: usize,
    /// Use 1 + ln(tf) instead of tf.
    pub sublinear_tf: bool,
}

impl Default for CharNgramParams {
    /// The common 2..5 range; min_df 2 drops the one-off n-grams (most of the vocabulary).
    fn default() -> Self {
        Self { min_n: 2, max_n: 5, min_df: 2, sublinear_tf: true }
    }
}

/// Fitted n-gram vocabulary and smoothed idf (ln((1+n)/(1+df)) + 1); rows are L2-normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CharNgramVectorizer {
    pub params: CharNgramParams,
    pub vocabulary: HashMap<String, u32>,
    pub idf: Vec<f32>,
}

/// Calls `f` on every char n-gram (min_n..=max_n) of every padded word of normalised text.
fn for_each_ngram(text: &str, min_n: usize, max_n: usize, mut f: impl FnMut(&str)) {
    let mut padded = String::new();
    let mut bounds = Vec::new(); // byte offset of every char, plus the end
    for word in text.split_whitespace() {
        padded.clear();
        padded.push(' ');
        padded.push_str(word);
        padded.push(' ');
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let n_chars = bounds.len() - 1;
        for n in min_n..=max_n.min(n_chars) {
            for s in 0..=n_chars - n {
                f(&padded[bounds[s]..bounds[s + n]]);
            }
        }
    }
}

impl CharNgramParams {
    fn validate(&self) -> Result<()> {
        if self.min_n == 0 || self.min_n > self.max_n {
            return Err(MlError::InvalidParam {
                name: "min_n",
                reason: format!("need 1 <= min_n <= max_n, got {}..{}", self.min_n, self.max_n),
            });
        }
        Ok(())
    }

    /// Errors on an empty n-gram range or no documents.
    pub fn fit<S: AsRef<str>>(&self, docs: &[S]) -> Result<CharNgramVectorizer> {
        self.validate()?;
        if docs.is_empty() {
            return Err(MlError::InvalidInput("docs: no documents to fit a vocabulary on".into()));
        }
        // (df, last doc + 1) per n-gram; `last` counts an n-gram once per document.
        let mut df: FxMap<String, (u32, u32)> = FxMap::default();
        for (d, doc) in docs.iter().enumerate() {
            let tag = d as u32 + 1;
            for_each_ngram(&normalize(doc.as_ref()), self.min_n, self.max_n, |g| match df.get_mut(g) {
                Some(e) if e.1 != tag => *e = (e.0 + 1, tag),
                Some(_) => {}
                None => {
                    df.insert(g.to_owned(), (1, tag));
                }
            });
        }
        let min_df = self.min_df.max(1) as u32;
        let mut kept: Vec<(String, u32)> =
            df.into_iter().filter(|(_, e)| e.0 >= min_df).map(|(g, e)| (g, e.0)).collect();
        // Sorted, so ids do not depend on hash order: the vectorizer is deterministic.
        kept.sort_unstable();
        let n = docs.len() as f64;
        let idf = kept.iter().map(|(_, d)| (((1.0 + n) / (1.0 + f64::from(*d))).ln() + 1.0) as f32).collect();
        let vocabulary = kept.into_iter().enumerate().map(|(id, (g, _))| (g, id as u32)).collect();
        Ok(CharNgramVectorizer { params: self.clone(), vocabulary, idf })
    }
}

impl CharNgramVectorizer {
    pub fn n_features(&self) -> usize {
        self.idf.len()
    }

    /// TF-IDF rows, L2-normalised; n-grams outside the vocabulary are ignored.
    pub fn transform<S: AsRef<str>>(&self, docs: &[S]) -> CsrMatrix {
        // A lookup keyed by &str with the cheap hasher; built once per call.
        let lookup: FxMap<&str, u32> = self.vocabulary.iter().map(|(g, &id)| (g.as_str(), id)).collect();
        let mut out = CsrMatrix::new(self.n_features());
        let mut counts = vec![0u32; self.n_features()];
        let mut row: Vec<(u32, f32)> = Vec::new();
        let (lo, hi) = (self.params.min_n, self.params.max_n);
        for doc in docs {
            row.clear();
            for_each_ngram(&normalize(doc.as_ref()), lo, hi, |g| {
                if let Some(&id) = lookup.get(g) {
                    if counts[id as usize] == 0 {
                        row.push((id, 0.0));
                    }
                    counts[id as usize] += 1;
                }
            });
            let mut norm = 0f64;
            for e in row.iter_mut() {
                let tf = std::mem::take(&mut counts[e.0 as usize]) as f32;
                let tf = if self.params.sublinear_tf { 1.0 + tf.ln() } else { tf };
                e.1 = tf * self.idf[e.0 as usize];
                norm += f64::from(e.1).powi(2);
            }
            if norm > 0.0 {
                let inv = (1.0 / norm.sqrt()) as f32;
                row.iter_mut().for_each(|e| e.1 *= inv);
            }
            out.push_row(&mut row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(text: &str, lo: usize, hi: usize) -> Vec<String> {
        let mut out = Vec::new();
        for_each_ngram(text, lo, hi, |g| out.push(g.to_owned()));
        out
    }

    #[test]
    fn ngrams_stay_inside_padded_words() {
        assert_eq!(grams("ab c", 2, 3), vec![" a", "ab", "b ", " ab", "ab ", " c", "c ", " c "]);
        // Multi-byte characters are single characters.
        assert_eq!(grams("é", 2, 2), vec![" é", "é "]);
        assert!(grams("", 2, 5).is_empty());
    }

    #[test]
    fn fit_transform_counts_documents_and_normalises() {
        let docs = ["good fun", "good bad", "Good!"];
        let v = CharNgramParams::default().fit(&docs).unwrap();
        // " go" is in all three documents (case-folded), "fun" in one: dropped by min_df 2.
        let id = |g: &str| v.vocabulary.get(g).copied();
        assert!(id(" go").is_some() && id("fun").is_none());
        assert_eq!(v.idf[id(" go").unwrap() as usize], 1.0);
        let x = v.transform(&docs);
        for i in 0..3 {
            let norm: f32 = x.row(i).1.iter().map(|v| v * v).sum();
            assert!((norm - 1.0).abs() < 1e-5);
        }
        // Unknown text gives an empty row; fitting again gives the same vectorizer.
        assert!(v.transform(&["zzz"]).row(0).0.is_empty());
        assert_eq!(CharNgramParams::default().fit(&docs).unwrap(), v);
        let bad = CharNgramParams { min_n: 3, max_n: 2, ..CharNgramParams::default() };
        assert!(matches!(bad.fit(&docs), Err(MlError::InvalidParam { name: "min_n", .. })));
        assert!(CharNgramParams::default().fit::<&str>(&[]).is_err());
    }
}
