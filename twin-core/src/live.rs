//! The twin's live state: one slot per configured signal.

use std::{
    collections::{HashMap, VecDeque},
    sync::atomic::{AtomicU64, Ordering},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use model::{Quality, Sample, Site, Value};
use serde::Serialize;
use std::sync::{Mutex, RwLock};

use crate::{
    batches::BatchRecorder,
    condition::ConditionMonitor,
    lifecycle::{Lifecycle, MaintenanceLog},
    maintenance::MaintenanceState,
    QualityModels, ReleaseWatch,
};
use tokio::sync::broadcast;

/// Merge times kept for [`Twin::applied_at`]: at five merges a second, minutes of them.
const APPLIED_KEPT: usize = 4096;

/// The newest value of one signal, as last read from the historian.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveValue {
    pub value: Value,
    pub quality: Quality,
    pub source_ts: DateTime<Utc>,
    pub server_ts: Option<DateTime<Utc>>,
    pub received_ts: DateTime<Utc>,
}

/// Where a signal sits in the plant model, by index, so views need no string look-ups.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignalRef {
    pub(crate) site: usize,
    pub(crate) line: usize,
    pub(crate) equipment: usize,
    pub(crate) signal: usize,
}

#[derive(Debug)]
pub struct Twin {
    pub(crate) sites: Vec<Arc<Site>>,
    pub(crate) refs: Vec<SignalRef>,
    /// Per signal, the state signal of its unit (a room has none).
    unit_state: Vec<Option<usize>>,
    by_path: HashMap<String, usize>,
    /// Index of the first signal of each equipment, `[site][line][equipment]`: views walk
    /// the plant model and find live slots without building tag paths.
    pub(crate) first_signal: Vec<Vec<Vec<usize>>>,
    pub(crate) live: RwLock<Vec<Option<LiveValue>>>,
    /// Per-signal problems reported by whoever reads the plant (unknown node, not readable).
    pub(crate) errors: RwLock<HashMap<usize, String>>,
    changes: broadcast::Sender<u64>,
    /// Counts the merges that changed something: the live state's version, which the web
    /// view's events carry so a viewer can tell how far behind it is.
    version: AtomicU64,
    /// When each recent version was merged, oldest first: the event stream tells a viewer
    /// how long the oldest change it has not yet been shown has waited.
    applied: Mutex<VecDeque<(u64, DateTime<Utc>)>>,
    /// Index of each site's first signal: the recorder counts signals per site.
    site_offset: Vec<usize>,
    pub(crate) batches: Vec<Mutex<BatchRecorder>>,
    pub(crate) quality: RwLock<Option<Arc<QualityModels>>>,
    pub(crate) release: Mutex<ReleaseWatch>,
    pub(crate) conditions: Vec<Mutex<ConditionMonitor>>,
    pub(crate) lifecycles: Vec<Mutex<Lifecycle>>,
    pub(crate) oee: Vec<Mutex<crate::oee::Oee>>,
    pub(crate) board: Mutex<crate::alerts::AlertBoard>,
    pub(crate) maintenance_log: Mutex<Option<MaintenanceLog>>,
    pub(crate) maintenance: MaintenanceState,
}

