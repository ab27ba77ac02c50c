//! Awareness of one live document (cursors, names, who is here), kept in memory only.
//!
//! Stock Yjs peers trust each other: any of them may announce, overwrite or remove any
//! awareness client id. The server does not pass that trust on. A client id belongs to the
//! first connection that announces a state for it, for as long as that connection is open:
//! entries other connections send for it are dropped, and when a connection leaves, only the
//! ids it owns are removed. A connection owns at most `docs.awareness_max_clients` ids, and a
//! connection with view or comment access exactly one (its own cursor and name are worth
//! showing; anything more is not). A state must be a JSON object of at most
//! `docs.awareness_max_state_bytes` (or `null`: gone), and a `user.id` in it must be the
//! sender's own account. Entries that break a rule are dropped one by one; the rest are
//! applied and relayed.

use std::collections::HashMap;

use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{Awareness, AwarenessUpdate};
use yrs::Doc;

use crate::domain::UserId;

/// The JSON a removed state is encoded as.
const GONE: &str = "null";

/// Who sent an awareness update.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sender {
    /// The connection's id within the room.
    pub conn: u64,
    /// The connection's account.
    pub user: UserId,
    /// Whether it may edit (others may announce one client id only).
    pub may_edit: bool,
}

/// The document's awareness and which connection owns each client id.
pub(super) struct Presence {
    awareness: Awareness,
    owners: HashMap<ClientID, u64>,
    owned: HashMap<u64, Vec<ClientID>>,
    max_state_bytes: usize,
    max_clients: usize,
}

impl Presence {
    /// Empty awareness for `doc`, with the limits from the configuration.
    pub fn new(doc: Doc, max_state_bytes: usize, max_clients: usize) -> Presence {
        Presence {
            awareness: Awareness::new(doc),
            owners: HashMap::new(),
            owned: HashMap::new(),
            max_state_bytes,
            max_clients: max_clients.max(1),
        }
    }

    /// Applies the entries of `update` that `from` may send and returns them for relaying
    /// (`None` when nothing is left).
    pub fn admit(&mut self, from: Sender, update: AwarenessUpdate) -> Option<AwarenessUpdate> {
        let cap = if from.may_edit { self.max_clients } else { 1 };
        let mut kept: HashMap<ClientID, AwarenessUpdateEntry> = HashMap::new();
        for (client, entry) in update.clients {
            let owner = self.owners.get(&client).copied();
            if owner.is_some_and(|o| o != from.conn) {
                tracing::debug!(
                    client = client.get(),
                    "dropped awareness for a client id another connection owns"
                );
                continue;
            }
            if !valid_state(&entry.json, from.user, self.max_state_bytes) {
                tracing::debug!(
                    client = client.get(),
                    "dropped an invalid or oversized awareness state"
                );
                continue;
            }
            if owner.is_none() {
                // Removing a state nobody owns changes nothing worth relaying.
                if &*entry.json == GONE {
                    continue;
                }
                let ids = self.owned.entry(from.conn).or_default();
                if ids.len() >= cap {
                    tracing::debug!(
                        client = client.get(),
                        "dropped awareness beyond the connection's client ids"
                    );
                    continue;
                }
                ids.push(client);
                self.owners.insert(client, from.conn);
            }
            kept.insert(client, entry);
        }
        if kept.is_empty() {
            return None;
        }
        let update = AwarenessUpdate { clients: kept };
        if let Err(e) = self.awareness.apply_update(update.clone()) {
            tracing::debug!(error = %e, "ignored an awareness update");
        }
        Some(update)
    }

    /// Every present state, for a connection that joins or asks (`None` when there is none).
    pub fn snapshot(&self) -> Option<AwarenessUpdate> {
        self.awareness
            .update()
            .ok()
            .filter(|u| !u.clients.is_empty())
    }

