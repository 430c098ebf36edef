//! Predictive maintenance and lifecycle records in the running twin: the three simulated
//! plants (at 600× so condition windows close every 6 s), the web view listing equipment
//! by risk with the signals behind each prediction, and lifecycle counters that survive a
//! crash of the twin with nothing lost or counted twice.

mod common;

use std::{collections::BTreeMap, process::Stdio, time::Duration};

use common::*;
use serde_json::{json, Value};

fn unit_key(u: &Value) -> String {
    format!("{}/{}/{}", u["site"], u["line"], u["equipment"]).replace('"', "")
}

fn lifecycle(api: &Api) -> BTreeMap<String, Value> {
    api.get_json("/api/lifecycle")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (unit_key(u), u.clone()))
        .collect()
}

/// Starts and cycles of one unit recounted from the historian's full history.
fn recount(api: &Api, path_prefix: &str) -> (u64, u64) {
    let history = |signal: &str| -> Vec<Value> {
        let url = format!("/api/history?path={path_prefix}/{signal}&from=2000-01-01T00:00:00Z");
        // Not every unit has both counters: an unknown tag is a 404.
        match api.get_json(&url) {
            Ok(h) => h["points"].as_array().cloned().unwrap_or_default(),
            Err(e) if e.contains("404") => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    };
    let mut starts = 0;
    let mut running = false;
    for p in history("state") {
        let now = p["v"] == "EXECUTE";
        starts += u64::from(now && !running);
        running = now;
    }
    let mut cycles = 0;
    for counter in ["good_count", "reject_count"] {
        let mut last: Option<i64> = None;
        for p in history(counter) {
            let Some(n) = p["v"].as_f64().map(|x| x as i64) else {
                continue;
            };
            if let Some(prev) = last.filter(|prev| n > *prev) {
                cycles += (n - prev) as u64;
            }
            last = Some(n);
        }
    }
    (starts, cycles)
}

#[test]
fn equipment_is_listed_by_risk_with_the_signals_behind_each_prediction() {
    let demo = start_demo_with(&["--speed", "600", "--quality-days", "0"]);
    let base = &demo.base;
    let api = demo.admin();
    let risks = wait_for(Duration::from_secs(150), "maintenance predictions", || {
        let m = api.get_json(&format!("{base}/api/maintenance")).ok()?;
        let list = m["risks"].as_array()?.clone();
        (list.len() >= 20 && !m["model"].is_null()).then_some(list)
    });
    let p: Vec<f64> = risks
        .iter()
        .map(|r| r["p_fail"].as_f64().unwrap())
        .collect();
    assert!(
        p.windows(2).all(|w| w[0] >= w[1]),
        "most at risk first: {p:?}"
    );
    for r in &risks {
        let health = r["health"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&health), "{r}");
        assert!(r["model_version"]
            .as_str()
            .unwrap()
            .starts_with("degradation-gbm/"));
        assert!(r["fingerprint"].as_str().unwrap().starts_with("fnv1a64:"));
        if let (Some(lo), Some(mid)) = (r["rul_low_h"].as_f64(), r["rul_h"].as_f64()) {
            assert!(lo <= mid, "interval around the estimate: {r}");
        }
    }
    // The signals behind the riskiest prediction are real tags with history to chart.
    let top = &risks[0];
    let drivers = top["drivers"].as_array().unwrap();
    assert!(!drivers.is_empty(), "{top}");
    let path = drivers[0]["path"].as_str().unwrap();
    let h = api
        .get_json(&format!("{base}/api/history?path={path}"))
        .unwrap();
    assert!(
        h["points"].as_array().is_some_and(|p| !p.is_empty()),
        "{path} has points to chart"
    );
    let wear = api
        .get_json(&format!(
            "{base}/api/maintenance/wear?site={}&line={}&equipment={}&part={}",
            top["site"].as_str().unwrap(),
            top["line"].as_str().unwrap(),
            top["equipment"].as_str().unwrap(),
            top["part"].as_str().unwrap()
        ))
        .unwrap();
    assert!(
        !wear.as_array().unwrap().is_empty(),
        "the wear trend behind it"
    );

    // The page shows the list, and the selected prediction (`?part=top`: the riskiest)
    // with a chart per signal behind it.
    let out = headless(&[
        "--virtual-time-budget=8000",
        "--dump-dom",
        &api.browser_url("/?part=top"),
    ]);
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(
        html.contains("Equipment at risk"),
        "maintenance panel on the page"
    );
    let shown = html.matches("class=\"risk").count();
    assert!(shown >= 10, "{shown} rows of equipment by risk");
    assert!(
        html.contains(&format!("data-path=\"{path}\"")),
        "the riskiest prediction's driver {path} is charted"
    );
}

