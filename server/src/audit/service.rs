//! Compliance access to the audit log: filtered listing, streamed exports, live verification.
//! Reading and exporting require `audit.read` and are themselves audited.

use std::collections::{BTreeSet, HashMap};

use futures::stream::{self, Stream};
use serde::Serialize;

use super::export::{CheckpointLine, EventLine, ExportFilters, Header, Sealer};
use super::verify::{ChainError, Verified, Verifier};
use super::{Auditor, Event, Outcome};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::UserId;
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::audit::{self, AuditFilter, AuditRecord, CheckpointRecord, CheckpointSigner};
use crate::store::audit_chain as chain;
use crate::store::audit_cuts;
use crate::store::keys::{self, DataKeyRecord};
use crate::store::{Conn, Store, Tx};

/// Rows read per database round trip when streaming.
const PAGE: i64 = 500;

/// A page of entries and the cursor for the next one.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The entries, in sequence order, with personal fields decrypted where keys exist.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<EventLine>,
    /// Pass as `cursor` to get the next page; absent at the end.
    pub next_cursor: Option<String>,
}

/// Export file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines with header and checkpoints (verifiable offline).
    Jsonl,
    /// CSV of entries and checkpoints, for spreadsheets.
    Csv,
}

/// The compliance officer's access to the audit log.
#[derive(Clone)]
pub struct AuditService {
    store: Store,
    auditor: Auditor,
}

async fn decrypted_line(keyring: &Keyring, conn: &mut Conn<'_>, rec: &AuditRecord) -> EventLine {
    let f = &rec.fields;
    let scope = f.subject.as_deref().and_then(Scope::parse);
    let mut ip = None;
    let mut details = None;
    if let Some(scope) = scope {
        let aad = |column| Aad {
            table: "audit_events",
            row: &f.id,
            column,
        };
        if let Some(ct) = &f.ip_enc {
            ip = keyring.decrypt_text(conn, &scope, aad("ip"), ct).await.ok();
        }
        if let Some(ct) = &f.details_enc {
            details = keyring
                .decrypt(conn, &scope, aad("details"), ct)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
        }
    }
    EventLine::from_record(rec, ip, details)
}

