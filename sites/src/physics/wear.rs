//! Degradation of a process unit: its drive bearings, its tooling (punches, mill screen,
//! sealing tool) and its filters. Each is a damage fraction, 0 new .. 1 end of life, growing
//! with use at a rate set by the equipment's age and the site; the signals that show it
//! (vibration, ejection force, filter ΔP) are functions of these fractions.

use rand::rngs::SmallRng;

use super::stochastic::uniform;

/// Damage at which planned maintenance renews a part between batches.
pub(crate) const BEARING_RENEWAL: f64 = 0.8;
pub(crate) const TOOLING_RENEWAL: f64 = 0.85;
pub(crate) const FILTER_RENEWAL: f64 = 0.85;

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
        }
    }

    /// Wear from `hours` of running with `tooling_use` units of tooling use.
    pub(crate) fn run(&mut self, hours: f64, load: f64, tooling_use: f64, filter_hours: f64) {
        // Bearing damage grows with load (a lightly loaded drive lasts longer).
        self.bearing += hours * (0.4 + 0.6 * load.clamp(0.0, 1.5)) / self.bearing_life_h;
        if self.tooling_life > 0.0 {
            self.tooling += tooling_use / self.tooling_life;
        }
        if self.filter_life_h > 0.0 {
            self.filter += filter_hours / self.filter_life_h;
        }
    }

    /// What planned maintenance should renew now, if anything (between batches).
    pub(crate) fn due(&self) -> Option<Renewal> {
        if self.bearing >= BEARING_RENEWAL {
            Some(Renewal::Bearing)
        } else if self.tooling >= TOOLING_RENEWAL {
            Some(Renewal::Tooling)
        } else if self.filter >= FILTER_RENEWAL {
            Some(Renewal::Filter)
        } else {
            None
        }
    }

    pub(crate) fn renew(&mut self, what: Renewal, rng: &mut SmallRng) {
        match what {
            Renewal::Bearing => self.bearing = uniform(rng, 0.01, 0.04),
            Renewal::Tooling => self.tooling = 0.0,
            Renewal::Filter => self.filter = uniform(rng, 0.0, 0.03),
        }
    }

    /// Failure rate (per running hour) of a breakdown that aborts the batch: small at
    /// random, climbing steeply once the bearing is past its planned renewal.
    pub(crate) fn breakdown_rate(&self) -> f64 {
        2.0e-4 + 0.6 * (self.bearing - 0.75).max(0.0).powi(2)
    }
}

/// A part renewed by maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    Bearing,
    Tooling,
    Filter,
}

impl Renewal {
    /// How long the unit stands still for it, in hours (mean).
    pub(crate) fn hours(self) -> f64 {
        match self {
            Renewal::Bearing => 5.0,
            Renewal::Tooling => 1.5,
            Renewal::Filter => 2.0,
        }
    }
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
