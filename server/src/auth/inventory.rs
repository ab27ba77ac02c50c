//! Sessions' entries in the data inventory ([`crate::inventory`]): where a session
//! began (User-Agent, address) and the identity provider's ID token kept for sign-out, under
//! the signed-in user's key.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];

const fn session(column: &'static str, place: &'static str, shape: Shape) -> Column {
    Column {
        table: "sessions",
        key: ID,
        column,
        shape,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::User(Owner::at("user_id")),
        subject: Subject {
            kind: SubjectKind::SessionHolder,
            who: Some(Owner::at("user_id")),
        },
        retention: Retention::Session,
    }
}

/// Every session column holding ciphertext or personal data.
pub const INVENTORY: &[Column] = &[
    session("user_agent_enc", "user_agent", Shape::Sealed),
    session("ip_enc", "ip", Shape::Sealed),
    session("sso_id_token", "sso_id_token", Shape::SealedBase64),
    Column {
        place: None,
        scope: ScopeRule::Deployment,
        ..session("sso_sid", "sso_sid", Shape::Plain)
    },
];
