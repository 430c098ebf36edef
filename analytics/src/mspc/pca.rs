//! Principal component model of autoscaled data with Hotelling T² and SPE
//! (Q) statistics, their theoretical control limits and reconstruction-based
//! contributions.

use serde::Serialize;

use super::distributions::{chi2_quantile, f_quantile, normal_quantile};
use super::linalg::{column_means, covariance_centred, sym_eigen};
use super::MspcError;
use crate::rul::gbm::SplitMix64;

/// How many principal components to retain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum ComponentRule {
    /// Exactly this many (capped at the number of variables).
    Fixed(usize),
    /// The fewest components explaining at least this fraction of variance.
    CumulativeVariance(f64),
    /// Horn's parallel analysis: keep leading components whose eigenvalue
    /// exceeds the mean eigenvalue of the same rank for uncorrelated Gaussian
    /// data of the same size (`reps` replicates, fixed seed).
    ParallelAnalysis {
        /// Number of random replicates.
        reps: usize,
    },
}

/// PCA model of autoscaled data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pca {
    /// Training mean of each variable.
    pub mean: Vec<f64>,
    /// Training standard deviation of each variable (1 for constant ones, so
    /// that they keep their raw deviation rather than dividing by zero).
    pub scale: Vec<f64>,
    /// All eigenvalues of the training correlation matrix, largest first.
    pub eigenvalues: Vec<f64>,
    /// Retained components.
    pub components: usize,
    /// Number of training samples.
    pub n_train: usize,
    /// Loadings, `m × components` row-major.
    loadings: Vec<f64>,
}

impl Pca {
    /// Fits the model on the `n × m` row-major matrix `x`.
    pub fn fit(x: &[f64], m: usize, rule: ComponentRule) -> Result<Self, MspcError> {
        if m == 0 || !x.len().is_multiple_of(m) {
            return Err(MspcError::Input(format!(
                "{} values do not form rows of {m} variables",
                x.len()
            )));
        }
        let n = x.len() / m;
        if n < 3 {
            return Err(MspcError::Input(format!(
                "{n} training samples; PCA needs at least 3"
            )));
        }
        let mean = column_means(x, m);
        let mut z = x.to_vec();
        for row in z.chunks_exact_mut(m) {
            for (v, mu) in row.iter_mut().zip(&mean) {
                *v -= mu;
            }
        }
        let mut scale = vec![0.0; m];
        for row in z.chunks_exact(m) {
            for (s, v) in scale.iter_mut().zip(row) {
                *s += v * v;
            }
        }
        for s in &mut scale {
            *s = (*s / (n - 1) as f64).sqrt();
            if s.is_nan() || *s <= 1e-12 {
                *s = 1.0;
            }
        }
        for row in z.chunks_exact_mut(m) {
            for (v, s) in row.iter_mut().zip(&scale) {
                *v /= s;
            }
        }
        let cov = covariance_centred(&z, m);
        let eig = sym_eigen(&cov, m);
        let eigenvalues: Vec<f64> = eig.values.iter().map(|&v| v.max(0.0)).collect();
        let k = choose_components(&eigenvalues, n, m, rule).min(m);
        // A zero-variance component would make T² divide by zero.
        let k = k.min(eigenvalues.iter().take_while(|&&v| v > 1e-10).count());
        if k == 0 {
            return Err(MspcError::Input(
                "training data has no variance to model".into(),
            ));
        }
        let mut loadings = vec![0.0; m * k];
        for i in 0..m {
            loadings[i * k..(i + 1) * k].copy_from_slice(&eig.vectors[i * m..i * m + k]);
        }
        Ok(Self {
            mean,
            scale,
            eigenvalues,
            components: k,
            n_train: n,
            loadings,
        })
    }

    /// Number of variables.
    pub fn n_variables(&self) -> usize {
        self.mean.len()
    }

    /// Loading of variable `i` on component `a`.
    pub fn loading(&self, i: usize, a: usize) -> f64 {
        self.loadings[i * self.components + a]
    }

