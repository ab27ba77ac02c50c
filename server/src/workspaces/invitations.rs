//! Invitations: creating, listing and revoking them, and accepting one (signed in or as a
//! new account). An invitation's email is stored encrypted.

use std::net::IpAddr;

use chrono::{Duration, Utc};

use super::members::check_grant;
use super::names;
use super::roles::{role_name, workspace_role};
use super::views::{CreatedInvitation, InvitationPreview, InvitationView, WorkspaceView};
use super::WorkspaceService;
use crate::accounts::{insert_user, NewAccount};
use crate::audit::{Event, Outcome};
use crate::auth::{random_token, token_hash};
use crate::crypto::{Aad, Scope};
use crate::domain::{Email, InvitationId, UserId, WorkspaceId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, Resource};
use crate::store::invitations::InvitationRecord;
use crate::store::{invitations, workspaces as ws_store, Conn, Tx};

/// The parsed request for an invitation.
pub struct NewInvitation {
    /// Restrict to this email.
    pub email: Option<Email>,
    /// Role name; `member` by default.
    pub role: Option<String>,
    /// Lifetime in hours (1 to 720).
    pub expires_in_hours: i64,
    /// How many may accept (1 to 1000).
    pub max_uses: i64,
}

/// Who accepts an invitation: a signed-in user, or a new account.
pub enum Invitee {
    /// An existing, signed-in account.
    Existing(Actor),
    /// A new account created on acceptance.
    New(NewAccount),
}

fn invitation_aad(row: &str) -> Aad<'_> {
    Aad {
        table: "invitations",
        row,
        column: "email",
    }
}

async fn invitation_email(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    inv: &InvitationRecord,
) -> Result<Option<String>, Error> {
    let Some(ct) = &inv.email_enc else {
        return Ok(None);
    };
    let row = inv.id.to_string();
    Ok(Some(
        keyring
            .decrypt_text(
                conn,
                &Scope::Workspace(inv.workspace_id),
                invitation_aad(&row),
                ct,
            )
            .await?,
    ))
}

async fn invitation_view(
    keyring: &crate::crypto::Keyring,
    conn: &mut Conn<'_>,
    inv: InvitationRecord,
) -> Result<InvitationView, Error> {
    Ok(InvitationView {
        email: invitation_email(keyring, conn, &inv).await?,
        id: inv.id,
        workspace_id: inv.workspace_id,
        role: role_name(keyring, conn, inv.role_id).await?,
        expires_at: inv.expires_at,
        max_uses: inv.max_uses,
        uses: inv.uses,
        revoked: inv.revoked_at.is_some(),
    })
}

