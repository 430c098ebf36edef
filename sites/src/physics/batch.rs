//! Batches (ISA-88): a product made by its master recipe, moving through the phases of an
//! oral-solid-dose line one after the other, with a record of what each phase did so that
//! the quality of the batch can be worked out from its process parameters.

use std::fmt;

/// ISA-88 phase of a line's batch; `Idle` between batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Idle,
    Dispensing,
    Granulation,
    Drying,
    Milling,
    Blending,
    Compression,
    Coating,
    Packaging,
}

impl Phase {
    /// The process phases in the order a batch goes through them.
    pub const PROCESS: [Phase; 8] = [
        Phase::Dispensing,
        Phase::Granulation,
        Phase::Drying,
        Phase::Milling,
        Phase::Blending,
        Phase::Compression,
        Phase::Coating,
        Phase::Packaging,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "IDLE",
            Phase::Dispensing => "DISPENSING",
            Phase::Granulation => "GRANULATION",
            Phase::Drying => "DRYING",
            Phase::Milling => "MILLING",
            Phase::Blending => "BLENDING",
            Phase::Compression => "COMPRESSION",
            Phase::Coating => "COATING",
            Phase::Packaging => "PACKAGING",
        }
    }

    /// Position in [`Phase::PROCESS`]; `None` for `Idle`.
    pub fn index(self) -> Option<usize> {
        Phase::PROCESS.iter().position(|p| *p == self)
    }

    /// The phase after this one; `None` after packaging (and for `Idle`).
    pub fn next(self) -> Option<Phase> {
        self.index()
            .and_then(|i| Phase::PROCESS.get(i + 1).copied())
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A product and its master recipe. The set-points are per phase, by signal id, so that a
/// recipe download writes exactly the `_sp` signals the equipment serves.
#[derive(Debug)]
pub(crate) struct Product {
    pub(crate) code: &'static str,
    pub(crate) name: &'static str,
    /// Short code of the API, used in lot numbers.
    pub(crate) api: &'static str,
    pub(crate) recipe: &'static str,
    pub(crate) recipe_version: &'static str,
    pub(crate) sop: &'static str,
    pub(crate) tablet_mg: f64,
    /// Mass share of the API in the tablet core (low-dose products blend less uniformly).
    pub(crate) api_fraction: f64,
    /// Binder solution per dry mass, %.
    pub(crate) binder_pct: f64,
    pub(crate) screen_mm: f64,
    pub(crate) hardness_n: f64,
    pub(crate) thickness_mm: f64,
    pub(crate) ejection_n: f64,
    pub(crate) suspension_solids_pct: f64,
    pub(crate) tablets_per_blister: f64,
    pub(crate) shelf_life_days: f64,
    /// Mean dissolution at 30 min when made at the recipe's set-points, %.
    pub(crate) dissolution_q30: f64,
    /// Set-points per process phase, in [`Phase::PROCESS`] order.
    pub(crate) setpoints: [&'static [(&'static str, f64)]; 8],
}

impl Product {
    /// The recipe's value of a set-point (0 if the recipe has none).
    pub(crate) fn sp(&self, phase: Phase, id: &str) -> f64 {
        phase
            .index()
            .and_then(|i| self.setpoints[i].iter().find(|(k, _)| *k == id))
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    }

    pub(crate) fn batch_kg(&self) -> f64 {
        self.sp(Phase::Dispensing, "dispense_target_sp")
    }

    pub(crate) fn theoretical_tablets(&self, kg: f64) -> f64 {
        kg * 1e6 / self.tablet_mg
    }
}

