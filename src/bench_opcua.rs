//! `pharmatwin bench-opcua`: how many OPC UA notifications one connector decodes and hands
//! on per second from one server, against the Python `asyncua` client doing the same job in
//! the same run; and (`--soak`) whether a connector holding many items stays small and flat.
//!
//! The server is the load server of `sites::simulator` (`N` counters set to the tick's number
//! `--rate-hz` times a second) in a child process, so that the CPU and resident memory read
//! from `/proc/self` are the connector's alone and the server's are read from its own
//! `/proc/PID`. The connector is the real code path — `connectors::OpcUaSource`:
//! subscriptions, decoding, conversion to `model::Sample`, batches on a bounded channel —
//! and a counting consumer stands in for the historian. Every counter must arrive as
//! consecutive numbers: a skipped number is a lost increment.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use connectors::{OpcUaSource, SourceOptions, SourceStatus};
use model::{Sample, Site, Value};
use serde_json::{json, Value as Json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::{mpsc, oneshot},
};

/// The Python peer, compiled in so the bench runs from any directory.
const PEER_SCRIPT: &str = include_str!("../tests/peers/asyncua_client_bench.py");
/// Batches the downstream channel holds, as in `run` and `demo`.
const CHANNEL_BATCHES: usize = 256;
/// Time for the subscriptions to settle before the measuring window opens.
const WARM_UP: Duration = Duration::from_secs(2);

/// What the command line asked for.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) items: usize,
    pub(crate) seconds: u64,
    pub(crate) rate_hz: f64,
    pub(crate) publishing_ms: u64,
    pub(crate) max_notifications: u32,
    pub(crate) soak: bool,
    pub(crate) sample_every: u64,
    pub(crate) python: Option<String>,
}

/// The load server in a child process (`pharmatwin bench-opcua-server`), killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    async fn start(items: usize, rate_hz: f64) -> Result<Server> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["bench-opcua-server", "--items", &items.to_string()])
            .args(["--rate-hz", &rate_hz.to_string()])
            // The server's own start-up chatter (no certificate, which an unsecured load
            // server does not need) would bury the bench's progress lines.
            .env(
                "RUST_LOG",
                "warn,opcua_core::comms::secure_channel=off,opcua_crypto=off,opcua_server=error",
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the load server")?;
        let stdout = child.stdout.take().context("load server stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .context("the load server did not listen within 120 s")??
            .context("the load server ended before it listened")?;
        let url = line
            .strip_prefix("load server listening on ")
            .with_context(|| format!("unexpected first line of the load server: {line}"))?
            .to_string();
        Ok(Server { child, url })
    }

    fn usage(&self) -> Option<Usage> {
        Usage::of(&format!("/proc/{}", self.child.id()?))
    }
}

/// CPU seconds used so far, resident and peak resident memory (MiB) of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu_s: f64,
    rss_mib: f64,
    hwm_mib: f64,
}

impl Usage {
    fn of(proc_dir: &str) -> Option<Usage> {
        let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let stat = std::fs::read_to_string(format!("{proc_dir}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): utime is the 12th, stime
        // the 13th of them, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some(Usage {
            cpu_s: ticks / 100.0,
            rss_mib: kib("VmRSS:")? / 1024.0,
            hwm_mib: kib("VmHWM:")? / 1024.0,
        })
    }

    fn own() -> Usage {
        Usage::of("/proc/self").unwrap_or(Usage {
            cpu_s: 0.0,
            rss_mib: 0.0,
            hwm_mib: 0.0,
        })
    }
}

/// What the consumer saw of the counters.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    /// Counter values skipped: increments that never arrived.
    lost: u64,
    /// Values not newer than the item's last one (duplicates, reordering).
    repeated: u64,
    /// Values that were no integer or came for a tag not in the load site.
    foreign: u64,
    /// Per item the last value, -1 before the first.
    last: Vec<i64>,
    max: i64,
}

