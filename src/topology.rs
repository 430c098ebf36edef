//! The topology: which sources feed which sinks, and what the twin and the web view read.
//! Every subcommand that runs something is assembled here, from the same parts.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use connectors::{EmbeddedStore, OpcUaSource, SourceOptions, SourceStatus, WriterStats};
use model::{Historian, Site};
use tokio::{sync::mpsc, task::JoinSet};
use twin_core::Twin;

use sites::scenario::Scenario;

use crate::{cli::TwinArgs, maintenance};

/// How simulated plants run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SimSettings {
    pub(crate) speed: f64,
    pub(crate) seed: u64,
    pub(crate) tick_ms: u64,
    /// Serve a tick counter instead of the plant (see `SimOptions::tick_counter`).
    pub(crate) tick_counter: bool,
}

/// Batches in flight between the sources and the writer; a full channel slows the sources
/// (OPC UA queues on the server) instead of dropping anything.
const CHANNEL_BATCHES: usize = 256;
/// How often the twin reads what arrived in the store.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);
/// InfluxDB is read with an overlap window: less often, to keep those reads cheap.
const INFLUX_FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

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
    twin: TwinArgs,
    scenario: Option<Scenario>,
    training: bool,
) -> Result<()> {
    let users = twin
        .web
        .users
        .clone()
        .unwrap_or_else(|| data_dir.join("users.json"));
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    claim_mode(data_dir, training)?;
    let ids: Vec<String> = sites.iter().map(|s| s.id.clone()).collect();
    crate::accounts::seed_demo(&users, data_dir, &ids)?;
    let mut simulators = Vec::new();
    for site in &sites {
        let running = start_simulator(site.clone(), sim, scenario.as_ref()).await?;
        // A secured simulator's certificate is trusted by the demo that started it, as an
        // administrator would trust a plant's server (`pharmatwin pki trust`).
        if let Some(cert) = running.certificate_path() {
            connectors::trust_certificate(&data_dir.join("pki"), &cert.to_string_lossy())?;
        }
        simulators.push(running);
    }
    let simulators = Arc::new(simulators);
    let training = if training {
        Some(Arc::new(training_over(
            simulators.clone(),
            sim.speed,
            data_dir,
        )?))
    } else {
        None
    };
    // The plants' clocks run `speed` times faster than their timestamps.
    run(sites, listen, data_dir, twin, sim.speed, training).await
}

/// What a data directory holds, `training` or `production`, written by the first twin that
/// uses it: training data never lands in a plant's store, nor plant data in a training one.
const MODE_FILE: &str = "MODE";

