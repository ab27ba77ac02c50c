//! The golden frames: every kind of frame a client can receive, built from sample domain
//! events through [`live_event`], must serialize exactly as
//! `tests/e2e/fixtures/hub_frames.json` says. Renaming a field of a domain event (or of
//! anything else inside the server) cannot change a frame without failing here; changing
//! the protocol on purpose means updating the fixture (run with `CONCORD_BLESS=1`) and the
//! clients' generated types, and [`PROTOCOL_VERSION`] if it could break a client.

use super::*;
use crate::domain::DocumentId;
use crate::events::{DocumentChange, Local};
use serde_json::Value;
use std::collections::BTreeSet;
use uuid::Uuid;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/fixtures/hub_frames.json"
);

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn view() -> MessageView {
    let at = chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    MessageView {
        id: MessageId(id(3)),
        channel_id: ChannelId(id(2)),
        seq: 12,
        author_id: UserId(id(4)),
        text: "hello @bo".into(),
        thread_root_id: Some(MessageId(id(5))),
        reply_count: 0,
        last_reply_at: None,
        client_msg_id: Some("k1".into()),
        created_at: at,
        edited_at: Some(at + chrono::Duration::seconds(30)),
        deleted: false,
        reactions: BTreeMap::from([("👍".to_owned(), vec![UserId(id(6))])]),
        pinned: true,
        blocks: None,
    }
}

fn sample_frames() -> Vec<(&'static str, ServerFrame)> {
    let (w, c, m, u, f) = (
        WorkspaceId(id(1)),
        ChannelId(id(2)),
        MessageId(id(3)),
        UserId(id(4)),
        FileId(id(7)),
    );
    let events = [
        (
            "event_message_created",
            DomainEvent::MessageCreated {
                workspace_id: w,
                channel_id: c,
                message_id: m,
                seq: 12,
                author_id: u,
                thread_root_id: Some(MessageId(id(5))),
                mentioned: vec![UserId(id(6))],
                view: Local::new(view()),
            },
        ),
        (
            "event_message_updated",
            DomainEvent::MessageUpdated {
                workspace_id: w,
                channel_id: c,
                message_id: m,
                seq: 12,
                what: MessageChange::ReactionAdded,
                reaction: None,
                view: Local::new(view()),
            },
        ),
        (
            "event_message_deleted",
            DomainEvent::MessageDeleted {
                workspace_id: w,
                channel_id: c,
                message_id: m,
                seq: 12,
            },
        ),
        (
            "event_read_state_changed",
            DomainEvent::ReadStateChanged {
                user_id: u,
                channel_id: c,
                last_read_seq: 12,
            },
        ),
        (
            "event_channel_changed",
            DomainEvent::ChannelChanged {
                workspace_id: w,
                channel_id: c,
                what: ChannelChange::Archived,
            },
        ),
        (
            "event_channel_member_added",
            DomainEvent::ChannelMemberAdded {
                workspace_id: w,
                channel_id: c,
                user_id: u,
                by: None,
            },
        ),
        (
            "event_channel_member_removed",
            DomainEvent::ChannelMemberRemoved {
                workspace_id: w,
                channel_id: c,
                user_id: u,
                by: None,
            },
        ),
        (
            "event_file_shared",
            DomainEvent::FileShared {
                workspace_id: w,
                channel_id: c,
                file_id: f,
                message_id: Some(m),
            },
        ),
        (
            "event_file_deleted",
            DomainEvent::FileDeleted {
                workspace_id: w,
                channel_id: c,
                file_id: f,
                message_id: None,
            },
        ),
        (
            "event_break_glass_started",
            DomainEvent::BreakGlassStarted {
                grant_id: crate::domain::BreakGlassId(id(8)),
                workspace_id: w,
                channel_id: c,
                user_id: u,
                expires_at: chrono::DateTime::from_timestamp(1_760_003_600, 0).unwrap(),
                notify: vec![UserId(id(9))],
            },
        ),
        (
            "event_break_glass_ended",
            DomainEvent::BreakGlassEnded {
                grant_id: crate::domain::BreakGlassId(id(8)),
                workspace_id: w,
                channel_id: c,
                user_id: u,
                reason: "expired".into(),
                notify: vec![UserId(id(9))],
            },
        ),
        (
            "event_user_updated",
            DomainEvent::UserProfileChanged {
                user_id: u,
                by: Some(UserId(id(9))),
            },
        ),
        (
            "event_restriction_lifted",
            DomainEvent::ProcessingRestrictionLifted {
                user_id: u,
                workspaces: vec![w],
            },
        ),
        (
            "event_workflow_task_changed",
            DomainEvent::WorkflowTaskChanged {
                workspace_id: w,
                task_id: format!("{}:task3", id(10)),
                instance_id: id(10),
                status: "open".into(),
                notify: vec![u],
            },
        ),
        (
            "event_workflow_instance_changed",
            DomainEvent::WorkflowInstanceChanged {
                workspace_id: w,
                process_id: "expense".into(),
                instance_id: id(10),
                status: "running".into(),
                change: "incident_raised".into(),
                notify: vec![u],
            },
        ),
    ];
    let mut frames = vec![
        (
            "hello",
            ServerFrame::Hello {
                protocol: PROTOCOL_VERSION,
                epoch: id(9).to_string(),
                seq: 41,
                user_id: u,
                resync: false,
                presence: BTreeMap::from([
                    (UserId(id(5)), PresenceStatus::Away),
                    (UserId(id(6)), PresenceStatus::Online),
                ]),
                presence_frames: 1,
            },
        ),
        (
            "presence_snapshot",
            ServerFrame::PresenceSnapshot {
                presence: BTreeMap::from([
                    (UserId(id(10)), PresenceStatus::Online),
                    (UserId(id(11)), PresenceStatus::Away),
                ]),
            },
        ),
    ];
    for (n, (name, event)) in events.into_iter().enumerate() {
        // The view the hub holds for a message event is the one attached to it.
        let message = match &event {
            DomainEvent::MessageCreated { view, .. } | DomainEvent::MessageUpdated { view, .. } => {
                view.get::<MessageView>()
            }
            _ => None,
        };
        let live = live_event(&event, message).expect(name);
        frames.push((
            name,
            ServerFrame::Event {
                seq: 42 + n as u64,
                event: live,
            },
        ));
    }
    frames.extend([
        (
            "ack",
            ServerFrame::Ack {
                client_msg_id: "k1".into(),
                message: Arc::new(view()),
            },
        ),
        (
            "ephemeral",
            ServerFrame::Ephemeral {
                message: Arc::new(EphemeralMessageView {
                    id: "e1".into(),
                    channel_id: c,
                    user_id: u,
                    author_id: UserId(id(8)),
                    text: "Deploying **api**".into(),
                    blocks: Some(vec![serde_json::json!({
                        "type": "section",
                        "block_id": "b0",
                        "text": {"type": "mrkdwn", "text": "Deploying *api*"}
                    })]),
                    created_at: chrono::DateTime::from_timestamp(1_760_000_000, 0).unwrap(),
                }),
            },
        ),
        (
            "typing",
            ServerFrame::Typing {
                channel_id: c,
                user_id: u,
            },
        ),
        (
            "presence",
            ServerFrame::Presence {
                user_id: u,
                status: PresenceStatus::Offline,
            },
        ),
        (
            "error",
            ServerFrame::Error {
                code: "validation_failed".into(),
                message: "text: must not be empty".into(),
                client_msg_id: Some("k2".into()),
            },
        ),
        (
            "error_without_post",
            ServerFrame::Error {
                code: "invalid_frame".into(),
                message: "send JSON text frames".into(),
                client_msg_id: None,
            },
        ),
        ("pong", ServerFrame::Pong),
    ]);
    frames
}

