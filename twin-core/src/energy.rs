//! Energy and cost per batch: what a batch drew from the line's energy meters between its
//! start and its end, priced at the site's tariff, plus the material it consumed.
//!
//! A line runs one batch at a time (its phases follow each other through the units), so
//! every meter of the line counts towards the batch that runs; what the units draw idle
//! between batches belongs to no batch. The meters are totalisers: a batch's energy is the
//! sum of each meter's rises inside the window, so a meter that was reset or replaced
//! (its reading falls) adds nothing for the fall instead of a negative amount.

use chrono::{DateTime, Utc};
use model::Costs;
use serde::Serialize;

use crate::BatchRecord;

/// The signal every process unit's energy totaliser is served as.
pub const ENERGY_SIGNAL: &str = "energy_kwh";

/// One meter's readings (source time, kWh), oldest first.
#[derive(Debug, Clone, Default)]
pub struct MeterReadings {
    pub equipment: String,
    pub readings: Vec<(DateTime<Utc>, f64)>,
}

impl MeterReadings {
    /// kWh the meter counted between `from` and `to`: the reading at each end interpolated
    /// between its neighbours, the rises in between summed. `None` when the readings do not
    /// reach back to `from` (the meter's share is unknown, not zero). When they stop before
    /// `to` (a running batch, whose end is now) the last reading is the end so far.
    pub fn used_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
        let r = &self.readings;
        let first = r.first()?;
        if first.0 > from || to <= from {
            return None;
        }
        let start = interpolate(r, from)?;
        let end_at = to.min(r.last()?.0);
        let end = interpolate(r, end_at)?;
        let mut prev = start;
        let mut used = 0.0;
        for &(_, v) in r.iter().filter(|(t, _)| *t > from && *t < end_at) {
            used += (v - prev).max(0.0);
            prev = v;
        }
        Some(used + (end - prev).max(0.0))
    }
}

/// The reading at `t`, linear between the samples either side (`r` oldest first).
fn interpolate(r: &[(DateTime<Utc>, f64)], t: DateTime<Utc>) -> Option<f64> {
    let after = r.partition_point(|(x, _)| *x < t);
    match (after.checked_sub(1).map(|i| r[i]), r.get(after)) {
        (_, Some(&(x, v))) if x == t => Some(v),
        (Some((t0, v0)), Some(&(t1, v1))) => {
            let span = (t1 - t0).num_milliseconds() as f64;
            let part = (t - t0).num_milliseconds() as f64;
            Some(v0 + (v1 - v0) * part / span)
        }
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}

/// Energy and cost of one batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchCost {
    pub batch: String,
    pub site: String,
    pub line: String,
    pub product: Option<String>,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub size_kg: Option<f64>,
    /// kWh of the meters that cover the batch.
    pub kwh: f64,
    /// Meters counted, and those whose readings do not cover the batch (left out of `kwh`).
    pub meters: usize,
    pub meters_missing: Vec<String>,
    pub kwh_per_kg: Option<f64>,
    pub currency: String,
    pub energy_cost: f64,
    /// `size_kg` × the site's material price; `None` when the size is unknown.
    pub material_cost: Option<f64>,
    pub total_cost: f64,
}

/// What `record` cost: energy from `meters` (the line's) between its start and its end (or
/// `now` while it runs) at the site's tariff, and its material.
pub fn batch_cost(
    record: &BatchRecord,
    meters: &[MeterReadings],
    costs: &Costs,
    now: DateTime<Utc>,
) -> BatchCost {
    let end = record.end.unwrap_or(now);
    let mut kwh = 0.0;
    let mut counted = 0;
    let mut missing = Vec::new();
    for m in meters {
        match m.used_between(record.start, end) {
            Some(k) => {
                kwh += k;
                counted += 1;
            }
            None => missing.push(m.equipment.clone()),
        }
    }
    let energy_cost = kwh * costs.energy_per_kwh;
    let material_cost = record
        .size_kg
        .filter(|kg| kg.is_finite() && *kg > 0.0)
        .map(|kg| kg * costs.material_per_kg);
    BatchCost {
        batch: record.id.clone(),
        site: record.site.clone(),
        line: record.line.clone(),
        product: record.product.clone(),
        start: record.start,
        end: record.end,
        size_kg: record.size_kg,
        kwh,
        meters: counted,
        meters_missing: missing,
        kwh_per_kg: record.size_kg.filter(|kg| *kg > 0.0).map(|kg| kwh / kg),
        currency: costs.currency.clone(),
        energy_cost,
        material_cost,
        total_cost: energy_cost + material_cost.unwrap_or(0.0),
    }
}

