//! Gradient-boosted regression trees (squared loss) with histogram splits.
//!
//! Features are quantile-binned once (at most [`GbmParams::max_bins`] bins per
//! feature); each tree is grown depth-wise on a row subsample using per-node
//! gradient histograms, with the histogram-subtraction trick (the larger child's
//! histogram is the parent's minus the smaller child's). Fully deterministic for a
//! given seed.
//!
//! Missing inputs (`NaN`) get a bin of their own; every split learns which side
//! they go to (the side that gains more), and a split may separate "missing" from
//! "present" outright, so missingness itself can be informative. Without missing
//! values the trees are exactly those of the NaN-free algorithm.
//!
//! Shared by [`crate::rul`] and [`crate::quality`].

use serde::Serialize;

/// Errors of [`Gbm::fit`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GbmError {
    /// Feature matrix and targets do not fit together.
    #[error(
        "feature matrix of {values} values does not match {targets} targets x {features} features"
    )]
    Shape {
        /// Values in the feature matrix.
        values: usize,
        /// Number of targets.
        targets: usize,
        /// Declared number of features.
        features: usize,
    },
    /// An infinite feature value or a non-finite target.
    #[error("non-finite value in training data ({0})")]
    NonFinite(&'static str),
    /// Out-of-range hyper-parameters.
    #[error("invalid GBM parameters: {0}")]
    Params(String),
}

/// Hyper-parameters of the boosted ensemble.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GbmParams {
    /// Number of boosting rounds (trees).
    pub n_trees: usize,
    /// Shrinkage applied to every tree's output.
    pub learning_rate: f64,
    /// Maximum tree depth (root has depth 0).
    pub max_depth: usize,
    /// Minimum number of (subsampled) rows in a leaf.
    pub min_samples_leaf: usize,
    /// Fraction of rows drawn (without replacement) for each tree.
    pub subsample: f64,
    /// Fraction of features considered by each tree.
    pub colsample: f64,
    /// L2 regularisation of leaf values.
    pub lambda: f64,
    /// Maximum number of histogram bins per feature (2..=256).
    pub max_bins: usize,
    /// Seed of the row / column sampling.
    pub seed: u64,
}

impl Default for GbmParams {
    fn default() -> Self {
        Self {
            n_trees: 300,
            learning_rate: 0.05,
            max_depth: 5,
            min_samples_leaf: 20,
            subsample: 0.7,
            colsample: 0.8,
            lambda: 1.0,
            max_bins: 64,
            seed: 42,
        }
    }
}

/// Small deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// Creates the generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n.max(1)
    }

    /// Uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Node {
    /// `usize::MAX` for a leaf.
    feature: usize,
    /// Go left when `x[feature] <= threshold`.
    threshold: f64,
    /// Go left when `bin <= bin_threshold` (training-time shortcut).
    bin_threshold: u8,
    /// Where a missing (`NaN`) value goes.
    missing_left: bool,
    left: u32,
    right: u32,
    value: f64,
}

