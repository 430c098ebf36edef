//! A process unit: what every unit has in common (PackML state, drive, energy meter, bearing,
//! counters, operator, set-points, wear) around the unit operation it performs.

use model::Value;
use rand::rngs::SmallRng;

use super::{
    batch::{Batch, Phase, Product},
    clock::Clock,
    material::Materials,
    stochastic::{approach, uniform, Noise},
    unit_ops::Unit,
    wear::{Part, Wear, WearEventKind, WearLog, ONSET},
};

/// PackML machine state, as the plant's OPC UA servers publish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackMl {
    Stopped,
    Idle,
    Execute,
    Held,
    Aborted,
    Complete,
}

impl PackMl {
    pub fn as_str(self) -> &'static str {
        match self {
            PackMl::Stopped => "STOPPED",
            PackMl::Idle => "IDLE",
            PackMl::Execute => "EXECUTE",
            PackMl::Held => "HELD",
            PackMl::Aborted => "ABORTED",
            PackMl::Complete => "COMPLETE",
        }
    }
}

/// The unit operation a process unit performs; one per equipment type of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dispensing,
    Granulation,
    Drying,
    Milling,
    Blending,
    Compression,
    Coating,
    Packaging,
}

impl Kind {
    pub(crate) fn from_type(equipment_type: &str) -> Option<Kind> {
        Some(match equipment_type {
            "dispensing_booth" => Kind::Dispensing,
            "high_shear_granulator" => Kind::Granulation,
            "fluid_bed_dryer" => Kind::Drying,
            "mill" => Kind::Milling,
            "bin_blender" => Kind::Blending,
            "tablet_press" => Kind::Compression,
            "film_coater" => Kind::Coating,
            "blister_packer" => Kind::Packaging,
            _ => return None,
        })
    }

    pub(crate) fn phase(self) -> Phase {
        match self {
            Kind::Dispensing => Phase::Dispensing,
            Kind::Granulation => Phase::Granulation,
            Kind::Drying => Phase::Drying,
            Kind::Milling => Phase::Milling,
            Kind::Blending => Phase::Blending,
            Kind::Compression => Phase::Compression,
            Kind::Coating => Phase::Coating,
            Kind::Packaging => Phase::Packaging,
        }
    }

    pub(crate) fn rating(self) -> &'static Rating {
        &RATINGS[self.phase().index().unwrap_or(0)]
    }
}

/// Constants of a kind of unit.
#[derive(Debug)]
pub(crate) struct Rating {
    /// Vibration of a healthy drive at full load, mm/s RMS.
    pub(crate) vibration: f64,
    /// Running hours a new drive bearing lasts (before age and site).
    pub(crate) bearing_life_h: f64,
    /// Tooling life in the unit's measure of use; 0 = no tooling.
    pub(crate) tooling_life: f64,
    /// Filter life in running hours; 0 = no filter.
    pub(crate) filter_life_h: f64,
    /// Stoppages (jams, blockages, alarms) per running hour of a healthy unit.
    pub(crate) holds_per_h: f64,
    pub(crate) hold_mean_min: f64,
    /// Share of the electrical power that ends up as heat in the room air.
    pub(crate) heat_share: f64,
    /// Operators the unit needs while it runs.
    pub(crate) staff: u32,
    /// Lifetime output per year of operation, to start the totalisers somewhere plausible.
    pub(crate) output_per_year: f64,
}

