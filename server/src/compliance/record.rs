//! The record of processing activities (GDPR Art. 30), generated, never written by hand.
//!
//! [`RecordService::generate`] builds it from what Concord knows at that moment: the
//! processing activities the composition root lists (each feature's purpose and the columns
//! of the data inventory it declares), the enabled policy modules and every workspace's
//! effective policy (retention per category, per workspace where it differs from the
//! deployment's), what is installed and configured (bots and where their events go, single
//! sign-on providers), the security measures in force (encryption, the audit chain, HIPAA
//! safeguards when the `hipaa` module is enabled) and what only the operator knows, from the
//! `[processing_record]` settings (controller, representative, data protection officer,
//! transfers). A column added to the inventory appears in the record without a change here.
//!
//! Reading it needs `processing_record.read` (compliance officers and system administrators;
//! no workspace role holds it) and is audited as `processing_record.generated`.
//! [`ProcessingRecord::markdown`] renders it as a document for people.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::audit::{Auditor, Event, Outcome};
use crate::config::{Config, ProcessingRecordConfig};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Error;
use crate::inventory::{Activity, Column, Retention, ScopeRule, Shape, SubjectKind};
use crate::policy::{PolicyService, Retention as RetentionPolicy};
use crate::rbac::{Action, Actor, Resource};
use crate::store::{self, Store};

/// What the record needs from the configuration, taken once at start.
#[derive(Clone, Debug)]
pub struct RecordSettings {
    record: ProcessingRecordConfig,
    identity_providers: Vec<IdentityProvider>,
    production: bool,
    checkpoint_every: u64,
    witness: bool,
    record_searches: bool,
    tls_proxy: bool,
    lockout_threshold: u32,
    session_days: u64,
    s3_blobs: bool,
    malware_scan: bool,
}

impl RecordSettings {
    /// The settings of `config`.
    pub fn from_config(config: &Config) -> RecordSettings {
        RecordSettings {
            record: config.processing_record.clone(),
            identity_providers: config
                .sso
                .providers
                .iter()
                .map(|p| IdentityProvider {
                    id: p.id.clone(),
                    name: p.display_name.clone(),
                    issuer: p.issuer_url.clone(),
                })
                .collect(),
            production: config.mode == crate::config::Mode::Production,
            checkpoint_every: config.audit.checkpoint_every,
            witness: config.audit.witness.is_some(),
            record_searches: config.audit.record_searches != crate::config::SearchRecording::Off,
            tls_proxy: config.http.tls_proxy.is_some(),
            lockout_threshold: config.auth.lockout_threshold,
            session_days: config.auth.session_days,
            s3_blobs: config.files.blob.backend == crate::config::BlobBackend::S3,
            malware_scan: config.files.clamd.is_some(),
        }
    }
}

/// The controller and their contacts (Art. 30(1)(a)), as configured.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Controller {
    /// The controller's name and contact details (`null`: not configured).
    pub name: Option<String>,
    /// Their representative in the Union.
    pub representative: Option<String>,
    /// The data protection officer.
    pub dpo: Option<String>,
}

/// One purpose of processing: a feature and the data it processes.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Purpose {
    /// The feature (`chat`, `documents`, ...).
    pub name: String,
    /// What personal data is processed for.
    pub purpose: String,
    /// The tables it keeps personal data in.
    pub tables: Vec<String>,
    /// Whose data it is.
    pub data_subjects: Vec<String>,
}

/// A category of data subjects.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DataSubjectCategory {
    /// The category (`account`, `author`, ...).
    pub category: String,
    /// Who they are.
    pub description: String,
    /// The columns holding their data (`table.column`).
    pub columns: Vec<String>,
}

/// One column of personal data, from the data inventory.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PersonalData {
    /// The feature that declares it.
    pub activity: String,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// Whose data it is (a data-subject category).
    pub data_subject: String,
    /// How it is stored and protected.
    pub protection: String,
    /// The retention class (`account`, `content`, `session`, `audit_log`, ...).
    pub retention: String,
    /// How long that keeps it, under the deployment's policy.
    pub retention_period: String,
}

