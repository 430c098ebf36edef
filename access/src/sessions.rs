//! Sessions: a random token per login, ended by logout, by an absolute lifetime or by
//! idleness, and a CSRF token per session for requests a browser sends with its cookie.

use std::{collections::HashMap, sync::Mutex};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::{random_hex, AccessError, User};

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub lifetime: Duration,
    pub idle: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            lifetime: Duration::hours(12),
            idle: Duration::minutes(30),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    #[serde(skip)]
    pub token: String,
    pub csrf: String,
    pub user: User,
    pub created: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("not logged in")]
    Unknown,
    #[error("session expired")]
    Expired,
    #[error("session ended after {0} minutes without activity")]
    Idle(i64),
}

#[derive(Debug, Default)]
pub struct Sessions {
    policy: SessionPolicy,
    live: Mutex<HashMap<String, Session>>,
    /// One-time login tickets: token → (user, valid until).
    tickets: Mutex<HashMap<String, (User, DateTime<Utc>)>>,
}

/// How long a login ticket can wait to be used.
const TICKET_LIFE: Duration = Duration::seconds(60);

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Sessions {
        Sessions {
            policy,
            ..Sessions::default()
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    pub fn start(&self, user: User, now: DateTime<Utc>) -> Result<Session, AccessError> {
        let s = Session {
            token: random_hex(32)?,
            csrf: random_hex(32)?,
            user,
            created: now,
            last_seen: now,
            expires: now + self.policy.lifetime,
        };
        let mut live = self.lock();
        // Expired sessions go when new ones come: the map stays as big as the logged-in
        // users, without a sweeper task.
        live.retain(|_, s| s.expires > now && now - s.last_seen <= self.policy.idle);
        live.insert(s.token.clone(), s.clone());
        Ok(s)
    }

    /// The session behind `token`, marked as active now.
    pub fn touch(&self, token: &str, now: DateTime<Utc>) -> Result<Session, SessionError> {
        let mut live = self.lock();
        let s = live.get_mut(token).ok_or(SessionError::Unknown)?;
        if now >= s.expires {
            live.remove(token);
            return Err(SessionError::Expired);
        }
        if now - s.last_seen > self.policy.idle {
            live.remove(token);
            return Err(SessionError::Idle(self.policy.idle.num_minutes()));
        }
        s.last_seen = now;
        Ok(s.clone())
    }

    /// Whether the session is still valid, without counting this as activity: a page's
    /// live stream must not keep a walked-away user's session open.
    pub fn alive(&self, token: &str, now: DateTime<Utc>) -> bool {
        self.lock()
            .get(token)
            .is_some_and(|s| now < s.expires && now - s.last_seen <= self.policy.idle)
    }

    pub fn end(&self, token: &str) -> Option<Session> {
        self.lock().remove(token)
    }

    /// Ends every session of a user (disabled, role or scope changed): the next request
    /// sees the new rights, not the ones granted at login.
    pub fn end_user(&self, name: &str) -> usize {
        let mut live = self.lock();
        let before = live.len();
        live.retain(|_, s| s.user.name != name);
        before - live.len()
    }

    /// A single-use ticket that logs `user` in once within a minute: how a control-room
    /// display or a test's browser is handed a session without typing a password into it.
    pub fn ticket(&self, user: User, now: DateTime<Utc>) -> Result<String, AccessError> {
        let t = random_hex(32)?;
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets.retain(|_, (_, until)| *until > now);
        tickets.insert(t.clone(), (user, now + TICKET_LIFE));
        Ok(t)
    }

    /// Uses up a ticket: the user it was made for, if it is still valid.
    pub fn redeem(&self, ticket: &str, now: DateTime<Utc>) -> Option<User> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        tickets
            .remove(ticket)
            .filter(|(_, until)| *until > now)
            .map(|(u, _)| u)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}
