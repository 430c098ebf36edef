//! The JSON API. Errors come back as `{"error": "..."}` with a status that says whose fault.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(
        json!({ "status": "ok", "sites": state.twin.sites().len(), "signals": state.twin.signal_count() }),
    )
}

pub(crate) async fn sites(State(state): State<AppState>) -> Response {
    Json(state.twin.site_summaries(Utc::now())).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignalQuery {
    site: Option<String>,
    line: Option<String>,
    equipment: Option<String>,
    category: Option<model::Category>,
}

pub(crate) async fn signals(
    State(state): State<AppState>,
    Query(q): Query<SignalQuery>,
) -> Response {
    let twin = &state.twin;
    if let Some(site) = &q.site {
        let Some(s) = twin.sites().iter().find(|s| &s.id == site) else {
            return error(StatusCode::NOT_FOUND, format!("no site `{site}`"));
        };
        if let Some(line) = &q.line {
            if !s.lines.iter().any(|l| &l.id == line) {
                return error(
                    StatusCode::NOT_FOUND,
                    format!("no line `{line}` at site `{site}`"),
                );
            }
        }
    }
    let mut list = twin.signals(q.site.as_deref(), q.line.as_deref(), Utc::now());
    list.retain(|s| {
        q.equipment.as_ref().is_none_or(|e| &s.equipment == e)
            && q.category.is_none_or(|c| s.category == c)
    });
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    /// Tag path `site/area/line/equipment/signal`.
    path: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct Point {
    t: DateTime<Utc>,
    v: model::Value,
    q: u32,
}

pub(crate) async fn history(
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    if !state.twin.has_signal(&q.path) {
        return error(StatusCode::NOT_FOUND, format!("no signal `{}`", q.path));
    }
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::minutes(15));
    if from >= to {
        return error(StatusCode::BAD_REQUEST, "`from` must be before `to`");
    }
    match state.historian.query(&q.path, from, to).await {
        Ok(samples) => Json(json!({
            "path": q.path,
            // The tags as the store keeps them, so a reader can see what was written.
            "tag": samples.first().map(|s| s.tag.clone()),
            "from": from,
            "to": to,
            "points": samples.into_iter().map(|s| Point { t: s.source_ts, v: s.value, q: s.quality.0 }).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(crate) async fn diagnostics(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json((state.diagnostics)())
}