#[test]
fn frames_match_the_golden_file() {
    let actual: serde_json::Map<String, Value> = sample_frames()
        .into_iter()
        .map(|(name, frame)| {
            let text = frame.encode();
            (name.to_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    if std::env::var_os("CONCORD_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&Value::Object(actual.clone())).unwrap();
        std::fs::write(FIXTURE, text + "\n").unwrap();
    }
    let expected: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
    let names = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&actual), names(&expected), "frames added or removed");
    for (name, frame) in &actual {
        assert_eq!(Some(frame), expected.get(name), "frame {name} changed");
    }
}

/// Every type of frame the OpenAPI document says a client can receive has a golden sample, so
/// a frame added to [`ServerFrame`] is pinned too.
#[test]
fn every_frame_type_has_a_golden_sample() {
    fn types(schema: &Value, found: &mut BTreeSet<String>) {
        match schema {
            Value::Object(fields) => {
                if let Some(Value::Array(names)) = fields
                    .get("properties")
                    .and_then(|p| p.get("type"))
                    .and_then(|t| t.get("enum"))
                {
                    found.extend(names.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                fields.values().for_each(|v| types(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| types(v, found)),
            _ => {}
        }
    }
    // The frame's own schema, as the OpenAPI document's `ServerFrame` component holds it.
    let schema = serde_json::to_value(<ServerFrame as utoipa::PartialSchema>::schema()).unwrap();
    let mut documented = BTreeSet::new();
    types(&schema, &mut documented);
    let sampled: BTreeSet<String> = sample_frames()
        .iter()
        .map(|(_, frame)| {
            let value: Value = serde_json::from_str(&frame.encode()).unwrap();
            value["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(documented.contains("presence_snapshot"), "{documented:?}");
    assert_eq!(sampled, documented);
}

#[test]
fn message_events_without_their_message_and_private_events_are_not_sent() {
    let event = DomainEvent::MessageCreated {
        workspace_id: WorkspaceId(id(1)),
        channel_id: ChannelId(id(2)),
        message_id: MessageId(id(3)),
        seq: 1,
        author_id: UserId(id(4)),
        thread_root_id: None,
        mentioned: Vec::new(),
        view: Local::none(),
    };
    assert!(live_event(&event, None).is_none());
    assert!(live_event(&event, Some(Arc::new(view()))).is_some());
    for private in [
        DomainEvent::SessionsRevoked {
            user_id: UserId(id(4)),
            sessions: Vec::new(),
            reason: "logout".into(),
        },
        DomainEvent::DocumentChanged {
            workspace_id: WorkspaceId(id(1)),
            document_id: DocumentId(id(8)),
            what: DocumentChange::Deleted,
        },
    ] {
        assert!(live_event(&private, Some(Arc::new(view()))).is_none());
    }
}