pub(crate) static PRODUCTS: [Product; 5] = [
    Product {
        code: "MET500",
        name: "Metformin HCl 500 mg film-coated tablets",
        api: "MET",
        recipe: "MR-MET500-01",
        recipe_version: "4.2",
        sop: "SOP-MFG-0142 v7",
        tablet_mg: 600.0,
        api_fraction: 0.833,
        binder_pct: 14.0,
        screen_mm: 1.2,
        hardness_n: 180.0,
        thickness_mm: 6.2,
        ejection_n: 380.0,
        suspension_solids_pct: 15.0,
        tablets_per_blister: 10.0,
        shelf_life_days: 1095.0,
        dissolution_q30: 96.0,
        setpoints: [
            &[
                ("dispense_target_sp", 600.0),
                ("weighing_tolerance_sp", 0.3),
            ],
            &[
                ("impeller_speed_sp", 120.0),
                ("chopper_speed_sp", 1500.0),
                ("binder_rate_sp", 6.0),
                ("wet_massing_time_sp", 5.0),
                ("endpoint_power_sp", 39.0),
            ],
            &[
                ("inlet_air_temp_sp", 65.0),
                ("air_flow_sp", 7000.0),
                ("lod_endpoint_sp", 1.8),
                ("max_drying_time_sp", 120.0),
            ],
            &[("rotor_speed_sp", 1200.0), ("feed_rate_sp", 1500.0)],
            &[
                ("rotation_speed_sp", 8.0),
                ("blend_revolutions_sp", 240.0),
                ("lubrication_revolutions_sp", 80.0),
            ],
            &[
                ("turret_speed_sp", 60.0),
                ("compression_force_sp", 18.0),
                ("precompression_force_sp", 3.0),
                ("fill_depth_sp", 14.0),
                ("target_weight_sp", 600.0),
            ],
            &[
                ("inlet_air_temp_sp", 60.0),
                ("spray_rate_sp", 650.0),
                ("pan_speed_sp", 7.0),
                ("atomization_pressure_sp", 2.5),
                ("target_weight_gain_sp", 3.0),
            ],
            &[
                ("speed_sp", 400.0),
                ("sealing_temp_sp", 210.0),
                ("forming_temp_sp", 135.0),
                ("sealing_pressure_sp", 4.5),
            ],
        ],
    },
    Product {
        code: "AML005",
        name: "Amlodipine 5 mg film-coated tablets",
        api: "AML",
        recipe: "MR-AML005-02",
        recipe_version: "3.1",
        sop: "SOP-MFG-0157 v5",
        tablet_mg: 200.0,
        api_fraction: 0.0347,
        binder_pct: 12.0,
        screen_mm: 1.0,
        hardness_n: 80.0,
        thickness_mm: 3.6,
        ejection_n: 220.0,
        suspension_solids_pct: 12.0,
        tablets_per_blister: 10.0,
        shelf_life_days: 1095.0,
        dissolution_q30: 97.0,
        setpoints: [
            &[
                ("dispense_target_sp", 300.0),
                ("weighing_tolerance_sp", 0.3),
            ],
            &[
                ("impeller_speed_sp", 150.0),
                ("chopper_speed_sp", 1800.0),
                ("binder_rate_sp", 4.0),
                ("wet_massing_time_sp", 4.0),
                ("endpoint_power_sp", 27.0),
            ],
            &[
                ("inlet_air_temp_sp", 60.0),
                ("air_flow_sp", 5000.0),
                ("lod_endpoint_sp", 2.5),
                ("max_drying_time_sp", 110.0),
            ],
            &[("rotor_speed_sp", 1500.0), ("feed_rate_sp", 1200.0)],
            &[
                ("rotation_speed_sp", 8.0),
                ("blend_revolutions_sp", 300.0),
                ("lubrication_revolutions_sp", 60.0),
            ],
            &[
                ("turret_speed_sp", 70.0),
                ("compression_force_sp", 9.0),
                ("precompression_force_sp", 2.0),
                ("fill_depth_sp", 7.0),
                ("target_weight_sp", 200.0),
            ],
            &[
                ("inlet_air_temp_sp", 58.0),
                ("spray_rate_sp", 350.0),
                ("pan_speed_sp", 9.0),
                ("atomization_pressure_sp", 2.2),
                ("target_weight_gain_sp", 3.5),
            ],
            &[
                ("speed_sp", 450.0),
                ("sealing_temp_sp", 200.0),
                ("forming_temp_sp", 130.0),
                ("sealing_pressure_sp", 4.0),
            ],
        ],
    },
    Product {
        code: "ATV020",
        name: "Atorvastatin 20 mg film-coated tablets",
        api: "ATV",
        recipe: "MR-ATV020-01",
        recipe_version: "2.4",
        sop: "SOP-MFG-0163 v4",
        tablet_mg: 250.0,
        api_fraction: 0.0868,
        binder_pct: 15.0,
        screen_mm: 1.0,
        hardness_n: 110.0,
        thickness_mm: 4.2,
        ejection_n: 260.0,
        suspension_solids_pct: 15.0,
        tablets_per_blister: 10.0,
        shelf_life_days: 730.0,
        dissolution_q30: 93.0,
        setpoints: [
            &[
                ("dispense_target_sp", 250.0),
                ("weighing_tolerance_sp", 0.3),
            ],
            &[
                ("impeller_speed_sp", 160.0),
                ("chopper_speed_sp", 1800.0),
                ("binder_rate_sp", 3.5),
                ("wet_massing_time_sp", 4.0),
                ("endpoint_power_sp", 25.0),
            ],
            &[
                ("inlet_air_temp_sp", 55.0),
                ("air_flow_sp", 4500.0),
                ("lod_endpoint_sp", 2.0),
                ("max_drying_time_sp", 120.0),
            ],
            &[("rotor_speed_sp", 1400.0), ("feed_rate_sp", 1000.0)],
            &[
                ("rotation_speed_sp", 10.0),
                ("blend_revolutions_sp", 250.0),
                ("lubrication_revolutions_sp", 50.0),
            ],
            &[
                ("turret_speed_sp", 65.0),
                ("compression_force_sp", 11.0),
                ("precompression_force_sp", 2.5),
                ("fill_depth_sp", 8.5),
                ("target_weight_sp", 250.0),
            ],
            &[
                ("inlet_air_temp_sp", 55.0),
                ("spray_rate_sp", 300.0),
                ("pan_speed_sp", 10.0),
                ("atomization_pressure_sp", 2.0),
                ("target_weight_gain_sp", 3.0),
            ],
            &[
                ("speed_sp", 420.0),
                ("sealing_temp_sp", 205.0),
                ("forming_temp_sp", 132.0),
                ("sealing_pressure_sp", 4.2),
            ],
        ],
    },
    Product {
        code: "LEV500",
        name: "Levetiracetam 500 mg film-coated tablets",
        api: "LEV",
        recipe: "MR-LEV500-01",
        recipe_version: "1.9",
        sop: "SOP-MFG-0171 v3",
        tablet_mg: 625.0,
        api_fraction: 0.8,
        binder_pct: 10.0,
        screen_mm: 1.5,
        hardness_n: 200.0,
        thickness_mm: 6.0,
        ejection_n: 400.0,
        suspension_solids_pct: 18.0,
        tablets_per_blister: 10.0,
        shelf_life_days: 1095.0,
        dissolution_q30: 97.0,
        setpoints: [
            &[
                ("dispense_target_sp", 500.0),
                ("weighing_tolerance_sp", 0.3),
            ],
            &[
                ("impeller_speed_sp", 110.0),
                ("chopper_speed_sp", 1500.0),
                ("binder_rate_sp", 5.0),
                ("wet_massing_time_sp", 5.0),
                ("endpoint_power_sp", 28.5),
            ],
            &[
                ("inlet_air_temp_sp", 62.0),
                ("air_flow_sp", 6500.0),
                ("lod_endpoint_sp", 1.5),
                ("max_drying_time_sp", 130.0),
            ],
            &[("rotor_speed_sp", 1100.0), ("feed_rate_sp", 1400.0)],
            &[
                ("rotation_speed_sp", 8.0),
                ("blend_revolutions_sp", 200.0),
                ("lubrication_revolutions_sp", 60.0),
            ],
            &[
                ("turret_speed_sp", 55.0),
                ("compression_force_sp", 20.0),
                ("precompression_force_sp", 4.0),
                ("fill_depth_sp", 15.0),
                ("target_weight_sp", 625.0),
            ],
            &[
                ("inlet_air_temp_sp", 60.0),
                ("spray_rate_sp", 600.0),
                ("pan_speed_sp", 6.5),
                ("atomization_pressure_sp", 2.6),
                ("target_weight_gain_sp", 3.0),
            ],
            &[
                ("speed_sp", 380.0),
                ("sealing_temp_sp", 212.0),
                ("forming_temp_sp", 138.0),
                ("sealing_pressure_sp", 4.8),
            ],
        ],
    },
    Product {
        code: "ENT005",
        name: "Entecavir 0.5 mg film-coated tablets",
        api: "ENT",
        recipe: "MR-ENT005-03",
        recipe_version: "5.0",
        sop: "SOP-MFG-0188 v6",
        tablet_mg: 200.0,
        api_fraction: 0.00265,
        binder_pct: 12.0,
        screen_mm: 0.8,
        hardness_n: 75.0,
        thickness_mm: 3.5,
        ejection_n: 200.0,
        suspension_solids_pct: 12.0,
        tablets_per_blister: 10.0,
        shelf_life_days: 730.0,
        dissolution_q30: 95.0,
        setpoints: [
            &[
                ("dispense_target_sp", 200.0),
                ("weighing_tolerance_sp", 0.2),
            ],
            &[
                ("impeller_speed_sp", 170.0),
                ("chopper_speed_sp", 2000.0),
                ("binder_rate_sp", 3.0),
                ("wet_massing_time_sp", 3.5),
                ("endpoint_power_sp", 22.0),
            ],
            &[
                ("inlet_air_temp_sp", 58.0),
                ("air_flow_sp", 4000.0),
                ("lod_endpoint_sp", 2.2),
                ("max_drying_time_sp", 110.0),
            ],
            &[("rotor_speed_sp", 1600.0), ("feed_rate_sp", 900.0)],
            &[
                ("rotation_speed_sp", 10.0),
                ("blend_revolutions_sp", 400.0),
                ("lubrication_revolutions_sp", 50.0),
            ],
            &[
                ("turret_speed_sp", 70.0),
                ("compression_force_sp", 8.0),
                ("precompression_force_sp", 2.0),
                ("fill_depth_sp", 7.0),
                ("target_weight_sp", 200.0),
            ],
            &[
                ("inlet_air_temp_sp", 56.0),
                ("spray_rate_sp", 300.0),
                ("pan_speed_sp", 10.0),
                ("atomization_pressure_sp", 2.1),
                ("target_weight_gain_sp", 3.5),
            ],
            &[
                ("speed_sp", 450.0),
                ("sealing_temp_sp", 200.0),
                ("forming_temp_sp", 130.0),
                ("sealing_pressure_sp", 4.0),
            ],
        ],
    },
];

