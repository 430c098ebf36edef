//! Network outages between the connector and the server, made by a TCP proxy on loopback:
//!
//! - a 5 s stall (bytes held both ways, the session alive) of a 10 Hz counter loses no
//!   increment, when the item's queue covers the stall (`queue_size` set per tag in the site
//!   file) — against our simulator and the Python `asyncua` server;
//! - an outage longer than the server's queue covers leaves a gap: it is recorded (tag, from,
//!   to, reason) in the status and the gap log; against our simulator (no history) it stays
//!   a gap, against the Python server (history kept) it is back-filled from HistoryRead and
//!   the back-filled values are flagged.

mod common;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use chrono::Utc;
use common::{connector::*, proxy::Proxy, *};
use connectors::{EmbeddedStore, GapRecord};
use model::{Sample, Site, Value};

/// A site of one counter signal on `endpoint`, watched with the given queue size.
fn counter_site(endpoint: &str, namespace: &str, node: Option<&str>, queue: u32) -> Site {
    let node = node
        .map(|n| format!("node = \"nsu={namespace};s={n}\"\n"))
        .unwrap_or_default();
    let text = format!(
        r#"
[site]
id = "outage"
name = "Outage test"
namespace_uri = "{namespace}"
endpoint = "{endpoint}"
[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "meter"
monitoring = {{ sampling_ms = 100, queue_size = {queue}, stale_after_ms = 2000 }}
[[lines.equipment.signals]]
id = "count"
category = "machine"
unit = ""
data_type = "int"
{node}"#
    );
    model::load_site_text("outage.toml", &text, |_| unreachable!()).unwrap()
}

const PATH: &str = "outage/osd/line-1/meter/count";

fn counts(stored: &[Sample]) -> Vec<i64> {
    stored
        .iter()
        .map(|s| match s.value {
            Value::Int(k) => k,
            ref v => panic!("not a count: {v:?}"),
        })
        .collect()
}

/// The increments missing between consecutive stored counts.
fn missing(counts: &[i64]) -> Vec<(i64, i64)> {
    counts
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect()
}

/// The longest wait between two consecutive arrivals: shows the stall held the values.
fn longest_hold(stored: &[Sample]) -> chrono::Duration {
    stored
        .windows(2)
        .map(|w| w[1].received_ts - w[0].received_ts)
        .max()
        .unwrap_or_default()
}

async fn counter_simulator(
    site: &Site,
    pki: &Path,
) -> (sites::simulator::RunningSimulator, SocketAddr, String) {
    let sim = sites::simulator::start(
        Arc::new(site.clone()),
        sites::simulator::SimOptions {
            endpoint: Some("0".into()),
            pki_dir: Some(pki.to_path_buf()),
            tick: Duration::from_millis(100),
            tick_counter: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let url = sim.endpoint_url().to_string();
    let rest = url.trim_start_matches("opc.tcp://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host.replace("localhost", "127.0.0.1").parse().unwrap();
    (sim, addr, path.to_string())
}

fn python_counter(port: u16, history: bool) -> Proc {
    let mut args = vec!["--counters", "1", "--tick-ms", "100"];
    if history {
        args.push("--history");
    }
    python_peer(port, &args).0
}

/// Runs the counter through the stall and checks every increment arrived.
async fn stall_loses_nothing(site: Site, proxy: &Proxy, dir: &Path) {
    let store = EmbeddedStore::open(&dir.join("store")).unwrap();
    let mut conn = Connector::start(site, &dir.join("pki"));
    store_until(&mut conn, &store, PATH, Duration::from_secs(30), |s| {
        s.len() >= 20
    })
    .await;

    proxy.stall();
    tokio::time::sleep(Duration::from_secs(5)).await;
    // Silent for 5 s with the session alive: past its 2 s limit, the tag is stale.
    let stale = conn.status.snapshot().stale;
    assert!(
        stale.iter().any(|s| s.tag == PATH) && conn.status.is_connected(),
        "{stale:?}"
    );
    proxy.resume();
    let resumed = Utc::now();
    let stored = store_until(&mut conn, &store, PATH, Duration::from_secs(30), |s| {
        s.iter().filter(|x| x.received_ts > resumed).count() >= 60
    })
    .await;

    let hold = longest_hold(&stored);
    assert!(
        hold >= chrono::Duration::milliseconds(4_500),
        "the stall held the values back ({hold})"
    );
    let counts = counts(&stored);
    assert_eq!(missing(&counts), vec![], "increments missing: {counts:?}");
    let snap = conn.status.snapshot();
    assert_eq!(snap.gap_records, 0, "{:?}", snap.recent_gaps);
    assert_eq!(snap.overflows, 0);
    eventually(Duration::from_secs(5), "the tag fresh again", || {
        conn.status.snapshot().stale.is_empty()
    })
    .await;
    assert!(!snap.clock_skew_flagged, "{:?}", snap.clock_skew_ms);
    eprintln!(
        "{} consecutive counts {}..={}, held up to {hold} by the stall; {} reconnects, {} messages republished",
        counts.len(),
        counts[0],
        counts[counts.len() - 1],
        snap.connection_losses,
        snap.republished
    );
    conn.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_hz_counter_across_a_5_s_stall_loses_no_increment_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let plan = counter_site("opc.tcp://127.0.0.1:0/", "urn:test:outage", None, 100);
    let (sim, addr, path) = counter_simulator(&plan, &dir.path().join("sim-pki")).await;
    let proxy = Proxy::start(addr).await;
    let site = counter_site(&proxy.url(&path), "urn:test:outage", None, 100);
    stall_loses_nothing(site, &proxy, dir.path()).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10_hz_counter_across_a_5_s_stall_loses_no_increment_python() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = python_counter(port, false);
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let site = counter_site(
        &proxy.url("/freeopcua/server/"),
        "urn:test:python-peer",
        Some("Counter.0"),
        100,
    );
    stall_loses_nothing(site, &proxy, dir.path()).await;
}

fn logged_gaps(log: &Path) -> Vec<GapRecord> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            GapRecord {
                tag: v["tag"].as_str().unwrap().into(),
                from: v["from"].as_str().unwrap().parse().unwrap(),
                to: v["to"].as_str().unwrap().parse().unwrap(),
                reason: v["reason"].as_str().unwrap().into(),
                backfilled: v["backfilled"].as_u64().unwrap() as usize,
                backfill_error: v["backfill_error"].as_str().map(str::to_string),
                recorded_at: v["recorded_at"].as_str().unwrap().parse().unwrap(),
            }
        })
        .collect()
}

/// Runs the counter through an outage its queue of 5 cannot cover; returns what was stored
/// and the gap records logged.
async fn outage_beyond_the_queue(
    site: Site,
    proxy: &Proxy,
    dir: &Path,
    cut: bool,
) -> (
    Vec<Sample>,
    Vec<GapRecord>,
    connectors::SourceStatusSnapshot,
) {
    let store = EmbeddedStore::open(&dir.join("store")).unwrap();
    let log = dir.join("gaps.jsonl");
    let mut opts = Connector::options(&dir.join("pki"));
    opts.gap_log = Some(log.clone());
    let mut conn = Connector::start_with(site, opts);
    store_until(&mut conn, &store, PATH, Duration::from_secs(30), |s| {
        s.len() >= 10
    })
    .await;

    let outage = Utc::now();
    if cut {
        proxy.cut();
    } else {
        proxy.stall();
    }
    tokio::time::sleep(Duration::from_secs(6)).await;
    proxy.restore();
    proxy.resume();
    let stored = store_until(&mut conn, &store, PATH, Duration::from_secs(40), |_| {
        logged_gaps(&log).iter().any(|g| g.to > outage)
    })
    .await;
    // A little longer: back-filled values arrive after the record is written.
    let end = stored.last().map(|s| s.source_ts).unwrap_or_default();
    let stored = store_until(&mut conn, &store, PATH, Duration::from_secs(20), |s| {
        s.iter()
            .filter(|x| !x.backfilled && x.source_ts > end)
            .count()
            >= 20
    })
    .await;
    let snap = conn.status.snapshot();
    conn.stop().await;
    (stored, logged_gaps(&log), snap)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_beyond_the_servers_queue_is_recorded_as_a_gap_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let plan = counter_site("opc.tcp://127.0.0.1:0/", "urn:test:outage", None, 5);
    let (sim, addr, path) = counter_simulator(&plan, &dir.path().join("sim-pki")).await;
    let proxy = Proxy::start(addr).await;
    let site = counter_site(&proxy.url(&path), "urn:test:outage", None, 5);
    let (stored, gaps, snap) = outage_beyond_the_queue(site, &proxy, dir.path(), false).await;

    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let gap = &gaps[0];
    assert_eq!(gap.tag, PATH);
    // The gap spans exactly the counts that never arrived: from the last before to the first
    // after, with nothing stored in between.
    let before = stored
        .iter()
        .rfind(|s| s.source_ts == gap.from)
        .expect("from is a stored value");
    let after = stored
        .iter()
        .find(|s| s.source_ts == gap.to)
        .expect("to is a stored value");
    let inside = stored
        .iter()
        .filter(|s| s.source_ts > gap.from && s.source_ts < gap.to)
        .count();
    assert_eq!(
        inside, 0,
        "our simulator keeps no history: nothing back-filled"
    );
    let (Value::Int(a), Value::Int(b)) = (&before.value, &after.value) else {
        panic!()
    };
    assert!(b - a > 20, "the gap covers the lost counts {a}..{b}");
    let counts = counts(&stored);
    assert_eq!(
        missing(&counts),
        vec![(*a, *b)],
        "the recorded gap is the only hole"
    );
    assert_eq!(gap.backfilled, 0);
    assert!(gap.backfill_error.is_some(), "history not offered: {gap:?}");
    assert!(snap.overflows >= 1, "the server said its queue overflowed");
    assert_eq!(snap.gap_records, 1);
    assert_eq!(snap.recent_gaps[0].tag, PATH);
    eprintln!(
        "gap {a}..{b} ({} ms) recorded: {}; back-fill: {:?}",
        (gap.to - gap.from).num_milliseconds(),
        gap.reason,
        gap.backfill_error
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_beyond_the_servers_queue_is_back_filled_from_history_and_flagged_python() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = python_counter(port, true);
    let proxy = Proxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
    let site = counter_site(
        &proxy.url("/freeopcua/server/"),
        "urn:test:python-peer",
        Some("Counter.0"),
        5,
    );
    let (stored, gaps, snap) = outage_beyond_the_queue(site, &proxy, dir.path(), true).await;

    assert!(!gaps.is_empty(), "a gap recorded");
    let filled: usize = gaps.iter().map(|g| g.backfilled).sum();
    assert!(filled >= 20, "back-filled {filled}: {gaps:?}");
    for g in &gaps {
        assert!(g.backfill_error.is_none(), "{g:?}");
    }
    // Every flagged value lies inside a recorded gap. (Messages the server still held may
    // be republished after the gap closed: those values are live, and stay unflagged.)
    let flagged: Vec<&Sample> = stored.iter().filter(|s| s.backfilled).collect();
    assert!(flagged.len() >= 20, "{} flagged", flagged.len());
    for s in &flagged {
        assert!(
            gaps.iter()
                .any(|g| s.source_ts > g.from && s.source_ts < g.to),
            "{s:?} outside {gaps:?}"
        );
    }
    assert!(
        stored.iter().filter(|s| !s.backfilled).count() > 20,
        "live values are not flagged: {gaps:?} {stored:?}"
    );
    let counts = counts(&stored);
    assert_eq!(
        missing(&counts),
        vec![],
        "with the back-fill no count is missing: {counts:?}"
    );
    assert_eq!(snap.backfilled as usize, filled);
    eprintln!(
        "{} gap(s), {filled} values back-filled from history; counts {}..={} whole; reasons: {:?}",
        gaps.len(),
        counts[0],
        counts[counts.len() - 1],
        gaps.iter().map(|g| g.reason.as_str()).collect::<Vec<_>>()
    );
}
