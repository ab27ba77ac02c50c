//! Shared files and the segments of their encrypted contents.
//!
//! Names, message texts, partial chunks and thumbnails arrive here already encrypted; the
//! contents themselves never pass through the database (they live in the blob store).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{on, Conn, StoreError};
use crate::domain::{FileId, MessageId, UserId, WorkspaceId};

/// A file (or a resumable upload still arriving) as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FileRecord {
    /// Its id.
    pub id: FileId,
    /// The workspace whose quota and key it uses.
    pub workspace_id: WorkspaceId,
    /// What it is shared in: `channel` (or `document`).
    pub parent_kind: String,
    /// The channel's (or document's) id.
    pub parent_id: Uuid,
    /// The message it is attached to, once posted.
    pub message_id: Option<MessageId>,
    /// Who uploaded it.
    pub uploader_id: UserId,
    /// The encrypted, sanitized name.
    pub name_enc: Vec<u8>,
    /// The encrypted text of the message to post when the upload completes.
    pub text_enc: Option<Vec<u8>>,
    /// Its length in bytes (declared when a resumable upload starts).
    pub size: i64,
    /// Bytes received so far.
    pub received: i64,
    /// Plaintext bytes per encrypted chunk.
    pub chunk_bytes: i64,
    /// The per-file content key, wrapped under the workspace's data key.
    pub content_key: Vec<u8>,
    /// Content type detected from the bytes, once complete.
    pub content_type: Option<String>,
    /// `uploading`, `ready` or `quarantined`.
    pub status: String,
    /// What the malware scanner said (`clean`, `infected: <name>`, `error: ...`), if it ran.
    pub scan_result: Option<String>,
    /// Whether an encrypted thumbnail is stored.
    pub has_thumbnail: bool,
    /// When the upload started.
    pub created_at: DateTime<Utc>,
    /// When the upload completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// When an unfinished upload expires unless it makes progress (`None` once complete).
    pub expires_at: Option<DateTime<Utc>>,
    /// Why an image got no thumbnail (`too_large`, `undecodable`), if it did not.
    pub thumbnail_error: Option<String>,
}

/// One blob of whole encrypted chunks.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SegmentRecord {
    /// The file.
    pub file_id: FileId,
    /// Its position among the file's segments, from 0.
    pub seq: i64,
    /// Index of its first chunk in the file.
    pub first_chunk: i64,
    /// How many chunks it holds.
    pub chunks: i64,
    /// Its length in bytes of ciphertext.
    pub bytes: i64,
}

pub(crate) const COLUMNS: &str =
    "id, workspace_id, parent_kind, parent_id, message_id, uploader_id, name_enc, \
     text_enc, size, received, chunk_bytes, content_key, content_type, status, scan_result, \
     (thumbnail_enc IS NOT NULL) AS has_thumbnail, created_at, completed_at, expires_at, \
     thumbnail_error";

/// Stores a new file or upload (without tail or thumbnail).
pub async fn insert(conn: &mut Conn<'_>, f: &FileRecord) -> Result<(), StoreError> {
    let sql =
        "INSERT INTO files (id, workspace_id, parent_kind, parent_id, message_id, uploader_id, \
               name_enc, text_enc, size, received, chunk_bytes, content_key, content_type, status, \
               scan_result, created_at, completed_at, expires_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
               $18)";
    on!(conn, |c| sqlx::query(sql)
        .bind(f.id)
        .bind(f.workspace_id)
        .bind(&f.parent_kind)
        .bind(f.parent_id)
        .bind(f.message_id)
        .bind(f.uploader_id)
        .bind(&f.name_enc)
        .bind(&f.text_enc)
        .bind(f.size)
        .bind(f.received)
        .bind(f.chunk_bytes)
        .bind(&f.content_key)
        .bind(&f.content_type)
        .bind(&f.status)
        .bind(&f.scan_result)
        .bind(f.created_at)
        .bind(f.completed_at)
        .bind(f.expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The file with this id.
pub async fn by_id(conn: &mut Conn<'_>, id: FileId) -> Result<Option<FileRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM files WHERE id = $1 AND deleted_at IS NULL");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// A file with when it was deleted, if it was deleted and is kept (eDiscovery reads such
/// hidden files; every other reader treats them as gone).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeptFile {
    /// The file.
    #[sqlx(flatten)]
    pub record: FileRecord,
    /// When it was deleted (kept since under a hold or a grace period).
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The file `id` of `workspace`, hidden (deleted but kept) or not.
pub async fn kept_by_id(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    id: FileId,
) -> Result<Option<KeptFile>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS}, deleted_at FROM files WHERE id = $1 AND workspace_id = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .bind(workspace)
        .fetch_optional(c)
        .await)?)
}

