//! A connector (`OpcUaSource`) in the test's process and our simulator beside it: what the
//! OPC UA tests share.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use connectors::{EmbeddedStore, OpcUaSource, SourceOptions, SourceStatus};
use model::{Historian, Sample, Site};
use tokio::{sync::mpsc, task::JoinHandle};

/// A connector running in this process, stopped cleanly when dropped.
pub struct Connector {
    pub status: Arc<SourceStatus>,
    pub samples: mpsc::Receiver<Vec<Sample>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Connector {
    /// Quick to publish and to reconnect, as the tests want.
    pub fn options(pki: &Path) -> SourceOptions {
        SourceOptions {
            publishing_interval_ms: 200,
            sampling_interval_ms: 100,
            reconnect_initial_ms: 200,
            reconnect_max_ms: 1_000,
            pki_dir: Some(pki.to_path_buf()),
            ..SourceOptions::default()
        }
    }

    pub fn start(site: Site, pki: &Path) -> Connector {
        Connector::start_with(site, Connector::options(pki))
    }

    pub fn start_with(site: Site, opts: SourceOptions) -> Connector {
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
    pub async fn next_samples(&mut self, limit: Duration) -> Option<Vec<Sample>> {
        tokio::time::timeout(limit, self.samples.recv())
            .await
            .ok()
            .flatten()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}

/// Polls `f` until it holds, or panics naming `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "gave up after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Our simulator serving `site` on a free port, ticking every 200 ms.
pub async fn simulator(site: &Site, pki: &Path) -> sites::simulator::RunningSimulator {
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

/// Moves what the connector delivers into `store` until `done` holds for the store's view
/// of `path`, or `limit` passes.
pub async fn store_until(
    conn: &mut Connector,
    store: &EmbeddedStore,
    path: &str,
    limit: Duration,
    done: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let start = Instant::now();
    let since = Utc::now() - chrono::Duration::hours(1);
    loop {
        if let Some(batch) = conn.next_samples(Duration::from_millis(500)).await {
            store.write(&batch).await.unwrap();
        }
        let stored = store
            .query(path, since, Utc::now() + chrono::Duration::hours(1))
            .await
            .unwrap();
        if done(&stored) {
            return stored;
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?}; {path} stored {stored:?}; source {:?}",
            conn.status.snapshot()
        );
    }
}

/// One signal of a site on the Python peer: id, data type (`double`, `int`, …) and the
/// node's identifier in the peer's namespace.
pub struct PeerSignal<'a>(pub &'a str, pub &'a str, pub &'a str);

/// The `[site]` table of a site file for the Python peer (`tests/peers/asyncua_server.py`)
/// at `port`.
pub fn peer_site_head(port: u16) -> String {
    format!(
        r#"
[site]
id = "peer"
name = "Python asyncua peer"
namespace_uri = "urn:test:python-peer"
endpoint = "opc.tcp://127.0.0.1:{port}/freeopcua/server/"
"#
    )
}

/// A site of one equipment on the Python peer at `port`.
pub fn peer_site(port: u16, equipment: &str, signals: &[PeerSignal<'_>]) -> Site {
    let mut text = peer_site_head(port);
    text.push_str(&format!(
        r#"[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "{equipment}"
"#
    ));
    for PeerSignal(id, data_type, node) in signals {
        text.push_str(&format!(
            "[[lines.equipment.signals]]\nid = \"{id}\"\ncategory = \"machine\"\nunit = \"\"\n\
             data_type = \"{data_type}\"\nnode = \"nsu=urn:test:python-peer;s={node}\"\n"
        ));
    }
    model::load_site_text("peer.toml", &text, |_| unreachable!()).unwrap()
}

/// The Python peer on `port` with `args`, once it printed READY; its printed lines are kept.
pub fn python_peer(port: u16, args: &[&str]) -> (super::Proc, super::Lines) {
    let mut server = super::spawn(
        &format!("python asyncua server {args:?}"),
        std::process::Command::new(super::python())
            .arg(super::repo().join("tests/peers/asyncua_server.py"))
            .arg(port.to_string())
            .args(args)
            .stdout(std::process::Stdio::piped()),
    );
    let lines = super::collect_lines(&mut server);
    let ready = || lines.wait("READY", Duration::from_secs(30), &server.name);
    // Waiting blocks: inside a test's runtime, let its other tasks run meanwhile.
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(ready)
        }
        _ => ready(),
    }
    (server, lines)
}
