//! Users, roles and site scopes against the running demo: what an Anhui operator can and
//! cannot see and do, signed acceptance of a predicted CQA, a password-guessing flood, the
//! first admin from the command line, and the web view over TLS.

mod common;

use std::{
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::*;
use serde_json::json;

#[test]
fn an_anhui_operator_sees_anhui_only_and_quality_signs_a_predicted_cqa() {
    let demo = start_demo();
    let admin = demo.admin();
    let op = demo.api("op.anhui");
    assert_eq!(op.me["role"], "operator");

    // Batches with predictions at every site.
    let batches = wait_for(
        Duration::from_secs(60),
        "predicted batches at every site",
        || {
            let v = admin.get_json("/api/batches").ok()?;
            let list = v.as_array()?.clone();
            let predicted = |site: &str| {
                list.iter().find(|b| {
                    b["site"] == site && !b["predictions"].as_array().is_none_or(|p| p.is_empty())
                })
            };
            Some((predicted("shenzhen")?.clone(), predicted("anhui")?.clone()))
        },
    );
    let (shenzhen, anhui) = batches;
    let sz = shenzhen["id"].as_str().unwrap();
    let ah = anhui["id"].as_str().unwrap();
    assert_eq!(op.status(&format!("/api/batches/{sz}")), 403);
    assert_eq!(op.status(&format!("/api/batches/{ah}")), 200);
    let theirs = op.get_json("/api/batches").unwrap();
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["site"] == "anhui"));

    // Accepting a prediction is quality's, signed.
    let sig = json!({ "password": DEMO_PASSWORD, "meaning": "approved" });
    let (code, body) = op.post_json(
        &format!("/api/batches/{ah}/accept"),
        json!({ "signature": sig }),
    );
    assert_eq!(code, 403, "{body}");
    let quality = demo.api("quality");
    let (code, body) = quality.post_json(
        &format!("/api/batches/{ah}/accept"),
        json!({ "signature": { "password": "wrong-password", "meaning": "approved" } }),
    );
    assert_eq!(code, 403, "{body}");
    let (code, body) = quality.post_json(
        &format!("/api/batches/{ah}/accept"),
        json!({ "signature": sig, "comment": "released to packaging on prediction" }),
    );
    assert_eq!(code, 200, "{body}");
    let signed = body["signed"].as_str().unwrap();
    assert!(
        signed.starts_with("Chen Jing 陈静 (quality), approved, "),
        "{signed}"
    );
    assert!(
        body["predictions"][0]["model_version"].is_string(),
        "{body}"
    );

    // The audit trail shows it to quality, not to the operator; the chain holds.
    assert_eq!(op.status("/api/audit"), 403);
    let trail = quality.get_json("/api/audit?limit=500").unwrap();
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "prediction.accept",
        "signature.refused",
        "login.success",
        "user.create",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let file = demo.data.path().join("audit.jsonl");
    let out = run_ok(&["audit", "verify", "--file", file.to_str().unwrap()]);
    assert!(out.contains("chain intact"), "{out}");

    // The page as the operator sees it: Anhui only.
    let out = headless(&[
        "--virtual-time-budget=5000",
        "--dump-dom",
        &op.browser_url("/"),
    ]);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-site=\"anhui\""), "Anhui drawn");
    assert!(
        !dom.contains("data-site=\"shenzhen\"") && !dom.contains("data-site=\"sichuan\""),
        "no other plant on an Anhui operator's page"
    );
    assert!(
        dom.contains("data-user=\"op.anhui\""),
        "who is logged in is shown"
    );
}

