//! Control limits from a phase I baseline, and control charts of phase II data.

use serde::{Deserialize, Serialize};

use super::rules::{evaluate, Rule, RuleEngine, RuleSet, Violation, Zones};
use super::{check_finite, check_subgroups, mean, mean_moving_range, range, sample_sd, SpcError};

/// d2 for moving ranges of two consecutive points: σ = MR̄ / d2.
pub const MR_D2: f64 = 1.128;
/// D4 for moving ranges of two: UCL(MR) = D4 · MR̄ (D3 = 0, so LCL(MR) = 0).
pub const MR_D4: f64 = 3.267;

/// Control chart constants for subgroups of size `n`, from the standard table
/// (ASTM STP 15D; Montgomery, *Introduction to Statistical Quality Control*,
/// appendix VI), to the three or four decimals everyone's hand calculations use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubgroupConstants {
    /// Subgroup size.
    pub n: usize,
    /// X̄ limits from R̄: X̿ ± A2·R̄.
    pub a2: f64,
    /// σ = R̄ / d2.
    pub d2: f64,
    /// LCL(R) = D3·R̄.
    pub d3: f64,
    /// UCL(R) = D4·R̄.
    pub d4: f64,
    /// X̄ limits from S̄: X̿ ± A3·S̄.
    pub a3: f64,
    /// σ = S̄ / c4.
    pub c4: f64,
    /// LCL(S) = B3·S̄.
    pub b3: f64,
    /// UCL(S) = B4·S̄.
    pub b4: f64,
}

/// `row(n, [a2, d2, d3, d4, a3, c4, b3, b4])`, in the table's column order.
const fn row(n: usize, c: [f64; 8]) -> SubgroupConstants {
    SubgroupConstants {
        n,
        a2: c[0],
        d2: c[1],
        d3: c[2],
        d4: c[3],
        a3: c[4],
        c4: c[5],
        b3: c[6],
        b4: c[7],
    }
}

const TABLE: [SubgroupConstants; 9] = [
    row(2, [1.880, 1.128, 0.0, 3.267, 2.659, 0.7979, 0.0, 3.267]),
    row(3, [1.023, 1.693, 0.0, 2.574, 1.954, 0.8862, 0.0, 2.568]),
    row(4, [0.729, 2.059, 0.0, 2.282, 1.628, 0.9213, 0.0, 2.266]),
    row(5, [0.577, 2.326, 0.0, 2.114, 1.427, 0.9400, 0.0, 2.089]),
    row(6, [0.483, 2.534, 0.0, 2.004, 1.287, 0.9515, 0.030, 1.970]),
    row(7, [0.419, 2.704, 0.076, 1.924, 1.182, 0.9594, 0.118, 1.882]),
    row(8, [0.373, 2.847, 0.136, 1.864, 1.099, 0.9650, 0.185, 1.815]),
    row(9, [0.337, 2.970, 0.184, 1.816, 1.032, 0.9693, 0.239, 1.761]),
    row(
        10,
        [0.308, 3.078, 0.223, 1.777, 0.975, 0.9727, 0.284, 1.716],
    ),
];

/// The constants for subgroup size `n` (2..=10).
pub fn subgroup_constants(n: usize) -> Result<SubgroupConstants, SpcError> {
    n.checked_sub(2)
        .and_then(|k| TABLE.get(k))
        .copied()
        .ok_or(SpcError::SubgroupSize(n))
}

/// Center line and control limits of one chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Center line.
    pub center: f64,
    /// Lower control limit.
    pub lcl: f64,
    /// Upper control limit.
    pub ucl: f64,
}

impl From<Zones> for Limits {
    fn from(z: Zones) -> Self {
        Self {
            center: z.center,
            lcl: z.lcl(),
            ucl: z.ucl(),
        }
    }
}

/// Kind of control chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// Individuals and moving range.
    Imr,
    /// Subgroup means and ranges.
    XbarR,
    /// Subgroup means and standard deviations.
    XbarS,
}

/// Phase I limits of an individuals and moving range (I-MR) chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImrLimits {
    /// Individuals chart: center x̄, σ = MR̄ / d2, limits x̄ ± 3σ.
    pub individuals: Zones,
    /// Moving range chart: center MR̄, LCL 0, UCL D4·MR̄.
    pub moving_range: Limits,
    /// Within (short-term) process σ, MR̄ / d2.
    pub sigma_within: f64,
    /// Number of baseline points.
    pub baseline_len: usize,
}

