//! [`EmbeddedStore`]: samples in a redb file, durable per batch.
//!
//! Layout (all keys big-endian ordered by redb, so ranges are cheap):
//! - `series_by_path`: tag path → series id
//! - `series`: series id → the full [`Tag`] (postcard)
//! - `points`: (series id, source time ns) → value, quality, server and received time.
//!   Writing the same key again replaces the point: writes are idempotent.
//! - `arrivals`: sequence → (series id, source time ns). Every write appends here, so a
//!   reader tailing with a [`Cursor`] sees rewritten points again and merges them by key.
//! - `meta`: format version.

use std::{
    collections::HashMap,
    ops::Bound,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use chrono::{DateTime, Utc};
use redb::{
    Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::Serialize;
use tracing::{debug, info, warn};

use model::{Cursor, Historian, HistorianError, Sample, Tag};

use super::codec::{clamp_ns, from_ns, StoredPoint, FORMAT_VERSION, READABLE_VERSIONS};

const SERIES_BY_PATH: TableDefinition<'_, &str, u64> = TableDefinition::new("series_by_path");
const SERIES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("series");
const POINTS: TableDefinition<'_, (u64, i64), &[u8]> = TableDefinition::new("points");
const ARRIVALS: TableDefinition<'_, u64, (u64, i64)> = TableDefinition::new("arrivals");
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");

const FILE_NAME: &str = "historian.redb";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create historian folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open historian database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<redb::DatabaseError>,
    },
    #[error("historian database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("historian database {path} holds an unreadable {what}: {source}")]
    Corrupt {
        path: PathBuf,
        what: String,
        #[source]
        source: postcard::Error,
    },
    #[error(
        "historian database {path} has format version {found}; this build reads version {expected}"
    )]
    Version {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("historian task on {path} did not finish: {source}")]
    Task {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// Counts a status page can show. `points` counts distinct (tag, source time) keys;
/// `arrivals` counts writes, rewrites included, and equals the last cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub path: PathBuf,
    pub series: u64,
    pub points: u64,
    pub arrivals: u64,
    pub last_cursor: Cursor,
    pub file_bytes: u64,
}

/// The embedded historian. Cheap to clone; clones share one open database.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Database,
    path: PathBuf,
    /// Series known to be committed. Filled at open and after each commit, never before:
    /// an id in here is always on disk.
    series: RwLock<SeriesIndex>,
}

#[derive(Debug, Default)]
struct SeriesIndex {
    by_path: HashMap<String, u64>,
    by_id: HashMap<u64, Arc<Tag>>,
}

/// A sample with its key and record already encoded, so the blocking task owns no borrow.
struct Encoded {
    path: String,
    tag: Arc<Tag>,
    source_ns: i64,
    record: Vec<u8>,
}

impl EmbeddedStore {
    /// Opens (or creates) `dir/historian.redb`.
    ///
    /// Blocking: call it at start-up or from `spawn_blocking`. After a crash redb repairs the
    /// file on open, which takes longer the bigger the file is.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source: Box::new(source),
        })?;
        let inner = Inner {
            db,
            path,
            series: RwLock::new(SeriesIndex::default()),
        };
        inner.prepare()?;
        let index = inner.load_series()?;
        info!(path = %inner.path.display(), series = index.by_id.len(), "historian opened");
        *inner.series.write().unwrap_or_else(|e| e.into_inner()) = index;
        Ok(EmbeddedStore {
            inner: Arc::new(inner),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Every tag the store has samples of, ordered by path.
    pub fn series(&self) -> Vec<Arc<Tag>> {
        let index = self.inner.series.read().unwrap_or_else(|e| e.into_inner());
        let mut tags: Vec<(&String, Arc<Tag>)> = index
            .by_path
            .iter()
            .filter_map(|(path, id)| index.by_id.get(id).map(|t| (path, t.clone())))
            .collect();
        tags.sort_by(|a, b| a.0.cmp(b.0));
        tags.into_iter().map(|(_, t)| t).collect()
    }

    /// The newest sample (by source time) of one tag path, if any.
    pub async fn latest(&self, path: &str) -> Result<Option<Sample>, StoreError> {
        let paths = [path.to_string()];
        let newest = self
            .blocking(move |inner| {
                inner.latest_at(&paths, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC)
            })
            .await?;
        Ok(newest.into_iter().next().flatten())
    }

    /// [`Historian::values_at`] with the store's own error type.
    pub async fn values_at_samples(
        &self,
        paths: &[String],
        at: DateTime<Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<Option<Sample>>, StoreError> {
        let paths = paths.to_vec();
        self.blocking(move |inner| inner.latest_at(&paths, at - lookback, at))
            .await
    }

    pub async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.blocking(|inner| inner.stats()).await
    }

    /// [`Historian::write`] with the store's own error type.
    pub async fn write_samples(&self, batch: &[Sample]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let encoded = encode(batch, &self.inner.path)?;
        self.blocking(move |inner| inner.write(encoded)).await
    }

    /// [`Historian::query`] with the store's own error type.
    pub async fn query_samples(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StoreError> {
        let path = path.to_string();
        self.blocking(move |inner| inner.query(&path, from, to))
            .await
    }

    /// [`Historian::read_since`] with the store's own error type.
    pub async fn read_samples_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), StoreError> {
        self.blocking(move |inner| inner.read_since(cursor, limit))
            .await
    }

    /// Runs redb work off the async threads: a commit waits for fsync.
    async fn blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|source| StoreError::Task {
                path: self.inner.path.clone(),
                source,
            })?
    }
}

