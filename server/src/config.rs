//! Typed, layered configuration: defaults, then a TOML file, then `CONCORD_*` environment
//! variables, then command-line flags. It is validated once at start; an invalid value stops
//! Concord with one line naming the key. Printing it redacts secrets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize, Serializer};

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "concord.toml";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value of the wrong shape, or is unknown.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The named config file is missing or unreadable.
    #[error("cannot read config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A secret value: deserialized like a string, never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// Development generates missing keys (with a warning); production refuses to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// For trying Concord out: missing keys are generated.
    #[default]
    Development,
    /// For real data: every key must be provided.
    Production,
}

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// All of Concord's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `development` or `production`.
    pub mode: Mode,
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// Public base URL for links Concord prints (setup, invitations); defaults to `http://<bind>`.
    pub public_url: Option<String>,
    /// Where Concord keeps its files (SQLite database, keys, blobs).
    pub data_dir: PathBuf,
    /// Database settings.
    pub database: DatabaseConfig,
    /// Sign-in, token and throttling settings.
    pub auth: AuthConfig,
    /// HTTP edge limits.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// Encryption keys.
    pub keys: KeysConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Single sign-on through OpenID Connect providers.
    pub sso: SsoConfig,
    /// Co-edited documents.
    pub docs: DocsConfig,
    /// File sharing: limits, where blobs live, malware scanning.
    pub files: FilesConfig,
    /// Full-text search.
    pub search: SearchConfig,
    /// The transactional outbox durable event consumers read.
    pub outbox: OutboxConfig,
    /// Bots: event deliveries to their request URLs.
    pub bots: BotsConfig,
    /// Who may read the Prometheus metrics at `/metrics`.
    pub metrics: MetricsConfig,
    /// The compliance policy modules enabled (retention, PHI safeguards, data-subject rights).
    pub policy: PolicyConfig,
    /// The retention job that applies the policies' `retention.messages_days`.
    pub retention: RetentionConfig,
    /// The PHI safeguards that act over time: automatic logoff's sweep, break-glass.
    pub phi: PhiConfig,
    /// What the record of processing activities (GDPR Art. 30) says that Concord cannot know.
    pub processing_record: ProcessingRecordConfig,
    /// eDiscovery: export limits and the scheduled daily export.
    pub ediscovery: EDiscoveryConfig,
    /// Workflows: where service tasks may call, and how long a call may take.
    pub workflows: WorkflowsConfig,
}

/// eDiscovery's limits and its scheduled daily export.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EDiscoveryConfig {
    /// The most items (messages, files, document versions) one export holds; larger
    /// criteria are refused with `export_too_large` (narrow them, export in parts).
    pub max_export_items: u64,
    /// The most MiB of content one export holds in memory: the text of messages (their
    /// earlier versions included) and document versions, and in a ZIP the files' bytes (at
    /// most 4095); more is refused with `export_too_large`.
    pub max_export_mib: u64,
    /// The most keyword matches one search or export considers (1 to 10000). A search with
    /// more answers them with `truncated: true`; an export is refused (`export_too_large`).
    pub max_keyword_matches: u64,
    /// The most kept deleted messages (which the search index no longer holds) a keyword
    /// search reads to match itself (1 to 100000); with more, as `max_keyword_matches`.
    pub max_deleted_scanned: u64,
    /// How many exports are built at once (1 to 16; each holds up to `max_export_mib`).
    pub concurrent_exports: u64,
    /// How long a further export waits for its turn, in seconds (0 to 25, under the
    /// request timeout), before it is refused with `export_busy` (503, `Retry-After`).
    pub export_wait_seconds: u64,
    /// The previous day's export of every workspace, written to a directory each day.
    pub daily_export: DailyExportConfig,
}

impl Default for EDiscoveryConfig {
    fn default() -> Self {
        EDiscoveryConfig {
            max_export_items: 50_000,
            max_export_mib: 1024,
            max_keyword_matches: 10_000,
            max_deleted_scanned: 5_000,
            concurrent_exports: 2,
            export_wait_seconds: 10,
            daily_export: DailyExportConfig::default(),
        }
    }
}

/// The scheduled daily export (`[ediscovery.daily_export]`).
///
/// Its files are plaintext by design (archiving services ingest them as they are): Concord
/// creates them readable by its own user only (0600; the directory 0700 if Concord creates
/// it), and never deletes or rewrites one. The directory is the operator's: its access, its
/// encryption at rest, its backups and its deletion (retention periods, a person's erasure,
/// a released legal hold) are the operator's to arrange, outside Concord.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DailyExportConfig {
    /// Whether the server writes the daily export (requires `directory`).
    pub enabled: bool,
    /// Where the files go (`ediscovery-<workspace>-<day>.<ext>`); plaintext, owned by the
    /// operator (see above).
    pub directory: Option<PathBuf>,
    /// `jsonl`, `csv`, `zip`, `actiance` or `globalrelay`.
    pub format: String,
    /// The hour of the day (UTC, 0 to 23) from which the previous day is exported.
    pub hour: u32,
    /// Seconds between two checks whether a day is due (1 to 3600).
    pub check_seconds: u64,
    /// How many days back each check looks for days not yet exported (1 to 366), so days
    /// missed while no server ran are exported, oldest first; never a day before the
    /// workspace was created.
    pub catch_up_days: u32,
}

impl Default for DailyExportConfig {
    fn default() -> Self {
        DailyExportConfig {
            enabled: false,
            directory: None,
            format: "jsonl".into(),
            hour: 1,
            check_seconds: 300,
            catch_up_days: 31,
        }
    }
}

/// The parts of the record of processing activities (GDPR Art. 30) only the operator knows:
/// who the controller is and where personal data goes outside Concord. Everything else in the
/// record is generated from the policy modules, the data inventory and what is installed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessingRecordConfig {
    /// The controller's name and contact details (Art. 30(1)(a)).
    pub controller: Option<String>,
    /// The controller's representative in the Union, if any (Art. 27).
    pub representative: Option<String>,
    /// The data protection officer's contact details, if one is designated.
    pub dpo: Option<String>,
    /// Transfers of personal data to a third country or an international organisation, each
    /// naming the recipient, the country and the safeguard (Art. 30(1)(e)); none by default.
    pub transfers: Vec<String>,
}