    /// Autoscales a raw row.
    pub fn scale_row(&self, row: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend(
            row.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .map(|((v, mu), s)| (v - mu) / s),
        );
    }

    /// Scores of an autoscaled row.
    pub fn scores(&self, z: &[f64]) -> Vec<f64> {
        let k = self.components;
        let mut t = vec![0.0; k];
        for (zi, p) in z.iter().zip(self.loadings.chunks_exact(k)) {
            for (ta, pa) in t.iter_mut().zip(p) {
                *ta += zi * pa;
            }
        }
        t
    }

    /// Hotelling T² and SPE of an autoscaled row.
    pub fn t2_spe(&self, z: &[f64]) -> (f64, f64) {
        let t = self.scores(z);
        let t2 = t
            .iter()
            .zip(&self.eigenvalues)
            .map(|(ta, l)| ta * ta / l)
            .sum();
        // ‖z‖² − ‖t‖² is the squared residual because the loadings are
        // orthonormal; clamp the rounding error below zero.
        let spe =
            (z.iter().map(|v| v * v).sum::<f64>() - t.iter().map(|v| v * v).sum::<f64>()).max(0.0);
        (t2, spe)
    }

    /// Residual of an autoscaled row (`z − P Pᵀ z`).
    pub fn residual(&self, z: &[f64]) -> Vec<f64> {
        let t = self.scores(z);
        z.iter()
            .zip(self.loadings.chunks_exact(self.components))
            .map(|(zi, p)| zi - p.iter().zip(&t).map(|(pa, ta)| pa * ta).sum::<f64>())
            .collect()
    }

    /// T² control limit at `confidence` for new samples, from the F
    /// distribution: `k (n² − 1) / (n (n − k)) · F(k, n − k)`.
    pub fn t2_limit(&self, confidence: f64) -> Result<f64, MspcError> {
        let k = self.components as f64;
        let n = self.n_train as f64;
        if n <= k + 1.0 {
            return Err(MspcError::Input(format!(
                "{} training samples are too few for {} components",
                self.n_train, self.components
            )));
        }
        let f = f_quantile(confidence, k, n - k)
            .ok_or_else(|| MspcError::Input(format!("confidence {confidence} not in (0, 1)")))?;
        Ok(k * (n * n - 1.0) / (n * (n - k)) * f)
    }

    /// SPE control limit at `confidence` (Jackson–Mudholkar; Box's scaled χ²
    /// where the Jackson–Mudholkar expansion breaks down, `h0 ≤ 0`).
    pub fn spe_limit(&self, confidence: f64) -> Result<f64, MspcError> {
        let residual = &self.eigenvalues[self.components..];
        spe_limit_from_eigenvalues(residual, confidence)
    }

    /// Reconstruction-based contributions of each variable to T² and SPE of
    /// an autoscaled row (Alcala & Qin, 2009): the drop in the statistic when
    /// the variable is reconstructed from the others. Unlike plain
    /// contributions they do not smear a single-variable fault onto its
    /// correlated neighbours, so the faulty variable ranks first.
    pub fn rbc(&self, z: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let k = self.components;
        let t = self.scores(z);
        let w: Vec<f64> = t
            .iter()
            .zip(&self.eigenvalues)
            .map(|(ta, l)| ta / l)
            .collect();
        let e = self.residual(z);
        let mut t2 = Vec::with_capacity(z.len());
        let mut spe = Vec::with_capacity(z.len());
        for (i, p) in self.loadings.chunks_exact(k).enumerate() {
            // (D z)_i and D_ii for D = P Λ⁻¹ Pᵀ.
            let dz: f64 = p.iter().zip(&w).map(|(pa, wa)| pa * wa).sum();
            let dii: f64 = p
                .iter()
                .zip(&self.eigenvalues)
                .map(|(pa, l)| pa * pa / l)
                .sum();
            t2.push(if dii > 1e-12 { dz * dz / dii } else { 0.0 });
            // (C z)_i = e_i and C_ii = 1 − Σ p_ia² for C = I − P Pᵀ.
            let cii = 1.0 - p.iter().map(|pa| pa * pa).sum::<f64>();
            spe.push(if cii > 1e-12 { e[i] * e[i] / cii } else { 0.0 });
        }
        (t2, spe)
    }
}

