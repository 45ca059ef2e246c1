//! TF-IDF over word n-grams (up to 4), with a vocabulary fitted in parallel parts that give the
//! result of one sequential pass.

use super::tokenize::{for_each_term, normalize};
use crate::sparse::CsrMatrix;
use crate::{parallel, MlError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash (as in rustc): far cheaper than SipHash for the millions of short keys hashed while
/// building n-gram vocabularies; HashDoS resistance is irrelevant for in-process features.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Longest n-gram supported: word ids (+1) are packed 32 bits each into a `u128` key.
const MAX_NGRAM: usize = 4;
const NONE: u32 = u32::MAX;

/// Packs word ids into an exact n-gram key; `id + 1` keeps n-grams of different lengths apart.
#[inline]
fn ngram_key(ids: &[u32]) -> u128 {
    ids.iter().fold(0u128, |k, &id| (k << 32) | u128::from(id + 1))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfidfParams {
    /// 1 = unigrams, 2 = unigrams + bigrams.
    pub max_ngram: usize,
    /// Minimum number of documents a term must occur in.
    pub min_df: usize,
    /// Keep at most this many terms (highest document frequency); 0 = no limit.
    pub max_features: usize,
    /// Use 1 + ln(tf) instead of tf.
    pub sublinear_tf: bool,
    /// Prefix tokens inside a negation scope with [`NEGATION_PREFIX`] (see `for_each_term`).
    #[serde(default)]
    pub mark_negation: bool,
}

impl Default for TfidfParams {
    fn default() -> Self {
        Self { max_ngram: 2, min_df: 2, max_features: 0, sublinear_tf: true, mark_negation: false }
    }
}

/// Fitted vocabulary and smoothed idf (ln((1+n)/(1+df)) + 1); rows are L2-normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TfidfVectorizer {
    pub params: TfidfParams,
    pub vocabulary: std::collections::HashMap<String, u32>,
    pub idf: Vec<f32>,
}

/// Documents as word-id sequences over an interned word list.
struct Corpus {
    words: Vec<String>,
    tokens: Vec<u32>,
    doc_ptr: Vec<usize>,
}

impl Corpus {
    /// Tokenises `docs` and interns the words, ids by first appearance. On many documents the
    /// parts run on separate threads and are merged in order: the first part's words keep their
    /// ids, then each later part's words not seen before get the next ids in that part's own
    /// order of first appearance, which are exactly the ids of one sequential pass.
    fn build<S: AsRef<str> + Sync>(docs: &[S], mark_negation: bool, parts: usize) -> Self {
        let mut parts = in_parts(docs.len(), parts, |range| Self::build_part(&docs[range], mark_negation)).into_iter();
        let (mut corpus, mut index) = parts.next().expect("at least one part");
        for (part, _) in parts {
            let remap: Vec<u32> = part
                .words
                .into_iter()
                .map(|w| match index.get(&w) {
                    Some(&id) => id,
                    None => {
                        let id = corpus.words.len() as u32;
                        corpus.words.push(w.clone());
                        index.insert(w, id);
                        id
                    }
                })
                .collect();
            let base = corpus.tokens.len();
            corpus.tokens.extend(part.tokens.iter().map(|&t| remap[t as usize]));
            corpus.doc_ptr.extend(part.doc_ptr[1..].iter().map(|&p| base + p));
        }
        corpus
    }

    /// One part of [`Self::build`]: the part's corpus with ids of its own, and their index.
    fn build_part<S: AsRef<str>>(docs: &[S], mark_negation: bool) -> (Self, FxMap<String, u32>) {
        let mut index: FxMap<String, u32> = FxMap::default();
        let mut words = Vec::new();
        let mut tokens = Vec::new();
        let mut doc_ptr = vec![0];
        for doc in docs {
            for_each_term(&normalize(doc.as_ref()), mark_negation, |t| {
                let id = match index.get(t) {
                    Some(&id) => id,
                    None => {
                        let id = words.len() as u32;
                        index.insert(t.to_owned(), id);
                        words.push(t.to_owned());
                        id
                    }
                };
                tokens.push(id);
            });
            doc_ptr.push(tokens.len());
        }
        (Self { words, tokens, doc_ptr }, index)
    }

    fn doc(&self, d: usize) -> &[u32] {
        &self.tokens[self.doc_ptr[d]..self.doc_ptr[d + 1]]
    }
}

/// One part of `fit_corpus`'s n-gram pass: provisional ids `n_words + i` for `keys[i]` (found
/// through `ids`), the documents as provisional ids, and (df, last doc + 1) per provisional id.
struct NgramPart {
    keys: Vec<u128>,
    ids: FxMap<u128, u32>,
    terms: Vec<u32>,
    term_ptr: Vec<usize>,
    df: Vec<(u32, u32)>,
}

/// Documents from which the fit's passes over the text split over threads.
const PARALLEL_MIN_DOCS: usize = 2_000;
/// Threads for those passes at most: each part's vocabulary is merged into the first's in turn.
const MAX_PARTS: usize = 4;

/// Parts for `n` documents: one per core, at most [`MAX_PARTS`]; one below [`PARALLEL_MIN_DOCS`].
fn default_parts(n: usize) -> usize {
    if n < PARALLEL_MIN_DOCS {
        1
    } else {
        parallel::cores().clamp(1, MAX_PARTS)
    }
}

/// `f` over `parts` contiguous parts of `0..n`, each on its own thread, results in order.
fn in_parts<R: Send>(n: usize, parts: usize, f: impl Fn(std::ops::Range<usize>) -> R + Sync) -> Vec<R> {
    if parts <= 1 || n <= 1 {
        return vec![f(0..n)];
    }
    let size = n.div_ceil(parts);
    parallel::run_jobs((0..n).step_by(size).map(|start| start..(start + size).min(n)).collect(), f)
}

/// Maps word-id sequences to term ids: unigrams through a dense table, longer n-grams through
/// packed keys. Word ids are local to whoever built the lookup (fit corpus or vocabulary).
struct TermLookup {
    max_ngram: usize,
    unigram: Vec<u32>,
    ngrams: FxMap<u128, u32>,
}

impl TermLookup {
    /// Appends the term id of every n-gram of `doc` that is in the vocabulary (with repeats).
    fn terms(&self, doc: &[u32], out: &mut Vec<u32>) {
        for (pos, &w) in doc.iter().enumerate() {
            if w != NONE && self.unigram[w as usize] != NONE {
                out.push(self.unigram[w as usize]);
            }
            for n in 2..=self.max_ngram.min(pos + 1) {
                let gram = &doc[pos + 1 - n..=pos];
                if gram.contains(&NONE) {
                    break;
                }
                if let Some(&t) = self.ngrams.get(&ngram_key(gram)) {
                    out.push(t);
                }
            }
        }
    }
}

impl TfidfParams {
    fn validate(&self) -> Result<()> {
        if !(1..=MAX_NGRAM).contains(&self.max_ngram) {
            return Err(MlError::InvalidParam {
                name: "max_ngram",
                reason: format!("must be between 1 and {MAX_NGRAM}, got {}", self.max_ngram),
            });
        }
        Ok(())
    }

    /// The n-grams of documents `docs` of `corpus` (see `fit_corpus`), with ids of the part's own.
    fn ngram_part(&self, corpus: &Corpus, docs: std::ops::Range<usize>) -> NgramPart {
        let n_words = corpus.words.len();
        let mut part = NgramPart {
            keys: Vec::new(),
            ids: FxMap::default(),
            terms: Vec::with_capacity((corpus.doc_ptr[docs.end] - corpus.doc_ptr[docs.start]) * self.max_ngram),
            term_ptr: vec![0],
            df: vec![(0, 0); n_words],
        };
        let NgramPart { keys, ids, terms, term_ptr, df } = &mut part;
        for d in docs {
            let doc = corpus.doc(d);
            let tag = d as u32 + 1;
            let first = terms.len();
            for (pos, &w) in doc.iter().enumerate() {
                terms.push(w);
                for n in 2..=self.max_ngram.min(pos + 1) {
                    let key = ngram_key(&doc[pos + 1 - n..=pos]);
                    let id = *ids.entry(key).or_insert_with(|| {
                        keys.push(key);
                        df.push((0, 0));
                        (n_words + keys.len() - 1) as u32
                    });
                    terms.push(id);
                }
            }
            for &t in &terms[first..] {
                let e = &mut df[t as usize];
                if e.1 != tag {
                    *e = (e.0 + 1, tag);
                }
            }
            term_ptr.push(terms.len());
        }
        part
    }

    pub fn fit<S: AsRef<str> + Sync>(&self, docs: &[S]) -> Result<TfidfVectorizer> {
        Ok(self.fit_corpus(docs)?.0)
    }

    /// Fits and transforms in one pass over the text (tokenising once), returning the
    /// vectorizer and the L2-normalised TF-IDF rows of `docs`; same result as `fit` + `transform`.
    pub fn fit_transform<S: AsRef<str> + Sync>(&self, docs: &[S]) -> Result<(TfidfVectorizer, CsrMatrix)> {
        let (vec, terms) = self.fit_corpus(docs)?;
        let x = vec.matrix(terms.doc_ptr.len() - 1, |d, out| out.extend_from_slice(terms.doc(d)), true);
        Ok((vec, x))
    }

    /// Builds the vocabulary. Every distinct n-gram gets a provisional id on first sight (unigrams
    /// keep their word id), each document becomes a sequence of provisional ids, and the kept
    /// terms are renumbered at the end, so that `fit_transform` never hashes an n-gram twice.
    /// Returns the vectorizer and the documents as sequences of final term ids.
    fn fit_corpus<S: AsRef<str> + Sync>(&self, docs: &[S]) -> Result<(TfidfVectorizer, Corpus)> {
        self.fit_corpus_in_parts(docs, default_parts(docs.len()))
    }

    /// Every distinct term of `docs` with its document frequency, ids by first appearance
    /// (unigrams first), the passes over the text split in `parts` (the same result for any number).
    fn count_in_parts<S: AsRef<str> + Sync>(&self, docs: &[S], parts: usize) -> Result<Counted> {
        self.validate()?;
        if docs.is_empty() {
            return Err(MlError::InvalidInput("docs: no documents to fit a vocabulary on".into()));
        }
        let corpus = Corpus::build(docs, self.mark_negation, parts);
        let n_docs = docs.len();
        let n_words = corpus.words.len();

        // Provisional ids: a word's own id, or n_words + the index of its packed key in `keys`, by
        // first appearance; `df` holds (df, last doc + 1) per provisional id. Parts of the corpus
        // run on separate threads and are merged in order (as in `Corpus::build`): a later part's
        // n-grams not seen before get the next ids in their own order, the ids of one sequential
        // pass; document frequencies add up, as each document is in one part.
        let mut parts = in_parts(n_docs, parts, |docs| self.ngram_part(&corpus, docs)).into_iter();
        let NgramPart { mut keys, ids: mut gram_ids, mut terms, mut term_ptr, mut df } =
            parts.next().expect("at least one part");
        for part in parts {
            let remap: Vec<u32> = part
                .keys
                .iter()
                .zip(&part.df[n_words..])
                .map(|(&key, &(count, _))| {
                    let id = *gram_ids.entry(key).or_insert_with(|| {
                        keys.push(key);
                        df.push((0, 0));
                        (n_words + keys.len() - 1) as u32
                    });
                    df[id as usize].0 += count;
                    id
                })
                .collect();
            for (total, &(count, _)) in df.iter_mut().zip(&part.df[..n_words]) {
                total.0 += count;
            }
            let base = terms.len();
            terms.extend(
                part.terms.iter().map(|&t| if (t as usize) < n_words { t } else { remap[t as usize - n_words] }),
            );
            term_ptr.extend(part.term_ptr[1..].iter().map(|&p| base + p));
        }
        drop(gram_ids);
        Ok(Counted { words: corpus.words, keys, df: df.into_iter().map(|e| e.0).collect(), terms, term_ptr, n_docs })
    }

    /// [`Self::fit_corpus`] with the passes over the text split in `parts` (the same result for
    /// any number).
    fn fit_corpus_in_parts<S: AsRef<str> + Sync>(&self, docs: &[S], parts: usize) -> Result<(TfidfVectorizer, Corpus)> {
        let Counted { words, keys, df, mut terms, term_ptr, n_docs } = self.count_in_parts(docs, parts)?;
        let (vec, kept) = self.vectorizer(&df, n_docs, |id| term_string(&words, &keys, id));
        let mut remap = vec![NONE; df.len()];
        for (id, &t) in kept.iter().enumerate() {
            remap[t as usize] = id as u32;
        }

        // Documents as final term ids (dropped terms removed), reusing the provisional buffer.
        let mut out_ptr = vec![0];
        let mut w = 0;
        for d in 0..n_docs {
            for r in term_ptr[d]..term_ptr[d + 1] {
                let t = remap[terms[r] as usize];
                if t != NONE {
                    terms[w] = t;
                    w += 1;
                }
            }
            out_ptr.push(w);
        }
        terms.truncate(w);
        Ok((vec, Corpus { words: Vec::new(), tokens: terms, doc_ptr: out_ptr }))
    }

    /// The vectorizer over terms `0..df.len()` (ids by first appearance, unigrams first) with
    /// document frequencies `df` in `n_docs` documents: the terms `min_df` and `max_features`
    /// keep (ties at the cut by term), in id order. Also returns the kept provisional ids.
    fn vectorizer(
        &self,
        df: &[u32],
        n_docs: usize,
        term_string: impl Fn(usize) -> String,
    ) -> (TfidfVectorizer, Vec<u32>) {
        let min_df = self.min_df.max(1) as u32;
        let mut kept: Vec<u32> = (0..df.len() as u32).filter(|&t| df[t as usize] >= min_df).collect();
        if self.max_features > 0 && kept.len() > self.max_features {
            // Highest df first; only the ties at the cut need the (costly) term comparison.
            let m = self.max_features;
            kept.select_nth_unstable_by(m - 1, |&a, &b| df[b as usize].cmp(&df[a as usize]));
            let cut = df[kept[m - 1] as usize];
            let mut sure: Vec<u32> = kept.iter().copied().filter(|&t| df[t as usize] > cut).collect();
            let mut ties: Vec<(String, u32)> =
                kept.iter().filter(|&&t| df[t as usize] == cut).map(|&t| (term_string(t as usize), t)).collect();
            ties.sort_unstable();
            sure.extend(ties.into_iter().take(m - sure.len()).map(|e| e.1));
            kept = sure;
        }
        // Final ids follow first appearance (unigrams first): deterministic and cheap.
        kept.sort_unstable();

        let mut vocabulary = HashMap::with_capacity(kept.len());
        let mut idf = Vec::with_capacity(kept.len());
        let n = n_docs as f64;
        for (id, &t) in kept.iter().enumerate() {
            idf.push((((1.0 + n) / (1.0 + f64::from(df[t as usize]))).ln() + 1.0) as f32);
            vocabulary.insert(term_string(t as usize), id as u32);
        }
        (TfidfVectorizer { params: self.clone(), vocabulary, idf }, kept)
    }

    /// The document frequencies of one partition of a corpus, to be counted where the partition
    /// lives and merged with [`TfidfParams::from_frequencies`] (a map-reduce fit of the vocabulary).
    pub fn document_frequencies<S: AsRef<str> + Sync>(&self, docs: &[S]) -> Result<DocumentFrequencies> {
        if docs.is_empty() {
            self.validate()?;
            return Ok(DocumentFrequencies { docs: 0, unigrams: Vec::new(), ngrams: Vec::new() });
        }
        let counted = self.count_in_parts(docs, default_parts(docs.len()))?;
        let n_words = counted.words.len();
        let term = |id: usize| (term_string(&counted.words, &counted.keys, id), counted.df[id]);
        Ok(DocumentFrequencies {
            docs: counted.n_docs,
            unigrams: (0..n_words).map(term).collect(),
            ngrams: (n_words..counted.df.len()).map(term).collect(),
        })
    }

    /// The vectorizer [`TfidfParams::fit`] gives on the documents of `parts` in that order, from
    /// their [`DocumentFrequencies`] alone: the same vocabulary, ids and idf.
    pub fn from_frequencies(&self, parts: &[DocumentFrequencies]) -> Result<TfidfVectorizer> {
        self.validate()?;
        let n_docs: usize = parts.iter().map(|p| p.docs).sum();
        if n_docs == 0 {
            return Err(MlError::InvalidInput("docs: no documents to fit a vocabulary on".into()));
        }
        // Merged in partition order, so a term's id is its first appearance in the whole corpus
        // (every unigram before every n-gram, as in one pass).
        let merge = |pick: fn(&DocumentFrequencies) -> &[(String, u32)]| {
            let mut index: HashMap<&str, usize> = HashMap::new();
            let mut merged: Vec<(&str, u32)> = Vec::new();
            for (term, df) in parts.iter().flat_map(|p| pick(p)) {
                match index.get(term.as_str()) {
                    Some(&i) => merged[i].1 += df,
                    None => {
                        index.insert(term, merged.len());
                        merged.push((term, *df));
                    }
                }
            }
            merged
        };
        let mut terms = merge(|p| &p.unigrams);
        terms.extend(merge(|p| &p.ngrams));
        let df: Vec<u32> = terms.iter().map(|t| t.1).collect();
        Ok(self.vectorizer(&df, n_docs, |id| terms[id].0.to_string()).0)
    }
}

/// Document frequencies of one partition of a corpus ([`TfidfParams::document_frequencies`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentFrequencies {
    /// Documents in the partition.
    pub docs: usize,
    /// Every word of the partition in order of first appearance, with the documents holding it.
    pub unigrams: Vec<(String, u32)>,
    /// Every n-gram (n >= 2) in order of first appearance, with the documents holding it.
    pub ngrams: Vec<(String, u32)>,
}

