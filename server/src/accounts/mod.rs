//! Accounts: first-run setup of the system admin, creating users, system roles, profiles.

use std::net::IpAddr;

use chrono::{Duration, Utc};
use serde::Serialize;

use crate::audit::{Auditor, Event, Outcome};
use crate::auth::{random_token, token_hash, PasswordHasher};
use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{DisplayName, Email, Password, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{self, builtin, Action, Actor, Resource};
use crate::store::users::{self, NewUser, UserRecord};
use crate::store::{roles, setup, workspaces, Conn, Store, StoreError, Tx};

mod inventory;
mod profile;
pub use inventory::INVENTORY;
pub use profile::{OutOfOffice, OutOfOfficeView, ProfileChange, Rectification};

/// How long a printed setup token stays valid.
const SETUP_TOKEN_HOURS: i64 = 24;

/// An account as the API shows it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Its id.
    pub id: UserId,
    /// Email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Deployment-wide role, if any.
    pub system_role: Option<String>,
    /// `active`, `disabled`, or `erased` (GDPR Art. 17: no personal data left).
    pub status: String,
    /// When it was created.
    pub created_at: chrono::DateTime<Utc>,
    /// The period the person is away, if they set one.
    pub out_of_office: Option<OutOfOfficeView>,
}

/// What creating an account takes (already parsed).
pub struct NewAccount {
    /// Email.
    pub email: Email,
    /// Display name.
    pub display_name: DisplayName,
    /// Password.
    pub password: Password,
    /// System role name, if any.
    pub system_role: Option<String>,
}

/// Account operations.
#[derive(Clone)]
pub struct AccountService {
    store: Store,
    hasher: PasswordHasher,
    auditor: Auditor,
}

fn system_role_name(id: Option<crate::domain::RoleId>) -> Option<String> {
    id.and_then(|id| {
        builtin::ROLES
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.to_owned())
    })
}

fn users_aad<'a>(row: &'a str, column: &'a str) -> Aad<'a> {
    Aad {
        table: "users",
        row,
        column,
    }
}

/// What an erased account is called where a name is shown: it keeps none.
pub const ERASED_NAME: &str = "Erased user";

/// A user's email and display name, decrypted.
pub(crate) async fn decrypt_profile(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    id: UserId,
    email_enc: Option<&[u8]>,
    display_name_enc: Option<&[u8]>,
) -> Result<(String, String), Error> {
    let row = id.to_string();
    let scope = Scope::User(id);
    let mut out = [String::new(), String::new()];
    for (slot, (column, value)) in out
        .iter_mut()
        .zip([("email", email_enc), ("display_name", display_name_enc)])
    {
        if let Some(ct) = value {
            *slot = keyring
                .decrypt_text(conn, &scope, users_aad(&row, column), ct)
                .await?;
        }
    }
    let [email, name] = out;
    Ok((email, name))
}

pub(crate) async fn view(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    user: UserRecord,
) -> Result<UserView, Error> {
    let (email, display_name) = decrypt_profile(
        keyring,
        conn,
        user.id,
        user.email_enc.as_deref(),
        user.display_name_enc.as_deref(),
    )
    .await?;
    let out_of_office =
        profile::open_out_of_office(keyring, conn, user.id, user.out_of_office_enc.as_deref())
            .await?;
    Ok(UserView {
        id: user.id,
        email,
        display_name: if user.erased_at.is_some() {
            ERASED_NAME.to_owned()
        } else {
            display_name
        },
        system_role: system_role_name(user.system_role_id),
        status: if user.erased_at.is_some() {
            "erased".to_owned()
        } else {
            user.status
        },
        created_at: user.created_at,
        out_of_office,
    })
}

pub(crate) fn map_email_taken(err: StoreError) -> Error {
    match err {
        StoreError::Constraint(_) => {
            Error::conflict("email_taken", "an account with this email already exists")
        }
        other => Error::Store(other),
    }
}

impl AccountService {
    /// A service over `store`.
    pub fn new(store: Store, hasher: PasswordHasher, auditor: Auditor) -> AccountService {
        AccountService {
            store,
            hasher,
            auditor,
        }
    }

