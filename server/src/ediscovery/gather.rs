//! Finding and reading what criteria select: positions first (from storage, or from the
//! search index for keywords), then each item read and decrypted through the service that
//! owns it (held messages through the legal-hold service, files through the file service,
//! document versions through the document service), with its author's and channel's names.
//!
//! Without keywords, a listing walks messages, then files, then document versions, each by
//! time then id, and a cursor names the kind and the position it stopped at. With keywords,
//! the matches (at most `ediscovery.max_keyword_matches`, never more than
//! [`MAX_KEYWORD_MATCHES`]) are ordered by time and a cursor is an offset into them; when
//! there were more, the page says so (`truncated`) and an export refuses. A document the
//! index finds contributes only its named versions whose own text matches the keywords.
//! Every read is confined to the criteria's workspace.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::criteria::{invalid, Criteria, Kind};
use super::EDiscoveryService;
use crate::compliance::holds::HeldVersion;
use crate::domain::{ChannelId, DocumentId, FileId, MessageId, UserId, VersionId, WorkspaceId};
use crate::error::Error;
use crate::files::HeldFile;
use crate::rbac::Actor;
use crate::search::DiscoveryQuery;
use crate::store::ediscovery::{self as listing, Position};
use crate::store::{self, Conn};

/// The most keyword matches one search or export may be configured to consider
/// (`ediscovery.max_keyword_matches`); a keyword cursor never points past it.
pub const MAX_KEYWORD_MATCHES: usize = 10_000;

/// Where an item is: its kind and listing position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ref {
    /// Its kind.
    pub kind: Kind,
    /// Its position.
    pub at: Position,
}

/// Where a page stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// A storage listing: the kind and the position after which to go on (none: its start).
    Storage(Kind, Option<(DateTime<Utc>, Uuid)>),
    /// Keyword matches: how many were already shown.
    Offset(usize),
}

impl Cursor {
    /// Its text, as handed out.
    pub fn encode(&self) -> String {
        match self {
            Cursor::Storage(kind, None) => format!("s.{}", kind.index()),
            Cursor::Storage(kind, Some((at, id))) => {
                format!("s.{}.{}.{id}", kind.index(), at.timestamp_micros())
            }
            Cursor::Offset(n) => format!("k.{n}"),
        }
    }

