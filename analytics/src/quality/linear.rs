//! Shared pieces of the linear reference models: median imputation with
//! standardisation, and a small dense solver.

use serde::Serialize;

/// Imputes missing values with the training median, then centres and scales
/// every column to unit variance (constant columns keep scale 1 so they
/// contribute nothing instead of dividing by zero).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Standardizer {
    /// Training median per column (0 when a column is entirely missing).
    pub medians: Vec<f64>,
    /// Mean per column after imputation.
    pub means: Vec<f64>,
    /// Standard deviation per column after imputation (1 when constant).
    pub scales: Vec<f64>,
}

impl Standardizer {
    /// Fits on `rows` (all of the same length).
    pub fn fit(rows: &[Vec<f64>]) -> Self {
        let p = rows.first().map_or(0, Vec::len);
        let n = rows.len().max(1) as f64;
        let mut medians = Vec::with_capacity(p);
        let mut means = Vec::with_capacity(p);
        let mut scales = Vec::with_capacity(p);
        let mut col = Vec::with_capacity(rows.len());
        for j in 0..p {
            col.clear();
            col.extend(rows.iter().map(|r| r[j]).filter(|v| !v.is_nan()));
            col.sort_by(f64::total_cmp);
            let median = match col.len() {
                0 => 0.0,
                m if m % 2 == 1 => col[m / 2],
                m => 0.5 * (col[m / 2 - 1] + col[m / 2]),
            };
            let value = |r: &Vec<f64>| if r[j].is_nan() { median } else { r[j] };
            let mean = rows.iter().map(value).sum::<f64>() / n;
            let var = rows.iter().map(|r| (value(r) - mean).powi(2)).sum::<f64>() / n;
            medians.push(median);
            means.push(mean);
            scales.push(if var > 1e-24 { var.sqrt() } else { 1.0 });
        }
        Self {
            medians,
            means,
            scales,
        }
    }

    /// Standardised copy of `row`.
    pub fn transform(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .enumerate()
            .map(|(j, &v)| {
                let v = if v.is_nan() { self.medians[j] } else { v };
                (v - self.means[j]) / self.scales[j]
            })
            .collect()
    }

    /// Turns coefficients on standardised columns into `(intercept, coefficients)`
    /// on raw (imputed) columns, for a model whose standardised-scale intercept
    /// is `y_mean`.
    pub fn to_raw(&self, y_mean: f64, beta: &[f64]) -> (f64, Vec<f64>) {
        let coef: Vec<f64> = beta.iter().zip(&self.scales).map(|(b, s)| b / s).collect();
        let intercept = y_mean
            - coef
                .iter()
                .zip(&self.means)
                .map(|(c, m)| c * m)
                .sum::<f64>();
        (intercept, coef)
    }
}

/// `intercept + coef · row`, missing values replaced by `medians`.
pub(crate) fn linear_predict(intercept: f64, coef: &[f64], medians: &[f64], row: &[f64]) -> f64 {
    intercept
        + row
            .iter()
            .zip(coef.iter().zip(medians))
            .map(|(&v, (c, m))| c * if v.is_nan() { *m } else { v })
            .sum::<f64>()
}

/// Solves the dense `n x n` system `a x = b` (row-major `a`) by Gaussian
/// elimination with partial pivoting; `None` when `a` is singular.
pub(crate) fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    debug_assert_eq!(a.len(), n * n);
    let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for k in 0..n {
        let piv = (k..n).max_by(|&i, &j| a[i * n + k].abs().total_cmp(&a[j * n + k].abs()))?;
        if a[piv * n + k].abs() <= 1e-13 * scale {
            return None;
        }
        if piv != k {
            for c in 0..n {
                a.swap(k * n + c, piv * n + c);
            }
            b.swap(k, piv);
        }
        for i in k + 1..n {
            let f = a[i * n + k] / a[k * n + k];
            if f != 0.0 {
                for c in k..n {
                    a[i * n + c] -= f * a[k * n + c];
                }
                b[i] -= f * b[k];
            }
        }
    }
    let mut x = vec![0.0; n];
    for k in (0..n).rev() {
        let s: f64 = (k + 1..n).map(|c| a[k * n + c] * x[c]).sum();
        x[k] = (b[k] - s) / a[k * n + k];
    }
    Some(x)
}
