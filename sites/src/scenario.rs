//! Scenarios: faults injected on purpose at chosen moments of a simulated plant's life — for
//! training people (a bearing running hot, a filter clogging) and for tests.
//!
//! ```toml
//! name = "press bearing wearing out"
//! [[fault]]
//! site = "anhui"
//! line = "line-1"
//! equipment = "press-01"
//! part = "bearing"      # bearing | tooling | filter
//! after_hours = 2.0     # simulated hours after the simulator starts
//! factor = 40.0         # the part wears this many times faster until renewed
//!
//! [[fault]]             # a sensor failing: its signal reads Bad, with no value
//! site = "anhui"
//! line = "line-1"
//! equipment = "press-01"
//! signal = "main_bearing_temp"
//! after_hours = 1.0
//! offline_hours = 0.5
//! ```

use std::{path::Path, time::Duration};

use serde::Deserialize;

use crate::physics::{Part, Plant};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: fault[{index}].{key}: {message}")]
    Invalid {
        file: String,
        index: usize,
        key: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    /// What a trainer reads before starting it.
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "fault")]
    pub faults: Vec<Fault>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub site: String,
    pub line: String,
    pub equipment: String,
    /// A part that wears `factor` times faster; empty for a sensor fault.
    #[serde(default)]
    pub part: String,
    pub after_hours: f64,
    #[serde(default)]
    pub factor: f64,
    /// A signal whose sensor goes off line for `offline_hours`; empty for a wear fault.
    #[serde(default)]
    pub signal: String,
    #[serde(default)]
    pub offline_hours: f64,
}

impl Fault {
    /// Injects the fault into `plant` now; `false` if the plant has no such unit, part or
    /// signal.
    pub fn apply(&self, plant: &mut Plant) -> bool {
        if self.signal.is_empty() {
            Part::parse(&self.part)
                .is_some_and(|p| plant.inject(&self.line, &self.equipment, p, self.factor))
        } else {
            plant.take_offline(
                &self.line,
                &self.equipment,
                &self.signal,
                self.offline_hours,
            )
        }
    }

    /// What is injected, for logs: the part or the signal.
    pub fn target(&self) -> &str {
        if self.signal.is_empty() {
            &self.part
        } else {
            &self.signal
        }
    }
}

/// The scenarios shipped with the simulator (`sites/scenarios/`), by id (the file name).
const BUILTIN: [(&str, &str); 4] = [
    (
        "press-bearing-hot",
        include_str!("../scenarios/press-bearing-hot.toml"),
    ),
    (
        "dryer-filter-clogging",
        include_str!("../scenarios/dryer-filter-clogging.toml"),
    ),
    (
        "press-tooling-worn",
        include_str!("../scenarios/press-tooling-worn.toml"),
    ),
    (
        "sensor-offline",
        include_str!("../scenarios/sensor-offline.toml"),
    ),
];

/// The built-in scenarios, by id: what a trainer picks from in training mode.
pub fn builtin_scenarios() -> Result<Vec<(String, Scenario)>, ScenarioError> {
    BUILTIN
        .iter()
        .map(|(id, text)| {
            Ok((
                id.to_string(),
                Scenario::parse(text, &format!("{id}.toml"))?,
            ))
        })
        .collect()
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Scenario::parse(&text, &file)
    }

    /// Parses and checks a scenario; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            file: file.into(),
            message: e.to_string().trim().to_string(),
        })?;
        for (index, f) in s.faults.iter().enumerate() {
            let invalid = |key, message: String| ScenarioError::Invalid {
                file: file.into(),
                index,
                key,
                message,
            };
            if !(f.after_hours.is_finite() && f.after_hours >= 0.0) {
                return Err(invalid(
                    "after_hours",
                    format!("{} is not ≥ 0", f.after_hours),
                ));
            }
            if !f.signal.is_empty() {
                if !f.part.is_empty() {
                    return Err(invalid(
                        "part",
                        "a fault is either a part wearing or a signal's sensor off line, not both"
                            .into(),
                    ));
                }
                if !(f.offline_hours.is_finite() && f.offline_hours > 0.0) {
                    return Err(invalid(
                        "offline_hours",
                        format!("{} is not > 0", f.offline_hours),
                    ));
                }
                continue;
            }
            if Part::parse(&f.part).is_none() {
                return Err(invalid(
                    "part",
                    format!(
                        "`{}` is not bearing, tooling or filter (or give `signal`)",
                        f.part
                    ),
                ));
            }
            if !(f.factor.is_finite() && f.factor > 0.0) {
                return Err(invalid("factor", format!("{} is not > 0", f.factor)));
            }
        }
        Ok(s)
    }

    /// The faults of one site, in the order they come due.
    pub fn schedule(&self, site: &str) -> FaultSchedule {
        let mut pending: Vec<Fault> = self
            .faults
            .iter()
            .filter(|f| f.site == site)
            .cloned()
            .collect();
        pending.sort_by(|a, b| b.after_hours.total_cmp(&a.after_hours));
        FaultSchedule { pending }
    }
}

