use super::distributions::{
    beta_inc, chi2_cdf, chi2_quantile, f_quantile, gamma_p, ln_gamma, normal_quantile,
};
use super::pca::{ComponentRule, Pca};
use super::*;
use crate::rul::gbm::SplitMix64;

fn tep(name: &str) -> Vec<Vec<f64>> {
    let path = crate::shared_data("tep").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("TEP file {} is required: {e}", path.display()));
    parse_tep(&text, name).unwrap()
}

fn tep_faults() -> Vec<(String, Vec<Vec<f64>>)> {
    (1..=21)
        .map(|k| {
            let name = format!("d{k:02}.dat");
            let rows = tep(&name);
            (name, rows)
        })
        .collect()
}

fn gauss(rng: &mut SplitMix64) -> f64 {
    let u1 = 1.0 - rng.unit();
    let u2 = rng.unit();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---------------------------------------------------------------- parser

fn tep_text(samples: usize) -> String {
    (0..samples)
        .map(|s| {
            (0..TEP_VARIABLES)
                .map(|v| format!("{:.4e}", s as f64 + v as f64 / 100.0))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn parses_samples_as_rows() {
    let text = format!("\n{}\n\n", tep_text(3));
    let rows = parse_tep(&text, "mem").unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.len() == TEP_VARIABLES));
    assert!(close(rows[2][5], 2.05, 1e-12));
    // Square files are taken as they are.
    let square = parse_tep(&tep_text(52), "sq").unwrap();
    assert!(close(square[1][0], 1.0, 1e-12) && close(square[0][1], 0.01, 1e-12));
}

#[test]
fn parses_transposed_files() {
    // 52 rows (variables) of 5 columns (samples), as some copies of d00.dat.
    let rows = parse_tep(&tep_text(5), "x").unwrap();
    let transposed: String = (0..TEP_VARIABLES)
        .map(|v| {
            rows.iter()
                .map(|r| format!("{:e}", r[v]))
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let back = parse_tep(&transposed, "d00.dat").unwrap();
    assert_eq!(back, rows);
}

#[test]
fn parse_errors_name_file_and_line() {
    let mut lines: Vec<String> = tep_text(4).lines().map(str::to_string).collect();
    lines[2] = lines[2].rsplit_once('\t').unwrap().0.to_string();
    let e = parse_tep(&lines.join("\n"), "d07.dat")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("d07.dat:3:"), "{e}");
    assert!(
        e.contains("51 fields") && e.contains("line 1 has 52"),
        "{e}"
    );

    let mut lines: Vec<String> = tep_text(4).lines().map(str::to_string).collect();
    lines.insert(0, String::new());
    lines[2] = lines[2].replacen("1.0000e0", "1.0000x0", 1);
    let e = parse_tep(&lines.join("\n"), "f").unwrap_err().to_string();
    assert!(e.starts_with("f:3:") && e.contains("\"1.0000x0\""), "{e}");

    let e = parse_tep(&tep_text(2).replacen("1.0000e0", "NaN", 1), "f")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("f:2:") && e.contains("field 1"), "{e}");

    // Consistent width, but neither 52 columns nor 52 rows.
    let e = parse_tep("1 2 3\n4 5 6\n", "g").unwrap_err().to_string();
    assert!(e.contains("g:") && e.contains("52"), "{e}");
    assert!(parse_tep(" \n\n", "empty").is_err());
}

#[test]
fn fault_numbers_from_file_names() {
    assert_eq!(fault_number("d03.dat"), Some(3));
    assert_eq!(fault_number("d03_te.dat"), Some(3));
    assert_eq!(fault_number("/data/tep2/d15_te.dat"), Some(15));
    assert_eq!(fault_number("d00.dat"), Some(0));
    assert_eq!(fault_number("normal.dat"), None);
    assert!(is_unobservable_fault(9) && !is_unobservable_fault(10));
}

// --------------------------------------------------------- distributions

#[test]
fn special_functions_match_closed_forms() {
    assert!(close(
        ln_gamma(0.5),
        std::f64::consts::PI.sqrt().ln(),
        1e-13
    ));
    assert!(close(ln_gamma(10.0), 362_880f64.ln(), 1e-11));
    assert!(close(gamma_p(1.0, 2.0), 1.0 - (-2.0f64).exp(), 1e-14));
    assert!(close(gamma_p(3.0, 40.0), 1.0, 1e-14));
    // I_0.4(2, 3) = P(Binomial(4, 0.4) ≥ 2) = 1 − 0.6⁴ − 4·0.4·0.6³.
    assert!(close(beta_inc(2.0, 3.0, 0.4), 0.5248, 1e-13));
    assert!(close(beta_inc(3.0, 2.0, 0.6), 1.0 - 0.5248, 1e-13));
    assert!(close(chi2_cdf(2.0, 2.0), 1.0 - (-1.0f64).exp(), 1e-14));
}

#[test]
fn quantiles_match_tables() {
    // χ² table values.
    assert!(close(chi2_quantile(0.99, 10.0).unwrap(), 23.2093, 1e-4));
    assert!(close(chi2_quantile(0.95, 1.0).unwrap(), 3.8415, 1e-4));
    assert!(close(chi2_quantile(0.99, 1.0).unwrap(), 6.6349, 1e-4));
    assert!(close(chi2_quantile(0.05, 20.0).unwrap(), 10.8508, 1e-4));
    // F table values.
    assert!(close(f_quantile(0.95, 5.0, 10.0).unwrap(), 3.3258, 1e-4));
    assert!(close(f_quantile(0.99, 9.0, 120.0).unwrap(), 2.5586, 1e-4));
    assert!(close(f_quantile(0.99, 1.0, 10.0).unwrap(), 10.0443, 1e-4));
    // F(0.99; 9, 491), the T² limit of a 9-component model on 500 samples,
    // lies between F(0.99; 9, 120) and χ²(0.99; 9)/9 = 2.4073, near the
    // 1/df interpolation 2.444.
    let f = f_quantile(0.99, 9.0, 491.0).unwrap();
    assert!(close(f, 2.444, 3e-3), "{f}");
    // Normal.
    assert!(close(normal_quantile(0.99).unwrap(), 2.326_348, 1e-6));
    assert!(close(normal_quantile(0.025).unwrap(), -1.959_964, 1e-6));
    assert!(chi2_quantile(1.0, 3.0).is_none() && f_quantile(0.5, 0.0, 3.0).is_none());
}

// ------------------------------------------------------------------- PCA

/// `n` samples of 6 variables driven by 2 latent factors plus small noise.
fn rank2(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let load = [
        [1.0, 0.0],
        [0.0, 1.0],
        [1.0, 1.0],
        [1.0, -1.0],
        [2.0, 0.5],
        [-0.5, 2.0],
    ];
    let mut rng = SplitMix64::new(seed);
    (0..n)
        .map(|_| {
            let f = [gauss(&mut rng), gauss(&mut rng)];
            load.iter()
                .map(|l| 10.0 + l[0] * f[0] + l[1] * f[1] + 0.05 * gauss(&mut rng))
                .collect()
        })
        .collect()
}

#[test]
fn pca_separates_model_plane_from_residual() {
    let rows = rank2(400, 1);
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let pca = Pca::fit(&flat, 6, ComponentRule::ParallelAnalysis { reps: 10 }).unwrap();
    assert_eq!(pca.components, 2);
    let t2_lim = pca.t2_limit(0.99).unwrap();
    let spe_lim = pca.spe_limit(0.99).unwrap();
    let stats = |x: &[f64]| {
        let mut z = Vec::new();
        pca.scale_row(x, &mut z);
        pca.t2_spe(&z)
    };
    let point = |f0: f64, f1: f64| -> Vec<f64> {
        [
            f0,
            f1,
            f0 + f1,
            f0 - f1,
            2.0 * f0 + 0.5 * f1,
            -0.5 * f0 + 2.0 * f1,
        ]
        .iter()
        .map(|v| 10.0 + v)
        .collect()
    };
    // A typical point in the plane: both statistics small.
    let (t2, spe) = stats(&point(0.5, -0.8));
    assert!(t2 < t2_lim && spe < spe_lim, "in-plane t2 {t2} spe {spe}");
    // Far along the plane: T² flags it, SPE does not.
    let (t2, spe) = stats(&point(6.0, 6.0));
    assert!(t2 > 3.0 * t2_lim && spe < spe_lim, "far t2 {t2} spe {spe}");
    // A small step off the plane (variable 3 breaks x3 = x1 + x2): SPE only.
    let mut off = point(0.5, -0.8);
    off[2] += 1.0;
    let (t2, spe) = stats(&off);
    assert!(spe > 10.0 * spe_lim && t2 < t2_lim, "off t2 {t2} spe {spe}");
    // Cumulative-variance and fixed rules.
    let all = Pca::fit(&flat, 6, ComponentRule::CumulativeVariance(0.999_99)).unwrap();
    assert!(all.components >= 3);
    let one = Pca::fit(&flat, 6, ComponentRule::Fixed(1)).unwrap();
    assert_eq!(one.components, 1);
}

#[test]
fn pca_limits_cover_new_normal_samples() {
    let pca_rows = rank2(500, 2);
    let flat: Vec<f64> = pca_rows.iter().flatten().copied().collect();
    let pca = Pca::fit(&flat, 6, ComponentRule::Fixed(2)).unwrap();
    let (tl, sl) = (pca.t2_limit(0.99).unwrap(), pca.spe_limit(0.99).unwrap());
    let test = rank2(4000, 3);
    let mut z = Vec::new();
    let (mut a, mut b) = (0, 0);
    for r in &test {
        pca.scale_row(r, &mut z);
        let (t2, spe) = pca.t2_spe(&z);
        a += usize::from(t2 > tl);
        b += usize::from(spe > sl);
    }
    let (fa, fb) = (a as f64 / 4000.0, b as f64 / 4000.0);
    // iid Gaussian data: both near the nominal 1 %.
    assert!((0.003..0.025).contains(&fa), "T² false alarms {fa}");
    assert!((0.003..0.025).contains(&fb), "SPE false alarms {fb}");
}

// --------------------------------------------------------------- monitor

/// An autocorrelated normal run: 10 variables on 3 AR(1) latent factors
/// plus independent noise (sd 0.3).
fn process_run(n: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64::new(seed);
    let load: Vec<[f64; 3]> = (0..10)
        .map(|i| {
            let i = i as f64;
            [
                (0.7 * i).sin(),
                (1.3 * i + 0.5).cos(),
                (2.9 * i + 1.0).sin(),
            ]
        })
        .collect();
    let mut f = [0.0; 3];
    (0..n)
        .map(|_| {
            for v in &mut f {
                *v = 0.8 * *v + 0.6 * gauss(&mut rng);
            }
            load.iter()
                .enumerate()
                .map(|(i, l)| {
                    50.0 + i as f64
                        + l[0] * f[0]
                        + l[1] * f[1]
                        + l[2] * f[2]
                        + 0.3 * gauss(&mut rng)
                })
                .collect()
        })
        .collect()
}

fn alarm_rate(m: &Monitor, rows: &[Vec<f64>]) -> (f64, f64) {
    let mut state = m.start();
    let (mut alarms, mut pca) = (0, 0);
    for r in rows {
        let s = m.score(&mut state, r).unwrap();
        alarms += usize::from(s.alarm);
        pca += usize::from(s.pca_t2_alarm() || s.pca_spe_alarm());
    }
    let n = rows.len() as f64;
    (alarms as f64 / n, pca as f64 / n)
}

#[test]
fn monitor_catches_small_shift_that_plain_pca_misses() {
    let train = process_run(600, 11);
    let m = Monitor::fit(&train, &MonitorConfig::default()).unwrap();
    let (far, pca_far) = alarm_rate(&m, &process_run(2000, 12));
    assert!(far <= 0.03, "false alarms {far} (PCA {pca_far})");
    // A sustained shift of one variable by 1.7 times its own noise: rarely
    // visible in a single sample.
    let mut faulty = process_run(600, 13);
    for r in &mut faulty {
        r[1] += 0.5;
    }
    let (det, pca_det) = alarm_rate(&m, &faulty[100..]);
    assert!(pca_det < 0.15, "plain PCA already sees it: {pca_det}");
    assert!(det > 0.9, "monitor detection {det} (PCA {pca_det})");
    // Noise on one variable rising from 0.3 to 0.8: the EWMA of SPE sees
    // the sustained rise that single samples only hint at.
    let mut noisy = process_run(600, 14);
    let mut rng = SplitMix64::new(15);
    for r in &mut noisy {
        r[4] += 0.75 * gauss(&mut rng);
    }
    let (det, pca_det) = alarm_rate(&m, &noisy[100..]);
    assert!(
        det > 0.8 && pca_det < 0.3,
        "noise: monitor {det}, PCA {pca_det}"
    );
}

#[test]
fn contributions_name_the_disturbed_variable() {
    let train = process_run(600, 21);
    let names: Vec<String> = (0..10).map(|i| format!("TI-{}", 100 + i)).collect();
    let config = MonitorConfig {
        variable_names: Some(names.clone()),
        ..MonitorConfig::default()
    };
    let m = Monitor::fit(&train, &config).unwrap();
    let test = process_run(50, 22);
    for (var, bias) in [(2usize, 2.0), (6, -2.5), (9, 2.0)] {
        let mut row = test[40].clone();
        row[var] += bias;
        let c = m.contributions(&row).unwrap();
        assert_eq!(c.spe[0].variable, names[var], "{:?}", &c.spe[..3]);
        assert_eq!(c.spe[0].index, var);
        assert!(c.spe[0].value > 2.0 * c.spe[1].value, "{:?}", &c.spe[..3]);
        assert!(c.spe.windows(2).all(|w| w[0].value >= w[1].value));
        assert_eq!(c.t2.len(), 10);
    }
    // A slow shift shows in the smoothed contributions of the run.
    let mut state = m.start();
    for r in &test {
        let mut r = r.clone();
        r[5] += 0.4;
        m.score(&mut state, &r).unwrap();
    }
    let c = m.smoothed_contributions(&state);
    assert_eq!(c.spe[0].variable, "TI-105", "{:?}", &c.spe[..3]);
}

#[test]
fn monitor_rejects_bad_input() {
    let train = process_run(300, 31);
    assert!(Monitor::fit(&[], &MonitorConfig::default()).is_err());
    assert!(Monitor::fit(&train[..60], &MonitorConfig::default()).is_err());
    let mut ragged = train.clone();
    ragged[7].pop();
    let e = Monitor::fit(&ragged, &MonitorConfig::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sample 8"), "{e}");
    let bad = MonitorConfig {
        variable_names: Some(vec!["a".into()]),
        ..MonitorConfig::default()
    };
    assert!(Monitor::fit(&train, &bad).is_err());
    let m = Monitor::fit(&train, &MonitorConfig::default()).unwrap();
    let mut state = m.start();
    assert!(m.score(&mut state, &train[0][..9]).is_err());
    let mut nan = train[0].clone();
    nan[3] = f64::NAN;
    let e = m.score(&mut state, &nan).unwrap_err().to_string();
    assert!(e.contains("v4"), "{e}");
    assert_eq!(state.samples(), 0);
    assert!(m.contributions(&nan).is_err());
}

#[test]
fn evaluate_reports_rates_per_run() {
    let train = process_run(400, 41);
    let normal = process_run(300, 42);
    let mut shifted = process_run(200, 43);
    for r in &mut shifted[50..] {
        r[1] += 3.0;
    }
    let faults = vec![
        ("d01_te.dat".to_string(), shifted.clone()),
        ("d03_te.dat".to_string(), process_run(200, 44)),
    ];
    let r = evaluate(&train, &normal, &faults, 50).unwrap();
    assert_eq!(r.faults.len(), 2);
    assert_eq!(r.normal_samples, 300 + 2 * 50);
    assert!(r.faults[0].detection_rate > 0.95, "{:?}", r.faults[0]);
    assert!(r.faults[1].detection_rate < 0.1, "{:?}", r.faults[1]);
    // Fault 3 is left out of the second mean only.
    assert!(close(
        r.mean_detection_rate,
        (r.faults[0].detection_rate + r.faults[1].detection_rate) / 2.0,
        1e-12
    ));
    assert!(close(
        r.mean_detection_rate_excluding_3_9_15,
        r.faults[0].detection_rate,
        1e-12
    ));
    assert!(r.false_alarm_rate < 0.05);
    assert!(r.faults[0].false_alarm_rate.is_some());
    // Unidentifiable names are kept; the fault start must leave samples.
    let unnamed = vec![("run-a".to_string(), shifted.clone())];
    let r = evaluate(&train, &normal, &unnamed, 0).unwrap();
    assert_eq!(
        r.mean_detection_rate,
        r.mean_detection_rate_excluding_3_9_15
    );
    assert_eq!(r.faults[0].false_alarm_rate, None);
    assert!(evaluate(&train, &normal, &unnamed, 200).is_err());
}

// ------------------------------------------------------------- TEP data

fn summary(label: &str, r: &MspcReport) -> String {
    let per: Vec<String> = r
        .faults
        .iter()
        .map(|f| {
            format!(
                "{}:{:.2}",
                fault_number(&f.name).unwrap_or(0),
                f.detection_rate
            )
        })
        .collect();
    format!(
        "{label}: k={} FAR {:.3} | detection excl. 3/9/15 {:.3} (all {:.3}) | \
         PCA T² {:.3} SPE {:.3} FAR {:.3} (T² {:.3}, SPE {:.3})\n  {}",
        r.components,
        r.false_alarm_rate,
        r.mean_detection_rate_excluding_3_9_15,
        r.mean_detection_rate,
        r.pca_t2_mean_detection_rate,
        r.pca_spe_mean_detection_rate,
        r.pca_false_alarm_rate,
        r.pca_t2_false_alarm_rate,
        r.pca_spe_false_alarm_rate,
        per.join(" ")
    )
}

/// The development protocol: fit on the first half of the normal run,
/// false alarms on the second half, detection on d01–d21 (faulty from the
/// first sample); then the same model on the `_te` layout, simulated by
/// putting 160 held-out normal samples in front of every fault run.
#[test]
fn tep_beats_pca_with_few_false_alarms() {
    let d00 = tep("d00.dat");
    assert_eq!((d00.len(), d00[0].len()), (500, 52));
    let faults = tep_faults();
    let (train, held_out) = d00.split_at(250);

    let r = evaluate(train, held_out, &faults, 0).unwrap();
    eprintln!("{}", summary("TEP fit d00[..250], normal d00[250..]", &r));
    assert!(r.false_alarm_rate <= 0.05, "FAR {}", r.false_alarm_rate);
    assert!(
        r.mean_detection_rate_excluding_3_9_15 > 0.79,
        "detection {}",
        r.mean_detection_rate_excluding_3_9_15
    );
    // The reference PCA lands near the published anchor (T² ≈ 0.60,
    // SPE ≈ 0.79 with 9 components).
    assert!((0.5..0.7).contains(&r.pca_t2_mean_detection_rate));
    assert!((0.7..0.9).contains(&r.pca_spe_mean_detection_rate));

    let te: Vec<(String, Vec<Vec<f64>>)> = faults
        .iter()
        .map(|(name, rows)| {
            let mut run = held_out[..160].to_vec();
            run.extend_from_slice(rows);
            (name.replace(".dat", "_te.dat"), run)
        })
        .collect();
    let r = evaluate(train, held_out, &te, 160).unwrap();
    eprintln!("{}", summary("TEP _te layout (160 normal first)", &r));
    assert!(r.false_alarm_rate <= 0.05, "FAR {}", r.false_alarm_rate);
    assert!(
        r.mean_detection_rate_excluding_3_9_15 > 0.79,
        "detection {}",
        r.mean_detection_rate_excluding_3_9_15
    );
}

/// The model fitted on the whole normal run, with false alarms from blocked
/// hold-outs (fit without a 100-sample block, count alarms on it). For the
/// report: `cargo test -p pharmatwin-analytics --release -- --ignored --nocapture`.
#[test]
#[ignore = "report: seven extra fits"]
fn tep_full_normal_run_report() {
    let d00 = tep("d00.dat");
    let faults = tep_faults();
    let mut fars = Vec::new();
    for b in 0..5 {
        let (lo, hi) = (b * 100, (b + 1) * 100);
        let train: Vec<Vec<f64>> = d00[..lo].iter().chain(&d00[hi..]).cloned().collect();
        let r = evaluate(&train, &d00[lo..hi], &[], 0).unwrap();
        fars.push((r.false_alarm_rate, r.pca_false_alarm_rate));
    }
    eprintln!("held-out block FARs (monitor, PCA): {fars:.3?}");
    let mean = |i: usize| {
        fars.iter()
            .map(|f| if i == 0 { f.0 } else { f.1 })
            .sum::<f64>()
            / 5.0
    };
    eprintln!(
        "held-out block FAR mean: monitor {:.3}, PCA {:.3}",
        mean(0),
        mean(1)
    );
    // Normal rows here are in-sample, so only the detection figures count.
    let r = evaluate(&d00, &d00, &faults, 0).unwrap();
    eprintln!("{}", summary("TEP fit all d00 (FAR in-sample)", &r));
    // The halves swapped: fit on the second, false alarms on the first.
    let (first, second) = d00.split_at(250);
    let r = evaluate(second, first, &faults, 0).unwrap();
    eprintln!("{}", summary("TEP fit d00[250..], normal d00[..250]", &r));
}
