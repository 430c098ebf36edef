//! Release testing of a finished batch: its critical quality attributes (CQAs) as known
//! functions of what the phases recorded, plus analytical noise — so a model that predicts
//! them from the process signals can be scored against what the lab "measured".

use rand::rngs::SmallRng;

use super::{
    batch::{Batch, BatchRecord, Phase, Product},
    stochastic::gauss,
};

#[derive(Debug, Clone)]
pub(crate) struct BatchResult {
    pub(crate) id: String,
    /// Assay, % of label claim.
    pub(crate) assay: f64,
    /// Mean dissolution at 30 min, %.
    pub(crate) dissolution: f64,
    /// Content uniformity acceptance value (Ph. Eur. 2.9.40 / USP <905>).
    pub(crate) content_uniformity: f64,
    /// Mean breaking force, N.
    pub(crate) hardness: f64,
    /// Packed tablets per theoretical tablets, %.
    pub(crate) yield_pct: f64,
}

pub(crate) fn release(batch: &Batch, rng: &mut SmallRng) -> BatchResult {
    evaluate(
        batch.id.clone(),
        batch.product,
        &batch.record,
        batch.potency_true / batch.potency_coa,
        rng,
    )
}

/// The result of the batch made before the simulation started, at nominal conditions.
pub(crate) fn previous(id: String, product: &Product, rng: &mut SmallRng) -> BatchResult {
    let mut record = BatchRecord::nominal(product, product.batch_kg());
    record.packed_tablets *= 0.985;
    evaluate(id, product, &record, 1.0, rng)
}

fn evaluate(
    id: String,
    p: &Product,
    r: &BatchRecord,
    potency_ratio: f64,
    rng: &mut SmallRng,
) -> BatchResult {
    // Heat-sensitive APIs lose a little in long, hot drying.
    let inlet = r.drying_inlet_temp.value_or(60.0);
    let degradation = 0.002 * (inlet - 60.0).max(0.0) * r.drying_min / 60.0;
    let assay = 100.0 * r.api_ratio * potency_ratio * (1.0 - degradation) + gauss(rng, 0.5);

    // Content uniformity: blend non-uniformity and tablet weight variation add up.
    let weight_rsd = r.weight_rsd.value_or(0.8);
    let s = (r.blend_rsd.powi(2) + weight_rsd.powi(2)).sqrt() * (1.0 + gauss(rng, 0.08));
    let reference = assay.clamp(98.5, 101.5);
    let content_uniformity = (reference - assay).abs() + 2.4 * s.abs();

    // Dissolution slows with harder tablets, thicker coats, wetter granule, coarser granule.
    let hardness = r.hardness.value_or(p.hardness_n);
    let target_gain = p.sp(Phase::Coating, "target_weight_gain_sp");
    let target_lod = p.sp(Phase::Drying, "lod_endpoint_sp");
    let dissolution = (p.dissolution_q30
        - 25.0 * (hardness / p.hardness_n - 1.0)
        - 3.0 * (r.weight_gain - target_gain)
        - 2.0 * (r.lod - target_lod).max(0.0)
        - 0.02 * (r.d50 - 300.0).max(0.0)
        + gauss(rng, 1.2))
    .clamp(0.0, 102.0);

    let theoretical = p.theoretical_tablets(r.dispensed_kg);
    let yield_pct = if theoretical > 0.0 {
        100.0 * r.packed_tablets / theoretical
    } else {
        0.0
    };
    BatchResult {
        id,
        assay,
        dissolution,
        content_uniformity,
        hardness,
        yield_pct,
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
                .map(|_| evaluate("x".into(), p, &r, 1.0, rng).dissolution)
                .sum::<f64>()
                / 200.0
        };
        let soft = mean(p.hardness_n, &mut rng);
        let hard = mean(p.hardness_n * 1.3, &mut rng);
        assert!(soft - hard > 5.0, "{soft} vs {hard}");
    }
}
