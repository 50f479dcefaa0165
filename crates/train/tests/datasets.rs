mod common;

use std::{io::Write, net::TcpListener, path::Path};

use tensorgrid_train::{data::fetch::fetch, Error};

/// Serves `body` to `requests` HTTP requests on loopback; `with_length` controls the
/// Content-Length header (a lying or absent length must not defeat the size limit).
fn serve(body: Vec<u8>, requests: usize, with_length: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let head = if with_length {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_string()
            };
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/data.csv")
}

#[test]
fn file_dataset_is_verified_and_size_limited() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d.csv"), b"1,2,0\n").unwrap();
    let good = common::sha256_hex(b"1,2,0\n");
    assert_eq!(
        fetch("file:d.csv", &good, 100, dir.path(), None).unwrap(),
        b"1,2,0\n"
    );
    let abs = format!("file://{}", dir.path().join("d.csv").display());
    assert!(fetch(&abs, &good, 100, Path::new("/"), None).is_ok());
    let wrong = "0".repeat(64);
    assert!(matches!(
        fetch("file:d.csv", &wrong, 100, dir.path(), None),
        Err(Error::HashMismatch { .. })
    ));
    assert!(matches!(
        fetch("file:d.csv", &good, 3, dir.path(), None),
        Err(Error::TooLarge { .. })
    ));
    assert!(matches!(
        fetch("file:missing.csv", &good, 100, dir.path(), None),
        Err(Error::Io { .. })
    ));
}

#[test]
fn http_dataset_is_downloaded_verified_and_cached() {
    let body = b"0.5,1\n0.25,0\n".to_vec();
    let hash = common::sha256_hex(&body);
    let cache = tempfile::tempdir().unwrap();
    let url = serve(body.clone(), 1, true);
    assert_eq!(
        fetch(&url, &hash, 1_000, Path::new("."), Some(cache.path())).unwrap(),
        body
    );
    assert!(cache.path().join(&hash).exists());
    // The server is gone; the cache answers.
    assert_eq!(
        fetch(&url, &hash, 1_000, Path::new("."), Some(cache.path())).unwrap(),
        body
    );
}

#[test]
fn http_dataset_with_wrong_hash_or_too_large_is_rejected() {
    let body = vec![b'7'; 5_000];
    let url = serve(body.clone(), 1, true);
    let err = fetch(&url, &"a".repeat(64), 10_000, Path::new("."), None).unwrap_err();
    assert!(matches!(err, Error::HashMismatch { .. }), "{err}");
    // Over the limit whether the length is announced (refused up front) or not (the stream is
    // cut at the limit).
    for announce_length in [true, false] {
        let url = serve(body.clone(), 1, announce_length);
        let got = fetch(
            &url,
            &common::sha256_hex(&body),
            1_000,
            Path::new("."),
            None,
        );
        assert!(
            matches!(got, Err(Error::TooLarge { .. })),
            "announce_length={announce_length}: {got:?}"
        );
    }
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetch(
        &format!("http://127.0.0.1:{port}/x"),
        &"a".repeat(64),
        10,
        Path::new("."),
        None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

#[test]
fn digits_split_is_deterministic_and_complete() {
    let (spec, _) = common::digits_spec(|_| {});
    let bytes = std::fs::read(common::repo().join("data/digits.safetensors")).unwrap();
    let a = tensorgrid_train::data::split(&spec, &bytes).unwrap();
    let b = tensorgrid_train::data::split(&spec, &bytes).unwrap();
    let (
        tensorgrid_train::data::Split::Table {
            train,
            eval,
            classes,
            ..
        },
        tensorgrid_train::data::Split::Table { train: t2, .. },
    ) = (a, b)
    else {
        panic!("table")
    };
    assert_eq!(train, t2);
    assert_eq!(
        (train.rows(), eval.rows(), classes, train.dim),
        (1438, 359, 10, 64)
    );
    assert!(
        train.features.iter().all(|v| (0.0..=1.0).contains(v)),
        "scaled by 1/16"
    );
}

/// A worker fetches datasets from inside its tokio runtime (on `spawn_blocking` threads or
/// not): reqwest's blocking client must not panic there.
#[test]
fn http_fetch_works_inside_an_async_runtime() {
    let body = b"0.5,1\n0.25,0\n".to_vec();
    let hash = common::sha256_hex(&body);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = serve(body.clone(), 2, true);
    let (u, h) = (url.clone(), hash.clone());
    let on_blocking = rt
        .block_on(async {
            tokio::task::spawn_blocking(move || fetch(&u, &h, 1_000, Path::new("."), None)).await
        })
        .unwrap()
        .unwrap();
    assert_eq!(on_blocking, body);
    let inside = rt.block_on(async { fetch(&url, &hash, 1_000, Path::new("."), None) });
    assert_eq!(inside.unwrap(), body);
}

/// A 404 or a scheme this engine does not read is the poster's problem (asking again gives
/// the same answer); a 503 is worth retrying.
#[test]
fn final_answers_are_the_posters_fault_and_outages_transient() {
    use tensorgrid_train::Fault;
    let reply = |status: &'static str| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Some(Ok(mut s)) = listener.incoming().next() {
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                let _ = s.write_all(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
            }
        });
        format!("http://{addr}/d.csv")
    };
    let h = "0".repeat(64);
    let e = fetch(&reply("404 Not Found"), &h, 10, Path::new("."), None).unwrap_err();
    assert!(
        matches!(e, Error::Unavailable { .. }) && e.fault() == Fault::Poster,
        "{e}"
    );
    let e = fetch(
        &reply("503 Service Unavailable"),
        &h,
        10,
        Path::new("."),
        None,
    )
    .unwrap_err();
    assert_eq!(e.fault(), Fault::Transient, "{e}");
    let e = fetch("s3://bucket/d.csv", &h, 10, Path::new("."), None).unwrap_err();
    assert_eq!(e.fault(), Fault::Poster, "{e}");
}

