//! Blending in an IBC tumble blender: main blend to the recipe's revolutions, lubricant
//! added, lubrication blend. Blend uniformity (NIR RSD) decays exponentially with
//! revolutions to a floor set by the dose (low-dose APIs blend less evenly) and by
//! segregation of fines and coarse granules.

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, Phase, Product},
    machine::{Core, Env, Mode, ReadCtx},
    stochastic::{approach, gauss, Noise},
};

const RATED_KW: f64 = 22.0;
const CHARGE_S: f64 = 300.0;
const ADD_LUBRICANT_S: f64 = 180.0;
const RELEASE_S: f64 = 180.0;
const START_RSD: f64 = 15.0;
const REVOLUTIONS_SCALE: f64 = 45.0;
/// Magnesium stearate per batch mass.
const LUBRICANT_SHARE: f64 = 0.005;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Charge,
    Blend,
    AddLubricant,
    Lubricate,
    Release,
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct Blending {
    stage: Stage,
    elapsed: f64,
    rpm: f64,
    revolutions: f64,
    lubrication_revolutions: f64,
    granule_kg: f64,
    charged_kg: f64,
    lubricant_target: f64,
    lubricant_kg: f64,
    floor_rsd: f64,
    rsd: f64,
    assay: f64,
    lot: String,
}

