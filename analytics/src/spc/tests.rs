use super::*;

/// Center 0, σ 1: every zone boundary (±1, ±2, ±3) is exact in binary, so the
/// "on the boundary" cases below test the convention, not rounding.
fn unit() -> Zones {
    Zones::new(0.0, 1.0).unwrap()
}

fn online(values: &[f64], zones: Zones, rules: RuleSet) -> Vec<Violation> {
    let mut engine = RuleEngine::new(zones, rules);
    let mut out = Vec::new();
    for &x in values {
        out.extend(engine.push(x).unwrap());
    }
    out
}

fn hit(rule: Rule, index: usize, involved: &[usize]) -> Violation {
    Violation::new(rule, index, involved).unwrap()
}

fn run(rule: Rule, index: usize, len: usize) -> Violation {
    hit(rule, index, &(index + 1 - len..=index).collect::<Vec<_>>())
}

/// Asserts the exact violation list, batch and online, under `rules`.
#[track_caller]
fn expect_with(values: &[f64], rules: RuleSet, want: &[Violation]) {
    let batch = evaluate(values, &unit(), rules).unwrap();
    assert_eq!(batch, want, "batch on {values:?}");
    assert_eq!(online(values, unit(), rules), want, "online on {values:?}");
}

/// Asserts the exact violation list under all eight Nelson rules.
#[track_caller]
fn expect(values: &[f64], want: &[Violation]) {
    expect_with(values, RuleSet::nelson(), want);
}

fn neg(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| -v).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[track_caller]
fn assert_close(got: f64, want: f64, tol: f64) {
    assert!(close(got, want, tol), "got {got}, want {want} ± {tol}");
}

// ---- Nelson rules: each sequence fires exactly its rule, the near miss none.

#[test]
fn rule1_beyond_limits() {
    expect(&[0.5, -0.5, 3.5], &[run(Rule::BeyondLimits, 2, 1)]);
    expect(&[0.5, 0.5, -3.2], &[run(Rule::BeyondLimits, 2, 1)]);
    // Exactly on the UCL / LCL is inside.
    expect(&[0.5, -0.5, 3.0], &[]);
    expect(&[0.5, 0.5, -3.0], &[]);
}

#[test]
fn rule2_nine_on_one_side() {
    let above = [0.5, 0.2, 0.8, 0.3, 0.6, 0.1, 0.9, 0.4, 0.7];
    expect(&above, &[run(Rule::SameSide, 8, 9)]);
    expect(&neg(&above), &[run(Rule::SameSide, 8, 9)]);
    // A point exactly on the center line belongs to neither side.
    let mut on_center = above;
    on_center[4] = 0.0;
    expect(&on_center, &[]);
    // Eight in a row is not enough for Nelson.
    expect(&above[..8], &[]);
}

#[test]
fn rule3_six_trending() {
    let up = [-0.5, -0.3, 0.1, 0.2, 0.4, 0.9];
    expect(&up, &[run(Rule::Trend, 5, 6)]);
    expect(&neg(&up), &[run(Rule::Trend, 5, 6)]);
    // A tie breaks the trend.
    expect(&[-0.5, -0.3, 0.1, 0.1, 0.4, 0.9], &[]);
    expect(&up[..5], &[]);
}

#[test]
fn rule4_fourteen_alternating() {
    let alt: Vec<f64> = (0..14)
        .map(|j| if j % 2 == 0 { 0.5 } else { -0.5 })
        .collect();
    expect(&alt, &[run(Rule::Alternating, 13, 14)]);
    // A tie (x6 = x7) splits it into two chains of 6 steps.
    let mut tie = alt.clone();
    tie[7..].iter_mut().for_each(|v| *v = -*v);
    assert_eq!((tie[6], tie[7]), (0.5, 0.5));
    expect(&tie, &[]);
    expect(&alt[..13], &[]);
    // Reported at every point completing a window: 15 alternating points fire
    // at 13 and 14 (amplitude 0.5 / −1.5 so that rule 7 stays quiet).
    let long: Vec<f64> = (0..15)
        .map(|j| if j % 2 == 0 { 0.5 } else { -1.5 })
        .collect();
    expect(
        &long,
        &[
            run(Rule::Alternating, 13, 14),
            run(Rule::Alternating, 14, 14),
        ],
    );
}