/// Pre-tokenized data (nanoGPT's `train.bin` layout: little-endian `u16` ids): the KJV text's
/// own character ids written as tokens train the same weights, bit for bit, as the text
/// itself (same ids, same split, same vocabulary size); the result shows no text sample, since
/// nothing here can turn the poster's ids back into text. Ids past the vocabulary, or a file
/// that is not a whole number of ids, are refused with the position.
#[test]
fn a_tokens_file_of_the_texts_ids_trains_the_same_weights() {
    use tensorgrid_train::{
        data::{self, Corpus, Split},
        trainer::train,
        verify::verify,
        Device,
    };
    let text = std::fs::read_to_string(common::repo().join("data/kjv.txt")).unwrap();
    let short = |v: &mut serde_json::Value| {
        v["training"]["steps"] = 12.into();
        v["training"]["eval_every"] = 6.into();
        v["training"]["checkpoint_every"] = 0.into();
    };
    let (spec_text, bytes_text) = common::job_spec("kjv-charlm", short);
    let corpus = Corpus::from_text(&text);
    let tokens: Vec<u8> = corpus
        .ids
        .iter()
        .flat_map(|&id| u16::try_from(id).unwrap().to_le_bytes())
        .collect();
    let vocab = corpus.vocab.len();
    let sha = common::sha256_hex(&tokens);
    let (spec_tok, bytes_tok) = common::job_spec("kjv-charlm", |v| {
        short(v);
        v["dataset"]["uri"] = "file:kjv.bin".into();
        v["dataset"]["sha256"] = sha.clone().into();
        v["dataset"]["format"] =
            serde_json::json!({"kind": "tokens", "dtype": "u16", "vocab_size": vocab});
        v["limits"]["max_dataset_bytes"] = (tokens.len() as u64).into();
    });
    let split_tok = data::split(&spec_tok, &tokens).unwrap();
    let Split::Text { vocab: v, .. } = &split_tok else {
        panic!("a language corpus")
    };
    assert_eq!((v.len(), v.chars()), (vocab, None));

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let split_text = common::split(&spec_text);
    train(
        &spec_text,
        &bytes_text,
        &split_text,
        &common::opts(a.path()),
    )
    .unwrap();
    let out = train(&spec_tok, &bytes_tok, &split_tok, &common::opts(b.path())).unwrap();
    let weights = |d: &Path| std::fs::read(d.join("weights.safetensors")).unwrap();
    assert_eq!(weights(a.path()), weights(b.path()));
    let report = verify(&spec_tok, &bytes_tok, &split_tok, b.path(), &Device::Cpu).unwrap();
    // Checked (12 steps do not reach the shipped job's threshold: not asked of them here).
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.result_hash, hex::encode(out.result_hash));
    assert!(report.sample.is_none());

    // Hostile files: an id at the vocabulary's size, half an id.
    let mut bad = tokens[..4_000].to_vec();
    bad[2_000..2_002].copy_from_slice(&(vocab as u16).to_le_bytes());
    let err = data::split(&spec_tok, &bad).unwrap_err().to_string();
    assert!(
        err.contains("position 1000") && err.contains("vocab_size"),
        "{err}"
    );
    let err = data::split(&spec_tok, &tokens[..4_001])
        .unwrap_err()
        .to_string();
    assert!(err.contains("whole number"), "{err}");
    // Too few for the context.
    let err = data::split(&spec_tok, &tokens[..100])
        .unwrap_err()
        .to_string();
    assert!(err.contains("too short"), "{err}");
    // A u32 file of the same ids splits to the same ids.
    let wide: Vec<u8> = corpus.ids[..5_000]
        .iter()
        .flat_map(|id| id.to_le_bytes())
        .collect();
    let (spec_wide, _) = common::job_spec("kjv-charlm", |v| {
        v["dataset"]["format"] =
            serde_json::json!({"kind": "tokens", "dtype": "u32", "vocab_size": vocab});
    });
    let Split::Text { train: t, eval, .. } = data::split(&spec_wide, &wide).unwrap() else {
        panic!("a language corpus")
    };
    assert_eq!([t, eval].concat(), corpus.ids[..5_000]);
}

