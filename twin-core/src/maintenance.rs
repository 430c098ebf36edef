//! Predictive maintenance: the degradation models of every kind of part, and the alerts
//! they raise to maintenance — one per part life, escalated while nobody acknowledges it,
//! closed by a work order or when the part is seen renewed.

use std::{collections::BTreeMap, sync::Arc};

use analytics::maintenance::{LabelledWindow, PartModel};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use thiserror::Error;

use crate::condition::{watched, ClosedWindow, PartRisk};

#[derive(Debug, Error)]
pub enum AlertError {
    #[error("no maintenance alert {0}")]
    Unknown(u64),
    #[error("maintenance alert {0} is closed")]
    Closed(u64),
    #[error("a user name is required")]
    NoUser,
}

/// A closed window of a site's unit with the consumed life of each of its parts at the
/// window's end: `(site, window, [(part, wear)])`.
pub type TrainingWindow = (String, ClosedWindow, Vec<(String, f64)>);

/// The degradation models of every (equipment type, part) with enough history.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceModels {
    pub version: String,
    /// Fingerprint of all training data (the part models carry their own).
    pub fingerprint: String,
    pub trained_at: DateTime<Utc>,
    pub horizon_h: f64,
    pub parts: Vec<PartModel>,
    /// Parts left without a model, and why.
    pub skipped: Vec<String>,
}

impl MaintenanceModels {
    /// Trains one model per (kind, part) from closed windows of a site, each labelled with
    /// the consumed life of its unit's parts at the window's end (`(part, wear)`). `pace`
    /// is how many times faster than in service the training fleet wore (accelerated life
    /// tests); the fleet's wear rates are scaled back by it.
    pub fn train(
        windows: &[TrainingWindow],
        pace: f64,
        version: &str,
        trained_at: DateTime<Utc>,
        horizon_h: f64,
    ) -> MaintenanceModels {
        let mut groups: BTreeMap<(String, String), Vec<LabelledWindow>> = BTreeMap::new();
        for (site, w, wear) in windows {
            for (part, features) in &w.parts {
                let Some(&(_, y)) = wear.iter().find(|(p, _)| p == part) else {
                    continue;
                };
                if !features[0].is_finite() {
                    continue;
                }
                groups
                    .entry((w.kind.clone(), part.clone()))
                    .or_default()
                    .push(LabelledWindow {
                        unit: format!("{site}/{}/{}", w.line, w.equipment),
                        hours: w.end.timestamp() as f64 / 3600.0,
                        features: features.clone(),
                        wear: y,
                    });
            }
        }
        let mut parts = Vec::new();
        let mut skipped = Vec::new();
        for ((kind, part), rows) in groups {
            let Some(signals) = signals_of(&kind, &part) else {
                continue;
            };
            match PartModel::train(&kind, &part, &signals, &rows) {
                Ok(mut m) => {
                    m.fleet_rate = (m.fleet_rate.0 / pace, m.fleet_rate.1 / pace);
                    parts.push(m);
                }
                Err(e) => skipped.push(e.to_string()),
            }
        }
        let fingerprint = combined(parts.iter().map(|p| p.fingerprint.as_str()));
        MaintenanceModels {
            version: version.to_string(),
            fingerprint,
            trained_at,
            horizon_h,
            parts,
            skipped,
        }
    }

    pub fn part(&self, kind: &str, part: &str) -> Option<&PartModel> {
        self.parts.iter().find(|m| m.kind == kind && m.part == part)
    }
}

fn signals_of(kind: &str, part: &str) -> Option<Vec<String>> {
    watched(kind)
        .into_iter()
        .find(|(p, _)| *p == part)
        .map(|(_, s)| s.iter().map(|s| s.to_string()).collect())
}

fn combined<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("fnv1a64:{h:016x}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Active,
    Acknowledged,
    Closed,
}

/// Who did something to an alert, when, and what they said.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub user: String,
    pub at: DateTime<Utc>,
    pub comment: String,
    /// The electronic signature it was made under: printed name, meaning, time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Action {
    /// An action not (yet) signed.
    pub fn by(user: &str, at: DateTime<Utc>, comment: &str) -> Action {
        Action {
            user: user.into(),
            at,
            comment: comment.into(),
            signature: None,
        }
    }
}