fn csv_field(value: Option<&str>) -> String {
    let v = value.unwrap_or("");
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

/// The CSV header line.
pub const CSV_HEADER: &str = "record,seq,id,occurred_at,actor_type,actor_id,session_id,action,target_type,target_id,workspace_id,outcome,subject,ip,details,prev_hash,hash,signature,key_version\n";

fn csv_event(l: &EventLine) -> String {
    let details = l.details.as_ref().map(|d| d.to_string());
    let seq = l.seq.to_string();
    let cells = [
        Some("event"),
        Some(seq.as_str()),
        Some(l.id.as_str()),
        Some(l.occurred_at.as_str()),
        Some(l.actor_type.as_str()),
        l.actor_id.as_deref(),
        l.session_id.as_deref(),
        Some(l.action.as_str()),
        l.target_type.as_deref(),
        l.target_id.as_deref(),
        l.workspace_id.as_deref(),
        Some(l.outcome.as_str()),
        l.subject.as_deref(),
        l.ip.as_deref(),
        details.as_deref(),
        Some(l.prev_hash.as_str()),
        Some(l.hash.as_str()),
        None,
        None,
    ];
    let line: Vec<String> = cells.iter().map(|c| csv_field(*c)).collect();
    let mut out = line.join(",");
    out.push('\n');
    out
}

fn csv_checkpoint(c: &CheckpointLine) -> String {
    format!(
        "checkpoint,{},,{},,,,,,,,,,,,,{},{},{}\n",
        c.seq, c.signed_at, c.head_hash, c.signature, c.key_version
    )
}

impl AuditService {
    /// A service over `store`.
    pub fn new(store: Store, auditor: Auditor) -> AuditService {
        AuditService { store, auditor }
    }

    /// Every entry whose actor or target is `user`, in sequence order, decrypted where keys
    /// exist: the audit log's part of a data-subject export (the caller authorizes and
    /// records the export).
    pub async fn about(&self, user: UserId) -> Result<Vec<EventLine>, Error> {
        let mut conn = self.store.reader().await?;
        let mut found = std::collections::BTreeMap::new();
        let id = user.to_string();
        for by_actor in [true, false] {
            let mut after_seq = 0;
            loop {
                let filter = AuditFilter {
                    after_seq,
                    actor_id: by_actor.then(|| id.clone()),
                    target_id: (!by_actor).then(|| id.clone()),
                    ..AuditFilter::default()
                };
                let records = audit::list(&mut conn.conn(), &filter, PAGE).await?;
                for rec in &records {
                    let line = decrypted_line(self.auditor.keyring(), &mut conn.conn(), rec).await;
                    found.insert(rec.seq, line);
                }
                match records.last() {
                    Some(last) if records.len() as i64 == PAGE => after_seq = last.seq,
                    _ => break,
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// Every entry `actor` acted in from `from` (included) to `to` (excluded), both RFC 3339
    /// as entries store their time, in sequence order, decrypted where keys exist: what a
    /// breach report reads (the caller authorizes and records the report). At most `cap`
    /// entries; the second value says whether more were left out.
    pub async fn by_actor_between(
        &self,
        actor: UserId,
        from: Option<String>,
        to: Option<String>,
        cap: usize,
    ) -> Result<(Vec<EventLine>, bool), Error> {
        let mut conn = self.store.reader().await?;
        let mut found = Vec::new();
        let mut after_seq = 0;
        loop {
            let filter = AuditFilter {
                after_seq,
                from: from.clone(),
                to: to.clone(),
                actor_id: Some(actor.to_string()),
                ..AuditFilter::default()
            };
            let records = audit::list(&mut conn.conn(), &filter, PAGE).await?;
            for rec in &records {
                if found.len() == cap {
                    return Ok((found, true));
                }
                found.push(decrypted_line(self.auditor.keyring(), &mut conn.conn(), rec).await);
            }
            match records.last() {
                Some(last) if records.len() as i64 == PAGE => after_seq = last.seq,
                _ => return Ok((found, false)),
            }
        }
    }

    /// Entries matching `filter`, a page at a time; the read is audited.
    pub async fn list(
        &self,
        actor: &Actor,
        filter: AuditFilter,
        limit: i64,
    ) -> Result<AuditPage, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAudit,
                Resource::System,
            )
            .await?;
        let limit = limit.clamp(1, 1000);
        let records = audit::list(&mut conn.conn(), &filter, limit).await?;
        let mut events = Vec::with_capacity(records.len());
        for rec in &records {
            events.push(decrypted_line(self.auditor.keyring(), &mut conn.conn(), rec).await);
        }
        drop(conn);
        let next_cursor = (records.len() as i64 == limit)
            .then(|| records.last().map(|r| r.seq.to_string()))
            .flatten();
        let details = serde_json::json!({
            "from": filter.from, "to": filter.to, "actor": filter.actor_id, "action": filter.action,
            "target": filter.target_id, "workspace": filter.workspace_id, "outcome": filter.outcome,
            "after": filter.after_seq, "returned": records.len(),
        });
        self.auditor
            .record_alone(
                &self.store,
                Event::by(actor, "audit.read", Outcome::Allowed)
                    .target("audit_log", "events")
                    .details(details),
            )
            .await?;
        Ok(AuditPage {
            events,
            next_cursor,
        })
    }

    /// Starts an export of the entries in a time range: authorizes, records the export (and
    /// signs a checkpoint over the chain head), and returns the lines as a stream. A JSON
    /// Lines export ends with its seal: a signature over its last entry and every byte
    /// before it, so the header and the tail after the last checkpoint are covered too.
    pub async fn export(
        &self,
        actor: &Actor,
        from: Option<String>,
        to: Option<String>,
        format: ExportFormat,
    ) -> Result<impl Stream<Item = Result<String, Error>> + Send + 'static, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadAudit,
                Resource::System,
            )
            .await?;
        drop(conn);
        let auditor = self.auditor.clone();
        let event = Event::by(actor, "audit.export", Outcome::Allowed)
            .target("audit_log", "export")
            .details(serde_json::json!({
                "from": from, "to": to,
                "format": if format == ExportFormat::Csv { "csv" } else { "jsonl" },
            }));
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor.record(tx, event).await?;
                    tx.request_checkpoint();
                    Ok::<_, Error>(())
                })
            })
            .await?;
        let mut conn = self.store.reader().await?;
        let bounds = audit::seq_bounds(&mut conn.conn(), from.as_deref(), to.as_deref()).await?;
        let (mut first, last) = bounds.unwrap_or((1, 0));
        let cut = audit_cuts::newest(&mut conn.conn()).await?;
        // Cut by retention: the export starts after the anchor checkpoint, whose head precedes
        // the first entry kept (entries up to it whose deletion is still under way are left
        // out).
        if let Some(c) = &cut {
            first = first.max(c.upto_seq + 1);
        }
        let prev_hash = match &cut {
            Some(c) if c.upto_seq + 1 == first => c.head_hash.clone(),
            _ => match audit::before(&mut conn.conn(), first).await? {
                Some(r) => r.hash,
                None => chain::GENESIS.to_vec(),
            },
        };
        let head_hash = match audit::range(&mut conn.conn(), last, last, 1).await?.pop() {
            Some(r) if last >= first => r.hash,
            _ => prev_hash.clone(),
        };
        let spanned = audit::checkpoints(&mut conn.conn(), first, last).await?;
        // Read after the checkpoints, so the seal's key is at least as new as theirs.
        let seal_key = keys::latest(&mut conn.conn(), keys::AUDIT_SIGNING_SCOPE)
            .await?
            .ok_or(Error::Internal("no audit signing key".into()))?;
        drop(conn);
        let key_versions: BTreeSet<i64> = spanned
            .iter()
            .map(|c| c.key_version)
            .chain([seal_key.version])
            .collect();
        let header = Header {
            kind: "header".into(),
            format: super::export::FORMAT.into(),
            version: super::export::VERSION,
            from_seq: first,
            to_seq: last,
            prev_hash: hex::encode(&prev_hash),
            filters: ExportFilters { from, to },
            exported_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            key_versions: key_versions.into_iter().collect(),
            checkpoint_every: self
                .store
                .checkpoint_every()
                .and_then(|n| i64::try_from(n).ok()),
        };
        let head_line = match format {
            ExportFormat::Jsonl => serde_json::to_string(&header)
                .map(|s| s + "\n")
                .map_err(|e| Error::Internal(e.to_string()))?,
            ExportFormat::Csv => CSV_HEADER.to_owned(),
        };
        let tail: String = spanned
            .iter()
            .map(|c| {
                let line = CheckpointLine::from_record(c);
                match format {
                    ExportFormat::Jsonl => serde_json::to_string(&line).unwrap_or_default() + "\n",
                    ExportFormat::Csv => csv_checkpoint(&line),
                }
            })
            .collect();
        let state = ExportState {
            stage: Stage::Header(head_line),
            next: first,
            last,
            tail,
            sealer: Sealer::new(),
            head_hash,
            seal_key,
            format,
            store: self.store.clone(),
            keyring: self.auditor.keyring().clone(),
        };
        Ok(stream::unfold(state, |mut state| async move {
            let chunk = state.step().await?;
            Some((chunk, state))
        }))
    }
}

