//! Keeping the twin in step with the historian by tailing its arrival order.

use std::{sync::Arc, time::Duration};

use model::{Cursor, Historian, HistorianError};

use crate::Twin;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("reading the historian failed: {0}")]
    Historian(#[from] HistorianError),
}

/// How often signals still without a value are looked up in the store.
const FILL_EVERY: Duration = Duration::from_secs(10);
/// How far back such a look-up reaches.
const FILL_LOOKBACK_HOURS: i64 = 24;

/// Reads everything the historian holds, then keeps reading what arrives, every `interval`.
/// Runs until the task is dropped. A failed read is logged and retried: the twin shows stale
/// ages meanwhile rather than stopping.
///
/// A tail by time (InfluxDB) misses points that reach the store later than its overlap —
/// an edge replaying its spool after an outage. For a signal that changes, the next value
/// makes up for it; one that is written once (a recipe, a lot) would stay blank, so every
/// `FILL_EVERY` the signals still without a value are looked up directly.
pub async fn follow(twin: Arc<Twin>, historian: Arc<dyn Historian>, interval: Duration) {
    let mut cursor = Cursor::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_fill = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        match catch_up(&twin, historian.as_ref(), cursor).await {
            Ok(next) => cursor = next,
            Err(e) => tracing::warn!(error = %e, "twin could not read the historian; retrying"),
        }
        if last_fill.elapsed() >= FILL_EVERY {
            last_fill = tokio::time::Instant::now();
            if let Err(e) = fill_blanks(&twin, historian.as_ref()).await {
                tracing::warn!(error = %e, "twin could not look up signals without a value");
            }
        }
    }
}

/// Applies the newest stored value of every signal the twin has none of; returns how many
/// were found.
pub(crate) async fn fill_blanks(
    twin: &Twin,
    historian: &dyn Historian,
) -> Result<usize, FollowError> {
    let blank = twin.paths_without_value();
    if blank.is_empty() {
        return Ok(0);
    }
    let found: Vec<_> = historian
        .values_at(
            &blank,
            chrono::Utc::now(),
            chrono::Duration::hours(FILL_LOOKBACK_HOURS),
        )
        .await?
        .into_iter()
        .flatten()
        .collect();
    if !found.is_empty() {
        tracing::info!(
            found = found.len(),
            blank = blank.len(),
            "signals filled from the store"
        );
        twin.apply(&found);
    }
    Ok(found.len())
}

/// Applies everything after `cursor`; returns the cursor to continue from.
pub(crate) async fn catch_up(
    twin: &Twin,
    historian: &dyn Historian,
    mut cursor: Cursor,
) -> Result<Cursor, FollowError> {
    const PAGE: usize = 20_000;
    loop {
        let (samples, next) = historian.read_since(cursor, PAGE).await?;
        twin.apply(&samples);
        cursor = next;
        if samples.len() < PAGE {
            return Ok(cursor);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{DateTime, Utc};
    use model::{Cursor, Historian, HistorianError, Sample, Value};

    use crate::{
        live::tests::{sample, test_site},
        Twin,
    };

    /// A store whose tail never shows the one sample it holds: it arrived too late.
    #[derive(Debug)]
    struct LateArrival(Sample);

    #[async_trait::async_trait]
    impl Historian for LateArrival {
        async fn write(&self, _: &[Sample]) -> Result<(), HistorianError> {
            Ok(())
        }
        async fn query(
            &self,
            path: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<Sample>, HistorianError> {
            let s = &self.0;
            Ok(
                (s.tag.path() == path && s.source_ts >= from && s.source_ts < to)
                    .then(|| s.clone())
                    .into_iter()
                    .collect(),
            )
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
    async fn a_value_the_tail_missed_is_found_for_a_signal_without_one() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        let lot = "s1/osd/line-1/line-control/lot_id";
        let mut stored = sample(&twin, lot, Value::Text("LOT-7".into()), 0);
        stored.source_ts = Utc::now() - chrono::Duration::minutes(5);
        let store = LateArrival(stored);
        super::catch_up(&twin, &store, Cursor::default())
            .await
            .unwrap();
        assert!(twin.value(lot).is_none(), "the tail did not see it");
        let blank = twin.paths_without_value();
        assert_eq!(blank.len(), twin.signal_count());

        assert_eq!(super::fill_blanks(&twin, &store).await.unwrap(), 1);
        assert_eq!(twin.value(lot).unwrap().value, Value::Text("LOT-7".into()));
        assert_eq!(twin.paths_without_value().len(), blank.len() - 1);
    }
}
