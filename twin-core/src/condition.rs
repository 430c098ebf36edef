//! Condition monitoring: hourly windows of the signals that show each unit's wearing parts,
//! the degradation estimated from every window, and where each part is heading.
//!
//! Windows are cut on source time, so a replay or an offline run builds the same windows as
//! live data did. A signal counts only while its unit executes: a stopped drive's vibration
//! says nothing about its bearing.

use std::collections::VecDeque;

use analytics::maintenance::{project, PartModel};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use model::{Site, Value};
use serde::Serialize;

use crate::maintenance::MaintenanceModels;

/// The signals that show each wearing part, per equipment type (`*`: any type that has
/// the first of them). The first signal must be seen in a window for the window to count;
/// a unit without one of the others leaves it missing.
pub const WATCHED: &[(&str, &str, &[&str])] = &[
    (
        "*",
        "bearing",
        &["vibration", "bearing_temp", "power_kw", "motor_current"],
    ),
    (
        "tablet_press",
        "tooling",
        &[
            "ejection_force",
            "weight_rsd",
            "main_compression_force",
            "punch_compressions",
        ],
    ),
    ("mill", "tooling", &["screen_wear", "throughput"]),
    (
        "blister_packer",
        "tooling",
        &["vision_reject_rate", "sealing_tool_cycles", "speed"],
    ),
    (
        "fluid_bed_dryer",
        "filter",
        &["filter_dp", "air_flow", "fan_speed"],
    ),
    (
        "dispensing_booth",
        "filter",
        &["hepa_filter_dp", "fan_speed", "downflow_velocity"],
    ),
];

