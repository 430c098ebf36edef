//! One production line: its process units, cleanrooms, crew and material lots, and the batch
//! control that runs campaigns of batches through the phases, with holds, breakdowns and
//! planned maintenance between batches.

use chrono::NaiveDate;
use model::Value;
use rand::{rngs::SmallRng, Rng};

use super::{
    batch::{portfolio, Batch, BatchRecord, Phase, Product},
    clock::Clock,
    environment::{Outdoor, Room, RoomLoad},
    machine::{Env, Kind, Machine, PackMl},
    material::Materials,
    quality::{self, BatchResult},
    shift::{Roster, ShiftEvent},
    stochastic::{exp_duration, happens, uniform},
    wear::Maintenance,
};

/// What an equipment of the site file is to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Machine(usize),
    Room(usize),
    Control,
    /// An equipment type the model does not know: its signals get generic values.
    Other,
}

/// Equipment age when the site file gives no (readable) installation date.
const DEFAULT_AGE_YEARS: f64 = 5.0;

#[derive(Debug, Clone)]
pub(crate) struct LineModel {
    pub(crate) id: String,
    prefix: String,
    pub(crate) machines: Vec<Machine>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) roster: Roster,
    pub(crate) materials: Materials,
    portfolio: Vec<&'static Product>,
    campaign_product: usize,
    campaign_left: u32,
    pub(crate) batch: Option<Batch>,
    /// The unit running the batch's current phase.
    active: Option<usize>,
    /// When the current phase (or the idle time between batches) began.
    phase_started: f64,
    next_start: f64,
    seq: u32,
    completed: i64,
    aborted: i64,
    /// The last batch whose lab results are released (what `last_batch_*` show).
    last: BatchResult,
    /// Finished batches waiting for the QC lab, in order of release.
    pub(crate) at_lab: Vec<BatchResult>,
    /// Every result released during the simulation: ground truth for quality predictions.
    pub(crate) released: Vec<BatchResult>,
    loads: Vec<RoomLoad>,
    staff: Vec<u32>,
    pub(crate) maintenance: Maintenance,
}

/// What the line needs to know about its site.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SiteTraits<'a> {
    pub(crate) site_id: &'a str,
    /// Wear acceleration from the site's climate (humidity corrodes, dust abrades).
    pub(crate) wear_factor: f64,
    /// Filter loading acceleration from the outdoor air.
    pub(crate) dust_factor: f64,
}

impl LineModel {
    pub(crate) fn new(
        site: SiteTraits<'_>,
        index: usize,
        line: &model::Line,
        clock: &Clock,
        first_start: f64,
        rng: &mut SmallRng,
    ) -> (LineModel, Vec<Slot>) {
        let products = portfolio(site.site_id, index);
        let product = products[0];
        let mut rooms = Vec::new();
        let mut slots = Vec::with_capacity(line.equipment.len());
        for e in &line.equipment {
            slots.push(match e.kind.as_deref() {
                Some("cleanroom") => {
                    rooms.push(Room::new(&e.id, e.grade.as_deref(), site.dust_factor, rng));
                    Slot::Room(rooms.len() - 1)
                }
                Some("line_control") => Slot::Control,
                _ => Slot::Other,
            });
        }
        let room_slots: Vec<(&str, usize)> = line
            .equipment
            .iter()
            .zip(&slots)
            .filter_map(|(e, slot)| match slot {
                Slot::Room(r) => Some((e.id.as_str(), *r)),
                _ => None,
            })
            .collect();
        let mut machines = Vec::new();
        for (i, e) in line.equipment.iter().enumerate() {
            let Some(kind) = e.kind.as_deref().and_then(Kind::from_type) else {
                continue;
            };
            let room = e
                .room
                .as_deref()
                .and_then(|id| room_slots.iter().find(|(rid, _)| *rid == id))
                .map(|(_, r)| *r);
            let room_temp = room.map_or(21.0, |r| rooms[r].temp);
            let age = age_years(e.installed.as_deref(), clock);
            machines.push(Machine::new(
                kind,
                room,
                age,
                site.wear_factor,
                product,
                room_temp,
                rng,
            ));
            slots[i] = Slot::Machine(machines.len() - 1);
        }

        let roster = Roster::new(clock.hour(), clock.now, rng);
        let shift_start = roster.shift_start();
        for room in &mut rooms {
            room.occupancy.gowned_at = shift_start;
        }
        let materials = Materials::new(product, clock, rng);
        let prefix = batch_prefix(site.site_id, &line.id, index);
        let seq = rng.random_range(1..800);
        let last = quality::previous(
            format!("{prefix}-{}-{:03}", clock.local_yymmdd(), seq),
            product,
            rng,
        );
        let mut model = LineModel {
            id: line.id.clone(),
            prefix,
            loads: vec![RoomLoad::default(); rooms.len()],
            staff: vec![0; rooms.len()],
            maintenance: Maintenance::Condition,
            machines,
            rooms,
            roster,
            materials,
            campaign_left: rng.random_range(2..6),
            portfolio: products,
            campaign_product: 0,
            batch: None,
            active: None,
            phase_started: clock.now,
            next_start: first_start,
            seq,
            completed: rng.random_range(200..2000),
            aborted: rng.random_range(0..8),
            last,
            at_lab: Vec::new(),
            released: Vec::new(),
        };
        model.assign_operators(clock.now);
        (model, slots)
    }

