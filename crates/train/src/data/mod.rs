//! Datasets: fetched and verified bytes ([`fetch`]), parsed by format ([`formats`]), split
//! deterministically into train and eval parts.

pub mod fetch;
pub mod formats;
pub mod shards;

use std::{path::Path, sync::Arc};

pub use shards::{ShardSet, ShardStore};

use crate::{
    rng,
    spec::{DatasetFormat, JobSpec},
    Error, Result,
};

/// Samples with numeric features and a class label.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Row-major `(rows, dim)`.
    pub features: Vec<f32>,
    pub labels: Vec<u32>,
    pub dim: usize,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |m| *m as usize + 1)
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[u32]) -> Table {
        let mut features = Vec::with_capacity(idx.len() * self.dim);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            let i = i as usize;
            features.extend_from_slice(&self.features[i * self.dim..(i + 1) * self.dim]);
            labels.push(self.labels[i]);
        }
        Table {
            features,
            labels,
            dim: self.dim,
        }
    }
}

/// Text encoded over its own character vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// Sorted distinct characters; a token id indexes this.
    pub vocab: Vec<char>,
    pub ids: Vec<u32>,
}

impl Corpus {
    pub fn from_text(text: &str) -> Self {
        let mut vocab: Vec<char> = text.chars().collect();
        vocab.sort_unstable();
        vocab.dedup();
        let ids = text
            .chars()
            .map(|c| vocab.binary_search(&c).expect("char in vocab") as u32)
            .collect();
        Corpus { vocab, ids }
    }
}

/// What a language model's token ids stand for.
#[derive(Debug, Clone, PartialEq)]
pub enum Vocab {
    /// Characters of a text corpus: id `i` is the `i`-th (sorted, distinct).
    Chars(Vec<char>),
    /// Ids of the poster's own tokenizer, `0..n`: nothing here can turn them back into text.
    Ids(usize),
    /// A byte-level BPE trained on the text: its `tokenizer.json`, and the model's size (the
    /// spec's `vocab_size`; the trained vocabulary may be smaller).
    Bpe {
        json: std::sync::Arc<Vec<u8>>,
        size: usize,
    },
}

