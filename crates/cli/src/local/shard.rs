//! `tensorgrid shard`: a dataset too large for one file cut into shards with their index
//! (`dataset.format` `shards`): UTF-8 text tokenized by a given `tokenizer.json`, or token or
//! CIFAR files cut at whole records.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tensorgrid_artifacts::sha256_hex;
use tensorgrid_train::{
    data::shards::{Index, Shard},
    spec::limits::MAX_SHARD_BYTES,
};

use crate::output::{fields, OutputFormat, Report};

#[derive(Args)]
#[command(
    after_help = "The last shards are the end of the last input (shuffled with --shuffle): a spec's `eval_shards` holds out that many.\n\nExamples:\n  tensorgrid shard --tokenizer data/kjv-gpt2/tokenizer.json --shard-mb 0.25 --out data/kjv-tokens data/kjv-full.txt\n  tensorgrid shard --record-bytes 3073 --shard-mb 64 --out cifar data_batch_*.bin test_batch.bin"
)]
pub struct ShardArgs {
    /// Input files, in order.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Directory for the shards and `index.json` (created; it must not hold an index yet).
    #[arg(long)]
    out: PathBuf,
    /// Tokenize the inputs (UTF-8 text) with this `tokenizer.json` (a GPT-2-like byte-level
    /// BPE) and write the ids as `--dtype`.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// How an id is written with `--tokenizer`.
    #[arg(long, value_enum, default_value = "u16")]
    dtype: Dtype,
    /// Without `--tokenizer`: the bytes of one record (2 or 4 for token ids, 3073 for
    /// CIFAR-10); shards are cut at whole records.
    #[arg(long)]
    record_bytes: Option<u64>,
    /// Largest shard, in MiB.
    #[arg(long, default_value_t = 64.0)]
    shard_mb: f64,
    /// Shuffle each input's lines (with `--tokenizer`: a line is a document) or records in
    /// an order drawn from this seed before cutting, so that every shard, and every batch
    /// drawn from one, mixes the whole input (a corpus ordered by topic or source otherwise
    /// trains a shard's worth of one topic at a time).
    #[arg(long, value_name = "SEED")]
    shuffle: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy)]
enum Dtype {
    U16,
    U32,
}

/// What was written.
#[derive(serde::Serialize)]
struct Written {
    dir: String,
    /// The URI and sha256 a spec's `dataset` takes.
    uri: String,
    sha256: String,
    shards: usize,
    bytes: u64,
}

impl Report for Written {
    fn display(&self) -> String {
        format!(
            "{} shards, {} bytes, and their index in {}\n{}",
            self.shards,
            self.bytes,
            self.dir,
            fields(&[
                ("dataset.uri", self.uri.clone()),
                ("dataset.sha256", self.sha256.clone()),
            ])
        )
    }
}

pub fn run(a: ShardArgs, out: OutputFormat) -> Result<()> {
    let shuffle = a.shuffle;
    if shuffle.is_some() && a.record_bytes.is_some_and(|r| r <= 4) {
        bail!(
            "--shuffle with --record-bytes {}: that would shuffle single token ids, scrambling the text; shuffle the text's lines before tokenizing (--tokenizer ... --shuffle)",
            a.record_bytes.unwrap_or(0)
        );
    }
    let (unit, mut pending): (u64, Reader) = match (&a.tokenizer, a.record_bytes) {
        (Some(t), None) => tokenizing(t, a.dtype, shuffle)?,
        (None, Some(r)) if r > 0 => (
            r,
            Box::new(move |p: &Path| {
                let bytes = read_whole(p)?;
                Ok(match shuffle {
                    Some(seed) if (bytes.len() as u64).is_multiple_of(r) => {
                        let records: Vec<&[u8]> = bytes.chunks(r as usize).collect();
                        shuffled(seed, p, records).concat()
                    }
                    _ => bytes,
                })
            }),
        ),
        (None, _) => bail!("--record-bytes (a positive size) or --tokenizer is needed"),
        (Some(_), Some(_)) => bail!("--tokenizer writes ids: --record-bytes is not for it"),
    };
    let most = (a.shard_mb * (1 << 20) as f64)
        .min(MAX_SHARD_BYTES as f64)
        .max(0.0) as u64;
    let max = most - most % unit;
    if max == 0 {
        bail!(
            "--shard-mb {}: smaller than one record ({unit} bytes)",
            a.shard_mb
        );
    }
    let index_path = a.out.join("index.json");
    // Shards are written by name into it: nothing there may be overwritten (an input
    // included).
    if std::fs::read_dir(&a.out).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty: shard into a new directory",
            a.out.display()
        );
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut w = Writer {
        dir: a.out.clone(),
        max,
        cur: Vec::new(),
        shards: Vec::new(),
    };
    let written = (|| {
        for p in &a.inputs {
            let bytes = pending(p)?;
            if !(bytes.len() as u64).is_multiple_of(unit) {
                bail!(
                    "{}: {} bytes is not a whole number of {unit}-byte records",
                    p.display(),
                    bytes.len()
                );
            }
            w.push(&bytes)?;
        }
        w.flush()?;
        if w.shards.len() < 2 {
            bail!(
                "{} shard(s): a sharded dataset needs at least two (one to train on, one held out); make --shard-mb smaller",
                w.shards.len()
            );
        }
        Ok(())
    })();
    if let Err(e) = written {
        // Nothing half-made is left: the shards written so far go.
        for s in &w.shards {
            let _ = std::fs::remove_file(a.out.join(&s.uri));
        }
        return Err(e);
    }
    let bytes = w.shards.iter().map(|s| s.bytes).sum();
    if let Some(last) = w.shards.last().filter(|s| s.bytes < max / 2) {
        out.note(format!(
            "note: the last shard ({}, held out by `eval_shards`: 1) is {} bytes, under half the others",
            last.uri, last.bytes
        ));
    }
    let index = serde_json::to_vec_pretty(&Index {
        shards: w.shards.clone(),
    })?;
    if let Err(e) = std::fs::write(&index_path, &index) {
        // No shards without their index: the directory is left as it was found.
        for s in &w.shards {
            let _ = std::fs::remove_file(a.out.join(&s.uri));
        }
        let _ = std::fs::remove_file(&index_path);
        return Err(e).with_context(|| format!("writing {}", index_path.display()));
    }
    let (dir, sha256) = (a.out.display().to_string(), sha256_hex(&index));
    out.emit(&Written {
        dir,
        // Absolute: a relative `file:` URI in a spec is read from the spec's directory.
        uri: format!(
            "file://{}",
            std::fs::canonicalize(&index_path)
                .unwrap_or(index_path)
                .display()
        ),
        sha256,
        shards: w.shards.len(),
        bytes,
    })
}

