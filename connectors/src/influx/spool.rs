//! The store-and-forward spool: line protocol waiting for InfluxDB, in a redb file.
//!
//! Layout:
//! - `entries`: sequence → (enqueue time ns, one line of line protocol). Appended by
//!   `write` (fsync before it returns: that is the acknowledgement), read from the front
//!   and deleted by the forwarder only after InfluxDB confirmed them.
//! - `quarantine`: id → a point InfluxDB refused as bad (JSON [`QuarantinedPoint`]).
//! - `gaps`: id → a record of samples refused or dropped because the spool was full
//!   (JSON [`SpoolGap`]).
//! - `meta`: format version, next sequence, and the entry count and byte total, kept in
//!   the same transactions as the entries so they stay exact across crashes.
//!
//! Every function here blocks (commits wait for fsync): call from `spawn_blocking`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Mutex,
    },
};

use chrono::{DateTime, Utc};
use redb::{Database, Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::{
    config::FullPolicy,
    error::{AtPath, InfluxError},
    line_protocol::{path_of_series, series_and_time},
};

const ENTRIES: TableDefinition<'_, u64, (i64, &[u8])> = TableDefinition::new("entries");
const QUARANTINE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("quarantine");
const GAPS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("gaps");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

const FILE_NAME: &str = "spool.redb";
const FORMAT_VERSION: u64 = 1;
/// Bytes counted per entry besides its line: the key and the enqueue time.
pub(crate) const ENTRY_OVERHEAD: u64 = 16;
/// Most distinct series named in one gap record; the rest are counted.
const GAP_MAX_SERIES: usize = 100;
const NO_TIME: i64 = i64::MIN;
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// One spooled line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) seq: u64,
    pub(crate) line: String,
}

impl Entry {
    pub(crate) fn size(&self) -> u64 {
        self.line.len() as u64 + ENTRY_OVERHEAD
    }
}

/// A point InfluxDB refused as bad, kept so that it can be inspected and repaired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedPoint {
    pub id: u64,
    /// Measurement and tags as written (the series key).
    pub series: String,
    pub line: String,
    /// InfluxDB's answer: status and body.
    pub status: u16,
    pub error: String,
    pub quarantined_at: DateTime<Utc>,
}

/// Samples the spool could not keep because it was full: never a silent loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolGap {
    pub id: u64,
    pub policy: FullPolicy,
    /// `false` (block): the samples were refused, not acknowledged, and stay with the
    /// caller; the record says when the spool stopped taking data. `true` (drop_oldest):
    /// spooled samples were deleted and are lost.
    pub dropped: bool,
    pub reason: String,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// Refused write calls (block) or deletions (drop_oldest) in this episode.
    pub events: u64,
    /// Samples in them; a batch refused and retried counts each time.
    pub samples: u64,
    /// Source-time range of the samples concerned.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Tag paths (or series keys) concerned, at most 100; `more_series` counts the rest.
    pub series: Vec<String>,
    pub more_series: u64,
}

/// What a batch offered to [`Spool::append`] covers, for a gap record if it is refused.
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchInfo {
    pub(crate) series: BTreeSet<String>,
    pub(crate) from_ns: Option<i64>,
    pub(crate) to_ns: Option<i64>,
    pub(crate) samples: u64,
}

impl BatchInfo {
    pub(crate) fn add(&mut self, series: &str, ns: Option<i64>) {
        self.samples += 1;
        if self.series.len() < GAP_MAX_SERIES && !self.series.contains(series) {
            self.series.insert(series.to_string());
        }
        if let Some(ns) = ns {
            self.from_ns = Some(self.from_ns.map_or(ns, |f| f.min(ns)));
            self.to_ns = Some(self.to_ns.map_or(ns, |t| t.max(ns)));
        }
    }
}

/// Entry count, bytes, oldest enqueue time and dropped total after a stored append.
type Totals = (u64, u64, Option<i64>, u64);