impl Tally {
    fn count(&mut self, index: &HashMap<usize, usize>, batch: &[Sample]) {
        for s in batch {
            self.received += 1;
            let (Some(&i), Value::Int(k)) = (index.get(&(Arc::as_ptr(&s.tag) as usize)), &s.value)
            else {
                self.foreign += 1;
                continue;
            };
            let last = self.last[i];
            if last >= 0 && *k > last + 1 {
                self.lost += (*k - last - 1) as u64;
            }
            if *k > last {
                self.last[i] = *k;
            } else {
                self.repeated += 1;
            }
            self.max = self.max.max(*k);
        }
    }
}

fn lock(t: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// The connector under test, in this process, feeding a counting consumer.
struct Connector {
    status: Arc<SourceStatus>,
    tally: Arc<Mutex<Tally>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), connectors::ConnectorError>>,
    consumer: tokio::task::JoinHandle<()>,
}

impl Connector {
    fn start(site: Arc<Site>, opts: SourceOptions) -> Connector {
        // The source hands on the site's own `Arc<Tag>`s: their addresses identify the item
        // without building its path for every sample.
        let index: HashMap<usize, usize> = site
            .signals()
            .enumerate()
            .map(|(i, (_, _, s))| (Arc::as_ptr(&s.tag) as usize, i))
            .collect();
        let tally = Arc::new(Mutex::new(Tally {
            last: vec![-1; index.len()],
            ..Tally::default()
        }));
        let (tx, mut rx) = mpsc::channel::<Vec<Sample>>(CHANNEL_BATCHES);
        let consumer = {
            let tally = tally.clone();
            tokio::spawn(async move {
                while let Some(batch) = rx.recv().await {
                    lock(&tally).count(&index, &batch);
                }
            })
        };
        let status = Arc::new(SourceStatus::new());
        let (stop, stopped) = oneshot::channel::<()>();
        let source = OpcUaSource::new(site, opts);
        let task = tokio::spawn(source.run_until(tx, status.clone(), async move {
            let _ = stopped.await;
        }));
        Connector {
            status,
            tally,
            stop: Some(stop),
            task,
            consumer,
        }
    }

