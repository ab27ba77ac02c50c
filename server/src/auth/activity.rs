//! What a person last did in each session, for automatic logoff (HIPAA 164.312(a)(2)(iii)).
//!
//! Activity is what the person sends: an authenticated HTTP request, and over a socket a
//! message posted, a typing notice or an edit to a document. What clients send on their own
//! is not: refreshing a token, opening or resuming a socket, pings, presence (`online`,
//! `away`) and Yjs awareness or sync requests. Touches are kept in memory (cheap on every
//! request) and written to `sessions.last_active_at` by the logoff sweep
//! (`phi::logoff`), which also hands back the idle period each person is subject to: the
//! shortest `phi.idle_logoff_minutes` of the PHI workspaces they belong to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Duration, Utc};

use crate::domain::{SessionId, UserId};

#[derive(Default)]
struct State {
    /// Activity seen since the last sweep took it.
    seen: HashMap<SessionId, DateTime<Utc>>,
    /// Idle periods of the people subject to automatic logoff.
    limits: HashMap<UserId, Duration>,
}

/// Activity seen in this process and the idle periods in force; cheap to clone.
#[derive(Clone, Default)]
pub struct Activity {
    state: Arc<Mutex<State>>,
}

impl Activity {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The person did something in `session` at `at`.
    pub fn touch(&self, session: SessionId, at: DateTime<Utc>) {
        let mut state = self.state();
        let entry = state.seen.entry(session).or_insert(at);
        if *entry < at {
            *entry = at;
        }
    }

    /// The last activity seen in `session` since the sweep last took it.
    pub fn seen(&self, session: SessionId) -> Option<DateTime<Utc>> {
        self.state().seen.get(&session).copied()
    }

    /// The activity seen and not yet stored. It stays here until [`Activity::stored`]:
    /// a request checked meanwhile still sees it.
    pub fn unsaved(&self) -> Vec<(SessionId, DateTime<Utc>)> {
        self.state().seen.iter().map(|(s, at)| (*s, *at)).collect()
    }

    /// `saved` is in storage now: forgets each entry no newer activity replaced since.
    pub fn stored(&self, saved: &[(SessionId, DateTime<Utc>)]) {
        let mut state = self.state();
        for (session, at) in saved {
            if state.seen.get(session) == Some(at) {
                state.seen.remove(session);
            }
        }
    }

    /// The idle period `user` is subject to, if any.
    pub fn limit(&self, user: UserId) -> Option<Duration> {
        self.state().limits.get(&user).copied()
    }

    /// Replaces the idle periods in force.
    pub fn set_limits(&self, limits: HashMap<UserId, Duration>) {
        self.state().limits = limits;
    }

    /// Forgets a session's unsaved activity (it ended).
    pub fn forget(&self, session: SessionId) {
        self.state().seen.remove(&session);
    }
}
