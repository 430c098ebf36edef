//! People: three 8-hour shifts (A 06–14, B 14–22, C 22–06 local time), a crew per shift and
//! line with named operators whose training expires and is renewed, attendance that varies
//! by shift, and the gowning state of each cleanroom.

use std::collections::BTreeSet;

use rand::{rngs::SmallRng, Rng};

use super::stochastic::uniform;

const SURNAMES: [&str; 32] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Lin", "Luo", "Gao", "Zheng", "Liang", "Xie", "Tang", "Han", "Feng",
    "Deng", "Cao", "Peng", "Zeng", "Song", "Yuan",
];
const GIVEN_NAMES: [&str; 40] = [
    "Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie",
    "Juan", "Tao", "Ming", "Chao", "Xiuying", "Hui", "Ping", "Gang", "Hao", "Xin", "Yu", "Bo",
    "Lin", "Dan", "Peng", "Hua", "Rui", "Ting", "Kai", "Xue", "Long", "Mei", "Qing", "Jian", "Lu",
    "Zhen", "Yun",
];

const SHIFT_IDS: [&str; 3] = ["A", "B", "C"];
const OPERATORS_PER_CREW: usize = 10;
const ATTENDANCE: f64 = 0.92;
/// Longest time a gown may be worn in the cleanrooms before re-gowning (site SOP).
pub(crate) const MAX_GOWNING_HOURS: f64 = 4.5;

/// The shift on duty at a local hour, and how many hours it has been on.
pub(crate) fn shift_at(hour: f64) -> (usize, f64) {
    if (6.0..14.0).contains(&hour) {
        (0, hour - 6.0)
    } else if (14.0..22.0).contains(&hour) {
        (1, hour - 14.0)
    } else {
        (2, (hour - 22.0).rem_euclid(24.0))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Operator {
    pub(crate) name: String,
    /// Simulated time at which the operator's GMP / equipment training expires.
    trained_until: f64,
}

impl Operator {
    pub(crate) fn qualified(&self, now: f64) -> bool {
        now < self.trained_until
    }
}

#[derive(Debug, Clone)]
struct Crew {
    lead: String,
    operators: Vec<Operator>,
}

/// What happened to the people of a line in a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShiftEvent {
    None,
    /// A new crew took over: operators reassigned, everyone entering gowns afresh.
    NewShift,
    /// The crew came back from its mid-shift break and re-gowned.
    Break,
}

#[derive(Debug, Clone)]
pub(crate) struct Roster {
    crews: Vec<Crew>,
    current: usize,
    shift_start: f64,
    /// Indexes into the current crew of the operators who came to work.
    present: Vec<usize>,
    break_at: Option<f64>,
}

impl Roster {
    pub(crate) fn new(hour: f64, now: f64, rng: &mut SmallRng) -> Self {
        let mut used = BTreeSet::new();
        let mut name = |rng: &mut SmallRng| loop {
            let n = format!(
                "{} {}",
                SURNAMES[rng.random_range(0..SURNAMES.len())],
                GIVEN_NAMES[rng.random_range(0..GIVEN_NAMES.len())]
            );
            if used.insert(n.clone()) {
                return n;
            }
        };
        let crews = (0..SHIFT_IDS.len())
            .map(|_| Crew {
                lead: name(rng),
                operators: (0..OPERATORS_PER_CREW)
                    .map(|_| Operator {
                        name: name(rng),
                        // Some trainings have already lapsed at the start of the simulation.
                        trained_until: now + uniform(rng, -20.0, 240.0) * 86_400.0,
                    })
                    .collect(),
            })
            .collect();
        let (current, into) = shift_at(hour);
        let mut roster = Roster {
            crews,
            current,
            shift_start: now - into * 3600.0,
            present: Vec::new(),
            break_at: None,
        };
        roster.take_attendance(now, rng);
        roster
    }

    fn take_attendance(&mut self, now: f64, rng: &mut SmallRng) {
        let crew = &mut self.crews[self.current];
        self.present = (0..crew.operators.len())
            .filter(|_| rng.random::<f64>() < ATTENDANCE)
            .collect();
        // Lapsed trainings get renewed within a few days.
        for op in &mut crew.operators {
            if !op.qualified(now) && rng.random::<f64>() < 0.15 {
                op.trained_until = now + 365.0 * 86_400.0;
            }
        }
        // One shift in ten skips the break re-gowning: the gowning time runs out.
        self.break_at = (rng.random::<f64>() > 0.1)
            .then(|| self.shift_start + uniform(rng, 3.5, 4.5) * 3600.0)
            .filter(|at| *at > now);
    }

    pub(crate) fn update(&mut self, hour: f64, now: f64, rng: &mut SmallRng) -> ShiftEvent {
        let (shift, into) = shift_at(hour);
        if shift != self.current {
            self.current = shift;
            self.shift_start = now - into * 3600.0;
            self.take_attendance(now, rng);
            return ShiftEvent::NewShift;
        }
        if self.break_at.is_some_and(|at| now >= at) {
            self.break_at = None;
            return ShiftEvent::Break;
        }
        ShiftEvent::None
    }

    pub(crate) fn shift_id(&self) -> &'static str {
        SHIFT_IDS[self.current]
    }

    pub(crate) fn lead(&self) -> &str {
        &self.crews[self.current].lead
    }

    pub(crate) fn on_shift(&self) -> usize {
        self.present.len()
    }

    pub(crate) fn qualified(&self, now: f64) -> usize {
        let crew = &self.crews[self.current];
        self.present
            .iter()
            .filter(|&&i| crew.operators[i].qualified(now))
            .count()
    }

    pub(crate) fn shift_start(&self) -> f64 {
        self.shift_start
    }

    pub(crate) fn elapsed_h(&self, now: f64) -> f64 {
        (now - self.shift_start) / 3600.0
    }

    /// The operator who runs the `n`-th process unit of the line this shift.
    pub(crate) fn assigned(&self, n: usize) -> Option<&Operator> {
        if self.present.is_empty() {
            return None;
        }
        let crew = &self.crews[self.current];
        Some(&crew.operators[self.present[n % self.present.len()]])
    }
}

