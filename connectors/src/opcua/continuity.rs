//! Whether each tag's stream is whole, and whether it is still coming.
//!
//! Every value's source time is noted per tag. When something says values may have been lost
//! — the server's queue for an item overflowed, notification messages could not be
//! republished, subscriptions were lost with their session, the connection was down longer
//! than the server's queues cover — the tags concerned get an open gap from their last value.
//! Their next value closes it into a [`ClosedGap`]; the source back-fills it from the
//! server's history where it keeps one, and records it as a [`GapRecord`].
//!
//! The same notes tell which tags went stale: silent past their limit while the session is
//! alive (see [`StaleLimit`]).

use std::{sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use model::Sample;

/// The Overflow bit of a StatusCode: the server's queue for the item was full and it
/// discarded values. The spec sets it with InfoType = DataValue (0x400); async-opcua sets
/// the bit alone, and the bit means nothing else, so the bit alone counts.
const OVERFLOW: u32 = 0x0000_0080;

/// How long a tag may stay silent while the session is alive before it counts as stale.
///
/// Only tags whose server reports every fresh sample have one (their own `stale_after_ms`,
/// or trigger `status_value_timestamp`): with the default trigger a server sends changes
/// only, and a value that holds still — a stopped press's speed — is quiet, not stale.
pub(crate) type StaleLimit = Duration;

/// A stretch of a tag's history the live stream does not cover, written for the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapRecord {
    /// `site/area/line/equipment/signal`.
    pub tag: String,
    /// The last value received before the gap (exclusive).
    pub from: DateTime<Utc>,
    /// The first value received after it (exclusive).
    pub to: DateTime<Utc>,
    pub reason: String,
    /// Values read from the server's history into the gap, flagged `backfilled`.
    pub backfilled: usize,
    /// Why the gap was not (fully) back-filled, when it was tried and failed.
    pub backfill_error: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// A gap whose end is known; the source back-fills and records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ClosedGap {
    pub(crate) index: usize,
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
    pub(crate) reason: String,
}

#[derive(Debug, Default, Clone)]
struct Seen {
    subscription: Option<u32>,
    last_source: Option<DateTime<Utc>>,
    last_update: Option<DateTime<Utc>>,
    open: Option<Open>,
}

#[derive(Debug, Clone)]
struct Open {
    from: DateTime<Utc>,
    reason: String,
    /// For a gap opened by the server's silence: the oldest time the item's queue can have
    /// kept a value from (the publish time of the message that ended the silence, less what
    /// the queue covers). An older value was on its way during the silence and does not end
    /// the gap, it moves its start.
    silent_since: Option<DateTime<Utc>>,
}

/// Per tag: its last value's times and its open gap. Shared by the subscriptions' callbacks
/// and the source.
#[derive(Debug)]
pub(crate) struct Continuity {
    seen: Mutex<Vec<Seen>>,
    /// Each tag's stale limit: its own, or the source's default.
    stale_after: Vec<Option<StaleLimit>>,
    /// How long the server's queue of each tag's item holds its values without a publish.
    cover: Vec<Duration>,
    /// Silence longer than this means the server could not publish: the subscription's
    /// keep-alive interval, and a publishing interval to spare.
    silence_limit: Duration,
    closed: mpsc::UnboundedSender<ClosedGap>,
}

impl Continuity {
    pub(crate) fn new(
        stale_after: Vec<Option<StaleLimit>>,
        cover: Vec<Duration>,
        silence_limit: Duration,
        closed: mpsc::UnboundedSender<ClosedGap>,
    ) -> Self {
        Continuity {
            seen: Mutex::new(vec![Seen::default(); stale_after.len()]),
            stale_after,
            cover,
            silence_limit,
            closed,
        }
    }

    /// Notes which subscription tag `i`'s monitored item is in.
    pub(crate) fn assign(&self, i: usize, subscription: Option<u32>) {
        if let Some(s) = self.seen().get_mut(i) {
            s.subscription = subscription;
        }
    }

