//! InfluxQL: the statements the historian reads with, and the rows they return.
//!
//! InfluxQL is answered by 1.x natively, 2.x through its v1 compatibility API and 3.x, so
//! one read path serves them all. Identifiers go in double quotes, strings in single
//! quotes; both escape `\` and their quote, and a line feed as `\n` (InfluxQL's scanner
//! rejects a raw one). Tag values are compared in their stored form
//! ([`encode_tag_text`]), and a tag left out because it was empty is matched by `= ''`.

use std::collections::HashMap;

use serde::Deserialize;

use model::{Category, Tag};

use super::{
    line_protocol::{
        encode_tag_text, FIELD_BACKFILLED, FIELD_NONFINITE, FIELD_QUALITY, FIELD_RECEIVED_NS,
        FIELD_SERVER_NS, FIELD_TEXT, FIELD_VALUE, TAG_KEYS,
    },
    InfluxError,
};

/// A double-quoted InfluxQL identifier.
pub(crate) fn ident(name: &str) -> String {
    quote(name, '"')
}

/// A single-quoted InfluxQL string literal.
pub(crate) fn string_lit(s: &str) -> String {
    quote(s, '\'')
}

fn quote(s: &str, q: char) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn from_clause(measurements: &[&str], retention_policy: Option<&str>) -> String {
    measurements
        .iter()
        .map(|m| match retention_policy {
            Some(rp) => format!("{}.{}", ident(rp), ident(m)),
            None => ident(m),
        })
        .collect::<Vec<_>>()
        .join(",")
}

const FIELDS: [&str; 7] = [
    FIELD_VALUE,
    FIELD_TEXT,
    FIELD_QUALITY,
    FIELD_NONFINITE,
    FIELD_BACKFILLED,
    FIELD_SERVER_NS,
    FIELD_RECEIVED_NS,
];

/// The points of one tag with `from <= time < to` (and `time > after`, when paging),
/// oldest first, at most `limit`.
pub(crate) fn series_query(
    tag: &Tag,
    retention_policy: Option<&str>,
    from_ns: i64,
    to_ns: i64,
    after_ns: Option<i64>,
    limit: usize,
) -> String {
    let mut q = series_select(tag, retention_policy);
    q.push_str(&format!("time >= {from_ns} AND time < {to_ns}"));
    if let Some(after) = after_ns {
        q.push_str(&format!(" AND time > {after}"));
    }
    q.push_str(&format!(" ORDER BY time ASC LIMIT {limit}"));
    q
}

/// The newest point of one tag with `from <= time <= at`.
pub(crate) fn latest_query(
    tag: &Tag,
    retention_policy: Option<&str>,
    from_ns: i64,
    at_ns: i64,
) -> String {
    let mut q = series_select(tag, retention_policy);
    q.push_str(&format!(
        "time >= {from_ns} AND time <= {at_ns} ORDER BY time DESC LIMIT 1"
    ));
    q
}

/// `SELECT <fields> FROM <category> WHERE <the tag's place> AND `: the time condition is
/// the caller's.
fn series_select(tag: &Tag, retention_policy: Option<&str>) -> String {
    let select: Vec<String> = FIELDS.iter().map(|f| ident(f)).collect();
    let mut q = format!(
        "SELECT {} FROM {} WHERE ",
        select.join(","),
        from_clause(&[tag.category.as_str()], retention_policy)
    );
    // The unit is no part of the path: a unit change must not hide the older points.
    for (key, value) in [
        ("area", &tag.area),
        ("equipment", &tag.equipment),
        ("line", &tag.line),
        ("signal", &tag.signal),
        ("site", &tag.site),
    ] {
        q.push_str(&format!(
            "{}={} AND ",
            ident(key),
            string_lit(&encode_tag_text(value))
        ));
    }
    q
}

/// Every point of every category with `time > after`, oldest first, at most `limit` per
/// category, with the tags as columns.
pub(crate) fn tail_query(retention_policy: Option<&str>, after_ns: i64, limit: usize) -> String {
    let columns: Vec<String> = FIELDS
        .iter()
        .chain(TAG_KEYS.iter())
        .map(|c| ident(c))
        .collect();
    let measurements: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    format!(
        "SELECT {} FROM {} WHERE time > {after_ns} ORDER BY time ASC LIMIT {limit}",
        columns.join(","),
        from_clause(&measurements, retention_policy)
    )
}

/// One row of an answer: the schema's fields, and the tags when they were selected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) measurement: String,
    pub(crate) time_ns: i64,
    pub(crate) value: Option<f64>,
    pub(crate) text: Option<String>,
    pub(crate) quality: Option<u64>,
    pub(crate) nonfinite: Option<String>,
    pub(crate) backfilled: bool,
    pub(crate) server_ns: Option<i64>,
    pub(crate) received_ns: Option<i64>,
    /// Stored (encoded) tag values by key.
    pub(crate) tags: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<StatementResult>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Series {
    name: String,
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
    #[serde(default)]
    tags: HashMap<String, String>,
}

