//! The raw baseline (`concord-bench raw-server --port P`): a minimal tokio-tungstenite
//! broadcast server with no authentication and no storage. Every text frame a client sends
//! is relayed, encoded once, to every other connected client. It runs as its own process so
//! its resident memory can be measured alone.
//!
//! It uses the workspace's tungstenite and the same socket buffer settings as Concord's
//! `/api/v1/ws` (4 KiB read buffer, no write buffering), so a difference in memory or
//! throughput is Concord's own work, not configuration.

use std::net::SocketAddr;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames kept for receivers that have not read them yet; one that falls further behind
/// skips what it missed (and the bench sees it as a missing delivery).
const CAPACITY: usize = 4096;
/// Frames written before one flush.
const BATCH: usize = 64;

/// Serves on 127.0.0.1:`port` until killed; prints the bound address when ready.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let (tx, _) = broadcast::channel::<(u64, Utf8Bytes)>(CAPACITY);
    println!("raw server listening on {addr}");
    let mut next_id = 0u64;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors, say: keep serving the clients already connected.
            Err(e) => {
                eprintln!("raw server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        next_id += 1;
        let (tx, rx) = (tx.clone(), tx.subscribe());
        tokio::spawn(connection(stream, next_id, tx, rx));
    }
}

async fn connection(
    stream: TcpStream,
    id: u64,
    tx: broadcast::Sender<(u64, Utf8Bytes)>,
    mut rx: broadcast::Receiver<(u64, Utf8Bytes)>,
) {
    let _ = stream.set_nodelay(true);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let _ = tx.send((id, text));
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => {
                let mut next = Some(outgoing);
                let mut written = 0;
                while let Some(item) = next.take() {
                    match item {
                        Ok((from, text)) if from != id => {
                            if sink.feed(Message::Text(text)).await.is_err() {
                                return;
                            }
                            written += 1;
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    if written < BATCH {
                        next = match rx.try_recv() {
                            Ok(item) => Some(Ok(item)),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                Some(Err(broadcast::error::RecvError::Lagged(n)))
                            }
                            Err(_) => None,
                        };
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
