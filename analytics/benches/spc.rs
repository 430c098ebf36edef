//! SPC cost per update cycle of three plants: 3 sites × 7 lines × 40 CPP/CQA
//! series of 200 points. Run with
//! `cargo bench -p pharmatwin-analytics --bench spc`; prints figures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use pharmatwin_analytics::spc::{
    evaluate, rank_groups, Capability, ImrLimits, RankBy, RuleSet, Spec,
};

const SITES: usize = 3;
const LINES: usize = 7;
const SERIES_PER_LINE: usize = 40;
const WINDOW: usize = 200;
const BASELINE: usize = 100;
const CYCLES: usize = 30;

/// SplitMix64 with Box–Muller normals.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u = self.next().max(f64::MIN_POSITIVE);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.next()).cos()
    }
}

struct Series {
    key: String,
    spec: Spec,
    /// Baseline, then WINDOW + CYCLES points.
    data: Vec<f64>,
    limits: ImrLimits,
}

fn plant_series() -> Vec<Series> {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for site in 0..SITES {
        for line in 0..LINES {
            for k in 0..SERIES_PER_LINE {
                let target = 100.0 + k as f64;
                let sd = 0.5 + 0.05 * (k % 7) as f64;
                // A few series drift or shift, as real ones do, so rules fire.
                let drift = if k % 9 == 0 { 0.01 } else { 0.0 };
                let data: Vec<f64> = (0..BASELINE + WINDOW + CYCLES)
                    .map(|t| {
                        let shift = if k % 13 == 0 && t > BASELINE + 120 {
                            1.5 * sd
                        } else {
                            0.0
                        };
                        target + sd * rng.normal() + drift * t as f64 + shift
                    })
                    .collect();
                let limits = ImrLimits::fit(&data[..BASELINE]).expect("baseline varies");
                let spec =
                    Spec::two_sided(target - 4.0 * sd, target + 4.0 * sd).expect("lsl < usl");
                out.push(Series {
                    key: format!("site{site}/line{line}/p{k:02}"),
                    spec,
                    data,
                    limits,
                });
            }
        }
    }
    out
}

fn summary(name: &str, mut times: Vec<Duration>, extra: &str) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().map(|&d| ms(d)).sum::<f64>() / times.len() as f64;
    println!(
        "{name:<46} min {:>8.3} ms  median {:>8.3} ms  mean {:>8.3} ms  max {:>8.3} ms  {extra}",
        ms(times[0]),
        ms(times[times.len() / 2]),
        mean,
        ms(times[times.len() - 1]),
    );
}

fn main() {
    let series = plant_series();
    let n_series = series.len();
    println!(
        "{n_series} series ({SITES} sites × {LINES} lines × {SERIES_PER_LINE}), window {WINDOW} points, {CYCLES} cycles"
    );

    let t = Instant::now();
    for s in &series {
        black_box(ImrLimits::fit(&s.data[..BASELINE]).expect("baseline varies"));
    }
    println!(
        "phase I limits, all series once:               {:>8.3} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Full re-evaluation: every series' 200-point window charted (I-MR, all
    // eight Nelson rules) and its capability computed, every cycle.
    let rules = RuleSet::nelson();
    let mut times = Vec::with_capacity(CYCLES);
    let mut violations = 0;
    for c in 0..CYCLES {
        let t = Instant::now();
        for s in &series {
            let window = &s.data[BASELINE + c..BASELINE + c + WINDOW];
            let chart = s.limits.chart(window, rules).expect("finite data");
            let cap = Capability::individuals(window, s.spec).expect("data varies");
            violations += chart.location.violations.len();
            black_box((chart, cap));
        }
        times.push(t.elapsed());
    }
    summary(
        "full: chart + rules + capability, per cycle",
        times,
        &format!("({} violations/cycle)", violations / CYCLES),
    );

    let mut times = Vec::with_capacity(CYCLES);
    for c in 0..CYCLES {
        let t = Instant::now();
        for s in &series {
            let window = &s.data[BASELINE + c..BASELINE + c + WINDOW];
            black_box(evaluate(window, &s.limits.individuals, rules).expect("finite data"));
        }
        times.push(t.elapsed());
    }
    summary("full: rules only (evaluate), per cycle", times, "");

    // Incremental: one new point per series through its RuleEngine, capability
    // of the rolling window with the frozen phase I σ_within.
    let mut engines: Vec<_> = series.iter().map(|s| s.limits.rule_engine(rules)).collect();
    for (s, e) in series.iter().zip(&mut engines) {
        for &x in &s.data[BASELINE..BASELINE + WINDOW] {
            e.push(x).expect("finite data");
        }
    }
    let mut times = Vec::with_capacity(CYCLES);
    let mut new_violations = 0;
    let mut out = Vec::new();
    for c in 1..=CYCLES {
        let t = Instant::now();
        for (s, e) in series.iter().zip(&mut engines) {
            let x = s.data[BASELINE + WINDOW + c - 1];
            out.clear();
            e.push_into(x, &mut out).expect("finite data");
            new_violations += out.len();
            let window = &s.data[BASELINE + c..BASELINE + c + WINDOW];
            black_box(
                Capability::with_sigma_within(window, s.limits.sigma_within, s.spec)
                    .expect("data varies"),
            );
        }
        times.push(t.elapsed());
    }
    summary(
        "online: push + capability, per cycle",
        times,
        &format!("({} new violations/cycle)", new_violations / CYCLES),
    );

    let mut times = Vec::with_capacity(CYCLES);
    for e in &mut engines {
        e.reset();
    }
    for _ in 0..CYCLES {
        let t = Instant::now();
        for (s, e) in series.iter().zip(&mut engines) {
            out.clear();
            e.push_into(s.data[BASELINE], &mut out)
                .expect("finite data");
            black_box(&out);
        }
        times.push(t.elapsed());
    }
    summary("online: rule engine push only, per cycle", times, "");

    // Cross-plant comparison: all series ranked worst-first by Ppk.
    let mut times = Vec::with_capacity(CYCLES);
    let mut worst = String::new();
    for c in 0..CYCLES {
        let t = Instant::now();
        let ranked = rank_groups(
            series.iter().map(|s| {
                (
                    s.key.as_str(),
                    s.spec,
                    &s.data[BASELINE + c..BASELINE + c + WINDOW],
                )
            }),
            RankBy::Ppk,
        );
        times.push(t.elapsed());
        if let Some(g) = ranked.first() {
            worst = format!(
                "worst {} Ppk {:.2}",
                g.key,
                g.capability.map_or(f64::NAN, |c| c.ppk)
            );
        }
        black_box(ranked);
    }
    summary("rank_groups over all series, per cycle", times, &worst);
    println!(
        "target: SPC + prediction of every running batch of three plants < 50 ms per update cycle"
    );
}