type Reader = Box<dyn FnMut(&Path) -> Result<Vec<u8>>>;

/// `items` in the order drawn for (`seed`, the input's name).
fn shuffled<'a>(seed: u64, input: &Path, items: Vec<&'a [u8]>) -> Vec<&'a [u8]> {
    let name = input.file_name().map(|n| n.to_string_lossy().to_string());
    let index = name.map_or(0, |n| {
        u64::from_le_bytes(
            <sha2::Sha256 as sha2::Digest>::digest(n.as_bytes())[..8]
                .try_into()
                .expect("8 bytes"),
        )
    });
    tensorgrid_train::rng::permutation(seed, "shard-shuffle", index, items.len())
        .into_iter()
        .map(|i| items[i as usize])
        .collect()
}

/// A reader that tokenizes each input with the tokenizer at `path` (its lines shuffled first
/// when `shuffle` gives a seed), and the id's width.
fn tokenizing(path: &Path, dtype: Dtype, shuffle: Option<u64>) -> Result<(u64, Reader)> {
    let json = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (tk, ids) = tensorgrid_train::tokenizer::load_given(&json)
        .with_context(|| format!("tokenizer {}", path.display()))?;
    if matches!(dtype, Dtype::U16) && ids > 1 << 16 {
        bail!("the tokenizer has {ids} ids, more than u16 holds: use --dtype u32");
    }
    let width = match dtype {
        Dtype::U16 => 2,
        Dtype::U32 => 4,
    };
    let read = move |p: &Path| -> Result<Vec<u8>> {
        let mut bytes = read_whole(p)?;
        if let Some(seed) = shuffle {
            // Lines with their line ends, the last given one if it lacks it.
            if bytes.last().is_some_and(|b| *b != b'\n') {
                bytes.push(b'\n');
            }
            let lines: Vec<&[u8]> = bytes.split_inclusive(|b| *b == b'\n').collect();
            bytes = shuffled(seed, p, lines).concat();
        }
        let text = std::str::from_utf8(&bytes)
            .with_context(|| format!("{}: not UTF-8 text", p.display()))?;
        let ids = tensorgrid_train::tokenizer::encode(&tk, text)
            .with_context(|| format!("tokenizing {}", p.display()))?;
        Ok(match dtype {
            Dtype::U16 => ids.iter().flat_map(|&i| (i as u16).to_le_bytes()).collect(),
            Dtype::U32 => ids.iter().flat_map(|&i| i.to_le_bytes()).collect(),
        })
    };
    Ok((width, Box::new(read)))
}

fn read_whole(p: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(p)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", p.display()))?;
    Ok(bytes)
}

/// Shards of at most `max` bytes, written as they fill.
struct Writer {
    dir: PathBuf,
    max: u64,
    cur: Vec<u8>,
    shards: Vec<Shard>,
}

impl Writer {
    fn push(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let room = (self.max as usize).saturating_sub(self.cur.len());
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.cur.extend_from_slice(now);
            bytes = rest;
            if self.cur.len() as u64 == self.max {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.cur.is_empty() {
            return Ok(());
        }
        let name = format!("part-{:05}.bin", self.shards.len());
        let path = self.dir.join(&name);
        if let Err(e) = std::fs::write(&path, &self.cur) {
            let _ = std::fs::remove_file(&path);
            return Err(e).with_context(|| format!("writing {}", path.display()));
        }
        self.shards.push(Shard {
            uri: name,
            sha256: sha256_hex(&self.cur),
            bytes: self.cur.len() as u64,
        });
        self.cur.clear();
        Ok(())
    }
}