/// CIFAR-10's binary format: records of a label byte and 3×32×32 pixels, scaled by 1/255 by
/// default; a file that is not whole records is refused with the reason.
#[test]
fn cifar_records_are_read_as_labelled_images() {
    use tensorgrid_train::{data::formats::parse_table, spec::DatasetFormat};
    let mut bytes = Vec::new();
    for label in [3u8, 9] {
        bytes.push(label);
        bytes.extend((0..3072).map(|i| (i % 256) as u8 ^ label));
    }
    let scale = 1.0 / 255.0;
    let t = parse_table(&DatasetFormat::Cifar { scale }, &bytes).unwrap();
    assert_eq!((t.rows(), t.dim, t.labels.clone()), (2, 3072, vec![3, 9]));
    assert_eq!(t.features[3072 + 5], ((5u8 ^ 9) as f32) * scale);
    let e = parse_table(&DatasetFormat::Cifar { scale }, &bytes[..5000])
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a whole number of 3073-byte records"), "{e}");
    assert!(parse_table(&DatasetFormat::Cifar { scale }, &[]).is_err());
}

/// A resnet's and a cifar dataset's rules: every problem listed.
#[test]
fn resnet_cifar_and_augment_rules() {
    let (_, shipped) = common::job_spec("shapes-resnet", |_| {});
    let mut v: serde_json::Value = serde_json::from_slice(&shipped).unwrap();
    v["model"]["widths"] = serde_json::json!([16, 32, 64, 64, 64, 64]);
    v["model"]["blocks"] = 0.into();
    v["model"]["input_shape"] = serde_json::json!([3, 16, 16]);
    v["training"]["augment"]["crop_padding"] = 9.into();
    let e = tensorgrid_train::spec::JobSpec::from_json(&serde_json::to_vec(&v).unwrap())
        .unwrap_err()
        .to_string();
    for want in [
        "model.blocks must be 1..=16",
        "height and width ≥ 32] for 6 stages",
        "dataset.format cifar holds [3, 32, 32] images",
        "crop_padding 9 must be at most half the image's side (8)",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    let mut mlp: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::repo().join("jobs/digits-mlp.json")).unwrap(),
    )
    .unwrap();
    mlp["training"]["augment"] = serde_json::json!({"crop_padding": 1});
    let e = tensorgrid_train::spec::JobSpec::from_json(&serde_json::to_vec(&mlp).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("training.augment is for image models (cnn, resnet), not mlp"),
        "{e}"
    );
}
