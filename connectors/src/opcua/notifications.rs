//! From notification messages to sample batches on the downstream channel.
//!
//! async-opcua calls a subscription's callback synchronously, inside its session event loop
//! and under its subscription lock, so the callback cannot wait for a full channel. It
//! converts the message and hands the batch to an unbounded queue; the forwarder task then
//! waits on the bounded downstream channel. Backpressure thus holds samples in memory
//! (counted in [`SourceStatus`] as `samples_queued`) rather than stalling the session's
//! keep-alive or dropping anything.

use std::sync::{
    atomic::{AtomicU32, Ordering},
    Arc,
};

use chrono::{DateTime, Utc};
use opcua::{
    client::{MonitoredItemMap, OnSubscriptionNotificationCore},
    types::{
        DataChangeNotification, ExtensionObject, NotificationMessage, StatusChangeNotification,
        StatusCode,
    },
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use model::{Sample, Tag};

use super::{
    continuity::Continuity,
    convert::to_sample,
    error::status_name,
    status::{SourceStatus, TagError, ValuelessStatus},
};

/// Republish requests for one missing run of sequence numbers are capped at this many; a
/// bigger hole is beyond what a server keeps for retransmission anyway.
const MAX_REPUBLISH: u32 = 1_000;

/// Notification messages a subscription numbered but the source did not receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gap {
    pub(crate) subscription: u32,
    pub(crate) first: u32,
    pub(crate) count: u32,
}

/// Statuses saying the node itself cannot be monitored, not that its value is poor. Some
/// servers (async-opcua among them) accept the monitored item and report these in the first
/// notification instead of refusing the item.
const NODE_FAULTS: [StatusCode; 8] = [
    StatusCode::BadNodeIdUnknown,
    StatusCode::BadNodeIdInvalid,
    StatusCode::BadNotReadable,
    StatusCode::BadUserAccessDenied,
    StatusCode::BadAttributeIdInvalid,
    StatusCode::BadIndexRangeInvalid,
    StatusCode::BadDataEncodingInvalid,
    StatusCode::BadDataEncodingUnsupported,
];

/// Turns notification messages into samples. Client handle `h` is signal `h - 1`.
#[derive(Debug, Clone)]
pub(crate) struct Converter {
    pub(crate) tags: Arc<[Arc<Tag>]>,
    /// The configured node of each signal, as text, for error reports.
    pub(crate) nodes: Arc<[String]>,
    pub(crate) status: Arc<SourceStatus>,
    pub(crate) continuity: Arc<Continuity>,
}

impl Converter {
    pub(crate) fn message(
        &self,
        data: Vec<ExtensionObject>,
        received: DateTime<Utc>,
    ) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut indices = Vec::new();
        let mut valueless = Vec::new();
        let mut count = 0;
        for obj in data {
            if let Some(change) = obj.inner_as::<StatusChangeNotification>() {
                let status = status_name(change.status);
                warn!(%status, "subscription status changed on the server");
                self.status
                    .error(format!("subscription status changed: {status}"));
                continue;
            }
            let Some(change) = obj.into_inner_as::<DataChangeNotification>() else {
                continue;
            };
            for item in change.monitored_items.into_iter().flatten() {
                count += 1;
                let index = usize::try_from(item.client_handle)
                    .ok()
                    .and_then(|h| h.checked_sub(1));
                let Some((i, tag)) = index.and_then(|i| self.tags.get(i).map(|t| (i, t))) else {
                    warn!(
                        handle = item.client_handle,
                        "notification for an unknown client handle"
                    );
                    continue;
                };
                let sample = to_sample(tag, item.value, received);
                if sample.value.is_null() {
                    let v = ValuelessStatus {
                        tag: tag.path(),
                        status: status_name(StatusCode::from(sample.quality.0)),
                        quality: sample.quality.0,
                        at: sample.source_ts,
                    };
                    let code = StatusCode::from(v.quality & 0xFFFF_0000);
                    if NODE_FAULTS.contains(&code) {
                        // Not a reading of the signal: the node is not there to be read.
                        self.node_fault(i, &v);
                        valueless.push(v);
                        continue;
                    }
                    if sample.quality.is_bad() {
                        debug!(tag = %v.tag, status = %v.status, "bad status without a value; stored as null");
                    }
                    valueless.push(v);
                }
                samples.push(sample);
                indices.push(i);
            }
        }
        let overflows = self
            .continuity
            .observe(indices.iter().copied().zip(&samples));
        self.status.qualities(&samples, overflows);
        if count > 0 {
            self.status.notified(count, received, &samples, valueless);
        }
        samples
    }

    /// Records a tag whose node the server reports unusable; warns once per status.
    fn node_fault(&self, i: usize, v: &ValuelessStatus) {
        if self
            .status
            .tag_error(&v.tag)
            .is_some_and(|known| known.status == v.status)
        {
            return;
        }
        let node = self.nodes.get(i).cloned().unwrap_or_default();
        warn!(tag = %v.tag, %node, status = %v.status, "the server reports the node unusable; tag not flowing");
        self.status.set_tag_error(TagError {
            tag: v.tag.clone(),
            node,
            status: v.status.clone(),
            message: "the server accepted the monitored item but reports the node unusable".into(),
            since: Utc::now(),
        });
    }
}

