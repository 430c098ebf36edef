//! Tablet compression on a rotary press. Output follows turret speed; tablet weight follows
//! the feeder (hopper head) and is held by the weight control; hardness follows compression
//! force (and moisture, granule size, lubrication); ejection force rises as the punches wear
//! and with poor lubrication or humid air.

use model::Value;
use rand::rngs::SmallRng;

use super::motor_amps;
use crate::physics::{
    batch::{Batch, Phase, Product},
    machine::{Core, Env, Mode},
    stochastic::{approach, gauss, Noise},
    wear::Wear,
};

const STATIONS: f64 = 51.0;
const RATED_KW: f64 = 30.0;
const HOPPER_KG: f64 = 60.0;
const SETUP_S: f64 = 900.0;
const FINISH_S: f64 = 600.0;
/// Tablets made during set-up go to waste.
const SETUP_RPM: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Setup,
    Run,
    Finish,
    Empty,
}

#[derive(Debug, Clone)]
pub(crate) struct Compression {
    stage: Stage,
    elapsed: f64,
    turret_rpm: f64,
    consumed_kg: f64,
    available_kg: f64,
    hopper_pct: f64,
    /// Slow relative deviation of fill weight (feeder, density) the weight control fights.
    drift: f64,
    force: f64,
    pre_force: f64,
    weight_mg: f64,
    target_mg: f64,
    weight_rsd: f64,
    /// Mean weight deviation from target at the last check, %.
    deviation: f64,
    hardness: f64,
    thickness: f64,
    ejection: f64,
    fill_depth: f64,
    die_temp: f64,
    punch_compressions: f64,
    kw: f64,
    lot: String,
    product: &'static Product,
}

impl Compression {
    pub(crate) fn new(product: &'static Product, wear: &Wear, room_temp: f64) -> Self {
        let tooling_life = crate::physics::machine::Kind::Compression
            .rating()
            .tooling_life;
        Compression {
            stage: Stage::Empty,
            elapsed: 0.0,
            turret_rpm: 0.0,
            consumed_kg: 0.0,
            available_kg: 0.0,
            hopper_pct: 0.0,
            drift: 0.0,
            force: 0.0,
            pre_force: 0.0,
            weight_mg: product.tablet_mg,
            target_mg: product.tablet_mg,
            weight_rsd: 0.8,
            deviation: 0.0,
            hardness: product.hardness_n,
            thickness: product.thickness_mm,
            ejection: 0.0,
            fill_depth: product.sp(Phase::Compression, "fill_depth_sp"),
            die_temp: room_temp,
            punch_compressions: (wear.tooling * tooling_life).floor(),
            kw: 0.0,
            lot: String::new(),
            product,
        }
    }

    pub(crate) fn start(&mut self, batch: &mut Batch) {
        self.stage = Stage::Setup;
        self.elapsed = 0.0;
        self.consumed_kg = 0.0;
        self.available_kg = batch.record.blend_kg * 0.995;
        // The record starts at nominal values; from here on it counts what is pressed.
        batch.record.tablets_good = 0.0;
        self.hopper_pct = 85.0;
        self.drift = 0.0;
        self.lot = batch.id.clone();
        self.product = batch.product;
    }

    pub(crate) fn new_punches(&mut self) {
        self.punch_compressions = 0.0;
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
        let target_rpm = match (running, self.stage) {
            (true, Stage::Setup) => SETUP_RPM,
            (true, Stage::Run) => core.sp.get("turret_speed_sp"),
            _ => 0.0,
        };
        self.turret_rpm = approach(self.turret_rpm, target_rpm, 40.0, dt);
        let pressing = self.turret_rpm > 0.5;
        self.target_mg = core.sp.get("target_weight_sp").max(1.0);
        if pressing {
            self.press(core, env, batch.as_deref(), rng);
        } else {
            self.force = 0.0;
            self.pre_force = 0.0;
            self.ejection = 0.0;
        }
        self.kw = if pressing {
            2.5 + 0.07 * self.turret_rpm + 0.22 * self.force
        } else {
            0.0
        };
        core.turning = pressing;
        core.load = self.kw / RATED_KW;
        core.power_kw = self.kw + 0.8;
        core.dust = if pressing { 6.0e4 } else { 0.0 };
        self.die_temp = approach(
            self.die_temp,
            env.room_temp
                + if pressing {
                    5.0 * self.turret_rpm / 60.0 + 4.0 * core.wear.bearing
                } else {
                    0.0
                },
            900.0,
            dt,
        );

        let Some(batch) = batch.filter(|_| running) else {
            return false;
        };
        self.elapsed += dt;
        let tablets = STATIONS * self.turret_rpm * dt / 60.0;
        let kg = tablets * self.weight_mg / 1e6;
        self.punch_compressions += self.turret_rpm * dt / 60.0;
        core.tooling_use = self.turret_rpm * dt / 60.0;
        match self.stage {
            Stage::Setup => {
                // Set-up tablets are weighed, tested and discarded.
                core.reject += tablets;
                self.consumed_kg += kg;
                batch.progress = 0.02 * (self.elapsed / SETUP_S).min(1.0);
                if self.elapsed >= SETUP_S {
                    self.next(Stage::Run);
                }
            }
            Stage::Run => {
                let reject_share = 0.001
                    + 0.004 * (self.weight_rsd - 1.0).max(0.0)
                    + 0.01 * core.wear.tooling.powi(2);
                core.good += tablets * (1.0 - reject_share);
                core.reject += tablets * reject_share;
                self.consumed_kg += kg;
                self.hopper_pct -= kg / HOPPER_KG * 100.0;
                if self.hopper_pct < 30.0 {
                    self.hopper_pct = 85.0;
                }
                let r = &mut batch.record;
                r.tablets_good += tablets * (1.0 - reject_share);
                r.force.add(self.force, tablets);
                r.hardness.add(self.hardness, tablets);
                r.weight_rsd.add(self.weight_rsd, tablets);
                batch.progress =
                    0.02 + 0.95 * (self.consumed_kg / self.available_kg.max(1.0)).min(1.0);
                if self.consumed_kg >= self.available_kg {
                    self.next(Stage::Finish);
                }
            }
            Stage::Finish => {
                self.hopper_pct = approach(self.hopper_pct, 0.0, 60.0, dt);
                batch.progress = 0.97 + 0.03 * (self.elapsed / FINISH_S).min(1.0);
                if self.elapsed >= FINISH_S {
                    self.next(Stage::Empty);
                    return true;
                }
            }
            Stage::Empty => return true,
        }
        false
    }

