//! CSV downloads of what a chart shows: a tag's stored samples over a window
//! (`GET /api/history?…&format=csv`), for a spreadsheet or an inspector.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, SecondsFormat, Utc};
use model::{Sample, Value};

/// One CSV field: quoted when it holds a separator, a quote or a line break, quotes doubled.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The samples of `path` as `time_utc,value,quality_code,quality`, oldest first, served as a
/// download named for the tag and the window.
pub(crate) fn history_csv(
    path: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    samples: &[Sample],
) -> Response {
    let mut body = String::from("time_utc,value,quality_code,quality\n");
    for s in samples {
        let value = match &s.value {
            Value::Text(t) => field(t),
            v => v.to_string(),
        };
        body.push_str(&format!(
            "{},{},{},{}\n",
            s.source_ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            value,
            s.quality.0,
            s.quality.severity()
        ));
    }
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let name = format!(
        "{}_{}_{}.csv",
        path.replace('/', "_").replace(
            |c: char| !(c.is_ascii_alphanumeric() || "_-.".contains(c)),
            ""
        ),
        stamp(from),
        stamp(to)
    );
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_with_separators_or_quotes_are_quoted() {
        assert_eq!(field("LOT-1"), "LOT-1");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
