//! Process capability (Cp, Cpk) and performance (Pp, Ppk) indices.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::chart::{subgroup_constants, MR_D2};
use super::{check_finite, check_subgroups, mean, mean_moving_range, range, sample_sd, SpcError};

/// Specification limits: both, or only one for one-sided characteristics
/// (an impurity has only an upper limit, a dissolution only a lower one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Lower specification limit.
    pub lsl: Option<f64>,
    /// Upper specification limit.
    pub usl: Option<f64>,
}

impl Spec {
    /// Both limits, `lsl < usl`.
    pub fn two_sided(lsl: f64, usl: f64) -> Result<Self, SpcError> {
        Self {
            lsl: Some(lsl),
            usl: Some(usl),
        }
        .validated()
    }

    /// Only a lower limit.
    pub fn lower(lsl: f64) -> Result<Self, SpcError> {
        Self {
            lsl: Some(lsl),
            usl: None,
        }
        .validated()
    }

    /// Only an upper limit.
    pub fn upper(usl: f64) -> Result<Self, SpcError> {
        Self {
            lsl: None,
            usl: Some(usl),
        }
        .validated()
    }

    /// Checks that there is at least one limit, limits are finite and
    /// `lsl < usl`; done again by every computation since the fields are public.
    pub fn validated(self) -> Result<Self, SpcError> {
        let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
        if !finite(self.lsl) || !finite(self.usl) {
            return Err(SpcError::Spec(format!(
                "limits must be finite (lsl {:?}, usl {:?})",
                self.lsl, self.usl
            )));
        }
        match (self.lsl, self.usl) {
            (None, None) => Err(SpcError::Spec("no limit given".into())),
            (Some(l), Some(u)) if l >= u => Err(SpcError::Spec(format!(
                "lower limit {l} is not below upper limit {u}"
            ))),
            _ => Ok(self),
        }
    }

    /// (Cp-like, Cpk-like) for a process of `mean` and `sigma`: the two-sided
    /// ratio only with both limits, the one-sided minimum with either.
    fn indices(&self, mean: f64, sigma: f64) -> (Option<f64>, f64) {
        let cpu = self.usl.map(|u| (u - mean) / (3.0 * sigma));
        let cpl = self.lsl.map(|l| (mean - l) / (3.0 * sigma));
        let cp = self.lsl.zip(self.usl).map(|(l, u)| (u - l) / (6.0 * sigma));
        // validated() guarantees at least one side.
        let cpk = match (cpl, cpu) {
            (Some(l), Some(u)) => l.min(u),
            (Some(one), None) | (None, Some(one)) => one,
            (None, None) => f64::NAN,
        };
        (cp, cpk)
    }
}

/// Capability of one characteristic against its [`Spec`].
///
/// Cp, Cpk use the within (short-term) σ — MR̄/d2 for individual values, R̄/d2
/// for subgroups — and say what the process could do; Pp, Ppk use the overall
/// sample σ (n − 1) and say what it did. Cp and Pp need both limits; Cpk and
/// Ppk are the distance to the nearer given limit in units of 3σ.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Capability {
    /// Number of values.
    pub n: usize,
    /// Mean of all values.
    pub mean: f64,
    /// Within-subgroup σ.
    pub sigma_within: f64,
    /// Overall sample σ (n − 1).
    pub sigma_overall: f64,
    /// Lower specification limit used.
    pub lsl: Option<f64>,
    /// Upper specification limit used.
    pub usl: Option<f64>,
    /// (USL − LSL) / 6σ_within; none for a one-sided spec.
    pub cp: Option<f64>,
    /// min(USL − mean, mean − LSL) / 3σ_within over the given limits.
    pub cpk: f64,
    /// (USL − LSL) / 6σ_overall; none for a one-sided spec.
    pub pp: Option<f64>,
    /// min(USL − mean, mean − LSL) / 3σ_overall over the given limits.
    pub ppk: f64,
}

impl Capability {
    /// Capability of individual values in time order: σ_within = MR̄ / 1.128.
    pub fn individuals(values: &[f64], spec: Spec) -> Result<Self, SpcError> {
        let spec = spec.validated()?;
        at_least_two(values.len(), "values")?;
        check_finite(values)?;
        let mr_bar = mean_moving_range(values);
        if mr_bar == 0.0 {
            return Err(SpcError::ZeroSigma {
                which: "within",
                why: "every moving range is 0",
            });
        }
        Self::compute(values, mr_bar / MR_D2, spec)
    }

