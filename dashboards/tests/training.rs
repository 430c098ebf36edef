//! Training mode through the web API: a trainer starts a scenario, its faults reach the
//! (stand-in) plant on their plant-hour schedule, a trainee's acknowledgement lands in the
//! training record with its response time, and a production twin refuses all of it.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::StatusCode;
use common::{fixture, get, raise_alert, training_fixture, PASSWORD};
use pharmatwin_dashboards::PlannedFault;
use serde_json::json;

#[tokio::test]
async fn a_scenario_started_from_the_web_injects_its_faults_and_records_the_response() {
    let injected: Arc<Mutex<Vec<PlannedFault>>> = Arc::default();
    let into_plant = injected.clone();
    let f = training_fixture(Arc::new(move |fault: &PlannedFault| {
        into_plant.lock().unwrap().push(fault.clone());
        Ok(())
    }));
    let admin = f.login("admin").await;
    let op = f.login("op.anhui").await;

    // Everyone sees it is training, on every response.
    let page = f.send(get("/", Some(&op))).await;
    assert_eq!(page.headers["x-pharmatwin-mode"], "training");
    let t = f.get("/api/training", &op).await;
    assert_eq!(t.headers["x-pharmatwin-mode"], "training");
    assert_eq!(t.json["mode"], "training");
    assert_eq!(t.json["scenarios"][0]["id"], "drill");
    assert!(t.json["session"].is_null());

    // Trainees do not run scenarios; an unknown scenario is named.
    let a = f
        .post("/api/training/start", &op, json!({ "scenario": "drill" }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = f
        .post("/api/training/start", &admin, json!({ "scenario": "fire" }))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.text.contains("fire"), "{}", a.text);

    let a = f
        .post(
            "/api/training/start",
            &admin,
            json!({ "scenario": "drill" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.json["id"].as_str().unwrap().to_string();
    assert_eq!(a.json["trainer"], "admin");
    let again = f
        .post(
            "/api/training/start",
            &admin,
            json!({ "scenario": "drill" }),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "one session at a time");

    // The first fault is due at once, the second one plant hour (a real second) later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let parts = |v: &Mutex<Vec<PlannedFault>>| -> Vec<String> {
        v.lock().unwrap().iter().map(|f| f.part.clone()).collect()
    };
    assert_eq!(parts(&injected), vec!["bearing"]);

    // An alert during the session, acknowledged by the trainee under signature.
    let alert = raise_alert(&f.twin, "anhui");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(parts(&injected), vec!["bearing", "tooling"]);
    let a = f
        .post(
            &format!("/api/maintenance/alerts/{alert}/acknowledge"),
            &op,
            json!({ "comment": "drill: checking the bearing", "signature": { "password": PASSWORD, "meaning": "reviewed" } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    let live = f.get("/api/training", &op).await.json;
    assert_eq!(live["session"]["id"], id.as_str());
    assert!(
        live["session"]["faults"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["injected_at"].is_string() && f["error"].is_null()),
        "{live}"
    );

    let a = f.post("/api/training/stop", &op, json!({})).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = f.post("/api/training/stop", &admin, json!({})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let record = &a.json;
    let alerts = record["alerts"].as_array().unwrap();
    let ours = alerts
        .iter()
        .find(|a| a["key"] == format!("maintenance/{alert}"))
        .expect("the alert raised during the session is in the record");
    assert_eq!(ours["acknowledged_by"], "op.anhui");
    let response = ours["response_s"].as_f64().unwrap();
    assert!(
        (1.0..10.0).contains(&response),
        "raised, then acknowledged 1.5 s later: {response} s"
    );
    assert_eq!(record["summary"]["acknowledged"], 1);
    assert_eq!(record["ended_by"], "admin");

    // Kept: listed after the session, to trainers and to quality, not to trainees.
    let kept = f.get("/api/training/records", &admin).await.json;
    assert_eq!(kept[0]["id"], id.as_str());
    assert_eq!(kept[0]["alerts"], record["alerts"]);
    assert_eq!(
        f.get("/api/training/records", &f.login("quality").await)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        f.get("/api/training/records", &op).await.status,
        StatusCode::FORBIDDEN
    );
    assert!(f.get("/api/training", &op).await.json["session"].is_null());

    let trail = f.audit_actions();
    let started = trail
        .iter()
        .find(|(_, a, _)| a == "training.start")
        .unwrap();
    assert_eq!(started.0, "admin");
    let stopped = trail.iter().find(|(_, a, _)| a == "training.stop").unwrap();
    assert_eq!(stopped.2["summary"]["acknowledged"], 1);
}

#[tokio::test]
async fn a_production_twin_has_no_training_and_is_not_marked() {
    let f = fixture();
    let admin = f.login("admin").await;
    let t = f.get("/api/training", &admin).await;
    assert_eq!(t.json["mode"], "production");
    assert!(t.headers.get("x-pharmatwin-mode").is_none());
    let a = f
        .post(
            "/api/training/start",
            &admin,
            json!({ "scenario": "drill" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.text);
    assert!(a.text.contains("training mode"), "{}", a.text);
}
