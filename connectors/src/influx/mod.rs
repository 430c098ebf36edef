//! The InfluxDB historian: [`model::Historian`] on InfluxDB, with store-and-forward.
//!
//! `write` puts every sample into a local spool (redb, fsynced) and returns: that is the
//! acknowledgement, so a sample survives an InfluxDB outage and a `kill -9` of this
//! process from then on. A background forwarder sends the spool to InfluxDB in order and
//! deletes lines only after InfluxDB confirmed them; after a crash between the two it sends
//! them again, which duplicates nothing because InfluxDB overwrites a point with the same
//! series and time. The spool is bounded (`spool.max_bytes`): above `warn_fraction` the
//! status raises an alert; when full, the `block` policy stops acknowledging (`write`
//! returns [`InfluxError::SpoolFull`], so the pipeline holds its batch and backpressure
//! reaches the source) and `drop_oldest` deletes the oldest samples — either way a
//! [`SpoolGap`] record in the spool says what and when.
//!
//! Writes use the v1 API (InfluxDB 1.x) or the v2 API through `influxdb2` (2.x, 3.x,
//! Cloud); reads use InfluxQL over `/query`, which all of them answer. The schema and its
//! escaping are described in [`line_protocol`].
//!
//! **What `read_since` means here.** InfluxDB has no arrival order, so the cursor is a
//! time: `Cursor(ns)`. A read returns points with `time > cursor − read.overlap`, oldest
//! first, leaving out those this historian already returned to the holder of that cursor;
//! the new cursor is the time of the newest point returned. Points that reach InfluxDB
//! later than `overlap` behind the newest one read are not seen by the tail (they are in
//! `query`). `Cursor(0)` starts `read.initial_lookback` before now. This fits the twin,
//! which needs the newest values; history is served by `query`. Integers and booleans
//! come back as such when the plant model (or a write through this historian) gives the
//! signal's type, else as floats. Server and receive times are fields (`server_ns`,
//! `received_ns`); a point written by someone else reads back with the source time as its
//! receive time.

mod catalog;
mod client;
mod config;
mod error;
mod forwarder;
pub mod line_protocol;
mod query;
mod spool;
mod status;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    fmt,
    sync::{atomic::Ordering, Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::{sync::Notify, task::JoinHandle};
use tracing::{debug, info, warn};

use model::{Category, Cursor, Historian, HistorianError, Quality, Sample, Tag, Value};

pub use catalog::TagCatalog;
pub use config::{
    BatchConfig, FullPolicy, InfluxApi, InfluxConfig, ReadConfig, RetryConfig, SpoolConfig,
};
pub use error::InfluxError;
pub use line_protocol::{FieldValue, Point, PointError};
pub use spool::{QuarantinedPoint, SpoolGap};
pub use status::InfluxStatus;

use catalog::Kind;
use client::Client;
use line_protocol::{decode_tag_text, sample_line, time_ns};
use query::Row;
use spool::{Appended, BatchInfo, Spool};
use status::Counters;

/// How many tail readers (distinct cursors) keep their de-duplication state.
const TAIL_READERS: usize = 8;

/// The InfluxDB historian. Dropping it stops the forwarder where it is (what was not
/// confirmed stays spooled); [`InfluxHistorian::flush`] waits for the spool to drain.
pub struct InfluxHistorian {
    shared: Arc<Shared>,
    forwarder: Mutex<Option<JoinHandle<()>>>,
}

pub(crate) struct Shared {
    config: InfluxConfig,
    client: Client,
    spool: Arc<Spool>,
    counters: Counters,
    catalog: RwLock<TagCatalog>,
    /// Signalled after each stored write, to wake the forwarder.
    new_data: Notify,
    /// Signalled after the forwarder freed spool space, to wake blocked writers.
    space_freed: Notify,
    tails: Mutex<Tails>,
}

impl fmt::Debug for InfluxHistorian {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InfluxHistorian")
            .field("target", &self.shared.client.label)
            .field("spool", &self.shared.spool.path())
            .finish_non_exhaustive()
    }
}

