//! The WebSocket client harness that drives Concord and the raw baseline the same way:
//! connections spread over several loopback source addresses, receivers that time every
//! posted text from its embedded send time, posters fed through a queue, and idle sockets.
//!
//! A posted text reads `bench:<micros>:...`, where `<micros>` is the intended send time in
//! microseconds since the [`Clock`]'s epoch; every receiver records "now minus that" in its
//! own HDR histogram. The same frame bytes go to both servers (Concord's `post` frame; the
//! raw server relays it unchanged), and the receivers parse both the same way.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Source addresses 127.0.0.2 ..= 127.0.0.(1 + SOURCES): each has its own ephemeral ports.
const SOURCES: u8 = 8;
/// How long connecting, the handshake and the `hello` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest latency recorded (longer ones saturate), in microseconds.
const MAX_LATENCY_MICROS: u64 = 60_000_000;
/// Frames a poster may have waiting to be written.
const POSTER_QUEUE: usize = 4096;
/// Marker that starts every posted text.
const MARKER: &str = "bench:";

/// A connected client socket.
pub type Ws = WebSocketStream<TcpStream>;

/// The shared time base of every timestamp in one bench process.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// Starts the epoch now.
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    /// Microseconds since the epoch.
    pub fn micros(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Endpoint {
    /// The server's loopback address.
    pub addr: SocketAddr,
    /// The request path (`/api/v1/ws` for Concord, `/` for the raw server).
    pub path: String,
    /// Whether the server expects `{"type":"auth"}` first and answers `hello`.
    pub concord: bool,
}

/// Client sockets need little buffering: frames are small and read at once.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
}

/// Opens socket number `index` from source address 127.0.0.(2 + index % 8) and, for
/// Concord, authenticates with `token` and waits for `hello`.
pub async fn connect(endpoint: &Endpoint, index: usize, token: Option<&str>) -> anyhow::Result<Ws> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(endpoint, index, token))
        .await
        .with_context(|| format!("socket {index}: connecting took over {CONNECT_TIMEOUT:?}"))?
}

async fn connect_inner(
    endpoint: &Endpoint,
    index: usize,
    token: Option<&str>,
) -> anyhow::Result<Ws> {
    let octet = 2 + (index % usize::from(SOURCES)) as u8;
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet)), 0);
    let socket = TcpSocket::new_v4().context("creating a client socket")?;
    socket
        .bind(source)
        .with_context(|| format!("binding the client socket to {source}"))?;
    let stream = socket
        .connect(endpoint.addr)
        .await
        .with_context(|| format!("connecting from {source} to {}", endpoint.addr))?;
    stream.set_nodelay(true)?;
    let url = format!("ws://{}{}", endpoint.addr, endpoint.path);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(client_config()))
            .await
            .with_context(|| format!("WebSocket handshake with {url}"))?;
    if endpoint.concord {
        let token = token.context("Concord sockets need an access token")?;
        let auth = serde_json::json!({"type": "auth", "token": token}).to_string();
        ws.send(Message::text(auth)).await.context("sending auth")?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    let frame: serde_json::Value =
                        serde_json::from_str(text.as_str()).context("a non-JSON first frame")?;
                    if frame["type"] == "hello" {
                        break;
                    }
                    bail!("expected hello, got {}", truncate(text.as_str()));
                }
                Some(Ok(Message::Close(close))) => bail!("closed before hello: {close:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => bail!("reading hello: {e}"),
                None => bail!("closed before hello"),
            }
        }
    }
    Ok(ws)
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The posted text: marker, send time, poster, sequence, and padding to a chat-like size.
pub fn text(sent_micros: u64, poster: usize, seq: u64) -> String {
    let mut t = format!("{MARKER}{sent_micros}:{poster}:{seq}:");
    while t.len() < 64 {
        t.push('x');
    }
    t
}

