//! Comments on documents: listing, adding, resolving and deleting them (people with
//! `comment` access); their text and anchors are stored encrypted.

use chrono::Utc;

use super::{user_of, CommentView, DocService};
use crate::audit::{Event, Outcome};
use crate::crypto::{Aad, Scope};
use crate::domain::{CommentId, DocumentId, WorkspaceId};
use crate::error::Error;
use crate::events::{DocumentChange, DomainEvent};
use crate::rbac::{Action, Actor, Resource};
use crate::store::documents::{CommentRecord, DocumentRecord};
use crate::store::{documents, Conn, Tx};

/// Longest comment, in characters.
const MAX_COMMENT: usize = 4000;
/// Largest comment anchor (a Yjs relative position as JSON), in bytes.
const MAX_ANCHOR: usize = 2048;

fn comment_aad<'a>(row: &'a str, column: &'a str) -> Aad<'a> {
    Aad {
        table: "document_comments",
        row,
        column,
    }
}

impl DocService {
    async fn comment_view(
        &self,
        conn: &mut Conn<'_>,
        workspace: WorkspaceId,
        c: CommentRecord,
    ) -> Result<CommentView, Error> {
        let scope = Scope::Workspace(workspace);
        let row = c.id.to_string();
        let text = self
            .keyring
            .decrypt_text(conn, &scope, comment_aad(&row, "body"), &c.body)
            .await?;
        let anchor = match &c.anchor {
            Some(a) => {
                let json = self
                    .keyring
                    .decrypt(conn, &scope, comment_aad(&row, "anchor"), a)
                    .await?;
                serde_json::from_slice(&json).ok()
            }
            None => None,
        };
        Ok(CommentView {
            id: c.id,
            author_id: c.author_id,
            text,
            anchor,
            created_at: c.created_at,
            resolved_at: c.resolved_at,
        })
    }

    /// The document's comments, oldest first.
    pub async fn comments(
        &self,
        actor: &Actor,
        doc: DocumentId,
    ) -> Result<Vec<CommentView>, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        let (record, _) = self
            .readable(&mut conn, actor, doc, Action::ViewDocument)
            .await?;
        let mut out = Vec::new();
        for c in documents::comments(&mut conn, doc).await? {
            out.push(self.comment_view(&mut conn, record.workspace_id, c).await?);
        }
        let ids = out.iter().map(|c| c.id.to_string()).collect();
        drop(reader);
        self.audit_phi_read(actor, &record, "document_comments", ids)
            .await?;
        Ok(out)
    }

    /// Adds a comment (needs `comment` access), optionally anchored at a Yjs relative position.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        doc: DocumentId,
        text: &str,
        anchor: Option<serde_json::Value>,
    ) -> Result<CommentView, Error> {
        let text = text.trim().to_owned();
        if text.is_empty()
            || text.chars().count() > MAX_COMMENT
            || text.chars().any(|c| c.is_control() && c != '\n')
        {
            return Err(crate::domain::ParseError {
                field: "text",
                message: format!("must be 1 to {MAX_COMMENT} characters"),
            }
            .into());
        }
        let anchor = anchor
            .map(|a| serde_json::to_vec(&a).map_err(|e| Error::Internal(e.to_string())))
            .transpose()?;
        if anchor.as_ref().is_some_and(|a| a.len() > MAX_ANCHOR) {
            return Err(crate::domain::ParseError {
                field: "anchor",
                message: format!("must be at most {MAX_ANCHOR} bytes of JSON"),
            }
            .into());
        }
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::CommentDocument, Resource::Document(doc))
                        .await?;
                    let author = user_of(&actor)?;
                    let record = documents::by_id(&mut tx.conn(), doc)
                        .await?
                        .ok_or(Error::NotFound("document"))?;
                    let id = CommentId::generate();
                    let row = id.to_string();
                    let scope = Scope::Workspace(record.workspace_id);
                    let body = this
                        .keyring
                        .encrypt(tx, &scope, comment_aad(&row, "body"), text.as_bytes())
                        .await?;
                    let anchor = match &anchor {
                        Some(a) => Some(
                            this.keyring
                                .encrypt(tx, &scope, comment_aad(&row, "anchor"), a)
                                .await?,
                        ),
                        None => None,
                    };
                    let comment = CommentRecord {
                        id,
                        document_id: doc,
                        author_id: author,
                        body,
                        anchor,
                        created_at: Utc::now(),
                        resolved_at: None,
                    };
                    documents::insert_comment(&mut tx.conn(), &comment).await?;
                    // Metadata only: the text never reaches the audit log.
                    let event = Event::by(&actor, "document.commented", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({ "comment_id": id }));
                    this.auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Commented,
                    });
                    this.comment_view(&mut tx.conn(), record.workspace_id, comment)
                        .await
                })
            })
            .await
    }

    /// Resolves (or reopens) a comment: its author or anyone who may edit.
    pub async fn resolve_comment(
        &self,
        actor: &Actor,
        doc: DocumentId,
        comment: CommentId,
        resolved: bool,
    ) -> Result<CommentView, Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (record, mut c) = this
                        .own_comment(tx, &actor, doc, comment, Action::EditDocument)
                        .await?;
                    c.resolved_at = resolved.then(Utc::now);
                    documents::resolve_comment(&mut tx.conn(), comment, c.resolved_at).await?;
                    let event = Event::by(&actor, "document.comment_resolved", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(
                            serde_json::json!({ "comment_id": comment, "resolved": resolved }),
                        );
                    this.auditor.record(tx, event).await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Commented,
                    });
                    this.comment_view(&mut tx.conn(), record.workspace_id, c)
                        .await
                })
            })
            .await
    }

    /// Deletes a comment: its author or a manager of the document. Audited.
    pub async fn delete_comment(
        &self,
        actor: &Actor,
        doc: DocumentId,
        comment: CommentId,
    ) -> Result<(), Error> {
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    let (record, c) = this
                        .own_comment(tx, &actor, doc, comment, Action::ManageDocument)
                        .await?;
                    documents::delete_comment(&mut tx.conn(), comment).await?;
                    tx.emit(DomainEvent::DocumentChanged {
                        workspace_id: record.workspace_id,
                        document_id: doc,
                        what: DocumentChange::Commented,
                    });
                    let event = Event::by(&actor, "document.comment_deleted", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(
                            serde_json::json!({ "comment_id": comment, "author_id": c.author_id }),
                        );
                    this.auditor.record(tx, event).await
                })
            })
            .await
    }

    /// A comment the actor may change: their own (with `comment` access), or anyone's with
    /// `others` access.
    async fn own_comment(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        doc: DocumentId,
        comment: CommentId,
        others: Action,
    ) -> Result<(DocumentRecord, CommentRecord), Error> {
        self.auditor
            .authorize(tx, actor, Action::CommentDocument, Resource::Document(doc))
            .await?;
        let c = documents::comment(&mut tx.conn(), doc, comment)
            .await?
            .ok_or(Error::NotFound("comment"))?;
        if Some(c.author_id) != actor.user_id() {
            self.auditor
                .authorize(tx, actor, others, Resource::Document(doc))
                .await?;
        }
        let record = documents::by_id(&mut tx.conn(), doc)
            .await?
            .ok_or(Error::NotFound("document"))?;
        Ok((record, c))
    }
}