    /// A message of `subscription`, published at `published`, was published `silence` after
    /// the one before it (not even a keep-alive in between). Past the keep-alive interval the
    /// server could not publish; an item whose queue covers less than that may have dropped
    /// values, so its tag gets a gap (closed by its next value, typically in this very
    /// message). Returns how many were opened.
    pub(crate) fn after_silence(
        &self,
        subscription: u32,
        silence: Duration,
        published: DateTime<Utc>,
    ) -> usize {
        if silence <= self.silence_limit {
            return 0;
        }
        let members: Vec<usize> = self
            .seen()
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.subscription == Some(subscription)
                    && self.cover.get(*i).is_some_and(|c| *c < silence)
            })
            .map(|(i, _)| i)
            .collect();
        // The server's own clock, not the arrival: on a busy machine the message can reach
        // us long after it was sent, and the queue's oldest value would look older than the
        // queue can hold, moving the gap's start past the values it really lost.
        let now = published;
        let reason = format!(
            "no message from the server for {:.1} s, longer than the item's queue covers",
            silence.as_secs_f64()
        );
        members
            .into_iter()
            .map(|i| {
                let cover = chrono::Duration::from_std(self.cover[i]).unwrap_or_default();
                self.open_since([i], &reason, Some(now - cover))
            })
            .sum()
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes one message's samples (signal index, sample); returns how many carried the
    /// Overflow bit. A value closes its tag's open gap; an overflowed one is a gap by itself.
    pub(crate) fn observe<'a>(
        &self,
        samples: impl IntoIterator<Item = (usize, &'a Sample)> + Clone,
    ) -> u64 {
        // The spec sets Overflow on the oldest value left in the queue, async-opcua on the
        // newest: either way values were dropped between the tag's last value of an earlier
        // message and its first one in this message.
        let overflowed: Vec<usize> = samples
            .clone()
            .into_iter()
            .filter(|(_, s)| s.quality.0 & OVERFLOW == OVERFLOW)
            .map(|(i, _)| i)
            .collect();
        let mut seen = self.seen();
        for &i in &overflowed {
            if let Some(tag) = seen.get_mut(i) {
                if let (Some(last), None) = (tag.last_source, &tag.open) {
                    tag.open = Some(Open {
                        from: last,
                        reason: "the server's queue for the item overflowed and discarded values"
                            .into(),
                        silent_since: None,
                    });
                }
            }
        }
        for (i, s) in samples {
            let Some(tag) = seen.get_mut(i) else {
                continue;
            };
            if let Some(mut open) = tag.open.take() {
                if s.source_ts <= open.from {
                    // A late value from before the gap: the gap is still open.
                    tag.open = Some(open);
                } else if open.silent_since.is_some_and(|t| s.source_ts <= t) {
                    open.from = s.source_ts;
                    tag.open = Some(open);
                } else {
                    let _ = self.closed.send(ClosedGap {
                        index: i,
                        from: open.from,
                        to: s.source_ts,
                        reason: open.reason,
                    });
                }
            }
            tag.last_update = Some(s.received_ts);
            if tag.last_source.is_none_or(|t| s.source_ts > t) {
                tag.last_source = Some(s.source_ts);
            }
        }
        overflowed.len() as u64
    }

    /// Opens a gap for each of `tags` that has had a value (a tag that never had one has
    /// nothing to continue) and has none open; returns how many were opened.
    pub(crate) fn open(&self, tags: impl IntoIterator<Item = usize>, reason: &str) -> usize {
        self.open_since(tags, reason, None)
    }

    fn open_since(
        &self,
        tags: impl IntoIterator<Item = usize>,
        reason: &str,
        silent_since: Option<DateTime<Utc>>,
    ) -> usize {
        let mut seen = self.seen();
        let mut opened = 0;
        for i in tags {
            if let Some(tag) = seen.get_mut(i) {
                if let (Some(last), None) = (tag.last_source, &tag.open) {
                    tag.open = Some(Open {
                        from: last,
                        reason: reason.to_string(),
                        silent_since,
                    });
                    opened += 1;
                }
            }
        }
        opened
    }

    pub(crate) fn open_gaps(&self) -> usize {
        self.seen().iter().filter(|s| s.open.is_some()).count()
    }

    /// The tags with a stale limit that have had no update for longer than it since their
    /// last one, with its time.
    pub(crate) fn stale(&self, now: DateTime<Utc>) -> Vec<(usize, DateTime<Utc>)> {
        self.seen()
            .iter()
            .zip(&self.stale_after)
            .enumerate()
            .filter_map(|(i, (s, limit))| {
                let (limit, last) = (limit.as_ref()?, s.last_update?);
                let silent = (now - last).to_std().unwrap_or_default();
                (silent > *limit).then_some((i, last))
            })
            .collect()
    }

    /// Forgets when tags last updated (not their last values, which gaps start from): after
    /// a reconnect, a tag is stale only once it has updated again and then stopped.
    pub(crate) fn restart_updates(&self) {
        for s in self.seen().iter_mut() {
            s.last_update = None;
        }
    }
}
