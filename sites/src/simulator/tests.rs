//! The simulator's server: listening, publishing, stopping. A client round trip (subscribe,
//! write a set-point) is tested with the connectors.

use std::sync::Arc;

use model::Site;
use opcua::types::{AttributeId, DataEncoding, TimestampsToReturn, Variant};

use super::*;

fn site(id: &str) -> Arc<Site> {
    Arc::new(
        crate::builtin_site(id)
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("built-in site {id}")),
    )
}

fn options(endpoint: &str, pki: &tempfile::TempDir) -> SimOptions {
    SimOptions {
        speed: 60.0,
        seed: 1,
        tick: Duration::from_millis(100),
        endpoint: Some(endpoint.into()),
        pki_dir: Some(pki.path().to_path_buf()),
        tick_counter: false,
        faults: Default::default(),
    }
}

/// The value the server holds for the signal at `index`.
fn served(sim: &RunningSimulator, index: usize) -> Option<Variant> {
    let space = sim.manager.address_space().read();
    let node = space.find(&sim.nodes[index])?;
    node.as_node()
        .get_attribute(
            TimestampsToReturn::Both,
            AttributeId::Value,
            &NumericRange::None,
            &DataEncoding::Binary,
        )?
        .value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_every_signal_on_a_free_loopback_port_and_keeps_them_fresh() {
    let pki = tempfile::tempdir().unwrap();
    let site = site("anhui");
    let sim = start(site.clone(), options("0", &pki)).await.unwrap();
    let port = sim.local_addr().port();
    assert_ne!(port, 0);
    assert_eq!(sim.endpoint_url(), format!("opc.tcp://127.0.0.1:{port}/"));
    tokio::net::TcpStream::connect(sim.local_addr())
        .await
        .unwrap();

    assert_eq!(sim.nodes.len(), site.signal_count());
    for i in 0..sim.nodes.len() {
        assert!(served(&sim, i).is_some(), "signal {i} has no value");
    }
    let elapsed = sim
        .with_plant(|p| p.signal_index("line-1", "line-control", "phase_elapsed_min"))
        .unwrap();
    let before = served(&sim, elapsed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_ne!(
        served(&sim, elapsed),
        before,
        "values are not being published"
    );
    let simulated = sim.with_plant(|p| p.elapsed());
    assert!(simulated >= Duration::from_secs(20), "{simulated:?}");

    let addr = sim.local_addr();
    sim.shutdown().await;
    // The port is free again once the simulator has stopped.
    std::net::TcpListener::bind(addr).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_points_are_served_writable_and_measurements_read_only() {
    let pki = tempfile::tempdir().unwrap();
    let sim = start(
        site("sichuan"),
        options("opc.tcp://127.0.0.1:0/sichuan", &pki),
    )
    .await
    .unwrap();
    assert!(
        sim.endpoint_url().ends_with("/sichuan"),
        "{}",
        sim.endpoint_url()
    );
    let (sp, pv) = sim.with_plant(|p| {
        (
            p.signal_index("line-2", "press-01", "compression_force_sp")
                .unwrap(),
            p.signal_index("line-2", "press-01", "main_compression_force")
                .unwrap(),
        )
    });
    let access = |i: usize| {
        let space = sim.manager.address_space().read();
        match space.find(&sim.nodes[i]) {
            Some(opcua::server::address_space::NodeType::Variable(v)) => Some(v.access_level()),
            _ => None,
        }
    };
    let writable = opcua::server::address_space::AccessLevel::CURRENT_WRITE;
    assert!(access(sp).is_some_and(|a| a.contains(writable)));
    assert!(access(pv).is_some_and(|a| !a.contains(writable)));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_an_error_naming_the_endpoint() {
    let pki = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = start(site("shenzhen"), options(&port.to_string(), &pki))
        .await
        .unwrap_err();
    assert!(matches!(err, SimError::Bind { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("opc.tcp://127.0.0.1:{port}/")),
        "{err}"
    );
}

#[tokio::test]
async fn options_and_endpoints_are_checked_before_anything_starts() {
    let pki = tempfile::tempdir().unwrap();
    let mut slow = options("0", &pki);
    slow.speed = 0.0;
    assert!(matches!(
        start(site("anhui"), slow).await,
        Err(SimError::Options(_))
    ));
    let bad = options("http://127.0.0.1:80/", &pki);
    let err = start(site("anhui"), bad).await.unwrap_err();
    assert!(matches!(err, SimError::Endpoint { .. }), "{err}");
    assert!(err.to_string().contains("http://127.0.0.1:80/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_sites_serve_side_by_side() {
    let pki = tempfile::tempdir().unwrap();
    let mut running = Vec::new();
    for id in crate::SITE_IDS {
        running.push(start(site(id), options("0", &pki)).await.unwrap());
    }
    let ports: std::collections::BTreeSet<u16> =
        running.iter().map(|s| s.local_addr().port()).collect();
    assert_eq!(ports.len(), 3);
    for sim in &running {
        tokio::net::TcpStream::connect(sim.local_addr())
            .await
            .unwrap();
    }
    for sim in running {
        sim.shutdown().await;
    }
}

#[test]
fn tick_counter_keeps_each_type_and_stamps_ticks_on_a_grid() {
    // Whole seconds: OPC UA times have 100 ns resolution.
    let start = chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap();
    let mut c = Counter { start, tick: 0 };
    let period = Duration::from_millis(200);
    let plant = [
        Value::Float(3.5),
        Value::Int(-2),
        Value::Bool(false),
        Value::Text("idle".into()),
    ];
    let (t1, v1) = c.values(true, period, &plant);
    assert_eq!(
        v1,
        [
            Value::Float(1.0),
            Value::Int(1),
            Value::Bool(true),
            Value::Text("1".into())
        ]
    );
    // A republish without a tick (a set-point write) serves the same values and time.
    let (again, same) = c.values(false, period, &plant);
    assert_eq!((again, &same), (t1, &v1));
    let (t3, v3) = c.values(true, period, &plant);
    assert_eq!(v3[0], Value::Float(2.0));
    assert_eq!(v3[2], Value::Bool(false));
    let (t1, t3) = (t1.as_chrono(), t3.as_chrono());
    assert_eq!(t1 - start, chrono::Duration::milliseconds(200));
    assert_eq!(t3 - t1, chrono::Duration::milliseconds(200));
}
