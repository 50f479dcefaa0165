//! Seeded randomness. candle's CPU RNG cannot be seeded, so every random choice (init, split,
//! batch order) comes from here, derived from the spec's seed and a purpose label: resuming
//! at step k recomputes exactly the batches an uninterrupted run would have used.

use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// An RNG for `(seed, purpose, index)`: independent streams, no shared state to checkpoint.
pub fn stream(seed: u64, purpose: &str, index: u64) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(purpose.as_bytes());
    h.update(index.to_le_bytes());
    ChaCha8Rng::from_seed(h.finalize().into())
}

/// A permutation of `0..n`.
pub fn permutation(seed: u64, purpose: &str, index: u64, n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    v.shuffle(&mut stream(seed, purpose, index));
    v
}

/// `n` values uniform in `[-bound, bound)`.
pub fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        assert_eq!(
            permutation(1, "split", 0, 50),
            permutation(1, "split", 0, 50)
        );
        assert_ne!(
            permutation(1, "split", 0, 50),
            permutation(1, "split", 1, 50)
        );
        assert_ne!(
            permutation(1, "split", 0, 50),
            permutation(2, "split", 0, 50)
        );
        let mut p = permutation(3, "x", 0, 100);
        p.sort();
        assert_eq!(p, (0..100).collect::<Vec<u32>>());
    }
}
