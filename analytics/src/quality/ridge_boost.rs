//! Ridge regression with boosted trees on its residuals.
//!
//! For CQAs that move smoothly with their process parameters (simulated plants, most
//! mechanistic relations): the linear part keeps its slope beyond the training range —
//! where a batch pushed out of specification lies, and where trees alone would predict
//! the edge of what they saw — and the trees pick up kinks and interactions the line misses
//! (drying temperature × time). How many trees, if any, is chosen by forward-chaining
//! validation, so a purely linear relation gets none.
//!
//! [`RidgeBoostModel::fit_selected`] may also screen the inputs down to the few most related
//! to the target, when forward-chaining validation says so, and keeps the full model for
//! rows beyond the training range of what screening left out; or, again when validation
//! says so, keep only the inputs process knowledge names as the target's drivers, in a ridge
//! without trees.

use serde::Serialize;

use super::{
    check_training_data, conformal_quantile, fingerprint, forward_folds, Prediction, QualityError,
    RidgeModel,
};
use crate::gbm::{Gbm, GbmParams};

/// Trees considered on the residuals, at most.
const MAX_TREES: usize = 300;
/// Sizes of the screened input sets [`RidgeBoostModel::fit_selected`] tries.
const SCREEN_SIZES: [usize; 2] = [10, 20];
/// A left-out input counts as out of its training range beyond this share of that range
/// past either end.
const DOMAIN_SLACK: f64 = 1.0;
/// A screened or known-driver input set replaces the base set only when its validation
/// RMSE is at least this much lower: a close call between two noisy estimates keeps the
/// base set.
const SCREEN_MARGIN: f64 = 0.97;

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

/// What the columns of a row are to [`RidgeBoostModel::fit_selected`], one flag per column.
#[derive(Debug, Clone, Copy)]
pub struct InputRoles<'a> {
    /// The inputs every model may start from.
    pub base: &'a [bool],
    /// In every input set (the product indicators).
    pub keep: &'a [bool],
    /// What process knowledge (the product's risk assessment) names as the drivers of the
    /// target: a set chosen without looking at the target, so it costs no selection noise,
    /// where correlation screening among hundreds of inputs may miss a driver whose effect
    /// is small next to the lab's noise.
    pub known: &'a [bool],
}