impl Twin {
    pub fn new(sites: Vec<Arc<Site>>) -> Arc<Twin> {
        let mut refs = Vec::new();
        let mut by_path = HashMap::new();
        let mut first_signal = Vec::new();
        let mut site_offset = Vec::new();
        for (si, site) in sites.iter().enumerate() {
            site_offset.push(refs.len());
            let mut site_first = Vec::new();
            for (li, line) in site.lines.iter().enumerate() {
                let mut line_first = Vec::new();
                for (ei, eq) in line.equipment.iter().enumerate() {
                    line_first.push(refs.len());
                    for (gi, sig) in eq.signals.iter().enumerate() {
                        by_path.insert(sig.tag.path(), refs.len());
                        refs.push(SignalRef {
                            site: si,
                            line: li,
                            equipment: ei,
                            signal: gi,
                        });
                    }
                }
                site_first.push(line_first);
            }
            first_signal.push(site_first);
        }
        // A process specification holds while the unit executes: a dryer's exhaust is not
        // "too cold" while it is stopped (ISA-18.2 state-based alarming).
        let unit_state = refs
            .iter()
            .map(|r| {
                let eq = &sites[r.site].lines[r.line].equipment[r.equipment];
                let at = eq.signals.iter().position(|s| s.id == "state")?;
                Some(first_signal[r.site][r.line][r.equipment] + at)
            })
            .collect();
        let (changes, _) = broadcast::channel(64);
        let batches = sites
            .iter()
            .map(|s| Mutex::new(BatchRecorder::new(s)))
            .collect();
        let conditions = sites
            .iter()
            .map(|s| Mutex::new(ConditionMonitor::new(s)))
            .collect();
        let lifecycles = sites
            .iter()
            .map(|s| Mutex::new(Lifecycle::new(s)))
            .collect();
        let oee = sites
            .iter()
            .map(|s| Mutex::new(crate::oee::Oee::new(s)))
            .collect();
        Arc::new(Twin {
            conditions,
            lifecycles,
            oee,
            board: Mutex::new(crate::alerts::AlertBoard::default()),
            maintenance_log: Mutex::new(None),
            maintenance: MaintenanceState::default(),
            live: RwLock::new(vec![None; refs.len()]),
            site_offset,
            batches,
            quality: RwLock::new(None),
            release: Mutex::new(ReleaseWatch::default()),
            sites,
            refs,
            by_path,
            first_signal,
            unit_state,
            errors: RwLock::new(HashMap::new()),
            changes,
            version: AtomicU64::new(0),
            applied: Mutex::new(VecDeque::with_capacity(APPLIED_KEPT)),
        })
    }

    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }

    pub fn signal_count(&self) -> usize {
        self.refs.len()
    }

    /// Whether a tag path names a configured signal.
    pub fn has_signal(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    pub(crate) fn index_of(&self, path: &str) -> Option<usize> {
        self.by_path.get(path).copied()
    }

    /// Merges samples read from the historian. Returns how many changed the live state.
    /// A sample older than the live value (late data, a replay) does not replace it.
    pub fn apply(&self, samples: &[Sample]) -> usize {
        let mut changed = 0;
        let mut fresh = Vec::new();
        // Good readings of signals with a specification: in or out of it.
        let mut checked = Vec::new();
        {
            let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
            for s in samples {
                let Some(i) = self.index_of(&s.tag.path()) else {
                    continue;
                };
                let newer = match &live[i] {
                    Some(cur) => s.source_ts >= cur.source_ts,
                    None => true,
                };
                if newer {
                    live[i] = Some(LiveValue {
                        value: s.value.clone(),
                        quality: s.quality,
                        source_ts: s.source_ts,
                        server_ts: s.server_ts,
                        received_ts: s.received_ts,
                    });
                    changed += 1;
                    fresh.push((i, &s.value, s.source_ts));
                    if let (Some(spec), Some(x)) = (self.spec_of(i), s.value.as_f64()) {
                        if s.quality.is_good() {
                            let outside = self.spec_applies(i, &live) && !spec.contains(x);
                            checked.push((i, &s.value, outside, s.source_ts));
                        }
                    }
                }
            }
        }
        for (site, recorder) in self.batches.iter().enumerate() {
            let first = self.site_offset[site];
            let end = self
                .site_offset
                .get(site + 1)
                .copied()
                .unwrap_or(self.refs.len());
            let mine = || {
                fresh
                    .iter()
                    .filter(|(i, _, _)| (first..end).contains(i))
                    .map(|&(i, v, t)| (i - first, v, t))
            };
            recorder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(mine());
            self.conditions[site]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(mine());
            self.lifecycles[site]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(mine());
            self.oee[site]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .observe(mine());
        }
        if !checked.is_empty() {
            let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
            for (i, v, outside, t) in checked {
                if let Some(place) = self.place(i) {
                    board.observe(i, &place, v, outside, t);
                }
            }
        }
        if changed > 0 {
            let version = {
                let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
                let version = self.version.fetch_add(1, Ordering::AcqRel) + 1;
                if applied.len() == APPLIED_KEPT {
                    applied.pop_front();
                }
                applied.push_back((version, Utc::now()));
                version
            };
            // Nobody listening is fine: the web view may not be open.
            let _ = self.changes.send(version);
        }
        changed
    }

    /// Notified with the new [`Twin::version`] after every merge that changed something.
    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.changes.subscribe()
    }

    /// How many merges have changed the live state so far.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// When `version` was merged, while it is among the last few thousand.
    pub fn applied_at(&self, version: u64) -> Option<DateTime<Utc>> {
        let applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let first = applied.front()?.0;
        let at = applied.get(usize::try_from(version.checked_sub(first)?).ok()?)?;
        (at.0 == version).then_some(at.1)
    }

    /// Records (or clears, with `None`) a problem with reading one signal from its plant.
    pub fn set_signal_error(&self, path: &str, error: Option<String>) -> bool {
        let Some(i) = self.index_of(path) else {
            return false;
        };
        if let Some(place) = self.place(i) {
            self.board.lock().unwrap_or_else(|e| e.into_inner()).data(
                i,
                &place,
                error.as_deref(),
                chrono::Utc::now(),
            );
        }
        let mut errors = self.errors.write().unwrap_or_else(|e| e.into_inner());
        match error {
            Some(e) => errors.insert(i, e),
            None => errors.remove(&i),
        };
        true
    }

    /// Whether signal `i`'s specification holds now: always, or while its unit executes
    /// (a dryer's exhaust is not "too cold" while it is stopped).
    pub(crate) fn spec_applies(&self, i: usize, live: &[Option<LiveValue>]) -> bool {
        self.unit_state[i].is_none_or(|st| {
            live[st]
                .as_ref()
                .is_some_and(|v| matches!(&v.value, Value::Text(t) if t == "EXECUTE"))
        })
    }

    fn spec_of(&self, i: usize) -> Option<model::Range> {
        let r = self.refs.get(i)?;
        self.sites[r.site].lines[r.line].equipment[r.equipment].signals[r.signal].spec
    }

    /// The live value of one signal by its tag path.
    pub fn value(&self, path: &str) -> Option<LiveValue> {
        let i = self.index_of(path)?;
        self.live.read().unwrap_or_else(|e| e.into_inner())[i].clone()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    const TYPES: &str = r#"
[types.tablet_press]
[[types.tablet_press.signals]]
id = "state"
category = "machine"
unit = ""
data_type = "string"
[[types.tablet_press.signals]]
id = "speed"
category = "machine"
unit = "tab/h"
spec = { low = 10, high = 100 }
[[types.tablet_press.signals]]
id = "good_count"
category = "machine"
unit = ""
data_type = "int"
[types.cleanroom]
[[types.cleanroom.signals]]
id = "temperature"
category = "environment"
unit = "degC"
spec = { low = 18, high = 25 }
[[types.cleanroom.signals]]
id = "operators_in_room"
category = "people"
unit = ""
data_type = "int"
[types.line_control]
[[types.line_control.signals]]
id = "batch_id"
category = "method"
unit = ""
data_type = "string"
[[types.line_control.signals]]
id = "batch_phase"
category = "method"
unit = ""
data_type = "string"
[[types.line_control.signals]]
id = "lot_id"
category = "material"
unit = ""
data_type = "string"
"#;

    pub(crate) fn test_site() -> Site {
        let text = r#"
templates = "types.toml"
[site]
id = "s1"
name = "Site one"
namespace_uri = "urn:s1"
endpoint = "opc.tcp://127.0.0.1:1/"
[[areas]]
id = "osd"
[[lines]]
id = "line-1"
area = "osd"
[[lines.equipment]]
id = "press-01"
type = "tablet_press"
room = "room-1"
[[lines.equipment]]
id = "room-1"
type = "cleanroom"
grade = "D"
[[lines.equipment]]
id = "line-control"
type = "line_control"
"#;
        model::load_site_text("test.toml", text, |_| {
            Ok(("types.toml".into(), TYPES.into()))
        })
        .unwrap()
    }

    pub(crate) fn sample(twin: &Twin, path: &str, value: Value, secs: i64) -> Sample {
        let i = twin.index_of(path).expect(path);
        let r = twin.refs[i];
        let tag = twin.sites[r.site].lines[r.line].equipment[r.equipment].signals[r.signal]
            .tag
            .clone();
        let t = Utc.timestamp_opt(secs, 0).unwrap();
        Sample {
            tag,
            value,
            quality: Quality::GOOD,
            source_ts: t,
            server_ts: Some(t),
            received_ts: t,
            backfilled: false,
        }
    }

    #[test]
    fn late_data_does_not_replace_a_newer_live_value() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        let p = "s1/osd/line-1/press-01/speed";
        assert_eq!(twin.apply(&[sample(&twin, p, Value::Float(50.0), 100)]), 1);
        assert_eq!(twin.apply(&[sample(&twin, p, Value::Float(40.0), 90)]), 0);
        assert_eq!(twin.value(p).unwrap().value, Value::Float(50.0));
        twin.apply(&[sample(&twin, p, Value::Float(60.0), 110)]);
        assert_eq!(twin.value(p).unwrap().value, Value::Float(60.0));
    }

    #[test]
    fn samples_of_unknown_tags_are_ignored() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        let mut s = sample(&twin, "s1/osd/line-1/press-01/speed", Value::Float(1.0), 1);
        let mut tag = (*s.tag).clone();
        tag.signal = "nope".into();
        s.tag = Arc::new(tag);
        assert_eq!(twin.apply(&[s]), 0);
    }
}
