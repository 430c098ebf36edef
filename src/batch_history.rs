//! Batch history from simulated plants run offline, much faster than real time: the
//! training data of the quality models and the ground truth that scores them.
//!
//! The plants' signals reach the batch recorder the way live data does — only values that
//! changed, stamped with their simulated time — so the records are those the twin would
//! have built from OPC UA.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use model::{Site, Value};
use sites::physics::{Health, LabResult, Maintenance, Phase, Plant};
use twin_core::{
    BatchRecord, BatchRecorder, ClosedWindow, ConditionMonitor, MaintenanceModels,
    MaintenanceWatch, QualityModels, ReleaseWatch,
};

/// Simulated time between two readings of the plant.
const STEP: Duration = Duration::from_secs(60);
/// Steps in a simulated hour: maintenance predictions run hourly.
const STEPS_PER_HOUR: usize = 60;

/// A deliberate process upset: from `after`, the next batch of `line` to reach compression
/// is pressed at `factor` × its recipe's compression force (tablets too hard, dissolution
/// too slow).
#[derive(Debug, Clone)]
pub(crate) struct OverCompression {
    pub(crate) line: String,
    pub(crate) after: Duration,
    pub(crate) factor: f64,
}

/// A site's plant, run offline, and the batch records built from its signals.
pub(crate) struct SimulatedSite {
    site: Arc<Site>,
    plant: Plant,
    recorder: BatchRecorder,
    previous: Vec<Value>,
    /// The set-point index of the press each upset targets, resolved once.
    upset: Option<(OverCompression, usize)>,
    /// The batch the upset hit and when the set-point was written.
    pub(crate) upset_hit: Option<(String, DateTime<Utc>)>,
    /// Condition windows of the units, when maintenance is being trained or scored.
    condition: Option<Condition>,
}

/// Condition monitoring of an offline run: windows labelled with the true wear (training),
/// or predictions and the alerts they raise (scoring).
pub(crate) struct Condition {
    monitor: ConditionMonitor,
    /// Closed windows with the units' true wear at their end.
    pub(crate) labelled: Vec<(ClosedWindow, Health)>,
    scoring: Option<(Arc<MaintenanceModels>, MaintenanceWatch)>,
    /// Alert id and the true wear of its part when it was raised.
    pub(crate) raised_at_wear: Vec<(u64, f64)>,
}

/// Quality predictions made while the plant runs: models and the alerts they raise.
pub(crate) struct Watch<'a> {
    pub(crate) models: &'a QualityModels,
    pub(crate) alerts: ReleaseWatch,
    pub(crate) every: Duration,
}

impl SimulatedSite {
    pub(crate) fn new(site: Arc<Site>, seed: u64, start: DateTime<Utc>) -> Self {
        let plant = Plant::new(&site, seed, start);
        let recorder = BatchRecorder::new(&site);
        SimulatedSite {
            site,
            plant,
            recorder,
            previous: Vec::new(),
            upset: None,
            upset_hit: None,
            condition: None,
        }
    }

    /// Watches the units' condition from now on: with models, predicts and raises alerts
    /// every simulated hour; without, keeps labelled windows for training.
    pub(crate) fn watch_condition(
        &mut self,
        policy: Maintenance,
        scoring: Option<(Arc<MaintenanceModels>, MaintenanceWatch)>,
    ) {
        self.plant.set_maintenance(policy);
        let mut monitor = ConditionMonitor::new(&self.site);
        if scoring.is_none() {
            monitor.collect_windows();
        }
        self.condition = Some(Condition {
            monitor,
            labelled: Vec::new(),
            scoring,
            raised_at_wear: Vec::new(),
        });
    }

    /// Accelerated life test: every part wears `pace` times faster.
    pub(crate) fn accelerate_wear(&mut self, pace: f64) {
        self.plant.set_wear_pace(pace);
    }

    pub(crate) fn condition(&self) -> Option<&Condition> {
        self.condition.as_ref()
    }

    pub(crate) fn plant(&self) -> &Plant {
        &self.plant
    }

    /// Plans an upset; ignored when the line has no press.
    pub(crate) fn plan(&mut self, upset: OverCompression) {
        let press = self
            .site
            .lines
            .iter()
            .find(|l| l.id == upset.line)
            .and_then(|l| {
                l.equipment
                    .iter()
                    .find(|e| e.kind.as_deref() == Some("tablet_press"))
            })
            .and_then(|e| {
                self.plant
                    .signal_index(&upset.line, &e.id, "compression_force_sp")
            });
        self.upset = press.map(|i| (upset, i));
    }

