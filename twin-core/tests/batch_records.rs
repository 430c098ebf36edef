//! Batch records built from a simulated plant's signals agree with what the plant did.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use pharmatwin_twin_core::BatchRecorder;
use sites::{builtin_site, physics::Plant};

#[test]
fn records_follow_the_plant_and_get_their_lab_results() {
    let site = builtin_site("anhui").expect("anhui").expect("loads");
    let start = Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap();
    let mut plant = Plant::new(&site, 11, start);
    let mut recorder = BatchRecorder::new(&site);
    let mut previous: Vec<_> = Vec::new();
    for _ in 0..(5 * 24 * 60) {
        plant.step(Duration::from_secs(60));
        let now = plant.now();
        let values = plant.sample().to_vec();
        // Data-change delivery: only what changed reaches the twin.
        let changed = values
            .iter()
            .enumerate()
            .filter(|(i, v)| previous.get(*i) != Some(*v))
            .map(|(i, v)| (i, v, now));
        recorder.observe(changed);
        previous = values;
    }

    let truth = plant.lab_results();
    let done: Vec<_> = recorder.completed().collect();
    assert!(
        done.len() >= 4,
        "{} batches completed in 5 days",
        done.len()
    );
    let mut with_lab = 0;
    assert!(
        !done[0].from_start,
        "the first batch was running before the recorder"
    );
    for b in done.iter().filter(|b| b.from_start) {
        let order: Vec<&str> = b.phases.iter().map(|p| p.phase.as_str()).collect();
        assert!(
            order.starts_with(&["DISPENSING", "GRANULATION", "DRYING"])
                && order.ends_with(&["COMPRESSION", "COATING", "PACKAGING"]),
            "{}: {order:?}",
            b.id
        );
        assert!(b.phases.windows(2).all(|w| w[0].end == Some(w[1].start)));
        assert!(b.product.is_some() && b.recipe.is_some(), "{b:?}");
        assert!(!b.lots.is_empty(), "{} consumed no lot", b.id);
        assert!(!b.operators.is_empty(), "{} had no operator", b.id);
        assert!(b.equipment.len() >= 6, "{}: {:?}", b.id, b.equipment);
        assert!(
            b.params.keys().any(|k| k.starts_with("tablet_press.")),
            "{}: {:?}",
            b.id,
            b.params.keys().collect::<Vec<_>>()
        );
        if let Some(t) = truth.iter().find(|t| t.batch_id == b.id) {
            with_lab += 1;
            let assay = b.lab.get("assay").expect("assay attached");
            assert!((assay.value - t.measured.assay).abs() < 1e-9);
            assert_eq!(
                b.lab.get("impurities").map(|v| v.value),
                Some(t.measured.impurities)
            );
            assert!(assay.published > b.end.unwrap());
            assert_eq!(assay.spec.map(|s| s.low), Some(95.0));
        } else {
            assert!(b.lab.is_empty(), "{} got results never released", b.id);
        }
    }
    assert!(with_lab >= 3, "{with_lab} batches with lab results");
    let last = done.last().unwrap();
    let mid = last.start + (last.end.unwrap() - last.start) / 2;
    assert_eq!(recorder.at(&last.line, mid).map(|b| &b.id), Some(&last.id));
}