/// Where a streaming export is.
enum Stage {
    Header(String),
    Events,
    Checkpoints,
    Seal,
    Done,
}

/// A streaming export: header, entries a page at a time, checkpoints, then the seal over
/// every byte sent before it.
struct ExportState {
    stage: Stage,
    next: i64,
    last: i64,
    tail: String,
    sealer: Sealer,
    head_hash: Vec<u8>,
    seal_key: DataKeyRecord,
    format: ExportFormat,
    store: Store,
    keyring: Keyring,
}

impl ExportState {
    /// The next chunk, or `None` at the end (an error ends the stream, without a seal).
    async fn step(&mut self) -> Option<Result<String, Error>> {
        let chunk = match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Header(line) => {
                self.stage = Stage::Events;
                line
            }
            Stage::Events if self.next <= self.last => match self.page().await {
                Ok(out) => {
                    self.stage = Stage::Events;
                    out
                }
                Err(e) => return Some(Err(e)),
            },
            Stage::Events => {
                self.stage = Stage::Checkpoints;
                std::mem::take(&mut self.tail)
            }
            Stage::Checkpoints => {
                if self.format == ExportFormat::Csv {
                    return None;
                }
                self.stage = Stage::Seal;
                let sealer = std::mem::take(&mut self.sealer);
                let keyring = self.keyring.clone();
                let key = self.seal_key.clone();
                return Some(
                    sealer
                        .seal(self.last, &self.head_hash, key.version, |m| {
                            keyring.sign(&key, m)
                        })
                        .map_err(|e| Error::Internal(format!("cannot seal the export: {e}"))),
                );
            }
            Stage::Seal | Stage::Done => return None,
        };
        self.sealer.update(chunk.as_bytes());
        Some(Ok(chunk))
    }

    async fn page(&mut self) -> Result<String, Error> {
        let mut conn = self.store.reader().await?;
        let records = audit::range(&mut conn.conn(), self.next, self.last, PAGE).await?;
        let mut out = String::new();
        for rec in &records {
            let line = decrypted_line(&self.keyring, &mut conn.conn(), rec).await;
            match self.format {
                ExportFormat::Jsonl => {
                    out.push_str(
                        &serde_json::to_string(&line)
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    );
                    out.push('\n');
                }
                ExportFormat::Csv => out.push_str(&csv_event(&line)),
            }
        }
        self.next = match records.last() {
            Some(r) => r.seq + 1,
            None => self.last + 1,
        };
        Ok(out)
    }
}