    /// Process values of a turning press, from its set-points, the granule and the tooling.
    fn press(&mut self, core: &Core, env: &Env<'_>, batch: Option<&Batch>, rng: &mut SmallRng) {
        let dt = env.dt;
        let p = self.product;
        let (lod, d50, fines, lubrication) = match batch {
            Some(b) => (
                b.record.lod,
                b.record.d50,
                b.record.fines,
                b.record.lubrication_ratio,
            ),
            None => (2.0, 280.0, 15.0, 1.0),
        };
        let force_sp = core.sp.get("compression_force_sp");
        let force_ref = p.sp(Phase::Compression, "compression_force_sp").max(1.0);
        // Hopper head and granule density drift the fill; the weight control pulls it back.
        let head = 0.004 * (self.hopper_pct - 60.0) / 60.0;
        self.drift =
            approach(self.drift, head, 300.0, dt) + gauss(rng, 0.0004) * (dt / 10.0).sqrt();
        self.drift = self.drift.clamp(-0.05, 0.05);
        self.weight_mg = self.target_mg * (1.0 + self.drift);
        self.deviation = 100.0 * self.drift;
        self.fill_depth = core.sp.get("fill_depth_sp") * (1.0 - 0.8 * self.drift);
        self.force = force_sp * (1.0 + 2.5 * self.drift);
        self.pre_force = core.sp.get("precompression_force_sp");
        let tooling = core.wear.tooling;
        self.weight_rsd = (0.55
            + 0.006 * (self.turret_rpm - 50.0).max(0.0)
            + 0.03 * (fines - 15.0).max(0.0)
            + 0.002 * (d50 - 300.0).max(0.0)
            + 0.6 * tooling * tooling)
            .max(0.2);
        let force_ratio = (self.force / force_ref).max(0.05);
        self.hardness = p.hardness_n
            * force_ratio.powf(0.8)
            * (1.0 + 0.06 * (lod - p.sp(Phase::Drying, "lod_endpoint_sp")))
            * (1.0 - 0.0008 * (d50 - 280.0))
            * (1.0 - 0.1 * (lubrication - 1.0));
        self.thickness = p.thickness_mm * force_ratio.powf(-0.12) * (self.weight_mg / p.tablet_mg);
        self.ejection = p.ejection_n
            * force_ratio.sqrt()
            * (1.0 + 1.3 * tooling.powf(1.5))
            * (1.0 + 0.004 * (env.room_rh - 45.0))
            * lubrication.max(0.2).powf(-0.25);
    }

    fn next(&mut self, stage: Stage) {
        self.stage = stage;
        self.elapsed = 0.0;
    }

    pub(crate) fn read(&self, id: &str, n: &mut Noise) -> Option<Value> {
        let pressing = self.turret_rpm > 0.5;
        let sensor = |n: &mut Noise, x: f64, rel: f64, floor: f64| {
            if pressing {
                n.rel(x, rel).max(0.0)
            } else {
                n.add(0.0, floor).abs()
            }
        };
        let v = match id {
            "turret_speed" => Value::Float(n.add(self.turret_rpm, 0.05).max(0.0)),
            "output_rate" => Value::Float(STATIONS * self.turret_rpm * 60.0),
            "main_compression_force" => Value::Float(sensor(n, self.force, 0.012, 0.02)),
            "pre_compression_force" => Value::Float(sensor(n, self.pre_force, 0.02, 0.01)),
            "ejection_force" => Value::Float(sensor(n, self.ejection, 0.02, 1.0)),
            // At-line measurements hold their last value while the press stands.
            "tablet_weight" => Value::Float(if pressing {
                n.rel(self.weight_mg, self.weight_rsd / 100.0 / 10f64.sqrt())
            } else {
                self.weight_mg
            }),
            "weight_deviation" => Value::Float(self.deviation),
            "weight_rsd" => Value::Float(if pressing {
                n.rel(self.weight_rsd, 0.05)
            } else {
                self.weight_rsd
            }),
            "fill_depth" => Value::Float(self.fill_depth),
            "motor_current" => Value::Float(if pressing {
                n.add(5.0 + motor_amps(self.kw), 0.2)
            } else {
                0.0
            }),
            "die_table_temp" => Value::Float(n.add(self.die_temp, 0.1)),
            "punch_compressions" => Value::Int(self.punch_compressions.floor() as i64),
            "lot_id" => Value::Text(self.lot.clone()),
            "hopper_level" => Value::Float(n.add(self.hopper_pct, 0.3).clamp(0.0, 100.0)),
            "tablet_hardness" => Value::Float(if pressing {
                n.rel(self.hardness, 0.02)
            } else {
                self.hardness
            }),
            "tablet_thickness" => Value::Float(if pressing {
                n.rel(self.thickness, 0.004)
            } else {
                self.thickness
            }),
            "material_consumed" => Value::Float(self.consumed_kg),
            _ => return None,
        };
        Some(v)
    }
}
