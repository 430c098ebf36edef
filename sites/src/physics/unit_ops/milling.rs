//! Milling: the dried granule is sized through a conical screen. Particle size follows the
//! screen aperture, the rotor speed (faster: finer), the granule's moisture and the screen's
//! wear (worn holes pass coarser granules).

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, Product},
    machine::{Core, Env, Mode},
    stochastic::{approach, gauss, Noise},
};

const RATED_KW: f64 = 15.0;
const CLEAN_S: f64 = 300.0;

#[derive(Debug, Clone)]
pub(crate) struct Milling {
    rotor_rpm: f64,
    throughput: f64,
    milled_kg: f64,
    target_kg: f64,
    /// Lot-to-lot offset of the size distribution, µm.
    bias: f64,
    screen_mm: f64,
    d50: f64,
    d90: f64,
    fines: f64,
    product_temp: f64,
    cleaning: f64,
    lot: String,
}

impl Milling {
    pub(crate) fn new(product: &Product, room_temp: f64) -> Self {
        Milling {
            rotor_rpm: 0.0,
            throughput: 0.0,
            milled_kg: 0.0,
            target_kg: 0.0,
            bias: 0.0,
            screen_mm: product.screen_mm,
            d50: 280.0,
            d90: 680.0,
            fines: 15.0,
            product_temp: room_temp,
            cleaning: 0.0,
            lot: String::new(),
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch, rng: &mut SmallRng) {
        self.milled_kg = 0.0;
        self.target_kg = batch.record.granule_kg.max(1.0);
        self.bias = gauss(rng, 4.0);
        self.screen_mm = batch.product.screen_mm;
        self.cleaning = 0.0;
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
        let rotor_sp = core.sp.get("rotor_speed_sp");
        let running = mode == Mode::Run && batch.is_some() && self.milled_kg < self.target_kg;
        let cleaning = mode == Mode::Run && batch.is_some() && !running;
        self.rotor_rpm = approach(
            self.rotor_rpm,
            if running { rotor_sp } else { 0.0 },
            8.0,
            dt,
        );
        self.throughput = if running && self.rotor_rpm > 0.8 * rotor_sp {
            core.sp.get("feed_rate_sp").max(0.0)
        } else {
            0.0
        };
        let kw = if self.rotor_rpm > 1.0 {
            1.2 + 0.006 * self.throughput * (self.rotor_rpm / 1200.0).sqrt()
        } else {
            0.0
        };
        core.turning = self.rotor_rpm > 1.0;
        core.load = kw / RATED_KW;
        core.power_kw = kw + 0.3;
        self.product_temp = approach(
            self.product_temp,
            env.room_temp + if running { 2.5 * kw / 10.0 } else { 0.0 },
            300.0,
            dt,
        );

        let Some(batch) = batch.filter(|_| mode == Mode::Run) else {
            return false;
        };
        if running {
            let kg = self.throughput * dt / 3600.0;
            self.milled_kg = (self.milled_kg + kg).min(self.target_kg);
            core.tooling_use = kg;
            core.dust = 8.0e4;
            let r = &batch.record;
            let wear = core.wear.tooling;
            self.d50 = 280.0
                * self.screen_mm.powf(0.9)
                * (1200.0 / self.rotor_rpm.max(100.0)).powf(0.3)
                * (1.0 + 0.3 * wear)
                * (1.0 + 0.04 * (r.lod - 2.0))
                * (r.granule_d50.max(100.0) / 600.0).powf(0.2)
                + self.bias;
            self.d90 = self.d50 * (2.3 + 0.3 * wear);
            self.fines = (14.0
                * (self.rotor_rpm / 1200.0).max(0.1).powf(0.6)
                * (2.0 / r.lod.max(0.5)).powf(0.25)
                * (1.0 - 0.2 * wear))
                .clamp(0.0, 100.0);
            batch.progress = 0.95 * self.milled_kg / self.target_kg;
        }
        if cleaning {
            self.cleaning += dt;
            batch.progress = 0.95 + 0.05 * (self.cleaning / CLEAN_S).min(1.0);
            if self.cleaning >= CLEAN_S {
                let r = &mut batch.record;
                r.d50 = self.d50;
                r.fines = self.fines;
                r.milled_kg = self.milled_kg * 0.997;
                return true;
            }
        }
        false
    }

    pub(crate) fn read(&self, id: &str, core: &Core, n: &mut Noise) -> Option<Value> {
        let v = match id {
            "rotor_speed" => Value::Float(n.add(self.rotor_rpm, 2.0).max(0.0)),
            "motor_current" => Value::Float(if core.turning {
                n.add(2.5 + motor_amps(core.power_kw - 0.3), 0.1)
            } else {
                0.0
            }),
            "throughput" => Value::Float(n.rel(self.throughput, 0.02).max(0.0)),
            "screen_wear" => Value::Float((core.wear.tooling * 100.0).clamp(0.0, 100.0)),
            "product_temp" => Value::Float(n.add(self.product_temp, 0.1)),
            "lot_id" => Value::Text(self.lot.clone()),
            "particle_size_d50" => Value::Float(n.rel(self.d50, 0.01)),
            "particle_size_d90" => Value::Float(n.rel(self.d90, 0.015)),
            "fines_pct" => Value::Float(n.rel(self.fines, 0.02)),
            "material_consumed" => Value::Float(self.milled_kg),
            "screen_size" => Value::Float(self.screen_mm),
            _ => return None,
        };
        Some(v)
    }
}
