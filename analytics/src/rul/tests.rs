use super::*;

fn fd001() -> String {
    crate::shared_data("cmapss/train_FD001.txt")
        .to_string_lossy()
        .into_owned()
}

fn row(unit: u32, cycle: u32) -> String {
    let mut s = format!("{unit} {cycle} 0.001 -0.0002 100.0");
    for k in 0..N_SENSORS {
        s.push_str(&format!(" {}", 500.0 + k as f64 + cycle as f64 * 0.1));
    }
    s
}

#[test]
fn parses_units_and_trailing_spaces() {
    let text = format!("{}  \n{}\n\n{}\n", row(1, 1), row(1, 2), row(2, 1));
    let units = parse_cmapss(&text, "mem").unwrap();
    assert_eq!(units.len(), 2);
    assert_eq!(units[0].cycles.len(), 2);
    assert_eq!(units[1].id, 2);
    assert_eq!(units[0].cycles[1].sensors[0], 500.2);
    assert_eq!(units[0].cycles[0].settings[2], 100.0);
}

#[test]
fn parse_errors_name_origin_and_line() {
    let short = format!("{}\n{}\n1 3 0.1\n", row(1, 1), row(1, 2));
    let e = parse_cmapss(&short, "train_X.txt").unwrap_err().to_string();
    assert!(e.starts_with("train_X.txt:3:"), "{e}");
    assert!(e.contains("expected 26 fields"), "{e}");

    let bad_num = format!("{}\n{}\n", row(1, 1), row(1, 2).replace("500.2", "abc"));
    let e = parse_cmapss(&bad_num, "f").unwrap_err().to_string();
    assert!(e.starts_with("f:2:") && e.contains("\"abc\""), "{e}");

    let gap = format!("{}\n{}\n", row(1, 1), row(1, 3));
    let e = parse_cmapss(&gap, "f").unwrap_err().to_string();
    assert!(
        e.starts_with("f:2:") && e.contains("cycle 3 follows cycle 1"),
        "{e}"
    );

    let again = format!("{}\n{}\n{}\n", row(1, 1), row(2, 1), row(1, 2));
    let e = parse_cmapss(&again, "f").unwrap_err().to_string();
    assert!(e.starts_with("f:3:"), "{e}");

    let bad_unit = row(1, 1).replacen('1', "x", 1);
    let e = parse_cmapss(&bad_unit, "f").unwrap_err().to_string();
    assert!(e.starts_with("f:1:") && e.contains("unit"), "{e}");

    assert!(parse_cmapss("\n\n", "empty").is_err());
}

#[test]
fn truth_parser() {
    assert_eq!(
        parse_rul_truth("112\n98 \n\n69\n", "t").unwrap(),
        vec![112.0, 98.0, 69.0]
    );
    let e = parse_rul_truth("1\n2\n-3\n", "RUL.txt")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("RUL.txt:3:"), "{e}");
    let e = parse_rul_truth("1\nx\n", "RUL.txt")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("RUL.txt:2:"), "{e}");
}

#[test]
fn score_matches_hand_computation() {
    // d = -13: e^1 - 1; d = 10: e^1 - 1; d = 0: 0; d = -26: e^2 - 1; d = 20: e^2 - 1.
    let e1 = std::f64::consts::E - 1.0;
    assert!((nasa_score_one(-13.0) - e1).abs() < 1e-12);
    assert!((nasa_score_one(10.0) - e1).abs() < 1e-12);
    assert_eq!(nasa_score_one(0.0), 0.0);
    let s = nasa_score(&[-26.0, 20.0, 0.0]);
    let want = 2.0 * ((2.0f64).exp() - 1.0);
    assert!((s - want).abs() < 1e-9, "{s} vs {want}");
    // Late predictions cost more than early ones of equal size.
    assert!(nasa_score_one(15.0) > nasa_score_one(-15.0));
    // rmse of [3, -4] = sqrt(12.5)
    assert!((rmse(&[3.0, -4.0]) - 12.5f64.sqrt()).abs() < 1e-12);
}

#[test]
fn rolling_features_mean_and_slope() {
    let text: Vec<String> = (1..=5).map(|c| row(1, c)).collect();
    let units = parse_cmapss(&text.join("\n"), "mem").unwrap();
    let spec = FeatureSpec {
        window: 3,
        sensors: vec![0],
    };
    let mut out = Vec::new();
    spec.push_row(&units[0], 4, &mut out); // cycles 3,4,5: s1 = 500.3, 500.4, 500.5
    assert!((out[0] - 500.4).abs() < 1e-9);
    assert!((out[1] - 0.1).abs() < 1e-9);
    assert_eq!(out[2], 5.0);
    out.clear();
    spec.push_row(&units[0], 0, &mut out);
    assert_eq!(out[1], 0.0);
}

#[test]
fn holdout_keeps_whole_engines() {
    let text = std::fs::read_to_string(fd001()).expect("C-MAPSS FD001 training file is required");
    let units = parse_cmapss(&text, &fd001()).unwrap();
    let (train, test, truth) = holdout(&units, 20, 3).unwrap();
    assert_eq!((train.len(), test.len(), truth.len()), (80, 20, 20));
    for (t, &rul) in test.iter().zip(&truth) {
        assert!(train.iter().all(|u| u.id != t.id));
        let full = units.iter().find(|u| u.id == t.id).unwrap();
        assert_eq!(full.cycles.len(), t.cycles.len() + rul as usize);
        assert!((7.0..=145.0).contains(&rul));
        assert!(t.cycles.len() >= 31);
    }
    assert_eq!(holdout(&units, 20, 3).unwrap().2, truth);
}