/// The terms of a corpus counted: interned words, packed n-gram keys, document frequency per
/// provisional id, and the documents as provisional id sequences.
struct Counted {
    words: Vec<String>,
    keys: Vec<u128>,
    df: Vec<u32>,
    terms: Vec<u32>,
    term_ptr: Vec<usize>,
    n_docs: usize,
}

/// The text of provisional term `id`: a word, or the words of a packed n-gram key.
fn term_string(words: &[String], keys: &[u128], id: usize) -> String {
    let n_words = words.len();
    if id < n_words {
        return words[id].clone();
    }
    let mut parts = Vec::with_capacity(MAX_NGRAM);
    let mut k = keys[id - n_words];
    while k != 0 {
        parts.push(words[((k & 0xffff_ffff) as u32 - 1) as usize].as_str());
        k >>= 32;
    }
    parts.reverse();
    parts.join(" ")
}

impl TfidfVectorizer {
    pub fn n_features(&self) -> usize {
        self.idf.len()
    }
    /// TF-IDF rows, L2-normalised; unknown terms are ignored.
    pub fn transform<S: AsRef<str>>(&self, docs: &[S]) -> CsrMatrix {
        let (corpus, lookup) = self.encode(docs);
        self.matrix(docs.len(), |d, out| lookup.terms(corpus.doc(d), out), true)
    }
    /// Raw term counts (no idf, no normalisation), for naive Bayes.
    pub fn transform_counts<S: AsRef<str>>(&self, docs: &[S]) -> CsrMatrix {
        let (corpus, lookup) = self.encode(docs);
        self.matrix(docs.len(), |d, out| lookup.terms(corpus.doc(d), out), false)
    }

