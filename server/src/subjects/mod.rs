//! Data-subject rights (GDPR Art. 15 and 20): a person's data, gathered by walking the data
//! inventory, as one ZIP archive of JSON and files.
//!
//! [`SubjectService::export`] walks every inventory column that names whose data it is
//! (`Subject::who`): for each table, the rows whose owner is the person, with each listed
//! column decrypted for its place (sealed columns), given as stored (plain ones) or left out
//! with the reason (blind indexes, hashes and keys, which are not readable data). The audit
//! entries the person acted in or was the target of come from the audit log, and the files
//! they uploaded with their contents. `manifest.json` lists every table walked with its
//! count, every column left out and every file with its SHA-256. A person exports their own
//! data; compliance officers and system administrators (`data_subjects.export`) anyone's.
//! Each export is audited (`data_subject.exported`, counts only).
//!
//! [`requests`] is the register of data-subject requests (GDPR Art. 12(3)) with their
//! deadlines, which compliance officers answer from. [`restriction`] is the restriction of
//! processing (GDPR Art. 18).
//!
//! Invariant: the export walks the inventory, never a list of its own, so a column a feature
//! adds to the inventory with a subject is exported without a change here.

mod inventory;
pub mod requests;
pub mod restriction;
pub mod zip;

pub use inventory::INVENTORY;
pub use requests::RequestService;
pub use restriction::RestrictionService;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::audit::service::AuditService;
use crate::audit::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Error;
use crate::files::FileService;
use crate::inventory::{Column, Inventory, ScopeRule, Shape};
use crate::rbac::{Action, Actor, Resource};
use crate::store::inventory::{self as inv_store, KeyPart, KeyValue, ValueColumn, Walk};
use crate::store::{self, Store};

/// The most bytes of file contents one export holds (it is built in memory).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;
/// The longest reason an export of someone else's data may give.
pub const MAX_REASON_CHARS: usize = 500;
/// Rows read per query.
const PAGE: usize = 500;

/// A finished export.
pub struct Export {
    /// The archive's bytes.
    pub zip: Vec<u8>,
    /// A file name for it.
    pub file_name: String,
}

/// Data-subject requests; cheap to clone.
#[derive(Clone)]
pub struct SubjectService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
    inventory: Arc<Inventory>,
    files: FileService,
    audit: AuditService,
    running: Arc<tokio::sync::Semaphore>,
}

/// The columns of one table a subject's rows are read from.
struct TableWalk {
    walk: Walk,
    who: crate::inventory::Owner,
    user_scope: Option<bool>,
    columns: Vec<&'static Column>,
}

fn grouped(inventory: &Inventory) -> Vec<TableWalk> {
    let mut tables: Vec<TableWalk> = Vec::new();
    for column in inventory.columns() {
        let Some(who) = column.subject.who else {
            continue;
        };
        // The audit log is read through its own service (its scope is stored per entry);
        // what is left out is not read at all; rows keyed by a hash are not walked.
        if column.shape == Shape::Chained
            || left_out(column).is_some()
            || column.key.iter().any(|k| matches!(k, KeyPart::Bytes(_)))
        {
            continue;
        }
        if let Some(t) = tables
            .iter_mut()
            .find(|t| t.walk.table == column.table && t.who == who)
        {
            if t.user_scope.is_none() {
                if let ScopeRule::Workspace(o) | ScopeRule::User(o) = column.scope {
                    t.walk.scope = o;
                    t.user_scope = Some(matches!(column.scope, ScopeRule::User(_)));
                    if let Some(p) = column.place {
                        t.walk.row = p.row;
                    }
                }
            }
            t.walk.columns.push(ValueColumn {
                name: column.column,
                text: column.shape == Shape::SealedBase64 || column.shape == Shape::Plain,
            });
            t.columns.push(column);
            continue;
        }
        let (scope, user_scope) = match column.scope {
            ScopeRule::Workspace(o) => (o, Some(false)),
            ScopeRule::User(o) => (o, Some(true)),
            _ => (who, None),
        };
        tables.push(TableWalk {
            walk: Walk {
                table: column.table,
                key: column.key,
                row: column.place.map(|p| p.row).unwrap_or(column.key),
                scope,
                columns: vec![ValueColumn {
                    name: column.column,
                    text: column.shape == Shape::SealedBase64 || column.shape == Shape::Plain,
                }],
            },
            who,
            user_scope,
            columns: vec![column],
        });
    }
    tables
}

/// Why a column's values are not in an export, if they are not.
fn left_out(column: &Column) -> Option<&'static str> {
    if column.key.iter().any(|k| matches!(k, KeyPart::Bytes(_))) {
        return Some("short-lived sign-in state keyed by a hash");
    }
    if column.column.contains("secret") || column.column.contains("token") {
        return Some("a credential: shown once when it was made, never exported");
    }
    match column.table {
        "legal_holds" => return Some("a legal hold describes its custodians, not its author"),
        "message_remnants" => {
            return Some("text kept under a legal hold, disclosed through eDiscovery only")
        }
        _ => {}
    }
    match column.shape {
        Shape::BlindIndex => Some("a keyed hash for lookups, not readable data"),
        Shape::CodeKeyed => Some("sealed under a one-time code only the browser held"),
        Shape::ContentKeyed => Some("part of an upload in progress"),
        Shape::Plain if column.column.ends_with("_hash") => {
            Some("a one-way hash (of a password or token), not readable data")
        }
        _ if column.column == "content_key" => {
            Some("a file's encryption key; the file's contents are in files/")
        }
        _ => None,
    }
}

