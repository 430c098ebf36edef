//! The writer between a source's channel and a historian.
//!
//! It coalesces whatever is queued into one write (one commit, one fsync, for many small
//! notification batches) and retries a failed write with capped backoff, holding the batch:
//! while it retries it stops reading, the bounded channel fills and the source waits. Nothing
//! is dropped; how far behind the writer is shows in [`WriterStats`].

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

use model::{Historian, Sample};

/// Most samples put into one historian write.
pub const MAX_WRITE_SAMPLES: usize = 5_000;

const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(10);

/// Counters of one writer, shared with whoever reports on it.
#[derive(Debug, Default)]
pub struct WriterStats {
    samples_written: AtomicU64,
    writes: AtomicU64,
    failed_writes: AtomicU64,
    samples_pending: AtomicU64,
    retrying: AtomicBool,
    last: Mutex<LastWrite>,
}

#[derive(Debug, Default, Clone)]
struct LastWrite {
    at: Option<DateTime<Utc>>,
    error: Option<String>,
    error_at: Option<DateTime<Utc>>,
}

/// A point-in-time copy of [`WriterStats`], for the web API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriterStatsSnapshot {
    pub samples_written: u64,
    pub writes: u64,
    pub failed_writes: u64,
    /// Samples taken from the channel but not yet committed (the batch being written or retried).
    pub samples_pending: u64,
    /// True while the current batch is being retried after a failure.
    pub retrying: bool,
    pub last_write: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

impl WriterStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> WriterStatsSnapshot {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        WriterStatsSnapshot {
            samples_written: self.samples_written.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            failed_writes: self.failed_writes.load(Ordering::Relaxed),
            samples_pending: self.samples_pending.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
            last_write: last.at,
            last_error: last.error,
            last_error_at: last.error_at,
        }
    }

    fn written(&self, count: usize) {
        self.samples_written
            .fetch_add(count as u64, Ordering::Relaxed);
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.samples_pending.store(0, Ordering::Relaxed);
        self.retrying.store(false, Ordering::Relaxed);
        self.last.lock().unwrap_or_else(|e| e.into_inner()).at = Some(Utc::now());
    }

    fn failed(&self, error: String) {
        self.failed_writes.fetch_add(1, Ordering::Relaxed);
        self.retrying.store(true, Ordering::Relaxed);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.error = Some(error);
        last.error_at = Some(Utc::now());
    }
}

/// Writes every batch received on `rx` into `historian` until the channel is closed and
/// drained (all senders dropped), then returns. A failed write is retried, with backoff
/// from 100 ms up to 10 s, until it succeeds; dropping the task is the only way to give up.
pub async fn run_writer(
    mut rx: mpsc::Receiver<Vec<Sample>>,
    historian: Arc<dyn Historian>,
    stats: Arc<WriterStats>,
) {
    let span = info_span!("historian_writer");
    async move {
        while let Some(first) = rx.recv().await {
            let batch = merge_queued(first, MAX_WRITE_SAMPLES, || rx.try_recv().ok());
            if batch.is_empty() {
                continue;
            }
            stats
                .samples_pending
                .store(batch.len() as u64, Ordering::Relaxed);
            write_until_done(&batch, historian.as_ref(), &stats).await;
        }
        info!("source channel closed; writer finished");
    }
    .instrument(span)
    .await
}

/// Appends batches already waiting (`next` yields them) to `first` while the result holds
/// fewer than `max` samples. The batch that crosses `max` is still taken (a queue cannot be
/// peeked), and a single batch above `max` is kept whole: splitting gains nothing.
pub(crate) fn merge_queued(
    first: Vec<Sample>,
    max: usize,
    mut next: impl FnMut() -> Option<Vec<Sample>>,
) -> Vec<Sample> {
    let mut batch = first;
    while batch.len() < max {
        match next() {
            Some(more) => batch.extend(more),
            None => break,
        }
    }
    batch
}

async fn write_until_done(batch: &[Sample], historian: &dyn Historian, stats: &WriterStats) {
    let mut delay = FIRST_RETRY;
    loop {
        match historian.write(batch).await {
            Ok(()) => {
                if stats.retrying.load(Ordering::Relaxed) {
                    info!(
                        samples = batch.len(),
                        "historian write succeeded after retrying"
                    );
                }
                stats.written(batch.len());
                return;
            }
            Err(e) => {
                let message = error_chain(&e);
                warn!(
                    samples = batch.len(),
                    retry_in_ms = delay.as_millis() as u64,
                    error = %message,
                    "historian write failed; holding the batch and retrying"
                );
                stats.failed(message);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
            }
        }
    }
}