/// Someone personal data is disclosed to (Art. 30(1)(d)).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    /// `bot` (an integration a workspace installed) or `identity_provider`.
    pub kind: String,
    /// Its id (the bot's account, the provider's slug).
    pub id: String,
    /// The workspace that installed it (bots).
    pub workspace_id: Option<WorkspaceId>,
    /// What it is sent, and where.
    pub receives: String,
}

/// An identity provider configured for single sign-on.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityProvider {
    /// Its slug.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its issuer URL.
    pub issuer: String,
}

/// Retention periods: the deployment's, and each workspace's where it differs.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionPeriods {
    /// The enabled policy modules, in order.
    pub modules: Vec<String>,
    /// The deployment's periods (its modules, no override).
    pub deployment: RetentionPolicy,
    /// Workspaces whose effective periods differ from the deployment's.
    pub workspaces: Vec<WorkspaceRetention>,
}

/// A workspace's effective retention where it differs from the deployment's.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct WorkspaceRetention {
    /// The workspace.
    pub workspace_id: WorkspaceId,
    /// Its effective periods.
    pub retention: RetentionPolicy,
    /// Channels with a period of their own: id and messages' period.
    pub channels: BTreeMap<String, String>,
    /// What happens to an erased person's content there (`anonymize`, `delete`).
    pub erasure: String,
}

/// The record of processing activities.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessingRecord {
    /// When it was generated.
    pub generated_at: DateTime<Utc>,
    /// The controller (from configuration).
    pub controller: Controller,
    /// The purposes of processing.
    pub purposes: Vec<Purpose>,
    /// The categories of data subjects.
    pub data_subjects: Vec<DataSubjectCategory>,
    /// Every column of personal data (the data inventory).
    pub personal_data: Vec<PersonalData>,
    /// Who personal data is disclosed to.
    pub recipients: Vec<Recipient>,
    /// Transfers to third countries or international organisations (from configuration;
    /// empty: none).
    pub transfers: Vec<String>,
    /// Time limits for erasure.
    pub retention: RetentionPeriods,
    /// The technical and organisational security measures (Art. 32).
    pub security_measures: Vec<String>,
}

fn subject_name(kind: SubjectKind) -> (&'static str, &'static str) {
    match kind {
        SubjectKind::Account => (
            "account",
            "people with an account: members, guests, administrators",
        ),
        SubjectKind::Author => ("author", "people who wrote messages, comments or documents"),
        SubjectKind::Uploader => ("uploader", "people who shared files"),
        SubjectKind::Creator => (
            "creator",
            "people who created documents, versions, invitations or records",
        ),
        SubjectKind::Invitee => ("invitee", "people invited to a workspace, before they join"),
        SubjectKind::SessionHolder => (
            "session_holder",
            "people signed in (their devices and addresses)",
        ),
        SubjectKind::Actor => ("actor", "people whose actions the audit log records"),
        SubjectKind::Members => (
            "members",
            "a workspace's members together (names, topics, roles)",
        ),
        SubjectKind::Affected => (
            "affected",
            "people a breach affected, as its record describes them",
        ),
    }
}

fn protection(column: &Column) -> &'static str {
    match column.shape {
        Shape::Sealed | Shape::SealedBase64 => match column.scope {
            ScopeRule::Workspace(_) => {
                "AES-256-GCM under the workspace's data key, bound to its row"
            }
            _ => {
                "AES-256-GCM under the person's own data key, bound to its row (destroyed when \
                 they are erased)"
            }
        },
        Shape::Chained => {
            "AES-256-GCM in the hash-chained audit log, under the key of the person the entry is \
             about"
        }
        Shape::Recorded => {
            "AES-256-GCM under the deployment's compliance-record key, bound to its row"
        }
        Shape::ContentKeyed => "AES-256-GCM under a per-file content key, itself sealed",
        Shape::CodeKeyed => "sealed under a one-time code only the person's browser holds",
        Shape::BlindIndex => "a keyed hash (HMAC) for lookups, not reversible",
        Shape::Plain => "stored in plaintext",
    }
}

fn retention_name(r: Retention) -> &'static str {
    match r {
        Retention::Account => "account",
        Retention::Content => "content",
        Retention::Session => "session",
        Retention::Invitation => "invitation",
        Retention::AuditLog => "audit_log",
        Retention::Register => "register",
        Retention::Transient => "transient",
    }
}