    /// Tokenises `docs` against the vocabulary's own word list (words outside it become NONE,
    /// which also breaks any n-gram through them, as no such n-gram can be in the vocabulary).
    fn encode<S: AsRef<str>>(&self, docs: &[S]) -> (Corpus, TermLookup) {
        let mut word_ids: FxMap<&str, u32> = FxMap::default();
        let mut unigram = Vec::new();
        let mut ngrams = FxMap::default();
        let mut ids = Vec::with_capacity(MAX_NGRAM);
        for (term, &t) in &self.vocabulary {
            ids.clear();
            for w in term.split(' ') {
                let next = word_ids.len() as u32;
                let id = *word_ids.entry(w).or_insert(next);
                if id == next {
                    unigram.push(NONE);
                }
                ids.push(id);
            }
            if ids.len() == 1 {
                unigram[ids[0] as usize] = t;
            } else {
                ngrams.insert(ngram_key(&ids), t);
            }
        }
        let mut tokens = Vec::new();
        let mut doc_ptr = vec![0];
        for doc in docs {
            for_each_term(&normalize(doc.as_ref()), self.params.mark_negation, |tok| {
                tokens.push(word_ids.get(tok).copied().unwrap_or(NONE))
            });
            doc_ptr.push(tokens.len());
        }
        let lookup = TermLookup { max_ngram: self.params.max_ngram, unigram, ngrams };
        (Corpus { words: Vec::new(), tokens, doc_ptr }, lookup)
    }

