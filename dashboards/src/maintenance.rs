//! The maintenance API: equipment by failure risk with the signals behind each prediction,
//! predictive alerts (acknowledge, close with a work order), lifecycle records and the
//! maintenance actions that reset their counters.

use access::Permission;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use twin_core::{AlertError, MaintenanceRecord};

use crate::{
    api::{error, refused, Refused},
    auth::{sign, Principal, Signature},
    AppState,
};

#[derive(Debug, Deserialize)]
pub(crate) struct RiskQuery {
    site: Option<String>,
    line: Option<String>,
    /// At most this many, most at risk first.
    limit: Option<usize>,
}

/// Every watched part, most likely to fail within the horizon first.
pub(crate) async fn risks(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<RiskQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let models = state.twin.maintenance_models();
    let mut list = state.twin.maintenance_risks();
    list.retain(|r| {
        p.sees_line(&r.site, &r.line)
            && q.site.as_ref().is_none_or(|s| &r.site == s)
            && q.line.as_ref().is_none_or(|l| &r.line == l)
    });
    list.truncate(q.limit.unwrap_or(usize::MAX));
    Json(json!({
        "model": models.as_ref().map(|m| json!({
            "version": m.version,
            "fingerprint": m.fingerprint,
            "trained_at": m.trained_at,
            "horizon_h": m.horizon_h,
            "parts": m.parts.iter().map(|p| format!("{}/{}", p.kind, p.part)).collect::<Vec<_>>(),
        })),
        "risks": list,
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct WearQuery {
    site: String,
    line: String,
    equipment: String,
    part: String,
}

/// A part's estimated wear per window: the trend a prediction extrapolates.
pub(crate) async fn wear(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<WearQuery>,
) -> Response {
    if let Err(r) = p.line(&q.site, &q.line) {
        return r.into_response();
    }
    let series = state
        .twin
        .wear_series(&q.site, &q.line, &q.equipment, &q.part);
    Json(
        series
            .into_iter()
            .filter(|(_, e, _)| e.is_finite())
            .map(|(t, e, stopped)| json!({ "t": t, "wear": e, "stopped": stopped }))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct AlertQuery {
    site: Option<String>,
    state: Option<String>,
}

pub(crate) async fn alerts(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AlertQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let list = state.twin.with_maintenance_watch(|w| {
        w.alerts()
            .iter()
            .filter(|a| p.sees_line(&a.site, &a.line))
            .filter(|a| q.site.as_ref().is_none_or(|s| &a.site == s))
            .filter(|a| {
                q.state.as_deref().is_none_or(|s| {
                    serde_json::to_value(a.state).is_ok_and(|v| v.as_str() == Some(s))
                })
            })
            .cloned()
            .collect::<Vec<_>>()
    });
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Acknowledge {
    #[serde(default)]
    comment: String,
    /// A predictive-maintenance alert is GMP-relevant: acknowledging it is signed.
    signature: Option<Signature>,
}

/// The alert's place, checked against the user's scope before anything is done to it.
fn alert_in_scope(state: &AppState, p: &Principal, id: u64) -> Result<(), Refused> {
    let place = state.twin.with_maintenance_watch(|w| {
        w.alerts()
            .iter()
            .find(|a| a.id == id)
            .map(|a| (a.site.clone(), a.line.clone()))
    });
    match place {
        Some((site, line)) => p.line(&site, &line),
        None => Err(refused(
            StatusCode::NOT_FOUND,
            AlertError::Unknown(id).to_string(),
        )),
    }
}

pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<u64>,
    Json(body): Json<Acknowledge>,
) -> Response {
    if let Err(r) = p
        .require(Permission::AcknowledgeAlert)
        .and_then(|()| alert_in_scope(&state, &p, id))
    {
        return r.into_response();
    }
    let target = format!("maintenance-alert/{id}");
    let signed = match sign(
        &state,
        &p,
        body.signature.as_ref(),
        "alert.acknowledge",
        &target,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let done = state.twin.with_maintenance_watch(|w| {
        w.acknowledge(id, p.name(), &body.comment, signed.at)
            .inspect(|_| w.sign(id, signed.line()))
    });
    match done {
        Ok(mut n) => {
            if let Some(a) = n.alert.acknowledged.as_mut() {
                a.signature = Some(signed.line());
            }
            tracing::info!(alert = id, user = %p.name(), "maintenance alert acknowledged");
            let details = json!({
                "site": n.alert.site, "comment": body.comment, "signature": signed,
                "alert": alert_summary(&n.alert),
            });
            if let Err(r) = state.audit_or_fail(p.name(), "alert.acknowledge", target, details) {
                return r.into_response();
            }
            state.notify(&n);
            Json(n.alert).into_response()
        }
        Err(e) => alert_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Close {
    signature: Option<Signature>,
    work_order: String,
    #[serde(default)]
    comment: String,
    /// The work order renewed the part: reset the unit's since-maintenance counters.
    #[serde(default)]
    reset_counters: bool,
}

pub(crate) async fn close(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<u64>,
    Json(body): Json<Close>,
) -> Response {
    if let Err(r) = p
        .require(Permission::ManageWorkOrders)
        .and_then(|()| alert_in_scope(&state, &p, id))
    {
        return r.into_response();
    }
    if body.work_order.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "a work order number is required");
    }
    let target = format!("maintenance-alert/{id}");
    let signed = match sign(
        &state,
        &p,
        body.signature.as_ref(),
        "workorder.close",
        &target,
    )
    .await
    {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let now = signed.at;
    let done = state.twin.with_maintenance_watch(|w| {
        w.close(id, p.name(), &body.work_order, &body.comment, now)
            .inspect(|_| w.sign(id, signed.line()))
    });
    let n = match done {
        Ok(n) => n,
        Err(e) => return alert_error(e),
    };
    if body.reset_counters {
        let a = &n.alert;
        let record = MaintenanceRecord {
            site: a.site.clone(),
            line: a.line.clone(),
            equipment: a.equipment.clone(),
            at: now,
            user: p.name().to_string(),
            work_order: body.work_order.clone(),
            action: "maintenance".into(),
            part: Some(a.part.clone()),
            comment: body.comment.clone(),
        };
        if let Err(e) = state.twin.record_maintenance(record) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    let mut n = n;
    if let Some(c) = n.alert.closed.as_mut() {
        c.signature = Some(signed.line());
    }
    tracing::info!(alert = id, user = %p.name(), work_order = %body.work_order, "maintenance alert closed");
    let details = json!({
        "site": n.alert.site,
        "signature": signed,
        "work_order": body.work_order,
        "comment": body.comment,
        "reset_counters": body.reset_counters,
        "alert": alert_summary(&n.alert),
    });
    if let Err(r) = state.audit_or_fail(p.name(), "workorder.close", target, details) {
        return r.into_response();
    }
    state.notify(&n);
    Json(n.alert).into_response()
}

fn alert_error(e: AlertError) -> Response {
    let status = match e {
        AlertError::Unknown(_) => StatusCode::NOT_FOUND,
        AlertError::Closed(_) => StatusCode::CONFLICT,
        AlertError::NoUser => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

#[derive(Debug, Deserialize)]
pub(crate) struct LifecycleQuery {
    site: Option<String>,
}

pub(crate) async fn lifecycle(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<LifecycleQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let mut list = state.twin.lifecycle(q.site.as_deref());
    list.retain(|u| p.sees_line(&u.site, &u.line));
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Action {
    site: String,
    line: String,
    equipment: String,
    work_order: String,
    #[serde(default = "maintenance")]
    action: String,
    part: Option<String>,
    #[serde(default)]
    comment: String,
}

fn maintenance() -> String {
    "maintenance".into()
}

/// Records a maintenance or calibration action on a unit.
pub(crate) async fn record(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(a): Json<Action>,
) -> Response {
    if let Err(r) = p
        .require(Permission::RecordMaintenance)
        .and_then(|()| p.line(&a.site, &a.line))
    {
        return r.into_response();
    }
    if a.work_order.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "work_order is required");
    }
    if !matches!(a.action.as_str(), "maintenance" | "calibration") {
        return error(
            StatusCode::BAD_REQUEST,
            format!("action `{}`: must be maintenance or calibration", a.action),
        );
    }
    let record = MaintenanceRecord {
        site: a.site,
        line: a.line,
        equipment: a.equipment,
        at: Utc::now(),
        user: p.name().to_string(),
        work_order: a.work_order,
        action: a.action,
        part: a.part,
        comment: a.comment,
    };
    match state.twin.record_maintenance(record.clone()) {
        Ok(()) => {
            let target = format!("{}/{}/{}", record.site, record.line, record.equipment);
            let details = json!({
                "site": record.site,
                "action": record.action,
                "work_order": record.work_order,
                "part": record.part,
                "comment": record.comment,
            });
            if let Err(r) = state.audit_or_fail(&record.user, "maintenance.record", target, details)
            {
                return r.into_response();
            }
            (StatusCode::CREATED, Json(record)).into_response()
        }
        Err(e @ twin_core::LogError::UnknownUnit(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// What an audit record keeps of an alert: enough to know which prediction it was.
fn alert_summary(a: &twin_core::MaintenanceAlert) -> serde_json::Value {
    json!({
        "site": a.site, "line": a.line, "equipment": a.equipment, "part": a.part,
        "severity": a.severity, "raised_at": a.raised_at,
        "p_fail": a.latest.p_fail, "model_version": a.latest.model_version,
        "fingerprint": a.latest.fingerprint,
    })
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    limit: Option<usize>,
}

/// The audit trail, newest first, verified on every read.
pub(crate) async fn audit_trail(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(r) = p.require(Permission::ViewAudit) {
        return r.into_response();
    }
    let Some(trail) = &state.audit else {
        return Json(Vec::<audit::Record>::new()).into_response();
    };
    match trail.records() {
        Ok(mut r) => {
            // Records about a site are shown to users of that site only.
            r.retain(|rec| {
                rec.entry.details["site"]
                    .as_str()
                    .is_none_or(|s| p.user().scope.allows_site(s))
            });
            r.reverse();
            r.truncate(q.limit.unwrap_or(200));
            Json(r).into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