    async fn wait_monitored(&self, items: usize) -> Result<()> {
        let started = Instant::now();
        loop {
            let s = self.status.snapshot();
            if s.monitored as usize == items {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(300) {
                bail!(
                    "the connector monitors {} of {items} items after 300 s (last error: {})",
                    s.monitored,
                    s.last_error.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .context("the connector did not stop within 30 s")???;
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.consumer).await;
        Ok(())
    }
}

/// Options of the connector for the bench: every change reported (sampling interval 0),
/// a queue per item that holds what a publishing interval collects, with room to spare.
fn source_options(o: &Options) -> SourceOptions {
    let per_publish = (o.rate_hz * o.publishing_ms as f64 / 1000.0).ceil() as u32;
    SourceOptions {
        publishing_interval_ms: o.publishing_ms,
        sampling_interval_ms: 0,
        queue_size: (per_publish * 4).max(10),
        max_notifications_per_publish: o.max_notifications,
        pki_dir: Some(std::env::temp_dir().join("pharmatwin-bench-opcua-pki")),
        ..SourceOptions::default()
    }
}

/// `pharmatwin bench-opcua-server`: the load server alone, until killed.
pub(crate) async fn serve(items: usize, rate_hz: f64) -> Result<()> {
    let site = Arc::new(sites::simulator::load_site(items)?);
    let server = sites::simulator::start_load(site, rate_hz, Some("opc.tcp://127.0.0.1:0/"))
        .await
        .context("load server")?;
    println!("load server listening on {}", server.endpoint_url());
    tokio::signal::ctrl_c().await.ok();
    server.shutdown().await;
    Ok(())
}

pub(crate) async fn run(o: Options) -> Result<()> {
    anyhow::ensure!(o.items > 0, "--items must be at least 1");
    anyhow::ensure!(o.seconds > 0, "--seconds must be at least 1");
    if o.soak {
        return soak(o).await;
    }
    let offered = o.items as f64 * o.rate_hz;
    eprintln!(
        "bench-opcua: {} items × {} Hz = {offered:.0} values/s offered; starting the load server",
        o.items, o.rate_hz
    );
    let server = Server::start(o.items, o.rate_hz).await?;
    let mut site = sites::simulator::load_site(o.items)?;
    site.endpoint = server.url.clone();
    let site = Arc::new(site);

    // 1. Our connector.
    let opts = source_options(&o);
    let connector = Connector::start(site, opts.clone());
    let subscribing = Instant::now();
    connector.wait_monitored(o.items).await?;
    let subscribed_s = subscribing.elapsed().as_secs_f64();
    eprintln!(
        "bench-opcua: connector monitors {} items ({} subscriptions) after {subscribed_s:.1} s; warming up",
        o.items,
        connector.status.snapshot().subscriptions
    );
    tokio::time::sleep(WARM_UP).await;
    let (n0, max0) = {
        let t = lock(&connector.tally);
        (t.received, t.max)
    };
    let (own0, srv0, t0) = (Usage::own(), server.usage(), Instant::now());
    let mut next = 5;
    while t0.elapsed() < Duration::from_secs(o.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let at = t0.elapsed().as_secs();
        if at >= next {
            next += 5;
            let n = lock(&connector.tally).received - n0;
            eprintln!(
                "bench-opcua: connector {at}/{} s, {n} values, {:.0}/s",
                o.seconds,
                n as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (own1, srv1) = (Usage::own(), server.usage());
    let (n1, max1) = {
        let t = lock(&connector.tally);
        (t.received, t.max)
    };
    let snapshot = connector.status.snapshot();
    connector_stop_note(&snapshot);
    let tally = connector.tally.clone();
    connector.stop().await?;
    let ours = {
        let t = lock(&tally);
        json!({
            "values_per_s": (n1 - n0) as f64 / elapsed,
            "received": n1 - n0,
            "seconds": elapsed,
            "offered_per_s": o.items as f64 * (max1 - max0) as f64 / elapsed,
            "cpu_s": own1.cpu_s - own0.cpu_s,
            "cpu_pct_of_core": (own1.cpu_s - own0.cpu_s) / elapsed * 100.0,
            "rss_mib": own1.rss_mib,
            "hwm_mib": own1.hwm_mib,
            "lost": t.lost,
            "repeated": t.repeated,
            "foreign": t.foreign,
            "sequence_gaps": snapshot.sequence_gaps,
            "subscriptions": snapshot.subscriptions,
            "subscribed_s": subscribed_s,
        })
    };
    let server_ours = server_cpu(srv0, srv1, elapsed);

    // 2. The Python peer, same server, same items, same window.
    let peer = match &o.python {
        Some(python) => Some(run_peer(python, &server, &o, opts.queue_size).await?),
        None => None,
    };

    let figures = json!({
        "items": o.items,
        "rate_hz": o.rate_hz,
        "offered_per_s": offered,
        "publishing_ms": o.publishing_ms,
        "max_notifications_per_publish": o.max_notifications,
        "queue_size": opts.queue_size,
        "connector": ours,
        "asyncua": peer.as_ref().map(|p| p.0.clone()),
        "server_cpu_pct_serving_connector": server_ours,
        "server_cpu_pct_serving_asyncua": peer.as_ref().and_then(|p| p.1),
    });
    print_report(&figures);
    println!("json: {figures}");
    Ok(())
}

fn connector_stop_note(s: &connectors::SourceStatusSnapshot) {
    if let Some(e) = &s.last_error {
        eprintln!("bench-opcua: the connector's last error: {e}");
    }
}

fn server_cpu(a: Option<Usage>, b: Option<Usage>, seconds: f64) -> Option<f64> {
    Some((b?.cpu_s - a?.cpu_s) / seconds * 100.0)
}

/// Runs the Python peer against the server; its figures and the server's CPU (% of a
/// core) during the peer's measuring window.
async fn run_peer(
    python: &str,
    server: &Server,
    o: &Options,
    queue_size: u32,
) -> Result<(Json, Option<f64>)> {
    let script = std::env::temp_dir().join(format!(
        "pharmatwin-asyncua-bench-{}.py",
        std::process::id()
    ));
    std::fs::write(&script, PEER_SCRIPT)?;
    let _cleanup = RemoveOnDrop(script.clone());
    eprintln!(
        "bench-opcua: Python asyncua peer subscribing to the same {} items",
        o.items
    );
    let mut child = Command::new(python)
        .arg(&script)
        .args([
            &server.url,
            sites::simulator::LOAD_NAMESPACE,
            &o.items.to_string(),
            &o.seconds.to_string(),
            &o.publishing_ms.to_string(),
            &queue_size.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start the Python peer with `{python}`"))?;
    let stdout = child.stdout.take().context("peer stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Duration::from_secs(o.seconds + 300);
    let mut window = (None, None);
    let result = tokio::time::timeout(deadline, async {
        while let Some(line) = lines.next_line().await? {
            match line.as_str() {
                "window start" => window.0 = server.usage().map(|u| (u, Instant::now())),
                "window end" => window.1 = server.usage().map(|u| (u, Instant::now())),
                _ if line.starts_with('{') => return Ok::<_, anyhow::Error>(Some(line)),
                _ => {}
            }
        }
        Ok(None)
    })
    .await;
    let line = match result {
        Ok(r) => r?,
        Err(_) => {
            let _ = child.kill().await;
            bail!(
                "the Python peer did not finish within {} s",
                deadline.as_secs()
            );
        }
    };
    let _ = child.wait().await;
    let figures: Json = serde_json::from_str(
        &line.context("the Python peer printed no figures (is asyncua installed for it?)")?,
    )
    .context("the Python peer's figures")?;
    let server_cpu = match window {
        (Some((a, ta)), Some((b, tb))) => {
            Some((b.cpu_s - a.cpu_s) / (tb - ta).as_secs_f64().max(1e-3) * 100.0)
        }
        _ => None,
    };
    Ok((figures, server_cpu))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn f(v: &Json, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn print_report(r: &Json) {
    let c = &r["connector"];
    println!(
        "## OPC UA notifications decoded and handed on, one server, {} items × {} Hz ({:.0} values/s offered), publishing every {} ms",
        r["items"], r["rate_hz"], f(r, "offered_per_s"), r["publishing_ms"]
    );
    println!(
        "connector (async-opcua, OpcUaSource → Sample batches → channel): {:.0} values/s ({} in {:.1} s; the server offered {:.0}/s), CPU {:.0} % of one core, {:.0} MiB resident; lost increments: {}, repeated: {}, sequence gaps: {}",
        f(c, "values_per_s"),
        c["received"],
        f(c, "seconds"),
        f(c, "offered_per_s"),
        f(c, "cpu_pct_of_core"),
        f(c, "rss_mib"),
        c["lost"],
        c["repeated"],
        c["sequence_gaps"],
    );
    match r["asyncua"].as_object() {
        Some(_) => {
            let p = &r["asyncua"];
            println!(
                "asyncua (Python, counting in a handler): {:.0} values/s ({} in {:.1} s), CPU {:.0} % of one core; lost increments: {}{}",
                f(p, "values_per_s"),
                p["received"],
                f(p, "seconds"),
                f(p, "cpu_s") / f(p, "seconds").max(1e-3) * 100.0,
                p["lost"],
                p["error"]
                    .as_str()
                    .map(|e| format!("; it failed: {e}"))
                    .unwrap_or_default()
            );
        }
        None => println!("asyncua: not run (no Python given)"),
    }
    println!(
        "server (async-opcua load server, child process): {:.0} % of one core serving the connector, {} serving asyncua",
        f(r, "server_cpu_pct_serving_connector"),
        r["server_cpu_pct_serving_asyncua"]
            .as_f64()
            .map(|v| format!("{v:.0} %"))
            .unwrap_or_else(|| "—".into())
    );
}

/// `--soak`: the connector holds `items` monitored items for `seconds`; its resident memory
/// is sampled every `sample_every` seconds and summarised (start, min, max, end, slope).
async fn soak(o: Options) -> Result<()> {
    eprintln!(
        "bench-opcua --soak: {} items, server tick {} Hz, publishing every {} ms, for {} s",
        o.items, o.rate_hz, o.publishing_ms, o.seconds
    );
    let server = Server::start(o.items, o.rate_hz).await?;
    let mut site = sites::simulator::load_site(o.items)?;
    site.endpoint = server.url.clone();
    // The connector as deployed (its default options), sampling and publishing at the
    // server's pace.
    let opts = SourceOptions {
        sampling_interval_ms: (1000.0 / o.rate_hz).round() as u64,
        publishing_interval_ms: o.publishing_ms,
        pki_dir: source_options(&o).pki_dir,
        ..SourceOptions::default()
    };
    let connector = Connector::start(Arc::new(site), opts);
    connector.wait_monitored(o.items).await?;
    tokio::time::sleep(WARM_UP).await;
    let t0 = Instant::now();
    let mut series: Vec<(f64, f64)> = Vec::new();
    let every = Duration::from_secs(o.sample_every.max(1));
    println!("soak: t_s rss_mib hwm_mib values lost server_rss_mib");
    loop {
        let t = t0.elapsed().as_secs_f64();
        let u = Usage::own();
        let (n, lost) = {
            let t = lock(&connector.tally);
            (t.received, t.lost)
        };
        let srv = server.usage().map(|u| u.rss_mib).unwrap_or(f64::NAN);
        println!(
            "soak: {t:.0} {:.1} {:.1} {n} {lost} {srv:.1}",
            u.rss_mib, u.hwm_mib
        );
        series.push((t, u.rss_mib));
        if t >= o.seconds as f64 {
            break;
        }
        let next =
            every.min(Duration::from_secs_f64(o.seconds as f64 - t).max(Duration::from_millis(1)));
        tokio::time::sleep(next).await;
    }
    let snapshot = connector.status.snapshot();
    connector_stop_note(&snapshot);
    let (received, lost) = {
        let t = lock(&connector.tally);
        (t.received, t.lost)
    };
    connector.stop().await?;
    let rss: Vec<f64> = series.iter().map(|s| s.1).collect();
    let min = rss.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rss.iter().copied().fold(0.0, f64::max);
    println!(
        "soak summary: {} items for {:.0} s; resident memory start {:.1} MiB, min {min:.1}, max {max:.1}, end {:.1}; slope {:+.2} MiB/h (least squares); {received} values, lost increments {lost}, sequence gaps {}, connection losses {}",
        o.items,
        series.last().map_or(0.0, |s| s.0),
        rss.first().copied().unwrap_or(0.0),
        rss.last().copied().unwrap_or(0.0),
        slope_per_hour(&series),
        snapshot.sequence_gaps,
        snapshot.connection_losses,
    );
    Ok(())
}

/// Least-squares slope of (seconds, MiB), in MiB per hour.
fn slope_per_hour(series: &[(f64, f64)]) -> f64 {
    let n = series.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = series.iter().map(|s| s.0).sum::<f64>() / n;
    let my = series.iter().map(|s| s.1).sum::<f64>() / n;
    let sxy: f64 = series.iter().map(|s| (s.0 - mx) * (s.1 - my)).sum();
    let sxx: f64 = series.iter().map(|s| (s.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx * 3600.0
    }
}