/// The faults still to inject into one plant.
#[derive(Debug, Clone, Default)]
pub struct FaultSchedule {
    /// Latest first, so the next one due is at the end.
    pending: Vec<Fault>,
}

impl FaultSchedule {
    /// Injects every fault whose time has come; returns them (a fault naming a unit or part
    /// the plant lacks is returned with `false`).
    pub fn apply_due(&mut self, plant: &mut Plant) -> Vec<(Fault, bool)> {
        let elapsed = plant.elapsed();
        let mut done = Vec::new();
        while let Some(f) = self.pending.last() {
            if elapsed < Duration::from_secs_f64(f.after_hours * 3600.0) {
                break;
            }
            let f = self.pending.pop().unwrap_or_else(|| unreachable!());
            let ok = f.apply(plant);
            done.push((f, ok));
        }
        done
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TEXT: &str = r#"
name = "bearing running hot"
[[fault]]
site = "anhui"
line = "line-1"
equipment = "press-01"
part = "bearing"
after_hours = 1.0
factor = 50.0
"#;

    #[test]
    fn a_fault_makes_its_part_wear_faster_from_its_time_on() {
        let sc = Scenario::parse(TEXT, "t.toml").unwrap();
        let site = crate::builtin_sites()
            .unwrap()
            .into_iter()
            .find(|s| s.id == "anhui")
            .unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        let mut faulty = Plant::new(&site, 3, start);
        let mut normal = Plant::new(&site, 3, start);
        let mut schedule = sc.schedule("anhui");
        assert!(sc.schedule("shenzhen").is_empty());
        for _ in 0..48 {
            for p in [&mut faulty, &mut normal] {
                p.step(Duration::from_secs(1800));
            }
            for (f, ok) in schedule.apply_due(&mut faulty) {
                assert!(ok, "{f:?} applies");
            }
        }
        assert!(schedule.is_empty());
        let w = |p: &Plant| p.health("line-1", "press-01").unwrap().bearing;
        assert!(
            w(&faulty) > w(&normal) + 0.05,
            "faulty {} vs normal {}",
            w(&faulty),
            w(&normal)
        );
    }

    #[test]
    fn an_offline_sensor_reads_null_for_its_hours_then_reads_again() {
        let (_, sc) = builtin_scenarios()
            .unwrap()
            .into_iter()
            .find(|(id, _)| id == "sensor-offline")
            .unwrap();
        let site = crate::builtin_sites()
            .unwrap()
            .into_iter()
            .find(|s| s.id == "anhui")
            .unwrap();
        let humidity = site
            .signals()
            .position(|(l, e, s)| {
                l.id == "line-1" && e.id == "room-compression" && s.id == "humidity"
            })
            .unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        let mut plant = Plant::new(&site, 1, start);
        let mut schedule = sc.schedule("anhui");
        let mut read = Vec::new();
        // Quarter-hour steps over three hours: due at 0.5 h, off line for 1 h.
        for _ in 0..12 {
            plant.step(Duration::from_secs(900));
            for (f, ok) in schedule.apply_due(&mut plant) {
                assert!(ok, "{f:?} applies");
            }
            let values = plant.sample();
            read.push(values[humidity].is_null());
            // Only the failed sensors read nothing.
            assert!(values.iter().filter(|v| v.is_null()).count() <= 2);
        }
        assert_eq!(
            read,
            [false, true, true, true, true, false, false, false, false, false, false, false]
        );
    }

    #[test]
    fn the_builtin_scenarios_parse_and_name_units_the_plants_have() {
        let scenarios = builtin_scenarios().unwrap();
        assert_eq!(scenarios.len(), 4);
        let sites = crate::builtin_sites().unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        for (id, sc) in &scenarios {
            assert!(!sc.name.is_empty() && !sc.description.is_empty(), "{id}");
            for f in &sc.faults {
                let site = sites.iter().find(|s| s.id == f.site).expect(&f.site);
                let mut plant = Plant::new(site, 1, start);
                assert!(
                    f.apply(&mut plant),
                    "{id}: {f:?} must hit a real unit and part or signal"
                );
            }
        }
    }

    #[test]
    fn a_bad_scenario_names_the_file_and_the_key() {
        let e = Scenario::parse(&TEXT.replace("bearing\"", "gearbox\""), "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: fault[0].part: `gearbox` is not bearing, tooling or filter (or give `signal`)"
        );
        let e = Scenario::parse(&TEXT.replace("factor = 50.0", "factr = 50.0"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml: ") && e.contains("factr"), "{e}");
        let e = Scenario::parse(&TEXT.replace("1.0", "-1.0"), "s.toml").unwrap_err();
        assert!(e.to_string().contains("fault[0].after_hours"), "{e}");
        let sensor = TEXT.replace("part = \"bearing\"", "signal = \"bearing_temp\"");
        let e = Scenario::parse(&sensor, "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: fault[0].offline_hours: 0 is not > 0"
        );
    }
}