impl Node {
    fn goes_left(&self, v: f64) -> bool {
        if v.is_nan() {
            self.missing_left
        } else {
            v <= self.threshold
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct Tree {
    nodes: Vec<Node>,
}

impl Tree {
    fn predict(&self, row: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            let n = &self.nodes[i];
            if n.feature == usize::MAX {
                return n.value;
            }
            i = if n.goes_left(row[n.feature]) {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }

    fn predict_binned(&self, data: &Binned, r: usize) -> f64 {
        let nodes: &[Node] = &self.nodes;
        let bins: &[u8] = &data.bins;
        let mut i = 0;
        loop {
            let n = &nodes[i];
            if n.feature == usize::MAX {
                return n.value;
            }
            let b = bins[n.feature * data.n_rows + r];
            let left = if data.is_missing_bin(n.feature, b) {
                n.missing_left
            } else {
                b <= n.bin_threshold
            };
            i = if left {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }
}

/// A fitted gradient-boosted regression-tree ensemble.
#[derive(Debug, Clone, Serialize)]
pub struct Gbm {
    base: f64,
    n_features: usize,
    trees: Vec<Tree>,
    /// Total split gain per feature over all trees.
    importance: Vec<f64>,
}

/// Binned training matrix (column-major) and per-feature cut points.
struct Binned {
    n_rows: usize,
    bins: Vec<u8>,
    /// `cuts[f][b]`: values `<= cuts[f][b]` fall in bins `0..=b`; missing values
    /// fall in bin `cuts[f].len() + 1`.
    cuts: Vec<Vec<f64>>,
    /// Offset of feature `f` in a flat histogram.
    offsets: Vec<usize>,
    total_bins: usize,
}

impl Binned {
    fn new(x: &[f64], n_features: usize, max_bins: usize) -> Self {
        let n_rows = x.len() / n_features;
        let mut cuts = Vec::with_capacity(n_features);
        let mut col = Vec::with_capacity(n_rows);
        for f in 0..n_features {
            col.clear();
            col.extend(
                (0..n_rows)
                    .map(|r| x[r * n_features + f])
                    .filter(|v| !v.is_nan()),
            );
            col.sort_by(f64::total_cmp);
            let n_valid = col.len();
            // The missing bin needs one u8 code of its own.
            let max_bins = if n_valid < n_rows {
                max_bins.min(255)
            } else {
                max_bins
            };
            let mut c: Vec<f64> = Vec::new();
            for k in 1..max_bins {
                if n_valid == 0 {
                    break;
                }
                let v = col[(k * n_valid / max_bins).min(n_valid - 1)];
                // A cut at the maximum would leave an empty right side.
                if v < col[n_valid - 1] && c.last().is_none_or(|&last| v > last) {
                    c.push(v);
                }
            }
            cuts.push(c);
        }
        let mut bins = vec![0u8; n_rows * n_features];
        for r in 0..n_rows {
            for f in 0..n_features {
                let v = x[r * n_features + f];
                bins[f * n_rows + r] = if v.is_nan() {
                    (cuts[f].len() + 1) as u8
                } else {
                    cuts[f].partition_point(|&c| c < v) as u8
                };
            }
        }
        let mut offsets = Vec::with_capacity(n_features);
        let mut total_bins = 0;
        for c in &cuts {
            offsets.push(total_bins);
            total_bins += c.len() + 2;
        }
        Self {
            n_rows,
            bins,
            cuts,
            offsets,
            total_bins,
        }
    }

    fn col(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n_rows..(f + 1) * self.n_rows]
    }

    /// Histogram slots of feature `f`: its value bins, then the missing bin.
    fn n_slots(&self, f: usize) -> usize {
        self.cuts[f].len() + 2
    }

    fn is_missing_bin(&self, f: usize, b: u8) -> bool {
        b as usize == self.cuts[f].len() + 1
    }
}

/// Gradient histogram: sums and counts per (feature, bin).
#[derive(Clone)]
struct Hist {
    sum: Vec<f64>,
    count: Vec<u32>,
}

struct Builder<'a> {
    data: &'a Binned,
    grad: &'a [f64],
    features: Vec<usize>,
    params: &'a GbmParams,
    nodes: Vec<Node>,
    importance: &'a mut [f64],
}

/// Best split found so far at a node.
#[derive(Clone, Copy)]
struct Split {
    gain: f64,
    feature: usize,
    /// Present values with bin `<= bin` go left.
    bin: usize,
    missing_left: bool,
    left_sum: f64,
}

impl Builder<'_> {
    fn hist(&self, rows: &[u32]) -> Hist {
        let mut h = Hist {
            sum: vec![0.0; self.data.total_bins],
            count: vec![0; self.data.total_bins],
        };
        for &f in &self.features {
            let col = self.data.col(f);
            let off = self.data.offsets[f];
            let len = self.data.n_slots(f);
            let sums = &mut h.sum[off..off + len];
            let counts = &mut h.count[off..off + len];
            let grad = self.grad;
            let mut i = 0;
            while i < rows.len() {
                let r = rows[i] as usize;
                let b = col[r] as usize;
                sums[b] += grad[r];
                counts[b] += 1;
                i += 1;
            }
        }
        h
    }

    fn leaf(&mut self, value: f64) -> u32 {
        self.nodes.push(Node {
            feature: usize::MAX,
            threshold: 0.0,
            bin_threshold: 0,
            missing_left: false,
            left: 0,
            right: 0,
            value,
        });
        (self.nodes.len() - 1) as u32
    }

    fn grow(&mut self, rows: &mut [u32], hist: Hist, sum: f64, depth: usize) -> u32 {
        let p = self.params;
        let n = rows.len();
        let lambda = p.lambda;
        let leaf_value = p.learning_rate * sum / (n as f64 + lambda);
        if depth >= p.max_depth || n < 2 * p.min_samples_leaf.max(1) {
            return self.leaf(leaf_value);
        }
        let parent_score = sum * sum / (n as f64 + lambda);
        let mut best: Option<Split> = None;
        let mut consider = |gl: f64, nl: usize, split: Split| {
            let nr = n - nl;
            if nl < p.min_samples_leaf || nr < p.min_samples_leaf {
                return;
            }
            let gr = sum - gl;
            let gain =
                gl * gl / (nl as f64 + lambda) + gr * gr / (nr as f64 + lambda) - parent_score;
            if gain > 1e-12 && best.is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    gain,
                    left_sum: gl,
                    ..split
                });
            }
        };
        for &f in &self.features {
            let off = self.data.offsets[f];
            let nb = self.data.cuts[f].len();
            let gm = hist.sum[off + nb + 1];
            let nm = hist.count[off + nb + 1] as usize;
            let (mut gl, mut nl) = (0.0, 0usize);
            let split = |bin, missing_left| Split {
                gain: 0.0,
                feature: f,
                bin,
                missing_left,
                left_sum: 0.0,
            };
            for b in 0..nb {
                gl += hist.sum[off + b];
                nl += hist.count[off + b] as usize;
                consider(gl, nl, split(b, false));
                if nm > 0 {
                    consider(gl + gm, nl + nm, split(b, true));
                }
            }
            if nm > 0 {
                // Every present value left, every missing one right.
                gl += hist.sum[off + nb];
                nl += hist.count[off + nb] as usize;
                consider(gl, nl, split(nb, false));
            }
        }
        let Some(Split {
            gain,
            feature: f,
            bin: b,
            missing_left,
            left_sum,
        }) = best
        else {
            return self.leaf(leaf_value);
        };
        self.importance[f] += gain;
        // Partition rows in place: left side holds the rows that go left.
        let col = self.data.col(f);
        let missing_bin = self.data.cuts[f].len() + 1;
        let goes_left = |bin: usize| {
            if bin == missing_bin {
                missing_left
            } else {
                bin <= b
            }
        };
        let (mut i, mut j) = (0usize, n);
        while i < j {
            if goes_left(col[rows[i] as usize] as usize) {
                i += 1;
            } else {
                j -= 1;
                rows.swap(i, j);
            }
        }
        let (left, right) = rows.split_at_mut(i);
        let (small_hist, large_hist) = {
            let small: &[u32] = if left.len() <= right.len() {
                left
            } else {
                right
            };
            let hs = self.hist(small);
            let mut hl = hist;
            for &f in &self.features {
                let off = self.data.offsets[f];
                for k in off..off + self.data.n_slots(f) {
                    hl.sum[k] -= hs.sum[k];
                    hl.count[k] -= hs.count[k];
                }
            }
            (hs, hl)
        };
        let (left_hist, right_hist) = if left.len() <= right.len() {
            (small_hist, large_hist)
        } else {
            (large_hist, small_hist)
        };
        let idx = self.nodes.len();
        self.nodes.push(Node {
            feature: f,
            threshold: self.data.cuts[f].get(b).copied().unwrap_or(f64::INFINITY),
            bin_threshold: b as u8,
            missing_left,
            left: 0,
            right: 0,
            value: leaf_value,
        });
        let l = self.grow(left, left_hist, left_sum, depth + 1);
        let r = self.grow(right, right_hist, sum - left_sum, depth + 1);
        self.nodes[idx].left = l;
        self.nodes[idx].right = r;
        idx as u32
    }
}

