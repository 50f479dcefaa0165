//! A worker's progress on a job, published next to where its result will be
//! (`results/JOB/progress.json` in its store) so the poster can follow training between the
//! claim and the submission. The worker names the file in a memo of its claim transaction
//! (`tensorgrid:progress=URI`). It is the worker's word, shown as such: nothing is paid on it.

use serde::{Deserialize, Serialize};

/// The memo text's prefix in the claim transaction.
pub const MEMO_PREFIX: &str = "tensorgrid:progress=";

/// The file's key under the worker's store, beside the result.
pub fn key(job: &str) -> String {
    format!("results/{job}/progress.json")
}

/// Largest progress file a reader accepts.
pub const MAX_BYTES: u64 = 16 * 1024;

/// What the worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub job: String,
    /// downloading, training, publishing, submitting, …
    pub stage: String,
    pub step: u64,
    pub total_steps: u64,
    /// The latest evaluation loss, if there was an evaluation yet.
    pub eval_loss: Option<f64>,
    /// Seconds of training left at the pace so far.
    pub eta_s: Option<f64>,
    /// When this was written (unix seconds, the worker's clock).
    pub updated_at: i64,
}

impl Progress {
    /// Parses a progress file from a stranger: bounded, every number finite, short strings.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() as u64 > MAX_BYTES {
            return None;
        }
        let p: Self = serde_json::from_slice(bytes).ok()?;
        let finite = |v: Option<f64>| v.is_none_or(|x| x.is_finite() && x >= 0.0);
        (p.stage.len() <= 64
            && p.job.len() <= 64
            && p.step <= p.total_steps
            && finite(p.eval_loss)
            && finite(p.eta_s))
        .then_some(p)
    }
}

/// The progress URI in a claim transaction's logs (the memo program logs
/// `Memo (len N): "TEXT"`).
pub fn uri_in_logs(logs: &[String]) -> Option<String> {
    logs.iter().find_map(|l| {
        let start = l.find(MEMO_PREFIX)? + MEMO_PREFIX.len();
        let rest = &l[start..];
        let end = rest.find('"').unwrap_or(rest.len());
        let uri = rest[..end].trim();
        (!uri.is_empty() && uri.len() <= 512 && !uri.contains(char::is_control))
            .then(|| uri.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_is_read_from_the_memo_log_and_hostile_files_are_refused() {
        let logs = vec![
            "Program MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr invoke [1]".to_string(),
            "Program log: Memo (len 52): \"tensorgrid:progress=s3://b/results/J/progress.json\""
                .to_string(),
        ];
        assert_eq!(
            uri_in_logs(&logs).as_deref(),
            Some("s3://b/results/J/progress.json")
        );
        assert_eq!(uri_in_logs(&["Program log: hello".into()]), None);
        let good = br#"{"job":"J","stage":"training","step":3,"total_steps":10,"eval_loss":0.5,"eta_s":12.0,"updated_at":1}"#;
        assert_eq!(Progress::parse(good).unwrap().step, 3);
        let past_end = br#"{"job":"J","stage":"training","step":11,"total_steps":10,"eval_loss":null,"eta_s":null,"updated_at":1}"#;
        assert!(Progress::parse(past_end).is_none());
        let negative = br#"{"job":"J","stage":"training","step":1,"total_steps":10,"eval_loss":-1.0,"eta_s":null,"updated_at":1}"#;
        assert!(Progress::parse(negative).is_none());
        assert!(Progress::parse(&vec![b' '; 20_000]).is_none());
    }
}
