//! `pharmatwin demo` end to end: three simulated plants → OPC UA → embedded store → twin →
//! web API, as one process started the way a newcomer starts it.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::*;

const SITES: [&str; 3] = ["shenzhen", "anhui", "sichuan"];
const CATEGORIES: [&str; 5] = ["people", "machine", "material", "method", "environment"];

#[test]
fn all_three_sites_have_fresh_values_in_all_five_categories_within_30_s() {
    let demo = start_demo();
    let api = demo.admin();
    let sites = wait_for(
        Duration::from_secs(30),
        "fresh values in every category of every site",
        || {
            let v = api.get_json(&format!("{}/api/sites", demo.base)).ok()?;
            let all_fresh = SITES.iter().all(|id| {
                v.as_array()
                    .and_then(|a| a.iter().find(|s| s["id"] == *id))
                    .is_some_and(|s| {
                        CATEGORIES
                            .iter()
                            .all(|c| s["fresh"][c].as_u64().unwrap_or(0) > 0)
                    })
            });
            all_fresh.then_some(v)
        },
    );
    for s in sites.as_array().unwrap() {
        assert!(
            s["signals"].as_u64().unwrap() >= 300,
            "{} has at least 300 signals",
            s["id"]
        );
        assert!(!s["lines"].as_array().unwrap().is_empty());
    }

    // Every signal listed by the API carries unit, quality and source time once it has a value.
    let list = api
        .get_json(&format!("{}/api/signals?site=anhui&line=line-1", demo.base))
        .unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 150);
    let with_value: Vec<_> = list.iter().filter(|s| !s["value"].is_null()).collect();
    assert!(
        with_value.len() * 10 >= list.len() * 9,
        "most signals have a value: {}/{}",
        with_value.len(),
        list.len()
    );
    for s in with_value {
        assert!(
            s["quality"].is_u64() && s["source_ts"].is_string() && s["unit"].is_string(),
            "{s}"
        );
        assert_eq!(s["site"], "anhui");
        assert_eq!(s["line"], "line-1");
    }
    let err = api
        .get(&format!("{}/api/signals?site=atlantis", demo.base))
        .call()
        .unwrap_err();
    assert!(
        matches!(err, ureq::Error::Status(404, _)),
        "unknown site is a 404"
    );
}