#[derive(Debug, Clone, Serialize)]
pub struct RidgeBoostModel {
    pub version: String,
    pub fingerprint: String,
    pub features: Vec<String>,
    /// Positions of `features` in the rows given to [`RidgeBoostModel::predict`], and how
    /// long those rows are.
    pub columns: Vec<usize>,
    pub inputs: usize,
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
    /// For a screened model: the base inputs it left out, with the range they may take
    /// (column, low, high), and the model on every base input that predicts beyond it.
    #[serde(skip)]
    domain: Vec<(usize, f64, f64)>,
    #[serde(skip)]
    full: Option<Box<RidgeBoostModel>>,
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
        Self::fit_trees(names, rows, y, folds, coverage, MAX_TREES)
    }

    /// [`RidgeBoostModel::fit`] with at most `max_trees` trees (0: the ridge alone).
    fn fit_trees(
        names: &[String],
        rows: &[Vec<f64>],
        y: &[f64],
        folds: usize,
        coverage: f64,
        max_trees: usize,
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
        let mut sse = vec![0.0; max_trees + 1];
        let mut fold_preds: Vec<(Vec<f64>, f64)> = Vec::new();
        for f in forward_folds(rows.len(), folds, 0.5, 0) {
            let train = &rows[..f.train_end];
            let line = RidgeModel::fit(train, &y[..f.train_end], ridge.lambda)?;
            let resid: Vec<f64> = train
                .iter()
                .zip(&y[..f.train_end])
                .map(|(r, t)| t - line.predict(r))
                .collect();
            let trees = if max_trees > 0 {
                Some(Gbm::fit(
                    &train.concat(),
                    p,
                    &resid,
                    &tree_params(max_trees),
                )?)
            } else {
                None
            };
            let mut staged = Vec::new();
            for i in f.train_end..f.valid_end {
                let base = line.predict(&rows[i]);
                if let Some(trees) = &trees {
                    trees.predict_staged(&rows[i], &mut staged);
                }
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
            columns: (0..p).collect(),
            inputs: p,
            n_trees,
            cv_rmse,
            half_width: conformal_quantile(&residuals, coverage),
            coverage,
            ridge,
            trees,
            domain: Vec::new(),
            full: None,
        })
    }

    /// [`RidgeBoostModel::fit`] on the inputs that validate best: the base columns, the
    /// known drivers, or the few columns of the whole row most correlated with the target
    /// (see [`InputRoles`]). Many weak inputs cost a small training set more in variance
    /// than they bring; which way wins is decided by forward-chaining validation that
    /// screens on each fold's training rows only.
    pub fn fit_selected(
        names: &[String],
        rows: &[Vec<f64>],
        y: &[f64],
        roles: &InputRoles<'_>,
        folds: usize,
        coverage: f64,
    ) -> Result<Self, QualityError> {
        let InputRoles { base, keep, known } = *roles;
        let p = check_training_data(rows, y)?;
        if names.len() != p || base.len() != p || keep.len() != p || known.len() != p {
            return Err(QualityError::Input(format!(
                "{} names, {} base, {} keep and {} known flags for rows of {p} values",
                names.len(),
                base.len(),
                keep.len(),
                known.len()
            )));
        }
        let base_cols: Vec<usize> = (0..p).filter(|&j| base[j] || keep[j]).collect();
        let base_cv = validation_rmse(rows, y, folds, |_| base_cols.clone())?;
        let mut best: Option<(f64, Inputs)> = None;
        let mut consider = |cv: f64, inputs: Inputs| {
            if cv < SCREEN_MARGIN * base_cv && best.as_ref().is_none_or(|(b, _)| cv < *b) {
                best = Some((cv, inputs));
            }
        };
        // The product indicators alone are no candidate: a target with no known driver
        // recorded yet (an early stage) keeps the other sets.
        if (0..p).any(|j| known[j] && !keep[j]) {
            let cols: Vec<usize> = (0..p).filter(|&j| known[j] || keep[j]).collect();
            consider(
                validation_rmse(rows, y, folds, |_| cols.clone())?,
                Inputs::Known(cols),
            );
        }
        for k in SCREEN_SIZES {
            let cv = validation_rmse(rows, y, folds, |end| {
                screen(&rows[..end], &y[..end], keep, k)
            })?;
            consider(cv, Inputs::Screened(k));
        }
        let full = Self::fit_columns(
            names,
            rows,
            y,
            base_cols.clone(),
            folds,
            coverage,
            MAX_TREES,
        )?;
        let cols = match best {
            None => return Ok(full),
            // Process knowledge names the drivers of a smooth relation, which a line through
            // them carries over the plant's range; trees on so few inputs would only learn
            // the lab's noise. And the inputs it leaves out were left out as not driving
            // the target, not for having stood still in training: one of them off its range
            // is no reason to hand the batch to a model with slopes on every input.
            Some((_, Inputs::Known(cols))) => {
                return Self::fit_columns(names, rows, y, cols, folds, coverage, 0)
            }
            Some((_, Inputs::Screened(k))) => screen(rows, y, keep, k),
        };
        let mut model =
            Self::fit_columns(names, rows, y, cols.clone(), folds, coverage, MAX_TREES)?;
        // The screened model knows nothing of the base inputs it left out; a batch where one
        // of them left its training range (a press set far off its recipe) goes to the full
        // model, whose slopes on every input carry the prediction out of specification.
        model.domain = base_cols
            .iter()
            .filter(|j| !cols.contains(j))
            .filter_map(|&j| {
                let (lo, hi) = rows
                    .iter()
                    .map(|r| r[j])
                    .filter(|x| x.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                        (a.min(x), b.max(x))
                    });
                let slack = DOMAIN_SLACK * (hi - lo);
                (lo <= hi).then_some((j, lo - slack, hi + slack))
            })
            .collect();
        model.full = Some(Box::new(full));
        Ok(model)
    }

    fn fit_columns(
        names: &[String],
        rows: &[Vec<f64>],
        y: &[f64],
        cols: Vec<usize>,
        folds: usize,
        coverage: f64,
        max_trees: usize,
    ) -> Result<Self, QualityError> {
        let pick = |r: &Vec<f64>| cols.iter().map(|&j| r[j]).collect::<Vec<f64>>();
        let sub_names: Vec<String> = cols.iter().map(|&j| names[j].clone()).collect();
        let sub_rows: Vec<Vec<f64>> = rows.iter().map(pick).collect();
        let mut model = Self::fit_trees(&sub_names, &sub_rows, y, folds, coverage, max_trees)?;
        model.inputs = rows.first().map_or(0, Vec::len);
        model.columns = cols;
        Ok(model)
    }

    pub fn predict(&self, row: &[f64]) -> Result<Prediction, QualityError> {
        self.predict_by(row).map(|(p, _)| p)
    }

    /// [`RidgeBoostModel::predict`], with the model that made the prediction: this one, or
    /// the full model it hands a row to (whose fingerprint then identifies the prediction).
    pub fn predict_by(&self, row: &[f64]) -> Result<(Prediction, &Self), QualityError> {
        if row.len() != self.inputs {
            return Err(QualityError::Input(format!(
                "a row of {} values for a model of {} inputs",
                row.len(),
                self.inputs
            )));
        }
        if let Some(full) = self.full.as_ref().filter(|_| {
            self.domain
                .iter()
                .any(|&(j, lo, hi)| row[j].is_finite() && !(lo..=hi).contains(&row[j]))
        }) {
            return full.predict_by(row);
        }
        let picked: Vec<f64>;
        let row = if self.columns.len() == row.len() {
            row
        } else {
            picked = self.columns.iter().map(|&j| row[j]).collect();
            &picked
        };
        let value = self.ridge.predict(row) + self.trees.as_ref().map_or(0.0, |t| t.predict(row));
        Ok((
            Prediction {
                value,
                lower: value - self.half_width,
                upper: value + self.half_width,
            },
            self,
        ))
    }
}

