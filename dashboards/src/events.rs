//! Live updates as server-sent events: the site summaries, pushed when the twin changes.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
    Extension,
};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::{api::scoped_summaries, auth::Principal, AppState};

/// At most this often per client: the page needs to be under a second behind, not faster.
const MIN_GAP: Duration = Duration::from_millis(500);

pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut changes = state.twin.subscribe();
    let twin = state.twin.clone();
    let events = async_stream::stream! {
        loop {
            // Logged out, expired or idle: the stream ends with the session.
            if !state.access.sessions.alive(&p.session.token, chrono::Utc::now()) {
                break;
            }
            let summaries = scoped_summaries(&p, twin.site_summaries(chrono::Utc::now()));
            match Event::default().event("sites").json_data(&summaries) {
                Ok(ev) => yield Ok(ev),
                Err(e) => tracing::warn!(error = %e, "cannot encode site summaries"),
            }
            tokio::time::sleep(MIN_GAP).await;
            // Wait for the next change; a slow client that lagged just gets the newest state.
            match changes.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    };
    Sse::new(events).keep_alive(KeepAlive::default())
}