impl Vocab {
    /// Distinct ids: the embedding's and the output layer's size.
    pub fn len(&self) -> usize {
        match self {
            Vocab::Chars(c) => c.len(),
            Vocab::Ids(n) | Vocab::Bpe { size: n, .. } => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The characters, when the ids are characters.
    pub fn chars(&self) -> Option<&[char]> {
        match self {
            Vocab::Chars(c) => Some(c),
            Vocab::Ids(_) | Vocab::Bpe { .. } => None,
        }
    }

    /// The `tokenizer.json` a trained BPE publishes with the result.
    pub fn tokenizer_json(&self) -> Option<&[u8]> {
        match self {
            Vocab::Bpe { json, .. } => Some(json),
            _ => None,
        }
    }
}

/// A dataset after the train/eval split. A sharded one streams its training samples from
/// `shards` (its `train` is then empty: a table of no rows, or no ids).
#[derive(Debug, Clone)]
pub enum Split {
    Table {
        train: Table,
        eval: Table,
        classes: usize,
        shards: Option<Arc<ShardSet>>,
    },
    Text {
        train: Vec<u32>,
        eval: Vec<u32>,
        vocab: Vocab,
        shards: Option<Arc<ShardSet>>,
    },
}

impl Split {
    /// The streamed training shards of a sharded dataset.
    pub fn shards(&self) -> Option<&Arc<ShardSet>> {
        match self {
            Split::Table { shards, .. } | Split::Text { shards, .. } => shards.as_ref(),
        }
    }

    /// Training samples of a table (an epoch's), whether in memory or in shards.
    pub fn train_rows(&self) -> usize {
        match (self, self.shards()) {
            (_, Some(s)) => usize::try_from(s.samples()).unwrap_or(usize::MAX),
            (Split::Table { train, .. }, None) => train.rows(),
            (Split::Text { .. }, None) => 0,
        }
    }
}

/// Fetches (verifying size and hash) the spec's files ([`JobSpec::files_mut`]) and attaches
/// them to it, then its dataset, which it parses and splits. Relative `file:` URIs resolve
/// against `base_dir` (the spec file's directory).
pub fn load(spec: &mut JobSpec, base_dir: &Path, cache_dir: Option<&Path>) -> Result<Split> {
    fetch_files(spec, base_dir, cache_dir)?;
    let d = &spec.dataset;
    let bytes = fetch::fetch(
        &d.uri,
        &d.sha256,
        spec.limits.max_dataset_bytes,
        base_dir,
        cache_dir,
    )?;
    let store = shards::LocalStore {
        base_dir: base_dir.to_path_buf(),
        cache_dir: cache_dir.map(Path::to_path_buf),
    };
    split_with(spec, &bytes, Some(Arc::new(store)))
}

/// Fetches the spec's files besides its dataset (local or HTTP, each at most its stated
/// size) and attaches them.
pub fn fetch_files(spec: &mut JobSpec, base_dir: &Path, cache_dir: Option<&Path>) -> Result<()> {
    for (role, f) in spec.files_mut() {
        let bytes =
            fetch::fetch(&f.uri, &f.sha256, f.bytes, base_dir, cache_dir).map_err(|e| match e {
                // The fetcher's words are a dataset's.
                Error::HashMismatch {
                    uri,
                    expected,
                    actual,
                } => Error::File {
                    role,
                    reason: format!("{uri}: sha256 is {actual}, the spec says {expected}"),
                },
                Error::TooLarge { uri, limit } => Error::File {
                    role,
                    reason: format!("{uri}: more than the {limit} bytes the spec says"),
                },
                Error::Unavailable { uri, reason } => Error::File {
                    role,
                    reason: format!("{uri}: {reason}"),
                },
                e => e,
            })?;
        f.attach(role, bytes)?;
    }
    Ok(())
}

/// The poster's own held-out data (`bytes`, in the spec's dataset format) as the evaluation
/// split of `like` (the job's split, whose training part and vocabulary or class count the
/// model was built from). Nothing of it is public, so a model fitted to the public evaluation
/// rows gains nothing on it.
pub fn private_eval(spec: &JobSpec, bytes: &[u8], like: &Split) -> Result<Split> {
    match like {
        // Token ids (a tokenizer with them or not): the evaluation data are ids too.
        Split::Text { train, vocab, .. }
            if matches!(
                spec.dataset.format.each_file(),
                DatasetFormat::Tokens { .. }
            ) =>
        {
            let DatasetFormat::Tokens { dtype, .. } = *spec.dataset.format.each_file() else {
                return Err(Error::Internal("not a tokens format".into()));
            };
            let eval = formats::parse_tokens(bytes, dtype, vocab.len())?;
            check_context(spec, "evaluation tokens", &[&eval])?;
            Ok(Split::Text {
                shards: like.shards().cloned(),
                train: train.clone(),
                eval,
                vocab: vocab.clone(),
            })
        }
        Split::Text {
            train,
            vocab: vocab @ Vocab::Bpe { json, .. },
            ..
        } => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| Error::Format(format!("evaluation text is not UTF-8: {e}")))?;
            let tk = crate::tokenizer::load(json)?;
            let eval = crate::tokenizer::encode(&tk, text)?;
            check_context(spec, "evaluation text (ids)", &[&eval])?;
            Ok(Split::Text {
                shards: like.shards().cloned(),
                train: train.clone(),
                eval,
                vocab: vocab.clone(),
            })
        }
        Split::Text {
            vocab: Vocab::Ids(_),
            ..
        } => Err(Error::Internal("token ids without a tokens format".into())),
        Split::Text {
            train,
            vocab: Vocab::Chars(vocab),
            ..
        } => {
            let text = std::str::from_utf8(bytes)
                .map_err(|e| Error::Format(format!("evaluation text is not UTF-8: {e}")))?;
            let mut unknown: Vec<char> = text
                .chars()
                .filter(|c| vocab.binary_search(c).is_err())
                .collect();
            if !unknown.is_empty() {
                unknown.sort_unstable();
                unknown.dedup();
                let shown: String = unknown.iter().take(20).collect();
                return Err(Error::Format(format!(
                    "evaluation text has {} characters the job's corpus never uses (the model \
                     cannot read them): {shown:?}",
                    unknown.len()
                )));
            }
            let eval: Vec<u32> = text
                .chars()
                .map(|c| vocab.binary_search(&c).map_or(0, |i| i as u32))
                .collect();
            check_context(spec, "evaluation text (characters)", &[&eval])?;
            Ok(Split::Text {
                shards: like.shards().cloned(),
                train: train.clone(),
                eval,
                vocab: Vocab::Chars(vocab.clone()),
            })
        }
        Split::Table { train, classes, .. } => {
            let eval = formats::parse_table(spec.dataset.format.each_file(), bytes)?;
            if eval.rows() == 0 {
                return Err(Error::Format("no evaluation samples".into()));
            }
            if eval.dim != train.dim {
                return Err(Error::Format(format!(
                    "evaluation samples have {} values, the job's have {}",
                    eval.dim, train.dim
                )));
            }
            if eval.classes() > *classes {
                return Err(Error::Format(format!(
                    "evaluation labels go up to {}, the job has {classes} classes",
                    eval.classes() - 1
                )));
            }
            Ok(Split::Table {
                shards: like.shards().cloned(),
                train: train.clone(),
                eval,
                classes: *classes,
            })
        }
    }
}

