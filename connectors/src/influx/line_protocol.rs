//! Samples as InfluxDB line protocol, and the escaping that keeps every tag and string intact.
//!
//! Schema (see DESIGN.md): measurement = the 5M1E category; tags `site, area, line,
//! equipment, signal, unit`; fields `value` (float; integers and booleans as numbers),
//! `text` (strings), `quality` (the OPC UA status code, integer) and, only for a float that
//! is NaN or infinite, `nonfinite` (`"NaN"`, `"+Inf"`, `"-Inf"`), because line protocol has
//! no way to write those as floats. Timestamp = the OPC UA source time in nanoseconds.
//!
//! Two choices the protocol forces:
//! - **Empty tag values are omitted.** Influx rejects `unit=` outright. An absent tag is
//!   what InfluxQL's `"unit" = ''` matches, so the historian's queries find these
//!   points with the same equality they use for every other tag.
//! - **Backslashes, line feeds and carriage returns in tag values are percent-encoded**
//!   (`%5C`, `%0A`, `%0D`) before line-protocol escaping. InfluxDB 1.x/2.x keep a tag
//!   value's backslash literally but treat any `,`, `=` or space after it as escaped, so a
//!   value ending in `\` cannot be written at all; `\\` stays two backslashes in 1.x, which
//!   other line-protocol parsers need not agree with; a line feed ends the line. A `%`
//!   stays as it is (units such as `%RH` read normally) unless it is followed by one of
//!   the four codes, when it becomes `%25`: that keeps the mapping reversible
//!   ([`decode_tag_text`]), so distinct tags never share a series. Raw [`Point`]s get the
//!   same encoding in their measurement, tag keys and field keys.
//!
//! String field values escape `"` and `\`; line feeds inside the quotes are legal there.

use std::borrow::Cow;

use model::{Sample, Value};

/// Oldest and newest timestamps InfluxDB accepts (its own `MinNanoTime` / `MaxNanoTime`).
pub const MIN_TIME_NS: i64 = i64::MIN + 2;
pub const MAX_TIME_NS: i64 = i64::MAX - 1;

/// Field names of the schema.
pub const FIELD_VALUE: &str = "value";
pub const FIELD_TEXT: &str = "text";
pub const FIELD_QUALITY: &str = "quality";
pub const FIELD_NONFINITE: &str = "nonfinite";
/// `true` on a value read from the server's history to fill a gap; absent on live values.
pub const FIELD_BACKFILLED: &str = "backfilled";
/// When the OPC UA server handled the value and when the connector received it (ns), kept
/// beside the source time of record: they tell a server's clock and the network apart.
pub const FIELD_SERVER_NS: &str = "server_ns";
pub const FIELD_RECEIVED_NS: &str = "received_ns";

/// Tag keys of the schema, in the (byte-wise sorted) order they are written.
pub const TAG_KEYS: [&str; 6] = ["area", "equipment", "line", "signal", "site", "unit"];

/// The percent codes of [`encode_tag_text`], and the character each stands for.
const TAG_CODES: [(&str, char); 4] = [("5C", '\\'), ("0A", '\n'), ("0D", '\r'), ("25", '%')];

/// A field value of a raw [`Point`].
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

/// A point in InfluxDB's own terms, for data that is not a [`Sample`] (back-fills from
/// other systems, repairs). It goes through the same spool and forwarder as samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the Unix epoch.
    pub time_ns: i64,
}

/// Why a [`Point`] cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    #[error("point has an empty measurement name")]
    EmptyMeasurement,
    #[error("measurement {0:?} starts with '#', which line protocol reads as a comment")]
    CommentMeasurement(String),
    #[error("point of {0:?} has no fields")]
    NoFields(String),
    #[error("point of {0:?} has an empty tag or field key")]
    EmptyKey(String),
    #[error("point of {measurement:?} has a non-finite float in field {field:?}")]
    NonFiniteField { measurement: String, field: String },
}