impl ImrLimits {
    /// Estimates the limits from a phase I baseline (at least two points, not
    /// all equal to their predecessor).
    pub fn fit(baseline: &[f64]) -> Result<Self, SpcError> {
        if baseline.len() < 2 {
            return Err(SpcError::TooFew {
                what: "baseline values",
                needed: 2,
                got: baseline.len(),
            });
        }
        check_finite(baseline)?;
        let mr_bar = mean_moving_range(baseline);
        if mr_bar == 0.0 {
            return Err(SpcError::ZeroSigma {
                which: "within",
                why: "every moving range of the baseline is 0",
            });
        }
        let sigma = mr_bar / MR_D2;
        Ok(Self {
            individuals: Zones::new(mean(baseline), sigma)?,
            moving_range: Limits {
                center: mr_bar,
                lcl: 0.0,
                ucl: MR_D4 * mr_bar,
            },
            sigma_within: sigma,
            baseline_len: baseline.len(),
        })
    }

    /// Charts `values` (phase II, or the baseline itself) against these limits.
    /// Moving ranges start at index 1: the first value has no predecessor here.
    pub fn chart(&self, values: &[f64], rules: RuleSet) -> Result<ControlChart, SpcError> {
        let location = location_series("I", &self.individuals, values, rules)?;
        let mr = values
            .windows(2)
            .enumerate()
            .map(|(i, w)| (i + 1, (w[1] - w[0]).abs()));
        Ok(ControlChart {
            kind: ChartKind::Imr,
            subgroup_size: 1,
            sigma_within: self.sigma_within,
            rules,
            location,
            dispersion: dispersion_series("MR", self.moving_range, mr),
        })
    }

    /// A [`RuleEngine`] on the individuals chart, for values as they arrive.
    pub fn rule_engine(&self, rules: RuleSet) -> RuleEngine {
        RuleEngine::new(self.individuals, rules)
    }
}

/// Phase I limits of an X̄-R or X̄-S chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SubgroupLimits {
    /// [`ChartKind::XbarS`] charts standard deviations; any other kind ranges.
    pub kind: ChartKind,
    /// Subgroup size n.
    pub subgroup_size: usize,
    /// X̄ chart: center X̿ and σ of a subgroup mean, A2·R̄/3 (or A3·S̄/3), so
    /// that the limits are X̿ ± A2·R̄ (X̿ ± A3·S̄).
    pub means: Zones,
    /// R chart (D3·R̄, R̄, D4·R̄) or S chart (B3·S̄, S̄, B4·S̄).
    pub dispersion: Limits,
    /// Within-subgroup process σ, R̄ / d2 (S̄ / c4).
    pub sigma_within: f64,
    /// Number of baseline subgroups.
    pub baseline_len: usize,
}

impl SubgroupLimits {
    /// X̄-R limits from baseline subgroups (at least two, all of one size in 2..=10).
    pub fn fit_r<S: AsRef<[f64]>>(baseline: &[S]) -> Result<Self, SpcError> {
        Self::fit(baseline, ChartKind::XbarR)
    }

    /// X̄-S limits from baseline subgroups (at least two, all of one size in 2..=10).
    pub fn fit_s<S: AsRef<[f64]>>(baseline: &[S]) -> Result<Self, SpcError> {
        Self::fit(baseline, ChartKind::XbarS)
    }

    fn fit<S: AsRef<[f64]>>(baseline: &[S], kind: ChartKind) -> Result<Self, SpcError> {
        if baseline.len() < 2 {
            return Err(SpcError::TooFew {
                what: "baseline subgroups",
                needed: 2,
                got: baseline.len(),
            });
        }
        let n = check_subgroups(baseline, None)?;
        let k = subgroup_constants(n)?;
        let means: Vec<f64> = baseline.iter().map(|s| mean(s.as_ref())).collect();
        let grand_mean = mean(&means);
        let by_s = kind == ChartKind::XbarS;
        let spreads: Vec<f64> = baseline
            .iter()
            .map(|s| dispersion(s.as_ref(), by_s))
            .collect();
        let bar = mean(&spreads);
        if bar == 0.0 {
            return Err(SpcError::ZeroSigma {
                which: "within",
                why: "every baseline subgroup has all values equal",
            });
        }
        let (a, sigma_within, lo, hi) = if by_s {
            (k.a3, bar / k.c4, k.b3, k.b4)
        } else {
            (k.a2, bar / k.d2, k.d3, k.d4)
        };
        Ok(Self {
            kind,
            subgroup_size: n,
            means: Zones::new(grand_mean, a * bar / 3.0)?,
            dispersion: Limits {
                center: bar,
                lcl: lo * bar,
                ucl: hi * bar,
            },
            sigma_within,
            baseline_len: baseline.len(),
        })
    }

