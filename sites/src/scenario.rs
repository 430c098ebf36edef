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
    pub part: String,
    pub after_hours: f64,
    pub factor: f64,
}

/// The scenarios shipped with the simulator (`sites/scenarios/`), by id (the file name).
const BUILTIN: [(&str, &str); 3] = [
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
            if Part::parse(&f.part).is_none() {
                return Err(invalid(
                    "part",
                    format!("`{}` is not bearing, tooling or filter", f.part),
                ));
            }
            if !(f.after_hours.is_finite() && f.after_hours >= 0.0) {
                return Err(invalid(
                    "after_hours",
                    format!("{} is not ≥ 0", f.after_hours),
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
            let ok = Part::parse(&f.part)
                .is_some_and(|p| plant.inject(&f.line, &f.equipment, p, f.factor));
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
    fn the_builtin_scenarios_parse_and_name_units_the_plants_have() {
        let scenarios = builtin_scenarios().unwrap();
        assert_eq!(scenarios.len(), 3);
        let sites = crate::builtin_sites().unwrap();
        let start = chrono::Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        for (id, sc) in &scenarios {
            assert!(!sc.name.is_empty() && !sc.description.is_empty(), "{id}");
            for f in &sc.faults {
                let site = sites.iter().find(|s| s.id == f.site).expect(&f.site);
                let mut plant = Plant::new(site, 1, start);
                let part = Part::parse(&f.part).unwrap();
                assert!(
                    plant.inject(&f.line, &f.equipment, part, f.factor),
                    "{id}: {f:?} must hit a real unit and part"
                );
            }
        }
    }

    #[test]
    fn a_bad_scenario_names_the_file_and_the_key() {
        let e = Scenario::parse(&TEXT.replace("bearing\"", "gearbox\""), "s.toml").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.toml: fault[0].part: `gearbox` is not bearing, tooling or filter"
        );
        let e = Scenario::parse(&TEXT.replace("factor = 50.0", "factr = 50.0"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml: ") && e.contains("factr"), "{e}");
        let e = Scenario::parse(&TEXT.replace("1.0", "-1.0"), "s.toml").unwrap_err();
        assert!(e.to_string().contains("fault[0].after_hours"), "{e}");
    }
}
