//! Logins, sessions and the checks every request passes: who is asking (a session cookie
//! or a bearer token), may their role do this, is the site in their scope, and for a
//! browser's state-changing request, does it carry the session's CSRF token.
//!
//! Every route but the login itself sits behind [`require_session`], so a handler cannot
//! be reached without a [`Principal`]; each handler then checks the permission and the
//! sites of what it touches.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use access::{LoginError, Meaning, Permission, Session, User, UserStore};
use axum::{
    extract::{ConnectInfo, FromRequestParts, Query, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    Extension, Json,
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::{
    api::{error, refused, Refused},
    AppState,
};

pub(crate) const COOKIE: &str = "pt_session";
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

/// Logins a client may try at once before being told to slow down, and how fast that
/// allowance comes back: a person never notices, a password-guessing loop is slowed to a
/// crawl (and the account locks long before it gets anywhere).
const LOGIN_BURST: f64 = 20.0;
const LOGIN_PER_SECOND: f64 = 2.0;
/// Password hashes computed at once: Argon2id is meant to be costly, so a flood of logins
/// queues here instead of taking every core from the plants' data.
const HASH_SLOTS: usize = 2;
/// How long a login waits for a hashing slot before the server says it is busy.
const HASH_WAIT: Duration = Duration::from_secs(3);
/// Refused logins of a locked account are audited at most this often (with their count).
const LOCKED_AUDIT_EVERY: chrono::Duration = chrono::Duration::minutes(1);

/// Users, their sessions, and the state the login path keeps.
#[derive(Debug)]
pub struct Access {
    pub users: Arc<UserStore>,
    pub sessions: access::Sessions,
    /// Served over TLS: cookies are marked `Secure` and HSTS is sent.
    pub tls: bool,
    hashing: Semaphore,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
    refused: Mutex<HashMap<String, (chrono::DateTime<Utc>, u64)>>,
}

impl Access {
    pub fn new(users: Arc<UserStore>, policy: access::SessionPolicy, tls: bool) -> Access {
        Access {
            users,
            sessions: access::Sessions::new(policy),
            tls,
            hashing: Semaphore::new(HASH_SLOTS),
            buckets: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one login from the client's allowance; `false` when it is spent.
    fn allow_login(&self, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else { return true };
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() > 10_000 {
            // Many addresses: forget the ones whose allowance is back to full anyway.
            b.retain(|_, (_, t)| {
                now.duration_since(*t).as_secs_f64() * LOGIN_PER_SECOND < LOGIN_BURST
            });
        }
        let (tokens, last) = b.entry(ip).or_insert((LOGIN_BURST, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * LOGIN_PER_SECOND).min(LOGIN_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Checks a password off the async threads, at most [`HASH_SLOTS`] at once.
    async fn verify(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Result<User, LoginError>, Refused> {
        let Ok(Ok(_slot)) = tokio::time::timeout(HASH_WAIT, self.hashing.acquire()).await else {
            return Err(refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many logins at once; try again",
            ));
        };
        let users = self.users.clone();
        let (name, password) = (name.to_string(), password.to_string());
        tokio::task::spawn_blocking(move || users.verify(&name, &password, Utc::now()))
            .await
            .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    /// Whether this refused login of a locked account should be audited now; returns how
    /// many were refused since the last record.
    fn audit_refusal(&self, name: &str) -> Option<u64> {
        let now = Utc::now();
        let mut r = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let (last, count) = r
            .entry(name.to_string())
            .or_insert((now - LOCKED_AUDIT_EVERY, 0));
        *count += 1;
        if now - *last >= LOCKED_AUDIT_EVERY {
            let n = *count;
            *last = now;
            *count = 0;
            Some(n)
        } else {
            None
        }
    }

    fn cookie(&self, token: &str, max_age: i64) -> HeaderValue {
        let secure = if self.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The logged-in user behind a request.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) session: Session,
}

impl Principal {
    pub(crate) fn user(&self) -> &User {
        &self.session.user
    }

    pub(crate) fn name(&self) -> &str {
        &self.session.user.name
    }

    /// Forbidden unless the role grants `p`.
    pub(crate) fn require(&self, p: Permission) -> Result<(), Refused> {
        if self.user().role.grants(p) {
            Ok(())
        } else {
            Err(refused(
                StatusCode::FORBIDDEN,
                format!(
                    "role `{}` may not {}",
                    self.user().role.name(),
                    serde_json::to_value(p)
                        .ok()
                        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                        .unwrap_or_default()
                ),
            ))
        }
    }

    pub(crate) fn site(&self, site: &str) -> Result<(), Refused> {
        if self.user().scope.allows_site(site) {
            Ok(())
        } else {
            Err(out_of_scope(self.name(), site))
        }
    }

    /// A site a request names, if it names one, is in scope.
    pub(crate) fn site_if(&self, site: Option<&str>) -> Result<(), Refused> {
        site.map_or(Ok(()), |s| self.site(s))
    }

    pub(crate) fn line(&self, site: &str, line: &str) -> Result<(), Refused> {
        if self.user().scope.allows_line(site, line) {
            Ok(())
        } else {
            Err(out_of_scope(self.name(), &format!("{site}/{line}")))
        }
    }

    pub(crate) fn sees_line(&self, site: &str, line: &str) -> bool {
        self.user().scope.allows_line(site, line)
    }

    /// A tag path `site/area/line/…` or `site/line/…` is in scope: its site, and its line
    /// when the user is limited to lines of that site.
    pub(crate) fn sees_path(&self, path: &str, line_at: usize) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let Some(site) = parts.first() else {
            return false;
        };
        if self.user().scope.whole_site(site) {
            return true;
        }
        parts
            .get(line_at)
            .is_some_and(|line| self.sees_line(site, line))
    }
}

fn out_of_scope(user: &str, what: &str) -> Refused {
    refused(
        StatusCode::FORBIDDEN,
        format!("`{what}` is outside the scope of user `{user}`"),
    )
}

/// The request's client address, when served with connection info.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<crate::tls::Peer>>()
                .map(|c| c.0 .0.ip()),
        ))
    }
}

fn session_token(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((bearer.trim().to_string(), false));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .map(|t| (t.to_string(), true))
        .next()
}

/// Lets a request through only with a live session; a browser's state-changing request
/// must also carry the session's CSRF token (a bearer token is not sent by the browser on
/// its own, so it needs none).
pub(crate) async fn require_session(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some((token, via_cookie)) = session_token(req.headers()) else {
        return error(StatusCode::UNAUTHORIZED, "not logged in");
    };
    let session = match state.access.sessions.touch(&token, Utc::now()) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.to_string()),
    };
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if via_cookie && changes_state {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if sent != session.csrf {
            return error(
                StatusCode::FORBIDDEN,
                "missing or wrong CSRF token (header x-csrf-token)",
            );
        }
    }
    req.extensions_mut().insert(Principal { session });
    next.run(req).await
}

#[derive(Deserialize)]
pub(crate) struct Login {
    user: String,
    password: String,
    /// Answer with the session token, for API clients that send it as a bearer token.
    #[serde(default)]
    bearer: bool,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a password in a log line.
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// What a client learns about its own session.
#[derive(Debug, Serialize)]
struct Me<'a> {
    user: &'a str,
    full_name: &'a str,
    role: access::Role,
    scope: &'a access::Scope,
    csrf: &'a str,
    expires: chrono::DateTime<Utc>,
    permissions: Vec<Permission>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
}

fn me(session: &Session, with_token: bool) -> serde_json::Value {
    let user = &session.user;
    let doc = Me {
        user: &user.name,
        full_name: &user.full_name,
        role: user.role,
        scope: &user.scope,
        csrf: &session.csrf,
        expires: session.expires,
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| user.role.grants(*p))
            .collect(),
        token: with_token.then_some(session.token.as_str()),
    };
    serde_json::to_value(doc).unwrap_or_default()
}

