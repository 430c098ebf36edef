//! What the end-to-end tests share: starting `pharmatwin` and its peers as real processes,
//! free loopback ports, and reading the JSON API.
#![allow(dead_code, unreachable_pub)]

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub mod connector;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pharmatwin")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on loopback (bound and released, so a later bind can race; tests use
/// ports from different ranges to keep that unlikely).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` consecutive free ports.
pub fn free_port_block(n: u16) -> u16 {
    'search: for _ in 0..200 {
        let base = free_port();
        if base > u16::MAX - n {
            continue;
        }
        for p in base..base + n {
            if TcpListener::bind(("127.0.0.1", p)).is_err() {
                continue 'search;
            }
        }
        return base;
    }
    panic!("no block of {n} free ports");
}

/// A child process that is killed when the test ends, pass or fail.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
    let child = cmd
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc {
        child,
        name: name.to_string(),
    }
}

pub fn pharmatwin(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args)
        .env("RUST_LOG", "info,async_opcua=warn,opcua=warn");
    c
}

/// The Python interpreter of the venv `scripts/test-deps.sh` made, with `asyncua` in it.
pub fn python() -> String {
    if let Ok(p) = std::env::var("PHARMATWIN_PYTHON") {
        return p;
    }
    let default = format!(
        "{}/.cache/pharmatwin-venv/bin/python",
        std::env::var("HOME").unwrap_or_default()
    );
    assert!(
        Path::new(&default).exists(),
        "no Python with asyncua: run scripts/test.sh (or scripts/test-deps.sh) first, or set PHARMATWIN_PYTHON"
    );
    default
}

/// The demo accounts' password in tests (the demo reads it from the environment).
pub const DEMO_PASSWORD: &str = "demo-password-for-tests";
/// The password of an admin a test makes with `pharmatwin users create-admin`.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A logged-in API client: every request carries its session as a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: String,
    pub user: String,
    pub token: String,
    pub me: serde_json::Value,
}

