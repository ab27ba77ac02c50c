//! Data-subject requests (table `data_subject_requests`): the register of people's requests
//! under GDPR Art. 12 with their deadlines.
//!
//! Notes, extension reasons and outcomes arrive here encrypted. A request is never deleted;
//! its status moves from `open` (or `extended`) to `completed` or `refused` once.

use chrono::{DateTime, Utc};

use super::{on, Conn, StoreError};
use crate::domain::{DataSubjectRequestId, UserId};

/// A request as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RequestRecord {
    /// Its id.
    pub id: DataSubjectRequestId,
    /// Whose request it is.
    pub subject_id: UserId,
    /// What is asked (`access`, `portability`, ...).
    pub kind: String,
    /// When it was received.
    pub received_at: DateTime<Utc>,
    /// When it must be answered by, unless extended.
    pub due_at: DateTime<Utc>,
    /// The deadline after an extension.
    pub extended_until: Option<DateTime<Utc>>,
    /// Why it was extended, encrypted under the subject's key.
    pub extension_reason: Option<Vec<u8>>,
    /// `open`, `extended`, `completed` or `refused`.
    pub status: String,
    /// What was asked, in words, encrypted under the subject's key.
    pub note: Option<Vec<u8>>,
    /// How it was answered or why it was refused, encrypted under the subject's key.
    pub outcome: Option<Vec<u8>>,
    /// Who extended, completed or refused it last.
    pub handled_by: Option<UserId>,
    /// Who recorded it (the subject, for a request they filed).
    pub created_by: Option<UserId>,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was completed or refused.
    pub completed_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, subject_id, kind, received_at, due_at, extended_until, \
                       extension_reason, status, note, outcome, handled_by, created_by, \
                       created_at, completed_at";

/// What a list selects.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter {
    /// Only this person's requests.
    pub subject: Option<UserId>,
    /// Only requests in this status.
    pub status: Option<&'static str>,
    /// Only unanswered requests whose deadline (extended or not) is before this time.
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Stores a new request.
pub async fn insert(conn: &mut Conn<'_>, r: &RequestRecord) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO data_subject_requests ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    );
    on!(conn, |c| sqlx::query(&sql)
        .bind(r.id)
        .bind(r.subject_id)
        .bind(&r.kind)
        .bind(r.received_at)
        .bind(r.due_at)
        .bind(r.extended_until)
        .bind(&r.extension_reason)
        .bind(&r.status)
        .bind(&r.note)
        .bind(&r.outcome)
        .bind(r.handled_by)
        .bind(r.created_by)
        .bind(r.created_at)
        .bind(r.completed_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The request `id`.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: DataSubjectRequestId,
) -> Result<Option<RequestRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM data_subject_requests WHERE id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Up to `limit` requests matching `filter` after the id `after` (ids grow with time, so
/// this is the order they were recorded in).
pub async fn list(
    conn: &mut Conn<'_>,
    filter: Filter,
    after: Option<DataSubjectRequestId>,
    limit: i64,
) -> Result<Vec<RequestRecord>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM data_subject_requests WHERE 1 = 1");
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if after.is_some() {
        sql.push_str(&format!(" AND id > ${}", next()));
    }
    if filter.subject.is_some() {
        sql.push_str(&format!(" AND subject_id = ${}", next()));
    }
    if filter.status.is_some() {
        sql.push_str(&format!(" AND status = ${}", next()));
    }
    if filter.overdue_at.is_some() {
        sql.push_str(&format!(
            " AND status IN ('open', 'extended') AND COALESCE(extended_until, due_at) < ${}",
            next()
        ));
    }
    sql.push_str(&format!(" ORDER BY id LIMIT ${}", next()));
    Ok(on!(conn, |c| {
        let mut q = sqlx::query_as(&sql);
        if let Some(after) = after {
            q = q.bind(after);
        }
        if let Some(subject) = filter.subject {
            q = q.bind(subject);
        }
        if let Some(status) = filter.status {
            q = q.bind(status);
        }
        if let Some(at) = filter.overdue_at {
            q = q.bind(at);
        }
        q.bind(limit).fetch_all(c).await
    })?)
}

/// Extends an unanswered request (again, if it was extended before); false if it was
/// answered.
pub async fn extend(
    conn: &mut Conn<'_>,
    id: DataSubjectRequestId,
    until: DateTime<Utc>,
    reason: &[u8],
    by: Option<UserId>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE data_subject_requests SET status = 'extended', extended_until = $1, \
               extension_reason = $2, handled_by = $3 \
               WHERE id = $4 AND status IN ('open', 'extended')";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(until)
        .bind(reason)
        .bind(by)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Closes an unanswered request as `status` (`completed` or `refused`); false if it was
/// already answered.
pub async fn close(
    conn: &mut Conn<'_>,
    id: DataSubjectRequestId,
    status: &'static str,
    outcome: Option<&[u8]>,
    by: Option<UserId>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE data_subject_requests SET status = $1, outcome = $2, handled_by = $3, \
               completed_at = $4 WHERE id = $5 AND status IN ('open', 'extended')";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(status)
        .bind(outcome)
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}
