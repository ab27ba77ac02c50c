//! Answering a search: the request and page types, query-time permission filters, `from:@`
//! and `in:` resolution, paging cursors.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

use super::commits::Flush;
use super::index::Filters;
use super::{directory, query, SearchError, SearchService};
use crate::domain::{ChannelId, DocumentId, UserId, WorkspaceId};
use crate::error::Error;
use crate::policy::PhiRead;
use crate::rbac::{self, Action, Actor, Resource};

/// Most results per page.
const MAX_LIMIT: usize = 100;
/// How long a query waits for the indexer to apply what was already published and commit its
/// workspace's index (a bound for an overloaded indexer, not a delay anyone should see).
const FRESHNESS_WAIT: Duration = Duration::from_secs(5);

/// A search request, as parsed at the edge.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// The workspace searched.
    pub workspace: WorkspaceId,
    /// The query text.
    pub q: String,
    /// Newest first instead of best match first.
    pub by_date: bool,
    /// Results per page.
    pub limit: Option<usize>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
}

/// One result with what a client needs to show it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SearchResult {
    /// `message`, `document` or `file`.
    pub kind: String,
    /// The message, document or file id.
    pub id: String,
    /// The document's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The file's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The file's content type, detected from its bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The file's length in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The message the file was posted with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The message's or file's channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// The channel's name (none for conversations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_name: Option<String>,
    /// `public`, `private`, `direct` or `group`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_kind: Option<String>,
    /// The message's author, the document's creator, or who shared the file.
    pub author_id: String,
    /// Thread root, for replies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_root_id: Option<String>,
    /// Position in the channel (messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// When the message was posted, the document last changed or the file shared.
    pub created_at: DateTime<Utc>,
    /// The matching passage as HTML: matches in `<b>`, everything else escaped.
    pub snippet_html: String,
}

/// The index's state, so a client can say results may be incomplete.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct IndexStatus {
    /// `ready`, or `rebuilding` (results are partial meanwhile).
    pub state: String,
    /// Messages indexed so far by the rebuild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<u64>,
    /// Messages the rebuild will index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// A page of results.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    /// Results, best first or newest first.
    pub results: Vec<SearchResult>,
    /// How many results match in all (only what the searcher may see).
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Whether the index is complete.
    pub index: IndexStatus,
}

fn cursor_offset(cursor: Option<&str>) -> Result<usize, SearchError> {
    let Some(cursor) = cursor else {
        return Ok(0);
    };
    let bad = || {
        SearchError::Query(query::QueryError {
            at: 0,
            message: "the cursor is not one this server handed out".into(),
        })
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("o:")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n <= 10_000)
        .ok_or_else(bad)
}

