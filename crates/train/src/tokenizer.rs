//! Byte-level BPE (GPT-2's tokenization: bytes mapped to printable characters, split by GPT-2's
//! pattern, merges learned by frequency) through Hugging Face's `tokenizers`, trained on a job's
//! training text and kept as its `tokenizer.json`, which `transformers` loads beside the
//! weights. Training is deterministic — merges are taken by count, ties by pair id, over a
//! fixed 256-byte alphabet; the same text gives the same file on any machine and thread count
//! (tested) — so a verifier rebuilds the very tokenizer the worker published.

use tokenizers::{
    models::{
        bpe::{BpeTrainerBuilder, BPE},
        TrainerWrapper,
    },
    pre_tokenizers::byte_level::ByteLevel,
    Tokenizer,
};

use crate::{Error, Result};

/// Ids of a byte-level vocabulary before any merge: one per byte.
pub const BYTE_IDS: usize = 256;
/// The longest run of characters without a space, or of spaces, in a text a BPE is trained
/// on. GPT-2's pattern makes each run (or part of one) a word, and the trainer's work on a
/// word grows with the square of its length: a megabyte of letters without a space would keep
/// a worker busy for hours. Prose has no such run; a hex or base64 blob may.
pub const MAX_RUN_CHARS: usize = 1_024;
/// The most text a BPE is trained on here (larger corpora come as `tokens`, tokenized by the
/// poster).
pub const MAX_TEXT_BYTES: usize = 64 << 20;
/// Texts are trained on and encoded in pieces of about this many bytes (ids and memory as for
/// the whole text: see [`pieces`]).
const PIECE_BYTES: usize = 1 << 20;

/// Refuses a text a BPE should not be trained on (the poster's error): too long, or with a run
/// longer than [`MAX_RUN_CHARS`].
pub fn check_text(text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::Format(format!(
            "bpe_text: {} bytes, more than the {MAX_TEXT_BYTES} a BPE is trained on here \
             (tokenize a larger corpus yourself and post it as tokens)",
            text.len()
        )));
    }
    let (mut run, mut space) = (0usize, false);
    for (at, c) in text.chars().enumerate() {
        let s = c.is_whitespace();
        run = if s == space { run + 1 } else { 1 };
        space = s;
        if run > MAX_RUN_CHARS {
            return Err(Error::Format(format!(
                "bpe_text: {} {MAX_RUN_CHARS}+ characters in a row at character {}; a BPE is \
                 trained on text whose runs are at most {MAX_RUN_CHARS}",
                if s {
                    "whitespace of"
                } else {
                    "no whitespace in"
                },
                at + 2 - run
            )));
        }
    }
    Ok(())
}

/// `text` cut into pieces of about [`PIECE_BYTES`], each ending with a line break followed by
/// something other than whitespace. GPT-2's pattern never joins such a line break to what
/// follows it, so the pieces hold exactly the words of the whole text (the same counts to train
/// on, the same ids when encoded) while the tokenizer holds one piece's offsets at a time.
pub fn pieces(text: &str) -> Vec<&str> {
    pieces_of(text, PIECE_BYTES)
}

fn pieces_of(text: &str, bytes: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + bytes).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        loop {
            let Some(nl) = text[end..].find('\n') else {
                end = text.len();
                break;
            };
            end += nl + 1;
            if text[end..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace())
            {
                break;
            }
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

fn failed(what: &str) -> impl FnOnce(tokenizers::Error) -> Error + '_ {
    move |e| Error::Format(format!("tokenizer: {what}: {e}"))
}

/// A BPE tokenizer of at most `vocab_size` ids trained on `text`, as `tokenizer.json` bytes.
pub fn train_bpe(text: &str, vocab_size: usize) -> Result<Vec<u8>> {
    train_in(text, vocab_size, PIECE_BYTES)
}

