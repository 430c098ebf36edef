//! Condition-based prognostics of a wearing part: a degradation estimate (0 new .. 1 failed)
//! from windowed features of the signals that show the part's wear, its trend, and from
//! them the remaining useful life with an interval and the probability of failure within a
//! planning horizon.
//!
//! The estimator is learnt from run-to-failure histories: every training window is labelled
//! with the fraction of the part's life consumed at that moment, which a part run to failure
//! makes known afterwards. The trend is a least-squares line through the recent estimates,
//! shrunk towards the wear rate seen across the training fleet, so a part with little
//! history still gets a sensible projection.

use serde::Serialize;
use thiserror::Error;

use crate::{
    gbm::{Gbm, GbmError, GbmParams},
    mspc::distributions::normal_cdf,
    quality::fingerprint,
};

/// Version of the recipe, recorded with every prediction.
pub const DEGRADATION_VERSION: &str = concat!("degradation-gbm/", env!("CARGO_PKG_VERSION"));

/// Fewest labelled windows a part model is trained on.
pub const MIN_TRAINING_WINDOWS: usize = 50;

/// Estimates below this carry almost no information about the trend (the signals of a
/// lightly worn part sit in their healthy spread), so the trend is fitted on the rest.
const TREND_FLOOR: f64 = 0.25;

#[derive(Debug, Error)]
pub enum MaintenanceError {
    #[error("{kind}/{part}: {windows} labelled windows, at least {MIN_TRAINING_WINDOWS} needed")]
    TooFewWindows {
        kind: String,
        part: String,
        windows: usize,
    },
    #[error("{kind}/{part}: {source}")]
    Learner {
        kind: String,
        part: String,
        source: GbmError,
    },
}

/// One window of a unit's signals, labelled with the part's consumed life.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledWindow {
    /// The unit (for the wear rates of the fleet: one series per unit and part).
    pub unit: String,
    /// End of the window, hours on any fixed time axis.
    pub hours: f64,
    /// Mean of each of the part's signals over the window (`NaN` = not seen).
    pub features: Vec<f64>,
    /// Consumed life, 0 new .. 1 failed.
    pub wear: f64,
}

fn learner() -> GbmParams {
    GbmParams {
        n_trees: 120,
        learning_rate: 0.08,
        max_depth: 4,
        min_samples_leaf: 15,
        subsample: 0.8,
        colsample: 1.0,
        lambda: 1.0,
        max_bins: 64,
        seed: 11,
    }
}

/// The degradation model of one part of one kind of equipment.
#[derive(Debug, Clone, Serialize)]
pub struct PartModel {
    pub kind: String,
    pub part: String,
    /// Signal ids, in feature order.
    pub signals: Vec<String>,
    pub version: String,
    pub fingerprint: String,
    pub windows: usize,
    /// Spread of the estimate around the truth on worn parts (consumed life ≥ 0.5),
    /// out of sample.
    pub error_sd: f64,
    /// Mean and standard deviation of each signal on healthy parts (consumed life < 0.3).
    pub healthy: Vec<(f64, f64)>,
    /// Share of the learner's split gain per signal.
    pub weight: Vec<f64>,
    /// Wear rate per hour across the training fleet: mean and standard deviation.
    pub fleet_rate: (f64, f64),
    #[serde(skip)]
    gbm: Option<Gbm>,
}

