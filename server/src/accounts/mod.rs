//! Accounts: first-run setup of the system admin, creating users, system roles, profiles.

use chrono::{Duration, Utc};
use serde::Serialize;

use crate::auth::{random_token, token_hash, PasswordHasher};
use crate::domain::{DisplayName, Email, Password, UserId};
use crate::error::Error;
use crate::events::DomainEvent;
use crate::rbac::{authorize, builtin, Action, Actor, Resource};
use crate::store::users::{self, NewUser, UserRecord};
use crate::store::{roles, setup, Store, StoreError, Tx};

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
    /// `active` or `disabled`.
    pub status: String,
    /// When it was created.
    pub created_at: chrono::DateTime<Utc>,
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
}

fn system_role_name(id: Option<crate::domain::RoleId>) -> Option<String> {
    id.and_then(|id| {
        builtin::ROLES
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.to_owned())
    })
}

pub(crate) fn view(user: UserRecord) -> UserView {
    UserView {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        system_role: system_role_name(user.system_role_id),
        status: user.status,
        created_at: user.created_at,
    }
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
    pub fn new(store: Store, hasher: PasswordHasher) -> AccountService {
        AccountService { store, hasher }
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

    /// Creates the first system admin with a setup token.
    pub async fn complete_setup(
        &self,
        token: &str,
        account: NewAccount,
    ) -> Result<UserView, Error> {
        let hash = self.hasher.hash(&account.password).await?;
        let token_hash = token_hash(token);
        let id = UserId::generate();
        let created = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let now = Utc::now();
                    if !setup::consume(&mut tx.conn(), &token_hash, now).await? {
                        return Err(Error::gone(
                            "setup_token_invalid",
                            "this setup link is invalid, used or expired",
                        ));
                    }
                    insert_user(tx, id, &account, Some(builtin::SYSTEM_ADMIN), &hash, None).await
                })
            })
            .await?;
        Ok(view(created))
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
        let created = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    authorize(
                        &mut tx.conn(),
                        &actor,
                        Action::ManageUsers,
                        Resource::System,
                    )
                    .await?;
                    insert_user(tx, id, &account, role, &hash, actor.user_id()).await
                })
            })
            .await?;
        Ok(view(created))
    }

    /// Lists accounts in creation order, paged by the last id seen.
    pub async fn list_users(
        &self,
        actor: &Actor,
        after: Option<UserId>,
        limit: i64,
    ) -> Result<Vec<UserView>, Error> {
        let mut conn = self.store.reader().await?;
        authorize(&mut conn.conn(), actor, Action::ReadUsers, Resource::System).await?;
        let list = users::list(&mut conn.conn(), after, limit.clamp(1, 500)).await?;
        Ok(list.into_iter().map(view).collect())
    }

    /// One account's profile, for its owner or an administrator.
    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<UserView, Error> {
        let mut conn = self.store.reader().await?;
        authorize(
            &mut conn.conn(),
            actor,
            Action::ReadAccount,
            Resource::Account(id),
        )
        .await?;
        users::by_id(&mut conn.conn(), id)
            .await?
            .map(view)
            .ok_or(Error::NotFound("user"))
    }

    /// Finds an account by email (administrators and the CLI).
    pub async fn find_by_email(&self, actor: &Actor, email: &Email) -> Result<UserView, Error> {
        let mut conn = self.store.reader().await?;
        authorize(&mut conn.conn(), actor, Action::ReadUsers, Resource::System).await?;
        users::by_email_lookup(&mut conn.conn(), &email.lookup_key())
            .await?
            .map(view)
            .ok_or(Error::NotFound("user"))
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
        let updated = self
            .store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    authorize(
                        &mut tx.conn(),
                        &actor,
                        Action::ManageUsers,
                        Resource::System,
                    )
                    .await?;
                    let Some(user) = users::by_id(&mut tx.conn(), id).await? else {
                        return Err(Error::NotFound("user"));
                    };
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
        Ok(view(updated))
    }
}

fn system_role(name: &str) -> Result<crate::domain::RoleId, Error> {
    builtin::by_name(name)
        .filter(|r| r.scope == builtin::Scope::System)
        .map(|r| r.id)
        .ok_or_else(|| Error::refused("unknown_role", format!("{name:?} is not a system role")))
}

/// Inserts an account inside a write; shared by setup, admin creation and invitations.
pub(crate) async fn insert_user(
    tx: &mut Tx,
    id: UserId,
    account: &NewAccount,
    system_role: Option<crate::domain::RoleId>,
    password_hash: &str,
    by: Option<UserId>,
) -> Result<UserRecord, Error> {
    let lookup = account.email.lookup_key();
    let new = NewUser {
        id,
        email: account.email.as_str(),
        email_lookup: &lookup,
        display_name: account.display_name.as_str(),
        password_hash: Some(password_hash),
        system_role_id: system_role,
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
