//! The central control web view: a JSON API, server-sent events and the pages, over the twin.
//!
//! **Architecture invariant:** dashboards read the twin and the historian; they never talk
//! OPC UA and never write plant data.

mod api;
mod events;
mod maintenance;

use std::{net::SocketAddr, sync::Arc};

use axum::{
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { axum::response::Html(INDEX_HTML) }))
        .route("/api/health", get(api::health))
        .route("/api/sites", get(api::sites))
        .route("/api/signals", get(api::signals))
        .route("/api/history", get(api::history))
        .route("/api/diagnostics", get(api::diagnostics))
        .route("/api/batches", get(api::batches))
        .route("/api/batches/{id}", get(api::batch))
        .route("/api/alerts", get(api::alerts))
        .route("/api/spc", get(api::spc))
        .route("/api/capability", get(api::capability))
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
        .with_state(state)
}

/// Binds `addr` and serves until the task is dropped. Returns the bound address through
/// `on_bound` first, so callers asking for port 0 learn the real port.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    on_bound: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    on_bound(bound);
    axum::serve(listener, router(state))
        .await
        .map_err(ServeError::Serve)
}
