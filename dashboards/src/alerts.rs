//! One list of every alert a user may see — process excursions and unreadable signals from
//! the twin's board, predictive-maintenance alerts, release risks — filtered by site, line,
//! kind and state; acknowledging (signed for an excursion: it is GMP-relevant) and shelving
//! the board's alerts, each audited.

use access::Permission;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use twin_core::{BoardError, BoardKind};

use crate::{
    api::{error, refused, Refused},
    auth::{sign, Principal, Signature},
    AppState,
};

/// An alert of any kind, as the list shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Listed {
    /// `<kind>/<id>`: unique across kinds.
    pub(crate) key: String,
    pub(crate) kind: &'static str,
    pub(crate) site: String,
    pub(crate) line: String,
    pub(crate) equipment: Option<String>,
    pub(crate) message: String,
    pub(crate) raised_at: chrono::DateTime<Utc>,
    pub(crate) active: bool,
    pub(crate) acknowledged: Option<serde_json::Value>,
    pub(crate) shelved_until: Option<chrono::DateTime<Utc>>,
    /// What the alert's own endpoint says about it.
    pub(crate) detail: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    site: Option<String>,
    line: Option<String>,
    kind: Option<String>,
    /// `active`, `unacknowledged`, `shelved` or `all` (default: everything not shelved).
    state: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(r) = p.site_if(q.site.as_deref()) {
        return r.into_response();
    }
    let now = Utc::now();
    let mut all = gather(&state, now);
    all.retain(|a| {
        p.sees_line(&a.site, &a.line)
            && q.site.as_ref().is_none_or(|s| &a.site == s)
            && q.line.as_ref().is_none_or(|l| &a.line == l)
            && q.kind.as_ref().is_none_or(|k| a.kind == k)
            && match q.state.as_deref() {
                Some("all") => true,
                Some("active") => a.active && a.shelved_until.is_none(),
                Some("unacknowledged") => a.acknowledged.is_none() && a.shelved_until.is_none(),
                Some("shelved") => a.shelved_until.is_some(),
                _ => a.shelved_until.is_none(),
            }
    });
    all.sort_by_key(|a| std::cmp::Reverse(a.raised_at));
    Json(all).into_response()
}

/// Every alert of every kind the twin holds now, unfiltered: the one place that knows how
/// each kind reads as a list entry.
pub(crate) fn gather(state: &AppState, now: chrono::DateTime<Utc>) -> Vec<Listed> {
    let mut all: Vec<Listed> = Vec::new();
    for a in state.twin.with_alert_board(|b| b.open()) {
        let kind = match a.kind {
            BoardKind::Excursion => "excursion",
            BoardKind::Data => "data",
        };
        all.push(Listed {
            key: format!("board/{}", a.id),
            kind,
            site: a.site.clone(),
            line: a.line.clone(),
            equipment: Some(a.equipment.clone()),
            message: a.message.clone(),
            raised_at: a.raised_at,
            active: a.active,
            acknowledged: a
                .acknowledged
                .as_ref()
                .and_then(|x| serde_json::to_value(x).ok()),
            shelved_until: a.shelved.as_ref().map(|s| s.until).filter(|u| *u > now),
            detail: serde_json::to_value(&a).unwrap_or_default(),
        });
    }
    for a in state.twin.with_maintenance_watch(|w| w.alerts().to_vec()) {
        if a.state == twin_core::AlertState::Closed {
            continue;
        }
        all.push(Listed {
            key: format!("maintenance/{}", a.id),
            kind: "maintenance",
            site: a.site.clone(),
            line: a.line.clone(),
            equipment: Some(a.equipment.clone()),
            message: format!(
                "{} {}: {:.0} % likely to fail within {:.0} h",
                a.equipment,
                a.part,
                a.latest.p_fail * 100.0,
                a.latest.horizon_h
            ),
            raised_at: a.raised_at,
            active: true,
            acknowledged: a
                .acknowledged
                .as_ref()
                .and_then(|x| serde_json::to_value(x).ok()),
            shelved_until: None,
            detail: serde_json::to_value(&a).unwrap_or_default(),
        });
    }
    for r in state.twin.release_risks() {
        if r.lab_value.is_some() {
            continue;
        }
        all.push(Listed {
            key: format!("release/{}/{}", r.batch, r.prediction.cqa),
            kind: "release_risk",
            site: r.site.clone(),
            line: r.line.clone(),
            equipment: None,
            message: format!(
                "batch {}: {} predicted {:.2}, out of specification",
                r.batch, r.prediction.cqa, r.prediction.value
            ),
            raised_at: r.raised_at,
            active: true,
            acknowledged: None,
            shelved_until: None,
            detail: serde_json::to_value(&r).unwrap_or_default(),
        });
    }
    all
}