/// SPE limit from the residual eigenvalues (Jackson & Mudholkar, 1979),
/// falling back to Box's (1954) `g χ²_h` with `g = θ₂/θ₁`, `h = θ₁²/θ₂`.
pub fn spe_limit_from_eigenvalues(residual: &[f64], confidence: f64) -> Result<f64, MspcError> {
    let bad_conf = || MspcError::Input(format!("confidence {confidence} not in (0, 1)"));
    let theta = |p: i32| residual.iter().map(|l| l.powi(p)).sum::<f64>();
    let (t1, t2, t3) = (theta(1), theta(2), theta(3));
    if !(t1 > 0.0 && t2 > 0.0) {
        // All variance is in the model: any residual is out of control.
        return Ok(0.0);
    }
    let h0 = 1.0 - 2.0 * t1 * t3 / (3.0 * t2 * t2);
    let z = normal_quantile(confidence).ok_or_else(bad_conf)?;
    if h0 > 0.0 {
        let base = z * (2.0 * t2 * h0 * h0).sqrt() / t1 + 1.0 + t2 * h0 * (h0 - 1.0) / (t1 * t1);
        if base > 0.0 {
            return Ok(t1 * base.powf(1.0 / h0));
        }
    }
    let g = t2 / t1;
    let h = t1 * t1 / t2;
    Ok(g * chi2_quantile(confidence, h).ok_or_else(bad_conf)?)
}

/// Number of components by `rule` from the eigenvalues of an `n × m`
/// correlation matrix.
fn choose_components(eigenvalues: &[f64], n: usize, m: usize, rule: ComponentRule) -> usize {
    match rule {
        ComponentRule::Fixed(k) => k,
        ComponentRule::CumulativeVariance(f) => {
            let total: f64 = eigenvalues.iter().sum();
            let mut acc = 0.0;
            for (i, l) in eigenvalues.iter().enumerate() {
                acc += l;
                if acc >= f * total {
                    return i + 1;
                }
            }
            eigenvalues.len()
        }
        ComponentRule::ParallelAnalysis { reps } => {
            let random = random_eigenvalues(n, m, reps.max(1));
            eigenvalues
                .iter()
                .zip(&random)
                .take_while(|(l, r)| l > r)
                .count()
        }
    }
}

/// Mean eigenvalues, largest first, of correlation matrices of `reps`
/// samples of `n × m` independent standard normal data.
fn random_eigenvalues(n: usize, m: usize, reps: usize) -> Vec<f64> {
    let mut rng = SplitMix64::new(0x5EED_F00D);
    let mut mean = vec![0.0; m];
    let mut x = vec![0.0; n * m];
    for _ in 0..reps {
        for v in &mut x {
            // Box–Muller; 1 − u keeps the logarithm finite.
            let u1 = 1.0 - rng.unit();
            let u2 = rng.unit();
            *v = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        }
        let mu = column_means(&x, m);
        let mut z = x.clone();
        for row in z.chunks_exact_mut(m) {
            for (v, c) in row.iter_mut().zip(&mu) {
                *v -= c;
            }
        }
        let mut cov = covariance_centred(&z, m);
        let sd: Vec<f64> = (0..m).map(|i| cov[i * m + i].sqrt().max(1e-300)).collect();
        for i in 0..m {
            for j in 0..m {
                cov[i * m + j] /= sd[i] * sd[j];
            }
        }
        for (acc, l) in mean.iter_mut().zip(sym_eigen(&cov, m).values) {
            *acc += l / reps as f64;
        }
    }
    mean
}
