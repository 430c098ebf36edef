//! The multi-site deployment: one `edge` per plant (its simulator behind it) writing into a
//! real InfluxDB, one `central` reading it — every signal of every site reaches InfluxDB with
//! its tags and the central web view.

mod common;

use std::{process::Stdio, time::Duration};

use common::*;

const SITES: [&str; 3] = ["shenzhen", "anhui", "sichuan"];

#[test]
fn three_edges_and_a_central_put_every_signal_in_influxdb_and_the_web_view() {
    let influx = Influxd::start();
    let base = free_port_block(3);
    let mut procs = Vec::new();
    let spools = tempfile::tempdir().unwrap();
    for (i, site) in SITES.iter().enumerate() {
        let endpoint = format!("opc.tcp://127.0.0.1:{}/", base + i as u16);
        procs.push(spawn(
            "simulator",
            &mut pharmatwin(&[
                "simulate",
                "--site",
                site,
                "--endpoint",
                &endpoint,
                "--speed",
                "60",
            ]),
        ));
        let config = repo().join(format!("sites/{site}.toml"));
        let spool = spools.path().join(site);
        procs.push(spawn(
            "edge",
            pharmatwin(&[
                "edge",
                "--config",
                config.to_str().unwrap(),
                "--influx-url",
                &influx.url(),
                "--influx-db",
                "plants",
                "--spool-dir",
                spool.to_str().unwrap(),
            ])
            .env(
                format!("PHARMATWIN_{}__SITE__ENDPOINT", site.to_uppercase()),
                &endpoint,
            ),
        ));
    }
    let web = free_port();
    let configs: Vec<String> = SITES
        .iter()
        .map(|s| {
            repo()
                .join(format!("sites/{s}.toml"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let central_spool = spools.path().join("central");
    let users = spools.path().join("users.json");
    create_admin(&users);
    let mut args = vec!["central", "--users", users.to_str().unwrap()];
    for c in &configs {
        args.extend(["--config", c.as_str()]);
    }
    let listen = format!("127.0.0.1:{web}");
    let url = influx.url();
    args.extend([
        "--influx-url",
        url.as_str(),
        "--influx-db",
        "plants",
        "--spool-dir",
        central_spool.to_str().unwrap(),
        "--listen",
        listen.as_str(),
        "--quality-days",
        "0",
    ]);
    procs.push(spawn("central", pharmatwin(&args).stdout(Stdio::piped())));
    let base = format!("http://{listen}");
    wait_healthy(&base, Duration::from_secs(30));
    let api = Api::login(&base, "admin", ADMIN_PASSWORD).unwrap();

    // Every signal of every site has a value in the central twin, read from InfluxDB.
    let sites = wait_for(
        Duration::from_secs(120),
        "every signal in the central view",
        || {
            let v = api.get_json("/api/sites").ok()?;
            let all = v.as_array()?;
            (all.len() == 3
                && all
                    .iter()
                    .all(|s| s["with_value"] == s["signals"] && s["signals"].as_u64() > Some(500)))
            .then(|| v.clone())
        },
    );
    let total: u64 = sites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["signals"].as_u64().unwrap())
        .sum();

    // And in InfluxDB itself, one series per signal, with the ISA-95 tags.
    let series = influx.query("plants", "SHOW SERIES");
    let count: usize = series["results"][0]["series"].as_array().map_or(0, |s| {
        s.iter()
            .map(|m| m["values"].as_array().map_or(0, Vec::len))
            .sum()
    });
    assert_eq!(
        count as u64, total,
        "series in InfluxDB: {count}, signals: {total}"
    );
    let point = influx.query(
        "plants",
        "SELECT * FROM environment WHERE site='anhui' AND signal='temperature' LIMIT 1",
    );
    let s = &point["results"][0]["series"][0];
    let columns: Vec<&str> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for c in [
        "time",
        "site",
        "area",
        "line",
        "equipment",
        "signal",
        "unit",
        "value",
        "quality",
    ] {
        assert!(columns.contains(&c), "column {c} in {columns:?}");
    }
    drop(procs);
}
