//! Channels, conversations and messages.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::chat::{
    ChannelChanges, ChannelMemberView, ChannelView, MessageVersionView, MessageView, Page,
    Visibility,
};
use crate::domain::{ChannelId, ChannelName, MessageBody, MessageId, UserId, WorkspaceId};
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::http::state::AppState;

/// A new channel.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "general", "visibility": "public", "topic": "Anything goes"}))]
pub struct CreateChannelRequest {
    /// Lowercase name without `#`.
    pub name: String,
    /// `public` (default) or `private`.
    #[serde(default)]
    pub visibility: Option<String>,
    /// Topic.
    #[serde(default)]
    pub topic: String,
    /// Purpose.
    #[serde(default)]
    pub purpose: String,
}

/// People to talk with (besides you).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_ids": ["01939e4e-0000-7000-8000-000000000001"]}))]
pub struct ConversationRequest {
    /// One person for a direct conversation, up to eight for a group.
    pub user_ids: Vec<UserId>,
}

/// Channel changes; omitted fields stay.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"topic": "Release on Friday"}))]
pub struct UpdateChannelRequest {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New topic.
    #[serde(default)]
    pub topic: Option<String>,
    /// New purpose.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// Archive state.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"archived": true}))]
pub struct ArchiveRequest {
    /// Archived channels are read-only.
    pub archived: bool,
}

/// Someone to add.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "01939e4e-0000-7000-8000-000000000001"}))]
pub struct AddMemberRequest {
    /// The account.
    pub user_id: UserId,
}

/// A new message.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Hello **team**", "client_msg_id": "c-0001"}))]
pub struct PostMessageRequest {
    /// Markdown source, up to 16 KiB.
    pub text: String,
    /// Reply in this message's thread.
    #[serde(default)]
    pub thread_root_id: Option<MessageId>,
    /// Idempotency key: a retried post with the same key returns the first message.
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

/// New text for a message.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Hello **everyone**"}))]
pub struct EditMessageRequest {
    /// Markdown source.
    pub text: String,
}

/// Read position.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"seq": 42}))]
pub struct ReadRequest {
    /// The last sequence number read.
    pub seq: i64,
}

/// History paging.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages before this sequence number.
    pub before: Option<i64>,
    /// Messages after this sequence number.
    pub after: Option<i64>,
    /// How many (1 to 200, default 50).
    pub limit: Option<i64>,
}

/// Neighbourhood size.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContextQuery {
    /// Messages on each side (default 10).
    pub around: Option<i64>,
}

/// A message with its neighbours.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MessageContext {
    /// The linked message.
    pub message: MessageView,
    /// Top-level messages around it, ascending.
    pub messages: Vec<MessageView>,
}

/// Your channels and conversations in a workspace, with unread and mention counts.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/channels", tag = "chat", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), responses((status = 200, body = [ChannelView])))]
pub async fn my_channels(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(s.chat.my_channels(&a, w).await?))
}

/// Create a channel; you join it as moderator.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/channels", tag = "chat", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), request_body = CreateChannelRequest,
    responses((status = 201, body = ChannelView), (status = 409, description = "name taken")))]
pub async fn create_channel(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<CreateChannelRequest>,
) -> Result<(StatusCode, Json<ChannelView>), ApiError> {
    let name = ChannelName::parse("name", &req.name)?;
    let visibility = match req.visibility.as_deref() {
        None | Some("public") => Visibility::Public,
        Some("private") => Visibility::Private,
        Some(_) => {
            return Err(crate::domain::ParseError {
                field: "visibility",
                message: "must be public or private".into(),
            }
            .into())
        }
    };
    let c = s
        .chat
        .create_channel(&a, w, visibility, name, req.topic, req.purpose)
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// The workspace's public channels.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/channels/browse", tag = "chat", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), responses((status = 200, body = [ChannelView])))]
pub async fn browse(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
) -> Result<Json<Vec<ChannelView>>, ApiError> {
    Ok(Json(s.chat.browse(&a, w).await?))
}

/// Open the direct or group conversation with these people.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/conversations", tag = "chat", security(("bearer" = [])),
    params(("workspace_id" = String, Path, format = Uuid)), request_body = ConversationRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn open_conversation(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(w): ApiPath<WorkspaceId>,
    ApiJson(req): ApiJson<ConversationRequest>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.open_conversation(&a, w, req.user_ids).await?))
}

/// One channel.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 200, body = ChannelView)))]
pub async fn get_channel(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.get(&a, c).await?))
}

/// Rename a channel or change its topic or purpose.
#[utoipa::path(patch, path = "/api/v1/channels/{channel_id}", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), request_body = UpdateChannelRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn update_channel(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<UpdateChannelRequest>,
) -> Result<Json<ChannelView>, ApiError> {
    let changes = ChannelChanges {
        name: req
            .name
            .as_deref()
            .map(|n| ChannelName::parse("name", n))
            .transpose()?,
        topic: req.topic,
        purpose: req.purpose,
    };
    Ok(Json(s.chat.update(&a, c, changes).await?))
}

/// Archive or unarchive a channel.
#[utoipa::path(put, path = "/api/v1/channels/{channel_id}/archived", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), request_body = ArchiveRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn set_archived(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<ArchiveRequest>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.set_archived(&a, c, req.archived).await?))
}

/// Join a public channel.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/join", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 200, body = ChannelView)))]
pub async fn join(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.join(&a, c).await?))
}

/// A channel's members.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/members", operation_id = "channel_members", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 200, body = [ChannelMemberView])))]
pub async fn members(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
) -> Result<Json<Vec<ChannelMemberView>>, ApiError> {
    Ok(Json(s.chat.members(&a, c).await?))
}

