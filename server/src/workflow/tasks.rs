//! People working a task together: handing it to someone else ([`WorkflowService::reassign`]),
//! talking about it ([`WorkflowService::comments`], [`WorkflowService::comment`]) and who it
//! may go to ([`WorkflowService::task_candidates`]).
//!
//! Who may do what:
//! - reassign: the task's assignee, to someone its group names (a holder of its role, a member
//!   of its channel); someone with `workflows.manage`, to any active member of the workspace.
//!   The new holder is told as an assignee is (the workflow bot's notice), the old one's inbox
//!   drops it (`workflow_task_changed`), its old notices lose their buttons, and a routed task
//!   records that a person moved it (the learned router learns from whoever completes it, the
//!   first assignee being kept as the one routing chose). Audited as `workflow.task_reassigned`.
//! - comments: whoever may see the task (its assignee, the people its role or channel names,
//!   `workflows.manage`) reads them and writes more, sealed under the workspace's key. Writing
//!   is audited as `workflow.task_commented` (ids only, never the text).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::WorkflowService;
use crate::audit::{Event, Outcome};
use crate::domain::{ParseError, UserId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::routing::{self as rs, Group};
use crate::store::task_comments::{self as comments, CommentRecord};
use crate::store::workflows::{self as wf, TaskRecord};
use crate::store::{Conn, Tx};

/// The longest comment (or reassignment note), in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;
/// How much of a reassignment's note the new holder's message quotes.
const NOTE_IN_NOTICE_CHARS: usize = 500;
/// The most comments one read answers (the latest).
const MAX_COMMENTS: i64 = 500;

/// Handing a task to someone else.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"to": "01939e4e-0000-7000-8000-000000000002", "note": "You know this customer"}))]
pub struct ReassignTask {
    /// The person who gets it: an active member of the workspace its group names (anyone
    /// active in the workspace, for `workflows.manage`).
    pub to: UserId,
    /// Why, kept as a comment on the task and told to the new holder (up to 4,000
    /// characters).
    #[serde(default)]
    pub note: Option<String>,
}

/// A comment to add.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"text": "Waiting for the receipt from the hotel."}))]
pub struct NewTaskComment {
    /// The text (1 to 4,000 characters).
    pub text: String,
}

/// A comment on a task.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskCommentView {
    /// Its id.
    pub id: Uuid,
    /// The task.
    pub task_id: String,
    /// Who wrote it.
    pub author_id: UserId,
    /// What they wrote.
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A task's comments.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskCommentList {
    /// Oldest first.
    pub comments: Vec<TaskCommentView>,
}

/// The people a task may be handed to.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TaskCandidates {
    /// Active members of the workspace, in id order (the caller and the current holder left
    /// out).
    pub people: Vec<UserId>,
}

