//! Training mode on the running demo: a scenario started from the web reaches the real
//! simulated plant, everything served is marked as training, and a training data directory
//! is never reused by a production twin.

mod common;

use std::time::Duration;

use common::{dom, pharmatwin, screenshots, start_demo_with, wait_for, wait_for_plants};

#[test]
fn a_scenario_started_from_the_web_reaches_the_simulated_plant_and_is_kept() {
    let demo = start_demo_with(&["--training"]);
    let admin = demo.admin();
    let op = demo.api("op.sichuan");
    wait_for_plants(&admin);

    // Marked on the page and on the API, for the trainee too.
    let page = op.get("/").call().unwrap();
    assert_eq!(page.header("x-pharmatwin-mode"), Some("training"));
    let t = op.get_json("/api/training").unwrap();
    assert_eq!(t["mode"], "training");
    let ids: Vec<&str> = t["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"press-tooling-worn"), "{ids:?}");

    // Sichuan's press tooling wears fast from the start: injected into the live simulator.
    let (status, started) = admin.post_json(
        "/api/training/start",
        serde_json::json!({ "scenario": "press-tooling-worn" }),
    );
    assert_eq!(status, 201, "{started}");
    let session = wait_for(Duration::from_secs(20), "the fault injected", || {
        let s = op.get_json("/api/training").ok()?["session"].clone();
        s["faults"][0]["injected_at"].is_string().then_some(s)
    });
    assert!(
        session["faults"][0]["error"].is_null(),
        "the simulator took the fault: {session}"
    );
    assert_eq!(session["faults"][0]["fault"]["equipment"], "press-01");

    let (status, record) = admin.post_json("/api/training/stop", serde_json::json!({}));
    assert_eq!(status, 200, "{record}");
    let kept = admin.get_json("/api/training/records").unwrap();
    assert_eq!(kept[0]["id"], record["id"]);
    assert_eq!(kept[0]["scenario"], "press-tooling-worn");

    // The training directory is claimed: a production twin on it is refused by name.
    let out = pharmatwin(&[
        "demo",
        "--data-dir",
        demo.data.path().to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MODE") && err.contains("holds training data"),
        "{err}"
    );
}

/// What a trainee and a trainer see in the browser: the training banner on every view, the
/// running scenario with its faults, and the kept record.
#[test]
fn the_page_marks_training_and_shows_the_running_scenario() {
    let demo = start_demo_with(&["--training"]);
    let admin = demo.admin();
    let op = demo.api("op.anhui");
    wait_for_plants(&admin);

    let page = dom(&op, "/#/overview");
    let banner = page
        .split("id=\"training-banner\"")
        .nth(1)
        .expect("a training banner");
    assert!(
        !banner[..40].contains("hidden") && banner.contains("TRAINING"),
        "the banner shows: {}",
        &banner[..200.min(banner.len())]
    );
    assert!(
        page.contains("no scenario running"),
        "and says nothing runs yet"
    );

    let (status, _) = admin.post_json(
        "/api/training/start",
        serde_json::json!({ "scenario": "press-bearing-hot" }),
    );
    assert_eq!(status, 201);
    let view = dom(&admin, "/#/training");
    assert!(
        view.contains("Running: press bearing running hot"),
        "{}",
        &view[view.len().saturating_sub(3000)..]
    );
    assert!(
        view.contains("id=\"t-faults\"") && view.contains("press-01"),
        "the faults listed"
    );
    assert!(view.contains("id=\"t-stop\""), "the trainer can stop it");
    let trainee = dom(&op, "/#/training");
    assert!(trainee.contains("Running: press bearing running hot"));
    assert!(
        !trainee.contains("id=\"t-stop\""),
        "a trainee cannot stop it"
    );
    screenshots(&admin, "/#/training", "training");

    let (status, _) = admin.post_json("/api/training/stop", serde_json::json!({}));
    assert_eq!(status, 200);
    let view = dom(&admin, "/#/training");
    let records = view
        .split("id=\"t-records\"")
        .nth(1)
        .expect("records table");
    assert!(
        records.contains("press bearing running hot"),
        "the kept record is listed"
    );
}