/// An input set [`RidgeBoostModel::fit_selected`] may choose besides the base set.
enum Inputs {
    /// The known drivers (and the kept columns).
    Known(Vec<usize>),
    /// The kept columns and this many most correlated others.
    Screened(usize),
}

/// Forward-chaining validation RMSE of a ridge on the columns `choose` picks from the
/// training prefix of each fold (rows `..train_end`).
fn validation_rmse(
    rows: &[Vec<f64>],
    y: &[f64],
    folds: usize,
    choose: impl Fn(usize) -> Vec<usize>,
) -> Result<f64, QualityError> {
    let (mut sse, mut n) = (0.0, 0usize);
    for f in forward_folds(rows.len(), folds, 0.5, 0) {
        let cols = choose(f.train_end);
        let pick = |r: &Vec<f64>| cols.iter().map(|&j| r[j]).collect::<Vec<f64>>();
        let train: Vec<Vec<f64>> = rows[..f.train_end].iter().map(pick).collect();
        let line = RidgeModel::fit_cv(&train, &y[..f.train_end], folds, 0)?;
        for i in f.valid() {
            sse += (line.predict(&pick(&rows[i])) - y[i]).powi(2);
            n += 1;
        }
    }
    Ok(if n > 0 {
        (sse / n as f64).sqrt()
    } else {
        f64::INFINITY
    })
}

