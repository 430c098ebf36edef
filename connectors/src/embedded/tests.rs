use std::{process::Command, sync::Arc};

use chrono::{DateTime, Duration, TimeZone, Utc};
use model::{Category, Cursor, Historian, Quality, Sample, Tag, Value};

use super::{EmbeddedStore, StoreError};

fn tag(signal: &str) -> Arc<Tag> {
    Arc::new(Tag {
        site: "anhui".into(),
        area: "osd".into(),
        line: "line-1".into(),
        equipment: "press-01".into(),
        signal: signal.into(),
        category: Category::Machine,
        unit: "kN".into(),
    })
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap()
}

fn at(tag: &Arc<Tag>, ms: i64, value: Value) -> Sample {
    let ts = t0() + Duration::milliseconds(ms);
    Sample {
        tag: tag.clone(),
        value,
        quality: Quality::GOOD,
        source_ts: ts,
        server_ts: Some(ts + Duration::milliseconds(1)),
        received_ts: ts + Duration::milliseconds(3),
        backfilled: false,
    }
}

fn series(tag: &Arc<Tag>, n: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| at(tag, i * 100, Value::Float(i as f64 * 0.5)))
        .collect()
}

async fn all(store: &EmbeddedStore, tag: &Arc<Tag>) -> Vec<Sample> {
    store
        .query(
            &tag.path(),
            t0() - Duration::days(1),
            t0() + Duration::days(1),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn reopen_after_drop_returns_everything() {
    let dir = tempfile::tempdir().unwrap();
    let force = tag("compression_force");
    let state = tag("state");
    let mut written = series(&force, 50);
    written.push(at(&state, 0, Value::Text("EXECUTE".into())));
    written.push(at(&state, 10, Value::Bool(true)));
    written.push(Sample {
        quality: Quality::BAD_COMMUNICATION_ERROR,
        server_ts: None,
        ..at(&state, 20, Value::Int(-7))
    });
    written.push(Sample {
        quality: Quality(0x808C_0000), // BadSensorFailure: a status with no value
        ..at(&state, 30, Value::Null)
    });
    written.push(Sample {
        backfilled: true,
        ..at(&state, 40, Value::Int(8))
    });
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.write(&written[..30]).await.unwrap();
        store.write(&written[30..]).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(all(&store, &force).await, written[..50].to_vec());
    assert_eq!(all(&store, &state).await, written[50..].to_vec());
    let paths: Vec<String> = store.series().iter().map(|t| t.path()).collect();
    assert_eq!(paths, vec![force.path(), state.path()]);
    assert_eq!(
        *store.series()[1],
        *state,
        "the full tag survives, not just its path"
    );
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.series, stats.points, stats.arrivals), (2, 55, 55));
    assert_eq!(stats.last_cursor, Cursor(55));
}

#[tokio::test]
async fn rewriting_a_point_replaces_it_and_logs_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let force = tag("compression_force");
    store.write(&series(&force, 3)).await.unwrap();
    let corrected = Sample {
        quality: Quality::UNCERTAIN,
        ..at(&force, 100, Value::Float(42.0))
    };
    store.write(std::slice::from_ref(&corrected)).await.unwrap();

    let stored = all(&store, &force).await;
    assert_eq!(stored.len(), 3, "same tag and source time replaces");
    assert_eq!(stored[1], corrected);

    let (tail, cursor) = store.read_since(Cursor::default(), 100).await.unwrap();
    assert_eq!(tail.len(), 4, "the rewrite appears again in arrival order");
    assert_eq!(tail[3], corrected);
    assert_eq!(cursor, Cursor(4));
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.points, stats.arrivals), (3, 4));
}

#[tokio::test]
async fn query_includes_from_and_excludes_to_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let force = tag("compression_force");
    let other = tag("speed");
    let mut batch = series(&force, 10);
    batch.reverse(); // arrival order must not matter for queries
    batch.extend(series(&other, 10));
    store.write(&batch).await.unwrap();

    let from = t0() + Duration::milliseconds(200);
    let to = t0() + Duration::milliseconds(500);
    let got = store.query(&force.path(), from, to).await.unwrap();
    let times: Vec<i64> = got
        .iter()
        .map(|s| (s.source_ts - t0()).num_milliseconds())
        .collect();
    assert_eq!(times, vec![200, 300, 400]);
    assert!(got.iter().all(|s| s.tag == force));

    assert!(store
        .query(&force.path(), to, from)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .query(&force.path(), from, from)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .query("anhui/osd/line-1/press-01/unknown", from, to)
        .await
        .unwrap()
        .is_empty());
    // Bounds far outside the nanosecond range saturate instead of failing.
    let wide = store
        .query(
            &force.path(),
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
        )
        .await
        .unwrap();
    assert_eq!(wide.len(), 10);
}

#[tokio::test]
async fn read_since_pages_through_arrivals_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let a = tag("a");
    let b = tag("b");
    // Arrival order interleaves tags and runs backwards in source time.
    let mut written = Vec::new();
    for i in (0..25).rev() {
        written.push(at(&a, i * 10, Value::Int(i)));
        written.push(at(&b, i * 10, Value::Int(-i)));
    }
    store.write(&written[..20]).await.unwrap();
    store.write(&written[20..]).await.unwrap();

    let mut cursor = Cursor::default();
    let mut read = Vec::new();
    let mut pages = 0;
    loop {
        let (page, next) = store.read_since(cursor, 7).await.unwrap();
        if page.is_empty() {
            assert_eq!(next, cursor, "an empty page keeps the cursor");
            break;
        }
        assert!(page.len() <= 7);
        assert!(next > cursor);
        read.extend(page);
        cursor = next;
        pages += 1;
    }
    assert_eq!(pages, 8);
    assert_eq!(read, written);

    let (none, same) = store.read_since(cursor, 0).await.unwrap();
    assert!(none.is_empty() && same == cursor);

    // A reader that resumes later sees only what came after its cursor.
    store.write(&[at(&a, 1_000, Value::Int(99))]).await.unwrap();
    let (page, next) = store.read_since(cursor, 100).await.unwrap();
    assert_eq!(page, vec![at(&a, 1_000, Value::Int(99))]);
    assert_eq!(next, Cursor(51));
}

