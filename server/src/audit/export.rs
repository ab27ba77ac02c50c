//! The export format (JSON Lines), documented in policies/AUDIT-FORMAT.md, and the strict
//! reading side used by the offline verifier.
//!
//! Line 1 is a header; then one line per entry in sequence order; then one line per
//! checkpoint the range spans; then the seal, a signature over the last entry's hash and
//! every byte before it (the header included), so nothing in the file can change, go or be
//! added without the signing key. Binary fields are base64 (standard, padded), hashes
//! lowercase hex. Every line must be exactly the canonical encoding of its record: the
//! verifier re-encodes what it parsed and refuses any difference (duplicate or unknown keys,
//! another key order, white space, escapes or number forms).

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::{Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::verify::{ChainError, Verified, Verifier};
use crate::store::audit::{AuditFields, AuditRecord, CheckpointRecord};
use crate::store::audit_chain as chain;

/// The value of the header's `format`.
pub const FORMAT: &str = "concord-audit-export";
/// The format version this code writes and verifies.
pub const VERSION: u32 = 2;

/// The time range an export was asked for (as given, RFC 3339, or null).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFilters {
    /// Entries at or after this time.
    pub from: Option<String>,
    /// Entries before this time.
    pub to: Option<String>,
}

/// The first line of an export.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Always `header`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `concord-audit-export`.
    pub format: String,
    /// Format version: 2.
    pub version: u32,
    /// First sequence number in the export.
    pub from_seq: i64,
    /// Last sequence number in the export (`from_seq - 1` when the range is empty).
    pub to_seq: i64,
    /// Hex hash of entry `from_seq - 1` (64 zeros when `from_seq` is 1).
    pub prev_hash: String,
    /// The time range asked for.
    pub filters: ExportFilters,
    /// When it was made.
    pub exported_at: String,
    /// The signing key versions of the checkpoints and the seal, ascending.
    pub key_versions: Vec<i64>,
    /// The exporting server's `audit.checkpoint_every`: the most entries between two
    /// consecutive checkpoints (and between the range's start or end and the nearest one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<i64>,
}

/// One entry line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

/// The last line: a signature over the export's last entry and every byte before the seal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealLine {
    /// Always `seal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The header's `to_seq`.
    pub seq: i64,
    /// Hex hash of entry `seq` (the header's `prev_hash` when the range is empty).
    pub head_hash: String,
    /// Hex SHA-256 of every byte of the export before this line.
    pub content_hash: String,
    /// When it was signed (RFC 3339, as signed).
    pub signed_at: String,
    /// Signing key version.
    pub key_version: i64,
    /// Base64 Ed25519 signature over [`chain::seal_message`].
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
                ip_enc: self
                    .ip_enc
                    .as_deref()
                    .map(|s| base64_field("ip_enc", s))
                    .transpose()?,
                details_enc: self
                    .details_enc
                    .as_deref()
                    .map(|s| base64_field("details_enc", s))
                    .transpose()?,
            },
            prev_hash: hash_field("prev_hash", &self.prev_hash)?,
            hash: hash_field("hash", &self.hash)?,
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
            head_hash: hash_field("head_hash", &self.head_hash)?,
            signed_at: self.signed_at.clone(),
            key_version: self.key_version,
            signature: signature_field(&self.signature)?,
        })
    }
}

/// Lowercase hex of exactly 32 bytes.
fn hash_field(name: &str, s: &str) -> Result<Vec<u8>, String> {
    let canonical = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match hex::decode(s) {
        Ok(bytes) if canonical => Ok(bytes),
        _ => Err(format!("{name}: not 64 lowercase hex digits")),
    }
}

/// Standard padded base64 that re-encodes to the same text.
fn base64_field(name: &str, s: &str) -> Result<Vec<u8>, String> {
    match STANDARD.decode(s) {
        Ok(bytes) if STANDARD.encode(&bytes) == s => Ok(bytes),
        _ => Err(format!(
            "{name}: not canonical base64 (standard alphabet, padded)"
        )),
    }
}