impl SubjectService {
    /// The service over `store`, walking `inventory`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        inventory: Arc<Inventory>,
        files: FileService,
        audit: AuditService,
    ) -> SubjectService {
        SubjectService {
            keyring: auditor.keyring().clone(),
            store,
            auditor,
            inventory,
            files,
            audit,
            running: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Everything Concord holds about `subject`, as a ZIP archive (the person themself, or
    /// `data_subjects.export`); audited.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn export(
        &self,
        actor: &Actor,
        subject: UserId,
        reason: Option<&str>,
    ) -> Result<Export, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::ExportPersonalData,
                    Resource::Account(subject),
                )
                .await?;
            match store::users::by_id(&mut conn.conn(), subject).await? {
                None => return Err(Error::NotFound("user")),
                Some(user) if user.erased_at.is_some() => {
                    return Err(Error::gone(
                        "erased",
                        "this person was erased: no personal data of theirs is left to export",
                    ))
                }
                Some(_) => {}
            }
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
            return Err(crate::domain::ParseError {
                field: "reason",
                message: format!("must be at most {MAX_REASON_CHARS} characters"),
            }
            .into());
        }
        if actor.user_id() != Some(subject) && reason.is_none() {
            return Err(Error::refused(
                "reason_required",
                "exporting someone else's data needs a reason (the request it answers), \
                 which the audit log keeps",
            ));
        }
        // One export at a time: each is built in memory.
        let _one = self.running.acquire().await.map_err(internal)?;
        let mut archive = zip::ZipWriter::new();
        let mut tables = Vec::new();
        let omitted: Vec<Value> = self
            .inventory
            .columns()
            .iter()
            .filter(|c| c.subject.who.is_some() && c.shape != Shape::Chained)
            .filter_map(|c| {
                left_out(c).map(|why| json!({"table": c.table, "column": c.column, "why": why}))
            })
            .collect();
        for t in grouped(&self.inventory) {
            let rows = self.rows_of(&t, subject).await?;
            let path = format!("data/{}.json", t.walk.table);
            tables.push(json!({
                "table": t.walk.table,
                "columns": t.columns.iter().map(|c| c.column).collect::<Vec<_>>(),
                "kind": format!("{:?}", t.columns[0].subject.kind).to_lowercase(),
                "rows": rows.len(),
                "path": path,
            }));
            archive.add(&path, &serde_json::to_vec_pretty(&rows).map_err(internal)?)?;
        }
        let audit: Vec<Value> = self
            .audit
            .about(subject)
            .await?
            .into_iter()
            .map(|line| own_part(line, subject))
            .collect::<Result<_, _>>()?;
        archive.add(
            "audit.json",
            &serde_json::to_vec_pretty(&audit).map_err(internal)?,
        )?;
        let mut files = Vec::new();
        for (view, bytes) in self.files.uploads_of(subject, MAX_FILE_BYTES).await? {
            let path = format!("files/{}/{}", view.id, safe_name(&view.name));
            archive.add(&path, &bytes)?;
            files.push(json!({
                "id": view.id,
                "name": view.name,
                "size": bytes.len(),
                "sha256": hex::encode(Sha256::digest(&bytes)),
                "path": path,
                "shared_in": view.parent_id,
                "message_id": view.message_id,
                "content_type": view.content_type,
            }));
        }
        let generated_at = Utc::now();
        let manifest = json!({
            "format": "concord-data-export/1",
            "subject_id": subject,
            "generated_at": generated_at,
            "generated_by": actor.user_id(),
            "tables": tables,
            "omitted_columns": omitted,
            "audit_entries": audit.len(),
            "audit_path": "audit.json",
            "files": files,
        });
        archive.add(
            "manifest.json",
            &serde_json::to_vec_pretty(&manifest).map_err(internal)?,
        )?;
        let zip = archive.finish()?;
        let rows: usize = tables
            .iter()
            .filter_map(|t| t["rows"].as_u64())
            .map(|n| n as usize)
            .sum();
        let event = Event::by(actor, "data_subject.exported", Outcome::Allowed)
            .target("user", subject)
            .subject(subject)
            .details(json!({
                "reason": reason,
                "rows": rows,
                "audit_entries": audit.len(),
                "files": files.len(),
                "bytes": zip.len(),
            }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(Export {
            zip,
            file_name: format!(
                "concord-export-{subject}-{}.zip",
                generated_at.format("%Y%m%dT%H%M%SZ")
            ),
        })
    }

    /// The subject's rows of one table, each an object of its key and readable columns.
    async fn rows_of(&self, t: &TableWalk, subject: UserId) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut cursor: Option<Vec<KeyValue>> = None;
        let mut conn = self.store.reader().await?;
        loop {
            let rows = inv_store::owned_after(
                &mut conn.conn(),
                &t.walk,
                &t.who,
                subject.0,
                cursor.as_deref(),
                PAGE,
            )
            .await?;
            for row in &rows {
                let mut object = Map::new();
                for (part, value) in t.walk.key.iter().zip(&row.key) {
                    object.insert(part.column().to_owned(), key_json(value));
                }
                let row_id = inv_store::joined(&row.row);
                for (column, stored) in t.columns.iter().zip(&row.values) {
                    let value = match stored.as_deref() {
                        None => Value::Null,
                        Some([]) => Value::String(String::new()),
                        Some(stored) => {
                            self.readable(&mut conn.conn(), t, column, row.scope, &row_id, stored)
                                .await?
                        }
                    };
                    object.insert(column.column.to_owned(), value);
                }
                out.push(Value::Object(object));
            }
            if rows.len() < PAGE {
                return Ok(out);
            }
            cursor = rows.last().map(|r| r.key.clone());
        }
    }

    /// One stored value as readable JSON: decrypted text (or base64 of binary plaintext).
    async fn readable(
        &self,
        conn: &mut store::Conn<'_>,
        t: &TableWalk,
        column: &Column,
        owner: Option<uuid::Uuid>,
        row_id: &str,
        stored: &[u8],
    ) -> Result<Value, Error> {
        let plain = match column.shape {
            Shape::Plain => stored.to_vec(),
            Shape::Sealed | Shape::SealedBase64 => {
                let sealed = if column.shape == Shape::SealedBase64 {
                    base64::engine::general_purpose::STANDARD
                        .decode(stored)
                        .map_err(|_| {
                            internal(format!("{}.{} is not base64", column.table, column.column))
                        })?
                } else {
                    stored.to_vec()
                };
                let (Some(owner), Some(user_scope)) = (owner, t.user_scope) else {
                    return Ok(json!({"unreadable": "no key scope"}));
                };
                let scope = if user_scope {
                    Scope::User(UserId(owner))
                } else {
                    Scope::Workspace(WorkspaceId(owner))
                };
                let aad = Aad {
                    table: column.table,
                    row: row_id,
                    column: column.place.map(|p| p.column).unwrap_or(column.column),
                };
                match self.keyring.decrypt(conn, &scope, aad, &sealed).await {
                    Ok(p) => p.to_vec(),
                    // An erased key (crypto-shredded) leaves nothing readable.
                    Err(e) => return Ok(json!({"unreadable": e.to_string()})),
                }
            }
            _ => return Ok(Value::Null),
        };
        Ok(match String::from_utf8(plain) {
            Ok(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v @ (Value::Object(_) | Value::Array(_))) => v,
                _ => Value::String(text),
            },
            Err(e) => {
                json!({"base64": base64::engine::general_purpose::STANDARD.encode(e.into_bytes())})
            }
        })
    }
}

