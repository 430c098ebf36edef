//! Throughput of the InfluxDB historian against a real influxd 1.x on loopback.
//!
//! `cargo bench -p pharmatwin-connectors --bench influx` (add `--profile quick-release`
//! for a faster build). Prints samples/s for:
//! - live ingest: 200,000 samples through `write()` in batches of 5,000 (the pipeline's
//!   batch size), acknowledged when fsynced in the spool, forwarded while writing; the
//!   end-to-end figure stops when InfluxDB has confirmed the last one;
//! - replay: a 2-minute backlog (2,000 samples/s of plant data, 240,000 samples) spooled
//!   while influxd is stopped, then drained after it is started again; and the same
//!   backlog drained in live-sized batches, for comparison.
//!
//! - line-protocol encoding alone, on one core (no server involved);
//! - the cost of durability: the live ingest's end-to-end figure against the same samples
//!   sent straight to InfluxDB without the spool (same batches, gzip and client), as a
//!   ratio.
//!
//! Each phase ends with a count in InfluxDB, which must equal what was written.

#[path = "../tests/influx_common/mod.rs"]
mod influx_common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use model::{Category, Historian, Sample, Tag};
use pharmatwin_connectors::influx::{
    line_protocol::sample_line, InfluxApi, InfluxConfig, InfluxHistorian, TagCatalog,
};

const DB: &str = "bench";
const SIGNALS: usize = 500;
const LIVE_SAMPLES: usize = 200_000;
const BATCH: usize = 5_000;
const BACKLOG_RATE: usize = 2_000;
const BACKLOG_SECONDS: usize = 120;

fn tags() -> Vec<Arc<Tag>> {
    influx_common::bench_tags(SIGNALS)
}

/// `n` samples round-robin over the tags, `step` apart in source time from `start`.
fn samples(tags: &[Arc<Tag>], n: usize, start: DateTime<Utc>, step: Duration) -> Vec<Sample> {
    influx_common::bench_samples(tags, 0..n, start, step)
}

async fn total_points(server: &influx_common::Influxd) -> u64 {
    let mut total = 0;
    for c in Category::ALL {
        total += server
            .counts(DB, c.as_str(), "site")
            .await
            .values()
            .sum::<u64>();
    }
    total
}

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{:>9.0} samples/s ({n} in {:.2} s)",
        n as f64 / d.as_secs_f64(),
        d.as_secs_f64()
    )
}

/// Points/s of `sample_line` on this thread: the best of three passes over `samples`.
fn encoding_rate(samples: &[Sample]) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut bytes = 0;
    for _ in 0..3 {
        let started = Instant::now();
        bytes = samples
            .iter()
            .map(|s| std::hint::black_box(sample_line(s)).len())
            .sum();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (samples.len() as f64 / best, bytes / samples.len())
}

