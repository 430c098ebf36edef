//! Dense linear algebra for monitoring models: column statistics, covariance
//! and the symmetric eigen-decomposition.
//!
//! Matrices are row-major `Vec<f64>` with an explicit column count; the sizes
//! met here (52 process variables, a few hundred with time lags) do not justify
//! a matrix crate.

/// Eigen-decomposition of a symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SymEigen {
    /// Eigenvalues, largest first.
    pub values: Vec<f64>,
    /// Eigenvectors as columns of a row-major `n × n` matrix, in the order of
    /// `values`: component `k` of variable `i` is `vectors[i * n + k]`.
    pub vectors: Vec<f64>,
}

/// Column means of the `n × m` row-major matrix `x`.
pub fn column_means(x: &[f64], m: usize) -> Vec<f64> {
    let n = x.len() / m.max(1);
    let mut mean = vec![0.0; m];
    for row in x.chunks_exact(m) {
        for (s, v) in mean.iter_mut().zip(row) {
            *s += v;
        }
    }
    for s in &mut mean {
        *s /= n.max(1) as f64;
    }
    mean
}

/// Sample covariance (`n − 1` denominator) of the columns of the `n × m`
/// row-major matrix `x`, which must already be centred.
pub fn covariance_centred(x: &[f64], m: usize) -> Vec<f64> {
    let n = x.len() / m.max(1);
    let mut c = vec![0.0; m * m];
    for row in x.chunks_exact(m) {
        for i in 0..m {
            let ri = row[i];
            if ri == 0.0 {
                continue;
            }
            let ci = &mut c[i * m..i * m + i + 1];
            for (cij, rj) in ci.iter_mut().zip(&row[..=i]) {
                *cij += ri * rj;
            }
        }
    }
    let d = (n.max(2) - 1) as f64;
    for i in 0..m {
        for j in 0..=i {
            let v = c[i * m + j] / d;
            c[i * m + j] = v;
            c[j * m + i] = v;
        }
    }
    c
}

/// Eigen-decomposition of the symmetric `n × n` row-major matrix `a`
/// (Householder tridiagonalisation, then implicit QL), eigenvalues sorted
/// largest first. Only the lower triangle is read.
///
/// # Panics
/// If `a` does not hold `n × n` values.
///
/// Chosen over cyclic Jacobi because with time-lagged variables the matrix
/// reaches a few hundred rows, where Jacobi's repeated full sweeps are about
/// ten times slower and make debug-build tests crawl.
pub fn sym_eigen(a: &[f64], n: usize) -> SymEigen {
    assert_eq!(a.len(), n * n, "sym_eigen: matrix is not n × n");
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            v[i * n + j] = a[i * n + j];
            v[j * n + i] = a[i * n + j];
        }
    }
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    if n > 0 {
        tred2(&mut v, &mut d, &mut e, n);
        tql2(&mut v, &mut d, &mut e, n);
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| d[j].total_cmp(&d[i]));
    let values = order.iter().map(|&k| d[k]).collect();
    let mut vectors = vec![0.0; n * n];
    for (new, &old) in order.iter().enumerate() {
        for i in 0..n {
            vectors[i * n + new] = v[i * n + old];
        }
    }
    SymEigen { values, vectors }
}

