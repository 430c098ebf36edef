//! `pharmatwin evaluate mspc` on the Tennessee Eastman process runs in `../shared/data/tep`:
//! the normal run is split in time, its first part to fit, the rest to count false alarms.

mod common;

use std::path::PathBuf;

use common::{run_failing, run_ok};

fn tep(name: &str) -> PathBuf {
    common::repo().join("../shared/data/tep").join(name)
}

#[test]
fn detects_faults_better_than_pca_with_few_false_alarms() {
    let normal =
        std::fs::read_to_string(tep("d00.dat")).expect("shared TEP data beside the checkout");
    let rows: Vec<&str> = normal.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(rows.len(), 500);
    let dir = tempfile::tempdir().unwrap();
    let (fit, held_out) = (dir.path().join("fit.dat"), dir.path().join("normal.dat"));
    std::fs::write(&fit, rows[..250].join("\n")).unwrap();
    std::fs::write(&held_out, rows[250..].join("\n")).unwrap();
    let faults: Vec<String> = (1..=21)
        .map(|i| tep(&format!("d{i:02}.dat")).to_string_lossy().into_owned())
        .collect();
    let mut args = vec![
        "evaluate",
        "mspc",
        "--train",
        fit.to_str().unwrap(),
        "--normal",
        held_out.to_str().unwrap(),
        "--json",
        "--fault",
    ];
    args.extend(faults.iter().map(String::as_str));
    let v: serde_json::Value = serde_json::from_str(&run_ok(&args)).expect("one JSON object");

    let far = v["false_alarm_rate"].as_f64().unwrap();
    let detection = v["mean_detection_rate_excluding_3_9_15"].as_f64().unwrap();
    assert!(far <= 0.05, "false alarms {far}");
    // Published PCA anchors: T² ≈ 0.60, SPE ≈ 0.79 (faults 3, 9, 15 excluded).
    assert!(detection > 0.79, "mean detection {detection}");
    assert!(detection > v["pca_t2_mean_detection_rate"].as_f64().unwrap());
    assert_eq!(v["faults"].as_array().unwrap().len(), 21);
    let f1 = &v["faults"][0];
    assert_eq!(f1["name"], "d01.dat");
    assert!(f1["detection_rate"].as_f64().unwrap() > 0.95, "{f1}");
    assert!(v["mean_detection_rate"].as_f64().unwrap() < detection);
}

#[test]
fn a_ragged_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.dat");
    std::fs::write(&bad, "1 2 3\n4 5\n").unwrap();
    let d00 = tep("d00.dat");
    let stderr = run_failing(&[
        "evaluate",
        "mspc",
        "--train",
        d00.to_str().unwrap(),
        "--normal",
        bad.to_str().unwrap(),
        "--fault",
        d00.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains("bad.dat") && stderr.contains('2'),
        "{stderr}"
    );
}