/// The send time carried by a frame holding a posted text, if it holds one.
fn sent_micros(frame: &str) -> Option<u64> {
    let start = frame.find(MARKER)? + MARKER.len();
    let digits = &frame[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    digits[..end].parse().ok()
}

/// The measurement window, in microseconds of the [`Clock`]; receivers read it per frame.
#[derive(Default)]
pub struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    /// Counts frames received in `[start, end)` and times texts sent in it.
    pub fn set(&self, start: u64, end: u64) {
        self.end.store(0, Ordering::SeqCst);
        self.start.store(start, Ordering::SeqCst);
        self.end.store(end, Ordering::SeqCst);
    }

    fn contains(&self, micros: u64) -> bool {
        micros >= self.start.load(Ordering::Relaxed) && micros < self.end.load(Ordering::Relaxed)
    }
}

/// What one receiver has seen.
pub struct ReceiverStats {
    /// Posted texts received since the socket opened.
    pub received: AtomicU64,
    /// Posted texts received inside the window.
    pub in_window: AtomicU64,
    /// Latencies of texts sent inside the window, in microseconds.
    pub latency: Mutex<Histogram<u64>>,
    /// False once the socket closed or failed.
    pub alive: AtomicBool,
}

/// A new histogram for latencies in microseconds.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3).context("creating a histogram")
}

/// A set of sockets whose frames are read (and, for receivers, timed) by tasks that stop
/// when the set is dropped.
pub struct Receivers {
    /// One per receiving socket, in connection order.
    pub stats: Vec<Arc<ReceiverStats>>,
    tasks: JoinSet<()>,
}

impl Receivers {
    /// Starts a reader for each socket.
    pub fn start(sockets: Vec<Ws>, clock: Clock, window: Arc<Window>) -> anyhow::Result<Receivers> {
        let mut tasks = JoinSet::new();
        let mut stats = Vec::with_capacity(sockets.len());
        for ws in sockets {
            let s = Arc::new(ReceiverStats {
                received: AtomicU64::new(0),
                in_window: AtomicU64::new(0),
                latency: Mutex::new(histogram()?),
                alive: AtomicBool::new(true),
            });
            stats.push(s.clone());
            tasks.spawn(receive(ws, s, clock, window.clone()));
        }
        Ok(Receivers { stats, tasks })
    }

    /// The fewest posted texts any receiver has seen (0 if one has died).
    pub fn min_received(&self) -> u64 {
        self.stats
            .iter()
            .map(|s| {
                if s.alive.load(Ordering::Relaxed) {
                    s.received.load(Ordering::Relaxed)
                } else {
                    0
                }
            })
            .min()
            .unwrap_or(0)
    }

    /// Receivers whose socket closed.
    pub fn dead(&self) -> usize {
        self.stats
            .iter()
            .filter(|s| !s.alive.load(Ordering::Relaxed))
            .count()
    }

    /// Takes (and resets) the window counts and merged latencies of every receiver.
    pub fn take(&self) -> anyhow::Result<(u64, Histogram<u64>)> {
        let mut total = histogram()?;
        let mut count = 0;
        for s in &self.stats {
            count += s.in_window.swap(0, Ordering::SeqCst);
            let mut h = s.latency.lock().unwrap_or_else(|e| e.into_inner());
            total.add(&*h).context("merging histograms")?;
            h.reset();
        }
        Ok((count, total))
    }

