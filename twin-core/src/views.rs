//! What the twin shows: serializable views of sites, lines, equipment and signals, read
//! from the live state at one instant.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use model::{Category, DataType, Equipment, Range, Sample, Site, Value};
use serde::Serialize;

use crate::{live::LiveValue, Twin, FRESH_SECS};

#[derive(Debug, Clone, Serialize)]
pub struct SignalView {
    pub path: String,
    pub site: String,
    pub area: String,
    pub line: String,
    pub equipment: String,
    pub signal: String,
    pub category: Category,
    pub unit: String,
    pub data_type: DataType,
    pub node: String,
    pub value: Option<Value>,
    /// The OPC UA status code of the value.
    pub quality: Option<u32>,
    /// `good`, `uncertain` or `bad`.
    pub quality_severity: Option<&'static str>,
    pub source_ts: Option<DateTime<Utc>>,
    pub server_ts: Option<DateTime<Utc>>,
    /// Seconds between the value's source time and now.
    pub age_s: Option<f64>,
    pub limits: Option<Range>,
    pub spec: Option<Range>,
    /// Outside its specification limits.
    pub excursion: bool,
    /// Why the signal has no value, when reading it from the plant failed.
    pub error: Option<String>,
}

/// Every signal's value at one past moment, read back from the store: the input of the
/// `*_at` views (time travel). Values are aged against that moment, so what was fresh then
/// reads as fresh.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    live: Vec<Option<LiveValue>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CategoryCount {
    pub signals: usize,
    pub fresh: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteSummary {
    pub id: String,
    pub name: String,
    pub enterprise: String,
    pub signals: usize,
    pub with_value: usize,
    /// Per 5M1E category, signals whose value is younger than `FRESH_SECS` of source time.
    pub fresh: BTreeMap<Category, usize>,
    pub categories: BTreeMap<Category, CategoryCount>,
    pub signal_errors: usize,
    pub excursions: usize,
    pub lines: Vec<LineView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LineView {
    pub id: String,
    pub name: String,
    pub area: String,
    pub equipment: Vec<EquipmentView>,
    pub rooms: Vec<RoomView>,
    pub batch: Option<BatchView>,
    pub shift: Option<ShiftView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EquipmentView {
    pub id: String,
    pub name: String,
    pub kind: Option<String>,
    pub room: Option<String>,
    pub state: Option<String>,
    pub state_since: Option<DateTime<Utc>>,
    pub excursions: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub grade: Option<String>,
    /// Environment and people readings by signal id, with unit and whether in spec.
    pub readings: BTreeMap<String, Reading>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    pub value: Option<Value>,
    pub unit: String,
    pub in_spec: Option<bool>,
    pub spec: Option<Range>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub batch_id: Option<Value>,
    pub product: Option<Value>,
    pub recipe: Option<Value>,
    pub recipe_version: Option<Value>,
    pub phase: Option<Value>,
    pub phase_elapsed_min: Option<Value>,
    pub progress_pct: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShiftView {
    pub shift_id: Option<Value>,
    pub shift_lead: Option<Value>,
    pub operators_on_shift: Option<Value>,
    pub operators_qualified: Option<Value>,
}

/// The kind (equipment type) the twin reads rooms from.
const ROOM_KIND: &str = "cleanroom";
/// The kind the twin reads batch and shift context from.
const CONTROL_KIND: &str = "line_control";

impl Twin {
    /// Signals of one site (and line), or of all, with their live values.
    pub fn signals(
        &self,
        site: Option<&str>,
        line: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<SignalView> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        let errors = self.errors.read().unwrap_or_else(|e| e.into_inner());
        self.signals_of(&live, &errors, site, line, now)
    }

    /// [`Twin::signals`] as they were at a past moment.
    pub fn signals_at(
        &self,
        past: &Snapshot,
        site: Option<&str>,
        line: Option<&str>,
    ) -> Vec<SignalView> {
        self.signals_of(&past.live, &HashMap::new(), site, line, past.at)
    }

    /// [`Twin::site_summaries`] as they were at a past moment.
    pub fn site_summaries_at(&self, past: &Snapshot) -> Vec<SiteSummary> {
        self.summaries_of(&past.live, &HashMap::new(), past.at)
    }

    /// The tag path of every signal, in the twin's order: what a [`Snapshot`] is read for.
    pub fn signal_paths(&self) -> Vec<String> {
        self.refs
            .iter()
            .map(|r| {
                self.sites[r.site].lines[r.line].equipment[r.equipment].signals[r.signal]
                    .tag
                    .path()
            })
            .collect()
    }

    /// The tag paths of the signals that have no value yet.
    pub fn paths_without_value(&self) -> Vec<String> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        let paths = self.signal_paths();
        paths
            .into_iter()
            .zip(live.iter())
            .filter(|(_, v)| v.is_none())
            .map(|(p, _)| p)
            .collect()
    }

    /// The plant at `at` from the newest stored sample of each signal, as the store's
    /// `values_at` answers for [`Twin::signal_paths`] (same order).
    pub fn snapshot(&self, at: DateTime<Utc>, samples: Vec<Option<Sample>>) -> Snapshot {
        let live = samples
            .into_iter()
            .chain(std::iter::repeat(None))
            .take(self.refs.len())
            .map(|s| {
                s.map(|s| LiveValue {
                    value: s.value,
                    quality: s.quality,
                    source_ts: s.source_ts,
                    server_ts: s.server_ts,
                    received_ts: s.received_ts,
                })
            })
            .collect();
        Snapshot { at, live }
    }

    fn signals_of(
        &self,
        live: &[Option<LiveValue>],
        errors: &HashMap<usize, String>,
        site: Option<&str>,
        line: Option<&str>,
        now: DateTime<Utc>,
    ) -> Vec<SignalView> {
        self.refs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let s = &self.sites[r.site];
                let l = &s.lines[r.line];
                if site.is_some_and(|id| id != s.id) || line.is_some_and(|id| id != l.id) {
                    return None;
                }
                let sig = &l.equipment[r.equipment].signals[r.signal];
                let lv = live[i].as_ref();
                Some(SignalView {
                    path: sig.tag.path(),
                    site: s.id.clone(),
                    area: l.area.clone(),
                    line: l.id.clone(),
                    equipment: sig.tag.equipment.clone(),
                    signal: sig.id.clone(),
                    category: sig.category,
                    unit: sig.unit.clone(),
                    data_type: sig.data_type,
                    node: sig.node.to_string(),
                    value: lv.map(|v| v.value.clone()),
                    quality: lv.map(|v| v.quality.0),
                    quality_severity: lv.map(|v| v.quality.severity()),
                    source_ts: lv.map(|v| v.source_ts),
                    server_ts: lv.and_then(|v| v.server_ts),
                    age_s: lv.map(|v| age_secs(v, now)),
                    limits: sig.limits,
                    spec: sig.spec,
                    excursion: lv.is_some_and(|v| out_of_spec(sig.spec, v))
                        && self.spec_applies(i, live),
                    error: errors.get(&i).cloned(),
                })
            })
            .collect()
    }

    /// One summary per site: freshness per category and the state of every line.
    pub fn site_summaries(&self, now: DateTime<Utc>) -> Vec<SiteSummary> {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        let errors = self.errors.read().unwrap_or_else(|e| e.into_inner());
        self.summaries_of(&live, &errors, now)
    }

    fn summaries_of(
        &self,
        live: &[Option<LiveValue>],
        errors: &HashMap<usize, String>,
        now: DateTime<Utc>,
    ) -> Vec<SiteSummary> {
        let mut out: Vec<SiteSummary> = self.sites.iter().map(|s| empty_summary(s)).collect();
        for (i, r) in self.refs.iter().enumerate() {
            let sig = &self.sites[r.site].lines[r.line].equipment[r.equipment].signals[r.signal];
            let sum = &mut out[r.site];
            let count = sum.categories.entry(sig.category).or_default();
            count.signals += 1;
            if errors.contains_key(&i) {
                sum.signal_errors += 1;
            }
            if let Some(v) = &live[i] {
                sum.with_value += 1;
                if age_secs(v, now) < FRESH_SECS as f64 {
                    count.fresh += 1;
                }
                // Counted as the alert board counts them: only where the spec holds now.
                if out_of_spec(sig.spec, v) && self.spec_applies(i, live) {
                    sum.excursions += 1;
                }
            }
        }
        for (si, sum) in out.iter_mut().enumerate() {
            sum.fresh = sum.categories.iter().map(|(c, n)| (*c, n.fresh)).collect();
            sum.lines = (0..self.sites[si].lines.len())
                .map(|li| self.line_view(si, li, live))
                .collect();
        }
        out
    }

    fn line_view(
        &self,
        site_index: usize,
        line_index: usize,
        live: &[Option<LiveValue>],
    ) -> LineView {
        let line = &self.sites[site_index].lines[line_index];
        let firsts = &self.first_signal[site_index][line_index];
        let get = |eq: &Equipment, id: &str| -> Option<&LiveValue> {
            let ei = line.equipment.iter().position(|e| std::ptr::eq(e, eq))?;
            let gi = eq.signals.iter().position(|s| s.id == id)?;
            live[firsts[ei] + gi].as_ref()
        };
        let value = |eq: &Equipment, id: &str| get(eq, id).map(|v| v.value.clone());
        let control = line
            .equipment
            .iter()
            .find(|e| e.kind.as_deref() == Some(CONTROL_KIND));
        LineView {
            id: line.id.clone(),
            name: line.name.clone(),
            area: line.area.clone(),
            equipment: line
                .equipment
                .iter()
                .filter(|e| !matches!(e.kind.as_deref(), Some(ROOM_KIND) | Some(CONTROL_KIND)))
                .map(|e| {
                    let state = get(e, "state");
                    // As the alert board: a unit's specifications hold while it executes.
                    let executing =
                        state.is_none_or(|v| matches!(&v.value, Value::Text(t) if t == "EXECUTE"));
                    EquipmentView {
                        id: e.id.clone(),
                        name: e.name.clone(),
                        kind: e.kind.clone(),
                        room: e.room.clone(),
                        state: state.map(|v| v.value.to_string()),
                        state_since: state.map(|v| v.source_ts),
                        excursions: if executing {
                            e.signals
                                .iter()
                                .filter(|s| get(e, &s.id).is_some_and(|v| out_of_spec(s.spec, v)))
                                .count()
                        } else {
                            0
                        },
                    }
                })
                .collect(),
            rooms: line
                .equipment
                .iter()
                .filter(|e| e.kind.as_deref() == Some(ROOM_KIND))
                .map(|e| RoomView {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    grade: e.grade.clone(),
                    readings: e
                        .signals
                        .iter()
                        .map(|s| {
                            let v = get(e, &s.id);
                            let reading = Reading {
                                value: v.map(|v| v.value.clone()),
                                unit: s.unit.clone(),
                                in_spec: v.and_then(|v| Some(!out_of_spec(Some(s.spec?), v))),
                                spec: s.spec,
                            };
                            (s.id.clone(), reading)
                        })
                        .collect(),
                })
                .collect(),
            batch: control.map(|c| BatchView {
                batch_id: value(c, "batch_id"),
                product: value(c, "product"),
                recipe: value(c, "recipe"),
                recipe_version: value(c, "recipe_version"),
                phase: value(c, "batch_phase"),
                phase_elapsed_min: value(c, "phase_elapsed_min"),
                progress_pct: value(c, "batch_progress_pct"),
            }),
            shift: control.map(|c| ShiftView {
                shift_id: value(c, "shift_id"),
                shift_lead: value(c, "shift_lead"),
                operators_on_shift: value(c, "operators_on_shift"),
                operators_qualified: value(c, "operators_qualified"),
            }),
        }
    }
}

