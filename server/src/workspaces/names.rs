//! Workspace names and slugs, and custom roles' names and descriptions, encrypted at rest.
//!
//! Each value is encrypted under its workspace's key, bound to (table, row, column). What a
//! lookup or a uniqueness check needs is a keyed blind index ([`Keyring::blind_index`]): the
//! slug's (`workspace-slug`, unique in the deployment) and a custom role's workspace and name
//! (`role-name`, unique per workspace, stored in `roles.name`). Built-in roles' names and
//! descriptions are Concord's own constants and stay as they are. Workspaces written before
//! encryption at rest are encrypted at start by [`encrypt_legacy_names`].

use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{RoleId, WorkspaceId};
use crate::error::Error;
use crate::rbac::builtin;
use crate::store::roles::{self, RoleRecord};
use crate::store::workspaces::{self as ws_store, WorkspaceRecord};
use crate::store::{Conn, Store, Tx};

/// Rows encrypted per write by the start-up backfill.
const BACKFILL_BATCH: i64 = 200;

fn aad<'a>(table: &'static str, row: &'a str, column: &'static str) -> Aad<'a> {
    Aad { table, row, column }
}

/// The blind index a slug is found and kept unique by.
pub(crate) fn slug_index(keyring: &Keyring, slug: &str) -> String {
    keyring.blind_index("workspace-slug", slug)
}

/// The blind index a custom role's name is found and kept unique by, within its workspace.
pub(crate) fn role_index(keyring: &Keyring, workspace: WorkspaceId, name: &str) -> String {
    keyring.blind_index("role-name", &format!("{workspace}:{name}"))
}

/// A workspace's name and slug, encrypted, and the slug's index.
pub(crate) struct SealedWorkspace {
    /// The name.
    pub name_enc: Vec<u8>,
    /// The slug.
    pub slug_enc: Vec<u8>,
    /// The slug's blind index.
    pub slug_index: String,
}

/// Encrypts a workspace's name inside the write `tx`.
pub(crate) async fn seal_name(
    tx: &mut Tx,
    keyring: &Keyring,
    id: WorkspaceId,
    name: &str,
) -> Result<Vec<u8>, Error> {
    let row = id.to_string();
    Ok(keyring
        .encrypt(
            tx,
            &Scope::Workspace(id),
            aad("workspaces", &row, "name"),
            name.as_bytes(),
        )
        .await?)
}

/// Encrypts a workspace's name and slug inside the write `tx`.
pub(crate) async fn seal_workspace(
    tx: &mut Tx,
    keyring: &Keyring,
    id: WorkspaceId,
    name: &str,
    slug: &str,
) -> Result<SealedWorkspace, Error> {
    let row = id.to_string();
    let name_enc = seal_name(tx, keyring, id, name).await?;
    let slug_enc = keyring
        .encrypt(
            tx,
            &Scope::Workspace(id),
            aad("workspaces", &row, "slug"),
            slug.as_bytes(),
        )
        .await?;
    Ok(SealedWorkspace {
        name_enc,
        slug_enc,
        slug_index: slug_index(keyring, slug),
    })
}

/// A workspace's name and slug, decrypted.
pub(crate) async fn open_workspace(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    w: &WorkspaceRecord,
) -> Result<(String, String), Error> {
    let row = w.id.to_string();
    let scope = Scope::Workspace(w.id);
    let mut out = [String::new(), String::new()];
    for (slot, (column, value)) in out
        .iter_mut()
        .zip([("name", &w.name_enc), ("slug", &w.slug_enc)])
    {
        if let Some(ct) = value {
            *slot = keyring
                .decrypt_text(conn, &scope, aad("workspaces", &row, column), ct)
                .await?;
        }
    }
    let [name, slug] = out;
    Ok((name, slug))
}

/// The workspace with this slug.
pub(crate) async fn by_slug(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    slug: &str,
) -> Result<Option<WorkspaceRecord>, Error> {
    Ok(ws_store::by_slug_index(conn, &slug_index(keyring, slug)).await?)
}

/// The name of a role as stored for a member of `workspace`: a built-in role's own name, or
/// a custom role's name decrypted.
pub(crate) async fn role_label(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    role: RoleId,
    stored: &str,
    name_enc: Option<&[u8]>,
) -> Result<String, Error> {
    match name_enc {
        Some(ct) => {
            let row = role.to_string();
            Ok(keyring
                .decrypt_text(
                    conn,
                    &Scope::Workspace(workspace),
                    aad("roles", &row, "name"),
                    ct,
                )
                .await?)
        }
        None => Ok(stored.to_owned()),
    }
}

