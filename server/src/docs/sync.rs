//! One Yjs connection: authentication, access, then a reader that parses y-protocols
//! messages for the room and a writer that sends what the room queues.
//!
//! Compatible with the stock `y-websocket` client: the document id is the last path segment
//! and the access token comes from the offered subprotocol `concord.bearer.<token>`, the
//! `token` query parameter, or the `concord_access_token` cookie from an allowed page (the
//! route checks the `Origin`). Refusals are sent as close codes in 4400–4499 so clients that
//! honour them stop retrying.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio_util::sync::CancellationToken;
use yrs::sync::{Message, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::Update;

use super::room::{close, Incoming, Outbound, PeerHandle};
use super::DocService;
use crate::auth::AuthService;
use crate::domain::DocumentId;
use crate::error::Error;

/// How often the server pings an idle connection.
const PING_EVERY: Duration = Duration::from_secs(30);

/// What a Yjs connection needs from the rest of the server.
pub struct Services {
    /// Documents.
    pub docs: DocService,
    /// Authentication.
    pub auth: Arc<AuthService>,
    /// Cancelled at shutdown.
    pub going_away: CancellationToken,
}

/// Serves one upgraded socket for `doc` until it closes.
#[tracing::instrument(skip_all, fields(document = %doc, user = tracing::field::Empty))]
pub async fn serve(
    socket: WebSocket,
    services: Services,
    doc: DocumentId,
    token: Option<String>,
    ip: Option<std::net::IpAddr>,
) {
    let (mut sink, mut stream) = socket.split();
    let Some(token) = token else {
        close_now(
            &mut sink,
            close::UNAUTHENTICATED,
            "sign in first: offer the concord.bearer.<token> subprotocol",
        )
        .await;
        drain(&mut stream).await;
        return;
    };
    let actor = match services.auth.authenticate(&token, ip).await {
        Ok(a) => a,
        Err(_) => {
            close_now(
                &mut sink,
                close::UNAUTHENTICATED,
                "invalid or expired access token",
            )
            .await;
            drain(&mut stream).await;
            return;
        }
    };
    let (Some(user), Some(session)) = (actor.user_id(), actor.session_id()) else {
        close_now(&mut sink, close::UNAUTHENTICATED, "sign in as a user").await;
        drain(&mut stream).await;
        return;
    };
    tracing::Span::current().record("user", tracing::field::display(user));
    let level = match services.docs.open(&actor, doc).await {
        Ok(level) => level,
        Err(Error::NotFound(_)) | Err(Error::Forbidden(_)) => {
            close_now(&mut sink, close::FORBIDDEN, "no access to this document").await;
            drain(&mut stream).await;
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot open document");
            close_now(&mut sink, close::SERVER_ERROR, "server error").await;
            drain(&mut stream).await;
            return;
        }
    };
    let rooms = services.docs.rooms().clone();
    let handle = match rooms.join(doc, user, session, level).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot join document");
            close_now(&mut sink, close::SERVER_ERROR, "document unavailable").await;
            drain(&mut stream).await;
            return;
        }
    };
    let PeerHandle {
        id,
        queue,
        kill,
        close_code,
    } = handle;
    let writer = tokio::spawn(write_loop(
        sink,
        queue,
        kill.clone(),
        close_code.clone(),
        services.going_away.clone(),
    ));
    let max = services.docs.limits().max_update_bytes;
    loop {
        let next = tokio::select! {
            _ = kill.cancelled() => break,
            next = stream.next() => next,
        };
        let refuse = |code: u16, reason: &'static str| {
            if let Ok(mut c) = close_code.lock() {
                *c = (code, reason);
            }
            kill.cancel();
        };
        match next {
            Some(Ok(WsMessage::Binary(bytes))) => match parse(&bytes, max) {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => {
                    // An edit is the person's activity (automatic logoff); sync requests and
                    // awareness, which clients send on their own, are not.
                    if messages.iter().any(|m| matches!(m, Incoming::Update(..))) {
                        services.auth.activity().touch(session, chrono::Utc::now());
                    }
                    if !rooms.deliver(doc, id, messages).await {
                        refuse(close::SERVER_ERROR, "document unavailable; reconnect");
                        break;
                    }
                }
                Err((code, reason)) => {
                    refuse(code, reason);
                    break;
                }
            },
            Some(Ok(WsMessage::Text(_))) => {
                refuse(close::MALFORMED, "binary y-protocols messages only");
                break;
            }
            Some(Ok(WsMessage::Close(_))) | None => break,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let text = e.to_string();
                if text.contains("too long") || text.contains("Space limit") {
                    refuse(close::TOO_LARGE, "message over the size limit");
                }
                break;
            }
        }
    }
    rooms.leave(doc, id).await;
    kill.cancel();
    let _ = writer.await;
    drain(&mut stream).await;
}

