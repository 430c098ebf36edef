//! Fluid-bed drying: the wet granule is fluidised by hot, conditioned air until its loss on
//! drying (LOD) reaches the end-point. LOD falls exponentially towards the equilibrium
//! moisture of the inlet air; the bed stays near the wet-bulb temperature while there is
//! free water and heats up as the granule dries. Fines load the filter bags.

use model::Value;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, Phase, Product},
    machine::{Core, Env, Mode},
    stochastic::{approach, Noise},
};

const FAN_RATED_KW: f64 = 55.0;
const FAN_RATED_FLOW: f64 = 12_000.0;
const FAN_RATED_RPM: f64 = 2950.0;
const LOAD_S: f64 = 300.0;
const COOL_S: f64 = 360.0;
const DISCHARGE_S: f64 = 240.0;
/// Drying rate constant at 65 °C inlet and 7 000 m³/h for a 600 kg batch, per second.
const RATE_REF: f64 = 0.065 / 60.0;
/// Bag shaking interval: the dust cake on the filter is knocked off this often.
const SHAKE_S: f64 = 480.0;
const DISTRIBUTOR_AREA_M2: f64 = 1.5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Load,
    Dry,
    Cool,
    Discharge,
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct Drying {
    stage: Stage,
    elapsed: f64,
    /// True loss on drying of the granule in the container, %.
    lod: f64,
    initial_lod: f64,
    /// Last NIR reading (held when the probe sees no product).
    lod_reading: f64,
    dry_mass: f64,
    initial_load: f64,
    inlet_temp: f64,
    outlet_temp: f64,
    product_temp: f64,
    air_flow: f64,
    dew_point: f64,
    steam_valve: f64,
    cake_pa: f64,
    since_shake: f64,
    drying_s: f64,
    removed_kg: f64,
    lot: String,
}

