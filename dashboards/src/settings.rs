//! Settings an administrator changes at run time (alert threshold, escalation time). Each
//! change is an audit record with the old value, the new one and the reason; the trail is
//! also where they are read back from at start, so a restart keeps them and no second
//! store can disagree with the record.

use access::Permission;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use serde::Deserialize;
use serde_json::json;

use crate::{api::error, auth::Principal, AppState};

const ACTION: &str = "config.change";

/// The settings, with their allowed range and how to read and write them.
struct Setting {
    key: &'static str,
    min: f64,
    max: f64,
    get: fn(&AppState) -> f64,
    set: fn(&AppState, f64),
}

const SETTINGS: &[Setting] = &[
    Setting {
        key: "maintenance.alert_probability",
        min: 0.05,
        max: 0.99,
        get: |s| s.twin.with_maintenance_watch(|w| w.threshold),
        set: |s, v| s.twin.with_maintenance_watch(|w| w.threshold = v),
    },
    Setting {
        key: "maintenance.escalate_after_h",
        min: 0.25,
        max: 168.0,
        get: |s| {
            s.twin
                .with_maintenance_watch(|w| w.escalate_after.num_seconds() as f64 / 3600.0)
        },
        set: |s, v| {
            s.twin.with_maintenance_watch(|w| {
                w.escalate_after = chrono::TimeDelta::seconds((v * 3600.0).round() as i64)
            })
        },
    },
];

fn current(state: &AppState) -> serde_json::Value {
    SETTINGS
        .iter()
        .map(|s| (s.key.to_string(), json!((s.get)(state))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Re-applies the changes recorded in the audit trail, oldest first.
pub(crate) fn restore(state: &AppState) {
    let Some(trail) = &state.audit else { return };
    let records = match trail.records() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "settings not restored from the audit trail");
            return;
        }
    };
    for r in records.iter().filter(|r| r.entry.action == ACTION) {
        let new = r.entry.details["new"].as_f64();
        if let (Some(s), Some(v)) = (SETTINGS.iter().find(|s| s.key == r.entry.target), new) {
            (s.set)(state, v);
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(_): Extension<Principal>,
) -> Response {
    Json(current(&state)).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Change {
    key: String,
    value: f64,
    reason: String,
}

pub(crate) async fn change(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(c): Json<Change>,
) -> Response {
    if let Err(r) = p.require(Permission::ChangeSettings) {
        return r.into_response();
    }
    let Some(s) = SETTINGS.iter().find(|s| s.key == c.key) else {
        let known: Vec<_> = SETTINGS.iter().map(|s| s.key).collect();
        return error(
            StatusCode::BAD_REQUEST,
            format!("key: no setting `{}` (known: {})", c.key, known.join(", ")),
        );
    };
    if !(s.min..=s.max).contains(&c.value) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{}: {} is outside {}..={}", s.key, c.value, s.min, s.max),
        );
    }
    if c.reason.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "reason: a change needs its reason");
    }
    let old = (s.get)(&state);
    // Recorded before it takes effect: a change the trail does not hold never happened.
    if let Err(r) = state.audit_or_fail(
        p.name(),
        ACTION,
        s.key,
        json!({ "old": old, "new": c.value, "reason": c.reason }),
    ) {
        return r.into_response();
    }
    (s.set)(&state, c.value);
    tracing::info!(key = s.key, old, new = c.value, user = %p.name(), "setting changed");
    Json(current(&state)).into_response()
}
