//! Fault injection for tests of the chain client: a TCP proxy whose connections can be cut
//! or silenced (a websocket that drops or goes quiet), and a JSON-RPC proxy that can swallow
//! or rewrite chosen requests (a send that never reaches the chain, statuses that never come).

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// A local TCP proxy to `upstream`.
pub struct TcpProxy {
    addr: SocketAddr,
    generation: watch::Sender<u64>,
    silent: Arc<AtomicBool>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (generation, _) = watch::channel(0u64);
        let silent = Arc::new(AtomicBool::new(false));
        let (gen_tx, silent2) = (generation.clone(), silent.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut cut = gen_tx.subscribe();
                let silent = silent2.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    let up = pump(&mut ri, &mut wo, silent.clone());
                    let down = pump(&mut ro, &mut wi, silent);
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(Self {
            addr,
            generation,
            silent,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection open now (new ones are accepted).
    pub fn sever(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// While silent, bytes are read and thrown away in both directions: the connection looks
    /// alive to TCP but carries nothing.
    pub fn set_silent(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
    }
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    silent: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// What the JSON-RPC proxy does with one request.
pub enum Verdict {
    Forward,
    /// Answer with this `result` without asking the chain.
    Answer(Value),
    /// Forward, then hand the chain's whole response (the JSON-RPC envelope) through this
    /// function: a node that lies about what it read.
    Rewrite(Arc<dyn Fn(Value) -> Value + Send + Sync>),
}

type Rule = dyn Fn(&Value) -> Verdict + Send + Sync;

/// A JSON-RPC proxy over HTTP/1.1 to `upstream`, consulting a rule for each request.
pub struct RpcProxy {
    url: String,
    rule: Arc<Mutex<Arc<Rule>>>,
}

impl RpcProxy {
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let rule: Arc<Mutex<Arc<Rule>>> =
            Arc::new(Mutex::new(Arc::new(|_: &Value| Verdict::Forward)));
        let upstream = upstream.to_string();
        let http = reqwest::Client::new();
        let rules = rule.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (upstream, http, rules) = (upstream.clone(), http.clone(), rules.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &upstream, &http, &rules).await;
                });
            }
        });
        Ok(Self { url, rule })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the rule (the default forwards everything).
    pub fn set_rule(&self, rule: impl Fn(&Value) -> Verdict + Send + Sync + 'static) {
        *self.rule.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(rule);
    }
}

async fn serve(
    socket: TcpStream,
    upstream: &str,
    http: &reqwest::Client,
    rules: &Mutex<Arc<Rule>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut reader = BufReader::new(read);
    loop {
        // Request head: only Content-Length matters to a JSON-RPC POST.
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let rule = rules.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let response = match rule(&request) {
            Verdict::Answer(result) => serde_json::to_vec(&serde_json::json!({
                "jsonrpc": "2.0", "id": request["id"], "result": result,
            }))?,
            verdict => {
                let forwarded = match http
                    .post(upstream)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
                    Err(_) => return Ok(()),
                };
                match verdict {
                    Verdict::Rewrite(f) => match serde_json::from_slice::<Value>(&forwarded) {
                        Ok(v) => serde_json::to_vec(&f(v))?,
                        Err(_) => forwarded,
                    },
                    _ => forwarded,
                }
            }
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            response.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(&response).await?;
    }
}

/// A job of 1 SOL (or `reward`) for any device, one hour to do it, its spec at an https URI
/// named after its id.
pub fn job_post_args(
    job_id: u64,
    reward: u64,
) -> tensorgrid_client::tensorgrid::instructions::JobPostArgs {
    tensorgrid_client::tensorgrid::instructions::JobPostArgs {
        job_id,
        reward,
        spec_hash: [7; 32],
        spec_uri: format!("https://example.org/specs/{job_id}.json"),
        requirements: tensorgrid_client::defaults::any_device(),
        max_duration_s: 3_600,
        terms: tensorgrid_client::defaults::market_params().job_terms(),
    }
}

/// A job account's data as the program allocates it (full `Job::SPACE`), for writing
/// accounts directly with `Localnet::set_account`.
pub fn job_account_data(job: &tensorgrid_client::state::Job) -> Vec<u8> {
    use anchor_lang::AccountSerialize;
    let mut data = Vec::new();
    job.try_serialize(&mut data)
        .expect("a Job serialises into a Vec");
    data.resize(tensorgrid_client::state::Job::SPACE, 0);
    data
}

/// The first signature of a base64 wire transaction (what `sendTransaction` answers with).
pub fn signature_of_wire_tx(base64_tx: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_tx)
        .ok()?;
    // A short-vec count of signatures (1 byte below 128), then 64-byte signatures.
    let sig = bytes.get(1..65)?;
    Some(bs58::encode(sig).into_string())
}

/// One local S3 server per test process, its address in this process's standard AWS
/// environment (set once, before any test reads it; child processes inherit it), so that
/// `s3://` URIs in tests reach it through the same code paths as a real bucket.
pub fn shared_s3() -> &'static crate::LocalS3 {
    static S3: std::sync::OnceLock<crate::LocalS3> = std::sync::OnceLock::new();
    S3.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("tensorgrid-s3-{}", std::process::id()));
        let s3 = crate::LocalS3::start(&dir, crate::s3::LOCAL_BUCKET, 0).expect("local S3 server");
        for (k, v) in s3.env() {
            std::env::set_var(k, v);
        }
        s3
    })
}
