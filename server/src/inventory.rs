//! The data inventory: every column that holds ciphertext or personal data, declared once by
//! the feature that owns its table.
//!
//! Each feature exports a `const INVENTORY: &[Column]` next to its tables (`accounts`, `chat`,
//! `docs`, `files`, `workspaces`, `auth`, `audit`, `sso`); the composition root
//! (`startup::inventory`) gathers them into one [`Inventory`] and hands it to the key service
//! and the re-encryption job, so neither `keys` nor this module imports a feature (it sits
//! just above `store`, so even `audit`, which `keys` uses, can declare its columns). An entry names the table,
//! its key, the column, the place (row id and column) its ciphertext is bound to, how the
//! row's key scope is found, whose data it is (the [`Subject`]) and how long it is kept
//! ([`Retention`]). Data-key rotation re-encrypts every [`Shape::Sealed`] and
//! [`Shape::SealedBase64`] column with one generic batch function (`keys::registry`); the
//! data-subject export, erasure and retention jobs walk the same list, and the record of
//! processing activities (`compliance::record`) lists it.
//!
//! Invariants: every (table, column) pair the keyring encrypts under is listed here (tested
//! against the places the keyring has encrypted into, `crypto::written_places`), and
//! every table and column named here exists on both backends (tested).

pub use crate::store::inventory::{Hop, KeyPart, Owner};

/// How the key scope of a row is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeRule {
    /// The workspace whose id is at this place.
    Workspace(Owner),
    /// The user whose id is at this place.
    User(Owner),
    /// The scope's stored form (`user:<id>`, `system:audit`) is in this column.
    Stored(&'static str),
    /// No data key of a workspace or person: a deployment-wide secret (blind indexes), a
    /// per-file or per-code key, the deployment's `system:audit` key ([`Shape::Recorded`]),
    /// or none at all (plaintext).
    Deployment,
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A keyring ciphertext (binary) under the row's scope; re-encrypted after a rotation.
    Sealed,
    /// A keyring ciphertext stored as base64 text; re-encrypted after a rotation.
    SealedBase64,
    /// A keyring ciphertext in the append-only, hash-chained audit log: never re-encrypted
    /// (the hash covers it; old key versions are kept for reading), erased by deleting the
    /// subject's key.
    Chained,
    /// A keyring ciphertext under the deployment's compliance-record key (`system:audit`), in
    /// a register kept like the audit log (the breach register): never re-encrypted (old key
    /// versions are kept for reading, as for [`Shape::Chained`]), about no single person.
    Recorded,
    /// Sealed under a per-file content key (itself a [`Shape::Sealed`] column, which rotation
    /// re-encrypts); unaffected by data-key rotation.
    ContentKeyed,
    /// Sealed under a key derived from a one-time code only the browser holds.
    CodeKeyed,
    /// A keyed blind index (HMAC) of personal data: lookups only, not reversible, not under
    /// a data key.
    BlindIndex,
    /// Personal data stored in plaintext.
    Plain,
}

impl Shape {
    /// Whether a data-key rotation re-encrypts it.
    pub fn reencrypted(self) -> bool {
        matches!(self, Shape::Sealed | Shape::SealedBase64)
    }

    /// Whether the keyring encrypts it (under a data key).
    pub fn keyring(self) -> bool {
        matches!(
            self,
            Shape::Sealed | Shape::SealedBase64 | Shape::Chained | Shape::Recorded
        )
    }
}

/// Who the data is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubjectKind {
    /// The account holder (profile, credentials).
    Account,
    /// Whoever wrote it (messages, comments).
    Author,
    /// Whoever uploaded it (files).
    Uploader,
    /// Whoever created it (documents, versions, invitations).
    Creator,
    /// The person invited.
    Invitee,
    /// The person signed in (session details).
    SessionHolder,
    /// The person an audit entry is about.
    Actor,
    /// The workspace's members together (names, topics, roles): no single person.
    Members,
    /// The people a record is about, named in its free text if at all (a breach's
    /// description): no single account the row points to.
    Affected,
}

/// Whose data a column holds: the kind, and where the person's user id is (if anywhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The kind.
    pub kind: SubjectKind,
    /// Where the person's user id is, relative to the row.
    pub who: Option<Owner>,
}

/// How long a value is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// As long as the account exists.
    Account,
    /// As long as its workspace, channel or document keeps it (deleting those deletes it).
    Content,
    /// Until the session ends or expires.
    Session,
    /// Until the invitation is used up, revoked or expires.
    Invitation,
    /// The audit log's retention: append-only, made unreadable by erasing the subject's key.
    AuditLog,
    /// A compliance register kept as evidence (the breach register, GDPR Art. 33(5)): never
    /// deleted by retention or erasure, sealed under the deployment's compliance-record key.
    Register,
    /// Minutes: sign-in hand-offs, the unsent tail of an upload.
    Transient,
}

