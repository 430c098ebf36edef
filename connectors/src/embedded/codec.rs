//! How samples are laid out on disk.
//!
//! Records are postcard-encoded. postcard cannot decode `#[serde(untagged)]` enums (it has
//! no self-describing format), so [`model::Value`] is mirrored by a tagged enum here; that
//! also keeps the file format independent of how the model chooses to print values as JSON.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use model::{Quality, Value};

/// Bumped whenever a record layout below changes incompatibly.
pub(super) const FORMAT_VERSION: u64 = 1;

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
}

impl StoredPoint {
    pub(super) fn new(
        value: &Value,
        quality: Quality,
        server_ts: Option<DateTime<Utc>>,
        received_ts: DateTime<Utc>,
    ) -> Self {
        StoredPoint {
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

    pub(super) fn into_parts(self) -> (Value, Quality, Option<DateTime<Utc>>, DateTime<Utc>) {
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
