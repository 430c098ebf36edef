//! Distribution functions for control limits: F, χ² and standard normal
//! CDFs through the regularised incomplete beta / gamma functions, and their
//! quantiles by bisection.
//!
//! Bisection is slow compared with Newton steps, but limits are computed once
//! per fitted model, and bisection cannot diverge in the far tails where the
//! densities are tiny.

use std::f64::consts::PI;

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7; relative error below 1e-14).
pub fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        return (PI / (PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised lower incomplete gamma `P(a, x)`.
pub fn gamma_p(a: f64, x: f64) -> f64 {
    if x <= 0.0 || a <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return 1.0;
    }
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // Series converges fast below the mode.
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (sum.ln() + log_prefix).exp().min(1.0)
    } else {
        // Continued fraction for Q(a, x) (modified Lentz) above the mode.
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (1.0 - (log_prefix.exp() * h)).max(0.0)
    }
}

/// Regularised incomplete beta `I_x(a, b)`.
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let log_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    // The continued fraction converges quickly only on this side of the mean;
    // use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) on the other.
    if x < (a + 1.0) / (a + b + 2.0) {
        log_front.exp() * beta_cf(a, b, x) / a
    } else {
        1.0 - log_front.exp() * beta_cf(b, a, 1.0 - x) / b
    }
}

/// Continued fraction of the incomplete beta (modified Lentz).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// CDF of the χ² distribution with `k` degrees of freedom (`k > 0`, may be
/// fractional, as in Box's approximation).
pub fn chi2_cdf(x: f64, k: f64) -> f64 {
    gamma_p(k / 2.0, x / 2.0)
}

/// CDF of the F distribution with `d1`, `d2` degrees of freedom.
pub fn f_cdf(x: f64, d1: f64, d2: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    beta_inc(d1 / 2.0, d2 / 2.0, d1 * x / (d1 * x + d2))
}

/// CDF of the standard normal distribution.
pub fn normal_cdf(x: f64) -> f64 {
    // erf(z) = P(1/2, z²) for z ≥ 0.
    let half = 0.5 * gamma_p(0.5, x * x / 2.0);
    if x >= 0.0 {
        0.5 + half
    } else {
        0.5 - half
    }
}

/// Quantile of a non-decreasing CDF on `(lo, ∞)` by bracket doubling and
/// bisection; `None` for `p` outside `(0, 1)` or a CDF that never reaches `p`.
fn quantile(cdf: impl Fn(f64) -> f64, p: f64, lo: f64, start: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    let mut lo = lo;
    let mut hi = start;
    let mut grown = 0;
    while cdf(hi) < p {
        lo = hi;
        hi *= 2.0;
        grown += 1;
        if grown > 1100 || !hi.is_finite() {
            return None;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi.abs().max(1e-300) {
            break;
        }
    }
    Some(0.5 * (lo + hi))
}

/// `p`-quantile of χ² with `k` degrees of freedom (`k > 0`).
pub fn chi2_quantile(p: f64, k: f64) -> Option<f64> {
    if !(k > 0.0 && k.is_finite()) {
        return None;
    }
    quantile(|x| chi2_cdf(x, k), p, 0.0, k.max(1.0))
}

/// `p`-quantile of F with `d1`, `d2` degrees of freedom.
pub fn f_quantile(p: f64, d1: f64, d2: f64) -> Option<f64> {
    if !(d1 > 0.0 && d2 > 0.0 && d1.is_finite() && d2.is_finite()) {
        return None;
    }
    quantile(|x| f_cdf(x, d1, d2), p, 0.0, 1.0)
}

/// `p`-quantile of the standard normal distribution.
pub fn normal_quantile(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    if p == 0.5 {
        return Some(0.0);
    }
    // |Z|² is χ² with one degree of freedom.
    let z = chi2_quantile((2.0 * p - 1.0).abs(), 1.0)?.sqrt();
    Some(if p > 0.5 { z } else { -z })
}
