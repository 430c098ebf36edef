//! Keeping the twin in step with the historian by tailing its arrival order.

use std::{sync::Arc, time::Duration};

use model::{Cursor, Historian, HistorianError};

use crate::Twin;

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("reading the historian failed: {0}")]
    Historian(#[from] HistorianError),
}

/// Reads everything the historian holds, then keeps reading what arrives, every `interval`.
/// Runs until the task is dropped. A failed read is logged and retried: the twin shows stale
/// ages meanwhile rather than stopping.
pub async fn follow(twin: Arc<Twin>, historian: Arc<dyn Historian>, interval: Duration) {
    let mut cursor = Cursor::default();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match catch_up(&twin, historian.as_ref(), cursor).await {
            Ok(next) => cursor = next,
            Err(e) => tracing::warn!(error = %e, "twin could not read the historian; retrying"),
        }
    }
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
