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

fn failed(what: &str) -> impl FnOnce(tokenizers::Error) -> Error + '_ {
    move |e| Error::Format(format!("tokenizer: {what}: {e}"))
}

/// A BPE tokenizer of at most `vocab_size` ids trained on `text`, as `tokenizer.json` bytes.
pub fn train_bpe(text: &str, vocab_size: usize) -> Result<Vec<u8>> {
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
    tk.train(&mut trainer, std::iter::once(text))
        .map_err(failed("training"))?;
    let mut json = tk.to_string(true).map_err(failed("saving"))?.into_bytes();
    json.push(b'\n');
    Ok(json)
}

/// Reads `tokenizer.json` bytes.
pub fn load(json: &[u8]) -> Result<Tokenizer> {
    Tokenizer::from_bytes(json).map_err(failed("reading"))
}

/// `text` as ids of `tk`.
pub fn encode(tk: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    Ok(tk
        .encode(text, false)
        .map_err(failed("encoding"))?
        .get_ids()
        .to_vec())
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

    #[test]
    fn a_file_that_is_not_a_tokenizer_is_an_error() {
        assert!(load(b"{\"not\": \"a tokenizer\"}").is_err());
        assert!(load(b"\xff").is_err());
    }
}
