//! The alert a control room lives by, end to end in the browser: a fault in the simulated
//! plant (a cleanroom's temperature set-point raised over its specification through OPC UA)
//! raises an excursion alert that an Anhui operator sees among the unacknowledged ones; once
//! they acknowledge it under signature it leaves that list and shows who acknowledged it.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_plant_fault_raises_an_alert_the_operator_sees_and_acknowledges() {
    let demo = start_demo();
    let op = demo.api("op.anhui");
    wait_for_plants(&op);

    // The fault: Anhui line 1's compression room driven to 28 °C (its spec ends at 25 °C).
    let room = op
        .get_json("/api/signals?site=anhui&line=line-1&equipment=room-compression")
        .unwrap();
    let sp = room
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["signal"] == "temperature_sp")
        .expect("the room's temperature set-point");
    let sites = op.get_json("/api/health").unwrap();
    assert_eq!(sites["sites"], 3);
    // The demo serves its plants from --opcua-port-base in the built-in order.
    let index = ["shenzhen", "anhui", "sichuan"]
        .iter()
        .position(|s| *s == "anhui")
        .unwrap() as u16;
    let endpoint = format!("opc.tcp://127.0.0.1:{}/", demo.opcua_base + index);
    run_ok(&[
        "write",
        "--endpoint",
        &endpoint,
        "--node",
        sp["node"].as_str().unwrap(),
        "--value",
        "28",
    ]);

    let path = "anhui/osd/line-1/room-compression/temperature";
    let alert = wait_for(Duration::from_secs(240), "the excursion alert", || {
        let list = op
            .get_json("/api/alerts/all?site=anhui&kind=excursion&state=unacknowledged")
            .ok()?;
        list.as_array()?
            .iter()
            .find(|a| a["detail"]["path"] == path)
            .cloned()
    });
    let id = alert["detail"]["id"].as_u64().unwrap().to_string();
    let row = |page: &str| -> Option<String> {
        page.split("<tr class=\"alert-row\"")
            .skip(1)
            .find(|r| {
                r.contains(&format!("data-id=\"{id}\"")) && r.contains("data-kind=\"excursion\"")
            })
            .map(|r| r.split("</tr>").next().unwrap_or_default().to_string())
    };

    let page = dom(&op, "/#/alerts?state=unacknowledged");
    let shown = row(&page).unwrap_or_else(|| panic!("alert {id} among the unacknowledged"));
    assert!(shown.contains("room-compression"), "{shown}");
    assert!(
        shown.contains("Acknowledge / 确认"),
        "the operator may acknowledge it: {shown}"
    );
    screenshots(&op, "/#/alerts?state=unacknowledged", "alert-raised");

    let (status, body) = op.post_json(
        &format!("/api/alerts/board/{id}/acknowledge"),
        serde_json::json!({
            "comment": "HVAC checked, set-point restored",
            "signature": { "password": DEMO_PASSWORD, "meaning": "reviewed" }
        }),
    );
    assert_eq!(status, 200, "{body}");

    let page = dom(&op, "/#/alerts?state=unacknowledged");
    assert!(
        row(&page).is_none(),
        "acknowledged: gone from the unacknowledged"
    );
    let page = dom(&op, "/#/alerts?state=acknowledged");
    let shown = row(&page).expect("listed as acknowledged");
    assert!(
        shown.contains("acknowledged by") && shown.contains("op.anhui"),
        "{shown}"
    );
}