fn product(code: &str) -> &'static Product {
    PRODUCTS
        .iter()
        .find(|p| p.code == code)
        .unwrap_or(&PRODUCTS[0])
}

/// The products a line makes, in campaign order. The three built-in plants have their
/// portfolios; any other site gets two products picked from its line's position.
pub(crate) fn portfolio(site: &str, line: usize) -> Vec<&'static Product> {
    let codes: &[&str] = match (site, line) {
        ("shenzhen", 0) => &["MET500", "LEV500"],
        ("shenzhen", 1) => &["ATV020", "AML005"],
        ("shenzhen", 2) => &["ENT005", "AML005"],
        ("anhui", 0) => &["MET500", "LEV500"],
        ("anhui", 1) => &["ATV020", "MET500"],
        ("sichuan", 0) => &["AML005", "ATV020"],
        ("sichuan", 1) => &["ENT005", "AML005"],
        _ => {
            let n = PRODUCTS.len();
            return vec![&PRODUCTS[line % n], &PRODUCTS[(line + 2) % n]];
        }
    };
    codes.iter().map(|c| product(c)).collect()
}

/// A weighted mean, for process parameters recorded over a phase.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mean {
    sum: f64,
    weight: f64,
}

impl Mean {
    pub(crate) fn add(&mut self, x: f64, weight: f64) {
        if weight > 0.0 && x.is_finite() {
            self.sum += x * weight;
            self.weight += weight;
        }
    }