impl InfluxHistorian {
    /// Opens (or creates) the spool in `config.spool.dir` and starts the forwarder, which
    /// first replays whatever an earlier run left spooled. Reads the token or password from
    /// the environment variable the settings name. Must be called inside a Tokio runtime.
    pub async fn open(config: InfluxConfig, catalog: TagCatalog) -> Result<Self, InfluxError> {
        config.validate()?;
        let client = Client::new(&config)?;
        let dir = config.spool.dir.clone();
        let (max, policy, cache) = (
            config.spool.max_bytes,
            config.spool.when_full,
            config.spool.cache_bytes,
        );
        let spool =
            tokio::task::spawn_blocking(move || Spool::open(&dir, max, policy, cache)).await??;
        info!(
            target = %client.label,
            api = api_name(&config.api),
            spool = %spool.path().display(),
            replay = spool.mirrors.count.load(Ordering::Relaxed),
            tags = catalog.len(),
            "InfluxDB historian opened"
        );
        let shared = Arc::new(Shared {
            config,
            client,
            spool: Arc::new(spool),
            counters: Counters::default(),
            catalog: RwLock::new(catalog),
            new_data: Notify::new(),
            space_freed: Notify::new(),
            tails: Mutex::new(Tails::default()),
        });
        shared.update_alert();
        let forwarder = tokio::spawn(forwarder::run(shared.clone()));
        Ok(InfluxHistorian {
            shared,
            forwarder: Mutex::new(Some(forwarder)),
        })
    }

