//! The web view's router in-process, over a twin of the three built-in plants with no data
//! in its store, with users of every role: requests go through the whole stack of checks
//! without a socket.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use access::{LockoutPolicy, NewUser, Role, Scope, SessionPolicy, UserStore};
use axum::{
    body::Body,
    http::{Request, StatusCode},
    Router,
};
use chrono::{DateTime, Utc};
use model::{Cursor, Historian, HistorianError, Sample};
use pharmatwin_dashboards::{Access, AppState, Injector, PlannedFault, ScenarioInfo, Training};
use tower::ServiceExt;
use twin_core::{PartRisk, Twin};

pub const PASSWORD: &str = "a-long-enough-password";

/// A store with nothing in it: these tests are about who may ask, not about the data.
#[derive(Debug)]
struct Empty;

#[async_trait::async_trait]
impl Historian for Empty {
    async fn write(&self, _: &[Sample]) -> Result<(), HistorianError> {
        Ok(())
    }
    async fn query(
        &self,
        _: &str,
        _: DateTime<Utc>,
        _: DateTime<Utc>,
    ) -> Result<Vec<Sample>, HistorianError> {
        Ok(Vec::new())
    }
    async fn read_since(
        &self,
        c: Cursor,
        _: usize,
    ) -> Result<(Vec<Sample>, Cursor), HistorianError> {
        Ok((Vec::new(), c))
    }
}

pub struct Fixture {
    pub router: Router,
    pub twin: Arc<Twin>,
    pub audit: Arc<audit::AuditTrail>,
    pub dir: Arc<tempfile::TempDir>,
}

fn scope(sites: &[&str]) -> Scope {
    Scope {
        sites: sites.iter().map(|s| s.to_string()).collect(),
        lines: vec![],
    }
}

/// A maintenance alert on one unit of `site` (line-1's press), as the watch raises it.
pub fn raise_alert(twin: &Twin, site: &str) -> u64 {
    let now = Utc::now();
    let risk = PartRisk {
        site: site.into(),
        area: "osd".into(),
        line: "line-1".into(),
        equipment: "press-01".into(),
        kind: "tablet_press".into(),
        part: "bearing".into(),
        at: now,
        since: now - chrono::Duration::hours(100),
        health: 0.1,
        wear: 0.95,
        rate_per_h: 0.01,
        rul_h: Some(10.0),
        rul_low_h: Some(5.0),
        rul_high_h: Some(20.0),
        p_fail: 0.9,
        horizon_h: 168.0,
        drivers: Vec::new(),
        windows: 48,
        awaiting_data: false,
        model_version: "test".into(),
        fingerprint: "test".into(),
    };
    let raised = twin.with_maintenance_watch(|w| w.check(&[risk], now));
    assert_eq!(raised.len(), 1, "one alert raised");
    raised[0].alert.id
}

pub fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let sites: Vec<_> = sites::builtin_sites()
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
    let twin = Twin::new(sites);
    let users = UserStore::open(&dir.path().join("users.json"), LockoutPolicy::default()).unwrap();
    let people: [(&str, Role, &[&str]); 6] = [
        ("admin", Role::Admin, &["*"]),
        ("op.anhui", Role::Operator, &["anhui"]),
        ("maint.anhui", Role::Maintenance, &["anhui"]),
        ("quality", Role::Quality, &["*"]),
        ("hq", Role::Hq, &["*"]),
        ("op.shenzhen", Role::Operator, &["shenzhen"]),
    ];
    for (name, role, sites) in people {
        users
            .create(
                NewUser {
                    name: name.into(),
                    full_name: format!("Printed {name}"),
                    role,
                    scope: scope(sites),
                    password: PASSWORD.into(),
                },
                Utc::now(),
            )
            .unwrap();
    }
    let audit = Arc::new(audit::AuditTrail::open(&dir.path().join("audit.jsonl")).unwrap());
    let dir = Arc::new(dir);
    Fixture {
        router: router(&dir, twin.clone(), audit.clone()),
        twin,
        audit,
        dir,
    }
}

fn router(dir: &tempfile::TempDir, twin: Arc<Twin>, audit: Arc<audit::AuditTrail>) -> Router {
    router_with(dir, twin, audit, None)
}