#[test]
fn rule5_two_of_three_beyond_2sigma() {
    expect(&[0.0, 2.5, 1.0, 2.2], &[hit(Rule::TwoOfThree, 3, &[1, 3])]);
    expect(
        &[0.0, -2.5, -1.0, -2.2],
        &[hit(Rule::TwoOfThree, 3, &[1, 3])],
    );
    // Exactly on 2σ is not beyond it.
    expect(&[0.0, 2.5, 1.0, 2.0], &[]);
    // Beyond 2σ, but on opposite sides.
    expect(&[0.0, 2.5, 1.0, -2.2], &[]);
    // At the start the window is the points there are; the point reported
    // must itself be beyond, so index 2 is not flagged again.
    expect(&[2.5, 2.1, 0.5], &[hit(Rule::TwoOfThree, 1, &[0, 1])]);
}

#[test]
fn rule6_four_of_five_beyond_1sigma() {
    expect(
        &[1.5, 0.5, 1.2, 1.8, 1.1],
        &[hit(Rule::FourOfFive, 4, &[0, 2, 3, 4])],
    );
    expect(
        &[-1.5, -0.5, -1.2, -1.8, -1.1],
        &[hit(Rule::FourOfFive, 4, &[0, 2, 3, 4])],
    );
    // Exactly on 1σ is not beyond it.
    expect(&[1.5, 0.5, 1.2, 1.8, 1.0], &[]);
}

#[test]
fn rule7_fifteen_within_1sigma() {
    // Includes points exactly on +1σ (index 8), −1σ (11) and the center (7):
    // all count as within.
    let calm = [
        0.2, -0.3, 0.5, 0.4, -0.1, -0.6, 0.3, 0.0, 1.0, -0.2, 0.1, -1.0, 0.7, 0.6, -0.4,
    ];
    expect(&calm, &[run(Rule::Stratification, 14, 15)]);
    let mut one_out = calm;
    one_out[8] = 1.01;
    expect(&one_out, &[]);
    expect(&calm[..14], &[]);
}

#[test]
fn rule8_eight_beyond_1sigma_either_side() {
    let mixed = [1.5, -1.5, 1.2, -1.8, 1.3, -1.1, 1.6, -1.4];
    expect(&mixed, &[run(Rule::Mixture, 7, 8)]);
    let mut on_boundary = mixed;
    on_boundary[5] = -1.0;
    expect(&on_boundary, &[]);
}

#[test]
fn western_electric_set() {
    let we = RuleSet::western_electric();
    assert_eq!(
        we.rules().map(Rule::number).collect::<Vec<_>>(),
        vec![1, 2, 5, 6]
    );
    assert_eq!(we.same_side_run(), 8);
    let above = [0.5, 0.2, 0.8, 0.3, 0.6, 0.1, 0.9, 0.4, 0.7];
    expect_with(
        &above,
        we,
        &[run(Rule::SameSide, 7, 8), run(Rule::SameSide, 8, 8)],
    );
    // Rules 3, 4, 7, 8 are not in the set.
    expect_with(&[-0.5, -0.3, 0.1, 0.2, 0.4, 0.9], we, &[]);
    expect_with(&[1.5, -1.5, 1.2, -1.8, 1.3, -1.1, 1.6, -1.4], we, &[]);
    // Still fires its own rules.
    expect_with(
        &[0.0, 2.5, 1.0, 2.2],
        we,
        &[hit(Rule::TwoOfThree, 3, &[1, 3])],
    );
}

#[test]
fn rule_set_building_and_numbers() {
    let set = RuleSet::none().with(Rule::Trend).with(Rule::Mixture);
    assert!(set.contains(Rule::Trend) && !set.contains(Rule::BeyondLimits));
    assert!(!set.without(Rule::Trend).contains(Rule::Trend));
    assert_eq!(RuleSet::default(), RuleSet::nelson());
    assert_eq!(RuleSet::nelson().rules().count(), 8);
    assert!(RuleSet::nelson().with_same_side_run(1).is_err());
    assert!(RuleSet::nelson().with_same_side_run(16).is_err());
    assert_eq!(
        RuleSet::nelson()
            .with_same_side_run(7)
            .unwrap()
            .same_side_run(),
        7
    );
    for (k, r) in Rule::ALL.iter().enumerate() {
        assert_eq!(usize::from(r.number()), k + 1);
        assert_eq!(Rule::from_number(r.number()).unwrap(), *r);
    }
    assert!(Rule::from_number(0).is_err() && Rule::from_number(9).is_err());
}