/// An audit entry as the person's export shows it: whole where they acted, and where they
/// only were its target, without the actor's address, session and details (the actor's
/// personal data, not theirs).
fn own_part(line: crate::audit::export::EventLine, subject: UserId) -> Result<Value, Error> {
    let mine = line.actor_id.as_deref() == Some(subject.to_string().as_str());
    let mut value = serde_json::to_value(line).map_err(internal)?;
    if !mine {
        if let Some(object) = value.as_object_mut() {
            for key in ["ip", "session_id", "details"] {
                object.insert(key.to_owned(), Value::Null);
            }
        }
    }
    Ok(value)
}

fn key_json(value: &KeyValue) -> Value {
    match value {
        KeyValue::Id(u) => Value::String(u.to_string()),
        KeyValue::Int(n) => json!(n),
        KeyValue::Text(t) => Value::String(t.clone()),
    }
}

/// A file name safe as an archive path's last part.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches('.').trim();
    if trimmed.is_empty() {
        "file".to_owned()
    } else {
        trimmed.chars().take(200).collect()
    }
}

fn internal(err: impl std::fmt::Display) -> Error {
    Error::Internal(err.to_string())
}

impl From<zip::ZipError> for Error {
    fn from(err: zip::ZipError) -> Error {
        match err {
            zip::ZipError::TooLarge(what) => Error::refused(
                "export_too_large",
                format!("this person's data is too large for one export ({what})"),
            ),
            zip::ZipError::Io(e) => internal(e),
        }
    }
}

/// The per-table grouping, for a test that checks every subject table is walked.
pub fn exported_tables(inventory: &Inventory) -> Vec<&'static str> {
    let mut out: BTreeMap<&'static str, ()> = BTreeMap::new();
    for t in grouped(inventory) {
        out.insert(t.walk.table, ());
    }
    out.into_keys().collect()
}
