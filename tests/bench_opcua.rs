//! `pharmatwin bench-opcua` with tiny numbers: it starts its load server, measures the
//! connector and then the Python `asyncua` peer, and prints both figures with no counter
//! increment lost by the connector. No speed is asserted: this machine's load is not ours.

mod common;

use common::*;

#[test]
fn bench_opcua_prints_both_figures_and_loses_no_increment() {
    let out = pharmatwin(&["bench-opcua", "--items", "200", "--seconds", "3"])
        .env("PHARMATWIN_PYTHON", python())
        .output()
        .expect("pharmatwin runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench-opcua failed:\n{stdout}\n{stderr}"
    );
    // The figures a person reads…
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{stdout}"))
            .to_string()
    };
    assert!(line("connector ").contains("values/s"), "{stdout}");
    assert!(line("asyncua ").contains("values/s"), "{stdout}");
    assert!(
        line("connector ").contains("lost increments: 0,"),
        "{stdout}"
    );
    // …and the same as JSON.
    let json: serde_json::Value =
        serde_json::from_str(line("json: ").trim_start_matches("json: ")).unwrap();
    let ours = &json["connector"];
    let peer = &json["asyncua"];
    assert!(ours["values_per_s"].as_f64().unwrap() > 0.0, "{json}");
    assert!(ours["received"].as_u64().unwrap() > 0, "{json}");
    assert_eq!(ours["lost"], 0, "{json}");
    assert_eq!(ours["repeated"], 0, "{json}");
    assert_eq!(ours["foreign"], 0, "{json}");
    assert!(peer["values_per_s"].as_f64().unwrap() > 0.0, "{json}");
    assert!(peer["error"].is_null(), "{json}");
}