/// The place a ciphertext is bound to (its associated data, with the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// What the row id is made of (joined with `:`).
    pub row: &'static [KeyPart],
    /// The column name in the associated data (not always the SQL column's).
    pub column: &'static str,
}

/// One column of the inventory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// The table.
    pub table: &'static str,
    /// Its key (orders a walk over it).
    pub key: &'static [KeyPart],
    /// The SQL column.
    pub column: &'static str,
    /// What it holds.
    pub shape: Shape,
    /// For ciphertexts, the place they are bound to.
    pub place: Option<Place>,
    /// How the row's key scope is found.
    pub scope: ScopeRule,
    /// Whose data it is.
    pub subject: Subject,
    /// How long it is kept.
    pub retention: Retention,
}

/// A processing activity (GDPR Art. 30): a feature, what it processes personal data for, and
/// the columns it declares. The composition root lists them (`startup::activities`); the
/// inventory is their columns, and the record of processing activities is generated from them.
#[derive(Clone, Copy, Debug)]
pub struct Activity {
    /// The feature's name (`chat`, `documents`, ...).
    pub name: &'static str,
    /// What it processes personal data for, in a sentence.
    pub purpose: &'static str,
    /// Its columns (empty for processing that keeps nothing in the database of its own).
    pub columns: &'static [Column],
}

/// Every feature's columns, composed at start-up.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    columns: Vec<&'static Column>,
}

impl Inventory {
    /// The inventory of these features' declarations, in order.
    pub fn new(parts: &[&'static [Column]]) -> Inventory {
        Inventory {
            columns: parts.iter().flat_map(|p| p.iter()).collect(),
        }
    }

    /// Every column.
    pub fn columns(&self) -> &[&'static Column] {
        &self.columns
    }

    /// Whether the keyring may encrypt for the place (`table`, `column`).
    pub fn lists_place(&self, table: &str, column: &str) -> bool {
        self.columns.iter().any(|c| {
            c.table == table && c.place.is_some_and(|p| p.column == column) && c.shape.keyring()
        })
    }

    /// Every (table, column) the inventory names (keys, row ids, owners, scopes, subjects and
    /// the columns themselves), to check against the schema.
    pub fn named_columns(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        let owner = |table: &'static str, o: &Owner, out: &mut Vec<_>| {
            let mut at = table;
            for hop in o.via {
                out.push((at, hop.column));
                out.push((hop.table, "id"));
                at = hop.table;
            }
            out.push((at, o.column));
        };
        for c in &self.columns {
            out.push((c.table, c.column));
            out.extend(c.key.iter().map(|k| (c.table, k.column())));
            if let Some(p) = &c.place {
                out.extend(p.row.iter().map(|k| (c.table, k.column())));
            }
            match &c.scope {
                ScopeRule::Workspace(o) | ScopeRule::User(o) => owner(c.table, o, &mut out),
                ScopeRule::Stored(col) => out.push((c.table, col)),
                ScopeRule::Deployment => {}
            }
            if let Some(who) = &c.subject.who {
                owner(c.table, who, &mut out);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Inconsistencies a walk could not cope with: a re-encrypted column without a place or
    /// with a scope that names no owner, or two re-encrypted columns of one table that
    /// disagree on its key, row id or scope.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let walked: Vec<&Column> = self
            .columns
            .iter()
            .copied()
            .filter(|c| c.shape.reencrypted())
            .collect();
        for c in &walked {
            if c.place.is_none() {
                out.push(format!(
                    "{}.{} is a ciphertext without a place",
                    c.table, c.column
                ));
            }
            if !matches!(c.scope, ScopeRule::Workspace(_) | ScopeRule::User(_)) {
                out.push(format!("{}.{} names no scope owner", c.table, c.column));
            }
            if c.key.iter().any(|k| matches!(k, KeyPart::Bytes(_))) {
                out.push(format!("{}.{} has a binary key", c.table, c.column));
            }
            let first = walked.iter().find(|o| o.table == c.table).copied();
            if let Some(first) = first {
                let same_place_row = first.place.map(|p| p.row) == c.place.map(|p| p.row);
                if first.key != c.key || first.scope != c.scope || !same_place_row {
                    out.push(format!(
                        "{}.{} disagrees with {}.{} on key, row id or scope",
                        c.table, c.column, first.table, first.column
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.columns {
            if !seen.insert((c.table, c.column)) {
                out.push(format!("{}.{} is listed twice", c.table, c.column));
            }
        }
        out
    }
}
