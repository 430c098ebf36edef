//! Release testing of a finished batch: its critical quality attributes (CQAs) as known
//! functions of what the phases recorded, plus analytical noise of a known size — so a model
//! that predicts them from the process signals can be scored against both what the lab
//! "measured" and the best any model could do (the noise-free value).

use rand::rngs::SmallRng;

use super::{
    batch::{Batch, BatchRecord, Phase, Product},
    stochastic::{gauss, uniform},
};

/// Standard deviations of the lab's analytical noise per CQA: the floor under any
/// prediction error.
pub const ASSAY_NOISE: f64 = 0.5;
pub const DISSOLUTION_NOISE: f64 = 1.2;
pub const CONTENT_UNIFORMITY_NOISE: f64 = 0.3;
pub const IMPURITIES_NOISE: f64 = 0.01;

/// A QC lab needs hours after the end of a batch before its results are released.
const LAB_DELAY_H: (f64, f64) = (3.0, 6.0);

/// The critical quality attributes of one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cqas {
    /// Assay, % of label claim.
    pub assay: f64,
    /// Mean dissolution at 30 min, %.
    pub dissolution: f64,
    /// Content uniformity acceptance value (Ph. Eur. 2.9.40 / USP <905>).
    pub content_uniformity: f64,
    /// Total impurities, %.
    pub impurities: f64,
    /// Mean breaking force, N (in-process, measured on the press: no lab noise).
    pub hardness: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct BatchResult {
    pub(crate) id: String,
    pub(crate) measured: Cqas,
    /// The same functions without analytical noise: what a perfect model would predict.
    pub(crate) expected: Cqas,
    /// Packed tablets per theoretical tablets, %.
    pub(crate) yield_pct: f64,
    /// Simulated seconds: end of the batch and release of its lab results.
    pub(crate) ended_at: f64,
    pub(crate) published_at: f64,
}

/// Tests the finished batch; the result is published after the lab's delay.
pub(crate) fn release(batch: &Batch, now: f64, rng: &mut SmallRng) -> BatchResult {
    let potency_ratio = batch.potency_true / batch.potency_coa;
    let expected = evaluate(batch.product, &batch.record, potency_ratio, &mut |_| 0.0);
    let measured = evaluate(batch.product, &batch.record, potency_ratio, &mut |s| {
        gauss(rng, s)
    });
    BatchResult {
        id: batch.id.clone(),
        measured,
        expected,
        yield_pct: yield_pct(batch.product, &batch.record),
        ended_at: now,
        published_at: now + 3600.0 * uniform(rng, LAB_DELAY_H.0, LAB_DELAY_H.1),
    }
}

/// The result of the batch made before the simulation started, at nominal conditions.
pub(crate) fn previous(id: String, product: &Product, rng: &mut SmallRng) -> BatchResult {
    let mut record = BatchRecord::nominal(product, product.batch_kg());
    record.packed_tablets *= 0.985;
    let expected = evaluate(product, &record, 1.0, &mut |_| 0.0);
    let measured = evaluate(product, &record, 1.0, &mut |s| gauss(rng, s));
    BatchResult {
        id,
        measured,
        expected,
        yield_pct: yield_pct(product, &record),
        ended_at: 0.0,
        published_at: 0.0,
    }
}

fn yield_pct(p: &Product, r: &BatchRecord) -> f64 {
    let theoretical = p.theoretical_tablets(r.dispensed_kg);
    if theoretical > 0.0 {
        100.0 * r.packed_tablets / theoretical
    } else {
        0.0
    }
}