/// Add someone to a channel.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/members", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), request_body = AddMemberRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn add_member(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.add_member(&a, c, req.user_id).await?))
}

/// Leave a channel, or remove someone from it.
#[utoipa::path(delete, path = "/api/v1/channels/{channel_id}/members/{user_id}", operation_id = "remove_channel_member", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "removed")))]
pub async fn remove_member(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((c, u)): ApiPath<(ChannelId, UserId)>,
) -> Result<StatusCode, ApiError> {
    s.chat.remove_member(&a, c, u).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A page of history, ascending by sequence number.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/messages", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid), HistoryQuery), responses((status = 200, body = [MessageView])))]
pub async fn history(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    Ok(Json(
        s.chat
            .history(
                &a,
                c,
                Page {
                    before: q.before,
                    after: q.after,
                    limit: q.limit,
                },
            )
            .await?,
    ))
}

/// Post a message; answered once it is durable.
#[utoipa::path(post, path = "/api/v1/channels/{channel_id}/messages", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), request_body = PostMessageRequest,
    responses((status = 201, body = MessageView)))]
pub async fn post_message(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<PostMessageRequest>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let body = MessageBody::parse("text", req.text)?;
    let m = s
        .chat
        .post(&a, c, body, req.thread_root_id, req.client_msg_id)
        .await?;
    Ok((StatusCode::CREATED, Json(m)))
}

/// A channel's pinned messages.
#[utoipa::path(get, path = "/api/v1/channels/{channel_id}/pins", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), responses((status = 200, body = [MessageView])))]
pub async fn pins(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    Ok(Json(s.chat.pins(&a, c).await?))
}

/// Move your read pointer (reaches your other devices).
#[utoipa::path(put, path = "/api/v1/channels/{channel_id}/read", tag = "chat", security(("bearer" = [])),
    params(("channel_id" = String, Path, format = Uuid)), request_body = ReadRequest,
    responses((status = 200, body = ChannelView)))]
pub async fn mark_read(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(c): ApiPath<ChannelId>,
    ApiJson(req): ApiJson<ReadRequest>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(s.chat.mark_read(&a, c, req.seq).await?))
}

/// Edit your message; earlier text is kept as a version.
#[utoipa::path(patch, path = "/api/v1/messages/{message_id}", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), request_body = EditMessageRequest,
    responses((status = 200, body = MessageView)))]
pub async fn edit_message(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
    ApiJson(req): ApiJson<EditMessageRequest>,
) -> Result<Json<MessageView>, ApiError> {
    let body = MessageBody::parse("text", req.text)?;
    Ok(Json(s.chat.edit(&a, m, body).await?))
}

/// Delete a message (its author or a moderator).
#[utoipa::path(delete, path = "/api/v1/messages/{message_id}", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), responses((status = 204, description = "deleted")))]
pub async fn delete_message(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
) -> Result<StatusCode, ApiError> {
    s.chat.delete(&a, m).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message with its neighbours (for message links).
#[utoipa::path(get, path = "/api/v1/messages/{message_id}/context", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid), ContextQuery), responses((status = 200, body = MessageContext)))]
pub async fn context(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
    ApiQuery(q): ApiQuery<ContextQuery>,
) -> Result<Json<MessageContext>, ApiError> {
    let (message, messages) = s.chat.context(&a, m, q.around.unwrap_or(10)).await?;
    Ok(Json(MessageContext { message, messages }))
}

/// A thread: the root and its replies.
#[utoipa::path(get, path = "/api/v1/messages/{message_id}/thread", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), responses((status = 200, body = [MessageView])))]
pub async fn thread(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    Ok(Json(s.chat.thread(&a, m).await?))
}

/// Earlier versions of an edited message.
#[utoipa::path(get, path = "/api/v1/messages/{message_id}/versions", operation_id = "message_versions", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), responses((status = 200, body = [MessageVersionView])))]
pub async fn versions(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
) -> Result<Json<Vec<MessageVersionView>>, ApiError> {
    Ok(Json(s.chat.versions(&a, m).await?))
}

/// Add your reaction.
#[utoipa::path(put, path = "/api/v1/messages/{message_id}/reactions/{emoji}", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid), ("emoji" = String, Path)), responses((status = 200, body = MessageView)))]
pub async fn react(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((m, emoji)): ApiPath<(MessageId, String)>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(s.chat.react(&a, m, emoji, true).await?))
}

/// Remove your reaction.
#[utoipa::path(delete, path = "/api/v1/messages/{message_id}/reactions/{emoji}", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid), ("emoji" = String, Path)), responses((status = 200, body = MessageView)))]
pub async fn unreact(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath((m, emoji)): ApiPath<(MessageId, String)>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(s.chat.react(&a, m, emoji, false).await?))
}

/// Pin a message.
#[utoipa::path(put, path = "/api/v1/messages/{message_id}/pin", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), responses((status = 200, body = MessageView)))]
pub async fn pin(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(s.chat.pin(&a, m, true).await?))
}

/// Unpin a message.
#[utoipa::path(delete, path = "/api/v1/messages/{message_id}/pin", tag = "chat", security(("bearer" = [])),
    params(("message_id" = String, Path, format = Uuid)), responses((status = 200, body = MessageView)))]
pub async fn unpin(
    State(s): State<AppState>,
    Auth(a): Auth,
    ApiPath(m): ApiPath<MessageId>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(s.chat.pin(&a, m, false).await?))
}
