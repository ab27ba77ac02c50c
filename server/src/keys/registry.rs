//! The re-encryption registry: the data inventory's re-encrypted columns, one target per
//! table, and the one batch function that walks them.
//!
//! [`Registry::new`] groups the [`Inventory`]'s [`Shape::Sealed`] and
//! [`Shape::SealedBase64`] columns by table, in inventory order. A data-key rotation
//! ([`super::KeyService::rotate_dek`]) records progress for every target, and the
//! re-encryption job ([`super::Reencryptor`]) walks them batch by batch through the
//! group-commit writer with [`Target::reencrypt`]: the rows after a cursor (in key order),
//! each with its key scope (found through the inventory's scope rule, joining to the owning
//! row where needed), and for each listed column whose ciphertext is under an older key
//! version than the scope's current one, a decryption and an encryption for the same place.
//! A feature that adds an encrypted column declares it in its inventory; rotations started
//! before it existed pick its table up when they resume.
//!
//! Invariants: a batch only touches values under an older key version than their scope's
//! current one, re-encrypts them for the same place (table, row, column), and returns the last
//! key it examined as a cursor that orders rows the same way on both backends. Audit entries
//! are not a target: the log is append-only and its hash covers the ciphertext, so they stay
//! under the key version they were written with (old versions are kept for reading).

use std::collections::HashMap;

use base64::Engine;
use uuid::Uuid;

use crate::crypto::{Aad, Keyring, Scope};
use crate::domain::{UserId, WorkspaceId};
use crate::error::Error;
use crate::inventory::{Column, Inventory, ScopeRule, Shape};
use crate::store::inventory::{self as inv_store, ValueColumn, Walk};
use crate::store::Tx;

/// What one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Rows examined.
    pub scanned: usize,
    /// Rows re-encrypted (the others were already under the current key).
    pub changed: usize,
    /// The last row key examined, to resume after; `None` if the batch was empty.
    pub last: Option<String>,
}

/// A table with encrypted columns that a data-key rotation re-encrypts.
#[derive(Clone, Debug)]
pub struct Target {
    /// The table: the stable name stored with the progress.
    pub name: &'static str,
    columns: Vec<&'static Column>,
    user_scope: bool,
    walk: Walk,
}

impl Target {
    fn new(columns: Vec<&'static Column>) -> Option<Target> {
        let first = *columns.first()?;
        let place = first.place?;
        let (owner, user_scope) = match first.scope {
            ScopeRule::Workspace(o) => (o, false),
            ScopeRule::User(o) => (o, true),
            _ => return None,
        };
        let walk = Walk {
            table: first.table,
            key: first.key,
            row: place.row,
            scope: owner,
            columns: columns
                .iter()
                .map(|c| ValueColumn {
                    name: c.column,
                    text: c.shape == Shape::SealedBase64,
                })
                .collect(),
        };
        Some(Target {
            name: first.table,
            columns,
            user_scope,
            walk,
        })
    }

    /// The columns it re-encrypts.
    pub fn columns(&self) -> &[&'static Column] {
        &self.columns
    }

    /// How many rows there are (the progress total), inside a write.
    pub async fn count(&self, tx: &mut Tx) -> Result<i64, Error> {
        Ok(inv_store::count(&mut tx.conn(), self.name).await?)
    }

