//! Lifecycle records of the process units: identity, running hours, starts and cycles
//! counted from the live data, and the maintenance and calibration history that resets the
//! "since maintenance" counters.
//!
//! The counters are a fold over the historian's samples, so they survive a restart the way
//! the rest of the twin does: by reading the store again. Every step of the fold is safe to
//! see twice — a sample no newer than the last of its signal is ignored, counters add only
//! their rises — so a replayed or re-read sample never counts twice. Maintenance actions
//! are kept in their own append-only log and apply from their time on.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};

use chrono::{DateTime, TimeDelta, Utc};
use model::{Site, Value};
use serde::{Deserialize, Serialize};

/// A gap in a unit's data longer than this is not counted as running time: nobody knows
/// what the unit did (the connector or the plant was down).
const MAX_GAP: TimeDelta = TimeDelta::seconds(60);
/// Calibration interval when the site file gives none.
const CALIBRATION_DAYS: i64 = 180;

/// A maintenance or calibration action on a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceRecord {
    pub site: String,
    pub line: String,
    pub equipment: String,
    pub at: DateTime<Utc>,
    pub user: String,
    pub work_order: String,
    /// `maintenance` (resets the since-maintenance counters) or `calibration`.
    pub action: String,
    pub part: Option<String>,
    pub comment: String,
}

/// Running hours, starts and cycles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counters {
    pub running_hours: f64,
    pub starts: u64,
    pub cycles: u64,
}

impl Counters {
    fn add(&mut self, hours: f64, starts: u64, cycles: u64) {
        self.running_hours += hours;
        self.starts += starts;
        self.cycles += cycles;
    }
}

/// One unit's lifecycle.
#[derive(Debug, Clone, Serialize)]
pub struct LifecycleRecord {
    pub site: String,
    pub area: String,
    pub line: String,
    pub equipment: String,
    pub kind: String,
    pub maker: Option<String>,
    pub serial: Option<String>,
    pub installed: Option<String>,
    /// Counted since the twin's history began.
    pub total: Counters,
    /// Counted since the last maintenance action (or the start of the history).
    pub since_maintenance: Counters,
    pub state: Option<String>,
    pub last_maintenance: Option<DateTime<Utc>>,
    pub last_calibration: Option<DateTime<Utc>>,
    pub calibration_due: Option<DateTime<Utc>>,
    pub history: Vec<MaintenanceRecord>,
    /// Source time of the newest sample counted.
    pub as_of: Option<DateTime<Utc>>,
    #[serde(skip)]
    fold: Fold,
}

#[derive(Debug, Clone, Default)]
struct Fold {
    running: bool,
    /// Newest source time seen per watched signal: state, good, reject.
    last: [Option<DateTime<Utc>>; 3],
    count: [Option<i64>; 2],
}

#[derive(Debug, Clone, Copy)]
enum Role {
    /// Any signal of the unit: it tells the unit's data is flowing.
    Seen,
    State,
    Count(usize),
}

/// The lifecycle records of one site's units.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    roles: Vec<Option<(usize, Role)>>,
    units: Vec<LifecycleRecord>,
    /// Plant hours per hour of source time (see [`crate::ConditionMonitor::set_time_scale`]).
    time_scale: f64,
}

impl Lifecycle {
    pub fn new(site: &Site) -> Self {
        let mut roles = Vec::with_capacity(site.signal_count());
        let mut units = Vec::new();
        for line in &site.lines {
            for eq in &line.equipment {
                let unit = eq
                    .signals
                    .iter()
                    .any(|s| s.id == "state")
                    .then_some(units.len());
                for s in &eq.signals {
                    roles.push(unit.map(|u| {
                        let role = match s.id.as_str() {
                            "state" => Role::State,
                            "good_count" => Role::Count(0),
                            "reject_count" => Role::Count(1),
                            _ => Role::Seen,
                        };
                        (u, role)
                    }));
                }
                if unit.is_some() {
                    units.push(LifecycleRecord {
                        site: site.id.clone(),
                        area: line.area.clone(),
                        line: line.id.clone(),
                        equipment: eq.id.clone(),
                        kind: eq.kind.clone().unwrap_or_default(),
                        maker: eq.maker.clone(),
                        serial: eq.serial.clone(),
                        installed: eq.installed.clone(),
                        total: Counters::default(),
                        since_maintenance: Counters::default(),
                        state: None,
                        last_maintenance: None,
                        last_calibration: None,
                        calibration_due: None,
                        history: Vec::new(),
                        as_of: None,
                        fold: Fold::default(),
                    });
                }
            }
        }
        Lifecycle {
            roles,
            units,
            time_scale: 1.0,
        }
    }

