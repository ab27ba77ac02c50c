//! Channels and their members.

use chrono::{DateTime, Utc};

use super::{on, raw, Conn, StoreError};
use crate::domain::{ChannelId, RoleId, UserId, WorkspaceId};

/// A channel as stored: name, topic and purpose only encrypted (under the workspace's key),
/// the name also as a keyed blind index for uniqueness within the workspace.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChannelRecord {
    /// Its id.
    pub id: ChannelId,
    /// The workspace it belongs to.
    pub workspace_id: WorkspaceId,
    /// `public`, `private`, `direct` or `group`.
    pub kind: String,
    /// Blind index of the workspace and name (none for direct and group conversations).
    pub name_index: Option<String>,
    /// Name, encrypted (none for conversations).
    pub name_enc: Option<Vec<u8>>,
    /// What is being discussed now, encrypted (none when empty).
    pub topic_enc: Option<Vec<u8>>,
    /// What the channel is for, encrypted (none when empty).
    pub purpose_enc: Option<Vec<u8>>,
    /// Sorted member ids of a direct or group conversation, so each set of people has one.
    pub direct_key: Option<String>,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Set while archived (read-only).
    pub archived_at: Option<DateTime<Utc>>,
    /// Sequence number of the newest message.
    pub last_seq: i64,
}

/// A channel seen by one of its members, with their read state.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MyChannel {
    /// The channel.
    #[sqlx(flatten)]
    pub channel: ChannelRecord,
    /// The member's channel role.
    pub role: String,
    /// The last sequence number the member has read.
    pub last_read_seq: i64,
}

/// A member of a channel.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChannelMemberRecord {
    /// The account.
    pub user_id: UserId,
    /// `member` or `moderator`.
    pub role: String,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
    /// Their read pointer.
    pub last_read_seq: i64,
}

/// The columns of a [`ChannelRecord`] from `channels c`.
pub(crate) const COLUMNS: &str =
    "c.id, c.workspace_id, c.kind, c.name_index, c.name_enc, c.topic_enc, c.purpose_enc, \
     c.direct_key, c.created_by, c.created_at, c.archived_at, c.last_seq";

/// Creates a channel; a taken name or an existing conversation is a constraint error.
pub async fn insert(conn: &mut Conn<'_>, c: &ChannelRecord) -> Result<(), StoreError> {
    let sql = "INSERT INTO channels (id, workspace_id, kind, name_index, name_enc, topic_enc, purpose_enc, \
               direct_key, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    on!(conn, |c2| sqlx::query(sql)
        .bind(c.id)
        .bind(c.workspace_id)
        .bind(&c.kind)
        .bind(&c.name_index)
        .bind(&c.name_enc)
        .bind(&c.topic_enc)
        .bind(&c.purpose_enc)
        .bind(&c.direct_key)
        .bind(c.created_by)
        .bind(c.created_at)
        .execute(c2)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Which of `ids` are channels of `workspace`, in one query (the callers' lists are bounded:
/// an override's channels, in a document of at most 64 KiB, stay far below either backend's
/// limit on bound parameters).
pub async fn in_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    ids: &[ChannelId],
) -> Result<std::collections::HashSet<ChannelId>, StoreError> {
    if ids.is_empty() {
        return Ok(std::collections::HashSet::new());
    }
    let marks: Vec<String> = (2..ids.len() + 2).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id FROM channels WHERE workspace_id = $1 AND id IN ({})",
        marks.join(", ")
    );
    let rows: Vec<(ChannelId,)> = on!(conn, |c| {
        let mut q = sqlx::query_as(&sql).bind(workspace);
        for id in ids {
            q = q.bind(*id);
        }
        q.fetch_all(c).await
    })?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The channel of a workspace with this name index (channel names are stored sealed).
pub async fn by_name_index(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    index: &str,
) -> Result<Option<ChannelRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM channels c WHERE c.workspace_id = $1 AND c.name_index = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(index)
        .fetch_optional(c)
        .await)?)
}

/// The channel with this id.
pub async fn by_id(
    conn: &mut Conn<'_>,
    id: ChannelId,
) -> Result<Option<ChannelRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM channels c WHERE c.id = $1");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(c)
        .await)?)
}

/// The direct or group conversation of exactly these people, if it exists.
pub async fn by_direct_key(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    key: &str,
) -> Result<Option<ChannelRecord>, StoreError> {
    let sql =
        format!("SELECT {COLUMNS} FROM channels c WHERE c.workspace_id = $1 AND c.direct_key = $2");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(key)
        .fetch_optional(c)
        .await)?)
}

