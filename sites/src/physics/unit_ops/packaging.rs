//! Primary packaging on a thermoform blister machine: line clearance and heating up, then
//! forming, filling and sealing until every coated tablet of the batch is packed, then
//! reconciliation. The vision system rejects more blisters when the sealing temperature is
//! off its set-point or the sealing tool is worn.

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, Phase, Product},
    machine::{Core, Env, Kind, Mode, ReadCtx},
    material::Materials,
    stochastic::{approach, uniform, Noise},
    wear::Wear,
};

const RATED_KW: f64 = 30.0;
const SETUP_S: f64 = 1200.0;
const RECONCILE_S: f64 = 600.0;
/// Blisters formed per machine cycle (lanes × rows).
const BLISTERS_PER_CYCLE: f64 = 6.0;
/// Heater plates stand by this much below their set-points between batches.
const STANDBY_DROP: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Setup,
    Run,
    Reconcile,
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct Packaging {
    stage: Stage,
    elapsed: f64,
    speed: f64,
    forming_temp: f64,
    sealing_temp: f64,
    sealing_pressure: f64,
    tablets_target: f64,
    tablets_fed: f64,
    blisters_good: f64,
    reject_rate: f64,
    tool_cycles: f64,
    heater_kw: f64,
    drive_kw: f64,
    tablet_kg: f64,
    lot: String,
    lot_expires_at: f64,
}

