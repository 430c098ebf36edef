//! Fuzzing every JSON endpoint through the router (proptest as the fuzzer): random JSON,
//! near-valid bodies with fields of the wrong type, random bytes and random query strings
//! must be answered with a status and a JSON error — never a panic, never a 5xx.
//! `FUZZ_CASES` runs more.

mod common;

use axum::{body::Body, http::Request};
use common::*;
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use serde_json::{json, Value};

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::from),
        prop::sample::select(vec![
            "reviewed", "approved", "anhui", "shenzhen", "line-1", "press-01", "bearing", "admin",
            "operator", "*", "", "../..", "%00",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "user",
                    "password",
                    "signature",
                    "meaning",
                    "comment",
                    "work_order",
                    "reset_counters",
                    "minutes",
                    "site",
                    "line",
                    "equipment",
                    "part",
                    "action",
                    "name",
                    "full_name",
                    "role",
                    "scope",
                    "sites",
                    "lines",
                    "reason",
                    "disabled",
                    "unlock",
                    "bearer",
                    "x",
                ])
                .prop_map(String::from),
                inner,
                0..8,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a POST carries: JSON, or bytes that are not.
#[derive(Debug, Clone)]
enum Payload {
    Json(Value),
    Bytes(Vec<u8>),
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        4 => json_value().prop_map(Payload::Json),
        1 => prop::collection::vec(any::<u8>(), 0..256).prop_map(Payload::Bytes),
    ]
}

/// POST routes with random path parts.
fn post_path() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        (0u64..4).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9%._-]{0,12}",
    ];
    (0..11usize, id).prop_map(|(route, id)| match route {
        0 => format!("/api/maintenance/alerts/{id}/acknowledge"),
        1 => format!("/api/maintenance/alerts/{id}/close"),
        2 => "/api/lifecycle/actions".into(),
        3 => format!("/api/batches/{id}/accept"),
        4 => "/api/users".into(),
        5 => "/api/users/fuzz.target".into(),
        6 => format!("/api/alerts/board/{id}/acknowledge"),
        7 => format!("/api/alerts/board/{id}/shelve"),
        8 => "/api/work-orders".into(),
        9 => format!("/api/work-orders/{id}/close"),
        _ => "/api/login".into(),
    })
}

fn get_path() -> impl Strategy<Value = String> {
    let q = "[a-zA-Z0-9%=&:./_-]{0,40}";
    (0..16usize, q).prop_map(|(route, q)| {
        let base = [
            "/api/sites",
            "/api/signals",
            "/api/history",
            "/api/batches",
            "/api/batches/X",
            "/api/alerts",
            "/api/spc",
            "/api/capability",
            "/api/maintenance",
            "/api/maintenance/wear",
            "/api/maintenance/alerts",
            "/api/lifecycle",
            "/api/oee",
            "/api/alerts/all",
            "/api/costs",
            "/api/work-orders",
        ][route];
        format!("{base}?{q}")
    })
}

fn check(a: &Answer, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(a.status.as_u16() < 500, "{what}: {} {}", a.status, a.text);
    if a.status.is_client_error() && a.json.is_object() {
        // Our own refusals say why.
        prop_assert!(a.json["error"].is_string(), "{what}: {}", a.text);
    }
    Ok(())
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn every_json_endpoint_answers_random_bodies_without_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = fixture();
    rt.block_on(async {
        raise_alert(&f.twin, "anhui");
        raise_alert(&f.twin, "shenzhen");
        let admin = f.login("admin").await;
        let made = f
            .post(
                "/api/users",
                &admin,
                json!({ "name": "fuzz.target", "full_name": "Fuzz Target", "role": "operator",
                        "scope": { "sites": ["anhui"] }, "password": "fuzz-target-password" }),
            )
            .await;
        assert_eq!(made.status.as_u16(), 201, "{}", made.text);
    });
    let token = std::cell::RefCell::new(rt.block_on(f.login("admin")));
    let runs = std::cell::Cell::new(0u64);
    runner(cases(20_000))
        .run(&(post_path(), payload()), |(path, body)| {
            runs.set(runs.get() + 1);
            let t = token.borrow().clone();
            let req = Request::post(&path)
                .header("authorization", format!("Bearer {t}"))
                .header("content-type", "application/json")
                .body(match &body {
                    Payload::Json(v) => Body::from(v.to_string()),
                    Payload::Bytes(b) => Body::from(b.clone()),
                })
                .unwrap();
            let a = rt.block_on(f.send(req));
            check(&a, &format!("POST {path} {body:?}"))?;
            if a.status.as_u16() == 401 {
                *token.borrow_mut() = rt.block_on(f.login("admin"));
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "fuzz: JSON endpoints: {} POST bodies, no panic, no 5xx",
        runs.get()
    );
}

#[test]
fn every_read_endpoint_answers_random_queries_without_a_server_error() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = fixture();
    let scoped = rt.block_on(f.login("op.anhui"));
    let runs = std::cell::Cell::new(0u64);
    runner(cases(3_000))
        .run(&get_path(), |path| {
            runs.set(runs.get() + 1);
            let a = rt.block_on(f.get(&path, &scoped));
            check(&a, &format!("GET {path}"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "fuzz: read endpoints: {} queries, no panic, no 5xx",
        runs.get()
    );
}