/// `noise(sigma)` draws the analytical error of one test (zero for the expected value).
fn evaluate(
    p: &Product,
    r: &BatchRecord,
    potency_ratio: f64,
    noise: &mut dyn FnMut(f64) -> f64,
) -> Cqas {
    // Heat-sensitive APIs lose a little in long, hot drying, and what they lose shows up as
    // degradation products.
    let inlet = r.drying_inlet_temp.value_or(60.0);
    let drying_h = r.drying_min / 60.0;
    let heat = (inlet - 60.0).max(0.0) * drying_h;
    let degradation = 0.0012 * heat;
    let target_lod = p.sp(Phase::Drying, "lod_endpoint_sp");
    let true_assay = 100.0 * r.api_ratio * potency_ratio * (1.0 - degradation);
    let assay = true_assay + noise(ASSAY_NOISE);

    // Content uniformity: blend non-uniformity and tablet weight variation add up; the lab
    // sees the assay it measured.
    let weight_rsd = r.weight_rsd.value_or(0.8);
    let s = (r.blend_rsd.powi(2) + weight_rsd.powi(2)).sqrt();
    let reference = true_assay.clamp(98.5, 101.5);
    let content_uniformity =
        ((reference - true_assay).abs() + 2.4 * s + noise(CONTENT_UNIFORMITY_NOISE)).max(0.0);

    // Dissolution slows with harder tablets, thicker coats, wetter granule, coarser granule.
    let hardness = r.hardness.value_or(p.hardness_n);
    let target_gain = p.sp(Phase::Coating, "target_weight_gain_sp");
    let dissolution = (p.dissolution_q30
        - 25.0 * (hardness / p.hardness_n - 1.0)
        - 3.0 * (r.weight_gain - target_gain)
        - 2.0 * (r.lod - target_lod).max(0.0)
        - 0.02 * (r.d50 - 300.0).max(0.0)
        + noise(DISSOLUTION_NOISE))
    .clamp(0.0, 102.0);

    // Hydrolysis in wet granule and oxidation in hot air make the impurities.
    let impurities = (0.08
        + 0.08 * degradation * 100.0
        + 0.03 * (r.lod - target_lod).max(0.0)
        + noise(IMPURITIES_NOISE))
    .max(0.0);

    Cqas {
        assay,
        dissolution,
        content_uniformity,
        impurities,
        hardness,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::batch::PRODUCTS;
    use rand::SeedableRng;

    #[test]
    fn harder_tablets_dissolve_slower() {
        let mut rng = SmallRng::seed_from_u64(11);
        let p = &PRODUCTS[0];
        let mean = |hardness: f64, rng: &mut SmallRng| {
            let mut r = BatchRecord::nominal(p, 600.0);
            r.hardness.add(hardness, 1.0);
            (0..200)
                .map(|_| evaluate(p, &r, 1.0, &mut |s| gauss(rng, s)).dissolution)
                .sum::<f64>()
                / 200.0
        };
        let soft = mean(p.hardness_n, &mut rng);
        let hard = mean(p.hardness_n * 1.3, &mut rng);
        assert!(soft - hard > 5.0, "{soft} vs {hard}");
    }

    #[test]
    fn lab_noise_has_its_declared_size() {
        let mut rng = SmallRng::seed_from_u64(3);
        let p = &PRODUCTS[1];
        let r = BatchRecord::nominal(p, 500.0);
        let expected = evaluate(p, &r, 1.0, &mut |_| 0.0);
        let n = 4000;
        let sd = |f: fn(&Cqas) -> f64, rng: &mut SmallRng| {
            let ss: f64 = (0..n)
                .map(|_| f(&evaluate(p, &r, 1.0, &mut |s| gauss(rng, s))) - f(&expected))
                .map(|d| d * d)
                .sum();
            (ss / n as f64).sqrt()
        };
        let assay = sd(|c| c.assay, &mut rng);
        let dissolution = sd(|c| c.dissolution, &mut rng);
        assert!((assay / ASSAY_NOISE - 1.0).abs() < 0.06, "{assay}");
        assert!(
            (dissolution / DISSOLUTION_NOISE - 1.0).abs() < 0.06,
            "{dissolution}"
        );
    }

    #[test]
    fn hot_long_drying_raises_impurities() {
        let p = &PRODUCTS[0];
        let mut cool = BatchRecord::nominal(p, 500.0);
        cool.drying_inlet_temp.add(60.0, 1.0);
        cool.drying_min = 60.0;
        let mut hot = cool.clone();
        hot.drying_inlet_temp.add(80.0, 1.0);
        hot.drying_min = 120.0;
        let a = evaluate(p, &cool, 1.0, &mut |_| 0.0);
        let b = evaluate(p, &hot, 1.0, &mut |_| 0.0);
        assert!(b.impurities > a.impurities + 0.05, "{a:?} {b:?}");
        assert!(b.assay < a.assay);
    }
}