    pub fn set_time_scale(&mut self, scale: f64) {
        self.time_scale = crate::condition::time_scale(scale);
    }

    pub fn records(&self) -> &[LifecycleRecord] {
        &self.units
    }

    /// Takes values of the site's signals, by index in `site.signals()` order.
    pub fn observe<'a>(
        &mut self,
        values: impl IntoIterator<Item = (usize, &'a Value, DateTime<Utc>)>,
    ) {
        for (i, v, t) in values {
            let Some((u, role)) = self.roles.get(i).copied().flatten() else {
                continue;
            };
            self.units[u].observe(role, v, t, self.time_scale);
        }
    }

    /// Records a maintenance or calibration action. Returns false when the unit is not
    /// one of this site's.
    pub fn record(&mut self, r: MaintenanceRecord) -> bool {
        let Some(u) = self
            .units
            .iter_mut()
            .find(|u| u.site == r.site && u.line == r.line && u.equipment == r.equipment)
        else {
            return false;
        };
        match r.action.as_str() {
            "calibration" => {
                u.last_calibration = Some(r.at);
                u.calibration_due = Some(r.at + TimeDelta::days(CALIBRATION_DAYS));
            }
            _ => {
                u.last_maintenance = Some(r.at);
                u.since_maintenance = Counters::default();
            }
        }
        u.history.push(r);
        true
    }
}

impl LifecycleRecord {
    fn observe(&mut self, role: Role, v: &Value, t: DateTime<Utc>, time_scale: f64) {
        // Running time accrues between consecutive samples of the unit, whatever signal
        // they are of, while it executes — but not across a gap in its data.
        if let Some(prev) = self.as_of {
            if t <= prev && !matches!(role, Role::State | Role::Count(_)) {
                return;
            }
            if t > prev && self.fold.running && t - prev <= MAX_GAP {
                let h = (t - prev).num_milliseconds() as f64 / 3.6e6 * time_scale;
                self.count(t, h, 0, 0);
            }
        }
        self.as_of = Some(self.as_of.map_or(t, |p| p.max(t)));
        match role {
            Role::Seen => {}
            Role::State => {
                if self.fold.last[0].is_some_and(|l| t <= l) {
                    return;
                }
                self.fold.last[0] = Some(t);
                let Value::Text(s) = v else { return };
                let running = s == "EXECUTE";
                if running && !self.fold.running {
                    self.count(t, 0.0, 1, 0);
                }
                self.fold.running = running;
                self.state = Some(s.clone());
            }
            Role::Count(k) => {
                if self.fold.last[1 + k].is_some_and(|l| t <= l) {
                    return;
                }
                self.fold.last[1 + k] = Some(t);
                let Some(n) = v.as_f64().map(|x| x as i64) else {
                    return;
                };
                // A fall is a totaliser reset or a restarted controller, not negative output.
                if let Some(prev) = self.fold.count[k].filter(|p| n > *p) {
                    self.count(t, 0.0, 0, (n - prev) as u64);
                }
                self.fold.count[k] = Some(n);
            }
        }
    }

    fn count(&mut self, t: DateTime<Utc>, hours: f64, starts: u64, cycles: u64) {
        self.total.add(hours, starts, cycles);
        if self.last_maintenance.is_none_or(|m| t >= m) {
            self.since_maintenance.add(hours, starts, cycles);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a maintenance record: {source}")]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("no unit {0} on any site")]
    UnknownUnit(String),
}

/// The append-only log of maintenance actions, one JSON record per line. A record is on
/// disk (fsync) before it takes effect, so an acknowledged action survives a crash.
#[derive(Debug)]
pub struct MaintenanceLog {
    path: PathBuf,
    file: File,
}

impl MaintenanceLog {
    /// Opens (creating) the log and reads the records it holds, oldest first.
    pub fn open(path: &Path) -> Result<(MaintenanceLog, Vec<MaintenanceRecord>), LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io)?;
        let mut records = Vec::new();
        for (n, line) in BufReader::new(File::open(path).map_err(io)?)
            .lines()
            .enumerate()
        {
            let line = line.map_err(io)?;
            if line.trim().is_empty() {
                continue;
            }
            records.push(
                serde_json::from_str(&line).map_err(|source| LogError::Parse {
                    path: path.to_path_buf(),
                    line: n + 1,
                    source,
                })?,
            );
        }
        Ok((
            MaintenanceLog {
                path: path.to_path_buf(),
                file,
            },
            records,
        ))
    }

    fn append(&mut self, r: &MaintenanceRecord) -> Result<(), LogError> {
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)
    }
}

