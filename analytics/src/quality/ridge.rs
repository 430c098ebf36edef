//! Ridge regression on standardised features: a cheap second linear reference.

use serde::Serialize;

use super::cv::forward_folds;
use super::linear::{linear_predict, solve, Standardizer};
use super::{check_training_data, QualityError};

/// Penalties tried by [`RidgeModel::fit_cv`] (on standardised features, per row).
pub const RIDGE_LAMBDAS: [f64; 12] = [
    1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0,
];

/// A fitted ridge model, expressed on the raw feature scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RidgeModel {
    /// Penalty on standardised coefficients.
    pub lambda: f64,
    /// Intercept on the raw scale.
    pub intercept: f64,
    /// One coefficient per feature on the raw scale.
    pub coefficients: Vec<f64>,
    medians: Vec<f64>,
}

impl RidgeModel {
    /// Minimises `mean((y - Xb)^2) + lambda |b|^2` on standardised, median-imputed
    /// features.
    pub fn fit(rows: &[Vec<f64>], y: &[f64], lambda: f64) -> Result<Self, QualityError> {
        Self::fit_path(rows, y, &[lambda])?
            .pop()
            .ok_or_else(|| QualityError::Input("ridge: no penalty".into()))
    }

    /// One model per penalty in `lambdas`, sharing one Gram matrix.
    pub fn fit_path(
        rows: &[Vec<f64>],
        y: &[f64],
        lambdas: &[f64],
    ) -> Result<Vec<Self>, QualityError> {
        let p = check_training_data(rows, y)?;
        if let Some(bad) = lambdas.iter().find(|l| !(l.is_finite() && **l > 0.0)) {
            return Err(QualityError::Input(format!(
                "ridge penalty must be positive, got {bad}"
            )));
        }
        let n = rows.len() as f64;
        let scaler = Standardizer::fit(rows);
        let y_mean = y.iter().sum::<f64>() / n;
        let mut gram = vec![0.0; p * p];
        let mut xty = vec![0.0; p];
        for (r, &yv) in rows.iter().zip(y) {
            let z = scaler.transform(r);
            for i in 0..p {
                xty[i] += z[i] * (yv - y_mean) / n;
                for j in 0..p {
                    gram[i * p + j] += z[i] * z[j] / n;
                }
            }
        }
        lambdas
            .iter()
            .map(|&lambda| {
                let mut a = gram.clone();
                for i in 0..p {
                    a[i * p + i] += lambda;
                }
                let beta = solve(a, xty.clone())
                    .ok_or_else(|| QualityError::Input("ridge: singular system".into()))?;
                let (intercept, coefficients) = scaler.to_raw(y_mean, &beta);
                Ok(Self {
                    lambda,
                    intercept,
                    coefficients,
                    medians: scaler.medians.clone(),
                })
            })
            .collect()
    }

    /// Chooses the penalty from [`RIDGE_LAMBDAS`] by forward-chaining validation
    /// over the rows in time order ([`forward_folds`] with `gap`), then refits on
    /// all rows.
    pub fn fit_cv(
        rows: &[Vec<f64>],
        y: &[f64],
        folds: usize,
        gap: usize,
    ) -> Result<Self, QualityError> {
        check_training_data(rows, y)?;
        let folds = forward_folds(rows.len(), folds, 0.5, gap);
        let mut sse = [0.0; RIDGE_LAMBDAS.len()];
        for f in &folds {
            let models = Self::fit_path(&rows[..f.train_end], &y[..f.train_end], &RIDGE_LAMBDAS)?;
            for (s, m) in sse.iter_mut().zip(&models) {
                *s += f
                    .valid()
                    .map(|i| (m.predict(&rows[i]) - y[i]).powi(2))
                    .sum::<f64>();
            }
        }
        let lambda = if folds.is_empty() {
            // Too few rows to validate: a moderate penalty.
            1.0
        } else {
            let best = (0..RIDGE_LAMBDAS.len())
                .min_by(|&i, &j| sse[i].total_cmp(&sse[j]))
                .unwrap_or(0);
            RIDGE_LAMBDAS[best]
        };
        Self::fit(rows, y, lambda)
    }

    /// Predicts one row (missing values take the training median).
    pub fn predict(&self, row: &[f64]) -> f64 {
        linear_predict(self.intercept, &self.coefficients, &self.medians, row)
    }
}
