//! Cuts of the audit log (migration 0030): the log is shortened only at a signed checkpoint.
//!
//! A cut is recorded first (`audit_cuts`, append-only, signed with the audit checkpoint
//! signing key: see [`CutRecord::signed_by`]), in the write that audits it; the
//! entries up to it and the checkpoints before it are then deleted a bounded batch per write,
//! which the database's triggers allow only below the newest cut. The anchor's checkpoint
//! stays: its signature proves the head the remaining chain starts from.

use super::audit::CheckpointRecord;
use super::{on, Conn, StoreError};

/// A recorded cut.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CutRecord {
    /// The anchor: entries up to this sequence number are removed.
    pub upto_seq: i64,
    /// The anchor checkpoint's head hash, which the first remaining entry names as previous.
    pub head_hash: Vec<u8>,
    /// When the cut was recorded (RFC 3339).
    pub cut_at: String,
    /// Checkpoints signed before this time could anchor it (RFC 3339).
    pub cutoff: String,
    /// The retention period applied, in days.
    pub audit_days: i64,
    /// The version of the audit checkpoint signing key that signed the cut.
    pub key_version: i64,
    /// Ed25519 signature over [`super::audit_chain::cut_message`] of the fields above.
    pub signature: Vec<u8>,
}

impl CutRecord {
    /// The message its signature covers.
    pub fn message(&self) -> Vec<u8> {
        super::audit_chain::cut_message(
            self.upto_seq,
            &self.head_hash,
            self.audit_days,
            &self.cutoff,
            &self.cut_at,
            self.key_version,
        )
    }

    /// Whether its signature verifies with `keys` (signing key versions and public keys).
    pub fn signed_by(&self, keys: &std::collections::HashMap<i64, Vec<u8>>) -> bool {
        keys.get(&self.key_version).is_some_and(|k| {
            super::audit_chain::verify_signature(k, &self.message(), &self.signature)
        })
    }
}

/// The newest cut, if the log was ever cut.
pub async fn newest(conn: &mut Conn<'_>) -> Result<Option<CutRecord>, StoreError> {
    let sql = "SELECT upto_seq, head_hash, cut_at, cutoff, audit_days, key_version, signature \
               FROM audit_cuts ORDER BY upto_seq DESC LIMIT 1";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_optional(c).await)?)
}

/// Every cut, oldest first.
pub async fn all(conn: &mut Conn<'_>) -> Result<Vec<CutRecord>, StoreError> {
    let sql = "SELECT upto_seq, head_hash, cut_at, cutoff, audit_days, key_version, signature \
               FROM audit_cuts ORDER BY upto_seq";
    Ok(on!(conn, |c| sqlx::query_as(sql).fetch_all(c).await)?)
}

/// The newest checkpoint signed before `cutoff` (RFC 3339 with microseconds, as checkpoints
/// store it), if any.
pub async fn newest_checkpoint_before(
    conn: &mut Conn<'_>,
    cutoff: &str,
) -> Result<Option<CheckpointRecord>, StoreError> {
    let sql = "SELECT seq, head_hash, signed_at, key_version, signature FROM audit_checkpoints \
               WHERE signed_at < $1 ORDER BY seq DESC LIMIT 1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(cutoff)
        .fetch_optional(c)
        .await)?)
}

/// Records a cut; false if a cut at or beyond it exists already.
pub async fn record(conn: &mut Conn<'_>, cut: &CutRecord) -> Result<bool, StoreError> {
    let sql = "INSERT INTO audit_cuts \
               (upto_seq, head_hash, cut_at, cutoff, audit_days, key_version, signature) \
               SELECT $1, $2, $3, $4, $5, $6, $7 WHERE NOT EXISTS \
               (SELECT 1 FROM audit_cuts WHERE upto_seq >= $1)";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(cut.upto_seq)
        .bind(&cut.head_hash)
        .bind(&cut.cut_at)
        .bind(&cut.cutoff)
        .bind(cut.audit_days)
        .bind(cut.key_version)
        .bind(&cut.signature)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The checkpoint at `seq`, if stored.
pub async fn checkpoint_at(
    conn: &mut Conn<'_>,
    seq: i64,
) -> Result<Option<CheckpointRecord>, StoreError> {
    let sql = "SELECT seq, head_hash, signed_at, key_version, signature FROM audit_checkpoints \
               WHERE seq = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(seq)
        .fetch_optional(c)
        .await)?)
}

/// Deletes up to `limit` of the oldest entries at or before `upto`; how many.
pub async fn delete_entries(conn: &mut Conn<'_>, upto: i64, limit: i64) -> Result<u64, StoreError> {
    let sql = "DELETE FROM audit_events WHERE seq IN \
               (SELECT seq FROM audit_events WHERE seq <= $1 ORDER BY seq LIMIT $2)";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(upto)
        .bind(limit)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// Deletes up to `limit` of the oldest checkpoints before `upto` (the anchor's stays); how
/// many.
pub async fn delete_checkpoints(
    conn: &mut Conn<'_>,
    upto: i64,
    limit: i64,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM audit_checkpoints WHERE seq IN \
               (SELECT seq FROM audit_checkpoints WHERE seq < $1 ORDER BY seq LIMIT $2)";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(upto)
        .bind(limit)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// How many entries at or before `upto` and checkpoints before it are left to delete.
pub async fn left(conn: &mut Conn<'_>, upto: i64) -> Result<i64, StoreError> {
    let sql = "SELECT (SELECT COUNT(*) FROM audit_events WHERE seq <= $1) \
               + (SELECT COUNT(*) FROM audit_checkpoints WHERE seq < $1)";
    Ok(on!(conn, |c| sqlx::query_scalar::<_, i64>(sql)
        .bind(upto)
        .fetch_one(c)
        .await)?)
}