#[tokio::test]
async fn latest_is_the_newest_source_time_not_the_last_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let force = tag("compression_force");
    assert!(store.latest(&force.path()).await.unwrap().is_none());
    store
        .write(&[
            at(&force, 500, Value::Float(5.0)),
            at(&force, 100, Value::Float(1.0)),
        ])
        .await
        .unwrap();
    let latest = store.latest(&force.path()).await.unwrap().unwrap();
    assert_eq!(latest.value, Value::Float(5.0));
}

/// Time travel: the store's one-transaction answer must agree with what the trait's default
/// (one query per path, used by InfluxDB) makes of the same data.
#[tokio::test]
async fn values_at_a_past_moment_are_the_newest_at_or_before_it_within_the_lookback() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (force, speed, lot) = (tag("compression_force"), tag("speed"), tag("lot"));
    store
        .write(&[
            at(&force, 100, Value::Float(1.0)),
            at(&force, 200, Value::Float(2.0)),
            at(&force, 300, Value::Float(3.0)),
            at(&speed, 50, Value::Float(9.0)),
            at(&lot, 10, Value::Text("L-1".into())),
        ])
        .await
        .unwrap();
    let paths: Vec<String> = [&force, &speed, &lot]
        .iter()
        .map(|t| t.path())
        .chain(["nowhere/a/b/c/d".to_string()])
        .collect();
    let moment = t0() + Duration::milliseconds(200);
    let lookback = Duration::milliseconds(170);
    let got = store.values_at(&paths, moment, lookback).await.unwrap();
    let values: Vec<Option<Value>> = got
        .iter()
        .map(|s| s.as_ref().map(|s| s.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![Some(Value::Float(2.0)), Some(Value::Float(9.0)), None, None],
        "a sample stamped exactly at the moment belongs to it; one older than the lookback \
         (the lot, 190 ms before) and an unknown path have no value then"
    );

    struct ByQuery<'a>(&'a EmbeddedStore);
    impl std::fmt::Debug for ByQuery<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("ByQuery")
        }
    }
    #[async_trait::async_trait]
    impl Historian for ByQuery<'_> {
        async fn write(&self, batch: &[Sample]) -> Result<(), model::HistorianError> {
            self.0.write(batch).await
        }
        async fn query(
            &self,
            path: &str,
            from: DateTime<Utc>,
            to: DateTime<Utc>,
        ) -> Result<Vec<Sample>, model::HistorianError> {
            self.0.query(path, from, to).await
        }
        async fn read_since(
            &self,
            cursor: Cursor,
            limit: usize,
        ) -> Result<(Vec<Sample>, Cursor), model::HistorianError> {
            self.0.read_since(cursor, limit).await
        }
    }
    let by_query = ByQuery(&store)
        .values_at(&paths, moment, lookback)
        .await
        .unwrap();
    assert_eq!(by_query, got);
}

#[tokio::test]
async fn a_changed_tag_description_is_kept_under_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let force = tag("compression_force");
    let in_newton = Arc::new(Tag {
        unit: "N".into(),
        ..(*force).clone()
    });
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .write(&[at(&force, 0, Value::Float(1.0))])
            .await
            .unwrap();
        store
            .write(&[at(&in_newton, 100, Value::Float(1000.0))])
            .await
            .unwrap();
        assert_eq!(store.series().len(), 1);
        assert_eq!(store.series()[0].unit, "N");
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.series()[0].unit, "N");
    assert_eq!(all(&store, &force).await.len(), 2);
}

#[test]
fn a_second_open_of_the_same_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    let err = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("historian.redb"), "{err}");
}

const CRASH_DIR: &str = "PHARMATWIN_TEST_CRASH_DIR";
const CRASH_TEST: &str = "embedded::tests::committed_batches_survive_an_abort_of_the_writer";

/// The child side: writes ten batches, then dies without running any destructor, as a
/// `kill -9` would leave it.
fn write_then_abort(dir: &str) -> ! {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(std::path::Path::new(dir)).unwrap();
        let force = tag("compression_force");
        for b in 0..10 {
            let batch: Vec<Sample> = (0..100)
                .map(|i| at(&force, b * 100 + i, Value::Int(b * 100 + i)))
                .collect();
            store.write(&batch).await.unwrap();
        }
    });
    std::process::abort()
}

#[test]
fn committed_batches_survive_an_abort_of_the_writer() {
    if let Ok(dir) = std::env::var(CRASH_DIR) {
        write_then_abort(&dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let status = Command::new(exe)
        .args([CRASH_TEST, "--exact", "--test-threads=1", "--nocapture"])
        .env(CRASH_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child must have aborted");

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let force = tag("compression_force");
        let got = all(&store, &force).await;
        assert_eq!(got.len(), 1000);
        assert_eq!(got[999].value, Value::Int(999));
        let (tail, cursor) = store.read_since(Cursor::default(), 5_000).await.unwrap();
        assert_eq!((tail.len(), cursor), (1000, Cursor(1000)));
    });
}