impl Api {
    /// Logs `user` in; the status and error text when refused.
    pub fn login(base: &str, user: &str, password: &str) -> Result<Api, (u16, String)> {
        let resp = ureq::post(&format!("{base}/api/login"))
            .timeout(Duration::from_secs(30))
            .send_json(serde_json::json!({ "user": user, "password": password, "bearer": true }));
        match resp {
            Ok(r) => {
                let me: serde_json::Value = r.into_json().map_err(|e| (0, e.to_string()))?;
                Ok(Api {
                    base: base.into(),
                    user: user.into(),
                    token: me["token"].as_str().expect("bearer token").into(),
                    me,
                })
            }
            Err(ureq::Error::Status(code, r)) => Err((code, r.into_string().unwrap_or_default())),
            Err(e) => Err((0, e.to_string())),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.into()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub fn get(&self, path: &str) -> ureq::Request {
        ureq::get(&self.url(path))
            .timeout(Duration::from_secs(10))
            .set("authorization", &format!("Bearer {}", self.token))
    }

    pub fn post(&self, path: &str) -> ureq::Request {
        ureq::post(&self.url(path))
            .timeout(Duration::from_secs(30))
            .set("authorization", &format!("Bearer {}", self.token))
    }

    pub fn get_json(&self, path: &str) -> Result<serde_json::Value, String> {
        let resp = self.get(path).call().map_err(|e| e.to_string())?;
        resp.into_json().map_err(|e| e.to_string())
    }

    /// The status of a GET (200, 403, …).
    pub fn status(&self, path: &str) -> u16 {
        match self.get(path).call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(c, _)) => c,
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// POSTs `body`; the status and the JSON answer, refusals included.
    pub fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        match self.post(path).send_json(body) {
            Ok(r) => (r.status(), r.into_json().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or_default()),
            Err(e) => panic!("POST {path}: {e}"),
        }
    }

    /// A one-time login link to `next` for a browser: the browser gets its own session.
    pub fn browser_url(&self, next: &str) -> String {
        let (code, t) = self.post_json("/api/tickets", serde_json::json!({}));
        assert_eq!(code, 200, "ticket: {t}");
        let next: String = next
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("{}{}&next={next}", self.base, t["url"].as_str().unwrap())
    }
}

/// Makes the first admin (`admin`, [`ADMIN_PASSWORD`]) in `users` with the CLI.
pub fn create_admin(users: &Path) {
    let out = pharmatwin(&[
        "users",
        "create-admin",
        "--file",
        users.to_str().unwrap(),
        "--name",
        "admin",
        "--full-name",
        "Test Admin",
    ])
    .env("PHARMATWIN_PASSWORD", ADMIN_PASSWORD)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "create-admin: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until `/api/health` answers 200; returns how long it took.
pub fn wait_healthy(base: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    wait_for(limit, &format!("{base}/api/health"), || {
        ureq::get(&format!("{base}/api/health"))
            .timeout(Duration::from_secs(1))
            .call()
            .ok()
            .filter(|r| r.status() == 200)
    });
    start.elapsed()
}

/// Reads a child's stdout until a line contains `marker`.
pub fn wait_for_line(proc: &mut Proc, marker: &str, limit: Duration) {
    let out = proc.child.stdout.take().expect("stdout piped");
    let wanted = marker.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(&wanted) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{} did not print `{}` within {limit:?}", proc.name, marker));
}

/// A running `pharmatwin demo` on free ports, serving within 10 s (asserted).
impl Demo {
    /// A demo account logged in (`admin`, `hq`, `quality`, `op.<site>`, `maint.<site>`).
    pub fn api(&self, user: &str) -> Api {
        Api::login(&self.base, user, DEMO_PASSWORD)
            .unwrap_or_else(|e| panic!("login {user}: {e:?}"))
    }

    pub fn admin(&self) -> Api {
        self.api("admin")
    }
}

pub struct Demo {
    pub proc: Proc,
    pub base: String,
    pub opcua_base: u16,
    pub data: tempfile::TempDir,
}

pub fn start_demo() -> Demo {
    start_demo_with(&[])
}

/// The demo with `extra` arguments; those given replace the defaults for the same flag.
pub fn start_demo_with(extra: &[&str]) -> Demo {
    let data = tempfile::tempdir().unwrap();
    let web = free_port();
    let opcua_base = free_port_block(3);
    let started = Instant::now();
    let listen = format!("127.0.0.1:{web}");
    let port_base = opcua_base.to_string();
    let mut args = vec![
        "demo",
        "--listen",
        &listen,
        "--data-dir",
        data.path().to_str().unwrap(),
        "--opcua-port-base",
        &port_base,
    ];
    // Enough simulated history to train the CQA and maintenance models in a few seconds.
    for (flag, value) in [("--quality-days", "8"), ("--maintenance-days", "4")] {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    let mut proc = spawn(
        "pharmatwin demo",
        pharmatwin(&args)
            .env("PHARMATWIN_DEMO_PASSWORD", DEMO_PASSWORD)
            .stdout(Stdio::piped()),
    );
    let base = format!("http://127.0.0.1:{web}");
    wait_for_line(&mut proc, &base, Duration::from_secs(10));
    let took = wait_healthy(&base, Duration::from_secs(10));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the web view must serve within 10 s (took {took:?})"
    );
    // Not logged in: the page is the login form.
    let page = ureq::get(&format!("{base}/"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(page.contains("PharmaTwin"), "the page is served");
    assert!(
        page.contains("type=\"password\""),
        "to a stranger, the login form"
    );
    Demo {
        proc,
        base,
        opcua_base,
        data,
    }
}

/// Runs `pharmatwin ARGS` to the end, asserts it succeeded, returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = pharmatwin(args).output().expect("pharmatwin runs");
    assert!(
        out.status.success(),
        "pharmatwin {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `pharmatwin ARGS` to the end, asserts it failed, returns its stderr.
pub fn run_failing(args: &[&str]) -> String {
    let out = pharmatwin(args).output().expect("pharmatwin runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "pharmatwin {args:?} succeeded; stderr:\n{stderr}"
    );
    stderr
}

/// A throw-away InfluxDB 1.x on loopback (`scripts/influxdb.sh`), stopped when dropped.
pub struct Influxd {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Influxd {
    pub fn start() -> Influxd {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port_block(2);
        let out = Command::new("bash")
            .arg(repo().join("scripts/influxdb.sh"))
            .args(["start", dir.path().to_str().unwrap(), &port.to_string()])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "influxd did not start (run `bash scripts/test-deps.sh`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Influxd { dir, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM, waits for it to exit); the data folder stays.
    pub fn stop(&self) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/influxdb.sh"))
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "influxd did not stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts it again on the same port and data folder.
    pub fn resume(&self) {
        let out = Command::new("bash")
            .arg(repo().join("scripts/influxdb.sh"))
            .args([
                "start",
                self.dir.path().to_str().unwrap(),
                &self.port.to_string(),
            ])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "influxd did not start again: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs an InfluxQL query against database `db`; the JSON answer.
    pub fn query(&self, db: &str, q: &str) -> serde_json::Value {
        ureq::get(&format!("{}/query", self.url()))
            .query("db", db)
            .query("q", q)
            .call()
            .expect("InfluxQL query")
            .into_json()
            .unwrap()
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/influxdb.sh"))
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output();
    }
}

pub fn chromium() -> String {
    std::env::var("PHARMATWIN_CHROMIUM").unwrap_or_else(|_| "chromium".into())
}

/// Runs headless Chromium with the flags this machine needs (no network of its own).
pub fn headless(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new("timeout");
    cmd.arg("60")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1600,1200",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args);
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot start chromium ({}): {e}; run scripts/test.sh",
            chromium()
        )
    });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Waits until every site's first unit has a state: the twin has filled from the plants.
pub fn wait_for_plants(api: &Api) {
    wait_for(
        Duration::from_secs(30),
        "equipment states in the twin",
        || {
            let v = api.get_json("/api/sites").ok()?;
            v.as_array()?
                .iter()
                .all(|s| s["lines"][0]["equipment"][0]["state"].is_string())
                .then_some(())
        },
    );
}

/// The DOM of `path` after the page's scripts ran, as a fresh browser session of `api`'s user.
pub fn dom(api: &Api, path: &str) -> String {
    let out = headless(&[
        "--virtual-time-budget=8000",
        "--window-size=1920,1080",
        "--dump-dom",
        &api.browser_url(path),
    ]);
    let mut page = String::from_utf8_lossy(&out.stdout).into_owned();
    // What is drawn comes before the page's own script, whose text would match anything.
    if let Some(script) = page.find("<script>") {
        page.truncate(script);
    }
    page
}

pub fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-views");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn assert_png(file: &Path, min_bytes: usize) {
    let png = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > min_bytes,
        "{} is a drawn page ({} bytes)",
        file.display(),
        png.len()
    );
}

/// Screenshots of `path` at desktop and phone size into `web-views/<name>-{desktop,phone}.png`.
pub fn screenshots(api: &Api, path: &str, name: &str) {
    let dir = shots_dir();
    let desktop = dir.join(format!("{name}-desktop.png"));
    headless(&[
        "--virtual-time-budget=8000",
        "--window-size=1920,1080",
        &format!("--screenshot={}", desktop.display()),
        &api.browser_url(path),
    ]);
    assert_png(&desktop, 30_000);

    // Headless Chromium will not make a window narrower than 500 px, so the phone's 390×844
    // CSS pixels are a 780×1688 window at 200 % zoom (the profile's default zoom): the page
    // lays out exactly as on a 390 px wide phone with a 2× screen.
    let profile = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(profile.path().join("Default")).unwrap();
    let zoom_200 = 2f64.ln() / 1.2f64.ln();
    std::fs::write(
        profile.path().join("Default/Preferences"),
        format!(r#"{{"partition":{{"default_zoom_level":{{"x":{zoom_200}}}}}}}"#),
    )
    .unwrap();
    let phone = dir.join(format!("{name}-phone.png"));
    headless(&[
        "--virtual-time-budget=8000",
        "--window-size=780,1688",
        &format!("--user-data-dir={}", profile.path().display()),
        &format!("--screenshot={}", phone.display()),
        &api.browser_url(path),
    ]);
    assert_png(&phone, 30_000);
}

/// A self-signed RSA certificate for `subject` (e.g. `/CN=localhost`) and its key, made by
/// `openssl` (installed by `scripts/test-deps.sh`); `extra` are more `openssl req` arguments
/// (`-outform DER`, `-addext …`).
pub fn self_signed(cert: &Path, key: &Path, subject: &str, extra: &[&str]) {
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", subject,
        ])
        .args(extra)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl (scripts/test-deps.sh installs it)");
    assert!(
        made.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}
