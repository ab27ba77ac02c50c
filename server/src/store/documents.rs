//! Documents: their details, access grants, encrypted update log, snapshots and versions.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, raw, Conn, StoreError};
use crate::domain::{ChannelId, CommentId, DocumentId, RoleId, UserId, VersionId, WorkspaceId};

/// A document as stored (its title encrypted).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DocumentRecord {
    /// Its id.
    pub id: DocumentId,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// The channel it is linked to, if any.
    pub channel_id: Option<ChannelId>,
    /// Encrypted title.
    pub title: Vec<u8>,
    /// What every workspace member gets: `none`, `view`, `comment` or `edit`.
    pub general_access: String,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When its details or content last changed.
    pub updated_at: DateTime<Utc>,
    /// Sequence number of the newest stored update batch.
    pub last_seq: i64,
}

/// What deciding one user's access to a document needs.
#[derive(Clone, Debug)]
pub struct AccessFacts {
    /// The user's role in the document's workspace, if a member.
    pub workspace_role: Option<RoleId>,
    /// The document's creator.
    pub created_by: UserId,
    /// The document's general access.
    pub general_access: String,
    /// The linked channel's kind, if linked.
    pub channel_kind: Option<String>,
    /// Whether the user is in the linked channel.
    pub channel_member: bool,
    /// The level granted to the user, if any.
    pub user_grant: Option<String>,
    /// The level granted to the user's workspace role, if any.
    pub role_grant: Option<String>,
}

#[derive(sqlx::FromRow)]
struct FactsRow {
    #[sqlx(flatten)]
    document: DocumentRecord,
    role_id: Option<RoleId>,
    channel_kind: Option<String>,
    channel_member: bool,
    user_grant: Option<String>,
    role_grant: Option<String>,
}

impl FactsRow {
    fn split(self) -> (DocumentRecord, AccessFacts) {
        let facts = AccessFacts {
            workspace_role: self.role_id,
            created_by: self.document.created_by,
            general_access: self.document.general_access.clone(),
            channel_kind: self.channel_kind,
            channel_member: self.channel_member,
            user_grant: self.user_grant,
            role_grant: self.role_grant,
        };
        (self.document, facts)
    }
}

/// An access grant on a document.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GrantRecord {
    /// `user` or `role`.
    pub principal_kind: String,
    /// The user's or role's id.
    pub principal_id: Uuid,
    /// `view`, `comment`, `edit` or `manage`.
    pub level: String,
    /// Who granted it.
    pub granted_by: UserId,
    /// When.
    pub granted_at: DateTime<Utc>,
}

/// One stored batch of updates (encrypted).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UpdateRecord {
    /// Its sequence number within the document.
    pub seq: i64,
    /// The encrypted Yjs update.
    pub body: Vec<u8>,
}

/// The compacted state of a document up to an update (encrypted).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SnapshotRecord {
    /// Every update up to this sequence number is merged in.
    pub upto_seq: i64,
    /// The encrypted Yjs state.
    pub state: Vec<u8>,
}

/// A named version (encrypted name and state).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct VersionRecord {
    /// Its id.
    pub id: VersionId,
    /// The document.
    pub document_id: DocumentId,
    /// Encrypted name.
    pub name: Vec<u8>,
    /// Encrypted Yjs state.
    pub state: Vec<u8>,
    /// Who made it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A document's columns. The room appends updates without touching the `documents` row (one
/// statement per batch), and compaction folds the newest compacted batch into `updated_at` and
/// `last_seq`; so both are read as the later of the row and the updates still in the log
/// (only log entries past the row's value count, so neither side is preferred blindly).
const COLUMNS: &str =
    "d.id, d.workspace_id, d.channel_id, d.title, d.general_access, d.created_by, d.created_at, \
     COALESCE((SELECT u.created_at FROM document_updates u WHERE u.document_id = d.id \
               AND u.created_at > d.updated_at ORDER BY u.seq DESC LIMIT 1), d.updated_at) AS updated_at, \
     COALESCE((SELECT MAX(u.seq) FROM document_updates u WHERE u.document_id = d.id \
               AND u.seq > d.last_seq), d.last_seq) AS last_seq";

const FACTS: &str = "m.role_id, c.kind AS channel_kind, (cm.user_id IS NOT NULL) AS channel_member, \
                     gu.level AS user_grant, gr.level AS role_grant FROM documents d \
     LEFT JOIN memberships m ON m.workspace_id = d.workspace_id AND m.user_id = $2 \
     LEFT JOIN channels c ON c.id = d.channel_id \
     LEFT JOIN channel_members cm ON cm.channel_id = d.channel_id AND cm.user_id = $2 \
     LEFT JOIN document_access gu ON gu.document_id = d.id AND gu.principal_kind = 'user' AND gu.principal_id = $2 \
     LEFT JOIN document_access gr ON gr.document_id = d.id AND gr.principal_kind = 'role' AND gr.principal_id = m.role_id";

