//! The actions a role may grant. Their names are what roles store.

use serde::Serialize;

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),* $(,)?) => {
        /// Something an actor may be allowed to do; stored by name in role permission sets.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        pub enum Action {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[$(Action::$variant,)*];

            /// The stored name, such as `members.invite`.
            pub fn as_str(self) -> &'static str {
                match self { $(Action::$variant => $name,)* }
            }

            /// The action with this stored name.
            pub fn parse(name: &str) -> Option<Action> {
                match name { $($name => Some(Action::$variant),)* _ => None }
            }
        }
    };
}

actions! {
    /// Create workspaces (system).
    CreateWorkspace = "workspaces.create",
    /// List every account (system).
    ReadUsers = "users.read",
    /// Create accounts, change system roles, disable accounts (system).
    ManageUsers = "users.manage",
    /// Read the audit log and export it (system).
    ReadAudit = "audit.read",
    /// Rotate encryption and audit signing keys and see their status (system).
    ManageKeys = "keys.manage",
    /// Override workspaces' compliance policies and reload the policy modules (system).
    ManagePolicies = "policies.manage",
    /// See an account's profile (self-service).
    ReadAccount = "account.read",
    /// List and revoke an account's sessions (self-service).
    ManageSessions = "account.sessions",
    /// Change one's own display name, out-of-office period and password (self-service).
    UpdateAccount = "account.update",
    /// See a workspace and its roles.
    ReadWorkspace = "workspace.read",
    /// Rename a workspace.
    UpdateWorkspace = "workspace.update",
    /// See who belongs to a workspace.
    ReadMembers = "members.read",
    /// Invite people to a workspace and manage invitations.
    InviteMembers = "members.invite",
    /// Change members' roles and remove members.
    ManageMembers = "members.manage",
    /// Grant or take away the owner role.
    ManageOwners = "owners.manage",
    /// Define custom roles.
    ManageRoles = "roles.manage",
    /// Browse and join public channels.
    ReadChannels = "channels.read",
    /// Create channels and conversations.
    CreateChannels = "channels.create",
    /// Rename, archive and moderate channels, remove their members.
    ManageChannels = "channels.manage",
    /// Post, edit own and react to messages in channels one belongs to.
    PostMessages = "messages.post",
    /// Delete and pin others' messages (and delete others' files).
    ModerateMessages = "messages.moderate",
    /// Create documents.
    CreateDocuments = "documents.create",
    /// Full control of every document in the workspace, whoever shared it.
    AdministerDocuments = "documents.administer",
    /// Open and read a document (a document access level, not a role permission).
    ViewDocument = "document.view",
    /// Comment on a document (an access level).
    CommentDocument = "document.comment",
    /// Change a document's content and make versions (an access level).
    EditDocument = "document.edit",
    /// Rename, move, share and delete a document (an access level).
    ManageDocument = "document.manage",
    /// Share files in channels one belongs to.
    UploadFiles = "files.upload",
    /// Place, list and release a workspace's legal holds (workspace admins; compliance
    /// officers everywhere, through their system role).
    ManageLegalHolds = "legal_holds.manage",
    /// Release a legal hold (compliance officers and system administrators only: the
    /// workspace's own administrators may be its custodians).
    ReleaseLegalHolds = "legal_holds.release",
    /// Read the content legal holds keep, what its authors deleted included, for eDiscovery
    /// (compliance officers and system administrators; not a workspace role, so no one
    /// reads a channel this way through a role they can grant themselves).
    ReadHeldContent = "ediscovery.read",
    /// Export everything Concord holds about a person (GDPR Art. 15 and 20): compliance
    /// officers and system administrators for anyone, with a reason; everyone for themself.
    ExportPersonalData = "data_subjects.export",
    /// Erase a person (GDPR Art. 17): their account emptied, their key destroyed and their
    /// content deleted or left without an author, as each workspace's policy says (compliance
    /// officers and system administrators; not a workspace role, and not for oneself).
    ErasePersonalData = "data_subjects.erase",
    /// Correct someone's personal data (display name, email) on their request (GDPR Art.
    /// 16), with a reason the audit log keeps: compliance officers and system administrators.
    /// People change their own display name without it.
    RectifyPersonalData = "data_subjects.rectify",
    /// Restrict the processing of a person's data and lift the restriction (GDPR Art. 18),
    /// with a reason: compliance officers and system administrators; not a workspace role.
    RestrictProcessing = "data_subjects.restrict",
    /// Keep the register of data-subject requests (GDPR Art. 12): record people's requests,
    /// extend, complete and refuse them (compliance officers and system administrators; not
    /// a workspace role).
    ManageDataSubjects = "data_subjects.manage",
    /// Ask for emergency access (break-glass) to read a channel of the workspace one cannot
    /// otherwise read, for a limited time, with a reason (workspace owners and admins;
    /// compliance officers everywhere, through their system role).
    UseBreakGlass = "break_glass.use",
    /// Read the record of processing activities (GDPR Art. 30), generated from the policy
    /// modules and the data inventory (compliance officers and system administrators; not a
    /// workspace role).
    ReadProcessingRecord = "processing_record.read",
    /// Keep the breach register (GDPR Art. 33 and 34): record breaches, follow their
    /// notification deadlines and report who and what they affected from the audit log
    /// (compliance officers and system administrators; not a workspace role).
    ManageBreaches = "breaches.manage",
    /// Deploy workflow processes, see and cancel every instance of the workspace, handle
    /// their incidents and complete tasks nobody in particular is assigned (workspace owners
    /// and admins).
    ManageWorkflows = "workflows.manage",
    /// Start the workspace's workflow processes, follow the instances one started and send
    /// messages to waiting instances (members).
    StartWorkflows = "workflows.start",
}

impl Action {
    /// Whether the owner of an account may do this to their own account without a role.
    pub fn self_service(self) -> bool {
        matches!(
            self,
            Action::ReadAccount
                | Action::ManageSessions
                | Action::UpdateAccount
                | Action::ExportPersonalData
        )
    }

    /// Whether this action applies inside a workspace (and so may appear in workspace roles).
    pub fn workspace_scoped(self) -> bool {
        matches!(
            self,
            Action::ReadWorkspace
                | Action::UpdateWorkspace
                | Action::ReadMembers
                | Action::InviteMembers
                | Action::ManageMembers
                | Action::ManageOwners
                | Action::ManageRoles
                | Action::ReadChannels
                | Action::CreateChannels
                | Action::ManageChannels
                | Action::PostMessages
                | Action::ModerateMessages
                | Action::CreateDocuments
                | Action::AdministerDocuments
                | Action::UploadFiles
                | Action::ManageLegalHolds
                | Action::UseBreakGlass
                | Action::ManageWorkflows
                | Action::StartWorkflows
        )
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
