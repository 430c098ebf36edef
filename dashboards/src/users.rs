//! User administration: list, create, change (role, scope, disable, unlock, password).
//! Admin only; every change is audited with the old and new value and ends the user's
//! sessions, so new rights apply from the next request.

use access::{AccessError, NewUser, Permission, UserUpdate};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use crate::{api::error, auth::Principal, AppState};

pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    if let Err(r) = p.require(Permission::ManageUsers) {
        return r.into_response();
    }
    Json(state.access.users.list()).into_response()
}

#[derive(Deserialize)]
pub(crate) struct Create {
    name: String,
    full_name: String,
    role: access::Role,
    scope: access::Scope,
    password: String,
    /// Why the account is made (kept in the audit trail).
    #[serde(default)]
    reason: String,
}

impl std::fmt::Debug for Create {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Create")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn access_error(e: AccessError) -> Response {
    let status = match e {
        AccessError::Exists(_) => StatusCode::CONFLICT,
        AccessError::NoSuchUser(_) => StatusCode::NOT_FOUND,
        AccessError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<Create>,
) -> Response {
    if let Err(r) = p.require(Permission::ManageUsers) {
        return r.into_response();
    }
    let users = state.access.users.clone();
    let new = NewUser {
        name: body.name,
        full_name: body.full_name,
        role: body.role,
        scope: body.scope,
        password: body.password,
    };
    let made = tokio::task::spawn_blocking(move || users.create(new, Utc::now())).await;
    let user = match made {
        Ok(Ok(u)) => u,
        Ok(Err(e)) => return access_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(r) = state.audit_or_fail(
        p.name(),
        "user.create",
        format!("user/{}", user.name),
        json!({ "new": user, "reason": body.reason }),
    ) {
        return r.into_response();
    }
    (StatusCode::CREATED, Json(user)).into_response()
}

#[derive(Deserialize)]
pub(crate) struct Update {
    #[serde(flatten)]
    change: UserUpdate,
    #[serde(default)]
    reason: String,
}

impl std::fmt::Debug for Update {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Update").finish_non_exhaustive()
    }
}

pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    Json(body): Json<Update>,
) -> Response {
    if let Err(r) = p.require(Permission::ManageUsers) {
        return r.into_response();
    }
    if body.reason.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "reason: a change needs its reason");
    }
    let password_changed = body.change.password.is_some();
    let users = state.access.users.clone();
    let who = name.clone();
    let change = body.change;
    let done = tokio::task::spawn_blocking(move || users.update(&who, change)).await;
    let (before, after) = match done {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return access_error(e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let ended = state.access.sessions.end_user(&name);
    if let Err(r) = state.audit_or_fail(
        p.name(),
        "user.change",
        format!("user/{name}"),
        json!({
            "old": before, "new": after, "password_changed": password_changed,
            "reason": body.reason, "sessions_ended": ended,
        }),
    ) {
        return r.into_response();
    }
    Json(after).into_response()
}
