//! Batch records (ISA-88 context) assembled from the signals of a line: which batch ran,
//! of what product and recipe, through which phases, on which equipment, from which lots,
//! under whom, what its process parameters did — and its lab results when the QC lab
//! releases them, hours later.
//!
//! The recorder only reads signal values, the same way live or offline: the twin feeds it
//! what the historian delivers, and an offline evaluation feeds it a simulated plant's
//! samples. Nothing in it knows the simulator.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use model::{Category, DataType, Range, Site, Value};
use serde::Serialize;

/// The equipment kind that carries a line's batch, shift and lab context.
const CONTROL_KIND: &str = "line_control";
/// Lab results are published by the line control as `last_batch_<cqa>`.
const LAB_PREFIX: &str = "last_batch_";
/// PackML state in which a unit works on the batch.
const RUNNING: &str = "EXECUTE";
/// Completed records kept per site; older ones live only in the store.
const KEEP: usize = 5_000;
/// Appended to a parameter's name for its settled level among [`BatchRecord::features`].
pub const SETTLED_SUFFIX: &str = ".settled";
/// Readings of one parameter kept over a unit's run for its settled level: thinned evenly
/// as the run goes on, so a long run at a fast sample rate costs no more than a short one.
const SETTLE_KEEP: usize = 256;

/// Count, mean and range of one process parameter while its unit ran the batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ParamStats {
    pub n: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// The last value of the last run.
    pub last: f64,
    /// The level the last run settled at: the median of its second half of readings. Unlike
    /// the mean, it is not pulled by the start-up transient (a blend's uniformity still
    /// improving), and unlike the last value, not by the ramp-down of a unit coming to rest.
    pub settled: f64,
    /// When the last run of its unit that counted ended: from then on a prediction may use it.
    pub known_at: Option<DateTime<Utc>>,
}

impl ParamStats {
    fn add(&mut self, x: f64) {
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.last = x;
    }

    fn merge(&mut self, other: &ParamStats) {
        let n = self.n + other.n;
        if n > 0 {
            self.mean += (other.mean - self.mean) * other.n as f64 / n as f64;
        }
        self.n = n;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.last = other.last;
        self.settled = other.settled;
        self.known_at = self.known_at.max(other.known_at);
    }

    fn new(x: f64) -> Self {
        ParamStats {
            n: 1,
            mean: x,
            min: x,
            max: x,
            last: x,
            settled: x,
            known_at: None,
        }
    }
}

/// One parameter over the current run of its unit: its statistics and an evenly thinned
/// record of its readings for the settled level.
#[derive(Debug, Clone)]
struct RunParam {
    stats: ParamStats,
    kept: Vec<f64>,
    /// Every `stride`-th reading is kept.
    stride: u64,
}

impl RunParam {
    fn new(x: f64) -> Self {
        RunParam {
            stats: ParamStats::new(x),
            kept: vec![x],
            stride: 1,
        }
    }

    fn add(&mut self, x: f64) {
        let seen = self.stats.n;
        self.stats.add(x);
        if seen.is_multiple_of(self.stride) {
            self.kept.push(x);
        }
        if self.kept.len() > SETTLE_KEEP {
            // Keeping every other of the kept is keeping every `2 × stride`-th reading.
            let mut i = 0;
            self.kept.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride *= 2;
        }
    }