pub(crate) enum Appended {
    Stored,
    /// Not stored: the spool holds `spooled_bytes` and the batch needs `needed`.
    Full {
        spooled_bytes: u64,
    },
}

/// Counters mirrored from `meta` after each commit, for the status page.
#[derive(Debug, Default)]
pub(crate) struct Mirrors {
    pub(crate) count: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) quarantined: AtomicU64,
    pub(crate) gaps: AtomicU64,
    pub(crate) dropped: AtomicU64,
    oldest_ns: AtomicI64,
}

impl Mirrors {
    pub(crate) fn oldest_enqueued(&self) -> Option<DateTime<Utc>> {
        match self.oldest_ns.load(Ordering::Relaxed) {
            NO_TIME => None,
            ns => Some(DateTime::from_timestamp_nanos(ns)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Spool {
    db: Database,
    path: PathBuf,
    max_bytes: u64,
    policy: FullPolicy,
    pub(crate) mirrors: Mirrors,
    /// Held across each write transaction (redb runs them one at a time anyway) so the
    /// mirrors are updated in commit order. Holds the gap record of the running refusal
    /// episode, closed by the next write that is stored.
    writing: Mutex<Option<u64>>,
}

impl Spool {
    pub(crate) fn open(
        dir: &Path,
        max_bytes: u64,
        policy: FullPolicy,
        cache_bytes: usize,
    ) -> Result<Self, InfluxError> {
        std::fs::create_dir_all(dir).map_err(|source| InfluxError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        // A historian dropped a moment ago in this process may still be releasing the file
        // (its forwarder is cancelled asynchronously): give it a few seconds.
        let deadline = std::time::Instant::now() + OPEN_WAIT;
        let db = loop {
            match Database::builder()
                .set_cache_size(cache_bytes)
                .create(&path)
            {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(InfluxError::Open {
                        path,
                        source: Box::new(source),
                    })
                }
            }
        };
        let spool = Spool {
            db,
            path,
            max_bytes,
            policy,
            mirrors: Mirrors::default(),
            writing: Mutex::new(None),
        };
        spool.prepare()?;
        info!(
            path = %spool.path.display(),
            samples = spool.mirrors.count.load(Ordering::Relaxed),
            bytes = spool.mirrors.bytes.load(Ordering::Relaxed),
            "spool opened"
        );
        Ok(spool)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self) -> Result<(), InfluxError> {
        let p = &self.path;
        let txn = self.db.begin_write().at(p)?;
        {
            let entries = txn.open_table(ENTRIES).at(p)?;
            let quarantine = txn.open_table(QUARANTINE).at(p)?;
            let gaps = txn.open_table(GAPS).at(p)?;
            let mut meta = txn.open_table(META).at(p)?;
            let found = meta.get("format_version").at(p)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION).at(p)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(InfluxError::Version {
                        path: p.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    })
                }
            }
            let m = &self.mirrors;
            m.count.store(get(&meta, "count", p)?, Ordering::Relaxed);
            m.bytes.store(get(&meta, "bytes", p)?, Ordering::Relaxed);
            m.dropped
                .store(get(&meta, "dropped", p)?, Ordering::Relaxed);
            m.quarantined.store(
                redb::ReadableTableMetadata::len(&quarantine).at(p)?,
                Ordering::Relaxed,
            );
            m.gaps.store(
                redb::ReadableTableMetadata::len(&gaps).at(p)?,
                Ordering::Relaxed,
            );
            let oldest = entries.first().at(p)?.map(|(_, v)| v.value().0);
            m.oldest_ns
                .store(oldest.unwrap_or(NO_TIME), Ordering::Relaxed);
        }
        txn.commit().at(p)
    }

    /// Stores `lines` durably, in order, after everything spooled before; or, when they do
    /// not fit, applies the full policy. `Ok(Stored)` means fsynced.
    pub(crate) fn append(&self, lines: &[String]) -> Result<Appended, InfluxError> {
        let p = &self.path;
        let needed: u64 = lines.iter().map(|l| l.len() as u64 + ENTRY_OVERHEAD).sum();
        let mut open_gap = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = self.db.begin_write().at(p)?;
        // The acknowledgement: the batch survives a crash once this commit returns.
        txn.set_durability(Durability::Immediate);
        let now_ns = Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let stored = self.append_in(&txn, lines, needed, now_ns)?;
        let Some((count, bytes, oldest, dropped)) = stored else {
            let spooled_bytes = self.mirrors.bytes.load(Ordering::Relaxed);
            txn.abort().at(p)?;
            return Ok(Appended::Full { spooled_bytes });
        };
        txn.commit().at(p)?;
        let m = &self.mirrors;
        m.count.store(count, Ordering::Relaxed);
        m.bytes.store(bytes, Ordering::Relaxed);
        m.oldest_ns
            .store(oldest.unwrap_or(NO_TIME), Ordering::Relaxed);
        if dropped > m.dropped.swap(dropped, Ordering::Relaxed) {
            m.gaps.store(self.count_gaps()?, Ordering::Relaxed);
        }
        if let Some(id) = open_gap.take() {
            info!(
                gap = id,
                "spool accepts writes again; refusal episode closed"
            );
        }
        Ok(Appended::Stored)
    }

    /// The body of [`Spool::append`]: `None` if the lines do not fit (block policy, or a
    /// batch bigger than the whole spool), else the new count, bytes, oldest enqueue time
    /// and dropped total.
    fn append_in(
        &self,
        txn: &redb::WriteTransaction,
        lines: &[String],
        needed: u64,
        now_ns: i64,
    ) -> Result<Option<Totals>, InfluxError> {
        let p = &self.path;
        let mut entries = txn.open_table(ENTRIES).at(p)?;
        let mut meta = txn.open_table(META).at(p)?;
        let mut c = get(&meta, "count", p)?;
        let mut b = get(&meta, "bytes", p)?;
        let mut dropped = get(&meta, "dropped", p)?;
        if b + needed > self.max_bytes {
            if needed > self.max_bytes || self.policy == FullPolicy::Block {
                return Ok(None);
            }
            // drop_oldest: make room from the front and say exactly what went.
            let mut gone = BatchInfo::default();
            while b + needed > self.max_bytes {
                let Some((_, v)) = entries.pop_first().at(p)? else {
                    break;
                };
                let (_, line) = v.value();
                let line = String::from_utf8_lossy(line);
                let (series, ns) = series_and_time(&line);
                // Samples are named by tag path, as in refusals; raw points by series key.
                match path_of_series(series) {
                    Some(path) => gone.add(&path, ns),
                    None => gone.add(series, ns),
                }
                b = b.saturating_sub(line.len() as u64 + ENTRY_OVERHEAD);
                c = c.saturating_sub(1);
            }
            dropped += gone.samples;
            warn!(
                samples = gone.samples,
                series = gone.series.len(),
                "spool full: dropped the oldest samples (policy drop_oldest); gap recorded"
            );
            let mut gaps = txn.open_table(GAPS).at(p)?;
            upsert_gap(
                &mut gaps,
                p,
                None,
                FullPolicy::DropOldest,
                "spool full: oldest samples deleted to make room",
                &gone,
            )?;
            meta.insert("dropped", dropped).at(p)?;
        }
        let mut seq = get(&meta, "next_seq", p)?.max(1);
        for line in lines {
            entries.insert(seq, (now_ns, line.as_bytes())).at(p)?;
            seq += 1;
        }
        c += lines.len() as u64;
        b += needed;
        meta.insert("next_seq", seq).at(p)?;
        meta.insert("count", c).at(p)?;
        meta.insert("bytes", b).at(p)?;
        let oldest = entries.first().at(p)?.map(|(_, v)| v.value().0);
        Ok(Some((c, b, oldest, dropped)))
    }

    /// Records that a batch was refused (block policy): extends the episode's gap record.
    pub(crate) fn record_refusal(&self, info: &BatchInfo, reason: &str) -> Result<(), InfluxError> {
        let p = &self.path;
        let mut open_gap = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = self.db.begin_write().at(p)?;
        txn.set_durability(Durability::Immediate);
        let id = {
            let mut gaps = txn.open_table(GAPS).at(p)?;
            upsert_gap(&mut gaps, p, *open_gap, FullPolicy::Block, reason, info)?
        };
        txn.commit().at(p)?;
        *open_gap = Some(id);
        self.mirrors
            .gaps
            .store(self.count_gaps()?, Ordering::Relaxed);
        Ok(())
    }

    fn count_gaps(&self) -> Result<u64, InfluxError> {
        let p = &self.path;
        let txn = self.db.begin_read().at(p)?;
        let gaps = txn.open_table(GAPS).at(p)?;
        redb::ReadableTableMetadata::len(&gaps).at(p)
    }

    /// The oldest spooled lines, at most `max_lines` and (unless the first alone is
    /// bigger) `max_bytes` of line text.
    pub(crate) fn peek(
        &self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, InfluxError> {
        let p = &self.path;
        let txn = self.db.begin_read().at(p)?;
        let entries = txn.open_table(ENTRIES).at(p)?;
        let mut out = Vec::with_capacity(max_lines.min(65_536));
        let mut total = 0usize;
        for item in entries.iter().at(p)? {
            let (k, v) = item.at(p)?;
            let (_, line) = v.value();
            if !out.is_empty() && (out.len() >= max_lines || total + line.len() > max_bytes) {
                break;
            }
            total += line.len() + 1;
            out.push(Entry {
                seq: k.value(),
                // Lines are written from Rust strings; lossy only guards a damaged file.
                line: String::from_utf8_lossy(line).into_owned(),
            });
        }
        Ok(out)
    }

    /// Deletes what InfluxDB confirmed and moves what it refused as bad into quarantine,
    /// in one transaction. Not fsynced on its own: if a crash loses it, the lines come
    /// back and are sent again, which InfluxDB absorbs (same series and time overwrite).
    pub(crate) fn settle(
        &self,
        confirmed: &[Entry],
        refused: &[(Entry, u16, String)],
    ) -> Result<(), InfluxError> {
        if confirmed.is_empty() && refused.is_empty() {
            return Ok(());
        }
        let p = &self.path;
        let _order = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = self.db.begin_write().at(p)?;
        txn.set_durability(Durability::Eventual);
        let (count, bytes, oldest, quarantined);
        {
            let mut entries = txn.open_table(ENTRIES).at(p)?;
            let mut quarantine = txn.open_table(QUARANTINE).at(p)?;
            let mut meta = txn.open_table(META).at(p)?;
            let mut c = get(&meta, "count", p)?;
            let mut b = get(&meta, "bytes", p)?;
            for e in confirmed {
                if entries.remove(e.seq).at(p)?.is_some() {
                    c = c.saturating_sub(1);
                    b = b.saturating_sub(e.size());
                }
            }
            let mut next_q = quarantine
                .last()
                .at(p)?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            let now = Utc::now();
            for (e, status, error) in refused {
                if entries.remove(e.seq).at(p)?.is_none() {
                    continue;
                }
                c = c.saturating_sub(1);
                b = b.saturating_sub(e.size());
                let (series, _) = series_and_time(&e.line);
                let record = QuarantinedPoint {
                    id: next_q,
                    series: series.to_string(),
                    line: e.line.clone(),
                    status: *status,
                    error: error.clone(),
                    quarantined_at: now,
                };
                let json = serde_json::to_vec(&record).map_err(|source| InfluxError::Corrupt {
                    path: p.clone(),
                    what: "quarantine record (encoding)".into(),
                    source,
                })?;
                quarantine.insert(next_q, json.as_slice()).at(p)?;
                next_q += 1;
            }
            meta.insert("count", c).at(p)?;
            meta.insert("bytes", b).at(p)?;
            oldest = entries.first().at(p)?.map(|(_, v)| v.value().0);
            quarantined = redb::ReadableTableMetadata::len(&quarantine).at(p)?;
            count = c;
            bytes = b;
        }
        txn.commit().at(p)?;
        let m = &self.mirrors;
        m.count.store(count, Ordering::Relaxed);
        m.bytes.store(bytes, Ordering::Relaxed);
        m.quarantined.store(quarantined, Ordering::Relaxed);
        m.oldest_ns
            .store(oldest.unwrap_or(NO_TIME), Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn gaps(&self) -> Result<Vec<SpoolGap>, InfluxError> {
        self.read_json(GAPS, "gap record")
    }

    pub(crate) fn quarantined(&self) -> Result<Vec<QuarantinedPoint>, InfluxError> {
        self.read_json(QUARANTINE, "quarantine record")
    }

    fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        table: TableDefinition<'_, u64, &[u8]>,
        what: &str,
    ) -> Result<Vec<T>, InfluxError> {
        let p = &self.path;
        let txn = self.db.begin_read().at(p)?;
        let t = txn.open_table(table).at(p)?;
        let mut out = Vec::new();
        for item in t.iter().at(p)? {
            let (k, v) = item.at(p)?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| InfluxError::Corrupt {
                    path: p.clone(),
                    what: format!("{what} {}", k.value()),
                    source,
                })?,
            );
        }
        Ok(out)
    }
}

fn get(
    meta: &impl ReadableTable<&'static str, u64>,
    key: &str,
    p: &Path,
) -> Result<u64, InfluxError> {
    Ok(meta.get(key).at(p)?.map(|v| v.value()).unwrap_or(0))
}

/// Creates a gap record, or extends record `id` with `info`. Returns its id.
fn upsert_gap(
    gaps: &mut redb::Table<'_, u64, &'static [u8]>,
    p: &Path,
    id: Option<u64>,
    policy: FullPolicy,
    reason: &str,
    info: &BatchInfo,
) -> Result<u64, InfluxError> {
    let corrupt = |what: String, source| InfluxError::Corrupt {
        path: p.to_path_buf(),
        what,
        source,
    };
    let now = Utc::now();
    let existing: Option<SpoolGap> = match id {
        Some(id) => match gaps.get(id).at(p)? {
            Some(v) => Some(
                serde_json::from_slice(v.value())
                    .map_err(|e| corrupt(format!("gap record {id}"), e))?,
            ),
            None => None,
        },
        None => None,
    };
    let mut gap = match existing {
        Some(g) => g,
        None => SpoolGap {
            id: gaps.last().at(p)?.map(|(k, _)| k.value() + 1).unwrap_or(1),
            policy,
            dropped: policy == FullPolicy::DropOldest,
            reason: reason.to_string(),
            first_at: now,
            last_at: now,
            events: 0,
            samples: 0,
            from: None,
            to: None,
            series: Vec::new(),
            more_series: 0,
        },
    };
    gap.last_at = now;
    gap.events += 1;
    gap.samples += info.samples;
    let from = info.from_ns.map(DateTime::from_timestamp_nanos);
    let to = info.to_ns.map(DateTime::from_timestamp_nanos);
    gap.from = match (gap.from, from) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    gap.to = match (gap.to, to) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    for s in &info.series {
        if gap.series.iter().any(|known| known == s) {
            continue;
        }
        if gap.series.len() < GAP_MAX_SERIES {
            gap.series.push(s.clone());
        } else {
            gap.more_series += 1;
        }
    }
    let json = serde_json::to_vec(&gap).map_err(|e| corrupt("gap record (encoding)".into(), e))?;
    gaps.insert(gap.id, json.as_slice()).at(p)?;
    Ok(gap.id)
}
