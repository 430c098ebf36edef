//! Critical-quality-attribute (CQA) prediction from batch records.
//!
//! * [`load_batches`] reads a directory holding `Laboratory.csv` and
//!   `Process.csv` (and optionally `Normalization.csv`) and joins them on
//!   `batch` into a [`BatchTable`] in time order.
//! * [`FeatureSet::select`] keeps what is known before release testing: the
//!   tablet-press summaries of `Process.csv`, the incoming raw-material results,
//!   product code and batch size — never in-process tablet checks, yields or
//!   final results ([`ColumnRole`]).
//! * [`CqaModel`] is a generic tabular regressor (boosted trees with
//!   time-ordered model selection and a conformal interval), usable on simulated
//!   batch records as well; [`PlsModel`] and [`RidgeModel`] are the linear
//!   references.
//! * [`evaluate`] trains on one directory and scores on another.

mod cv;
mod domain;
mod linear;
mod model;
mod pls;
mod records;
mod ridge;
mod ridge_boost;

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::gbm::GbmError;
use crate::rul::rmse;

pub use cv::{forward_folds, Fold, MIN_VALID_ROWS};
pub use domain::{ranges, Domain, DomainCheck, DOMAIN_CONFIDENCE};
pub use linear::Standardizer;
pub use model::{
    conformal_quantile, fingerprint, CqaConfig, CqaModel, EnsemblePart, FeatureImportance,
    Prediction, RoundsRule, TreeShape, MODEL_VERSION,
};
pub use pls::PlsModel;
pub use records::{
    column_role, load_batches, BatchTable, ColumnRole, FeatureSet, Source, TableColumn,
    UnmatchedBatch, BATCH_SIZE, KEY, LABORATORY_FILE, NORMALIZATION_FILE, PROCESS_FILE,
    PROCESS_QUALITY_COLUMNS, PRODUCT_CODE, RAW_MATERIAL_PREFIXES,
};
pub use ridge::{RidgeModel, RIDGE_LAMBDAS};
pub use ridge_boost::{InputRoles, RidgeBoostModel, RIDGE_BOOST_VERSION};

/// Largest number of PLS components tried.
pub const PLS_MAX_COMPONENTS: usize = 10;
/// Number of top features listed in a [`QualityReport`].
pub const REPORT_TOP_FEATURES: usize = 10;

/// Errors of the CQA pipeline.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// Path of the file.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A cell that cannot be read.
    #[error("{file}:{line}: column {column:?}: {message}")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Column name.
        column: String,
        /// What is wrong.
        message: String,
    },
    /// A malformed line.
    #[error("{file}:{line}: {message}")]
    Row {
        /// File name.
        file: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A required column is absent.
    #[error("{file}: missing column {column:?}")]
    MissingColumn {
        /// File name.
        file: String,
        /// Column name.
        column: String,
    },
    /// A batch number appears twice in one file.
    #[error("{file}:{line}: batch {batch} appears again (first on line {first_line})")]
    DuplicateBatch {
        /// File name.
        file: String,
        /// 1-based line of the repetition.
        line: usize,
        /// Batch number.
        batch: u64,
        /// 1-based line of the first appearance.
        first_line: usize,
    },
    /// The two files disagree on a column they share.
    #[error("{0}")]
    JoinMismatch(Box<JoinMismatch>),
    /// The requested target is not a numeric laboratory column.
    #[error("unknown target {target:?}; valid targets: {}", valid.join(", "))]
    UnknownTarget {
        /// Requested name.
        target: String,
        /// Numeric laboratory columns.
        valid: Vec<String>,
    },
    /// Inconsistent or unusable input.
    #[error("{0}")]
    Input(String),
    /// The tree learner rejected its input.
    #[error(transparent)]
    Gbm(#[from] GbmError),
}

/// Details of [`QualityError::JoinMismatch`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "batch {batch}: column {column:?} is {laboratory:?} in {laboratory_file} \
     but {process:?} in {process_file}"
)]
pub struct JoinMismatch {
    /// Batch number.
    pub batch: u64,
    /// Shared column.
    pub column: String,
    /// Laboratory value.
    pub laboratory: String,
    /// Process value.
    pub process: String,
    /// Laboratory file name.
    pub laboratory_file: String,
    /// Process file name.
    pub process_file: String,
}

