//! Time travel: the plant as the store knew it at a past moment, for the same views as live.
//!
//! A past moment is read from the historian, never from the twin's memory: what an inspector
//! is shown for last Tuesday is what was recorded, not what the twin happens to remember.

use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;
use twin_core::Snapshot;

use crate::{
    api::{refused, Refused},
    AppState,
};

/// How far before the moment a signal's last value still counts as its value then. Texts
/// such as a batch id are stored only when they change, so this spans more than a batch.
const LOOKBACK_HOURS: i64 = 24;

/// Every signal at `at`, or the answer to give the user when that cannot be read.
pub(crate) async fn snapshot(state: &AppState, at: DateTime<Utc>) -> Result<Snapshot, Refused> {
    if at > Utc::now() + Duration::seconds(5) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("`at` {at} is in the future: time travel goes back only"),
        ));
    }
    let twin = &state.twin;
    let paths = twin.signal_paths();
    let span = tracing::debug_span!("time_travel", %at, signals = paths.len());
    match state
        .historian
        .values_at(&paths, at, Duration::hours(LOOKBACK_HOURS))
        .instrument(span)
        .await
    {
        Ok(samples) => Ok(twin.snapshot(at, samples)),
        Err(e) => {
            tracing::warn!(error = %e, %at, "time travel read failed");
            Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the store cannot be read for {at}: {e}"),
            ))
        }
    }
}
