//! High-shear wet granulation: charge, dry mix, binder addition, wet massing, discharge.
//! Impeller power climbs as the binder wets the powder and the granules consolidate; wet
//! massing ends when the power reaches the end-point set-point, or at the maximum time.

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::Batch,
    machine::{Core, Env, Mode, ReadCtx},
    stochastic::{approach, gauss, Noise},
};

const IMPELLER_RATED_KW: f64 = 75.0;
const CHARGE_S: f64 = 180.0;
const DRY_MIX_S: f64 = 120.0;
const DISCHARGE_S: f64 = 120.0;
/// Moisture of the dispensed powders and water share of the binder solution.
const POWDER_MOISTURE: f64 = 0.03;
const BINDER_WATER: f64 = 0.9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Charge,
    DryMix,
    Binder,
    WetMass,
    Discharge,
}

#[derive(Debug, Clone)]
pub(crate) struct Granulation {
    stage: Stage,
    elapsed: f64,
    dry_kg: f64,
    charged_kg: f64,
    binder_target: f64,
    binder_added: f64,
    /// Lot-to-lot cohesiveness of the powder: scales the power curve.
    cohesion: f64,
    /// Consolidation reached in wet massing, added to the binder's wetting.
    massing: f64,
    impeller_rpm: f64,
    chopper_rpm: f64,
    impeller_kw: f64,
    chopper_kw: f64,
    binder_rate: f64,
    product_temp: f64,
    jacket_temp: f64,
    wet_moisture: f64,
    lot: String,
}

fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Granulation {
    pub(crate) fn new(room_temp: f64) -> Self {
        Granulation {
            stage: Stage::Discharge,
            elapsed: DISCHARGE_S,
            dry_kg: 0.0,
            charged_kg: 0.0,
            binder_target: 0.0,
            binder_added: 0.0,
            cohesion: 1.0,
            massing: 0.0,
            impeller_rpm: 0.0,
            chopper_rpm: 0.0,
            impeller_kw: 0.0,
            chopper_kw: 0.0,
            binder_rate: 0.0,
            product_temp: room_temp,
            jacket_temp: room_temp,
            wet_moisture: 0.0,
            lot: String::new(),
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch, rng: &mut SmallRng) {
        self.stage = Stage::Charge;
        self.elapsed = 0.0;
        self.dry_kg = batch.record.dispensed_kg;
        self.charged_kg = 0.0;
        self.binder_target = self.dry_kg * batch.product.binder_pct / 100.0;
        self.binder_added = 0.0;
        self.cohesion = 1.0 + gauss(rng, 0.05);
        self.massing = 0.0;
        self.wet_moisture = POWDER_MOISTURE * 100.0;
        self.lot = batch.id.clone();
    }

    fn wetting(&self) -> f64 {
        if self.binder_target <= 0.0 {
            return 0.0;
        }
        logistic(10.0 * (self.binder_added / self.binder_target - 0.75)) + self.massing
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
        let (mut impeller, mut chopper) = (0.0, 0.0);
        self.binder_rate = 0.0;
        let mut done = false;
        if let (Mode::Run, Some(batch)) = (mode, batch) {
            self.elapsed += dt;
            let wet_time = core.sp.get("wet_massing_time_sp").max(0.1) * 60.0;
            match self.stage {
                Stage::Charge => {
                    impeller = 30.0;
                    self.charged_kg = self.dry_kg * (self.elapsed / CHARGE_S).min(1.0);
                    core.dust = 4.0e4;
                    if self.elapsed >= CHARGE_S {
                        self.next(Stage::DryMix);
                    }
                    batch.progress = 0.10 * (self.elapsed / CHARGE_S).min(1.0);
                }
                Stage::DryMix => {
                    impeller = core.sp.get("impeller_speed_sp");
                    if self.elapsed >= DRY_MIX_S {
                        self.next(Stage::Binder);
                    }
                    batch.progress = 0.10 + 0.05 * (self.elapsed / DRY_MIX_S).min(1.0);
                }
                Stage::Binder => {
                    impeller = core.sp.get("impeller_speed_sp");
                    chopper = core.sp.get("chopper_speed_sp");
                    self.binder_rate = core.sp.get("binder_rate_sp") * (1.0 + gauss(rng, 0.01));
                    self.binder_added += self.binder_rate.max(0.0) * dt / 60.0;
                    if self.binder_added >= self.binder_target {
                        self.binder_added = self.binder_target;
                        self.next(Stage::WetMass);
                    }
                    let share = self.binder_added / self.binder_target.max(1e-9);
                    batch.progress = 0.15 + 0.45 * share.min(1.0);
                }
                Stage::WetMass => {
                    impeller = core.sp.get("impeller_speed_sp");
                    chopper = core.sp.get("chopper_speed_sp");
                    self.massing += 0.15 * dt / wet_time;
                    let end_point = core.sp.get("endpoint_power_sp");
                    if self.elapsed >= wet_time
                        || (end_point > 0.0 && self.impeller_kw >= end_point)
                    {
                        let r = &mut batch.record;
                        r.binder_kg = self.binder_added;
                        r.wet_moisture = self.wet_moisture;
                        r.granule_d50 =
                            300.0 + 250.0 * self.wetting() + 15.0 * (self.wet_moisture - 12.0);
                        self.next(Stage::Discharge);
                    }
                    batch.progress = 0.60 + 0.35 * (self.elapsed / wet_time).min(1.0);
                }
                Stage::Discharge => {
                    impeller = 40.0;
                    core.dust = 3.0e4;
                    batch.progress = 0.95 + 0.05 * (self.elapsed / DISCHARGE_S).min(1.0);
                    done = self.elapsed >= DISCHARGE_S;
                }
            }
            self.jacket_temp = approach(self.jacket_temp, 18.0, 120.0, dt);
        } else {
            self.jacket_temp = approach(self.jacket_temp, env.room_temp, 1800.0, dt);
        }
        if core.dust == 0.0 {
            core.dust = if impeller > 0.0 { 4.0e3 } else { 0.0 };
        }
        self.impeller_rpm = approach(self.impeller_rpm, impeller, 4.0, dt);
        self.chopper_rpm = approach(self.chopper_rpm, chopper, 3.0, dt);

        let speed = self.impeller_rpm / 120.0;
        self.impeller_kw = 0.02
            * self.charged_kg
            * speed.max(0.0).powf(1.5)
            * (1.0 + 2.2 * self.wetting())
            * self.cohesion
            + 0.8 * self.impeller_rpm / 150.0;
        self.chopper_kw = if self.chopper_rpm > 1.0 {
            0.8 + 1.5 * self.chopper_rpm / 3000.0
        } else {
            0.0
        };
        let wet = self.charged_kg + self.binder_added;
        if wet > 0.0 {
            self.wet_moisture = 100.0
                * (POWDER_MOISTURE * self.charged_kg + BINDER_WATER * self.binder_added)
                / wet;
        }
        // Half the impeller work heats the mass; the jacket takes heat away.
        let mass = wet.max(50.0);
        self.product_temp += (0.5 * self.impeller_kw / (mass * 1.3)
            - (self.product_temp - self.jacket_temp) / 1800.0)
            * dt;
        if self.impeller_rpm < 1.0 && mode == Mode::Off {
            self.product_temp = approach(self.product_temp, env.room_temp, 1800.0, dt);
        }
        core.turning = self.impeller_rpm > 1.0;
        core.load = (self.impeller_kw + self.chopper_kw) / IMPELLER_RATED_KW;
        core.power_kw = self.impeller_kw + self.chopper_kw + if core.turning { 1.5 } else { 0.6 };
        done
    }

    fn next(&mut self, stage: Stage) {
        self.stage = stage;
        self.elapsed = 0.0;
    }

    pub(crate) fn read(&self, id: &str, ctx: &ReadCtx<'_>, n: &mut Noise) -> Option<Value> {
        let turning = self.impeller_rpm > 1.0;
        let v = match id {
            "impeller_speed" => Value::Float(n.add(self.impeller_rpm, 0.3).max(0.0)),
            "chopper_speed" => Value::Float(n.add(self.chopper_rpm, 3.0).max(0.0)),
            "impeller_power" => Value::Float(n.rel(self.impeller_kw, 0.02).max(0.0)),
            "impeller_torque" => Value::Float(if turning {
                n.rel(
                    self.impeller_kw * 1000.0 / (std::f64::consts::TAU * self.impeller_rpm / 60.0),
                    0.02,
                )
            } else {
                n.add(0.0, 2.0).abs()
            }),
            "motor_current" => Value::Float(if turning {
                n.add(8.0 + motor_amps(self.impeller_kw), 0.3)
            } else {
                0.0
            }),
            "chopper_current" => Value::Float(if self.chopper_rpm > 1.0 {
                n.add(1.5 + motor_amps(self.chopper_kw), 0.05)
            } else {
                0.0
            }),
            "product_temp" => Value::Float(n.add(self.product_temp, 0.1)),
            "jacket_temp" => Value::Float(n.add(self.jacket_temp, 0.1)),
            "spray_pressure" => Value::Float(if self.binder_rate > 0.0 {
                n.add(2.0, 0.02)
            } else {
                n.add(0.0, 0.005).abs()
            }),
            "binder_rate" => Value::Float(n.add(self.binder_rate, 0.02).max(0.0)),
            "lot_id" => Value::Text(self.lot.clone()),
            "binder_lot_id" => Value::Text(ctx.materials.binder.id.clone()),
            "binder_added" => Value::Float(self.binder_added),
            "material_consumed" => Value::Float(self.charged_kg),
            "wet_mass_moisture" => Value::Float(self.wet_moisture),
            "lot_expiry_days" => Value::Float(ctx.materials.binder.days_left(ctx.now)),
            _ => return None,
        };
        Some(v)
    }
}
