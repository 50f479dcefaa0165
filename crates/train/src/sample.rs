//! Text from a trained language model (characters, or a byte-level BPE): what a person reads
//! beside its loss curve to judge it. Drawn by the verifier from the weights it checked, never
//! taken from the worker, and reproducible on a given device: the prompt is held-out text from a line's
//! start, the draws come from the spec's seed (another device's logits differ in their last
//! bits, which can change a draw).

use candle_core::{Device, IndexOp, Module, Tensor};
use rand::Rng;
use serde::Serialize;

use crate::{data::Vocab, models::transformer::CharTransformer, rng, Result};

/// Characters generated after the prompt.
pub const SAMPLE_CHARS: usize = 240;
/// Characters of held-out text the model continues.
pub const PROMPT_CHARS: usize = 40;
/// Below 1 the model's likeliest characters are favoured: readable text, not its argmax loop.
pub const TEMPERATURE: f64 = 0.8;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Held-out text given to the model.
    pub prompt: String,
    /// What the model wrote after it.
    pub continuation: String,
    pub temperature: f64,
}

/// `len` tokens after `prompt`, each drawn from the model's next-character distribution at
/// `temperature` with a stream seeded by `seed`.
pub fn generate(
    model: &CharTransformer,
    prompt: &[u32],
    len: usize,
    temperature: f64,
    seed: u64,
    device: &Device,
) -> Result<Vec<u32>> {
    let context = model.config().context;
    let mut rng = rng::stream(seed, "sample", 0);
    if prompt.is_empty() {
        // Nothing to continue (an empty held-out split): no text rather than invented context.
        return Ok(Vec::new());
    }
    let mut tokens = prompt.to_vec();
    let start = tokens.len();
    for _ in 0..len {
        let window = &tokens[tokens.len().saturating_sub(context)..];
        let input = Tensor::from_slice(window, (1, window.len()), device)?;
        let logits: Vec<f32> = model.forward(&input)?.i((0, window.len() - 1))?.to_vec1()?;
        tokens.push(draw(&logits, temperature, rng.random::<f64>()));
    }
    Ok(tokens.split_off(start))
}

/// The token whose cumulative probability first passes `u` (in `[0, 1)`), in f64 so the
/// order of summation is fixed.
fn draw(logits: &[f32], temperature: f64, u: f64) -> u32 {
    let t = temperature.max(1e-3);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / t).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = u * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i as u32;
        }
        target -= w;
    }
    // Rounding left a sliver past the last weight: the last token with any weight.
    weights.iter().rposition(|w| *w > 0.0).unwrap_or(0) as u32
}

/// Tokens of a byte-level BPE given as a prompt and generated: about as many characters as
/// [`PROMPT_CHARS`] and [`SAMPLE_CHARS`] (a BPE token of English is three to four of them).
pub const PROMPT_TOKENS: usize = 12;
pub const SAMPLE_TOKENS: usize = 64;

/// The model continues the held-out text (`eval`, ids of `vocab`) from just after its first
/// line break when one comes early (within four prompts' length), else from its start: up to
/// [`PROMPT_CHARS`] characters, or [`PROMPT_TOKENS`] tokens of a trained BPE, decoded with
/// it. `None` for the poster's own token ids, which nothing here can turn back into text.
pub fn sample(
    model: &CharTransformer,
    eval: &[u32],
    vocab: &Vocab,
    seed: u64,
    device: &Device,
) -> Result<Option<Sample>> {
    // Ids back to text: the characters, or the trained BPE (read once).
    let bpe = match vocab {
        Vocab::Bpe { json, .. } => Some(crate::tokenizer::load(json)?),
        Vocab::Chars(_) => None,
        Vocab::Ids(_) => return Ok(None),
    };
    let text = |ids: &[u32]| -> Result<String> {
        match (&bpe, vocab.chars()) {
            (Some(tk), _) => crate::tokenizer::decode(tk, ids),
            (None, Some(chars)) => Ok(ids
                .iter()
                .map(|&i| chars.get(i as usize).copied().unwrap_or('\u{fffd}'))
                .collect()),
            (None, None) => Ok(String::new()),
        }
    };
    let (newline, prompt_len, len) = match (&bpe, vocab.chars()) {
        (Some(tk), _) => (
            crate::tokenizer::encode(tk, "\n")?.first().copied(),
            PROMPT_TOKENS,
            SAMPLE_TOKENS,
        ),
        (None, chars) => (
            chars
                .and_then(|c| c.iter().position(|&c| c == '\n'))
                .map(|i| i as u32),
            PROMPT_CHARS,
            SAMPLE_CHARS,
        ),
    };
    let line_start = newline
        .and_then(|nl| eval.iter().take(4 * prompt_len).position(|&t| t == nl))
        .map_or(0, |i| i + 1);
    let prompt = &eval[line_start.min(eval.len())..];
    let prompt = &prompt[..prompt.len().min(prompt_len)];
    let continuation = generate(model, prompt, len, TEMPERATURE, seed, device)?;
    Ok(Some(Sample {
        prompt: text(prompt)?,
        continuation: text(&continuation)?,
        temperature: TEMPERATURE,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_distribution_and_temperature_sharpens_it() {
        let logits = [0.0f32, (3f32).ln(), f32::NEG_INFINITY];
        // Probabilities 1/4, 3/4, 0 at temperature 1.
        assert_eq!(draw(&logits, 1.0, 0.0), 0);
        assert_eq!(draw(&logits, 1.0, 0.24), 0);
        assert_eq!(draw(&logits, 1.0, 0.26), 1);
        assert_eq!(draw(&logits, 1.0, 0.999_999), 1);
        // At temperature 0.5 the odds are 1:9, so 0.2 falls to the likelier token.
        assert_eq!(draw(&logits, 0.5, 0.2), 1);
        assert_eq!(draw(&logits, 0.5, 0.09), 0);
    }
}
