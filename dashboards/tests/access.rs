//! Who may see and do what, through the router: every endpoint checks the session, the
//! role and the site scope on the server; GMP actions need an electronic signature; all of
//! it lands in the audit trail.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

/// Each endpoint asked about Shenzhen, as an Anhui operator.
const SHENZHEN_READS: &[&str] = &[
    "/api/signals?site=shenzhen",
    "/api/history?path=shenzhen/osd/line-1/press-01/speed",
    "/api/batches?site=shenzhen",
    "/api/spc?variable=lab:assay&site=shenzhen",
    "/api/maintenance?site=shenzhen",
    "/api/maintenance/wear?site=shenzhen&line=line-1&equipment=press-01&part=bearing",
    "/api/maintenance/alerts?site=shenzhen",
    "/api/lifecycle?site=shenzhen",
    "/api/oee?site=shenzhen",
    "/api/alerts/all?site=shenzhen",
    "/api/costs?site=shenzhen",
    "/api/costs?site=shenzhen&line=line-1",
    "/api/work-orders?site=shenzhen",
    "/api/history?path=shenzhen/osd/line-1/press-01/speed&format=csv",
];

#[tokio::test]
async fn an_anhui_operator_cannot_read_shenzhen_through_any_endpoint() {
    let f = fixture();
    let op = f.login("op.anhui").await;
    for path in SHENZHEN_READS {
        let a = f.get(path, &op).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
        assert!(a.text.contains("outside the scope"), "{path}: {}", a.text);
        // The same question about Anhui is answered (with data or without).
        let own = path.replace("shenzhen", "anhui");
        let a = f.get(&own, &op).await;
        assert_ne!(a.status, StatusCode::FORBIDDEN, "{own}: {}", a.text);
    }
    // Lists without a site hold Anhui only.
    let sites = f.get("/api/sites", &op).await.json;
    let ids: Vec<_> = sites
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("anhui")]);
    let signals = f.get("/api/signals", &op).await.json;
    let signals = signals.as_array().unwrap();
    assert!(signals.len() > 100);
    assert!(signals.iter().all(|s| s["site"] == "anhui"));
    let units = f.get("/api/lifecycle", &op).await.json;
    assert!(!units.as_array().unwrap().is_empty());
    assert!(units
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["site"] == "anhui"));
    // An SPC chart without a site is the user's one site, never all plants pooled.
    let spc = f.get("/api/spc?variable=lab:assay", &op).await;
    assert_ne!(spc.status, StatusCode::FORBIDDEN, "{}", spc.text);
    // Not an operator's: the audit trail, diagnostics, users.
    for path in ["/api/audit", "/api/diagnostics", "/api/users"] {
        let a = f.get(path, &op).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.text);
    }
    // HQ sees every plant.
    let hq = f.login("hq").await;
    assert_eq!(
        f.get("/api/sites", &hq)
            .await
            .json
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(f.get("/api/diagnostics", &hq).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_anhui_operator_cannot_act_on_shenzhen_alerts_and_signs_their_own() {
    let f = fixture();
    let shenzhen = raise_alert(&f.twin, "shenzhen");
    let anhui = raise_alert(&f.twin, "anhui");
    let op = f.login("op.anhui").await;
    let sig = json!({ "password": PASSWORD, "meaning": "reviewed" });

    let listed = f.get("/api/maintenance/alerts", &op).await.json;
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![anhui], "only Anhui's alert is listed");

    let a = f
        .post(
            &format!("/api/maintenance/alerts/{shenzhen}/acknowledge"),
            &op,
            json!({ "comment": "not mine", "signature": sig }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let still = f.twin.with_maintenance_watch(|w| {
        w.alerts()
            .iter()
            .find(|a| a.id == shenzhen)
            .unwrap()
            .acknowledged
            .is_none()
    });
    assert!(still, "Shenzhen's alert is untouched");

    let maint = f.login("maint.anhui").await;
    let a = f
        .post(
            &format!("/api/maintenance/alerts/{shenzhen}/close"),
            &maint,
            json!({ "work_order": "WO-1", "signature": sig }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = f
        .post(
            "/api/lifecycle/actions",
            &maint,
            json!({ "site": "shenzhen", "line": "line-1", "equipment": "press-01", "work_order": "WO-2" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);

    // Their own alert: acknowledged under their signature.
    let a = f
        .post(
            &format!("/api/maintenance/alerts/{anhui}/acknowledge"),
            &op,
            json!({ "comment": "checking vibration", "signature": sig }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let ack = &a.json["acknowledged"];
    assert_eq!(ack["user"], "op.anhui");
    let line = ack["signature"].as_str().unwrap();
    assert!(
        line.contains("Printed op.anhui (op.anhui), reviewed"),
        "{line}"
    );
    let unacked = f
        .get("/api/maintenance/alerts?state=raised", &op)
        .await
        .json;
    assert!(unacked.as_array().unwrap().is_empty(), "{unacked}");
    // An operator does not close work orders.
    let a = f
        .post(
            &format!("/api/maintenance/alerts/{anhui}/close"),
            &op,
            json!({ "work_order": "WO-3", "signature": sig }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);

    let audit = f.audit_actions();
    let (user, _, details) = audit
        .iter()
        .find(|(_, action, _)| action == "alert.acknowledge")
        .expect("acknowledgement audited");
    assert_eq!(user, "op.anhui");
    assert_eq!(details["signature"]["printed_name"], "Printed op.anhui");
    assert_eq!(details["signature"]["meaning"], "reviewed");
    assert!(details["signature"]["at"].is_string());
}

#[tokio::test]
async fn an_acknowledgement_without_the_password_is_refused_and_audited() {
    let f = fixture();
    let id = raise_alert(&f.twin, "anhui");
    let op = f.login("op.anhui").await;
    let path = format!("/api/maintenance/alerts/{id}/acknowledge");
    let wrong = f
        .post(
            &path,
            &op,
            json!({ "signature": { "password": "not-my-password", "meaning": "reviewed" } }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.text);
    assert!(
        wrong.text.contains("signature refused: wrong password"),
        "{}",
        wrong.text
    );
    let none = f.post(&path, &op, json!({ "comment": "seen" })).await;
    assert_eq!(none.status, StatusCode::FORBIDDEN, "{}", none.text);
    assert!(none.text.contains("electronic signature"), "{}", none.text);
    let bad_meaning = f
        .post(
            &path,
            &op,
            json!({ "signature": { "password": PASSWORD, "meaning": "whatever" } }),
        )
        .await;
    assert_eq!(
        bad_meaning.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_meaning.text
    );
    assert!(f
        .twin
        .with_maintenance_watch(|w| w.alerts()[0].acknowledged.is_none()));

    let refused: Vec<_> = f
        .audit_actions()
        .into_iter()
        .filter(|(_, action, _)| action == "signature.refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused
        .iter()
        .all(|(u, _, d)| u == "op.anhui" && d["action"] == "alert.acknowledge"));
    assert_eq!(refused[0].2["reason"], "wrong password");
    // Never the password itself.
    let trail = std::fs::read_to_string(f.audit.path()).unwrap();
    assert!(!trail.contains("not-my-password") && !trail.contains(PASSWORD));
}

#[tokio::test]
async fn without_a_session_every_route_but_the_login_is_closed() {
    let f = fixture();
    for path in [
        "/api/sites",
        "/api/signals",
        "/api/history?path=x",
        "/api/diagnostics",
        "/api/batches",
        "/api/batches/X",
        "/api/alerts",
        "/api/spc?variable=lab:assay",
        "/api/capability?cqa=assay",
        "/api/events",
        "/api/maintenance",
        "/api/maintenance/alerts",
        "/api/lifecycle",
        "/api/oee",
        "/api/settings",
        "/api/alerts/all",
        "/api/audit",
        "/api/me",
        "/api/users",
        "/api/costs",
        "/api/work-orders",
    ] {
        let a = f.send(get(path, None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        let a = f.send(get(path, Some("forged-token"))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in [
        "/api/maintenance/alerts/1/acknowledge",
        "/api/maintenance/alerts/1/close",
        "/api/lifecycle/actions",
        "/api/batches/X/accept",
        "/api/users",
        "/api/users/admin",
        "/api/tickets",
        "/api/logout",
        "/api/work-orders",
        "/api/work-orders/WO-00001/close",
    ] {
        let a = f.send(post_json(path, None, json!({}))).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // The page sends a stranger to the login form, and the form is served.
    let a = f.send(get("/?part=top", None)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers["location"], "/login?next=/%3Fpart%3Dtop");
    let a = f.send(get("/login", None)).await;
    assert!(a.text.contains("type=\"password\""));
    assert_eq!(
        f.send(get("/api/health", None)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_browser_session_needs_its_csrf_token_to_change_anything() {
    let f = fixture();
    let id = raise_alert(&f.twin, "anhui");
    let a = f
        .send(post_json(
            "/api/login",
            None,
            json!({ "user": "op.anhui", "password": PASSWORD }),
        ))
        .await;
    assert!(
        a.json.get("token").is_none(),
        "no token in the body unless asked for"
    );
    let cookie = a.headers["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let csrf = a.json["csrf"].as_str().unwrap().to_string();
    let ack = |token: Option<&str>| {
        let mut b = axum::http::Request::post(format!("/api/maintenance/alerts/{id}/acknowledge"))
            .header("content-type", "application/json")
            .header("cookie", &session);
        if let Some(t) = token {
            b = b.header("x-csrf-token", t);
        }
        b.body(axum::body::Body::from(
            json!({ "signature": { "password": PASSWORD, "meaning": "reviewed" } }).to_string(),
        ))
        .unwrap()
    };
    let a = f.send(ack(None)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(a.text.contains("CSRF"));
    let a = f.send(ack(Some("0000"))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = f.send(ack(Some(&csrf))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    // Reading needs no token.
    let mut r = axum::http::Request::get("/api/sites");
    r = r.header("cookie", &session);
    assert_eq!(
        f.send(r.body(axum::body::Body::empty()).unwrap())
            .await
            .status,
        StatusCode::OK
    );
    // Logged out: the cookie is worthless.
    let out = axum::http::Request::post("/api/logout")
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(f.send(out).await.status, StatusCode::OK);
    let r = axum::http::Request::get("/api/sites").header("cookie", &session);
    assert_eq!(
        f.send(r.body(axum::body::Body::empty()).unwrap())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn answers_carry_security_headers_and_big_bodies_are_refused() {
    let f = fixture();
    let a = f.send(get("/login", None)).await;
    for h in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
    ] {
        assert!(a.headers.contains_key(h), "{h} missing");
    }
    assert!(
        !a.headers.contains_key("strict-transport-security"),
        "HSTS only over TLS"
    );
    let big = "x".repeat(100 * 1024);
    let a = f
        .send(post_json(
            "/api/login",
            None,
            json!({ "user": big, "password": "p" }),
        ))
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn an_admin_manages_users_and_every_change_is_audited_with_old_and_new() {
    let f = fixture();
    let admin = f.login("admin").await;
    let new = json!({
        "name": "li.na", "full_name": "Li Na 李娜", "role": "operator",
        "scope": { "sites": ["sichuan"] }, "password": "sichuan-line-2-pw", "reason": "new hire"
    });
    let a = f.post("/api/users", &admin, new.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert!(!a.text.contains("sichuan-line-2-pw") && !a.text.contains("argon2"));
    assert_eq!(
        f.post("/api/users", &admin, new).await.status,
        StatusCode::CONFLICT
    );
    let weak = json!({ "name": "x", "full_name": "X", "role": "hq", "scope": { "sites": ["*"] }, "password": "short" });
    let a = f.post("/api/users", &admin, weak).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("password"), "{}", a.text);

    // Li Na logs in, then is moved to Anhui: her session ends, her new rights apply.
    let li = f
        .send(post_json(
            "/api/login",
            None,
            json!({ "user": "li.na", "password": "sichuan-line-2-pw", "bearer": true }),
        ))
        .await;
    let token = li.json["token"].as_str().unwrap().to_string();
    assert_eq!(
        f.get("/api/signals?site=sichuan", &token).await.status,
        StatusCode::OK
    );
    let a = f
        .post(
            "/api/users/li.na",
            &admin,
            json!({ "scope": { "sites": ["anhui"] } }),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "a change needs a reason");
    let a = f
        .post(
            "/api/users/li.na",
            &admin,
            json!({ "scope": { "sites": ["anhui"] }, "reason": "transfer" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        f.get("/api/sites", &token).await.status,
        StatusCode::UNAUTHORIZED
    );

    let change = f
        .audit_actions()
        .into_iter()
        .find(|(_, action, _)| action == "user.change")
        .unwrap();
    assert_eq!(change.0, "admin");
    assert_eq!(change.2["old"]["scope"]["sites"], json!(["sichuan"]));
    assert_eq!(change.2["new"]["scope"]["sites"], json!(["anhui"]));
    assert_eq!(change.2["reason"], "transfer");

    let op = f.login("op.anhui").await;
    let a = f.post("/api/users", &op, json!({})).await;
    assert!(matches!(
        a.status,
        StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
    ));
    let a = f
        .post(
            "/api/users/op.anhui",
            &op,
            json!({ "role": "admin", "reason": "promote myself" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
}

#[tokio::test]
async fn logins_are_audited_and_repeated_failures_lock_the_account() {
    let f = fixture();
    for _ in 0..5 {
        let a = f
            .send(post_json(
                "/api/login",
                None,
                json!({ "user": "op.anhui", "password": "guess-guess" }),
            ))
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(a.json["error"], "wrong user name or password");
    }
    let a = f
        .send(post_json(
            "/api/login",
            None,
            json!({ "user": "op.anhui", "password": PASSWORD }),
        ))
        .await;
    assert_eq!(a.status, StatusCode::LOCKED, "{}", a.text);
    let a = f
        .send(post_json(
            "/api/login",
            None,
            json!({ "user": "nobody", "password": "guess-guess" }),
        ))
        .await;
    assert_eq!(
        a.json["error"], "wrong user name or password",
        "same answer for unknown users"
    );
    let actions: Vec<_> = f
        .audit_actions()
        .into_iter()
        .map(|(u, a, _)| format!("{u} {a}"))
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "op.anhui login.failure")
            .count(),
        6,
        "{actions:?}"
    );
    assert!(actions.contains(&"op.anhui account.locked".to_string()));
    assert!(actions.contains(&"nobody login.failure".to_string()));
}

#[tokio::test]
async fn an_admin_changes_a_setting_with_a_reason_and_a_restart_keeps_it() {
    let f = fixture();
    let admin = f.login("admin").await;
    let before = f.get("/api/settings", &admin).await.json;
    assert_eq!(before["maintenance.alert_probability"], 0.5);
    let change = |v: serde_json::Value| f.post("/api/settings", &admin, v);
    let a =
        change(json!({ "key": "maintenance.alert_probability", "value": 0.3, "reason": "" })).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text.contains("reason"), "{}", a.text);
    let a = change(json!({ "key": "maintenance.alert_probability", "value": 3.0, "reason": "x" }))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.text
            .contains("maintenance.alert_probability: 3 is outside"),
        "{}",
        a.text
    );
    let a = change(json!({ "key": "nope", "value": 1.0, "reason": "x" })).await;
    assert!(a.text.contains("key: no setting `nope`"), "{}", a.text);
    let a = change(json!({ "key": "maintenance.alert_probability", "value": 0.3, "reason": "earlier warning during validation run" })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(f.twin.with_maintenance_watch(|w| w.threshold), 0.3);
    let op = f.login("op.anhui").await;
    let a = f
        .post(
            "/api/settings",
            &op,
            json!({ "key": "maintenance.alert_probability", "value": 0.9, "reason": "quieter" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    let (user, _, details) = f
        .audit_actions()
        .into_iter()
        .find(|(_, a, _)| a == "config.change")
        .unwrap();
    assert_eq!(user, "admin");
    assert_eq!(details["old"], 0.5);
    assert_eq!(details["new"], 0.3);
    assert_eq!(details["reason"], "earlier warning during validation run");

    // A restart over the same trail: the setting is what it was changed to.
    f.twin.with_maintenance_watch(|w| w.threshold = 0.5);
    let again = restart(&f);
    let token = again.login("admin").await;
    assert_eq!(
        again.get("/api/settings", &token).await.json["maintenance.alert_probability"],
        0.3
    );
}

#[tokio::test]
async fn one_alert_list_per_user_with_signed_acknowledgement_and_shelving() {
    let f = fixture();
    let (anhui, back_to_normal) = excursion(&f.twin, "anhui");
    let (shenzhen, _) = excursion(&f.twin, "shenzhen");
    let predictive = raise_alert(&f.twin, "anhui");
    let op = f.login("op.anhui").await;

    let list = f.get("/api/alerts/all", &op).await.json;
    let keys: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap().to_string())
        .collect();
    assert!(keys.contains(&format!("board/{anhui}")), "{keys:?}");
    assert!(
        keys.contains(&format!("maintenance/{predictive}")),
        "{keys:?}"
    );
    assert!(!keys.contains(&format!("board/{shenzhen}")), "{keys:?}");
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["site"] == "anhui"));
    let only = f.get("/api/alerts/all?kind=excursion", &op).await.json;
    assert!(only
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["kind"] == "excursion"));
    assert_eq!(
        f.get("/api/alerts/all?site=shenzhen", &op).await.status,
        StatusCode::FORBIDDEN
    );

    let sig = json!({ "password": PASSWORD, "meaning": "reviewed" });
    let ack = |id: u64, body: serde_json::Value| {
        let path = format!("/api/alerts/board/{id}/acknowledge");
        let (f, op) = (&f, &op);
        async move { f.post(&path, op, body).await }
    };
    assert_eq!(
        ack(shenzhen, json!({ "signature": sig })).await.status,
        StatusCode::FORBIDDEN
    );
    let a = ack(anhui, json!({ "comment": "door closed" })).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "an excursion is acknowledged signed: {}",
        a.text
    );
    let a = ack(anhui, json!({ "comment": "door closed", "signature": sig })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.json["acknowledged"]["signature"]
        .as_str()
        .unwrap()
        .contains("reviewed"));
    let unacked = f
        .get("/api/alerts/all?state=unacknowledged", &op)
        .await
        .json;
    assert!(
        !unacked
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == format!("board/{anhui}")),
        "gone from unacknowledged"
    );
    // Acknowledged and back within its spec: off the board.
    f.twin.apply(&[back_to_normal]);
    let all = f.get("/api/alerts/all?state=all", &op).await.json;
    assert!(!all
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == format!("board/{anhui}")));

    // Shelving: bounded, with a reason, audited.
    let (again, _) = excursion(&f.twin, "anhui");
    let shelve = |body: serde_json::Value| {
        let path = format!("/api/alerts/board/{again}/shelve");
        let (f, op) = (&f, &op);
        async move { f.post(&path, op, body).await }
    };
    assert_eq!(
        shelve(json!({ "minutes": 0, "comment": "x" })).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        shelve(json!({ "minutes": 30, "comment": " " }))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        shelve(json!({ "minutes": 30, "comment": "HVAC service" }))
            .await
            .status,
        StatusCode::OK
    );
    let default = f.get("/api/alerts/all", &op).await.json;
    assert!(!default
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == format!("board/{again}")));
    let shelved = f.get("/api/alerts/all?state=shelved", &op).await.json;
    assert!(shelved
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["key"] == format!("board/{again}")));
    let actions: Vec<_> = f.audit_actions().into_iter().map(|(_, a, _)| a).collect();
    assert!(
        actions.contains(&"alert.shelve".to_string())
            && actions.contains(&"alert.acknowledge".to_string())
    );
}

#[tokio::test]
async fn work_orders_are_created_and_closed_with_a_signature_within_the_users_sites() {
    let f = fixture();
    let maint = f.login("maint.anhui").await;
    let op = f.login("op.anhui").await;
    let sig = json!({ "password": PASSWORD, "meaning": "performed" });
    let due = (chrono::Utc::now() + chrono::Duration::hours(24)).to_rfc3339();
    let order = |site: &str| {
        json!({ "site": site, "line": "line-1", "equipment": "press-01", "part": "bearing",
                "kind": "maintenance", "reason": "vibration rising", "due": due })
    };

    // Not their site, not their role, no reason: refused, nothing written.
    let a = f.post("/api/work-orders", &maint, order("shenzhen")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = f.post("/api/work-orders", &op, order("anhui")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let mut no_reason = order("anhui");
    no_reason["reason"] = json!(" ");
    let a = f.post("/api/work-orders", &maint, no_reason).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    let mut no_unit = order("anhui");
    no_unit["equipment"] = json!("press-99");
    let a = f.post("/api/work-orders", &maint, no_unit).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);

    let a = f.post("/api/work-orders", &maint, order("anhui")).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    let id = a.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        a.json["reset_counters"], true,
        "maintenance resets by default"
    );
    let listed = f.get("/api/work-orders?state=open", &op).await.json;
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["requested_by"], "maint.anhui");
    assert_eq!(listed[0]["state"], "open");
    let shenzhen_op = f.login("op.shenzhen").await;
    let theirs = f.get("/api/work-orders", &shenzhen_op).await.json;
    assert_eq!(
        theirs,
        json!([]),
        "Anhui's orders are not Shenzhen's to see"
    );

    // Closing: an operator may not, a closing without the password is refused.
    let close = format!("/api/work-orders/{id}/close");
    let a = f.post(&close, &op, json!({ "signature": sig })).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = f.post(&close, &maint, json!({ "comment": "done" })).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let a = f
        .post(
            &close,
            &maint,
            json!({ "comment": "bearing renewed", "signature": sig }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.json["closed"]["signature"]
            .as_str()
            .unwrap()
            .contains("Printed maint.anhui (maint.anhui), performed"),
        "{}",
        a.text
    );
    let a = f.post(&close, &maint, json!({ "signature": sig })).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "closed once: {}", a.text);

    // The unit's lifecycle holds the maintenance under the work order's number.
    let units = f.get("/api/lifecycle?site=anhui", &maint).await.json;
    let press = units
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["line"] == "line-1" && u["equipment"] == "press-01")
        .unwrap();
    assert_eq!(press["history"][0]["work_order"], id.as_str(), "{press}");
    assert!(press["last_maintenance"].is_string());

    let actions: Vec<_> = f
        .audit_actions()
        .into_iter()
        .filter(|(_, a, _)| a.starts_with("workorder."))
        .map(|(u, a, _)| (u, a))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("maint.anhui".to_string(), "workorder.create".to_string()),
            ("maint.anhui".to_string(), "workorder.close".to_string())
        ]
    );
    // The trail is the store: a restarted web view lists the order closed.
    let again = restart(&f);
    let token = again.login("maint.anhui").await;
    let listed = again
        .get("/api/work-orders?state=closed", &token)
        .await
        .json;
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["closed"]["by"], "maint.anhui");
}

#[tokio::test]
async fn costs_and_csv_history_answer_within_the_users_sites() {
    let f = fixture();
    let hq = f.login("hq").await;
    let all = f.get("/api/costs", &hq).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let sites: Vec<_> = all.json["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["site"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sites, ["shenzhen", "anhui", "sichuan"]);
    assert_eq!(
        all.json["sites"][1]["tariff"]["energy_per_kwh"], 0.69,
        "Anhui's tariff"
    );
    let op = f.login("op.anhui").await;
    let own = f.get("/api/costs", &op).await.json;
    assert_eq!(own["sites"].as_array().unwrap().len(), 1);
    assert_eq!(own["sites"][0]["site"], "anhui");

    let csv = f
        .get(
            "/api/history?path=anhui/osd/line-1/press-01/turret_speed&format=csv",
            &op,
        )
        .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"anhui_osd_line-1_press-01_turret_speed_"),
        "{disposition}"
    );
    assert!(csv
        .text
        .starts_with("time_utc,value,quality_code,quality\n"));
    let bad = f
        .get(
            "/api/history?path=anhui/osd/line-1/press-01/turret_speed&format=xlsx",
            &op,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