    pub(crate) fn phase(&self) -> Phase {
        self.batch.as_ref().map_or(Phase::Idle, |b| b.phase)
    }

    pub(crate) fn step(&mut self, clock: &Clock, outdoor: &Outdoor, dt: f64, rng: &mut SmallRng) {
        let now = clock.now;
        // A new crew, or the crew back from its break, enters the rooms in fresh gowns.
        if self.roster.update(clock.hour(), now, rng) != ShiftEvent::None {
            for room in &mut self.rooms {
                room.occupancy.gown(now, rng);
            }
        }
        self.publish_lab_results(now);
        // Trainings lapse in the middle of a shift, too.
        self.assign_operators(now);
        for m in &mut self.machines {
            m.tick_timer(now, dt, rng);
        }
        self.control(clock, dt, rng);

        let dew_point = outdoor.conditioned_dew_point();
        let mut phase_done = false;
        for (i, m) in self.machines.iter_mut().enumerate() {
            let (room_temp, room_rh) = m
                .core
                .room
                .and_then(|r| self.rooms.get(r))
                .map_or((21.0, 45.0), |r| (r.temp, r.rh()));
            let env = Env {
                dt,
                clock,
                room_temp,
                room_rh,
                dew_point,
            };
            let is_active = self.active == Some(i);
            let batch = if is_active { self.batch.as_mut() } else { None };
            if m.step(batch, &env, &mut self.materials, rng) && is_active {
                phase_done = true;
            }
        }
        if phase_done {
            self.advance(clock, rng);
        }

        for load in &mut self.loads {
            *load = RoomLoad::default();
        }
        self.staff.iter_mut().for_each(|s| *s = 0);
        for m in &self.machines {
            let Some(r) = m.core.room else { continue };
            let load = &mut self.loads[r];
            load.heat_kw += m.core.power_kw.max(0.0) * m.rating().heat_share;
            load.dust_fine += m.core.dust;
            load.dust_coarse += m.core.dust * 0.04;
            self.staff[r] += m.staff();
        }
        let on_shift = u32::try_from(self.roster.on_shift()).unwrap_or(u32::MAX);
        for (r, room) in self.rooms.iter_mut().enumerate() {
            room.occupancy
                .set_count(self.staff[r].min(on_shift), now, rng);
            room.step(dt, now, outdoor, &self.loads[r], rng);
        }
    }

    fn assign_operators(&mut self, now: f64) {
        for (i, m) in self.machines.iter_mut().enumerate() {
            match self.roster.assigned(i) {
                Some(op) => {
                    if m.core.operator != op.name {
                        m.core.operator.clone_from(&op.name);
                    }
                    m.core.qualified = op.qualified(now);
                }
                None => {
                    m.core.operator.clear();
                    m.core.qualified = false;
                }
            }
        }
    }

