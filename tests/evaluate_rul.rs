//! `pharmatwin evaluate rul` on real run-to-failure data (NASA C-MAPSS FD001, read from
//! `../shared/data`), with whole engines held out the way NASA's test set is made.

mod common;

use std::{fmt::Write as _, path::PathBuf};

use analytics::rul::{holdout, parse_cmapss, Unit};
use common::{run_failing, run_ok};

fn fd001() -> PathBuf {
    common::repo().join("../shared/data/cmapss/train_FD001.txt")
}

fn write_cmapss(units: &[Unit]) -> String {
    let mut out = String::new();
    for u in units {
        for c in &u.cycles {
            write!(out, "{} {}", u.id, c.cycle).unwrap();
            for x in c.settings.iter().chain(c.sensors.iter()) {
                write!(out, " {x}").unwrap();
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn predicts_held_out_engines_within_published_error_range_and_prints_json() {
    let text = std::fs::read_to_string(fd001()).expect("shared C-MAPSS data beside the checkout");
    let units = parse_cmapss(&text, "train_FD001.txt").unwrap();
    let (train, test, truth) = holdout(&units, 20, 11).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (tr, te, tt) = (
        dir.path().join("train.txt"),
        dir.path().join("test.txt"),
        dir.path().join("RUL.txt"),
    );
    std::fs::write(&tr, write_cmapss(&train)).unwrap();
    std::fs::write(&te, write_cmapss(&test)).unwrap();
    std::fs::write(
        &tt,
        truth.iter().map(|t| format!("{t}\n")).collect::<String>(),
    )
    .unwrap();

    let stdout = run_ok(&[
        "evaluate",
        "rul",
        "--train",
        tr.to_str().unwrap(),
        "--test",
        te.to_str().unwrap(),
        "--truth",
        tt.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object on stdout");
    let rmse = v["rmse"].as_f64().unwrap();
    let score = v["score"].as_f64().unwrap();
    assert_eq!(v["units"], 20);
    // Random forest on raw sensors is ≈ 18 on FD001; ours must do clearly better than that.
    assert!(rmse < 18.0, "RMSE {rmse}");
    assert!(score.is_finite() && score > 0.0, "score {score}");
}

#[test]
fn a_bad_row_is_named_by_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("test.txt");
    std::fs::write(&bad, "1 1 0 0 100 518.67\n").unwrap();
    let truth = dir.path().join("RUL.txt");
    std::fs::write(&truth, "10\n").unwrap();
    let stderr = run_failing(&[
        "evaluate",
        "rul",
        "--train",
        fd001().to_str().unwrap(),
        "--test",
        bad.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert!(stderr.contains(&format!("{}:1", bad.display())), "{stderr}");
}