/// A predictive-maintenance alert: one part of one unit likely to fail within the horizon.
#[derive(Debug, Clone, Serialize)]
pub struct MaintenanceAlert {
    pub id: u64,
    pub kind: &'static str,
    pub site: String,
    pub line: String,
    pub equipment: String,
    pub part: String,
    pub severity: Severity,
    pub state: AlertState,
    pub raised_at: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    /// The prediction that raised it, then the latest one.
    pub first: PartRisk,
    pub latest: PartRisk,
    pub acknowledged: Option<Action>,
    pub closed: Option<Action>,
    pub work_order: Option<String>,
}

impl MaintenanceAlert {
    fn is_open(&self) -> bool {
        self.state != AlertState::Closed
    }

    fn same_part(&self, r: &PartRisk) -> bool {
        self.site == r.site
            && self.line == r.line
            && self.equipment == r.equipment
            && self.part == r.part
    }
}

/// What a delivery channel (web hook, mail) has to pass on.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub event: &'static str,
    pub alert: MaintenanceAlert,
}

/// Raises, escalates and closes predictive-maintenance alerts.
#[derive(Debug, Clone)]
pub struct MaintenanceWatch {
    /// Failure probability within the horizon that raises an alert.
    pub threshold: f64,
    /// An alert nobody acknowledged this long becomes critical.
    pub escalate_after: TimeDelta,
    alerts: Vec<MaintenanceAlert>,
    next_id: u64,
}

impl Default for MaintenanceWatch {
    fn default() -> Self {
        MaintenanceWatch {
            threshold: 0.5,
            escalate_after: TimeDelta::hours(8),
            alerts: Vec::new(),
            next_id: 1,
        }
    }
}

/// Hours of data on a part's current life before a prediction may raise an alert, unless
/// the part is already near its end: a trend from less is mostly noise.
const MIN_EVIDENCE_WINDOWS: usize = 24;

fn evidence(r: &PartRisk) -> bool {
    r.windows >= MIN_EVIDENCE_WINDOWS || r.wear >= 0.9
}

/// Alerts kept after closing, for the record on screen (the audit trail keeps all).
const KEEP_CLOSED: usize = 500;

impl MaintenanceWatch {
    pub fn alerts(&self) -> &[MaintenanceAlert] {
        &self.alerts
    }

    pub fn get(&self, id: u64) -> Option<&MaintenanceAlert> {
        self.alerts.iter().find(|a| a.id == id)
    }

    /// Takes the latest predictions: raises an alert for a part crossing the threshold
    /// (one per part life), updates open ones, escalates the unacknowledged, and closes
    /// those whose part has been renewed since. Returns what to notify.
    pub fn check(&mut self, risks: &[PartRisk], now: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        for r in risks {
            match self
                .alerts
                .iter_mut()
                .find(|a| a.is_open() && a.same_part(r))
            {
                Some(a) if r.since > a.raised_at => {
                    a.state = AlertState::Closed;
                    a.closed = Some(Action::by("twin", r.since, "part seen renewed"));
                    a.latest = r.clone();
                    out.push(Notification {
                        event: "closed",
                        alert: a.clone(),
                    });
                }
                Some(a) => {
                    a.latest = r.clone();
                    let due = now - a.raised_at >= self.escalate_after;
                    if a.severity == Severity::Warning && a.state == AlertState::Active && due {
                        a.severity = Severity::Critical;
                        a.escalated_at = Some(now);
                        out.push(Notification {
                            event: "escalated",
                            alert: a.clone(),
                        });
                    }
                }
                None if r.p_fail >= self.threshold && !r.awaiting_data && evidence(r) => {
                    let a = MaintenanceAlert {
                        id: self.next_id,
                        kind: "predictive_maintenance",
                        site: r.site.clone(),
                        line: r.line.clone(),
                        equipment: r.equipment.clone(),
                        part: r.part.clone(),
                        severity: Severity::Warning,
                        state: AlertState::Active,
                        raised_at: now,
                        escalated_at: None,
                        first: r.clone(),
                        latest: r.clone(),
                        acknowledged: None,
                        closed: None,
                        work_order: None,
                    };
                    self.next_id += 1;
                    out.push(Notification {
                        event: "raised",
                        alert: a.clone(),
                    });
                    self.alerts.push(a);
                }
                None => {}
            }
        }
        let closed = self.alerts.iter().filter(|a| !a.is_open()).count();
        if closed > KEEP_CLOSED {
            let mut drop = closed - KEEP_CLOSED;
            self.alerts.retain(|a| {
                let gone = drop > 0 && !a.is_open();
                drop -= usize::from(gone);
                !gone
            });
        }
        out
    }

