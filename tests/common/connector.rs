//! The OPC UA source (`OpcUaSource`) run inside a test process, as the tests that check
//! what it delivers from a real server need it.

use std::{path::Path, sync::Arc, time::Duration};

use connectors::{OpcUaSource, SourceOptions, SourceStatus};
use model::{Sample, Site};
use tokio::{sync::mpsc, task::JoinHandle};

/// A connector running in this process; `stop` ends it cleanly.
pub struct Connector {
    pub status: Arc<SourceStatus>,
    pub samples: mpsc::Receiver<Vec<Sample>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Connector {
    pub fn start(site: Site, pki: &Path) -> Connector {
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