fn claim_mode(data_dir: &Path, training: bool) -> Result<()> {
    let file = data_dir.join(MODE_FILE);
    let wanted = if training { "training" } else { "production" };
    match std::fs::read_to_string(&file) {
        Ok(found) if found.trim() == wanted => Ok(()),
        Ok(found) => anyhow::bail!(
            "{}: this data directory holds {} data; a {wanted} twin needs a --data-dir of its own",
            file.display(),
            found.trim()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&file, format!("{wanted}\n"))
                .with_context(|| format!("cannot write {}", file.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", file.display())),
    }
}

/// Training on the running simulators: the built-in scenarios, injected into them.
fn training_over(
    simulators: Arc<Vec<sites::simulator::RunningSimulator>>,
    speed: f64,
    data_dir: &Path,
) -> Result<dashboards::Training> {
    let scenarios = sites::scenario::builtin_scenarios()?
        .into_iter()
        .map(|(id, sc)| dashboards::ScenarioInfo {
            id,
            name: sc.name,
            description: sc.description,
            faults: sc
                .faults
                .into_iter()
                .map(|f| dashboards::PlannedFault {
                    site: f.site,
                    line: f.line,
                    equipment: f.equipment,
                    part: f.part,
                    after_plant_hours: f.after_hours,
                    factor: f.factor,
                    signal: f.signal,
                    offline_hours: f.offline_hours,
                })
                .collect(),
        })
        .collect();
    let inject: dashboards::Injector = Arc::new(move |f: &dashboards::PlannedFault| {
        let sim = simulators
            .iter()
            .find(|s| s.site().id == f.site)
            .ok_or_else(|| format!("no simulated site `{}`", f.site))?;
        let fault = sites::scenario::Fault {
            site: f.site.clone(),
            line: f.line.clone(),
            equipment: f.equipment.clone(),
            part: f.part.clone(),
            after_hours: 0.0,
            factor: f.factor,
            signal: f.signal.clone(),
            offline_hours: f.offline_hours,
        };
        if sim.with_plant(|p| fault.apply(p)) {
            Ok(())
        } else {
            Err(format!(
                "{}/{} has no {}",
                f.line,
                f.equipment,
                fault.target()
            ))
        }
    });
    Ok(dashboards::Training::new(
        scenarios,
        inject,
        speed,
        data_dir.join("training-records.jsonl"),
    ))
}

/// Connectors for `sites` into the embedded store, the twin following the store, and the
/// web view — until interrupted.
pub(crate) async fn run(
    sites: Vec<Arc<Site>>,
    listen: SocketAddr,
    data_dir: &Path,
    mut twin: TwinArgs,
    time_scale: f64,
    training: Option<Arc<dashboards::Training>>,
) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    claim_mode(data_dir, training.is_some())?;
    let store = Arc::new(EmbeddedStore::open(data_dir)?);
    let historian: Arc<dyn Historian> = store.clone();
    let mut tasks = JoinSet::new();
    // The connectors' application certificate and trusted servers are kept with the data,
    // and so is the record of what the live stream missed.
    let opts = SourceOptions {
        pki_dir: Some(data_dir.join("pki")),
        gap_log: Some(data_dir.join("gaps.jsonl")),
        ..SourceOptions::default()
    };
    let ingest = start_ingest(&sites, historian.clone(), &opts, &mut tasks);
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
    let store = Store {
        historian,
        follow_every: FOLLOW_INTERVAL,
        diagnostics,
        sources: ingest.sources,
    };
    twin.maintenance_log
        .get_or_insert_with(|| data_dir.join("maintenance.jsonl"));
    twin.audit_log
        .get_or_insert_with(|| data_dir.join("audit.jsonl"));
    twin.web
        .users
        .get_or_insert_with(|| data_dir.join("users.json"));
    serve_twin(sites, store, listen, twin, time_scale, tasks, training).await
}

/// The InfluxDB historian for `sites`: it tags every point from their plant model.
async fn open_influx(
    sites: &[Arc<Site>],
    config: connectors::InfluxConfig,
) -> Result<Arc<connectors::InfluxHistorian>> {
    let catalog = connectors::TagCatalog::from_sites(sites.iter().map(|s| &**s));
    let influx = connectors::InfluxHistorian::open(config, catalog)
        .await
        .context("InfluxDB historian")?;
    Ok(Arc::new(influx))
}

/// One plant's connectors into InfluxDB, through the spool — until interrupted.
pub(crate) async fn edge(
    sites: Vec<Arc<Site>>,
    config: connectors::InfluxConfig,
    opts: SourceOptions,
) -> Result<()> {
    let influx = open_influx(&sites, config).await?;
    let historian: Arc<dyn Historian> = influx.clone();
    let mut tasks = JoinSet::new();
    let ingest = start_ingest(&sites, historian, &opts, &mut tasks);
    println!(
        "PharmaTwin edge: {} ({} signals) → {}",
        sites
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        sites.iter().map(|s| s.signal_count()).sum::<usize>(),
        influx.status().target
    );
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let st = influx.status();
                tracing::info!(
                    written = ingest.writer.snapshot().samples_written,
                    forwarded = st.forwarded,
                    spooled = st.spooled_samples,
                    connected = st.connected,
                    "edge"
                );
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("interrupted; stopping");
    tasks.shutdown().await;
    Ok(())
}

/// Twin core, analytics and web view reading InfluxDB — until interrupted.
pub(crate) async fn central(
    sites: Vec<Arc<Site>>,
    config: connectors::InfluxConfig,
    listen: SocketAddr,
    twin: TwinArgs,
) -> Result<()> {
    let influx = open_influx(&sites, config).await?;
    let historian: Arc<dyn Historian> = influx.clone();
    let diagnostics = Arc::new(move || serde_json::json!({ "historian": influx.status() }));
    let store = Store {
        historian,
        follow_every: INFLUX_FOLLOW_INTERVAL,
        diagnostics,
        sources: Vec::new(),
    };
    serve_twin(sites, store, listen, twin, 1.0, JoinSet::new(), None).await
}

/// What the twin reads and how: the historian, how often to tail it, what diagnostics show
/// and which sources report tag errors (none when the connectors run elsewhere).
struct Store {
    historian: Arc<dyn Historian>,
    follow_every: Duration,
    diagnostics: dashboards::Diagnostics,
    sources: Vec<Arc<SourceStatus>>,
}

/// The twin following `historian`, its quality and maintenance models, and the web view.
async fn serve_twin(
    sites: Vec<Arc<Site>>,
    store: Store,
    listen: SocketAddr,
    args: TwinArgs,
    time_scale: f64,
    mut tasks: JoinSet<()>,
    training: Option<Arc<dashboards::Training>>,
) -> Result<()> {
    let Store {
        historian,
        follow_every,
        diagnostics,
        sources,
    } = store;
    let twin = Twin::new(sites.clone());
    twin.set_time_scale(time_scale);
    if let Some(path) = &args.maintenance_log {
        let (log, records) = twin_core::MaintenanceLog::open(path)?;
        tracing::info!(path = %path.display(), records = records.len(), "maintenance log");
        twin.attach_maintenance_log(log, records);
    }
    let audit = match &args.audit_log {
        Some(path) => Some(Arc::new(audit::AuditTrail::open(path)?)),
        None => None,
    };
    let Some(users) = &args.web.users else {
        anyhow::bail!("--users: the web view needs a user file (make one with `pharmatwin users create-admin --file FILE …`)");
    };
    let access = crate::accounts::open(&args.web, users)?;
    let tls = crate::accounts::tls(&args.web)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let notifications = match &args.webhook {
        Some(url) => {
            let hook = connectors::Webhook::new(url)?;
            let (tx, rx) = mpsc::channel(1024);
            tasks.spawn(hook.run(rx));
            Some(tx)
        }
        None => None,
    };
    tasks.spawn(twin_core::follow(
        twin.clone(),
        historian.clone(),
        follow_every,
    ));
    tasks.spawn(report_tag_errors(twin.clone(), sources));
    tasks.spawn(watch_quality(
        twin.clone(),
        sites.clone(),
        args.quality_days,
    ));
    tasks.spawn(maintenance::watch(
        twin.clone(),
        sites.clone(),
        args.maintenance_days,
        notifications.clone(),
    ));
    let state = dashboards::AppState {
        twin,
        historian,
        diagnostics,
        notifications,
        audit,
        access,
        training,
    };
    let web = dashboards::serve(listen, state, tls, |addr| {
        // The one line a person starting the twin looks for.
        println!("PharmaTwin web view: {scheme}://{addr}/");
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
    opts: &SourceOptions,
    tasks: &mut JoinSet<()>,
) -> Ingest {
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let writer = Arc::new(WriterStats::new());
    tasks.spawn(connectors::run_writer(rx, historian, writer.clone()));
    let mut sources = Vec::new();
    for site in sites {
        let status = Arc::new(SourceStatus::new());
        sources.push(status.clone());
        let source = OpcUaSource::new(site.clone(), opts.clone());
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

/// How often running batches are predicted for release risk.
const QUALITY_INTERVAL: Duration = Duration::from_secs(5);

/// Trains the CQA models, then predicts the running batches and raises release-risk alerts.
///
/// The plants' own history starts empty, so the first models learn from `days` of batch
/// records of the same plant models simulated offline (version `sim-bootstrap`).
async fn watch_quality(twin: Arc<Twin>, sites: Vec<Arc<Site>>, days: f64) {
    if days <= 0.0 {
        return;
    }
    let span = tracing::info_span!("quality_models", days);
    let trained = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        train_bootstrap(&sites, days)
    })
    .await;
    match trained {
        Ok(Ok(models)) => {
            tracing::info!(
                batches = models.training_batches,
                version = %models.version,
                "quality models trained"
            );
            twin.set_quality_models(models);
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "quality models not trained; no CQA predictions");
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "quality model training failed");
            return;
        }
    }
    let mut tick = tokio::time::interval(QUALITY_INTERVAL);
    loop {
        tick.tick().await;
        for a in twin.check_release_risk(chrono::Utc::now()) {
            tracing::warn!(
                batch = %a.batch,
                cqa = %a.prediction.cqa,
                predicted = a.prediction.value,
                "release risk: batch predicted out of specification"
            );
        }
    }
}

fn train_bootstrap(sites: &[Arc<Site>], days: f64) -> Result<twin_core::QualityModels> {
    use crate::batch_history::{in_parallel, SimulatedSite};
    let start = chrono::Utc::now() - chrono::Duration::seconds((days * 86_400.0) as i64);
    let mut runs: Vec<_> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| SimulatedSite::new(s.clone(), 1_000 + i as u64, start))
        .collect();
    let progress = |site: &str, f: f64| {
        tracing::info!(
            site,
            done_pct = (100.0 * f).round(),
            "simulating batch history"
        )
    };
    let length = Duration::from_secs_f64(days * 86_400.0);
    in_parallel(&mut runs, |r| r.run(length, None, &progress));
    let records: Vec<_> = runs
        .iter()
        .flat_map(|r| r.records().cloned().collect::<Vec<_>>())
        .collect();
    Ok(twin_core::QualityModels::train(
        &records,
        "sim-bootstrap",
        chrono::Utc::now(),
    )?)
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
    scenario: Option<&Scenario>,
) -> Result<sites::simulator::RunningSimulator> {
    let opts = sites::simulator::SimOptions {
        speed: sim.speed,
        seed: sim.seed,
        tick: Duration::from_millis(sim.tick_ms),
        tick_counter: sim.tick_counter,
        faults: scenario.map(|s| s.schedule(&site.id)).unwrap_or_default(),
        ..Default::default()
    };
    let id = site.id.clone();
    sites::simulator::start(site, opts)
        .await
        .with_context(|| format!("simulator of site `{id}`"))
}