impl Drying {
    pub(crate) fn new(product: &Product, room_temp: f64) -> Self {
        let lod = product.sp(Phase::Drying, "lod_endpoint_sp");
        Drying {
            stage: Stage::Empty,
            elapsed: 0.0,
            lod,
            initial_lod: lod,
            lod_reading: lod,
            dry_mass: 0.0,
            initial_load: 0.0,
            inlet_temp: room_temp,
            outlet_temp: room_temp,
            product_temp: room_temp,
            air_flow: 0.0,
            dew_point: 8.0,
            steam_valve: 0.0,
            cake_pa: 0.0,
            since_shake: 0.0,
            drying_s: 0.0,
            removed_kg: 0.0,
            lot: String::new(),
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch) {
        let r = &batch.record;
        self.stage = Stage::Load;
        self.elapsed = 0.0;
        self.lod = r.wet_moisture;
        self.initial_lod = r.wet_moisture;
        self.dry_mass = r.dispensed_kg * 0.97 + r.binder_kg * 0.1;
        self.initial_load = self.load_kg();
        self.drying_s = 0.0;
        self.removed_kg = 0.0;
        self.lot = batch.id.clone();
    }

    fn load_kg(&self) -> f64 {
        match self.stage {
            Stage::Empty => 0.0,
            _ => self.dry_mass / (1.0 - self.lod.clamp(0.0, 90.0) / 100.0),
        }
    }

    pub(crate) fn step(
        &mut self,
        core: &mut Core,
        mode: Mode,
        batch: Option<&mut Batch>,
        env: &Env<'_>,
    ) -> bool {
        let dt = env.dt;
        self.dew_point = env.dew_point;
        let flow_sp = core.sp.get("air_flow_sp");
        let inlet_sp = core.sp.get("inlet_air_temp_sp");
        let running = mode == Mode::Run && batch.is_some();
        let (flow, inlet, rate_share) = match (running, self.stage) {
            (true, Stage::Load) => (flow_sp, inlet_sp, 0.3),
            (true, Stage::Dry) => (flow_sp, inlet_sp, 1.0),
            (true, Stage::Cool) => (0.8 * flow_sp, env.room_temp + 3.0, 0.2),
            (true, Stage::Discharge) => (0.3 * flow_sp, env.room_temp, 0.0),
            _ => (0.0, env.room_temp, 0.0),
        };
        self.air_flow = approach(self.air_flow, flow, 30.0, dt);
        let heat_tau = if running { 180.0 } else { 900.0 };
        self.inlet_temp = approach(self.inlet_temp, inlet, heat_tau, dt);
        self.steam_valve = if running && inlet > env.room_temp + 5.0 {
            (1.6 * (inlet - env.room_temp) * self.air_flow / 7000.0).clamp(0.0, 100.0)
        } else {
            0.0
        };

        // Drying kinetics (falling rate): exponential approach to equilibrium moisture.
        let equilibrium = (0.8 + 0.04 * self.dew_point).max(0.4);
        let wet_bulb = self.dew_point + (self.inlet_temp - self.dew_point) * 0.33;
        if rate_share > 0.0 {
            let k = RATE_REF
                * ((self.inlet_temp - wet_bulb) / 35.0).max(0.0)
                * (self.air_flow / 7000.0).max(0.0).powf(0.8)
                * (600.0 / self.dry_mass.max(50.0)).powf(0.3)
                * rate_share;
            self.lod = equilibrium + (self.lod - equilibrium) * (-k * dt).exp();
        }
        if self.stage != Stage::Empty {
            self.removed_kg = (self.initial_load - self.load_kg()).max(0.0);
        }
        let wetness =
            ((self.lod - equilibrium) / (self.initial_lod - equilibrium).max(0.1)).clamp(0.0, 1.0);
        let bed_target = if self.air_flow > 500.0 && self.stage != Stage::Empty {
            wet_bulb + (self.inlet_temp - 4.0 - wet_bulb) * (1.0 - wetness).powi(3)
        } else {
            env.room_temp
        };
        self.product_temp = approach(self.product_temp, bed_target, 60.0, dt);
        self.outlet_temp = approach(
            self.outlet_temp,
            if self.air_flow > 500.0 {
                self.product_temp + 1.5
            } else {
                env.room_temp
            },
            90.0,
            dt,
        );

        // Fines build a cake on the bags until the shaker knocks it off.
        if running && matches!(self.stage, Stage::Load | Stage::Dry) {
            self.cake_pa += 1.0 * dt * self.air_flow / 7000.0;
            self.since_shake += dt;
            if self.since_shake >= SHAKE_S {
                self.cake_pa = 0.0;
                self.since_shake = 0.0;
            }
            core.filter_hours = dt / 3600.0;
        }

        let fan_kw = FAN_RATED_KW
            * (self.air_flow / FAN_RATED_FLOW).powi(3)
            * (1.0 + 0.3 * core.wear.filter);
        core.turning = self.air_flow > 50.0;
        core.load = fan_kw / FAN_RATED_KW;
        core.power_kw = fan_kw + if core.turning { 2.0 } else { 0.5 };
        core.dust = match (running, self.stage) {
            (true, Stage::Load | Stage::Discharge) => 6.0e4,
            (true, _) => 1.0e4,
            _ => 0.0,
        };

        let Some(batch) = batch.filter(|_| running) else {
            return false;
        };
        self.elapsed += dt;
        if self.stage == Stage::Dry || self.stage == Stage::Load {
            self.lod_reading = self.lod;
        }
        let end_point = core.sp.get("lod_endpoint_sp");
        let planned = (self.initial_lod - end_point).max(0.1);
        match self.stage {
            Stage::Load => {
                batch.progress = 0.05 * (self.elapsed / LOAD_S).min(1.0);
                if self.elapsed >= LOAD_S {
                    self.next(Stage::Dry);
                }
            }
            Stage::Dry => {
                self.drying_s += dt;
                batch.record.drying_inlet_temp.add(self.inlet_temp, dt);
                batch.progress =
                    0.05 + 0.8 * ((self.initial_lod - self.lod) / planned).clamp(0.0, 1.0);
                let max_time = core.sp.get("max_drying_time_sp") * 60.0;
                if self.lod <= end_point || (max_time > 0.0 && self.drying_s >= max_time) {
                    self.next(Stage::Cool);
                }
            }
            Stage::Cool => {
                batch.progress = 0.85 + 0.1 * (self.elapsed / COOL_S).min(1.0);
                if self.elapsed >= COOL_S {
                    self.next(Stage::Discharge);
                }
            }
            Stage::Discharge => {
                batch.progress = 0.95 + 0.05 * (self.elapsed / DISCHARGE_S).min(1.0);
                if self.elapsed >= DISCHARGE_S {
                    let r = &mut batch.record;
                    r.lod = self.lod;
                    r.granule_kg = self.load_kg();
                    r.drying_min = self.drying_s / 60.0;
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

    /// True LOD of the granule in the dryer (for tests: the reading carries NIR noise).
    #[cfg(test)]
    pub(crate) fn lod(&self) -> f64 {
        self.lod
    }

    pub(crate) fn read(&self, id: &str, core: &Core, n: &mut Noise) -> Option<Value> {
        let flowing = self.air_flow > 50.0;
        let flow_ratio = self.air_flow / 7000.0;
        let v = match id {
            "inlet_air_temp" => Value::Float(n.add(self.inlet_temp, 0.15)),
            "outlet_air_temp" => Value::Float(n.add(self.outlet_temp, 0.15)),
            "product_temp" => Value::Float(n.add(self.product_temp, 0.1)),
            "air_flow" => Value::Float(n.add(self.air_flow, 15.0).max(0.0)),
            "inlet_air_dew_point" => Value::Float(n.add(self.dew_point, 0.1)),
            "fan_speed" => Value::Float(
                n.add(FAN_RATED_RPM * self.air_flow / FAN_RATED_FLOW, 2.0)
                    .max(0.0),
            ),
            "fan_motor_current" => Value::Float(if flowing {
                n.add(4.0 + motor_amps(core.power_kw - 2.0), 0.2)
            } else {
                0.0
            }),
            "steam_valve" => Value::Float(n.add(self.steam_valve, 0.3).clamp(0.0, 100.0)),
            "filter_dp" => {
                let bags = (300.0 + 900.0 * core.wear.filter) * flow_ratio.max(0.0).powf(1.5);
                Value::Float(
                    n.add(bags + self.cake_pa * flow_ratio.min(1.5), 4.0)
                        .max(0.0),
                )
            }
            "bed_dp" => {
                let bed = if flowing {
                    self.load_kg() * 9.81 / DISTRIBUTOR_AREA_M2
                } else {
                    0.0
                };
                Value::Float(n.add(bed + 250.0 * flow_ratio * flow_ratio, 8.0).max(0.0))
            }
            "lot_id" => Value::Text(self.lot.clone()),
            "granule_lod" => Value::Float(
                if flowing && matches!(self.stage, Stage::Load | Stage::Dry) {
                    n.add(self.lod, 0.03).max(0.0)
                } else {
                    self.lod_reading
                },
            ),
            "product_load" => Value::Float(self.load_kg()),
            "water_removed" => Value::Float(self.removed_kg),
            _ => return None,
        };
        Some(v)
    }
}