/// Parses verified bytes and splits them (a dataset in memory: a sharded one needs
/// [`split_with`]).
pub fn split(spec: &JobSpec, bytes: &[u8]) -> Result<Split> {
    split_with(spec, bytes, None)
}

/// [`split`], with the store a sharded dataset's shards come from (`bytes` are then its
/// index): the evaluation shards are read now, the training shards as training reaches them.
pub fn split_with(
    spec: &JobSpec,
    bytes: &[u8],
    store: Option<Arc<dyn ShardStore>>,
) -> Result<Split> {
    let d = &spec.dataset;
    if let DatasetFormat::Shards { .. } = d.format {
        let store = store.ok_or_else(|| {
            Error::Internal("a sharded dataset was split without a shard store".into())
        })?;
        let index = shards::Index::parse(spec, bytes)?;
        let (set, eval) = ShardSet::open(spec, &index, store)?;
        let classes = set.classes();
        let set = Some(Arc::new(set));
        return match (eval, spec.dataset.format.each_file()) {
            (shards::Eval::Tokens(eval), format) => {
                check_context(spec, "evaluation shards (ids)", &[&eval])?;
                Ok(Split::Text {
                    train: Vec::new(),
                    eval,
                    vocab: token_vocab(format)?,
                    shards: set,
                })
            }
            (shards::Eval::Table(eval), _) => {
                if eval.rows() == 0 {
                    return Err(Error::Format("no evaluation samples".into()));
                }
                let dim = eval.dim;
                Ok(Split::Table {
                    train: Table {
                        features: Vec::new(),
                        labels: Vec::new(),
                        dim,
                    },
                    eval,
                    classes: classes.unwrap_or(0),
                    shards: set,
                })
            }
        };
    }
    if let DatasetFormat::Tokens { dtype, .. } = d.format {
        let vocab = token_vocab(&d.format)?;
        let ids = formats::parse_tokens(bytes, dtype, vocab.len())?;
        let (train, eval) = ids.split_at(ids.len() - eval_len(ids.len(), d.eval_fraction));
        check_context(spec, "tokens (train / eval)", &[train, eval])?;
        return Ok(Split::Text {
            shards: None,
            train: train.to_vec(),
            eval: eval.to_vec(),
            vocab,
        });
    }
    if let DatasetFormat::BpeText {
        vocab_size,
        tokenizer,
    } = &d.format
    {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::Format(format!("text is not UTF-8: {e}")))?;
        // Held out by characters, the end of the text; the tokenizer learns from the rest
        // only, so nothing of the evaluation text shapes it.
        let chars = text.chars().count();
        let at = text
            .char_indices()
            .nth(chars - eval_len(chars, d.eval_fraction))
            .map_or(text.len(), |(i, _)| i);
        let (train_text, eval_text) = text.split_at(at);
        let (json, tk, size) = match (vocab_size, tokenizer) {
            (Some(v), _) => {
                let json = crate::tokenizer::train_bpe(train_text, *v as usize)?;
                let tk = crate::tokenizer::load(&json)?;
                (json, tk, *v as usize)
            }
            (None, Some(t)) => {
                let json = t.bytes_for(crate::spec::TOKENIZER_ROLE)?.to_vec();
                let (tk, size) = crate::tokenizer::load_given(&json)?;
                (json, tk, size)
            }
            (None, None) => {
                return Err(Error::Format(
                    "bpe_text needs vocab_size or tokenizer".into(),
                ))
            }
        };
        let train = crate::tokenizer::encode(&tk, train_text)?;
        let eval = crate::tokenizer::encode(&tk, eval_text)?;
        check_context(spec, "text (train / eval ids)", &[&train, &eval])?;
        return Ok(Split::Text {
            shards: None,
            train,
            eval,
            vocab: Vocab::Bpe {
                json: std::sync::Arc::new(json),
                size,
            },
        });
    }
    if let DatasetFormat::Text = d.format {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| Error::Format(format!("text is not UTF-8: {e}")))?;
        let corpus = Corpus::from_text(text);
        // The vocabulary sizes the embedding and the output layer: a text of a million
        // distinct characters would make both enormous.
        if corpus.vocab.len() > crate::spec::limits::MAX_VOCAB {
            return Err(Error::Format(format!(
                "text has {} distinct characters, more than {}",
                corpus.vocab.len(),
                crate::spec::limits::MAX_VOCAB
            )));
        }
        let n = corpus.ids.len();
        let (train, eval) = corpus.ids.split_at(n - eval_len(n, d.eval_fraction));
        check_context(spec, "text (train / eval characters)", &[train, eval])?;
        return Ok(Split::Text {
            shards: None,
            train: train.to_vec(),
            eval: eval.to_vec(),
            vocab: Vocab::Chars(corpus.vocab),
        });
    }
    let table = formats::parse_table(&d.format, bytes)?;
    if table.rows() < 2 {
        return Err(Error::Format("need at least two samples".into()));
    }
    if let Some(input_shape) = spec.model.input_shape() {
        let want = input_shape
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
            .unwrap_or(usize::MAX);
        if want != table.dim {
            return Err(Error::Format(format!(
                "model.input_shape {input_shape:?} has {want} values, samples have {}",
                table.dim
            )));
        }
    }
    // Labels are class ids 0..C; a stray huge id would make a C-wide output layer.
    const MAX_CLASSES: usize = 100_000;
    if table.classes() > MAX_CLASSES {
        return Err(Error::Format(format!(
            "labels go up to {}, more than {MAX_CLASSES} classes",
            table.classes() - 1
        )));
    }
    let perm = rng::permutation(spec.training.seed, "split", 0, table.rows());
    let n_eval = ((table.rows() as f64) * d.eval_fraction)
        .round()
        .clamp(1.0, (table.rows() - 1) as f64) as usize;
    let classes = table.classes();
    Ok(Split::Table {
        shards: None,
        eval: table.select(&perm[..n_eval]),
        train: table.select(&perm[n_eval..]),
        classes,
    })
}

