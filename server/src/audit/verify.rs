//! Verifying a chain of entries and its checkpoints, from the live database or an export.
//!
//! The same checks run in both cases: sequence numbers start where expected and have no
//! gaps, each entry names the previous hash and hashes to its stored hash, each checkpoint is
//! signed by a known key and matches the entry hash at its sequence number, signing key
//! versions never go backwards along the chain (a rotated-out key signs nothing later), and
//! no checkpoint lies beyond the last entry (a cut tail), and (with [`Verifier::bound_gaps`]) no
//! two consecutive checkpoints lie further apart than the writer allows (removed checkpoints).
//! The result names the first bad sequence number.
//! A live log also reports its unsigned tail (entries after the newest checkpoint), which
//! [`TailBound`] limits, and can be checked against the heads an outside witness recorded
//! ([`Verifier::witnessed`]), which catches a rewrite made with the signing key itself.

use std::collections::{BTreeMap, HashMap};

use crate::store::audit::{AuditRecord, CheckpointRecord};
use crate::store::audit_chain as chain;

/// The first problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at sequence {seq}: {reason}")]
pub struct ChainError {
    /// The first bad sequence number.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// What a successful verification covered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: i64,
    /// The last sequence number.
    pub last_seq: i64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The newest checkpoint's sequence number (0 if none).
    pub last_checkpoint: i64,
    /// Entries after the newest checkpoint, which no signature covers yet.
    pub unsigned_tail: i64,
    /// When the oldest of those was recorded (as stored), if there are any.
    pub first_unsigned_at: Option<String>,
    /// Heads recorded by the outside witness that were checked.
    pub witnessed: usize,
    /// Heads recorded by the outside witness at or before the sequence the log was cut at by
    /// retention, which can no longer be checked against entries (the one at the anchor is
    /// checked against the anchor).
    pub witnessed_before_cut: usize,
}

/// How long a live log's unsigned tail may be: `audit.checkpoint_every` entries, and no
/// entry unsigned for longer than `audit.checkpoint_seconds` plus [`TailBound::GRACE_SECONDS`].
#[derive(Clone, Copy, Debug)]
pub struct TailBound {
    /// Most entries after the newest checkpoint.
    pub max_entries: i64,
    /// Most seconds the oldest of them may wait for its checkpoint.
    pub max_age_seconds: i64,
}

impl TailBound {
    /// Time allowed on top of `checkpoint_seconds` for the periodic checkpoint's own write.
    pub const GRACE_SECONDS: i64 = 30;

    /// The bound a deployment configured.
    pub fn new(checkpoint_every: u64, checkpoint_seconds: u64) -> TailBound {
        TailBound {
            max_entries: i64::try_from(checkpoint_every).unwrap_or(i64::MAX),
            max_age_seconds: i64::try_from(checkpoint_seconds)
                .unwrap_or(i64::MAX / 2)
                .saturating_add(Self::GRACE_SECONDS),
        }
    }
}

