//! The audit hash chain and checkpoint signatures: pure functions. They sit with the
//! group-commit writer that appends and chains the entries ([`super::writer`]); the live
//! verifier and the offline verifier of exports (`audit::verify`, `audit::export`)
//! use them from here, so the store depends on no feature module.
//!
//! Entry hash (see policies/AUDIT-FORMAT.md): SHA-256 over `"concord-audit-v1"`, the previous
//! hash (32 bytes; zeros before the first entry), the sequence number (u64 big-endian) and each
//! field in a fixed order, every field as a u32 big-endian length then its bytes, an absent
//! field as length 0xFFFFFFFF. Checkpoint signatures are Ed25519 over
//! `"concord-audit-checkpoint-v1"`, seq (u64 BE), head hash, key version (u64 BE) and the
//! signing time (length-prefixed). An export's seal is signed the same way under
//! `"concord-audit-export-seal-v2"`, with the SHA-256 of every byte of the export before it. A cut of the log by retention is
//! signed under `"concord-audit-cut-v1"` ([`cut_message`]).

use sha2::{Digest, Sha256};

use super::audit::AuditFields;

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

fn field(h: &mut Sha256, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            h.update((v.len() as u32).to_be_bytes());
            h.update(v);
        }
        None => h.update(u32::MAX.to_be_bytes()),
    }
}

fn text(s: &Option<String>) -> Option<&[u8]> {
    s.as_deref().map(str::as_bytes)
}

/// The hash of entry `seq` with fields `f` following `prev`.
pub fn entry_hash(prev: &[u8], seq: i64, f: &AuditFields) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"concord-audit-v1");
    h.update(prev);
    h.update((seq as u64).to_be_bytes());
    field(&mut h, Some(f.id.as_bytes()));
    field(&mut h, Some(f.occurred_at.as_bytes()));
    field(&mut h, Some(f.actor_type.as_bytes()));
    field(&mut h, text(&f.actor_id));
    field(&mut h, text(&f.session_id));
    field(&mut h, Some(f.action.as_bytes()));
    field(&mut h, text(&f.target_type));
    field(&mut h, text(&f.target_id));
    field(&mut h, text(&f.workspace_id));
    field(&mut h, Some(f.outcome.as_bytes()));
    field(&mut h, text(&f.subject));
    field(&mut h, f.ip_enc.as_deref());
    field(&mut h, f.details_enc.as_deref());
    h.finalize().into()
}

/// The message a checkpoint signs.
pub fn checkpoint_message(seq: i64, head: &[u8], key_version: i64, signed_at: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(b"concord-audit-checkpoint-v1");
    m.extend_from_slice(&(seq as u64).to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&(key_version as u64).to_be_bytes());
    m.extend_from_slice(&(signed_at.len() as u32).to_be_bytes());
    m.extend_from_slice(signed_at.as_bytes());
    m
}

/// The message a cut of the log by retention signs (`store::audit_cuts`): the anchor
/// checkpoint's sequence number and head, the period applied, the cutoff and the time of
/// the cut, under the key version given.
pub fn cut_message(
    upto_seq: i64,
    head: &[u8],
    audit_days: i64,
    cutoff: &str,
    cut_at: &str,
    key_version: i64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(b"concord-audit-cut-v1");
    m.extend_from_slice(&(upto_seq as u64).to_be_bytes());
    m.extend_from_slice(&(head.len() as u32).to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(&(audit_days as u64).to_be_bytes());
    m.extend_from_slice(&(key_version as u64).to_be_bytes());
    for text in [cutoff, cut_at] {
        m.extend_from_slice(&(text.len() as u32).to_be_bytes());
        m.extend_from_slice(text.as_bytes());
    }
    m
}

/// The message an export's seal signs: the head it vouches for (`seq`, `head`), the digest
/// of every byte of the export before the seal line (header included), the key version and
/// the signing time.
pub fn seal_message(
    seq: i64,
    head: &[u8],
    content_hash: &[u8],
    key_version: i64,
    signed_at: &str,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(160);
    m.extend_from_slice(b"concord-audit-export-seal-v2");
    m.extend_from_slice(&(seq as u64).to_be_bytes());
    m.extend_from_slice(head);
    m.extend_from_slice(content_hash);
    m.extend_from_slice(&(key_version as u64).to_be_bytes());
    m.extend_from_slice(&(signed_at.len() as u32).to_be_bytes());
    m.extend_from_slice(signed_at.as_bytes());
    m
}

/// Checks an Ed25519 signature with a 32-byte public key.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}