#[async_trait::async_trait]
impl Historian for EmbeddedStore {
    async fn write(&self, batch: &[Sample]) -> Result<(), HistorianError> {
        self.write_samples(batch)
            .await
            .map_err(|e| HistorianError::Write {
                count: batch.len(),
                source: Box::new(e),
            })
    }

    async fn query(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, HistorianError> {
        self.query_samples(path, from, to)
            .await
            .map_err(|e| HistorianError::Read {
                source: Box::new(e),
            })
    }

    async fn read_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), HistorianError> {
        self.read_samples_since(cursor, limit)
            .await
            .map_err(|e| HistorianError::Read {
                source: Box::new(e),
            })
    }

    async fn values_at(
        &self,
        paths: &[String],
        at: DateTime<Utc>,
        lookback: chrono::Duration,
    ) -> Result<Vec<Option<Sample>>, HistorianError> {
        self.values_at_samples(paths, at, lookback)
            .await
            .map_err(|e| HistorianError::Read {
                source: Box::new(e),
            })
    }
}

impl From<StoreError> for HistorianError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CreateDir { ref path, .. }
            | StoreError::Open { ref path, .. }
            | StoreError::Version { ref path, .. } => HistorianError::Open {
                location: path.display().to_string(),
                source: Box::new(e),
            },
            other => HistorianError::Read {
                source: Box::new(other),
            },
        }
    }
}

fn encode(batch: &[Sample], db_path: &Path) -> Result<Vec<Encoded>, StoreError> {
    batch
        .iter()
        .map(|s| {
            let point = StoredPoint::new(s);
            let record = postcard::to_stdvec(&point).map_err(|source| StoreError::Corrupt {
                path: db_path.to_path_buf(),
                what: format!("point of {} (encoding)", s.tag.path()),
                source,
            })?;
            Ok(Encoded {
                path: s.tag.path(),
                tag: s.tag.clone(),
                // Source times outside 1677..2262 cannot be keyed in nanoseconds; the OPC UA
                // source never emits them (it falls back to the receive time), so saturating
                // here only guards other writers.
                source_ns: clamp_ns(s.source_ts),
                record,
            })
        })
        .collect()
}

/// Maps any redb error to [`StoreError::Database`] naming the file.
trait AtPath<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: Into<redb::Error>> AtPath<T> for Result<T, E> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Database {
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        })
    }
}