/// Whether a cut of the log by retention holds: its signature with the stored signing keys,
/// its anchor checkpoint (`anchor`: stored at its sequence number, with its head and a valid
/// signature), and the anchor signed before the cut's time minus the period it applied. The
/// reason if not.
pub fn check_cut(
    cut: &audit_cuts::CutRecord,
    anchor: Option<&CheckpointRecord>,
    keys: &HashMap<i64, Vec<u8>>,
) -> Result<(), String> {
    if !cut.signed_by(keys) {
        return Err(format!(
            "the cut at sequence {} does not verify with signing key version {}",
            cut.upto_seq, cut.key_version
        ));
    }
    let Some(anchor) = anchor.filter(|a| a.seq == cut.upto_seq && a.head_hash == cut.head_hash)
    else {
        return Err(format!(
            "the log was cut at sequence {}, but the signed checkpoint it is anchored at is missing or names another head",
            cut.upto_seq
        ));
    };
    let message = chain::checkpoint_message(
        anchor.seq,
        &anchor.head_hash,
        anchor.key_version,
        &anchor.signed_at,
    );
    if !keys
        .get(&anchor.key_version)
        .is_some_and(|k| chain::verify_signature(k, &message, &anchor.signature))
    {
        return Err(format!(
            "the checkpoint at sequence {} the log was cut at does not verify",
            anchor.seq
        ));
    }
    let signed_at = chrono::DateTime::parse_from_rfc3339(&anchor.signed_at);
    let cut_at = chrono::DateTime::parse_from_rfc3339(&cut.cut_at);
    let young = match (signed_at, cut_at) {
        (Ok(signed), Ok(at)) => signed >= at - chrono::TimeDelta::days(cut.audit_days),
        _ => true,
    };
    if young {
        return Err(format!(
            "the checkpoint at sequence {} the log was cut at was signed {}, not {} days before the cut ({})",
            anchor.seq, anchor.signed_at, cut.audit_days, cut.cut_at
        ));
    }
    Ok(())
}