#[test]
fn rules_serialize_as_numbers() {
    use serde::de::{value::Error, IntoDeserializer};
    use serde::Deserialize;
    let ok: Result<Rule, Error> = Rule::deserialize(6u8.into_deserializer());
    assert_eq!(ok.unwrap(), Rule::FourOfFive);
    let bad: Result<Rule, Error> = Rule::deserialize(9u8.into_deserializer());
    assert!(bad.unwrap_err().to_string().contains("no Nelson rule 9"));
    fn serde_both<T: serde::Serialize + serde::de::DeserializeOwned>() {}
    serde_both::<ControlChart>();
    serde_both::<Capability>();
    serde_both::<ImrLimits>();
    serde_both::<SubgroupLimits>();
    serde_both::<GroupCapability<String>>();
}

#[test]
fn violation_points() {
    let v = Violation::new(Rule::FourOfFive, 20, &[16, 18, 19, 20]).unwrap();
    assert_eq!((v.rule(), v.index(), v.first()), (Rule::FourOfFive, 20, 16));
    assert_eq!(v.involved().collect::<Vec<_>>(), vec![16, 18, 19, 20]);
    let r = run(Rule::Stratification, 14, 15);
    assert_eq!(r.first(), 0);
    assert_eq!(r.involved().count(), 15);
    // The point reported must be involved; nothing after it or 15+ back.
    assert!(Violation::new(Rule::TwoOfThree, 5, &[3, 4]).is_err());
    assert!(Violation::new(Rule::TwoOfThree, 5, &[5, 6]).is_err());
    assert!(Violation::new(Rule::SameSide, 20, &[5, 20]).is_err());
    assert!(Violation::new(Rule::SameSide, 20, &[6, 20]).is_ok());
    assert_eq!(
        Rule::Mixture.description(),
        "eight points beyond 1 sigma, either side"
    );
}

#[test]
fn non_finite_values_are_refused() {
    let e = evaluate(&[0.0, f64::NAN], &unit(), RuleSet::nelson()).unwrap_err();
    assert!(matches!(e, SpcError::NonFinite { index: 1, .. }), "{e}");
    let mut engine = RuleEngine::new(unit(), RuleSet::nelson());
    engine.push(3.5).unwrap();
    assert!(engine.push(f64::INFINITY).is_err());
    // The refused value left no trace: the next point is index 1.
    assert_eq!(engine.len(), 1);
    let v = engine.push(2.5).unwrap();
    assert_eq!(v, vec![hit(Rule::TwoOfThree, 1, &[0, 1])]);
    engine.reset();
    assert!(engine.is_empty());
    assert!(Zones::new(0.0, 0.0).is_err() && Zones::new(f64::NAN, 1.0).is_err());
}

// ---- Online engine against batch evaluation on random series.

/// SplitMix64: enough randomness for test series, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Multiples of 0.5 in [lo, hi] halves: ties and points exactly on zone
    /// boundaries are frequent.
    fn half(&mut self, lo: i64, hi: i64) -> f64 {
        (lo + self.below((hi - lo + 1) as u64) as i64) as f64 * 0.5
    }
}

/// Segments of regimes that make every rule fire now and then: noise, trends,
/// oscillation, a calm stretch, a wide stretch, a shift, repeats.
fn random_series(rng: &mut Rng, len: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let seg = 3 + rng.below(20) as usize;
        let regime = rng.below(7);
        let mut level = rng.half(-4, 4);
        for j in 0..seg {
            let x = match regime {
                0 => rng.half(-8, 8),
                1 => {
                    level += if rng.below(6) == 0 { 0.0 } else { 0.5 };
                    level
                }
                2 => {
                    if j % 2 == 0 {
                        rng.half(0, 4)
                    } else {
                        rng.half(-4, -1)
                    }
                }
                3 => rng.half(-2, 2),
                4 => rng.half(2, 6) * if rng.below(2) == 0 { 1.0 } else { -1.0 },
                5 => level + rng.half(-1, 1),
                _ => level,
            };
            out.push(x);
        }
    }
    out.truncate(len);
    out
}

