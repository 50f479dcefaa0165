//! Inputs from strangers never crash the engine: random and mutated job specs, safetensors,
//! `.npy`, CSV, text (by character and under a trained BPE) and token datasets, and result
//! manifests, each parsed and (when it parses) split and sized, under proptest with a fixed
//! budget (`FUZZ_CASES`, default 400 per input kind, about a second each). Every call must return, `Ok` or `Err`; a panic fails the test.

use proptest::prelude::*;
use tensorgrid_train::{
    data::{self, formats},
    manifest, memory,
    spec::{DatasetFormat, JobSpec},
};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn shipped(name: &str) -> serde_json::Value {
    let path = format!("{}/../../jobs/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Leaf values a hostile spec might hold in any field.
fn hostile_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        any::<u64>().prop_map(Into::into),
        any::<f64>().prop_map(
            |f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        ),
        Just(serde_json::json!(u64::MAX)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(0)),
        ".{0,12}".prop_map(Into::into),
        proptest::collection::vec(0usize..100_000, 0..6).prop_map(|v| serde_json::json!(v)),
        Just(serde_json::json!([usize::MAX, usize::MAX, usize::MAX])),
    ]
}

/// Every leaf path of a JSON value.
fn paths(v: &serde_json::Value, at: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let mut p = at.clone();
                p.push(k.clone());
                paths(x, p, out);
            }
        }
        _ => out.push(at),
    }
}

fn set(v: &mut serde_json::Value, path: &[String], value: serde_json::Value) {
    let mut cur = v;
    for k in path {
        cur = &mut cur[k.as_str()];
    }
    *cur = value;
}