    /// Re-encrypts the stale values of at most `limit` rows after the cursor, inside a write.
    pub async fn reencrypt(
        &self,
        tx: &mut Tx,
        keyring: &Keyring,
        cursor: Option<String>,
        limit: usize,
    ) -> Result<Batch, Error> {
        let cursor = cursor
            .map(|c| inv_store::parse_cursor(self.walk.key, &c))
            .transpose()?;
        let rows = inv_store::after(&mut tx.conn(), &self.walk, cursor.as_deref(), limit).await?;
        let mut current: HashMap<Uuid, Option<u32>> = HashMap::new();
        let mut changed = 0;
        for row in &rows {
            let present = row.values.iter().flatten().any(|v| !v.is_empty());
            let Some(owner) = row.scope else {
                if present {
                    tracing::warn!(table = self.name, row = %inv_store::joined(&row.key),
                        "an encrypted row has no key scope; left as it is");
                }
                continue;
            };
            if !present {
                continue;
            }
            let scope = if self.user_scope {
                Scope::User(UserId(owner))
            } else {
                Scope::Workspace(WorkspaceId(owner))
            };
            let version = match current.get(&owner) {
                Some(v) => *v,
                None => {
                    let v = keyring.current_version(&mut tx.conn(), &scope).await?;
                    current.insert(owner, v);
                    v
                }
            };
            let row_id = inv_store::joined(&row.row);
            let mut updates = Vec::new();
            for (i, (column, stored)) in self.columns.iter().zip(&row.values).enumerate() {
                let Some(stored) = stored.as_deref().filter(|v| !v.is_empty()) else {
                    continue;
                };
                let base64 = column.shape == Shape::SealedBase64;
                let sealed = if base64 {
                    base64::engine::general_purpose::STANDARD
                        .decode(stored)
                        .map_err(|_| {
                            Error::Internal(format!(
                                "{}.{} is not base64",
                                self.name, column.column
                            ))
                        })?
                } else {
                    stored.to_vec()
                };
                if version == Some(Keyring::version_of(&sealed)?) {
                    continue;
                }
                let aad = Aad {
                    table: self.name,
                    row: &row_id,
                    column: column.place.map(|p| p.column).unwrap_or(column.column),
                };
                let plain = keyring
                    .decrypt(&mut tx.conn(), &scope, aad, &sealed)
                    .await?;
                let resealed = keyring.encrypt(tx, &scope, aad, &plain).await?;
                let value = if base64 {
                    base64::engine::general_purpose::STANDARD
                        .encode(resealed)
                        .into_bytes()
                } else {
                    resealed
                };
                updates.push((i, value));
            }
            if !updates.is_empty() {
                inv_store::set(&mut tx.conn(), &self.walk, &row.key, &updates).await?;
                changed += 1;
            }
        }
        Ok(Batch {
            scanned: rows.len(),
            changed,
            last: rows.last().map(|r| inv_store::joined(&r.key)),
        })
    }
}

/// Every re-encryptable target, in the order a rotation walks them.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    targets: Vec<Target>,
}

impl Registry {
    /// The targets of `inventory`'s re-encrypted columns, one per table, in inventory order;
    /// an error names the entries a walk could not cope with.
    pub fn new(inventory: &Inventory) -> Result<Registry, Error> {
        let problems = inventory.problems();
        if !problems.is_empty() {
            return Err(Error::Internal(format!(
                "the data inventory is inconsistent: {}",
                problems.join("; ")
            )));
        }
        let mut tables: Vec<&'static str> = Vec::new();
        for c in inventory.columns() {
            if c.shape.reencrypted() && !tables.contains(&c.table) {
                tables.push(c.table);
            }
        }
        let targets = tables
            .into_iter()
            .filter_map(|t| {
                Target::new(
                    inventory
                        .columns()
                        .iter()
                        .copied()
                        .filter(|c| c.table == t && c.shape.reencrypted())
                        .collect(),
                )
            })
            .collect();
        Ok(Registry { targets })
    }

    /// The targets, in walking order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target with this name.
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{KeyPart, Owner, Place, Retention, Subject, SubjectKind};

    const ID: &[KeyPart] = &[KeyPart::Id("id")];
    const fn sealed(table: &'static str, column: &'static str) -> Column {
        Column {
            table,
            key: ID,
            column,
            shape: Shape::Sealed,
            place: Some(Place { row: ID, column }),
            scope: ScopeRule::Workspace(Owner::at("workspace_id")),
            subject: Subject {
                kind: SubjectKind::Members,
                who: None,
            },
            retention: Retention::Content,
        }
    }
    const PARTS: &[Column] = &[sealed("a", "x"), sealed("b", "y"), sealed("a", "z")];

    #[test]
    fn one_target_per_table_in_inventory_order() {
        let registry = Registry::new(&Inventory::new(&[PARTS])).unwrap();
        let names: Vec<&str> = registry.targets().iter().map(|t| t.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(registry.target("a").unwrap().columns().len(), 2);
        assert!(registry.target("c").is_none());
    }

    #[test]
    fn an_inconsistent_inventory_is_refused() {
        const TWICE: &[Column] = &[sealed("a", "x"), sealed("a", "x")];
        assert!(Registry::new(&Inventory::new(&[TWICE])).is_err());
        const NO_OWNER: &[Column] = &[Column {
            scope: ScopeRule::Deployment,
            ..sealed("a", "x")
        }];
        assert!(Registry::new(&Inventory::new(&[NO_OWNER])).is_err());
    }
}