#[test]
fn a_value_set_on_a_simulator_node_arrives_in_the_store_with_tags_unit_and_source_time() {
    let demo = start_demo();
    let api = demo.admin();
    let endpoint = format!("opc.tcp://127.0.0.1:{}/", demo.opcua_base);
    let path = "shenzhen/osd/line-1/dryer-01/inlet_air_temp_sp";
    wait_for(
        Duration::from_secs(30),
        "the set-point to have a value",
        || {
            let v = api
                .get_json(&format!(
                    "{}/api/signals?site=shenzhen&line=line-1&equipment=dryer-01",
                    demo.base
                ))
                .ok()?;
            v.as_array()?
                .iter()
                .find(|s| s["signal"] == "inlet_air_temp_sp" && !s["value"].is_null())
                .map(|_| ())
        },
    );

    let before: DateTime<Utc> = Utc::now();
    run_ok(&[
        "write",
        "--endpoint",
        &endpoint,
        "--node",
        "nsu=urn:pharmatwin:site:shenzhen;s=line-1.dryer-01.inlet_air_temp_sp",
        "--value",
        "63.25",
    ]);
    let after: DateTime<Utc> = Utc::now();

    let hist = wait_for(
        Duration::from_secs(15),
        "the written value in the store",
        || {
            let url = format!(
                "{}/api/history?path={}&from={}",
                demo.base,
                path,
                (before - chrono::Duration::seconds(5))
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .replace('+', "%2B")
            );
            let v = api.get_json(&url).ok()?;
            v["points"]
                .as_array()?
                .iter()
                .any(|p| p["v"].as_f64() == Some(63.25))
                .then_some(v)
        },
    );
    let tag = &hist["tag"];
    assert_eq!(tag["site"], "shenzhen");
    assert_eq!(tag["area"], "osd");
    assert_eq!(tag["line"], "line-1");
    assert_eq!(tag["equipment"], "dryer-01");
    assert_eq!(tag["signal"], "inlet_air_temp_sp");
    assert_eq!(tag["category"], "method");
    assert_eq!(tag["unit"], "degC");
    let point = hist["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["v"].as_f64() == Some(63.25))
        .unwrap();
    let ts: DateTime<Utc> = point["t"].as_str().unwrap().parse().unwrap();
    assert!(
        ts >= before - chrono::Duration::seconds(1) && ts <= after + chrono::Duration::seconds(2),
        "source time {ts} is the time the value was set ({before} .. {after})"
    );
    assert_eq!(point["q"], 0, "good quality");
}

#[test]
fn running_batches_show_their_record_and_predicted_cqas_with_the_model_behind_them() {
    let demo = start_demo();
    let api = demo.admin();
    let predicted = |b: &&serde_json::Value| {
        b["end"].is_null() && b["predictions"].as_array().is_some_and(|p| !p.is_empty())
    };
    let batches = wait_for(
        Duration::from_secs(90),
        "a running batch with predictions",
        || {
            let v = api
                .get_json(&format!("{}/api/batches?site=shenzhen", demo.base))
                .ok()?;
            let list = v.as_array()?.clone();
            list.iter().any(|b| predicted(&b)).then_some(list)
        },
    );
    let running = batches.iter().find(predicted).unwrap();
    assert_eq!(running["site"], "shenzhen");
    assert!(
        running["id"].as_str().unwrap().starts_with("SH"),
        "{running}"
    );
    assert!(running["product"].is_string(), "{running}");
    let predictions = running["predictions"].as_array().unwrap();
    for cqa in ["assay", "dissolution", "content_uniformity", "impurities"] {
        let p = predictions
            .iter()
            .find(|p| p["cqa"] == cqa)
            .unwrap_or_else(|| panic!("{cqa} predicted: {running}"));
        let (lo, v, hi) = (
            p["lower"].as_f64().unwrap(),
            p["value"].as_f64().unwrap(),
            p["upper"].as_f64().unwrap(),
        );
        assert!(lo <= v && v <= hi, "{p}");
        assert_eq!(p["model_version"], "sim-bootstrap");
        assert!(!p["fingerprint"].as_str().unwrap().is_empty(), "{p}");
    }
    // One batch by id, and a chart cut to its window.
    let id = running["id"].as_str().unwrap();
    let one = api
        .get_json(&format!("{}/api/batches/{id}", demo.base))
        .unwrap();
    assert_eq!(one["id"], id);
    let path = "shenzhen/osd/line-1/line-control/batch_phase";
    if running["line"] == "line-1" {
        let hist = api
            .get_json(&format!("{}/api/history?path={path}&batch={id}", demo.base))
            .unwrap();
        assert_eq!(hist["batch"], id);
        assert_eq!(
            hist["from"]
                .as_str()
                .map(|s| s.parse::<DateTime<Utc>>().unwrap()),
            running["start"]
                .as_str()
                .map(|s| s.parse::<DateTime<Utc>>().unwrap())
        );
    }
    let missing = api.get(&format!("{}/api/batches/NOPE-1", demo.base)).call();
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
}

#[test]
fn oee_of_every_plant_is_computed_from_its_presses_and_scoped_to_the_user() {
    let demo = start_demo_with(&["--quality-days", "0", "--maintenance-days", "0"]);
    let hq = demo.api("hq");
    let oee = wait_for(
        Duration::from_secs(60),
        "OEE figures for every site",
        || {
            let v = hq.get_json("/api/oee?hours=8").ok()?;
            let sites = v["sites"].as_array()?.clone();
            // Presses that have run and made tablets (a press may start held).
            let made = |s: &serde_json::Value| {
                s["figures"]["good"].as_f64() > Some(0.0)
                    && s["figures"]["run_h"].as_f64() > Some(0.0)
            };
            (sites.len() == 3 && sites.iter().all(made)).then_some(sites)
        },
    );
    for s in &oee {
        let f = &s["figures"];
        let (o, a, p, q) = (
            f["oee"].as_f64().unwrap(),
            f["availability"].as_f64().unwrap(),
            f["performance"].as_f64().unwrap(),
            f["quality"].as_f64().unwrap(),
        );
        for x in [a, p, q] {
            assert!((0.0..=1.0).contains(&x), "{s}");
        }
        assert!(o > 0.0 && (o - a * p * q).abs() < 1e-9, "{s}");
        assert!(
            f["good"].as_f64().unwrap() > 0.0,
            "tablets made at {}",
            s["site"]
        );
        // A plant's tablets are mostly good.
        assert!(q > 0.9, "{s}");
        let line = s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["figures"].is_object())
            .unwrap();
        assert!(line["equipment"].as_str().unwrap().starts_with("press"));
        assert!(!line["trend"].as_array().unwrap().is_empty());
    }
    let mine = demo.api("op.anhui").get_json("/api/oee").unwrap();
    let ids: Vec<_> = mine["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["site"].clone())
        .collect();
    assert_eq!(ids, vec![serde_json::json!("anhui")]);
    assert_eq!(hq.status("/api/oee?hours=0"), 400);
}
