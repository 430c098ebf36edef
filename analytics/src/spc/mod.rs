//! Statistical process control (SPC) for critical process parameters (CPP) and
//! critical quality attributes (CQA).
//!
//! * [`ImrLimits`] (individuals and moving range) and [`SubgroupLimits`]
//!   (X̄-R or X̄-S, subgroups of 2..=10) estimate control limits from a phase I
//!   baseline and chart phase II data as a serializable [`ControlChart`].
//! * [`evaluate`] applies the Nelson rules ([`RuleSet::nelson`]) or the Western
//!   Electric rules ([`RuleSet::western_electric`]) to a whole series;
//!   [`RuleEngine`] does the same one point at a time, as values arrive, and
//!   reports exactly what [`evaluate`] reports for that point. The conventions
//!   for points on a zone boundary, ties and the start of a series are set out
//!   on [`Rule`].
//! * [`Capability`] gives Cp, Cpk (within-subgroup σ) and Pp, Ppk (overall σ)
//!   against two- or one-sided [`Spec`]s; [`rank_groups`] ranks groups (site,
//!   line, product…) worst-first for comparisons between plants.

mod capability;
mod chart;
mod rules;

pub use capability::{rank_groups, Capability, GroupCapability, RankBy, Spec};
pub use chart::{
    subgroup_constants, ChartKind, ChartPoint, ChartSeries, ControlChart, ImrLimits, Limits,
    SubgroupConstants, SubgroupLimits, MR_D2, MR_D4,
};
pub use rules::{evaluate, Rule, RuleEngine, RuleSet, Violation, Zones};

/// Errors of the SPC computations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpcError {
    /// Not enough data for the estimate.
    #[error("need at least {needed} {what}, got {got}")]
    TooFew {
        /// What is counted (values, subgroups).
        what: &'static str,
        /// Minimum required.
        needed: usize,
        /// Number given.
        got: usize,
    },
    /// A NaN or infinite value in a series.
    #[error("value {index} is not finite ({value})")]
    NonFinite {
        /// 0-based position in the series.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// A NaN or infinite value in a subgroup.
    #[error("subgroup {subgroup}, value {position} is not finite ({value})")]
    NonFiniteInSubgroup {
        /// 0-based subgroup index.
        subgroup: usize,
        /// 0-based position within the subgroup.
        position: usize,
        /// The offending value.
        value: f64,
    },
    /// A sigma estimate is zero, so limits or indices would be degenerate.
    #[error("{which} sigma is 0 ({why}): limits and capability indices are undefined")]
    ZeroSigma {
        /// `"within"` or `"overall"`.
        which: &'static str,
        /// Why it is zero, in the data's terms.
        why: &'static str,
    },
    /// A subgroup size outside the tabulated 2..=10.
    #[error("subgroup size {0} is outside 2..=10")]
    SubgroupSize(usize),
    /// Subgroups of different sizes.
    #[error("subgroup {index} has {got} values, expected {expected}")]
    RaggedSubgroup {
        /// 0-based subgroup index.
        index: usize,
        /// Its size.
        got: usize,
        /// The size of the first (or the baseline) subgroups.
        expected: usize,
    },
    /// An invalid specification.
    #[error("invalid specification: {0}")]
    Spec(String),
    /// An invalid rule number or rule parameter.
    #[error("invalid rule: {0}")]
    Rule(String),
    /// Zones with a non-finite center or a sigma that is not positive.
    #[error("invalid zones: center {center}, sigma {sigma} (need finite center and sigma > 0)")]
    Zones {
        /// Center line.
        center: f64,
        /// Sigma of the plotted statistic.
        sigma: f64,
    },
}

/// Checks a series for NaN / infinite values.
fn check_finite(values: &[f64]) -> Result<(), SpcError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(SpcError::NonFinite {
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Checks that subgroups are finite, of one size in 2..=10 (`expected` when
/// given), and returns that size.
fn check_subgroups<S: AsRef<[f64]>>(
    subgroups: &[S],
    expected: Option<usize>,
) -> Result<usize, SpcError> {
    let size = match (expected, subgroups.first()) {
        (Some(n), _) => n,
        (None, Some(first)) => first.as_ref().len(),
        (None, None) => return Ok(0),
    };
    if !(2..=10).contains(&size) {
        return Err(SpcError::SubgroupSize(size));
    }
    for (index, s) in subgroups.iter().enumerate() {
        let s = s.as_ref();
        if s.len() != size {
            return Err(SpcError::RaggedSubgroup {
                index,
                got: s.len(),
                expected: size,
            });
        }
        if let Some(position) = s.iter().position(|v| !v.is_finite()) {
            return Err(SpcError::NonFiniteInSubgroup {
                subgroup: index,
                position,
                value: s[position],
            });
        }
    }
    Ok(size)
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample standard deviation (n − 1); `values` has at least two elements.
fn sample_sd(values: &[f64]) -> f64 {
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (values.len() - 1) as f64).sqrt()
}

/// Mean of |x_i − x_{i−1}|; `values` has at least two elements.
fn mean_moving_range(values: &[f64]) -> f64 {
    let sum: f64 = values.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
    sum / (values.len() - 1) as f64
}

fn range(values: &[f64]) -> f64 {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    hi - lo
}

#[cfg(test)]
mod tests;
