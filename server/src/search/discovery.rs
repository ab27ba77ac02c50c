//! eDiscovery's keyword search: the same index and query syntax as people's search, over
//! every channel and document of the workspace instead of those the searcher may read, for
//! those holding `ediscovery.read` only (decided here, so no caller can skip it).
//!
//! The index holds live content only: what was deleted (and is kept under a hold) is matched
//! by the eDiscovery service itself; entries of people whose processing is restricted are
//! removed from the index when the restriction starts, so a keyword does not find them
//! (a search without a keyword, straight from storage, does).

use chrono::{DateTime, Utc};

use super::index::Filters;
use super::{query, SearchError, SearchService};
use crate::domain::{ChannelId, UserId, WorkspaceId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};

/// What eDiscovery asks of the index.
#[derive(Clone, Debug)]
pub struct DiscoveryQuery {
    /// The workspace.
    pub workspace: WorkspaceId,
    /// The query text (words, phrases, exclusions; `in:` and `from:` are refused: channels
    /// and custodians are their own criteria).
    pub q: String,
    /// Message authors and file uploaders (empty: anyone).
    pub custodians: Vec<UserId>,
    /// Channels of messages and files (empty: every one).
    pub channels: Vec<ChannelId>,
    /// Messages and files written from this time on.
    pub from: Option<DateTime<Utc>>,
    /// Messages and files written before this time.
    pub to: Option<DateTime<Utc>>,
    /// Whether documents are searched too (all of them: their versions are narrowed by the
    /// caller from storage).
    pub documents: bool,
    /// The most hits returned.
    pub cap: usize,
}

/// One hit: what it is, its id and when it was written.
#[derive(Clone, Debug)]
pub struct DiscoveryHit {
    /// `message`, `file` or `document`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// When it was written (a document: last changed).
    pub at: DateTime<Utc>,
}

/// The hits and how many match in all.
#[derive(Clone, Debug)]
pub struct DiscoveryHits {
    /// Up to the cap, newest first.
    pub hits: Vec<DiscoveryHit>,
    /// How many match in all.
    pub total: usize,
}

impl SearchService {
    /// Searches the whole of `query.workspace` for eDiscovery (`ediscovery.read` on the
    /// workspace, checked here). Not audited here: the eDiscovery service records one entry
    /// for the whole search or export.
    #[tracing::instrument(skip(self, actor, query), fields(workspace = %query.workspace))]
    pub async fn discover(
        &self,
        actor: &Actor,
        query: DiscoveryQuery,
    ) -> Result<DiscoveryHits, Error> {
        let workspace = query.workspace;
        let mut parsed = query::parse(&query.q).map_err(SearchError::from)?;
        if !parsed.places.is_empty() || !parsed.from.is_empty() {
            return Err(Error::refused(
                "invalid_criteria",
                "query: in: and from: are not used here; give channels and custodians instead",
            ));
        }
        let mut conn = self.inner.store.reader().await?;
        self.inner
            .auditor
            .authorize_read(
                &self.inner.store,
                &mut conn.conn(),
                actor,
                Action::ReadHeldContent,
                Resource::Workspace(workspace),
            )
            .await?;
        let channels = crate::store::ediscovery::channel_ids(&mut conn.conn(), workspace).await?;
        let documents = if query.documents {
            crate::store::ediscovery::document_ids(&mut conn.conn(), workspace).await?
        } else {
            Vec::new()
        };
        drop(conn);
        let in_channels = Filters {
            scopes: channels.iter().map(|c| format!("c:{c}")).collect(),
            channels: query.channels.iter().map(|c| c.to_string()).collect(),
            authors: query.custodians.iter().map(|u| u.to_string()).collect(),
            ..Filters::default()
        };
        let in_documents = Filters {
            scopes: documents.iter().map(|d| format!("d:{d}")).collect(),
            ..Filters::default()
        };
        let documents_query = parsed.clone();
        parsed.after = match (parsed.after, query.from) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        parsed.before = match (parsed.before, query.to) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.catch_up(workspace).await;
        let open = self.open(workspace).await?;
        let index = open.index.clone();
        let cap = query.cap.max(1);
        let (found, total) = tokio::task::spawn_blocking(move || {
            let mut hits = index.search(&parsed, &in_channels, true, 0, cap)?;
            let mut total = hits.total;
            if !in_documents.scopes.is_empty() {
                let docs = index.search(&documents_query, &in_documents, true, 0, cap)?;
                total += docs.total;
                hits.hits.extend(docs.hits);
            }
            Ok::<_, SearchError>((hits.hits, total))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let hits = found
            .into_iter()
            .map(|h| DiscoveryHit {
                at: DateTime::from_timestamp_millis(h.time_ms).unwrap_or_default(),
                kind: h.kind,
                id: h.id,
            })
            .collect();
        Ok(DiscoveryHits { hits, total })
    }
}