/// How workflows reach the outside: service tasks' HTTP calls.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowsConfig {
    /// Private, loopback, link-local and other non-public networks service tasks may call
    /// (`10.0.0.0/8`, `127.0.0.1`); by default none: a call to such an address fails, as a
    /// bot's request URL would, so a deployed model cannot reach inside the network.
    pub allowed_networks: Vec<ProxyNet>,
    /// How long one service call may take, connection included, in milliseconds.
    pub call_timeout_ms: u64,
    /// Due jobs (timers, calls, child instances) one runner pass takes at most.
    pub batch: i64,
    /// How often a routed task that waits for someone available (everyone absent or at
    /// capacity) is routed again, in milliseconds.
    pub routing_retry_ms: u64,
    /// How often each process's learned router is retrained on its completed tasks, in
    /// hours, once it has been trained the first time (0: only on demand).
    pub retrain_every_hours: u64,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        WorkflowsConfig {
            allowed_networks: Vec::new(),
            call_timeout_ms: 10_000,
            batch: 200,
            routing_retry_ms: 30_000,
            retrain_every_hours: 24,
        }
    }
}

/// How the PHI safeguards run (their periods are the policies' `phi.*` keys).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhiConfig {
    /// Seconds between two sweeps that store the activity seen, find who is subject to
    /// automatic logoff and end idle sessions and their sockets (a request with an idle
    /// session is refused at once, whatever the sweep).
    pub sweep_seconds: u64,
    /// How many seconds a policy minute lasts for automatic logoff and break-glass: 60.
    /// Tests shorten it to see a period end; refused in production mode and with the `hipaa`
    /// module, so no deployment holding PHI can shorten or lengthen a safeguard with it.
    pub test_minute_seconds: u32,
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            sweep_seconds: 30,
            test_minute_seconds: 60,
        }
    }
}

impl PhiConfig {
    /// How long `minutes` policy minutes last.
    pub fn minutes(&self, minutes: u32) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(minutes) * i64::from(self.test_minute_seconds))
    }
}

/// The retention job: how often it runs and how much each of its writes takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between two passes over every workspace (the first at start); 0: no
    /// background pass (runs on demand only, `POST /api/v1/workspaces/{id}/retention/run`).
    pub interval_seconds: u64,
    /// Messages examined per write, so posting goes on between a pass's writes.
    pub batch: u32,
    /// Whether a run on demand may name the time it runs at (`now`), to rehearse a policy
    /// against existing content; off in production deployments, where a run always uses
    /// the present time.
    pub allow_explicit_now: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            interval_seconds: 3600,
            batch: 200,
            allow_explicit_now: false,
        }
    }
}

/// The compliance policy modules: which are enabled, in order, and where more are found.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Modules layered in order, later ones replacing the keys they set: `default` (always
    /// first, added if not listed), then for example `gdpr`, `hipaa`. Enabling `hipaa` puts
    /// Concord in HIPAA mode, which refuses to start without TLS (`http.tls_proxy`), a
    /// production key-encryption key and six years of audit retention.
    pub modules: Vec<String>,
    /// A folder of `<module>.toml` files: a file named like a shipped module (`default`,
    /// `gdpr`, `hipaa`) replaces it, another name adds a module; without it the shipped
    /// modules built into the binary are used.
    pub dir: Option<PathBuf>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            modules: vec!["default".into()],
            dir: None,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsMode {
    /// Not served: `/metrics` answers 404.
    Off,
    /// Served to requests carrying `Authorization: Bearer <metrics.token>`.
    Token,
    /// Served to anyone who can reach the server.
    Public,
}

/// The Prometheus endpoint. Metrics name routes, error rates and pool sizes, which is more
/// than an anonymous visitor should learn, so the endpoint is off unless configured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `off`, `token` or `public`; when unset, `token` if a token is set, else `off`.
    pub mode: Option<MetricsMode>,
    /// The bearer token scrapers send in `token` mode (at least 16 characters).
    pub token: Option<Secret>,
}

impl MetricsConfig {
    /// The mode in effect.
    pub fn effective_mode(&self) -> MetricsMode {
        match (self.mode, &self.token) {
            (Some(mode), _) => mode,
            (None, Some(_)) => MetricsMode::Token,
            (None, None) => MetricsMode::Off,
        }
    }
}

/// Full-text search.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// MiB of decrypted index chunks kept in memory, shared by every workspace's index
    /// (0 decrypts on every read).
    pub cache_mib: usize,
    /// Longest, in milliseconds, that changes applied to a workspace's index wait for their
    /// commit (a commit writes a segment, so committing every message costs more than indexing
    /// it); a query first commits what its workspace has pending, so it always sees what was
    /// written before it. 0 commits after every batch of events.
    pub commit_interval_ms: u64,
    /// Changes pending in one workspace's index that make it commit before the interval ends.
    pub commit_max_changes: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            cache_mib: 256,
            commit_interval_ms: 500,
            commit_max_changes: 1000,
        }
    }
}

/// The transactional outbox: committed events kept for durable consumers.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// Seconds between two prunings of the events every registered consumer has passed.
    pub prune_interval_seconds: u64,
    /// Events older than this many seconds are pruned even if a registered consumer has not
    /// read them yet (one that stopped for good must not make the table grow forever); such a
    /// consumer is told how many it missed when it resumes. 0 keeps them until every consumer
    /// has passed them.
    pub max_age_seconds: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            prune_interval_seconds: 60,
            max_age_seconds: 7 * 24 * 3600,
        }
    }
}

/// Bots: how events are delivered to their request URLs (Slack's Events API).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotsConfig {
    /// Private, loopback, link-local and other non-public networks that request URLs may
    /// reach anyway (`10.0.0.0/8`, `127.0.0.1`); by default none: a URL whose host resolves
    /// to such an address is refused, and so is a connection to one.
    pub event_allowed_networks: Vec<ProxyNet>,
    /// Events in flight at once across every bot.
    pub event_concurrency: usize,
    /// Events in flight at once to one bot, so one slow or dead endpoint holds at most this
    /// many of the slots above.
    pub event_concurrency_per_bot: usize,
    /// Milliseconds to wait before each retry of a failed delivery (Slack: at once, after one
    /// minute, after five); after the last, the delivery is parked for an administrator to
    /// replay.
    pub event_retry_delays_ms: Vec<u64>,
    /// Milliseconds an endpoint has to answer a delivery (connection included) before it
    /// counts as failed (Slack: 3000).
    pub event_timeout_ms: u64,
    /// Deliveries one bot may have queued or parked at once; events for a bot at this
    /// limit are not queued (counted in `concord_bot_events_dropped_total` and logged), so a
    /// dead endpoint cannot grow the database without bound.
    pub event_queue_max: u64,
}