    /// Builds term-frequency rows; `tfidf` applies sublinear tf (if set), idf and L2 norm.
    /// `terms_of(d, out)` appends document `d`'s term ids (with repeats).
    fn matrix(&self, n_docs: usize, mut terms_of: impl FnMut(usize, &mut Vec<u32>), tfidf: bool) -> CsrMatrix {
        let n_features = self.n_features();
        let mut out = CsrMatrix::new(n_features);
        let mut counts = vec![0u32; n_features];
        let mut terms = Vec::new();
        let mut row: Vec<(u32, f32)> = Vec::new();
        for d in 0..n_docs {
            terms.clear();
            terms_of(d, &mut terms);
            row.clear();
            for &t in &terms {
                if counts[t as usize] == 0 {
                    row.push((t, 0.0));
                }
                counts[t as usize] += 1;
            }
            for e in row.iter_mut() {
                let tf = std::mem::take(&mut counts[e.0 as usize]) as f32;
                e.1 = if !tfidf {
                    tf
                } else if self.params.sublinear_tf {
                    (1.0 + tf.ln()) * self.idf[e.0 as usize]
                } else {
                    tf * self.idf[e.0 as usize]
                };
            }
            if tfidf {
                let norm = row.iter().map(|e| f64::from(e.1) * f64::from(e.1)).sum::<f64>().sqrt();
                if norm > 0.0 {
                    let inv = (1.0 / norm) as f32;
                    row.iter_mut().for_each(|e| e.1 *= inv);
                }
            }
            out.push_row(&mut row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `n` documents of up to `max_len` words drawn from a vocabulary that grows along the corpus,
    /// so later parts bring words and n-grams of their own as well as ones seen before; every
    /// `negate_every`-th document joins its words with "not".
    fn growing_corpus(seed: u64, n: usize, max_len: usize, negate_every: usize) -> Vec<String> {
        use rand::Rng;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|d| {
                let len = rng.gen_range(0..max_len);
                let words: Vec<String> = (0..len).map(|_| format!("w{}", rng.gen_range(0..20 + d / 3))).collect();
                words.join(if d % negate_every == 0 { " not " } else { " " })
            })
            .collect()
    }

    #[test]
    fn fit_is_the_same_in_any_number_of_parts() {
        let docs = growing_corpus(9, 900, 30, 7);
        for params in [
            TfidfParams::default(),
            TfidfParams { max_ngram: 3, min_df: 1, max_features: 500, mark_negation: true, ..Default::default() },
        ] {
            let (want, want_terms) = params.fit_corpus_in_parts(&docs, 1).unwrap();
            for parts in [2, 3, 4, 7] {
                let (got, got_terms) = params.fit_corpus_in_parts(&docs, parts).unwrap();
                assert_eq!(got, want, "{parts} parts");
                assert_eq!(
                    (got_terms.tokens, got_terms.doc_ptr),
                    (want_terms.tokens.clone(), want_terms.doc_ptr.clone())
                );
            }
        }
    }

    #[test]
    fn vocabulary_from_merged_partition_frequencies_equals_the_one_pass_fit() {
        let docs = growing_corpus(11, 700, 25, 5);
        for params in [
            TfidfParams::default(),
            TfidfParams { max_ngram: 3, min_df: 1, max_features: 300, mark_negation: true, ..Default::default() },
        ] {
            let want = params.fit(&docs).unwrap();
            // Cut points include an empty partition and uneven sizes.
            for cuts in [vec![], vec![350], vec![1, 1, 200, 699], vec![100, 230, 231, 500, 640]] {
                let mut bounds = vec![0];
                bounds.extend(&cuts);
                bounds.push(docs.len());
                let parts: Vec<DocumentFrequencies> = bounds
                    .windows(2)
                    .map(|w| {
                        let df = params.document_frequencies(&docs[w[0]..w[1]]).unwrap();
                        // What a child would store and the reduce step read back.
                        serde_json::from_slice(&serde_json::to_vec(&df).unwrap()).unwrap()
                    })
                    .collect();
                assert_eq!(params.from_frequencies(&parts).unwrap(), want, "cuts {cuts:?}");
            }
        }
        assert!(TfidfParams::default().from_frequencies(&[]).is_err());
    }

    fn value(x: &CsrMatrix, row: usize, col: u32) -> f32 {
        let (idx, val) = x.row(row);
        idx.iter().position(|&c| c == col).map_or(0.0, |p| val[p])
    }

    #[test]
    fn tfidf_hand_example() {
        let docs = ["good movie", "not good", "good good fun"];
        let params =
            TfidfParams { max_ngram: 2, min_df: 1, max_features: 0, sublinear_tf: false, mark_negation: false };
        let v = params.fit(&docs).unwrap();
        // Ids follow first appearance, unigrams first.
        let terms = ["good", "movie", "not", "fun", "good movie", "not good", "good good", "good fun"];
        assert_eq!(v.n_features(), terms.len());
        for (id, t) in terms.iter().enumerate() {
            assert_eq!(v.vocabulary[*t], id as u32, "{t}");
        }
        let id = |t: &str| v.vocabulary[t];
        let idf = |df: f64| (((1.0 + 3.0) / (1.0 + df)).ln() + 1.0) as f32;
        assert!((v.idf[id("good") as usize] - 1.0).abs() < 1e-6, "'good' is in every doc");
        assert!((v.idf[id("fun") as usize] - idf(1.0)).abs() < 1e-6);

        let counts = v.transform_counts(&docs);
        assert_eq!(counts.row(2), (&[0u32, 3, 6, 7][..], &[2.0f32, 1.0, 1.0, 1.0][..]));
        assert_eq!(counts.row(1), (&[0u32, 2, 5][..], &[1.0f32, 1.0, 1.0][..]));

        let x = v.transform(&docs);
        // Doc 3: good 2*1, fun 1*idf1, "good good" idf1, "good fun" idf1, then L2-normalised.
        let raw = [("good", 2.0), ("fun", idf(1.0)), ("good good", idf(1.0)), ("good fun", idf(1.0))];
        let norm = raw.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        for (t, r) in raw {
            assert!((value(&x, 2, id(t)) - r / norm).abs() < 1e-6, "{t}");
        }
        // Sublinear tf: 1 + ln 2 for "good" in doc 3.
        let v2 = TfidfParams { sublinear_tf: true, mark_negation: false, ..params.clone() }.fit(&docs).unwrap();
        let x2 = v2.transform(&docs);
        let raw2 = [1.0 + 2f32.ln(), idf(1.0), idf(1.0), idf(1.0)];
        let norm2 = raw2.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((value(&x2, 2, id("good")) - raw2[0] / norm2).abs() < 1e-6);
        // Every row is unit length; unknown words are ignored; an empty doc is an empty row.
        let y = v.transform(&["good unknown stuff", "", "zzz"]);
        assert_eq!(y.row(0), (&[id("good")][..], &[1.0f32][..]));
        assert!(y.row(1).0.is_empty() && y.row(2).0.is_empty());
        // fit_transform matches fit + transform.
        let (v3, x3) = params.fit_transform(&docs).unwrap();
        assert_eq!(v3, v);
        assert_eq!(x3, x);
    }

    #[test]
    fn tfidf_min_df_and_max_features() {
        let docs = ["a b c", "a b", "a d", "e"];
        let v = TfidfParams { max_ngram: 1, min_df: 2, max_features: 0, sublinear_tf: true, mark_negation: false }
            .fit(&docs)
            .unwrap();
        let mut terms: Vec<_> = v.vocabulary.keys().cloned().collect();
        terms.sort();
        assert_eq!(terms, vec!["a", "b"]);
        // max_features keeps highest df, ties broken by term: a (3), then b/c/d/e... b (2).
        let v = TfidfParams { max_ngram: 2, min_df: 1, max_features: 3, sublinear_tf: true, mark_negation: false }
            .fit(&docs)
            .unwrap();
        let mut terms: Vec<_> = v.vocabulary.keys().cloned().collect();
        terms.sort();
        assert_eq!(terms, vec!["a", "a b", "b"]);
        assert!(matches!(
            TfidfParams { max_ngram: 0, ..TfidfParams::default() }.fit(&docs),
            Err(MlError::InvalidParam { name: "max_ngram", .. })
        ));
        assert!(TfidfParams::default().fit::<&str>(&[]).is_err());
        // Trigrams are supported and distinct from bigrams of the same ids.
        let v = TfidfParams { max_ngram: 3, min_df: 1, ..TfidfParams::default() }.fit(&["a a a"]).unwrap();
        let mut terms: Vec<_> = v.vocabulary.keys().cloned().collect();
        terms.sort();
        assert_eq!(terms, vec!["a", "a a", "a a a"]);
        let c = v.transform_counts(&["a a a a"]);
        assert_eq!(
            c.row(0),
            (&[v.vocabulary["a"], v.vocabulary["a a"], v.vocabulary["a a a"]][..], &[4.0f32, 3.0, 2.0][..])
        );
        // fit_transform agrees with fit + transform when max_features cuts through ties.
        let params =
            TfidfParams { max_ngram: 2, min_df: 1, max_features: 4, sublinear_tf: false, mark_negation: false };
        let (v, x) = params.fit_transform(&docs).unwrap();
        assert_eq!(v.n_features(), 4);
        assert_eq!(x, v.transform(&docs));
        assert_eq!(v, params.fit(&docs).unwrap());
    }
}
