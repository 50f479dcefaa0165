//! An S3 store that cannot be reached says which endpoint it tried and where that setting
//! comes from, on one line, without the client's wrapper text. Its own test binary: it sets
//! the process environment.

use tensorgrid_artifacts::{ArtifactError, Store};

#[tokio::test]
async fn an_unreachable_s3_endpoint_is_named_with_the_setting_to_change() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    std::env::set_var("AWS_ENDPOINT_URL", &endpoint);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test-secret");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::remove_var("AWS_ENDPOINT_URL_S3");
    let store = Store::open("s3://bucket/prefix").unwrap();
    let err = store.put("specs/a.json", b"{}".to_vec()).await.unwrap_err();
    assert!(matches!(err, ArtifactError::Unreachable { .. }), "{err}");
    let line = err.to_string();
    assert!(
        line.contains(&endpoint) && line.contains("AWS_ENDPOINT_URL"),
        "{line}"
    );
    assert!(!line.contains("Generic S3 error"), "{line}");
    assert!(!line.contains("test-secret"), "{line}");
    assert!(!line.contains('\n'), "{line}");
}