/// Creates a document.
pub async fn insert(conn: &mut Conn<'_>, d: &DocumentRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO documents (id, workspace_id, channel_id, title, general_access, created_by, created_at, updated_at, last_seq) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)";
    on!(conn, |c| sqlx::query(sql)
        .bind(d.id)
        .bind(d.workspace_id)
        .bind(d.channel_id)
        .bind(&d.title)
        .bind(&d.general_access)
        .bind(d.created_by)
        .bind(d.created_at)
        .bind(d.updated_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The document with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: DocumentId,
) -> Result<Option<DocumentRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM documents d WHERE d.id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Access facts for `user` on `document`; `None` if there is no such document.
pub async fn access(
    conn: &mut Conn<'_>,
    document: DocumentId,
    user: UserId,
) -> Result<Option<AccessFacts>, StoreError> {
    let sql = format!("SELECT {COLUMNS}, {FACTS} WHERE d.id = $1");
    let row: Option<FactsRow> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(document)
        .bind(user)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(|r| r.split().1))
}

/// Every document of a workspace with `user`'s access facts, newest first.
pub async fn list_with_access(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Vec<(DocumentRecord, AccessFacts)>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, {FACTS} WHERE d.workspace_id = $1 ORDER BY d.created_at DESC, d.id"
    );
    let rows: Vec<FactsRow> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(user)
        .fetch_all(c)
        .await)?;
    Ok(rows.into_iter().map(FactsRow::split).collect())
}