#[test]
fn ten_thousand_wrong_passwords_lock_the_account_and_the_server_stays_responsive() {
    let demo = start_demo_with(&["--quality-days", "0", "--maintenance-days", "0"]);
    let watcher = demo.admin();
    let base = demo.base.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, worst_ms) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    // A user at work while the flood runs: every request answered.
    let probe = {
        let (stop, answered, worst_ms) = (stop.clone(), answered.clone(), worst_ms.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let v = watcher
                    .get_json("/api/sites")
                    .expect("served during the flood");
                assert_eq!(v.as_array().unwrap().len(), 3);
                answered.fetch_add(1, Ordering::Relaxed);
                worst_ms.fetch_max(t.elapsed().as_millis() as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    let attempts = 10_000;
    let per_thread = attempts / 4;
    let floods: Vec<_> = (0..4)
        .map(|_| {
            let base = base.clone();
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(30))
                    .build();
                let mut codes = std::collections::BTreeMap::new();
                for i in 0..per_thread {
                    let r = agent
                        .post(&format!("{base}/api/login"))
                        .send_json(json!({ "user": "op.anhui", "password": format!("guess-{i}") }));
                    let code = match r {
                        Ok(r) => r.status(),
                        Err(ureq::Error::Status(c, _)) => c,
                        Err(e) => panic!("login attempt {i}: {e}"),
                    };
                    *codes.entry(code).or_insert(0u32) += 1;
                }
                codes
            })
        })
        .collect();
    let mut codes = std::collections::BTreeMap::new();
    for f in floods {
        for (c, n) in f.join().unwrap() {
            *codes.entry(c).or_insert(0) += n;
        }
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    probe.join().unwrap();
    eprintln!(
        "{attempts} wrong passwords in {took:.1?} ({:.0}/s): {codes:?}; {} reads served meanwhile, slowest {} ms",
        attempts as f64 / took.as_secs_f64(),
        answered.load(Ordering::Relaxed),
        worst_ms.load(Ordering::Relaxed)
    );
    assert_eq!(codes.values().sum::<u32>(), attempts as u32);
    assert!(!codes.contains_key(&200), "no guess got in");
    assert!(
        codes.get(&401).copied().unwrap_or(0) <= 5,
        "at most 5 guesses checked before the lock: {codes:?}"
    );
    assert!(
        answered.load(Ordering::Relaxed) > 0,
        "the server answered other users"
    );

    // Locked: the right password is refused too (once the client may try again).
    let locked = wait_for(
        Duration::from_secs(20),
        "a login not rate-limited",
        || match Api::login(&base, "op.anhui", DEMO_PASSWORD) {
            Err((429, _)) => None,
            other => Some(other),
        },
    );
    let (code, text) = locked.expect_err("locked");
    assert_eq!(code, 423, "{text}");
    assert!(text.contains("locked"), "{text}");
    // Another user of the same plant is not affected.
    let maint = wait_for(Duration::from_secs(20), "maint.anhui logs in", || {
        Api::login(&base, "maint.anhui", DEMO_PASSWORD).ok()
    });
    assert_eq!(maint.me["role"], "maintenance");

    // The lock and the failures are in the audit trail; the flood did not fill it.
    let trail = std::fs::read_to_string(demo.data.path().join("audit.jsonl")).unwrap();
    assert!(trail.contains("\"account.locked\""));
    let failures = trail.matches("\"login.failure\"").count();
    assert!((5..100).contains(&failures), "{failures} failure records");
    // An admin unlocks from the command line; the operator is back.
    let users = demo.data.path().join("users.json");
    run_ok(&[
        "users",
        "unlock",
        "--file",
        users.to_str().unwrap(),
        "--name",
        "op.anhui",
        "--reason",
        "user verified by phone",
    ]);
    let list = run_ok(&["users", "list", "--file", users.to_str().unwrap()]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("op.anhui\toperator") && !l.contains("locked")),
        "{list}"
    );
}

#[test]
fn the_first_admin_comes_from_the_command_line_with_the_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.json");
    let users_s = users.to_str().unwrap();
    let args = [
        "users",
        "create-admin",
        "--file",
        users_s,
        "--name",
        "root",
        "--full-name",
        "R. Admin",
    ];
    let out = pharmatwin(&args)
        .env_remove("PHARMATWIN_PASSWORD")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PHARMATWIN_PASSWORD"), "{err}");
    create_admin(&users);
    let out = pharmatwin(&args)
        .env("PHARMATWIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a second first admin is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin exists"));
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(!text.contains(ADMIN_PASSWORD), "only the hash is kept");
    let audit = dir.path().join("audit.jsonl");
    let out = run_ok(&["audit", "export", "--file", audit.to_str().unwrap()]);
    assert!(out.contains("user.create") && out.contains("cli:"), "{out}");
}

#[test]
fn the_web_view_serves_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    self_signed(
        &cert,
        &key,
        "/CN=localhost",
        &["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    );
    let web = free_port();
    let listen = format!("127.0.0.1:{web}");
    let port_base = free_port_block(3).to_string();
    let data = dir.path().join("data");
    let mut proc = spawn(
        "pharmatwin demo (TLS)",
        pharmatwin(&[
            "demo",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
            "--opcua-port-base",
            &port_base,
            "--quality-days",
            "0",
            "--maintenance-days",
            "0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ])
        .env("PHARMATWIN_DEMO_PASSWORD", DEMO_PASSWORD)
        .stdout(Stdio::piped()),
    );
    let base = format!("https://{listen}");
    wait_for_line(&mut proc, &base, Duration::from_secs(20));
    let curl = |args: &[&str]| {
        std::process::Command::new("curl")
            .args(["-s", "-S", "-i", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .args(args)
            .output()
            .unwrap()
    };
    let out = wait_for(Duration::from_secs(10), "HTTPS answers", || {
        let o = curl(&[&format!("{base}/api/health")]);
        o.status.success().then_some(o)
    });
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.contains("200"), "{head}");
    assert!(
        head.to_lowercase().contains("strict-transport-security"),
        "{head}"
    );
    let body = format!("{{\"user\":\"admin\",\"password\":\"{DEMO_PASSWORD}\"}}");
    let out = curl(&[
        "-H",
        "content-type: application/json",
        "-d",
        &body,
        &format!("{base}/api/login"),
    ]);
    let head = String::from_utf8_lossy(&out.stdout);
    let cookie = head
        .lines()
        .find(|l| l.to_lowercase().starts_with("set-cookie"))
        .unwrap_or_else(|| panic!("{head}"));
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP on the TLS port gets nowhere.
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            &format!("http://{listen}/api/health"),
        ])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("\"ok\""));
    // A bad key is named at start-up.
    let out = pharmatwin(&[
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        cert.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-cert/--tls-key") && err.contains("private key"),
        "{err}"
    );
}