impl WorkspaceService {
    /// Creates an invitation; the token is returned once, with a link.
    pub async fn invite(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        req: NewInvitation,
        base_url: &str,
    ) -> Result<CreatedInvitation, Error> {
        if !(1..=720).contains(&req.expires_in_hours) {
            return Err(Error::refused(
                "invalid_expiry",
                "expires_in_hours must be between 1 and 720",
            ));
        }
        if !(1..=1000).contains(&req.max_uses) {
            return Err(Error::refused(
                "invalid_max_uses",
                "max_uses must be between 1 and 1000",
            ));
        }
        let token = random_token();
        let hash = token_hash(&token);
        let a = actor.clone();
        let auditor = self.auditor.clone();
        let view = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::InviteMembers, Resource::Workspace(id))
                        .await?;
                    let role = workspace_role(
                        auditor.keyring(),
                        &mut tx.conn(),
                        id,
                        req.role.as_deref().unwrap_or("member"),
                    )
                    .await?;
                    if role.id == builtin::OWNER {
                        auditor
                            .authorize(tx, &a, Action::ManageOwners, Resource::Workspace(id))
                            .await?;
                    }
                    check_grant(&auditor, tx, &a, id, role.id).await?;
                    let Some(created_by) = a.user_id() else {
                        return Err(Error::refused(
                            "user_required",
                            "invitations are created by users",
                        ));
                    };
                    let now = Utc::now();
                    let invitation_id = InvitationId::generate();
                    let email_enc = match &req.email {
                        Some(email) => {
                            let row = invitation_id.to_string();
                            Some(
                                auditor
                                    .keyring()
                                    .encrypt(
                                        tx,
                                        &Scope::Workspace(id),
                                        invitation_aad(&row),
                                        email.as_str().as_bytes(),
                                    )
                                    .await?,
                            )
                        }
                        None => None,
                    };
                    let record = InvitationRecord {
                        id: invitation_id,
                        workspace_id: id,
                        email_index: req
                            .email
                            .as_ref()
                            .map(|e| auditor.keyring().email_index(&e.lookup_key())),
                        email_enc,
                        role_id: role.id,
                        created_by,
                        created_at: now,
                        expires_at: now + Duration::hours(req.expires_in_hours),
                        max_uses: if req.email.is_some() { 1 } else { req.max_uses },
                        uses: 0,
                        revoked_at: None,
                    };
                    invitations::insert(&mut tx.conn(), &record, &hash).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "invitation.create", Outcome::Allowed)
                                .target("invitation", record.id)
                                .workspace(id)
                                .details(serde_json::json!({
                                    "role": req.role.as_deref().unwrap_or("member"),
                                    "restricted_to_email": record.email_index.is_some(),
                                    "max_uses": record.max_uses,
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::InvitationCreated {
                        workspace_id: id,
                        invitation_id: record.id,
                    });
                    invitation_view(auditor.keyring(), &mut tx.conn(), record).await
                })
            })
            .await?;
        let url = format!("{base_url}/invite/{token}");
        Ok(CreatedInvitation {
            invitation: view,
            token,
            url,
            delivery: "shown",
        })
    }

    /// A workspace's invitations.
    pub async fn invitations(
        &self,
        actor: &Actor,
        id: WorkspaceId,
    ) -> Result<Vec<InvitationView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::InviteMembers,
                Resource::Workspace(id),
            )
            .await?;
        let mut out = Vec::new();
        for inv in invitations::for_workspace(&mut conn.conn(), id).await? {
            out.push(invitation_view(self.auditor.keyring(), &mut conn.conn(), inv).await?);
        }
        Ok(out)
    }

    /// Revokes an invitation.
    pub async fn revoke_invitation(
        &self,
        actor: &Actor,
        id: WorkspaceId,
        invitation: InvitationId,
    ) -> Result<(), Error> {
        let a = actor.clone();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &a, Action::InviteMembers, Resource::Workspace(id))
                        .await?;
                    if !invitations::revoke(&mut tx.conn(), id, invitation, Utc::now()).await? {
                        return Err(Error::NotFound("invitation"));
                    }
                    auditor
                        .record(
                            tx,
                            Event::by(&a, "invitation.revoke", Outcome::Allowed)
                                .target("invitation", invitation)
                                .workspace(id),
                        )
                        .await?;
                    tx.emit(DomainEvent::InvitationRevoked {
                        workspace_id: id,
                        invitation_id: invitation,
                    });
                    Ok(())
                })
            })
            .await
    }

    /// What an invitation offers; anyone holding the token may look.
    pub async fn preview(&self, token: &str) -> Result<InvitationPreview, Error> {
        let mut conn = self.store.reader().await?;
        let inv = live_invitation(&mut conn.conn(), token).await?;
        let workspace = ws_store::by_id(&mut conn.conn(), inv.workspace_id)
            .await?
            .ok_or(Error::NotFound("invitation"))?;
        let keyring = self.auditor.keyring();
        let (workspace_name, _) =
            names::open_workspace(keyring, &mut conn.conn(), &workspace).await?;
        Ok(InvitationPreview {
            workspace_name,
            email: invitation_email(keyring, &mut conn.conn(), &inv).await?,
            role: role_name(keyring, &mut conn.conn(), inv.role_id).await?,
            expires_at: inv.expires_at,
        })
    }

    /// Fails unless `token` names a live invitation. Cheap (one read), so it runs before
    /// anything costly, such as checking or hashing a new account's password.
    pub async fn check_invitation(&self, token: &str) -> Result<(), Error> {
        let mut conn = self.store.reader().await?;
        live_invitation(&mut conn.conn(), token).await.map(|_| ())
    }

    /// Accepts an invitation, as a signed-in user or by creating an account (from the client
    /// at `ip`). A new account's password is hashed only once the token has been checked.
    pub async fn accept(
        &self,
        token: &str,
        invitee: Invitee,
        ip: Option<IpAddr>,
    ) -> Result<(WorkspaceView, UserId), Error> {
        let hash = match &invitee {
            Invitee::New(account) => {
                self.check_invitation(token).await?;
                Some(self.hasher.hash(&account.password).await?)
            }
            Invitee::Existing(_) => None,
        };
        let token = token.to_owned();
        let auditor = self.auditor.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let inv = live_invitation(&mut tx.conn(), &token).await?;
                    let (user, email_lookup) = match &invitee {
                        Invitee::Existing(actor) => {
                            let Some(user) = actor.user_id() else {
                                return Err(Error::unauthenticated(
                                    "unauthenticated",
                                    "sign in first",
                                ));
                            };
                            auditor
                                .authorize(tx, actor, Action::ReadAccount, Resource::Account(user))
                                .await?;
                            let record = crate::store::users::by_id(&mut tx.conn(), user)
                                .await?
                                .ok_or(Error::NotFound("user"))?;
                            let (email, _) = crate::accounts::decrypt_profile(
                                auditor.keyring(),
                                &mut tx.conn(),
                                user,
                                record.email_enc.as_deref(),
                                None,
                            )
                            .await?;
                            (user, email.to_lowercase())
                        }
                        Invitee::New(account) => (UserId::generate(), account.email.lookup_key()),
                    };
                    let email_index = auditor.keyring().email_index(&email_lookup);
                    if inv.email_index.as_ref().is_some_and(|e| *e != email_index) {
                        return Err(Error::refused(
                            "invitation_email_mismatch",
                            "this invitation is for another email address",
                        ));
                    }
                    if let (Invitee::New(account), Some(hash)) = (&invitee, &hash) {
                        insert_user(tx, auditor.keyring(), user, account, None, hash, None).await?;
                        auditor
                            .record(
                                tx,
                                Event::anonymous("user.create", Outcome::Allowed, ip)
                                    .as_user(user, None)
                                    .target("user", user)
                                    .workspace(inv.workspace_id)
                                    .details(serde_json::json!({
                                        "system_role": null,
                                        "invitation": inv.id.to_string(),
                                    })),
                            )
                            .await?;
                    }
                    if ws_store::member_role(&mut tx.conn(), inv.workspace_id, user)
                        .await?
                        .is_some()
                    {
                        return Err(Error::conflict(
                            "already_member",
                            "you are already a member of this workspace",
                        ));
                    }
                    // The role is granted now, by whoever invited: they must still hold it all.
                    let grantable = rbac::check_grant(
                        &mut tx.conn(),
                        Some(inv.created_by),
                        inv.workspace_id,
                        inv.role_id,
                    )
                    .await?;
                    if grantable.is_err() {
                        return Err(Error::gone(
                            "invitation_not_grantable",
                            "whoever sent this invitation can no longer grant its role; ask for a new invitation",
                        ));
                    }
                    if !invitations::consume(&mut tx.conn(), inv.id).await? {
                        return Err(Error::gone(
                            "invitation_used",
                            "this invitation has been used up or revoked",
                        ));
                    }
                    ws_store::add_member(
                        &mut tx.conn(),
                        inv.workspace_id,
                        user,
                        inv.role_id,
                        Utc::now(),
                    )
                    .await?;
                    let actor = match &invitee {
                        Invitee::Existing(actor) => {
                            Event::by(actor, "invitation.accept", Outcome::Allowed)
                        }
                        Invitee::New(_) => {
                            Event::anonymous("invitation.accept", Outcome::Allowed, ip)
                                .as_user(user, None)
                        }
                    };
                    auditor
                        .record(
                            tx,
                            actor
                                .target("invitation", inv.id)
                                .workspace(inv.workspace_id)
                                .details(serde_json::json!({
                                    "new_account": matches!(invitee, Invitee::New(_)),
                                })),
                        )
                        .await?;
                    tx.emit(DomainEvent::MemberAdded {
                        workspace_id: inv.workspace_id,
                        user_id: user,
                        role_id: inv.role_id,
                    });
                    let w = ws_store::by_id(&mut tx.conn(), inv.workspace_id)
                        .await?
                        .ok_or(Error::NotFound("workspace"))?;
                    let role = role_name(auditor.keyring(), &mut tx.conn(), inv.role_id).await?;
                    let (name, slug) =
                        names::open_workspace(auditor.keyring(), &mut tx.conn(), &w).await?;
                    Ok((
                        WorkspaceView {
                            id: w.id,
                            name,
                            slug,
                            role: Some(role),
                        },
                        user,
                    ))
                })
            })
            .await
    }
}

async fn live_invitation(conn: &mut Conn<'_>, token: &str) -> Result<InvitationRecord, Error> {
    if token.is_empty() || token.len() > 256 {
        return Err(Error::NotFound("invitation"));
    }
    let inv = invitations::by_token_hash(conn, &token_hash(token))
        .await?
        .ok_or(Error::NotFound("invitation"))?;
    if inv.revoked_at.is_some() {
        return Err(Error::gone(
            "invitation_revoked",
            "this invitation was revoked",
        ));
    }
    if inv.expires_at <= Utc::now() {
        return Err(Error::gone(
            "invitation_expired",
            "this invitation has expired",
        ));
    }
    if inv.uses >= inv.max_uses {
        return Err(Error::gone(
            "invitation_used",
            "this invitation has been used up",
        ));
    }
    Ok(inv)
}
