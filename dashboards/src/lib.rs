//! The central control web view: a JSON API, server-sent events and the pages, over the twin.
//!
//! **Architecture invariant:** dashboards read the twin and the historian; they never talk
//! OPC UA and never write plant data.

mod alerts;
mod api;
mod auth;
mod costs;
mod events;
mod export;
mod maintenance;
mod metrics;
mod past;
mod settings;
mod tls;
mod training;
mod users;
mod work_orders;

pub use auth::Access;
pub use tls::{server_config, TlsError, TlsListener};
pub use tokio_rustls::rustls::ServerConfig as TlsServerConfig;
pub use training::{
    AlertRecord, FaultRecord, Injector, PlannedFault, ScenarioInfo, Summary, Training,
    TrainingError, TrainingRecord,
};

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::DefaultBodyLimit,
    middleware,
    routing::{get, post},
    Router,
};
use model::Historian;
use twin_core::Twin;

/// Diagnostics of the parts that feed the twin (connectors, writer), as JSON, so this crate
/// needs no knowledge of them.
pub type Diagnostics = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub twin: Arc<Twin>,
    pub historian: Arc<dyn Historian>,
    pub diagnostics: Diagnostics,
    /// Where alert events go besides the web view (a web hook), if anywhere.
    pub notifications: Option<tokio::sync::mpsc::Sender<serde_json::Value>>,
    /// The audit trail every acknowledgement, work order and maintenance action goes to.
    pub audit: Option<Arc<audit::AuditTrail>>,
    /// Users, sessions and the login path.
    pub access: Arc<Access>,
    /// Set only for a twin of simulated plants started for training: scenarios can then be
    /// run from the web view, and every response is marked as training.
    pub training: Option<Arc<Training>>,
}

