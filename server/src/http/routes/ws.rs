//! The WebSocket endpoint of the hub.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::http::extract::Client;
use crate::http::state::AppState;
use crate::hub;

/// Largest frame a client may send (a 16 KiB message plus its envelope).
const MAX_FRAME: usize = 64 * 1024;

/// Open the real-time event stream. Authenticate with a first `{"type":"auth","token":...}`
/// frame, or with `Sec-WebSocket-Protocol: concord.v1, concord.bearer.<token>`.
#[utoipa::path(get, path = "/api/v1/ws", tag = "chat",
    responses((status = 101, description = "switching to the WebSocket protocol")))]
pub async fn connect(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let header_token = offered
        .iter()
        .find_map(|p| p.strip_prefix("concord.bearer.").map(str::to_owned));
    let mut upgrade = upgrade
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(hub::QUEUE_DEPTH * 1024);
    if offered.iter().any(|p| p == "concord.v1") {
        upgrade = upgrade.protocols(["concord.v1"]);
    }
    let services = hub::connection::Services {
        hub: state.hub.clone(),
        auth: state.auth.clone(),
        chat: state.chat.clone(),
        going_away: state.going_away.clone(),
    };
    upgrade.on_upgrade(move |socket| hub::serve(socket, services, header_token, client.ip))
}
