//! Interoperability with OPC UA code nobody here wrote: the Python `asyncua` package as a
//! server our connector reads, and as a client reading our simulator.

mod common;

use std::{process::Stdio, time::Duration};

use common::*;

fn peer_site(port: u16) -> String {
    common::connector::peer_site_head(port)
        + r#"
[[areas]]
id = "osd"

[[lines]]
id = "line-1"
area = "osd"

[[lines.equipment]]
id = "oven"

[[lines.equipment.signals]]
id = "temperature"
category = "machine"
unit = "degC"
node = "nsu=urn:test:python-peer;s=Line1.Oven.Temperature"

[[lines.equipment.signals]]
id = "count"
category = "machine"
unit = ""
data_type = "int"
node = "nsu=urn:test:python-peer;s=Line1.Oven.Count"

[[lines.equipment.signals]]
id = "state"
category = "machine"
unit = ""
data_type = "string"
node = "nsu=urn:test:python-peer;s=Line1.Oven.State"

[[lines.equipment.signals]]
id = "door_open"
category = "environment"
unit = ""
data_type = "bool"
node = "nsu=urn:test:python-peer;s=Line1.Oven.DoorOpen"

[[lines.equipment.signals]]
id = "humidity"
category = "environment"
unit = "%RH"
node = "nsu=urn:test:python-peer;i=5001"

[[lines.equipment.signals]]
id = "ghost"
category = "machine"
unit = ""
node = "nsu=urn:test:python-peer;s=Line1.Oven.DoesNotExist"
"#
}

#[test]
fn connector_reads_a_python_asyncua_server_and_reports_the_missing_node_for_its_tag_only() {
    let port = free_port();
    let mut server = spawn(
        "python asyncua server",
        std::process::Command::new(python())
            .arg(repo().join("tests/peers/asyncua_server.py"))
            .arg(port.to_string())
            .stdout(Stdio::piped()),
    );
    wait_for_line(&mut server, "READY", Duration::from_secs(30));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peer.toml");
    std::fs::write(&file, peer_site(port)).unwrap();
    let web = free_port();
    let base = format!("http://127.0.0.1:{web}");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    create_admin(&dir.path().join("data").join("users.json"));
    let _twin = spawn(
        "pharmatwin run",
        &mut pharmatwin(&[
            "run",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{web}"),
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
        ]),
    );
    wait_healthy(&base, Duration::from_secs(20));
    let api = Api::login(&base, "admin", ADMIN_PASSWORD).unwrap();

    let signals = wait_for(
        Duration::from_secs(30),
        "values of every existing node",
        || {
            let list = api.get_json("/api/signals?site=peer").ok()?;
            let list = list.as_array()?.clone();
            let ready = list
                .iter()
                .filter(|s| s["signal"] != "ghost")
                .all(|s| !s["value"].is_null());
            let ghost_reported = list
                .iter()
                .any(|s| s["signal"] == "ghost" && !s["error"].is_null());
            (ready && ghost_reported).then_some(list)
        },
    );
    let by = |id: &str| signals.iter().find(|s| s["signal"] == id).unwrap().clone();
    let t = by("temperature");
    let x = t["value"].as_f64().expect("temperature is a number");
    assert!(
        (14.9..=25.1).contains(&x),
        "temperature {x} is outside what the peer serves"
    );
    assert_eq!(t["unit"], "degC");
    assert_eq!(t["quality_severity"], "good");
    assert!(t["source_ts"].is_string());
    assert!(
        by("count")["value"].as_i64().unwrap() > 0,
        "Int64 arrives as an integer"
    );
    assert!(["EXECUTE", "HELD"].contains(&by("state")["value"].as_str().unwrap()));
    assert!(by("door_open")["value"].is_boolean());
    assert!(
        by("humidity")["value"].as_f64().is_some(),
        "numeric node id i=5001 is read"
    );
    let ghost = by("ghost");
    assert!(
        ghost["value"].is_null(),
        "no value is invented for a node that does not exist"
    );
    assert!(
        ghost["error"]
            .as_str()
            .unwrap()
            .contains("BadNodeIdUnknown"),
        "the missing node is reported for its tag: {ghost}"
    );

    // The connector keeps following the server: the counter goes on rising.
    let first = by("count")["value"].as_i64().unwrap();
    wait_for(Duration::from_secs(10), "the counter to advance", || {
        let list = api.get_json("/api/signals?site=peer&equipment=oven").ok()?;
        let c = list.as_array()?.iter().find(|s| s["signal"] == "count")?["value"].as_i64()?;
        (c > first).then_some(())
    });
}

#[test]
fn python_asyncua_client_reads_our_simulator() {
    let port = free_port();
    let endpoint = format!("opc.tcp://127.0.0.1:{port}/");
    let mut sim = spawn(
        "pharmatwin simulate",
        pharmatwin(&[
            "simulate",
            "--site",
            "anhui",
            "--endpoint",
            &endpoint,
            "--speed",
            "60",
            "--seed",
            "7",
        ])
        .stdout(Stdio::piped()),
    );
    wait_for_line(&mut sim, "listening", Duration::from_secs(30));

    let out = std::process::Command::new(python())
        .arg(repo().join("tests/peers/asyncua_client.py"))
        .args([
            &endpoint,
            "urn:pharmatwin:site:anhui",
            "line-1.room-compression.temperature",
            "line-1.line-control.batch_phase",
            "line-1.press-01.good_count",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["namespace_index"].as_u64().unwrap() >= 1);
    let t = &v["values"]["line-1.room-compression.temperature"];
    assert_eq!(t["good"], true, "{t}");
    let temp = t["value"].as_f64().unwrap();
    assert!((10.0..35.0).contains(&temp), "room temperature {temp}");
    assert!(t["source_ts"].is_string());
    assert!(v["values"]["line-1.line-control.batch_phase"]["value"].is_string());
    assert!(v["values"]["line-1.press-01.good_count"]["value"]
        .as_i64()
        .is_some());
}
