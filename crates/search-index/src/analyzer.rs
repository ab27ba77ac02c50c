//! The text analyzer shared by indexing and queries.
//!
//! Words in alphabetic scripts become one token each; runs of Chinese, Japanese or Korean
//! characters become overlapping character bigrams (as Elasticsearch's `cjk` analyzer does), so
//! a two-character query finds the word inside longer text without any dictionary, and a longer
//! query becomes a phrase of consecutive bigrams. Full-width Latin letters and digits are folded
//! to their ASCII forms before splitting; then tokens are lower-cased, accents are folded
//! (`café` matches `cafe`) and English words are stemmed (`deploying` matches `deployed`).
//!
//! A second analyzer, [`unigram_analyzer`], keeps only the CJK characters, each alone: a
//! one-character query (`会`, `회`, `数`) cannot be answered from bigrams, so the index keeps
//! these in a field of their own, queried only for such queries.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer, Token,
    TokenStream, Tokenizer,
};

/// The name the analyzer is registered under in every index.
pub const ANALYZER: &str = "concord";
/// The name the CJK unigram analyzer is registered under.
pub const UNIGRAMS: &str = "concord_cjk_unigrams";

/// The analyzer: script-aware splitting, width and case folding, accents, English stems.
pub fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(ScriptTokenizer)
        .filter(RemoveLongFilter::limit(64))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Each CJK character of a text as a token of its own (width-folded); nothing else.
pub fn unigram_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CjkUnigramTokenizer).build()
}

/// Whether an analyzed term is one CJK character (which only the unigram field can find
/// inside longer runs).
pub fn is_single_cjk(term: &str) -> bool {
    let mut chars = term.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if is_cjk(c))
}

/// The analyzed terms of `text`, in order.
pub fn terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// Whether `c` is written in a script without spaces between words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x11FF        // Hangul Jamo
        | 0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3130..=0x318F      // Hangul compatibility Jamo
        | 0x31F0..=0x31FF      // Katakana extensions
        | 0x3400..=0x4DBF      // CJK extension A
        | 0x4E00..=0x9FFF      // CJK unified ideographs
        | 0xAC00..=0xD7AF      // Hangul syllables
        | 0xF900..=0xFAFF      // CJK compatibility ideographs
        | 0xFF66..=0xFF9F      // half-width Katakana
        | 0x20000..=0x2FA1F) // CJK extensions B and later
}

/// Full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space become ASCII.
fn fold_width(c: char) -> char {
    match c as u32 {
        0xFF01..=0xFF5E => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        0x3000 => ' ',
        _ => c,
    }
}

/// Splits text into words and CJK bigrams.
#[derive(Clone, Default)]
pub struct ScriptTokenizer;

/// The tokens of one text, computed up front.
pub struct VecTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

fn push(tokens: &mut Vec<Token>, from: usize, to: usize, text: String) {
    let position = tokens.len();
    tokens.push(Token {
        offset_from: from,
        offset_to: to,
        position,
        text,
        position_length: 1,
    });
}

fn flush_cjk(tokens: &mut Vec<Token>, run: &mut Vec<(usize, usize, char)>) {
    match run.len() {
        0 => {}
        1 => {
            let (from, to, c) = run[0];
            push(tokens, from, to, c.to_string());
        }
        _ => {
            for pair in run.windows(2) {
                let text: String = [pair[0].2, pair[1].2].iter().collect();
                push(tokens, pair[0].0, pair[1].1, text);
            }
        }
    }
    run.clear();
}

fn flush_word(tokens: &mut Vec<Token>, word: &mut String, start: &mut Option<(usize, usize)>) {
    if let Some((from, to)) = start.take() {
        push(tokens, from, to, std::mem::take(word));
    }
}

/// Emits every CJK character alone.
#[derive(Clone, Default)]
pub struct CjkUnigramTokenizer;

impl Tokenizer for CjkUnigramTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        for (at, raw) in text.char_indices() {
            let c = fold_width(raw);
            if is_cjk(c) {
                push(&mut tokens, at, at + raw.len_utf8(), c.to_string());
            }
        }
        VecTokenStream { tokens, next: 0 }
    }
}

impl Tokenizer for ScriptTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        let mut run: Vec<(usize, usize, char)> = Vec::new();
        let mut word = String::new();
        let mut span: Option<(usize, usize)> = None;
        for (at, raw) in text.char_indices() {
            let end = at + raw.len_utf8();
            let c = fold_width(raw);
            if is_cjk(c) {
                flush_word(&mut tokens, &mut word, &mut span);
                run.push((at, end, c));
            } else if c.is_alphanumeric() {
                flush_cjk(&mut tokens, &mut run);
                word.push(c);
                span = Some((span.map_or(at, |s| s.0), end));
            } else {
                flush_word(&mut tokens, &mut word, &mut span);
                flush_cjk(&mut tokens, &mut run);
            }
        }
        flush_word(&mut tokens, &mut word, &mut span);
        flush_cjk(&mut tokens, &mut run);
        VecTokenStream { tokens, next: 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_single_cjk, terms, unigram_analyzer};
    use tantivy::tokenizer::TokenStream;

    #[test]
    fn english_is_stemmed_and_folded() {
        assert_eq!(terms("Deploying the CAFÉ"), terms("deployed the cafe"));
        assert_eq!(terms("ＲＥＬＥＡＳＥ ２"), terms("release 2"));
        assert_eq!(terms("naïve Ångström"), terms("naive angstrom"));
    }

    #[test]
    fn cjk_runs_become_bigrams() {
        assert_eq!(terms("회의실에서"), ["회의", "의실", "실에", "에서"]);
        assert_eq!(terms("東京"), ["東京"]);
        assert_eq!(terms("deploy東京都ok"), ["deploy", "東京", "京都", "ok"]);
        assert_eq!(terms("の"), ["の"]);
    }

    #[test]
    fn unigrams_keep_only_cjk_characters() {
        let mut a = unigram_analyzer();
        let mut stream = a.token_stream("deploy 東京都, 회의 ok");
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        assert_eq!(out, ["東", "京", "都", "회", "의"]);
        assert!(is_single_cjk("会") && !is_single_cjk("会議") && !is_single_cjk("a"));
    }
}