/// One simulated plant as an OPC UA server, until interrupted.
pub(crate) async fn simulate(
    site: Arc<Site>,
    sim: SimSettings,
    scenario: Option<Scenario>,
) -> Result<()> {
    let running = start_simulator(site.clone(), sim, scenario.as_ref()).await?;
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

/// Measures, in this process: samples per second from the three simulators through OPC UA
/// into the embedded store, and the delay from a value change inside a simulator to the
/// twin that the web API and the page read.
pub(crate) async fn bench(seconds: u64, tick_ms: u64) -> Result<()> {
    let data = std::env::temp_dir().join(format!("pharmatwin-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let sim = SimSettings {
        speed: 60.0,
        seed: 1,
        tick_ms,
        tick_counter: false,
    };
    let mut simulators = Vec::new();
    let mut sites = Vec::new();
    for site in sites::builtin_sites()? {
        let site = Arc::new(site);
        let opts = sites::simulator::SimOptions {
            speed: sim.speed,
            seed: sim.seed,
            tick: Duration::from_millis(sim.tick_ms),
            endpoint: Some("0".into()),
            ..Default::default()
        };
        let running = sites::simulator::start(site.clone(), opts).await?;
        let mut served = (*site).clone();
        served.endpoint = running.endpoint_url().to_string();
        sites.push(Arc::new(served));
        simulators.push(running);
    }
    let store = Arc::new(EmbeddedStore::open(&data)?);
    let historian: Arc<dyn Historian> = store.clone();
    let mut tasks = JoinSet::new();
    // Sample and publish as fast as the simulators tick, so the pipeline, not the
    // subscription's pace, is what is measured.
    let opts = SourceOptions {
        sampling_interval_ms: tick_ms,
        publishing_interval_ms: tick_ms,
        ..SourceOptions::default()
    };
    let ingest = start_ingest(&sites, historian.clone(), &opts, &mut tasks);
    let twin = Twin::new(sites.clone());
    tasks.spawn(twin_core::follow(
        twin.clone(),
        historian.clone(),
        FOLLOW_INTERVAL,
    ));

    let signals: usize = sites.iter().map(|s| s.signal_count()).sum();
    eprintln!(
        "bench: 3 simulated sites, {signals} signals, simulator tick {tick_ms} ms; warming up"
    );
    let warm = std::time::Instant::now();
    while !ingest
        .sources
        .iter()
        .all(|s| s.snapshot().monitored as usize == s.snapshot().signals)
    {
        anyhow::ensure!(
            warm.elapsed() < Duration::from_secs(60),
            "sources did not subscribe within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let start_written = ingest.writer.snapshot().samples_written;
    let started = std::time::Instant::now();
    for i in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let w = ingest.writer.snapshot().samples_written - start_written;
        eprintln!("bench: ingest {i}/{seconds} s, {w} samples stored");
    }
    let written = ingest.writer.snapshot().samples_written - start_written;
    let elapsed = started.elapsed().as_secs_f64();

    // Delay: change a set-point inside the Shenzhen simulator, wait until the twin has it.
    let path = "shenzhen/osd/line-1/dryer-01/inlet_air_temp_sp";
    let sz = &simulators[0];
    let index = sz
        .with_plant(|p| p.signal_index("line-1", "dryer-01", "inlet_air_temp_sp"))
        .context("set-point not in the plant")?;
    let mut delays = Vec::new();
    for trial in 0..20 {
        let target = 55.0 + trial as f64 * 0.5;
        let t0 = std::time::Instant::now();
        sz.with_plant(|p| p.write(index, &model::Value::Float(target)))
            .map_err(|e| anyhow::anyhow!("simulator refused the write: {e:?}"))?;
        loop {
            if twin
                .value(path)
                .is_some_and(|v| v.value.as_f64() == Some(target))
            {
                delays.push(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            anyhow::ensure!(
                t0.elapsed() < Duration::from_secs(10),
                "value change not seen within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    delays.sort_by(f64::total_cmp);
    let pct = |q: f64| delays[((delays.len() - 1) as f64 * q).round() as usize];
    println!("ingest: {:.0} samples/s simulators -> OPC UA -> embedded store ({written} samples in {elapsed:.1} s)", written as f64 / elapsed);
    println!(
        "delay simulator change -> twin (API): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} changes",
        pct(0.5),
        pct(0.95),
        pct(1.0),
        delays.len()
    );
    println!("delay to the page adds at most the event stream's 500 ms push gap");
    tasks.shutdown().await;
    for s in simulators {
        s.shutdown().await;
    }
    drop(store);
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}
