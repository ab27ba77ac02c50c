//! A connection's side of a room: what it hands the room (`Incoming`), what it receives
//! (`Outbound`, through its `PeerHandle`), and the room's record of it (`Peer`).

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::encoder::Encode;
use yrs::{StateVector, Update};

use super::close;
use crate::domain::{SessionId, UserId};
use crate::rbac::Level;

/// Frames queued for one connection before it is considered too slow.
pub(super) const QUEUE: usize = 1024;

/// What a connection receives: frames to send, or the instruction to close.
#[derive(Debug)]
pub enum Outbound {
    /// A binary y-protocols frame.
    Frame(Bytes),
}

/// A connection's side of the room: its queue and its kill switch.
pub struct PeerHandle {
    /// The connection's id within the room.
    pub id: u64,
    /// Frames to send.
    pub queue: mpsc::Receiver<Outbound>,
    /// Cancelled when the room closes the connection; `close_code` says why.
    pub kill: CancellationToken,
    /// Code and reason to close with when killed.
    pub close_code: Arc<Mutex<(u16, &'static str)>>,
}

/// An incoming y-protocols message, already parsed and checked by the connection.
pub enum Incoming {
    /// The client's state vector: answer with what it is missing.
    SyncStep1(StateVector),
    /// Content from the client (sync step 2 or an update), with its encoded size.
    Update(Update, usize),
    /// A cursor/presence update.
    Awareness(AwarenessUpdate),
    /// The client asks for everyone's awareness.
    AwarenessQuery,
}

pub(super) struct PeerInit {
    pub(super) user: UserId,
    pub(super) session: SessionId,
    pub(super) level: Level,
}

pub(super) struct Peer {
    pub(super) user: UserId,
    pub(super) session: SessionId,
    pub(super) level: Level,
    pub(super) queue: mpsc::Sender<Outbound>,
    pub(super) kill: CancellationToken,
    pub(super) close_code: Arc<Mutex<(u16, &'static str)>>,
    pub(super) told_read_only: bool,
}

impl Peer {
    pub(super) fn kill(&self, code: u16, reason: &'static str) {
        if self.kill.is_cancelled() {
            return;
        }
        if let Ok(mut c) = self.close_code.lock() {
            *c = (code, reason);
        }
        self.kill.cancel();
    }

    pub(super) fn send(&self, frame: &Bytes) {
        if self.kill.is_cancelled() {
            return;
        }
        if self.queue.try_send(Outbound::Frame(frame.clone())).is_err() {
            self.kill(close::TRY_AGAIN, "connection too slow; reconnect");
        }
    }
}

pub(super) fn frame(message: Message) -> Bytes {
    Bytes::from(message.encode_v1())
}
