//! Nothing the plant said is lost or made up on the way to the store: a Bad status without a
//! value is stored as Bad with its own source time (never the last good value in its place),
//! against the Python `asyncua` server and our simulator, through the real OPC UA stack into
//! the embedded store. A server whose clock is off by more than a second is flagged.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{connector::*, *};
use connectors::EmbeddedStore;
use model::{Historian, Quality, Sample, Value};

const BAD_SENSOR_FAILURE: Quality = Quality(0x808C_0000);

/// After every null, until the next value, nothing but nulls: no value carried forward.
fn assert_no_value_carried_into(stored: &[Sample]) {
    for w in stored.windows(2) {
        assert!(w[0].source_ts < w[1].source_ts, "ordered by source time");
    }
    for s in stored.iter().filter(|s| s.value.is_null()) {
        assert!(s.quality.is_bad(), "a null is stored Bad: {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bad_notifications_without_a_value_are_stored_as_bad_with_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_server, lines) = python_peer(port, &["--bad-node"]);
    let site = peer_site(
        port,
        "oven",
        &[PeerSignal("sensor", "double", "Line1.Oven.Sensor")],
    );
    let path = "peer/osd/line-1/oven/sensor";
    let store = EmbeddedStore::open(&dir.path().join("store")).unwrap();
    let mut conn = Connector::start(site, &dir.path().join("pki"));

    // Two bad spells, each followed by a good value again.
    let stored = store_until(&mut conn, &store, path, Duration::from_secs(40), |s| {
        let bad = s.iter().filter(|x| x.value.is_null()).count();
        bad >= 2 && s.last().is_some_and(|x| !x.value.is_null())
    })
    .await;
    assert_no_value_carried_into(&stored);
    let printed: Vec<DateTime<Utc>> = lines
        .after("BAD ")
        .iter()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|e| panic!("{t}: {e}"))
        })
        .collect();
    let nulls: Vec<&Sample> = stored.iter().filter(|s| s.value.is_null()).collect();
    for s in &nulls {
        assert_eq!(s.quality, BAD_SENSOR_FAILURE, "{s:?}");
        assert!(
            printed.contains(&s.source_ts),
            "the null at {} is one the server sent (its own source time), not a copy: {printed:?}",
            s.source_ts
        );
    }
    assert!(
        stored
            .iter()
            .any(|s| s.quality.is_good() && s.value.as_f64().is_some()),
        "good values stored too: {stored:?}"
    );
    let snap = conn.status.snapshot();
    assert!(snap.tag_errors.is_empty(), "{:?}", snap.tag_errors);
    eprintln!(
        "{} samples stored, {} of them Bad without a value, each at the time the server gave",
        stored.len(),
        nulls.len()
    );
    conn.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_simulator_sensor_is_stored_as_bad_never_as_its_last_good_value() {
    let dir = tempfile::tempdir().unwrap();
    let site = sites::builtin_site("anhui").unwrap().unwrap();
    let sim = simulator(&site, &dir.path().join("sim-pki")).await;
    let mut site = site;
    site.endpoint = sim.endpoint_url().to_string();
    let path = "anhui/osd/line-1/room-compression/humidity";
    let store = EmbeddedStore::open(&dir.path().join("store")).unwrap();
    let mut conn = Connector::start(site, &dir.path().join("pki"));
    store_until(&mut conn, &store, path, Duration::from_secs(30), |s| {
        s.iter().any(|x| x.value.as_f64().is_some())
    })
    .await;

    // Off line for 3.6 plant seconds... at the simulator's speed of one, 3.6 s.
    let failed_at = Utc::now();
    assert!(sim.with_plant(|p| p.take_offline("line-1", "room-compression", "humidity", 0.001)));
    let stored = store_until(&mut conn, &store, path, Duration::from_secs(30), |s| {
        let after = |x: &&Sample| x.source_ts >= failed_at;
        let nulls = s.iter().filter(after).filter(|x| x.value.is_null()).count();
        nulls >= 1
            && s.last()
                .is_some_and(|x| !x.value.is_null() && x.source_ts > failed_at)
    })
    .await;
    assert_no_value_carried_into(&stored);
    let spell: Vec<&Sample> = stored
        .iter()
        .skip_while(|s| !s.value.is_null())
        .take_while(|s| s.value.is_null())
        .collect();
    let (first, last) = (spell[0], spell[spell.len() - 1]);
    assert_eq!(first.quality, BAD_SENSOR_FAILURE, "{first:?}");
    assert_eq!(first.value, Value::Null);
    assert!(first.server_ts.is_some(), "server time kept: {first:?}");
    let back = stored
        .iter()
        .find(|s| s.source_ts > last.source_ts)
        .expect("the sensor reads again");
    assert!(
        back.quality.is_good() && back.value.as_f64().is_some(),
        "{back:?}"
    );
    let offline = back.source_ts - first.source_ts;
    assert!(
        offline >= chrono::Duration::milliseconds(3_000),
        "Bad from {} until {} ({offline})",
        first.source_ts,
        back.source_ts
    );
    // The rest of the plant kept flowing meanwhile.
    let other = store
        .query(
            "anhui/osd/line-1/room-compression/temperature",
            first.source_ts,
            back.source_ts,
        )
        .await
        .unwrap();
    assert!(
        other.iter().all(|s| s.quality.is_good()) && !other.is_empty(),
        "{other:?}"
    );
    eprintln!(
        "humidity Bad for {offline} ({} null samples), then {}",
        spell.len(),
        back.value
    );
    conn.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_three_seconds_ahead_is_flagged_and_a_right_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut skews = Vec::new();
    for offset in [3.0, 0.0] {
        let port = free_port();
        let _server = python_peer(port, &["--clock-offset-s", &offset.to_string()]);
        let site = peer_site(
            port,
            "oven",
            &[PeerSignal("count", "int", "Line1.Oven.Count")],
        );
        let conn = Connector::start(site, &dir.path().join("pki"));
        eventually(Duration::from_secs(30), "values with server times", || {
            conn.status.snapshot().notifications >= 10
        })
        .await;
        let snap = conn.status.snapshot();
        // The peer's device clock is off; the server stamps its own time: the source skew.
        let skew = snap.source_clock_skew_ms.expect("a skew estimate");
        assert_eq!(
            snap.clock_skew_flagged,
            offset > 0.0,
            "{skew} ms at offset {offset} s"
        );
        skews.push(skew);
        conn.stop().await;
    }
    assert!((2_500..3_500).contains(&skews[0]), "{skews:?}");
    assert!(skews[1].abs() < 1_000, "{skews:?}");
    eprintln!(
        "clock skew estimated {} ms (3 s ahead) and {} ms (right)",
        skews[0], skews[1]
    );
}
