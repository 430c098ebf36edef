//! OPC UA security end to end, in one process with the connector (`OpcUaSource`) against our
//! simulator, and against the Python `asyncua` server as a separate process: an untrusted
//! server certificate is refused and lands in `rejected/`; once an administrator trusts it,
//! the connector connects (Basic256Sha256 SignAndEncrypt) without a restart. Every policy and
//! mode, and the user identities (anonymous, user name with the password from the
//! environment, X.509).

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::*;
use connectors::{OpcUaSource, SourceOptions, SourceStatus};
use model::{Sample, Security, SecurityMode, SecurityPolicy, Site, UserIdentity};
use tokio::{sync::mpsc, task::JoinHandle};

/// A connector running in this process, stopped cleanly when dropped.
struct Connector {
    status: Arc<SourceStatus>,
    samples: mpsc::Receiver<Vec<Sample>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Connector {
    fn start(site: Site, pki: &Path) -> Connector {
        let opts = SourceOptions {
            publishing_interval_ms: 200,
            sampling_interval_ms: 100,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 1_000,
            pki_dir: Some(pki.to_path_buf()),
            ..SourceOptions::default()
        };
        let status = Arc::new(SourceStatus::new());
        let (tx, samples) = mpsc::channel(1_000);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let source = OpcUaSource::new(Arc::new(site), opts);
        let st = status.clone();
        let task = tokio::spawn(async move {
            let _ = source
                .run_until(tx, st, async {
                    let _ = stopped.await;
                })
                .await;
        });
        Connector {
            status,
            samples,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Waits for a batch of samples, within `limit`.
    async fn next_samples(&mut self, limit: Duration) -> Option<Vec<Sample>> {
        tokio::time::timeout(limit, self.samples.recv())
            .await
            .ok()
            .flatten()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

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
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
        ])
        .args(["-subj", "/CN=pharmatwin-test-user", "-outform", "DER"])
        .arg("-keyout")
        .arg(&user_key)
        .arg("-out")
        .arg(&user_cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (scripts/test-deps.sh installs it)");
    assert!(made.success());
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