    /// Removes the states connection `conn` owns and returns their removal for the others.
    pub fn leave(&mut self, conn: u64) -> Option<AwarenessUpdate> {
        let ids = self.owned.remove(&conn)?;
        for client in &ids {
            self.owners.remove(client);
            self.awareness.remove_state(*client);
        }
        self.awareness.update_with_clients(ids).ok()
    }
}

/// A state the server relays: `null`, or a JSON object within the size limit whose
/// `user.id`, if any, is the sender's own account.
fn valid_state(json: &str, user: UserId, max_bytes: usize) -> bool {
    if json.len() > max_bytes {
        return false;
    }
    if json == GONE {
        return true;
    }
    let Ok(serde_json::Value::Object(state)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return false;
    };
    match state.get("user").and_then(|u| u.get("id")) {
        None => true,
        Some(id) => id
            .as_str()
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
            .is_some_and(|id| id == user.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(clock: u32, json: &str) -> AwarenessUpdateEntry {
        AwarenessUpdateEntry {
            clock,
            json: Arc::from(json),
        }
    }

    fn update(entries: &[(u64, u32, &str)]) -> AwarenessUpdate {
        AwarenessUpdate {
            clients: entries
                .iter()
                .map(|(c, clock, json)| (ClientID::new(*c), entry(*clock, json)))
                .collect(),
        }
    }

    fn sender(conn: u64, user: UserId, may_edit: bool) -> Sender {
        Sender {
            conn,
            user,
            may_edit,
        }
    }

    fn ids(u: &Option<AwarenessUpdate>) -> Vec<u64> {
        let mut v: Vec<u64> = u
            .iter()
            .flat_map(|u| u.clients.keys().map(|c| c.get()))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn client_ids_belong_to_the_first_connection_until_it_leaves() {
        let (ann, bo) = (UserId::generate(), UserId::generate());
        let mut p = Presence::new(Doc::new(), 8192, 4);
        let first = p.admit(sender(1, ann, true), update(&[(7, 1, r#"{"a":1}"#)]));
        assert_eq!(ids(&first), vec![7]);
        // Another connection can neither overwrite nor remove it.
        assert!(p
            .admit(sender(2, bo, true), update(&[(7, 2, r#"{"b":1}"#)]))
            .is_none());
        assert!(p
            .admit(sender(2, bo, true), update(&[(7, 2, GONE)]))
            .is_none());
        // Its owner leaving removes it; the other connection leaving removes nothing.
        assert!(p.leave(2).is_none());
        let gone = p.leave(1).expect("removal");
        assert_eq!(&*gone.clients[&ClientID::new(7)].json, GONE);
        assert!(p.snapshot().is_none());
    }

    #[test]
    fn states_are_capped_in_size_count_and_shape() {
        let ann = UserId::generate();
        let mut p = Presence::new(Doc::new(), 64, 2);
        let big = format!(r#"{{"x":"{}"}}"#, "y".repeat(64));
        let own = format!(r#"{{"user":{{"id":"{}"}}}}"#, ann.0);
        let other = format!(r#"{{"user":{{"id":"{}"}}}}"#, UserId::generate().0);
        let kept = p.admit(
            sender(1, ann, true),
            update(&[
                (1, 1, &big),
                (2, 1, "{not json"),
                (3, 1, "[1]"),
                (4, 1, &other),
                (5, 1, &own),
                (6, 1, "{}"),
                (7, 1, "{}"),
            ]),
        );
        // Two valid new ids at most; which two depends on map order.
        let kept = ids(&kept);
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(kept.iter().all(|c| [5, 6, 7].contains(c)), "{kept:?}");
        // A viewer gets one id.
        let mut p = Presence::new(Doc::new(), 64, 4);
        assert_eq!(
            ids(&p.admit(sender(1, ann, false), update(&[(1, 1, "{}")]))),
            vec![1]
        );
        assert!(p
            .admit(sender(1, ann, false), update(&[(2, 1, "{}")]))
            .is_none());
        assert_eq!(
            ids(&p.admit(sender(1, ann, false), update(&[(1, 2, "{}")]))),
            vec![1]
        );
    }
}