/// A table dataset of a few rows for a spec's model (its input size taken from the spec).
fn small_table(rows: usize, dim: usize) -> Vec<u8> {
    (0..rows)
        .map(|r| {
            let mut cells: Vec<String> = (0..dim).map(|c| ((r + c) % 5).to_string()).collect();
            cells.push((r % 3).to_string());
            cells.join(",") + "\n"
        })
        .collect::<String>()
        .into_bytes()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// A shipped spec with up to four fields set to hostile values: it validates or is
    /// refused; when it validates, splitting a small dataset and sizing the job return.
    #[test]
    fn mutated_specs_validate_or_are_refused(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), hostile_value()), 1..4),
    ) {
        let mut v = shipped(["digits-mlp", "digits-cnn", "kjv-charlm", "shapes-resnet"][which]);
        let mut all = Vec::new();
        paths(&v, Vec::new(), &mut all);
        for (i, value) in edits {
            set(&mut v, &all[i.index(all.len())], value);
        }
        let bytes = serde_json::to_vec(&v).unwrap();
        if let Ok(spec) = JobSpec::from_json(&bytes) {
            let data = match spec.dataset.format {
                DatasetFormat::Text | DatasetFormat::BpeText { .. } => b"the quick brown fox jumps over the lazy dog ".repeat(200),
                DatasetFormat::Cifar { .. } => (0..4u8).flat_map(|l| std::iter::once(l).chain([7u8; 3072])).collect(),
                _ => small_table(16, 64),
            };
            if let Ok(split) = data::split(&spec, &data) {
                let _ = memory::footprint(&spec, &split);
            }
            let _ = memory::parse_bytes(&spec.dataset.format, u64::MAX);
        }
    }

    /// Arbitrary bytes as a spec: refused with an error.
    #[test]
    fn random_bytes_are_not_a_spec(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(JobSpec::from_json(&bytes).is_err());
    }

    /// A `.npy` header with random text in its fields, and random data after it.
    #[test]
    fn npy_headers_from_strangers(
        descr in prop_oneof![Just("<f4".to_string()), Just("|u1".to_string()), Just("<i8".to_string()), ".{0,6}"],
        shape in prop_oneof![
            (any::<u64>(), any::<u64>()).prop_map(|(a, b)| format!("({a}, {b})")),
            (0u64..50, 0u64..8).prop_map(|(a, b)| format!("({a}, {b})")),
            ".{0,16}",
            Just(")".to_string()),
            Just("(".to_string()),
            Just(String::new()),
        ],
        version in 0u8..5,
        data in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut v = b"\x93NUMPY".to_vec();
        v.push(version);
        v.push(0);
        if version >= 2 {
            v.extend((header.len() as u32).to_le_bytes());
        } else {
            v.extend((header.len() as u16).to_le_bytes());
        }
        v.extend(header.as_bytes());
        v.extend(data);
        let _ = formats::parse_npy(&v);
        let mut cut = v.clone();
        cut.truncate(cut.len() / 2);
        let _ = formats::parse_npy(&cut);
    }

    /// A safetensors file whose tensors have random dtypes and shapes (scalars and empty
    /// dimensions included) with exactly the bytes their header says, so the parser's own
    /// logic runs on them; and random bytes.
    #[test]
    fn safetensors_from_strangers(
        dtype in prop_oneof![Just(("F32", 4usize)), Just(("U8", 1)), Just(("I64", 8)), Just(("F64", 8))],
        shape in proptest::collection::vec(0usize..6, 0..4),
        label_shape in proptest::collection::vec(0usize..6, 0..3),
        fill in any::<u8>(),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let (name, width) = dtype;
        let x_len = shape.iter().product::<usize>() * width;
        let y_len = label_shape.iter().product::<usize>() * 4;
        let header = serde_json::json!({
            "images": {"dtype": name, "shape": shape, "data_offsets": [0, x_len]},
            "labels": {"dtype": "F32", "shape": label_shape, "data_offsets": [x_len, x_len + y_len]},
        })
        .to_string();
        let mut v = (header.len() as u64).to_le_bytes().to_vec();
        v.extend(header.as_bytes());
        v.extend(std::iter::repeat_n(fill, x_len));
        v.extend(std::iter::repeat_n(0u8, y_len));
        let _ = formats::parse_safetensors(&v, "images", "labels");
        let _ = formats::parse_safetensors(&junk, "images", "labels");
    }

    /// CSV of random cells, delimiters and label columns.
    #[test]
    fn csv_from_strangers(
        text in "[0-9a-z.,;\t\n eE+-]{0,400}",
        delimiter in prop_oneof![Just(','), Just(';'), Just('\t'), Just(' ')],
        header in any::<bool>(),
        label in -5i64..5,
    ) {
        let _ = formats::parse_csv(text.as_bytes(), delimiter, header, label);
    }

    /// Text corpora of any characters, split for a character model.
    #[test]
    fn text_from_strangers(text in any::<String>(), context in 2usize..64) {
        let mut v = shipped("kjv-charlm");
        v["model"]["context"] = context.into();
        let spec: JobSpec = serde_json::from_value(v).unwrap();
        if let Ok(split) = data::split(&spec, text.as_bytes()) {
            let _ = memory::footprint(&spec, &split);
        }
        let _ = data::split(&spec, &text.as_bytes()[..text.len() / 2]);
    }

    /// Texts of any characters under a BPE trained on them: split (or refused) and sized.
    #[test]
    fn texts_under_a_trained_bpe(text in any::<String>(), vocab in 257u32..400, context in 2usize..16) {
        let mut v = shipped("kjv-charlm");
        v["model"]["context"] = context.into();
        v["dataset"]["format"] =
            serde_json::json!({"kind": "bpe_text", "vocab_size": vocab});
        let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        let long = text.repeat(8);
        if let Ok(split) = data::split(&spec, long.as_bytes()) {
            let _ = memory::footprint(&spec, &split);
            let _ = data::private_eval(&spec, text.as_bytes(), &split);
        }
        let _ = data::split(&spec, &long.as_bytes()[..long.len() / 3]);
    }

    /// Token files of any bytes, any dtype and vocabulary size: split (every id checked
    /// against the vocabulary) or refused, and sized; the poster's evaluation tokens too.
    #[test]
    fn tokens_from_strangers(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        wide in any::<bool>(),
        vocab_size in prop_oneof![Just(0u32), Just(1), 2u32..300, Just(65_536), Just(u32::MAX)],
        context in 2usize..64,
    ) {
        let mut v = shipped("kjv-charlm");
        v["model"]["context"] = context.into();
        v["dataset"]["format"] = serde_json::json!({
            "kind": "tokens", "dtype": if wide { "u32" } else { "u16" }, "vocab_size": vocab_size,
        });
        let Ok(spec) = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()) else {
            prop_assert!(!(2..=65_536).contains(&vocab_size));
            return Ok(());
        };
        if let Ok(split) = data::split(&spec, &bytes) {
            let _ = memory::footprint(&spec, &split);
            let _ = data::private_eval(&spec, &bytes[..bytes.len() / 2], &split);
        }
        let _ = memory::parse_bytes(&spec.dataset.format, bytes.len() as u64);
    }

    /// A result manifest is read by posters from a worker's store: random JSON and random
    /// edits of a real one are refused or read, never a crash.
    #[test]
    fn manifests_from_strangers(bytes in proptest::collection::vec(any::<u8>(), 0..400), field in ".{0,8}", value in hostile_value()) {
        let _ = serde_json::from_slice::<manifest::Manifest>(&bytes);
        let mut real = serde_json::json!({
            "version": 1, "spec_sha256": "ab".repeat(32), "files": [], "result": {"metric": "accuracy", "value": 0.9},
        });
        real[field] = value;
        let _ = serde_json::from_value::<manifest::Manifest>(real);
    }
}