/// The `keep` columns and the `k` others most correlated with `y` (in absolute value, over
/// the rows where the column is recorded), in column order.
fn screen(rows: &[Vec<f64>], y: &[f64], keep: &[bool], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f64, usize)> = (0..keep.len())
        .filter(|&j| !keep[j])
        .map(|j| {
            let pairs: Vec<(f64, f64)> = rows
                .iter()
                .zip(y)
                .filter(|(r, _)| r[j].is_finite())
                .map(|(r, &t)| (r[j], t))
                .collect();
            (correlation(&pairs).abs(), j)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut cols: Vec<usize> = scored
        .iter()
        .take(k)
        .map(|&(_, j)| j)
        .chain((0..keep.len()).filter(|&j| keep[j]))
        .collect();
    cols.sort_unstable();
    cols
}

fn correlation(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if pairs.len() < 3 {
        return 0.0;
    }
    let (mx, my) = pairs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    if sxx > 0.0 && syy > 0.0 {
        sxy / (sxx * syy).sqrt()
    } else {
        0.0
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

    #[test]
    fn known_drivers_give_a_ridge_on_them_that_keeps_rows_beyond_other_inputs_ranges() {
        let mut rng = crate::gbm::SplitMix64::new(21);
        // y follows x0 strongly and x1 weakly, next to noise as large as x1's effect; 40
        // further inputs say nothing, so correlation screening is a lottery for x1.
        let p = 42;
        let rows: Vec<Vec<f64>> = (0..240)
            .map(|_| (0..p).map(|_| rng.unit()).collect())
            .collect();
        let y: Vec<f64> = rows
            .iter()
            .map(|r| 3.0 * r[0] + 0.3 * r[1] + 0.3 * (rng.unit() - 0.5))
            .collect();
        let base = vec![true; p];
        let keep = vec![false; p];
        let mut known = vec![false; p];
        known[0] = true;
        known[1] = true;
        let roles = InputRoles {
            base: &base,
            keep: &keep,
            known: &known,
        };
        let m = RidgeBoostModel::fit_selected(&names(p), &rows, &y, &roles, 5, 0.9).unwrap();
        assert_eq!(m.columns, vec![0, 1]);
        assert_eq!(m.n_trees, 0);
        let mut far = vec![0.5; p];
        far[7] = 40.0;
        let (far, by) = m.predict_by(&far).unwrap();
        assert_eq!(by.fingerprint, m.fingerprint, "no hand-over for x7");
        assert!((far.value - 1.65).abs() < 0.1, "{far:?}");
    }

    #[test]
    fn a_screened_model_hands_a_row_outside_its_dropped_inputs_range_to_the_full_model() {
        let mut rng = crate::gbm::SplitMix64::new(13);
        // y follows x0; x1 barely moves in training (a steady press) but moves y when it
        // does; 40 further inputs are noise, so the screened set validates better.
        let p = 42;
        let rows: Vec<Vec<f64>> = (0..240)
            .map(|_| {
                let mut r: Vec<f64> = (0..p).map(|_| rng.unit()).collect();
                r[1] = 1.0 + 0.001 * (rng.unit() - 0.5);
                r
            })
            .collect();
        let y: Vec<f64> = rows
            .iter()
            .map(|r| 3.0 * r[0] - 20.0 * (r[1] - 1.0) + 0.3 * (rng.unit() - 0.5))
            .collect();
        let names = names(p);
        let base = vec![true; p];
        let keep = vec![false; p];
        let known = vec![false; p];
        let roles = InputRoles {
            base: &base,
            keep: &keep,
            known: &known,
        };
        let m = RidgeBoostModel::fit_selected(&names, &rows, &y, &roles, 5, 0.9).unwrap();
        assert!(m.columns.len() < p, "screened to {:?}", m.columns);
        assert!(m.columns.contains(&0));
        let mut inside = vec![0.5; p];
        inside[1] = 1.0;
        let (inside, by) = m.predict_by(&inside).unwrap();
        let inside = inside.value;
        assert!((inside - 1.5).abs() < 0.3, "{inside}");
        assert_eq!(
            by.fingerprint, m.fingerprint,
            "the screened model predicted"
        );
        // x1 far beyond its training range: only a model with x1 in it sees the drop.
        assert!(!m.columns.contains(&1), "x1 said nothing in training");
        let mut far = vec![0.5; p];
        far[1] = 1.5;
        let (far, by) = m.predict_by(&far).unwrap();
        assert!(far.value < inside - 1.0, "{far:?} vs {inside}");
        assert_ne!(by.fingerprint, m.fingerprint, "the full model predicted");
        assert_eq!(by.columns.len(), p);
        assert!(
            m.predict(&[0.5; 3]).is_err(),
            "rows are as long as the training rows"
        );
    }
}
