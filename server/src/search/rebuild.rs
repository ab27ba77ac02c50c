//! Rebuilding an index from the database: resumable (progress is recorded in the encrypted
//! commit payload), in the background at start or for `concord search reindex`.

use std::collections::HashSet;

use tokio_util::sync::CancellationToken;

use super::index::READY;
use super::{entries, OpenIndex, Progress, SearchError, SearchService};
use crate::domain::{MessageId, WorkspaceId};
use crate::store::restrictions as store_restrictions;
use crate::store::search as store_search;

/// The ids, as the index writes them, of everyone whose processing is restricted (GDPR Art.
/// 18): nothing of theirs is indexed.
async fn restricted_authors(
    conn: &mut crate::store::Conn<'_>,
) -> Result<HashSet<String>, SearchError> {
    Ok(store_restrictions::all_in_force(conn)
        .await?
        .into_iter()
        .map(|u| u.to_string())
        .collect())
}

/// Messages read from the database per rebuild step (one commit each).
const REBUILD_BATCH: i64 = 2000;

/// The commit payload once messages and files are rebuilt but documents still have to be
/// (an interrupted rebuild resumes there).
const DOCUMENTS_PENDING: &str = "documents";

/// What a rebuild wrote: the entries this run added (a resumed run counts only its part).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Workspace indexes rebuilt.
    pub workspaces: usize,
    /// Messages indexed.
    pub messages: u64,
    /// Documents indexed.
    pub documents: u64,
    /// Files indexed.
    pub files: u64,
}

impl std::ops::AddAssign for Rebuilt {
    fn add_assign(&mut self, other: Rebuilt) {
        self.workspaces += other.workspaces;
        self.messages += other.messages;
        self.documents += other.documents;
        self.files += other.files;
    }
}

impl SearchService {
    /// Rebuilds `workspace`'s index from the database, resuming an interrupted rebuild;
    /// `progress(done, total)` is called after each step. Live changes keep being applied.
    #[tracing::instrument(skip_all, fields(%workspace))]
    pub async fn rebuild(
        &self,
        workspace: WorkspaceId,
        progress: impl Fn(u64, u64),
        stop: Option<CancellationToken>,
    ) -> Result<Rebuilt, SearchError> {
        {
            let mut rebuilding = self
                .inner
                .rebuilding
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if rebuilding.contains_key(&workspace) {
                return Ok(Rebuilt::default());
            }
            rebuilding.insert(workspace, Progress::default());
        }
        let result = self.rebuild_inner(workspace, &progress, stop, false).await;
        if let Ok(mut rebuilding) = self.inner.rebuilding.lock() {
            rebuilding.remove(&workspace);
        }
        result
    }