/// The parts watched on a kind of equipment and their signals: its own entry for a part,
/// else the one for every kind.
pub fn watched(kind: &str) -> Vec<(&'static str, &'static [&'static str])> {
    let mut out: Vec<(&str, &[&str])> = Vec::new();
    for (k, part, list) in WATCHED {
        if *k != kind && *k != "*" {
            continue;
        }
        match out.iter_mut().find(|(p, _)| p == part) {
            Some(slot) if *k == kind => slot.1 = list,
            Some(_) => {}
            None => out.push((part, list)),
        }
    }
    out
}

/// Windows kept per unit: the trend of a part is fitted over this much history.
const KEEP_WINDOWS: usize = 24 * 8;
/// Fewest samples of a signal that make its window mean.
const MIN_SAMPLES: u32 = 3;
/// A renewal shows as the estimate dropping by this much after the unit stood still.
const RENEWAL_DROP: f64 = 0.2;

/// One closed window of a unit.
#[derive(Debug, Clone)]
pub struct Window {
    pub end: DateTime<Utc>,
    /// Mean of each of the unit's watched signals while it executed (`NaN`: not seen).
    pub means: Vec<f64>,
    /// The unit stood still for maintenance or repair (STOPPED, ABORTED) in the window.
    pub stopped: bool,
    /// Degradation estimate per watched part (`None`: not scored yet; `NaN`: no data).
    est: Vec<Option<f64>>,
}

/// A wearing part of a unit and which of the unit's signals show it.
#[derive(Debug, Clone)]
pub struct WatchedPart {
    pub part: String,
    pub signals: Vec<usize>,
}

/// A unit's watched signals and windows.
#[derive(Debug, Clone)]
pub struct UnitWindows {
    pub line: String,
    pub area: String,
    pub equipment: String,
    pub kind: String,
    pub signals: Vec<String>,
    pub parts: Vec<WatchedPart>,
    running: bool,
    stopped: bool,
    sums: Vec<(f64, u32)>,
    window_end: Option<DateTime<Utc>>,
    pub windows: VecDeque<Window>,
}

/// A closed window handed out for training: the features of each part.
#[derive(Debug, Clone)]
pub struct ClosedWindow {
    pub line: String,
    pub equipment: String,
    pub kind: String,
    pub end: DateTime<Utc>,
    /// Part name and the means of its signals.
    pub parts: Vec<(String, Vec<f64>)>,
}

/// Where one part of one unit stands: the prediction shown to maintenance.
#[derive(Debug, Clone, Serialize)]
pub struct PartRisk {
    pub site: String,
    pub area: String,
    pub line: String,
    pub equipment: String,
    pub kind: String,
    pub part: String,
    /// End of the last window the prediction uses.
    pub at: DateTime<Utc>,
    /// Start of the part's current life as seen in the data (the last renewal, or the
    /// start of the history).
    pub since: DateTime<Utc>,
    pub health: f64,
    pub wear: f64,
    pub rate_per_h: f64,
    pub rul_h: Option<f64>,
    pub rul_low_h: Option<f64>,
    pub rul_high_h: Option<f64>,
    pub p_fail: f64,
    pub horizon_h: f64,
    /// The signals behind the prediction, strongest first.
    pub drivers: Vec<Driver>,
    pub windows: usize,
    /// The unit stood still (maintenance, repair) after the last window with data: the
    /// part may have been renewed, so no new alert is raised until data arrives.
    pub awaiting_data: bool,
    pub model_version: String,
    pub fingerprint: String,
}

/// A signal behind a prediction: its level now against its healthy level.
#[derive(Debug, Clone, Serialize)]
pub struct Driver {
    /// Tag path of the signal.
    pub path: String,
    pub signal: String,
    pub value: f64,
    pub healthy: f64,
    /// Standard deviations from healthy.
    pub z: f64,
    /// Share of the estimate that rests on the signal.
    pub weight: f64,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    State(usize),
    Feature(usize, usize),
}

/// Condition windows of every watched unit of one site.
#[derive(Debug, Clone)]
pub struct ConditionMonitor {
    site: String,
    /// Per signal in `site.signals()` order.
    roles: Vec<Option<Role>>,
    units: Vec<UnitWindows>,
    /// Closed windows kept for whoever trains models (off unless asked for).
    collect: Option<Vec<ClosedWindow>>,
    /// The models the cached estimates came from.
    scored_with: String,
    /// Plant hours per hour of source time (1 for a real plant; a simulator's speed-up).
    time_scale: f64,
}

impl ConditionMonitor {
    pub fn new(site: &Site) -> Self {
        let mut roles = Vec::with_capacity(site.signal_count());
        let mut units = Vec::new();
        for line in &site.lines {
            for eq in &line.equipment {
                let kind = eq.kind.clone().unwrap_or_else(|| eq.id.clone());
                let has = |s: &str| eq.signals.iter().any(|x| x.id == s);
                let mut signals: Vec<String> = Vec::new();
                let mut parts = Vec::new();
                for (part, list) in watched(&kind) {
                    if !has(list[0]) {
                        continue;
                    }
                    let idx = list
                        .iter()
                        .map(|s| match signals.iter().position(|x| x == s) {
                            Some(i) => i,
                            None => {
                                signals.push((*s).to_string());
                                signals.len() - 1
                            }
                        })
                        .collect();
                    parts.push(WatchedPart {
                        part: part.to_string(),
                        signals: idx,
                    });
                }
                let unit = (!parts.is_empty() && has("state")).then_some(units.len());
                for s in &eq.signals {
                    roles.push(unit.and_then(|u| {
                        if s.id == "state" {
                            Some(Role::State(u))
                        } else {
                            signals
                                .iter()
                                .position(|x| *x == s.id)
                                .map(|j| Role::Feature(u, j))
                        }
                    }));
                }
                if unit.is_some() {
                    units.push(UnitWindows {
                        line: line.id.clone(),
                        area: line.area.clone(),
                        equipment: eq.id.clone(),
                        kind,
                        sums: vec![(0.0, 0); signals.len()],
                        signals,
                        parts,
                        running: false,
                        stopped: false,
                        window_end: None,
                        windows: VecDeque::new(),
                    });
                }
            }
        }
        ConditionMonitor {
            site: site.id.clone(),
            roles,
            units,
            collect: None,
            scored_with: String::new(),
            time_scale: 1.0,
        }
    }

    /// For plants whose clock runs faster than their timestamps (a simulator at speed):
    /// windows span one plant hour and trends are in plant hours.
    pub fn set_time_scale(&mut self, scale: f64) {
        self.time_scale = time_scale(scale);
    }

    fn window(&self) -> TimeDelta {
        TimeDelta::milliseconds((3.6e6 / self.time_scale).round().max(1000.0) as i64)
    }

    pub fn units(&self) -> &[UnitWindows] {
        &self.units
    }

    /// Keeps every closed window for [`Self::take_closed`] (training from history).
    pub fn collect_windows(&mut self) {
        self.collect.get_or_insert_with(Vec::new);
    }

    /// Windows closed since the last call (only while collecting).
    pub fn take_closed(&mut self) -> Vec<ClosedWindow> {
        self.collect
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Takes values of the site's signals, by index in `site.signals()` order.
    pub fn observe<'a>(
        &mut self,
        values: impl IntoIterator<Item = (usize, &'a Value, DateTime<Utc>)>,
    ) {
        for (i, v, t) in values {
            let Some(role) = self.roles.get(i).copied().flatten() else {
                continue;
            };
            let u = match role {
                Role::State(u) | Role::Feature(u, _) => u,
            };
            self.roll(u, t);
            let unit = &mut self.units[u];
            match (role, v) {
                (Role::State(_), Value::Text(s)) => {
                    unit.running = s == "EXECUTE";
                    unit.stopped |= s == "STOPPED" || s == "ABORTED";
                }
                (Role::Feature(_, j), v) if unit.running => {
                    if let Some(x) = v.as_f64().filter(|x| x.is_finite()) {
                        unit.sums[j].0 += x;
                        unit.sums[j].1 += 1;
                    }
                }
                _ => {}
            }
        }
    }

    /// Closes the unit's window when `t` has passed its end.
    fn roll(&mut self, u: usize, t: DateTime<Utc>) {
        let len = self.window();
        let unit = &mut self.units[u];
        let end = match unit.window_end {
            Some(end) if t < end => return,
            Some(end) => end,
            None => {
                unit.window_end = Some(window_after(t, len));
                return;
            }
        };
        let means: Vec<f64> = unit
            .sums
            .iter()
            .map(|&(s, n)| {
                if n >= MIN_SAMPLES {
                    s / n as f64
                } else {
                    f64::NAN
                }
            })
            .collect();
        unit.sums.iter_mut().for_each(|s| *s = (0.0, 0));
        if let Some(c) = &mut self.collect {
            c.push(ClosedWindow {
                line: unit.line.clone(),
                equipment: unit.equipment.clone(),
                kind: unit.kind.clone(),
                end,
                parts: unit
                    .parts
                    .iter()
                    .map(|p| {
                        (
                            p.part.clone(),
                            p.signals.iter().map(|&j| means[j]).collect(),
                        )
                    })
                    .collect(),
            });
        }
        unit.windows.push_back(Window {
            end,
            means,
            stopped: std::mem::take(&mut unit.stopped),
            est: vec![None; unit.parts.len()],
        });
        if unit.windows.len() > KEEP_WINDOWS {
            unit.windows.pop_front();
        }
        unit.window_end = Some(window_after(t, len));
    }

    /// The estimated wear of one part per window kept, with whether the unit stood still
    /// in it (after a [`Self::score`]; `NaN`: no data).
    pub fn series(
        &self,
        line: &str,
        equipment: &str,
        part: &str,
    ) -> Vec<(DateTime<Utc>, f64, bool)> {
        let Some(u) = self
            .units
            .iter()
            .find(|u| u.line == line && u.equipment == equipment)
        else {
            return Vec::new();
        };
        let Some(pi) = u.parts.iter().position(|p| p.part == part) else {
            return Vec::new();
        };
        u.windows
            .iter()
            .map(|w| (w.end, w.est[pi].unwrap_or(f64::NAN), w.stopped))
            .collect()
    }

    /// Scores every watched part that has a model: estimates the windows not yet
    /// estimated, finds the part's current life and projects it.
    pub fn score(&mut self, models: &MaintenanceModels) -> Vec<PartRisk> {
        if self.scored_with != models.fingerprint {
            for u in &mut self.units {
                for w in &mut u.windows {
                    w.est.iter_mut().for_each(|e| *e = None);
                }
            }
            self.scored_with.clone_from(&models.fingerprint);
        }
        let mut out = Vec::new();
        for unit in &mut self.units {
            for (pi, part) in unit.parts.iter().enumerate() {
                let Some(model) = models.part(&unit.kind, &part.part) else {
                    continue;
                };
                let features =
                    |w: &Window| -> Vec<f64> { part.signals.iter().map(|&j| w.means[j]).collect() };
                for w in &mut unit.windows {
                    if w.est[pi].is_none() {
                        let f = features(w);
                        w.est[pi] = Some(if f[0].is_finite() {
                            model.estimate(&f)
                        } else {
                            f64::NAN
                        });
                    }
                }
                if let Some(r) = risk(
                    &self.site,
                    unit,
                    pi,
                    model,
                    models.horizon_h,
                    self.time_scale,
                ) {
                    out.push(r);
                }
            }
        }
        out
    }
}

/// The projection of one part from its windows since its last renewal.
fn risk(
    site: &str,
    unit: &UnitWindows,
    pi: usize,
    model: &PartModel,
    horizon_h: f64,
    time_scale: f64,
) -> Option<PartRisk> {
    let t0 = unit.windows.front()?.end;
    let hours = |t: DateTime<Utc>| (t - t0).num_milliseconds() as f64 / 3.6e6 * time_scale;
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut since = t0;
    let mut stood_still = false;
    let mut last_seen: Option<&Window> = None;
    for w in &unit.windows {
        stood_still |= w.stopped;
        let Some(e) = w.est[pi].filter(|e| e.is_finite()) else {
            continue;
        };
        if stood_still && !points.is_empty() {
            let mut recent: Vec<f64> = points.iter().rev().take(6).map(|p| p.1).collect();
            recent.sort_by(f64::total_cmp);
            if e < recent[recent.len() / 2] - RENEWAL_DROP {
                points.clear();
                since = w.end;
            }
        }
        // A stop inside a window with data may have come after that data: the next
        // window is the first that surely shows the part as it came out of the stop.
        stood_still = w.stopped;
        points.push((hours(w.end), e));
        last_seen = Some(w);
    }
    let last = last_seen?;
    let p = project(model, &points, horizon_h)?;
    let features: Vec<f64> = unit.parts[pi]
        .signals
        .iter()
        .map(|&j| last.means[j])
        .collect();
    let drivers = model
        .drivers(&features)
        .into_iter()
        .map(|(j, z, weight)| {
            let signal = model.signals[j].clone();
            Driver {
                path: format!(
                    "{site}/{}/{}/{}/{signal}",
                    unit.area, unit.line, unit.equipment
                ),
                value: features[j],
                healthy: model.healthy[j].0,
                z,
                weight,
                signal,
            }
        })
        .collect();
    let finite = |x: f64| x.is_finite().then_some(x);
    Some(PartRisk {
        site: site.to_string(),
        area: unit.area.clone(),
        line: unit.line.clone(),
        equipment: unit.equipment.clone(),
        kind: unit.kind.clone(),
        part: unit.parts[pi].part.clone(),
        at: last.end,
        since,
        health: p.health,
        wear: p.wear,
        rate_per_h: p.rate_per_h,
        rul_h: finite(p.rul_h),
        rul_low_h: finite(p.rul_low_h),
        rul_high_h: finite(p.rul_high_h),
        p_fail: p.p_fail,
        horizon_h,
        drivers,
        windows: points.len(),
        awaiting_data: stood_still,
        model_version: model.version.clone(),
        fingerprint: model.fingerprint.clone(),
    })
}

/// A usable time scale: plant hours per source hour, 1 for anything not a positive number.
pub(crate) fn time_scale(scale: f64) -> f64 {
    if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    }
}

/// The end of the window `t` falls in: windows are aligned to whole multiples of `len`.
fn window_after(t: DateTime<Utc>, len: TimeDelta) -> DateTime<Utc> {
    t.duration_trunc(len).unwrap_or(t) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tests::test_site;

    fn at(s: i64) -> DateTime<Utc> {
        // 1_800_000_000 s is a whole hour (500,000 h), so windows start here.
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn windows_average_only_while_the_unit_executes_and_close_on_source_time() {
        let mut site = test_site();
        // The test press gets a vibration signal, so its bearing is watched.
        let mut vib = site.lines[0].equipment[0].signals[1].clone();
        vib.id = "vibration".into();
        site.lines[0].equipment[0].signals.push(vib);
        let state = 0;
        let vib = site.lines[0].equipment[0].signals.len() - 1;
        let mut m = ConditionMonitor::new(&site);
        m.collect_windows();
        assert_eq!(m.units().len(), 1);
        assert_eq!(m.units()[0].parts[0].part, "bearing");
        let run = Value::Text("EXECUTE".into());
        let idle = Value::Text("IDLE".into());
        m.observe([(state, &run, at(0))]);
        for s in 0..10 {
            m.observe([(vib, &Value::Float(2.0), at(60 + s * 60))]);
        }
        m.observe([(state, &idle, at(1000))]);
        // A stopped drive's reading is not the bearing's.
        for s in 0..10 {
            m.observe([(vib, &Value::Float(0.1), at(1100 + s * 60))]);
        }
        assert!(m.take_closed().is_empty(), "the hour is not over");
        m.observe([(vib, &Value::Float(0.1), at(3600))]);
        let closed = m.take_closed();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].end, at(3600));
        let (part, features) = &closed[0].parts[0];
        assert_eq!(part, "bearing");
        assert_eq!(features[0], 2.0, "mean of the running samples only");
        assert!(features[1].is_nan(), "bearing temperature never seen");
    }

    #[test]
    fn a_time_scale_shortens_windows_to_one_plant_hour() {
        let mut site = test_site();
        let mut vib = site.lines[0].equipment[0].signals[1].clone();
        vib.id = "vibration".into();
        site.lines[0].equipment[0].signals.push(vib);
        let vib = site.lines[0].equipment[0].signals.len() - 1;
        let mut m = ConditionMonitor::new(&site);
        m.collect_windows();
        m.set_time_scale(60.0);
        m.observe([(0, &Value::Text("EXECUTE".into()), at(0))]);
        for s in 0..130 {
            m.observe([(vib, &Value::Float(1.0), at(s))]);
        }
        // 130 s at 60× are two whole plant hours.
        assert_eq!(m.take_closed().len(), 2);
    }
}