/// A user's channels in a workspace with their read state (in id order: names are encrypted,
/// callers sort after decrypting).
pub async fn for_member(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Vec<MyChannel>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, m.role, m.last_read_seq FROM channels c JOIN channel_members m ON m.channel_id = c.id \
         WHERE c.workspace_id = $1 AND m.user_id = $2 ORDER BY c.id"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .bind(user)
        .fetch_all(c)
        .await)?)
}

/// A workspace's public channels (for browsing), in id order.
pub async fn public_in(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
) -> Result<Vec<ChannelRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM channels c WHERE c.workspace_id = $1 AND c.kind = 'public' ORDER BY c.id");
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(workspace)
        .fetch_all(c)
        .await)?)
}

/// The encrypted details of a channel, as [`update_details`] stores them.
pub struct SealedDetails<'a> {
    /// Blind index of the workspace and name.
    pub name_index: Option<&'a str>,
    /// Name, encrypted.
    pub name_enc: Option<&'a [u8]>,
    /// Topic, encrypted (none when empty).
    pub topic_enc: Option<&'a [u8]>,
    /// Purpose, encrypted (none when empty).
    pub purpose_enc: Option<&'a [u8]>,
}

/// Sets name, topic and purpose (encrypted), emptying any plaintext left from before
/// encryption at rest; a taken name is a [`StoreError::Constraint`].
pub async fn update_details(
    conn: &mut Conn<'_>,
    id: ChannelId,
    d: &SealedDetails<'_>,
) -> Result<(), StoreError> {
    let sql =
        "UPDATE channels SET name_index = $1, name_enc = $2, topic_enc = $3, purpose_enc = $4, \
               topic = '', purpose = '' WHERE id = $5";
    on!(conn, |c| sqlx::query(sql)
        .bind(d.name_index)
        .bind(d.name_enc)
        .bind(d.topic_enc)
        .bind(d.purpose_enc)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Archives (with a time) or unarchives (with `None`) a channel.
pub async fn set_archived(
    conn: &mut Conn<'_>,
    id: ChannelId,
    at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    on!(conn, |c| sqlx::query(
        "UPDATE channels SET archived_at = $1 WHERE id = $2"
    )
    .bind(at)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Takes the next message sequence number of a channel.
pub async fn next_seq(conn: &mut Conn<'_>, id: ChannelId) -> Result<i64, StoreError> {
    let sql = "UPDATE channels SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql).bind(id).fetch_one(c).await)?;
    Ok(row.0)
}

/// A user's membership of a channel: (role, last read).
pub async fn membership(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<Option<ChannelMemberRecord>, StoreError> {
    let sql = "SELECT user_id, role, joined_at, last_read_seq FROM channel_members WHERE channel_id = $1 AND user_id = $2";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(channel)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// Adds a member (no-op if present); true if added.
pub async fn add_member(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
    role: &str,
    last_read_seq: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sql = "INSERT INTO channel_members (channel_id, user_id, role, joined_at, last_read_seq) \
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT (channel_id, user_id) DO NOTHING";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(channel)
        .bind(user)
        .bind(role)
        .bind(now)
        .bind(last_read_seq)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes a member; true if they were one.
pub async fn remove_member(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<bool, StoreError> {
    let sql = "DELETE FROM channel_members WHERE channel_id = $1 AND user_id = $2";
    let n = on!(conn, |c| sqlx::query(sql)
        .bind(channel)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes a user from every channel of a workspace (they left the workspace).
pub async fn remove_from_workspace(
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    user: UserId,
) -> Result<Vec<ChannelId>, StoreError> {
    let sql = "SELECT m.channel_id FROM channel_members m JOIN channels c ON c.id = m.channel_id \
               WHERE c.workspace_id = $1 AND m.user_id = $2";
    let ids: Vec<(ChannelId,)> = on!(conn, |c| sqlx::query_as(sql)
        .bind(workspace)
        .bind(user)
        .fetch_all(c)
        .await)?;
    for (id,) in &ids {
        remove_member(conn, *id, user).await?;
    }
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// A channel's members.
pub async fn members(
    conn: &mut Conn<'_>,
    channel: ChannelId,
) -> Result<Vec<ChannelMemberRecord>, StoreError> {
    let sql = "SELECT user_id, role, joined_at, last_read_seq FROM channel_members WHERE channel_id = $1 \
               ORDER BY joined_at, user_id";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(channel)
        .fetch_all(c)
        .await)?)
}

/// Moves a member's read pointer forward (never back); returns the pointer now.
pub async fn mark_read(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
    seq: i64,
) -> Result<i64, StoreError> {
    advance_read(conn, channel, user, seq).await?;
    Ok(membership(conn, channel, user)
        .await?
        .map(|m| m.last_read_seq)
        .unwrap_or(0))
}

/// Moves a member's read pointer forward to `seq` (never back), returning nothing.
pub async fn advance_read(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
    seq: i64,
) -> Result<(), StoreError> {
    let sql = "UPDATE channel_members SET last_read_seq = $1 WHERE channel_id = $2 AND user_id = $3 AND last_read_seq < $1";
    on!(conn, |c| sqlx::query(sql)
        .bind(seq)
        .bind(channel)
        .bind(user)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Unread mentions of a user in a channel after their read pointer.
pub async fn mention_count(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
    after: i64,
) -> Result<i64, StoreError> {
    let sql = "SELECT COUNT(*) FROM mentions WHERE user_id = $1 AND channel_id = $2 AND seq > $3";
    let row: (i64,) = on!(conn, |c| sqlx::query_as(sql)
        .bind(user)
        .bind(channel)
        .bind(after)
        .fetch_one(c)
        .await)?;
    Ok(row.0)
}

/// What deciding access to a channel needs, read in one query: the channel's kind, the
/// user's workspace role and its permissions, and the user's channel role.
#[derive(Clone, Debug, Default)]
pub struct ChannelAccess {
    /// `public`, `private`, `direct` or `group`.
    pub kind: String,
    /// The user's role in the channel's workspace, if a member.
    pub workspace_role: Option<RoleId>,
    /// The permission names that role grants.
    pub permissions: Vec<String>,
    /// The user's channel role (`member`, `moderator`), if in the channel.
    pub channel_role: Option<String>,
}

/// Access facts for `user` on `channel`; `None` if there is no such channel.
pub async fn access(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<Option<ChannelAccess>, StoreError> {
    let sql = "SELECT c.kind, m.role_id, cm.role, rp.permission FROM channels c \
               LEFT JOIN memberships m ON m.workspace_id = c.workspace_id AND m.user_id = $2 \
               LEFT JOIN channel_members cm ON cm.channel_id = c.id AND cm.user_id = $2 \
               LEFT JOIN role_permissions rp ON rp.role_id = m.role_id \
               WHERE c.id = $1";
    type Row = (String, Option<RoleId>, Option<String>, Option<String>);
    let rows: Vec<Row> = on!(conn, |c| sqlx::query_as(sql)
        .bind(channel)
        .bind(user)
        .fetch_all(c)
        .await)?;
    let mut out: Option<ChannelAccess> = None;
    for (kind, role, channel_role, permission) in rows {
        let entry = out.get_or_insert_with(|| ChannelAccess {
            kind,
            workspace_role: role,
            channel_role,
            permissions: Vec::new(),
        });
        entry.permissions.extend(permission);
    }
    Ok(out)
}

/// A channel with what deciding an action on it needs (the [`ChannelAccess`] facts), read in
/// one query: for writes that decide and then use the channel in the same transaction.
#[derive(Clone, Debug)]
pub struct ChannelWithAccess {
    /// The channel.
    pub channel: ChannelRecord,
    /// The user's access facts on it.
    pub access: ChannelAccess,
}

#[derive(sqlx::FromRow)]
struct ChannelWithAccessRow {
    #[sqlx(flatten)]
    channel: ChannelRecord,
    workspace_role: Option<RoleId>,
    channel_role: Option<String>,
    permissions: Option<String>,
}

/// The channel with `user`'s access facts on it, in one query (the role's permissions
/// aggregated into one space-separated column); `None` if there is no such channel.
pub async fn with_access(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<Option<ChannelWithAccess>, StoreError> {
    let aggregate = match conn.backend() {
        super::Backend::Sqlite => "group_concat(rp.permission, ' ')",
        super::Backend::Postgres => "string_agg(rp.permission, ' ')",
    };
    let sql = format!(
        "SELECT {COLUMNS}, m.role_id AS workspace_role, cm.role AS channel_role, \
         (SELECT {aggregate} FROM role_permissions rp WHERE rp.role_id = m.role_id) AS permissions \
         FROM channels c \
         LEFT JOIN memberships m ON m.workspace_id = c.workspace_id AND m.user_id = $2 \
         LEFT JOIN channel_members cm ON cm.channel_id = c.id AND cm.user_id = $2 \
         WHERE c.id = $1"
    );
    let row: Option<ChannelWithAccessRow> = on!(conn, |c| sqlx::query_as(&sql)
        .bind(channel)
        .bind(user)
        .fetch_optional(c)
        .await)?;
    Ok(row.map(|r| ChannelWithAccess {
        access: ChannelAccess {
            kind: r.channel.kind.clone(),
            workspace_role: r.workspace_role,
            permissions: r
                .permissions
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            channel_role: r.channel_role,
        },
        channel: r.channel,
    }))
}

/// What a post needs to know of its channel and its author, read on the writer's thread (see
/// [`super::raw`]): [`with_access`]'s facts, without the channel's encrypted fields.
pub struct PostingAccess {
    /// The channel's workspace.
    pub workspace_id: WorkspaceId,
    /// Whether the channel is archived (read-only).
    pub archived: bool,
    /// The author's access facts.
    pub access: ChannelAccess,
}

/// [`PostingAccess`] for `user` on `channel`; `None` if there is no such channel.
pub fn posting_access_raw(
    conn: &rusqlite::Connection,
    channel: ChannelId,
    user: UserId,
) -> Result<Option<PostingAccess>, StoreError> {
    use rusqlite::OptionalExtension;
    let mut statement = conn.prepare_cached(
        "SELECT c.workspace_id, c.kind, c.archived_at IS NOT NULL, m.role_id, cm.role, \
         (SELECT group_concat(rp.permission, ' ') FROM role_permissions rp \
          WHERE rp.role_id = m.role_id) \
         FROM channels c \
         LEFT JOIN memberships m ON m.workspace_id = c.workspace_id AND m.user_id = ?2 \
         LEFT JOIN channel_members cm ON cm.channel_id = c.id AND cm.user_id = ?2 \
         WHERE c.id = ?1",
    )?;
    let row = statement
        .query_row((raw::id(&channel.0), raw::id(&user.0)), |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, Option<Vec<u8>>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    let Some((workspace, kind, archived, role, channel_role, permissions)) = row else {
        return Ok(None);
    };
    Ok(Some(PostingAccess {
        workspace_id: WorkspaceId(raw::read_id(&workspace)?),
        archived,
        access: ChannelAccess {
            kind,
            workspace_role: role.map(|r| raw::read_id(&r).map(RoleId)).transpose()?,
            permissions: permissions
                .as_deref()
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            channel_role,
        },
    }))
}

/// A channel with one user's channel role (if they are in it).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChannelForMember {
    /// The channel.
    #[sqlx(flatten)]
    pub channel: ChannelRecord,
    /// The user's channel role, if a member.
    pub member_role: Option<String>,
}

/// The channel and whether `user` is in it, in one query.
pub async fn with_membership(
    conn: &mut Conn<'_>,
    channel: ChannelId,
    user: UserId,
) -> Result<Option<ChannelForMember>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS}, m.role AS member_role FROM channels c \
         LEFT JOIN channel_members m ON m.channel_id = c.id AND m.user_id = $2 WHERE c.id = $1"
    );
    Ok(on!(conn, |c| sqlx::query_as(&sql)
        .bind(channel)
        .bind(user)
        .fetch_optional(c)
        .await)?)
}

/// A channel still holding plaintext details from before encryption at rest.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LegacyChannel {
    /// Its id.
    pub id: ChannelId,
    /// Its workspace.
    pub workspace_id: WorkspaceId,
    /// Plaintext name (kept in `name_index` until encrypted), if not encrypted yet.
    pub name: Option<String>,
    /// Plaintext topic.
    pub topic: String,
    /// Plaintext purpose.
    pub purpose: String,
}

/// Up to `limit` channels with a plaintext name, topic or purpose.
pub async fn legacy_plaintext(
    conn: &mut Conn<'_>,
    limit: i64,
) -> Result<Vec<LegacyChannel>, StoreError> {
    let sql = "SELECT id, workspace_id, CASE WHEN name_enc IS NULL THEN name_index END AS name, \
               topic, purpose FROM channels \
               WHERE (name_index IS NOT NULL AND name_enc IS NULL) OR topic <> '' OR purpose <> '' \
               ORDER BY id LIMIT $1";
    Ok(on!(conn, |c| sqlx::query_as(sql)
        .bind(limit)
        .fetch_all(c)
        .await)?)
}

/// How many channels there are.
pub async fn count(conn: &mut Conn<'_>) -> Result<i64, StoreError> {
    Ok(on!(conn, |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM channels"
    )
    .fetch_one(c)
    .await)?)
}

/// Up to `limit` channels in id order after `after`, for re-encryption.
pub async fn after(
    conn: &mut Conn<'_>,
    after: Option<ChannelId>,
    limit: i64,
) -> Result<Vec<ChannelRecord>, StoreError> {
    Ok(match after {
        Some(a) => {
            let sql =
                format!("SELECT {COLUMNS} FROM channels c WHERE c.id > $1 ORDER BY c.id LIMIT $2");
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(a)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
        None => {
            let sql = format!("SELECT {COLUMNS} FROM channels c ORDER BY c.id LIMIT $1");
            on!(conn, |c| sqlx::query_as(&sql)
                .bind(limit)
                .fetch_all(c)
                .await)?
        }
    })
}
