//! `pharmatwin evaluate maintenance`: predictive-maintenance alerts on the simulated plants,
//! scored against the simulator's ground truth of fault onsets and failures.

mod common;

use common::{run_failing, run_ok};

#[test]
fn failures_are_alerted_a_day_ahead_and_alerts_precede_real_faults() {
    let stdout = run_ok(&[
        "evaluate",
        "maintenance",
        "--days",
        "45",
        "--train-days",
        "20",
        "--seed",
        "7",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    let failures = v["failures"].as_u64().unwrap();
    assert!(failures >= 4, "wear failures to score: {v}");
    assert!(
        v["alerted_24h_pct"].as_f64().unwrap() >= 90.0,
        "failures alerted ≥ 24 h ahead: {} of {failures}; missed {}",
        v["alerted_24h"],
        v["missed"]
    );
    assert!(v["alerts"].as_u64().unwrap() >= failures, "{v}");
    assert!(
        v["precision_pct"].as_f64().unwrap() >= 90.0,
        "alerts preceding a real fault: {} of {}; false {}",
        v["true_alerts"],
        v["alerts"],
        v["false_alerts"]
    );
    let lead = v["median_lead_h"].as_f64().unwrap();
    assert!(lead >= 24.0, "median lead {lead} h");
    // One prediction cycle over every unit of three plants, steady state.
    assert!(v["cycle_ms"].as_f64().is_some());
    assert!(!v["models"].as_array().unwrap().is_empty());
}

#[test]
fn too_short_a_run_is_refused_naming_the_flag() {
    let err = run_failing(&["evaluate", "maintenance", "--days", "1"]);
    assert!(err.contains("--days"), "{err}");
}
