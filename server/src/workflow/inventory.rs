//! Workflows' entries in the data inventory ([`crate::inventory`]): model sources, models and version notes,
//! instance states (the variables), history steps, task details, queued jobs (a call's URL
//! and body, a post's text), incident messages, triggers' settings (a webhook's secret) and
//! task forms and decision tables (source and parsed table), how each task was routed,
//! people's routing attributes and the learned routers, and comments on tasks,
//! each sealed under its workspace's key.
//! A waiting instance's correlation key stays readable (messages are matched on it). They
//! are the workspace's content: kept as long as the workspace keeps them.

use crate::inventory::{
    Column, KeyPart, Owner, Place, Retention, ScopeRule, Shape, Subject, SubjectKind,
};

const ID: &[KeyPart] = &[KeyPart::Id("id")];
const TEXT_ID: &[KeyPart] = &[KeyPart::Text("id")];
const STEP: &[KeyPart] = &[KeyPart::Id("instance_id"), KeyPart::Int("step")];
const PERSON: &[KeyPart] = &[KeyPart::Id("workspace_id"), KeyPart::Id("user_id")];

const fn sealed(
    table: &'static str,
    key: &'static [KeyPart],
    column: &'static str,
    subject: Subject,
) -> Column {
    Column {
        table,
        key,
        column,
        shape: Shape::Sealed,
        place: Some(Place { row: key, column }),
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject,
        retention: Retention::Content,
    }
}

const fn creator(column: &'static str) -> Subject {
    Subject {
        kind: SubjectKind::Creator,
        who: Some(Owner::at(column)),
    }
}

const MEMBERS: Subject = Subject {
    kind: SubjectKind::Members,
    who: None,
};

/// Every workflow column holding ciphertext.
pub const INVENTORY: &[Column] = &[
    sealed("workflow_deployments", ID, "source", creator("deployed_by")),
    sealed("workflow_deployments", ID, "model", creator("deployed_by")),
    sealed("workflow_deployments", ID, "note", creator("deployed_by")),
    sealed("workflow_instances", ID, "state", creator("started_by")),
    Column {
        scope: ScopeRule::Workspace(Owner::via(
            &[crate::inventory::Hop {
                column: "instance_id",
                table: "workflow_instances",
            }],
            "workspace_id",
        )),
        ..sealed("workflow_steps", STEP, "detail", creator("actor"))
    },
    sealed("workflow_tasks", TEXT_ID, "detail", MEMBERS),
    // How a task was routed: the routing block, the explanation (counts, no names), the
    // learned router's version and confidence.
    sealed("workflow_tasks", TEXT_ID, "routing", MEMBERS),
    // What routing knows about a person (skills, levels, capacity, manager, days out of
    // office): theirs, exported with their data and deleted with their account.
    Column {
        subject: Subject {
            kind: SubjectKind::Account,
            who: Some(Owner::at("user_id")),
        },
        retention: Retention::Account,
        ..sealed("person_attributes", PERSON, "detail", MEMBERS)
    },
    // A learned router: weights over hashed words, and the ids of the people it routes to;
    // the workspace's, no one person's.
    sealed("routing_models", ID, "model", MEMBERS),
    sealed("workflow_jobs", TEXT_ID, "payload", MEMBERS),
    // What someone wrote on a task: theirs (exported with their data); deleted with the task,
    // or by an erasure whose workspace deletes a person's content.
    sealed(
        "workflow_task_comments",
        ID,
        "body",
        Subject {
            kind: SubjectKind::Author,
            who: Some(Owner::at("author_id")),
        },
    ),
    sealed("workflow_incidents", TEXT_ID, "message", MEMBERS),
    sealed("workflow_triggers", ID, "config", creator("created_by")),
    sealed("workflow_forms", ID, "schema", creator("deployed_by")),
    sealed("workflow_decisions", ID, "source", creator("deployed_by")),
    sealed(
        "workflow_decisions",
        ID,
        "definition",
        creator("deployed_by"),
    ),
    // A waiting instance's correlation key (an order number, a ticket id, possibly an email
    // address), kept readable so messages find the instance; gone when the wait ends.
    Column {
        table: "workflow_subscriptions",
        key: TEXT_ID,
        column: "correlation",
        shape: Shape::Plain,
        place: None,
        scope: ScopeRule::Workspace(Owner::at("workspace_id")),
        subject: MEMBERS,
        retention: Retention::Content,
    },
];