fn cursor_for(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn query_error(at: usize, message: String) -> SearchError {
    SearchError::Query(query::QueryError { at, message })
}

impl SearchService {
    /// Waits (briefly) until the indexer has applied every event already published and
    /// committed `workspace`'s index (the command line's retention pass, before it stops).
    pub async fn catch_up(&self, workspace: WorkspaceId) {
        self.caught_up(workspace).await
    }

    /// Waits (briefly) until the indexer has applied every event already published and
    /// committed `workspace`'s index, so the query sees what was just written.
    async fn caught_up(&self, workspace: WorkspaceId) {
        let sender = self.inner.flush.lock().ok().and_then(|f| f.clone());
        if let Some(sender) = sender {
            let (done, answered) = oneshot::channel();
            // Queuing the request and its answer share one bound: a full queue is waited
            // for no longer than a slow commit.
            let asked = async {
                if sender.send(Flush { workspace, done }).await.is_ok() {
                    let _ = answered.await;
                }
            };
            if tokio::time::timeout(FRESHNESS_WAIT, asked).await.is_err() {
                tracing::warn!(%workspace, "search: the indexer did not catch up in time");
            }
        }
    }
}

impl SearchService {
    /// Searches `workspace` for what `actor` may read now.
    #[tracing::instrument(skip(self, actor, request), fields(workspace = %request.workspace))]
    pub async fn search(&self, actor: &Actor, request: SearchRequest) -> Result<SearchPage, Error> {
        let parsed = query::parse(&request.q).map_err(SearchError::from)?;
        let offset = cursor_offset(request.cursor.as_deref())?;
        let limit = request.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
        let workspace = request.workspace;
        let mut conn = self.inner.store.reader().await?;
        self.inner
            .auditor
            .authorize_read(
                &self.inner.store,
                &mut conn.conn(),
                actor,
                Action::ReadWorkspace,
                Resource::Workspace(workspace),
            )
            .await?;
        let readable = rbac::readable_channels(&mut conn.conn(), actor, workspace).await?;
        let documents = rbac::readable_documents(&mut conn.conn(), actor, workspace).await?;
        let mut filters = Filters {
            scopes: readable
                .iter()
                .map(|c| format!("c:{}", c.channel.id))
                .chain(documents.iter().map(|d| format!("d:{d}")))
                .collect(),
            // Whatever a restriction's removal or a rebuild running beside it left in the
            // index, a restricted person's entries are never found (GDPR Art. 18).
            excluded_authors: crate::store::restrictions::all_in_force(&mut conn.conn())
                .await?
                .iter()
                .map(|u| u.to_string())
                .collect(),
            ..Filters::default()
        };
        // The workspace's members, read once per query and only if a name needs resolving.
        let mut people = None;
        for (at, place) in &parsed.places {
            match place {
                query::Place::Channel(name) => {
                    // Names are stored encrypted: found by their blind index (names are
                    // lower-case, as the query is).
                    let wanted =
                        crate::chat::details::name_index(&self.inner.keyring, workspace, name);
                    let found = readable
                        .iter()
                        .find(|c| c.channel.name_index.as_deref() == Some(wanted.as_str()))
                        .ok_or_else(|| {
                            query_error(*at, format!("in:#{name}: no such channel you can read"))
                        })?;
                    filters.channels.push(found.channel.id.to_string());
                }
                query::Place::Direct(who) => {
                    let user = self
                        .resolve_user(&mut conn, &mut people, workspace, *at, who)
                        .await?;
                    let me = actor.user_id().map(|u| u.to_string()).unwrap_or_default();
                    let them = user.to_string();
                    let found = readable.iter().find(|c| {
                        c.channel.kind == "direct"
                            && c.channel.direct_key.as_deref().is_some_and(|k| {
                                k.contains(&them) && (k.contains(&me) || them == me)
                            })
                    });
                    match found {
                        Some(c) => filters.channels.push(c.channel.id.to_string()),
                        None => {
                            return Err(query_error(
                                *at,
                                format!("in:@{who}: you have no conversation with them"),
                            )
                            .into())
                        }
                    }
                }
            }
        }
        for (at, who) in &parsed.from {
            let user = self
                .resolve_user(&mut conn, &mut people, workspace, *at, who)
                .await?;
            filters.authors.push(user.to_string());
        }
        drop(conn);
        self.caught_up(workspace).await;
        let open = self.open(workspace).await?;
        let index = open.index.clone();
        let by_date = request.by_date;
        let q = parsed.clone();
        let f = filters.clone();
        let hits =
            tokio::task::spawn_blocking(move || index.search(&q, &f, by_date, offset, limit))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
        // Only the names of the channels on this page are decrypted.
        let mut channels: HashMap<String, (Option<String>, &str)> = HashMap::new();
        let mut conn = self.inner.store.reader().await?;
        let on_page: std::collections::HashSet<&str> =
            hits.hits.iter().map(|h| h.channel_id.as_str()).collect();
        for c in &readable {
            let id = c.channel.id.to_string();
            if on_page.contains(id.as_str()) {
                let details =
                    crate::chat::details::open(&self.inner.keyring, &mut conn.conn(), &c.channel)
                        .await?;
                channels.insert(id, (details.name, c.channel.kind.as_str()));
            }
        }
        drop(conn);
        let results: Vec<SearchResult> = hits
            .hits
            .into_iter()
            .map(|h| {
                let is_message = h.kind == "message";
                let is_file = h.kind == "file";
                let channel = channels
                    .get(&h.channel_id)
                    .map(|(n, k)| (n.clone(), (*k).to_owned()));
                let (title, name) = match h.kind.as_str() {
                    "document" => (Some(h.title), None),
                    "file" => (None, Some(h.title)),
                    _ => (None, None),
                };
                SearchResult {
                    id: h.id,
                    title,
                    name,
                    content_type: h.content_type,
                    size: h.size.map(|s| s.max(0) as u64),
                    message_id: h.message_id,
                    channel_name: channel.as_ref().and_then(|c| c.0.clone()),
                    channel_kind: channel.map(|c| c.1),
                    channel_id: (is_message || is_file).then_some(h.channel_id),
                    author_id: h.author_id,
                    thread_root_id: h.thread_root_id,
                    seq: is_message.then_some(h.seq),
                    created_at: DateTime::from_timestamp_millis(h.time_ms).unwrap_or_default(),
                    snippet_html: h.snippet_html,
                    kind: h.kind,
                }
            })
            .collect();
        self.audit_phi_results(actor, workspace, &results).await?;
        self.inner
            .auditor
            .record_search(&self.inner.store, actor, workspace, hits.total)
            .await?;
        let end = offset + results.len();
        Ok(SearchPage {
            next_cursor: (end < hits.total && !results.is_empty()).then(|| cursor_for(end)),
            total: hits.total,
            results,
            index: self.status(workspace),
        })
    }

    /// Audits `actor`'s reading of the `results` that are PHI whose reads are audited
    /// (`phi.audit_reads`; see [`crate::policy::PhiScope`]): one `phi.read` entry for the
    /// page, naming each such result as `<kind>:<id>`.
    async fn audit_phi_results(
        &self,
        actor: &Actor,
        workspace: WorkspaceId,
        results: &[SearchResult],
    ) -> Result<(), Error> {
        if results.is_empty() {
            return Ok(());
        }
        let policies = &self.inner.policies;
        let mut conn = self.inner.store.reader().await?;
        let Some(scope) = policies.phi_scope(&mut conn.conn(), workspace).await? else {
            return Ok(());
        };
        let mut ids = Vec::new();
        for r in results {
            // A document's channel is not in the index: it is read from the document. A
            // result that cannot be placed (a document gone since it was indexed) is named
            // anyway: its snippet is returned.
            let covered = if r.kind == "document" {
                let found = match r.id.parse::<DocumentId>() {
                    Ok(doc) => crate::store::documents::by_id(&mut conn.conn(), doc).await?,
                    Err(_) => None,
                };
                found.is_none_or(|d| scope.covers(d.channel_id))
            } else {
                match r.channel_id.as_deref().map(str::parse::<ChannelId>) {
                    Some(Ok(channel)) => scope.covers(Some(channel)),
                    _ => true,
                }
            };
            if covered {
                ids.push(format!("{}:{}", r.kind, r.id));
            }
        }
        drop(conn);
        let read = PhiRead {
            workspace,
            kind: "search_results",
            target: ("workspace", workspace.to_string()),
            ids,
        };
        policies.record_phi_reads(actor, vec![read]).await
    }

    /// The person `who` names: a user id, or among `workspace`'s members an email address, a
    /// display name or the part of an email before the `@` (see [`directory::resolve`]).
    /// `people` holds the members once read for this query.
    async fn resolve_user(
        &self,
        conn: &mut crate::store::PooledConn,
        people: &mut Option<Vec<Arc<directory::Person>>>,
        workspace: WorkspaceId,
        at: usize,
        who: &str,
    ) -> Result<UserId, SearchError> {
        if let Ok(id) = who.parse::<UserId>() {
            return Ok(id);
        }
        let members = match people {
            Some(members) => members,
            None => people.insert(
                self.inner
                    .directory
                    .members(&self.inner.keyring, &mut conn.conn(), workspace)
                    .await?,
            ),
        };
        match directory::resolve(members, who) {
            directory::Resolved::One(user) => Ok(user),
            directory::Resolved::Ambiguous => Err(query_error(
                at,
                format!("@{who}: several members go by that name; use their email address"),
            )),
            directory::Resolved::Nobody => Err(query_error(
                at,
                format!(
                    "@{who}: no member of this workspace goes by that name; use a display name, \
                     an email address or a user id"
                ),
            )),
        }
    }
}
