//! `GET /metrics`: the health of what feeds the twin, in the Prometheus text format, for the
//! monitoring a plant IT department already runs.
//!
//! Rendered from the same diagnostics document as `/api/diagnostics`, field by field: every
//! number or flag of a source becomes `pharmatwin_source_<field>{site,endpoint}`, of the
//! writer `pharmatwin_writer_<field>`. A field the connectors add shows up without a change
//! here. Counters are totals since start; Prometheus' `rate()` turns them into per-second
//! figures (notifications/s, reconnects/h).

use std::fmt::Write;

use access::Permission;
use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Extension,
};
use serde_json::Value;

use crate::{auth::Principal, AppState};

pub(crate) async fn metrics(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    if let Err(r) = p.require(Permission::ViewDiagnostics) {
        return r.into_response();
    }
    let doc = (state.diagnostics)();
    let mut out = render(&doc);
    let _ = writeln!(
        out,
        "# TYPE pharmatwin_twin_version counter\npharmatwin_twin_version {}",
        state.twin.version()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// The exposition text of a diagnostics document (`{"sources": [..], "writer": {..}}`).
pub(crate) fn render(doc: &Value) -> String {
    // Families must be contiguous in the text format: gather samples per metric name.
    let mut families: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for source in doc["sources"].as_array().into_iter().flatten() {
        let labels = format!(
            "{{site=\"{}\",endpoint=\"{}\"}}",
            escape(source["site"].as_str().unwrap_or_default()),
            escape(source["endpoint"].as_str().unwrap_or_default())
        );
        for (field, v) in source.as_object().into_iter().flatten() {
            if let Some(x) = number(v) {
                families
                    .entry(format!("pharmatwin_source_{}", name(field)))
                    .or_default()
                    .push(format!("{labels} {x}"));
            }
            // Lists (tag errors, values without a value) are counted.
            if let Some(list) = v.as_array() {
                families
                    .entry(format!("pharmatwin_source_{}_count", name(field)))
                    .or_default()
                    .push(format!("{labels} {}", list.len()));
            }
        }
    }
    for (field, v) in doc["writer"].as_object().into_iter().flatten() {
        if let Some(x) = number(v) {
            families
                .entry(format!("pharmatwin_writer_{}", name(field)))
                .or_default()
                .push(format!(" {x}"));
        }
    }
    let mut out = String::new();
    for (metric, samples) in families {
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for s in samples {
            let _ = writeln!(out, "{metric}{s}");
        }
    }
    out
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// A metric name from a JSON field: `[a-zA-Z0-9_]` only.
fn name(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn every_number_and_flag_of_a_source_is_a_labelled_sample_grouped_by_metric() {
        let doc = json!({
            "sources": [
                { "site": "anhui", "endpoint": "opc.tcp://h:1/", "connected": true, "sessions": 2,
                  "notifications": 1500, "last_error": "x", "tag_errors": [{"path": "a"}] },
                { "site": "sz\"1", "endpoint": "opc.tcp://h:2/", "connected": false, "sessions": 1,
                  "notifications": 7, "tag-errors": [] },
            ],
            "writer": { "samples_written": 99, "retrying": false, "last_error": null },
        });
        let text = super::render(&doc);
        let lines: Vec<&str> = text.lines().collect();
        let at = |s: &str| {
            lines
                .iter()
                .position(|l| *l == s)
                .unwrap_or_else(|| panic!("{s} in\n{text}"))
        };
        let a = at("pharmatwin_source_connected{site=\"anhui\",endpoint=\"opc.tcp://h:1/\"} 1");
        let b = at("pharmatwin_source_connected{site=\"sz\\\"1\",endpoint=\"opc.tcp://h:2/\"} 0");
        assert_eq!(b, a + 1, "one family's samples together");
        assert_eq!(lines[a - 1], "# TYPE pharmatwin_source_connected gauge");
        at("pharmatwin_source_notifications{site=\"anhui\",endpoint=\"opc.tcp://h:1/\"} 1500");
        at("pharmatwin_source_tag_errors_count{site=\"anhui\",endpoint=\"opc.tcp://h:1/\"} 1");
        at("pharmatwin_source_tag_errors_count{site=\"sz\\\"1\",endpoint=\"opc.tcp://h:2/\"} 0");
        at("pharmatwin_writer_samples_written 99");
        at("pharmatwin_writer_retrying 0");
        assert!(!text.contains("last_error"), "text is not a metric");
    }
}
