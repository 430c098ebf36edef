//! Overall equipment effectiveness per line: availability × performance × quality of its
//! bottleneck, the tablet press, per plant hour — the figure HQ compares the plants on.
//!
//! - availability: time executing ÷ planned time (executing, held, stopped or aborted; an
//!   idle or completed press has no order and is not planned),
//! - performance: turret speed ÷ its set-point while executing (at most 1),
//! - quality: tablets accepted ÷ tablets made (rises of the lifetime counters).
//!
//! Time accrues between consecutive samples of the press, whatever signal they are of (the
//! state is only sent when it changes), never across a gap in its data.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use model::{Site, Value};
use serde::Serialize;

use crate::Twin;

/// The unit whose effectiveness is the line's.
const BOTTLENECK: &str = "tablet_press";
/// Plant hours kept per line (for the trend).
const KEEP_HOURS: i64 = 72;
/// Longer than this without a sample of the press is a gap, not running time.
const MAX_GAP: TimeDelta = TimeDelta::minutes(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    State,
    Speed,
    SpeedSetPoint,
    Good,
    Reject,
    Seen,
}

/// What one plant hour of a line adds up to.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Hour {
    planned_s: f64,
    run_s: f64,
    /// Σ speed ratio × seconds executing.
    rate_s: f64,
    good: f64,
    reject: f64,
    /// Seconds the press was seen, in any state (idle and complete too).
    seen_s: f64,
}

impl Hour {
    fn add(&mut self, o: &Hour) {
        self.seen_s += o.seen_s;
        self.planned_s += o.planned_s;
        self.run_s += o.run_s;
        self.rate_s += o.rate_s;
        self.good += o.good;
        self.reject += o.reject;
    }

    fn figures(&self) -> Option<Figures> {
        if self.planned_s <= 0.0 {
            return None;
        }
        let availability = self.run_s / self.planned_s;
        let performance = if self.run_s > 0.0 {
            self.rate_s / self.run_s
        } else {
            0.0
        };
        let made = self.good + self.reject;
        let quality = if made > 0.0 { self.good / made } else { 1.0 };
        Some(Figures {
            oee: availability * performance * quality,
            availability,
            performance,
            quality,
            good: self.good,
            reject: self.reject,
            run_h: self.run_s / 3600.0,
            planned_h: self.planned_s / 3600.0,
            capacity_use: if self.seen_s > 0.0 {
                self.rate_s / self.seen_s
            } else {
                0.0
            },
        })
    }
}

/// Effectiveness over a window, each factor 0–1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Figures {
    pub oee: f64,
    pub availability: f64,
    pub performance: f64,
    pub quality: f64,
    /// Tablets accepted and rejected in the window.
    pub good: f64,
    pub reject: f64,
    /// Plant hours executing and planned.
    pub run_h: f64,
    pub planned_h: f64,
    /// Time executing at rated speed ÷ all the time the press was seen (idle, waiting for
    /// an order, included): how much of the press's capacity the line used.
    pub capacity_use: f64,
}

