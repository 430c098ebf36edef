//! Multivariate statistical process monitoring (MSPC), evaluated on the
//! Tennessee Eastman process (TEP).
//!
//! * [`parse_tep`] reads the Braatz TEP files (either orientation).
//! * [`pca::Pca`] is the classic model: autoscaling, principal components
//!   (count by parallel analysis, cumulative variance or fixed), Hotelling T²
//!   with its F limit, SPE with the Jackson–Mudholkar limit, and
//!   reconstruction-based contributions.
//! * [`Monitor`] adds smoothed statistics (EWMA of SPE, and T²/SPE of the
//!   EWMA-filtered data under a second PCA model) and alarms when SPE or any
//!   of them passes its limit, calibrated by blocked cross-validation on the
//!   normal run. It scores sample by sample ([`Monitor::score`]) for live
//!   trajectories.
//! * [`evaluate`] fits on a normal run and reports false-alarm and detection
//!   rates on further runs, with plain PCA figures for reference.

pub mod distributions;
pub mod linalg;
pub mod monitor;
pub mod pca;
pub mod tep;

use serde::Serialize;

pub use monitor::{
    Contribution, Contributions, Monitor, MonitorConfig, MonitorState, Score, Statistic,
};
pub use pca::ComponentRule;
pub use tep::{fault_number, is_unobservable_fault, parse_tep, TEP_VARIABLES};

/// Errors of the monitoring pipeline.
#[derive(Debug, thiserror::Error)]
pub enum MspcError {
    /// A malformed line in an input file.
    #[error("{origin}:{line}: {message}")]
    Parse {
        /// File name or other description of the input.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Inconsistent or unusable input.
    #[error("{0}")]
    Input(String),
}

/// Result of one fault run in an [`MspcReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultResult {
    /// Name of the run (file name).
    pub name: String,
    /// Fraction of samples from the fault start on that raise an alarm.
    pub detection_rate: f64,
    /// Fraction of the samples before the fault start that raise an alarm
    /// (`null` when the fault is present from the first sample).
    pub false_alarm_rate: Option<f64>,
    /// Detection rate of plain PCA T² against its F limit.
    pub pca_t2_detection_rate: f64,
    /// Detection rate of plain PCA SPE against its Jackson–Mudholkar limit.
    pub pca_spe_detection_rate: f64,
}

/// Evaluation of a monitor on normal and faulty runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MspcReport {
    /// Short description of the monitoring method.
    pub method: String,
    /// Principal components retained.
    pub components: usize,
    /// Normal samples the monitor was fitted on.
    pub train_samples: usize,
    /// Alarm rate over all normal samples: the normal test run plus the
    /// pre-fault part of every fault run.
    pub false_alarm_rate: f64,
    /// Normal samples behind `false_alarm_rate`.
    pub normal_samples: usize,
    /// Per fault run.
    pub faults: Vec<FaultResult>,
    /// Mean detection rate over all fault runs.
    pub mean_detection_rate: f64,
    /// Mean detection rate without TEP faults 3, 9 and 15 (numbers taken
    /// from the run names, e.g. `d03.dat`, `d03_te.dat`; runs whose number
    /// cannot be told are kept). Equal to the mean when nothing is left out.
    pub mean_detection_rate_excluding_3_9_15: f64,
    /// Plain PCA T² mean detection rate, over the same runs as
    /// `mean_detection_rate_excluding_3_9_15`.
    pub pca_t2_mean_detection_rate: f64,
    /// Plain PCA SPE mean detection rate, over the same runs.
    pub pca_spe_mean_detection_rate: f64,
    /// Plain PCA false-alarm rate (T² or SPE over its limit) on the same
    /// normal samples.
    pub pca_false_alarm_rate: f64,
    /// Plain PCA T² false-alarm rate.
    pub pca_t2_false_alarm_rate: f64,
    /// Plain PCA SPE false-alarm rate.
    pub pca_spe_false_alarm_rate: f64,
}

/// Fits a [`Monitor`] with [`MonitorConfig::default`] on `train_rows` and
/// evaluates it: false alarms on `normal_rows`, detection on each
/// `(name, rows)` fault run from sample `fault_start` on (earlier samples
/// count as normal). Each run is scored from a fresh state.
pub fn evaluate(
    train_rows: &[Vec<f64>],
    normal_rows: &[Vec<f64>],
    faults: &[(String, Vec<Vec<f64>>)],
    fault_start: usize,
) -> Result<MspcReport, MspcError> {
    evaluate_with(
        train_rows,
        normal_rows,
        faults,
        fault_start,
        &MonitorConfig::default(),
    )
}