#[test]
fn fd001_grouped_holdout_rmse() {
    let text = std::fs::read_to_string(fd001()).expect("C-MAPSS FD001 training file is required");
    let units = parse_cmapss(&text, &fd001()).unwrap();
    assert_eq!(units.len(), 100);
    let spec = FeatureSpec::fit(&units, 20).unwrap();
    // FD001's constant / two-level sensors: s1 s5 s6 s10 s16 s18 s19.
    assert_eq!(
        spec.sensors,
        vec![1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 19, 20]
    );
    let mut rmses = Vec::new();
    for seed in [1, 2, 3] {
        let (train, test, truth) = holdout(&units, 20, seed).unwrap();
        let r = evaluate(&train, &test, &truth).unwrap();
        eprintln!(
            "FD001 hold-out seed {seed}: RMSE {:.2} score {:.1} MAE {:.2} bias {:+.2} ({} units, {} train rows, {:.2}s)",
            r.rmse, r.score, r.mae, r.bias, r.units, r.train_rows, r.train_seconds
        );
        assert_eq!(r.units, 20);
        rmses.push(r.rmse);
    }
    for r in &rmses {
        assert!(*r < 25.0, "hold-out RMSE {r} >= 25 ({rmses:?})");
    }
}

#[test]
fn calibration_pulls_uncertain_predictions_early() {
    // Errors of ±20 cycles around the truth: being 20 late costs e^2 − 1 ≈ 6.4, being
    // 20 early only e^(20/13) − 1 ≈ 3.7, so the score-optimal correction lowers them.
    let samples: Vec<OutOfFold> = (0..50)
        .flat_map(|t| {
            let truth = 20.0 + 2.0 * t as f64;
            [-20.0, 20.0].map(|d| OutOfFold {
                predicted: truth + d,
                truth,
                weight: 1.0,
            })
        })
        .collect();
    let c = Calibration::fit(&samples, 125.0);
    assert!(c.apply(100.0, 125.0) < 100.0, "{c:?}");
    assert!(c.apply(60.0, 125.0) < 60.0, "{c:?}");
    assert_eq!(c.apply(1000.0, 125.0), 125.0);
    assert_eq!(c.apply(-50.0, 125.0), 0.0);
    assert_eq!(Calibration::fit(&[], 125.0), Calibration::default());
}

#[test]
fn without_inner_folds_predictions_are_uncalibrated() {
    let text: Vec<String> = (1..=3)
        .flat_map(|u| (1..=40 + 5 * u).map(move |c| row(u, c)))
        .collect();
    let units = parse_cmapss(&text.join("\n"), "mem").unwrap();
    let config = RulConfig {
        calibration_folds: 0,
        gbm: GbmParams {
            n_trees: 5,
            min_samples_leaf: 2,
            ..GbmParams::default()
        },
        ..RulConfig::default()
    };
    let model = RulModel::fit(&units, &config).unwrap();
    assert_eq!(model.calibration, Calibration::default());
    // More folds than units: one fold per unit.
    let model = RulModel::fit(
        &units,
        &RulConfig {
            calibration_folds: 10,
            ..config
        },
    )
    .unwrap();
    let p = model.predict_last(&units[0]).unwrap();
    assert!((0.0..=125.0).contains(&p), "{p}");
}

/// Multi-seed sweep for reporting: `cargo test -p pharmatwin-analytics -- --ignored --nocapture`.
#[test]
#[ignore = "slow: 10 trainings"]
fn fd001_holdout_sweep() {
    let text = std::fs::read_to_string(fd001()).expect("C-MAPSS FD001 training file is required");
    let units = parse_cmapss(&text, &fd001()).unwrap();
    let window: usize =
        std::env::var("RUL_WINDOW").map_or(RulConfig::default().window, |v| v.parse().unwrap());
    let config = RulConfig {
        window,
        ..RulConfig::default()
    };
    let (mut rm, mut sc) = (Vec::new(), Vec::new());
    let first: u64 = std::env::var("RUL_FIRST_SEED").map_or(1, |v| v.parse().unwrap());
    for seed in first..first + 10 {
        let (train, test, truth) = holdout(&units, 20, seed).unwrap();
        let r = evaluate_with(&train, &test, &truth, &config).unwrap();
        let capped: Vec<f64> = r
            .predictions
            .iter()
            .map(|p| p.predicted - p.truth.min(125.0))
            .collect();
        let over_cap = r.predictions.iter().filter(|p| p.truth > 125.0).count();
        eprintln!(
            "seed {seed:2}: RMSE {:6.2} score {:7.1} bias {:+6.2} | vs capped truth RMSE {:6.2} ({over_cap} units > 125) | calibration {:.2}·raw {:+.2} | train {:.2}s",
            r.rmse,
            r.score,
            r.bias,
            rmse(&capped),
            r.calibration.scale,
            r.calibration.offset,
            r.train_seconds
        );
        rm.push(r.rmse);
        sc.push(r.score);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let sd = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    eprintln!(
        "window {window}, seeds {first}..{}: RMSE mean {:.2} sd {:.2}; score (20 units) mean {:.1} sd {:.1} = {:.0} per 100 units; pooled RMSE {:.2}",
        first + 9,
        mean(&rm),
        sd(&rm),
        mean(&sc),
        sd(&sc),
        5.0 * mean(&sc),
        (rm.iter().map(|r| r * r).sum::<f64>() / rm.len() as f64).sqrt()
    );
}