fn period(r: Retention, table: &str, policy: &RetentionPolicy) -> String {
    match r {
        Retention::Account => "while the account exists; erased on request (Art. 17)".into(),
        Retention::Content => {
            let days = if table.starts_with("file") {
                policy.files_days
            } else if table.starts_with("document") {
                policy.document_history_days
            } else {
                policy.messages_days
            };
            format!(
                "{days} (retention.{}), deleted content destroyed after {} days",
                if table.starts_with("file") {
                    "files_days"
                } else if table.starts_with("document") {
                    "document_history_days"
                } else {
                    "messages_days"
                },
                policy.deletion_grace_days
            )
        }
        Retention::Session => format!(
            "until the session ends; records of ended sessions {} (retention.sessions_days)",
            policy.sessions_days
        ),
        Retention::Invitation => "until the invitation is used, revoked or expires".into(),
        Retention::AuditLog => format!(
            "{} (retention.audit_days); unreadable at once when the person is erased",
            policy.audit_days
        ),
        Retention::Register => "for as long as the register is kept: evidence of each breach \
                                 (Art. 33(5)), never deleted by retention or erasure"
            .into(),
        Retention::Transient => "minutes (sign-in hand-offs, unsent upload tails)".into(),
    }
}

/// Generates the record of processing activities; cheap to clone.
#[derive(Clone)]
pub struct RecordService {
    store: Store,
    auditor: Auditor,
    policies: PolicyService,
    activities: std::sync::Arc<[Activity]>,
    settings: std::sync::Arc<RecordSettings>,
}

