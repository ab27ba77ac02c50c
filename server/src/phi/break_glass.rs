//! Emergency access (break-glass, 164.312(a)(2)(ii)): a person who may use it
//! (`break_glass.use`: workspace owners and admins, compliance officers through their system
//! role) asks, with a reason, to read one channel of a workspace they cannot otherwise read,
//! for at most the workspace's `phi.break_glass_max_minutes`.
//!
//! Starting is audited (`break_glass.started`, with the reason) and announced to every
//! compliance officer (`break_glass_started` on the hub); every read under the grant is
//! audited (`break_glass.read`), in a write made before the messages are read, so nothing
//! is shown unrecorded; a read at or after the end is refused (`410 break_glass_ended`)
//! and audited as denied. The grant ends on time: the task [`BreakGlassService::spawn`]
//! sleeps until the next grant is due (woken when one starts), ends it (`break_glass.ended`,
//! reason `expired`) and tells the compliance officers (`break_glass_ended`); its holder may
//! end it earlier (reason `ended`). A grant opens nothing else: the channel stays hidden
//! from every other route, and membership, search and the hub are unchanged.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit::{Auditor, Event, Outcome};
use crate::chat::{ChatService, MessageView, Page};
use crate::config::PhiConfig;
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{BreakGlassId, ChannelId, ParseError, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::policy::PolicyService;
use crate::rbac::{self, builtin, Action, Actor, Resource};
use crate::store::break_glass::{self, GrantRecord};
use crate::store::{channels, Conn, Store, Tx};

/// The longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 4000;

/// Why an emergency access is needed, and for how long.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "reason": "patient in the emergency room; the care team's channel holds their allergy list",
    "minutes": 30
}))]
pub struct BreakGlassRequest {
    /// Why (required, 1 to 4,000 characters): kept with the grant and in the audit log.
    pub reason: String,
    /// How long, in minutes (default and most: the workspace's
    /// `phi.break_glass_max_minutes`).
    #[serde(default)]
    pub minutes: Option<u32>,
}

/// An emergency access as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BreakGlassView {
    /// Its id.
    pub id: BreakGlassId,
    /// The workspace of the channel.
    pub workspace_id: WorkspaceId,
    /// The channel it opens for reading.
    pub channel_id: ChannelId,
    /// Who holds it.
    pub user_id: UserId,
    /// Why it was asked for.
    pub reason: String,
    /// When it began.
    pub started_at: DateTime<Utc>,
    /// When it ends at the latest; reads from then on are refused.
    pub expires_at: DateTime<Utc>,
    /// When it ended, once it has.
    pub ended_at: Option<DateTime<Utc>>,
    /// `expired` (on time) or `ended` (by its holder), once it has ended.
    pub end_reason: Option<String>,
}

/// Messages read under an emergency access.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct BreakGlassRead {
    /// The grant they were read under.
    pub grant: BreakGlassView,
    /// A page of the channel's history, ascending by sequence number.
    pub messages: Vec<MessageView>,
}

fn reason_aad(row: &str) -> Aad<'_> {
    Aad {
        table: "break_glass_grants",
        row,
        column: "reason",
    }
}

/// Emergency access: start, read under, end; cheap to clone.
#[derive(Clone)]
pub struct BreakGlassService {
    store: Store,
    auditor: Auditor,
    keyring: Keyring,
    policies: PolicyService,
    chat: ChatService,
    config: PhiConfig,
    /// Wakes the task that ends grants on time when one starts.
    wake: Arc<Notify>,
}

