//! How samples are laid out on disk.
//!
//! Records are postcard-encoded. postcard cannot decode `#[serde(untagged)]` enums (it has
//! no self-describing format), so [`model::Value`] is mirrored by a tagged enum here; that
//! also keeps the file format independent of how the model chooses to print values as JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use model::{Quality, Sample, Value};

/// Bumped whenever a record layout below changes incompatibly.
pub(super) const FORMAT_VERSION: u64 = 2;
/// Older formats this code still reads (records are decoded by [`StoredPoint::decode`]).
pub(super) const READABLE_VERSIONS: [u64; 1] = [1];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum StoredValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// Appended last: postcard numbers variants, so older records keep their meaning.
    Null,
}

/// Everything about a point except the key (series id, source time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct StoredPoint {
    value: StoredValue,
    quality: u32,
    server_ts_ns: Option<i64>,
    received_ts_ns: i64,
    /// Appended in format 2; a format-1 record ends before it (see [`StoredPoint::decode`]).
    flags: u8,
}

/// The layout of format 1: a point without flags.
#[derive(Deserialize)]
struct StoredPointV1 {
    value: StoredValue,
    quality: u32,
    server_ts_ns: Option<i64>,
    received_ts_ns: i64,
}

const BACKFILLED: u8 = 1;

/// A point's parts: value, quality, server time, receive time, back-filled.
pub(super) type PointParts = (Value, Quality, Option<DateTime<Utc>>, DateTime<Utc>, bool);

impl StoredPoint {
    /// Reads a record of either format: postcard fails on a format-1 record for want of the
    /// flags byte, which a format-2 record always has.
    pub(super) fn decode(bytes: &[u8]) -> Result<StoredPoint, postcard::Error> {
        postcard::from_bytes(bytes).or_else(|e| {
            let v1: StoredPointV1 = postcard::from_bytes(bytes).map_err(|_| e)?;
            Ok(StoredPoint {
                value: v1.value,
                quality: v1.quality,
                server_ts_ns: v1.server_ts_ns,
                received_ts_ns: v1.received_ts_ns,
                flags: 0,
            })
        })
    }

    pub(super) fn new(sample: &Sample) -> Self {
        let (value, quality, server_ts, received_ts) = (
            &sample.value,
            sample.quality,
            sample.server_ts,
            sample.received_ts,
        );
        StoredPoint {
            flags: if sample.backfilled { BACKFILLED } else { 0 },
            value: match value {
                Value::Bool(b) => StoredValue::Bool(*b),
                Value::Int(i) => StoredValue::Int(*i),
                Value::Float(f) => StoredValue::Float(*f),
                Value::Text(s) => StoredValue::Text(s.clone()),
                Value::Null => StoredValue::Null,
            },
            quality: quality.0,
            // A server time outside the nanosecond range is nonsense from the server; keep
            // the sample and drop only that optional field.
            server_ts_ns: server_ts.and_then(|t| t.timestamp_nanos_opt()),
            received_ts_ns: clamp_ns(received_ts),
        }
    }

    pub(super) fn into_parts(self) -> PointParts {
        let value = match self.value {
            StoredValue::Bool(b) => Value::Bool(b),
            StoredValue::Int(i) => Value::Int(i),
            StoredValue::Float(f) => Value::Float(f),
            StoredValue::Text(s) => Value::Text(s),
            StoredValue::Null => Value::Null,
        };
        (
            value,
            Quality(self.quality),
            self.server_ts_ns.map(from_ns),
            from_ns(self.received_ts_ns),
            self.flags & BACKFILLED != 0,
        )
    }
}

/// Nanoseconds since the Unix epoch, saturating at the ends of the `i64` range
/// (years 1677 and 2262). Used for range bounds, where saturating is exactly right.
pub(super) fn clamp_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(super) fn from_ns(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How format 1 wrote a point.
    #[derive(Serialize)]
    struct WrittenV1 {
        value: StoredValue,
        quality: u32,
        server_ts_ns: Option<i64>,
        received_ts_ns: i64,
    }

    #[test]
    fn a_format_1_record_still_reads_and_a_new_one_keeps_its_flag() {
        let old = postcard::to_stdvec(&WrittenV1 {
            value: StoredValue::Float(2.5),
            quality: 0x4000_0000,
            server_ts_ns: Some(7),
            received_ts_ns: 9,
        })
        .unwrap();
        let (value, quality, server, received, backfilled) =
            StoredPoint::decode(&old).unwrap().into_parts();
        assert_eq!(
            (value, quality, server, received, backfilled),
            (
                Value::Float(2.5),
                Quality::UNCERTAIN,
                Some(from_ns(7)),
                from_ns(9),
                false
            )
        );
        let tag = std::sync::Arc::new(model::Tag {
            site: "s".into(),
            area: "a".into(),
            line: "l".into(),
            equipment: "e".into(),
            signal: "x".into(),
            category: model::Category::Machine,
            unit: String::new(),
        });
        let sample = Sample {
            tag,
            value: Value::Null,
            quality: Quality::BAD,
            source_ts: from_ns(1),
            server_ts: None,
            received_ts: from_ns(2),
            backfilled: true,
        };
        let new = postcard::to_stdvec(&StoredPoint::new(&sample)).unwrap();
        let parts = StoredPoint::decode(&new).unwrap().into_parts();
        assert_eq!(parts, (Value::Null, Quality::BAD, None, from_ns(2), true));
    }
}