/// The completed files shared in a parent, newest first.
pub async fn in_parent(
    conn: &mut Conn<'_>,
    kind: &str,
    parent: Uuid,
    limit: i64,
) -> Result<Vec<FileRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE parent_kind = $1 AND parent_id = $2 \
         AND status <> 'uploading' AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT $3"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(kind)
        .bind(parent)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// Bytes a workspace's files take or have reserved at `now` (uploads count their declared
/// length until they expire).
pub async fn workspace_usage(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let sql = "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE workspace_id = $1 \
               AND NOT (status = 'uploading' AND expires_at IS NOT NULL AND expires_at < $2)";
    let (used,): (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(now)
        .fetch_one(c)
        .await)?;
    Ok(used)
}

/// Records how far an unfinished upload got: bytes received, the encrypted partial chunk
/// (if any) and its new expiry; false if there is no such unfinished upload.
pub async fn record_progress(
    conn: &mut Conn<'_>,
    id: FileId,
    received: i64,
    tail_enc: Option<&[u8]>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE files SET received = $2, tail_enc = $3, expires_at = $4 \
               WHERE id = $1 AND status = 'uploading'";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(received)
        .bind(tail_enc)
        .bind(expires_at)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Up to `limit` unfinished uploads whose expiry passed before `now`, oldest expiry first.
pub async fn expired_uploads(
    conn: &mut Conn<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<FileId>, StoreError> {
    let sql = "SELECT id FROM files WHERE status = 'uploading' AND expires_at < $1 \
               ORDER BY expires_at LIMIT $2";
    let rows: Vec<(FileId,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// A workspace's unfinished uploads, oldest first (at most `limit`).
pub async fn uploads_in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    limit: i64,
) -> Result<Vec<FileRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE workspace_id = $1 AND status = 'uploading' \
         ORDER BY created_at, id LIMIT $2"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// The files attached to a message.
pub async fn attached_to(
    conn: &mut Conn<'_>,
    message: MessageId,
) -> Result<Vec<FileRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM files WHERE message_id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(message)
        .fetch_all(c)
        .await)?)
}

/// Which of `ids` have a row (finished or not).
pub async fn existing(
    conn: &mut Conn<'_>,
    ids: &[FileId],
) -> Result<std::collections::HashSet<FileId>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for batch in ids.chunks(200) {
        let marks: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM files WHERE id IN ({})", marks.join(", "));
        let rows: Vec<(FileId,)> = on!(conn, |c| {
            let mut q = sqlx::query_as(&sql);
            for id in batch {
                q = q.bind(*id);
            }
            q.fetch_all(c).await
        })?;
        found.extend(rows.into_iter().map(|(id,)| id));
    }
    Ok(found)
}