fn board_error(e: BoardError) -> Response {
    let status = match e {
        BoardError::Unknown(_) => StatusCode::NOT_FOUND,
        BoardError::Acknowledged(_) => StatusCode::CONFLICT,
        BoardError::ShelfInPast | BoardError::NoUser => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// The board alert's place and kind, checked against the user before anything is done.
fn in_scope(state: &AppState, p: &Principal, id: u64) -> Result<BoardKind, Refused> {
    let found = state.twin.with_alert_board(|b| {
        b.open()
            .into_iter()
            .find(|a| a.id == id)
            .map(|a| (a.site, a.line, a.kind))
    });
    let Some((site, line, kind)) = found else {
        return Err(refused(
            StatusCode::NOT_FOUND,
            BoardError::Unknown(id).to_string(),
        ));
    };
    p.require(Permission::AcknowledgeAlert)
        .and_then(|()| p.line(&site, &line))?;
    Ok(kind)
}

#[derive(Debug, Deserialize)]
pub(crate) struct Acknowledge {
    #[serde(default)]
    comment: String,
    signature: Option<Signature>,
}

pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<u64>,
    Json(body): Json<Acknowledge>,
) -> Response {
    let kind = match in_scope(&state, &p, id) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let target = format!("board-alert/{id}");
    // A product or room out of its specification is GMP-relevant: signed.
    let signed = if kind == BoardKind::Excursion {
        match sign(
            &state,
            &p,
            body.signature.as_ref(),
            "alert.acknowledge",
            &target,
        )
        .await
        {
            Ok(s) => Some(s),
            Err(r) => return r.into_response(),
        }
    } else {
        None
    };
    let now = Utc::now();
    let done = state
        .twin
        .with_alert_board(|b| b.acknowledge(id, p.name(), &body.comment, now));
    let mut a = match done {
        Ok(a) => a,
        Err(e) => return board_error(e),
    };
    if let (Some(ack), Some(s)) = (a.acknowledged.as_mut(), &signed) {
        ack.signature = Some(s.line());
    }
    let details = json!({
        "site": a.site, "kind": a.kind, "path": a.path, "message": a.message,
        "comment": body.comment, "signature": signed,
    });
    if let Err(r) = state.audit_or_fail(p.name(), "alert.acknowledge", target, details) {
        return r.into_response();
    }
    Json(a).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ShelveBody {
    /// How long it stays shelved (at most a shift).
    minutes: i64,
    comment: String,
}

/// Longest a shelf may last: someone must look again within a shift.
const MAX_SHELF_MIN: i64 = 12 * 60;

pub(crate) async fn shelve(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<u64>,
    Json(body): Json<ShelveBody>,
) -> Response {
    if let Err(r) = in_scope(&state, &p, id) {
        return r.into_response();
    }
    if !(1..=MAX_SHELF_MIN).contains(&body.minutes) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("minutes: 1 to {MAX_SHELF_MIN}"),
        );
    }
    if body.comment.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "comment: say why it is shelved");
    }
    let now = Utc::now();
    let until = now + Duration::minutes(body.minutes);
    let done = state
        .twin
        .with_alert_board(|b| b.shelve(id, p.name(), until, &body.comment, now));
    let a = match done {
        Ok(a) => a,
        Err(e) => return board_error(e),
    };
    let details = json!({
        "site": a.site, "path": a.path, "until": until, "comment": body.comment,
    });
    if let Err(r) = state.audit_or_fail(
        p.name(),
        "alert.shelve",
        format!("board-alert/{id}"),
        details,
    ) {
        return r.into_response();
    }
    Json(a).into_response()
}