impl RecordService {
    /// The service over `store`, describing `activities` under `policies` with `settings`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        policies: PolicyService,
        activities: Vec<Activity>,
        settings: RecordSettings,
    ) -> RecordService {
        RecordService {
            store,
            auditor,
            policies,
            activities: activities.into(),
            settings: std::sync::Arc::new(settings),
        }
    }

    /// The record as of now (`processing_record.read`); audited as
    /// `processing_record.generated`. The command line generates it as Concord itself.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn generate(&self, actor: &Actor) -> Result<ProcessingRecord, Error> {
        {
            let mut conn = self.store.reader().await?;
            self.auditor
                .authorize_read(
                    &self.store,
                    &mut conn.conn(),
                    actor,
                    Action::ReadProcessingRecord,
                    Resource::System,
                )
                .await?;
        }
        let record = self.build().await?;
        let event = Event::by(actor, "processing_record.generated", Outcome::Allowed)
            .target("processing_record", "deployment")
            .details(serde_json::json!({
                "modules": record.retention.modules,
                "columns": record.personal_data.len(),
                "recipients": record.recipients.len(),
                "workspaces_differing": record.retention.workspaces.len(),
            }));
        self.auditor.record_alone(&self.store, event).await?;
        Ok(record)
    }

    async fn build(&self) -> Result<ProcessingRecord, Error> {
        let deployment = self.policies.deployment()?;
        let (workspaces, bots) = {
            let mut conn = self.store.reader().await?;
            (
                store::policies::workspace_ids(&mut conn.conn()).await?,
                store::breaches::active_bots(&mut conn.conn()).await?,
            )
        };
        let mut differing = Vec::new();
        for workspace in workspaces {
            let (resolved, _) = self.policies.effective(workspace).await?;
            let policy = resolved.policy;
            let own_channels: BTreeMap<String, String> = policy
                .channels
                .iter()
                .filter(|(_, c)| c.messages_days != policy.retention.messages_days)
                .map(|(id, c)| (id.to_string(), c.messages_days.to_string()))
                .collect();
            if policy.retention != deployment.retention
                || policy.data_subject.erasure != deployment.data_subject.erasure
                || !own_channels.is_empty()
            {
                differing.push(WorkspaceRetention {
                    workspace_id: workspace,
                    retention: policy.retention,
                    channels: own_channels,
                    erasure: erasure_name(&policy.data_subject.erasure),
                });
            }
        }

        let mut purposes = Vec::new();
        let mut personal_data = Vec::new();
        let mut subjects: BTreeMap<&'static str, (&'static str, Vec<String>)> = BTreeMap::new();
        for activity in self.activities.iter() {
            let mut tables = BTreeSet::new();
            let mut whose = BTreeSet::new();
            for column in activity.columns {
                tables.insert(column.table.to_owned());
                let (name, description) = subject_name(column.subject.kind);
                whose.insert(name.to_owned());
                subjects
                    .entry(name)
                    .or_insert_with(|| (description, Vec::new()))
                    .1
                    .push(format!("{}.{}", column.table, column.column));
                personal_data.push(PersonalData {
                    activity: activity.name.to_owned(),
                    table: column.table.to_owned(),
                    column: column.column.to_owned(),
                    data_subject: name.to_owned(),
                    protection: protection(column).to_owned(),
                    retention: retention_name(column.retention).to_owned(),
                    retention_period: period(column.retention, column.table, &deployment.retention),
                });
            }
            purposes.push(Purpose {
                name: activity.name.to_owned(),
                purpose: activity.purpose.to_owned(),
                tables: tables.into_iter().collect(),
                data_subjects: whose.into_iter().collect(),
            });
        }

        let mut recipients: Vec<Recipient> = bots
            .into_iter()
            .map(|(bot, workspace, url): (UserId, WorkspaceId, Option<String>)| Recipient {
                kind: "bot".into(),
                id: bot.to_string(),
                workspace_id: Some(workspace),
                receives: match url.as_deref().and_then(host_of) {
                    Some(host) => format!(
                        "what it reads through its token's scopes, and the events it subscribes to, at {host}"
                    ),
                    None => "what it reads through its token's scopes".into(),
                },
            })
            .collect();
        recipients.extend(self.settings.identity_providers.iter().map(|p| Recipient {
            kind: "identity_provider".into(),
            id: p.id.clone(),
            workspace_id: None,
            receives: format!(
                "{} ({}): sign-in requests; it sends Concord the person's identity and email",
                p.name, p.issuer
            ),
        }));

        let record = &self.settings.record;
        Ok(ProcessingRecord {
            generated_at: Utc::now(),
            controller: Controller {
                name: record.controller.clone(),
                representative: record.representative.clone(),
                dpo: record.dpo.clone(),
            },
            purposes,
            data_subjects: subjects
                .into_iter()
                .map(|(category, (description, columns))| DataSubjectCategory {
                    category: category.to_owned(),
                    description: description.to_owned(),
                    columns,
                })
                .collect(),
            personal_data,
            recipients,
            transfers: record.transfers.clone(),
            retention: RetentionPeriods {
                modules: self.policies.modules(),
                deployment: deployment.retention,
                workspaces: differing,
            },
            security_measures: self.measures(),
        })
    }

    fn measures(&self) -> Vec<String> {
        let s = &self.settings;
        let mut out = vec![
            "Encryption at rest: every personal or user-written value is sealed with AES-256-GCM under a data key of its workspace or person, bound to its row and column; data keys are wrapped by a key-encryption key and rotated without downtime.".to_owned(),
            format!(
                "Key-encryption key: {}.",
                if s.production {
                    "provided by the operator (production mode never generates keys)"
                } else {
                    "development mode: a generated key, with a warning (not for production)"
                }
            ),
            "Access control: role-based permissions decided for every read and write; private channels invisible to outsiders, administrators included; denials audited.".to_owned(),
            format!(
                "Authentication: argon2id passwords, sign-in throttling with lockout after {} failures, short-lived access tokens and revocable sessions lasting at most {} days{}.",
                s.lockout_threshold,
                s.session_days,
                if s.identity_providers.is_empty() { "" } else { ", single sign-on" }
            ),
            format!(
                "Accountability: an append-only, hash-chained audit log with Ed25519-signed checkpoints at least every {} entries{}; exports verify offline.",
                s.checkpoint_every,
                if s.witness { ", each published to an outside witness" } else { "" }
            ),
            format!(
                "Searches {}; posts, comments and searches are audited as metadata, never their text.",
                if s.record_searches { "are audited" } else { "are not audited" }
            ),
            "Data-subject rights: export of everything the inventory lists about a person, rectification, erasure by destroying the person's key, a register of requests with deadlines.".to_owned(),
            "Legal holds keep what they cover from retention, deletion and erasure; a breach register with reports from the audit log.".to_owned(),
        ];
        if s.s3_blobs {
            out.push("Files are stored encrypted in an S3-compatible object store; the store never sees plaintext.".into());
        }
        if s.malware_scan {
            out.push(
                "Uploaded files are scanned for malware (ClamAV) and quarantined when infected."
                    .into(),
            );
        }
        if self.policies.hipaa() {
            out.push(format!(
                "HIPAA mode (45 CFR 164.312): TLS required{}, automatic logoff of idle sessions, emergency access (break-glass) with a reason and on time, audit log kept at least six years.",
                if s.tls_proxy { " (terminated by the configured proxy)" } else { "" }
            ));
        }
        out
    }
}