    /// Stops every reader, dropping its socket.
    pub async fn close(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn receive(mut ws: Ws, stats: Arc<ReceiverStats>, clock: Clock, window: Arc<Window>) {
    while let Some(message) = ws.next().await {
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Some(sent) = sent_micros(text.as_str()) else {
            continue;
        };
        let now = clock.micros();
        stats.received.fetch_add(1, Ordering::Relaxed);
        if window.contains(now) {
            stats.in_window.fetch_add(1, Ordering::Relaxed);
        }
        if window.contains(sent) {
            let mut h = stats.latency.lock().unwrap_or_else(|e| e.into_inner());
            h.saturating_record(now.saturating_sub(sent).max(1));
        }
    }
    stats.alive.store(false, Ordering::Relaxed);
}

/// A socket that posts: frames queued on `queue` are written (fed, then flushed when the
/// queue is momentarily empty); whatever comes back (acks, events) is read and discarded.
pub struct Poster {
    /// Frames to send.
    pub queue: mpsc::Sender<String>,
    /// Acks received (Concord only).
    pub acks: Arc<AtomicU64>,
    /// Error frames received (Concord only).
    pub errors: Arc<AtomicU64>,
}

/// Posters' reader and writer tasks, stopped when dropped.
pub struct Posters {
    /// One per posting socket.
    pub posters: Vec<Poster>,
    _tasks: JoinSet<()>,
}

impl Posters {
    /// Starts a writer and a reader for each socket.
    pub fn start(sockets: Vec<Ws>) -> Posters {
        let mut tasks = JoinSet::new();
        let mut posters = Vec::with_capacity(sockets.len());
        for ws in sockets {
            let (mut sink, mut stream) = ws.split();
            let (tx, mut rx) = mpsc::channel::<String>(POSTER_QUEUE);
            let acks = Arc::new(AtomicU64::new(0));
            let errors = Arc::new(AtomicU64::new(0));
            tasks.spawn(async move {
                while let Some(frame) = rx.recv().await {
                    if sink.feed(Message::text(frame)).await.is_err() {
                        return;
                    }
                    while let Ok(frame) = rx.try_recv() {
                        if sink.feed(Message::text(frame)).await.is_err() {
                            return;
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                }
            });
            let (a, e) = (acks.clone(), errors.clone());
            tasks.spawn(async move {
                while let Some(Ok(message)) = stream.next().await {
                    if let Message::Text(text) = message {
                        let t = text.as_str();
                        if t.starts_with(r#"{"type":"ack""#) {
                            a.fetch_add(1, Ordering::Relaxed);
                        } else if t.starts_with(r#"{"type":"error""#)
                            && e.fetch_add(1, Ordering::Relaxed) == 0
                        {
                            eprintln!("  poster got an error frame: {}", truncate(t));
                        }
                    }
                }
            });
            posters.push(Poster {
                queue: tx,
                acks,
                errors,
            });
        }
        Posters {
            posters,
            _tasks: tasks,
        }
    }

    /// Acks received by every poster.
    pub fn acks(&self) -> u64 {
        self.posters
            .iter()
            .map(|p| p.acks.load(Ordering::Relaxed))
            .sum()
    }

    /// Error frames received by every poster.
    pub fn errors(&self) -> u64 {
        self.posters
            .iter()
            .map(|p| p.errors.load(Ordering::Relaxed))
            .sum()
    }
}

/// The `post` frame carrying `text` (also what the raw server relays).
pub fn post_frame(channel_id: &str, text: &str, client_msg_id: &str) -> String {
    serde_json::json!({
        "type": "post",
        "channel_id": channel_id,
        "text": text,
        "client_msg_id": client_msg_id,
    })
    .to_string()
}

/// Opens `count` sockets, `concurrency` at a time; socket `i` authenticates with
/// `tokens[i % tokens.len()]` (Concord) and uses source address index `first + i`.
pub async fn connect_many(
    endpoint: &Endpoint,
    count: usize,
    first: usize,
    tokens: &[String],
    concurrency: usize,
) -> anyhow::Result<Vec<Ws>> {
    let endpoint = Arc::new(endpoint.clone());
    let tokens = Arc::new(tokens.to_vec());
    let results: Vec<anyhow::Result<(usize, Ws)>> = futures::stream::iter(0..count)
        .map(|i| {
            let endpoint = endpoint.clone();
            let tokens = tokens.clone();
            async move {
                let token = if tokens.is_empty() {
                    None
                } else {
                    Some(tokens[i % tokens.len()].as_str())
                };
                connect(&endpoint, first + i, token).await.map(|ws| (i, ws))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut sockets: Vec<(usize, Ws)> = results.into_iter().collect::<anyhow::Result<_>>()?;
    sockets.sort_by_key(|(i, _)| *i);
    Ok(sockets.into_iter().map(|(_, ws)| ws).collect())
}
