//! Who may do what to a document.
//!
//! A member's access level on a document is the highest of: the document's general access
//! (what every workspace member gets), a grant to them or to their workspace role, what the
//! linked channel gives (its members edit; workspace members who can browse a linked public
//! channel view), `manage` for the creator, and `manage` for holders of
//! `documents.administer`. People outside the workspace, and members with no level, do not
//! see the document at all. System roles grant nothing here, as with private channels.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::store::documents::AccessFacts;

/// A document access level, ordered from least to most.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Read the document and see who is in it.
    View,
    /// View, and comment.
    Comment,
    /// Change the content, make and restore versions.
    Edit,
    /// Everything: rename, move, share, delete.
    Manage,
}

impl Level {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::View => "view",
            Level::Comment => "comment",
            Level::Edit => "edit",
            Level::Manage => "manage",
        }
    }

    /// The level with this stored name (`none` and unknown names are no level).
    pub fn parse(name: &str) -> Option<Level> {
        match name {
            "view" => Some(Level::View),
            "comment" => Some(Level::Comment),
            "edit" => Some(Level::Edit),
            "manage" => Some(Level::Manage),
            _ => None,
        }
    }

    /// The level an action on a document needs, if it is a document action.
    pub fn required_for(action: Action) -> Option<Level> {
        match action {
            Action::ViewDocument => Some(Level::View),
            Action::CommentDocument => Some(Level::Comment),
            Action::EditDocument => Some(Level::Edit),
            Action::ManageDocument => Some(Level::Manage),
            _ => None,
        }
    }
}

/// The level `facts` give their user, given the permissions of their workspace role.
pub fn level(
    facts: &AccessFacts,
    user: crate::domain::UserId,
    granted: &HashSet<Action>,
) -> Option<Level> {
    facts.workspace_role?;
    if facts.created_by == user || granted.contains(&Action::AdministerDocuments) {
        return Some(Level::Manage);
    }
    let mut best = Level::parse(&facts.general_access);
    let mut raise = |l: Option<Level>| {
        if l > best {
            best = l;
        }
    };
    raise(facts.user_grant.as_deref().and_then(Level::parse));
    raise(facts.role_grant.as_deref().and_then(Level::parse));
    if facts.channel_member {
        raise(Some(Level::Edit));
    } else if facts.channel_kind.as_deref() == Some("public")
        && granted.contains(&Action::ReadChannels)
    {
        raise(Some(Level::View));
    }
    best
}