/// Householder reduction to tridiagonal form (the EISPACK `tred2` scheme as
/// in JAMA). On return `v` holds the accumulated orthogonal transform, `d` the
/// diagonal and `e[1..]` the sub-diagonal.
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for j in 0..n {
        d[j] = v[(n - 1) * n + j];
    }
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for dk in d.iter().take(i) {
            scale += dk.abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[(i - 1) * n + j];
                v[i * n + j] = 0.0;
                v[j * n + i] = 0.0;
            }
        } else {
            for dk in d.iter_mut().take(i) {
                *dk /= scale;
                h += *dk * *dk;
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for ej in e.iter_mut().take(i) {
                *ej = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[j * n + i] = f;
                g = e[j] + v[j * n + j] * f;
                for k in j + 1..i {
                    g += v[k * n + j] * d[k];
                    e[k] += v[k * n + j] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[k * n + j] -= f * e[k] + g * d[k];
                }
                d[j] = v[(i - 1) * n + j];
                v[i * n + j] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n.saturating_sub(1) {
        v[(n - 1) * n + i] = v[i * n + i];
        v[i * n + i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[k * n + i + 1] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[k * n + i + 1] * v[k * n + j];
                }
                for k in 0..=i {
                    v[k * n + j] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[k * n + i + 1] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[(n - 1) * n + j];
        v[(n - 1) * n + j] = 0.0;
    }
    v[(n - 1) * n + n - 1] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL iterations on the tridiagonal form left by [`tred2`]
/// (EISPACK `tql2` as in JAMA): eigenvalues into `d`, vectors into `v`.
fn tql2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n {
            if e[m].abs() <= eps * tst1 {
                break;
            }
            m += 1;
        }
        // m == n cannot happen because e[n-1] == 0; guard anyway.
        let m = m.min(n - 1);
        if m > l {
            // The iteration count is bounded in practice (a handful per
            // eigenvalue); the cap only protects against NaN input.
            for _ in 0..60 {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in d.iter_mut().take(n).skip(l + 2) {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    for k in 0..n {
                        h = v[k * n + i + 1];
                        v[k * n + i + 1] = s * v[k * n + i] + c * h;
                        v[k * n + i] = c * v[k * n + i] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct_error(a: &[f64], n: usize, eig: &SymEigen) -> f64 {
        let mut worst: f64 = 0.0;
        for i in 0..n {
            for j in 0..n {
                let mut s = 0.0;
                for k in 0..n {
                    s += eig.vectors[i * n + k] * eig.values[k] * eig.vectors[j * n + k];
                }
                worst = worst.max((s - a[i * n + j]).abs());
            }
        }
        worst
    }

    #[test]
    fn eigen_of_known_matrix() {
        // [[2,1],[1,2]] has eigenvalues 3 and 1.
        let eig = sym_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((eig.values[0] - 3.0).abs() < 1e-12);
        assert!((eig.values[1] - 1.0).abs() < 1e-12);
        let v0 = (eig.vectors[0], eig.vectors[2]);
        assert!((v0.0.abs() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!((v0.0 - v0.1).abs() < 1e-12);
    }

    #[test]
    fn eigen_reconstructs_random_symmetric_and_is_orthonormal() {
        let n = 40;
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((state >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = next();
                a[i * n + j] = v;
                a[j * n + i] = v;
            }
        }
        let eig = sym_eigen(&a, n);
        assert!(reconstruct_error(&a, n, &eig) < 1e-10);
        for p in 0..n {
            for q in 0..n {
                let dot: f64 = (0..n)
                    .map(|i| eig.vectors[i * n + p] * eig.vectors[i * n + q])
                    .sum();
                let want = if p == q { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-10, "v{p}·v{q} = {dot}");
            }
        }
        assert!(eig.values.windows(2).all(|w| w[0] >= w[1]));

        // Repeated and zero eigenvalues: diag(1, 1, 0).
        let proj = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let eig = sym_eigen(&proj, 3);
        assert_eq!(eig.values.len(), 3);
        assert!(reconstruct_error(&proj, 3, &eig) < 1e-12);
    }

    #[test]
    fn covariance_of_centred_columns() {
        // Columns (1,-1) and (2,-2): variances 2 and 8, covariance 4.
        let c = covariance_centred(&[1.0, 2.0, -1.0, -2.0], 2);
        assert_eq!(c, vec![2.0, 4.0, 4.0, 8.0]);
        assert_eq!(column_means(&[1.0, 2.0, 3.0, 6.0], 2), vec![2.0, 4.0]);
    }
}
