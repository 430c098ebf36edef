//! Replaying a full spool: resident memory and rate.
//!
//! `cargo bench -p pharmatwin-connectors --bench influx_spool --profile quick-release`
//!
//! Fills a spool with `PHARMATWIN_SPOOL_BENCH_MB` (default 1024) MB of line protocol while
//! no InfluxDB listens, then starts influxd and replays the spool from a fresh process —
//! an edge restarted after a long outage — which prints its peak resident memory (VmHWM
//! from /proc/self/status) and the replay rate. The count in InfluxDB must equal what was
//! spooled. `PHARMATWIN_SPOOL_BENCH_CACHE_MB` sets the spool's page cache (default: the
//! configuration's default), e.g. 1024 for redb's own default.

#[path = "../tests/influx_common/mod.rs"]
mod influx_common;

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{TimeZone, Utc};
use model::{Category, Tag};
use pharmatwin_connectors::influx::{InfluxApi, InfluxConfig, InfluxHistorian, TagCatalog};

const DB: &str = "bench";
const SIGNALS: usize = 500;
const BATCH: usize = 5_000;
const PHASE: &str = "PHARMATWIN_SPOOL_BENCH_PHASE";
const DIR: &str = "PHARMATWIN_SPOOL_BENCH_DIR";
const URL: &str = "PHARMATWIN_SPOOL_BENCH_URL";

fn tags() -> Vec<Arc<Tag>> {
    influx_common::bench_tags(SIGNALS)
}

/// A `/proc/self/status` figure in MB (`VmRSS`, `VmHWM`).
fn proc_status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn config(url: String, dir: std::path::PathBuf, max_bytes: u64) -> InfluxConfig {
    let mut c = InfluxConfig::v1(url, DB, dir);
    if let InfluxApi::V1 {
        create_database, ..
    } = &mut c.api
    {
        *create_database = true;
    }
    c.spool.max_bytes = max_bytes;
    if let Some(mb) = std::env::var("PHARMATWIN_SPOOL_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        c.spool.cache_bytes = mb * 1024 * 1024;
    }
    c.retry.max = Duration::from_millis(500);
    c
}

#[tokio::main]
async fn main() {
    if std::env::var(PHASE).as_deref() == Ok("replay") {
        replay().await;
        return;
    }
    let target_mb: u64 = std::env::var("PHARMATWIN_SPOOL_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let target = target_mb * 1_000_000;
    let mut server = influx_common::Influxd::stopped_on(influx_common::free_port());
    let spool = tempfile::tempdir().expect("temp dir");
    let historian = InfluxHistorian::open(
        config(server.url(), spool.path().to_path_buf(), 2 * target),
        TagCatalog::from_tags(tags()),
    )
    .await
    .expect("open the historian");

    // Fill while InfluxDB is down.
    let tags = tags();
    let start = Utc.with_ymd_and_hms(2025, 2, 1, 0, 0, 0).unwrap();
    let mut written = 0usize;
    let filling = Instant::now();
    while historian.status().spooled_bytes < target {
        let batch = influx_common::bench_samples(
            &tags,
            written..written + BATCH,
            start,
            Duration::from_micros(100),
        );
        historian.write_samples(&batch).await.expect("spool");
        written += BATCH;
    }
    let filled_in = filling.elapsed();
    let status = historian.status();
    historian.close().await;
    let file_mb =
        std::fs::metadata(spool.path().join("spool.redb")).map_or(0, |m| m.len()) / 1_000_000;
    println!(
        "spool filled: {written} samples, {} MB of lines ({file_mb} MB file) in {:.1} s ({:.0} samples/s, \
         acknowledged = fsynced); filling process peak RSS {:.0} MB",
        status.spooled_bytes / 1_000_000,
        filled_in.as_secs_f64(),
        written as f64 / filled_in.as_secs_f64(),
        proc_status_mb("VmHWM:")
    );

    server.resume();
    let ok = Command::new(std::env::current_exe().expect("own path"))
        .env(PHASE, "replay")
        .env(DIR, spool.path())
        .env(URL, server.url())
        .status()
        .expect("start the replaying process")
        .success();
    assert!(ok, "the replaying process failed");
    let mut in_influx = 0;
    for c in Category::ALL {
        in_influx += server
            .counts(DB, c.as_str(), "signal")
            .await
            .values()
            .sum::<u64>();
    }
    assert_eq!(
        in_influx, written as u64,
        "points in InfluxDB after the replay"
    );
    println!("InfluxDB holds all {in_influx} points");
}

/// An edge restarted with a full spool: opens it and forwards it to InfluxDB.
async fn replay() {
    let dir = std::env::var(DIR).expect("spool dir").into();
    let url = std::env::var(URL).expect("InfluxDB URL");
    let started = Instant::now();
    let config = config(url, dir, u64::MAX / 2);
    let historian_cache_mib = config.spool.cache_bytes / (1024 * 1024);
    let historian = InfluxHistorian::open(config, TagCatalog::default())
        .await
        .expect("open the historian");
    let spooled = historian.status().spooled_samples;
    let mut last_report = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let st = historian.status();
        if st.spooled_samples == 0 {
            break;
        }
        if last_report.elapsed() < Duration::from_secs(10) {
            continue;
        }
        last_report = Instant::now();
        eprintln!(
            "replay: {:>5.0} s, {:>9} forwarded, {:>9} left, RSS {:.0} MB",
            started.elapsed().as_secs_f64(),
            st.forwarded,
            st.spooled_samples,
            proc_status_mb("VmRSS:")
        );
    }
    historian
        .flush(Duration::from_secs(60))
        .await
        .expect("drained");
    let took = started.elapsed();
    println!(
        "replay of {spooled} samples: {:.1} s, {:.0} samples/s; peak RSS of the replaying \
         process {:.0} MB (VmHWM), spool cache {} MiB",
        took.as_secs_f64(),
        spooled as f64 / took.as_secs_f64(),
        proc_status_mb("VmHWM:"),
        historian_cache_mib
    );
    historian.close().await;
}
