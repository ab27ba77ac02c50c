//! The built-in roles, seeded into the database at every start.
//!
//! Built-in roles cannot be edited through the API; their permission sets follow the code,
//! so an upgrade that adds an action grants it to the right built-in roles.

use uuid::{uuid, Uuid};

use super::Action::{self, *};
use crate::domain::RoleId;

/// Where a role applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Held by a user for the whole deployment.
    System,
    /// Held by a member within one workspace.
    Workspace,
}

impl Scope {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::System => "system",
            Scope::Workspace => "workspace",
        }
    }
}

/// A built-in role: fixed id, name, scope and actions.
pub struct BuiltinRole {
    /// Stable id, the same in every deployment.
    pub id: RoleId,
    /// Name users see and the API accepts.
    pub name: &'static str,
    /// System or workspace.
    pub scope: Scope,
    /// What it is for.
    pub description: &'static str,
    /// What it grants.
    pub actions: &'static [Action],
}

const fn id(u: Uuid) -> RoleId {
    RoleId(u)
}

/// Runs the deployment: every action everywhere.
pub const SYSTEM_ADMIN: RoleId = id(uuid!("00000000-0000-7000-8000-000000000001"));
/// Reads audit trails and account lists.
pub const COMPLIANCE_OFFICER: RoleId = id(uuid!("00000000-0000-7000-8000-000000000002"));
/// Owns a workspace.
pub const OWNER: RoleId = id(uuid!("00000000-0000-7000-8000-000000000010"));
/// Administers a workspace.
pub const ADMIN: RoleId = id(uuid!("00000000-0000-7000-8000-000000000011"));
/// An ordinary member.
pub const MEMBER: RoleId = id(uuid!("00000000-0000-7000-8000-000000000012"));
/// A guest with limited reach.
pub const GUEST: RoleId = id(uuid!("00000000-0000-7000-8000-000000000013"));
/// A bot account's role in a workspace.
pub const BOT: RoleId = id(uuid!("00000000-0000-7000-8000-000000000014"));

/// Every built-in role.
pub const ROLES: &[BuiltinRole] = &[
    BuiltinRole {
        id: SYSTEM_ADMIN,
        name: "system_admin",
        scope: Scope::System,
        description: "Administers the deployment",
        actions: Action::ALL,
    },
    BuiltinRole {
        id: COMPLIANCE_OFFICER,
        name: "compliance_officer",
        scope: Scope::System,
        description: "Searches and exports audit trails, manages legal holds and reads what they keep, answers data-subject requests, keeps the record of processing and the breach register",
        actions: &[
            ReadAudit,
            ReadUsers,
            ReadAccount,
            ManageLegalHolds,
            ReleaseLegalHolds,
            ReadHeldContent,
            ExportPersonalData,
            ErasePersonalData,
            RectifyPersonalData,
            RestrictProcessing,
            ManageDataSubjects,
            UseBreakGlass,
            ReadProcessingRecord,
            ManageBreaches,
        ],
    },
    BuiltinRole {
        id: OWNER,
        name: "owner",
        scope: Scope::Workspace,
        description: "Owns the workspace",
        actions: &[
            ReadWorkspace,
            UpdateWorkspace,
            ReadMembers,
            InviteMembers,
            ManageMembers,
            ManageOwners,
            ManageRoles,
            ReadChannels,
            CreateChannels,
            ManageChannels,
            PostMessages,
            ModerateMessages,
            CreateDocuments,
            AdministerDocuments,
            UploadFiles,
            ManageLegalHolds,
            UseBreakGlass,
            ManageWorkflows,
            StartWorkflows,
        ],
    },
    BuiltinRole {
        id: ADMIN,
        name: "admin",
        scope: Scope::Workspace,
        description: "Administers the workspace",
        actions: &[
            ReadWorkspace,
            UpdateWorkspace,
            ReadMembers,
            InviteMembers,
            ManageMembers,
            ManageRoles,
            ReadChannels,
            CreateChannels,
            ManageChannels,
            PostMessages,
            ModerateMessages,
            CreateDocuments,
            AdministerDocuments,
            UploadFiles,
            ManageLegalHolds,
            UseBreakGlass,
            ManageWorkflows,
            StartWorkflows,
        ],
    },
    BuiltinRole {
        id: MEMBER,
        name: "member",
        scope: Scope::Workspace,
        description: "Takes part in the workspace",
        actions: &[
            ReadWorkspace,
            ReadMembers,
            ReadChannels,
            CreateChannels,
            PostMessages,
            CreateDocuments,
            UploadFiles,
            StartWorkflows,
        ],
    },
    BuiltinRole {
        id: GUEST,
        name: "guest",
        scope: Scope::Workspace,
        description: "Takes part where invited",
        actions: &[ReadWorkspace, PostMessages, UploadFiles],
    },
    BuiltinRole {
        id: BOT,
        name: "bot",
        scope: Scope::Workspace,
        description: "An integration acting in the workspace",
        actions: &[
            ReadWorkspace,
            ReadMembers,
            ReadChannels,
            PostMessages,
            UploadFiles,
        ],
    },
];

/// The built-in role with this name, if any.
pub fn by_name(name: &str) -> Option<&'static BuiltinRole> {
    ROLES.iter().find(|r| r.name == name)
}