/// One plant hour of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    /// Start of the hour (source time).
    pub t: DateTime<Utc>,
    pub oee: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineOee {
    pub site: String,
    pub line: String,
    pub equipment: String,
    /// `None` until the window holds planned time.
    pub figures: Option<Figures>,
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteOee {
    pub site: String,
    pub figures: Option<Figures>,
    pub lines: Vec<LineOee>,
}

#[derive(Debug, Clone)]
struct LineFold {
    line: String,
    equipment: String,
    state: Option<String>,
    as_of: Option<DateTime<Utc>>,
    last_state: Option<DateTime<Utc>>,
    speed: Option<f64>,
    set_point: Option<f64>,
    counts: [Option<(DateTime<Utc>, f64)>; 2],
    hours: BTreeMap<i64, Hour>,
}

/// The OEE folds of one site's lines.
#[derive(Debug, Clone)]
pub(crate) struct Oee {
    site: String,
    roles: Vec<Option<(usize, Role)>>,
    lines: Vec<LineFold>,
    time_scale: f64,
}

impl Oee {
    pub(crate) fn new(site: &Site) -> Self {
        let mut roles = Vec::with_capacity(site.signal_count());
        let mut lines = Vec::new();
        for line in &site.lines {
            let press = line
                .equipment
                .iter()
                .find(|e| e.kind.as_deref() == Some(BOTTLENECK));
            let slot = press.map(|p| {
                lines.push(LineFold {
                    line: line.id.clone(),
                    equipment: p.id.clone(),
                    state: None,
                    as_of: None,
                    last_state: None,
                    speed: None,
                    set_point: None,
                    counts: [None, None],
                    hours: BTreeMap::new(),
                });
                (lines.len() - 1, p.id.clone())
            });
            for eq in &line.equipment {
                for s in &eq.signals {
                    roles.push(slot.as_ref().filter(|(_, id)| *id == eq.id).map(|(l, _)| {
                        let role = match s.id.as_str() {
                            "state" => Role::State,
                            "turret_speed" => Role::Speed,
                            "turret_speed_sp" => Role::SpeedSetPoint,
                            "good_count" => Role::Good,
                            "reject_count" => Role::Reject,
                            _ => Role::Seen,
                        };
                        (*l, role)
                    }));
                }
            }
        }
        Oee {
            site: site.id.clone(),
            roles,
            lines,
            time_scale: 1.0,
        }
    }

    pub(crate) fn set_time_scale(&mut self, scale: f64) {
        self.time_scale = crate::condition::time_scale(scale);
    }

    /// Source milliseconds per plant hour.
    fn hour_ms(&self) -> i64 {
        (3.6e6 / self.time_scale).round().max(1000.0) as i64
    }

    /// Takes values of the site's signals, by index in `site.signals()` order.
    pub(crate) fn observe<'a>(
        &mut self,
        values: impl IntoIterator<Item = (usize, &'a Value, DateTime<Utc>)>,
    ) {
        let hour_ms = self.hour_ms();
        for (i, v, t) in values {
            let Some((l, role)) = self.roles.get(i).copied().flatten() else {
                continue;
            };
            self.lines[l].observe(role, v, t, hour_ms);
        }
    }

    /// The site's lines over the last `hours` plant hours (to the newest data), with the
    /// trend of the last `trend_hours`.
    pub(crate) fn summary(&self, hours: f64, trend_hours: usize) -> SiteOee {
        let hour_ms = self.hour_ms();
        let n = hours.max(1.0).round() as i64;
        let mut total = Hour::default();
        let lines = self
            .lines
            .iter()
            .map(|f| {
                let end = f.hours.keys().next_back().copied().unwrap_or(0);
                let mut sum = Hour::default();
                for (_, h) in f.hours.range(end - n + 1..=end) {
                    sum.add(h);
                }
                total.add(&sum);
                let trend = f
                    .hours
                    .range(end - trend_hours as i64 + 1..=end)
                    .filter_map(|(k, h)| {
                        Some(TrendPoint {
                            t: DateTime::from_timestamp_millis(k * hour_ms)?,
                            oee: h.figures()?.oee,
                        })
                    })
                    .collect();
                LineOee {
                    site: self.site.clone(),
                    line: f.line.clone(),
                    equipment: f.equipment.clone(),
                    figures: sum.figures(),
                    trend,
                }
            })
            .collect();
        SiteOee {
            site: self.site.clone(),
            figures: total.figures(),
            lines,
        }
    }
}

fn planned(state: &str) -> bool {
    matches!(
        state,
        "EXECUTE"
            | "HELD"
            | "HOLDING"
            | "SUSPENDED"
            | "STOPPED"
            | "STOPPING"
            | "ABORTED"
            | "ABORTING"
    )
}

impl LineFold {
    fn observe(&mut self, role: Role, v: &Value, t: DateTime<Utc>, hour_ms: i64) {
        // Time since the press's last sample belongs to the state it was in.
        if let Some(prev) = self.as_of {
            if t > prev && t - prev <= MAX_GAP {
                self.hour(prev, hour_ms).seen_s += (t - prev).num_milliseconds() as f64 / 1000.0;
                if let Some(state) = self.state.as_deref().filter(|s| planned(s)) {
                    let dt = (t - prev).num_milliseconds() as f64 / 1000.0;
                    let running = state == "EXECUTE";
                    let ratio = match (self.speed, self.set_point) {
                        (Some(s), Some(sp)) if sp > 0.0 => (s / sp).clamp(0.0, 1.0),
                        _ => 1.0,
                    };
                    let h = self.hour(prev, hour_ms);
                    h.planned_s += dt;
                    if running {
                        h.run_s += dt;
                        h.rate_s += ratio * dt;
                    }
                }
            }
        }
        self.as_of = Some(self.as_of.map_or(t, |p| p.max(t)));
        let number = match v {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        };
        match role {
            Role::State => {
                if self.last_state.is_some_and(|l| t <= l) {
                    return;
                }
                self.last_state = Some(t);
                if let Value::Text(s) = v {
                    self.state = Some(s.clone());
                }
            }
            Role::Speed => self.speed = number.or(self.speed),
            Role::SpeedSetPoint => self.set_point = number.or(self.set_point),
            Role::Good | Role::Reject => {
                let k = usize::from(role == Role::Reject);
                let Some(n) = number else { return };
                match self.counts[k] {
                    Some((lt, _)) if t <= lt => {}
                    Some((_, last)) => {
                        // A counter that went down was reset: count from its new value.
                        if n > last {
                            let h = self.hour(t, hour_ms);
                            if k == 0 {
                                h.good += n - last;
                            } else {
                                h.reject += n - last;
                            }
                        }
                        self.counts[k] = Some((t, n));
                    }
                    None => self.counts[k] = Some((t, n)),
                }
            }
            Role::Seen => {}
        }
    }

    fn hour(&mut self, t: DateTime<Utc>, hour_ms: i64) -> &mut Hour {
        let k = t.timestamp_millis().div_euclid(hour_ms);
        while self
            .hours
            .first_key_value()
            .is_some_and(|(first, _)| *first <= k - KEEP_HOURS)
        {
            self.hours.pop_first();
        }
        self.hours.entry(k).or_default()
    }
}

impl Twin {
    /// OEE of every site and line over the last `hours` plant hours, best data first.
    pub fn oee(&self, hours: f64) -> Vec<SiteOee> {
        self.oee
            .iter()
            .map(|o| {
                o.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .summary(hours, 24)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real plant file: its press has every signal the fold reads.
    fn test_site() -> Site {
        // Cargo's run-time value: a reused binary's compile-time path may be another checkout.
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || env!("CARGO_MANIFEST_DIR").into(),
                std::path::PathBuf::from,
            )
            .join("../sites/anhui.toml");
        model::load_site_file(&path).unwrap()
    }

    fn at(min: i64) -> DateTime<Utc> {
        // A whole hour, so the test's hours are the fold's.
        DateTime::from_timestamp(1_700_002_800 + min * 60, 0).unwrap()
    }

    #[test]
    fn availability_performance_and_quality_of_an_hand_computed_hour() {
        let site = test_site();
        let mut o = Oee::new(&site);
        let Some(press) = site
            .lines
            .iter()
            .flat_map(|l| &l.equipment)
            .find(|e| e.kind.as_deref() == Some(BOTTLENECK))
        else {
            panic!("the test site has a press");
        };
        let idx = |sig: &str| {
            site.signals()
                .position(|(_, e, s)| e.id == press.id && s.id == sig)
                .unwrap_or_else(|| panic!("{sig}"))
        };
        let (state, speed, sp, good, reject, vib) = (
            idx("state"),
            idx("turret_speed"),
            idx("turret_speed_sp"),
            idx("good_count"),
            idx("reject_count"),
            idx("vibration"),
        );
        let text = |s: &str| Value::Text(s.into());
        let f = Value::Float;
        // Minute 0–30 executing at 80 % of the set-point, 30–40 held, 40–60 idle (no
        // order: not planned). 900 good and 100 rejected tablets.
        o.observe([
            (state, &text("EXECUTE"), at(0)),
            (speed, &f(80.0), at(0)),
            (sp, &f(100.0), at(0)),
            (good, &Value::Int(1000), at(0)),
            (reject, &Value::Int(50), at(0)),
        ]);
        for m in 1..30 {
            o.observe([(vib, &f(1.0), at(m))]);
        }
        o.observe([
            (good, &Value::Int(1900), at(30)),
            (reject, &Value::Int(150), at(30)),
            (state, &text("HELD"), at(30)),
        ]);
        for m in 31..=40 {
            o.observe([(vib, &f(1.0), at(m))]);
        }
        o.observe([(state, &text("IDLE"), at(40))]);
        for m in 41..60 {
            o.observe([(vib, &f(1.0), at(m))]);
        }
        // The same samples again (a store re-read) change nothing.
        o.observe([
            (good, &Value::Int(1900), at(30)),
            (state, &text("HELD"), at(30)),
        ]);
        let s = o.summary(1.0, 24);
        let line = s.lines.iter().find(|l| l.equipment == press.id).unwrap();
        assert!(
            s.lines
                .iter()
                .filter(|l| l.equipment != press.id)
                .all(|l| l.figures.is_none()),
            "other lines have no data"
        );
        let fig = line.figures.unwrap();
        assert!((fig.availability - 0.75).abs() < 1e-9, "{fig:?}");
        assert!((fig.performance - 0.8).abs() < 1e-9, "{fig:?}");
        assert!((fig.quality - 0.9).abs() < 1e-9, "{fig:?}");
        assert!((fig.oee - 0.54).abs() < 1e-9, "{fig:?}");
        // 30 minutes at 80 % of rated speed (24 rated minutes) in the 59 minutes seen.
        assert!((fig.capacity_use - 24.0 / 59.0).abs() < 1e-9, "{fig:?}");
        assert_eq!(line.trend.len(), 1);
        assert!(
            (s.figures.unwrap().oee - 0.54).abs() < 1e-9,
            "the site is its one line"
        );
    }

    #[test]
    fn a_gap_in_the_data_is_not_planned_time() {
        let site = test_site();
        let mut o = Oee::new(&site);
        let press = site
            .lines
            .iter()
            .flat_map(|l| &l.equipment)
            .find(|e| e.kind.as_deref() == Some(BOTTLENECK))
            .unwrap();
        let state = site
            .signals()
            .position(|(_, e, s)| e.id == press.id && s.id == "state")
            .unwrap();
        o.observe([(state, &Value::Text("STOPPED".into()), at(0))]);
        // Nothing for 50 minutes (connection lost), then a sample.
        o.observe([(state, &Value::Text("EXECUTE".into()), at(50))]);
        assert!(o.summary(1.0, 24).lines.iter().all(|l| l.figures.is_none()));
    }
}
