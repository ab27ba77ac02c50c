//! The export format (JSON Lines), documented in policies/AUDIT-FORMAT.md, and the reading
//! side used by the offline verifier.
//!
//! Line 1 is a header; then one line per entry in sequence order; then one line per
//! checkpoint the range spans. Binary fields are base64 (standard, padded), hashes hex.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::verify::{ChainError, Verified, Verifier};
use crate::store::audit::{AuditFields, AuditRecord, CheckpointRecord};

/// The first line of an export.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    /// Always `header`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `concord-audit-export`.
    pub format: String,
    /// Format version: 1.
    pub version: u32,
    /// First sequence number in the export.
    pub from_seq: i64,
    /// Last sequence number in the export.
    pub to_seq: i64,
    /// Hex hash of entry `from_seq - 1` (64 zeros when `from_seq` is 1).
    pub prev_hash: String,
    /// When it was made.
    pub exported_at: String,
}

/// One entry line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventLine {
    /// Always `event`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sequence number.
    pub seq: i64,
    /// Entry id.
    pub id: String,
    /// RFC 3339 time.
    pub occurred_at: String,
    /// Actor kind.
    pub actor_type: String,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Session id.
    pub session_id: Option<String>,
    /// Action.
    pub action: String,
    /// Target kind.
    pub target_type: Option<String>,
    /// Target id.
    pub target_id: Option<String>,
    /// Workspace id.
    pub workspace_id: Option<String>,
    /// Outcome.
    pub outcome: String,
    /// Key scope of the encrypted fields.
    pub subject: Option<String>,
    /// Encrypted client address (base64), as hashed.
    pub ip_enc: Option<String>,
    /// Encrypted details (base64), as hashed.
    pub details_enc: Option<String>,
    /// Hex hash of the previous entry.
    pub prev_hash: String,
    /// Hex hash of this entry.
    pub hash: String,
    /// The decrypted client address, if its key still exists (not covered by the hash).
    pub ip: Option<String>,
    /// The decrypted details, if their key still exists (not covered by the hash).
    pub details: Option<serde_json::Value>,
}

/// One checkpoint line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointLine {
    /// Always `checkpoint`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sequence number of the head it signs.
    pub seq: i64,
    /// Hex head hash.
    pub head_hash: String,
    /// When it was signed (RFC 3339, as signed).
    pub signed_at: String,
    /// Signing key version.
    pub key_version: i64,
    /// Base64 Ed25519 signature.
    pub signature: String,
}

impl EventLine {
    /// The line for a stored entry with its decrypted views.
    pub fn from_record(
        rec: &AuditRecord,
        ip: Option<String>,
        details: Option<serde_json::Value>,
    ) -> EventLine {
        let f = &rec.fields;
        EventLine {
            kind: "event".into(),
            seq: rec.seq,
            id: f.id.clone(),
            occurred_at: f.occurred_at.clone(),
            actor_type: f.actor_type.clone(),
            actor_id: f.actor_id.clone(),
            session_id: f.session_id.clone(),
            action: f.action.clone(),
            target_type: f.target_type.clone(),
            target_id: f.target_id.clone(),
            workspace_id: f.workspace_id.clone(),
            outcome: f.outcome.clone(),
            subject: f.subject.clone(),
            ip_enc: f.ip_enc.as_ref().map(|b| STANDARD.encode(b)),
            details_enc: f.details_enc.as_ref().map(|b| STANDARD.encode(b)),
            prev_hash: hex::encode(&rec.prev_hash),
            hash: hex::encode(&rec.hash),
            ip,
            details,
        }
    }

    fn to_record(&self) -> Result<AuditRecord, String> {
        let b64 = |v: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            v.as_ref()
                .map(|s| STANDARD.decode(s).map_err(|e| e.to_string()))
                .transpose()
        };
        Ok(AuditRecord {
            seq: self.seq,
            fields: AuditFields {
                id: self.id.clone(),
                occurred_at: self.occurred_at.clone(),
                actor_type: self.actor_type.clone(),
                actor_id: self.actor_id.clone(),
                session_id: self.session_id.clone(),
                action: self.action.clone(),
                target_type: self.target_type.clone(),
                target_id: self.target_id.clone(),
                workspace_id: self.workspace_id.clone(),
                outcome: self.outcome.clone(),
                subject: self.subject.clone(),
                ip_enc: b64(&self.ip_enc)?,
                details_enc: b64(&self.details_enc)?,
            },
            prev_hash: hex::decode(&self.prev_hash).map_err(|e| e.to_string())?,
            hash: hex::decode(&self.hash).map_err(|e| e.to_string())?,
        })
    }
}

