//! eDiscovery: a compliance officer finds and exports a workspace's content by custodian,
//! channel, date range and keywords, deleted-but-kept content included, without belonging to
//! any of its channels.
//!
//! - `criteria.rs`: the requests and their parsing ([`Criteria`], [`Format`]).
//! - `gather.rs`: positions from storage (`store::ediscovery`) or from the search index
//!   (keywords, [`crate::search::SearchService::discover`]), and each item read through the
//!   service that owns it, so decryption and the erased-person semantics are theirs.
//! - `formats.rs` (JSON lines, CSV, ZIP with a manifest), `actiance.rs` (Actiance XML) and
//!   `eml.rs` (Global Relay: RFC 5322 messages): the export formats, pure functions of the
//!   items.
//! - `daily.rs`: the scheduled daily export of every workspace (`[ediscovery.daily_export]`),
//!   one writer per workspace and day (a leased claim in storage).
//! - `slots.rs`: how many exports are built at once.
//!
//! Invariants: every search and export is authorized by `ediscovery.read` on the workspace
//! (compliance officers and system administrators; never the workspace's own roles), and
//! recorded in the audit log (`ediscovery.searched`, `ediscovery.exported`) with the
//! criteria and the counts, never content nor the keywords, before anything is returned.
//! Exports are built whole in memory within `ediscovery.max_export_items` and
//! `ediscovery.max_export_mib` (the text of messages and versions and, in a ZIP, the files'
//! bytes), at most `ediscovery.concurrent_exports` at once, and returned as the response body
//! (no job state to keep, resume or clean up: a refused export names the limit, and narrower
//! criteria split it). An export is complete or refused, never cut short: when keywords match
//! more than `ediscovery.max_keyword_matches` items, or more kept deleted messages exist than
//! `ediscovery.max_deleted_scanned` lets a keyword search read, the export is refused with
//! `export_too_large`; a search's page says `truncated: true` instead.

mod actiance;
pub mod criteria;
mod daily;
mod eml;
mod formats;
mod gather;
mod slots;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::audit::{Auditor, Event, Outcome};
use crate::compliance::HoldService;
use crate::crypto::Keyring;
use crate::docs::DocService;
use crate::domain::{ChannelId, UserId};
use crate::error::Error;
use crate::files::FileService;
use crate::rbac::{Action, Actor, Resource};
use crate::search::SearchService;
use crate::store::{self, Store};

pub use criteria::{Criteria, ExportRequest, Format, Kind, SearchRequest};
pub use daily::{check_past, DailyFile, DailyReport, DailySettings};
use gather::MAX_KEYWORD_MATCHES;
use gather::{Cursor, Item, Names};
use slots::ExportSlots;

/// Limits and the schedule, from `[ediscovery]`.
#[derive(Clone, Debug)]
pub struct EDiscoveryOptions {
    /// The most items one export holds.
    pub max_export_items: usize,
    /// The most bytes of content (text, and files in a ZIP) one export holds.
    pub max_export_bytes: u64,
    /// The most keyword matches one search or export considers.
    pub max_keyword_matches: usize,
    /// The most kept deleted messages a keyword search reads to match them itself.
    pub max_deleted_scanned: usize,
    /// How many exports are built at once.
    pub concurrent_exports: usize,
    /// How long an export waits for its turn before `export_busy`.
    pub export_wait: std::time::Duration,
    /// The daily export.
    pub daily: DailySettings,
}

impl EDiscoveryOptions {
    /// The options the configuration sets (validated at start).
    pub fn from_config(c: &crate::config::EDiscoveryConfig) -> EDiscoveryOptions {
        EDiscoveryOptions {
            max_export_items: c.max_export_items as usize,
            max_export_bytes: c.max_export_mib.saturating_mul(1024 * 1024),
            max_keyword_matches: (c.max_keyword_matches as usize).min(MAX_KEYWORD_MATCHES),
            max_deleted_scanned: c.max_deleted_scanned as usize,
            concurrent_exports: c.concurrent_exports as usize,
            export_wait: std::time::Duration::from_secs(c.export_wait_seconds),
            daily: DailySettings::from_config(&c.daily_export),
        }
    }
}

