//! The background task that moves the spool into InfluxDB, oldest first.
//!
//! A batch goes out when `max_lines` samples wait or the oldest has waited `max_age`;
//! while a backlog drains (more than `max_lines` waiting) batches grow to
//! `replay_max_lines`, so the replay outruns live ingest. Lines are deleted from the spool
//! only after a 2xx. A 400/422 means something in the batch is bad: the batch is split in
//! halves until the bad points stand alone; they go to quarantine and the rest is written.
//! Any other failure keeps the batch and retries with capped exponential backoff.

use std::{
    ops::Range,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use chrono::Utc;
use tracing::{debug, info, warn};

use super::{client::Sent, spool::Entry, InfluxError, Shared};

/// Answers that name a problem with points, not with the request or the server. A 400
/// whose text matches none of these is quarantined only if part of the same batch was
/// written (so the server does accept this kind of data).
const POINT_ERRORS: [&str; 16] = [
    "partial write",
    "field type conflict",
    "unable to parse",
    "failed to parse",
    "parse error",
    "invalid field",
    "invalid tag",
    "invalid number",
    "invalid boolean",
    "bad timestamp",
    "max key length",
    "max-values-per-tag",
    "beyond retention",
    "unbalanced quotes",
    "duplicate tags",
    "schema",
];

/// How often an idle forwarder checks that the server is there.
const IDLE_PING: Duration = Duration::from_secs(10);

fn names_a_point(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    POINT_ERRORS.iter().any(|p| lower.contains(p))
}

/// The outcome of delivering one batch.
#[derive(Debug, Default)]
struct Delivery {
    confirmed: Vec<Range<usize>>,
    /// Single lines InfluxDB refused: index, status, answer.
    refused: Vec<(usize, u16, String)>,
    failure: Option<InfluxError>,
}

pub(super) async fn run(shared: Arc<Shared>) {
    let retry = shared.config.retry.clone();
    let batch = shared.config.batch.clone();
    let mut delay = retry.first;
    let mut database_ready = false;
    let mut failing = false;
    let mut last_ping: Option<Instant> = None;
    loop {
        if !database_ready {
            match shared.client.ensure_database().await {
                Ok(()) => database_ready = true,
                Err(e) => {
                    backoff(&shared, &e, &mut delay, retry.max).await;
                    continue;
                }
            }
        }
        let pending = shared.spool.mirrors.count.load(Ordering::Relaxed) as usize;
        if pending == 0 {
            // Idle: keep the connected flag true to the server's state for the status page.
            if last_ping.is_none_or(|at| at.elapsed() >= IDLE_PING) {
                let up = shared.client.ping().await;
                shared.counters.connected.store(up, Ordering::Relaxed);
                last_ping = Some(Instant::now());
            }
            // Woken by the next write; the timeout only bounds a missed wake-up.
            let _ = tokio::time::timeout(Duration::from_secs(1), shared.new_data.notified()).await;
            continue;
        }
        let backlog = pending > batch.max_lines;
        if pending < batch.max_lines {
            if let Some(oldest) = shared.spool.mirrors.oldest_enqueued() {
                let waited = (Utc::now() - oldest).to_std().unwrap_or_default();
                if waited < batch.max_age {
                    let _ =
                        tokio::time::timeout(batch.max_age - waited, shared.new_data.notified())
                            .await;
                    continue;
                }
            }
        }
        let cap = if backlog {
            batch.replay_max_lines
        } else {
            batch.max_lines
        };
        let spool = shared.spool.clone();
        let max_bytes = batch.max_bytes;
        let entries = match tokio::task::spawn_blocking(move || spool.peek(cap, max_bytes)).await {
            Ok(Ok(entries)) => entries,
            Ok(Err(e)) => {
                backoff(&shared, &e, &mut delay, retry.max).await;
                continue;
            }
            Err(e) => {
                backoff(&shared, &InfluxError::Task(e), &mut delay, retry.max).await;
                continue;
            }
        };
        if entries.is_empty() {
            continue;
        }
        let delivery = deliver(&shared, &entries).await;
        let failure = settle(&shared, entries, delivery).await;
        match failure {
            Some(e) => {
                failing = true;
                backoff(&shared, &e, &mut delay, retry.max).await;
            }
            None => {
                if failing {
                    info!(target = %shared.client.label, "InfluxDB accepts writes again");
                    failing = false;
                }
                delay = retry.first;
            }
        }
    }
}

async fn backoff(shared: &Shared, e: &InfluxError, delay: &mut Duration, max: Duration) {
    let message = e.to_string();
    warn!(
        target = %shared.client.label,
        retry_in_ms = delay.as_millis() as u64,
        spooled = shared.spool.mirrors.count.load(Ordering::Relaxed),
        error = %message,
        "InfluxDB write failed; samples stay in the spool"
    );
    shared.counters.retries.fetch_add(1, Ordering::Relaxed);
    shared.counters.failed(message);
    tokio::time::sleep(*delay).await;
    *delay = (*delay * 2).min(max);
}

/// Sends `entries` in order, splitting on 400/413 until bad points stand alone. Stops at
/// the first failure that is not about points; what was confirmed so far stays confirmed.
async fn deliver(shared: &Shared, entries: &[Entry]) -> Delivery {
    let mut d = Delivery::default();
    // Ranges still to send; the left half is popped first, so the order is kept.
    let mut todo: Vec<Range<usize>> = Vec::with_capacity(32);
    todo.push(0..entries.len());
    while let Some(range) = todo.pop() {
        let body = shared
            .client
            .body(entries[range.clone()].iter().map(|e| e.line.as_str()));
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let sent = shared.client.write(body).await;
        let reached = !matches!(
            &sent,
            Sent::Failed(InfluxError::Transport { .. })
                | Sent::Failed(InfluxError::Status { status: 500.., .. })
        );
        shared.counters.connected.store(reached, Ordering::Relaxed);
        match sent {
            Sent::Accepted => d.confirmed.push(range),
            Sent::Rejected { status, body } if range.len() == 1 => {
                d.refused.push((range.start, status, body))
            }
            Sent::TooLarge if range.len() == 1 => d.refused.push((
                range.start,
                413,
                "a single point is larger than the server accepts".into(),
            )),
            Sent::Rejected { status, ref body } => {
                debug!(status, lines = range.len(), answer = %body, "batch refused; splitting it");
                split(&mut todo, range);
            }
            Sent::TooLarge => split(&mut todo, range),
            Sent::Failed(e) => {
                d.failure = Some(e);
                break;
            }
        }
    }
    d
}

fn split(todo: &mut Vec<Range<usize>>, range: Range<usize>) {
    let mid = range.start + range.len() / 2;
    todo.push(mid..range.end);
    todo.push(range.start..mid);
}

/// Applies a delivery to the spool; returns the failure to back off on, if any.
async fn settle(shared: &Arc<Shared>, entries: Vec<Entry>, d: Delivery) -> Option<InfluxError> {
    let written: usize = d.confirmed.iter().map(|r| r.len()).sum();
    let any_written = written > 0;
    // A refusal that names no point problem, in a batch of which nothing was written,
    // looks like a server-side rule (a wrong database, a policy) rather than bad data:
    // quarantining would empty the spool into the quarantine. Keep it and retry instead.
    let mut failure = d.failure;
    let mut refused = Vec::new();
    for (i, status, body) in d.refused {
        if any_written || names_a_point(&body) {
            refused.push((i, status, body));
        } else if failure.is_none() {
            failure = Some(InfluxError::Status {
                what: "write",
                status,
                body,
            });
        }
    }
    if failure.is_some() && !any_written {
        // Nothing decided: keep the refused lines for the retry too.
        refused.retain(|(_, _, body)| names_a_point(body));
    }
    let confirmed: Vec<Entry> = d
        .confirmed
        .iter()
        .flat_map(|r| entries[r.clone()].iter().cloned())
        .collect();
    let quarantine: Vec<(Entry, u16, String)> = refused
        .into_iter()
        .map(|(i, status, body)| (entries[i].clone(), status, body))
        .collect();
    for (e, status, body) in &quarantine {
        let (series, _) = super::line_protocol::series_and_time(&e.line);
        let tag = super::line_protocol::path_of_series(series);
        warn!(
            tag = tag.as_deref().unwrap_or(series),
            series = %series,
            status,
            answer = %body.trim(),
            "InfluxDB refused a point; it is quarantined in the spool"
        );
    }
    let quarantined = quarantine.len();
    let spool = shared.spool.clone();
    let result = tokio::task::spawn_blocking(move || spool.settle(&confirmed, &quarantine)).await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Some(e),
        Err(e) => return Some(InfluxError::Task(e)),
    }
    if written > 0 {
        shared.counters.forwarded(written);
    }
    if written > 0 || quarantined > 0 {
        shared.space_freed.notify_waiters();
        shared.update_alert();
        debug!(written, quarantined, "batch settled");
    }
    failure
}
