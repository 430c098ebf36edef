//! Live updates as server-sent events, pushed when the twin changes:
//! - `sites`: the site summaries the user may see (every view's header, the overview);
//! - `signals`: with `?site=&line=`, every signal of that line with its value, quality and
//!   age (the line view and the equipment detail), so a Bad or stale value reaches the page
//!   as such.
//!
//! Each event's `id` is the twin's version it shows: a viewer (or the load test) can tell
//! which merge of the store it is up to.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{Query, State},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
    Extension,
};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::{api::scoped_summaries, auth::Principal, AppState};

/// At most this often per client: the page needs to be under a second behind, not faster.
const MIN_GAP: Duration = Duration::from_millis(500);

/// Longest time between two events while nothing changes.
const QUIET_REFRESH: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    site: Option<String>,
    line: Option<String>,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<StreamQuery>,
) -> Response {
    // The line's signals are streamed only to who may see the line; checked once, up front.
    let line = match (q.site, q.line) {
        (Some(site), Some(line)) => match p.line(&site, &line) {
            Ok(()) => Some((site, line)),
            Err(r) => return r.into_response(),
        },
        (Some(site), None) => match p.site(&site) {
            Ok(()) => None,
            Err(r) => return r.into_response(),
        },
        _ => None,
    };
    let mut changes = state.twin.subscribe();
    let twin = state.twin.clone();
    let events = async_stream::stream! {
        loop {
            // Logged out, expired or idle: the stream ends with the session.
            let now = chrono::Utc::now();
            if !state.access.sessions.alive(&p.session.token, now) {
                break;
            }
            // Read before the views: the views are at least this new.
            let id = twin.version().to_string();
            let summaries = scoped_summaries(&p, twin.site_summaries(now));
            match Event::default().event("sites").id(id.clone()).json_data(&summaries) {
                Ok(ev) => yield Ok::<_, Infallible>(ev),
                Err(e) => tracing::warn!(error = %e, "cannot encode site summaries"),
            }
            if let Some((site, line)) = &line {
                let signals = twin.signals(Some(site), Some(line), now);
                match Event::default().event("signals").id(id).json_data(&signals) {
                    Ok(ev) => yield Ok(ev),
                    Err(e) => tracing::warn!(error = %e, "cannot encode signals"),
                }
            }
            tokio::time::sleep(MIN_GAP).await;
            // Wait for the next change; a slow client that lagged just gets the newest state.
            // Without changes the views are sent again now and then anyway: values age, and
            // a plant that went quiet must turn stale on the page, not stay green.
            match tokio::time::timeout(QUIET_REFRESH, changes.recv()).await {
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
                Ok(Err(RecvError::Closed)) => break,
            }
        }
    };
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
