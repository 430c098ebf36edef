//! `pharmatwin evaluate quality` on real batch records (`../shared/data/pharma-tablets`),
//! split in time: the earlier three quarters train, the later quarter tests.

mod common;

use std::path::{Path, PathBuf};

use common::{run_failing, run_ok};

fn data() -> PathBuf {
    common::repo().join("../shared/data/pharma-tablets")
}

/// Writes the rows of both CSVs whose batch number satisfies `keep` into `dir`.
fn split(dir: &Path, keep: impl Fn(u64) -> bool) {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["Laboratory.csv", "Process.csv", "Normalization.csv"] {
        let text =
            std::fs::read_to_string(data().join(file)).expect("shared data beside the checkout");
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let body: Vec<&str> = if file == "Normalization.csv" {
            lines.collect()
        } else {
            lines
                .filter(|l| {
                    l.split(';')
                        .next()
                        .and_then(|b| b.trim().parse().ok())
                        .is_some_and(&keep)
                })
                .collect()
        };
        std::fs::write(dir.join(file), format!("{header}\n{}\n", body.join("\n"))).unwrap();
    }
}

#[test]
fn later_batches_are_predicted_within_the_published_error_and_json_names_the_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (tmp.path().join("train"), tmp.path().join("test"));
    // 804 batches numbered in time order: the first 603 train.
    split(&train, |b| b <= 603);
    split(&test, |b| b > 603);
    for (target, limit) in [("tbl_tensile", 0.12), ("impurities_total", 0.040)] {
        let out = run_ok(&[
            "evaluate",
            "quality",
            "--train-dir",
            train.to_str().unwrap(),
            "--test-dir",
            test.to_str().unwrap(),
            "--target",
            target,
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON object");
        let rmse = v["rmse"].as_f64().unwrap();
        assert!(rmse <= limit, "{target}: RMSE {rmse}");
        assert!(rmse < v["baseline_rmse"].as_f64().unwrap());
        assert!(rmse < v["pls_rmse"].as_f64().unwrap(), "beats PLS: {v}");
        assert!(v["r2"].as_f64().unwrap() > 0.5, "{v}");
        let features: Vec<&str> = v["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        assert!(
            !features.iter().any(|f| f.contains("hardness")
                || f.contains("tensile")
                || f.contains("dissolution")),
            "{features:?}"
        );
    }
}

#[test]
fn an_unknown_target_lists_the_valid_ones() {
    let d = data();
    let stderr = run_failing(&[
        "evaluate",
        "quality",
        "--train-dir",
        d.to_str().unwrap(),
        "--test-dir",
        d.to_str().unwrap(),
        "--target",
        "colour",
    ]);
    assert!(
        stderr.contains("colour") && stderr.contains("tbl_tensile"),
        "{stderr}"
    );
}