    /// Runs the plant for `duration` of simulated time; with a watch, predicts the quality
    /// of the batches awaiting their lab results every `watch.every`.
    pub(crate) fn run(
        &mut self,
        duration: Duration,
        mut watch: Option<&mut Watch<'_>>,
        progress: &(dyn Fn(&str, f64) + Sync),
    ) {
        let steps = (duration.as_secs_f64() / STEP.as_secs_f64()).ceil() as usize;
        let report_every = (steps / 20).max(1);
        let watch_every = watch.as_ref().map_or(usize::MAX, |w| {
            (w.every.as_secs_f64() / STEP.as_secs_f64()).max(1.0) as usize
        });
        for step in 0..steps {
            self.plant.step(STEP);
            self.apply_upset();
            let now = self.plant.now();
            let values = self.plant.sample();
            let changed: Vec<_> = values
                .iter()
                .enumerate()
                .filter(|(i, v)| self.previous.get(*i) != Some(*v))
                .map(|(i, v)| (i, v, now))
                .collect();
            self.recorder.observe(changed.iter().copied());
            if let Some(c) = &mut self.condition {
                c.monitor.observe(changed.iter().copied());
            }
            self.previous.clear();
            self.previous.extend_from_slice(values);
            if let Some(c) = &mut self.condition {
                c.after_step(&self.plant, now, step % STEPS_PER_HOUR == 0);
            }
            if let Some(w) = watch.as_deref_mut().filter(|_| step % watch_every == 0) {
                let awaiting = self
                    .recorder
                    .running()
                    .chain(self.recorder.completed().rev().take(20))
                    .filter(|b| b.from_start);
                w.alerts.check(w.models, awaiting, now);
            }
            if step % report_every == 0 {
                progress(&self.site.id, step as f64 / steps as f64);
            }
        }
        progress(&self.site.id, 1.0);
    }

    fn apply_upset(&mut self) {
        let Some((u, press)) = &self.upset else {
            return;
        };
        if self.plant.elapsed() < u.after || self.plant.phase(&u.line) != Some(Phase::Compression) {
            return;
        }
        let sp = match self.plant.sample()[*press] {
            Value::Float(x) => x,
            _ => return,
        };
        if self
            .plant
            .write(*press, &Value::Float(sp * u.factor))
            .is_ok()
        {
            let batch = self
                .recorder
                .running()
                .find(|b| b.line == u.line)
                .map(|b| b.id.clone());
            self.upset_hit = batch.map(|b| (b, self.plant.now()));
        }
        self.upset = None;
    }

    pub(crate) fn site_id(&self) -> &str {
        &self.site.id
    }

    /// Batches in progress.
    pub(crate) fn running(&self) -> impl Iterator<Item = &BatchRecord> {
        self.recorder.running()
    }

    /// Completed batches seen from their start, oldest first.
    pub(crate) fn records(&self) -> impl Iterator<Item = &BatchRecord> {
        self.recorder.completed().filter(|b| b.from_start)
    }

    /// Lab results released so far, with their noise-free values.
    pub(crate) fn truth(&self) -> Vec<LabResult> {
        self.plant.lab_results()
    }
}

impl Condition {
    fn after_step(&mut self, plant: &Plant, now: DateTime<Utc>, hourly: bool) {
        for w in self.monitor.take_closed() {
            if let Some(h) = plant.health(&w.line, &w.equipment) {
                self.labelled.push((w, h));
            }
        }
        let Some((models, watch)) = self.scoring.as_mut().filter(|_| hourly) else {
            return;
        };
        let risks = self.monitor.score(models);
        for n in watch.check(&risks, now) {
            if n.event == "raised" {
                let a = &n.alert;
                let wear = plant.health(&a.line, &a.equipment).map_or(f64::NAN, |h| {
                    sites::physics::Part::parse(&a.part).map_or(f64::NAN, |p| h.wear(p))
                });
                self.raised_at_wear.push((a.id, wear));
            }
        }
    }

    pub(crate) fn monitor(&self) -> &ConditionMonitor {
        &self.monitor
    }

    pub(crate) fn watch(&self) -> Option<&MaintenanceWatch> {
        self.scoring.as_ref().map(|(_, w)| w)
    }
}

/// Runs `f` on every site in its own thread (the plants are independent).
pub(crate) fn in_parallel<T: Send>(
    runs: &mut [SimulatedSite],
    f: impl Fn(&mut SimulatedSite) -> T + Sync,
) -> Vec<T> {
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = runs.iter_mut().map(|r| scope.spawn(move || f(r))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}
