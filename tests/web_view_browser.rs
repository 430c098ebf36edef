//! The web view in a real browser (Debian's Chromium, headless): the page's own JavaScript
//! fetches the twin and draws every site, line and equipment state.

mod common;

use common::*;

#[test]
fn page_shows_every_site_line_and_equipment_state_from_the_live_twin() {
    let demo = start_demo();
    let api = demo.admin();
    // Let the twin fill before the browser looks.
    wait_for_plants(&api);

    let out = headless(&[
        "--virtual-time-budget=5000",
        "--dump-dom",
        &api.browser_url("/"),
    ]);
    let dom = String::from_utf8_lossy(&out.stdout);
    for site in ["shenzhen", "anhui", "sichuan"] {
        assert!(
            dom.contains(&format!("data-site=\"{site}\"")),
            "site {site} is not drawn"
        );
    }
    let boxes = dom.matches("data-equipment=\"").count();
    assert!(
        boxes >= 7 * 8,
        "every line's 8 process units are drawn, found {boxes}"
    );
    let states = ["EXECUTE", "IDLE", "HELD", "STOPPED", "ABORTED", "COMPLETE"]
        .iter()
        .map(|s| dom.matches(&format!("data-state=\"{s}\"")).count())
        .sum::<usize>();
    assert!(
        states * 10 >= boxes * 9,
        "equipment boxes carry live states: {states} of {boxes}"
    );
    assert!(dom.contains("id=\"last-update\""), "live indicator present");

    // A picture for people: kept beside the build output, not asserted on pixel by pixel.
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-view.png");
    headless(&[
        "--virtual-time-budget=5000",
        &format!("--screenshot={}", shot.display()),
        &api.browser_url("/"),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot of a drawn page"
    );
}
