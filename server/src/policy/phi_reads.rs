//! Audited reads of protected health information (`phi.audit_reads`; 45 CFR 164.312(b),
//! audit controls).
//!
//! Where a workspace's effective policy holds PHI (`phi.enabled`, or a channel flagged `phi`
//! in its override) and `phi.audit_reads` is on, every read that hands PHI to someone (a page
//! of messages, a thread, earlier versions, a file's metadata or bytes, a document's content,
//! versions or comments, search results) leaves one `phi.read` entry: who read, what kind of
//! content, where (the channel, file or document) and the ids of what was read, never the
//! content itself. The entry is written before the content is returned: a read that cannot
//! be audited fails (fail closed).
//!
//! Which reads are audited is decided per workspace from its effective policy, cached under
//! the deployment's version and the workspace's newest override version; each read checks
//! the override version with one indexed query, so an override written by another process
//! is followed at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::audit::{Event, Outcome};
use crate::domain::{ChannelId, WorkspaceId};
use crate::error::Error;
use crate::rbac::Actor;
use crate::store::policies as policy_store;
use crate::store::{Conn, Tx};

use super::{Policy, PolicyService};

/// The most ids one entry lists; a larger read is several entries.
const MAX_IDS: usize = 500;

/// Which reads of a workspace are audited, for the policy versions it was resolved under.
#[derive(Debug)]
pub struct PhiScope {
    deployment_version: i64,
    override_version: Option<i64>,
    policy: Policy,
}

impl PhiScope {
    /// Whether content in `channel` (`None`: the workspace's content outside any channel,
    /// such as a document of no channel) is PHI whose reads are audited.
    pub fn covers(&self, channel: Option<ChannelId>) -> bool {
        self.policy.phi.audit_reads
            && match channel {
                Some(channel) => self.policy.channel_phi(channel),
                None => self.policy.phi.enabled,
            }
    }

    /// Whether any read in the workspace is audited.
    fn any(&self) -> bool {
        self.policy.phi.audit_reads
            && (self.policy.phi.enabled || self.policy.channels.values().any(|c| c.phi))
    }
}

/// The cache of resolved scopes, one per workspace.
pub(super) type PhiCache = Arc<Mutex<HashMap<WorkspaceId, Arc<PhiScope>>>>;

/// One read of PHI, as it is audited.
#[derive(Debug)]
pub struct PhiRead {
    /// The workspace the content belongs to.
    pub workspace: WorkspaceId,
    /// What was read: `messages`, `message_versions`, `file`, `files`, `thumbnail`,
    /// `document`, `documents`, `document_versions`, `document_comments`, `search_results`,
    /// `live_channels`, `bot_event`.
    pub kind: &'static str,
    /// Where: `("channel", id)`, `("file", id)`, `("document", id)` or
    /// `("workspace", id)`.
    pub target: (&'static str, String),
    /// The ids of what was read.
    pub ids: Vec<String>,
}

impl PolicyService {
    /// Which reads of `workspace` are audited (`None`: none are), read with `conn`.
    pub async fn phi_scope(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
    ) -> Result<Option<Arc<PhiScope>>, Error> {
        let deployment_version = self.loaded().version;
        let override_version = policy_store::latest_override_version(conn, workspace).await?;
        let cached = {
            let cache = self.phi_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.get(&workspace).cloned()
        };
        let scope = match cached {
            Some(scope)
                if scope.deployment_version == deployment_version
                    && scope.override_version == override_version =>
            {
                scope
            }
            _ => {
                let (resolved, _, record) = self.resolve_in(conn, workspace).await?;
                let scope = Arc::new(PhiScope {
                    deployment_version,
                    override_version: record.map(|r| r.version),
                    policy: resolved.policy,
                });
                let mut cache = self.phi_cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(workspace, scope.clone());
                scope
            }
        };
        Ok(scope.any().then_some(scope))
    }

    /// Audits `read` by `actor` as `phi.read` if content in `channel` of its workspace is PHI
    /// whose reads are audited (see [`PhiScope::covers`]); a read with nothing in it is not
    /// audited. Returns once the entry is committed. The caller holds no connection of the
    /// pool while it waits: on PostgreSQL the writer takes its connection from the same pool.
    pub async fn audit_phi_read(
        &self,
        actor: &Actor,
        channel: Option<ChannelId>,
        read: PhiRead,
    ) -> Result<(), Error> {
        if read.ids.is_empty() {
            return Ok(());
        }
        let scope = {
            let mut conn = self.store.reader().await?;
            self.phi_scope(&mut conn.conn(), read.workspace).await?
        };
        match scope {
            Some(scope) if scope.covers(channel) => self.record_phi_reads(actor, vec![read]).await,
            _ => Ok(()),
        }
    }

    /// Audits `reads` by `actor` as `phi.read` entries in one write, whatever the policy (the
    /// caller decided with [`PolicyService::phi_scope`] and holds no connection of the pool).
    /// A read of more than [`MAX_IDS`] things is several entries, each naming its part.
    pub async fn record_phi_reads(&self, actor: &Actor, reads: Vec<PhiRead>) -> Result<(), Error> {
        let mut prepared = Vec::new();
        for read in reads {
            let count = read.ids.len();
            for (part, ids) in read.ids.chunks(MAX_IDS).enumerate() {
                let event = Event::by(actor, "phi.read", Outcome::Allowed)
                    .target(read.target.0, &read.target.1)
                    .workspace(read.workspace)
                    .details(serde_json::json!({
                        "kind": read.kind,
                        "count": count,
                        "part": part + 1,
                        "parts": count.div_ceil(MAX_IDS),
                        "ids": ids,
                    }));
                prepared.push(self.auditor.prepare(event)?);
            }
        }
        if prepared.is_empty() {
            return Ok(());
        }
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    for entry in prepared {
                        auditor.record_prepared(tx, entry).await?;
                    }
                    Ok(())
                })
            })
            .await
    }
}
