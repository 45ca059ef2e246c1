//! Tokeniser: lower-cased words (apostrophes kept inside), HTML line breaks dropped, and optional
//! negation marking.

/// Lower-cases, removes HTML line breaks (`<br />`), splits on non-alphanumeric characters (keeping
/// apostrophes inside words, e.g. "don't"), drops empty tokens.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_token(&normalize(text), |t| out.push(t.to_owned()));
    out
}

/// Lower-case copy of `text` with `<br>`, `<br/>` and `<br />` replaced by a space.
pub(crate) fn normalize(text: &str) -> String {
    let lower = text.to_lowercase();
    if !lower.contains("<br") {
        return lower;
    }
    let mut out = String::with_capacity(lower.len());
    let mut rest = lower.as_str();
    while let Some(pos) = rest.find("<br") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos + 3..];
        let after = tail.trim_start_matches(' ');
        let after = after.strip_prefix('/').unwrap_or(after).trim_start_matches(' ');
        match after.strip_prefix('>') {
            Some(after_tag) => {
                out.push(' ');
                rest = after_tag;
            }
            None => {
                // Not a line-break tag (e.g. "<bracket"): keep the text as is.
                out.push_str("<br");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Calls `f` on each token of already-normalised text: maximal runs of alphanumerics and
/// apostrophes, with leading/trailing apostrophes (quotes) trimmed.
fn for_each_token(text: &str, mut f: impl FnMut(&str)) {
    let mut start = None;
    let mut emit = |s: &str| {
        let t = s.trim_matches('\'');
        if !t.is_empty() {
            f(t);
        }
    };
    for (i, c) in text.char_indices() {
        let inside = c.is_alphanumeric() || c == '\'';
        match (inside, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                emit(&text[s..i]);
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        emit(&text[s..]);
    }
}

/// Words that open a negation scope (plus any token ending in "n't").
const NEGATORS: [&str; 8] = ["not", "no", "never", "nothing", "cannot", "nor", "neither", "without"];

/// Prefix of a token inside a negation scope; `_` never occurs in a token, so marked and
/// unmarked forms cannot collide.
pub const NEGATION_PREFIX: &str = "neg_";

/// [`for_each_token`], optionally marking negation (Das & Chen 2001; Pang et al. 2002): every token
/// after a negator gets [`NEGATION_PREFIX`] until the clause ends at `. , : ; ! ?` or "but", so
/// "not good" and "good" become different unigrams (bigrams alone miss "not very good").
pub(crate) fn for_each_term(text: &str, mark_negation: bool, mut f: impl FnMut(&str)) {
    if !mark_negation {
        return for_each_token(text, f);
    }
    let mut negated = false;
    let mut marked = String::new();
    let mut end = 0; // byte offset just past the previous token
    for_each_token(text, |t| {
        // `t` borrows `text`, so its offset tells which separators preceded it.
        let start = t.as_ptr() as usize - text.as_ptr() as usize;
        if text[end..start].contains(['.', ',', ':', ';', '!', '?']) {
            negated = false;
        }
        end = start + t.len();
        if t == "but" {
            negated = false;
        }
        if negated {
            marked.clear();
            marked.push_str(NEGATION_PREFIX);
            marked.push_str(t);
            f(&marked);
        } else {
            f(t);
        }
        if NEGATORS.contains(&t) || t.ends_with("n't") {
            negated = true;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_cases() {
        assert_eq!(tokenize("Hello, World!"), vec!["hello", "world"]);
        assert_eq!(tokenize("I don't like it.<br /><br />It's BAD"), vec!["i", "don't", "like", "it", "it's", "bad"]);
        assert_eq!(tokenize("a<br/>b<br>c<BR />d"), vec!["a", "b", "c", "d"]);
        assert_eq!(tokenize("'quoted' words'' and 'tis"), vec!["quoted", "words", "and", "tis"]);
        assert_eq!(tokenize("co-writer/director 9/10 r&b"), vec!["co", "writer", "director", "9", "10", "r", "b"]);
        assert_eq!(tokenize("Café NAÏVE"), vec!["café", "naïve"]);
        assert_eq!(tokenize("x < bracket <brand>"), vec!["x", "bracket", "brand"]);
        assert!(tokenize("  ... ''' !!").is_empty());
        assert!(tokenize("").is_empty());
    }
}
