//! The eight unit operations of an oral-solid-dose line, one module each. A unit operation
//! holds the process state of its equipment, advances it while the line runs its phase,
//! records what matters for quality into the batch, and answers readings of its signals.

mod blending;
mod coating;
mod compression;
mod dispensing;
mod drying;
mod granulation;
mod milling;
mod packaging;

use model::Value;
use rand::rngs::SmallRng;

use super::{
    batch::{Batch, Product},
    machine::{Core, Env, Kind, Mode, ReadCtx},
    material::Materials,
    stochastic::Noise,
    wear::{Part, Wear},
};

pub(crate) use self::{
    blending::Blending, coating::Coating, compression::Compression, dispensing::Dispensing,
    drying::Drying, granulation::Granulation, milling::Milling, packaging::Packaging,
};

/// Current drawn by a three-phase 400 V motor delivering `kw` (cos φ 0.85), A.
pub(crate) fn motor_amps(kw: f64) -> f64 {
    kw.max(0.0) * 1000.0 / (3f64.sqrt() * 400.0 * 0.85)
}

#[derive(Debug, Clone)]
pub(crate) enum Unit {
    Dispensing(Dispensing),
    Granulation(Granulation),
    Drying(Drying),
    Milling(Milling),
    Blending(Blending),
    Compression(Compression),
    Coating(Coating),
    Packaging(Packaging),
}

impl Unit {
    pub(crate) fn new(
        kind: Kind,
        product: &'static Product,
        wear: &Wear,
        room_temp: f64,
        rng: &mut SmallRng,
    ) -> Unit {
        match kind {
            Kind::Dispensing => Unit::Dispensing(Dispensing::new(product)),
            Kind::Granulation => Unit::Granulation(Granulation::new(room_temp)),
            Kind::Drying => Unit::Drying(Drying::new(product, room_temp)),
            Kind::Milling => Unit::Milling(Milling::new(product, room_temp)),
            Kind::Blending => Unit::Blending(Blending::new(product)),
            Kind::Compression => Unit::Compression(Compression::new(product, wear, room_temp)),
            Kind::Coating => Unit::Coating(Coating::new(room_temp)),
            Kind::Packaging => Unit::Packaging(Packaging::new(product, wear, rng)),
        }
    }

    /// The batch reaches this unit's phase.
    pub(crate) fn start(&mut self, core: &Core, batch: &mut Batch, rng: &mut SmallRng) {
        match self {
            Unit::Dispensing(u) => u.start(core, batch),
            Unit::Granulation(u) => u.start(batch, rng),
            Unit::Drying(u) => u.start(batch),
            Unit::Milling(u) => u.start(batch, rng),
            Unit::Blending(u) => u.start(batch),
            Unit::Compression(u) => u.start(batch),
            Unit::Coating(u) => u.start(batch),
            Unit::Packaging(u) => u.start(batch),
        }
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
        // A unit can only run with the batch inside; without it, it stands.
        let (mode, batch) = match (mode, batch) {
            (Mode::Off, _) | (_, None) => (Mode::Off, None),
            (mode, Some(b)) => (mode, Some(b)),
        };
        match self {
            Unit::Dispensing(u) => u.step(core, mode, batch, env, rng),
            Unit::Granulation(u) => u.step(core, mode, batch, env, rng),
            Unit::Drying(u) => u.step(core, mode, batch, env),
            Unit::Milling(u) => u.step(core, mode, batch, env),
            Unit::Blending(u) => u.step(core, mode, batch, env, rng),
            Unit::Compression(u) => u.step(core, mode, batch, env, rng),
            Unit::Coating(u) => u.step(core, mode, batch, env),
            Unit::Packaging(u) => u.step(core, mode, batch, env, materials, rng),
        }
    }

    pub(crate) fn read(
        &self,
        id: &str,
        core: &Core,
        ctx: &ReadCtx<'_>,
        n: &mut Noise,
    ) -> Option<Value> {
        match self {
            Unit::Dispensing(u) => u.read(id, core, ctx, n),
            Unit::Granulation(u) => u.read(id, ctx, n),
            Unit::Drying(u) => u.read(id, core, n),
            Unit::Milling(u) => u.read(id, core, n),
            Unit::Blending(u) => u.read(id, ctx, n),
            Unit::Compression(u) => u.read(id, n),
            Unit::Coating(u) => u.read(id, core, ctx, n),
            Unit::Packaging(u) => u.read(id, core, ctx, n),
        }
    }

    /// Maintenance renewed a part; counters of the tooling start again.
    pub(crate) fn renewed(&mut self, what: Part) {
        match (self, what) {
            (Unit::Compression(u), Part::Tooling) => u.new_punches(),
            (Unit::Packaging(u), Part::Tooling) => u.new_sealing_tool(),
            _ => {}
        }
    }
}