    pub fn acknowledge(
        &mut self,
        id: u64,
        user: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Notification, AlertError> {
        let a = self.open_alert(id, user)?;
        a.state = AlertState::Acknowledged;
        a.acknowledged = Some(Action::by(user, now, comment));
        Ok(Notification {
            event: "acknowledged",
            alert: a.clone(),
        })
    }

    /// Closes the alert with the work order that dealt with it.
    pub fn close(
        &mut self,
        id: u64,
        user: &str,
        work_order: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Notification, AlertError> {
        let a = self.open_alert(id, user)?;
        a.state = AlertState::Closed;
        a.work_order = Some(work_order.into());
        a.closed = Some(Action::by(user, now, comment));
        Ok(Notification {
            event: "closed",
            alert: a.clone(),
        })
    }

    /// Attaches a signature to the alert's latest action (its close, else its
    /// acknowledgement).
    pub fn sign(&mut self, id: u64, signature: String) {
        if let Some(a) = self.alerts.iter_mut().find(|a| a.id == id) {
            if let Some(act) = a.closed.as_mut().or(a.acknowledged.as_mut()) {
                act.signature = Some(signature);
            }
        }
    }

    fn open_alert(&mut self, id: u64, user: &str) -> Result<&mut MaintenanceAlert, AlertError> {
        if user.trim().is_empty() {
            return Err(AlertError::NoUser);
        }
        let a = self
            .alerts
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or(AlertError::Unknown(id))?;
        if !a.is_open() {
            return Err(AlertError::Closed(id));
        }
        Ok(a)
    }
}

impl crate::Twin {
    /// Adopts newly trained maintenance models; predictions use them from the next cycle.
    pub fn set_maintenance_models(&self, models: MaintenanceModels) {
        *self
            .maintenance
            .models
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(models));
    }

    pub fn maintenance_models(&self) -> Option<Arc<MaintenanceModels>> {
        self.maintenance
            .models
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One prediction cycle: scores every watched part of every site and passes the
    /// predictions to the alerts. Returns what to notify.
    pub fn score_maintenance(&self, now: DateTime<Utc>) -> Vec<Notification> {
        let Some(models) = self.maintenance_models() else {
            return Vec::new();
        };
        let mut risks: Vec<PartRisk> = self
            .conditions
            .iter()
            .flat_map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).score(&models))
            .collect();
        risks.sort_by(|a, b| b.p_fail.total_cmp(&a.p_fail));
        let notes = self
            .maintenance
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&risks, now);
        *self
            .maintenance
            .risks
            .write()
            .unwrap_or_else(|e| e.into_inner()) = risks;
        notes
    }

    /// Sets the plant hours per hour of source time of every site, for condition windows
    /// and lifecycle running hours (see [`crate::ConditionMonitor::set_time_scale`]).
    pub fn set_time_scale(&self, scale: f64) {
        for c in &self.conditions {
            c.lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_time_scale(scale);
        }
        for l in &self.lifecycles {
            l.lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_time_scale(scale);
        }
        for o in &self.oee {
            o.lock()
                .unwrap_or_else(|e| e.into_inner())
                .set_time_scale(scale);
        }
        self.with_alert_board(|b| b.set_time_scale(scale));
    }

    /// Estimated wear of one part per window kept (for charts).
    pub fn wear_series(
        &self,
        site: &str,
        line: &str,
        equipment: &str,
        part: &str,
    ) -> Vec<(DateTime<Utc>, f64, bool)> {
        let Some(i) = self.sites.iter().position(|s| s.id == site) else {
            return Vec::new();
        };
        self.conditions[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .series(line, equipment, part)
    }

    /// The latest prediction of every watched part, most likely to fail first.
    pub fn maintenance_risks(&self) -> Vec<PartRisk> {
        self.maintenance
            .risks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn with_maintenance_watch<R>(&self, f: impl FnOnce(&mut MaintenanceWatch) -> R) -> R {
        f(&mut self
            .maintenance
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner()))
    }
}

