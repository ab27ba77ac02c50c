//! Named versions of a document: listing, creating and restoring them (a restore is a new
//! change everyone receives).

use chrono::Utc;

use super::{name, user_of, DocService, VersionView};
use crate::audit::{Event, Outcome};
use crate::crypto::{Aad, Scope};
use crate::domain::{DocumentId, VersionId};
use crate::error::Error;
use crate::rbac::{Action, Actor, Resource};
use crate::store::documents::{DocumentRecord, VersionRecord};
use crate::store::{documents, Conn, Tx};

impl DocService {
    pub(super) async fn version_state(
        &self,
        conn: &mut Conn<'_>,
        record: &DocumentRecord,
        v: VersionId,
    ) -> Result<(String, Vec<u8>), Error> {
        let version = documents::version(conn, record.id, v)
            .await?
            .ok_or(Error::NotFound("version"))?;
        let scope = Scope::Workspace(record.workspace_id);
        let row = version.id.to_string();
        let name = self
            .keyring
            .decrypt_text(conn, &scope, version_aad(&row, "name"), &version.name)
            .await?;
        let state = self
            .keyring
            .decrypt(conn, &scope, version_aad(&row, "state"), &version.state)
            .await?;
        Ok((name, state.to_vec()))
    }

    /// The document's named versions, newest first.
    pub async fn versions(
        &self,
        actor: &Actor,
        doc: DocumentId,
    ) -> Result<Vec<VersionView>, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        let (record, _) = self
            .readable(&mut conn, actor, doc, Action::ViewDocument)
            .await?;
        let scope = Scope::Workspace(record.workspace_id);
        let mut out = Vec::new();
        for v in documents::versions(&mut conn, doc).await? {
            let row = v.id.to_string();
            let name = self
                .keyring
                .decrypt_text(&mut conn, &scope, version_aad(&row, "name"), &v.name)
                .await?;
            out.push(VersionView {
                id: v.id,
                name,
                created_by: v.created_by,
                created_at: v.created_at,
            });
        }
        let ids = out.iter().map(|v| v.id.to_string()).collect();
        drop(reader);
        self.audit_phi_read(actor, &record, "document_versions", ids)
            .await?;
        Ok(out)
    }

    /// Saves the document's current content as a named version.
    pub async fn create_version(
        &self,
        actor: &Actor,
        doc: DocumentId,
        version_name: &str,
    ) -> Result<VersionView, Error> {
        let version_name = name("name", version_name)?;
        {
            let mut reader = self.store.reader().await?;
            self.readable(&mut reader.conn(), actor, doc, Action::EditDocument)
                .await?;
        }
        let state = self.rooms.state(doc).await?;
        let actor = actor.clone();
        let this = self.clone();
        self.store
            .write(move |tx: &mut Tx| {
                Box::pin(async move {
                    this.auditor
                        .authorize(tx, &actor, Action::EditDocument, Resource::Document(doc))
                        .await?;
                    let by = user_of(&actor)?;
                    let record = documents::by_id(&mut tx.conn(), doc)
                        .await?
                        .ok_or(Error::NotFound("document"))?;
                    let id = VersionId::generate();
                    let row = id.to_string();
                    let scope = Scope::Workspace(record.workspace_id);
                    let sealed_name = this
                        .keyring
                        .encrypt(
                            tx,
                            &scope,
                            version_aad(&row, "name"),
                            version_name.as_bytes(),
                        )
                        .await?;
                    let sealed_state = this
                        .keyring
                        .encrypt(tx, &scope, version_aad(&row, "state"), &state)
                        .await?;
                    let now = Utc::now();
                    documents::insert_version(
                        &mut tx.conn(),
                        &VersionRecord {
                            id,
                            document_id: doc,
                            name: sealed_name,
                            state: sealed_state,
                            created_by: by,
                            created_at: now,
                        },
                    )
                    .await?;
                    let event = Event::by(&actor, "document.version_created", Outcome::Allowed)
                        .target("document", doc)
                        .workspace(record.workspace_id)
                        .details(serde_json::json!({ "version_id": id }));
                    this.auditor.record(tx, event).await?;
                    Ok(VersionView {
                        id,
                        name: version_name,
                        created_by: by,
                        created_at: now,
                    })
                })
            })
            .await
    }

    /// Makes the document hold a version's content again, as a change everyone sees live.
    pub async fn restore_version(
        &self,
        actor: &Actor,
        doc: DocumentId,
        version: VersionId,
    ) -> Result<(), Error> {
        let (record, state) = {
            let mut reader = self.store.reader().await?;
            let mut conn = reader.conn();
            let (record, _) = self
                .readable(&mut conn, actor, doc, Action::EditDocument)
                .await?;
            let (_, state) = self.version_state(&mut conn, &record, version).await?;
            (record, state)
        };
        let event = Event::by(actor, "document.version_restored", Outcome::Allowed)
            .target("document", doc)
            .workspace(record.workspace_id)
            .details(serde_json::json!({ "version_id": version }));
        self.rooms.restore(doc, state, event).await?;
        Ok(())
    }
}

fn version_aad<'a>(row: &'a str, column: &'a str) -> Aad<'a> {
    Aad {
        table: "document_versions",
        row,
        column,
    }
}

/// A named version as eDiscovery reads it: its name and its content as plain text.
#[derive(Clone, Debug)]
pub struct DiscoveredVersion {
    /// The document.
    pub document_id: DocumentId,
    /// The document's title now.
    pub document_title: String,
    /// The channel the document belongs to, if any.
    pub channel_id: Option<crate::domain::ChannelId>,
    /// The version.
    pub id: VersionId,
    /// Its name.
    pub name: String,
    /// The document's content as of the version, as plain text.
    pub text: String,
    /// Who made it.
    pub created_by: crate::domain::UserId,
    /// When.
    pub created_at: chrono::DateTime<Utc>,
}

impl DocService {
    /// The version `v` of `doc` in `workspace`, decrypted (the caller, eDiscovery,
    /// authorizes and audits); `None` if either is gone.
    pub async fn discovered_version(
        &self,
        workspace: crate::domain::WorkspaceId,
        doc: DocumentId,
        v: VersionId,
    ) -> Result<Option<DiscoveredVersion>, Error> {
        let mut reader = self.store.reader().await?;
        let mut conn = reader.conn();
        let Some(record) = documents::by_id(&mut conn, doc).await? else {
            return Ok(None);
        };
        if record.workspace_id != workspace {
            return Ok(None);
        }
        let Some(version) = documents::version(&mut conn, doc, v).await? else {
            return Ok(None);
        };
        let (name, state) = self.version_state(&mut conn, &record, v).await?;
        let id = record.id.to_string();
        let document_title = self
            .keyring
            .decrypt_text(
                &mut conn,
                &Scope::Workspace(workspace),
                super::title_aad(&id),
                &record.title,
            )
            .await?;
        drop(reader);
        let text = tokio::task::spawn_blocking(move || {
            concord_doc_content::doc_from_state(&state)
                .map(|d| concord_doc_content::Content::read(&d).plain_text())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(DiscoveredVersion {
            document_id: doc,
            document_title,
            channel_id: record.channel_id,
            id: v,
            name,
            text,
            created_by: version.created_by,
            created_at: version.created_at,
        }))
    }
}