impl BreakGlassService {
    /// The service over `store`, reading channels through `chat`.
    pub fn new(
        store: Store,
        auditor: Auditor,
        policies: PolicyService,
        chat: ChatService,
        config: &PhiConfig,
    ) -> BreakGlassService {
        let keyring = auditor.keyring().clone();
        BreakGlassService {
            store,
            auditor,
            keyring,
            policies,
            chat,
            config: config.clone(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Starts an emergency access to `channel` for `actor` (`break_glass.use` in its
    /// workspace), for the minutes asked (at most `phi.break_glass_max_minutes`); audited and
    /// announced to the compliance officers.
    #[tracing::instrument(skip(self, actor, request), fields(actor = ?actor.user_id()))]
    pub async fn start(
        &self,
        actor: &Actor,
        channel: ChannelId,
        request: BreakGlassRequest,
    ) -> Result<BreakGlassView, Error> {
        let user = actor
            .user_id()
            .ok_or_else(|| Error::unauthenticated("unauthenticated", "sign in as a person"))?;
        // The workspace's policy is read before the write (it is configuration, versioned on
        // its own); the write decides on the channel as it is then.
        let workspace = {
            let mut conn = self.store.reader().await?;
            channels::by_id(&mut conn.conn(), channel)
                .await?
                .map(|c| c.workspace_id)
        };
        let max_minutes = match workspace {
            Some(ws) => {
                self.policies
                    .effective(ws)
                    .await?
                    .0
                    .policy
                    .phi
                    .break_glass_max_minutes
            }
            None => 1,
        };
        let this = self.clone();
        let actor = actor.clone();
        let view = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let record = channels::by_id(&mut tx.conn(), channel).await?;
                    // An unknown channel is decided like a workspace one is not in.
                    let workspace = record
                        .as_ref()
                        .map(|c| c.workspace_id)
                        .unwrap_or(WorkspaceId(uuid::Uuid::nil()));
                    this.auditor
                        .authorize(
                            tx,
                            &actor,
                            Action::UseBreakGlass,
                            Resource::Workspace(workspace),
                        )
                        .await?;
                    let record = record.ok_or(Error::NotFound("channel"))?;
                    if record.workspace_id != workspace {
                        return Err(Error::NotFound("channel"));
                    }
                    let reason = request.reason.trim().to_owned();
                    if reason.is_empty() {
                        return Err(
                            ParseError::new("reason", "say why emergency access is needed").into(),
                        );
                    }
                    if reason.chars().count() > MAX_REASON_CHARS {
                        return Err(ParseError::new(
                            "reason",
                            format!("at most {MAX_REASON_CHARS} characters"),
                        )
                        .into());
                    }
                    let minutes = request.minutes.unwrap_or(max_minutes);
                    if !(1..=max_minutes).contains(&minutes) {
                        return Err(ParseError::new(
                            "minutes",
                            format!("from 1 to {max_minutes} (the workspace's phi.break_glass_max_minutes)"),
                        )
                        .into());
                    }
                    if rbac::reads_channel(&mut tx.conn(), user, channel).await? {
                        return Err(Error::conflict(
                            "break_glass_not_needed",
                            "you can read this channel without emergency access",
                        ));
                    }
                    let id = BreakGlassId::generate();
                    let row = id.to_string();
                    let sealed = this
                        .keyring
                        .encrypt(
                            tx,
                            &Scope::Workspace(workspace),
                            reason_aad(&row),
                            reason.as_bytes(),
                        )
                        .await?;
                    let now = Utc::now();
                    let grant = GrantRecord {
                        id,
                        workspace_id: workspace,
                        channel_id: channel,
                        user_id: user,
                        reason: sealed,
                        started_at: now,
                        expires_at: now + this.config.minutes(minutes),
                        ended_at: None,
                        end_reason: None,
                    };
                    break_glass::insert(&mut tx.conn(), &grant).await?;
                    let officers = crate::store::users::holders_of_system_role(
                        &mut tx.conn(),
                        builtin::COMPLIANCE_OFFICER,
                    )
                    .await?;
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "break_glass.started", Outcome::Allowed)
                                .target("break_glass", id)
                                .workspace(workspace)
                                .details(json!({
                                    "channel": channel,
                                    "reason": reason,
                                    "minutes": minutes,
                                    "expires_at": grant.expires_at,
                                    "notified": officers,
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::BreakGlassStarted {
                        grant_id: id,
                        workspace_id: workspace,
                        channel_id: channel,
                        user_id: user,
                        expires_at: grant.expires_at,
                        notify: officers,
                    });
                    Ok::<_, Error>(view(&grant, reason))
                })
            })
            .await?;
        self.wake.notify_one();
        tracing::warn!(grant = %view.id, channel = %view.channel_id, "emergency access started");
        Ok(view)
    }

    /// A page of the channel's history read under `actor`'s grant `id`; the read is audited
    /// before anything is read, and refused once the grant has ended.
    #[tracing::instrument(skip(self, actor, page), fields(actor = ?actor.user_id()))]
    pub async fn read(
        &self,
        actor: &Actor,
        id: BreakGlassId,
        page: Page,
    ) -> Result<BreakGlassRead, Error> {
        let this = self.clone();
        let actor = actor.clone();
        let grant = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let grant = this.holder_in(tx, &actor, id).await?;
                    let now = Utc::now();
                    if grant.ended_at.is_some() || grant.expires_at <= now {
                        this.auditor
                            .record_kept(
                                tx,
                                Event::by(&actor, "break_glass.read", Outcome::Denied)
                                    .target("break_glass", id)
                                    .workspace(grant.workspace_id)
                                    .details(json!({
                                        "channel": grant.channel_id,
                                        "reason": "ended",
                                    })),
                            )
                            .await?;
                        return Err(Error::gone(
                            "break_glass_ended",
                            "this emergency access has ended",
                        ));
                    }
                    this.auditor
                        .record(
                            tx,
                            Event::by(&actor, "break_glass.read", Outcome::Allowed)
                                .target("break_glass", id)
                                .workspace(grant.workspace_id)
                                .details(json!({
                                    "channel": grant.channel_id,
                                    "before": page.before,
                                    "after": page.after,
                                    "limit": page.limit,
                                })),
                        )
                        .await?;
                    let reason = this.reason(&mut tx.conn(), &grant).await?;
                    Ok::<_, Error>((view(&grant, reason), page))
                })
            })
            .await?;
        let (grant, page) = grant;
        let messages = self
            .chat
            .history_for_emergency_access(grant.channel_id, page)
            .await?;
        Ok(BreakGlassRead { grant, messages })
    }

    /// Ends `actor`'s grant `id` before its time; audited and announced.
    #[tracing::instrument(skip(self, actor), fields(actor = ?actor.user_id()))]
    pub async fn end(&self, actor: &Actor, id: BreakGlassId) -> Result<BreakGlassView, Error> {
        let this = self.clone();
        let actor = actor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let mut grant = this.holder_in(tx, &actor, id).await?;
                    let now = Utc::now();
                    let reason = if grant.expires_at <= now {
                        "expired"
                    } else {
                        "ended"
                    };
                    if grant.ended_at.is_some()
                        || !break_glass::end(&mut tx.conn(), id, now, reason).await?
                    {
                        return Err(Error::conflict(
                            "break_glass_ended",
                            "this emergency access has already ended",
                        ));
                    }
                    grant.ended_at = Some(now);
                    grant.end_reason = Some(reason.to_owned());
                    this.ended_in(tx, &actor, &grant).await?;
                    let text = this.reason(&mut tx.conn(), &grant).await?;
                    Ok::<_, Error>(view(&grant, text))
                })
            })
            .await
    }

    /// Ends every grant whose time is up (audited, announced); returns how many.
    pub async fn end_due(&self) -> Result<usize, Error> {
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    let mut ended = 0;
                    for mut grant in break_glass::due(&mut tx.conn(), now).await? {
                        if break_glass::end(&mut tx.conn(), grant.id, now, "expired").await? {
                            grant.ended_at = Some(now);
                            grant.end_reason = Some("expired".to_owned());
                            this.ended_in(tx, &Actor::system(), &grant).await?;
                            ended += 1;
                        }
                    }
                    Ok::<_, Error>(ended)
                })
            })
            .await
    }

    /// Ends grants on time until `stop` is cancelled: sleeps until the next is due (at most
    /// `phi.sweep_seconds`, for grants another process started), woken when one starts here.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let most = StdDuration::from_secs(self.config.sweep_seconds);
            loop {
                if let Err(err) = self.end_due().await {
                    tracing::warn!(error = %err, "ending emergency accesses failed");
                }
                let next = match self.store.reader().await {
                    Ok(mut conn) => break_glass::next_due(&mut conn.conn()).await.ok().flatten(),
                    Err(_) => None,
                };
                let wait = next
                    .and_then(|at| (at - Utc::now()).to_std().ok())
                    .map_or(most, |d| d.min(most));
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        })
    }

    /// The grant `id` once `actor` holds it (and still may use emergency access in its
    /// workspace); anyone else is told it does not exist.
    async fn holder_in(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        id: BreakGlassId,
    ) -> Result<GrantRecord, Error> {
        let grant = break_glass::by_id(&mut tx.conn(), id).await?;
        let workspace = grant
            .as_ref()
            .map(|g| g.workspace_id)
            .unwrap_or(WorkspaceId(uuid::Uuid::nil()));
        self.auditor
            .authorize(
                tx,
                actor,
                Action::UseBreakGlass,
                Resource::Workspace(workspace),
            )
            .await?;
        match grant {
            Some(g) if Some(g.user_id) == actor.user_id() => Ok(g),
            _ => Err(Error::NotFound("emergency access")),
        }
    }

    /// Audits and announces the end of `grant`, inside the write that ended it.
    async fn ended_in(&self, tx: &mut Tx, actor: &Actor, grant: &GrantRecord) -> Result<(), Error> {
        let reason = grant.end_reason.clone().unwrap_or_default();
        let officers = crate::store::users::holders_of_system_role(
            &mut tx.conn(),
            builtin::COMPLIANCE_OFFICER,
        )
        .await?;
        self.auditor
            .record(
                tx,
                Event::by(actor, "break_glass.ended", Outcome::Allowed)
                    .target("break_glass", grant.id)
                    .workspace(grant.workspace_id)
                    .details(json!({
                        "channel": grant.channel_id,
                        "holder": grant.user_id,
                        "reason": reason,
                        "started_at": grant.started_at,
                        "expires_at": grant.expires_at,
                        "ended_at": grant.ended_at,
                    })),
            )
            .await?;
        tx.emit(DomainEvent::BreakGlassEnded {
            grant_id: grant.id,
            workspace_id: grant.workspace_id,
            channel_id: grant.channel_id,
            user_id: grant.user_id,
            reason,
            notify: officers,
        });
        Ok(())
    }

    async fn reason(&self, conn: &mut Conn<'_>, grant: &GrantRecord) -> Result<String, Error> {
        let row = grant.id.to_string();
        Ok(self
            .keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(grant.workspace_id),
                reason_aad(&row),
                &grant.reason,
            )
            .await?)
    }
}

fn view(grant: &GrantRecord, reason: String) -> BreakGlassView {
    BreakGlassView {
        id: grant.id,
        workspace_id: grant.workspace_id,
        channel_id: grant.channel_id,
        user_id: grant.user_id,
        reason,
        started_at: grant.started_at,
        expires_at: grant.expires_at,
        ended_at: grant.ended_at,
        end_reason: grant.end_reason.clone(),
    }
}