impl Gbm {
    /// Fits the ensemble to `x` (row-major, `n_features` columns, `NaN` =
    /// missing) and targets `y`.
    pub fn fit(
        x: &[f64],
        n_features: usize,
        y: &[f64],
        params: &GbmParams,
    ) -> Result<Self, GbmError> {
        if n_features == 0 || x.len() != y.len() * n_features || y.is_empty() {
            return Err(GbmError::Shape {
                values: x.len(),
                targets: y.len(),
                features: n_features,
            });
        }
        if x.iter().any(|v| v.is_infinite()) {
            return Err(GbmError::NonFinite("infinite feature value"));
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(GbmError::NonFinite("target"));
        }
        let valid = (2..=256).contains(&params.max_bins)
            && params.subsample > 0.0
            && params.subsample <= 1.0
            && params.colsample > 0.0
            && params.colsample <= 1.0
            && params.lambda >= 0.0;
        if !valid {
            return Err(GbmError::Params(format!("{params:?}")));
        }
        let data = Binned::new(x, n_features, params.max_bins);
        let n = data.n_rows;
        let base = y.iter().sum::<f64>() / n as f64;
        let mut pred = vec![base; n];
        let mut grad = vec![0.0; n];
        let mut rng = SplitMix64::new(params.seed);
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        let mut all_features: Vec<usize> = (0..n_features).collect();
        let n_sample = ((n as f64 * params.subsample).round() as usize).clamp(1, n);
        let n_cols = ((n_features as f64 * params.colsample).round() as usize).clamp(1, n_features);
        let mut trees = Vec::with_capacity(params.n_trees);
        let mut importance = vec![0.0; n_features];
        for _ in 0..params.n_trees {
            for ((g, &t), &p) in grad.iter_mut().zip(y).zip(&pred) {
                *g = t - p;
            }
            // Selection sampling (Knuth's algorithm S): exactly n_sample rows,
            // uniformly chosen, already in increasing order.
            rows.clear();
            let mut needed = n_sample;
            let mut r = 0;
            while needed > 0 {
                if rng.below(n - r) < needed {
                    rows.push(r as u32);
                    needed -= 1;
                }
                r += 1;
            }
            for i in 0..n_cols {
                let j = i + rng.below(n_features - i);
                all_features.swap(i, j);
            }
            let mut features = all_features[..n_cols].to_vec();
            features.sort_unstable();
            let mut b = Builder {
                data: &data,
                grad: &grad,
                features,
                params,
                nodes: Vec::new(),
                importance: &mut importance,
            };
            let hist = b.hist(&rows);
            let sum = rows.iter().map(|&r| grad[r as usize]).sum();
            b.grow(&mut rows, hist, sum, 0);
            let tree = Tree { nodes: b.nodes };
            for (r, p) in pred.iter_mut().enumerate() {
                *p += tree.predict_binned(&data, r);
            }
            trees.push(tree);
        }
        Ok(Self {
            base,
            n_features,
            trees,
            importance,
        })
    }

