//! Browser sessions of the control API, for the dashboard: a browser cannot send the bearer
//! header when it opens a page or an event stream, so `ppvnet up` prints a one-time login URL
//! (as Jupyter prints its token URL) whose ticket is exchanged once for a session cookie.
//!
//! - A ticket is 64 random hexadecimal digits ([`super::new_token`]), valid for one login:
//!   redeeming it removes it, so a URL copied from a terminal or a browser history later is
//!   refused. More can be asked for with the bearer token (`POST /dashboard/login-url`).
//! - A session is a random id (the cookie, `HttpOnly; SameSite=Strict`) and a random CSRF token
//!   that the dashboard page carries and sends back in `X-CSRF-Token` on every request that
//!   changes something: the guard refuses a cookie-authenticated `POST`/`DELETE` without it.
//! - At most [`MAX_TICKETS`] tickets and [`MAX_SESSIONS`] sessions are kept; the oldest go first.
//!
//! Sessions live in memory and end with the run.

use std::collections::VecDeque;
use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// Unused login tickets kept at once.
pub const MAX_TICKETS: usize = 16;
/// Browser sessions kept at once.
pub const MAX_SESSIONS: usize = 32;

/// A browser session: the cookie's value and the CSRF token its page sends back.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub csrf: String,
}

impl std::fmt::Debug for Session {
    // Both values are credentials: they stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session { .. }")
    }
}

#[derive(Default)]
struct Inner {
    tickets: VecDeque<String>,
    sessions: VecDeque<Session>,
}

/// The run's login tickets and browser sessions.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }")
    }
}

/// Whether `a` equals `b`, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is one push or remove: the data stays consistent after a panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh one-time login ticket.
    pub fn issue_ticket(&self) -> String {
        let ticket = super::new_token();
        let mut g = self.lock();
        if g.tickets.len() == MAX_TICKETS {
            g.tickets.pop_front();
        }
        g.tickets.push_back(ticket.clone());
        ticket
    }

    /// Exchanges a ticket for a new session; `None` when the ticket is unknown or was used.
    pub fn redeem(&self, ticket: &str) -> Option<Session> {
        let mut g = self.lock();
        // Every ticket is compared, so timing does not tell which one came close.
        let found =
            g.tickets.iter().enumerate().fold(
                None,
                |hit, (i, t)| if same(t, ticket) { Some(i) } else { hit },
            )?;
        g.tickets.remove(found);
        let session = Session {
            id: super::new_token(),
            csrf: super::new_token(),
        };
        if g.sessions.len() == MAX_SESSIONS {
            g.sessions.pop_front();
        }
        g.sessions.push_back(session.clone());
        Some(session)
    }

    /// The session whose cookie value is `id`.
    pub fn find(&self, id: &str) -> Option<Session> {
        self.lock().sessions.iter().fold(None, |hit, s| {
            if same(&s.id, id) {
                Some(s.clone())
            } else {
                hit
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_logs_in_once() {
        let s = Sessions::default();
        let ticket = s.issue_ticket();
        assert!(s.redeem("not-a-ticket").is_none());
        let session = s.redeem(&ticket).expect("the ticket works once");
        assert!(s.redeem(&ticket).is_none(), "a used ticket is refused");
        let found = s.find(&session.id).expect("the session is known");
        assert_eq!(found.csrf, session.csrf);
        assert_ne!(session.id, session.csrf);
        assert!(s.find(&session.csrf).is_none());
    }

    #[test]
    fn the_oldest_tickets_and_sessions_go_first() {
        let s = Sessions::default();
        let first = s.issue_ticket();
        for _ in 0..MAX_TICKETS {
            s.issue_ticket();
        }
        assert!(s.redeem(&first).is_none());
        let sessions: Vec<Session> = (0..=MAX_SESSIONS)
            .map(|_| s.redeem(&s.issue_ticket()).expect("a fresh ticket"))
            .collect();
        assert!(s.find(&sessions[0].id).is_none());
        assert!(s.find(&sessions[MAX_SESSIONS].id).is_some());
    }
}