impl AppState {
    /// Records what a user did in the audit trail (durably, before answering them).
    pub(crate) fn audit(
        &self,
        user: &str,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<(), audit::AuditError> {
        let Some(trail) = &self.audit else {
            return Ok(());
        };
        trail
            .append(audit::Entry {
                user: user.into(),
                action: action.into(),
                target,
                details,
            })
            .map(|_| ())
    }

    /// Audits, or answers the user with why their action could not be recorded: an action
    /// the trail does not hold must not be confirmed.
    pub(crate) fn audit_or_fail(
        &self,
        user: &str,
        action: &str,
        target: impl Into<String>,
        details: serde_json::Value,
    ) -> Result<(), api::Refused> {
        self.audit(user, action, target.into(), details)
            .map_err(|e| {
                tracing::error!(error = %e, action, "audit trail not written");
                api::refused(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("audit trail: {e}"),
                )
            })
    }

    /// Audits what the server observed (a failed login, a logout): nobody waits on it, a
    /// failure to write is logged.
    pub(crate) fn audit_quietly(
        &self,
        user: &str,
        action: &str,
        target: impl Into<String>,
        details: serde_json::Value,
    ) {
        if let Err(e) = self.audit(user, action, target.into(), details) {
            tracing::error!(error = %e, action, "audit trail not written");
        }
    }

    /// Passes an alert event on to the notification channel; a full or closed channel is
    /// logged, never waited on (the alert itself is kept in the twin).
    pub(crate) fn notify(&self, n: &twin_core::Notification) {
        let Some(tx) = &self.notifications else {
            return;
        };
        match serde_json::to_value(n) {
            Ok(doc) => {
                if let Err(e) = tx.try_send(doc) {
                    tracing::warn!(error = %e, "notification not queued");
                }
            }
            Err(e) => tracing::warn!(error = %e, "notification not serialisable"),
        }
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("historian", &self.historian)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("web server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

const INDEX_HTML: &str = include_str!("../assets/index.html");

/// ECharts as pinned in `web/package-lock.json` (build.rs copies it): served by the binary
/// so the page draws its charts with no internet access.
const ECHARTS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/echarts.min.js"));

async fn echarts_js() -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, "application/javascript"),
            // A library that changes only with the binary: a day in the browser's cache
            // spares every page load the megabyte.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        ECHARTS_JS,
    )
}

/// The page's other scripts, kept apart from `index.html` so each stays readable:
/// `views.js` (group, line and equipment views, work orders, CSV) and `modes.js` (time
/// travel, training). They change only with the binary.
const VIEWS_JS: &str = include_str!("../assets/views.js");
const MODES_JS: &str = include_str!("../assets/modes.js");

fn page_script(body: &'static str) -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CONTENT_TYPE, "application/javascript"),
            // Revalidated on every load: it changes with the page, which is not cached.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// No request body the API takes comes near this; bigger ones are refused before parsing.
const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    settings::restore(&state);
    let open = Router::new()
        .route("/", get(auth::index))
        .route("/login", get(auth::login_page))
        .route("/api/health", get(api::health))
        .route("/assets/echarts.min.js", get(echarts_js))
        .route("/assets/views.js", get(|| async { page_script(VIEWS_JS) }))
        .route("/assets/modes.js", get(|| async { page_script(MODES_JS) }))
        .route("/api/login", post(auth::login));
    let guarded = Router::new()
        .route("/api/me", get(auth::whoami))
        .route("/api/logout", post(auth::logout))
        .route("/api/tickets", post(auth::ticket))
        .route("/api/settings", get(settings::list).post(settings::change))
        .route("/api/users", get(users::list).post(users::create))
        .route("/api/users/{name}", post(users::update))
        .route("/api/batches/{id}/accept", post(api::accept_prediction))
        .route("/api/sites", get(api::sites))
        .route("/api/signals", get(api::signals))
        .route("/api/history", get(api::history))
        .route("/api/diagnostics", get(api::diagnostics))
        .route("/metrics", get(metrics::metrics))
        .route("/api/batches", get(api::batches))
        .route("/api/batches/{id}", get(api::batch))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/all", get(alerts::list))
        .route(
            "/api/alerts/board/{id}/acknowledge",
            post(alerts::acknowledge),
        )
        .route("/api/alerts/board/{id}/shelve", post(alerts::shelve))
        .route("/api/spc", get(api::spc))
        .route("/api/capability", get(api::capability))
        .route("/api/oee", get(api::oee))
        .route("/api/events", get(events::stream))
        .route("/api/maintenance", get(maintenance::risks))
        .route("/api/maintenance/wear", get(maintenance::wear))
        .route("/api/maintenance/alerts", get(maintenance::alerts))
        .route(
            "/api/maintenance/alerts/{id}/acknowledge",
            post(maintenance::acknowledge),
        )
        .route(
            "/api/maintenance/alerts/{id}/close",
            post(maintenance::close),
        )
        .route("/api/lifecycle", get(maintenance::lifecycle))
        .route("/api/lifecycle/actions", post(maintenance::record))
        .route("/api/audit", get(maintenance::audit_trail))
        .route("/api/training", get(training::overview))
        .route("/api/training/start", post(training::start))
        .route("/api/training/stop", post(training::stop))
        .route("/api/training/records", get(training::records))
        .route("/api/costs", get(costs::costs))
        .route(
            "/api/work-orders",
            get(work_orders::list).post(work_orders::create),
        )
        .route("/api/work-orders/{id}/close", post(work_orders::close))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_session,
        ))
        .layer(axum::Extension(Arc::new(events::Frames::default())));
    open.merge(guarded)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            training::mark,
        ))
        .with_state(state)
}

/// Binds `addr` and serves until the task is dropped, over TLS when `tls` is given. Returns
/// the bound address through `on_bound` first, so callers asking for port 0 learn the real
/// port.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_bound(bound);
    let app = router(state).into_make_service_with_connect_info::<tls::Peer>();
    match tls {
        Some(config) => {
            let listener = TlsListener::new(listener, config)
                .map_err(|source| ServeError::Bind { addr, source })?;
            axum::serve(listener, app).await
        }
        None => axum::serve(listener, app).await,
    }
    .map_err(ServeError::Serve)
}
