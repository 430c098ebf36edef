//! The live stream of a line and time travel keep to the user's scope, and a moment in the
//! future is refused with a reason.

mod common;

use axum::http::StatusCode;
use common::{fixture, get};
use tower::ServiceExt;

#[tokio::test]
async fn a_line_stream_and_a_past_moment_are_only_for_who_may_see_them() {
    let f = fixture();
    let op = f.login("op.anhui").await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    for path in [
        "/api/events?site=shenzhen&line=line-1".to_string(),
        "/api/events?site=shenzhen".to_string(),
        format!("/api/signals?site=shenzhen&at={past}"),
    ] {
        let a = f.get(&path, &op).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }

    // Their own line streams (the body never ends: only the head is read).
    let resp = f
        .router
        .clone()
        .oneshot(get("/api/events?site=anhui&line=line-1", Some(&op)))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");

    // Their own past: answered from the store (empty here), cut to their site.
    let a = f.get(&format!("/api/sites?at={past}"), &op).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let ids: Vec<&str> = a
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["anhui"]);
    assert_eq!(a.json[0]["with_value"], 0, "nothing stored, nothing shown");

    // Connector health for a monitoring system: diagnostics rights only.
    assert_eq!(f.get("/metrics", &op).await.status, StatusCode::FORBIDDEN);
    let m = f.get("/metrics", &f.login("hq").await).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(
        m.text.contains("# TYPE pharmatwin_twin_version counter"),
        "{}",
        m.text
    );

    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let a = f.get(&format!("/api/sites?at={future}"), &op).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("future"), "{}", a.text);
}