    pub(crate) fn value_or(&self, default: f64) -> f64 {
        if self.weight > 0.0 {
            self.sum / self.weight
        } else {
            default
        }
    }
}

/// What the phases of a batch did. Starts at the recipe's nominal values, so a line without
/// some unit (a fourth site's file may leave one out) still yields a consistent batch.
#[derive(Debug, Clone)]
pub(crate) struct BatchRecord {
    pub(crate) dispensed_kg: f64,
    /// API dispensed per API required (potency-compensated), 1 = exact.
    pub(crate) api_ratio: f64,
    pub(crate) binder_kg: f64,
    /// Moisture of the wet mass, %.
    pub(crate) wet_moisture: f64,
    /// Median size of the wet granules before milling, µm.
    pub(crate) granule_d50: f64,
    pub(crate) lod: f64,
    pub(crate) granule_kg: f64,
    pub(crate) drying_inlet_temp: Mean,
    pub(crate) drying_min: f64,
    pub(crate) d50: f64,
    pub(crate) fines: f64,
    pub(crate) milled_kg: f64,
    pub(crate) blend_rsd: f64,
    pub(crate) blend_assay: f64,
    /// Lubrication revolutions per the recipe's (over-lubrication softens tablets).
    pub(crate) lubrication_ratio: f64,
    pub(crate) blend_kg: f64,
    pub(crate) force: Mean,
    pub(crate) hardness: Mean,
    pub(crate) weight_rsd: Mean,
    pub(crate) tablets_good: f64,
    pub(crate) weight_gain: f64,
    pub(crate) coated_good: f64,
    pub(crate) packed_tablets: f64,
}