static RATINGS: [Rating; 8] = [
    // dispensing booth: the fan runs round the clock
    Rating {
        vibration: 1.1,
        bearing_life_h: 25_000.0,
        tooling_life: 0.0,
        filter_life_h: 12_000.0,
        holds_per_h: 0.05,
        hold_mean_min: 6.0,
        heat_share: 0.9,
        staff: 2,
        output_per_year: 12_000.0,
    },
    // high-shear granulator
    Rating {
        vibration: 1.6,
        bearing_life_h: 1_500.0,
        tooling_life: 0.0,
        filter_life_h: 0.0,
        holds_per_h: 0.10,
        hold_mean_min: 8.0,
        heat_share: 0.5,
        staff: 1,
        output_per_year: 0.0,
    },
    // fluid-bed dryer (the fan)
    Rating {
        vibration: 1.3,
        bearing_life_h: 2_500.0,
        tooling_life: 0.0,
        filter_life_h: 400.0,
        holds_per_h: 0.10,
        hold_mean_min: 10.0,
        heat_share: 0.1,
        staff: 1,
        output_per_year: 0.0,
    },
    // cone mill: tooling = screen, in kg milled
    Rating {
        vibration: 1.4,
        bearing_life_h: 1_500.0,
        tooling_life: 300_000.0,
        filter_life_h: 0.0,
        holds_per_h: 0.15,
        hold_mean_min: 6.0,
        heat_share: 0.6,
        staff: 1,
        output_per_year: 0.0,
    },
    // bin blender
    Rating {
        vibration: 1.0,
        bearing_life_h: 2_500.0,
        tooling_life: 0.0,
        filter_life_h: 0.0,
        holds_per_h: 0.05,
        hold_mean_min: 5.0,
        heat_share: 0.6,
        staff: 1,
        output_per_year: 0.0,
    },
    // tablet press: tooling = punches, in compressions per station
    Rating {
        vibration: 1.5,
        bearing_life_h: 2_000.0,
        tooling_life: 2_000_000.0,
        filter_life_h: 0.0,
        holds_per_h: 0.25,
        hold_mean_min: 10.0,
        heat_share: 0.7,
        staff: 1,
        output_per_year: 3.0e8,
    },
    // film coater: the pan drive
    Rating {
        vibration: 1.2,
        bearing_life_h: 3_000.0,
        tooling_life: 0.0,
        filter_life_h: 0.0,
        holds_per_h: 0.12,
        hold_mean_min: 12.0,
        heat_share: 0.05,
        staff: 1,
        output_per_year: 3.0e8,
    },
    // blister machine: tooling = sealing tool, in cycles
    Rating {
        vibration: 1.8,
        bearing_life_h: 1_800.0,
        tooling_life: 3_000_000.0,
        filter_life_h: 0.0,
        holds_per_h: 0.6,
        hold_mean_min: 4.0,
        heat_share: 0.6,
        staff: 2,
        output_per_year: 3.0e7,
    },
];

/// The set-points a unit runs to: loaded from the recipe at batch start, changed by clients.
#[derive(Debug, Clone, Default)]
pub(crate) struct SetPoints(Vec<(&'static str, f64)>);

impl SetPoints {
    pub(crate) fn get(&self, id: &str) -> f64 {
        self.0
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    }

    pub(crate) fn has(&self, id: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == id)
    }

    pub(crate) fn set(&mut self, id: &str, value: f64) -> bool {
        match self.0.iter_mut().find(|(k, _)| *k == id) {
            Some(slot) => {
                slot.1 = value;
                true
            }
            None => false,
        }
    }

    /// Recipe download: the recipe's values replace whatever was set before.
    pub(crate) fn download(&mut self, product: &Product, phase: Phase) {
        if let Some(i) = phase.index() {
            self.0 = product.setpoints[i].to_vec();
        }
    }
}

/// How the line drives a unit in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// EXECUTE: doing its phase of the batch.
    Run,
    /// HELD: stopped in the middle of its phase, batch still inside.
    Hold,
    /// Not in use (IDLE, COMPLETE, STOPPED, ABORTED).
    Off,
}

/// Conditions around a unit during a step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    pub(crate) dt: f64,
    pub(crate) clock: &'a Clock,
    pub(crate) room_temp: f64,
    pub(crate) room_rh: f64,
    /// Dew point of the conditioned process air.
    pub(crate) dew_point: f64,
}

/// What a reading may need besides the unit itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadCtx<'a> {
    pub(crate) now: f64,
    pub(crate) materials: &'a Materials,
}

/// The parts of a unit every kind shares; the unit operation sets `load`, `turning`,
/// `power_kw`, `dust` and the use counters each step, the rest follows here.
#[derive(Debug, Clone)]
pub(crate) struct Core {
    pub(crate) kind: Kind,
    pub(crate) room: Option<usize>,
    pub(crate) state: PackMl,
    /// Seconds left in a timed state (COMPLETE, HELD, ABORTED, STOPPED).
    pub(crate) timer: f64,
    /// What a STOPPED or ABORTED unit is having renewed.
    pub(crate) renewing: Option<Part>,
    pub(crate) wear: Wear,
    pub(crate) sp: SetPoints,
    /// Load of the main drive, 0..1 of its rating.
    pub(crate) load: f64,
    pub(crate) turning: bool,
    pub(crate) power_kw: f64,
    pub(crate) energy_kwh: f64,
    pub(crate) bearing_temp: f64,
    pub(crate) good: f64,
    pub(crate) reject: f64,
    /// Particles ≥ 0.5 µm per second the unit releases into its room.
    pub(crate) dust: f64,
    /// Tooling use and filter hours in this step, for wear.
    pub(crate) tooling_use: f64,
    pub(crate) filter_hours: f64,
    pub(crate) operator: String,
    pub(crate) qualified: bool,
    /// Onsets, failures and renewals of the unit's parts (ground truth).
    pub(crate) events: Vec<WearLog>,
}

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) core: Core,
    pub(crate) unit: Unit,
}

