//! One WebSocket connection: authentication, then a reader and a writer joined by the hub's
//! bounded queue. The greeting is written one frame at a time, each flushed before the next is
//! buffered, so the socket's write buffer (kept at its largest size for the connection's life)
//! never holds more than one of its small frames; then the writer feeds every queued frame it
//! can and flushes once. A socket's `post` frames are pipelined: each is put in the writer's
//! queue as it is read (so they are stored in the order sent) and acknowledged as it commits,
//! with at most [`MAX_POSTS_IN_FLIGHT`] waiting before the socket is read again.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protocol::{self, ClientFrame, ServerFrame};
use super::{Hub, Outbound, Registration};
use crate::auth::AuthService;
use crate::chat::{ChatService, MessageView};
use crate::domain::MessageBody;
use crate::error::Error;
use crate::rbac::Actor;

/// How long a client may take to send its `auth` frame.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written before one flush.
const BATCH: usize = 64;
/// Posts one socket may have waiting for their commit before it is read again.
const MAX_POSTS_IN_FLIGHT: usize = 64;

/// A post waiting for its commit, with the client's id for the answer.
type InFlight = BoxFuture<'static, (String, Result<MessageView, Error>)>;

/// What a connection needs from the rest of the server.
pub struct Services {
    /// The hub.
    pub hub: Hub,
    /// Authentication.
    pub auth: Arc<AuthService>,
    /// Chat, for posts over the socket.
    pub chat: ChatService,
    /// Cancelled at shutdown.
    pub going_away: CancellationToken,
}

/// Serves one upgraded socket until it closes.
#[tracing::instrument(skip_all, fields(user = tracing::field::Empty))]
pub async fn serve(
    socket: WebSocket,
    services: Services,
    header_token: Option<String>,
    ip: Option<std::net::IpAddr>,
) {
    let (mut sink, mut stream) = socket.split();
    let (token, resume) = match header_token {
        Some(token) => (token, None),
        None => match first_frame(&mut stream).await {
            Some(found) => found,
            None => {
                close(
                    &mut sink,
                    protocol::CLOSE_UNAUTHENTICATED,
                    "send an auth frame first",
                )
                .await;
                return;
            }
        },
    };
    let actor = match services.auth.authenticate(&token, ip).await {
        Ok(actor) => actor,
        Err(_) => {
            close(
                &mut sink,
                protocol::CLOSE_UNAUTHENTICATED,
                "invalid or expired access token",
            )
            .await;
            return;
        }
    };
    let (Some(user), Some(session)) = (actor.user_id(), actor.session_id()) else {
        close(
            &mut sink,
            protocol::CLOSE_UNAUTHENTICATED,
            "sign in as a user",
        )
        .await;
        return;
    };
    tracing::Span::current().record("user", tracing::field::display(user));
    // Live delivery of channels holding PHI is a read the audit log must show: recorded
    // before the connection is registered, so it receives nothing unaudited.
    if let Err(err) = services.chat.audit_live_phi(&actor).await {
        tracing::error!(error = %err, "cannot audit the connection's reads of PHI");
        close(&mut sink, 1011, "server error").await;
        return;
    }
    let registration = match services.hub.register(user, session, resume).await {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(error = %err, "cannot register connection");
            close(&mut sink, 1011, "server error").await;
            return;
        }
    };
    let Registration {
        id,
        queue,
        reply,
        kill,
        kill_code,
        greeting,
    } = registration;
    for frame in greeting {
        if sink.send(Message::Text(frame)).await.is_err() {
            services.hub.unregister(id);
            return;
        }
    }
    let stop = CancellationToken::new();
    // Closes the socket with the kill code (resync unless set otherwise) if an answer to a
    // post cannot be queued: a lost `ack` would leave the client waiting for it.
    let overflow = kill.clone();
    let writer = tokio::spawn(write_loop(
        sink,
        queue,
        kill,
        kill_code,
        services.going_away.clone(),
        stop.clone(),
    ));
    read_loop(&mut stream, &services, &actor, id, &reply, &stop, &overflow).await;
    stop.cancel();
    let _ = writer.await;
    services.hub.unregister(id);
}

async fn first_frame(
    stream: &mut SplitStream<WebSocket>,
) -> Option<(String, Option<(String, u64)>)> {
    let message = tokio::time::timeout(AUTH_TIMEOUT, stream.next())
        .await
        .ok()??
        .ok()?;
    let Message::Text(text) = message else {
        return None;
    };
    match serde_json::from_str::<ClientFrame>(text.as_str()).ok()? {
        ClientFrame::Auth {
            token,
            epoch,
            last_seq,
        } => Some((token, epoch.zip(last_seq))),
        _ => None,
    }
}

async fn close(sink: &mut SplitSink<WebSocket, Message>, code: u16, reason: &'static str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        })))
        .await;
}

async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    queue: mpsc::Receiver<Outbound>,
    kill: CancellationToken,
    kill_code: Arc<std::sync::Mutex<(u16, &'static str)>>,
    going_away: CancellationToken,
    stop: CancellationToken,
) {
    let ending = tokio::select! {
        () = stop.cancelled() => None,
        () = going_away.cancelled() => Some((protocol::CLOSE_GOING_AWAY, "server shutting down")),
        // Also interrupts a write stuck on a client that stopped reading.
        () = kill.cancelled() => Some(kill_code.lock().map(|k| *k).unwrap_or((protocol::CLOSE_RESYNC, ""))),
        () = pump(&mut sink, queue) => None,
    };
    if let Some((code, reason)) = ending {
        // A client that stopped reading may never take the close frame: do not wait long.
        let _ = tokio::time::timeout(Duration::from_secs(1), close(&mut sink, code, reason)).await;
    }
    // Ends the reader too, which drops the socket.
    stop.cancel();
}

