//! The topology: which sources feed which sinks, and what the twin and the web view read.
//! Every subcommand that runs something is assembled here, from the same parts.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use connectors::{EmbeddedStore, OpcUaSource, SourceOptions, SourceStatus, WriterStats};
use model::{Historian, Site};
use tokio::{sync::mpsc, task::JoinSet};
use twin_core::Twin;

/// How simulated plants run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimSettings {
    pub(crate) speed: f64,
    pub(crate) seed: u64,
    pub(crate) tick_ms: u64,
}

/// Batches in flight between the sources and the writer; a full channel slows the sources
/// (OPC UA queues on the server) instead of dropping anything.
const CHANNEL_BATCHES: usize = 256;
/// How often the twin reads what arrived in the store.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

/// The running parts of one pipeline, for diagnostics.
struct Ingest {
    sources: Vec<Arc<SourceStatus>>,
    writer: Arc<WriterStats>,
}

/// Simulators for every site, then the same pipeline as `run`.
pub(crate) async fn demo(
    sites: Vec<Arc<Site>>,
    sim: SimSettings,
    listen: SocketAddr,
    data_dir: &Path,
) -> Result<()> {
    let mut simulators = Vec::new();
    for site in &sites {
        let running = start_simulator(site.clone(), sim).await?;
        simulators.push(running);
    }
    run(sites, listen, data_dir).await
}

/// Connectors for `sites` into the embedded store, the twin following the store, and the
/// web view — until interrupted.
pub(crate) async fn run(sites: Vec<Arc<Site>>, listen: SocketAddr, data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let store = Arc::new(EmbeddedStore::open(data_dir)?);
    let historian: Arc<dyn Historian> = store.clone();
    let mut tasks = JoinSet::new();
    let ingest = start_ingest(&sites, historian.clone(), &mut tasks);

    let twin = Twin::new(sites.clone());
    tasks.spawn(twin_core::follow(
        twin.clone(),
        historian.clone(),
        FOLLOW_INTERVAL,
    ));
    tasks.spawn(report_tag_errors(twin.clone(), ingest.sources.clone()));

    let diagnostics = {
        let sources = ingest.sources.clone();
        let writer = ingest.writer.clone();
        Arc::new(move || {
            serde_json::json!({
                "sources": sources.iter().map(|s| s.snapshot()).collect::<Vec<_>>(),
                "writer": writer.snapshot(),
            })
        })
    };
    let state = dashboards::AppState {
        twin,
        historian,
        diagnostics,
    };
    let web = dashboards::serve(listen, state, |addr| {
        // The one line a person starting the twin looks for.
        println!("PharmaTwin web view: http://{addr}/");
    });
    tokio::select! {
        r = web => r.context("web view")?,
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
    }
    tasks.shutdown().await;
    Ok(())
}

fn start_ingest(
    sites: &[Arc<Site>],
    historian: Arc<dyn Historian>,
    tasks: &mut JoinSet<()>,
) -> Ingest {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let writer = Arc::new(WriterStats::new());
    tasks.spawn(connectors::run_writer(rx, historian, writer.clone()));
    let mut sources = Vec::new();
    for site in sites {
        let status = Arc::new(SourceStatus::new());
        sources.push(status.clone());
        let source = OpcUaSource::new(site.clone(), SourceOptions::default());
        let tx = tx.clone();
        let id = site.id.clone();
        tasks.spawn(async move {
            if let Err(e) = source.run(tx, status).await {
                tracing::error!(site = %id, error = %e, "OPC UA source stopped");
            }
        });
    }
    Ingest { sources, writer }
}

/// Copies the connectors' per-tag errors into the twin, so the web view shows them on the
/// signal they concern.
async fn report_tag_errors(twin: Arc<Twin>, sources: Vec<Arc<SourceStatus>>) {
    let mut shown: std::collections::HashSet<String> = Default::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let mut now_failing = std::collections::HashSet::new();
        for s in &sources {
            for e in s.snapshot().tag_errors {
                twin.set_signal_error(&e.tag, Some(format!("{}: {}", e.status, e.message)));
                now_failing.insert(e.tag);
            }
        }
        for healed in shown.difference(&now_failing) {
            twin.set_signal_error(healed, None);
        }
        shown = now_failing;
    }
}

async fn start_simulator(
    site: Arc<Site>,
    sim: SimSettings,
) -> Result<sites::simulator::RunningSimulator> {
    let opts = sites::simulator::SimOptions {
        speed: sim.speed,
        seed: sim.seed,
        tick: Duration::from_millis(sim.tick_ms),
        ..Default::default()
    };
    let id = site.id.clone();
    sites::simulator::start(site, opts)
        .await
        .with_context(|| format!("simulator of site `{id}`"))
}

/// One simulated plant as an OPC UA server, until interrupted.
pub(crate) async fn simulate(site: Arc<Site>, sim: SimSettings) -> Result<()> {
    let running = start_simulator(site.clone(), sim).await?;
    println!(
        "simulator of `{}` listening on {} ({} signals, speed {}x, seed {})",
        site.id,
        running.endpoint_url(),
        site.signal_count(),
        sim.speed,
        sim.seed
    );
    tokio::signal::ctrl_c().await.ok();
    running.shutdown().await;
    Ok(())
}

pub(crate) async fn write(endpoint: &str, node: &str, value: &str) -> Result<()> {
    let node: model::NodeAddress = node.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let value = parse_value(value);
    connectors::write_value(endpoint, &node, &value).await?;
    println!("wrote {value} to {node}");
    Ok(())
}

/// Text from the command line as the most specific value it reads as; `write_value` shapes
/// it to the node's data type.
fn parse_value(text: &str) -> model::Value {
    if let Ok(b) = text.parse::<bool>() {
        model::Value::Bool(b)
    } else if let Ok(i) = text.parse::<i64>() {
        model::Value::Int(i)
    } else if let Ok(f) = text.parse::<f64>() {
        model::Value::Float(f)
    } else {
        model::Value::Text(text.to_string())
    }
}

pub(crate) async fn bench(_seconds: u64, _tick_ms: u64) -> Result<()> {
    anyhow::bail!("bench is not built yet")
}
