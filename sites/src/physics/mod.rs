//! The simulated plant: a deterministic physical-ish model of a whole site, with no OPC UA
//! in it. Shifts and operators, batches moving through the ISA-88 phases, material lots,
//! cleanroom environments following the outdoor climate, machines that wear — stepped by
//! simulated time and sampled into one value per signal of the site file.
//!
//! The same site, seed and start time give the same sequence of values, whatever the step
//! sizes (steps are cut into sub-steps of at most [`MAX_SUBSTEP`]) — as long as the steps
//! and samples come in the same order.

mod batch;
mod binding;
mod clock;
mod environment;
mod line;
mod machine;
mod material;
mod quality;
mod shift;
mod stochastic;
mod unit_ops;
mod wear;

#[cfg(test)]
mod tests;

use std::time::Duration;

use chrono::{DateTime, Utc};
use model::{Climate, DataType, Site, Value};
use rand::{rngs::SmallRng, SeedableRng};

pub use batch::Phase;
pub use machine::PackMl;
pub use quality::{
    Cqas, ASSAY_NOISE, CONTENT_UNIFORMITY_NOISE, DISSOLUTION_NOISE, IMPURITIES_NOISE,
};
pub use wear::{Maintenance, Part, WearEventKind, FAILURE, ONSET};

use binding::{coerce, number, Binding, Generic, Source};
use clock::Clock;
use environment::{Outdoor, Weather};
use line::{LineModel, SiteTraits, Slot};
use machine::ReadCtx;
use stochastic::{uniform, Noise};

/// Longest sub-step of the model, in simulated seconds.
pub const MAX_SUBSTEP: Duration = Duration::from_secs(10);

/// Simulated time the plant runs before its start, so that the lines are caught mid-batch
/// at different phases rather than all starting empty together.
const WARM_UP_S: f64 = 20.0 * 3600.0;
const WARM_UP_STEP_S: f64 = 30.0;

/// Why a client's write was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("no signal with index {0}")]
    UnknownSignal(usize),
    #[error("{signal} is not a set-point; only signals ending in `_sp` can be written")]
    NotWritable { signal: String },
    #[error("{signal}: `{value}` is not a number")]
    NotANumber { signal: String, value: String },
    #[error("{signal}: {value} is outside its range {low} .. {high}")]
    OutOfRange {
        signal: String,
        value: f64,
        low: f64,
        high: f64,
    },
}

/// The hidden degradation state of a unit, 0 (new) .. 1 (end of life): the ground truth
/// that predictions of remaining useful life can be scored against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    pub state: PackMl,
    pub bearing: f64,
    pub tooling: f64,
    pub filter: f64,
}

impl Health {
    /// The damage of one part.
    pub fn wear(&self, part: Part) -> f64 {
        match part {
            Part::Bearing => self.bearing,
            Part::Tooling => self.tooling,
            Part::Filter => self.filter,
        }
    }
}

/// An onset, failure or renewal of a unit's part, at simulated time `at` (ground truth of
/// maintenance predictions).
#[derive(Debug, Clone, PartialEq)]
pub struct WearEvent {
    pub line: String,
    pub equipment: String,
    pub part: Part,
    pub kind: WearEventKind,
    pub at: DateTime<Utc>,
}

/// A batch's released lab results beside their noise-free values.
#[derive(Debug, Clone, PartialEq)]
pub struct LabResult {
    pub line: String,
    pub batch_id: String,
    pub ended_at: DateTime<Utc>,
    pub published_at: DateTime<Utc>,
    pub measured: Cqas,
    pub expected: Cqas,
}

/// A whole site, simulated.
#[derive(Debug)]
pub struct Plant {
    clock: Clock,
    climate: Climate,
    weather: Weather,
    outdoor: Outdoor,
    rng: SmallRng,
    noise: Noise,
    lines: Vec<LineModel>,
    bindings: Vec<Binding>,
    values: Vec<Value>,
    /// Per signal: until when (clock seconds) its sensor is off line and reads no value.
    offline_until: Vec<f64>,
    /// Equipment id of every process unit, per line, in the line's machine order.
    machine_ids: Vec<Vec<String>>,
}