/// Writes queued frames: feeds every frame already waiting (up to a batch), flushes once.
async fn pump(sink: &mut SplitSink<WebSocket, Message>, mut queue: mpsc::Receiver<Outbound>) {
    while let Some(first) = queue.recv().await {
        let mut pending = Some(first);
        let mut written = 0;
        while let Some(out) = pending.take() {
            let Outbound::Frame(frame) = out;
            if sink.feed(Message::Text(frame)).await.is_err() {
                return;
            }
            written += 1;
            if written < BATCH {
                pending = queue.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

fn send(reply: &mpsc::Sender<Outbound>, frame: ServerFrame) -> bool {
    reply
        .try_send(Outbound::Frame(Utf8Bytes::from(frame.encode())))
        .is_ok()
}

fn error_frame(
    reply: &mpsc::Sender<Outbound>,
    code: &str,
    message: &str,
    client_msg_id: Option<&str>,
) {
    send(
        reply,
        ServerFrame::Error {
            code: code.to_owned(),
            message: message.to_owned(),
            client_msg_id: client_msg_id.map(str::to_owned),
        },
    );
}

fn describe(err: &Error) -> (&'static str, String) {
    match err {
        Error::Invalid(p) => ("validation_failed", p.to_string()),
        Error::NotFound(_) => ("not_found", err.to_string()),
        Error::Forbidden(_) => ("forbidden", err.to_string()),
        Error::Refused { code, .. } | Error::Conflict { code, .. } | Error::Gone { code, .. } => {
            (code, err.to_string())
        }
        _ => ("internal", "the request could not be completed".into()),
    }
}

async fn read_loop(
    stream: &mut SplitStream<WebSocket>,
    services: &Services,
    actor: &Actor,
    id: u64,
    reply: &mpsc::Sender<Outbound>,
    stop: &CancellationToken,
    overflow: &CancellationToken,
) {
    // Posts waiting for their commit, in the order they were read: each is in the writer's
    // queue already, so they are stored in that order and answered in it (a post refused
    // before it reached the writer waits here too, behind the earlier ones).
    let mut in_flight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => return,
            Some((client_msg_id, result)) = in_flight.next(), if !in_flight.is_empty() => {
                if !answer_post(reply, client_msg_id, result) {
                    overflow.cancel();
                    return;
                }
                continue;
            }
            // A socket with as many posts in flight as allowed is read again once one commits.
            m = stream.next(), if in_flight.len() < MAX_POSTS_IN_FLIGHT => m,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                error_frame(reply, "unsupported_frame", "send JSON text frames", None);
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
        };
        let frame = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) => frame,
            Err(err) => {
                error_frame(reply, "invalid_frame", &err.to_string(), None);
                continue;
            }
        };
        // What the person does (a post, typing) counts as activity for automatic logoff;
        // what the client does on its own (pings, presence) does not.
        if matches!(frame, ClientFrame::Post { .. } | ClientFrame::Typing { .. }) {
            if let Some(session) = actor.session_id() {
                services.auth.activity().touch(session, chrono::Utc::now());
            }
        }
        match frame {
            ClientFrame::Ping => {
                send(reply, ServerFrame::Pong);
            }
            ClientFrame::Auth { .. } => error_frame(
                reply,
                "already_authenticated",
                "this connection is signed in",
                None,
            ),
            ClientFrame::Presence { status } => match status.as_str() {
                "online" => services.hub.set_away(id, false),
                "away" => services.hub.set_away(id, true),
                _ => error_frame(
                    reply,
                    "invalid_frame",
                    "status must be online or away",
                    None,
                ),
            },
            ClientFrame::Typing { channel_id } => {
                if let Some(user) = actor.user_id() {
                    if !matches!(services.hub.typing(user, channel_id).await, Ok(true)) {
                        error_frame(reply, "not_found", "channel not found", None);
                    }
                }
            }
            ClientFrame::Post {
                channel_id,
                text,
                client_msg_id,
                thread_root_id,
            } => {
                let body = match MessageBody::parse("text", text) {
                    Ok(b) => b,
                    Err(e) => {
                        let refused = Err(Error::from(e));
                        in_flight.push_back(Box::pin(std::future::ready((client_msg_id, refused))));
                        continue;
                    }
                };
                match services
                    .chat
                    .post_enqueued(
                        actor,
                        channel_id,
                        body,
                        thread_root_id,
                        Some(client_msg_id.clone()),
                    )
                    .await
                {
                    Ok(committed) => {
                        in_flight
                            .push_back(Box::pin(async move { (client_msg_id, committed.await) }));
                    }
                    Err(err) => {
                        in_flight
                            .push_back(Box::pin(std::future::ready((client_msg_id, Err(err)))));
                    }
                }
            }
        }
    }
}

/// Answers a post frame: `ack` with the stored message, or an error naming the client's id;
/// false if the answer could not be queued.
fn answer_post(
    reply: &mpsc::Sender<Outbound>,
    client_msg_id: String,
    result: Result<MessageView, Error>,
) -> bool {
    match result {
        Ok(message) => send(
            reply,
            ServerFrame::Ack {
                client_msg_id,
                message: Arc::new(message),
            },
        ),
        Err(err) => {
            let (code, message) = describe(&err);
            send(
                reply,
                ServerFrame::Error {
                    code: code.to_owned(),
                    message,
                    client_msg_id: Some(client_msg_id),
                },
            )
        }
    }
}