/// Whether the newest cut of the log, if any, is one the deployment's own
/// `retention.audit_days` (`days`, from its policy modules; overrides cannot set it; `None`:
/// forever) allows at `now`: none at all if the log is kept forever, otherwise one anchored at
/// a checkpoint signed more than `days` before `now`.
pub async fn check_cut_period(
    store: &Store,
    days: Option<u32>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Result<(), ChainError>, Error> {
    let mut conn = store.reader().await?;
    let Some(cut) = audit_cuts::newest(&mut conn.conn()).await? else {
        return Ok(Ok(()));
    };
    let seq = cut.upto_seq + 1;
    let Some(days) = days else {
        return Ok(Err(ChainError {
            seq,
            reason: format!(
                "the log was cut at sequence {}, but this deployment keeps the audit log forever (retention.audit_days)",
                cut.upto_seq
            ),
        }));
    };
    let anchor = audit_cuts::checkpoint_at(&mut conn.conn(), cut.upto_seq).await?;
    let signed = anchor
        .as_ref()
        .and_then(|a| chrono::DateTime::parse_from_rfc3339(&a.signed_at).ok())
        .map(|at| at.with_timezone(&chrono::Utc));
    let limit = now - chrono::TimeDelta::days(i64::from(days));
    match signed {
        Some(at) if at < limit => Ok(Ok(())),
        _ => Ok(Err(ChainError {
            seq,
            reason: format!(
                "the log was cut at sequence {}, whose checkpoint is not older than this deployment's retention.audit_days ({days} days)",
                cut.upto_seq
            ),
        })),
    }
}

/// Verifies the whole live log against the stored signing keys.
pub async fn verify_live(store: &Store) -> Result<Result<Verified, ChainError>, Error> {
    verify_live_witnessed(store, Vec::new()).await
}

/// Verifies the whole live log, and that it holds every head an outside witness recorded
/// (parsed with [`super::witness::parse_heads`]).
///
/// A log cut by retention (`store::audit_cuts`) is verified from its newest cut: the anchor
/// checkpoint must still be stored, match the cut's head and carry a valid signature (which
/// proves the head the remaining chain starts from), and the remaining log must hold the
/// `audit.cut` entry that recorded the cut. Every recorded cut must carry a valid signature
/// ([`check_cut`]). Entries at or before the anchor still waiting for their deletion are not
/// read; heads of the outside witness before the anchor are counted in
/// [`Verified::witnessed_before_cut`] (they cannot be checked), the one at the anchor must
/// match it. An empty log without a cut fails.
pub async fn verify_live_witnessed(
    store: &Store,
    witnessed: Vec<CheckpointRecord>,
) -> Result<Result<Verified, ChainError>, Error> {
    let mut conn = store.reader().await?;
    let keys: HashMap<i64, Vec<u8>> = Keyring::signing_keys(&mut conn.conn())
        .await?
        .into_iter()
        .map(|k| (k.version, k.public_key))
        .collect();
    let cuts = audit_cuts::all(&mut conn.conn()).await?;
    // Every cut recorded must carry the signing key's signature: the database only checks
    // that a cut names a stored checkpoint, so a row inserted with its credentials is caught
    // here.
    if let Some(c) = cuts.iter().find(|c| !c.signed_by(&keys)) {
        return Ok(Err(ChainError {
            seq: c.upto_seq + 1,
            reason: format!(
                "the cut recorded at sequence {} does not verify with signing key version {}: it was not made by retention (entries were removed outside it)",
                c.upto_seq, c.key_version
            ),
        }));
    }
    let cut = cuts.last().cloned();
    let (first, prev_hash) = match &cut {
        Some(c) => (c.upto_seq + 1, c.head_hash.clone()),
        None => (1, chain::GENESIS.to_vec()),
    };
    let checkpoints = audit::checkpoints(&mut conn.conn(), first - 1, i64::MAX).await?;
    if let Some(c) = &cut {
        let anchor = checkpoints.first().filter(|cp| cp.seq == c.upto_seq);
        if let Err(reason) = check_cut(c, anchor, &keys) {
            return Ok(Err(ChainError { seq: first, reason }));
        }
    }
    // Heads the witness recorded at or before the cut: the one at the anchor must be the
    // anchor's; the ones before it cannot be checked any more (their entries are gone), and
    // are reported.
    let mut before_cut = 0;
    let mut witnessed_after = Vec::with_capacity(witnessed.len());
    for head in witnessed {
        match &cut {
            Some(c) if head.seq <= c.upto_seq => {
                if head.seq == c.upto_seq && head.head_hash != c.head_hash {
                    return Ok(Err(ChainError {
                        seq: head.seq,
                        reason: "the outside witness recorded another head at the sequence the log was cut at".into(),
                    }));
                }
                before_cut += 1;
            }
            _ => witnessed_after.push(head),
        }
    }
    let mut verifier = Verifier::new(first, prev_hash, checkpoints, &keys);
    if let Some(every) = store.checkpoint_every() {
        verifier.bound_gaps(i64::try_from(every).unwrap_or(i64::MAX));
    }
    verifier.witnessed(witnessed_after, &keys);
    let recorded = cut.as_ref().map(|c| c.upto_seq.to_string());
    let mut cut_found = false;
    let mut next = first;
    loop {
        let records = audit::range(&mut conn.conn(), next, i64::MAX, PAGE).await?;
        let Some(last) = records.last() else { break };
        next = last.seq + 1;
        for rec in &records {
            if rec.fields.action == "audit.cut"
                && rec.fields.outcome == "allowed"
                && rec.fields.target_id == recorded
            {
                cut_found = true;
            }
            verifier.push(rec);
        }
    }
    let mut verified = verifier.finish();
    if let Ok(v) = &mut verified {
        v.witnessed_before_cut = before_cut;
        if cut.is_none() && v.entries == 0 {
            return Ok(Err(ChainError {
                seq: 1,
                reason: "the log is empty, and no cut by retention explains it: its entries were removed".into(),
            }));
        }
    }
    if let (Some(c), Ok(_)) = (&cut, &verified) {
        if !cut_found {
            return Ok(Err(ChainError {
                seq: first,
                reason: format!(
                    "the log starts after sequence {}, but no audit.cut entry records that cut: entries were removed outside retention",
                    c.upto_seq
                ),
            }));
        }
    }
    Ok(verified)
}