impl Machine {
    pub(crate) fn new(
        kind: Kind,
        room: Option<usize>,
        age_years: f64,
        site_factor: f64,
        product: &'static Product,
        room_temp: f64,
        rng: &mut SmallRng,
    ) -> Self {
        let rating = kind.rating();
        let wear = Wear::new(
            rating.bearing_life_h,
            rating.tooling_life,
            rating.filter_life_h,
            age_years,
            site_factor,
            rng,
        );
        let mut sp = SetPoints::default();
        sp.download(product, kind.phase());
        let years = age_years.max(0.2);
        let good = rating.output_per_year * years * uniform(rng, 0.7, 1.1);
        let unit = Unit::new(kind, product, &wear, room_temp, rng);
        Machine {
            core: Core {
                kind,
                room,
                state: PackMl::Idle,
                timer: 0.0,
                renewing: None,
                wear,
                sp,
                load: 0.0,
                turning: false,
                power_kw: 0.0,
                energy_kwh: (years * 8760.0 * uniform(rng, 2.0, 6.0)).round(),
                bearing_temp: room_temp,
                good: good.floor(),
                reject: (good * uniform(rng, 0.003, 0.008)).floor(),
                dust: 0.0,
                tooling_use: 0.0,
                filter_hours: 0.0,
                operator: String::new(),
                qualified: false,
                events: Vec::new(),
            },
            unit,
        }
    }

