//! The process alert board: a value outside its specification (`excursion`) and a signal
//! that cannot be read (`data`), with the states of ISA-18.2 — active or returned to normal,
//! unacknowledged or acknowledged, shelved until a time. An alert leaves the board once it
//! is back to normal *and* acknowledged, so nobody misses one that came and went.
//!
//! Maintenance and release-risk alerts have their own watches; the web view lists them all.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use model::{Range, Value};
use serde::Serialize;

use crate::{maintenance::Action, Twin};

/// Closed alerts kept for the record (newest last).
const HISTORY: usize = 1000;
/// An excursion must last this long (plant time) to become an alert: a start-up transient
/// or one noisy reading is not worth a person's attention (ISA-18.2 on-delay).
const ON_DELAY_PLANT_MIN: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    Excursion,
    Data,
}

/// Put aside by someone until a time: not shown as needing attention, still recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Shelf {
    pub until: DateTime<Utc>,
    pub by: Action,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoardAlert {
    pub id: u64,
    pub kind: BoardKind,
    pub site: String,
    pub line: String,
    pub equipment: String,
    pub path: String,
    pub message: String,
    /// The value (or error) that raised it, and the latest while it lasts.
    pub value: Option<Value>,
    pub spec: Option<Range>,
    pub raised_at: DateTime<Utc>,
    /// Still outside its specification (or unreadable).
    pub active: bool,
    pub cleared_at: Option<DateTime<Utc>>,
    pub acknowledged: Option<Action>,
    pub shelved: Option<Shelf>,
}

impl BoardAlert {
    pub fn shelved_at(&self, now: DateTime<Utc>) -> bool {
        self.shelved.as_ref().is_some_and(|s| s.until > now)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoardError {
    #[error("no open alert {0}")]
    Unknown(u64),
    #[error("alert {0} is acknowledged already")]
    Acknowledged(u64),
    #[error("a shelf needs an end in the future")]
    ShelfInPast,
    #[error("an action on an alert needs a user")]
    NoUser,
}

#[derive(Debug)]
pub struct AlertBoard {
    open: Vec<(usize, BoardAlert)>,
    closed: VecDeque<BoardAlert>,
    next_id: u64,
    /// Signals outside their specification, not yet for the on-delay: since when.
    pending: HashMap<usize, DateTime<Utc>>,
    on_delay: TimeDelta,
}

impl Default for AlertBoard {
    fn default() -> Self {
        let mut b = AlertBoard {
            open: Vec::new(),
            closed: VecDeque::new(),
            next_id: 0,
            pending: HashMap::new(),
            on_delay: TimeDelta::zero(),
        };
        b.set_time_scale(1.0);
        b
    }
}

/// Where a signal sits, for the alert's text.
pub(crate) struct Place<'a> {
    pub(crate) site: &'a str,
    pub(crate) line: &'a str,
    pub(crate) equipment: &'a str,
    pub(crate) path: String,
    pub(crate) description: &'a str,
    pub(crate) unit: &'a str,
    pub(crate) spec: Option<Range>,
}

impl AlertBoard {
    /// Plant hours per hour of source time: the on-delay is plant time.
    pub fn set_time_scale(&mut self, scale: f64) {
        let scale = crate::condition::time_scale(scale);
        self.on_delay = TimeDelta::milliseconds((ON_DELAY_PLANT_MIN * 60_000.0 / scale) as i64);
    }

    fn find(&mut self, signal: usize, kind: BoardKind) -> Option<&mut BoardAlert> {
        self.open
            .iter_mut()
            .find(|(s, a)| *s == signal && a.kind == kind && a.active)
            .map(|(_, a)| a)
    }

    fn raise(
        &mut self,
        signal: usize,
        kind: BoardKind,
        place: &Place<'_>,
        message: String,
        value: Option<Value>,
        t: DateTime<Utc>,
    ) {
        self.next_id += 1;
        self.open.push((
            signal,
            BoardAlert {
                id: self.next_id,
                kind,
                site: place.site.into(),
                line: place.line.into(),
                equipment: place.equipment.into(),
                path: place.path.clone(),
                message,
                value,
                spec: place.spec,
                raised_at: t,
                active: true,
                cleared_at: None,
                acknowledged: None,
                shelved: None,
            },
        ));
    }

    fn clear(&mut self, signal: usize, kind: BoardKind, t: DateTime<Utc>) {
        if let Some(a) = self.find(signal, kind) {
            a.active = false;
            a.cleared_at = Some(t);
        }
        self.retire();
    }