    /// The cursor `text` names.
    pub fn parse(text: &str) -> Result<Cursor, Error> {
        let bad = || invalid("cursor", "is not a cursor this API handed out");
        let mut parts = text.split('.');
        match parts.next() {
            Some("k") => {
                let n: usize = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
                if parts.next().is_some() || n > MAX_KEYWORD_MATCHES {
                    return Err(bad());
                }
                Ok(Cursor::Offset(n))
            }
            Some("s") => {
                let kind = parts
                    .next()
                    .and_then(|k| k.parse::<usize>().ok())
                    .and_then(|k| Kind::ALL.get(k).copied())
                    .ok_or_else(bad)?;
                match (parts.next(), parts.next(), parts.next()) {
                    (None, None, None) => Ok(Cursor::Storage(kind, None)),
                    (Some(micros), Some(id), None) => {
                        let at = micros
                            .parse::<i64>()
                            .ok()
                            .and_then(DateTime::from_timestamp_micros)
                            .ok_or_else(bad)?;
                        let id = Uuid::parse_str(id).map_err(|_| bad())?;
                        Ok(Cursor::Storage(kind, Some((at, id))))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// A page of positions.
pub struct RefPage {
    /// The positions, in order.
    pub refs: Vec<Ref>,
    /// Where the next page starts (none: this is the last).
    pub next: Option<Cursor>,
    /// How many items the criteria select in all (when `truncated`, how many were
    /// considered).
    pub total: u64,
    /// Whether keyword matches were left out at a cap.
    pub truncated: bool,
}

/// Keyword matches, and whether some were left out at a cap.
struct KeywordRefs {
    refs: Vec<Ref>,
    truncated: bool,
}

/// One item, decrypted: what a search shows a line of and an export writes in full.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// `message`, `file` or `document_version`.
    pub kind: &'static str,
    /// Its id.
    pub id: String,
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Its channel (a version: its document's, if any).
    pub channel_id: Option<ChannelId>,
    /// The channel's name (none for conversations).
    pub channel_name: Option<String>,
    /// `public`, `private`, `direct` or `group`.
    pub channel_kind: Option<String>,
    /// Who wrote, uploaded or made it.
    pub author_id: UserId,
    /// Their display name (`Erased user` once erased).
    pub author_name: String,
    /// Their email (empty once erased).
    pub author_email: String,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When a message was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// Whether it was deleted (and is kept under a hold or a grace period).
    pub deleted: bool,
    /// When it was deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// A reply's thread root.
    pub thread_root_id: Option<MessageId>,
    /// A message's text or a version's content (none: a file, or a deleted message whose
    /// text nothing kept).
    pub text: Option<String>,
    /// A message's earlier texts, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub earlier_texts: Vec<HeldVersion>,
    /// A file's or a version's name.
    pub name: Option<String>,
    /// A file's content type.
    pub content_type: Option<String>,
    /// A file's size in bytes.
    pub size: Option<i64>,
    /// The message a file was posted with.
    pub message_id: Option<MessageId>,
    /// A version's document.
    pub document_id: Option<DocumentId>,
    /// A version's document's title.
    pub document_title: Option<String>,
    /// A file, to read its bytes.
    #[serde(skip)]
    pub file: Option<HeldFile>,
}

/// A person as items name them.
#[derive(Clone, Debug)]
struct Person {
    name: String,
    email: String,
}

/// A channel as items name it.
#[derive(Clone, Debug)]
struct Place {
    name: Option<String>,
    kind: String,
}

/// Names read once per request.
#[derive(Default)]
pub struct Names {
    people: HashMap<UserId, Person>,
    places: HashMap<ChannelId, Option<Place>>,
}

impl EDiscoveryService {
    /// One page of positions from `cursor` (none: the start).
    pub(super) async fn refs_page(
        &self,
        actor: &Actor,
        c: &Criteria,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<RefPage, Error> {
        match &c.query {
            Some(q) => {
                let offset = match cursor {
                    None => 0,
                    Some(Cursor::Offset(n)) => n,
                    Some(Cursor::Storage(..)) => {
                        return Err(invalid("cursor", "belongs to a search without keywords"))
                    }
                };
                let KeywordRefs {
                    refs: all,
                    truncated,
                } = self.keyword_refs(actor, c, q).await?;
                let end = (offset + limit).min(all.len());
                let refs = all.get(offset..end).unwrap_or_default().to_vec();
                Ok(RefPage {
                    next: (end < all.len()).then_some(Cursor::Offset(end)),
                    total: all.len() as u64,
                    truncated,
                    refs,
                })
            }
            None => {
                let start = match cursor {
                    None => Cursor::Storage(c.kinds[0], None),
                    Some(Cursor::Offset(_)) => {
                        return Err(invalid("cursor", "belongs to a search with keywords"))
                    }
                    Some(s) => s,
                };
                self.storage_page(c, start, limit).await
            }
        }
    }

    async fn storage_page(
        &self,
        c: &Criteria,
        start: Cursor,
        limit: usize,
    ) -> Result<RefPage, Error> {
        let Cursor::Storage(first, mut after) = start else {
            return Err(invalid("cursor", "is not a cursor this API handed out"));
        };
        let sc = c.storage();
        let mut conn = self.inner.store.reader().await?;
        let counts = listing::counts(&mut conn.conn(), &sc).await?;
        let total = c
            .kinds
            .iter()
            .map(|k| counts[k.index()].max(0) as u64)
            .sum();
        let mut refs = Vec::with_capacity(limit);
        let kinds: Vec<Kind> = c.kinds.iter().copied().filter(|k| *k >= first).collect();
        let mut next = None;
        for (i, kind) in kinds.iter().enumerate() {
            if kind != &first {
                after = None;
            }
            let want = limit - refs.len();
            let rows = fetch(&mut conn.conn(), *kind, &sc, after, want as i64 + 1).await?;
            let more = rows.len() > want;
            for at in rows.into_iter().take(want) {
                refs.push(Ref { kind: *kind, at });
            }
            if refs.len() == limit {
                next = if more {
                    refs.last()
                        .map(|r| Cursor::Storage(*kind, Some((r.at.at, r.at.id))))
                } else {
                    kinds.get(i + 1).map(|k| Cursor::Storage(*k, None))
                };
                break;
            }
        }
        Ok(RefPage {
            refs,
            next,
            total,
            truncated: false,
        })
    }

    /// Every keyword match, oldest first: messages and files from the index, the named
    /// versions of documents it finds whose own text matches, and deleted (kept) messages
    /// matched here; at most `ediscovery.max_keyword_matches`, `truncated` when there were
    /// more (or more kept deleted messages than `ediscovery.max_deleted_scanned`).
    async fn keyword_refs(
        &self,
        actor: &Actor,
        c: &Criteria,
        q: &str,
    ) -> Result<KeywordRefs, Error> {
        let wants = |k: Kind| c.kinds.contains(&k);
        let cap = self
            .inner
            .options
            .max_keyword_matches
            .clamp(1, MAX_KEYWORD_MATCHES);
        let scan = self.inner.options.max_deleted_scanned.max(1);
        let terms = Terms::of(q)?;
        let hits = self
            .inner
            .search
            .discover(
                actor,
                DiscoveryQuery {
                    workspace: c.workspace,
                    q: q.to_owned(),
                    custodians: c.custodians.clone(),
                    channels: c.channels.clone(),
                    from: c.from,
                    to: c.to,
                    documents: wants(Kind::DocumentVersion),
                    cap,
                },
            )
            .await?;
        let mut truncated = hits.total > hits.hits.len();
        let sc = c.storage();
        let mut conn = self.inner.store.reader().await?;
        let mut refs = Vec::new();
        let mut versions = Vec::new();
        for hit in hits.hits {
            let Ok(id) = Uuid::parse_str(&hit.id) else {
                continue;
            };
            let kind = match hit.kind.as_str() {
                "message" => Kind::Message,
                "file" => Kind::File,
                "document" if wants(Kind::DocumentVersion) => {
                    versions
                        .extend(listing::versions_of(&mut conn.conn(), &sc, DocumentId(id)).await?);
                    continue;
                }
                _ => continue,
            };
            if wants(kind) {
                refs.push(Ref {
                    kind,
                    at: Position {
                        id,
                        at: hit.at,
                        parent: id,
                    },
                });
            }
        }
        if wants(Kind::Message) {
            let mut deleted =
                listing::deleted_messages(&mut conn.conn(), &sc, scan as i64 + 1).await?;
            if deleted.len() > scan {
                deleted.truncate(scan);
                truncated = true;
            }
            for at in deleted {
                let Some(m) = store::messages::by_id_in_workspace(
                    &mut conn.conn(),
                    c.workspace,
                    MessageId(at.id),
                )
                .await?
                else {
                    continue;
                };
                let held = self
                    .inner
                    .holds
                    .held_message(&mut conn.conn(), c.workspace, m)
                    .await?;
                if held.text.as_deref().is_some_and(|t| terms.matches(t)) {
                    refs.push(Ref {
                        kind: Kind::Message,
                        at,
                    });
                }
            }
        }
        drop(conn);
        // The index matched a document's current text: keep only the versions whose own
        // text (with the document's title and the version's name) matches.
        for at in versions {
            let version = self
                .inner
                .docs
                .discovered_version(c.workspace, DocumentId(at.parent), VersionId(at.id))
                .await?;
            let matches = version.is_some_and(|v| {
                terms.matches(&format!("{}\n{}\n{}", v.document_title, v.name, v.text))
            });
            if matches {
                refs.push(Ref {
                    kind: Kind::DocumentVersion,
                    at,
                });
            }
        }
        refs.sort_by_key(|r| (r.at.at, r.kind, r.at.id));
        refs.dedup();
        if refs.len() > cap {
            refs.truncate(cap);
            truncated = true;
        }
        Ok(KeywordRefs { refs, truncated })
    }

    /// Reads and decrypts the item at `r`; `None` if it is gone since it was listed.
    pub(super) async fn read_item(
        &self,
        workspace: WorkspaceId,
        r: &Ref,
        names: &mut Names,
    ) -> Result<Option<Item>, Error> {
        let mut conn = self.inner.store.reader().await?;
        let conn = &mut conn.conn();
        let mut item = match r.kind {
            Kind::Message => {
                let Some(m) =
                    store::messages::by_id_in_workspace(conn, workspace, MessageId(r.at.id))
                        .await?
                else {
                    return Ok(None);
                };
                let held = self.inner.holds.held_message(conn, workspace, m).await?;
                Item {
                    kind: r.kind.as_str(),
                    id: held.id.to_string(),
                    workspace_id: workspace,
                    channel_id: Some(held.channel_id),
                    channel_name: None,
                    channel_kind: None,
                    author_id: held.author_id,
                    author_name: String::new(),
                    author_email: String::new(),
                    created_at: held.created_at,
                    edited_at: held.edited_at,
                    deleted: held.deleted_at.is_some(),
                    deleted_at: held.deleted_at,
                    thread_root_id: held.thread_root_id,
                    text: held.text,
                    earlier_texts: held.versions,
                    name: None,
                    content_type: None,
                    size: None,
                    message_id: None,
                    document_id: None,
                    document_title: None,
                    file: None,
                }
            }
            Kind::File => {
                let Some(f) = self
                    .inner
                    .files
                    .held_file(workspace, FileId(r.at.id))
                    .await?
                else {
                    return Ok(None);
                };
                let rec = &f.record;
                Item {
                    kind: r.kind.as_str(),
                    id: rec.id.to_string(),
                    workspace_id: workspace,
                    channel_id: (rec.parent_kind == "channel").then_some(ChannelId(rec.parent_id)),
                    channel_name: None,
                    channel_kind: None,
                    author_id: rec.uploader_id,
                    author_name: String::new(),
                    author_email: String::new(),
                    created_at: rec.created_at,
                    edited_at: None,
                    deleted: f.deleted_at.is_some(),
                    deleted_at: f.deleted_at,
                    thread_root_id: None,
                    text: None,
                    earlier_texts: Vec::new(),
                    name: Some(f.name.clone()),
                    content_type: rec.content_type.clone(),
                    size: Some(rec.size),
                    message_id: rec.message_id,
                    document_id: None,
                    document_title: None,
                    file: Some(f),
                }
            }
            Kind::DocumentVersion => {
                let Some(v) = self
                    .inner
                    .docs
                    .discovered_version(workspace, DocumentId(r.at.parent), VersionId(r.at.id))
                    .await?
                else {
                    return Ok(None);
                };
                Item {
                    kind: r.kind.as_str(),
                    id: v.id.to_string(),
                    workspace_id: workspace,
                    channel_id: v.channel_id,
                    channel_name: None,
                    channel_kind: None,
                    author_id: v.created_by,
                    author_name: String::new(),
                    author_email: String::new(),
                    created_at: v.created_at,
                    edited_at: None,
                    deleted: false,
                    deleted_at: None,
                    thread_root_id: None,
                    text: Some(v.text),
                    earlier_texts: Vec::new(),
                    name: Some(v.name),
                    content_type: None,
                    size: None,
                    message_id: None,
                    document_id: Some(v.document_id),
                    document_title: Some(v.document_title),
                    file: None,
                }
            }
        };
        let person = self.person(conn, names, item.author_id).await?;
        item.author_name = person.name;
        item.author_email = person.email;
        if let Some(channel) = item.channel_id {
            if let Some(place) = self.place(conn, names, channel).await? {
                item.channel_name = place.name;
                item.channel_kind = Some(place.kind);
            }
        }
        Ok(Some(item))
    }

    async fn person(
        &self,
        conn: &mut Conn<'_>,
        names: &mut Names,
        id: UserId,
    ) -> Result<Person, Error> {
        if let Some(p) = names.people.get(&id) {
            return Ok(p.clone());
        }
        let person = match store::users::by_id(conn, id).await? {
            Some(user) => {
                let view = crate::accounts::view(&self.inner.keyring, conn, user).await?;
                Person {
                    email: if view.status == "erased" {
                        String::new()
                    } else {
                        view.email
                    },
                    name: view.display_name,
                }
            }
            None => Person {
                name: crate::accounts::ERASED_NAME.to_owned(),
                email: String::new(),
            },
        };
        names.people.insert(id, person.clone());
        Ok(person)
    }

    async fn place(
        &self,
        conn: &mut Conn<'_>,
        names: &mut Names,
        id: ChannelId,
    ) -> Result<Option<Place>, Error> {
        if let Some(p) = names.places.get(&id) {
            return Ok(p.clone());
        }
        let place = match store::channels::by_id(conn, id).await? {
            Some(channel) => {
                let details =
                    crate::chat::details::open(&self.inner.keyring, conn, &channel).await?;
                Some(Place {
                    name: details.name,
                    kind: channel.kind,
                })
            }
            None => None,
        };
        names.places.insert(id, place.clone());
        Ok(place)
    }
}

async fn fetch(
    conn: &mut Conn<'_>,
    kind: Kind,
    c: &listing::Criteria<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Position>, Error> {
    Ok(match kind {
        Kind::Message => listing::messages(conn, c, after, limit).await?,
        Kind::File => listing::files(conn, c, after, limit).await?,
        Kind::DocumentVersion => listing::versions(conn, c, after, limit).await?,
    })
}

/// A keyword query's words, to match text the index does not hold (deleted messages kept):
/// every word of each wanted term present, no excluded term's words all present. Phrases
/// are matched as their words.
struct Terms {
    wanted: Vec<Vec<String>>,
    excluded: Vec<Vec<String>>,
}

impl Terms {
    fn of(q: &str) -> Result<Terms, Error> {
        let parsed = crate::search::query::parse(q).map_err(|e| invalid("query", e.to_string()))?;
        let mut wanted = Vec::new();
        let mut excluded = Vec::new();
        for t in parsed.terms {
            let words = crate::search::terms(&t.text);
            if words.is_empty() {
                continue;
            }
            if t.excluded {
                excluded.push(words);
            } else {
                wanted.push(words);
            }
        }
        Ok(Terms { wanted, excluded })
    }

    fn matches(&self, text: &str) -> bool {
        if self.wanted.is_empty() {
            return false;
        }
        let words: HashSet<String> = crate::search::terms(text).into_iter().collect();
        let all = |ws: &Vec<String>| ws.iter().all(|w| words.contains(w));
        self.wanted.iter().all(all) && !self.excluded.iter().any(all)
    }
}
