//! Building Concord from its configuration and serving it until shutdown.
//!
//! [`App::build`] loads the policy modules (refusing a bad one, and HIPAA mode without its
//! safeguards), opens storage, loads the key-encryption key and opens the keyring (refusing
//! to start with the wrong key), seeds roles, encrypts any legacy plaintext, and wires the
//! services; it is what
//! the binary and the tests both call. [`App::serve`] runs the HTTP server on a listener
//! until the shutdown future completes, then stops accepting, lets in-flight requests
//! finish, tells long-lived connections to go away and flushes storage.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::accounts::{self, AccountService};
use crate::audit::service::AuditService;
use crate::audit::Auditor;
use crate::auth::{AuthService, KeyError, PasswordHasher, SigningKeys, TokenIssuer};
use crate::chat::ChatService;
use crate::config::Config;
use crate::crypto::{CryptoError, Keyring, Sealed};
use crate::events::Events;
use crate::files::{FileService, FilesOptions};
use crate::http::state::AppState;
use crate::hub::Hub;
use crate::inventory::Activity;
use crate::keys::{Inventory, KeyService, Reencryptor, Registry};
use crate::policy::{Modules, PolicyService};
use crate::search::{CommitPolicy, SearchService};
use crate::sso::SsoService;
use crate::store::{Store, StoreError, StoreOptions};
use crate::workspaces::WorkspaceService;

/// Every processing activity: each feature's purpose and the columns of the data inventory it
/// declares, in the order a data-key rotation walks their tables. Composed here so that
/// neither `keys` nor the record of processing activities depends on a feature.
pub fn activities() -> Vec<Activity> {
    let activity = |name, purpose, columns| Activity {
        name,
        purpose,
        columns,
    };
    vec![
        activity(
            "accounts",
            "identify the people who use Concord and reach them: profile, email, out-of-office",
            accounts::INVENTORY,
        ),
        activity(
            "chat",
            "exchange messages, threads, reactions and mentions in channels and conversations",
            crate::chat::INVENTORY,
        ),
        activity(
            "documents",
            "write documents together: their content, versions, comments and sharing",
            crate::docs::INVENTORY,
        ),
        activity(
            "sessions",
            "authenticate people and keep their sessions (device and address) to protect accounts",
            crate::auth::INVENTORY,
        ),
        activity(
            "workspaces",
            "organise teams: workspaces, memberships, roles and invitations",
            crate::workspaces::INVENTORY,
        ),
        activity(
            "files",
            "share and keep files posted in channels and documents",
            crate::files::INVENTORY,
        ),
        activity(
            "audit",
            "keep a tamper-evident record of who did what, for security and accountability",
            crate::audit::INVENTORY,
        ),
        activity(
            "sso",
            "sign people in through their organisation's identity providers",
            crate::sso::INVENTORY,
        ),
        activity(
            "events",
            "carry committed changes to durable consumers and integrations",
            crate::outbox::INVENTORY,
        ),
        activity(
            "bots",
            "run the integrations a workspace installs and send them the events they subscribe to",
            crate::bots::INVENTORY,
        ),
        activity(
            "compliance",
            "meet legal obligations: legal holds and the breach register",
            crate::compliance::INVENTORY,
        ),
        activity(
            "phi",
            "reach protected health information in an emergency (break-glass), with its reasons",
            crate::phi::INVENTORY,
        ),
        activity(
            "data subjects",
            "answer people's requests under the GDPR: the register and its answers",
            crate::subjects::INVENTORY,
        ),
        activity(
            "workflows",
            "run the workspace's processes: their models, instances and variables, tasks, \
             calls to services and history",
            crate::workflow::INVENTORY,
        ),
        activity(
            "search",
            "find messages, documents and files: an encrypted index derived from them, kept \
             outside the database and rebuilt from it",
            &[],
        ),
    ]
}

/// Every feature's data inventory: the columns holding ciphertext or personal data, in the
/// order a data-key rotation walks their tables (the columns of [`activities`]).
pub fn inventory() -> Inventory {
    let parts: Vec<&'static [crate::inventory::Column]> =
        activities().iter().map(|a| a.columns).collect();
    Inventory::new(&parts)
}

