use super::*;
use crate::gbm::SplitMix64;

/// Units wearing at different rates; one vibration-like signal rising with the cube of
/// wear over a load-dependent healthy level, and an uninformative one.
fn fleet(units: usize, rng: &mut SplitMix64) -> Vec<LabelledWindow> {
    let mut out = Vec::new();
    for u in 0..units {
        let rate = 0.002 + 0.002 * rng.unit();
        let mut wear: f64 = 0.02;
        let mut h = 0.0;
        while wear < 1.0 {
            let load = 0.5 + 0.5 * rng.unit();
            let vib = 1.0 * (0.6 + 0.5 * load) + 7.0 * wear.powi(3) + 0.05 * (rng.unit() - 0.5);
            out.push(LabelledWindow {
                unit: format!("u{u}"),
                hours: h,
                features: vec![vib, load * 10.0, rng.unit()],
                wear,
            });
            wear += rate;
            h += 1.0;
        }
    }
    out
}

fn names() -> Vec<String> {
    ["vibration", "power_kw", "noise"]
        .map(String::from)
        .to_vec()
}

#[test]
fn estimates_worn_parts_closely_and_names_the_signal_behind_it() {
    let mut rng = SplitMix64::new(3);
    let train = fleet(12, &mut rng);
    let m = PartModel::train("press", "bearing", &names(), &train).unwrap();
    let test = fleet(4, &mut rng);
    let worn: Vec<_> = test.iter().filter(|w| w.wear >= 0.6).collect();
    let rmse = (worn
        .iter()
        .map(|w| (m.estimate(&w.features) - w.wear).powi(2))
        .sum::<f64>()
        / worn.len() as f64)
        .sqrt();
    assert!(rmse < 0.05, "rmse on worn parts {rmse}");
    assert!(m.error_sd < 0.1, "out-of-sample spread {}", m.error_sd);
    let d = m.drivers(&worn.last().unwrap().features);
    assert_eq!(d[0].0, 0, "vibration drives a worn part's estimate: {d:?}");
    assert!(d[0].1 > 3.0);
    // The fleet's wear rate is 0.002 .. 0.004 per hour.
    assert!(
        (0.002..0.004).contains(&m.fleet_rate.0),
        "{:?}",
        m.fleet_rate
    );
    assert!(m.fingerprint.starts_with("fnv1a64:"));
}

#[test]
fn too_little_history_is_refused_naming_the_part() {
    let mut rng = SplitMix64::new(1);
    let few: Vec<_> = fleet(1, &mut rng).into_iter().take(10).collect();
    let e = PartModel::train("mill", "tooling", &names(), &few).unwrap_err();
    assert!(e.to_string().contains("mill/tooling"), "{e}");
}

#[test]
fn projection_puts_failure_where_the_trend_reaches_it() {
    let mut rng = SplitMix64::new(5);
    let m = PartModel::train("press", "bearing", &names(), &fleet(12, &mut rng)).unwrap();
    // Wear 0.5 → 0.8 over 150 h: 0.002 per hour, failure 100 h after the last point.
    let points: Vec<(f64, f64)> = (0..=150)
        .map(|h| (h as f64, 0.5 + 0.002 * h as f64 + 0.01 * (rng.unit() - 0.5)))
        .collect();
    let near = project(&m, &points, 168.0).unwrap();
    assert!((near.rul_h - 100.0).abs() < 15.0, "{near:?}");
    assert!(near.rul_low_h < near.rul_h && near.rul_h < near.rul_high_h);
    assert!(near.p_fail > 0.9, "{near:?}");
    let far = project(&m, &points, 24.0).unwrap();
    assert!(far.p_fail < 0.1, "{far:?}");
    assert!((near.health - 0.2).abs() < 0.03);
}

#[test]
fn a_healthy_part_has_no_failure_in_sight() {
    let mut rng = SplitMix64::new(9);
    let m = PartModel::train("press", "bearing", &names(), &fleet(12, &mut rng)).unwrap();
    let points: Vec<(f64, f64)> = (0..100).map(|h| (h as f64, 0.1)).collect();
    let p = project(&m, &points, 168.0).unwrap();
    assert!(p.p_fail < 0.01, "{p:?}");
    assert!(p.rul_h > 168.0);
}
