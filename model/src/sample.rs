//! The event: one value of one signal at one source time, with its quality.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plant::Category;

/// Where a value belongs: its ISA-95 place, its 5M1E category and its unit.
///
/// Shared by every sample of the signal (`Arc<Tag>`), so tagging costs a pointer copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tag {
    pub site: String,
    pub area: String,
    pub line: String,
    pub equipment: String,
    pub signal: String,
    pub category: Category,
    pub unit: String,
}

impl Tag {
    /// `site/area/line/equipment/signal`: the key a signal is stored and queried by.
    pub fn path(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.site, self.area, self.line, self.equipment, self.signal
        )
    }
}

/// A value as it came from the plant. Integers and booleans stay what they are here; a
/// historian that only knows floats converts them at its edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    /// No value: what a server sends with a Bad status when it has nothing to report (a
    /// sensor off line). Stored as such with its status and time, so a chart shows the hole
    /// instead of the last good value carried into it. JSON `null`.
    Null,
}

impl Value {
    /// The numeric reading of the value, if it has one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Text(_) | Value::Null => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
            Value::Null => f.write_str("null"),
        }
    }
}

/// The OPC UA status code that came with the value, kept whole (severity, sub-code and
/// info bits) so that nothing about the value's trustworthiness is lost on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quality(pub u32);

impl Quality {
    pub const GOOD: Quality = Quality(0);
    pub const UNCERTAIN: Quality = Quality(0x4000_0000);
    pub const BAD: Quality = Quality(0x8000_0000);
    pub const BAD_NODE_ID_UNKNOWN: Quality = Quality(0x8034_0000);
    pub const BAD_NOT_READABLE: Quality = Quality(0x803A_0000);
    pub const BAD_COMMUNICATION_ERROR: Quality = Quality(0x8005_0000);

    pub fn is_good(self) -> bool {
        self.0 & 0xC000_0000 == 0
    }
    pub fn is_uncertain(self) -> bool {
        self.0 & 0xC000_0000 == 0x4000_0000
    }
    pub fn is_bad(self) -> bool {
        self.0 & 0x8000_0000 != 0
    }

    /// `good`, `uncertain` or `bad`: the severity a person reads first.
    pub fn severity(self) -> &'static str {
        if self.is_bad() {
            "bad"
        } else if self.is_uncertain() {
            "uncertain"
        } else {
            "good"
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:08X})", self.severity(), self.0)
    }
}

/// One value of one signal: the event every component passes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub tag: Arc<Tag>,
    pub value: Value,
    pub quality: Quality,
    /// When the value was true at its source: the time of record.
    pub source_ts: DateTime<Utc>,
    /// When the OPC UA server last handled it, if it said.
    pub server_ts: Option<DateTime<Utc>>,
    /// When the connector received it; tells transport delay apart from source age.
    pub received_ts: DateTime<Utc>,
    /// Read from the server's history to fill a gap in the live stream, not received live.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfilled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_severity_follows_the_top_two_bits() {
        assert!(Quality::GOOD.is_good());
        assert!(
            Quality(0x0000_0480).is_good(),
            "info bits keep a good value good"
        );
        assert!(Quality::UNCERTAIN.is_uncertain() && !Quality::UNCERTAIN.is_bad());
        assert!(Quality::BAD_NODE_ID_UNKNOWN.is_bad());
        assert_eq!(Quality::BAD_NODE_ID_UNKNOWN.severity(), "bad");
    }

    #[test]
    fn values_serialize_as_plain_json() {
        assert_eq!(serde_json::to_string(&Value::Float(1.5)).unwrap(), "1.5");
        assert_eq!(
            serde_json::to_string(&Value::Text("EXECUTE".into())).unwrap(),
            "\"EXECUTE\""
        );
        assert_eq!(Value::Bool(true).as_f64(), Some(1.0));
        assert_eq!(serde_json::to_string(&Value::Null).unwrap(), "null");
        let back: Vec<Value> = serde_json::from_str("[null, 2, \"x\"]").unwrap();
        assert_eq!(back, [Value::Null, Value::Int(2), Value::Text("x".into())]);
    }
}
