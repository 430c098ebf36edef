//! Random draws the plant model needs, all from one seeded generator so that a run can be
//! replayed exactly. `rand` without `rand_distr` has no normal or Poisson distribution, and
//! these few are simple enough to write down.

use rand::{rngs::SmallRng, Rng};

/// A normally distributed draw with mean 0 (Box–Muller).
pub(crate) fn gauss(rng: &mut SmallRng, sigma: f64) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(crate) fn uniform(rng: &mut SmallRng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// Whether an event with the given rate (per hour) happens within `dt` seconds.
pub(crate) fn happens(rng: &mut SmallRng, rate_per_h: f64, dt: f64) -> bool {
    if rate_per_h <= 0.0 {
        return false;
    }
    rng.random::<f64>() < 1.0 - (-rate_per_h * dt / 3600.0).exp()
}

/// An exponentially distributed duration with the given mean, in seconds.
pub(crate) fn exp_duration(rng: &mut SmallRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.random::<f64>()).ln()
}

/// A Poisson draw; the normal approximation above 50 is far inside counting noise.
pub(crate) fn poisson(rng: &mut SmallRng, lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda > 50.0 {
        return (lambda + gauss(rng, lambda.sqrt())).round().max(0.0);
    }
    // Knuth: multiply uniforms until the product drops below e^-lambda.
    let limit = (-lambda).exp();
    let mut k = 0.0;
    let mut p = rng.random::<f64>();
    while p > limit {
        k += 1.0;
        p *= rng.random::<f64>();
    }
    k
}

/// First-order lag towards `target` with time constant `tau` over `dt`; exact for any step,
/// so large simulation steps stay stable.
pub(crate) fn approach(x: f64, target: f64, tau: f64, dt: f64) -> f64 {
    if tau <= 0.0 {
        return target;
    }
    target + (x - target) * (-dt / tau).exp()
}

/// Measurement noise, drawn from its own generator so that how often the plant is sampled
/// does not change how it evolves.
#[derive(Debug)]
pub(crate) struct Noise {
    rng: SmallRng,
}

impl Noise {
    pub(crate) fn new(rng: SmallRng) -> Self {
        Noise { rng }
    }

    /// `x` with additive noise of standard deviation `sigma`.
    pub(crate) fn add(&mut self, x: f64, sigma: f64) -> f64 {
        x + gauss(&mut self.rng, sigma)
    }

    /// `x` with noise proportional to it (`frac` = relative standard deviation).
    pub(crate) fn rel(&mut self, x: f64, frac: f64) -> f64 {
        x * (1.0 + gauss(&mut self.rng, frac))
    }

    /// A particle count: Poisson noise of counting `concentration` (per m³) in `volume` m³.
    pub(crate) fn count(&mut self, concentration: f64, volume: f64) -> f64 {
        poisson(&mut self.rng, concentration * volume) / volume
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn gauss_has_the_asked_spread() {
        let mut rng = SmallRng::seed_from_u64(1);
        let xs: Vec<f64> = (0..20_000).map(|_| gauss(&mut rng, 2.0)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.05, "{}", var.sqrt());
    }

    #[test]
    fn poisson_mean_matches_lambda_on_both_branches() {
        let mut rng = SmallRng::seed_from_u64(2);
        for lambda in [3.0, 400.0] {
            let mean = (0..20_000).map(|_| poisson(&mut rng, lambda)).sum::<f64>() / 20_000.0;
            assert!((mean / lambda - 1.0).abs() < 0.03, "{lambda}: {mean}");
        }
    }

    #[test]
    fn approach_is_stable_for_steps_longer_than_the_time_constant() {
        let x = approach(100.0, 20.0, 10.0, 1_000.0);
        assert!((x - 20.0).abs() < 1e-9);
    }
}