/// The encrypted partial chunk of an upload.
pub async fn tail(conn: &mut Conn<'_>, id: FileId) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = "SELECT tail_enc FROM files WHERE id = $1";
    let row: Option<(Option<Vec<u8>>,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(row.and_then(|(t,)| t))
}

/// The encrypted thumbnail of a file.
pub async fn thumbnail(conn: &mut Conn<'_>, id: FileId) -> Result<Option<Vec<u8>>, StoreError> {
    let sql = "SELECT thumbnail_enc FROM files WHERE id = $1";
    let row: Option<(Option<Vec<u8>>,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(c)
        .await)?;
    Ok(row.and_then(|(t,)| t))
}

/// Adds a segment (replacing one with the same number left by an interrupted attempt).
pub async fn put_segment(conn: &mut Conn<'_>, s: &SegmentRecord) -> Result<(), StoreError> {
    let delete = "DELETE FROM file_segments WHERE file_id = $1 AND seq = $2";
    on!(conn, |c| sqlx::query(delete)
        .bind(s.file_id)
        .bind(s.seq)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    let sql = "INSERT INTO file_segments (file_id, seq, first_chunk, chunks, bytes) \
               VALUES ($1, $2, $3, $4, $5)";
    on!(conn, |c| sqlx::query(sql)
        .bind(s.file_id)
        .bind(s.seq)
        .bind(s.first_chunk)
        .bind(s.chunks)
        .bind(s.bytes)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// A file's segments in order.
pub async fn segments(conn: &mut Conn<'_>, id: FileId) -> Result<Vec<SegmentRecord>, StoreError> {
    let sql = "SELECT file_id, seq, first_chunk, chunks, bytes FROM file_segments \
               WHERE file_id = $1 ORDER BY seq";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(id)
        .fetch_all(c)
        .await)?)
}

/// What completing an upload sets.
pub struct Completion<'a> {
    /// Detected content type.
    pub content_type: &'a str,
    /// `ready` or `quarantined`.
    pub status: &'a str,
    /// The scanner's verdict, if it ran.
    pub scan_result: Option<&'a str>,
    /// The encrypted thumbnail, if one was made.
    pub thumbnail_enc: Option<&'a [u8]>,
    /// Why an image got no thumbnail, if it did not.
    pub thumbnail_error: Option<&'a str>,
    /// The message it was attached to.
    pub message_id: Option<MessageId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Marks an upload complete.
pub async fn complete(
    conn: &mut Conn<'_>,
    id: FileId,
    done: &Completion<'_>,
) -> Result<(), StoreError> {
    let sql = "UPDATE files SET content_type = $2, status = $3, scan_result = $4, \
               thumbnail_enc = $5, message_id = $6, completed_at = $7, tail_enc = NULL, \
               text_enc = NULL, expires_at = NULL, thumbnail_error = $8 WHERE id = $1";
    on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(done.content_type)
        .bind(done.status)
        .bind(done.scan_result)
        .bind(done.thumbnail_enc)
        .bind(done.message_id)
        .bind(done.at)
        .bind(done.thumbnail_error)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes an unfinished upload whose expiry passed before `now`; false if there is none
/// (it completed, made progress or is gone).
pub async fn delete_expired(
    conn: &mut Conn<'_>,
    id: FileId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM files WHERE id = $1 AND status = 'uploading' AND expires_at < $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// Deletes a file and its segment records; false if it did not exist.
pub async fn delete(conn: &mut Conn<'_>, id: FileId) -> Result<bool, StoreError> {
    let sql = "DELETE FROM files WHERE id = $1";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n > 0)
}

/// The completed files `user` uploaded, oldest first (a data-subject export's).
pub async fn uploaded_by(conn: &mut Conn<'_>, user: UserId) -> Result<Vec<FileRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE uploader_id = $1 AND status = 'ready' \
         ORDER BY created_at, id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// Hides a file a legal hold keeps (or that waits out its message's grace period): readers
/// see it as gone, its row and blobs stay until the retention job deletes it after
/// `purge_after`; false if it was already hidden or is gone.
pub async fn hide(
    conn: &mut Conn<'_>,
    id: FileId,
    at: DateTime<Utc>,
    purge_after: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "UPDATE files SET deleted_at = $2, purge_after = $3 \
               WHERE id = $1 AND deleted_at IS NULL";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(id)
        .bind(at)
        .bind(purge_after)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A hidden file due for deletion, with what holds are decided on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HiddenFile {
    /// Its id.
    pub id: FileId,
    /// Who uploaded it.
    pub uploader_id: UserId,
    /// Where it was shared (`channel` or `document`).
    pub parent_kind: String,
    /// The channel's (or document's) id.
    pub parent_id: Uuid,
    /// The message it was posted with.
    pub message_id: Option<MessageId>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` hidden files of `workspace` whose `purge_after` has passed at `now`, after
/// the id `after`, in id order.
pub async fn hidden_due(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    now: DateTime<Utc>,
    after: FileId,
    limit: i64,
) -> Result<Vec<HiddenFile>, StoreError> {
    let sql = "SELECT id, uploader_id, parent_kind, parent_id, message_id, created_at FROM files \
               WHERE workspace_id = $1 AND deleted_at IS NOT NULL AND purge_after <= $2 \
               AND id > $3 ORDER BY id LIMIT $4";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(now)
        .bind(after)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}