/// Alarm counts of one run.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    samples: usize,
    alarm: usize,
    t2: usize,
    spe: usize,
    either: usize,
}

impl Counts {
    fn add(&mut self, s: &Score) {
        self.samples += 1;
        self.alarm += usize::from(s.alarm);
        self.t2 += usize::from(s.pca_t2_alarm());
        self.spe += usize::from(s.pca_spe_alarm());
        self.either += usize::from(s.pca_t2_alarm() || s.pca_spe_alarm());
    }

    fn merge(&mut self, o: &Counts) {
        self.samples += o.samples;
        self.alarm += o.alarm;
        self.t2 += o.t2;
        self.spe += o.spe;
        self.either += o.either;
    }

    fn rate(&self, count: usize) -> f64 {
        if self.samples == 0 {
            f64::NAN
        } else {
            count as f64 / self.samples as f64
        }
    }
}

/// [`evaluate`] with an explicit configuration.
pub fn evaluate_with(
    train_rows: &[Vec<f64>],
    normal_rows: &[Vec<f64>],
    faults: &[(String, Vec<Vec<f64>>)],
    fault_start: usize,
    config: &MonitorConfig,
) -> Result<MspcReport, MspcError> {
    let monitor = Monitor::fit(train_rows, config)?;
    let score_run = |rows: &[Vec<f64>], split: usize| -> Result<(Counts, Counts), MspcError> {
        let mut state = monitor.start();
        let (mut before, mut after) = (Counts::default(), Counts::default());
        for (t, row) in rows.iter().enumerate() {
            let s = monitor.score(&mut state, row)?;
            if t < split {
                before.add(&s);
            } else {
                after.add(&s);
            }
        }
        Ok((before, after))
    };
    let mut normal = score_run(normal_rows, normal_rows.len())
        .map_err(|e| MspcError::Input(format!("normal run: {e}")))?
        .0;
    let mut results = Vec::with_capacity(faults.len());
    let mut kept = Vec::new();
    for (name, rows) in faults {
        if rows.len() <= fault_start {
            return Err(MspcError::Input(format!(
                "{name}: {} samples, none after the fault start {fault_start}",
                rows.len()
            )));
        }
        let (before, after) =
            score_run(rows, fault_start).map_err(|e| MspcError::Input(format!("{name}: {e}")))?;
        normal.merge(&before);
        let keep = !fault_number(name).is_some_and(is_unobservable_fault);
        let r = FaultResult {
            name: name.clone(),
            detection_rate: after.rate(after.alarm),
            false_alarm_rate: (before.samples > 0).then(|| before.rate(before.alarm)),
            pca_t2_detection_rate: after.rate(after.t2),
            pca_spe_detection_rate: after.rate(after.spe),
        };
        if keep {
            kept.push(results.len());
        }
        results.push(r);
    }
    if normal.samples == 0 {
        return Err(MspcError::Input(
            "no normal samples to measure false alarms on".into(),
        ));
    }
    let mean = |idx: &[usize], f: fn(&FaultResult) -> f64| {
        if idx.is_empty() {
            f64::NAN
        } else {
            idx.iter().map(|&i| f(&results[i])).sum::<f64>() / idx.len() as f64
        }
    };
    let all: Vec<usize> = (0..results.len()).collect();
    // With everything left out, fall back to all runs rather than NaN.
    let kept = if kept.is_empty() { all.clone() } else { kept };
    let pca = monitor.pca();
    Ok(MspcReport {
        method: format!(
            "PCA ({} of {} components, autoscaled); alarm when SPE, EWMA(λ={}) of SPE, or T² \
             or SPE of EWMA(λ={})-filtered data under a second PCA passes its {} limit from \
             {}-fold blocked cross-validation on the normal run",
            pca.components,
            pca.n_variables(),
            config.stat_smoothing,
            config.data_smoothing,
            config.confidence,
            config.folds
        ),
        components: pca.components,
        train_samples: train_rows.len(),
        false_alarm_rate: normal.rate(normal.alarm),
        normal_samples: normal.samples,
        mean_detection_rate: mean(&all, |r| r.detection_rate),
        mean_detection_rate_excluding_3_9_15: mean(&kept, |r| r.detection_rate),
        pca_t2_mean_detection_rate: mean(&kept, |r| r.pca_t2_detection_rate),
        pca_spe_mean_detection_rate: mean(&kept, |r| r.pca_spe_detection_rate),
        pca_false_alarm_rate: normal.rate(normal.either),
        pca_t2_false_alarm_rate: normal.rate(normal.t2),
        pca_spe_false_alarm_rate: normal.rate(normal.spe),
        faults: results,
    })
}

#[cfg(test)]
mod tests;