impl Plant {
    /// A plant for `site`, its simulated clock starting at `start`. Values follow
    /// `site.signals()` order.
    pub fn new(site: &Site, seed: u64, start: DateTime<Utc>) -> Plant {
        let mut rng = SmallRng::seed_from_u64(seed);
        let noise = Noise::new(SmallRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15));
        let mut clock = Clock::new(start);
        clock.now = -WARM_UP_S;
        let climate = site.climate.clone();
        let weather = Weather::new(&mut rng);
        let outdoor = weather.outdoor(&climate, &clock);
        // Humid air corrodes bearings and loads filters with hygroscopic dust.
        let humidity = (climate.mean_rh_pct - 70.0).clamp(-20.0, 20.0);
        let traits = SiteTraits {
            site_id: &site.id,
            wear_factor: 1.0 + 0.01 * humidity,
            dust_factor: 1.0 + 0.015 * humidity,
        };

        let mut lines = Vec::with_capacity(site.lines.len());
        let mut bindings = Vec::with_capacity(site.signal_count());
        let mut probe = Noise::new(SmallRng::seed_from_u64(0));
        let mut machine_ids = Vec::with_capacity(site.lines.len());
        for (li, line) in site.lines.iter().enumerate() {
            let first_start = clock.now + uniform(&mut rng, 0.0, 16.0 * 3600.0);
            let (model, slots) = LineModel::new(traits, li, line, &clock, first_start, &mut rng);
            let mut ids = vec![String::new(); model.machines.len()];
            for (equipment, slot) in line.equipment.iter().zip(&slots) {
                if let Slot::Machine(m) = *slot {
                    ids[m].clone_from(&equipment.id);
                }
            }
            machine_ids.push(ids);
            for (equipment, slot) in line.equipment.iter().zip(&slots) {
                for signal in &equipment.signals {
                    let known = match *slot {
                        Slot::Machine(m) => {
                            let ctx = ReadCtx {
                                now: clock.now,
                                materials: &model.materials,
                            };
                            model.machines[m]
                                .read(&signal.id, &ctx, &mut probe)
                                .map(|_| Source::Machine {
                                    line: li,
                                    machine: m,
                                })
                        }
                        Slot::Room(r) => model.rooms[r]
                            .read(&signal.id, clock.now, &mut probe)
                            .map(|_| Source::Room { line: li, room: r }),
                        Slot::Control => model
                            .read_control(&signal.id, clock.now)
                            .map(|_| Source::Control { line: li }),
                        Slot::Other => None,
                    };
                    bindings.push(Binding {
                        source: known
                            .unwrap_or_else(|| Source::Generic(Generic::new(signal, &mut rng))),
                        line: line.id.clone(),
                        equipment: equipment.id.clone(),
                        id: signal.id.clone(),
                        data_type: signal.data_type,
                        limits: signal.limits,
                        writable: signal.id.ends_with("_sp"),
                    });
                }
            }
            lines.push(model);
        }
        let values = bindings
            .iter()
            .map(|b| default_value(b.data_type))
            .collect();
        let offline_until = vec![f64::NEG_INFINITY; bindings.len()];
        let mut plant = Plant {
            clock,
            climate,
            weather,
            outdoor,
            rng,
            noise,
            lines,
            bindings,
            values,
            offline_until,
            machine_ids,
        };
        while plant.clock.now < -1e-9 {
            let dt = (-plant.clock.now).min(WARM_UP_STEP_S);
            plant.substep(dt);
        }
        plant.clock.now = 0.0;
        plant
    }

    /// Advances the plant by `dt` of simulated time.
    pub fn step(&mut self, dt: Duration) {
        let mut left = dt.as_secs_f64();
        let max = MAX_SUBSTEP.as_secs_f64();
        while left > 1e-9 {
            let h = left.min(max);
            self.substep(h);
            left -= h;
        }
    }

    fn substep(&mut self, dt: f64) {
        self.clock.now += dt;
        self.weather.step(dt, &mut self.rng);
        self.outdoor = self.weather.outdoor(&self.climate, &self.clock);
        for line in &mut self.lines {
            line.step(&self.clock, &self.outdoor, dt, &mut self.rng);
        }
    }

    /// The current value of every signal, in `site.signals()` order, each of its declared
    /// data type, with measurement noise.
    pub fn sample(&mut self) -> &[Value] {
        let now = self.clock.now;
        for (slot, b) in self.values.iter_mut().zip(&self.bindings) {
            let raw = match &b.source {
                Source::Machine { line, machine } => {
                    let line = &self.lines[*line];
                    let ctx = ReadCtx {
                        now,
                        materials: &line.materials,
                    };
                    line.machines[*machine].read(&b.id, &ctx, &mut self.noise)
                }
                Source::Room { line, room } => {
                    self.lines[*line].rooms[*room].read(&b.id, now, &mut self.noise)
                }
                Source::Control { line } => self.lines[*line].read_control(&b.id, now),
                Source::Generic(g) => Some(g.value(now, b.data_type, &mut self.noise)),
            };
            *slot = coerce(
                raw.unwrap_or_else(|| default_value(b.data_type)),
                b.data_type,
            );
        }
        for (slot, until) in self.values.iter_mut().zip(&self.offline_until) {
            if now < *until {
                *slot = Value::Null;
            }
        }
        &self.values
    }

    /// Adopts a client's write of a set-point (a signal whose id ends in `_sp`).
    pub fn write(&mut self, index: usize, value: &Value) -> Result<(), WriteError> {
        let b = self
            .bindings
            .get_mut(index)
            .ok_or(WriteError::UnknownSignal(index))?;
        if !b.writable {
            return Err(WriteError::NotWritable { signal: b.path() });
        }
        let Some(x) = number(value) else {
            return Err(WriteError::NotANumber {
                signal: b.path(),
                value: value.to_string(),
            });
        };
        let x = if b.data_type == DataType::Int {
            x.round()
        } else {
            x
        };
        if let Some(r) = b.limits.filter(|r| !r.contains(x)) {
            return Err(WriteError::OutOfRange {
                signal: b.path(),
                value: x,
                low: r.low,
                high: r.high,
            });
        }
        let taken = match &mut b.source {
            Source::Machine { line, machine } => {
                self.lines[*line].machines[*machine].core.sp.set(&b.id, x)
            }
            Source::Room { line, room } => self.lines[*line].rooms[*room].set(&b.id, x),
            Source::Generic(g) => {
                g.held = Some(x);
                true
            }
            Source::Control { .. } => false,
        };
        if taken {
            Ok(())
        } else {
            Err(WriteError::NotWritable { signal: b.path() })
        }
    }

    /// Index of a signal in the values, by line, equipment and signal id.
    pub fn signal_index(&self, line: &str, equipment: &str, signal: &str) -> Option<usize> {
        self.bindings
            .iter()
            .position(|b| b.line == line && b.equipment == equipment && b.id == signal)
    }

    pub fn signal_count(&self) -> usize {
        self.bindings.len()
    }

    /// Simulated date and time.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.datetime()
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.clock.now.max(0.0))
    }

    /// The ISA-88 phase of a line's batch.
    pub fn phase(&self, line: &str) -> Option<Phase> {
        self.line(line).map(LineModel::phase)
    }

    /// The hidden degradation of a process unit (ground truth for maintenance predictions).
    pub fn health(&self, line: &str, equipment: &str) -> Option<Health> {
        let (line, machine) = self.machine(line, equipment)?;
        let core = &self.lines[line].machines[machine].core;
        Some(Health {
            state: core.state,
            bearing: core.wear.bearing,
            tooling: core.wear.tooling,
            filter: core.wear.filter,
        })
    }

    /// The process units: line and equipment id of each.
    pub fn units(&self) -> Vec<(String, String)> {
        self.lines
            .iter()
            .zip(&self.machine_ids)
            .flat_map(|(l, ids)| ids.iter().map(|e| (l.id.clone(), e.clone())))
            .collect()
    }

    /// Whether a unit has this wearing part.
    pub fn has_part(&self, line: &str, equipment: &str, part: Part) -> bool {
        self.machine(line, equipment)
            .is_some_and(|(l, m)| self.lines[l].machines[m].core.wear.has(part))
    }

    /// Sets how maintenance renews parts on every line.
    pub fn set_maintenance(&mut self, policy: Maintenance) {
        for l in &mut self.lines {
            l.maintenance = policy;
        }
    }

    /// Runs an accelerated life test: every part of every unit wears `pace` times faster
    /// (the signals show wear as they always do; only time is compressed).
    pub fn set_wear_pace(&mut self, pace: f64) {
        for m in self.lines.iter_mut().flat_map(|l| l.machines.iter_mut()) {
            m.core.wear.pace = pace.max(0.0);
        }
    }

    /// Injects a fault: `part` of the unit wears `factor` times faster until it is renewed.
    /// Returns false when the unit or the part does not exist.
    pub fn inject(&mut self, line: &str, equipment: &str, part: Part, factor: f64) -> bool {
        let Some((l, m)) = self.machine(line, equipment) else {
            return false;
        };
        let wear = &mut self.lines[l].machines[m].core.wear;
        if !wear.has(part) {
            return false;
        }
        wear.accelerate(part, factor);
        true
    }

    /// Takes the sensor of one signal off line for `hours` of plant time from now: it reads
    /// no value (served as BadSensorFailure) until then. `false` if the line has no such
    /// signal at that unit.
    pub fn take_offline(&mut self, line: &str, equipment: &str, signal: &str, hours: f64) -> bool {
        let Some(i) = self
            .bindings
            .iter()
            .position(|b| b.line == line && b.equipment == equipment && b.id == signal)
        else {
            return false;
        };
        self.offline_until[i] = self.clock.now + hours * 3600.0;
        true
    }

    /// Every onset, failure and renewal of a part so far, in time order per unit.
    pub fn wear_events(&self) -> Vec<WearEvent> {
        let mut out = Vec::new();
        for (l, ids) in self.lines.iter().zip(&self.machine_ids) {
            for (m, id) in l.machines.iter().zip(ids) {
                out.extend(m.core.events.iter().map(|e| WearEvent {
                    line: l.id.clone(),
                    equipment: id.clone(),
                    part: e.part,
                    kind: e.kind,
                    at: self.clock.datetime_at(e.at),
                }));
            }
        }
        out
    }

    fn machine(&self, line: &str, equipment: &str) -> Option<(usize, usize)> {
        let l = self.lines.iter().position(|l| l.id == line)?;
        let m = self.machine_ids[l].iter().position(|e| e == equipment)?;
        Some((l, m))
    }

    /// Every lab result released so far, with the noise-free CQAs a perfect model would
    /// predict (ground truth for quality predictions).
    pub fn lab_results(&self) -> Vec<LabResult> {
        self.lines
            .iter()
            .flat_map(|l| {
                l.released.iter().map(|r| LabResult {
                    line: l.id.clone(),
                    batch_id: r.id.clone(),
                    ended_at: self.clock.datetime_at(r.ended_at),
                    published_at: self.clock.datetime_at(r.published_at),
                    measured: r.measured,
                    expected: r.expected,
                })
            })
            .collect()
    }

    fn line(&self, id: &str) -> Option<&LineModel> {
        self.lines.iter().find(|l| l.id == id)
    }
}

fn default_value(data_type: DataType) -> Value {
    match data_type {
        DataType::Double => Value::Float(0.0),
        DataType::Int => Value::Int(0),
        DataType::Bool => Value::Bool(false),
        DataType::String => Value::Text(String::new()),
    }
}