#[test]
fn lifecycle_counters_survive_a_crash_of_the_twin_with_nothing_lost_or_doubled() {
    let mut demo = start_demo_with(&[
        "--speed",
        "600",
        "--quality-days",
        "0",
        "--maintenance-days",
        "0",
    ]);
    let api = demo.admin();
    // Let the plants run until units have started and produced.
    let before = wait_for(
        Duration::from_secs(90),
        "units running and counting",
        || {
            let l = lifecycle(&api);
            let busy = l
                .values()
                .filter(|u| u["total"]["cycles"].as_u64() > Some(0))
                .count();
            (busy >= 5).then_some(l)
        },
    );
    let unit = before
        .values()
        .find(|u| u["total"]["cycles"].as_u64() > Some(0))
        .unwrap()
        .clone();
    let action = json!({
        "site": unit["site"], "line": unit["line"], "equipment": unit["equipment"],
        "work_order": "WO-2026-0042", "part": "bearing", "comment": "bearing renewed"
    });
    // The site's maintenance technician records it; the record says who, from the session.
    let technician = format!("maint.{}", unit["site"].as_str().unwrap());
    let maint = demo.api(&technician);
    let (code, _) = maint.post_json("/api/lifecycle/actions", action.clone());
    assert_eq!(code, 201);
    let (code, _) = demo
        .api("op.anhui")
        .post_json("/api/lifecycle/actions", action);
    assert_eq!(code, 403, "an operator records no maintenance");
    let (code, _) = api.post_json(
        "/api/lifecycle/actions",
        json!({ "site": "nowhere", "line": "x", "equipment": "y", "work_order": "w" }),
    );
    assert_eq!(code, 404, "an unknown unit is refused");
    std::thread::sleep(Duration::from_secs(3));
    let acknowledged = lifecycle(&api);

    // Crash: no shutdown, no flush beyond what was acknowledged.
    demo.proc.child.kill().unwrap();
    demo.proc.child.wait().unwrap();

    // The twin alone over the same store (its plants are gone, so nothing new arrives).
    let web = free_port();
    let data = demo.data.path().to_str().unwrap().to_string();
    let listen = format!("127.0.0.1:{web}");
    let configs: Vec<String> = ["shenzhen", "anhui", "sichuan"]
        .iter()
        .map(|s| {
            repo()
                .join("sites")
                .join(format!("{s}.toml"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["run", "--listen", &listen, "--data-dir", &data];
    for c in &configs {
        args.extend(["--config", c]);
    }
    args.extend(["--quality-days", "0", "--maintenance-days", "0"]);
    let mut twin = spawn("pharmatwin run", pharmatwin(&args).stdout(Stdio::piped()));
    let base2 = format!("http://127.0.0.1:{web}");
    wait_for_line(&mut twin, &base2, Duration::from_secs(20));
    // The same user file: the demo's accounts log in to the restarted twin.
    let api2 = Api::login(&base2, "admin", DEMO_PASSWORD).unwrap();
    let mut last = BTreeMap::new();
    let after = wait_for(
        Duration::from_secs(60),
        "the twin to replay the store",
        || {
            let now = lifecycle(&api2);
            let settled = now == last
                && now
                    .values()
                    .any(|u| u["total"]["cycles"].as_u64() > Some(0));
            last = now.clone();
            std::thread::sleep(Duration::from_millis(500));
            settled.then_some(now)
        },
    );

    let mut compared = 0;
    for (key, a) in &after {
        let was = &acknowledged[key];
        for counter in ["starts", "cycles"] {
            assert!(
                a["total"][counter].as_u64() >= was["total"][counter].as_u64(),
                "{key}: {counter} lost across the crash: {} before, {} after",
                was["total"][counter],
                a["total"][counter]
            );
        }
        let prefix = format!(
            "{}/{}/{}/{}",
            a["site"].as_str().unwrap(),
            a["area"].as_str().unwrap(),
            a["line"].as_str().unwrap(),
            a["equipment"].as_str().unwrap()
        );
        let (starts, cycles) = recount(&api2, &prefix);
        assert_eq!(a["total"]["starts"].as_u64(), Some(starts), "{key}: starts");
        assert_eq!(a["total"]["cycles"].as_u64(), Some(cycles), "{key}: cycles");
        compared += usize::from(cycles > 0);
    }
    assert!(compared >= 5, "{compared} producing units compared");

    // The maintenance action survived too, and still splits the counters.
    let u = &after[&unit_key(&unit)];
    let history = u["history"].as_array().unwrap();
    assert_eq!(history.len(), 1, "{u}");
    assert_eq!(history[0]["work_order"], "WO-2026-0042");
    assert_eq!(history[0]["user"], technician.as_str());
    assert!(u["since_maintenance"]["cycles"].as_u64() <= u["total"]["cycles"].as_u64());
    assert!(u["last_maintenance"].is_string());

    // The action is in the audit trail with who and when; a changed byte is named.
    let trail = demo.data.path().join("audit.jsonl");
    let trail = trail.to_str().unwrap();
    let out = run_ok(&["audit", "verify", "--file", trail]);
    assert!(out.contains("records, chain intact"), "{out}");
    let csv = run_ok(&["audit", "export", "--file", trail, "--format", "csv"]);
    assert!(
        csv.contains(&format!("\"{technician}\""))
            && csv.contains("maintenance.record")
            && csv.contains("WO-2026-0042")
            && csv.contains("login.success"),
        "{csv}"
    );
    let text = std::fs::read_to_string(trail).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = lines
        .iter()
        .position(|l| l.contains("maintenance.record"))
        .unwrap();
    lines[at] = lines[at].replace("WO-2026-0042", "WO-2026-0043");
    std::fs::write(trail, lines.join("\n") + "\n").unwrap();
    let err = run_failing(&["audit", "verify", "--file", trail]);
    assert!(
        err.contains(&format!("record {} is broken", at + 1)),
        "{err}"
    );
}
