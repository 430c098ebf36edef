//! Ridge regression with boosted trees on its residuals.
//!
//! For CQAs that move smoothly with their process parameters (simulated plants, most
//! mechanistic relations): the linear part keeps its slope beyond the training range —
//! where a batch pushed out of specification lies, and where trees alone would predict
//! the edge of what they saw — and the trees pick up kinks and interactions the line misses
//! (drying temperature × time). How many trees, if any, is chosen by forward-chaining
//! validation, so a purely linear relation gets none.

use serde::Serialize;

use super::{conformal_quantile, fingerprint, forward_folds, Prediction, QualityError, RidgeModel};
use crate::gbm::{Gbm, GbmParams};

/// Trees considered on the residuals, at most.
const MAX_TREES: usize = 300;

/// Version of the recipe, recorded with every prediction.
pub const RIDGE_BOOST_VERSION: &str = concat!("ridge-boost/", env!("CARGO_PKG_VERSION"));

fn tree_params(n_trees: usize) -> GbmParams {
    GbmParams {
        n_trees,
        learning_rate: 0.05,
        max_depth: 2,
        min_samples_leaf: 10,
        subsample: 0.7,
        colsample: 0.7,
        lambda: 1.0,
        max_bins: 64,
        seed: 7,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RidgeBoostModel {
    pub version: String,
    pub fingerprint: String,
    pub features: Vec<String>,
    /// Trees on the residuals chosen by validation (0: linear only).
    pub n_trees: usize,
    /// Forward-chaining validation RMSE at the chosen number of trees.
    pub cv_rmse: f64,
    /// Interval half-width: conformal quantile of out-of-time absolute residuals.
    pub half_width: f64,
    pub coverage: f64,
    ridge: RidgeModel,
    #[serde(skip)]
    trees: Option<Gbm>,
}

impl RidgeBoostModel {
    /// Trains on `rows` in time order (`NaN` = missing).
    pub fn fit(
        names: &[String],
        rows: &[Vec<f64>],
        y: &[f64],
        folds: usize,
        coverage: f64,
    ) -> Result<Self, QualityError> {
        if names.len() != rows.first().map_or(0, Vec::len) {
            return Err(QualityError::Input(format!(
                "{} feature names for rows of {} values",
                names.len(),
                rows.first().map_or(0, Vec::len)
            )));
        }
        let ridge = RidgeModel::fit_cv(rows, y, folds, 0)?;
        let p = names.len();
        // Validation curves: residual error of each fold's ridge after k trees.
        let mut sse = vec![0.0; MAX_TREES + 1];
        let mut fold_preds: Vec<(Vec<f64>, f64)> = Vec::new();
        for f in forward_folds(rows.len(), folds, 0.5, 0) {
            let train = &rows[..f.train_end];
            let line = RidgeModel::fit(train, &y[..f.train_end], ridge.lambda)?;
            let resid: Vec<f64> = train
                .iter()
                .zip(&y[..f.train_end])
                .map(|(r, t)| t - line.predict(r))
                .collect();
            let trees = Gbm::fit(&train.concat(), p, &resid, &tree_params(MAX_TREES))?;
            let mut staged = Vec::new();
            for i in f.train_end..f.valid_end {
                let base = line.predict(&rows[i]);
                trees.predict_staged(&rows[i], &mut staged);
                sse[0] += (base - y[i]).powi(2);
                for (k, s) in staged.iter().enumerate() {
                    sse[k + 1] += (base + s - y[i]).powi(2);
                }
                fold_preds.push((
                    std::iter::once(base)
                        .chain(staged.iter().map(|s| base + s))
                        .collect(),
                    y[i],
                ));
            }
        }
        let n_trees = (0..sse.len())
            .min_by(|&a, &b| sse[a].total_cmp(&sse[b]))
            .unwrap_or(0);
        let mut residuals: Vec<f64> = fold_preds
            .iter()
            .map(|(staged, t)| (staged[n_trees.min(staged.len() - 1)] - t).abs())
            .collect();
        residuals.sort_by(f64::total_cmp);
        let cv_rmse = if fold_preds.is_empty() {
            f64::NAN
        } else {
            (sse[n_trees] / fold_preds.len() as f64).sqrt()
        };
        let trees = if n_trees > 0 {
            let resid: Vec<f64> = rows
                .iter()
                .zip(y)
                .map(|(r, t)| t - ridge.predict(r))
                .collect();
            Some(Gbm::fit(&rows.concat(), p, &resid, &tree_params(n_trees))?)
        } else {
            None
        };
        Ok(RidgeBoostModel {
            version: RIDGE_BOOST_VERSION.to_string(),
            fingerprint: fingerprint(names, rows, y),
            features: names.to_vec(),
            n_trees,
            cv_rmse,
            half_width: conformal_quantile(&residuals, coverage),
            coverage,
            ridge,
            trees,
        })
    }

    pub fn predict(&self, row: &[f64]) -> Result<Prediction, QualityError> {
        if row.len() != self.features.len() {
            return Err(QualityError::Input(format!(
                "a row of {} values for a model of {} features",
                row.len(),
                self.features.len()
            )));
        }
        let value = self.ridge.predict(row) + self.trees.as_ref().map_or(0.0, |t| t.predict(row));
        Ok(Prediction {
            value,
            lower: value - self.half_width,
            upper: value + self.half_width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: usize) -> Vec<String> {
        (0..p).map(|i| format!("x{i}")).collect()
    }

    #[test]
    fn extrapolates_a_linear_relation_and_learns_a_kink_with_trees() {
        let mut rng = crate::gbm::SplitMix64::new(5);
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|_| vec![rng.unit(), rng.unit(), rng.unit()])
            .collect();
        // Linear in x0, a hinge in x1 (max(0, x1 - 0.5)), noise 0.01.
        let y: Vec<f64> = rows
            .iter()
            .map(|r| 2.0 * r[0] + 3.0 * (r[1] - 0.5).max(0.0) + 0.01 * (rng.unit() - 0.5))
            .collect();
        let m = RidgeBoostModel::fit(&names(3), &rows, &y, 4, 0.9).unwrap();
        assert!(m.n_trees > 0, "the hinge needs trees");
        // Far outside the training range along the linear direction.
        let far = m.predict(&[3.0, 0.25, 0.5]).unwrap();
        assert!((far.value - 6.0).abs() < 0.4, "{far:?}");
        let hinge = m.predict(&[0.5, 0.9, 0.5]).unwrap();
        assert!((hinge.value - 2.2).abs() < 0.15, "{hinge:?}");
        assert!(far.lower < far.value && far.value < far.upper);
    }

    #[test]
    fn a_purely_linear_relation_gets_few_or_no_trees_and_a_tight_interval() {
        let mut rng = crate::gbm::SplitMix64::new(9);
        let rows: Vec<Vec<f64>> = (0..200).map(|_| vec![rng.unit(), rng.unit()]).collect();
        let y: Vec<f64> = rows.iter().map(|r| 1.0 + r[0] - 2.0 * r[1]).collect();
        let m = RidgeBoostModel::fit(&names(2), &rows, &y, 4, 0.9).unwrap();
        assert!(m.half_width < 0.05, "{}", m.half_width);
        let p = m.predict(&[2.0, 2.0]).unwrap();
        assert!((p.value + 1.0).abs() < 0.1, "{p:?}");
        assert!(m.predict(&[1.0]).is_err(), "wrong row length is refused");
    }
}