/// A user name as an audit record may keep it: whatever was typed, bounded.
fn attempted(name: &str) -> String {
    let n: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if n.is_empty() {
        "(empty)".into()
    } else {
        n
    }
}

pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<Login>,
) -> Response {
    let access = &state.access;
    if !access.allow_login(ip) {
        let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many logins; slow down");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let name = attempted(&body.user);
    let client = ip.map(|i| i.to_string());
    let user = match access.verify(&body.user, &body.password).await {
        Err(r) => return r.into_response(),
        Ok(v) => v,
    };
    match user {
        Ok(user) => {
            let session = match access.sessions.start(user, Utc::now()) {
                Ok(s) => s,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            if let Err(r) = state.audit_or_fail(
                &name,
                "login.success",
                "session",
                json!({ "client": client }),
            ) {
                access.sessions.end(&session.token);
                return r.into_response();
            }
            tracing::info!(user = %name, "login");
            let max_age = access.sessions.policy().lifetime.num_seconds();
            let mut r = Json(me(&session, body.bearer)).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, access.cookie(&session.token, max_age));
            r
        }
        Err(e) => {
            let (status, audit) = match &e {
                LoginError::Wrong { locked_now, known } => {
                    if *locked_now {
                        tracing::warn!(user = %name, "account locked after repeated wrong passwords");
                        access.sessions.end_user(&name);
                        state.audit_quietly(&name, "account.locked", "user", json!({ "client": client }));
                    }
                    (
                        StatusCode::UNAUTHORIZED,
                        Some(json!({ "client": client, "known_user": known, "reason": "wrong password" })),
                    )
                }
                LoginError::Locked { until } => (
                    StatusCode::LOCKED,
                    access.audit_refusal(&name).map(|n| {
                        json!({ "client": client, "reason": "account locked", "until": until, "refused_since_last_record": n })
                    }),
                ),
                LoginError::Disabled => (
                    StatusCode::FORBIDDEN,
                    Some(json!({ "client": client, "reason": "account disabled" })),
                ),
            };
            if let Some(details) = audit {
                state.audit_quietly(&name, "login.failure", "session", details);
            }
            error(status, e.to_string())
        }
    }
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    state.access.sessions.end(&p.session.token);
    state.audit_quietly(p.name(), "logout", "session", json!({}));
    let mut r = Json(json!({ "logged_out": p.name() })).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, state.access.cookie("", 0));
    r
}