impl CheckpointLine {
    /// The line for a stored checkpoint.
    pub fn from_record(cp: &CheckpointRecord) -> CheckpointLine {
        CheckpointLine {
            kind: "checkpoint".into(),
            seq: cp.seq,
            head_hash: hex::encode(&cp.head_hash),
            signed_at: cp.signed_at.clone(),
            key_version: cp.key_version,
            signature: STANDARD.encode(&cp.signature),
        }
    }

    fn to_record(&self) -> Result<CheckpointRecord, String> {
        Ok(CheckpointRecord {
            seq: self.seq,
            head_hash: hex::decode(&self.head_hash).map_err(|e| e.to_string())?,
            signed_at: self.signed_at.clone(),
            key_version: self.key_version,
            signature: STANDARD
                .decode(&self.signature)
                .map_err(|e| e.to_string())?,
        })
    }
}

/// Formats public keys for `audit.pub`: one `concord-audit-key <version> <base64> <since>`
/// line per version.
pub fn public_key_line(version: i64, public_key: &[u8], since: &str) -> String {
    format!(
        "concord-audit-key {version} {} {since}",
        STANDARD.encode(public_key)
    )
}

/// Parses an `audit.pub` file into version → public key.
pub fn parse_public_keys(text: &str) -> Result<HashMap<i64, Vec<u8>>, String> {
    let mut keys = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bad = || {
            format!(
                "public key file line {}: expected `concord-audit-key VERSION BASE64`",
                i + 1
            )
        };
        if parts.len() < 3 || parts[0] != "concord-audit-key" {
            return Err(bad());
        }
        let version: i64 = parts[1].parse().map_err(|_| bad())?;
        let key = STANDARD.decode(parts[2]).map_err(|_| bad())?;
        if key.len() != 32 {
            return Err(bad());
        }
        keys.insert(version, key);
    }
    if keys.is_empty() {
        return Err("the public key file holds no keys".into());
    }
    Ok(keys)
}

/// Why an export could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file is not a well-formed export.
    #[error("line {line}: {reason}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The chain is broken.
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Verifies an export (JSON Lines text) against the given public keys.
pub fn verify_export(text: &str, keys: &HashMap<i64, Vec<u8>>) -> Result<Verified, ExportError> {
    let mut header: Option<Header> = None;
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let format = |reason: String| ExportError::Format {
            line: i + 1,
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format(e.to_string()))?;
        match value.get("type").and_then(|t| t.as_str()) {
            Some("header") if header.is_none() => {
                header = Some(serde_json::from_value(value).map_err(|e| format(e.to_string()))?)
            }
            Some("event") => {
                let ev: EventLine =
                    serde_json::from_value(value).map_err(|e| format(e.to_string()))?;
                events.push(ev.to_record().map_err(format)?);
            }
            Some("checkpoint") => {
                let cp: CheckpointLine =
                    serde_json::from_value(value).map_err(|e| format(e.to_string()))?;
                checkpoints.push(cp.to_record().map_err(format)?);
            }
            _ => return Err(format("unknown or repeated line type".into())),
        }
    }
    let header = header.ok_or(ExportError::Format {
        line: 1,
        reason: "no header".into(),
    })?;
    let prev = hex::decode(&header.prev_hash).map_err(|e| ExportError::Format {
        line: 1,
        reason: e.to_string(),
    })?;
    let mut verifier = Verifier::new(header.from_seq, prev, checkpoints, keys);
    for rec in &events {
        verifier.push(rec);
    }
    let verified = verifier.finish()?;
    if verified.last_seq < header.to_seq {
        return Err(ChainError {
            seq: verified.last_seq + 1,
            reason: format!(
                "entries missing: the header promises entries up to {} (tail cut)",
                header.to_seq
            ),
        }
        .into());
    }
    Ok(verified)
}