/// Checks a training set (non-empty, rectangular, finite targets, no infinite
/// features) and returns its number of features.
pub(crate) fn check_training_data(rows: &[Vec<f64>], y: &[f64]) -> Result<usize, QualityError> {
    if rows.is_empty() || rows.len() != y.len() {
        return Err(QualityError::Input(format!(
            "{} rows but {} targets",
            rows.len(),
            y.len()
        )));
    }
    let p = rows[0].len();
    if p == 0 {
        return Err(QualityError::Input("rows have no features".into()));
    }
    if let Some(i) = rows.iter().position(|r| r.len() != p) {
        return Err(QualityError::Input(format!(
            "row {i} has {} values, row 0 has {p}",
            rows[i].len()
        )));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(QualityError::Input(format!("target {i} is not finite")));
    }
    if rows.iter().flatten().any(|v| v.is_infinite()) {
        return Err(QualityError::Input("infinite feature value".into()));
    }
    Ok(p)
}

/// Scores of a CQA model trained on one set of batches and tested on another.
#[derive(Debug, Clone, Serialize)]
pub struct QualityReport {
    /// Predicted laboratory column.
    pub target: String,
    /// Test RMSE of the model.
    pub rmse: f64,
    /// Test coefficient of determination (against the test mean).
    pub r2: f64,
    /// Test RMSE of predicting the training mean.
    pub baseline_rmse: f64,
    /// Test RMSE of PLS regression (components by forward validation).
    pub pls_rmse: f64,
    /// PLS components chosen.
    pub pls_components: usize,
    /// Test RMSE of ridge regression (penalty by forward validation).
    pub ridge_rmse: f64,
    /// Ridge penalty chosen.
    pub ridge_lambda: f64,
    /// Training batches used (target present).
    pub train_batches: usize,
    /// Test batches scored (target present).
    pub test_batches: usize,
    /// Training batches dropped because the target is missing.
    pub train_dropped_missing_target: usize,
    /// Test batches dropped because the target is missing.
    pub test_dropped_missing_target: usize,
    /// Batches present in only one of the two files (train + test), not used.
    pub unmatched_batches: usize,
    /// Feature names, in model order.
    pub features: Vec<String>,
    /// Features by decreasing split-gain share.
    pub top_features: Vec<FeatureImportance>,
    /// Fraction of test targets inside the prediction interval.
    pub interval_coverage: f64,
    /// Nominal coverage of the interval.
    pub interval_nominal: f64,
    /// Half-width of the interval.
    pub interval_half_width: f64,
    /// Tree shapes averaged, with the rounds validation chose for each:
    /// `(max_depth, min_samples_leaf, n_trees)`.
    pub ensemble: Vec<(usize, usize, usize)>,
    /// Forward-validation RMSE inside the training set.
    pub cv_rmse: f64,
    /// Forward-validation RMSE of the mean inside the training set.
    pub cv_baseline_rmse: f64,
    /// Training-data fingerprint stored on the model.
    pub fingerprint: String,
    /// Model recipe version.
    pub model_version: String,
    /// Wall-clock seconds to train the CQA model.
    pub train_seconds: f64,
}

/// Trains on the batch records in `train_dir` and tests on those in `test_dir`,
/// with [`CqaConfig::default`].
pub fn evaluate(
    train_dir: &Path,
    test_dir: &Path,
    target: &str,
) -> Result<QualityReport, QualityError> {
    evaluate_with(train_dir, test_dir, target, &CqaConfig::default())
}

/// [`evaluate`] with an explicit configuration.
pub fn evaluate_with(
    train_dir: &Path,
    test_dir: &Path,
    target: &str,
    config: &CqaConfig,
) -> Result<QualityReport, QualityError> {
    let train = load_batches(train_dir)?;
    let test = load_batches(test_dir)?;
    evaluate_tables(&train, &test, target, config)
}

/// Rows of a table whose target is present.
struct Labelled {
    rows: Vec<Vec<f64>>,
    y: Vec<f64>,
    /// Rows left out because the target is missing.
    dropped: usize,
}

