//! Single sign-on's entries in the data inventory ([`crate::inventory`]): the link
//! between an account and its identity at a provider, and the short-lived hand-off of a
//! session to the browser that began the sign-in.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const IDENTITY_KEY: &[KeyPart] = &[KeyPart::Text("provider"), KeyPart::Text("subject")];
const HANDOFF_KEY: &[KeyPart] = &[KeyPart::Bytes("code_hash")];

const fn identity(column: &'static str) -> Column {
    Column {
        table: "sso_identities",
        key: IDENTITY_KEY,
        column,
        shape: Shape::Plain,
        place: None,
        scope: ScopeRule::Deployment,
        subject: Subject {
            kind: SubjectKind::Account,
            who: Some(Owner::at("user_id")),
        },
        retention: Retention::Account,
    }
}

/// Every SSO column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    identity("subject"),
    identity("email"),
    Column {
        table: "sso_handoffs",
        key: HANDOFF_KEY,
        column: "sealed_refresh",
        shape: Shape::CodeKeyed,
        place: Some(Place {
            row: &[KeyPart::Text("provider")],
            column: "sealed_refresh",
        }),
        scope: ScopeRule::Deployment,
        subject: Subject {
            kind: SubjectKind::SessionHolder,
            who: Some(Owner::at("user_id")),
        },
        retention: Retention::Transient,
    },
];
