//! Degradation of a process unit: its drive bearings, its tooling (punches, mill screen,
//! sealing tool) and its filters. Each is a damage fraction, 0 new .. 1 end of life, growing
//! with use at a rate set by the equipment's age and the site; the signals that show it
//! (vibration, ejection force, filter ΔP) are functions of these fractions.

use rand::rngs::SmallRng;

use super::stochastic::uniform;

/// Damage at which condition-based maintenance renews a part between batches.
pub(crate) const BEARING_RENEWAL: f64 = 0.8;
pub(crate) const TOOLING_RENEWAL: f64 = 0.85;
pub(crate) const FILTER_RENEWAL: f64 = 0.85;

/// Damage at which a part fails in service: the unit trips and its batch is lost.
pub const FAILURE: f64 = 1.0;
/// Damage from which a fault is present (ground truth of fault onset): past it the part's
/// signals stand clearly out of their healthy spread.
pub const ONSET: f64 = 0.6;

/// How the plant's maintenance department decides to renew a part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Maintenance {
    /// Inspections find worn parts and renew them before they fail (the default).
    Condition,
    /// Preventive maintenance on the maker's schedule: a part is renewed when its use since
    /// the last renewal reaches `fraction` of the maker's nominal life. Units that wear
    /// faster than nominal (old, heavily loaded, humid sites) fail before it comes.
    Interval { fraction: f64 },
    /// No planned maintenance: every part runs to failure (run-to-failure histories).
    RunToFailure,
}

#[derive(Debug, Clone)]
pub(crate) struct Wear {
    pub(crate) bearing: f64,
    pub(crate) tooling: f64,
    pub(crate) filter: f64,
    /// Running hours a new bearing lasts here.
    bearing_life_h: f64,
    /// Tooling life in the unit's own measure of use (compressions per station, kg milled,
    /// sealing cycles); units without tooling never wear it.
    tooling_life: f64,
    /// Running hours a clean filter lasts here.
    filter_life_h: f64,
    /// How much faster than the maker's nominal life this unit wears (age, site, unit).
    ageing: f64,
    /// Wear-rate multipliers per part from injected faults (1 = none).
    boost: [f64; 3],
    /// Wear-rate multiplier of every part, for accelerated life tests (1 = normal use).
    pub(crate) pace: f64,
}

impl Wear {
    /// `age_years` of the equipment and `site_factor` (the site's climate and dust) shorten
    /// the lives; a machine that has been running for years starts part-way worn.
    pub(crate) fn new(
        bearing_life_h: f64,
        tooling_life: f64,
        filter_life_h: f64,
        age_years: f64,
        site_factor: f64,
        rng: &mut SmallRng,
    ) -> Self {
        let ageing = (1.0 + 0.04 * age_years.max(0.0)) * site_factor * uniform(rng, 0.85, 1.15);
        let seasoned = (age_years / 3.0).clamp(0.1, 1.0);
        Wear {
            bearing: uniform(rng, 0.02, 0.7) * seasoned,
            tooling: uniform(rng, 0.0, 0.75),
            filter: uniform(rng, 0.05, 0.7) * seasoned,
            bearing_life_h: bearing_life_h / ageing,
            tooling_life: tooling_life / ageing,
            filter_life_h: filter_life_h / ageing,
            ageing,
            boost: [1.0; 3],
            pace: 1.0,
        }
    }

    /// Wear from `hours` of running with `tooling_use` units of tooling use.
    pub(crate) fn run(&mut self, hours: f64, load: f64, tooling_use: f64, filter_hours: f64) {
        // Bearing damage grows with load (a lightly loaded drive lasts longer).
        let [b, t, f] = self.boost.map(|x| x * self.pace);
        self.bearing += b * hours * (0.4 + 0.6 * load.clamp(0.0, 1.5)) / self.bearing_life_h;
        if self.tooling_life > 0.0 {
            self.tooling += t * tooling_use / self.tooling_life;
        }
        if self.filter_life_h > 0.0 {
            self.filter += f * filter_hours / self.filter_life_h;
        }
    }