/// Who is in a cleanroom and how long ago they gowned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Occupancy {
    pub(crate) count: u32,
    pub(crate) gowned_at: f64,
    /// Until when a gowning deviation (found at an entry check) is open.
    pub(crate) violation_until: f64,
}

impl Occupancy {
    /// Everyone entering puts on a fresh gown; now and then the entry check finds a fault.
    pub(crate) fn gown(&mut self, now: f64, rng: &mut SmallRng) {
        self.gowned_at = now;
        if rng.random::<f64>() < 0.03 {
            self.violation_until = now + uniform(rng, 600.0, 2400.0);
        }
    }

    pub(crate) fn set_count(&mut self, count: u32, now: f64, rng: &mut SmallRng) {
        if self.count == 0 && count > 0 {
            self.gown(now, rng);
        }
        self.count = count;
    }

    pub(crate) fn hours_since_gowning(&self, now: f64) -> f64 {
        ((now - self.gowned_at) / 3600.0).max(0.0)
    }

    pub(crate) fn gowning_ok(&self, now: f64) -> bool {
        self.count == 0
            || (now >= self.violation_until && self.hours_since_gowning(now) <= MAX_GOWNING_HOURS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shifts_follow_the_local_clock() {
        assert_eq!(shift_at(6.0), (0, 0.0));
        assert_eq!(shift_at(13.5), (0, 7.5));
        assert_eq!(shift_at(14.0), (1, 0.0));
        assert_eq!(shift_at(23.0), (2, 1.0));
        assert_eq!(shift_at(2.0), (2, 4.0));
    }

    #[test]
    fn a_new_crew_takes_over_at_the_shift_boundary() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut roster = Roster::new(13.9, 0.0, &mut rng);
        assert_eq!(roster.shift_id(), "A");
        let lead_a = roster.lead().to_string();
        let event = roster.update(14.01, 0.11 * 3600.0, &mut rng);
        assert_eq!(event, ShiftEvent::NewShift);
        assert_eq!(roster.shift_id(), "B");
        assert_ne!(roster.lead(), lead_a);
        assert!(roster.elapsed_h(0.11 * 3600.0) < 0.02);
        assert!(roster.qualified(0.0) <= roster.on_shift());
    }
}