fn labelled(
    features: &FeatureSet,
    table: &BatchTable,
    target: &str,
) -> Result<Labelled, QualityError> {
    let x = features.matrix(table)?;
    let values = table.target_values(target)?;
    let mut out = Labelled {
        rows: Vec::with_capacity(values.len()),
        y: Vec::with_capacity(values.len()),
        dropped: 0,
    };
    for (r, v) in x.into_iter().zip(&values) {
        if v.is_finite() {
            out.rows.push(r);
            out.y.push(*v);
        } else {
            out.dropped += 1;
        }
    }
    Ok(out)
}

/// [`evaluate`] on tables already loaded.
pub fn evaluate_tables(
    train: &BatchTable,
    test: &BatchTable,
    target: &str,
    config: &CqaConfig,
) -> Result<QualityReport, QualityError> {
    let features = FeatureSet::select(train, target)?;
    let Labelled {
        rows: x,
        y,
        dropped: train_dropped,
    } = labelled(&features, train, target)?;
    let Labelled {
        rows: xt,
        y: yt,
        dropped: test_dropped,
    } = labelled(&features, test, target)?;
    if yt.is_empty() {
        return Err(QualityError::Input(format!(
            "no test batch has a value for {target:?}"
        )));
    }
    let started = Instant::now();
    let model = CqaModel::fit(&features.names, &x, &y, config)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let predictions = xt
        .iter()
        .map(|r| model.predict(r))
        .collect::<Result<Vec<_>, _>>()?;
    let errors: Vec<f64> = predictions
        .iter()
        .zip(&yt)
        .map(|(p, t)| p.value - t)
        .collect();
    let inside = predictions
        .iter()
        .zip(&yt)
        .filter(|(p, t)| (p.lower..=p.upper).contains(t))
        .count();
    let train_mean = y.iter().sum::<f64>() / y.len() as f64;
    let test_mean = yt.iter().sum::<f64>() / yt.len() as f64;
    let sst: f64 = yt.iter().map(|t| (t - test_mean).powi(2)).sum();
    let sse: f64 = errors.iter().map(|e| e * e).sum();
    let baseline: Vec<f64> = yt.iter().map(|t| train_mean - t).collect();

    let pls = PlsModel::fit_cv(&x, &y, PLS_MAX_COMPONENTS, config.folds, config.gap)?;
    let pls_errors: Vec<f64> = xt
        .iter()
        .zip(&yt)
        .map(|(r, t)| pls.predict(r) - t)
        .collect();
    let ridge = RidgeModel::fit_cv(&x, &y, config.folds, config.gap)?;
    let ridge_errors: Vec<f64> = xt
        .iter()
        .zip(&yt)
        .map(|(r, t)| ridge.predict(r) - t)
        .collect();

    Ok(QualityReport {
        target: target.to_string(),
        rmse: rmse(&errors),
        r2: if sst > 0.0 { 1.0 - sse / sst } else { f64::NAN },
        baseline_rmse: rmse(&baseline),
        pls_rmse: rmse(&pls_errors),
        pls_components: pls.components,
        ridge_rmse: rmse(&ridge_errors),
        ridge_lambda: ridge.lambda,
        train_batches: y.len(),
        test_batches: yt.len(),
        train_dropped_missing_target: train_dropped,
        test_dropped_missing_target: test_dropped,
        unmatched_batches: train.unmatched().len() + test.unmatched().len(),
        features: features.names.clone(),
        top_features: model.top_features(REPORT_TOP_FEATURES),
        interval_coverage: inside as f64 / yt.len() as f64,
        interval_nominal: model.coverage,
        interval_half_width: model.half_width,
        ensemble: model
            .parts
            .iter()
            .map(|p| (p.shape.max_depth, p.shape.min_samples_leaf, p.n_trees))
            .collect(),
        cv_rmse: model.cv_rmse,
        cv_baseline_rmse: model.cv_baseline_rmse,
        fingerprint: model.fingerprint.clone(),
        model_version: model.version.clone(),
        train_seconds,
    })
}

#[cfg(test)]
mod tests;