impl crate::Twin {
    /// Keeps maintenance actions in `log` from now on, after applying the ones it holds.
    pub fn attach_maintenance_log(&self, log: MaintenanceLog, records: Vec<MaintenanceRecord>) {
        for r in records {
            self.apply_maintenance(r);
        }
        *self
            .maintenance_log
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(log);
    }

    /// Records a maintenance or calibration action: on disk first (when a log is
    /// attached), then in the unit's lifecycle.
    pub fn record_maintenance(&self, r: MaintenanceRecord) -> Result<(), LogError> {
        let unit = format!("{}/{}/{}", r.site, r.line, r.equipment);
        if !self
            .lifecycle(Some(&r.site))
            .iter()
            .any(|u| u.line == r.line && u.equipment == r.equipment)
        {
            return Err(LogError::UnknownUnit(unit));
        }
        if let Some(log) = self
            .maintenance_log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            log.append(&r)?;
        }
        self.apply_maintenance(r);
        Ok(())
    }

    fn apply_maintenance(&self, r: MaintenanceRecord) -> bool {
        self.lifecycles.iter().any(|l| {
            l.lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(r.clone())
        })
    }

    /// Lifecycle records of every unit, optionally of one site.
    pub fn lifecycle(&self, site: Option<&str>) -> Vec<LifecycleRecord> {
        self.lifecycles
            .iter()
            .flat_map(|l| {
                l.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .records()
                    .iter()
                    .filter(|r| site.is_none_or(|s| r.site == s))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tests::test_site;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn index(site: &Site, eq: &str, signal: &str) -> usize {
        site.signals()
            .position(|(_, e, s)| e.id == eq && s.id == signal)
            .unwrap()
    }

    #[test]
    fn counts_starts_running_time_and_cycles_once_each() {
        let site = test_site();
        let mut l = Lifecycle::new(&site);
        let eq = &l.records()[0].equipment.clone();
        let state = index(&site, eq, "state");
        let good = index(&site, eq, "good_count");
        let run = Value::Text("EXECUTE".into());
        let idle = Value::Text("IDLE".into());
        let feed = |l: &mut Lifecycle, i: usize, v: &Value, t: i64| l.observe([(i, v, at(t))]);
        feed(&mut l, good, &Value::Int(100), 0);
        feed(&mut l, state, &run, 0);
        for s in (10..=600).step_by(10) {
            feed(&mut l, good, &Value::Int(100 + s), s);
        }
        feed(&mut l, state, &idle, 600);
        // The same samples again (a replay): nothing changes.
        let before = l.records()[0].total;
        feed(&mut l, state, &run, 0);
        feed(&mut l, good, &Value::Int(150), 50);
        feed(&mut l, state, &idle, 600);
        let r = &l.records()[0];
        assert_eq!(r.total, before);
        assert_eq!(r.total.starts, 1);
        assert_eq!(r.total.cycles, 600);
        assert!((r.total.running_hours - 600.0 / 3600.0).abs() < 1e-9);
        // A totaliser reset is not negative output; counting resumes from the new value.
        feed(&mut l, good, &Value::Int(5), 700);
        feed(&mut l, good, &Value::Int(25), 710);
        assert_eq!(l.records()[0].total.cycles, 620);
    }

    #[test]
    fn a_gap_in_the_data_is_not_running_time_and_maintenance_resets_only_its_counters() {
        let site = test_site();
        let mut l = Lifecycle::new(&site);
        let r0 = l.records()[0].clone();
        let state = index(&site, &r0.equipment, "state");
        let good = index(&site, &r0.equipment, "good_count");
        l.observe([(state, &Value::Text("EXECUTE".into()), at(0))]);
        l.observe([(good, &Value::Int(1), at(30))]);
        // Ten minutes without data, then data again.
        l.observe([(good, &Value::Int(2), at(630))]);
        l.observe([(good, &Value::Int(3), at(660))]);
        assert!((l.records()[0].total.running_hours - 60.0 / 3600.0).abs() < 1e-9);
        assert!(l.record(MaintenanceRecord {
            site: r0.site.clone(),
            line: r0.line.clone(),
            equipment: r0.equipment.clone(),
            at: at(660),
            user: "li.wei".into(),
            work_order: "WO-1".into(),
            action: "maintenance".into(),
            part: Some("bearing".into()),
            comment: String::new(),
        }));
        l.observe([(good, &Value::Int(10), at(690))]);
        let r = &l.records()[0];
        assert_eq!(r.since_maintenance.cycles, 7);
        assert_eq!(r.total.cycles, 9);
        assert_eq!(r.history.len(), 1);
        assert_eq!(r.last_maintenance, Some(at(660)));
    }
}