impl WorkflowService {
    /// Hands an open task to someone else (see the module's rules). Answers the task as it is
    /// now.
    #[tracing::instrument(skip(self, actor, how), fields(actor = ?actor.user_id()))]
    pub async fn reassign(
        &self,
        actor: &Actor,
        task_id: String,
        how: ReassignTask,
    ) -> Result<super::TaskView, Error> {
        let note = match how.note.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(n) => Some(comment_text("note", n)?),
        };
        let to = how.to;
        let this = self.clone();
        let actor = actor.clone();
        let view = self
            .store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (task, user, _) = super::task_of_member(tx, &actor, &task_id).await?;
                    let ws = task.workspace_id;
                    let manager = crate::rbac::allows(
                        &mut tx.conn(),
                        &actor,
                        Action::ManageWorkflows,
                        Resource::Workspace(ws),
                    )
                    .await?;
                    this.admit(
                        tx,
                        &actor,
                        &task,
                        manager || task.assignee == Some(user),
                        "workflow.task_reassigned",
                        "only the task's assignee, or someone who manages the workspace's workflows, hands it on",
                    )
                    .await?;
                    if task.assignee == Some(to) {
                        return Err(Error::conflict(
                            "already_assigned",
                            "the task is already theirs",
                        ));
                    }
                    let target = crate::store::workspaces::member(&mut tx.conn(), ws, to).await?;
                    let active = match &target {
                        Some(_) => super::routing::is_active_person(tx, to).await?,
                        None => false,
                    };
                    let Some(target) = target.filter(|_| active) else {
                        return Err(ParseError::new(
                            "to",
                            "must be an active member of the task's workspace",
                        )
                        .into());
                    };
                    // A task given to its holder alone (no role, no channel) is theirs to hand
                    // to anyone active here; one shared with a group stays within it.
                    if !manager
                        && !groups_of(&task).is_empty()
                        && !this.in_group(tx, &task, &target).await?
                    {
                        return Err(ParseError::new(
                            "to",
                            "must hold the task's role or be in its channel",
                        )
                        .into());
                    }
                    let now = Utc::now();
                    let instance = wf::instance(&mut tx.conn(), task.instance_id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    // A routed task records that a person moved it.
                    let routing = match this.routing_of(&mut tx.conn(), &task).await? {
                        Some(mut record) => {
                            record.outcome = "reassigned".into();
                            record.explanation = if manager && task.assignee != Some(user) {
                                "reassigned by an operator".into()
                            } else {
                                "reassigned by its assignee".into()
                            };
                            record.by_model = false;
                            record.waiting_since = None;
                            record.routed_at = now;
                            Some(this.seal_routing(tx, ws, &task.id, &record).await?)
                        }
                        None => None,
                    };
                    rs::assign(
                        &mut tx.conn(),
                        &task.id,
                        &rs::Assignment {
                            assignee: Some(to),
                            candidate_role: task.candidate_role,
                            candidate_channel: task.candidate_channel,
                            claimed_at: None,
                            escalation_level: task.escalation_level,
                            routing,
                        },
                    )
                    .await?;
                    // Given to a person, a task nobody held is picked up (for the dashboard's
                    // waiting and working times); one already picked up keeps its time.
                    super::facts::task_picked(&mut tx.conn(), &task.id, now).await?;
                    if let Some(text) = &note {
                        this.insert_comment(tx, &task, user, text, now).await?;
                    }
                    let event = Event::by(&actor, "workflow.task_reassigned", Outcome::Allowed)
                        .target("workflow_task", &task.id)
                        .workspace(ws)
                        .details(json!({
                            "instance_id": task.instance_id,
                            "element": task.element,
                            "from": task.assignee,
                            "to": to,
                            "note": note.is_some(),
                        }));
                    this.auditor().record(tx, event).await?;
                    let changed = wf::task(&mut tx.conn(), &task.id)
                        .await?
                        .ok_or(Error::NotFound("task"))?;
                    let before: Vec<UserId> = task.assignee.into_iter().collect();
                    super::apply::task_changed_for(tx, &changed, "reassigned", &before).await?;
                    // The whole note is the task's first comment; the message quotes its start.
                    let why = match &note {
                        Some(n) if n.chars().count() > NOTE_IN_NOTICE_CHARS => {
                            let start: String = n.chars().take(NOTE_IN_NOTICE_CHARS).collect();
                            format!("<@{user}> handed it to you: {start}… (the rest is in its comments)")
                        }
                        Some(n) => format!("<@{user}> handed it to you: {n}"),
                        None => format!("<@{user}> handed it to you"),
                    };
                    this.tell_assignee(tx, &instance, &changed, to, &why).await?;
                    this.notices_changed(
                        tx,
                        &instance,
                        &task.id,
                        format!("Reassigned to <@{to}> by <@{user}>."),
                        true,
                        now,
                    )
                    .await?;
                    this.task_view(&mut tx.conn(), &changed, &instance.process_id)
                        .await
                })
            })
            .await?;
        self.wake();
        Ok(view)
    }

    /// The people `actor` may hand a task to: its group's active people (all the workspace's
    /// active people, for `workflows.manage` or a task given to its holder alone), without
    /// the caller and the holder.
    pub async fn task_candidates(
        &self,
        actor: &Actor,
        task_id: &str,
    ) -> Result<TaskCandidates, Error> {
        let mut conn = self.store().reader().await?;
        let (task, user, manager) = self.visible_task(&mut conn.conn(), actor, task_id).await?;
        let may_hand_on = manager || task.assignee == Some(user);
        let ws = task.workspace_id;
        let mut people = if !may_hand_on {
            Vec::new()
        } else if manager || groups_of(&task).is_empty() {
            rs::active_people(&mut conn.conn(), ws).await?
        } else {
            let mut out = Vec::new();
            for group in groups_of(&task) {
                out.extend(
                    rs::group(&mut conn.conn(), ws, group)
                        .await?
                        .into_iter()
                        .map(|m| m.user_id),
                );
            }
            out
        };
        people.sort();
        people.dedup();
        people.retain(|p| *p != user && Some(*p) != task.assignee);
        Ok(TaskCandidates { people })
    }

    /// A task's comments, for those who may see the task.
    pub async fn comments(&self, actor: &Actor, task_id: &str) -> Result<TaskCommentList, Error> {
        let mut conn = self.store().reader().await?;
        let (task, ..) = self.visible_task(&mut conn.conn(), actor, task_id).await?;
        let rows = comments::of_task(&mut conn.conn(), &task.id, MAX_COMMENTS).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(self.comment_view(&mut conn.conn(), r).await?);
        }
        Ok(TaskCommentList { comments: out })
    }

    /// Adds a comment to a task, for those who may see it. The people the task names hear of
    /// it (`workflow_task_changed` with status `commented`).
    #[tracing::instrument(skip(self, actor, new), fields(actor = ?actor.user_id()))]
    pub async fn comment(
        &self,
        actor: &Actor,
        task_id: String,
        new: NewTaskComment,
    ) -> Result<TaskCommentView, Error> {
        let text = comment_text("text", new.text.trim())?;
        let this = self.clone();
        let actor = actor.clone();
        self.store()
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (task, user, _) =
                        match this.visible_task(&mut tx.conn(), &actor, &task_id).await {
                            Ok(seen) => seen,
                            Err(Refused::NotParticipant(task)) => {
                                let event =
                                    Event::by(&actor, "workflow.task_commented", Outcome::Denied)
                                        .target("workflow_task", &task.id)
                                        .workspace(task.workspace_id);
                                this.auditor().record_kept(tx, event).await?;
                                return Err(Refused::NotParticipant(task).into());
                            }
                            Err(other) => return Err(other.into()),
                        };
                    let record = this
                        .insert_comment(tx, &task, user, &text, Utc::now())
                        .await?;
                    let event = Event::by(&actor, "workflow.task_commented", Outcome::Allowed)
                        .target("workflow_task", &task.id)
                        .workspace(task.workspace_id)
                        .details(json!({
                            "instance_id": task.instance_id,
                            "element": task.element,
                            "comment_id": record.id,
                        }));
                    this.auditor().record(tx, event).await?;
                    super::apply::task_changed(tx, &task, "commented").await?;
                    Ok(TaskCommentView {
                        id: record.id,
                        task_id: record.task_id,
                        author_id: record.author_id,
                        text,
                        created_at: record.created_at,
                    })
                })
            })
            .await
    }

    /// Seals and stores a comment by `author` on `task`.
    async fn insert_comment(
        &self,
        tx: &mut Tx,
        task: &TaskRecord,
        author: UserId,
        text: &str,
        at: DateTime<Utc>,
    ) -> Result<CommentRecord, Error> {
        let id = Uuid::now_v7();
        let body = self
            .seal(
                tx,
                task.workspace_id,
                "workflow_task_comments",
                &id.to_string(),
                "body",
                text.as_bytes(),
            )
            .await?;
        let record = CommentRecord {
            id,
            task_id: task.id.clone(),
            workspace_id: task.workspace_id,
            author_id: author,
            body,
            created_at: at,
        };
        comments::insert(&mut tx.conn(), &record).await?;
        Ok(record)
    }

    async fn comment_view(
        &self,
        conn: &mut Conn<'_>,
        r: &CommentRecord,
    ) -> Result<TaskCommentView, Error> {
        let text = self
            .open(
                conn,
                r.workspace_id,
                "workflow_task_comments",
                &r.id.to_string(),
                "body",
                &r.body,
            )
            .await?;
        Ok(TaskCommentView {
            id: r.id,
            task_id: r.task_id.clone(),
            author_id: r.author_id,
            text: String::from_utf8_lossy(&text).into_owned(),
            created_at: r.created_at,
        })
    }

    /// The task `task_id` if `actor` may see it (its assignee, someone its role or channel
    /// names, `workflows.manage` in its workspace), with the actor's id and whether they
    /// manage the workspace's workflows. Someone outside its workspace is not told it exists.
    async fn visible_task(
        &self,
        conn: &mut Conn<'_>,
        actor: &Actor,
        task_id: &str,
    ) -> Result<(TaskRecord, UserId, bool), Refused> {
        let hidden = || {
            crate::rbac::decide_assignment(actor, false);
            Refused::Error(Error::NotFound("task"))
        };
        let Some(task) = wf::task(conn, task_id).await? else {
            return Err(hidden());
        };
        let Some(user) = actor.user_id() else {
            return Err(hidden());
        };
        let Some(member) = crate::store::workspaces::member(conn, task.workspace_id, user).await?
        else {
            return Err(hidden());
        };
        let manager = crate::rbac::allows(
            conn,
            actor,
            Action::ManageWorkflows,
            Resource::Workspace(task.workspace_id),
        )
        .await?;
        let sees =
            manager || task.assignee == Some(user) || names_member(conn, &task, &member).await?;
        crate::rbac::decide_assignment(actor, sees);
        if !sees {
            return Err(Refused::NotParticipant(Box::new(task)));
        }
        Ok((task, user, manager))
    }
}

