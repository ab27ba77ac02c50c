//! The accounts' entries in the data inventory ([`crate::inventory`]).

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];
const ACCOUNT: Subject = Subject {
    kind: SubjectKind::Account,
    who: Some(Owner::at("id")),
};

const fn profile(column: &'static str, place: &'static str) -> Column {
    Column {
        table: "users",
        key: ID,
        column,
        shape: Shape::Sealed,
        place: Some(Place {
            row: ID,
            column: place,
        }),
        scope: ScopeRule::User(Owner::at("id")),
        subject: ACCOUNT,
        retention: Retention::Account,
    }
}

const fn plain(column: &'static str, shape: Shape) -> Column {
    Column {
        table: "users",
        key: ID,
        column,
        shape,
        place: None,
        scope: ScopeRule::Deployment,
        subject: ACCOUNT,
        retention: Retention::Account,
    }
}

/// Every account column holding personal data.
pub const INVENTORY: &[Column] = &[
    profile("email_enc", "email"),
    profile("display_name_enc", "display_name"),
    profile("out_of_office_enc", "out_of_office"),
    plain("email_index", Shape::BlindIndex),
    plain("password_hash", Shape::Plain),
];