    async fn view_of(&self, user: UserRecord) -> Result<UserView, Error> {
        let mut conn = self.store.reader().await?;
        view(self.auditor.keyring(), &mut conn.conn(), user).await
    }

    /// If no account exists yet, makes a fresh one-time setup token (replacing older unused
    /// ones) and returns it; otherwise `None`.
    pub async fn prepare_setup(&self) -> Result<Option<String>, Error> {
        let mut conn = self.store.reader().await?;
        if users::count(&mut conn.conn()).await? > 0 {
            return Ok(None);
        }
        drop(conn);
        let token = random_token();
        let hash = token_hash(&token);
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    setup::replace_token(
                        &mut tx.conn(),
                        &hash,
                        now,
                        now + Duration::hours(SETUP_TOKEN_HOURS),
                    )
                    .await
                    .map_err(Error::from)
                })
            })
            .await?;
        Ok(Some(token))
    }

    /// Fails with `setup_token_invalid` unless `token` is a live setup token. Cheap (one read),
    /// so it runs before anything costly, such as checking or hashing a password.
    pub async fn check_setup_token(&self, token: &str) -> Result<(), Error> {
        let live = if token.is_empty() || token.len() > 256 {
            false
        } else {
            let mut conn = self.store.reader().await?;
            setup::is_live(&mut conn.conn(), &token_hash(token), Utc::now()).await?
        };
        if live {
            Ok(())
        } else {
            Err(setup_token_invalid())
        }
    }

    /// Creates the first system admin with a setup token, from the client at `ip`. The token
    /// is checked before the password is hashed, so a wrong token costs no hashing.
    pub async fn complete_setup(
        &self,
        token: &str,
        account: NewAccount,
        ip: Option<IpAddr>,
    ) -> Result<UserView, Error> {
        self.check_setup_token(token).await?;
        let hash = self.hasher.hash(&account.password).await?;
        let token_hash = token_hash(token);
        let id = UserId::generate();
        let auditor = self.auditor.clone();
        let created = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    if !setup::consume(&mut tx.conn(), &token_hash, now).await? {
                        return Err(setup_token_invalid());
                    }
                    let user = insert_account(
                        tx,
                        auditor.keyring(),
                        id,
                        &account,
                        Some(builtin::SYSTEM_ADMIN),
                        &hash,
                        None,
                        false,
                    )
                    .await?;
                    auditor
                        .record(
                            tx,
                            Event::anonymous("setup.complete", Outcome::Allowed, ip)
                                .target("user", id)
                                .subject(id)
                                .details(serde_json::json!({ "system_role": "system_admin" })),
                        )
                        .await?;
                    Ok::<_, Error>(user)
                })
            })
            .await?;
        self.view_of(created).await
    }

    /// Creates an account (an administrator's action, or the CLI's).
    pub async fn create_user(&self, actor: &Actor, account: NewAccount) -> Result<UserView, Error> {
        let role = match account.system_role.as_deref() {
            None => None,
            Some(name) => Some(system_role(name)?),
        };
        let hash = self.hasher.hash(&account.password).await?;
        let actor = actor.clone();
        let id = UserId::generate();
        let auditor = self.auditor.clone();
        let created = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageUsers, Resource::System)
                        .await?;
                    // An administrator vouches for the email they enter.
                    let user = insert_account(
                        tx,
                        auditor.keyring(),
                        id,
                        &account,
                        role,
                        &hash,
                        actor.user_id(),
                        true,
                    )
                    .await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "user.create", Outcome::Allowed)
                                .target("user", id)
                                .details(serde_json::json!({
                                    "system_role": system_role_name(role)
                                })),
                        )
                        .await?;
                    Ok::<_, Error>(user)
                })
            })
            .await?;
        self.view_of(created).await
    }

    /// Lists accounts in creation order, paged by the last id seen.
    pub async fn list_users(
        &self,
        actor: &Actor,
        after: Option<UserId>,
        limit: i64,
    ) -> Result<Vec<UserView>, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadUsers,
                Resource::System,
            )
            .await?;
        let list = users::list(&mut conn.conn(), after, limit.clamp(1, 500)).await?;
        let mut out = Vec::with_capacity(list.len());
        for user in list {
            out.push(view(self.auditor.keyring(), &mut conn.conn(), user).await?);
        }
        Ok(out)
    }

    /// One account's profile, for its owner, an administrator, or someone who may see the
    /// members of a workspace the person belongs to (as the member list shows them).
    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<UserView, Error> {
        let mut conn = self.store.reader().await?;
        let (action, resource) = match actor.user_id() {
            Some(me) if me != id => {
                let mut seen_through = None;
                for workspace in workspaces::shared(&mut conn.conn(), me, id).await? {
                    if rbac::workspace_permissions(&mut conn.conn(), me, workspace)
                        .await?
                        .contains(&Action::ReadMembers)
                    {
                        seen_through = Some(workspace);
                        break;
                    }
                }
                match seen_through {
                    Some(w) => (Action::ReadMembers, Resource::Workspace(w)),
                    None => (Action::ReadAccount, Resource::Account(id)),
                }
            }
            _ => (Action::ReadAccount, Resource::Account(id)),
        };
        self.auditor
            .authorize_read(&self.store, &mut conn.conn(), actor, action, resource)
            .await?;
        let user = users::by_id(&mut conn.conn(), id)
            .await?
            .ok_or(Error::NotFound("user"))?;
        view(self.auditor.keyring(), &mut conn.conn(), user).await
    }

    /// Finds an account by email (administrators and the CLI).
    pub async fn find_by_email(&self, actor: &Actor, email: &Email) -> Result<UserView, Error> {
        let mut conn = self.store.reader().await?;
        self.auditor
            .authorize_read(
                &self.store,
                &mut conn.conn(),
                actor,
                Action::ReadUsers,
                Resource::System,
            )
            .await?;
        let index = self.auditor.keyring().email_index(&email.lookup_key());
        let user = users::by_email_index(&mut conn.conn(), &index)
            .await?
            .ok_or(Error::NotFound("user"))?;
        view(self.auditor.keyring(), &mut conn.conn(), user).await
    }

    /// Grants or removes a system role. The last system admin cannot lose the role.
    pub async fn set_system_role(
        &self,
        actor: &Actor,
        id: UserId,
        role: Option<&str>,
    ) -> Result<UserView, Error> {
        let role = role.map(system_role).transpose()?;
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let updated = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageUsers, Resource::System)
                        .await?;
                    let Some(user) = users::by_id(&mut tx.conn(), id).await? else {
                        return Err(Error::NotFound("user"));
                    };
                    if user.erased_at.is_some() {
                        return Err(Error::gone(
                            "erased",
                            "this person was erased: the account cannot be given a role",
                        ));
                    }
                    if user.system_role_id == Some(builtin::SYSTEM_ADMIN)
                        && role != Some(builtin::SYSTEM_ADMIN)
                        && users::count_with_system_role(&mut tx.conn(), builtin::SYSTEM_ADMIN)
                            .await?
                            <= 1
                    {
                        return Err(Error::refused(
                            "last_system_admin",
                            "the last system admin cannot lose the role",
                        ));
                    }
                    let now = Utc::now();
                    users::set_system_role(&mut tx.conn(), id, role, now).await?;
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, "user.system_role.set", Outcome::Allowed)
                                .target("user", id)
                                .details(
                                    serde_json::json!({ "system_role": system_role_name(role) }),
                                ),
                        )
                        .await?;
                    tx.emit(DomainEvent::SystemRoleChanged {
                        user_id: id,
                        role: system_role_name(role),
                        by: actor.user_id(),
                    });
                    users::by_id(&mut tx.conn(), id)
                        .await?
                        .ok_or(Error::NotFound("user"))
                })
            })
            .await?;
        self.view_of(updated).await
    }

    /// Deactivates (`active: false`) or reactivates an account (administrators). A
    /// deactivated person cannot sign in by password or single sign-on and their sessions
    /// end at once (live sockets close); their content and memberships stay, so reactivating
    /// gives the account back as it was. An administrator cannot deactivate themselves, nor
    /// the last active system admin; an erased account cannot be reactivated. `reason` (at most 500 characters) goes to the audit log.
    pub async fn set_active(
        &self,
        actor: &Actor,
        id: UserId,
        active: bool,
        reason: Option<String>,
    ) -> Result<UserView, Error> {
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if reason.as_ref().is_some_and(|r| r.chars().count() > 500) {
            return Err(Error::refused(
                "reason_too_long",
                "reason must be at most 500 characters",
            ));
        }
        let actor = actor.clone();
        let auditor = self.auditor.clone();
        let updated = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    auditor
                        .authorize(tx, &actor, Action::ManageUsers, Resource::System)
                        .await?;
                    let Some(user) = users::by_id(&mut tx.conn(), id).await? else {
                        return Err(Error::NotFound("user"));
                    };
                    if user.erased_at.is_some() {
                        return Err(Error::gone(
                            "erased",
                            "this person was erased: the account stays deactivated for good",
                        ));
                    }
                    if (user.status == "active") == active {
                        // Already as asked: nothing changes and nothing is recorded twice.
                        return Ok(user);
                    }
                    if !active {
                        if actor.user_id() == Some(id) {
                            return Err(Error::refused(
                                "cannot_deactivate_self",
                                "you cannot deactivate your own account",
                            ));
                        }
                        if user.system_role_id == Some(builtin::SYSTEM_ADMIN)
                            && users::count_with_system_role(&mut tx.conn(), builtin::SYSTEM_ADMIN)
                                .await?
                                <= 1
                        {
                            return Err(Error::refused(
                                "last_system_admin",
                                "the last active system admin cannot be deactivated",
                            ));
                        }
                    }
                    let now = Utc::now();
                    users::set_status(&mut tx.conn(), id, active, now).await?;
                    let mut revoked = Vec::new();
                    if !active {
                        revoked = crate::store::sessions::revoke_all(
                            &mut tx.conn(),
                            id,
                            now,
                            DEACTIVATED,
                        )
                        .await?;
                    }
                    let action = if active {
                        "user.reactivated"
                    } else {
                        "user.deactivated"
                    };
                    auditor
                        .record(
                            tx,
                            Event::by(&actor, action, Outcome::Allowed)
                                .target("user", id)
                                .subject(id)
                                .details(serde_json::json!({
                                    "reason": reason,
                                    "sessions_revoked": revoked.len(),
                                })),
                        )
                        .await?;
                    if !revoked.is_empty() {
                        tx.emit(DomainEvent::SessionsRevoked {
                            user_id: id,
                            sessions: revoked,
                            reason: DEACTIVATED.into(),
                        });
                    }
                    users::by_id(&mut tx.conn(), id)
                        .await?
                        .ok_or(Error::NotFound("user"))
                })
            })
            .await?;
        self.view_of(updated).await
    }
}