    /// Batch control: faults of the running unit, and between batches planned maintenance
    /// and the start of the next batch.
    fn control(&mut self, clock: &Clock, dt: f64, rng: &mut SmallRng) {
        let now = clock.now;
        for i in 0..self.machines.len() {
            let m = &mut self.machines[i];
            if m.core.renewing.is_some() {
                continue;
            }
            if let Some(part) = m.core.wear.failed() {
                // Unplanned: parts and people have to be found first.
                m.fail(part, now, part.hours() * 3600.0 * uniform(rng, 1.5, 3.0));
                if self.active == Some(i) {
                    self.abort_batch(now, rng);
                }
            }
        }
        if let Some(i) = self.active {
            let m = &mut self.machines[i];
            if m.core.state == PackMl::Execute {
                if happens(rng, m.core.wear.breakdown_rate(), dt) {
                    m.abort(now, uniform(rng, 2.0, 6.0) * 3600.0);
                    self.abort_batch(now, rng);
                } else if happens(rng, m.holds_per_h(), dt) {
                    let mean = m.rating().hold_mean_min * 60.0;
                    m.hold(exp_duration(rng, mean).max(30.0));
                }
            }
            return;
        }
        if self.machines.is_empty() || now < self.next_start {
            return;
        }
        let mut waiting = false;
        for m in &mut self.machines {
            if m.core.state != PackMl::Idle {
                waiting = true;
            } else if let Some(what) = m.core.wear.due(self.maintenance) {
                m.start_renewal(what, rng);
                waiting = true;
            }
        }
        if !waiting {
            self.start_batch(clock, rng);
        }
    }

    fn start_batch(&mut self, clock: &Clock, rng: &mut SmallRng) {
        let product = self.portfolio[self.campaign_product];
        self.seq += 1;
        let id = format!(
            "{}-{}-{:03}",
            self.prefix,
            clock.local_yymmdd(),
            self.seq % 1000
        );
        self.materials.for_batch(product, clock, rng);
        for m in &mut self.machines {
            m.core.sp.download(product, m.core.kind.phase());
        }
        let size = product.batch_kg();
        self.batch = Some(Batch {
            id,
            product,
            size_kg: size,
            phase: Phase::Idle,
            progress: 0.0,
            started_at: clock.now,
            potency_coa: self.materials.api.potency_coa,
            potency_true: self.materials.api.potency_true,
            record: BatchRecord::nominal(product, size),
        });
        self.enter(Phase::Dispensing, clock, rng);
    }

    /// Starts `first` on its unit; a phase the line has no unit for is passed over.
    fn enter(&mut self, first: Phase, clock: &Clock, rng: &mut SmallRng) {
        let mut next = Some(first);
        while let Some(phase) = next {
            let units: Vec<usize> = (0..self.machines.len())
                .filter(|&i| self.machines[i].core.kind.phase() == phase)
                .collect();
            if units.is_empty() {
                next = phase.next();
                continue;
            }
            let Some(batch) = self.batch.as_mut() else {
                return;
            };
            match phase {
                Phase::Granulation => self.materials.make_binder(clock, rng),
                Phase::Coating => self.materials.make_suspension(clock, rng),
                _ => {}
            }
            batch.phase = phase;
            batch.progress = 0.0;
            self.phase_started = clock.now;
            let i = units[self.seq as usize % units.len()];
            let Machine { core, unit } = &mut self.machines[i];
            core.state = PackMl::Execute;
            unit.start(core, batch, rng);
            self.active = Some(i);
            return;
        }
        self.finish(clock, rng);
    }

    fn advance(&mut self, clock: &Clock, rng: &mut SmallRng) {
        if let Some(i) = self.active.take() {
            // Discharge, cleaning and the line clearance of the unit.
            self.machines[i].complete(uniform(rng, 600.0, 1500.0));
        }
        match self.batch.as_ref().and_then(|b| b.phase.next()) {
            Some(phase) => self.enter(phase, clock, rng),
            None => self.finish(clock, rng),
        }
    }

    fn finish(&mut self, clock: &Clock, rng: &mut SmallRng) {
        self.active = None;
        if let Some(batch) = self.batch.take() {
            self.at_lab.push(quality::release(&batch, clock.now, rng));
            self.completed += 1;
        }
        self.campaign_left = self.campaign_left.saturating_sub(1);
        let changeover_h = if self.campaign_left == 0 {
            // Product change: full cleaning of the line.
            self.campaign_product = (self.campaign_product + 1) % self.portfolio.len();
            self.campaign_left = rng.random_range(3..7);
            uniform(rng, 4.0, 6.0)
        } else {
            uniform(rng, 0.75, 1.5)
        };
        self.next_start = clock.now + changeover_h * 3600.0;
        self.phase_started = clock.now;
    }

