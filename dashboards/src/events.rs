//! Live updates as server-sent events, pushed when the twin changes:
//! - `sites`: the site summaries the user may see (every view's header, the overview);
//! - `signals`: with `?site=&line=`, every signal of that line with its value, quality and
//!   age (the line view and the equipment detail), so a Bad or stale value reaches the page
//!   as such. Only what changes is sent ([`Reading`]); names, units and limits come once
//!   from `/api/signals`.
//!
//! - `version`: first of each update — the twin's version shown, when it was merged, and
//!   since when the oldest change not shown before had been waiting.
//!
//! Each event's `id` is the twin's version it shows: a viewer (or the load test) can tell
//! which merge of the store it is up to.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{Query, State},
    http::header,
    response::{IntoResponse, Response},
    Extension,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::{api::scoped_summaries, auth::Principal, AppState};

/// At most this often per client: the page needs to be under a second behind, not faster.
const MIN_GAP: Duration = Duration::from_millis(500);

/// What changes of a signal, as the `signals` event carries it.
#[derive(Debug, Serialize)]
struct Reading {
    path: String,
    value: Option<model::Value>,
    quality: Option<u32>,
    quality_severity: Option<&'static str>,
    source_ts: Option<chrono::DateTime<chrono::Utc>>,
    age_s: Option<f64>,
    excursion: bool,
    error: Option<String>,
}

impl From<twin_core::SignalView> for Reading {
    fn from(s: twin_core::SignalView) -> Self {
        Reading {
            path: s.path,
            value: s.value,
            quality: s.quality,
            quality_severity: s.quality_severity,
            source_ts: s.source_ts,
            age_s: s.age_s,
            excursion: s.excursion,
            error: s.error,
        }
    }
}

/// Longest time between two events while nothing changes.
const QUIET_REFRESH: Duration = Duration::from_secs(5);

/// A view encoded once for every viewer who may see the same thing: two hundred viewers of
/// the overview cost one serialisation and one buffer per update, not two hundred — each
/// viewer's stream sends the same bytes.
#[derive(Debug, Default)]
pub(crate) struct Frames {
    by_key: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Frame>>>>>,
}

#[derive(Debug)]
struct Frame {
    version: u64,
    built: Instant,
    bytes: Bytes,
}

/// A frame of the same version is reused this long; after that it is rebuilt anyway, since
/// the ages and freshness it shows move with the clock.
const FRAME_REUSE: Duration = Duration::from_secs(1);

impl Frames {
    /// The `event` frame of `key` at `version`, built by `build` if nobody has yet.
    async fn get<T: Serialize>(
        &self,
        key: String,
        event: &str,
        version: u64,
        build: impl FnOnce() -> T,
    ) -> Result<Bytes, serde_json::Error> {
        let slot = self
            .by_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        // Viewers of the same key wait for the one building it, then share its result.
        let mut frame = slot.lock().await;
        if let Some(f) = frame
            .as_ref()
            .filter(|f| f.version == version && f.built.elapsed() < FRAME_REUSE)
        {
            return Ok(f.bytes.clone());
        }
        let bytes = sse_frame(event, version, &build())?;
        *frame = Some(Frame {
            version,
            built: Instant::now(),
            bytes: bytes.clone(),
        });
        Ok(bytes)
    }
}

/// One server-sent event. Compact JSON holds no line break, so one `data:` line carries it.
fn sse_frame(event: &str, id: u64, data: &impl Serialize) -> Result<Bytes, serde_json::Error> {
    let mut buf = format!("event: {event}\nid: {id}\ndata: ").into_bytes();
    serde_json::to_writer(&mut buf, data)?;
    buf.extend_from_slice(b"\n\n");
    Ok(Bytes::from(buf))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    site: Option<String>,
    line: Option<String>,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(frames): Extension<Arc<Frames>>,
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
    // Users with the same scope see the same summaries.
    let scope = &p.user().scope;
    let scope_key = format!("sites {:?} {:?}", scope.sites, scope.lines);
    let events = async_stream::stream! {
        let mut shown: Option<u64> = None;
        loop {
            // Logged out, expired or idle: the stream ends with the session.
            let now = chrono::Utc::now();
            if !state.access.sessions.alive(&p.session.token, now) {
                break;
            }
            // Read before the views: the views are at least this new.
            let version = twin.version();
            // How long the oldest change this viewer has not seen yet has been waiting:
            // what "at most a second behind the store" is measured by.
            let waiting_since = match shown {
                Some(v) if v >= version => None,
                Some(v) => twin.applied_at(v + 1),
                None => None,
            };
            let stamp = serde_json::json!({
                "version": version,
                "applied_at": twin.applied_at(version),
                "oldest_unshown_at": waiting_since,
                "sent_at": now,
            });
            shown = Some(version);
            match sse_frame("version", version, &stamp) {
                Ok(b) => yield Ok::<_, Infallible>(b),
                Err(e) => tracing::warn!(error = %e, "cannot encode the version"),
            }
            let summaries = frames
                .get(scope_key.clone(), "sites", version, || {
                    scoped_summaries(&p, twin.site_summaries(now))
                })
                .await;
            match summaries {
                Ok(b) => yield Ok(b),
                Err(e) => tracing::warn!(error = %e, "cannot encode site summaries"),
            }
            if let Some((site, line)) = &line {
                let signals = frames
                    .get(format!("signals {site}/{line}"), "signals", version, || {
                        let list = twin.signals(Some(site), Some(line), now);
                        list.into_iter().map(Reading::from).collect::<Vec<_>>()
                    })
                    .await;
                match signals {
                    Ok(b) => yield Ok(b),
                    Err(e) => tracing::warn!(error = %e, "cannot encode signals"),
                }
            }
            tokio::time::sleep(MIN_GAP).await;
            // Wait for the next change; a slow client that lagged just gets the newest state.
            // Without changes the views are sent again now and then anyway: values age, and
            // a plant that went quiet must turn stale on the page, not stay green.
            // A notice of a version already shown (sent while this one was being read) is
            // no change.
            let quiet_until = tokio::time::Instant::now() + QUIET_REFRESH;
            let closed = loop {
                match tokio::time::timeout_at(quiet_until, changes.recv()).await {
                    Ok(Ok(v)) if v <= version => continue,
                    Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => break false,
                    Ok(Err(RecvError::Closed)) => break true,
                }
            };
            if closed {
                break;
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}