impl Default for BotsConfig {
    fn default() -> Self {
        BotsConfig {
            event_allowed_networks: Vec::new(),
            event_concurrency: 32,
            event_concurrency_per_bot: 4,
            event_retry_delays_ms: vec![0, 60_000, 300_000],
            event_timeout_ms: 3_000,
            event_queue_max: 10_000,
        }
    }
}

/// Co-edited documents: limits, memory and compaction.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocsConfig {
    /// Largest Yjs message a client may send, in bytes.
    pub max_update_bytes: usize,
    /// Largest a document's stored state may grow, in bytes.
    pub max_document_bytes: usize,
    /// Seconds a document stays in memory after its last connection closes.
    pub idle_seconds: u64,
    /// Stored update batches after which the log is merged into a snapshot.
    pub compact_after_updates: u64,
    /// Largest awareness state (one client's cursor and name, as JSON) relayed, in bytes.
    pub awareness_max_state_bytes: usize,
    /// Most awareness client ids one connection with edit access may announce (a viewer: one).
    pub awareness_max_clients: usize,
}

impl Default for DocsConfig {
    fn default() -> Self {
        DocsConfig {
            max_update_bytes: 1024 * 1024,
            max_document_bytes: 64 * 1024 * 1024,
            idle_seconds: 30,
            compact_after_updates: 500,
            awareness_max_state_bytes: 8 * 1024,
            awareness_max_clients: 4,
        }
    }
}

/// File sharing: size limits, the blob store and the optional malware scanner.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Most bytes of files (finished or being uploaded) one workspace may hold.
    pub workspace_quota_bytes: u64,
    /// Longest an upload request may run, in seconds (other requests use `http.request_timeout_seconds`).
    pub upload_timeout_seconds: u64,
    /// An upload request that sends nothing for this many seconds is cut (what arrived is kept).
    pub upload_idle_seconds: u64,
    /// Images up to this size get a thumbnail at upload.
    pub thumbnail_max_source_bytes: u64,
    /// Images with more pixels than this (width × height, read from the header before
    /// decoding) get no thumbnail; decoding memory is capped to match.
    pub thumbnail_max_pixels: u64,
    /// Most thumbnails decoded at once (others wait their turn).
    pub thumbnail_concurrency: usize,
    /// An unfinished upload that makes no progress for this many seconds expires: it stops
    /// counting against the quota and is removed (tus `Upload-Expires`).
    pub upload_expiry_seconds: u64,
    /// How often expired uploads and orphaned blobs are removed, in seconds (also at start).
    pub sweep_interval_seconds: u64,
    /// A blob no file refers to is removed once it is this many seconds old (so a write
    /// still in flight is never taken); must exceed `upload_idle_seconds` and
    /// `scan_timeout_seconds`.
    pub orphan_grace_seconds: u64,
    /// Where encrypted file contents are kept.
    pub blob: BlobConfig,
    /// ClamAV's clamd, as `unix:/run/clamav/clamd.ctl` or `tcp:127.0.0.1:3310`; off when unset.
    /// Infected files are quarantined; a scan that cannot complete quarantines too.
    pub clamd: Option<String>,
    /// How long one scan may take, in seconds.
    pub scan_timeout_seconds: u64,
}

/// Which blob store backend holds file contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// A directory on local disk (`path`, default `<data_dir>/blobs`).
    #[default]
    Local,
    /// An S3-compatible object store (`s3.*`).
    S3,
}

/// The blob store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobConfig {
    /// `local` (default) or `s3`.
    pub backend: BlobBackend,
    /// Directory of the local backend; defaults to `<data_dir>/blobs`.
    pub path: Option<PathBuf>,
    /// Settings of the S3 backend.
    pub s3: S3Config,
}

/// An S3-compatible bucket.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Region (`us-east-1` when unset).
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible services (MinIO, Ceph, R2); AWS when unset.
    pub endpoint: Option<String>,
    /// Access key id; taken from the environment's AWS settings when unset.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Allow plain http endpoints (development only).
    pub allow_http: bool,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_file_bytes: 2 * 1024 * 1024 * 1024,
            workspace_quota_bytes: 100 * 1024 * 1024 * 1024,
            upload_timeout_seconds: 6 * 3600,
            upload_idle_seconds: 120,
            thumbnail_max_source_bytes: 32 * 1024 * 1024,
            thumbnail_max_pixels: 25_000_000,
            thumbnail_concurrency: 2,
            upload_expiry_seconds: 24 * 3600,
            sweep_interval_seconds: 600,
            orphan_grace_seconds: 3600,
            blob: BlobConfig::default(),
            clamd: None,
            scan_timeout_seconds: 300,
        }
    }
}

/// Encryption keys: where the key-encryption key comes from and when data keys rotate.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// The key-encryption key itself, base64 of 32 bytes (`CONCORD_KEYS__KEK`); wins over the file.
    pub kek: Option<Secret>,
    /// File holding the key-encryption key (mode 0600); defaults to `<data_dir>/keys/kek.key`.
    pub kek_file: Option<PathBuf>,
    /// Encryptions under one data key before a new version is started (AES-GCM random nonces
    /// must stay well below 2^32 per key).
    pub dek_rotate_after: u64,
    /// Rows re-encrypted per write by the job that follows a data-key rotation.
    pub reencrypt_batch: usize,
    /// Pause between two re-encryption batches (milliseconds), to leave the writer to users.
    pub reencrypt_pause_ms: u64,
    /// How often a running server looks for rotations made by the command line (seconds).
    pub reencrypt_poll_seconds: u64,
}