    /// Number of input features the model expects.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.trees.len()
    }

    /// Predicts one row (`row.len() == n_features`, `NaN` = missing).
    pub fn predict(&self, row: &[f64]) -> f64 {
        debug_assert_eq!(row.len(), self.n_features);
        self.base + self.trees.iter().map(|t| t.predict(row)).sum::<f64>()
    }

    /// Predictions of one row after each boosting round: `out[k]` uses the first
    /// `k + 1` trees (for choosing the number of rounds on validation data).
    pub fn predict_staged(&self, row: &[f64], out: &mut Vec<f64>) {
        debug_assert_eq!(row.len(), self.n_features);
        out.clear();
        let mut acc = self.base;
        for t in &self.trees {
            acc += t.predict(row);
            out.push(acc);
        }
    }

    /// Total split gain (reduction of the squared-error objective) per feature,
    /// summed over all trees; unnormalised.
    pub fn feature_gain(&self) -> &[f64] {
        &self.importance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_nonlinear_function() {
        // y = sin(3 x0) * x1 + |x2| (x3 is pure noise), learnt from 3000 points.
        let mut rng = SplitMix64::new(7);
        let make = |rng: &mut SplitMix64, n: usize| {
            let mut x = Vec::with_capacity(n * 4);
            let mut y = Vec::with_capacity(n);
            for _ in 0..n {
                let r: Vec<f64> = (0..4).map(|_| rng.unit() * 2.0 - 1.0).collect();
                y.push((3.0 * r[0]).sin() * r[1] + r[2].abs());
                x.extend(r);
            }
            (x, y)
        };
        let (x, y) = make(&mut rng, 3000);
        let (xt, yt) = make(&mut rng, 1000);
        let params = GbmParams {
            n_trees: 300,
            learning_rate: 0.1,
            max_depth: 4,
            min_samples_leaf: 5,
            ..GbmParams::default()
        };
        let m = Gbm::fit(&x, 4, &y, &params).unwrap();
        let mse = |w: &[f64]| {
            yt.iter()
                .enumerate()
                .map(|(i, t)| (w[i] - t).powi(2))
                .sum::<f64>()
                / yt.len() as f64
        };
        let pred: Vec<f64> = xt.chunks(4).map(|r| m.predict(r)).collect();
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        let base = mse(&vec![mean; yt.len()]);
        let model = mse(&pred);
        assert!(model < 0.1 * base, "test MSE {model} vs baseline {base}");
        // Deterministic for a seed.
        let again = Gbm::fit(&x, 4, &y, &params).unwrap();
        assert_eq!(again.predict(&xt[..4]), m.predict(&xt[..4]));
    }

    #[test]
    fn rejects_bad_shapes() {
        let p = GbmParams::default();
        assert!(matches!(
            Gbm::fit(&[1.0, 2.0, 3.0], 2, &[1.0], &p),
            Err(GbmError::Shape { .. })
        ));
        assert!(Gbm::fit(&[f64::INFINITY], 1, &[1.0], &p).is_err());
        assert!(Gbm::fit(&[1.0], 1, &[f64::NAN], &p).is_err());
        // A missing feature value is data, not an error.
        assert!(Gbm::fit(&[f64::NAN], 1, &[1.0], &p).is_ok());
    }

    #[test]
    fn learns_where_missing_values_go() {
        // y is high when x0 is missing or large, low otherwise: the only way to fit
        // it is to send missing values to the right, with the large ones.
        let mut rng = SplitMix64::new(3);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for _ in 0..600 {
            let v = rng.unit();
            let missing = rng.unit() < 0.3;
            x.push(if missing { f64::NAN } else { v });
            x.push(rng.unit());
            y.push(if missing || v > 0.7 { 1.0 } else { 0.0 });
        }
        let params = GbmParams {
            n_trees: 100,
            learning_rate: 0.2,
            max_depth: 2,
            min_samples_leaf: 5,
            ..GbmParams::default()
        };
        let m = Gbm::fit(&x, 2, &y, &params).unwrap();
        assert!((m.predict(&[f64::NAN, 0.5]) - 1.0).abs() < 0.1);
        assert!((m.predict(&[0.9, 0.5]) - 1.0).abs() < 0.1);
        assert!(m.predict(&[0.2, 0.5]).abs() < 0.1);
        // All the gain is on the informative feature.
        let g = m.feature_gain();
        assert!(g[0] > 20.0 * g[1], "{g:?}");
        // Staged predictions end at the full prediction.
        let mut staged = Vec::new();
        m.predict_staged(&[0.9, 0.1], &mut staged);
        assert_eq!(staged.len(), m.n_trees());
        assert!((staged[staged.len() - 1] - m.predict(&[0.9, 0.1])).abs() < 1e-12);
    }

    #[test]
    fn missing_versus_present_split() {
        // Missingness is the only signal and all present values are equal: only
        // the "present left, missing right" split can separate them.
        let x: Vec<f64> = (0..100)
            .map(|i| if i % 2 == 0 { f64::NAN } else { 1.0 })
            .collect();
        let y: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
        let params = GbmParams {
            n_trees: 50,
            learning_rate: 0.3,
            subsample: 1.0,
            colsample: 1.0,
            min_samples_leaf: 5,
            ..GbmParams::default()
        };
        let m = Gbm::fit(&x, 1, &y, &params).unwrap();
        assert!(m.predict(&[f64::NAN]) < 0.05);
        assert!(m.predict(&[1.0]) > 0.95);
    }
}
