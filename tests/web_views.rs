//! The views of the web page (`#/overview`, `#/site/<id>`, `#/alerts`, `#/maintenance`,
//! `#/quality`) in a real browser (Debian's Chromium, headless): what each one shows a user,
//! the ECharts charts drawn as SVG from the library the binary serves, and a picture of each
//! at desktop (1920×1080) and phone (390×844) size for people to look at.

mod common;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::*;

/// The DOM of `path` after the page's scripts ran, as a fresh browser session of `api`'s user.
fn dom(api: &Api, path: &str) -> String {
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

/// The markup from `start` (an attribute marking a chart's box) to the next chart's box or
/// the end: what ECharts drew in it.
fn chart<'a>(dom: &'a str, start: &str) -> &'a str {
    let at = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} on the page"));
    let rest = &dom[at..];
    let end = rest[start.len()..]
        .find("data-chart=\"")
        .map_or(rest.len(), |e| e + start.len());
    &rest[..end]
}

/// The first `n` characters of `s`, for messages.
fn head(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

fn assert_svg_chart(dom: &str, start: &str) {
    let c = chart(dom, start);
    assert!(
        c.contains("<svg") && c.matches("<path").count() >= 3,
        "{start}: ECharts drew no SVG: {}",
        head(c, 600)
    );
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-views");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn assert_png(file: &Path, min_bytes: usize) {
    let png = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > min_bytes,
        "{} is a drawn page ({} bytes)",
        file.display(),
        png.len()
    );
}