    /// Charts `subgroups` (each of the baseline's size) against these limits.
    pub fn chart<S: AsRef<[f64]>>(
        &self,
        subgroups: &[S],
        rules: RuleSet,
    ) -> Result<ControlChart, SpcError> {
        check_subgroups(subgroups, Some(self.subgroup_size))?;
        let by_s = self.kind == ChartKind::XbarS;
        let means: Vec<f64> = subgroups.iter().map(|s| mean(s.as_ref())).collect();
        let location = location_series("Xbar", &self.means, &means, rules)?;
        let spreads = subgroups
            .iter()
            .enumerate()
            .map(|(i, s)| (i, dispersion(s.as_ref(), by_s)));
        let name = if by_s { "S" } else { "R" };
        Ok(ControlChart {
            kind: if by_s {
                ChartKind::XbarS
            } else {
                ChartKind::XbarR
            },
            subgroup_size: self.subgroup_size,
            sigma_within: self.sigma_within,
            rules,
            location,
            dispersion: dispersion_series(name, self.dispersion, spreads),
        })
    }

    /// A [`RuleEngine`] on the X̄ chart: push each new subgroup's mean.
    pub fn rule_engine(&self, rules: RuleSet) -> RuleEngine {
        RuleEngine::new(self.means, rules)
    }
}

fn dispersion(subgroup: &[f64], by_s: bool) -> f64 {
    if by_s {
        sample_sd(subgroup)
    } else {
        range(subgroup)
    }
}

/// One plotted point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartPoint {
    /// Index of the value (I-MR) or subgroup (X̄) in the charted data.
    pub index: usize,
    /// Plotted statistic.
    pub value: f64,
    /// Rules whose pattern this point completes (serialized as numbers).
    pub rules: Vec<Rule>,
}

/// One chart of a [`ControlChart`]: limits, points and violations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartSeries {
    /// Plotted statistic: `I`, `MR`, `Xbar`, `R` or `S`.
    pub statistic: String,
    /// Center line.
    pub center: f64,
    /// Lower control limit.
    pub lcl: f64,
    /// Upper control limit.
    pub ucl: f64,
    /// Zone width (σ of the statistic) on location charts; none on dispersion
    /// charts, whose limits are not symmetric.
    pub sigma: Option<f64>,
    /// The points, in order.
    pub points: Vec<ChartPoint>,
    /// Every violation, by index then rule, with the points involved.
    pub violations: Vec<Violation>,
}

/// A control chart for the web view: a location chart (I or X̄) tested with
/// the chosen rules, and a dispersion chart (MR, R or S) tested with rule 1
/// only — the zone rules assume a symmetric distribution, which ranges and
/// standard deviations do not have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlChart {
    /// Chart kind.
    pub kind: ChartKind,
    /// Subgroup size (1 for I-MR).
    pub subgroup_size: usize,
    /// Within-subgroup process σ of the phase I limits.
    pub sigma_within: f64,
    /// Rules applied to the location chart.
    pub rules: RuleSet,
    /// I or X̄ chart.
    pub location: ChartSeries,
    /// MR, R or S chart.
    pub dispersion: ChartSeries,
}

fn location_series(
    statistic: &str,
    zones: &Zones,
    values: &[f64],
    rules: RuleSet,
) -> Result<ChartSeries, SpcError> {
    let violations = evaluate(values, zones, rules)?;
    let mut points: Vec<ChartPoint> = values
        .iter()
        .enumerate()
        .map(|(index, &value)| ChartPoint {
            index,
            value,
            rules: Vec::new(),
        })
        .collect();
    for v in &violations {
        points[v.index()].rules.push(v.rule());
    }
    Ok(ChartSeries {
        statistic: statistic.to_string(),
        center: zones.center,
        lcl: zones.lcl(),
        ucl: zones.ucl(),
        sigma: Some(zones.sigma),
        points,
        violations,
    })
}

/// Rule 1 only, strict like on the location chart: on a limit is inside.
fn dispersion_series(
    statistic: &str,
    limits: Limits,
    values: impl Iterator<Item = (usize, f64)>,
) -> ChartSeries {
    let mut points = Vec::new();
    let mut violations = Vec::new();
    for (index, value) in values {
        let beyond = value > limits.ucl || value < limits.lcl;
        if beyond {
            violations.push(Violation::run(Rule::BeyondLimits, index, 1));
        }
        points.push(ChartPoint {
            index,
            value,
            rules: if beyond {
                vec![Rule::BeyondLimits]
            } else {
                Vec::new()
            },
        });
    }
    ChartSeries {
        statistic: statistic.to_string(),
        center: limits.center,
        lcl: limits.lcl,
        ucl: limits.ucl,
        sigma: None,
        points,
        violations,
    }
}
