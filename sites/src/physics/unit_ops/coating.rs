//! Film coating in a perforated pan: load, pre-heat, spray to the target weight gain, dry,
//! cool, discharge. The spray evaporates in the pan, so exhaust and bed temperatures drop
//! with the spray rate; nozzles slowly build deposits over a batch.

use model::Value;

use super::motor_amps;
use crate::physics::{
    batch::Batch,
    machine::{Core, Env, Mode, ReadCtx},
    stochastic::{approach, Noise},
};

const AIR_FLOW: f64 = 5500.0;
const FAN_RATED_KW: f64 = 30.0;
const FAN_RATED_FLOW: f64 = 8000.0;
const LOAD_S: f64 = 600.0;
const PREHEAT_S: f64 = 720.0;
const DRY_S: f64 = 600.0;
const COOL_S: f64 = 480.0;
const DISCHARGE_S: f64 = 600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Load,
    Preheat,
    Spray,
    Dry,
    Cool,
    Discharge,
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct Coating {
    stage: Stage,
    elapsed: f64,
    pan_rpm: f64,
    air_flow: f64,
    inlet_temp: f64,
    exhaust_temp: f64,
    bed_temp: f64,
    spray_rate: f64,
    /// Deposits on the spray nozzles, 0 clean; cleaned between batches.
    clog: f64,
    suspension_kg: f64,
    core_kg: f64,
    tablets_in: f64,
    weight_gain: f64,
    discharged: f64,
    fan_kw: f64,
    pan_kw: f64,
    lot: String,
}

