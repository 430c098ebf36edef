//! The interface every historian implements: the embedded store today, InfluxDB next.
//!
//! Writers hand it batches; the twin core reads it back by tag and time range, and tails it
//! with a [`Cursor`] so the twin can run in another process than the connectors.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::sample::Sample;

/// A position in the historian's arrival order. Opaque to readers: pass back what you got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor(pub u64);

#[derive(Debug, thiserror::Error)]
pub enum HistorianError {
    #[error("historian at {location} cannot be opened: {source}")]
    Open {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("write of {count} samples failed: {source}")]
    Write {
        count: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("read failed: {source}")]
    Read {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[async_trait::async_trait]
pub trait Historian: Send + Sync + std::fmt::Debug {
    /// Commits the batch durably. When this returns `Ok`, the samples survive a crash.
    /// Writing a sample again for the same tag and source time replaces it (idempotent).
    async fn write(&self, batch: &[Sample]) -> Result<(), HistorianError>;

    /// The samples of one tag path with `from <= source_ts < to`, oldest first.
    async fn query(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, HistorianError>;

    /// Up to `limit` samples that arrived after `cursor`, in arrival order, and the cursor
    /// to continue from.
    async fn read_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), HistorianError>;

    /// The plant as the store knew it at `at`: per path, the newest sample with
    /// `at - lookback <= source_ts <= at`, in the order of `paths` (`None` where there is
    /// none). Time travel reads the views of a past moment through this.
    ///
    /// The default asks [`Historian::query`] once per path; stores that can answer in one
    /// read should.
    async fn values_at(
        &self,
        paths: &[String],
        at: DateTime<Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<Option<Sample>>, HistorianError> {
        // `query`'s end is exclusive: a sample stamped exactly `at` belongs to the moment.
        let end = at + chrono::Duration::nanoseconds(1);
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            out.push(self.query(path, at - lookback, end).await?.pop());
        }
        Ok(out)
    }
}
