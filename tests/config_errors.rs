//! Bad plant configuration stops `pharmatwin run` at once with one clear error that names the
//! file and the key — before anything connects or listens.

mod common;

use std::path::Path;

use common::{free_port, pharmatwin, repo, run_failing, run_ok};

const GOOD: &str = r#"
[site]
id = "peer"
name = "Interop peer"
namespace_uri = "urn:test:python-peer"
endpoint = "opc.tcp://127.0.0.1:1/"

[[areas]]
id = "osd"

[[lines]]
id = "line-1"
area = "osd"

[[lines.equipment]]
id = "oven"

[[lines.equipment.signals]]
id = "temperature"
category = "environment"
unit = "degC"
node = "nsu=urn:test:python-peer;s=Line1.Oven.Temperature"

[[lines.equipment.signals]]
id = "count"
category = "machine"
unit = ""
data_type = "int"
node = "nsu=urn:test:python-peer;s=Line1.Oven.Count"
"#;

/// `pharmatwin run` with `file`, expected to stop at once; returns its stderr.
fn run_failing_with(file: &Path) -> String {
    let data = tempfile::tempdir().unwrap();
    run_failing(&[
        "run",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--data-dir",
        data.path().to_str().unwrap(),
    ])
}

fn fails_naming(text: &str, expect: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plant.toml");
    std::fs::write(&file, text).unwrap();
    let stderr = run_failing_with(&file);
    assert!(
        stderr.contains(&file.display().to_string()),
        "error does not name the file:\n{stderr}"
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "error does not mention `{e}`:\n{stderr}"
        );
    }
    let error_lines = stderr
        .lines()
        .filter(|l| l.contains("Error") || l.contains("error"))
        .count();
    assert!(error_lines <= 2, "expected one clear error, got:\n{stderr}");
    stderr
}

#[test]
fn good_file_is_accepted_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plant.toml");
    std::fs::write(&file, GOOD).unwrap();
    let stdout = run_ok(&["check", "--config", file.to_str().unwrap()]);
    assert!(
        stdout.contains("peer") && stdout.contains("2 signals"),
        "{stdout}"
    );
}

#[test]
fn missing_key_is_named_with_its_file() {
    fails_naming(
        &GOOD.replacen("unit = \"degC\"\n", "", 1),
        &["lines[0].equipment[0].signals[0].unit", "missing"],
    );
}

#[test]
fn unknown_category_is_named_with_its_file() {
    fails_naming(
        &GOOD.replacen("category = \"environment\"", "category = \"weather\"", 1),
        &["lines[0].equipment[0].signals[0].category", "weather"],
    );
}

#[test]
fn duplicate_node_id_names_both_signals() {
    fails_naming(
        &GOOD.replacen("s=Line1.Oven.Count", "s=Line1.Oven.Temperature", 1),
        &[
            "lines[0].equipment[0].signals[1].node",
            "line-1/oven/temperature",
            "line-1/oven/count",
        ],
    );
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-plant.toml");
    let stderr = run_failing_with(&missing);
    assert!(
        stderr.contains(&missing.display().to_string()) && stderr.contains("cannot read"),
        "{stderr}"
    );
}

#[test]
fn environment_variable_overrides_a_key_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plant.toml");
    std::fs::write(&file, GOOD).unwrap();
    let out = pharmatwin(&["check", "--config", file.to_str().unwrap()])
        .env(
            "PHARMATWIN_PLANT__SITE__ENDPOINT",
            "opc.tcp://127.0.0.1:4999/ovr/",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("opc.tcp://127.0.0.1:4999/ovr/"),
        "{stdout}"
    );
}

#[test]
fn a_bad_scenario_file_is_refused_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("drill.toml");
    let good =
        std::fs::read_to_string(repo().join("sites/scenarios/press-bearing-hot.toml")).unwrap();
    std::fs::write(&file, good.replace("\"filter\"", "\"impeller\"")).unwrap();
    let stderr = run_failing(&[
        "simulate",
        "--site",
        "anhui",
        "--endpoint",
        "opc.tcp://127.0.0.1:1/",
        "--scenario",
        file.to_str().unwrap(),
    ]);
    assert!(
        stderr.contains(&file.display().to_string())
            && stderr.contains("fault[1].part")
            && stderr.contains("impeller"),
        "{stderr}"
    );
}