/// The vocabulary of token ids in `format` (`tokens`): the ids alone, or with the tokenizer
/// that made them (checked: of its kind, and no more ids than the spec's `vocab_size`).
fn token_vocab(format: &DatasetFormat) -> Result<Vocab> {
    let DatasetFormat::Tokens {
        vocab_size,
        tokenizer,
        ..
    } = format
    else {
        return Err(Error::Internal("not a tokens format".into()));
    };
    let size = *vocab_size as usize;
    let Some(t) = tokenizer else {
        return Ok(Vocab::Ids(size));
    };
    let json = t.bytes_for(crate::spec::TOKENIZER_ROLE)?;
    let (_, ids) = crate::tokenizer::load_given(json)?;
    if ids > size {
        return Err(Error::File {
            role: crate::spec::TOKENIZER_ROLE,
            reason: format!("it has {ids} ids, more than dataset.format.vocab_size ({size})"),
        });
    }
    Ok(Vocab::Bpe {
        json: Arc::new(json.to_vec()),
        size,
    })
}

/// Ids held out for evaluation from a corpus of `n`: contiguous, the end of the corpus, unseen
/// in training.
fn eval_len(n: usize, eval_fraction: f64) -> usize {
    (((n as f64) * eval_fraction).round() as usize).min(n)
}

/// A transformer reads `context + 1` ids per sequence: each of `parts` needs more than that.
fn check_context(spec: &JobSpec, what: &str, parts: &[&[u32]]) -> Result<()> {
    if let Some(crate::spec::TransformerSpec { context, .. }) = spec.model.transformer() {
        if parts.iter().any(|ids| ids.len() <= context + 1) {
            let lens: Vec<String> = parts.iter().map(|p| p.len().to_string()).collect();
            return Err(Error::Format(format!(
                "{what} too short: {} ids for context {context}",
                lens.join(" / ")
            )));
        }
    }
    Ok(())
}