impl PartModel {
    /// Trains on labelled windows of every unit of the kind.
    pub fn train(
        kind: &str,
        part: &str,
        signals: &[String],
        windows: &[LabelledWindow],
    ) -> Result<PartModel, MaintenanceError> {
        let err = |source| MaintenanceError::Learner {
            kind: kind.to_string(),
            part: part.to_string(),
            source,
        };
        if windows.len() < MIN_TRAINING_WINDOWS {
            return Err(MaintenanceError::TooFewWindows {
                kind: kind.into(),
                part: part.into(),
                windows: windows.len(),
            });
        }
        let p = signals.len();
        let rows: Vec<Vec<f64>> = windows.iter().map(|w| w.features.clone()).collect();
        let y: Vec<f64> = windows.iter().map(|w| w.wear).collect();
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();

        // Out-of-sample error: fit on the units of one half, score the other, both ways.
        let mut units: Vec<&str> = windows.iter().map(|w| w.unit.as_str()).collect();
        units.sort_unstable();
        units.dedup();
        let mut sq = (0.0, 0usize);
        if units.len() >= 4 {
            for half in 0..2 {
                let held = |u: &str| units.iter().position(|x| *x == u).unwrap_or(0) % 2 == half;
                let (mut x, mut t) = (Vec::new(), Vec::new());
                for w in windows.iter().filter(|w| !held(&w.unit)) {
                    x.extend_from_slice(&w.features);
                    t.push(w.wear);
                }
                if t.len() < MIN_TRAINING_WINDOWS {
                    continue;
                }
                let g = Gbm::fit(&x, p, &t, &learner()).map_err(err)?;
                for w in windows.iter().filter(|w| held(&w.unit) && w.wear >= 0.5) {
                    sq.0 += (g.predict(&w.features) - w.wear).powi(2);
                    sq.1 += 1;
                }
            }
        }
        let gbm = Gbm::fit(&flat, p, &y, &learner()).map_err(err)?;
        let error_sd = if sq.1 > 0 {
            (sq.0 / sq.1 as f64).sqrt()
        } else {
            0.1
        };
        let healthy = (0..p)
            .map(|j| {
                let v: Vec<f64> = windows
                    .iter()
                    .filter(|w| w.wear < 0.3)
                    .map(|w| w.features[j])
                    .filter(|v| v.is_finite())
                    .collect();
                mean_sd(&v)
            })
            .collect();
        let total: f64 = gbm.feature_gain().iter().sum();
        let weight = gbm
            .feature_gain()
            .iter()
            .map(|g| if total > 0.0 { g / total } else { 0.0 })
            .collect();
        Ok(PartModel {
            kind: kind.into(),
            part: part.into(),
            signals: signals.to_vec(),
            version: DEGRADATION_VERSION.into(),
            fingerprint: fingerprint(signals, &rows, &y),
            windows: windows.len(),
            error_sd: error_sd.max(0.02),
            healthy,
            weight,
            fleet_rate: fleet_rate(windows),
            gbm: Some(gbm),
        })
    }

    /// Consumed life estimated from one window's signal means (`NaN` = not seen).
    pub fn estimate(&self, features: &[f64]) -> f64 {
        self.gbm
            .as_ref()
            .map_or(f64::NAN, |g| g.predict(features).clamp(0.0, 1.2))
    }

    /// How far each signal stands from its healthy level, weighted by how much the
    /// estimate relies on it; strongest first. Returns (signal index, z, weight).
    pub fn drivers(&self, features: &[f64]) -> Vec<(usize, f64, f64)> {
        let mut d: Vec<(usize, f64, f64)> = features
            .iter()
            .zip(&self.healthy)
            .zip(&self.weight)
            .enumerate()
            .filter(|(_, ((v, _), _))| v.is_finite())
            .map(|(j, ((v, (m, s)), w))| (j, (v - m) / s.max(1e-9), *w))
            .collect();
        d.sort_by(|a, b| (b.1.abs() * b.2).total_cmp(&(a.1.abs() * a.2)));
        d
    }
}

/// Wear per hour of every unit's rising stretches in the training data.
fn fleet_rate(windows: &[LabelledWindow]) -> (f64, f64) {
    let mut by_unit: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    for w in windows {
        by_unit.entry(&w.unit).or_default().push((w.hours, w.wear));
    }
    let mut rates = Vec::new();
    for series in by_unit.values_mut() {
        series.sort_by(|a, b| a.0.total_cmp(&b.0));
        // A renewal cuts a series into the lives of successive parts.
        let mut start = 0;
        for i in 1..=series.len() {
            if i == series.len() || series[i].1 < series[i - 1].1 - 0.05 {
                let (a, b) = (series[start], series[i - 1]);
                if b.0 - a.0 >= 48.0 && b.1 > a.1 {
                    rates.push((b.1 - a.1) / (b.0 - a.0));
                }
                start = i;
            }
        }
    }
    let (m, s) = mean_sd(&rates);
    if m.is_finite() && m > 0.0 {
        (m, if s.is_finite() { s } else { m })
    } else {
        (1e-3, 1e-3)
    }
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// Where a part stands and where it is heading.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Projection {
    /// Consumed life now, 0 .. 1.
    pub wear: f64,
    /// Health index: 1 − consumed life, clamped to 0 .. 1.
    pub health: f64,
    /// Wear per hour.
    pub rate_per_h: f64,
    /// Remaining useful life in hours, with a 90 % interval.
    pub rul_h: f64,
    pub rul_low_h: f64,
    pub rul_high_h: f64,
    /// Probability of failure within the horizon.
    pub p_fail: f64,
    pub horizon_h: f64,
}