/// The twin's maintenance state.
#[derive(Debug, Default)]
pub(crate) struct MaintenanceState {
    models: std::sync::RwLock<Option<Arc<MaintenanceModels>>>,
    risks: std::sync::RwLock<Vec<PartRisk>>,
    watch: std::sync::Mutex<MaintenanceWatch>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn risk(p_fail: f64, since: i64, windows: usize) -> PartRisk {
        PartRisk {
            site: "anhui".into(),
            area: "osd".into(),
            line: "line-1".into(),
            equipment: "press-01".into(),
            kind: "tablet_press".into(),
            part: "bearing".into(),
            at: at(0),
            since: at(since),
            health: 1.0 - p_fail,
            wear: 0.8,
            rate_per_h: 0.001,
            rul_h: Some(100.0),
            rul_low_h: Some(50.0),
            rul_high_h: Some(200.0),
            p_fail,
            horizon_h: 168.0,
            drivers: Vec::new(),
            windows,
            awaiting_data: false,
            model_version: "m".into(),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn one_alert_per_part_life_escalated_when_nobody_acknowledges_it() {
        let mut w = MaintenanceWatch::default();
        assert!(
            w.check(&[risk(0.3, -100, 48)], at(0)).is_empty(),
            "below threshold"
        );
        let n = w.check(&[risk(0.6, -100, 48)], at(1));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].event, "raised");
        assert_eq!(n[0].alert.severity, Severity::Warning);
        // The same part again: updated, not raised twice.
        assert!(w.check(&[risk(0.7, -100, 48)], at(2)).is_empty());
        assert_eq!(w.alerts().len(), 1);
        assert_eq!(w.alerts()[0].latest.p_fail, 0.7);
        // Eight hours unacknowledged: critical, once.
        let n = w.check(&[risk(0.7, -100, 48)], at(9));
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].event, "escalated");
        assert_eq!(n[0].alert.severity, Severity::Critical);
        assert!(w.check(&[risk(0.7, -100, 48)], at(12)).is_empty());
    }

    #[test]
    fn an_acknowledged_alert_is_not_escalated_and_a_renewal_closes_it() {
        let mut w = MaintenanceWatch::default();
        let id = w.check(&[risk(0.9, -100, 48)], at(0))[0].alert.id;
        let ack = w
            .acknowledge(id, "li.wei", "seen, parts ordered", at(1))
            .unwrap();
        assert_eq!(ack.alert.acknowledged.as_ref().unwrap().user, "li.wei");
        assert!(
            w.check(&[risk(0.9, -100, 48)], at(20)).is_empty(),
            "no escalation"
        );
        // The part is seen renewed (its life starts after the alert): closed, and a new
        // life needs its own evidence before it can alert again.
        let n = w.check(&[risk(0.9, 5, 3)], at(21));
        assert_eq!(n[0].event, "closed");
        assert_eq!(w.get(id).unwrap().state, AlertState::Closed);
        assert!(
            w.check(&[risk(0.9, 5, 3)], at(22)).is_empty(),
            "too little evidence"
        );
        assert_eq!(w.check(&[risk(0.9, 5, 30)], at(40))[0].event, "raised");
    }

    #[test]
    fn closing_needs_an_open_alert_and_a_user() {
        let mut w = MaintenanceWatch::default();
        let id = w.check(&[risk(0.9, -100, 48)], at(0))[0].alert.id;
        assert!(matches!(
            w.acknowledge(id, " ", "", at(1)),
            Err(AlertError::NoUser)
        ));
        let closed = w
            .close(id, "wang.fang", "WO-7", "bearing renewed", at(2))
            .unwrap();
        assert_eq!(closed.alert.work_order.as_deref(), Some("WO-7"));
        assert!(matches!(
            w.close(id, "wang.fang", "WO-7", "", at(3)),
            Err(AlertError::Closed(_))
        ));
        assert!(matches!(
            w.acknowledge(999, "x", "", at(3)),
            Err(AlertError::Unknown(999))
        ));
    }

    #[test]
    fn data_from_before_a_stop_raises_nothing() {
        let mut w = MaintenanceWatch::default();
        let mut r = risk(0.95, -100, 48);
        r.awaiting_data = true;
        assert!(w.check(&[r], at(0)).is_empty());
    }
}