impl Point {
    /// The point as one line of line protocol, without the trailing line feed. Tags with
    /// an empty value are omitted, as for samples.
    pub fn to_line(&self) -> Result<String, PointError> {
        if self.measurement.is_empty() {
            return Err(PointError::EmptyMeasurement);
        }
        if self.measurement.starts_with('#') {
            return Err(PointError::CommentMeasurement(self.measurement.clone()));
        }
        if self.fields.is_empty() {
            return Err(PointError::NoFields(self.measurement.clone()));
        }
        if self.tags.iter().any(|(k, _)| k.is_empty())
            || self.fields.iter().any(|(k, _)| k.is_empty())
        {
            return Err(PointError::EmptyKey(self.measurement.clone()));
        }
        // Names get the same percent-encoding as tag values: a backslash in any of them
        // breaks the line in the same ways.
        let mut line = String::with_capacity(128);
        escape_measurement(&encode_tag_text(&self.measurement), &mut line);
        let mut tags: Vec<(Cow<'_, str>, Cow<'_, str>)> = self
            .tags
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (encode_tag_text(k), encode_tag_text(v)))
            .collect();
        // Influx stores tags sorted by key bytes; sending them sorted saves it the work.
        tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        for (k, v) in tags {
            line.push(',');
            escape_key(&k, &mut line);
            line.push('=');
            escape_key(&v, &mut line);
        }
        for (i, (k, v)) in self.fields.iter().enumerate() {
            line.push(if i == 0 { ' ' } else { ',' });
            escape_key(&encode_tag_text(k), &mut line);
            line.push('=');
            match v {
                FieldValue::Float(f) if !f.is_finite() => {
                    return Err(PointError::NonFiniteField {
                        measurement: self.measurement.clone(),
                        field: k.clone(),
                    })
                }
                FieldValue::Float(f) => push_float(*f, &mut line),
                FieldValue::Int(i) => {
                    line.push_str(&i.to_string());
                    line.push('i');
                }
                FieldValue::UInt(u) => {
                    line.push_str(&u.to_string());
                    line.push('u');
                }
                FieldValue::Bool(b) => line.push_str(if *b { "true" } else { "false" }),
                FieldValue::Str(s) => push_string_field(s, &mut line),
            }
        }
        line.push(' ');
        line.push_str(&self.time_ns.clamp(MIN_TIME_NS, MAX_TIME_NS).to_string());
        Ok(line)
    }
}

/// One sample as one line of line protocol (no trailing line feed), per the module schema.
pub fn sample_line(s: &Sample) -> String {
    let mut line = String::with_capacity(160);
    line.push_str(s.tag.category.as_str());
    let t = &s.tag;
    // Same order as TAG_KEYS: sorted by key.
    for (key, value) in [
        ("area", &t.area),
        ("equipment", &t.equipment),
        ("line", &t.line),
        ("signal", &t.signal),
        ("site", &t.site),
        ("unit", &t.unit),
    ] {
        if value.is_empty() {
            continue;
        }
        line.push(',');
        line.push_str(key);
        line.push('=');
        escape_key(&encode_tag_text(value), &mut line);
    }
    line.push(' ');
    match &s.value {
        // The point is its quality alone; reading it back, no value field means null.
        Value::Null => {}
        Value::Text(text) => {
            line.push_str(FIELD_TEXT);
            line.push('=');
            push_string_field(text, &mut line);
        }
        Value::Float(f) if !f.is_finite() => {
            line.push_str(FIELD_NONFINITE);
            line.push('=');
            line.push_str(if f.is_nan() {
                "\"NaN\""
            } else if *f > 0.0 {
                "\"+Inf\""
            } else {
                "\"-Inf\""
            });
        }
        other => {
            line.push_str(FIELD_VALUE);
            line.push('=');
            // as_f64 is Some for every non-text value.
            push_float(other.as_f64().unwrap_or(f64::NAN), &mut line);
        }
    }
    if !s.value.is_null() {
        line.push(',');
    }
    line.push_str(FIELD_QUALITY);
    line.push('=');
    line.push_str(&s.quality.0.to_string());
    line.push('i');
    if let Some(ns) = s.server_ts.and_then(|t| t.timestamp_nanos_opt()) {
        line.push(',');
        line.push_str(FIELD_SERVER_NS);
        line.push('=');
        line.push_str(&ns.to_string());
        line.push('i');
    }
    if let Some(ns) = s.received_ts.timestamp_nanos_opt() {
        line.push(',');
        line.push_str(FIELD_RECEIVED_NS);
        line.push('=');
        line.push_str(&ns.to_string());
        line.push('i');
    }
    if s.backfilled {
        line.push(',');
        line.push_str(FIELD_BACKFILLED);
        line.push_str("=true");
    }
    line.push(' ');
    line.push_str(&sample_time_ns(s).to_string());
    line
}

