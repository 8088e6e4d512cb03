//! The app's server-side state: signed-in sessions (the browser holds only a random id in an
//! HttpOnly cookie) and sign-ins in progress (state → nonce, PKCE verifier, page to return to).
//!
//! A session ends when the user's API Hub token expires on the run clock, so shifting the
//! landscape's clock past it makes the app ask for a sign-in again. Both maps are capped: when
//! full, expired entries go first, then the oldest.

use std::collections::HashMap;

use crate::runtime::consent::random_token;

/// Sessions kept at most (a landscape has a handful of users; this bounds a flood of sign-ins).
const MAX_SESSIONS: usize = 10_000;
/// Sign-ins in progress kept at most.
const MAX_PENDING: usize = 10_000;
/// How long a sign-in may take from the redirect to Entra to the callback (run-clock seconds;
/// Entra's authorization codes live 10 minutes too).
pub const SIGN_IN_LIFETIME: i64 = 600;

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user's object id (lower case), as the runtime names connection owners.
    pub oid: String,
    /// `name` of the ID token, else the UPN.
    pub display_name: String,
    /// `preferred_username` of the ID token.
    pub upn: String,
    /// The user's API Hub token, sent to the runtime as Power Apps sends it.
    pub access_token: String,
    /// Unix seconds (run clock): the access token's expiry.
    pub expires_at: i64,
    /// `x-ms-client-session-id` of the calls this session makes (not the cookie's secret).
    pub client_session_id: String,
}

/// A sign-in waiting for Entra's callback.
#[derive(Clone, Debug)]
pub struct PendingSignIn {
    pub nonce: String,
    pub verifier: String,
    /// Path and query below `/apps/` to open once signed in.
    pub return_to: String,
    pub started_at: i64,
}

/// What a session lookup found.
#[derive(Clone, Debug)]
pub enum Lookup {
    Active(Session),
    /// The cookie names a session whose token expired: the user signs in again.
    Expired {
        upn: String,
    },
    None,
}

#[derive(Debug, Default)]
pub struct SessionStore {
    sessions: HashMap<String, Session>,
    pending: HashMap<String, PendingSignIn>,
}

impl SessionStore {
    /// Records a sign-in in progress under a new `state`; returns the state.
    pub fn begin(&mut self, pending: PendingSignIn, now: i64) -> String {
        let state = random_token(24);
        self.pending
            .retain(|_, p| p.started_at + SIGN_IN_LIFETIME > now);
        if self.pending.len() >= MAX_PENDING
            && let Some(oldest) = oldest(&self.pending, |p| p.started_at)
        {
            self.pending.remove(&oldest);
        }
        self.pending.insert(state.clone(), pending);
        state
    }

    /// Takes the sign-in `state` names (once), unless it is too old.
    pub fn take_pending(&mut self, state: &str, now: i64) -> Option<PendingSignIn> {
        self.pending
            .remove(state)
            .filter(|p| p.started_at + SIGN_IN_LIFETIME > now)
    }

    /// Stores `session`; returns its cookie id.
    pub fn insert(&mut self, session: Session, now: i64) -> String {
        let id = random_token(32);
        self.sessions.retain(|_, s| s.expires_at > now);
        if self.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = oldest(&self.sessions, |s| s.expires_at)
        {
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(id.clone(), session);
        id
    }

    pub fn lookup(&mut self, id: &str, now: i64) -> Lookup {
        match self.sessions.get(id) {
            Some(s) if s.expires_at > now => Lookup::Active(s.clone()),
            Some(_) => {
                let upn = self.sessions.remove(id).map(|s| s.upn).unwrap_or_default();
                Lookup::Expired { upn }
            }
            None => Lookup::None,
        }
    }

    /// Ends a session (sign-out, or the runtime refused its token).
    pub fn remove(&mut self, id: &str) -> Option<Session> {
        self.sessions.remove(id)
    }
}

fn oldest<T>(map: &HashMap<String, T>, key: impl Fn(&T) -> i64) -> Option<String> {
    map.iter()
        .min_by_key(|(_, v)| key(v))
        .map(|(k, _)| k.clone())
}
