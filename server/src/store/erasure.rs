//! Erasure (GDPR Art. 17): the record of each erasure (table `erasures`) and the statements
//! that empty an account and find what its holder wrote.
//!
//! Which rows go and which stay is decided by the caller (`compliance::erasure`, walking the
//! data inventory and the workspaces' policies); this module only runs the statements. The
//! table and column names some functions take come from the data inventory, never from
//! input.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::retention::Candidate;
use super::{on, Conn, StoreError};
use crate::domain::{FileId, UserId, WorkspaceId};

/// One erasure as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ErasureRecord {
    /// Its id.
    pub id: Uuid,
    /// The person erased.
    pub user_id: UserId,
    /// Who asked for it (`None`: Concord itself).
    pub requested_by: Option<UserId>,
    /// `running`, `waiting_on_holds` or `done`.
    pub status: String,
    /// What it did so far (JSON, counts only).
    pub report: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it last advanced.
    pub updated_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, requested_by, status, report, started_at, updated_at, finished_at";

/// Records a new erasure; a second one of the same person is a [`StoreError::Constraint`].
pub async fn insert(conn: &mut Conn<'_>, e: &ErasureRecord) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO erasures ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    on!(conn, |c| sqlx::query(&sql)
        .bind(e.id)
        .bind(e.user_id)
        .bind(e.requested_by)
        .bind(&e.status)
        .bind(&e.report)
        .bind(e.started_at)
        .bind(e.updated_at)
        .bind(e.finished_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The erasure of `user`, if one was asked for.
pub async fn of_user(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Option<ErasureRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM erasures WHERE user_id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// The erasures not finished yet (resumed at start).
pub async fn running(conn: &mut Conn<'_>) -> Result<Vec<ErasureRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM erasures WHERE status = 'running' ORDER BY started_at");
    Ok(on!(conn, |c| sqlx::query_as(&sql).fetch_all(c).await)?)
}

/// The erasures whose key is destroyed but some of whose content legal holds kept.
pub async fn waiting_on_holds(conn: &mut Conn<'_>) -> Result<Vec<ErasureRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM erasures WHERE status = 'waiting_on_holds' ORDER BY started_at"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql).fetch_all(c).await)?)
}

/// Saves an erasure's progress and status (`running`, `waiting_on_holds`, `done`), with
/// the time its key was destroyed once it was.
pub async fn advance(
    conn: &mut Conn<'_>,
    id: Uuid,
    report: &str,
    now: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    status: &str,
) -> Result<(), StoreError> {
    let sql = "UPDATE erasures SET report = $2, updated_at = $3, finished_at = $4, status = $5 \
               WHERE id = $1";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(report)
        .bind(now)
        .bind(finished_at)
        .bind(status)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Empties an account: no email, name, out-of-office note or password; its email's blind index replaced by
/// `index` (unique and unrelated to the address, so the address may be used again); disabled
/// and marked erased at `now`. False if it was already erased.
pub async fn empty_account(
    conn: &mut Conn<'_>,
    user: UserId,
    index: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE users SET email_enc = NULL, display_name_enc = NULL, email = '', \
               display_name = '', out_of_office_enc = NULL, password_hash = NULL, \
               email_index = $2, \
               email_verified = FALSE, system_role_id = NULL, status = 'disabled', \
               erased_at = $3, updated_at = $3 WHERE id = $1 AND erased_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(user)
        .bind(index)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// When `user` was erased, if they were.
pub async fn erased_at(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let sql = "SELECT erased_at FROM users WHERE id = $1";
    let at: Option<Option<DateTime<Utc>>> = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_optional(c)
        .await)?;
    Ok(at.flatten())
}

/// Deletes the rows of `table` whose `column` is `user` (a table and column the data
/// inventory or the schema names); how many.
pub async fn delete_rows_of(
    conn: &mut Conn<'_>,
    table: &'static str,
    column: &'static str,
    user: UserId,
) -> Result<u64, StoreError> {
    let sql = format!("DELETE FROM {table} WHERE {column} = $1");
    Ok(on!(conn, |c| sqlx::query(&sql)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// The workspaces (and their channels') where `user` wrote messages, uploaded files or
/// commented on documents or workflow tasks: where their content is.
pub async fn workspaces_with_content(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT c.workspace_id FROM messages m JOIN channels c ON c.id = m.channel_id \
               WHERE m.author_id = $1 \
               UNION SELECT workspace_id FROM files WHERE uploader_id = $1 \
               UNION SELECT d.workspace_id FROM document_comments k \
                 JOIN documents d ON d.id = k.document_id WHERE k.author_id = $1 \
               UNION SELECT workspace_id FROM workflow_task_comments WHERE author_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// Up to `limit` messages `user` wrote in `workspace`, after the cursor `after` (posting
/// time and id) in that order, with what holds are decided on.
pub async fn messages_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
    after: (DateTime<Utc>, Uuid),
    limit: i64,
) -> Result<Vec<Candidate>, StoreError> {
    let sql = "SELECT m.id, m.channel_id, m.seq, m.author_id, m.thread_root_id, m.created_at, \
               m.deleted_at FROM messages m JOIN channels c ON c.id = m.channel_id \
               WHERE c.workspace_id = $1 AND m.author_id = $2 \
               AND (m.created_at > $3 OR (m.created_at = $3 AND m.id > $4)) \
               ORDER BY m.created_at, m.id LIMIT $5";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .bind(after.0)
        .bind(after.1)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// A file someone uploaded, with what holds are decided on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UploadedFile {
    /// Its id.
    pub id: FileId,
    /// Where it was shared (`channel` or `document`).
    pub parent_kind: String,
    /// The channel's (or document's) id.
    pub parent_id: Uuid,
    /// Whether it was finished (`ready`) rather than still uploading or quarantined.
    pub status: String,
    /// The message it was posted with, if that still exists.
    pub message_id: Option<crate::domain::MessageId>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` files `user` uploaded in `workspace` after the id `after`, in id order
/// (hidden ones included).
pub async fn files_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
    after: FileId,
    limit: i64,
) -> Result<Vec<UploadedFile>, StoreError> {
    let sql = "SELECT id, parent_kind, parent_id, status, message_id, created_at FROM files \
               WHERE workspace_id = $1 AND uploader_id = $2 AND id > $3 ORDER BY id LIMIT $4";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Deletes the comments `user` wrote on documents and workflow tasks of `workspace`; how
/// many.
pub async fn delete_comments_of(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<u64, StoreError> {
    let documents = "DELETE FROM document_comments WHERE author_id = $1 AND document_id IN \
               (SELECT id FROM documents WHERE workspace_id = $2)";
    let tasks = "DELETE FROM workflow_task_comments WHERE author_id = $1 AND workspace_id = $2";
    let mut n = 0;
    for sql in [documents, tasks] {
        n += on!(conn, |c| sqlx::query(sql)
            .bind(user)
            .bind(workspace)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(n)
}

/// The workspaces `user` is a member of.
pub async fn memberships_of(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT workspace_id FROM memberships WHERE user_id = $1";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// The channels (with their workspace) `user` is a member of.
pub async fn channel_memberships_of(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<Vec<(WorkspaceId, crate::domain::ChannelId)>, StoreError> {
    let sql = "SELECT c.workspace_id, c.id FROM channel_members m \
               JOIN channels c ON c.id = m.channel_id WHERE m.user_id = $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// Whether `user` is a bot's account.
pub async fn is_bot(conn: &mut Conn<'_>, user: UserId) -> Result<bool, StoreError> {
    let sql = "SELECT COUNT(*) FROM bots WHERE user_id = $1";
    let n: i64 = on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .fetch_one(c)
        .await)?;
    Ok(n > 0)
}

/// Deletes the invitations addressed to `user`'s email (matched by its blind index, before
/// erasure replaces it); how many.
pub async fn delete_invitations_to(conn: &mut Conn<'_>, user: UserId) -> Result<u64, StoreError> {
    let sql = "DELETE FROM invitations WHERE email_index IS NOT NULL AND email_index = \
               (SELECT email_index FROM users WHERE id = $1)";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// Deletes the document access granted to `user` in person; how many.
pub async fn delete_document_access_of(
    conn: &mut Conn<'_>,
    user: UserId,
) -> Result<u64, StoreError> {
    let sql = "DELETE FROM document_access WHERE principal_kind = 'user' AND principal_id = $1";
    Ok(on!(conn, |c| sqlx::query(sql)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?)
}

/// The workspaces whose only holder of `owner_role` is `user`.
pub async fn sole_owner_of(
    conn: &mut Conn<'_>,
    user: UserId,
    owner_role: crate::domain::RoleId,
) -> Result<Vec<WorkspaceId>, StoreError> {
    let sql = "SELECT m.workspace_id FROM memberships m WHERE m.user_id = $1 AND m.role_id = $2 \
               AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.workspace_id = m.workspace_id \
               AND o.role_id = $2 AND o.user_id <> $1)";
    Ok(on!(conn, |c| sqlx::query_scalar(sql)
        .bind(user)
        .bind(owner_role)
        .fetch_all(c)
        .await)?)
}
