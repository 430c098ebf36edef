//! Statistical process control over batch records: one value per batch (a lab CQA or a
//! process parameter's batch mean) charted in time order per site, line and product, and
//! capability compared across the plants — the continued-process-verification evidence QA
//! would otherwise assemble by hand.

use std::collections::BTreeMap;

use analytics::spc::{
    self, Capability, ControlChart, GroupCapability, ImrLimits, RankBy, RuleSet, Spec,
};
use chrono::{DateTime, Utc};
use model::Range;
use serde::Serialize;

use crate::BatchRecord;

/// Batches of the phase I baseline the limits are estimated from.
pub const BASELINE_BATCHES: usize = 25;
/// Fewer batches than this make no chart.
pub const MIN_BATCHES: usize = 8;

/// What is charted per batch: `lab:<cqa>` or `param:<equipment kind>.<signal>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Variable {
    Lab(String),
    Param(String),
}

impl std::str::FromStr for Variable {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some(("lab", v)) if !v.is_empty() => Ok(Variable::Lab(v.to_string())),
            Some(("param", v)) if !v.is_empty() => Ok(Variable::Param(v.to_string())),
            _ => Err(format!(
                "`{s}`: a variable is `lab:<cqa>` (e.g. lab:dissolution) or `param:<kind>.<signal>`"
            )),
        }
    }
}

impl Variable {
    fn value(&self, b: &BatchRecord) -> Option<f64> {
        match self {
            Variable::Lab(c) => b.lab.get(c).map(|v| v.value),
            Variable::Param(p) => b.params.get(p).map(|s| s.mean),
        }
    }

    fn spec(&self, b: &BatchRecord) -> Option<Range> {
        match self {
            Variable::Lab(c) => b.lab.get(c).and_then(|v| v.spec),
            Variable::Param(_) => None,
        }
    }
}

/// Which batches: every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    pub site: Option<&'a str>,
    pub line: Option<&'a str>,
    pub product: Option<&'a str>,
}

impl Scope<'_> {
    fn contains(&self, b: &BatchRecord) -> bool {
        self.site.is_none_or(|s| b.site == s)
            && self.line.is_none_or(|l| b.line == l)
            && self.product.is_none_or(|p| b.product.as_deref() == Some(p))
    }
}

/// A control chart of batch values with the batches behind its points.
#[derive(Debug, Clone, Serialize)]
pub struct BatchChart {
    pub variable: String,
    pub batches: Vec<String>,
    pub times: Vec<DateTime<Utc>>,
    pub chart: ControlChart,
    pub spec: Option<Range>,
    pub capability: Option<Capability>,
    /// Why capability is missing (no specification, no variation…).
    pub capability_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpcError {
    #[error("{0}")]
    BadVariable(String),
    #[error("{found} batches with `{variable}` in this scope; a chart needs {MIN_BATCHES}")]
    TooFewBatches { variable: String, found: usize },
    #[error("`{variable}`: {source}")]
    Chart {
        variable: String,
        source: spc::SpcError,
    },
}

fn to_spec(r: Range) -> Option<Spec> {
    let low = r.low.is_finite() && r.low > f64::MIN;
    let high = r.high.is_finite() && r.high < f64::MAX;
    match (low, high) {
        (true, true) => Spec::two_sided(r.low, r.high).ok(),
        (true, false) => Spec::lower(r.low).ok(),
        (false, true) => Spec::upper(r.high).ok(),
        (false, false) => None,
    }
}

/// I-MR chart (Nelson rules) of completed batches in scope, oldest first, limits from the
/// first [`BASELINE_BATCHES`].
pub fn chart<'a>(
    batches: impl IntoIterator<Item = &'a BatchRecord>,
    scope: &Scope<'_>,
    variable: &Variable,
    name: &str,
) -> Result<BatchChart, SpcError> {
    let mut points: Vec<(&BatchRecord, f64)> = batches
        .into_iter()
        .filter(|b| b.end.is_some() && scope.contains(b))
        .filter_map(|b| variable.value(b).filter(|x| x.is_finite()).map(|x| (b, x)))
        .collect();
    points.sort_by_key(|(b, _)| b.end);
    if points.len() < MIN_BATCHES {
        return Err(SpcError::TooFewBatches {
            variable: name.to_string(),
            found: points.len(),
        });
    }
    let values: Vec<f64> = points.iter().map(|(_, x)| *x).collect();
    let err = |source| SpcError::Chart {
        variable: name.to_string(),
        source,
    };
    let limits = ImrLimits::fit(&values[..values.len().min(BASELINE_BATCHES)]).map_err(err)?;
    let chart = limits.chart(&values, RuleSet::nelson()).map_err(err)?;
    let spec = points.iter().rev().find_map(|(b, _)| variable.spec(b));
    let (capability, capability_error) = match spec.and_then(to_spec) {
        Some(s) => match Capability::individuals(&values, s) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.to_string())),
        },
        None => (None, Some("no specification limits".to_string())),
    };
    Ok(BatchChart {
        variable: name.to_string(),
        batches: points.iter().map(|(b, _)| b.id.clone()).collect(),
        times: points.iter().filter_map(|(b, _)| b.end).collect(),
        chart,
        spec,
        capability,
        capability_error,
    })
}

