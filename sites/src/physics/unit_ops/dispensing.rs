//! Dispensing: the batch's materials weighed out container by container under a downflow
//! booth. The API comes first, potency-compensated; a weighing outside tolerance is
//! rejected and repeated. The booth fan runs round the clock and loads its HEPA filter.

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, BatchRecord, Product},
    machine::{Core, Env, Mode, PackMl, ReadCtx},
    stochastic::{approach, gauss, uniform, Noise},
};

const CONTAINER_KG: f64 = 25.0;
const FAN_RPM: f64 = 1800.0;
const FAN_KW: f64 = 7.5;
const EXCIPIENTS: [&str; 4] = ["EXC-MCC102", "EXC-LAC200", "EXC-PVPK30", "EXC-CCS"];

#[derive(Debug, Clone)]
pub(crate) struct Dispensing {
    fan_rpm: f64,
    scale_kg: f64,
    weighings: u32,
    done: u32,
    api_weighings: u32,
    container_kg: f64,
    /// Time into the current weighing and how long it takes, s.
    elapsed: f64,
    duration: f64,
    dispensed_kg: f64,
    /// Sum over API weighings of (actual / target) / number of API weighings.
    api_ratio: f64,
    deviation: f64,
    material: String,
    api: &'static str,
}

impl Dispensing {
    pub(crate) fn new(product: &Product) -> Self {
        Dispensing {
            fan_rpm: FAN_RPM,
            scale_kg: 0.0,
            weighings: 0,
            done: 0,
            api_weighings: 0,
            container_kg: CONTAINER_KG,
            elapsed: 0.0,
            duration: 100.0,
            dispensed_kg: 0.0,
            api_ratio: 0.0,
            deviation: 0.0,
            material: format!("API-{}", product.api),
            api: product.api,
        }
    }

    pub(crate) fn start(&mut self, core: &Core, batch: &mut Batch) {
        let target = core.sp.get("dispense_target_sp").max(1.0);
        // A client may have changed the quantity after the recipe download.
        if (target - batch.size_kg).abs() > 1e-9 {
            batch.size_kg = target;
            batch.record = BatchRecord::nominal(batch.product, target);
        }
        self.weighings = (target / CONTAINER_KG).ceil().max(1.0) as u32;
        self.api_weighings = ((f64::from(self.weighings) * batch.product.api_fraction).round()
            as u32)
            .clamp(1, self.weighings);
        self.container_kg = target / f64::from(self.weighings);
        self.done = 0;
        self.elapsed = 0.0;
        self.dispensed_kg = 0.0;
        self.api_ratio = 0.0;
        self.api = batch.product.api;
        self.material = format!("API-{}", self.api);
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
        // The booth keeps its downflow round the clock; only maintenance switches it off.
        let fan_target = match core.state {
            PackMl::Stopped | PackMl::Aborted => 0.0,
            _ => FAN_RPM,
        };
        self.fan_rpm = approach(self.fan_rpm, fan_target, 20.0, dt);
        let speed = self.fan_rpm / FAN_RPM;
        core.turning = self.fan_rpm > 10.0;
        core.load = speed.powi(3) * (1.0 + 0.3 * core.wear.filter) * 0.8;
        core.power_kw = 0.4 + FAN_KW * core.load;
        core.filter_hours = dt / 3600.0 * speed;

        let mut done = false;
        if let (Mode::Run, Some(batch)) = (mode, batch) {
            core.dust = 3.0e3;
            self.elapsed += dt;
            self.scale_kg = self.container_kg * (self.elapsed / (0.75 * self.duration)).min(1.0);
            if self.elapsed >= self.duration {
                self.finish_weighing(core, batch, rng);
            }
            batch.progress = f64::from(self.done) / f64::from(self.weighings.max(1));
            if self.done >= self.weighings {
                batch.record.dispensed_kg = self.dispensed_kg;
                batch.record.api_ratio = self.api_ratio;
                done = true;
            }
        } else if mode == Mode::Off {
            self.scale_kg = approach(self.scale_kg, 0.0, 5.0, dt);
        }
        done
    }

    fn finish_weighing(&mut self, core: &mut Core, batch: &mut Batch, rng: &mut SmallRng) {
        // Air turbulence from a worn fan disturbs the balance.
        let deviation = gauss(rng, 0.10 + 0.15 * core.wear.bearing);
        let tolerance = core.sp.get("weighing_tolerance_sp");
        let is_api = self.done < self.api_weighings;
        if deviation.abs() > tolerance {
            core.reject += 1.0;
        } else {
            core.good += 1.0;
            self.done += 1;
            let mass = if is_api {
                // Potency compensation: weigh more of a weaker lot.
                self.container_kg * 100.0 / batch.potency_coa
            } else {
                self.container_kg
            };
            self.dispensed_kg += mass * (1.0 + deviation / 100.0);
            if is_api {
                self.api_ratio += (1.0 + deviation / 100.0) / f64::from(self.api_weighings);
            }
        }
        self.deviation = deviation;
        self.elapsed = 0.0;
        self.duration = uniform(rng, 80.0, 130.0);
        self.scale_kg = 0.0;
        self.material = if self.done < self.api_weighings {
            format!("API-{}", self.api)
        } else {
            let i = (self.done - self.api_weighings) as usize % EXCIPIENTS.len();
            EXCIPIENTS[i].to_string()
        };
    }

    pub(crate) fn read(
        &self,
        id: &str,
        core: &Core,
        ctx: &ReadCtx<'_>,
        n: &mut Noise,
    ) -> Option<Value> {
        let speed = self.fan_rpm / FAN_RPM;
        let filter = core.wear.filter;
        let v = match id {
            "downflow_velocity" => {
                // A loaded filter lets less air through: below spec shortly before renewal.
                Value::Float(n.add(0.47 * speed * (1.0 - 0.28 * filter), 0.004).max(0.0))
            }
            "fan_speed" => Value::Float(n.add(self.fan_rpm, 2.0).max(0.0)),
            "fan_motor_current" => Value::Float(if core.turning {
                n.add(1.2 + motor_amps(core.power_kw - 0.4), 0.05)
            } else {
                0.0
            }),
            "hepa_filter_dp" => Value::Float(
                n.add(180.0 * (1.0 + 1.2 * filter) * speed * speed, 1.0)
                    .max(0.0),
            ),
            "scale_weight" => Value::Float(n.add(self.scale_kg, 0.005).max(0.0)),
            "lot_id" => Value::Text(ctx.materials.api.lot.id.clone()),
            "material_code" => Value::Text(self.material.clone()),
            "api_potency" => Value::Float(ctx.materials.api.potency_coa),
            "quantity_dispensed" => Value::Float(self.dispensed_kg),
            "weighing_deviation" => Value::Float(self.deviation),
            "lot_expiry_days" => Value::Float(ctx.materials.api.lot.days_left(ctx.now)),
            _ => return None,
        };
        Some(v)
    }
}