/// Why [`WorkflowService::visible_task`] refused: hidden (no such task in the actor's
/// workspaces), or the task, which the actor may not see.
enum Refused {
    Error(Error),
    NotParticipant(Box<TaskRecord>),
}

impl From<Error> for Refused {
    fn from(err: Error) -> Self {
        Refused::Error(err)
    }
}

impl From<crate::store::StoreError> for Refused {
    fn from(err: crate::store::StoreError) -> Self {
        Refused::Error(err.into())
    }
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Error(err) => err,
            Refused::NotParticipant(_) => Error::denied(
                "not_a_participant",
                "only the people this task names, and those who manage the workspace's workflows, see it",
            ),
        }
    }
}

/// Whether the task's role or channel names the member (whether or not someone holds it).
async fn names_member(
    conn: &mut Conn<'_>,
    task: &TaskRecord,
    member: &crate::store::workspaces::MemberRecord,
) -> Result<bool, Error> {
    if task.candidate_role.is_some() && task.candidate_role == Some(member.role_id) {
        return Ok(true);
    }
    if let Some(channel) = task.candidate_channel {
        return Ok(
            crate::store::channels::membership(conn, channel, member.user_id)
                .await?
                .is_some(),
        );
    }
    Ok(false)
}

/// The groups a task names.
fn groups_of(task: &TaskRecord) -> Vec<Group> {
    let mut out = Vec::new();
    if let Some(role) = task.candidate_role {
        out.push(Group::Role(role));
    }
    if let Some(channel) = task.candidate_channel {
        out.push(Group::Channel(channel));
    }
    out
}

/// A comment's text, checked: not empty, at most [`MAX_COMMENT_CHARS`] characters.
fn comment_text(field: &'static str, text: &str) -> Result<String, Error> {
    let n = text.chars().count();
    if n == 0 {
        return Err(ParseError::new(field, "must not be empty").into());
    }
    if n > MAX_COMMENT_CHARS {
        return Err(ParseError::new(field, "must be at most 4000 characters").into());
    }
    Ok(text.to_owned())
}