    fn publish_lab_results(&mut self, now: f64) {
        while self.at_lab.first().is_some_and(|r| r.published_at <= now) {
            let result = self.at_lab.remove(0);
            self.released.push(result.clone());
            self.last = result;
        }
    }

    fn abort_batch(&mut self, now: f64, rng: &mut SmallRng) {
        self.batch = None;
        self.active = None;
        self.aborted += 1;
        // Deviation opened, line cleared; the next batch also waits for the repair.
        self.next_start = now + uniform(rng, 1.0, 2.0) * 3600.0;
        self.phase_started = now;
    }

    /// The state of the line: the unit that matters most right now.
    fn line_state(&self) -> PackMl {
        let any = |s: PackMl| self.machines.iter().any(|m| m.core.state == s);
        if any(PackMl::Aborted) {
            PackMl::Aborted
        } else if let Some(i) = self.active {
            self.machines[i].core.state
        } else if any(PackMl::Stopped) {
            PackMl::Stopped
        } else if any(PackMl::Complete) {
            PackMl::Complete
        } else {
            PackMl::Idle
        }
    }

    /// Readings of the line's batch control (MES) and shift signals.
    pub(crate) fn read_control(&self, id: &str, now: f64) -> Option<Value> {
        let product = self
            .batch
            .as_ref()
            .map_or(self.portfolio[self.campaign_product], |b| b.product);
        let v = match id {
            "batch_id" => Value::Text(self.batch.as_ref().map_or(String::new(), |b| b.id.clone())),
            "product" => Value::Text(product.name.to_string()),
            "recipe" => Value::Text(product.recipe.to_string()),
            "recipe_version" => Value::Text(product.recipe_version.to_string()),
            "sop_version" => Value::Text(product.sop.to_string()),
            "batch_phase" => Value::Text(self.phase().as_str().to_string()),
            "phase_elapsed_min" => Value::Float((now - self.phase_started).max(0.0) / 60.0),
            "batch_progress_pct" => {
                Value::Float(self.batch.as_ref().map_or(0.0, Batch::progress_pct))
            }
            "batch_size" => Value::Float(
                self.batch
                    .as_ref()
                    .map_or(product.batch_kg(), |b| b.size_kg),
            ),
            "batches_completed" => Value::Int(self.completed),
            "batches_aborted" => Value::Int(self.aborted),
            "line_state" => Value::Text(self.line_state().as_str().to_string()),
            "last_batch_id" => Value::Text(self.last.id.clone()),
            "last_batch_assay" => Value::Float(self.last.measured.assay),
            "last_batch_dissolution" => Value::Float(self.last.measured.dissolution),
            "last_batch_content_uniformity" => Value::Float(self.last.measured.content_uniformity),
            "last_batch_impurities" => Value::Float(self.last.measured.impurities),
            "last_batch_hardness" => Value::Float(self.last.measured.hardness),
            "last_batch_yield" => Value::Float(self.last.yield_pct),
            "shift_id" => Value::Text(self.roster.shift_id().to_string()),
            "shift_lead" => Value::Text(self.roster.lead().to_string()),
            "operators_on_shift" => Value::Int(self.roster.on_shift() as i64),
            "operators_qualified" => Value::Int(self.roster.qualified(now) as i64),
            "shift_elapsed_h" => Value::Float(self.roster.elapsed_h(now)),
            _ => return None,
        };
        Some(v)
    }
}

/// Equipment age at the start of the simulation, from its `installed` date.
fn age_years(installed: Option<&str>, clock: &Clock) -> f64 {
    installed
        .and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok())
        .map(|d| (clock.start().date_naive() - d).num_days() as f64 / 365.25)
        .filter(|age| *age >= 0.0)
        .unwrap_or(DEFAULT_AGE_YEARS)
}

/// `SH1` for line 1 of a site whose id starts with `sh`: how batch numbers begin.
fn batch_prefix(site: &str, line: &str, index: usize) -> String {
    let letters: String = site
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .take(2)
        .collect::<String>()
        .to_ascii_uppercase();
    let digits: String = line.chars().filter(char::is_ascii_digit).collect();
    let number = if digits.is_empty() {
        (index + 1).to_string()
    } else {
        digits
    };
    format!("{letters}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_numbers_carry_site_and_line() {
        assert_eq!(batch_prefix("shenzhen", "line-2", 1), "SH2");
        assert_eq!(batch_prefix("anhui", "packing", 0), "AN1");
    }
}
