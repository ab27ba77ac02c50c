//! Publishing each signed checkpoint (the chain's signed head) to an outside witness named by
//! `audit.witness`: a file that gets one line per checkpoint, or an http(s) URL that gets
//! one JSON POST per checkpoint. Someone who can rewrite the database (even with the signing
//! key) cannot rewrite what the witness already holds, so `concord audit verify --witness`
//! catches the rewrite.
//!
//! The writer hands checkpoints over after their commit through a bounded queue and never
//! waits: a full queue drops that head (a later one covers the chain up to it too). The
//! publishing task belongs to the store, which drains it when it closes.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::export::CheckpointLine;
use crate::store::audit::CheckpointRecord;

/// Checkpoints waiting for the witness before new ones are dropped.
const QUEUE: usize = 256;
/// How long one POST to a URL witness may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// The first word of a witness file line.
const TAG: &str = "concord-audit-head";

pub use crate::config::WitnessTarget;

/// The witness file line for a checkpoint:
/// `concord-audit-head <seq> <head hash, hex> <signature, base64> <key version> <signed at>`.
pub fn head_line(cp: &CheckpointRecord) -> String {
    format!(
        "{TAG} {} {} {} {} {}",
        cp.seq,
        hex::encode(&cp.head_hash),
        STANDARD.encode(&cp.signature),
        cp.key_version,
        cp.signed_at
    )
}

/// Reads a witness file: one [`head_line`] per line; blank lines and `#` comments are
/// skipped, anything else is an error naming the line.
pub fn parse_heads(text: &str) -> Result<Vec<CheckpointRecord>, String> {
    let mut heads = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |what: &str| format!("witness line {}: {what}", i + 1);
        let parts: Vec<&str> = line.split(' ').collect();
        let [tag, seq, hash, signature, version, signed_at] = parts[..] else {
            return Err(bad(
                "expected `concord-audit-head SEQ HASH SIGNATURE KEY_VERSION SIGNED_AT`",
            ));
        };
        if tag != TAG {
            return Err(bad("does not start with concord-audit-head"));
        }
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| bad("bad sequence number"))?;
        let head_hash = hex::decode(hash)
            .ok()
            .filter(|h| h.len() == 32)
            .ok_or_else(|| bad("bad head hash"))?;
        let signature = STANDARD
            .decode(signature)
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or_else(|| bad("bad signature"))?;
        let key_version: i64 = version.parse().map_err(|_| bad("bad key version"))?;
        heads.push(CheckpointRecord {
            seq,
            head_hash,
            signed_at: signed_at.to_owned(),
            key_version,
            signature,
        });
    }
    Ok(heads)
}

/// Starts the task that publishes to `target`; returns its queue and its handle.
pub fn start(target: WitnessTarget) -> (mpsc::Sender<CheckpointRecord>, JoinHandle<()>) {
    let (sender, mut queue) = mpsc::channel::<CheckpointRecord>(QUEUE);
    let task = tokio::spawn(async move {
        let client = match &target {
            WitnessTarget::Url(_) => reqwest::Client::builder()
                .timeout(POST_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| tracing::warn!(error = %e, "audit witness: no HTTP client"))
                .ok(),
            WitnessTarget::File(_) => None,
        };
        while let Some(cp) = queue.recv().await {
            let published = match &target {
                WitnessTarget::File(path) => append(path, &cp).await.map_err(|e| e.to_string()),
                WitnessTarget::Url(url) => match &client {
                    Some(client) => post(client, url, &cp).await,
                    None => Err("no HTTP client".into()),
                },
            };
            if let Err(error) = published {
                tracing::warn!(seq = cp.seq, %error, "audit witness: signed head not published");
            }
        }
    });
    (sender, task)
}

async fn append(path: &std::path::Path, cp: &CheckpointRecord) -> std::io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await?;
    file.write_all(format!("{}\n", head_line(cp)).as_bytes())
        .await?;
    file.sync_data().await
}

async fn post(client: &reqwest::Client, url: &str, cp: &CheckpointRecord) -> Result<(), String> {
    let response = client
        .post(url)
        .json(&CheckpointLine::from_record(cp))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the witness answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_line_reads_back() {
        let cp = CheckpointRecord {
            seq: 42,
            head_hash: vec![7; 32],
            signed_at: "2026-01-01T00:00:00.000000Z".into(),
            key_version: 3,
            signature: vec![9; 64],
        };
        let heads = parse_heads(&format!("# heads\n{}\n\n", head_line(&cp))).unwrap();
        assert_eq!(heads.len(), 1);
        assert_eq!(heads[0].seq, 42);
        assert_eq!(heads[0].head_hash, cp.head_hash);
        assert_eq!(heads[0].signature, cp.signature);
        assert_eq!(heads[0].key_version, 3);
        assert_eq!(heads[0].signed_at, cp.signed_at);
        assert!(parse_heads("concord-audit-head 1 zz").is_err());
    }

    #[test]
    fn targets_are_files_or_http_urls() {
        assert_eq!(
            WitnessTarget::parse("/var/lib/witness/heads"),
            Ok(WitnessTarget::File("/var/lib/witness/heads".into()))
        );
        assert!(matches!(
            WitnessTarget::parse("https://witness.example/heads"),
            Ok(WitnessTarget::Url(_))
        ));
        assert!(WitnessTarget::parse("ftp://x/y").is_err());
        assert!(WitnessTarget::parse(" ").is_err());
    }
}