/// The callback of one subscription.
pub(crate) struct Notifications {
    converter: Converter,
    samples: mpsc::UnboundedSender<Vec<Sample>>,
    gaps: mpsc::UnboundedSender<Gap>,
    /// Set once the server assigned the id; the callback exists before that.
    subscription: Arc<AtomicU32>,
    last_sequence: Option<u32>,
    /// The newest publish time of the messages so far, keep-alives included (the server's
    /// clock; the arrival time for a server that sends none).
    last_published: Option<DateTime<Utc>>,
}

impl Notifications {
    pub(crate) fn new(
        converter: Converter,
        samples: mpsc::UnboundedSender<Vec<Sample>>,
        gaps: mpsc::UnboundedSender<Gap>,
    ) -> (Self, Arc<AtomicU32>) {
        let subscription = Arc::new(AtomicU32::new(0));
        (
            Notifications {
                converter,
                samples,
                gaps,
                subscription: subscription.clone(),
                last_sequence: None,
                last_published: None,
            },
            subscription,
        )
    }

    pub(crate) fn check_sequence(&mut self, seq: u32) {
        if let Some(missing) = missing_before(self.last_sequence, seq) {
            let subscription = self.subscription.load(Ordering::Relaxed);
            warn!(
                subscription,
                first = missing.0,
                count = missing.1,
                "notification messages missing; asking the server to republish them"
            );
            self.converter.status.gap(missing.1.into());
            let _ = self.gaps.send(Gap {
                subscription,
                first: missing.0,
                count: missing.1.min(MAX_REPUBLISH),
            });
        }
        if self.last_sequence.is_none_or(|last| is_newer(seq, last)) {
            self.last_sequence = Some(seq);
        }
    }
}

impl OnSubscriptionNotificationCore for Notifications {
    fn on_subscription_notification(
        &mut self,
        msg: NotificationMessage,
        _items: MonitoredItemMap<'_>,
    ) {
        // Silence is measured between publish times, not arrivals: messages held up on the
        // way (a stalled link, a busy client) arrive late but were published in time and
        // lost nothing; the first one the server could publish only after the silence is
        // where values may be missing before its queue's oldest.
        let published = super::convert::ua_time(Some(&msg.publish_time)).unwrap_or_else(Utc::now);
        // Republished messages carry their old publish times: the newest so far counts.
        let last = self.last_published;
        self.last_published = Some(last.map_or(published, |l| l.max(published)));
        let silence = last.and_then(|last| (published - last).to_std().ok());
        if let Some(silence) = silence {
            let subscription = self.subscription.load(Ordering::Relaxed);
            let opened = self
                .converter
                .continuity
                .after_silence(subscription, silence, published);
            if opened > 0 {
                warn!(
                    subscription,
                    silence_s = silence.as_secs_f64(),
                    opened,
                    "the server could not publish for longer than its queues cover; gaps opened"
                );
            }
        }
        // A keep-alive carries no data and announces, without using, the next number.
        let Some(data) = msg.notification_data.filter(|d| !d.is_empty()) else {
            return;
        };
        self.check_sequence(msg.sequence_number);
        let batch = self.converter.message(data, Utc::now());
        if !batch.is_empty() {
            self.converter.status.queued(batch.len());
            // Fails only once the source is shutting down and the forwarder is gone.
            let _ = self.samples.send(batch);
        }
    }
}

/// Sequence numbers count from 1 and wrap from `u32::MAX` back to 1.
fn next_sequence(n: u32) -> u32 {
    if n == u32::MAX {
        1
    } else {
        n + 1
    }
}

/// Whether `a` comes after `b`, allowing for the wrap (half the range ahead is "after").
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

/// The run of sequence numbers (first, count) skipped between `last` and `seq`, if any.
/// An older `seq` (a late or republished message) is not a gap.
pub(crate) fn missing_before(last: Option<u32>, seq: u32) -> Option<(u32, u32)> {
    let expected = next_sequence(last?);
    if seq == expected || !is_newer(seq, expected) {
        return None;
    }
    let mut count = seq.wrapping_sub(expected);
    if seq < expected {
        count -= 1; // the wrap skipped 0
    }
    Some((expected, count))
}

/// Moves batches from the callbacks' queue to the downstream channel, merging what is queued
/// up to `max` samples per batch. When `stop` fires it hands over what is queued and ends;
/// it also ends when downstream is closed.
pub(crate) async fn forward(
    mut queue: mpsc::UnboundedReceiver<Vec<Sample>>,
    downstream: mpsc::Sender<Vec<Sample>>,
    status: Arc<SourceStatus>,
    max: usize,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            // Callbacks of subscriptions the client never forgot may still hold senders:
            // drain, do not wait for the queue to close.
            match queue.try_recv() {
                Ok(batch) => batch,
                Err(_) => return,
            }
        } else {
            tokio::select! {
                biased;
                batch = queue.recv() => match batch {
                    Some(batch) => batch,
                    None => return,
                },
                _ = &mut stop => {
                    stopping = true;
                    continue;
                }
            }
        };
        let batch = crate::pipeline::merge_queued(first, max, || queue.try_recv().ok());
        let n = batch.len();
        if downstream.send(batch).await.is_err() {
            debug!("downstream closed; forwarder stops");
            return;
        }
        status.forwarded(n);
    }
}