impl Blending {
    pub(crate) fn new(product: &Product) -> Self {
        Blending {
            stage: Stage::Empty,
            elapsed: 0.0,
            rpm: 0.0,
            revolutions: 0.0,
            lubrication_revolutions: 0.0,
            granule_kg: 0.0,
            charged_kg: 0.0,
            lubricant_target: 0.0,
            lubricant_kg: 0.0,
            floor_rsd: floor_rsd(product, 15.0, 280.0),
            rsd: floor_rsd(product, 15.0, 280.0),
            assay: 100.0,
            lot: String::new(),
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch) {
        let r = &batch.record;
        self.stage = Stage::Charge;
        self.elapsed = 0.0;
        self.revolutions = 0.0;
        self.lubrication_revolutions = 0.0;
        self.granule_kg = r.milled_kg;
        self.charged_kg = 0.0;
        self.lubricant_target = batch.size_kg * LUBRICANT_SHARE;
        self.lubricant_kg = 0.0;
        self.floor_rsd = floor_rsd(batch.product, r.fines, r.d50);
        self.rsd = START_RSD;
        self.assay = 100.0 * r.api_ratio * batch.potency_true / batch.potency_coa;
        self.lot = batch.id.clone();
    }

    pub(crate) fn step(
        &mut self,
        core: &mut Core,
        mode: Mode,
        batch: Option<&mut Batch>,
        env: &Env<'_>,
        rng: &mut SmallRng,
    ) -> bool {
        let dt = env.dt;
        let running = mode == Mode::Run && batch.is_some();
        let turning_stage = matches!(self.stage, Stage::Blend | Stage::Lubricate);
        let target_rpm = if running && turning_stage {
            core.sp.get("rotation_speed_sp")
        } else {
            0.0
        };
        self.rpm = approach(self.rpm, target_rpm, 5.0, dt);
        let ibc = self.charged_kg + self.lubricant_kg;
        let kw = if self.rpm > 0.1 {
            1.5 + 0.011 * ibc * self.rpm / 8.0
        } else {
            0.0
        };
        core.turning = self.rpm > 0.1;
        core.load = kw / RATED_KW;
        core.power_kw = kw + 0.3;
        core.dust = match (running, self.stage) {
            (true, Stage::Charge | Stage::Release | Stage::AddLubricant) => 4.0e4,
            (true, _) => 2.0e3,
            _ => 0.0,
        };

        let Some(batch) = batch.filter(|_| running) else {
            return false;
        };
        self.elapsed += dt;
        let revs = self.rpm * dt / 60.0;
        match self.stage {
            Stage::Charge => {
                self.charged_kg = self.granule_kg * (self.elapsed / CHARGE_S).min(1.0);
                batch.progress = 0.05 * (self.elapsed / CHARGE_S).min(1.0);
                if self.elapsed >= CHARGE_S {
                    self.next(Stage::Blend);
                }
            }
            Stage::Blend => {
                self.revolutions += revs;
                let target = core.sp.get("blend_revolutions_sp").max(1.0);
                batch.progress = 0.05 + 0.65 * (self.revolutions / target).min(1.0);
                if self.revolutions >= target {
                    self.next(Stage::AddLubricant);
                }
            }
            Stage::AddLubricant => {
                batch.progress = 0.70 + 0.05 * (self.elapsed / ADD_LUBRICANT_S).min(1.0);
                if self.elapsed >= ADD_LUBRICANT_S {
                    self.lubricant_kg = self.lubricant_target;
                    self.next(Stage::Lubricate);
                }
            }
            Stage::Lubricate => {
                self.revolutions += revs;
                self.lubrication_revolutions += revs;
                let target = core.sp.get("lubrication_revolutions_sp").max(1.0);
                batch.progress = 0.75 + 0.2 * (self.lubrication_revolutions / target).min(1.0);
                if self.lubrication_revolutions >= target {
                    self.next(Stage::Release);
                }
            }
            Stage::Release => {
                batch.progress = 0.95 + 0.05 * (self.elapsed / RELEASE_S).min(1.0);
                if self.elapsed >= RELEASE_S {
                    let r = &mut batch.record;
                    r.blend_rsd = self.rsd;
                    r.blend_assay = self.assay + gauss(rng, 0.3);
                    let recipe = batch
                        .product
                        .sp(Phase::Blending, "lubrication_revolutions_sp");
                    r.lubrication_ratio = self.lubrication_revolutions / recipe.max(1.0);
                    r.blend_kg = self.charged_kg + self.lubricant_kg;
                    self.next(Stage::Empty);
                    return true;
                }
            }
            Stage::Empty => return true,
        }
        self.rsd = self.floor_rsd
            + (START_RSD - self.floor_rsd) * (-self.revolutions / REVOLUTIONS_SCALE).exp();
        false
    }

    fn next(&mut self, stage: Stage) {
        self.stage = stage;
        self.elapsed = 0.0;
    }

    pub(crate) fn read(&self, id: &str, ctx: &ReadCtx<'_>, n: &mut Noise) -> Option<Value> {
        let v = match id {
            "rotation_speed" => Value::Float(n.add(self.rpm, 0.02).max(0.0)),
            "revolutions" => Value::Int(self.revolutions.floor() as i64),
            "motor_current" => Value::Float(if self.rpm > 0.1 {
                n.add(
                    3.0 + motor_amps(
                        1.5 + 0.011 * (self.charged_kg + self.lubricant_kg) * self.rpm / 8.0,
                    ),
                    0.1,
                )
            } else {
                0.0
            }),
            "ibc_weight" => Value::Float(n.add(self.charged_kg + self.lubricant_kg, 0.2).max(0.0)),
            "lot_id" => Value::Text(self.lot.clone()),
            "blend_uniformity_rsd" => Value::Float(if self.rpm > 0.1 {
                n.rel(self.rsd, 0.05)
            } else {
                self.rsd
            }),
            "blend_assay" => Value::Float(if self.rpm > 0.1 {
                n.add(self.assay, self.rsd / 3.0)
            } else {
                self.assay
            }),
            "lubricant_lot_id" => Value::Text(ctx.materials.lubricant.id.clone()),
            "lubricant_added" => Value::Float(self.lubricant_kg),
            "material_consumed" => Value::Float(self.charged_kg),
            _ => return None,
        };
        Some(v)
    }
}

/// The uniformity a blend approaches: set by the dose, worse with many fines or coarse
/// granules (segregation).
fn floor_rsd(product: &Product, fines: f64, d50: f64) -> f64 {
    (0.6 + 0.08 / product.api_fraction.max(1e-4).sqrt())
        * (1.0 + 0.015 * (fines - 15.0).max(0.0) + 0.002 * (d50 - 300.0).max(0.0))
}
