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

use super::continuity::GapRecord;

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

/// A tag that has been updating and went silent while the session is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleTag {
    pub tag: String,
    pub last_update: DateTime<Utc>,
}

/// Gap records kept in the status for the web view; all are in the gap log.
const RECENT_GAPS: usize = 50;

/// Server clock off the connector's by more than this is flagged.
const SKEW_LIMIT_MS: i64 = 1_000;
/// Messages whose smallest delay make up the skew estimate: the freshest value of a message
/// left the server a few milliseconds before it arrived, so the smallest delay over a window
/// is the clocks' offset plus little, and a stall's backlog does not count as skew.
const SKEW_WINDOW: usize = 32;

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
    bad_quality: AtomicU64,
    uncertain_quality: AtomicU64,
    overflows: AtomicU64,
    gap_records: AtomicU64,
    open_gaps: AtomicU64,
    backfilled: AtomicU64,
    revised_items: AtomicU64,
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
    recent_gaps: std::collections::VecDeque<GapRecord>,
    stale: Vec<StaleTag>,
    /// Smallest (receive − server time) of each recent message, ms.
    delays: std::collections::VecDeque<i64>,
    /// Smallest (receive − source time) of each recent message, ms.
    source_delays: std::collections::VecDeque<i64>,
    /// Notifications counted at a moment, for the rate.
    rate_mark: Option<(DateTime<Utc>, u64)>,
    rate: f64,
}

/// A point-in-time copy of [`SourceStatus`], serializable for the web API.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Data-change notifications per second over the last ten seconds or so.
    pub notifications_per_s: f64,
    /// Values that came with a Bad / Uncertain status.
    pub bad_quality: u64,
    pub uncertain_quality: u64,
    /// Values with the Overflow bit: the server's queue for the item dropped values.
    pub overflows: u64,
    /// Gaps in tags' histories that the live stream did not cover, recorded.
    pub gap_records: u64,
    /// Gaps opened and not yet closed by a tag's next value.
    pub open_gaps: u64,
    /// Values read from the server's history into gaps.
    pub backfilled: u64,
    /// Monitored items whose sampling interval or queue size the server revised.
    pub revised_items: u64,
    /// The server clock minus the connector's, estimated from the freshest values, ms.
    pub clock_skew_ms: Option<i64>,
    /// The same for the source timestamps: the devices' clock, which records are kept by.
    pub source_clock_skew_ms: Option<i64>,
    /// Either skew is over a second: times of record are not the connector's time.
    pub clock_skew_flagged: bool,
    pub stale: Vec<StaleTag>,
    /// The latest gap records, newest last.
    pub recent_gaps: Vec<GapRecord>,
}

impl SourceStatus {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> SourceStatusSnapshot {
        let notifications = self.notifications.load(Ordering::Relaxed);
        let d = {
            let mut d = self.detail();
            let now = Utc::now();
            match d.rate_mark {
                Some((at, n)) if (now - at).num_milliseconds() >= 10_000 => {
                    let secs = (now - at).num_milliseconds() as f64 / 1000.0;
                    d.rate = notifications.saturating_sub(n) as f64 / secs;
                    d.rate_mark = Some((now, notifications));
                }
                Some(_) => {}
                None => d.rate_mark = Some((now, notifications)),
            }
            d.clone()
        };
        // Delay = transport + (connector clock − server clock); its minimum has the least
        // transport in it.
        let skew = d.delays.iter().copied().min().map(|d| -d);
        let source_skew = d.source_delays.iter().copied().min().map(|d| -d);
        let off = |s: Option<i64>| s.is_some_and(|s| s.abs() > SKEW_LIMIT_MS);
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
            notifications_per_s: (d.rate * 10.0).round() / 10.0,
            bad_quality: self.bad_quality.load(Ordering::Relaxed),
            uncertain_quality: self.uncertain_quality.load(Ordering::Relaxed),
            overflows: self.overflows.load(Ordering::Relaxed),
            gap_records: self.gap_records.load(Ordering::Relaxed),
            open_gaps: self.open_gaps.load(Ordering::Relaxed),
            backfilled: self.backfilled.load(Ordering::Relaxed),
            revised_items: self.revised_items.load(Ordering::Relaxed),
            clock_skew_ms: skew,
            source_clock_skew_ms: source_skew,
            clock_skew_flagged: off(skew) || off(source_skew),
            stale: d.stale,
            recent_gaps: d.recent_gaps.into_iter().collect(),
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

    /// Counts the qualities of a message's samples and notes its smallest delay from the
    /// server's time (for the clock skew); `overflows` from [`super::continuity`].
    pub(crate) fn qualities(&self, samples: &[Sample], overflows: u64) {
        let (mut bad, mut uncertain) = (0, 0);
        let mut delay: Option<i64> = None;
        let mut source_delay: Option<i64> = None;
        for s in samples {
            // A server that sent no source time had ours stand in: no evidence.
            if s.source_ts != s.received_ts {
                let d = (s.received_ts - s.source_ts).num_milliseconds();
                source_delay = Some(source_delay.map_or(d, |x| x.min(d)));
            }
            if s.quality.is_bad() {
                bad += 1;
            } else if s.quality.is_uncertain() {
                uncertain += 1;
            }
            if let Some(server) = s.server_ts {
                let d = (s.received_ts - server).num_milliseconds();
                delay = Some(delay.map_or(d, |x| x.min(d)));
            }
        }
        self.bad_quality.fetch_add(bad, Ordering::Relaxed);
        self.uncertain_quality
            .fetch_add(uncertain, Ordering::Relaxed);
        self.overflows.fetch_add(overflows, Ordering::Relaxed);
        if delay.is_some() || source_delay.is_some() {
            let mut guard = self.detail();
            let detail = &mut *guard;
            for (window, d) in [
                (&mut detail.delays, delay),
                (&mut detail.source_delays, source_delay),
            ] {
                if let Some(d) = d {
                    if window.len() == SKEW_WINDOW {
                        window.pop_front();
                    }
                    window.push_back(d);
                }
            }
        }
    }

    pub(crate) fn gap_recorded(&self, record: GapRecord) {
        self.gap_records.fetch_add(1, Ordering::Relaxed);
        self.backfilled
            .fetch_add(record.backfilled as u64, Ordering::Relaxed);
        let mut d = self.detail();
        if d.recent_gaps.len() == RECENT_GAPS {
            d.recent_gaps.pop_front();
        }
        d.recent_gaps.push_back(record);
    }

    pub(crate) fn set_open_gaps(&self, n: usize) {
        self.open_gaps.store(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn set_stale(&self, stale: Vec<StaleTag>) {
        self.detail().stale = stale;
    }

    pub(crate) fn revised(&self, n: u64) {
        self.revised_items.fetch_add(n, Ordering::Relaxed);
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