impl Coating {
    pub(crate) fn new(room_temp: f64) -> Self {
        Coating {
            stage: Stage::Empty,
            elapsed: 0.0,
            pan_rpm: 0.0,
            air_flow: 0.0,
            inlet_temp: room_temp,
            exhaust_temp: room_temp,
            bed_temp: room_temp,
            spray_rate: 0.0,
            clog: 0.0,
            suspension_kg: 0.0,
            core_kg: 0.0,
            tablets_in: 0.0,
            weight_gain: 0.0,
            discharged: 0.0,
            fan_kw: 0.0,
            pan_kw: 0.0,
            lot: String::new(),
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch) {
        self.stage = Stage::Load;
        self.elapsed = 0.0;
        self.tablets_in = batch.record.tablets_good;
        self.core_kg = self.tablets_in * batch.product.tablet_mg / 1e6;
        self.suspension_kg = 0.0;
        self.weight_gain = 0.0;
        self.discharged = 0.0;
        self.clog = 0.0;
        self.lot = batch.id.clone();
    }

    pub(crate) fn step(
        &mut self,
        core: &mut Core,
        mode: Mode,
        batch: Option<&mut Batch>,
        env: &Env<'_>,
    ) -> bool {
        let dt = env.dt;
        let running = mode == Mode::Run && batch.is_some();
        let inlet_sp = core.sp.get("inlet_air_temp_sp");
        let spraying = running && self.stage == Stage::Spray;
        let (flow, inlet, pan) = match (running, self.stage) {
            (true, Stage::Load | Stage::Discharge) => (2000.0, env.room_temp, 6.0),
            (true, Stage::Preheat | Stage::Dry) => (AIR_FLOW, inlet_sp, 3.0),
            (true, Stage::Spray) => (AIR_FLOW, inlet_sp, core.sp.get("pan_speed_sp")),
            (true, Stage::Cool) => (AIR_FLOW, env.room_temp + 5.0, 3.0),
            _ => (0.0, env.room_temp, 0.0),
        };
        self.air_flow = approach(self.air_flow, flow, 30.0, dt);
        self.inlet_temp = approach(
            self.inlet_temp,
            inlet,
            if running { 180.0 } else { 900.0 },
            dt,
        );
        self.pan_rpm = approach(self.pan_rpm, pan, 10.0, dt);
        self.spray_rate = if spraying {
            core.sp.get("spray_rate_sp").max(0.0) * (1.0 - 0.3 * self.clog)
        } else {
            0.0
        };
        // Evaporation cools the exhaust in proportion to the water sprayed per air flow.
        let flow_share = (AIR_FLOW / self.air_flow.max(500.0)).min(4.0);
        let exhaust_target = if self.air_flow > 500.0 {
            if spraying {
                self.inlet_temp - 0.022 * self.spray_rate * flow_share
            } else {
                self.inlet_temp - 12.0
            }
        } else {
            env.room_temp
        };
        self.exhaust_temp = approach(self.exhaust_temp, exhaust_target, 120.0, dt);
        self.bed_temp = approach(self.bed_temp, self.exhaust_temp - 2.0, 180.0, dt);

        self.fan_kw = FAN_RATED_KW * (self.air_flow / FAN_RATED_FLOW).powi(3);
        self.pan_kw = 0.4 * self.pan_rpm;
        // The inlet air heater is electric: the biggest consumer of the coater.
        let heater_kw = (1.2 * self.air_flow / 3600.0 * (self.inlet_temp - env.room_temp)).max(0.0);
        core.turning = self.pan_rpm > 0.1;
        core.load = self.pan_kw / 5.0;
        core.power_kw = self.fan_kw + self.pan_kw + heater_kw / 0.95 + 1.5;
        core.dust = match (running, self.stage) {
            (true, Stage::Load | Stage::Discharge) => 3.0e4,
            (true, _) => 5.0e3,
            _ => 0.0,
        };

        let Some(batch) = batch.filter(|_| running) else {
            return false;
        };
        self.elapsed += dt;
        let target_gain = core.sp.get("target_weight_gain_sp");
        match self.stage {
            Stage::Load => {
                batch.progress = 0.03 * (self.elapsed / LOAD_S).min(1.0);
                if self.elapsed >= LOAD_S {
                    self.next(Stage::Preheat);
                }
            }
            Stage::Preheat => {
                batch.progress = 0.03 + 0.04 * (self.elapsed / PREHEAT_S).min(1.0);
                if self.elapsed >= PREHEAT_S {
                    self.next(Stage::Spray);
                }
            }
            Stage::Spray => {
                let solids = batch.product.suspension_solids_pct / 100.0;
                self.suspension_kg += self.spray_rate * dt / 60_000.0;
                self.clog = (self.clog + 0.05 * dt / 3600.0).min(1.0);
                self.weight_gain = 100.0 * self.suspension_kg * solids / self.core_kg.max(1.0);
                batch.progress = 0.07 + 0.8 * (self.weight_gain / target_gain.max(0.1)).min(1.0);
                if self.weight_gain >= target_gain {
                    self.next(Stage::Dry);
                }
            }
            Stage::Dry => {
                batch.progress = 0.87 + 0.04 * (self.elapsed / DRY_S).min(1.0);
                if self.elapsed >= DRY_S {
                    self.next(Stage::Cool);
                }
            }
            Stage::Cool => {
                batch.progress = 0.91 + 0.04 * (self.elapsed / COOL_S).min(1.0);
                if self.elapsed >= COOL_S {
                    self.next(Stage::Discharge);
                }
            }
            Stage::Discharge => {
                let share = (dt / DISCHARGE_S).min(1.0 - self.discharged);
                self.discharged += share;
                let reject_share = 0.0015 + 0.004 * (self.weight_gain - target_gain).abs();
                core.good += self.tablets_in * share * (1.0 - reject_share);
                core.reject += self.tablets_in * share * reject_share;
                batch.progress = 0.95 + 0.05 * self.discharged;
                if self.elapsed >= DISCHARGE_S {
                    let r = &mut batch.record;
                    r.weight_gain = self.weight_gain;
                    r.coated_good = self.tablets_in * (1.0 - reject_share);
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
        let spraying = self.spray_rate > 0.0;
        let atomizing = core.sp.get("atomization_pressure_sp") * (1.0 + 0.1 * self.clog);
        let v = match id {
            "pan_speed" => Value::Float(n.add(self.pan_rpm, 0.02).max(0.0)),
            "inlet_air_temp" => Value::Float(n.add(self.inlet_temp, 0.15)),
            "exhaust_air_temp" => Value::Float(n.add(self.exhaust_temp, 0.15)),
            "product_temp" => Value::Float(n.add(self.bed_temp, 0.2)),
            "air_flow" => Value::Float(n.add(self.air_flow, 10.0).max(0.0)),
            "pan_pressure" => Value::Float(if self.air_flow > 100.0 {
                n.add(-90.0 * self.air_flow / AIR_FLOW, 3.0)
            } else {
                n.add(-3.0, 0.5)
            }),
            "spray_rate" => Value::Float(if spraying {
                n.rel(self.spray_rate, 0.01)
            } else {
                0.0
            }),
            "spray_pressure" => Value::Float(if spraying {
                n.add(atomizing, 0.02)
            } else {
                n.add(0.0, 0.005).abs()
            }),
            "pattern_air_pressure" => Value::Float(if spraying {
                n.add(0.8 * atomizing, 0.02)
            } else {
                n.add(0.0, 0.005).abs()
            }),
            "fan_motor_current" => Value::Float(if self.air_flow > 100.0 {
                n.add(4.0 + motor_amps(self.fan_kw), 0.1)
            } else {
                0.0
            }),
            "pan_motor_current" => Value::Float(if self.pan_rpm > 0.1 {
                n.add(2.0 + motor_amps(self.pan_kw), 0.05)
            } else {
                0.0
            }),
            "lot_id" => Value::Text(self.lot.clone()),
            "suspension_lot_id" => Value::Text(ctx.materials.suspension.id.clone()),
            "suspension_used" => Value::Float(self.suspension_kg),
            "weight_gain" => Value::Float(self.weight_gain),
            "lot_expiry_days" => Value::Float(ctx.materials.suspension.days_left(ctx.now)),
            _ => return None,
        };
        Some(v)
    }
}