impl Packaging {
    pub(crate) fn new(product: &Product, wear: &Wear, rng: &mut SmallRng) -> Self {
        let sealing = product.sp(Phase::Packaging, "sealing_temp_sp") - STANDBY_DROP;
        let forming = product.sp(Phase::Packaging, "forming_temp_sp") - STANDBY_DROP;
        Packaging {
            stage: Stage::Empty,
            elapsed: 0.0,
            speed: 0.0,
            forming_temp: forming,
            sealing_temp: sealing,
            sealing_pressure: 0.3,
            tablets_target: 0.0,
            tablets_fed: 0.0,
            blisters_good: 0.0,
            reject_rate: 0.3,
            tool_cycles: (wear.tooling * Kind::Packaging.rating().tooling_life).floor(),
            heater_kw: 0.0,
            drive_kw: 0.0,
            tablet_kg: product.tablet_mg / 1e6,
            lot: String::new(),
            // The lot packed last, before the simulation started.
            lot_expires_at: (product.shelf_life_days - uniform(rng, 1.0, 20.0)) * 86_400.0,
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch) {
        self.stage = Stage::Setup;
        self.elapsed = 0.0;
        self.tablets_target = batch.record.coated_good;
        self.tablets_fed = 0.0;
        self.blisters_good = 0.0;
        let gain = 1.0 + batch.record.weight_gain / 100.0;
        self.tablet_kg = batch.product.tablet_mg * gain / 1e6;
        self.lot = batch.id.clone();
        // Shelf life runs from the start of manufacture.
        self.lot_expires_at = batch.started_at + batch.product.shelf_life_days * 86_400.0;
    }

    pub(crate) fn new_sealing_tool(&mut self) {
        self.tool_cycles = 0.0;
    }

    pub(crate) fn step(
        &mut self,
        core: &mut Core,
        mode: Mode,
        batch: Option<&mut Batch>,
        env: &Env<'_>,
        materials: &mut Materials,
        rng: &mut SmallRng,
    ) -> bool {
        let dt = env.dt;
        let running = mode == Mode::Run && batch.is_some();
        let in_batch = batch.is_some();
        let sealing_sp = core.sp.get("sealing_temp_sp");
        let forming_sp = core.sp.get("forming_temp_sp");
        let drop = if in_batch { 0.0 } else { STANDBY_DROP };
        let (seal_target, form_target) = (sealing_sp - drop, forming_sp - drop);
        let duty = |t: f64, target: f64| (0.35 + (target - t) / 20.0).clamp(0.0, 1.0);
        self.heater_kw =
            8.0 * duty(self.sealing_temp, seal_target) + 6.0 * duty(self.forming_temp, form_target);
        self.sealing_temp = approach(self.sealing_temp, seal_target, 240.0, dt);
        self.forming_temp = approach(self.forming_temp, form_target, 200.0, dt);
        let packing = running && self.stage == Stage::Run;
        self.speed = approach(
            self.speed,
            if packing {
                core.sp.get("speed_sp")
            } else {
                0.0
            },
            20.0,
            dt,
        );
        self.sealing_pressure = if packing {
            core.sp.get("sealing_pressure_sp")
        } else {
            0.3
        };
        self.drive_kw = if self.speed > 1.0 {
            3.0 + 0.03 * self.speed
        } else {
            0.0
        };
        core.turning = self.speed > 1.0;
        core.load = self.drive_kw / RATED_KW;
        core.power_kw = self.drive_kw + self.heater_kw + 0.8;
        core.dust = if packing { 1.5e4 } else { 0.0 };
        let tooling = core.wear.tooling;
        self.reject_rate = 0.25
            + 3.0 * ((self.sealing_temp - sealing_sp).abs() - 8.0).max(0.0) / 20.0
            + 1.2 * tooling * tooling;

        let Some(batch) = batch.filter(|_| running) else {
            return false;
        };
        self.elapsed += dt;
        match self.stage {
            Stage::Setup => {
                batch.progress = 0.04 * (self.elapsed / SETUP_S).min(1.0);
                if self.elapsed >= SETUP_S {
                    self.next(Stage::Run);
                }
            }
            Stage::Run => {
                let per_blister = batch.product.tablets_per_blister;
                let blisters = self.speed * dt / 60.0;
                let share = (self.reject_rate / 100.0).clamp(0.0, 1.0);
                self.tablets_fed += blisters * per_blister;
                self.blisters_good += blisters * (1.0 - share);
                core.good += blisters * (1.0 - share);
                core.reject += blisters * share;
                self.tool_cycles += blisters / BLISTERS_PER_CYCLE;
                core.tooling_use = blisters / BLISTERS_PER_CYCLE;
                materials.use_film(blisters, env.clock, rng);
                batch.progress =
                    0.04 + 0.92 * (self.tablets_fed / self.tablets_target.max(1.0)).min(1.0);
                if self.tablets_fed >= self.tablets_target {
                    self.next(Stage::Reconcile);
                }
            }
            Stage::Reconcile => {
                batch.progress = 0.96 + 0.04 * (self.elapsed / RECONCILE_S).min(1.0);
                if self.elapsed >= RECONCILE_S {
                    batch.record.packed_tablets =
                        self.blisters_good * batch.product.tablets_per_blister;
                    self.next(Stage::Empty);
                    return true;
                }
            }
            Stage::Empty => return true,
        }
        false
    }

    fn next(&mut self, stage: Stage) {
        self.stage = stage;
        self.elapsed = 0.0;
    }

    pub(crate) fn read(
        &self,
        id: &str,
        core: &Core,
        ctx: &ReadCtx<'_>,
        n: &mut Noise,
    ) -> Option<Value> {
        let v = match id {
            "speed" => Value::Float(n.add(self.speed, 0.5).max(0.0)),
            "forming_temp" => Value::Float(n.add(self.forming_temp, 0.3)),
            "sealing_temp" => Value::Float(n.add(self.sealing_temp, 0.3)),
            "sealing_pressure" => Value::Float(n.add(self.sealing_pressure, 0.02).max(0.0)),
            "motor_current" => Value::Float(if core.turning {
                n.add(3.0 + motor_amps(self.drive_kw), 0.1)
            } else {
                0.0
            }),
            "sealing_tool_cycles" => Value::Int(self.tool_cycles.floor() as i64),
            "vision_reject_rate" => Value::Float(if core.turning {
                n.rel(self.reject_rate, 0.08).max(0.0)
            } else {
                0.0
            }),
            "lot_id" => Value::Text(self.lot.clone()),
            "pvc_lot_id" => Value::Text(ctx.materials.pvc.lot.id.clone()),
            "foil_lot_id" => Value::Text(ctx.materials.foil.lot.id.clone()),
            "pvc_remaining" => Value::Float(ctx.materials.pvc.remaining_m.max(0.0)),
            "foil_remaining" => Value::Float(ctx.materials.foil.remaining_m.max(0.0)),
            "material_consumed" => Value::Float(self.tablets_fed * self.tablet_kg),
            "lot_expiry_days" => {
                Value::Float(((self.lot_expires_at - ctx.now) / 86_400.0).max(0.0))
            }
            _ => return None,
        };
        Some(v)
    }
}