fn train_in(text: &str, vocab_size: usize, piece_bytes: usize) -> Result<Vec<u8>> {
    let mut tk = Tokenizer::new(BPE::default());
    tk.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tk.with_decoder(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(0)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    check_text(text)?;
    tk.train(&mut trainer, pieces_of(text, piece_bytes).into_iter())
        .map_err(failed("training"))?;
    let mut json = tk.to_string(true).map_err(failed("saving"))?.into_bytes();
    json.push(b'\n');
    Ok(json)
}

/// Reads `tokenizer.json` bytes.
pub fn load(json: &[u8]) -> Result<Tokenizer> {
    Tokenizer::from_bytes(json).map_err(failed("reading"))
}

/// Checks a `tokenizer.json` a poster gives (`dataset.format.tokenizer`) and returns the
/// number of ids a model over it needs (its largest id + 1). Only GPT-2's kind is taken: a
/// byte-level BPE with every byte in its vocabulary (so any text encodes, nothing dropped),
/// no normalizer, GPT-2's fixed split pattern (a pattern of the poster's could take a
/// regex engine hours), no BPE dropout (random: two runs would differ), no truncation or
/// padding (which would change the text trained on).
pub fn check_given(json: &[u8]) -> Result<usize> {
    load_given(json).map(|(_, size)| size)
}

/// [`check_given`]'s checks, and the tokenizer they read with its size.
pub fn load_given(json: &[u8]) -> Result<(Tokenizer, usize)> {
    let bad = |reason: String| Error::File {
        role: crate::spec::TOKENIZER_ROLE,
        reason,
    };
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| bad(format!("not a tokenizer.json: {e}")))?;
    let kind = |key: &str| {
        v.get(key)
            .and_then(|p| p.get("type"))
            .and_then(|t| t.as_str())
    };
    let absent = |key: &str| v.get(key).is_none_or(serde_json::Value::is_null);
    let mut problems = Vec::new();
    if kind("model") != Some("BPE") {
        problems.push("its model is not a BPE".to_string());
    }
    if !v["model"]
        .get("dropout")
        .is_none_or(serde_json::Value::is_null)
    {
        problems.push("it has BPE dropout (random tokenization)".into());
    }
    // A word prefix or suffix makes the BPE look up symbols a byte-level vocabulary does not
    // have (text silently dropped); byte fallback is for vocabularies without the bytes.
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        let set = v["model"]
            .get(key)
            .is_some_and(|p| !p.is_null() && p.as_str() != Some(""));
        if set {
            problems.push(format!("its BPE has a {key}"));
        }
    }
    if v["model"].get("byte_fallback") == Some(&serde_json::Value::Bool(true)) {
        problems.push("its BPE has byte_fallback".into());
    }
    if kind("pre_tokenizer") != Some("ByteLevel")
        || v["pre_tokenizer"].get("use_regex") == Some(&serde_json::Value::Bool(false))
    {
        problems.push("its pre-tokenizer is not GPT-2's ByteLevel split".into());
    }
    for key in ["normalizer", "truncation", "padding"] {
        if !absent(key) {
            problems.push(format!("it has a {key}"));
        }
    }
    for key in ["decoder", "post_processor"] {
        if !absent(key) && kind(key) != Some("ByteLevel") {
            problems.push(format!("its {key} is not ByteLevel"));
        }
    }
    if !problems.is_empty() {
        return Err(bad(format!(
            "only a byte-level BPE like GPT-2's is taken: {}",
            problems.join("; ")
        )));
    }
    let tk = load(json)?;
    let vocab = tk.get_vocab(true);
    let missing = ByteLevel::alphabet()
        .into_iter()
        .filter(|c| !vocab.contains_key(&c.to_string()))
        .count();
    if missing > 0 {
        return Err(bad(format!(
            "{missing} of the 256 byte symbols are not in its vocabulary (text with them would \
             be dropped)"
        )));
    }
    let size = vocab.values().max().map_or(0, |m| *m as usize + 1);
    if size > crate::spec::limits::MAX_VOCAB {
        return Err(bad(format!(
            "its ids go up to {}, more than the {} a model may have",
            size - 1,
            crate::spec::limits::MAX_VOCAB
        )));
    }
    Ok((tk, size))
}

/// `text` as ids of `tk` (checked as for training: its runs bound the encoder's work too).
pub fn encode(tk: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    encode_in(tk, text, PIECE_BYTES)
}