#[test]
fn online_engine_agrees_with_batch_on_random_series() {
    let mut rng = Rng(20240611);
    let mut fired = [0usize; 8];
    for case in 0..400 {
        let len = 50 + rng.below(250) as usize;
        let values = random_series(&mut rng, len);
        let rules = match case % 4 {
            0 | 1 => RuleSet::nelson(),
            2 => RuleSet::western_electric(),
            _ => RuleSet::nelson()
                .without(Rule::from_number(1 + rng.below(8) as u8).unwrap())
                .with_same_side_run(2 + rng.below(14) as usize)
                .unwrap(),
        };
        // Zones off the half grid too, so boundaries fall between values.
        let zones = if case % 5 == 0 {
            Zones::new(0.25, 1.3).unwrap()
        } else {
            unit()
        };
        let batch = evaluate(&values, &zones, rules).unwrap();
        let stream = online(&values, zones, rules);
        assert_eq!(batch, stream, "case {case}: {values:?}");
        for v in &batch {
            fired[usize::from(v.rule().number() - 1)] += 1;
            assert_eq!(v.involved().last(), Some(v.index()));
            assert_eq!(v.involved().next(), Some(v.first()));
        }
    }
    // The comparison means something only if every rule fired often.
    assert!(fired.iter().all(|&n| n >= 20), "fired per rule: {fired:?}");
}

// ---- I-MR, hand computed.

// Tablet hardness (kP), 10 consecutive tablets:
//   x  = 10 12 11 13 12 10 11 12 14 11          Σx = 116, x̄ = 11.6
//   MR =    2  1  2  1  2  1  1  2  3           ΣMR = 15, MR̄ = 15/9 = 1.666667
//   σ  = MR̄ / d2 = 1.666667 / 1.128 = 1.477541
//   UCL = 11.6 + 3·1.477541 = 11.6 + 4.432624 = 16.032624
//   LCL = 11.6 − 4.432624 = 7.167376
//   UCL(MR) = D4·MR̄ = 3.267·1.666667 = 5.445,  LCL(MR) = 0
const HARDNESS: [f64; 10] = [10.0, 12.0, 11.0, 13.0, 12.0, 10.0, 11.0, 12.0, 14.0, 11.0];

#[test]
fn imr_limits_by_hand() {
    let l = ImrLimits::fit(&HARDNESS).unwrap();
    assert_close(l.individuals.center, 11.6, 1e-9);
    assert_close(l.sigma_within, 1.477541, 1e-6);
    assert_close(l.individuals.sigma, 1.477541, 1e-6);
    assert_close(l.individuals.ucl(), 16.032624, 1e-6);
    assert_close(l.individuals.lcl(), 7.167376, 1e-6);
    assert_close(l.moving_range.center, 1.666667, 1e-6);
    assert_close(l.moving_range.ucl, 5.445, 1e-9);
    assert_eq!(l.moving_range.lcl, 0.0);
    assert_eq!(l.baseline_len, 10);

    // Phase I: the baseline is in control.
    let base = l.chart(&HARDNESS, RuleSet::nelson()).unwrap();
    assert!(base.location.violations.is_empty() && base.dispersion.violations.is_empty());

    // Phase II: 17 > 16.0326 and 7.0 < 7.1674 break the I limits; the jump
    // 11 → 17 (MR 6 > 5.445) breaks the MR limit, 17 → 12 (MR 5) does not.
    let c = l
        .chart(&[11.0, 17.0, 12.0, 7.0], RuleSet::nelson())
        .unwrap();
    assert_eq!(c.kind, ChartKind::Imr);
    assert_eq!(
        c.location.violations,
        vec![run(Rule::BeyondLimits, 1, 1), run(Rule::BeyondLimits, 3, 1)]
    );
    assert_eq!(c.location.points[1].rules, vec![Rule::BeyondLimits]);
    assert!(c.location.points[2].rules.is_empty());
    assert_eq!(c.dispersion.statistic, "MR");
    let mr: Vec<(usize, f64)> = c
        .dispersion
        .points
        .iter()
        .map(|p| (p.index, p.value))
        .collect();
    assert_eq!(mr, vec![(1, 6.0), (2, 5.0), (3, 5.0)]);
    assert_eq!(c.dispersion.violations, vec![run(Rule::BeyondLimits, 1, 1)]);
    assert_eq!(c.dispersion.sigma, None);
    assert_eq!(c.location.ucl, l.individuals.ucl());

    // The engine of the limits reports the same as the chart, point by point.
    let mut e = l.rule_engine(RuleSet::nelson());
    let mut streamed = Vec::new();
    for x in [11.0, 17.0, 12.0, 7.0] {
        streamed.extend(e.push(x).unwrap());
    }
    assert_eq!(streamed, c.location.violations);
}