    /// [`Historian::write`] with this module's error type.
    pub async fn write_samples(&self, batch: &[Sample]) -> Result<(), InfluxError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.shared.learn(batch);
        let lines: Vec<String> = batch.iter().map(sample_line).collect();
        self.append(lines, || {
            let mut info = BatchInfo::default();
            for s in batch {
                info.add(&s.tag.path(), Some(time_ns(s.source_ts)));
            }
            info
        })
        .await
    }

    /// Sends `batch` straight to InfluxDB, bypassing the spool: no durability, no retry, no
    /// quarantine, and the database must exist. Only for measuring what the spool costs
    /// (`benches/influx.rs`); anything but a 2xx is an error.
    #[doc(hidden)]
    pub async fn write_unspooled(&self, batch: &[Sample]) -> Result<(), InfluxError> {
        let shared = &self.shared;
        let lines: Vec<String> = batch.iter().map(sample_line).collect();
        let body = shared.client.body(lines.iter().map(String::as_str));
        match shared.client.write(body).await {
            client::Sent::Accepted => Ok(()),
            client::Sent::Failed(e) => Err(e),
            client::Sent::Rejected { status, body } => Err(InfluxError::Status {
                what: "write",
                status,
                body,
            }),
            client::Sent::TooLarge => Err(InfluxError::Status {
                what: "write",
                status: 413,
                body: String::new(),
            }),
        }
    }

    /// Spools raw points (back-fills, repairs) like samples; they are acknowledged,
    /// forwarded, retried and quarantined the same way. Fails before spooling anything if a
    /// point cannot be written as line protocol.
    pub async fn write_points(&self, points: &[Point]) -> Result<(), InfluxError> {
        if points.is_empty() {
            return Ok(());
        }
        let lines = points
            .iter()
            .map(Point::to_line)
            .collect::<Result<Vec<_>, _>>()?;
        let info_lines = lines.clone();
        self.append(lines, move || {
            let mut info = BatchInfo::default();
            for l in &info_lines {
                let (series, time) = line_protocol::series_and_time(l);
                info.add(series, time);
            }
            info
        })
        .await
    }

    async fn append(
        &self,
        lines: Vec<String>,
        describe: impl FnOnce() -> BatchInfo,
    ) -> Result<(), InfluxError> {
        let shared = &self.shared;
        let count = lines.len();
        let lines = Arc::new(lines);
        let deadline = Instant::now() + shared.config.spool.block_timeout;
        loop {
            let spool = shared.spool.clone();
            let batch = lines.clone();
            let appended = tokio::task::spawn_blocking(move || spool.append(&batch)).await??;
            match appended {
                Appended::Stored => {
                    shared.new_data.notify_one();
                    shared.counters.spool_full.store(false, Ordering::Relaxed);
                    shared.update_alert();
                    return Ok(());
                }
                Appended::Full { spooled_bytes } => {
                    let now = Instant::now();
                    if now < deadline {
                        // Woken when the forwarder frees space; the timeout bounds a
                        // wake-up that came between the check and the wait.
                        let wait = (deadline - now).min(Duration::from_millis(100));
                        let _ = tokio::time::timeout(wait, shared.space_freed.notified()).await;
                        continue;
                    }
                    let max_bytes = shared.config.spool.max_bytes;
                    let error = InfluxError::SpoolFull {
                        samples: count,
                        spooled_bytes,
                        max_bytes,
                    };
                    let info = describe();
                    let reason = error.to_string();
                    let spool = shared.spool.clone();
                    tokio::task::spawn_blocking(move || spool.record_refusal(&info, &reason))
                        .await??;
                    shared
                        .counters
                        .refused
                        .fetch_add(count as u64, Ordering::Relaxed);
                    if !shared.counters.spool_full.swap(true, Ordering::Relaxed) {
                        warn!(
                            target = %shared.client.label,
                            spooled_bytes,
                            max_bytes,
                            "spool full: writes are refused (policy block) until InfluxDB \
                             takes the backlog; gap recorded"
                        );
                    }
                    shared.counters.alert.store(true, Ordering::Relaxed);
                    return Err(error);
                }
            }
        }
    }

    /// [`Historian::query`] with this module's error type.
    pub async fn query_samples(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, InfluxError> {
        let known = {
            let catalog = self
                .shared
                .catalog
                .read()
                .unwrap_or_else(|e| e.into_inner());
            catalog.get(path).cloned()
        };
        let Some(known) = known else {
            debug!(
                path,
                "query of a tag this historian does not know; no samples"
            );
            return Ok(Vec::new());
        };
        let (from_ns, to_ns) = (time_ns(from), time_ns(to));
        let page = self.shared.config.read.page_rows;
        let rp = self.shared.retention_policy();
        let mut out = Vec::new();
        let mut after = None;
        if from_ns >= to_ns {
            return Ok(out);
        }
        loop {
            let q = query::series_query(&known.tag, rp, from_ns, to_ns, after, page);
            let rows = query::parse_rows(&self.shared.client.query(&q).await?)?;
            let full = rows.len() >= page;
            after = rows.last().map(|r| r.time_ns);
            out.extend(
                rows.into_iter()
                    .filter_map(|r| to_sample(&known.tag, known.kind, &r)),
            );
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// [`Historian::values_at`] with this module's error type: one small query per path for
    /// its newest point (the default would fetch the whole lookback window of each).
    pub async fn values_at_samples(
        &self,
        paths: &[String],
        at: DateTime<Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<Option<Sample>>, InfluxError> {
        let rp = self.shared.retention_policy();
        let (from_ns, at_ns) = (time_ns(at - lookback), time_ns(at));
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let known = {
                let catalog = self
                    .shared
                    .catalog
                    .read()
                    .unwrap_or_else(|e| e.into_inner());
                catalog.get(path.as_str()).cloned()
            };
            let Some(known) = known else {
                out.push(None);
                continue;
            };
            let q = query::latest_query(&known.tag, rp, from_ns, at_ns);
            let rows = query::parse_rows(&self.shared.client.query(&q).await?)?;
            out.push(
                rows.into_iter()
                    .next()
                    .and_then(|r| to_sample(&known.tag, known.kind, &r)),
            );
        }
        Ok(out)
    }

    /// [`Historian::read_since`] with this module's error type; see the module docs.
    pub async fn read_samples_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), InfluxError> {
        if limit == 0 {
            return Ok((Vec::new(), cursor));
        }
        let read = &self.shared.config.read;
        let overlap = i64::try_from(read.overlap.as_nanos()).unwrap_or(i64::MAX);
        let start = if cursor.0 == 0 {
            match read.initial_lookback {
                Some(back) => time_ns(Utc::now())
                    .saturating_sub(i64::try_from(back.as_nanos()).unwrap_or(i64::MAX)),
                None => line_protocol::MIN_TIME_NS,
            }
        } else {
            i64::try_from(cursor.0).unwrap_or(i64::MAX)
        };
        let lower = start
            .saturating_sub(overlap)
            .max(line_protocol::MIN_TIME_NS);
        let mut recent = self
            .shared
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(cursor.0);
        recent.retain(|(_, t)| *t > lower);
        // Every point already returned may come again; asking for that many more
        // guarantees `limit` new ones when they exist.
        let fetch = limit.saturating_add(recent.len());
        let q = query::tail_query(self.shared.retention_policy(), lower, fetch);
        let mut rows = query::parse_rows(&self.shared.client.query(&q).await?)?;
        // LIMIT applies per measurement: past the earliest last row of a measurement that
        // hit it, that measurement's rows are missing, so stop there.
        let mut per: HashMap<&str, (usize, i64)> = HashMap::new();
        for r in &rows {
            let e = per.entry(r.measurement.as_str()).or_insert((0, i64::MIN));
            e.0 += 1;
            e.1 = e.1.max(r.time_ns);
        }
        let horizon = per
            .values()
            .filter(|(n, _)| *n >= fetch)
            .map(|(_, last)| *last)
            .min()
            .unwrap_or(i64::MAX);
        rows.retain(|r| r.time_ns <= horizon);
        rows.sort_by_key(|r| r.time_ns);
        let mut out = Vec::with_capacity(limit.min(rows.len()));
        let mut newest = start;
        for row in rows {
            if out.len() >= limit {
                break;
            }
            let Some((tag, kind)) = self.shared.tag_of_row(&row) else {
                continue;
            };
            let path = tag.path();
            if !recent.insert((path, row.time_ns)) {
                continue;
            }
            if let Some(s) = to_sample(&tag, kind, &row) {
                newest = newest.max(row.time_ns);
                out.push(s);
            }
        }
        let next = Cursor(u64::try_from(newest.max(1)).unwrap_or(1));
        let keep_after = newest.saturating_sub(overlap);
        recent.retain(|(_, t)| *t > keep_after);
        self.shared
            .tails
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(next.0, recent);
        Ok((out, next))
    }

    /// A snapshot for the diagnostics page.
    pub fn status(&self) -> InfluxStatus {
        let s = &self.shared;
        let m = &s.spool.mirrors;
        let c = &s.counters;
        let last = c.last();
        let bytes = m.bytes.load(Ordering::Relaxed);
        let max = s.config.spool.max_bytes;
        InfluxStatus {
            target: s.client.label.clone(),
            api: api_name(&s.config.api),
            connected: c.connected.load(Ordering::Relaxed),
            spooled_samples: m.count.load(Ordering::Relaxed),
            spooled_bytes: bytes,
            spool_capacity_bytes: max,
            spool_fill: bytes as f64 / max as f64,
            oldest_spooled_age_s: m
                .oldest_enqueued()
                .map(|t| (Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0),
            alert: c.alert.load(Ordering::Relaxed),
            spool_full: c.spool_full.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            quarantined: m.quarantined.load(Ordering::Relaxed),
            gaps: m.gaps.load(Ordering::Relaxed),
            refused_samples: c.refused.load(Ordering::Relaxed),
            dropped_samples: m.dropped.load(Ordering::Relaxed),
            last_error: last.error,
            last_error_at: last.error_at,
            last_forward_at: last.forward_at,
        }
    }

    /// Gap records: when the spool was full, what was refused or dropped.
    pub async fn gaps(&self) -> Result<Vec<SpoolGap>, InfluxError> {
        let spool = self.shared.spool.clone();
        tokio::task::spawn_blocking(move || spool.gaps()).await?
    }

    /// Points InfluxDB refused as bad, oldest first.
    pub async fn quarantined(&self) -> Result<Vec<QuarantinedPoint>, InfluxError> {
        let spool = self.shared.spool.clone();
        tokio::task::spawn_blocking(move || spool.quarantined()).await?
    }

    /// Waits until InfluxDB has confirmed everything spooled so far (the spool is empty)
    /// or `timeout` passes.
    pub async fn flush(&self, timeout: Duration) -> Result<(), InfluxError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.shared.spool.mirrors.count.load(Ordering::Relaxed);
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(InfluxError::Timeout(format!(
                    "{left} samples still spooled after {timeout:?}; last error: {}",
                    self.shared.counters.last().error.unwrap_or_default()
                )));
            }
            self.shared.new_data.notify_one();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the forwarder where it is, without draining, and releases the spool file so
    /// it can be opened again. What InfluxDB has not confirmed stays spooled for the next
    /// open, which sends it again (InfluxDB overwrites what it already has).
    pub async fn close(self) {
        let handle = self
            .forwarder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            h.abort();
            let _ = h.await;
        }
        // A spool commit already running on the blocking pool still holds the spool;
        // wait for it so a reopen does not find the file locked.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Arc::strong_count(&self.shared.spool) > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for InfluxHistorian {
    fn drop(&mut self) {
        if let Some(h) = self
            .forwarder
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
    }
}

impl Shared {
    fn retention_policy(&self) -> Option<&str> {
        match &self.config.api {
            InfluxApi::V1 {
                retention_policy, ..
            } => retention_policy.as_deref(),
            InfluxApi::V2 { .. } => None,
        }
    }

    /// Adds the batch's tags (and value types) to the catalog, once per distinct tag.
    fn learn(&self, batch: &[Sample]) {
        let mut seen: HashSet<(*const Tag, Kind)> = HashSet::new();
        let fresh: Vec<(String, &Arc<Tag>, Kind)> = {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            batch
                .iter()
                .filter_map(|s| Some((s, Kind::of(&s.value)?)))
                .filter(|(s, kind)| seen.insert((Arc::as_ptr(&s.tag), *kind)))
                .map(|(s, kind)| (s.tag.path(), &s.tag, kind))
                .filter(|(path, _, kind)| !catalog.knows(path, *kind))
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        for (path, tag, kind) in fresh {
            catalog.learn(path, tag, Some(kind));
        }
    }

    /// The tag a tail row belongs to: from the catalog by its path, else built from the
    /// row (and remembered).
    fn tag_of_row(&self, row: &Row) -> Option<(Arc<Tag>, Option<Kind>)> {
        let tag = |k: &str| {
            row.tags
                .get(k)
                .map(|v| decode_tag_text(v).into_owned())
                .unwrap_or_default()
        };
        let (site, area, line, equipment, signal) = (
            tag("site"),
            tag("area"),
            tag("line"),
            tag("equipment"),
            tag("signal"),
        );
        let path = format!("{site}/{area}/{line}/{equipment}/{signal}");
        {
            let catalog = self.catalog.read().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = catalog.get(&path) {
                return Some((k.tag.clone(), k.kind));
            }
        }
        let category = Category::ALL
            .into_iter()
            .find(|c| c.as_str() == row.measurement)?;
        let new = Arc::new(Tag {
            site,
            area,
            line,
            equipment,
            signal,
            category,
            unit: tag("unit"),
        });
        let mut catalog = self.catalog.write().unwrap_or_else(|e| e.into_inner());
        catalog.learn(path, &new, None);
        Some((new, None))
    }

    /// Raises the alert above the warning fraction; clears it once the spool is back
    /// under it (and writes are accepted).
    fn update_alert(&self) {
        let fill = self.spool.mirrors.bytes.load(Ordering::Relaxed) as f64
            / self.config.spool.max_bytes as f64;
        let warn_at = self.config.spool.warn_fraction;
        let c = &self.counters;
        if fill >= warn_at {
            if !c.alert.swap(true, Ordering::Relaxed) {
                warn!(
                    target = %self.client.label,
                    fill_pct = (fill * 100.0).round(),
                    warn_pct = (warn_at * 100.0).round(),
                    "spool above its warning level: InfluxDB is not keeping up"
                );
            }
        } else if !c.spool_full.load(Ordering::Relaxed) && c.alert.swap(false, Ordering::Relaxed) {
            info!(
                fill_pct = (fill * 100.0).round(),
                "spool back under its warning level"
            );
        }
    }
}

fn api_name(api: &InfluxApi) -> &'static str {
    match api {
        InfluxApi::V1 { .. } => "v1",
        InfluxApi::V2 { .. } => "v2",
    }
}

/// A row as a sample of `tag`. A point without any value field is not one of ours and is
/// skipped; one without `quality` (written by someone else) reads as Uncertain, since
/// nobody vouched for it.
fn to_sample(tag: &Arc<Tag>, kind: Option<Kind>, row: &Row) -> Option<Sample> {
    let value = if let Some(text) = &row.text {
        Value::Text(text.clone())
    } else if let Some(nf) = &row.nonfinite {
        Value::Float(match nf.as_str() {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => f64::NAN,
        })
    } else if row.value.is_none() && row.quality.is_some() {
        // Our own point of a status without a value: only its quality was written.
        Value::Null
    } else {
        let v = row.value?;
        match kind {
            Some(Kind::Int) if v.fract() == 0.0 && v.abs() < 9.2e18 => Value::Int(v as i64),
            Some(Kind::Bool) if v == 0.0 || v == 1.0 => Value::Bool(v == 1.0),
            _ => Value::Float(v),
        }
    };
    let quality = match row.quality {
        Some(q) => Quality(u32::try_from(q).unwrap_or(Quality::BAD.0)),
        None => Quality::UNCERTAIN,
    };
    let t = DateTime::from_timestamp_nanos(row.time_ns);
    Some(Sample {
        tag: tag.clone(),
        value,
        quality,
        source_ts: t,
        server_ts: row.server_ns.map(DateTime::from_timestamp_nanos),
        received_ts: row.received_ns.map_or(t, DateTime::from_timestamp_nanos),
        backfilled: row.backfilled,
    })
}

/// De-duplication state of tail readers, by the cursor handed to each.
#[derive(Debug, Default)]
struct Tails {
    by_cursor: HashMap<u64, HashSet<(String, i64)>>,
    order: VecDeque<u64>,
}

impl Tails {
    fn take(&mut self, cursor: u64) -> HashSet<(String, i64)> {
        self.order.retain(|c| *c != cursor);
        self.by_cursor.remove(&cursor).unwrap_or_default()
    }

    fn put(&mut self, cursor: u64, recent: HashSet<(String, i64)>) {
        self.order.retain(|c| *c != cursor);
        self.order.push_back(cursor);
        self.by_cursor.insert(cursor, recent);
        while self.order.len() > TAIL_READERS {
            if let Some(old) = self.order.pop_front() {
                self.by_cursor.remove(&old);
            }
        }
    }
}

#[async_trait::async_trait]
impl Historian for InfluxHistorian {
    async fn write(&self, batch: &[Sample]) -> Result<(), HistorianError> {
        self.write_samples(batch)
            .await
            .map_err(|e| e.into_write(batch.len()))
    }

    async fn query(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, HistorianError> {
        self.query_samples(path, from, to)
            .await
            .map_err(InfluxError::into_read)
    }

    async fn read_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), HistorianError> {
        self.read_samples_since(cursor, limit)
            .await
            .map_err(InfluxError::into_read)
    }

    async fn values_at(
        &self,
        paths: &[String],
        at: DateTime<Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<Option<Sample>>, HistorianError> {
        self.values_at_samples(paths, at, lookback)
            .await
            .map_err(InfluxError::into_read)
    }
}