impl BatchRecord {
    pub(crate) fn nominal(product: &Product, kg: f64) -> Self {
        let tablets = product.theoretical_tablets(kg);
        BatchRecord {
            dispensed_kg: kg,
            api_ratio: 1.0,
            binder_kg: kg * product.binder_pct / 100.0,
            wet_moisture: 13.0,
            granule_d50: 550.0,
            lod: product.sp(Phase::Drying, "lod_endpoint_sp"),
            granule_kg: kg,
            drying_inlet_temp: Mean::default(),
            drying_min: 0.0,
            d50: 280.0,
            fines: 15.0,
            milled_kg: kg,
            blend_rsd: 1.0,
            blend_assay: 100.0,
            lubrication_ratio: 1.0,
            blend_kg: kg,
            force: Mean::default(),
            hardness: Mean::default(),
            weight_rsd: Mean::default(),
            tablets_good: tablets,
            weight_gain: product.sp(Phase::Coating, "target_weight_gain_sp"),
            coated_good: tablets,
            packed_tablets: tablets,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Batch {
    pub(crate) id: String,
    pub(crate) product: &'static Product,
    pub(crate) size_kg: f64,
    pub(crate) phase: Phase,
    /// Progress through the current phase, 0..1.
    pub(crate) progress: f64,
    pub(crate) started_at: f64,
    /// API potency on the certificate of analysis and as it really is, %.
    pub(crate) potency_coa: f64,
    pub(crate) potency_true: f64,
    pub(crate) record: BatchRecord,
}

impl Batch {
    /// Progress through the whole batch, 0..100 %.
    pub(crate) fn progress_pct(&self) -> f64 {
        let done = self.phase.index().map_or(0.0, |i| i as f64);
        (100.0 * (done + self.progress.clamp(0.0, 1.0)) / Phase::PROCESS.len() as f64)
            .clamp(0.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_in_isa88_order() {
        let mut p = Phase::Dispensing;
        let mut seen = vec![p];
        while let Some(n) = p.next() {
            seen.push(n);
            p = n;
        }
        assert_eq!(seen, Phase::PROCESS);
        assert_eq!(Phase::Idle.next(), None);
    }

    #[test]
    fn every_recipe_sets_every_process_phase() {
        for p in &PRODUCTS {
            for (i, sps) in p.setpoints.iter().enumerate() {
                assert!(!sps.is_empty(), "{} phase {i}", p.code);
                assert!(sps.iter().all(|(id, v)| id.ends_with("_sp") && *v > 0.0));
            }
            assert!(p.batch_kg() > 0.0);
        }
    }
}
