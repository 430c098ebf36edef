//! What the diagnostics page shows about the InfluxDB historian.

use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex,
};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A point-in-time copy of the historian's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InfluxStatus {
    /// Server and database or bucket (no secrets).
    pub target: String,
    /// `v1` or `v2`.
    pub api: &'static str,
    /// The last request reached InfluxDB and was not answered with a server error.
    pub connected: bool,
    /// Samples acknowledged to writers and not yet confirmed by InfluxDB.
    pub spooled_samples: u64,
    pub spooled_bytes: u64,
    pub spool_capacity_bytes: u64,
    /// `spooled_bytes / spool_capacity_bytes`.
    pub spool_fill: f64,
    /// How long the oldest spooled sample has waited, in seconds.
    pub oldest_spooled_age_s: Option<f64>,
    /// Raised above the configured fill fraction, and while writes are refused.
    pub alert: bool,
    /// The last write was refused because the spool was full (block policy).
    pub spool_full: bool,
    /// Samples InfluxDB confirmed.
    pub forwarded: u64,
    /// Write requests sent (bisection requests included).
    pub requests: u64,
    /// Failed sends that were retried after a backoff.
    pub retries: u64,
    /// Points InfluxDB refused as bad, kept in the spool's quarantine table.
    pub quarantined: u64,
    /// Gap records in the spool database (refusals or drops because the spool was full).
    pub gaps: u64,
    /// Samples refused with `SpoolFull` (a batch retried counts again).
    pub refused_samples: u64,
    /// Samples deleted by the `drop_oldest` policy.
    pub dropped_samples: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_forward_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) forwarded: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) alert: AtomicBool,
    pub(crate) spool_full: AtomicBool,
    pub(crate) last: Mutex<Last>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Last {
    pub(crate) error: Option<String>,
    pub(crate) error_at: Option<DateTime<Utc>>,
    pub(crate) forward_at: Option<DateTime<Utc>>,
}

impl Counters {
    pub(crate) fn failed(&self, error: String) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.error = Some(error);
        last.error_at = Some(Utc::now());
    }

    pub(crate) fn forwarded(&self, samples: usize) {
        self.forwarded.fetch_add(samples as u64, Ordering::Relaxed);
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forward_at = Some(Utc::now());
    }

    pub(crate) fn last(&self) -> Last {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