pub(crate) async fn whoami(Extension(p): Extension<Principal>) -> Response {
    Json(me(&p.session, false)).into_response()
}

/// A one-time login link for this user (a wall display, a browser under test).
pub(crate) async fn ticket(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    match state.access.sessions.ticket(p.user().clone(), Utc::now()) {
        Ok(t) => Json(json!({ "ticket": t, "url": format!("/login?ticket={t}") })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginPage {
    ticket: Option<String>,
    next: Option<String>,
}

const LOGIN_HTML: &str = include_str!("../assets/login.html");

/// Only a path on this server: never an open redirect to somewhere else.
fn local_path(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/")
}

/// The login form, or a ticket exchanged for a session and a redirect to the page asked for.
pub(crate) async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<LoginPage>,
) -> Response {
    let Some(ticket) = q.ticket else {
        return Html(LOGIN_HTML).into_response();
    };
    let now = Utc::now();
    let fresh = state
        .access
        .sessions
        .redeem(&ticket, now)
        // The rights of now, not of when the ticket was made.
        .and_then(|u| state.access.users.get(&u.name))
        .filter(|u| !u.disabled && u.locked_until.is_none_or(|t| t <= now));
    let Some(user) = fresh else {
        return error(StatusCode::UNAUTHORIZED, "ticket unknown, used or expired");
    };
    let session = match state.access.sessions.start(user, now) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    state.audit_quietly(
        &session.user.name,
        "login.success",
        "session",
        json!({ "via": "ticket" }),
    );
    let max_age = state.access.sessions.policy().lifetime.num_seconds();
    let mut r = Redirect::to(local_path(q.next.as_deref())).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        state.access.cookie(&session.token, max_age),
    );
    r
}

/// The page is only for a logged-in user; anyone else is sent to the login form.
pub(crate) async fn index(State(state): State<AppState>, req: Request) -> Response {
    let live = session_token(req.headers())
        .and_then(|(t, _)| state.access.sessions.touch(&t, Utc::now()).ok());
    if live.is_none() {
        let here = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let next: String = url_encode(&here);
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    Html(crate::INDEX_HTML).into_response()
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The re-entered password and meaning of an electronic signature.
#[derive(Deserialize)]
pub(crate) struct Signature {
    password: String,
    meaning: Meaning,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signature")
            .field("meaning", &self.meaning)
            .finish_non_exhaustive()
    }
}

/// A signature as records keep it: who (printed name), when, what it means.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Signed {
    pub(crate) user: String,
    pub(crate) printed_name: String,
    pub(crate) meaning: Meaning,
    pub(crate) at: chrono::DateTime<Utc>,
}

impl Signed {
    /// One line for a record shown to people: "Li Na (li.na), reviewed, 2026-…".
    pub(crate) fn line(&self) -> String {
        format!(
            "{} ({}), {}, {}",
            self.printed_name,
            self.user,
            self.meaning.name(),
            self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

/// Checks an electronic signature: the signer's own password again, right now. A refusal
/// is audited (with what was being signed) and counts towards the account's lock.
pub(crate) async fn sign(
    state: &AppState,
    p: &Principal,
    sig: Option<&Signature>,
    action: &str,
    target: &str,
) -> Result<Signed, Refused> {
    let Some(sig) = sig else {
        state.audit_quietly(
            p.name(),
            "signature.refused",
            target,
            json!({ "action": action, "reason": "no signature" }),
        );
        return Err(refused(
            StatusCode::FORBIDDEN,
            "this action needs an electronic signature: {\"signature\": {\"password\", \"meaning\"}}",
        ));
    };
    match state.access.verify(p.name(), &sig.password).await? {
        Ok(user) => Ok(Signed {
            user: user.name,
            printed_name: user.full_name,
            meaning: sig.meaning,
            at: Utc::now(),
        }),
        Err(e) => {
            let reason = match &e {
                LoginError::Wrong { .. } => "wrong password".to_string(),
                other => other.to_string(),
            };
            if matches!(
                e,
                LoginError::Wrong {
                    locked_now: true,
                    ..
                }
            ) {
                state.audit_quietly(
                    p.name(),
                    "account.locked",
                    "user",
                    json!({ "during": action }),
                );
                state.access.sessions.end_user(p.name());
            }
            state.audit_quietly(
                p.name(),
                "signature.refused",
                target,
                json!({ "action": action, "reason": reason }),
            );
            Err(refused(
                StatusCode::FORBIDDEN,
                format!("signature refused: {reason}"),
            ))
        }
    }
}

/// Headers every answer carries: no framing, no sniffing, no referrer, scripts only from
/// this server; HSTS when served over TLS.
pub(crate) async fn security_headers(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Static libraries set their own caching; everything else is per user and not kept.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.access.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}