/// The fixture as a training twin: one scenario, `drill`, of two faults (now and one plant
/// hour later, a second of real time), put into the plants by `inject`.
pub fn training_fixture(inject: Injector) -> Fixture {
    let mut f = fixture();
    let fault = |part: &str, after_plant_hours| PlannedFault {
        site: "anhui".into(),
        line: "line-1".into(),
        equipment: "press-01".into(),
        part: part.into(),
        after_plant_hours,
        factor: 40.0,
        signal: String::new(),
        offline_hours: 0.0,
    };
    let scenario = ScenarioInfo {
        id: "drill".into(),
        name: "press drill".into(),
        description: "bearing now, tooling an hour later".into(),
        faults: vec![fault("bearing", 0.0), fault("tooling", 1.0)],
    };
    let training = Training::new(
        vec![scenario],
        inject,
        3600.0,
        f.dir.path().join("training-records.jsonl"),
    );
    f.router = router_with(
        &f.dir,
        f.twin.clone(),
        f.audit.clone(),
        Some(Arc::new(training)),
    );
    f
}

fn router_with(
    dir: &tempfile::TempDir,
    twin: Arc<Twin>,
    audit: Arc<audit::AuditTrail>,
    training: Option<Arc<Training>>,
) -> Router {
    let users = UserStore::open(&dir.path().join("users.json"), LockoutPolicy::default()).unwrap();
    let state = AppState {
        twin,
        historian: Arc::new(Empty),
        diagnostics: Arc::new(|| serde_json::json!({ "sources": [] })),
        notifications: None,
        audit: Some(audit),
        access: Arc::new(Access::new(
            Arc::new(users),
            SessionPolicy::default(),
            false,
        )),
        training,
    };
    pharmatwin_dashboards::router(state)
}

/// The web view started again over the same users, audit trail and twin.
pub fn restart(f: &Fixture) -> Fixture {
    Fixture {
        router: router(&f.dir, f.twin.clone(), f.audit.clone()),
        twin: f.twin.clone(),
        audit: f.audit.clone(),
        dir: f.dir.clone(),
    }
}

/// An answer: status, headers and the body as JSON (or as a string when it is not).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub json: serde_json::Value,
    pub text: String,
}

impl Fixture {
    pub async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Answer {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
            text,
        }
    }

    /// Logs in; the bearer token.
    pub async fn login(&self, user: &str) -> String {
        let a = self
            .send(post_json(
                "/api/login",
                None,
                serde_json::json!({ "user": user, "password": PASSWORD, "bearer": true }),
            ))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{user}: {}", a.text);
        a.json["token"].as_str().unwrap().to_string()
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(get(path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: serde_json::Value) -> Answer {
        self.send(post_json(path, Some(token), body)).await
    }

    pub fn audit_actions(&self) -> Vec<(String, String, serde_json::Value)> {
        self.audit
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.entry.user, r.entry.action, r.entry.details))
            .collect()
    }
}

pub fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

pub fn post_json(path: &str, token: Option<&str>, body: serde_json::Value) -> Request<Body> {
    let mut b = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_string())).unwrap()
}

/// Pushes one room-environment reading of `site` above its specification into the twin;
/// the board alert's id, and a later reading back within the spec.
pub fn excursion(twin: &Twin, site: &str) -> (u64, model::Sample) {
    let s = twin.sites().iter().find(|s| s.id == site).unwrap().clone();
    let (_, _, sig) = s
        .signals()
        .find(|(_, _, sig)| sig.spec.is_some() && sig.category == model::Category::Environment)
        .expect("an environment signal with a specification");
    let spec = sig.spec.unwrap();
    // Each call later than the last: the twin keeps the newest reading of a signal.
    static CALLS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) * 1000;
    let at = |v: f64, secs: i64| model::Sample {
        tag: sig.tag.clone(),
        value: model::Value::Float(v),
        quality: model::Quality(0),
        source_ts: Utc::now() + chrono::Duration::seconds(n + secs),
        server_ts: None,
        received_ts: Utc::now(),
        backfilled: false,
    };
    // Outside for longer than the board's on-delay (10 minutes at real time).
    twin.apply(&[at(spec.high + 5.0, 0)]);
    twin.apply(&[at(spec.high + 5.0, 660)]);
    let id = twin.with_alert_board(|b| {
        b.open()
            .into_iter()
            .find(|a| a.path == sig.tag.path())
            .expect("raised")
            .id
    });
    (id, at((spec.low + spec.high) / 2.0, 661))
}