    fn finish(mut self, t: DateTime<Utc>) -> ParamStats {
        // Never empty: a run parameter starts with its first reading.
        let half = self.kept.len() / 2;
        let tail = &mut self.kept[half..];
        tail.sort_by(f64::total_cmp);
        let m = tail.len() / 2;
        let settled = if tail.len() % 2 == 1 {
            tail[m]
        } else {
            (tail[m - 1] + tail[m]) / 2.0
        };
        ParamStats {
            settled,
            known_at: Some(t),
            ..self.stats
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseSpan {
    pub phase: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// One lab result of a batch, with the limits it is released against.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabValue {
    pub value: f64,
    pub spec: Option<Range>,
    pub published: DateTime<Utc>,
}

/// Everything the twin knows about one batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRecord {
    pub id: String,
    pub site: String,
    pub line: String,
    pub product: Option<String>,
    pub recipe: Option<String>,
    pub recipe_version: Option<String>,
    pub sop_version: Option<String>,
    pub size_kg: Option<f64>,
    pub start: DateTime<Utc>,
    /// `None` while the batch runs.
    pub end: Option<DateTime<Utc>>,
    /// Seen from its first phase: a batch already running when the twin started lacks
    /// the parameters of its early phases and is no training example.
    pub from_start: bool,
    pub phases: Vec<PhaseSpan>,
    /// Material lots consumed (every `*lot_id` seen while a unit of the line ran the batch).
    pub lots: BTreeSet<String>,
    pub operators: BTreeSet<String>,
    pub shift_leads: BTreeSet<String>,
    /// Equipment ids that ran the batch.
    pub equipment: BTreeSet<String>,
    /// Critical process parameters, by `<equipment kind>.<signal>`, over the completed runs
    /// of their unit: a half-done drying says nothing yet about the dried granule.
    pub params: BTreeMap<String, ParamStats>,
    /// Lab results by CQA name (`assay`, `dissolution`, …) once released.
    pub lab: BTreeMap<String, LabValue>,
}

impl BatchRecord {
    /// A record of `id` on `site`/`line` with nothing in it but its times: what tests fill in.
    #[cfg(test)]
    pub(crate) fn bare(
        id: &str,
        site: &str,
        line: &str,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> BatchRecord {
        BatchRecord {
            id: id.into(),
            site: site.into(),
            line: line.into(),
            product: None,
            recipe: None,
            recipe_version: None,
            sop_version: None,
            size_kg: None,
            start,
            end,
            from_start: true,
            phases: Vec::new(),
            lots: BTreeSet::new(),
            operators: BTreeSet::new(),
            shift_leads: BTreeSet::new(),
            equipment: BTreeSet::new(),
            params: BTreeMap::new(),
            lab: BTreeMap::new(),
        }
    }

    /// Whether `t` falls in the batch (a running batch extends to now).
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        t >= self.start && self.end.is_none_or(|e| t <= e)
    }

    /// What a model may learn from: the process-parameter means by name, their settled
    /// levels (by name with [`SETTLED_SUFFIX`]), and the minutes each finished phase took
    /// (`phase.DRYING.minutes`) — drying time matters as much as drying temperature.
    pub fn features(&self) -> BTreeMap<String, f64> {
        self.features_known_at(None)
    }

    /// [`BatchRecord::features`] as they were known at `at` (all of them with `None`): what
    /// a prediction made at that moment of the batch could use.
    pub fn features_known_at(&self, at: Option<DateTime<Utc>>) -> BTreeMap<String, f64> {
        let known = |t: Option<DateTime<Utc>>| at.is_none_or(|at| t.is_some_and(|t| t <= at));
        let mut out: BTreeMap<String, f64> = self
            .params
            .iter()
            .filter(|(_, s)| known(s.known_at))
            .flat_map(|(k, s)| {
                [
                    (k.clone(), s.mean),
                    (format!("{k}{SETTLED_SUFFIX}"), s.settled),
                ]
            })
            .collect();
        for p in &self.phases {
            if let Some(end) = p.end.filter(|e| known(Some(*e))) {
                let minutes = (end - p.start).num_milliseconds() as f64 / 60_000.0;
                *out.entry(format!("phase.{}.minutes", p.phase)).or_default() += minutes;
            }
        }
        out
    }

    /// Phases finished so far.
    pub fn phases_done(&self) -> usize {
        self.phases.iter().filter(|p| p.end.is_some()).count()
    }

    /// When the `k`-th phase (1-based) ended; `None` for k = 0 or a phase not finished.
    pub fn phase_end(&self, k: usize) -> Option<DateTime<Utc>> {
        k.checked_sub(1)
            .and_then(|i| self.phases.get(i))
            .and_then(|p| p.end)
    }

    /// [`BatchRecord::features`] in the order of `names`; NaN where not (yet) recorded.
    pub fn feature_row(&self, names: &[String]) -> Vec<f64> {
        let features = self.features();
        names
            .iter()
            .map(|n| features.get(n).copied().unwrap_or(f64::NAN))
            .collect()
    }
}

/// What one signal of a site means to the recorder.
#[derive(Debug, Clone)]
enum Role {
    Ignore,
    BatchId,
    Phase,
    Product,
    Recipe,
    RecipeVersion,
    Sop,
    Size,
    ShiftLead,
    LastBatchId,
    Lab { cqa: String, spec: Option<Range> },
    State { equipment: usize },
    Lot { equipment: usize },
    Operator { equipment: usize },
    Param { equipment: usize, name: String },
}

impl Role {
    /// Context comes first within one delivery: a batch id or unit state that changed at
    /// the same instant as a value decides where that value belongs.
    fn is_context(&self) -> bool {
        matches!(
            self,
            Role::BatchId | Role::Phase | Role::LastBatchId | Role::State { .. }
        )
    }
}

#[derive(Debug)]
struct LineState {
    id: String,
    equipment_ids: Vec<String>,
    running: Vec<bool>,
    /// Parameters of each unit's current run, added to the batch when the run ends.
    run_params: Vec<BTreeMap<String, RunParam>>,
    open: Option<BatchRecord>,
    /// Context read before the batch started, applied when it does.
    product: Option<String>,
    recipe: Option<String>,
    recipe_version: Option<String>,
    sop_version: Option<String>,
    size_kg: Option<f64>,
    shift_lead: Option<String>,
    phase: Option<String>,
    /// Whether a batch id was read before: the next change is a real start.
    seen_batch_id: bool,
    /// The batch whose results the line control shows, and since when.
    lab_batch: Option<(String, DateTime<Utc>)>,
}

/// Builds batch records of one site from its signal values.
#[derive(Debug)]
pub struct BatchRecorder {
    site: String,
    /// Per signal in `site.signals()` order: line index and role.
    roles: Vec<(usize, Role)>,
    lines: Vec<LineState>,
    done: VecDeque<BatchRecord>,
}

impl BatchRecorder {
    pub fn new(site: &Site) -> Self {
        let mut roles = Vec::with_capacity(site.signal_count());
        let mut lines = Vec::with_capacity(site.lines.len());
        for (li, line) in site.lines.iter().enumerate() {
            for (ei, eq) in line.equipment.iter().enumerate() {
                let kind = eq.kind.as_deref().unwrap_or(&eq.id);
                for s in &eq.signals {
                    roles.push((
                        li,
                        role_of(kind, ei, &s.id, s.data_type, s.category, s.spec),
                    ));
                }
            }
            lines.push(LineState {
                id: line.id.clone(),
                equipment_ids: line.equipment.iter().map(|e| e.id.clone()).collect(),
                running: vec![false; line.equipment.len()],
                run_params: vec![BTreeMap::new(); line.equipment.len()],
                open: None,
                product: None,
                recipe: None,
                recipe_version: None,
                sop_version: None,
                size_kg: None,
                shift_lead: None,
                phase: None,
                seen_batch_id: false,
                lab_batch: None,
            });
        }
        BatchRecorder {
            site: site.id.clone(),
            roles,
            lines,
            done: VecDeque::new(),
        }
    }

    /// Takes values of the site's signals, by index in `site.signals()` order.
    pub fn observe<'a>(
        &mut self,
        values: impl IntoIterator<Item = (usize, &'a Value, DateTime<Utc>)>,
    ) {
        let values: Vec<_> = values
            .into_iter()
            .filter(|(i, _, _)| *i < self.roles.len())
            .collect();
        for context in [true, false] {
            for &(i, v, t) in &values {
                if self.roles[i].1.is_context() == context {
                    self.apply(i, v, t);
                }
            }
        }
    }

    fn apply(&mut self, i: usize, v: &Value, t: DateTime<Utc>) {
        let (li, role) = &self.roles[i];
        let line = &mut self.lines[*li];
        let text = || match v {
            Value::Text(s) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        match role {
            Role::Ignore => {}
            Role::BatchId => {
                let id = text();
                let from_start = std::mem::replace(&mut line.seen_batch_id, true);
                if line.open.as_ref().map(|b| &b.id) == id.as_ref() {
                    return;
                }
                if let Some(mut done) = line.open.take() {
                    done.end = Some(t);
                    if let Some(p) = done.phases.last_mut() {
                        p.end.get_or_insert(t);
                    }
                    self.done.push_back(done);
                    if self.done.len() > KEEP {
                        self.done.pop_front();
                    }
                }
                if let Some(id) = id {
                    let mut record = BatchRecord {
                        id,
                        site: self.site.clone(),
                        line: line.id.clone(),
                        product: line.product.clone(),
                        recipe: line.recipe.clone(),
                        recipe_version: line.recipe_version.clone(),
                        sop_version: line.sop_version.clone(),
                        size_kg: line.size_kg,
                        start: t,
                        end: None,
                        from_start,
                        phases: Vec::new(),
                        lots: BTreeSet::new(),
                        operators: BTreeSet::new(),
                        shift_leads: line.shift_lead.iter().cloned().collect(),
                        equipment: BTreeSet::new(),
                        params: BTreeMap::new(),
                        lab: BTreeMap::new(),
                    };
                    if let Some(phase) = line.phase.clone().filter(|p| p != "IDLE") {
                        record.phases.push(PhaseSpan {
                            phase,
                            start: t,
                            end: None,
                        });
                    }
                    line.open = Some(record);
                }
            }
            Role::Phase => {
                let Some(phase) = text() else { return };
                line.phase = Some(phase.clone());
                let Some(b) = line.open.as_mut() else { return };
                if b.phases.last().is_some_and(|p| p.phase == phase) || phase == "IDLE" {
                    return;
                }
                if let Some(p) = b.phases.last_mut() {
                    p.end.get_or_insert(t);
                }
                b.phases.push(PhaseSpan {
                    phase,
                    start: t,
                    end: None,
                });
            }
            Role::Product => set_text(
                &mut line.product,
                text(),
                line.open.as_mut().map(|b| &mut b.product),
            ),
            Role::Recipe => set_text(
                &mut line.recipe,
                text(),
                line.open.as_mut().map(|b| &mut b.recipe),
            ),
            Role::RecipeVersion => set_text(
                &mut line.recipe_version,
                text(),
                line.open.as_mut().map(|b| &mut b.recipe_version),
            ),
            Role::Sop => set_text(
                &mut line.sop_version,
                text(),
                line.open.as_mut().map(|b| &mut b.sop_version),
            ),
            Role::Size => {
                if let Some(x) = number(v) {
                    line.size_kg = Some(x);
                    if let Some(b) = line.open.as_mut() {
                        b.size_kg = Some(x);
                    }
                }
            }
            Role::ShiftLead => {
                line.shift_lead = text();
                if let (Some(b), Some(lead)) = (line.open.as_mut(), text()) {
                    b.shift_leads.insert(lead);
                }
            }
            Role::State { equipment } => {
                let running = matches!(v, Value::Text(s) if s == RUNNING);
                let was = std::mem::replace(&mut line.running[*equipment], running);
                let run = std::mem::take(&mut line.run_params[*equipment]);
                let Some(b) = line.open.as_mut() else { return };
                if running {
                    b.equipment.insert(line.equipment_ids[*equipment].clone());
                } else if was {
                    for (k, s) in run {
                        let s = s.finish(t);
                        b.params.entry(k).and_modify(|p| p.merge(&s)).or_insert(s);
                    }
                }
            }
            Role::Lot { equipment } | Role::Operator { equipment } => {
                let (Some(b), Some(s)) = (line.open.as_mut(), text()) else {
                    return;
                };
                if line.running[*equipment] {
                    match role {
                        Role::Lot { .. } => b.lots.insert(s),
                        _ => b.operators.insert(s),
                    };
                }
            }
            Role::Param { equipment, name } => {
                let (true, Some(x)) = (line.open.is_some(), number(v)) else {
                    return;
                };
                if line.running[*equipment] && x.is_finite() {
                    line.run_params[*equipment]
                        .entry(name.clone())
                        .and_modify(|s| s.add(x))
                        .or_insert_with(|| RunParam::new(x));
                }
            }
            Role::LastBatchId => {
                line.lab_batch = text().map(|id| (id, t));
            }
            Role::Lab { cqa, spec } => {
                let (Some((id, since)), Some(x)) = (line.lab_batch.as_ref(), number(v)) else {
                    return;
                };
                if t < *since {
                    return;
                }
                let record = self
                    .done
                    .iter_mut()
                    .rev()
                    .find(|b| &b.id == id && b.line == line.id);
                if let Some(b) = record {
                    // The first value after the release is the result; repeats change nothing.
                    b.lab.entry(cqa.clone()).or_insert(LabValue {
                        value: x,
                        spec: *spec,
                        published: t,
                    });
                }
            }
        }
    }

    /// Completed batches, oldest first.
    pub fn completed(&self) -> impl DoubleEndedIterator<Item = &BatchRecord> {
        self.done.iter()
    }

    /// Batches in progress, one per line at most.
    pub fn running(&self) -> impl Iterator<Item = &BatchRecord> {
        self.lines.iter().filter_map(|l| l.open.as_ref())
    }

    /// A batch by id, running or completed.
    pub fn get(&self, id: &str) -> Option<&BatchRecord> {
        self.running()
            .find(|b| b.id == id)
            .or_else(|| self.done.iter().rev().find(|b| b.id == id))
    }

    /// The batch that ran on `line` at `t`.
    pub fn at(&self, line: &str, t: DateTime<Utc>) -> Option<&BatchRecord> {
        self.running()
            .chain(self.done.iter().rev())
            .find(|b| b.line == line && b.contains(t))
    }

    /// Specification limits of the lab results, by CQA, as configured for the site.
    pub fn lab_specs(&self) -> BTreeMap<String, Option<Range>> {
        self.roles
            .iter()
            .filter_map(|(_, r)| match r {
                Role::Lab { cqa, spec } => Some((cqa.clone(), *spec)),
                _ => None,
            })
            .collect()
    }
}

fn set_text(line: &mut Option<String>, value: Option<String>, open: Option<&mut Option<String>>) {
    if value.is_none() {
        return;
    }
    if let Some(slot) = open {
        slot.clone_from(&value);
    }
    *line = value;
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Float(x) => Some(*x),
        Value::Int(i) => Some(*i as f64),
        _ => None,
    }
}

fn role_of(
    kind: &str,
    equipment: usize,
    id: &str,
    data_type: DataType,
    category: Category,
    spec: Option<Range>,
) -> Role {
    if kind == CONTROL_KIND {
        return match id {
            "batch_id" => Role::BatchId,
            "batch_phase" => Role::Phase,
            "product" => Role::Product,
            "recipe" => Role::Recipe,
            "recipe_version" => Role::RecipeVersion,
            "sop_version" => Role::Sop,
            "batch_size" => Role::Size,
            "shift_lead" => Role::ShiftLead,
            "last_batch_id" => Role::LastBatchId,
            _ => match id.strip_prefix(LAB_PREFIX) {
                Some(cqa) if data_type == DataType::Double => Role::Lab {
                    cqa: cqa.to_string(),
                    spec,
                },
                _ => Role::Ignore,
            },
        };
    }
    match (id, data_type) {
        ("state", DataType::String) => Role::State { equipment },
        ("operator", DataType::String) => Role::Operator { equipment },
        (_, DataType::String) if id.ends_with("lot_id") => Role::Lot { equipment },
        (_, DataType::Double) if is_process_parameter(id, category) => Role::Param {
            equipment,
            name: format!("{kind}.{id}"),
        },
        _ => Role::Ignore,
    }
}

/// Lifetime totals and calendar counts say nothing about one batch.
fn is_process_parameter(id: &str, category: Category) -> bool {
    category != Category::People
        && !["energy", "hours", "count", "expiry", "total"]
            .iter()
            .any(|w| id.contains(w))
}

impl crate::Twin {
    /// Runs `f` on the batch recorder of each site (optionally one), in configuration order.
    pub fn with_batches<R>(
        &self,
        site: Option<&str>,
        mut f: impl FnMut(&BatchRecorder) -> R,
    ) -> Vec<R> {
        self.sites
            .iter()
            .zip(&self.batches)
            .filter(|(s, _)| site.is_none_or(|id| s.id == id))
            .map(|(_, r)| f(&r.lock().unwrap_or_else(|e| e.into_inner())))
            .collect()
    }

    /// Batches of a site (or all) and line, running ones first, then completed ones newest
    /// first, at most `limit`.
    pub fn batches(
        &self,
        site: Option<&str>,
        line: Option<&str>,
        limit: usize,
    ) -> Vec<BatchRecord> {
        let keep = |b: &&BatchRecord| line.is_none_or(|l| b.line == l);
        let mut out: Vec<BatchRecord> = self
            .with_batches(site, |r| {
                r.running().filter(keep).cloned().collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect();
        let mut done: Vec<BatchRecord> = self
            .with_batches(site, |r| {
                r.completed()
                    .rev()
                    .filter(keep)
                    .take(limit)
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .into_iter()
            .flatten()
            .collect();
        done.sort_by_key(|b| std::cmp::Reverse(b.end));
        out.extend(done);
        out.truncate(limit);
        out
    }

    /// One batch by id, from any site.
    pub fn batch(&self, id: &str) -> Option<BatchRecord> {
        self.with_batches(None, |r| r.get(id).cloned())
            .into_iter()
            .flatten()
            .next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(readings: &[f64]) -> ParamStats {
        let mut p = RunParam::new(readings[0]);
        for &x in &readings[1..] {
            p.add(x);
        }
        p.finish(DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn the_settled_level_ignores_the_start_up_transient_and_the_ramp_down() {
        // A blend's uniformity falling from 15 % to 1 %, then the drive stopping.
        let mut readings: Vec<f64> = (0..30)
            .map(|i| 1.0 + 14.0 * (-0.3 * i as f64).exp())
            .collect();
        readings.extend([1.0; 20]);
        readings.extend([0.5, 0.1]);
        let s = run(&readings);
        assert!((s.settled - 1.0).abs() < 0.01, "{s:?}");
        assert!(s.mean > 2.0 && s.last < 0.2, "{s:?}");
    }

    #[test]
    fn a_long_run_keeps_a_bounded_evenly_thinned_record() {
        let mut p = RunParam::new(0.0);
        for i in 1..100_000 {
            p.add(f64::from(i));
        }
        assert!(p.kept.len() <= SETTLE_KEEP);
        let s = p.finish(DateTime::<Utc>::UNIX_EPOCH);
        // The median of the second half of 0..100 000 is near 75 000.
        assert!((s.settled - 75_000.0).abs() < 1_000.0, "{s:?}");
        assert_eq!(s.n, 100_000);
    }
}