/// Fails with the server's message if the answer reports one.
pub(crate) fn check_errors(text: &str) -> Result<(), InfluxError> {
    parse_answer(text).map(|_| ())
}

fn parse_answer(text: &str) -> Result<Answer, InfluxError> {
    let answer: Answer = serde_json::from_str(text)
        .map_err(|e| InfluxError::Decode(format!("{e}: {}", clip(text))))?;
    if let Some(e) = &answer.error {
        return Err(InfluxError::Query(e.clone()));
    }
    if let Some(e) = answer.results.iter().find_map(|r| r.error.clone()) {
        return Err(InfluxError::Query(e));
    }
    Ok(answer)
}

/// The rows of an answer, series by series as InfluxDB sent them.
pub(crate) fn parse_rows(text: &str) -> Result<Vec<Row>, InfluxError> {
    let answer = parse_answer(text)?;
    let mut rows = Vec::new();
    for series in answer.results.into_iter().flat_map(|r| r.series) {
        let col = |name: &str| series.columns.iter().position(|c| c == name);
        let (Some(time), value, text, quality, nonfinite, backfilled) = (
            col("time"),
            col(FIELD_VALUE),
            col(FIELD_TEXT),
            col(FIELD_QUALITY),
            col(FIELD_NONFINITE),
            col(FIELD_BACKFILLED),
        ) else {
            return Err(InfluxError::Decode(format!(
                "series {} has no time column",
                series.name
            )));
        };
        let tag_cols: Vec<(&str, usize)> = TAG_KEYS
            .iter()
            .filter_map(|k| col(k).map(|i| (*k, i)))
            .collect();
        for values in &series.values {
            let at = |i: Option<usize>| i.and_then(|i| values.get(i)).filter(|v| !v.is_null());
            let Some(time_ns) = at(Some(time)).and_then(|v| v.as_i64()) else {
                return Err(InfluxError::Decode(format!(
                    "row of {} without an integer time (epoch=ns expected)",
                    series.name
                )));
            };
            let mut tags = series.tags.clone();
            for (k, i) in &tag_cols {
                if let Some(v) = at(Some(*i)).and_then(|v| v.as_str()) {
                    tags.insert((*k).to_string(), v.to_string());
                }
            }
            rows.push(Row {
                measurement: series.name.clone(),
                time_ns,
                value: at(value).and_then(|v| v.as_f64()),
                text: at(text).and_then(|v| v.as_str().map(str::to_string)),
                quality: at(quality).and_then(|v| v.as_u64()),
                nonfinite: at(nonfinite).and_then(|v| v.as_str().map(str::to_string)),
                backfilled: at(backfilled).and_then(|v| v.as_bool()) == Some(true),
                server_ns: at(col(FIELD_SERVER_NS)).and_then(|v| v.as_i64()),
                received_ns: at(col(FIELD_RECEIVED_NS)).and_then(|v| v.as_i64()),
                tags,
            });
        }
    }
    Ok(rows)
}

fn clip(text: &str) -> &str {
    match text.char_indices().nth(300) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn identifiers_and_strings_are_escaped() {
        assert_eq!(ident(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(string_lit("it's\na\\b"), r"'it\'s\na\\b'");
    }

    #[test]
    fn a_series_query_names_every_path_tag_and_the_half_open_range() {
        let tag = Arc::new(Tag {
            site: "s'1".into(),
            area: String::new(),
            line: r"l\1".into(),
            equipment: "e 1".into(),
            signal: "x".into(),
            category: Category::Environment,
            unit: "%RH".into(),
        });
        let q = series_query(&tag, Some("autogen"), 10, 20, Some(15), 100);
        assert_eq!(
            q,
            r#"SELECT "value","text","quality","nonfinite","backfilled","server_ns","received_ns" FROM "autogen"."environment" WHERE "area"='' AND "equipment"='e 1' AND "line"='l%5C1' AND "signal"='x' AND "site"='s\'1' AND time >= 10 AND time < 20 AND time > 15 ORDER BY time ASC LIMIT 100"#
        );
    }

    #[test]
    fn rows_are_read_by_column_name() {
        let text = r#"{"results":[{"statement_id":0,"series":[{"name":"machine",
            "columns":["time","value","text","quality","nonfinite","site"],
            "values":[[5,1.5,null,0,null,"s1"],[6,null,"RUN",1073741824,null,"s1"]]}]}]}"#;
        let rows = parse_rows(text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value, Some(1.5));
        assert_eq!(rows[1].text.as_deref(), Some("RUN"));
        assert_eq!(rows[1].quality, Some(0x4000_0000));
        assert_eq!(rows[1].tags.get("site").map(String::as_str), Some("s1"));
        assert!(parse_rows(r#"{"results":[{"statement_id":0}]}"#)
            .unwrap()
            .is_empty());
        let e = parse_rows(r#"{"results":[{"statement_id":0,"error":"database not found: x"}]}"#)
            .unwrap_err();
        assert!(e.to_string().contains("database not found"));
    }
}