impl Verified {
    /// Fails when the unsigned tail is longer or older than `bound` allows at `now`: the
    /// writer signs a checkpoint every `checkpoint_every` entries and every
    /// `checkpoint_seconds`, so such a tail was added outside it (or its server died before
    /// the next checkpoint, which a restart signs within `checkpoint_seconds`).
    pub fn check_tail(
        &self,
        bound: &TailBound,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ChainError> {
        let first = self.last_checkpoint + 1;
        if self.unsigned_tail > bound.max_entries {
            return Err(fail(
                first,
                format!(
                    "{} entries follow the last signed checkpoint (at {}), more than the {} the writer leaves unsigned (audit.checkpoint_every): entries were added without checkpoints, or checkpoints removed",
                    self.unsigned_tail, self.last_checkpoint, bound.max_entries
                ),
            ));
        }
        if let Some(at) = &self.first_unsigned_at {
            let age = chrono::DateTime::parse_from_rfc3339(at)
                .map(|t| (now - t.with_timezone(&chrono::Utc)).num_seconds())
                .unwrap_or(i64::MAX);
            if age > bound.max_age_seconds {
                return Err(fail(
                    first,
                    format!(
                        "{} entries after the last signed checkpoint (at {}) have waited {age} s for a checkpoint, longer than the {} s allowed (audit.checkpoint_seconds + {} s): they were added outside a running server, or it stopped without its final checkpoint",
                        self.unsigned_tail, self.last_checkpoint, bound.max_age_seconds, TailBound::GRACE_SECONDS
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Checks entries as they stream in; call [`Verifier::finish`] at the end.
pub struct Verifier {
    expected: i64,
    prev: Vec<u8>,
    checkpoints: BTreeMap<i64, CheckpointRecord>,
    first_error: Option<ChainError>,
    entries: i64,
    first_unsigned_at: Option<String>,
    witnessed: BTreeMap<i64, Vec<u8>>,
    start: i64,
    max_gap: Option<i64>,
}

fn fail(seq: i64, reason: impl Into<String>) -> ChainError {
    ChainError {
        seq,
        reason: reason.into(),
    }
}

impl Verifier {
    /// A verifier for entries from `first_seq` whose predecessor hashed to `prev_hash`, with
    /// the checkpoints of that range and the signing keys (version → Ed25519 public key).
    pub fn new(
        first_seq: i64,
        prev_hash: Vec<u8>,
        checkpoints: Vec<CheckpointRecord>,
        keys: &HashMap<i64, Vec<u8>>,
    ) -> Verifier {
        let mut first_error: Option<ChainError> = None;
        let mut map = BTreeMap::new();
        let mut checkpoints = checkpoints;
        checkpoints.sort_by_key(|cp| cp.seq);
        let mut newest_key: Option<i64> = None;
        for cp in checkpoints {
            // A rotation retires the old signing key: a later checkpoint signed by an older
            // version was made with a key that should no longer sign.
            if let Some(newest) = newest_key.filter(|&v| cp.key_version < v) {
                if first_error.as_ref().is_none_or(|e| cp.seq < e.seq) {
                    first_error = Some(fail(
                        cp.seq,
                        format!(
                            "checkpoint signed by signing key version {} after version {newest} had replaced it",
                            cp.key_version
                        ),
                    ));
                }
            }
            newest_key = Some(newest_key.map_or(cp.key_version, |v| v.max(cp.key_version)));
            let message =
                chain::checkpoint_message(cp.seq, &cp.head_hash, cp.key_version, &cp.signed_at);
            let valid = keys
                .get(&cp.key_version)
                .is_some_and(|k| chain::verify_signature(k, &message, &cp.signature));
            if !valid && first_error.as_ref().is_none_or(|e| cp.seq < e.seq) {
                first_error = Some(fail(
                    cp.seq,
                    format!(
                        "checkpoint signature is not valid for signing key version {}",
                        cp.key_version
                    ),
                ));
            }
            map.insert(cp.seq, cp);
        }
        Verifier {
            expected: first_seq,
            prev: prev_hash,
            checkpoints: map,
            first_error,
            entries: 0,
            first_unsigned_at: None,
            witnessed: BTreeMap::new(),
            start: first_seq - 1,
            max_gap: None,
        }
    }

    /// Also refuses two consecutive checkpoints (or the start of the range and the first
    /// checkpoint) more than `max_entries` apart: the writer signs a checkpoint at least
    /// every `audit.checkpoint_every` entries, so a wider gap means checkpoints were removed,
    /// and the entries after the earlier one may have been rewritten and signed over since.
    pub fn bound_gaps(&mut self, max_entries: i64) {
        self.max_gap = Some(max_entries.max(1));
    }

    /// The first gap between consecutive checkpoints wider than the bound, if any.
    fn check_gaps(&mut self) {
        let Some(max) = self.max_gap else { return };
        let mut prev = self.start;
        let mut found = None;
        for &seq in self.checkpoints.keys() {
            if seq - prev > max {
                found = Some((prev, seq));
                break;
            }
            prev = seq;
        }
        if let Some((prev, seq)) = found {
            let from = if prev == 0 {
                "the start of the log".to_owned()
            } else if prev == self.start {
                format!("the start of the range (after {prev})")
            } else {
                format!("the checkpoint at {prev}")
            };
            self.note(fail(
                prev + 1,
                format!(
                    "checkpoint gap: {} entries lie between {from} and the checkpoint at {seq}, more than the {max} the writer allows (audit.checkpoint_every): checkpoints were removed, and the entries after {prev} may have been rewritten and signed over since",
                    seq - prev
                ),
            ));
        }
    }

    /// Also checks the chain against heads an outside witness recorded: each must carry a
    /// valid signature, and the entry at its sequence number must have its hash.
    pub fn witnessed(&mut self, heads: Vec<CheckpointRecord>, keys: &HashMap<i64, Vec<u8>>) {
        for head in heads {
            let message = chain::checkpoint_message(
                head.seq,
                &head.head_hash,
                head.key_version,
                &head.signed_at,
            );
            let valid = keys
                .get(&head.key_version)
                .is_some_and(|k| chain::verify_signature(k, &message, &head.signature));
            if !valid {
                self.note(fail(
                    head.seq,
                    format!(
                        "the witness's head at this sequence does not verify with signing key version {} (the witness record or the stored keys were altered)",
                        head.key_version
                    ),
                ));
            }
            match self.witnessed.get(&head.seq) {
                Some(seen) if *seen != head.head_hash => self.note(fail(
                    head.seq,
                    "the witness recorded two different heads at this sequence",
                )),
                _ => {
                    self.witnessed.insert(head.seq, head.head_hash);
                }
            }
        }
    }

    fn note(&mut self, err: ChainError) {
        if self.first_error.as_ref().is_none_or(|e| err.seq < e.seq) {
            self.first_error = Some(err);
        }
    }

    /// Whether an entry problem was already found (later entries cannot be trusted).
    fn broken(&self) -> bool {
        self.first_error
            .as_ref()
            .is_some_and(|e| e.seq <= self.expected)
    }

    /// Checks the next entry.
    pub fn push(&mut self, rec: &AuditRecord) {
        if self.broken() {
            return;
        }
        let seq = self.expected;
        if rec.seq != seq {
            let why = if rec.seq > seq {
                format!("entry missing (next present entry is {})", rec.seq)
            } else {
                format!("entry {} appears out of order", rec.seq)
            };
            return self.note(fail(seq, why));
        }
        if rec.prev_hash != self.prev {
            return self.note(fail(
                seq,
                "previous-hash link does not match the preceding entry (reordered or removed)",
            ));
        }
        let hash = chain::entry_hash(&self.prev, seq, &rec.fields);
        if hash.as_slice() != rec.hash.as_slice() {
            return self.note(fail(seq, "entry content does not match its hash (altered)"));
        }
        if let Some(cp) = self.checkpoints.get(&seq) {
            if cp.head_hash != rec.hash {
                return self.note(fail(seq, "signed checkpoint does not match this entry"));
            }
        }
        if let Some(head) = self.witnessed.get(&seq) {
            if *head != rec.hash {
                return self.note(fail(
                    seq,
                    "entry differs from the head the outside witness recorded: the log was rewritten at or before this sequence",
                ));
            }
        }
        let newest_checkpoint = self.checkpoints.keys().next_back().copied().unwrap_or(0);
        if seq == newest_checkpoint + 1 {
            self.first_unsigned_at = Some(rec.fields.occurred_at.clone());
        }
        self.prev = rec.hash.clone();
        self.expected += 1;
        self.entries += 1;
    }

    /// The verdict, after the last entry.
    pub fn finish(mut self) -> Result<Verified, ChainError> {
        let last = self.expected - 1;
        self.check_gaps();
        if !self.broken() {
            if let Some((&seq, _)) = self.checkpoints.range(last + 1..).next() {
                self.note(fail(
                    last + 1,
                    format!("entries missing: a signed checkpoint covers sequence {seq} but the log ends at {last} (tail cut)"),
                ));
            }
        }
        if !self.broken() {
            if let Some((&seq, _)) = self.witnessed.range(last + 1..).next() {
                self.note(fail(
                    last + 1,
                    format!("entries missing: the outside witness recorded a head at sequence {seq} but the log ends at {last}"),
                ));
            }
        }
        let last_checkpoint = self.checkpoints.keys().next_back().copied().unwrap_or(0);
        let unsigned_tail = (last - last_checkpoint).max(0);
        match self.first_error {
            Some(e) => Err(e),
            None => Ok(Verified {
                entries: self.entries,
                last_seq: last,
                checkpoints: self.checkpoints.len(),
                last_checkpoint,
                unsigned_tail,
                first_unsigned_at: (unsigned_tail > 0)
                    .then_some(self.first_unsigned_at)
                    .flatten(),
                witnessed: self.witnessed.len(),
                witnessed_before_cut: 0,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::AuditFields;
    use ed25519_dalek::{Signer, SigningKey};

    fn entry(seq: i64, prev: &[u8]) -> AuditRecord {
        let fields = AuditFields {
            id: format!("e{seq}"),
            occurred_at: "2026-01-01T00:00:00.000000Z".into(),
            actor_type: "system".into(),
            action: "test".into(),
            outcome: "allowed".into(),
            ..AuditFields::default()
        };
        let hash = chain::entry_hash(prev, seq, &fields).to_vec();
        AuditRecord {
            seq,
            fields,
            prev_hash: prev.to_vec(),
            hash,
        }
    }

    fn checkpoint(key: &SigningKey, version: i64, rec: &AuditRecord) -> CheckpointRecord {
        let signed_at = "2026-01-01T00:00:00.000000Z".to_owned();
        let message = chain::checkpoint_message(rec.seq, &rec.hash, version, &signed_at);
        CheckpointRecord {
            seq: rec.seq,
            head_hash: rec.hash.clone(),
            signed_at,
            key_version: version,
            signature: key.sign(&message).to_bytes().to_vec(),
        }
    }

    fn run(order: [i64; 3]) -> Result<Verified, ChainError> {
        let keys_by_version: HashMap<i64, SigningKey> = [1, 2]
            .into_iter()
            .map(|v| (v, SigningKey::from_bytes(&[v as u8; 32])))
            .collect();
        let public: HashMap<i64, Vec<u8>> = keys_by_version
            .iter()
            .map(|(v, k)| (*v, k.verifying_key().to_bytes().to_vec()))
            .collect();
        let mut entries = Vec::new();
        let mut prev = chain::GENESIS.to_vec();
        for seq in 1..=3 {
            let e = entry(seq, &prev);
            prev = e.hash.clone();
            entries.push(e);
        }
        let checkpoints = entries
            .iter()
            .zip(order)
            .map(|(e, v)| checkpoint(&keys_by_version[&v], v, e))
            .collect();
        let mut verifier = Verifier::new(1, chain::GENESIS.to_vec(), checkpoints, &public);
        for e in &entries {
            verifier.push(e);
        }
        verifier.finish()
    }

    #[test]
    fn checkpoints_verify_across_a_signing_key_rotation() {
        assert_eq!(run([1, 2, 2]).map(|v| v.checkpoints), Ok(3));
    }

    #[test]
    fn a_rotated_out_key_signing_later_is_named() {
        let err = run([1, 2, 1]).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.reason.contains("after version 2"), "{err}");
    }
}
