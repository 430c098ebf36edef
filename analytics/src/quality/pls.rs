//! Partial least squares regression (PLS1, NIPALS): the usual chemometrics
//! reference for predicting a quality attribute from many collinear process and
//! raw-material variables.

use serde::Serialize;

use super::cv::forward_folds;
use super::linear::{linear_predict, solve, Standardizer};
use super::{check_training_data, QualityError};

/// A fitted PLS1 model, expressed on the raw feature scale.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlsModel {
    /// Latent components used.
    pub components: usize,
    /// Intercept on the raw scale.
    pub intercept: f64,
    /// One coefficient per feature on the raw scale.
    pub coefficients: Vec<f64>,
    /// Training medians that replace missing inputs.
    medians: Vec<f64>,
}

impl PlsModel {
    /// Fits `components` latent variables (fewer if `X` is exhausted earlier) to
    /// standardised `rows`; missing values are imputed with training medians.
    pub fn fit(rows: &[Vec<f64>], y: &[f64], components: usize) -> Result<Self, QualityError> {
        let p = check_training_data(rows, y)?;
        let n = rows.len();
        let scaler = Standardizer::fit(rows);
        let mut x: Vec<f64> = rows.iter().flat_map(|r| scaler.transform(r)).collect();
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let mut yr: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
        let mut ws: Vec<Vec<f64>> = Vec::new();
        let mut ps: Vec<Vec<f64>> = Vec::new();
        let mut qs: Vec<f64> = Vec::new();
        for _ in 0..components.min(p).min(n.saturating_sub(1)) {
            // Weight: direction of maximal covariance with the remaining response.
            let mut w = vec![0.0; p];
            for (r, &yv) in x.chunks_exact(p).zip(&yr) {
                for (wj, xj) in w.iter_mut().zip(r) {
                    *wj += xj * yv;
                }
            }
            let norm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm < 1e-12 {
                break;
            }
            w.iter_mut().for_each(|v| *v /= norm);
            let t: Vec<f64> = x
                .chunks_exact(p)
                .map(|r| r.iter().zip(&w).map(|(a, b)| a * b).sum())
                .collect();
            let tt: f64 = t.iter().map(|v| v * v).sum();
            if tt < 1e-12 {
                break;
            }
            let mut load = vec![0.0; p];
            for (r, &tv) in x.chunks_exact(p).zip(&t) {
                for (lj, xj) in load.iter_mut().zip(r) {
                    *lj += xj * tv;
                }
            }
            load.iter_mut().for_each(|v| *v /= tt);
            let q = yr.iter().zip(&t).map(|(a, b)| a * b).sum::<f64>() / tt;
            for (r, &tv) in x.chunks_exact_mut(p).zip(&t) {
                for (xj, lj) in r.iter_mut().zip(&load) {
                    *xj -= tv * lj;
                }
            }
            for (yv, tv) in yr.iter_mut().zip(&t) {
                *yv -= q * tv;
            }
            ws.push(w);
            ps.push(load);
            qs.push(q);
        }
        let a = ws.len();
        // beta = W (P'W)^-1 q, in standardised units.
        let mut beta = vec![0.0; p];
        if a > 0 {
            let mut ptw = vec![0.0; a * a];
            for i in 0..a {
                for j in 0..a {
                    ptw[i * a + j] = ps[i].iter().zip(&ws[j]).map(|(u, v)| u * v).sum();
                }
            }
            let z = solve(ptw, qs)
                .ok_or_else(|| QualityError::Input("PLS: singular loading matrix".into()))?;
            for (w, zk) in ws.iter().zip(&z) {
                for (b, wj) in beta.iter_mut().zip(w) {
                    *b += wj * zk;
                }
            }
        }
        let (intercept, coefficients) = scaler.to_raw(y_mean, &beta);
        Ok(Self {
            components: a,
            intercept,
            coefficients,
            medians: scaler.medians,
        })
    }

    /// Chooses the number of components (1..=`max_components`) by forward-chaining
    /// validation over the rows in time order ([`forward_folds`] with `gap`), then
    /// refits on all rows.
    pub fn fit_cv(
        rows: &[Vec<f64>],
        y: &[f64],
        max_components: usize,
        folds: usize,
        gap: usize,
    ) -> Result<Self, QualityError> {
        let p = check_training_data(rows, y)?;
        let max_a = max_components.min(p).max(1);
        let folds = forward_folds(rows.len(), folds, 0.5, gap);
        let mut sse = vec![0.0; max_a];
        for f in &folds {
            for (a, s) in sse.iter_mut().enumerate() {
                let m = Self::fit(&rows[..f.train_end], &y[..f.train_end], a + 1)?;
                *s += f
                    .valid()
                    .map(|i| (m.predict(&rows[i]) - y[i]).powi(2))
                    .sum::<f64>();
            }
        }
        let best = if folds.is_empty() {
            max_a.min(2)
        } else {
            1 + (0..max_a)
                .min_by(|&i, &j| sse[i].total_cmp(&sse[j]))
                .unwrap_or(0)
        };
        Self::fit(rows, y, best)
    }

    /// Predicts one row (missing values take the training median).
    pub fn predict(&self, row: &[f64]) -> f64 {
        linear_predict(self.intercept, &self.coefficients, &self.medians, row)
    }
}