/// The audit log: signed checkpoints, the outside witness, what reads are recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Sign a checkpoint after this many entries: the unsigned tail never holds more, and
    /// `concord audit verify` fails on a longer one.
    pub checkpoint_every: u64,
    /// And at least this often (seconds) while entries arrive: no entry waits longer for its
    /// signature while a server runs (verification allows 30 s more).
    pub checkpoint_seconds: u64,
    /// Where each signed checkpoint is also published: a file (one line appended per
    /// checkpoint) or an `http(s)://` URL (a JSON POST per checkpoint, 5 s timeout, never
    /// delaying writes). `concord audit verify --witness FILE` checks the log against it.
    pub witness: Option<String>,
    /// Whether searches are recorded: `metadata` (who searched which workspace and how many
    /// results came back; never the query) or `off`.
    pub record_searches: SearchRecording,
}

/// Whether and how searches leave an audit record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchRecording {
    /// Not recorded.
    Off,
    /// Actor, workspace and number of results; the query text is never recorded.
    #[default]
    Metadata,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            kek: None,
            kek_file: None,
            dek_rotate_after: 1 << 31,
            reencrypt_batch: 100,
            reencrypt_pause_ms: 0,
            reencrypt_poll_seconds: 2,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            checkpoint_every: 1000,
            checkpoint_seconds: 60,
            witness: None,
            record_searches: SearchRecording::Metadata,
        }
    }
}

/// Database settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite:path` or `postgres://...`; defaults to SQLite at `<data_dir>/concord.db`.
    pub url: Option<Secret>,
    /// Most pooled connections.
    pub max_connections: u32,
    /// Most writes committed together.
    pub group_commit_batch: usize,
}

/// Sign-in, token and throttling settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Access token lifetime in seconds (at most an hour).
    pub access_token_seconds: u64,
    /// Refresh token (session) lifetime in days.
    pub session_days: u64,
    /// `iss` claim of access tokens.
    pub issuer: String,
    /// `aud` claim of access tokens.
    pub audience: String,
    /// Access-token signing key; generated into the data dir in development mode if unset.
    pub signing_key: Option<Secret>,
    /// Failed sign-ins for one account before it is locked.
    pub lockout_threshold: u32,
    /// Failed sign-ins from one address before it is locked.
    pub ip_lockout_threshold: u32,
    /// How long failures are counted and how long a lock lasts, in seconds.
    pub lockout_seconds: u64,
    /// Whether users without a system role may create workspaces.
    pub users_can_create_workspaces: bool,
}

/// HTTP edge limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest accepted request body for JSON endpoints, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take, in seconds.
    pub request_timeout_seconds: u64,
    /// Folder of the built web client (`client-web/dist`) served at `/`; when unset, that
    /// folder is used if it exists under the working directory, else `/` shows a landing page.
    pub web_root: Option<PathBuf>,
    /// Origins (`https://chat.example.org`) besides `public_url`'s whose pages may open a
    /// WebSocket authenticated by cookie.
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (addresses or networks) whose forwarding header names the client;
    /// empty (the default): the connecting peer is the client and forwarding headers are ignored.
    pub trusted_proxies: Vec<ProxyNet>,
    /// The header the trusted proxies name the client in: `x-forwarded-for` (the default) or
    /// `forwarded` (RFC 7239). The other one is ignored.
    pub forwarded_header: ForwardedHeader,
    /// The reverse proxy (address or network) that terminates TLS in front of Concord, which
    /// serves plain HTTP itself; it must also be one of `trusted_proxies`. HIPAA mode
    /// requires it.
    pub tls_proxy: Option<ProxyNet>,
}

/// A reverse proxy's address or network: `10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyNet(ipnet::IpNet);

impl ProxyNet {
    /// Whether `ip` belongs to this network.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::str::FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(ProxyNet(net.trunc()));
        }
        s.parse::<std::net::IpAddr>()
            .map(|ip| ProxyNet(ipnet::IpNet::from(ip.to_canonical())))
            .map_err(|_| format!("{s:?} is not an IP address or a network such as 10.0.0.0/8"))
    }
}

impl std::fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ProxyNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The header trusted proxies name the client in (`http.forwarded_header`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Single sign-on: the OpenID Connect providers people may sign in with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsoConfig {
    /// Configured providers (`[[sso.providers]]`), each with its own id.
    pub providers: Vec<SsoProviderConfig>,
    /// How many begun, unfinished sign-ins the deployment keeps at once (each lives ten
    /// minutes); past it, a new sign-in is refused with `sso_busy` (503) until some finish or
    /// expire.
    pub max_pending_sign_ins: u32,
    /// The least time between two fetches of a provider's keys forced by a token naming a key
    /// we do not know, in seconds; such a token arriving sooner is checked against the keys
    /// we have.
    pub key_refresh_min_seconds: u64,
}

impl Default for SsoConfig {
    fn default() -> Self {
        SsoConfig {
            providers: Vec::new(),
            max_pending_sign_ins: 10_000,
            key_refresh_min_seconds: 60,
        }
    }
}

/// One OpenID Connect provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoProviderConfig {
    /// URL slug naming the provider in routes (`/auth/oidc/{id}/login`): a-z, 0-9 and `-`.
    pub id: String,
    /// Name shown on the sign-in page.
    pub display_name: String,
    /// Issuer URL; its `/.well-known/openid-configuration` is discovered.
    pub issuer_url: String,
    /// Client id registered at the provider.
    pub client_id: String,
    /// Client secret registered at the provider.
    pub client_secret: Secret,
    /// Scopes requested besides `openid`.
    #[serde(default = "default_sso_scopes")]
    pub scopes: Vec<String>,
    /// Whether a first sign-in may attach to an existing account with the same, provider-verified
    /// email. Off by default: an account is otherwise only ever reached through its own link.
    #[serde(default)]
    pub allow_email_linking: bool,
    /// Whether a first sign-in with an unknown identity creates an account.
    #[serde(default = "default_true")]
    pub jit_provisioning: bool,
    /// Workspace memberships derived from a claim, re-applied at every sign-in.
    #[serde(default)]
    pub claim_mapping: Option<ClaimMappingConfig>,
}

/// Maps values of one claim (such as `groups`) to workspace roles.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMappingConfig {
    /// The claim holding a string or a list of strings.
    pub claim: String,
    /// Rules in order; for one workspace, the first rule whose value the claim holds wins.
    #[serde(default)]
    pub rules: Vec<ClaimRuleConfig>,
}