/// Screenshots of `path` at desktop and phone size into `web-views/<name>-{desktop,phone}.png`.
fn screenshots(api: &Api, path: &str, name: &str) {
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

#[test]
fn every_view_shows_the_plants_charts_and_alerts_at_desktop_and_phone_size() {
    let demo = start_demo();
    let api = demo.admin();
    wait_for_plants(&api);
    wait_for(Duration::from_secs(150), "maintenance predictions", || {
        let m = api.get_json("/api/maintenance").ok()?;
        (m["risks"].as_array()?.len() >= 10).then_some(())
    });

    // The chart library comes from the binary, to anyone (it is no secret), cached a day.
    let js = ureq::get(&format!("{}/assets/echarts.min.js", demo.base))
        .call()
        .expect("echarts served without a session");
    assert_eq!(js.content_type(), "application/javascript");
    assert_eq!(
        js.header("cache-control"),
        Some("public, max-age=86400"),
        "a static library is cached"
    );
    let body = js.into_string().unwrap();
    assert!(
        body.len() > 500_000 && body.contains("echarts"),
        "the whole library"
    );
    assert_eq!(
        api.get("/api/sites")
            .call()
            .unwrap()
            .header("cache-control"),
        Some("no-store"),
        "data stays uncached"
    );

    // Overview (also the default): the plants side by side, the chart comparing them and
    // the capability chart, under a bilingual navigation bar.
    let page = dom(&api, "/#/overview");
    for nav in [
        "Overview",
        "总览",
        "Alerts",
        "警报",
        "Maintenance",
        "维护",
        "Quality",
        "质量",
    ] {
        assert!(page.contains(nav), "navigation label {nav}");
    }
    for site in ["shenzhen", "anhui", "sichuan"] {
        assert!(
            page.contains(&format!("class=\"site\" data-site=\"{site}\"")),
            "site card {site}"
        );
    }
    assert_svg_chart(&page, "data-chart=\"sites\"");
    let sites_chart = chart(&page, "data-chart=\"sites\"");
    for name in [
        "Shenzhen",
        "Anhui",
        "Sichuan",
        "Signals with value",
        "Excursions",
    ] {
        assert!(
            sites_chart.contains(name),
            "site comparison chart names {name}"
        );
    }
    let capability = chart(&page, "data-chart=\"capability\"");
    assert!(
        capability.contains("<svg")
            && (capability.contains("Cpk") || capability.contains("No capability yet")),
        "capability chart, or why there is none yet: {}",
        head(capability, 600)
    );
    assert!(
        page.contains("id=\"last-update\""),
        "live indicator present"
    );
    assert!(
        page.contains("class=\"legend\"") && !page.contains("class=\"legend view-off\""),
        "equipment state legend beside the plants"
    );

    // One site: only its card, its lines, its equipment at risk.
    let page = dom(&api, "/#/site/anhui");
    assert!(page.contains("class=\"site\" data-site=\"anhui\""));
    assert!(
        !page.contains("data-site=\"shenzhen\"") && !page.contains("data-site=\"sichuan\""),
        "no other plant on Anhui's page"
    );
    assert!(
        page.matches("data-equipment=\"").count() >= 2 * 8,
        "Anhui's two lines"
    );
    let risks: Vec<&str> = page
        .match_indices("<tr class=\"risk")
        .map(|(i, _)| &page[i..i + page[i..].find('>').unwrap()])
        .collect();
    assert!(!risks.is_empty(), "Anhui's equipment at risk");
    assert!(
        risks.iter().all(|r| r.contains("data-key=\"anhui/")),
        "only Anhui's equipment: {risks:?}"
    );

    // Maintenance: equipment by risk (the view `?part=` links open too).
    let page = dom(&api, "/#/maintenance");
    assert!(page.contains("Equipment at risk"));
    assert!(page.matches("<tr class=\"risk").count() >= 10);
    assert!(page.contains("<body data-view=\"maintenance\""));

    // Quality: the I-MR chart of dissolution for the chosen site, or the reason there is
    // none yet (a chart needs 8 batches released by the lab; a fresh demo has none).
    let page = dom(&api, "/#/quality/sichuan");
    assert!(page.contains("Dissolution I-MR chart"));
    assert!(page.contains("data-spc-site=\"sichuan\""), "Sichuan chosen");
    if page.contains("data-spc=\"drawn\"") {
        assert_svg_chart(&page, "data-chart=\"spc\"");
        assert!(chart(&page, "data-chart=\"spc\"").contains("UCL"));
    } else {
        assert!(
            page.contains("data-spc=\"none\"") && page.contains("a chart needs"),
            "the reason there is no chart yet"
        );
    }

    // Alerts: release risks and maintenance alerts in one list, filtered in the page. A
    // fresh demo may have none yet (a maintenance alert needs a day of plant evidence).
    let risks = api.get_json("/api/alerts").unwrap();
    let maint = api.get_json("/api/maintenance/alerts").unwrap();
    let (risks, maint) = (risks.as_array().unwrap(), maint.as_array().unwrap());
    let page = dom(&api, "/#/alerts?state=");
    assert!(page.contains("<body data-view=\"alerts\""));
    for filter in ["id=\"f-site\"", "id=\"f-kind\"", "id=\"f-state\""] {
        assert!(page.contains(filter), "filter {filter}");
    }
    for site in ["shenzhen", "anhui", "sichuan"] {
        assert!(
            page.contains(&format!("<option value=\"{site}\">")),
            "site filter offers {site}"
        );
    }
    let rows = page.matches("class=\"alert-row\"").count();
    assert!(
        rows >= risks.len() + maint.len(),
        "every alert listed: {rows} rows for {} + {}",
        risks.len(),
        maint.len()
    );
    if rows == 0 {
        assert!(page.contains("No alerts match"));
    }
    if maint.iter().any(|a| a["state"] == "active") {
        assert!(
            page.contains("data-ack=\"") && page.contains("Acknowledge / 确认"),
            "an admin may acknowledge an active maintenance alert (signature dialog)"
        );
    }
    assert!(
        page.contains("id=\"sign\""),
        "the signature dialog is there"
    );
    let page = dom(&api, "/#/alerts?kind=release_risk&state=");
    assert!(
        !page.contains("data-kind=\"maintenance\""),
        "maintenance alerts filtered out"
    );

    for (path, name) in [
        ("/#/overview", "overview"),
        ("/#/alerts?state=", "alerts"),
        ("/#/site/anhui", "site-anhui"),
        ("/#/maintenance", "maintenance"),
        ("/#/quality/sichuan", "quality"),
    ] {
        screenshots(&api, path, name);
    }
}
