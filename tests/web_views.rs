//! The views of the web page (`#/overview`, `#/site/<id>`, `#/line/<site>/<line>`,
//! `#/equipment/<site>/<line>/<equipment>`, `#/alerts`, `#/maintenance`, `#/quality`) in a
//! real browser (Debian's Chromium, headless): what each one shows a user,
//! the ECharts charts drawn as SVG from the library the binary serves, and a picture of each
//! at desktop (1920×1080) and phone (390×844) size for people to look at.

mod common;

use std::time::Duration;

use common::*;

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

    line_and_equipment_views(&api);

    // Connectors: one card per plant server, connected, with its throughput charted.
    let page = dom(&api, "/#/connectors");
    for site in ["shenzhen", "anhui", "sichuan"] {
        assert!(
            page.contains(&format!(
                "data-conn-site=\"{site}\" data-connected=\"true\""
            )),
            "{site} connected: {}",
            head(&page, 2000)
        );
    }
    assert!(page.contains("notifications/s"), "throughput shown");
    assert_svg_chart(&page, "data-chart=\"connectors\"");

    for (path, name) in [
        ("/#/overview", "overview"),
        ("/#/alerts?state=", "alerts"),
        ("/#/site/anhui", "site-anhui"),
        ("/#/maintenance", "maintenance"),
        ("/#/quality/sichuan", "quality"),
        ("/#/line/anhui/line-1", "line-anhui-1"),
        ("/#/equipment/anhui/line-1/press-01", "equipment-press"),
        ("/#/connectors", "connectors"),
    ] {
        screenshots(&api, path, name);
    }
}

/// `(path, status, text)` of every value cell (`<td class="v …" data-path=…>`) inside the
/// element that starts at `start`, up to the end of its table.
fn value_cells(dom: &str, start: &str) -> Vec<(String, String, String)> {
    let at = dom
        .find(start)
        .unwrap_or_else(|| panic!("no {start} on the page"));
    let table = &dom[at..at + dom[at..].find("</table>").unwrap_or(dom.len() - at)];
    table
        .match_indices("<td class=\"v ")
        .map(|(i, _)| {
            let cell = &table[i..];
            let attr = |name: &str| {
                let a = cell.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                cell[a..a + cell[a..].find('"').unwrap()].to_string()
            };
            let open = cell.find('>').unwrap() + 1;
            let text = &cell[open..open + cell[open..].find('<').unwrap()];
            (
                attr("data-path"),
                attr("data-status"),
                text.trim().to_string(),
            )
        })
        .collect()
}