#[tokio::main]
async fn main() {
    let mut server = influx_common::Influxd::start();
    let spool = tempfile::tempdir().expect("temp dir");
    let mut config = InfluxConfig::v1(server.url(), DB, spool.path().to_path_buf());
    if let InfluxApi::V1 {
        create_database, ..
    } = &mut config.api
    {
        *create_database = true;
    }
    config.retry.max = Duration::from_millis(200);
    let historian = InfluxHistorian::open(config, TagCatalog::from_tags(tags()))
        .await
        .expect("open the historian");
    let tags = tags();

    // Live ingest.
    let live = samples(
        &tags,
        LIVE_SAMPLES,
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
        Duration::from_micros(500),
    );
    let started = Instant::now();
    for chunk in live.chunks(BATCH) {
        historian.write(chunk).await.expect("write");
    }
    let acknowledged = started.elapsed();
    historian
        .flush(Duration::from_secs(600))
        .await
        .expect("drain live");
    let end_to_end = started.elapsed();
    let live_status = historian.status();
    assert_eq!(total_points(&server).await, LIVE_SAMPLES as u64);

    // The same load without the spool: encoded, gzipped and posted batch by batch.
    let direct = samples(
        &tags,
        LIVE_SAMPLES,
        Utc.with_ymd_and_hms(2025, 1, 4, 0, 0, 0).unwrap(),
        Duration::from_micros(500),
    );
    let started = Instant::now();
    for chunk in direct.chunks(BATCH) {
        historian
            .write_unspooled(chunk)
            .await
            .expect("direct write");
    }
    let unspooled = started.elapsed();
    assert_eq!(total_points(&server).await, 2 * LIVE_SAMPLES as u64);
    let (encode_rate, line_bytes) = encoding_rate(&direct);

    // Replay of a 2-minute backlog.
    server.stop();
    let backlog_n = BACKLOG_RATE * BACKLOG_SECONDS;
    let backlog = samples(
        &tags,
        backlog_n,
        Utc.with_ymd_and_hms(2025, 1, 2, 0, 0, 0).unwrap(),
        Duration::from_secs(1) / BACKLOG_RATE as u32,
    );
    let spooling = Instant::now();
    for chunk in backlog.chunks(BATCH) {
        historian.write(chunk).await.expect("write while down");
    }
    let spooled_in = spooling.elapsed();
    let spooled = historian.status();
    server.resume();
    let replaying = Instant::now();
    historian
        .flush(Duration::from_secs(600))
        .await
        .expect("drain backlog");
    let replayed_in = replaying.elapsed();
    let status = historian.status();
    assert_eq!(
        total_points(&server).await,
        (2 * LIVE_SAMPLES + backlog_n) as u64
    );

    println!("InfluxDB historian, influxd 1.x on loopback, {SIGNALS} series, batches of {BATCH}");
    println!(
        "live ingest, acknowledged (spool fsync): {}",
        rate(LIVE_SAMPLES, acknowledged)
    );
    println!(
        "live ingest, confirmed by InfluxDB:      {}",
        rate(LIVE_SAMPLES, end_to_end)
    );
    println!(
        "  {} write requests, {} retries",
        live_status.requests, live_status.retries
    );
    println!(
        "same samples without the spool (direct):  {}",
        rate(LIVE_SAMPLES, unspooled)
    );
    println!(
        "  cost of durability: spool on / spool off = {:.2} (end-to-end rates)",
        unspooled.as_secs_f64() / end_to_end.as_secs_f64()
    );
    println!(
        "line-protocol encoding, one core:        {encode_rate:>9.0} points/s ({line_bytes} bytes a line)"
    );
    println!(
        "backlog of {BACKLOG_SECONDS} s at {BACKLOG_RATE}/s, spooled while down: {} ({} MB spooled)",
        rate(backlog_n, spooled_in),
        spooled.spooled_bytes / 1_000_000
    );
    println!(
        "backlog replay after restart:            {}",
        rate(backlog_n, replayed_in)
    );
    println!(
        "  {} requests in total, {} retries, forwarded {}",
        status.requests, status.retries, status.forwarded
    );
    historian.close().await;

    // The same backlog replayed in live-sized batches, to show what the big ones buy.
    let spool_small = tempfile::tempdir().expect("temp dir");
    let mut small = InfluxConfig::v1(server.url(), DB, spool_small.path().to_path_buf());
    small.retry.max = Duration::from_millis(200);
    small.batch.replay_max_lines = small.batch.max_lines;
    server.stop();
    let historian = InfluxHistorian::open(small, TagCatalog::from_tags(tags.clone()))
        .await
        .expect("open the historian");
    let backlog = samples(
        &tags,
        backlog_n,
        Utc.with_ymd_and_hms(2025, 1, 3, 0, 0, 0).unwrap(),
        Duration::from_secs(1) / BACKLOG_RATE as u32,
    );
    for chunk in backlog.chunks(BATCH) {
        historian.write(chunk).await.expect("write while down");
    }
    server.resume();
    let replaying = Instant::now();
    historian
        .flush(Duration::from_secs(600))
        .await
        .expect("drain backlog");
    let small_replay = replaying.elapsed();
    assert_eq!(
        total_points(&server).await,
        (2 * LIVE_SAMPLES + 2 * backlog_n) as u64
    );
    println!(
        "same replay in live-sized batches ({}):  {} ({} requests)",
        BATCH,
        rate(backlog_n, small_replay),
        historian.status().requests
    );
    historian.close().await;
}