/// A role's name and description, decrypted for custom roles.
pub(crate) async fn open_role(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    r: &RoleRecord,
) -> Result<(String, String), Error> {
    let Some(workspace) = r.workspace_id.filter(|_| !r.builtin) else {
        return Ok((r.name.clone(), r.description.clone()));
    };
    let name = role_label(
        keyring,
        conn,
        workspace,
        r.id,
        &r.name,
        r.name_enc.as_deref(),
    )
    .await?;
    let description = match &r.description_enc {
        Some(ct) => {
            let row = r.id.to_string();
            keyring
                .decrypt_text(
                    conn,
                    &Scope::Workspace(workspace),
                    aad("roles", &row, "description"),
                    ct,
                )
                .await?
        }
        None => r.description.clone(),
    };
    Ok((name, description))
}

/// The name of the role with this id (`unknown` if there is none).
pub(crate) async fn role_name(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    id: RoleId,
) -> Result<String, Error> {
    match roles::by_id(conn, id).await? {
        Some(r) => Ok(open_role(keyring, conn, &r).await?.0),
        None => Ok("unknown".into()),
    }
}

/// The role usable in `workspace` called `name`: a built-in role, or one of its custom roles
/// found by the blind index of its name.
pub(crate) async fn find_role(
    keyring: &Keyring,
    conn: &mut Conn<'_>,
    workspace: WorkspaceId,
    name: &str,
) -> Result<Option<RoleRecord>, Error> {
    let stored = if builtin::by_name(name).is_some() {
        name.to_owned()
    } else {
        role_index(keyring, workspace, name)
    };
    Ok(roles::in_workspace_by_stored_name(conn, workspace, &stored)
        .await?
        .filter(|r| r.builtin == builtin::by_name(name).is_some()))
}

/// A custom role's name index and encrypted name and description.
pub(crate) struct SealedRole {
    /// Blind index of the workspace and name (stored in `roles.name`).
    pub name_index: String,
    /// The name.
    pub name_enc: Vec<u8>,
    /// The description, if not empty.
    pub description_enc: Option<Vec<u8>>,
}

/// Encrypts a custom role's name and description inside the write `tx`.
pub(crate) async fn seal_role(
    tx: &mut Tx,
    keyring: &Keyring,
    workspace: WorkspaceId,
    id: RoleId,
    name: &str,
    description: &str,
) -> Result<SealedRole, Error> {
    let row = id.to_string();
    let scope = Scope::Workspace(workspace);
    let name_enc = keyring
        .encrypt(tx, &scope, aad("roles", &row, "name"), name.as_bytes())
        .await?;
    let description_enc = if description.is_empty() {
        None
    } else {
        Some(
            keyring
                .encrypt(
                    tx,
                    &scope,
                    aad("roles", &row, "description"),
                    description.as_bytes(),
                )
                .await?,
        )
    };
    Ok(SealedRole {
        name_index: role_index(keyring, workspace, name),
        name_enc,
        description_enc,
    })
}

/// Encrypts workspace names and slugs and custom roles stored in plaintext before encryption
/// at rest, replacing the plaintext by ciphertext and blind indexes. Runs at start, a batch
/// per write, so an interrupted run resumes where it stopped; returns the rows encrypted.
pub async fn encrypt_legacy_names(store: &Store, keyring: &Keyring) -> Result<usize, Error> {
    let mut total = 0;
    loop {
        let keyring = keyring.clone();
        let done = store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let batch = ws_store::legacy_plaintext(&mut tx.conn(), BACKFILL_BATCH).await?;
                    for w in &batch {
                        let sealed = seal_workspace(tx, &keyring, w.id, &w.name, &w.slug).await?;
                        ws_store::set_encrypted(
                            &mut tx.conn(),
                            w.id,
                            &sealed.name_enc,
                            &sealed.slug_enc,
                            &sealed.slug_index,
                        )
                        .await?;
                    }
                    let roles = roles::legacy_plaintext(&mut tx.conn(), BACKFILL_BATCH).await?;
                    for r in &roles {
                        let Some(workspace) = r.workspace_id else {
                            continue;
                        };
                        let sealed =
                            seal_role(tx, &keyring, workspace, r.id, &r.name, &r.description)
                                .await?;
                        roles::set_encrypted(
                            &mut tx.conn(),
                            r.id,
                            &sealed.name_index,
                            &sealed.name_enc,
                            sealed.description_enc.as_deref(),
                        )
                        .await?;
                    }
                    Ok::<_, Error>(batch.len() + roles.len())
                })
            })
            .await?;
        total += done;
        if done == 0 {
            return Ok(total);
        }
    }
}
