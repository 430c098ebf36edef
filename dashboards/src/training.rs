//! Training mode: a trainer starts a scenario (timed fault injections into the simulated
//! plants) from the web view; trainees work the same views as in production; the session's
//! alerts, acknowledgements and response times are kept as a training record.
//!
//! A twin runs in training mode or not at all: the binary gives [`AppState::training`] only
//! to a twin of simulated plants on a data directory of its own, and every response then
//! carries `x-pharmatwin-mode: training` (the page shows a banner on every view), so training
//! is never mistaken for, or mixed with, plant data. This module does not know how faults
//! reach a plant: the binary hands it an [`Injector`].

use std::{
    io::Write,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use access::Permission;
use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Extension, Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::{
    alerts::gather,
    api::{error, refused, Refused},
    auth::Principal,
    AppState,
};

/// One fault of a scenario, as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedFault {
    pub site: String,
    pub line: String,
    pub equipment: String,
    /// The part that wears faster; empty for a sensor fault.
    pub part: String,
    /// Plant hours after the session starts.
    pub after_plant_hours: f64,
    /// How many times faster the part wears from then on.
    pub factor: f64,
    /// The signal whose sensor goes off line; empty for a wear fault.
    #[serde(default)]
    pub signal: String,
    /// Plant hours the sensor stays off line.
    #[serde(default)]
    pub offline_hours: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioInfo {
    pub id: String,
    pub name: String,
    pub description: String,
    pub faults: Vec<PlannedFault>,
}

/// Puts a fault into the simulated plant now; `Err` says why it could not.
pub type Injector = Arc<dyn Fn(&PlannedFault) -> Result<(), String> + Send + Sync>;

/// The training side of a twin of simulated plants.
pub struct Training {
    scenarios: Vec<ScenarioInfo>,
    inject: Injector,
    /// Plant seconds per real second: turns a fault's plant hours into a real delay.
    speed: f64,
    /// Finished sessions' records, one JSON document per line, appended.
    records: PathBuf,
    session: Arc<Mutex<Option<Session>>>,
}

impl std::fmt::Debug for Training {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Training")
            .field("scenarios", &self.scenarios.len())
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

struct Session {
    record: TrainingRecord,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a session leaves behind: the evidence of who responded to what, how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingRecord {
    pub id: String,
    pub scenario: String,
    pub scenario_name: String,
    pub trainer: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub faults: Vec<FaultRecord>,
    /// Alerts raised while the session ran, with who acknowledged them and when.
    pub alerts: Vec<AlertRecord>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub fault: PlannedFault,
    pub due_at: DateTime<Utc>,
    pub injected_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub key: String,
    pub kind: String,
    pub site: String,
    pub line: String,
    pub equipment: Option<String>,
    pub message: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Seconds from raised to acknowledged.
    pub response_s: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub alerts: usize,
    pub acknowledged: usize,
    pub mean_response_s: Option<f64>,
    pub max_response_s: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("no scenario `{0}`")]
    UnknownScenario(String),
    #[error("a training session is running already ({0}); stop it first")]
    Running(String),
    #[error("no training session is running")]
    NotRunning,
    #[error("training records {path}: {source}")]
    Records {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// How often a running session looks at the alert list.
const WATCH_EVERY: Duration = Duration::from_secs(1);

impl Training {
    pub fn new(
        scenarios: Vec<ScenarioInfo>,
        inject: Injector,
        speed: f64,
        records: PathBuf,
    ) -> Training {
        Training {
            scenarios,
            inject,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            records,
            session: Arc::default(),
        }
    }

    fn current(&self) -> Option<TrainingRecord> {
        lock(&self.session).as_ref().map(|s| s.record.clone())
    }

    /// Starts `scenario`: its faults are injected as their plant hours come, and the alert
    /// list is watched until [`Training::stop`].
    fn start(
        &self,
        state: &AppState,
        scenario: &str,
        trainer: &str,
    ) -> Result<TrainingRecord, TrainingError> {
        let sc = self
            .scenarios
            .iter()
            .find(|s| s.id == scenario)
            .ok_or_else(|| TrainingError::UnknownScenario(scenario.into()))?;
        let mut slot = lock(&self.session);
        if let Some(s) = slot.as_ref() {
            return Err(TrainingError::Running(s.record.id.clone()));
        }
        let now = Utc::now();
        let delay = |f: &PlannedFault| {
            Duration::from_secs_f64((f.after_plant_hours * 3600.0 / self.speed).max(0.0))
        };
        let record = TrainingRecord {
            id: format!("training-{}", now.format("%Y%m%dT%H%M%S%.3fZ")),
            scenario: sc.id.clone(),
            scenario_name: sc.name.clone(),
            trainer: trainer.into(),
            started_at: now,
            ended_at: None,
            ended_by: None,
            faults: sc
                .faults
                .iter()
                .map(|f| FaultRecord {
                    fault: f.clone(),
                    due_at: now
                        + chrono::Duration::from_std(delay(f)).unwrap_or(chrono::Duration::zero()),
                    injected_at: None,
                    error: None,
                })
                .collect(),
            alerts: Vec::new(),
            summary: Summary::default(),
        };
        let mut tasks = Vec::new();
        for (i, f) in sc.faults.iter().enumerate() {
            let (f, wait) = (f.clone(), delay(f));
            let (inject, session) = (self.inject.clone(), self.session.clone());
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                let result = inject(&f);
                match &result {
                    Ok(()) => tracing::info!(site = %f.site, line = %f.line, equipment = %f.equipment, part = %f.part, signal = %f.signal, "training fault injected"),
                    Err(e) => tracing::warn!(site = %f.site, equipment = %f.equipment, error = %e, "training fault not injected"),
                }
                if let Some(s) = lock(&session).as_mut() {
                    let fr = &mut s.record.faults[i];
                    fr.injected_at = Some(Utc::now());
                    fr.error = result.err();
                }
            }));
        }
        let (session, state) = (self.session.clone(), state.clone());
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(WATCH_EVERY);
            loop {
                every.tick().await;
                let now = Utc::now();
                let alerts = gather(&state, now);
                match lock(&session).as_mut() {
                    Some(s) => observe(&mut s.record, &alerts),
                    None => break,
                }
            }
        }));
        *slot = Some(Session {
            record: record.clone(),
            tasks,
        });
        Ok(record)
    }

    /// Ends the running session and keeps its record.
    fn stop(&self, state: &AppState, by: &str) -> Result<TrainingRecord, TrainingError> {
        // A last look, so an acknowledgement just before stopping counts.
        let alerts = gather(state, Utc::now());
        let mut slot = lock(&self.session);
        let session = slot.as_mut().ok_or(TrainingError::NotRunning)?;
        observe(&mut session.record, &alerts);
        let mut record = session.record.clone();
        record.ended_at = Some(Utc::now());
        record.ended_by = Some(by.into());
        // Kept first: a session whose record cannot be written goes on, nothing is lost.
        self.keep(&record)?;
        *slot = None;
        Ok(record)
    }

    fn keep(&self, record: &TrainingRecord) -> Result<(), TrainingError> {
        let fail = |source| TrainingError::Records {
            path: self.records.display().to_string(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| fail(e.into()))?;
        line.push(b'\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.records)
            .map_err(fail)?;
        f.write_all(&line).map_err(fail)?;
        // A record confirmed to the trainer survives a crash.
        f.sync_all().map_err(fail)
    }

    /// Finished sessions, newest first. A line that does not parse is skipped and logged:
    /// one damaged record must not hide the others.
    fn records(&self) -> Result<Vec<TrainingRecord>, TrainingError> {
        let text = match std::fs::read_to_string(&self.records) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(TrainingError::Records {
                    path: self.records.display().to_string(),
                    source,
                })
            }
        };
        let mut out: Vec<TrainingRecord> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .filter_map(|(i, l)| match serde_json::from_str(l) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(path = %self.records.display(), line = i + 1, error = %e, "training record unreadable");
                    None
                }
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}