/// Why Concord could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Signing keys are missing or unusable.
    #[error("keys: {0}")]
    Keys(#[from] KeyError),
    /// The key-encryption key is missing, unreadable or wrong, or the keyring cannot open.
    #[error("encryption keys: {0}")]
    Crypto(#[from] CryptoError),
    /// Seeding or preparing setup failed.
    #[error("{0}")]
    Service(#[from] crate::error::Error),
    /// Single sign-on could not be set up.
    #[error(transparent)]
    Sso(#[from] crate::sso::SsoSetupError),
    /// The blob store could not be opened.
    #[error("files: {0}")]
    Blobs(#[from] crate::files::blob::BlobError),
    /// The listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    /// A policy module or stored override is invalid, or HIPAA mode would start unsafely.
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
}

impl From<crate::policy::LoadError> for StartupError {
    fn from(e: crate::policy::LoadError) -> Self {
        match e {
            crate::policy::LoadError::Policy(p) => StartupError::Policy(p),
            crate::policy::LoadError::Service(s) => StartupError::Service(s),
        }
    }
}

/// A built, not yet serving, Concord.
pub struct App {
    auditor: Auditor,
    config: Arc<Config>,
    store: Store,
    events: Events,
    auth: Arc<AuthService>,
    accounts: AccountService,
    workspaces: WorkspaceService,
    chat: ChatService,
    bots: crate::bots::BotService,
    files: FileService,
    rooms: crate::docs::Rooms,
    docs: crate::docs::DocService,
    audit: AuditService,
    search: SearchService,
    keys: KeyService,
    policies: PolicyService,
    holds: crate::compliance::HoldService,
    retention: crate::compliance::RetentionService,
    subjects: crate::subjects::SubjectService,
    subject_requests: crate::subjects::RequestService,
    restrictions: crate::subjects::RestrictionService,
    erasures: crate::compliance::ErasureService,
    processing_record: crate::compliance::RecordService,
    breaches: crate::compliance::BreachService,
    ediscovery: crate::ediscovery::EDiscoveryService,
    idle_logoff: crate::phi::IdleLogoff,
    break_glass: crate::phi::BreakGlassService,
    workflows: crate::workflow::WorkflowService,
    reencryptor: Reencryptor,
    reencrypt_wake: Arc<tokio::sync::Notify>,
    keyring: Keyring,
    signing_key_generated: Option<std::path::PathBuf>,
    kek_generated: Option<std::path::PathBuf>,
    /// Cancelled when the server begins to stop (or the command line closes the app): every
    /// long-lived task, the document rooms' included, ends with it.
    going_away: CancellationToken,
}

/// Document history folded for the retention job by the document rooms (the job imports no
/// feature; the composition root hands it this).
struct DocumentHistory(crate::docs::Rooms);

impl crate::compliance::HistoryFolder for DocumentHistory {
    fn seal(
        &self,
        document: crate::domain::DocumentId,
        upto_seq: i64,
    ) -> futures::future::BoxFuture<'_, Result<Option<Sealed>, crate::error::Error>> {
        Box::pin(async move {
            self.0
                .sealed_history(document, upto_seq)
                .await
                .map_err(crate::error::Error::from)
        })
    }
}

impl App {
    /// Opens storage (applying migrations), seeds built-in roles and wires the services.
    pub async fn build(config: Config) -> Result<App, StartupError> {
        // Before anything is generated or opened: a bad policy, or HIPAA mode without its
        // safeguards, stops the start here.
        let modules = Modules::load(&config.policy)?;
        crate::policy::safeguards::refuse_unsafe_start(&config, &modules)?;
        let keys = SigningKeys::load(&config)?;
        let delivery = crate::bots::Delivery::from_config(&config.bots).map_err(|e| {
            crate::error::Error::Internal(format!("the bots' event delivery client: {e}"))
        })?;
        let signing_key_generated = keys.generated.clone();
        let events = Events::in_process();
        let (store, keyring, kek_generated) = Self::open_storage(&config, events.clone()).await?;
        let auditor =
            Auditor::new(keyring.clone()).with_search_recording(config.audit.record_searches);
        let policies =
            match PolicyService::start(store.clone(), auditor.clone(), &config.policy, modules)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    store.close().await;
                    return Err(e.into());
                }
            };
        accounts::seed_builtin_roles(&store).await?;
        let profiles = accounts::encrypt_legacy_profiles(&store, &keyring).await?;
        if profiles > 0 {
            tracing::info!(
                accounts = profiles,
                "encrypted personal data stored before encryption at rest"
            );
        }
        let migrated = crate::workspaces::encrypt_legacy_names(&store, &keyring).await?
            + crate::chat::encrypt_legacy_details(&store, &keyring).await?
            + crate::auth::encrypt_legacy_clients(&store, &keyring).await?;
        if migrated > 0 {
            tracing::info!(
                rows = migrated,
                "encrypted names, topics, client details and message client ids stored before encryption at rest"
            );
        }
        if profiles + migrated > 0 {
            // The plaintext the backfill replaced must not live on in freed space.
            store.compact_after_backfill().await?;
        }
        let parallelism = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let hasher = PasswordHasher::new(parallelism * 2)?;
        let tokens = TokenIssuer::new(
            keys,
            config.auth.issuer.clone(),
            config.auth.audience.clone(),
            config.auth.access_token_seconds,
        );
        let auth = Arc::new(AuthService::new(
            store.clone(),
            hasher.clone(),
            tokens,
            &config.auth,
            auditor.clone(),
        ));
        let accounts = AccountService::new(store.clone(), hasher.clone(), auditor.clone());
        let workspaces = WorkspaceService::new(
            store.clone(),
            hasher,
            config.auth.users_can_create_workspaces,
            auditor.clone(),
        );
        let chat = ChatService::new(store.clone(), auditor.clone(), policies.clone());
        let bots =
            crate::bots::BotService::new(store.clone(), auditor.clone(), chat.clone(), delivery);
        let blobs = match crate::files::blob::open(&config) {
            Ok(b) => b,
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        };
        let files = FileService::new(
            store.clone(),
            auditor.clone(),
            chat.clone(),
            blobs,
            FilesOptions::from_config(&config.files),
        );
        let audit = AuditService::new(store.clone(), auditor.clone());
        // Services are built in dependency order and handed what they walk: search reads
        // documents and files through their services, which know nothing of search.
        let going_away = CancellationToken::new();
        let limits = Self::document_limits(&config);
        let rooms = crate::docs::Rooms::start(
            store.clone(),
            auditor.clone(),
            limits,
            &events,
            going_away.clone(),
        );
        let docs = crate::docs::DocService::new(
            store.clone(),
            auditor.clone(),
            rooms.clone(),
            limits,
            policies.clone(),
        );
        let search = SearchService::new(
            store.clone(),
            auditor.clone(),
            SearchService::default_root(&config.data_dir),
            config.search.cache_mib.saturating_mul(1024 * 1024),
            docs.clone(),
            files.clone(),
            policies.clone(),
        );
        let reencrypt_wake = Arc::new(tokio::sync::Notify::new());
        let registry = Arc::new(Registry::new(&inventory())?);
        let keys = KeyService::new(
            store.clone(),
            auditor.clone(),
            reencrypt_wake.clone(),
            registry.clone(),
        );
        let reencryptor = Reencryptor::new(store.clone(), auditor.clone(), registry, &config.keys);
        let holds = crate::compliance::HoldService::new(store.clone(), auditor.clone());
        let subjects = crate::subjects::SubjectService::new(
            store.clone(),
            auditor.clone(),
            Arc::new(inventory()),
            files.clone(),
            audit.clone(),
        );
        let subject_requests =
            crate::subjects::RequestService::new(store.clone(), auditor.clone(), policies.clone());
        let restrictions = crate::subjects::RestrictionService::new(store.clone(), auditor.clone());
        let retention = crate::compliance::RetentionService::new(
            store.clone(),
            auditor.clone(),
            policies.clone(),
            crate::compliance::RetentionOptions::from_config(&config.retention),
        )
        .with_history(Arc::new(DocumentHistory(rooms.clone())));
        let erasures = crate::compliance::ErasureService::new(
            store.clone(),
            auditor.clone(),
            policies.clone(),
            retention.clone(),
            Arc::new(inventory()),
            going_away.clone(),
        );
        let processing_record = crate::compliance::RecordService::new(
            store.clone(),
            auditor.clone(),
            policies.clone(),
            activities(),
            crate::compliance::RecordSettings::from_config(&config),
        );
        let breaches =
            crate::compliance::BreachService::new(store.clone(), auditor.clone(), audit.clone());
        let ediscovery = crate::ediscovery::EDiscoveryService::new(
            store.clone(),
            auditor.clone(),
            holds.clone(),
            files.clone(),
            docs.clone(),
            search.clone(),
            crate::ediscovery::EDiscoveryOptions::from_config(&config.ediscovery),
        );
        let idle_logoff =
            crate::phi::IdleLogoff::new(store.clone(), auth.clone(), policies.clone(), &config.phi);
        let break_glass = crate::phi::BreakGlassService::new(
            store.clone(),
            auditor.clone(),
            policies.clone(),
            chat.clone(),
            &config.phi,
        );
        let workflows = crate::workflow::WorkflowService::new(
            store.clone(),
            auditor.clone(),
            chat.clone(),
            &config.workflows,
        )
        .map_err(|e| {
            crate::error::Error::Internal(format!("the workflows' service client: {e}"))
        })?;
        Ok(App {
            auditor,
            config: Arc::new(config),
            store,
            events,
            auth,
            accounts,
            workspaces,
            chat,
            bots,
            files,
            rooms,
            docs,
            audit,
            search,
            keys,
            policies,
            holds,
            retention,
            subjects,
            subject_requests,
            restrictions,
            erasures,
            processing_record,
            breaches,
            ediscovery,
            idle_logoff,
            break_glass,
            workflows,
            reencryptor,
            reencrypt_wake,
            keyring,
            signing_key_generated,
            kek_generated,
            going_away,
        })
    }

    /// Storage and its keyring as a start opens them: migrated, the key-encryption key loaded
    /// (generated in development mode; its path is returned then), audit checkpoints signed
    /// and witnessed. For `build`, and for commands that write an audited change without the
    /// services or the policy modules (`concord policy clear-override`).
    pub async fn open_storage(
        config: &Config,
        events: Events,
    ) -> Result<(Store, Keyring, Option<std::path::PathBuf>), StartupError> {
        let (kek, kek_generated) = crate::crypto::kek::load(config)?;
        let store = Store::open(&Self::store_options(config), events).await?;
        let keyring = match Keyring::open(&store, kek, config.keys.dek_rotate_after).await {
            Ok(k) => k,
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        };
        store.set_checkpoint_signer(Arc::new(keyring.clone()), config.audit.checkpoint_every);
        if let Some(witness) = &config.audit.witness {
            // Validated with the configuration.
            if let Ok(target) = crate::audit::witness::WitnessTarget::parse(witness) {
                let (queue, task) = crate::audit::witness::start(target);
                store.set_checkpoint_witness(queue, task);
            }
        }
        Ok((store, keyring, kek_generated))
    }

    /// Document limits and housekeeping, from the configuration.
    fn document_limits(config: &Config) -> crate::docs::Limits {
        let docs = &config.docs;
        crate::docs::Limits {
            max_update_bytes: docs.max_update_bytes,
            max_document_bytes: docs.max_document_bytes,
            idle: Duration::from_secs(docs.idle_seconds),
            compact_after: docs.compact_after_updates,
            awareness_state_bytes: docs.awareness_max_state_bytes,
            awareness_clients: docs.awareness_max_clients,
        }
    }

    /// Storage settings derived from the configuration.
    pub fn store_options(config: &Config) -> StoreOptions {
        StoreOptions {
            url: config.database_url(),
            max_connections: config.database.max_connections,
            max_batch: config.database.group_commit_batch,
        }
    }

    /// The store (for the command line).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Account operations (for the command line).
    pub fn accounts(&self) -> &AccountService {
        &self.accounts
    }

    /// Sign-in and sessions (for the command line).
    pub fn auth(&self) -> &AuthService {
        &self.auth
    }

    /// The keyring (for the command line's key operations).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Search (for the command line's reindex).
    pub fn search(&self) -> &SearchService {
        &self.search
    }

    /// Key rotation and status (for the command line).
    pub fn keys(&self) -> &KeyService {
        &self.keys
    }

    /// The policies in force (for the jobs that enforce them).
    pub fn policies(&self) -> &PolicyService {
        &self.policies
    }

    /// The re-encryption job runner (the command line runs it when no server does).
    pub fn reencryptor(&self) -> &Reencryptor {
        &self.reencryptor
    }

    /// The record of processing activities (for the command line).
    pub fn processing_record(&self) -> &crate::compliance::RecordService {
        &self.processing_record
    }

    /// The compliance officer's audit access (for the command line).
    pub fn audit(&self) -> &AuditService {
        &self.audit
    }

    /// Where a development key-encryption key was generated at this start, if one was.
    pub fn generated_kek(&self) -> Option<&std::path::Path> {
        self.kek_generated.as_deref()
    }

    /// The retention job.
    pub fn retention(&self) -> &crate::compliance::RetentionService {
        &self.retention
    }

    /// Workflows (for the command line).
    pub fn workflows(&self) -> &crate::workflow::WorkflowService {
        &self.workflows
    }

    /// eDiscovery searches and exports (and the daily export, from the command line).
    pub fn ediscovery(&self) -> &crate::ediscovery::EDiscoveryService {
        &self.ediscovery
    }

    /// One retention pass from the command line, at `now`: over `only` that workspace, or
    /// over every workspace and the deployment's session records and audit log. The search
    /// indexer runs meanwhile, so the index follows what the pass destroys, and commits
    /// before this returns (its index writer is this process's only if no server holds it;
    /// otherwise the indexer logs that it cannot write, and `concord search reindex` with the
    /// server stopped brings the index in line).
    pub async fn retention_pass(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        only: Option<crate::domain::WorkspaceId>,
    ) -> Result<crate::compliance::PassReport, crate::error::Error> {
        let stop = CancellationToken::new();
        let indexer = self.search.start(
            &self.events,
            CommitPolicy::from_config(&self.config.search),
            stop.clone(),
        );
        let report = self.retention.run_all(now, only, &stop).await;
        // Every event the pass emitted is applied before the indexer is told to stop.
        if let Ok(report) = &report {
            for workspace in report.workspaces.iter().filter_map(|w| w.workspace_id) {
                self.search.catch_up(workspace).await;
            }
        }
        stop.cancel();
        let _ = indexer.await;
        self.search.close().await;
        report
    }

    /// Committed domain events.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Stops the background tasks and flushes and closes storage (for the command line,
    /// which does not serve).
    pub async fn close(self) {
        self.going_away.cancel();
        self.store.close().await;
    }

    /// Where a development signing key was generated at this start, if one was.
    pub fn generated_signing_key(&self) -> Option<&std::path::Path> {
        self.signing_key_generated.as_deref()
    }

    /// If no account exists, a fresh one-time setup URL for the first administrator.
    pub async fn setup_url(&self, bound: SocketAddr) -> Result<Option<String>, StartupError> {
        let token = self.accounts.prepare_setup().await?;
        Ok(token.map(|t| format!("{}/setup?token={t}", self.config.public_base(bound))))
    }

    /// Serves HTTP on `listener` until `shutdown` completes, then shuts down gracefully.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let bound = listener.local_addr()?;
        // Redirect URIs name the public base, which may depend on the bound address.
        let public_base = self.config.public_base(bound);
        let sso = SsoService::new(
            &self.config.sso,
            self.store.clone(),
            self.auth.clone(),
            self.auditor.clone(),
            &public_base,
        )?;
        let going_away = self.going_away.clone();
        let hub = Hub::start(
            self.store.clone(),
            &self.events,
            Arc::new(self.chat.clone()),
            going_away.clone(),
        );
        self.workflows
            .set_presence(Arc::new(HubPresence(hub.clone())));
        let indexer = self.search.start(
            &self.events,
            CommitPolicy::from_config(&self.config.search),
            going_away.clone(),
        );
        let state = AppState {
            auth: self.auth.clone(),
            sso: Arc::new(sso),
            accounts: self.accounts.clone(),
            workspaces: self.workspaces.clone(),
            chat: self.chat.clone(),
            bots: self.bots.clone(),
            docs: self.docs.clone(),
            files: self.files.clone(),
            hub: hub.clone(),
            audit: self.audit.clone(),
            audit_verification: crate::audit::verification::VerificationService::new(
                self.store.clone(),
                self.auditor.clone(),
                {
                    let policies = self.policies.clone();
                    std::sync::Arc::new(move || {
                        Ok(policies.deployment()?.retention.audit_days.days())
                    })
                },
                crate::audit::verification::LiveChecks::from_config(&self.config),
            ),
            search: self.search.clone(),
            keys: self.keys.clone(),
            policies: self.policies.clone(),
            holds: self.holds.clone(),
            retention: self.retention.clone(),
            subjects: self.subjects.clone(),
            subject_requests: self.subject_requests.clone(),
            restrictions: self.restrictions.clone(),
            erasures: self.erasures.clone(),
            processing_record: self.processing_record.clone(),
            breaches: self.breaches.clone(),
            workflows: self.workflows.clone(),
            ediscovery: self.ediscovery.clone(),
            break_glass: self.break_glass.clone(),
            store: self.store.clone(),
            addressing: Arc::new(crate::http::forwarded::ClientAddressing::new(
                &self.config.http.trusted_proxies,
                self.config.http.forwarded_header,
            )),
            socket_origins: Arc::new(crate::http::origin::AllowedOrigins::new(
                self.config.public_url.as_deref(),
                &self.config.http.allowed_origins,
            )),
            public_base: Arc::from(public_base),
            web_root: self.config.web_root().map(Arc::from),
            metrics: crate::telemetry::metrics_handle(),
            metrics_access: Arc::new(self.config.metrics.clone()),
            going_away: going_away.clone(),
        };
        let app = crate::http::app(
            state,
            self.config.http.body_limit_bytes,
            crate::http::Timeouts {
                request: Duration::from_secs(self.config.http.request_timeout_seconds),
                upload: Duration::from_secs(self.config.files.upload_timeout_seconds),
            },
        );
        let signal = going_away.clone();
        // Signed checkpoints at least every `audit.checkpoint_seconds`, so a cut tail shows.
        let checkpoints = {
            let store = self.store.clone();
            let stop = going_away.clone();
            let period = Duration::from_secs(self.config.audit.checkpoint_seconds);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = ticks.tick() => {
                            if let Err(err) = store.checkpoint().await {
                                tracing::warn!(error = %err, "periodic audit checkpoint failed");
                            }
                        }
                    }
                }
            })
        };
        // Re-encryption after data-key rotations, including those the command line records
        // while this server runs; stopped with the other long-lived tasks.
        let reencryption = self
            .reencryptor
            .clone()
            .spawn(self.reencrypt_wake.clone(), going_away.clone());
        // Expired uploads and orphaned blobs, at start and periodically.
        let housekeeping = self
            .files
            .spawn_housekeeping(&self.events, going_away.clone());
        // Outbox events every durable consumer has passed (or past the maximum age).
        let pruning = crate::outbox::spawn_pruning(
            self.store.clone(),
            &self.config.outbox,
            going_away.clone(),
        );
        // Messages past their retention period, at start and every `retention.interval_seconds`.
        let retention = self.retention.clone().spawn(going_away.clone());
        // The previous day's eDiscovery export of every workspace, once its hour has come.
        let daily_export = self.ediscovery.clone().spawn_daily(going_away.clone());
        // Erasures an earlier process left running, then what holds release of erased people's.
        let erasures = self.erasures.spawn();
        // Automatic logoff of idle sessions of people in workspaces holding PHI.
        let idle_logoff = self.idle_logoff.clone().spawn(going_away.clone());
        // Emergency accesses ended on time.
        let break_glass = self.break_glass.clone().spawn(going_away.clone());
        // Committed events queued for bots and sent to their request URLs.
        let bot_events = crate::bots::delivery::spawn(self.bots.clone(), going_away.clone());
        // Workflow timers, service calls and child instances as they come due.
        let workflows = self.workflows.clone().spawn(going_away.clone());
        // Processes started by chat activity (messages, reactions, joins, files).
        let workflow_triggers = self.workflows.clone().spawn_triggers(going_away.clone());
        // Building the router built and dropped the OpenAPI document, among others.
        crate::memory::release_free_memory();
        tracing::info!(address = %bound, "listening");
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            signal.cancel();
        })
        .await?;
        // WebSockets were told to go away; give their close frames a moment to leave.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Documents store their last edits before storage closes.
        self.rooms.drain(Duration::from_secs(5)).await;
        let _ = checkpoints.await;
        // The indexer commits what it applied; indexes are closed before storage.
        let _ = indexer.await;
        self.search.close().await;
        // Finishes its current batch and releases its lease, so the next start resumes at once.
        let _ = reencryption.await;
        let _ = housekeeping.await;
        let _ = pruning.await;
        let _ = bot_events.await;
        let _ = workflows.await;
        let _ = workflow_triggers.await;
        let _ = idle_logoff.await;
        let _ = erasures.await;
        let _ = break_glass.await;
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        if let Some(daily_export) = daily_export {
            let _ = daily_export.await;
        }
        self.store.close().await;
        tracing::info!("storage flushed; stopped");
        Ok(())
    }
}

/// Builds Concord and serves it on `listener` until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    App::build(config).await?.serve(listener, shutdown).await
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Routing's view of the hub: who is connected, and who marked every device away.
struct HubPresence(Hub);

impl crate::workflow::routing::PresenceSource for HubPresence {
    fn presence(&self, users: &[crate::domain::UserId]) -> Vec<concord_routing::policy::Presence> {
        use crate::hub::protocol::PresenceStatus;
        use concord_routing::policy::Presence;
        self.0
            .presence_of(users)
            .into_iter()
            .map(|p| match p {
                PresenceStatus::Online => Presence::Online,
                PresenceStatus::Away => Presence::Away,
                PresenceStatus::Offline => Presence::Offline,
            })
            .collect()
    }
}
