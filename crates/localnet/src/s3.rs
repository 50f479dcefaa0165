//! A real S3-protocol server on localhost (s3s with its file-system backend), so the local
//! chain's artifacts go through the same client code as AWS S3, R2 or MinIO. It runs on its
//! own thread and runtime, like the chain, so it can be started from any context.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    thread::JoinHandle,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ConnBuilder,
};
use tokio::sync::oneshot;

use crate::LocalnetError;

/// The local server's credentials. They guard a server bound to 127.0.0.1 only and are
/// printed by `tensorgrid localnet`, like a development database's default password.
pub const LOCAL_ACCESS_KEY: &str = "tensorgrid-local";
pub const LOCAL_SECRET_KEY: &str = "tensorgrid-local-secret";
pub const LOCAL_BUCKET: &str = "tensorgrid";

/// A running local S3 server. Stops on drop.
pub struct LocalS3 {
    addr: SocketAddr,
    dir: PathBuf,
    bucket: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalS3 {
    /// Serves `dir` (each sub-directory a bucket; `bucket` is created) on 127.0.0.1:`port`
    /// (0 = any free port).
    pub fn start(dir: &Path, bucket: &str, port: u16) -> Result<Self, LocalnetError> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| LocalnetError::Store(format!("{what}: {e}"));
        std::fs::create_dir_all(dir.join(bucket)).map_err(|e| fail("creating the bucket", &e))?;
        let dir = dir.canonicalize().map_err(|e| fail("data directory", &e))?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .map_err(|e| fail(&format!("binding 127.0.0.1:{port}"), &e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| fail("socket", &e))?;
        let addr = listener.local_addr().map_err(|e| fail("socket", &e))?;
        let fs =
            s3s_fs::FileSystem::new(&dir).map_err(|e| fail("file system", &format!("{e:?}")))?;
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            LOCAL_ACCESS_KEY,
            LOCAL_SECRET_KEY,
        ));
        let service = builder.build();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("local-s3".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!(error = %e, "local S3 server: no runtime");
                        return;
                    }
                };
                rt.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!(error = %e, "local S3 server: listener");
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stop_rx => break,
                            accepted = listener.accept() => {
                                let Ok((socket, _)) = accepted else {
                                    // Out of descriptors, usually: wait instead of spinning.
                                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                                    continue;
                                };
                                let service = service.clone();
                                tokio::spawn(async move {
                                    let conn = ConnBuilder::new(TokioExecutor::new());
                                    if let Err(e) = conn.serve_connection(TokioIo::new(socket), service).await {
                                        tracing::debug!(error = %e, "local S3 connection");
                                    }
                                });
                            }
                        }
                    }
                });
            })
            .map_err(|e| fail("thread", &e))?;
        Ok(Self {
            addr,
            dir,
            bucket: bucket.into(),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `s3://BUCKET`: the artifact store URL to publish to.
    pub fn store_url(&self) -> String {
        format!("s3://{}", self.bucket)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The environment an S3 client needs to reach this server (the standard AWS variables).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", LOCAL_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", LOCAL_SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LocalS3 {
    fn drop(&mut self) {
        self.stop();
    }
}