fn encode_in(tk: &Tokenizer, text: &str, piece_bytes: usize) -> Result<Vec<u32>> {
    check_text(text)?;
    let mut ids = Vec::new();
    for piece in pieces_of(text, piece_bytes) {
        ids.extend_from_slice(
            tk.encode(piece, false)
                .map_err(failed("encoding"))?
                .get_ids(),
        );
    }
    Ok(ids)
}

/// Ids of `tk` back to text (bytes that do not form UTF-8 are replaced).
pub fn decode(tk: &Tokenizer, ids: &[u32]) -> Result<String> {
    tk.decode(ids, false).map_err(failed("decoding"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "In the beginning God created the heaven and the earth. And the earth was \
                        without form, and void; and darkness was upon the face of the deep. ";

    #[test]
    fn the_same_text_gives_the_same_file_on_any_thread_count_and_round_trips() {
        let text = TEXT.repeat(20) + "ünïcode ✓ and a line\nbreak";
        let a = train_bpe(&text, 300).unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(pool.install(|| train_bpe(&text, 300).unwrap()), a);
        let tk = load(&a).unwrap();
        assert!(tk.get_vocab_size(false) <= 300);
        let ids = encode(&tk, &text).unwrap();
        // Merges learned: fewer ids than bytes.
        assert!(ids.len() < text.len() / 2, "{} ids", ids.len());
        assert_eq!(decode(&tk, &ids).unwrap(), text);
        // Any text encodes (a byte alphabet has no unknown symbol).
        let other = "zebra 😀 \u{0}";
        assert_eq!(decode(&tk, &encode(&tk, other).unwrap()).unwrap(), other);
    }

    /// Pieces change nothing: trained and encoded whole or in pieces, the same file and ids
    /// (texts with line breaks before words, spaces and more line breaks).
    #[test]
    fn pieces_give_the_whole_texts_words() {
        let text = (0..40_000)
            .map(|i| match i % 5 {
                0 => "a line\n".to_string(),
                1 => "  indented\n\n".to_string(),
                2 => format!("word{i} \n"),
                3 => "\n \tmixed\r\n".to_string(),
                _ => "ünï ✓\n".to_string(),
            })
            .collect::<String>();
        let parts = pieces_of(&text, 4_096);
        assert!(parts.len() > 50, "{}", parts.len());
        assert_eq!(parts.concat(), text);
        let json = train_in(&text, 320, 4_096).unwrap();
        let tk = load(&json).unwrap();
        let whole = tk.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(encode_in(&tk, &text, 4_096).unwrap(), whole);
        // Trained on the text as one sequence: the same file.
        let mut one = Tokenizer::new(BPE::default());
        one.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
        one.with_decoder(Some(ByteLevel::default()));
        let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
            .vocab_size(320)
            .min_frequency(0)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build()
            .into();
        one.train(&mut trainer, std::iter::once(text.as_str()))
            .unwrap();
        assert_eq!(
            one.to_string(true).unwrap() + "\n",
            String::from_utf8(json).unwrap()
        );
    }

    /// The review's hang: a megabyte of one letter is one GPT-2 word, whose merges take hours.
    /// Refused at once, as is a run of spaces; a run just within the bound trains.
    #[test]
    fn long_runs_and_huge_texts_are_refused() {
        let letters = "a".repeat(1 << 20);
        let err = train_bpe(&letters, 300).unwrap_err().to_string();
        assert!(
            err.contains("no whitespace") && err.contains("character 1"),
            "{err}"
        );
        let spaces = format!("word{}word", " ".repeat(MAX_RUN_CHARS + 1));
        let err = train_bpe(&spaces, 300).unwrap_err().to_string();
        assert!(
            err.contains("whitespace of") && err.contains("character 5"),
            "{err}"
        );
        let ok = format!("{} {} ", "b".repeat(MAX_RUN_CHARS), "c".repeat(10)).repeat(50);
        train_bpe(&ok, 300).unwrap();
        let huge = "word ".repeat(MAX_TEXT_BYTES / 5 + 1);
        assert!(train_bpe(&huge, 300)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
    }

    #[test]
    fn a_file_that_is_not_a_tokenizer_is_an_error() {
        assert!(load(b"{\"not\": \"a tokenizer\"}").is_err());
        assert!(load(b"\xff").is_err());
    }
}