fn signature_field(s: &str) -> Result<Vec<u8>, String> {
    let bytes = base64_field("signature", s)?;
    if bytes.len() != 64 {
        return Err("signature: not 64 bytes".into());
    }
    Ok(bytes)
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`, a real UTC time.
fn micros_time(name: &str, s: &str) -> Result<(), String> {
    let shaped = s.len() == 27
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            26 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if shaped && chrono::DateTime::parse_from_rfc3339(s).is_ok() {
        Ok(())
    } else {
        Err(format!(
            "{name}: not an RFC 3339 UTC time with microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
        ))
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
        if keys.insert(version, key).is_some() {
            return Err(format!(
                "public key file line {}: version {version} is listed twice",
                i + 1
            ));
        }
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
    /// The seal (the signature over the last entry and the whole file) does not hold.
    #[error("the export's seal does not verify: {0}")]
    Seal(String),
}

/// A JSON value parsed with every object's keys checked for duplicates (serde_json keeps
/// the last of repeated keys, which would let a line say two things).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Strict, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key {key:?}")));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses one line into `T`, refusing duplicate and unknown keys, and any encoding other
/// than the canonical one (what [`serde_json::to_string`] writes for `T`).
fn strict_line<T: Serialize + for<'de> Deserialize<'de>>(line: &str) -> Result<T, String> {
    let Strict(value) = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let typed: T = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let canonical = serde_json::to_string(&typed).map_err(|e| e.to_string())?;
    if canonical != line {
        let at = canonical
            .bytes()
            .zip(line.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(line.len()));
        return Err(format!(
            "not in canonical form from byte {} (key order, missing nulls, white space, escapes or number forms differ from policies/AUDIT-FORMAT.md)",
            at + 1
        ));
    }
    Ok(typed)
}

fn line_type(line: &str) -> Result<String, String> {
    let Strict(value) = serde_json::from_str(line).map_err(|e| e.to_string())?;
    match value.get("type") {
        Some(Value::String(t)) => Ok(t.clone()),
        _ => Err("no \"type\" string".into()),
    }
}

/// The place in the file's fixed order: header, events, checkpoints, seal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Start,
    Header,
    Events,
    Checkpoints,
    Sealed,
}

fn check_header(h: &Header) -> Result<(), String> {
    if h.kind != "header" || h.format != FORMAT {
        return Err(format!("the header must name format {FORMAT:?}"));
    }
    if h.version != VERSION {
        return Err(format!(
            "format version {} is not supported (this verifier reads version {VERSION}; version 1 exports carry no seal and cannot be verified strictly: export again)",
            h.version
        ));
    }
    if h.from_seq < 1 || h.to_seq < h.from_seq - 1 {
        return Err("from_seq must be at least 1 and to_seq at least from_seq - 1".into());
    }
    let prev = hash_field("prev_hash", &h.prev_hash)?;
    if h.from_seq == 1 && prev != chain::GENESIS {
        return Err("prev_hash must be 64 zeros when from_seq is 1".into());
    }
    micros_time("exported_at", &h.exported_at)?;
    if h.key_versions.is_empty() || h.key_versions.windows(2).any(|w| w[0] >= w[1]) {
        return Err("key_versions must list at least one version, ascending, once each".into());
    }
    if h.checkpoint_every.is_some_and(|n| n < 1) {
        return Err("checkpoint_every must be at least 1".into());
    }
    Ok(())
}

fn check_event(ev: &EventLine, to_seq: i64) -> Result<AuditRecord, String> {
    if ev.seq > to_seq {
        return Err(format!(
            "event {} lies beyond the header's to_seq {to_seq}",
            ev.seq
        ));
    }
    micros_time("occurred_at", &ev.occurred_at)?;
    if !matches!(
        ev.actor_type.as_str(),
        "user" | "bot" | "system" | "anonymous"
    ) {
        return Err(format!("actor_type {:?} is not known", ev.actor_type));
    }
    if !matches!(ev.outcome.as_str(), "allowed" | "denied" | "failed") {
        return Err(format!("outcome {:?} is not known", ev.outcome));
    }
    ev.to_record()
}

/// Verifies an export (JSON Lines text) against the given public keys: strictly, as
/// policies/AUDIT-FORMAT.md describes (layout, canonical lines, chain, checkpoints, seal).
pub fn verify_export(text: &str, keys: &HashMap<i64, Vec<u8>>) -> Result<Verified, ExportError> {
    verify_export_witnessed(text, keys, Vec::new())
}

/// [`verify_export`], and also against the heads an outside witness recorded
/// (`audit.witness`): each head within the export's range must carry a valid signature and
/// name the hash of the export's entry at its sequence number. This catches an export of a
/// rewritten database, which the server seals (and checkpoints) like any other. Heads
/// outside the range are left aside: an export may cover part of the log.
pub fn verify_export_witnessed(
    text: &str,
    keys: &HashMap<i64, Vec<u8>>,
    heads: Vec<CheckpointRecord>,
) -> Result<Verified, ExportError> {
    let format = |line: usize, reason: String| ExportError::Format { line, reason };
    if text.starts_with('\u{feff}') {
        return Err(format(1, "a byte order mark precedes the header".into()));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err(format(
            text.split('\n').count().max(1),
            "the file must end with a newline after the seal (it was cut)".into(),
        ));
    };
    let mut part = Part::Start;
    let mut header: Option<Header> = None;
    let mut events: Vec<AuditRecord> = Vec::new();
    let mut checkpoints: Vec<CheckpointRecord> = Vec::new();
    let mut seal: Option<(SealLine, [u8; 32])> = None;
    let mut digest = Sha256::new();
    for (i, line) in body.split('\n').enumerate() {
        let n = i + 1;
        let kind = line_type(line).map_err(|e| format(n, e))?;
        let to_seq = header.as_ref().map_or(0, |h| h.to_seq);
        match (kind.as_str(), part) {
            ("header", Part::Start) => {
                let h: Header = strict_line(line).map_err(|e| format(n, e))?;
                check_header(&h).map_err(|e| format(n, e))?;
                header = Some(h);
                part = Part::Header;
            }
            (_, Part::Start) => return Err(format(n, "the first line must be the header".into())),
            ("event", Part::Header | Part::Events) => {
                let ev: EventLine = strict_line(line).map_err(|e| format(n, e))?;
                events.push(check_event(&ev, to_seq).map_err(|e| format(n, e))?);
                part = Part::Events;
            }
            ("checkpoint", Part::Header | Part::Events | Part::Checkpoints) => {
                let cp: CheckpointLine = strict_line(line).map_err(|e| format(n, e))?;
                let from_seq = header.as_ref().map_or(1, |h| h.from_seq);
                if cp.seq < from_seq || cp.seq > to_seq {
                    return Err(format(
                        n,
                        format!(
                            "checkpoint {} lies outside the header's range {from_seq}..={to_seq}",
                            cp.seq
                        ),
                    ));
                }
                if checkpoints.last().is_some_and(|last| last.seq >= cp.seq) {
                    return Err(format(
                        n,
                        "checkpoints must follow in increasing seq, once each".into(),
                    ));
                }
                checkpoints.push(cp.to_record().map_err(|e| format(n, e))?);
                part = Part::Checkpoints;
            }
            ("seal", Part::Header | Part::Events | Part::Checkpoints) => {
                let s: SealLine = strict_line(line).map_err(|e| format(n, e))?;
                seal = Some((s, digest.clone().finalize().into()));
                part = Part::Sealed;
            }
            (_, Part::Sealed) => {
                return Err(format(n, "nothing may follow the seal".into()));
            }
            ("header", _) => return Err(format(n, "a second header".into())),
            ("event", _) => {
                return Err(format(
                    n,
                    "an event after the checkpoints (events come first, in order)".into(),
                ))
            }
            (other, _) => return Err(format(n, format!("unknown line type {other:?}"))),
        }
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    let Some(header) = header else {
        return Err(format(1, "no header".into()));
    };
    let Some((seal, content_hash)) = seal else {
        return Err(ExportError::Seal(format!(
            "the export ends without its seal: entries and checkpoints after the last line present are missing, and nothing vouches for the entries up to {}",
            header.to_seq
        )));
    };
    let prev = hash_field("prev_hash", &header.prev_hash).map_err(|e| format(1, e))?;
    let mut verifier = Verifier::new(header.from_seq, prev.clone(), checkpoints.clone(), keys);
    if let Some(every) = header.checkpoint_every {
        verifier.bound_gaps(every);
    }
    let in_range: Vec<CheckpointRecord> = heads
        .into_iter()
        .filter(|h| h.seq >= header.from_seq && h.seq <= header.to_seq)
        .collect();
    verifier.witnessed(in_range, keys);
    for rec in &events {
        verifier.push(rec);
    }
    let verified = verifier.finish()?;
    if verified.last_seq != header.to_seq {
        return Err(ChainError {
            seq: verified.last_seq + 1,
            reason: format!(
                "entries missing: the header promises entries up to {} (tail cut)",
                header.to_seq
            ),
        }
        .into());
    }
    if let Some(every) = header.checkpoint_every {
        // The writer signs within `every` entries of the last checkpoint, so the range's
        // end lies no further from the last checkpoint it holds (or from its start).
        let last_cp = checkpoints.last().map_or(header.from_seq - 1, |c| c.seq);
        if header.to_seq - last_cp > every {
            return Err(ChainError {
                seq: last_cp + 1,
                reason: format!(
                    "checkpoint gap: {} entries follow the last checkpoint in the export (at {last_cp}), more than the {every} the writer allows (audit.checkpoint_every): checkpoints were removed",
                    header.to_seq - last_cp
                ),
            }
            .into());
        }
    }
    let head = events.last().map_or(prev, |e| e.hash.clone());
    check_seal(&header, &seal, &content_hash, &head, &checkpoints, keys)?;
    Ok(Verified {
        last_checkpoint: header.to_seq,
        unsigned_tail: 0,
        first_unsigned_at: None,
        ..verified
    })
}

fn check_seal(
    header: &Header,
    seal: &SealLine,
    content_hash: &[u8; 32],
    head: &[u8],
    checkpoints: &[CheckpointRecord],
    keys: &HashMap<i64, Vec<u8>>,
) -> Result<(), ExportError> {
    let bad = |reason: String| Err(ExportError::Seal(reason));
    if seal.kind != "seal" {
        return bad("not a seal line".into());
    }
    let head_hash = hash_field("head_hash", &seal.head_hash).map_err(ExportError::Seal)?;
    let signed_content =
        hash_field("content_hash", &seal.content_hash).map_err(ExportError::Seal)?;
    let signature = signature_field(&seal.signature).map_err(ExportError::Seal)?;
    micros_time("signed_at", &seal.signed_at).map_err(ExportError::Seal)?;
    let Some(key) = keys.get(&seal.key_version) else {
        return bad(format!(
            "signing key version {} is not in the public key file",
            seal.key_version
        ));
    };
    let message = chain::seal_message(
        seal.seq,
        &head_hash,
        &signed_content,
        seal.key_version,
        &seal.signed_at,
    );
    if !chain::verify_signature(key, &message, &signature) {
        return bad(format!(
            "its signature is not valid for signing key version {}",
            seal.key_version
        ));
    }
    if seal.seq != header.to_seq {
        return bad(format!(
            "it covers sequence {} but the header's to_seq is {} (entries were added or removed after sealing)",
            seal.seq, header.to_seq
        ));
    }
    if head_hash != head {
        return bad(format!(
            "it vouches for a different entry {}: the entries after the last checkpoint were altered or replaced",
            seal.seq
        ));
    }
    if signed_content != content_hash {
        return bad(
            "the header, an entry, a checkpoint or a decrypted field changed after sealing (the content hash differs)"
                .into(),
        );
    }
    let newest = checkpoints.iter().map(|c| c.key_version).max();
    if newest.is_some_and(|v| v > seal.key_version) {
        return bad(format!(
            "signed by key version {} after version {} had replaced it",
            seal.key_version,
            newest.unwrap_or_default()
        ));
    }
    let used: BTreeSet<i64> = checkpoints
        .iter()
        .map(|c| c.key_version)
        .chain([seal.key_version])
        .collect();
    if used.into_iter().collect::<Vec<_>>() != header.key_versions {
        return bad("the header's key_versions do not list exactly the versions that sign the checkpoints and the seal".into());
    }
    Ok(())
}

/// Builds the seal as the export streams: feed every byte written before it, then sign.
pub struct Sealer {
    digest: Sha256,
}

impl Default for Sealer {
    fn default() -> Self {
        Sealer::new()
    }
}

impl Sealer {
    /// An empty digest.
    pub fn new() -> Sealer {
        Sealer {
            digest: Sha256::new(),
        }
    }

    /// Adds bytes that precede the seal.
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// The seal line (with its newline) over head `seq`/`head`, signed by `sign` with key
    /// version `key_version`.
    pub fn seal(
        self,
        seq: i64,
        head: &[u8],
        key_version: i64,
        sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>,
    ) -> Result<String, String> {
        let content_hash: [u8; 32] = self.digest.finalize().into();
        let signed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let message = chain::seal_message(seq, head, &content_hash, key_version, &signed_at);
        let signature = sign(&message)?;
        let line = SealLine {
            kind: "seal".into(),
            seq,
            head_hash: hex::encode(head),
            content_hash: hex::encode(content_hash),
            signed_at,
            key_version,
            signature: STANDARD.encode(signature),
        };
        serde_json::to_string(&line)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let err = strict_line::<Value>(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(err.contains("duplicate key \"a\""), "{err}");
        let err = strict_line::<Value>(r#"{"a":{"b":1,"b":1}}"#).unwrap_err();
        assert!(err.contains("duplicate key \"b\""), "{err}");
    }

    #[test]
    fn only_the_canonical_encoding_is_accepted() {
        assert!(strict_line::<ExportFilters>(r#"{"from":null,"to":null}"#).is_ok());
        for bad in [
            r#"{"to":null,"from":null}"#,
            r#"{ "from":null,"to":null}"#,
            r#"{"from":null}"#,
            r#"{"from":"\u0041","to":null}"#,
            r#"{"from":null,"to":null,"x":1}"#,
        ] {
            assert!(strict_line::<ExportFilters>(bad).is_err(), "{bad}");
        }
        assert!(hash_field("h", &"AB".repeat(32)).is_err());
        assert!(base64_field("b", "QQ").is_err());
        assert!(base64_field("b", "QR==").is_err());
        assert!(base64_field("b", "QQ==").is_ok());
        assert!(micros_time("t", "2026-01-01T00:00:00.000000Z").is_ok());
        assert!(micros_time("t", "2026-01-01T00:00:00Z").is_err());
        assert!(micros_time("t", "2026-13-01T00:00:00.000000Z").is_err());
    }
}