/// The source time in nanoseconds, clamped to what InfluxDB accepts. Times outside
/// 1677..2262 never come from the OPC UA source (it falls back to the receive time);
/// clamping only guards other writers, as the embedded store does.
pub fn sample_time_ns(s: &Sample) -> i64 {
    time_ns(s.source_ts)
}

pub(crate) fn time_ns(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt()
        .unwrap_or(if t.timestamp() < 0 {
            MIN_TIME_NS
        } else {
            MAX_TIME_NS
        })
        .clamp(MIN_TIME_NS, MAX_TIME_NS)
}

/// `{:?}` prints the shortest text that parses back to the same f64, always with a `.` or
/// an exponent, which line protocol reads as a float (not an integer).
fn push_float(f: f64, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{f:?}");
}

fn push_string_field(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Measurement names escape commas and spaces.
fn escape_measurement(s: &str, out: &mut String) {
    for c in s.chars() {
        if c == ',' || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Tag keys, tag values and field keys escape commas, equals signs and spaces.
fn escape_key(s: &str, out: &mut String) {
    for c in s.chars() {
        if c == ',' || c == '=' || c == ' ' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A tag value as stored in InfluxDB: backslash, line feed and carriage return
/// percent-encoded (see the module docs). Queries compare tags against this text.
pub fn encode_tag_text(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['\\', '\n', '\r', '%']) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for (i, c) in raw.char_indices() {
        match c {
            '\\' => out.push_str("%5C"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            '%' if starts_with_code(&raw[i + 1..]) => out.push_str("%25"),
            other => out.push(other),
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`encode_tag_text`].
pub fn decode_tag_text(stored: &str) -> Cow<'_, str> {
    if !stored.contains('%') {
        return Cow::Borrowed(stored);
    }
    let mut out = String::with_capacity(stored.len());
    let mut rest = stored;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match TAG_CODES.iter().find(|(code, _)| after.starts_with(code)) {
            Some((code, c)) => {
                out.push(*c);
                rest = &after[code.len()..];
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn starts_with_code(s: &str) -> bool {
    TAG_CODES.iter().any(|(code, _)| s.starts_with(code))
}

/// The series key (measurement and tags, as written) and the timestamp of a line, for
/// logs and gap records. Follows the 1.x scanner: a character after `\` is escaped.
pub(crate) fn series_and_time(line: &str) -> (&str, Option<i64>) {
    let bytes = line.as_bytes();
    let mut end = bytes.len();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] == b' ' {
            end = i;
            break;
        }
        i += 1;
    }
    let time = line
        .rsplit_once(' ')
        .and_then(|(_, t)| t.trim().parse::<i64>().ok());
    (&line[..end], time)
}

/// The tag path (`site/area/line/equipment/signal`) of a series key written by
/// [`sample_line`]; `None` for a series that does not follow the schema (a raw point).
pub(crate) fn path_of_series(series: &str) -> Option<String> {
    // Split on commas not preceded by a backslash, as the 1.x scanner does.
    let bytes = series.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..bytes.len() {
        if bytes[i] == b',' && (i == 0 || bytes[i - 1] != b'\\') {
            parts.push(&series[start..i]);
            start = i + 1;
        }
    }
    parts.push(&series[start..]);
    let (measurement, tags) = parts.split_first()?;
    model::Category::ALL
        .iter()
        .find(|c| c.as_str() == *measurement)?;
    let mut path_tags: [Option<String>; 5] = Default::default();
    for t in tags {
        let (k, v) = t.split_once('=')?;
        let v = v
            .replace("\\,", ",")
            .replace("\\ ", " ")
            .replace("\\=", "=");
        let slot = ["site", "area", "line", "equipment", "signal"]
            .iter()
            .position(|name| *name == k);
        if let Some(i) = slot {
            path_tags[i] = Some(decode_tag_text(&v).into_owned());
        }
    }
    path_tags[4].as_ref()?;
    Some(path_tags.map(Option::unwrap_or_default).join("/"))
}

#[cfg(test)]
mod tests;