/// One claim value mapped to a role in a workspace.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRuleConfig {
    /// The claim value (for example a group name).
    pub value: String,
    /// The workspace, by slug or id.
    pub workspace: String,
    /// A role usable in that workspace (`admin`, `member`, `guest` or a custom role).
    pub role: String,
}

fn default_sso_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_true() -> bool {
    true
}

/// Logging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `concord=debug,info`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Development,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            database: DatabaseConfig::default(),
            auth: AuthConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            keys: KeysConfig::default(),
            audit: AuditConfig::default(),
            sso: SsoConfig::default(),
            docs: DocsConfig::default(),
            files: FilesConfig::default(),
            search: SearchConfig::default(),
            outbox: OutboxConfig::default(),
            bots: BotsConfig::default(),
            metrics: MetricsConfig::default(),
            policy: PolicyConfig::default(),
            retention: RetentionConfig::default(),
            phi: PhiConfig::default(),
            processing_record: ProcessingRecordConfig::default(),
            ediscovery: EDiscoveryConfig::default(),
            workflows: WorkflowsConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: None,
            max_connections: 16,
            group_commit_batch: 512,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_token_seconds: 15 * 60,
            session_days: 30,
            issuer: "concord".into(),
            audience: "concord-api".into(),
            signing_key: None,
            lockout_threshold: 10,
            ip_lockout_threshold: 100,
            lockout_seconds: 15 * 60,
            users_can_create_workspaces: false,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            web_root: None,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            tls_proxy: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Values given as command-line flags; they win over file and environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--bind`.
    pub bind: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--production`.
    pub mode: Option<Mode>,
}

/// The prefix of environment variables that set configuration keys.
/// The longest `files.upload_expiry_seconds` (365 days): an expiry must stay a date.
const MAX_UPLOAD_EXPIRY_SECONDS: u64 = 365 * 24 * 3600;

const ENV_PREFIX: &str = "CONCORD_";

/// `CONCORD_*` variables that are not settings (after the prefix): read by the command line
/// (`ADMIN_PASSWORD`), the test harness (`TEST_POSTGRES_URL`), the web client's development
/// server (`API`) and the browser tests (`URL`, `FIXTURE`, `SCREENSHOTS`).
const NOT_SETTINGS: &[&str] = &[
    "admin_password",
    "test_postgres_url",
    "api",
    "url",
    "fixture",
    "screenshots",
];

/// Whether `key` (dotted, lowercase, as `CONCORD_DOCS__IDLE_SECONDS` becomes `docs.idle_seconds`)
/// names a setting. The keys come from the serialized defaults, so every field of every section
/// is settable without a list to keep up to date. Below an unset optional table the keys are
/// left for deserialization to check (every section denies unknown fields).
fn is_setting(defaults: &serde_json::Value, key: &str) -> bool {
    let mut node = defaults;
    for part in key.split('.') {
        match node {
            serde_json::Value::Object(map) => match map.get(part) {
                Some(next) => node = next,
                None => return false,
            },
            serde_json::Value::Null => return true,
            _ => return false,
        }
    }
    true
}

/// The environment variable that sets dotted `key`.
fn env_name(key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        key.to_ascii_uppercase().replace('.', "__")
    )
}

/// The `CONCORD_*` environment as configuration; a variable that names no setting is an error
/// rather than silently ignored.
fn env_provider() -> Result<Env, ConfigError> {
    let env = Env::prefixed(ENV_PREFIX).split("__").filter(|key| {
        !NOT_SETTINGS
            .iter()
            .any(|n| key.as_str().eq_ignore_ascii_case(n))
    });
    let defaults = serde_json::to_value(Config::default())
        .map_err(|e| ConfigError::Invalid(format!("defaults: {e}")))?;
    let mut unknown: Vec<String> = env
        .iter()
        .filter(|(key, _)| !is_setting(&defaults, key.as_str()))
        .map(|(key, _)| env_name(key.as_str()))
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(env),
        Some(name) => Err(ConfigError::Invalid(format!(
            "{name}: names no setting ({} is not a configuration key)",
            name[ENV_PREFIX.len()..]
                .to_ascii_lowercase()
                .replace("__", ".")
        ))),
    }
}