/// Site and product a capability group stands for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    pub site: String,
    pub product: String,
}

/// Ppk of a lab CQA per site and product, worst first: the comparison across the plants.
pub fn capability_by_site<'a>(
    batches: impl IntoIterator<Item = &'a BatchRecord>,
    cqa: &str,
) -> Vec<GroupCapability<GroupKey>> {
    /// The spec of a group and its values by batch end.
    type Group = (Option<Range>, Vec<(DateTime<Utc>, f64)>);
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for b in batches {
        let (Some(v), Some(end)) = (b.lab.get(cqa), b.end) else {
            continue;
        };
        let key = GroupKey {
            site: b.site.clone(),
            product: b.product.clone().unwrap_or_default(),
        };
        let g = groups.entry(key).or_default();
        g.0 = g.0.or(v.spec);
        g.1.push((end, v.value));
    }
    let input = groups.into_iter().filter_map(|(k, (spec, mut values))| {
        values.sort_by_key(|(t, _)| *t);
        let spec = spec.and_then(to_spec)?;
        Some((
            k,
            spec,
            values.into_iter().map(|(_, x)| x).collect::<Vec<_>>(),
        ))
    });
    spc::rank_groups(input, RankBy::Ppk)
}

impl crate::Twin {
    fn completed_batches(&self, site: Option<&str>) -> Vec<BatchRecord> {
        self.with_batches(site, |r| r.completed().cloned().collect::<Vec<_>>())
            .into_iter()
            .flatten()
            .collect()
    }

    /// I-MR chart of one variable over the completed batches in scope.
    pub fn spc_chart(&self, scope: &Scope<'_>, variable: &str) -> Result<BatchChart, SpcError> {
        let v: Variable = variable.parse().map_err(SpcError::BadVariable)?;
        chart(&self.completed_batches(scope.site), scope, &v, variable)
    }

    /// Ppk of a CQA per site and product, worst first.
    pub fn capability_by_site(&self, cqa: &str) -> Vec<GroupCapability<GroupKey>> {
        capability_by_site(&self.completed_batches(None), cqa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchRecord, LabValue};
    use chrono::TimeZone;

    fn batch(i: i64, site: &str, dissolution: f64) -> BatchRecord {
        let t =
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(12 * i);
        BatchRecord {
            product: Some("P".into()),
            lab: [(
                "dissolution".to_string(),
                LabValue {
                    value: dissolution,
                    spec: Some(Range {
                        low: 80.0,
                        high: 110.0,
                    }),
                    published: t + chrono::Duration::hours(15),
                },
            )]
            .into(),
            ..BatchRecord::bare(
                &format!("{site}-{i}"),
                site,
                "line-1",
                t,
                Some(t + chrono::Duration::hours(10)),
            )
        }
    }

    #[test]
    fn a_batch_far_off_the_baseline_breaks_rule_1_and_capability_uses_the_lab_spec() {
        // Baseline = first 25: thirteen 94s and twelve 96s, mean 2374 / 25 = 94.96;
        // MR̄ = 2, σ = 2 / 1.128 = 1.773, UCL = 94.96 + 5.319 = 100.28.
        let mut batches: Vec<BatchRecord> = (0..30)
            .map(|i| batch(i, "anhui", if i % 2 == 0 { 94.0 } else { 96.0 }))
            .collect();
        batches.push(batch(30, "anhui", 104.0));
        let v: Variable = "lab:dissolution".parse().unwrap();
        let c = chart(&batches, &Scope::default(), &v, "lab:dissolution").unwrap();
        assert_eq!(c.batches.len(), 31);
        assert!((c.chart.location.ucl - (94.96 + 3.0 * 2.0 / 1.128)).abs() < 1e-6);
        let flagged: Vec<usize> = c
            .chart
            .location
            .violations
            .iter()
            .filter(|v| v.rule() == spc::Rule::BeyondLimits)
            .map(|v| v.index())
            .collect();
        assert_eq!(flagged, vec![30], "{:?}", c.chart.location.violations);
        let cap = c.capability.expect("lab spec gives capability");
        assert_eq!(cap.lsl, Some(80.0));
        assert!(cap.ppk > 1.0, "{cap:?}");
        // Too few in another scope: a clear refusal, not an empty chart.
        let other = Scope {
            site: Some("shenzhen"),
            ..Scope::default()
        };
        assert!(matches!(
            chart(&batches, &other, &v, "lab:dissolution"),
            Err(SpcError::TooFewBatches { found: 0, .. })
        ));
        assert!("dissolution".parse::<Variable>().is_err());
    }

    #[test]
    fn sites_are_ranked_worst_capability_first() {
        let mut batches = Vec::new();
        for i in 0..20 {
            batches.push(batch(i, "anhui", 95.0 + (i % 3) as f64));
            batches.push(batch(i, "sichuan", 84.0 + (i % 3) as f64 * 2.0));
        }
        let ranked = capability_by_site(&batches, "dissolution");
        assert_eq!(ranked[0].key.site, "sichuan");
        assert_eq!(ranked[1].key.site, "anhui");
    }
}