impl Inner {
    /// Creates the tables (so readers never meet a missing one) and checks the format.
    fn prepare(&self) -> Result<(), StoreError> {
        let p = &self.path;
        let txn = self.db.begin_write().at(p)?;
        {
            txn.open_table(SERIES_BY_PATH).at(p)?;
            txn.open_table(SERIES).at(p)?;
            txn.open_table(POINTS).at(p)?;
            txn.open_table(ARRIVALS).at(p)?;
            let mut meta = txn.open_table(META).at(p)?;
            let found = meta.get("format_version").at(p)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert("format_version", FORMAT_VERSION).at(p)?;
                }
                Some(v) if v == FORMAT_VERSION => {}
                // Older records stay readable; new ones are written in the new format.
                Some(v) if READABLE_VERSIONS.contains(&v) => {
                    meta.insert("format_version", FORMAT_VERSION).at(p)?;
                }
                Some(found) => {
                    return Err(StoreError::Version {
                        path: p.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    })
                }
            }
        }
        txn.commit().at(p)
    }

    fn load_series(&self) -> Result<SeriesIndex, StoreError> {
        let p = &self.path;
        let txn = self.db.begin_read().at(p)?;
        let table = txn.open_table(SERIES).at(p)?;
        let mut index = SeriesIndex::default();
        for entry in table.iter().at(p)? {
            let (id, bytes) = entry.at(p)?;
            let id = id.value();
            let tag = self.decode_tag(id, bytes.value())?;
            index.by_path.insert(tag.path(), id);
            index.by_id.insert(id, Arc::new(tag));
        }
        Ok(index)
    }

    fn decode_tag(&self, id: u64, bytes: &[u8]) -> Result<Tag, StoreError> {
        postcard::from_bytes(bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("series record {id}"),
            source,
        })
    }

    fn decode_point(&self, id: u64, ns: i64, bytes: &[u8]) -> Result<StoredPoint, StoreError> {
        StoredPoint::decode(bytes).map_err(|source| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("point (series {id}, {})", from_ns(ns).to_rfc3339()),
            source,
        })
    }

    fn write(&self, batch: Vec<Encoded>) -> Result<(), StoreError> {
        let p = &self.path;
        let mut txn = self.db.begin_write().at(p)?;
        // The Historian contract: Ok means the batch survives a crash. Immediate is redb's
        // default, set here so that a change of default cannot weaken it silently.
        txn.set_durability(Durability::Immediate);
        let count = batch.len();
        let changed = self.write_in(&txn, batch)?;
        txn.commit().at(p)?;
        if !changed.is_empty() {
            let mut index = self.series.write().unwrap_or_else(|e| e.into_inner());
            for c in changed {
                index.by_path.insert(c.path, c.id);
                index.by_id.insert(c.id, c.tag);
            }
        }
        debug!(samples = count, "batch committed");
        Ok(())
    }

    /// Writes the batch inside `txn`; returns the series it created or changed, to publish
    /// in the index once the commit succeeded.
    fn write_in(
        &self,
        txn: &WriteTransaction,
        batch: Vec<Encoded>,
    ) -> Result<Vec<SeriesChange>, StoreError> {
        let p = &self.path;
        let mut series = SeriesTables::open(self, txn)?;
        let mut points = txn.open_table(POINTS).at(p)?;
        let mut arrivals = txn.open_table(ARRIVALS).at(p)?;
        let mut seq = arrivals.last().at(p)?.map(|(k, _)| k.value()).unwrap_or(0);
        for e in batch {
            let id = series.id_for(&e.path, &e.tag)?;
            points
                .insert((id, e.source_ns), e.record.as_slice())
                .at(p)?;
            seq += 1;
            arrivals.insert(seq, (id, e.source_ns)).at(p)?;
        }
        Ok(series.changed)
    }

    /// The tag of a series id: from the index, else from the series table of the reader's
    /// own snapshot (a commit can be visible a moment before the index is updated).
    fn tag_of(
        &self,
        id: u64,
        series: &impl ReadableTable<u64, &'static [u8]>,
        cache: &mut HashMap<u64, Arc<Tag>>,
    ) -> Result<Option<Arc<Tag>>, StoreError> {
        if let Some(t) = cache.get(&id) {
            return Ok(Some(t.clone()));
        }
        let from_index = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_id
            .get(&id)
            .cloned();
        let tag = match from_index {
            Some(t) => Some(t),
            None => match series.get(id).at(&self.path)? {
                Some(bytes) => Some(Arc::new(self.decode_tag(id, bytes.value())?)),
                None => None,
            },
        };
        if let Some(t) = &tag {
            cache.insert(id, t.clone());
        }
        Ok(tag)
    }

    fn sample(&self, tag: Arc<Tag>, id: u64, ns: i64, bytes: &[u8]) -> Result<Sample, StoreError> {
        let (value, quality, server_ts, received_ts, backfilled) =
            self.decode_point(id, ns, bytes)?.into_parts();
        Ok(Sample {
            tag,
            value,
            quality,
            source_ts: from_ns(ns),
            server_ts,
            received_ts,
            backfilled,
        })
    }

    fn series_id(
        &self,
        path: &str,
        txn: &redb::ReadTransaction,
    ) -> Result<Option<u64>, StoreError> {
        let cached = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_path
            .get(path)
            .copied();
        if cached.is_some() {
            return Ok(cached);
        }
        let table = txn.open_table(SERIES_BY_PATH).at(&self.path)?;
        let id = table.get(path).at(&self.path)?.map(|v| v.value());
        Ok(id)
    }

    fn query(
        &self,
        path: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Sample>, StoreError> {
        let p = &self.path;
        let (from_ns, to_ns) = (clamp_ns(from), clamp_ns(to));
        if from_ns >= to_ns {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().at(p)?;
        let Some(id) = self.series_id(path, &txn)? else {
            return Ok(Vec::new());
        };
        let series = txn.open_table(SERIES).at(p)?;
        let mut cache = HashMap::new();
        let Some(tag) = self.tag_of(id, &series, &mut cache)? else {
            return Ok(Vec::new());
        };
        let points = txn.open_table(POINTS).at(p)?;
        let mut out = Vec::new();
        for entry in points.range((id, from_ns)..(id, to_ns)).at(p)? {
            let (key, bytes) = entry.at(p)?;
            let (_, ns) = key.value();
            out.push(self.sample(tag.clone(), id, ns, bytes.value())?);
        }
        Ok(out)
    }

    /// Per path, the newest sample with `from <= source_ts <= at`, in one read transaction
    /// (a consistent picture of the plant at that moment).
    fn latest_at(
        &self,
        paths: &[String],
        from: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<Option<Sample>>, StoreError> {
        let p = &self.path;
        let (from_ns, at_ns) = (clamp_ns(from), clamp_ns(at));
        let txn = self.db.begin_read().at(p)?;
        let series = txn.open_table(SERIES).at(p)?;
        let points = txn.open_table(POINTS).at(p)?;
        let mut cache = HashMap::new();
        let mut out = Vec::with_capacity(paths.len());
        for path in paths {
            let Some(id) = self.series_id(path, &txn)? else {
                out.push(None);
                continue;
            };
            let Some(tag) = self.tag_of(id, &series, &mut cache)? else {
                out.push(None);
                continue;
            };
            let last = points
                .range((id, from_ns)..=(id, at_ns))
                .at(p)?
                .next_back()
                .transpose()
                .at(p)?;
            out.push(match last {
                Some((key, bytes)) => Some(self.sample(tag, id, key.value().1, bytes.value())?),
                None => None,
            });
        }
        Ok(out)
    }

    fn read_since(
        &self,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Sample>, Cursor), StoreError> {
        let p = &self.path;
        if limit == 0 {
            return Ok((Vec::new(), cursor));
        }
        let txn = self.db.begin_read().at(p)?;
        let arrivals = txn.open_table(ARRIVALS).at(p)?;
        let points = txn.open_table(POINTS).at(p)?;
        let series = txn.open_table(SERIES).at(p)?;
        let mut cache = HashMap::new();
        let mut out = Vec::with_capacity(limit.min(16_384));
        let mut last = cursor;
        let range: (Bound<u64>, Bound<u64>) = (Bound::Excluded(cursor.0), Bound::Unbounded);
        for entry in arrivals.range(range).at(p)?.take(limit) {
            let (seq, key) = entry.at(p)?;
            let seq = seq.value();
            let (id, ns) = key.value();
            last = Cursor(seq);
            // The log points at the point's current record: a reader behind a rewrite gets
            // the newest value twice, which an idempotent merge absorbs.
            let Some(bytes) = points.get((id, ns)).at(p)? else {
                continue;
            };
            let Some(tag) = self.tag_of(id, &series, &mut cache)? else {
                warn!(series = id, "arrival of a series with no record; skipped");
                continue;
            };
            out.push(self.sample(tag, id, ns, bytes.value())?);
        }
        Ok((out, last))
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let p = &self.path;
        let txn = self.db.begin_read().at(p)?;
        let series = txn.open_table(SERIES).at(p)?.len().at(p)?;
        let points = txn.open_table(POINTS).at(p)?.len().at(p)?;
        let arrivals_table = txn.open_table(ARRIVALS).at(p)?;
        let arrivals = arrivals_table.len().at(p)?;
        let last = arrivals_table
            .last()
            .at(p)?
            .map(|(k, _)| k.value())
            .unwrap_or(0);
        let file_bytes = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        Ok(StoreStats {
            path: p.clone(),
            series,
            points,
            arrivals,
            last_cursor: Cursor(last),
            file_bytes,
        })
    }
}

/// A series created or re-described by a write, for the index once committed.
struct SeriesChange {
    path: String,
    id: u64,
    tag: Arc<Tag>,
}

/// The series tables inside one write transaction: tag path → series id, creating the
/// series or updating its description as needed.
struct SeriesTables<'a, 't> {
    store: &'a Inner,
    by_path: redb::Table<'t, &'static str, u64>,
    series: redb::Table<'t, u64, &'static [u8]>,
    next_id: u64,
    /// Resolved in this transaction: path → (id, description as stored now).
    touched: HashMap<String, (u64, Arc<Tag>)>,
    changed: Vec<SeriesChange>,
}

impl<'a, 't> SeriesTables<'a, 't> {
    fn open(store: &'a Inner, txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let p = &store.path;
        let by_path = txn.open_table(SERIES_BY_PATH).at(p)?;
        let series = txn.open_table(SERIES).at(p)?;
        let next_id = series
            .last()
            .at(p)?
            .map(|(k, _)| k.value() + 1)
            .unwrap_or(1);
        Ok(SeriesTables {
            store,
            by_path,
            series,
            next_id,
            touched: HashMap::new(),
            changed: Vec::new(),
        })
    }

    fn id_for(&mut self, path: &str, tag: &Arc<Tag>) -> Result<u64, StoreError> {
        let known = match self.touched.get(path) {
            Some((id, stored)) if Arc::ptr_eq(stored, tag) || **stored == **tag => {
                return Ok(*id);
            }
            Some((id, stored)) => Some((*id, stored.clone())),
            None => self.lookup(path)?,
        };
        let id = match known {
            Some((id, stored)) if *stored == **tag => id,
            Some((id, stored)) => {
                // Same path, new unit or category: the newest description wins, but a
                // change of meaning must not pass unnoticed.
                warn!(
                    tag = %path,
                    old_unit = %stored.unit, new_unit = %tag.unit,
                    old_category = %stored.category, new_category = %tag.category,
                    "tag description changed; storing the new one"
                );
                self.put(path, id, tag)?;
                id
            }
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.by_path.insert(path, id).at(&self.store.path)?;
                self.put(path, id, tag)?;
                id
            }
        };
        self.touched.insert(path.to_string(), (id, tag.clone()));
        Ok(id)
    }

    /// The series of `path` as committed: from the index, else from the tables.
    fn lookup(&self, path: &str) -> Result<Option<(u64, Arc<Tag>)>, StoreError> {
        let indexed = {
            let index = self.store.series.read().unwrap_or_else(|e| e.into_inner());
            index
                .by_path
                .get(path)
                .and_then(|id| index.by_id.get(id).map(|t| (*id, t.clone())))
        };
        if indexed.is_some() {
            return Ok(indexed);
        }
        let p = &self.store.path;
        let Some(id) = self.by_path.get(path).at(p)?.map(|v| v.value()) else {
            return Ok(None);
        };
        match self.series.get(id).at(p)? {
            Some(bytes) => Ok(Some((
                id,
                Arc::new(self.store.decode_tag(id, bytes.value())?),
            ))),
            None => Ok(None),
        }
    }

    fn put(&mut self, path: &str, id: u64, tag: &Arc<Tag>) -> Result<(), StoreError> {
        let bytes = postcard::to_stdvec(&**tag).map_err(|source| StoreError::Corrupt {
            path: self.store.path.clone(),
            what: format!("series record {id} (encoding)"),
            source,
        })?;
        self.series
            .insert(id, bytes.as_slice())
            .at(&self.store.path)?;
        self.changed.push(SeriesChange {
            path: path.to_string(),
            id,
            tag: tag.clone(),
        });
        Ok(())
    }
}