/// Parses one frame's y-protocols messages; refuses malformed or oversized content.
fn parse(bytes: &[u8], max_update: usize) -> Result<Vec<Incoming>, (u16, &'static str)> {
    // Decoding asserts on some values (client ids beyond 53 bits); never let that panic out.
    std::panic::catch_unwind(|| parse_frame(bytes, max_update))
        .unwrap_or(Err((close::MALFORMED, "malformed message")))
}

fn parse_frame(bytes: &[u8], max_update: usize) -> Result<Vec<Incoming>, (u16, &'static str)> {
    let mut decoder = DecoderV1::from(bytes);
    let mut out = Vec::new();
    for message in MessageReader::new(&mut decoder) {
        let message = message.map_err(|_| (close::MALFORMED, "malformed message"))?;
        match message {
            Message::Sync(SyncMessage::SyncStep1(sv)) => out.push(Incoming::SyncStep1(sv)),
            Message::Sync(SyncMessage::SyncStep2(u)) | Message::Sync(SyncMessage::Update(u)) => {
                if u.len() > max_update {
                    return Err((close::TOO_LARGE, "update over the size limit"));
                }
                let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| Update::decode_v1(&u)));
                match decoded {
                    Ok(Ok(update)) if update.is_empty() => {}
                    Ok(Ok(update)) => out.push(Incoming::Update(update, u.len())),
                    _ => return Err((close::MALFORMED, "malformed update")),
                }
            }
            Message::Awareness(update) => out.push(Incoming::Awareness(update)),
            Message::AwarenessQuery => out.push(Incoming::AwarenessQuery),
            Message::Auth(_) | Message::Custom(..) => {}
        }
    }
    Ok(out)
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut queue: tokio::sync::mpsc::Receiver<Outbound>,
    kill: CancellationToken,
    close_code: Arc<std::sync::Mutex<(u16, &'static str)>>,
    going_away: CancellationToken,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = going_away.cancelled() => {
                close_now(&mut sink, close::GOING_AWAY, "server shutting down").await;
                return;
            }
            _ = kill.cancelled() => {
                // Send what the room queued before the kill (a refusal's auth message).
                while let Ok(Outbound::Frame(f)) = queue.try_recv() {
                    if sink.feed(WsMessage::Binary(f)).await.is_err() {
                        return;
                    }
                }
                let (code, reason) = close_code.lock().map(|c| *c).unwrap_or((close::SERVER_ERROR, "closed"));
                close_now(&mut sink, code, reason).await;
                return;
            }
            next = queue.recv() => match next {
                Some(Outbound::Frame(f)) => {
                    if sink.feed(WsMessage::Binary(f)).await.is_err() {
                        return;
                    }
                    let mut n = 1;
                    while n < 64 {
                        match queue.try_recv() {
                            Ok(Outbound::Frame(f)) => {
                                if sink.feed(WsMessage::Binary(f)).await.is_err() {
                                    return;
                                }
                                n += 1;
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
                None => {
                    let (code, reason) = close_code.lock().map(|c| *c).unwrap_or((close::SERVER_ERROR, "closed"));
                    close_now(&mut sink, code, reason).await;
                    return;
                }
            },
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads until the client answers the close (or a short while passes), so the socket is not
/// torn down with unread data, which would reset it and lose the close frame on the way.
async fn drain(stream: &mut SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(m)) = stream.next().await {
            if matches!(m, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn close_now(sink: &mut SplitSink<WebSocket, WsMessage>, code: u16, reason: &'static str) {
    let _ = sink
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}