/// Why a deactivated person's sessions ended (`sessions.revoked_reason`, `SessionsRevoked`).
pub const DEACTIVATED: &str = "deactivated";

fn setup_token_invalid() -> Error {
    Error::gone(
        "setup_token_invalid",
        "this setup link is invalid, used or expired",
    )
}

fn system_role(name: &str) -> Result<crate::domain::RoleId, Error> {
    builtin::by_name(name)
        .filter(|r| r.scope == builtin::Scope::System)
        .map(|r| r.id)
        .ok_or_else(|| Error::refused("unknown_role", format!("{name:?} is not a system role")))
}

/// Inserts an account whose email is not verified (the person typed it) inside a write;
/// shared by setup and invitations.
pub(crate) async fn insert_user(
    tx: &mut Tx,
    keyring: &Keyring,
    id: UserId,
    account: &NewAccount,
    system_role: Option<crate::domain::RoleId>,
    password_hash: &str,
    by: Option<UserId>,
) -> Result<UserRecord, Error> {
    insert_account(
        tx,
        keyring,
        id,
        account,
        system_role,
        password_hash,
        by,
        false,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn insert_account(
    tx: &mut Tx,
    keyring: &Keyring,
    id: UserId,
    account: &NewAccount,
    system_role: Option<crate::domain::RoleId>,
    password_hash: &str,
    by: Option<UserId>,
    email_verified: bool,
) -> Result<UserRecord, Error> {
    let profile = Profile {
        email: &account.email,
        display_name: &account.display_name,
        email_verified,
    };
    insert_profile(
        tx,
        keyring,
        id,
        profile,
        system_role,
        Some(password_hash),
        by,
    )
    .await
}

/// Who an account is: its email and display name.
pub(crate) struct Profile<'a> {
    /// Email address.
    pub email: &'a Email,
    /// Display name.
    pub display_name: &'a DisplayName,
    /// Whether the email is known to be the account holder's; only such an email may link
    /// the account to a provider identity.
    pub email_verified: bool,
}

/// Inserts an account (with or without a password) with its personal data encrypted under
/// its own key and its email findable through the blind index.
pub(crate) async fn insert_profile(
    tx: &mut Tx,
    keyring: &Keyring,
    id: UserId,
    profile: Profile<'_>,
    system_role: Option<crate::domain::RoleId>,
    password_hash: Option<&str>,
    by: Option<UserId>,
) -> Result<UserRecord, Error> {
    let index = keyring.email_index(&profile.email.lookup_key());
    let row = id.to_string();
    let scope = Scope::User(id);
    let email_enc = keyring
        .encrypt(
            tx,
            &scope,
            users_aad(&row, "email"),
            profile.email.as_str().as_bytes(),
        )
        .await?;
    let display_name_enc = keyring
        .encrypt(
            tx,
            &scope,
            users_aad(&row, "display_name"),
            profile.display_name.as_str().as_bytes(),
        )
        .await?;
    let new = NewUser {
        id,
        email_enc: &email_enc,
        email_index: &index,
        display_name_enc: &display_name_enc,
        password_hash,
        system_role_id: system_role,
        email_verified: profile.email_verified,
        now: Utc::now(),
    };
    users::insert(&mut tx.conn(), &new)
        .await
        .map_err(map_email_taken)?;
    tx.emit(DomainEvent::UserCreated { user_id: id, by });
    users::by_id(&mut tx.conn(), id)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// Encrypts personal data stored in plaintext before encryption at rest existed, and
/// replaces the plaintext email lookup by the blind index. Runs at start; idempotent.
pub async fn encrypt_legacy_profiles(store: &Store, keyring: &Keyring) -> Result<usize, Error> {
    let mut total = 0;
    loop {
        let keyring = keyring.clone();
        let done = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let batch = users::legacy_plaintext(&mut tx.conn(), 200).await?;
                    for user in &batch {
                        let row = user.id.to_string();
                        let scope = Scope::User(user.id);
                        let email_enc = keyring
                            .encrypt(tx, &scope, users_aad(&row, "email"), user.email.as_bytes())
                            .await?;
                        let name_enc = keyring
                            .encrypt(
                                tx,
                                &scope,
                                users_aad(&row, "display_name"),
                                user.display_name.as_bytes(),
                            )
                            .await?;
                        let index = keyring.email_index(&user.email.to_lowercase());
                        users::set_encrypted_profile(
                            &mut tx.conn(),
                            user.id,
                            &email_enc,
                            &index,
                            &name_enc,
                        )
                        .await?;
                    }
                    Ok::<_, Error>(batch.len())
                })
            })
            .await?;
        total += done;
        if done == 0 {
            return Ok(total);
        }
    }
}

/// Makes sure every built-in role exists with exactly its built-in permissions.
pub async fn seed_builtin_roles(store: &Store) -> Result<(), Error> {
    store
        .write(|tx: &mut Tx| {
            Box::pin(async move {
                for role in builtin::ROLES {
                    let record = roles::RoleRecord {
                        id: role.id,
                        scope: role.scope.as_str().into(),
                        workspace_id: None,
                        name: role.name.into(),
                        description: role.description.into(),
                        name_enc: None,
                        description_enc: None,
                        builtin: true,
                        created_at: Utc::now(),
                    };
                    let permissions: Vec<&str> = role.actions.iter().map(|a| a.as_str()).collect();
                    roles::put(&mut tx.conn(), &record, &permissions).await?;
                }
                Ok::<_, Error>(())
            })
        })
        .await
}