    /// Capability of subgroups (all of one size in 2..=10): σ_within = R̄ / d2.
    pub fn subgroups<S: AsRef<[f64]>>(subgroups: &[S], spec: Spec) -> Result<Self, SpcError> {
        let spec = spec.validated()?;
        at_least_two(subgroups.len(), "subgroups")?;
        let n = check_subgroups(subgroups, None)?;
        let d2 = subgroup_constants(n)?.d2;
        let r_bar =
            subgroups.iter().map(|s| range(s.as_ref())).sum::<f64>() / subgroups.len() as f64;
        if r_bar == 0.0 {
            return Err(SpcError::ZeroSigma {
                which: "within",
                why: "every subgroup has all values equal",
            });
        }
        let all: Vec<f64> = subgroups
            .iter()
            .flat_map(|s| s.as_ref().iter().copied())
            .collect();
        Self::compute(&all, r_bar / d2, spec)
    }

    /// Capability with a within σ known from elsewhere, typically the frozen
    /// phase I limits ([`super::ImrLimits::sigma_within`]).
    pub fn with_sigma_within(
        values: &[f64],
        sigma_within: f64,
        spec: Spec,
    ) -> Result<Self, SpcError> {
        let spec = spec.validated()?;
        at_least_two(values.len(), "values")?;
        check_finite(values)?;
        if !(sigma_within.is_finite() && sigma_within > 0.0) {
            return Err(SpcError::ZeroSigma {
                which: "within",
                why: "the given within sigma is not a positive number",
            });
        }
        Self::compute(values, sigma_within, spec)
    }

    fn compute(values: &[f64], sigma_within: f64, spec: Spec) -> Result<Self, SpcError> {
        let sigma_overall = sample_sd(values);
        if sigma_overall == 0.0 {
            return Err(SpcError::ZeroSigma {
                which: "overall",
                why: "all values are equal",
            });
        }
        let m = mean(values);
        let (cp, cpk) = spec.indices(m, sigma_within);
        let (pp, ppk) = spec.indices(m, sigma_overall);
        Ok(Self {
            n: values.len(),
            mean: m,
            sigma_within,
            sigma_overall,
            lsl: spec.lsl,
            usl: spec.usl,
            cp,
            cpk,
            pp,
            ppk,
        })
    }
}

fn at_least_two(got: usize, what: &'static str) -> Result<(), SpcError> {
    if got < 2 {
        return Err(SpcError::TooFew {
            what,
            needed: 2,
            got,
        });
    }
    Ok(())
}

/// Index [`rank_groups`] sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    /// Short-term capability: what each group could do.
    Cpk,
    /// Long-term performance: what each group did (drift and shifts included),
    /// the fairer comparison between sites.
    Ppk,
}

/// Capability of one group (site, line, product…) in a [`rank_groups`] ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCapability<K> {
    /// The group's key.
    pub key: K,
    /// Its capability, when it could be computed.
    pub capability: Option<Capability>,
    /// Why it could not (too few values, no variation, bad spec…).
    pub error: Option<String>,
}

/// Capability of each `(key, spec, values)` group, worst first.
///
/// Values are individuals in time order (σ_within = MR̄/d2). Groups whose
/// capability cannot be computed come first, in input order: a series with no
/// data or no variation at all is usually a stuck or missing sensor and needs
/// a look before any index does. The others follow by ascending `by` index,
/// ties in input order.
pub fn rank_groups<K, V, I>(groups: I, by: RankBy) -> Vec<GroupCapability<K>>
where
    I: IntoIterator<Item = (K, Spec, V)>,
    V: AsRef<[f64]>,
{
    let mut out: Vec<GroupCapability<K>> = groups
        .into_iter()
        .map(
            |(key, spec, values)| match Capability::individuals(values.as_ref(), spec) {
                Ok(c) => GroupCapability {
                    key,
                    capability: Some(c),
                    error: None,
                },
                Err(e) => GroupCapability {
                    key,
                    capability: None,
                    error: Some(e.to_string()),
                },
            },
        )
        .collect();
    let index = |g: &GroupCapability<K>| {
        g.capability.map(|c| match by {
            RankBy::Cpk => c.cpk,
            RankBy::Ppk => c.ppk,
        })
    };
    out.sort_by(|a, b| match (index(a), index(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.total_cmp(&y),
    });
    out
}