    /// A good-quality reading of a signal with a specification.
    pub(crate) fn observe(
        &mut self,
        signal: usize,
        place: &Place<'_>,
        value: &Value,
        outside: bool,
        t: DateTime<Utc>,
    ) {
        if !outside {
            self.pending.remove(&signal);
            self.clear(signal, BoardKind::Excursion, t);
            return;
        }
        if let Some(a) = self.find(signal, BoardKind::Excursion) {
            a.value = Some(value.clone());
            return;
        }
        let since = *self.pending.entry(signal).or_insert(t);
        if t - since < self.on_delay {
            return;
        }
        self.pending.remove(&signal);
        let spec = place
            .spec
            .map(|r| format!(" (spec {}…{} {})", r.low, r.high, place.unit))
            .unwrap_or_default();
        let message = format!(
            "{} out of specification: {}{}",
            place.description,
            value_text(value),
            spec
        );
        self.raise(
            signal,
            BoardKind::Excursion,
            place,
            message,
            Some(value.clone()),
            t,
        );
    }

    /// A signal that cannot be read (`Some`), or can again (`None`).
    pub(crate) fn data(
        &mut self,
        signal: usize,
        place: &Place<'_>,
        error: Option<&str>,
        t: DateTime<Utc>,
    ) {
        match error {
            None => self.clear(signal, BoardKind::Data, t),
            Some(e) => {
                if self.find(signal, BoardKind::Data).is_none() {
                    let message = format!("{} not readable: {e}", place.description);
                    self.raise(
                        signal,
                        BoardKind::Data,
                        place,
                        message,
                        Some(Value::Text(e.into())),
                        t,
                    );
                }
            }
        }
    }