fn erasure_name(e: &crate::policy::Erasure) -> String {
    serde_json::to_value(e)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The host of a URL, for saying where events go without the path (which may hold a secret).
fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

impl ProcessingRecord {
    /// The record as a Markdown document.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "not configured".into());
        let _ = writeln!(out, "# Record of processing activities (GDPR Art. 30)\n");
        let _ = writeln!(
            out,
            "Generated by Concord at {}.\n",
            self.generated_at.to_rfc3339()
        );
        let _ = writeln!(out, "## Controller\n");
        let _ = writeln!(out, "- Controller: {}", or_none(&self.controller.name));
        let _ = writeln!(
            out,
            "- Representative: {}",
            or_none(&self.controller.representative)
        );
        let _ = writeln!(
            out,
            "- Data protection officer: {}\n",
            or_none(&self.controller.dpo)
        );
        let _ = writeln!(out, "## Purposes of processing\n");
        let _ = writeln!(
            out,
            "| activity | purpose | tables | data subjects |\n|---|---|---|---|"
        );
        for p in &self.purposes {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                p.name,
                p.purpose,
                p.tables.join(", "),
                p.data_subjects.join(", ")
            );
        }
        let _ = writeln!(out, "\n## Categories of data subjects\n");
        for s in &self.data_subjects {
            let _ = writeln!(
                out,
                "- **{}**: {} ({} columns)",
                s.category,
                s.description,
                s.columns.len()
            );
        }
        let _ = writeln!(out, "\n## Categories of personal data\n");
        let _ = writeln!(
            out,
            "| table | column | activity | data subject | protection | kept |\n|---|---|---|---|---|---|"
        );
        for d in &self.personal_data {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                d.table, d.column, d.activity, d.data_subject, d.protection, d.retention_period
            );
        }
        let _ = writeln!(out, "\n## Recipients\n");
        if self.recipients.is_empty() {
            let _ = writeln!(
                out,
                "None: no bots are installed and no identity provider is configured."
            );
        }
        for r in &self.recipients {
            let ws = r
                .workspace_id
                .map(|w| format!(" (workspace {w})"))
                .unwrap_or_default();
            let _ = writeln!(out, "- {} `{}`{}: {}", r.kind, r.id, ws, r.receives);
        }
        let _ = writeln!(out, "\n## Transfers to third countries\n");
        if self.transfers.is_empty() {
            let _ = writeln!(out, "None.");
        }
        for t in &self.transfers {
            let _ = writeln!(out, "- {t}");
        }
        let r = &self.retention;
        let _ = writeln!(out, "\n## Time limits for erasure\n");
        let _ = writeln!(out, "Policy modules: {}.\n", r.modules.join(", "));
        let _ = writeln!(
            out,
            "| scope | messages | files | document history | sessions | audit log | deletion grace |\n|---|---|---|---|---|---|---|"
        );
        let row = |out: &mut String, scope: &str, p: &RetentionPolicy| {
            let _ = writeln!(
                out,
                "| {scope} | {} | {} | {} | {} | {} | {} days |",
                p.messages_days,
                p.files_days,
                p.document_history_days,
                p.sessions_days,
                p.audit_days,
                p.deletion_grace_days
            );
        };
        row(&mut out, "deployment", &r.deployment);
        for w in &r.workspaces {
            row(
                &mut out,
                &format!("workspace {}", w.workspace_id),
                &w.retention,
            );
        }
        let _ = writeln!(out, "\n## Technical and organisational security measures\n");
        for m in &self.security_measures {
            let _ = writeln!(out, "- {m}");
        }
        out
    }
}