fn empty_summary(s: &Site) -> SiteSummary {
    SiteSummary {
        id: s.id.clone(),
        name: s.name.clone(),
        enterprise: s.enterprise.clone(),
        signals: s.signal_count(),
        with_value: 0,
        fresh: BTreeMap::new(),
        // Every category is listed, even with no signal, so a missing one reads as 0.
        categories: Category::ALL
            .iter()
            .map(|c| (*c, CategoryCount::default()))
            .collect(),
        signal_errors: 0,
        excursions: 0,
        lines: Vec::new(),
    }
}

fn age_secs(v: &LiveValue, now: DateTime<Utc>) -> f64 {
    (now - v.source_ts).num_milliseconds() as f64 / 1000.0
}

fn out_of_spec(spec: Option<Range>, v: &LiveValue) -> bool {
    match (spec, v.value.as_f64()) {
        (Some(r), Some(x)) => v.quality.is_good() && !r.contains(x),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use model::Value;

    use crate::live::tests::{sample, test_site};
    use crate::Twin;

    #[test]
    fn freshness_counts_only_values_younger_than_ten_seconds_per_category() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        twin.apply(&[
            sample(
                &twin,
                "s1/osd/line-1/press-01/speed",
                Value::Float(50.0),
                1000,
            ),
            sample(
                &twin,
                "s1/osd/line-1/press-01/state",
                Value::Text("EXECUTE".into()),
                985,
            ),
            sample(
                &twin,
                "s1/osd/line-1/room-1/temperature",
                Value::Float(30.0),
                995,
            ),
        ]);
        let now = chrono::Utc.timestamp_opt(1002, 0).unwrap();
        let sum = &twin.site_summaries(now)[0];
        assert_eq!(sum.fresh[&model::Category::Machine], 1, "state is 17 s old");
        assert_eq!(sum.fresh[&model::Category::Environment], 1);
        assert_eq!(sum.fresh[&model::Category::People], 0);
        assert_eq!(sum.with_value, 3);
        assert_eq!(sum.excursions, 1, "30 °C is above the 25 °C spec");
        let line = &sum.lines[0];
        assert_eq!(
            line.equipment.len(),
            1,
            "rooms and line control are not process equipment"
        );
        assert_eq!(line.equipment[0].state.as_deref(), Some("EXECUTE"));
        assert_eq!(line.rooms[0].readings["temperature"].in_spec, Some(false));
    }

    #[test]
    fn signals_filter_by_site_and_line_and_carry_errors() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        assert!(twin.set_signal_error(
            "s1/osd/line-1/press-01/speed",
            Some("BadNodeIdUnknown".into())
        ));
        let now = chrono::Utc::now();
        let all = twin.signals(Some("s1"), Some("line-1"), now);
        assert_eq!(all.len(), twin.signal_count());
        assert!(twin.signals(Some("other"), None, now).is_empty());
        let speed = all.iter().find(|s| s.signal == "speed").unwrap();
        assert_eq!(speed.error.as_deref(), Some("BadNodeIdUnknown"));
        assert!(speed.value.is_none());
    }

    #[test]
    fn a_past_moment_shows_the_values_stored_then_aged_against_that_moment() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        let speed = "s1/osd/line-1/press-01/speed";
        let state = "s1/osd/line-1/press-01/state";
        twin.apply(&[
            sample(&twin, speed, Value::Float(50.0), 5000),
            sample(&twin, state, Value::Text("HELD".into()), 5000),
        ]);
        let paths = twin.signal_paths();
        assert_eq!(paths.len(), twin.signal_count());
        let stored = paths
            .iter()
            .map(|p| match p.as_str() {
                p if p == speed => Some(sample(&twin, speed, Value::Float(120.0), 995)),
                p if p == state => Some(sample(&twin, state, Value::Text("EXECUTE".into()), 900)),
                _ => None,
            })
            .collect();
        let past = twin.snapshot(chrono::Utc.timestamp_opt(1000, 0).unwrap(), stored);

        let then = twin.signals_at(&past, Some("s1"), Some("line-1"));
        let sp = then.iter().find(|s| s.path == speed).unwrap();
        assert_eq!(
            sp.value,
            Some(Value::Float(120.0)),
            "the stored value, not the live one"
        );
        assert_eq!(
            sp.age_s,
            Some(5.0),
            "aged against the moment, not against now"
        );
        assert!(
            sp.excursion,
            "120 was above the 100 spec of the running press then"
        );
        let sum = &twin.site_summaries_at(&past)[0];
        assert_eq!(sum.lines[0].equipment[0].state.as_deref(), Some("EXECUTE"));
        assert_eq!(
            sum.fresh[&model::Category::Machine],
            1,
            "speed 5 s old, state 100 s"
        );
        assert_eq!(sum.with_value, 2);
        // The live views are untouched by reading the past.
        let now = twin.signals(Some("s1"), Some("line-1"), chrono::Utc::now());
        let live = now.iter().find(|s| s.path == speed).unwrap();
        assert_eq!(live.value, Some(Value::Float(50.0)));
    }

    #[test]
    fn a_stopped_unit_out_of_its_process_spec_is_no_excursion() {
        let twin = Twin::new(vec![Arc::new(test_site())]);
        let speed = "s1/osd/line-1/press-01/speed";
        let state = "s1/osd/line-1/press-01/state";
        twin.apply(&[
            sample(&twin, state, Value::Text("STOPPED".into()), 1000),
            sample(&twin, speed, Value::Float(0.0), 1000),
        ]);
        let now = chrono::Utc.timestamp_opt(1001, 0).unwrap();
        let count = |twin: &Twin| {
            let sum = &twin.site_summaries(now)[0];
            let sig = twin.signals(None, None, now);
            (
                sum.excursions,
                sum.lines[0].equipment[0].excursions,
                sig.iter().find(|s| s.path == speed).unwrap().excursion,
            )
        };
        assert_eq!(count(&twin), (0, 0, false), "speed 0 of a stopped press");
        twin.apply(&[sample(&twin, state, Value::Text("EXECUTE".into()), 1001)]);
        assert_eq!(count(&twin), (1, 1, true), "speed 0 of a running press");
    }
}
