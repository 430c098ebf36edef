//! The OPC UA source end to end, in one process with the connector (`OpcUaSource`), against
//! our simulator and against the Python `asyncua` server as a separate process.
//!
//! - Security: an untrusted server certificate is refused and lands in `rejected/`; once an
//!   administrator trusts it, the connector connects (Basic256Sha256 SignAndEncrypt) without a
//!   restart. Every policy and mode, and the user identities (anonymous, user name with the
//!   password from the environment, X.509).
//! - Self-healing: a server killed and restarted (the Python one with its namespace array
//!   reordered) has values flowing again within 10 s, every tag from its own node, with
//!   connection attempts during the outage bounded by the backoff steps.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{connector::Connector, *};
use model::{Security, SecurityMode, SecurityPolicy, Site, UserIdentity};

/// Polls `f` until it holds, or panics naming `what` after `limit`.
async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "gave up after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn secured(mut site: Site, policy: SecurityPolicy, mode: SecurityMode) -> Site {
    site.security = Security {
        policy,
        mode,
        ..Security::default()
    };
    site
}

fn sichuan() -> Site {
    sites::builtin_site("sichuan").unwrap().unwrap()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

async fn simulator(site: &Site, pki: &Path) -> sites::simulator::RunningSimulator {
    sites::simulator::start(
        Arc::new(site.clone()),
        sites::simulator::SimOptions {
            endpoint: Some("0".into()),
            pki_dir: Some(pki.to_path_buf()),
            tick: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The refusal an administrator sees, then trusting the certificate the connector put in
/// `rejected/`, then data — shared by the simulator and the Python server tests.
async fn refused_then_trusted(site: Site, pki: &Path, server_cert_der: &[u8]) {
    let mut conn = Connector::start(site, pki);
    let rejected = pki.join("rejected");
    eventually(
        Duration::from_secs(20),
        "the server's certificate in rejected/ and the refusal in the diagnostics",
        || {
            files_in(&rejected).len() == 1
                && conn
                    .status
                    .snapshot()
                    .last_error
                    .is_some_and(|e| e.contains("server certificate not trusted"))
        },
    )
    .await;
    let snap = conn.status.snapshot();
    assert!(!snap.connected, "{snap:?}");
    assert_eq!(snap.sessions, 0, "no session with an untrusted server");
    assert!(snap.tag_errors.is_empty(), "a source error, not a tag's");
    let in_rejected = std::fs::read(&files_in(&rejected)[0]).unwrap();
    assert_eq!(
        in_rejected, server_cert_der,
        "the server's own certificate is kept"
    );
    assert!(
        conn.next_samples(Duration::from_secs(1)).await.is_none(),
        "nothing flows from an untrusted server"
    );

    // The administrator trusts it by its thumbprint, as listed from rejected/.
    let listed = connectors::rejected_certificates(pki).unwrap();
    assert_eq!(listed.len(), 1);
    let trusted = connectors::trust_certificate(pki, &listed[0].1.to_uppercase()).unwrap();
    assert!(trusted.starts_with(pki.join("trusted")));
    assert!(files_in(&rejected).is_empty(), "no longer in rejected/");
    let trusted_at = Instant::now();
    let batch = conn
        .next_samples(Duration::from_secs(15))
        .await
        .expect("values flow once the certificate is trusted");
    assert!(!batch.is_empty());
    let snap = conn.status.snapshot();
    assert!(snap.connected && snap.sessions == 1, "{snap:?}");
    eprintln!(
        "first values {:?} after trusting the certificate ({})",
        trusted_at.elapsed(),
        snap.security
    );
    conn.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_simulator_is_refused_until_trusted_then_flows_basic256sha256_encrypted() {
    let dir = tempfile::tempdir().unwrap();
    let site = secured(
        sichuan(),
        SecurityPolicy::Basic256Sha256,
        SecurityMode::SignAndEncrypt,
    );
    let sim = simulator(&site, &dir.path().join("sim-pki")).await;
    let mut site = site;
    site.endpoint = sim.endpoint_url().to_string();
    let cert = std::fs::read(
        sim.certificate_path()
            .expect("a secured simulator has a certificate"),
    )
    .unwrap();
    let pki = dir.path().join("connector-pki");
    refused_then_trusted(site, &pki, &cert).await;
    // The application instance certificate was made once and is kept.
    let own = pki.join("own").join("cert.der");
    let first = std::fs::read(&own).unwrap();
    let mut again = Connector::start(
        secured(
            {
                let mut s = sichuan();
                s.endpoint = sim.endpoint_url().to_string();
                s
            },
            SecurityPolicy::Basic256Sha256,
            SecurityMode::Sign,
        ),
        &pki,
    );
    assert!(again.next_samples(Duration::from_secs(15)).await.is_some());
    again.stop().await;
    assert_eq!(
        std::fs::read(&own).unwrap(),
        first,
        "certificate kept across starts"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_policy_and_mode_and_user_identity_connects_to_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    // The X.509 user: a certificate the simulator knows, its key only the connector has.
    let user_cert = dir.path().join("user-cert.der");
    let user_key = dir.path().join("user-key.pem");
    self_signed(
        &user_cert,
        &user_key,
        "/CN=pharmatwin-test-user",
        &["-outform", "DER"],
    );
    let x509 = UserIdentity::X509 {
        certificate: user_cert.clone(),
        private_key: user_key.clone(),
    };
    let password_env = "PHARMATWIN_TEST_SIM_PASSWORD";
    // SAFETY: nextest runs each test in a process of its own; nothing else reads it yet.
    unsafe { std::env::set_var(password_env, "operator-secret") };
    let user = UserIdentity::Username {
        name: "operator".into(),
        password_env: password_env.into(),
    };

    let mut served = secured(
        sichuan(),
        SecurityPolicy::Basic256Sha256,
        SecurityMode::SignAndEncrypt,
    );
    // The simulator's users: one kind a simulator; the user name one first.
    served.security.user = user.clone();
    let sim_user = simulator(&served, &dir.path().join("sim-pki")).await;
    served.security.user = x509.clone();
    let sim_x509 = simulator(&served, &dir.path().join("sim-pki-x509")).await;

    let pki = dir.path().join("connector-pki");
    for sim in [&sim_user, &sim_x509] {
        connectors::trust_certificate(&pki, sim.certificate_path().unwrap().to_str().unwrap())
            .unwrap();
    }
    let modes = [SecurityMode::Sign, SecurityMode::SignAndEncrypt];
    let mut cases = Vec::new();
    for policy in SecurityPolicy::ALL.into_iter().skip(1) {
        for (i, mode) in modes.into_iter().enumerate() {
            // Each user kind with each policy, one of the two modes each.
            let (sim, identity) = match i {
                0 => (&sim_user, UserIdentity::Anonymous),
                _ => (&sim_user, user.clone()),
            };
            cases.push((policy, mode, sim, identity));
        }
        cases.push((
            policy,
            SecurityMode::SignAndEncrypt,
            &sim_x509,
            x509.clone(),
        ));
    }
    for (policy, mode, sim, identity) in cases {
        let mut site = secured(sichuan(), policy, mode);
        site.endpoint = sim.endpoint_url().to_string();
        site.security.user = identity.clone();
        let mut conn = Connector::start(site, &pki);
        let got = conn.next_samples(Duration::from_secs(15)).await;
        let snap = conn.status.snapshot();
        assert!(
            got.is_some_and(|b| !b.is_empty()),
            "{policy:?} {mode:?} {identity:?}: no values; {snap:?}"
        );
        conn.stop().await;
    }

    // A wrong password is refused, and said so in the diagnostics.
    unsafe { std::env::set_var("PHARMATWIN_TEST_WRONG_PASSWORD", "guess") };
    let mut site = secured(
        sichuan(),
        SecurityPolicy::Basic256Sha256,
        SecurityMode::Sign,
    );
    site.endpoint = sim_user.endpoint_url().to_string();
    site.security.user = UserIdentity::Username {
        name: "operator".into(),
        password_env: "PHARMATWIN_TEST_WRONG_PASSWORD".into(),
    };
    let mut conn = Connector::start(site.clone(), &pki);
    eventually(
        Duration::from_secs(15),
        "the refused login in the diagnostics",
        || {
            conn.status
                .snapshot()
                .last_error
                .is_some_and(|e| e.contains("Bad"))
        },
    )
    .await;
    assert!(conn
        .next_samples(Duration::from_millis(500))
        .await
        .is_none());
    assert!(!conn.status.snapshot().connected);
    conn.stop().await;

    // A password variable that is not set is named, not tried.
    site.security.user = UserIdentity::Username {
        name: "operator".into(),
        password_env: "PHARMATWIN_TEST_UNSET_PASSWORD".into(),
    };
    let conn = Connector::start(site, &pki);
    eventually(Duration::from_secs(10), "the unset variable named", || {
        conn.status
            .snapshot()
            .last_error
            .is_some_and(|e| e.contains("PHARMATWIN_TEST_UNSET_PASSWORD"))
    })
    .await;
    conn.stop().await;
    sim_user.shutdown().await;
    sim_x509.shutdown().await;
}

fn python_site(port: u16, policy: SecurityPolicy, mode: SecurityMode, user: UserIdentity) -> Site {
    let text = format!(
        r#"
[site]
id = "peer"
name = "Python asyncua peer"
namespace_uri = "urn:test:python-peer"
endpoint = "opc.tcp://127.0.0.1:{port}/freeopcua/server/"
[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "oven"
[[lines.equipment.signals]]
id = "count"
category = "machine"
unit = ""
data_type = "int"
node = "nsu=urn:test:python-peer;s=Line1.Oven.Count"
"#
    );
    let mut site = model::load_site_text("peer.toml", &text, |_| unreachable!()).unwrap();
    site.security = Security {
        policy,
        mode,
        user,
        pki_dir: None,
    };
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_python_server_is_refused_until_trusted_then_flows_with_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server_pki = dir.path().join("python-pki");
    let password_env = "PHARMATWIN_TEST_PEER_PASSWORD";
    unsafe { std::env::set_var(password_env, "peer-secret") };
    let mut server = spawn(
        "python asyncua server (secured)",
        Command::new(python())
            .arg(repo().join("tests/peers/asyncua_server.py"))
            .arg(port.to_string())
            .arg("--secure")
            .arg(&server_pki)
            .args(["--user", "operator", "--password-env", password_env])
            .stdout(Stdio::piped()),
    );
    tokio::task::block_in_place(|| wait_for_line(&mut server, "READY", Duration::from_secs(30)));
    let cert = std::fs::read(server_pki.join("server-cert.der")).unwrap();
    let user = UserIdentity::Username {
        name: "operator".into(),
        password_env: password_env.into(),
    };
    let pki = dir.path().join("connector-pki");
    refused_then_trusted(
        python_site(
            port,
            SecurityPolicy::Basic256Sha256,
            SecurityMode::SignAndEncrypt,
            user.clone(),
        ),
        &pki,
        &cert,
    )
    .await;
    // The other policies against the same, now trusted, server.
    for policy in [
        SecurityPolicy::Aes128Sha256RsaOaep,
        SecurityPolicy::Aes256Sha256RsaPss,
    ] {
        for mode in [SecurityMode::Sign, SecurityMode::SignAndEncrypt] {
            let mut conn = Connector::start(python_site(port, policy, mode, user.clone()), &pki);
            let got = conn.next_samples(Duration::from_secs(15)).await;
            let snap = conn.status.snapshot();
            assert!(got.is_some(), "{policy:?} {mode:?}: no values; {snap:?}");
            conn.stop().await;
        }
    }
    // An unsecured connector finds no door, and says which ones there are.
    let conn = Connector::start(
        python_site(
            port,
            SecurityPolicy::None,
            SecurityMode::None,
            UserIdentity::Anonymous,
        ),
        &pki,
    );
    eventually(
        Duration::from_secs(10),
        "no matching endpoint reported",
        || {
            conn.status
                .snapshot()
                .last_error
                .is_some_and(|e| e.contains("offers no endpoint") && e.contains("Basic256Sha256"))
        },
    )
    .await;
    conn.stop().await;
}

/// Most connection attempts a backoff from `initial` doubling up to `max` can make in
/// `outage` (one at the start, one after each wait), plus one for an attempt in flight.
fn backoff_attempts(outage: Duration, initial: Duration, max: Duration) -> u64 {
    let (mut waited, mut wait, mut attempts) = (Duration::ZERO, initial, 1);
    while waited + wait <= outage {
        waited += wait;
        wait = (wait * 2).min(max);
        attempts += 1;
    }
    attempts + 1
}

const COUNTERS: usize = 20;

/// `counters` signals `c<i>` on the peer's `s=Counter.<i>`, and `ghost` on a node it does not
/// have when `ghost` is set.
fn counters_site(port: u16, counters: usize, ghost: bool) -> Site {
    let mut text = format!(
        r#"
[site]
id = "peer"
name = "Python asyncua peer"
namespace_uri = "urn:test:python-peer"
endpoint = "opc.tcp://127.0.0.1:{port}/freeopcua/server/"
[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "counters"
"#
    );
    if ghost {
        text.push_str(
            "[[lines.equipment.signals]]\nid = \"ghost\"\ncategory = \"machine\"\nunit = \"\"\n\
             node = \"nsu=urn:test:python-peer;s=Counter.DoesNotExist\"\n",
        );
    }
    for i in 0..counters {
        text.push_str(&format!(
            "[[lines.equipment.signals]]\nid = \"c{i}\"\ncategory = \"machine\"\nunit = \"\"\n\
             data_type = \"int\"\nnode = \"nsu=urn:test:python-peer;s=Counter.{i}\"\n"
        ));
    }
    model::load_site_text("peer.toml", &text, |_| unreachable!()).unwrap()
}

fn python_counters(port: u16, counters: usize, extra_namespaces: u32) -> Proc {
    python_counters_with(port, counters, extra_namespaces, &[])
}

fn python_counters_with(port: u16, counters: usize, extra_namespaces: u32, more: &[&str]) -> Proc {
    let mut server = spawn(
        "python asyncua server (counters)",
        Command::new(python())
            .arg(repo().join("tests/peers/asyncua_server.py"))
            .arg(port.to_string())
            .args(["--counters", &counters.to_string()])
            .args(["--extra-namespaces", &extra_namespaces.to_string()])
            .args(more)
            .stdout(Stdio::piped()),
    );
    tokio::task::block_in_place(|| wait_for_line(&mut server, "READY", Duration::from_secs(30)));
    server
}

/// Waits until every counter delivered a value; checks each came from its own node (counter
/// `i` holds `i × 1,000,000 + tick`). Returns how long it took.
async fn every_counter_from_its_node(
    conn: &mut Connector,
    counters: usize,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < counters {
        let left = limit.saturating_sub(start.elapsed());
        let Some(batch) = conn.next_samples(left).await else {
            panic!(
                "only {} of {counters} counters delivered within {limit:?}: {:?}",
                seen.len(),
                conn.status.snapshot()
            );
        };
        for s in batch {
            let i: usize = s.tag.signal[1..].parse().unwrap();
            let model::Value::Int(v) = s.value else {
                panic!("{s:?}")
            };
            assert_eq!(
                v / 1_000_000,
                i as i64,
                "tag {} got the value of another node",
                s.tag.signal
            );
            seen.insert(i);
        }
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_python_server_with_reordered_namespaces_flows_again_within_10_s() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = python_counters(port, COUNTERS, 0);
    let mut conn = Connector::start(
        counters_site(port, COUNTERS, false),
        &dir.path().join("pki"),
    );
    every_counter_from_its_node(&mut conn, COUNTERS, Duration::from_secs(20)).await;
    let before = conn.status.snapshot();

    let killed = Instant::now();
    drop(server);
    eventually(Duration::from_secs(10), "the loss noticed", || {
        !conn.status.is_connected()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Back with three namespaces in front of the peer's: its index moves from 2 to 5.
    server = python_counters(port, COUNTERS, 3);
    let back = Instant::now();
    while conn.samples.try_recv().is_ok() {}
    let took = every_counter_from_its_node(&mut conn, COUNTERS, Duration::from_secs(10)).await;
    let outage = back.duration_since(killed) + took;
    let after = conn.status.snapshot();
    let attempts = after.connect_attempts - before.connect_attempts;
    let bound = backoff_attempts(outage, Duration::from_millis(200), Duration::from_secs(1));
    eprintln!(
        "values again {took:?} after the server was back; outage {outage:?}; \
         {attempts} connection attempts (bound {bound})"
    );
    assert!(took <= Duration::from_secs(10));
    assert!(
        attempts <= bound,
        "{attempts} attempts in {outage:?}, bound {bound}"
    );
    assert_eq!(after.sessions, before.sessions + 1, "one new session");
    assert!(after.tag_errors.is_empty(), "{:?}", after.tag_errors);
    conn.stop().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_simulator_flows_again_within_10_s_with_bounded_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let site = sichuan();
    let sim = simulator(&site, &dir.path().join("sim-pki")).await;
    let port = sim.local_addr().port();
    let mut served = site.clone();
    served.endpoint = sim.endpoint_url().to_string();
    let mut conn = Connector::start(served, &dir.path().join("pki"));
    assert!(conn.next_samples(Duration::from_secs(20)).await.is_some());
    let before = conn.status.snapshot();

    let killed = Instant::now();
    sim.shutdown().await;
    eventually(Duration::from_secs(10), "the loss noticed", || {
        !conn.status.is_connected()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let sim = sites::simulator::start(
        Arc::new(site.clone()),
        sites::simulator::SimOptions {
            endpoint: Some(port.to_string()),
            pki_dir: Some(dir.path().join("sim-pki")),
            tick: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let back = Instant::now();
    while conn.samples.try_recv().is_ok() {}
    // Values stamped after the restart: not ones queued before it.
    let mut fresh = false;
    while !fresh {
        let left = Duration::from_secs(10).saturating_sub(back.elapsed());
        let batch = conn
            .next_samples(left)
            .await
            .unwrap_or_else(|| panic!("no values within 10 s: {:?}", conn.status.snapshot()));
        fresh = batch.iter().any(|s| {
            s.source_ts >= chrono::Utc::now() - chrono::Duration::from_std(back.elapsed()).unwrap()
        });
    }
    let took = back.elapsed();
    let outage = back.duration_since(killed) + took;
    let after = conn.status.snapshot();
    let attempts = after.connect_attempts - before.connect_attempts;
    let bound = backoff_attempts(outage, Duration::from_millis(200), Duration::from_secs(1));
    eprintln!(
        "values again {took:?} after the simulator was back; outage {outage:?}; \
         {attempts} connection attempts (bound {bound})"
    );
    assert!(
        attempts <= bound,
        "{attempts} attempts in {outage:?}, bound {bound}"
    );
    assert!(after.tag_errors.is_empty(), "{:?}", after.tag_errors);
    conn.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invalid_node_among_2000_python_tags_is_reported_and_the_other_1999_flow() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = python_counters(port, 1_999, 0);
    let mut conn = Connector::start(counters_site(port, 1_999, true), &dir.path().join("pki"));
    let took = every_counter_from_its_node(&mut conn, 1_999, Duration::from_secs(60)).await;
    let snap = conn.status.snapshot();
    eprintln!("all 1,999 valid tags delivered {took:?} after the start");
    assert_eq!(snap.signals, 2_000);
    assert_eq!(snap.tag_errors.len(), 1, "{:?}", snap.tag_errors);
    let bad = &snap.tag_errors[0];
    assert!(bad.tag.ends_with("/ghost"), "{bad:?}");
    assert!(bad.node.contains("Counter.DoesNotExist"), "{bad:?}");
    assert!(bad.status.contains("BadNodeIdUnknown"), "{bad:?}");
    conn.stop().await;
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_stop_start_cycles_leak_no_session_on_the_server_and_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn(
        "python asyncua server (sessions)",
        Command::new(python())
            .arg(repo().join("tests/peers/asyncua_server.py"))
            .arg(port.to_string())
            .args(["--counters", "5", "--report-sessions"])
            .stdout(Stdio::piped()),
    );
    // The server's own count of open sessions, from its `SESSIONS n` lines.
    let open = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let most = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let out = server.child.stdout.take().unwrap();
        let open = open.clone();
        let most = most.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("READY") {
                    let _ = ready_tx.send(());
                } else if let Some(n) = line.strip_prefix("SESSIONS ") {
                    let n: i64 = n.trim().parse().unwrap();
                    open.store(n, std::sync::atomic::Ordering::Relaxed);
                    most.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let site = counters_site(port, 5, false);
    let pki = dir.path().join("pki");
    let mut rss_after_warmup = 0;
    let start = Instant::now();
    for cycle in 1..=100 {
        let mut conn = Connector::start(site.clone(), &pki);
        assert!(
            conn.next_samples(Duration::from_secs(15)).await.is_some(),
            "cycle {cycle}: no values; {:?}",
            conn.status.snapshot()
        );
        conn.stop().await;
        if cycle == 10 {
            rss_after_warmup = rss_kib();
        }
    }
    let rss_end = rss_kib();
    let sessions = || open.load(std::sync::atomic::Ordering::Relaxed);
    eventually(
        Duration::from_secs(5),
        "the server's sessions back to 0",
        || sessions() == 0,
    )
    .await;
    assert!(
        most.load(std::sync::atomic::Ordering::Relaxed) >= 1,
        "the server never reported the connector's session: the count proves nothing"
    );
    let growth = rss_end as i64 - rss_after_warmup as i64;
    eprintln!(
        "100 cycles in {:?}; server sessions open after: {}; RSS after 10 cycles {} KiB, after 100 {} KiB ({:+} KiB)",
        start.elapsed(),
        sessions(),
        rss_after_warmup,
        rss_end,
        growth
    );
    // 90 cycles: a leak of one session's buffers (hundreds of KiB) each would pass 4 MiB.
    assert!(growth < 4 * 1024, "RSS grew {growth} KiB over 90 cycles");
}
