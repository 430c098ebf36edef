//! [`SourceStatus`]: what the OPC UA source is doing, readable at any moment by the web API.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Mutex,
    },
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use model::Sample;

/// A tag that is not flowing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagError {
    /// `site/area/line/equipment/signal`.
    pub tag: String,
    /// The configured node, `nsu=…;s=…`.
    pub node: String,
    /// OPC UA status name (`BadNodeIdUnknown`, …) or `NamespaceUnknown`.
    pub status: String,
    pub message: String,
    pub since: DateTime<Utc>,
}

/// The latest notification of a tag that carried a status but no value. It is stored as a
/// null with that status (a value is never invented nor carried forward) and listed here
/// until a value arrives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValuelessStatus {
    pub tag: String,
    pub status: String,
    pub quality: u32,
    pub at: DateTime<Utc>,
}

/// Live state of one OPC UA source. Thread-safe; share it in an `Arc`.
#[derive(Debug, Default)]
pub struct SourceStatus {
    connected: AtomicBool,
    connect_attempts: AtomicU64,
    sessions: AtomicU64,
    connection_losses: AtomicU64,
    notifications: AtomicU64,
    samples_forwarded: AtomicU64,
    samples_queued: AtomicU64,
    sequence_gaps: AtomicU64,
    republished: AtomicU64,
    monitored: AtomicU64,
    detail: Mutex<Detail>,
}

#[derive(Debug, Default, Clone)]
struct Detail {
    site: String,
    endpoint: String,
    security: String,
    signals: usize,
    subscriptions: usize,
    last_notification: Option<DateTime<Utc>>,
    last_error: Option<(String, DateTime<Utc>)>,
    tag_errors: BTreeMap<String, TagError>,
    valueless: BTreeMap<String, ValuelessStatus>,
}

/// A point-in-time copy of [`SourceStatus`], serializable for the web API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceStatusSnapshot {
    pub site: String,
    pub endpoint: String,
    /// Security policy, mode and user kind of the session, e.g. `Basic256Sha256
    /// SignAndEncrypt, username`.
    pub security: String,
    pub connected: bool,
    /// Connection attempts of the session (each at most one CreateSession or
    /// ActivateSession): what a reconnect storm would drive up.
    pub connect_attempts: u64,
    /// Sessions created so far; more than one means the source reconnected with a new session.
    pub sessions: u64,
    pub connection_losses: u64,
    /// Data-change notifications received, with or without a value.
    pub notifications: u64,
    pub last_notification: Option<DateTime<Utc>>,
    /// Samples handed to the downstream channel.
    pub samples_forwarded: u64,
    /// Samples received but not yet accepted by the downstream channel (backpressure).
    pub samples_queued: u64,
    /// Notification messages the server numbered but the source never received.
    pub sequence_gaps: u64,
    /// Of those, messages recovered with Republish.
    pub republished: u64,
    pub signals: usize,
    pub monitored: u64,
    pub subscriptions: usize,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub tag_errors: Vec<TagError>,
    pub valueless: Vec<ValuelessStatus>,
}

impl SourceStatus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> SourceStatusSnapshot {
        let d = self.detail().clone();
        SourceStatusSnapshot {
            site: d.site,
            endpoint: d.endpoint,
            security: d.security,
            connected: self.connected.load(Ordering::Relaxed),
            connect_attempts: self.connect_attempts.load(Ordering::Relaxed),
            sessions: self.sessions.load(Ordering::Relaxed),
            connection_losses: self.connection_losses.load(Ordering::Relaxed),
            notifications: self.notifications.load(Ordering::Relaxed),
            last_notification: d.last_notification,
            samples_forwarded: self.samples_forwarded.load(Ordering::Relaxed),
            samples_queued: self.samples_queued.load(Ordering::Relaxed),
            sequence_gaps: self.sequence_gaps.load(Ordering::Relaxed),
            republished: self.republished.load(Ordering::Relaxed),
            signals: d.signals,
            monitored: self.monitored.load(Ordering::Relaxed),
            subscriptions: d.subscriptions,
            last_error: d.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: d.last_error.as_ref().map(|(_, t)| *t),
            tag_errors: d.tag_errors.into_values().collect(),
            valueless: d.valueless.into_values().collect(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Error of one tag, if its monitored item could not be created.
    pub fn tag_error(&self, path: &str) -> Option<TagError> {
        self.detail().tag_errors.get(path).cloned()
    }

    fn detail(&self) -> std::sync::MutexGuard<'_, Detail> {
        // A panic while holding the lock leaves plain data behind; keep reporting it.
        self.detail.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn begin(&self, site: &str, endpoint: &str, security: String, signals: usize) {
        let mut d = self.detail();
        d.site = site.to_string();
        d.endpoint = endpoint.to_string();
        d.security = security;
        d.signals = signals;
    }

    pub(crate) fn connect_attempted(&self) {
        self.connect_attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn session_started(&self, new_session: bool) {
        self.connected.store(true, Ordering::Relaxed);
        if new_session {
            self.sessions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn connection_lost(&self, why: String) {
        self.connected.store(false, Ordering::Relaxed);
        self.connection_losses.fetch_add(1, Ordering::Relaxed);
        self.error(why);
    }

    pub(crate) fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    pub(crate) fn error(&self, message: String) {
        self.detail().last_error = Some((message, Utc::now()));
    }

    pub(crate) fn set_monitoring(&self, monitored: usize, subscriptions: usize) {
        self.monitored.store(monitored as u64, Ordering::Relaxed);
        self.detail().subscriptions = subscriptions;
    }

    pub(crate) fn set_tag_error(&self, e: TagError) {
        self.detail().tag_errors.insert(e.tag.clone(), e);
    }

    pub(crate) fn clear_tag_error(&self, path: &str) {
        let mut d = self.detail();
        if !d.tag_errors.is_empty() {
            d.tag_errors.remove(path);
        }
    }

    /// Records one notification message's worth of activity: `count` notifications, the
    /// samples made of them and the notifications that had no value.
    pub(crate) fn notified(
        &self,
        count: usize,
        at: DateTime<Utc>,
        samples: &[Sample],
        valueless: Vec<ValuelessStatus>,
    ) {
        self.notifications
            .fetch_add(count as u64, Ordering::Relaxed);
        let mut d = self.detail();
        d.last_notification = Some(at);
        for v in valueless {
            d.valueless.insert(v.tag.clone(), v);
        }
        // A value at least as new as the valueless status supersedes it, and a tag that
        // delivers values is flowing, whatever error it had.
        if !d.valueless.is_empty() || !d.tag_errors.is_empty() {
            for s in samples.iter().filter(|s| !s.value.is_null()) {
                let path = s.tag.path();
                if d.valueless.get(&path).is_some_and(|v| s.source_ts >= v.at) {
                    d.valueless.remove(&path);
                }
                d.tag_errors.remove(&path);
            }
        }
    }

    pub(crate) fn queued(&self, n: usize) {
        self.samples_queued.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn forwarded(&self, n: usize) {
        self.samples_forwarded
            .fetch_add(n as u64, Ordering::Relaxed);
        let _ = self
            .samples_queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                Some(q.saturating_sub(n as u64))
            });
    }

    pub(crate) fn gap(&self, missing: u64) {
        self.sequence_gaps.fetch_add(missing, Ordering::Relaxed);
    }

    pub(crate) fn republished(&self, n: u64) {
        self.republished.fetch_add(n, Ordering::Relaxed);
    }
}
