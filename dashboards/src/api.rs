//! The JSON API. Errors come back as `{"error": "..."}` with a status that says whose fault.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::AppState;

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
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
    /// Cut the window to one batch: its start to its end (or now, while it runs).
    batch: Option<String>,
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
    let batch = match &q.batch {
        Some(id) => match state.twin.batch(id) {
            Some(b) => Some(b),
            None => return error(StatusCode::NOT_FOUND, format!("no batch `{id}`")),
        },
        None => None,
    };
    let to =
        q.to.or_else(|| batch.as_ref().and_then(|b| b.end))
            .unwrap_or_else(Utc::now);
    let from = q
        .from
        .or_else(|| batch.as_ref().map(|b| b.start))
        .unwrap_or(to - Duration::minutes(15));
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
            "batch": q.batch,
            "points": samples.into_iter().map(|s| Point { t: s.source_ts, v: s.value, q: s.quality.0 }).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub(crate) async fn diagnostics(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json((state.diagnostics)())
}

#[derive(Debug, Deserialize)]
pub(crate) struct BatchQuery {
    site: Option<String>,
    line: Option<String>,
    limit: Option<usize>,
}

/// A batch record with its predicted CQAs (empty until quality models are trained).
#[derive(Debug, Serialize)]
struct BatchWithPrediction {
    #[serde(flatten)]
    record: twin_core::BatchRecord,
    predictions: Vec<twin_core::CqaPrediction>,
}

fn with_prediction(state: &AppState, record: twin_core::BatchRecord) -> BatchWithPrediction {
    BatchWithPrediction {
        predictions: state.twin.predict_batch(&record),
        record,
    }
}

/// Running batches first, then completed ones newest first.
pub(crate) async fn batches(
    State(state): State<AppState>,
    Query(q): Query<BatchQuery>,
) -> Response {
    if let Some(site) = &q.site {
        if !state.twin.sites().iter().any(|s| &s.id == site) {
            return error(StatusCode::NOT_FOUND, format!("no site `{site}`"));
        }
    }
    let list: Vec<_> = state
        .twin
        .batches(
            q.site.as_deref(),
            q.line.as_deref(),
            q.limit.unwrap_or(50).min(1000),
        )
        .into_iter()
        .map(|b| with_prediction(&state, b))
        .collect();
    Json(list).into_response()
}

pub(crate) async fn batch(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    match state.twin.batch(&id) {
        Some(b) => Json(with_prediction(&state, b)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no batch `{id}`")),
    }
}

/// Release-risk alerts: batches predicted out of specification before their lab result.
pub(crate) async fn alerts(State(state): State<AppState>) -> Response {
    let list: Vec<_> = state
        .twin
        .release_risks()
        .into_iter()
        .rev()
        .map(|a| json!({ "kind": "release_risk", "alert": a }))
        .collect();
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SpcQuery {
    /// `lab:<cqa>` or `param:<equipment kind>.<signal>`.
    variable: String,
    site: Option<String>,
    line: Option<String>,
    product: Option<String>,
}

/// I-MR chart with Nelson-rule violations and capability, one point per batch.
pub(crate) async fn spc(State(state): State<AppState>, Query(q): Query<SpcQuery>) -> Response {
    let scope = twin_core::spc::Scope {
        site: q.site.as_deref(),
        line: q.line.as_deref(),
        product: q.product.as_deref(),
    };
    match state.twin.spc_chart(&scope, &q.variable) {
        Ok(c) => Json(c).into_response(),
        Err(e @ twin_core::spc::SpcError::BadVariable(_)) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CapabilityQuery {
    cqa: String,
}

/// Ppk of a CQA per site and product, worst first: the plants compared.
pub(crate) async fn capability(
    State(state): State<AppState>,
    Query(q): Query<CapabilityQuery>,
) -> Response {
    Json(state.twin.capability_by_site(&q.cqa)).into_response()
}