#[test]
fn imr_errors() {
    assert!(matches!(
        ImrLimits::fit(&[1.0]),
        Err(SpcError::TooFew {
            needed: 2,
            got: 1,
            ..
        })
    ));
    let e = ImrLimits::fit(&[2.0, 2.0, 2.0]).unwrap_err();
    assert!(
        matches!(
            e,
            SpcError::ZeroSigma {
                which: "within",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("moving range"), "{e}");
    assert!(matches!(
        ImrLimits::fit(&[1.0, f64::NAN]),
        Err(SpcError::NonFinite { index: 1, .. })
    ));
}

// ---- X̄-R and X̄-S, hand computed (n = 5).

// Fill weight deviation (mg), five subgroups of five:
//   subgroup  values            Σ    x̄     R    Σ(x − x̄)²   s = √(Σ/4)
//   1         10 12 11 13  9    55   11.0   4    10          1.581139
//   2         11 11 12 10 11    55   11.0   2     2          0.707107
//   3         12 14 11 12 11    60   12.0   3     6          1.224745
//   4          9 10 11 10 10    50   10.0   2     2          0.707107
//   5         11 13 10 12 14    60   12.0   4    10          1.581139
//   X̿ = 56/5 = 11.2,  R̄ = 15/5 = 3.0,  S̄ = 5.801237/5 = 1.160247
// X̄-R (A2 = 0.577, D3 = 0, D4 = 2.114, d2 = 2.326):
//   UCL = 11.2 + 0.577·3.0 = 11.2 + 1.731 = 12.931,  LCL = 11.2 − 1.731 = 9.469
//   UCL(R) = 2.114·3.0 = 6.342,  LCL(R) = 0
//   σ_within = 3.0/2.326 = 1.289768,  σ(x̄) = A2·R̄/3 = 0.577
// X̄-S (A3 = 1.427, B3 = 0, B4 = 2.089, c4 = 0.9400):
//   UCL = 11.2 + 1.427·1.160247 = 11.2 + 1.655673 = 12.855673,  LCL = 9.544327
//   UCL(S) = 2.089·1.160247 = 2.423756,  LCL(S) = 0
//   σ_within = 1.160247/0.9400 = 1.234306
const FILL: [[f64; 5]; 5] = [
    [10.0, 12.0, 11.0, 13.0, 9.0],
    [11.0, 11.0, 12.0, 10.0, 11.0],
    [12.0, 14.0, 11.0, 12.0, 11.0],
    [9.0, 10.0, 11.0, 10.0, 10.0],
    [11.0, 13.0, 10.0, 12.0, 14.0],
];

#[test]
fn xbar_r_limits_by_hand() {
    let l = SubgroupLimits::fit_r(&FILL).unwrap();
    assert_eq!(
        (l.kind, l.subgroup_size, l.baseline_len),
        (ChartKind::XbarR, 5, 5)
    );
    assert_close(l.means.center, 11.2, 1e-9);
    assert_close(l.means.sigma, 0.577, 1e-9);
    assert_close(l.means.ucl(), 12.931, 1e-9);
    assert_close(l.means.lcl(), 9.469, 1e-9);
    assert_close(l.dispersion.center, 3.0, 1e-12);
    assert_close(l.dispersion.ucl, 6.342, 1e-9);
    assert_eq!(l.dispersion.lcl, 0.0);
    assert_close(l.sigma_within, 1.289768, 1e-6);

    // Phase II: mean 13.2 > 12.931 (subgroup 0); range 16 − 9 = 7 > 6.342
    // (subgroup 1), whose mean 11.0 is fine.
    let new = [[13.0, 14.0, 13.0, 12.0, 14.0], [9.0, 16.0, 10.0, 11.0, 9.0]];
    let c = l.chart(&new, RuleSet::nelson()).unwrap();
    assert_eq!(c.kind, ChartKind::XbarR);
    assert_eq!(c.location.statistic, "Xbar");
    assert_close(c.location.points[0].value, 13.2, 1e-9);
    assert_eq!(c.location.violations, vec![run(Rule::BeyondLimits, 0, 1)]);
    assert_eq!(c.dispersion.statistic, "R");
    assert_eq!(c.dispersion.points[1].value, 7.0);
    assert_eq!(c.dispersion.violations, vec![run(Rule::BeyondLimits, 1, 1)]);
    assert!(l
        .chart(&FILL, RuleSet::nelson())
        .unwrap()
        .location
        .violations
        .is_empty());

    let mut e = l.rule_engine(RuleSet::nelson());
    assert_eq!(e.push(13.2).unwrap(), vec![run(Rule::BeyondLimits, 0, 1)]);
}

#[test]
fn xbar_s_limits_by_hand() {
    let l = SubgroupLimits::fit_s(&FILL).unwrap();
    assert_eq!(l.kind, ChartKind::XbarS);
    assert_close(l.means.center, 11.2, 1e-9);
    assert_close(l.means.ucl(), 12.855673, 1e-6);
    assert_close(l.means.lcl(), 9.544327, 1e-6);
    assert_close(l.dispersion.center, 1.160247, 1e-6);
    assert_close(l.dispersion.ucl, 2.423756, 1e-6);
    assert_eq!(l.dispersion.lcl, 0.0);
    assert_close(l.sigma_within, 1.234306, 1e-6);
    let c = l.chart(&FILL, RuleSet::nelson()).unwrap();
    assert_eq!(c.dispersion.statistic, "S");
    assert_close(c.dispersion.points[2].value, 1.224745, 1e-6);
}

#[test]
fn subgroup_errors() {
    assert!(matches!(
        SubgroupLimits::fit_r(&[[1.0, 2.0]]),
        Err(SpcError::TooFew {
            needed: 2,
            got: 1,
            ..
        })
    ));
    assert!(matches!(
        SubgroupLimits::fit_r(&[[1.0], [2.0]]),
        Err(SpcError::SubgroupSize(1))
    ));
    assert!(matches!(
        SubgroupLimits::fit_r(&[vec![1.0; 11], vec![2.0; 11]]),
        Err(SpcError::SubgroupSize(11))
    ));
    let ragged: [&[f64]; 2] = [&[1.0, 2.0, 3.0], &[1.0, 2.0]];
    assert!(matches!(
        SubgroupLimits::fit_r(&ragged),
        Err(SpcError::RaggedSubgroup {
            index: 1,
            got: 2,
            expected: 3
        })
    ));
    assert!(matches!(
        SubgroupLimits::fit_s(&[[1.0, 1.0], [2.0, 2.0]]),
        Err(SpcError::ZeroSigma { .. })
    ));
    assert!(matches!(
        SubgroupLimits::fit_r(&[[1.0, 2.0], [1.0, f64::NAN]]),
        Err(SpcError::NonFiniteInSubgroup {
            subgroup: 1,
            position: 1,
            ..
        })
    ));
    let l = SubgroupLimits::fit_r(&FILL).unwrap();
    assert!(matches!(
        l.chart(&[[1.0, 2.0, 3.0]], RuleSet::nelson()),
        Err(SpcError::RaggedSubgroup {
            index: 0,
            got: 3,
            expected: 5
        })
    ));
}

#[test]
fn constants_table_is_self_consistent() {
    // A2 = 3/(d2√n), A3 = 3/(c4√n), B4 = 1 + 3√(1 − c4²)/c4, B3 = max(0, 2 − B4),
    // D3 = max(0, 2 − D4), c4 = √(2/(n−1))·Γ(n/2)/Γ((n−1)/2); the table rounds
    // to 3–4 decimals, so a typo shows as a difference well above 0.0015.
    fn gamma_half(k: usize) -> f64 {
        // Γ(k/2) for k ≥ 1 by Γ(x + 1) = xΓ(x) from Γ(1/2) = √π, Γ(1) = 1.
        let mut x = if k.is_multiple_of(2) { 1.0 } else { 0.5 };
        let mut g = if k.is_multiple_of(2) {
            1.0
        } else {
            std::f64::consts::PI.sqrt()
        };
        while x < k as f64 / 2.0 {
            g *= x;
            x += 1.0;
        }
        g
    }
    for n in 2..=10usize {
        let k = subgroup_constants(n).unwrap();
        let rn = (n as f64).sqrt();
        let c4 = (2.0 / (n - 1) as f64).sqrt() * gamma_half(n) / gamma_half(n - 1);
        assert_close(k.c4, c4, 0.0001);
        assert_close(k.a2, 3.0 / (k.d2 * rn), 0.0015);
        assert_close(k.a3, 3.0 / (k.c4 * rn), 0.0015);
        assert_close(k.b4, 1.0 + 3.0 * (1.0 - c4 * c4).sqrt() / c4, 0.0015);
        assert_close(k.b3, (2.0 - k.b4).max(0.0), 0.0015);
        assert_close(k.d3, (2.0 - k.d4).max(0.0), 0.0015);
    }
    assert_eq!(subgroup_constants(2).unwrap().d2, MR_D2);
    assert_eq!(subgroup_constants(2).unwrap().d4, MR_D4);
    assert!(subgroup_constants(1).is_err() && subgroup_constants(11).is_err());
}

// ---- Capability, hand computed.

// Assay (% label claim − 90), six batches in order:
//   x = 9.8 10.2 10.0 10.4 9.6 10.0,  n = 6,  mean = 60.0/6 = 10.0
//   x − mean = −0.2 0.2 0 0.4 −0.4 0,  Σ² = 0.04+0.04+0+0.16+0.16+0 = 0.40
//   σ_overall = √(0.40/5) = √0.08 = 0.282843
//   MR = 0.4 0.2 0.4 0.8 0.4,  MR̄ = 2.2/5 = 0.44,  σ_within = 0.44/1.128 = 0.390071
// Spec 9.0 .. 11.5 (USL − mean = 1.5, mean − LSL = 1.0):
//   Cp  = 2.5/(6·0.390071) = 2.5/2.340426 = 1.068182
//   Cpk = 1.0/(3·0.390071) = 1.0/1.170213 = 0.854545   (CPU = 1.5/1.170213 = 1.281818)
//   Pp  = 2.5/(6·0.282843) = 2.5/1.697056 = 1.473139
//   Ppk = 1.0/(3·0.282843) = 1.0/0.848528 = 1.178511   (PPU = 1.5/0.848528 = 1.767767)
const ASSAY: [f64; 6] = [9.8, 10.2, 10.0, 10.4, 9.6, 10.0];

#[test]
fn capability_by_hand() {
    let c = Capability::individuals(&ASSAY, Spec::two_sided(9.0, 11.5).unwrap()).unwrap();
    assert_eq!(c.n, 6);
    assert_close(c.mean, 10.0, 1e-12);
    assert_close(c.sigma_overall, 0.282843, 1e-6);
    assert_close(c.sigma_within, 0.390071, 1e-6);
    assert_close(c.cp.unwrap(), 1.068182, 1e-6);
    assert_close(c.cpk, 0.854545, 1e-6);
    assert_close(c.pp.unwrap(), 1.473139, 1e-6);
    assert_close(c.ppk, 1.178511, 1e-6);
    assert_eq!((c.lsl, c.usl), (Some(9.0), Some(11.5)));
}

#[test]
fn capability_one_sided() {
    // Only USL (e.g. an impurity): Cpk = CPU, Ppk = PPU, no Cp / Pp.
    let u = Capability::individuals(&ASSAY, Spec::upper(11.5).unwrap()).unwrap();
    assert_eq!((u.cp, u.pp), (None, None));
    assert_close(u.cpk, 1.281818, 1e-6);
    assert_close(u.ppk, 1.767767, 1e-6);
    // Only LSL (e.g. dissolution): Cpk = CPL, Ppk = PPL.
    let l = Capability::individuals(&ASSAY, Spec::lower(9.0).unwrap()).unwrap();
    assert_eq!((l.cp, l.pp, l.usl), (None, None, None));
    assert_close(l.cpk, 0.854545, 1e-6);
    assert_close(l.ppk, 1.178511, 1e-6);
}

#[test]
fn capability_of_subgroups_by_hand() {
    // FILL above: σ_within = R̄/d2 = 3.0/2.326 = 1.289768;
    // Σ(x − 11.2)² over the 25 values = 44, σ_overall = √(44/24) = 1.354006.
    // Spec 7 .. 15 (USL − mean = 3.8, mean − LSL = 4.2):
    //   Cp = 8/(6·1.289768) = 8/7.738607 = 1.033778
    //   Cpk = 3.8/(3·1.289768) = 3.8/3.869304 = 0.982089
    //   Pp = 8/(6·1.354006) = 8/8.124038 = 0.984732
    //   Ppk = 3.8/(3·1.354006) = 3.8/4.062019 = 0.935495
    let c = Capability::subgroups(&FILL, Spec::two_sided(7.0, 15.0).unwrap()).unwrap();
    assert_eq!(c.n, 25);
    assert_close(c.mean, 11.2, 1e-9);
    assert_close(c.sigma_within, 1.289768, 1e-6);
    assert_close(c.sigma_overall, 1.354006, 1e-6);
    assert_close(c.cp.unwrap(), 1.033778, 1e-6);
    assert_close(c.cpk, 0.982089, 1e-6);
    assert_close(c.pp.unwrap(), 0.984732, 1e-6);
    assert_close(c.ppk, 0.935495, 1e-6);
}

#[test]
fn capability_errors() {
    let spec = Spec::two_sided(9.0, 11.0).unwrap();
    let e = Capability::individuals(&[10.0], spec).unwrap_err();
    assert!(
        matches!(
            e,
            SpcError::TooFew {
                needed: 2,
                got: 1,
                ..
            }
        ),
        "{e}"
    );
    assert!(Capability::individuals(&[], spec).is_err());
    let e = Capability::individuals(&[10.0, 10.0, 10.0], spec).unwrap_err();
    assert!(matches!(e, SpcError::ZeroSigma { .. }), "{e}");
    assert!(e.to_string().contains("sigma is 0"), "{e}");
    // Constant subgroups at different levels: overall σ > 0, within σ = 0.
    let e = Capability::subgroups(&[[1.0, 1.0], [2.0, 2.0]], spec).unwrap_err();
    assert!(
        matches!(
            e,
            SpcError::ZeroSigma {
                which: "within",
                ..
            }
        ),
        "{e}"
    );
    let e = Capability::with_sigma_within(&[1.0, 1.0], 0.5, spec).unwrap_err();
    assert!(
        matches!(
            e,
            SpcError::ZeroSigma {
                which: "overall",
                ..
            }
        ),
        "{e}"
    );
    assert!(Capability::with_sigma_within(&ASSAY, 0.0, spec).is_err());
    assert!(Capability::individuals(&[1.0, f64::NAN], spec).is_err());

    assert!(Spec::two_sided(5.0, 5.0).is_err());
    assert!(Spec::two_sided(6.0, 5.0).is_err());
    assert!(Spec::lower(f64::NAN).is_err());
    let none = Spec {
        lsl: None,
        usl: None,
    };
    assert!(matches!(
        Capability::individuals(&ASSAY, none),
        Err(SpcError::Spec(_))
    ));
}

#[test]
fn capability_with_phase_one_sigma() {
    let c = Capability::with_sigma_within(&ASSAY, 0.390071, Spec::lower(9.0).unwrap()).unwrap();
    assert_close(c.cpk, 0.854545, 1e-6);
    assert_close(c.ppk, 1.178511, 1e-6);
}

#[test]
fn ranking_is_worst_first() {
    let spec = Spec::two_sided(9.0, 11.5).unwrap();
    // ASSAY has Cpk 0.854545; the same data under another key ties with it
    // exactly; half the spread gives 1.709091; shifted by +0.8 the mean is
    // 0.7 from the USL: 0.7/1.170213 = 0.598182.
    let tight: Vec<f64> = ASSAY.iter().map(|x| 10.0 + (x - 10.0) / 2.0).collect();
    let shifted: Vec<f64> = ASSAY.iter().map(|x| x + 0.8).collect();
    let groups = vec![
        ("site-B/line-2", spec, tight),
        ("site-A/line-1", spec, ASSAY.to_vec()),
        ("site-C/line-7", spec, vec![10.0]),
        ("site-A/line-3", spec, shifted),
        ("site-B/line-5", spec, ASSAY.to_vec()),
    ];
    let ranked = rank_groups(groups, RankBy::Cpk);
    let keys: Vec<&str> = ranked.iter().map(|g| g.key).collect();
    // The group without a capability first; the tie keeps input order.
    assert_eq!(
        keys,
        vec![
            "site-C/line-7",
            "site-A/line-3",
            "site-A/line-1",
            "site-B/line-5",
            "site-B/line-2"
        ]
    );
    assert_close(ranked[1].capability.unwrap().cpk, 0.598182, 1e-6);
    assert!(ranked[0].capability.is_none());
    assert!(ranked[0].error.as_deref().unwrap().contains("at least 2"));
    assert_close(ranked[4].capability.unwrap().cpk, 1.709091, 1e-6);
    let by_ppk = rank_groups(
        [
            ("a", spec, ASSAY.to_vec()),
            ("b", spec, vec![9.0, 11.4, 9.2, 11.3]),
        ],
        RankBy::Ppk,
    );
    assert_eq!(by_ppk[0].key, "b");
}