    /// Rebuilds `workspace`'s index from the beginning, never resuming: after a change to
    /// what may be indexed (a lifted restriction), once any rebuild already running ends
    /// (it read the old rule and may have passed what now belongs in the index).
    #[tracing::instrument(skip_all, fields(%workspace))]
    pub async fn rebuild_from_scratch(
        &self,
        workspace: WorkspaceId,
    ) -> Result<Rebuilt, SearchError> {
        loop {
            {
                let mut rebuilding = self
                    .inner
                    .rebuilding
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if let std::collections::hash_map::Entry::Vacant(free) = rebuilding.entry(workspace)
                {
                    free.insert(Progress::default());
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        let result = self.rebuild_inner(workspace, &|_, _| {}, None, true).await;
        if let Ok(mut rebuilding) = self.inner.rebuilding.lock() {
            rebuilding.remove(&workspace);
        }
        result
    }

    /// Puts `user`'s content back in the indexes of `workspaces` after their restriction was
    /// lifted, then records that it is back (`processing_restrictions.reindexed_at`): a
    /// server stopped before that repeats it when it starts.
    pub async fn reindex_lifted(
        &self,
        user: crate::domain::UserId,
        workspaces: &[WorkspaceId],
    ) -> Result<(), SearchError> {
        let began = chrono::Utc::now();
        for workspace in workspaces {
            self.rebuild_from_scratch(*workspace).await?;
        }
        self.inner
            .store
            .write(move |tx: &mut crate::store::Tx| {
                Box::pin(async move {
                    store_restrictions::mark_reindexed(
                        &mut tx.conn(),
                        user,
                        began,
                        chrono::Utc::now(),
                    )
                    .await
                    .map_err(SearchError::from)
                })
            })
            .await
    }

    /// Repeats [`SearchService::reindex_lifted`] for every lifted restriction not yet back in
    /// the indexes (a server stopped in between), one person after another.
    pub(crate) async fn reindex_unfinished_lifts(&self) -> Result<(), SearchError> {
        let people = {
            let mut conn = self.inner.store.reader().await?;
            store_restrictions::lifted_not_reindexed(&mut conn.conn()).await?
        };
        for user in people {
            let workspaces = {
                let mut conn = self.inner.store.reader().await?;
                store_restrictions::workspaces_of(&mut conn.conn(), user).await?
            };
            tracing::info!(%user, "search: putting a lifted restriction's content back in the index");
            self.reindex_lifted(user, &workspaces).await?;
        }
        Ok(())
    }

    async fn rebuild_inner(
        &self,
        workspace: WorkspaceId,
        progress: &impl Fn(u64, u64),
        stop: Option<CancellationToken>,
        from_scratch: bool,
    ) -> Result<Rebuilt, SearchError> {
        let open = self.open(workspace).await?;
        let payload = if from_scratch {
            String::new()
        } else {
            open.index.payload()
        };
        let documents_only = payload == DOCUMENTS_PENDING;
        let mut after: Option<MessageId> = payload
            .strip_prefix("rebuild:")
            .and_then(|id| id.parse().ok());
        {
            let mut touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            *touched = Some(HashSet::new());
            if after.is_none() && !documents_only {
                open.index.clear()?;
                open.index.set_payload("rebuild:");
            }
        }
        let total = {
            let mut conn = self.inner.store.reader().await?;
            store_search::count_messages(&mut conn.conn(), workspace).await? as u64
        };
        let mut done = if after.is_some() {
            open.index.len().min(total)
        } else {
            0
        };
        let mut rebuilt = Rebuilt {
            workspaces: 1,
            ..Rebuilt::default()
        };
        let outcome: Result<(), SearchError> = async {
            loop {
                if documents_only {
                    break;
                }
                if stop.as_ref().is_some_and(|s| s.is_cancelled()) {
                    return Ok(());
                }
                let mut conn = self.inner.store.reader().await?;
                let batch =
                    store_search::messages_after(&mut conn.conn(), workspace, after, REBUILD_BATCH)
                        .await?;
                let Some(last) = batch.last().map(|m| m.id) else {
                    drop(conn);
                    rebuilt.files = self.rebuild_files(workspace, &open).await?;
                    open.index.set_payload(DOCUMENTS_PENDING);
                    break;
                };
                // Read for each batch, so a restriction that starts meanwhile is followed.
                let restricted = store_restrictions::all_in_force(&mut conn.conn()).await?;
                let mut entries = Vec::with_capacity(batch.len());
                for m in batch {
                    if restricted.contains(&m.author_id) {
                        continue;
                    }
                    entries.push(self.entry_of_row(&mut conn.conn(), workspace, m).await?);
                }
                drop(conn);
                done += entries.len() as u64;
                {
                    let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
                    for entry in &entries {
                        if touched.as_ref().is_some_and(|t| t.contains(&entry.id)) {
                            continue;
                        }
                        open.index.upsert_message(entry)?;
                        rebuilt.messages += 1;
                    }
                    open.index.set_payload(&format!("rebuild:{last}"));
                }
                let index = open.index.clone();
                tokio::task::spawn_blocking(move || index.commit())
                    .await
                    .map_err(|e| SearchError::Index(e.to_string()))??;
                after = Some(last);
                if let Ok(mut r) = self.inner.rebuilding.lock() {
                    r.insert(workspace, Progress { done, total });
                }
                progress(done.min(total), total);
            }
            rebuilt.documents = self.rebuild_documents(workspace, &open).await?;
            open.index.set_payload(READY);
            let index = open.index.clone();
            tokio::task::spawn_blocking(move || index.commit())
                .await
                .map_err(|e| SearchError::Index(e.to_string()))?
        }
        .await;
        if let Ok(mut touched) = open.touched.lock() {
            *touched = None;
        }
        outcome.map(|()| rebuilt)
    }

    async fn rebuild_documents(
        &self,
        workspace: WorkspaceId,
        open: &OpenIndex,
    ) -> Result<u64, SearchError> {
        let (ids, restricted) = {
            let mut conn = self.inner.store.reader().await?;
            (
                store_search::document_ids(&mut conn.conn(), workspace).await?,
                restricted_authors(&mut conn.conn()).await?,
            )
        };
        let mut indexed = 0;
        for id in ids {
            let found = self
                .inner
                .docs
                .indexable(id)
                .await
                .map_err(|e| SearchError::Index(format!("document {id}: {e}")))?;
            let Some(found) = found else { continue };
            let entry = entries::document_entry(found);
            if restricted.contains(&entry.created_by) {
                continue;
            }
            let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.as_ref().is_some_and(|t| t.contains(&entry.id)) {
                continue;
            }
            open.index.upsert_document(&entry)?;
            indexed += 1;
        }
        Ok(indexed)
    }

    async fn rebuild_files(
        &self,
        workspace: WorkspaceId,
        open: &OpenIndex,
    ) -> Result<u64, SearchError> {
        let (ids, restricted) = {
            let mut conn = self.inner.store.reader().await?;
            (
                store_search::file_ids(&mut conn.conn(), workspace).await?,
                restricted_authors(&mut conn.conn()).await?,
            )
        };
        let mut indexed = 0;
        for id in ids {
            let found = match self.inner.files.indexable(id).await {
                Ok(Some(found)) => entries::file_entry(found),
                Ok(None) => continue,
                Err(err) => {
                    // One unreadable file must not keep the rest from being found.
                    tracing::warn!(file = %id, error = %err, "search: cannot read a file to index");
                    continue;
                }
            };
            if restricted.contains(&found.uploader_id) {
                continue;
            }
            let touched = open.touched.lock().unwrap_or_else(|e| e.into_inner());
            if touched.as_ref().is_some_and(|t| t.contains(&found.id)) {
                continue;
            }
            open.index.upsert_file(&found)?;
            indexed += 1;
        }
        Ok(indexed)
    }

    /// Rebuilds every workspace's index (or one), for `concord search reindex`: messages,
    /// files and documents.
    pub async fn rebuild_all(
        &self,
        only: Option<WorkspaceId>,
        progress: impl Fn(WorkspaceId, u64, u64),
    ) -> Result<Rebuilt, SearchError> {
        let workspaces = match only {
            Some(w) => vec![w],
            None => {
                let mut conn = self.inner.store.reader().await?;
                store_search::workspace_ids(&mut conn.conn()).await?
            }
        };
        let mut rebuilt = Rebuilt::default();
        for &workspace in &workspaces {
            rebuilt += self
                .rebuild(workspace, |d, t| progress(workspace, d, t), None)
                .await?;
        }
        Ok(rebuilt)
    }
}
