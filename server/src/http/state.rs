//! What every handler can reach: the services, the store (for health checks only) and settings.

use std::sync::Arc;

use crate::accounts::AccountService;
use crate::audit::service::AuditService;
use crate::auth::AuthService;
use crate::sso::SsoService;
use crate::store::Store;
use crate::workspaces::WorkspaceService;

/// Shared application state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Sign-in and sessions.
    pub auth: Arc<AuthService>,
    /// Accounts.
    pub accounts: AccountService,
    /// Single sign-on.
    pub sso: Arc<SsoService>,
    /// Workspaces, members, roles, invitations.
    pub workspaces: WorkspaceService,
    /// Channels and messages.
    pub chat: crate::chat::ChatService,
    /// Bots, their tokens and incoming webhooks.
    pub bots: crate::bots::BotService,
    /// Co-edited documents.
    pub docs: crate::docs::DocService,
    /// Shared files and uploads.
    pub files: crate::files::FileService,
    /// Real-time delivery.
    pub hub: crate::hub::Hub,
    /// The audit log for compliance officers.
    pub audit: AuditService,
    /// Verification of the live audit log on demand.
    pub audit_verification: crate::audit::verification::VerificationService,
    /// Full-text search.
    pub search: crate::search::SearchService,
    /// Key rotation and status for system admins.
    pub keys: crate::keys::KeyService,
    /// Compliance policies: effective policy per workspace, overrides, reloads.
    pub policies: crate::policy::PolicyService,
    /// Legal holds.
    pub holds: crate::compliance::HoldService,
    /// Data-subject requests (exports).
    pub subjects: crate::subjects::SubjectService,
    /// The register of data-subject requests.
    pub subject_requests: crate::subjects::RequestService,
    /// Restrictions of processing (GDPR Art. 18).
    pub restrictions: crate::subjects::RestrictionService,
    /// Erasures (GDPR Art. 17).
    pub erasures: crate::compliance::ErasureService,
    /// The record of processing activities (GDPR Art. 30).
    pub processing_record: crate::compliance::RecordService,
    /// The breach register (GDPR Art. 33 and 34).
    pub breaches: crate::compliance::BreachService,
    /// Workflow processes, their instances and tasks.
    pub workflows: crate::workflow::WorkflowService,
    /// eDiscovery searches and exports.
    pub ediscovery: crate::ediscovery::EDiscoveryService,
    /// The retention job, run on demand.
    pub retention: crate::compliance::RetentionService,
    /// Emergency access (break-glass).
    pub break_glass: crate::phi::BreakGlassService,
    /// For readiness checks and pool metrics; handlers never query it.
    pub store: Store,
    /// Base URL for links handed out.
    pub public_base: Arc<str>,
    /// How a request's client address is found (`http.trusted_proxies`).
    pub addressing: Arc<crate::http::forwarded::ClientAddressing>,
    /// Pages that may open a WebSocket authenticated by cookie.
    pub socket_origins: Arc<crate::http::origin::AllowedOrigins>,
    /// The built web client served at `/`, if any.
    pub web_root: Option<Arc<std::path::Path>>,
    /// Renders `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Who may read `/metrics` (`metrics.mode`, `metrics.token`).
    pub metrics_access: Arc<crate::config::MetricsConfig>,
    /// Cancelled when the server begins shutting down; long-lived connections (WebSockets)
    /// watch it to close with a "going away" code instead of being cut off.
    pub going_away: tokio_util::sync::CancellationToken,
}