    pub fn acknowledge(
        &mut self,
        id: u64,
        user: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<BoardAlert, BoardError> {
        if user.trim().is_empty() {
            return Err(BoardError::NoUser);
        }
        let a = self.get_mut(id)?;
        if a.acknowledged.is_some() {
            return Err(BoardError::Acknowledged(id));
        }
        a.acknowledged = Some(Action::by(user, now, comment));
        let a = a.clone();
        self.retire();
        Ok(a)
    }

    pub fn shelve(
        &mut self,
        id: u64,
        user: &str,
        until: DateTime<Utc>,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<BoardAlert, BoardError> {
        if user.trim().is_empty() {
            return Err(BoardError::NoUser);
        }
        if until <= now {
            return Err(BoardError::ShelfInPast);
        }
        let a = self.get_mut(id)?;
        a.shelved = Some(Shelf {
            until,
            by: Action::by(user, now, comment),
        });
        Ok(a.clone())
    }

    fn get_mut(&mut self, id: u64) -> Result<&mut BoardAlert, BoardError> {
        self.open
            .iter_mut()
            .map(|(_, a)| a)
            .find(|a| a.id == id)
            .ok_or(BoardError::Unknown(id))
    }

    /// Back to normal and acknowledged: off the board, into the record.
    fn retire(&mut self) {
        let (done, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(_, a)| !a.active && a.acknowledged.is_some());
        self.open = open;
        for (_, a) in done {
            self.closed.push_back(a);
            if self.closed.len() > HISTORY {
                self.closed.pop_front();
            }
        }
    }

    /// The alerts on the board, newest first.
    pub fn open(&self) -> Vec<BoardAlert> {
        self.open.iter().rev().map(|(_, a)| a.clone()).collect()
    }

    /// Alerts that left the board, newest first.
    pub fn closed(&self) -> Vec<BoardAlert> {
        self.closed.iter().rev().cloned().collect()
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Float(f) => format!("{f:.3}"),
        other => format!("{other:?}"),
    }
}

impl Twin {
    pub fn with_alert_board<R>(&self, f: impl FnOnce(&mut AlertBoard) -> R) -> R {
        f(&mut self.board.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn place(&self, i: usize) -> Option<Place<'_>> {
        let r = self.refs.get(i)?;
        let site = &self.sites[r.site];
        let line = &site.lines[r.line];
        let eq = &line.equipment[r.equipment];
        let sig = &eq.signals[r.signal];
        Some(Place {
            site: &site.id,
            line: &line.id,
            equipment: &eq.id,
            path: sig.tag.path(),
            description: if sig.description.is_empty() {
                &sig.id
            } else {
                &sig.description
            },
            unit: &sig.unit,
            spec: sig.spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place<'static> {
        Place {
            site: "anhui",
            line: "line-1",
            equipment: "room-1",
            path: "anhui/osd/line-1/room-1/temperature".into(),
            description: "Room temperature",
            unit: "°C",
            spec: Some(Range {
                low: 18.0,
                high: 25.0,
            }),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    /// A board without on-delay: every excursion is an alert at once.
    fn board() -> AlertBoard {
        AlertBoard {
            on_delay: TimeDelta::zero(),
            ..AlertBoard::default()
        }
    }

    #[test]
    fn an_excursion_must_last_the_on_delay_to_become_an_alert() {
        let mut b = AlertBoard::default();
        b.set_time_scale(60.0);
        let hot = Value::Float(30.0);
        // At 60× the 10 plant minutes are 10 s.
        b.observe(7, &place(), &hot, true, at(0));
        b.observe(7, &place(), &hot, true, at(9));
        assert!(b.open().is_empty(), "a start-up transient");
        b.observe(7, &place(), &Value::Float(20.0), false, at(10));
        b.observe(7, &place(), &hot, true, at(11));
        b.observe(7, &place(), &hot, true, at(20));
        assert!(
            b.open().is_empty(),
            "the delay starts again after a good reading"
        );
        b.observe(7, &place(), &hot, true, at(21));
        assert_eq!(b.open().len(), 1);
        assert_eq!(b.open()[0].raised_at, at(21));
    }

    #[test]
    fn an_excursion_stays_until_it_is_back_to_normal_and_acknowledged() {
        let mut b = board();
        let hot = Value::Float(27.5);
        b.observe(7, &place(), &hot, true, at(0));
        b.observe(7, &place(), &Value::Float(28.0), true, at(1));
        let open = b.open();
        assert_eq!(open.len(), 1, "one alert per excursion");
        assert!(open[0].message.contains("27.500"), "{}", open[0].message);
        assert!(open[0].message.contains("18…25 °C"), "{}", open[0].message);
        assert_eq!(open[0].value, Some(Value::Float(28.0)), "latest value");
        // Back to normal, not acknowledged: still on the board.
        b.observe(7, &place(), &Value::Float(22.0), false, at(2));
        let a = &b.open()[0];
        assert!(!a.active && a.cleared_at == Some(at(2)));
        let id = a.id;
        b.acknowledge(id, "li.na", "door was open", at(3)).unwrap();
        assert!(b.open().is_empty());
        assert_eq!(b.closed()[0].acknowledged.as_ref().unwrap().user, "li.na");
        // A new excursion is a new alert.
        b.observe(7, &place(), &hot, true, at(4));
        assert_ne!(b.open()[0].id, id);
    }

    #[test]
    fn acknowledged_while_active_it_leaves_when_back_to_normal() {
        let mut b = board();
        b.observe(7, &place(), &Value::Float(30.0), true, at(0));
        let id = b.open()[0].id;
        b.acknowledge(id, "li.na", "", at(1)).unwrap();
        assert_eq!(
            b.acknowledge(id, "li.na", "", at(1)).unwrap_err(),
            BoardError::Acknowledged(id)
        );
        assert_eq!(b.open().len(), 1, "still active");
        b.observe(7, &place(), &Value::Float(20.0), false, at(5));
        assert!(b.open().is_empty());
    }

    #[test]
    fn a_shelved_alert_is_shelved_until_its_time_and_unreadable_signals_are_alerts() {
        let mut b = board();
        b.data(9, &place(), Some("BadNodeIdUnknown"), at(0));
        b.data(9, &place(), Some("BadNodeIdUnknown"), at(1));
        assert_eq!(b.open().len(), 1);
        let id = b.open()[0].id;
        assert_eq!(
            b.shelve(id, "li.na", at(0), "", at(1)).unwrap_err(),
            BoardError::ShelfInPast
        );
        b.shelve(id, "li.na", at(3600), "sensor replaced tomorrow", at(1))
            .unwrap();
        assert!(b.open()[0].shelved_at(at(100)));
        assert!(!b.open()[0].shelved_at(at(3601)));
        b.data(9, &place(), None, at(2));
        assert!(!b.open()[0].active);
        assert_eq!(
            b.acknowledge(99, "x", "", at(3)).unwrap_err(),
            BoardError::Unknown(99)
        );
    }
}