/// One result of a search.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DiscoveryResult {
    /// `message`, `file` or `document_version`.
    pub kind: String,
    /// Its id.
    pub id: String,
    /// Its channel (a version: its document's, if any).
    pub channel_id: Option<ChannelId>,
    /// The channel's name (none for conversations).
    pub channel_name: Option<String>,
    /// Who wrote, uploaded or made it.
    pub author_id: UserId,
    /// Their display name (`Erased user` once erased).
    pub author_name: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Whether it was deleted and is kept (under a legal hold or a grace period).
    pub deleted: bool,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The start of its text (messages and versions; `null` for a deleted message whose text
    /// nothing kept, and for files).
    pub excerpt: Option<String>,
    /// A file's or a version's name.
    pub name: Option<String>,
}

/// A page of results, oldest first.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DiscoveryPage {
    /// The results.
    pub results: Vec<DiscoveryResult>,
    /// Pass as `cursor` (with the same criteria) for the next page; `null` on the last.
    pub next_cursor: Option<String>,
    /// How many items the criteria select in all (with `truncated`, how many were
    /// considered).
    pub total: u64,
    /// Whether the keywords matched more than one search considers
    /// (`ediscovery.max_keyword_matches`, or more kept deleted messages than
    /// `ediscovery.max_deleted_scanned`): the results are then not all there is, and an export
    /// of the same criteria is refused (`export_too_large`); narrow the criteria.
    pub truncated: bool,
}

/// A finished export.
#[derive(Clone, Debug)]
pub struct Export {
    /// Its file name.
    pub file_name: String,
    /// Its content type.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// How many items of each kind it holds, in [`Kind::ALL`] order.
    pub counts: [u64; 3],
}

/// How many characters of text a search result shows.
const EXCERPT_CHARS: usize = 280;

struct Inner {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
    holds: HoldService,
    files: FileService,
    docs: DocService,
    search: SearchService,
    options: EDiscoveryOptions,
    slots: ExportSlots,
    /// This process's name in the daily export's claims.
    runner: String,
}

/// eDiscovery searches and exports; cheap to clone.
#[derive(Clone)]
pub struct EDiscoveryService {
    inner: Arc<Inner>,
}

impl EDiscoveryService {
    /// The service, reading through the services that own the content.
    pub fn new(
        store: Store,
        auditor: Auditor,
        holds: HoldService,
        files: FileService,
        docs: DocService,
        search: SearchService,
        options: EDiscoveryOptions,
    ) -> EDiscoveryService {
        EDiscoveryService {
            inner: Arc::new(Inner {
                keyring: auditor.keyring().clone(),
                store,
                auditor,
                holds,
                files,
                docs,
                search,
                slots: ExportSlots::new(options.concurrent_exports, options.export_wait),
                options,
                runner: uuid::Uuid::now_v7().to_string(),
            }),
        }
    }