/// Merges the alerts raised since the session started into its record.
fn observe(record: &mut TrainingRecord, alerts: &[crate::alerts::Listed]) {
    for a in alerts.iter().filter(|a| a.raised_at >= record.started_at) {
        let (by, at) = match &a.acknowledged {
            Some(ack) => (
                ack["user"].as_str().map(str::to_string),
                ack["at"]
                    .as_str()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
            ),
            None => (None, None),
        };
        match record.alerts.iter_mut().find(|r| r.key == a.key) {
            Some(r) => {
                if r.acknowledged_at.is_none() && at.is_some() {
                    r.acknowledged_by = by;
                    r.acknowledged_at = at;
                }
            }
            None => record.alerts.push(AlertRecord {
                key: a.key.clone(),
                kind: a.kind.to_string(),
                site: a.site.clone(),
                line: a.line.clone(),
                equipment: a.equipment.clone(),
                message: a.message.clone(),
                raised_at: a.raised_at,
                acknowledged_by: by,
                acknowledged_at: at,
                response_s: None,
            }),
        }
    }
    for r in &mut record.alerts {
        r.response_s = r
            .acknowledged_at
            .map(|at| (at - r.raised_at).num_milliseconds() as f64 / 1000.0);
    }
    let times: Vec<f64> = record.alerts.iter().filter_map(|r| r.response_s).collect();
    record.summary = Summary {
        alerts: record.alerts.len(),
        acknowledged: times.len(),
        mean_response_s: (!times.is_empty())
            .then(|| times.iter().sum::<f64>() / times.len() as f64),
        max_response_s: times.iter().copied().reduce(f64::max),
    };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Marks every response of a training twin, API and page alike.
pub(crate) async fn mark(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    if state.training.is_some() {
        resp.headers_mut()
            .insert("x-pharmatwin-mode", HeaderValue::from_static("training"));
    }
    resp
}

fn training_of(state: &AppState) -> Result<&Arc<Training>, Refused> {
    state.training.as_ref().ok_or_else(|| {
        refused(
            StatusCode::CONFLICT,
            "this twin is not in training mode: training runs on simulated plants (`pharmatwin demo --training`)",
        )
    })
}

/// The training of this twin, for a user who may run it.
fn trainer(state: &AppState, p: &Principal) -> Result<Arc<Training>, Refused> {
    p.require(Permission::RunTraining)?;
    training_of(state).cloned()
}

/// `GET /api/training`: the mode, the scenarios and the running session, to everyone (a
/// trainee must see they are training).
pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(_p): Extension<Principal>,
) -> Response {
    match &state.training {
        None => Json(json!({ "mode": "production" })).into_response(),
        Some(t) => Json(json!({
            "mode": "training",
            "scenarios": t.scenarios,
            "session": t.current(),
        }))
        .into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Start {
    scenario: String,
}

pub(crate) async fn start(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<Start>,
) -> Response {
    let t = match trainer(&state, &p) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    match t.start(&state, &body.scenario, p.name()) {
        Ok(record) => {
            if let Err(r) = state.audit_or_fail(
                p.name(),
                "training.start",
                record.id.clone(),
                json!({ "scenario": record.scenario, "faults": record.faults }),
            ) {
                // Not in the trail, so not started.
                let _ = t.stop(&state, p.name());
                return r.into_response();
            }
            (StatusCode::CREATED, Json(record)).into_response()
        }
        Err(e @ TrainingError::UnknownScenario(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

pub(crate) async fn stop(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let t = match trainer(&state, &p) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    match t.stop(&state, p.name()) {
        Ok(record) => {
            state.audit_quietly(
                p.name(),
                "training.stop",
                record.id.clone(),
                json!({ "summary": record.summary }),
            );
            Json(record).into_response()
        }
        Err(e @ TrainingError::NotRunning) => error(StatusCode::CONFLICT, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /api/training/records`: finished sessions, to those who run training and those who
/// review it (quality keeps training evidence).
pub(crate) async fn records(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    if p.require(Permission::RunTraining).is_err() {
        if let Err(r) = p.require(Permission::ViewAudit) {
            return r.into_response();
        }
    }
    let t = match training_of(&state) {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    match t.records() {
        Ok(list) => Json(list).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