/// The error with its causes, so the status page shows the root cause (disk full, …).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use chrono::TimeZone;
    use model::{Category, Cursor, HistorianError, Quality, Tag, Value};

    use super::*;

    fn samples(n: usize) -> Vec<Sample> {
        let tag = Arc::new(Tag {
            site: "s".into(),
            area: "a".into(),
            line: "l".into(),
            equipment: "e".into(),
            signal: "x".into(),
            category: Category::Environment,
            unit: "°C".into(),
        });
        let t = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
        (0..n)
            .map(|i| Sample {
                tag: tag.clone(),
                value: Value::Float(i as f64),
                quality: Quality::GOOD,
                source_ts: t + chrono::Duration::milliseconds(i as i64),
                server_ts: None,
                received_ts: t,
                backfilled: false,
            })
            .collect()
    }

    /// A historian that fails its first `failures` writes and records the others.
    #[derive(Debug, Default)]
    struct Flaky {
        failures: AtomicUsize,
        writes: Mutex<Vec<usize>>,
    }

    #[async_trait::async_trait]
    impl Historian for Flaky {
        async fn write(&self, batch: &[Sample]) -> Result<(), HistorianError> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                .is_ok()
            {
                return Err(HistorianError::Write {
                    count: batch.len(),
                    source: "disk full".into(),
                });
            }
            self.writes.lock().unwrap().push(batch.len());
            Ok(())
        }
        async fn query(
            &self,
            _: &str,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
        ) -> Result<Vec<Sample>, HistorianError> {
            Ok(Vec::new())
        }
        async fn read_since(
            &self,
            c: Cursor,
            _: usize,
        ) -> Result<(Vec<Sample>, Cursor), HistorianError> {
            Ok((Vec::new(), c))
        }
    }

    #[tokio::test]
    async fn queued_batches_are_coalesced_into_one_write() {
        let (tx, rx) = mpsc::channel(100);
        for _ in 0..10 {
            tx.send(samples(300)).await.unwrap();
        }
        drop(tx);
        let historian = Arc::new(Flaky::default());
        let stats = Arc::new(WriterStats::new());
        run_writer(rx, historian.clone(), stats.clone()).await;
        let writes = historian.writes.lock().unwrap().clone();
        // All ten queued batches fit under 5,000 samples: one write, one commit.
        assert_eq!(writes, vec![3_000]);
        let snap = stats.snapshot();
        assert_eq!(
            (snap.samples_written, snap.writes, snap.samples_pending),
            (3_000, 1, 0)
        );
    }

    #[test]
    fn coalescing_stops_at_the_limit() {
        let (tx, mut rx) = mpsc::channel(100);
        for _ in 0..10 {
            tx.try_send(samples(300)).unwrap();
        }
        let batch = merge_queued(samples(300), 1_000, || rx.try_recv().ok());
        assert_eq!(batch.len(), 1_200);
        let first = rx.try_recv().unwrap();
        let batch = merge_queued(first, 1_000, || rx.try_recv().ok());
        assert_eq!(batch.len(), 1_200);
        let batch = merge_queued(samples(3_000), 1_000, || rx.try_recv().ok());
        assert_eq!(
            batch.len(),
            3_000,
            "one big batch stays whole and takes nothing more"
        );
    }

    #[tokio::test]
    async fn a_failed_write_is_retried_without_losing_the_batch() {
        let (tx, rx) = mpsc::channel(4);
        let historian = Arc::new(Flaky {
            failures: AtomicUsize::new(3),
            ..Default::default()
        });
        let stats = Arc::new(WriterStats::new());
        let writer = tokio::spawn(run_writer(rx, historian.clone(), stats.clone()));
        tx.send(samples(10)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        let snap = stats.snapshot();
        assert!(snap.retrying && snap.samples_pending == 10, "{snap:?}");
        assert!(snap
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("disk full"));
        drop(tx);
        writer.await.unwrap();
        assert_eq!(*historian.writes.lock().unwrap(), vec![10]);
        let snap = stats.snapshot();
        assert_eq!((snap.failed_writes, snap.samples_written), (3, 10));
        assert!(!snap.retrying);
    }
}