impl Config {
    /// Loads defaults, then `file` (or `./concord.toml` if present), then `CONCORD_*`
    /// variables (`CONCORD_AUTH__SESSION_DAYS=7`), then `overrides`, and validates.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::File {
                        path: path.to_owned(),
                        reason: "no such file".into(),
                    });
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_FILE))
            }
            None => {}
        }
        figment = figment.merge(env_provider()?);
        if let Some(bind) = &overrides.bind {
            figment = figment.merge(Serialized::default("bind", bind));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        if let Some(mode) = &overrides.mode {
            figment = figment.merge(Serialized::default("mode", mode));
        }
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if let Some(url) = &self.database.url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return invalid(
                    "database.url",
                    "must start with sqlite:, postgres:// or postgresql://",
                );
            }
        }
        if !(30..=3600).contains(&self.auth.access_token_seconds) {
            return invalid("auth.access_token_seconds", "must be between 30 and 3600");
        }
        if !(1..=365).contains(&self.auth.session_days) {
            return invalid("auth.session_days", "must be between 1 and 365");
        }
        if self.auth.lockout_threshold == 0 || self.auth.ip_lockout_threshold == 0 {
            return invalid("auth.lockout_threshold", "must be at least 1");
        }
        if let Some(key) = &self.auth.signing_key {
            if key.expose().len() < 32 {
                return invalid("auth.signing_key", "must be at least 32 characters");
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.http.body_limit_bytes) {
            return invalid("http.body_limit_bytes", "must be between 1024 and 67108864");
        }
        if !(1..=(1u64 << 31)).contains(&self.keys.dek_rotate_after) {
            return invalid("keys.dek_rotate_after", "must be between 1 and 2147483648");
        }
        if !(1..=10_000).contains(&self.keys.reencrypt_batch) {
            return invalid("keys.reencrypt_batch", "must be between 1 and 10000");
        }
        if self.keys.reencrypt_pause_ms > 60_000 {
            return invalid("keys.reencrypt_pause_ms", "must be at most 60000");
        }
        if !(1..=3600).contains(&self.keys.reencrypt_poll_seconds) {
            return invalid("keys.reencrypt_poll_seconds", "must be between 1 and 3600");
        }
        if self.audit.checkpoint_every == 0 || self.audit.checkpoint_seconds == 0 {
            return invalid("audit.checkpoint_every", "must be at least 1");
        }
        if let Some(witness) = &self.audit.witness {
            if let Err(why) = WitnessTarget::parse(witness) {
                return invalid("audit.witness", &why);
            }
        }
        if !(1024..=64 * 1024 * 1024).contains(&self.docs.max_update_bytes) {
            return invalid("docs.max_update_bytes", "must be between 1024 and 67108864");
        }
        if self.docs.max_document_bytes < self.docs.max_update_bytes {
            return invalid(
                "docs.max_document_bytes",
                "must be at least docs.max_update_bytes",
            );
        }
        if self.docs.compact_after_updates == 0 {
            return invalid("docs.compact_after_updates", "must be at least 1");
        }
        if !(64..=self.docs.max_update_bytes).contains(&self.docs.awareness_max_state_bytes) {
            return invalid(
                "docs.awareness_max_state_bytes",
                "must be between 64 and docs.max_update_bytes",
            );
        }
        if !(1..=64).contains(&self.docs.awareness_max_clients) {
            return invalid("docs.awareness_max_clients", "must be between 1 and 64");
        }
        for origin in &self.http.allowed_origins {
            let bare = url::Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
                    && u.username().is_empty()
            });
            if !bare {
                return invalid(
                    "http.allowed_origins",
                    "each must be an http or https origin such as https://chat.example.org",
                );
            }
        }
        if self.search.cache_mib > 1024 * 1024 {
            return invalid("search.cache_mib", "must be at most 1048576 (1 TiB)");
        }
        if self.search.commit_interval_ms > 3_600_000 {
            return invalid(
                "search.commit_interval_ms",
                "must be at most 3600000 (one hour)",
            );
        }
        if !(1..=1_000_000).contains(&self.search.commit_max_changes) {
            return invalid("search.commit_max_changes", "must be between 1 and 1000000");
        }
        if !(1..=86_400).contains(&self.outbox.prune_interval_seconds) {
            return invalid(
                "outbox.prune_interval_seconds",
                "must be between 1 and 86400",
            );
        }
        if self.outbox.max_age_seconds > 10 * 365 * 24 * 3600 {
            return invalid(
                "outbox.max_age_seconds",
                "must be at most 315360000 (10 years)",
            );
        }
        if self.retention.interval_seconds > 7 * 24 * 3600 {
            return invalid(
                "retention.interval_seconds",
                "must be at most 604800 (a week)",
            );
        }
        if !(1..=10_000).contains(&self.retention.batch) {
            return invalid("retention.batch", "must be between 1 and 10000");
        }
        let e = &self.ediscovery;
        if !(1..=1_000_000).contains(&e.max_export_items) {
            return invalid(
                "ediscovery.max_export_items",
                "must be between 1 and 1000000",
            );
        }
        if !(1..=4095).contains(&e.max_export_mib) {
            return invalid("ediscovery.max_export_mib", "must be between 1 and 4095");
        }
        if !(1..=10_000).contains(&e.max_keyword_matches) {
            return invalid(
                "ediscovery.max_keyword_matches",
                "must be between 1 and 10000",
            );
        }
        if !(1..=100_000).contains(&e.max_deleted_scanned) {
            return invalid(
                "ediscovery.max_deleted_scanned",
                "must be between 1 and 100000",
            );
        }
        if !(1..=16).contains(&e.concurrent_exports) {
            return invalid("ediscovery.concurrent_exports", "must be between 1 and 16");
        }
        if e.export_wait_seconds > 25 {
            return invalid("ediscovery.export_wait_seconds", "must be between 0 and 25");
        }
        if !(1..=366).contains(&e.daily_export.catch_up_days) {
            return invalid(
                "ediscovery.daily_export.catch_up_days",
                "must be between 1 and 366",
            );
        }
        if !matches!(
            e.daily_export.format.trim().to_ascii_lowercase().as_str(),
            "jsonl" | "csv" | "zip" | "actiance" | "globalrelay" | "global_relay"
        ) {
            return invalid(
                "ediscovery.daily_export.format",
                "must be jsonl, csv, zip, actiance or globalrelay",
            );
        }
        if e.daily_export.hour > 23 {
            return invalid("ediscovery.daily_export.hour", "must be between 0 and 23");
        }
        if !(1..=3600).contains(&e.daily_export.check_seconds) {
            return invalid(
                "ediscovery.daily_export.check_seconds",
                "must be between 1 and 3600",
            );
        }
        if e.daily_export.enabled && e.daily_export.directory.is_none() {
            return invalid(
                "ediscovery.daily_export.directory",
                "is required when ediscovery.daily_export.enabled is true",
            );
        }
        if !(100..=300_000).contains(&self.workflows.call_timeout_ms) {
            return invalid(
                "workflows.call_timeout_ms",
                "must be between 100 and 300000",
            );
        }
        if !(1..=10_000).contains(&self.workflows.batch) {
            return invalid("workflows.batch", "must be between 1 and 10000");
        }
        if !(100..=86_400_000).contains(&self.workflows.routing_retry_ms) {
            return invalid(
                "workflows.routing_retry_ms",
                "must be between 100 and 86400000",
            );
        }
        if self.workflows.retrain_every_hours > 24 * 366 {
            return invalid(
                "workflows.retrain_every_hours",
                "must be at most 8784 (a year); 0 retrains only on demand",
            );
        }
        if !(1..=3600).contains(&self.phi.sweep_seconds) {
            return invalid("phi.sweep_seconds", "must be between 1 and 3600");
        }
        if self.phi.test_minute_seconds != 60 {
            if !(1..=60).contains(&self.phi.test_minute_seconds) {
                return invalid("phi.test_minute_seconds", "must be between 1 and 60");
            }
            if self.mode == Mode::Production || self.policy.modules.iter().any(|m| m == "hipaa") {
                return invalid(
                    "phi.test_minute_seconds",
                    "is for tests: a minute lasts 60 seconds in production mode and with the hipaa module",
                );
            }
        }
        let bots = &self.bots;
        if !(1..=4096).contains(&bots.event_concurrency) {
            return invalid("bots.event_concurrency", "must be between 1 and 4096");
        }
        if !(1..=bots.event_concurrency).contains(&bots.event_concurrency_per_bot) {
            return invalid(
                "bots.event_concurrency_per_bot",
                "must be between 1 and bots.event_concurrency",
            );
        }
        if bots.event_retry_delays_ms.len() > 20
            || bots
                .event_retry_delays_ms
                .iter()
                .any(|d| *d > 7 * 24 * 3_600_000)
        {
            return invalid(
                "bots.event_retry_delays_ms",
                "at most 20 retries, each at most 604800000 (a week)",
            );
        }
        if !(100..=60_000).contains(&bots.event_timeout_ms) {
            return invalid("bots.event_timeout_ms", "must be between 100 and 60000");
        }
        if !(1..=10_000_000).contains(&bots.event_queue_max) {
            return invalid("bots.event_queue_max", "must be between 1 and 10000000");
        }
        if self.http.request_timeout_seconds == 0 {
            return invalid("http.request_timeout_seconds", "must be at least 1");
        }
        if self.database.max_connections == 0 || self.database.group_commit_batch == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if let Some(url) = &self.public_url {
            if url::Url::parse(url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                return invalid("public_url", "must be an http or https URL");
            }
        }
        if let Some(proxy) = &self.http.tls_proxy {
            if !self
                .http
                .trusted_proxies
                .iter()
                .any(|p| p.0.contains(&proxy.0))
            {
                return invalid(
                    "http.tls_proxy",
                    "must also be listed in http.trusted_proxies, so each client is known by its own address",
                );
            }
        }
        for module in &self.policy.modules {
            let ok = (1..=40).contains(&module.len())
                && module
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return invalid(
                    "policy.modules",
                    "each must be a module name: 1 to 40 of a-z, 0-9, '-' and '_'",
                );
            }
        }
        self.validate_files()?;
        self.validate_metrics()?;
        self.validate_sso()
    }

    fn validate_metrics(&self) -> Result<(), ConfigError> {
        let m = &self.metrics;
        match (m.effective_mode(), &m.token) {
            (MetricsMode::Token, None) => Err(ConfigError::Invalid(
                "metrics.token: is required when metrics.mode is token".into(),
            )),
            (_, Some(token)) if token.expose().len() < 16 => Err(ConfigError::Invalid(
                "metrics.token: must be at least 16 characters".into(),
            )),
            _ => Ok(()),
        }
    }

    fn validate_files(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        let f = &self.files;
        if f.max_file_bytes == 0 || f.max_file_bytes > 1 << 40 {
            return invalid(
                "files.max_file_bytes",
                "must be between 1 and 1099511627776",
            );
        }
        if f.workspace_quota_bytes == 0 {
            return invalid("files.workspace_quota_bytes", "must be at least 1");
        }
        if f.upload_timeout_seconds == 0
            || f.upload_idle_seconds == 0
            || f.scan_timeout_seconds == 0
        {
            return invalid(
                "files.upload_timeout_seconds",
                "timeouts must be at least 1 second",
            );
        }
        if f.upload_expiry_seconds == 0 || f.sweep_interval_seconds == 0 {
            return invalid(
                "files.upload_expiry_seconds",
                "expiry and sweep interval must be at least 1 second",
            );
        }
        if f.upload_expiry_seconds > MAX_UPLOAD_EXPIRY_SECONDS {
            return invalid(
                "files.upload_expiry_seconds",
                "must be at most 31536000 (365 days)",
            );
        }
        if f.orphan_grace_seconds <= f.upload_idle_seconds.max(f.scan_timeout_seconds) {
            return invalid(
                "files.orphan_grace_seconds",
                "must exceed upload_idle_seconds and scan_timeout_seconds",
            );
        }
        if f.thumbnail_max_pixels == 0 || f.thumbnail_concurrency == 0 {
            return invalid(
                "files.thumbnail_max_pixels",
                "thumbnail limits must be at least 1",
            );
        }
        if let Some(clamd) = &f.clamd {
            if !(clamd.starts_with("unix:") || clamd.starts_with("tcp:")) {
                return invalid(
                    "files.clamd",
                    "must be unix:/path/to/socket or tcp:host:port",
                );
            }
        }
        if f.blob.backend == BlobBackend::S3 {
            if f.blob.s3.bucket.is_empty() {
                return invalid("files.blob.s3.bucket", "is required for the s3 backend");
            }
            if let Some(endpoint) = &f.blob.s3.endpoint {
                let scheme_ok = url::Url::parse(endpoint)
                    .map(|u| {
                        u.scheme() == "https" || (u.scheme() == "http" && f.blob.s3.allow_http)
                    })
                    .unwrap_or(false);
                if !scheme_ok {
                    return invalid(
                        "files.blob.s3.endpoint",
                        "must be an https URL (http needs allow_http = true)",
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_sso(&self) -> Result<(), ConfigError> {
        if self.sso.max_pending_sign_ins == 0 {
            return Err(ConfigError::Invalid(
                "sso.max_pending_sign_ins: must be at least 1".into(),
            ));
        }
        if self.sso.key_refresh_min_seconds > 24 * 3600 {
            return Err(ConfigError::Invalid(
                "sso.key_refresh_min_seconds: must be at most 86400".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.sso.providers.iter().enumerate() {
            let key = |field: &str| format!("sso.providers[{i}].{field}");
            let invalid = |field: &str, why: &str| {
                Err(ConfigError::Invalid(format!("{}: {why}", key(field))))
            };
            let slug_ok = (1..=40).contains(&p.id.len())
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !slug_ok {
                return invalid("id", "must be 1 to 40 characters of a-z, 0-9 and '-'");
            }
            if !seen.insert(p.id.as_str()) {
                return invalid("id", "is used by another provider");
            }
            if p.display_name.trim().is_empty() {
                return invalid("display_name", "is required");
            }
            if url::Url::parse(&p.issuer_url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                return invalid("issuer_url", "must be an http or https URL");
            }
            if self.mode == Mode::Production && !p.issuer_url.starts_with("https://") {
                return invalid("issuer_url", "must use https in production");
            }
            if p.client_id.is_empty() {
                return invalid("client_id", "is required");
            }
            if p.client_secret.expose().is_empty() {
                return invalid("client_secret", "is required");
            }
            if p.scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
                return invalid("scopes", "each scope must be one non-empty word");
            }
            if let Some(mapping) = &p.claim_mapping {
                if mapping.claim.is_empty() {
                    return invalid("claim_mapping.claim", "is required");
                }
                for (j, rule) in mapping.rules.iter().enumerate() {
                    let field = format!("claim_mapping.rules[{j}]");
                    if rule.value.is_empty() || rule.workspace.is_empty() {
                        return invalid(&field, "value and workspace are required");
                    }
                    if rule.role == "owner" {
                        return invalid(
                            &format!("{field}.role"),
                            "the owner role is granted by people, not by claim mapping",
                        );
                    }
                    if crate::domain::RoleName::parse("role", &rule.role).is_err() {
                        return invalid(&format!("{field}.role"), "is not a role name");
                    }
                }
            }
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("concord.db").display()),
        }
    }

    /// The key-encryption key file in effect (used unless `keys.kek` is set).
    pub fn kek_file(&self) -> PathBuf {
        self.keys
            .kek_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys").join("kek.key"))
    }

    /// The directory of the local blob store.
    pub fn blob_dir(&self) -> PathBuf {
        self.files
            .blob
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    /// The base URL for links Concord hands out, without a trailing slash.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }

    /// The web client's folder: the configured one, else `client-web/dist` if it holds an
    /// `index.html`; `None` when there is no built client to serve.
    pub fn web_root(&self) -> Option<PathBuf> {
        match &self.http.web_root {
            Some(dir) => Some(dir.clone()),
            None => {
                let dir = PathBuf::from("client-web/dist");
                dir.join("index.html").is_file().then_some(dir)
            }
        }
    }

    /// The configuration as TOML with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        toml_string(self)
    }
}

fn toml_string(config: &Config) -> String {
    // JSON then TOML keeps the output independent of a TOML serializer's quirks.
    let value = serde_json::to_value(config).unwrap_or_default();
    let mut out = String::new();
    write_toml(&mut out, "", &value);
    out
}

fn write_toml(out: &mut String, prefix: &str, value: &serde_json::Value) {
    let Some(map) = value.as_object() else { return };
    let is_table_array = |v: &serde_json::Value| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|e| e.is_object()))
    };
    let is_table = |v: &serde_json::Value| v.is_object() || is_table_array(v);
    for (k, v) in map.iter().filter(|(_, v)| !is_table(v)) {
        if !v.is_null() {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    for (k, v) in map.iter().filter(|(_, v)| is_table(v)) {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v.as_array() {
            Some(items) => {
                for item in items {
                    out.push_str(&format!("\n[[{name}]]\n"));
                    write_toml(out, &name, item);
                }
            }
            None => {
                out.push_str(&format!("\n[{name}]\n"));
                write_toml(out, &name, v);
            }
        }
    }
}

fn one_line(err: &figment::Error) -> String {
    let mut parts = Vec::new();
    for e in err.clone() {
        let key = if e.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", e.path.join("."))
        };
        let source = e
            .metadata
            .as_ref()
            .map(|m| format!(" (from {})", m.name))
            .unwrap_or_default();
        parts.push(format!("{key}{}{source}", e.kind));
    }
    parts.join("; ")
}

/// Where the audit log's signed heads go (`audit.witness`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WitnessTarget {
    /// Append a line per checkpoint to this file.
    File(PathBuf),
    /// POST a JSON object per checkpoint to this URL.
    Url(String),
}

impl WitnessTarget {
    /// Reads `audit.witness`: an `http://` or `https://` URL, otherwise a file path.
    pub fn parse(value: &str) -> Result<WitnessTarget, String> {
        let value = value.trim();
        if value.is_empty() {
            return Err("must name a file or an http(s) URL".into());
        }
        if value.starts_with("http://") || value.starts_with("https://") {
            reqwest::Url::parse(value).map_err(|e| format!("not a valid URL: {e}"))?;
            return Ok(WitnessTarget::Url(value.to_owned()));
        }
        if value.contains("://") {
            return Err("only file paths and http(s) URLs are supported".into());
        }
        Ok(WitnessTarget::File(PathBuf::from(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_every_section_is_a_setting_and_nothing_else_is() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        for key in [
            "mode",
            "data_dir",
            "database.url",
            "docs.idle_seconds",
            "search.cache_mib",
            "files.blob.s3.bucket",
            "metrics.token",
            "sso.providers",
            "docs",
        ] {
            assert!(is_setting(&defaults, key), "{key}");
        }
        for key in ["nope", "docs.nope", "bind.port", "sso.providers.0.id"] {
            assert!(!is_setting(&defaults, key), "{key}");
        }
        assert_eq!(env_name("docs.idle_seconds"), "CONCORD_DOCS__IDLE_SECONDS");
    }

    #[test]
    fn metrics_are_off_unless_configured_and_a_token_mode_needs_a_token() {
        let mut config = Config::default();
        assert_eq!(config.metrics.effective_mode(), MetricsMode::Off);
        config.metrics.token = Some("a-scraper-token-of-length".to_owned().into());
        assert_eq!(config.metrics.effective_mode(), MetricsMode::Token);
        assert!(config.validate().is_ok());
        let printed = config.redacted_toml();
        assert!(
            printed.contains("token = \"<redacted>\"") && !printed.contains("a-scraper-token"),
            "{printed}"
        );
        config.metrics.token = Some("short".to_owned().into());
        assert!(config.validate().is_err());
        config.metrics.token = None;
        config.metrics.mode = Some(MetricsMode::Token);
        assert!(config.validate().is_err());
        config.metrics.mode = Some(MetricsMode::Public);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn an_upload_expiry_over_a_year_is_refused_by_name() {
        let mut config = Config::default();
        config.files.upload_expiry_seconds = 365 * 24 * 3600;
        assert!(config.validate().is_ok());
        for huge in [365 * 24 * 3600 + 1, u64::MAX] {
            config.files.upload_expiry_seconds = huge;
            match config.validate() {
                Err(ConfigError::Invalid(why)) => {
                    assert!(why.starts_with("files.upload_expiry_seconds:"), "{why}")
                }
                other => panic!("{huge}: {other:?}"),
            }
        }
    }
}