    pub(crate) fn rating(&self) -> &'static Rating {
        self.core.kind.rating()
    }

    /// Runs down the timer of a timed state: a hold ends back in EXECUTE, cleaning, repair
    /// and maintenance end in IDLE with the renewed part as good as new.
    pub(crate) fn tick_timer(&mut self, now: f64, dt: f64, rng: &mut SmallRng) {
        let c = &mut self.core;
        if !matches!(
            c.state,
            PackMl::Complete | PackMl::Held | PackMl::Aborted | PackMl::Stopped
        ) {
            return;
        }
        c.timer -= dt;
        if c.timer > 0.0 {
            return;
        }
        c.timer = 0.0;
        let planned = c.state == PackMl::Stopped;
        c.state = match c.state {
            PackMl::Held => PackMl::Execute,
            _ => PackMl::Idle,
        };
        if let Some(what) = c.renewing.take() {
            c.wear.renew(what, rng);
            c.events.push(WearLog {
                part: what,
                kind: WearEventKind::Renewed { planned },
                at: now,
            });
            self.unit.renewed(what);
        }
    }

    pub(crate) fn hold(&mut self, seconds: f64) {
        self.core.state = PackMl::Held;
        self.core.timer = seconds;
    }

    /// A random trip of the drive: the batch is lost, the unit waits for its bearing to be
    /// checked and renewed. Wear has no part in it (see [`Self::fail`]).
    pub(crate) fn abort(&mut self, now: f64, repair_s: f64) {
        self.break_down(Part::Bearing, WearEventKind::Trip, now, repair_s);
    }

    /// A part worn past its failure point gives out.
    pub(crate) fn fail(&mut self, part: Part, now: f64, repair_s: f64) {
        self.break_down(part, WearEventKind::Failure, now, repair_s);
    }

    fn break_down(&mut self, part: Part, kind: WearEventKind, now: f64, repair_s: f64) {
        self.core.state = PackMl::Aborted;
        self.core.timer = repair_s;
        self.core.renewing = Some(part);
        self.core.events.push(WearLog {
            part,
            kind,
            at: now,
        });
    }

    pub(crate) fn complete(&mut self, cleaning_s: f64) {
        self.core.state = PackMl::Complete;
        self.core.timer = cleaning_s;
    }

    pub(crate) fn start_renewal(&mut self, what: Part, rng: &mut SmallRng) {
        self.core.state = PackMl::Stopped;
        self.core.timer = what.hours() * 3600.0 * uniform(rng, 0.7, 1.4);
        self.core.renewing = Some(what);
    }

    /// Hold rate of this unit now: worn parts and untrained hands stop it more often.
    pub(crate) fn holds_per_h(&self) -> f64 {
        let w = &self.core.wear;
        let mut rate = self.rating().holds_per_h
            * (1.0 + 3.0 * w.bearing.powi(2) + 3.0 * w.tooling.powi(2) + 2.0 * w.filter.powi(2));
        if !self.core.qualified {
            rate *= 1.5;
        }
        rate
    }

    /// Operators the unit keeps busy in its room right now.
    pub(crate) fn staff(&self) -> u32 {
        match self.core.state {
            PackMl::Execute | PackMl::Held => self.rating().staff,
            PackMl::Complete | PackMl::Aborted => 1,
            PackMl::Stopped if self.core.renewing.is_some() => 1,
            _ => 0,
        }
    }

    /// One step of the unit. `batch` is the line's batch when this unit runs its phase;
    /// returns `true` when the phase is done.
    pub(crate) fn step(
        &mut self,
        batch: Option<&mut Batch>,
        env: &Env<'_>,
        materials: &mut Materials,
        rng: &mut SmallRng,
    ) -> bool {
        let mode = match self.core.state {
            PackMl::Execute => Mode::Run,
            PackMl::Held => Mode::Hold,
            _ => Mode::Off,
        };
        let c = &mut self.core;
        c.dust = 0.0;
        c.tooling_use = 0.0;
        c.filter_hours = 0.0;
        let done = self
            .unit
            .step(&mut self.core, mode, batch, env, materials, rng);
        let c = &mut self.core;
        c.energy_kwh += c.power_kw.max(0.0) * env.dt / 3600.0;
        let hours = env.dt / 3600.0;
        let running_hours = if c.turning { hours } else { 0.0 };
        let before = Part::ALL.map(|p| c.wear.get(p));
        c.wear
            .run(running_hours, c.load, c.tooling_use, c.filter_hours);
        for (p, b) in Part::ALL.into_iter().zip(before) {
            if b < ONSET && c.wear.get(p) >= ONSET && c.wear.has(p) {
                c.events.push(WearLog {
                    part: p,
                    kind: WearEventKind::Onset,
                    at: env.clock.now,
                });
            }
        }
        // Friction heat of the bearing rises with load and with damage.
        let rise = if c.turning {
            (8.0 + 24.0 * c.load) * (1.0 + 1.5 * c.wear.bearing.powi(2))
        } else {
            0.0
        };
        c.bearing_temp = approach(c.bearing_temp, env.room_temp + rise, 1200.0, env.dt);
        done
    }

    /// The reading of one of the unit's signals, if the model knows it.
    pub(crate) fn read(&self, id: &str, ctx: &ReadCtx<'_>, n: &mut Noise) -> Option<Value> {
        if let Some(v) = self.unit.read(id, &self.core, ctx, n) {
            return Some(v);
        }
        let c = &self.core;
        let v = match id {
            "state" => Value::Text(c.state.as_str().to_string()),
            "power_kw" => Value::Float(n.rel(c.power_kw, 0.01).max(0.0)),
            "energy_kwh" => Value::Float(c.energy_kwh),
            "vibration" => Value::Float(self.vibration(n)),
            "bearing_temp" => Value::Float(n.add(c.bearing_temp, 0.1)),
            "good_count" => Value::Int(c.good.floor() as i64),
            "reject_count" => Value::Int(c.reject.floor() as i64),
            "operator" => Value::Text(c.operator.clone()),
            "operator_qualified" => Value::Bool(c.qualified),
            sp if sp.ends_with("_sp") && c.sp.has(sp) => Value::Float(c.sp.get(sp)),
            _ => return None,
        };
        Some(v)
    }

    /// Vibration velocity (ISO 10816): a healthy drive's level, plus a bearing defect term
    /// growing with the cube of damage — about 4.5 mm/s (alarm) near planned renewal.
    fn vibration(&self, n: &mut Noise) -> f64 {
        let c = &self.core;
        if c.turning {
            let healthy = self.rating().vibration * (0.6 + 0.5 * c.load.min(1.5));
            n.rel(healthy + 7.0 * c.wear.bearing.powi(3), 0.04).max(0.0)
        } else {
            n.add(0.06, 0.02).abs()
        }
    }
}