/// Means over the completed batches whose every meter was read: what HQ compares plants on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostSummary {
    pub batches: usize,
    pub kwh_per_batch: Option<f64>,
    pub cost_per_batch: Option<f64>,
    pub currency: String,
}

pub fn summarise(list: &[BatchCost], currency: &str) -> CostSummary {
    let done: Vec<&BatchCost> = list
        .iter()
        .filter(|c| c.end.is_some() && c.meters > 0 && c.meters_missing.is_empty())
        .collect();
    let n = done.len();
    let mean = |f: fn(&BatchCost) -> f64| {
        (n > 0).then(|| done.iter().map(|c| f(c)).sum::<f64>() / n as f64)
    };
    CostSummary {
        batches: n,
        kwh_per_batch: mean(|c| c.kwh),
        cost_per_batch: mean(|c| c.total_cost),
        currency: currency.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn meter(id: &str, r: &[(i64, f64)]) -> MeterReadings {
        MeterReadings {
            equipment: id.into(),
            readings: r.iter().map(|&(s, v)| (t(s), v)).collect(),
        }
    }

    fn record(start: i64, end: Option<i64>, size_kg: Option<f64>) -> BatchRecord {
        BatchRecord {
            product: Some("Metformin".into()),
            size_kg,
            ..BatchRecord::bare("B1", "anhui", "line-1", t(start), end.map(t))
        }
    }

    #[test]
    fn energy_is_interpolated_at_the_ends_and_a_meter_reset_adds_nothing() {
        // Granulator: 100 kWh at 0 s, 110 at 100 s, 130 at 200 s. The batch runs 50 s to
        // 150 s: 105 (halfway to 110) … 120 (halfway to 130) = 15 kWh.
        let gran = meter("granulator-01", &[(0, 100.0), (100, 110.0), (200, 130.0)]);
        assert_eq!(gran.used_between(t(50), t(150)), Some(15.0));
        // Press: replaced at 100 s (reading falls to 2): 50→60 is 10, the fall 0, 2→12 is 10.
        let press = meter(
            "press-01",
            &[(0, 40.0), (50, 50.0), (90, 60.0), (100, 2.0), (150, 12.0)],
        );
        assert_eq!(press.used_between(t(50), t(150)), Some(20.0));
        // Readings that start after the batch did: unknown, not zero.
        assert_eq!(
            meter("dryer-01", &[(60, 1.0), (200, 9.0)]).used_between(t(50), t(150)),
            None
        );
    }

    #[test]
    fn cost_of_a_batch_is_its_energy_at_the_tariff_plus_its_material() {
        // Anhui's rates: 0.69 CNY/kWh, 142 CNY/kg.
        let costs = Costs {
            currency: "CNY".into(),
            energy_per_kwh: 0.69,
            labour_per_hour: 56.0,
            material_per_kg: 142.0,
        };
        let meters = [
            meter("granulator-01", &[(0, 100.0), (100, 110.0), (200, 130.0)]),
            meter("press-01", &[(0, 0.0), (200, 200.0)]),
            meter("coater-01", &[(120, 5.0)]),
        ];
        let c = batch_cost(
            &record(50, Some(150), Some(200.0)),
            &meters,
            &costs,
            t(1000),
        );
        // 15 kWh + 100 kWh (press: 50 → 150 on a straight 1 kWh/s), coater not covering.
        assert_eq!(c.kwh, 115.0);
        assert_eq!(
            (c.meters, c.meters_missing.clone()),
            (2, vec!["coater-01".to_string()])
        );
        assert!((c.energy_cost - 79.35).abs() < 1e-9, "115 × 0.69");
        assert_eq!(c.material_cost, Some(28_400.0), "200 kg × 142");
        assert!((c.total_cost - 28_479.35).abs() < 1e-9);
        assert_eq!(c.kwh_per_kg, Some(0.575));
        // Only completed batches with every meter read go into the means.
        let full = batch_cost(
            &record(50, Some(150), Some(200.0)),
            &meters[..2],
            &costs,
            t(1000),
        );
        let running = batch_cost(
            &record(100, None, Some(200.0)),
            &meters[..2],
            &costs,
            t(1000),
        );
        assert_eq!(
            running.kwh,
            20.0 + 100.0,
            "a running batch counts up to the last reading"
        );
        let s = summarise(&[c, full.clone(), running], "CNY");
        assert_eq!(s.batches, 1);
        assert_eq!(s.kwh_per_batch, Some(115.0));
        assert_eq!(s.cost_per_batch, Some(full.total_cost));
    }
}
