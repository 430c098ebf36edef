//! `pharmatwin bench-web`: the web view under a control room's load, measured from outside.
//!
//! Starts the demo as a child process (so the resident memory measured is the server's
//! alone), then
//! 1. times the requests each view makes for its first paint (server time as seen on
//!    loopback, an upper bound of it), idle and again under load;
//! 2. opens `--viewers` live streams — a third watching the overview, the rest a line each —
//!    and measures how far behind the twin every viewer is when an update reaches it, and
//!    whether any viewer dropped or missed updates;
//! 3. samples the server's resident memory and CPU throughout.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::task::JoinSet;

const PASSWORD: &str = "bench-password-not-secret";
/// Repetitions of each first-paint request.
const RENDER_ROUNDS: usize = 30;

/// The demo, stopped (and its data removed) when dropped.
struct Server {
    child: Child,
    base: String,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl Server {
    fn start() -> Result<Server> {
        let data =
            std::env::temp_dir().join(format!("pharmatwin-bench-web-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let mut child = Command::new(std::env::current_exe()?)
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .args(["--opcua-port-base", &free_port_block(3)?.to_string()])
            .env("PHARMATWIN_DEMO_PASSWORD", PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the demo")?;
        let stdout = child.stdout.take().context("demo stdout")?;
        let mut server = Server {
            child,
            base: String::new(),
            data,
        };
        // The demo prints its address once it listens.
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            if let Some(url) = line.strip_prefix("PharmaTwin web view: ") {
                server.base = url.trim_end_matches('/').to_string();
                return Ok(server);
            }
        }
        bail!("the demo ended before it served the web view")
    }

    /// Resident and peak resident memory in MiB, and CPU seconds used so far.
    fn usage(&self) -> Option<(f64, f64, f64)> {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse().ok()
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may hold spaces): utime is the 12th, stime
        // the 13th of them, in clock ticks (100 per second on Linux).
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((
            kib("VmRSS:")? / 1024.0,
            kib("VmHWM:")? / 1024.0,
            ticks / 100.0,
        ))
    }
}

struct Viewer {
    token: String,
    /// `?site=&line=`, or empty for the overview.
    query: String,
}

#[derive(Default)]
struct Seen {
    updates: u64,
    bytes: u64,
    signals_events: u64,
    /// Milliseconds from a change entering the twin to the viewer receiving a view with it.
    behind_ms: Vec<f64>,
    last_version: u64,
    went_back: u64,
    error: Option<String>,
}

pub(crate) async fn run(viewers: usize, seconds: u64) -> Result<()> {
    anyhow::ensure!(viewers > 0, "--viewers must be at least 1");
    let server = Server::start()?;
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(viewers + 16)
        .build()?;
    eprintln!("bench-web: demo at {base}; waiting for the plants");

    let mut tokens = BTreeMap::new();
    for user in [
        "admin",
        "hq",
        "op.shenzhen",
        "op.anhui",
        "op.sichuan",
        "maint.anhui",
    ] {
        tokens.insert(user, login(&http, &base, user).await?);
    }
    let admin = tokens["admin"].clone();
    let sites = wait_for_plants(&http, &base, &admin).await?;
    let signals: usize = sites
        .iter()
        .map(|s| s["signals"].as_u64().unwrap_or(0) as usize)
        .sum();
    eprintln!("bench-web: {} sites, {signals} signals live", sites.len());

    let views = first_paint_requests(&http, &base, &admin, &sites).await?;
    let idle = time_views(&http, &base, &admin, &views).await?;

    // Viewers: a third on the overview (HQ), the rest on a line of their own plant.
    let mut lines = Vec::new();
    for s in &sites {
        let site = s["id"].as_str().unwrap_or_default().to_string();
        for l in s["lines"].as_array().into_iter().flatten() {
            lines.push((
                site.clone(),
                l["id"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let plan: Vec<Viewer> = (0..viewers)
        .map(|i| {
            if i % 3 == 0 || lines.is_empty() {
                let who = if i % 2 == 0 { "hq" } else { "admin" };
                Viewer {
                    token: tokens[who].clone(),
                    query: String::new(),
                }
            } else {
                let (site, line) = &lines[i % lines.len()];
                let who = match site.as_str() {
                    "shenzhen" => "op.shenzhen",
                    "anhui" => "op.anhui",
                    "sichuan" => "op.sichuan",
                    _ => "admin",
                };
                Viewer {
                    token: tokens.get(who).unwrap_or(&admin).clone(),
                    query: format!("?site={site}&line={line}"),
                }
            }
        })
        .collect();
    let seen: Vec<Arc<Mutex<Seen>>> = (0..viewers).map(|_| Arc::default()).collect();
    let before = server.usage();
    let mut streams = JoinSet::new();
    for (v, s) in plan.into_iter().zip(&seen) {
        streams.spawn(watch(http.clone(), base.clone(), v, s.clone()));
    }
    // Let every stream connect before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let connected_at = Instant::now();
    let counts_at_start: Vec<u64> = seen.iter().map(|s| lock(s).updates).collect();
    let mut peak_rss = 0f64;
    for i in 1..=seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Some((rss, _, _)) = server.usage() {
            peak_rss = peak_rss.max(rss);
        }
        if i % 10 == 0 || i == seconds {
            let updates: u64 = seen.iter().map(|s| lock(s).updates).sum();
            eprintln!("bench-web: {i}/{seconds} s, {viewers} viewers, {updates} updates delivered");
        }
    }
    let loaded = time_views(&http, &base, &admin, &views).await?;
    let elapsed = connected_at.elapsed().as_secs_f64();
    let after = server.usage();
    streams.abort_all();

    // Figures.
    let mut behind: Vec<f64> = Vec::new();
    let mut per_viewer_rate = Vec::new();
    let (mut errors, mut went_back, mut bytes, mut signals_events) = (0, 0, 0, 0);
    let newest = seen.iter().map(|s| lock(s).last_version).max().unwrap_or(0);
    let mut behind_at_end = 0;
    for (s, start) in seen.iter().zip(counts_at_start) {
        let s = lock(s);
        behind.extend(&s.behind_ms);
        per_viewer_rate.push((s.updates - start) as f64 / elapsed);
        errors += usize::from(s.error.is_some());
        went_back += s.went_back;
        bytes += s.bytes;
        signals_events += s.signals_events;
        // Within two pushes of the newest version any viewer saw.
        if s.last_version + 2 < newest {
            behind_at_end += 1;
        }
    }
    behind.sort_by(f64::total_cmp);
    per_viewer_rate.sort_by(f64::total_cmp);
    let over_1s = behind.iter().filter(|ms| **ms > 1000.0).count();

    println!(
        "## first paint, server time per request ({RENDER_ROUNDS} rounds; ms p50 / p95 / max)"
    );
    for ((view, idle), (_, loaded)) in idle.iter().zip(&loaded) {
        println!(
            "{view:<28} idle {:>6.1} / {:>6.1} / {:>6.1}   with {viewers} viewers {:>6.1} / {:>6.1} / {:>6.1}",
            idle.0, idle.1, idle.2, loaded.0, loaded.1, loaded.2
        );
    }
    let worst = idle
        .iter()
        .chain(&loaded)
        .map(|(_, t)| t.1)
        .fold(0f64, f64::max);
    println!("slowest view request p95: {worst:.1} ms (goal < 300 ms)");
    println!("## live stream: {viewers} viewers for {elapsed:.0} s ({signals} signals, 3 sites)");
    println!(
        "updates per viewer per second: min {:.2}, median {:.2}, max {:.2}",
        per_viewer_rate.first().unwrap_or(&0.0),
        pct(&per_viewer_rate, 0.5),
        per_viewer_rate.last().unwrap_or(&0.0)
    );
    println!(
        "behind the twin when an update arrives: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms over {} updates; {} over 1 s",
        pct(&behind, 0.5),
        pct(&behind, 0.99),
        behind.last().unwrap_or(&0.0),
        behind.len(),
        over_1s
    );
    println!(
        "streams dropped: {errors}; versions going backwards: {went_back}; viewers more than two updates behind at the end: {behind_at_end}"
    );
    println!(
        "delivered: {:.1} MB, {signals_events} line-signal events",
        bytes as f64 / 1e6
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "server resident memory: {:.0} MiB before the viewers, peak {:.0} MiB (sampled), {:.0} MiB at the end, high-water mark {:.0} MiB (goal < 300 MiB)",
            b.0, peak_rss, a.0, a.1
        );
        println!(
            "server CPU: {:.0} % of one core while streaming",
            (a.2 - b.2) / (elapsed + 3.0) * 100.0
        );
    }
    for s in &seen {
        if let Some(e) = &lock(s).error {
            println!("a stream failed: {e}");
            break;
        }
    }
    Ok(())
}

/// The first of `n` consecutive loopback ports nobody listens on (the demo's simulators
/// take a port each from a base).
fn free_port_block(n: u16) -> Result<u16> {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        if first.checked_add(n).is_none() {
            continue;
        }
        let held: Vec<_> = (first..first + n)
            .map_while(|p| std::net::TcpListener::bind(("127.0.0.1", p)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return Ok(first);
        }
    }
    bail!("no {n} consecutive free ports on loopback")
}

fn lock(s: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn pct(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

async fn login(http: &reqwest::Client, base: &str, user: &str) -> Result<String> {
    let me: Json = http
        .post(format!("{base}/api/login"))
        .json(&serde_json::json!({ "user": user, "password": PASSWORD, "bearer": true }))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("login of {user}"))?
        .json()
        .await?;
    me["token"]
        .as_str()
        .map(str::to_string)
        .context("no bearer token in the login answer")
}

async fn get_json(http: &reqwest::Client, base: &str, token: &str, path: &str) -> Result<Json> {
    Ok(http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()
        .with_context(|| path.to_string())?
        .json()
        .await?)
}

async fn wait_for_plants(http: &reqwest::Client, base: &str, token: &str) -> Result<Vec<Json>> {
    let started = Instant::now();
    loop {
        if let Ok(Json::Array(sites)) = get_json(http, base, token, "/api/sites").await {
            let live = sites.iter().all(|s| {
                s["lines"][0]["equipment"][0]["state"].is_string()
                    && s["with_value"].as_u64() == s["signals"].as_u64()
            });
            if live && !sites.is_empty() {
                return Ok(sites);
            }
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the plants did not deliver every signal within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Per view, the requests its first paint makes.
async fn first_paint_requests(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    sites: &[Json],
) -> Result<Vec<(String, Vec<String>)>> {
    let site = sites[0]["id"].as_str().unwrap_or_default().to_string();
    let line = sites[0]["lines"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let signals = get_json(
        http,
        base,
        token,
        &format!("/api/signals?site={site}&line={line}"),
    )
    .await?;
    let path = signals
        .as_array()
        .and_then(|a| a.iter().find(|s| s["value"].is_f64()))
        .and_then(|s| s["path"].as_str())
        .context("no numeric signal on the first line")?
        .to_string();
    let now = Utc::now();
    let hour_ago =
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let past =
        (now - chrono::Duration::seconds(20)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let v = |name: &str, paths: &[String]| (name.to_string(), paths.to_vec());
    Ok(vec![
        v("page (/)", &["/".into()]),
        v(
            "overview",
            &[
                "/api/sites".into(),
                "/api/oee?hours=8".into(),
                "/api/capability?cqa=dissolution".into(),
            ],
        ),
        v(
            "site (all its signals)",
            &[format!("/api/signals?site={site}")],
        ),
        v("every signal of 3 sites", &["/api/signals".into()]),
        v(
            "line",
            &[
                format!("/api/signals?site={site}&line={line}"),
                "/api/batches".into(),
            ],
        ),
        v(
            "equipment (1 h trend)",
            &[
                format!("/api/history?path={path}&from={hour_ago}"),
                "/api/lifecycle".into(),
                "/api/maintenance".into(),
            ],
        ),
        v("alerts", &["/api/alerts/all".into()]),
        v(
            "maintenance",
            &["/api/maintenance".into(), "/api/maintenance/alerts".into()],
        ),
        v(
            "quality",
            &[
                "/api/capability?cqa=dissolution".into(),
                format!("/api/spc?variable=lab:dissolution&site={site}"),
                "/api/batches".into(),
            ],
        ),
        v(
            "time travel (20 s ago)",
            &[
                format!("/api/sites?at={past}"),
                format!("/api/signals?site={site}&at={past}"),
            ],
        ),
    ])
}

/// Per view: p50, p95 and max over rounds of its slowest request.
async fn time_views(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    views: &[(String, Vec<String>)],
) -> Result<Vec<(String, (f64, f64, f64))>> {
    let mut out = Vec::new();
    let mut noted = std::collections::BTreeSet::new();
    for (name, paths) in views {
        let mut worst = Vec::with_capacity(RENDER_ROUNDS);
        for _ in 0..RENDER_ROUNDS {
            let mut slowest = 0f64;
            for path in paths {
                let t0 = Instant::now();
                let r = http
                    .get(format!("{base}{}", path.replace('+', "%2B")))
                    .bearer_auth(token)
                    .send()
                    .await?;
                let status = r.status();
                let _ = r.bytes().await?;
                // 422 is "not enough data yet" (SPC before the lab has results): still the
                // answer the page renders, but a different amount of work; said once.
                anyhow::ensure!(
                    status.is_success() || status.as_u16() == 422,
                    "{path}: {status}"
                );
                if !status.is_success() && noted.insert(path.clone()) {
                    eprintln!("bench-web: {path} answers {status} (no data yet)");
                }
                slowest = slowest.max(t0.elapsed().as_secs_f64() * 1000.0);
            }
            worst.push(slowest);
        }
        worst.sort_by(f64::total_cmp);
        out.push((
            name.clone(),
            (pct(&worst, 0.5), pct(&worst, 0.95), pct(&worst, 1.0)),
        ));
    }
    Ok(out)
}

/// One viewer's stream, recorded into `seen` until the task is aborted.
async fn watch(http: reqwest::Client, base: String, v: Viewer, seen: Arc<Mutex<Seen>>) {
    if let Err(e) = follow(&http, &base, &v, &seen).await {
        lock(&seen).error = Some(format!("{e:#}"));
    }
}

async fn follow(http: &reqwest::Client, base: &str, v: &Viewer, seen: &Mutex<Seen>) -> Result<()> {
    let mut resp = http
        .get(format!("{base}/api/events{}", v.query))
        .bearer_auth(&v.token)
        .send()
        .await?
        .error_for_status()?;
    let mut buf: Vec<u8> = Vec::new();
    // Bytes of `buf` already searched for the end of an event.
    let mut scanned: usize = 0;
    while let Some(chunk) = resp.chunk().await? {
        let now: DateTime<Utc> = Utc::now();
        buf.extend_from_slice(&chunk);
        lock(seen).bytes += chunk.len() as u64;
        // Events end with a blank line.
        while let Some(end) = buf[scanned.saturating_sub(1)..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|at| at + scanned.saturating_sub(1))
        {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            scanned = 0;
            // Only the small `version` event is parsed; the views are counted.
            let head = String::from_utf8_lossy(&event[..event.len().min(64)]);
            let kind = head
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim)
                .unwrap_or_default()
                .to_string();
            let mut s = lock(seen);
            match kind.as_str() {
                "version" => {
                    let text = String::from_utf8_lossy(&event);
                    let data = text
                        .lines()
                        .filter_map(|l| l.strip_prefix("data:"))
                        .collect::<String>();
                    let stamp: Json = serde_json::from_str(&data)?;
                    let version = stamp["version"].as_u64().unwrap_or(0);
                    if version < s.last_version {
                        s.went_back += 1;
                    }
                    s.last_version = version;
                    s.updates += 1;
                    if let Some(since) = stamp["oldest_unshown_at"]
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    {
                        let behind = now - since.with_timezone(&Utc);
                        s.behind_ms
                            .push(behind.num_microseconds().unwrap_or(0) as f64 / 1000.0);
                    }
                }
                "signals" => s.signals_events += 1,
                _ => {}
            }
        }
        scanned = buf.len();
    }
    bail!("the server ended the stream")
}
