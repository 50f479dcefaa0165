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