/// The operator's line view and the equipment detail, as an Anhui operator and as admin.
fn line_and_equipment_views(admin: &Api) {
    let sites = admin.get_json("/api/sites").unwrap();
    let line = &sites
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "anhui")
        .unwrap()["lines"][0];
    assert_eq!(line["id"], "line-1");
    let units: Vec<(String, String)> = line["equipment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_string(),
                e["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(units.len() >= 8, "the process train: {units:?}");

    // Overview links each line to its view, with the group's KPIs per plant.
    let page = dom(admin, "/#/overview");
    assert!(page.contains("id=\"group-table\""), "group KPI table");
    for kpi in [
        "oee", "output", "yield", "rft", "kwh", "cost", "running", "alerts", "env", "risk",
    ] {
        let row = format!("data-kpi=\"{kpi}\"");
        let at = page.find(&row).unwrap_or_else(|| panic!("KPI row {kpi}"));
        let tr = &page[at..at + page[at..].find("</tr>").unwrap()];
        for site in ["shenzhen", "anhui", "sichuan"] {
            assert!(
                tr.contains(&format!("data-site=\"{site}\"")),
                "{kpi} for {site}"
            );
        }
    }
    assert!(
        page.contains("href=\"#/line/anhui/line-1\""),
        "one click to a line"
    );
    // The hourly OEE trend, or (no plant hour with planned press time yet) why not.
    if page.contains("No OEE yet") {
        let oee = admin.get_json("/api/oee?hours=8").unwrap();
        let points: usize = oee["sites"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["lines"].as_array().unwrap())
            .map(|l| l["trend"].as_array().unwrap().len())
            .sum();
        assert_eq!(points, 0, "a trend to draw: {oee}");
    } else {
        assert_svg_chart(&page, "data-chart=\"oee\"");
    }

    // Line view, as the operator of that plant: the units in flow order, live values.
    let op = Api::login(&admin.base, "op.anhui", DEMO_PASSWORD).expect("operator login");
    let first = dom(&op, "/#/line/anhui/line-1");
    assert!(first.contains("<body data-view=\"line\""));
    let flow_at = first.find("id=\"line-flow\"").expect("the line's flow");
    let flow = &first[flow_at..];
    let mut last = 0;
    for (i, (id, name)) in units.iter().enumerate() {
        let at = flow
            .find(&format!("data-equipment=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} in the flow"));
        assert!(at > last || i == 0, "{id} after the unit before it");
        last = at;
        // As the DOM is serialised: `&` in a maker's name is `&amp;`.
        let shown = name.replace('&', "&amp;");
        assert!(flow[at..].contains(shown.as_str()), "{name} shown");
    }
    let cells = value_cells(&first, "id=\"pv-table\"");
    assert!(cells.len() >= 8, "key process values: {cells:?}");
    let live: Vec<_> = cells
        .iter()
        .filter(|(_, st, text)| {
            ["ok", "out", "idle"].contains(&st.as_str())
                && text.replace(',', "").parse::<f64>().is_ok()
        })
        .collect();
    assert!(live.len() >= 5, "live numeric values: {cells:?}");
    for (path, st, text) in &cells {
        if st == "bad" {
            assert_eq!(text, "Bad", "{path}: a Bad value reads Bad");
        }
        if st == "stale" {
            assert!(first.contains("stale"), "{path}: a stale value is marked");
        }
    }
    // The page's verdicts agree with the twin's quality codes.
    let signals = op.get_json("/api/signals?site=anhui&line=line-1").unwrap();
    for (path, st, _) in &cells {
        let s = signals
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} in /api/signals"));
        if s["quality_severity"] == "bad" {
            assert_eq!(st, "bad", "{path}");
        }
    }
    // Room environment: every reading with its grade's limits.
    let env_at = first.find("id=\"env-table\"").expect("room environment");
    let env = &first[env_at..env_at + first[env_at..].find("</table>").unwrap()];
    for reading in [
        "temperature",
        "humidity",
        "diff_pressure",
        "particles_0_5um",
        "particles_5um",
    ] {
        let at = env
            .find(&format!("data-env=\"{reading}\""))
            .unwrap_or_else(|| panic!("{reading} of a room"));
        let row = &env[at..at + env[at..].find("</tr>").unwrap()];
        assert!(
            row.contains("class=\"n limits\"") && row.contains(" … "),
            "{reading} with its limits: {row}"
        );
    }
    assert!(env.contains("class=\"grade\""), "cleanroom grade shown");
    for table in ["op-table", "lot-table", "pv-table", "env-table"] {
        assert!(
            first.contains(&format!("data-csv-for=\"{table}\"")),
            "CSV of {table}"
        );
    }
    assert!(
        first.contains("data-operator=\""),
        "operators at their units"
    );
    assert!(first.contains("data-lot=\""), "material lots in use");
    assert!(
        first.contains("data-batch=\"") || first.contains("No batch in progress"),
        "the batch in progress, or that there is none"
    );
    // Live: values move between two looks at the page.
    std::thread::sleep(Duration::from_secs(4));
    let second = value_cells(&dom(&op, "/#/line/anhui/line-1"), "id=\"pv-table\"");
    let changed = cells
        .iter()
        .filter(|(p, _, v)| second.iter().any(|(q, _, w)| p == q && v != w))
        .count();
    assert!(changed >= 1, "values change: {cells:?} then {second:?}");
    // Not the operator's plant.
    let other = dom(&op, "/#/line/shenzhen/line-1");
    assert!(
        other.contains("No line") || other.contains("outside the scope"),
        "Shenzhen is not Anhui's operator's"
    );

    // Equipment detail: trends with limits and zoom, state timeline, lifecycle, health.
    let page = dom(admin, "/#/equipment/anhui/line-1/press-01");
    assert!(page.contains("<body data-view=\"equipment\""));
    assert_svg_chart(&page, "data-chart=\"equipment\"");
    let trend = chart(&page, "data-chart=\"equipment\"");
    assert!(
        trend.contains("USL") && trend.contains("LSL"),
        "limits drawn: {}",
        head(trend, 800)
    );
    for window in ["1 h", "8 h", "24 h", "custom"] {
        assert!(page.contains(window), "window {window}");
    }
    assert!(
        page.contains("id=\"eq-states\"") && page.contains("<i data-state=\""),
        "state timeline"
    );
    assert!(page.contains("Running hours"), "lifecycle counters");
    assert!(
        page.contains("id=\"eq-parts\""),
        "health and RUL of the press's parts"
    );
    assert!(
        page.contains("data-csv-for=\"chart-eq\""),
        "the chart window as CSV"
    );

    // The chart window server-side: a CSV file with a row per stored sample.
    let path = "anhui/osd/line-1/press-01/main_compression_force";
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::minutes(10);
    let r = admin
        .get(&format!(
            "/api/history?path={path}&from={}&to={}&format=csv",
            from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
        .call()
        .expect("CSV history");
    assert_eq!(r.content_type(), "text/csv");
    assert!(r.header("content-disposition").unwrap().contains(".csv"));
    let csv = r.into_string().unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "time_utc,value,quality_code,quality");
    assert!(rows.len() > 10, "a row per sample: {}", rows.len());
    for row in &rows[1..] {
        let f: Vec<&str> = row.split(',').collect();
        assert!(
            chrono::DateTime::parse_from_rfc3339(f[0]).is_ok() && f[1].parse::<f64>().is_ok(),
            "{row}"
        );
    }

    // Maintenance board: a work order created is listed with its unit.
    let (status, order) = admin.post_json(
        "/api/work-orders",
        serde_json::json!({ "site": "anhui", "line": "line-1", "equipment": "press-01",
            "part": "tooling", "kind": "maintenance", "reason": "punch wear check",
            "due": (to + chrono::Duration::hours(8)).to_rfc3339() }),
    );
    assert_eq!(status, 201, "{order}");
    let page = dom(admin, "/#/maintenance");
    let id = order["id"].as_str().unwrap();
    assert!(
        page.contains(&format!("data-wo=\"{id}\"")),
        "work order {id} listed"
    );
    assert!(page.contains("punch wear check"));
    assert!(page.contains("New work order"));

    // Quality board: capability per site and product, predicted CQAs of running batches.
    let page = dom(admin, "/#/quality/anhui");
    assert!(page.contains("id=\"cap-table\"") && page.contains("id=\"pred-table\""));
    assert!(
        page.contains("data-cap=\"") || page.contains("No lab results"),
        "capability rows, or why there are none"
    );
}
