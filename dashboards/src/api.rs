//! The JSON API. Errors come back as `{"error": "..."}` with a status that says whose fault.

use access::Permission;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    auth::{Principal, Signature},
    AppState,
};

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A refusal decided before a handler has its answer: a check's `Err`, answered as
/// [`error`] is.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

pub(crate) fn refused(status: StatusCode, message: impl Into<String>) -> Refused {
    Refused {
        status,
        message: message.into(),
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(
        json!({ "status": "ok", "sites": state.twin.sites().len(), "signals": state.twin.signal_count() }),
    )
}

/// `?at=<RFC 3339>`: the view at that past moment, read from the store (time travel).
#[derive(Debug, Deserialize)]
pub(crate) struct AtQuery {
    at: Option<DateTime<Utc>>,
}

pub(crate) async fn sites(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AtQuery>,
) -> Response {
    let list = match q.at {
        None => state.twin.site_summaries(Utc::now()),
        Some(at) => match crate::past::snapshot(&state, at).await {
            Ok(past) => state.twin.site_summaries_at(&past),
            Err(r) => return r.into_response(),
        },
    };
    Json(scoped_summaries(&p, list)).into_response()
}

/// The sites (and of them the lines) a user may see.
pub(crate) fn scoped_summaries(
    p: &Principal,
    mut list: Vec<twin_core::SiteSummary>,
) -> Vec<twin_core::SiteSummary> {
    list.retain(|s| p.user().scope.allows_site(&s.id));
    for s in &mut list {
        let site = s.id.clone();
        s.lines.retain(|l| p.sees_line(&site, &l.id));
    }
    list
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignalQuery {
    site: Option<String>,
    line: Option<String>,
    equipment: Option<String>,
    category: Option<model::Category>,
    /// A past moment (time travel), read from the store.
    at: Option<DateTime<Utc>>,
}

pub(crate) async fn signals(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SignalQuery>,
) -> Response {
    let twin = &state.twin;
    if let Some(site) = &q.site {
        if let Err(r) = p.site(site) {
            return r.into_response();
        }
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
    let mut list = match q.at {
        None => twin.signals(q.site.as_deref(), q.line.as_deref(), Utc::now()),
        Some(at) => match crate::past::snapshot(&state, at).await {
            Ok(past) => twin.signals_at(&past, q.site.as_deref(), q.line.as_deref()),
            Err(r) => return r.into_response(),
        },
    };
    list.retain(|s| {
        p.sees_line(&s.site, &s.line)
            && q.equipment.as_ref().is_none_or(|e| &s.equipment == e)
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
    /// `csv` for a download of the window (`export::history_csv`); JSON otherwise.
    format: Option<String>,
}

#[derive(Debug, Serialize)]
struct Point {
    t: DateTime<Utc>,
    v: model::Value,
    q: u32,
}

pub(crate) async fn history(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    // site/area/line/…: the line is the third part.
    if !p.sees_path(&q.path, 2) {
        return error(
            StatusCode::FORBIDDEN,
            format!("`{}` is outside the scope of user `{}`", q.path, p.name()),
        );
    }
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
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("format `{f}`: json or csv"),
            )
        }
    };
    match state.historian.query(&q.path, from, to).await {
        Ok(samples) if csv => crate::export::history_csv(&q.path, from, to, &samples),
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

pub(crate) async fn diagnostics(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    if let Err(r) = p.require(Permission::ViewDiagnostics) {
        return r.into_response();
    }
    Json((state.diagnostics)()).into_response()
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
    Extension(p): Extension<Principal>,
    Query(q): Query<BatchQuery>,
) -> Response {
    if let Some(site) = &q.site {
        if let Err(r) = p.site(site) {
            return r.into_response();
        }
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
        .filter(|b| p.sees_line(&b.site, &b.line))
        .map(|b| with_prediction(&state, b))
        .collect();
    Json(list).into_response()
}

pub(crate) async fn batch(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    match state.twin.batch(&id) {
        Some(b) => match p.line(&b.site, &b.line) {
            Ok(()) => Json(with_prediction(&state, b)).into_response(),
            Err(r) => r.into_response(),
        },
        None => error(StatusCode::NOT_FOUND, format!("no batch `{id}`")),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Accept {
    signature: Option<Signature>,
    #[serde(default)]
    comment: String,
}

/// Quality accepts a batch's predicted CQAs (e.g. to proceed before the lab result), with
/// an electronic signature; the audit trail keeps the predictions and the model behind them.
pub(crate) async fn accept_prediction(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<Accept>,
) -> Response {
    if let Err(r) = p.require(Permission::AcceptQuality) {
        return r.into_response();
    }
    let Some(b) = state.twin.batch(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no batch `{id}`"));
    };
    if let Err(r) = p.line(&b.site, &b.line) {
        return r.into_response();
    }
    let predictions = state.twin.predict_batch(&b);
    if predictions.is_empty() {
        return error(
            StatusCode::CONFLICT,
            format!("batch `{id}` has no prediction to accept (no quality model yet)"),
        );
    }
    let target = format!("batch/{id}");
    let signed = match crate::auth::sign(
        &state,
        &p,
        body.signature.as_ref(),
        "prediction.accept",
        &target,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let details = json!({
        "site": b.site, "line": b.line, "comment": body.comment,
        "signature": signed, "predictions": predictions,
    });
    if let Err(r) = state.audit_or_fail(p.name(), "prediction.accept", target, details) {
        return r.into_response();
    }
    tracing::info!(batch = %id, user = %p.name(), "quality prediction accepted");
    Json(json!({ "batch": id, "signature": signed, "signed": signed.line(), "predictions": predictions }))
        .into_response()
}

/// Release-risk alerts: batches predicted out of specification before their lab result.
pub(crate) async fn alerts(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let list: Vec<_> = state
        .twin
        .release_risks()
        .into_iter()
        .filter(|a| p.sees_line(&a.site, &a.line))
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
pub(crate) async fn spc(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<SpcQuery>,
) -> Response {
    // A chart pools batches: it may only pool what the user may see. A user of some sites
    // names one; a user of some lines names one.
    let user_scope = &p.user().scope;
    let site = match q.site.as_deref() {
        Some(s) => s.to_string(),
        None if user_scope.every_site() => String::new(),
        None => match user_scope.sites.as_slice() {
            [only] if only != "*" => only.clone(),
            _ => return error(StatusCode::BAD_REQUEST, "site: choose one of your sites"),
        },
    };
    if !site.is_empty() {
        if let Err(r) = p.site(&site) {
            return r.into_response();
        }
        let allowed = match q.line.as_deref() {
            Some(line) => p.line(&site, line),
            None if user_scope.whole_site(&site) => Ok(()),
            None => Err(refused(
                StatusCode::BAD_REQUEST,
                "line: choose one of your lines",
            )),
        };
        if let Err(r) = allowed {
            return r.into_response();
        }
    }
    let scope = twin_core::spc::Scope {
        site: (!site.is_empty()).then_some(site.as_str()),
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
    Extension(p): Extension<Principal>,
    Query(q): Query<CapabilityQuery>,
) -> Response {
    let mut list = state.twin.capability_by_site(&q.cqa);
    list.retain(|g| p.user().scope.whole_site(&g.key.site));
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct OeeQuery {
    site: Option<String>,
    /// The window in plant hours (default a shift, 8).
    hours: Option<f64>,
}

/// OEE (availability × performance × quality of each line's press) per site and line, with
/// each line's hourly trend: the figure HQ compares the plants on.
pub(crate) async fn oee(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<OeeQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let hours = q.hours.unwrap_or(8.0);
    if !(hours.is_finite() && (1.0..=72.0).contains(&hours)) {
        return error(StatusCode::BAD_REQUEST, "hours: 1 to 72");
    }
    let mut list = state.twin.oee(hours);
    list.retain(|s| {
        q.site.as_ref().is_none_or(|x| &s.site == x) && p.user().scope.allows_site(&s.site)
    });
    for s in &mut list {
        s.lines.retain(|l| p.sees_line(&l.site, &l.line));
    }
    Json(json!({ "hours": hours, "sites": list })).into_response()
}
