//! Real servers for the InfluxDB historian tests: Debian's `influxd` 1.x (through
//! `scripts/influxdb.sh`) and `victoria-metrics` (the v2 write path), each on loopback with
//! a throw-away data folder. A missing binary fails the test with what to run.

#![allow(dead_code, unreachable_pub)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value as Json;
use tempfile::TempDir;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn find_binary(env: &str, name: &str, package: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env) {
        if !p.is_empty() && Path::new(&p).is_file() {
            return PathBuf::from(p);
        }
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => p,
        None => panic!(
            "`{name}` not found (set {env} or put it on PATH): run `bash scripts/test-deps.sh`, \
             which installs Debian's `{package}` package"
        ),
    }
}

fn script() -> PathBuf {
    // Cargo's run-time value: a reused binary's compile-time path may be another checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("../scripts/influxdb.sh")
}

/// An `influxd` 1.x started by `scripts/influxdb.sh`; stopped when dropped.
pub struct Influxd {
    pub dir: TempDir,
    pub port: u16,
    rpc_port: u16,
    binary: PathBuf,
    running: bool,
    http: reqwest::Client,
}

impl Influxd {
    pub fn start() -> Influxd {
        Self::start_on(free_port())
    }

    /// Prepared on `port` but not started (for tests that start it later).
    pub fn stopped_on(port: u16) -> Influxd {
        let binary = find_binary("PHARMATWIN_INFLUXD", "influxd", "influxdb");
        Influxd {
            dir: tempfile::tempdir().expect("temp dir"),
            port,
            rpc_port: free_port(),
            binary,
            running: false,
            http: reqwest::Client::new(),
        }
    }

    pub fn start_on(port: u16) -> Influxd {
        let mut s = Self::stopped_on(port);
        s.resume();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and data folder.
    pub fn resume(&mut self) {
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(self.dir.path())
            .arg(self.port.to_string())
            .arg(self.rpc_port.to_string())
            .env("PHARMATWIN_INFLUXD", &self.binary)
            .output()
            .expect("run scripts/influxdb.sh");
        assert!(
            out.status.success(),
            "scripts/influxdb.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
    }

    pub fn stop(&mut self) {
        let out = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .output()
            .expect("run scripts/influxdb.sh");
        assert!(
            out.status.success(),
            "scripts/influxdb.sh stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    pub async fn query(&self, db: &str, q: &str) -> Json {
        let resp = self
            .http
            .post(format!("{}/query", self.url()))
            .query(&[("db", db), ("epoch", "ns")])
            .form(&[("q", q)])
            .send()
            .await
            .expect("query influxd");
        let text = resp.text().await.expect("query answer");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    pub async fn create_database(&self, db: &str) {
        let answer = self.query(db, &format!("CREATE DATABASE \"{db}\"")).await;
        assert!(answer["results"][0]["error"].is_null(), "{answer}");
    }

    /// Points per value of `group_tag` in `measurement` (counting `quality`, which every
    /// point of the schema has).
    pub async fn counts(
        &self,
        db: &str,
        measurement: &str,
        group_tag: &str,
    ) -> std::collections::BTreeMap<String, u64> {
        let answer = self
            .query(
                db,
                &format!(
                    "SELECT count(\"quality\") FROM \"{measurement}\" GROUP BY \"{group_tag}\""
                ),
            )
            .await;
        let mut out = std::collections::BTreeMap::new();
        if let Some(series) = answer["results"][0]["series"].as_array() {
            for s in series {
                let key = s["tags"][group_tag].as_str().unwrap_or("").to_string();
                let n = s["values"][0][1].as_u64().expect("count");
                out.insert(key, n);
            }
        }
        out
    }

    /// Writes raw line protocol; returns the status.
    pub async fn write_raw(&self, db: &str, body: &str) -> u16 {
        self.http
            .post(format!("{}/write", self.url()))
            .query(&[("db", db), ("precision", "ns")])
            .body(body.to_string())
            .send()
            .await
            .expect("write to influxd")
            .status()
            .as_u16()
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new("bash")
                .arg(script())
                .arg("stop")
                .arg(self.dir.path())
                .output();
        }
    }
}

/// A `victoria-metrics` on loopback; killed when dropped.
pub struct Victoria {
    pub dir: TempDir,
    pub port: u16,
    child: Child,
    http: reqwest::Client,
}

impl Victoria {
    pub async fn start() -> Victoria {
        let binary = find_binary(
            "PHARMATWIN_VICTORIA",
            "victoria-metrics",
            "victoria-metrics",
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("victoria.log")).expect("log file");
        let child = Command::new(binary)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!(
                "-storageDataPath={}",
                dir.path().join("data").display()
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start victoria-metrics");
        let v = Victoria {
            dir,
            port,
            child,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = v
                .http
                .get(format!("{}/health", v.url()))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "victoria-metrics did not answer /health; see {}",
                v.dir.path().join("victoria.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        v
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every stored series matching `selector`, as (labels, timestamps ms, values).
    pub async fn export(&self, selector: &str) -> Vec<(Json, Vec<i64>, Vec<f64>)> {
        let flushed = self
            .http
            .get(format!("{}/internal/force_flush", self.url()))
            .send()
            .await
            .expect("force_flush");
        assert!(flushed.status().is_success());
        let text = self
            .http
            .get(format!("{}/api/v1/export", self.url()))
            .query(&[("match[]", selector)])
            .send()
            .await
            .expect("export")
            .text()
            .await
            .expect("export body");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let j: Json = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
                let ts = j["timestamps"]
                    .as_array()
                    .expect("timestamps")
                    .iter()
                    .map(|t| t.as_i64().expect("ms"))
                    .collect();
                let vs = j["values"]
                    .as_array()
                    .expect("values")
                    .iter()
                    .map(|v| v.as_f64().expect("value"))
                    .collect();
                (j["metric"].clone(), ts, vs)
            })
            .collect()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` tags of one site spread over 4 lines, 25 presses and the 5M1E categories: the
/// series the benchmarks write.
pub fn bench_tags(n: usize) -> Vec<std::sync::Arc<model::Tag>> {
    (0..n)
        .map(|i| {
            std::sync::Arc::new(model::Tag {
                site: "shenzhen".into(),
                area: "osd".into(),
                line: format!("line-{}", i % 4 + 1),
                equipment: format!("press-{:02}", i % 25),
                signal: format!("signal_{i}"),
                category: model::Category::ALL[i % 5],
                unit: "kN".into(),
            })
        })
        .collect()
}

/// Samples `indices` of a round-robin over `tags`, sample `i` at `start + i × step` with the
/// value `i / 4`: what the benchmarks write.
pub fn bench_samples(
    tags: &[std::sync::Arc<model::Tag>],
    indices: std::ops::Range<usize>,
    start: chrono::DateTime<chrono::Utc>,
    step: std::time::Duration,
) -> Vec<model::Sample> {
    indices
        .map(|i| {
            let t = start + chrono::Duration::nanoseconds((step.as_nanos() * i as u128) as i64);
            model::Sample {
                tag: tags[i % tags.len()].clone(),
                value: model::Value::Float(i as f64 * 0.25),
                quality: model::Quality::GOOD,
                source_ts: t,
                server_ts: None,
                received_ts: t,
                backfilled: false,
            }
        })
        .collect()
}