    pub(crate) fn get(&self, part: Part) -> f64 {
        match part {
            Part::Bearing => self.bearing,
            Part::Tooling => self.tooling,
            Part::Filter => self.filter,
        }
    }

    /// Whether the unit has this part at all (tooling and filters are not on every kind).
    pub(crate) fn has(&self, part: Part) -> bool {
        match part {
            Part::Bearing => true,
            Part::Tooling => self.tooling_life > 0.0,
            Part::Filter => self.filter_life_h > 0.0,
        }
    }

    /// What planned maintenance should renew now under `policy`, if anything (between
    /// batches).
    pub(crate) fn due(&self, policy: Maintenance) -> Option<Part> {
        let limits = match policy {
            Maintenance::Condition => [BEARING_RENEWAL, TOOLING_RENEWAL, FILTER_RENEWAL],
            // The planner counts use against the nominal life, which is `ageing` times
            // this unit's real one.
            Maintenance::Interval { fraction } => [fraction * self.ageing; 3],
            Maintenance::RunToFailure => return None,
        };
        Part::ALL
            .into_iter()
            .zip(limits)
            .find(|&(p, limit)| self.has(p) && self.get(p) >= limit)
            .map(|(p, _)| p)
    }

    /// The part that has failed, if any.
    pub(crate) fn failed(&self) -> Option<Part> {
        Part::ALL
            .into_iter()
            .find(|&p| self.has(p) && self.get(p) >= FAILURE)
    }

    /// An injected fault: `part` wears `factor` times faster from now on.
    pub(crate) fn accelerate(&mut self, part: Part, factor: f64) {
        self.boost[part as usize] = factor.max(0.0);
    }

    pub(crate) fn renew(&mut self, what: Part, rng: &mut SmallRng) {
        // A new part ends an injected fault.
        self.boost[what as usize] = 1.0;
        match what {
            Part::Bearing => self.bearing = uniform(rng, 0.01, 0.04),
            Part::Tooling => self.tooling = 0.0,
            Part::Filter => self.filter = uniform(rng, 0.0, 0.03),
        }
    }

    /// Rate (per running hour) of random trips of the drive that abort the batch. Wear
    /// does not raise it: a worn part fails when its damage reaches [`FAILURE`].
    pub(crate) fn breakdown_rate(&self) -> f64 {
        2.0e-4
    }
}

/// A wearing part of a process unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The main drive bearing.
    Bearing,
    /// Punches and dies, mill screen, sealing tool.
    Tooling,
    /// Process air or HEPA filter.
    Filter,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Bearing, Part::Tooling, Part::Filter];

    pub fn as_str(self) -> &'static str {
        match self {
            Part::Bearing => "bearing",
            Part::Tooling => "tooling",
            Part::Filter => "filter",
        }
    }

    pub fn parse(s: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// How long the unit stands still for it, in hours (mean).
    pub(crate) fn hours(self) -> f64 {
        match self {
            Part::Bearing => 5.0,
            Part::Tooling => 1.5,
            Part::Filter => 2.0,
        }
    }
}

/// What happened to a part, for the ground truth of maintenance predictions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WearEventKind {
    /// The part's damage crossed [`ONSET`]: a fault is present from here.
    Onset,
    /// The part failed in service.
    Failure,
    /// A trip of the drive not caused by wear (random; no prediction can see it coming).
    Trip,
    /// The part was renewed: `planned` by maintenance, or as the repair after a failure.
    Renewed { planned: bool },
}

/// One event of one part of a unit, at simulated seconds `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WearLog {
    pub(crate) part: Part,
    pub(crate) kind: WearEventKind,
    pub(crate) at: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn old_equipment_wears_faster() {
        let mut rng = SmallRng::seed_from_u64(5);
        let mut young = Wear::new(5000.0, 1.0, 1000.0, 1.0, 1.0, &mut rng);
        let mut old = Wear::new(5000.0, 1.0, 1000.0, 15.0, 1.0, &mut rng);
        let (y0, o0) = (young.bearing, old.bearing);
        young.run(500.0, 0.5, 0.0, 0.0);
        old.run(500.0, 0.5, 0.0, 0.0);
        assert!(old.bearing - o0 > 1.1 * (young.bearing - y0));
    }
}