/// Stores changed details (title, linked channel, general access).
pub async fn update_details(conn: &mut Conn<'_>, d: &DocumentRecord) -> Result<(), StoreError> {
    let sql = "UPDATE documents SET title = $2, channel_id = $3, general_access = $4, updated_at = $5 WHERE id = $1";
    on!(conn, |c| sqlx::query(sql)
        .bind(d.id)
        .bind(&d.title)
        .bind(d.channel_id)
        .bind(&d.general_access)
        .bind(d.updated_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a document with its grants, updates, snapshot and versions.
pub async fn delete(conn: &mut Conn<'_>, id: DocumentId) -> Result<bool, StoreError> {
    for table in [
        "document_comments",
        "document_access",
        "document_updates",
        "document_snapshots",
        "document_versions",
    ] {
        let sql = format!("DELETE FROM {table} WHERE document_id = $1");
        on!(conn, |c| sqlx::query(&sql)
            .bind(id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    let n = on!(conn, |c| sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Grants `level` to a user or role, replacing an earlier grant to them.
pub async fn set_grant(
    conn: &mut Conn<'_>,
    document: DocumentId,
    kind: &str,
    principal: Uuid,
    level: &str,
    by: UserId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO document_access (document_id, principal_kind, principal_id, level, granted_by, granted_at) \
               VALUES ($1, $2, $3, $4, $5, $6) \
               ON CONFLICT (document_id, principal_kind, principal_id) \
               DO UPDATE SET level = excluded.level, granted_by = excluded.granted_by, granted_at = excluded.granted_at";
    on!(conn, |c| sqlx::query(sql)
        .bind(document)
        .bind(kind)
        .bind(principal)
        .bind(level)
        .bind(by)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Removes a grant; whether there was one.
pub async fn remove_grant(
    conn: &mut Conn<'_>,
    document: DocumentId,
    kind: &str,
    principal: Uuid,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM document_access WHERE document_id = $1 AND principal_kind = $2 AND principal_id = $3";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(document)
        .bind(kind)
        .bind(principal)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// A document's grants.
pub async fn grants(
    conn: &mut Conn<'_>,
    document: DocumentId,
) -> Result<Vec<GrantRecord>, StoreError> {
    let sql =
        "SELECT principal_kind, principal_id, level, granted_by, granted_at FROM document_access \
               WHERE document_id = $1 ORDER BY principal_kind, granted_at";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(document)
        .fetch_all(c)
        .await)?)
}

/// Appends an encrypted update batch as number `seq`, in one statement. `false` (nothing
/// written) if the document no longer exists or `seq` is taken: stored already (the primary
/// key) or covered by the snapshot, i.e. another process appended to the document first.
///
/// On PostgreSQL the document's row is locked (`FOR KEY SHARE`) first, in its own statement:
/// compaction locks it `FOR UPDATE` before writing a snapshot, so an append waits for a
/// competing compaction to commit and its check then sees the snapshot (under READ COMMITTED a
/// single statement would check an older snapshot and could insert a number being compacted
/// away). SQLite's one write lock already serializes the two.
pub async fn append_update(
    conn: &mut Conn<'_>,
    document: DocumentId,
    seq: i64,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if let Conn::Pg(c) = conn {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM documents WHERE id = $1 FOR KEY SHARE")
                .bind(document)
                .fetch_optional(&mut **c)
                .await?;
        if found.is_none() {
            return Ok(false);
        }
    }
    let sql = "INSERT INTO document_updates (document_id, seq, body, created_at) \
               SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM documents WHERE id = $1) \
               AND NOT EXISTS (SELECT 1 FROM document_snapshots WHERE document_id = $1 AND upto_seq >= $2) \
               ON CONFLICT (document_id, seq) DO NOTHING";
    let rows = on!(conn, |c| sqlx::query(sql)
        .bind(document)
        .bind(seq)
        .bind(body)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(rows == 1)
}

/// [`append_update`] on the writer's thread (see [`super::raw`]).
pub fn append_update_raw(
    conn: &rusqlite::Connection,
    document: DocumentId,
    seq: i64,
    body: &[u8],
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let rows = conn
        .prepare_cached(
            "INSERT INTO document_updates (document_id, seq, body, created_at) \
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM documents WHERE id = ?1) \
             AND NOT EXISTS (SELECT 1 FROM document_snapshots \
               WHERE document_id = ?1 AND upto_seq >= ?2) \
             ON CONFLICT (document_id, seq) DO NOTHING",
        )?
        .execute((raw::id(&document.0), seq, body, raw::time(&at)))?;
    Ok(rows == 1)
}

/// A document's snapshot (if compacted) and the updates stored after it, in order.
pub async fn load(
    conn: &mut Conn<'_>,
    document: DocumentId,
) -> Result<(Option<SnapshotRecord>, Vec<UpdateRecord>), StoreError> {
    let snapshot: Option<SnapshotRecord> = on!(conn, |c| sqlx::query_as(
        "SELECT upto_seq, state FROM document_snapshots WHERE document_id = $1"
    )
    .bind(document)
    .fetch_optional(c)
    .await)?;
    let after = snapshot.as_ref().map(|s| s.upto_seq).unwrap_or(0);
    let updates = on!(conn, |c| {
        sqlx::query_as(
        "SELECT seq, body FROM document_updates WHERE document_id = $1 AND seq > $2 ORDER BY seq"
    )
    .bind(document)
    .bind(after)
    .fetch_all(c)
    .await
    })?;
    Ok((snapshot, updates))
}

/// Replaces the snapshot with one covering updates up to `upto_seq`, and drops those updates
/// after folding the newest of them into the document's `last_seq` and `updated_at`.
///
/// Only a newer snapshot replaces the stored one: `false` (nothing written, nothing dropped)
/// if the stored snapshot already covers `upto_seq` (another process compacted further, so the
/// caller's copy of the document is stale) or the document no longer exists. On PostgreSQL
/// the document's row is locked `FOR UPDATE` first, so appends wait for this compaction (see
/// [`append_update`]).
pub async fn save_snapshot(
    conn: &mut Conn<'_>,
    document: DocumentId,
    upto_seq: i64,
    state: &[u8],
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    if let Conn::Pg(c) = conn {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM documents WHERE id = $1 FOR UPDATE")
                .bind(document)
                .fetch_optional(&mut **c)
                .await?;
        if found.is_none() {
            return Ok(false);
        }
    }
    let sql = "INSERT INTO document_snapshots (document_id, upto_seq, state, created_at) \
               SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM documents WHERE id = $1) \
               ON CONFLICT (document_id) DO UPDATE SET upto_seq = excluded.upto_seq, state = excluded.state, \
               created_at = excluded.created_at WHERE document_snapshots.upto_seq < excluded.upto_seq";
    let written = on!(conn, |c| sqlx::query(sql)
        .bind(document)
        .bind(upto_seq)
        .bind(state)
        .bind(at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if written != 1 {
        return Ok(false);
    }
    let fold = "UPDATE documents SET last_seq = $2, updated_at = COALESCE((SELECT u.created_at \
                FROM document_updates u WHERE u.document_id = $1 AND u.seq <= $2 \
                AND u.created_at > documents.updated_at ORDER BY u.seq DESC LIMIT 1), updated_at) \
                WHERE id = $1 AND last_seq < $2";
    on!(conn, |c| sqlx::query(fold)
        .bind(document)
        .bind(upto_seq)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    on!(conn, |c| sqlx::query(
        "DELETE FROM document_updates WHERE document_id = $1 AND seq <= $2"
    )
    .bind(document)
    .bind(upto_seq)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(true)
}

/// Stores a named version.
pub async fn insert_version(conn: &mut Conn<'_>, v: &VersionRecord) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO document_versions (id, document_id, name, state, created_by, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    on!(conn, |c| sqlx::query(sql)
        .bind(v.id)
        .bind(v.document_id)
        .bind(&v.name)
        .bind(&v.state)
        .bind(v.created_by)
        .bind(v.created_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A document's versions, newest first.
pub async fn versions(
    conn: &mut Conn<'_>,
    document: DocumentId,
) -> Result<Vec<VersionRecord>, StoreError> {
    let sql = "SELECT id, document_id, name, state, created_by, created_at FROM document_versions \
               WHERE document_id = $1 ORDER BY created_at DESC, id DESC";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(document)
        .fetch_all(c)
        .await)?)
}

/// One version of a document.
pub async fn version(
    conn: &mut Conn<'_>,
    document: DocumentId,
    id: VersionId,
) -> Result<Option<VersionRecord>, StoreError> {
    let sql = "SELECT id, document_id, name, state, created_by, created_at FROM document_versions \
               WHERE document_id = $1 AND id = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(document)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// A comment on a document (encrypted body and anchor).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CommentRecord {
    /// Its id.
    pub id: CommentId,
    /// The document.
    pub document_id: DocumentId,
    /// Who wrote it.
    pub author_id: UserId,
    /// Encrypted text.
    pub body: Vec<u8>,
    /// Encrypted anchor (a Yjs relative position as JSON), if any.
    pub anchor: Option<Vec<u8>>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was resolved, if it was.
    pub resolved_at: Option<DateTime<Utc>>,
}

const COMMENT_COLUMNS: &str = "id, document_id, author_id, body, anchor, created_at, resolved_at";

/// Stores a comment.
pub async fn insert_comment(conn: &mut Conn<'_>, c: &CommentRecord) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO document_comments (id, document_id, author_id, body, anchor, created_at) \
               VALUES ($1, $2, $3, $4, $5, $6)";
    on!(conn, |x| sqlx::query(sql)
        .bind(c.id)
        .bind(c.document_id)
        .bind(c.author_id)
        .bind(&c.body)
        .bind(&c.anchor)
        .bind(c.created_at)
        .execute(x)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A document's comments, oldest first.
pub async fn comments(
    conn: &mut Conn<'_>,
    document: DocumentId,
) -> Result<Vec<CommentRecord>, StoreError> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM document_comments WHERE document_id = $1 ORDER BY created_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(document)
        .fetch_all(c)
        .await)?)
}

/// One comment of a document.
pub async fn comment(
    conn: &mut Conn<'_>,
    document: DocumentId,
    id: CommentId,
) -> Result<Option<CommentRecord>, StoreError> {
    let sql = format!(
        "SELECT {COMMENT_COLUMNS} FROM document_comments WHERE document_id = $1 AND id = $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(document)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// Marks a comment resolved (or open again with `None`).
pub async fn resolve_comment(
    conn: &mut Conn<'_>,
    id: CommentId,
    at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE document_comments SET resolved_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a comment.
pub async fn delete_comment(conn: &mut Conn<'_>, id: CommentId) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "DELETE FROM document_comments WHERE id = $1"
    )
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many documents there are (all workspaces).
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM documents"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` documents after `cursor`, in id order.
pub async fn after(
    conn: &mut Conn<'_>,
    cursor: Option<DocumentId>,
    limit: i64,
) -> Result<Vec<DocumentRecord>, StoreError> {
    Ok(match cursor {
        Some(id) => {
            let sql =
                format!("SELECT {COLUMNS} FROM documents d WHERE d.id > $1 ORDER BY d.id LIMIT $2");
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(id)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM documents d ORDER BY d.id LIMIT $1");
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
    })
}

/// Replaces a document's title ciphertext (same text, new key).
pub async fn set_title(
    conn: &mut Conn<'_>,
    id: DocumentId,
    title: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE documents SET title = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(title)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces an update batch's ciphertext.
pub async fn set_update_body(
    conn: &mut Conn<'_>,
    id: DocumentId,
    seq: i64,
    body: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE document_updates SET body = $3 WHERE document_id = $1 AND seq = $2"
    )
    .bind(id)
    .bind(seq)
    .bind(body)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a snapshot's ciphertext, if it still covers `upto_seq`.
pub async fn set_snapshot_state(
    conn: &mut Conn<'_>,
    id: DocumentId,
    upto_seq: i64,
    state: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE document_snapshots SET state = $3 WHERE document_id = $1 AND upto_seq = $2"
    )
    .bind(id)
    .bind(upto_seq)
    .bind(state)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a version's name and state ciphertexts.
pub async fn set_version(
    conn: &mut Conn<'_>,
    id: VersionId,
    name: &[u8],
    state: &[u8],
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE document_versions SET name = $2, state = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(name)
    .bind(state)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Replaces a comment's body and anchor ciphertexts.
pub async fn set_comment(
    conn: &mut Conn<'_>,
    id: CommentId,
    body: &[u8],
    anchor: Option<&[u8]>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE document_comments SET body = $2, anchor = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(body)
    .bind(anchor)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