/// Projects a part's recent estimates `(hours, estimate)` (time order, since its last
/// renewal) to failure at consumed life 1.
pub fn project(model: &PartModel, points: &[(f64, f64)], horizon_h: f64) -> Option<Projection> {
    let &(now, _) = points.last()?;
    let trend: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(_, e)| e.is_finite() && *e >= TREND_FLOOR)
        .collect();
    let recent: Vec<f64> = points
        .iter()
        .rev()
        .take(6)
        .map(|p| p.1)
        .filter(|e| e.is_finite())
        .collect();
    if recent.is_empty() {
        return None;
    }
    let (prior, prior_sd) = model.fleet_rate;
    let prior_sd = prior_sd.max(0.25 * prior);
    let (level, level_sd, rate, rate_sd) = match fit_line(&trend) {
        Some(f) if trend.len() >= 12 => {
            // Precision-weighted: a short or noisy history leans on the fleet.
            let (w1, w0) = (1.0 / f.slope_se.powi(2), 1.0 / prior_sd.powi(2));
            let rate = (f.slope * w1 + prior * w0) / (w1 + w0);
            let rate_sd = (1.0 / (w1 + w0)).sqrt();
            let level = f.at(now);
            let level_sd = (f.resid_sd.powi(2) / trend.len().min(24) as f64
                + (model.error_sd * 0.5).powi(2))
            .sqrt();
            (level, level_sd, rate.max(0.0), rate_sd)
        }
        _ => {
            let level = recent.iter().sum::<f64>() / recent.len() as f64;
            (level, model.error_sd, prior, prior_sd)
        }
    };
    let left = (1.0 - level).max(0.0);
    let z = 1.645;
    let rul = |wear: f64, rate: f64| {
        if rate <= 0.0 {
            f64::INFINITY
        } else {
            (1.0 - wear).max(0.0) / rate
        }
    };
    let sd = (level_sd.powi(2) + (rate_sd * horizon_h).powi(2)).sqrt();
    let p_fail = normal_cdf((level + rate * horizon_h - 1.0) / sd.max(1e-9));
    Some(Projection {
        wear: level,
        health: left.min(1.0),
        rate_per_h: rate,
        rul_h: rul(level, rate),
        rul_low_h: rul(level + z * level_sd, rate + z * rate_sd),
        rul_high_h: rul(level - z * level_sd, (rate - z * rate_sd).max(0.0)),
        p_fail,
        horizon_h,
    })
}

struct Line {
    intercept: f64,
    slope: f64,
    slope_se: f64,
    resid_sd: f64,
    x0: f64,
}

impl Line {
    fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * (x - self.x0)
    }
}

fn fit_line(points: &[(f64, f64)]) -> Option<Line> {
    let n = points.len();
    if n < 3 {
        return None;
    }
    let x0 = points.iter().map(|p| p.0).sum::<f64>() / n as f64;
    let y0 = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let sxx: f64 = points.iter().map(|p| (p.0 - x0).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - x0) * (p.1 - y0)).sum();
    let slope = sxy / sxx;
    let sse: f64 = points
        .iter()
        .map(|p| (p.1 - y0 - slope * (p.0 - x0)).powi(2))
        .sum();
    let resid_sd = (sse / (n - 2) as f64).sqrt();
    Some(Line {
        intercept: y0,
        slope,
        slope_se: (resid_sd / sxx.sqrt()).max(1e-9),
        resid_sd,
        x0,
    })
}

#[cfg(test)]
mod tests;
