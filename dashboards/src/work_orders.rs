//! Work orders from the maintenance board: create one for a unit (who, what, why, by
//! when), list them, close one with an electronic signature — which records the
//! maintenance or calibration it stands for, resetting the unit's counters as the order
//! says. The audit trail is their store (twin-core `work_orders` folds it).

use std::sync::Mutex;

use access::Permission;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::json;
use twin_core::{
    work_orders::{CLOSED, CREATED, TARGET},
    MaintenanceRecord, WorkDone, WorkKind, WorkOrderError, WorkOrders, WorkRequest,
};

use crate::{
    api::{error, refused, Refused},
    auth::{sign, Principal, Signature},
    AppState,
};

/// Held from reading the book to writing its record, so two requests at once can neither
/// take the same number nor close one order twice.
static WRITING: Mutex<()> = Mutex::new(());

/// The book as the audit trail holds it now.
fn book(state: &AppState) -> Result<WorkOrders, Refused> {
    let Some(trail) = &state.audit else {
        return Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "work orders are kept in the audit trail, and this server has none",
        ));
    };
    let records = trail.records().map_err(|e| {
        tracing::error!(error = %e, "audit trail unreadable");
        refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("audit trail: {e}"),
        )
    })?;
    let mut book = WorkOrders::default();
    for r in &records {
        book.apply(
            &r.entry.action,
            &r.entry.target,
            &r.entry.user,
            r.at,
            &r.entry.details,
        );
    }
    Ok(book)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    site: Option<String>,
    /// `open` (open or overdue), `overdue`, `closed`; all when absent.
    state: Option<String>,
}

/// The work orders the user may see, newest first, each with its `state`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let book = match book(&state) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let now = Utc::now();
    let list: Vec<_> = book
        .all()
        .iter()
        .rev()
        .filter(|w| p.sees_line(&w.request.site, &w.request.line))
        .filter(|w| q.site.as_ref().is_none_or(|s| &w.request.site == s))
        .filter(|w| match (q.state.as_deref(), w.state(now)) {
            (None | Some(""), _) => true,
            (Some("open"), s) => s != "closed",
            (Some(want), s) => want == s,
        })
        .map(|w| {
            let mut v = json!(w);
            v["state"] = json!(w.state(now));
            v
        })
        .collect();
    Json(list).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Create {
    site: String,
    line: String,
    equipment: String,
    part: Option<String>,
    kind: WorkKind,
    reason: String,
    due: DateTime<Utc>,
    /// Defaults to true for maintenance: a renewed part starts its counters again.
    reset_counters: Option<bool>,
    alert: Option<u64>,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(c): Json<Create>,
) -> Response {
    if let Err(r) = p
        .require(Permission::ManageWorkOrders)
        .and_then(|()| p.line(&c.site, &c.line))
    {
        return r.into_response();
    }
    if c.reason.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "reason: say why the work is needed",
        );
    }
    if c.due < Utc::now() - Duration::minutes(5) {
        return error(StatusCode::BAD_REQUEST, "due: a time to come");
    }
    if !state
        .twin
        .lifecycle(Some(&c.site))
        .iter()
        .any(|u| u.line == c.line && u.equipment == c.equipment)
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("no unit {}/{}/{}", c.site, c.line, c.equipment),
        );
    }
    if let Some(id) = c.alert {
        let unit = state.twin.with_maintenance_watch(|w| {
            w.get(id)
                .map(|a| (a.site.clone(), a.line.clone(), a.equipment.clone()))
        });
        if unit != Some((c.site.clone(), c.line.clone(), c.equipment.clone())) {
            return error(
                StatusCode::BAD_REQUEST,
                format!("alert: no maintenance alert {id} on this unit"),
            );
        }
    }
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let book = match book(&state) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let request = WorkRequest {
        id: book.next_id(),
        site: c.site,
        line: c.line,
        equipment: c.equipment,
        part: c.part.filter(|p| !p.trim().is_empty()),
        kind: c.kind,
        reason: c.reason.trim().to_string(),
        due: c.due,
        reset_counters: c.reset_counters.unwrap_or(c.kind == WorkKind::Maintenance),
        alert: c.alert,
    };
    let target = format!("{TARGET}{}", request.id);
    if let Err(r) = state.audit_or_fail(p.name(), CREATED, target, json!(request)) {
        return r.into_response();
    }
    tracing::info!(work_order = %request.id, user = %p.name(), "work order created");
    (StatusCode::CREATED, Json(json!(request))).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Close {
    signature: Option<Signature>,
    #[serde(default)]
    comment: String,
}

/// Closes a work order with the signature of who did the work; a maintenance order that
/// resets counters and a calibration are recorded on the unit, and a maintenance alert the
/// order answers is closed with it.
pub(crate) async fn close(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(body): Json<Close>,
) -> Response {
    if let Err(r) = p.require(Permission::ManageWorkOrders) {
        return r.into_response();
    }
    let order = match book(&state).and_then(|b| closable(&b, &id).cloned()) {
        Ok(w) => w,
        Err(r) => return r.into_response(),
    };
    let w = &order.request;
    if let Err(r) = p.line(&w.site, &w.line) {
        return r.into_response();
    }
    let target = format!("{TARGET}{id}");
    let signed = match sign(&state, &p, body.signature.as_ref(), CLOSED, &target).await {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let _writing = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    // Closed by someone else while this user signed?
    if let Err(r) = book(&state).and_then(|b| closable(&b, &id).map(|_| ())) {
        return r.into_response();
    }
    let action = match (w.kind, w.reset_counters) {
        (WorkKind::Calibration, _) => Some("calibration"),
        (WorkKind::Maintenance, true) => Some("maintenance"),
        _ => None,
    };
    if let Some(action) = action {
        let record = MaintenanceRecord {
            site: w.site.clone(),
            line: w.line.clone(),
            equipment: w.equipment.clone(),
            at: signed.at,
            user: p.name().to_string(),
            work_order: id.clone(),
            action: action.into(),
            part: w.part.clone(),
            comment: body.comment.clone(),
        };
        if let Err(e) = state.twin.record_maintenance(record) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
    }
    let done = WorkDone {
        by: p.name().to_string(),
        at: signed.at,
        comment: body.comment.clone(),
        signature: signed.line(),
    };
    let details = json!({
        "site": w.site, "work_order": id, "done": done, "signature": signed,
        "recorded": action, "alert": w.alert,
    });
    if let Err(r) = state.audit_or_fail(p.name(), CLOSED, target, details) {
        return r.into_response();
    }
    if let Some(alert) = w.alert {
        let closed = state.twin.with_maintenance_watch(|m| {
            m.close(alert, p.name(), &id, &body.comment, signed.at)
                .inspect(|_| m.sign(alert, signed.line()))
        });
        match closed {
            Ok(n) => state.notify(&n),
            // Closed already (by its own work order, or the part renewed): nothing to do.
            Err(e) => tracing::info!(alert, error = %e, "alert not closed with work order"),
        }
    }
    tracing::info!(work_order = %id, user = %p.name(), "work order closed");
    let mut v = json!(w);
    v["closed"] = json!(done);
    v["state"] = json!("closed");
    v["recorded"] = json!(action);
    Json(v).into_response()
}

fn closable<'a>(book: &'a WorkOrders, id: &str) -> Result<&'a twin_core::WorkOrder, Refused> {
    book.closable(id).map_err(|e| {
        let status = match e {
            WorkOrderError::Unknown(_) => StatusCode::NOT_FOUND,
            WorkOrderError::Closed(_) => StatusCode::CONFLICT,
        };
        refused(status, e.to_string())
    })
}
