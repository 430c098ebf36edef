//! Brings the browser libraries the page uses into the binary: ECharts from the npm package
//! pinned in `web/package-lock.json`, so the web view works on a plant network with no
//! route to the internet.

use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

const ECHARTS: &str = "node_modules/echarts/dist/echarts.min.js";

fn main() {
    let web = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("web");
    let lock = web.join("package-lock.json");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", lock.display());
    println!(
        "cargo:rerun-if-changed={}",
        web.join("package.json").display()
    );
    println!("cargo:rerun-if-env-changed=PHARMATWIN_NPM");

    let wanted = locked_version(&lock, "echarts");
    // A node_modules left from an older lock would embed a library the lock does not name.
    if installed_version(&web, "echarts").as_deref() != Some(wanted.as_str()) {
        npm_ci(&web);
    }
    let src = web.join(ECHARTS);
    let dst = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("echarts.min.js");
    if let Err(e) = fs::copy(&src, &dst) {
        fail(&format!(
            "`npm ci` in {} ran but {} is not there ({e})",
            web.display(),
            src.display()
        ));
    }
}

fn locked_version(lock: &Path, package: &str) -> String {
    let text = fs::read_to_string(lock)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", lock.display())));
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| fail(&format!("{} is not JSON: {e}", lock.display())));
    doc["packages"][format!("node_modules/{package}")]["version"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| fail(&format!("{} pins no {package}", lock.display())))
}

fn installed_version(web: &Path, package: &str) -> Option<String> {
    if !web.join(ECHARTS).is_file() {
        return None;
    }
    let text =
        fs::read_to_string(web.join("node_modules").join(package).join("package.json")).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["version"].as_str().map(str::to_owned)
}

fn npm_ci(web: &Path) {
    let npm = env::var("PHARMATWIN_NPM").unwrap_or_else(|_| "npm".into());
    let how = format!("`cd {} && {npm} ci`", web.display());
    // npm's own output goes to stderr: cargo reads the build script's stdout for directives.
    let status = Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(web)
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .unwrap_or_else(|e| {
            fail(&format!(
                "the web view's chart library (ECharts) comes from npm, and {how} could not start: {e}; \
                 install Node.js with npm (or set PHARMATWIN_NPM to its path)"
            ))
        });
    if !status.success() {
        fail(&format!(
            "{how} failed ({status}); it installs the web view's chart library (ECharts) from package-lock.json"
        ));
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