    /// Decides `ediscovery.read` on the workspace, then finds it (a system role decides
    /// without a membership) and checks the criteria's ids against it.
    async fn authorize(&self, actor: &Actor, c: &Criteria) -> Result<(), Error> {
        let mut conn = self.inner.store.reader().await?;
        self.inner
            .auditor
            .authorize_read(
                &self.inner.store,
                &mut conn.conn(),
                actor,
                Action::ReadHeldContent,
                Resource::Workspace(c.workspace),
            )
            .await?;
        if store::workspaces::by_id(&mut conn.conn(), c.workspace)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("workspace"));
        }
        let known = store::holds::users_among(&mut conn.conn(), &c.custodians).await?;
        if let Some(unknown) = c.custodians.iter().find(|u| !known.contains(u)) {
            return Err(criteria::invalid(
                "custodians",
                format!("no account {unknown}"),
            ));
        }
        let known =
            store::channels::in_workspace(&mut conn.conn(), c.workspace, &c.channels).await?;
        if let Some(unknown) = c.channels.iter().find(|ch| !known.contains(ch)) {
            return Err(criteria::invalid(
                "channels",
                format!("the workspace has no channel {unknown}"),
            ));
        }
        Ok(())
    }

    /// Decides `ediscovery.read` on the request's workspace before its criteria are parsed,
    /// so nobody else learns anything from how a request is refused.
    async fn authorize_first(
        &self,
        actor: &Actor,
        workspace: crate::domain::WorkspaceId,
    ) -> Result<(), Error> {
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
            .await
    }

    /// A page of what the criteria select (`ediscovery.read`); audited as
    /// `ediscovery.searched` with the criteria and the counts.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id(), workspace = %request.workspace))]
    pub async fn search(
        &self,
        actor: &Actor,
        request: SearchRequest,
    ) -> Result<DiscoveryPage, Error> {
        self.authorize_first(actor, request.workspace).await?;
        let c = criteria::check(
            request.workspace,
            request.custodians,
            request.channels,
            request.from.as_deref(),
            request.to.as_deref(),
            request.query.as_deref(),
            request.kinds.as_deref(),
        )?;
        let limit = match request.limit {
            None => 50,
            Some(n) if (1..=criteria::MAX_PAGE as i64).contains(&n) => n as usize,
            Some(_) => {
                return Err(criteria::invalid(
                    "limit",
                    format!("must be 1 to {}", criteria::MAX_PAGE),
                ))
            }
        };
        let cursor = request.cursor.as_deref().map(Cursor::parse).transpose()?;
        self.authorize(actor, &c).await?;
        let page = self.refs_page(actor, &c, cursor, limit).await?;
        let mut names = Names::default();
        let mut results = Vec::with_capacity(page.refs.len());
        for r in &page.refs {
            if let Some(item) = self.read_item(c.workspace, r, &mut names).await? {
                results.push(result_of(item));
            }
        }
        let deleted = results.iter().filter(|r| r.deleted).count();
        let event = Event::by(actor, "ediscovery.searched", Outcome::Allowed)
            .target("workspace", c.workspace)
            .workspace(c.workspace)
            .details(json!({
                "criteria": c.summary(),
                "results": results.len(),
                "deleted": deleted,
                "total": page.total,
                "truncated": page.truncated,
            }));
        self.inner
            .auditor
            .record_alone(&self.inner.store, event)
            .await?;
        Ok(DiscoveryPage {
            results,
            next_cursor: page.next.map(|n| n.encode()),
            total: page.total,
            truncated: page.truncated,
        })
    }

    /// Everything the criteria select in `format` (`ediscovery.read`); audited as
    /// `ediscovery.exported` with the criteria, the counts and the output's SHA-256.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id(), workspace = %request.workspace))]
    pub async fn export(&self, actor: &Actor, request: ExportRequest) -> Result<Export, Error> {
        self.authorize_first(actor, request.workspace).await?;
        let format = Format::parse(&request.format)?;
        let c = criteria::check(
            request.workspace,
            request.custodians,
            request.channels,
            request.from.as_deref(),
            request.to.as_deref(),
            request.query.as_deref(),
            request.kinds.as_deref(),
        )?;
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let name = format!("ediscovery-{}-{stamp}.{}", c.workspace, format.extension());
        self.export_criteria(actor, &c, format, name, false).await
    }

    /// The export of `c` in `format` named `file_name` (an officer's request, the daily
    /// export, the command line): authorized and audited like a request.
    pub async fn export_criteria(
        &self,
        actor: &Actor,
        c: &Criteria,
        format: Format,
        file_name: String,
        scheduled: bool,
    ) -> Result<Export, Error> {
        self.authorize(actor, c).await?;
        let slot = self.inner.slots.take().await?;
        let items = self.gather(actor, c, format).await?;
        let mut counts = [0u64; 3];
        for item in &items {
            let kind = match item.kind {
                "message" => Kind::Message,
                "file" => Kind::File,
                _ => Kind::DocumentVersion,
            };
            counts[kind.index()] += 1;
        }
        let mut files = Vec::new();
        if format == Format::Zip {
            for item in &items {
                if let Some(f) = &item.file {
                    files.push(self.inner.files.held_bytes(f).await?);
                }
            }
        }
        let summary = c.summary();
        let header = formats::Header {
            criteria: summary.clone(),
            generated_at: Utc::now(),
            from: c.from,
            to: c.to,
        };
        // The slot goes with the render: a request dropped meanwhile (the client gone, the
        // deadline passed) does not free it while the blocking render still runs.
        let bytes = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            formats::write(format, &header, &items, &files)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let sha256 = formats::sha256_hex(&bytes);
        let event = Event::by(actor, "ediscovery.exported", Outcome::Allowed)
            .target("workspace", c.workspace)
            .workspace(c.workspace)
            .details(json!({
                "criteria": summary,
                "format": format.as_str(),
                "scheduled": scheduled,
                "messages": counts[Kind::Message.index()],
                "files": counts[Kind::File.index()],
                "document_versions": counts[Kind::DocumentVersion.index()],
                "bytes": bytes.len(),
                "sha256": sha256,
            }));
        self.inner
            .auditor
            .record_alone(&self.inner.store, event)
            .await?;
        Ok(Export {
            file_name,
            content_type: format.content_type(),
            bytes,
            counts,
        })
    }

    /// Every item the criteria select, refused (`export_too_large`) past
    /// `ediscovery.max_export_items`, past `ediscovery.max_export_mib` of content (the texts
    /// and, in a ZIP, the files' bytes), or when the keywords match more than a search
    /// considers: an export is complete or refused, never cut short.
    async fn gather(
        &self,
        actor: &Actor,
        c: &Criteria,
        format: Format,
    ) -> Result<Vec<Item>, Error> {
        let max = self.inner.options.max_export_items;
        let max_bytes = self.inner.options.max_export_bytes;
        let step = if c.query.is_some() {
            MAX_KEYWORD_MATCHES
        } else {
            500
        };
        let mut cursor = None;
        let mut names = Names::default();
        let mut items = Vec::new();
        let mut bytes = 0u64;
        loop {
            let page = self.refs_page(actor, c, cursor, step).await?;
            if page.truncated {
                return Err(Error::refused(
                    "export_too_large",
                    format!(
                        "the keywords match more than the {} items one search considers \
                         (ediscovery.max_keyword_matches, ediscovery.max_deleted_scanned); \
                         narrow the criteria (a shorter date range, fewer channels or \
                         custodians, more keywords)",
                        page.total
                    ),
                ));
            }
            if page.total as usize > max {
                return Err(Error::refused(
                    "export_too_large",
                    format!(
                        "the criteria select {} items, over the {max} one export holds \
                         (ediscovery.max_export_items); narrow them (a shorter date range, \
                         fewer channels or custodians)",
                        page.total
                    ),
                ));
            }
            for r in &page.refs {
                if let Some(item) = self.read_item(c.workspace, r, &mut names).await? {
                    bytes = bytes.saturating_add(content_bytes(&item, format));
                    if bytes > max_bytes {
                        return Err(Error::refused(
                            "export_too_large",
                            format!(
                                "the content comes to more than the {max_bytes} bytes one \
                                 export holds (ediscovery.max_export_mib); narrow the \
                                 criteria or leave files out"
                            ),
                        ));
                    }
                    items.push(item);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// What an item adds to an export's size in memory: its texts (a message's earlier ones
/// too) and, in a ZIP, a file's bytes.
fn content_bytes(item: &Item, format: Format) -> u64 {
    let text = item.text.as_deref().map_or(0, str::len)
        + item
            .earlier_texts
            .iter()
            .map(|v| v.text.len())
            .sum::<usize>();
    let file = match (&item.file, format) {
        (Some(f), Format::Zip) => f.record.size.max(0) as u64,
        _ => 0,
    };
    (text as u64).saturating_add(file)
}

fn result_of(item: Item) -> DiscoveryResult {
    DiscoveryResult {
        excerpt: item
            .text
            .as_deref()
            .map(|t| t.chars().take(EXCERPT_CHARS).collect()),
        kind: item.kind.to_owned(),
        id: item.id,
        channel_id: item.channel_id,
        channel_name: item.channel_name,
        author_id: item.author_id,
        author_name: item.author_name,
        created_at: item.created_at,
        deleted: item.deleted,
        deleted_at: item.deleted_at,
        name: item.name,
    }
}
